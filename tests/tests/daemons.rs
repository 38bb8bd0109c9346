//! `mip6-mn` and `mip6-ha` in the namespace lab (issue 3, static addresses): the tunnel comes
//! up, ping6 and TCP pass through it both ways between the mobile node's home address and a
//! host on the home link, `status --json` shows the contract fields, and SIGTERM leaves no
//! address, route or TUN device behind.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use interop_tests::daemons::{
    ha_bin, links, mn_bin, sigterm_and_wait, status, traffic_both_ways, wait_status,
};
use testlab::swanctl::{Auth, Child, Connection, Secret, Swanctl};
use testlab::{Charon, CharonOptions, HA_HOME, HA_INET, Lab, MN_COA, Node, Spawn};

const HOA: &str = "2001:db8:1::1000";
const PSK: &str = "daemon-lab-psk-0123456789";

fn write_configs(dir: &Path, ike: &str, esp: &str) -> (PathBuf, PathBuf) {
    let ha = dir.join("ha.toml");
    let mn = dir.join("mn.toml");
    std::fs::write(
        &ha,
        format!(
            r#"listen = ["{HA_INET}"]
control_socket = "{}"
[home_link]
interface = "ha-home"
address = "{HA_HOME}"
prefix = "2001:db8:1::/64"
[ike]
identity = "ha.example.com"
proposals = ["{ike}"]
esp_proposals = ["{esp}"]
[[peers]]
identity = "mn1@example.com"
psk = "{PSK}"
home_address = "{HOA}"
"#,
            dir.join("ha.sock").display()
        ),
    )
    .expect("ha.toml");
    std::fs::write(
        &mn,
        format!(
            r#"home_agent = "{HA_INET}"
care_of_address = "{MN_COA}"
address_source = "static"
home_address = "{HOA}"
state_dir = "{}"
control_socket = "{}"
[ike]
identity = "mn1@example.com"
remote_identity = "ha.example.com"
psk = "{PSK}"
proposals = ["{ike}"]
esp_proposals = ["{esp}"]
"#,
            dir.join("mn-state").display(),
            dir.join("mn.sock").display()
        ),
    )
    .expect("mn.toml");
    (ha, mn)
}

#[test]
fn static_tunnel_carries_ping_and_tcp_both_ways() {
    let lab = Lab::new("daemons_static").expect("lab");
    let (ha_conf, mn_conf) = write_configs(lab.dir(), "aes128-sha256-ecp256", "aes128gcm16");
    let mut ha = lab
        .spawn(
            Node::Ha,
            Spawn::new(ha_bin())
                .arg("run")
                .arg("--config")
                .arg(&ha_conf)
                .env("RUST_LOG", "debug")
                .log_name("mip6-ha"),
        )
        .expect("mip6-ha");
    wait_status(
        ha_bin(),
        &ha_conf,
        "the HA's control socket",
        |_| true,
        &[&ha],
    );
    let t = Instant::now();
    let mut mn = lab
        .spawn(
            Node::Mn,
            Spawn::new(mn_bin())
                .arg("run")
                .arg("--config")
                .arg(&mn_conf)
                .env("RUST_LOG", "debug")
                .log_name("mip6-mn"),
        )
        .expect("mip6-mn");
    let st = wait_status(
        mn_bin(),
        &mn_conf,
        "ready",
        |v| v["state"] == "ready",
        &[&mn, &ha],
    );
    eprintln!("mip6-mn ready after {:?}: {st:#}", t.elapsed());
    assert_eq!(st["home_address"], HOA);
    assert_eq!(st["address_source"], "static");
    assert_eq!(st["care_of_address"], MN_COA.to_string());
    assert_eq!(st["home_agent"], HA_INET.to_string());
    assert_eq!(st["ike_sa"]["state"], "established");
    assert_eq!(st["ike_sa"]["proposal"], "aes128-sha256-ecp256");
    let child = &st["child_sas"][0];
    assert_eq!(child["mode"], "tunnel");
    assert_eq!(child["local_ts"], format!("{HOA}/128"));
    assert_eq!(child["remote_ts"], "::/0");
    for k in ["phase1", "address", "rfc3776_sas", "total"] {
        assert!(st["timings_ms"][k].is_u64(), "timings_ms.{k}: {st:#}");
    }
    let hs = wait_status(
        ha_bin(),
        &ha_conf,
        "the peer at the HA",
        |v| {
            v["peers"][0]["child_sas"]
                .as_array()
                .is_some_and(|c| !c.is_empty())
        },
        &[&ha],
    );
    let peer = &hs["peers"][0];
    assert_eq!(peer["identity"], "mn1@example.com");
    assert_eq!(peer["home_address"], HOA);
    assert_eq!(peer["care_of_address"], MN_COA.to_string());
    assert_eq!(peer["child_sas"][0]["spi_in"], child["spi_out"]);
    assert_eq!(peer["child_sas"][0]["spi_out"], child["spi_in"]);

    traffic_both_ways(&lab, HOA.parse().expect("hoa"), "mip6-mn <-> mip6-ha");

    // SIGTERM: both exit 0 and leave nothing behind.
    sigterm_and_wait(&mut mn);
    let mn_links = links(&lab, Node::Mn);
    assert!(!mn_links.contains("mip6mn0"), "TUN left behind: {mn_links}");
    let addrs = lab
        .exec_ok(Node::Mn, "ip", ["-6", "-o", "addr", "show"])
        .expect("addr");
    assert!(!addrs.contains(HOA), "home address left behind: {addrs}");
    let routes = lab
        .exec_ok(Node::Mn, "ip", ["-6", "route", "show"])
        .expect("routes");
    assert!(!routes.contains("default"), "route left behind: {routes}");
    // The HA saw the MN's Delete.
    let hs = wait_status(
        ha_bin(),
        &ha_conf,
        "the peer gone",
        |v| v["peers"].as_array().is_some_and(Vec::is_empty),
        &[&ha],
    );
    assert!(hs["counters"]["ike_sa_established"].as_u64() >= Some(1));
    sigterm_and_wait(&mut ha);
    let ha_links = links(&lab, Node::Ha);
    assert!(!ha_links.contains("mip6ha0"), "TUN left behind: {ha_links}");
    let routes = lab
        .exec_ok(Node::Ha, "ip", ["-6", "route", "show"])
        .expect("routes");
    assert!(!routes.contains(HOA), "route left behind: {routes}");
    let neigh = lab
        .exec_ok(Node::Ha, "ip", ["-6", "neigh", "show", "proxy"])
        .expect("neigh");
    assert!(!neigh.contains(HOA), "proxy entry left behind: {neigh}");
    assert!(!lab.dir().join("ha.sock").exists() && !lab.dir().join("mn.sock").exists());
}

