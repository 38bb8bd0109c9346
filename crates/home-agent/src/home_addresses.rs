//! Which IKE identity holds which home address, and the Quick Mode policy built on it.
//!
//! RFC 3776 §4 (and §5.2.1 of RFC 4877 for the same rule in IKEv2): the home agent must check
//! that the home address in the SA's selectors belongs to the mobile node that authenticated.
//! The home agent knows three kinds of holders:
//! * a `[[peers]] home_address` (static, issue 3);
//! * a DHCPv6 lease the relay saw the server grant through that peer's tunnel (draft
//!   §3.2; recorded until the valid lifetime ends, the node releases it, or the server gives it
//!   to someone else — not when the tunnel closes: the lease is still the node's);
//! * a Mode Config assignment (draft §3.1), from the DHCPv6 server on the peer's behalf or from
//!   the pool, held while the peer's IKE SA lives.
//!
//! The policy also admits the initial tunnel of draft §3.2 (DHCPv6 only: the peer's
//! link-local address port 546 ↔ any port 547), when the relay is on.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use ikev1::{ChildPolicy, Identity, Mode, TrafficSelector};

use crate::status::AddressSource;

/// UDP.
const UDP: u8 = 17;
/// The Mobility Header (RFC 6275 §6.1): the RFC 3776 transport SA carries it.
const MOBILITY_HEADER: u8 = 135;

/// One address an identity holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Held {
    /// The address.
    pub(crate) address: Ipv6Addr,
    /// Where it came from.
    pub(crate) source: AddressSource,
    /// Until when; `None` while the IKE SA lives (static, pool, Mode Config).
    pub(crate) until: Option<Instant>,
}

/// The table, shared between the daemon (which learns leases) and the IKE engine's policy.
#[derive(Debug, Default)]
pub(crate) struct HomeAddresses {
    /// By identity (its textual form, as the relay records it).
    held: HashMap<String, Vec<Held>>,
    /// The holder of each address in `held` (an address has one holder: a grant takes it from
    /// any other), so that neither a grant nor a policy check scans every identity.
    by_address: HashMap<Ipv6Addr, String>,
}

impl HomeAddresses {
    /// Records that `identity` holds `address` (replacing an earlier record of the address, by
    /// anyone: a server that hands an address to another client has taken it back).
    pub(crate) fn grant(&mut self, identity: &str, held: Held) {
        self.revoke_address(held.address);
        self.held.entry(identity.to_owned()).or_default().push(held);
        self.by_address.insert(held.address, identity.to_owned());
    }

    /// `identity` no longer holds `address`.
    pub(crate) fn revoke(&mut self, identity: &str, address: Ipv6Addr) {
        if self.by_address.get(&address).is_some_and(|h| h == identity) {
            self.revoke_address(address);
        }
    }

    fn revoke_address(&mut self, address: Ipv6Addr) {
        let Some(identity) = self.by_address.remove(&address) else {
            return;
        };
        if let Some(v) = self.held.get_mut(&identity) {
            v.retain(|h| h.address != address);
            if v.is_empty() {
                self.held.remove(&identity);
            }
        }
    }

