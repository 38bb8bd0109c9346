//! The mobile node's Binding Update List entry for its home agent (RFC 6275 §11.1): sending
//! home registrations (§11.7.1), retransmission (§11.8), Binding Acknowledgements (§11.7.3),
//! Binding Refresh Requests (§11.7.4) and deregistration (§11.7.1, lifetime 0).
//!
//! [`HomeRegistration`] is a sans-IO engine for one home address at one home agent. The caller
//! gives it commands ([`HomeRegistration::register`] once the RFC 3776 SAs are up and on every
//! movement, [`HomeRegistration::deregister`] at shutdown), feeds it the Binding
//! Acknowledgements and Binding Refresh Requests that arrived from the home agent through the
//! SA ([`HomeRegistration::handle_ba`], [`HomeRegistration::handle_brr`]), sends what
//! [`HomeRegistration::poll_transmit`] writes (the Mobility Header, to be wrapped with
//! [`crate::build_bu_packet`] and then ESP), drives [`HomeRegistration::handle_timeout`] at
//! [`HomeRegistration::poll_timeout`] and drains [`HomeRegistration::poll_event`].
//!
//! Rules:
//! * Every Binding Update has H and A set, an Alternate Care-of Address option with the
//!   care-of address (§11.7.1: "This option MUST be included in all home registrations, as the
//!   ESP protocol will not be able to protect care-of addresses in the IPv6 header"), and a
//!   sequence number greater than the previous one; retransmissions too (as UMIP does), so a
//!   retransmission after a lost acknowledgement is not refused with 135.
//! * Retransmission (§11.8): the first registration waits
//!   [`BulConfig::initial_timeout_first_registration`] (InitialBindackTimeoutFirstReg, §13),
//!   others [`BulConfig::initial_timeout`] (INITIAL_BINDACK_TIMEOUT, §12); the timeout doubles
//!   up to [`BulConfig::max_timeout`] (MAX_BINDACK_TIMEOUT) and registrations go on at that rate
//!   until answered (§11.8: "MAY continue to send these messages at this slower rate
//!   indefinitely"). Deregistration gives up after
//!   [`BulConfig::max_deregistration_transmissions`].
//! * A Binding Acknowledgement counts if its sequence number is the one of the last Binding
//!   Update sent (§11.7.3), or if its status is 135: then the sequence number is the home
//!   agent's last accepted one, the list continues from it (as UMIP does) and sends again,
//!   at most [`BulConfig::max_resyncs`] times per attempt.
//! * Accepted (status < 128): the binding lives for the granted lifetime counted from when
//!   the Binding Update was sent (§11.7.3); it is refreshed after three quarters of it, or
//!   earlier if the home agent sent a Binding Refresh Advice (§6.2.4).
//! * Rejected (≥ 128, other than 135): [`BulEvent::Failed`] and nothing more is sent until the
//!   next command (§11.7.3: "future Binding Updates SHOULD NOT be sent to this destination").
//! * A Binding Refresh Request while registered starts a refresh at once (§11.7.4).

use std::collections::VecDeque;
use std::fmt;
use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

use tracing::debug;

use crate::mh::{
    BindingAck, BindingUpdate, BuFlags, DnsUpdateOption, DnsUpdateStatus, Message, MobilityOption,
    duration_to_lifetime,
};
use crate::status::BaStatus;

/// INITIAL_BINDACK_TIMEOUT (RFC 6275 §12).
pub const INITIAL_BINDACK_TIMEOUT: Duration = Duration::from_secs(1);
/// InitialBindackTimeoutFirstReg default (RFC 6275 §13).
pub const INITIAL_BINDACK_TIMEOUT_FIRST_REG: Duration = Duration::from_millis(1500);
/// MAX_BINDACK_TIMEOUT (RFC 6275 §12).
pub const MAX_BINDACK_TIMEOUT: Duration = Duration::from_secs(32);
/// The refresh is never scheduled sooner than this after an acknowledgement.
const MIN_REFRESH_DELAY: Duration = Duration::from_secs(1);
/// Bound of the event queue (a handful of events per call at most).
const MAX_EVENTS: usize = 64;

/// Binding update list settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BulConfig {
    /// Lifetime asked for (rounded down to 4-second units, at least one unit).
    pub lifetime: Duration,
    /// First retransmission timeout of the first registration with this home agent.
    pub initial_timeout_first_registration: Duration,
    /// First retransmission timeout otherwise.
    pub initial_timeout: Duration,
    /// Largest retransmission timeout.
    pub max_timeout: Duration,
    /// Set the K bit (Key Management Mobility Capability, §6.1.7): only with an IKE that can
    /// move its SA to the new care-of address.
    pub key_management_mobility: bool,
    /// Status-135 resynchronisations allowed per attempt before giving up.
    pub max_resyncs: u8,
    /// Binding Updates sent for one deregistration before giving up (at least 1).
    pub max_deregistration_transmissions: u32,
    /// Ask the home agent to keep this name's AAAA record at the home address: every
    /// Binding Update carries the DNS Update option (RFC 5026 §6.2), with the R flag (remove)
    /// in a deregistration. Must be a valid domain name, or no option is sent.
    pub dns_update: Option<String>,
}

