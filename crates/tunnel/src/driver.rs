//! The tunnel task: one tokio task owns the IKEv1 engine, the ESP data plane, the IKE sockets
//! (UDP 500 and 4500), the raw ESP socket and the TUN device, and runs the driver loop of
//! `style.md` §3.9: take whatever input is ready, feed it to the engine it belongs to, send what
//! the engines produced, fire the timer, forward the events.
//!
//! On UDP 4500 IKE and ESP share the port (RFC 3948 §2.2): the non-ESP marker tells them apart.
//! ESP in UDP (RFC 3948 §2.1) leaves with UDP GSO where the kernel has it (a run of sealed
//! packets of one size to one peer in one system call) and arrives with UDP GRO (a run of the
//! peer's datagrams in one buffer, cut apart here; each datagram, IKE, keepalive or ESP, is then
//! handled exactly as if it had come alone).
//! Child SAs the IKE engine reports are installed in the ESP data plane here (one SA per
//! direction and an outbound policy), and removed when the engine reports them deleted; the
//! events are then handed to the daemon, which owns addresses, routes and the bootstrap logic.
//!
//! Some decapsulated packets are the daemon's own traffic rather than the TUN device's: the
//! DHCPv6 messages of the bootstrap (draft-devarapalli-mip6-ikev1-bootstrap §3.2; a client's
//! message to the home agent's relay, the relay's answer to the mobile node's client). The
//! daemon names them with [`TunnelConfig::local_udp`]; they arrive on [`Tunnel::local`] with
//! the IKE SA whose child SA carried them, and the daemon answers with [`Handle::send_udp`],
//! through a child SA of a given IKE SA (several mobile nodes may use the same link-local
//! address, so the SPD alone cannot pick the tunnel).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::time::{Duration, Instant};

use esp::{BatchItem, Direction, Esp, EspAction, PolicyAction, SaHandle, SpdEntry, Udp4500};
use ikev1::{ChildSa, Engine, Event, IkeSaId};
use netio::{
    EspSocket, IkeSocket, MAX_BATCH, Netlink, PacketSocket, RawIpSocket, RecvMeta, Tun, TunConfig,
    TunRecvBatch, TunSendBatch,
};
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
    /// Decapsulated UDP datagrams for the daemon instead of the TUN device.
    pub local_udp: Vec<LocalUdp>,
    /// Read packets the kernel drops (RFC 6275 §6.3 Home Address option, §6.4 type 2 Routing
    /// header) from this interface index, those whose first next header is the given one (60
    /// at a home agent, 43 at a mobile node), and decapsulate them here.
    pub mh_capture: Option<(u32, u8)>,
}

/// Which decapsulated datagrams go to the daemon ([`Tunnel::local`]): UDP to `port`, sent to
/// `dst` (any destination when `None`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalUdp {
    /// The destination address, or any.
    pub dst: Option<Ipv6Addr>,
    /// The destination port.
    pub port: u16,
}

/// A UDP datagram that came out of a tunnel-mode child SA, for the daemon.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalDatagram {
    /// The IKE SA of the child SA that carried it.
    pub ike_sa: IkeSaId,
    /// Our SPI of that child SA.
    pub spi_in: u32,
    /// Inner source.
    pub src: SocketAddrV6,
    /// Inner destination.
    pub dst: SocketAddrV6,
    /// The UDP payload.
    pub payload: Vec<u8>,
}

/// A transport-mode ESP payload (RFC 3776: the Mobility Header between the home address and the
/// home agent), for the daemon.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalPayload {
    /// The IKE SA of the child SA that carried it.
    pub ike_sa: IkeSaId,
    /// Our SPI of that child SA.
    pub spi_in: u32,
    /// The source as the upper layer sees it: the Home Address option's address if there
    /// was one (RFC 6275 §9.3.1), else the IPv6 source.
    pub src: Ipv6Addr,
    /// The destination as the upper layer sees it: the type 2 Routing header's address if
    /// there was one, else the IPv6 destination.
    pub dst: Ipv6Addr,
    /// The IPv6 source address (the care-of address when a Home Address option was there).
    pub outer_src: Ipv6Addr,
    /// Whether the packet carried a Home Address option or a type 2 Routing header.
    pub mobile_ipv6: bool,
    /// ESP's Next Header (135 for the Mobility Header).
    pub next_header: u8,
    /// The upper-layer header and data.
    pub payload: Vec<u8>,
}

/// At most this many datagrams wait for the daemon; more are dropped and counted.
const LOCAL_QUEUE: usize = 256;

/// Packets taken from the TUN device per wake-up (a drain stops there), and frames queued
/// for it before a write.
const TUN_BATCH: usize = 128;

/// Receive and send buffer of the ESP sockets: a TSO burst is ~45 ESP packets per 64 KiB.
const SOCKET_BUFFER: usize = 4 << 20;

/// Largest ESP packet received (the IPv6 payload limit; fragments are reassembled first).
const MAX_DATAGRAM: usize = 65535;

