//! The engine's IKE SAs with an index of their next deadlines.
//!
//! A home agent holds thousands of IKE SAs and its driver asks for the next deadline after
//! every datagram ([`crate::Engine::poll_timeout`]); scanning every SA for it (and for dead
//! SAs to reap) made the engine O(n) per packet. The table keeps each SA's earliest deadline
//! (phase-1 and exchange retransmission or give-up, XAUTH's time limit, phase-1 and child
//! rekeying and expiry, RFC 3706 dead peer detection) in an ordered set.
//!
//! Mutable access goes only through [`SaTable::get_mut`], [`SaTable::insert`] and
//! [`SaTable::remove`], which mark the SA dirty; [`SaTable::flush`] recomputes the deadlines of
//! dirty SAs and reports the dead ones. Reads between a change and the next flush still see
//! the truth: [`SaTable::next_deadline`] looks at dirty SAs directly.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::{Duration, Instant};

use crate::event::IkeSaId;
use crate::exchange::{Exchange, Kind};
use crate::ike_sa::{IkeSa, P1State};

/// IKE SAs by id, with the deadline index.
pub(crate) struct SaTable {
    /// Boxed: an SA is ~1 KiB and a hash table holds up to twice the slots it uses.
    sas: HashMap<IkeSaId, Box<IkeSa>>,
    /// `(deadline, id)` of every clean SA that has a deadline.
    index: BTreeSet<(Instant, IkeSaId)>,
    /// The deadline each clean SA has in `index`.
    indexed: HashMap<IkeSaId, Instant>,
    /// SAs changed (or removed) since the last flush.
    dirty: HashSet<IkeSaId>,
    /// Dead SAs found by a flush, not yet taken by [`SaTable::take_dead`].
    dead: Vec<IkeSaId>,
    /// The DPD delay of the engine's configuration (part of an SA's deadline).
    dpd_delay: Option<Duration>,
}

impl SaTable {
    pub(crate) fn new(dpd_delay: Option<Duration>) -> Self {
        Self {
            sas: HashMap::new(),
            index: BTreeSet::new(),
            indexed: HashMap::new(),
            dirty: HashSet::new(),
            dead: Vec::new(),
            dpd_delay,
        }
    }

    pub(crate) fn get(&self, id: &IkeSaId) -> Option<&IkeSa> {
        self.sas.get(id).map(|sa| &**sa)
    }

    /// The SA for a change: its deadline is recomputed at the next flush.
    pub(crate) fn get_mut(&mut self, id: &IkeSaId) -> Option<&mut IkeSa> {
        let sa = self.sas.get_mut(id)?;
        self.dirty.insert(*id);
        Some(&mut **sa)
    }

    pub(crate) fn insert(&mut self, id: IkeSaId, sa: IkeSa) {
        self.dirty.insert(id);
        self.sas.insert(id, Box::new(sa));
    }

    pub(crate) fn remove(&mut self, id: &IkeSaId) -> Option<Box<IkeSa>> {
        let sa = self.sas.remove(id)?;
        self.dirty.insert(*id);
        Some(sa)
    }

    pub(crate) fn contains_key(&self, id: &IkeSaId) -> bool {
        self.sas.contains_key(id)
    }

    pub(crate) fn keys(&self) -> impl Iterator<Item = &IkeSaId> {
        self.sas.keys()
    }

    pub(crate) fn values(&self) -> impl Iterator<Item = &IkeSa> {
        self.sas.values().map(|sa| &**sa)
    }

    /// Brings the index up to date, noting the dead SAs among those changed (an SA only
    /// dies by a change, so none is missed).
    pub(crate) fn flush(&mut self) {
        for id in std::mem::take(&mut self.dirty) {
            if let Some(old) = self.indexed.remove(&id) {
                self.index.remove(&(old, id));
            }
            let Some(sa) = self.sas.get(&id) else {
                continue;
            };
            if sa.dead && !self.dead.contains(&id) {
                self.dead.push(id);
            }
            if let Some(d) = deadline(sa, self.dpd_delay) {
                self.index.insert((d, id));
                self.indexed.insert(id, d);
            }
        }
    }

    /// The SAs marked dead and still in the table, oldest id first.
    pub(crate) fn take_dead(&mut self) -> Vec<IkeSaId> {
        self.flush();
        let mut dead = std::mem::take(&mut self.dead);
        dead.retain(|id| self.sas.contains_key(id));
        dead.sort();
        dead
    }

    /// The SAs whose deadline is `now` or earlier (flush first).
    pub(crate) fn due(&self, now: Instant) -> Vec<IkeSaId> {
        debug_assert!(self.dirty.is_empty());
        self.index
            .iter()
            .take_while(|(d, _)| *d <= now)
            .map(|&(_, id)| id)
            .collect()
    }

