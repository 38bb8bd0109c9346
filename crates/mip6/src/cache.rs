//! The home agent's Binding Cache (RFC 6275 §9.1) and its processing of home registrations:
//! validation (§9.5.1), primary care-of address registration (§10.3.1) and deregistration
//! (§10.3.2), with the RFC 3776 §4 authorization check supplied by the caller.
//!
//! [`BindingCache`] is a sans-IO engine. The caller decodes a Binding Update
//! ([`crate::MobilityPacket`]), makes sure it came through the transport-mode ESP SA and decides
//! whether the sender's IKE identity holds the home address (RFC 3776 §4.2/§4.4), then calls
//! [`BindingCache::handle_bu`] and sends the [`BuOutcome`]'s Binding Acknowledgement, if any,
//! with [`crate::build_ba_packet`]. It drives [`BindingCache::handle_timeout`] at
//! [`BindingCache::poll_timeout`] and drains [`BindingCache::poll_event`] for expired bindings
//! and due Binding Refresh Requests.
//!
//! Decisions, in the order they are taken:
//!
//! | check | outcome |
//! |---|---|
//! | home address not unicast routable (§9.5.1) | dropped |
//! | care-of address not unicast routable (registration only) | dropped |
//! | identity does not hold the home address (RFC 3776 §4) | BA 133 *Not home agent for this mobile node* |
//! | H bit clear: a correspondent registration, which needs return routability (§9.5.1) | BA 139 if a home registration exists, else dropped |
//! | sequence not greater than the entry's (§9.5.1, modulo 2^16) | BA 135 with the last accepted sequence |
//! | lifetime 0 or care-of = home address, no entry (§10.3.2) | BA 133 |
//! | lifetime 0 or care-of = home address (§10.3.2) | entry removed, BA 0 with lifetime 0 |
//! | new entry, cache full | BA 130 *Insufficient resources* |
//! | otherwise (§10.3.1) | entry created or updated, BA 0 with the granted lifetime |
//!
//! A home agent answers every home registration it does not drop, whatever the A bit
//! (§10.3.1: "Regardless of the setting of the Acknowledge (A) bit in the Binding Update, the
//! home agent MUST return a Binding Acknowledgement"). The granted lifetime is the requested
//! one capped at [`CacheConfig::max_lifetime`]. The K bit is echoed only if
//! [`CacheConfig::key_management_mobility`] is set (§10.3.1).
//!
//! Not covered: Duplicate Address Detection for the home address (status 134) and prefix
//! lifetimes (status 1), the on-link check of the home address (status 132: the caller's
//! authorization covers it), correspondent registrations (route optimization).

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

use tracing::debug;

use crate::mh::{
    BaFlags, BindingAck, BindingUpdate, BuFlags, duration_to_lifetime, lifetime_to_duration,
};
use crate::seq::seq_greater;
use crate::status::BaStatus;

/// Binding cache settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheConfig {
    /// Most bindings held at once; a registration for a new home address beyond it is refused
    /// with status 130.
    pub max_entries: usize,
    /// Longest lifetime granted (rounded down to 4-second units, at least one unit).
    pub max_lifetime: Duration,
    /// How long before expiry a Binding Refresh Request falls due ([`CacheEvent::RefreshRequest`]),
    /// at most a tenth of the granted lifetime. Zero: never.
    pub refresh_request_lead: Duration,
    /// Set the K bit in Binding Acknowledgements when the Binding Update has it (§10.3.1): only
    /// with an IKE that can move its SA to the new care-of address.
    pub key_management_mobility: bool,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            max_entries: 1024,
            max_lifetime: Duration::from_secs(600),
            refresh_request_lead: Duration::from_secs(10),
            key_management_mobility: false,
        }
    }
}

/// One Binding Cache entry (RFC 6275 §9.1), always a home registration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Binding {
    /// The home address (the key).
    pub home_address: Ipv6Addr,
    /// The care-of address packets for the home address are tunnelled to.
    pub care_of_address: Ipv6Addr,
    /// The IKE identity that registered it.
    pub identity: String,
    /// Sequence number of the last accepted Binding Update.
    pub sequence: u16,
    /// Flags of the last accepted Binding Update.
    pub flags: BuFlags,
    /// The granted lifetime of the last registration.
    pub lifetime: Duration,
    /// When the entry was created.
    pub created_at: Instant,
    /// When the last Binding Update was accepted.
    pub updated_at: Instant,
    /// When the binding expires.
    pub expires_at: Instant,
    /// When a Binding Refresh Request falls due, unless already signalled.
    pub refresh_request_at: Option<Instant>,
}

