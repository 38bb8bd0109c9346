//! Open registries: payload, exchange, protocol, identification, notify,
//! configuration and certificate-encoding numbers.
//!
//! Sources: RFC 2408 §3.1 (payload and exchange types, flags), §3.9
//! (certificate encodings), §3.14.1 (notify message types); RFC 2407 §4.4.1
//! (protocol IDs), §4.6.2.1 (identification types), §4.6.3 (IPsec status
//! notifications); RFC 3947 §3 (NAT-D/NAT-OA); RFC 3706 §5 (DPD);
//! draft-ietf-ipsec-isakmp-mode-cfg-05 §3.2 (Attribute payload, CFG types).
//!
//! Each registry is a newtype with a public field and named associated
//! constants (style guide §3.6), so unknown values survive a parse/emit round
//! trip. `Debug` prints the constant's name for known values and
//! `Type(number)` otherwise.

use core::fmt;
use core::ops::{BitAnd, BitOr, BitOrAssign};

macro_rules! registry {
    (
        $(#[$meta:meta])*
        $name:ident($int:ty) {
            $( $(#[$cmeta:meta])* $cname:ident = $val:literal ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub $int);

        impl $name {
            $( $(#[$cmeta])* pub const $cname: Self = Self($val); )*

            /// The registry name of this value, or `None` for a number this
            /// crate has no name for.
            pub const fn name(self) -> Option<&'static str> {
                match self.0 {
                    $( $val => Some(stringify!($cname)), )*
                    _ => None,
                }
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.name() {
                    Some(n) => f.write_str(n),
                    None => write!(f, concat!(stringify!($name), "({})"), self.0),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(self, f)
            }
        }

        impl From<$int> for $name {
            fn from(v: $int) -> Self {
                Self(v)
            }
        }

        impl From<$name> for $int {
            fn from(v: $name) -> Self {
                v.0
            }
        }
    };
}

registry! {
    /// ISAKMP payload type, the "Next Payload" field (RFC 2408 §3.1, RFC 3947 §3).
    PayloadType(u8) {
        /// No next payload: the chain ends.
        NONE = 0,
        /// Security Association (RFC 2408 §3.4).
        SA = 1,
        /// Proposal (RFC 2408 §3.5); only nested inside SA.
        PROPOSAL = 2,
        /// Transform (RFC 2408 §3.6); only nested inside Proposal.
        TRANSFORM = 3,
        /// Key Exchange (RFC 2408 §3.7).
        KE = 4,
        /// Identification (RFC 2408 §3.8).
        ID = 5,
        /// Certificate (RFC 2408 §3.9).
        CERT = 6,
        /// Certificate Request (RFC 2408 §3.10).
        CR = 7,
        /// Hash (RFC 2408 §3.11).
        HASH = 8,
        /// Signature (RFC 2408 §3.12).
        SIG = 9,
        /// Nonce (RFC 2408 §3.13).
        NONCE = 10,
        /// Notification (RFC 2408 §3.14).
        NOTIFY = 11,
        /// Delete (RFC 2408 §3.15).
        DELETE = 12,
        /// Vendor ID (RFC 2408 §3.16).
        VENDOR_ID = 13,
        /// Attribute payload (mode-cfg-05 §3.2).
        ATTRIBUTE = 14,
        /// NAT Discovery (RFC 3947 §3.2).
        NAT_D = 20,
        /// NAT Original Address (RFC 3947 §5.2).
        NAT_OA = 21,
        /// NAT-D of draft-ietf-ipsec-nat-t-ike-02/03.
        NAT_D_DRAFT = 130,
        /// NAT-OA of draft-ietf-ipsec-nat-t-ike-02/03.
        NAT_OA_DRAFT = 131,
        /// IKE fragment (Cisco/racoon/strongSwan IKEv1 fragmentation).
        FRAGMENT = 132,
    }
}

registry! {
    /// ISAKMP exchange type (RFC 2408 §3.1 and §4, RFC 2409 §5).
    ExchangeType(u8) {
        /// Base exchange.
        BASE = 1,
        /// Identity Protection, i.e. IKE Main Mode.
        MAIN = 2,
        /// Authentication Only.
        AUTH_ONLY = 3,
        /// Aggressive.
        AGGRESSIVE = 4,
        /// Informational.
        INFORMATIONAL = 5,
        /// Transaction (Mode Config / XAUTH, mode-cfg-05 §3.1).
        TRANSACTION = 6,
        /// IKE Quick Mode (RFC 2409 §5.5).
        QUICK = 32,
        /// IKE New Group Mode (RFC 2409 §5.6).
        NEW_GROUP = 33,
    }
}

registry! {
    /// Protocol identifier (RFC 2407 §4.4.1).
    ProtocolId(u8) {
        /// ISAKMP itself (phase 1).
        ISAKMP = 1,
        /// IPsec AH.
        IPSEC_AH = 2,
        /// IPsec ESP.
        IPSEC_ESP = 3,
        /// IP compression.
        IPCOMP = 4,
    }
}

registry! {
    /// Identification type (RFC 2407 §4.6.2.1).
    IdType(u8) {
        /// 4-byte IPv4 address.
        IPV4_ADDR = 1,
        /// Fully qualified domain name.
        FQDN = 2,
        /// user@FQDN.
        USER_FQDN = 3,
        /// IPv4 address + netmask.
        IPV4_ADDR_SUBNET = 4,
        /// 16-byte IPv6 address.
        IPV6_ADDR = 5,
        /// IPv6 address + netmask.
        IPV6_ADDR_SUBNET = 6,
        /// IPv4 start + end address.
        IPV4_ADDR_RANGE = 7,
        /// IPv6 start + end address.
        IPV6_ADDR_RANGE = 8,
        /// DER-encoded X.500 Distinguished Name.
        DER_ASN1_DN = 9,
        /// DER-encoded X.500 GeneralName.
        DER_ASN1_GN = 10,
        /// Opaque key identifier.
        KEY_ID = 11,
    }
}

registry! {
    /// Notify message type (RFC 2408 §3.14.1, RFC 2407 §4.6.3, RFC 3706 §5).
    NotifyType(u16) {
        /// INVALID-PAYLOAD-TYPE.
        INVALID_PAYLOAD_TYPE = 1,
        /// DOI-NOT-SUPPORTED.
        DOI_NOT_SUPPORTED = 2,
        /// SITUATION-NOT-SUPPORTED.
        SITUATION_NOT_SUPPORTED = 3,
        /// INVALID-COOKIE.
        INVALID_COOKIE = 4,
        /// INVALID-MAJOR-VERSION.
        INVALID_MAJOR_VERSION = 5,
        /// INVALID-MINOR-VERSION.
        INVALID_MINOR_VERSION = 6,
        /// INVALID-EXCHANGE-TYPE.
        INVALID_EXCHANGE_TYPE = 7,
        /// INVALID-FLAGS.
        INVALID_FLAGS = 8,
        /// INVALID-MESSAGE-ID.
        INVALID_MESSAGE_ID = 9,
        /// INVALID-PROTOCOL-ID.
        INVALID_PROTOCOL_ID = 10,
        /// INVALID-SPI.
        INVALID_SPI = 11,
        /// INVALID-TRANSFORM-ID.
        INVALID_TRANSFORM_ID = 12,
        /// ATTRIBUTES-NOT-SUPPORTED.
        ATTRIBUTES_NOT_SUPPORTED = 13,
        /// NO-PROPOSAL-CHOSEN.
        NO_PROPOSAL_CHOSEN = 14,
        /// BAD-PROPOSAL-SYNTAX.
        BAD_PROPOSAL_SYNTAX = 15,
        /// PAYLOAD-MALFORMED.
        PAYLOAD_MALFORMED = 16,
        /// INVALID-KEY-INFORMATION.
        INVALID_KEY_INFORMATION = 17,
        /// INVALID-ID-INFORMATION.
        INVALID_ID_INFORMATION = 18,
        /// INVALID-CERT-ENCODING.
        INVALID_CERT_ENCODING = 19,
        /// INVALID-CERTIFICATE.
        INVALID_CERTIFICATE = 20,
        /// CERT-TYPE-UNSUPPORTED.
        CERT_TYPE_UNSUPPORTED = 21,
        /// INVALID-CERT-AUTHORITY.
        INVALID_CERT_AUTHORITY = 22,
        /// INVALID-HASH-INFORMATION.
        INVALID_HASH_INFORMATION = 23,
        /// AUTHENTICATION-FAILED.
        AUTHENTICATION_FAILED = 24,
        /// INVALID-SIGNATURE.
        INVALID_SIGNATURE = 25,
        /// ADDRESS-NOTIFICATION.
        ADDRESS_NOTIFICATION = 26,
        /// NOTIFY-SA-LIFETIME.
        NOTIFY_SA_LIFETIME = 27,
        /// CERTIFICATE-UNAVAILABLE.
        CERTIFICATE_UNAVAILABLE = 28,
        /// UNSUPPORTED-EXCHANGE-TYPE.
        UNSUPPORTED_EXCHANGE_TYPE = 29,
        /// UNEQUAL-PAYLOAD-LENGTHS.
        UNEQUAL_PAYLOAD_LENGTHS = 30,
        /// CONNECTED (RFC 2408 §3.14.1 status).
        CONNECTED = 16384,
        /// RESPONDER-LIFETIME (RFC 2407 §4.6.3.1).
        RESPONDER_LIFETIME = 24576,
        /// REPLAY-STATUS (RFC 2407 §4.6.3.2).
        REPLAY_STATUS = 24577,
        /// INITIAL-CONTACT (RFC 2407 §4.6.3.3).
        INITIAL_CONTACT = 24578,
        /// R-U-THERE (RFC 3706 §5).
        R_U_THERE = 36136,
        /// R-U-THERE-ACK (RFC 3706 §5).
        R_U_THERE_ACK = 36137,
    }
}

impl NotifyType {
    /// True for error types (1–16383, RFC 2408 §3.14.1), false for status
    /// types and the reserved value 0.
    pub const fn is_error(self) -> bool {
        self.0 >= 1 && self.0 < 16384
    }
}

registry! {
    /// Attribute payload message type (mode-cfg-05 §3.2).
    CfgType(u8) {
        /// ISAKMP_CFG_REQUEST.
        REQUEST = 1,
        /// ISAKMP_CFG_REPLY.
        REPLY = 2,
        /// ISAKMP_CFG_SET.
        SET = 3,
        /// ISAKMP_CFG_ACK.
        ACK = 4,
    }
}

registry! {
    /// Certificate encoding (RFC 2408 §3.9).
    CertEncoding(u8) {
        /// PKCS #7 wrapped X.509 certificate.
        PKCS7 = 1,
        /// PGP certificate.
        PGP = 2,
        /// DNS signed key.
        DNS_SIGNED = 3,
        /// X.509 certificate, signature.
        X509_SIG = 4,
        /// X.509 certificate, key exchange.
        X509_KE = 5,
        /// Kerberos tokens.
        KERBEROS = 6,
        /// Certificate revocation list.
        CRL = 7,
        /// Authority revocation list.
        ARL = 8,
        /// SPKI certificate.
        SPKI = 9,
        /// X.509 certificate, attribute.
        X509_ATTR = 10,
    }
}

/// Header flags (RFC 2408 §3.1). Unknown bits are kept.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Flags(pub u8);

impl Flags {
    /// No flags.
    pub const NONE: Self = Self(0);
    /// E: the payloads after the header are encrypted.
    pub const ENCRYPTION: Self = Self(0x01);
    /// C: commit (RFC 2408 §3.1).
    pub const COMMIT: Self = Self(0x02);
    /// A: authentication only.
    pub const AUTH_ONLY: Self = Self(0x04);

    /// True when every bit of `other` is set in `self`.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// True when no bit is set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl BitOr for Flags {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

impl BitOrAssign for Flags {
    fn bitor_assign(&mut self, rhs: Self) {
        self.0 |= rhs.0;
    }
}

impl BitAnd for Flags {
    type Output = Self;
    fn bitand(self, rhs: Self) -> Self {
        Self(self.0 & rhs.0)
    }
}

impl fmt::Debug for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Flags(")?;
        if self.0 == 0 {
            f.write_str("0")?;
        }
        let mut sep = "";
        for (bit, name) in [
            (Self::ENCRYPTION, "ENCRYPTION"),
            (Self::COMMIT, "COMMIT"),
            (Self::AUTH_ONLY, "AUTH_ONLY"),
        ] {
            if self.contains(bit) {
                write!(f, "{sep}{name}")?;
                sep = " | ";
            }
        }
        let unknown = self.0 & !0x07;
        if unknown != 0 {
            write!(f, "{sep}0x{unknown:02x}")?;
        }
        f.write_str(")")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_prints_name_or_number() {
        assert_eq!(format!("{:?}", PayloadType::NAT_D), "NAT_D");
        assert_eq!(format!("{:?}", PayloadType(99)), "PayloadType(99)");
        assert_eq!(format!("{:?}", ExchangeType::MAIN), "MAIN");
        assert_eq!(format!("{}", NotifyType::R_U_THERE_ACK), "R_U_THERE_ACK");
        assert_eq!(format!("{:?}", NotifyType(40000)), "NotifyType(40000)");
        assert_eq!(format!("{:?}", CertEncoding::X509_SIG), "X509_SIG");
        assert_eq!(
            format!("{:?}", IdType::IPV6_ADDR_SUBNET),
            "IPV6_ADDR_SUBNET"
        );
        assert_eq!(format!("{:?}", CfgType::ACK), "ACK");
        assert_eq!(format!("{:?}", ProtocolId::IPSEC_ESP), "IPSEC_ESP");
    }

    #[test]
    fn registry_numbers() {
        assert_eq!(PayloadType::FRAGMENT.0, 132);
        assert_eq!(PayloadType::ATTRIBUTE.0, 14);
        assert_eq!(ExchangeType::QUICK.0, 32);
        assert_eq!(NotifyType::UNEQUAL_PAYLOAD_LENGTHS.0, 30);
        assert_eq!(NotifyType::INITIAL_CONTACT.0, 24578);
        assert_eq!(CertEncoding::X509_ATTR.0, 10);
        assert_eq!(IdType::KEY_ID.0, 11);
        // Every RFC 2408 §3.14.1 error type 1..=30 has a name.
        for n in 1..=30u16 {
            assert!(NotifyType(n).name().is_some(), "{n}");
            assert!(NotifyType(n).is_error());
        }
        assert!(!NotifyType::R_U_THERE.is_error());
        assert!(!NotifyType(0).is_error());
        assert_eq!(u8::from(PayloadType::from(7)), 7);
    }

    #[test]
    fn flags() {
        let f = Flags::ENCRYPTION | Flags::COMMIT;
        assert!(f.contains(Flags::ENCRYPTION));
        assert!(f.contains(Flags::COMMIT | Flags::ENCRYPTION));
        assert!(!f.contains(Flags::AUTH_ONLY));
        assert!(f.contains(Flags::NONE));
        assert_eq!(format!("{f:?}"), "Flags(ENCRYPTION | COMMIT)");
        assert_eq!(format!("{:?}", Flags(0)), "Flags(0)");
        assert_eq!(format!("{:?}", Flags(0x84)), "Flags(AUTH_ONLY | 0x80)");
        let mut g = Flags::NONE;
        g |= Flags::AUTH_ONLY;
        assert_eq!(g & Flags::AUTH_ONLY, Flags::AUTH_ONLY);
        assert!(Flags::default().is_empty());
    }
}