    /// The earliest deadline of any SA.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        let clean = self
            .index
            .iter()
            .find(|(_, id)| !self.dirty.contains(id))
            .map(|&(d, _)| d);
        let changed = self
            .dirty
            .iter()
            .filter_map(|id| self.sas.get(id))
            .filter_map(|sa| deadline(sa, self.dpd_delay))
            .min();
        match (clean, changed) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

impl std::ops::Index<&IkeSaId> for SaTable {
    type Output = IkeSa;

    fn index(&self, id: &IkeSaId) -> &IkeSa {
        &self.sas[id]
    }
}

/// When the engine must next look at `sa`: the earliest of its timers. A dead SA has none
/// (it is reaped, not timed).
pub(crate) fn deadline(sa: &IkeSa, dpd_delay: Option<Duration>) -> Option<Instant> {
    if sa.dead {
        return None;
    }
    // Before phase 1 completes only its own exchange runs.
    if sa.state != P1State::Established {
        return Some(sa.p1_exchange.deadline());
    }
    let mut d = sa.exchanges.values().map(Exchange::deadline).min();
    let mut fold = |t: Option<Instant>| {
        if let Some(t) = t {
            d = Some(d.map_or(t, |x| x.min(t)));
        }
    };
    if let Some(x) = sa.xauth.as_ref().filter(|x| x.running()) {
        fold(Some(x.deadline));
    }
    fold(sa.rekey_at);
    fold(sa.expires_at);
    for c in &sa.children {
        fold(c.rekey_at);
        fold(Some(c.expires_at));
    }
    // RFC 3706: R-U-THERE only to a peer that announced DPD, and one at a time.
    if let Some(delay) = dpd_delay
        && sa.p1.peer_dpd
        && !sa
            .exchanges
            .values()
            .any(|e| matches!(e.kind, Kind::Dpd { .. }))
    {
        fold(Some(sa.last_heard + delay));
    }
    d
}

#[cfg(test)]
mod tests {
    //! The index against a scan of every SA, over engines that live through what changes
    //! deadlines: retransmissions over a lossy link, rekeying and expiry of both phases, dead
    //! peer detection of peers that fall silent, re-authentication.

    use std::net::SocketAddr;
    use std::time::{Duration, Instant};

    use zeroize::Zeroizing;

    use crate::crypto::{Rng as _, SeededRng};
    use crate::{
        ChildRequest, Config, Engine, Event, Identity, IkeProposal, LocalAuth, Mode, PeerAuth,
        PeerConfig, TrafficSelector,
    };

    const NODES: usize = 8;

    fn config(local: &str, peers: &[String], dpd: u64) -> Config {
        let mut c = Config::new(Identity::parse(local), LocalAuth::Psk);
        c.ike_proposals = vec![IkeProposal::parse("aes128-sha256-ecp256", false).unwrap()];
        c.peers = peers
            .iter()
            .map(|p| PeerConfig {
                identity: Identity::parse(p),
                auth: PeerAuth::Psk(Zeroizing::new(b"secret".to_vec())),
                addrs: vec![],
            })
            .collect();
        c.ike_lifetime = Duration::from_secs(90);
        c.child_lifetime = Duration::from_secs(30);
        c.rekey_margin = Duration::from_secs(8);
        c.dpd_delay = Some(Duration::from_secs(dpd));
        c
    }

    fn addr(i: usize) -> SocketAddr {
        format!("[2001:db8:ff::{:x}]:500", i + 2).parse().unwrap()
    }

    /// Checks the index, runs the timers when due, and checks that none is left behind.
    fn timers(e: &mut Engine, now: Instant) {
        assert_eq!(e.poll_timeout(), e.fuzz_deadline_scan());
        if e.poll_timeout().is_some_and(|t| t <= now) {
            e.handle_timeout(now);
            assert_eq!(e.poll_timeout(), e.fuzz_deadline_scan());
            assert!(
                e.poll_timeout().is_none_or(|t| t > now),
                "deadline left behind"
            );
        }
    }

