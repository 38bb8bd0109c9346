//! The RADIUS authentication client engine (RFC 2865 §2, §4; RFC 5080 §2.2.1; RFC 3579 §3.2).
//!
//! One [`Client`] serves any number of concurrent Access-Requests over one UDP socket of the
//! driver's. Each request goes to the first configured server; it is retransmitted unchanged
//! (same Identifier, same Request Authenticator, same bytes: RFC 5080 §2.2.1) every
//! [`ClientConfig::timeout`] until [`ClientConfig::tries`] transmissions have gone unanswered,
//! then fails over to the next server as a new packet (an Identifier of that server's space and a
//! fresh Request Authenticator, so a PAP password is hidden anew). When the last server has not
//! answered either the request ends with [`Outcome::Timeout`].
//!
//! Every Access-Request carries a Message-Authenticator (RFC 3579 §3.2), placed first as
//! the BlastRADIUS (CVE-2024-3596) advice has it. Every answer is checked before it counts:
//! it must come from the server the request went to, carry an Identifier in use there, have the
//! right Response Authenticator (RFC 2865 §3) and, if it has a Message-Authenticator, the right
//! one. Anything else is counted in [`Stats`], logged at `debug` and dropped; the request keeps
//! waiting, so a forged or corrupted datagram can delay a verdict but never decide one.
//!
//! **Message-Authenticator in answers.** RFC 3579 §3.2 requires it only in packets with
//! EAP-Message. Without it, an attacker on the path who can compute an MD5 chosen-prefix
//! collision can turn an Access-Reject into an Access-Accept (BlastRADIUS). Since every request
//! of ours carries one, [`ClientConfig::require_message_authenticator`] (default on) drops an
//! Access-Accept, -Reject or -Challenge that lacks it. FreeRADIUS sends it by itself from 3.2.5
//! on; Debian 12's 3.2.1 sends it only when its policy adds `Message-Authenticator` to the reply
//! (`testlab`'s FreeRADIUS helper does). Turn the requirement off only for such older servers.
//!
//! **Identifiers.** The 256 Identifiers of one server are shared by all requests to it
//! (RFC 2865 §3, for one source address and port). They are handed out round-robin from a random
//! start, so an Identifier is reused as late as possible (RFC 5080 §2.2.1 asks for LRU). At most
//! [`ClientConfig::max_outstanding`] (≤ 256) requests are in flight; each holds one Identifier of
//! one server, so a server always has a free one and [`Client::start`] refuses the next request
//! with [`RequestError::TooManyOutstanding`].
//!
//! Not implemented: accounting (RFC 2866), Status-Server probing of dead servers (RFC 5997),
//! EAP (RFC 3579), dynamic authorization (RFC 5176), RADIUS over TLS.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::net::{Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use tracing::{debug, trace};
use zeroize::Zeroizing;

use crate::crypto::{self, CHAP_RESPONSE_LEN, MAX_PAP_PASSWORD_LEN, Password, SharedSecret};
use crate::wire::{
    AUTHENTICATOR_LEN, AttributeRepr, AttributeType, Code, HEADER_LEN, MAX_VALUE_LEN, Packet,
    PacketRepr, WireError,
};

/// The RADIUS authentication port (RFC 2865 §3).
pub const DEFAULT_PORT: u16 = 1812;
/// Default time to wait for an answer before retransmitting: longer than FreeRADIUS's 1 s
/// `reject_delay`, so a delayed Access-Reject is never mistaken for a loss.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);
/// Default number of transmissions to one server before failing over.
pub const DEFAULT_TRIES: u32 = 3;
/// Identifiers per server, and the largest [`ClientConfig::max_outstanding`].
pub const MAX_OUTSTANDING: usize = 256;
/// Length of the CHAP challenge the client generates (RFC 2865 §5.40 allows any length ≥ 5;
/// 16 octets is what FreeRADIUS and most NASes use).
pub const CHAP_CHALLENGE_LEN: usize = 16;

/// Source of randomness (Request Authenticators, Identifiers' start, CHAP ident and challenge).
/// Any `FnMut(&mut [u8])` that fills its buffer is one. Request Authenticators must be
/// unpredictable (RFC 2865 §3): use the operating system's generator outside tests.
pub trait RandomSource {
    /// Fills `buf` with random bytes.
    fn fill(&mut self, buf: &mut [u8]);
}

impl<F: FnMut(&mut [u8])> RandomSource for F {
    fn fill(&mut self, buf: &mut [u8]) {
        self(buf)
    }
}

/// Parses a server address as the configuration gives it: `2001:db8::1`, `[2001:db8::1]:1812`,
/// `192.0.2.1` or `192.0.2.1:1812`; without a port, [`DEFAULT_PORT`].
pub fn parse_server(s: &str) -> Result<SocketAddr, ConfigError> {
    let s = s.trim();
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    let ip = s
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(s);
    ip.parse::<std::net::IpAddr>()
        .map(|ip| SocketAddr::new(ip, DEFAULT_PORT))
        .map_err(|_| ConfigError::BadServer(s.to_owned()))
}

