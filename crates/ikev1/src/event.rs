//! What the engine hands back to its driver: datagrams to send, events, and the requests it
//! accepts (the handle/poll quadrants of `style.md` §2).

use std::fmt;
use std::net::{Ipv6Addr, SocketAddr};
use std::time::Duration;

use crate::child::{ChildSa, Mode, TrafficSelector};
use crate::identity::Identity;
use crate::xauth::XauthResponse;

/// Identifies one IKE SA inside an engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IkeSaId(pub u64);

impl fmt::Display for IkeSaId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// A UDP datagram to send. On the NAT-T port the 4-byte non-ESP marker is already in `data`.
#[must_use]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// Our address and port to send from.
    pub local: SocketAddr,
    /// Where to.
    pub remote: SocketAddr,
    /// The UDP payload.
    pub data: Vec<u8>,
}

/// Mode Config attributes (draft-ietf-ipsec-isakmp-mode-cfg-05) the engine understands.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ModeConfig {
    /// INTERNAL_IP6_ADDRESS.
    pub address: Option<Ipv6Addr>,
    /// The prefix length when the peer sent the 17-byte form.
    pub prefix_len: Option<u8>,
    /// INTERNAL_IP6_DNS.
    pub dns: Vec<Ipv6Addr>,
    /// INTERNAL_IP6_DHCP.
    pub dhcp: Vec<Ipv6Addr>,
    /// INTERNAL_ADDRESS_EXPIRY.
    pub expiry: Option<Duration>,
}

/// What went wrong with an exchange or an SA.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FailReason {
    /// The peer never answered.
    Timeout,
    /// The peer refused with this Notify, or we refused its proposal.
    Notify(isakmp::NotifyType),
    /// Authentication failed.
    Authentication(String),
    /// No proposal in common.
    NoProposalChosen,
    /// A protocol violation.
    Protocol(String),
    /// Dead peer detection found the peer gone.
    DeadPeer,
    /// Refused by the local policy (e.g. selectors not allowed for this identity).
    Policy(String),
}

impl fmt::Display for FailReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Timeout => f.write_str("peer did not answer"),
            Self::Notify(n) => write!(f, "peer sent notify {n:?}"),
            Self::Authentication(s) => write!(f, "authentication failed: {s}"),
            Self::NoProposalChosen => f.write_str("no proposal chosen"),
            Self::Protocol(s) => write!(f, "protocol error: {s}"),
            Self::DeadPeer => f.write_str("dead peer"),
            Self::Policy(s) => write!(f, "refused by policy: {s}"),
        }
    }
}