impl Default for BulConfig {
    fn default() -> Self {
        Self {
            lifetime: Duration::from_secs(600),
            initial_timeout_first_registration: INITIAL_BINDACK_TIMEOUT_FIRST_REG,
            initial_timeout: INITIAL_BINDACK_TIMEOUT,
            max_timeout: MAX_BINDACK_TIMEOUT,
            key_management_mobility: false,
            max_resyncs: 3,
            max_deregistration_transmissions: 4,
            dns_update: None,
        }
    }
}

/// A Binding Update to send: the Mobility Header is in the buffer given to
/// [`HomeRegistration::poll_transmit`], checksummed for home address → home agent. Wrap it
/// with [`crate::build_bu_packet`]`(care_of, home_agent, home_address, ..)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub struct Transmit {
    /// Source address of the IPv6 packet.
    pub care_of: Ipv6Addr,
    /// Destination address.
    pub home_agent: Ipv6Addr,
    /// For the Home Address option.
    pub home_address: Ipv6Addr,
    /// Sequence number of the Binding Update.
    pub sequence: u16,
    /// Bytes written to the buffer.
    pub size: usize,
}

/// What happened to the home registration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BulEvent {
    /// The home agent accepted the registration (or its refresh, or the move to a new care-of
    /// address).
    Registered {
        /// The registered care-of address.
        care_of: Ipv6Addr,
        /// The granted lifetime.
        lifetime: Duration,
        /// The Binding Acknowledgement status (< 128).
        status: BaStatus,
        /// A binding existed before (refresh or movement).
        refresh: bool,
    },
    /// The home agent refused the registration (status ≥ 128), or it kept answering 135, or
    /// accepted it with a zero lifetime. Nothing more is sent until the next command.
    Failed {
        /// The care-of address that was being registered.
        care_of: Ipv6Addr,
        /// The status.
        status: BaStatus,
    },
    /// The binding's lifetime ran out before a refresh was acknowledged. A registration in
    /// progress goes on.
    Expired {
        /// The care-of address of the binding.
        care_of: Ipv6Addr,
    },
    /// The deregistration finished.
    Deregistered {
        /// The care-of address it was sent from.
        care_of: Ipv6Addr,
        /// The status, or `None` if the home agent never answered.
        status: Option<BaStatus>,
    },
}

/// Why a Binding Acknowledgement was ignored (§11.7.3: "silently ignored"; log it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BaIgnored {
    /// No Binding Update is outstanding.
    #[error("no Binding Update outstanding")]
    NotExpected,
    /// The sequence number is not the last one sent (and the status is not 135).
    #[error("sequence number {got} does not match the outstanding {expected}")]
    SequenceMismatch {
        /// The last sequence number sent.
        expected: u16,
        /// The acknowledgement's.
        got: u16,
    },
}

/// The state's name, for status output and logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BulState {
    /// Nothing registered, nothing in flight.
    Idle,
    /// A registration is in flight and no binding is known to exist.
    Registering,
    /// Registered.
    Registered,
    /// A refresh or a move is in flight while a binding exists.
    Refreshing,
    /// A deregistration is in flight.
    Deregistering,
}

impl fmt::Display for BulState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Idle => "idle",
            Self::Registering => "registering",
            Self::Registered => "registered",
            Self::Refreshing => "refreshing",
            Self::Deregistering => "deregistering",
        })
    }
}

/// A snapshot for `status`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BulStatus {
    /// State.
    pub state: BulState,
    /// Care-of address registered or being registered.
    pub care_of: Option<Ipv6Addr>,
    /// Sequence number of the last Binding Update sent.
    pub sequence: Option<u16>,
    /// Lifetime left of the current binding.
    pub lifetime_left: Option<Duration>,
    /// Status of the last Binding Acknowledgement.
    pub last_status: Option<BaStatus>,
    /// The DNS Update status of the last Binding Acknowledgement that carried one.
    pub dns_update: Option<DnsUpdateStatus>,
}

/// A known binding at the home agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Bound {
    care_of: Ipv6Addr,
    expires_at: Instant,
}

/// A Binding Update in flight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Pending {
    care_of: Ipv6Addr,
    /// Sequence number of the last Binding Update sent.
    sequence: u16,
    /// When it was sent (queued): the lifetime counts from here.
    sent_at: Instant,
    /// Lifetime asked for, in units.
    lifetime: u16,
    timeout: Duration,
    retransmit_at: Instant,
    transmissions: u32,
    resyncs: u8,
    /// A binding that exists while this one is in flight (refresh or move).
    binding: Option<Bound>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Idle,
    Registering(Pending),
    Registered { bound: Bound, refresh_at: Instant },
    Deregistering(Pending),
}

