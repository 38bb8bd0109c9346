//! ESP data-plane micro-benchmarks (issue 6): seal ([`Esp::encapsulate`]) and open
//! ([`Esp::decapsulate`]) per transform, tunnel mode, raw ESP, for inner IPv6/UDP packets
//! whose UDP payload is 64, 512 and 1400 bytes. Throughput is the inner packet's length.
//!
//! Seal goes through the SPD lookup (one PROTECT entry, as on the home agent) and reuses the
//! output buffer, as the daemon does. Open runs with anti-replay on: every iteration opens a
//! freshly sealed packet (sealed in criterion's untimed setup), in sequence order.
//!
//! Timers (`sad/…`): [`Esp::poll_timeout`], which the tunnel driver calls on every loop
//! iteration, and [`Esp::handle_timeout`] with nothing due, over 10,000 SAs with time
//! lifetimes (half inbound, half outbound; deadlines spread over an hour).
//!
//! SPD (`spd/…`): a home agent's SPD for 10,000 mobile nodes, built as the tunnel driver
//! builds it (per node a transport-mode protocol-135 entry `HA/128 → HoA/128` inserted at the
//! front and a tunnel-mode entry `::/0 → HoA/128` appended), between a few catch-alls (IKE
//! and ICMPv6 bypasses first, a final DISCARD everything): 20,004 entries. `lookup` finds the
//! tunnel entry of a node (1,024 nodes taken in turn), `lookup_miss` a destination no node
//! has (the final DISCARD), `encapsulate` seals a 64-byte packet to a node end to end.
//!
//! Run: `cargo bench -p esp --bench esp` (timers only: `... -- sad/`, SPD only: `... -- spd/`).

use std::hint::black_box;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use esp::{
    Direction, Esp, EspAction, Lifetime, Mode, PacketInfo, PolicyAction, Prefix, SaParams,
    Selector, SpdEntry, Transform, build_ipv6_packet,
};

const SPI: u32 = 0x1234_5678;
const MN_COA: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xff, 0, 0, 0, 0, 2);
const HA: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xff, 0, 0, 0, 0, 1);
const HOA: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x1000);
const CN: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 5);
const SIZES: [usize; 3] = [64, 512, 1400];

/// (name, transform, encryption key (GCM: with the 4-byte salt), integrity key).
fn suites() -> Vec<(&'static str, Transform, Vec<u8>, Vec<u8>)> {
    vec![
        (
            "aes128gcm16",
            Transform::AesGcm16 { key_bits: 128 },
            vec![0x11; 16 + 4],
            vec![],
        ),
        (
            "aes256gcm16",
            Transform::AesGcm16 { key_bits: 256 },
            vec![0x22; 32 + 4],
            vec![],
        ),
        (
            "aes128cbc-sha1_96",
            Transform::AesCbcHmacSha1_96 { key_bits: 128 },
            vec![0x33; 16],
            vec![0x44; 20],
        ),
        (
            "aes128cbc-sha256_128",
            Transform::AesCbcHmacSha256_128 { key_bits: 128 },
            vec![0x55; 16],
            vec![0x66; 32],
        ),
    ]
}

/// A sender (the mobile node: outbound SA, PROTECT everything) and a receiver (the home agent:
/// the matching inbound SA).
fn pair(now: Instant, t: Transform, ek: &[u8], ik: &[u8]) -> (Esp, Esp) {
    let mn = SocketAddr::new(IpAddr::V6(MN_COA), 0);
    let ha = SocketAddr::new(IpAddr::V6(HA), 0);
    let mut tx = Esp::new();
    let out = tx
        .add_sa(
            now,
            &SaParams::new(SPI, Direction::Outbound, Mode::Tunnel, t, ek, ik)
                .with_endpoints(mn, ha),
        )
        .unwrap();
    tx.spd_mut().push(SpdEntry {
        selector: Selector::ANY,
        direction: Direction::Outbound,
        action: PolicyAction::Protect(out),
    });
    let mut rx = Esp::new();
    rx.add_sa(
        now,
        &SaParams::new(SPI, Direction::Inbound, Mode::Tunnel, t, ek, ik).with_endpoints(ha, mn),
    )
    .unwrap();
    (tx, rx)
}

/// An IPv6/UDP packet HoA → CN with `len` bytes of UDP payload.
fn inner_packet(len: usize) -> Vec<u8> {
    let mut udp = Vec::with_capacity(8 + len);
    udp.extend_from_slice(&1234u16.to_be_bytes());
    udp.extend_from_slice(&5678u16.to_be_bytes());
    udp.extend_from_slice(&u16::try_from(8 + len).unwrap().to_be_bytes());
    udp.extend_from_slice(&[0, 0]);
    udp.extend((0..len).map(|i| (i * 7) as u8));
    let mut out = Vec::new();
    build_ipv6_packet(HOA, CN, 17, 64, &udp, &mut out).unwrap();
    out
}

