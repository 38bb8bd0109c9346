//! The Security Policy Database (RFC 4301 §4.4.1): an ordered list of policies, each a
//! selector and an action, searched first match wins.
//!
//! Selectors are the RFC 4301 §4.4.1.1 fields this project needs: source and destination
//! address prefixes, the next-layer protocol, source and destination ports, and the Mobility
//! Header type (RFC 4301 §4.4.1.1 "ICMP type/code, Mobility Header type"). `None` means ANY.
//! Ranges other than prefixes, OPAQUE values and name selectors are not supported. The SPD is
//! ordered by the caller (RFC 4301 §4.4.1: "the SPD is ordered"); [`Spd::sort_by_specificity`]
//! puts the most specific entries first for callers that have no order of their own.
//!
//! A lookup answers what a scan of the ordered list would (the first matching entry, RFC 4301
//! §4.4.1), without scanning it: entries whose selector names one address (a home agent's
//! per-node policies, `/128` on the mobile node's side) are found through a hash index by that
//! address, the rest through a short list; see [`Spd`].
//!
//! Only IPv6 is handled: the data plane carries IPv6 inside IPv6.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::net::Ipv6Addr;

use crate::packet::{PacketInfo, proto};
use crate::sad::SaHandle;

/// An IPv6 address prefix. Host bits are always zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Prefix {
    addr: Ipv6Addr,
    len: u8,
}

impl Prefix {
    /// `::/0`, every address.
    pub const ANY: Self = Self {
        addr: Ipv6Addr::UNSPECIFIED,
        len: 0,
    };

    /// A prefix; host bits are cleared and `len` is capped at 128.
    pub fn new(addr: Ipv6Addr, len: u8) -> Self {
        let len = len.min(128);
        Self {
            addr: Ipv6Addr::from(u128::from(addr) & mask(len)),
            len,
        }
    }

    /// A single address (`/128`).
    pub fn host(addr: Ipv6Addr) -> Self {
        Self { addr, len: 128 }
    }

    /// The network address.
    pub fn addr(&self) -> Ipv6Addr {
        self.addr
    }

    /// The prefix length.
    pub fn prefix_len(&self) -> u8 {
        self.len
    }

    /// Whether this is `::/0`.
    pub fn is_any(&self) -> bool {
        self.len == 0
    }

    /// Whether `a` lies in the prefix.
    #[inline]
    pub fn contains(&self, a: Ipv6Addr) -> bool {
        u128::from(a) & mask(self.len) == u128::from(self.addr)
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

#[inline]
fn mask(len: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0)
}

/// Traffic selectors of one policy or SA, written in the outbound direction: `src` is our side.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Selector {
    /// Source prefix (for outbound traffic: our side).
    pub src: Prefix,
    /// Destination prefix (for outbound traffic: the peer's side).
    pub dst: Prefix,
    /// Next-layer protocol, or any.
    pub next_proto: Option<u8>,
    /// Source port, or any. Only TCP, UDP, SCTP, DCCP and UDP-Lite carry ports.
    pub src_port: Option<u16>,
    /// Destination port, or any.
    pub dst_port: Option<u16>,
    /// Mobility Header type (protocol 135 only), or any.
    pub mh_type: Option<u8>,
}

impl Selector {
    /// Everything.
    pub const ANY: Self = Self {
        src: Prefix::ANY,
        dst: Prefix::ANY,
        next_proto: None,
        src_port: None,
        dst_port: None,
        mh_type: None,
    };

    /// Any traffic from `src` to `dst`.
    pub fn between(src: Prefix, dst: Prefix) -> Self {
        Self {
            src,
            dst,
            ..Self::ANY
        }
    }

    /// The same selector for the opposite direction (addresses and ports swapped).
    pub fn reversed(&self) -> Self {
        Self {
            src: self.dst,
            dst: self.src,
            src_port: self.dst_port,
            dst_port: self.src_port,
            ..*self
        }
    }

    /// Whether a packet matches, using its policy addresses (`sel_src`, `sel_dst`; see
    /// [`PacketInfo`]).
    #[inline]
    pub fn matches(&self, p: &PacketInfo) -> bool {
        self.src.contains(p.sel_src)
            && self.dst.contains(p.sel_dst)
            && self.matches_upper(p.next_proto, p.src_port, p.dst_port, p.mh_type)
    }

