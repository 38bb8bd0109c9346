//! Proves the namespace lab (`testlab`) against the real peers: the lab comes up and goes away
//! without leftovers, two strongSwan charons (IKEv1, PSK, IPv6 Mode Config, kernel-libipsec)
//! build a tunnel through it and carry a ping, and Kea answers a relayed Solicit.
//!
//! Needs root and the packages of `scripts/install-deps.sh`; nothing is skipped.
//! Run: `cargo nextest run -p interop-tests` (tests run in parallel, each in its own lab).

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv6Addr};
use std::process::Command;
use std::time::{Duration, Instant};

use testlab::swanctl::{Auth, Child, Connection, Pool, Secret, Swanctl};
use testlab::{
    Charon, CharonOptions, ChildSaInfo, HA_HOME, HA_INET, HOME_HOST, Kea, KeaOptions, Lab, MN_COA,
    Node, SaInfo, Spawn, lab_prefix, lab_root,
};

/// The namespaces `ip netns list` shows.
fn netns_list() -> BTreeSet<String> {
    let out = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list");
    assert!(out.status.success(), "ip netns list failed");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}

/// Whether a process is alive: present and not a zombie.
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| !rest.starts_with('Z')))
        .unwrap_or(false)
}

fn timed<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let t = Instant::now();
    let v = f();
    eprintln!("timing: {what}: {:?}", t.elapsed());
    v
}

#[test]
fn lab_up_down() {
    let t0 = Instant::now();
    let lab = timed("Lab::new", || Lab::new("lab_up_down").expect("lab"));
    // A second lab with the same hint in the same process gets other names.
    let other = Lab::new("lab_up_down").expect("second lab");
    assert_ne!(lab.name(), other.name());
    drop(other);

    let names: Vec<String> = Node::ALL.iter().map(|&n| lab.netns(n).to_owned()).collect();
    let listed = netns_list();
    for n in &names {
        assert!(
            listed.contains(n),
            "{n} missing from ip netns list: {listed:?}"
        );
    }
    timed("two pings", || {
        lab.ping(Node::Mn, None, HA_INET).expect("mn -> ha-inet");
        lab.ping(Node::Dhcp, None, HA_HOME)
            .expect("home host -> ha-home");
    });
    let addrs = lab
        .exec_ok(Node::Ha, "ip", ["-6", "-o", "addr", "show"])
        .expect("ip addr");
    assert!(
        addrs.contains("ha-inet") && addrs.contains("2001:db8:ff::1/64"),
        "{addrs}"
    );
    assert!(
        addrs.contains("ha-home") && addrs.contains("2001:db8:1::1/64"),
        "{addrs}"
    );
    let fwd = lab
        .exec_ok(Node::Ha, "sysctl", ["-n", "net.ipv6.conf.all.forwarding"])
        .expect("sysctl");
    assert_eq!(fwd.trim(), "1");
    // No route from the MN to the home link: the lab has only its two links.
    let out = lab
        .exec(
            Node::Mn,
            "ping",
            ["-6", "-n", "-c", "1", "-W", "1", "2001:db8:1::2"],
        )
        .expect("ping");
    assert!(
        !out.status.success(),
        "the MN reached the home link without a tunnel"
    );

    // A process with a private /run: the file lands in the lab directory, not in the host's /run.
    let run = lab.dir().join("private-run");
    std::fs::create_dir_all(&run).expect("mkdir");
    let marker = format!("testlab-marker-{}", std::process::id());
    let script = format!("touch /run/{marker} && echo ready && exec sleep 600");
    let mut with_run = lab
        .spawn(
            Node::Ha,
            Spawn::new("sh")
                .args(["-c", &script])
                .private_run(&run)
                .log_name("with-run"),
        )
        .expect("spawn");
    with_run
        .wait_for_log("ready", Duration::from_secs(5))
        .expect("ready");
    assert!(run.join(&marker).exists());
    assert!(
        !std::path::Path::new("/run").join(&marker).exists(),
        "/run leaked to the host"
    );
    assert!(
        lab.pids_in(Node::Ha)
            .expect("pids")
            .contains(&with_run.pid())
    );

    // One process stopped through its guard, one leaked (mem::forget): the lab's drop must still
    // stop the leaked one, by its recorded PID.
    let mut stopped = lab
        .spawn(Node::Mn, Spawn::new("sleep").arg("600"))
        .expect("spawn");
    let stopped_pid = stopped.pid();
    let st = stopped.stop().expect("stop");
    assert!(!st.success(), "sleep ended by SIGTERM: {st}");
    assert!(!alive(stopped_pid));
    let leaked = lab
        .spawn(Node::Dhcp, Spawn::new("sleep").arg("600"))
        .expect("spawn");
    let leaked_pid = leaked.pid();
    std::mem::forget(leaked);
    let with_run_pid = with_run.pid();
    std::mem::forget(with_run);

    let dir = lab.dir().to_owned();
    timed("Lab drop", || drop(lab));
    let listed = netns_list();
    for n in &names {
        assert!(!listed.contains(n), "{n} left behind: {listed:?}");
    }
    assert!(!dir.exists(), "{} left behind", dir.display());
    assert!(
        !alive(leaked_pid),
        "leaked process {leaked_pid} still running"
    );
    assert!(!alive(with_run_pid), "process {with_run_pid} still running");
    eprintln!("timing: lab_up_down total: {:?}", t0.elapsed());
}

