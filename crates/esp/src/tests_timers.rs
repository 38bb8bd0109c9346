//! Timer tests: the SAD's deadline index against a scan of every SA.
//!
//! The time limits are RFC 4301 §4.4.2.1's soft and hard lifetimes. [`Esp::poll_timeout`] must
//! equal the earliest pending deadline of any SA, and [`Esp::handle_timeout`] must raise the
//! events of exactly the SAs a scan of every slot would, in slot order, whatever sequence of
//! installs, removals, lifetime changes, traffic (which fires byte, packet and sequence-number
//! limits, RFC 4303 §3.3.3) and timeouts came before.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use crate::lifetime::LifetimeState;
use crate::*;

const GCM: Transform = Transform::AesGcm16 { key_bits: 128 };
const KEY: [u8; 20] = [0x5a; 20];

/// SplitMix64: a small seeded generator, so a failure reproduces from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn secs(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo * 1000 + self.below((hi - lo) * 1000))
    }
}

/// A random lifetime: time limits (soft before or after hard, or absent), sometimes a packet
/// limit, sometimes nothing at all.
fn random_lifetime(rng: &mut Rng) -> Lifetime {
    let mut l = Lifetime::UNLIMITED;
    if rng.chance(75) {
        l.soft.time = Some(rng.secs(1, 200));
    }
    if rng.chance(75) {
        l.hard.time = Some(rng.secs(1, 300));
    }
    if rng.chance(25) {
        l.soft.packets = Some(1 + rng.below(4));
    }
    if rng.chance(25) {
        l.hard.packets = Some(2 + rng.below(6));
    }
    l
}

/// The old `poll_timeout`: a scan of every SA.
fn scan_deadline(esp: &Esp) -> Option<Instant> {
    esp.sad
        .iter()
        .filter_map(|(_, sa)| sa.life.deadline())
        .min()
}

/// The events the old `handle_timeout` (a scan of every slot, in order) would raise at `now`,
/// computed on copies of the SAs' lifetime state.
fn scan_timeout_events(esp: &Esp, now: Instant) -> Vec<SaEvent> {
    let mut events = Vec::new();
    for (handle, sa) in esp.sad.iter() {
        let exp = sa.life.clone().on_time(now);
        let (spi, direction) = (sa.spi, sa.direction);
        if exp.soft {
            events.push(SaEvent::SoftExpired {
                handle,
                spi,
                direction,
            });
        }
        if exp.hard {
            events.push(SaEvent::HardExpired {
                handle,
                spi,
                direction,
            });
        }
    }
    events
}

fn drain(esp: &mut Esp) -> Vec<SaEvent> {
    std::iter::from_fn(|| esp.poll_event()).collect()
}

fn inner_packet() -> Vec<u8> {
    let src = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x1000);
    let dst = Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 5);
    let udp = [0x04, 0xd2, 0x16, 0x2e, 0, 12, 0, 0, 1, 2, 3, 4];
    let mut out = Vec::new();
    build_ipv6_packet(src, dst, 17, 64, &udp, &mut out).unwrap();
    out
}

