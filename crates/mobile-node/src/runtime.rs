//! The engine runner of `mip6-mn`: the IKE engine and the ESP data plane run in the shared
//! tunnel task (`tunnel` crate); the bootstrap's decisions are made by the sans-IO state
//! machine in [`crate::bootstrap`]; this module feeds it (engine events, DHCPv6 datagrams out
//! of the tunnel, the clock), carries out its actions, and owns the node's addresses, routes
//! and state files.
//!
//! With `address_source` `auto` or `dhcpv6`, the state directory is opened first (created if
//! missing; the DUID and last lease are read, see [`crate::state`]) and decapsulated UDP to
//! port 546 comes here instead of the TUN device: it is the DHCPv6 server's answers, relayed
//! by the home agent (draft §3.2).
//!
//! Once ready with the RFC 3776 transport-mode SA, the node registers with its home agent
//! ([`crate::registration`], RFC 6275 §11.7.1): Binding Updates leave as whole packets (Home
//! Address option, then ESP) and the Binding Acknowledgement, whose type 2 Routing header the
//! kernel would drop, is read from the care-of address's interface before it does; an
//! nftables rule keeps the kernel from answering it with ICMPv6 Parameter Problem.
//!
//! With `home_agent` a name, the home agents are found by DNS first (RFC 5026 §5: SRV
//! `_mip6._ipv6.<name>`, else the name's AAAA; `ha-discovery`), retried with back-off while
//! nothing is found; the bootstrap then tries them in order ([`Bootstrap::set_home_agents`]).
//!
//! On SIGTERM: the node deregisters (waiting up to a second and a half for the
//! acknowledgement); with a DHCPv6 lease, Release goes through the tunnel and the node waits
//! for the Reply for up to a second; then Delete notifications for the child and IKE SAs, and
//! the address, routes and TUN device are removed.

use std::future::Future;
use std::net::{IpAddr, Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use ikev1::crypto::{Rng as _, SystemRng};
use ikev1::{Engine, Event};
use netio::nft::NftTable;
use netio::{AddressOptions, NetConfigGuard, Netlink, Route};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};
use tunnel::{Handle, LocalDatagram, LocalPayload, LocalUdp, TunInfo, TunnelConfig};

use crate::bootstrap::{Action, Bootstrap, RELEASE_WAIT, Settings, SharedRng};
use crate::config::{AddressSourceMode, Config, HomeAgent};
use crate::registration::Registration;
use crate::state::StateDir;
use crate::status::{AddressSource, State, Status};

/// The TUN device of the mobile node.
const TUN_NAME: &str = "mip6mn0";
/// Its MTU: room for the outer IPv6 header, UDP, ESP and the ICV below a 1500-byte link.
const TUN_MTU: u16 = 1400;
/// Routing header: the first extension header of a Binding Acknowledgement.
const ROUTING: u8 = 43;
/// How long shutdown waits for the deregistration's acknowledgement.
const DEREGISTRATION_WAIT: Duration = Duration::from_millis(1500);

/// The home agents of `name` (RFC 5026 §5), looked up until some are found: after a failure,
/// again in 5 s, doubling up to 30 s; the reason is in `status` (`last_error`) meanwhile.
async fn discover(
    name: &str,
    servers: &[SocketAddr],
    status: &Arc<Mutex<Status>>,
    rng: &SharedRng,
) -> Vec<Ipv6Addr> {
    let mut wait = Duration::from_secs(5);
    loop {
        let mut pick = |b: &mut [u8]| {
            let mut f = rng
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            f(b);
        };
        let result = match ha_discovery::Discovery::new(servers) {
            Ok(d) => d.resolve(name, &mut pick).await,
            Err(e) => Err(e),
        };
        let why = match result {
            Ok(found) if !found.is_empty() => {
                for c in &found {
                    info!(home_agent = %c.addr, target = %c.target, priority = c.priority, weight = c.weight, "home agent found");
                }
                let mut addrs: Vec<Ipv6Addr> = Vec::with_capacity(found.len());
                for c in found {
                    if !addrs.contains(&c.addr) {
                        addrs.push(c.addr);
                    }
                }
                return addrs;
            }
            Ok(_) => format!("home agent discovery for {name}: nothing found"),
            Err(e) => format!("home agent discovery for {name}: {e}"),
        };
        warn!(reason = %why, retry_in_s = wait.as_secs(), "no home agent yet");
        if let Ok(mut s) = status.lock() {
            s.last_error = Some(why);
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(30));
    }
}

