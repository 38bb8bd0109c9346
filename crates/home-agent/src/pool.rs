//! `[modecfg] source = "pool"`: Mode Config addresses (draft-devarapalli-mip6-ikev1-bootstrap
//! §3.1) from a configured range instead of the DHCPv6 server. An address belongs to one IKE
//! SA until it is deleted. Each identity starts its search at a place derived from its name,
//! so a node that reconnects usually gets its old address back without any state kept.

use std::collections::{HashMap, HashSet};
use std::net::Ipv6Addr;

use daemon::addr::AddrRange;
use ikev1::IkeSaId;
use sha2::{Digest, Sha256};

/// The pool and who has what.
#[derive(Debug)]
pub(crate) struct Pool {
    range: AddrRange,
    by_sa: HashMap<IkeSaId, Ipv6Addr>,
}

impl Pool {
    pub(crate) fn new(range: AddrRange) -> Self {
        Self {
            range,
            by_sa: HashMap::new(),
        }
    }

    /// An address for `sa` (the one it has already, if any): `hint` when it is free and in the
    /// range, else the first free one from the identity's starting point. `taken` holds
    /// addresses others hold outside the pool's knowledge (static and leased home addresses).
    /// `None` when the range is exhausted.
    pub(crate) fn assign(
        &mut self,
        sa: IkeSaId,
        identity: &str,
        hint: Option<Ipv6Addr>,
        taken: &HashSet<Ipv6Addr>,
    ) -> Option<Ipv6Addr> {
        if let Some(a) = self.by_sa.get(&sa) {
            return Some(*a);
        }
        let used: HashSet<Ipv6Addr> = self.by_sa.values().chain(taken).copied().collect();
        let free = |a: &Ipv6Addr| self.range.contains(*a) && !used.contains(a);
        let chosen = match hint.filter(free) {
            Some(a) => a,
            None => {
                let first = u128::from(self.range.first);
                let size = u128::from(self.range.last) - first + 1;
                let h = Sha256::digest(identity.as_bytes());
                let mut start = [0u8; 16];
                start.copy_from_slice(&h[..16]);
                let start = u128::from_be_bytes(start) % size;
                // Among `used.len() + 1` consecutive addresses one is free, unless the range
                // is no larger than that: the walk is bounded by what is taken, not by the
                // range (which may be a whole /64).
                let steps = size.min(used.len() as u128 + 1);
                (0..steps)
                    .map(|i| Ipv6Addr::from(first + (start + i) % size))
                    .find(free)?
            }
        };
        self.by_sa.insert(sa, chosen);
        Some(chosen)
    }

    /// `new` took over from `old` (phase-1 re-authentication): the address goes with it.
    pub(crate) fn replaced(&mut self, old: IkeSaId, new: IkeSaId) {
        if let Some(a) = self.by_sa.remove(&old) {
            self.by_sa.insert(new, a);
        }
    }

    /// Frees `sa`'s address.
    pub(crate) fn release(&mut self, sa: IkeSaId) -> Option<Ipv6Addr> {
        self.by_sa.remove(&sa)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(s: &str) -> AddrRange {
        s.parse().unwrap()
    }

    #[test]
    fn assigns_distinct_addresses_until_exhausted() {
        let mut p = Pool::new(range("2001:db8:1::1000-2001:db8:1::1003"));
        let none = HashSet::new();
        let mut got = HashSet::new();
        for i in 0..4 {
            let a = p
                .assign(IkeSaId(i), &format!("mn{i}"), None, &none)
                .unwrap();
            assert!(got.insert(a), "{a} handed out twice");
        }
        assert_eq!(p.assign(IkeSaId(9), "mn9", None, &none), None);
        let freed = p.release(IkeSaId(2)).unwrap();
        assert_eq!(p.assign(IkeSaId(9), "mn9", None, &none), Some(freed));
    }

    #[test]
    fn same_identity_same_address_and_hint_honoured() {
        let mut p = Pool::new(range("2001:db8:1::1000-2001:db8:1::10ff"));
        let none = HashSet::new();
        let a = p
            .assign(IkeSaId(1), "mn1@example.com", None, &none)
            .unwrap();
        assert_eq!(
            p.assign(IkeSaId(1), "mn1@example.com", None, &none),
            Some(a)
        );
        p.release(IkeSaId(1));
        assert_eq!(
            p.assign(IkeSaId(2), "mn1@example.com", None, &none),
            Some(a)
        );
        let hint: Ipv6Addr = "2001:db8:1::1042".parse().unwrap();
        assert_eq!(
            p.assign(IkeSaId(3), "mn2@example.com", Some(hint), &none),
            Some(hint)
        );
        // A hint outside the range or taken is ignored.
        let out: Ipv6Addr = "2001:db8:1::2".parse().unwrap();
        let b = p
            .assign(IkeSaId(4), "mn3@example.com", Some(out), &none)
            .unwrap();
        assert_ne!(b, out);
        let c = p
            .assign(IkeSaId(5), "mn4@example.com", Some(hint), &none)
            .unwrap();
        assert_ne!(c, hint);
    }

    #[test]
    fn skips_addresses_held_elsewhere_in_a_huge_range() {
        let mut p = Pool::new(range("2001:db8:1::-2001:db8:1::ffff:ffff:ffff:ffff"));
        let first = p.assign(IkeSaId(1), "mn1", None, &HashSet::new()).unwrap();
        p.release(IkeSaId(1));
        let taken: HashSet<Ipv6Addr> = [first].into();
        let second = p.assign(IkeSaId(2), "mn1", None, &taken).unwrap();
        assert_ne!(first, second);
    }
}
