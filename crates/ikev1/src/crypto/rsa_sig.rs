//! RSA signatures for Main Mode signature authentication, and X.509 certificates.
//!
//! RFC 2409 §5.1: "SIG_I or SIG_R is the result of the negotiated digital signature algorithm
//! applied to HASH_I or HASH_R". For RSA, IKEv1 implementations (strongSwan's
//! `SIGN_RSA_EMSA_PKCS1_NULL`, racoon's `eay_get_rsasign`) apply PKCS#1 v1.5 type-1 padding
//! (RFC 8017 §9.2 steps 3–5) directly to HASH_I/HASH_R, **without** the DigestInfo wrapper:
//! `s^e mod n = 00 01 FF … FF 00 ‖ HASH`. [`RsaPrivateKey::sign_raw`] and
//! [`RsaPublicKey::verify_raw`] do exactly that.
//!
//! Certificates (CERT payloads, RFC 2408 §3.9, encoding 4 = X.509 signature) are parsed with
//! `x509-parser`. [`Certificate::verify_signed_by`] checks one link of a chain: issuer name,
//! validity dates at a given time, the issuer's CA flag, and an RSA PKCS#1 v1.5 signature with
//! SHA-256/384/512 (RFC 8017 §9.2, with DigestInfo as usual for certificates). Revocation, name
//! constraints, key usage and path building are left to the caller.

use std::fmt;
use std::net::IpAddr;
use std::ops::Range;

use rsa::Pkcs1v15Sign;
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey};
use rsa::traits::PublicKeyParts;
use sha2::{Digest, Sha256, Sha384, Sha512};
use x509_parser::extensions::GeneralName;
use x509_parser::oid_registry::{
    OID_PKCS1_SHA256WITHRSA, OID_PKCS1_SHA384WITHRSA, OID_PKCS1_SHA512WITHRSA,
};
use x509_parser::pem::Pem;

use super::CryptoError;

/// An RSA private key for signing HASH_I/HASH_R. `Debug` shows only the modulus size.
pub struct RsaPrivateKey {
    inner: rsa::PrivateKey,
}

impl fmt::Debug for RsaPrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RsaPrivateKey")
            .field("bits", &(self.inner.size() * 8))
            .finish_non_exhaustive()
    }
}

impl RsaPrivateKey {
    /// Loads a key from PEM: PKCS#1 (`BEGIN RSA PRIVATE KEY`) or unencrypted PKCS#8
    /// (`BEGIN PRIVATE KEY`).
    pub fn from_pem(pem: &str) -> Result<Self, CryptoError> {
        let inner = if pem.contains("-----BEGIN RSA PRIVATE KEY-----") {
            rsa::PrivateKey::from_pkcs1_pem(pem).map_err(|e| CryptoError::Key(e.to_string()))?
        } else if pem.contains("-----BEGIN PRIVATE KEY-----") {
            rsa::PrivateKey::from_pkcs8_pem(pem).map_err(|e| CryptoError::Key(e.to_string()))?
        } else {
            return Err(CryptoError::Key(
                "expected a PKCS#1 or unencrypted PKCS#8 RSA private key in PEM".into(),
            ));
        };
        Ok(Self { inner })
    }

    /// Loads a key from DER: PKCS#8 `PrivateKeyInfo`, or else PKCS#1 `RSAPrivateKey`.
    pub fn from_der(der: &[u8]) -> Result<Self, CryptoError> {
        let inner = match rsa::PrivateKey::from_pkcs8_der(der) {
            Ok(k) => k,
            Err(_) => {
                rsa::PrivateKey::from_pkcs1_der(der).map_err(|e| CryptoError::Key(e.to_string()))?
            }
        };
        Ok(Self { inner })
    }

    /// Signs `hash` (HASH_I or HASH_R) with PKCS#1 v1.5 padding and no DigestInfo.
    ///
    /// The `rsa` crate blinds the private operation with the OS RNG; the signature itself is
    /// deterministic.
    pub fn sign_raw(&self, hash: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.inner
            .sign(Pkcs1v15Sign::new_unprefixed(), hash)
            .map_err(|e| CryptoError::Key(e.to_string()))
    }

