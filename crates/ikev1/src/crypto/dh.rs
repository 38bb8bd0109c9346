//! Diffie-Hellman for the KE payload (RFC 2409 §5, groups from RFC 2409 §6.2, RFC 3526,
//! RFC 5903 and RFC 8031).
//!
//! | id | group | KE payload data | shared secret g^xy |
//! |----|-------|-----------------|--------------------|
//! | 2  | MODP-1024 (RFC 2409 §6.2) | y, 128 bytes, big-endian, left-padded | 128 bytes, left-padded |
//! | 5  | MODP-1536 (RFC 3526 §2)   | 192 bytes | 192 bytes |
//! | 14 | MODP-2048 (RFC 3526 §3)   | 256 bytes | 256 bytes |
//! | 19 | ECP P-256 (RFC 5903)      | x ‖ y, 64 bytes, no 0x04 prefix (RFC 5903 §7) | x only, 32 bytes (RFC 5903 §7) |
//! | 20 | ECP P-384 (RFC 5903)      | x ‖ y, 96 bytes | x only, 48 bytes |
//! | 31 | Curve25519 (RFC 8031 §2; IKEv2's number, non-standard in IKEv1) | 32 bytes (RFC 7748) | 32 bytes |
//!
//! MODP uses crypto-bigint's constant-time Montgomery exponentiation with a 256-bit private
//! exponent (RFC 3526 §8 asks for twice the symmetric strength: 2 × 112–128 bits for these
//! groups). A peer value is accepted only if it has the full modulus length and `1 < y < p-1`
//! (RFC 6989 §2.1; for these safe primes that rules out the subgroups of order 1 and 2).
//! The shared secret is left-zero-padded to the modulus length, as RFC 2409 §5 and strongSwan
//! expect: a 255-byte g^xy would give a different SKEYID.
//!
//! ECP and X25519 use ring's ephemeral agreement; ring checks that a peer point is on the curve,
//! and that an X25519 result is not all zero.

use std::fmt;
use std::sync::OnceLock;

use crypto_bigint::BoxedUint;
use crypto_bigint::Odd;
use crypto_bigint::modular::{BoxedMontyForm, BoxedMontyParams};
use ring::agreement;
use zeroize::Zeroizing;

use super::{CryptoError, Redacted, Rng, Secret};

/// The 1024-bit MODP group (Oakley group 2), RFC 2409 §6.2. Generator 2.
const MODP1024_P: &str = concat!(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74",
    "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437",
    "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED",
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE65381FFFFFFFFFFFFFFFF",
);

/// The 1536-bit MODP group (group 5), RFC 3526 §2. Generator 2.
const MODP1536_P: &str = concat!(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74",
    "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437",
    "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED",
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05",
    "98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB",
    "9ED529077096966D670C354E4ABC9804F1746C08CA237327FFFFFFFFFFFFFFFF",
);

/// The 2048-bit MODP group (group 14), RFC 3526 §3. Generator 2.
const MODP2048_P: &str = concat!(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74",
    "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437",
    "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED",
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05",
    "98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB",
    "9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B",
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718",
    "3995497CEA956AE515D2261898FA051015728E5A8AACAA68FFFFFFFFFFFFFFFF",
);

/// Bits in a MODP private exponent (see the module documentation).
const MODP_EXPONENT_BITS: u32 = 256;

/// A Diffie-Hellman group, by IKE Group Description (Oakley attribute 4) number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DhGroup {
    /// Group 2: 1024-bit MODP (RFC 2409 §6.2). Weak; for legacy peers only.
    Modp1024,
    /// Group 5: 1536-bit MODP (RFC 3526 §2).
    Modp1536,
    /// Group 14: 2048-bit MODP (RFC 3526 §3).
    Modp2048,
    /// Group 19: 256-bit random ECP group, NIST P-256 (RFC 5903 §3.1).
    Ecp256,
    /// Group 20: 384-bit random ECP group, NIST P-384 (RFC 5903 §3.2).
    Ecp384,
    /// Group 31: Curve25519 (RFC 8031). Defined for IKEv2; strongSwan also accepts it in IKEv1.
    Curve25519,
}

/// Parameters of one MODP group, computed once.
struct Modp {
    /// The prime, big-endian, exactly `len` bytes.
    p: Vec<u8>,
    /// p - 1, big-endian.
    p_minus_1: Vec<u8>,
    params: BoxedMontyParams,
}

