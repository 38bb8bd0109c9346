//! The home agent's DHCPv6 side, between the tunnels and the servers on the home link.
//!
//! * Relay (RFC 8415 §19, draft-devarapalli-mip6-ikev1-bootstrap §3.2): a client message out
//!   of a mobile node's tunnel goes to the servers as Relay-Forw (the `dhcp6-relay` engine:
//!   link-address = our home-link address, Interface-ID = an opaque handle of the IKE SA);
//!   a Relay-Repl comes back down the tunnel it names. Client messages come only from
//!   tunnels: the home-link socket accepts nothing but Relay-Repl.
//! * Mode Config from DHCPv6 (draft §3.1; design.md "one address authority"): for a peer that
//!   asks for an address with Mode Config, the home agent runs a DHCPv6 client on the peer's
//!   behalf (`dhcp6-client`, DUID-UUID derived from the IKE identity, so a peer gets its
//!   address back), relayed like a tunnel's messages so that the server picks the same subnet;
//!   the lease is renewed while the IKE SA lives and released when it is deleted.
//!
//! What the relay sees the server grant (lease snooping) goes into the home-address table
//! (`home_addresses`), which decides the RFC 3776 Quick Modes.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::time::{Duration, Instant};

use dhcp6_client::{Client, ClientConfig, Duid};
use dhcp6_relay::{Event as RelayEvent, GoneReason, Relay, TunnelId};
use ikev1::crypto::{Rng as _, SystemRng};
use ikev1::{IkeSaId, ModeConfig};
use netio::IkeSocket;
use sha2::{Digest, Sha256};
use tracing::{debug, info, warn};

use crate::home_addresses::{Held, Shared, lock};
use crate::status::AddressSource;

/// How long a Mode Config request waits for the DHCPv6 server before it is refused.
pub(crate) const MODECFG_DHCP_TIMEOUT: Duration = Duration::from_secs(8);
/// How long a proxy client may take to release its lease after the IKE SA is gone.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(5);
/// Tunnel ids of the proxy clients: the IKE SA's id with the top bit set (IKE SA ids are
/// small counters).
const PROXY_BIT: u64 = 1 << 63;

/// What the daemon must do after the DHCPv6 side ran.
#[derive(Debug)]
pub(crate) enum Action {
    /// Send a server message down a mobile node's tunnel (UDP from our home-link address
    /// port 547).
    Down {
        /// The IKE SA whose child SA carries it.
        sa: IkeSaId,
        /// The client's address and port.
        dst: SocketAddrV6,
        /// The DHCPv6 message.
        payload: Vec<u8>,
    },
    /// Answer a peer's Mode Config request (`None`: refuse).
    Answer {
        /// The IKE SA.
        sa: IkeSaId,
        /// The request handle.
        request: u64,
        /// The attributes.
        config: Option<ModeConfig>,
    },
}

/// A DHCPv6 client run on a Mode Config peer's behalf.
struct Proxy {
    /// Its relay handle: the id of the IKE SA it was started for, with [`PROXY_BIT`].
    tunnel: TunnelId,
    client: Client,
    identity: String,
    /// The peer's link-local-like address we relay for (peer-address of the Relay-Forw).
    src: Ipv6Addr,
    /// The Mode Config request waiting for the lease, and when it gives up.
    pending: Option<(u64, Instant)>,
    /// The IKE SA is gone: releasing, until then.
    closing: Option<Instant>,
}

/// The relay, its home-link socket and the proxy clients.
pub(crate) struct Dhcp {
    relay: Relay,
    socket: IkeSocket,
    /// Our address on the home link, port 547.
    local: SocketAddr,
    /// Whether tunnels' own DHCPv6 is relayed (`[dhcpv6] relay`).
    relay_tunnels: bool,
    proxies: HashMap<IkeSaId, Proxy>,
    table: Shared,
    /// DNS servers for Mode Config answers (`[modecfg] dns`); empty: the lease's.
    dns: Vec<Ipv6Addr>,
}

/// The Relay-Forw peer-address for a proxy client: a link-local address derived from the
/// DUID, stable per identity.
fn proxy_src(duid: &[u8]) -> Ipv6Addr {
    let h = Sha256::digest(duid);
    let mut o = [0u8; 16];
    o[0] = 0xfe;
    o[1] = 0x80;
    o[8..].copy_from_slice(&h[..8]);
    Ipv6Addr::from(o)
}

