//! `demo`: the bootstrap demo in network namespaces. Builds the lab of `testlab` (a mobile
//! node on a foreign link, the home agent, a host on the home link), starts `mip6-ha` and
//! `mip6-mn` with the example configurations of `config/` (static home address until the
//! DHCPv6 bootstrap lands), waits until the node is ready, prints both daemons' `status`,
//! pings the node's home address from the home-link host, and tears everything down.
//!
//! ```text
//! bash scripts/demo.sh        # installs the packages, builds, runs this as root
//! ```

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use testlab::{HA_HOME, HA_INET, HOME_HOST, Lab, MN_COA, Node, Spawn};

const HOA: &str = "2001:db8:1::1000";

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
    for (src, dst, sock) in [
        ("ha-static.toml", &ha, "ha.sock"),
        ("mn-static.toml", &mn, "mn.sock"),
    ] {
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
    println!(
        "$ mip6-mn status\n{}",
        status(&bin("mip6-mn"), &mn, false).unwrap_or_default()
    );
    std::thread::sleep(Duration::from_millis(1100));
    println!(
        "$ mip6-ha status\n{}",
        status(&bin("mip6-ha"), &ha, false).unwrap_or_default()
    );
    let hoa = HOA.parse().expect("hoa");
    match lab.ping(Node::Dhcp, None, hoa) {
        Ok(()) => {
            println!("home-link host {HOME_HOST} reaches the home address {HOA} through the tunnel")
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