/// Why a [`ClientConfig`] is refused by [`Client::new`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// No server configured.
    #[error("no RADIUS server configured")]
    NoServers,
    /// The same server listed twice (answers could not be told apart).
    #[error("RADIUS server {0} listed twice")]
    DuplicateServer(SocketAddr),
    /// A server address that does not parse.
    #[error("bad RADIUS server address {0:?}: expected ADDR or ADDR:PORT ([v6]:PORT)")]
    BadServer(String),
    /// `tries` is 0 or `timeout` is zero.
    #[error("RADIUS tries and timeout must be positive")]
    NoTries,
    /// `max_outstanding` outside 1..=256.
    #[error("RADIUS max_outstanding {0} outside 1..=256")]
    MaxOutstanding(usize),
    /// Neither NAS-Identifier nor NAS-IPv6-Address set: RFC 2865 §4.1 requires NAS-IP-Address or
    /// NAS-Identifier in every Access-Request, RFC 3162 §2.1 allows NAS-IPv6-Address instead.
    #[error("set nas_identifier or nas_ipv6_address (RFC 2865 §4.1, RFC 3162 §2.1)")]
    NoNasIdentification,
    /// A NAS-Identifier that is empty or longer than 253 octets.
    #[error("NAS-Identifier must be 1-253 octets")]
    NasIdentifier,
}

/// How the client talks to its servers.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The servers, in failover order.
    pub servers: Vec<SocketAddr>,
    /// The shared secret (one for all servers).
    pub secret: SharedSecret,
    /// Time to wait for an answer to one transmission (default [`DEFAULT_TIMEOUT`]).
    pub timeout: Duration,
    /// Transmissions to one server before failing over (default [`DEFAULT_TRIES`]).
    pub tries: u32,
    /// Whether PAP ([`Credentials::Pap`], User-Password) may be used. Off by default: CHAP keeps
    /// the password away from the server and the path.
    pub allow_pap: bool,
    /// NAS-Identifier (RFC 2865 §5.32) put in every request.
    pub nas_identifier: Option<String>,
    /// NAS-IPv6-Address (RFC 3162 §2.1) put in every request.
    pub nas_ipv6_address: Option<Ipv6Addr>,
    /// Drop answers without a Message-Authenticator (default on; see the
    /// [module documentation](self)).
    pub require_message_authenticator: bool,
    /// Requests in flight at most, 1..=256 (default 256).
    pub max_outstanding: usize,
}

impl ClientConfig {
    /// The defaults for these servers and secret. Set [`ClientConfig::nas_identifier`] or
    /// [`ClientConfig::nas_ipv6_address`] before [`Client::new`].
    pub fn new(servers: Vec<SocketAddr>, secret: SharedSecret) -> Self {
        Self {
            servers,
            secret,
            timeout: DEFAULT_TIMEOUT,
            tries: DEFAULT_TRIES,
            allow_pap: false,
            nas_identifier: None,
            nas_ipv6_address: None,
            require_message_authenticator: true,
            max_outstanding: MAX_OUTSTANDING,
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.servers.is_empty() {
            return Err(ConfigError::NoServers);
        }
        for (i, a) in self.servers.iter().enumerate() {
            if self.servers[..i].iter().any(|b| same_endpoint(*a, *b)) {
                return Err(ConfigError::DuplicateServer(*a));
            }
        }
        if self.tries == 0 || self.timeout.is_zero() {
            return Err(ConfigError::NoTries);
        }
        if !(1..=MAX_OUTSTANDING).contains(&self.max_outstanding) {
            return Err(ConfigError::MaxOutstanding(self.max_outstanding));
        }
        match &self.nas_identifier {
            Some(n) if n.is_empty() || n.len() > MAX_VALUE_LEN => {
                return Err(ConfigError::NasIdentifier);
            }
            None if self.nas_ipv6_address.is_none() => {
                return Err(ConfigError::NoNasIdentification);
            }
            _ => {}
        }
        Ok(())
    }
}

/// How the user proves who they are.
#[derive(Clone)]
pub enum Credentials {
    /// CHAP computed by the client from the password: a random CHAP ident and a 16-octet
    /// CHAP-Challenge, CHAP-Password = ident ‖ MD5(ident ‖ password ‖ challenge) (RFC 2865 §5.3,
    /// §5.40). The password is forgotten as soon as the response is computed.
    Chap(Password),
    /// A CHAP response computed elsewhere — by the mobile node, for XAUTH RADIUS-CHAP: the client
    /// only forwards it, and the password never reaches this host.
    ChapResponse {
        /// The CHAP identifier octet the response was computed with.
        ident: u8,
        /// MD5(ident ‖ password ‖ challenge).
        response: [u8; CHAP_RESPONSE_LEN],
        /// The challenge the response answers (1–253 octets), sent as CHAP-Challenge.
        challenge: Vec<u8>,
    },
    /// PAP: the password hidden in User-Password (RFC 2865 §5.2). Refused unless
    /// [`ClientConfig::allow_pap`].
    Pap(Password),
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Chap(_) => f.write_str("Chap(<redacted>)"),
            Self::ChapResponse {
                ident, challenge, ..
            } => f
                .debug_struct("ChapResponse")
                .field("ident", ident)
                .field("challenge_len", &challenge.len())
                .finish_non_exhaustive(),
            Self::Pap(_) => f.write_str("Pap(<redacted>)"),
        }
    }
}