#[test]
fn stale_leftovers_are_removed() {
    // Fake what a killed test run leaves: namespaces and a directory of a lab whose owner PID is
    // dead, with a process still running inside one namespace and recorded in `pids`.
    let hint = "stale_leftovers_are_removed";
    let mut dead = Command::new("true").spawn().expect("true");
    let dead_pid = dead.id();
    dead.wait().expect("wait");
    let stale = format!("{}-{dead_pid}-0", lab_prefix(hint));
    let stale_ns: Vec<String> = ["mn", "ha", "dhcp"]
        .iter()
        .map(|r| format!("{stale}-{r}"))
        .collect();
    for ns in &stale_ns {
        let st = Command::new("ip")
            .args(["netns", "add", ns])
            .status()
            .expect("ip netns add");
        assert!(st.success(), "ip netns add {ns}");
    }
    let mut inside = Command::new("ip")
        .args(["netns", "exec", &stale_ns[1], "sleep", "600"])
        .spawn()
        .expect("sleep in stale ns");
    let mut recorded = Command::new("ip")
        .args(["netns", "exec", &stale_ns[0], "sleep", "600"])
        .spawn()
        .expect("sleep in stale ns");
    let stale_dir = lab_root().join(&stale);
    std::fs::create_dir_all(&stale_dir).expect("mkdir");
    std::fs::write(
        stale_dir.join("pids"),
        format!("{} 0 sleep\n", recorded.id()),
    )
    .expect("write pids");
    // Wait until the sleeps are inside their namespaces (ip netns exec has exec'd).
    let t = Instant::now();
    while !String::from_utf8_lossy(
        &Command::new("ip")
            .args(["netns", "pids", &stale_ns[1]])
            .output()
            .expect("pids")
            .stdout,
    )
    .contains(&inside.id().to_string())
    {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "sleep did not enter the namespace"
        );
        std::thread::sleep(Duration::from_millis(10));
    }

    let lab = timed("Lab::new with leftovers", || Lab::new(hint).expect("lab"));
    let listed = netns_list();
    for ns in &stale_ns {
        assert!(!listed.contains(ns), "stale {ns} not removed: {listed:?}");
    }
    assert!(!stale_dir.exists(), "stale directory not removed");
    // Both were signalled (TERM): they are our children, so reap them here.
    assert!(!inside.wait().expect("wait").success());
    assert!(!recorded.wait().expect("wait").success());
    lab.ping(Node::Mn, None, HA_INET).expect("new lab works");
}

#[test]
fn teardown_on_panic() {
    // A test that panics with a charon running: unwinding drops the lab, which stops charon,
    // deletes the namespaces (and charon's TUN with them) and removes the directory.
    let mut seen = None;
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let lab = Lab::new("teardown_on_panic").expect("lab");
        let ha =
            Charon::start(&lab, Node::Ha, CharonOptions::new("ha", ha_swanctl())).expect("charon");
        seen = Some((lab.name().to_owned(), lab.dir().to_owned(), ha.pid()));
        panic!("deliberate panic with charon {} running", ha.pid());
    }));
    assert!(result.is_err());
    let (name, dir, pid) = seen.expect("lab was created");
    assert!(!alive(pid), "charon {pid} survived the panic");
    assert!(!dir.exists(), "{} left behind", dir.display());
    let left: Vec<String> = netns_list()
        .into_iter()
        .filter(|n| n.starts_with(&name))
        .collect();
    assert!(left.is_empty(), "namespaces left behind: {left:?}");
}