/// What happened to the daemon's own datagrams.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LocalCounters {
    /// Handed to the daemon.
    pub delivered: u64,
    /// Dropped: the daemon's queue was full.
    pub dropped_queue_full: u64,
    /// Dropped: bad UDP length or checksum.
    pub dropped_malformed: u64,
    /// Sent by the daemon through a child SA.
    pub sent: u64,
    /// Not sent: no child SA (of the given IKE SA) covers the datagram.
    pub send_no_sa: u64,
    /// Transport-mode payloads handed to the daemon.
    pub payloads_delivered: u64,
    /// Captured packets (Home Address option, type 2 Routing header) that were not ESP for
    /// us, or did not parse.
    pub captured_ignored: u64,
}

/// A job for the tunnel task.
type EngineJob = Box<dyn FnOnce(&mut Engine, Instant) + Send>;

enum Command {
    Engine(EngineJob),
    SendUdp {
        via: Option<IkeSaId>,
        src: SocketAddrV6,
        dst: SocketAddrV6,
        payload: Vec<u8>,
    },
    SendPacket(Vec<u8>),
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
    /// The daemon's own datagrams.
    pub local: LocalCounters,
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

    /// Sends a UDP datagram from `src` to `dst` through ESP: through a tunnel-mode child SA
    /// of `via` whose selectors cover it, or, without `via`, as the SPD says (like a packet
    /// from the TUN device). A datagram no SA covers is dropped and counted.
    pub async fn send_udp(
        &self,
        via: Option<IkeSaId>,
        src: SocketAddrV6,
        dst: SocketAddrV6,
        payload: Vec<u8>,
    ) -> Result<(), TunnelError> {
        self.tx
            .send(Command::SendUdp {
                via,
                src,
                dst,
                payload,
            })
            .await
            .map_err(|_| TunnelError::Stopped)
    }

