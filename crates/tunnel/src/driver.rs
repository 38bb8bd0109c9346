//! The tunnel task: one tokio task owns the IKEv1 engine, the ESP data plane, the IKE sockets
//! (UDP 500 and 4500), the raw ESP socket and the TUN device, and runs the driver loop of
//! `style.md` §3.9: take whatever input is ready, feed it to the engine it belongs to, send what
//! the engines produced, fire the timer, forward the events.
//!
//! On UDP 4500 IKE and ESP share the port (RFC 3948 §2.2): the non-ESP marker tells them apart.
//! Child SAs the IKE engine reports are installed in the ESP data plane here (one SA per
//! direction and an outbound policy), and removed when the engine reports them deleted; the
//! events are then handed to the daemon, which owns addresses, routes and the bootstrap logic.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use esp::{Direction, Esp, EspAction, PolicyAction, SaHandle, SpdEntry, Udp4500};
use ikev1::{ChildSa, Engine, Event, IkeSaId};
use netio::{EspSocket, IkeSocket, Netlink, Tun, TunConfig};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

use crate::convert;

/// Where the tunnel lives.
#[derive(Clone, Debug)]
pub struct TunnelConfig {
    /// The address IKE and ESP use (the care-of address of a mobile node, the home agent's
    /// address).
    pub address: Ipv6Addr,
    /// The NAT-T port (4500).
    pub natt_port: u16,
    /// The TUN device.
    pub tun_name: String,
    /// Its MTU.
    pub tun_mtu: u16,
}

/// A job for the tunnel task.
type EngineJob = Box<dyn FnOnce(&mut Engine, Instant) + Send>;

enum Command {
    Engine(EngineJob),
    Snapshot(oneshot::Sender<Snapshot>),
    Shutdown(oneshot::Sender<()>),
}

/// One installed child SA, as `status` shows it.
#[derive(Clone, Debug)]
pub struct ChildInfo {
    /// The negotiated SA (keys included: never log or print them).
    pub child: ChildSa,
    /// Packets and bytes through it: (in packets, in bytes, out packets, out bytes).
    pub traffic: (u64, u64, u64, u64),
}

/// What the tunnel holds right now.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// IKE SAs.
    pub ike_sas: Vec<(IkeSaId, ikev1::IkeSaInfo)>,
    /// Installed child SAs.
    pub children: Vec<ChildInfo>,
    /// The engine's counters.
    pub ike_counters: ikev1::Counters,
    /// The data plane's drop counters, by reason.
    pub esp_drops: Vec<(String, u64)>,
}

/// The TUN device the tunnel created (the daemon puts addresses and routes on it).
#[derive(Clone, Debug)]
pub struct TunInfo {
    /// Interface name.
    pub name: String,
    /// Interface index.
    pub ifindex: u32,
}

/// The daemon's handle on the tunnel task.
#[derive(Clone)]
pub struct Handle {
    tx: mpsc::Sender<Command>,
}

/// Why the tunnel could not start.
#[derive(Debug, thiserror::Error)]
pub enum TunnelError {
    /// A socket, the TUN device or netlink failed.
    #[error("{what}: {source}")]
    Net {
        /// What was being set up.
        what: String,
        /// The error.
        source: netio::Error,
    },
    /// The tunnel task is gone.
    #[error("the tunnel task has stopped")]
    Stopped,
}

impl Handle {
    /// Runs `f` on the engine inside the tunnel task and returns its result.
    pub async fn with_engine<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Engine, Instant) -> R + Send + 'static,
    ) -> Result<R, TunnelError> {
        let (tx, rx) = oneshot::channel();
        let job: EngineJob = Box::new(move |e, now| {
            let _ = tx.send(f(e, now));
        });
        self.tx
            .send(Command::Engine(job))
            .await
            .map_err(|_| TunnelError::Stopped)?;
        rx.await.map_err(|_| TunnelError::Stopped)
    }

    /// What the tunnel holds.
    pub async fn snapshot(&self) -> Result<Snapshot, TunnelError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Command::Snapshot(tx))
            .await
            .map_err(|_| TunnelError::Stopped)?;
        rx.await.map_err(|_| TunnelError::Stopped)
    }

    /// Deletes every SA (Delete notifications to the peers), gives them a moment to leave, and
    /// stops the task.
    pub async fn shutdown(&self) -> Result<(), TunnelError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Command::Shutdown(tx))
            .await
            .map_err(|_| TunnelError::Stopped)?;
        rx.await.map_err(|_| TunnelError::Stopped)
    }
}