/// The address the kernel would use to reach `ha`.
fn source_for(ha: Ipv6Addr) -> anyhow::Result<Ipv6Addr> {
    let s = UdpSocket::bind("[::]:0").context("choosing the care-of address")?;
    s.connect(SocketAddr::new(IpAddr::V6(ha), 500))
        .with_context(|| format!("no route to the home agent {ha}"))?;
    match s.local_addr()?.ip() {
        IpAddr::V6(a) => Ok(a),
        IpAddr::V4(a) => anyhow::bail!("the kernel chose the IPv4 address {a}"),
    }
}

struct Node {
    status: Arc<Mutex<Status>>,
    tunnel: Handle,
    tun: TunInfo,
    guard: NetConfigGuard,
    coa: Ipv6Addr,
    state_dir: Option<StateDir>,
    /// The last lease write, which the next one and the shutdown wait for.
    persisting: Option<tokio::task::JoinHandle<()>>,
    bootstrap: Bootstrap,
    /// The home registration, while the node has a home address with the RFC 3776 SAs.
    registration: Option<Registration>,
    rng: SharedRng,
    /// `binding_lifetime`.
    binding_lifetime: Duration,
    /// `home_registration`.
    home_registration: bool,
    /// The name the home agent is asked to keep in DNS (DNS Update option).
    ha_fqdn: Option<String>,
    /// Drops the kernel's ICMPv6 errors about our Binding Acknowledgements while we live.
    icmp_filter: IcmpFilter,
}

/// The nftables rule that keeps the kernel from answering Binding Acknowledgements (their
/// type 2 Routing header) with ICMPv6 Parameter Problem: being set up, or set up (`None` if
/// that failed). Dropping it deletes the table.
enum IcmpFilter {
    Pending(tokio::task::JoinHandle<Result<NftTable, String>>),
    Done(
        #[expect(dead_code, reason = "held for its Drop, which deletes the table")]
        Option<NftTable>,
    ),
}

impl IcmpFilter {
    /// Waits until the rule is in place (or failed, which is logged once).
    async fn ready(&mut self) {
        if let Self::Pending(task) = self {
            let table = match task.await {
                Ok(Ok(t)) => Some(t),
                Ok(Err(e)) => {
                    warn!(error = %e, "the kernel will answer Binding Acknowledgements with ICMPv6 Parameter Problem");
                    None
                }
                Err(e) => {
                    warn!(error = %e, "setting up the ICMPv6 filter");
                    None
                }
            };
            *self = Self::Done(table);
        }
    }
}

/// The receivers of the tunnel task's outputs.
struct Inputs {
    events: mpsc::UnboundedReceiver<Event>,
    local: mpsc::Receiver<LocalDatagram>,
    payloads: mpsc::Receiver<LocalPayload>,
}

