//! The Security Association Database (RFC 4301 §4.4.2).
//!
//! Each SA is one direction of one ESP SA. Inbound SAs are found by SPI (RFC 4303 §2.1: for a
//! unicast SA the SPI alone selects it, the destination is ours); outbound SAs are found
//! through the SPD, whose `Protect` entries hold an [`SaHandle`]. Handles carry a generation,
//! so a handle to a removed SA never reaches a new SA that reused its slot.
//!
//! An SA holds what RFC 4301 §4.4.2.1 lists and this data plane uses: SPI, mode, transform and
//! keys (as expanded key schedules, see [`crate::transform`]), the outer endpoints (and
//! whether ESP goes in UDP, RFC 3948), the traffic selectors, the sequence number counter
//! (outbound) or anti-replay window (inbound), the lifetime and the counters.

use std::collections::HashMap;
use std::fmt;
use std::net::{Ipv6Addr, SocketAddr};
use std::time::Instant;

use zeroize::Zeroizing;

use crate::SaError;
use crate::lifetime::{Lifetime, LifetimeState};
use crate::replay::ReplayWindow;
use crate::spd::{Direction, Selector};
use crate::transform::{SaCrypto, Transform};

/// ESP mode (RFC 4303 §3.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    /// The whole inner IPv6 packet is the payload (next header 41).
    Tunnel,
    /// The upper-layer payload of the packet is protected; the IPv6 header stays outside.
    Transport,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Tunnel => "tunnel",
            Self::Transport => "transport",
        })
    }
}

/// Everything needed to install one SA (one direction). Mirrors what an IKEv1 Quick Mode
/// produces (`ikev1::ChildSa`); the daemons convert.
#[derive(Clone)]
pub struct SaParams {
    /// The SPI (for an inbound SA ours, for an outbound SA the peer's). Must not be 0.
    pub spi: u32,
    /// Which way the SA carries traffic.
    pub direction: Direction,
    /// Tunnel or transport.
    pub mode: Mode,
    /// Algorithms.
    pub transform: Transform,
    /// Encryption key material (GCM: key ‖ 4-octet salt, RFC 4106 §8.1).
    pub encr_key: Zeroizing<Vec<u8>>,
    /// Integrity key (empty for GCM).
    pub integ_key: Zeroizing<Vec<u8>>,
    /// Our outer endpoint (tunnel mode source; with UDP encapsulation, the port we send from).
    pub local: SocketAddr,
    /// The peer's outer endpoint (tunnel mode destination; with UDP encapsulation, its port).
    pub remote: SocketAddr,
    /// ESP in UDP (RFC 3948).
    pub udp_encap: bool,
    /// The traffic the SA may carry, written from our side (`src` = local selector, `dst` =
    /// remote selector), whatever the direction. Inbound packets are checked against its
    /// reverse.
    pub selector: Selector,
    /// Soft and hard limits.
    pub lifetime: Lifetime,
    /// Anti-replay for an inbound SA (RFC 4303 §3.4.3; on by default).
    pub anti_replay: bool,
}

impl fmt::Debug for SaParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SaParams")
            .field("spi", &format_args!("{:#010x}", self.spi))
            .field("direction", &self.direction)
            .field("mode", &self.mode)
            .field("transform", &self.transform)
            .field("encr_key", &format_args!("<{} bytes>", self.encr_key.len()))
            .field(
                "integ_key",
                &format_args!("<{} bytes>", self.integ_key.len()),
            )
            .field("local", &self.local)
            .field("remote", &self.remote)
            .field("udp_encap", &self.udp_encap)
            .field("selector", &self.selector)
            .field("lifetime", &self.lifetime)
            .field("anti_replay", &self.anti_replay)
            .finish()
    }
}

