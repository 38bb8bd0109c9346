//! The IKEv1 key schedule and exchange hashes (RFC 2409 §5, §5.5, §5.7, App. B; RFC 3947 §3.2).
//!
//! All functions are pure: bytes in, bytes out. Notation as in RFC 2409 §3.2: `_b` is a payload
//! body without its 4-byte generic header, `|` is concatenation, M-ID is the 4-byte big-endian
//! ISAKMP Message ID. `prf` is HMAC with the negotiated hash ([`PrfAlg::prf`]).
//!
//! ```text
//! SKEYID   = prf(Ni_b | Nr_b, g^xy)                     signatures (§5.1), hybrid
//!          = prf(pre-shared-key, Ni_b | Nr_b)           pre-shared key (§5.4), XAUTH-PSK
//! SKEYID_d = prf(SKEYID, g^xy | CKY-I | CKY-R | 0)
//! SKEYID_a = prf(SKEYID, SKEYID_d | g^xy | CKY-I | CKY-R | 1)
//! SKEYID_e = prf(SKEYID, SKEYID_a | g^xy | CKY-I | CKY-R | 2)          (§5; 0/1/2 are one octet)
//! Ka       = SKEYID_e truncated, or K1 | K2 | … with K1 = prf(SKEYID_e, 0), Kn = prf(SKEYID_e, Kn-1)
//!                                                                       (App. B; "0" is one octet)
//! HASH_I   = prf(SKEYID, g^xi | g^xr | CKY-I | CKY-R | SAi_b | IDii_b)  (§5)
//! HASH_R   = prf(SKEYID, g^xr | g^xi | CKY-R | CKY-I | SAi_b | IDir_b)
//! IV (phase 1)  = hash(g^xi | g^xr), first block                         (App. B)
//! IV (M-ID ≠ 0) = hash(last phase-1 CBC block | M-ID), first block       (App. B)
//! HASH(1)  = prf(SKEYID_a, M-ID | SA | Ni [| KE] [| IDci | IDcr])        (§5.5)
//! HASH(2)  = prf(SKEYID_a, M-ID | Ni_b | SA | Nr [| KE] [| IDci | IDcr])
//! HASH(3)  = prf(SKEYID_a, 0 | M-ID | Ni_b | Nr_b)
//! HASH     = prf(SKEYID_a, M-ID | N/D)                                   (§5.7; also Mode Config)
//! KEYMAT   = K1 | K2 | …, K1 = prf(SKEYID_d, [g(qm)^xy |] protocol | SPI | Ni_b | Nr_b),
//!            Kn = prf(SKEYID_d, Kn-1 | [g(qm)^xy |] protocol | SPI | Ni_b | Nr_b)   (§5.5)
//! NAT-D    = hash(CKY-I | CKY-R | IP | Port)                             (RFC 3947 §3.2)
//! ```
//!
//! In HASH(1)/HASH(2) and the Informational/Transaction hash, "SA | Ni | …" is every payload
//! after the HASH payload, generic headers included, exactly as on the wire (without the
//! encryption padding): pass those bytes as `rest`.
//!
//! Cross-checked against a real strongSwan 5.9.8 exchange in `tests/kat_strongswan.rs`.

use std::fmt;
use std::net::IpAddr;

use zeroize::Zeroizing;

use super::{EncAlg, PrfAlg, Redacted, Secret};

/// The phase-1 keying material (RFC 2409 §5) and the derived encryption key Ka (App. B).
///
/// `Debug` prints only the lengths.
pub struct Phase1Keys {
    /// SKEYID.
    pub skeyid: Zeroizing<Vec<u8>>,
    /// SKEYID_d: keys phase-2 SAs (KEYMAT).
    pub skeyid_d: Zeroizing<Vec<u8>>,
    /// SKEYID_a: authenticates phase-2, Informational and Transaction messages.
    pub skeyid_a: Zeroizing<Vec<u8>>,
    /// SKEYID_e: source of the encryption key.
    pub skeyid_e: Zeroizing<Vec<u8>>,
    /// Ka, the ISAKMP SA's encryption key, `enc.key_len()` bytes.
    pub enc_key: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for Phase1Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Phase1Keys")
            .field("skeyid", &Redacted)
            .field("skeyid_d", &Redacted)
            .field("skeyid_a", &Redacted)
            .field("skeyid_e", &Redacted)
            .field("enc_key_len", &self.enc_key.len())
            .finish()
    }
}