const PSK: &str = "lab-shared-secret-0123456789";

/// charon as the home agent: PSK from any peer, Mode Config from an IPv6 pool, a tunnel to the
/// home prefix.
fn ha_swanctl() -> Swanctl {
    Swanctl::new()
        .connection(
            Connection::ikev1("mip6-psk")
                .proposals("aes128-sha256-modp2048")
                .local_addrs("2001:db8:ff::1")
                .pools("v6pool")
                .local(Auth::psk().id("ha.example.com"))
                .remote(Auth::psk().id("%any"))
                .child(
                    Child::new("home")
                        .local_ts("2001:db8:1::/64")
                        .esp_proposals("aes128-sha256-modp2048"),
                ),
        )
        .pool(Pool::new("v6pool", "2001:db8:1::1000/120").dns("2001:db8:1::53"))
        .secret(Secret::ike_psk(PSK))
}

/// charon as the mobile node: asks for an address (`vips = ::`), tunnels to the home prefix.
fn mn_swanctl() -> Swanctl {
    Swanctl::new()
        .connection(
            Connection::ikev1("mip6-psk")
                .proposals("aes128-sha256-modp2048")
                .local_addrs("2001:db8:ff::2")
                .remote_addrs("2001:db8:ff::1")
                .vips("::")
                .local(Auth::psk().id("mn1@example.com"))
                .remote(Auth::psk().id("ha.example.com"))
                .child(
                    Child::new("home")
                        .remote_ts("2001:db8:1::/64")
                        .esp_proposals("aes128-sha256-modp2048"),
                ),
        )
        .secret(Secret::ike_psk(PSK))
}

fn in_pool(ip: IpAddr) -> bool {
    // 2001:db8:1::1000/120
    matches!(ip, IpAddr::V6(v6) if v6.segments()[..7] == [0x2001, 0xdb8, 1, 0, 0, 0, 0] && v6.segments()[7] & 0xff00 == 0x1000)
}

fn only_sa(sas: &[SaInfo], who: &str) -> SaInfo {
    assert_eq!(sas.len(), 1, "{who}: expected one IKE SA: {sas:#?}");
    sas[0].clone()
}

fn counter(c: &ChildSaInfo, key: &str) -> u64 {
    c.fields.get(key).and_then(|v| v.parse().ok()).unwrap_or(0)
}

