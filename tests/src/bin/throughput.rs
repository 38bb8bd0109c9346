//! `throughput`: TCP throughput (iperf3, 5 s each way) in the namespace lab, in one run:
//! over the bare veth links (MN → HA's home link, routed), through `mip6-mn` ↔ `mip6-ha` with
//! raw ESP and again with ESP in UDP 4500 (`[ike] force_encap = true` on both: RFC 3948, sent
//! with UDP GSO and received with UDP GRO where the kernel has them), and through charon ↔
//! charon (kernel-libipsec, the userspace data plane strongSwan offers here, which always
//! encapsulates ESP in UDP: the like-for-like comparison is the ESP-in-UDP row).
//! Prints a table and writes the raw figures as JSON to `--out FILE` (default
//! `target/throughput.json`). Build the daemons in the same profile first:
//!
//! ```text
//! cargo build --release --workspace && cargo run --release -p interop-tests --bin throughput
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use interop_tests::bench::sibling_bin;
use serde_json::{Value, json};
use testlab::swanctl::{Auth, Child, Connection, Secret, Swanctl};
use testlab::{Charon, CharonOptions, HA_HOME, HA_INET, HOME_HOST, Lab, MN_COA, Node, Spawn};

const HOA: &str = "2001:db8:1::1000";
const PSK: &str = "throughput-psk-0123456789";

