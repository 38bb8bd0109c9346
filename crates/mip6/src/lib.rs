//! Mobile IPv6 home registration (RFC 6275), sans-IO: what the mobile node and the home agent
//! exchange over the RFC 3776 transport-mode SAs once the IKEv1 bootstrap is done.
//!
//! * [`mh`]: the Mobility Header codec (§6.1) with the Binding Refresh Request, Binding
//!   Update, Binding Acknowledgement and Binding Error, the mobility options (§6.2, and the DNS
//!   Update option of RFC 5026 §6.2) and the checksum over the IPv6 pseudo-header.
//! * [`ext`]: the Home Address destination option (§6.3), the type 2 Routing header (§6.4),
//!   building the Binding Update / Acknowledgement packets and finding the Mobility Header in a
//!   received packet.
//! * [`cache`]: the home agent's binding cache and its Binding Update processing (§9.5.1,
//!   §10.3.1, §10.3.2).
//! * [`bul`]: the mobile node's binding update list entry for its home agent (§11.7, §11.8).
//! * [`status`]: Binding Acknowledgement and Binding Error status codes with their names.
//! * [`seq`]: sequence numbers compared modulo 2^16 (§9.5.1).
//!
//! No sockets and no clock: the engines take `now: Instant` and say when they next need to be
//! called (`poll_timeout`); outputs are Mobility Header bytes written into caller buffers and
//! events. IPsec is the caller's: a Binding Update reaches [`BindingCache::handle_bu`] only if
//! it came through the transport-mode ESP SA, with the caller's verdict on whether the SA's
//! IKE identity holds the home address (RFC 3776 §4).
//!
//! # Wire contract
//!
//! Codecs follow the workspace's view/repr split: [`MhPacket::new_checked`] validates lengths
//! once so its accessors cannot panic, [`Message::parse`] builds an owned representation, and
//! [`Message::emit`] writes the canonical encoding (padding per option alignment, length a
//! multiple of 8, checksum filled in). Nothing here panics on input.
//!
//! Not covered: route optimization (return routability, correspondent registrations, HoTI/HoT
//! and CoTI/CoT), Duplicate Address Detection and prefix discovery, dynamic home agent
//! discovery, NEMO and the other Mobility Header extensions (their options round-trip raw).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod bul;
pub mod cache;
pub mod ext;
pub mod mh;
pub mod seq;
pub mod status;

pub use bul::{
    BaIgnored, BulConfig, BulEvent, BulState, BulStatus, HomeRegistration, Transmit as BuTransmit,
};
pub use cache::{
    Binding, BindingCache, BindingChange, BuOutcome, CacheConfig, CacheEvent, DropReason, Refusal,
};
pub use ext::{
    MobilityPacket, PacketError, build_ba_packet, build_bu_packet, build_mh_packet,
    home_address_destination_options, type2_routing_header,
};
pub use mh::{
    BaFlags, BindingAck, BindingError, BindingRefreshRequest, BindingUpdate, BuFlags,
    DnsUpdateOption, DnsUpdateStatus, IPPROTO_MH, Message, MhError, MhErrorResponse, MhPacket,
    MhType, MobilityOption,
};
pub use seq::seq_greater;
pub use status::{BaStatus, BeStatus};
