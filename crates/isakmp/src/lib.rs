//! ISAKMP / IKEv1 wire codec.
//!
//! This crate turns ISAKMP messages into Rust values and back. It implements
//! the framing of RFC 2408 (header §3.1, generic payload header §3.2, data
//! attributes §3.3, and the payloads of §3.4–3.16), the IPsec DOI of RFC 2407
//! (situation §4.6.1, identification §4.6.2, attribute numbers §4.5), the IKE
//! numbers of RFC 2409 App. A, NAT-T payloads of RFC 3947, DPD notifications of
//! RFC 3706, and the Attribute payload of Mode Config
//! (draft-ietf-ipsec-isakmp-mode-cfg-05) and XAUTH
//! (draft-ietf-ipsec-isakmp-xauth-06).
//!
//! It does **not** do cryptography (encryption, HASH, NAT-D hashes, key
//! derivation), exchange logic, or any I/O: that is the `ikev1` engine's job.
//!
//! # Contract
//!
//! * Parsing takes untrusted bytes and never panics. Every length is checked
//!   before it is used, errors are typed ([`WireError`], naming the structure
//!   that failed), and allocation is bounded by the input length (a chain has
//!   at most [`MAX_PAYLOADS`] payloads).
//! * Registry numbers are open newtypes ([`PayloadType`], [`NotifyType`], …):
//!   unknown values, unknown payload types ([`Payload::Unknown`]) and both
//!   attribute forms ([`AttrValue`]) survive a round trip.
//! * For every message whose RESERVED fields are zero (as RFC 2408 requires
//!   of senders), `Message::parse(m)?.emit() == m`. Non-zero RESERVED bytes
//!   are accepted and re-emitted as zero.
//! * Emitting cannot fail. Values that do not fit their wire field (a
//!   payload over 65535 bytes, an SPI over 255 bytes, an attribute type using
//!   the AF bit) are caller bugs: debug builds assert, release builds
//!   truncate.
//! * [`HeaderPacket::new_checked`] gives a view whose accessors cannot panic;
//!   [`HeaderPacket::new_unchecked`] is for buffers the caller built.
//!
//! # Encrypted messages
//!
//! [`Message::parse`] handles plaintext messages only and returns
//! [`WireError::Encrypted`] for the rest. For those, parse the [`Header`],
//! decrypt `buf[HEADER_LEN..]`, then call [`split_payloads`] with
//! `header.next_payload` on the plaintext (trailing padding is allowed there)
//! and [`Payload::parse`] on each [`RawPayload`]. The raw slices are what
//! HASH(1), HASH_I and friends are computed over.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod attr;
mod cert;
mod config;
mod delete;
mod error;
mod header;
mod id;
mod message;
mod natoa;
mod notify;
mod payload;
mod reader;
mod registry;
mod sa;

pub mod cfg;
pub mod ipsec;
pub mod oakley;
pub mod vendor;

pub use attr::{AttrValue, Attribute, emit_attributes, parse_attributes};
pub use cert::CertPayload;
pub use config::ConfigPayload;
pub use delete::DeletePayload;
pub use error::WireError;
pub use header::{HEADER_LEN, Header, HeaderPacket, ISAKMP_VERSION};
pub use id::IdPayload;
pub use message::Message;
pub use natoa::NatOaPayload;
pub use notify::NotifyPayload;
pub use payload::{
    GENERIC_HEADER_LEN, MAX_PAYLOADS, Payload, RawPayload, emit_payloads, split_payloads,
};
pub use registry::{
    CertEncoding, CfgType, ExchangeType, Flags, IdType, NotifyType, PayloadType, ProtocolId,
};
pub use sa::{Proposal, SaPayload, Transform};