impl SaParams {
    /// An SA with no lifetime limits, raw ESP, anti-replay on, the selector "anything" and
    /// unspecified outer endpoints (`[::]:0`; set them with
    /// [`with_endpoints`](Self::with_endpoints) for tunnel mode or UDP encapsulation).
    pub fn new(
        spi: u32,
        direction: Direction,
        mode: Mode,
        transform: Transform,
        encr_key: &[u8],
        integ_key: &[u8],
    ) -> Self {
        let any = SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0));
        Self {
            spi,
            direction,
            mode,
            transform,
            encr_key: Zeroizing::new(encr_key.to_vec()),
            integ_key: Zeroizing::new(integ_key.to_vec()),
            local: any,
            remote: any,
            udp_encap: false,
            selector: Selector::ANY,
            lifetime: Lifetime::UNLIMITED,
            anti_replay: true,
        }
    }

    /// Sets the outer endpoints.
    #[must_use]
    pub fn with_endpoints(mut self, local: SocketAddr, remote: SocketAddr) -> Self {
        self.local = local;
        self.remote = remote;
        self
    }

    /// Sets UDP encapsulation (RFC 3948).
    #[must_use]
    pub fn with_udp_encap(mut self, udp_encap: bool) -> Self {
        self.udp_encap = udp_encap;
        self
    }

    /// Sets the selector (written from our side).
    #[must_use]
    pub fn with_selector(mut self, selector: Selector) -> Self {
        self.selector = selector;
        self
    }

    /// Sets the lifetime.
    #[must_use]
    pub fn with_lifetime(mut self, lifetime: Lifetime) -> Self {
        self.lifetime = lifetime;
        self
    }
}

/// Identifies an SA in the [`Sad`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SaHandle {
    index: u32,
    generation: u32,
}

/// Per-SA counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SaCounters {
    /// Packets sent or accepted.
    pub packets: u64,
    /// Payload bytes sent or accepted.
    pub bytes: u64,
    /// Inbound packets refused by the replay window.
    pub replay_drops: u64,
    /// Inbound packets whose ICV did not verify.
    pub auth_failures: u64,
    /// Inbound packets with bad padding.
    pub pad_errors: u64,
    /// Packets refused for any other reason after the SA was found (selectors, malformed
    /// inner packet, expired).
    pub other_drops: u64,
}

/// A snapshot of one SA, for status output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SaInfo {
    /// Handle.
    pub handle: SaHandle,
    /// SPI.
    pub spi: u32,
    /// Direction.
    pub direction: Direction,
    /// Mode.
    pub mode: Mode,
    /// Transform.
    pub transform: Transform,
    /// ESP in UDP.
    pub udp_encap: bool,
    /// Our outer endpoint.
    pub local: SocketAddr,
    /// The peer's outer endpoint.
    pub remote: SocketAddr,
    /// Selectors (from our side).
    pub selector: Selector,
    /// Outbound: the last sequence number sent; inbound: the highest accepted.
    pub seq: u32,
    /// Counters.
    pub counters: SaCounters,
    /// The soft lifetime has been reached.
    pub soft_expired: bool,
    /// The hard lifetime has been reached; the SA carries no more traffic.
    pub hard_expired: bool,
    /// When it was added.
    pub added: Instant,
    /// Its limits.
    pub lifetime: Lifetime,
}

/// One SA, with its keyed state.
pub(crate) struct Sa {
    pub(crate) spi: u32,
    pub(crate) direction: Direction,
    pub(crate) mode: Mode,
    pub(crate) transform: Transform,
    pub(crate) crypto: SaCrypto,
    pub(crate) local: SocketAddr,
    pub(crate) remote: SocketAddr,
    pub(crate) udp_encap: bool,
    pub(crate) selector: Selector,
    /// `selector.reversed()`, for inbound checks.
    pub(crate) inbound_selector: Selector,
    /// Outbound: the next sequence number to send (starts at 1; over `u32::MAX` means spent).
    pub(crate) next_seq: u64,
    /// Inbound with anti-replay.
    pub(crate) replay: Option<ReplayWindow>,
    pub(crate) life: LifetimeState,
    pub(crate) counters: SaCounters,
    pub(crate) added: Instant,
}

impl Sa {
    fn new(now: Instant, p: &SaParams) -> Result<Self, SaError> {
        if p.spi == 0 {
            return Err(SaError::InvalidSpi);
        }
        let crypto = SaCrypto::new(p.transform, &p.encr_key, &p.integ_key)?;
        Ok(Self {
            spi: p.spi,
            direction: p.direction,
            mode: p.mode,
            transform: p.transform,
            crypto,
            local: p.local,
            remote: p.remote,
            udp_encap: p.udp_encap,
            selector: p.selector,
            inbound_selector: p.selector.reversed(),
            next_seq: 1,
            replay: (p.direction == Direction::Inbound && p.anti_replay).then(ReplayWindow::new),
            life: LifetimeState::new(now, p.lifetime),
            counters: SaCounters::default(),
            added: now,
        })
    }