/// One Access-Request to make.
#[derive(Debug, Clone)]
pub struct AccessRequest {
    /// User-Name (RFC 2865 §5.1), 1–253 octets.
    pub user_name: Vec<u8>,
    /// The credentials.
    pub credentials: Credentials,
    /// Further attributes, appended as given (e.g. Calling-Station-Id, State after an
    /// Access-Challenge, Service-Type). Attributes the client writes itself are refused:
    /// User-Name, User-Password, CHAP-Password, CHAP-Challenge, Message-Authenticator.
    pub attributes: Vec<AttributeRepr>,
}

impl AccessRequest {
    /// CHAP computed here from `password`.
    pub fn chap(user_name: impl Into<Vec<u8>>, password: Password) -> Self {
        Self::new(user_name, Credentials::Chap(password))
    }

    /// A CHAP response computed elsewhere, forwarded as CHAP-Password and CHAP-Challenge.
    pub fn chap_response(
        user_name: impl Into<Vec<u8>>,
        ident: u8,
        response: [u8; CHAP_RESPONSE_LEN],
        challenge: impl Into<Vec<u8>>,
    ) -> Self {
        Self::new(
            user_name,
            Credentials::ChapResponse {
                ident,
                response,
                challenge: challenge.into(),
            },
        )
    }

    /// PAP (needs [`ClientConfig::allow_pap`]).
    pub fn pap(user_name: impl Into<Vec<u8>>, password: Password) -> Self {
        Self::new(user_name, Credentials::Pap(password))
    }

    fn new(user_name: impl Into<Vec<u8>>, credentials: Credentials) -> Self {
        Self {
            user_name: user_name.into(),
            credentials,
            attributes: Vec::new(),
        }
    }

    /// Appends a further attribute.
    #[must_use]
    pub fn with_attribute(mut self, typ: AttributeType, value: impl Into<Vec<u8>>) -> Self {
        self.attributes.push(AttributeRepr::new(typ, value));
        self
    }
}

/// Why [`Client::start`] refused a request (nothing was sent).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// [`ClientConfig::max_outstanding`] requests are in flight.
    #[error("{limit} RADIUS requests already outstanding")]
    TooManyOutstanding {
        /// The limit.
        limit: usize,
    },
    /// PAP requested but [`ClientConfig::allow_pap`] is off.
    #[error("PAP is not enabled for this RADIUS client")]
    PapNotAllowed,
    /// An empty User-Name, or one longer than 253 octets.
    #[error("User-Name must be 1-253 octets")]
    UserName,
    /// A PAP password longer than 128 octets.
    #[error("PAP password longer than 128 octets")]
    PasswordTooLong,
    /// A CHAP challenge that is empty or longer than 253 octets.
    #[error("CHAP challenge must be 1-253 octets")]
    ChapChallenge,
    /// An extra attribute the client writes itself.
    #[error("attribute {0} is written by the RADIUS client itself")]
    ReservedAttribute(AttributeType),
    /// The packet does not fit (a value over 253 octets, or over 4096 in all).
    #[error(transparent)]
    Wire(#[from] WireError),
}

/// Names one request from [`Client::start`] to its [`Verdict`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestHandle(u64);

impl RequestHandle {
    /// The number (unique within one [`Client`]).
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for RequestHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// A datagram to send: the first `size` octets of the buffer given to
/// [`Client::poll_transmit`], to `destination`.
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transmit {
    /// The server.
    pub destination: SocketAddr,
    /// Octets written.
    pub size: usize,
}

/// What a server said, from an authenticated answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The server that answered.
    pub server: SocketAddr,
    /// The Reply-Message attributes (RFC 2865 §5.18), in order, as text (invalid UTF-8 replaced).
    pub reply_messages: Vec<String>,
    /// The Class attributes (RFC 2865 §5.25), to be echoed in accounting.
    pub class: Vec<Vec<u8>>,
    /// The State attribute (RFC 2865 §5.24), to be echoed in the next request after an
    /// Access-Challenge.
    pub state: Option<Vec<u8>>,
    /// Every attribute but Message-Authenticator, in order.
    pub attributes: Vec<AttributeRepr>,
}

