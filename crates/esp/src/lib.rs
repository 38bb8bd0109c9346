//! A sans-IO ESP data plane (RFC 4303) for IPv6, used over a TUN device where the kernel has
//! no XFRM, in the manner of strongSwan's kernel-libipsec and boringtun.
//!
//! ```text
//!   TUN ──IPv6──▶ Esp::encapsulate ──EspAction::ToNetwork──▶ raw socket (proto 50) / UDP 4500
//!                   │ SPD (first match) → SA → seal
//!   TUN ◀─ToTun── Esp::decapsulate ◀──ESP (from the SPI on)── raw socket / UDP 4500
//!                   │ SPI → SA → replay check → ICV/decrypt → mark → padding → selectors
//! ```
//!
//! What is implemented, by module:
//! * [`Sad`] (RFC 4301 §4.4.2): SAs by handle, inbound SAs by SPI, and an index of the SAs'
//!   time-limit deadlines, so [`Esp::poll_timeout`] is O(log n) and
//!   [`Esp::handle_timeout`] visits only the SAs that are due.
//!   SAs are boxed in their slots and their key schedules boxed at their own sizes.
//! * [`Spd`] (RFC 4301 §4.4.1): ordered PROTECT / BYPASS / DISCARD entries with selectors on
//!   address prefixes, next protocol, ports and Mobility Header type; first match wins,
//!   found through a hash index of the entries with a single-address (`/128`) side, so a home
//!   agent's per-node policies are not scanned per packet.
//! * [`Esp`] (RFC 4303 §3.3, §3.4): tunnel and transport mode, raw ESP and ESP in UDP
//!   (RFC 3948), dummy packets discarded (§2.6), TFC padding after a tunnel-mode inner packet
//!   ignored (§2.7).
//! * [`replay`] (RFC 4303 §3.4.3): a 1024-packet window, checked before the ICV and advanced
//!   only after it verified.
//! * [`Transform`]: AES-GCM-16 (RFC 4106) through ring; AES-CBC (RFC 3602) with HMAC-SHA1-96
//!   (RFC 2404) or HMAC-SHA-256-128 (RFC 4868) through RustCrypto; keys expanded once per SA.
//! * [`Lifetime`] (RFC 4301 §4.4.2.1): soft and hard limits by bytes, packets and time, which
//!   raise [`SaEvent`]s; sequence numbers never wrap (RFC 4303 §3.3.3).
//! * [`packet`]: the IPv6 extension-header walk that finds the selector fields, including
//!   Mobile IPv6's Home Address option and type 2 Routing header (RFC 6275, RFC 3776).
//!
//! The engine takes the current time as an argument and reads no clock, opens no socket and
//! needs no random source (GCM IVs are the sequence number, CBC IVs are derived as NIST SP
//! 800-38A App. C describes). Per packet it allocates nothing: output goes into a buffer the
//! caller owns and reuses. Bad input is never a panic; it is a counted, logged
//! [`DropReason`].
//!
//! Not implemented: Extended Sequence Numbers (IKEv1 does not negotiate them), 3DES and NULL
//! encryption, AH, IPv4 inside or outside (selectors are IPv6 only), IPComp, multicast SAs,
//! ACQUIRE for policies without an SA, checksum fix-ups for transport mode behind a NAT
//! (RFC 3948 §3.1.2; IPv6 has no NAT here).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod datagram;
mod engine;
pub mod lifetime;
pub mod packet;
pub mod replay;
mod sad;
mod spd;
mod stats;
mod transform;
pub mod wire;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_timers;

/// Internals for fuzz targets only (`shared/style.md` §16: fuzz through the crypto).
#[cfg(feature = "fuzzing")]
pub mod fuzzing {
    use crate::Esp;

    /// Builds an ESP packet whose plaintext (payload, padding, Pad Length, Next Header) is
    /// `plaintext`, authenticated with the keys of the inbound SA `spi` of `esp`, so that a
    /// fuzzer reaches the checks behind the ICV. `false` if there is no such SA.
    pub fn seal_plaintext(
        esp: &Esp,
        spi: u32,
        seq: u32,
        plaintext: &[u8],
        out: &mut Vec<u8>,
    ) -> bool {
        esp.seal_plaintext(spi, seq, plaintext, out)
    }
}

pub use engine::{BatchItem, Esp, EspAction, SEQ_SOFT_LIMIT, Transmit, TransportPayload};
pub use lifetime::{Lifetime, Limits};
pub use packet::{PacketInfo, build_ipv6_packet};
pub use sad::{Mode, SaCounters, SaHandle, SaInfo, SaParams, Sad};
pub use spd::{Direction, PolicyAction, PolicyId, Prefix, Selector, Spd, SpdEntry};
pub use stats::{DropCounters, DropReason, Stats};
pub use transform::Transform;
pub use wire::{Udp4500, classify_udp_4500};

/// Why an SA could not be installed or changed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SaError {
    /// SPI 0 is reserved (RFC 4303 §2.1).
    #[error("SPI 0 is reserved")]
    InvalidSpi,
    /// An inbound SA with this SPI exists already.
    #[error("an inbound SA with SPI {0:#010x} exists already")]
    DuplicateSpi(u32),
    /// A key of the wrong length for the transform.
    #[error("{what} has the wrong length ({got} bytes)")]
    KeyLength {
        /// Which key.
        what: &'static str,
        /// Its length.
        got: usize,
    },
    /// A transform variant this data plane does not offer.
    #[error("unsupported transform: {0}")]
    Unsupported(&'static str),
    /// The handle names no SA.
    #[error("no such SA")]
    UnknownSa,
    /// Over 2^32 SA slots.
    #[error("SAD full")]
    Full,
}

/// Something the daemon must act on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SaEvent {
    /// A soft limit was reached (or the sequence number passed [`SEQ_SOFT_LIMIT`]): rekey.
    SoftExpired {
        /// The SA.
        handle: SaHandle,
        /// Its SPI.
        spi: u32,
        /// Its direction.
        direction: Direction,
    },
    /// A hard limit was reached or the sequence numbers ran out: the SA drops all traffic
    /// from now on; remove it (and its policies).
    HardExpired {
        /// The SA.
        handle: SaHandle,
        /// Its SPI.
        spi: u32,
        /// Its direction.
        direction: Direction,
    },
}
