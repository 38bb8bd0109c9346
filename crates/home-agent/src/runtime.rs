//! The engine runner of `mip6-ha`: the IKE engine and the ESP data plane run in the shared
//! tunnel task (`tunnel` crate); this module holds the home agent's policy and owns its routes.
//!
//! Issue 3 (static addresses): a peer may have a tunnel-mode SA only for the `home_address` of
//! its `[[peers]]` entry (RFC 3776 §4: the HA checks that the identity holds the address);
//! every other Quick Mode is refused with INVALID-ID-INFORMATION and logged. Once such an SA is
//! up, the home address is routed into the TUN device and the HA answers neighbour solicitations
//! for it on the home link (proxy NDP), so that home-link hosts reach the mobile node. The
//! DHCPv6 relay and Mode Config (issue 4) and the binding cache (issue 5) come on top.
//! On SIGTERM: Delete notifications to every peer, then routes, proxy entries and the TUN
//! device are removed.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use daemon::status::ChildSaStatus;
use ikev1::crypto::SystemRng;
use ikev1::{ChildPolicy, Engine, Event, Identity, Mode, TrafficSelector};
use netio::{NetConfigGuard, Netlink, Route};
use tracing::{info, warn};
use tunnel::{Handle, Snapshot, TunInfo, TunnelConfig};

use crate::config::Config;
use crate::status::{AddressSource, PeerStatus, Status};

/// The TUN device of the home agent.
const TUN_NAME: &str = "mip6ha0";
/// Its MTU (see the mobile node's).
const TUN_MTU: u16 = 1400;
/// How often `status` is refreshed from the tunnel task.
const STATUS_EVERY: Duration = Duration::from_secs(1);

/// RFC 3776 §4 for static addresses: a peer's SA must be for its configured home address.
struct StaticHomeAddresses {
    peers: Vec<(Identity, Option<Ipv6Addr>)>,
}

impl ChildPolicy for StaticHomeAddresses {
    fn allow(
        &self,
        identity: &Identity,
        _local: &TrafficSelector,
        remote: &TrafficSelector,
        mode: Mode,
    ) -> Result<(), String> {
        let Some((_, hoa)) = self.peers.iter().find(|(id, _)| id.matches(identity)) else {
            return Err(format!("{identity} is not a configured peer"));
        };
        let Some(hoa) = hoa else {
            return Err(format!("{identity} has no home_address configured"));
        };
        if remote.prefix_len == 128 && remote.addr == IpAddr::V6(*hoa) {
            Ok(())
        } else {
            Err(format!(
                "{identity} holds {hoa}, not {remote} ({mode} mode)"
            ))
        }
    }
}

struct HomeAgent {
    cfg: Config,
    status: Arc<Mutex<Status>>,
    tunnel: Handle,
    tun: TunInfo,
    guard: NetConfigGuard,
    /// Home addresses routed into the tunnel, with the SAs (our SPI) that carry them.
    routed: HashMap<Ipv6Addr, Vec<u32>>,
}

/// Runs the home agent until `shutdown` resolves, then tears down.
pub(crate) async fn run_daemon(
    cfg: Config,
    status: Arc<Mutex<Status>>,
    shutdown: impl Future<Output = &'static str>,
) -> anyhow::Result<()> {
    let address = *cfg.file.listen.first().context("listen: no address")?;
    let nl = Netlink::new().context("netlink")?;
    let mut engine = Engine::new(cfg.engine_config(), Box::new(SystemRng::new()));
    let unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    engine.set_wall_clock(Instant::now(), i64::try_from(unix).unwrap_or(i64::MAX));
    engine.set_child_policy(Box::new(StaticHomeAddresses {
        peers: cfg
            .peers
            .iter()
            .map(|p| (p.identity.clone(), p.home_address))
            .collect(),
    }));
    let tcfg = TunnelConfig {
        address,
        natt_port: 4500,
        tun_name: TUN_NAME.into(),
        tun_mtu: TUN_MTU,
    };
    let (tunnel, mut events, tun) = tunnel::spawn(engine, tcfg, &nl).await?;
    let mut guard = NetConfigGuard::new(&nl);
    guard.track_link(tun.ifindex, &tun.name);
    let home = cfg.file.home_link.interface.clone();
    guard
        .set_ipv6_conf("all", "forwarding", "1")
        .context("enabling IPv6 forwarding")?;
    guard
        .set_ipv6_conf(&home, "proxy_ndp", "1")
        .with_context(|| format!("proxy_ndp on {home}"))?;
    let mut ha = HomeAgent {
        cfg,
        status,
        tunnel,
        tun,
        guard,
        routed: HashMap::new(),
    };
    info!(%address, home_link = %home, "home agent up");
    tokio::pin!(shutdown);
    let mut tick = tokio::time::interval(STATUS_EVERY);
    let signal = loop {
        tokio::select! {
            sig = &mut shutdown => break sig,
            ev = events.recv() => match ev {
                Some(ev) => { ha.on_event(ev).await; ha.refresh().await; }
                None => anyhow::bail!("the tunnel task stopped"),
            },
            _ = tick.tick() => ha.refresh().await,
        }
    };
    info!(signal, "shutting down");
    shutdown_hook(ha).await
}

