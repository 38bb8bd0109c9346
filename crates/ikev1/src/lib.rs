//! A sans-IO IKEv1 engine (RFC 2409) for both roles, as Mobile IPv6 bootstrapping needs it
//! (draft-devarapalli-mip6-ikev1-bootstrap): Main Mode with pre-shared keys or RSA signatures,
//! Quick Mode for tunnel and transport ESP SAs (RFC 3776 selectors with protocol 135), the
//! Transaction exchange for Mode Config and XAUTH (draft-ietf-ipsec-isakmp-xauth-06, both
//! roles, Generic and RADIUS-CHAP; with the XAUTHInitPreShared and HybridInitRSA methods of
//! draft-ietf-ipsec-isakmp-hybrid-auth-05), Informational (Delete, Notify, DPD per RFC 3706)
//! and NAT traversal (RFC 3947).
//!
//! The engine owns no socket, clock or random source: the driver passes in each received
//! datagram and the current time, and takes out datagrams to send, events and the next
//! deadline ([`Engine`] documents the calling order). The wire codec is the `isakmp` crate;
//! the primitives and the key schedule are in [`crypto`].
//!
//! Not implemented: Aggressive Mode (it exposes the identity and is not needed here), IKE
//! fragmentation, DSS/ECDSA and encryption-based authentication, AH and IPComp.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod auth;
mod child;
mod config;
pub mod crypto;
mod engine;
mod event;
mod exchange;
#[cfg(test)]
mod fuzz_regressions;
mod identity;
mod ike_sa;
mod informational;
mod main_mode;
mod peer_index;
mod phase2;
mod proposal;
mod quick_mode;
mod sa_table;
mod transaction;
mod util;
mod xauth;
#[cfg(test)]
mod xauth_tests;

pub use child::{ChildSa, EspKeys, Mode, TrafficSelector};
pub use config::{Config, LocalAuth, PeerAuth, PeerConfig, Retransmit};
pub use engine::{ApiError, ChildPolicy, Counters, Engine, IkeSaInfo, NattKind, classify_natt};
pub use event::{ChildRequest, Event, FailReason, IkeSaId, ModeConfig, Transmit};
pub use identity::Identity;
pub use proposal::{
    EspEncr, EspInteg, EspProposal, IkeProposal, Phase1Offer, Phase2Offer, ProposalError,
};
pub use xauth::{XauthCredentials, XauthResponse, XauthType, chap_response};
