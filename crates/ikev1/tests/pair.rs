//! Engine against engine in memory: a mobile node (initiator) and a home agent (responder)
//! over a simulated network with a virtual clock, loss, duplication and reordering.

use std::collections::VecDeque;
use std::net::{Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use ikev1::crypto::{Rng, SeededRng};
use ikev1::{
    ChildRequest, Config, Engine, EspProposal, Event, FailReason, Identity, IkeProposal, LocalAuth,
    Mode, ModeConfig, PeerAuth, PeerConfig, TrafficSelector,
};
use zeroize::Zeroizing;

const MN: &str = "[2001:db8:ff::2]:500";
const HA: &str = "[2001:db8:ff::1]:500";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn psk(s: &str) -> PeerAuth {
    PeerAuth::Psk(Zeroizing::new(s.as_bytes().to_vec()))
}

fn mn_config(ike: &str, esp: &str, key: &str) -> Config {
    let mut c = Config::new(Identity::parse("mn1@example.com"), LocalAuth::Psk);
    c.ike_proposals = vec![IkeProposal::parse(ike, true).unwrap()];
    c.esp_proposals = vec![EspProposal::parse(esp, true).unwrap()];
    c.peers = vec![PeerConfig {
        identity: Identity::parse("ha.example.com"),
        auth: psk(key),
        addrs: vec![],
    }];
    c
}

fn ha_config() -> Config {
    let mut c = Config::new(Identity::parse("ha.example.com"), LocalAuth::Psk);
    c.ike_proposals = [
        "aes128-sha256-ecp256",
        "aes256-sha384-ecp384",
        "aes128-sha1-modp2048",
        "aes256-sha256-x25519",
    ]
    .iter()
    .map(|s| IkeProposal::parse(s, false).unwrap())
    .collect();
    c.esp_proposals = [
        "aes128gcm16",
        "aes256-sha256",
        "aes128-sha1-modp2048",
        "aes128gcm16-ecp256",
    ]
    .iter()
    .map(|s| EspProposal::parse(s, false).unwrap())
    .collect();
    c.peers = vec![
        PeerConfig {
            identity: Identity::parse("mn2@example.com"),
            auth: psk("other-secret"),
            addrs: vec![],
        },
        PeerConfig {
            identity: Identity::parse("mn1@example.com"),
            auth: psk("secret"),
            addrs: vec![],
        },
        PeerConfig {
            identity: Identity::parse("mn3@example.com"),
            auth: psk("secret"),
            addrs: vec![],
        },
    ];
    c
}

/// Fault injection for the simulated link.
#[derive(Clone, Copy, Default)]
struct Faults {
    /// Drop every n-th datagram (0 = none).
    drop_every: u32,
    /// Duplicate every n-th datagram.
    dup_every: u32,
    /// Swap every n-th datagram with the next one in flight.
    reorder_every: u32,
}

struct Pair {
    mn: Engine,
    ha: Engine,
    t0: Instant,
    now: Instant,
    wire: VecDeque<(bool, ikev1::Transmit)>, // (to_ha, datagram)
    faults: Faults,
    sent: u32,
    mn_events: Vec<Event>,
    ha_events: Vec<Event>,
    /// The HA's address pool for Mode Config answers.
    pool_next: u16,
}

impl Pair {
    fn new(mn: Config, ha: Config, seed: u64) -> Self {
        let t0 = Instant::now();
        Self {
            mn: Engine::new(mn, Box::new(SeededRng::new(seed))),
            ha: Engine::new(ha, Box::new(SeededRng::new(seed ^ 0xabcdef))),
            t0,
            now: t0,
            wire: VecDeque::new(),
            faults: Faults::default(),
            sent: 0,
            mn_events: Vec::new(),
            ha_events: Vec::new(),
            pool_next: 0x1000,
        }
    }

    fn collect(&mut self) {
        while let Some(t) = self.mn.poll_transmit() {
            self.put(true, t);
        }
        while let Some(t) = self.ha.poll_transmit() {
            self.put(false, t);
        }
    }

    fn put(&mut self, to_ha: bool, t: ikev1::Transmit) {
        self.sent += 1;
        let n = self.sent;
        let f = self.faults;
        if f.drop_every != 0 && n.is_multiple_of(f.drop_every) {
            return;
        }
        if f.dup_every != 0 && n.is_multiple_of(f.dup_every) {
            self.wire.push_back((to_ha, t.clone()));
        }
        if f.reorder_every != 0 && n.is_multiple_of(f.reorder_every) && !self.wire.is_empty() {
            let i = self.wire.len() - 1;
            self.wire.insert(i, (to_ha, t));
        } else {
            self.wire.push_back((to_ha, t));
        }
    }

    /// Runs until nothing is in flight and no timer is due before `limit` from now.
    fn drive(&mut self, limit: Duration) {
        let end = self.now + limit;
        let mut steps = 0u32;
        loop {
            steps += 1;
            assert!(
                steps < 100_000,
                "no progress: {} in flight, timeouts {:?} {:?}, now {:?}",
                self.wire.len(),
                self.mn.poll_timeout().map(|t| t - self.t0),
                self.ha.poll_timeout().map(|t| t - self.t0),
                self.now - self.t0
            );
            self.collect();
            self.answer_address_requests();
            self.collect();
            if let Some((to_ha, t)) = self.wire.pop_front() {
                // The receiver sees the datagram on its own address and port, from the sender's.
                if to_ha {
                    self.ha
                        .handle_datagram(self.now, t.remote, t.local, &t.data);
                } else {
                    self.mn
                        .handle_datagram(self.now, t.remote, t.local, &t.data);
                }
                self.now += Duration::from_millis(1);
                continue;
            }
            let next = [self.mn.poll_timeout(), self.ha.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(t) if t <= end => {
                    self.now = self.now.max(t);
                    self.mn.handle_timeout(self.now);
                    self.ha.handle_timeout(self.now);
                }
                _ => break,
            }
        }
        self.collect();
    }

    fn answer_address_requests(&mut self) {
        while let Some(e) = self.ha.poll_event() {
            if let Event::AddressRequested { sa, request, .. } = &e {
                let a = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, self.pool_next);
                self.pool_next += 1;
                let m = ModeConfig {
                    address: Some(a),
                    dns: vec!["2001:db8:1::53".parse().unwrap()],
                    expiry: Some(Duration::from_secs(3600)),
                    ..ModeConfig::default()
                };
                self.ha
                    .answer_address_request(self.now, *sa, *request, Some(m))
                    .unwrap();
            }
            self.ha_events.push(e);
        }
        while let Some(e) = self.mn.poll_event() {
            self.mn_events.push(e);
        }
    }

    fn mn_established(&self) -> Option<ikev1::IkeSaId> {
        self.mn_events.iter().find_map(|e| match e {
            Event::IkeSaEstablished { sa, .. } => Some(*sa),
            _ => None,
        })
    }

    fn ha_sa(&self) -> Option<ikev1::IkeSaId> {
        self.ha_events.iter().find_map(|e| match e {
            Event::IkeSaEstablished { sa, .. } => Some(*sa),
            _ => None,
        })
    }

    fn children(events: &[Event]) -> Vec<&ikev1::ChildSa> {
        events
            .iter()
            .filter_map(|e| match e {
                Event::ChildSaEstablished(c) => Some(c.as_ref()),
                _ => None,
            })
            .collect()
    }
}

