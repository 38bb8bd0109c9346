//! The engine runner of `mip6-ha`: the IKE engine and the ESP data plane run in the shared
//! tunnel task (`tunnel` crate); this module holds the home agent's policy, its DHCPv6 side and
//! its routes.
//!
//! * Quick Modes (RFC 3776 §4): a peer gets SAs only for a home address it holds — its static
//!   `[[peers]] home_address`, a DHCPv6 lease the relay saw granted through its tunnel, or its
//!   Mode Config address (`home_addresses`); the initial DHCPv6 tunnel of
//!   draft-devarapalli-mip6-ikev1-bootstrap §3.2 is admitted while `[dhcpv6] relay` is on.
//!   Anything else is refused with INVALID-ID-INFORMATION and a log line naming the identity
//!   and the addresses.
//! * DHCPv6 (`dhcp`): datagrams to ff02::1:2 port 547 out of a tunnel go to the relay, its
//!   answers go back down the same IKE SA's tunnel.
//! * Mode Config (draft §3.1): with `[modecfg] source = "dhcpv6"` the address is leased from
//!   the DHCPv6 server on the peer's behalf (`dhcp`), with `"pool"` from the range (`pool`).
//! * XAUTH (draft §4): a peer that must pass XAUTH (`auth = "hybrid"` or `"psk+xauth"`) is
//!   checked with RADIUS (`xauth`); the engine gives it nothing else until the verdict.
//! * DNS (RFC 5026 §6): a Binding Update asking for its name to be updated gets its
//!   acknowledgement once `[dns_update]`'s server has answered (`dns`).
//! * Forwarding: once a tunnel-mode SA for a home address is up, the address is routed into
//!   the TUN device and the home agent answers neighbour solicitations for it on the home link
//!   (proxy NDP), so that home-link hosts reach the mobile node. The binding cache (issue 5)
//!   comes on top.
//!
//! On SIGTERM: Delete notifications to every peer (Mode Config leases are released first),
//! then routes, proxy entries and the TUN device are removed.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::net::{IpAddr, Ipv6Addr, SocketAddrV6};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use daemon::status::ChildSaStatus;
use ikev1::crypto::{Rng as _, SystemRng};
use ikev1::{Engine, Event, IkeSaId, Mode, ModeConfig};
use netio::nft::NftTable;
use netio::{NetConfigGuard, Netlink, Route};
use tracing::{info, warn};
use tunnel::{Handle, LocalDatagram, LocalUdp, Snapshot, TunInfo, TunnelConfig};

use crate::config::{Config, ModecfgSource};
use crate::dhcp::{Action, Dhcp};
use crate::dns::NameUpdates;
use crate::home_addresses::{self, Authority, Held, Policy, Shared, lock};
use crate::pool::Pool;
use crate::registration::Registrations;
use crate::status::{AddressSource, BindingStatus, PeerStatus, Status};
use crate::xauth::{Attempt, Decision, XauthChecker};

/// The TUN device of the home agent.
const TUN_NAME: &str = "mip6ha0";
/// Its MTU (see the mobile node's).
const TUN_MTU: u16 = 1400;
/// How often `status` is refreshed from the tunnel task without events.
const STATUS_EVERY: Duration = Duration::from_secs(1);
/// After an event, `status` is refreshed within this much: a snapshot costs O(peers), so many
/// events in a burst share one. With many peers the wait grows with what the last refresh
/// cost ([`REFRESH_SHARE`]).
const STATUS_AFTER_EVENT: Duration = Duration::from_millis(50);
/// Refreshes after events take at most 1/REFRESH_SHARE of the daemon's time (its one thread
/// also carries the data plane).
const REFRESH_SHARE: u32 = 20;
/// Destination Options: the first extension header of a Binding Update (Home Address option).
const DEST_OPTS: u8 = 60;
/// All_DHCP_Relay_Agents_and_Servers (RFC 8415 §7.1): where mobile nodes send.
const ALL_DHCP_RELAY_AGENTS_AND_SERVERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 1, 2);

