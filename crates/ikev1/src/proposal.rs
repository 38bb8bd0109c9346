//! Proposals written the way strongSwan users write them, and their ISAKMP form.
//!
//! Phase 1 (RFC 2409 §5 and App. A): one ISAKMP proposal with a `KEY_IKE` transform per
//! configured suite, each carrying the Oakley attributes encryption algorithm, key length, hash
//! (which is also the PRF and the HASH_I/HASH_R function), group, authentication method and
//! lifetime. Phase 2 (RFC 2407 §4.4.4 and §4.5): one ESP proposal with a transform per suite,
//! carrying the IPsec attributes lifetime, group (PFS), encapsulation mode, authentication
//! algorithm and key length. AES-GCM with a 16-octet ICV is RFC 4106 (transform id 20).

use std::fmt;
use std::time::Duration;

use isakmp::{Attribute, Transform, ipsec, oakley};

use crate::crypto::{DhGroup, EncAlg, PrfAlg};

/// An error in a proposal string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("proposal {proposal:?}: {reason}")]
pub struct ProposalError {
    /// The proposal as written.
    pub proposal: String,
    /// What is wrong with it.
    pub reason: String,
}

fn err(p: &str, reason: impl Into<String>) -> ProposalError {
    ProposalError {
        proposal: p.to_owned(),
        reason: reason.into(),
    }
}

/// Which DH groups are allowed without explicit configuration (RFC 8247 deprecates 2 and 5).
fn group_token(t: &str) -> Option<DhGroup> {
    Some(match t {
        "modp1024" => DhGroup::Modp1024,
        "modp1536" => DhGroup::Modp1536,
        "modp2048" => DhGroup::Modp2048,
        "ecp256" => DhGroup::Ecp256,
        "ecp384" => DhGroup::Ecp384,
        "x25519" | "curve25519" => DhGroup::Curve25519,
        _ => return None,
    })
}

fn group_name(g: DhGroup) -> &'static str {
    match g {
        DhGroup::Modp1024 => "modp1024",
        DhGroup::Modp1536 => "modp1536",
        DhGroup::Modp2048 => "modp2048",
        DhGroup::Ecp256 => "ecp256",
        DhGroup::Ecp384 => "ecp384",
        DhGroup::Curve25519 => "x25519",
    }
}

fn prf_token(t: &str) -> Option<PrfAlg> {
    Some(match t {
        "md5" => PrfAlg::Md5,
        "sha1" | "sha" => PrfAlg::Sha1,
        "sha256" | "sha2_256" => PrfAlg::Sha256,
        "sha384" | "sha2_384" => PrfAlg::Sha384,
        "sha512" | "sha2_512" => PrfAlg::Sha512,
        _ => return None,
    })
}

fn prf_name(p: PrfAlg) -> &'static str {
    match p {
        PrfAlg::Md5 => "md5",
        PrfAlg::Sha1 => "sha1",
        PrfAlg::Sha256 => "sha256",
        PrfAlg::Sha384 => "sha384",
        PrfAlg::Sha512 => "sha512",
    }
}

/// A phase-1 suite: encryption, hash/PRF and DH group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IkeProposal {
    /// Message encryption.
    pub enc: EncAlg,
    /// Hash and PRF.
    pub prf: PrfAlg,
    /// Diffie-Hellman group.
    pub group: DhGroup,
}

impl IkeProposal {
    /// Parses `aes128-sha256-ecp256`. Groups 2 and 5, 3DES and MD5 need `allow_legacy`.
    pub fn parse(s: &str, allow_legacy: bool) -> Result<Self, ProposalError> {
        let (mut enc, mut prf, mut group) = (None, None, None);
        for t in s.trim().to_ascii_lowercase().split('-') {
            let t = t.strip_prefix("prf").unwrap_or(t);
            if let Some(e) = match t {
                "aes128" | "aes" => Some(EncAlg::Aes128Cbc),
                "aes192" => Some(EncAlg::Aes192Cbc),
                "aes256" => Some(EncAlg::Aes256Cbc),
                "3des" => Some(EncAlg::TripleDesCbc),
                _ => None,
            } {
                if enc.replace(e).is_some() {
                    return Err(err(s, "more than one encryption algorithm"));
                }
            } else if let Some(p) = prf_token(t) {
                if prf.is_some_and(|q| q != p) {
                    return Err(err(s, "IKEv1 uses one hash for integrity and PRF"));
                }
                prf = Some(p);
            } else if let Some(g) = group_token(t) {
                if group.replace(g).is_some() {
                    return Err(err(s, "more than one DH group"));
                }
            } else {
                return Err(err(s, format!("unknown algorithm {t:?}")));
            }
        }
        let p = Self {
            enc: enc.ok_or_else(|| err(s, "no encryption algorithm"))?,
            prf: prf.ok_or_else(|| err(s, "no hash algorithm"))?,
            group: group.ok_or_else(|| err(s, "no DH group"))?,
        };
        if !allow_legacy && p.is_legacy() {
            return Err(err(
                s,
                "3DES, MD5 and MODP groups below 2048 bits need allow_legacy = true",
            ));
        }
        Ok(p)
    }

