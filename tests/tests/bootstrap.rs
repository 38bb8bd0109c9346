//! The bootstrap of issue 4 in the namespace lab, against Kea on the home link
//! (draft-devarapalli-mip6-ikev1-bootstrap §3–§4): `mip6-mn` gets its home address from Kea
//! through `mip6-ha`'s relay (or, as the fallback, by Mode Config with the address leased from
//! the same Kea on its behalf), then the RFC 3776 SAs; `mip6-ha` admits Quick Modes only for
//! the address leased to that identity.

use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use interop_tests::daemons::{
    ha_bin, home_address_of, mn_bin, sigterm_and_wait, start_daemon, start_ha, status, wait_ready,
    wait_status, wait_status_for,
};
use serde_json::Value;
use testlab::swanctl::{Auth, Child, Connection, Secret, Swanctl};
use testlab::{
    Charon, CharonOptions, HA_HOME, HA_INET, HOME_HOST, Kea, KeaOptions, Lab, MN_COA, Node,
};

const PSK1: &str = "bootstrap-lab-psk-mn1-0123456789";
const PSK2: &str = "bootstrap-lab-psk-mn2-0123456789";
const PSK3: &str = "bootstrap-lab-psk-mn3-0123456789";
/// mn3's static home address.
const MN3_HOA: &str = "2001:db8:1::7";

/// Kea with Rapid Commit and short timers: T1 4 s, T2 6 s, valid 30 s.
fn kea(lab: &Lab) -> Kea {
    Kea::start(lab, kea_options()).expect("kea")
}

fn kea_options() -> KeaOptions {
    KeaOptions::new().rapid_commit(true).subnet_extra(
        r#""renew-timer": 4, "rebind-timer": 6, "preferred-lifetime": 20, "valid-lifetime": 30"#,
    )
}

/// `ha.toml`: relay on or off, Mode Config from DHCPv6, peers mn1 and mn2 without static
/// addresses, mn3 with the static [`MN3_HOA`].
fn ha_config(dir: &Path, relay: bool) -> PathBuf {
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
relay = {relay}
[modecfg]
source = "dhcpv6"
dns = ["2001:db8:1::53"]
[ike]
identity = "ha.example.com"
proposals = ["aes128-sha256-ecp256", "aes128-sha256-modp2048"]
esp_proposals = ["aes128gcm16", "aes128-sha256"]
[[peers]]
identity = "mn1@example.com"
psk = "{PSK1}"
[[peers]]
identity = "mn2@example.com"
psk = "{PSK2}"
[[peers]]
identity = "mn3@example.com"
psk = "{PSK3}"
home_address = "{MN3_HOA}"
"#,
            sock = dir.join("ha.sock").display()
        ),
    )
    .expect("ha.toml");
    p
}

/// `mn.toml` for `identity` in `dir/<name>/`; `extra` holds further top-level keys.
fn mn_config(dir: &Path, name: &str, identity: &str, psk: &str, extra: &str) -> PathBuf {
    let d = dir.join(name);
    std::fs::create_dir_all(&d).expect("mn dir");
    let p = d.join("mn.toml");
    std::fs::write(
        &p,
        format!(
            r#"home_agent = "{HA_INET}"
care_of_address = "{MN_COA}"
state_dir = "{state}"
control_socket = "{sock}"
{extra}
[ike]
identity = "{identity}"
remote_identity = "ha.example.com"
psk = "{psk}"
proposals = ["aes128-sha256-ecp256"]
esp_proposals = ["aes128gcm16"]
"#,
            state = d.join("state").display(),
            sock = d.join("mn.sock").display()
        ),
    )
    .expect("mn.toml");
    p
}