impl Reply {
    /// The Reply-Message attributes joined (a long message is split over several).
    pub fn reply_message(&self) -> Option<String> {
        (!self.reply_messages.is_empty()).then(|| self.reply_messages.concat())
    }
}

/// The end of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Access-Accept.
    Accept(Reply),
    /// Access-Reject.
    Reject(Reply),
    /// Access-Challenge: answer with a new request carrying [`Reply::state`].
    Challenge(Reply),
    /// No authenticated answer from any server.
    Timeout,
}

/// The verdict on one request, from [`Client::poll_event`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The request.
    pub request: RequestHandle,
    /// How it ended.
    pub outcome: Outcome,
}

/// Why a received datagram was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DropReason {
    /// Not a RADIUS packet (RFC 2865 §3 lengths) or a bad attribute list.
    Malformed(WireError),
    /// From an address and port that is not a configured server.
    UnknownServer,
    /// An Identifier with no request in flight to that server.
    UnknownIdentifier,
    /// A Code other than Access-Accept, -Reject or -Challenge.
    UnexpectedCode(Code),
    /// The Response Authenticator does not match (RFC 2865 §3: silently discarded).
    BadResponseAuthenticator,
    /// The Message-Authenticator does not match (RFC 3579 §3.2: silently discarded).
    BadMessageAuthenticator,
    /// No Message-Authenticator, and [`ClientConfig::require_message_authenticator`] is on.
    MissingMessageAuthenticator,
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed(e) => write!(f, "malformed: {e}"),
            Self::UnknownServer => f.write_str("not from a configured server"),
            Self::UnknownIdentifier => f.write_str("no request with this Identifier"),
            Self::UnexpectedCode(c) => write!(f, "unexpected code {c}"),
            Self::BadResponseAuthenticator => f.write_str("wrong Response Authenticator"),
            Self::BadMessageAuthenticator => f.write_str("wrong Message-Authenticator"),
            Self::MissingMessageAuthenticator => f.write_str("no Message-Authenticator"),
        }
    }
}

/// Counters since the client was created.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Requests started.
    pub requests: u64,
    /// Datagrams handed out by [`Client::poll_transmit`] (first sends and retransmissions).
    pub transmissions: u64,
    /// Of which retransmissions (same server, same bytes).
    pub retransmissions: u64,
    /// Moves of a request to the next server.
    pub failovers: u64,
    /// Access-Accept verdicts.
    pub accepts: u64,
    /// Access-Reject verdicts.
    pub rejects: u64,
    /// Access-Challenge verdicts.
    pub challenges: u64,
    /// Timeout verdicts.
    pub timeouts: u64,
    /// Requests cancelled by [`Client::cancel`].
    pub cancelled: u64,
    /// Dropped: [`DropReason::Malformed`].
    pub dropped_malformed: u64,
    /// Dropped: [`DropReason::UnknownServer`] or [`DropReason::UnknownIdentifier`].
    pub dropped_unknown: u64,
    /// Dropped: [`DropReason::UnexpectedCode`].
    pub dropped_unexpected_code: u64,
    /// Dropped: [`DropReason::BadResponseAuthenticator`].
    pub dropped_bad_authenticator: u64,
    /// Dropped: [`DropReason::BadMessageAuthenticator`].
    pub dropped_bad_message_authenticator: u64,
    /// Dropped: [`DropReason::MissingMessageAuthenticator`].
    pub dropped_missing_message_authenticator: u64,
}

impl Stats {
    /// All drops together.
    pub fn dropped(&self) -> u64 {
        self.dropped_malformed
            + self.dropped_unknown
            + self.dropped_unexpected_code
            + self.dropped_bad_authenticator
            + self.dropped_bad_message_authenticator
            + self.dropped_missing_message_authenticator
    }

    fn count_drop(&mut self, reason: DropReason) {
        let c = match reason {
            DropReason::Malformed(_) => &mut self.dropped_malformed,
            DropReason::UnknownServer | DropReason::UnknownIdentifier => &mut self.dropped_unknown,
            DropReason::UnexpectedCode(_) => &mut self.dropped_unexpected_code,
            DropReason::BadResponseAuthenticator => &mut self.dropped_bad_authenticator,
            DropReason::BadMessageAuthenticator => &mut self.dropped_bad_message_authenticator,
            DropReason::MissingMessageAuthenticator => {
                &mut self.dropped_missing_message_authenticator
            }
        };
        *c += 1;
    }
}

/// The credentials as they go on the wire. For CHAP only the response is kept.
enum WireCredentials {
    Chap {
        ident: u8,
        response: [u8; CHAP_RESPONSE_LEN],
        challenge: Vec<u8>,
    },
    Pap(Password),
}