    /// Whether the protocol, port and MH type parts match.
    #[inline]
    pub fn matches_upper(
        &self,
        next_proto: u8,
        src_port: Option<u16>,
        dst_port: Option<u16>,
        mh_type: Option<u8>,
    ) -> bool {
        self.next_proto.is_none_or(|n| n == next_proto)
            && self.src_port.is_none_or(|s| src_port == Some(s))
            && self.dst_port.is_none_or(|d| dst_port == Some(d))
            && self
                .mh_type
                .is_none_or(|m| next_proto == proto::MOBILITY && mh_type == Some(m))
    }

    /// A sort key: larger is more specific. Prefix lengths count first, then the protocol,
    /// then ports and MH type (the order strongSwan uses for its policy priorities).
    pub fn specificity(&self) -> (u16, u8, u8) {
        let addr = u16::from(self.src.len) + u16::from(self.dst.len);
        let upper = u8::from(self.src_port.is_some())
            + u8::from(self.dst_port.is_some())
            + u8::from(self.mh_type.is_some());
        (addr, u8::from(self.next_proto.is_some()), upper)
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} -> {}", self.src, self.dst)?;
        if let Some(p) = self.next_proto {
            write!(f, " proto {p}")?;
        }
        if let Some(p) = self.src_port {
            write!(f, " sport {p}")?;
        }
        if let Some(p) = self.dst_port {
            write!(f, " dport {p}")?;
        }
        if let Some(m) = self.mh_type {
            write!(f, " mh {m}")?;
        }
        Ok(())
    }
}

/// Direction of a policy or SA.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Traffic we receive.
    Inbound,
    /// Traffic we send.
    Outbound,
}

/// What to do with matching traffic (RFC 4301 §4.4.1: PROTECT, BYPASS, DISCARD).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PolicyAction {
    /// Send through this SA.
    Protect(SaHandle),
    /// Send in the clear.
    Bypass,
    /// Drop.
    Discard,
}

/// Identifies an SPD entry for removal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PolicyId(u64);

/// One SPD entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpdEntry {
    /// Which traffic.
    pub selector: Selector,
    /// Which direction the entry applies to.
    pub direction: Direction,
    /// What to do.
    pub action: PolicyAction,
}

/// Where entries' positions come from: an order key per entry, dense enough that inserting
/// at the front or the back never moves another entry's key.
const GAP: u64 = 1 << 32;

/// The entries of one index bucket as `(order key, slot)`, ascending by order key.
type Run = Vec<(u64, u32)>;

/// One stored entry.
#[derive(Clone, Debug)]
struct Node {
    id: PolicyId,
    /// Position in the SPD order: smaller comes first. Stable while other entries come and go.
    order: u64,
    entry: SpdEntry,
}

/// Where an entry is indexed (see [`Spd`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Place {
    /// `hosts[map]`, under this address: `map` is [`host_map`] of the direction and side.
    Host(usize, Ipv6Addr),
    /// `rest[i]`, `i` the direction's index.
    Rest(usize),
}

fn dir_index(d: Direction) -> usize {
    match d {
        Direction::Inbound => 0,
        Direction::Outbound => 1,
    }
}

/// Index of the host map of a direction and selector side (destination: `false`).
fn host_map(d: Direction, src_side: bool) -> usize {
    dir_index(d) * 2 + usize::from(src_side)
}

impl Place {
    /// A selector whose destination is one address is found by the packet's destination;
    /// otherwise one whose source is one address by the packet's source; otherwise it is in
    /// the list scanned for every packet.
    fn of(e: &SpdEntry) -> Self {
        let sel = &e.selector;
        if sel.dst.len == 128 {
            Self::Host(host_map(e.direction, false), sel.dst.addr)
        } else if sel.src.len == 128 {
            Self::Host(host_map(e.direction, true), sel.src.addr)
        } else {
            Self::Rest(dir_index(e.direction))
        }
    }
}

