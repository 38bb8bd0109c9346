//! The per-packet engine: outbound processing (RFC 4303 §3.3, RFC 4301 §5.1) and inbound
//! processing (RFC 4303 §3.4, RFC 4301 §5.2).
//!
//! Outbound, for a packet read from the TUN device: parse the IPv6 header and extension headers
//! ([`PacketInfo`]), find the first matching outbound SPD entry, and for PROTECT build the ESP
//! packet in the caller's buffer: tunnel mode puts the whole packet behind ESP with Next Header
//! 41 (RFC 4303 §3.1.2), transport mode the upper-layer part with the original Next Header
//! (§3.1.1). The sequence number is incremented first and never wraps (§3.3.3).
//!
//! Inbound, for an ESP packet from a raw socket (protocol 50) or UDP port 4500: look the SA up
//! by SPI (§3.4.2), check the sequence number against the replay window (§3.4.3), verify the
//! ICV / decrypt (§3.4.4), only then mark the sequence number, check the padding (§2.4), drop
//! dummy packets (§2.6), and check the result against the SA's selectors (RFC 4301 §5.2 step 4).

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::time::Instant;

use tracing::{debug, trace};

use crate::lifetime::Expiry;
use crate::packet::{IPV6_HEADER_LEN, PacketInfo, proto, upper_layer_fields};
use crate::sad::{Mode, Sa, SaHandle, SaParams, Sad};
use crate::spd::{Direction, PolicyAction, Spd};
use crate::stats::{DropCounters, DropReason, Stats};
use crate::wire::{self, ESP_HEADER_LEN, pad_len, push_trailer, strip_trailer};
use crate::{SaError, SaEvent};

/// An outbound SA raises [`SaEvent::SoftExpired`] when its sequence number reaches this, so
/// that it is rekeyed well before it runs out (RFC 4303 §3.3.3: a new SA must be established
/// before the counter would cycle).
pub const SEQ_SOFT_LIMIT: u32 = u32::MAX - (1 << 24);

/// What to do with a packet. Borrows the caller's output buffer (and, for
/// [`Bypass`](Self::Bypass), the input).
#[must_use]
#[derive(Debug, PartialEq, Eq)]
pub enum EspAction<'a> {
    /// Send this ESP packet to the network.
    ToNetwork(Transmit<'a>),
    /// Write this IPv6 packet (a decapsulated tunnel-mode packet) to the TUN device.
    ToTun(&'a [u8]),
    /// A transport-mode payload was received; the caller delivers it (for example to the
    /// Mobility Header handler, or to the TUN device with [`crate::build_ipv6_packet`]).
    Transport(TransportPayload<'a>),
    /// Outbound, BYPASS policy: send this packet (the input, trimmed to its IPv6 length) as
    /// it is.
    Bypass(&'a [u8]),
    /// Dropped; already counted and logged.
    Drop(DropReason),
}

/// An ESP packet to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transmit<'a> {
    /// The SA's SPI.
    pub spi: u32,
    /// Outer source: the SA's local endpoint (tunnel mode) or the packet's source (transport
    /// mode). The port matters only with `udp`.
    pub src: SocketAddr,
    /// Outer destination, likewise.
    pub dst: SocketAddr,
    /// Send `data` as the payload of a UDP datagram from `src` to `dst` (RFC 3948, port
    /// 4500); otherwise on a raw IPv6 socket of protocol 50, which builds the IPv6 header.
    pub udp: bool,
    /// Transport mode only: IPv6 extension headers that stay in front of ESP (Hop-by-Hop,
    /// Routing, a Destination Options header with a Home Address option), with the last Next
    /// Header already set to 50 (or 17 with `udp`). The driver passes them to the socket
    /// (for example as `IPV6_RTHDR` / `IPV6_DSTOPTS` ancillary data). Empty in tunnel mode.
    pub ext_headers: &'a [u8],
    /// The ESP packet, from the SPI to the ICV: the raw socket's payload, or the UDP payload.
    pub data: &'a [u8],
}

/// A decapsulated transport-mode payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TransportPayload<'a> {
    /// The SA's SPI.
    pub spi: u32,
    /// The protocol of `payload` (ESP's Next Header), e.g. 135 for a Binding Update.
    pub next_header: u8,
    /// The upper-layer header and data.
    pub payload: &'a [u8],
}

/// Where one packet of [`Esp::encapsulate_batch`] went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BatchItem {
    /// Sealed into the batch buffer.
    Sealed {
        /// The SA's SPI.
        spi: u32,
        /// Outer source (see [`Transmit::src`]).
        src: SocketAddr,
        /// Outer destination.
        dst: SocketAddr,
        /// ESP in UDP.
        udp: bool,
        /// Range of the extension headers in the buffer (see [`Transmit::ext_headers`]).
        ext_headers: Range<usize>,
        /// Range of the ESP packet in the buffer.
        data: Range<usize>,
    },
    /// BYPASS: send input packet number `index` as it is (its first `len` bytes).
    Bypass {
        /// Position in the input.
        index: usize,
        /// IPv6 length of the packet.
        len: usize,
    },
    /// Dropped.
    Drop(DropReason),
}

