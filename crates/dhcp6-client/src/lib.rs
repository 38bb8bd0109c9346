//! Sans-IO DHCPv6 client engine (RFC 8415) for the mobile node's home-address
//! bootstrap through the IKE tunnel.
//!
//! Implements, for one IA_NA:
//! - server discovery with Solicit/Advertise and the choice by Preference
//!   (RFC 8415 §18.2.1, §18.2.9), the two-message Rapid Commit exchange (§18.2.1,
//!   §21.14), Request/Reply (§18.2.2, §18.2.10);
//! - Renew at T1 and Rebind at T2 until the valid lifetime ends (§18.2.4,
//!   §18.2.5, §21.4), Release (§18.2.7) and Decline (§18.2.8);
//! - retransmission per §15 (IRT/MRT/MRC; the first Solicit RT is strictly
//!   greater than IRT) with the §7.6 constants, and the Elapsed Time option
//!   (§21.9, hundredths of a second, capped at 0xffff);
//! - the Client FQDN option (RFC 4704, [`fqdn`]): with a name configured, option 39 with
//!   S=1 in Solicit, Request, Renew and Rebind (never in Release or Decline, §5) and 39 in the
//!   Option Request option; the server's option 39 (flags S/O/N and name) is reported with
//!   the lease ([`Event::Bound`], [`LeaseBox::fqdn`]);
//! - an optional address hint in the IA_NA of Solicit and Request (§18.2.1,
//!   §18.2.2), e.g. the address held before a restart.
//!
//! Left out: the random SOL_MAX_DELAY before the first Solicit (the link is a
//! point-to-point IKE tunnel; the caller may delay `start` itself), Confirm,
//! Information-request, Reconfigure, IA_TA/IA_PD, the SOL_MAX_RT option (§21.24),
//! Authentication, and Server Unicast (everything goes to ff02::1:2).
//!
//! The engine does no I/O and never reads the clock (shared/style.md §2): feed it
//! with [`Client::start`], [`Client::handle_message`] and
//! [`Client::handle_timeout`], then drain [`Client::poll_transmit`] (each datagram
//! goes from the link-local address port [`CLIENT_PORT`] to
//! [`ALL_DHCP_RELAY_AGENTS_AND_SERVERS`] port [`SERVER_PORT`]),
//! [`Client::poll_event`], and sleep until [`Client::poll_timeout`].
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod duid;
pub mod fqdn;
pub mod guard;

pub use duid::{Duid, DuidError, duid_from_state};
pub use fqdn::{ClientFqdn, FqdnError, FqdnFlags};

use core::fmt;
use std::collections::VecDeque;
use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

use dhcproto::v6::{
    DhcpOption, IAAddr, IANA, Message, MessageType, ORO, OptionCode, Status, UnknownOption,
};
use dhcproto::{Decodable, Decoder, Encodable};
use tracing::debug;

/// UDP port clients listen on (RFC 8415 §7.2).
pub const CLIENT_PORT: u16 = 546;
/// UDP port servers and relay agents listen on (RFC 8415 §7.2).
pub const SERVER_PORT: u16 = 547;
/// All_DHCP_Relay_Agents_and_Servers (RFC 8415 §7.1).
pub const ALL_DHCP_RELAY_AGENTS_AND_SERVERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 1, 2);

/// Option code of DNS Recursive Name Server (RFC 3646).
pub const OPTION_DNS_SERVERS: u16 = 23;
/// Option code of Client FQDN (RFC 4704).
pub const OPTION_CLIENT_FQDN: u16 = fqdn::OPTION_CLIENT_FQDN;
/// Client FQDN flag S: the server performs the AAAA update (RFC 4704 §4.1).
pub const FQDN_FLAG_S: u8 = fqdn::FLAG_S;
/// Lifetime / T1 / T2 value meaning "infinity" (RFC 8415 §7.7).
pub const INFINITY: u32 = 0xffff_ffff;

/// Transmission and retransmission parameters of RFC 8415 §7.6.
pub mod timing {
    use std::time::Duration;

    /// Initial Solicit timeout.
    pub const SOL_TIMEOUT: Duration = Duration::from_secs(1);
    /// Max Solicit timeout value.
    pub const SOL_MAX_RT: Duration = Duration::from_secs(3600);
    /// Initial Request timeout.
    pub const REQ_TIMEOUT: Duration = Duration::from_secs(1);
    /// Max Request timeout value.
    pub const REQ_MAX_RT: Duration = Duration::from_secs(30);
    /// Max Request retry attempts.
    pub const REQ_MAX_RC: u32 = 10;
    /// Initial Renew timeout.
    pub const REN_TIMEOUT: Duration = Duration::from_secs(10);
    /// Max Renew timeout value.
    pub const REN_MAX_RT: Duration = Duration::from_secs(600);
    /// Initial Rebind timeout.
    pub const REB_TIMEOUT: Duration = Duration::from_secs(10);
    /// Max Rebind timeout value.
    pub const REB_MAX_RT: Duration = Duration::from_secs(600);
    /// Initial Release timeout.
    pub const REL_TIMEOUT: Duration = Duration::from_secs(1);
    /// Max Release retry attempts.
    pub const REL_MAX_RC: u32 = 4;
    /// Initial Decline timeout.
    pub const DEC_TIMEOUT: Duration = Duration::from_secs(1);
    /// Max Decline retry attempts.
    pub const DEC_MAX_RC: u32 = 4;
}

use timing::*;