impl Modp {
    fn new(hex_p: &str) -> Self {
        let p = decode_hex(hex_p);
        let bits = u32::try_from(p.len() * 8).expect("MODP prime size fits u32");
        let p_uint = BoxedUint::from_be_slice(&p, bits).expect("prime fits its own length");
        let odd = Odd::new(p_uint).into_option().expect("MODP primes are odd");
        let mut p_minus_1 = p.clone();
        // p is odd, so its last byte is at least 1 and there is no borrow.
        *p_minus_1.last_mut().expect("non-empty prime") -= 1;
        Self {
            p,
            p_minus_1,
            // The modulus is public: variable time is fine for the set-up.
            params: BoxedMontyParams::new_vartime(odd),
        }
    }

    fn bits(&self) -> u32 {
        self.params.bits_precision()
    }

    /// base^exponent mod p, big-endian, left-padded to |p|.
    fn pow(&self, base: &[u8], exponent: &[u8]) -> Secret {
        let base =
            BoxedUint::from_be_slice(base, self.bits()).expect("base checked to be |p| bytes");
        let exponent = Zeroizing::new(
            BoxedUint::from_be_slice(exponent, MODP_EXPONENT_BITS).expect("exponent is 256 bits"),
        );
        let base = BoxedMontyForm::new(base, &self.params);
        let result = Zeroizing::new(base.pow_bounded_exp(&exponent, MODP_EXPONENT_BITS));
        let value = Zeroizing::new(result.retrieve());
        let bytes = Zeroizing::new(value.to_be_bytes().into_vec());
        debug_assert_eq!(bytes.len(), self.p.len());
        bytes
    }

    /// RFC 6989 §2.1: the peer value must satisfy 1 < y < p-1. Big-endian byte strings of equal
    /// length compare like the integers they encode; `y` is public, so this need not be
    /// constant-time.
    fn check_peer(&self, y: &[u8]) -> Result<(), CryptoError> {
        if y.len() != self.p.len() {
            return Err(CryptoError::InvalidPublicValue);
        }
        let mut one = vec![0u8; self.p.len()];
        *one.last_mut().expect("non-empty") = 1;
        if y > one.as_slice() && y < self.p_minus_1.as_slice() {
            Ok(())
        } else {
            Err(CryptoError::InvalidPublicValue)
        }
    }
}

fn decode_hex(s: &str) -> Vec<u8> {
    let nibble = |c: u8| match c {
        b'0'..=b'9' => c - b'0',
        b'A'..=b'F' => c - b'A' + 10,
        b'a'..=b'f' => c - b'a' + 10,
        _ => panic!("bad hex digit in a built-in constant"),
    };
    s.as_bytes()
        .chunks(2)
        .map(|pair| (nibble(pair[0]) << 4) | nibble(pair[1]))
        .collect()
}

impl DhGroup {
    /// Maps an IKE Group Description number to a supported group.
    pub fn from_id(id: u16) -> Option<Self> {
        match id {
            2 => Some(Self::Modp1024),
            5 => Some(Self::Modp1536),
            14 => Some(Self::Modp2048),
            19 => Some(Self::Ecp256),
            20 => Some(Self::Ecp384),
            31 => Some(Self::Curve25519),
            _ => None,
        }
    }

    /// The IKE Group Description number.
    pub fn id(self) -> u16 {
        match self {
            Self::Modp1024 => 2,
            Self::Modp1536 => 5,
            Self::Modp2048 => 14,
            Self::Ecp256 => 19,
            Self::Ecp384 => 20,
            Self::Curve25519 => 31,
        }
    }

    /// Length in bytes of the KE payload data for this group.
    pub fn public_len(self) -> usize {
        match self {
            Self::Modp1024 => 128,
            Self::Modp1536 => 192,
            Self::Modp2048 => 256,
            Self::Ecp256 => 64,
            Self::Ecp384 => 96,
            Self::Curve25519 => 32,
        }
    }

    /// Length in bytes of the shared secret g^xy.
    pub fn shared_len(self) -> usize {
        match self {
            Self::Modp1024 | Self::Modp1536 | Self::Modp2048 => self.public_len(),
            Self::Ecp256 | Self::Curve25519 => 32,
            Self::Ecp384 => 48,
        }
    }

