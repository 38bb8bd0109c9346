//! ESP transforms: AES-GCM with a 16-octet ICV (RFC 4106) through ring, and AES-CBC (RFC 3602)
//! with HMAC-SHA1-96 (RFC 2404) or HMAC-SHA-256-128 (RFC 4868) through RustCrypto.
//!
//! Key schedules are computed once per SA ([`SaCrypto::new`]): a ring `LessSafeKey` for GCM, an
//! expanded AES key and a keyed HMAC state for CBC. Per packet only the HMAC state (a few
//! hundred bytes) and the AES key schedule are copied, never rebuilt. Each is boxed at its own
//! size (a `LessSafeKey` is 544 bytes, an AES-128 schedule 352, AES-256 480, an HMAC-SHA1
//! state 128), so an SA holds two or three pointers instead of the largest variant inline.
//!
//! * **AES-GCM** (RFC 4106 §3–§5, §8.1): the key material is the AES key followed by a 4-octet
//!   salt; the nonce is salt ‖ 8-octet IV; the AAD is SPI ‖ sequence number (32-bit sequence
//!   numbers, §5). The IV we send is the 64-bit sequence number, which is unique per SA as
//!   §3.1 requires ("the IV MUST NOT repeat for a given key"; a counter is the suggested way).
//!   Only the 16-octet ICV (transform 20) is offered: ring does not make 8- or 12-octet tags.
//!   AES-192 is not offered (ring has no AES-192-GCM).
//! * **AES-CBC** (RFC 3602 §2–§3): 16-octet IV in clear in front of the ciphertext, no cipher
//!   padding (ESP pads, RFC 4303 §2.4). RFC 3602 §2.4 requires an unpredictable IV. We make
//!   it as NIST SP 800-38A Appendix C recommends, without a random source: the IV is the
//!   block encryption, under the SA's own key, of a nonce unique to the packet (SPI and
//!   sequence number). Without the key it cannot be predicted.
//! * **HMAC-SHA1-96** (RFC 2404 §2): HMAC-SHA1 with a 20-octet key, truncated to the leftmost
//!   96 bits. **HMAC-SHA-256-128** (RFC 4868 §2.1–§2.3): HMAC-SHA-256 with a 32-octet key,
//!   truncated to 128 bits. The ICV covers SPI, sequence number, IV and ciphertext
//!   (RFC 4303 §2.8), and is checked in constant time before anything is decrypted
//!   (encrypt-then-MAC, RFC 4303 §3.4.4.1).
//!
//! 3DES-CBC is not offered (ikev1 can negotiate it; it is legacy and ~9 MB/s), nor is NULL
//! encryption or any integrity-only transform.

use aes::{Aes128, Aes192, Aes256};
use cbc::cipher::block_padding::NoPadding;
use cbc::cipher::{
    Array, BlockCipherDecrypt, BlockCipherEncrypt, BlockModeDecrypt, BlockModeEncrypt, InnerIvInit,
    KeyInit,
};
use hmac::{Hmac, Mac};
use ring::aead::{AES_128_GCM, AES_256_GCM, Aad, LessSafeKey, Nonce, Tag, UnboundKey};
use sha1::Sha1;
use sha2::Sha256;

use crate::SaError;
use crate::wire::{ESP_HEADER_LEN, field};

/// An ESP transform (encryption and integrity together).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transform {
    /// AES-GCM with a 16-octet ICV (RFC 4106), 128 or 256-bit key.
    AesGcm16 {
        /// AES key size in bits: 128 or 256.
        key_bits: u16,
    },
    /// AES-CBC (RFC 3602) with HMAC-SHA1-96 (RFC 2404); 128, 192 or 256-bit key.
    AesCbcHmacSha1_96 {
        /// AES key size in bits.
        key_bits: u16,
    },
    /// AES-CBC (RFC 3602) with HMAC-SHA-256-128 (RFC 4868); 128, 192 or 256-bit key.
    AesCbcHmacSha256_128 {
        /// AES key size in bits.
        key_bits: u16,
    },
}

