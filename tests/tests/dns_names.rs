//! The mobile node's name in DNS and finding the home agent by DNS (issue 8; draft §1, §5;
//! RFC 5026 §5, §6), with `mip6-ha`, `mip6-mn`, Kea and BIND 9.18 in the namespace lab:
//!
//! * the home agent, asked by the DNS Update option of the Binding Update, puts the node's AAAA
//!   into BIND (TSIG hmac-sha256) and takes it out at deregistration;
//! * with a wrong TSIG key BIND refuses (BADSIG), the home agent logs it and answers "DNS
//!   Update Failed" in the Binding Acknowledgement, and the bootstrap completes all the same;
//!   a name the identity may not use is refused by the home agent itself;
//! * with Kea + kea-dhcp-ddns and the Client FQDN option, BIND serves the AAAA of the
//!   DHCPv6-leased home address, and the node reports Kea's flags;
//! * `home_agent = "<domain>"` with SRV records for two home agents: the node bootstraps with
//!   the first, and with the second when the first does not answer.

use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use interop_tests::daemons::{
    ha_bin, home_address_of, mn_bin, sigterm_and_wait, start_daemon, start_ha, wait_ready,
    wait_status,
};
use testlab::{
    Bind, BindOptions, HA_HOME, HA_INET, HOME_HOST, HOME_REVERSE_ZONE, Kea, KeaDdns,
    KeaDdnsOptions, KeaOptions, Lab, MN_COA, Node,
};

const PSK: &str = "dns-lab-psk-0123456789";
const KEY: &str = "mip6-ha";
/// 32 octets, base64.
const SECRET: &str = "bWlwNi1oYS1kbnMtbGFiLXRzaWctc2VjcmV0LTMyYg==";
const WRONG_SECRET: &str = "d3Jvbmctc2VjcmV0LXdyb25nLXNlY3JldC0zMmJ5dGU=";
const FQDN: &str = "mn1.example.";

/// `ha.toml` with `[dns_update]` using `secret`, mn1 allowed `fqdn`.
fn ha_config(dir: &Path, dns_update: &str, peer_extra: &str) -> PathBuf {
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
servers = ["{HOME_HOST}"]
[bindings]
max_lifetime = 60
[ike]
identity = "ha.example.com"
proposals = ["aes128-sha256-ecp256"]
esp_proposals = ["aes128gcm16"]
{dns_update}
[[peers]]
identity = "mn1@example.com"
psk = "{PSK}"
{peer_extra}
"#,
            sock = dir.join("ha.sock").display()
        ),
    )
    .expect("ha.toml");
    p
}

fn dns_update_section(secret: &str) -> String {
    format!(
        "[dns_update]\nserver = \"{HOME_HOST}\"\nzone = \"example.\"\nkey_name = \"{KEY}\"\nkey_algorithm = \"hmac-sha256\"\nkey_secret = \"{secret}\"\n"
    )
}

