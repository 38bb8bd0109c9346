//! Engine configuration: who we are, how we authenticate, which peers we accept, the
//! proposals we offer and the timers we keep. The daemons build this from their TOML files.
//!
//! XAUTH (draft-ietf-ipsec-isakmp-xauth-06) and hybrid authentication
//! (draft-ietf-ipsec-isakmp-hybrid-auth-05) are methods of their own: the client (the initiator,
//! the mobile node) says so with [`LocalAuth::XauthPsk`] or [`LocalAuth::Hybrid`], which carry
//! its XAUTH credentials; the edge (the responder, the home agent) with [`PeerAuth::XauthPsk`]
//! or [`PeerAuth::Hybrid`] for the peers it requires XAUTH of, naming the XAUTH type to ask for.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use zeroize::Zeroizing;

use crate::child::TrafficSelector;
use crate::crypto::{Certificate, RsaPrivateKey};
use crate::identity::Identity;
use crate::proposal::{EspProposal, IkeProposal};
use crate::xauth::{XauthCredentials, XauthType};

/// How we prove who we are in phase 1.
#[derive(Clone)]
pub enum LocalAuth {
    /// A pre-shared key; the key itself is per peer ([`PeerAuth::Psk`]).
    Psk,
    /// RSA signature (Oakley method 3) with our certificate.
    RsaSig {
        /// Our private key.
        key: Arc<RsaPrivateKey>,
        /// Our certificate, sent in a CERT payload.
        cert: Arc<Certificate>,
    },
    /// XAUTHInitPreShared (Oakley method 65001, xauth-06): phase 1 with the pre-shared
    /// key of the peer ([`PeerAuth::Psk`]), then we answer the peer's XAUTH request with these
    /// credentials. Initiator only.
    XauthPsk(XauthCredentials),
    /// HybridInitRSA (Oakley method 64221, hybrid-auth-05): in phase 1 the peer signs
    /// (its certificate must chain to the CAs of [`PeerAuth::RsaSig`]) and we send only HASH_I;
    /// we are authenticated afterwards by XAUTH with these credentials. Initiator only.
    Hybrid(XauthCredentials),
}

impl fmt::Debug for LocalAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Psk => f.write_str("Psk"),
            Self::RsaSig { .. } => f.write_str("RsaSig"),
            Self::XauthPsk(c) => f.debug_tuple("XauthPsk").field(c).finish(),
            Self::Hybrid(c) => f.debug_tuple("Hybrid").field(c).finish(),
        }
    }
}

impl LocalAuth {
    /// Our XAUTH credentials, when we are an XAUTH client.
    pub fn xauth_credentials(&self) -> Option<&XauthCredentials> {
        match self {
            Self::XauthPsk(c) | Self::Hybrid(c) => Some(c),
            Self::Psk | Self::RsaSig { .. } => None,
        }
    }
}

/// How a peer proves who it is.
#[derive(Clone)]
pub enum PeerAuth {
    /// The pre-shared key we share with this peer.
    Psk(Zeroizing<Vec<u8>>),
    /// RSA signature with a certificate issued by one of these CAs (or equal to one of them).
    RsaSig {
        /// Trust anchors.
        cas: Vec<Arc<Certificate>>,
    },
    /// (Edge) XAUTHInitPreShared (method 65001): the peer proves the pre-shared key in phase 1
    /// and must then pass XAUTH of type `xauth` before anything else is accepted from it.
    XauthPsk {
        /// The pre-shared key.
        psk: Zeroizing<Vec<u8>>,
        /// What to ask for in the XAUTH request.
        xauth: XauthType,
    },
    /// (Edge) HybridInitRSA (method 64221): we sign with our certificate
    /// ([`LocalAuth::RsaSig`]), the peer sends only HASH_I, which proves nothing about it, and
    /// is authenticated by XAUTH of type `xauth` alone.
    Hybrid {
        /// What to ask for in the XAUTH request.
        xauth: XauthType,
    },
}

impl fmt::Debug for PeerAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Psk(_) => f.write_str("Psk(<redacted>)"),
            Self::RsaSig { cas } => write!(f, "RsaSig({} CAs)", cas.len()),
            Self::XauthPsk { xauth, .. } => write!(f, "XauthPsk(<redacted>, {xauth:?})"),
            Self::Hybrid { xauth } => write!(f, "Hybrid({xauth:?})"),
        }
    }
}

impl PeerAuth {
    /// The pre-shared key, for the methods that have one.
    pub(crate) fn psk(&self) -> Option<&[u8]> {
        match self {
            Self::Psk(k) | Self::XauthPsk { psk: k, .. } => Some(k.as_slice()),
            Self::RsaSig { .. } | Self::Hybrid { .. } => None,
        }
    }

    /// (Edge) The XAUTH type this peer must pass, if any.
    pub fn xauth(&self) -> Option<XauthType> {
        match self {
            Self::XauthPsk { xauth, .. } | Self::Hybrid { xauth } => Some(*xauth),
            Self::Psk(_) | Self::RsaSig { .. } => None,
        }
    }
}