impl Transform {
    fn key_bits(self) -> u16 {
        match self {
            Self::AesGcm16 { key_bits }
            | Self::AesCbcHmacSha1_96 { key_bits }
            | Self::AesCbcHmacSha256_128 { key_bits } => key_bits,
        }
    }

    /// Length of the encryption key material in octets (GCM: key plus the 4-octet salt,
    /// RFC 4106 §8.1).
    pub fn encr_key_len(self) -> usize {
        let k = usize::from(self.key_bits()) / 8;
        match self {
            Self::AesGcm16 { .. } => k + 4,
            _ => k,
        }
    }

    /// Length of the integrity key in octets (0 for AEAD).
    pub fn integ_key_len(self) -> usize {
        match self {
            Self::AesGcm16 { .. } => 0,
            Self::AesCbcHmacSha1_96 { .. } => 20,
            Self::AesCbcHmacSha256_128 { .. } => 32,
        }
    }

    /// Length of the IV carried in each packet.
    pub fn iv_len(self) -> usize {
        match self {
            Self::AesGcm16 { .. } => 8,
            _ => 16,
        }
    }

    /// Length of the ICV.
    pub fn icv_len(self) -> usize {
        match self {
            Self::AesGcm16 { .. } | Self::AesCbcHmacSha256_128 { .. } => 16,
            Self::AesCbcHmacSha1_96 { .. } => 12,
        }
    }

    /// The ciphertext (payload, padding, Pad Length, Next Header) is a multiple of this.
    pub fn block_len(self) -> usize {
        match self {
            // RFC 4303 §2.4: 4-octet alignment; GCM is a stream mode.
            Self::AesGcm16 { .. } => 4,
            _ => 16,
        }
    }

    /// Bytes ESP adds at most to a payload (header, IV, largest padding, trailer, ICV): for MTU
    /// calculations.
    pub fn max_overhead(self) -> usize {
        ESP_HEADER_LEN + self.iv_len() + (self.block_len() - 1) + 2 + self.icv_len()
    }

    /// The shortest ESP packet this transform can produce (one block of ciphertext).
    pub fn min_packet_len(self) -> usize {
        ESP_HEADER_LEN + self.iv_len() + self.block_len() + self.icv_len()
    }

    /// The name as strongSwan writes it (`aes128gcm16`, `aes256-sha1`, `aes128-sha256`).
    pub fn name(self) -> String {
        match self {
            Self::AesGcm16 { key_bits } => format!("aes{key_bits}gcm16"),
            Self::AesCbcHmacSha1_96 { key_bits } => format!("aes{key_bits}-sha1"),
            Self::AesCbcHmacSha256_128 { key_bits } => format!("aes{key_bits}-sha256"),
        }
    }
}

/// An expanded AES key of any size, boxed at its own size.
pub(crate) enum AesKey {
    A128(Box<Aes128>),
    A192(Box<Aes192>),
    A256(Box<Aes256>),
}

/// Runs `$body` with `$c` bound to the key schedule (`&Aes128` etc., not the box).
macro_rules! with_aes {
    ($key:expr, $c:ident => $body:expr) => {
        match $key {
            AesKey::A128($c) => {
                let $c: &Aes128 = $c;
                $body
            }
            AesKey::A192($c) => {
                let $c: &Aes192 = $c;
                $body
            }
            AesKey::A256($c) => {
                let $c: &Aes256 = $c;
                $body
            }
        }
    };
}