/// charon as the mobile node (kernel-libipsec, ESP in UDP) against `mip6-ha`: the home
/// address is a local address of the MN (on `lo`), charon tunnels it to the home prefix.
#[test]
fn charon_mobile_node_against_mip6_ha() {
    let lab = Lab::new("charon_mn_mip6_ha").expect("lab");
    let (ha_conf, _) = write_configs(
        lab.dir(),
        "aes128-sha256-modp2048",
        "aes128-sha256-modp2048",
    );
    let mut ha = lab
        .spawn(
            Node::Ha,
            Spawn::new(ha_bin())
                .arg("run")
                .arg("--config")
                .arg(&ha_conf)
                .env("RUST_LOG", "debug")
                .log_name("mip6-ha"),
        )
        .expect("mip6-ha");
    wait_status(
        ha_bin(),
        &ha_conf,
        "the HA's control socket",
        |_| true,
        &[&ha],
    );
    lab.exec_ok(
        Node::Mn,
        "ip",
        ["-6", "addr", "add", &format!("{HOA}/128"), "dev", "lo"],
    )
    .expect("HoA on lo");
    let conf = Swanctl::new()
        .connection(
            Connection::ikev1("mip6")
                .proposals("aes128-sha256-modp2048")
                .local_addrs(MN_COA)
                .remote_addrs(HA_INET)
                .local(Auth::psk().id("mn1@example.com"))
                .remote(Auth::psk().id("ha.example.com"))
                .child(
                    Child::new("home")
                        .local_ts(format!("{HOA}/128"))
                        .remote_ts("2001:db8:1::/64")
                        .esp_proposals("aes128-sha256-modp2048"),
                ),
        )
        .secret(Secret::ike_psk(PSK));
    let charon = Charon::start(&lab, Node::Mn, CharonOptions::new("mn", conf)).expect("charon");
    let out = charon.initiate("home", "mip6").expect("swanctl --initiate");
    assert!(
        out.contains("initiate completed successfully"),
        "{out}\n{}",
        ha.log()
    );
    let hs = wait_status(
        ha_bin(),
        &ha_conf,
        "the peer and its SA",
        |v| {
            v["peers"][0]["child_sas"]
                .as_array()
                .is_some_and(|c| !c.is_empty())
        },
        &[&ha],
    );
    assert_eq!(hs["peers"][0]["home_address"], HOA);
    let sa = charon.list_sas().expect("list-sas");
    let c = sa[0].child("home").expect("child");
    assert_eq!(
        hs["peers"][0]["child_sas"][0]["spi_in"],
        format!("0x{:08x}", c.spi_out)
    );
    assert_eq!(hs["peers"][0]["child_sas"][0]["protocol"], "esp-in-udp");
    traffic_both_ways(&lab, HOA.parse().expect("hoa"), "charon MN <-> mip6-ha");
    sigterm_and_wait(&mut ha);
    charon
        .wait_for_sas(Duration::from_secs(5), <[testlab::SaInfo]>::is_empty)
        .expect("charon saw our Delete");
}

