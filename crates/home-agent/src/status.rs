//! What `mip6-ha status` reports. The field names are the contract of issue 3; fields may be
//! added (issue 5 adds the bindings), none renamed.
//!
//! ```json
//! {"peers": [{"identity": "mn1@example.com", "care_of_address": "2001:db8:ff::2",
//!             "home_address": "2001:db8:1::1000", "address_source": "dhcpv6",
//!             "child_sas": [{"mode": "tunnel", "local_ts": "::/0",
//!                            "remote_ts": "2001:db8:1::1000/128", "protocol": "esp",
//!                            "spi_in": "0x0e5d0c11", "spi_out": "0xc3b1a2f0",
//!                            "proposal": "aes128gcm16"}]}],
//!  "bindings": [{"home_address": "2001:db8:1::1000", "care_of_address": "2001:db8:ff::2",
//!                "identity": "mn1@example.com", "lifetime_left": 412, "lifetime": 420,
//!                "sequence": 17}],
//!  "counters": {"ike_sa_established": 1}}
//! ```
//!
//! `peers` lists the mobile nodes with an IKE SA, not the configured ones. `counters` is an
//! object of named event counts, open-ended so that each engine and driver can add its own.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::Ipv6Addr;

use daemon::status::{ChildSaStatus, or_dash, write_child_sas};
use serde::{Deserialize, Serialize};

/// Where a peer's home address came from (`address_source`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum AddressSource {
    /// Leased by DHCPv6, relayed through the peer's initial tunnel.
    Dhcpv6,
    /// Assigned by Mode Config.
    Modecfg,
    /// Configured in the peer's `[[peers]]` entry.
    Static,
}

impl AddressSource {
    fn as_str(self) -> &'static str {
        match self {
            Self::Dhcpv6 => "dhcpv6",
            Self::Modecfg => "modecfg",
            Self::Static => "static",
        }
    }
}

/// One connected mobile node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PeerStatus {
    /// Its IKE identity (authenticated by phase 1, or in hybrid mode by XAUTH).
    pub(crate) identity: String,
    /// The XAUTH user it logged in as, when it passed XAUTH.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) xauth_user: Option<String>,
    /// Its care-of address (the outer address of its IKE SA).
    pub(crate) care_of_address: Option<Ipv6Addr>,
    /// Its home address, once known.
    pub(crate) home_address: Option<Ipv6Addr>,
    /// Where the home address came from.
    pub(crate) address_source: Option<AddressSource>,
    /// Its ESP SA pairs.
    pub(crate) child_sas: Vec<ChildSaStatus>,
}

/// One binding cache entry (RFC 6275 §9.1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct BindingStatus {
    /// The home address.
    pub(crate) home_address: Ipv6Addr,
    /// Where its traffic goes.
    pub(crate) care_of_address: Ipv6Addr,
    /// The IKE identity that registered it.
    pub(crate) identity: String,
    /// Seconds until it expires.
    pub(crate) lifetime_left: u64,
    /// The granted lifetime, seconds.
    pub(crate) lifetime: u64,
    /// Sequence number of the last accepted Binding Update.
    pub(crate) sequence: u16,
}

/// The answer to `status`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Status {
    /// Connected mobile nodes.
    pub(crate) peers: Vec<PeerStatus>,
    /// The binding cache.
    #[serde(default)]
    pub(crate) bindings: Vec<BindingStatus>,
    /// Named event counts.
    pub(crate) counters: BTreeMap<String, u64>,
}

impl Status {
    /// The human-readable form.
    pub(crate) fn summary(&self) -> String {
        let mut out = String::new();
        let n = self.peers.len();
        let _ = writeln!(
            out,
            "mip6-ha: {n} connected peer{}",
            if n == 1 { "" } else { "s" }
        );
        for p in &self.peers {
            let _ = writeln!(out, "  {}", p.identity);
            if let Some(u) = &p.xauth_user {
                let _ = writeln!(out, "    xauth user       {u}");
            }
            let _ = writeln!(out, "    care-of address  {}", or_dash(p.care_of_address));
            let _ = writeln!(
                out,
                "    home address     {} (source {})",
                or_dash(p.home_address),
                or_dash(p.address_source.map(AddressSource::as_str))
            );
            write_child_sas(&mut out, 4, &p.child_sas);
        }
        if !self.bindings.is_empty() {
            let _ = writeln!(out, "  bindings");
            for b in &self.bindings {
                let _ = writeln!(
                    out,
                    "    {} -> {} ({}, {} s of {} s left, sequence {})",
                    b.home_address,
                    b.care_of_address,
                    b.identity,
                    b.lifetime_left,
                    b.lifetime,
                    b.sequence
                );
            }
        }
        if self.counters.is_empty() {
            let _ = writeln!(out, "  counters: none yet");
        } else {
            let _ = writeln!(out, "  counters");
            let width = self.counters.keys().map(String::len).max().unwrap_or(0);
            for (name, value) in &self.counters {
                let _ = writeln!(out, "    {name:width$}  {value}");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use daemon::status::spi_hex;
    use serde_json::json;

    use super::*;

    #[test]
    fn contract_fields() {
        let s = Status::default();
        assert_eq!(
            serde_json::to_value(&s).unwrap(),
            json!({"peers": [], "bindings": [], "counters": {}})
        );
        let mut s = Status::default();
        s.peers.push(PeerStatus {
            identity: "mn1@example.com".into(),
            xauth_user: None,
            care_of_address: Some("2001:db8:ff::2".parse().unwrap()),
            home_address: Some("2001:db8:1::1000".parse().unwrap()),
            address_source: Some(AddressSource::Static),
            child_sas: vec![ChildSaStatus {
                mode: "tunnel".into(),
                local_ts: "::/0".into(),
                remote_ts: "2001:db8:1::1000/128".into(),
                protocol: "esp".into(),
                spi_in: spi_hex(1),
                spi_out: spi_hex(2),
                proposal: "aes128gcm16".into(),
            }],
        });
        s.counters.insert("ike_sa_established".into(), 1);
        let v = serde_json::to_value(&s).unwrap();
        let peer = &v["peers"][0];
        for field in [
            "identity",
            "care_of_address",
            "home_address",
            "address_source",
            "child_sas",
        ] {
            assert!(peer.get(field).is_some(), "{field}");
        }
        assert_eq!(peer["address_source"], "static");
        for field in [
            "mode",
            "local_ts",
            "remote_ts",
            "protocol",
            "spi_in",
            "spi_out",
            "proposal",
        ] {
            assert!(peer["child_sas"][0].get(field).is_some(), "{field}");
        }
        assert_eq!(v["counters"]["ike_sa_established"], 1);
        let back: Status = serde_json::from_value(v).unwrap();
        assert_eq!(back, s);
        let text = back.summary();
        assert!(text.starts_with("mip6-ha: 1 connected peer\n"), "{text}");
        assert!(text.contains("home address     2001:db8:1::1000 (source static)"));
        assert!(text.contains("ike_sa_established  1"), "{text}");
        for src in [
            AddressSource::Dhcpv6,
            AddressSource::Modecfg,
            AddressSource::Static,
        ] {
            assert_eq!(serde_json::to_value(src).unwrap(), src.as_str());
        }
    }

    #[test]
    fn summary_of_an_idle_home_agent() {
        assert_eq!(
            Status::default().summary(),
            "mip6-ha: 0 connected peers\n  counters: none yet\n"
        );
    }
}