    /// Sends an IPv6 packet the daemon built (a Binding Update with its Home Address option, a
    /// Binding Acknowledgement with its type 2 Routing header) through the SPD, like a packet
    /// from the TUN device; transport-mode ESP keeps the extension headers in front.
    pub async fn send_packet(&self, packet: Vec<u8>) -> Result<(), TunnelError> {
        self.tx
            .send(Command::SendPacket(packet))
            .await
            .map_err(|_| TunnelError::Stopped)
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
    /// Installation order: the newest pair of a rekeyed SA wins in [`Handle::send_udp`].
    order: u64,
}

/// The task's receive buffers, allocated once: recvmmsg on the ESP sockets, TUN frames split
/// into packets.
struct Buffers {
    b500: Vec<u8>,
    bcap: Vec<u8>,
    b4500: Vec<Vec<u8>>,
    braw: Vec<Vec<u8>>,
    btun: TunRecvBatch,
}

impl Buffers {
    fn new(tun_mtu: u16) -> Self {
        Self {
            b500: vec![0u8; 65536],
            bcap: vec![0u8; 65536],
            b4500: (0..MAX_BATCH).map(|_| vec![0u8; MAX_DATAGRAM]).collect(),
            braw: (0..MAX_BATCH).map(|_| vec![0u8; MAX_DATAGRAM]).collect(),
            btun: TunRecvBatch::new(TUN_BATCH, usize::from(tun_mtu), 0),
        }
    }
}

struct Task {
    engine: Engine,
    esp: Esp,
    cfg: TunnelConfig,
    ike: IkeSocket,
    natt: IkeSocket,
    raw: EspSocket,
    /// Sends whole packets (transport-mode ESP behind extension headers).
    raw_ip: RawIpSocket,
    /// Reads what the kernel drops (see [`TunnelConfig::mh_capture`]).
    capture: Option<PacketSocket>,
    tun: Tun,
    /// Decapsulated packets on their way to the TUN device (coalesced when it has offload).
    tun_tx: TunSendBatch,
    /// Sealed ESP packets of one TUN batch, back to back, and where each input went.
    sealed: Vec<u8>,
    items: Vec<BatchItem>,
    /// Frames from the TUN device that could not be split (bad virtio or packet headers).
    tun_frame_drops: u64,
    installed: HashMap<(IkeSaId, u32), Installed>,
    /// The IKE SA of each installed pair, by our SPI (unique in the engine).
    ike_sa_by_spi: HashMap<u32, IkeSaId>,
    installs: u64,
    events: mpsc::UnboundedSender<Event>,
    local: mpsc::Sender<LocalDatagram>,
    payloads: mpsc::Sender<LocalPayload>,
    local_counters: LocalCounters,
    out: Vec<u8>,
    /// Receive buffer of [`Task::drain_ike`].
    ike_scratch: Vec<u8>,
    /// [`Task::drain_ike`] ran for the batch being handled (once is enough: every IKE message
    /// sent before a packet of the batch was queued when the batch was read).
    ike_drained: bool,
    scratch: Vec<u8>,
}

/// A running tunnel task, as [`spawn`] returns it.
pub struct Tunnel {
    /// Commands to the task.
    pub handle: Handle,
    /// The engine's events, after the task acted on them (child SAs are installed before
    /// `ChildSaEstablished` is delivered).
    pub events: mpsc::UnboundedReceiver<Event>,
    /// The datagrams [`TunnelConfig::local_udp`] names.
    pub local: mpsc::Receiver<LocalDatagram>,
    /// Transport-mode ESP payloads (the Mobility Header of RFC 3776).
    pub payloads: mpsc::Receiver<LocalPayload>,
    /// The TUN device.
    pub tun: TunInfo,
}

/// Starts the tunnel task: binds UDP 500 and the NAT-T port on `cfg.address`, opens the raw
/// ESP socket and creates the TUN device.
pub async fn spawn(engine: Engine, cfg: TunnelConfig, nl: &Netlink) -> Result<Tunnel, TunnelError> {
    let net = |what: String| move |source| TunnelError::Net { what, source };
    let a = IpAddr::V6(cfg.address);
    let ike = IkeSocket::bind(SocketAddr::new(a, 500))
        .map_err(net(format!("UDP [{}]:500", cfg.address)))?;
    let natt = IkeSocket::bind(SocketAddr::new(a, cfg.natt_port))
        .map_err(net(format!("UDP [{}]:{}", cfg.address, cfg.natt_port)))?;
    let raw = EspSocket::open(Some(cfg.address)).map_err(net("raw ESP socket".into()))?;
    let raw_ip = RawIpSocket::open().map_err(net("raw IPv6 socket".into()))?;
    let capture = match cfg.mh_capture {
        Some((ifindex, nh)) => Some(
            PacketSocket::open(ifindex, nh)
                .map_err(net(format!("packet socket on interface {ifindex}")))?,
        ),
        None => None,
    };
    // Bursts (a home agent answering many nodes at once) must not overflow the queues while
    // the task is busy; the IKE socket too: a lost Main Mode message costs the node a
    // retransmission, a second or more.
    for (what, r) in [
        (
            "raw ESP",
            raw.set_buffer_sizes(SOCKET_BUFFER, SOCKET_BUFFER),
        ),
        ("NAT-T", natt.set_buffer_sizes(SOCKET_BUFFER, SOCKET_BUFFER)),
        ("IKE", ike.set_buffer_sizes(SOCKET_BUFFER, SOCKET_BUFFER)),
    ] {
        if let Err(e) = r {
            debug!(socket = what, error = %e, "could not enlarge the socket buffers");
        }
    }
    // ESP in UDP arrives coalesced where the kernel can (UDP GRO; the receive buffers are
    // MAX_DATAGRAM bytes, the largest GRO buffer); IKE on 4500 is cut out of it per datagram.
    let gro = natt.enable_gro();
    debug!(gso = natt.gso(), gro, "NAT-T socket offload");
    // Offload (TSO/GSO frames from the kernel, GRO frames to it) where the kernel has it.
    let offload = TunConfig {
        offload: true,
        ..TunConfig::new(cfg.tun_name.clone(), cfg.tun_mtu)
    };
    let tun = match Tun::create(&offload, nl).await {
        Ok(t) => t,
        Err(e) => {
            debug!(error = %e, "TUN device with offload failed; without");
            Tun::create(&TunConfig::new(cfg.tun_name.clone(), cfg.tun_mtu), nl)
                .await
                .map_err(net(format!("TUN device {}", cfg.tun_name)))?
        }
    };
    let tun_info = TunInfo {
        name: tun.name().to_owned(),
        ifindex: tun.ifindex(),
    };
    let (tx, rx) = mpsc::channel(64);
    let (ev_tx, ev_rx) = mpsc::unbounded_channel();
    let (local_tx, local_rx) = mpsc::channel(LOCAL_QUEUE);
    let (payload_tx, payload_rx) = mpsc::channel(LOCAL_QUEUE);
    let task = Task {
        engine,
        esp: Esp::new(),
        cfg,
        ike,
        natt,
        raw,
        raw_ip,
        capture,
        tun_tx: TunSendBatch::for_tun(&tun, TUN_BATCH),
        sealed: Vec::with_capacity(TUN_BATCH * 1600),
        items: Vec::with_capacity(TUN_BATCH),
        tun_frame_drops: 0,
        tun,
        installed: HashMap::new(),
        ike_sa_by_spi: HashMap::new(),
        installs: 0,
        events: ev_tx,
        local: local_tx,
        payloads: payload_tx,
        local_counters: LocalCounters::default(),
        out: Vec::with_capacity(2048),
        ike_scratch: vec![0u8; MAX_DATAGRAM],
        ike_drained: false,
        scratch: Vec::with_capacity(2048),
    };
    // Allocated (and written) here, not at the task's first run: several MiB that would
    // otherwise delay the first IKE message the daemon asks for.
    let buffers = Buffers::new(task.cfg.tun_mtu);
    tokio::spawn(task.run(rx, buffers));
    Ok(Tunnel {
        handle: Handle { tx },
        events: ev_rx,
        local: local_rx,
        payloads: payload_rx,
        tun: tun_info,
    })
}

impl Task {
    async fn run(mut self, mut rx: mpsc::Receiver<Command>, buffers: Buffers) {
        let Buffers {
            mut b500,
            mut bcap,
            mut b4500,
            mut braw,
            mut btun,
        } = buffers;
        let mut m4500 = [RecvMeta::default(); MAX_BATCH];
        let mut mraw = [RecvMeta::default(); MAX_BATCH];
        let mut shutting_down: Option<(oneshot::Sender<()>, Instant)> = None;
        loop {
            self.flush().await;
            self.ike_drained = false;
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
            // IKE before ESP: a Quick Mode's last message and the first packet on the new SA
            // can be ready together (the peer sends them back to back); the SA must be
            // installed before that packet is opened.
            tokio::select! {
                biased;
                r = self.ike.recv(&mut b500) => match r {
                    Ok((n, from, local)) => {
                        self.engine.handle_datagram(Instant::now(), local, from, &b500[..n]);
                    }
                    Err(e) => warn!(error = %e, "UDP 500 receive failed"),
                },
                r = self.natt.recv_batch(&mut b4500, &mut m4500) => match r {
                    Ok(n) => {
                        let port = self.natt.local_addr().port();
                        for (m, b) in m4500[..n].iter().zip(&b4500) {
                            if m.truncated {
                                debug!(from = %m.from, "dropped a datagram longer than the buffer");
                                continue;
                            }
                            let local = SocketAddr::V6(local_of(m, port));
                            // UDP GRO: several datagrams of the peer in one buffer, each
                            // handled as if it had come alone.
                            for d in m.datagrams(b) {
                                self.on_natt(SocketAddr::V6(m.from), local, d).await;
                            }
                        }
                        self.flush_tun().await;
                    }
                    Err(e) => warn!(error = %e, "UDP 4500 receive failed"),
                },
                r = self.raw.recv_batch(&mut braw, &mut mraw) => match r {
                    Ok(n) => {
                        for (m, b) in mraw[..n].iter().zip(&braw) {
                            if m.truncated {
                                debug!(from = %m.from, "dropped an ESP packet longer than the buffer");
                                continue;
                            }
                            self.inbound_esp(*m.from.ip(), m.dst, m.len, b).await;
                        }
                        self.flush_tun().await;
                        // The TUN device comes after the ESP socket in this biased select:
                        // take its queue now too, so that a stream of ESP cannot starve it.
                        if matches!(self.tun.try_recv_batch(&mut btun), Ok(n) if n > 0) {
                            self.tun_frame_drops = btun.dropped();
                            self.outbound_batch(&btun).await;
                        }
                    }
                    Err(e) => warn!(error = %e, "raw ESP receive failed"),
                },
                r = async {
                    match &self.capture {
                        Some(c) => c.recv(&mut bcap).await,
                        None => std::future::pending().await,
                    }
                } => match r {
                    Ok(n) => {
                        self.captured(n, &bcap).await;
                        self.flush_tun().await;
                    }
                    Err(e) => warn!(error = %e, "packet socket receive failed"),
                },
                r = self.tun.recv_batch(&mut btun) => match r {
                    Ok(_) => {
                        self.tun_frame_drops = btun.dropped();
                        self.outbound_batch(&btun).await;
                    }
                    Err(e) => warn!(error = %e, "TUN receive failed"),
                },
                c = rx.recv() => match c {
                    Some(Command::Engine(job)) => job(&mut self.engine, Instant::now()),
                    Some(Command::SendUdp { via, src, dst, payload }) => {
                        self.send_udp(via, src, dst, &payload).await;
                    }
                    Some(Command::SendPacket(packet)) => self.outbound(&packet).await,
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
            Udp4500::Ike(_) => {
                self.engine
                    .handle_datagram(Instant::now(), local, from, data);
                // Its SA (if it completed a Quick Mode) is installed by the next drain, which
                // a packet of the batch on that SA may need.
                self.ike_drained = false;
            }
            Udp4500::Esp(esp_data) => {
                if let IpAddr::V6(src) = from.ip() {
                    let dst = match local.ip() {
                        IpAddr::V6(a) => a,
                        IpAddr::V4(_) => self.cfg.address,
                    };
                    let addrs = Addrs {
                        src,
                        dst,
                        outer_src: src,
                        mobile_ipv6: false,
                    };
                    self.open_esp(addrs, esp_data).await;
                }
            }
            Udp4500::Keepalive => {}
            Udp4500::Invalid => debug!(%from, "dropped an invalid datagram on the NAT-T port"),
        }
    }

    async fn inbound_esp(&mut self, src: Ipv6Addr, dst: Ipv6Addr, n: usize, buf: &[u8]) {
        let addrs = Addrs {
            src,
            dst,
            outer_src: src,
            mobile_ipv6: false,
        };
        self.open_esp(addrs, &buf[..n]).await;
    }

    /// Decapsulates ESP (`data` from the SPI on) and hands the result on.
    async fn open_esp(&mut self, addrs: Addrs, data: &[u8]) {
        let spi = esp::wire::spi(data).unwrap_or(0);
        if !self.ike_drained && self.esp.sad().lookup_inbound(spi).is_none() {
            self.ike_drained = true;
            self.drain_ike().await;
        }
        let mut out = std::mem::take(&mut self.out);
        let action = self
            .esp
            .decapsulate(Instant::now(), IpAddr::V6(addrs.src), data, &mut out);
        if let EspAction::Transport(t) = &action {
            self.deliver_payload(spi, addrs, t.next_header, t.payload);
        } else {
            self.deliver(spi, action).await;
        }
        self.out = out;
    }

    /// Handles the IKE datagrams already queued, and the engine's events (SA installs),
    /// before an ESP packet whose SPI is unknown. The peer sends a Quick Mode's last message
    /// and the first packet on the new SA back to back, the one to UDP 500 (or earlier in a
    /// UDP 4500 batch), the other to the ESP socket: read first, the packet would find no SA
    /// and be dropped, and the node would wait for its retransmission (a second or more).
    /// Bounded: a flood of IKE cannot hold the ESP back, and a flood of ESP with unknown SPIs
    /// costs one drain per batch, not one per packet.
    async fn drain_ike(&mut self) {
        let mut buf = std::mem::take(&mut self.ike_scratch);
        let mut meta = [RecvMeta::default()];
        let port = self.ike.local_addr().port();
        for _ in 0..MAX_BATCH {
            match self
                .ike
                .try_recv_batch(std::slice::from_mut(&mut buf), &mut meta)
            {
                Ok(1) if !meta[0].truncated => {
                    let m = &meta[0];
                    let local = SocketAddr::V6(local_of(m, port));
                    self.engine.handle_datagram(
                        Instant::now(),
                        local,
                        SocketAddr::V6(m.from),
                        &buf[..m.len],
                    );
                }
                Ok(1) => {}
                _ => break,
            }
        }
        self.ike_scratch = buf;
        self.flush().await;
    }

    /// A packet the kernel drops, read before it does: transport-mode ESP behind a Home
    /// Address option or a type 2 Routing header (RFC 6275 §6.3, §6.4; RFC 3776 §3.1).
    async fn captured(&mut self, n: usize, buf: &[u8]) {
        let packet = &buf[..n];
        let info = match esp::PacketInfo::parse(packet) {
            Ok(i) if i.next_proto == esp::packet::proto::ESP && i.dst == self.cfg.address => i,
            Ok(i) => {
                self.local_counters.captured_ignored += 1;
                if i.dst == self.cfg.address {
                    // RFC 3776 §4: Mobile IPv6 signalling must come through ESP. Unauthenticated
                    // input: counted (status `mh_captured_ignored`), logged at debug so that
                    // a flood cannot flood the log too.
                    debug!(src = %i.src, home_address = %i.sel_src, next_header = i.next_proto,
                        "Mobile IPv6 packet without ESP; dropped");
                }
                return;
            }
            Err(e) => {
                self.local_counters.captured_ignored += 1;
                debug!(error = %e, "captured packet does not parse; dropped");
                return;
            }
        };
        let addrs = Addrs {
            src: info.sel_src,
            dst: info.sel_dst,
            outer_src: info.src,
            mobile_ipv6: info.sel_src != info.src || info.sel_dst != info.dst,
        };
        self.open_esp(addrs, &packet[info.upper_offset..info.total_len])
            .await;
    }

    /// The IKE SA of the installed pair with our SPI `spi`.
    fn ike_sa_of(&self, spi: u32) -> Option<IkeSaId> {
        self.ike_sa_by_spi.get(&spi).copied()
    }

    fn put_installed(&mut self, key: (IkeSaId, u32), pair: Installed) {
        self.ike_sa_by_spi.insert(key.1, key.0);
        self.installed.insert(key, pair);
    }

    fn take_installed(&mut self, key: &(IkeSaId, u32)) -> Option<Installed> {
        let pair = self.installed.remove(key)?;
        if self.ike_sa_by_spi.get(&key.1) == Some(&key.0) {
            self.ike_sa_by_spi.remove(&key.1);
        }
        Some(pair)
    }

    fn deliver_payload(&mut self, spi: u32, addrs: Addrs, next_header: u8, payload: &[u8]) {
        let Some(ike_sa) = self.ike_sa_of(spi) else {
            return;
        };
        let item = LocalPayload {
            ike_sa,
            spi_in: spi,
            src: addrs.src,
            dst: addrs.dst,
            outer_src: addrs.outer_src,
            mobile_ipv6: addrs.mobile_ipv6,
            next_header,
            payload: payload.to_vec(),
        };
        match self.payloads.try_send(item) {
            Ok(()) => self.local_counters.payloads_delivered += 1,
            Err(_) => {
                self.local_counters.dropped_queue_full += 1;
                debug!(
                    spi = format_args!("{spi:08x}"),
                    "daemon queue full; payload dropped"
                );
            }
        }
    }

    /// Hands a decapsulated packet to the TUN device, or to the daemon when it is one of its
    /// datagrams.
    async fn deliver(&mut self, spi: u32, action: EspAction<'_>) {
        match action {
            EspAction::ToTun(p) => {
                if is_local(&self.cfg.local_udp, p) {
                    let ike_sa = self.ike_sa_of(spi);
                    local_datagram(&self.local, &mut self.local_counters, ike_sa, spi, p);
                } else {
                    if self.tun_tx.is_full() {
                        self.flush_tun().await;
                    }
                    // Cannot fail: the batch was just emptied if it was full.
                    let _ = self.tun_tx.push(p);
                }
            }
            // Transport payloads go to `deliver_payload` before this.
            EspAction::Transport(_)
            | EspAction::Drop(_)
            | EspAction::Bypass(_)
            | EspAction::ToNetwork(_) => {}
        }
    }

    /// Writes the queued decapsulated packets to the TUN device.
    async fn flush_tun(&mut self) {
        if self.tun_tx.is_empty() {
            return;
        }
        if let Err(e) = self.tun.send_batch(&mut self.tun_tx).await {
            warn!(error = %e, "TUN write failed");
        }
    }

    /// Seals a batch of packets read from the TUN device and sends the ESP packets with one
    /// `sendmmsg` per socket (up to [`MAX_BATCH`] messages each). ESP in UDP (RFC 3948 §2.1)
    /// goes out with UDP GSO where the NAT-T socket has it: consecutive packets of the batch to
    /// the same peer with the same size (the segments of one TSO super-packet, sealed back to
    /// back) become one message of several datagrams, the last of which may be shorter.
    async fn outbound_batch(&mut self, batch: &TunRecvBatch) {
        let now = Instant::now();
        self.esp
            .encapsulate_batch(now, batch.iter(), &mut self.sealed, &mut self.items);
        let gso = self.natt.gso();
        let mut raw: [netio::Transmit<'_>; MAX_BATCH] = [EMPTY_TRANSMIT; MAX_BATCH];
        let mut udp: [netio::Transmit<'_>; MAX_BATCH] = [EMPTY_TRANSMIT; MAX_BATCH];
        let (mut nraw, mut nudp) = (0, 0);
        let mut run: Option<GsoRun> = None;
        for (i, item) in self.items.iter().enumerate() {
            let BatchItem::Sealed {
                spi,
                src,
                dst,
                udp: is_udp,
                ext_headers,
                data,
            } = item
            else {
                continue;
            };
            let (IpAddr::V6(s), IpAddr::V6(d)) = (src.ip(), dst.ip()) else {
                continue;
            };
            if !ext_headers.is_empty() {
                // Transport mode behind extension headers: whole packets, one at a time.
                let first_ext = batch.packet(i).get(6).copied().unwrap_or(0);
                let t = esp::Transmit {
                    spi: *spi,
                    src: *src,
                    dst: *dst,
                    udp: *is_udp,
                    ext_headers: &self.sealed[ext_headers.clone()],
                    data: &self.sealed[data.clone()],
                };
                Self::transmit(
                    &self.natt,
                    &self.raw,
                    &self.raw_ip,
                    first_ext,
                    EspAction::ToNetwork(t),
                )
                .await;
                continue;
            }
            let dst6 = SocketAddrV6::new(d, if *is_udp { dst.port() } else { 0 }, 0, 0);
            if !*is_udp {
                raw[nraw] = netio::Transmit {
                    data: &self.sealed[data.clone()],
                    dst: dst6,
                    src: Some(s),
                    segment_size: None,
                };
                nraw += 1;
                if nraw == MAX_BATCH {
                    send_all(&self.raw, &raw[..nraw], false).await;
                    nraw = 0;
                }
                continue;
            }
            if gso && let Some(r) = run.as_mut() {
                match r.extend(s, dst6, data) {
                    Extend::Taken => continue,
                    Extend::TakenLast => {
                        udp[nudp] = r.transmit(&self.sealed);
                        nudp += 1;
                        run = None;
                    }
                    Extend::No => {
                        udp[nudp] = r.transmit(&self.sealed);
                        nudp += 1;
                        run = Some(GsoRun::new(s, dst6, data));
                    }
                }
            } else {
                run = Some(GsoRun::new(s, dst6, data));
            }
            if !gso && let Some(r) = run.take() {
                udp[nudp] = r.transmit(&self.sealed);
                nudp += 1;
            }
            if nudp == MAX_BATCH {
                send_all(&self.natt, &udp[..nudp], true).await;
                nudp = 0;
            }
        }
        if let Some(r) = run {
            udp[nudp] = r.transmit(&self.sealed);
            nudp += 1;
        }
        if nraw > 0 {
            send_all(&self.raw, &raw[..nraw], false).await;
        }
        if nudp > 0 {
            send_all(&self.natt, &udp[..nudp], true).await;
        }
    }

    async fn outbound(&mut self, packet: &[u8]) {
        let action = self.esp.encapsulate(Instant::now(), packet, &mut self.out);
        let first_ext = packet.get(6).copied().unwrap_or(0);
        Self::transmit(&self.natt, &self.raw, &self.raw_ip, first_ext, action).await;
    }

    /// The daemon's datagram: through a tunnel-mode child SA of `via` that covers it (the
    /// newest, when a rekeyed pair is still there), or through the SPD.
    async fn send_udp(
        &mut self,
        via: Option<IkeSaId>,
        src: SocketAddrV6,
        dst: SocketAddrV6,
        payload: &[u8],
    ) {
        let mut packet = std::mem::take(&mut self.scratch);
        if esp::datagram::build_udp(src, dst, payload, &mut packet).is_none() {
            self.scratch = packet;
            return warn!(%dst, len = payload.len(), "datagram too long for UDP");
        }
        let now = Instant::now();
        let action = match via {
            None => self.esp.encapsulate(now, &packet, &mut self.out),
            Some(sa) => {
                let info = esp::PacketInfo::parse(&packet).ok();
                let pair = self
                    .installed
                    .iter()
                    .filter(|((s, _), i)| *s == sa && i.child.mode == ikev1::Mode::Tunnel)
                    .filter(|(_, i)| {
                        let sel = convert::selector(&i.child).ok();
                        matches!((sel, &info), (Some(sel), Some(info)) if sel.matches(info))
                    })
                    .max_by_key(|(_, i)| i.order)
                    .map(|(_, i)| i.outbound);
                match pair {
                    Some(h) => self.esp.encapsulate_with(now, h, &packet, &mut self.out),
                    None => {
                        self.local_counters.send_no_sa += 1;
                        debug!(ike_sa = %sa, %src, %dst, "no child SA covers the datagram; dropped");
                        self.scratch = packet;
                        return;
                    }
                }
            }
        };
        if matches!(action, EspAction::ToNetwork(_)) {
            self.local_counters.sent += 1;
        } else if via.is_none() {
            self.local_counters.send_no_sa += 1;
        }
        Self::transmit(&self.natt, &self.raw, &self.raw_ip, 0, action).await;
        self.scratch = packet;
    }

    /// Sends what [`Esp::encapsulate`] produced (anything but an ESP packet is already
    /// counted by the data plane). Transport-mode ESP behind extension headers (`first_ext` is
    /// the type of the first one, from the inner packet's header) goes out whole through the
    /// raw IPv6 socket, since the kernel would not build those headers.
    async fn transmit(
        natt: &IkeSocket,
        raw: &EspSocket,
        raw_ip: &RawIpSocket,
        first_ext: u8,
        action: EspAction<'_>,
    ) {
        let EspAction::ToNetwork(t) = action else {
            return;
        };
        let (IpAddr::V6(s), IpAddr::V6(d)) = (t.src.ip(), t.dst.ip()) else {
            return;
        };
        let r = if !t.ext_headers.is_empty() {
            if t.udp {
                // RFC 3948 would put UDP between the extension headers and ESP; the
                // pseudo-header rules of RFC 6275 for that case are not implemented.
                return debug!(dst = %t.dst, "transport-mode ESP-in-UDP behind extension headers is not supported; dropped");
            }
            match outer_packet(s, d, first_ext, t.ext_headers, t.data) {
                Some(p) => raw_ip.send(&p, d).await,
                None => return debug!(dst = %d, "packet too long; dropped"),
            }
        } else if t.udp {
            natt.send(t.data, t.src, t.dst).await
        } else {
            raw.send(t.data, s, d).await
        };
        if let Err(e) = r {
            debug!(error = %e, dst = %t.dst, "ESP send failed");
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
                Event::IkeSaReplaced { old, new, children } => {
                    for spi in children {
                        if let Some(mut i) = self.take_installed(&(*old, *spi)) {
                            i.child.ike_sa = *new;
                            self.put_installed((*new, *spi), i);
                        }
                    }
                }
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
        self.installs += 1;
        // The keys live in the SAD only: the record (and every snapshot of it) goes without.
        let mut child = c.clone();
        for k in [&mut child.keys_in, &mut child.keys_out] {
            *k = ikev1::EspKeys {
                encr: Vec::new().into(),
                integ: Vec::new().into(),
            };
        }
        self.put_installed(
            (c.ike_sa, c.spi_in),
            Installed {
                child,
                inbound,
                outbound,
                order: self.installs,
            },
        );
    }

    fn uninstall(&mut self, sa: IkeSaId, spi_in: u32) {
        let key = (self.ike_sa_of(spi_in).unwrap_or(sa), spi_in);
        if let Some(i) = self.take_installed(&key) {
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
            esp_drops: d
                .iter()
                .map(|(r, n)| (format!("{r:?}"), n))
                .chain(
                    (self.tun_frame_drops > 0)
                        .then(|| ("TunFrame".to_owned(), self.tun_frame_drops)),
                )
                .collect(),
            local: self.local_counters,
        }
    }
}

/// Addresses of a received ESP packet, as the upper layer and the policy see them.
#[derive(Clone, Copy, Debug)]
struct Addrs {
    src: Ipv6Addr,
    dst: Ipv6Addr,
    outer_src: Ipv6Addr,
    mobile_ipv6: bool,
}

const EMPTY_TRANSMIT: netio::Transmit<'static> = netio::Transmit {
    data: &[],
    dst: SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, 0, 0, 0),
    src: None,
    segment_size: None,
};

/// Consecutive ESP-in-UDP packets of one outbound batch that can leave as one UDP GSO send:
/// same source and destination, back to back in the sealed buffer, all of one size but the
/// last, which may be shorter (`man 7 udp`, `UDP_SEGMENT`), within the kernel's limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct GsoRun {
    src: Ipv6Addr,
    dst: SocketAddrV6,
    /// Where the run is in the sealed buffer.
    start: usize,
    end: usize,
    /// The size of every datagram but the last.
    segment: usize,
    count: usize,
}

/// Whether a packet joined a [`GsoRun`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Extend {
    /// Joined; more may follow.
    Taken,
    /// Joined as the shorter last datagram, or as the last the kernel takes: send the run.
    TakenLast,
    /// Did not join: send the run and start a new one with this packet.
    No,
}

impl GsoRun {
    fn new(src: Ipv6Addr, dst: SocketAddrV6, data: &std::ops::Range<usize>) -> Self {
        Self {
            src,
            dst,
            start: data.start,
            end: data.end,
            segment: data.len(),
            count: 1,
        }
    }

