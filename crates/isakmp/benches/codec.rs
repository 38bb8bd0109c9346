//! ISAKMP codec micro-benchmarks (issue 6): parse and emit of each Main Mode and Quick Mode
//! message of a real strongSwan 5.9.8 exchange (`testdata/strongswan-5.9.8-psk/`).
//!
//! * MM1–MM4 are cleartext: full [`Message::parse`] (header, payload chain, every payload
//!   decoded) and [`Message::emit`].
//! * MM5, MM6 and QM1–QM3 are encrypted on the wire: what the codec does with them before
//!   decryption is the header parse plus the framing check ([`Message::parse`] returns
//!   [`WireError::Encrypted`] once the length is checked). Their payload chains are only
//!   reachable after decryption, so the hand-built cleartext MM5 and QM1 of
//!   `testdata/synthetic/` stand in for the decrypted chain (MM5: ID, HASH,
//!   N(INITIAL-CONTACT); QM1: HASH, SA with two ESP transforms, NONCE, KE (MODP-2048), two
//!   IDs, NAT-OA): full parse and emit.
//!
//! Run: `cargo bench -p isakmp --bench codec`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use isakmp::{Header, Message, WireError};

const CLEARTEXT: &[(&str, &[u8])] = &[
    (
        "mm1",
        include_bytes!("../testdata/strongswan-5.9.8-psk/01-mm1.bin"),
    ),
    (
        "mm2",
        include_bytes!("../testdata/strongswan-5.9.8-psk/02-mm2.bin"),
    ),
    (
        "mm3",
        include_bytes!("../testdata/strongswan-5.9.8-psk/03-mm3.bin"),
    ),
    (
        "mm4",
        include_bytes!("../testdata/strongswan-5.9.8-psk/04-mm4.bin"),
    ),
    (
        "mm5-plain",
        include_bytes!("../testdata/synthetic/mm5-plain.bin"),
    ),
    (
        "qm1-plain",
        include_bytes!("../testdata/synthetic/qm1-plain.bin"),
    ),
];

const ENCRYPTED: &[(&str, &[u8])] = &[
    (
        "mm5",
        include_bytes!("../testdata/strongswan-5.9.8-psk/05-mm5.bin"),
    ),
    (
        "mm6",
        include_bytes!("../testdata/strongswan-5.9.8-psk/06-mm6.bin"),
    ),
    (
        "qm1",
        include_bytes!("../testdata/strongswan-5.9.8-psk/09-qm1.bin"),
    ),
    (
        "qm2",
        include_bytes!("../testdata/strongswan-5.9.8-psk/10-qm2.bin"),
    ),
    (
        "qm3",
        include_bytes!("../testdata/strongswan-5.9.8-psk/11-qm3.bin"),
    ),
];

fn cleartext(c: &mut Criterion) {
    let mut parse = c.benchmark_group("isakmp/parse");
    for &(name, bytes) in CLEARTEXT {
        // The benchmark is only meaningful if the message round-trips.
        let m = Message::parse(bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(m.emit(), bytes, "{name}: emit differs");
        parse.bench_function(name, |b| {
            b.iter(|| Message::parse(black_box(bytes)).unwrap());
        });
    }
    parse.finish();

    let mut emit = c.benchmark_group("isakmp/emit");
    for &(name, bytes) in CLEARTEXT {
        let m = Message::parse(bytes).unwrap();
        emit.bench_function(name, |b| b.iter(|| black_box(&m).emit()));
    }
    emit.finish();
}

fn encrypted(c: &mut Criterion) {
    let mut g = c.benchmark_group("isakmp/parse-encrypted");
    for &(name, bytes) in ENCRYPTED {
        assert_eq!(Message::parse(bytes), Err(WireError::Encrypted), "{name}");
        g.bench_function(format!("{name}/header"), |b| {
            b.iter(|| Header::parse(black_box(bytes)).unwrap());
        });
        g.bench_function(format!("{name}/framing"), |b| {
            b.iter(|| Message::parse(black_box(bytes)).unwrap_err());
        });
    }
    g.finish();

    let mut g = c.benchmark_group("isakmp/emit-encrypted");
    for &(name, bytes) in ENCRYPTED {
        let h = Header::parse(bytes).unwrap();
        let mut out = Vec::with_capacity(bytes.len());
        g.bench_function(format!("{name}/header"), |b| {
            b.iter(|| {
                out.clear();
                black_box(&h).emit(&mut out);
                black_box(out.len())
            });
        });
    }
    g.finish();
}

criterion_group!(benches, cleartext, encrypted);
criterion_main!(benches);
