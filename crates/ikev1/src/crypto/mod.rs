//! Cryptographic primitives for IKEv1 (RFC 2409), with no I/O and no protocol state.
//!
//! What lives here, and the RFC sections each part implements:
//!
//! - [`PrfAlg`]: the negotiated hash (Oakley attribute 2) as the IKE `prf` (HMAC, RFC 2409 §5 and
//!   App. B) and as the bare hash used for the CBC IVs (RFC 2409 App. B) and the NAT-D payloads
//!   (RFC 3947 §3.2).
//! - [`EncAlg`]: the phase-1/phase-2 message cipher, CBC without padding (RFC 2409 App. B;
//!   AES-CBC for IKE is RFC 3602 §5). The engine pads and keeps the IV chain.
//! - [`DhGroup`] / [`DhSecret`]: MODP groups 2, 5, 14 (RFC 2409 §6.2, RFC 3526), ECP groups 19
//!   and 20 (RFC 5903) and Curve25519 as private group 31 (RFC 8031's number).
//! - The key schedule ([`derive_phase1`], [`hash_i`], [`keymat`], [`qm_hash1`] …): RFC 2409
//!   §5, §5.5 and App. B, as pure functions of bytes.
//! - RSA signatures for Main Mode signature authentication (RFC 2409 §5.1: PKCS#1 v1.5 with no
//!   DigestInfo, as strongSwan and racoon do it) and X.509 certificate handling ([`Certificate`]).
//!
//! What is left out: Aggressive Mode specifics (the same functions apply), public-key encryption
//! authentication (RFC 2409 §5.2/§5.3), DSS and ECDSA signatures, revocation and path building.
//!
//! Secrets are held in [`zeroize::Zeroizing`] buffers, and every type that holds key material has a
//! `Debug` implementation that prints `<redacted>` instead. Nothing in this module logs.
//!
//! Randomness is passed in ([`Rng`]): the engine holds a `Box<dyn Rng>` and tests use
//! [`SeededRng`]. The one exception is ring's ECDH/X25519 key generation, which only accepts ring's
//! own (sealed) `SecureRandom` trait, so groups 19, 20 and 31 draw their ephemeral keys from the
//! operating system (see [`DhGroup::generate`]). RSA signing also blinds with the OS RNG inside
//! the `rsa` crate; blinding does not change the signature.

mod cipher;
mod dh;
mod keys;
mod prf;
mod rsa_sig;

use std::fmt;

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

pub use cipher::EncAlg;
pub use dh::{DhGroup, DhSecret};
pub use keys::*;
pub use prf::PrfAlg;
pub use rsa_sig::*;

/// Errors from the crypto layer. None of them carries key material.
#[non_exhaustive]
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum CryptoError {
    /// A peer's Diffie-Hellman public value has the wrong length or is not a valid group element
    /// (for MODP: not `1 < y < p-1`, RFC 6989 §2.1).
    #[error("invalid public value")]
    InvalidPublicValue,
    /// A key has the wrong length for the algorithm.
    #[error("bad key length")]
    BadKeyLength,
    /// A buffer to encrypt or decrypt is not a whole number of cipher blocks.
    #[error("ciphertext not a multiple of the block size")]
    BadCiphertextLength,
    /// A key (PEM/DER) could not be decoded or is unusable.
    #[error("key: {0}")]
    Key(String),
    /// An RSA signature did not verify.
    #[error("signature verification failed")]
    BadSignature,
    /// The random number generator failed.
    #[error("rng failure")]
    Rng,
    /// A CBC IV is not exactly one cipher block long.
    #[error("bad IV length")]
    BadIvLength,
    /// A certificate could not be parsed, or uses something this module does not support.
    #[error("certificate: {0}")]
    Certificate(String),
    /// A certificate is not valid at the time given (RFC 5280 §4.1.2.5).
    #[error("certificate not valid at the given time")]
    CertificateValidity,
    /// A certificate's issuer name is not the subject name of the supposed issuer.
    #[error("certificate issuer does not match")]
    IssuerMismatch,
}