    fn extend(
        &mut self,
        src: Ipv6Addr,
        dst: SocketAddrV6,
        data: &std::ops::Range<usize>,
    ) -> Extend {
        let len = data.len();
        let fits = src == self.src
            && dst == self.dst
            && data.start == self.end
            && len > 0
            && len <= self.segment
            && u16::try_from(self.segment).is_ok()
            && self.count < netio::GSO_MAX_SEGMENTS
            && self.end - self.start + len <= netio::GSO_MAX_BYTES;
        if !fits {
            return Extend::No;
        }
        self.end = data.end;
        self.count += 1;
        if len < self.segment || self.count == netio::GSO_MAX_SEGMENTS {
            Extend::TakenLast
        } else {
            Extend::Taken
        }
    }

    fn transmit(self, sealed: &[u8]) -> netio::Transmit<'_> {
        netio::Transmit {
            data: &sealed[self.start..self.end],
            dst: self.dst,
            src: Some(self.src),
            segment_size: (self.count > 1)
                .then(|| u16::try_from(self.segment).ok())
                .flatten(),
        }
    }
}

/// Something that sends a batch of datagrams (the raw ESP socket, the NAT-T socket).
trait SendBatch {
    async fn send_batch(&self, msgs: &[netio::Transmit<'_>]) -> std::io::Result<usize>;
}

impl SendBatch for EspSocket {
    async fn send_batch(&self, msgs: &[netio::Transmit<'_>]) -> std::io::Result<usize> {
        Self::send_batch(self, msgs).await
    }
}

impl SendBatch for IkeSocket {
    async fn send_batch(&self, msgs: &[netio::Transmit<'_>]) -> std::io::Result<usize> {
        Self::send_batch(self, msgs).await
    }
}

/// Sends ESP packets; refused ones were logged by netio and are lost like on the wire.
async fn send_all(sock: &impl SendBatch, msgs: &[netio::Transmit<'_>], udp: bool) {
    if let Err(e) = sock.send_batch(msgs).await {
        debug!(error = %e, udp, count = msgs.len(), "ESP send failed");
    }
}

/// The local address of a datagram received on a socket bound to `port`.
fn local_of(m: &RecvMeta, port: u16) -> SocketAddrV6 {
    let scope = if m.dst.is_unicast_link_local() || m.dst.is_multicast() {
        m.ifindex
    } else {
        0
    };
    SocketAddrV6::new(m.dst, port, 0, scope)
}

/// The IPv6 packet around transport-mode ESP and the extension headers in front of it.
fn outer_packet(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    first_ext: u8,
    ext: &[u8],
    esp: &[u8],
) -> Option<Vec<u8>> {
    let plen = u16::try_from(ext.len() + esp.len()).ok()?;
    let mut p = Vec::with_capacity(40 + usize::from(plen));
    p.extend_from_slice(&[0x60, 0, 0, 0]);
    p.extend_from_slice(&plen.to_be_bytes());
    p.push(first_ext);
    p.push(64);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(ext);
    p.extend_from_slice(esp);
    Some(p)
}

/// Whether a decapsulated packet is one of the daemon's datagrams (a cheap look at the
/// fixed header: the daemon's peers send UDP without extension headers).
fn is_local(filters: &[LocalUdp], packet: &[u8]) -> bool {
    let Some(port) = esp::datagram::udp_dst_port(packet) else {
        return false;
    };
    filters.iter().any(|f| {
        f.port == port
            && f.dst
                .is_none_or(|d| packet.get(24..40).is_some_and(|a| a == d.octets()))
    })
}

/// Checks the datagram and queues it for the daemon, counting what is dropped.
fn local_datagram(
    queue: &mpsc::Sender<LocalDatagram>,
    counters: &mut LocalCounters,
    ike_sa: Option<IkeSaId>,
    spi_in: u32,
    packet: &[u8],
) {
    let d = match esp::datagram::parse_udp(packet) {
        Ok(d) => d,
        Err(e) => {
            counters.dropped_malformed += 1;
            return debug!(spi = format_args!("{spi_in:08x}"), error = %e, "dropped a datagram for the daemon");
        }
    };
    let Some(ike_sa) = ike_sa else {
        // An SA the engine did not report (all are installed from its events).
        counters.dropped_malformed += 1;
        return;
    };
    let item = LocalDatagram {
        ike_sa,
        spi_in,
        src: d.src,
        dst: d.dst,
        payload: d.payload.to_vec(),
    };
    match queue.try_send(item) {
        Ok(()) => counters.delivered += 1,
        Err(_) => {
            counters.dropped_queue_full += 1;
            debug!(
                spi = format_args!("{spi_in:08x}"),
                "daemon queue full; datagram dropped"
            );
        }
    }
}