/// Runs the mobile node until `shutdown` resolves, then tears down.
pub(crate) async fn run_daemon(
    cfg: Config,
    status: Arc<Mutex<Status>>,
    shutdown: impl Future<Output = &'static str>,
) -> anyhow::Result<()> {
    tokio::pin!(shutdown);
    let rng: SharedRng = {
        let mut sys = SystemRng::new();
        Arc::new(Mutex::new(move |b: &mut [u8]| sys.fill(b)))
    };
    let home_agents = match &cfg.home_agent {
        HomeAgent::Address(a) => vec![*a],
        HomeAgent::Name(name) => {
            tokio::select! {
                sig = &mut shutdown => {
                    info!(signal = sig, "shutting down before a home agent was found");
                    return Ok(());
                }
                found = discover(name, &cfg.dns_servers, &status, &rng) => {
                    if let Ok(mut s) = status.lock() {
                        s.home_agents.clone_from(&found);
                        s.last_error = None;
                    }
                    found
                }
            }
        }
    };
    let first_ha = home_agents[0];
    let coa = match cfg.file.care_of_address {
        Some(a) => a,
        None => source_for(first_ha)?,
    };
    let uses_dhcp = matches!(
        cfg.file.address_source,
        AddressSourceMode::Auto | AddressSourceMode::Dhcpv6
    );
    let (state_dir, duid, hint) = if uses_dhcp {
        let dir = StateDir::open(&cfg.file.state_dir)?;
        let duid = dir.duid(|| {
            let mut b = [0u8; 16];
            SystemRng::new().fill(&mut b);
            b
        })?;
        let hint = dir.lease();
        info!(%duid, ?hint, state_dir = %cfg.file.state_dir.display(), "DHCPv6 identity");
        (Some(dir), Some(duid), hint)
    } else {
        (None, None, None)
    };
    let settings = Settings {
        mode: cfg.file.address_source,
        home_agent: first_ha,
        home_address: cfg.file.home_address,
        dhcpv6_timeout: Duration::from_secs(cfg.file.dhcpv6_timeout),
        duid,
        hint,
        home_registration: cfg.file.home_registration,
        home_agent_timeout: Duration::from_secs(cfg.file.home_agent_timeout),
        dhcpv6_fqdn: cfg
            .file
            .fqdn
            .clone()
            .filter(|_| cfg.file.fqdn_update.dhcpv6()),
    };

    let nl = Netlink::new().context("netlink")?;
    let coa_ifindex = nl
        .interface_of(coa)
        .await
        .context("listing addresses")?
        .with_context(|| format!("care-of address {coa} is not configured on any interface"))?;
    let mut engine = Engine::new(cfg.engine_config(&home_agents), Box::new(SystemRng::new()));
    let unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    engine.set_wall_clock(Instant::now(), i64::try_from(unix).unwrap_or(i64::MAX));
    let tcfg = TunnelConfig {
        address: coa,
        natt_port: 4500,
        tun_name: TUN_NAME.into(),
        tun_mtu: TUN_MTU,
        // Draft §3.2: the DHCPv6 server's answers, relayed by the home agent, to port 546
        // (of the initial tunnel's link-local address, later of the home address).
        local_udp: if uses_dhcp {
            vec![LocalUdp {
                dst: None,
                port: dhcp6_client::CLIENT_PORT,
            }]
        } else {
            Vec::new()
        },
        mh_capture: Some((coa_ifindex, ROUTING)),
    };
    let tunnel::Tunnel {
        handle: tunnel,
        events,
        local,
        payloads,
        tun,
    } = tunnel::spawn(engine, tcfg, &nl).await?;
    let mut inputs = Inputs {
        events,
        local,
        payloads,
    };
    let daddrs: Vec<String> = home_agents.iter().map(ToString::to_string).collect();
    // `nft` takes tens of milliseconds to start: the filter is set up while the bootstrap
    // runs, and waited for before the first Binding Update.
    let rule = format!(
        "ip6 daddr {{ {} }} icmpv6 type parameter-problem counter drop",
        daddrs.join(", ")
    );
    let icmp_filter = IcmpFilter::Pending(tokio::task::spawn_blocking(move || {
        NftTable::create("mip6_mn", &[rule])
    }));
    let mut guard = NetConfigGuard::new(&nl);
    guard.track_link(tun.ifindex, &tun.name);
    let mut node = Node {
        status,
        tunnel,
        tun,
        guard,
        coa,
        state_dir,
        persisting: None,
        bootstrap: Bootstrap::new(settings, rng.clone()),
        registration: None,
        rng,
        binding_lifetime: Duration::from_secs(cfg.file.binding_lifetime),
        home_registration: cfg.file.home_registration,
        ha_fqdn: cfg
            .file
            .fqdn
            .clone()
            .filter(|_| cfg.file.fqdn_update.home_agent()),
        icmp_filter,
    };
    node.update(|s| s.care_of_address = Some(coa));
    if home_agents.len() > 1 {
        node.bootstrap.set_home_agents(home_agents);
    }
    node.bootstrap.start(Instant::now());
    node.drive().await;
    let signal = loop {
        tokio::select! {
            sig = &mut shutdown => break sig,
            more = node.next_input(&mut inputs) => more?,
        }
        node.drive().await;
    };
    info!(signal, "shutting down");
    node.update(|s| s.state = State::Stopping);
    // RFC 6275 §11.7.1: deregister before the SAs that protect it go.
    if node
        .registration
        .as_mut()
        .is_some_and(|r| r.deregister(Instant::now()))
    {
        node.drive().await;
        let limit = tokio::time::sleep(DEREGISTRATION_WAIT);
        tokio::pin!(limit);
        while node
            .registration
            .as_ref()
            .is_some_and(Registration::deregistering)
        {
            tokio::select! {
                () = &mut limit => break,
                more = node.next_input(&mut inputs) => {
                    if let Err(e) = more {
                        warn!(error = %e, "during deregistration");
                        break;
                    }
                }
            }
            node.drive().await;
        }
    }
    if node.bootstrap.shutdown(Instant::now()) {
        node.drive().await;
        // The bootstrap gives up after RELEASE_WAIT; this bound is only a safety net.
        let limit = tokio::time::sleep(RELEASE_WAIT + Duration::from_millis(500));
        tokio::pin!(limit);
        while !node.bootstrap.is_stopped() {
            tokio::select! {
                () = &mut limit => break,
                more = node.next_input(&mut inputs) => {
                    if let Err(e) = more {
                        warn!(error = %e, "during Release");
                        break;
                    }
                }
            }
            node.drive().await;
        }
    }
    if let Some(p) = node.persisting.take() {
        let _ = p.await;
    }
    shutdown_hook(node).await
}

