//! The IKEv1 pseudo-random function and hash (RFC 2409 §5 and App. B).
//!
//! IKEv1 defines no negotiable PRF (Oakley attribute 13 has no values in practice), so the prf is
//! the HMAC version of the negotiated hash algorithm (RFC 2409 §4). The same hash, without HMAC, derives the CBC IVs (RFC 2409 App. B) and the
//! NAT-D payloads (RFC 3947 §3.2).
//!
//! Oakley hash values (RFC 2409 App. A; SHA-2 from RFC 4868 §2.3 / IANA): MD5 = 1, SHA = 2,
//! SHA2-256 = 4, SHA2-384 = 5, SHA2-512 = 6. Tiger (3) is not supported.
//!
//! HMAC uses RustCrypto's `hmac`: with SHA-NI its HMAC-SHA1 is several times faster than ring's.

use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha384, Sha512};

/// A negotiated IKE hash algorithm, used as `prf` (HMAC) and as plain `hash`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PrfAlg {
    /// MD5 (Oakley hash 1). Legacy.
    Md5,
    /// SHA-1 (Oakley hash 2).
    Sha1,
    /// SHA2-256 (Oakley hash 4).
    Sha256,
    /// SHA2-384 (Oakley hash 5).
    Sha384,
    /// SHA2-512 (Oakley hash 6).
    Sha512,
}

macro_rules! hmac_parts {
    ($d:ty, $key:expr, $parts:expr) => {{
        // HMAC accepts keys of any length (RFC 2104 §2), so this cannot fail.
        let mut mac =
            <Hmac<$d> as KeyInit>::new_from_slice($key).expect("HMAC takes any key length");
        for p in $parts {
            mac.update(p);
        }
        mac.finalize().into_bytes().to_vec()
    }};
}

macro_rules! hash_parts {
    ($d:ty, $parts:expr) => {{
        let mut h = <$d>::new();
        for p in $parts {
            h.update(p);
        }
        h.finalize().to_vec()
    }};
}

impl PrfAlg {
    /// Maps an Oakley Hash Algorithm attribute value (RFC 2409 App. A) to the algorithm.
    pub fn from_oakley_hash(v: u16) -> Option<Self> {
        match v {
            1 => Some(Self::Md5),
            2 => Some(Self::Sha1),
            4 => Some(Self::Sha256),
            5 => Some(Self::Sha384),
            6 => Some(Self::Sha512),
            _ => None,
        }
    }

    /// The Oakley Hash Algorithm attribute value.
    pub fn oakley_hash(self) -> u16 {
        match self {
            Self::Md5 => 1,
            Self::Sha1 => 2,
            Self::Sha256 => 4,
            Self::Sha384 => 5,
            Self::Sha512 => 6,
        }
    }

    /// Output length in bytes of both `prf` and `hash` (and so of SKEYID and the HASH payloads).
    pub fn output_len(self) -> usize {
        match self {
            Self::Md5 => 16,
            Self::Sha1 => 20,
            Self::Sha256 => 32,
            Self::Sha384 => 48,
            Self::Sha512 => 64,
        }
    }

    /// `prf(key, parts[0] | parts[1] | …)`: HMAC with this hash over the concatenation.
    pub fn prf(self, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        match self {
            Self::Md5 => hmac_parts!(md5::Md5, key, parts),
            Self::Sha1 => hmac_parts!(Sha1, key, parts),
            Self::Sha256 => hmac_parts!(Sha256, key, parts),
            Self::Sha384 => hmac_parts!(Sha384, key, parts),
            Self::Sha512 => hmac_parts!(Sha512, key, parts),
        }
    }

