//! Phase-1 computation micro-benchmarks (issue 6), through `ikev1::crypto`'s public API.
//!
//! Per Diffie-Hellman group: key generation (what goes in our KE payload), agreement with the
//! peer's public value (g^xy), and both together (one side's whole DH work per exchange):
//! * ECP-256 (group 19) and X25519 (group 31): ring's ephemeral ECDH;
//! * MODP-2048 (group 14): crypto-bigint Montgomery exponentiation with a **256-bit** private
//!   exponent (`MODP_EXPONENT_BITS` in `src/crypto/dh.rs`), so generation and agreement are each
//!   one 2048-bit modular exponentiation with a 256-bit exponent.
//!
//! RSA: a PKCS#1 v1.5 signature over a 32-byte HASH_I (no DigestInfo, as IKEv1 signs) with
//! the 2048-bit test key, and its verification (e = 65537).
//!
//! Key schedule: SKEYID … SKEYID_e and Ka (PSK, SHA2-256, AES-128) over a MODP-2048 g^xy.
//!
//! Run: `cargo bench -p ikev1 --bench phase1`.

use std::hint::black_box;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use ikev1::crypto::{
    DhGroup, EncAlg, PrfAlg, RsaPrivateKey, SkeyidInput, SystemRng, derive_phase1,
};

const KEY_PKCS8: &str = include_str!("../testdata/rsa2048-pkcs8.pem");

fn dh(c: &mut Criterion) {
    let mut rng = SystemRng::new();
    for (name, group) in [
        ("ecp256", DhGroup::Ecp256),
        ("x25519", DhGroup::Curve25519),
        ("modp2048", DhGroup::Modp2048),
    ] {
        // The peer's public value, and a check that both sides agree.
        let peer = group.generate(&mut rng).unwrap();
        let peer_public = peer.public_value().to_vec();
        let ours = group.generate(&mut rng).unwrap();
        let our_public = ours.public_value().to_vec();
        assert_eq!(
            ours.agree(&peer_public).unwrap(),
            peer.agree(&our_public).unwrap(),
            "{name}"
        );

        let mut g = c.benchmark_group(format!("phase1/dh-{name}"));
        if group == DhGroup::Modp2048 {
            // Two 2048-bit exponentiations: fewer samples keep the run short.
            g.sample_size(20);
        }
        g.bench_function("generate", |b| {
            b.iter(|| group.generate(&mut rng).unwrap());
        });
        g.bench_function("agree", |b| {
            b.iter_batched(
                || group.generate(&mut rng).unwrap(),
                |s| s.agree(black_box(&peer_public)).unwrap(),
                BatchSize::SmallInput,
            );
        });
        g.bench_function("generate+agree", |b| {
            b.iter(|| {
                let s = group.generate(&mut rng).unwrap();
                let public = s.public_value().len();
                (public, s.agree(black_box(&peer_public)).unwrap())
            });
        });
        g.finish();
    }
}

fn rsa(c: &mut Criterion) {
    let key = RsaPrivateKey::from_pem(KEY_PKCS8).unwrap();
    let public = key.public();
    assert_eq!(public.modulus_len(), 256);
    let hash_i = [0x5au8; 32];
    let sig = key.sign_raw(&hash_i).unwrap();
    public.verify_raw(&hash_i, &sig).unwrap();

    let mut g = c.benchmark_group("phase1/rsa2048-pkcs1");
    g.sample_size(20);
    g.bench_function("sign", |b| {
        b.iter(|| key.sign_raw(black_box(&hash_i)).unwrap());
    });
    g.bench_function("verify", |b| {
        b.iter(|| {
            public
                .verify_raw(black_box(&hash_i), black_box(&sig))
                .unwrap()
        });
    });
    g.finish();
}

fn key_schedule(c: &mut Criterion) {
    let (ni, nr, g_xy) = ([1u8; 32], [2u8; 32], [3u8; 256]);
    let (cky_i, cky_r) = ([4u8; 8], [5u8; 8]);
    c.bench_function("phase1/skeyid-psk-sha256-aes128", |b| {
        b.iter(|| {
            derive_phase1(
                PrfAlg::Sha256,
                EncAlg::Aes128Cbc,
                SkeyidInput::PreSharedKey(b"secret"),
                black_box(&ni),
                &nr,
                black_box(&g_xy),
                &cky_i,
                &cky_r,
            )
        });
    });
}

criterion_group!(benches, dh, rsa, key_schedule);
criterion_main!(benches);
