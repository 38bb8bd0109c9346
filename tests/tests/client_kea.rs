//! The sans-IO `dhcp6-client` engine against real Kea (kea-dhcp6) in the namespace lab: the
//! `dhcp6-client-kea` helper runs in the home agent's namespace, relays the client's messages
//! to Kea in Relay-forward envelopes, and goes Solicit → Advertise → Request → Reply → Release.
//! The bound address must be Kea's lease for the client's DUID.
//!
//! Needs root and the packages of `scripts/install-deps.sh`; nothing is skipped.

use std::net::Ipv6Addr;

use testlab::{Kea, KeaOptions, Lab, Node};

#[test]
fn client_binds_and_releases_against_kea() {
    let lab = Lab::new("client_kea").expect("lab");
    let kea = Kea::start(&lab, KeaOptions::new()).expect("kea");
    let out = lab
        .exec(
            Node::Ha,
            env!("CARGO_BIN_EXE_dhcp6-client-kea"),
            [
                "--bind",
                "2001:db8:1::1",
                "--server",
                "2001:db8:1::2",
                "--duid",
                "00030001020000000077",
                "--iaid",
                "9",
                "--fqdn",
                "mn1.example.com.",
            ],
        )
        .expect("dhcp6-client-kea");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "dhcp6-client-kea failed: {stderr}\n{stdout}\nkea log:\n{}",
        kea.log()
    );
    let bound = stdout
        .lines()
        .find_map(|l| l.strip_prefix("bound "))
        .unwrap_or_else(|| panic!("no bound line: {stdout}"));
    let words: Vec<&str> = bound.split_whitespace().collect();
    assert_eq!(words[0], "address", "{bound}");
    let address: Ipv6Addr = words[1].parse().expect("address");
    assert!(stdout.lines().any(|l| l == "released"), "{stdout}");

    let leases = kea.leases().expect("leases");
    let lease = leases
        .iter()
        .find(|l| l.address == address)
        .unwrap_or_else(|| panic!("{address} not in Kea's leases {leases:#?}"));
    assert_eq!(lease.duid, "00:03:00:01:02:00:00:00:00:77");
    assert_eq!(lease.iaid, 9);
    assert_eq!(lease.lease_type, 0);
}