    fn modp(self) -> Option<&'static Modp> {
        static M1024: OnceLock<Modp> = OnceLock::new();
        static M1536: OnceLock<Modp> = OnceLock::new();
        static M2048: OnceLock<Modp> = OnceLock::new();
        match self {
            Self::Modp1024 => Some(M1024.get_or_init(|| Modp::new(MODP1024_P))),
            Self::Modp1536 => Some(M1536.get_or_init(|| Modp::new(MODP1536_P))),
            Self::Modp2048 => Some(M2048.get_or_init(|| Modp::new(MODP2048_P))),
            Self::Ecp256 | Self::Ecp384 | Self::Curve25519 => None,
        }
    }

    fn ring_alg(self) -> Option<&'static agreement::Algorithm> {
        match self {
            Self::Ecp256 => Some(&agreement::ECDH_P256),
            Self::Ecp384 => Some(&agreement::ECDH_P384),
            Self::Curve25519 => Some(&agreement::X25519),
            Self::Modp1024 | Self::Modp1536 | Self::Modp2048 => None,
        }
    }

    /// Creates a fresh key pair.
    ///
    /// MODP groups draw the 256-bit private exponent from `rng`, so they are deterministic
    /// under [`SeededRng`](super::SeededRng). ECP and Curve25519 keys come from ring, whose
    /// key generation accepts only ring's sealed `SecureRandom`: they use the operating system
    /// RNG (`ring::rand::SystemRandom`) and ignore `rng`.
    pub fn generate(self, rng: &mut dyn Rng) -> Result<DhSecret, CryptoError> {
        if let Some(modp) = self.modp() {
            let mut x = Zeroizing::new(vec![0u8; (MODP_EXPONENT_BITS / 8) as usize]);
            rng.fill(&mut x);
            // Set the top bit: x is a full 256-bit number, never 0 or 1.
            x[0] |= 0x80;
            return Ok(DhSecret::modp(self, modp, x));
        }
        let alg = self.ring_alg().expect("non-MODP groups are ring groups");
        let sys = ring::rand::SystemRandom::new();
        let private =
            agreement::EphemeralPrivateKey::generate(alg, &sys).map_err(|_| CryptoError::Rng)?;
        let public = private.compute_public_key().map_err(|_| CryptoError::Rng)?;
        let public = match self {
            // ring encodes the point uncompressed, 0x04 ‖ x ‖ y; IKE (RFC 5903 §7) drops the 0x04.
            Self::Ecp256 | Self::Ecp384 => public.as_ref()[1..].to_vec(),
            _ => public.as_ref().to_vec(),
        };
        debug_assert_eq!(public.len(), self.public_len());
        Ok(DhSecret {
            group: self,
            public,
            private: Private::Ring(private),
        })
    }
}

enum Private {
    /// The MODP exponent, big-endian, 32 bytes.
    Modp(Secret),
    Ring(agreement::EphemeralPrivateKey),
}

/// One side's ephemeral Diffie-Hellman key pair. The private part is never shown by `Debug`.
///
/// A MODP exponent is zeroized on drop. ring's ECDH/X25519 private keys are dropped by ring,
/// which does not zeroize them (its `agreement.rs` says so); they live only for one exchange.
pub struct DhSecret {
    group: DhGroup,
    public: Vec<u8>,
    private: Private,
}

impl fmt::Debug for DhSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DhSecret")
            .field("group", &self.group)
            .field("private", &Redacted)
            .finish_non_exhaustive()
    }
}

impl DhSecret {
    fn modp(group: DhGroup, modp: &Modp, exponent: Secret) -> Self {
        let mut g = vec![0u8; modp.p.len()];
        *g.last_mut().expect("non-empty") = 2;
        let public = modp.pow(&g, &exponent).to_vec();
        Self {
            group,
            public,
            private: Private::Modp(exponent),
        }
    }

    /// A MODP key pair with a given exponent (tests only).
    #[cfg(test)]
    pub(crate) fn modp_with_exponent(group: DhGroup, exponent: &[u8]) -> Self {
        let modp = group.modp().expect("a MODP group");
        assert_eq!(exponent.len(), 32);
        Self::modp(group, modp, Zeroizing::new(exponent.to_vec()))
    }

    /// The group this key belongs to.
    pub fn group(&self) -> DhGroup {
        self.group
    }

    /// Our public value, exactly as it goes in the KE payload data.
    pub fn public_value(&self) -> &[u8] {
        &self.public
    }