    /// What `identity` holds at `now` (expired records are not returned).
    pub(crate) fn held_by(&self, identity: &str, now: Instant) -> Vec<Held> {
        self.held
            .get(identity)
            .map(|v| {
                v.iter()
                    .filter(|h| h.until.is_none_or(|u| u > now))
                    .copied()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Who holds `address` at `now`.
    pub(crate) fn holder(&self, address: Ipv6Addr, now: Instant) -> Option<(&str, Held)> {
        let (identity, v) = self.held.get_key_value(self.by_address.get(&address)?)?;
        v.iter()
            .find(|h| h.address == address && h.until.is_none_or(|u| u > now))
            .map(|h| (identity.as_str(), *h))
    }

    /// Every address held at `now`.
    pub(crate) fn all(&self, now: Instant) -> impl Iterator<Item = Ipv6Addr> + '_ {
        self.held
            .values()
            .flatten()
            .filter(move |h| h.until.is_none_or(|u| u > now))
            .map(|h| h.address)
    }

    /// Forgets expired records.
    pub(crate) fn prune(&mut self, now: Instant) {
        let by_address = &mut self.by_address;
        self.held.retain(|_, v| {
            v.retain(|h| {
                let live = h.until.is_none_or(|u| u > now);
                if !live {
                    by_address.remove(&h.address);
                }
                live
            });
            !v.is_empty()
        });
    }
}

/// The table behind a lock, as the daemon and the policy share it.
pub(crate) type Shared = Arc<Mutex<HomeAddresses>>;

/// Locks the table; a poisoned lock (a panic elsewhere) still holds consistent data.
pub(crate) fn lock(t: &Shared) -> std::sync::MutexGuard<'_, HomeAddresses> {
    t.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Who holds what: the leases and assignments of the table, and the static entries.
#[derive(Clone)]
pub(crate) struct Authority {
    /// Leases and Mode Config assignments.
    pub(crate) table: Shared,
    /// Static `[[peers]] home_address` entries.
    pub(crate) statics: Vec<(Identity, Ipv6Addr)>,
}

/// The home agent's Quick Mode policy.
pub(crate) struct Policy {
    /// Who holds what.
    pub(crate) authority: Authority,
    /// Whether the initial tunnel for DHCPv6 is offered (`[dhcpv6] relay`).
    pub(crate) relay: bool,
}

/// The initial tunnel of draft §3.2: the peer's link-local address port 546 ↔ any address
/// port 547, UDP, tunnel mode.
pub(crate) fn is_initial_tunnel(local: &TrafficSelector, remote: &TrafficSelector) -> bool {
    let ll = matches!(remote.addr, IpAddr::V6(a) if a.is_unicast_link_local());
    ll && remote.prefix_len == 128
        && remote.protocol == UDP
        && remote.port == dhcp6_relay::CLIENT_PORT
        && local.prefix_len == 0
        && local.protocol == UDP
        && local.port == dhcp6_relay::SERVER_PORT
}

impl Authority {
    /// What the identity written as `identity` holds now, statics included.
    pub(crate) fn holds_str(&self, identity: &str, now: Instant) -> Vec<Ipv6Addr> {
        self.holds(&Identity::parse(identity), now)
    }

    /// What `identity` holds now, statics included.
    pub(crate) fn holds(&self, identity: &Identity, now: Instant) -> Vec<Ipv6Addr> {
        let mut v: Vec<Ipv6Addr> = self
            .statics
            .iter()
            .filter(|(id, _)| id.matches(identity))
            .map(|(_, a)| *a)
            .collect();
        v.extend(
            lock(&self.table)
                .held_by(&identity.to_string(), now)
                .iter()
                .map(|h| h.address),
        );
        v
    }
}

impl ChildPolicy for Policy {
    fn allow(
        &self,
        identity: &Identity,
        local: &TrafficSelector,
        remote: &TrafficSelector,
        mode: Mode,
    ) -> Result<(), String> {
        if is_initial_tunnel(local, remote) {
            return match (mode, self.relay) {
                (Mode::Tunnel, true) => Ok(()),
                (Mode::Transport, _) => Err(format!(
                    "{identity}: the DHCPv6 tunnel {remote} <-> {local} must be tunnel mode"
                )),
                (_, false) => Err(format!(
                    "{identity}: DHCPv6 relay is off ([dhcpv6] relay = false); {remote} refused"
                )),
            };
        }
        let held = self.authority.holds(identity, Instant::now());
        let hoa = match remote.addr {
            IpAddr::V6(a) if remote.prefix_len == 128 && held.contains(&a) => a,
            _ => {
                let list: Vec<String> = held.iter().map(ToString::to_string).collect();
                let holds = if list.is_empty() {
                    "holds no home address".to_owned()
                } else {
                    format!("holds {}", list.join(", "))
                };
                let other = match remote.addr {
                    IpAddr::V6(a) => lock(&self.authority.table)
                        .holder(a, Instant::now())
                        .map(|(who, _)| format!("; {a} is leased to {who}"))
                        .unwrap_or_default(),
                    IpAddr::V4(_) => String::new(),
                };
                return Err(format!(
                    "{identity} {holds}, not {remote} ({mode} mode){other}"
                ));
            }
        };
        // RFC 3776 §4.2: the transport-mode SA protects the Mobility Header between the home
        // address and the home agent's address.
        if mode == Mode::Transport
            && (remote.protocol != MOBILITY_HEADER
                || local.protocol != MOBILITY_HEADER
                || local.prefix_len != 128)
        {
            return Err(format!(
                "{identity}: transport mode for {hoa} is for the Mobility Header (protocol 135) \
                 to the home agent's address, not {remote} <-> {local}"
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn a(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }
    fn host(s: &str) -> TrafficSelector {
        TrafficSelector::host(IpAddr::V6(a(s)))
    }
    fn any() -> TrafficSelector {
        TrafficSelector::prefix(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0)
    }

    fn policy(relay: bool) -> Policy {
        Policy {
            authority: Authority {
                table: Shared::default(),
                statics: vec![(Identity::parse("static@example.com"), a("2001:db8:1::7"))],
            },
            relay,
        }
    }

    fn grant(p: &Policy, id: &str, addr: &str, until: Option<Instant>) {
        lock(&p.authority.table).grant(
            id,
            Held {
                address: a(addr),
                source: AddressSource::Dhcpv6,
                until,
            },
        );
    }

    #[test]
    fn initial_tunnel_only_with_the_relay_on() {
        let id = Identity::parse("mn1@example.com");
        let local = any().with_protocol(17, 547);
        let remote = host("fe80::1234").with_protocol(17, 546);
        assert_eq!(
            policy(true).allow(&id, &local, &remote, Mode::Tunnel),
            Ok(())
        );
        let e = policy(false)
            .allow(&id, &local, &remote, Mode::Tunnel)
            .unwrap_err();
        assert!(e.contains("relay = false"), "{e}");
        assert!(
            policy(true)
                .allow(&id, &local, &remote, Mode::Transport)
                .is_err()
        );
        // Other ports, or a global address, are not the initial tunnel.
        let other = host("fe80::1234").with_protocol(17, 53);
        assert!(
            policy(true)
                .allow(&id, &local, &other, Mode::Tunnel)
                .is_err()
        );
        let global = host("2001:db8:1::99").with_protocol(17, 546);
        assert!(
            policy(true)
                .allow(&id, &local, &global, Mode::Tunnel)
                .is_err()
        );
    }

    #[test]
    fn rfc3776_sas_only_for_the_leased_address() {
        let p = policy(true);
        let id = Identity::parse("mn1@example.com");
        grant(&p, "mn1@example.com", "2001:db8:1::100", None);
        assert_eq!(
            p.allow(&id, &any(), &host("2001:db8:1::100"), Mode::Tunnel),
            Ok(())
        );
        let mh_l = host("2001:db8:ff::1").with_protocol(135, 0);
        let mh_r = host("2001:db8:1::100").with_protocol(135, 0);
        assert_eq!(p.allow(&id, &mh_l, &mh_r, Mode::Transport), Ok(()));
        // Transport mode for anything but the Mobility Header: refused.
        assert!(
            p.allow(
                &id,
                &host("2001:db8:ff::1"),
                &host("2001:db8:1::100"),
                Mode::Transport
            )
            .is_err()
        );
        // Another node's address: refused, naming identity and both addresses.
        grant(&p, "mn2@example.com", "2001:db8:1::200", None);
        let e = p
            .allow(&id, &any(), &host("2001:db8:1::200"), Mode::Tunnel)
            .unwrap_err();
        assert!(
            e.contains("mn1@example.com") && e.contains("2001:db8:1::100"),
            "{e}"
        );
        assert!(
            e.contains("2001:db8:1::200 is leased to mn2@example.com"),
            "{e}"
        );
        // A prefix instead of the address: refused.
        let wide = TrafficSelector::prefix(IpAddr::V6(a("2001:db8:1::")), 64);
        assert!(p.allow(&id, &any(), &wide, Mode::Tunnel).is_err());
    }

    #[test]
    fn statics_and_expiry() {
        let p = policy(true);
        let s = Identity::parse("static@example.com");
        assert_eq!(
            p.allow(&s, &any(), &host("2001:db8:1::7"), Mode::Tunnel),
            Ok(())
        );
        let id = Identity::parse("mn1@example.com");
        let past = Instant::now().checked_sub(Duration::from_secs(1)).unwrap();
        grant(&p, "mn1@example.com", "2001:db8:1::100", Some(past));
        let e = p
            .allow(&id, &any(), &host("2001:db8:1::100"), Mode::Tunnel)
            .unwrap_err();
        assert!(e.contains("holds no home address"), "{e}");
        lock(&p.authority.table).prune(Instant::now());
        assert!(
            lock(&p.authority.table)
                .holder(a("2001:db8:1::100"), Instant::now())
                .is_none()
        );
    }

    #[test]
    fn a_reassigned_address_leaves_its_old_holder() {
        let mut t = HomeAddresses::default();
        let held = Held {
            address: a("2001:db8:1::100"),
            source: AddressSource::Dhcpv6,
            until: None,
        };
        t.grant("mn1@example.com", held);
        t.grant("mn2@example.com", held);
        let now = Instant::now();
        assert!(t.held_by("mn1@example.com", now).is_empty());
        assert_eq!(
            t.holder(held.address, now).map(|h| h.0),
            Some("mn2@example.com")
        );
        t.revoke("mn2@example.com", held.address);
        assert!(t.holder(held.address, now).is_none());
    }

    /// The address index answers what a scan of every identity's records answers, through
    /// grants that take addresses from others, revocations (right and wrong holder), expiry.
    #[test]
    fn holder_index_matches_a_scan() {
        let mut t = HomeAddresses::default();
        let t0 = Instant::now();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        for step in 0..5000u64 {
            let id = format!("mn{}@example.com", next(6));
            let address = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x100 + next(12) as u16);
            let now = t0 + Duration::from_secs(step);
            match next(4) {
                0 | 1 => t.grant(
                    &id,
                    Held {
                        address,
                        source: AddressSource::Dhcpv6,
                        until: (next(2) == 0).then(|| now + Duration::from_secs(next(40))),
                    },
                ),
                2 => t.revoke(&id, address),
                _ => t.prune(now),
            }
            for i in 0..12 {
                let a = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x100 + i);
                let scan = t.held.iter().find_map(|(id, v)| {
                    v.iter()
                        .find(|h| h.address == a && h.until.is_none_or(|u| u > now))
                        .map(|h| (id.as_str(), *h))
                });
                assert_eq!(t.holder(a, now), scan, "step {step}, {a}");
                let holders = t
                    .held
                    .iter()
                    .filter(|(_, v)| v.iter().any(|h| h.address == a))
                    .count();
                assert!(holders <= 1, "step {step}: {a} held {holders} times");
                assert_eq!(
                    t.by_address.contains_key(&a),
                    holders == 1,
                    "step {step}, {a}"
                );
            }
        }
    }
}
