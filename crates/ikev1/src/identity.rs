//! Phase-1 identities (RFC 2407 §4.6.2) and the way operators write them.
//!
//! Identities are written the way strongSwan users write them: an IP address becomes
//! `ID_IPV4_ADDR`/`ID_IPV6_ADDR`, a string with an `@` in the middle (`mn1@example.com`) becomes
//! `ID_USER_FQDN`, a string with a leading `@` or any other string becomes `ID_FQDN`, and
//! `%any` matches every identity (only as a remote identity).

use std::fmt;
use std::net::IpAddr;

use isakmp::{IdPayload, IdType};

/// An IKE phase-1 identity.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Identity {
    /// `ID_FQDN`.
    Fqdn(String),
    /// `ID_USER_FQDN` (an e-mail style name).
    UserFqdn(String),
    /// `ID_IPV4_ADDR` or `ID_IPV6_ADDR`.
    Addr(IpAddr),
    /// `ID_DER_ASN1_DN`: the DER encoding of an X.501 Name.
    DerDn(Vec<u8>),
    /// `ID_KEY_ID`: opaque bytes.
    KeyId(Vec<u8>),
    /// Matches any identity; never sent.
    Any,
}

impl Identity {
    /// Parses an identity as strongSwan's `id =` does.
    pub fn parse(s: &str) -> Self {
        let s = s.trim();
        if s == "%any" || s.is_empty() {
            return Self::Any;
        }
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Self::Addr(ip);
        }
        if let Some(rest) = s.strip_prefix('@') {
            if let Some(hex) = rest.strip_prefix('#')
                && let Some(bytes) = decode_hex(hex)
            {
                return Self::KeyId(bytes);
            }
            return Self::Fqdn(rest.to_owned());
        }
        if s.contains('@') {
            return Self::UserFqdn(s.to_owned());
        }
        Self::Fqdn(s.to_owned())
    }

    /// The ID payload of phase 1 (protocol and port zero, RFC 2407 §4.6.2).
    pub fn to_payload(&self) -> IdPayload {
        let (id_type, data) = match self {
            Self::Fqdn(s) => (IdType::FQDN, s.as_bytes().to_vec()),
            Self::UserFqdn(s) => (IdType::USER_FQDN, s.as_bytes().to_vec()),
            Self::Addr(IpAddr::V4(a)) => (IdType::IPV4_ADDR, a.octets().to_vec()),
            Self::Addr(IpAddr::V6(a)) => (IdType::IPV6_ADDR, a.octets().to_vec()),
            Self::DerDn(d) => (IdType::DER_ASN1_DN, d.clone()),
            Self::KeyId(d) => (IdType::KEY_ID, d.clone()),
            Self::Any => (IdType::KEY_ID, Vec::new()),
        };
        IdPayload {
            id_type,
            protocol: 0,
            port: 0,
            data,
        }
    }

    /// Reads a phase-1 ID payload. Unknown or malformed types are refused.
    pub fn from_payload(id: &IdPayload) -> Option<Self> {
        let text = || String::from_utf8(id.data.clone()).ok();
        Some(match id.id_type {
            IdType::FQDN => Self::Fqdn(text()?),
            IdType::USER_FQDN => Self::UserFqdn(text()?),
            IdType::IPV4_ADDR => {
                let o: [u8; 4] = id.data.as_slice().try_into().ok()?;
                Self::Addr(IpAddr::from(o))
            }
            IdType::IPV6_ADDR => {
                let o: [u8; 16] = id.data.as_slice().try_into().ok()?;
                Self::Addr(IpAddr::from(o))
            }
            IdType::DER_ASN1_DN => Self::DerDn(id.data.clone()),
            IdType::KEY_ID => Self::KeyId(id.data.clone()),
            _ => return None,
        })
    }

    /// Whether `other` (a concrete identity the peer presented) matches this configured one.
    /// FQDNs compare without regard to case.
    pub fn matches(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Any, _) => true,
            (Self::Fqdn(a), Self::Fqdn(b)) | (Self::UserFqdn(a), Self::UserFqdn(b)) => {
                a.eq_ignore_ascii_case(b)
            }
            (a, b) => a == b,
        }
    }
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Fqdn(s) | Self::UserFqdn(s) => f.write_str(s),
            Self::Addr(a) => write!(f, "{a}"),
            Self::DerDn(d) => write!(f, "dn:{}", crate::util::HexFmt(d)),
            Self::KeyId(d) => write!(f, "@#{}", crate::util::HexFmt(d)),
            Self::Any => f.write_str("%any"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_like_strongswan() {
        assert_eq!(
            Identity::parse("mn1@example.com"),
            Identity::UserFqdn("mn1@example.com".into())
        );
        assert_eq!(
            Identity::parse("ha.example.com"),
            Identity::Fqdn("ha.example.com".into())
        );
        assert_eq!(
            Identity::parse("@ha.example.com"),
            Identity::Fqdn("ha.example.com".into())
        );
        assert_eq!(
            Identity::parse("2001:db8::1"),
            Identity::Addr("2001:db8::1".parse().unwrap())
        );
        assert_eq!(Identity::parse("@#0a0b"), Identity::KeyId(vec![10, 11]));
        assert_eq!(Identity::parse("%any"), Identity::Any);
    }

    #[test]
    fn payload_round_trip() {
        for s in [
            "mn1@example.com",
            "ha.example.com",
            "2001:db8::1",
            "192.0.2.1",
            "@#0102",
        ] {
            let id = Identity::parse(s);
            assert_eq!(Identity::from_payload(&id.to_payload()), Some(id));
        }
    }

    #[test]
    fn matching() {
        let any = Identity::Any;
        let a = Identity::parse("HA.example.com");
        assert!(any.matches(&a));
        assert!(a.matches(&Identity::parse("ha.example.com")));
        assert!(!a.matches(&Identity::parse("mn1@example.com")));
    }
}