/// An event for the driver.
#[derive(Clone, Debug)]
pub enum Event {
    /// Phase 1 completed and authenticated; with an XAUTH method (XAUTHInitPreShared,
    /// HybridInitRSA) only once XAUTH has succeeded too ([`Event::XauthSucceeded`] comes
    /// first). Before that the SA takes nothing but XAUTH and Informationals.
    IkeSaEstablished {
        /// The SA.
        sa: IkeSaId,
        /// The peer's authenticated identity.
        remote_id: Identity,
        /// Our endpoint.
        local: SocketAddr,
        /// The peer's endpoint.
        remote: SocketAddr,
        /// The suite, as `aes128-sha256-ecp256`.
        proposal: String,
        /// Whether we initiated.
        initiator: bool,
        /// Whether NAT traversal is in use (ESP in UDP).
        nat: bool,
    },
    /// Phase 1 failed before it was established (including an XAUTH that did not succeed:
    /// [`Event::XauthFailed`] comes first).
    IkeSaFailed {
        /// The SA.
        sa: IkeSaId,
        /// Why.
        reason: FailReason,
    },
    /// An established IKE SA is gone (deleted by either side, expired or dead peer).
    IkeSaDeleted {
        /// The SA.
        sa: IkeSaId,
        /// Why.
        reason: String,
    },
    /// A newer IKE SA with the same peer (phase-1 re-authentication, or the peer's) takes
    /// over from `old`, which is deleted next (`IkeSaDeleted` follows): the child SAs named
    /// (our SPIs) now belong to `new` and stay installed (RFC 2409: IPsec SAs outlive the
    /// ISAKMP SA that negotiated them).
    IkeSaReplaced {
        /// The SA going away.
        old: IkeSaId,
        /// The SA that takes over.
        new: IkeSaId,
        /// The child SAs handed over.
        children: Vec<u32>,
    },
    /// A Quick Mode completed.
    ChildSaEstablished(Box<ChildSa>),
    /// A Quick Mode failed.
    ChildSaFailed {
        /// The IKE SA.
        sa: IkeSaId,
        /// The request it answers, when we initiated.
        request: Option<u64>,
        /// Why.
        reason: FailReason,
    },
    /// An IPsec SA pair is gone (deleted by either side, or expired).
    ChildSaDeleted {
        /// The IKE SA.
        sa: IkeSaId,
        /// Our SPI.
        spi_in: u32,
        /// The peer's SPI.
        spi_out: u32,
        /// Why.
        reason: String,
    },
    /// A child SA reached its soft lifetime and we initiated it: the engine has started a new
    /// Quick Mode with the same selectors (it reports `ChildSaEstablished` for it).
    ChildSaRekeying {
        /// The IKE SA.
        sa: IkeSaId,
        /// Our SPI of the SA being replaced.
        spi_in: u32,
    },
    /// (Responder) The peer asks for an address by Mode Config; answer with
    /// [`crate::Engine::answer_address_request`], possibly later.
    AddressRequested {
        /// The IKE SA.
        sa: IkeSaId,
        /// The request handle.
        request: u64,
        /// The peer's authenticated identity.
        identity: Identity,
        /// What the peer asked for (`address` is a hint it may have sent).
        asked: ModeConfig,
    },
    /// (Initiator) The peer gave us Mode Config attributes (CFG_REPLY or CFG_SET).
    ModeConfigReceived {
        /// The IKE SA.
        sa: IkeSaId,
        /// What it gave.
        config: ModeConfig,
    },
    /// (Initiator) A Mode Config request failed.
    ModeConfigFailed {
        /// The IKE SA.
        sa: IkeSaId,
        /// Why.
        reason: FailReason,
    },
    /// (Responder) The peer acknowledged attributes we pushed with CFG_SET.
    ModeConfigAcked {
        /// The IKE SA.
        sa: IkeSaId,
    },
    /// (Edge, the home agent) The peer answered our XAUTH request
    /// (draft-ietf-ipsec-isakmp-xauth-06): check the credentials (RADIUS, RFC 2865) and
    /// answer with [`crate::Engine::xauth_verdict`], possibly later (within
    /// [`crate::Config::xauth_timeout`] of phase 1). `Debug` shows no password.
    XauthCredentials {
        /// The IKE SA.
        sa: IkeSaId,
        /// The peer's phase-1 identity (in hybrid mode not authenticated by phase 1).
        identity: Identity,
        /// XAUTH-USER-NAME.
        user: String,
        /// The password (Generic) or the CHAP answer (RADIUS-CHAP).
        response: XauthResponse,
    },
    /// XAUTH succeeded: (edge) the verdict was yes and XAUTH-STATUS OK is sent; (client) the
    /// edge sent STATUS OK. [`Event::IkeSaEstablished`] follows.
    XauthSucceeded {
        /// The IKE SA.
        sa: IkeSaId,
        /// The XAUTH user.
        user: String,
    },
    /// XAUTH failed: refused, unanswered, malformed, or (edge) not tried because the identity
    /// or address failed too often. The SA is deleted; [`Event::IkeSaFailed`] follows.
    XauthFailed {
        /// The IKE SA.
        sa: IkeSaId,
        /// Why.
        reason: FailReason,
    },
}

/// A Quick Mode to initiate.
#[derive(Clone, Debug)]
pub struct ChildRequest {
    /// Tunnel or transport.
    pub mode: Mode,
    /// Our selector (IDci).
    pub local_ts: TrafficSelector,
    /// The peer's selector (IDcr).
    pub remote_ts: TrafficSelector,
}
