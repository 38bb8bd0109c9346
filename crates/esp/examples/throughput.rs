//! Seal and open throughput of one core, per transform, for 1400-byte IPv6 packets in tunnel
//! mode (the figure that matters against strongSwan's libipsec). Run with
//! `cargo run --release -p esp --example throughput`.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use esp::{
    Direction, Esp, EspAction, Mode, PolicyAction, SaParams, Selector, SpdEntry, Transform,
    build_ipv6_packet,
};

const PACKET: usize = 1400;
const ROUND: Duration = Duration::from_millis(500);

fn main() {
    let suites = [
        (Transform::AesGcm16 { key_bits: 128 }, 20, 0),
        (Transform::AesGcm16 { key_bits: 256 }, 36, 0),
        (Transform::AesCbcHmacSha1_96 { key_bits: 128 }, 16, 20),
        (Transform::AesCbcHmacSha256_128 { key_bits: 128 }, 16, 32),
        (Transform::AesCbcHmacSha256_128 { key_bits: 256 }, 32, 32),
    ];
    let src: Ipv6Addr = "2001:db8:1::1000".parse().unwrap_or(Ipv6Addr::LOCALHOST);
    let dst: Ipv6Addr = "2001:db8:2::5".parse().unwrap_or(Ipv6Addr::LOCALHOST);
    let mut inner = Vec::new();
    let body = vec![0x5a; PACKET - 40];
    build_ipv6_packet(src, dst, 17, 64, &body, &mut inner).expect("fits");
    let ep = SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), 4500);
    println!(
        "transform              seal MB/s  kpkt/s   open MB/s  kpkt/s   (1400-byte packets, tunnel mode)"
    );
    for (t, ek, ik) in suites {
        let encr = vec![7u8; ek];
        let integ = vec![9u8; ik];
        let now = Instant::now();
        let mut tx = Esp::new();
        let mut rx = Esp::new();
        let p = SaParams::new(0x1000, Direction::Outbound, Mode::Tunnel, t, &encr, &integ)
            .with_endpoints(ep, ep);
        let h = tx.add_sa(now, &p).expect("SA");
        tx.spd_mut().push(SpdEntry {
            selector: Selector::ANY,
            direction: Direction::Outbound,
            action: PolicyAction::Protect(h),
        });
        let mut p = p;
        p.direction = Direction::Inbound;
        // Without anti-replay the same packet can be opened over and over.
        p.anti_replay = false;
        rx.add_sa(now, &p).expect("SA");

        let mut out = Vec::new();
        let mut esp_pkt = Vec::new();
        let (n, el) = run(|| {
            if let EspAction::ToNetwork(tx) = tx.encapsulate(now, &inner, &mut out) {
                esp_pkt.clear();
                esp_pkt.extend_from_slice(tx.data);
            }
        });
        let seal = (n, el);
        let mut back = Vec::new();
        let (n2, el2) = run(|| {
            let r = rx.decapsulate(now, IpAddr::V6(src), &esp_pkt, &mut back);
            assert!(matches!(r, EspAction::ToTun(_)));
        });
        let rate = |n: u64, el: Duration| {
            let pps = n as f64 / el.as_secs_f64();
            (pps * PACKET as f64 / 1e6, pps / 1e3)
        };
        let (smb, skp) = rate(seal.0, seal.1);
        let (omb, okp) = rate(n2, el2);
        println!(
            "{:<22} {smb:>9.0} {skp:>7.0} {omb:>11.0} {okp:>7.0}",
            t.name()
        );
    }
}

/// Runs `f` for [`ROUND`], three times; returns the best round.
fn run(mut f: impl FnMut()) -> (u64, Duration) {
    let mut best = (0, Duration::MAX);
    for _ in 0..3 {
        let start = Instant::now();
        let mut n = 0u64;
        while start.elapsed() < ROUND {
            for _ in 0..64 {
                f();
            }
            n += 64;
        }
        let el = start.elapsed();
        if (n as f64 / el.as_secs_f64()) > (best.0 as f64 / best.1.as_secs_f64()) {
            best = (n, el);
        }
    }
    best
}