struct HomeAgent {
    cfg: Config,
    status: Arc<Mutex<Status>>,
    tunnel: Handle,
    tun: TunInfo,
    guard: NetConfigGuard,
    /// Home addresses with tunnel-mode SAs (our SPI, their IKE SA).
    tunnels: HashMap<Ipv6Addr, Vec<(u32, IkeSaId)>>,
    /// The home address of each of those SAs, by our SPI.
    tunnel_spis: HashMap<u32, Ipv6Addr>,
    /// When `status` is next refreshed after events.
    refresh_at: Option<Instant>,
    /// What the last refresh took.
    refresh_cost: Duration,
    /// Home addresses routed into the TUN device (with a proxy NDP entry).
    routed: HashSet<Ipv6Addr>,
    /// IKE SAs of Mobile IPv6 nodes (they have the RFC 3776 transport SA): their home
    /// addresses are forwarded only while a binding exists.
    mobile: HashSet<IkeSaId>,
    /// Home registration: the binding cache.
    reg: Registrations,
    /// Home-address authority, as the Quick Mode policy sees it.
    authority: Authority,
    /// Drops the kernel's ICMPv6 errors about Home Address options while we live.
    _icmp_filter: Option<NftTable>,
    /// Who holds which home address.
    table: Shared,
    dhcp: Dhcp,
    pool: Option<Pool>,
    /// The authenticated identity of each IKE SA.
    identities: HashMap<IkeSaId, String>,
    /// XAUTH answers checked with RADIUS (`[radius]`).
    xauth: Option<XauthChecker>,
    /// The mobile nodes' names in DNS (`[dns_update]`).
    dns: Option<NameUpdates>,
}