impl AesKey {
    fn new(key: &[u8]) -> Result<Self, SaError> {
        let bad = |_| SaError::KeyLength {
            what: "AES-CBC key",
            got: key.len(),
        };
        Ok(match key.len() {
            16 => Self::A128(Box::new(Aes128::new_from_slice(key).map_err(bad)?)),
            24 => Self::A192(Box::new(Aes192::new_from_slice(key).map_err(bad)?)),
            32 => Self::A256(Box::new(Aes256::new_from_slice(key).map_err(bad)?)),
            n => {
                return Err(SaError::KeyLength {
                    what: "AES-CBC key",
                    got: n,
                });
            }
        })
    }

    /// Encrypts one block in place (ECB): the IV generator.
    fn encrypt_block(&self, block: &mut [u8; 16]) {
        let mut b = Array::from(*block);
        with_aes!(self, c => c.encrypt_block(&mut b));
        block.copy_from_slice(&b);
    }

    /// CBC-encrypts `buf` (a multiple of 16 octets) in place.
    fn cbc_encrypt(&self, iv: &[u8; 16], buf: &mut [u8]) -> Result<(), ()> {
        let len = buf.len();
        with_aes!(self, c => cbc_encrypt_with(c, iv, buf, len))
    }

    /// CBC-decrypts `buf` (a multiple of 16 octets) in place.
    fn cbc_decrypt(&self, iv: &[u8], buf: &mut [u8]) -> Result<(), ()> {
        with_aes!(self, c => cbc_decrypt_with(c, iv, buf))
    }
}

fn cbc_encrypt_with<C: BlockCipherEncrypt + Clone>(
    c: &C,
    iv: &[u8; 16],
    buf: &mut [u8],
    len: usize,
) -> Result<(), ()> {
    cbc::Encryptor::<C>::inner_iv_slice_init(c.clone(), iv)
        .map_err(drop)?
        .encrypt_padded::<NoPadding>(buf, len)
        .map(drop)
        .map_err(drop)
}

fn cbc_decrypt_with<C: BlockCipherDecrypt + Clone>(
    c: &C,
    iv: &[u8],
    buf: &mut [u8],
) -> Result<(), ()> {
    cbc::Decryptor::<C>::inner_iv_slice_init(c.clone(), iv)
        .map_err(drop)?
        .decrypt_padded::<NoPadding>(buf)
        .map(drop)
        .map_err(drop)
}

/// A keyed HMAC state, boxed at its own size; the state (not the box) is copied for each
/// packet.
pub(crate) enum MacKey {
    Sha1(Box<Hmac<Sha1>>),
    Sha256(Box<Hmac<Sha256>>),
}

impl MacKey {
    fn new(transform: Transform, key: &[u8]) -> Result<Self, SaError> {
        if key.len() != transform.integ_key_len() {
            return Err(SaError::KeyLength {
                what: "HMAC key",
                got: key.len(),
            });
        }
        let bad = |_| SaError::KeyLength {
            what: "HMAC key",
            got: key.len(),
        };
        Ok(match transform {
            Transform::AesCbcHmacSha1_96 { .. } => Self::Sha1(Box::new(
                <Hmac<Sha1> as KeyInit>::new_from_slice(key).map_err(bad)?,
            )),
            _ => Self::Sha256(Box::new(
                <Hmac<Sha256> as KeyInit>::new_from_slice(key).map_err(bad)?,
            )),
        })
    }

    /// Appends the truncated ICV over `buf[from..]` to `buf`.
    fn append_icv(&self, buf: &mut Vec<u8>, from: usize, icv_len: usize) {
        match self {
            Self::Sha1(m) => {
                let mut m = Hmac::<Sha1>::clone(m);
                m.update(&buf[from..]);
                let tag = m.finalize().into_bytes();
                buf.extend_from_slice(&tag[..icv_len]);
            }
            Self::Sha256(m) => {
                let mut m = Hmac::<Sha256>::clone(m);
                m.update(&buf[from..]);
                let tag = m.finalize().into_bytes();
                buf.extend_from_slice(&tag[..icv_len]);
            }
        }
    }