#[test]
fn charon_to_charon() {
    let t0 = Instant::now();
    let lab = Lab::new("charon_to_charon").expect("lab");
    let ha = timed("charon ha start+load", || {
        Charon::start(&lab, Node::Ha, CharonOptions::new("ha", ha_swanctl())).expect("ha")
    });
    let mn = timed("charon mn start+load", || {
        Charon::start(&lab, Node::Mn, CharonOptions::new("mn", mn_swanctl())).expect("mn")
    });

    let out = timed("initiate", || {
        mn.initiate("home", "mip6-psk").expect("initiate")
    });
    assert!(out.contains("initiate completed successfully"), "{out}");

    let mn_sa = only_sa(&mn.list_sas().expect("mn list"), "mn");
    let ha_sa = only_sa(
        &ha.wait_for_sas(Duration::from_secs(5), |s| {
            s.iter()
                .any(|sa| sa.child("home").is_some_and(|c| c.state == "INSTALLED"))
        })
        .expect("ha list"),
        "ha",
    );

    // IKE SA: both established, identities and cookies agree, both floated to 4500 and see
    // "NAT" (kernel-libipsec forces UDP encapsulation).
    for (sa, who) in [(&mn_sa, "mn"), (&ha_sa, "ha")] {
        assert_eq!(sa.state, "ESTABLISHED", "{who}: {sa:#?}");
        assert_eq!(sa.version, 1, "{who}");
        assert_eq!(
            (sa.local_port, sa.remote_port),
            (Some(4500), Some(4500)),
            "{who}: not floated to 4500"
        );
        // kernel-libipsec makes each charon fake the NAT-D hash of its own address, so each
        // end believes the *peer* is behind a NAT.
        assert!(
            sa.nat_any && sa.nat_remote && !sa.nat_local,
            "{who}: NAT flags: {sa:#?}"
        );
    }
    assert!(mn_sa.initiator && !ha_sa.initiator);
    assert_eq!(mn_sa.local_host, Some(IpAddr::V6(MN_COA)));
    assert_eq!(ha_sa.local_host, Some(IpAddr::V6(HA_INET)));
    assert_eq!(
        (mn_sa.local_id.as_str(), mn_sa.remote_id.as_str()),
        ("mn1@example.com", "ha.example.com")
    );
    assert_eq!(
        (ha_sa.local_id.as_str(), ha_sa.remote_id.as_str()),
        ("ha.example.com", "mn1@example.com")
    );
    assert_eq!(
        (&mn_sa.initiator_spi, &mn_sa.responder_spi),
        (&ha_sa.initiator_spi, &ha_sa.responder_spi)
    );

    // Mode Config: the MN got one address from the pool, and the HA handed out that one.
    assert_eq!(mn_sa.local_vips.len(), 1, "{mn_sa:#?}");
    let vip = mn_sa.local_vips[0];
    assert!(
        in_pool(vip),
        "virtual IP {vip} outside 2001:db8:1::1000/120"
    );
    assert_eq!(ha_sa.remote_vips, vec![vip]);
    let IpAddr::V6(vip6) = vip else {
        unreachable!("checked by in_pool")
    };

    // CHILD SA: mirrored SPIs, tunnel mode ESP in UDP, mirrored traffic selectors.
    let mc = mn_sa.child("home").expect("mn child");
    let hc = ha_sa.child("home").expect("ha child");
    assert_eq!(
        (mc.spi_in, mc.spi_out),
        (hc.spi_out, hc.spi_in),
        "SPIs not mirrored: {mc:#?} {hc:#?}"
    );
    assert_ne!(mc.spi_in, mc.spi_out);
    for (c, who) in [(mc, "mn"), (hc, "ha")] {
        assert_eq!(c.state, "INSTALLED", "{who}");
        assert_eq!(c.mode, "TUNNEL", "{who}");
        assert_eq!(c.protocol, "ESP", "{who}");
        assert!(c.encap, "{who}: ESP not UDP-encapsulated");
    }
    assert_eq!(mc.local_ts, vec![format!("{vip}/128")]);
    assert_eq!(mc.remote_ts, vec!["2001:db8:1::/64".to_owned()]);
    assert_eq!((&hc.local_ts, &hc.remote_ts), (&mc.remote_ts, &mc.local_ts));

    // charon's log shows the float to 4500 and the encapsulated Quick Mode.
    let mn_log = mn.log();
    assert!(
        mn_log.contains("sending packet: from 2001:db8:ff::2[4500] to 2001:db8:ff::1[4500]"),
        "no float to 4500 in the MN's log"
    );
    let ha_log = ha.log();
    assert!(
        ha_log.contains("local endpoint changed from 2001:db8:ff::1[500] to 2001:db8:ff::1[4500]")
    );
    eprintln!("--- charon mn: NAT/encapsulation lines ---");
    for line in mn_log.lines().filter(|l| interesting(l)) {
        eprintln!("{line}");
    }
    eprintln!("--- charon ha: NAT/encapsulation lines ---");
    for line in ha_log.lines().filter(|l| interesting(l)) {
        eprintln!("{line}");
    }

    // The virtual IP sits on the MN's TUN device (charon's kernel-libipsec "ipsec0").
    let tun = lab
        .exec_ok(
            Node::Mn,
            "ip",
            ["-6", "-o", "addr", "show", "dev", "ipsec0"],
        )
        .expect("ipsec0");
    assert!(tun.contains(&format!("{vip}/128")), "{tun}");

    // Traffic through the tunnel: MN (virtual IP) -> HA's home address, then -> the home-link
    // host, which needs a route back to the pool via the HA.
    timed("ping through the tunnel", || {
        lab.ping(Node::Mn, Some(vip6), HA_HOME)
            .expect("ping vip -> ha-home through libipsec");
        lab.route(Node::Dhcp, "2001:db8:1::1000/120", HA_HOME)
            .expect("route");
        lab.ping(Node::Mn, Some(vip6), HOME_HOST)
            .expect("ping vip -> home host through the HA");
    });
    let mc = only_sa(&mn.list_sas().expect("list"), "mn").children[0].clone();
    let hc = only_sa(&ha.list_sas().expect("list"), "ha").children[0].clone();
    assert!(
        counter(&mc, "packets-out") >= 2 && counter(&mc, "packets-in") >= 2,
        "{mc:#?}"
    );
    assert!(
        counter(&hc, "packets-out") >= 2 && counter(&hc, "packets-in") >= 2,
        "{hc:#?}"
    );

    timed("terminate", || mn.terminate("mip6-psk").expect("terminate"));
    ha.wait_for_sas(Duration::from_secs(5), <[SaInfo]>::is_empty)
        .expect("HA deleted its SAs");
    assert!(mn.list_sas().expect("list").is_empty());
    eprintln!("timing: charon_to_charon total: {:?}", t0.elapsed());
}