/// Source of randomness (transaction IDs, retransmission jitter). Any
/// `FnMut(&mut [u8])` that fills its buffer is one.
pub trait RandomSource {
    /// Fills `buf` with random bytes.
    fn fill(&mut self, buf: &mut [u8]);
}

impl<F: FnMut(&mut [u8])> RandomSource for F {
    fn fill(&mut self, buf: &mut [u8]) {
        self(buf)
    }
}

/// Client configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// The client's DUID in wire form (see [`Duid`]).
    pub duid: Vec<u8>,
    /// IAID of the single IA_NA.
    pub iaid: u32,
    /// Ask for the two-message exchange (Rapid Commit option in Solicit).
    pub rapid_commit: bool,
    /// Name for the Client FQDN option (RFC 4704), flags S=1. A trailing `.`
    /// makes it fully qualified; otherwise it is sent as a partial name.
    pub fqdn: Option<String>,
    /// Extra option codes for the Option Request option; DNS servers (23) is
    /// always requested.
    pub oro: Vec<u16>,
    /// An address to ask for again (RFC 8415 §18.2.1: the client MAY include
    /// addresses in IA_NA as hints), e.g. the one it held before a restart; the
    /// server may ignore it. Sent in the IA_NA of Solicit and Request only.
    pub hint: Option<Ipv6Addr>,
}

/// Configuration errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The DUID is not valid.
    #[error("invalid DUID: {0}")]
    Duid(#[from] DuidError),
    /// The FQDN cannot be encoded in DNS wire format.
    #[error("invalid FQDN {0:?}: empty label or label over 63 octets or name over 255 octets")]
    Fqdn(String),
}

/// API misuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// Release or Decline asked for without a lease.
    #[error("no lease in state {0}")]
    NoLease(&'static str),
}

/// Why an incoming datagram was dropped (also logged at `debug`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DropReason {
    /// Not decodable as a DHCPv6 client/server message.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// A relay message or a message type a client does not accept.
    #[error("unexpected message type {0}")]
    UnexpectedType(u8),
    /// The client is not waiting for a reply.
    #[error("no transaction in progress (state {0})")]
    NoTransaction(&'static str),
    /// The transaction ID does not match the current exchange.
    #[error("transaction ID {got:06x} does not match {expected:06x}")]
    XidMismatch {
        /// Received.
        got: u32,
        /// Expected.
        expected: u32,
    },
    /// No Client Identifier option.
    #[error("missing Client Identifier")]
    MissingClientId,
    /// The Client Identifier is not ours.
    #[error("Client Identifier does not match our DUID")]
    ClientIdMismatch,
    /// No Server Identifier option.
    #[error("missing Server Identifier")]
    MissingServerId,
    /// The Server Identifier is not the one the exchange was sent to.
    #[error("Server Identifier does not match the selected server")]
    ServerIdMismatch,
    /// A Reply to a Solicit without Rapid Commit (or Rapid Commit not configured).
    #[error("Reply to Solicit without an accepted Rapid Commit")]
    NoRapidCommit,
    /// Message is valid but holds nothing usable (no IA_NA with our IAID and an address).
    #[error("no usable IA_NA: {0}")]
    NoUsableIa(&'static str),
    /// The server returned a failure status code.
    #[error("status {code}: {message}")]
    Status {
        /// Status code (RFC 8415 §21.13).
        code: u16,
        /// Status message.
        message: String,
    },
}

/// What the engine reports to its driver.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A lease was obtained, or extended by Renew/Rebind (same fields again).
    /// Lifetimes of [`INFINITY`] are `Duration::from_secs(u32::MAX as u64)`.
    Bound {
        /// The leased address.
        address: Ipv6Addr,
        /// Preferred lifetime.
        preferred: Duration,
        /// Valid lifetime.
        valid: Duration,
        /// Time to Renew (T1), from the Reply.
        t1: Duration,
        /// Time to Rebind (T2), from the Reply.
        t2: Duration,
        /// DNS recursive name servers (option 23).
        dns_servers: Vec<Ipv6Addr>,
        /// The Server Identifier of the server that granted the lease.
        server_id: Vec<u8>,
        /// The server's Client FQDN option in the Reply (RFC 4704 §6): whether it does the
        /// AAAA update (S), overrode the client's choice (O) or does no update (N), and the
        /// name it uses. `None` when the Reply carried none (e.g. no name configured, or a
        /// server without DDNS support).
        fqdn: Option<ClientFqdn>,
    },
    /// The server answered with a failure status (e.g. NoAddrsAvail); the
    /// client keeps going (soliciting again where the RFC says so).
    ServerStatus {
        /// Status code (RFC 8415 §21.13).
        code: u16,
        /// Status message.
        message: String,
    },
    /// Request retransmissions ran out (REQ_MAX_RC); discovery restarts.
    RequestFailed,
    /// The valid lifetime ended without a successful Renew/Rebind; the
    /// address must be removed. Discovery restarts.
    Expired {
        /// The address that is no longer valid.
        address: Ipv6Addr,
    },
    /// Release completed (Reply received or REL_MAX_RC reached); now idle.
    Released,
    /// Decline completed (Reply received or DEC_MAX_RC reached); discovery restarts.
    Declined {
        /// The declined address.
        address: Ipv6Addr,
    },
}

/// A lease as held by the client.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Lease {
    address: Ipv6Addr,
    preferred: u32,
    valid: u32,
    t1: u32,
    t2: u32,
    dns_servers: Vec<Ipv6Addr>,
    server_id: Vec<u8>,
    /// The server's Client FQDN option (RFC 4704 §6), if any.
    fqdn: Option<ClientFqdn>,
    /// When the Reply was received: lifetimes count from here.
    acquired: Instant,
}

