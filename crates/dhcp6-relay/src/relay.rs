//! The relay engine (RFC 8415 §19.1 relaying a client message, §19.2 relaying a Relay-reply).

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::{Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use dhcproto::v6::{DhcpOption, DhcpOptions, Message, MessageType, Status};
use dhcproto::{Decodable, Decoder};
use tracing::{debug, trace};

use crate::envelope::{EnvelopeError, HOP_COUNT_LIMIT, RelayMessage, RelayOption, RelayType};
use dhcp6_client::guard;

/// DHCPv6 client port (RFC 8415 §7.2).
pub const CLIENT_PORT: u16 = 546;
/// DHCPv6 server/relay port (RFC 8415 §7.2).
pub const SERVER_PORT: u16 = 547;
/// All_DHCP_Servers, ff05::1:3 (RFC 8415 §7.1), used when no server is configured.
pub const ALL_DHCP_SERVERS: Ipv6Addr = Ipv6Addr::new(0xff05, 0, 0, 0, 0, 0, 1, 3);
/// At most this many leases are recorded per tunnel.
pub const MAX_LEASES_PER_TUNNEL: usize = 4;
/// Length of the Interface-ID handle: tunnel id (8) ‖ nonce (8).
const HANDLE_LEN: usize = 16;
/// Undrained events beyond this are discarded (bounded state).
const MAX_EVENTS: usize = 4096;

/// Relay configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The home agent's address on the home link: link-address of every Relay-Forw.
    pub link_address: Ipv6Addr,
    /// Unicast server addresses; empty = [`ALL_DHCP_SERVERS`].
    pub servers: Vec<Ipv6Addr>,
    /// Hop-count limit (RFC 8415 §7.6: 8).
    pub hop_limit: u8,
    /// Maximum number of open tunnels.
    pub max_tunnels: usize,
    /// Seed of the per-tunnel nonce counter. Use a random value so that handles differ across
    /// restarts of the home agent.
    pub nonce_seed: u64,
}

impl Config {
    /// A configuration with the defaults: ff05::1:3, hop limit 8, 1024 tunnels, seed 0.
    pub fn new(link_address: Ipv6Addr) -> Self {
        Self {
            link_address,
            servers: Vec::new(),
            hop_limit: HOP_COUNT_LIMIT,
            max_tunnels: 1024,
            nonce_seed: 0,
        }
    }
}

/// A tunnel, named by the caller (the daemon maps it to the IKE SA).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TunnelId(pub u64);

impl fmt::Display for TunnelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tunnel#{}", self.0)
    }
}

/// A datagram to send to a server on the home link (from the relay's port 547).
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct Transmit {
    /// Server address and port 547.
    pub dst: SocketAddr,
    /// The Relay-Forw.
    pub payload: Vec<u8>,
}

/// A server message to send down a tunnel, as UDP from port 547 to `dst`:`dst_port`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct Delivery {
    /// The tunnel to send it through.
    pub tunnel: TunnelId,
    /// The client's address (peer-address of the Relay-Repl).
    pub dst: Ipv6Addr,
    /// 546.
    pub dst_port: u16,
    /// The inner DHCPv6 message.
    pub payload: Vec<u8>,
}

/// One recorded lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The tunnel the Reply went through.
    pub tunnel: TunnelId,
    /// The tunnel's IKE identity.
    pub identity: String,
    /// The leased address.
    pub address: Ipv6Addr,
    /// End of the valid lifetime.
    pub valid_until: Instant,
}

/// Why a lease ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GoneReason {
    /// The valid lifetime ran out.
    Expired,
    /// The client released or declined it, or the server gave it lifetime 0.
    Released,
    /// The tunnel was closed.
    TunnelClosed,
    /// The server leased the address to another tunnel.
    Reassigned,
}

