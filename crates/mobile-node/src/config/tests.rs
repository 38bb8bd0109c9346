//! One test per validation rule: each checks that the error names the key.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use ikev1::{LocalAuth, PeerAuth};

use super::*;

/// A scratch directory, removed on drop.
struct Dir(PathBuf);

impl Dir {
    fn new() -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let d = std::env::temp_dir().join(format!(
            "mip6-mn-config-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&d).unwrap();
        Self(d)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.0).ok();
    }
}

fn testdata(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../daemon/testdata")
        .join(name)
        .display()
        .to_string()
}

/// The issue's example `mn.toml`.
const ISSUE_TOP: &str = r#"
home_agent = "2001:db8:ff::1"
care_of_address = "2001:db8:ff::2"
address_source = "auto"
dhcpv6_timeout = 10
state_dir = "/var/lib/mip6-mn"
control_socket = "/run/mip6-mn.sock"
"#;
const ISSUE_IKE: &str = r#"
identity = "mn1@example.com"
psk = "secret"
proposals = ["aes128-sha256-ecp256"]
esp_proposals = ["aes128gcm16"]
"#;

fn text(top: &str, ike: &str) -> String {
    format!("{top}\n[ike]\n{ike}")
}

fn load_in(dir: &Dir, top: &str, ike: &str) -> Result<Loaded<Config>, ConfigError> {
    Config::load(&dir.write("mn.toml", &text(top, ike)))
}

fn load(top: &str, ike: &str) -> Result<Loaded<Config>, ConfigError> {
    load_in(&Dir::new(), top, ike)
}

#[track_caller]
fn err(top: &str, ike: &str, key: &str) -> ConfigError {
    let e = load(top, ike).expect_err("must be refused");
    assert_eq!(e.key, key, "{e}");
    assert!(e.to_string().contains("mn.toml"), "names the file: {e}");
    e
}

const HA: &str = "home_agent = \"2001:db8:ff::1\"\n";
const PSK: &str = "identity = \"mn1@example.com\"\npsk = \"secret\"\n";

#[test]
fn issue_example_loads() {
    let l = load(ISSUE_TOP, ISSUE_IKE).unwrap();
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    let c = &l.config;
    assert_eq!(c.file.address_source, AddressSourceMode::Auto);
    assert_eq!(
        c.file.care_of_address,
        Some("2001:db8:ff::2".parse().unwrap())
    );
    assert_eq!(c.ike.ike_proposals[0].to_string(), "aes128-sha256-ecp256");
    assert_eq!(c.ike.esp_proposals[0].to_string(), "aes128gcm16");
    let e = c.engine_config(&["2001:db8:ff::1".parse().unwrap()]);
    assert_eq!(e.peers.len(), 1);
    assert_eq!(
        e.peers[0].addrs,
        vec!["2001:db8:ff::1".parse::<std::net::IpAddr>().unwrap()]
    );
    assert!(matches!(&e.peers[0].auth, PeerAuth::Psk(k) if k.as_slice() == b"secret"));
    assert!(matches!(e.local_auth, LocalAuth::Psk));
    assert_eq!(e.local_id.to_string(), "mn1@example.com");
}

#[test]
fn defaults() {
    let c = load(HA, PSK).unwrap().config;
    assert_eq!(c.file.address_source, AddressSourceMode::Auto);
    assert_eq!(c.file.dhcpv6_timeout, 10);
    assert_eq!(c.file.state_dir, Path::new("/var/lib/mip6-mn"));
    assert_eq!(c.file.control_socket, Path::new(DEFAULT_CONTROL_SOCKET));
    assert!(!c.ike.ike_proposals.is_empty());
    assert!(c.ike.dpd_delay.is_none());
}

#[test]
fn secrets_are_not_printed() {
    let c = load(
        HA,
        "identity = \"mn1@example.com\"\npsk = \"hunter2-secret\"\n",
    )
    .unwrap()
    .config;
    assert!(!format!("{c:?}").contains("hunter2"));
    let toml = daemon::load::to_toml(&c.file);
    assert!(!toml.contains("hunter2"), "{toml}");
    assert!(toml.contains("<redacted>"), "{toml}");
}