impl Binding {
    /// Lifetime left at `now`.
    pub fn lifetime_left(&self, now: Instant) -> Duration {
        self.expires_at.saturating_duration_since(now)
    }
}

/// What an accepted Binding Update did to the cache.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BindingChange {
    /// A new binding: start forwarding the home address to the care-of address.
    Created {
        /// Home address.
        home_address: Ipv6Addr,
        /// Care-of address.
        care_of_address: Ipv6Addr,
        /// Granted lifetime.
        lifetime: Duration,
    },
    /// The same binding with a new lifetime.
    Refreshed {
        /// Home address.
        home_address: Ipv6Addr,
        /// Care-of address.
        care_of_address: Ipv6Addr,
        /// Granted lifetime.
        lifetime: Duration,
    },
    /// The mobile node moved: forward to the new care-of address.
    Moved {
        /// Home address.
        home_address: Ipv6Addr,
        /// The previous care-of address.
        old_care_of_address: Ipv6Addr,
        /// The new care-of address.
        care_of_address: Ipv6Addr,
        /// Granted lifetime.
        lifetime: Duration,
    },
    /// The binding was deleted (§10.3.2): stop forwarding.
    Deregistered {
        /// Home address.
        home_address: Ipv6Addr,
        /// The care-of address it had.
        care_of_address: Ipv6Addr,
    },
}

/// Why a Binding Update was refused with a Binding Acknowledgement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// The sender's identity does not hold the home address (RFC 3776 §4): 133. The reply can
    /// only be protected by an SA of that home address; if the sender has none, the caller
    /// logs and drops instead of sending it.
    NotAuthorized,
    /// The H bit is clear but a home registration exists (§9.5.1): 139.
    RegistrationTypeChange,
    /// The sequence number is not greater than the last accepted one (§9.5.1): 135, and the BA
    /// carries `last`.
    SequenceOutOfWindow {
        /// The last accepted sequence number.
        last: u16,
    },
    /// Deregistration with no binding for the home address (§10.3.2): 133.
    NoBinding,
    /// A new binding while the cache is full: 130.
    CacheFull,
}

impl Refusal {
    /// The Binding Acknowledgement status for this refusal.
    pub fn status(self) -> BaStatus {
        match self {
            Self::NotAuthorized | Self::NoBinding => BaStatus::NOT_HOME_AGENT,
            Self::RegistrationTypeChange => BaStatus::REGISTRATION_TYPE_CHANGE_DISALLOWED,
            Self::SequenceOutOfWindow { .. } => BaStatus::SEQUENCE_OUT_OF_WINDOW,
            Self::CacheFull => BaStatus::INSUFFICIENT_RESOURCES,
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotAuthorized => f.write_str("identity does not hold the home address"),
            Self::RegistrationTypeChange => {
                f.write_str("H bit clear for a home-registered address")
            }
            Self::SequenceOutOfWindow { last } => {
                write!(f, "sequence not greater than the last accepted ({last})")
            }
            Self::NoBinding => f.write_str("deregistration without a binding"),
            Self::CacheFull => f.write_str("binding cache full"),
        }
    }
}

/// Why a Binding Update was silently discarded (§9.5.1: "Binding Updates that do not satisfy
/// all of these tests for any reason other than insufficiency of the Sequence Number MUST be
/// silently discarded").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DropReason {
    /// The home address is unspecified, loopback, multicast or link-local.
    HomeAddressNotRoutable,
    /// The care-of address is unspecified, loopback, multicast or link-local.
    CareOfNotRoutable,
    /// H bit clear with no home registration: a correspondent registration, which needs return
    /// routability (Nonce Indices and Binding Authorization Data) that this home agent does not
    /// do.
    NotHomeRegistration,
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::HomeAddressNotRoutable => "home address is not unicast routable",
            Self::CareOfNotRoutable => "care-of address is not unicast routable",
            Self::NotHomeRegistration => "not a home registration (H bit clear)",
        })
    }
}

/// The result of [`BindingCache::handle_bu`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub enum BuOutcome {
    /// Accepted: send `ack` (status 0) and apply `change`.
    Accepted {
        /// The Binding Acknowledgement to send.
        ack: BindingAck,
        /// What changed.
        change: BindingChange,
    },
    /// Refused: send `ack` (status ≥ 128); nothing changed.
    Refused {
        /// The Binding Acknowledgement to send.
        ack: BindingAck,
        /// Why.
        reason: Refusal,
    },
    /// Silently discarded; nothing changed.
    Dropped(DropReason),
}

