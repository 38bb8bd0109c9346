//! Hybrid authentication and XAUTH checked against RADIUS (issue 7, draft §4), in the namespace
//! lab with Kea and FreeRADIUS 3.2 on the home link:
//!
//! * `mip6-mn` ↔ `mip6-ha` in hybrid mode with XAUTH RADIUS-CHAP: the full bootstrap (DHCPv6
//!   through the relay, the RFC 3776 SAs, the binding), and FreeRADIUS saw CHAP-Password, never
//!   User-Password;
//! * PSK + Generic XAUTH, the home agent turning the password into CHAP toward RADIUS: the same;
//!   a wrong password fails XAUTH, deletes phase 1, leases nothing and the node says why; an
//!   identity bound to another XAUTH user is refused before RADIUS is asked;
//! * interop: charon as a hybrid mobile node (Generic XAUTH) against `mip6-ha`, and `mip6-mn` in
//!   hybrid and PSK+XAUTH mode against charon as the home agent (`xauth-radius`, PAP).

use std::path::{Path, PathBuf};
use std::time::Duration;

use interop_tests::daemons::{
    ha_bin, home_address_of, mn_bin, sigterm_and_wait, start_daemon, start_ha, status, wait_ready,
    wait_status, wait_status_for,
};
use testlab::swanctl::{Auth, Child, Connection, Pool, Secret, Swanctl};
use testlab::{
    Charon, CharonOptions, FreeRadius, FreeRadiusOptions, HA_HOME, HA_INET, HOME_HOST, Kea,
    KeaOptions, Lab, MN_COA, Node,
};

const RADIUS_SECRET: &str = "xauth-lab-radius-secret";
const USER: &str = "mnuser";
const PASSWORD: &str = "mn-xauth-password-1";
const PSK: &str = "xauth-lab-psk-0123456789";

fn testdata(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../crates/daemon/testdata")
        .join(name)
        .display()
        .to_string()
}

fn read_testdata(name: &str) -> String {
    std::fs::read_to_string(testdata(name)).expect("testdata")
}

fn freeradius(lab: &Lab) -> FreeRadius {
    FreeRadius::start(
        lab,
        FreeRadiusOptions::new(RADIUS_SECRET)
            .user(USER, PASSWORD)
            .user("other", "other-password-2")
            .reply_message_authenticator(true),
    )
    .expect("freeradius")
}

fn kea(lab: &Lab) -> Kea {
    Kea::start(lab, KeaOptions::new().rapid_commit(true)).expect("kea")
}

/// `ha.toml` with `[ike]` body `ike` and the `[[peers]]` given, RADIUS on the home-link host.
fn ha_config(dir: &Path, ike: &str, peers: &str) -> PathBuf {
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
[ike]
identity = "ha.example.com"
proposals = ["aes128-sha256-ecp256", "aes128-sha256-modp2048"]
esp_proposals = ["aes128gcm16", "aes128-sha256"]
{ike}
[radius]
servers = ["{HOME_HOST}"]
secret = "{RADIUS_SECRET}"
timeout = 3
{peers}"#,
            sock = dir.join("ha.sock").display()
        ),
    )
    .expect("ha.toml");
    p
}

fn hybrid_ha_ike() -> String {
    format!(
        "auth = \"hybrid\"\ncertificate = \"{}\"\nprivate_key = \"{}\"\n",
        testdata("ha-cert.pem"),
        testdata("rsa2048-pkcs8.pem")
    )
}

/// `mn.toml` in `dir/<name>/` with `[ike]` credentials `creds` and top-level `extra`.
fn mn_config(dir: &Path, name: &str, identity: &str, creds: &str, extra: &str) -> PathBuf {
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
binding_lifetime = 60
{extra}
[ike]
identity = "{identity}"
remote_identity = "ha.example.com"
proposals = ["aes128-sha256-ecp256"]
esp_proposals = ["aes128gcm16"]
{creds}"#,
            state = d.join("state").display(),
            sock = d.join("mn.sock").display()
        ),
    )
    .expect("mn.toml");
    p
}