    /// The public half.
    pub fn public(&self) -> RsaPublicKey {
        RsaPublicKey {
            inner: self.inner.to_public_key(),
        }
    }
}

/// An RSA public key: a peer's, from its certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RsaPublicKey {
    inner: rsa::PublicKey,
}

impl RsaPublicKey {
    /// Parses a DER `SubjectPublicKeyInfo` (RFC 5280 §4.1.2.7) holding an RSA key.
    pub fn from_spki_der(der: &[u8]) -> Result<Self, CryptoError> {
        let inner = rsa::PublicKey::from_public_key_der(der)
            .map_err(|e| CryptoError::Key(e.to_string()))?;
        Ok(Self { inner })
    }

    /// The modulus length in bytes: the length of every signature by this key.
    pub fn modulus_len(&self) -> usize {
        self.inner.size()
    }

    /// Verifies a PKCS#1 v1.5 signature over `hash` with no DigestInfo (the IKEv1 SIG payload).
    pub fn verify_raw(&self, hash: &[u8], sig: &[u8]) -> Result<(), CryptoError> {
        self.inner
            .verify(Pkcs1v15Sign::new_unprefixed(), hash, sig)
            .map_err(|_| CryptoError::BadSignature)
    }

    /// The modulus and public exponent, big-endian without leading zeros.
    pub fn components(&self) -> (Vec<u8>, Vec<u8>) {
        (
            self.inner.n().to_be_bytes_trimmed_vartime().into_vec(),
            self.inner.e().to_be_bytes_trimmed_vartime().into_vec(),
        )
    }
}

/// Signature algorithms accepted on certificates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CertSigAlg {
    RsaSha256,
    RsaSha384,
    RsaSha512,
}

impl CertSigAlg {
    /// DER DigestInfo prefixes for PKCS#1 v1.5 signatures (RFC 8017 §9.2, note 1).
    fn digest_info(self, tbs: &[u8]) -> Vec<u8> {
        const SHA256: &[u8] = &[
            0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x01, 0x05, 0x00, 0x04, 0x20,
        ];
        const SHA384: &[u8] = &[
            0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x02, 0x05, 0x00, 0x04, 0x30,
        ];
        const SHA512: &[u8] = &[
            0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x03, 0x05, 0x00, 0x04, 0x40,
        ];
        match self {
            Self::RsaSha256 => [SHA256, &Sha256::digest(tbs)[..]].concat(),
            Self::RsaSha384 => [SHA384, &Sha384::digest(tbs)[..]].concat(),
            Self::RsaSha512 => [SHA512, &Sha512::digest(tbs)[..]].concat(),
        }
    }
}

/// A parsed X.509 certificate (RFC 5280). Everything is extracted once, at parse time.
#[derive(Clone)]
pub struct Certificate {
    /// The whole certificate, DER, as in a CERT payload.
    pub der: Vec<u8>,
    tbs: Range<usize>,
    subject: Range<usize>,
    issuer: Range<usize>,
    spki: Range<usize>,
    subject_text: String,
    issuer_text: String,
    sig_alg: Option<CertSigAlg>,
    sig_alg_oid: String,
    signature: Vec<u8>,
    not_before: i64,
    not_after: i64,
    is_ca: bool,
    alt_names: Vec<String>,
    alt_ips: Vec<IpAddr>,
}

impl fmt::Debug for Certificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificate")
            .field("subject", &self.subject_text)
            .field("issuer", &self.issuer_text)
            .field("not_before", &self.not_before)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

/// The position of `inner` inside `outer`; `inner` must be a sub-slice of `outer`.
fn range_in(outer: &[u8], inner: &[u8]) -> Range<usize> {
    let start = (inner.as_ptr() as usize)
        .checked_sub(outer.as_ptr() as usize)
        .expect("x509-parser returns sub-slices of its input");
    assert!(start + inner.len() <= outer.len());
    start..start + inner.len()
}

fn cert_err(e: impl fmt::Display) -> CryptoError {
    CryptoError::Certificate(e.to_string())
}

