//! DNS UPDATE (RFC 2136) with TSIG (RFC 8945) against BIND 9.18 (Debian's `bind9`) in the
//! namespace lab. The `dns-update-probe` helper runs the sans-IO `dns-update` engine over a UDP
//! socket in the home agent's namespace and talks to BIND on the home link
//! (`[2001:db8:1::2]:53`); `dig` (through [`Bind::query`]) checks what BIND serves.
//!
//! - The lab's [`Bind`] itself: `nsupdate -k` with the granted key adds an AAAA that `dig`
//!   then sees; without a key the update is REFUSED.
//! - Replace (one, then two addresses) → NOERROR, signed by BIND and verified with the key;
//!   `dig` shows exactly the new addresses. Delete → NOERROR, the AAAA is gone.
//! - The key read from the `tsig-keygen` file the lab wrote, and a real `tsig-keygen -a
//!   hmac-sha512` key.
//! - A wrong secret → NOTAUTH with TSIG error BADSIG, unsigned; an unknown key → NOTAUTH/BADKEY,
//!   unsigned; nothing changes in the zone.
//! - A key without a grant → REFUSED, signed by BIND and verified.
//! - A clock 1000 s ahead → NOTAUTH/BADTIME, signed with BIND's time and verified.
//! - Every response MAC corrupted before the engine sees it → the probe retransmits, then
//!   reports a bad response (the MAC does not verify), although BIND applied the update.
//!
//! Needs root and the packages of `scripts/install-deps.sh`; nothing is skipped.

use std::net::Ipv6Addr;

use testlab::{Bind, BindOptions, HOME_HOST, Lab, Node};

const KEY: &str = "ha-key";
const SECRET: &str = "V1oILbFeMjnJAdFl0BC05Mno9ZJ1tRIEvYwXCSQKdcA=";
/// Same length, another secret.
const WRONG_SECRET: &str = "AAAALbFeMjnJAdFl0BC05Mno9ZJ1tRIEvYwXCSQKdcA=";
/// A key BIND knows but that has no grant.
const NO_GRANT_KEY: &str = "nogrant-key";

fn bind_options() -> BindOptions {
    BindOptions::new("example.")
        .key(KEY, "hmac-sha256", SECRET)
        .key(NO_GRANT_KEY, "hmac-sha256", SECRET)
        .grant(KEY, "zonesub", "AAAA")
        .record("existing 300 IN AAAA 2001:db8:1::42")
}

/// Output of one `dns-update-probe` run: its `key value…` lines.
struct Probe {
    lines: Vec<(String, String)>,
    text: String,
}

impl Probe {
    fn get(&self, key: &str) -> &str {
        self.lines
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no {key} line in:\n{}", self.text))
    }

    fn stat(&self, name: &str) -> u64 {
        let words: Vec<&str> = self.get("stats").split_whitespace().collect();
        let i = words
            .iter()
            .position(|w| *w == name)
            .unwrap_or_else(|| panic!("no {name} in stats: {}", self.text));
        words[i + 1].parse().expect("counter")
    }
}

fn probe(lab: &Lab, bind: &Bind, args: &[&str]) -> Probe {
    let server = bind.addr().to_string();
    let mut all = vec!["--server", server.as_str()];
    all.extend_from_slice(args);
    let out = lab
        .exec(Node::Ha, env!("CARGO_BIN_EXE_dns-update-probe"), &all)
        .expect("dns-update-probe");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "dns-update-probe {all:?} failed: {stderr}\n{text}\nnamed log:\n{}",
        bind.log()
    );
    let lines = text
        .lines()
        .map(|l| {
            let (k, v) = l.split_once(' ').unwrap_or((l, ""));
            (k.to_owned(), v.to_owned())
        })
        .collect();
    Probe { lines, text }
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn aaaa(lab: &Lab, bind: &Bind, name: &str) -> Vec<String> {
    sorted(bind.query(lab, name, "AAAA").expect("dig"))
}

fn with_secret<'a>(secret: &'a str, rest: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        "--key-name",
        KEY,
        "--algorithm",
        "hmac-sha256",
        "--secret",
        secret,
    ];
    v.extend_from_slice(rest);
    v
}

