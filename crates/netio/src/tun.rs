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
//! * With offload the kernel may hand over one TCP or UDP "super-packet" of up to 64 KiB per
//!   read (GSO, from local sockets; `TUN_F_TSO6`, `TUN_F_USO6`), split here into MTU-sized
//!   packets; `send_batch` coalesces consecutive packets of the same TCP or UDP flow (GRO) and
//!   writes them with one call. This is the wireguard-go design, as implemented in tun-rs.
//!
//! With offload on, every frame carries a 10-byte `virtio_net_hdr`, so the single-packet
//! [`Tun::recv`] is unavailable and [`Tun::send`] prepends an empty header.

use std::io::{self, IoSlice};

use tun_rs::{AsyncDevice, DeviceBuilder, GROTable, VIRTIO_NET_HDR_LEN};

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
pub const TUN_HEADROOM: usize = VIRTIO_NET_HDR_LEN;

/// Buffer capacity tun-rs needs to coalesce into a packet (it checks
/// `capacity >= 2 * offset + merged length`).
const GRO_CAPACITY: usize = 2 * TUN_HEADROOM + 65535;

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
            let hdr = [0u8; VIRTIO_NET_HDR_LEN];
            let n = self
                .dev
                .send_vectored(&[IoSlice::new(&hdr), IoSlice::new(packet)])
                .await?;
            Ok(n.saturating_sub(VIRTIO_NET_HDR_LEN))
        } else {
            self.dev.send(packet).await
        }
    }

    /// Reads a batch: waits for at least one packet, then takes what is queued, up to the
    /// batch's capacity. Returns the number of packets (also in `batch.len()`).
    pub async fn recv_batch(&self, batch: &mut TunRecvBatch) -> io::Result<usize> {
        batch.count = 0;
        let off = batch.headroom;
        if self.offload {
            // A frame tun-rs cannot split (malformed, or more segments than buffers) is
            // reported as InvalidInput after it was read: drop it and keep reading.
            let n = loop {
                match self
                    .dev
                    .recv_multiple(&mut batch.raw, &mut batch.bufs, &mut batch.sizes, off)
                    .await
                {
                    Err(e) if e.kind() == io::ErrorKind::InvalidInput => {
                        tracing::debug!(tun = %self.name, error = %e, "dropped TUN frame");
                    }
                    r => break r?,
                }
            };
            batch.count = n;
            // Drain more frames while there is room for a full GSO split.
            while batch.count + batch.max_segments <= batch.bufs.len() {
                let c = batch.count;
                match self.dev.try_recv_multiple(
                    &mut batch.raw,
                    &mut batch.bufs[c..],
                    &mut batch.sizes[c..],
                    off,
                ) {
                    Ok(n) => batch.count += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::InvalidInput => {
                        tracing::debug!(tun = %self.name, error = %e, "dropped TUN frame");
                    }
                    Err(e) => return Err(e),
                }
            }
        } else {
            let n = self.dev.recv(&mut batch.bufs[0][off..]).await?;
            batch.sizes[0] = n;
            batch.count = 1;
            while batch.count < batch.bufs.len() {
                let c = batch.count;
                match self.dev.try_recv(&mut batch.bufs[c][off..]) {
                    Ok(n) => {
                        batch.sizes[c] = n;
                        batch.count += 1;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(batch.count)
    }

    /// Writes every packet of `batch` (coalescing TCP/UDP flows when offload is on) and
    /// empties it. Returns the bytes written. A packet the kernel refuses is skipped; the error
    /// of the last refused packet is returned after the others were written.
    pub async fn send_batch(&self, batch: &mut TunSendBatch) -> io::Result<usize> {
        if batch.len == 0 {
            return Ok(0);
        }
        if self.offload {
            // tun-rs coalesces into the first packet's buffer only if its capacity already
            // holds the merged frame (it never reallocates): give every buffer room for a
            // 64 KiB super-packet once; `clear` keeps the capacity.
            for b in &mut batch.bufs[..batch.len] {
                if b.capacity() < GRO_CAPACITY {
                    b.reserve(GRO_CAPACITY - b.len());
                }
            }
        }
        let res = self
            .dev
            .send_multiple(&mut batch.gro, &mut batch.bufs[..batch.len], TUN_HEADROOM)
            .await;
        batch.clear();
        res
    }
}

/// Receive buffers for [`Tun::recv_batch`], reused across calls.
#[derive(Debug)]
pub struct TunRecvBatch {
    raw: Vec<u8>,
    bufs: Vec<Vec<u8>>,
    sizes: Vec<usize>,
    count: usize,
    headroom: usize,
    max_segments: usize,
}

impl TunRecvBatch {
    /// Room for `capacity` packets of up to `packet_size` bytes, each stored after
    /// `headroom` free bytes (where an ESP or outer IPv6 header can be written in place).
    /// `packet_size` must be at least the TUN's MTU.
    ///
    /// With offload, one read may yield many packets (a 64 KiB TCP frame in MTU-sized
    /// segments, or up to 128 UDP segments), so `capacity` is raised to at least 128; a
    /// further frame is drained in the same call only while 128 more buffers are free (use
    /// 256 or more to get several frames per call). A frame that does not fit is dropped.
    pub fn new(capacity: usize, packet_size: usize, headroom: usize) -> Self {
        let max_segments = (65535 / packet_size.max(1)).max(128);
        let capacity = capacity.max(max_segments);
        Self {
            raw: vec![0; VIRTIO_NET_HDR_LEN + 65535],
            bufs: vec![vec![0; headroom + packet_size]; capacity],
            sizes: vec![0; capacity],
            count: 0,
            headroom,
            max_segments,
        }
    }

    /// Packets received by the last [`Tun::recv_batch`].
    pub fn len(&self) -> usize {
        self.count
    }

    /// True when the last receive got nothing.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Packet `i` (panics if `i >= len()`).
    pub fn packet(&self, i: usize) -> &[u8] {
        &self.bufs[i][self.headroom..self.headroom + self.sizes[i]]
    }

    /// The whole buffer of packet `i` (headroom included) and the packet's range in it, for
    /// in-place encapsulation.
    pub fn buffer_mut(&mut self, i: usize) -> (&mut [u8], std::ops::Range<usize>) {
        let r = self.headroom..self.headroom + self.sizes[i];
        (&mut self.bufs[i], r)
    }

    /// The received packets.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        (0..self.count).map(|i| self.packet(i))
    }
}

/// Packets queued for [`Tun::send_batch`]; each is stored behind [`TUN_HEADROOM`] bytes.
pub struct TunSendBatch {
    bufs: Vec<Vec<u8>>,
    len: usize,
    gro: GROTable,
}

impl std::fmt::Debug for TunSendBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TunSendBatch")
            .field("len", &self.len)
            .field("capacity", &self.bufs.len())
            .finish_non_exhaustive()
    }
}