/// Runs the home agent until `shutdown` resolves, then tears down.
pub(crate) async fn run_daemon(
    mut cfg: Config,
    status: Arc<Mutex<Status>>,
    shutdown: impl Future<Output = &'static str>,
) -> anyhow::Result<()> {
    let address = *cfg.file.listen.first().context("listen: no address")?;
    let nl = Netlink::new().context("netlink")?;
    let mut rng = SystemRng::new();
    let mut engine = Engine::new(cfg.engine_config(), Box::new(SystemRng::new()));
    let unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    engine.set_wall_clock(Instant::now(), i64::try_from(unix).unwrap_or(i64::MAX));
    let table = Shared::default();
    let authority = Authority {
        table: table.clone(),
        statics: cfg
            .peers
            .iter()
            .filter_map(|p| p.home_address.map(|a| (p.identity.clone(), a)))
            .collect(),
    };
    engine.set_child_policy(Box::new(Policy {
        authority: authority.clone(),
        relay: cfg.file.dhcpv6.relay,
    }));
    // Binding Updates carry a Home Address option, which the kernel drops: read them from
    // the interface that holds our address.
    let outside = nl
        .interface_of(address)
        .await
        .context("listing addresses")?
        .with_context(|| format!("listen address {address} is not configured on any interface"))?;
    let tcfg = TunnelConfig {
        address,
        natt_port: 4500,
        tun_name: TUN_NAME.into(),
        tun_mtu: TUN_MTU,
        local_udp: vec![LocalUdp {
            dst: Some(ALL_DHCP_RELAY_AGENTS_AND_SERVERS),
            port: dhcp6_relay::SERVER_PORT,
        }],
        mh_capture: Some((outside, DEST_OPTS)),
    };
    let tunnel::Tunnel {
        handle: tunnel,
        mut events,
        mut local,
        mut payloads,
        tun,
    } = tunnel::spawn(engine, tcfg, &nl).await?;
    let mut guard = NetConfigGuard::new(&nl);
    guard.track_link(tun.ifindex, &tun.name);
    let home = cfg.file.home_link.interface.clone();
    let home_ifindex = nl
        .ifindex(home.as_str())
        .await
        .with_context(|| format!("home_link.interface {home}"))?;
    guard
        .set_ipv6_conf("all", "forwarding", "1")
        .context("enabling IPv6 forwarding")?;
    guard
        .set_ipv6_conf(&home, "proxy_ndp", "1")
        .with_context(|| format!("proxy_ndp on {home}"))?;
    let mut relay_cfg = dhcp6_relay::Config::new(cfg.file.home_link.address);
    relay_cfg.servers.clone_from(&cfg.file.dhcpv6.servers);
    // A node's relay tunnel lasts as long as its lease (Renew and Rebind come through it): as
    // many as the binding cache holds (the relay's own default of 1024 capped the home agent
    // at 1024 nodes; found by `load-gen`).
    relay_cfg.max_tunnels = cfg.file.bindings.max_entries;
    let mut seed = [0u8; 8];
    rng.fill(&mut seed);
    relay_cfg.nonce_seed = u64::from_le_bytes(seed);
    let dhcp = Dhcp::new(
        relay_cfg,
        home_ifindex,
        cfg.file.dhcpv6.relay,
        table.clone(),
        cfg.file.modecfg.dns.clone(),
    )?;
    let pool = match (cfg.file.modecfg.source, cfg.file.modecfg.pool) {
        (ModecfgSource::Pool, Some(range)) => Some(Pool::new(range)),
        _ => None,
    };
    let icmp_filter = match NftTable::create(
        "mip6_ha",
        &["icmpv6 type parameter-problem icmpv6 code 2 counter drop".to_owned()],
    ) {
        Ok(t) => Some(t),
        Err(e) => {
            warn!(error = %e, "the kernel will answer Binding Updates with ICMPv6 Parameter Problem");
            None
        }
    };
    let reg = Registrations::new(
        address,
        Duration::from_secs(cfg.file.bindings.max_lifetime),
        cfg.file.bindings.max_entries,
    );
    let xauth = match &cfg.radius {
        Some(r) => Some(XauthChecker::new(r).context("RADIUS client")?),
        None => None,
    };
    let dns = match cfg.dns_update.take() {
        Some(d) => Some(NameUpdates::new(d).context("DNS update socket")?),
        None => None,
    };
    let mut ha = HomeAgent {
        cfg,
        status,
        tunnel,
        tun,
        guard,
        tunnels: HashMap::new(),
        tunnel_spis: HashMap::new(),
        refresh_at: None,
        refresh_cost: Duration::ZERO,
        routed: HashSet::new(),
        mobile: HashSet::new(),
        reg,
        authority,
        _icmp_filter: icmp_filter,
        table,
        dhcp,
        pool,
        identities: HashMap::new(),
        xauth,
        dns,
    };
    info!(%address, home_link = %home, relay = ha.cfg.file.dhcpv6.relay, modecfg = ?ha.cfg.file.modecfg.source, "home agent up");
    tokio::pin!(shutdown);
    let mut tick = tokio::time::interval(STATUS_EVERY);
    let mut buf = vec![0u8; 65536];
    let mut radius_buf = vec![0u8; 4096];
    let mut dns_buf = vec![0u8; 4096];
    let signal = loop {
        let deadline = ha.dhcp.poll_timeout();
        let reg_deadline = ha.reg.poll_timeout();
        let radius_deadline = ha.xauth.as_ref().and_then(XauthChecker::poll_timeout);
        let dns_deadline = ha.dns.as_ref().and_then(NameUpdates::poll_timeout);
        let refresh_at = ha.refresh_at;
        tokio::select! {
            sig = &mut shutdown => break sig,
            ev = events.recv() => match ev {
                Some(ev) => {
                    ha.on_event(ev).await;
                    ha.refresh_soon();
                }
                None => anyhow::bail!("the tunnel task stopped"),
            },
            () = async {
                match refresh_at {
                    Some(t) => tokio::time::sleep_until(t.into()).await,
                    None => std::future::pending().await,
                }
            } => ha.refresh().await,
            d = local.recv() => match d {
                Some(d) => {
                    // The tunnel reported the SA before it carried this: events first.
                    ha.drain_events(&mut events).await;
                    ha.on_tunnel_datagram(d).await;
                }
                None => anyhow::bail!("the tunnel task stopped"),
            },
            p = payloads.recv() => match p {
                Some(p) => {
                    ha.drain_events(&mut events).await;
                    ha.on_payload(&p).await;
                }
                None => anyhow::bail!("the tunnel task stopped"),
            },
            () = async {
                match reg_deadline {
                    Some(t) => tokio::time::sleep_until(t.into()).await,
                    None => std::future::pending().await,
                }
            } => {
                let out = ha.reg.handle_timeout(Instant::now());
                ha.registration_output(out).await;
            }
            r = ha.dhcp.recv(&mut buf) => match r {
                Ok((n, from)) => {
                    let actions = ha.dhcp.on_server_datagram(Instant::now(), from, &buf[..n]).await;
                    ha.act(actions).await;
                }
                Err(e) => warn!(error = %e, "DHCPv6 relay socket receive failed"),
            },
            () = async {
                match deadline {
                    Some(t) => tokio::time::sleep_until(t.into()).await,
                    None => std::future::pending().await,
                }
            } => {
                let actions = ha.dhcp.handle_timeout(Instant::now()).await;
                ha.act(actions).await;
            }
            r = async {
                match &ha.xauth {
                    Some(x) => x.recv(&mut radius_buf).await,
                    None => std::future::pending().await,
                }
            } => match r {
                Ok((n, from)) => {
                    let now = Instant::now();
                    let decisions = match ha.xauth.as_mut() {
                        Some(x) => x.on_datagram(now, from, &radius_buf[..n]).await,
                        None => Vec::new(),
                    };
                    ha.xauth_verdicts(decisions).await;
                }
                Err(e) => warn!(error = %e, "RADIUS socket receive failed"),
            },
            () = async {
                match radius_deadline {
                    Some(t) => tokio::time::sleep_until(t.into()).await,
                    None => std::future::pending().await,
                }
            } => {
                let decisions = match ha.xauth.as_mut() {
                    Some(x) => x.on_timeout(Instant::now()).await,
                    None => Vec::new(),
                };
                ha.xauth_verdicts(decisions).await;
            }
            r = async {
                match &ha.dns {
                    Some(d) => d.recv(&mut dns_buf).await,
                    None => std::future::pending().await,
                }
            } => match r {
                Ok((n, from)) => {
                    let now = Instant::now();
                    let released = match ha.dns.as_mut() {
                        Some(d) => d.on_datagram(now, from, &dns_buf[..n]).await,
                        None => Vec::new(),
                    };
                    ha.send_held_acks(released).await;
                }
                Err(e) => warn!(error = %e, "DNS socket receive failed"),
            },
            () = async {
                match dns_deadline {
                    Some(t) => tokio::time::sleep_until(t.into()).await,
                    None => std::future::pending().await,
                }
            } => {
                let released = match ha.dns.as_mut() {
                    Some(d) => d.on_timeout(Instant::now()).await,
                    None => Vec::new(),
                };
                ha.send_held_acks(released).await;
            }
            _ = tick.tick() => {
                lock(&ha.table).prune(Instant::now());
                ha.refresh().await;
            }
        }
    };
    info!(signal, "shutting down");
    shutdown_hook(ha).await
}