impl BuOutcome {
    /// The Binding Acknowledgement to send, if any.
    pub fn ack(&self) -> Option<&BindingAck> {
        match self {
            Self::Accepted { ack, .. } | Self::Refused { ack, .. } => Some(ack),
            Self::Dropped(_) => None,
        }
    }

    /// The status sent back, if any.
    pub fn status(&self) -> Option<BaStatus> {
        self.ack().map(|a| a.status)
    }

    /// The change to the cache, if any.
    pub fn change(&self) -> Option<&BindingChange> {
        match self {
            Self::Accepted { change, .. } => Some(change),
            _ => None,
        }
    }
}

/// Something that happened on a timer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CacheEvent {
    /// The binding's lifetime ran out and it was removed: stop forwarding.
    Expired {
        /// Home address.
        home_address: Ipv6Addr,
        /// The care-of address it had.
        care_of_address: Ipv6Addr,
        /// The identity that registered it.
        identity: String,
    },
    /// The binding expires soon and was not refreshed: send a Binding Refresh Request
    /// (§6.1.2) to the home address (once per registration).
    RefreshRequest {
        /// Home address.
        home_address: Ipv6Addr,
        /// Care-of address.
        care_of_address: Ipv6Addr,
    },
}

/// Unicast routable for Mobile IPv6 purposes: not unspecified, loopback, multicast or
/// link-local.
fn routable(a: Ipv6Addr) -> bool {
    !(a.is_unspecified() || a.is_loopback() || a.is_multicast() || a.is_unicast_link_local())
}

/// Adds without panicking (an `Instant` overflow is out of reach with 16-bit lifetimes).
fn after(t: Instant, d: Duration) -> Instant {
    t.checked_add(d).unwrap_or(t)
}

/// The home agent's binding cache: see the module doc.
///
/// Calling order: [`Self::handle_bu`] for each received Binding Update, [`Self::handle_timeout`]
/// when [`Self::poll_timeout`] is reached, then [`Self::poll_event`] until `None`.
#[derive(Debug)]
pub struct BindingCache {
    config: CacheConfig,
    entries: BTreeMap<Ipv6Addr, Binding>,
    events: VecDeque<CacheEvent>,
}

impl BindingCache {
    /// An empty cache.
    pub fn new(config: CacheConfig) -> Self {
        Self {
            config,
            entries: BTreeMap::new(),
            events: VecDeque::new(),
        }
    }

    /// The settings.
    pub fn config(&self) -> &CacheConfig {
        &self.config
    }

    /// The binding for `home_address`.
    pub fn get(&self, home_address: &Ipv6Addr) -> Option<&Binding> {
        self.entries.get(home_address)
    }

    /// All bindings, by home address.
    pub fn iter(&self) -> impl Iterator<Item = &Binding> {
        self.entries.values()
    }

    /// Number of bindings.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// No bindings.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Removes the binding for `home_address` (e.g. its IKE SA is gone). No event.
    pub fn remove(&mut self, home_address: &Ipv6Addr) -> Option<Binding> {
        self.entries.remove(home_address)
    }

    /// Removes every binding registered by `identity`. No event.
    pub fn remove_identity(&mut self, identity: &str) -> Vec<Binding> {
        let keys: Vec<Ipv6Addr> = self
            .entries
            .values()
            .filter(|b| b.identity == identity)
            .map(|b| b.home_address)
            .collect();
        keys.iter().filter_map(|k| self.entries.remove(k)).collect()
    }

    /// The longest lifetime granted, in 4-second units (at least 1).
    fn max_lifetime_units(&self) -> u16 {
        duration_to_lifetime(self.config.max_lifetime).max(1)
    }

