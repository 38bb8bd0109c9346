//! The engine runner of `mip6-mn`: the IKE engine and the ESP data plane run in the shared
//! tunnel task (`tunnel` crate); this module drives the bootstrap and owns the node's
//! addresses and routes.
//!
//! Issue 3 (static mode): phase 1 with the home agent → a tunnel-mode SA for the configured
//! home address (home address ↔ any, outer care-of address ↔ home agent) → the home address
//! on the TUN device with the routes through it → `"ready"`. Each step's time goes into
//! `timings_ms`. The DHCPv6 and Mode Config sources (issue 4) slot in at the `Address` step.
//! If phase 1 fails or the home agent deletes the SA, the node starts again after a back-off.
//! On SIGTERM: Delete notifications for the child and IKE SAs, then the address, routes and
//! TUN device are removed.

use std::future::Future;
use std::net::{IpAddr, Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use daemon::status::{ChildSaStatus, IkeSaState, IkeSaStatus};
use ikev1::crypto::SystemRng;
use ikev1::{ChildRequest, Engine, Event, IkeSaId, Mode, TrafficSelector};
use netio::{AddressOptions, NetConfigGuard, Netlink, Route};
use tracing::{info, warn};
use tunnel::{Handle, TunInfo, TunnelConfig};

use crate::config::{AddressSourceMode, Config};
use crate::status::{AddressSource, State, Status};

/// The TUN device of the mobile node.
const TUN_NAME: &str = "mip6mn0";
/// Its MTU: room for the outer IPv6 header, UDP, ESP and the ICV below a 1500-byte link.
const TUN_MTU: u16 = 1400;
/// Wait before starting again after a failure.
const RETRY: Duration = Duration::from_secs(5);

fn ms(d: Duration) -> Option<u64> {
    Some(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
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
    cfg: Config,
    status: Arc<Mutex<Status>>,
    tunnel: Handle,
    tun: TunInfo,
    guard: NetConfigGuard,
    coa: Ipv6Addr,
    hoa: Option<Ipv6Addr>,
    sa: Option<IkeSaId>,
    started: Instant,
    phase1_done: Option<Instant>,
    routes_up: bool,
    retry_at: Option<Instant>,
}

/// Runs the mobile node until `shutdown` resolves, then tears down.
pub(crate) async fn run_daemon(
    cfg: Config,
    status: Arc<Mutex<Status>>,
    shutdown: impl Future<Output = &'static str>,
) -> anyhow::Result<()> {
    let coa = match cfg.file.care_of_address {
        Some(a) => a,
        None => source_for(cfg.file.home_agent)?,
    };
    let nl = Netlink::new().context("netlink")?;
    let mut engine = Engine::new(cfg.engine_config(), Box::new(SystemRng::new()));
    let unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    engine.set_wall_clock(Instant::now(), i64::try_from(unix).unwrap_or(i64::MAX));
    let tcfg = TunnelConfig {
        address: coa,
        natt_port: 4500,
        tun_name: TUN_NAME.into(),
        tun_mtu: TUN_MTU,
    };
    let (tunnel, mut events, tun) = tunnel::spawn(engine, tcfg, &nl).await?;
    let mut guard = NetConfigGuard::new(&nl);
    guard.track_link(tun.ifindex, &tun.name);
    let mut node = Node {
        cfg,
        status,
        tunnel,
        tun,
        guard,
        coa,
        hoa: None,
        sa: None,
        started: Instant::now(),
        phase1_done: None,
        routes_up: false,
        retry_at: None,
    };
    node.update(|s| s.care_of_address = Some(coa));
    node.start().await;
    tokio::pin!(shutdown);
    let signal = loop {
        let retry = node.retry_at;
        tokio::select! {
            sig = &mut shutdown => break sig,
            ev = events.recv() => match ev {
                Some(ev) => node.on_event(ev).await,
                None => anyhow::bail!("the tunnel task stopped"),
            },
            () = async {
                match retry {
                    Some(t) => tokio::time::sleep_until(t.into()).await,
                    None => std::future::pending().await,
                }
            } => {
                node.retry_at = None;
                node.start().await;
            }
        }
    };
    info!(signal, "shutting down");
    node.update(|s| s.state = State::Stopping);
    shutdown_hook(node).await
}

impl Node {
    fn update(&self, f: impl FnOnce(&mut Status)) {
        if let Ok(mut s) = self.status.lock() {
            f(&mut s);
        }
    }

    /// Starts (or restarts) the bootstrap with phase 1.
    async fn start(&mut self) {
        self.started = Instant::now();
        self.phase1_done = None;
        let (coa, ha) = (self.coa, self.cfg.file.home_agent);
        info!(care_of_address = %coa, home_agent = %ha, "starting phase 1");
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
        match r {
            Ok(Ok(sa)) => {
                self.sa = Some(sa);
                self.update(|s| {
                    s.state = State::Phase1;
                    s.ike_sa = IkeSaStatus {
                        state: IkeSaState::Connecting,
                        proposal: None,
                    };
                    s.timings_ms = Default::default();
                });
            }
            Ok(Err(e)) => self.failed(&e.to_string()),
            Err(e) => self.failed(&e.to_string()),
        }
    }

    fn failed(&mut self, why: &str) {
        warn!(reason = %why, retry_in = ?RETRY, "bootstrap failed");
        self.sa = None;
        self.retry_at = Some(Instant::now() + RETRY);
        self.update(|s| {
            s.state = State::Failed;
            s.ike_sa = IkeSaStatus::default();
            s.child_sas.clear();
        });
    }

    async fn on_event(&mut self, ev: Event) {
        match ev {
            Event::IkeSaEstablished { sa, proposal, .. } if Some(sa) == self.sa => {
                let now = Instant::now();
                self.phase1_done = Some(now);
                let t = now - self.started;
                self.update(|s| {
                    s.ike_sa = IkeSaStatus {
                        state: IkeSaState::Established,
                        proposal: Some(proposal),
                    };
                    s.timings_ms.phase1 = ms(t);
                    s.state = State::Address;
                });
                self.address(sa).await;
            }
            Event::IkeSaFailed { sa, reason } if Some(sa) == self.sa => {
                self.failed(&reason.to_string())
            }
            Event::IkeSaDeleted { sa, reason } if Some(sa) == self.sa => {
                self.remove_home_address().await;
                self.failed(&format!("IKE SA deleted: {reason}"));
            }
            Event::ChildSaEstablished(c) if Some(c.ike_sa) == self.sa => {
                self.update(|s| s.child_sas.push(ChildSaStatus::from_child(&c)));
                if c.mode == Mode::Tunnel {
                    self.ready().await;
                }
            }
            Event::ChildSaFailed { sa, reason, .. } if Some(sa) == self.sa => {
                warn!(%reason, "Quick Mode failed; deleting the IKE SA to start again");
                let _ = self
                    .tunnel
                    .with_engine(move |e, now| e.delete_ike_sa(now, sa))
                    .await;
            }
            Event::ChildSaDeleted { spi_in, .. } => {
                let spi = daemon::status::spi_hex(spi_in);
                self.update(|s| s.child_sas.retain(|c| c.spi_in != spi));
            }
            other => tracing::debug!(event = ?other, "event"),
        }
    }

    /// The Address step: static mode has it from the configuration.
    async fn address(&mut self, sa: IkeSaId) {
        let hoa = match (self.cfg.file.address_source, self.cfg.file.home_address) {
            (AddressSourceMode::Static, Some(a)) => a,
            (mode, _) => {
                // DHCPv6 and Mode Config come with the bootstrap issue.
                self.failed(&format!(
                    "address_source = \"{}\" is not implemented yet",
                    mode.as_str()
                ));
                return;
            }
        };
        self.hoa = Some(hoa);
        let t = self.phase1_done.map(|p| p.elapsed());
        self.update(|s| {
            s.home_address = Some(hoa);
            s.address_source = Some(AddressSource::Static);
            s.timings_ms.address = t.and_then(ms);
            s.state = State::Rfc3776Sas;
        });
        let req = ChildRequest {
            mode: Mode::Tunnel,
            local_ts: TrafficSelector::host(IpAddr::V6(hoa)),
            remote_ts: TrafficSelector::prefix(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0),
        };
        match self
            .tunnel
            .with_engine(move |e, now| e.initiate_child(now, sa, req))
            .await
        {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => self.failed(&e.to_string()),
            Err(e) => self.failed(&e.to_string()),
        }
    }

    /// The home address on the TUN device and the routes through it.
    async fn ready(&mut self) {
        let Some(hoa) = self.hoa else { return };
        if !self.routes_up {
            let idx = self.tun.ifindex;
            if let Err(e) = self
                .guard
                .add_address(idx, hoa, 128, AddressOptions::default())
                .await
            {
                return self.failed(&format!("adding {hoa} to {}: {e}", self.tun.name));
            }
            // Everything goes through the tunnel except the link the home agent is on, whose
            // connected route is more specific.
            let route = Route::new(Ipv6Addr::UNSPECIFIED, 0, idx).source(hoa);
            if let Err(e) = self.guard.add_route(&route).await {
                return self.failed(&format!("default route via {}: {e}", self.tun.name));
            }
            self.routes_up = true;
        }
        let now = Instant::now();
        let total = now - self.started;
        let sas = self.phase1_done.map(|p| now - p);
        self.update(|s| {
            s.timings_ms.rfc3776_sas = sas.and_then(ms);
            s.timings_ms.total = ms(total);
            s.state = State::Ready;
        });
        info!(home_address = %hoa, total_ms = total.as_millis(), "ready");
    }

    async fn remove_home_address(&mut self) {
        if !self.routes_up {
            return;
        }
        if let Some(hoa) = self.hoa {
            let route = Route::new(Ipv6Addr::UNSPECIFIED, 0, self.tun.ifindex).source(hoa);
            let _ = self.guard.remove_route(&route).await;
            let _ = self.guard.remove_address(self.tun.ifindex, hoa, 128).await;
        }
        self.routes_up = false;
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