/// Where a sealed packet went: outer addresses and the length of the extension headers that
/// precede ESP in the output.
struct Sealed {
    src: SocketAddr,
    dst: SocketAddr,
    ext_len: usize,
}

/// What an inbound packet turned into: its length in the output buffer.
enum Opened {
    Tunnel(usize),
    Transport { next_header: u8, len: usize },
}

/// The ESP data plane: the SAD, the SPD, pending events and counters.
///
/// Calling order (the quadrants of `shared/style.md` §2, per packet):
/// * configuration: [`add_sa`](Self::add_sa), [`remove_sa`](Self::remove_sa),
///   [`spd_mut`](Self::spd_mut), [`set_endpoints`](Self::set_endpoints);
/// * for each packet from the TUN device, [`encapsulate`](Self::encapsulate); for each ESP
///   packet from the network, [`decapsulate`](Self::decapsulate); the action borrows the
///   output buffer, which the caller reuses for the next packet;
/// * when the clock reaches [`poll_timeout`](Self::poll_timeout), call
///   [`handle_timeout`](Self::handle_timeout);
/// * after either, drain [`poll_event`](Self::poll_event) (soft expiry: rekey; hard expiry:
///   remove the SA and its policies).
///
/// The engine reads no clock and opens no socket; `now` is always passed in.
#[derive(Debug, Default)]
pub struct Esp {
    pub(crate) sad: Sad,
    spd: Spd,
    events: VecDeque<SaEvent>,
    drops: DropCounters,
    bypassed: u64,
}

impl Esp {
    /// An engine with no SAs and an empty SPD.
    pub fn new() -> Self {
        Self::default()
    }

    /// Installs an SA. Keys are expanded here, once.
    pub fn add_sa(&mut self, now: Instant, params: &SaParams) -> Result<SaHandle, SaError> {
        let h = self.sad.insert(now, params)?;
        debug!(
            spi = %format_args!("{:#010x}", params.spi),
            direction = ?params.direction,
            mode = %params.mode,
            transform = ?params.transform,
            udp = params.udp_encap,
            selector = %params.selector,
            "SA added"
        );
        Ok(h)
    }

    /// Removes an SA. SPD entries that point at it then drop traffic with
    /// [`DropReason::NoSa`] until they are removed or retargeted. Returns whether it existed.
    pub fn remove_sa(&mut self, h: SaHandle) -> bool {
        match self.sad.remove(h) {
            Some(sa) => {
                debug!(spi = %format_args!("{:#010x}", sa.spi), "SA removed");
                true
            }
            None => false,
        }
    }

