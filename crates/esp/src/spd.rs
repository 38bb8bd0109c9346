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
//! Only IPv6 is handled: the data plane carries IPv6 inside IPv6.

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

/// The SPD: entries searched in order, first match wins.
#[derive(Debug, Default, Clone)]
pub struct Spd {
    entries: Vec<(PolicyId, SpdEntry)>,
    next_id: u64,
}

impl Spd {
    /// An empty SPD (everything outbound is dropped with `NoPolicy`).
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends an entry (lowest priority so far).
    pub fn push(&mut self, entry: SpdEntry) -> PolicyId {
        let id = self.fresh_id();
        self.entries.push((id, entry));
        id
    }

    /// Inserts an entry at `index` (0 = highest priority; clamped to the end).
    pub fn insert(&mut self, index: usize, entry: SpdEntry) -> PolicyId {
        let id = self.fresh_id();
        self.entries
            .insert(index.min(self.entries.len()), (id, entry));
        id
    }

    fn fresh_id(&mut self) -> PolicyId {
        self.next_id += 1;
        PolicyId(self.next_id)
    }

    /// Removes an entry; returns it if it existed.
    pub fn remove(&mut self, id: PolicyId) -> Option<SpdEntry> {
        let i = self.entries.iter().position(|(i, _)| *i == id)?;
        Some(self.entries.remove(i).1)
    }

    /// Removes every entry that protects with `sa`; returns how many.
    pub fn remove_for_sa(&mut self, sa: SaHandle) -> usize {
        let before = self.entries.len();
        self.entries
            .retain(|(_, e)| e.action != PolicyAction::Protect(sa));
        before - self.entries.len()
    }

    /// Points every entry that protects with `old` at `new` (rekeying); returns how many.
    pub fn retarget(&mut self, old: SaHandle, new: SaHandle) -> usize {
        let mut n = 0;
        for (_, e) in &mut self.entries {
            if e.action == PolicyAction::Protect(old) {
                e.action = PolicyAction::Protect(new);
                n += 1;
            }
        }
        n
    }

    /// Stable sort, most specific selector first ([`Selector::specificity`]); entries of equal
    /// specificity keep their order.
    pub fn sort_by_specificity(&mut self) {
        self.entries
            .sort_by_key(|(_, e)| std::cmp::Reverse(e.selector.specificity()));
    }

    /// The first entry of `direction` that matches `packet`.
    #[inline]
    pub fn lookup(&self, direction: Direction, packet: &PacketInfo) -> Option<&SpdEntry> {
        self.entries
            .iter()
            .map(|(_, e)| e)
            .find(|e| e.direction == direction && e.selector.matches(packet))
    }

    /// The entries in order.
    pub fn entries(&self) -> impl Iterator<Item = (PolicyId, &SpdEntry)> {
        self.entries.iter().map(|(i, e)| (*i, e))
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
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
