//! The `dhcp6-relay` engine against real Kea (kea-dhcp6) in the namespace lab: a Solicit with
//! Rapid Commit from "tunnel 42" is relayed from the home agent's namespace, the Relay-Repl is
//! delivered to that tunnel, and the snooped lease is the one in Kea's lease file.
//!
//! Needs root and the packages of `scripts/install-deps.sh`; nothing is skipped.

use std::net::Ipv6Addr;

use testlab::{Kea, KeaOptions, Lab, Node};

fn line<'a>(lines: &'a [String], key: &str) -> Option<&'a str> {
    lines
        .iter()
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix(' ')))
}

#[test]
fn engine_relays_solicit_to_kea_and_records_lease() {
    let lab = Lab::new("relay_kea").expect("lab");
    let kea = Kea::start(&lab, KeaOptions::new().rapid_commit(true)).expect("kea");

    let out = lab
        .exec(
            Node::Ha,
            env!("CARGO_BIN_EXE_relay-kea"),
            [
                "--bind",
                "2001:db8:1::1",
                "--server",
                "2001:db8:1::2",
                "--duid",
                "00030001020000000042",
                "--iaid",
                "5",
            ],
        )
        .expect("relay-kea");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "relay-kea failed: {stderr}\n{stdout}\nkea log:\n{}",
        kea.log()
    );
    let lines: Vec<String> = stdout.lines().map(str::to_owned).collect();

    // Delivered through tunnel 42 to the client's address, port 546, as a Reply.
    assert_eq!(
        line(&lines, "delivery"),
        Some("tunnel 42 dst fe80::1 port 546 type 7 xid 0a0b0c"),
        "{lines:?}\n{stderr}"
    );

    // The relay recorded identity -> address, and it is Kea's lease for our DUID.
    let lease_line = line(&lines, "lease").unwrap_or_else(|| panic!("no lease: {lines:?}"));
    let words: Vec<&str> = lease_line.split_whitespace().collect();
    assert_eq!(words[..2], ["identity", "mn@example"], "{lease_line}");
    assert_eq!(words[2], "address", "{lease_line}");
    let address: Ipv6Addr = words[3].parse().expect("address");
    let valid: u64 = words[5].parse().expect("valid");

    let leases = kea.leases().expect("leases");
    let lease = leases
        .iter()
        .find(|l| l.address == address)
        .unwrap_or_else(|| panic!("{address} not in Kea's leases {leases:#?}"));
    assert_eq!(lease.duid, "00:03:00:01:02:00:00:00:00:42");
    assert_eq!(lease.iaid, 5);
    assert_eq!(lease.lease_type, 0);
    assert!(
        valid > 0 && valid <= u64::from(lease.valid_lifetime) + 1,
        "relay says {valid} s, Kea {}",
        lease.valid_lifetime
    );
    assert_eq!(
        line(&lines, "event"),
        Some(format!("lease-bound tunnel 42 address {address}").as_str())
    );

    // The handle of the closed tunnel is refused once the id is reused.
    assert_eq!(
        line(&lines, "replay-after-reopen"),
        Some("stale-interface-id"),
        "{lines:?}"
    );
}
