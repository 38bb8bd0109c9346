//! Home registration of issue 5 in the namespace lab with Kea (RFC 6275 §10.3, §11.7 over the
//! RFC 3776 SAs): after the bootstrap, `mip6-mn`'s Binding Update (Home Address option, then
//! transport-mode ESP) is read by `mip6-ha` before the kernel drops it, the binding is created
//! and acknowledged (type 2 Routing header, read by the node the same way), the home address is
//! forwarded only from then on, the binding is refreshed before it expires, and removed at
//! deregistration. A Mobility Header without ESP is dropped and logged.

use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use interop_tests::daemons::{
    ha_bin, mn_bin, sigterm_and_wait, start_daemon, status, wait_status, workspace_bin,
};
use mip6::{BindingUpdate, BuFlags, Message, build_bu_packet};
use serde_json::Value;
use testlab::{HA_HOME, HA_INET, HOME_HOST, Kea, KeaOptions, Lab, MN_COA, Node};

const PSK: &str = "registration-lab-psk-0123456789";

fn ha_config(dir: &Path, max_lifetime: u64) -> PathBuf {
    let p = dir.join("ha.toml");
    std::fs::write(
        &p,
        format!(
            r#"listen = ["{HA_INET}"]
control_socket = "{sock}"
[home_link]
interface = "ha-home"
address = "{HA_HOME}"
prefix = "2001:db8:1::/64"
[dhcpv6]
servers = ["2001:db8:1::2"]
[bindings]
max_lifetime = {max_lifetime}
[ike]
identity = "ha.example.com"
proposals = ["aes128-sha256-ecp256"]
esp_proposals = ["aes128gcm16"]
[[peers]]
identity = "mn1@example.com"
psk = "{PSK}"
"#,
            sock = dir.join("ha.sock").display()
        ),
    )
    .expect("ha.toml");
    p
}

fn mn_config(dir: &Path) -> PathBuf {
    let p = dir.join("mn.toml");
    std::fs::write(
        &p,
        format!(
            r#"home_agent = "{HA_INET}"
care_of_address = "{MN_COA}"
address_source = "dhcpv6"
state_dir = "{state}"
control_socket = "{sock}"
[ike]
identity = "mn1@example.com"
remote_identity = "ha.example.com"
psk = "{PSK}"
proposals = ["aes128-sha256-ecp256"]
esp_proposals = ["aes128gcm16"]
"#,
            state = dir.join("mn-state").display(),
            sock = dir.join("mn.sock").display()
        ),
    )
    .expect("mn.toml");
    p
}

/// The first line of `log` containing `needle`, by position.
fn line_of(log: &str, needle: &str) -> Option<usize> {
    log.lines().position(|l| l.contains(needle))
}

fn binding(v: &Value) -> Option<&Value> {
    v["bindings"].as_array().and_then(|b| b.first())
}