/// Engine events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A Reply bound (or renewed) an address for a tunnel.
    LeaseBound {
        /// Tunnel.
        tunnel: TunnelId,
        /// Its identity.
        identity: String,
        /// The address.
        address: Ipv6Addr,
        /// End of the valid lifetime.
        valid_until: Instant,
    },
    /// A recorded lease ended.
    LeaseGone {
        /// Tunnel.
        tunnel: TunnelId,
        /// Its identity.
        identity: String,
        /// The address.
        address: Ipv6Addr,
        /// Why.
        reason: GoneReason,
    },
}

/// Why an input was dropped. Every drop is counted and logged at debug.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Drop {
    /// A client message from a tunnel that is not open.
    #[error("{0} is not open")]
    UnknownTunnel(TunnelId),
    /// An empty datagram.
    #[error("empty message")]
    Empty,
    /// From a tunnel: the message type is not a client message.
    #[error("message type {0} is not a client message")]
    NotClientMessage(u8),
    /// From a tunnel: too long to fit a Relay Message option.
    #[error("client message of {0} bytes is too long to relay")]
    TooLong(usize),
    /// From the home link: malformed relay envelope.
    #[error("malformed relay envelope: {0}")]
    Malformed(EnvelopeError),
    /// From the home link: not a relay message at all.
    #[error("message type {0} from the home link is not a Relay-Repl")]
    NotRelayRepl(u8),
    /// From the home link: a Relay-Forw (we relay only for tunnels, not for other relays).
    #[error("Relay-Forw from the home link (hop-count {hop_count}): we only relay for tunnels")]
    RelayForwFromHomeLink {
        /// Its hop count.
        hop_count: u8,
    },
    /// A Relay-Repl at or over the hop-count limit.
    #[error("hop-count {0} at or over the limit")]
    HopLimit(u8),
    /// A Relay-Repl that is not for our hop (hop-count, link-address, or a nested Relay-Repl).
    #[error("Relay-Repl for another relay's hop")]
    NotOurHop,
    /// From a source that is not a configured server.
    #[error("Relay-Repl from {0}, which is not a configured server")]
    UnknownServer(SocketAddr),
    /// A Relay-Repl without Interface-ID.
    #[error("Relay-Repl without Interface-ID")]
    NoInterfaceId,
    /// An Interface-ID that is not one of our handles, or whose tunnel is not open.
    #[error("unknown Interface-ID")]
    UnknownInterfaceId,
    /// An Interface-ID of a tunnel id that has since been closed (and maybe reopened).
    #[error("stale Interface-ID of {0}")]
    StaleInterfaceId(TunnelId),
    /// The inner message of a Relay-Repl is not a server→client message.
    #[error("inner message type {0} is not a server message")]
    NotServerMessage(u8),
}

impl Drop {
    /// A short stable name for counters.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::UnknownTunnel(_) => "unknown-tunnel",
            Self::Empty => "empty",
            Self::NotClientMessage(_) => "not-client-message",
            Self::TooLong(_) => "too-long",
            Self::Malformed(_) => "malformed",
            Self::NotRelayRepl(_) => "not-relay-repl",
            Self::RelayForwFromHomeLink { .. } => "relay-forw-from-home-link",
            Self::HopLimit(_) => "hop-limit",
            Self::NotOurHop => "not-our-hop",
            Self::UnknownServer(_) => "unknown-server",
            Self::NoInterfaceId => "no-interface-id",
            Self::UnknownInterfaceId => "unknown-interface-id",
            Self::StaleInterfaceId(_) => "stale-interface-id",
            Self::NotServerMessage(_) => "not-server-message",
        }
    }
}

/// Misuse of the engine API.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// `max_tunnels` tunnels are already open.
    #[error("too many tunnels (limit {0})")]
    TooManyTunnels(usize),
    /// The tunnel id is already open.
    #[error("{0} is already open")]
    AlreadyOpen(TunnelId),
}

/// Engine counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    /// Client messages relayed up (one per message, not per server).
    pub relayed_up: u64,
    /// Server messages delivered down a tunnel.
    pub delivered_down: u64,
    /// Drops by [`Drop::kind`].
    pub drops: std::collections::BTreeMap<&'static str, u64>,
}

