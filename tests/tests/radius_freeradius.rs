//! The sans-IO `radius` client against real FreeRADIUS 3.2 (Debian's `freeradius`) in the
//! namespace lab: the `radius-probe` helper runs in the home agent's namespace and asks
//! FreeRADIUS on the home link (`[2001:db8:1::2]:1812`). FreeRADIUS requires a valid
//! Message-Authenticator on every request (`require_message_authenticator = yes`), so every
//! answer here also proves the client's.
//!
//! - CHAP (computed by the client, and precomputed as the mobile node does for XAUTH
//!   RADIUS-CHAP) with the right password → Access-Accept with its Reply-Message; the request
//!   FreeRADIUS logged carries CHAP-Password and CHAP-Challenge, never User-Password.
//! - CHAP with a wrong password → Access-Reject after FreeRADIUS's 1 s reject delay, without a
//!   retransmission (the 3 s default timeout outlasts the delay).
//! - PAP (when the client allows it) with a password over 16 octets → Access-Accept; the server
//!   recovered the password from User-Password.
//! - A wrong shared secret → FreeRADIUS drops the request → Timeout verdict.
//! - A dead server first in the list → failover to FreeRADIUS.
//! - FreeRADIUS 3.2.1's stock answers (no Message-Authenticator) are dropped by default and
//!   taken with the requirement off.
//!
//! Needs root and the packages of `scripts/install-deps.sh`; nothing is skipped.

use std::time::Duration;

use testlab::{FreeRadius, FreeRadiusOptions, HOME_HOST, Lab, Node, RadiusRequestRecord};

const SECRET: &str = "lab-radius-secret";
const USER: &str = "mnuser";
/// Longer than one 16-octet block of User-Password hiding.
const PASSWORD: &str = "mn-password-longer-than-16";

/// Output of one `radius-probe` run: its `key value…` lines.
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

    fn elapsed(&self) -> Duration {
        Duration::from_millis(self.get("elapsed-ms").parse().expect("elapsed-ms"))
    }

    /// A counter of the `stats` line.
    fn stat(&self, name: &str) -> u64 {
        let words: Vec<&str> = self.get("stats").split_whitespace().collect();
        let i = words
            .iter()
            .position(|w| *w == name)
            .unwrap_or_else(|| panic!("no {name} in stats: {}", self.text));
        words[i + 1].parse().expect("counter")
    }
}

fn probe(lab: &Lab, radius: &FreeRadius, args: &[&str]) -> Probe {
    let out = lab
        .exec(Node::Ha, env!("CARGO_BIN_EXE_radius-probe"), args)
        .expect("radius-probe");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "radius-probe {args:?} failed: {stderr}\n{text}\nFreeRADIUS log:\n{}",
        radius.log()
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

fn server() -> String {
    format!("[{HOME_HOST}]:1812")
}

fn record<'a>(records: &'a [RadiusRequestRecord], nas_id: &str) -> &'a RadiusRequestRecord {
    let found: Vec<&RadiusRequestRecord> = records
        .iter()
        .filter(|r| r.get("NAS-Identifier") == Some(nas_id))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "one logged request with NAS-Identifier {nas_id}: {records:#?}"
    );
    found[0]
}

