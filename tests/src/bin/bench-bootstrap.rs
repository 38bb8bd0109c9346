//! `bench-bootstrap`: bootstrap latency in the namespace lab (issue 6), ours next to
//! strongSwan's, in one run on one machine (absolute times drift between runs; the ratios of
//! one run hold).
//!
//! * `mip6-mn` against `mip6-ha` with Kea on the home link, the DHCPv6 path (`address_source
//!   = "dhcpv6"`: phase 1, initial tunnel, DHCPv6 through the relay, the RFC 3776 SAs) and the
//!   Mode Config path (`"modecfg"`: phase 1, Mode Config leased from Kea on the node's behalf,
//!   the RFC 3776 SAs). Measured: the node's own `timings_us.total` (first phase-1 message to
//!   ready) with its steps, and the wall time from starting the process to `status` saying
//!   ready.
//! * charon against charon (kernel-libipsec), IKEv1 PSK + Mode Config (`vips = ::`, the
//!   address from charon's pool) + one tunnel-mode child: the wall time of
//!   `swanctl --initiate` (it returns once the IKE SA, the virtual IP and the child SA are in
//!   place).
//!
//! Same suites on both sides: AES-128-SHA256-ECP256 for phase 1, AES-128-GCM for ESP.
//!
//! ```text
//! cargo build --release --workspace && ./target/release/bench-bootstrap [RUNS] [OUT]
//! ```
//!
//! Prints a table (median, p95, min, max in ms) and writes every sample to `OUT`
//! (default `bench-bootstrap.txt`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use interop_tests::bench::{machine, sibling_bin};
use serde_json::Value;
use testlab::swanctl::{Auth, Child, Connection, Pool, Secret, Swanctl};
use testlab::{
    Charon, CharonOptions, HA_HOME, HA_INET, Kea, KeaOptions, Lab, MN_COA, Node, Proc, Spawn,
};

const PSK: &str = "bench-bootstrap-psk-0123456789";

fn status(b: &str, conf: &Path) -> Option<Value> {
    let o = Command::new(b)
        .args(["status", "--json", "--config"])
        .arg(conf)
        .output()
        .ok()?;
    o.status
        .success()
        .then(|| serde_json::from_slice(&o.stdout).ok())
        .flatten()
}

fn write_ha(dir: &Path) -> PathBuf {
    let p = dir.join("ha.toml");
    let text = format!(
        r#"listen = ["{HA_INET}"]
control_socket = "{}"
log_level = "warn"
[home_link]
interface = "ha-home"
address = "{HA_HOME}"
prefix = "2001:db8:1::/64"
[dhcpv6]
servers = ["2001:db8:1::2"]
[ike]
identity = "ha.example.com"
proposals = ["aes128-sha256-ecp256"]
esp_proposals = ["aes128gcm16"]
[[peers]]
identity = "mn1@example.com"
psk = "{PSK}"
"#,
        dir.join("ha.sock").display()
    );
    std::fs::write(&p, text).expect("ha.toml");
    p
}

fn write_mn(dir: &Path, source: &str) -> PathBuf {
    let p = dir.join(format!("mn-{source}.toml"));
    let text = format!(
        r#"home_agent = "{HA_INET}"
care_of_address = "{MN_COA}"
address_source = "{source}"
state_dir = "{}"
control_socket = "{}"
log_level = "warn"
[ike]
identity = "mn1@example.com"
remote_identity = "ha.example.com"
psk = "{PSK}"
proposals = ["aes128-sha256-ecp256"]
esp_proposals = ["aes128gcm16"]
"#,
        dir.join("mn-state").display(),
        dir.join("mn.sock").display()
    );
    std::fs::write(&p, text).expect("mn.toml");
    p
}

/// The bootstrap steps of `timings_us`, in the order they run.
const STEPS: [&str; 4] = ["phase1", "initial_tunnel", "address", "rfc3776_sas"];

/// One `mip6-mn` bootstrap: its own total, the wall time from spawn to ready, and the steps
/// of [`STEPS`] (absent: the path has no such step), in ms.
type Run = (f64, f64, Vec<Option<f64>>);