impl HomeAgent {
    /// Handles the tunnel's events already queued. A datagram or payload on a new SA is
    /// queued on another channel than the event announcing the SA, and may be read first.
    async fn drain_events(&mut self, events: &mut tokio::sync::mpsc::UnboundedReceiver<Event>) {
        while let Ok(ev) = events.try_recv() {
            self.on_event(ev).await;
            self.refresh_soon();
        }
    }

    async fn on_event(&mut self, ev: Event) {
        let now = Instant::now();
        match ev {
            Event::IkeSaEstablished { sa, remote_id, .. } => {
                let id = remote_id.to_string();
                self.dhcp.ike_sa_up(sa, &id);
                self.identities.insert(sa, id);
            }
            Event::IkeSaReplaced { old, new, .. } => {
                self.dhcp.ike_sa_replaced(old, new);
                self.reg.ike_sa_replaced(old, new);
                if self.mobile.remove(&old) {
                    self.mobile.insert(new);
                }
                for v in self.tunnels.values_mut() {
                    for e in v.iter_mut().filter(|e| e.1 == old) {
                        e.1 = new;
                    }
                }
                if let Some(pool) = self.pool.as_mut() {
                    pool.replaced(old, new);
                }
            }
            Event::XauthCredentials {
                sa,
                identity,
                user,
                response,
            } => {
                self.on_xauth_credentials(now, sa, &identity, &user, response)
                    .await
            }
            Event::XauthFailed { sa, .. } | Event::IkeSaFailed { sa, .. } => {
                if let Some(x) = self.xauth.as_mut() {
                    x.forget(sa);
                }
            }
            Event::IkeSaDeleted { sa, .. } => {
                if let Some(x) = self.xauth.as_mut() {
                    x.forget(sa);
                }
                let actions = self.dhcp.ike_sa_down(now, sa).await;
                self.act(actions).await;
                self.mobile.remove(&sa);
                let id = self.identities.remove(&sa);
                if let (Some(pool), Some(id)) = (self.pool.as_mut(), id)
                    && let Some(a) = pool.release(sa)
                {
                    lock(&self.table).revoke(&id, a);
                }
            }
            Event::AddressRequested {
                sa,
                request,
                identity,
                asked,
            } => {
                let id = identity.to_string();
                let prefix = self.cfg.file.home_link.prefix;
                let hint = asked.address.filter(|a| prefix.contains(*a));
                let actions = match self.pool.as_mut() {
                    None => self.dhcp.request_address(now, sa, request, &id, hint).await,
                    Some(pool) => {
                        let taken = taken_addresses(&self.cfg, &lock(&self.table), now);
                        let config = pool.assign(sa, &id, hint, &taken).map(|a| {
                            info!(identity = %id, address = %a, "Mode Config: address from the pool");
                            lock(&self.table).grant(
                                &id,
                                Held {
                                    address: a,
                                    source: AddressSource::Modecfg,
                                    until: None,
                                },
                            );
                            ModeConfig {
                                address: Some(a),
                                dns: self.cfg.file.modecfg.dns.clone(),
                                ..ModeConfig::default()
                            }
                        });
                        if config.is_none() {
                            warn!(identity = %id, "Mode Config: the pool is exhausted");
                        }
                        vec![Action::Answer {
                            sa,
                            request,
                            config,
                        }]
                    }
                };
                self.act(actions).await;
            }
            Event::ChildSaEstablished(c) => {
                let hoa = tunnel::convert::host_addr(&c.remote_ts)
                    .filter(|a| self.cfg.file.home_link.prefix.contains(*a));
                self.reg.child_up(&c);
                match (c.mode, hoa) {
                    (Mode::Tunnel, Some(hoa)) => {
                        self.tunnels
                            .entry(hoa)
                            .or_default()
                            .push((c.spi_in, c.ike_sa));
                        self.tunnel_spis.insert(c.spi_in, hoa);
                        self.update_forwarding(hoa).await;
                    }
                    (Mode::Transport, Some(hoa)) => {
                        self.mobile.insert(c.ike_sa);
                        self.update_forwarding(hoa).await;
                    }
                    _ => {}
                }
            }
            Event::ChildSaDeleted { spi_in, .. } => {
                self.reg.child_down(spi_in);
                if let Some(hoa) = self.tunnel_spis.remove(&spi_in) {
                    if let Some(v) = self.tunnels.get_mut(&hoa) {
                        v.retain(|(s, _)| *s != spi_in);
                        if v.is_empty() {
                            self.tunnels.remove(&hoa);
                        }
                    }
                    self.update_forwarding(hoa).await;
                }
            }
            Event::ChildSaFailed { sa, reason, .. } => {
                let identity = self.identities.get(&sa).map_or("-", String::as_str);
                warn!(sa = %sa, %identity, %reason, "Quick Mode refused or failed");
            }
            other => tracing::debug!(event = ?other, "event"),
        }
    }