    fn is_legacy(&self) -> bool {
        matches!(self.enc, EncAlg::TripleDesCbc)
            || matches!(self.prf, PrfAlg::Md5)
            || matches!(self.group, DhGroup::Modp1024 | DhGroup::Modp1536)
    }

    /// The `KEY_IKE` transform offering this suite.
    pub fn to_transform(&self, number: u8, auth_method: u16, lifetime: Duration) -> Transform {
        let (enc, key_len) = self.enc.oakley();
        let mut attributes = vec![Attribute::basic(oakley::ENCRYPTION_ALGORITHM, enc)];
        if let Some(bits) = key_len {
            attributes.push(Attribute::basic(oakley::KEY_LENGTH, bits));
        }
        attributes.extend([
            Attribute::basic(oakley::HASH_ALGORITHM, self.prf.oakley_hash()),
            Attribute::basic(oakley::GROUP_DESCRIPTION, self.group.id()),
            Attribute::basic(oakley::AUTHENTICATION_METHOD, auth_method),
            Attribute::basic(oakley::LIFE_TYPE, oakley::life::SECONDS),
            Attribute::encode_u64(oakley::LIFE_DURATION, lifetime.as_secs()),
        ]);
        Transform {
            number,
            id: ipsec::KEY_IKE,
            attributes,
        }
    }
}

impl fmt::Display for IkeProposal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let enc = match self.enc {
            EncAlg::Aes128Cbc => "aes128",
            EncAlg::Aes192Cbc => "aes192",
            EncAlg::Aes256Cbc => "aes256",
            EncAlg::TripleDesCbc => "3des",
        };
        write!(f, "{enc}-{}-{}", prf_name(self.prf), group_name(self.group))
    }
}

/// What a peer's phase-1 transform says, once read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Phase1Offer {
    /// The suite.
    pub suite: IkeProposal,
    /// Oakley authentication method.
    pub auth_method: u16,
    /// Lifetime in seconds, if given.
    pub lifetime: Option<Duration>,
}

impl Phase1Offer {
    /// Reads a `KEY_IKE` transform. `None` when it uses anything we do not implement.
    pub fn from_transform(t: &Transform) -> Option<Self> {
        if t.id != ipsec::KEY_IKE {
            return None;
        }
        let (mut enc, mut key_len, mut hash, mut group, mut auth) = (None, None, None, None, None);
        let (mut life_type, mut lifetime) = (oakley::life::SECONDS, None);
        for a in &t.attributes {
            let v = a.as_u64();
            match a.ty {
                oakley::ENCRYPTION_ALGORITHM => enc = Some(u16::try_from(v?).ok()?),
                oakley::KEY_LENGTH => key_len = Some(u16::try_from(v?).ok()?),
                oakley::HASH_ALGORITHM => hash = Some(u16::try_from(v?).ok()?),
                oakley::GROUP_DESCRIPTION => group = Some(u16::try_from(v?).ok()?),
                oakley::AUTHENTICATION_METHOD => auth = Some(u16::try_from(v?).ok()?),
                oakley::LIFE_TYPE => life_type = u16::try_from(v?).ok()?,
                oakley::LIFE_DURATION if life_type == oakley::life::SECONDS => {
                    lifetime = Some(Duration::from_secs(v?));
                }
                oakley::LIFE_DURATION => {}
                // A PRF attribute (13) other than the hash is not defined for IKEv1 suites we
                // know; anything else unknown makes the transform unusable (RFC 2409 §5).
                _ => return None,
            }
        }
        let suite = IkeProposal {
            enc: EncAlg::from_oakley(enc?, key_len)?,
            prf: PrfAlg::from_oakley_hash(hash?)?,
            group: DhGroup::from_id(group?)?,
        };
        Some(Self {
            suite,
            auth_method: auth?,
            lifetime,
        })
    }
}