fn bootstrap(p: &mut Pair) -> (ikev1::IkeSaId, Ipv6Addr) {
    p.mn.initiate(p.now, 0, addr(MN), addr(HA)).unwrap();
    p.drive(Duration::from_secs(60));
    let sa = p.mn_established().expect("phase 1 established at the MN");
    assert!(p.ha_sa().is_some(), "phase 1 established at the HA");
    p.mn.request_mode_config(p.now, sa).unwrap();
    p.drive(Duration::from_secs(60));
    let hoa = p
        .mn_events
        .iter()
        .find_map(|e| match e {
            Event::ModeConfigReceived { config, .. } => config.address,
            _ => None,
        })
        .expect("Mode Config address");
    (sa, hoa)
}

fn check_mirrored(p: &Pair, n: usize) {
    let mn_c = Pair::children(&p.mn_events);
    let ha_c = Pair::children(&p.ha_events);
    assert_eq!(mn_c.len(), n, "MN child SAs");
    assert_eq!(ha_c.len(), n, "HA child SAs");
    for m in &mn_c {
        let h = ha_c
            .iter()
            .find(|h| h.spi_in == m.spi_out)
            .expect("the HA has the mirror SA");
        assert_eq!(m.spi_in, h.spi_out);
        assert_eq!(m.spi_out, h.spi_in);
        assert_eq!(m.local_ts, h.remote_ts);
        assert_eq!(m.remote_ts, h.local_ts);
        assert_eq!(m.mode, h.mode);
        assert_eq!(m.proposal, h.proposal);
        assert_eq!(*m.keys_in.encr, *h.keys_out.encr);
        assert_eq!(*m.keys_out.encr, *h.keys_in.encr);
        assert_eq!(*m.keys_in.integ, *h.keys_out.integ);
        assert_ne!(
            *m.keys_in.encr, *m.keys_out.encr,
            "directions have different keys"
        );
        assert_eq!(m.keys_in.encr.len(), m.proposal.encr.key_len());
    }
}