#[test]
fn unknown_key() {
    let e = err(
        HA,
        "identity = \"mn1@example.com\"\npskk = \"x\"\n",
        "ike.pskk",
    );
    assert!(e.reason.contains("unknown field"), "{e}");
    assert!(e.line_col.is_some());
    err("home_agnet = \"2001:db8:ff::1\"\n", PSK, "home_agnet");
}

#[test]
fn missing_keys() {
    err("", PSK, "home_agent");
    err(HA, "psk = \"x\"\n", "ike.identity");
    let e = parse_without_ike();
    assert_eq!(e.key, "ike", "{e}");
}

fn parse_without_ike() -> ConfigError {
    let d = Dir::new();
    Config::load(&d.write("mn.toml", HA)).unwrap_err()
}

#[test]
fn addresses_parse() {
    let e = err("home_agent = \"2001:db8:ff::zz\"\n", PSK, "home_agent");
    assert!(e.line_col.is_some(), "{e}");
    err(
        &format!("{HA}care_of_address = \"192.0.2.1\"\n"),
        PSK,
        "care_of_address",
    );
    err("home_agent = \"ff02::1\"\n", PSK, "home_agent");
    err("home_agent = \"::\"\n", PSK, "home_agent");
}

#[test]
fn care_of_address_is_not_the_home_agent() {
    err(
        &format!("{HA}care_of_address = \"2001:db8:ff::1\"\n"),
        PSK,
        "care_of_address",
    );
}

#[test]
fn address_source_values() {
    for ok in ["auto", "dhcpv6", "modecfg"] {
        let c = load(&format!("{HA}address_source = \"{ok}\"\n"), PSK).unwrap();
        assert_eq!(c.config.file.address_source.as_str(), ok);
    }
    err(
        &format!("{HA}address_source = \"dhcp\"\n"),
        PSK,
        "address_source",
    );
}

#[test]
fn static_requires_home_address() {
    err(
        &format!("{HA}address_source = \"static\"\n"),
        PSK,
        "home_address",
    );
    let c = load(
        &format!("{HA}address_source = \"static\"\nhome_address = \"2001:db8:1::1000\"\n"),
        PSK,
    )
    .unwrap()
    .config;
    assert_eq!(
        c.file.home_address,
        Some("2001:db8:1::1000".parse().unwrap())
    );
}

#[test]
fn home_address_only_with_static() {
    let e = err(
        &format!("{HA}home_address = \"2001:db8:1::1000\"\n"),
        PSK,
        "home_address",
    );
    assert!(e.reason.contains("static"), "{e}");
}

#[test]
fn home_address_must_be_usable() {
    for bad in ["fe80::1", "ff02::1", "2001:db8:ff::1"] {
        err(
            &format!("{HA}address_source = \"static\"\nhome_address = \"{bad}\"\n"),
            PSK,
            "home_address",
        );
    }
}

#[test]
fn dhcpv6_timeout_positive() {
    err(&format!("{HA}dhcpv6_timeout = 0\n"), PSK, "dhcpv6_timeout");
    err(&format!("{HA}dhcpv6_timeout = -3\n"), PSK, "dhcpv6_timeout");
}

#[test]
fn log_level_checked() {
    err(&format!("{HA}log_level = \"verbose\"\n"), PSK, "log_level");
    load(&format!("{HA}log_level = \"info,ikev1=debug\"\n"), PSK).unwrap();
}

#[test]
fn identity_checked() {
    err(HA, "identity = \"\"\npsk = \"x\"\n", "ike.identity");
    err(HA, "identity = \"%any\"\npsk = \"x\"\n", "ike.identity");
}

#[test]
fn proposals_parse() {
    let e = err(
        HA,
        &format!("{PSK}proposals = [\"aes128-sha256-ecp256\", \"aes999-sha256-ecp256\"]\n"),
        "ike.proposals[1]",
    );
    assert_eq!(e.reason, "unknown algorithm \"aes999\"");
    assert_eq!(e.line_col, Some((6, 38)), "{e}");
    assert!(
        e.to_string()
            .ends_with("mn.toml:6:38: ike.proposals[1]: unknown algorithm \"aes999\""),
        "{e}"
    );
    err(
        HA,
        &format!("{PSK}esp_proposals = [\"aes128gcm16-sha1\"]\n"),
        "ike.esp_proposals[0]",
    );
    err(HA, &format!("{PSK}proposals = []\n"), "ike.proposals");
}