/// One random run of `steps` operations; after each, the index must match a scan.
fn run(seed: u64, steps: usize) {
    let mut rng = Rng(seed);
    let mut now = Instant::now();
    let mut esp = Esp::new();
    // Every handle ever issued (removed ones too: stale handles must do nothing).
    let mut handles: Vec<SaHandle> = Vec::new();
    let mut live: Vec<SaHandle> = Vec::new();
    let mut next_spi = 1u32;
    let mut next_seq = 1u32;
    let inner = inner_packet();
    let mut out = Vec::new();
    let mut sealed = Vec::new();
    let peer = IpAddr::V6(Ipv6Addr::LOCALHOST);
    let (mut timeouts, mut fired) = (0usize, 0usize);

    for step in 0..steps {
        let ctx = format!("seed {seed:#x}, step {step}");
        if rng.chance(40) {
            now += rng.secs(0, 20);
        }
        match rng.below(100) {
            // Install.
            0..=24 if live.len() < 64 => {
                let direction = if rng.chance(50) {
                    Direction::Inbound
                } else {
                    Direction::Outbound
                };
                let p = SaParams::new(next_spi, direction, Mode::Tunnel, GCM, &KEY, &[])
                    .with_lifetime(random_lifetime(&mut rng));
                next_spi += 1;
                let h = esp.add_sa(now, &p).unwrap();
                handles.push(h);
                live.push(h);
            }
            // Remove, sometimes through a stale handle.
            25..=34 if !handles.is_empty() => {
                let h = handles[rng.below(handles.len() as u64) as usize];
                let was_live = live.contains(&h);
                assert_eq!(esp.remove_sa(h), was_live, "{ctx}");
                live.retain(|&l| l != h);
            }
            // Replace the lifetime (the deadline may move earlier, later or away).
            35..=44 if !live.is_empty() => {
                let h = live[rng.below(live.len() as u64) as usize];
                let life = LifetimeState::new(now, random_lifetime(&mut rng));
                esp.sad.get_mut(h).unwrap().life = life;
            }
            // Outbound traffic (through an inbound SA too: dropped, changes nothing).
            45..=59 if !live.is_empty() => {
                let h = live[rng.below(live.len() as u64) as usize];
                let _ = esp.encapsulate_with(now, h, &inner, &mut out);
            }
            // Sequence numbers near their soft limit or exhausted.
            60..=62 if !live.is_empty() => {
                let h = live[rng.below(live.len() as u64) as usize];
                let seq = if rng.chance(50) {
                    SEQ_SOFT_LIMIT
                } else {
                    u32::MAX
                };
                esp.sad.get_mut(h).unwrap().next_seq = u64::from(seq);
                let _ = esp.encapsulate_with(now, h, &inner, &mut out);
            }
            // Inbound traffic: a genuine dummy packet (counted: packet limits) or junk
            // (rejected, but the time limits are still checked first).
            63..=77 if !live.is_empty() => {
                let h = live[rng.below(live.len() as u64) as usize];
                let spi = esp.sad.get(h).unwrap().spi;
                if rng.chance(70) && esp.seal_plaintext(spi, next_seq, &[1, 2, 2, 59], &mut sealed)
                {
                    next_seq += 1;
                } else {
                    sealed.clear();
                    sealed.extend_from_slice(&spi.to_be_bytes());
                    sealed.resize(8 + rng.below(60) as usize, 0xee);
                }
                let _ = esp.decapsulate(now, peer, &sealed, &mut out);
            }
            // Endpoints (no deadline change).
            78..=79 if !live.is_empty() => {
                let h = live[rng.below(live.len() as u64) as usize];
                let a = SocketAddr::new(peer, 4500);
                esp.set_endpoints(h, a, a).unwrap();
            }
            // A timeout, at the deadline, before it or after it.
            _ => {
                let _ = drain(&mut esp);
                let at = match (esp.poll_timeout(), rng.below(3)) {
                    (Some(t), 0) => t,
                    (Some(t), 1) => t.max(now) + rng.secs(0, 30),
                    _ => now,
                };
                now = now.max(at);
                let expected = scan_timeout_events(&esp, at);
                esp.handle_timeout(at);
                let got = drain(&mut esp);
                assert_eq!(got, expected, "{ctx}");
                timeouts += 1;
                fired += got.len();
                // Nothing due is left behind.
                assert!(scan_deadline(&esp).is_none_or(|t| t > at), "{ctx}");
            }
        }
        let _ = drain(&mut esp);
        assert_eq!(esp.poll_timeout(), scan_deadline(&esp), "{ctx}");
        esp.sad.assert_index_consistent();
    }
    // The run exercised what it claims to.
    assert!(timeouts > steps / 10, "seed {seed:#x}: {timeouts} timeouts");
    assert!(fired > 0, "seed {seed:#x}: no timer fired");
}

#[test]
fn poll_timeout_matches_a_scan_over_random_operations() {
    for seed in [1, 0x5eed, 0xdead_beef, 0x0123_4567_89ab_cdef] {
        run(seed, 3000);
    }
}

/// An SA with a time lifetime (`soft`, `hard` in seconds) and the given direction.
fn timed(spi: u32, direction: Direction, soft: u64, hard: u64) -> SaParams {
    SaParams::new(spi, direction, Mode::Tunnel, GCM, &KEY, &[]).with_lifetime(Lifetime::time(
        Duration::from_secs(soft),
        Duration::from_secs(hard),
    ))
}