fn hybrid_mn_creds(password: &str) -> String {
    format!(
        "auth = \"hybrid\"\nca = [\"{}\"]\nxauth_user = \"{USER}\"\nxauth_password = \"{password}\"\n",
        testdata("ca.pem")
    )
}

fn psk_xauth_mn_creds(user: &str, password: &str) -> String {
    format!(
        "auth = \"psk+xauth\"\npsk = \"{PSK}\"\nxauth_user = \"{user}\"\nxauth_password = \"{password}\"\n"
    )
}

/// Every Access-Request FreeRADIUS logged carries CHAP-Password and none User-Password.
fn assert_chap_only(radius: &FreeRadius, at_least: usize) {
    let reqs = radius.requests().expect("detail");
    assert!(
        reqs.len() >= at_least,
        "{} requests, wanted {at_least}:\n{}",
        reqs.len(),
        radius.detail()
    );
    for r in &reqs {
        assert_eq!(r.get("User-Name"), Some(USER), "{r:?}");
        assert!(r.has("CHAP-Password"), "no CHAP-Password: {r:?}");
        assert!(r.has("CHAP-Challenge"), "no CHAP-Challenge: {r:?}");
        assert!(!r.has("User-Password"), "a password went to RADIUS: {r:?}");
    }
}

/// The full bootstrap in hybrid mode: the home agent signs, the node is authenticated by XAUTH
/// RADIUS-CHAP alone (its password never leaves it), then DHCPv6, the RFC 3776 SAs and the
/// binding as with a pre-shared key.
#[test]
fn hybrid_radius_chap_full_bootstrap() {
    let lab = Lab::new("xauth_hybrid_chap").expect("lab");
    let kea = kea(&lab);
    let radius = freeradius(&lab);
    let ha_conf = ha_config(
        lab.dir(),
        &hybrid_ha_ike(),
        &format!("[[peers]]\nidentity = \"mn1@example.com\"\nxauth_user = \"{USER}\"\n"),
    );
    let mut ha = start_ha(&lab, &ha_conf);
    let mn_conf = mn_config(
        lab.dir(),
        "mn1",
        "mn1@example.com",
        &hybrid_mn_creds(PASSWORD),
        "address_source = \"dhcpv6\"",
    );
    let mut mn = start_daemon(&lab, Node::Mn, mn_bin(), &mn_conf, "mip6-mn");
    let st = wait_ready(&mn_conf, &[&mn, &ha]);
    let hoa = home_address_of(&st);
    assert_eq!(st["address_source"], "dhcpv6", "{st:#}");
    assert!(
        kea.leases()
            .expect("leases")
            .iter()
            .any(|l| l.address == hoa && l.valid_lifetime > 0),
        "Kea leased {hoa}:\n{}",
        kea.log()
    );
    let hs = wait_status(
        ha_bin(),
        &ha_conf,
        "the binding",
        |v| v["bindings"].as_array().is_some_and(|b| b.len() == 1),
        &[&ha, &mn],
    );
    let peer = &hs["peers"][0];
    assert_eq!(peer["identity"], "mn1@example.com", "{hs:#}");
    assert_eq!(peer["xauth_user"], USER, "{hs:#}");
    assert_eq!(peer["home_address"], hoa.to_string(), "{hs:#}");
    assert_eq!(hs["counters"]["xauth_accepted"], 1, "{hs:#}");
    assert_eq!(hs["bindings"][0]["home_address"], hoa.to_string(), "{hs:#}");
    assert_chap_only(&radius, 1);
    lab.ping(Node::Dhcp, None, hoa)
        .expect("home-link host -> home address");
    let log = ha.log() + &mn.log();
    assert!(!log.contains(PASSWORD), "the password is in a log");
    sigterm_and_wait(&mut mn);
    sigterm_and_wait(&mut ha);
}