/// A peer we accept (as responder) or contact (as initiator).
#[derive(Clone, Debug)]
pub struct PeerConfig {
    /// Its identity; [`Identity::Any`] accepts any identity that authenticates.
    pub identity: Identity,
    /// How it authenticates.
    pub auth: PeerAuth,
    /// Where it may come from; empty means anywhere.
    pub addrs: Vec<IpAddr>,
}

/// Retransmission of requests: the first after `initial`, each later one after twice the
/// previous wait (at most `max_interval`), and the exchange fails after `tries` sends.
#[derive(Clone, Copy, Debug)]
pub struct Retransmit {
    /// Wait before the first retransmission.
    pub initial: Duration,
    /// The longest wait.
    pub max_interval: Duration,
    /// How many times a request is sent in all.
    pub tries: u32,
}

impl Default for Retransmit {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(1000),
            max_interval: Duration::from_secs(16),
            tries: 6,
        }
    }
}

/// The engine's configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// Our identity.
    pub local_id: Identity,
    /// How we authenticate.
    pub local_auth: LocalAuth,
    /// The peers.
    pub peers: Vec<PeerConfig>,
    /// Phase-1 suites, most preferred first.
    pub ike_proposals: Vec<IkeProposal>,
    /// Phase-2 suites, most preferred first.
    pub esp_proposals: Vec<EspProposal>,
    /// Phase-1 lifetime we propose; as responder we take the peer's if shorter.
    pub ike_lifetime: Duration,
    /// Phase-2 lifetime we propose.
    pub child_lifetime: Duration,
    /// Phase-2 lifetime in kilobytes we propose, if any.
    pub child_life_kbytes: Option<u64>,
    /// Rekey this long before a lifetime ends (the initiator of an SA rekeys it).
    pub rekey_margin: Duration,
    /// Retransmission of requests.
    pub retransmit: Retransmit,
    /// Send R-U-THERE (RFC 3706) after this long without hearing from the peer.
    pub dpd_delay: Option<Duration>,
    /// Offer and accept NAT traversal (RFC 3947).
    pub nat_traversal: bool,
    /// Pretend to be behind a NAT so that the peer floats to UDP 4500 and encapsulates ESP in
    /// UDP (what strongSwan's `encap = yes` does).
    pub force_encap: bool,
    /// Selectors a peer may ask for on our side (IDcr as responder).
    pub local_ts: Vec<TrafficSelector>,
    /// Selectors a peer may ask for on its side (IDci as responder), in addition to an address
    /// it was given by Mode Config.
    pub remote_ts: Vec<TrafficSelector>,
    /// Unfinished phase-1 exchanges we keep as responder, in all.
    pub max_half_open: usize,
    /// Unfinished phase-1 exchanges we keep as responder, per peer address.
    pub max_half_open_per_peer: usize,
    /// The NAT-T port (4500).
    pub natt_port: u16,
    /// How long XAUTH may take after phase 1, in either role: past it the IKE SA is deleted.
    /// It bounds how long the edge waits for the client's reply and for
    /// [`crate::Engine::xauth_verdict`], and how long a client waits for the edge.
    pub xauth_timeout: Duration,
    /// (Edge) Failed XAUTH attempts allowed per peer identity and per source address within
    /// `xauth_failure_window`; past that a new phase 1 of that identity or address is deleted
    /// (with a Delete) without an XAUTH request.
    pub xauth_max_failures: u32,
    /// (Edge) The window of `xauth_max_failures`.
    pub xauth_failure_window: Duration,
}

impl Config {
    /// A configuration with the defaults an operator would expect and no peers.
    pub fn new(local_id: Identity, local_auth: LocalAuth) -> Self {
        Self {
            local_id,
            local_auth,
            peers: Vec::new(),
            ike_proposals: vec![
                IkeProposal::parse("aes128-sha256-ecp256", false).expect("valid default"),
                IkeProposal::parse("aes256-sha256-modp2048", false).expect("valid default"),
            ],
            esp_proposals: vec![
                EspProposal::parse("aes128gcm16", false).expect("valid default"),
                EspProposal::parse("aes128-sha256", false).expect("valid default"),
            ],
            ike_lifetime: Duration::from_secs(4 * 3600),
            child_lifetime: Duration::from_secs(3600),
            child_life_kbytes: None,
            rekey_margin: Duration::from_secs(540),
            retransmit: Retransmit::default(),
            dpd_delay: None,
            nat_traversal: true,
            force_encap: false,
            local_ts: vec![TrafficSelector::parse("::/0").expect("valid default")],
            remote_ts: vec![TrafficSelector::parse("::/0").expect("valid default")],
            max_half_open: 4096,
            max_half_open_per_peer: 16,
            natt_port: 4500,
            xauth_timeout: Duration::from_secs(60),
            xauth_max_failures: 5,
            xauth_failure_window: Duration::from_secs(900),
        }
    }
}