/// Where one request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Encoded and waiting in the transmit queue.
    Queued,
    /// Sent; retransmit (or fail over) at `deadline`.
    Sent { sent_at: Instant, deadline: Instant },
}

struct Pending {
    user_name: Vec<u8>,
    credentials: WireCredentials,
    attributes: Vec<AttributeRepr>,
    /// Index into the servers.
    server: usize,
    identifier: u8,
    authenticator: [u8; AUTHENTICATOR_LEN],
    /// The encoded Access-Request (it holds the hidden password with PAP).
    packet: Zeroizing<Vec<u8>>,
    /// Transmissions to the current server.
    sent: u32,
    phase: Phase,
}

struct Server {
    addr: SocketAddr,
    /// Identifier → request holding it.
    ids: Vec<Option<RequestHandle>>,
    /// Where the round-robin search for a free Identifier starts.
    next_id: u8,
}

impl Server {
    fn allocate(&mut self, handle: RequestHandle) -> Option<u8> {
        for i in 0..=255u8 {
            let id = self.next_id.wrapping_add(i);
            let slot = &mut self.ids[usize::from(id)];
            if slot.is_none() {
                *slot = Some(handle);
                self.next_id = id.wrapping_add(1);
                return Some(id);
            }
        }
        None
    }

    fn release(&mut self, id: u8, handle: RequestHandle) {
        let slot = &mut self.ids[usize::from(id)];
        if *slot == Some(handle) {
            *slot = None;
        }
    }
}