/// PSK + Generic XAUTH: the home agent computes CHAP from the password toward RADIUS. A wrong
/// password ends in STATUS FAIL and the phase-1 SA's deletion, with nothing leased; an identity
/// bound to another user is refused without asking RADIUS; the right one bootstraps.
#[test]
fn generic_xauth_checked_with_chap_wrong_password_refused() {
    let lab = Lab::new("xauth_generic_chap").expect("lab");
    let kea = kea(&lab);
    let radius = freeradius(&lab);
    let ha_conf = ha_config(
        lab.dir(),
        "auth = \"psk+xauth\"\nxauth_type = \"generic\"\n",
        &format!(
            "[[peers]]\nidentity = \"mn1@example.com\"\npsk = \"{PSK}\"\n\
             [[peers]]\nidentity = \"mn2@example.com\"\npsk = \"{PSK}\"\nxauth_user = \"{USER}\"\n"
        ),
    );
    let mut ha = start_ha(&lab, &ha_conf);

    // A wrong password.
    let bad_conf = mn_config(
        lab.dir(),
        "bad",
        "mn1@example.com",
        &psk_xauth_mn_creds(USER, "not-the-password"),
        "address_source = \"dhcpv6\"",
    );
    let mut bad = start_daemon(&lab, Node::Mn, mn_bin(), &bad_conf, "mip6-mn-bad");
    let st = wait_status_for(
        mn_bin(),
        &bad_conf,
        "the XAUTH failure",
        Duration::from_secs(20),
        |v| v["last_error"].as_str().is_some_and(|e| !e.is_empty()),
        &[&bad, &ha],
    );
    let why = st["last_error"].as_str().unwrap_or_default();
    assert!(why.contains("XAUTH"), "the node says why: {st:#}");
    assert_ne!(st["state"], "ready", "{st:#}");
    let hs = wait_status(
        ha_bin(),
        &ha_conf,
        "the rejection counted",
        |v| v["counters"]["xauth_rejected"].as_u64() >= Some(1),
        &[&ha, &bad],
    );
    assert!(hs["peers"].as_array().is_some_and(Vec::is_empty), "{hs:#}");
    assert!(
        ha.log().contains("XAUTH rejected by RADIUS"),
        "the HA logs the rejection:\n{}",
        ha.log()
    );
    sigterm_and_wait(&mut bad);
    assert!(
        kea.leases()
            .expect("leases")
            .iter()
            .all(|l| l.valid_lifetime == 0),
        "nothing leased after a failed XAUTH:\n{:?}",
        kea.leases()
    );
    let asked = radius.requests().expect("detail").len();
    assert!(asked >= 1, "RADIUS was asked:\n{}", radius.detail());

    // mn2 may log in only as mnuser: as "other" it is refused before RADIUS is asked.
    let other_conf = mn_config(
        lab.dir(),
        "other",
        "mn2@example.com",
        &psk_xauth_mn_creds("other", "other-password-2"),
        "address_source = \"dhcpv6\"",
    );
    let mut other = start_daemon(&lab, Node::Mn, mn_bin(), &other_conf, "mip6-mn-other");
    let st = wait_status_for(
        mn_bin(),
        &other_conf,
        "the refusal",
        Duration::from_secs(20),
        |v| {
            v["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("XAUTH"))
        },
        &[&other, &ha],
    );
    assert_ne!(st["state"], "ready", "{st:#}");
    assert!(
        ha.log().contains("may not log in as that user"),
        "{}",
        ha.log()
    );
    sigterm_and_wait(&mut other);
    assert_eq!(
        radius.requests().expect("detail").len(),
        asked,
        "RADIUS was not asked for the refused identity:\n{}",
        radius.detail()
    );

    // The right password.
    let good_conf = mn_config(
        lab.dir(),
        "good",
        "mn1@example.com",
        &psk_xauth_mn_creds(USER, PASSWORD),
        "address_source = \"dhcpv6\"",
    );
    let mut good = start_daemon(&lab, Node::Mn, mn_bin(), &good_conf, "mip6-mn-good");
    let st = wait_ready(&good_conf, &[&good, &ha]);
    let hoa = home_address_of(&st);
    let hs = wait_status(
        ha_bin(),
        &ha_conf,
        "the binding",
        |v| v["bindings"].as_array().is_some_and(|b| b.len() == 1),
        &[&ha, &good],
    );
    assert_eq!(hs["peers"][0]["xauth_user"], USER, "{hs:#}");
    assert_eq!(hs["counters"]["xauth_accepted"], 1, "{hs:#}");
    assert_chap_only(&radius, asked + 1);
    lab.ping(Node::Dhcp, None, hoa)
        .expect("home-link host -> home address");
    sigterm_and_wait(&mut good);
    sigterm_and_wait(&mut ha);
}

/// charon as a hybrid mobile node (`local { auth = xauth }`, the HA's certificate checked
/// against the CA) against `mip6-ha`, which asks for Generic XAUTH (all charon answers) and gets
/// the address from Kea by Mode Config.
#[test]
fn charon_hybrid_mobile_node_against_mip6_ha() {
    let lab = Lab::new("xauth_charon_mn").expect("lab");
    let kea = kea(&lab);
    let radius = freeradius(&lab);
    let ha_conf = ha_config(
        lab.dir(),
        &format!("{}xauth_type = \"generic\"\n", hybrid_ha_ike()),
        "[[peers]]\nidentity = \"mn1@example.com\"\n",
    );
    let mut ha = start_ha(&lab, &ha_conf);
    let conf = Swanctl::new()
        .connection(
            Connection::ikev1("mip6")
                .proposals("aes128-sha256-modp2048")
                .local_addrs(MN_COA)
                .remote_addrs(HA_INET)
                .vips("::")
                .local(Auth::new("xauth").id("mn1@example.com").xauth_id(USER))
                .remote(Auth::pubkey().id("ha.example.com"))
                .child(
                    Child::new("home")
                        .remote_ts("::/0")
                        .esp_proposals("aes128-sha256"),
                ),
        )
        .secret(Secret::new("xauth-mn", PASSWORD).id(USER));
    let charon = Charon::start(
        &lab,
        Node::Mn,
        CharonOptions::new("mn", conf).file("x509ca/ca.pem", read_testdata("ca.pem")),
    )
    .expect("charon");
    let out = charon.initiate("home", "mip6").expect("swanctl --initiate");
    assert!(
        out.contains("initiate completed successfully"),
        "{out}\n{}\n{}",
        charon.log(),
        ha.log()
    );
    let sas = charon.list_sas().expect("list-sas");
    let vip = match sas[0].local_vips.first() {
        Some(std::net::IpAddr::V6(a)) => *a,
        _ => panic!("no IPv6 virtual IP: {sas:?}"),
    };
    assert!(
        kea.leases()
            .expect("leases")
            .iter()
            .any(|l| l.address == vip && l.valid_lifetime > 0),
        "Kea leased {vip}"
    );
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
    assert_eq!(hs["peers"][0]["xauth_user"], USER, "{hs:#}");
    assert_eq!(hs["peers"][0]["address_source"], "modecfg", "{hs:#}");
    // Generic XAUTH: the HA turned the password into CHAP.
    assert_chap_only(&radius, 1);
    lab.ping(Node::Dhcp, None, vip)
        .expect("home-link host -> charon's virtual IP");
    sigterm_and_wait(&mut ha);
}

/// charon as the home agent: hybrid (it signs) or PSK, then XAUTH checked by its eap-radius
/// plugin against FreeRADIUS (PAP); Mode Config from its pool.
fn charon_ha(lab: &Lab, hybrid: bool) -> Charon {
    let conn = Connection::ikev1("mip6")
        .proposals("aes128-sha256-ecp256")
        .local_addrs(HA_INET)
        .pools("home")
        .child(
            Child::new("home")
                .local_ts("::/0")
                .esp_proposals("aes128gcm16"),
        );
    let conf = Swanctl::new().pool(Pool::new("home", "2001:db8:1::4000-2001:db8:1::40ff"));
    let conf = if hybrid {
        conf.connection(
            conn.local(Auth::pubkey().certs("ha.pem").id("ha.example.com"))
                .remote(Auth::new("xauth-radius").id("mn1@example.com")),
        )
    } else {
        conf.connection(
            conn.local(Auth::psk().id("ha.example.com"))
                .remote(Auth::psk().id("mn1@example.com"))
                .remote_round("xauth", Auth::new("xauth-radius")),
        )
        .secret(Secret::ike_psk(PSK))
    };
    let settings = format!(
        "plugins {{\n  eap-radius {{\n    servers {{\n      fr {{\n        address = {HOME_HOST}\n        secret = {RADIUS_SECRET}\n        auth_port = 1812\n      }}\n    }}\n  }}\n}}\n"
    );
    let mut options = CharonOptions::new("ha", conf)
        .plugins(&format!("{} eap-radius", testlab::DEFAULT_PLUGINS))
        .settings(&settings);
    if hybrid {
        options = options
            .file("x509/ha.pem", read_testdata("ha-cert.pem"))
            .file("private/ha.key", read_testdata("rsa2048-pkcs8.pem"));
    }
    Charon::start(lab, Node::Ha, options).expect("charon HA")
}

/// `mip6-mn` in hybrid and PSK+XAUTH mode against charon as the home agent (charon asks
/// FreeRADIUS with PAP): each gets its address by Mode Config and its tunnel. charon with
/// kernel-libipsec always encapsulates ESP in UDP ("faking NAT"), and IKEv1 then rewrites
/// transport-mode selectors to the outer addresses, so the RFC 3776 transport-mode SA cannot
/// exist: the node runs with `home_registration = false`.
#[test]
fn mip6_mn_xauth_against_charon_home_agent() {
    let lab = Lab::new("xauth_charon_ha").expect("lab");
    let radius = freeradius(&lab);
    for hybrid in [true, false] {
        let what = if hybrid { "hybrid" } else { "psk+xauth" };
        let mut charon = charon_ha(&lab, hybrid);
        let creds = if hybrid {
            hybrid_mn_creds(PASSWORD)
        } else {
            psk_xauth_mn_creds(USER, PASSWORD)
        };
        let name = what.replace('+', "-");
        let conf = mn_config(
            lab.dir(),
            &name,
            "mn1@example.com",
            &creds,
            "address_source = \"modecfg\"\nhome_registration = false",
        );
        let mut mn = start_daemon(&lab, Node::Mn, mn_bin(), &conf, &format!("mip6-mn-{name}"));
        let st = wait_status_for(
            mn_bin(),
            &conf,
            "ready with an address from charon",
            Duration::from_secs(30),
            |v| v["state"] == "ready",
            &[&mn],
        );
        let hoa = home_address_of(&st);
        assert_eq!(st["address_source"], "modecfg", "{what}: {st:#}");
        assert!(
            hoa.segments()[..7] == [0x2001, 0xdb8, 1, 0, 0, 0, 0] && hoa.segments()[7] >> 8 == 0x40,
            "{what}: {hoa} is from charon's pool\n{}",
            charon.log()
        );
        let sas = charon.list_sas().expect("list-sas");
        assert!(
            sas.iter()
                .any(|s| s.remote_vips.contains(&std::net::IpAddr::V6(hoa))),
            "{what}: charon assigned {hoa}: {sas:?}"
        );
        let reqs = radius.requests().expect("detail");
        let last = reqs.last().expect("charon asked RADIUS");
        assert_eq!(last.get("User-Name"), Some(USER), "{what}: {last:?}");
        assert!(
            last.has("User-Password"),
            "{what}: charon uses PAP: {last:?}"
        );
        lab.route(Node::Dhcp, &format!("{hoa}/128"), HA_HOME)
            .expect("route to the home address via charon");
        lab.ping(Node::Dhcp, None, hoa)
            .unwrap_or_else(|e| panic!("{what}: home-link host -> {hoa}: {e}"));
        lab.exec_ok(
            Node::Dhcp,
            "ip",
            ["-6", "route", "del", &format!("{hoa}/128")],
        )
        .expect("route removed");
        sigterm_and_wait(&mut mn);
        charon.stop().expect("charon stop");
        let _ = status(mn_bin(), &conf);
    }
}