/// How SKEYID is computed, by authentication method (RFC 2409 §5).
#[derive(Clone, Copy)]
pub enum SkeyidInput<'a> {
    /// Pre-shared key (and XAUTH with PSK): `SKEYID = prf(PSK, Ni_b | Nr_b)`.
    PreSharedKey(&'a [u8]),
    /// Signatures (RSA, and hybrid): `SKEYID = prf(Ni_b | Nr_b, g^xy)`.
    Signature,
}

impl fmt::Debug for SkeyidInput<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::PreSharedKey(_) => f.debug_tuple("PreSharedKey").field(&Redacted).finish(),
            Self::Signature => f.write_str("Signature"),
        }
    }
}

/// Computes SKEYID, SKEYID_d/a/e and Ka (RFC 2409 §5 and App. B).
///
/// `ni`/`nr` are the nonce payload bodies, `g_xy` the shared DH secret (MODP: left-padded to
/// the modulus length), `cky_i`/`cky_r` the ISAKMP cookies.
///
/// RFC 2409 App. B requires rejecting weak and semi-weak 3DES keys; this function does not
/// (the chance that a PRF output is one is negligible).
#[allow(clippy::too_many_arguments)]
pub fn derive_phase1(
    prf: PrfAlg,
    enc: EncAlg,
    input: SkeyidInput<'_>,
    ni: &[u8],
    nr: &[u8],
    g_xy: &[u8],
    cky_i: &[u8; 8],
    cky_r: &[u8; 8],
) -> Phase1Keys {
    let skeyid = Zeroizing::new(match input {
        SkeyidInput::PreSharedKey(psk) => prf.prf(psk, &[ni, nr]),
        SkeyidInput::Signature => {
            let key = Zeroizing::new([ni, nr].concat());
            prf.prf(&key, &[g_xy])
        }
    });
    let skeyid_d = Zeroizing::new(prf.prf(&skeyid, &[g_xy, cky_i, cky_r, &[0]]));
    let skeyid_a = Zeroizing::new(prf.prf(&skeyid, &[&skeyid_d, g_xy, cky_i, cky_r, &[1]]));
    let skeyid_e = Zeroizing::new(prf.prf(&skeyid, &[&skeyid_a, g_xy, cky_i, cky_r, &[2]]));
    let enc_key = encryption_key(prf, enc, &skeyid_e);
    Phase1Keys {
        skeyid,
        skeyid_d,
        skeyid_a,
        skeyid_e,
        enc_key,
    }
}

/// Ka from SKEYID_e (RFC 2409 App. B): SKEYID_e truncated to the key length if it is long
/// enough, otherwise `K1 | K2 | …` truncated, with `K1 = prf(SKEYID_e, 0x00)` (one zero octet,
/// as strongSwan and racoon read it) and `Kn = prf(SKEYID_e, Kn-1)`.
pub fn encryption_key(prf: PrfAlg, enc: EncAlg, skeyid_e: &[u8]) -> Zeroizing<Vec<u8>> {
    let len = enc.key_len();
    if skeyid_e.len() >= len {
        return Zeroizing::new(skeyid_e[..len].to_vec());
    }
    let mut out: Secret = Zeroizing::new(Vec::with_capacity(len + prf.output_len()));
    let mut k: Secret = Zeroizing::new(prf.prf(skeyid_e, &[&[0]]));
    loop {
        out.extend_from_slice(&k);
        if out.len() >= len {
            break;
        }
        k = Zeroizing::new(prf.prf(skeyid_e, &[&k]));
    }
    out.truncate(len);
    out
}

/// HASH_I = prf(SKEYID, g^xi | g^xr | CKY-I | CKY-R | SAi_b | IDii_b) (RFC 2409 §5).
///
/// `sai_b` is the initiator's whole SA payload body (DOI, situation, proposals) as sent in the
/// first message; `idii_b` the initiator's ID payload body.
#[allow(clippy::too_many_arguments)]
pub fn hash_i(
    prf: PrfAlg,
    skeyid: &[u8],
    g_xi: &[u8],
    g_xr: &[u8],
    cky_i: &[u8; 8],
    cky_r: &[u8; 8],
    sai_b: &[u8],
    idii_b: &[u8],
) -> Vec<u8> {
    prf.prf(skeyid, &[g_xi, g_xr, cky_i, cky_r, sai_b, idii_b])
}

/// HASH_R = prf(SKEYID, g^xr | g^xi | CKY-R | CKY-I | SAi_b | IDir_b) (RFC 2409 §5).
///
/// Note the order: responder's values first, but still the *initiator's* SA body.
#[allow(clippy::too_many_arguments)]
pub fn hash_r(
    prf: PrfAlg,
    skeyid: &[u8],
    g_xr: &[u8],
    g_xi: &[u8],
    cky_r: &[u8; 8],
    cky_i: &[u8; 8],
    sai_b: &[u8],
    idir_b: &[u8],
) -> Vec<u8> {
    prf.prf(skeyid, &[g_xr, g_xi, cky_r, cky_i, sai_b, idir_b])
}