#[test]
fn binding_created_refreshed_and_removed_and_forwarding_follows_it() {
    let lab = Lab::new("registration").expect("lab");
    let _kea = Kea::start(&lab, KeaOptions::new().rapid_commit(true)).expect("kea");
    // The HA grants at most 8 s: the node must refresh every 6 s or so.
    let ha_conf = ha_config(lab.dir(), 8);
    let mut ha = start_daemon(&lab, Node::Ha, ha_bin(), &ha_conf, "mip6-ha");
    wait_status(ha_bin(), &ha_conf, "the HA", |_| true, &[&ha]);
    let mn_conf = mn_config(lab.dir());
    let mut mn = start_daemon(&lab, Node::Mn, mn_bin(), &mn_conf, "mip6-mn");
    let st = wait_status(
        mn_bin(),
        &mn_conf,
        "registered",
        |v| v["binding"]["state"] == "registered",
        &[&mn, &ha],
    );
    eprintln!("mip6-mn: {st:#}");
    let hoa: Ipv6Addr = st["home_address"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("home address");
    assert!(st["binding"]["lifetime_left"].as_u64() <= Some(8), "{st:#}");
    assert!(
        st["binding"]["last_status"]
            .as_str()
            .is_some_and(|s| s.starts_with("0 ")),
        "{st:#}"
    );
    let hs = wait_status(
        ha_bin(),
        &ha_conf,
        "the binding at the HA",
        |v| binding(v).is_some(),
        &[&ha],
    );
    let b = binding(&hs).expect("binding");
    assert_eq!(b["home_address"], hoa.to_string(), "{hs:#}");
    assert_eq!(b["care_of_address"], MN_COA.to_string(), "{hs:#}");
    assert_eq!(b["identity"], "mn1@example.com", "{hs:#}");
    assert_eq!(b["lifetime"], 8, "{hs:#}");
    assert!(b["lifetime_left"].as_u64() <= Some(8), "{hs:#}");
    assert!(hs["counters"]["bu_accepted"].as_u64() >= Some(1), "{hs:#}");

    // Forwarding follows the binding: the route appears after the Binding Update was
    // accepted, not when the SAs came up.
    let log = ha.log();
    let created = line_of(&log, "binding created").expect("binding created in the log");
    let routed = line_of(&log, "home address reachable through the tunnel").expect("routed");
    assert!(created < routed, "routed before the binding:\n{log}");
    lab.ping(Node::Dhcp, None, hoa)
        .expect("home-link host -> home address");
    lab.ping(Node::Mn, Some(hoa), HOME_HOST)
        .expect("home address -> home-link host");

    // Refreshed before it expires: the binding outlives its 8 s lifetime with a newer
    // sequence number.
    let seq = b["sequence"].as_u64().expect("sequence");
    std::thread::sleep(Duration::from_secs(10));
    let hs = status(ha_bin(), &ha_conf).expect("status");
    let b = binding(&hs).unwrap_or_else(|| panic!("binding gone after 10 s: {hs:#}"));
    assert_ne!(b["sequence"].as_u64(), Some(seq), "not refreshed: {hs:#}");
    assert_eq!(hs["counters"]["bindings_expired"], 0, "{hs:#}");

    // A Mobility Header without ESP (a Binding Update behind a Home Address option, sent in
    // the clear from the care-of address): dropped and logged; the binding is untouched.
    let mut mh = Vec::new();
    Message::BindingUpdate(BindingUpdate {
        sequence: 1,
        flags: BuFlags::ACK | BuFlags::HOME,
        lifetime: 0,
        options: Vec::new(),
    })
    .emit(hoa, HA_INET, &mut mh)
    .expect("emit");
    let mut packet = Vec::new();
    build_bu_packet(MN_COA, HA_INET, hoa, &mh, &mut packet).expect("packet");
    let hex: String = packet.iter().map(|b| format!("{b:02x}")).collect();
    let out = lab
        .exec_ok(
            Node::Mn,
            workspace_bin("udp-send"),
            ["--raw", "--to", &HA_INET.to_string(), &hex],
        )
        .expect("udp-send --raw");
    assert!(out.contains("sent 1"), "{out}");
    let hs = wait_status(
        ha_bin(),
        &ha_conf,
        "the clear-text Binding Update dropped",
        |v| v["counters"]["mh_captured_ignored"].as_u64() >= Some(1),
        &[&ha],
    );
    assert!(
        binding(&hs).is_some(),
        "a clear-text BU removed the binding: {hs:#}"
    );
    assert!(
        ha.log().contains("Mobile IPv6 packet without ESP; dropped"),
        "not logged"
    );

    // Deregistration at shutdown: the binding and the route go, before the SAs.
    sigterm_and_wait(&mut mn);
    let hs = wait_status(
        ha_bin(),
        &ha_conf,
        "the binding removed",
        |v| v["bindings"].as_array().is_some_and(Vec::is_empty),
        &[&ha],
    );
    let log = ha.log();
    let dereg = line_of(&log, "binding deleted (deregistration)")
        .unwrap_or_else(|| panic!("no deregistration:\n{log}"));
    let unrouted =
        line_of(&log, "home address no longer routed").expect("route removed in the log");
    assert!(dereg < unrouted, "{log}");
    assert!(hs["counters"]["bu_accepted"].as_u64() >= Some(3), "{hs:#}");
    let routes = lab
        .exec_ok(Node::Ha, "ip", ["-6", "route", "show"])
        .expect("routes");
    assert!(!routes.contains(&hoa.to_string()), "route left: {routes}");
    sigterm_and_wait(&mut ha);
}