fn interesting(line: &str) -> bool {
    [
        "NAT",
        "4500",
        "endpoint changed",
        "encap",
        "UDP",
        "faking",
        "SAD entry",
        "QUICK_MODE",
        "CHILD_SA",
        "virtual IP",
    ]
    .iter()
    .any(|k| line.contains(k))
}

/// Runs the relay probe inside the HA's namespace and returns its stdout lines.
fn relay_probe(lab: &Lab, extra: &[&str]) -> Vec<String> {
    let mut args = vec![
        "--bind",
        "2001:db8:1::1",
        "--server",
        "2001:db8:1::2",
        "--link",
        "2001:db8:1::1",
    ];
    args.extend_from_slice(extra);
    let out = lab
        .exec(Node::Ha, env!("CARGO_BIN_EXE_dhcp6-relay-probe"), &args)
        .expect("probe");
    assert!(
        out.status.success(),
        "relay probe failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

fn line<'a>(lines: &'a [String], key: &str) -> Option<&'a str> {
    lines
        .iter()
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix(' ')))
}

fn iaaddr(lines: &[String]) -> Ipv6Addr {
    let l = line(lines, "iaaddr").unwrap_or_else(|| panic!("no address offered: {lines:?}"));
    l.split_whitespace()
        .next()
        .and_then(|a| a.parse().ok())
        .expect("address")
}

#[test]
fn kea_answers_relayed_solicit() {
    let t0 = Instant::now();
    let lab = Lab::new("kea_answers_relayed_solicit").expect("lab");
    let kea = timed("kea start", || {
        Kea::start(&lab, KeaOptions::new().rapid_commit(true)).expect("kea")
    });

    // A plain Solicit: Relay-reply carrying an Advertise with an address from the pool.
    let lines = timed("relayed Solicit -> Advertise", || {
        relay_probe(
            &lab,
            &[
                "--peer",
                "fe80::1",
                "--interface-id",
                "tun1",
                "--duid",
                "00030001020000000001",
            ],
        )
    });
    let relay = line(&lines, "relay-repl").expect("relay-repl");
    assert_eq!(
        relay,
        format!(
            "link 2001:db8:1::1 peer fe80::1 interface-id {}",
            "74756e31"
        ),
        "{lines:?}"
    );
    assert_eq!(
        line(&lines, "inner"),
        Some("type 2 xid 0a0b0c"),
        "not an Advertise: {lines:?}"
    );
    assert_eq!(line(&lines, "client-id"), Some("00030001020000000001"));
    assert!(line(&lines, "server-id").is_some());
    let offered = iaaddr(&lines);
    let o = offered.segments();
    assert!(
        o[..7] == [0x2001, 0xdb8, 1, 0, 0, 0, 0] && (0x100..=0x1ff).contains(&o[7]),
        "{offered}"
    );
    // An Advertise commits nothing.
    assert!(kea.leases().expect("leases").is_empty());

    // With Rapid Commit (enabled on the subnet): a Reply, and the lease is in the CSV.
    let lines = timed("relayed Solicit+Rapid Commit -> Reply", || {
        relay_probe(
            &lab,
            &[
                "--peer",
                "fe80::2",
                "--duid",
                "00030001020000000002",
                "--iaid",
                "7",
                "--rapid-commit",
            ],
        )
    });
    assert_eq!(
        line(&lines, "inner"),
        Some("type 7 xid 0a0b0c"),
        "not a Reply: {lines:?}"
    );
    assert!(lines.iter().any(|l| l == "rapid-commit"), "{lines:?}");
    let leased = iaaddr(&lines);
    let leases = kea.leases().expect("leases");
    let lease = leases
        .iter()
        .find(|l| l.address == leased)
        .unwrap_or_else(|| panic!("{leased} not in {leases:#?}"));
    assert_eq!(lease.duid, "00:03:00:01:02:00:00:00:00:02");
    assert_eq!(lease.iaid, 7);
    assert_eq!(lease.lease_type, 0);
    assert!(lease.valid_lifetime > 0);
    assert!(kea.log().contains("DHCP6_STARTED"), "{}", kea.log());
    eprintln!(
        "timing: kea_answers_relayed_solicit total: {:?}",
        t0.elapsed()
    );
}