/// The SPD: entries searched in order, first match wins (RFC 4301 §4.4.1).
///
/// The order is kept as an order key per entry (a `u64`; inserting between two entries takes
/// a key between theirs, and only when two neighbours' keys are adjacent are all keys
/// renumbered), so that an entry's position never has to be updated when another entry comes
/// or goes. Lookups do not scan the whole list; every entry is in exactly one of:
/// * a hash index by its destination address, if its destination selector is one address
///   (`/128`: a home address, as in the home agent's per-node policies);
/// * otherwise a hash index by its source address, if its source selector is one address;
/// * otherwise the list of remaining entries of its direction (catch-alls, prefixes).
///
/// Each holds its entries in SPD order. A packet can only match entries of the bucket of its
/// destination address, the bucket of its source address and the remaining list, so the first
/// match in SPD order is the earliest of the first matches in those three, which is what
/// [`lookup`](Self::lookup) returns: the same entry a scan of the whole ordered list finds.
/// Each of the three is scanned only up to the best match found so far.
///
/// Cost, with n entries: [`lookup`](Self::lookup) is two hash lookups plus a scan of the
/// entries with the packet's addresses and of the remaining list; [`push`](Self::push),
/// [`insert`](Self::insert) at 0 and [`remove`](Self::remove) are O(log n) (plus the size of
/// the entry's bucket); [`insert`](Self::insert) at another position walks to it, O(index);
/// [`remove_for_sa`](Self::remove_for_sa) and [`retarget`](Self::retarget) are O(k log n) for
/// the k entries of the SA (an index by SA handle); [`sort_by_specificity`](Self::sort_by_specificity)
/// is O(n log n).
#[derive(Default, Clone)]
pub struct Spd {
    /// Entries by slot; `None` is a free slot (in `free`).
    slots: Vec<Option<Node>>,
    free: Vec<u32>,
    /// Order key → slot: the SPD order.
    order: BTreeMap<u64, u32>,
    by_id: HashMap<PolicyId, u32>,
    /// Entries whose selector has a single address on one side, by that address; indexed by
    /// [`host_map`].
    hosts: [HashMap<Ipv6Addr, Run>; 4],
    /// The other entries, by direction ([`dir_index`]).
    rest: [Run; 2],
    /// `(sa, slot)` for every PROTECT entry.
    by_sa: BTreeSet<(SaHandle, u32)>,
    next_id: u64,
}

impl fmt::Debug for Spd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.entries()).finish()
    }
}

impl Spd {
    /// An empty SPD (everything outbound is dropped with `NoPolicy`).
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends an entry (lowest priority so far).
    pub fn push(&mut self, entry: SpdEntry) -> PolicyId {
        self.insert(usize::MAX, entry)
    }

    /// Inserts an entry at `index` (0 = highest priority; clamped to the end).
    pub fn insert(&mut self, index: usize, entry: SpdEntry) -> PolicyId {
        let index = index.min(self.len());
        let order = match self.free_key(index) {
            Some(k) => k,
            None => self.renumber(None, Some(index)),
        };
        self.next_id += 1;
        let id = PolicyId(self.next_id);
        let node = Node { id, order, entry };
        let slot = match self.free.pop() {
            Some(s) => {
                self.slots[s as usize] = Some(node);
                s
            }
            None => {
                // More than 2^32 entries cannot be stored anyway.
                let s = u32::try_from(self.slots.len()).unwrap_or(u32::MAX);
                self.slots.push(Some(node));
                s
            }
        };
        self.order.insert(order, slot);
        self.by_id.insert(id, slot);
        let run = self.run_mut(Place::of(&entry));
        let at = run.partition_point(|&(o, _)| o < order);
        run.insert(at, (order, slot));
        if let PolicyAction::Protect(sa) = entry.action {
            self.by_sa.insert((sa, slot));
        }
        id
    }

    /// An order key for a new entry at position `index` (`<= len`), between the keys of its
    /// neighbours, or `None` if they are adjacent. Keys are never 0 or `u64::MAX`.
    fn free_key(&self, index: usize) -> Option<u64> {
        let (prev, next) = if index == 0 {
            (None, self.order.keys().next().copied())
        } else if index == self.order.len() {
            (self.order.keys().next_back().copied(), None)
        } else {
            let mut keys = self.order.keys().skip(index - 1).copied();
            (keys.next(), keys.next())
        };
        let (lo, hi) = (prev.unwrap_or(0), next.unwrap_or(u64::MAX));
        let room = hi.checked_sub(lo)?;
        if room < 2 {
            return None;
        }
        Some(match (prev, next) {
            // Leave room on both sides for further pushes and inserts at the front.
            (Some(p), None) => p + GAP.min(room / 2),
            (None, Some(n)) => n - GAP.min(room / 2),
            _ => lo + room / 2,
        })
    }

