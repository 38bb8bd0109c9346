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
//!
//! The SAD also keeps the SAs' time limits (RFC 4301 §4.4.2.1: soft and hard lifetime by
//! time) in a deadline index, an ordered set of `(deadline, handle)`, so that the next
//! deadline is found in O(log n) and a timeout visits only the SAs that are due, not every SA.
//! The index cannot fall out of step: the only mutable access to an SA is an [`SaMut`] guard,
//! which compares the SA's deadline with the indexed one when it is dropped and moves the entry
//! if it changed (a soft or hard limit fired, by time, traffic or sequence number, or the
//! lifetime was replaced); insert and remove add and delete the entry.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::net::{Ipv6Addr, SocketAddr};
use std::ops::{Deref, DerefMut};
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
    /// From our side; inbound packets are checked against `selector.reversed()`.
    pub(crate) selector: Selector,
    /// Outbound: the next sequence number to send (starts at 1; over `u32::MAX` means spent).
    pub(crate) next_seq: u64,
    /// Inbound with anti-replay. Boxed: 144 bytes that an outbound SA does not need.
    pub(crate) replay: Option<Box<ReplayWindow>>,
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
            next_seq: 1,
            replay: (p.direction == Direction::Inbound && p.anti_replay)
                .then(|| Box::new(ReplayWindow::new())),
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

/// A slot of the SAD. The SA is boxed, so that a free slot, and the spare capacity of the
/// slot vector, costs 32 bytes instead of the size of an SA.
struct Slot {
    generation: u32,
    sa: Option<Box<Sa>>,
    /// The deadline under which the SA is in [`Sad::deadlines`] (`None`: not in it). Always
    /// `sa.life.deadline()` outside an [`SaMut`].
    deadline: Option<Instant>,
}

/// The SAD: SAs by handle, inbound SAs also by SPI, and the deadline index.
#[derive(Default)]
pub struct Sad {
    slots: Vec<Slot>,
    free: Vec<u32>,
    inbound: HashMap<u32, u32>,
    /// `(deadline, handle)` for every SA with a pending time limit.
    deadlines: BTreeSet<(Instant, SaHandle)>,
    /// Scratch for [`Sad::for_each_due`], kept to reuse its allocation.
    due: Vec<SaHandle>,
}

/// Mutable access to one SA. On drop, moves the SA's entry in the deadline index if its
/// deadline changed, so no change to an SA can leave the index stale.
pub(crate) struct SaMut<'a> {
    handle: SaHandle,
    sa: &'a mut Sa,
    indexed: &'a mut Option<Instant>,
    deadlines: &'a mut BTreeSet<(Instant, SaHandle)>,
}

impl Deref for SaMut<'_> {
    type Target = Sa;

    #[inline]
    fn deref(&self) -> &Sa {
        self.sa
    }
}

impl DerefMut for SaMut<'_> {
    #[inline]
    fn deref_mut(&mut self) -> &mut Sa {
        self.sa
    }
}

impl Drop for SaMut<'_> {
    #[inline]
    fn drop(&mut self) {
        let deadline = self.sa.life.deadline();
        if deadline != *self.indexed {
            reindex(self.deadlines, self.handle, *self.indexed, deadline);
            *self.indexed = deadline;
        }
    }
}

