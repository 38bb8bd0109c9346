//! Engine configuration: who we are, how we authenticate, which peers we accept, the
//! proposals we offer and the timers we keep. The daemons build this from their TOML files.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use zeroize::Zeroizing;

use crate::child::TrafficSelector;
use crate::crypto::{Certificate, RsaPrivateKey};
use crate::identity::Identity;
use crate::proposal::{EspProposal, IkeProposal};

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
}

impl fmt::Debug for LocalAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Psk => f.write_str("Psk"),
            Self::RsaSig { .. } => f.write_str("RsaSig"),
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
}

impl fmt::Debug for PeerAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Psk(_) => f.write_str("Psk(<redacted>)"),
            Self::RsaSig { cas } => write!(f, "RsaSig({} CAs)", cas.len()),
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
        }
    }
}