#[test]
fn chap_pap_reject_and_wrong_secret_against_freeradius() {
    let lab = Lab::new("radius_freeradius").expect("lab");
    let radius = FreeRadius::start(
        &lab,
        FreeRadiusOptions::new(SECRET)
            .user_with_reply(USER, PASSWORD, "welcome %{User-Name}")
            .reject_message("access denied"),
    )
    .expect("freeradius");
    let s = server();
    let base = |method: &'static str, password: &'static str, nas_id: &'static str| {
        vec![
            "--server",
            &s,
            "--secret",
            SECRET,
            "--user",
            USER,
            "--password",
            password,
            "--method",
            method,
            "--nas-id",
            nas_id,
        ]
    };

    let chap = probe(&lab, &radius, &base("chap", PASSWORD, "chap-ok"));
    assert_eq!(chap.get("verdict"), "accept", "{}", chap.text);
    assert_eq!(chap.get("server"), s);
    assert_eq!(chap.get("reply-message"), "welcome mnuser");
    assert_eq!(chap.stat("dropped"), 0, "{}", chap.text);

    let forwarded = probe(&lab, &radius, &base("chap-response", PASSWORD, "chap-fwd"));
    assert_eq!(forwarded.get("verdict"), "accept", "{}", forwarded.text);

    let bad = probe(&lab, &radius, &base("chap", "not-the-password", "chap-bad"));
    assert_eq!(bad.get("verdict"), "reject", "{}", bad.text);
    assert_eq!(bad.get("reply-message"), "access denied");
    assert!(
        bad.elapsed() >= Duration::from_millis(900),
        "the reject came before FreeRADIUS's 1 s delay: {}",
        bad.text
    );
    assert_eq!(bad.stat("retransmissions"), 0, "{}", bad.text);

    let pap = probe(&lab, &radius, &base("pap", PASSWORD, "pap-ok"));
    assert_eq!(pap.get("verdict"), "accept", "{}", pap.text);

    let mut wrong_secret = base("chap", PASSWORD, "bad-secret");
    wrong_secret[3] = "not-the-secret";
    wrong_secret.extend(["--timeout-ms", "400", "--tries", "1"]);
    let dropped = probe(&lab, &radius, &wrong_secret);
    assert_eq!(dropped.get("verdict"), "timeout", "{}", dropped.text);

    let records = radius.requests().expect("detail");
    for nas_id in ["chap-ok", "chap-fwd", "chap-bad"] {
        let r = record(&records, nas_id);
        assert!(r.has("CHAP-Password"), "{r:#?}");
        assert!(r.has("CHAP-Challenge"), "{r:#?}");
        assert!(!r.has("User-Password"), "{nas_id}: {r:#?}");
        assert!(r.has("Message-Authenticator"), "{r:#?}");
        assert_eq!(r.get("User-Name"), Some(USER));
    }
    let r = record(&records, "pap-ok");
    assert!(!r.has("CHAP-Password"), "{r:#?}");
    assert_eq!(r.get("User-Password"), Some(PASSWORD), "{r:#?}");
    // The request with the wrong secret failed the Message-Authenticator check and was never
    // processed.
    assert!(
        records
            .iter()
            .all(|r| r.get("NAS-Identifier") != Some("bad-secret")),
        "{records:#?}"
    );
    let log = radius.log();
    assert!(log.contains("invalid Message-Authenticator"), "{log}");
    assert_eq!(log.matches("Login OK").count(), 3, "{log}");
    assert_eq!(log.matches("Login incorrect").count(), 1, "{log}");
}

#[test]
fn failover_from_a_dead_server_to_freeradius() {
    let lab = Lab::new("radius_failover").expect("lab");
    // The home prefix as the client entry (any home-agent address on the home link).
    let radius = FreeRadius::start(
        &lab,
        FreeRadiusOptions::new(SECRET)
            .clients(["2001:db8:1::/64"])
            .user(USER, PASSWORD),
    )
    .expect("freeradius");
    let live = server();
    // Nothing answers 2001:db8:1::19 on the home link.
    let p = probe(
        &lab,
        &radius,
        &[
            "--server",
            "[2001:db8:1::19]:1812",
            "--server",
            &live,
            "--secret",
            SECRET,
            "--user",
            USER,
            "--password",
            PASSWORD,
            "--nas-id",
            "failover",
            "--timeout-ms",
            "300",
            "--tries",
            "2",
        ],
    );
    assert_eq!(p.get("verdict"), "accept", "{}", p.text);
    assert_eq!(p.get("server"), live);
    assert_eq!(p.stat("failovers"), 1, "{}", p.text);
    assert_eq!(p.stat("transmissions"), 3, "{}", p.text);
    assert_eq!(p.stat("retransmissions"), 1, "{}", p.text);
    assert!(p.elapsed() >= Duration::from_millis(600), "{}", p.text);
    let records = radius.requests().expect("detail");
    assert!(record(&records, "failover").has("CHAP-Password"));
}

#[test]
fn stock_freeradius_answers_without_message_authenticator() {
    let lab = Lab::new("radius_stock_ma").expect("lab");
    let radius = FreeRadius::start(
        &lab,
        FreeRadiusOptions::new(SECRET)
            .user(USER, PASSWORD)
            .reply_message_authenticator(false),
    )
    .expect("freeradius");
    let s = server();
    let mut args = vec![
        "--server",
        &s,
        "--secret",
        SECRET,
        "--user",
        USER,
        "--password",
        PASSWORD,
        "--timeout-ms",
        "500",
        "--tries",
        "1",
    ];
    // FreeRADIUS 3.2.1 accepts, but its Access-Accept has no Message-Authenticator: dropped.
    let strict = probe(&lab, &radius, &args);
    assert_eq!(strict.get("verdict"), "timeout", "{}", strict.text);
    assert_eq!(strict.stat("missing-ma"), 1, "{}", strict.text);
    args.push("--no-require-ma");
    let lenient = probe(&lab, &radius, &args);
    assert_eq!(lenient.get("verdict"), "accept", "{}", lenient.text);
    assert_eq!(lenient.stat("dropped"), 0, "{}", lenient.text);
    assert_eq!(
        radius.log().matches("Login OK").count(),
        2,
        "{}",
        radius.log()
    );
}
