//! ESP data-plane micro-benchmarks (issue 6): seal ([`Esp::encapsulate`]) and open
//! ([`Esp::decapsulate`]) per transform, tunnel mode, raw ESP, for inner IPv6/UDP packets
//! whose UDP payload is 64, 512 and 1400 bytes. Throughput is the inner packet's length.
//!
//! Seal goes through the SPD lookup (one PROTECT entry, as on the home agent) and reuses the
//! output buffer, as the daemon does. Open runs with anti-replay on: every iteration opens a
//! freshly sealed packet (sealed in criterion's untimed setup), in sequence order.
//!
//! Run: `cargo bench -p esp --bench esp`.

use std::hint::black_box;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::time::Instant;

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use esp::{
    Direction, Esp, EspAction, Mode, PolicyAction, SaParams, Selector, SpdEntry, Transform,
    build_ipv6_packet,
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

criterion_group!(benches, bench);
criterion_main!(benches);
