//! Engine tests: known answers, round trips, and the ESP edge cases of RFC 4303 §3.4.
//!
//! The known-answer packets were built independently with Python's `cryptography` package
//! (OpenSSL): the RFC 4106 construction (nonce = salt ‖ IV, AAD = SPI ‖ seq, IV = the sequence
//! number) and the RFC 3602 + RFC 2404/4868 construction (HMAC over SPI ‖ seq ‖ IV ‖
//! ciphertext; IV = AES_K(SPI ‖ "ESPi" ‖ 0 ‖ seq)). Both sides must agree byte for byte.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use proptest::prelude::*;

use crate::packet::proto;
use crate::*;

fn h(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

fn a(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

fn sock(s: &str, port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V6(a(s)), port)
}

const SPI: u32 = 0x1234_5678;
const MN_COA: &str = "2001:db8:ff::2";
const HA: &str = "2001:db8:ff::1";
const HOA: &str = "2001:db8:1::1000";
const CN: &str = "2001:db8:2::5";

const INNER: &str = "600000000011114020010db800010000000000000000100020010db800020000000000000000000504d2162e0011000068656c6c6f20657370";
const UDP: &str = "04d2162e0011000068656c6c6f20657370";

fn k16() -> Vec<u8> {
    (0x10..0x20).collect()
}
fn k32() -> Vec<u8> {
    (0x20..0x40).collect()
}
fn i20() -> Vec<u8> {
    (0x40..0x54).collect()
}
fn i32b() -> Vec<u8> {
    (0x60..0x80).collect()
}
fn with_salt(k: Vec<u8>) -> Vec<u8> {
    [k, h("cafebabe")].concat()
}

/// (transform, encryption key, integrity key) for every transform and key size.
fn suites() -> Vec<(Transform, Vec<u8>, Vec<u8>)> {
    vec![
        (
            Transform::AesGcm16 { key_bits: 128 },
            with_salt(k16()),
            vec![],
        ),
        (
            Transform::AesGcm16 { key_bits: 256 },
            with_salt(k32()),
            vec![],
        ),
        (Transform::AesCbcHmacSha1_96 { key_bits: 128 }, k16(), i20()),
        (
            Transform::AesCbcHmacSha1_96 { key_bits: 192 },
            k32()[..24].to_vec(),
            i20(),
        ),
        (Transform::AesCbcHmacSha1_96 { key_bits: 256 }, k32(), i20()),
        (
            Transform::AesCbcHmacSha256_128 { key_bits: 128 },
            k16(),
            i32b(),
        ),
        (
            Transform::AesCbcHmacSha256_128 { key_bits: 256 },
            k32(),
            i32b(),
        ),
    ]
}

/// A sender with one outbound SA protecting everything, and a receiver with the matching
/// inbound SA.
struct Pair {
    now: Instant,
    tx: Esp,
    rx: Esp,
    out: SaHandle,
    inb: SaHandle,
}

fn params(
    dir: Direction,
    mode: Mode,
    t: Transform,
    ek: &[u8],
    ik: &[u8],
    udp: bool,
    selector: Selector,
) -> SaParams {
    let (l, r) = (sock(MN_COA, 4500), sock(HA, 4500));
    let (local, remote) = if dir == Direction::Outbound {
        (l, r)
    } else {
        (r, l)
    };
    SaParams::new(SPI, dir, mode, t, ek, ik)
        .with_endpoints(local, remote)
        .with_udp_encap(udp)
        .with_selector(selector)
}

impl Pair {
    fn new(mode: Mode, t: Transform, ek: &[u8], ik: &[u8], udp: bool) -> Self {
        Self::with(mode, t, ek, ik, udp, Selector::ANY, Selector::ANY)
    }

    /// `tx_sel` is the sender's selector, `rx_sel` the receiver's (each from its own side).
    fn with(
        mode: Mode,
        t: Transform,
        ek: &[u8],
        ik: &[u8],
        udp: bool,
        tx_sel: Selector,
        rx_sel: Selector,
    ) -> Self {
        let now = Instant::now();
        let mut tx = Esp::new();
        let out = tx
            .add_sa(
                now,
                &params(Direction::Outbound, mode, t, ek, ik, udp, tx_sel),
            )
            .unwrap();
        tx.spd_mut().push(SpdEntry {
            selector: Selector::ANY,
            direction: Direction::Outbound,
            action: PolicyAction::Protect(out),
        });
        let mut rx = Esp::new();
        let inb = rx
            .add_sa(
                now,
                &params(Direction::Inbound, mode, t, ek, ik, udp, rx_sel),
            )
            .unwrap();
        Self {
            now,
            tx,
            rx,
            out,
            inb,
        }
    }

    fn gcm128(mode: Mode) -> Self {
        Self::new(
            mode,
            Transform::AesGcm16 { key_bits: 128 },
            &with_salt(k16()),
            &[],
            false,
        )
    }

    /// Seals `inner` and returns the ESP packet.
    fn seal(&mut self, inner: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        match self.tx.encapsulate(self.now, inner, &mut out) {
            EspAction::ToNetwork(t) => t.data.to_vec(),
            other => panic!("expected ToNetwork, got {other:?}"),
        }
    }

    /// Opens `esp`; returns the delivered bytes (tunnel: inner packet; transport: payload)
    /// or the drop reason.
    fn open(&mut self, esp: &[u8]) -> Result<Vec<u8>, DropReason> {
        let mut out = Vec::new();
        match self
            .rx
            .decapsulate(self.now, IpAddr::V6(a(HOA)), esp, &mut out)
        {
            EspAction::ToTun(p) => Ok(p.to_vec()),
            EspAction::Transport(t) => Ok(t.payload.to_vec()),
            EspAction::Drop(r) => Err(r),
            other => panic!("unexpected {other:?}"),
        }
    }

    fn events(&mut self) -> Vec<SaEvent> {
        std::iter::from_fn(|| self.tx.poll_event())
            .chain(std::iter::from_fn(|| self.rx.poll_event()))
            .collect()
    }

    fn set_next_seq(&mut self, seq: u64) {
        self.tx.sad.get_mut(self.out).unwrap().next_seq = seq;
    }
}

/// An IPv6 packet `src` → `dst` with a UDP payload of `len` bytes.
fn udp_packet(src: &str, dst: &str, sport: u16, dport: u16, len: usize) -> Vec<u8> {
    let mut udp = Vec::new();
    udp.extend_from_slice(&sport.to_be_bytes());
    udp.extend_from_slice(&dport.to_be_bytes());
    udp.extend_from_slice(&u16::try_from(8 + len).unwrap().to_be_bytes());
    udp.extend_from_slice(&[0, 0]);
    udp.extend((0..len).map(|i| (i * 7) as u8));
    let mut out = Vec::new();
    build_ipv6_packet(a(src), a(dst), proto::UDP, 64, &udp, &mut out).unwrap();
    out
}

// ---- known answers -------------------------------------------------------------------------

#[test]
fn kat_tunnel_all_transforms() {
    let cases = [
        (
            Transform::AesGcm16 { key_bits: 128 },
            with_salt(k16()),
            vec![],
            1,
            "123456780000000100000000000000010b8e62ebac32b83fb18e65432c7d7a60c9a1a4f2c63a1c9c461f2ca34783b3072f6ade7de70454f5a9b7919703c1ad8a147df2522571d45a8d76c8980ea3aed7df6505c02d236353c7b1095a",
        ),
        (
            Transform::AesGcm16 { key_bits: 256 },
            with_salt(k32()),
            vec![],
            7,
            "123456780000000700000000000000072a5fc71c40cb7f61b3eb381dc003f6819d86c543594e75a3929825bfc2b9724ae10628a953bc81bfd4f7323c55f8ef89e1c8703c8d2c2e511fbe55115a44aac3e5f8bac8c4b31038955c506f",
        ),
        (
            Transform::AesCbcHmacSha1_96 { key_bits: 128 },
            k16(),
            i20(),
            1,
            "1234567800000001f5fa3f5b58ac19a05ce7665a45a358707c8ee911ae217693f0452fffcbb5f100fade812b5de3d862308cbb449c362d1252262392d55b8b8d549e5172e94e186dd52dcd0feff22e2bac5021686954ce362d101124dd2c93bdd16bf9fc",
        ),
        (
            Transform::AesCbcHmacSha256_128 { key_bits: 256 },
            k32(),
            i32b(),
            7,
            "12345678000000075e5514f3630e0c2755339b77aeeafe4cd2376ea567f82ac3855cfaa5e19b7fbd5fc412df0112cce474812c9b730791649ebeee7d9f5db77745fd9082b2740f8825d763c653d88db3d3f8242c699de5ee07687d5dc3aa80d0c9080a6549aa6c5e",
        ),
    ];
    for (t, ek, ik, seq, expected) in cases {
        let mut p = Pair::new(Mode::Tunnel, t, &ek, &ik, false);
        p.set_next_seq(seq);
        let esp = p.seal(&h(INNER));
        assert_eq!(hex::encode(&esp), expected, "{t:?}");
        assert_eq!(p.open(&h(expected)), Ok(h(INNER)), "{t:?}");
    }
}

#[test]
fn kat_transport() {
    let cases = [
        (
            Transform::AesGcm16 { key_bits: 128 },
            with_salt(k16()),
            vec![],
            "1234567800000003000000000000000350500d5a7b00e89b842b1ab9a288bd75f020112e8b8131b0cf3e180d59556b29d9bca798",
        ),
        (
            Transform::AesCbcHmacSha256_128 { key_bits: 128 },
            k16(),
            i32b(),
            "1234567800000003063a69587e76d7a381232ed06cafeeeed443af784ba1511f726ae716ff33251471755792be755060342394fb19ba619a061fb687a623121d7627cc9d941f41ee",
        ),
    ];
    for (t, ek, ik, expected) in cases {
        let mut p = Pair::new(Mode::Transport, t, &ek, &ik, false);
        p.set_next_seq(3);
        let mut out = Vec::new();
        let inner = h(INNER);
        let EspAction::ToNetwork(tx) = p.tx.encapsulate(p.now, &inner, &mut out) else {
            panic!("not sent");
        };
        assert_eq!(hex::encode(tx.data), expected);
        assert!(tx.ext_headers.is_empty());
        assert_eq!(tx.src, sock(HOA, 0));
        assert_eq!(tx.dst, sock(CN, 0));
        assert!(!tx.udp);
        let mut out = Vec::new();
        let r =
            p.rx.decapsulate(p.now, IpAddr::V6(a(HOA)), &h(expected), &mut out);
        assert_eq!(
            r,
            EspAction::Transport(TransportPayload {
                spi: SPI,
                next_header: proto::UDP,
                payload: &h(UDP),
            })
        );
    }
}

// ---- round trips ---------------------------------------------------------------------------

#[test]
fn round_trip_every_transform_mode_and_encapsulation() {
    for (t, ek, ik) in suites() {
        for mode in [Mode::Tunnel, Mode::Transport] {
            for udp in [false, true] {
                let mut p = Pair::new(mode, t, &ek, &ik, udp);
                for len in (0..=70).chain([1000, 1452, 9000]) {
                    let inner = udp_packet(HOA, CN, 546, 547, len);
                    let mut out = Vec::new();
                    let EspAction::ToNetwork(tx) = p.tx.encapsulate(p.now, &inner, &mut out) else {
                        panic!("not sent");
                    };
                    assert_eq!(tx.udp, udp);
                    assert_eq!(tx.spi, SPI);
                    match (mode, udp) {
                        (Mode::Tunnel, _) => {
                            assert_eq!(tx.src, sock(MN_COA, 4500));
                            assert_eq!(tx.dst, sock(HA, 4500));
                        }
                        (Mode::Transport, true) => {
                            assert_eq!(tx.src, sock(HOA, 4500));
                            assert_eq!(tx.dst, sock(CN, 4500));
                        }
                        (Mode::Transport, false) => {
                            assert_eq!(tx.src, sock(HOA, 0));
                            assert_eq!(tx.dst, sock(CN, 0));
                        }
                    }
                    let ct_len = tx.data.len() - 8 - t.iv_len() - t.icv_len();
                    assert_eq!(ct_len % t.block_len(), 0);
                    assert!(tx.data.len() <= inner.len() + t.max_overhead());
                    let esp = tx.data.to_vec();
                    let expected = match mode {
                        Mode::Tunnel => inner.clone(),
                        Mode::Transport => inner[40..].to_vec(),
                    };
                    assert_eq!(
                        p.open(&esp),
                        Ok(expected),
                        "{t:?} {mode} udp={udp} len={len}"
                    );
                }
                let s = p.rx.stats();
                assert_eq!(s.sas[0].counters.packets, 74);
                assert_eq!(s.drops.total(), 0);
            }
        }
    }
}

#[test]
fn tunnel_mode_strips_tfc_padding_and_trailing_bytes() {
    // A TUN read may be longer than the IPv6 length (it is not, but be safe): only the
    // packet is sent, and only the packet is delivered.
    let mut p = Pair::gcm128(Mode::Tunnel);
    let mut inner = udp_packet(HOA, CN, 1, 2, 10);
    let n = inner.len();
    inner.extend_from_slice(&[0xee; 9]);
    let esp = p.seal(&inner);
    assert_eq!(p.open(&esp), Ok(inner[..n].to_vec()));
}

#[test]
fn batch_seals_into_one_buffer() {
    let mut p = Pair::gcm128(Mode::Tunnel);
    p.tx.spd_mut().insert(
        0,
        SpdEntry {
            selector: Selector {
                next_proto: Some(proto::TCP),
                ..Selector::ANY
            },
            direction: Direction::Outbound,
            action: PolicyAction::Bypass,
        },
    );
    let pkts: Vec<Vec<u8>> = (0..10).map(|i| udp_packet(HOA, CN, 1, 2, i * 50)).collect();
    let mut tcp = udp_packet(HOA, CN, 1, 2, 4);
    tcp[6] = proto::TCP;
    let mut inputs: Vec<&[u8]> = pkts.iter().map(Vec::as_slice).collect();
    inputs.insert(3, &tcp);
    inputs.insert(5, &[1, 2, 3]);
    let (mut buf, mut items) = (Vec::new(), Vec::new());
    p.tx.encapsulate_batch(p.now, inputs.iter().copied(), &mut buf, &mut items);
    assert_eq!(items.len(), 12);
    assert_eq!(
        items[3],
        BatchItem::Bypass {
            index: 3,
            len: tcp.len()
        }
    );
    assert_eq!(items[5], BatchItem::Drop(DropReason::Malformed));
    let mut sealed = 0;
    for (i, item) in items.iter().enumerate() {
        if let BatchItem::Sealed {
            data, ext_headers, ..
        } = item
        {
            assert!(ext_headers.is_empty());
            assert_eq!(p.open(&buf[data.clone()]), Ok(inputs[i].to_vec()));
            sealed += 1;
        }
    }
    assert_eq!(sealed, 10);
}

// ---- Mobile IPv6 transport mode (RFC 3776) ----------------------------------------------

/// A Binding Update as the MN sends it: CoA → HA, Home Address option, MH type 5.
fn binding_update() -> Vec<u8> {
    let mut dst_opts = vec![proto::MOBILITY, 2, 1, 2, 0, 0, 201, 16];
    dst_opts.extend_from_slice(&a(HOA).octets());
    let mh = [59, 1, 5, 0, 0, 0, 0x12, 0x34, 0x80, 0, 0, 10, 1, 2, 0, 0];
    let mut out = Vec::new();
    build_ipv6_packet(
        a(MN_COA),
        a(HA),
        proto::DEST_OPTS,
        64,
        &[dst_opts, mh.to_vec()].concat(),
        &mut out,
    )
    .unwrap();
    out
}

#[test]
fn binding_update_over_transport_sa() {
    // RFC 3776: the transport SA is HoA <-> HA, protocol MH; the SPD sees the HoA.
    let bu_sel = Selector {
        src: Prefix::host(a(HOA)),
        dst: Prefix::host(a(HA)),
        next_proto: Some(proto::MOBILITY),
        mh_type: Some(5),
        ..Selector::ANY
    };
    let rx_sel = Selector {
        src: Prefix::host(a(HA)),
        dst: Prefix::host(a(HOA)),
        next_proto: Some(proto::MOBILITY),
        ..Selector::ANY
    };
    let t = Transform::AesCbcHmacSha256_128 { key_bits: 128 };
    let mut p = Pair::with(Mode::Transport, t, &k16(), &i32b(), false, bu_sel, rx_sel);
    // Replace the catch-all policy by the BU policy, so that other traffic has none.
    let (id, _) = p.tx.spd().entries().next().unwrap();
    p.tx.spd_mut().remove(id);
    p.tx.spd_mut().push(SpdEntry {
        selector: bu_sel,
        direction: Direction::Outbound,
        action: PolicyAction::Protect(p.out),
    });
    let bu = binding_update();
    let mut out = Vec::new();
    let EspAction::ToNetwork(tx) = p.tx.encapsulate(p.now, &bu, &mut out) else {
        panic!("BU not protected");
    };
    assert_eq!(tx.src, sock(MN_COA, 0));
    assert_eq!(tx.dst, sock(HA, 0));
    assert_eq!(tx.ext_headers.len(), 24);
    assert_eq!(
        tx.ext_headers[0],
        proto::ESP,
        "the HAO header now names ESP"
    );
    assert_eq!(&tx.ext_headers[1..], &bu[41..64]);
    let esp = tx.data.to_vec();
    // The HA passes the HoA from the Home Address option as the source.
    let mut out = Vec::new();
    let r = p.rx.decapsulate(p.now, IpAddr::V6(a(HOA)), &esp, &mut out);
    assert_eq!(
        r,
        EspAction::Transport(TransportPayload {
            spi: SPI,
            next_header: proto::MOBILITY,
            payload: &bu[64..],
        })
    );
    // From another address the same payload is refused (the BU's HoA must be the SA's).
    let mut p2 = Pair::with(Mode::Transport, t, &k16(), &i32b(), false, bu_sel, rx_sel);
    let mut out = Vec::new();
    let EspAction::ToNetwork(tx) = p2.tx.encapsulate(p2.now, &bu, &mut out) else {
        panic!()
    };
    let esp = tx.data.to_vec();
    let mut out = Vec::new();
    assert_eq!(
        p2.rx
            .decapsulate(p2.now, IpAddr::V6(a(MN_COA)), &esp, &mut out),
        EspAction::Drop(DropReason::PolicyMismatch)
    );
    // A binding ack type (6) from the MN matches no outbound policy.
    let mut ba = bu.clone();
    ba[64 + 2] = 6;
    assert_eq!(
        p.tx.encapsulate(p.now, &ba, &mut out),
        EspAction::Drop(DropReason::NoPolicy)
    );
}

#[test]
fn transport_mode_refuses_fragments() {
    let mut p = Pair::gcm128(Mode::Transport);
    let mut body = vec![proto::UDP, 0, 0, 1, 0, 0, 0, 9];
    body.extend_from_slice(&[0, 1, 0, 2, 0, 8, 0, 0]);
    let mut pkt = Vec::new();
    build_ipv6_packet(a(HOA), a(CN), proto::FRAGMENT, 64, &body, &mut pkt).unwrap();
    let mut out = Vec::new();
    assert_eq!(
        p.tx.encapsulate(p.now, &pkt, &mut out),
        EspAction::Drop(DropReason::Unsupported)
    );
    // In tunnel mode a fragment is just a packet.
    let mut p = Pair::gcm128(Mode::Tunnel);
    let esp = p.seal(&pkt);
    assert_eq!(p.open(&esp), Ok(pkt));
}

// ---- SPD -------------------------------------------------------------------------------------

#[test]
fn spd_actions() {
    let now = Instant::now();
    let mut esp = Esp::new();
    let pkt = udp_packet(HOA, CN, 546, 547, 3);
    let mut out = Vec::new();
    assert_eq!(
        esp.encapsulate(now, &pkt, &mut out),
        EspAction::Drop(DropReason::NoPolicy)
    );
    let discard = esp.spd_mut().push(SpdEntry {
        selector: Selector::ANY,
        direction: Direction::Outbound,
        action: PolicyAction::Discard,
    });
    assert_eq!(
        esp.encapsulate(now, &pkt, &mut out),
        EspAction::Drop(DropReason::PolicyDiscard)
    );
    esp.spd_mut().insert(
        0,
        SpdEntry {
            selector: Selector {
                dst_port: Some(547),
                ..Selector::ANY
            },
            direction: Direction::Outbound,
            action: PolicyAction::Bypass,
        },
    );
    assert_eq!(
        esp.encapsulate(now, &pkt, &mut out),
        EspAction::Bypass(&pkt[..])
    );
    // An inbound entry never matches outbound traffic.
    esp.spd_mut().remove(discard);
    esp.spd_mut().push(SpdEntry {
        selector: Selector::ANY,
        direction: Direction::Inbound,
        action: PolicyAction::Bypass,
    });
    let other = udp_packet(HOA, CN, 546, 548, 3);
    assert_eq!(
        esp.encapsulate(now, &other, &mut out),
        EspAction::Drop(DropReason::NoPolicy)
    );
    // Protect with an SA that was removed.
    let (t, ek, ik) = suites().remove(0);
    let sa = esp
        .add_sa(
            now,
            &params(
                Direction::Outbound,
                Mode::Tunnel,
                t,
                &ek,
                &ik,
                false,
                Selector::ANY,
            ),
        )
        .unwrap();
    esp.spd_mut().push(SpdEntry {
        selector: Selector::ANY,
        direction: Direction::Outbound,
        action: PolicyAction::Protect(sa),
    });
    assert!(matches!(
        esp.encapsulate(now, &other, &mut out),
        EspAction::ToNetwork(_)
    ));
    assert!(esp.remove_sa(sa));
    assert!(!esp.remove_sa(sa));
    assert_eq!(
        esp.encapsulate(now, &other, &mut out),
        EspAction::Drop(DropReason::NoSa)
    );
    // A new SA in the same slot is not reached through the stale handle.
    let sa2 = esp
        .add_sa(
            now,
            &params(
                Direction::Outbound,
                Mode::Tunnel,
                t,
                &ek,
                &ik,
                false,
                Selector::ANY,
            ),
        )
        .unwrap();
    assert_ne!(sa, sa2);
    assert_eq!(
        esp.encapsulate(now, &other, &mut out),
        EspAction::Drop(DropReason::NoSa)
    );
    assert_eq!(esp.spd_mut().retarget(sa, sa2), 1);
    assert!(matches!(
        esp.encapsulate(now, &other, &mut out),
        EspAction::ToNetwork(_)
    ));
    // Garbage from the TUN device.
    assert_eq!(
        esp.encapsulate(now, &[0x60, 1], &mut out),
        EspAction::Drop(DropReason::Malformed)
    );
    let s = esp.stats();
    assert_eq!(s.bypassed, 1);
    assert_eq!(s.drops.get(DropReason::NoPolicy), 2);
    assert_eq!(s.drops.get(DropReason::NoSa), 2);
    assert_eq!(s.drops.get(DropReason::Malformed), 1);
}

#[test]
fn inbound_sa_is_not_used_outbound() {
    let mut p = Pair::gcm128(Mode::Tunnel);
    let mut out = Vec::new();
    let inner = h(INNER);
    assert_eq!(
        p.rx.encapsulate_with(p.now, p.inb, &inner, &mut out),
        EspAction::Drop(DropReason::NoSa)
    );
    assert!(matches!(
        p.tx.encapsulate_with(p.now, p.out, &inner, &mut out),
        EspAction::ToNetwork(_)
    ));
}

#[test]
fn sa_errors() {
    let now = Instant::now();
    let mut esp = Esp::new();
    let (t, ek, ik) = suites().remove(0);
    let mut p = params(
        Direction::Inbound,
        Mode::Tunnel,
        t,
        &ek,
        &ik,
        false,
        Selector::ANY,
    );
    esp.add_sa(now, &p).unwrap();
    assert_eq!(esp.add_sa(now, &p), Err(SaError::DuplicateSpi(SPI)));
    p.spi = 0;
    assert_eq!(esp.add_sa(now, &p), Err(SaError::InvalidSpi));
    p.spi = 7;
    p.encr_key.pop();
    assert!(matches!(
        esp.add_sa(now, &p),
        Err(SaError::KeyLength { .. })
    ));
    // Debug output never shows keys.
    assert!(!format!("{p:?}").contains("16, 17"));
}

// ---- inbound edge cases ---------------------------------------------------------------------

#[test]
fn wrong_spi() {
    let mut p = Pair::gcm128(Mode::Tunnel);
    let mut esp = p.seal(&h(INNER));
    esp[3] ^= 1;
    assert_eq!(p.open(&esp), Err(DropReason::NoSa));
    assert_eq!(p.rx.drops().get(DropReason::NoSa), 1);
}

#[test]
fn replay_window_edges_through_the_engine() {
    let mut p = Pair::gcm128(Mode::Tunnel);
    let inner = h(INNER);
    let pkts: Vec<Vec<u8>> = (1..=2100).map(|_| p.seal(&inner)).collect();
    let pkt = |seq: usize| &pkts[seq - 1];
    // First packet, then a duplicate.
    assert!(p.open(pkt(1)).is_ok());
    assert_eq!(p.open(pkt(1)), Err(DropReason::Replay));
    // Far ahead, then the highest again.
    assert!(p.open(pkt(2000)).is_ok());
    assert_eq!(p.open(pkt(2000)), Err(DropReason::Replay));
    // The left edge: 2000 - 1023 is inside, 2000 - 1024 just outside.
    assert!(p.open(pkt(977)).is_ok());
    assert_eq!(p.open(pkt(976)), Err(DropReason::Replay));
    assert_eq!(p.open(pkt(2)), Err(DropReason::Replay));
    // Out of order inside the window, once each.
    for s in [1999, 1500, 1998] {
        assert!(p.open(pkt(s)).is_ok());
        assert_eq!(p.open(pkt(s)), Err(DropReason::Replay));
    }
    assert!(p.open(pkt(2100)).is_ok());
    let info = p.rx.sad().info(p.inb).unwrap();
    assert_eq!(info.seq, 2100);
    assert_eq!(info.counters.replay_drops, 7);
    assert_eq!(p.rx.drops().get(DropReason::Replay), 7);
}

#[test]
fn forged_packets_do_not_move_the_window() {
    for (t, ek, ik) in suites() {
        let mut p = Pair::new(Mode::Tunnel, t, &ek, &ik, false);
        let inner = h(INNER);
        let pkts: Vec<Vec<u8>> = (1..=5).map(|_| p.seal(&inner)).collect();
        assert!(p.open(&pkts[0]).is_ok());
        // A forged sequence number far ahead: the ICV fails, the window stays.
        let mut forged = pkts[1].clone();
        forged[4..8].copy_from_slice(&5000u32.to_be_bytes());
        assert_eq!(p.open(&forged), Err(DropReason::BadIcv));
        // A tampered ciphertext with the next genuine number: also refused, not marked.
        let mut tampered = pkts[1].clone();
        let n = tampered.len();
        tampered[n - t.icv_len() - 1] ^= 0x80;
        assert_eq!(p.open(&tampered), Err(DropReason::BadIcv));
        // A tampered ICV.
        let mut bad_icv = pkts[1].clone();
        bad_icv[n - 1] ^= 1;
        assert_eq!(p.open(&bad_icv), Err(DropReason::BadIcv));
        // The genuine packets still go through.
        for pk in &pkts[1..] {
            assert_eq!(p.open(pk), Ok(inner.clone()), "{t:?}");
        }
        let info = p.rx.sad().info(p.inb).unwrap();
        assert_eq!(info.counters.auth_failures, 3);
        assert_eq!(info.seq, 5);
    }
}

#[test]
fn truncated_at_every_length() {
    for (t, ek, ik) in suites() {
        let mut p = Pair::new(Mode::Tunnel, t, &ek, &ik, true);
        let esp = p.seal(&h(INNER));
        for len in 0..esp.len() {
            let r = p.open(&esp[..len]);
            let expected = if len < t.min_packet_len() {
                vec![DropReason::Truncated]
            } else {
                vec![DropReason::BadIcv, DropReason::Malformed]
            };
            assert!(
                matches!(r, Err(e) if expected.contains(&e)),
                "{t:?} len {len}: {r:?}"
            );
        }
        // Nothing was marked: the whole packet is still accepted.
        assert_eq!(p.open(&esp), Ok(h(INNER)));
        // And an extra byte breaks it.
        let mut long = esp.clone();
        long.push(0);
        assert!(p.open(&long).is_err());
    }
}

/// Seals a hand-made plaintext (payload, padding, trailer) with the receiver's keys.
fn seal_raw(p: &Pair, seq: u32, plaintext: &[u8]) -> Vec<u8> {
    let mut buf = Vec::new();
    assert!(p.rx.seal_plaintext(SPI, seq, plaintext, &mut buf));
    buf
}

#[test]
fn bad_padding() {
    for (t, ek, ik) in suites() {
        let mut p = Pair::new(Mode::Tunnel, t, &ek, &ik, false);
        let inner = h(INNER);
        let block = t.block_len();
        let pad = (block - (inner.len() + 2) % block) % block;
        let good = [
            inner.clone(),
            (1..=pad as u8).collect(),
            vec![pad as u8, 41],
        ]
        .concat();
        assert_eq!(p.open(&seal_raw(&p, 1, &good)), Ok(inner.clone()));
        // A wrong padding byte.
        if pad > 0 {
            let mut bad = good.clone();
            bad[inner.len()] = 9;
            assert_eq!(
                p.open(&seal_raw(&p, 2, &bad)),
                Err(DropReason::BadPadding),
                "{t:?}"
            );
        }
        // Pad Length larger than the plaintext.
        let mut bad = good.clone();
        let n = bad.len();
        bad[n - 2] = 255;
        assert_eq!(p.open(&seal_raw(&p, 3, &bad)), Err(DropReason::BadPadding));
        // Extra padding (up to 255 is allowed) with the right values is fine.
        let extra = [
            inner.clone(),
            (1..=pad as u8 + 16).collect(),
            vec![pad as u8 + 16, 41],
        ]
        .concat();
        assert_eq!(p.open(&seal_raw(&p, 4, &extra)), Ok(inner.clone()));
        let info = p.rx.sad().info(p.inb).unwrap();
        assert_eq!(info.counters.pad_errors, if pad > 0 { 2 } else { 1 });
    }
}

#[test]
fn dummy_packets_and_wrong_next_header() {
    let mut p = Pair::gcm128(Mode::Tunnel);
    // RFC 4303 §2.6: Next Header 59 is a dummy packet, discarded.
    assert_eq!(
        p.open(&seal_raw(&p, 1, &[0xab, 0xcd, 0, 59])),
        Err(DropReason::DummyPacket)
    );
    // Tunnel mode wants 41; IPv4 (4) is not supported.
    assert_eq!(
        p.open(&seal_raw(&p, 2, &[1, 2, 0, 17])),
        Err(DropReason::Malformed)
    );
    assert_eq!(
        p.open(&seal_raw(&p, 3, &[1, 2, 0, 4])),
        Err(DropReason::Unsupported)
    );
    // Next header 41 but not an IPv6 packet.
    assert_eq!(
        p.open(&seal_raw(&p, 4, &[0x45, 0, 0, 41])),
        Err(DropReason::Malformed)
    );
    // Sequence number 0 is never valid.
    assert_eq!(
        p.open(&seal_raw(&p, 0, &[1, 2, 0, 41])),
        Err(DropReason::Replay)
    );
}

#[test]
fn tunnel_inner_packet_must_match_the_sa_selectors() {
    // The HA's inbound tunnel SA for this MN carries only its HoA, and the initial tunnel
    // only DHCPv6 (MN link-local UDP 546 -> 547).
    let t = Transform::AesGcm16 { key_bits: 128 };
    let ha_side = Selector::between(Prefix::ANY, Prefix::host(a(HOA)));
    let mut p = Pair::with(
        Mode::Tunnel,
        t,
        &with_salt(k16()),
        &[],
        false,
        Selector::ANY,
        ha_side,
    );
    assert!(p.seal_open(&udp_packet(HOA, CN, 1, 2, 5)).is_ok());
    assert_eq!(
        p.seal_open(&udp_packet("2001:db8:1::1001", CN, 1, 2, 5)),
        Err(DropReason::PolicyMismatch)
    );
    let dhcp = Selector {
        src: Prefix::new(a("ff02::"), 16),
        dst: Prefix::new(a("fe80::"), 64),
        next_proto: Some(proto::UDP),
        src_port: Some(547),
        dst_port: Some(546),
        mh_type: None,
    };
    let mut p = Pair::with(
        Mode::Tunnel,
        t,
        &with_salt(k16()),
        &[],
        false,
        Selector::ANY,
        dhcp,
    );
    assert!(
        p.seal_open(&udp_packet("fe80::1", "ff02::1:2", 546, 547, 30))
            .is_ok()
    );
    for bad in [
        udp_packet("fe80::1", "ff02::1:2", 546, 548, 30),
        udp_packet("fe80::1", "ff02::1:2", 547, 547, 30),
        udp_packet("2001:db8::1", "ff02::1:2", 546, 547, 30),
        udp_packet("fe80::1", "ff05::1:3", 546, 547, 30),
    ] {
        assert_eq!(p.seal_open(&bad), Err(DropReason::PolicyMismatch));
    }
    let mut tcp = udp_packet("fe80::1", "ff02::1:2", 546, 547, 30);
    tcp[6] = proto::TCP;
    assert_eq!(p.seal_open(&tcp), Err(DropReason::PolicyMismatch));
    assert_eq!(p.rx.sad().info(p.inb).unwrap().counters.other_drops, 5);
}

impl Pair {
    fn seal_open(&mut self, inner: &[u8]) -> Result<Vec<u8>, DropReason> {
        let esp = self.seal(inner);
        self.open(&esp)
    }
}

#[test]
fn transport_selector_checks_protocol_and_source() {
    let t = Transform::AesCbcHmacSha1_96 { key_bits: 128 };
    let rx_sel = Selector {
        src: Prefix::host(a(HA)),
        dst: Prefix::host(a(HOA)),
        next_proto: Some(proto::UDP),
        src_port: None,
        dst_port: Some(500),
        mh_type: None,
    };
    let mut p = Pair::with(
        Mode::Transport,
        t,
        &k16(),
        &i20(),
        false,
        Selector::ANY,
        rx_sel,
    );
    let ok = p.seal(&udp_packet(HOA, HA, 500, 9, 1));
    let wrong_port = p.seal(&udp_packet(HOA, HA, 501, 9, 1));
    let mut out = Vec::new();
    assert!(matches!(
        p.rx.decapsulate(p.now, IpAddr::V6(a(HOA)), &ok, &mut out),
        EspAction::Transport(_)
    ));
    assert_eq!(
        p.rx.decapsulate(p.now, IpAddr::V6(a(HOA)), &wrong_port, &mut out),
        EspAction::Drop(DropReason::PolicyMismatch)
    );
    let again = p.seal(&udp_packet(HOA, HA, 500, 9, 1));
    assert_eq!(
        p.rx.decapsulate(p.now, "192.0.2.1".parse().unwrap(), &again, &mut out),
        EspAction::Drop(DropReason::PolicyMismatch)
    );
}

// ---- sequence numbers and lifetimes --------------------------------------------------------

#[test]
fn sequence_number_overflow() {
    let mut p = Pair::gcm128(Mode::Tunnel);
    let inner = h(INNER);
    p.set_next_seq(u64::from(SEQ_SOFT_LIMIT) - 1);
    let _ = p.seal(&inner);
    assert!(p.events().is_empty());
    let _ = p.seal(&inner);
    assert_eq!(
        p.events(),
        vec![SaEvent::SoftExpired {
            handle: p.out,
            spi: SPI,
            direction: Direction::Outbound
        }]
    );
    p.set_next_seq(u64::from(u32::MAX) - 1);
    let a1 = p.seal(&inner);
    let a2 = p.seal(&inner);
    assert_eq!(&a2[4..8], &[0xff; 4]);
    assert_eq!(
        p.events(),
        vec![SaEvent::HardExpired {
            handle: p.out,
            spi: SPI,
            direction: Direction::Outbound
        }]
    );
    let mut out = Vec::new();
    assert_eq!(
        p.tx.encapsulate(p.now, &inner, &mut out),
        EspAction::Drop(DropReason::SaExpired)
    );
    assert!(out.is_empty());
    assert!(p.tx.sad().info(p.out).unwrap().hard_expired);
    assert_eq!(p.tx.sad().info(p.out).unwrap().seq, u32::MAX);
    // The receiver takes the last two numbers.
    assert!(p.open(&a1).is_ok());
    assert!(p.open(&a2).is_ok());
    assert_eq!(p.open(&a2), Err(DropReason::Replay));
    assert!(p.events().is_empty());
}

#[test]
fn lifetime_by_packets() {
    let mut p = Pair::gcm128(Mode::Tunnel);
    let life = Lifetime {
        soft: Limits {
            packets: Some(3),
            ..Limits::NONE
        },
        hard: Limits {
            packets: Some(5),
            ..Limits::NONE
        },
    };
    p.tx.sad.get_mut(p.out).unwrap().life = lifetime::LifetimeState::new(p.now, life);
    p.rx.sad.get_mut(p.inb).unwrap().life = lifetime::LifetimeState::new(p.now, life);
    let inner = h(INNER);
    let mut pkts = Vec::new();
    for i in 1..=5 {
        pkts.push(p.seal(&inner));
        let ev = p.events();
        match i {
            3 => assert!(matches!(ev[..], [SaEvent::SoftExpired { .. }])),
            5 => assert!(matches!(ev[..], [SaEvent::HardExpired { .. }])),
            _ => assert!(ev.is_empty()),
        }
    }
    let mut out = Vec::new();
    assert_eq!(
        p.tx.encapsulate(p.now, &inner, &mut out),
        EspAction::Drop(DropReason::SaExpired)
    );
    for (i, pk) in pkts.iter().enumerate() {
        assert!(p.open(pk).is_ok());
        let ev = p.events();
        assert_eq!(ev.len(), usize::from(i == 2 || i == 4), "{i}: {ev:?}");
    }
    // Inbound, hard-expired: even a fresh genuine packet is dropped.
    p.tx.sad.get_mut(p.out).unwrap().life =
        lifetime::LifetimeState::new(p.now, Lifetime::UNLIMITED);
    let late = p.seal(&inner);
    assert_eq!(p.open(&late), Err(DropReason::SaExpired));
}

#[test]
fn lifetime_by_bytes() {
    let mut p = Pair::gcm128(Mode::Tunnel);
    let life = Lifetime {
        soft: Limits {
            bytes: Some(1000),
            ..Limits::NONE
        },
        hard: Limits {
            bytes: Some(2000),
            ..Limits::NONE
        },
    };
    p.tx.sad.get_mut(p.out).unwrap().life = lifetime::LifetimeState::new(p.now, life);
    let pkt = udp_packet(HOA, CN, 1, 2, 352); // 400 bytes
    assert_eq!(pkt.len(), 400);
    let mut soft_at = None;
    let mut hard_at = None;
    for i in 1..=5 {
        let _ = p.seal(&pkt);
        for e in p.events() {
            match e {
                SaEvent::SoftExpired { .. } => soft_at = Some(i),
                SaEvent::HardExpired { .. } => hard_at = Some(i),
            }
        }
    }
    assert_eq!((soft_at, hard_at), (Some(3), Some(5)));
    let mut out = Vec::new();
    assert_eq!(
        p.tx.encapsulate(p.now, &pkt, &mut out),
        EspAction::Drop(DropReason::SaExpired)
    );
    assert_eq!(p.tx.sad().info(p.out).unwrap().counters.bytes, 2000);
}

#[test]
fn lifetime_by_time() {
    let now = Instant::now();
    let mut esp = Esp::new();
    assert_eq!(esp.poll_timeout(), None);
    let (t, ek, ik) = suites().remove(2);
    let p = params(
        Direction::Outbound,
        Mode::Tunnel,
        t,
        &ek,
        &ik,
        false,
        Selector::ANY,
    )
    .with_lifetime(Lifetime::time(
        Duration::from_secs(90),
        Duration::from_secs(100),
    ));
    let sa = esp.add_sa(now, &p).unwrap();
    let mut p2 = p.clone().with_lifetime(Lifetime::time(
        Duration::from_secs(50),
        Duration::from_secs(200),
    ));
    p2.direction = Direction::Inbound;
    let sa2 = esp.add_sa(now, &p2).unwrap();
    esp.spd_mut().push(SpdEntry {
        selector: Selector::ANY,
        direction: Direction::Outbound,
        action: PolicyAction::Protect(sa),
    });
    let s = Duration::from_secs;
    assert_eq!(esp.poll_timeout(), Some(now + s(50)));
    esp.handle_timeout(now + s(49));
    assert_eq!(esp.poll_event(), None);
    esp.handle_timeout(now + s(50));
    assert!(matches!(esp.poll_event(), Some(SaEvent::SoftExpired { handle, .. }) if handle == sa2));
    assert_eq!(esp.poll_timeout(), Some(now + s(90)));
    // A packet past the soft deadline raises the event itself, without handle_timeout.
    let inner = h(INNER);
    let mut out = Vec::new();
    assert!(matches!(
        esp.encapsulate(now + s(95), &inner, &mut out),
        EspAction::ToNetwork(_)
    ));
    assert!(matches!(esp.poll_event(), Some(SaEvent::SoftExpired { handle, .. }) if handle == sa));
    assert_eq!(esp.poll_timeout(), Some(now + s(100)));
    esp.handle_timeout(now + s(100));
    assert!(matches!(esp.poll_event(), Some(SaEvent::HardExpired { handle, .. }) if handle == sa));
    assert_eq!(esp.poll_event(), None);
    assert_eq!(esp.poll_timeout(), Some(now + s(200)));
    assert_eq!(
        esp.encapsulate(now + s(101), &inner, &mut out),
        EspAction::Drop(DropReason::SaExpired)
    );
    // The inbound SA's hard limit.
    esp.handle_timeout(now + s(1000));
    assert!(matches!(esp.poll_event(), Some(SaEvent::HardExpired { handle, .. }) if handle == sa2));
    assert_eq!(esp.poll_timeout(), None);
}

#[test]
fn stats_and_endpoints() {
    let mut p = Pair::new(
        Mode::Tunnel,
        Transform::AesGcm16 { key_bits: 128 },
        &with_salt(k16()),
        &[],
        true,
    );
    let inner = h(INNER);
    let esp = p.seal(&inner);
    p.tx.set_endpoints(p.out, sock("2001:db8:ee::2", 4501), sock(HA, 4500))
        .unwrap();
    let mut out = Vec::new();
    let EspAction::ToNetwork(tx) = p.tx.encapsulate(p.now, &inner, &mut out) else {
        panic!()
    };
    assert_eq!(tx.src, sock("2001:db8:ee::2", 4501));
    assert!(tx.udp);
    let esp2 = tx.data.to_vec();
    assert!(p.open(&esp).is_ok());
    assert!(p.open(&esp2).is_ok());
    assert_eq!(p.open(&esp2), Err(DropReason::Replay));
    let s = p.rx.stats();
    assert_eq!(s.sas.len(), 1);
    let c = s.sas[0].counters;
    assert_eq!(
        (c.packets, c.bytes, c.replay_drops),
        (2, 2 * inner.len() as u64, 1)
    );
    assert_eq!(s.drops.get(DropReason::Replay), 1);
    assert_eq!(s.drops.iter().map(|(_, n)| n).sum::<u64>(), 1);
    let tx_info = p.tx.sad().info(p.out).unwrap();
    assert_eq!((tx_info.seq, tx_info.counters.packets), (2, 2));
    assert_eq!(p.tx.sad().find_outbound(SPI), Some(p.out));
    assert_eq!(p.rx.sad().lookup_inbound(SPI), Some(p.inb));
    let mut other = Esp::new();
    assert_eq!(
        other.set_endpoints(p.out, tx.src, tx.dst),
        Err(SaError::UnknownSa)
    );
}

// ---- never panic -------------------------------------------------------------------------

/// A receiver with one SA of every transform, SPIs 1..=7, each in both modes.
fn all_receivers() -> Esp {
    let now = Instant::now();
    let mut esp = Esp::new();
    for (i, (t, ek, ik)) in suites().into_iter().enumerate() {
        for (j, mode) in [Mode::Tunnel, Mode::Transport].into_iter().enumerate() {
            let mut p = params(Direction::Inbound, mode, t, &ek, &ik, false, Selector::ANY);
            p.spi = u32::try_from(1 + i + 16 * j).unwrap();
            esp.add_sa(now, &p).unwrap();
        }
    }
    esp
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn decapsulate_never_panics(spi in 0u32..24, data in proptest::collection::vec(any::<u8>(), 0..300)) {
        let mut esp = all_receivers();
        let mut d = data.clone();
        if d.len() >= 4 {
            d[..4].copy_from_slice(&spi.to_be_bytes());
        }
        let mut out = Vec::new();
        let r = esp.decapsulate(Instant::now(), IpAddr::V6(a(HOA)), &d, &mut out);
        prop_assert!(matches!(r, EspAction::Drop(_)));
        let r = esp.decapsulate(Instant::now(), IpAddr::V6(a(HOA)), &data, &mut out);
        prop_assert!(matches!(r, EspAction::Drop(_)));
    }

    #[test]
    fn encapsulate_never_panics(data in proptest::collection::vec(any::<u8>(), 0..200), mode in 0u8..2) {
        let mode = if mode == 0 { Mode::Tunnel } else { Mode::Transport };
        let mut p = Pair::gcm128(mode);
        let mut d = data;
        if let Some(b) = d.first_mut() {
            *b = 0x60 | (*b & 0x0f);
        }
        let mut out = Vec::new();
        let _ = p.tx.encapsulate(p.now, &d, &mut out);
    }

    #[test]
    fn round_trip_any_payload(body in proptest::collection::vec(any::<u8>(), 0..600), suite in 0usize..7, tunnel in any::<bool>()) {
        let (t, ek, ik) = suites().swap_remove(suite);
        let mode = if tunnel { Mode::Tunnel } else { Mode::Transport };
        let mut p = Pair::new(mode, t, &ek, &ik, false);
        let mut pkt = Vec::new();
        build_ipv6_packet(a(HOA), a(CN), 253, 64, &body, &mut pkt).unwrap();
        let esp = p.seal(&pkt);
        let expected = if tunnel { pkt.clone() } else { body.clone() };
        prop_assert_eq!(p.open(&esp), Ok(expected));
        // Any single bit flip is caught.
        let mut bad = esp.clone();
        let i = body.len() % bad.len();
        bad[i] ^= 0x10;
        prop_assert!(p.open(&bad).is_err());
    }
}
