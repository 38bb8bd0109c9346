//! Writes seed inputs for the `ike_responder` and `ike_pair` fuzz targets.
//!
//! `ike_responder`: a real initiator engine (MODP-2048, so deterministic under `SeededRng`) runs
//! the bootstrap against the very responder the target builds (same configuration and seed);
//! every datagram the initiator sends becomes a record. Replayed by the target, the records take
//! its responder through Main Mode, Mode Config, the Quick Modes and the Deletes, where the
//! fuzzer starts mutating. Each seed is replayed once here to check that it is deterministic.
//!
//! `ike_pair`: a few link scripts (clean run per variant, losses, clock steps).
//!
//! Run from `fuzz/`: `cargo run --example gen_ike_seeds` (writes into `corpus/`).

#[path = "../fuzz_targets/ike_common/mod.rs"]
mod ike_common;

use std::collections::VecDeque;
use std::fs;

use ike_common::{MnVariant, Record, Responder};
use ikev1::crypto::SeededRng;
use ikev1::{Engine, Event, Transmit};

/// Runs initiators (one after the other, from the same address) against the target's
/// responder; returns the records and what the responder sent.
fn responder_seed(v: MnVariant, teardown: bool, sessions: u64) -> (Vec<u8>, Vec<Vec<u8>>) {
    let mut r = Responder::new();
    let mut out = Vec::new();
    let mut sent_back = Vec::new();
    for session in 0..sessions {
        let rng = SeededRng::new(ike_common::MN_SEED + session);
        let mut mn = Engine::new(ike_common::mn_config(v), Box::new(rng));
        run_session(&mut r, &mut mn, teardown, &mut out, &mut sent_back);
    }
    let c = r.engine.counters();
    let ok = if v.xauth_wrong { 0 } else { sessions };
    assert_eq!(c.ike_established, ok, "{v:?}: {c:?}");
    assert_eq!(c.child_established, 2 * ok, "{v:?}: {c:?}");
    assert_eq!(c.dropped_auth + c.dropped_malformed, 0, "{v:?}: {c:?}");
    if v.xauth.is_some() {
        assert_eq!(c.xauth_succeeded, ok, "{v:?}: {c:?}");
        assert_eq!(c.xauth_failed, sessions - ok, "{v:?}: {c:?}");
    }
    (out, sent_back)
}

fn run_session(
    r: &mut Responder,
    mn: &mut Engine,
    teardown: bool,
    out: &mut Vec<u8>,
    sent_back: &mut Vec<Vec<u8>>,
) {
    let mut to_ha: VecDeque<Transmit> = VecDeque::new();
    let mn_addr = ike_common::mn_addr();
    mn.initiate(r.now, 0, mn_addr, ike_common::ha_addr())
        .unwrap();
    let (mut sa, mut children, mut torn_down) = (None, 0, false);
    for _ in 0..200 {
        while let Some(e) = mn.poll_event() {
            match e {
                Event::IkeSaEstablished { sa: s, .. } => {
                    sa = Some(s);
                    mn.request_mode_config(r.now, s).unwrap();
                }
                Event::ModeConfigReceived { sa: s, config } => {
                    for req in ike_common::rfc3776_requests(config.address.unwrap()) {
                        mn.initiate_child(r.now, s, req).unwrap();
                    }
                }
                Event::ChildSaEstablished(_) => children += 1,
                _ => {}
            }
        }
        if teardown && children == 2 && !torn_down && to_ha.is_empty() {
            torn_down = true;
            mn.delete_ike_sa(r.now, sa.unwrap()).unwrap();
        }
        while let Some(t) = mn.poll_transmit() {
            to_ha.push_back(t);
        }
        let Some(t) = to_ha.pop_front() else { break };
        assert_eq!(t.local.ip(), mn_addr.ip());
        let natt = t.remote.port() == ike_common::NATT_PORT;
        assert_eq!(
            t.local.port(),
            t.remote.port(),
            "no NAT-mapped port in the seeds"
        );
        let rec = Record {
            flags: u8::from(natt),
            fix_cookie: false,
            fix_len: false,
            data: &t.data,
            replay: None,
        };
        rec.encode(out);
        for o in r.step(&rec) {
            sent_back.push(o.data.clone());
            mn.handle_datagram(r.now, o.remote, o.local, &o.data);
        }
    }
    if mn
        .config()
        .local_auth
        .xauth_credentials()
        .is_some_and(|c| *c.password != *ike_common::XAUTH_PASSWORD)
    {
        assert_eq!(children, 0, "XAUTH was refused: no child SA");
        assert!(mn.ike_sas().is_empty(), "XAUTH was refused: no SA left");
    } else {
        assert_eq!(children, 2, "bootstrap did not complete");
    }
}