impl HomeAgent {
    async fn on_event(&mut self, ev: Event) {
        match ev {
            Event::ChildSaEstablished(c) => {
                let hoa = tunnel::convert::host_addr(&c.remote_ts);
                if let (Mode::Tunnel, Some(hoa)) = (c.mode, hoa) {
                    self.route(hoa, c.spi_in).await;
                }
            }
            Event::ChildSaDeleted { spi_in, .. } => self.unroute(spi_in).await,
            Event::ChildSaFailed { sa, reason, .. } => {
                warn!(sa = %sa, %reason, "Quick Mode refused or failed")
            }
            other => tracing::debug!(event = ?other, "event"),
        }
    }

    async fn route(&mut self, hoa: Ipv6Addr, spi_in: u32) {
        let spis = self.routed.entry(hoa).or_default();
        spis.push(spi_in);
        if spis.len() > 1 {
            return;
        }
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

    async fn unroute(&mut self, spi_in: u32) {
        let Some(hoa) = self
            .routed
            .iter()
            .find(|(_, s)| s.contains(&spi_in))
            .map(|(a, _)| *a)
        else {
            return;
        };
        let spis = self.routed.entry(hoa).or_default();
        spis.retain(|s| *s != spi_in);
        if !spis.is_empty() {
            return;
        }
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

    async fn refresh(&self) {
        let Ok(snap) = self.tunnel.snapshot().await else {
            return;
        };
        let status = build_status(&snap);
        if let Ok(mut s) = self.status.lock() {
            *s = status;
        }
    }
}

fn build_status(snap: &Snapshot) -> Status {
    let mut peers: Vec<PeerStatus> = snap
        .ike_sas
        .iter()
        .filter(|(_, i)| i.established)
        .map(|(id, i)| {
            let children: Vec<_> = snap
                .children
                .iter()
                .filter(|c| c.child.ike_sa == *id)
                .collect();
            let hoa = children
                .iter()
                .filter(|c| c.child.mode == Mode::Tunnel)
                .find_map(|c| tunnel::convert::host_addr(&c.child.remote_ts));
            let coa = match i.remote.ip() {
                IpAddr::V6(a) => Some(a),
                IpAddr::V4(_) => None,
            };
            PeerStatus {
                identity: i
                    .remote_id
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
                care_of_address: coa,
                home_address: hoa,
                address_source: hoa.map(|_| AddressSource::Static),
                child_sas: children
                    .iter()
                    .map(|c| ChildSaStatus::from_child(&c.child))
                    .collect(),
            }
        })
        .collect();
    peers.sort_by(|a, b| a.identity.cmp(&b.identity));
    let c = &snap.ike_counters;
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
    ] {
        counters.insert(k.to_owned(), v);
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
    Status { peers, counters }
}

/// Orderly teardown after the shutdown signal: Delete notifications to every peer, then
/// routes, proxy entries and the TUN device go.
async fn shutdown_hook(ha: HomeAgent) -> anyhow::Result<()> {
    if let Err(e) = ha.tunnel.shutdown().await {
        warn!(error = %e, "tunnel shutdown");
    }
    ha.guard
        .cleanup()
        .await
        .context("removing routes, proxy entries and the TUN device")?;
    Ok(())
}
