//! TUN offload framing, our own implementation: the `virtio_net_hdr` that precedes every frame
//! on a TUN device opened with `IFF_VNET_HDR` (Linux `include/uapi/linux/virtio_net.h`, the
//! legacy 10-byte layout, in host byte order), segmentation of the TCP/UDP "super-packets"
//! the kernel hands over once `TUNSETOFFLOAD` allows TSO/USO (GSO towards user space), and
//! coalescing of packets of one flow into such a super-packet on the way back (GRO towards the
//! kernel). The design follows what wireguard-go does on Linux; the code is written here.
//!
//! * [`split`]: one frame read from the TUN device → MTU-sized IPv6/IPv4 packets appended to
//!   a [`PacketBuf`], each with its transport checksum computed (the kernel leaves it partial:
//!   `VIRTIO_NET_HDR_F_NEEDS_CSUM`), TCP sequence numbers advanced and FIN/PSH/CWR kept only
//!   where a real NIC's TSO keeps them, IPv6 payload length / IPv4 total length, ID and header
//!   checksum fixed per segment.
//! * [`Coalescer`]: decides, packet by packet, whether an IPv6 TCP (or UDP) packet continues a
//!   flow already queued (same addresses, ports, header fields; TCP: next sequence number,
//!   same ACK and options, only ACK/PSH flags; equal segment sizes, only the last may be
//!   shorter) and appends its payload to it; [`finish_frame`] writes the `virtio_net_hdr` and
//!   the partial checksum the kernel completes (`CHECKSUM_PARTIAL`).
//!
//! All of it is bounds-checked safe code working on untrusted bytes: a frame that does not
//! parse is an error (the caller counts and drops it), never a panic. Nothing allocates once
//! the buffers have grown to their working size.

use std::ops::Range;

/// Size of the legacy `virtio_net_hdr` (no `num_buffers`).
pub const VNET_HDR_LEN: usize = 10;
/// `VIRTIO_NET_HDR_F_NEEDS_CSUM`: the checksum at `csum_start + csum_offset` is partial.
pub const F_NEEDS_CSUM: u8 = 1;
/// Not a GSO frame.
pub const GSO_NONE: u8 = 0;
/// IPv4 TCP (TSO).
pub const GSO_TCPV4: u8 = 1;
/// IPv6 TCP (TSO).
pub const GSO_TCPV6: u8 = 4;
/// UDP, IPv4 and IPv6 (USO, Linux 6.2).
pub const GSO_UDP_L4: u8 = 5;
/// Flag bit: the TCP segments carry ECN (CWR only on the first).
pub const GSO_ECN: u8 = 0x80;

const TCP: u8 = 6;
const UDP: u8 = 17;
/// A frame is at most this long (IPv4 total length / IPv6 payload length are 16 bits).
const MAX_FRAME: usize = 65535;
/// At most this many segments out of one frame (a 64 KiB frame of 64-byte segments).
const MAX_SEGMENTS: usize = 1024;

/// The legacy `virtio_net_hdr`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VnetHdr {
    /// `VIRTIO_NET_HDR_F_*`.
    pub flags: u8,
    /// `VIRTIO_NET_HDR_GSO_*`.
    pub gso_type: u8,
    /// Length of the headers to copy into each segment (a hint; recomputed here).
    pub hdr_len: u16,
    /// Payload bytes per segment.
    pub gso_size: u16,
    /// Where checksumming starts (the transport header).
    pub csum_start: u16,
    /// Offset of the checksum field from `csum_start`.
    pub csum_offset: u16,
}

impl VnetHdr {
    /// Reads a header (host byte order: the TUN device is not switched to little/big endian).
    pub fn parse(b: &[u8]) -> Option<Self> {
        let b = b.get(..VNET_HDR_LEN)?;
        let u = |i: usize| u16::from_ne_bytes([b[i], b[i + 1]]);
        Some(Self {
            flags: b[0],
            gso_type: b[1],
            hdr_len: u(2),
            gso_size: u(4),
            csum_start: u(6),
            csum_offset: u(8),
        })
    }

    /// Writes the header into the first [`VNET_HDR_LEN`] bytes of `b`.
    pub fn emit(&self, b: &mut [u8]) {
        b[0] = self.flags;
        b[1] = self.gso_type;
        b[2..4].copy_from_slice(&self.hdr_len.to_ne_bytes());
        b[4..6].copy_from_slice(&self.gso_size.to_ne_bytes());
        b[6..8].copy_from_slice(&self.csum_start.to_ne_bytes());
        b[8..10].copy_from_slice(&self.csum_offset.to_ne_bytes());
    }
}