/// The DUID the node keeps in its state directory, as Kea writes DUIDs (`00:04:…`).
fn state_duid(config: &Path) -> String {
    let path = config.parent().expect("dir").join("state").join("duid");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let duid = dhcp6_client::duid_from_state(&bytes).expect("DUID state");
    duid.as_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn config_dir_has_duid(config: &Path) -> bool {
    config
        .parent()
        .expect("dir")
        .join("state")
        .join("duid")
        .exists()
}

/// Kea's current lease of `address`.
fn kea_lease(kea: &Kea, address: Ipv6Addr) -> testlab::Lease6 {
    kea.leases()
        .expect("leases")
        .into_iter()
        .find(|l| l.address == address && l.valid_lifetime > 0)
        .unwrap_or_else(|| panic!("Kea has no lease of {address}:\n{}", kea.log()))
}

/// The RFC 3776 SAs in a node's status: transport for the Mobility Header between the home
/// address and the home agent, tunnel for the home address and anything — and no initial
/// DHCPv6 tunnel left.
fn assert_rfc3776_sas(st: &Value, hoa: Ipv6Addr) {
    let sas = st["child_sas"].as_array().expect("child_sas");
    assert_eq!(sas.len(), 2, "{st:#}");
    let transport = sas
        .iter()
        .find(|c| c["mode"] == "transport")
        .unwrap_or_else(|| panic!("no transport SA: {st:#}"));
    assert_eq!(transport["local_ts"], format!("{hoa}/128[135/0]"), "{st:#}");
    assert_eq!(
        transport["remote_ts"],
        format!("{HA_INET}/128[135/0]"),
        "{st:#}"
    );
    let tunnel = sas
        .iter()
        .find(|c| c["mode"] == "tunnel")
        .unwrap_or_else(|| panic!("no tunnel SA: {st:#}"));
    assert_eq!(tunnel["local_ts"], format!("{hoa}/128"), "{st:#}");
    assert_eq!(tunnel["remote_ts"], "::/0", "{st:#}");
}

/// (a) DHCPv6 path, (e) Renew through the tunnel, (d) a restarted node gets its address back.
#[test]
fn dhcpv6_through_the_relay_then_renew_and_restart() {
    let lab = Lab::new("boot_dhcpv6").expect("lab");
    let kea = kea(&lab);
    let ha_conf = ha_config(lab.dir(), true);
    let mut ha = start_ha(&lab, &ha_conf);
    let mn_conf = mn_config(
        lab.dir(),
        "mn1",
        "mn1@example.com",
        PSK1,
        "address_source = \"auto\"\ndhcpv6_timeout = 10",
    );
    let mut mn = start_daemon(&lab, Node::Mn, mn_bin(), &mn_conf, "mip6-mn");
    let st = wait_ready(&mn_conf, &[&mn, &ha]);
    eprintln!("mip6-mn: {st:#}");
    assert_eq!(st["address_source"], "dhcpv6", "{st:#}");
    let hoa = home_address_of(&st);
    for k in [
        "phase1",
        "initial_tunnel",
        "address",
        "rfc3776_sas",
        "total",
    ] {
        assert!(st["timings_ms"][k].is_u64(), "timings_ms.{k}: {st:#}");
    }
    // (a) The address is Kea's lease for the node's DUID.
    let lease = kea_lease(&kea, hoa);
    assert_eq!(lease.duid, state_duid(&mn_conf), "lease {lease:?}");
    assert_rfc3776_sas(&st, hoa);
    let hs = wait_status(
        ha_bin(),
        &ha_conf,
        "the peer with its RFC 3776 SAs",
        |v| {
            v["peers"][0]["child_sas"]
                .as_array()
                .is_some_and(|c| c.len() == 2)
        },
        &[&ha],
    );
    let peer = &hs["peers"][0];
    assert_eq!(peer["identity"], "mn1@example.com", "{hs:#}");
    assert_eq!(peer["home_address"], hoa.to_string(), "{hs:#}");
    assert_eq!(peer["address_source"], "dhcpv6", "{hs:#}");
    lab.ping(Node::Dhcp, None, hoa)
        .expect("home-link host -> home address");
    lab.ping(Node::Mn, Some(hoa), HOME_HOST)
        .expect("home address -> home-link host");

    // (e) T1 is 4 s: the node renews through the tunnel, Kea extends the lease.
    let first_expire = lease.expire;
    let relayed = hs["counters"]["dhcpv6_relayed_up"]
        .as_u64()
        .expect("counter");
    let hs = wait_status_for(
        ha_bin(),
        &ha_conf,
        "a Renew relayed",
        Duration::from_secs(15),
        |v| v["counters"]["dhcpv6_relayed_up"].as_u64() > Some(relayed),
        &[&ha, &mn],
    );
    std::thread::sleep(Duration::from_millis(500));
    let renewed = kea_lease(&kea, hoa);
    assert!(
        renewed.expire > first_expire,
        "lease not extended: {first_expire} -> {}\n{hs:#}\n{}",
        renewed.expire,
        kea.log()
    );
    let st = status(mn_bin(), &mn_conf).expect("status");
    assert_eq!(st["state"], "ready", "{st:#}");
    assert_eq!(home_address_of(&st), hoa);

    // (d) Restart: the node releases its lease at SIGTERM and gets the same address back.
    sigterm_and_wait(&mut mn);
    let mut mn = start_daemon(&lab, Node::Mn, mn_bin(), &mn_conf, "mip6-mn-2");
    let st = wait_ready(&mn_conf, &[&mn, &ha]);
    assert_eq!(home_address_of(&st), hoa, "{st:#}");
    assert_eq!(st["address_source"], "dhcpv6");
    lab.ping(Node::Dhcp, None, hoa)
        .expect("home-link host -> home address after the restart");
    sigterm_and_wait(&mut mn);
    sigterm_and_wait(&mut ha);
}

/// (b) With the relay off, `auto` falls back to Mode Config and the address again comes from
/// Kea (leased by the HA on the node's behalf); (c) a node proposing another node's home
/// address is refused.
#[test]
fn mode_config_fallback_and_foreign_address_refused() {
    let lab = Lab::new("boot_modecfg").expect("lab");
    let kea = kea(&lab);
    let ha_conf = ha_config(lab.dir(), false);
    let mut ha = start_ha(&lab, &ha_conf);
    let mn_conf = mn_config(
        lab.dir(),
        "mn1",
        "mn1@example.com",
        PSK1,
        "address_source = \"auto\"\ndhcpv6_timeout = 5",
    );
    let mut mn = start_daemon(&lab, Node::Mn, mn_bin(), &mn_conf, "mip6-mn");
    let st = wait_ready(&mn_conf, &[&mn, &ha]);
    eprintln!("mip6-mn: {st:#}");
    assert_eq!(st["address_source"], "modecfg", "{st:#}");
    let hoa = home_address_of(&st);
    assert!(
        st["timings_ms"]["total"].as_u64() < Some(5000),
        "the refused initial tunnel should trigger the fallback at once: {st:#}"
    );
    // Kea leased it, to the DUID the HA uses on mn1's behalf (not the node's own, if it made
    // one before falling back).
    let lease = kea_lease(&kea, hoa);
    if config_dir_has_duid(&mn_conf) {
        assert_ne!(
            lease.duid,
            state_duid(&mn_conf),
            "leased for the HA's proxy DUID"
        );
    }
    assert_rfc3776_sas(&st, hoa);
    let hs = wait_status(
        ha_bin(),
        &ha_conf,
        "the peer",
        |v| v["peers"][0]["address_source"] == "modecfg",
        &[&ha],
    );
    assert_eq!(hs["peers"][0]["home_address"], hoa.to_string(), "{hs:#}");
    lab.ping(Node::Dhcp, None, hoa)
        .expect("home-link host -> home address");

    // (c) mn1 crashes (no Release, no Delete: its IKE SA and lease stay at the HA) and mn2
    // claims mn1's address: refused, and the HA's log says who, what and whose it is.
    mn.kill().expect("kill mn1");
    let mn2_conf = mn_config(
        lab.dir(),
        "mn2",
        "mn2@example.com",
        PSK2,
        &format!("address_source = \"static\"\nhome_address = \"{hoa}\""),
    );
    let mut mn2 = start_daemon(&lab, Node::Mn, mn_bin(), &mn2_conf, "mip6-mn2");
    let st2 = wait_status(
        mn_bin(),
        &mn2_conf,
        "mn2 refused",
        |v| v["state"] == "failed" && v["last_error"].is_string(),
        &[&mn2, &ha],
    );
    eprintln!("mn2: {st2:#}");
    let log = ha.log();
    let needle = format!("{hoa} is leased to mn1@example.com");
    assert!(
        log.lines()
            .any(|l| l.contains("refused") && l.contains("mn2@example.com") && l.contains(&needle)),
        "the HA's log names mn2, {hoa} and its holder:\n{log}"
    );
    sigterm_and_wait(&mut mn2);
    // The HA releases the Mode Config lease it holds for mn1 when it shuts down.
    sigterm_and_wait(&mut ha);
    let released = kea
        .leases()
        .expect("leases")
        .into_iter()
        .find(|l| l.address == hoa)
        .expect("lease row");
    assert_eq!(released.valid_lifetime, 0, "not released: {released:?}");
}

/// (f) With Kea stopped, the node reports failed with a reason and keeps retrying while the HA
/// serves another peer; once Kea is back, the bootstrap completes.
#[test]
fn kea_down_then_back() {
    let lab = Lab::new("boot_kea_down").expect("lab");
    let ha_conf = ha_config(lab.dir(), true);
    let mut ha = start_ha(&lab, &ha_conf);
    let mn_conf = mn_config(
        lab.dir(),
        "mn1",
        "mn1@example.com",
        PSK1,
        "address_source = \"dhcpv6\"\ndhcpv6_timeout = 2",
    );
    let mut mn = start_daemon(&lab, Node::Mn, mn_bin(), &mn_conf, "mip6-mn");
    let st = wait_status(
        mn_bin(),
        &mn_conf,
        "failed with a reason",
        |v| v["state"] == "failed" && v["last_error"].is_string(),
        &[&mn, &ha],
    );
    eprintln!("without Kea: {st:#}");
    // The HA keeps serving other peers: charon on the home-link host as mn3, with its static
    // home address, gets its SA.
    lab.route(Node::Dhcp, "2001:db8:ff::/64", HA_HOME)
        .expect("route to the HA");
    // kernel-libipsec installs policies only for a local address.
    lab.exec_ok(
        Node::Dhcp,
        "ip",
        ["-6", "addr", "add", &format!("{MN3_HOA}/128"), "dev", "lo"],
    )
    .expect("mn3's home address on lo");
    let charon = Charon::start(
        &lab,
        Node::Dhcp,
        CharonOptions::new("mn3", charon_static_mn3()),
    )
    .expect("charon");
    let out = charon.initiate("home", "mip6").expect("swanctl --initiate");
    assert!(
        out.contains("initiate completed successfully"),
        "{out}\n{}",
        ha.log()
    );
    let hs = wait_status(
        ha_bin(),
        &ha_conf,
        "mn3 served",
        |v| {
            v["peers"].as_array().is_some_and(|p| {
                p.iter()
                    .any(|p| p["identity"] == "mn3@example.com" && p["home_address"] == MN3_HOA)
            })
        },
        &[&ha],
    );
    eprintln!("HA while Kea is down: {hs:#}");
    let st = status(mn_bin(), &mn_conf).expect("status");
    assert_ne!(st["state"], "ready", "ready without Kea: {st:#}");
    let kea = kea(&lab);
    let st = wait_ready(&mn_conf, &[&mn, &ha]);
    assert_eq!(st["address_source"], "dhcpv6");
    let hoa = home_address_of(&st);
    kea_lease(&kea, hoa);
    lab.ping(Node::Dhcp, None, hoa)
        .expect("home-link host -> home address");
    sigterm_and_wait(&mut mn);
    sigterm_and_wait(&mut ha);
}

/// charon as mn3 with its static home address; its remote selector is a single unused
/// address, so that its kernel-libipsec routes disturb nothing on the home-link host.
fn charon_static_mn3() -> Swanctl {
    Swanctl::new()
        .connection(
            Connection::ikev1("mip6")
                .proposals("aes128-sha256-modp2048")
                .local_addrs(HOME_HOST)
                .remote_addrs(HA_INET)
                .local(Auth::psk().id("mn3@example.com"))
                .remote(Auth::psk().id("ha.example.com"))
                .child(
                    Child::new("home")
                        .local_ts(format!("{MN3_HOA}/128"))
                        .remote_ts("2001:db8:ff::99/128")
                        .esp_proposals("aes128-sha256"),
                ),
        )
        .secret(Secret::ike_psk(PSK3))
}

/// (g) charon as the mobile node (`vips = ::`) gets its address from Kea through Mode Config.
#[test]
fn charon_mobile_node_gets_a_kea_address_by_mode_config() {
    let lab = Lab::new("boot_charon_vip").expect("lab");
    let kea = kea(&lab);
    let ha_conf = ha_config(lab.dir(), true);
    let mut ha = start_ha(&lab, &ha_conf);
    let conf = Swanctl::new()
        .connection(
            Connection::ikev1("mip6")
                .proposals("aes128-sha256-modp2048")
                .local_addrs(MN_COA)
                .remote_addrs(HA_INET)
                .vips("::")
                .local(Auth::psk().id("mn1@example.com"))
                .remote(Auth::psk().id("ha.example.com"))
                .child(
                    Child::new("home")
                        .remote_ts("::/0")
                        .esp_proposals("aes128-sha256"),
                ),
        )
        .secret(Secret::ike_psk(PSK1));
    let charon = Charon::start(&lab, Node::Mn, CharonOptions::new("mn", conf)).expect("charon");
    let out = charon.initiate("home", "mip6").expect("swanctl --initiate");
    assert!(
        out.contains("initiate completed successfully"),
        "{out}\n{}",
        ha.log()
    );
    let sas = charon.list_sas().expect("list-sas");
    let vip = match sas[0].local_vips.first() {
        Some(std::net::IpAddr::V6(a)) => *a,
        _ => panic!("no IPv6 virtual IP: {sas:?}"),
    };
    kea_lease(&kea, vip);
    let hs = wait_status(
        ha_bin(),
        &ha_conf,
        "charon's SA at the HA",
        |v| {
            v["peers"][0]["child_sas"]
                .as_array()
                .is_some_and(|c| !c.is_empty())
        },
        &[&ha],
    );
    assert_eq!(hs["peers"][0]["home_address"], vip.to_string(), "{hs:#}");
    assert_eq!(hs["peers"][0]["address_source"], "modecfg", "{hs:#}");
    lab.ping(Node::Dhcp, None, vip)
        .expect("home-link host -> charon's virtual IP");
    sigterm_and_wait(&mut ha);
}

/// Hostile input to the relay from the home link: a client message, a truncated envelope, a
/// Relay-Repl with an Interface-ID that names no tunnel, one over the hop-count limit and a
/// Relay-Forw are each dropped and counted by reason; the HA keeps running.
#[test]
fn hostile_relay_input_is_dropped_and_counted() {
    let lab = Lab::new("boot_relay_hostile").expect("lab");
    let ha_conf = ha_config(lab.dir(), true);
    let mut ha = start_ha(&lab, &ha_conf);
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let envelope = |msg_type: u8, hop: u8, iid: &[u8]| {
        let mut m = vec![msg_type, hop];
        m.extend_from_slice(&HA_HOME.octets());
        m.extend_from_slice(&"fe80::1".parse::<Ipv6Addr>().expect("ll").octets());
        // Interface-ID (18), then Relay Message (9) holding a Reply.
        m.extend_from_slice(&[0, 18, 0, u8::try_from(iid.len()).expect("len")]);
        m.extend_from_slice(iid);
        m.extend_from_slice(&[0, 9, 0, 4, 7, 1, 2, 3]);
        m
    };
    let solicit = [1u8, 0xab, 0xcd, 0xef, 0, 8, 0, 2, 0, 0];
    let truncated = [13u8, 0, 0x20, 0x01, 0x0d, 0xb8];
    let unknown_iid = envelope(13, 0, &[0x55; 16]);
    let over_limit = envelope(13, 9, &[0x55; 16]);
    let forw = envelope(12, 0, b"eth0");
    let out = lab
        .exec_ok(
            Node::Dhcp,
            interop_tests::daemons::workspace_bin("udp-send"),
            [
                "--from".to_owned(),
                HOME_HOST.to_string(),
                "--to".to_owned(),
                HA_HOME.to_string(),
                "--port".to_owned(),
                "547".to_owned(),
                hex(&solicit),
                hex(&truncated),
                hex(&unknown_iid),
                hex(&over_limit),
                hex(&forw),
            ],
        )
        .expect("udp-send");
    assert!(out.contains("sent 5"), "{out}");
    let hs = wait_status(
        ha_bin(),
        &ha_conf,
        "the drops counted",
        |v| {
            let c = &v["counters"];
            [
                "dhcpv6_dropped_not_relay_repl",
                "dhcpv6_dropped_malformed",
                "dhcpv6_dropped_unknown_interface_id",
                "dhcpv6_dropped_hop_limit",
                "dhcpv6_dropped_relay_forw_from_home_link",
            ]
            .iter()
            .all(|k| c[k] == 1)
        },
        &[&ha],
    );
    assert_eq!(hs["counters"]["dhcpv6_delivered_down"], 0, "{hs:#}");
    sigterm_and_wait(&mut ha);
}
