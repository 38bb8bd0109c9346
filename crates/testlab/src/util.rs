//! Small helpers shared by the lab, the process guard and the daemon helpers: `/proc` reading,
//! signals (through `kill(1)`, so the crate needs no `unsafe`), polling and command execution
//! with a time limit.

use std::io::{self, Read};
use std::path::Path;
use std::process::{Command, ExitStatus, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// FNV-1a, 32 bits: a hash that stays the same across Rust versions and runs, so the namespace
/// prefix derived from a test's name hint is stable and leftovers of earlier runs can be found.
pub(crate) fn fnv1a32(s: &str) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in s.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// Fields of `/proc/<pid>/stat` after the command name: index 0 is field 3 (state).
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may itself hold spaces or parentheses.
    let after = &stat[stat.rfind(')')? + 1..];
    Some(after.split_whitespace().map(str::to_owned).collect())
}

/// Start time of a process in clock ticks since boot (field 22 of `/proc/<pid>/stat`). Together
/// with the PID it names one process: a reused PID has another start time.
pub(crate) fn start_time(pid: u32) -> Option<u64> {
    stat_fields(pid)?.get(19)?.parse().ok()
}

/// Whether `pid` is a live process (not a zombie) and, if `start` is given, the same process that
/// had that start time.
pub(crate) fn pid_alive(pid: u32, start: Option<u64>) -> bool {
    let Some(fields) = stat_fields(pid) else {
        return false;
    };
    if fields.first().is_some_and(|s| s == "Z" || s == "X") {
        return false;
    }
    match start {
        Some(start) => fields.get(19).and_then(|s| s.parse::<u64>().ok()) == Some(start),
        None => true,
    }
}

/// Sends `signal` (a name such as `TERM` or `KILL`) to one process, by PID.
pub(crate) fn signal(pid: u32, signal: &str) -> io::Result<()> {
    let out = Command::new("kill")
        .args(["-s", signal, &pid.to_string()])
        .stdin(Stdio::null())
        .output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "kill -s {signal} {pid}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// Calls `f` every `interval` until it returns `Some` or `timeout` has passed (at least once).
pub(crate) fn poll<T>(
    timeout: Duration,
    interval: Duration,
    mut f: impl FnMut() -> Option<T>,
) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(interval);
    }
}

/// Sends TERM to every live process of `procs` (PID, start time), waits up to `grace` for them to
/// end, then KILLs the rest and waits again. Processes that are our own children stay zombies
/// until their [`Proc`](crate::Proc) reaps them; they count as ended.
pub(crate) fn terminate_all(procs: &[(u32, Option<u64>)], grace: Duration) {
    let alive = |procs: &[(u32, Option<u64>)]| -> Vec<(u32, Option<u64>)> {
        procs
            .iter()
            .copied()
            .filter(|&(pid, start)| pid_alive(pid, start))
            .collect()
    };
    let live = alive(procs);
    for &(pid, _) in &live {
        let _ = signal(pid, "TERM");
    }
    let ms = Duration::from_millis(10);
    if poll(grace, ms, || alive(&live).is_empty().then_some(())).is_some() {
        return;
    }
    for (pid, _) in alive(&live) {
        let _ = signal(pid, "KILL");
    }
    let _ = poll(Duration::from_secs(5), ms, || {
        alive(&live).is_empty().then_some(())
    });
}

/// Runs `cmd` to completion with stdin closed and both outputs captured; kills it (by PID) and
/// fails with `TimedOut` if it takes longer than `timeout`.
pub(crate) fn run(cmd: &mut Command, timeout: Duration) -> io::Result<Output> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| io::Error::new(e.kind(), format!("cannot run {}: {e}", describe(cmd))))?;
    let reader = |pipe: Option<Box<dyn Read + Send>>| {
        thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out = reader(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err = reader(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + timeout;
    let mut nap = Duration::from_millis(1);
    let status: ExitStatus = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            let stdout = out.join().unwrap_or_default();
            let stderr = err.join().unwrap_or_default();
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "{} did not finish within {timeout:?}; stdout: {}; stderr: {}",
                    describe(cmd),
                    String::from_utf8_lossy(&stdout).trim(),
                    String::from_utf8_lossy(&stderr).trim()
                ),
            ));
        }
        thread::sleep(nap);
        nap = (nap * 2).min(Duration::from_millis(10));
    };
    Ok(Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    })
}