    /// `hash(parts[0] | parts[1] | …)`: the bare hash over the concatenation.
    pub fn hash(self, parts: &[&[u8]]) -> Vec<u8> {
        match self {
            Self::Md5 => hash_parts!(md5::Md5, parts),
            Self::Sha1 => hash_parts!(Sha1, parts),
            Self::Sha256 => hash_parts!(Sha256, parts),
            Self::Sha384 => hash_parts!(Sha384, parts),
            Self::Sha512 => hash_parts!(Sha512, parts),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    #[test]
    fn oakley_values_round_trip() {
        for v in 0..10u16 {
            if let Some(a) = PrfAlg::from_oakley_hash(v) {
                assert_eq!(a.oakley_hash(), v);
                assert_eq!(a.prf(b"k", &[b"x"]).len(), a.output_len());
                assert_eq!(a.hash(&[b"x"]).len(), a.output_len());
            }
        }
        assert_eq!(PrfAlg::from_oakley_hash(3), None); // Tiger
        assert_eq!(PrfAlg::from_oakley_hash(4), Some(PrfAlg::Sha256));
    }

    /// RFC 2202 §3 (HMAC-MD5) and §2 (HMAC-SHA1), test cases 1, 2, 3, 6.
    #[test]
    fn rfc2202() {
        let cases: [(&[u8], &[u8], &str, &str); 4] = [
            (
                &[0x0b; 16],
                b"Hi There",
                "9294727a3638bb1c13f48ef8158bfc9d",
                "",
            ),
            (
                b"Jefe",
                b"what do ya want for nothing?",
                "750c783e6ab0b503eaa86e310a5db738",
                "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79",
            ),
            (
                &[0xaa; 16],
                &[0xdd; 50],
                "56be34521d144c88dbb8c733f0e8b3f6",
                "",
            ),
            (
                &[0xaa; 80],
                b"Test Using Larger Than Block-Size Key - Hash Key First",
                "6b1ab7fe4bd7bf8f0b62e6ce61b9d0cd",
                "aa4ae5e15272d00e95705637ce8a3b55ed402112",
            ),
        ];
        for (key, data, md5, sha1) in cases {
            assert_eq!(PrfAlg::Md5.prf(key, &[data]), h(md5));
            if !sha1.is_empty() {
                assert_eq!(PrfAlg::Sha1.prf(key, &[data]), h(sha1));
            }
        }
        // SHA-1 test case 1 uses a 20-byte key.
        assert_eq!(
            PrfAlg::Sha1.prf(&[0x0b; 20], &[b"Hi There"]),
            h("b617318655057264e28bc0b6fb378c8ef146be00")
        );
        // Test case 3 for SHA-1 also uses a 20-byte key; split the data into parts.
        assert_eq!(
            PrfAlg::Sha1.prf(&[0xaa; 20], &[&[0xdd; 20], &[], &[0xdd; 30]]),
            h("125d7342b9ac11cd91a39af48aa17b4f63f175d3")
        );
    }

    /// RFC 4231 §4.2, §4.3, §4.7 (test cases 1, 2 and 6).
    #[test]
    fn rfc4231() {
        let tc1 = (&[0x0bu8; 20][..], &b"Hi There"[..]);
        assert_eq!(
            PrfAlg::Sha256.prf(tc1.0, &[tc1.1]),
            h("b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
        );
        assert_eq!(
            PrfAlg::Sha384.prf(tc1.0, &[tc1.1]),
            h(concat!(
                "afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59c",
                "faea9ea9076ede7f4af152e8b2fa9cb6"
            ))
        );
        assert_eq!(
            PrfAlg::Sha512.prf(tc1.0, &[tc1.1]),
            h(concat!(
                "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cde",
                "daa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854"
            ))
        );
        let tc2: (&[u8], &[u8]) = (b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            PrfAlg::Sha256.prf(tc2.0, &[&tc2.1[..10], &tc2.1[10..]]),
            h("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        );
        assert_eq!(
            PrfAlg::Sha384.prf(tc2.0, &[tc2.1]),
            h(concat!(
                "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e",
                "8e2240ca5e69e2c78b3239ecfab21649"
            ))
        );
        assert_eq!(
            PrfAlg::Sha512.prf(tc2.0, &[tc2.1]),
            h(concat!(
                "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554",
                "9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"
            ))
        );
        // Test case 6: a 131-byte key (longer than the SHA-256/384/512 block).
        let key = [0xaau8; 131];
        let data = b"Test Using Larger Than Block-Size Key - Hash Key First";
        assert_eq!(
            PrfAlg::Sha256.prf(&key, &[data]),
            h("60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54")
        );
        assert_eq!(
            PrfAlg::Sha512.prf(&key, &[data]),
            h(concat!(
                "80b24263c7c1a3ebb71493c1dd7be8b49b46d1f41b4aeec1121b013783f8f352",
                "6b56d037e05f2598bd0fd2215d6a1e5295e64f73f63f0aec8b915a985d786598"
            ))
        );
    }

    #[test]
    fn hashes() {
        // FIPS 180-2 / RFC 1321 "abc".
        assert_eq!(
            PrfAlg::Md5.hash(&[b"a", b"bc"]),
            h("900150983cd24fb0d6963f7d28e17f72")
        );
        assert_eq!(
            PrfAlg::Sha1.hash(&[b"abc"]),
            h("a9993e364706816aba3e25717850c26c9cd0d89d")
        );
        assert_eq!(
            PrfAlg::Sha256.hash(&[b"ab", b"c"]),
            h("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        );
        assert_eq!(PrfAlg::Sha384.hash(&[b"abc"])[..8], h("cb00753f45a35e8b"));
        assert_eq!(PrfAlg::Sha512.hash(&[b"abc"])[..8], h("ddaf35a193617aba"));
    }
}
