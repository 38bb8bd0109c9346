//! A sans-IO RADIUS authentication client: the home agent asks a RADIUS server whether an XAUTH
//! user's credentials are good (draft §4: "SHOULD check the node with RADIUS CHAP").
//!
//! - [`wire`]: the packet and attribute codec (RFC 2865 §3, §5).
//! - [`crypto`]: CHAP response (RFC 1994 §4.1 / RFC 2865 §5.3), User-Password hiding
//!   (RFC 2865 §5.2), Response Authenticator (RFC 2865 §3), Message-Authenticator
//!   (RFC 2869 §5.14, RFC 3579 §3.2); [`SharedSecret`] and [`Password`] are zeroized and never
//!   printed.
//! - [`client`]: the [`Client`] engine — Access-Request with CHAP (computed here, or a response
//!   computed by the mobile node and forwarded) or, only when configured, PAP;
//!   Message-Authenticator on every request and required on every answer (configurable);
//!   retransmission and failover (RFC 5080 §2.2.1); a [`Verdict`] per request.
//!
//! The crate does no I/O and reads no clock: the driver owns one UDP socket, passes `now` in and
//! follows the calling order on [`Client`]:
//!
//! ```
//! use std::time::{Duration, Instant};
//! use radius::{AccessRequest, Client, ClientConfig, Outcome, Password, SharedSecret};
//!
//! let secret = SharedSecret::new("s3cret").expect("non-empty");
//! let server = radius::parse_server("2001:db8:1::2").unwrap(); // port 1812
//! let mut config = ClientConfig::new(vec![server], secret);
//! config.nas_identifier = Some("mip6-ha".into());
//! config.tries = 1;
//! let rng = |buf: &mut [u8]| buf.fill(7); // the OS RNG in real code
//! let mut client = Client::new(config, rng).unwrap();
//!
//! let now = Instant::now();
//! let req = client.start(AccessRequest::chap("mnuser", Password::new("mnpass"))).unwrap();
//! let mut buf = Vec::new();
//! let tx = client.poll_transmit(now, &mut buf).expect("the request");
//! assert_eq!(tx.destination, server);
//! // socket.send_to(&buf[..tx.size], tx.destination); answers go to
//! // client.handle_datagram(now, from, &data). Here none comes:
//! assert_eq!(client.poll_timeout(), Some(now + Duration::from_secs(3)));
//! client.handle_timeout(now + Duration::from_secs(3));
//! let verdict = client.poll_event().expect("a verdict");
//! assert_eq!(verdict.request, req);
//! match verdict.outcome {
//!     Outcome::Accept(reply) => println!("accepted: {:?}", reply.reply_message()),
//!     Outcome::Reject(reply) => println!("rejected: {:?}", reply.reply_message()),
//!     Outcome::Challenge(reply) => println!("challenged, State {:?}", reply.state),
//!     Outcome::Timeout => println!("no server answered"),
//! }
//! ```
//!
//! # Wire codec contract
//!
//! [`wire::Packet`] is a view over bytes. On untrusted input use [`wire::Packet::new_checked`]:
//! it checks the header, the Length field (20..=4096, no longer than the data; octets past it are
//! padding, RFC 2865 §3) and that the attributes tile the packet; after it no accessor panics.
//! [`wire::PacketRepr::parse`] reads a packet into owned form, [`wire::PacketRepr::buffer_len`]
//! sizes the buffer and [`wire::PacketRepr::emit`] writes it, refusing values over 253 octets and
//! packets over 4096.
//!
//! # What is left out
//!
//! Accounting (RFC 2866), Status-Server (RFC 5997), EAP (RFC 3579), CoA/Disconnect (RFC 5176),
//! RADIUS/TLS and /DTLS, and the server side.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod client;
pub mod crypto;
pub mod wire;

use std::fmt;

pub use client::{
    AccessRequest, CHAP_CHALLENGE_LEN, Client, ClientConfig, ConfigError, Credentials,
    DEFAULT_PORT, DEFAULT_TIMEOUT, DEFAULT_TRIES, DropReason, MAX_OUTSTANDING, Outcome,
    RandomSource, Reply, RequestError, RequestHandle, Stats, Transmit, Verdict, parse_server,
};
pub use crypto::{Password, SharedSecret, chap_response};
pub use wire::{AttributeRepr, AttributeType, Code, WireError};

/// Prints bytes as a quoted string when they are printable ASCII, as hex otherwise. For
/// attribute values in logs and `Debug`.
pub(crate) struct HexOrText<'a>(pub(crate) &'a [u8]);

impl fmt::Display for HexOrText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.0.is_empty() && self.0.iter().all(|b| (0x20..0x7f).contains(b)) {
            write!(f, "{:?}", String::from_utf8_lossy(self.0))
        } else {
            f.write_str("0x")?;
            for b in self.0 {
                write!(f, "{b:02x}")?;
            }
            Ok(())
        }
    }
}