fn main() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let rdir = dir.join("ike_responder");
    let pdir = dir.join("ike_pair");
    fs::create_dir_all(&rdir).unwrap();
    fs::create_dir_all(&pdir).unwrap();
    let natt = MnVariant {
        force_encap: true,
        ..MnVariant::default()
    };
    let pfs = MnVariant {
        pfs: true,
        ..MnVariant::default()
    };
    let cbc = MnVariant {
        cbc: true,
        ..MnVariant::default()
    };
    let plain = MnVariant::default();
    let xauth_generic = MnVariant {
        xauth: Some(ikev1::XauthType::Generic),
        ..MnVariant::default()
    };
    let xauth_chap = MnVariant {
        xauth: Some(ikev1::XauthType::RadiusChap),
        ..MnVariant::default()
    };
    let xauth_wrong = MnVariant {
        xauth_wrong: true,
        ..xauth_chap
    };
    // (name, variant, delete at the end, sessions one after the other from the same address)
    let variants = [
        ("plain", plain, false, 1),
        ("plain-delete", plain, true, 1),
        ("plain-twice", plain, false, 2),
        ("natt", natt, false, 1),
        ("natt-delete", natt, true, 1),
        ("natt-twice", natt, false, 2),
        ("pfs", pfs, false, 1),
        ("cbc", cbc, false, 1),
        ("xauth-generic", xauth_generic, true, 1),
        ("xauth-chap", xauth_chap, false, 1),
        ("xauth-chap-twice", xauth_chap, false, 2),
        ("xauth-wrong", xauth_wrong, false, 1),
        (
            "xauth-wrong-generic",
            MnVariant {
                xauth_wrong: true,
                ..xauth_generic
            },
            false,
            2,
        ),
    ];
    for (name, v, teardown, sessions) in variants {
        let (seed, sent) = responder_seed(v, teardown, sessions);
        // Replay: the target must see exactly the same answers.
        let mut r = Responder::new();
        let mut again = Vec::new();
        for rec in ike_common::parse_records(&seed) {
            again.extend(r.step(&rec).into_iter().map(|t| t.data));
        }
        r.finish();
        assert_eq!(again, sent, "{name}: replay is not deterministic");
        let c = r.engine.counters();
        println!(
            "ike_responder/seed-{name}: {} bytes, {} records, ike {} child {}",
            seed.len(),
            ike_common::parse_records(&seed).len(),
            c.ike_established,
            c.child_established
        );
        fs::write(rdir.join(format!("seed-{name}")), &seed).unwrap();
    }
    // A lone MM1 from each source address, and on the NAT-T port with a mapped port.
    {
        let (seed, _) = responder_seed(MnVariant::default(), false, 1);
        let first = &ike_common::parse_records(&seed)[0];
        let mut out = Vec::new();
        for flags in [0u8, 2, 4, 0x0b] {
            let mut d = first.data.to_vec();
            if flags & 1 != 0 {
                d.splice(0..0, [0u8; 4]);
            }
            Record {
                flags,
                fix_cookie: false,
                fix_len: false,
                data: &d,
                replay: None,
            }
            .encode(&mut out);
        }
        fs::write(rdir.join("seed-mm1-sources"), &out).unwrap();
    }
    // Pair: each variant clean, then some link scripts.
    for v in (0u8..16).chain([0x10, 0x30, 0x50, 0x70, 0x31]) {
        fs::write(pdir.join(format!("seed-variant-{v:x}")), [v]).unwrap();
    }
    let scripts: [(&str, Vec<u8>); 5] = [
        (
            "drop-every-third",
            [0u8]
                .into_iter()
                .chain((0..60).map(|i| if i % 3 == 2 { 2 } else { 0 }))
                .collect(),
        ),
        ("dup-all", [0u8].into_iter().chain([3u8; 40]).collect()),
        (
            "reorder",
            [0u8]
                .into_iter()
                .chain((0..60).map(|i| if i % 2 == 1 { 7 } else { 0 }))
                .collect(),
        ),
        (
            "clock-steps",
            [6u8]
                .into_iter()
                .chain((0..60).map(|i| 0x08 | ((i % 8) << 4) as u8))
                .collect(),
        ),
        (
            "nat-rebind",
            [1u8]
                .into_iter()
                .chain((0..30).map(|i| if i == 8 { 0x80 } else { 0 }))
                .collect(),
        ),
    ];
    for (name, s) in scripts {
        let p = ike_common::Pair::fuzz(&s);
        println!(
            "ike_pair/seed-{name}: {} bytes, MN established {:?}, children up {}",
            s.len(),
            p.mn_established,
            p.children_up
        );
        fs::write(pdir.join(format!("seed-{name}")), &s).unwrap();
    }
}