#[test]
fn legacy_needs_allow_legacy() {
    err(
        HA,
        &format!("{PSK}proposals = [\"3des-sha1-modp1024\"]\n"),
        "ike.proposals[0]",
    );
    load(
        HA,
        &format!("{PSK}proposals = [\"3des-sha1-modp1024\"]\nallow_legacy = true\n"),
    )
    .unwrap();
}

#[test]
fn lifetimes_checked() {
    err(HA, &format!("{PSK}ike_lifetime = 0\n"), "ike.ike_lifetime");
    err(HA, &format!("{PSK}esp_lifetime = 0\n"), "ike.esp_lifetime");
    err(
        HA,
        &format!("{PSK}esp_lifetime = 600\nrekey_margin = 600\n"),
        "ike.rekey_margin",
    );
    let c = load(HA, &format!("{PSK}dpd_delay = 30\n")).unwrap().config;
    assert_eq!(
        c.ike.engine_config(vec![]).dpd_delay,
        Some(std::time::Duration::from_secs(30))
    );
}

#[test]
fn psk_not_empty() {
    err(
        HA,
        "identity = \"mn1@example.com\"\npsk = \"\"\n",
        "ike.psk",
    );
}

#[test]
fn credentials_required() {
    let e = err(HA, "identity = \"mn1@example.com\"\n", "ike.psk");
    assert!(e.reason.contains("psk_file"), "{e}");
}

#[test]
fn one_pre_shared_key() {
    err(
        HA,
        &format!("{PSK}psk_file = \"psk.txt\"\n"),
        "ike.psk_file",
    );
}

#[test]
fn psk_file_read_at_load() {
    let d = Dir::new();
    let p = d.write("psk.txt", "from-a-file\n");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    let l = load_in(
        &d,
        HA,
        "identity = \"mn1@example.com\"\npsk_file = \"psk.txt\"\n",
    )
    .unwrap();
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    assert_eq!(
        l.config.file.ike.psk_file.as_deref(),
        Some(d.0.join("psk.txt").as_path())
    );
    assert!(
        matches!(&l.config.ike.peer_auth, Some(PeerAuth::Psk(k)) if k.as_slice() == b"from-a-file")
    );
}

#[test]
fn psk_file_world_readable_warns() {
    let d = Dir::new();
    let p = d.write("psk.txt", "k");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
    let l = load_in(
        &d,
        HA,
        "identity = \"mn1@example.com\"\npsk_file = \"psk.txt\"\n",
    )
    .unwrap();
    assert_eq!(l.warnings.len(), 1);
    assert!(l.warnings[0].contains("ike.psk_file"), "{:?}", l.warnings);
    assert!(
        l.warnings[0].contains("readable by every user"),
        "{:?}",
        l.warnings
    );
}

#[test]
fn psk_file_missing_or_empty() {
    let d = Dir::new();
    let e = load_in(
        &d,
        HA,
        "identity = \"mn1@example.com\"\npsk_file = \"nope.txt\"\n",
    )
    .unwrap_err();
    assert_eq!(e.key, "ike.psk_file");
    assert!(
        e.reason
            .contains(&d.0.join("nope.txt").display().to_string()),
        "{e}"
    );
    d.write("empty.txt", "\n");
    let e = load_in(
        &d,
        HA,
        "identity = \"mn1@example.com\"\npsk_file = \"empty.txt\"\n",
    )
    .unwrap_err();
    assert_eq!(e.key, "ike.psk_file");
    assert!(e.reason.contains("empty"), "{e}");
}

fn cert_ike(identity: &str, key: &str, ca: bool) -> String {
    let mut s = format!(
        "identity = \"{identity}\"\ncertificate = \"{}\"\nkey = \"{}\"\n",
        testdata("ha-cert.pem"),
        testdata(key)
    );
    if ca {
        s += &format!("ca = \"{}\"\n", testdata("ca.pem"));
    }
    s
}

#[test]
fn certificate_authentication() {
    let c = load(HA, &cert_ike("ha.example.com", "rsa2048-pkcs8.pem", true))
        .unwrap()
        .config;
    assert!(matches!(c.ike.local_auth, LocalAuth::RsaSig { .. }));
    assert!(matches!(&c.ike.peer_auth, Some(PeerAuth::RsaSig { cas }) if cas.len() == 1));
    // An IP identity may be an iPAddress subjectAltName.
    load(HA, &cert_ike("2001:db8:ff::1", "rsa2048-pkcs8.pem", true)).unwrap();
}