/// A source of randomness (nonces, cookies, SPIs, DH exponents, padding).
///
/// The engine is sans-IO and never reads the OS RNG itself: it holds a `Box<dyn Rng>`.
/// Use [`SystemRng`] in production and [`SeededRng`] in tests and fuzzing.
pub trait Rng: Send {
    /// Fills `buf` with random bytes.
    ///
    /// Implementations that can fail (the OS RNG) panic: there is no sensible way to continue
    /// an IKE exchange without randomness.
    fn fill(&mut self, buf: &mut [u8]);
}

/// The operating system's CSPRNG, through `ring::rand::SystemRandom`.
#[derive(Clone, Debug)]
pub struct SystemRng(ring::rand::SystemRandom);

impl Default for SystemRng {
    fn default() -> Self {
        Self::new()
    }
}

impl SystemRng {
    /// Creates the OS-backed RNG.
    pub fn new() -> Self {
        Self(ring::rand::SystemRandom::new())
    }
}

impl Rng for SystemRng {
    /// # Panics
    /// If the operating system RNG fails (ring reports no detail).
    fn fill(&mut self, buf: &mut [u8]) {
        ring::rand::SecureRandom::fill(&self.0, buf).expect("operating system RNG failed");
    }
}

/// A deterministic RNG for tests and fuzzing: block `i` is `SHA-256(seed_be64 | i_be64)`.
///
/// Not for production use: anyone who knows the seed knows every output.
#[derive(Clone)]
pub struct SeededRng {
    seed: u64,
    counter: u64,
    block: [u8; 32],
    used: usize,
}

impl SeededRng {
    /// Creates the stream for `seed`. Equal seeds give equal streams.
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            counter: 0,
            block: [0; 32],
            used: 32,
        }
    }

    fn refill(&mut self) {
        let mut h = Sha256::new();
        h.update(self.seed.to_be_bytes());
        h.update(self.counter.to_be_bytes());
        self.block.copy_from_slice(&h.finalize());
        self.counter = self.counter.wrapping_add(1);
        self.used = 0;
    }
}

impl fmt::Debug for SeededRng {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SeededRng")
            .field("counter", &self.counter)
            .finish_non_exhaustive()
    }
}

impl Rng for SeededRng {
    fn fill(&mut self, buf: &mut [u8]) {
        for b in buf {
            if self.used == self.block.len() {
                self.refill();
            }
            *b = self.block[self.used];
            self.used += 1;
        }
    }
}

/// Compares two byte strings in time that depends only on their lengths.
///
/// Use it to compare a received HASH payload with the expected value.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A `Debug` placeholder for fields that hold secrets.
struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A zeroizing byte buffer.
type Secret = Zeroizing<Vec<u8>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_rng_is_deterministic_and_seed_dependent() {
        let (mut a, mut b, mut c) = (SeededRng::new(7), SeededRng::new(7), SeededRng::new(8));
        let (mut x, mut y, mut z) = ([0u8; 100], [0u8; 100], [0u8; 100]);
        a.fill(&mut x[..33]);
        a.fill(&mut x[33..]);
        b.fill(&mut y);
        c.fill(&mut z);
        assert_eq!(x, y);
        assert_ne!(x, z);
        // Block 0 is SHA-256(seed | 0).
        let mut h = Sha256::new();
        h.update(7u64.to_be_bytes());
        h.update(0u64.to_be_bytes());
        assert_eq!(&x[..32], &h.finalize()[..]);
        assert!(!format!("{a:?}").contains('7'));
    }

    #[test]
    fn system_rng_fills() {
        let mut r = SystemRng::new();
        let mut a = [0u8; 32];
        let mut b = [0u8; 32];
        r.fill(&mut a);
        r.fill(&mut b);
        assert_ne!(a, b);
    }

    #[test]
    fn secrets_can_move_between_threads() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<DhSecret>();
        send_sync::<Phase1Keys>();
        send_sync::<RsaPrivateKey>();
        send_sync::<Certificate>();
        send_sync::<SeededRng>();
        send_sync::<SystemRng>();
    }

    #[test]
    fn ct_eq_works() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
        assert!(ct_eq(b"", b""));
    }
}
