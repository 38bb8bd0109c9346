//! Fuzzes ESP inbound processing (crates/esp) with untrusted packets.
//!
//! The first input byte picks what to do; the rest is the packet:
//! * bit 7 set: `rest` goes to `decapsulate` as it is (bit 6: its SPI is first replaced by
//!   the installed SA's, so the replay and ICV paths run); bits 0-3 pick the suite and mode;
//! * bit 7 clear: `rest` is `seq (4 bytes) ‖ plaintext`, sealed with the keys of the chosen
//!   SA (`esp::fuzzing`), so the fuzzer reaches what lies behind the ICV: padding, Next
//!   Header, the inner IPv6 walk and the selector checks;
//! * in both cases `rest` is also sent through `encapsulate` as a TUN packet and, when it is
//!   sealed, opened again by the receiver.
//!
//! Invariants checked: nothing panics; a random packet never authenticates; what
//! `decapsulate` delivers lies inside the plaintext that was sealed; what `encapsulate`
//! seals opens to the same packet (tunnel) or upper-layer payload (transport).
#![no_main]

use std::net::{IpAddr, Ipv6Addr};
use std::time::Instant;

use esp::{
    Direction, Esp, EspAction, Mode, PacketInfo, PolicyAction, SaParams, Selector, SpdEntry,
    Transform,
};
use libfuzzer_sys::fuzz_target;

const SUITES: [(Transform, usize, usize); 5] = [
    (Transform::AesGcm16 { key_bits: 128 }, 20, 0),
    (Transform::AesGcm16 { key_bits: 256 }, 36, 0),
    (Transform::AesCbcHmacSha1_96 { key_bits: 128 }, 16, 20),
    (Transform::AesCbcHmacSha256_128 { key_bits: 192 }, 24, 32),
    (Transform::AesCbcHmacSha256_128 { key_bits: 256 }, 32, 32),
];

fn spi(suite: usize, mode: Mode) -> u32 {
    0x100 + suite as u32 * 2 + u32::from(mode == Mode::Transport)
}

/// An engine with an inbound and an outbound SA of one suite and mode, with the same SPI and
/// keys (so it talks to itself), and a policy that protects everything with the outbound SA.
fn engine(now: Instant, suite: usize, mode: Mode) -> Esp {
    let (t, ek, ik) = SUITES[suite];
    let encr: Vec<u8> = (0..ek).map(|b| b as u8 ^ suite as u8).collect();
    let integ: Vec<u8> = (0..ik).map(|b| b as u8 ^ 0x5a).collect();
    let mut e = Esp::new();
    for dir in [Direction::Inbound, Direction::Outbound] {
        let p = SaParams::new(spi(suite, mode), dir, mode, t, &encr, &integ);
        let h = e.add_sa(now, &p).expect("valid SA");
        if dir == Direction::Outbound {
            e.spd_mut().push(SpdEntry {
                selector: Selector::ANY,
                direction: Direction::Outbound,
                action: PolicyAction::Protect(h),
            });
        }
    }
    e
}

fn check_decap(action: &EspAction<'_>, plaintext: Option<&[u8]>) {
    match action {
        EspAction::ToTun(p) => {
            let plain = plaintext.expect("a random packet authenticated");
            assert!(
                plain.starts_with(p),
                "delivered bytes are not the plaintext"
            );
            let info = PacketInfo::parse(p).expect("ToTun carries an IPv6 packet");
            assert_eq!(info.total_len, p.len());
        }
        EspAction::Transport(t) => {
            let plain = plaintext.expect("a random packet authenticated");
            assert!(plain.starts_with(t.payload));
            assert_eq!(plain[plain.len() - 1], t.next_header);
        }
        EspAction::Drop(_) => {}
        other => panic!("decapsulate returned {other:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, rest)) = data.split_first() else {
        return;
    };
    let now = Instant::now();
    let suite = usize::from(ctl & 0x7) % SUITES.len();
    let mode = if ctl & 0x8 == 0 {
        Mode::Tunnel
    } else {
        Mode::Transport
    };
    let mut e = engine(now, suite, mode);
    let src = IpAddr::V6(Ipv6Addr::LOCALHOST);
    let mut out = Vec::new();

    if ctl & 0x80 != 0 {
        let mut pkt = rest.to_vec();
        if ctl & 0x40 != 0 && pkt.len() >= 4 {
            pkt[..4].copy_from_slice(&spi(suite, mode).to_be_bytes());
        }
        let a = e.decapsulate(now, src, &pkt, &mut out);
        check_decap(&a, None);
    } else if rest.len() >= 4 {
        let seq = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
        // CBC can only seal whole blocks (GCM anything).
        let block = SUITES[suite].0.block_len();
        let plain = &rest[4..];
        let plain = if block > 4 {
            &plain[..plain.len() / block * block]
        } else {
            plain
        };
        let mut sealed = Vec::new();
        assert!(esp::fuzzing::seal_plaintext(
            &e,
            spi(suite, mode),
            seq,
            plain,
            &mut sealed
        ));
        let a = e.decapsulate(now, src, &sealed, &mut out);
        check_decap(&a, Some(plain));
        // The same packet again is a replay (or was dropped before it was marked).
        let again = e.decapsulate(now, src, &sealed, &mut out);
        assert!(matches!(again, EspAction::Drop(_)));
    }

    // The bytes as a packet from the TUN device, through a fresh engine's outbound SA.
    let mut e = engine(now, suite, mode);
    let mut sealed = Vec::new();
    let expected: Option<Vec<u8>> = match e.encapsulate(now, rest, &mut sealed) {
        EspAction::ToNetwork(t) => {
            assert_eq!(esp::wire::spi(t.data), Some(spi(suite, mode)));
            let info = PacketInfo::parse(rest).expect("sealed a packet that does not parse");
            let sealed = t.data.to_vec();
            let expected = match mode {
                Mode::Tunnel => rest[..info.total_len].to_vec(),
                Mode::Transport => rest[info.esp_offset..info.total_len].to_vec(),
            };
            Some([expected, sealed].concat())
        }
        EspAction::Drop(_) => None,
        other => panic!("encapsulate returned {other:?}"),
    };
    if let Some(both) = expected {
        let info = PacketInfo::parse(rest).expect("parsed above");
        let n = match mode {
            Mode::Tunnel => info.total_len,
            Mode::Transport => info.total_len - info.esp_offset,
        };
        let (want, pkt) = both.split_at(n);
        match e.decapsulate(now, src, pkt, &mut out) {
            EspAction::ToTun(p) => assert_eq!(p, want),
            EspAction::Transport(t) => assert_eq!(t.payload, want),
            // Transport mode of a packet whose upper layer is "No Next Header" (59) looks
            // like a dummy packet (RFC 4303 §2.6) to the receiver.
            EspAction::Drop(esp::DropReason::DummyPacket)
                if mode == Mode::Transport && rest[info.esp_nh_index] == 59 => {}
            // An inner packet whose own walk fails after decryption cannot happen: it
            // parsed before sealing.
            other => panic!("own packet did not open: {other:?}"),
        }
    }
});