impl Node {
    fn update(&self, f: impl FnOnce(&mut Status)) {
        if let Ok(mut s) = self.status.lock() {
            f(&mut s);
        }
    }

    /// Waits for the next input of the bootstrap (an engine event, a DHCPv6 datagram or its
    /// timer) and hands it over.
    async fn next_input(&mut self, inputs: &mut Inputs) -> anyhow::Result<()> {
        let deadline = self.bootstrap.poll_timeout();
        let reg_deadline = self
            .registration
            .as_ref()
            .and_then(Registration::poll_timeout);
        tokio::select! {
            p = inputs.payloads.recv() => {
                let p = p.context("the tunnel task stopped")?;
                if let Some(r) = self.registration.as_mut() {
                    r.on_payload(Instant::now(), &p);
                }
            }
            () = async {
                match reg_deadline {
                    Some(t) => tokio::time::sleep_until(t.into()).await,
                    None => std::future::pending().await,
                }
            } => {
                if let Some(r) = self.registration.as_mut() {
                    r.handle_timeout(Instant::now());
                }
            }
            ev = inputs.events.recv() => {
                let ev = ev.context("the tunnel task stopped")?;
                self.bootstrap.handle_ike_event(Instant::now(), &ev);
            }
            d = inputs.local.recv() => {
                let d = d.context("the tunnel task stopped")?;
                self.bootstrap.handle_datagram(Instant::now(), d.ike_sa, d.src, &d.payload);
            }
            () = async {
                match deadline {
                    Some(t) => tokio::time::sleep_until(t.into()).await,
                    None => std::future::pending().await,
                }
            } => self.bootstrap.handle_timeout(Instant::now()),
        }
        Ok(())
    }

    /// Carries out the bootstrap's actions, feeding results back, sends the Binding Updates
    /// due, then updates the status.
    async fn drive(&mut self) {
        while let Some(action) = self.bootstrap.poll_action() {
            self.execute(action).await;
        }
        let now = Instant::now();
        if let Some(r) = self.registration.as_mut() {
            for packet in r.poll(now) {
                if let Err(e) = self.tunnel.send_packet(packet).await {
                    warn!(error = %e, "Binding Update not sent");
                }
            }
        }
        let binding = self.registration.as_ref().map(|r| r.status(now));
        self.update(|s| {
            self.bootstrap.report(s);
            s.binding = binding;
        });
    }