/// One home registration: see the module doc.
///
/// Calling order: commands and `handle_*` as things happen, then [`Self::poll_transmit`] until
/// `None`, then [`Self::poll_event`] until `None`; [`Self::handle_timeout`] at
/// [`Self::poll_timeout`].
#[derive(Debug)]
pub struct HomeRegistration {
    config: BulConfig,
    home_address: Ipv6Addr,
    home_agent: Ipv6Addr,
    next_sequence: u16,
    last_sent: Option<u16>,
    last_status: Option<BaStatus>,
    last_dns_status: Option<DnsUpdateStatus>,
    registered_once: bool,
    send_due: bool,
    state: State,
    events: VecDeque<BulEvent>,
}

impl HomeRegistration {
    /// A list entry for `home_address` at `home_agent`; the first Binding Update uses
    /// `initial_sequence` (pick it at random: §11.7.1 only asks for increasing numbers).
    pub fn new(
        config: BulConfig,
        home_address: Ipv6Addr,
        home_agent: Ipv6Addr,
        initial_sequence: u16,
    ) -> Self {
        Self {
            config,
            home_address,
            home_agent,
            next_sequence: initial_sequence,
            last_sent: None,
            last_status: None,
            last_dns_status: None,
            registered_once: false,
            send_due: false,
            state: State::Idle,
            events: VecDeque::new(),
        }
    }

    /// The home address.
    pub fn home_address(&self) -> Ipv6Addr {
        self.home_address
    }

    /// The home agent.
    pub fn home_agent(&self) -> Ipv6Addr {
        self.home_agent
    }

    /// The state.
    pub fn state(&self) -> BulState {
        match &self.state {
            State::Idle => BulState::Idle,
            State::Registering(p) if p.binding.is_some() => BulState::Refreshing,
            State::Registering(_) => BulState::Registering,
            State::Registered { .. } => BulState::Registered,
            State::Deregistering(_) => BulState::Deregistering,
        }
    }

    /// A binding is known to exist at the home agent.
    pub fn is_registered(&self) -> bool {
        match &self.state {
            State::Registered { .. } => true,
            State::Registering(p) => p.binding.is_some(),
            _ => false,
        }
    }

    /// A snapshot for status output.
    pub fn status(&self, now: Instant) -> BulStatus {
        let (care_of, bound) = match &self.state {
            State::Idle => (None, None),
            State::Registering(p) | State::Deregistering(p) => (Some(p.care_of), p.binding),
            State::Registered { bound, .. } => (Some(bound.care_of), Some(*bound)),
        };
        BulStatus {
            state: self.state(),
            care_of,
            sequence: self.last_sent,
            lifetime_left: bound.map(|b| b.expires_at.saturating_duration_since(now)),
            last_status: self.last_status,
            dns_update: self.last_dns_status,
        }
    }

    /// Registers `care_of` (first registration, movement, or an early refresh). Does nothing if
    /// that registration is already in flight.
    pub fn register(&mut self, now: Instant, care_of: Ipv6Addr) {
        let binding = match &self.state {
            State::Registering(p) if p.care_of == care_of => return,
            State::Registering(p) => p.binding,
            State::Registered { bound, .. } => Some(*bound),
            State::Idle | State::Deregistering(_) => None,
        };
        debug!(hoa = %self.home_address, coa = %care_of, "home registration started");
        self.start(now, care_of, binding, false);
    }

    /// Deregisters (lifetime 0) from the current care-of address. Returns `false` (and does
    /// nothing) when idle: no binding is known.
    pub fn deregister(&mut self, now: Instant) -> bool {
        let care_of = match &self.state {
            State::Idle => return false,
            State::Deregistering(_) => return true,
            State::Registering(p) => p.care_of,
            State::Registered { bound, .. } => bound.care_of,
        };
        debug!(hoa = %self.home_address, coa = %care_of, "deregistration started");
        self.start(now, care_of, None, true);
        true
    }

    /// Starts an attempt: a new Binding Update now.
    fn start(&mut self, now: Instant, care_of: Ipv6Addr, binding: Option<Bound>, dereg: bool) {
        let timeout = if !dereg && !self.registered_once {
            self.config.initial_timeout_first_registration
        } else {
            self.config.initial_timeout
        };
        let lifetime = if dereg {
            0
        } else {
            duration_to_lifetime(self.config.lifetime).max(1)
        };
        let p = Pending {
            care_of,
            sequence: self.take_sequence(),
            sent_at: now,
            lifetime,
            timeout,
            retransmit_at: after(now, timeout),
            transmissions: 1,
            resyncs: 0,
            binding,
        };
        self.send_due = true;
        self.state = if dereg {
            State::Deregistering(p)
        } else {
            State::Registering(p)
        };
    }

    fn take_sequence(&mut self) -> u16 {
        let s = self.next_sequence;
        self.next_sequence = s.wrapping_add(1);
        self.last_sent = Some(s);
        s
    }

    fn push_event(&mut self, e: BulEvent) {
        if self.events.len() >= MAX_EVENTS {
            self.events.pop_front();
        }
        self.events.push_back(e);
    }