    /// Changes the outer endpoints of an SA (the mobile node moved to a new care-of address,
    /// or a NAT mapping changed).
    pub fn set_endpoints(
        &mut self,
        h: SaHandle,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> Result<(), SaError> {
        let mut sa = self.sad.get_mut(h).ok_or(SaError::UnknownSa)?;
        sa.local = local;
        sa.remote = remote;
        Ok(())
    }

    /// The SAD.
    pub fn sad(&self) -> &Sad {
        &self.sad
    }

    /// The SPD.
    pub fn spd(&self) -> &Spd {
        &self.spd
    }

    /// The SPD, to add, remove and reorder policies.
    pub fn spd_mut(&mut self) -> &mut Spd {
        &mut self.spd
    }

    /// Outbound processing of one IPv6 packet read from the TUN device. `out` is cleared and
    /// receives the ESP packet.
    pub fn encapsulate<'a>(
        &mut self,
        now: Instant,
        inner: &'a [u8],
        out: &'a mut Vec<u8>,
    ) -> EspAction<'a> {
        out.clear();
        let info = match PacketInfo::parse(inner) {
            Ok(i) => i,
            Err(e) => {
                debug!(error = %e, "dropped outbound packet: not a valid IPv6 packet");
                return EspAction::Drop(self.drop_outbound(None, DropReason::Malformed));
            }
        };
        let action = match self.spd.lookup(Direction::Outbound, &info) {
            Some(e) => e.action,
            None => {
                trace!(src = %info.sel_src, dst = %info.sel_dst, proto = info.next_proto, "no policy");
                return EspAction::Drop(self.drop_outbound(None, DropReason::NoPolicy));
            }
        };
        match action {
            PolicyAction::Bypass => {
                self.bypassed += 1;
                EspAction::Bypass(&inner[..info.total_len])
            }
            PolicyAction::Discard => {
                EspAction::Drop(self.drop_outbound(None, DropReason::PolicyDiscard))
            }
            PolicyAction::Protect(h) => match self.seal(now, h, inner, &info, out) {
                Ok((spi, udp, s)) => {
                    let (ext_headers, data) = out.split_at(s.ext_len);
                    EspAction::ToNetwork(Transmit {
                        spi,
                        src: s.src,
                        dst: s.dst,
                        udp,
                        ext_headers,
                        data,
                    })
                }
                Err(r) => EspAction::Drop(r),
            },
        }
    }

    /// Outbound processing through a given SA, without the SPD (for packets the daemon
    /// builds itself, such as a Binding Update on the RFC 3776 transport SA).
    pub fn encapsulate_with<'a>(
        &mut self,
        now: Instant,
        sa: SaHandle,
        inner: &'a [u8],
        out: &'a mut Vec<u8>,
    ) -> EspAction<'a> {
        out.clear();
        let Ok(info) = PacketInfo::parse(inner) else {
            return EspAction::Drop(self.drop_outbound(Some(sa), DropReason::Malformed));
        };
        match self.seal(now, sa, inner, &info, out) {
            Ok((spi, udp, s)) => {
                let (ext_headers, data) = out.split_at(s.ext_len);
                EspAction::ToNetwork(Transmit {
                    spi,
                    src: s.src,
                    dst: s.dst,
                    udp,
                    ext_headers,
                    data,
                })
            }
            Err(r) => EspAction::Drop(r),
        }
    }

    /// Outbound processing of many packets into one buffer: `buf` is cleared, each sealed
    /// packet is appended to it, and `items` (cleared too) gets one entry per input packet,
    /// in order. With the buffers reused, a batch allocates nothing once they have grown.
    pub fn encapsulate_batch<'p, I>(
        &mut self,
        now: Instant,
        packets: I,
        buf: &mut Vec<u8>,
        items: &mut Vec<BatchItem>,
    ) where
        I: IntoIterator<Item = &'p [u8]>,
    {
        buf.clear();
        items.clear();
        for (index, inner) in packets.into_iter().enumerate() {
            let item = match PacketInfo::parse(inner) {
                Err(_) => BatchItem::Drop(self.drop_outbound(None, DropReason::Malformed)),
                Ok(info) => match self
                    .spd
                    .lookup(Direction::Outbound, &info)
                    .map(|e| e.action)
                {
                    None => BatchItem::Drop(self.drop_outbound(None, DropReason::NoPolicy)),
                    Some(PolicyAction::Discard) => {
                        BatchItem::Drop(self.drop_outbound(None, DropReason::PolicyDiscard))
                    }
                    Some(PolicyAction::Bypass) => {
                        self.bypassed += 1;
                        BatchItem::Bypass {
                            index,
                            len: info.total_len,
                        }
                    }
                    Some(PolicyAction::Protect(h)) => {
                        let start = buf.len();
                        match self.seal(now, h, inner, &info, buf) {
                            Ok((spi, udp, s)) => BatchItem::Sealed {
                                spi,
                                src: s.src,
                                dst: s.dst,
                                udp,
                                ext_headers: start..start + s.ext_len,
                                data: start + s.ext_len..buf.len(),
                            },
                            Err(r) => {
                                buf.truncate(start);
                                BatchItem::Drop(r)
                            }
                        }
                    }
                },
            };
            items.push(item);
        }
    }

    /// Seals `inner` with SA `h`, appending to `out`. Counts and logs drops.
    fn seal(
        &mut self,
        now: Instant,
        h: SaHandle,
        inner: &[u8],
        info: &PacketInfo,
        out: &mut Vec<u8>,
    ) -> Result<(u32, bool, Sealed), DropReason> {
        let Some(mut sa) = self
            .sad
            .get_mut(h)
            .filter(|sa| sa.direction == Direction::Outbound)
        else {
            return Err(self.drop_outbound(None, DropReason::NoSa));
        };
        let mut exp = Expiry::default();
        let start = out.len();
        let r = sa.seal(now, inner, info, out, &mut exp);
        let (spi, udp) = (sa.spi, sa.udp_encap);
        if exp.any() {
            push_events(&mut self.events, h, &sa, exp);
        }
        drop(sa);
        match r {
            Ok(s) => {
                trace!(spi = %format_args!("{spi:#010x}"), len = out.len() - start, "sealed");
                Ok((spi, udp, s))
            }
            Err(reason) => {
                out.truncate(start);
                Err(self.drop_outbound(Some(h), reason))
            }
        }
    }

    /// Counts and logs an outbound drop.
    fn drop_outbound(&mut self, h: Option<SaHandle>, reason: DropReason) -> DropReason {
        self.drops.add(reason);
        let spi = h.and_then(|h| self.sad.get_mut(h)).map(|mut sa| {
            sa.counters.other_drops += 1;
            sa.spi
        });
        debug!(spi = ?spi.map(|s| format!("{s:#010x}")), %reason, "dropped outbound packet");
        reason
    }

    /// Inbound processing of one ESP packet. `src` is the packet's source address for the
    /// transport-mode selector check: for a Mobile IPv6 packet with a Home Address option,
    /// pass the home address (RFC 6275 §9.3.1 substitutes it before IPsec processing).
    /// `data` starts at the SPI (a raw protocol-50 socket's payload, or a UDP 4500 payload
    /// that [`crate::classify_udp_4500`] found to be ESP). `out` is overwritten with the
    /// decrypted packet.
    pub fn decapsulate<'a>(
        &mut self,
        now: Instant,
        src: IpAddr,
        data: &[u8],
        out: &'a mut Vec<u8>,
    ) -> EspAction<'a> {
        out.clear();
        let Some(spi) = wire::spi(data).filter(|_| data.len() >= ESP_HEADER_LEN) else {
            return self.drop_inbound(None, 0, DropReason::Truncated);
        };
        let Some(h) = self.sad.lookup_inbound(spi) else {
            return self.drop_inbound(None, spi, DropReason::NoSa);
        };
        let Some(mut sa) = self.sad.get_mut(h) else {
            return self.drop_inbound(None, spi, DropReason::NoSa);
        };
        let mut exp = Expiry::default();
        let r = sa.open(now, src, data, out, &mut exp);
        if exp.any() {
            push_events(&mut self.events, h, &sa, exp);
        }
        drop(sa);
        match r {
            Ok(Opened::Tunnel(len)) => {
                trace!(spi = %format_args!("{spi:#010x}"), len, "opened");
                EspAction::ToTun(&out[..len])
            }
            Ok(Opened::Transport { next_header, len }) => {
                trace!(spi = %format_args!("{spi:#010x}"), len, next_header, "opened");
                EspAction::Transport(TransportPayload {
                    spi,
                    next_header,
                    payload: &out[..len],
                })
            }
            Err(reason) => self.drop_inbound(Some(h), spi, reason),
        }
    }

    fn drop_inbound(
        &mut self,
        h: Option<SaHandle>,
        spi: u32,
        reason: DropReason,
    ) -> EspAction<'static> {
        self.drops.add(reason);
        if let Some(mut sa) = h.and_then(|h| self.sad.get_mut(h)) {
            let c = &mut sa.counters;
            match reason {
                DropReason::Replay => c.replay_drops += 1,
                DropReason::BadIcv => c.auth_failures += 1,
                DropReason::BadPadding => c.pad_errors += 1,
                _ => c.other_drops += 1,
            }
        }
        debug!(spi = %format_args!("{spi:#010x}"), %reason, "dropped inbound ESP packet");
        EspAction::Drop(reason)
    }

    /// Checks the time limits of the SAs that are due; raises their events (in the order of
    /// the SAs' slots). Visits only those SAs, through the SAD's deadline index.
    pub fn handle_timeout(&mut self, now: Instant) {
        let events = &mut self.events;
        self.sad.for_each_due(now, |h, sa| {
            let exp = sa.life.on_time(now);
            if exp.any() {
                push_events(events, h, sa, exp);
            }
        });
    }

    /// The next time a lifetime limit is due, if any. O(log n) in the number of SAs.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.sad.next_deadline()
    }

    /// The next pending event.
    pub fn poll_event(&mut self) -> Option<SaEvent> {
        self.events.pop_front()
    }

    /// A snapshot of all counters.
    pub fn stats(&self) -> Stats {
        Stats {
            sas: self.sad.infos(),
            drops: self.drops,
            bypassed: self.bypassed,
        }
    }

    /// Seals `plaintext` as is with the keys of inbound SA `spi` (tests and fuzzing).
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn seal_plaintext(
        &self,
        spi: u32,
        seq: u32,
        plaintext: &[u8],
        out: &mut Vec<u8>,
    ) -> bool {
        let Some(sa) = self.sad.lookup_inbound(spi).and_then(|h| self.sad.get(h)) else {
            return false;
        };
        out.clear();
        out.extend_from_slice(&spi.to_be_bytes());
        out.extend_from_slice(&seq.to_be_bytes());
        out.resize(ESP_HEADER_LEN + sa.transform.iv_len(), 0);
        out.extend_from_slice(plaintext);
        sa.crypto.seal(out, 0, seq).is_ok()
    }

    /// Drop counters only (no allocation).
    pub fn drops(&self) -> &DropCounters {
        &self.drops
    }
}

