//! Home agent discovery by DNS (RFC 5026 §5, `ha-discovery`) against real BIND 9.18 (Debian's
//! `bind9`) in the namespace lab: the `ha-discovery-probe` helper runs in the home agent's
//! namespace and asks BIND on the home link (`[2001:db8:1::2]:53`) through hickory-resolver.
//!
//! - SRV `_mip6._ipv6.example.` with two targets of different priorities (the lower listed
//!   second in the zone) → both home agents, lowest priority first, each with its AAAA.
//! - A name with no SRV record but an AAAA → the AAAA fallback (RFC 5026 §5.1).
//! - NXDOMAIN, a name without AAAA, a lone `.` SRV target (RFC 2782: not available), an SRV
//!   target that does not exist → the matching errors, naming the name.
//! - A server that never answers → the timeout error, within the configured limits.
//! - A literal address → itself, without any query.
//!
//! Needs root and the packages of `scripts/install-deps.sh`; nothing is skipped.

use std::net::Ipv6Addr;
use std::time::Duration;

use testlab::{Bind, BindOptions, HOME_HOST, Lab, Node, Spawn};

const SERVER: &str = "[2001:db8:1::2]:53";
const HA1: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 1);
const HA2: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 3);
const PLAIN: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 7);

/// One `ha-discovery-probe` run.
struct Probe {
    ok: bool,
    /// `(addr, target, priority, weight)` per candidate line.
    candidates: Vec<(Ipv6Addr, String, u16, u16)>,
    /// `(kind, message)` of the error line.
    error: Option<(String, String)>,
    elapsed: Duration,
    text: String,
}