    #[test]
    fn deadline_index_matches_a_scan_of_every_sa() {
        let names: Vec<String> = (0..NODES).map(|i| format!("mn{i}@example.com")).collect();
        let ha_addr: SocketAddr = "[2001:db8:ff::1]:500".parse().unwrap();
        let mut ha = Engine::new(
            config("ha.example.com", &names, 5),
            Box::new(SeededRng::new(1)),
        );
        let mut mns: Vec<Engine> = names
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let peers = ["ha.example.com".to_owned()];
                Engine::new(
                    config(n, &peers, 7),
                    Box::new(SeededRng::new(10 + i as u64)),
                )
            })
            .collect();
        let mut rng = SeededRng::new(99);
        let mut roll = |n: u8| {
            let mut b = [0u8; 1];
            rng.fill(&mut b);
            b[0] % n
        };
        let t0 = Instant::now();
        let mut now = t0;
        // Node i starts at i seconds and, for odd i, falls silent after 60 + 10 i seconds.
        let silent_at =
            |i: usize| (i % 2 == 1).then(|| t0 + Duration::from_secs(60 + 10 * i as u64));
        let mut started = [false; NODES];
        let (mut established, mut children, mut checks) = (0, 0, 0);
        while now < t0 + Duration::from_secs(400) {
            for (i, mn) in mns.iter_mut().enumerate() {
                if !started[i] && now >= t0 + Duration::from_secs(i as u64) {
                    started[i] = true;
                    mn.initiate(now, 0, addr(i), ha_addr).unwrap();
                }
            }
            // Deliver until quiet, losing one datagram in eight.
            loop {
                let mut any = false;
                for (i, mn) in mns.iter_mut().enumerate() {
                    let alive = silent_at(i).is_none_or(|t| now < t);
                    while let Some(t) = mn.poll_transmit() {
                        any = true;
                        if alive && roll(8) != 0 {
                            ha.handle_datagram(now, t.remote, t.local, &t.data);
                            checks += 1;
                            assert_eq!(ha.poll_timeout(), ha.fuzz_deadline_scan());
                        }
                    }
                    while let Some(ev) = mn.poll_event() {
                        if let Event::IkeSaEstablished { sa, .. } = ev {
                            established += 1;
                            let req = ChildRequest {
                                mode: Mode::Tunnel,
                                local_ts: TrafficSelector::parse("::/0").unwrap(),
                                remote_ts: TrafficSelector::parse("::/0").unwrap(),
                            };
                            mn.initiate_child(now, sa, req).unwrap();
                        }
                    }
                }
                while let Some(t) = ha.poll_transmit() {
                    any = true;
                    let i = mns_index(&t.remote);
                    let alive = silent_at(i).is_none_or(|x| now < x);
                    if alive && roll(8) != 0 {
                        mns[i].handle_datagram(now, t.remote, t.local, &t.data);
                        assert_eq!(mns[i].poll_timeout(), mns[i].fuzz_deadline_scan());
                    }
                }
                while let Some(ev) = ha.poll_event() {
                    if matches!(ev, Event::ChildSaEstablished(_)) {
                        children += 1;
                    }
                }
                if !any {
                    break;
                }
            }
            let next = std::iter::once(ha.poll_timeout())
                .chain(mns.iter().map(Engine::poll_timeout))
                .flatten()
                .min()
                .unwrap_or(now + Duration::from_secs(1))
                .min(now + Duration::from_secs(1));
            now = now.max(next);
            timers(&mut ha, now);
            for mn in &mut mns {
                timers(mn, now);
            }
        }
        // Every node came up, children were rekeyed, phase 1 re-authenticated, and the silent
        // nodes were found dead by DPD at the home agent.
        assert!(established > NODES, "{established} phase-1 SAs established");
        assert!(
            children > 2 * NODES,
            "{children} child SAs at the home agent"
        );
        assert!(checks > 500, "{checks} datagrams checked");
        let alive = ha
            .ike_sas()
            .into_iter()
            .filter_map(|sa| ha.ike_sa_info(sa))
            .filter(|s| s.established)
            .count();
        assert!(alive <= NODES / 2 + 1, "{alive} SAs left at the home agent");
    }

    /// A peer that did not announce DPD (RFC 3706 §5.1) gets no R-U-THERE, so its silence
    /// sets no deadline: one would stay in the past and make the driver spin.
    #[test]
    fn no_dpd_deadline_for_a_peer_without_dpd() {
        let names = ["mn0@example.com".to_owned()];
        let ha_addr: SocketAddr = "[2001:db8:ff::1]:500".parse().unwrap();
        let mut ha = Engine::new(
            config("ha.example.com", &names, 5),
            Box::new(SeededRng::new(1)),
        );
        let peers = ["ha.example.com".to_owned()];
        let mut mn = Engine::new(config(&names[0], &peers, 5), Box::new(SeededRng::new(2)));
        let now = Instant::now();
        mn.initiate(now, 0, addr(0), ha_addr).unwrap();
        for _ in 0..6 {
            while let Some(t) = mn.poll_transmit() {
                ha.handle_datagram(now, t.remote, t.local, &t.data);
            }
            while let Some(t) = ha.poll_transmit() {
                mn.handle_datagram(now, t.remote, t.local, &t.data);
            }
        }
        let sa = ha.ike_sas()[0];
        assert!(ha.ike_sa_info(sa).unwrap().established);
        let dpd_at = ha.poll_timeout().unwrap();
        assert_eq!(dpd_at, now + Duration::from_secs(5), "R-U-THERE due");
        ha.sas.get_mut(&sa).unwrap().p1.peer_dpd = false;
        let later = now + Duration::from_secs(6);
        timers(&mut ha, later);
        assert!(
            ha.poll_transmit().is_none(),
            "no R-U-THERE to a peer without DPD"
        );
        assert!(ha.poll_timeout().unwrap() > later + Duration::from_secs(10));
    }

    fn mns_index(a: &SocketAddr) -> usize {
        let SocketAddr::V6(v6) = a else {
            unreachable!()
        };
        usize::from(v6.ip().segments()[7]) - 2
    }
}
