//! The home agent's DHCPv6 relay agent (RFC 8415 §19, message formats §9), sans-IO.
//!
//! Mobile nodes sit behind IKE/ESP tunnels; the home agent relays their DHCPv6 client messages to
//! the operator's DHCPv6 server on the home link and sends the answers back through the right
//! tunnel. Every tunnel sits behind the same "interface", so the Interface-ID option (RFC 8415
//! §21.18) carries an opaque handle of the tunnel (id ‖ per-opening nonce): a handle of a tunnel
//! that is gone is refused, and never matches a newer tunnel with the same id.
//!
//! * [`envelope`]: our own Relay-Forw/Relay-Repl codec (dhcproto's is broken, see the module).
//! * [`Relay`]: the engine. No sockets, no clock reads: the caller passes `now`, feeds client
//!   messages from tunnels ([`Relay::handle_client`]) and datagrams from the home link
//!   ([`Relay::handle_server`]), sends the returned [`Transmit`]s / [`Delivery`]s, drives
//!   [`Relay::handle_timeout`] at [`Relay::poll_timeout`] and drains [`Relay::poll_event`].
//!
//! The relay reads the Replies it forwards (lease snooping) and records which tunnel identity
//! holds which address, until the valid lifetime ends, a Release/Decline is relayed, or the
//! tunnel closes.
//!
//! Not covered: relaying for other relays (we only relay for tunnels; a Relay-Forw arriving from
//! the home link is dropped), IA_TA/IA_PD snooping, Reconfigure-specific handling (a Reconfigure
//! is delivered like any server message).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod envelope;
mod relay;

pub use envelope::{EnvelopeError, RelayMessage, RelayOption, RelayType};
pub use relay::{
    ALL_DHCP_SERVERS, ApiError, CLIENT_PORT, Config, Counters, Delivery, Drop, Event, GoneReason,
    Lease, MAX_LEASES_PER_TUNNEL, Relay, SERVER_PORT, Transmit, TunnelId,
};