    /// Computes g^xy from the peer's KE payload data, consuming the private key.
    ///
    /// Rejects a peer value of the wrong length, a MODP value outside `1 < y < p-1`, a point not
    /// on the curve, and an X25519 result of zero ([`CryptoError::InvalidPublicValue`]). The
    /// result has [`DhGroup::shared_len`] bytes (MODP: left-zero-padded to |p|).
    pub fn agree(self, peer_public: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        if peer_public.len() != self.group.public_len() {
            return Err(CryptoError::InvalidPublicValue);
        }
        match self.private {
            Private::Modp(ref x) => {
                let modp = self.group.modp().expect("MODP key in a MODP group");
                modp.check_peer(peer_public)?;
                Ok(modp.pow(peer_public, x))
            }
            Private::Ring(private) => {
                let alg = self.group.ring_alg().expect("ring key in a ring group");
                let peer = match self.group {
                    DhGroup::Ecp256 | DhGroup::Ecp384 => {
                        let mut v = Vec::with_capacity(peer_public.len() + 1);
                        v.push(0x04);
                        v.extend_from_slice(peer_public);
                        v
                    }
                    _ => peer_public.to_vec(),
                };
                let peer = agreement::UnparsedPublicKey::new(alg, peer);
                agreement::agree_ephemeral(private, &peer, |shared| Zeroizing::new(shared.to_vec()))
                    .map_err(|_| CryptoError::InvalidPublicValue)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::SeededRng;
    use sha2::{Digest, Sha256};

    const ALL: [DhGroup; 6] = [
        DhGroup::Modp1024,
        DhGroup::Modp1536,
        DhGroup::Modp2048,
        DhGroup::Ecp256,
        DhGroup::Ecp384,
        DhGroup::Curve25519,
    ];
    const MODP: [DhGroup; 3] = [DhGroup::Modp1024, DhGroup::Modp1536, DhGroup::Modp2048];

    #[test]
    fn ids_round_trip() {
        for g in ALL {
            assert_eq!(DhGroup::from_id(g.id()), Some(g));
        }
        for id in [0, 1, 15, 21, 32] {
            assert_eq!(DhGroup::from_id(id), None);
        }
    }

    #[test]
    fn primes_are_built_in_correctly() {
        for g in MODP {
            let m = g.modp().unwrap();
            assert_eq!(m.p.len(), g.public_len());
            assert_eq!(m.bits() as usize, g.public_len() * 8);
            // RFC 2409 §6.2 / RFC 3526: the top and bottom 64 bits are all ones.
            assert!(
                m.p[..8]
                    .iter()
                    .chain(&m.p[m.p.len() - 8..])
                    .all(|&b| b == 0xff)
            );
        }
    }

    #[test]
    fn both_sides_agree_in_every_group() {
        let mut rng = SeededRng::new(1);
        for g in ALL {
            let a = g.generate(&mut rng).unwrap();
            let b = g.generate(&mut rng).unwrap();
            assert_eq!(a.group(), g);
            assert_eq!(a.public_value().len(), g.public_len());
            assert_ne!(a.public_value(), b.public_value());
            let (pa, pb) = (a.public_value().to_vec(), b.public_value().to_vec());
            let s1 = a.agree(&pb).unwrap();
            let s2 = b.agree(&pa).unwrap();
            assert_eq!(s1, s2, "{g:?}");
            assert_eq!(s1.len(), g.shared_len(), "{g:?}");
        }
    }

    #[test]
    fn modp_is_deterministic_under_a_seeded_rng() {
        let a = DhGroup::Modp1024.generate(&mut SeededRng::new(9)).unwrap();
        let b = DhGroup::Modp1024.generate(&mut SeededRng::new(9)).unwrap();
        assert_eq!(a.public_value(), b.public_value());
    }

    /// g^x for x = 2^255 + 12345, checked against Python's `pow(2, x, p)` (SHA-256 of the
    /// left-padded big-endian result).
    #[test]
    fn modp_known_answer() {
        let mut x = [0u8; 32];
        x[0] = 0x80;
        x[30..].copy_from_slice(&12345u16.to_be_bytes());
        for (g, digest) in [
            (
                DhGroup::Modp1024,
                "d2056eb4e51d1e90349466e46fc9aa8950bc5469a79835d0cc066191570ba864",
            ),
            (
                DhGroup::Modp1536,
                "a3689d7fb34c6c2dd3fffef918b7474d219fcbd4291b603bca56432842b86b1e",
            ),
            (
                DhGroup::Modp2048,
                "c52d358e0a9db64d71e225d70996417225dc15b2c87d0f7de47bdaa0d27824b9",
            ),
        ] {
            let s = DhSecret::modp_with_exponent(g, &x);
            assert_eq!(
                hex::encode(Sha256::digest(s.public_value())),
                digest,
                "{g:?}"
            );
        }
    }

    #[test]
    fn modp_rejects_bad_peer_values() {
        let mut rng = SeededRng::new(2);
        for g in MODP {
            let p = g.modp().unwrap().p.clone();
            let n = p.len();
            let int = |v: u8| {
                let mut b = vec![0u8; n];
                b[n - 1] = v;
                b
            };
            let mut p_minus_1 = p.clone();
            p_minus_1[n - 1] -= 1;
            let mut p_plus_1 = p.clone();
            // p + 1: the low 64 one-bits carry into the byte above them.
            p_plus_1[n - 8..].copy_from_slice(&[0; 8]);
            p_plus_1[n - 9] += 1;
            for bad in [
                int(0),
                int(1),
                p_minus_1,
                p.clone(),
                p_plus_1,
                vec![0xff; n],
            ] {
                let s = g.generate(&mut rng).unwrap();
                assert_eq!(s.agree(&bad), Err(CryptoError::InvalidPublicValue), "{g:?}");
            }
            for len in [0, n - 1, n + 1] {
                let s = g.generate(&mut rng).unwrap();
                assert_eq!(s.agree(&vec![2; len]), Err(CryptoError::InvalidPublicValue));
            }
            // 2 and p-2 are the smallest and largest accepted values.
            let mut p_minus_2 = p.clone();
            p_minus_2[n - 1] -= 2;
            for good in [int(2), p_minus_2] {
                let s = g.generate(&mut rng).unwrap();
                assert_eq!(s.agree(&good).unwrap().len(), n);
            }
        }
    }

    /// With exponent 1, y^x = y: a peer value with leading zero bytes comes back left-padded
    /// to |p| (a 256-byte g^xy that starts with 0x00 must not shrink to 255 bytes).
    #[test]
    fn modp_shared_secret_is_left_padded() {
        let mut one = [0u8; 32];
        one[31] = 1;
        for g in MODP {
            let n = g.public_len();
            let mut y = vec![0u8; n];
            y[n - 3..].copy_from_slice(&[0x12, 0x34, 0x56]);
            let s = DhSecret::modp_with_exponent(g, &one);
            assert_eq!(s.agree(&y).unwrap().as_slice(), y.as_slice());
        }
    }

    #[test]
    fn ecp_and_x25519_reject_bad_peer_values() {
        let mut rng = SeededRng::new(3);
        for g in [DhGroup::Ecp256, DhGroup::Ecp384, DhGroup::Curve25519] {
            let n = g.public_len();
            for bad in [vec![0u8; n], vec![0u8; n - 1], vec![0u8; n + 1]] {
                let s = g.generate(&mut rng).unwrap();
                assert_eq!(s.agree(&bad), Err(CryptoError::InvalidPublicValue), "{g:?}");
            }
        }
        // A P-256 point with the 0x04 prefix kept is the wrong length for IKE.
        let a = DhGroup::Ecp256.generate(&mut rng).unwrap();
        let b = DhGroup::Ecp256.generate(&mut rng).unwrap();
        let mut prefixed = vec![0x04];
        prefixed.extend_from_slice(b.public_value());
        assert_eq!(a.agree(&prefixed), Err(CryptoError::InvalidPublicValue));
        // A point off the curve: flip one bit of y.
        let a = DhGroup::Ecp256.generate(&mut rng).unwrap();
        let mut off = b.public_value().to_vec();
        off[63] ^= 1;
        assert_eq!(a.agree(&off), Err(CryptoError::InvalidPublicValue));
    }

    #[test]
    fn debug_is_redacted() {
        let s = DhSecret::modp_with_exponent(DhGroup::Modp1024, &[0x42; 32]);
        let d = format!("{s:?}");
        assert!(d.contains("redacted") && d.contains("Modp1024"));
        assert!(!d.contains("42"));
    }
}
