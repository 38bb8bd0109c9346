//! Running `mip6-ha` and `mip6-mn` in the lab: their binaries, `status --json`, waiting for a
//! state, SIGTERM, and traffic through the tunnel.

use std::net::Ipv6Addr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use testlab::{HOME_HOST, Lab, Node, Proc, Spawn};

/// A binary of another package of the workspace, next to this test's own directory
/// (`target/<profile>/`): `cargo nextest run --workspace` builds every binary first.
pub fn workspace_bin(name: &str) -> String {
    let exe = std::env::current_exe().expect("test executable");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target directory");
    let p = dir.join(name);
    assert!(
        p.is_file(),
        "{} is not built: run the tests with --workspace (cargo build --workspace)",
        p.display()
    );
    p.display().to_string()
}
/// `mip6-ha`.
pub fn ha_bin() -> &'static str {
    static P: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    P.get_or_init(|| workspace_bin("mip6-ha"))
}
/// `mip6-mn`.
pub fn mn_bin() -> &'static str {
    static P: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    P.get_or_init(|| workspace_bin("mip6-mn"))
}

/// `status --json` of a running daemon, `None` while its control socket does not answer.
pub fn status(bin: &str, config: &Path) -> Option<Value> {
    let out = Command::new(bin)
        .args(["status", "--json", "--config"])
        .arg(config)
        .output()
        .expect("status");
    out.status
        .success()
        .then(|| serde_json::from_slice(&out.stdout).expect("status JSON"))
}

/// Polls `status --json` until `ok` holds (20 s at most), panicking with the processes' logs.
pub fn wait_status(
    bin: &str,
    config: &Path,
    what: &str,
    ok: impl Fn(&Value) -> bool,
    procs: &[&Proc],
) -> Value {
    wait_status_for(bin, config, what, Duration::from_secs(20), ok, procs)
}

/// [`wait_status`] with another time limit.
pub fn wait_status_for(
    bin: &str,
    config: &Path,
    what: &str,
    limit: Duration,
    ok: impl Fn(&Value) -> bool,
    procs: &[&Proc],
) -> Value {
    let end = Instant::now() + limit;
    loop {
        if let Some(v) = status(bin, config) {
            if ok(&v) {
                return v;
            }
            if Instant::now() > end {
                let logs: Vec<String> = procs.iter().map(|p| p.log()).collect();
                panic!(
                    "timed out waiting for {what}: {v:#}\n{}",
                    logs.join("\n-----\n")
                );
            }
        } else if Instant::now() > end {
            let logs: Vec<String> = procs.iter().map(|p| p.log()).collect();
            panic!("no status for {what}\n{}", logs.join("\n-----\n"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Starts `bin run --config config` in `node` with debug logging, its log named `name`.
pub fn start_daemon(lab: &Lab, node: Node, bin: &str, config: &Path, name: &str) -> Proc {
    lab.spawn(
        node,
        Spawn::new(bin)
            .arg("run")
            .arg("--config")
            .arg(config)
            .env("RUST_LOG", "debug")
            .log_name(name),
    )
    .unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Starts `mip6-ha` in the home agent's namespace and waits until it is up: its control
/// socket answers before the runtime has bound the relay socket and the TUN device, so this
/// waits for the first status the runtime writes (its counters), not just for an answer.
pub fn start_ha(lab: &Lab, config: &Path) -> Proc {
    let ha = start_daemon(lab, Node::Ha, ha_bin(), config, "mip6-ha");
    wait_status(
        ha_bin(),
        config,
        "the HA's runtime",
        |v| v["counters"].as_object().is_some_and(|c| !c.is_empty()),
        &[&ha],
    );
    ha
}

/// Waits (40 s at most) until the mobile node of `config` reports `ready`.
pub fn wait_ready(config: &Path, procs: &[&Proc]) -> Value {
    wait_status_for(
        mn_bin(),
        config,
        "ready",
        Duration::from_secs(40),
        |v| v["state"] == "ready",
        procs,
    )
}

/// The `home_address` of a mobile node's status.
pub fn home_address_of(st: &Value) -> Ipv6Addr {
    st["home_address"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no home address: {st:#}"))
}

/// SIGTERM; the daemon must exit 0.
pub fn sigterm_and_wait(p: &mut Proc) -> std::process::ExitStatus {
    let st = p.stop().expect("stop");
    assert!(
        st.success(),
        "{} exited with {st} after SIGTERM:\n{}",
        p.name(),
        p.log()
    );
    st
}

/// `ip -o link show` in a namespace.
pub fn links(lab: &Lab, node: Node) -> String {
    lab.exec_ok(node, "ip", ["-o", "link", "show"])
        .expect("ip link")
}

/// ping6 both ways between the home address and the home-link host, then TCP both ways
/// (iperf3, the mobile node being the client); prints the TCP figures.
pub fn traffic_both_ways(lab: &Lab, hoa: Ipv6Addr, what: &str) {
    let hoa_s = hoa.to_string();
    lab.ping(Node::Dhcp, None, hoa)
        .expect("home-link host -> home address");
    lab.ping(Node::Mn, Some(hoa), HOME_HOST)
        .expect("home address -> home-link host");
    let server = lab
        .spawn(
            Node::Dhcp,
            Spawn::new("iperf3")
                .args(["-s", "-B", &HOME_HOST.to_string()])
                .log_name("iperf3-server"),
        )
        .expect("iperf3 -s");
    std::thread::sleep(Duration::from_millis(200));
    for reverse in [false, true] {
        let mut args = vec!["-c", "2001:db8:1::2", "-B", &hoa_s, "-t", "2", "-J"];
        if reverse {
            args.push("-R");
        }
        let out = lab
            .exec_timeout(Node::Mn, Duration::from_secs(20), "iperf3", args)
            .expect("iperf3 -c");
        let j: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        let bps = j["end"]["sum_received"]["bits_per_second"]
            .as_f64()
            .unwrap_or(0.0);
        eprintln!(
            "{what}: TCP {}: {:.0} Mbit/s",
            if reverse {
                "home link -> MN"
            } else {
                "MN -> home link"
            },
            bps / 1e6
        );
        assert!(
            out.status.success() && bps > 0.0,
            "iperf3 failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    drop(server);
}
