//! The `mip6-mn` command line, run as a user would: `check` on good and bad files and on
//! every example in `config/`, `--version`, `status` with no daemon, and `run` + `status`
//! against a real daemon on a temporary control socket, stopped by SIGTERM.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_mip6-mn");

/// A scratch directory, removed on drop.
struct Dir(PathBuf);

impl Dir {
    fn new() -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let d = std::env::temp_dir().join(format!(
            "mip6-mn-cli-{}-{}",
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

/// Brings up `lo` with the care-of address in a fresh network namespace, then runs the daemon.
const SETUP_NS: &str =
    "ip link set lo up && ip -6 addr add 2001:db8:ff::2/128 dev lo nodad && exec \"$0\" \"$@\"";

fn mn(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A configuration with its control socket at `socket` and its state directory next to it.
fn config_with_socket(socket: &Path) -> String {
    format!(
        "home_agent = \"2001:db8:ff::1\"\ncare_of_address = \"2001:db8:ff::2\"\ncontrol_socket = \"{}\"\nstate_dir = \"{}\"\nlog_level = \"debug\"\n[ike]\nidentity = \"mn1@example.com\"\npsk = \"topsecret-psk\"\n",
        socket.display(),
        state_dir_for(socket).display()
    )
}

fn state_dir_for(socket: &Path) -> PathBuf {
    socket.parent().unwrap().join("state/mip6-mn")
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
fn check_accepts_every_mobile_node_example() {
    let files = examples();
    let name = |p: &Path| p.file_name().unwrap().to_string_lossy().into_owned();
    for f in &files {
        assert!(
            name(f).starts_with("mn") || name(f).starts_with("ha"),
            "config/{}: name it mn*.toml or ha*.toml so that a test checks it",
            name(f)
        );
    }
    let ours: Vec<_> = files.iter().filter(|f| name(f).starts_with("mn")).collect();
    assert!(ours.len() >= 2, "mn.toml and mn-static.toml at least");
    for f in ours {
        let out = mn(&["check", "--config", f.to_str().unwrap()]);
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
    let f = d.write("mn.toml", &config_with_socket(&d.0.join("mn.sock")));
    let out = mn(&["check", "--config", f.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("address_source = \"auto\""), "{stdout}");
    assert!(stdout.contains("dhcpv6_timeout = 10"), "{stdout}");
    assert!(!stdout.contains("topsecret-psk"), "{stdout}");
}

#[test]
fn check_rejects_with_file_and_key() {
    let d = Dir::new();
    let f = d.write(
        "bad.toml",
        "home_agent = \"2001:db8:ff::1\"\n[ike]\nidentity = \"mn1@example.com\"\npsk = \"x\"\nproposals = [\"aes128-sha256-ecp256\", \"aes999-sha256-ecp256\"]\n",
    );
    let out = mn(&["check", "--config", f.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "{}:5:38: ike.proposals[1]: unknown algorithm \"aes999\"",
            f.display()
        )),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());

    let f = d.write(
        "typo.toml",
        "home_agent = \"2001:db8:ff::1\"\naddress_sourc = \"auto\"\n[ike]\nidentity = \"mn1@example.com\"\npsk = \"x\"\n",
    );
    let out = mn(&["check", "--config", f.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "{}:2:1: address_sourc: unknown field",
            f.display()
        )),
        "{stderr}"
    );
}

#[test]
fn version_and_help() {
    let out = mn(&["--version"]);
    assert!(out.status.success());
    assert_eq!(
        text(&out.stdout).trim(),
        format!("mip6-mn {}", env!("CARGO_PKG_VERSION"))
    );
    let out = mn(&["--help"]);
    assert!(out.status.success());
    let help = text(&out.stdout);
    for word in ["run", "check", "status", "/run/mip6-mn.sock"] {
        assert!(help.contains(word), "{help}");
    }
}

#[test]
fn status_without_a_daemon() {
    let d = Dir::new();
    let socket = d.0.join("nobody.sock");
    let f = d.write("mn.toml", &config_with_socket(&socket));
    let out = mn(&["status", "--json", "--config", f.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("no daemon is listening on {}", socket.display())),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
    if !Path::new("/run/mip6-mn.sock").exists() {
        let out = mn(&["status"]);
        assert_eq!(out.status.code(), Some(1));
        assert!(text(&out.stderr).contains("/run/mip6-mn.sock"));
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
    let socket = d.0.join("run/mn.sock");
    let f = d.write("mn.toml", &config_with_socket(&socket));
    let log = std::fs::File::create(d.0.join("log")).unwrap();
    // The daemon opens real sockets and a TUN device: run it in a network namespace of its
    // own (root), with its care-of address on `lo` and no route to the home agent.
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

    let out = mn(&["status", "--json", "--config", f.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for field in [
        "state",
        "care_of_address",
        "home_agent",
        "home_address",
        "address_source",
        "ike_sa",
        "child_sas",
        "timings_ms",
        "last_error",
    ] {
        assert!(v.get(field).is_some(), "{field} missing in {v}");
    }
    assert!(
        v["last_error"].is_null() || v["last_error"].is_string(),
        "{v}"
    );
    // address_source = "auto": the state directory is created (0700) with a DUID in it.
    let state = state_dir_for(&socket);
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&state).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o700);
    let duid = std::fs::read_to_string(state.join("duid")).unwrap();
    assert!(
        duid.starts_with("0004") && duid.trim_end().len() == 36,
        "a DUID-UUID: {duid}"
    );
    // Phase 1 starts at once (and cannot reach the home agent here).
    assert!(
        matches!(v["state"].as_str(), Some("starting" | "phase1" | "failed")),
        "{v}"
    );
    assert_eq!(v["home_agent"], "2001:db8:ff::1");
    assert!(v["home_address"].is_null());
    assert!(v["address_source"].is_null());
    assert!(v["ike_sa"].get("state").is_some() && v["ike_sa"].get("proposal").is_some());
    assert_eq!(v["child_sas"], serde_json::json!([]));
    for t in [
        "phase1",
        "initial_tunnel",
        "address",
        "rfc3776_sas",
        "total",
    ] {
        assert!(
            v["timings_ms"].get(t).is_some(),
            "timings_ms.{t} missing in {v}"
        );
    }

    let out = mn(&["status", "--config", f.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        text(&out.stdout).starts_with("mip6-mn: "),
        "{}",
        text(&out.stdout)
    );

    // A second daemon on the same control socket is refused, and leaves the first alone.
    let out = mn(&["run", "--config", f.to_str().unwrap()]);
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
    let socket = d.0.join("mn.sock");
    let f = d.write(
        "mn.toml",
        &config_with_socket(&socket).replace("2001:db8:ff::1", "ff02::1"),
    );
    let out = mn(&["run", "--config", f.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("home_agent"),
        "{}",
        text(&out.stderr)
    );
    assert!(!socket.exists());
}