/// Moves `h`'s entry in the deadline index from `old` to `new`.
fn reindex(
    deadlines: &mut BTreeSet<(Instant, SaHandle)>,
    h: SaHandle,
    old: Option<Instant>,
    new: Option<Instant>,
) {
    if let Some(t) = old {
        let removed = deadlines.remove(&(t, h));
        debug_assert!(removed, "deadline index out of step");
    }
    if let Some(t) = new {
        deadlines.insert((t, h));
    }
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
        let sa = Box::new(Sa::new(now, p)?);
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                let i = u32::try_from(self.slots.len()).map_err(|_| SaError::Full)?;
                self.slots.push(Slot {
                    generation: 0,
                    sa: None,
                    deadline: None,
                });
                i
            }
        };
        let slot = &mut self.slots[index as usize];
        slot.generation = slot.generation.wrapping_add(1);
        let h = SaHandle {
            index,
            generation: slot.generation,
        };
        slot.deadline = sa.life.deadline();
        reindex(&mut self.deadlines, h, None, slot.deadline);
        slot.sa = Some(sa);
        if p.direction == Direction::Inbound {
            self.inbound.insert(p.spi, index);
        }
        Ok(h)
    }

    /// Removes an SA. Returns whether it existed.
    pub(crate) fn remove(&mut self, h: SaHandle) -> Option<Box<Sa>> {
        let slot = self.slots.get_mut(h.index as usize)?;
        if slot.generation != h.generation {
            return None;
        }
        let sa = slot.sa.take()?;
        reindex(&mut self.deadlines, h, slot.deadline.take(), None);
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
            .then_some(slot.sa.as_deref())
            .flatten()
    }

    /// Mutable access to an SA; the deadline index follows when the guard is dropped.
    #[inline]
    pub(crate) fn get_mut(&mut self, h: SaHandle) -> Option<SaMut<'_>> {
        let Slot {
            generation,
            sa,
            deadline,
        } = self.slots.get_mut(h.index as usize)?;
        if *generation != h.generation {
            return None;
        }
        Some(SaMut {
            handle: h,
            sa: sa.as_deref_mut()?,
            indexed: deadline,
            deadlines: &mut self.deadlines,
        })
    }

    /// The earliest pending time limit of any SA (RFC 4301 §4.4.2.1), in O(log n).
    #[inline]
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.first().map(|&(t, _)| t)
    }

    /// Calls `f` for every SA whose deadline is at or before `now`, in slot order (the order in
    /// which a scan of the slots meets them), and for no other SA. Costs O(k log n) for k due
    /// SAs. `f` may change the SA; the index follows.
    pub(crate) fn for_each_due(&mut self, now: Instant, mut f: impl FnMut(SaHandle, &mut Sa)) {
        let mut due = std::mem::take(&mut self.due);
        due.clear();
        due.extend(
            self.deadlines
                .iter()
                .take_while(|&&(t, _)| t <= now)
                .map(|&(_, h)| h),
        );
        // Handles order by slot index first.
        due.sort_unstable();
        for &h in &due {
            if let Some(mut sa) = self.get_mut(h) {
                f(h, &mut sa);
            }
        }
        self.due = due;
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
    /// unique among ours). A scan of the slots, O(n): for status and tests, not for the data
    /// path (outbound packets reach their SA through the SPD's handle).
    pub fn find_outbound(&self, spi: u32) -> Option<SaHandle> {
        self.iter()
            .find(|(_, sa)| sa.direction == Direction::Outbound && sa.spi == spi)
            .map(|(h, _)| h)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (SaHandle, &Sa)> {
        self.slots.iter().enumerate().filter_map(|(i, s)| {
            let sa = s.sa.as_deref()?;
            Some((
                SaHandle {
                    index: u32::try_from(i).ok()?,
                    generation: s.generation,
                },
                sa,
            ))
        })
    }

    /// Checks that the deadline index holds exactly `(deadline, handle)` of every SA with a
    /// pending time limit (tests).
    #[cfg(test)]
    pub(crate) fn assert_index_consistent(&self) {
        let expected: BTreeSet<(Instant, SaHandle)> = self
            .iter()
            .filter_map(|(h, sa)| Some((sa.life.deadline()?, h)))
            .collect();
        assert_eq!(self.deadlines, expected, "deadline index out of step");
        for (i, slot) in self.slots.iter().enumerate() {
            let want = slot.sa.as_ref().and_then(|sa| sa.life.deadline());
            assert_eq!(slot.deadline, want, "slot {i}");
        }
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

#[cfg(test)]
mod tests {
    use std::mem::size_of;

    use super::*;

    /// What one SA costs inline (64-bit targets): a slot is 32 bytes whether used or spare
    /// capacity, the SA behind it under 400, its key schedules on the heap at their own size.
    /// (Before: the SA, key schedules and replay window inline, 1216 bytes per slot.)
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn memory_per_sa() {
        assert_eq!(size_of::<Slot>(), 32);
        assert!(size_of::<Sa>() <= 400, "Sa is {} bytes", size_of::<Sa>());
        assert!(size_of::<SaCrypto>() <= 40);
        assert_eq!(size_of::<Option<Box<ReplayWindow>>>(), 8);

        let now = Instant::now();
        let t = Transform::AesCbcHmacSha1_96 { key_bits: 128 };
        let mut sad = Sad::new();
        let out = SaParams::new(7, Direction::Outbound, Mode::Tunnel, t, &[1; 16], &[2; 20]);
        let h = sad.insert(now, &out).unwrap();
        assert!(sad.get(h).unwrap().replay.is_none());
        let inb = SaParams {
            direction: Direction::Inbound,
            ..out
        };
        let h = sad.insert(now, &inb).unwrap();
        assert!(sad.get(h).unwrap().replay.is_some());
    }
}
