//! What `mip6-mn status` reports. The field names are the contract of issue 3; fields may be
//! added (issue 5 adds the binding state), none renamed.
//!
//! ```json
//! {"state": "ready", "care_of_address": "2001:db8:ff::2", "home_agent": "2001:db8:ff::1",
//!  "home_address": "2001:db8:1::1000", "address_source": "dhcpv6",
//!  "ike_sa": {"state": "established", "proposal": "aes128-sha256-ecp256"},
//!  "child_sas": [{"mode": "transport", "local_ts": "2001:db8:1::1000/128[135/0]",
//!                 "remote_ts": "2001:db8:ff::1/128[135/0]", "protocol": "esp",
//!                 "spi_in": "0xc3b1a2f0", "spi_out": "0x0e5d0c11", "proposal": "aes128gcm16"}],
//!  "timings_ms": {"phase1": 12, "initial_tunnel": 4, "address": 35, "rfc3776_sas": 9, "total": 61},
//!  "timings_us": {"phase1": 12408, "initial_tunnel": 4127, "address": 35012, "rfc3776_sas": 9331,
//!                 "total": 61203},
//!  "last_error": null}
//! ```
//!
//! The status describes what is established, not what is configured: `care_of_address`,
//! `home_address` and `address_source` are null until the runtime has them in use (and again
//! after a failure). `last_error` (issue 4) is the reason of the most recent failure, kept
//! while the node retries and after it recovers; null until something has failed.
//!
//! `timings_ms`: `phase1` is Main Mode; `initial_tunnel` the Quick Mode of the initial tunnel
//! (DHCPv6 only); `address` DHCPv6 (from the initial tunnel to the lease) or Mode Config;
//! `rfc3776_sas` from asking for the RFC 3776 SAs to ready (their Quick Modes, the Delete of
//! the initial tunnel, the address on the TUN device); `total` from the start of the attempt
//! to ready. After a fallback to Mode Config, `phase1` is the fresh phase 1's,
//! `initial_tunnel` is null, and `total` includes the time spent on DHCPv6. `timings_us` has
//! the same steps in microseconds (`timings_ms` is it rounded down), for benchmarks.

use std::fmt::Write as _;
use std::net::Ipv6Addr;

use daemon::status::{ChildSaStatus, IkeSaStatus, or_dash, write_child_sas};
use serde::{Deserialize, Serialize};

/// Where the bootstrap is (`state`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum State {
    /// The daemon is up; nothing has been sent yet.
    #[default]
    Starting,
    /// IKEv1 phase 1 (Main Mode) with the home agent.
    Phase1,
    /// Quick Mode for the initial tunnel SA (DHCPv6 only).
    InitialTunnel,
    /// Obtaining the home address (DHCPv6 or Mode Config).
    Address,
    /// Quick Modes for the RFC 3776 SAs.
    Rfc3776Sas,
    /// Bootstrap complete: home address in place, SAs up.
    Ready,
    /// The bootstrap failed; the daemon retries.
    Failed,
    /// Tearing down after SIGTERM.
    Stopping,
}

impl State {
    fn as_str(self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Phase1 => "phase1",
            Self::InitialTunnel => "initial_tunnel",
            Self::Address => "address",
            Self::Rfc3776Sas => "rfc3776_sas",
            Self::Ready => "ready",
            Self::Failed => "failed",
            Self::Stopping => "stopping",
        }
    }
}

/// Where the home address in use came from (`address_source`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AddressSource {
    /// Leased by DHCPv6 through the initial tunnel.
    Dhcpv6,
    /// Assigned by Mode Config.
    Modecfg,
    /// Configured (`address_source = "static"`).
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

/// How long each bootstrap step took (`timings_ms` in milliseconds, `timings_us` in
/// microseconds); null until the step is done.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Timings {
    /// Main Mode.
    pub(crate) phase1: Option<u64>,
    /// Quick Mode for the initial tunnel SA.
    pub(crate) initial_tunnel: Option<u64>,
    /// DHCPv6 or Mode Config.
    pub(crate) address: Option<u64>,
    /// Quick Modes for the RFC 3776 SAs.
    pub(crate) rfc3776_sas: Option<u64>,
    /// From start to `ready`.
    pub(crate) total: Option<u64>,
}

