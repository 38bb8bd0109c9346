//! The Client FQDN option (RFC 4704) of the sans-IO `dhcp6-client` against real Kea: kea-dhcp6
//! with DDNS on, kea-dhcp-ddns (Debian's kea-dhcp-ddns-server) updating BIND 9.18 with a TSIG
//! key (HMAC-SHA256), all on the home-link host. The `dhcp6-client-kea` helper runs in the home
//! agent's namespace (Relay-forward to Kea, as the HA's relay does) with `--fqdn mn1.example.`
//! and holds the lease a few seconds before its Release. BIND grants the key AAAA and DHCID in
//! `example.` and PTR and DHCID in the home reverse zone (D2 writes a DHCID beside the PTR).
//!
//! - The client's report of Kea's option 39 in the Reply: S=1 O=0 N=0 (Kea does the AAAA
//!   update as asked) and the name `mn1.example.`.
//! - While the lease is held, BIND serves `mn1.example.` AAAA = the leased address, a DHCID
//!   beside it, and the PTR of the address in the home reverse zone; Kea's lease records the
//!   name with both updates done.
//! - After the Release, Kea has the records removed again.
//!
//! Needs root and the packages of `scripts/install-deps.sh`; nothing is skipped.

use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

use testlab::{
    Bind, BindOptions, HOME_REVERSE_ZONE, Kea, KeaDdns, KeaDdnsOptions, KeaOptions, Lab, Node,
    Spawn,
};

const KEY: &str = "ddns-key";
/// 32 octets, base64.
const SECRET: &str = "a2VhLWRkbnMtbGFiLXRzaWctc2VjcmV0LTMyYnl0ZXM=";
const FQDN: &str = "mn1.example.";

/// The PTR owner name of an address (RFC 3596 §2.5).
fn reverse_name(a: Ipv6Addr) -> String {
    let mut s = String::new();
    for b in a.octets().iter().rev() {
        s.push_str(&format!("{:x}.{:x}.", b & 0xf, b >> 4));
    }
    s + "ip6.arpa."
}

/// Polls `f` every 20 ms until it returns true or `timeout` passes.
fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn kea_ddns_puts_the_leased_address_in_bind() {
    assert_eq!(
        reverse_name("2001:db8:1::100".parse().unwrap()),
        "0.0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa."
    );
    let lab = Lab::new("kea_ddns").expect("lab");
    let bind = Bind::start(
        &lab,
        BindOptions::new("example.")
            .key(KEY, "hmac-sha256", SECRET)
            .grant(KEY, "zonesub", "AAAA DHCID")
            .zone(HOME_REVERSE_ZONE, &[], &[(KEY, "zonesub", "PTR DHCID")]),
    )
    .expect("bind");
    let d2 = KeaDdns::start(&lab, KeaDdnsOptions::new(KEY, SECRET)).expect("kea-dhcp-ddns");
    let kea = Kea::start(&lab, KeaOptions::new().ddns("example.")).expect("kea");
    assert!(bind.query(&lab, FQDN, "AAAA").expect("dig").is_empty());

    let mut client = lab
        .spawn(
            Node::Ha,
            Spawn::new(env!("CARGO_BIN_EXE_dhcp6-client-kea"))
                .args([
                    "--bind",
                    "2001:db8:1::1",
                    "--server",
                    "2001:db8:1::2",
                    "--duid",
                    "00030001020000000039",
                    "--iaid",
                    "39",
                    "--fqdn",
                    FQDN,
                    "--hold-ms",
                    "4000",
                ])
                .log_name("dhcp6-client-kea"),
        )
        .expect("dhcp6-client-kea");
    let diag = |client: &testlab::Proc| {
        format!(
            "client:\n{}\nkea:\n{}\nkea-dhcp-ddns:\n{}\nbind:\n{}",
            client.log(),
            kea.log(),
            d2.log(),
            bind.log()
        )
    };
    if let Err(e) = client.wait_for_log("fqdn ", Duration::from_secs(15)) {
        panic!("{e}\n{}", diag(&client));
    }
    let out = client.log();
    let bound = out
        .lines()
        .find_map(|l| l.strip_prefix("bound address "))
        .unwrap_or_else(|| panic!("no bound line\n{}", diag(&client)));
    let address: Ipv6Addr = bound
        .split_whitespace()
        .next()
        .and_then(|a| a.parse().ok())
        .expect("address");
    // Kea's answer (RFC 4704 §6): it does the AAAA update as the client asked, keeps the name.
    let fqdn_line = out
        .lines()
        .find(|l| l.starts_with("fqdn "))
        .expect("fqdn line");
    assert_eq!(
        fqdn_line,
        format!("fqdn flags S=1 O=0 N=0 name {FQDN}"),
        "{}",
        diag(&client)
    );

    // D2 updates BIND within milliseconds of the Reply.
    let ptr_name = reverse_name(address);
    let served = wait_until(Duration::from_secs(5), || {
        bind.query(&lab, FQDN, "AAAA").is_ok_and(|a| !a.is_empty())
            && bind
                .query(&lab, &ptr_name, "PTR")
                .is_ok_and(|a| !a.is_empty())
    });
    assert!(served, "no AAAA/PTR in BIND\n{}", diag(&client));
    assert_eq!(
        bind.query(&lab, FQDN, "AAAA").expect("dig"),
        [address.to_string()]
    );
    assert_eq!(bind.query(&lab, &ptr_name, "PTR").expect("dig"), [FQDN]);
    assert_eq!(
        bind.query(&lab, FQDN, "DHCID").expect("dig").len(),
        1,
        "{}",
        diag(&client)
    );
    assert!(
        wait_until(Duration::from_secs(2), || d2
            .log()
            .contains("DHCP_DDNS_ADD_SUCCEEDED")),
        "{}",
        diag(&client)
    );
    let lease = kea
        .leases()
        .expect("leases")
        .into_iter()
        .find(|l| l.address == address)
        .unwrap_or_else(|| panic!("{address} not in Kea's leases"));
    assert_eq!(lease.hostname, FQDN);
    assert_eq!(lease.fields["fqdn_fwd"], "1");
    assert_eq!(lease.fields["fqdn_rev"], "1");

    // The Release: Kea has the records removed.
    let released = wait_until(Duration::from_secs(15), || {
        client.log().contains("released")
    });
    assert!(released, "no release\n{}", diag(&client));
    let gone = wait_until(Duration::from_secs(5), || {
        bind.query(&lab, FQDN, "AAAA").is_ok_and(|a| a.is_empty())
            && bind
                .query(&lab, &ptr_name, "PTR")
                .is_ok_and(|a| a.is_empty())
    });
    assert!(
        gone,
        "records still in BIND after the Release\n{}",
        diag(&client)
    );
}