fn rfc3776_requests(hoa: Ipv6Addr) -> [ChildRequest; 2] {
    let ha: std::net::IpAddr = "2001:db8:ff::1".parse().unwrap();
    [
        ChildRequest {
            mode: Mode::Transport,
            local_ts: TrafficSelector::host(hoa.into()).with_protocol(135, 0),
            remote_ts: TrafficSelector::host(ha).with_protocol(135, 0),
        },
        ChildRequest {
            mode: Mode::Tunnel,
            local_ts: TrafficSelector::host(hoa.into()),
            remote_ts: TrafficSelector::parse("::/0").unwrap(),
        },
    ]
}

fn full_run(ike: &str, esp: &str, faults: Faults, seed: u64) -> Pair {
    let mut p = Pair::new(mn_config(ike, esp, "secret"), ha_config(), seed);
    p.faults = faults;
    let (sa, hoa) = bootstrap(&mut p);
    assert!(
        (0x1000..0x1100).contains(&hoa.segments()[7]),
        "address from the HA's provider: {hoa}"
    );
    for r in rfc3776_requests(hoa) {
        p.mn.initiate_child(p.now, sa, r).unwrap();
    }
    p.drive(Duration::from_secs(60));
    check_mirrored(&p, 2);
    let c = Pair::children(&p.mn_events);
    let transport = c
        .iter()
        .find(|c| c.mode == Mode::Transport)
        .expect("transport SA");
    assert_eq!(transport.local_ts.protocol, 135);
    assert_eq!(transport.remote_ts.protocol, 135);
    assert!(
        c.iter()
            .any(|c| c.mode == Mode::Tunnel && c.remote_ts.prefix_len == 0)
    );
    p
}

#[test]
fn psk_modecfg_and_rfc3776_sas_every_group() {
    for (i, (ike, esp)) in [
        ("aes128-sha256-ecp256", "aes128gcm16"),
        ("aes256-sha384-ecp384", "aes256-sha256"),
        ("aes128-sha1-modp2048", "aes128-sha1-modp2048"),
        ("aes256-sha256-x25519", "aes128gcm16-ecp256"),
    ]
    .into_iter()
    .enumerate()
    {
        let p = full_run(ike, esp, Faults::default(), i as u64);
        let c = Pair::children(&p.mn_events);
        assert_eq!(c[0].proposal.to_string(), esp);
        assert_eq!(p.mn.counters().dropped_auth, 0);
        assert_eq!(p.ha.counters().dropped_auth, 0);
    }
}

#[test]
fn survives_loss_duplication_and_reordering() {
    for (seed, faults) in [
        Faults {
            drop_every: 3,
            ..Faults::default()
        },
        Faults {
            dup_every: 2,
            ..Faults::default()
        },
        Faults {
            reorder_every: 2,
            ..Faults::default()
        },
        Faults {
            drop_every: 5,
            dup_every: 3,
            reorder_every: 4,
        },
    ]
    .into_iter()
    .enumerate()
    {
        let p = full_run(
            "aes128-sha256-ecp256",
            "aes128gcm16",
            faults,
            100 + seed as u64,
        );
        assert_eq!(p.mn.counters().dropped_auth, 0, "faults {seed}");
        assert_eq!(p.ha.counters().dropped_auth, 0, "faults {seed}");
    }
}

