//! The TUN device (Linux `Documentation/networking/tuntap.rst`): layer 3, `IFF_NO_PI`, one IPv6
//! packet per read or write, optionally with offloads (`IFF_VNET_HDR` + `TUNSETOFFLOAD`) and
//! several queues (`IFF_MULTI_QUEUE`). Built on `tun-rs` without its address management:
//! addresses and routes go through [`crate::Netlink`].
//!
//! [`Tun::create`] creates the device down, turns off the automatic link-local address
//! (`addr_gen_mode` none, so no link-local, no DAD and no Router Solicitation is sent into the
//! tunnel), sets `accept_ra` to 0, and brings it up.
//!
//! Batching: [`Tun::recv_batch`] / [`Tun::send_batch`] work with or without offload.
//! * Without offload a TUN read or write is one packet and one system call. `recv_batch`
//!   waits for one packet and drains what is queued (saving reactor wake-ups, not calls).
//! * With offload (`IFF_VNET_HDR`, and `TUNSETOFFLOAD` with `TUN_F_CSUM | TUN_F_TSO4 |
//!   TUN_F_TSO6`, plus `TUN_F_USO4 | TUN_F_USO6` where the kernel has them, set by tun-rs)
//!   the kernel hands over one TCP or UDP "super-packet" of up to 64 KiB per read, which
//!   [`crate::offload::split`] cuts into MTU-sized packets with their checksums; a
//!   [`TunSendBatch::for_tun`] coalesces consecutive packets of one TCP (or UDP) flow as they
//!   are queued, and `send_batch` writes each super-packet with one call
//!   ([`crate::offload`]; the wireguard-go design, our own code).
//!
//! With offload on, every frame carries a 10-byte `virtio_net_hdr`, so the single-packet
//! [`Tun::recv`] is unavailable and [`Tun::send`] prepends an empty header.

use std::io::{self, IoSlice};

use tun_rs::{AsyncDevice, DeviceBuilder};

use crate::offload::{self, Coalescer, PacketBuf, VNET_HDR_LEN, VnetHdr};

use crate::netlink::Netlink;
use crate::{Error, Result, sysctl};

/// How to create a TUN device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TunConfig {
    /// Interface name (at most 15 bytes).
    pub name: String,
    /// MTU of the device.
    pub mtu: u16,
    /// Enable `IFF_VNET_HDR` offloads (TSO/USO towards user space, GRO on writes).
    pub offload: bool,
    /// Enable `IFF_MULTI_QUEUE` (then [`Tun::try_clone_queue`] opens more queues).
    pub multi_queue: bool,
    /// Transmit queue length (`txqueuelen`), kernel default (500) when unset.
    pub tx_queue_len: Option<u32>,
}

impl TunConfig {
    /// A plain device: no offload, one queue.
    pub fn new(name: impl Into<String>, mtu: u16) -> Self {
        Self {
            name: name.into(),
            mtu,
            offload: false,
            multi_queue: false,
            tx_queue_len: None,
        }
    }
}

/// An open TUN device (one queue).
pub struct Tun {
    dev: AsyncDevice,
    name: String,
    ifindex: u32,
    mtu: u16,
    offload: bool,
}

impl std::fmt::Debug for Tun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tun")
            .field("name", &self.name)
            .field("ifindex", &self.ifindex)
            .field("mtu", &self.mtu)
            .field("offload", &self.offload)
            .finish_non_exhaustive()
    }
}

/// Headroom that [`TunSendBatch`] keeps in front of each packet for the `virtio_net_hdr`.
pub const TUN_HEADROOM: usize = VNET_HDR_LEN;

impl Tun {
    /// Creates the device in the calling thread's network namespace, disables the automatic
    /// link-local address and Router Advertisement processing, and brings it up. Track it in a
    /// [`crate::NetConfigGuard`] with `track_link(tun.ifindex(), tun.name())` if the clean-up
    /// should delete it explicitly; otherwise it disappears when the last queue is dropped.
    pub async fn create(cfg: &TunConfig, nl: &Netlink) -> Result<Self> {
        let name = cfg.name.clone();
        if name.is_empty() || name.len() > 15 {
            return Err(Error::invalid(
                "create TUN",
                format!("bad interface name {name:?}"),
            ));
        }
        let mut b = DeviceBuilder::new()
            .name(name.clone())
            .mtu(cfg.mtu)
            .enable(false)
            .offload(cfg.offload)
            .multi_queue(cfg.multi_queue);
        if let Some(q) = cfg.tx_queue_len {
            b = b.tx_queue_len(q);
        }
        let dev = b
            .build_async()
            .map_err(|e| Error::io("create TUN", name.clone(), e))?;
        let ifindex = dev
            .if_index()
            .map_err(|e| Error::io("get ifindex of TUN", name.clone(), e))?;
        let offload = dev.tcp_gso();
        if cfg.offload && !offload {
            tracing::debug!(tun = %name, "offload requested but not available");
        }
        nl.set_addr_gen_mode_none(ifindex).await?;
        // No RA processing on a tunnel: the daemons configure it.
        if let Err(e) = sysctl::set_ipv6_conf(&name, "accept_ra", "0") {
            tracing::debug!(tun = %name, error = %e, "could not set accept_ra");
        }
        nl.link_up(ifindex).await?;
        tracing::debug!(tun = %name, ifindex, mtu = cfg.mtu, offload, udp_gso = dev.udp_gso(), "TUN up");
        Ok(Self {
            dev,
            name,
            ifindex,
            mtu: cfg.mtu,
            offload,
        })
    }