/// The DUID the home agent uses for `identity`'s Mode Config lease: DUID-UUID (RFC 6355) of a
/// hash of the identity, so that the same peer gets the same DUID (and address) each time.
pub(crate) fn proxy_duid(identity: &str) -> Duid {
    let h = Sha256::new()
        .chain_update(b"mip6-ha mode-config DUID\0")
        .chain_update(identity.as_bytes())
        .finalize();
    let mut u = [0u8; 16];
    u.copy_from_slice(&h[..16]);
    u[6] = (u[6] & 0x0f) | 0x80; // version 8: custom (RFC 9562 §5.8)
    u[8] = (u[8] & 0x3f) | 0x80; // RFC 4122 variant
    Duid::uuid(u)
}

impl Dhcp {
    /// Binds the relay's socket on `home_address` port 547 (sending to `ff05::1:3` out of
    /// `home_ifindex` when no server is configured).
    pub(crate) fn new(
        config: dhcp6_relay::Config,
        home_ifindex: u32,
        relay_tunnels: bool,
        table: Shared,
        dns: Vec<Ipv6Addr>,
    ) -> anyhow::Result<Self> {
        let local = SocketAddr::new(IpAddr::V6(config.link_address), dhcp6_relay::SERVER_PORT);
        let socket = IkeSocket::bind(local).map_err(|e| {
            anyhow::anyhow!("DHCPv6 relay socket [{}]:547: {e}", config.link_address)
        })?;
        socket
            .socket()
            .set_multicast_if_v6(home_ifindex)
            .map_err(|e| anyhow::anyhow!("DHCPv6 relay socket: IPV6_MULTICAST_IF: {e}"))?;
        Ok(Self {
            relay: Relay::new(config),
            socket,
            local,
            relay_tunnels,
            proxies: HashMap::new(),
            table,
            dns,
        })
    }

    /// The relay's counters, for `status`.
    pub(crate) fn counters(&self) -> &dhcp6_relay::Counters {
        self.relay.counters()
    }

    /// Waits for a datagram on the home-link socket.
    pub(crate) async fn recv(&self, buf: &mut [u8]) -> std::io::Result<(usize, SocketAddr)> {
        let (n, from, _) = self.socket.recv(buf).await?;
        Ok((n, from))
    }

    /// An IKE SA is up: its tunnel may carry DHCPv6.
    pub(crate) fn ike_sa_up(&mut self, sa: IkeSaId, identity: &str) {
        if !self.relay_tunnels {
            return;
        }
        if let Err(e) = self.relay.open_tunnel(TunnelId(sa.0), identity.to_owned()) {
            warn!(sa = %sa, %identity, error = %e, "DHCPv6 relay: tunnel not opened");
        }
    }

    /// A newer IKE SA of the same peer took over from `old` (phase-1 re-authentication): a
    /// Mode Config lease held for `old` now lives as long as `new`. The proxy keeps its relay
    /// handle (named after `old`), which stays unique: IKE SA ids are not reused.
    pub(crate) fn ike_sa_replaced(&mut self, old: IkeSaId, new: IkeSaId) {
        if let Some(p) = self.proxies.remove(&old) {
            self.proxies.insert(new, p);
        }
    }

    /// An IKE SA is gone: its relay handle dies; a Mode Config lease held for it is released.
    pub(crate) async fn ike_sa_down(&mut self, now: Instant, sa: IkeSaId) -> Vec<Action> {
        self.relay.close_tunnel(TunnelId(sa.0));
        let mut actions = Vec::new();
        if let Some(p) = self.proxies.get_mut(&sa) {
            if let Some((request, _)) = p.pending.take() {
                actions.push(Action::Answer {
                    sa,
                    request,
                    config: None,
                });
            }
            match p.client.release(now) {
                Ok(()) => {
                    info!(identity = %p.identity, "releasing the Mode Config lease");
                    p.closing = Some(now + RELEASE_TIMEOUT);
                }
                Err(_) => {
                    self.remove_proxy(sa);
                }
            }
        }
        self.flush(now, &mut actions).await;
        actions
    }

    /// Shutdown: releases every Mode Config lease held for a peer and waits (at most
    /// [`RELEASE_TIMEOUT`]) for the server to confirm.
    pub(crate) async fn release_all(&mut self) {
        let now = Instant::now();
        let sas: Vec<IkeSaId> = self.proxies.keys().copied().collect();
        for sa in sas {
            let _ = self.ike_sa_down(now, sa).await;
        }
        let until = now + RELEASE_TIMEOUT;
        let mut buf = vec![0u8; 65536];
        while !self.proxies.is_empty() {
            let wait = self
                .poll_timeout()
                .unwrap_or(until)
                .min(until)
                .saturating_duration_since(Instant::now());
            match tokio::time::timeout(wait, self.recv(&mut buf)).await {
                Ok(Ok((n, from))) => {
                    let _ = self
                        .on_server_datagram(Instant::now(), from, &buf[..n])
                        .await;
                }
                Ok(Err(_)) => break,
                Err(_) if Instant::now() >= until => break,
                Err(_) => {
                    let _ = self.handle_timeout(Instant::now()).await;
                }
            }
        }
    }