#[test]
fn wrong_psk_fails_with_authentication_and_no_sa() {
    let mut p = Pair::new(
        mn_config("aes128-sha256-ecp256", "aes128gcm16", "wrong"),
        ha_config(),
        7,
    );
    p.mn.initiate(p.now, 0, addr(MN), addr(HA)).unwrap();
    p.drive(Duration::from_secs(120));
    assert!(p.mn_established().is_none());
    assert!(p.ha_sa().is_none());
    assert!(p.ha_events.iter().any(|e| matches!(
        e,
        Event::IkeSaFailed {
            reason: FailReason::Authentication(_),
            ..
        }
    )));
    assert!(
        p.mn_events
            .iter()
            .any(|e| matches!(e, Event::IkeSaFailed { .. }))
    );
    assert!(p.ha.ike_sas().is_empty(), "no state left at the HA");
}

#[test]
fn psk_chosen_by_identity() {
    // mn3 shares mn1's key: the HA must still tell them apart by the identity in MM5.
    let mut c = mn_config("aes128-sha256-ecp256", "aes128gcm16", "secret");
    c.local_id = Identity::parse("mn3@example.com");
    let mut p = Pair::new(c, ha_config(), 8);
    p.mn.initiate(p.now, 0, addr(MN), addr(HA)).unwrap();
    p.drive(Duration::from_secs(60));
    let id = p.ha_events.iter().find_map(|e| match e {
        Event::IkeSaEstablished { remote_id, .. } => Some(remote_id.clone()),
        _ => None,
    });
    assert_eq!(id, Some(Identity::parse("mn3@example.com")));
    // mn2 with the wrong key for mn2 fails.
    let mut c = mn_config("aes128-sha256-ecp256", "aes128gcm16", "secret");
    c.local_id = Identity::parse("mn2@example.com");
    let mut p = Pair::new(c, ha_config(), 9);
    p.mn.initiate(p.now, 0, addr(MN), addr(HA)).unwrap();
    p.drive(Duration::from_secs(60));
    assert!(p.ha_sa().is_none());
}

#[test]
fn no_common_proposal() {
    let mut p = Pair::new(
        mn_config("aes128-sha256-modp1024", "aes128gcm16", "secret"),
        ha_config(),
        10,
    );
    p.mn.initiate(p.now, 0, addr(MN), addr(HA)).unwrap();
    p.drive(Duration::from_secs(120));
    assert!(p.mn_events.iter().any(|e| matches!(e, Event::IkeSaFailed { reason: FailReason::Notify(n), .. } if *n == isakmp::NotifyType::NO_PROPOSAL_CHOSEN)));
    assert!(p.ha.ike_sas().is_empty());
}

#[test]
fn quick_mode_outside_policy_is_refused() {
    let mut ha = ha_config();
    ha.remote_ts = vec![TrafficSelector::parse("2001:db8:1::/64").unwrap()];
    let mut p = Pair::new(
        mn_config("aes128-sha256-ecp256", "aes128gcm16", "secret"),
        ha,
        11,
    );
    let (sa, _) = bootstrap(&mut p);
    let req = ChildRequest {
        mode: Mode::Tunnel,
        local_ts: TrafficSelector::parse("2001:db8:99::1").unwrap(),
        remote_ts: TrafficSelector::parse("::/0").unwrap(),
    };
    let r = p.mn.initiate_child(p.now, sa, req).unwrap();
    p.drive(Duration::from_secs(60));
    assert!(Pair::children(&p.ha_events).is_empty());
    assert!(p.mn_events.iter().any(|e| matches!(e, Event::ChildSaFailed { request: Some(x), reason: FailReason::Notify(_), .. } if *x == r)));
}