    /// Checks, in constant time, that `icv` is the leftmost part of the HMAC of `data`.
    fn verify(&self, data: &[u8], icv: &[u8]) -> bool {
        match self {
            Self::Sha1(m) => {
                let mut m = Hmac::<Sha1>::clone(m);
                m.update(data);
                m.verify_truncated_left(icv).is_ok()
            }
            Self::Sha256(m) => {
                let mut m = Hmac::<Sha256>::clone(m);
                m.update(data);
                m.verify_truncated_left(icv).is_ok()
            }
        }
    }
}

/// The keyed cryptographic state of one SA (one direction): 40 bytes inline, the key
/// schedules on the heap at their own sizes.
pub(crate) enum SaCrypto {
    Gcm(Box<GcmKey>),
    Cbc {
        aes: AesKey,
        mac: MacKey,
        icv_len: u8,
    },
}

/// An AES-GCM key (RFC 4106): the expanded key and the 4-octet salt.
pub(crate) struct GcmKey {
    key: LessSafeKey,
    salt: [u8; 4],
}

/// The packet failed authentication (or could not be processed by the cipher).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct AuthFailed;

impl SaCrypto {
    pub(crate) fn new(transform: Transform, encr: &[u8], integ: &[u8]) -> Result<Self, SaError> {
        if encr.len() != transform.encr_key_len() {
            return Err(SaError::KeyLength {
                what: "encryption key",
                got: encr.len(),
            });
        }
        match transform {
            Transform::AesGcm16 { key_bits } => {
                let alg = match key_bits {
                    128 => &AES_128_GCM,
                    256 => &AES_256_GCM,
                    _ => return Err(SaError::Unsupported("AES-GCM needs a 128 or 256-bit key")),
                };
                if !integ.is_empty() {
                    return Err(SaError::KeyLength {
                        what: "integrity key (AEAD has none)",
                        got: integ.len(),
                    });
                }
                let (k, s) = encr.split_at(encr.len() - 4);
                let key = UnboundKey::new(alg, k).map_err(|_| SaError::KeyLength {
                    what: "AES-GCM key",
                    got: k.len(),
                })?;
                let mut salt = [0; 4];
                salt.copy_from_slice(s);
                Ok(Self::Gcm(Box::new(GcmKey {
                    key: LessSafeKey::new(key),
                    salt,
                })))
            }
            Transform::AesCbcHmacSha1_96 { key_bits }
            | Transform::AesCbcHmacSha256_128 { key_bits } => {
                if !matches!(key_bits, 128 | 192 | 256) {
                    return Err(SaError::Unsupported(
                        "AES-CBC needs a 128, 192 or 256-bit key",
                    ));
                }
                Ok(Self::Cbc {
                    aes: AesKey::new(encr)?,
                    mac: MacKey::new(transform, integ)?,
                    // 12 or 16.
                    icv_len: transform.icv_len() as u8,
                })
            }
        }
    }

    /// Protects the packet in `buf[esp..]`: SPI and sequence number are written, the IV slot
    /// follows, then the padded plaintext up to the end of `buf`. Fills the IV, encrypts, and
    /// appends the ICV.
    pub(crate) fn seal(&self, buf: &mut Vec<u8>, esp: usize, seq: u32) -> Result<(), AuthFailed> {
        let iv_at = esp + ESP_HEADER_LEN;
        match self {
            Self::Gcm(g) => {
                let GcmKey { key, salt } = &**g;
                // RFC 4106 §3.1: the IV is the (64-bit) sequence number.
                let iv = u64::from(seq).to_be_bytes();
                buf.get_mut(iv_at..iv_at + 8)
                    .ok_or(AuthFailed)?
                    .copy_from_slice(&iv);
                let nonce = gcm_nonce(salt, &iv);
                let aad = aad(&buf[esp..iv_at]);
                let tag = key
                    .seal_in_place_separate_tag(nonce, Aad::from(aad), &mut buf[iv_at + 8..])
                    .map_err(|_| AuthFailed)?;
                buf.extend_from_slice(tag.as_ref());
            }
            Self::Cbc { aes, mac, icv_len } => {
                // NIST SP 800-38A App. C: IV = E_K(nonce), nonce unique per packet.
                let mut iv = [0u8; 16];
                iv[..4].copy_from_slice(&buf[esp + field::SPI.start..esp + field::SPI.end]);
                iv[4..8].copy_from_slice(b"ESPi");
                iv[12..].copy_from_slice(&seq.to_be_bytes());
                aes.encrypt_block(&mut iv);
                buf.get_mut(iv_at..iv_at + 16)
                    .ok_or(AuthFailed)?
                    .copy_from_slice(&iv);
                aes.cbc_encrypt(&iv, &mut buf[iv_at + 16..])
                    .map_err(|()| AuthFailed)?;
                mac.append_icv(buf, esp, usize::from(*icv_len));
            }
        }
        Ok(())
    }