    /// A datagram out of a tunnel for port 547 (a mobile node's DHCPv6 client).
    pub(crate) async fn on_tunnel_datagram(
        &mut self,
        now: Instant,
        sa: IkeSaId,
        src: SocketAddrV6,
        payload: &[u8],
    ) -> Vec<Action> {
        match self
            .relay
            .handle_client(now, TunnelId(sa.0), *src.ip(), payload)
        {
            Ok(transmits) => {
                for t in transmits {
                    self.send_up(&t).await;
                }
            }
            Err(reason) => {
                debug!(sa = %sa, src = %src, %reason, "DHCPv6 from a tunnel dropped");
            }
        }
        let mut actions = Vec::new();
        self.flush(now, &mut actions).await;
        actions
    }

    /// A peer asks for an address with Mode Config: lease one on its behalf.
    pub(crate) async fn request_address(
        &mut self,
        now: Instant,
        sa: IkeSaId,
        request: u64,
        identity: &str,
        hint: Option<Ipv6Addr>,
    ) -> Vec<Action> {
        let mut actions = Vec::new();
        if self.proxies.contains_key(&sa) {
            // A second request on the same SA: the first one's lease answers both.
            actions.push(Action::Answer {
                sa,
                request,
                config: None,
            });
            return actions;
        }
        let duid = proxy_duid(identity);
        let src = proxy_src(duid.as_bytes());
        let cfg = ClientConfig {
            duid: duid.into_bytes(),
            iaid: 1,
            rapid_commit: true,
            fqdn: None,
            oro: Vec::new(),
            hint,
        };
        let mut rng = SystemRng::new();
        let client = match Client::new(cfg, move |buf: &mut [u8]| rng.fill(buf)) {
            Ok(c) => c,
            Err(e) => {
                warn!(%identity, error = %e, "Mode Config: DHCPv6 client not created");
                actions.push(Action::Answer {
                    sa,
                    request,
                    config: None,
                });
                return actions;
            }
        };
        if let Err(e) = self
            .relay
            .open_tunnel(TunnelId(sa.0 | PROXY_BIT), identity.to_owned())
        {
            warn!(%identity, error = %e, "Mode Config: relay refused the proxy client");
            actions.push(Action::Answer {
                sa,
                request,
                config: None,
            });
            return actions;
        }
        let mut p = Proxy {
            tunnel: TunnelId(sa.0 | PROXY_BIT),
            client,
            identity: identity.to_owned(),
            src,
            pending: Some((request, now + MODECFG_DHCP_TIMEOUT)),
            closing: None,
        };
        p.client.start(now);
        info!(%identity, sa = %sa, "Mode Config: leasing an address from DHCPv6 on the peer's behalf");
        self.proxies.insert(sa, p);
        self.flush(now, &mut actions).await;
        actions
    }

    /// A datagram on the home-link socket.
    pub(crate) async fn on_server_datagram(
        &mut self,
        now: Instant,
        from: SocketAddr,
        data: &[u8],
    ) -> Vec<Action> {
        let mut actions = Vec::new();
        match self.relay.handle_server(now, from, data) {
            Ok(d) if d.tunnel.0 & PROXY_BIT != 0 => {
                if let Some(p) = self.proxies.values_mut().find(|p| p.tunnel == d.tunnel)
                    && let Err(reason) = p.client.handle_message(now, &d.payload)
                {
                    debug!(identity = %p.identity, %reason, "Mode Config: DHCPv6 answer dropped");
                }
            }
            Ok(d) => actions.push(Action::Down {
                sa: IkeSaId(d.tunnel.0),
                dst: SocketAddrV6::new(d.dst, d.dst_port, 0, 0),
                payload: d.payload,
            }),
            Err(reason) => debug!(%from, %reason, "home-link DHCPv6 datagram dropped"),
        }
        self.flush(now, &mut actions).await;
        actions
    }