/// The first phase-1 IV: hash(g^xi | g^xr) truncated to the cipher block (RFC 2409 App. B).
/// Later phase-1 messages chain from the previous message's last ciphertext block.
pub fn phase1_iv(prf: PrfAlg, enc: EncAlg, g_xi: &[u8], g_xr: &[u8]) -> Vec<u8> {
    let mut iv = prf.hash(&[g_xi, g_xr]);
    iv.truncate(enc.block_len());
    iv
}

/// The first IV of an exchange with Message ID `message_id` ≠ 0 (Quick Mode, Informational,
/// Transaction): hash(last phase-1 CBC block | M-ID) truncated to the block (RFC 2409 App. B).
///
/// `last_phase1_block` is the last ciphertext block of the final phase-1 message (MM6, or AM3
/// when encrypted). It never advances with phase-2 traffic.
pub fn phase2_iv(prf: PrfAlg, enc: EncAlg, last_phase1_block: &[u8], message_id: u32) -> Vec<u8> {
    let mut iv = prf.hash(&[last_phase1_block, &message_id.to_be_bytes()]);
    iv.truncate(enc.block_len());
    iv
}

/// KEYMAT for one IPsec SA (RFC 2409 §5.5), expanded to `len` bytes:
/// `K1 = prf(SKEYID_d, [g(qm)^xy |] protocol | SPI | Ni_b | Nr_b)`,
/// `Kn = prf(SKEYID_d, Kn-1 | [g(qm)^xy |] protocol | SPI | Ni_b | Nr_b)`.
///
/// `spi` is the SPI of the SA being keyed (the one its receiver chose), `protocol` the proposal's
/// protocol ID (ESP = 3, AH = 2), `g_qm_xy` the Quick Mode DH secret when PFS is used. The
/// encryption key comes first, then the integrity key.
#[allow(clippy::too_many_arguments)]
pub fn keymat(
    prf: PrfAlg,
    skeyid_d: &[u8],
    g_qm_xy: Option<&[u8]>,
    protocol: u8,
    spi: &[u8; 4],
    ni_b: &[u8],
    nr_b: &[u8],
    len: usize,
) -> Zeroizing<Vec<u8>> {
    let g: &[u8] = g_qm_xy.unwrap_or(&[]);
    let mut out: Secret = Zeroizing::new(Vec::with_capacity(len + prf.output_len()));
    let mut k: Secret = Zeroizing::new(Vec::new());
    while out.len() < len {
        k = Zeroizing::new(prf.prf(skeyid_d, &[&k, g, &[protocol], spi, ni_b, nr_b]));
        out.extend_from_slice(&k);
    }
    out.truncate(len);
    out
}

/// Quick Mode HASH(1) = prf(SKEYID_a, M-ID | SA | Ni [| KE] [| IDci | IDcr]) (RFC 2409 §5.5);
/// `rest` is every payload after the HASH payload, as on the wire.
pub fn qm_hash1(prf: PrfAlg, skeyid_a: &[u8], message_id: u32, rest: &[u8]) -> Vec<u8> {
    prf.prf(skeyid_a, &[&message_id.to_be_bytes(), rest])
}

/// Quick Mode HASH(2) = prf(SKEYID_a, M-ID | Ni_b | SA | Nr [| KE] [| IDci | IDcr])
/// (RFC 2409 §5.5); `ni_b` is the initiator's nonce body, `rest` the responder's payloads after
/// the HASH payload.
pub fn qm_hash2(
    prf: PrfAlg,
    skeyid_a: &[u8],
    message_id: u32,
    ni_b: &[u8],
    rest: &[u8],
) -> Vec<u8> {
    prf.prf(skeyid_a, &[&message_id.to_be_bytes(), ni_b, rest])
}

/// Quick Mode HASH(3) = prf(SKEYID_a, 0 | M-ID | Ni_b | Nr_b) (RFC 2409 §5.5).
pub fn qm_hash3(
    prf: PrfAlg,
    skeyid_a: &[u8],
    message_id: u32,
    ni_b: &[u8],
    nr_b: &[u8],
) -> Vec<u8> {
    prf.prf(skeyid_a, &[&[0], &message_id.to_be_bytes(), ni_b, nr_b])
}

/// The HASH of an Informational exchange, prf(SKEYID_a, M-ID | N/D) (RFC 2409 §5.7), also used
/// by the Transaction exchange (Mode Config / XAUTH) in both directions; `rest` is every payload
/// after the HASH payload.
pub fn info_hash(prf: PrfAlg, skeyid_a: &[u8], message_id: u32, rest: &[u8]) -> Vec<u8> {
    prf.prf(skeyid_a, &[&message_id.to_be_bytes(), rest])
}