/// Like [`run`], but a non-zero exit is an error that carries the command line and both outputs.
/// Returns stdout as text.
pub(crate) fn run_ok(cmd: &mut Command, timeout: Duration) -> io::Result<String> {
    let out = run(cmd, timeout)?;
    check(cmd, &out)?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Turns a failed [`Output`] into an error naming the command and quoting its outputs.
pub(crate) fn check(cmd: &Command, out: &Output) -> io::Result<()> {
    if out.status.success() {
        return Ok(());
    }
    Err(io::Error::other(format!(
        "{} failed ({}); stdout: {}; stderr: {}",
        describe(cmd),
        out.status,
        String::from_utf8_lossy(&out.stdout).trim(),
        String::from_utf8_lossy(&out.stderr).trim()
    )))
}

/// The command line of `cmd`, for error messages.
pub(crate) fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Fails with a message that says which package provides `path` when it is not an executable
/// file. The lab never skips: a missing tool is a test failure.
pub(crate) fn require_executable(path: &Path, package: &str) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => Ok(()),
        _ => Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "{} is missing: install the Debian package {package} (scripts/install-deps.sh)",
                path.display()
            ),
        )),
    }
}

/// Looks `program` up in `PATH` (like the shell does) and fails with a message naming the
/// package when it is absent.
pub(crate) fn require_in_path(program: &str, package: &str) -> io::Result<()> {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
        .unwrap_or(false);
    if found {
        Ok(())
    } else {
        require_executable(Path::new(program), package).map_err(|_| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "`{program}` is not in PATH: install the Debian package {package} \
                     (scripts/install-deps.sh)"
                ),
            )
        })
    }
}

/// The last `n` lines of `text`.
pub(crate) fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Reads a file as text, replacing invalid UTF-8; a missing file reads as empty.
pub(crate) fn read_lossy(path: &Path) -> String {
    std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// `true` when running as root (effective UID 0), from `/proc/self/status`.
pub(crate) fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

/// Whether a string is safe as a single file-name component of the lab.
pub(crate) fn check_name(kind: &str, name: &str) -> io::Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 40
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        && !name.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{kind} name {name:?} must be 1-40 characters of [A-Za-z0-9._-]"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_is_stable() {
        // Reference values of FNV-1a 32.
        assert_eq!(fnv1a32(""), 0x811c_9dc5);
        assert_eq!(fnv1a32("a"), 0xe40c_292c);
        assert_eq!(fnv1a32("foobar"), 0xbf9c_f968);
    }

    #[test]
    fn own_process_is_alive() {
        let pid = std::process::id();
        let start = start_time(pid);
        assert!(start.is_some());
        assert!(pid_alive(pid, start));
        assert!(!pid_alive(pid, start.map(|s| s + 1)));
    }

    #[test]
    fn missing_tool_names_the_package() {
        let e =
            require_executable(Path::new("/nonexistent/charon"), "strongswan-charon").unwrap_err();
        assert!(e.to_string().contains("strongswan-charon"), "{e}");
        let e = require_in_path("no-such-tool-mip6", "some-package").unwrap_err();
        assert!(e.to_string().contains("some-package"), "{e}");
        assert!(require_in_path("sh", "dash").is_ok());
    }

    #[test]
    fn tail_keeps_last_lines() {
        assert_eq!(tail("a\nb\nc\n", 2), "b\nc");
        assert_eq!(tail("a", 5), "a");
    }
}