    /// When [`Self::handle_timeout`] is due.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        let proxies = self.proxies.values().flat_map(|p| {
            [
                p.client.poll_timeout(),
                p.pending.map(|(_, t)| t),
                p.closing,
            ]
        });
        proxies.chain([self.relay.poll_timeout()]).flatten().min()
    }

    /// Runs the timers due at `now`.
    pub(crate) async fn handle_timeout(&mut self, now: Instant) -> Vec<Action> {
        self.relay.handle_timeout(now);
        let mut actions = Vec::new();
        let mut gone = Vec::new();
        for (sa, p) in &mut self.proxies {
            if p.client.poll_timeout().is_some_and(|t| t <= now) {
                p.client.handle_timeout(now);
            }
            if let Some((request, t)) = p.pending
                && t <= now
            {
                warn!(identity = %p.identity, "Mode Config: no DHCPv6 lease in time; request refused");
                p.pending = None;
                actions.push(Action::Answer {
                    sa: *sa,
                    request,
                    config: None,
                });
                gone.push(*sa);
            }
            if p.closing.is_some_and(|t| t <= now) {
                gone.push(*sa);
            }
        }
        for sa in gone {
            self.remove_proxy(sa);
        }
        self.flush(now, &mut actions).await;
        actions
    }

    fn remove_proxy(&mut self, sa: IkeSaId) {
        if let Some(p) = self.proxies.remove(&sa) {
            self.relay.close_tunnel(p.tunnel);
        }
    }

    async fn send_up(&self, t: &dhcp6_relay::Transmit) {
        if let Err(e) = self.socket.send(&t.payload, self.local, t.dst).await {
            warn!(server = %t.dst, error = %e, "DHCPv6 relay: send to the server failed");
        }
    }

    /// Sends what the proxy clients queued, acts on their events and the relay's.
    async fn flush(&mut self, now: Instant, actions: &mut Vec<Action>) {
        let mut up = Vec::new();
        let mut done = Vec::new();
        for (sa, p) in &mut self.proxies {
            while let Some(msg) = p.client.poll_transmit() {
                match self.relay.handle_client(now, p.tunnel, p.src, &msg) {
                    Ok(t) => up.extend(t),
                    Err(reason) => debug!(identity = %p.identity, %reason, "proxy message dropped"),
                }
            }
            while let Some(ev) = p.client.poll_event() {
                match ev {
                    dhcp6_client::Event::Bound {
                        address,
                        dns_servers,
                        ..
                    } => {
                        if let Some((request, _)) = p.pending.take() {
                            let dns = if self.dns.is_empty() {
                                dns_servers
                            } else {
                                self.dns.clone()
                            };
                            info!(identity = %p.identity, %address, "Mode Config: address leased by DHCPv6");
                            actions.push(Action::Answer {
                                sa: *sa,
                                request,
                                config: Some(ModeConfig {
                                    address: Some(address),
                                    dns,
                                    ..ModeConfig::default()
                                }),
                            });
                        }
                    }
                    dhcp6_client::Event::Released => done.push(*sa),
                    dhcp6_client::Event::Expired { address } => {
                        warn!(identity = %p.identity, %address, "Mode Config lease expired");
                    }
                    other => debug!(identity = %p.identity, event = ?other, "proxy client"),
                }
            }
        }
        for sa in done {
            self.remove_proxy(sa);
        }
        for t in &up {
            self.send_up(t).await;
        }
        self.relay_events(now);
    }

    /// Lease snooping into the home-address table.
    fn relay_events(&mut self, now: Instant) {
        while let Some(ev) = self.relay.poll_event() {
            match ev {
                RelayEvent::LeaseBound {
                    tunnel,
                    identity,
                    address,
                    valid_until,
                } => {
                    let source = if tunnel.0 & PROXY_BIT != 0 {
                        AddressSource::Modecfg
                    } else {
                        AddressSource::Dhcpv6
                    };
                    let left = valid_until.saturating_duration_since(now);
                    info!(%identity, %address, valid_s = left.as_secs(), source = ?source, "home address leased");
                    lock(&self.table).grant(
                        &identity,
                        Held {
                            address,
                            source,
                            until: Some(valid_until),
                        },
                    );
                }
                // The lease stays the node's after its tunnel closes, until it expires.
                RelayEvent::LeaseGone {
                    reason: GoneReason::TunnelClosed,
                    ..
                } => {}
                RelayEvent::LeaseGone {
                    identity,
                    address,
                    reason,
                    ..
                } => {
                    info!(%identity, %address, reason = ?reason, "home address lease ended");
                    lock(&self.table).revoke(&identity, address);
                }
            }
        }
    }
}