/// Why a frame read from the TUN device was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OffloadError {
    /// Shorter than its headers, or the virtio header points outside it.
    #[error("truncated or inconsistent frame")]
    Malformed,
    /// A GSO type this code does not segment (UFO, or a protocol mismatch).
    #[error("unsupported GSO type {0:#04x}")]
    Unsupported(u8),
    /// More segments than [`MAX_SEGMENTS`].
    #[error("too many segments")]
    TooManySegments,
}

/// Packets stored back to back in one buffer, each after `headroom` free bytes.
#[derive(Debug, Default)]
pub struct PacketBuf {
    data: Vec<u8>,
    ranges: Vec<Range<usize>>,
    headroom: usize,
}

impl PacketBuf {
    /// An empty buffer with room reserved for `bytes` of packets.
    pub fn new(headroom: usize, bytes: usize, packets: usize) -> Self {
        Self {
            data: Vec::with_capacity(bytes),
            ranges: Vec::with_capacity(packets),
            headroom,
        }
    }

    /// Drops all packets (keeps the memory).
    pub fn clear(&mut self) {
        self.data.clear();
        self.ranges.clear();
    }

    /// Number of packets.
    pub fn len(&self) -> usize {
        self.ranges.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Packet `i`.
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        self.ranges.get(i).map(|r| &self.data[r.clone()])
    }

    /// Packet `i` with its headroom, and the packet's range within that slice.
    pub fn with_headroom_mut(&mut self, i: usize) -> Option<(&mut [u8], Range<usize>)> {
        let r = self.ranges.get(i)?.clone();
        let start = r.start - self.headroom;
        Some((&mut self.data[start..r.end], self.headroom..r.end - start))
    }

    /// Starts a packet: reserves the headroom and returns where the packet begins.
    fn begin(&mut self) -> usize {
        self.data.resize(self.data.len() + self.headroom, 0);
        self.data.len()
    }

    /// Appends a packet written by `fill` (which appends to the buffer it is given); a
    /// packet `fill` leaves empty is not stored.
    pub fn push_with(&mut self, fill: impl FnOnce(&mut Vec<u8>)) {
        let start = self.begin();
        fill(&mut self.data);
        if self.data.len() > start {
            self.ranges.push(start..self.data.len());
        } else {
            self.data.truncate(start - self.headroom);
        }
    }

    /// Appends a copy of `packet`.
    pub fn push(&mut self, packet: &[u8]) {
        self.push_with(|d| d.extend_from_slice(packet));
    }

    /// Removes the packets from `len` on.
    fn truncate(&mut self, len: usize) {
        if let Some(r) = self.ranges.get(len) {
            self.data.truncate(r.start - self.headroom);
        }
        self.ranges.truncate(len);
    }
}

/// RFC 1071 sum of `data` added to `acc` (not folded): big-endian 16-bit words, an odd last
/// byte padded with zero. Summing 32-bit words and folding later gives the same result.
pub fn sum(data: &[u8], mut acc: u64) -> u64 {
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        acc += (w >> 32) + (w & 0xffff_ffff);
    }
    let mut rest = chunks.remainder();
    if rest.len() >= 4 {
        acc += u64::from(u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]));
        rest = &rest[4..];
    }
    if rest.len() >= 2 {
        acc += u64::from(u16::from_be_bytes([rest[0], rest[1]]));
        rest = &rest[2..];
    }
    if let Some(b) = rest.first() {
        acc += u64::from(*b) << 8;
    }
    acc
}