impl Timings {
    /// Microseconds (as the bootstrap keeps them) to whole milliseconds.
    pub(crate) fn millis(&self) -> Self {
        let ms = |v: Option<u64>| v.map(|us| us / 1000);
        Self {
            phase1: ms(self.phase1),
            initial_tunnel: ms(self.initial_tunnel),
            address: ms(self.address),
            rfc3776_sas: ms(self.rfc3776_sas),
            total: ms(self.total),
        }
    }
}

/// The answer to `status`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Status {
    /// Where the bootstrap is.
    pub(crate) state: State,
    /// The care-of address in use.
    pub(crate) care_of_address: Option<Ipv6Addr>,
    /// The home agent in use (null while a configured name is being resolved).
    pub(crate) home_agent: Option<Ipv6Addr>,
    /// The home agents found by DNS (RFC 5026 §5), in the order they are tried; absent when
    /// `home_agent` is an address.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) home_agents: Vec<Ipv6Addr>,
    /// The home address, once known.
    pub(crate) home_address: Option<Ipv6Addr>,
    /// Where the home address came from.
    pub(crate) address_source: Option<AddressSource>,
    /// The phase-1 SA.
    pub(crate) ike_sa: IkeSaStatus,
    /// The ESP SA pairs.
    pub(crate) child_sas: Vec<ChildSaStatus>,
    /// Step timings.
    pub(crate) timings_ms: Timings,
    /// The same in microseconds.
    #[serde(default)]
    pub(crate) timings_us: Timings,
    /// Why the last attempt failed (issue 4); absent in an older daemon's answer.
    #[serde(default)]
    pub(crate) last_error: Option<String>,
    /// The home registration (issue 5): null without one.
    #[serde(default)]
    pub(crate) binding: Option<BindingStatus>,
    /// The DHCPv6 server's Client FQDN option for the lease (RFC 4704 §6), when it sent one:
    /// who updates the name in DNS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) dhcpv6_fqdn: Option<DhcpFqdnStatus>,
}

/// The server's answer in the DHCPv6 Client FQDN option (RFC 4704 §4.1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct DhcpFqdnStatus {
    /// The name the server uses.
    pub(crate) name: String,
    /// S: the server updates the AAAA record.
    pub(crate) s: bool,
    /// O: the server overrode the client's S flag.
    pub(crate) o: bool,
    /// N: the server does no update at all.
    pub(crate) n: bool,
}

/// The node's binding at its home agent (RFC 6275 §11.7.1), as its binding update list sees
/// it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct BindingStatus {
    /// `registering`, `registered`, `refreshing`, `deregistering` or `idle`.
    pub(crate) state: String,
    /// The care-of address registered or being registered.
    pub(crate) care_of_address: Option<Ipv6Addr>,
    /// Seconds left of the binding, when there is one.
    pub(crate) lifetime_left: Option<u64>,
    /// Sequence number of the last Binding Update sent.
    pub(crate) sequence: Option<u16>,
    /// Status of the last Binding Acknowledgement, with its name.
    pub(crate) last_status: Option<String>,
    /// The home agent's answer to the DNS Update option (RFC 5026 §6.2), when it sent one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) dns_update: Option<String>,
}

impl Status {
    /// The status of a daemon that has just started.
    pub(crate) fn new(home_agent: Option<Ipv6Addr>) -> Self {
        Self {
            state: State::Starting,
            care_of_address: None,
            home_agent,
            home_agents: Vec::new(),
            home_address: None,
            address_source: None,
            ike_sa: IkeSaStatus::default(),
            child_sas: Vec::new(),
            timings_ms: Timings::default(),
            timings_us: Timings::default(),
            last_error: None,
            binding: None,
            dhcpv6_fqdn: None,
        }
    }