/// ESP encryption of a phase-2 suite.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EspEncr {
    /// AES-GCM with a 16-octet ICV (RFC 4106); key bits 128 or 256.
    AesGcm16 {
        /// Key size in bits.
        bits: u16,
    },
    /// AES-CBC (RFC 3602); key bits 128, 192 or 256.
    AesCbc {
        /// Key size in bits.
        bits: u16,
    },
    /// 3DES-CBC (legacy).
    TripleDes,
}

/// ESP integrity of a phase-2 suite.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EspInteg {
    /// HMAC-SHA1-96 (RFC 2404).
    HmacSha1_96,
    /// HMAC-SHA2-256-128 (RFC 4868).
    HmacSha256_128,
}

impl EspInteg {
    /// Key length in bytes.
    pub fn key_len(self) -> usize {
        match self {
            Self::HmacSha1_96 => 20,
            Self::HmacSha256_128 => 32,
        }
    }
    fn attr(self) -> u16 {
        match self {
            Self::HmacSha1_96 => ipsec::auth::HMAC_SHA1,
            Self::HmacSha256_128 => ipsec::auth::HMAC_SHA2_256,
        }
    }
}

impl EspEncr {
    /// Key length in bytes as taken from KEYMAT (GCM: key plus the 4-byte salt, RFC 4106 §8.1).
    pub fn key_len(self) -> usize {
        match self {
            Self::AesGcm16 { bits } => usize::from(bits) / 8 + 4,
            Self::AesCbc { bits } => usize::from(bits) / 8,
            Self::TripleDes => 24,
        }
    }
    fn transform_id(self) -> u8 {
        match self {
            Self::AesGcm16 { .. } => ipsec::esp_transform::AES_GCM_16,
            Self::AesCbc { .. } => ipsec::esp_transform::AES_CBC,
            Self::TripleDes => ipsec::esp_transform::TRIPLE_DES,
        }
    }
    fn key_bits(self) -> Option<u16> {
        match self {
            Self::AesGcm16 { bits } | Self::AesCbc { bits } => Some(bits),
            Self::TripleDes => None,
        }
    }
    fn is_aead(self) -> bool {
        matches!(self, Self::AesGcm16 { .. })
    }
}

/// A phase-2 (ESP) suite.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EspProposal {
    /// Encryption.
    pub encr: EspEncr,
    /// Integrity; `None` for AEAD.
    pub integ: Option<EspInteg>,
    /// Group for PFS, if any.
    pub pfs: Option<DhGroup>,
}

impl EspProposal {
    /// Parses `aes128gcm16`, `aes256-sha256`, `aes128-sha1-modp2048`, `aes128gcm16-ecp256`.
    pub fn parse(s: &str, allow_legacy: bool) -> Result<Self, ProposalError> {
        let (mut encr, mut integ, mut pfs) = (None, None, None);
        for t in s.trim().to_ascii_lowercase().split('-') {
            let e = match t {
                "aes128gcm16" | "aes128gcm128" => Some(EspEncr::AesGcm16 { bits: 128 }),
                "aes256gcm16" | "aes256gcm128" => Some(EspEncr::AesGcm16 { bits: 256 }),
                "aes128" | "aes" => Some(EspEncr::AesCbc { bits: 128 }),
                "aes192" => Some(EspEncr::AesCbc { bits: 192 }),
                "aes256" => Some(EspEncr::AesCbc { bits: 256 }),
                "3des" => Some(EspEncr::TripleDes),
                _ => None,
            };
            if let Some(e) = e {
                if encr.replace(e).is_some() {
                    return Err(err(s, "more than one encryption algorithm"));
                }
                continue;
            }
            let i = match t {
                "sha1" | "sha" | "sha1_96" => Some(EspInteg::HmacSha1_96),
                "sha256" | "sha2_256" | "sha256_128" => Some(EspInteg::HmacSha256_128),
                _ => None,
            };
            if let Some(i) = i {
                if integ.replace(i).is_some() {
                    return Err(err(s, "more than one integrity algorithm"));
                }
                continue;
            }
            if let Some(g) = group_token(t) {
                if pfs.replace(g).is_some() {
                    return Err(err(s, "more than one DH group"));
                }
                continue;
            }
            return Err(err(s, format!("unknown algorithm {t:?}")));
        }
        let encr = encr.ok_or_else(|| err(s, "no encryption algorithm"))?;
        match (encr.is_aead(), integ) {
            (true, Some(_)) => return Err(err(s, "AES-GCM takes no integrity algorithm")),
            (false, None) => return Err(err(s, "AES-CBC needs an integrity algorithm")),
            _ => {}
        }
        if !allow_legacy
            && (encr == EspEncr::TripleDes
                || matches!(pfs, Some(DhGroup::Modp1024 | DhGroup::Modp1536)))
        {
            return Err(err(
                s,
                "3DES and MODP groups below 2048 bits need allow_legacy = true",
            ));
        }
        Ok(Self { encr, integ, pfs })
    }