    /// [`Self::create`], and track the device in `guard` so that
    /// [`crate::NetConfigGuard::cleanup`] deletes it (after the addresses and routes added
    /// later through the guard, which are undone first).
    pub async fn create_tracked(
        cfg: &TunConfig,
        guard: &mut crate::NetConfigGuard,
    ) -> Result<Self> {
        let nl = guard.netlink().clone();
        let tun = Self::create(cfg, &nl).await?;
        guard.track_link(tun.ifindex, &tun.name);
        Ok(tun)
    }

    /// Interface name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Interface index.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// MTU the device was created with.
    pub fn mtu(&self) -> u16 {
        self.mtu
    }

    /// True when offload (virtio header, GSO/GRO) is active.
    pub fn offload(&self) -> bool {
        self.offload
    }

    /// True when UDP segmentation offload is active too (Linux 6.2+).
    pub fn udp_offload(&self) -> bool {
        self.dev.udp_gso()
    }

    /// The tun-rs device, for anything not wrapped here.
    pub fn device(&self) -> &AsyncDevice {
        &self.dev
    }

    /// Opens another queue of a multi-queue device; the kernel spreads flows over the queues,
    /// so each can be served by its own task or thread.
    pub fn try_clone_queue(&self) -> Result<Self> {
        let dev = self
            .dev
            .try_clone()
            .map_err(|e| Error::io("open another queue of TUN", self.name.clone(), e))?;
        Ok(Self {
            dev,
            name: self.name.clone(),
            ifindex: self.ifindex,
            mtu: self.mtu,
            offload: self.offload,
        })
    }