impl Lease {
    fn at(&self, secs: u32) -> Option<Instant> {
        if secs == INFINITY {
            None
        } else {
            self.acquired
                .checked_add(Duration::from_secs(u64::from(secs)))
        }
    }
    fn t1_at(&self) -> Option<Instant> {
        self.at(self.t1)
    }
    fn t2_at(&self) -> Option<Instant> {
        self.at(self.t2)
    }
    fn expires_at(&self) -> Option<Instant> {
        self.at(self.valid)
    }
    fn event(&self) -> Event {
        let d = |s: u32| Duration::from_secs(u64::from(s));
        Event::Bound {
            address: self.address,
            preferred: d(self.preferred),
            valid: d(self.valid),
            t1: d(self.t1),
            t2: d(self.t2),
            dns_servers: self.dns_servers.clone(),
            server_id: self.server_id.clone(),
            fqdn: self.fqdn.clone(),
        }
    }
}

/// Retransmission state of one exchange (RFC 8415 §15).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retransmit {
    irt: Duration,
    mrt: Option<Duration>,
    mrc: Option<u32>,
    /// Current RT.
    rt: Duration,
    /// Transmissions so far.
    count: u32,
    /// First transmission (for Elapsed Time).
    started: Instant,
    /// Next retransmission.
    next: Instant,
}

/// RAND in [-0.1, 0.1] (or (0, 0.1] when `positive`), from 32 random bits.
fn rand_factor(rng: &mut dyn RandomSource, positive: bool) -> f64 {
    let mut b = [0u8; 4];
    rng.fill(&mut b);
    let u = (f64::from(u32::from_be_bytes(b)) + 1.0) / 4_294_967_296.0; // (0, 1]
    if positive { 0.1 * u } else { 0.2 * u - 0.1 }
}

fn scale(d: Duration, f: f64) -> Duration {
    Duration::from_secs_f64((d.as_secs_f64() * f).max(0.0))
}

impl Retransmit {
    /// Starts an exchange: RT = IRT + RAND·IRT (RAND > 0 when `first_positive`,
    /// as §18.2.1 requires for the first Solicit).
    fn new(
        now: Instant,
        irt: Duration,
        mrt: Option<Duration>,
        mrc: Option<u32>,
        first_positive: bool,
        rng: &mut dyn RandomSource,
    ) -> Self {
        let mut rt = scale(irt, 1.0 + rand_factor(rng, first_positive));
        if first_positive && rt <= irt {
            // A RAND of a few 1e-10 rounds away in nanoseconds; keep RT > IRT.
            rt = irt + Duration::from_micros(1);
        }
        if let Some(mrt) = mrt
            && rt > mrt
        {
            rt = scale(mrt, 1.0 + rand_factor(rng, false));
        }
        Self {
            irt,
            mrt,
            mrc,
            rt,
            count: 1,
            started: now,
            next: now + rt,
        }
    }

    /// After a timeout: false if MRC is exhausted, otherwise
    /// RT = 2·RTprev + RAND·RTprev, capped as RT = MRT + RAND·MRT.
    fn advance(&mut self, now: Instant, rng: &mut dyn RandomSource) -> bool {
        if let Some(mrc) = self.mrc
            && self.count >= mrc
        {
            return false;
        }
        let mut rt = scale(self.rt, 2.0 + rand_factor(rng, false));
        if let Some(mrt) = self.mrt
            && rt > mrt
        {
            rt = scale(mrt, 1.0 + rand_factor(rng, false));
        }
        self.rt = rt;
        self.count += 1;
        self.next = now + rt;
        true
    }

    /// The current retransmission timeout.
    pub fn rt(&self) -> Duration {
        self.rt
    }

    /// The initial retransmission time of this exchange.
    pub fn irt(&self) -> Duration {
        self.irt
    }

    /// How many times the message has been sent.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// Elapsed Time option value (§21.9): centiseconds since the first
    /// transmission, 0xffff when larger.
    fn elapsed_cs(&self, now: Instant) -> u16 {
        let cs = now.saturating_duration_since(self.started).as_millis() / 10;
        u16::try_from(cs).unwrap_or(0xffff)
    }
}

/// Client state; each variant carries its own timers (shared/style.md §3.11).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum State {
    /// Not started, or released.
    Idle,
    /// Sending Solicit, collecting Advertises.
    Soliciting {
        /// Transaction ID.
        xid: u32,
        /// Retransmission state.
        retx: Retransmit,
        /// Whether the first RT has passed (then the first Advertise wins at once).
        first_rt_done: bool,
        /// Best Advertise so far: preference, server DUID, the address it offered.
        best: Option<(u8, Vec<u8>, Ipv6Addr)>,
    },
    /// Sending Request to the chosen server.
    Requesting {
        /// Transaction ID.
        xid: u32,
        /// Retransmission state.
        retx: Retransmit,
        /// The chosen server's DUID.
        server_id: Vec<u8>,
        /// The address its Advertise offered, asked for in the Request (§18.2.2).
        offered: Ipv6Addr,
    },
    /// Holding a lease; waiting for T1.
    Bound {
        /// The lease.
        lease: LeaseBox,
    },
    /// Sending Renew to the server that granted the lease, until T2.
    Renewing {
        /// Transaction ID.
        xid: u32,
        /// Retransmission state.
        retx: Retransmit,
        /// The lease.
        lease: LeaseBox,
    },
    /// Sending Rebind to any server, until the valid lifetime ends.
    Rebinding {
        /// Transaction ID.
        xid: u32,
        /// Retransmission state.
        retx: Retransmit,
        /// The lease.
        lease: LeaseBox,
    },
    /// Sending Release.
    Releasing {
        /// Transaction ID.
        xid: u32,
        /// Retransmission state.
        retx: Retransmit,
        /// The lease.
        lease: LeaseBox,
    },
    /// Sending Decline.
    Declining {
        /// Transaction ID.
        xid: u32,
        /// Retransmission state.
        retx: Retransmit,
        /// The lease.
        lease: LeaseBox,
    },
}