    /// Gives every entry a new order key, evenly spaced, following `new_order` (slots; `None`:
    /// the current order), leaving a hole at position `hole` whose key is returned (0 if
    /// none). Rebuilds the order map and re-sorts the index runs.
    fn renumber(&mut self, new_order: Option<Vec<u32>>, hole: Option<usize>) -> u64 {
        let slots = new_order.unwrap_or_else(|| self.order.values().copied().collect());
        let m = slots.len() as u64 + u64::from(hole.is_some());
        let gap = GAP.min(u64::MAX / (m + 2));
        let start = u64::MAX / 2 - (m / 2) * gap;
        let mut hole_key = 0;
        self.order.clear();
        let mut key = start;
        for (i, &s) in slots.iter().enumerate() {
            if hole == Some(i) {
                hole_key = key;
                key += gap;
            }
            if let Some(n) = self.slots.get_mut(s as usize).and_then(Option::as_mut) {
                n.order = key;
                self.order.insert(key, s);
                key += gap;
            }
        }
        if hole.is_some_and(|h| h >= slots.len()) {
            hole_key = key;
        }
        let nodes = &self.slots;
        let runs = self.hosts.iter_mut().flat_map(|m| m.values_mut());
        for run in runs.chain(self.rest.iter_mut()) {
            for (o, s) in run.iter_mut() {
                *o = nodes[*s as usize].as_ref().map_or(0, |n| n.order);
            }
            run.sort_unstable();
        }
        hole_key
    }

    fn run_mut(&mut self, place: Place) -> &mut Run {
        match place {
            Place::Host(m, a) => self.hosts[m].entry(a).or_default(),
            Place::Rest(d) => &mut self.rest[d],
        }
    }

    /// Removes the entry in `slot` from every structure.
    fn remove_slot(&mut self, slot: u32) -> Option<SpdEntry> {
        let node = self.slots.get_mut(slot as usize)?.take()?;
        self.free.push(slot);
        self.order.remove(&node.order);
        self.by_id.remove(&node.id);
        if let PolicyAction::Protect(sa) = node.entry.action {
            self.by_sa.remove(&(sa, slot));
        }
        let key = (node.order, slot);
        match Place::of(&node.entry) {
            Place::Host(m, a) => {
                if let Some(run) = self.hosts[m].get_mut(&a) {
                    if let Ok(i) = run.binary_search(&key) {
                        run.remove(i);
                    }
                    if run.is_empty() {
                        self.hosts[m].remove(&a);
                    }
                }
            }
            Place::Rest(d) => {
                let run = &mut self.rest[d];
                if let Ok(i) = run.binary_search(&key) {
                    run.remove(i);
                }
            }
        }
        Some(node.entry)
    }

    /// The slots of the entries that protect with `sa`.
    fn slots_of(&self, sa: SaHandle) -> Vec<u32> {
        self.by_sa
            .range((sa, 0)..=(sa, u32::MAX))
            .map(|&(_, s)| s)
            .collect()
    }

    /// Removes an entry; returns it if it existed.
    pub fn remove(&mut self, id: PolicyId) -> Option<SpdEntry> {
        let &slot = self.by_id.get(&id)?;
        self.remove_slot(slot)
    }

    /// Removes every entry that protects with `sa`; returns how many.
    pub fn remove_for_sa(&mut self, sa: SaHandle) -> usize {
        let slots = self.slots_of(sa);
        for &s in &slots {
            self.remove_slot(s);
        }
        slots.len()
    }

    /// Points every entry that protects with `old` at `new` (rekeying); returns how many.
    pub fn retarget(&mut self, old: SaHandle, new: SaHandle) -> usize {
        let slots = self.slots_of(old);
        for &s in &slots {
            if let Some(n) = self.slots.get_mut(s as usize).and_then(Option::as_mut) {
                n.entry.action = PolicyAction::Protect(new);
                self.by_sa.remove(&(old, s));
                self.by_sa.insert((new, s));
            }
        }
        slots.len()
    }

    /// Stable sort, most specific selector first ([`Selector::specificity`]); entries of equal
    /// specificity keep their order.
    pub fn sort_by_specificity(&mut self) {
        let mut order: Vec<u32> = self.order.values().copied().collect();
        let specificity = |s: &u32| {
            let n = self.slots.get(*s as usize).and_then(Option::as_ref);
            std::cmp::Reverse(n.map(|n| n.entry.selector.specificity()))
        };
        order.sort_by_cached_key(specificity);
        self.renumber(Some(order), None);
    }

    /// The first entry of `direction` that matches `packet`.
    #[inline]
    pub fn lookup(&self, direction: Direction, packet: &PacketInfo) -> Option<&SpdEntry> {
        let dst = self.hosts[host_map(direction, false)].get(&packet.sel_dst);
        let src = self.hosts[host_map(direction, true)].get(&packet.sel_src);
        let rest = Some(&self.rest[dir_index(direction)]);
        let mut best: Option<(u64, &SpdEntry)> = None;
        for run in [dst, src, rest].into_iter().flatten() {
            for &(order, slot) in run {
                if best.is_some_and(|(b, _)| order > b) {
                    break;
                }
                let Some(n) = self.slots.get(slot as usize).and_then(Option::as_ref) else {
                    continue;
                };
                if n.entry.selector.matches(packet) {
                    best = Some((order, &n.entry));
                    break;
                }
            }
        }
        best.map(|(_, e)| e)
    }