    /// Bytes of KEYMAT one direction needs: encryption key (with GCM salt) then integrity key.
    pub fn keymat_len(&self) -> usize {
        self.encr.key_len() + self.integ.map_or(0, EspInteg::key_len)
    }

    /// The ESP transform offering this suite.
    pub fn to_transform(
        &self,
        number: u8,
        encap_mode: u16,
        lifetime: Duration,
        life_kbytes: Option<u64>,
    ) -> Transform {
        let mut attributes = vec![
            Attribute::basic(ipsec::SA_LIFE_TYPE, 1),
            Attribute::encode_u64(ipsec::SA_LIFE_DURATION, lifetime.as_secs()),
        ];
        if let Some(kb) = life_kbytes {
            attributes.push(Attribute::basic(ipsec::SA_LIFE_TYPE, 2));
            attributes.push(Attribute::encode_u64(ipsec::SA_LIFE_DURATION, kb));
        }
        if let Some(g) = self.pfs {
            attributes.push(Attribute::basic(ipsec::GROUP_DESCRIPTION, g.id()));
        }
        attributes.push(Attribute::basic(ipsec::ENCAPSULATION_MODE, encap_mode));
        if let Some(i) = self.integ {
            attributes.push(Attribute::basic(ipsec::AUTHENTICATION_ALGORITHM, i.attr()));
        }
        if let Some(bits) = self.encr.key_bits() {
            attributes.push(Attribute::basic(ipsec::KEY_LENGTH, bits));
        }
        Transform {
            number,
            id: self.encr.transform_id(),
            attributes,
        }
    }
}

impl fmt::Display for EspProposal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.encr {
            EspEncr::AesGcm16 { bits } => write!(f, "aes{bits}gcm16")?,
            EspEncr::AesCbc { bits } => write!(f, "aes{bits}")?,
            EspEncr::TripleDes => f.write_str("3des")?,
        }
        match self.integ {
            Some(EspInteg::HmacSha1_96) => f.write_str("-sha1")?,
            Some(EspInteg::HmacSha256_128) => f.write_str("-sha256")?,
            None => {}
        }
        if let Some(g) = self.pfs {
            write!(f, "-{}", group_name(g))?;
        }
        Ok(())
    }
}

/// What a peer's ESP transform says, once read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Phase2Offer {
    /// The suite.
    pub suite: EspProposal,
    /// Encapsulation mode attribute value.
    pub encap_mode: u16,
    /// Lifetime in seconds, if given.
    pub lifetime: Option<Duration>,
    /// Lifetime in kilobytes, if given.
    pub life_kbytes: Option<u64>,
}