#[derive(Debug)]
struct Tunnel {
    identity: String,
    nonce: u64,
    leases: Vec<(Ipv6Addr, Instant)>,
}

/// The relay engine.
///
/// Calling order: [`open_tunnel`](Self::open_tunnel) when an IKE SA may carry DHCPv6;
/// [`handle_client`](Self::handle_client) for each UDP/547 datagram out of a tunnel (send the
/// returned [`Transmit`]s from the home-link socket bound to port 547);
/// [`handle_server`](Self::handle_server) for each datagram on that socket (send the
/// [`Delivery`] through its tunnel); [`handle_timeout`](Self::handle_timeout) once `now` reaches
/// [`poll_timeout`](Self::poll_timeout); drain [`poll_event`](Self::poll_event) after each call;
/// [`close_tunnel`](Self::close_tunnel) when the SA goes away.
#[derive(Debug)]
pub struct Relay {
    config: Config,
    tunnels: HashMap<TunnelId, Tunnel>,
    next_nonce: u64,
    events: VecDeque<Event>,
    counters: Counters,
}

fn is_client_type(t: u8) -> bool {
    // RFC 8415 §7.3: Solicit, Request, Confirm, Renew, Rebind, Release, Decline,
    // Information-request.
    matches!(t, 1 | 3 | 4 | 5 | 6 | 8 | 9 | 11)
}

fn is_server_type(t: u8) -> bool {
    // Advertise, Reply, Reconfigure.
    matches!(t, 2 | 7 | 10)
}

fn handle_bytes(id: TunnelId, nonce: u64) -> [u8; HANDLE_LEN] {
    let mut h = [0u8; HANDLE_LEN];
    h[..8].copy_from_slice(&id.0.to_be_bytes());
    h[8..].copy_from_slice(&nonce.to_be_bytes());
    h
}

/// Addresses in the IA_NA options of `opts` whose IA (and IAADDR) status is not a failure,
/// with their valid lifetimes.
fn ia_na_addresses(opts: &DhcpOptions) -> Vec<(Ipv6Addr, u32)> {
    let mut out = Vec::new();
    for o in opts.iter() {
        let DhcpOption::IANA(ia) = o else { continue };
        if status_failed(&ia.opts) {
            continue;
        }
        for io in ia.opts.iter() {
            if let DhcpOption::IAAddr(a) = io
                && !status_failed(&a.opts)
            {
                out.push((a.addr, a.valid_life));
            }
        }
    }
    out
}

/// Decodes a client or server message with dhcproto, after [`guard::check_message`] (dhcproto
/// trusts option lengths: overflow panics, unbounded recursion).
fn decode_message(data: &[u8]) -> Result<Message, String> {
    guard::check_message(data).map_err(|e| e.to_string())?;
    Message::decode(&mut Decoder::new(data)).map_err(|e| e.to_string())
}

fn status_failed(opts: &DhcpOptions) -> bool {
    opts.iter()
        .any(|o| matches!(o, DhcpOption::StatusCode(s) if s.status != Status::Success))
}