#[test]
fn delete_child_and_ike_sa() {
    let mut p = full_run("aes128-sha256-ecp256", "aes128gcm16", Faults::default(), 12);
    let sa = p.mn_established().unwrap();
    let c = Pair::children(&p.mn_events)[0].spi_in;
    p.mn.delete_child(p.now, sa, c).unwrap();
    p.drive(Duration::from_secs(5));
    assert!(
        p.ha_events
            .iter()
            .any(|e| matches!(e, Event::ChildSaDeleted { spi_out, .. } if *spi_out == c))
    );
    p.mn.delete_ike_sa(p.now, sa).unwrap();
    p.drive(Duration::from_secs(5));
    assert!(
        p.ha_events
            .iter()
            .any(|e| matches!(e, Event::IkeSaDeleted { .. }))
    );
    assert!(p.ha.ike_sas().is_empty());
    assert!(p.mn.ike_sas().is_empty());
}

#[test]
fn dpd_detects_a_dead_peer() {
    let mut mn = mn_config("aes128-sha256-ecp256", "aes128gcm16", "secret");
    mn.dpd_delay = Some(Duration::from_secs(10));
    let mut p = Pair::new(mn, ha_config(), 13);
    p.mn.initiate(p.now, 0, addr(MN), addr(HA)).unwrap();
    p.drive(Duration::from_secs(5));
    assert!(p.mn_established().is_some());
    // The peer answers DPD while alive.
    p.drive(Duration::from_secs(30));
    assert!(
        !p.mn_events
            .iter()
            .any(|e| matches!(e, Event::IkeSaDeleted { .. }))
    );
    // Then it goes silent.
    p.faults.drop_every = 1;
    p.drive(Duration::from_secs(300));
    assert!(
        p.mn_events
            .iter()
            .any(|e| matches!(e, Event::IkeSaDeleted { reason, .. } if reason == "dead peer"))
    );
}

#[test]
fn child_sa_rekeyed_before_expiry() {
    let mut mn = mn_config("aes128-sha256-ecp256", "aes128gcm16", "secret");
    mn.child_lifetime = Duration::from_secs(120);
    mn.rekey_margin = Duration::from_secs(30);
    let mut p = Pair::new(mn, ha_config(), 14);
    let (sa, hoa) = bootstrap(&mut p);
    let [_, tunnel] = rfc3776_requests(hoa);
    p.mn.initiate_child(p.now, sa, tunnel).unwrap();
    p.drive(Duration::from_secs(5));
    assert_eq!(Pair::children(&p.mn_events).len(), 1);
    p.drive(Duration::from_secs(100));
    let c = Pair::children(&p.mn_events);
    assert_eq!(c.len(), 2, "rekeyed once");
    assert_ne!(c[0].spi_in, c[1].spi_in);
    assert!(
        p.ha_events
            .iter()
            .any(|e| matches!(e, Event::ChildSaDeleted { spi_out, .. } if *spi_out == c[0].spi_in)),
        "old SA deleted at the HA"
    );
}

#[test]
fn garbage_never_panics_and_is_counted() {
    let mut p = full_run("aes128-sha256-ecp256", "aes128gcm16", Faults::default(), 15);
    let mut rng = SeededRng::new(99);
    let mut captured = Vec::new();
    // Replay every datagram with bit flips and truncations into both engines.
    p.mn.initiate(p.now, 0, addr(MN), addr(HA)).unwrap();
    while let Some(t) = p.mn.poll_transmit() {
        captured.push(t.data);
    }
    let before = p.ha.counters().clone();
    for i in 0..2000 {
        let mut d = captured[i % captured.len()].clone();
        let mut b = [0u8; 4];
        rng.fill(&mut b);
        let pos = usize::from(b[0]) % d.len();
        d[pos] ^= b[1] | 1;
        if b[2] & 1 == 0 {
            d.truncate(usize::from(b[3]) % d.len());
        }
        p.ha.handle_datagram(p.now, addr(HA), addr(MN), &d);
        p.mn.handle_datagram(p.now, addr(MN), addr(HA), &d);
    }
    let after = p.ha.counters();
    assert!(after.dropped_malformed > before.dropped_malformed);
    assert!(p.ha.half_open_count() <= p.ha.config().max_half_open_per_peer);
}