    /// Authenticates and decrypts `packet` (the whole ESP packet, SPI to ICV, whose lengths
    /// the caller checked against [`Transform::min_packet_len`] and the block size) into
    /// `out[at..]`. `out` is truncated to `at` first; on success it holds
    /// `at + ciphertext length` bytes.
    pub(crate) fn open(
        &self,
        transform: Transform,
        packet: &[u8],
        out: &mut Vec<u8>,
        at: usize,
    ) -> Result<(), AuthFailed> {
        let iv_at = ESP_HEADER_LEN;
        let ct_at = iv_at + transform.iv_len();
        let icv_at = packet
            .len()
            .checked_sub(transform.icv_len())
            .filter(|&i| i >= ct_at)
            .ok_or(AuthFailed)?;
        out.truncate(at);
        match self {
            Self::Gcm(g) => {
                let GcmKey { key, salt } = &**g;
                let mut iv = [0u8; 8];
                iv.copy_from_slice(&packet[iv_at..ct_at]);
                let nonce = gcm_nonce(salt, &iv);
                let tag = Tag::try_from(&packet[icv_at..]).map_err(|_| AuthFailed)?;
                out.extend_from_slice(&packet[ct_at..icv_at]);
                let aad = aad(&packet[..iv_at]);
                key.open_in_place_separate_tag(nonce, Aad::from(aad), tag, &mut out[at..], 0..)
                    .map_err(|_| AuthFailed)?;
            }
            Self::Cbc { aes, mac, .. } => {
                if !mac.verify(&packet[..icv_at], &packet[icv_at..]) {
                    return Err(AuthFailed);
                }
                out.extend_from_slice(&packet[ct_at..icv_at]);
                aes.cbc_decrypt(&packet[iv_at..ct_at], &mut out[at..])
                    .map_err(|()| AuthFailed)?;
            }
        }
        Ok(())
    }
}

fn gcm_nonce(salt: &[u8; 4], iv: &[u8; 8]) -> Nonce {
    let mut n = [0u8; 12];
    n[..4].copy_from_slice(salt);
    n[4..].copy_from_slice(iv);
    Nonce::assume_unique_for_key(n)
}