/// Folds a sum to 16 bits (ones' complement carry).
pub fn fold(mut acc: u64) -> u16 {
    while acc >> 16 != 0 {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// The pseudo-header sum (RFC 8200 §8.1, RFC 793 §3.1) of an IPv6 or IPv4 packet `ip` whose
/// transport header has `l4_len` bytes with it.
fn pseudo_sum(ip: &[u8], v6: bool, proto: u8, l4_len: usize) -> u64 {
    let addrs = if v6 { &ip[8..40] } else { &ip[12..20] };
    sum(addrs, u64::from(proto) + l4_len as u64)
}

/// Completes a partial checksum (`VIRTIO_NET_HDR_F_NEEDS_CSUM` without GSO): the field holds
/// the pseudo-header sum; the ones' complement of the sum from `start` to the end goes there.
fn complete_csum(p: &mut [u8], start: usize, offset: usize) -> Result<(), OffloadError> {
    let field = start + offset;
    if start >= p.len() || field + 2 > p.len() {
        return Err(OffloadError::Malformed);
    }
    let c = !fold(sum(&p[start..], 0));
    p[field..field + 2].copy_from_slice(&c.to_be_bytes());
    Ok(())
}

/// Splits `frame` (what followed the virtio header `hdr` in one TUN read) into packets
/// appended to `out`. Returns how many were appended; on error nothing is appended.
pub fn split(hdr: &VnetHdr, frame: &mut [u8], out: &mut PacketBuf) -> Result<usize, OffloadError> {
    let gso = hdr.gso_type & !GSO_ECN;
    if gso == GSO_NONE {
        if frame.is_empty() {
            return Err(OffloadError::Malformed);
        }
        if hdr.flags & F_NEEDS_CSUM != 0 {
            complete_csum(
                frame,
                usize::from(hdr.csum_start),
                usize::from(hdr.csum_offset),
            )?;
        }
        out.push(frame);
        return Ok(1);
    }
    let first = out.len();
    let r = split_gso(hdr, gso, frame, out);
    if r.is_err() {
        out.truncate(first);
    }
    r
}

fn split_gso(
    hdr: &VnetHdr,
    gso: u8,
    frame: &[u8],
    out: &mut PacketBuf,
) -> Result<usize, OffloadError> {
    let v6 = match frame.first().map(|b| b >> 4) {
        Some(6) => true,
        Some(4) => false,
        _ => return Err(OffloadError::Malformed),
    };
    let (proto, l4) = match (gso, v6) {
        (GSO_TCPV6, true) | (GSO_TCPV4, false) => (TCP, usize::from(hdr.csum_start)),
        (GSO_UDP_L4, _) => (UDP, usize::from(hdr.csum_start)),
        _ => return Err(OffloadError::Unsupported(hdr.gso_type)),
    };
    // The transport header starts at csum_start (TSO/USO frames always need the checksum).
    let min_ip = if v6 { 40 } else { 20 };
    if l4 < min_ip || frame.len() > MAX_FRAME || hdr.gso_size == 0 {
        return Err(OffloadError::Malformed);
    }
    if !v6 && usize::from(frame[0] & 0x0f) * 4 != l4 {
        return Err(OffloadError::Malformed);
    }
    let l4_hdr = match proto {
        TCP => {
            let off = frame.get(l4 + 12).ok_or(OffloadError::Malformed)?;
            usize::from(off >> 4) * 4
        }
        _ => 8,
    };
    let hlen = l4 + l4_hdr;
    if l4_hdr < if proto == TCP { 20 } else { 8 } || hlen >= frame.len() {
        return Err(OffloadError::Malformed);
    }
    let (head, payload) = frame.split_at(hlen);
    let seg = usize::from(hdr.gso_size);
    let count = payload.len().div_ceil(seg);
    if count > MAX_SEGMENTS {
        return Err(OffloadError::TooManySegments);
    }
    let seq0 = if proto == TCP {
        u32::from_be_bytes([head[l4 + 4], head[l4 + 5], head[l4 + 6], head[l4 + 7]])
    } else {
        0
    };
    let id0 = if v6 {
        0
    } else {
        u16::from_be_bytes([head[4], head[5]])
    };
    for (i, chunk) in payload.chunks(seg).enumerate() {
        let last = i + 1 == count;
        out.push_with(|d| {
            let p0 = d.len();
            d.extend_from_slice(head);
            d.extend_from_slice(chunk);
            let p = &mut d[p0..];
            let total = p.len();
            let l4_len = total - l4;
            if v6 {
                p[4..6].copy_from_slice(&((total - 40) as u16).to_be_bytes());
            } else {
                p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
                p[4..6].copy_from_slice(&id0.wrapping_add(i as u16).to_be_bytes());
                p[10..12].fill(0);
                let c = !fold(sum(&p[..l4], 0));
                p[10..12].copy_from_slice(&c.to_be_bytes());
            }
            let csum_field = if proto == TCP {
                let seq = seq0.wrapping_add((i * seg) as u32);
                p[l4 + 4..l4 + 8].copy_from_slice(&seq.to_be_bytes());
                // A NIC's TSO: CWR only on the first segment, FIN and PSH only on the last.
                if i > 0 {
                    p[l4 + 13] &= !0x80;
                }
                if !last {
                    p[l4 + 13] &= !0x09;
                }
                l4 + 16
            } else {
                p[l4 + 4..l4 + 6].copy_from_slice(&(l4_len as u16).to_be_bytes());
                l4 + 6
            };
            p[csum_field..csum_field + 2].fill(0);
            let mut c = !fold(sum(&p[l4..], pseudo_sum(p, v6, proto, l4_len)));
            if proto == UDP && c == 0 {
                c = 0xffff;
            }
            p[csum_field..csum_field + 2].copy_from_slice(&c.to_be_bytes());
        });
    }
    Ok(count)
}

/// Whether a packet's transport checksum is right (only checked packets are coalesced: the
/// kernel does not verify a `CHECKSUM_PARTIAL` super-packet again).
fn l4_checksum_ok(p: &[u8], proto: u8) -> bool {
    fold(sum(&p[40..], pseudo_sum(p, true, proto, p.len() - 40))) == 0xffff
}

/// What a queued frame can take more of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Open {
    /// Nothing: written as it is.
    No,
    Tcp {
        /// Segment payload size (that of the first packet).
        seg: usize,
        /// Header length (IPv6 + TCP).
        hlen: usize,
        /// Sequence number the next packet must have.
        next_seq: u32,
        /// Packets in the frame.
        count: usize,
        /// No more may be added (a short segment or PSH came last).
        closed: bool,
    },
    Udp {
        seg: usize,
        count: usize,
        closed: bool,
    },
}

/// One frame being built for the TUN device: the virtio header's room, then an IPv6 packet,
/// possibly growing into a super-packet.
#[derive(Debug)]
struct Frame {
    buf: Vec<u8>,
    open: Open,
}

/// Coalesces packets written to the TUN device into GRO super-packets (IPv6 TCP, and IPv6
/// UDP when the kernel takes USO frames), reusing its frame buffers.
#[derive(Debug)]
pub struct Coalescer {
    frames: Vec<Frame>,
    len: usize,
    packets: usize,
    udp: bool,
}

/// The TCP flags that may appear on coalesced segments (ACK, and PSH on the last).
const TCP_ACK: u8 = 0x10;
const TCP_PSH: u8 = 0x08;

impl Coalescer {
    /// Room for `capacity` frames.
    pub fn new(capacity: usize) -> Self {
        Self {
            frames: (0..capacity.max(1))
                .map(|_| Frame {
                    buf: Vec::with_capacity(VNET_HDR_LEN + 1500),
                    open: Open::No,
                })
                .collect(),
            len: 0,
            packets: 0,
            udp: false,
        }
    }

    /// Also coalesce UDP (only if the device accepted `TUN_F_USO6`).
    pub fn set_udp(&mut self, on: bool) {
        self.udp = on;
    }

    /// Frames queued.
    pub fn frames(&self) -> usize {
        self.len
    }

    /// Packets queued.
    pub fn packets(&self) -> usize {
        self.packets
    }

    /// True when no new frame fits (a packet may still be merged).
    pub fn is_full(&self) -> bool {
        self.len == self.frames.len()
    }

    /// Forgets the queued frames.
    pub fn clear(&mut self) {
        self.len = 0;
        self.packets = 0;
    }

    /// Queues a packet written by `fill` (appended to the empty vector it is given; the
    /// virtio header's room is added in front here). Returns false, queuing nothing, when
    /// no frame is free. `coalesce` false writes it as it is (the device has no offload).
    pub fn push_with(&mut self, coalesce: bool, fill: impl FnOnce(&mut Vec<u8>)) -> bool {
        if self.len == self.frames.len() {
            return false;
        }
        let (done, rest) = self.frames.split_at_mut(self.len);
        let f = &mut rest[0];
        f.buf.clear();
        f.buf.resize(VNET_HDR_LEN, 0);
        fill(&mut f.buf);
        if f.buf.len() == VNET_HDR_LEN {
            return true;
        }
        self.packets += 1;
        f.open = Open::No;
        if !coalesce {
            self.len += 1;
            return true;
        }
        let p = &f.buf[VNET_HDR_LEN..];
        let Some(c) = Candidate::of(p, self.udp) else {
            // Not coalescable: later packets of its flow must not overtake it.
            if let Some(key) = flow_key(p) {
                for d in done.iter_mut() {
                    if flow_key(&d.buf[VNET_HDR_LEN..]) == Some(key) {
                        d.open.close();
                    }
                }
            }
            self.len += 1;
            return true;
        };
        // Newest first: the frame a flow's previous packet went to.
        for d in done.iter_mut().rev() {
            match d.try_merge(p, &c) {
                Merge::Merged => return true,
                Merge::SameFlow => break,
                Merge::Other => {}
            }
        }
        f.open = c.open();
        self.len += 1;
        true
    }

    /// The queued frames, each finished (virtio header, lengths, partial checksum) and
    /// starting with its virtio header.
    pub fn finish(&mut self) -> impl Iterator<Item = &[u8]> {
        self.frames[..self.len].iter_mut().map(|f| {
            finish_frame(&mut f.buf, f.open);
            &f.buf[..]
        })
    }
}

impl Open {
    fn close(&mut self) {
        match self {
            Self::Tcp { closed, .. } | Self::Udp { closed, .. } => *closed = true,
            Self::No => {}
        }
    }
}

/// The addresses, protocol and ports of an IPv6 TCP/UDP packet without extension headers.
fn flow_key(p: &[u8]) -> Option<(&[u8], u8)> {
    if p.len() < 44 || p[0] >> 4 != 6 || !matches!(p[6], TCP | UDP) {
        return None;
    }
    Some((&p[8..44], p[6]))
}

/// A packet that may be coalesced.
struct Candidate {
    proto: u8,
    hlen: usize,
    payload: usize,
    seq: u32,
    psh: bool,
}

impl Candidate {
    fn of(p: &[u8], udp: bool) -> Option<Self> {
        let (_, proto) = flow_key(p)?;
        let plen = usize::from(u16::from_be_bytes([p[4], p[5]]));
        if plen + 40 != p.len() {
            return None;
        }
        match proto {
            TCP => {
                if p.len() < 60 {
                    return None;
                }
                let thl = usize::from(p[52] >> 4) * 4;
                let flags = p[53];
                let hlen = 40 + thl;
                if thl < 20 || hlen >= p.len() || flags & !(TCP_ACK | TCP_PSH) != 0 {
                    return None;
                }
                if flags & TCP_ACK == 0 || !l4_checksum_ok(p, TCP) {
                    return None;
                }
                Some(Self {
                    proto,
                    hlen,
                    payload: p.len() - hlen,
                    seq: u32::from_be_bytes([p[44], p[45], p[46], p[47]]),
                    psh: flags & TCP_PSH != 0,
                })
            }
            _ => {
                if p.len() < 48 {
                    return None;
                }
                let ulen = usize::from(u16::from_be_bytes([p[44], p[45]]));
                // A zero UDP checksum is not allowed over IPv6 (RFC 8200 §8.1).
                if !udp || ulen + 40 != p.len() || ulen <= 8 || !l4_checksum_ok(p, UDP) {
                    return None;
                }
                Some(Self {
                    proto,
                    hlen: 48,
                    payload: ulen - 8,
                    seq: 0,
                    psh: false,
                })
            }
        }
    }

    fn open(&self) -> Open {
        if self.proto == TCP {
            Open::Tcp {
                seg: self.payload,
                hlen: self.hlen,
                next_seq: self.seq.wrapping_add(self.payload as u32),
                count: 1,
                closed: self.psh,
            }
        } else {
            Open::Udp {
                seg: self.payload,
                count: 1,
                closed: false,
            }
        }
    }
}

enum Merge {
    Merged,
    /// Same flow, but it cannot take this packet (the packet starts a frame of its own).
    SameFlow,
    Other,
}

impl Frame {
    fn try_merge(&mut self, p: &[u8], c: &Candidate) -> Merge {
        let q = &self.buf[VNET_HDR_LEN..];
        if flow_key(q) != flow_key(p) {
            return Merge::Other;
        }
        // Version, traffic class, flow label and hop limit must agree.
        if q[0..4] != p[0..4] || q[7] != p[7] {
            return Merge::SameFlow;
        }
        let room = MAX_FRAME - VNET_HDR_LEN;
        match &mut self.open {
            Open::Tcp {
                seg,
                hlen,
                next_seq,
                count,
                closed,
            } => {
                let h = *hlen;
                // Same header length, ACK number, window, urgent pointer and options.
                let same = h == c.hlen && q[48..52] == p[48..52] && q[54..56] == p[54..56];
                let same = same && q[58..h] == p[58..h];
                if *closed || !same || c.seq != *next_seq || c.payload > *seg {
                    return Merge::SameFlow;
                }
                if self.buf.len() + c.payload > room + VNET_HDR_LEN || *count >= MAX_SEGMENTS {
                    return Merge::SameFlow;
                }
                *next_seq = next_seq.wrapping_add(c.payload as u32);
                *count += 1;
                *closed = c.psh || c.payload < *seg;
                let psh = c.psh;
                self.buf.extend_from_slice(&p[h..]);
                if psh {
                    self.buf[VNET_HDR_LEN + 53] |= TCP_PSH;
                }
                Merge::Merged
            }
            Open::Udp { seg, count, closed } => {
                if *closed || c.payload > *seg || *count >= MAX_SEGMENTS {
                    return Merge::SameFlow;
                }
                if self.buf.len() + c.payload > room + VNET_HDR_LEN {
                    return Merge::SameFlow;
                }
                *count += 1;
                *closed = c.payload < *seg;
                self.buf.extend_from_slice(&p[48..]);
                Merge::Merged
            }
            Open::No => Merge::SameFlow,
        }
    }
}

/// Writes the virtio header of a queued frame, and for a super-packet the lengths and the
/// partial checksum (the pseudo-header sum, which the kernel completes).
fn finish_frame(buf: &mut [u8], open: Open) {
    let (hdr, p) = buf.split_at_mut(VNET_HDR_LEN);
    let count = match open {
        Open::Tcp { count, .. } | Open::Udp { count, .. } => count,
        Open::No => 1,
    };
    if count < 2 {
        VnetHdr::default().emit(hdr);
        return;
    }
    let l4_len = p.len() - 40;
    p[4..6].copy_from_slice(&(l4_len as u16).to_be_bytes());
    let (h, field, gso, seg, proto) = match open {
        Open::Tcp { seg, hlen, .. } => (hlen, 16, GSO_TCPV6, seg, TCP),
        Open::Udp { seg, .. } => {
            p[44..46].copy_from_slice(&(l4_len as u16).to_be_bytes());
            (48, 6, GSO_UDP_L4, seg, UDP)
        }
        Open::No => return,
    };
    let partial = fold(pseudo_sum(p, true, proto, l4_len));
    p[40 + field..42 + field].copy_from_slice(&partial.to_be_bytes());
    VnetHdr {
        flags: F_NEEDS_CSUM,
        gso_type: gso,
        hdr_len: h as u16,
        gso_size: seg as u16,
        csum_start: 40,
        csum_offset: field as u16,
    }
    .emit(hdr);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An IPv6 TCP packet with a correct checksum.
    fn tcp6(seq: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0u8; 60];
        p[0] = 0x60;
        p[4..6].copy_from_slice(&((20 + payload.len()) as u16).to_be_bytes());
        p[6] = TCP;
        p[7] = 64;
        p[8..24].copy_from_slice(&"fd00::1".parse::<std::net::Ipv6Addr>().unwrap().octets());
        p[24..40].copy_from_slice(&"fd00::2".parse::<std::net::Ipv6Addr>().unwrap().octets());
        p[40..42].copy_from_slice(&1000u16.to_be_bytes());
        p[42..44].copy_from_slice(&2000u16.to_be_bytes());
        p[44..48].copy_from_slice(&seq.to_be_bytes());
        p[48..52].copy_from_slice(&7u32.to_be_bytes());
        p[52] = 5 << 4;
        p[53] = flags;
        p[54..56].copy_from_slice(&100u16.to_be_bytes());
        p.extend_from_slice(payload);
        let c = !fold(sum(&p[40..], pseudo_sum(&p, true, TCP, p.len() - 40)));
        p[56..58].copy_from_slice(&c.to_be_bytes());
        p
    }

    #[test]
    fn checksum_matches_rfc1071_example() {
        // RFC 1071 §3: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2.
        assert_eq!(
            fold(sum(&[0, 1, 0xf2, 3, 0xf4, 0xf5, 0xf6, 0xf7], 0)),
            0xddf2
        );
        assert_eq!(fold(sum(&[0, 1, 0xf2], 0)), 0xf201);
    }

    #[test]
    fn split_then_coalesce_round_trips() {
        let payload: Vec<u8> = (0..3000u32).map(|i| i as u8).collect();
        let mut big = tcp6(1_000_000, TCP_ACK | TCP_PSH, &payload);
        // The kernel leaves the pseudo-header sum in the checksum field.
        let ps = fold(pseudo_sum(&big, true, TCP, big.len() - 40));
        big[56..58].copy_from_slice(&ps.to_be_bytes());
        let hdr = VnetHdr {
            flags: F_NEEDS_CSUM,
            gso_type: GSO_TCPV6,
            hdr_len: 60,
            gso_size: 1000,
            csum_start: 40,
            csum_offset: 16,
        };
        let mut out = PacketBuf::new(4, 0, 0);
        assert_eq!(split(&hdr, &mut big, &mut out).unwrap(), 3);
        for i in 0..3 {
            let p = out.get(i).unwrap();
            assert_eq!(
                p,
                tcp6(
                    1_000_000 + 1000 * i as u32,
                    if i == 2 { 0x18 } else { 0x10 },
                    &payload[i * 1000..(i + 1) * 1000]
                )
            );
        }
        let mut co = Coalescer::new(8);
        for i in 0..3 {
            assert!(co.push_with(true, |b| b.extend_from_slice(out.get(i).unwrap())));
        }
        assert_eq!((co.frames(), co.packets()), (1, 3));
        let f: Vec<Vec<u8>> = co.finish().map(<[u8]>::to_vec).collect();
        let h = VnetHdr::parse(&f[0]).unwrap();
        assert_eq!(h, VnetHdr { hdr_len: 60, ..hdr });
        assert_eq!(f[0][VNET_HDR_LEN..], big[..]);
    }

    #[test]
    fn coalescing_stops_at_gaps_flags_and_bad_checksums() {
        let d = [7u8; 100];
        let mut co = Coalescer::new(8);
        let push = |co: &mut Coalescer, p: Vec<u8>| {
            assert!(co.push_with(true, |b| b.extend_from_slice(&p)))
        };
        push(&mut co, tcp6(0, TCP_ACK, &d));
        push(&mut co, tcp6(100, TCP_ACK, &d));
        push(&mut co, tcp6(300, TCP_ACK, &d)); // gap
        let mut bad = tcp6(400, TCP_ACK, &d);
        bad[70] ^= 1;
        push(&mut co, bad); // bad checksum: own frame, closes the flow
        push(&mut co, tcp6(500, TCP_ACK, &d));
        push(&mut co, tcp6(600, TCP_ACK | 0x01, &d)); // FIN
        assert_eq!((co.frames(), co.packets()), (5, 6));
        let sizes: Vec<usize> = co.finish().map(<[u8]>::len).collect();
        assert_eq!(
            sizes,
            [10 + 60 + 200, 10 + 160, 10 + 160, 10 + 160, 10 + 160]
        );
    }

    #[test]
    fn hostile_frames_are_errors() {
        let mut out = PacketBuf::new(0, 0, 0);
        let hdr = VnetHdr {
            flags: F_NEEDS_CSUM,
            gso_type: GSO_TCPV6,
            hdr_len: 60,
            gso_size: 1,
            csum_start: 40,
            csum_offset: 16,
        };
        for len in 0..80 {
            let mut f = vec![0x60u8; len];
            let _ = split(&hdr, &mut f, &mut out);
            let _ = split(
                &VnetHdr {
                    csum_start: 9999,
                    ..hdr
                },
                &mut f,
                &mut out,
            );
            let _ = split(
                &VnetHdr {
                    gso_type: GSO_NONE,
                    csum_start: 70,
                    ..hdr
                },
                &mut f,
                &mut out,
            );
            let _ = split(
                &VnetHdr {
                    gso_type: GSO_UDP_L4,
                    ..hdr
                },
                &mut f,
                &mut out,
            );
            let mut co = Coalescer::new(2);
            co.set_udp(true);
            co.push_with(true, |b| b.extend_from_slice(&f));
            co.push_with(true, |b| b.extend_from_slice(&f));
            let _ = co.finish().count();
        }
        out.clear();
        let mut f = tcp6(0, TCP_ACK, &[0u8; 2000]);
        assert_eq!(
            split(&hdr, &mut f, &mut out),
            Err(OffloadError::TooManySegments)
        );
        assert!(out.is_empty());
    }
}