#[test]
fn transaction_before_phase1_is_refused() {
    let mut p = Pair::new(
        mn_config("aes128-sha256-ecp256", "aes128gcm16", "secret"),
        ha_config(),
        16,
    );
    p.mn.initiate(p.now, 0, addr(MN), addr(HA)).unwrap();
    // Deliver until the HA has sent MM6, then lose MM6.
    while p.ha_sa().is_none() {
        p.collect();
        let (to_ha, t) = p.wire.pop_front().expect("exchange in progress");
        if to_ha {
            p.ha.handle_datagram(p.now, t.remote, t.local, &t.data);
        } else {
            p.mn.handle_datagram(p.now, t.remote, t.local, &t.data);
        }
        p.answer_address_requests();
    }
    p.collect();
    p.wire.clear();
    let ha_sa = p.ha_sa().unwrap();
    p.ha.push_mode_config(
        p.now,
        ha_sa,
        &ModeConfig {
            address: Some("2001:db8:1::77".parse().unwrap()),
            ..ModeConfig::default()
        },
    )
    .unwrap();
    let set = p.ha.poll_transmit().expect("CFG_SET");
    let before = p.mn.counters().dropped_unexpected;
    p.mn.handle_datagram(p.now, set.remote, set.local, &set.data);
    p.answer_address_requests();
    assert_eq!(
        p.mn.counters().dropped_unexpected,
        before + 1,
        "CFG_SET before MM6 is dropped"
    );
    assert!(
        !p.mn_events
            .iter()
            .any(|e| matches!(e, Event::ModeConfigReceived { .. }))
    );
    // MM5 is retransmitted, the HA repeats MM6, and the HA's retransmitted CFG_SET now counts.
    p.drive(Duration::from_secs(60));
    assert!(p.mn_established().is_some());
    let got = p.mn_events.iter().find_map(|e| match e {
        Event::ModeConfigReceived { config, .. } => config.address,
        _ => None,
    });
    assert_eq!(got, Some("2001:db8:1::77".parse().unwrap()));
    assert!(
        p.ha_events
            .iter()
            .any(|e| matches!(e, Event::ModeConfigAcked { .. }))
    );
}

#[test]
fn quick_mode_started_by_the_responder() {
    let mut p = Pair::new(
        mn_config("aes128-sha256-ecp256", "aes128gcm16", "secret"),
        ha_config(),
        17,
    );
    let (_, hoa) = bootstrap(&mut p);
    let ha_sa = p.ha_sa().unwrap();
    let req = ChildRequest {
        mode: Mode::Transport,
        local_ts: TrafficSelector::parse("2001:db8:ff::1[135/0]").unwrap(),
        remote_ts: TrafficSelector::host(hoa.into()).with_protocol(135, 0),
    };
    p.ha.initiate_child(p.now, ha_sa, req).unwrap();
    p.drive(Duration::from_secs(10));
    check_mirrored(&p, 1);
    let c = Pair::children(&p.ha_events)[0];
    assert!(c.initiator);
    assert_eq!(c.mode, Mode::Transport);
    assert!(!Pair::children(&p.mn_events)[0].initiator);
}