impl Phase2Offer {
    /// Reads an ESP transform. `None` when it uses anything we do not implement.
    pub fn from_transform(t: &Transform) -> Option<Self> {
        let (mut bits, mut auth, mut group, mut encap) = (None, None, None, None);
        let (mut life_type, mut lifetime, mut life_kbytes) = (1u64, None, None);
        for a in &t.attributes {
            let v = a.as_u64()?;
            match a.ty {
                ipsec::SA_LIFE_TYPE => life_type = v,
                ipsec::SA_LIFE_DURATION => match life_type {
                    1 => lifetime = Some(Duration::from_secs(v)),
                    2 => life_kbytes = Some(v),
                    _ => return None,
                },
                ipsec::GROUP_DESCRIPTION => group = Some(DhGroup::from_id(u16::try_from(v).ok()?)?),
                ipsec::ENCAPSULATION_MODE => encap = Some(u16::try_from(v).ok()?),
                ipsec::AUTHENTICATION_ALGORITHM => auth = Some(v),
                ipsec::KEY_LENGTH => bits = Some(u16::try_from(v).ok()?),
                _ => return None,
            }
        }
        let encr = match t.id {
            ipsec::esp_transform::AES_GCM_16 => match bits? {
                b @ (128 | 256) => EspEncr::AesGcm16 { bits: b },
                _ => return None,
            },
            ipsec::esp_transform::AES_CBC => match bits? {
                b @ (128 | 192 | 256) => EspEncr::AesCbc { bits: b },
                _ => return None,
            },
            ipsec::esp_transform::TRIPLE_DES => EspEncr::TripleDes,
            _ => return None,
        };
        let integ = match auth {
            None => None,
            Some(v) if v == u64::from(ipsec::auth::HMAC_SHA1) => Some(EspInteg::HmacSha1_96),
            Some(v) if v == u64::from(ipsec::auth::HMAC_SHA2_256) => Some(EspInteg::HmacSha256_128),
            Some(_) => return None,
        };
        if encr.is_aead() == integ.is_some() {
            return None;
        }
        Some(Self {
            suite: EspProposal {
                encr,
                integ,
                pfs: group,
            },
            encap_mode: encap?,
            lifetime,
            life_kbytes,
        })
    }
}

/// Reads a basic attribute value.
#[cfg(test)]
fn attr_u16(attrs: &[Attribute], ty: u16) -> Option<u16> {
    attrs
        .iter()
        .find(|a| a.ty == ty)
        .and_then(|a| match a.value {
            isakmp::AttrValue::Basic(v) => Some(v),
            isakmp::AttrValue::Variable(_) => None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ike_strings() {
        let p = IkeProposal::parse("aes128-sha256-ecp256", false).unwrap();
        assert_eq!(p.enc, EncAlg::Aes128Cbc);
        assert_eq!(p.prf, PrfAlg::Sha256);
        assert_eq!(p.group, DhGroup::Ecp256);
        assert_eq!(p.to_string(), "aes128-sha256-ecp256");
        assert!(IkeProposal::parse("aes128-sha256-modp1024", false).is_err());
        assert!(IkeProposal::parse("aes128-sha256-modp1024", true).is_ok());
        assert!(IkeProposal::parse("aes128-sha256", false).is_err());
        assert!(IkeProposal::parse("aes128-foo-ecp256", false).is_err());
        assert!(IkeProposal::parse("aes128-sha1-prfsha256-ecp256", false).is_err());
    }

    #[test]
    fn esp_strings() {
        let p = EspProposal::parse("aes128gcm16", false).unwrap();
        assert_eq!(p.encr, EspEncr::AesGcm16 { bits: 128 });
        assert_eq!(p.keymat_len(), 20);
        let p = EspProposal::parse("aes128-sha256-modp2048", false).unwrap();
        assert_eq!(p.integ, Some(EspInteg::HmacSha256_128));
        assert_eq!(p.pfs, Some(DhGroup::Modp2048));
        assert_eq!(p.keymat_len(), 48);
        assert_eq!(p.to_string(), "aes128-sha256-modp2048");
        assert!(EspProposal::parse("aes128gcm16-sha1", false).is_err());
        assert!(EspProposal::parse("aes128", false).is_err());
    }

    #[test]
    fn transforms_round_trip() {
        let p = IkeProposal::parse("aes256-sha384-ecp384", false).unwrap();
        let t = p.to_transform(
            3,
            oakley::auth::PRE_SHARED_KEY,
            Duration::from_secs(100_000),
        );
        let o = Phase1Offer::from_transform(&t).unwrap();
        assert_eq!(o.suite, p);
        assert_eq!(o.lifetime, Some(Duration::from_secs(100_000)));
        for s in [
            "aes128gcm16-ecp256",
            "aes256-sha1",
            "aes128-sha256-modp2048",
        ] {
            let p = EspProposal::parse(s, false).unwrap();
            let t = p.to_transform(
                1,
                ipsec::encap::UDP_TUNNEL,
                Duration::from_secs(3600),
                Some(1000),
            );
            let o = Phase2Offer::from_transform(&t).unwrap();
            assert_eq!(o.suite, p);
            assert_eq!(o.encap_mode, ipsec::encap::UDP_TUNNEL);
            assert_eq!(o.life_kbytes, Some(1000));
            assert_eq!(attr_u16(&t.attributes, ipsec::ENCAPSULATION_MODE), Some(3));
        }
    }
}
