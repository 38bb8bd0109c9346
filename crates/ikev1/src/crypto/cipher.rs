//! IKE message encryption: CBC with no padding (RFC 2409 App. B; RFC 3602 §5 for AES).
//!
//! The engine builds the plaintext payload chain, pads it itself (RFC 2409 App. B: "padded up to
//! the nearest block size using bytes containing 0x00"; receivers must ignore the pad), and keeps
//! the IV chain: the next IV is the last ciphertext block of the previous message of the same
//! exchange ([`EncAlg::last_block`]), and the first IVs come from [`crate::crypto::phase1_iv`] and
//! [`crate::crypto::phase2_iv`].
//!
//! Oakley Encryption Algorithm values (RFC 2409 App. A, IANA "IPSEC Encryption Algorithm" for
//! IKE): 3DES-CBC = 5, AES-CBC = 7 with a mandatory Key Length attribute (14) of 128, 192 or 256
//! bits (RFC 3602 §5.3: the Key Length attribute MUST be specified). 3DES keys are 24 bytes.
//! RFC 2409 (App. A, App. B) says weak and semi-weak DES keys must not be used; we do not check:
//! a key derived by the PRF is weak with negligible probability (64 weak and semi-weak keys out of
//! 2^56 per DES component).

use aes::{Aes128, Aes192, Aes256};
use cbc::cipher::block_padding::NoPadding;
use cbc::cipher::{
    BlockCipherDecrypt, BlockCipherEncrypt, BlockModeDecrypt, BlockModeEncrypt, KeyInit, KeyIvInit,
};
use des::TdesEde3;

use super::CryptoError;

/// Oakley attribute value for AES-CBC (RFC 3602 §5).
const OAKLEY_AES_CBC: u16 = 7;
/// Oakley attribute value for 3DES-CBC (RFC 2409 App. A).
const OAKLEY_3DES_CBC: u16 = 5;

/// A negotiated IKE encryption algorithm (always CBC).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EncAlg {
    /// AES-CBC with a 128-bit key.
    Aes128Cbc,
    /// AES-CBC with a 192-bit key.
    Aes192Cbc,
    /// AES-CBC with a 256-bit key.
    Aes256Cbc,
    /// Triple DES (EDE, three keys) in CBC mode.
    TripleDesCbc,
}

impl EncAlg {
    /// Maps the Oakley Encryption Algorithm (attribute 1) and Key Length (attribute 14, in bits)
    /// values to an algorithm. AES needs a key length of 128, 192 or 256; for 3DES the key length
    /// must be absent or 192.
    pub fn from_oakley(enc: u16, key_len_bits: Option<u16>) -> Option<Self> {
        match (enc, key_len_bits) {
            (OAKLEY_AES_CBC, Some(128)) => Some(Self::Aes128Cbc),
            (OAKLEY_AES_CBC, Some(192)) => Some(Self::Aes192Cbc),
            (OAKLEY_AES_CBC, Some(256)) => Some(Self::Aes256Cbc),
            (OAKLEY_3DES_CBC, None | Some(192)) => Some(Self::TripleDesCbc),
            _ => None,
        }
    }

    /// The Oakley Encryption Algorithm value and the Key Length attribute to send (in bits).
    pub fn oakley(self) -> (u16, Option<u16>) {
        match self {
            Self::Aes128Cbc => (OAKLEY_AES_CBC, Some(128)),
            Self::Aes192Cbc => (OAKLEY_AES_CBC, Some(192)),
            Self::Aes256Cbc => (OAKLEY_AES_CBC, Some(256)),
            Self::TripleDesCbc => (OAKLEY_3DES_CBC, None),
        }
    }

    /// Key length in bytes.
    pub fn key_len(self) -> usize {
        match self {
            Self::Aes128Cbc => 16,
            Self::Aes192Cbc | Self::TripleDesCbc => 24,
            Self::Aes256Cbc => 32,
        }
    }

    /// Block length in bytes, which is also the IV length.
    pub fn block_len(self) -> usize {
        match self {
            Self::Aes128Cbc | Self::Aes192Cbc | Self::Aes256Cbc => 16,
            Self::TripleDesCbc => 8,
        }
    }

    /// The last cipher block of `ciphertext`: the IV for the next message of the same exchange
    /// (RFC 2409 App. B). Returns `None` if `ciphertext` is shorter than one block.
    pub fn last_block(self, ciphertext: &[u8]) -> Option<Vec<u8>> {
        let n = self.block_len();
        (ciphertext.len() >= n).then(|| ciphertext[ciphertext.len() - n..].to_vec())
    }