#[test]
fn bind_serves_zone_and_takes_nsupdate_with_key() {
    let lab = Lab::new("dns_update_bind_nsupdate").expect("lab");
    let bind = Bind::start(&lab, bind_options()).expect("bind");
    assert_eq!(
        bind.query(&lab, "existing.example.", "AAAA").expect("dig"),
        ["2001:db8:1::42"]
    );
    assert!(
        bind.query(&lab, "mn1.example.", "AAAA")
            .expect("dig")
            .is_empty()
    );
    assert!(bind.key_file(KEY).is_file());

    let out = bind
        .nsupdate(
            &lab,
            Some(KEY),
            "zone example.\nupdate add mn1.example. 60 AAAA 2001:db8:1::99\nsend\n",
        )
        .expect("nsupdate");
    assert!(
        out.status.success(),
        "nsupdate: {}\nnamed log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        bind.log()
    );
    assert_eq!(
        bind.query(&lab, "mn1.example.", "AAAA").expect("dig"),
        ["2001:db8:1::99"]
    );

    // Without TSIG the policy refuses it.
    let out = bind
        .nsupdate(
            &lab,
            None,
            "zone example.\nupdate add mn2.example. 60 AAAA 2001:db8:1::98\nsend\n",
        )
        .expect("nsupdate");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("REFUSED"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        bind.query(&lab, "mn2.example.", "AAAA")
            .expect("dig")
            .is_empty()
    );
}

#[test]
fn replace_delete_and_refusals_against_bind() {
    let lab = Lab::new("dns_update_bind_probe").expect("lab");
    let bind = Bind::start(&lab, bind_options()).expect("bind");
    let key_file = bind.key_file(KEY);
    let key_file = key_file.to_str().expect("utf-8 path");
    let zone = ["--zone", "example.", "--name", "mn1.example."];
    let key = ["--key-file", key_file];

    // Replace: one address, from the key file testlab wrote in tsig-keygen format.
    let mut args = zone.to_vec();
    args.extend_from_slice(&key);
    args.extend_from_slice(&[
        "--op",
        "replace",
        "--addr",
        "2001:db8:1::1000",
        "--ttl",
        "60",
    ]);
    let p = probe(&lab, &bind, &args);
    assert_eq!(p.get("outcome"), "done", "{}", p.text);
    assert_eq!(p.stat("transmissions"), 1, "{}", p.text);
    assert_eq!(p.stat("unauthenticated"), 0, "{}", p.text);
    assert_eq!(aaaa(&lab, &bind, "mn1.example."), ["2001:db8:1::1000"]);
    let at_server = format!("@{HOME_HOST}");
    let ttl = lab
        .exec_ok(
            Node::Dhcp,
            "dig",
            [
                at_server.as_str(),
                "+noall",
                "+answer",
                "mn1.example.",
                "AAAA",
            ],
        )
        .expect("dig");
    assert!(ttl.contains("\t60\tIN\tAAAA\t"), "{ttl}");

    // Replace with two addresses (and the name in another case): exactly those two remain.
    let mut args = vec!["--zone", "EXAMPLE", "--name", "MN1.Example"];
    args.extend_from_slice(&key);
    args.extend_from_slice(&[
        "--op",
        "replace",
        "--addr",
        "2001:db8:1::1001",
        "--addr",
        "2001:db8:1::1002",
    ]);
    let p = probe(&lab, &bind, &args);
    assert_eq!(p.get("outcome"), "done", "{}", p.text);
    assert_eq!(
        aaaa(&lab, &bind, "mn1.example."),
        ["2001:db8:1::1001", "2001:db8:1::1002"]
    );

    // Wrong secret: NOTAUTH / BADSIG, unsigned (RFC 8945 §5.3.2); the zone is unchanged.
    let mut rest = zone.to_vec();
    rest.extend_from_slice(&["--op", "replace", "--addr", "2001:db8:1::bad"]);
    let p = probe(&lab, &bind, &with_secret(WRONG_SECRET, &rest));
    assert_eq!(p.get("outcome"), "refused", "{}", p.text);
    assert_eq!(p.get("rcode"), "NOTAUTH");
    assert_eq!(p.get("tsig-error"), "BADSIG");
    assert_eq!(p.get("authenticated"), "no");
    assert_eq!(p.get("detail"), "NOTAUTH (TSIG error BADSIG), unsigned");
    assert_eq!(
        aaaa(&lab, &bind, "mn1.example."),
        ["2001:db8:1::1001", "2001:db8:1::1002"]
    );

    // Unknown key: NOTAUTH / BADKEY, unsigned.
    let mut args = vec![
        "--key-name",
        "unknown-key",
        "--algorithm",
        "hmac-sha256",
        "--secret",
        SECRET,
    ];
    args.extend_from_slice(&rest);
    let p = probe(&lab, &bind, &args);
    assert_eq!(p.get("outcome"), "refused", "{}", p.text);
    assert_eq!(p.get("rcode"), "NOTAUTH");
    assert_eq!(p.get("tsig-error"), "BADKEY");
    assert_eq!(p.get("authenticated"), "no");

    // A key BIND knows but whose update-policy grants nothing: REFUSED, signed and verified.
    let mut args = vec![
        "--key-name",
        NO_GRANT_KEY,
        "--algorithm",
        "hmac-sha256",
        "--secret",
        SECRET,
    ];
    args.extend_from_slice(&rest);
    let p = probe(&lab, &bind, &args);
    assert_eq!(p.get("outcome"), "refused", "{}", p.text);
    assert_eq!(p.get("rcode"), "REFUSED");
    assert_eq!(p.get("tsig-error"), "none");
    assert_eq!(p.get("authenticated"), "yes");

    // Our clock 1000 s ahead: BADTIME, signed with BIND's time and verified.
    let mut late = rest.clone();
    late.extend_from_slice(&["--clock-offset", "1000"]);
    let p = probe(&lab, &bind, &with_secret(SECRET, &late));
    assert_eq!(p.get("outcome"), "refused", "{}", p.text);
    assert_eq!(p.get("rcode"), "NOTAUTH");
    assert_eq!(p.get("tsig-error"), "BADTIME");
    assert_eq!(p.get("authenticated"), "yes");
    assert_eq!(
        aaaa(&lab, &bind, "mn1.example."),
        ["2001:db8:1::1001", "2001:db8:1::1002"]
    );

    // The answer's MAC corrupted on the way in: not accepted; retransmitted, then reported.
    let mut args = zone.to_vec();
    args.extend_from_slice(&key);
    args.extend_from_slice(&[
        "--op",
        "replace",
        "--addr",
        "2001:db8:1::1003",
        "--corrupt-response",
        "--timeout-ms",
        "300",
    ]);
    let p = probe(&lab, &bind, &args);
    assert_eq!(p.get("outcome"), "bad-response", "{}", p.text);
    assert_eq!(
        p.get("detail"),
        "bad response: response MAC does not verify"
    );
    assert_eq!(p.stat("transmissions"), 3, "{}", p.text);
    assert_eq!(p.stat("unauthenticated"), 3, "{}", p.text);
    // BIND did apply it: only the answer was damaged.
    assert_eq!(aaaa(&lab, &bind, "mn1.example."), ["2001:db8:1::1003"]);

    // Delete: gone; deleting again is still NOERROR (RFC 2136 §3.4.2.3).
    for _ in 0..2 {
        let mut args = zone.to_vec();
        args.extend_from_slice(&key);
        args.extend_from_slice(&["--op", "delete"]);
        let p = probe(&lab, &bind, &args);
        assert_eq!(p.get("outcome"), "done", "{}", p.text);
        assert!(aaaa(&lab, &bind, "mn1.example.").is_empty());
    }
    // The other records are untouched.
    assert_eq!(aaaa(&lab, &bind, "existing.example."), ["2001:db8:1::42"]);
    // BIND logged the refusals.
    let log = bind.log();
    assert!(log.contains("unknown-key"), "{log}");
}