fn push_events(events: &mut VecDeque<SaEvent>, handle: SaHandle, sa: &Sa, exp: Expiry) {
    let (spi, direction) = (sa.spi, sa.direction);
    if exp.soft {
        debug!(spi = %format_args!("{spi:#010x}"), ?direction, "SA soft lifetime reached");
        events.push_back(SaEvent::SoftExpired {
            handle,
            spi,
            direction,
        });
    }
    if exp.hard {
        debug!(spi = %format_args!("{spi:#010x}"), ?direction, "SA hard lifetime reached");
        events.push_back(SaEvent::HardExpired {
            handle,
            spi,
            direction,
        });
    }
}

fn merge(a: Expiry, b: Expiry) -> Expiry {
    Expiry {
        soft: a.soft || b.soft,
        hard: a.hard || b.hard,
    }
}

impl Sa {
    /// RFC 4303 §3.3: builds the ESP packet for `inner` at the end of `out`.
    fn seal(
        &mut self,
        now: Instant,
        inner: &[u8],
        info: &PacketInfo,
        out: &mut Vec<u8>,
        exp: &mut Expiry,
    ) -> Result<Sealed, DropReason> {
        *exp = self.life.on_time(now);
        if self.life.is_hard_expired() {
            return Err(DropReason::SaExpired);
        }
        // RFC 4303 §3.3.3: without ESN the counter must not cycle.
        let Ok(seq) = u32::try_from(self.next_seq) else {
            *exp = merge(*exp, self.life.expire_now());
            return Err(DropReason::SaExpired);
        };
        let (ext, payload, next_header, src, dst) = match self.mode {
            Mode::Tunnel => (
                &[][..],
                &inner[..info.total_len],
                proto::IPV6,
                self.local,
                self.remote,
            ),
            Mode::Transport => {
                if info.fragment {
                    return Err(DropReason::Unsupported);
                }
                let (sport, dport) = if self.udp_encap {
                    (self.local.port(), self.remote.port())
                } else {
                    (0, 0)
                };
                (
                    &inner[IPV6_HEADER_LEN..info.esp_offset],
                    &inner[info.esp_offset..info.total_len],
                    inner[info.esp_nh_index],
                    SocketAddr::new(IpAddr::V6(info.src), sport),
                    SocketAddr::new(IpAddr::V6(info.dst), dport),
                )
            }
        };
        let t = self.transform;
        let start = out.len();
        out.reserve(ext.len() + t.max_overhead() + payload.len());
        out.extend_from_slice(ext);
        if !ext.is_empty() {
            // The last header in front of ESP now names ESP (or UDP).
            out[start + info.esp_nh_index - IPV6_HEADER_LEN] = if self.udp_encap {
                proto::UDP
            } else {
                proto::ESP
            };
        }
        let esp = out.len();
        out.extend_from_slice(&self.spi.to_be_bytes());
        out.extend_from_slice(&seq.to_be_bytes());
        out.resize(out.len() + t.iv_len(), 0);
        out.extend_from_slice(payload);
        push_trailer(out, pad_len(payload.len(), t.block_len()), next_header);
        self.crypto
            .seal(out, esp, seq)
            .map_err(|_| DropReason::Malformed)?;
        self.next_seq += 1;
        self.counters.packets += 1;
        self.counters.bytes += payload.len() as u64;
        *exp = merge(
            *exp,
            self.life
                .on_traffic(self.counters.bytes, self.counters.packets),
        );
        if seq == u32::MAX {
            *exp = merge(*exp, self.life.expire_now());
        } else if seq >= SEQ_SOFT_LIMIT && self.life.soft_now() {
            exp.soft = true;
        }
        Ok(Sealed {
            src,
            dst,
            ext_len: ext.len(),
        })
    }