    /// A Binding Acknowledgement from the home agent (the caller has checked it came through
    /// the SA, §11.7.3). Errors say why it was ignored.
    pub fn handle_ba(&mut self, now: Instant, ba: &BindingAck) -> Result<(), BaIgnored> {
        let (mut p, dereg) = match self.state {
            State::Registering(p) => (p, false),
            State::Deregistering(p) => (p, true),
            _ => return Err(BaIgnored::NotExpected),
        };
        if ba.status == BaStatus::SEQUENCE_OUT_OF_WINDOW {
            self.last_status = Some(ba.status);
            if p.resyncs >= self.config.max_resyncs {
                debug!(hoa = %self.home_address, last = ba.sequence, "status 135 again: giving up");
                self.finish_failed(p, dereg, ba.status);
                return Ok(());
            }
            // Continue after the home agent's last accepted number and send again.
            debug!(hoa = %self.home_address, last = ba.sequence, "status 135: resynchronising the sequence number");
            self.next_sequence = ba.sequence.wrapping_add(1);
            p.sequence = self.take_sequence();
            p.sent_at = now;
            p.resyncs += 1;
            p.transmissions += 1;
            p.timeout = self.config.initial_timeout;
            p.retransmit_at = after(now, p.timeout);
            self.send_due = true;
            self.state = if dereg {
                State::Deregistering(p)
            } else {
                State::Registering(p)
            };
            return Ok(());
        }
        if ba.sequence != p.sequence {
            return Err(BaIgnored::SequenceMismatch {
                expected: p.sequence,
                got: ba.sequence,
            });
        }
        self.last_status = Some(ba.status);
        if let Some(st) = ba.options.iter().find_map(|o| match o {
            MobilityOption::DnsUpdate(d) => Some(d.status),
            _ => None,
        }) {
            self.last_dns_status = Some(st);
        }
        self.send_due = false;
        if dereg {
            debug!(hoa = %self.home_address, status = %ba.status, "deregistration acknowledged");
            self.state = State::Idle;
            self.push_event(BulEvent::Deregistered {
                care_of: p.care_of,
                status: Some(ba.status),
            });
            return Ok(());
        }
        if !ba.status.is_accepted() || ba.lifetime == 0 {
            debug!(hoa = %self.home_address, status = %ba.status, lifetime = ba.lifetime, "home registration failed");
            self.finish_failed(p, false, ba.status);
            return Ok(());
        }
        // §11.7.3: the lifetime counts down from when the Binding Update was sent.
        let lifetime = ba.lifetime_duration();
        let expires_at = after(p.sent_at, lifetime);
        let mut refresh_at = after(p.sent_at, lifetime / 4 * 3);
        if let Some(advice) = ba.refresh_advice().filter(|d| !d.is_zero()) {
            refresh_at = refresh_at.min(after(now, advice));
        }
        let refresh_at = refresh_at.max(after(now, MIN_REFRESH_DELAY));
        self.registered_once = true;
        debug!(hoa = %self.home_address, coa = %p.care_of, status = %ba.status, lifetime_s = lifetime.as_secs(), "home registration accepted");
        self.state = State::Registered {
            bound: Bound {
                care_of: p.care_of,
                expires_at,
            },
            refresh_at,
        };
        self.push_event(BulEvent::Registered {
            care_of: p.care_of,
            lifetime,
            status: ba.status,
            refresh: p.binding.is_some(),
        });
        Ok(())
    }

    fn finish_failed(&mut self, p: Pending, dereg: bool, status: BaStatus) {
        self.send_due = false;
        self.state = State::Idle;
        self.push_event(if dereg {
            BulEvent::Deregistered {
                care_of: p.care_of,
                status: Some(status),
            }
        } else {
            BulEvent::Failed {
                care_of: p.care_of,
                status,
            }
        });
    }

    /// A Binding Refresh Request from the home agent (§11.7.4): refresh now if registered.
    /// Returns whether a refresh was started.
    pub fn handle_brr(&mut self, now: Instant) -> bool {
        let State::Registered { bound, .. } = self.state else {
            return false;
        };
        debug!(hoa = %self.home_address, "Binding Refresh Request: refreshing");
        self.start(now, bound.care_of, Some(bound), false);
        true
    }