fn seal(tx: &mut Esp, now: Instant, inner: &[u8], out: &mut Vec<u8>) -> Vec<u8> {
    match tx.encapsulate(now, inner, out) {
        EspAction::ToNetwork(t) => t.data.to_vec(),
        other => panic!("expected ToNetwork, got {other:?}"),
    }
}

fn bench(c: &mut Criterion) {
    let now = Instant::now();
    for (name, t, ek, ik) in suites() {
        let mut g = c.benchmark_group(format!("esp/{name}"));
        for size in SIZES {
            let inner = inner_packet(size);
            g.throughput(Throughput::Bytes(inner.len() as u64));

            // Round trip once, so a broken setup fails loudly rather than timing drops.
            let (mut tx, mut rx) = pair(now, t, &ek, &ik);
            let mut out = Vec::with_capacity(2048);
            let esp = seal(&mut tx, now, &inner, &mut out);
            match rx.decapsulate(now, IpAddr::V6(MN_COA), &esp, &mut out) {
                EspAction::ToTun(p) => assert_eq!(p, &inner[..], "{name}/{size}"),
                other => panic!("{name}/{size}: expected ToTun, got {other:?}"),
            }

            g.bench_with_input(BenchmarkId::new("seal", size), &inner, |b, inner| {
                let mut out = Vec::with_capacity(2048);
                b.iter(|| match tx.encapsulate(now, black_box(inner), &mut out) {
                    EspAction::ToNetwork(t) => t.data.len(),
                    other => panic!("seal: {other:?}"),
                });
            });

            g.bench_with_input(BenchmarkId::new("open", size), &inner, |b, inner| {
                let (mut tx, mut rx) = pair(now, t, &ek, &ik);
                let mut sealed = Vec::with_capacity(2048);
                let mut out = Vec::with_capacity(2048);
                b.iter_batched(
                    || seal(&mut tx, now, inner, &mut sealed),
                    |esp| {
                        let n = match rx.decapsulate(now, IpAddr::V6(MN_COA), &esp, &mut out) {
                            EspAction::ToTun(p) => p.len(),
                            other => panic!("open: {other:?}"),
                        };
                        // Returned, so that freeing the input is not timed.
                        (n, esp)
                    },
                    BatchSize::SmallInput,
                );
            });
        }
        g.finish();
    }
}

/// An engine holding `n` SAs with time lifetimes, as a home agent with `n / 2` to `n / 4`
/// mobile nodes would.
fn many_sas(now: Instant, n: u32) -> Esp {
    let mut esp = Esp::new();
    let t = Transform::AesGcm16 { key_bits: 128 };
    let ek = [0x11; 20];
    for i in 0..n {
        let direction = if i % 2 == 0 {
            Direction::Inbound
        } else {
            Direction::Outbound
        };
        // Spread the deadlines: soft between 50 and 60 minutes, hard 10 minutes later.
        let soft = Duration::from_secs(3000) + Duration::from_millis(u64::from(i) * 7919 % 600_000);
        let life = Lifetime::time(soft, soft + Duration::from_secs(600));
        esp.add_sa(
            now,
            &SaParams::new(0x1000 + i, direction, Mode::Tunnel, t, &ek, &[]).with_lifetime(life),
        )
        .unwrap();
    }
    esp
}

fn bench_timers(c: &mut Criterion) {
    const N: u32 = 10_000;
    let now = Instant::now();
    let mut esp = many_sas(now, N);
    assert!(esp.poll_timeout().is_some_and(|t| t > now));
    let mut g = c.benchmark_group("sad");
    g.bench_function(BenchmarkId::new("poll_timeout", N), |b| {
        b.iter(|| black_box(&esp).poll_timeout());
    });
    g.bench_function(BenchmarkId::new("handle_timeout_none_due", N), |b| {
        b.iter(|| {
            esp.handle_timeout(black_box(now + Duration::from_secs(1)));
            esp.poll_event()
        });
    });
    g.finish();
}

/// The home address of mobile node `i`.
fn node_hoa(i: u32) -> Ipv6Addr {
    Ipv6Addr::from(u128::from(Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0)) + u128::from(i) + 1)
}

