//! One test per validation rule: each checks that the error names the key.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;

/// A scratch directory, removed on drop.
struct Dir(PathBuf);

impl Dir {
    fn new() -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let d = std::env::temp_dir().join(format!(
            "mip6-ha-config-{}-{}",
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

/// The issue's example `ha.toml`, in pieces that tests replace.
const LISTEN: &str = "listen = [\"2001:db8:ff::1\"]\ncontrol_socket = \"/run/mip6-ha.sock\"\n";
const HOME_LINK: &str =
    "interface = \"ha-home\"\naddress = \"2001:db8:1::1\"\nprefix = \"2001:db8:1::/64\"\n";
const DHCPV6: &str = "servers = [\"2001:db8:1::2\"]\nrelay = true\n";
const MODECFG: &str = "source = \"dhcpv6\"\npool = \"2001:db8:1::1000-2001:db8:1::10ff\"\ndns = [\"2001:db8:1::53\"]\n";
const IKE: &str = "identity = \"ha.example.com\"\nproposals = [\"aes128-sha256-ecp256\"]\nesp_proposals = [\"aes128gcm16\"]\n";
const PEER: &str = "identity = \"mn1@example.com\"\npsk = \"secret\"\n";

/// The sections of a file; each test changes some.
#[derive(Clone)]
struct Parts {
    top: String,
    home_link: String,
    dhcpv6: String,
    modecfg: String,
    ike: String,
    peers: Vec<String>,
}

impl Parts {
    fn issue() -> Self {
        Self {
            top: LISTEN.into(),
            home_link: HOME_LINK.into(),
            dhcpv6: DHCPV6.into(),
            modecfg: MODECFG.into(),
            ike: IKE.into(),
            peers: vec![PEER.into()],
        }
    }

    fn text(&self) -> String {
        let mut s = format!(
            "{}\n[home_link]\n{}\n[dhcpv6]\n{}\n[modecfg]\n{}\n[ike]\n{}",
            self.top, self.home_link, self.dhcpv6, self.modecfg, self.ike
        );
        for p in &self.peers {
            s += &format!("\n[[peers]]\n{p}");
        }
        s
    }

    fn load_in(&self, d: &Dir) -> Result<Loaded<Config>, ConfigError> {
        Config::load(&d.write("ha.toml", &self.text()))
    }

    fn load(&self) -> Result<Loaded<Config>, ConfigError> {
        self.load_in(&Dir::new())
    }

    #[track_caller]
    fn err(&self, key: &str) -> ConfigError {
        let e = self.load().expect_err("must be refused");
        assert_eq!(e.key, key, "{e}");
        assert!(e.to_string().contains("ha.toml"), "names the file: {e}");
        e
    }

    fn top(mut self, s: &str) -> Self {
        self.top = s.into();
        self
    }
    fn home_link(mut self, s: &str) -> Self {
        self.home_link = s.into();
        self
    }
    fn dhcpv6(mut self, s: &str) -> Self {
        self.dhcpv6 = s.into();
        self
    }
    fn modecfg(mut self, s: &str) -> Self {
        self.modecfg = s.into();
        self
    }
    fn ike(mut self, s: &str) -> Self {
        self.ike = s.into();
        self
    }
    fn peers(mut self, p: &[&str]) -> Self {
        self.peers = p.iter().map(|s| (*s).to_owned()).collect();
        self
    }
}

fn issue() -> Parts {
    Parts::issue()
}

#[test]
fn issue_example_loads() {
    let l = issue().load().unwrap();
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    let c = l.config;
    assert_eq!(c.file.home_link.prefix.to_string(), "2001:db8:1::/64");
    assert_eq!(c.file.modecfg.source, ModecfgSource::Dhcpv6);
    assert!(c.file.dhcpv6.relay);
    assert_eq!(c.peers.len(), 1);
    assert_eq!(c.peers[0].identity.to_string(), "mn1@example.com");
    let e = c.engine_config();
    assert_eq!(e.peers.len(), 1);
    assert!(matches!(&e.peers[0].auth, PeerAuth::Psk(k) if k.as_slice() == b"secret"));
    assert!(matches!(e.local_auth, LocalAuth::Psk));
}

#[test]
fn optional_sections_default() {
    let text = format!("{LISTEN}\n[home_link]\n{HOME_LINK}\n[ike]\n{IKE}\n[[peers]]\n{PEER}");
    let d = Dir::new();
    let c = Config::load(&d.write("ha.toml", &text)).unwrap().config;
    assert!(c.file.dhcpv6.relay);
    assert!(c.file.dhcpv6.servers.is_empty());
    assert_eq!(c.file.modecfg.source, ModecfgSource::Dhcpv6);
    assert!(c.file.modecfg.pool.is_none());
}

#[test]
fn secrets_are_not_printed() {
    let c = issue()
        .peers(&["identity = \"mn1@example.com\"\npsk = \"hunter2-secret\"\n"])
        .load()
        .unwrap()
        .config;
    assert!(!format!("{c:?}").contains("hunter2"));
    let toml = daemon::load::to_toml(&c.file);
    assert!(!toml.contains("hunter2"), "{toml}");
    assert!(toml.contains("<redacted>"), "{toml}");
}

#[test]
fn effective_config_round_trips() {
    let d = Dir::new();
    let first = issue().load_in(&d).unwrap().config;
    let printed = daemon::load::to_toml(&first.file);
    assert!(printed.contains("[[peers]]"), "{printed}");
    let again = Config::load(&d.write("again.toml", &printed))
        .unwrap()
        .config;
    assert_eq!(daemon::load::to_toml(&again.file), printed);
}

#[test]
fn unknown_keys() {
    issue()
        .home_link(&format!("{HOME_LINK}mtu = 1400\n"))
        .err("home_link.mtu");
    issue()
        .peers(&[&format!("{PEER}home_adress = \"2001:db8:1::5\"\n")])
        .err("peers[0].home_adress");
    issue()
        .top(&format!("{LISTEN}listen_port = 500\n"))
        .err("listen_port");
}

#[test]
fn listen_checked() {
    issue().top("").err("listen");
    issue().top("listen = []\n").err("listen");
    issue()
        .top("listen = [\"2001:db8:ff::1\", \"2001:db8:ff::1\"]\n")
        .err("listen[1]");
    issue().top("listen = [\"ff02::1\"]\n").err("listen[0]");
    issue()
        .top("listen = [\"2001:db8:ff::1\", \"nope\"]\n")
        .err("listen[1]");
    issue().top("listen = [\"::\"]\n").load().unwrap();
}

#[test]
fn log_level_checked() {
    issue()
        .top(&format!("{LISTEN}log_level = \"loud\"\n"))
        .err("log_level");
}

#[test]
fn interface_checked() {
    issue()
        .home_link("interface = \"a-very-long-interface\"\naddress = \"2001:db8:1::1\"\nprefix = \"2001:db8:1::/64\"\n")
        .err("home_link.interface");
    issue()
        .home_link(
            "interface = \"ha/home\"\naddress = \"2001:db8:1::1\"\nprefix = \"2001:db8:1::/64\"\n",
        )
        .err("home_link.interface");
}

#[test]
fn prefix_contains_home_link_address() {
    let e = issue()
        .home_link(
            "interface = \"ha-home\"\naddress = \"2001:db8:2::1\"\nprefix = \"2001:db8:1::/64\"\n",
        )
        .err("home_link.address");
    assert!(e.reason.contains("2001:db8:1::/64"), "{e}");
    issue()
        .home_link("interface = \"ha-home\"\naddress = \"fe80::1\"\nprefix = \"fe80::/64\"\n")
        .err("home_link.address");
}

#[test]
fn prefix_parses() {
    let e = issue()
        .home_link(
            "interface = \"ha-home\"\naddress = \"2001:db8:1::1\"\nprefix = \"2001:db8:1::1/64\"\n",
        )
        .err("home_link.prefix");
    assert!(e.reason.contains("did you mean"), "{e}");
    issue()
        .home_link(
            "interface = \"ha-home\"\naddress = \"2001:db8:1::1\"\nprefix = \"2001:db8:1::/200\"\n",
        )
        .err("home_link.prefix");
}

#[test]
fn dhcpv6_servers_checked() {
    issue()
        .dhcpv6("servers = [\"2001:db8:1::2\", \"2001:db8:1::2\"]\n")
        .err("dhcpv6.servers[1]");
    issue()
        .dhcpv6("servers = [\"::\"]\n")
        .err("dhcpv6.servers[0]");
    issue().dhcpv6("relay = \"yes\"\n").err("dhcpv6.relay");
    let c = issue().dhcpv6("relay = false\n").load().unwrap().config;
    assert!(!c.file.dhcpv6.relay);
}

#[test]
fn modecfg_source_values() {
    issue()
        .modecfg("source = \"radius\"\n")
        .err("modecfg.source");
    let c = issue()
        .modecfg("source = \"pool\"\npool = \"2001:db8:1::1000-2001:db8:1::10ff\"\n")
        .load()
        .unwrap()
        .config;
    assert_eq!(c.file.modecfg.source, ModecfgSource::Pool);
}

#[test]
fn pool_required_for_source_pool() {
    issue().modecfg("source = \"pool\"\n").err("modecfg.pool");
}

#[test]
fn pool_ordered() {
    let e = issue()
        .modecfg("source = \"pool\"\npool = \"2001:db8:1::10ff-2001:db8:1::1000\"\n")
        .err("modecfg.pool");
    assert!(e.reason.contains("comes after"), "{e}");
}

#[test]
fn pool_inside_prefix() {
    issue()
        .modecfg("source = \"pool\"\npool = \"2001:db8:1::1000-2001:db8:2::10ff\"\n")
        .err("modecfg.pool");
    issue()
        .modecfg("source = \"pool\"\npool = \"2001:db8:1::1-2001:db8:1::10\"\n")
        .err("modecfg.pool");
}

#[test]
fn dns_checked() {
    issue()
        .modecfg("dns = [\"ff02::1\"]\n")
        .err("modecfg.dns[0]");
}

#[test]
fn ike_psk_belongs_to_peers() {
    let e = issue().ike(&format!("{IKE}psk = \"x\"\n")).err("ike.psk");
    assert!(e.reason.contains("[[peers]]"), "{e}");
    issue()
        .ike(&format!("{IKE}ca = \"ca.pem\"\n"))
        .err("ike.ca");
}

#[test]
fn ike_proposals_parse() {
    let e = issue()
        .ike("identity = \"ha.example.com\"\nproposals = [\"aes128-sha256-ecp256\", \"aes999\"]\n")
        .err("ike.proposals[1]");
    assert_eq!(e.reason, "unknown algorithm \"aes999\"");
    issue().ike("identity = \"%any\"\n").err("ike.identity");
}

#[test]
fn peers_required() {
    issue().peers(&[]).err("peers");
}

#[test]
fn peer_identities_unique() {
    issue()
        .peers(&[PEER, "identity = \"MN1@example.com\"\npsk = \"other\"\n"])
        .err("peers[1].identity");
    issue()
        .peers(&["identity = \"\"\npsk = \"x\"\n"])
        .err("peers[0].identity");
    issue()
        .peers(&[PEER, "identity = \"mn2@example.com\"\npsk = \"other\"\n"])
        .load()
        .unwrap();
}

#[test]
fn peer_credentials() {
    issue()
        .peers(&["identity = \"mn1@example.com\"\n"])
        .err("peers[0].psk");
    issue()
        .peers(&["identity = \"mn1@example.com\"\npsk = \"\"\n"])
        .err("peers[0].psk");
    issue()
        .peers(&[&format!("{PEER}ca = \"{}\"\n", testdata("ca.pem"))])
        .err("peers[0].ca");
    issue()
        .peers(&[&format!("{PEER}psk_file = \"k\"\n")])
        .err("peers[0].psk_file");
}

#[test]
fn peer_psk_file() {
    let d = Dir::new();
    let p = d.write("mn1.psk", "filed\n");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
    let l = issue()
        .peers(&["identity = \"mn1@example.com\"\npsk_file = \"mn1.psk\"\n"])
        .load_in(&d)
        .unwrap();
    assert!(matches!(&l.config.peers[0].auth, PeerAuth::Psk(k) if k.as_slice() == b"filed"));
    assert_eq!(l.warnings.len(), 1, "{:?}", l.warnings);
    assert!(l.warnings[0].contains("peers[0].psk_file"));
    let e = issue()
        .peers(&["identity = \"mn1@example.com\"\npsk_file = \"gone.psk\"\n"])
        .load_in(&d)
        .unwrap_err();
    assert_eq!(e.key, "peers[0].psk_file");
    assert!(e.reason.contains("gone.psk"), "{e}");
}

#[test]
fn peer_home_address_inside_prefix() {
    issue()
        .peers(&[&format!("{PEER}home_address = \"2001:db8:2::1000\"\n")])
        .err("peers[0].home_address");
    issue()
        .peers(&[&format!("{PEER}home_address = \"2001:db8:1::1\"\n")])
        .err("peers[0].home_address");
    issue()
        .peers(&[&format!("{PEER}home_address = \"2001:db8:1::\"\n")])
        .err("peers[0].home_address");
    let c = issue()
        .peers(&[&format!("{PEER}home_address = \"2001:db8:1::1000\"\n")])
        .load()
        .unwrap()
        .config;
    assert_eq!(
        c.peers[0].home_address,
        Some("2001:db8:1::1000".parse().unwrap())
    );
}

#[test]
fn peer_home_addresses_unique() {
    issue()
        .peers(&[
            &format!("{PEER}home_address = \"2001:db8:1::1000\"\n"),
            "identity = \"mn2@example.com\"\npsk = \"x\"\nhome_address = \"2001:db8:1::1000\"\n",
        ])
        .err("peers[1].home_address");
}

#[test]
fn peer_home_address_outside_pool() {
    issue()
        .modecfg("source = \"pool\"\npool = \"2001:db8:1::1000-2001:db8:1::10ff\"\n")
        .peers(&[&format!("{PEER}home_address = \"2001:db8:1::1001\"\n")])
        .err("peers[0].home_address");
}

fn cert_ike() -> String {
    format!(
        "identity = \"ha.example.com\"\ncertificate = \"{}\"\nkey = \"{}\"\n",
        testdata("ha-cert.pem"),
        testdata("rsa2048-pkcs8.pem")
    )
}

#[test]
fn certificate_peers() {
    let ca_peer = format!(
        "identity = \"mn1@example.com\"\nca = \"{}\"\n",
        testdata("ca.pem")
    );
    let c = issue()
        .ike(&cert_ike())
        .peers(&[&ca_peer])
        .load()
        .unwrap()
        .config;
    assert!(matches!(c.ike.local_auth, LocalAuth::RsaSig { .. }));
    assert!(matches!(&c.peers[0].auth, PeerAuth::RsaSig { cas } if cas.len() == 1));
    // The engine negotiates one method: no pre-shared-key peers next to certificates.
    issue()
        .ike(&cert_ike())
        .peers(&[&ca_peer, "identity = \"mn2@example.com\"\npsk = \"x\"\n"])
        .err("peers[1].psk");
    // Certificate peers need the home agent's own certificate.
    issue().peers(&[&ca_peer]).err("peers[0].ca");
}

#[test]
fn certificate_and_key_checked() {
    issue()
        .ike(&format!(
            "identity = \"ha.example.com\"\ncertificate = \"{}\"\n",
            testdata("ha-cert.pem")
        ))
        .err("ike.key");
    issue()
        .ike(&format!(
            "identity = \"ha.example.com\"\ncertificate = \"{}\"\nkey = \"{}\"\n",
            testdata("ha-cert.pem"),
            testdata("other-key.pem")
        ))
        .err("ike.key");
    issue()
        .ike(&cert_ike().replace("ha.example.com", "other.example.com"))
        .err("ike.identity");
}

#[test]
fn bindings_limits_checked() {
    let c = issue().load().unwrap().config;
    assert_eq!(c.file.bindings.max_lifetime, 3600);
    assert_eq!(c.file.bindings.max_entries, 65536);
    for bad in ["max_lifetime = 2", "max_lifetime = 262141"] {
        let e = issue()
            .top(&format!("{LISTEN}\n[bindings]\n{bad}\n"))
            .err("bindings.max_lifetime");
        assert!(e.reason.contains("4 to 262140"), "{e}");
    }
    issue()
        .top(&format!("{LISTEN}\n[bindings]\nmax_entries = 0\n"))
        .err("bindings.max_entries");
    let c = issue()
        .top(&format!("{LISTEN}\n[bindings]\nmax_lifetime = 8\n"))
        .load()
        .unwrap()
        .config;
    assert_eq!(c.file.bindings.max_lifetime, 8);
}

const RADIUS: &str = "\n[radius]\nservers = [\"2001:db8:1::18\", \"[2001:db8:1::19]:1645\"]\nsecret = \"radius-secret\"\n";

fn hybrid_ike() -> String {
    format!("{}auth = \"hybrid\"\n{RADIUS}", cert_ike())
}

#[test]
fn hybrid_peers_have_no_key() {
    let c = issue()
        .ike(&hybrid_ike())
        .peers(&["identity = \"mn1@example.com\"\nxauth_user = \"mnuser\"\n"])
        .load()
        .unwrap()
        .config;
    assert!(matches!(c.ike.local_auth, LocalAuth::RsaSig { .. }));
    assert!(matches!(
        c.peers[0].auth,
        PeerAuth::Hybrid {
            xauth: ikev1::XauthType::RadiusChap
        }
    ));
    assert_eq!(c.peers[0].xauth_user.as_deref(), Some("mnuser"));
    let r = c.radius.expect("[radius]");
    assert_eq!(r.method, RadiusMethod::Chap);
    assert_eq!(
        r.client.servers,
        vec![
            "[2001:db8:1::18]:1812".parse().unwrap(),
            "[2001:db8:1::19]:1645".parse().unwrap()
        ]
    );
    assert_eq!(r.client.tries, 3);
    assert!(r.client.require_message_authenticator);
    assert_eq!(r.client.nas_identifier.as_deref(), Some("ha.example.com"));
    // A key or CA on a hybrid peer would suggest phase 1 proves something: refused.
    for extra in [
        "psk = \"x\"\n",
        &format!("ca = \"{}\"\n", testdata("ca.pem")),
    ] {
        let e = issue()
            .ike(&hybrid_ike())
            .peers(&[&format!("identity = \"mn1@example.com\"\n{extra}")])
            .load()
            .expect_err("refused");
        assert!(e.key.starts_with("peers[0]."), "{e}");
        assert!(e.reason.contains("XAUTH"), "{e}");
    }
    // Hybrid means the home agent signs.
    let e = issue()
        .ike(&format!("{IKE}auth = \"hybrid\"\n{RADIUS}"))
        .peers(&["identity = \"mn1@example.com\"\n"])
        .err("ike.certificate");
    assert!(e.reason.contains("hybrid"), "{e}");
}

#[test]
fn xauth_needs_radius() {
    let e = issue()
        .ike(&format!("{}auth = \"hybrid\"\n", cert_ike()))
        .peers(&["identity = \"mn1@example.com\"\n"])
        .err("radius");
    assert!(e.reason.contains("peers[0]"), "{e}");
    // A per-peer psk+xauth next to plain psk peers.
    issue()
        .peers(&[
            PEER,
            "identity = \"mn2@example.com\"\npsk = \"y\"\nauth = \"psk+xauth\"\n",
        ])
        .err("radius");
    let c = issue()
        .ike(&format!("{IKE}xauth_type = \"generic\"\n{RADIUS}"))
        .peers(&[
            PEER,
            "identity = \"mn2@example.com\"\npsk = \"y\"\nauth = \"psk+xauth\"\n",
            "identity = \"mn3@example.com\"\npsk = \"z\"\nauth = \"psk+xauth\"\nxauth_type = \"radius-chap\"\n",
        ])
        .load()
        .unwrap()
        .config;
    assert!(matches!(c.peers[0].auth, PeerAuth::Psk(_)));
    assert!(matches!(
        c.peers[1].auth,
        PeerAuth::XauthPsk {
            xauth: ikev1::XauthType::Generic,
            ..
        }
    ));
    assert!(matches!(
        c.peers[2].auth,
        PeerAuth::XauthPsk {
            xauth: ikev1::XauthType::RadiusChap,
            ..
        }
    ));
}

#[test]
fn peer_auth_stays_in_the_home_agents_family() {
    // A pre-shared-key home agent cannot serve a hybrid peer, nor a signing one a PSK+XAUTH.
    issue()
        .ike(&format!("{IKE}{RADIUS}"))
        .peers(&["identity = \"mn1@example.com\"\nauth = \"hybrid\"\n"])
        .err("peers[0].auth");
    issue()
        .ike(&format!("{}{RADIUS}", cert_ike()))
        .peers(&["identity = \"mn1@example.com\"\npsk = \"x\"\nauth = \"psk+xauth\"\n"])
        .err("peers[0].auth");
    // XAUTH keys only where XAUTH happens.
    issue()
        .peers(&[&format!("{PEER}xauth_user = \"u\"\n")])
        .err("peers[0].xauth_user");
    issue()
        .ike(&format!("{IKE}xauth_user = \"u\"\n"))
        .err("ike.xauth_user");
}

#[test]
fn radius_checked() {
    let with = |radius: &str| {
        issue()
            .ike(&format!("{IKE}auth = \"psk+xauth\"\n\n[radius]\n{radius}"))
            .peers(&[PEER])
    };
    with("servers = []\nsecret = \"s\"\n").err("radius.servers");
    with("servers = [\"2001:db8::1:2:3:4:5:6:7\"]\nsecret = \"s\"\n").err("radius.servers[0]");
    with("servers = [\"2001:db8:1::18\", \"[2001:db8:1::18]:1812\"]\nsecret = \"s\"\n")
        .err("radius.servers[1]");
    with("servers = [\"2001:db8:1::18\"]\n").err("radius.secret");
    with("servers = [\"2001:db8:1::18\"]\nsecret = \"\"\n").err("radius.secret");
    with("servers = [\"2001:db8:1::18\"]\nsecret = \"s\"\ntimeout = 0\n").err("radius.timeout");
    let e = with("servers = [\"2001:db8:1::18\"]\nsecret = \"s\"\nmethod = \"mschap\"\n")
        .load()
        .expect_err("unknown method");
    assert!(e.to_string().contains("mschap"), "{e}");
    let d = Dir::new();
    d.write("radius.secret", "from-file\n");
    std::fs::set_permissions(
        d.0.join("radius.secret"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let loaded = with(
        "servers = [\"2001:db8:1::18\"]\nsecret_file = \"radius.secret\"\nmethod = \"pap\"\ntimeout = 1\nretries = 0\nrequire_message_authenticator = false\nnas_identifier = \"ha1\"\n",
    )
    .load_in(&d)
    .unwrap();
    let r = loaded.config.radius.as_ref().unwrap();
    assert_eq!(r.method, RadiusMethod::Pap);
    assert!(r.client.allow_pap);
    assert_eq!(r.client.tries, 1);
    assert!(!r.client.require_message_authenticator);
    assert_eq!(r.client.nas_identifier.as_deref(), Some("ha1"));
    assert_eq!(
        r.client.nas_ipv6_address,
        Some("2001:db8:1::1".parse().unwrap())
    );
    let warned = &loaded.warnings;
    assert!(
        warned.iter().any(|w| w.contains("radius.timeout")),
        "{warned:?}"
    );
    assert!(
        warned
            .iter()
            .any(|w| w.contains("radius.require_message_authenticator")),
        "{warned:?}"
    );
    // The secret is printed neither with the effective configuration nor in Debug.
    assert!(!format!("{:?}", loaded.config).contains("from-file"));
    let inline = with("servers = [\"2001:db8:1::18\"]\nsecret = \"inline-secret\"\n")
        .load()
        .unwrap();
    let printed = daemon::load::to_toml(&inline.config.file);
    assert!(!printed.contains("inline-secret"), "{printed}");
    assert!(!format!("{:?}", inline.config).contains("inline-secret"));
}

#[test]
fn ca_lists_and_private_key_spelling() {
    let c = issue()
        .ike(&format!(
            "identity = \"ha.example.com\"\ncertificate = \"{}\"\nprivate_key = \"{}\"\n",
            testdata("ha-cert.pem"),
            testdata("rsa2048-pkcs8.pem")
        ))
        .peers(&[&format!(
            "identity = \"mn1@example.com\"\nca = [\"{0}\", \"{0}\"]\n",
            testdata("ca.pem")
        )])
        .load()
        .unwrap()
        .config;
    assert!(matches!(c.ike.local_auth, LocalAuth::RsaSig { .. }));
    assert!(matches!(&c.peers[0].auth, PeerAuth::RsaSig { cas } if cas.len() == 2));
}

const DNS: &str = "\n[dns_update]\nserver = \"2001:db8:1::2\"\nzone = \"example.\"\nkey_name = \"mip6-ha\"\nkey_secret = \"bWlwNi1oYS1kbnMtbGFiLXRzaWctc2VjcmV0LTMyYg==\"\n";

#[test]
fn dns_update_and_name_rules() {
    let c = issue()
        .ike(&format!("{IKE}{DNS}"))
        .peers(&[
            &format!("{PEER}fqdn = \"mn1.example.\"\n"),
            "identity = \"mn2@example.com\"\npsk = \"y\"\nfqdn_suffix = \"mn.example\"\n",
        ])
        .load()
        .unwrap()
        .config;
    let d = c.dns_update.as_ref().expect("[dns_update]");
    assert_eq!(d.server, "[2001:db8:1::2]:53".parse().unwrap());
    assert_eq!(d.ttl, 300);
    assert_eq!(d.key.algorithm, dns_update::Algorithm::HmacSha256);
    let name = |s: &str| dns_update::Name::from_ascii(s).unwrap();
    assert!(c.peers[0].names.allows(&name("MN1.example")));
    assert!(!c.peers[0].names.allows(&name("mn2.example.")));
    assert!(c.peers[1].names.allows(&name("a.mn.example.")));
    assert!(!c.peers[1].names.allows(&name("mnx.example.")));
    assert!(
        !format!("{c:?}").contains("bWlwNi1oYS1"),
        "the secret is not printed"
    );
    // A name outside the zone, both rules at once, a bad key, no key.
    issue()
        .ike(&format!("{IKE}{DNS}"))
        .peers(&[&format!("{PEER}fqdn = \"mn1.example.org.\"\n")])
        .err("peers[0].fqdn");
    issue()
        .ike(&format!("{IKE}{DNS}"))
        .peers(&[&format!(
            "{PEER}fqdn = \"a.example.\"\nfqdn_suffix = \"example.\"\n"
        )])
        .err("peers[0].fqdn_suffix");
    issue()
        .ike(&format!("{IKE}{}", DNS.replace("bWlw", "!!!")))
        .err("dns_update.key_secret");
    issue()
        .ike(&format!(
            "{IKE}{}",
            DNS.replace("hmac", "x").replace("key_secret", "# ")
        ))
        .err("dns_update.key_secret");
    issue()
        .ike(&format!(
            "{IKE}{}",
            DNS.replace("2001:db8:1::2", "ns.example")
        ))
        .err("dns_update.server");
    // BIND's tsig-keygen file.
    let d = Dir::new();
    d.write(
        "ha.key",
        "key \"mip6-ha\" {\n\talgorithm hmac-sha512;\n\tsecret \"bWlwNi1oYS1kbnMtbGFiLXRzaWctc2VjcmV0LTMyYg==\";\n};\n",
    );
    std::fs::set_permissions(d.0.join("ha.key"), std::fs::Permissions::from_mode(0o600)).unwrap();
    let c = issue()
        .ike(&format!(
            "{IKE}\n[dns_update]\nserver = \"[2001:db8:1::2]:5353\"\nzone = \"example.\"\nkey_file = \"ha.key\"\n"
        ))
        .load_in(&d)
        .unwrap()
        .config;
    let dns = c.dns_update.unwrap();
    assert_eq!(dns.key.algorithm, dns_update::Algorithm::HmacSha512);
    assert_eq!(dns.server.port(), 5353);
}