#[test]
fn certificate_and_key_together() {
    err(
        HA,
        &format!(
            "identity = \"ha.example.com\"\ncertificate = \"{}\"\n",
            testdata("ha-cert.pem")
        ),
        "ike.key",
    );
    err(
        HA,
        &format!(
            "identity = \"ha.example.com\"\nkey = \"{}\"\n",
            testdata("rsa2048-pkcs8.pem")
        ),
        "ike.certificate",
    );
}

#[test]
fn key_must_match_certificate() {
    err(
        HA,
        &cert_ike("ha.example.com", "other-key.pem", true),
        "ike.key",
    );
}

#[test]
fn identity_must_be_in_certificate() {
    let e = err(
        HA,
        &cert_ike("mn1@example.com", "rsa2048-pkcs8.pem", true),
        "ike.identity",
    );
    assert!(e.reason.contains("subjectAltName"), "{e}");
}

#[test]
fn certificate_needs_ca() {
    err(
        HA,
        &cert_ike("ha.example.com", "rsa2048-pkcs8.pem", false),
        "ike.ca",
    );
}

#[test]
fn certificate_excludes_psk() {
    err(
        HA,
        &format!(
            "{}psk = \"x\"\n",
            cert_ike("ha.example.com", "rsa2048-pkcs8.pem", true)
        ),
        "ike.psk",
    );
}

#[test]
fn ca_only_with_certificate() {
    err(
        HA,
        &format!("{PSK}ca = \"{}\"\n", testdata("ca.pem")),
        "ike.ca",
    );
}

#[test]
fn unreadable_certificate_named() {
    let e = err(
        HA,
        "identity = \"ha.example.com\"\ncertificate = \"/nonexistent/c.pem\"\nkey = \"/nonexistent/k.pem\"\n",
        "ike.certificate",
    );
    assert!(e.reason.contains("/nonexistent/c.pem"), "{e}");
    let e = err(
        HA,
        &format!(
            "identity = \"ha.example.com\"\ncertificate = \"{}\"\nkey = \"{}\"\n",
            testdata("README.md"),
            testdata("rsa2048-pkcs8.pem")
        ),
        "ike.certificate",
    );
    assert!(e.reason.contains("README.md"), "{e}");
}

#[test]
fn relative_paths_are_resolved() {
    let d = Dir::new();
    let l = load_in(
        &d,
        &format!("{HA}control_socket = \"run/mn.sock\"\nstate_dir = \"state\"\n"),
        PSK,
    )
    .unwrap();
    assert_eq!(l.config.file.control_socket, d.0.join("run/mn.sock"));
    assert_eq!(l.config.file.state_dir, d.0.join("state"));
}

#[test]
fn effective_config_round_trips() {
    let d = Dir::new();
    let first = load_in(&d, ISSUE_TOP, ISSUE_IKE).unwrap().config;
    let printed = daemon::load::to_toml(&first.file);
    let again = Config::load(&d.write("again.toml", &printed))
        .unwrap()
        .config;
    assert_eq!(daemon::load::to_toml(&again.file), printed);
    assert_eq!(again.file.home_agent, first.file.home_agent);
    assert_eq!(again.file.ike.proposals, first.file.ike.proposals);
}

#[test]
fn binding_lifetime_in_range() {
    assert_eq!(load(HA, PSK).unwrap().config.file.binding_lifetime, 420);
    err(
        &format!("{HA}binding_lifetime = 3\n"),
        PSK,
        "binding_lifetime",
    );
    err(
        &format!("{HA}binding_lifetime = 262141\n"),
        PSK,
        "binding_lifetime",
    );
    load(&format!("{HA}binding_lifetime = 8\n"), PSK).unwrap();
}