fn mip6_run(lab: &Lab, mn_bin: &str, conf: &Path) -> Option<Run> {
    let t0 = Instant::now();
    let mut p: Proc = lab
        .spawn(
            Node::Mn,
            Spawn::new(mn_bin)
                .arg("run")
                .arg("--config")
                .arg(conf)
                .log_name("mip6-mn"),
        )
        .ok()?;
    let deadline = t0 + Duration::from_secs(20);
    let result = loop {
        if let Some(v) = status(mn_bin, conf)
            && v["state"] == "ready"
        {
            let wall = t0.elapsed().as_secs_f64() * 1e3;
            let us = &v["timings_us"];
            let ms = |k: &str| us[k].as_f64().map(|t| t / 1e3);
            let total = ms("total")?;
            break Some((total, wall, STEPS.iter().map(|k| ms(k)).collect()));
        }
        if Instant::now() > deadline {
            eprintln!("mip6-mn not ready:\n{}", p.log());
            break None;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let _ = p.stop();
    result
}

fn charon_conf_ha() -> Swanctl {
    Swanctl::new()
        .connection(
            Connection::ikev1("bench")
                .proposals("aes128-sha256-ecp256")
                .local_addrs(HA_INET)
                .pools("v6pool")
                .local(Auth::psk().id("ha.example.com"))
                .remote(Auth::psk().id("mn1@example.com"))
                .child(
                    Child::new("home")
                        .local_ts("::/0")
                        .esp_proposals("aes128gcm16"),
                ),
        )
        .pool(Pool::new("v6pool", "2001:db8:1::1000/120"))
        .secret(Secret::ike_psk(PSK))
}

fn charon_conf_mn() -> Swanctl {
    Swanctl::new()
        .connection(
            Connection::ikev1("bench")
                .proposals("aes128-sha256-ecp256")
                .local_addrs(MN_COA)
                .remote_addrs(HA_INET)
                .vips("::")
                .local(Auth::psk().id("mn1@example.com"))
                .remote(Auth::psk().id("ha.example.com"))
                .child(
                    Child::new("home")
                        .remote_ts("2001:db8:1::/64")
                        .esp_proposals("aes128gcm16"),
                ),
        )
        .secret(Secret::ike_psk(PSK))
}

/// Median, p95, min and max of `v` (sorted in place).
fn summary(v: &mut [f64]) -> (f64, f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    let at = |q: f64| {
        let i = ((v.len() as f64 - 1.0) * q).round() as usize;
        v[i.min(v.len() - 1)]
    };
    (at(0.5), at(0.95), v[0], v[v.len() - 1])
}

fn main() {
    let mut args = std::env::args().skip(1);
    let runs: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(20);
    let out: PathBuf = args
        .next()
        .unwrap_or_else(|| "bench-bootstrap.txt".to_owned())
        .into();
    let (ha_bin, mn_bin) = (sibling_bin("mip6-ha"), sibling_bin("mip6-mn"));
    let lab = Lab::new("bench_bootstrap").expect("the namespace lab (needs root)");
    let d = lab.dir();
    let _kea = Kea::start(&lab, KeaOptions::new().rapid_commit(true)).expect("Kea");
    let ha_conf = write_ha(d);
    let mut ha = lab
        .spawn(
            Node::Ha,
            Spawn::new(&ha_bin)
                .arg("run")
                .arg("--config")
                .arg(&ha_conf)
                .log_name("mip6-ha"),
        )
        .expect("mip6-ha");
    let up = Instant::now();
    while status(&ha_bin, &ha_conf).is_none() {
        assert!(
            up.elapsed() < Duration::from_secs(10),
            "mip6-ha: {}",
            ha.log()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut samples: Vec<(String, Vec<f64>)> = Vec::new();
    for source in ["dhcpv6", "modecfg"] {
        let conf = write_mn(d, source);
        let (mut total, mut wall) = (Vec::new(), Vec::new());
        let mut steps: Vec<Vec<f64>> = vec![Vec::new(); STEPS.len()];
        for i in 0..runs {
            match mip6_run(&lab, &mn_bin, &conf) {
                Some((t, w, st)) => {
                    total.push(t);
                    wall.push(w);
                    for (acc, v) in steps.iter_mut().zip(st) {
                        acc.extend(v);
                    }
                }
                None => eprintln!("{source} run {i} failed"),
            }
        }
        samples.push((format!("mip6-mn {source}: node's total"), total));
        samples.push((format!("mip6-mn {source}: spawn to ready"), wall));
        for (name, v) in STEPS.iter().zip(steps) {
            if !v.is_empty() {
                samples.push((format!("  {source} step {name}"), v));
            }
        }
    }
    let _ = ha.stop();

    let mut charon_ha = Charon::start(&lab, Node::Ha, CharonOptions::new("ha", charon_conf_ha()))
        .expect("charon HA");
    let mut charon_mn = Charon::start(&lab, Node::Mn, CharonOptions::new("mn", charon_conf_mn()))
        .expect("charon MN");
    let mut initiate = Vec::new();
    for i in 0..runs {
        let t0 = Instant::now();
        match charon_mn.initiate("home", "bench") {
            Ok(o) if o.contains("initiate completed successfully") => {
                initiate.push(t0.elapsed().as_secs_f64() * 1e3);
            }
            other => eprintln!("charon run {i} failed: {other:?}"),
        }
        let _ = charon_mn.terminate("bench");
        let _ = charon_mn.wait_for_sas(Duration::from_secs(5), <[testlab::SaInfo]>::is_empty);
        let _ = charon_ha.wait_for_sas(Duration::from_secs(5), <[testlab::SaInfo]>::is_empty);
    }
    samples.push((
        "charon IKEv1 + Mode Config: swanctl --initiate".into(),
        initiate,
    ));
    let _ = charon_mn.stop();
    let _ = charon_ha.stop();

    let mut table = String::new();
    let _ = writeln!(
        table,
        "bootstrap latency, {runs} runs each (ms)\n{:<52} {:>8} {:>8} {:>8} {:>8} {:>4}",
        "", "median", "p95", "min", "max", "n"
    );
    let mut raw = String::new();
    let mut medians = Vec::new();
    for (name, v) in &mut samples {
        let _ = writeln!(raw, "{name}: {v:?}");
        if v.is_empty() {
            let _ = writeln!(table, "{name:<52} (no successful run)");
            continue;
        }
        let n = v.len();
        let (med, p95, min, max) = summary(v);
        medians.push((name.clone(), med));
        let _ = writeln!(
            table,
            "{name:<52} {med:>8.1} {p95:>8.1} {min:>8.1} {max:>8.1} {n:>4}"
        );
    }
    if let Some((_, charon)) = medians.iter().find(|(n, _)| n.starts_with("charon")) {
        for (name, m) in medians.iter().filter(|(n, _)| n.starts_with("mip6")) {
            let _ = writeln!(table, "ratio {name}: {:.3} x charon", m / charon);
        }
    }
    print!("{table}");
    let m = machine();
    let text = format!(
        "{table}\nmachine: {} cores, {}\nraw samples (ms):\n{raw}",
        m["cores"],
        m["cpu"].as_str().unwrap_or("")
    );
    if let Err(e) = std::fs::write(&out, text) {
        eprintln!("writing {}: {e}", out.display());
    } else {
        println!("raw figures in {}", out.display());
    }
}