    /// RFC 4303 §3.4: checks and decrypts `data` into `out`.
    fn open(
        &mut self,
        now: Instant,
        src: IpAddr,
        data: &[u8],
        out: &mut Vec<u8>,
        exp: &mut Expiry,
    ) -> Result<Opened, DropReason> {
        *exp = self.life.on_time(now);
        if self.life.is_hard_expired() {
            return Err(DropReason::SaExpired);
        }
        let t = self.transform;
        if data.len() < t.min_packet_len() {
            return Err(DropReason::Truncated);
        }
        let ct_len = data.len() - ESP_HEADER_LEN - t.iv_len() - t.icv_len();
        // CBC needs whole blocks; for GCM the 4-octet alignment is the sender's duty
        // (RFC 4303 §2.4) and is not enforced.
        if t.block_len() > 4 && !ct_len.is_multiple_of(t.block_len()) {
            return Err(DropReason::Malformed);
        }
        let seq = wire::seq(data).ok_or(DropReason::Truncated)?;
        // RFC 4303 §3.4.3: the window is checked before the ICV ...
        if let Some(w) = &self.replay {
            w.check(seq).map_err(|_| DropReason::Replay)?;
        }
        self.crypto
            .open(t, data, out, 0)
            .map_err(|_| DropReason::BadIcv)?;
        // ... and advanced only once the packet authenticated.
        if let Some(w) = &mut self.replay {
            w.mark(seq);
        }
        let (len, next_header) = strip_trailer(out).ok_or(DropReason::BadPadding)?;
        self.counters.packets += 1;
        self.counters.bytes += len as u64;
        *exp = merge(
            *exp,
            self.life
                .on_traffic(self.counters.bytes, self.counters.packets),
        );
        if next_header == proto::NO_NEXT_HEADER {
            return Err(DropReason::DummyPacket);
        }
        let payload = &out[..len];
        match self.mode {
            Mode::Tunnel => {
                if next_header != proto::IPV6 {
                    return Err(if next_header == 4 {
                        DropReason::Unsupported
                    } else {
                        DropReason::Malformed
                    });
                }
                let inner = PacketInfo::parse(payload).map_err(|_| DropReason::Malformed)?;
                // Inbound packets are checked against the reverse of the SA's selector.
                let sel = self.selector.reversed();
                if !sel.matches(&inner) {
                    debug!(
                        spi = %format_args!("{:#010x}", self.spi),
                        src = %inner.sel_src,
                        dst = %inner.sel_dst,
                        proto = inner.next_proto,
                        selector = %sel,
                        "inner packet outside the SA's selectors"
                    );
                    return Err(DropReason::PolicyMismatch);
                }
                // Anything after the inner packet's length is TFC padding (RFC 4303 §2.7).
                Ok(Opened::Tunnel(inner.total_len))
            }
            Mode::Transport => {
                let src = match src {
                    IpAddr::V6(a) => a,
                    IpAddr::V4(a) => a.to_ipv6_mapped(),
                };
                let (sport, dport, mh) = upper_layer_fields(next_header, payload);
                let sel = self.selector.reversed();
                if !sel.src.contains(src) || !sel.matches_upper(next_header, sport, dport, mh) {
                    return Err(DropReason::PolicyMismatch);
                }
                Ok(Opened::Transport { next_header, len })
            }
        }
    }
}