    fn check(self, key: &[u8], iv: &[u8], buf: &[u8]) -> Result<(), CryptoError> {
        if key.len() != self.key_len() {
            return Err(CryptoError::BadKeyLength);
        }
        if iv.len() != self.block_len() {
            return Err(CryptoError::BadIvLength);
        }
        if !buf.len().is_multiple_of(self.block_len()) {
            return Err(CryptoError::BadCiphertextLength);
        }
        Ok(())
    }

    /// Encrypts `buf` in place in CBC mode. `buf.len()` must be a multiple of
    /// [`block_len`](Self::block_len) (the caller pads).
    pub fn encrypt(self, key: &[u8], iv: &[u8], buf: &mut [u8]) -> Result<(), CryptoError> {
        self.check(key, iv, buf)?;
        let len = buf.len();
        match self {
            Self::Aes128Cbc => cbc_encrypt::<Aes128>(key, iv, buf, len),
            Self::Aes192Cbc => cbc_encrypt::<Aes192>(key, iv, buf, len),
            Self::Aes256Cbc => cbc_encrypt::<Aes256>(key, iv, buf, len),
            Self::TripleDesCbc => cbc_encrypt::<TdesEde3>(key, iv, buf, len),
        }
    }

    /// Decrypts `buf` in place in CBC mode. `buf.len()` must be a multiple of
    /// [`block_len`](Self::block_len); the padding is left in place.
    pub fn decrypt(self, key: &[u8], iv: &[u8], buf: &mut [u8]) -> Result<(), CryptoError> {
        self.check(key, iv, buf)?;
        match self {
            Self::Aes128Cbc => cbc_decrypt::<Aes128>(key, iv, buf),
            Self::Aes192Cbc => cbc_decrypt::<Aes192>(key, iv, buf),
            Self::Aes256Cbc => cbc_decrypt::<Aes256>(key, iv, buf),
            Self::TripleDesCbc => cbc_decrypt::<TdesEde3>(key, iv, buf),
        }
    }
}

fn cbc_encrypt<C>(key: &[u8], iv: &[u8], buf: &mut [u8], len: usize) -> Result<(), CryptoError>
where
    C: BlockCipherEncrypt + KeyInit,
{
    let enc =
        cbc::Encryptor::<C>::new_from_slices(key, iv).map_err(|_| CryptoError::BadKeyLength)?;
    enc.encrypt_padded::<NoPadding>(buf, len)
        .map_err(|_| CryptoError::BadCiphertextLength)?;
    Ok(())
}