    /// Reads one IPv6 packet. Unsupported with offload on (use [`Self::recv_batch`]).
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        if self.offload {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "TUN with offload: use recv_batch",
            ));
        }
        self.dev.recv(buf).await
    }

    /// Non-blocking [`Self::recv`].
    pub fn try_recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        if self.offload {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "TUN with offload: use recv_batch",
            ));
        }
        self.dev.try_recv(buf)
    }

    /// Writes one IPv6 packet (with an empty `virtio_net_hdr` in front when offload is on).
    pub async fn send(&self, packet: &[u8]) -> io::Result<usize> {
        if self.offload {
            let hdr = [0u8; VNET_HDR_LEN];
            let n = self
                .dev
                .send_vectored(&[IoSlice::new(&hdr), IoSlice::new(packet)])
                .await?;
            Ok(n.saturating_sub(VNET_HDR_LEN))
        } else {
            self.dev.send(packet).await
        }
    }

    /// Reads a batch: waits for at least one frame, then drains what is queued (until
    /// `WouldBlock`, or until the batch holds its capacity in packets). With offload each
    /// frame is split here ([`crate::offload::split`]): a TCP super-packet becomes MTU-sized
    /// segments with their checksums. A frame that cannot be split is dropped and counted
    /// ([`TunRecvBatch::dropped`]). Returns the number of packets (also `batch.len()`).
    pub async fn recv_batch(&self, batch: &mut TunRecvBatch) -> io::Result<usize> {
        batch.pkts.clear();
        while batch.pkts.is_empty() {
            let n = self.dev.recv(&mut batch.raw).await?;
            self.take_frame(batch, n);
        }
        while batch.pkts.len() < batch.capacity {
            match self.dev.try_recv(&mut batch.raw) {
                Ok(n) => self.take_frame(batch, n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        Ok(batch.pkts.len())
    }

    /// Non-blocking [`Self::recv_batch`]: takes what is queued (`WouldBlock` when nothing).
    pub fn try_recv_batch(&self, batch: &mut TunRecvBatch) -> io::Result<usize> {
        batch.pkts.clear();
        while batch.pkts.len() < batch.capacity {
            match self.dev.try_recv(&mut batch.raw) {
                Ok(n) => self.take_frame(batch, n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && !batch.pkts.is_empty() => {
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(batch.pkts.len())
    }

    /// Stores the frame of `n` bytes just read into `batch.raw`.
    fn take_frame(&self, batch: &mut TunRecvBatch, n: usize) {
        let frame = &mut batch.raw[..n];
        if !self.offload {
            if n > 0 {
                batch.pkts.push(frame);
            }
            return;
        }
        let r = match VnetHdr::parse(frame) {
            Some(h) => offload::split(&h, &mut frame[VNET_HDR_LEN..], &mut batch.pkts),
            None => Err(offload::OffloadError::Malformed),
        };
        if let Err(e) = r {
            batch.dropped += 1;
            tracing::debug!(tun = %self.name, error = %e, len = n, "dropped TUN frame");
        }
    }

    /// Writes every frame of `batch` (each a packet, or with offload a coalesced
    /// super-packet) and empties it. Returns the bytes written (virtio headers included). A
    /// frame the kernel refuses is skipped; the error of the last refused one is returned
    /// after the others were written.
    pub async fn send_batch(&self, batch: &mut TunSendBatch) -> io::Result<usize> {
        let mut total = 0;
        let mut err = None;
        let skip = if self.offload { 0 } else { VNET_HDR_LEN };
        for frame in batch.co.finish() {
            match self.dev.send(&frame[skip..]).await {
                Ok(n) => total += n,
                Err(e) => {
                    tracing::debug!(tun = %self.name, error = %e, len = frame.len(), "TUN write failed");
                    err = Some(e);
                }
            }
        }
        batch.co.clear();
        match err {
            Some(e) if total == 0 => Err(e),
            _ => Ok(total),
        }
    }
}

/// Receive buffers for [`Tun::recv_batch`], reused across calls: one frame buffer and the
/// packets of the last batch back to back.
#[derive(Debug)]
pub struct TunRecvBatch {
    raw: Vec<u8>,
    pkts: PacketBuf,
    capacity: usize,
    dropped: u64,
}

impl TunRecvBatch {
    /// Room for about `capacity` packets of up to `packet_size` bytes, each stored after
    /// `headroom` free bytes (where an ESP or outer IPv6 header can be written in place).
    /// A receive stops draining once `capacity` packets are there (one offloaded frame may
    /// add up to 1024 at once; the buffer grows once to what is needed).
    pub fn new(capacity: usize, packet_size: usize, headroom: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            raw: vec![0; VNET_HDR_LEN + 65535],
            pkts: PacketBuf::new(
                headroom,
                (capacity + 64) * (headroom + packet_size),
                capacity + 64,
            ),
            capacity,
            dropped: 0,
        }
    }

    /// Packets received by the last [`Tun::recv_batch`].
    pub fn len(&self) -> usize {
        self.pkts.len()
    }

    /// True when the last receive got nothing.
    pub fn is_empty(&self) -> bool {
        self.pkts.is_empty()
    }

    /// Frames dropped because they could not be split (malformed virtio header or headers).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Packet `i` (panics if `i >= len()`).
    pub fn packet(&self, i: usize) -> &[u8] {
        self.pkts.get(i).expect("packet index out of range")
    }

    /// The whole buffer of packet `i` (headroom included) and the packet's range in it, for
    /// in-place encapsulation (panics if `i >= len()`).
    pub fn buffer_mut(&mut self, i: usize) -> (&mut [u8], std::ops::Range<usize>) {
        self.pkts
            .with_headroom_mut(i)
            .expect("packet index out of range")
    }

    /// The received packets.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        (0..self.pkts.len()).filter_map(|i| self.pkts.get(i))
    }
}

/// Packets queued for [`Tun::send_batch`]. A batch made with [`Self::for_tun`] on a device
/// with offload coalesces consecutive IPv6 TCP segments of a flow (and UDP datagrams, when
/// the device takes UDP offload) into one frame as they are pushed.
#[derive(Debug)]
pub struct TunSendBatch {
    co: Coalescer,
    coalesce: bool,
}

impl TunSendBatch {
    /// Room for `capacity` frames, without coalescing (works with any device).
    pub fn new(capacity: usize) -> Self {
        Self {
            co: Coalescer::new(capacity),
            coalesce: false,
        }
    }

    /// Room for `capacity` frames, coalescing when `tun` has offload.
    pub fn for_tun(tun: &Tun, capacity: usize) -> Self {
        let mut co = Coalescer::new(capacity);
        co.set_udp(tun.offload && tun.udp_offload());
        Self {
            co,
            coalesce: tun.offload,
        }
    }

    /// Queued packets.
    pub fn len(&self) -> usize {
        self.co.packets()
    }

    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.co.packets() == 0
    }

    /// True when no more frames fit (send the batch).
    pub fn is_full(&self) -> bool {
        self.co.is_full()
    }

    /// Drops the queued packets.
    pub fn clear(&mut self) {
        self.co.clear();
    }

    /// Queues a copy of `packet`; returns false (and queues nothing) when full.
    pub fn push(&mut self, packet: &[u8]) -> bool {
        self.push_with(|b| b.extend_from_slice(packet))
    }

    /// Queues a packet written by `fill`, which appends it to the buffer it is given;
    /// returns false when full.
    pub fn push_with(&mut self, fill: impl FnOnce(&mut Vec<u8>)) -> bool {
        self.co.push_with(self.coalesce, fill)
    }
}