#[test]
fn timeout_fires_exactly_the_due_sas_in_slot_order() {
    let t0 = Instant::now();
    let s = Duration::from_secs;
    let mut esp = Esp::new();
    // Slot order differs from deadline order.
    let a = esp
        .add_sa(t0, &timed(1, Direction::Outbound, 30, 60))
        .unwrap();
    let b = esp
        .add_sa(t0, &timed(2, Direction::Inbound, 10, 40))
        .unwrap();
    let c = esp
        .add_sa(t0, &timed(3, Direction::Inbound, 20, 25))
        .unwrap();
    let d = esp
        .add_sa(t0, &timed(4, Direction::Outbound, 500, 900))
        .unwrap();
    let _unlimited = esp
        .add_sa(
            t0,
            &SaParams::new(5, Direction::Inbound, Mode::Tunnel, GCM, &KEY, &[]),
        )
        .unwrap();
    let soft = |handle, spi, direction| SaEvent::SoftExpired {
        handle,
        spi,
        direction,
    };
    let hard = |handle, spi, direction| SaEvent::HardExpired {
        handle,
        spi,
        direction,
    };
    assert_eq!(esp.poll_timeout(), Some(t0 + s(10)));

    // Nothing is due just before the first deadline.
    esp.handle_timeout(t0 + s(10) - Duration::from_nanos(1));
    assert_eq!(drain(&mut esp), []);
    assert_eq!(esp.poll_timeout(), Some(t0 + s(10)));

    // At 30 s: a (soft at 30), b (soft at 10), c (soft at 20, hard at 25: both at once) are
    // due; d is not. Events in slot order a, b, c, not in deadline order.
    esp.handle_timeout(t0 + s(30));
    assert_eq!(
        drain(&mut esp),
        [
            soft(a, 1, Direction::Outbound),
            soft(b, 2, Direction::Inbound),
            soft(c, 3, Direction::Inbound),
            hard(c, 3, Direction::Inbound),
        ]
    );
    assert_eq!(esp.poll_timeout(), Some(t0 + s(40)));
    esp.sad.assert_index_consistent();

    // Firing again at the same time raises nothing.
    esp.handle_timeout(t0 + s(30));
    assert_eq!(drain(&mut esp), []);

    // Removing b takes its deadline with it; a slot reused by a new SA gets its own.
    assert!(esp.remove_sa(b));
    assert_eq!(esp.poll_timeout(), Some(t0 + s(60)));
    let e = esp
        .add_sa(t0 + s(30), &timed(6, Direction::Inbound, 5, 50))
        .unwrap();
    assert_eq!(esp.poll_timeout(), Some(t0 + s(35)));
    esp.sad.assert_index_consistent();
    // The stale handle of b reaches nothing.
    assert!(!esp.remove_sa(b));
    assert_eq!(esp.poll_timeout(), Some(t0 + s(35)));

    // At 60 s: e's soft (35) and a's hard (60); a is in slot 0, e in b's old slot 1.
    esp.handle_timeout(t0 + s(60));
    assert_eq!(
        drain(&mut esp),
        [
            hard(a, 1, Direction::Outbound),
            soft(e, 6, Direction::Inbound)
        ]
    );
    assert_eq!(esp.poll_timeout(), Some(t0 + s(80)));

    // Far in the future: e's hard, then d's soft and hard together.
    esp.handle_timeout(t0 + s(1000));
    assert_eq!(
        drain(&mut esp),
        [
            hard(e, 6, Direction::Inbound),
            soft(d, 4, Direction::Outbound),
            hard(d, 4, Direction::Outbound),
        ]
    );
    assert_eq!(esp.poll_timeout(), None);
    esp.sad.assert_index_consistent();
}

#[test]
fn traffic_limits_move_the_deadline() {
    let t0 = Instant::now();
    let s = Duration::from_secs;
    let mut esp = Esp::new();
    let mut p = timed(1, Direction::Outbound, 100, 200);
    p.lifetime.soft.packets = Some(1);
    p.lifetime.hard.packets = Some(2);
    let h = esp.add_sa(t0, &p).unwrap();
    assert_eq!(esp.poll_timeout(), Some(t0 + s(100)));
    let inner = inner_packet();
    let mut out = Vec::new();
    // The first packet reaches the soft packet limit: the soft time deadline is gone.
    assert!(matches!(
        esp.encapsulate_with(t0, h, &inner, &mut out),
        EspAction::ToNetwork(_)
    ));
    assert!(matches!(drain(&mut esp)[..], [SaEvent::SoftExpired { .. }]));
    assert_eq!(esp.poll_timeout(), Some(t0 + s(200)));
    // The second the hard one: no deadline is left.
    assert!(matches!(
        esp.encapsulate_with(t0, h, &inner, &mut out),
        EspAction::ToNetwork(_)
    ));
    assert!(matches!(drain(&mut esp)[..], [SaEvent::HardExpired { .. }]));
    assert_eq!(esp.poll_timeout(), None);
    esp.handle_timeout(t0 + s(1000));
    assert_eq!(drain(&mut esp), []);
    esp.sad.assert_index_consistent();
}