    /// The next time [`Self::handle_timeout`] has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match &self.state {
            State::Idle => None,
            State::Registering(p) => Some(match p.binding {
                Some(b) => p.retransmit_at.min(b.expires_at),
                None => p.retransmit_at,
            }),
            State::Registered { bound, refresh_at } => Some((*refresh_at).min(bound.expires_at)),
            State::Deregistering(p) => Some(p.retransmit_at),
        }
    }

    /// Retransmits, refreshes and expires.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.state {
            State::Idle => {}
            State::Registered { bound, refresh_at } => {
                if bound.expires_at <= now {
                    self.expire(bound);
                    self.start(now, bound.care_of, None, false);
                } else if refresh_at <= now {
                    debug!(hoa = %self.home_address, "refreshing the home registration");
                    self.start(now, bound.care_of, Some(bound), false);
                }
            }
            State::Registering(mut p) => {
                if let Some(b) = p.binding.filter(|b| b.expires_at <= now) {
                    self.expire(b);
                    p.binding = None;
                }
                if p.retransmit_at <= now {
                    self.retransmit(now, &mut p);
                }
                self.state = State::Registering(p);
            }
            State::Deregistering(mut p) => {
                if p.retransmit_at <= now {
                    if p.transmissions >= self.config.max_deregistration_transmissions.max(1) {
                        debug!(hoa = %self.home_address, "deregistration not acknowledged: giving up");
                        self.send_due = false;
                        self.state = State::Idle;
                        self.push_event(BulEvent::Deregistered {
                            care_of: p.care_of,
                            status: None,
                        });
                        return;
                    }
                    self.retransmit(now, &mut p);
                }
                self.state = State::Deregistering(p);
            }
        }
    }

    fn expire(&mut self, b: Bound) {
        debug!(hoa = %self.home_address, coa = %b.care_of, "binding expired");
        self.push_event(BulEvent::Expired { care_of: b.care_of });
    }

    /// §11.8: doubled timeout up to the maximum, a new sequence number.
    fn retransmit(&mut self, now: Instant, p: &mut Pending) {
        p.timeout = (p.timeout * 2).min(self.config.max_timeout);
        p.sequence = self.take_sequence();
        p.sent_at = now;
        p.transmissions = p.transmissions.saturating_add(1);
        p.retransmit_at = after(now, p.timeout);
        self.send_due = true;
        debug!(hoa = %self.home_address, seq = p.sequence, next_s = p.timeout.as_secs_f32(), "retransmitting the Binding Update");
    }

    /// Writes the Binding Update due, if any, into `buf` (cleared first).
    pub fn poll_transmit(&mut self, _now: Instant, buf: &mut Vec<u8>) -> Option<Transmit> {
        if !self.send_due {
            return None;
        }
        let (p, dereg) = match &self.state {
            State::Registering(p) => (*p, false),
            State::Deregistering(p) => (*p, true),
            _ => {
                self.send_due = false;
                return None;
            }
        };
        self.send_due = false;
        let mut flags = BuFlags::ACK | BuFlags::HOME;
        if self.config.key_management_mobility {
            flags = flags | BuFlags::KEY_MGMT;
        }
        let mut options = vec![MobilityOption::AlternateCareOfAddress(p.care_of)];
        if let Some(o) = self
            .config
            .dns_update
            .as_deref()
            .and_then(|fqdn| DnsUpdateOption::request(fqdn, dereg))
        {
            options.push(MobilityOption::DnsUpdate(o));
        }
        let bu = Message::BindingUpdate(BindingUpdate {
            sequence: p.sequence,
            flags,
            lifetime: p.lifetime,
            options,
        });
        // Options of valid sizes only: emit cannot fail.
        let size = bu.emit(self.home_address, self.home_agent, buf).ok()?;
        Some(Transmit {
            care_of: p.care_of,
            home_agent: self.home_agent,
            home_address: self.home_address,
            sequence: p.sequence,
            size,
        })
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<BulEvent> {
        self.events.pop_front()
    }
}