/// `mip6-mn` against charon as the home agent (kernel-libipsec): the home-link host reaches
/// the home address through a route via the HA (charon does no proxy NDP).
#[test]
fn mip6_mn_against_charon_home_agent() {
    let lab = Lab::new("mip6_mn_charon_ha").expect("lab");
    let (_, mn_conf) = write_configs(lab.dir(), "aes128-sha256-ecp256", "aes128gcm16");
    let conf = Swanctl::new()
        .connection(
            Connection::ikev1("mip6")
                .proposals("aes128-sha256-ecp256")
                .local_addrs(HA_INET)
                .local(Auth::psk().id("ha.example.com"))
                .remote(Auth::psk().id("mn1@example.com"))
                .child(
                    Child::new("home")
                        .local_ts("::/0")
                        .remote_ts(format!("{HOA}/128"))
                        .esp_proposals("aes128gcm16"),
                ),
        )
        .secret(Secret::ike_psk(PSK));
    let charon = Charon::start(&lab, Node::Ha, CharonOptions::new("ha", conf)).expect("charon");
    lab.route(Node::Dhcp, &format!("{HOA}/128"), HA_HOME)
        .expect("route to the HoA via the HA");
    let mut mn = lab
        .spawn(
            Node::Mn,
            Spawn::new(mn_bin())
                .arg("run")
                .arg("--config")
                .arg(&mn_conf)
                .env("RUST_LOG", "debug")
                .log_name("mip6-mn"),
        )
        .expect("mip6-mn");
    let st = wait_status(
        mn_bin(),
        &mn_conf,
        "ready",
        |v| v["state"] == "ready",
        &[&mn],
    );
    let sas = charon
        .wait_for_sas(Duration::from_secs(5), |s| {
            s.iter().any(|sa| sa.child("home").is_some())
        })
        .expect("list-sas");
    let c = sas[0].child("home").expect("child");
    assert_eq!(st["child_sas"][0]["spi_in"], format!("0x{:08x}", c.spi_out));
    assert_eq!(st["child_sas"][0]["spi_out"], format!("0x{:08x}", c.spi_in));
    assert_eq!(c.remote_ts, vec![format!("{HOA}/128")]);
    traffic_both_ways(&lab, HOA.parse().expect("hoa"), "mip6-mn <-> charon HA");
    sigterm_and_wait(&mut mn);
    charon
        .wait_for_sas(Duration::from_secs(5), <[testlab::SaInfo]>::is_empty)
        .expect("charon saw our Delete");
}

/// The HA refuses a tunnel for an address other than the peer's configured `home_address`
/// (RFC 3776 §4), says so in its log and counters, and the MN does not become ready.
#[test]
fn ha_refuses_another_home_address() {
    let lab = Lab::new("daemons_wrong_hoa").expect("lab");
    let (ha_conf, mn_conf) = write_configs(lab.dir(), "aes128-sha256-ecp256", "aes128gcm16");
    let text = std::fs::read_to_string(&mn_conf).expect("mn.toml");
    std::fs::write(&mn_conf, text.replace(HOA, "2001:db8:1::2000")).expect("mn.toml");
    let ha = lab
        .spawn(
            Node::Ha,
            Spawn::new(ha_bin())
                .arg("run")
                .arg("--config")
                .arg(&ha_conf)
                .log_name("mip6-ha"),
        )
        .expect("mip6-ha");
    wait_status(
        ha_bin(),
        &ha_conf,
        "the HA's control socket",
        |_| true,
        &[&ha],
    );
    let mn = lab
        .spawn(
            Node::Mn,
            Spawn::new(mn_bin())
                .arg("run")
                .arg("--config")
                .arg(&mn_conf)
                .log_name("mip6-mn"),
        )
        .expect("mip6-mn");
    let hs = wait_status(
        ha_bin(),
        &ha_conf,
        "a refused Quick Mode",
        |v| v["counters"]["child_sa_failed"].as_u64() >= Some(1),
        &[&ha, &mn],
    );
    assert_eq!(hs["counters"]["child_sa_established"], 0);
    let log = ha.log();
    assert!(
        log.contains("refusing Quick Mode")
            && log.contains("holds 2001:db8:1::1000, not 2001:db8:1::2000/128"),
        "{log}"
    );
    let st = status(mn_bin(), &mn_conf).expect("mn status");
    assert_ne!(st["state"], "ready", "{st:#}");
    let routes = lab
        .exec_ok(Node::Ha, "ip", ["-6", "route", "show"])
        .expect("routes");
    assert!(!routes.contains("2001:db8:1::2000"), "{routes}");
}