/// The sans-IO RADIUS client. See the [module documentation](self) for the protocol.
///
/// Calling order, in the driver's loop:
/// 1. [`Client::start`] a request (a command, any time);
/// 2. [`Client::poll_transmit`] until `None`, sending each datagram from the one socket;
/// 3. wait for a datagram or [`Client::poll_timeout`]; feed it to [`Client::handle_datagram`]
///    or call [`Client::handle_timeout`] once the deadline has passed;
/// 4. [`Client::poll_event`] until `None`, and repeat from 2.
///
/// Time is always passed in; the client never reads a clock or touches a socket.
pub struct Client {
    config: ClientConfig,
    rng: Box<dyn RandomSource + Send>,
    servers: Vec<Server>,
    pending: BTreeMap<RequestHandle, Pending>,
    queue: VecDeque<RequestHandle>,
    events: VecDeque<Verdict>,
    next_handle: u64,
    stats: Stats,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("config", &self.config)
            .field("outstanding", &self.pending.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client with this configuration, drawing randomness from `rng`.
    pub fn new(
        config: ClientConfig,
        rng: impl RandomSource + Send + 'static,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        let mut rng: Box<dyn RandomSource + Send> = Box::new(rng);
        let servers = config
            .servers
            .iter()
            .map(|&addr| {
                let mut start = [0u8; 1];
                rng.fill(&mut start);
                Server {
                    addr,
                    ids: vec![None; 256],
                    next_id: start[0],
                }
            })
            .collect();
        Ok(Self {
            config,
            rng,
            servers,
            pending: BTreeMap::new(),
            queue: VecDeque::new(),
            events: VecDeque::new(),
            next_handle: 1,
            stats: Stats::default(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// The counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Requests in flight (started, no verdict yet).
    pub fn outstanding(&self) -> usize {
        self.pending.len()
    }

    /// Starts an Access-Request to the first server. It is encoded now and handed out by the
    /// next [`Client::poll_transmit`]; its [`Verdict`] comes from [`Client::poll_event`].
    pub fn start(&mut self, request: AccessRequest) -> Result<RequestHandle, RequestError> {
        if self.pending.len() >= self.config.max_outstanding {
            return Err(RequestError::TooManyOutstanding {
                limit: self.config.max_outstanding,
            });
        }
        let AccessRequest {
            user_name,
            credentials,
            attributes,
        } = request;
        if user_name.is_empty() || user_name.len() > MAX_VALUE_LEN {
            return Err(RequestError::UserName);
        }
        if let Some(a) = attributes.iter().find(|a| {
            matches!(
                a.typ,
                AttributeType::USER_NAME
                    | AttributeType::USER_PASSWORD
                    | AttributeType::CHAP_PASSWORD
                    | AttributeType::CHAP_CHALLENGE
                    | AttributeType::MESSAGE_AUTHENTICATOR
            )
        }) {
            return Err(RequestError::ReservedAttribute(a.typ));
        }
        let credentials = match credentials {
            Credentials::Chap(password) => {
                // RFC 2865 §5.40: the challenge comes from the NAS; §2.2: CHAP ident and
                // challenge are the NAS's to choose.
                let mut ident = [0u8; 1];
                self.rng.fill(&mut ident);
                let mut challenge = vec![0u8; CHAP_CHALLENGE_LEN];
                self.rng.fill(&mut challenge);
                let response = crypto::chap_response(ident[0], password.expose(), &challenge);
                WireCredentials::Chap {
                    ident: ident[0],
                    response,
                    challenge,
                }
            }
            Credentials::ChapResponse {
                ident,
                response,
                challenge,
            } => {
                if challenge.is_empty() || challenge.len() > MAX_VALUE_LEN {
                    return Err(RequestError::ChapChallenge);
                }
                WireCredentials::Chap {
                    ident,
                    response,
                    challenge,
                }
            }
            Credentials::Pap(password) => {
                if !self.config.allow_pap {
                    return Err(RequestError::PapNotAllowed);
                }
                if password.expose().len() > MAX_PAP_PASSWORD_LEN {
                    return Err(RequestError::PasswordTooLong);
                }
                WireCredentials::Pap(password)
            }
        };
        let handle = RequestHandle(self.next_handle);
        let mut pending = Pending {
            user_name,
            credentials,
            attributes,
            server: 0,
            identifier: 0,
            authenticator: [0; AUTHENTICATOR_LEN],
            packet: Zeroizing::new(Vec::new()),
            sent: 0,
            phase: Phase::Queued,
        };
        // Encode before taking an Identifier, so a packet that does not fit leaves no trace.
        self.rng.fill(&mut pending.authenticator);
        pending.packet = self.encode(&pending)?;
        let Some(id) = self.servers[0].allocate(handle) else {
            // Cannot happen: max_outstanding ≤ 256 and each request holds one Identifier.
            return Err(RequestError::TooManyOutstanding {
                limit: self.config.max_outstanding,
            });
        };
        pending.identifier = id;
        Packet::new_unchecked(&mut pending.packet[..]).set_identifier(id);
        self.refresh_message_authenticator(&mut pending);
        self.next_handle += 1;
        self.stats.requests += 1;
        debug!(
            request = %handle,
            server = %self.servers[0].addr,
            id,
            user = %crate::HexOrText(&pending.user_name),
            method = pending.credentials.method(),
            "RADIUS Access-Request started"
        );
        self.pending.insert(handle, pending);
        self.queue.push_back(handle);
        Ok(handle)
    }

    /// Abandons a request: no more transmissions, no verdict. Returns whether it was in flight.
    pub fn cancel(&mut self, request: RequestHandle) -> bool {
        let Some(p) = self.pending.remove(&request) else {
            return false;
        };
        self.servers[p.server].release(p.identifier, request);
        self.stats.cancelled += 1;
        debug!(request = %request, "RADIUS request cancelled");
        true
    }

    /// The next datagram to send, written into `buf` (cleared first). The retransmission timer
    /// of that request starts at `now`.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut Vec<u8>) -> Option<Transmit> {
        while let Some(handle) = self.queue.pop_front() {
            let Some(p) = self.pending.get_mut(&handle) else {
                continue; // answered or cancelled meanwhile
            };
            if p.phase != Phase::Queued {
                continue;
            }
            p.sent += 1;
            p.phase = Phase::Sent {
                sent_at: now,
                deadline: now + self.config.timeout,
            };
            buf.clear();
            buf.extend_from_slice(&p.packet);
            self.stats.transmissions += 1;
            if p.sent > 1 {
                self.stats.retransmissions += 1;
            }
            let destination = self.servers[p.server].addr;
            trace!(
                request = %handle,
                server = %destination,
                id = p.identifier,
                attempt = p.sent,
                "RADIUS Access-Request sent"
            );
            return Some(Transmit {
                destination,
                size: buf.len(),
            });
        }
        None
    }

    /// The earliest retransmission or failover deadline, if a request waits for an answer.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.pending
            .values()
            .filter_map(|p| match p.phase {
                Phase::Sent { deadline, .. } => Some(deadline),
                Phase::Queued => None,
            })
            .min()
    }

    /// Retransmits, fails over or gives up on every request whose deadline is at or before
    /// `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        let due: Vec<RequestHandle> = self
            .pending
            .iter()
            .filter(|(_, p)| matches!(p.phase, Phase::Sent { deadline, .. } if deadline <= now))
            .map(|(h, _)| *h)
            .collect();
        for handle in due {
            let Some(mut p) = self.pending.remove(&handle) else {
                continue;
            };
            if p.sent < self.config.tries {
                // RFC 5080 §2.2.1: a retransmission keeps the Identifier and the Request
                // Authenticator; the bytes are those already sent.
                debug!(
                    request = %handle,
                    server = %self.servers[p.server].addr,
                    id = p.identifier,
                    attempt = p.sent + 1,
                    "RADIUS no answer, retransmitting"
                );
                p.phase = Phase::Queued;
                self.pending.insert(handle, p);
                self.queue.push_back(handle);
                continue;
            }
            self.servers[p.server].release(p.identifier, handle);
            match self.fail_over(handle, &mut p) {
                Ok(()) => {
                    self.pending.insert(handle, p);
                    self.queue.push_back(handle);
                }
                Err(()) => {
                    debug!(request = %handle, "RADIUS no answer from any server");
                    self.stats.timeouts += 1;
                    self.events.push_back(Verdict {
                        request: handle,
                        outcome: Outcome::Timeout,
                    });
                }
            }
        }
    }

    /// Moves `p` (whose Identifier is already released) to the next server that has a free
    /// Identifier, re-encoded with a fresh Request Authenticator. `Err` if none is left.
    fn fail_over(&mut self, handle: RequestHandle, p: &mut Pending) -> Result<(), ()> {
        let from = self.servers[p.server].addr;
        while p.server + 1 < self.servers.len() {
            p.server += 1;
            let Some(id) = self.servers[p.server].allocate(handle) else {
                continue;
            };
            p.identifier = id;
            self.rng.fill(&mut p.authenticator);
            match self.encode(p) {
                Ok(packet) => p.packet = packet,
                Err(e) => {
                    // The same attributes encoded before; a failure here is a bug.
                    debug!(request = %handle, error = %e, "RADIUS re-encoding failed");
                    self.servers[p.server].release(id, handle);
                    return Err(());
                }
            }
            Packet::new_unchecked(&mut p.packet[..]).set_identifier(id);
            self.refresh_message_authenticator(p);
            p.sent = 0;
            p.phase = Phase::Queued;
            self.stats.failovers += 1;
            debug!(
                request = %handle,
                from = %from,
                to = %self.servers[p.server].addr,
                id,
                "RADIUS server not answering, failing over"
            );
            return Ok(());
        }
        Err(())
    }

    /// Takes a datagram received from `from` on the client's socket.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        if let Err(reason) = self.accept_datagram(now, from, data) {
            self.stats.count_drop(reason);
            debug!(from = %from, len = data.len(), %reason, "RADIUS answer dropped");
        }
    }