    async fn execute(&mut self, action: Action) {
        match action {
            Action::InitiatePhase1 => {
                let (coa, ha) = (self.coa, self.bootstrap.home_agent());
                self.update(|s| s.home_agent = Some(ha));
                let r = self
                    .tunnel
                    .with_engine(move |e, now| {
                        e.initiate(
                            now,
                            0,
                            SocketAddr::new(IpAddr::V6(coa), 500),
                            SocketAddr::new(IpAddr::V6(ha), 500),
                        )
                    })
                    .await;
                let r = flatten(r);
                self.bootstrap.phase1_initiated(Instant::now(), r);
            }
            Action::InitiateChild { sa, role, request } => {
                debug!(ike_sa = %sa, %role, local_ts = %request.local_ts, remote_ts = %request.remote_ts, "Quick Mode");
                let r = self
                    .tunnel
                    .with_engine(move |e, now| e.initiate_child(now, sa, request))
                    .await;
                self.bootstrap
                    .child_initiated(Instant::now(), role, flatten(r));
            }
            Action::RequestModeConfig { sa } => {
                let r = self
                    .tunnel
                    .with_engine(move |e, now| e.request_mode_config(now, sa))
                    .await;
                if let Err(e) = flatten(r) {
                    self.bootstrap
                        .action_failed(Instant::now(), format!("requesting Mode Config: {e}"));
                }
            }
            Action::DeleteChild { sa, spi_in } => {
                let r = self
                    .tunnel
                    .with_engine(move |e, now| e.delete_child(now, sa, spi_in))
                    .await;
                if let Err(e) = flatten(r) {
                    debug!(ike_sa = %sa, spi_in = format_args!("{spi_in:08x}"), error = %e, "Delete not sent");
                }
            }
            Action::DeleteIkeSa { sa } => {
                let r = self
                    .tunnel
                    .with_engine(move |e, now| e.delete_ike_sa(now, sa))
                    .await;
                if let Err(e) = flatten(r) {
                    debug!(ike_sa = %sa, error = %e, "IKE SA not deleted");
                }
            }
            Action::SendDhcp {
                via,
                src,
                dst,
                payload,
            } => {
                if let Err(e) = self.tunnel.send_udp(Some(via), src, dst, payload).await {
                    self.bootstrap
                        .action_failed(Instant::now(), format!("sending DHCPv6: {e}"));
                }
            }
            Action::InstallAddress { address } => {
                let r = self.install(address).await;
                self.bootstrap.address_installed(Instant::now(), r);
            }
            Action::RemoveAddress { address } => {
                // The binding goes with the address (and with the SAs that protected it).
                self.registration = None;
                self.remove(address).await;
            }
            Action::PersistLease { address } => {
                // Written (and synced) off the bootstrap's path, in order.
                if let Some(dir) = self.state_dir.clone() {
                    let before = self.persisting.take();
                    self.persisting = Some(tokio::spawn(async move {
                        if let Some(b) = before {
                            let _ = b.await;
                        }
                        let saved = tokio::task::spawn_blocking(move || dir.save_lease(address));
                        if let Ok(Err(e)) = saved.await {
                            warn!(
                                error = format!("{e:#}"),
                                "the lease is not remembered across restarts"
                            );
                        }
                    }));
                }
            }
            Action::Ready {
                address,
                source,
                total,
            } => {
                info!(home_address = %address, source = ?source, total_ms = total.as_millis(), "ready");
                // Static mode has no transport-mode SA to register over (issue 3), nor has a
                // node with home_registration = false.
                if source != AddressSource::Static && self.home_registration {
                    self.icmp_filter.ready().await;
                    let mut seq = [0u8; 2];
                    {
                        let mut f = self
                            .rng
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner);
                        f(&mut seq);
                    }
                    self.registration = Some(Registration::start(
                        Instant::now(),
                        address,
                        self.bootstrap.home_agent(),
                        self.coa,
                        u16::from_be_bytes(seq),
                        self.binding_lifetime,
                        self.ha_fqdn.clone(),
                    ));
                }
            }
            Action::Failed { reason, retry_in } => {
                self.registration = None;
                // The bootstrap has logged it.
                debug!(%reason, ?retry_in, "attempt failed");
            }
        }
    }

    /// The home address on the TUN device and the routes through it.
    async fn install(&mut self, hoa: Ipv6Addr) -> Result<(), String> {
        let idx = self.tun.ifindex;
        self.guard
            .add_address(idx, hoa, 128, AddressOptions::default())
            .await
            .map_err(|e| format!("adding {hoa} to {}: {e}", self.tun.name))?;
        // Everything goes through the tunnel except the link the home agent is on, whose
        // connected route is more specific.
        let route = Route::new(Ipv6Addr::UNSPECIFIED, 0, idx).source(hoa);
        if let Err(e) = self.guard.add_route(&route).await {
            let _ = self.guard.remove_address(idx, hoa, 128).await;
            return Err(format!("default route via {}: {e}", self.tun.name));
        }
        Ok(())
    }

    async fn remove(&mut self, hoa: Ipv6Addr) {
        let idx = self.tun.ifindex;
        let route = Route::new(Ipv6Addr::UNSPECIFIED, 0, idx).source(hoa);
        if let Err(e) = self.guard.remove_route(&route).await {
            debug!(error = %e, "removing the default route");
        }
        if let Err(e) = self.guard.remove_address(idx, hoa, 128).await {
            debug!(error = %e, "removing the home address");
        }
        info!(home_address = %hoa, "home address removed");
    }
}

/// One error string out of the tunnel's and the engine's.
fn flatten<T, E: std::fmt::Display>(
    r: Result<Result<T, E>, tunnel::TunnelError>,
) -> Result<T, String> {
    match r {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(e.to_string()),
        Err(e) => Err(e.to_string()),
    }
}

/// Orderly teardown after the shutdown signal: Delete notifications for every SA, then the
/// home address, routes and the TUN device go.
async fn shutdown_hook(node: Node) -> anyhow::Result<()> {
    if let Err(e) = node.tunnel.shutdown().await {
        warn!(error = %e, "tunnel shutdown");
    }
    node.guard
        .cleanup()
        .await
        .context("removing addresses, routes and the TUN device")?;
    Ok(())
}