    /// The entries in order.
    pub fn entries(&self) -> impl Iterator<Item = (PolicyId, &SpdEntry)> {
        self.order.values().filter_map(|&s| {
            let n = self.slots.get(s as usize)?.as_ref()?;
            Some((n.id, &n.entry))
        })
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// Checks every index against the entries (tests).
    #[cfg(test)]
    pub(crate) fn assert_consistent(&self) {
        let live: Vec<u32> = (0..self.slots.len() as u32)
            .filter(|&s| self.slots[s as usize].is_some())
            .collect();
        assert_eq!(live.len(), self.order.len());
        assert_eq!(live.len(), self.by_id.len());
        assert_eq!(live.len() + self.free.len(), self.slots.len());
        let mut runs: HashMap<u32, usize> = HashMap::new();
        let all = self.hosts.iter().flat_map(|m| m.values());
        for run in all.chain(self.rest.iter()) {
            assert!(run.windows(2).all(|w| w[0] < w[1]), "run out of order");
            for &(o, s) in run {
                assert_eq!(self.slots[s as usize].as_ref().unwrap().order, o);
                *runs.entry(s).or_default() += 1;
            }
        }
        assert!(
            self.hosts
                .iter()
                .flat_map(|m| m.values())
                .all(|r| !r.is_empty())
        );
        let mut by_sa = BTreeSet::new();
        for &s in &live {
            let n = self.slots[s as usize].as_ref().unwrap();
            assert_eq!(self.order.get(&n.order), Some(&s));
            assert_eq!(self.by_id.get(&n.id), Some(&s));
            assert_eq!(runs.get(&s), Some(&1), "slot {s} not in exactly one run");
            let run = match Place::of(&n.entry) {
                Place::Host(m, a) => &self.hosts[m][&a],
                Place::Rest(d) => &self.rest[d],
            };
            assert!(run.contains(&(n.order, s)));
            if let PolicyAction::Protect(sa) = n.entry.action {
                by_sa.insert((sa, s));
            }
        }
        assert_eq!(runs.len(), live.len());
        assert_eq!(by_sa, self.by_sa);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    fn info(
        src: &str,
        dst: &str,
        next_proto: u8,
        ports: Option<(u16, u16)>,
        mh: Option<u8>,
    ) -> PacketInfo {
        PacketInfo {
            src: a(src),
            dst: a(dst),
            sel_src: a(src),
            sel_dst: a(dst),
            next_proto,
            src_port: ports.map(|p| p.0),
            dst_port: ports.map(|p| p.1),
            mh_type: mh,
            hop_limit: 64,
            total_len: 40,
            upper_offset: 40,
            esp_offset: 40,
            esp_nh_index: 6,
            fragment: false,
        }
    }

    #[test]
    fn prefix() {
        let p = Prefix::new(a("2001:db8:1::77"), 64);
        assert_eq!(p.addr(), a("2001:db8:1::"));
        assert!(p.contains(a("2001:db8:1::1")));
        assert!(!p.contains(a("2001:db8:2::1")));
        assert!(Prefix::ANY.contains(a("::1")));
        assert!(Prefix::host(a("::1")).contains(a("::1")));
        assert!(!Prefix::host(a("::1")).contains(a("::2")));
        assert_eq!(Prefix::new(a("::1"), 200).prefix_len(), 128);
        assert_eq!(p.to_string(), "2001:db8:1::/64");
    }

    #[test]
    fn selector_fields() {
        let s = Selector {
            src: Prefix::host(a("fe80::1")),
            dst: Prefix::ANY,
            next_proto: Some(proto::UDP),
            src_port: Some(546),
            dst_port: Some(547),
            mh_type: None,
        };
        assert!(s.matches(&info(
            "fe80::1",
            "ff02::1:2",
            proto::UDP,
            Some((546, 547)),
            None
        )));
        assert!(!s.matches(&info(
            "fe80::2",
            "ff02::1:2",
            proto::UDP,
            Some((546, 547)),
            None
        )));
        assert!(!s.matches(&info(
            "fe80::1",
            "ff02::1:2",
            proto::UDP,
            Some((547, 546)),
            None
        )));
        assert!(!s.matches(&info(
            "fe80::1",
            "ff02::1:2",
            proto::TCP,
            Some((546, 547)),
            None
        )));
        assert!(!s.matches(&info("fe80::1", "ff02::1:2", proto::UDP, None, None)));
        let r = s.reversed();
        assert!(r.matches(&info(
            "ff02::1:2",
            "fe80::1",
            proto::UDP,
            Some((547, 546)),
            None
        )));

        let bu = Selector {
            next_proto: Some(proto::MOBILITY),
            mh_type: Some(5),
            ..Selector::ANY
        };
        assert!(bu.matches(&info("::1", "::2", proto::MOBILITY, None, Some(5))));
        assert!(!bu.matches(&info("::1", "::2", proto::MOBILITY, None, Some(6))));
        let mh_any_proto = Selector {
            mh_type: Some(5),
            ..Selector::ANY
        };
        assert!(!mh_any_proto.matches(&info("::1", "::2", proto::UDP, None, Some(5))));
    }

    #[test]
    fn first_match_and_sort() {
        let mut spd = Spd::new();
        let any = spd.push(SpdEntry {
            selector: Selector::ANY,
            direction: Direction::Outbound,
            action: PolicyAction::Bypass,
        });
        let mh = spd.push(SpdEntry {
            selector: Selector {
                src: Prefix::host(a("2001:db8:1::1000")),
                dst: Prefix::host(a("2001:db8:ff::1")),
                next_proto: Some(proto::MOBILITY),
                ..Selector::ANY
            },
            direction: Direction::Outbound,
            action: PolicyAction::Discard,
        });
        let p = info(
            "2001:db8:1::1000",
            "2001:db8:ff::1",
            proto::MOBILITY,
            None,
            Some(5),
        );
        assert_eq!(
            spd.lookup(Direction::Outbound, &p).unwrap().action,
            PolicyAction::Bypass
        );
        assert!(spd.lookup(Direction::Inbound, &p).is_none());
        spd.sort_by_specificity();
        assert_eq!(
            spd.lookup(Direction::Outbound, &p).unwrap().action,
            PolicyAction::Discard
        );
        assert_eq!(
            spd.entries().map(|e| e.0).collect::<Vec<_>>(),
            vec![mh, any]
        );
        assert!(spd.remove(mh).is_some());
        assert!(spd.remove(mh).is_none());
        assert_eq!(spd.len(), 1);
    }
}

/// The indexed SPD against the definition: a list searched in order.
#[cfg(test)]
mod model_tests {
    use std::net::Ipv6Addr;
    use std::time::Instant;

    use super::*;
    use crate::{Esp, Mode, SaParams, Transform};

    /// The SPD as it was specified: a `Vec` in order, first match wins.
    #[derive(Default)]
    struct Model {
        entries: Vec<(PolicyId, SpdEntry)>,
    }

    impl Model {
        fn lookup(&self, d: Direction, p: &PacketInfo) -> Option<&SpdEntry> {
            self.entries
                .iter()
                .map(|(_, e)| e)
                .find(|e| e.direction == d && e.selector.matches(p))
        }
    }

    /// xorshift64: deterministic, seeded.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }

        fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
            xs[self.below(xs.len())]
        }

        fn chance(&mut self, percent: usize) -> bool {
            self.below(100) < percent
        }
    }