/// A NAT-D payload's data, HASH(CKY-I | CKY-R | IP | Port) (RFC 3947 §3.2), with the negotiated
/// hash (not HMAC). IPv4 addresses are 4 bytes and IPv6 16; the port is big-endian.
pub fn natd_hash(prf: PrfAlg, cky_i: &[u8; 8], cky_r: &[u8; 8], ip: IpAddr, port: u16) -> Vec<u8> {
    let port = port.to_be_bytes();
    match ip {
        IpAddr::V4(a) => prf.hash(&[cky_i, cky_r, &a.octets(), &port]),
        IpAddr::V6(a) => prf.hash(&[cky_i, cky_r, &a.octets(), &port]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    // Expected values in this module were computed independently with Python's hmac/hashlib.

    #[test]
    fn enc_key_expansion() {
        let skeyid_e: Vec<u8> = (1..=20).collect();
        // SHA-1 gives 20 bytes: 3DES (24) and AES-256 (32) need K1 | K2.
        assert_eq!(
            *encryption_key(PrfAlg::Sha1, EncAlg::TripleDesCbc, &skeyid_e),
            h("865ae886c21e50e735b18f206f6e9211d6733d5e75f31c8e")
        );
        assert_eq!(
            *encryption_key(PrfAlg::Sha1, EncAlg::Aes256Cbc, &skeyid_e),
            h("865ae886c21e50e735b18f206f6e9211d6733d5e75f31c8e24febea896873f0a")
        );
        // Long enough: plain truncation.
        assert_eq!(
            *encryption_key(PrfAlg::Sha1, EncAlg::Aes128Cbc, &skeyid_e),
            skeyid_e[..16]
        );
    }

    #[test]
    fn keymat_expansion() {
        let (d, ni, nr) = ([0x0d; 20], [b'N'; 16], [b'R'; 16]);
        let spi = [0xa1, 0xb2, 0xc3, 0xd4];
        assert_eq!(
            *keymat(PrfAlg::Sha1, &d, Some(&[0x77; 16]), 3, &spi, &ni, &nr, 48),
            h(concat!(
                "62f0a2a10d4ba50e29825fc8a30d59fc3ba4cf911c153c9d22bb7da42c9fba8a",
                "709edcb216e08ed59e93dc9ed097e1bd"
            ))
        );
        assert_eq!(
            *keymat(PrfAlg::Sha1, &d, None, 3, &spi, &ni, &nr, 36),
            h("6f3de91138dddfcf02419f53dd1e1f14aba72360c5b5e8ea5d2e148e0bde7d1e11608bf3")
        );
        assert!(keymat(PrfAlg::Sha1, &d, None, 3, &spi, &ni, &nr, 0).is_empty());
    }

    #[test]
    fn signature_skeyid_and_debug() {
        let keys = derive_phase1(
            PrfAlg::Md5,
            EncAlg::Aes128Cbc,
            SkeyidInput::Signature,
            &[b'N'; 16],
            &[b'R'; 16],
            &[0x77; 16],
            &[1; 8],
            &[2; 8],
        );
        assert_eq!(*keys.skeyid, h("59dc7aebf090cb4132381d33a73c4309"));
        // MD5 gives 16 bytes, exactly an AES-128 key.
        assert_eq!(*keys.enc_key, *keys.skeyid_e);
        let d = format!("{keys:?}");
        assert!(d.contains("redacted") && !d.contains("89"));
        let psk = format!("{:?}", SkeyidInput::PreSharedKey(b"hunter2"));
        assert!(!psk.contains("hunter2"));
    }

    #[test]
    fn ivs_are_truncated_to_the_block() {
        let iv = phase2_iv(
            PrfAlg::Md5,
            EncAlg::TripleDesCbc,
            &[0, 1, 2, 3, 4, 5, 6, 7],
            0x0102_0304,
        );
        assert_eq!(iv, h("d4dd36add00c3db1"));
        assert_eq!(
            phase1_iv(PrfAlg::Sha512, EncAlg::Aes256Cbc, b"a", b"b").len(),
            16
        );
    }

    #[test]
    fn natd_ipv4() {
        assert_eq!(
            natd_hash(
                PrfAlg::Sha1,
                &[0x11; 8],
                &[0x22; 8],
                "192.0.2.1".parse().unwrap(),
                4500
            ),
            h("3d12feba0388472b2362d2bf538bacf15ca68702")
        );
    }
}