impl TunSendBatch {
    /// Room for `capacity` packets (buffers grow as needed; with offload each grows to 64 KiB
    /// on first use so that packets can be coalesced into it). tun-rs's `IDEAL_BATCH_SIZE` is
    /// 128.
    pub fn new(capacity: usize) -> Self {
        Self {
            bufs: (0..capacity.max(1))
                .map(|_| Vec::with_capacity(TUN_HEADROOM + 1500))
                .collect(),
            len: 0,
            gro: GROTable::default(),
        }
    }

    /// Queued packets.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// True when no more packets fit.
    pub fn is_full(&self) -> bool {
        self.len == self.bufs.len()
    }

    /// Drops the queued packets.
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Queues a copy of `packet`; returns false (and queues nothing) when full.
    pub fn push(&mut self, packet: &[u8]) -> bool {
        self.push_with(|b| b.extend_from_slice(packet))
    }

    /// Queues a packet written by `fill`, which appends it to the (headroom-only) buffer it is
    /// given; returns false when full.
    pub fn push_with(&mut self, fill: impl FnOnce(&mut Vec<u8>)) -> bool {
        let Some(b) = self.bufs.get_mut(self.len) else {
            return false;
        };
        b.clear();
        b.resize(TUN_HEADROOM, 0);
        fill(b);
        self.len += 1;
        true
    }
}