fn probe(lab: &Lab, args: &[&str]) -> Probe {
    let out = lab
        .exec(Node::Ha, env!("CARGO_BIN_EXE_ha-discovery-probe"), args)
        .expect("ha-discovery-probe");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let text = format!(
        "args {args:?}\nstdout:\n{stdout}stderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_ne!(out.status.code(), Some(2), "usage error: {text}");
    let mut p = Probe {
        ok: out.status.success(),
        candidates: Vec::new(),
        error: None,
        elapsed: Duration::ZERO,
        text: text.clone(),
    };
    for line in stdout.lines() {
        let w: Vec<&str> = line.split_whitespace().collect();
        match w.as_slice() {
            ["candidate", addr, "target", t, "priority", pr, "weight", wt] => {
                p.candidates.push((
                    addr.parse().expect("address"),
                    (*t).to_owned(),
                    pr.parse().expect("priority"),
                    wt.parse().expect("weight"),
                ));
            }
            ["error", kind, ..] => {
                let msg = line
                    .split_once(kind)
                    .map(|(_, m)| m.trim().to_owned())
                    .unwrap_or_default();
                p.error = Some(((*kind).to_owned(), msg));
            }
            ["elapsed-ms", ms] => p.elapsed = Duration::from_millis(ms.parse().expect("ms")),
            _ => panic!("unexpected line {line:?} in {text}"),
        }
    }
    p
}

fn start_bind(lab: &Lab) -> Bind {
    Bind::start(
        lab,
        BindOptions::new("example.")
            // The higher priority first in the zone: the order must come from the records.
            .record("_mip6._ipv6 IN SRV 20 0 0 ha2.example.")
            .record("_mip6._ipv6 IN SRV 10 0 0 ha1.example.")
            .record(&format!("ha1 IN AAAA {HA1}"))
            .record(&format!("ha2 IN AAAA {HA2}"))
            .record(&format!("plain-ha IN AAAA {PLAIN}"))
            .record("textonly IN TXT \"no address here\"")
            .record("_mip6._ipv6.closed IN SRV 0 0 0 .")
            .record("closed IN AAAA 2001:db8:1::9")
            .record("_mip6._ipv6.dangling IN SRV 0 0 0 gone.example."),
    )
    .expect("bind")
}

#[test]
fn srv_records_give_home_agents_in_priority_order() {
    let lab = Lab::new("discovery_srv").expect("lab");
    let bind = start_bind(&lab);
    // BIND serves what the test set up (dig, independently of hickory).
    let srv = bind
        .query(&lab, "_mip6._ipv6.example.", "SRV")
        .expect("dig");
    assert_eq!(srv.len(), 2, "{srv:?}");

    for seed in ["1", "2", "3"] {
        let p = probe(&lab, &["--server", SERVER, "--seed", seed, "example."]);
        assert!(p.ok, "{}\nbind log:\n{}", p.text, bind.log());
        assert_eq!(
            p.candidates,
            [
                (HA1, "ha1.example.".to_owned(), 10, 0),
                (HA2, "ha2.example.".to_owned(), 20, 0),
            ],
            "{}",
            p.text
        );
        assert!(p.elapsed < Duration::from_secs(1), "{}", p.text);
    }
    // A relative name is taken as absolute (no search list).
    let p = probe(&lab, &["--server", SERVER, "example"]);
    assert_eq!(p.candidates.len(), 2, "{}", p.text);
    assert_eq!(p.candidates[0].0, HA1, "{}", p.text);
}

#[test]
fn plain_name_falls_back_to_its_aaaa_and_literals_need_no_query() {
    let lab = Lab::new("discovery_aaaa").expect("lab");
    let bind = start_bind(&lab);
    let p = probe(&lab, &["--server", SERVER, "plain-ha.example."]);
    assert!(p.ok, "{}\nbind log:\n{}", p.text, bind.log());
    assert_eq!(
        p.candidates,
        [(PLAIN, "plain-ha.example.".to_owned(), 0, 0)],
        "{}",
        p.text
    );
    // A literal: no query at all (this server does not exist).
    let p = probe(&lab, &["--server", "[2001:db8:1::99]:53", "2001:db8:1::1"]);
    assert!(p.ok, "{}", p.text);
    assert_eq!(
        p.candidates,
        [(HA1, "2001:db8:1::1".to_owned(), 0, 0)],
        "{}",
        p.text
    );
}

#[test]
fn failures_name_the_name_and_what_failed() {
    let lab = Lab::new("discovery_errors").expect("lab");
    let bind = start_bind(&lab);
    let cases: &[(&str, &str, &str)] = &[
        (
            "nosuch.example.",
            "nxdomain",
            "nosuch.example.: NXDOMAIN (the name does not exist)",
        ),
        (
            "textonly.example.",
            "no-aaaa",
            "textonly.example.: no AAAA record",
        ),
        (
            "closed.example.",
            "not-available",
            "_mip6._ipv6.closed.example.: SRV target \".\", the service is not available at this domain",
        ),
        (
            "dangling.example.",
            "no-addresses",
            "_mip6._ipv6.dangling.example.: no SRV target has an AAAA address \
             (gone.example.: NXDOMAIN (the name does not exist))",
        ),
    ];
    for (name, kind, message) in cases {
        let p = probe(&lab, &["--server", SERVER, name]);
        assert!(!p.ok, "{}", p.text);
        assert!(p.candidates.is_empty(), "{}", p.text);
        let (k, m) = p.error.as_ref().unwrap_or_else(|| panic!("{}", p.text));
        assert_eq!((k.as_str(), m.as_str()), (*kind, *message), "{}", p.text);
        // Negative answers come back at once, not after a timeout.
        assert!(
            p.elapsed < Duration::from_secs(1),
            "{}\n{}",
            p.text,
            bind.log()
        );
    }
}

#[test]
fn silent_server_is_a_timeout() {
    let lab = Lab::new("discovery_timeout").expect("lab");
    // A UDP socket on the home-link host that never reads: no answer, no ICMP.
    let script = format!(
        "import socket, time\n\
         s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)\n\
         s.bind(('{HOME_HOST}', 5353))\n\
         print('bound', flush=True)\n\
         time.sleep(120)\n"
    );
    let mut silent = lab
        .spawn(
            Node::Dhcp,
            Spawn::new("/usr/bin/python3")
                .args(["-c", &script])
                .log_name("silent-dns"),
        )
        .expect("python3");
    silent
        .wait_for_log("bound", Duration::from_secs(10))
        .expect("silent server bound");
    let p = probe(
        &lab,
        &[
            "--server",
            "[2001:db8:1::2]:5353",
            "--timeout-ms",
            "300",
            "--attempts",
            "1",
            "example.",
        ],
    );
    assert!(!p.ok, "{}", p.text);
    let (k, m) = p.error.as_ref().unwrap_or_else(|| panic!("{}", p.text));
    assert_eq!(k, "timeout", "{}", p.text);
    assert_eq!(m, "_mip6._ipv6.example.: SRV query timed out", "{}", p.text);
    assert!(
        p.elapsed >= Duration::from_millis(250) && p.elapsed < Duration::from_secs(3),
        "{}",
        p.text
    );
}