fn cbc_decrypt<C>(key: &[u8], iv: &[u8], buf: &mut [u8]) -> Result<(), CryptoError>
where
    C: BlockCipherDecrypt + KeyInit,
{
    let dec =
        cbc::Decryptor::<C>::new_from_slices(key, iv).map_err(|_| CryptoError::BadKeyLength)?;
    dec.decrypt_padded::<NoPadding>(buf)
        .map_err(|_| CryptoError::BadCiphertextLength)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    const SP800_38A_PT: &str = concat!(
        "6bc1bee22e409f96e93d7e117393172a",
        "ae2d8a571e03ac9c9eb76fac45af8e51",
        "30c81c46a35ce411e5fbc1191a0a52ef",
        "f69f2445df4f9b17ad2b417be66c3710"
    );
    const SP800_38A_IV: &str = "000102030405060708090a0b0c0d0e0f";

    fn kat(alg: EncAlg, key: &str, iv: &str, pt: &str, ct: &str) {
        let (key, iv) = (h(key), h(iv));
        let mut buf = h(pt);
        alg.encrypt(&key, &iv, &mut buf).unwrap();
        assert_eq!(hex::encode(&buf), ct, "{alg:?} encrypt");
        assert_eq!(
            alg.last_block(&buf).unwrap(),
            h(ct)[h(ct).len() - alg.block_len()..]
        );
        alg.decrypt(&key, &iv, &mut buf).unwrap();
        assert_eq!(hex::encode(&buf), pt, "{alg:?} decrypt");
    }

    /// NIST SP 800-38A F.2.1 (CBC-AES128), F.2.3 (CBC-AES192) and F.2.5 (CBC-AES256).
    #[test]
    fn sp800_38a_cbc_aes() {
        kat(
            EncAlg::Aes128Cbc,
            "2b7e151628aed2a6abf7158809cf4f3c",
            SP800_38A_IV,
            SP800_38A_PT,
            concat!(
                "7649abac8119b246cee98e9b12e9197d",
                "5086cb9b507219ee95db113a917678b2",
                "73bed6b8e3c1743b7116e69e22229516",
                "3ff1caa1681fac09120eca307586e1a7"
            ),
        );
        kat(
            EncAlg::Aes192Cbc,
            "8e73b0f7da0e6452c810f32b809079e562f8ead2522c6b7b",
            SP800_38A_IV,
            SP800_38A_PT,
            concat!(
                "4f021db243bc633d7178183a9fa071e8",
                "b4d9ada9ad7dedf4e5e738763f69145a",
                "571b242012fb7ae07fa9baac3df102e0",
                "08b0e27988598881d920a9e64f5615cd"
            ),
        );
        kat(
            EncAlg::Aes256Cbc,
            "603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4",
            SP800_38A_IV,
            SP800_38A_PT,
            concat!(
                "f58c4c04d6e5f1ba779eabfb5f7bfbd6",
                "9cfc4e967edb808d679f777bc6702c7d",
                "39f23369a9d9bacfa530e26304231461",
                "b2eb05e2c39be9fcda6c19078c6a9d1b"
            ),
        );
    }

    /// NIST SP 800-67 Rev. 1 §B.1 example (three-key TDEA, ECB: one block at a time with a zero IV),
    /// then the same key in CBC mode (value from `openssl enc -des-ede3-cbc -nopad`).
    #[test]
    fn tdes() {
        let key = "0123456789abcdef23456789abcdef01456789abcdef0123";
        let pt = hex::encode(b"The qufck brown fox jump");
        let ecb = "a826fd8ce53b855fcce21c8112256fe668d5c05dd9b6b900";
        for i in 0..3 {
            kat(
                EncAlg::TripleDesCbc,
                key,
                "0000000000000000",
                &pt[i * 16..i * 16 + 16],
                &ecb[i * 16..i * 16 + 16],
            );
        }
        kat(
            EncAlg::TripleDesCbc,
            key,
            "1234567890abcdef",
            &pt,
            "38413d4ba2325cf1141f707471ac2ced57db530f0123b5ac",
        );
    }

    #[test]
    fn oakley_mapping() {
        for alg in [
            EncAlg::Aes128Cbc,
            EncAlg::Aes192Cbc,
            EncAlg::Aes256Cbc,
            EncAlg::TripleDesCbc,
        ] {
            let (e, k) = alg.oakley();
            assert_eq!(EncAlg::from_oakley(e, k), Some(alg));
            if let Some(bits) = k {
                assert_eq!(usize::from(bits) / 8, alg.key_len());
            }
        }
        assert_eq!(EncAlg::from_oakley(7, None), None);
        assert_eq!(EncAlg::from_oakley(7, Some(64)), None);
        assert_eq!(
            EncAlg::from_oakley(5, Some(192)),
            Some(EncAlg::TripleDesCbc)
        );
        assert_eq!(EncAlg::from_oakley(5, Some(128)), None);
        assert_eq!(EncAlg::from_oakley(1, None), None); // DES
    }

    #[test]
    fn length_errors() {
        let alg = EncAlg::Aes128Cbc;
        let mut buf = [0u8; 32];
        assert_eq!(
            alg.encrypt(&[0; 15], &[0; 16], &mut buf),
            Err(CryptoError::BadKeyLength)
        );
        assert_eq!(
            alg.encrypt(&[0; 16], &[0; 8], &mut buf),
            Err(CryptoError::BadIvLength)
        );
        assert_eq!(
            alg.decrypt(&[0; 16], &[0; 16], &mut buf[..17]),
            Err(CryptoError::BadCiphertextLength)
        );
        assert_eq!(
            EncAlg::TripleDesCbc.decrypt(&[0; 24], &[0; 8], &mut buf[..12]),
            Err(CryptoError::BadCiphertextLength)
        );
        assert!(
            EncAlg::TripleDesCbc
                .encrypt(&[1; 24], &[0; 8], &mut buf[..8])
                .is_ok()
        );
        assert!(alg.encrypt(&[0; 16], &[0; 16], &mut []).is_ok());
        assert_eq!(alg.last_block(&[0; 15]), None);
    }
}