impl Certificate {
    /// Parses every `CERTIFICATE` block in a PEM text, in order. Other blocks are skipped; no
    /// certificate at all is an error.
    pub fn from_pem(pem: &str) -> Result<Vec<Self>, CryptoError> {
        let mut out = Vec::new();
        for block in Pem::iter_from_buffer(pem.as_bytes()) {
            let block = block.map_err(cert_err)?;
            if block.label == "CERTIFICATE" {
                out.push(Self::from_der(block.contents)?);
            }
        }
        if out.is_empty() {
            return Err(CryptoError::Certificate(
                "no CERTIFICATE block in PEM".into(),
            ));
        }
        Ok(out)
    }

    /// Parses a DER certificate. Trailing bytes are an error.
    pub fn from_der(der: Vec<u8>) -> Result<Self, CryptoError> {
        let (rest, cert) = x509_parser::parse_x509_certificate(&der).map_err(cert_err)?;
        if !rest.is_empty() {
            return Err(CryptoError::Certificate(
                "trailing bytes after the certificate".into(),
            ));
        }
        let tbs = &cert.tbs_certificate;
        let oid = &cert.signature_algorithm.algorithm;
        // RFC 5280 §4.1.1.2: the outer algorithm must equal the one inside the TBS.
        if tbs.signature.algorithm != *oid {
            return Err(CryptoError::Certificate(
                "signature algorithm mismatch".into(),
            ));
        }
        let sig_alg = if *oid == OID_PKCS1_SHA256WITHRSA {
            Some(CertSigAlg::RsaSha256)
        } else if *oid == OID_PKCS1_SHA384WITHRSA {
            Some(CertSigAlg::RsaSha384)
        } else if *oid == OID_PKCS1_SHA512WITHRSA {
            Some(CertSigAlg::RsaSha512)
        } else {
            None
        };
        let mut alt_names = Vec::new();
        let mut alt_ips = Vec::new();
        if let Some(san) = tbs.subject_alternative_name().map_err(cert_err)? {
            for name in &san.value.general_names {
                match name {
                    GeneralName::DNSName(s) | GeneralName::RFC822Name(s) => {
                        alt_names.push((*s).to_owned());
                    }
                    GeneralName::IPAddress(b) => {
                        if let Ok(a) = <[u8; 4]>::try_from(*b) {
                            alt_ips.push(IpAddr::from(a));
                        } else if let Ok(a) = <[u8; 16]>::try_from(*b) {
                            alt_ips.push(IpAddr::from(a));
                        }
                    }
                    _ => {}
                }
            }
        }
        let parsed = Self {
            tbs: range_in(&der, tbs.as_ref()),
            subject: range_in(&der, tbs.subject().as_raw()),
            issuer: range_in(&der, tbs.issuer().as_raw()),
            spki: range_in(&der, tbs.public_key().raw),
            subject_text: tbs.subject().to_string(),
            issuer_text: tbs.issuer().to_string(),
            sig_alg,
            sig_alg_oid: oid.to_id_string(),
            signature: cert.signature_value.data.to_vec(),
            not_before: tbs.validity().not_before.timestamp(),
            not_after: tbs.validity().not_after.timestamp(),
            is_ca: tbs.is_ca(),
            alt_names,
            alt_ips,
            der: Vec::new(),
        };
        Ok(Self { der, ..parsed })
    }

    /// The subject's RSA public key (from the SubjectPublicKeyInfo).
    pub fn public_key(&self) -> Result<RsaPublicKey, CryptoError> {
        RsaPublicKey::from_spki_der(&self.der[self.spki.clone()])
    }

    /// The DER of the subject Name: the body of an ID_DER_ASN1_DN identification payload.
    pub fn subject_der(&self) -> &[u8] {
        &self.der[self.subject.clone()]
    }

    /// The DER of the issuer Name (also what a CERTREQ for this issuer carries).
    pub fn issuer_der(&self) -> &[u8] {
        &self.der[self.issuer.clone()]
    }

    /// The subject as text (RFC 4514 style), for logs.
    pub fn subject_text(&self) -> &str {
        &self.subject_text
    }

    /// The subjectAltName dNSName and rfc822Name entries, in certificate order.
    pub fn subject_alt_names(&self) -> Vec<String> {
        self.alt_names.clone()
    }

    /// The subjectAltName iPAddress entries.
    pub fn subject_alt_ips(&self) -> Vec<IpAddr> {
        self.alt_ips.clone()
    }