    /// A peer's XAUTH answer: to RADIUS, unless its identity may not use that user.
    async fn on_xauth_credentials(
        &mut self,
        now: Instant,
        sa: IkeSaId,
        identity: &ikev1::Identity,
        user: &str,
        response: ikev1::XauthResponse,
    ) {
        let id = identity.to_string();
        let allowed_user = self
            .cfg
            .peers
            .iter()
            .find(|p| p.identity.matches(identity))
            .and_then(|p| p.xauth_user.clone());
        let peer = self
            .tunnel
            .with_engine(move |e, _| e.ike_sa_info(sa).map(|i| i.remote))
            .await
            .ok()
            .flatten();
        let decision = match self.xauth.as_mut() {
            Some(x) => {
                x.check(
                    now,
                    Attempt {
                        sa,
                        identity: &id,
                        user,
                        response,
                        allowed_user: allowed_user.as_deref(),
                        peer,
                    },
                )
                .await
            }
            None => {
                warn!(%sa, identity = %id, user, "XAUTH refused: no [radius] section to check it with");
                Some(Decision { sa, ok: false })
            }
        };
        self.xauth_verdicts(decision.into_iter().collect()).await;
    }

    /// Tells the engine what RADIUS said.
    async fn xauth_verdicts(&mut self, decisions: Vec<Decision>) {
        for Decision { sa, ok } in decisions {
            match self
                .tunnel
                .with_engine(move |e, now| e.xauth_verdict(now, sa, ok))
                .await
            {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::debug!(%sa, error = %e, "XAUTH verdict for an SA that moved on")
                }
                Err(_) => warn!("the tunnel task stopped"),
            }
        }
    }

    /// A transport-mode payload out of the tunnel (a Binding Update).
    async fn on_payload(&mut self, p: &tunnel::LocalPayload) {
        let identity = self.identities.get(&p.ike_sa).cloned().unwrap_or_default();
        let authority = &self.authority;
        let out = self
            .reg
            .on_payload(Instant::now(), p, &identity, |id, hoa| {
                authority.holds_str(id, Instant::now()).contains(&hoa)
            });
        self.registration_output(out).await;
    }

    async fn registration_output(&mut self, out: crate::registration::Output) {
        let now = Instant::now();
        for packet in out.packets {
            if self.tunnel.send_packet(packet).await.is_err() {
                warn!("the tunnel task stopped");
            }
        }
        for (held, request, identity) in out.dns {
            let answer = match self.dns.as_mut() {
                Some(d) => {
                    let rule = self
                        .cfg
                        .peers
                        .iter()
                        .find(|p| p.identity.matches(&ikev1::Identity::parse(&identity)))
                        .map(|p| p.names.clone())
                        .unwrap_or_default();
                    d.on_binding(now, &identity, &rule, &request, held).await
                }
                None => {
                    tracing::debug!(%identity, "DNS Update option, but no [dns_update] configured");
                    Some(crate::dns::answer(
                        held,
                        &request,
                        mip6::DnsUpdateStatus::REASON_UNSPECIFIED,
                    ))
                }
            };
            if let Some(held) = answer {
                self.send_held_acks(vec![crate::dns::Release { held }])
                    .await;
            }
        }
        for hoa in &out.stop {
            if let Some(d) = self.dns.as_mut() {
                d.on_binding_gone(now, *hoa).await;
            }
        }
        for hoa in out.forward.into_iter().chain(out.stop) {
            self.update_forwarding(hoa).await;
        }
    }

    /// Binding Acknowledgements whose DNS answer is known.
    async fn send_held_acks(&mut self, released: Vec<crate::dns::Release>) {
        for r in released {
            if let Some(packet) = self.reg.ba_packet(&r.held)
                && self.tunnel.send_packet(packet).await.is_err()
            {
                warn!("the tunnel task stopped");
            }
        }
    }

    /// Routes `hoa` into the tunnel (with proxy NDP on the home link) exactly when a
    /// tunnel-mode SA carries it and, for a Mobile IPv6 node, a binding exists (RFC 6275
    /// §10.4.1: the home agent intercepts for a home address it has a binding for).
    async fn update_forwarding(&mut self, hoa: Ipv6Addr) {
        let sas = self
            .tunnels
            .get(&hoa)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let mobile = sas.iter().any(|(_, ike)| self.mobile.contains(ike));
        let want = !sas.is_empty() && (!mobile || self.reg.has_binding(hoa));
        match (want, self.routed.contains(&hoa)) {
            (true, false) => self.route(hoa).await,
            (false, true) => self.unroute(hoa).await,
            _ => {}
        }
    }

    /// A datagram for the relay out of a tunnel.
    async fn on_tunnel_datagram(&mut self, d: LocalDatagram) {
        let actions = self
            .dhcp
            .on_tunnel_datagram(Instant::now(), d.ike_sa, d.src, &d.payload)
            .await;
        self.act(actions).await;
    }

    /// Carries out what the DHCPv6 side asked for.
    async fn act(&mut self, actions: Vec<Action>) {
        for a in actions {
            match a {
                Action::Down { sa, dst, payload } => {
                    let src = SocketAddrV6::new(
                        self.cfg.file.home_link.address,
                        dhcp6_relay::SERVER_PORT,
                        0,
                        0,
                    );
                    if self
                        .tunnel
                        .send_udp(Some(sa), src, dst, payload)
                        .await
                        .is_err()
                    {
                        warn!("the tunnel task stopped");
                    }
                }
                Action::Answer {
                    sa,
                    request,
                    config,
                } => {
                    let r = self
                        .tunnel
                        .with_engine(move |e, now| {
                            e.answer_address_request(now, sa, request, config)
                        })
                        .await;
                    if let Ok(Err(e)) = r {
                        warn!(sa = %sa, error = %e, "Mode Config answer not sent");
                    }
                }
            }
        }
    }

    async fn route(&mut self, hoa: Ipv6Addr) {
        self.routed.insert(hoa);
        let route = Route::new(hoa, 128, self.tun.ifindex);
        if let Err(e) = self.guard.add_route(&route).await {
            warn!(home_address = %hoa, error = %e, "routing the home address into the tunnel failed");
        }
        let home = self.cfg.file.home_link.interface.clone();
        if let Err(e) = self.guard.add_proxy_neighbour(home.as_str(), hoa).await {
            warn!(home_address = %hoa, error = %e, "proxy NDP entry failed");
        }
        info!(home_address = %hoa, "home address reachable through the tunnel");
    }

    async fn unroute(&mut self, hoa: Ipv6Addr) {
        self.routed.remove(&hoa);
        let _ = self
            .guard
            .remove_route(&Route::new(hoa, 128, self.tun.ifindex))
            .await;
        if let Ok(idx) = self
            .guard
            .netlink()
            .ifindex(self.cfg.file.home_link.interface.as_str())
            .await
        {
            let _ = self.guard.remove_proxy_neighbour(idx, hoa).await;
        }
        info!(home_address = %hoa, "home address no longer routed");
    }

    /// Schedules a refresh of `status` after an event (one for a burst of events).
    fn refresh_soon(&mut self) {
        let wait = STATUS_AFTER_EVENT.max(self.refresh_cost * REFRESH_SHARE);
        self.refresh_at.get_or_insert_with(|| Instant::now() + wait);
    }

    async fn refresh(&mut self) {
        self.refresh_at = None;
        let started = Instant::now();
        let Ok(snap) = self.tunnel.snapshot().await else {
            return;
        };
        let status = {
            let table = lock(&self.table);
            let mut status =
                build_status(&self.cfg, &snap, &table, self.dhcp.counters(), &self.reg);
            if let Some(x) = &self.xauth {
                let c = x.counters();
                for (k, v) in [
                    ("xauth_accepted", c.accepted),
                    ("xauth_rejected", c.rejected),
                    ("xauth_radius_timeouts", c.timeouts),
                    ("radius_dropped", x.radius_dropped()),
                ] {
                    status.counters.insert(k.to_owned(), v);
                }
            }
            if let Some(d) = &self.dns {
                let c = d.counters();
                for (k, v) in [
                    ("dns_updated", c.updated),
                    ("dns_removed", c.removed),
                    ("dns_failed", c.failed),
                    ("dns_prohibited", c.prohibited),
                ] {
                    status.counters.insert(k.to_owned(), v);
                }
            }
            status
        };
        if let Ok(mut s) = self.status.lock() {
            *s = status;
        }
        self.refresh_cost = started.elapsed();
    }
}