/// Opaque holder of the current lease inside [`State`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseBox(Box<Lease>);

impl LeaseBox {
    /// The leased address.
    pub fn address(&self) -> Ipv6Addr {
        self.0.address
    }

    /// The server's Client FQDN option from the Reply that granted or last extended the lease
    /// (RFC 4704 §6), if it sent one.
    pub fn fqdn(&self) -> Option<&ClientFqdn> {
        self.0.fqdn.as_ref()
    }
}

impl State {
    /// The RFC-style name of the state.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Idle => "IDLE",
            Self::Soliciting { .. } => "SOLICITING",
            Self::Requesting { .. } => "REQUESTING",
            Self::Bound { .. } => "BOUND",
            Self::Renewing { .. } => "RENEWING",
            Self::Rebinding { .. } => "REBINDING",
            Self::Releasing { .. } => "RELEASING",
            Self::Declining { .. } => "DECLINING",
        }
    }

    fn xid(&self) -> Option<u32> {
        match self {
            Self::Idle | Self::Bound { .. } => None,
            Self::Soliciting { xid, .. }
            | Self::Requesting { xid, .. }
            | Self::Renewing { xid, .. }
            | Self::Rebinding { xid, .. }
            | Self::Releasing { xid, .. }
            | Self::Declining { xid, .. } => Some(*xid),
        }
    }

    fn lease(&self) -> Option<&Lease> {
        match self {
            Self::Bound { lease }
            | Self::Renewing { lease, .. }
            | Self::Rebinding { lease, .. }
            | Self::Releasing { lease, .. }
            | Self::Declining { lease, .. } => Some(&lease.0),
            _ => None,
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The sans-IO DHCPv6 client.
///
/// Calling order: [`Client::start`] once; then, in a loop, feed datagrams from
/// port 547 to [`Client::handle_message`], call [`Client::handle_timeout`] when
/// [`Client::poll_timeout`] has passed, and after each call drain
/// [`Client::poll_transmit`] and [`Client::poll_event`].
pub struct Client {
    config: ClientConfig,
    fqdn_wire: Option<Vec<u8>>,
    rng: Box<dyn RandomSource + Send>,
    state: State,
    transmits: VecDeque<Vec<u8>>,
    events: VecDeque<Event>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("config", &self.config)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

enum Kind {
    Solicit,
    Request,
    Renew,
    Rebind,
    Release,
    Decline,
}

impl Client {
    /// Creates an idle client.
    pub fn new(
        config: ClientConfig,
        rng: impl RandomSource + Send + 'static,
    ) -> Result<Self, ConfigError> {
        Duid::from_bytes(&config.duid)?;
        let fqdn_wire = match &config.fqdn {
            Some(name) => {
                Some(fqdn::encode_name(name).ok_or_else(|| ConfigError::Fqdn(name.clone()))?)
            }
            None => None,
        };
        Ok(Self {
            config,
            fqdn_wire,
            rng: Box::new(rng),
            state: State::Idle,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        })
    }

    /// The current state.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// The server's Client FQDN option for the current lease (RFC 4704 §6): `None` without a
    /// lease or when the server sent none.
    pub fn lease_fqdn(&self) -> Option<&ClientFqdn> {
        self.state.lease().and_then(|l| l.fqdn.as_ref())
    }

    /// The configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// Begins server discovery: sends the first Solicit now (§18.2.1).
    pub fn start(&mut self, now: Instant) {
        self.solicit(now);
    }

    /// Releases the lease (§18.2.7). Without a lease this is an error and
    /// nothing is sent.
    pub fn release(&mut self, now: Instant) -> Result<(), ApiError> {
        let lease = self
            .take_lease()
            .ok_or(ApiError::NoLease(self.state.name()))?;
        let xid = self.new_xid();
        let retx = Retransmit::new(
            now,
            REL_TIMEOUT,
            None,
            Some(REL_MAX_RC),
            false,
            &mut *self.rng,
        );
        self.set_state(State::Releasing {
            xid,
            retx,
            lease: LeaseBox(Box::new(lease)),
        });
        self.send_current(now);
        Ok(())
    }

    /// Declines the leased address, e.g. after DAD failed (§18.2.8).
    pub fn decline(&mut self, now: Instant) -> Result<(), ApiError> {
        let lease = self
            .take_lease()
            .ok_or(ApiError::NoLease(self.state.name()))?;
        let xid = self.new_xid();
        let retx = Retransmit::new(
            now,
            DEC_TIMEOUT,
            None,
            Some(DEC_MAX_RC),
            false,
            &mut *self.rng,
        );
        self.set_state(State::Declining {
            xid,
            retx,
            lease: LeaseBox(Box::new(lease)),
        });
        self.send_current(now);
        Ok(())
    }

    /// The next datagram to send (to ff02::1:2 port 547 from port 546).
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmits.pop_front()
    }

    /// The next event for the driver.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Client::handle_timeout`] must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let min = |a: Option<Instant>, b: Option<Instant>| match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, None) => a,
            (None, b) => b,
        };
        match &self.state {
            State::Idle => None,
            State::Soliciting { retx, .. }
            | State::Requesting { retx, .. }
            | State::Releasing { retx, .. }
            | State::Declining { retx, .. } => Some(retx.next),
            State::Bound { lease } => {
                let l = &lease.0;
                min(min(l.t1_at(), l.t2_at()), l.expires_at())
            }
            State::Renewing { retx, lease, .. } => {
                min(Some(retx.next), min(lease.0.t2_at(), lease.0.expires_at()))
            }
            State::Rebinding { retx, lease, .. } => min(Some(retx.next), lease.0.expires_at()),
        }
    }

    /// Processes timers due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        let due = |t: Option<Instant>| t.is_some_and(|t| now >= t);
        let state = std::mem::replace(&mut self.state, State::Idle);
        match state {
            State::Idle => {}
            State::Soliciting {
                xid,
                mut retx,
                first_rt_done,
                best,
            } => {
                if now < retx.next {
                    self.state = State::Soliciting {
                        xid,
                        retx,
                        first_rt_done,
                        best,
                    };
                } else if let Some((_, server_id, offered)) = best {
                    // §18.2.1: the first RT has elapsed with Advertises collected.
                    self.request(now, server_id, offered);
                } else {
                    retx.advance(now, &mut *self.rng); // no MRC for Solicit
                    self.state = State::Soliciting {
                        xid,
                        retx,
                        first_rt_done: true,
                        best: None,
                    };
                    self.send_current(now);
                }
            }
            State::Requesting {
                xid,
                mut retx,
                server_id,
                offered,
            } => {
                if now < retx.next {
                    self.state = State::Requesting {
                        xid,
                        retx,
                        server_id,
                        offered,
                    };
                } else if retx.advance(now, &mut *self.rng) {
                    self.state = State::Requesting {
                        xid,
                        retx,
                        server_id,
                        offered,
                    };
                    self.send_current(now);
                } else {
                    debug!("Request got no Reply after REQ_MAX_RC; restarting discovery");
                    self.events.push_back(Event::RequestFailed);
                    self.solicit(now);
                }
            }
            State::Bound { lease } => {
                if due(lease.0.expires_at()) {
                    self.expire(now, &lease.0);
                } else if due(lease.0.t2_at()) {
                    self.rebind(now, lease);
                } else if due(lease.0.t1_at()) {
                    let xid = self.new_xid();
                    let retx = Retransmit::new(
                        now,
                        REN_TIMEOUT,
                        Some(REN_MAX_RT),
                        None,
                        false,
                        &mut *self.rng,
                    );
                    self.set_state(State::Renewing { xid, retx, lease });
                    self.send_current(now);
                } else {
                    self.state = State::Bound { lease };
                }
            }
            State::Renewing {
                xid,
                mut retx,
                lease,
            } => {
                if due(lease.0.expires_at()) {
                    self.expire(now, &lease.0);
                } else if due(lease.0.t2_at()) {
                    // §18.2.5: Renew has not succeeded by T2.
                    self.rebind(now, lease);
                } else if now >= retx.next {
                    retx.advance(now, &mut *self.rng);
                    self.state = State::Renewing { xid, retx, lease };
                    self.send_current(now);
                } else {
                    self.state = State::Renewing { xid, retx, lease };
                }
            }
            State::Rebinding {
                xid,
                mut retx,
                lease,
            } => {
                if due(lease.0.expires_at()) {
                    self.expire(now, &lease.0);
                } else if now >= retx.next {
                    retx.advance(now, &mut *self.rng);
                    self.state = State::Rebinding { xid, retx, lease };
                    self.send_current(now);
                } else {
                    self.state = State::Rebinding { xid, retx, lease };
                }
            }
            State::Releasing {
                xid,
                mut retx,
                lease,
            } => {
                if now < retx.next {
                    self.state = State::Releasing { xid, retx, lease };
                } else if retx.advance(now, &mut *self.rng) {
                    self.state = State::Releasing { xid, retx, lease };
                    self.send_current(now);
                } else {
                    // §18.2.7: give up after REL_MAX_RC transmissions.
                    debug!("Release unanswered after REL_MAX_RC; releasing anyway");
                    self.set_state(State::Idle);
                    self.events.push_back(Event::Released);
                }
            }
            State::Declining {
                xid,
                mut retx,
                lease,
            } => {
                if now < retx.next {
                    self.state = State::Declining { xid, retx, lease };
                } else if retx.advance(now, &mut *self.rng) {
                    self.state = State::Declining { xid, retx, lease };
                    self.send_current(now);
                } else {
                    debug!("Decline unanswered after DEC_MAX_RC");
                    self.events.push_back(Event::Declined {
                        address: lease.0.address,
                    });
                    self.solicit(now);
                }
            }
        }
    }

    /// Processes a datagram received on port 546. Dropped messages return the
    /// reason (already logged at `debug`); malformed input never panics.
    pub fn handle_message(&mut self, now: Instant, data: &[u8]) -> Result<(), DropReason> {
        let r = self.handle_message_inner(now, data);
        if let Err(reason) = &r {
            debug!(state = %self.state, %reason, "dropping DHCPv6 message");
            if let DropReason::Status { code, message } = reason {
                self.events.push_back(Event::ServerStatus {
                    code: *code,
                    message: message.clone(),
                });
            }
        }
        r
    }

    fn handle_message_inner(&mut self, now: Instant, data: &[u8]) -> Result<(), DropReason> {
        let Some(&ty) = data.first() else {
            return Err(DropReason::Malformed("empty".into()));
        };
        // dhcproto decodes relay messages as garbage: dispatch on byte 0 first.
        if ty != 2 && ty != 7 {
            return Err(DropReason::UnexpectedType(ty));
        }
        if data.len() < 4 {
            return Err(DropReason::Malformed(
                "shorter than the 4-octet header".into(),
            ));
        }
        // dhcproto trusts option lengths (panics, unbounded recursion): check them first.
        guard::check_message(data).map_err(|e| DropReason::Malformed(e.to_string()))?;
        let msg = Message::decode(&mut Decoder::new(data))
            .map_err(|e| DropReason::Malformed(e.to_string()))?;
        let xid = msg.xid_num();
        let expected = self
            .state
            .xid()
            .ok_or(DropReason::NoTransaction(self.state.name()))?;
        if xid != expected {
            return Err(DropReason::XidMismatch { got: xid, expected });
        }
        // §16.3/§16.10: the Client Identifier must be present and ours.
        match msg.opts().get(OptionCode::ClientId) {
            Some(DhcpOption::ClientId(id)) if *id == self.config.duid => {}
            Some(_) => return Err(DropReason::ClientIdMismatch),
            None => return Err(DropReason::MissingClientId),
        }
        let server_id = match msg.opts().get(OptionCode::ServerId) {
            Some(DhcpOption::ServerId(id)) => id.clone(),
            _ => return Err(DropReason::MissingServerId),
        };
        let is_reply = msg.msg_type() == MessageType::Reply;
        let action = match &self.state {
            State::Soliciting {
                first_rt_done,
                best,
                ..
            } => {
                if is_reply {
                    // §18.2.1 / §21.14: a Reply to Solicit only with Rapid Commit.
                    let rapid = msg.opts().get(OptionCode::RapidCommit).is_some();
                    if !(self.config.rapid_commit && rapid) {
                        return Err(DropReason::NoRapidCommit);
                    }
                    Action::Bind(self.parse_reply(now, &msg, server_id)?)
                } else {
                    // §18.2.9: ignore Advertises without a usable address.
                    let offered = self.parse_reply(now, &msg, server_id.clone())?.address;
                    let preference = match msg.opts().get(OptionCode::Preference) {
                        Some(DhcpOption::Preference(p)) => *p,
                        _ => 0,
                    };
                    if preference == 255 || *first_rt_done {
                        Action::Request(server_id, offered)
                    } else if best.as_ref().is_some_and(|(p, ..)| *p >= preference) {
                        return Ok(()); // the earlier, at least as preferred, one stays
                    } else {
                        Action::SetBest(preference, server_id, offered)
                    }
                }
            }
            State::Requesting {
                server_id: chosen, ..
            } => {
                if !is_reply {
                    return Err(DropReason::UnexpectedType(2));
                }
                if server_id != *chosen {
                    return Err(DropReason::ServerIdMismatch);
                }
                match self.parse_reply(now, &msg, server_id) {
                    Ok(lease) => Action::Bind(lease),
                    // §18.2.10.1: e.g. NoAddrsAvail — try discovery again.
                    Err(e @ DropReason::Status { .. }) => Action::Solicit(e),
                    Err(e) => return Err(e),
                }
            }
            st @ (State::Renewing { lease, .. } | State::Rebinding { lease, .. }) => {
                if !is_reply {
                    return Err(DropReason::UnexpectedType(2));
                }
                if matches!(st, State::Renewing { .. }) && server_id != lease.0.server_id {
                    return Err(DropReason::ServerIdMismatch);
                }
                match self.parse_reply(now, &msg, server_id.clone()) {
                    Ok(lease) => Action::Bind(lease),
                    Err(
                        e @ DropReason::Status {
                            code: STATUS_NO_BINDING,
                            ..
                        },
                    ) => {
                        // §18.2.10.1: NoBinding — send a Request to that server.
                        Action::RequestAfter(server_id, lease.0.address, e)
                    }
                    Err(
                        e @ DropReason::Status {
                            code: STATUS_NOT_ON_LINK,
                            ..
                        },
                    ) => Action::Solicit(e),
                    Err(e) => return Err(e),
                }
            }
            st @ (State::Releasing { lease, .. } | State::Declining { lease, .. }) => {
                if !is_reply {
                    return Err(DropReason::UnexpectedType(2));
                }
                if server_id != lease.0.server_id {
                    return Err(DropReason::ServerIdMismatch);
                }
                // §18.2.10.2: any Reply ends Release/Decline, whatever its status.
                if matches!(st, State::Releasing { .. }) {
                    Action::Released
                } else {
                    Action::Declined(lease.0.address)
                }
            }
            State::Idle | State::Bound { .. } => {
                return Err(DropReason::NoTransaction(self.state.name()));
            }
        };
        match action {
            Action::Bind(lease) => self.bind(lease),
            Action::Request(server_id, offered) => self.request(now, server_id, offered),
            Action::SetBest(p, server_id, offered) => {
                if let State::Soliciting { best, .. } = &mut self.state {
                    *best = Some((p, server_id, offered));
                }
            }
            Action::Solicit(e) => {
                self.solicit(now);
                return Err(e);
            }
            Action::RequestAfter(server_id, address, e) => {
                self.request(now, server_id, address);
                return Err(e);
            }
            Action::Released => {
                self.set_state(State::Idle);
                self.events.push_back(Event::Released);
            }
            Action::Declined(address) => {
                self.events.push_back(Event::Declined { address });
                self.solicit(now);
            }
        }
        Ok(())
    }

    /// Validates a Reply (or Advertise) and extracts the lease (§18.2.10.1, §21.4).
    fn parse_reply(
        &self,
        now: Instant,
        msg: &Message,
        server_id: Vec<u8>,
    ) -> Result<Lease, DropReason> {
        let status_err = |sc: &dhcproto::v6::StatusCode| DropReason::Status {
            code: u16::from(sc.status),
            message: sc.msg.clone(),
        };
        if let Some(DhcpOption::StatusCode(sc)) = msg.opts().get(OptionCode::StatusCode)
            && sc.status != Status::Success
        {
            return Err(status_err(sc));
        }
        let ia = msg
            .opts()
            .get_all(OptionCode::IANA)
            .unwrap_or(&[])
            .iter()
            .find_map(|o| match o {
                DhcpOption::IANA(ia) if ia.id == self.config.iaid => Some(ia),
                _ => None,
            })
            .ok_or(DropReason::NoUsableIa("no IA_NA with our IAID"))?;
        if let Some(DhcpOption::StatusCode(sc)) = ia.opts.get(OptionCode::StatusCode)
            && sc.status != Status::Success
        {
            return Err(status_err(sc));
        }
        if ia.t1 != 0 && ia.t2 != 0 && ia.t1 > ia.t2 {
            return Err(DropReason::NoUsableIa("T1 > T2"));
        }
        let addr = ia
            .opts
            .get_all(OptionCode::IAAddr)
            .unwrap_or(&[])
            .iter()
            .find_map(|o| match o {
                DhcpOption::IAAddr(a) if a.valid_life > 0 && a.preferred_life <= a.valid_life => {
                    Some(a)
                }
                _ => None,
            })
            .ok_or(DropReason::NoUsableIa(
                "no address with a non-zero valid lifetime",
            ))?;
        // §21.4: T1/T2 of 0 leave the times to the client: 0.5 and 0.8 of the
        // preferred lifetime.
        let derive = |t: u32, num: u64, den: u64| -> u32 {
            if t != 0 {
                t
            } else if addr.preferred_life == INFINITY {
                INFINITY
            } else {
                u32::try_from(u64::from(addr.preferred_life) * num / den).unwrap_or(INFINITY - 1)
            }
        };
        let dns_servers = match msg.opts().get(OptionCode::DomainNameServers) {
            Some(DhcpOption::DomainNameServers(v)) => v.clone(),
            _ => Vec::new(),
        };
        // RFC 4704 §6: the server's view of who updates what. dhcproto 0.15 keeps option 39 as
        // an unknown option; the guard has already checked its framing and name.
        let fqdn = msg
            .opts()
            .iter()
            .find_map(|o| match o {
                DhcpOption::Unknown(u) if u16::from(u.code()) == OPTION_CLIENT_FQDN => Some(u),
                _ => None,
            })
            .and_then(|u| match ClientFqdn::parse(u.data()) {
                Ok(f) => Some(f),
                Err(e) => {
                    debug!(error = %e, "ignoring the server's Client FQDN option");
                    None
                }
            });
        Ok(Lease {
            address: addr.addr,
            preferred: addr.preferred_life,
            valid: addr.valid_life,
            t1: derive(ia.t1, 1, 2),
            t2: derive(ia.t2, 4, 5),
            dns_servers,
            server_id,
            fqdn,
            acquired: now,
        })
    }

    fn set_state(&mut self, state: State) {
        if self.state.name() != state.name() {
            debug!(from = %self.state, to = %state, "DHCPv6 client state change");
        }
        self.state = state;
    }

    fn take_lease(&mut self) -> Option<Lease> {
        let lease = self.state.lease()?.clone();
        Some(lease)
    }

    fn new_xid(&mut self) -> u32 {
        let mut b = [0u8; 3];
        self.rng.fill(&mut b);
        u32::from_be_bytes([0, b[0], b[1], b[2]])
    }

    fn solicit(&mut self, now: Instant) {
        let xid = self.new_xid();
        let retx = Retransmit::new(
            now,
            SOL_TIMEOUT,
            Some(SOL_MAX_RT),
            None,
            true,
            &mut *self.rng,
        );
        self.set_state(State::Soliciting {
            xid,
            retx,
            first_rt_done: false,
            best: None,
        });
        self.send_current(now);
    }

    fn request(&mut self, now: Instant, server_id: Vec<u8>, offered: Ipv6Addr) {
        let xid = self.new_xid();
        let retx = Retransmit::new(
            now,
            REQ_TIMEOUT,
            Some(REQ_MAX_RT),
            Some(REQ_MAX_RC),
            false,
            &mut *self.rng,
        );
        self.set_state(State::Requesting {
            xid,
            retx,
            server_id,
            offered,
        });
        self.send_current(now);
    }

    fn rebind(&mut self, now: Instant, lease: LeaseBox) {
        let xid = self.new_xid();
        let retx = Retransmit::new(
            now,
            REB_TIMEOUT,
            Some(REB_MAX_RT),
            None,
            false,
            &mut *self.rng,
        );
        self.set_state(State::Rebinding { xid, retx, lease });
        self.send_current(now);
    }

    fn expire(&mut self, now: Instant, lease: &Lease) {
        debug!(address = %lease.address, "valid lifetime ended");
        self.events.push_back(Event::Expired {
            address: lease.address,
        });
        self.solicit(now);
    }

    fn bind(&mut self, lease: Lease) {
        debug!(address = %lease.address, valid = lease.valid, "lease bound");
        self.events.push_back(lease.event());
        self.set_state(State::Bound {
            lease: LeaseBox(Box::new(lease)),
        });
    }

    /// (Re)sends the current state's message with a fresh Elapsed Time.
    fn send_current(&mut self, now: Instant) {
        let (kind, xid, retx, server_id, lease) = match &self.state {
            State::Idle | State::Bound { .. } => return,
            State::Soliciting { xid, retx, .. } => (Kind::Solicit, *xid, retx, None, None),
            State::Requesting {
                xid,
                retx,
                server_id,
                ..
            } => (Kind::Request, *xid, retx, Some(server_id.as_slice()), None),
            State::Renewing { xid, retx, lease } => (
                Kind::Renew,
                *xid,
                retx,
                Some(lease.0.server_id.as_slice()),
                Some(&*lease.0),
            ),
            State::Rebinding { xid, retx, lease } => {
                (Kind::Rebind, *xid, retx, None, Some(&*lease.0))
            }
            State::Releasing { xid, retx, lease } => (
                Kind::Release,
                *xid,
                retx,
                Some(lease.0.server_id.as_slice()),
                Some(&*lease.0),
            ),
            State::Declining { xid, retx, lease } => (
                Kind::Decline,
                *xid,
                retx,
                Some(lease.0.server_id.as_slice()),
                Some(&*lease.0),
            ),
        };
        let offered = match &self.state {
            State::Requesting { offered, .. } => Some(*offered),
            _ => None,
        };
        let elapsed = retx.elapsed_cs(now);
        let msg_type = match kind {
            Kind::Solicit => MessageType::Solicit,
            Kind::Request => MessageType::Request,
            Kind::Renew => MessageType::Renew,
            Kind::Rebind => MessageType::Rebind,
            Kind::Release => MessageType::Release,
            Kind::Decline => MessageType::Decline,
        };
        let [_, a, b, c] = xid.to_be_bytes();
        let mut msg = Message::new_with_id(msg_type, [a, b, c]);
        let opts = msg.opts_mut();
        opts.insert(DhcpOption::ClientId(self.config.duid.clone()));
        if let Some(sid) = server_id {
            opts.insert(DhcpOption::ServerId(sid.to_vec()));
        }
        opts.insert(DhcpOption::ElapsedTime(elapsed));
        let configures = matches!(
            kind,
            Kind::Solicit | Kind::Request | Kind::Renew | Kind::Rebind
        );
        if configures {
            let mut codes = vec![OPTION_DNS_SERVERS];
            // RFC 4704 §5: a client sending option 39 lists it in its Option Request option
            // when it wants the server's answer.
            if self.fqdn_wire.is_some() {
                codes.push(OPTION_CLIENT_FQDN);
            }
            for c in &self.config.oro {
                if !codes.contains(c) {
                    codes.push(*c);
                }
            }
            opts.insert(DhcpOption::ORO(ORO {
                opts: codes.into_iter().map(OptionCode::from).collect(),
            }));
            // RFC 4704 §5: only Solicit, Request, Renew and Rebind carry option 39; S=1 asks
            // the server to update the AAAA RR (§5.2).
            if let Some(name) = &self.fqdn_wire {
                opts.insert(DhcpOption::Unknown(UnknownOption::new(
                    OptionCode::from(OPTION_CLIENT_FQDN),
                    fqdn::client_option_data(name),
                )));
            }
        }
        if matches!(kind, Kind::Solicit) && self.config.rapid_commit {
            opts.insert(DhcpOption::RapidCommit);
        }
        let mut ia = IANA {
            id: self.config.iaid,
            t1: 0,
            t2: 0,
            opts: Default::default(),
        };
        let listed = match (&kind, lease) {
            // §18.2.4ff: the leased address is listed with lifetimes 0 (server decides).
            (_, Some(l)) => Some(l.address),
            // §18.2.2: the address the chosen Advertise offered, so that the server commits
            // that one; §18.2.1: in Solicit the hint. Lifetimes 0 (T1/T2 are 0 above).
            (Kind::Request, None) => offered.or(self.config.hint),
            (Kind::Solicit, None) => self.config.hint,
            _ => None,
        };
        if let Some(addr) = listed {
            ia.opts.insert(DhcpOption::IAAddr(IAAddr {
                addr,
                preferred_life: 0,
                valid_life: 0,
                opts: Default::default(),
            }));
        }
        opts.insert(DhcpOption::IANA(ia));
        match msg.to_vec() {
            Ok(bytes) => self.transmits.push_back(bytes),
            Err(e) => debug!(error = %e, "failed to encode DHCPv6 message"),
        }
    }
}

const STATUS_NO_BINDING: u16 = 3;
const STATUS_NOT_ON_LINK: u16 = 4;

enum Action {
    Bind(Lease),
    Request(Vec<u8>, Ipv6Addr),
    SetBest(u8, Vec<u8>, Ipv6Addr),
    Solicit(DropReason),
    RequestAfter(Vec<u8>, Ipv6Addr, DropReason),
    Released,
    Declined(Ipv6Addr),
}

#[cfg(test)]
mod tests;