/// Adds without panicking (an `Instant` overflow is out of reach with these durations).
fn after(t: Instant, d: Duration) -> Instant {
    t.checked_add(d).unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mh::BaFlags;

    fn a(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    const HOA: &str = "2001:db8:1::1000";
    const HA: &str = "2001:db8:1::1";
    const COA: &str = "2001:db8:ff::2";
    const COA2: &str = "2001:db8:ee::2";

    fn bul(seq: u16) -> HomeRegistration {
        HomeRegistration::new(BulConfig::default(), a(HOA), a(HA), seq)
    }

    /// Takes the due Binding Update, decoded.
    fn sent(b: &mut HomeRegistration, now: Instant) -> Option<(Transmit, BindingUpdate)> {
        let mut buf = Vec::new();
        let t = b.poll_transmit(now, &mut buf)?;
        assert_eq!(t.size, buf.len());
        match Message::parse(&buf, Some((a(HOA), a(HA)))).unwrap() {
            Message::BindingUpdate(bu) => Some((t, bu)),
            m => panic!("not a BU: {m:?}"),
        }
    }

    fn ack(seq: u16, status: BaStatus, lifetime: u16) -> BindingAck {
        BindingAck {
            status,
            flags: BaFlags::default(),
            sequence: seq,
            lifetime,
            options: vec![],
        }
    }

    /// RFC 5026 §6.2: with a name configured, each Binding Update asks for the DNS update (R
    /// clear), the deregistration for the removal (R set); the home agent's status is kept.
    #[test]
    fn dns_update_option_in_every_binding_update() {
        let t0 = Instant::now();
        let config = BulConfig {
            dns_update: Some("mn1.example.".into()),
            ..BulConfig::default()
        };
        let mut b = HomeRegistration::new(config, a(HOA), a(HA), 7);
        b.register(t0, a(COA));
        let (_, bu) = sent(&mut b, t0).expect("BU");
        let dns = bu
            .options
            .iter()
            .find_map(|o| match o {
                MobilityOption::DnsUpdate(d) => Some(d.clone()),
                _ => None,
            })
            .expect("DNS Update option");
        assert_eq!(dns.fqdn().as_deref(), Some("mn1.example."));
        assert!(!dns.remove);
        let mut ba = ack(bu.sequence, BaStatus::ACCEPTED, 100);
        ba.options
            .push(MobilityOption::DnsUpdate(DnsUpdateOption::answer(
                &dns,
                DnsUpdateStatus::DNS_UPDATE_FAILED,
            )));
        b.handle_ba(t0, &ba).unwrap();
        assert_eq!(
            b.status(t0).dns_update,
            Some(DnsUpdateStatus::DNS_UPDATE_FAILED)
        );
        assert!(b.deregister(t0));
        let (_, bu) = sent(&mut b, t0).expect("deregistration BU");
        assert_eq!(bu.lifetime, 0);
        assert!(bu.options.iter().any(
            |o| matches!(o, MobilityOption::DnsUpdate(d) if d.remove && d.fqdn().as_deref() == Some("mn1.example."))
        ));
    }

    #[test]
    fn register_and_ack() {
        let t0 = Instant::now();
        let mut b = bul(100);
        assert_eq!(b.state(), BulState::Idle);
        assert_eq!(b.poll_timeout(), None);
        b.register(t0, a(COA));
        let (t, bu) = sent(&mut b, t0).unwrap();
        assert_eq!(
            (t.care_of, t.home_agent, t.home_address, t.sequence),
            (a(COA), a(HA), a(HOA), 100)
        );
        assert_eq!(bu.sequence, 100);
        assert!(bu.flags.contains(BuFlags::ACK | BuFlags::HOME));
        assert!(!bu.flags.contains(BuFlags::KEY_MGMT));
        assert_eq!(bu.lifetime, 150);
        assert_eq!(bu.alternate_care_of_address(), Some(a(COA)));
        assert!(sent(&mut b, t0).is_none());
        assert_eq!(b.state(), BulState::Registering);
        // Registering the same care-of address again changes nothing.
        b.register(t0, a(COA));
        assert!(sent(&mut b, t0).is_none());

        let t1 = t0 + Duration::from_millis(200);
        b.handle_ba(t1, &ack(100, BaStatus::ACCEPTED, 150)).unwrap();
        assert_eq!(
            b.poll_event(),
            Some(BulEvent::Registered {
                care_of: a(COA),
                lifetime: Duration::from_secs(600),
                status: BaStatus::ACCEPTED,
                refresh: false
            })
        );
        assert_eq!(b.state(), BulState::Registered);
        assert!(b.is_registered());
        // Refresh after 3/4 of the lifetime, counted from the send time.
        assert_eq!(b.poll_timeout(), Some(t0 + Duration::from_secs(450)));
        let st = b.status(t0 + Duration::from_secs(100));
        assert_eq!(st.lifetime_left, Some(Duration::from_secs(500)));
        assert_eq!(st.sequence, Some(100));
        assert_eq!(st.care_of, Some(a(COA)));
        assert_eq!(st.last_status, Some(BaStatus::ACCEPTED));
        // A duplicate BA is ignored.
        assert_eq!(
            b.handle_ba(t1, &ack(100, BaStatus::ACCEPTED, 150)),
            Err(BaIgnored::NotExpected)
        );

        // Refresh at 450 s with the next sequence number.
        let t2 = t0 + Duration::from_secs(450);
        b.handle_timeout(t2);
        assert_eq!(b.state(), BulState::Refreshing);
        let (_, bu) = sent(&mut b, t2).unwrap();
        assert_eq!(bu.sequence, 101);
        // Granted less than asked: the binding lasts what was granted.
        b.handle_ba(t2, &ack(101, BaStatus::ACCEPTED, 10)).unwrap();
        assert!(matches!(
            b.poll_event(),
            Some(BulEvent::Registered { refresh: true, lifetime, .. }) if lifetime == Duration::from_secs(40)
        ));
        assert_eq!(b.poll_timeout(), Some(t2 + Duration::from_secs(30)));
    }

    #[test]
    fn retransmission_backoff() {
        let t0 = Instant::now();
        let mut b = HomeRegistration::new(
            BulConfig {
                initial_timeout_first_registration: Duration::from_secs(1),
                ..BulConfig::default()
            },
            a(HOA),
            a(HA),
            7,
        );
        b.register(t0, a(COA));
        let mut seqs = vec![sent(&mut b, t0).unwrap().1.sequence];
        let mut now = t0;
        let mut gaps = Vec::new();
        for _ in 0..8 {
            let next = b.poll_timeout().unwrap();
            // Nothing happens before the deadline.
            b.handle_timeout(next - Duration::from_millis(1));
            assert!(sent(&mut b, next).is_none());
            b.handle_timeout(next);
            gaps.push((next - now).as_secs());
            now = next;
            seqs.push(sent(&mut b, now).unwrap().1.sequence);
        }
        assert_eq!(gaps, [1, 2, 4, 8, 16, 32, 32, 32]);
        // Each retransmission carries a new, greater sequence number.
        assert_eq!(seqs, (7..16).collect::<Vec<u16>>());
        // A late acknowledgement of an older one is ignored; the latest counts.
        assert_eq!(
            b.handle_ba(now, &ack(14, BaStatus::ACCEPTED, 150)),
            Err(BaIgnored::SequenceMismatch {
                expected: 15,
                got: 14
            })
        );
        b.handle_ba(now, &ack(15, BaStatus::ACCEPTED, 150)).unwrap();
        assert!(matches!(b.poll_event(), Some(BulEvent::Registered { .. })));
    }

    #[test]
    fn first_registration_timeout() {
        let t0 = Instant::now();
        let mut b = bul(1);
        b.register(t0, a(COA));
        let _ = sent(&mut b, t0);
        assert_eq!(b.poll_timeout(), Some(t0 + Duration::from_millis(1500)));
        b.handle_ba(t0, &ack(1, BaStatus::ACCEPTED, 150)).unwrap();
        // Later registrations (here a move) start at 1 s.
        b.register(t0, a(COA2));
        let _ = sent(&mut b, t0);
        assert_eq!(b.poll_timeout(), Some(t0 + Duration::from_secs(1)));
    }

    #[test]
    fn sequence_wraps() {
        let t0 = Instant::now();
        let mut b = bul(65535);
        b.register(t0, a(COA));
        assert_eq!(sent(&mut b, t0).unwrap().1.sequence, 65535);
        b.handle_timeout(b.poll_timeout().unwrap());
        let (_, bu) = sent(&mut b, t0).unwrap();
        assert_eq!(bu.sequence, 0);
        b.handle_ba(t0, &ack(0, BaStatus::ACCEPTED, 150)).unwrap();
    }

    #[test]
    fn resync_on_135() {
        let t0 = Instant::now();
        let mut b = bul(10);
        b.register(t0, a(COA));
        let _ = sent(&mut b, t0);
        // The home agent has 5000: resend with 5001.
        let t1 = t0 + Duration::from_millis(100);
        b.handle_ba(t1, &ack(5000, BaStatus::SEQUENCE_OUT_OF_WINDOW, 0))
            .unwrap();
        assert_eq!(b.poll_event(), None);
        let (_, bu) = sent(&mut b, t1).unwrap();
        assert_eq!(bu.sequence, 5001);
        assert_eq!(b.poll_timeout(), Some(t1 + Duration::from_secs(1)));
        b.handle_ba(t1, &ack(5001, BaStatus::ACCEPTED, 150))
            .unwrap();
        assert!(matches!(b.poll_event(), Some(BulEvent::Registered { .. })));
        // A wrapped-around resync: the home agent has 65535.
        b.register(t1, a(COA2));
        let _ = sent(&mut b, t1);
        b.handle_ba(t1, &ack(65535, BaStatus::SEQUENCE_OUT_OF_WINDOW, 0))
            .unwrap();
        assert_eq!(sent(&mut b, t1).unwrap().1.sequence, 0);
    }

    #[test]
    fn resync_gives_up() {
        let t0 = Instant::now();
        let mut b = bul(10);
        b.register(t0, a(COA));
        for i in 0..3u16 {
            let _ = sent(&mut b, t0);
            b.handle_ba(t0, &ack(i, BaStatus::SEQUENCE_OUT_OF_WINDOW, 0))
                .unwrap();
            assert_eq!(b.poll_event(), None);
        }
        let _ = sent(&mut b, t0);
        b.handle_ba(t0, &ack(3, BaStatus::SEQUENCE_OUT_OF_WINDOW, 0))
            .unwrap();
        assert_eq!(
            b.poll_event(),
            Some(BulEvent::Failed {
                care_of: a(COA),
                status: BaStatus::SEQUENCE_OUT_OF_WINDOW
            })
        );
        assert_eq!(b.state(), BulState::Idle);
        assert!(sent(&mut b, t0).is_none());
    }

    #[test]
    fn rejected_stops() {
        let t0 = Instant::now();
        let mut b = bul(1);
        b.register(t0, a(COA));
        let _ = sent(&mut b, t0);
        b.handle_ba(t0, &ack(1, BaStatus::NOT_HOME_AGENT, 0))
            .unwrap();
        assert_eq!(
            b.poll_event(),
            Some(BulEvent::Failed {
                care_of: a(COA),
                status: BaStatus::NOT_HOME_AGENT
            })
        );
        assert_eq!(b.state(), BulState::Idle);
        assert_eq!(b.poll_timeout(), None);
        // Accepted with lifetime 0 is no binding either.
        b.register(t0, a(COA));
        let (_, bu) = sent(&mut b, t0).unwrap();
        b.handle_ba(t0, &ack(bu.sequence, BaStatus::ACCEPTED, 0))
            .unwrap();
        assert!(matches!(b.poll_event(), Some(BulEvent::Failed { .. })));
    }

    #[test]
    fn deregistration() {
        let t0 = Instant::now();
        let mut b = bul(1);
        assert!(!b.deregister(t0));
        b.register(t0, a(COA));
        let _ = sent(&mut b, t0);
        b.handle_ba(t0, &ack(1, BaStatus::ACCEPTED, 150)).unwrap();
        let _ = b.poll_event();
        assert!(b.deregister(t0));
        assert_eq!(b.state(), BulState::Deregistering);
        let (t, bu) = sent(&mut b, t0).unwrap();
        assert_eq!((bu.sequence, bu.lifetime), (2, 0));
        assert!(bu.flags.contains(BuFlags::ACK | BuFlags::HOME));
        assert_eq!(t.care_of, a(COA));
        assert!(b.deregister(t0));
        assert!(sent(&mut b, t0).is_none());
        b.handle_ba(t0, &ack(2, BaStatus::ACCEPTED, 0)).unwrap();
        assert_eq!(
            b.poll_event(),
            Some(BulEvent::Deregistered {
                care_of: a(COA),
                status: Some(BaStatus::ACCEPTED)
            })
        );
        assert_eq!(b.state(), BulState::Idle);
    }

    #[test]
    fn deregistration_gives_up() {
        let t0 = Instant::now();
        let mut b = bul(1);
        b.register(t0, a(COA));
        let _ = sent(&mut b, t0);
        assert!(b.deregister(t0));
        let mut n = 0;
        while sent(&mut b, t0).is_some() {
            n += 1;
            let Some(t) = b.poll_timeout() else { break };
            b.handle_timeout(t);
        }
        assert_eq!(n, 4);
        assert_eq!(
            b.poll_event(),
            Some(BulEvent::Deregistered {
                care_of: a(COA),
                status: None
            })
        );
        assert_eq!(b.state(), BulState::Idle);
    }

    #[test]
    fn brr_triggers_refresh() {
        let t0 = Instant::now();
        let mut b = bul(1);
        assert!(!b.handle_brr(t0));
        b.register(t0, a(COA));
        let _ = sent(&mut b, t0);
        // Not while a registration is in flight.
        assert!(!b.handle_brr(t0));
        b.handle_ba(t0, &ack(1, BaStatus::ACCEPTED, 150)).unwrap();
        let t1 = t0 + Duration::from_secs(60);
        assert!(b.handle_brr(t1));
        let (_, bu) = sent(&mut b, t1).unwrap();
        assert_eq!(bu.sequence, 2);
        assert_eq!(b.state(), BulState::Refreshing);
    }

    #[test]
    fn refresh_advice() {
        let t0 = Instant::now();
        let mut b = bul(1);
        b.register(t0, a(COA));
        let _ = sent(&mut b, t0);
        let mut ba = ack(1, BaStatus::ACCEPTED, 150);
        ba.options.push(MobilityOption::BindingRefreshAdvice(25));
        b.handle_ba(t0, &ba).unwrap();
        assert_eq!(b.poll_timeout(), Some(t0 + Duration::from_secs(100)));
    }

    #[test]
    fn expiry_while_refreshing() {
        let t0 = Instant::now();
        let mut b = HomeRegistration::new(
            BulConfig {
                lifetime: Duration::from_secs(8),
                ..BulConfig::default()
            },
            a(HOA),
            a(HA),
            1,
        );
        b.register(t0, a(COA));
        assert_eq!(sent(&mut b, t0).unwrap().1.lifetime, 2);
        b.handle_ba(t0, &ack(1, BaStatus::ACCEPTED, 2)).unwrap();
        let _ = b.poll_event();
        // Refresh at 6 s; the home agent does not answer.
        let mut now = t0;
        let mut expired_at = None;
        while let Some(t) = b.poll_timeout() {
            if t > t0 + Duration::from_secs(20) {
                break;
            }
            now = t;
            b.handle_timeout(now);
            let _ = sent(&mut b, now);
            while let Some(e) = b.poll_event() {
                if let BulEvent::Expired { care_of } = e {
                    assert_eq!(care_of, a(COA));
                    expired_at = Some(now);
                }
            }
        }
        assert_eq!(expired_at, Some(t0 + Duration::from_secs(8)));
        assert_eq!(b.state(), BulState::Registering);
        assert!(!b.is_registered());
        assert!(now > t0 + Duration::from_secs(8));
    }

    #[test]
    fn k_bit_when_configured() {
        let t0 = Instant::now();
        let mut b = HomeRegistration::new(
            BulConfig {
                key_management_mobility: true,
                ..BulConfig::default()
            },
            a(HOA),
            a(HA),
            1,
        );
        b.register(t0, a(COA));
        assert!(
            sent(&mut b, t0)
                .unwrap()
                .1
                .flags
                .contains(BuFlags::KEY_MGMT)
        );
    }

    #[test]
    fn move_while_registering() {
        let t0 = Instant::now();
        let mut b = bul(1);
        b.register(t0, a(COA));
        let _ = sent(&mut b, t0);
        b.register(t0, a(COA2));
        let (t, bu) = sent(&mut b, t0).unwrap();
        assert_eq!((t.care_of, bu.sequence), (a(COA2), 2));
        assert_eq!(bu.alternate_care_of_address(), Some(a(COA2)));
        // The acknowledgement of the first one no longer counts.
        assert!(b.handle_ba(t0, &ack(1, BaStatus::ACCEPTED, 150)).is_err());
        b.handle_ba(t0, &ack(2, BaStatus::ACCEPTED, 150)).unwrap();
        assert!(matches!(
            b.poll_event(),
            Some(BulEvent::Registered { care_of, .. }) if care_of == a(COA2)
        ));
    }
}