struct Installed {
    child: ChildSa,
    inbound: SaHandle,
    outbound: SaHandle,
}

struct Task {
    engine: Engine,
    esp: Esp,
    cfg: TunnelConfig,
    ike: IkeSocket,
    natt: IkeSocket,
    raw: EspSocket,
    tun: Tun,
    installed: HashMap<(IkeSaId, u32), Installed>,
    events: mpsc::UnboundedSender<Event>,
    out: Vec<u8>,
}

/// Starts the tunnel task: binds UDP 500 and the NAT-T port on `cfg.address`, opens the raw
/// ESP socket and creates the TUN device. Events of the engine arrive on the returned
/// receiver after the tunnel acted on them (child SAs are installed before
/// `ChildSaEstablished` is delivered).
pub async fn spawn(
    engine: Engine,
    cfg: TunnelConfig,
    nl: &Netlink,
) -> Result<(Handle, mpsc::UnboundedReceiver<Event>, TunInfo), TunnelError> {
    let net = |what: String| move |source| TunnelError::Net { what, source };
    let a = IpAddr::V6(cfg.address);
    let ike = IkeSocket::bind(SocketAddr::new(a, 500))
        .map_err(net(format!("UDP [{}]:500", cfg.address)))?;
    let natt = IkeSocket::bind(SocketAddr::new(a, cfg.natt_port))
        .map_err(net(format!("UDP [{}]:{}", cfg.address, cfg.natt_port)))?;
    let raw = EspSocket::open(Some(cfg.address)).map_err(net("raw ESP socket".into()))?;
    let tun = Tun::create(&TunConfig::new(cfg.tun_name.clone(), cfg.tun_mtu), nl)
        .await
        .map_err(net(format!("TUN device {}", cfg.tun_name)))?;
    let tun_info = TunInfo {
        name: tun.name().to_owned(),
        ifindex: tun.ifindex(),
    };
    let (tx, rx) = mpsc::channel(64);
    let (ev_tx, ev_rx) = mpsc::unbounded_channel();
    let task = Task {
        engine,
        esp: Esp::new(),
        cfg,
        ike,
        natt,
        raw,
        tun,
        installed: HashMap::new(),
        events: ev_tx,
        out: Vec::with_capacity(2048),
    };
    tokio::spawn(task.run(rx));
    Ok((Handle { tx }, ev_rx, tun_info))
}

