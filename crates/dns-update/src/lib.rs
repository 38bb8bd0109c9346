//! DNS UPDATE (RFC 2136) signed with TSIG (RFC 8945), sans-IO: what the home agent sends to
//! put a mobile node's home address into DNS and take it out again (RFC 5026 §6).
//!
//! * [`name`]: domain names: text validation (labels ≤ 63 octets, names ≤ 255, every name
//!   absolute with the trailing dot optional on input), case-insensitive comparison (RFC 4343),
//!   [`Name::is_subdomain_of`] for per-peer suffix rules, reading compressed names with loop
//!   protection (RFC 1035 §4.1.4).
//! * [`wire`]: the UPDATE message (RFC 2136 §2): zone section (ZNAME, SOA, IN), no
//!   prerequisites, an update section that replaces a name's AAAA RRset (delete RRset §2.5.2,
//!   then add §2.5.1) or deletes it; reading the response (ID, QR, opcode, RCODE, the TSIG
//!   record), robust against any input.
//! * [`tsig`]: signing the request (RFC 8945 §4.3.1, §4.3.3, §5.1) and verifying the response
//!   with the request MAC as prefix (§4.3.2, §5.4): key and algorithm, constant-time MAC
//!   comparison, Time Signed within Fudge (§5.2.3), the unsigned BADKEY/BADSIG answers of
//!   §5.3.2. HMAC-SHA256 (required), SHA-1, SHA-224, SHA-384, SHA-512.
//! * [`key`]: [`TsigKey`] (secret zeroized on drop, never printed) and the parser of BIND's
//!   `tsig-keygen` format with errors that say what is wrong.
//! * [`update`]: the transaction engine [`Update`]: `poll_transmit` / `handle_datagram` /
//!   `poll_timeout` / `handle_timeout`, retransmission, the [`Outcome`].
//!
//! No sockets, no clock: the caller passes `now: Instant` for timers and the wall-clock time
//! (seconds since the epoch) for TSIG, and sends and receives the datagrams itself, on a
//! connected or unconnected UDP socket (the engine checks the source address).
//!
//! Not covered: prerequisites (RFC 2136 §2.4), TCP (needed only for large messages), SIG(0)
//! and GSS-TSIG, TSIG on multi-message responses (RFC 8945 §5.3.1), truncated MACs, EDNS, and
//! record types other than AAAA in the update section.
//!
//! ```
//! use std::time::Instant;
//! use dns_update::{Name, Outcome, TsigKey, Update, UpdateConfig, UpdateRequest};
//! let key = TsigKey::from_bind_file(
//!     r#"key "ha-key" { algorithm hmac-sha256; secret "V1oILbFeMjnJAdFl0BC05Mno9ZJ1tRIEvYwXCSQKdcA="; };"#,
//!     Some("ha-key"),
//! )?;
//! let zone: Name = "example.".parse()?;
//! let fqdn: Name = "mn1.example.".parse()?;
//! assert!(fqdn.is_subdomain_of(&zone));
//! let req = UpdateRequest::replace_aaaa(zone, fqdn, &["2001:db8:1::1000".parse()?], 300)?;
//! let now = Instant::now();
//! let mut up = Update::new(UpdateConfig::new("[2001:db8:1::2]:53".parse()?), &req, &key, 7, now, 1_800_000_000);
//! let mut buf = Vec::new();
//! while let Some(t) = up.poll_transmit(now, &mut buf) {
//!     // socket.send_to(&buf[..t.size], t.dst)?;
//! #   let _ = t;
//! }
//! // … recv_from → up.handle_datagram(now, from, &data, unix_time);
//! // … timer → up.handle_timeout(now);
//! // match up.outcome() { Some(Outcome::Done) => …, Some(Outcome::Refused { rcode, .. }) => … }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod key;
pub mod name;
pub mod tsig;
pub mod update;
pub mod wire;

pub use key::{Algorithm, KeyError, Secret, TsigKey};
pub use name::{Name, NameError};
pub use tsig::{DEFAULT_FUDGE, TsigError, Verified, sign_request, verify_response};
pub use update::{BadResponse, Outcome, Transmit, Update, UpdateConfig, UpdateStats};
pub use wire::{
    BuildError, Rcode, Response, RrType, TsigRecord, UpdateOp, UpdateRequest, WireError,
};