    const POOL: [&str; 9] = [
        "2001:db8:1::1",
        "2001:db8:1::2",
        "2001:db8:1::3",
        "2001:db8:1:0:8000::1",
        "2001:db8:2::1",
        "2001:db8:ff::1",
        "fe80::1",
        "fe80::2",
        "ff02::1:2",
    ];

    fn addr(r: &mut Rng) -> Ipv6Addr {
        r.pick(&POOL).parse().unwrap()
    }

    fn prefix(r: &mut Rng) -> Prefix {
        match r.below(20) {
            0..=5 => Prefix::ANY,
            6..=14 => Prefix::host(addr(r)),
            15..=17 => Prefix::new(addr(r), 64),
            _ => Prefix::new(addr(r), r.pick(&[1, 16, 65, 127])),
        }
    }

    fn opt<T: Copy>(r: &mut Rng, percent: usize, xs: &[T]) -> Option<T> {
        r.chance(percent).then(|| r.pick(xs))
    }

    fn entry(r: &mut Rng, sas: &[SaHandle]) -> SpdEntry {
        let selector = Selector {
            src: prefix(r),
            dst: prefix(r),
            next_proto: opt(r, 50, &[proto::UDP, proto::TCP, proto::MOBILITY, 58]),
            src_port: opt(r, 25, &[500, 546, 547]),
            dst_port: opt(r, 25, &[500, 546, 547]),
            mh_type: opt(r, 15, &[5, 6]),
        };
        SpdEntry {
            selector,
            direction: r.pick(&[Direction::Inbound, Direction::Outbound]),
            action: match r.below(4) {
                0 => PolicyAction::Bypass,
                1 => PolicyAction::Discard,
                _ => PolicyAction::Protect(r.pick(sas)),
            },
        }
    }