    /// Validity period as Unix times (notBefore, notAfter), RFC 5280 §4.1.2.5.
    pub fn validity(&self) -> (i64, i64) {
        (self.not_before, self.not_after)
    }

    /// Whether basicConstraints says cA = TRUE.
    pub fn is_ca(&self) -> bool {
        self.is_ca
    }

    /// Checks that `issuer` signed this certificate and that both are valid at `now_unix`.
    ///
    /// Checks: this certificate's issuer Name equals `issuer`'s subject Name (byte-wise DER);
    /// `notBefore <= now_unix <= notAfter` for both; `issuer` has basicConstraints cA = TRUE
    /// unless it is this very certificate (a pinned self-signed certificate); the signature is
    /// RSA PKCS#1 v1.5 with SHA-256, SHA-384 or SHA-512 over the TBSCertificate.
    pub fn verify_signed_by(&self, issuer: &Self, now_unix: i64) -> Result<(), CryptoError> {
        if self.issuer_der() != issuer.subject_der() {
            return Err(CryptoError::IssuerMismatch);
        }
        for c in [self, issuer] {
            if now_unix < c.not_before || now_unix > c.not_after {
                return Err(CryptoError::CertificateValidity);
            }
        }
        if !issuer.is_ca && issuer.der != self.der {
            return Err(CryptoError::Certificate("issuer is not a CA".into()));
        }
        let Some(alg) = self.sig_alg else {
            return Err(CryptoError::Certificate(format!(
                "unsupported signature algorithm {}",
                self.sig_alg_oid
            )));
        };
        let digest_info = alg.digest_info(&self.der[self.tbs.clone()]);
        issuer
            .public_key()?
            .verify_raw(&digest_info, &self.signature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crypto_bigint::modular::{BoxedMontyForm, BoxedMontyParams};
    use crypto_bigint::{BoxedUint, Odd};

    const KEY_PKCS8: &str = include_str!("../../testdata/rsa2048-pkcs8.pem");
    const KEY_PKCS1: &str = include_str!("../../testdata/rsa2048-pkcs1.pem");
    const CA: &str = include_str!("../../testdata/ca.pem");
    const HA: &str = include_str!("../../testdata/ha-cert.pem");
    /// 2026-11-27 03:02:00 UTC, the CA's notBefore; the HA certificate's notBefore is the same.
    const NOT_BEFORE: i64 = 1_795_748_520;
    /// 2046-01-26 03:02:00 UTC, the HA certificate's notAfter.
    const HA_NOT_AFTER: i64 = 2_400_548_520;

    fn key() -> RsaPrivateKey {
        RsaPrivateKey::from_pem(KEY_PKCS8).unwrap()
    }

    #[test]
    fn pkcs1_and_pkcs8_load_the_same_key() {
        let a = RsaPrivateKey::from_pem(KEY_PKCS8).unwrap();
        let b = RsaPrivateKey::from_pem(KEY_PKCS1).unwrap();
        assert_eq!(a.public(), b.public());
        assert_eq!(a.public().modulus_len(), 256);
        assert!(matches!(
            RsaPrivateKey::from_pem("-----BEGIN EC PRIVATE KEY-----"),
            Err(CryptoError::Key(_))
        ));
        let d = format!("{a:?}");
        assert_eq!(d, "RsaPrivateKey { bits: 2048, .. }");
    }

    #[test]
    fn raw_sign_verify_round_trip() {
        let k = key();
        let hash = Sha256::digest(b"HASH_I input").to_vec();
        let sig = k.sign_raw(&hash).unwrap();
        assert_eq!(sig.len(), 256);
        let public = k.public();
        public.verify_raw(&hash, &sig).unwrap();
        // SHA-1 sized (20 bytes) hashes work too: IKEv1 signs whatever the PRF produced.
        let h20 = [0x5a; 20];
        public.verify_raw(&h20, &k.sign_raw(&h20).unwrap()).unwrap();
        // Negative cases: another hash, a flipped signature bit, a truncated signature.
        let mut other = hash.clone();
        other[0] ^= 1;
        assert_eq!(
            public.verify_raw(&other, &sig),
            Err(CryptoError::BadSignature)
        );
        let mut bad = sig.clone();
        bad[100] ^= 0x10;
        assert_eq!(
            public.verify_raw(&hash, &bad),
            Err(CryptoError::BadSignature)
        );
        assert_eq!(
            public.verify_raw(&hash, &sig[1..]),
            Err(CryptoError::BadSignature)
        );
        // A DigestInfo-prefixed signature is not what IKEv1 sends.
        let prefixed = CertSigAlg::RsaSha256.digest_info(b"HASH_I input");
        let sig_prefixed = k.sign_raw(&prefixed).unwrap();
        assert_eq!(
            public.verify_raw(&hash, &sig_prefixed),
            Err(CryptoError::BadSignature)
        );
    }

    /// Independent check of the encoding: s^e mod n = 00 01 FF … FF 00 ‖ hash, no DigestInfo.
    #[test]
    fn raw_signature_encoding() {
        let k = key();
        let hash = [0xa5u8; 32];
        let sig = k.sign_raw(&hash).unwrap();
        let (n, e) = k.public().components();
        let bits = u32::try_from(n.len() * 8).unwrap();
        let n = Odd::new(BoxedUint::from_be_slice(&n, bits).unwrap()).unwrap();
        let params = BoxedMontyParams::new_vartime(n);
        let s = BoxedMontyForm::new(BoxedUint::from_be_slice(&sig, bits).unwrap(), &params);
        let e = BoxedUint::from_be_slice(&e, bits).unwrap();
        let m = s.pow(&e).retrieve().to_be_bytes().into_vec();
        let mut expected = vec![0x00, 0x01];
        expected.resize(256 - 32 - 1, 0xff);
        expected.push(0x00);
        expected.extend_from_slice(&hash);
        assert_eq!(m, expected);
    }

    #[test]
    fn certificates() {
        let ca = Certificate::from_pem(CA).unwrap().remove(0);
        let both = Certificate::from_pem(&format!("{HA}\n{CA}")).unwrap();
        assert_eq!(both.len(), 2);
        let ha = both[0].clone();
        assert_eq!(ha.subject_text(), "C=XX, O=MIP6 Lab, CN=ha.example.com");
        assert_eq!(ha.issuer_der(), ca.subject_der());
        assert!(ca.is_ca() && !ha.is_ca());
        assert_eq!(
            ha.subject_alt_names(),
            vec![
                "ha.example.com".to_string(),
                "admin@example.com".to_string()
            ]
        );
        assert_eq!(
            ha.subject_alt_ips(),
            vec!["2001:db8:ff::1".parse::<IpAddr>().unwrap()]
        );
        assert_eq!(ha.validity(), (NOT_BEFORE, HA_NOT_AFTER));
        // The subject Name DER is a SEQUENCE (ID_DER_ASN1_DN payload body).
        assert_eq!(ha.subject_der()[0], 0x30);
        // The certificate's key is the test key.
        assert_eq!(ha.public_key().unwrap(), key().public());
        let now = NOT_BEFORE + 86_400;
        ha.verify_signed_by(&ca, now).unwrap(); // sha384WithRSAEncryption
        ca.verify_signed_by(&ca, now).unwrap(); // self-signed, sha256WithRSAEncryption
        assert_eq!(
            ha.verify_signed_by(&ca, NOT_BEFORE - 1),
            Err(CryptoError::CertificateValidity)
        );
        assert_eq!(
            ha.verify_signed_by(&ca, HA_NOT_AFTER + 1),
            Err(CryptoError::CertificateValidity)
        );
        assert_eq!(
            ca.verify_signed_by(&ha, now),
            Err(CryptoError::IssuerMismatch)
        );
        // Tamper with the TBS (the last byte of the subject Name): the signature must fail.
        let mut der = ha.der.clone();
        der[ha.subject.end - 1] ^= 0x01;
        let forged = Certificate::from_der(der).unwrap();
        assert_eq!(
            forged.verify_signed_by(&ca, now),
            Err(CryptoError::BadSignature)
        );
        assert!(Certificate::from_der(vec![0x30, 0x00]).is_err());
        assert!(Certificate::from_pem("nothing here").is_err());
        let d = format!("{ha:?}");
        assert!(d.contains("ha.example.com"));
    }
}
