//! `demo`: the bootstrap demo in network namespaces. Builds the lab of `testlab` (a mobile
//! node on a foreign link, the home agent, a host on the home link running Kea), starts Kea,
//! `mip6-ha` and `mip6-mn` with the example configurations `config/ha.toml` and
//! `config/mn.toml` (the node has only its PSK and the home agent's address; its home address
//! comes from Kea through the home agent's DHCPv6 relay), waits until the node is ready,
//! prints the home address, where it came from, the per-step timings, both daemons' `status`
//! and Kea's lease, pings the home address from the home-link host, and tears everything
//! down.
//!
//! ```text
//! bash scripts/demo.sh        # installs the packages, builds, runs this as root
//! ```

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use testlab::{HA_HOME, HA_INET, HOME_HOST, Kea, KeaOptions, Lab, MN_COA, Node, Spawn};

fn bin(name: &str) -> String {
    let exe = std::env::current_exe().expect("exe");
    let p = exe.parent().expect("dir").join(name);
    if !p.is_file() {
        eprintln!(
            "{} is missing: run `cargo build --workspace` first",
            p.display()
        );
        std::process::exit(1);
    }
    p.display().to_string()
}

fn status(b: &str, conf: &Path, json: bool) -> Option<String> {
    let mut c = Command::new(b);
    c.arg("status");
    if json {
        c.arg("--json");
    }
    let o = c.arg("--config").arg(conf).output().ok()?;
    o.status
        .success()
        .then(|| String::from_utf8_lossy(&o.stdout).into_owned())
}

fn main() {
    let lab = Lab::new("demo").expect("creating the namespace lab (needs root)");
    let d = lab.dir();
    println!(
        "lab {}: mobile node {MN_COA} | home agent {HA_INET} / {HA_HOME} | home-link host {HOME_HOST}",
        lab.name()
    );
    // The example configurations, with the control sockets moved into the lab directory.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config");
    let (ha, mn) = (d.join("ha.toml"), d.join("mn.toml"));
    for (src, dst, sock) in [("ha.toml", &ha, "ha.sock"), ("mn.toml", &mn, "mn.sock")] {
        let text = std::fs::read_to_string(root.join(src)).expect("example config");
        let text = text
            .lines()
            .map(|l| {
                if l.starts_with("control_socket") {
                    format!("control_socket = \"{}\"", d.join(sock).display())
                } else if l.starts_with("state_dir") {
                    format!("state_dir = \"{}\"", d.join("mn-state").display())
                } else {
                    l.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        std::fs::write(dst, text).expect("write config");
    }
    let kea = match Kea::start(&lab, KeaOptions::new().rapid_commit(true)) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("Kea did not start: {e}");
            std::process::exit(1);
        }
    };
    println!(
        "Kea (kea-dhcp6) serving 2001:db8:1::/64 on the home link, pid {}",
        kea.pid()
    );
    let _ha = lab
        .spawn(
            Node::Ha,
            Spawn::new(bin("mip6-ha"))
                .arg("run")
                .arg("--config")
                .arg(&ha)
                .log_name("mip6-ha"),
        )
        .expect("mip6-ha");
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    let mnp = lab
        .spawn(
            Node::Mn,
            Spawn::new(bin("mip6-mn"))
                .arg("run")
                .arg("--config")
                .arg(&mn)
                .log_name("mip6-mn"),
        )
        .expect("mip6-mn");
    loop {
        if status(&bin("mip6-mn"), &mn, true).is_some_and(|s| s.contains("\"state\": \"ready\"")) {
            break;
        }
        if t.elapsed() > Duration::from_secs(20) {
            eprintln!("mip6-mn did not become ready:\n{}", mnp.log());
            std::process::exit(1);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    println!("\nmip6-mn ready after {:?}\n", t.elapsed());
    let st: Value = status(&bin("mip6-mn"), &mn, true)
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or(Value::Null);
    let Some(hoa) = st["home_address"]
        .as_str()
        .and_then(|s| s.parse::<std::net::Ipv6Addr>().ok())
    else {
        eprintln!("no home address in the status: {st:#}");
        std::process::exit(1);
    };
    println!("home address    {hoa}");
    println!(
        "source          {}",
        st["address_source"].as_str().unwrap_or("-")
    );
    let t = &st["timings_ms"];
    println!(
        "timings (ms)    phase1 {} | initial_tunnel {} | address {} | rfc3776_sas {} | total {}",
        t["phase1"], t["initial_tunnel"], t["address"], t["rfc3776_sas"], t["total"]
    );
    match kea.leases() {
        Ok(l) => {
            for l in l.iter().filter(|l| l.address == hoa) {
                println!(
                    "Kea's lease     {} to DUID {} (valid {} s)",
                    l.address, l.duid, l.valid_lifetime
                );
            }
        }
        Err(e) => eprintln!("reading Kea's lease file: {e}"),
    }
    println!(
        "\n$ mip6-mn status\n{}",
        status(&bin("mip6-mn"), &mn, false).unwrap_or_default()
    );
    std::thread::sleep(Duration::from_millis(1100));
    println!(
        "$ mip6-ha status\n{}",
        status(&bin("mip6-ha"), &ha, false).unwrap_or_default()
    );
    match lab.ping(Node::Dhcp, None, hoa) {
        Ok(()) => {
            println!("home-link host {HOME_HOST} reaches the home address {hoa} through the tunnel")
        }
        Err(e) => {
            eprintln!("ping failed: {e}");
            std::process::exit(1);
        }
    }
    println!(
        "\ntearing down (SIGTERM: Delete notifications, addresses, routes and TUN devices removed)"
    );
}
