//! Our IKEv1 engine against strongSwan 5.9's charon (kernel-libipsec, so NAT-T and ESP in UDP
//! are forced) in the namespace lab, in both roles: Main Mode, Mode Config (an IPv6 address)
//! and Quick Mode, with PSK and RSA signatures, ECP and MODP groups. Both sides are checked:
//! `swanctl --list-sas` must show the SA with the SPIs and selectors our engine reports.
//!
//! Our side runs as the `ike-peer` binary of this package inside a namespace.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;
use testlab::swanctl::{self, Child, Connection, Pool, Swanctl};
use testlab::{Charon, CharonOptions, HA_INET, Lab, MN_COA, Node, SaInfo, Spawn};

const PSK: &str = "interop-psk-0123456789";
/// The home address of the runs without Mode Config (`address_source = "static"`).
const STATIC_HOA: std::net::Ipv6Addr = std::net::Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x77);

fn ike_peer() -> &'static str {
    env!("CARGO_BIN_EXE_ike-peer")
}

/// Waits until the JSON written by `ike-peer` satisfies `ok`.
fn wait_json(path: &Path, what: &str, timeout: Duration, ok: impl Fn(&Value) -> bool) -> Value {
    let end = Instant::now() + timeout;
    loop {
        if let Ok(s) = std::fs::read_to_string(path)
            && let Ok(v) = serde_json::from_str::<Value>(&s)
        {
            if ok(&v) {
                return v;
            }
            if Instant::now() > end {
                panic!("timed out waiting for {what}; ike-peer state: {v:#}");
            }
        }
        assert!(
            Instant::now() <= end,
            "timed out waiting for {what}: no state file {}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn children(v: &Value) -> Vec<Value> {
    v["children"].as_array().cloned().unwrap_or_default()
}

fn hex32(v: &Value) -> u32 {
    u32::from_str_radix(v.as_str().expect("hex string"), 16).expect("hex")
}

fn only_sa(sas: Vec<SaInfo>) -> SaInfo {
    assert_eq!(sas.len(), 1, "charon SAs: {sas:#?}");
    sas.into_iter().next().expect("one SA")
}

/// Stops `ike-peer` through its stop file (it deletes its SAs) and waits for it to exit.
fn stop_peer(out: &Path, proc: &mut testlab::Proc) {
    std::fs::write(out.with_extension("stop"), b"").expect("stop file");
    let end = Instant::now() + Duration::from_secs(10);
    while proc.is_running() {
        assert!(
            Instant::now() < end,
            "ike-peer did not exit: {}",
            proc.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn charon_ha(lab: &Lab, proposals: &str, child: Child, auth: &Auth, pool: bool) -> Charon {
    let (local_auth, remote_auth) = auth.charon_parts("ha");
    let mut conn = Connection::ikev1("mip6")
        .proposals(proposals)
        .local_addrs(HA_INET)
        .local(local_auth)
        .remote(remote_auth.id("mn1@example.com"))
        .child(child);
    if pool {
        conn = conn.pools("v6pool");
    }
    let conf = Swanctl::new()
        .connection(conn)
        .pool(Pool::new("v6pool", "2001:db8:1::1000/120").dns("2001:db8:1::53"));
    Charon::start(
        lab,
        Node::Ha,
        auth.files(CharonOptions::new("ha", auth.secrets(conf)), "ha"),
    )
    .expect("charon ha")
}

/// How the two sides authenticate.
enum Auth {
    Psk,
    Rsa(Pki),
}

/// A CA and two end-entity certificates made with openssl for one test.
struct Pki {
    dir: PathBuf,
}

impl Pki {
    fn new(dir: &Path) -> Self {
        let dir = dir.join("pki");
        std::fs::create_dir_all(&dir).expect("pki dir");
        let run = |args: &[&str]| {
            let o = std::process::Command::new("openssl")
                .args(args)
                .current_dir(&dir)
                .output()
                .expect("openssl");
            assert!(
                o.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        };
        run(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/O=mip6 lab/CN=lab CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        for (name, san) in [
            ("ha", "DNS:ha.example.com"),
            ("mn", "email:mn1@example.com"),
        ] {
            run(&[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.csr"),
                "-subj",
                &format!("/O=mip6 lab/CN={name}"),
            ]);
            std::fs::write(
                dir.join(format!("{name}.ext")),
                format!("subjectAltName={san}\nbasicConstraints=CA:FALSE\n"),
            )
            .expect("ext");
            run(&[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &format!("{name}.pem"),
                "-days",
                "2",
                "-sha256",
                "-extfile",
                &format!("{name}.ext"),
            ]);
            // charon's pkcs1 plugin reads PKCS#1 "RSA PRIVATE KEY" files.
            run(&[
                "rsa",
                "-in",
                &format!("{name}.key"),
                "-traditional",
                "-out",
                &format!("{name}-rsa.key"),
            ]);
        }
        Self { dir }
    }
    fn path(&self, f: &str) -> String {
        self.dir.join(f).display().to_string()
    }
}

impl Auth {
    /// (local section, remote section) of a swanctl connection for `who` ("ha" or "mn");
    /// the certificates are the files [`Auth::files`] puts in place.
    fn charon_parts(&self, who: &str) -> (swanctl::Auth, swanctl::Auth) {
        let id = if who == "ha" {
            "ha.example.com"
        } else {
            "mn1@example.com"
        };
        match self {
            Self::Psk => (swanctl::Auth::psk().id(id), swanctl::Auth::psk()),
            Self::Rsa(_) => (
                swanctl::Auth::pubkey().id(id).certs(&format!("{who}.pem")),
                swanctl::Auth::pubkey().cacerts("ca.pem"),
            ),
        }
    }
    /// charon's secrets: the PSK, if that is how the sides authenticate.
    fn secrets(&self, conf: Swanctl) -> Swanctl {
        match self {
            Self::Psk => conf.secret(swanctl::Secret::ike_psk(PSK)),
            Self::Rsa(_) => conf,
        }
    }
    /// charon's credentials for `who`: its certificate, key and the CA.
    fn files(&self, opts: CharonOptions, who: &str) -> CharonOptions {
        let Self::Rsa(pki) = self else { return opts };
        let read = |f: &str| std::fs::read(pki.dir.join(f)).expect("read pki file");
        opts.file("x509ca/ca.pem", read("ca.pem"))
            .file(format!("x509/{who}.pem"), read(&format!("{who}.pem")))
            .file(format!("rsa/{who}.key"), read(&format!("{who}-rsa.key")))
    }

    /// Our `ike-peer` options.
    fn peer_args(&self, who: &str) -> Vec<String> {
        match self {
            Self::Psk => vec!["--psk".into(), PSK.into()],
            Self::Rsa(pki) => vec![
                "--key".into(),
                pki.path(&format!("{who}.key")),
                "--cert".into(),
                pki.path(&format!("{who}.pem")),
                "--ca".into(),
                pki.path("ca.pem"),
            ],
        }
    }
}

/// Our initiator (the MN) against charon as the HA.
/// With `modecfg` the MN asks for an address and tunnels it to the home prefix; without, it
/// tunnels its care-of address and adds the RFC 3776 transport SA (protocol 135).
fn ours_initiate(test: &str, ike: &str, esp: &str, auth_kind: &str, modecfg: bool) {
    let lab = Lab::new(test).expect("lab");
    let auth = match auth_kind {
        "rsa" => Auth::Rsa(Pki::new(lab.dir())),
        _ => Auth::Psk,
    };
    let mut home = Child::new("home")
        .local_ts("2001:db8:1::/64")
        .esp_proposals(esp);
    // Without Mode Config the MN uses a static home address, which charon's child names.
    if !modecfg {
        home = home.remote_ts(STATIC_HOA);
    }
    let charon = charon_ha(&lab, ike, home, &auth, modecfg);
    let out = lab.dir().join("mn.json");
    let mut args: Vec<String> = [
        "--role",
        "initiator",
        "--local",
        &MN_COA.to_string(),
        "--remote",
        &HA_INET.to_string(),
        "--id",
        "mn1@example.com",
        "--peer-id",
        "ha.example.com",
        "--ike",
        ike,
        "--esp",
        esp,
        "--out",
        &out.display().to_string(),
        "--hold",
        "60",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    args.extend(auth.peer_args("mn"));
    let child_specs = if modecfg {
        vec!["tunnel:vip:2001:db8:1::/64".to_owned()]
    } else {
        // A static home address: charon's kernel-libipsec cannot tunnel the peer's IKE
        // address itself ("conflicts with IKE traffic").
        vec![format!("tunnel:{STATIC_HOA}:2001:db8:1::/64")]
    };
    if modecfg {
        args.push("--modecfg".into());
    }
    for c in &child_specs {
        args.extend(["--child".to_owned(), c.clone()]);
    }
    let mut peer = lab
        .spawn(
            Node::Mn,
            Spawn::new(ike_peer())
                .args(&args)
                .env("RUST_LOG", "debug")
                .log_name("ike-peer"),
        )
        .expect("ike-peer");
    let t = Instant::now();
    let n = child_specs.len();
    let state = wait_json(&out, "the child SAs", Duration::from_secs(20), |v| {
        children(v).len() == n || !v["failures"].as_array().is_none_or(Vec::is_empty)
    });
    eprintln!(
        "phase 1 {}+ {n} Quick Mode(s) took {:?}",
        if modecfg { "+ Mode Config " } else { "" },
        t.elapsed()
    );
    assert!(
        state["failures"].as_array().is_none_or(Vec::is_empty),
        "ike-peer failures: {state:#}\n{}",
        peer.log()
    );
    assert_eq!(state["ike"]["remote_id"], "ha.example.com");
    assert_eq!(
        state["ike"]["nat"], true,
        "charon with libipsec forces NAT-T"
    );
    assert_eq!(state["ike"]["proposal"], ike);
    let vip: Option<IpAddr> = state["vip"].as_str().map(|v| v.parse().expect("vip addr"));
    assert_eq!(vip.is_some(), modecfg, "Mode Config address: {state:#}");
    let inner = vip.unwrap_or(IpAddr::V6(STATIC_HOA));

    let sa = only_sa(
        charon
            .wait_for_sas(Duration::from_secs(5), |s| {
                s.iter().any(|sa| sa.children.len() == n)
            })
            .expect("list-sas"),
    );
    assert_eq!(sa.state, "ESTABLISHED");
    assert_eq!(sa.remote_id, "mn1@example.com");
    assert_eq!(
        sa.remote_vips,
        vip.into_iter().collect::<Vec<_>>(),
        "charon assigned the address our engine reports"
    );
    assert_eq!((sa.local_port, sa.remote_port), (Some(4500), Some(4500)));
    assert_eq!(
        state["ike"]["cookie_i"].as_str(),
        Some(sa.initiator_spi.as_str())
    );
    assert_eq!(
        state["ike"]["cookie_r"].as_str(),
        Some(sa.responder_spi.as_str())
    );
    for c in children(&state) {
        let theirs = sa
            .children
            .iter()
            .find(|x| x.spi_in == hex32(&c["spi_out"]))
            .unwrap_or_else(|| {
                panic!(
                    "charon has no CHILD SA with SPI {}: {:#?}",
                    c["spi_out"], sa.children
                )
            });
        assert_eq!(theirs.spi_out, hex32(&c["spi_in"]));
        assert!(theirs.encap, "ESP in UDP");
        assert_eq!(theirs.state, "INSTALLED");
        let ours_local = c["local_ts"].as_str().expect("ts").to_owned();
        let ours_remote = c["remote_ts"].as_str().expect("ts").to_owned();
        assert_eq!(c["mode"], "tunnel");
        assert_eq!(theirs.mode, "TUNNEL");
        assert_eq!(ours_local, format!("{inner}/128"));
        assert_eq!(theirs.remote_ts, vec![ours_local]);
        assert_eq!(theirs.local_ts, vec![ours_remote]);
    }
    // Deleting on our side removes the SAs at charon.
    stop_peer(&out, &mut peer);
    charon
        .wait_for_sas(Duration::from_secs(5), <[SaInfo]>::is_empty)
        .expect("charon removed the SAs after our Delete");
}

#[test]
fn ours_initiator_psk_modp2048_pfs() {
    ours_initiate(
        "ours_init_psk_modp",
        "aes128-sha256-modp2048",
        "aes128-sha256-modp2048",
        "psk",
        true,
    );
}

#[test]
fn ours_initiator_psk_ecp256_gcm_static_hoa() {
    ours_initiate(
        "ours_init_psk_ecp",
        "aes128-sha256-ecp256",
        "aes128gcm16",
        "psk",
        false,
    );
}

#[test]
fn ours_initiator_rsa_ecp384() {
    ours_initiate(
        "ours_init_rsa",
        "aes256-sha384-ecp384",
        "aes256-sha256",
        "rsa",
        true,
    );
}

/// charon as the MN (`vips = ::`) against our responder.
fn charon_initiate(test: &str, ike: &str, esp: &str, auth_kind: &str) {
    let lab = Lab::new(test).expect("lab");
    let auth = match auth_kind {
        "rsa" => Auth::Rsa(Pki::new(lab.dir())),
        _ => Auth::Psk,
    };
    let out = lab.dir().join("ha.json");
    let mut args: Vec<String> = [
        "--role",
        "responder",
        "--local",
        &HA_INET.to_string(),
        "--id",
        "ha.example.com",
        "--peer-id",
        "mn1@example.com",
        "--ike",
        ike,
        "--esp",
        esp,
        "--pool",
        "2001:db8:1::2000",
        "--dns",
        "2001:db8:1::53",
        "--local-ts",
        "2001:db8:1::/64",
        "--out",
        &out.display().to_string(),
        "--hold",
        "60",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    args.extend(auth.peer_args("ha"));
    let mut peer = lab
        .spawn(
            Node::Ha,
            Spawn::new(ike_peer())
                .args(&args)
                .env("RUST_LOG", "debug")
                .log_name("ike-peer"),
        )
        .expect("ike-peer");
    std::thread::sleep(Duration::from_millis(100));
    let (local_auth, remote_auth) = auth.charon_parts("mn");
    let conf = Swanctl::new().connection(
        Connection::ikev1("mip6")
            .proposals(ike)
            .local_addrs(MN_COA)
            .remote_addrs(HA_INET)
            .vips("::")
            .local(local_auth)
            .remote(remote_auth.id("ha.example.com"))
            .child(
                Child::new("home")
                    .remote_ts("2001:db8:1::/64")
                    .esp_proposals(esp),
            ),
    );
    let charon = Charon::start(
        &lab,
        Node::Mn,
        auth.files(CharonOptions::new("mn", auth.secrets(conf)), "mn"),
    )
    .expect("charon mn");
    let t = Instant::now();
    let res = charon.initiate("home", "mip6").expect("swanctl --initiate");
    eprintln!(
        "charon's bootstrap against our responder took {:?}",
        t.elapsed()
    );
    assert!(
        res.contains("initiate completed successfully"),
        "{res}\n--- ike-peer ---\n{}\n--- charon ---\n{}",
        peer.log(),
        charon.log()
    );
    let sa = only_sa(charon.list_sas().expect("list-sas"));
    assert_eq!(sa.state, "ESTABLISHED");
    assert_eq!(sa.remote_id, "ha.example.com");
    let state = wait_json(&out, "one child SA", Duration::from_secs(5), |v| {
        children(v).len() == 1
    });
    let assigned: IpAddr = state["assigned"]
        .as_str()
        .expect("assigned")
        .parse()
        .expect("addr");
    assert_eq!(
        assigned,
        "2001:db8:1::2000".parse::<IpAddr>().expect("addr")
    );
    assert_eq!(
        sa.local_vips,
        vec![assigned],
        "charon got the address our responder assigned"
    );
    assert_eq!(state["ike"]["remote_id"], "mn1@example.com");
    assert_eq!(
        state["ike"]["cookie_i"].as_str(),
        Some(sa.initiator_spi.as_str())
    );
    let c = &children(&state)[0];
    let theirs = sa.child("home").expect("charon child");
    assert_eq!(
        (theirs.spi_in, theirs.spi_out),
        (hex32(&c["spi_out"]), hex32(&c["spi_in"]))
    );
    assert_eq!(theirs.mode, "TUNNEL");
    assert!(theirs.encap);
    assert_eq!(
        theirs.local_ts,
        vec![c["remote_ts"].as_str().expect("ts").to_owned()]
    );
    assert_eq!(
        theirs.remote_ts,
        vec![c["local_ts"].as_str().expect("ts").to_owned()]
    );
    assert_eq!(c["remote_ts"], format!("{assigned}/128"));
    // charon deletes: our responder sees the Delete and drops its SAs.
    charon.terminate("mip6").expect("terminate");
    wait_json(&out, "children deleted", Duration::from_secs(5), |v| {
        children(v).is_empty()
    });
    stop_peer(&out, &mut peer);
}

#[test]
fn charon_initiator_psk_ecp256_gcm() {
    charon_initiate(
        "charon_init_psk_ecp",
        "aes128-sha256-ecp256",
        "aes128gcm16",
        "psk",
    );
}

#[test]
fn charon_initiator_psk_modp2048_pfs() {
    charon_initiate(
        "charon_init_psk_modp",
        "aes128-sha1-modp2048",
        "aes128-sha1-modp2048",
        "psk",
    );
}

#[test]
fn charon_initiator_rsa_modp2048() {
    charon_initiate(
        "charon_init_rsa",
        "aes256-sha256-modp2048",
        "aes128gcm16",
        "rsa",
    );
}

/// The RFC 3776 transport SA (protocol 135) against charon: charon accepts our Quick Mode and
/// answers it (with NAT-OA, RFC 3947 §5.2), but its kernel-libipsec has no transport mode and
/// fails to install it ("failed to create SAD entry"), so it deletes the SA again. What can be
/// checked is the negotiation: the SPIs our engine reports are the ones charon logs, and
/// charon's Delete reaches us.
#[test]
fn ours_initiator_transport_mh_negotiates() {
    let lab = Lab::new("ours_init_transport").expect("lab");
    let mh = Child::new("mh")
        .mode("transport")
        .local_ts(format!("{HA_INET}[135]"))
        .remote_ts(format!("{MN_COA}[135]"))
        .esp_proposals("aes128gcm16");
    let charon = charon_ha(&lab, "aes128-sha256-ecp256", mh, &Auth::Psk, false);
    let out = lab.dir().join("mn.json");
    let spec = format!("transport:{MN_COA}[135/0]:{HA_INET}[135/0]");
    let (mn, ha, path) = (
        MN_COA.to_string(),
        HA_INET.to_string(),
        out.display().to_string(),
    );
    let args = [
        "--role",
        "initiator",
        "--local",
        &mn,
        "--remote",
        &ha,
        "--id",
        "mn1@example.com",
        "--peer-id",
        "ha.example.com",
        "--psk",
        PSK,
        "--ike",
        "aes128-sha256-ecp256",
        "--esp",
        "aes128gcm16",
        "--child",
        &spec,
        "--out",
        &path,
        "--hold",
        "60",
    ];
    let mut peer = lab
        .spawn(
            Node::Mn,
            Spawn::new(ike_peer()).args(args).log_name("ike-peer"),
        )
        .expect("ike-peer");
    // Established at our side...
    wait_json(&out, "the transport SA", Duration::from_secs(10), |v| {
        peer_log_has(&lab, "IPsec SA established") || !children(v).is_empty()
    });
    let log = std::fs::read_to_string(lab.dir().join("ike-peer.log")).unwrap_or_default();
    let line = log
        .lines()
        .find(|l| l.contains("IPsec SA established"))
        .unwrap_or_else(|| panic!("no SA established: {log}"));
    assert!(line.contains("mode=transport"), "{line}");
    assert!(line.contains("[135/0]"), "{line}");
    let spi_in = field(line, "spi_in=");
    // ... answered by charon (with NAT-OA for transport mode behind a NAT) ...
    let clog = charon.log();
    assert!(clog.contains("generating QUICK_MODE response"), "{clog}");
    // ... which fails to install it and deletes the very SA (naming our SPI).
    wait_json(&out, "charon's Delete", Duration::from_secs(10), |v| {
        children(v).is_empty() && peer_log_has(&lab, "peer deleted an IPsec SA")
    });
    let clog = charon.log();
    assert!(
        clog.contains(&format!(
            "sending DELETE for ESP CHILD_SA with SPI {spi_in}"
        )),
        "charon did not delete our SA {spi_in}:\n{clog}"
    );
    stop_peer(&out, &mut peer);
}

fn peer_log_has(lab: &Lab, needle: &str) -> bool {
    std::fs::read_to_string(lab.dir().join("ike-peer.log")).is_ok_and(|l| l.contains(needle))
}

/// The value of `key` (e.g. `spi_in=`) in a log line.
fn field(line: &str, key: &str) -> String {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key))
        .unwrap_or_else(|| panic!("no {key} in {line}"))
        .to_owned()
}