/// `mn.toml` in `dir/<name>/` with top-level `extra`.
fn mn_config(dir: &Path, name: &str, extra: &str) -> PathBuf {
    let d = dir.join(name);
    std::fs::create_dir_all(&d).expect("mn dir");
    let p = d.join("mn.toml");
    std::fs::write(
        &p,
        format!(
            r#"care_of_address = "{MN_COA}"
address_source = "dhcpv6"
state_dir = "{state}"
control_socket = "{sock}"
binding_lifetime = 60
{extra}
[ike]
identity = "mn1@example.com"
remote_identity = "ha.example.com"
psk = "{PSK}"
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

fn bind_with_key(lab: &Lab) -> Bind {
    Bind::start(
        lab,
        BindOptions::new("example.")
            .key(KEY, "hmac-sha256", SECRET)
            .grant(KEY, "zonesub", "AAAA"),
    )
    .expect("bind")
}

/// Polls `f` every 20 ms until it holds or `timeout` passes.
fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The binding's DNS Update status in the node's status, once it has one.
fn binding_dns_status(mn_conf: &Path, procs: &[&testlab::Proc]) -> String {
    let st = interop_tests::daemons::wait_status_for(
        mn_bin(),
        mn_conf,
        "the DNS Update answer",
        Duration::from_secs(20),
        |v| v["binding"]["dns_update"].is_string(),
        procs,
    );
    st["binding"]["dns_update"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// The home agent keeps the node's AAAA in BIND while the binding lives.
#[test]
fn home_agent_keeps_the_name_while_the_binding_lives() {
    let lab = Lab::new("dns_ha_update").expect("lab");
    let _kea = Kea::start(&lab, KeaOptions::new().rapid_commit(true)).expect("kea");
    let bind = bind_with_key(&lab);
    let ha_conf = ha_config(
        lab.dir(),
        &dns_update_section(SECRET),
        &format!("fqdn = \"{FQDN}\""),
    );
    let mut ha = start_ha(&lab, &ha_conf);
    let mn_conf = mn_config(
        lab.dir(),
        "mn1",
        &format!("home_agent = \"{HA_INET}\"\nfqdn = \"{FQDN}\"\nfqdn_update = \"home_agent\""),
    );
    let mut mn = start_daemon(&lab, Node::Mn, mn_bin(), &mn_conf, "mip6-mn");
    let st = wait_ready(&mn_conf, &[&mn, &ha]);
    let hoa = home_address_of(&st);
    assert_eq!(
        binding_dns_status(&mn_conf, &[&mn, &ha]),
        "DNS update performed"
    );
    assert_eq!(
        bind.query(&lab, FQDN, "AAAA").expect("dig"),
        [hoa.to_string()],
        "{}",
        bind.log()
    );
    let hs = wait_status(
        ha_bin(),
        &ha_conf,
        "the DNS counter",
        |v| v["counters"]["dns_updated"] == 1,
        &[&ha],
    );
    assert_eq!(hs["counters"]["dns_failed"], 0, "{hs:#}");
    // Deregistration (SIGTERM) takes the name out.
    sigterm_and_wait(&mut mn);
    assert!(
        eventually(Duration::from_secs(5), || bind
            .query(&lab, FQDN, "AAAA")
            .is_ok_and(|a| a.is_empty())),
        "the AAAA is still there after deregistration\n{}",
        ha.log()
    );
    assert!(ha.log().contains("DNS: AAAA removed"), "{}", ha.log());
    sigterm_and_wait(&mut ha);
}

/// A wrong TSIG key: BIND refuses with BADSIG, the home agent logs why and answers "DNS Update
/// Failed", and the node is ready all the same. A name outside the identity's rule is refused
/// by the home agent before any UPDATE.
#[test]
fn wrong_key_and_foreign_name_are_refused_but_the_bootstrap_completes() {
    let lab = Lab::new("dns_ha_refused").expect("lab");
    let _kea = Kea::start(&lab, KeaOptions::new().rapid_commit(true)).expect("kea");
    let bind = bind_with_key(&lab);
    let ha_conf = ha_config(
        lab.dir(),
        &dns_update_section(WRONG_SECRET),
        "fqdn_suffix = \"mn.example.\"",
    );
    let mut ha = start_ha(&lab, &ha_conf);
    // mn.example. is the rule: mn1.mn.example. is allowed (and refused by BIND's key check).
    let mn_conf = mn_config(
        lab.dir(),
        "mn1",
        &format!(
            "home_agent = \"{HA_INET}\"\nfqdn = \"mn1.mn.example.\"\nfqdn_update = \"home_agent\""
        ),
    );
    let mut mn = start_daemon(&lab, Node::Mn, mn_bin(), &mn_conf, "mip6-mn");
    let st = wait_ready(&mn_conf, &[&mn, &ha]);
    assert!(st["binding"].is_object(), "{st:#}");
    assert_eq!(
        binding_dns_status(&mn_conf, &[&mn, &ha]),
        "DNS Update Failed"
    );
    let log = ha.log();
    assert!(
        log.contains("DNS update refused or unanswered") && log.contains("BADSIG"),
        "the HA logs BIND's reason:\n{log}"
    );
    assert!(
        bind.query(&lab, "mn1.mn.example.", "AAAA")
            .expect("dig")
            .is_empty()
    );
    sigterm_and_wait(&mut mn);

    // A name outside fqdn_suffix: refused by the home agent (status 129), BIND never asked.
    let mn2_conf = mn_config(
        lab.dir(),
        "mn2",
        &format!("home_agent = \"{HA_INET}\"\nfqdn = \"{FQDN}\"\nfqdn_update = \"home_agent\""),
    );
    let mut mn2 = start_daemon(&lab, Node::Mn, mn_bin(), &mn2_conf, "mip6-mn2");
    wait_ready(&mn2_conf, &[&mn2, &ha]);
    assert_eq!(
        binding_dns_status(&mn2_conf, &[&mn2, &ha]),
        "Administratively prohibited"
    );
    assert!(
        ha.log().contains("not one this identity may use"),
        "{}",
        ha.log()
    );
    sigterm_and_wait(&mut mn2);
    sigterm_and_wait(&mut ha);
}

/// Kea + kea-dhcp-ddns: the node's Client FQDN option makes Kea put the AAAA of the leased home
/// address into BIND; the node reports Kea's answer (S=1).
#[test]
fn kea_ddns_names_the_dhcpv6_home_address() {
    let lab = Lab::new("dns_kea_ddns").expect("lab");
    let bind = Bind::start(
        &lab,
        BindOptions::new("example.")
            .key(KEY, "hmac-sha256", SECRET)
            .grant(KEY, "zonesub", "AAAA DHCID")
            .zone(HOME_REVERSE_ZONE, &[], &[(KEY, "zonesub", "PTR DHCID")]),
    )
    .expect("bind");
    let _d2 = KeaDdns::start(&lab, KeaDdnsOptions::new(KEY, SECRET)).expect("kea-dhcp-ddns");
    let _kea =
        Kea::start(&lab, KeaOptions::new().rapid_commit(true).ddns("example.")).expect("kea");
    let ha_conf = ha_config(lab.dir(), "", "");
    let mut ha = start_ha(&lab, &ha_conf);
    let mn_conf = mn_config(
        lab.dir(),
        "mn1",
        &format!("home_agent = \"{HA_INET}\"\nfqdn = \"{FQDN}\"\nfqdn_update = \"dhcpv6\""),
    );
    let mut mn = start_daemon(&lab, Node::Mn, mn_bin(), &mn_conf, "mip6-mn");
    let st = wait_ready(&mn_conf, &[&mn, &ha]);
    let hoa = home_address_of(&st);
    let f = &st["dhcpv6_fqdn"];
    assert_eq!(f["name"], FQDN, "{st:#}");
    assert_eq!(
        (f["s"].as_bool(), f["o"].as_bool(), f["n"].as_bool()),
        (Some(true), Some(false), Some(false)),
        "{st:#}"
    );
    assert!(
        eventually(Duration::from_secs(5), || bind
            .query(&lab, FQDN, "AAAA")
            .is_ok_and(|a| a == [hoa.to_string()])),
        "BIND does not serve {FQDN} AAAA {hoa}\n{}",
        bind.log()
    );
    sigterm_and_wait(&mut mn);
    sigterm_and_wait(&mut ha);
}

/// `home_agent = "<domain>"`: SRV `_mip6._ipv6.<domain>` lists two home agents. With the
/// working one first the node uses it at once; with an unreachable one first it moves on to
/// the second after `home_agent_timeout`.
#[test]
fn home_agent_found_by_srv_and_the_next_one_tried() {
    let lab = Lab::new("dns_discovery").expect("lab");
    let _kea = Kea::start(&lab, KeaOptions::new().rapid_commit(true)).expect("kea");
    // 2001:db8:ff::99 is on the mobile node's link but nobody has it: it never answers.
    let dead: Ipv6Addr = "2001:db8:ff::99".parse().expect("addr");
    let _bind = Bind::start(
        &lab,
        BindOptions::new("example.")
            .record(&format!("ha 300 IN AAAA {HA_INET}"))
            .record(&format!("dead 300 IN AAAA {dead}"))
            .record("_mip6._ipv6.first 300 IN SRV 10 1 0 ha.example.")
            .record("_mip6._ipv6.first 300 IN SRV 20 1 0 dead.example.")
            .record("_mip6._ipv6.second 300 IN SRV 10 1 0 dead.example.")
            .record("_mip6._ipv6.second 300 IN SRV 20 1 0 ha.example."),
    )
    .expect("bind");
    // The node asks BIND on the home-link host through the home agent's routing.
    lab.route(Node::Mn, &format!("{HOME_HOST}/128"), HA_INET)
        .expect("route to the name server");
    lab.route(Node::Dhcp, "2001:db8:ff::/64", HA_HOME)
        .expect("route back");
    let ha_conf = ha_config(lab.dir(), "", "");
    let mut ha = start_ha(&lab, &ha_conf);
    for (domain, expect_tried) in [("first.example.", 0), ("second.example.", 1)] {
        let mn_conf = mn_config(
            lab.dir(),
            domain.trim_end_matches('.'),
            &format!(
                "home_agent = \"{domain}\"\ndns_servers = [\"{HOME_HOST}\"]\nhome_agent_timeout = 2"
            ),
        );
        let log_name = format!("mip6-mn-{}", domain.trim_end_matches('.'));
        let mut mn = start_daemon(&lab, Node::Mn, mn_bin(), &mn_conf, &log_name);
        let st = wait_ready(&mn_conf, &[&mn, &ha]);
        assert_eq!(st["home_agent"], HA_INET.to_string(), "{domain}: {st:#}");
        let found: Vec<&str> = st["home_agents"]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
            .unwrap_or_default();
        let expected = if expect_tried == 0 {
            vec![HA_INET.to_string(), dead.to_string()]
        } else {
            vec![dead.to_string(), HA_INET.to_string()]
        };
        assert_eq!(found, expected, "{domain}: SRV order: {st:#}");
        let tried_dead = mn.log().contains("trying the next home agent");
        assert_eq!(
            tried_dead,
            expect_tried == 1,
            "{domain}: failover\n{}",
            mn.log()
        );
        sigterm_and_wait(&mut mn);
    }
    sigterm_and_wait(&mut ha);
}