    /// Processes a Binding Update for `home_address` from `care_of_address` (the Alternate
    /// Care-of Address option or the IPv6 source, [`crate::MobilityPacket::care_of_address`]),
    /// received through an ESP SA of the IKE peer `identity`; `identity_allowed` says whether
    /// that identity holds `home_address` (RFC 3776 §4). See the module doc for the rules.
    pub fn handle_bu(
        &mut self,
        now: Instant,
        identity: &str,
        identity_allowed: bool,
        home_address: Ipv6Addr,
        care_of_address: Ipv6Addr,
        bu: &BindingUpdate,
    ) -> BuOutcome {
        let (hoa, coa) = (home_address, care_of_address);
        let refuse = |reason: Refusal, sequence: u16| {
            debug!(%hoa, %coa, %identity, seq = bu.sequence, %reason, "Binding Update refused");
            BuOutcome::Refused {
                ack: BindingAck {
                    status: reason.status(),
                    flags: BaFlags::default(),
                    sequence,
                    lifetime: 0,
                    options: Vec::new(),
                },
                reason,
            }
        };
        let drop = |reason: DropReason| {
            debug!(%hoa, %coa, %identity, seq = bu.sequence, %reason, "Binding Update dropped");
            BuOutcome::Dropped(reason)
        };

        // §9.5.1: "The packet MUST contain a unicast routable home address".
        if !routable(hoa) {
            return drop(DropReason::HomeAddressNotRoutable);
        }
        // §9.5.1: lifetime 0 or care-of == home address asks to delete the binding.
        let deregistration = bu.lifetime == 0 || coa == hoa;
        if !deregistration && !routable(coa) {
            return drop(DropReason::CareOfNotRoutable);
        }
        // RFC 3776 §4: the SA's identity must hold the home address.
        if !identity_allowed {
            return refuse(Refusal::NotAuthorized, bu.sequence);
        }
        let existing = self.entries.get(&hoa);
        // §9.5.1: H bit vs. the entry's home registration flag; without H this would be a
        // correspondent registration, which we cannot authorize.
        if !bu.flags.contains(BuFlags::HOME) {
            return match existing {
                Some(_) => refuse(Refusal::RegistrationTypeChange, bu.sequence),
                None => drop(DropReason::NotHomeRegistration),
            };
        }
        // §9.5.1: the sequence number must be greater (mod 2^16) than the last accepted; with no
        // entry any value is accepted. The BA then carries the last accepted number.
        if let Some(e) = existing
            && !seq_greater(bu.sequence, e.sequence)
        {
            let last = e.sequence;
            return refuse(Refusal::SequenceOutOfWindow { last }, last);
        }

        if deregistration {
            // §10.3.2: no home registration entry → 133; else delete it and return BA with
            // status 0, the BU's sequence number and lifetime 0.
            let Some(old) = self.entries.remove(&hoa) else {
                return refuse(Refusal::NoBinding, bu.sequence);
            };
            debug!(%hoa, coa = %old.care_of_address, %identity, seq = bu.sequence, "binding deregistered");
            return BuOutcome::Accepted {
                ack: self.ack(bu, 0),
                change: BindingChange::Deregistered {
                    home_address: hoa,
                    care_of_address: old.care_of_address,
                },
            };
        }

        if existing.is_none() && self.entries.len() >= self.config.max_entries {
            return refuse(Refusal::CacheFull, bu.sequence);
        }
        // §10.3.1: the granted lifetime is at most what was requested.
        let units = bu.lifetime.min(self.max_lifetime_units());
        let lifetime = lifetime_to_duration(units);
        let expires_at = after(now, lifetime);
        let lead = self.config.refresh_request_lead.min(lifetime / 10);
        let refresh_request_at = expires_at.checked_sub(lead).filter(|_| !lead.is_zero());
        let change = match self.entries.get_mut(&hoa) {
            Some(e) => {
                let old_coa = e.care_of_address;
                e.care_of_address = coa;
                e.identity = identity.to_owned();
                e.sequence = bu.sequence;
                e.flags = bu.flags;
                e.lifetime = lifetime;
                e.updated_at = now;
                e.expires_at = expires_at;
                e.refresh_request_at = refresh_request_at;
                if old_coa == coa {
                    BindingChange::Refreshed {
                        home_address: hoa,
                        care_of_address: coa,
                        lifetime,
                    }
                } else {
                    BindingChange::Moved {
                        home_address: hoa,
                        old_care_of_address: old_coa,
                        care_of_address: coa,
                        lifetime,
                    }
                }
            }
            None => {
                self.entries.insert(
                    hoa,
                    Binding {
                        home_address: hoa,
                        care_of_address: coa,
                        identity: identity.to_owned(),
                        sequence: bu.sequence,
                        flags: bu.flags,
                        lifetime,
                        created_at: now,
                        updated_at: now,
                        expires_at,
                        refresh_request_at,
                    },
                );
                BindingChange::Created {
                    home_address: hoa,
                    care_of_address: coa,
                    lifetime,
                }
            }
        };
        debug!(%hoa, %coa, %identity, seq = bu.sequence, lifetime_s = lifetime.as_secs(), ?change, "binding accepted");
        BuOutcome::Accepted {
            ack: self.ack(bu, units),
            change,
        }
    }

