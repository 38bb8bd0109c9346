//! The configured peers, indexed for the Main Mode responder (RFC 2409 §5).
//!
//! With pre-shared keys the responder learns who the initiator is only from MM5, which is
//! encrypted under a key derived from the pre-shared key (RFC 2409 §5.4): it must try each
//! distinct key, then find the peers holding that key whose identity is the one MM5 reveals.
//! A home agent may list thousands of `[[peers]]` that share one key; scanning them all, and
//! comparing their keys, for every MM5 made phase 1 O(peers). The index groups the peers by key
//! once and finds them by identity in O(1).

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};

use crate::config::PeerConfig;
use crate::crypto::ct_eq;
use crate::identity::Identity;

/// Peers grouped by pre-shared key and indexed by identity.
#[derive(Debug, Default)]
pub(crate) struct PeerIndex {
    /// Peers with the same pre-shared key (or none: certificate peers), in configuration
    /// order; groups in the order of their first peer.
    groups: Vec<Vec<usize>>,
    /// The group of each peer.
    group_of: Vec<usize>,
    /// Peers by identity ([`key`]), in configuration order.
    by_id: HashMap<Identity, Vec<usize>>,
    /// Peers configured with any identity (`%any`), in configuration order.
    wildcard: Vec<usize>,
}

/// The identity as [`Identity::matches`] compares it: names without regard to ASCII case.
fn key(id: &Identity) -> Option<Identity> {
    match id {
        Identity::Any => None,
        Identity::Fqdn(s) => Some(Identity::Fqdn(s.to_ascii_lowercase())),
        Identity::UserFqdn(s) => Some(Identity::UserFqdn(s.to_ascii_lowercase())),
        other => Some(other.clone()),
    }
}

impl PeerIndex {
    pub(crate) fn new(peers: &[PeerConfig]) -> Self {
        let mut idx = Self::default();
        // Keys are grouped through a hash of theirs (SipHash, random keys) and confirmed in
        // constant time against the group's first peer.
        let mut by_hash: HashMap<Option<u64>, Vec<usize>> = HashMap::new();
        for (i, p) in peers.iter().enumerate() {
            let psk = p.auth.psk();
            let h = psk.map(|k| {
                let mut s = DefaultHasher::new();
                k.hash(&mut s);
                s.finish()
            });
            let same = |g: &usize| {
                let first = &peers[idx.groups[*g][0]];
                match (first.auth.psk(), psk) {
                    (Some(a), Some(b)) => ct_eq(a, b),
                    (None, None) => true,
                    _ => false,
                }
            };
            let slot = by_hash.entry(h).or_default();
            let g = match slot.iter().copied().find(same) {
                Some(g) => g,
                None => {
                    idx.groups.push(Vec::new());
                    slot.push(idx.groups.len() - 1);
                    idx.groups.len() - 1
                }
            };
            idx.groups[g].push(i);
            idx.group_of.push(g);
            match key(&p.identity) {
                Some(k) => idx.by_id.entry(k).or_default().push(i),
                None => idx.wildcard.push(i),
            }
        }
        idx
    }

    /// The key groups, each with its peers in configuration order.
    pub(crate) fn groups(&self) -> &[Vec<usize>] {
        &self.groups
    }

    /// The peers of group `group` whose configured identity matches `id`
    /// ([`Identity::matches`]), in configuration order.
    pub(crate) fn matching(&self, group: usize, id: &Identity) -> Vec<usize> {
        let named = key(id)
            .and_then(|k| self.by_id.get(&k))
            .map_or(&[][..], Vec::as_slice);
        let mut v: Vec<usize> = named
            .iter()
            .chain(&self.wildcard)
            .copied()
            .filter(|&i| self.group_of.get(i) == Some(&group))
            .collect();
        v.sort_unstable();
        v
    }
}

#[cfg(test)]
mod tests {
    use zeroize::Zeroizing;

    use super::*;
    use crate::config::PeerAuth;

    fn peer(id: &str, psk: Option<&str>) -> PeerConfig {
        PeerConfig {
            identity: Identity::parse(id),
            auth: match psk {
                Some(k) => PeerAuth::Psk(Zeroizing::new(k.as_bytes().to_vec())),
                None => PeerAuth::RsaSig { cas: Vec::new() },
            },
            addrs: vec![],
        }
    }

    /// The index answers what a scan of every peer with the group's key answers.
    #[test]
    fn groups_by_key_and_finds_by_identity_like_a_scan() {
        let peers = vec![
            peer("mn1@example.com", Some("a")),
            peer("MN2@Example.com", Some("b")),
            peer("mn2@example.com", Some("a")),
            peer("%any", Some("a")),
            peer("gw.example.com", None),
            peer("mn1@example.com", Some("a")),
            peer("2001:db8::1", Some("b")),
            peer("mn3@example.com", None),
        ];
        let idx = PeerIndex::new(&peers);
        assert_eq!(idx.groups(), &[vec![0, 2, 3, 5], vec![1, 6], vec![4, 7]]);
        for id in [
            "mn1@example.com",
            "mn2@EXAMPLE.com",
            "GW.example.com",
            "2001:db8::1",
            "nobody@example.com",
        ] {
            let id = Identity::parse(id);
            for (g, members) in idx.groups().iter().enumerate() {
                let scan: Vec<usize> = members
                    .iter()
                    .copied()
                    .filter(|&i| peers[i].identity.matches(&id))
                    .collect();
                assert_eq!(idx.matching(g, &id), scan, "{id} in group {g}");
            }
        }
    }
}