#[test]
fn hybrid_mobile_node() {
    let ike = format!(
        "identity = \"mn1@example.com\"\nauth = \"hybrid\"\nca = [\"{}\"]\nxauth_user = \"mnuser\"\nxauth_password = \"mnpass-secret\"\n",
        testdata("ca.pem")
    );
    let c = load(HA, &ike).unwrap().config;
    match &c.ike.local_auth {
        LocalAuth::Hybrid(creds) => {
            assert_eq!(creds.user, "mnuser");
            assert_eq!(creds.password.as_slice(), b"mnpass-secret");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(&c.ike.peer_auth, Some(PeerAuth::RsaSig { cas }) if cas.len() == 1));
    assert!(!format!("{c:?}").contains("mnpass-secret"));
    // The mobile node does not sign in hybrid mode, and the home agent's CA is needed.
    err(
        HA,
        &format!(
            "{ike}certificate = \"{}\"\nkey = \"{}\"\n",
            testdata("ha-cert.pem"),
            testdata("rsa2048-pkcs8.pem")
        ),
        "ike.certificate",
    );
    err(
        HA,
        "identity = \"mn1@example.com\"\nauth = \"hybrid\"\nxauth_user = \"u\"\nxauth_password = \"p\"\n",
        "ike.ca",
    );
}

#[test]
fn psk_xauth_mobile_node() {
    let d = Dir::new();
    d.write("xauth.pass", "from-a-file\n");
    std::fs::set_permissions(
        d.0.join("xauth.pass"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let ike = format!("{PSK}auth = \"psk+xauth\"\nxauth_user = \"mnuser\"\n");
    let c = load_in(
        &d,
        HA,
        &format!("{ike}xauth_password_file = \"xauth.pass\"\n"),
    )
    .unwrap()
    .config;
    match &c.ike.local_auth {
        LocalAuth::XauthPsk(creds) => assert_eq!(creds.password.as_slice(), b"from-a-file"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(&c.ike.peer_auth, Some(PeerAuth::Psk(_))));
    err(HA, &ike, "ike.xauth_password");
    err(
        HA,
        &format!("{PSK}auth = \"psk+xauth\"\nxauth_password = \"p\"\n"),
        "ike.xauth_user",
    );
    err(
        HA,
        &format!("{ike}xauth_password = \"p\"\nxauth_password_file = \"x\"\n"),
        "ike.xauth_password_file",
    );
    // XAUTH credentials without XAUTH, and an XAUTH type the home agent decides, are refused.
    err(HA, &format!("{PSK}xauth_user = \"u\"\n"), "ike.xauth_user");
    err(
        HA,
        &format!("{ike}xauth_password = \"p\"\nxauth_type = \"generic\"\n"),
        "ike.xauth_type",
    );
}

#[test]
fn home_agent_may_be_a_name() {
    let c = load(
        "home_agent = \"example.\"\ndns_servers = [\"2001:db8:1::2\", \"[2001:db8:1::3]:5353\"]\nhome_agent_timeout = 3\n",
        PSK,
    )
    .unwrap()
    .config;
    assert_eq!(c.home_agent, HomeAgent::Name("example.".into()));
    assert_eq!(
        c.dns_servers,
        vec![
            "[2001:db8:1::2]:53".parse().unwrap(),
            "[2001:db8:1::3]:5353".parse().unwrap()
        ]
    );
    assert_eq!(c.file.home_agent_timeout, 3);
    // The engine accepts the home agent at any discovered address.
    let ha2: Ipv6Addr = "2001:db8:ff::11".parse().unwrap();
    let e = c.engine_config(&["2001:db8:ff::1".parse().unwrap(), ha2]);
    assert_eq!(e.peers[0].addrs.len(), 2);
    // A literal address stays one.
    let c = load(HA, PSK).unwrap().config;
    assert_eq!(
        c.home_agent,
        HomeAgent::Address("2001:db8:ff::1".parse().unwrap())
    );
    for bad in ["ha..example", "a b.example", &"x".repeat(64)] {
        err(&format!("home_agent = \"{bad}\"\n"), PSK, "home_agent");
    }
    err(
        "home_agent = \"example.\"\ndns_servers = [\"ns.example\"]\n",
        PSK,
        "dns_servers[0]",
    );
    err(
        "home_agent = \"example.\"\ndns_servers = [\"2001:db8:1::2\", \"[2001:db8:1::2]:53\"]\n",
        PSK,
        "dns_servers[1]",
    );
    err(
        &format!("{HA}home_agent_timeout = 0\n"),
        PSK,
        "home_agent_timeout",
    );
}