    fn accept_datagram(
        &mut self,
        now: Instant,
        from: SocketAddr,
        data: &[u8],
    ) -> Result<(), DropReason> {
        let packet = Packet::new_checked(data).map_err(DropReason::Malformed)?;
        let server = self
            .servers
            .iter()
            .position(|s| same_endpoint(s.addr, from))
            .ok_or(DropReason::UnknownServer)?;
        let id = packet.identifier();
        let handle =
            self.servers[server].ids[usize::from(id)].ok_or(DropReason::UnknownIdentifier)?;
        let p = self
            .pending
            .get(&handle)
            .ok_or(DropReason::UnknownIdentifier)?;
        if p.server != server || p.sent == 0 {
            return Err(DropReason::UnknownIdentifier);
        }
        // RFC 2865 §3: the Response Authenticator first, then RFC 3579 §3.2's
        // Message-Authenticator; only then does the Code mean anything.
        let expected = crypto::response_authenticator(&self.config.secret, &p.authenticator, data);
        if !crypto::ct_eq(&expected, &packet.authenticator()) {
            return Err(DropReason::BadResponseAuthenticator);
        }
        match crypto::find_message_authenticator(&packet).map_err(DropReason::Malformed)? {
            Some(offset) => {
                let expected = crypto::message_authenticator(
                    &self.config.secret,
                    data,
                    offset,
                    Some(&p.authenticator),
                );
                if !crypto::ct_eq(&expected, &data[offset..offset + AUTHENTICATOR_LEN]) {
                    return Err(DropReason::BadMessageAuthenticator);
                }
            }
            None if self.config.require_message_authenticator => {
                return Err(DropReason::MissingMessageAuthenticator);
            }
            None => {}
        }
        let code = packet.code();
        if !matches!(
            code,
            Code::ACCESS_ACCEPT | Code::ACCESS_REJECT | Code::ACCESS_CHALLENGE
        ) {
            return Err(DropReason::UnexpectedCode(code));
        }
        let reply = Reply::from_packet(self.servers[server].addr, &packet);
        let rtt = match p.phase {
            Phase::Sent { sent_at, .. } => now.saturating_duration_since(sent_at),
            Phase::Queued => Duration::ZERO,
        };
        self.pending.remove(&handle);
        self.servers[server].release(id, handle);
        let outcome = match code {
            Code::ACCESS_ACCEPT => {
                self.stats.accepts += 1;
                Outcome::Accept(reply)
            }
            Code::ACCESS_REJECT => {
                self.stats.rejects += 1;
                Outcome::Reject(reply)
            }
            _ => {
                self.stats.challenges += 1;
                Outcome::Challenge(reply)
            }
        };
        debug!(
            request = %handle,
            server = %from,
            id,
            %code,
            rtt_ms = rtt.as_secs_f64() * 1e3,
            "RADIUS verdict"
        );
        self.events.push_back(Verdict {
            request: handle,
            outcome,
        });
        Ok(())
    }