#[test]
fn tsig_keygen_sha512_key_against_bind() {
    let lab = Lab::new("dns_update_bind_sha512").expect("lab");
    let text = lab
        .exec_ok(
            Node::Dhcp,
            "tsig-keygen",
            ["-a", "hmac-sha512", "sha512-key"],
        )
        .expect("tsig-keygen");
    let secret = text
        .split("secret \"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap_or_else(|| panic!("no secret in tsig-keygen output:\n{text}"))
        .to_owned();
    let bind = Bind::start(
        &lab,
        BindOptions::new("example.")
            .key("sha512-key", "hmac-sha512", &secret)
            .grant("sha512-key", "zonesub", "AAAA"),
    )
    .expect("bind");
    let file = lab.dir().join("keygen-output.key");
    std::fs::write(&file, &text).expect("write key file");
    let file = file.to_str().expect("utf-8 path").to_owned();
    let addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x2000).to_string();
    let p = probe(
        &lab,
        &bind,
        &[
            "--zone",
            "example.",
            "--name",
            "mn2.example.",
            "--key-file",
            &file,
            "--op",
            "replace",
            "--addr",
            &addr,
        ],
    );
    assert_eq!(p.get("outcome"), "done", "{}", p.text);
    assert_eq!(aaaa(&lab, &bind, "mn2.example."), [addr]);
}