    fn info(&self, handle: SaHandle) -> SaInfo {
        let seq = match (&self.replay, self.direction) {
            (Some(r), _) => r.highest(),
            (None, Direction::Outbound) => u32::try_from(self.next_seq - 1).unwrap_or(u32::MAX),
            (None, Direction::Inbound) => 0,
        };
        SaInfo {
            handle,
            spi: self.spi,
            direction: self.direction,
            mode: self.mode,
            transform: self.transform,
            udp_encap: self.udp_encap,
            local: self.local,
            remote: self.remote,
            selector: self.selector,
            seq,
            counters: self.counters,
            soft_expired: self.life.is_soft_expired(),
            hard_expired: self.life.is_hard_expired(),
            added: self.added,
            lifetime: *self.life.limits(),
        }
    }
}

struct Slot {
    generation: u32,
    sa: Option<Sa>,
}

/// The SAD: SAs by handle, inbound SAs also by SPI.
#[derive(Default)]
pub struct Sad {
    slots: Vec<Slot>,
    free: Vec<u32>,
    inbound: HashMap<u32, u32>,
}

impl fmt::Debug for Sad {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sad").field("len", &self.len()).finish()
    }
}

impl Sad {
    /// An empty SAD.
    pub fn new() -> Self {
        Self::default()
    }

    pub(crate) fn insert(&mut self, now: Instant, p: &SaParams) -> Result<SaHandle, SaError> {
        if p.direction == Direction::Inbound && self.inbound.contains_key(&p.spi) {
            return Err(SaError::DuplicateSpi(p.spi));
        }
        let sa = Sa::new(now, p)?;
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                let i = u32::try_from(self.slots.len()).map_err(|_| SaError::Full)?;
                self.slots.push(Slot {
                    generation: 0,
                    sa: None,
                });
                i
            }
        };
        let slot = &mut self.slots[index as usize];
        slot.generation = slot.generation.wrapping_add(1);
        slot.sa = Some(sa);
        if p.direction == Direction::Inbound {
            self.inbound.insert(p.spi, index);
        }
        Ok(SaHandle {
            index,
            generation: slot.generation,
        })
    }

    /// Removes an SA. Returns whether it existed.
    pub(crate) fn remove(&mut self, h: SaHandle) -> Option<Sa> {
        let slot = self.slots.get_mut(h.index as usize)?;
        if slot.generation != h.generation {
            return None;
        }
        let sa = slot.sa.take()?;
        if sa.direction == Direction::Inbound {
            self.inbound.remove(&sa.spi);
        }
        self.free.push(h.index);
        Some(sa)
    }

    #[inline]
    pub(crate) fn get(&self, h: SaHandle) -> Option<&Sa> {
        let slot = self.slots.get(h.index as usize)?;
        (slot.generation == h.generation)
            .then_some(slot.sa.as_ref())
            .flatten()
    }

    #[inline]
    pub(crate) fn get_mut(&mut self, h: SaHandle) -> Option<&mut Sa> {
        let slot = self.slots.get_mut(h.index as usize)?;
        if slot.generation != h.generation {
            return None;
        }
        slot.sa.as_mut()
    }

    /// The inbound SA with this SPI.
    #[inline]
    pub fn lookup_inbound(&self, spi: u32) -> Option<SaHandle> {
        let &index = self.inbound.get(&spi)?;
        Some(SaHandle {
            index,
            generation: self.slots.get(index as usize)?.generation,
        })
    }

    /// The first outbound SA with this SPI (outbound SPIs are the peer's and need not be
    /// unique among ours).
    pub fn find_outbound(&self, spi: u32) -> Option<SaHandle> {
        self.iter()
            .find(|(_, sa)| sa.direction == Direction::Outbound && sa.spi == spi)
            .map(|(h, _)| h)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (SaHandle, &Sa)> {
        self.slots.iter().enumerate().filter_map(|(i, s)| {
            let sa = s.sa.as_ref()?;
            Some((
                SaHandle {
                    index: u32::try_from(i).ok()?,
                    generation: s.generation,
                },
                sa,
            ))
        })
    }

    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = (SaHandle, &mut Sa)> {
        self.slots.iter_mut().enumerate().filter_map(|(i, s)| {
            let generation = s.generation;
            let sa = s.sa.as_mut()?;
            Some((
                SaHandle {
                    index: u32::try_from(i).ok()?,
                    generation,
                },
                sa,
            ))
        })
    }

    /// A snapshot of one SA.
    pub fn info(&self, h: SaHandle) -> Option<SaInfo> {
        self.get(h).map(|sa| sa.info(h))
    }

    /// Snapshots of all SAs.
    pub fn infos(&self) -> Vec<SaInfo> {
        self.iter().map(|(h, sa)| sa.info(h)).collect()
    }

    /// Number of SAs.
    pub fn len(&self) -> usize {
        self.slots.iter().filter(|s| s.sa.is_some()).count()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