impl Relay {
    /// A relay with no tunnels.
    pub fn new(config: Config) -> Self {
        let next_nonce = config.nonce_seed;
        Self {
            config,
            tunnels: HashMap::new(),
            next_nonce,
            events: VecDeque::new(),
            counters: Counters::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Counters so far.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Whether `id` is open.
    pub fn is_open(&self, id: TunnelId) -> bool {
        self.tunnels.contains_key(&id)
    }

    /// Opens a tunnel for the authenticated IKE `identity`. Its Interface-ID handle gets a fresh
    /// nonce, so handles of an earlier tunnel with the same id are refused.
    pub fn open_tunnel(&mut self, id: TunnelId, identity: String) -> Result<(), ApiError> {
        if self.tunnels.contains_key(&id) {
            return Err(ApiError::AlreadyOpen(id));
        }
        if self.tunnels.len() >= self.config.max_tunnels {
            return Err(ApiError::TooManyTunnels(self.config.max_tunnels));
        }
        let nonce = self.next_nonce;
        self.next_nonce = self.next_nonce.wrapping_add(1);
        debug!(tunnel = id.0, %identity, "relay: tunnel open");
        self.tunnels.insert(
            id,
            Tunnel {
                identity,
                nonce,
                leases: Vec::new(),
            },
        );
        Ok(())
    }

    /// Closes a tunnel; its leases end with [`GoneReason::TunnelClosed`]. Unknown ids are ignored.
    pub fn close_tunnel(&mut self, id: TunnelId) {
        let Some(t) = self.tunnels.remove(&id) else {
            return;
        };
        debug!(tunnel = id.0, identity = %t.identity, "relay: tunnel closed");
        for (address, _) in t.leases {
            self.push_event(Event::LeaseGone {
                tunnel: id,
                identity: t.identity.clone(),
                address,
                reason: GoneReason::TunnelClosed,
            });
        }
    }

    /// The Interface-ID handle currently used for `id`.
    pub fn interface_id(&self, id: TunnelId) -> Option<[u8; HANDLE_LEN]> {
        self.tunnels.get(&id).map(|t| handle_bytes(id, t.nonce))
    }

    fn drop_with(&mut self, d: Drop) -> Drop {
        *self.counters.drops.entry(d.kind()).or_insert(0) += 1;
        debug!(reason = %d, kind = d.kind(), "relay: dropped");
        d
    }

    fn push_event(&mut self, e: Event) {
        if self.events.len() >= MAX_EVENTS {
            debug!(event = ?e, "relay: event queue full, event discarded");
            return;
        }
        self.events.push_back(e);
    }

    /// A client message out of tunnel `tunnel`, from `src` (the client's inner source address).
    /// Returns one Relay-Forw per configured server (RFC 8415 §19.1.1).
    pub fn handle_client(
        &mut self,
        now: Instant,
        tunnel: TunnelId,
        src: Ipv6Addr,
        client_msg: &[u8],
    ) -> Result<Vec<Transmit>, Drop> {
        let Some(t) = self.tunnels.get(&tunnel) else {
            return Err(self.drop_with(Drop::UnknownTunnel(tunnel)));
        };
        let nonce = t.nonce;
        let Some(&msg_type) = client_msg.first() else {
            return Err(self.drop_with(Drop::Empty));
        };
        // Client messages only: a Relay-Forw out of a tunnel is refused as well (RFC 8415 §19:
        // we relay for tunnels, and a mobile node is not a relay).
        if !is_client_type(msg_type) {
            return Err(self.drop_with(Drop::NotClientMessage(msg_type)));
        }
        if client_msg.len() > usize::from(u16::MAX) {
            return Err(self.drop_with(Drop::TooLong(client_msg.len())));
        }
        // Release (8) / Decline (9): the addresses stop being this tunnel's now.
        if matches!(msg_type, 8 | 9) {
            match decode_message(client_msg) {
                Ok(m) => {
                    for (addr, _) in ia_na_addresses(m.opts()) {
                        self.remove_lease(tunnel, addr, GoneReason::Released);
                    }
                }
                Err(e) => debug!(
                    tunnel = tunnel.0,
                    error = %e,
                    "relay: Release/Decline not read: undecodable"
                ),
            }
        }
        let forw = RelayMessage {
            msg_type: RelayType::Forw,
            // RFC 8415 §19.1.1: from a client, hop-count 0.
            hop_count: 0,
            link_address: self.config.link_address,
            peer_address: src,
            options: vec![
                RelayOption::InterfaceId(handle_bytes(tunnel, nonce).to_vec()),
                RelayOption::RelayMsg(client_msg.to_vec()),
            ],
        };
        let Ok(payload) = forw.to_bytes() else {
            return Err(self.drop_with(Drop::TooLong(client_msg.len())));
        };
        let servers: Vec<Ipv6Addr> = if self.config.servers.is_empty() {
            vec![ALL_DHCP_SERVERS]
        } else {
            self.config.servers.clone()
        };
        self.counters.relayed_up += 1;
        trace!(tunnel = tunnel.0, %src, msg_type, ?now, "relay: client message relayed");
        Ok(servers
            .into_iter()
            .map(|s| Transmit {
                dst: SocketAddr::from((s, SERVER_PORT)),
                payload: payload.clone(),
            })
            .collect())
    }

    /// A datagram received on the home-link socket (port 547) from `from`. A Relay-Repl for
    /// one of our tunnels becomes a [`Delivery`] (RFC 8415 §19.2); anything else is dropped.
    pub fn handle_server(
        &mut self,
        now: Instant,
        from: SocketAddr,
        data: &[u8],
    ) -> Result<Delivery, Drop> {
        let Some(&msg_type) = data.first() else {
            return Err(self.drop_with(Drop::Empty));
        };
        if msg_type != crate::envelope::RELAY_FORW && msg_type != crate::envelope::RELAY_REPL {
            return Err(self.drop_with(Drop::NotRelayRepl(msg_type)));
        }
        let repl = match RelayMessage::parse(data) {
            Ok(m) => m,
            Err(e) => return Err(self.drop_with(Drop::Malformed(e))),
        };
        if repl.msg_type == RelayType::Forw {
            return Err(self.drop_with(Drop::RelayForwFromHomeLink {
                hop_count: repl.hop_count,
            }));
        }
        if !self.config.servers.is_empty() {
            let ok = match from {
                SocketAddr::V6(a) => self.config.servers.contains(a.ip()),
                SocketAddr::V4(_) => false,
            };
            if !ok {
                return Err(self.drop_with(Drop::UnknownServer(from)));
            }
        }
        if repl.hop_count >= self.config.hop_limit {
            return Err(self.drop_with(Drop::HopLimit(repl.hop_count)));
        }
        // Our Relay-Forws always have hop-count 0 and our link-address.
        if repl.hop_count != 0 || repl.link_address != self.config.link_address {
            return Err(self.drop_with(Drop::NotOurHop));
        }
        let Some(iid) = repl.interface_id() else {
            return Err(self.drop_with(Drop::NoInterfaceId));
        };
        let Ok(handle) = <[u8; HANDLE_LEN]>::try_from(iid) else {
            return Err(self.drop_with(Drop::UnknownInterfaceId));
        };
        let mut id8 = [0u8; 8];
        id8.copy_from_slice(&handle[..8]);
        let mut nonce8 = [0u8; 8];
        nonce8.copy_from_slice(&handle[8..]);
        let tunnel = TunnelId(u64::from_be_bytes(id8));
        let nonce = u64::from_be_bytes(nonce8);
        match self.tunnels.get(&tunnel) {
            None => return Err(self.drop_with(Drop::UnknownInterfaceId)),
            Some(t) if t.nonce != nonce => {
                return Err(self.drop_with(Drop::StaleInterfaceId(tunnel)));
            }
            Some(_) => {}
        }
        let inner = repl.relay_msg().unwrap_or_default();
        let Some(&inner_type) = inner.first() else {
            return Err(self.drop_with(Drop::Empty));
        };
        if inner_type == crate::envelope::RELAY_REPL {
            // A nested Relay-Repl is for a relay behind us; we have none.
            return Err(self.drop_with(Drop::NotOurHop));
        }
        if !is_server_type(inner_type) {
            return Err(self.drop_with(Drop::NotServerMessage(inner_type)));
        }
        if inner_type == 7 {
            self.snoop_reply(now, tunnel, inner);
        }
        self.counters.delivered_down += 1;
        trace!(tunnel = tunnel.0, peer = %repl.peer_address, inner_type, "relay: delivered");
        Ok(Delivery {
            tunnel,
            dst: repl.peer_address,
            dst_port: CLIENT_PORT,
            payload: inner.to_vec(),
        })
    }

    fn snoop_reply(&mut self, now: Instant, tunnel: TunnelId, inner: &[u8]) {
        let msg = match decode_message(inner) {
            Ok(m) if m.msg_type() == MessageType::Reply => m,
            Ok(_) => return,
            Err(e) => {
                debug!(tunnel = tunnel.0, error = %e, "relay: Reply not snooped: undecodable");
                return;
            }
        };
        if status_failed(msg.opts()) {
            debug!(
                tunnel = tunnel.0,
                "relay: Reply with failure status, no lease recorded"
            );
            return;
        }
        for (address, valid) in ia_na_addresses(msg.opts()) {
            if valid == 0 {
                self.remove_lease(tunnel, address, GoneReason::Released);
                continue;
            }
            let Some(valid_until) = now.checked_add(Duration::from_secs(u64::from(valid))) else {
                continue;
            };
            self.bind_lease(tunnel, address, valid_until);
        }
    }

    fn bind_lease(&mut self, tunnel: TunnelId, address: Ipv6Addr, valid_until: Instant) {
        // One holder per address: a lease on another tunnel ends.
        let others: Vec<TunnelId> = self
            .tunnels
            .iter()
            .filter(|(id, t)| **id != tunnel && t.leases.iter().any(|(a, _)| *a == address))
            .map(|(id, _)| *id)
            .collect();
        for other in others {
            self.remove_lease(other, address, GoneReason::Reassigned);
        }
        let Some(t) = self.tunnels.get_mut(&tunnel) else {
            return;
        };
        if let Some(l) = t.leases.iter_mut().find(|(a, _)| *a == address) {
            l.1 = valid_until;
        } else {
            if t.leases.len() >= MAX_LEASES_PER_TUNNEL {
                debug!(tunnel = tunnel.0, %address, "relay: lease not recorded: tunnel at its lease limit");
                return;
            }
            t.leases.push((address, valid_until));
        }
        let identity = t.identity.clone();
        debug!(tunnel = tunnel.0, %identity, %address, "relay: lease bound");
        self.push_event(Event::LeaseBound {
            tunnel,
            identity,
            address,
            valid_until,
        });
    }

    fn remove_lease(&mut self, tunnel: TunnelId, address: Ipv6Addr, reason: GoneReason) {
        let Some(t) = self.tunnels.get_mut(&tunnel) else {
            return;
        };
        let before = t.leases.len();
        t.leases.retain(|(a, _)| *a != address);
        if t.leases.len() == before {
            return;
        }
        let identity = t.identity.clone();
        debug!(tunnel = tunnel.0, %identity, %address, ?reason, "relay: lease gone");
        self.push_event(Event::LeaseGone {
            tunnel,
            identity,
            address,
            reason,
        });
    }

    /// Ends the leases whose valid lifetime is over at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        let expired: Vec<(TunnelId, Ipv6Addr)> = self
            .tunnels
            .iter()
            .flat_map(|(id, t)| {
                t.leases
                    .iter()
                    .filter(|(_, until)| *until <= now)
                    .map(move |(a, _)| (*id, *a))
            })
            .collect();
        for (id, a) in expired {
            self.remove_lease(id, a, GoneReason::Expired);
        }
    }

    /// The next lease expiry, if any.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.tunnels
            .values()
            .flat_map(|t| t.leases.iter().map(|(_, u)| *u))
            .min()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// All recorded leases.
    pub fn leases(&self) -> Vec<Lease> {
        let mut v: Vec<Lease> = self
            .tunnels
            .iter()
            .flat_map(|(id, t)| {
                t.leases.iter().map(move |(a, u)| Lease {
                    tunnel: *id,
                    identity: t.identity.clone(),
                    address: *a,
                    valid_until: *u,
                })
            })
            .collect();
        v.sort_by_key(|l| (l.tunnel, l.address));
        v
    }

    /// The leases held by `identity` (across its tunnels).
    pub fn lease_for(&self, identity: &str) -> Vec<Lease> {
        self.leases()
            .into_iter()
            .filter(|l| l.identity == identity)
            .collect()
    }

    /// The lease of `address`, if a tunnel holds it.
    pub fn holder_of(&self, address: Ipv6Addr) -> Option<Lease> {
        self.leases().into_iter().find(|l| l.address == address)
    }
}
