//! The `mip6-ha` command line, run as a user would: `check` on good and bad files and on
//! every example in `config/`, `--version`, `status` with no daemon, and `run` + `status`
//! against a real daemon on a temporary control socket, stopped by SIGTERM.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_mip6-ha");

/// A scratch directory, removed on drop.
struct Dir(PathBuf);

impl Dir {
    fn new() -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let d = std::env::temp_dir().join(format!(
            "mip6-ha-cli-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&d).unwrap();
        Self(d)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.0).ok();
    }
}

fn ha(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Brings up `lo` with the listen address and creates the home-link interface in a fresh
/// network namespace, then runs the daemon.
const SETUP_NS: &str = "ip link set lo up && ip -6 addr add 2001:db8:ff::1/128 dev lo nodad && ip link add ha-home type veth peer name ha-peer && ip -6 addr add 2001:db8:1::1/64 dev ha-home nodad && exec \"$0\" \"$@\"";

fn config_with_socket(socket: &Path) -> String {
    format!(
        "listen = [\"2001:db8:ff::1\"]\ncontrol_socket = \"{}\"\nlog_level = \"debug\"\n[home_link]\ninterface = \"ha-home\"\naddress = \"2001:db8:1::1\"\nprefix = \"2001:db8:1::/64\"\n[ike]\nidentity = \"ha.example.com\"\n[[peers]]\nidentity = \"mn1@example.com\"\npsk = \"topsecret-psk\"\nhome_address = \"2001:db8:1::1000\"\n",
        socket.display()
    )
}

fn examples() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

#[test]
fn check_accepts_every_home_agent_example() {
    let files = examples();
    let name = |p: &Path| p.file_name().unwrap().to_string_lossy().into_owned();
    for f in &files {
        assert!(
            name(f).starts_with("mn") || name(f).starts_with("ha"),
            "config/{}: name it mn*.toml or ha*.toml so that a test checks it",
            name(f)
        );
    }
    let ours: Vec<_> = files.iter().filter(|f| name(f).starts_with("ha")).collect();
    assert!(ours.len() >= 2, "ha.toml and ha-static.toml at least");
    for f in ours {
        let out = ha(&["check", "--config", f.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "{}: {}",
            f.display(),
            text(&out.stderr)
        );
        let stdout = text(&out.stdout);
        assert!(stdout.contains("is valid"), "{stdout}");
        assert!(stdout.contains("[ike]"), "{stdout}");
        assert!(stdout.contains("<redacted>"), "{stdout}");
        assert!(!stdout.contains("\"secret\""), "{stdout}");
    }
}

#[test]
fn check_prints_the_effective_config() {
    let d = Dir::new();
    let f = d.write("ha.toml", &config_with_socket(&d.0.join("ha.sock")));
    let out = ha(&["check", "--config", f.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("[modecfg]\nsource = \"dhcpv6\""),
        "{stdout}"
    );
    assert!(stdout.contains("[[peers]]"), "{stdout}");
    assert!(
        stdout.contains("home_address = \"2001:db8:1::1000\""),
        "{stdout}"
    );
    assert!(!stdout.contains("topsecret-psk"), "{stdout}");
}

#[test]
fn check_rejects_with_file_and_key() {
    let d = Dir::new();
    let f = d.write(
        "bad.toml",
        &config_with_socket(Path::new("/run/x.sock")).replace(
            "home_address = \"2001:db8:1::1000\"",
            "home_address = \"2001:db8:2::1000\"",
        ),
    );
    let out = ha(&["check", "--config", f.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "{}:13:16: peers[0].home_address: 2001:db8:2::1000 is not inside home_link.prefix 2001:db8:1::/64",
            f.display()
        )),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());

    let f = d.write(
        "typo.toml",
        &config_with_socket(Path::new("/run/x.sock"))
            .replace("[home_link]\n", "[home_link]\nmtu = 1400\n"),
    );
    let out = ha(&["check", "--config", f.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "{}:5:1: home_link.mtu: unknown field",
            f.display()
        )),
        "{stderr}"
    );
}

#[test]
fn version_and_help() {
    let out = ha(&["--version"]);
    assert!(out.status.success());
    assert_eq!(
        text(&out.stdout).trim(),
        format!("mip6-ha {}", env!("CARGO_PKG_VERSION"))
    );
    let out = ha(&["--help"]);
    assert!(out.status.success());
    let help = text(&out.stdout);
    for word in ["run", "check", "status", "/run/mip6-ha.sock"] {
        assert!(help.contains(word), "{help}");
    }
}

#[test]
fn status_without_a_daemon() {
    let d = Dir::new();
    let socket = d.0.join("nobody.sock");
    let f = d.write("ha.toml", &config_with_socket(&socket));
    let out = ha(&["status", "--json", "--config", f.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("no daemon is listening on {}", socket.display())),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
    if !Path::new("/run/mip6-ha.sock").exists() {
        let out = ha(&["status"]);
        assert_eq!(out.status.code(), Some(1));
        assert!(text(&out.stderr).contains("/run/mip6-ha.sock"));
    }
}

/// Waits for `child` to exit, at most `limit`.
fn wait_exit(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(s) = child.try_wait().unwrap() {
            return Some(s);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().ok();
    child.wait().ok();
    None
}

#[test]
fn run_status_and_sigterm() {
    let d = Dir::new();
    let socket = d.0.join("run/ha.sock");
    let f = d.write("ha.toml", &config_with_socket(&socket));
    let log = std::fs::File::create(d.0.join("log")).unwrap();
    // The daemon opens real sockets and a TUN device: run it in a network namespace of its
    // own (root), with its listen address on `lo` and a home-link interface.
    let mut child = Command::new("unshare")
        .args([
            "--net",
            "--",
            "sh",
            "-c",
            SETUP_NS,
            BIN,
            "run",
            "--config",
            f.to_str().unwrap(),
        ])
        .env_remove("RUST_LOG")
        .stderr(log)
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !socket.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no control socket; log: {}",
            std::fs::read_to_string(d.0.join("log")).unwrap_or_default()
        );
        assert!(child.try_wait().unwrap().is_none(), "the daemon exited");
        std::thread::sleep(Duration::from_millis(20));
    }

    let out = ha(&["status", "--json", "--config", f.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["peers"], serde_json::json!([]), "{v}");
    assert!(v["counters"].is_object(), "{v}");

    let out = ha(&["status", "--config", f.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).starts_with("mip6-ha: 0 connected peers\n"));

    // A second daemon on the same control socket is refused, and leaves the first alone.
    let out = ha(&["run", "--config", f.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("another daemon is listening"),
        "{}",
        text(&out.stderr)
    );
    assert!(socket.exists());

    // The shell's builtin `kill`: no dependency on procps.
    let kill = Command::new("sh")
        .args(["-c", &format!("kill -TERM {}", child.id())])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = wait_exit(&mut child, Duration::from_secs(20)).expect("exits after SIGTERM");
    let log = std::fs::read_to_string(d.0.join("log")).unwrap();
    assert_eq!(status.code(), Some(0), "log: {log}");
    assert!(!socket.exists(), "the control socket is removed");
    assert!(log.contains("SIGTERM"), "{log}");
    assert!(
        !log.contains("topsecret-psk"),
        "no key material in the log: {log}"
    );
}

#[test]
fn run_refuses_a_bad_config_before_starting() {
    let d = Dir::new();
    let socket = d.0.join("ha.sock");
    let f = d.write(
        "ha.toml",
        &config_with_socket(&socket).replace(
            "prefix = \"2001:db8:1::/64\"",
            "prefix = \"2001:db8:9::/64\"",
        ),
    );
    let out = ha(&["run", "--config", f.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("home_link.address"),
        "{}",
        text(&out.stderr)
    );
    assert!(!socket.exists());
}