    /// The human-readable form.
    pub(crate) fn summary(&self) -> String {
        let mut out = String::new();
        let t = &self.timings_ms;
        let _ = writeln!(out, "mip6-mn: {}", self.state.as_str());
        let _ = writeln!(out, "  home agent       {}", or_dash(self.home_agent));
        if !self.home_agents.is_empty() {
            let list: Vec<String> = self.home_agents.iter().map(ToString::to_string).collect();
            let _ = writeln!(out, "  discovered       {}", list.join(", "));
        }
        let _ = writeln!(out, "  care-of address  {}", or_dash(self.care_of_address));
        let _ = writeln!(
            out,
            "  home address     {} (source {})",
            or_dash(self.home_address),
            or_dash(self.address_source.map(AddressSource::as_str))
        );
        let _ = writeln!(
            out,
            "  IKE SA           {}{}",
            self.ike_sa.state.as_str(),
            self.ike_sa
                .proposal
                .as_ref()
                .map_or_else(String::new, |p| format!(", {p}"))
        );
        let _ = writeln!(out, "  child SAs");
        write_child_sas(&mut out, 4, &self.child_sas);
        let _ = writeln!(
            out,
            "  timings (ms)     phase1 {}, initial_tunnel {}, address {}, rfc3776_sas {}, total {}",
            or_dash(t.phase1),
            or_dash(t.initial_tunnel),
            or_dash(t.address),
            or_dash(t.rfc3776_sas),
            or_dash(t.total)
        );
        if let Some(b) = &self.binding {
            let _ = writeln!(
                out,
                "  binding          {}, care-of {}, {} s left, sequence {}, last status {}",
                b.state,
                or_dash(b.care_of_address),
                or_dash(b.lifetime_left),
                or_dash(b.sequence),
                or_dash(b.last_status.as_deref())
            );
        }
        if let Some(e) = &self.last_error {
            let _ = writeln!(out, "  last error       {e}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    /// The fields of issue 3, by name and JSON type, for a node that has just started.
    #[test]
    fn contract_fields() {
        let s = Status::new(Some("2001:db8:ff::1".parse().unwrap()));
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(
            v,
            json!({
                "state": "starting",
                "care_of_address": null,
                "home_agent": "2001:db8:ff::1",
                "home_address": null,
                "address_source": null,
                "ike_sa": {"state": "none", "proposal": null},
                "child_sas": [],
                "timings_ms": {"phase1": null, "initial_tunnel": null, "address": null,
                               "rfc3776_sas": null, "total": null},
                "timings_us": {"phase1": null, "initial_tunnel": null, "address": null,
                               "rfc3776_sas": null, "total": null},
                "last_error": null,
                "binding": null
            })
        );
        let back: Status = serde_json::from_value(v).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn names_of_states_and_sources() {
        for st in [
            State::Starting,
            State::Phase1,
            State::InitialTunnel,
            State::Address,
            State::Rfc3776Sas,
            State::Ready,
            State::Failed,
            State::Stopping,
        ] {
            assert_eq!(serde_json::to_value(st).unwrap(), Value::from(st.as_str()));
        }
        for src in [
            AddressSource::Dhcpv6,
            AddressSource::Modecfg,
            AddressSource::Static,
        ] {
            assert_eq!(
                serde_json::to_value(src).unwrap(),
                Value::from(src.as_str())
            );
        }
    }

    #[test]
    fn summary_of_a_ready_node() {
        let mut s = Status::new(Some("2001:db8:ff::1".parse().unwrap()));
        s.state = State::Ready;
        s.home_address = Some("2001:db8:1::1000".parse().unwrap());
        s.address_source = Some(AddressSource::Static);
        s.timings_ms.total = Some(42);
        let text = s.summary();
        assert!(text.starts_with("mip6-mn: ready\n"), "{text}");
        assert!(text.contains("home address     2001:db8:1::1000 (source static)"));
        assert!(text.contains("total 42"));
        assert!(text.contains("no child SAs"));
        assert!(!text.contains("last error"), "{text}");
        s.state = State::Failed;
        s.last_error = Some("no DHCPv6 lease within dhcpv6_timeout (10 s)".into());
        let text = s.summary();
        assert!(
            text.contains("last error       no DHCPv6 lease within dhcpv6_timeout (10 s)"),
            "{text}"
        );
    }

    /// An older daemon's answer, without `last_error`, still reads.
    #[test]
    fn last_error_is_optional_on_input() {
        let mut v =
            serde_json::to_value(Status::new(Some("2001:db8:ff::1".parse().unwrap()))).unwrap();
        v.as_object_mut().unwrap().remove("last_error");
        let s: Status = serde_json::from_value(v).unwrap();
        assert_eq!(s.last_error, None);
    }
}