    /// A status-0 Binding Acknowledgement for `bu` (§10.3.1: sequence copied, lifetime granted).
    fn ack(&self, bu: &BindingUpdate, lifetime: u16) -> BindingAck {
        let k = self.config.key_management_mobility && bu.flags.contains(BuFlags::KEY_MGMT);
        BindingAck {
            status: BaStatus::ACCEPTED,
            flags: if k {
                BaFlags::KEY_MGMT
            } else {
                BaFlags::default()
            },
            sequence: bu.sequence,
            lifetime,
            options: Vec::new(),
        }
    }

    /// The next time [`Self::handle_timeout`] has work: an expiry or a due refresh request.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.entries
            .values()
            .flat_map(|b| [Some(b.expires_at), b.refresh_request_at])
            .flatten()
            .min()
    }

    /// Removes expired bindings and signals due refresh requests.
    pub fn handle_timeout(&mut self, now: Instant) {
        let expired: Vec<Ipv6Addr> = self
            .entries
            .values()
            .filter(|b| b.expires_at <= now)
            .map(|b| b.home_address)
            .collect();
        for hoa in expired {
            if let Some(b) = self.entries.remove(&hoa) {
                debug!(%hoa, coa = %b.care_of_address, identity = %b.identity, "binding expired");
                self.push_event(CacheEvent::Expired {
                    home_address: hoa,
                    care_of_address: b.care_of_address,
                    identity: b.identity,
                });
            }
        }
        let mut due = Vec::new();
        for b in self.entries.values_mut() {
            if b.refresh_request_at.is_some_and(|t| t <= now) {
                b.refresh_request_at = None;
                due.push(CacheEvent::RefreshRequest {
                    home_address: b.home_address,
                    care_of_address: b.care_of_address,
                });
            }
        }
        for e in due {
            self.push_event(e);
        }
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<CacheEvent> {
        self.events.pop_front()
    }

    /// Queues an event, dropping the oldest beyond a bound tied to the cache size.
    fn push_event(&mut self, e: CacheEvent) {
        let cap = self.config.max_entries.saturating_mul(2).max(64);
        if self.events.len() >= cap
            && let Some(old) = self.events.pop_front()
        {
            debug!(event = ?old, "binding cache event queue full: oldest event dropped");
        }
        self.events.push_back(e);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mh::MobilityOption;

    fn a(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    const HOA: &str = "2001:db8:1::1000";
    const COA: &str = "2001:db8:ff::2";
    const COA2: &str = "2001:db8:ee::2";
    const ID: &str = "mn1@example.net";

    fn bu(seq: u16, lifetime: u16) -> BindingUpdate {
        BindingUpdate {
            sequence: seq,
            flags: BuFlags::ACK | BuFlags::HOME,
            lifetime,
            options: vec![MobilityOption::AlternateCareOfAddress(a(COA))],
        }
    }

    fn cache() -> BindingCache {
        BindingCache::new(CacheConfig {
            max_entries: 2,
            max_lifetime: Duration::from_secs(600),
            refresh_request_lead: Duration::from_secs(10),
            key_management_mobility: false,
        })
    }

    fn register(c: &mut BindingCache, now: Instant, seq: u16) -> BuOutcome {
        c.handle_bu(now, ID, true, a(HOA), a(COA), &bu(seq, 150))
    }

    #[test]
    fn create_refresh_move_deregister() {
        let t0 = Instant::now();
        let mut c = cache();
        let o = register(&mut c, t0, 100);
        assert_eq!(o.status(), Some(BaStatus::ACCEPTED));
        let ack = o.ack().unwrap();
        assert_eq!((ack.sequence, ack.lifetime), (100, 150));
        assert_eq!(
            o.change(),
            Some(&BindingChange::Created {
                home_address: a(HOA),
                care_of_address: a(COA),
                lifetime: Duration::from_secs(600)
            })
        );
        let b = c.get(&a(HOA)).unwrap();
        assert_eq!(b.identity, ID);
        assert_eq!(b.sequence, 100);
        assert_eq!(b.expires_at, t0 + Duration::from_secs(600));
        assert_eq!(b.refresh_request_at, Some(t0 + Duration::from_secs(590)));
        assert_eq!(
            b.lifetime_left(t0 + Duration::from_secs(100)),
            Duration::from_secs(500)
        );

        let t1 = t0 + Duration::from_secs(60);
        let o = register(&mut c, t1, 101);
        assert!(matches!(o.change(), Some(BindingChange::Refreshed { .. })));
        assert_eq!(
            c.get(&a(HOA)).unwrap().expires_at,
            t1 + Duration::from_secs(600)
        );

        let o = c.handle_bu(t1, ID, true, a(HOA), a(COA2), &bu(102, 150));
        assert_eq!(
            o.change(),
            Some(&BindingChange::Moved {
                home_address: a(HOA),
                old_care_of_address: a(COA),
                care_of_address: a(COA2),
                lifetime: Duration::from_secs(600)
            })
        );
        assert_eq!(c.get(&a(HOA)).unwrap().created_at, t0);

        // Deregistration: lifetime 0.
        let o = c.handle_bu(t1, ID, true, a(HOA), a(COA2), &bu(103, 0));
        let ack = o.ack().unwrap();
        assert_eq!(
            (ack.status, ack.sequence, ack.lifetime),
            (BaStatus::ACCEPTED, 103, 0)
        );
        assert_eq!(
            o.change(),
            Some(&BindingChange::Deregistered {
                home_address: a(HOA),
                care_of_address: a(COA2)
            })
        );
        assert!(c.is_empty());
        // A second deregistration has no binding: 133.
        let o = c.handle_bu(t1, ID, true, a(HOA), a(COA2), &bu(104, 0));
        assert_eq!(o.status(), Some(BaStatus::NOT_HOME_AGENT));
        assert!(matches!(
            o,
            BuOutcome::Refused {
                reason: Refusal::NoBinding,
                ..
            }
        ));
    }

    #[test]
    fn deregistration_by_care_of_equal_home() {
        let t0 = Instant::now();
        let mut c = cache();
        let _ = register(&mut c, t0, 1);
        // Back home: care-of == home address, even with a nonzero lifetime.
        let o = c.handle_bu(t0, ID, true, a(HOA), a(HOA), &bu(2, 150));
        assert!(matches!(
            o.change(),
            Some(BindingChange::Deregistered { .. })
        ));
        assert_eq!(o.ack().unwrap().lifetime, 0);
        assert!(c.is_empty());
    }

    #[test]
    fn sequence_window_and_replay() {
        let t0 = Instant::now();
        let mut c = cache();
        let _ = register(&mut c, t0, 500);
        for (seq, ok) in [
            (500, false),                        // replay
            (499, false),                        // older
            (500u16.wrapping_sub(32768), false), // edge of "the preceding 32768 values"
            (500 + 32768, false),                // exactly half the space away: not greater
            (501, true),
        ] {
            let o = register(&mut c, t0, seq);
            if ok {
                assert_eq!(o.status(), Some(BaStatus::ACCEPTED), "seq {seq}");
            } else {
                let last = c.get(&a(HOA)).unwrap().sequence;
                assert_eq!(
                    o,
                    BuOutcome::Refused {
                        ack: BindingAck {
                            status: BaStatus::SEQUENCE_OUT_OF_WINDOW,
                            flags: BaFlags::default(),
                            sequence: last,
                            lifetime: 0,
                            options: vec![]
                        },
                        reason: Refusal::SequenceOutOfWindow { last }
                    },
                    "seq {seq}"
                );
                // Nothing changed.
                assert_eq!(c.get(&a(HOA)).unwrap().sequence, last);
            }
        }
        // 501 + 32767 is still greater.
        let o = register(&mut c, t0, 501 + 32767);
        assert_eq!(o.status(), Some(BaStatus::ACCEPTED));
    }

    #[test]
    fn sequence_wraps_around() {
        let t0 = Instant::now();
        let mut c = cache();
        for seq in [65534, 65535, 0, 1] {
            assert_eq!(register(&mut c, t0, seq).status(), Some(BaStatus::ACCEPTED));
        }
        assert_eq!(
            register(&mut c, t0, 65535).status(),
            Some(BaStatus::SEQUENCE_OUT_OF_WINDOW)
        );
        // A replayed deregistration is refused too (the binding stays).
        let o = c.handle_bu(t0, ID, true, a(HOA), a(COA), &bu(0, 0));
        assert_eq!(o.status(), Some(BaStatus::SEQUENCE_OUT_OF_WINDOW));
        assert!(c.get(&a(HOA)).is_some());
    }

    #[test]
    fn new_entry_accepts_any_sequence() {
        let t0 = Instant::now();
        let mut c = cache();
        let _ = register(&mut c, t0, 9000);
        let _ = c.handle_bu(t0, ID, true, a(HOA), a(COA), &bu(9001, 0));
        // After deregistration (or expiry) there is no entry: any sequence is accepted.
        assert_eq!(register(&mut c, t0, 3).status(), Some(BaStatus::ACCEPTED));
    }

    #[test]
    fn authorization_and_flags() {
        let t0 = Instant::now();
        let mut c = cache();
        // Identity does not hold the home address.
        let o = c.handle_bu(t0, "other", false, a(HOA), a(COA), &bu(1, 150));
        assert_eq!(o.status(), Some(BaStatus::NOT_HOME_AGENT));
        assert!(matches!(
            o,
            BuOutcome::Refused {
                reason: Refusal::NotAuthorized,
                ..
            }
        ));
        assert!(c.is_empty());
        // No H bit and no entry: dropped.
        let mut nh = bu(1, 150);
        nh.flags = BuFlags::ACK;
        let o = c.handle_bu(t0, ID, true, a(HOA), a(COA), &nh);
        assert_eq!(o, BuOutcome::Dropped(DropReason::NotHomeRegistration));
        // With an entry: 139, binding unchanged.
        let _ = register(&mut c, t0, 1);
        let mut nh = bu(2, 150);
        nh.flags = BuFlags::ACK;
        let o = c.handle_bu(t0, ID, true, a(HOA), a(COA2), &nh);
        assert_eq!(
            o.status(),
            Some(BaStatus::REGISTRATION_TYPE_CHANGE_DISALLOWED)
        );
        assert_eq!(c.get(&a(HOA)).unwrap().care_of_address, a(COA));
        // An unauthorized identity cannot deregister someone else either.
        let o = c.handle_bu(t0, "other", false, a(HOA), a(COA), &bu(5, 0));
        assert_eq!(o.status(), Some(BaStatus::NOT_HOME_AGENT));
        assert!(c.get(&a(HOA)).is_some());
        // The A bit does not matter for a home agent: a BA is returned anyway.
        let mut na = bu(3, 150);
        na.flags = BuFlags::HOME;
        assert_eq!(
            c.handle_bu(t0, ID, true, a(HOA), a(COA), &na).status(),
            Some(BaStatus::ACCEPTED)
        );
    }

    #[test]
    fn unroutable_addresses_dropped() {
        let t0 = Instant::now();
        let mut c = cache();
        for hoa in ["::", "::1", "ff02::1", "fe80::1"] {
            let o = c.handle_bu(t0, ID, true, a(hoa), a(COA), &bu(1, 150));
            assert_eq!(o, BuOutcome::Dropped(DropReason::HomeAddressNotRoutable));
        }
        for coa in ["::", "ff02::1", "fe80::1"] {
            let o = c.handle_bu(t0, ID, true, a(HOA), a(coa), &bu(1, 150));
            assert_eq!(o, BuOutcome::Dropped(DropReason::CareOfNotRoutable));
        }
        assert!(c.is_empty());
    }

    #[test]
    fn lifetime_capped_and_k_bit() {
        let t0 = Instant::now();
        let mut c = BindingCache::new(CacheConfig {
            max_lifetime: Duration::from_secs(30),
            key_management_mobility: true,
            ..CacheConfig::default()
        });
        let mut b = bu(1, 1000);
        b.flags = b.flags | BuFlags::KEY_MGMT;
        let o = c.handle_bu(t0, ID, true, a(HOA), a(COA), &b);
        let ack = o.ack().unwrap();
        assert_eq!(ack.lifetime, 7); // 28 s: 30 s rounded down to 4-second units
        assert!(ack.flags.contains(BaFlags::KEY_MGMT));
        assert_eq!(c.get(&a(HOA)).unwrap().lifetime, Duration::from_secs(28));
        // Shorter than the cap: granted as asked. K echoed only if asked.
        let o = c.handle_bu(t0, ID, true, a(HOA), a(COA), &bu(2, 2));
        let ack = o.ack().unwrap();
        assert_eq!(ack.lifetime, 2);
        assert!(!ack.flags.contains(BaFlags::KEY_MGMT));
        // Without the setting K is never set.
        let mut c = cache();
        let o = c.handle_bu(t0, ID, true, a(HOA), a(COA), &b);
        assert!(!o.ack().unwrap().flags.contains(BaFlags::KEY_MGMT));
        // A max below one unit still grants one unit.
        let mut c = BindingCache::new(CacheConfig {
            max_lifetime: Duration::from_secs(1),
            ..CacheConfig::default()
        });
        assert_eq!(
            c.handle_bu(t0, ID, true, a(HOA), a(COA), &bu(1, 100))
                .ack()
                .unwrap()
                .lifetime,
            1
        );
    }

    #[test]
    fn capacity() {
        let t0 = Instant::now();
        let mut c = cache();
        let h = |i: u16| Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, i);
        for i in 1..=2 {
            let o = c.handle_bu(t0, ID, true, h(i), a(COA), &bu(1, 150));
            assert_eq!(o.status(), Some(BaStatus::ACCEPTED));
        }
        let o = c.handle_bu(t0, ID, true, h(3), a(COA), &bu(1, 150));
        assert_eq!(o.status(), Some(BaStatus::INSUFFICIENT_RESOURCES));
        assert!(matches!(
            o,
            BuOutcome::Refused {
                reason: Refusal::CacheFull,
                ..
            }
        ));
        assert_eq!(c.len(), 2);
        // Existing entries can still refresh.
        let o = c.handle_bu(t0, ID, true, h(1), a(COA), &bu(2, 150));
        assert_eq!(o.status(), Some(BaStatus::ACCEPTED));
        // After a removal there is room again.
        assert!(c.remove(&h(2)).is_some());
        let o = c.handle_bu(t0, ID, true, h(3), a(COA), &bu(1, 150));
        assert_eq!(o.status(), Some(BaStatus::ACCEPTED));
        assert_eq!(c.remove_identity(ID).len(), 2);
        assert!(c.is_empty());
    }

    #[test]
    fn expiry_and_refresh_request() {
        let t0 = Instant::now();
        let mut c = cache();
        assert_eq!(c.poll_timeout(), None);
        // 40 s: the refresh request is due 4 s (a tenth) before expiry.
        let _ = c.handle_bu(t0, ID, true, a(HOA), a(COA), &bu(1, 10));
        assert_eq!(c.poll_timeout(), Some(t0 + Duration::from_secs(36)));
        c.handle_timeout(t0 + Duration::from_secs(35));
        assert_eq!(c.poll_event(), None);
        c.handle_timeout(t0 + Duration::from_secs(36));
        assert_eq!(
            c.poll_event(),
            Some(CacheEvent::RefreshRequest {
                home_address: a(HOA),
                care_of_address: a(COA)
            })
        );
        assert_eq!(c.poll_event(), None);
        // Signalled once; next is expiry.
        assert_eq!(c.poll_timeout(), Some(t0 + Duration::from_secs(40)));
        c.handle_timeout(t0 + Duration::from_secs(39));
        assert_eq!(c.poll_event(), None);
        c.handle_timeout(t0 + Duration::from_secs(40));
        assert_eq!(
            c.poll_event(),
            Some(CacheEvent::Expired {
                home_address: a(HOA),
                care_of_address: a(COA),
                identity: ID.to_owned()
            })
        );
        assert!(c.is_empty());
        assert_eq!(c.poll_timeout(), None);
    }

    #[test]
    fn refresh_postpones_expiry() {
        let t0 = Instant::now();
        let mut c = cache();
        let _ = c.handle_bu(t0, ID, true, a(HOA), a(COA), &bu(1, 150));
        // Long lifetime: lead is the configured 10 s.
        assert_eq!(c.poll_timeout(), Some(t0 + Duration::from_secs(590)));
        let t1 = t0 + Duration::from_secs(500);
        let _ = c.handle_bu(t1, ID, true, a(HOA), a(COA), &bu(2, 150));
        c.handle_timeout(t0 + Duration::from_secs(600));
        assert_eq!(c.poll_event(), None);
        assert!(c.get(&a(HOA)).is_some());
        // No refresh requests when the lead is zero.
        let mut c = BindingCache::new(CacheConfig {
            refresh_request_lead: Duration::ZERO,
            ..CacheConfig::default()
        });
        let _ = c.handle_bu(t0, ID, true, a(HOA), a(COA), &bu(1, 150));
        assert_eq!(c.poll_timeout(), Some(t0 + Duration::from_secs(600)));
    }

    #[test]
    fn event_queue_is_bounded() {
        let t0 = Instant::now();
        let mut c = BindingCache::new(CacheConfig {
            max_entries: 100,
            ..CacheConfig::default()
        });
        for round in 0..5u16 {
            for i in 0..100u16 {
                let h = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, round, i + 1);
                let _ = c.handle_bu(t0, ID, true, h, a(COA), &bu(1, 1));
            }
            c.handle_timeout(t0 + Duration::from_secs(100));
        }
        let mut n = 0;
        while c.poll_event().is_some() {
            n += 1;
        }
        assert_eq!(n, 200);
    }
}