impl Task {
    async fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        let mut b500 = vec![0u8; 65536];
        let mut b4500 = vec![0u8; 65536];
        let mut braw = vec![0u8; 65536];
        let mut btun = vec![0u8; 65536];
        let mut shutting_down: Option<(oneshot::Sender<()>, Instant)> = None;
        loop {
            self.flush().await;
            let done_waiting = shutting_down.as_ref().is_some_and(|(_, until)| {
                self.engine.ike_sas().is_empty() || Instant::now() >= *until
            });
            if done_waiting && let Some((done, _)) = shutting_down.take() {
                let _ = done.send(());
                return;
            }
            let now = Instant::now();
            let deadline = [self.engine.poll_timeout(), self.esp.poll_timeout()]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(now + Duration::from_secs(3600))
                .max(now);
            let deadline = match &shutting_down {
                Some((_, until)) => deadline.min(*until),
                None => deadline,
            };
            tokio::select! {
                r = self.ike.recv(&mut b500) => match r {
                    Ok((n, from, local)) => {
                        self.engine.handle_datagram(Instant::now(), local, from, &b500[..n]);
                    }
                    Err(e) => warn!(error = %e, "UDP 500 receive failed"),
                },
                r = self.natt.recv(&mut b4500) => match r {
                    Ok((n, from, local)) => self.on_natt(from, local, &b4500[..n]).await,
                    Err(e) => warn!(error = %e, "UDP 4500 receive failed"),
                },
                r = self.raw.recv(&mut braw) => match r {
                    Ok((n, src, _dst)) => self.inbound_esp(IpAddr::V6(src), n, &braw).await,
                    Err(e) => warn!(error = %e, "raw ESP receive failed"),
                },
                r = self.tun.recv(&mut btun) => match r {
                    Ok(n) => self.outbound(&btun[..n]).await,
                    Err(e) => warn!(error = %e, "TUN receive failed"),
                },
                c = rx.recv() => match c {
                    Some(Command::Engine(job)) => job(&mut self.engine, Instant::now()),
                    Some(Command::Snapshot(reply)) => { let _ = reply.send(self.snapshot()); }
                    Some(Command::Shutdown(done)) => {
                        let now = Instant::now();
                        for sa in self.engine.ike_sas() {
                            let _ = self.engine.delete_ike_sa(now, sa);
                        }
                        shutting_down = Some((done, now + Duration::from_millis(500)));
                    }
                    None => return,
                },
                () = tokio::time::sleep_until(deadline.into()) => {
                    let now = Instant::now();
                    self.engine.handle_timeout(now);
                    self.esp.handle_timeout(now);
                    while let Some(ev) = self.esp.poll_event() {
                        debug!(event = ?ev, "ESP lifetime event");
                    }
                }
            }
        }
    }

    async fn on_natt(&mut self, from: SocketAddr, local: SocketAddr, data: &[u8]) {
        match esp::classify_udp_4500(data) {
            Udp4500::Ike(_) => self
                .engine
                .handle_datagram(Instant::now(), local, from, data),
            Udp4500::Esp(esp_data) => {
                let now = Instant::now();
                let action = self
                    .esp
                    .decapsulate(now, from.ip(), esp_data, &mut self.out);
                Self::deliver(&self.tun, action).await;
            }
            Udp4500::Keepalive => {}
            Udp4500::Invalid => debug!(%from, "dropped an invalid datagram on the NAT-T port"),
        }
    }

    async fn inbound_esp(&mut self, src: IpAddr, n: usize, buf: &[u8]) {
        let action = self
            .esp
            .decapsulate(Instant::now(), src, &buf[..n], &mut self.out);
        Self::deliver(&self.tun, action).await;
    }

    async fn deliver(tun: &Tun, action: EspAction<'_>) {
        match action {
            EspAction::ToTun(p) => {
                if let Err(e) = tun.send(p).await {
                    warn!(error = %e, "TUN write failed");
                }
            }
            EspAction::Transport(t) => debug!(
                spi = format_args!("{:08x}", t.spi),
                next = t.next_header,
                "transport-mode payload (no consumer yet)"
            ),
            EspAction::Drop(_) | EspAction::Bypass(_) | EspAction::ToNetwork(_) => {}
        }
    }

    async fn outbound(&mut self, packet: &[u8]) {
        let action = self.esp.encapsulate(Instant::now(), packet, &mut self.out);
        if let EspAction::ToNetwork(t) = action {
            let r = if t.udp {
                self.natt.send(t.data, t.src, t.dst).await
            } else {
                let (IpAddr::V6(s), IpAddr::V6(d)) = (t.src.ip(), t.dst.ip()) else {
                    return;
                };
                self.raw.send(t.data, s, d).await
            };
            if let Err(e) = r {
                debug!(error = %e, dst = %t.dst, "ESP send failed");
            }
        }
    }

    /// Sends what the engine produced and acts on its events.
    async fn flush(&mut self) {
        while let Some(t) = self.engine.poll_transmit() {
            let sock = if t.local.port() == self.cfg.natt_port {
                &self.natt
            } else {
                &self.ike
            };
            if let Err(e) = sock.send(&t.data, t.local, t.remote).await {
                warn!(error = %e, remote = %t.remote, "IKE send failed");
            }
        }
        while let Some(ev) = self.engine.poll_event() {
            match &ev {
                Event::ChildSaEstablished(c) => self.install(c),
                Event::ChildSaDeleted { sa, spi_in, .. } => self.uninstall(*sa, *spi_in),
                Event::IkeSaDeleted { sa, .. } => {
                    let gone: Vec<_> = self
                        .installed
                        .keys()
                        .filter(|(s, _)| s == sa)
                        .copied()
                        .collect();
                    for (s, spi) in gone {
                        self.uninstall(s, spi);
                    }
                }
                _ => {}
            }
            let _ = self.events.send(ev);
        }
    }

    fn install(&mut self, c: &ChildSa) {
        let now = Instant::now();
        let (inb, outb) = match convert::sa_params(c) {
            Ok(p) => p,
            Err(e) => {
                warn!(error = %e, "cannot install the negotiated SA");
                return;
            }
        };
        let inbound = match self.esp.add_sa(now, &inb) {
            Ok(h) => h,
            Err(e) => return warn!(error = %e, "installing the inbound SA failed"),
        };
        let outbound = match self.esp.add_sa(now, &outb) {
            Ok(h) => h,
            Err(e) => {
                self.esp.remove_sa(inbound);
                return warn!(error = %e, "installing the outbound SA failed");
            }
        };
        let entry = SpdEntry {
            selector: outb.selector,
            direction: Direction::Outbound,
            action: PolicyAction::Protect(outbound),
        };
        // Narrow policies (one protocol, e.g. the RFC 3776 transport SA for protocol 135)
        // before broad ones (the tunnel SA for everything of the home address).
        if outb.selector.next_proto.is_some() {
            self.esp.spd_mut().insert(0, entry);
        } else {
            self.esp.spd_mut().push(entry);
        }
        info!(spi_in = format_args!("{:08x}", c.spi_in), spi_out = format_args!("{:08x}", c.spi_out), mode = %c.mode, "SA pair installed in the data plane");
        // A rekeyed pair replaces the old one for the same selectors: newest first.
        self.installed.insert(
            (c.ike_sa, c.spi_in),
            Installed {
                child: c.clone(),
                inbound,
                outbound,
            },
        );
    }

    fn uninstall(&mut self, sa: IkeSaId, spi_in: u32) {
        let key = self
            .installed
            .keys()
            .find(|(_, s)| *s == spi_in)
            .copied()
            .unwrap_or((sa, spi_in));
        if let Some(i) = self.installed.remove(&key) {
            self.esp.spd_mut().remove_for_sa(i.outbound);
            self.esp.remove_sa(i.outbound);
            self.esp.remove_sa(i.inbound);
            info!(
                spi_in = format_args!("{spi_in:08x}"),
                "SA pair removed from the data plane"
            );
        }
    }

    fn snapshot(&self) -> Snapshot {
        let ike_sas = self
            .engine
            .ike_sas()
            .into_iter()
            .filter_map(|id| self.engine.ike_sa_info(id).map(|i| (id, i)))
            .collect();
        let mut children: Vec<ChildInfo> = self
            .installed
            .values()
            .map(|i| {
                let inb = self.esp.sad().info(i.inbound);
                let outb = self.esp.sad().info(i.outbound);
                let c = |x: Option<esp::SaInfo>| {
                    x.map(|s| (s.counters.packets, s.counters.bytes))
                        .unwrap_or_default()
                };
                let (ip, ib) = c(inb);
                let (op, ob) = c(outb);
                ChildInfo {
                    child: i.child.clone(),
                    traffic: (ip, ib, op, ob),
                }
            })
            .collect();
        children.sort_by_key(|c| (c.child.ike_sa, c.child.spi_in));
        let d = self.esp.drops();
        Snapshot {
            ike_sas,
            children,
            ike_counters: self.engine.counters().clone(),
            esp_drops: d.iter().map(|(r, n)| (format!("{r:?}"), n)).collect(),
        }
    }
}