#[test]
fn phase1_reauthenticated_before_expiry_and_children_kept() {
    let mut mn = mn_config("aes128-sha256-ecp256", "aes128gcm16", "secret");
    mn.ike_lifetime = Duration::from_secs(300);
    mn.rekey_margin = Duration::from_secs(60);
    let mut p = Pair::new(mn, ha_config(), 18);
    let (sa, hoa) = bootstrap(&mut p);
    let [_, tunnel] = rfc3776_requests(hoa);
    p.mn.initiate_child(p.now, sa, tunnel).unwrap();
    p.drive(Duration::from_secs(5));
    // Past the soft lifetime a second phase 1 comes up; past the hard one the first is deleted.
    p.drive(Duration::from_secs(310));
    let established = p
        .mn_events
        .iter()
        .filter(|e| matches!(e, Event::IkeSaEstablished { .. }))
        .count();
    assert_eq!(established, 2, "re-authenticated once");
    assert!(
        p.mn_events
            .iter()
            .any(|e| matches!(e, Event::IkeSaDeleted { sa: s, .. } if *s == sa))
    );
    assert_eq!(p.mn.ike_sas().len(), 1);
    assert_eq!(p.ha.ike_sas().len(), 1);
    // The child SA moved to the new IKE SA instead of being deleted.
    assert!(
        !p.mn_events
            .iter()
            .any(|e| matches!(e, Event::ChildSaDeleted { .. }))
    );
    assert!(
        !p.ha_events
            .iter()
            .any(|e| matches!(e, Event::ChildSaDeleted { .. }))
    );
    // Both sides say so, naming the children, before the old SA's IkeSaDeleted.
    for (side, events) in [("mn", &p.mn_events), ("ha", &p.ha_events)] {
        let n = Pair::children(events).len();
        assert!(n >= 1, "{side}: no child SA");
        let replaced = events
            .iter()
            .position(|e| matches!(e, Event::IkeSaReplaced { children, .. } if children.len() == n))
            .unwrap_or_else(|| panic!("{side}: no IkeSaReplaced with {n} children"));
        let deleted = events
            .iter()
            .position(|e| matches!(e, Event::IkeSaDeleted { .. }))
            .expect("deleted");
        assert!(replaced < deleted, "{side}: replaced after deleted");
    }
    let Some(Event::IkeSaReplaced { old, new, .. }) = p
        .mn_events
        .iter()
        .find(|e| matches!(e, Event::IkeSaReplaced { .. }))
    else {
        unreachable!()
    };
    assert_eq!(*old, sa);
    assert_eq!(p.mn.ike_sas(), vec![*new]);
}

#[test]
fn exchanges_per_sa_are_bounded() {
    let mut p = Pair::new(
        mn_config("aes128-sha256-ecp256", "aes128gcm16", "secret"),
        ha_config(),
        19,
    );
    let (sa, hoa) = bootstrap(&mut p);
    // 100 Quick Modes at once: the MN queues them, so the HA never holds more than a few.
    let [_, tunnel] = rfc3776_requests(hoa);
    for _ in 0..100 {
        p.mn.initiate_child(p.now, sa, tunnel.clone()).unwrap();
    }
    p.drive(Duration::from_secs(60));
    assert_eq!(Pair::children(&p.mn_events).len(), 100);
    assert_eq!(p.ha.counters().dropped_unexpected, 0);
}

#[test]
fn dpd_ack_repeated_when_lost() {
    let mut mn = mn_config("aes128-sha256-ecp256", "aes128gcm16", "secret");
    mn.dpd_delay = Some(Duration::from_secs(10));
    let mut p = Pair::new(mn, ha_config(), 20);
    p.mn.initiate(p.now, 0, addr(MN), addr(HA)).unwrap();
    p.drive(Duration::from_secs(5));
    assert!(p.mn_established().is_some());
    // Jump to the DPD deadline: the MN sends R-U-THERE.
    p.now += Duration::from_secs(11);
    p.mn.handle_timeout(p.now);
    let rut = p.mn.poll_transmit().expect("R-U-THERE");
    p.ha.handle_datagram(p.now, rut.remote, rut.local, &rut.data);
    let _lost_ack = p.ha.poll_transmit().expect("R-U-THERE-ACK");
    // The MN repeats the R-U-THERE; the HA answers it again.
    let t = p.mn.poll_timeout().expect("retransmission timer");
    p.now = t;
    p.mn.handle_timeout(p.now);
    let again = p.mn.poll_transmit().expect("repeated R-U-THERE");
    assert_eq!(again.data, rut.data);
    p.ha.handle_datagram(p.now, again.remote, again.local, &again.data);
    let ack = p.ha.poll_transmit().expect("the ACK sent again");
    p.mn.handle_datagram(p.now, ack.remote, ack.local, &ack.data);
    p.drive(Duration::from_secs(5));
    assert!(
        !p.mn_events
            .iter()
            .any(|e| matches!(e, Event::IkeSaDeleted { .. }))
    );
}