/// RFC 4106 §5: AAD = SPI ‖ 32-bit sequence number.
fn aad(header: &[u8]) -> [u8; 8] {
    let mut a = [0u8; 8];
    a.copy_from_slice(&header[..8]);
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s.replace([' ', '\n'], "")).unwrap()
    }

    /// RFC 3602 §4, cases #1 and #2 (AES-128-CBC).
    #[test]
    fn rfc3602_cbc() {
        let cases = [
            (
                "06a9214036b8a15b512e03d534120006",
                "3dafba429d9eb430b422da802c9fac41",
                b"Single block msg".to_vec(),
                "e353779c1079aeb82708942dbe77181a",
            ),
            (
                "c286696d887c9aa0611bbb3e2025a45a",
                "562e17996d093d28ddb3ba695a2e6f58",
                (0u8..32).collect(),
                "d296cd94c2cccf8a3a863028b5e1dc0a7586602d253cfff91b8266bea6d61ab1",
            ),
        ];
        for (key, iv, pt, ct) in cases {
            let aes = AesKey::new(&h(key)).unwrap();
            let iv: [u8; 16] = h(iv).try_into().unwrap();
            let mut buf = pt.clone();
            aes.cbc_encrypt(&iv, &mut buf).unwrap();
            assert_eq!(buf, h(ct));
            aes.cbc_decrypt(&iv, &mut buf).unwrap();
            assert_eq!(buf, pt);
        }
    }

    fn icv(t: Transform, key: &[u8], data: &[u8]) -> Vec<u8> {
        let m = MacKey::new(t, key).unwrap();
        let mut buf = data.to_vec();
        m.append_icv(&mut buf, 0, t.icv_len());
        let icv = buf.split_off(data.len());
        assert!(m.verify(data, &icv));
        let mut bad = icv.clone();
        bad[0] ^= 1;
        assert!(!m.verify(data, &bad));
        icv
    }

    /// RFC 2404 §3 (the RFC 2202 HMAC-SHA-1 cases, truncated to 96 bits). Cases with a key
    /// that is not 20 octets do not apply to ESP (RFC 2404 §3 fixes the key length).
    #[test]
    fn rfc2404_hmac_sha1_96() {
        let t = Transform::AesCbcHmacSha1_96 { key_bits: 128 };
        assert_eq!(
            icv(t, &[0x0b; 20], b"Hi There"),
            h("b617318655057264e28bc0b6")
        );
        assert_eq!(
            icv(t, &[0xaa; 20], &[0xdd; 50]),
            h("125d7342b9ac11cd91a39af4")
        );
    }

    /// RFC 4868 §2.7.2.1, AUTH256-1 and AUTH256-2 (32-octet keys), truncated to 128 bits
    /// as in §2.7.2.2.
    #[test]
    fn rfc4868_hmac_sha256_128() {
        let t = Transform::AesCbcHmacSha256_128 { key_bits: 128 };
        assert_eq!(
            icv(t, &[0x0b; 32], b"Hi There"),
            h("198a607eb44bfbc69903a0f1cf2bbdc5")
        );
        assert_eq!(
            icv(
                t,
                b"JefeJefeJefeJefeJefeJefeJefeJefe",
                b"what do ya want for nothing?"
            ),
            h("167f928588c5cc2eef8e3093caa0e87c")
        );
    }

    #[test]
    fn key_lengths() {
        let g = Transform::AesGcm16 { key_bits: 128 };
        assert!(SaCrypto::new(g, &[0; 20], &[]).is_ok());
        assert!(matches!(
            SaCrypto::new(g, &[0; 16], &[]),
            Err(SaError::KeyLength { .. })
        ));
        assert!(SaCrypto::new(g, &[0; 20], &[1]).is_err());
        assert!(matches!(
            SaCrypto::new(Transform::AesGcm16 { key_bits: 192 }, &[0; 28], &[]),
            Err(SaError::Unsupported(_))
        ));
        let c = Transform::AesCbcHmacSha256_128 { key_bits: 192 };
        assert!(SaCrypto::new(c, &[0; 24], &[0; 32]).is_ok());
        assert!(SaCrypto::new(c, &[0; 24], &[0; 20]).is_err());
        assert!(
            SaCrypto::new(
                Transform::AesCbcHmacSha1_96 { key_bits: 100 },
                &[0; 12],
                &[0; 20]
            )
            .is_err()
        );
        assert_eq!(g.name(), "aes128gcm16");
        assert_eq!(c.name(), "aes192-sha256");
        assert_eq!(g.max_overhead(), 8 + 8 + 3 + 2 + 16);
    }
}