/// A home agent's engine with `nodes` mobile nodes' outbound SAs and SPD entries (see the
/// module doc): `2 * nodes + 4` entries.
fn home_agent(now: Instant, nodes: u32) -> Esp {
    let t = Transform::AesGcm16 { key_bits: 128 };
    let ek = [0x11; 20];
    let ha = SocketAddr::new(IpAddr::V6(HA), 0);
    let mut esp = Esp::new();
    let bypass = |selector| SpdEntry {
        selector,
        direction: Direction::Outbound,
        action: PolicyAction::Bypass,
    };
    for port in [500, 4500] {
        esp.spd_mut().push(bypass(Selector {
            next_proto: Some(17),
            src_port: Some(port),
            ..Selector::ANY
        }));
    }
    esp.spd_mut().push(bypass(Selector {
        next_proto: Some(58),
        ..Selector::ANY
    }));
    for i in 0..nodes {
        let hoa = node_hoa(i);
        let coa = SocketAddr::new(IpAddr::V6(Ipv6Addr::from(u128::from(hoa) + (1 << 80))), 0);
        let transport = Selector {
            next_proto: Some(135),
            ..Selector::between(Prefix::host(HA), Prefix::host(hoa))
        };
        let tunnel = Selector::between(Prefix::ANY, Prefix::host(hoa));
        for (k, (mode, selector)) in [(Mode::Transport, transport), (Mode::Tunnel, tunnel)]
            .into_iter()
            .enumerate()
        {
            let spi = 0x1000 + 2 * i + k as u32;
            let h = esp
                .add_sa(
                    now,
                    &SaParams::new(spi, Direction::Outbound, mode, t, &ek, &[])
                        .with_endpoints(ha, coa)
                        .with_selector(selector),
                )
                .unwrap();
            let entry = SpdEntry {
                selector,
                direction: Direction::Outbound,
                action: PolicyAction::Protect(h),
            };
            if selector.next_proto.is_some() {
                esp.spd_mut().insert(0, entry);
            } else {
                esp.spd_mut().push(entry);
            }
        }
    }
    esp.spd_mut().push(SpdEntry {
        selector: Selector::ANY,
        direction: Direction::Outbound,
        action: PolicyAction::Discard,
    });
    esp
}

/// An IPv6/UDP packet CN → `dst` with 64 bytes of payload.
fn packet_to(dst: Ipv6Addr) -> Vec<u8> {
    let mut udp = vec![0u8; 8 + 64];
    udp[..2].copy_from_slice(&1234u16.to_be_bytes());
    udp[2..4].copy_from_slice(&5678u16.to_be_bytes());
    udp[4..6].copy_from_slice(&72u16.to_be_bytes());
    let mut out = Vec::new();
    build_ipv6_packet(CN, dst, 17, 64, &udp, &mut out).unwrap();
    out
}

fn bench_spd(c: &mut Criterion) {
    const NODES: u32 = 10_000;
    let now = Instant::now();
    let mut esp = home_agent(now, NODES);
    let entries = esp.spd().len();
    // 1,024 nodes spread over the table, in a scrambled order.
    let packets: Vec<Vec<u8>> = (0..1024u32)
        .map(|k| packet_to(node_hoa(k.wrapping_mul(2_654_435_761) % NODES)))
        .collect();
    let infos: Vec<PacketInfo> = packets
        .iter()
        .map(|p| PacketInfo::parse(p).unwrap())
        .collect();
    for info in &infos {
        let e = esp.spd().lookup(Direction::Outbound, info).unwrap();
        assert!(matches!(e.action, PolicyAction::Protect(_)));
        assert_eq!(e.selector.dst, Prefix::host(info.sel_dst));
        assert!(e.selector.src.is_any());
    }
    let miss = PacketInfo::parse(&packet_to(CN)).unwrap();
    assert_eq!(
        esp.spd().lookup(Direction::Outbound, &miss).unwrap().action,
        PolicyAction::Discard
    );

    let mut g = c.benchmark_group("spd");
    g.bench_function(BenchmarkId::new("lookup", entries), |b| {
        let spd = esp.spd();
        let mut k = 0;
        b.iter(|| {
            k = (k + 1) % infos.len();
            spd.lookup(Direction::Outbound, black_box(&infos[k]))
                .map(|e| e.action)
        });
    });
    g.bench_function(BenchmarkId::new("lookup_miss", entries), |b| {
        let spd = esp.spd();
        b.iter(|| {
            spd.lookup(Direction::Outbound, black_box(&miss))
                .map(|e| e.action)
        });
    });
    g.bench_function(BenchmarkId::new("encapsulate", entries), |b| {
        let mut out = Vec::with_capacity(2048);
        let mut k = 0;
        b.iter(|| {
            k = (k + 1) % packets.len();
            match esp.encapsulate(now, black_box(&packets[k]), &mut out) {
                EspAction::ToNetwork(t) => t.data.len(),
                other => panic!("encapsulate: {other:?}"),
            }
        });
    });
    g.finish();
}

criterion_group!(benches, bench, bench_timers, bench_spd);
criterion_main!(benches);