    /// The next verdict.
    pub fn poll_event(&mut self) -> Option<Verdict> {
        self.events.pop_front()
    }

    /// Encodes `p` with its current Identifier and Request Authenticator; the
    /// Message-Authenticator is left zero.
    fn encode(&self, p: &Pending) -> Result<Zeroizing<Vec<u8>>, RequestError> {
        let mut attributes = Vec::with_capacity(8 + p.attributes.len());
        // Message-Authenticator first (BlastRADIUS advice); computed once the packet is whole.
        attributes.push(AttributeRepr::new(
            AttributeType::MESSAGE_AUTHENTICATOR,
            vec![0; AUTHENTICATOR_LEN],
        ));
        attributes.push(AttributeRepr::new(
            AttributeType::USER_NAME,
            p.user_name.clone(),
        ));
        match &p.credentials {
            WireCredentials::Chap {
                ident,
                response,
                challenge,
            } => {
                let mut v = Vec::with_capacity(1 + CHAP_RESPONSE_LEN);
                v.push(*ident);
                v.extend_from_slice(response);
                attributes.push(AttributeRepr::new(AttributeType::CHAP_PASSWORD, v));
                attributes.push(AttributeRepr::new(
                    AttributeType::CHAP_CHALLENGE,
                    challenge.clone(),
                ));
            }
            WireCredentials::Pap(password) => {
                let hidden = crypto::hide_password(
                    &self.config.secret,
                    &p.authenticator,
                    password.expose(),
                )?;
                attributes.push(AttributeRepr::new(AttributeType::USER_PASSWORD, hidden));
            }
        }
        if let Some(n) = &self.config.nas_identifier {
            attributes.push(AttributeRepr::new(
                AttributeType::NAS_IDENTIFIER,
                n.as_bytes().to_vec(),
            ));
        }
        if let Some(a) = self.config.nas_ipv6_address {
            attributes.push(AttributeRepr::new(
                AttributeType::NAS_IPV6_ADDRESS,
                a.octets().to_vec(),
            ));
        }
        attributes.extend(p.attributes.iter().cloned());
        let repr = PacketRepr {
            code: Code::ACCESS_REQUEST,
            identifier: p.identifier,
            authenticator: p.authenticator,
            attributes,
        };
        let bytes = Zeroizing::new(repr.to_vec()?);
        // The hidden password was copied into the packet; wipe the intermediate copy.
        for mut a in repr.attributes {
            zeroize::Zeroize::zeroize(&mut a.value);
        }
        Ok(bytes)
    }

    /// Computes the Message-Authenticator of `p.packet` in place (it is the first attribute).
    fn refresh_message_authenticator(&self, p: &mut Pending) {
        const OFFSET: usize = HEADER_LEN + 2;
        p.packet[OFFSET..OFFSET + AUTHENTICATOR_LEN].fill(0);
        let mac = crypto::message_authenticator(&self.config.secret, &p.packet, OFFSET, None);
        p.packet[OFFSET..OFFSET + AUTHENTICATOR_LEN].copy_from_slice(&mac);
    }
}

impl WireCredentials {
    fn method(&self) -> &'static str {
        match self {
            Self::Chap { .. } => "chap",
            Self::Pap(_) => "pap",
        }
    }
}

impl Reply {
    fn from_packet(server: SocketAddr, packet: &Packet<&[u8]>) -> Self {
        let mut reply = Self {
            server,
            reply_messages: Vec::new(),
            class: Vec::new(),
            state: None,
            attributes: Vec::new(),
        };
        for a in packet.attributes() {
            match a.typ {
                AttributeType::MESSAGE_AUTHENTICATOR => continue,
                AttributeType::REPLY_MESSAGE => reply
                    .reply_messages
                    .push(String::from_utf8_lossy(a.value).into_owned()),
                AttributeType::CLASS => reply.class.push(a.value.to_vec()),
                AttributeType::STATE if reply.state.is_none() => {
                    reply.state = Some(a.value.to_vec());
                }
                _ => {}
            }
            reply.attributes.push(AttributeRepr::new(a.typ, a.value));
        }
        reply
    }
}

/// Whether two socket addresses name the same endpoint: same port and same IP, an
/// IPv4-mapped IPv6 address counting as its IPv4 address (flow label and scope are ignored
/// except for link-local addresses, where the scope matters).
fn same_endpoint(a: SocketAddr, b: SocketAddr) -> bool {
    if a.port() != b.port() || a.ip().to_canonical() != b.ip().to_canonical() {
        return false;
    }
    match (a, b) {
        (SocketAddr::V6(a), SocketAddr::V6(b)) if a.ip().is_unicast_link_local() => {
            a.scope_id() == b.scope_id() || a.scope_id() == 0 || b.scope_id() == 0
        }
        _ => true,
    }
}

#[cfg(test)]
mod tests;