fn iperf(lab: &Lab, src: &str, reverse: bool) -> f64 {
    let mut args = vec!["-c", "2001:db8:1::2", "-B", src, "-t", "5", "-J"];
    if reverse {
        args.push("-R");
    }
    let out = lab
        .exec_timeout(Node::Mn, Duration::from_secs(30), "iperf3", args)
        .expect("iperf3");
    let j: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    j["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .unwrap_or(0.0)
        / 1e6
}

fn measure(lab: &Lab, src: &str) -> (f64, f64) {
    let _server = lab
        .spawn(
            Node::Dhcp,
            Spawn::new("iperf3")
                .args(["-s", "-B", &HOME_HOST.to_string()])
                .log_name("iperf3-s"),
        )
        .expect("iperf3 -s");
    std::thread::sleep(Duration::from_millis(300));
    (iperf(lab, src, false), iperf(lab, src, true))
}

/// Waits for `mip6-mn` to be ready; returns its `status --json`.
fn wait_ready(mn_conf: &Path) -> Value {
    let end = Instant::now() + Duration::from_secs(20);
    while Instant::now() < end {
        let o = Command::new(sibling_bin("mip6-mn"))
            .args(["status", "--json", "--config"])
            .arg(mn_conf)
            .output()
            .expect("status");
        if o.status.success()
            && let Ok(v) = serde_json::from_slice::<Value>(&o.stdout)
            && v["state"] == "ready"
        {
            return v;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("mip6-mn not ready");
}

fn bare() -> (f64, f64) {
    let lab = Lab::new("tp_bare").expect("lab");
    lab.route(Node::Mn, "2001:db8:1::/64", HA_INET)
        .expect("route");
    lab.route(Node::Dhcp, "2001:db8:ff::/64", HA_HOME)
        .expect("route");
    measure(&lab, &MN_COA.to_string())
}

/// Our tunnel; with `encap`, both daemons force ESP in UDP (strongSwan's `encap = yes`).
fn ours(encap: bool) -> (f64, f64) {
    let lab = Lab::new(if encap { "tp_encap" } else { "tp_ours" }).expect("lab");
    let force = if encap { "force_encap = true\n" } else { "" };
    let d = lab.dir();
    let ha = d.join("ha.toml");
    let mn = d.join("mn.toml");
    std::fs::write(&ha, format!("listen = [\"{HA_INET}\"]\ncontrol_socket = \"{}\"\nlog_level = \"warn\"\n[home_link]\ninterface = \"ha-home\"\naddress = \"{HA_HOME}\"\nprefix = \"2001:db8:1::/64\"\n[ike]\nidentity = \"ha.example.com\"\nproposals = [\"aes128-sha256-ecp256\"]\nesp_proposals = [\"aes128gcm16\"]\n{force}[[peers]]\nidentity = \"mn1@example.com\"\npsk = \"{PSK}\"\nhome_address = \"{HOA}\"\n", d.join("ha.sock").display())).expect("ha.toml");
    std::fs::write(&mn, format!("home_agent = \"{HA_INET}\"\ncare_of_address = \"{MN_COA}\"\naddress_source = \"static\"\nhome_address = \"{HOA}\"\nstate_dir = \"{}\"\ncontrol_socket = \"{}\"\nlog_level = \"warn\"\n[ike]\nidentity = \"mn1@example.com\"\nremote_identity = \"ha.example.com\"\npsk = \"{PSK}\"\nproposals = [\"aes128-sha256-ecp256\"]\nesp_proposals = [\"aes128gcm16\"]\n{force}", d.join("st").display(), d.join("mn.sock").display())).expect("mn.toml");
    let _ha = lab
        .spawn(
            Node::Ha,
            Spawn::new(sibling_bin("mip6-ha"))
                .arg("run")
                .arg("--config")
                .arg(&ha)
                .log_name("mip6-ha"),
        )
        .expect("ha");
    std::thread::sleep(Duration::from_millis(300));
    let _mn = lab
        .spawn(
            Node::Mn,
            Spawn::new(sibling_bin("mip6-mn"))
                .arg("run")
                .arg("--config")
                .arg(&mn)
                .log_name("mip6-mn"),
        )
        .expect("mn");
    let status = wait_ready(&mn);
    // The child SAs say which encapsulation they use (`esp` or `esp-in-udp`).
    assert_eq!(
        status.to_string().contains("esp-in-udp"),
        encap,
        "encapsulation not as configured: {status}"
    );
    measure(&lab, HOA)
}

fn charon() -> (f64, f64) {
    let lab = Lab::new("tp_charon").expect("lab");
    let conn = |local: &str, remote: Option<&str>, lid: &str, rid: &str, lts: &str, rts: &str| {
        let mut c = Connection::ikev1("c")
            .proposals("aes128-sha256-ecp256")
            .local_addrs(local)
            .local(Auth::psk().id(lid))
            .remote(Auth::psk().id(rid))
            .child(
                Child::new("home")
                    .local_ts(lts)
                    .remote_ts(rts)
                    .esp_proposals("aes128gcm16"),
            );
        if let Some(r) = remote {
            c = c.remote_addrs(r);
        }
        Swanctl::new().connection(c).secret(Secret::ike_psk(PSK))
    };
    let ha = Charon::start(
        &lab,
        Node::Ha,
        CharonOptions::new(
            "ha",
            conn(
                &HA_INET.to_string(),
                None,
                "ha.example.com",
                "mn1@example.com",
                "::/0",
                &format!("{HOA}/128"),
            ),
        ),
    )
    .expect("charon ha");
    lab.exec_ok(
        Node::Mn,
        "ip",
        ["-6", "addr", "add", &format!("{HOA}/128"), "dev", "lo"],
    )
    .expect("HoA");
    let mn = Charon::start(
        &lab,
        Node::Mn,
        CharonOptions::new(
            "mn",
            conn(
                &MN_COA.to_string(),
                Some(&HA_INET.to_string()),
                "mn1@example.com",
                "ha.example.com",
                &format!("{HOA}/128"),
                "2001:db8:1::/64",
            ),
        ),
    )
    .expect("charon mn");
    let out = mn.initiate("home", "c").expect("initiate");
    assert!(out.contains("successfully"), "{out}");
    lab.route(Node::Dhcp, &format!("{HOA}/128"), HA_HOME)
        .expect("route");
    let r = measure(&lab, HOA);
    drop((ha, mn));
    r
}

fn main() {
    let out: PathBuf = std::env::args()
        .skip_while(|a| a != "--out")
        .nth(1)
        .map_or_else(|| "target/throughput.json".into(), PathBuf::from);
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    // Other work on the machine skews absolute figures; the load is printed with them.
    let load = || {
        std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|l| l.split_whitespace().next().map(str::to_owned))
            .unwrap_or_default()
    };
    let load_before = load();
    let rows = [
        ("bare veth", bare()),
        ("mip6-mn <-> mip6-ha", ours(false)),
        ("mip6-mn <-> mip6-ha, ESP in UDP", ours(true)),
        ("charon <-> charon (libipsec)", charon()),
    ];
    let load_after = load();
    println!(
        "TCP throughput, iperf3 5 s, {cores} cores, {cpu}, load average {load_before} before, {load_after} after"
    );
    println!(
        "{:<32} {:>14} {:>14}",
        "path", "MN->home Mbit/s", "home->MN Mbit/s"
    );
    for (name, (up, down)) in &rows {
        println!("{name:<32} {up:>14.0} {down:>14.0}");
    }
    let (ou, od) = rows[1].1;
    let (eu, ed) = rows[2].1;
    let (cu, cd) = rows[3].1;
    println!(
        "ours / charon: {:.1}x up, {:.1}x down",
        ou / cu.max(1e-9),
        od / cd.max(1e-9)
    );
    println!(
        "ours in UDP / charon (both ESP in UDP): {:.1}x up, {:.1}x down",
        eu / cu.max(1e-9),
        ed / cd.max(1e-9)
    );
    let j = json!({
        "cpu": cpu, "cores": cores, "load_before": load_before, "load_after": load_after,
        "results": rows.iter().map(|(n, (u, d))| json!({"path": n, "up_mbit_s": u, "down_mbit_s": d})).collect::<Vec<_>>(),
    });
    if let Some(p) = out.parent() {
        let _ = std::fs::create_dir_all(p);
    }
    std::fs::write(&out, serde_json::to_vec_pretty(&j).expect("json")).expect("write");
    println!("raw figures: {}", out.display());
}