    fn packet(r: &mut Rng) -> PacketInfo {
        let mut a = || {
            if r.chance(10) {
                Ipv6Addr::from(r.next() as u128 | (0x2001_0db8_0001 << 80))
            } else {
                addr(r)
            }
        };
        let (src, dst) = (a(), a());
        let next_proto = r.pick(&[proto::UDP, proto::TCP, proto::MOBILITY, 58, 41]);
        let ports = matches!(next_proto, proto::UDP | proto::TCP);
        let mut port = || ports.then(|| r.pick(&[500, 546, 547, 1234]));
        let (src_port, dst_port) = (port(), port());
        PacketInfo {
            src,
            dst,
            sel_src: src,
            sel_dst: dst,
            next_proto,
            src_port,
            dst_port,
            mh_type: (next_proto == proto::MOBILITY)
                .then(|| opt(r, 80, &[5, 6]))
                .flatten(),
            hop_limit: 64,
            total_len: 40,
            upper_offset: 40,
            esp_offset: 40,
            esp_nh_index: 6,
            fragment: false,
        }
    }

    fn handles(n: u32) -> Vec<SaHandle> {
        let mut esp = Esp::new();
        let t = Transform::AesGcm16 { key_bits: 128 };
        (0..n)
            .map(|i| {
                let p = SaParams::new(
                    0x100 + i,
                    Direction::Outbound,
                    Mode::Tunnel,
                    t,
                    &[7; 20],
                    &[],
                );
                esp.add_sa(Instant::now(), &p).unwrap()
            })
            .collect()
    }

    fn check_same(spd: &Spd, model: &Model, r: &mut Rng, lookups: usize) {
        assert_eq!(spd.len(), model.entries.len());
        for _ in 0..lookups {
            let p = packet(r);
            for d in [Direction::Outbound, Direction::Inbound] {
                let got = spd.lookup(d, &p);
                let want = model.lookup(d, &p);
                assert_eq!(got, want, "{d:?} {p:?}");
                // The same entry, not just an equal one: compare identities through the order.
                if let Some(w) = want {
                    assert!(std::ptr::eq(
                        got.unwrap(),
                        spd.entries()
                            .map(|(_, e)| e)
                            .find(|e| e.direction == d && e.selector.matches(&p))
                            .unwrap()
                    ));
                    assert_eq!(got.unwrap(), w);
                }
            }
        }
    }

    fn run(seed: u64, steps: usize) {
        let sas = handles(5);
        let mut r = Rng(seed);
        let mut spd = Spd::new();
        let mut model = Model::default();
        let mut gone: Vec<PolicyId> = Vec::new();
        for step in 0..steps {
            // Keep the size moving between empty and a few hundred entries.
            let grow = model.entries.len() < 40 || (model.entries.len() < 300 && r.chance(60));
            match r.below(100) {
                0..=59 if grow => {
                    let e = entry(&mut r, &sas);
                    let (id, at) = match r.below(3) {
                        0 => (spd.push(e), model.entries.len()),
                        1 => (spd.insert(0, e), 0),
                        _ => {
                            let i = r.below(model.entries.len() + 3);
                            (spd.insert(i, e), i.min(model.entries.len()))
                        }
                    };
                    model.entries.insert(at, (id, e));
                }
                0..=59 => {
                    let id = if !gone.is_empty() && r.chance(10) {
                        r.pick(&gone)
                    } else {
                        model.entries[r.below(model.entries.len())].0
                    };
                    let want = model
                        .entries
                        .iter()
                        .position(|(i, _)| *i == id)
                        .map(|i| model.entries.remove(i).1);
                    assert_eq!(spd.remove(id), want);
                    gone.push(id);
                }
                60..=69 => {
                    let sa = r.pick(&sas);
                    let before = model.entries.len();
                    model
                        .entries
                        .retain(|(_, e)| e.action != PolicyAction::Protect(sa));
                    assert_eq!(spd.remove_for_sa(sa), before - model.entries.len());
                }
                70..=79 => {
                    let (old, new) = (r.pick(&sas), r.pick(&sas));
                    let mut n = 0;
                    for (_, e) in &mut model.entries {
                        if e.action == PolicyAction::Protect(old) {
                            e.action = PolicyAction::Protect(new);
                            n += 1;
                        }
                    }
                    assert_eq!(spd.retarget(old, new), n);
                }
                80..=81 => {
                    model
                        .entries
                        .sort_by_key(|(_, e)| std::cmp::Reverse(e.selector.specificity()));
                    spd.sort_by_specificity();
                }
                82..=83 => {
                    // Many inserts into one gap: exhausts the keys between two neighbours and
                    // forces renumbering.
                    let i = r.below(model.entries.len() + 1);
                    for _ in 0..70 {
                        let e = entry(&mut r, &sas);
                        let id = spd.insert(i, e);
                        model.entries.insert(i, (id, e));
                    }
                }
                _ => {}
            }
            check_same(&spd, &model, &mut r, 8);
            if step % 64 == 0 {
                spd.assert_consistent();
                let got: Vec<_> = spd.entries().map(|(i, e)| (i, *e)).collect();
                assert_eq!(got, model.entries, "order after step {step}");
            }
        }
        spd.assert_consistent();
        let got: Vec<_> = spd.entries().map(|(i, e)| (i, *e)).collect();
        assert_eq!(got, model.entries);
    }

