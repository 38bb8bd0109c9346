//! Regression tests for what the engine fuzz targets (`fuzz/fuzz_targets/ike_responder.rs`,
//! `fuzz/fuzz_targets/ike_pair.rs`) found, each as a hand-made equivalent of the crashing input
//! driven through the public API.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ikev1::crypto::SeededRng;
use ikev1::{
    Config, Engine, EspProposal, Event, Identity, IkeProposal, LocalAuth, PeerAuth, PeerConfig,
    Transmit,
};

const MN: &str = "[2001:db8:ff::2]:500";
const HA: &str = "[2001:db8:ff::1]:500";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn psk(s: &str) -> PeerAuth {
    PeerAuth::Psk(s.as_bytes().to_vec().into())
}

fn mn_config() -> Config {
    let mut c = Config::new(Identity::parse("mn1@example.com"), LocalAuth::Psk);
    c.ike_proposals = vec![IkeProposal::parse("aes128-sha256-ecp256", false).unwrap()];
    c.esp_proposals = vec![EspProposal::parse("aes128gcm16", false).unwrap()];
    c.peers = vec![PeerConfig {
        identity: Identity::parse("ha.example.com"),
        auth: psk("secret"),
        addrs: vec![],
    }];
    c
}

fn ha_config() -> Config {
    let mut c = Config::new(Identity::parse("ha.example.com"), LocalAuth::Psk);
    c.peers = vec![PeerConfig {
        identity: Identity::parse("mn1@example.com"),
        auth: psk("secret"),
        addrs: vec![],
    }];
    c
}

/// Delivers every datagram between the two engines, in order and without loss, until none is
/// in flight (the clock does not move).
fn exchange_all(mn: &mut Engine, ha: &mut Engine, now: Instant) {
    let mut wire: VecDeque<(bool, Transmit)> = VecDeque::new();
    for _ in 0..1000 {
        while let Some(t) = mn.poll_transmit() {
            wire.push_back((true, t));
        }
        while let Some(t) = ha.poll_transmit() {
            wire.push_back((false, t));
        }
        let Some((to_ha, t)) = wire.pop_front() else {
            return;
        };
        if to_ha {
            ha.handle_datagram(now, t.remote, t.local, &t.data);
        } else {
            mn.handle_datagram(now, t.remote, t.local, &t.data);
        }
    }
    panic!("no end to the exchange");
}

/// `ike_pair` crash-11f4de6b8b45cf8051b1d17fa4cde9ad935cea41 (input `0d`: forced NAT-T and
/// short lifetimes, so the mobile node re-authenticates from the same address): the home agent
/// counts unfinished phase-1 exchanges per peer address and releases the count when phase 1
/// completes, but looked the SA up under the peer's *floated* address (port 4500) instead of the
/// address of its MM1 (port 500). The count leaked once per NAT-T phase 1, and after
/// `max_half_open_per_peer` of them every MM1 from that address was refused for good.
#[test]
fn nat_t_float_releases_the_half_open_count() {
    let mut ha_cfg = ha_config();
    ha_cfg.max_half_open_per_peer = 1;
    let now = Instant::now();
    let mut ha = Engine::new(ha_cfg, Box::new(SeededRng::new(1)));
    for round in 0..3u64 {
        let mut c = mn_config();
        c.force_encap = true;
        let mut mn = Engine::new(c, Box::new(SeededRng::new(10 + round)));
        let t = now + Duration::from_secs(round);
        mn.initiate(t, 0, addr(MN), addr(HA)).unwrap();
        exchange_all(&mut mn, &mut ha, t);
        let mut nat = None;
        while let Some(e) = mn.poll_event() {
            if let Event::IkeSaEstablished { nat: n, .. } = e {
                nat = Some(n);
            }
        }
        assert_eq!(
            nat,
            Some(true),
            "round {round}: phase 1 over NAT-T; {:?} half open {}",
            ha.counters(),
            ha.half_open_count()
        );
        assert_eq!(ha.half_open_count(), 0, "round {round}");
    }
    assert_eq!(ha.counters().dropped_half_open_limit, 0);
    assert_eq!(ha.counters().ike_established, 3);
}