/// Addresses a pool must not hand out: static home addresses and every recorded holder's.
fn taken_addresses(
    cfg: &Config,
    table: &home_addresses::HomeAddresses,
    now: Instant,
) -> HashSet<Ipv6Addr> {
    let mut t: HashSet<Ipv6Addr> = cfg.peers.iter().filter_map(|p| p.home_address).collect();
    t.insert(cfg.file.home_link.address);
    t.extend(table.all(now));
    t
}

fn build_status(
    cfg: &Config,
    snap: &Snapshot,
    table: &home_addresses::HomeAddresses,
    relay: &dhcp6_relay::Counters,
    reg: &Registrations,
) -> Status {
    let now = Instant::now();
    let prefix = cfg.file.home_link.prefix;
    // One pass over the child SAs, not one per IKE SA (thousands of peers: `load-gen`).
    let mut by_ike: HashMap<IkeSaId, Vec<&tunnel::ChildInfo>> = HashMap::new();
    for c in &snap.children {
        by_ike.entry(c.child.ike_sa).or_default().push(c);
    }
    let mut peers: Vec<PeerStatus> = snap
        .ike_sas
        .iter()
        .filter(|(_, i)| i.established)
        .map(|(id, i)| {
            let children = by_ike.remove(id).unwrap_or_default();
            let identity = i
                .remote_id
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default();
            let held = table.held_by(&identity, now);
            let hoa = children
                .iter()
                .filter(|c| c.child.mode == Mode::Tunnel)
                .filter_map(|c| tunnel::convert::host_addr(&c.child.remote_ts))
                .find(|a| prefix.contains(*a))
                .or_else(|| held.first().map(|h| h.address));
            let source = hoa.map(|a| {
                held.iter()
                    .find(|h| h.address == a)
                    .map_or(AddressSource::Static, |h| h.source)
            });
            let coa = match i.remote.ip() {
                IpAddr::V6(a) => Some(a),
                IpAddr::V4(_) => None,
            };
            PeerStatus {
                identity,
                xauth_user: i.xauth_user.clone(),
                care_of_address: coa,
                home_address: hoa,
                address_source: source,
                child_sas: children
                    .iter()
                    .map(|c| ChildSaStatus::from_child(&c.child))
                    .collect(),
            }
        })
        .collect();
    peers.sort_by(|a, b| a.identity.cmp(&b.identity));
    let c = &snap.ike_counters;
    let l = &snap.local;
    let r = reg.counters();
    let mut counters = BTreeMap::new();
    for (k, v) in [
        ("ike_received", c.received),
        ("ike_dropped_malformed", c.dropped_malformed),
        ("ike_dropped_unknown_sa", c.dropped_unknown_sa),
        ("ike_dropped_auth", c.dropped_auth),
        ("ike_dropped_unexpected", c.dropped_unexpected),
        ("ike_dropped_half_open_limit", c.dropped_half_open_limit),
        ("ike_sa_established", c.ike_established),
        ("ike_sa_failed", c.ike_failed),
        ("child_sa_established", c.child_established),
        ("child_sa_failed", c.child_failed),
        ("dhcpv6_relayed_up", relay.relayed_up),
        ("dhcpv6_delivered_down", relay.delivered_down),
        ("dhcpv6_from_tunnels", l.delivered),
        ("dhcpv6_to_tunnels", l.sent),
        ("dhcpv6_dropped_tunnel_queue_full", l.dropped_queue_full),
        ("dhcpv6_dropped_tunnel_malformed", l.dropped_malformed),
        ("dhcpv6_dropped_no_tunnel_sa", l.send_no_sa),
        ("mh_payloads", l.payloads_delivered),
        ("mh_captured_ignored", l.captured_ignored),
        ("bu_accepted", r.bu_accepted),
        ("bu_refused", r.bu_refused),
        ("bu_dropped", r.bu_dropped),
        ("mh_malformed", r.mh_malformed),
        ("brr_sent", r.brr_sent),
        ("bindings_expired", r.expired),
    ] {
        counters.insert(k.to_owned(), v);
    }
    for (kind, n) in &relay.drops {
        counters.insert(format!("dhcpv6_dropped_{}", kind.replace('-', "_")), *n);
    }
    for (reason, n) in &snap.esp_drops {
        counters.insert(format!("esp_dropped_{}", reason.to_lowercase()), *n);
    }
    let (mut pin, mut pout) = (0, 0);
    for ch in &snap.children {
        pin += ch.traffic.0;
        pout += ch.traffic.2;
    }
    counters.insert("esp_packets_in".into(), pin);
    counters.insert("esp_packets_out".into(), pout);
    let mut bindings: Vec<BindingStatus> = reg
        .bindings()
        .map(|b| BindingStatus {
            home_address: b.home_address,
            care_of_address: b.care_of_address,
            identity: b.identity.clone(),
            lifetime_left: b.lifetime_left(now).as_secs(),
            lifetime: b.lifetime.as_secs(),
            sequence: b.sequence,
        })
        .collect();
    bindings.sort_by_key(|b| b.home_address);
    Status {
        peers,
        bindings,
        counters,
    }
}

/// Orderly teardown after the shutdown signal: Delete notifications to every peer, then
/// routes, proxy entries and the TUN device go.
async fn shutdown_hook(mut ha: HomeAgent) -> anyhow::Result<()> {
    ha.dhcp.release_all().await;
    if let Err(e) = ha.tunnel.shutdown().await {
        warn!(error = %e, "tunnel shutdown");
    }
    ha.guard
        .cleanup()
        .await
        .context("removing routes, proxy entries and the TUN device")?;
    Ok(())
}
