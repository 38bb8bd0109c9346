//! Regression tests for what the engine fuzz targets (`fuzz/fuzz_targets/ike_*.rs`) found and
//! the public API cannot observe; the others are in `tests/fuzz_regressions.rs`.

use std::time::{Duration, Instant};

use crate::crypto::SeededRng;
use crate::phase2::MAX_EXCHANGES;
use crate::{Config, Engine, Identity, IkeProposal, LocalAuth, PeerAuth, PeerConfig};

fn config(local: &str, peer: &str) -> Config {
    let mut c = Config::new(Identity::parse(local), LocalAuth::Psk);
    c.ike_proposals = vec![IkeProposal::parse("aes128-sha256-ecp256", false).unwrap()];
    c.peers = vec![PeerConfig {
        identity: Identity::parse(peer),
        auth: PeerAuth::Psk(b"secret".to_vec().into()),
        addrs: vec![],
    }];
    c
}

fn exchanges(e: &Engine) -> usize {
    e.sas.values().map(|s| s.exchanges.len()).sum()
}

/// `ike_pair` crash-486305d0f9b14dcb68c87c1208e34dfc66c8d9c7: with the link holding datagrams
/// back, the mobile node received a burst of R-U-THEREs and held two exchanges for each, the
/// peer's and the one of its own R-U-THERE-ACK. Only the first kind counted against
/// `MAX_EXCHANGES`, so the number an SA held grew with the peer's message rate (one per message
/// over `KEEP_DONE`) instead of staying under the bound. Here the home agent sends an
/// R-U-THERE every 10 ms for 20 s: 2000 of them within `KEEP_DONE`.
#[test]
fn answers_stay_within_the_exchange_bound() {
    let mut ha_cfg = config("ha.example.com", "mn1@example.com");
    ha_cfg.dpd_delay = Some(Duration::from_millis(10));
    let mut ha = Engine::new(ha_cfg, Box::new(SeededRng::new(1)));
    let mut mn = Engine::new(
        config("mn1@example.com", "ha.example.com"),
        Box::new(SeededRng::new(2)),
    );
    let t0 = Instant::now();
    let mut now = t0;
    let (mn_addr, ha_addr) = (
        "[2001:db8:ff::2]:500".parse().unwrap(),
        "[2001:db8:ff::1]:500".parse().unwrap(),
    );
    mn.initiate(now, 0, mn_addr, ha_addr).unwrap();
    let mut most = 0;
    while now < t0 + Duration::from_secs(20) {
        loop {
            let mut any = false;
            while let Some(t) = mn.poll_transmit() {
                ha.handle_datagram(now, t.remote, t.local, &t.data);
                any = true;
            }
            while let Some(t) = ha.poll_transmit() {
                mn.handle_datagram(now, t.remote, t.local, &t.data);
                any = true;
            }
            if !any {
                break;
            }
        }
        most = most.max(exchanges(&mn));
        let next = [mn.poll_timeout(), ha.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
            .expect("DPD keeps a timer");
        now = now.max(next);
        mn.handle_timeout(now);
        ha.handle_timeout(now);
    }
    assert!(ha.counters().received > 1000, "{:?}", ha.counters());
    assert_eq!(ha.ike_sas().len(), 1);
    assert!(
        most <= MAX_EXCHANGES,
        "the mobile node held {most} exchanges on one IKE SA"
    );
}

/// `ike_responder` crash-d69b7bea0a7e4fa8bbdc7c9aed597d7bc702b9a6: the clock leapt (as after a
/// suspend) past the time budget of a request whose retransmission was also due. The
/// retransmission went out and armed a new one, but the budget's deadline stayed behind in
/// the past, so `poll_timeout` kept answering a past instant and the driver would spin. Past
/// its budget a request has failed; no deadline is left at or before `now`.
#[test]
fn a_clock_leap_fails_the_request_instead_of_leaving_a_past_deadline() {
    use crate::{ChildRequest, Event, FailReason, Mode, TrafficSelector};
    let mut ha = Engine::new(
        config("ha.example.com", "mn1@example.com"),
        Box::new(SeededRng::new(1)),
    );
    let mut mn = Engine::new(
        config("mn1@example.com", "ha.example.com"),
        Box::new(SeededRng::new(2)),
    );
    let t0 = Instant::now();
    let (mn_addr, ha_addr) = (
        "[2001:db8:ff::2]:500".parse().unwrap(),
        "[2001:db8:ff::1]:500".parse().unwrap(),
    );
    let sa = mn.initiate(t0, 0, mn_addr, ha_addr).unwrap();
    for _ in 0..4 {
        while let Some(t) = mn.poll_transmit() {
            ha.handle_datagram(t0, t.remote, t.local, &t.data);
        }
        while let Some(t) = ha.poll_transmit() {
            mn.handle_datagram(t0, t.remote, t.local, &t.data);
        }
    }
    assert!(mn.ike_sa_info(sa).unwrap().established);
    while mn.poll_event().is_some() {}
    let any = TrafficSelector::parse("::/0").unwrap();
    let req = ChildRequest {
        mode: Mode::Tunnel,
        local_ts: any,
        remote_ts: any,
    };
    mn.initiate_child(t0, sa, req).unwrap();
    // QM1 is lost; the node sleeps for an hour.
    while mn.poll_transmit().is_some() {}
    let later = t0 + Duration::from_secs(3600);
    mn.handle_timeout(later);
    assert!(
        mn.poll_timeout().is_none_or(|t| t > later),
        "a deadline left in the past: {:?}",
        mn.poll_timeout()
    );
    let failed = std::iter::from_fn(|| mn.poll_event()).any(|e| {
        matches!(
            e,
            Event::ChildSaFailed {
                reason: FailReason::Timeout,
                ..
            }
        )
    });
    assert!(failed, "the Quick Mode is reported timed out");
    assert!(
        mn.poll_transmit().is_none(),
        "no retransmission past the budget"
    );
}