    #[test]
    fn indexed_lookup_matches_linear_scan() {
        for seed in [0x9e37_79b9_7f4a_7c15, 1, 0xdead_beef, 42] {
            run(seed, 3000);
        }
    }

    /// The home agent's shapes: per node a protocol-135 entry inserted at the front and a
    /// tunnel entry appended, the DHCPv6 initial tunnel (link-local/128 port 546 ↔ ::/0 port
    /// 547, the same link-local address for every node), catch-alls around them.
    #[test]
    fn home_agent_shapes() {
        let sas = handles(3);
        let ha: Ipv6Addr = "2001:db8:ff::1".parse().unwrap();
        let ll: Ipv6Addr = "fe80::1".parse().unwrap();
        let hoa = |i: u128| Ipv6Addr::from((0x2001_0db8_0001u128 << 80) | (i + 1));
        let mut spd = Spd::new();
        let mut model = Model::default();
        let add = |spd: &mut Spd, model: &mut Model, front: bool, selector, action| {
            let e = SpdEntry {
                selector,
                direction: Direction::Outbound,
                action,
            };
            if front {
                model.entries.insert(0, (spd.insert(0, e), e));
            } else {
                model.entries.push((spd.push(e), e));
            }
        };
        add(
            &mut spd,
            &mut model,
            false,
            Selector {
                next_proto: Some(proto::UDP),
                src_port: Some(500),
                ..Selector::ANY
            },
            PolicyAction::Bypass,
        );
        for i in 0..500 {
            let sa = PolicyAction::Protect(sas[i as usize % 3]);
            let transport = Selector {
                next_proto: Some(proto::MOBILITY),
                ..Selector::between(Prefix::host(ha), Prefix::host(hoa(i)))
            };
            add(&mut spd, &mut model, true, transport, sa);
            let initial = Selector {
                src: Prefix::ANY,
                dst: Prefix::host(ll),
                next_proto: Some(proto::UDP),
                src_port: Some(547),
                dst_port: Some(546),
                mh_type: None,
            };
            add(&mut spd, &mut model, true, initial, sa);
            let tunnel = Selector::between(Prefix::ANY, Prefix::host(hoa(i)));
            add(&mut spd, &mut model, false, tunnel, sa);
        }
        add(
            &mut spd,
            &mut model,
            false,
            Selector::ANY,
            PolicyAction::Discard,
        );
        spd.assert_consistent();
        let mut r = Rng(7);
        for _ in 0..2000 {
            let mut p = packet(&mut r);
            match r.below(4) {
                0 => p.sel_dst = hoa(r.below(520) as u128),
                1 => (p.sel_src, p.sel_dst) = (ha, hoa(r.below(520) as u128)),
                2 => p.sel_dst = ll,
                _ => {}
            }
            let d = Direction::Outbound;
            assert_eq!(spd.lookup(d, &p), model.lookup(d, &p), "{p:?}");
        }
        // Removing one SA's entries leaves the others' answers alone.
        let n = spd.remove_for_sa(sas[1]);
        model
            .entries
            .retain(|(_, e)| e.action != PolicyAction::Protect(sas[1]));
        assert_eq!(n, 3 * 167);
        assert_eq!(spd.len(), 2 + 3 * 333);
        spd.sort_by_specificity();
        model
            .entries
            .sort_by_key(|(_, e)| std::cmp::Reverse(e.selector.specificity()));
        spd.assert_consistent();
        check_same(&spd, &model, &mut r, 2000);
    }
}
