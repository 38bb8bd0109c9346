//! IPsec DOI numbers (RFC 2407): the DOI and situation (§4.2, §4.2.1), the
//! ISAKMP transform id (§4.4.2), ESP transform ids (§4.4.4, with RFC 3602,
//! RFC 3686, RFC 4309 and RFC 4106 additions) and the phase-2 SA attribute
//! types and values (§4.5, with RFC 3947 §4 UDP encapsulation modes and
//! RFC 4868 SHA-2 authentication algorithms).
//!
//! Attribute types are given *without* the AF bit.

/// IPsec DOI (RFC 2407 §4.2).
pub const DOI_IPSEC: u32 = 1;
/// SIT_IDENTITY_ONLY (RFC 2407 §4.2.1).
pub const SIT_IDENTITY_ONLY: u32 = 1;
/// SIT_SECRECY: labeled secrecy fields follow the situation.
pub const SIT_SECRECY: u32 = 2;
/// SIT_INTEGRITY: labeled integrity fields follow the situation.
pub const SIT_INTEGRITY: u32 = 4;

/// KEY_IKE, the only ISAKMP transform id (RFC 2407 §4.4.2).
pub const KEY_IKE: u8 = 1;

/// SA Life Type (B).
pub const SA_LIFE_TYPE: u16 = 1;
/// SA Life Duration (V).
pub const SA_LIFE_DURATION: u16 = 2;
/// Group Description (B).
pub const GROUP_DESCRIPTION: u16 = 3;
/// Encapsulation Mode (B).
pub const ENCAPSULATION_MODE: u16 = 4;
/// Authentication Algorithm (B).
pub const AUTHENTICATION_ALGORITHM: u16 = 5;
/// Key Length (B).
pub const KEY_LENGTH: u16 = 6;
/// Key Rounds (B).
pub const KEY_ROUNDS: u16 = 7;
/// Compress Dictionary Size (B).
pub const COMPRESS_DICTIONARY_SIZE: u16 = 8;
/// Compress Private Algorithm (V).
pub const COMPRESS_PRIVATE_ALGORITHM: u16 = 9;
/// ECN Tunnel (B, RFC 3168 §9.2).
pub const ECN_TUNNEL: u16 = 10;

/// Values of [`SA_LIFE_TYPE`].
pub mod life {
    /// Seconds.
    pub const SECONDS: u16 = 1;
    /// Kilobytes.
    pub const KILOBYTES: u16 = 2;
}

/// Values of [`ENCAPSULATION_MODE`].
pub mod encap {
    /// Tunnel.
    pub const TUNNEL: u16 = 1;
    /// Transport.
    pub const TRANSPORT: u16 = 2;
    /// UDP-Encapsulated-Tunnel (RFC 3947 §4).
    pub const UDP_TUNNEL: u16 = 3;
    /// UDP-Encapsulated-Transport (RFC 3947 §4).
    pub const UDP_TRANSPORT: u16 = 4;
    /// UDP-Encapsulated-Tunnel of the NAT-T drafts.
    pub const UDP_TUNNEL_DRAFT: u16 = 61443;
    /// UDP-Encapsulated-Transport of the NAT-T drafts.
    pub const UDP_TRANSPORT_DRAFT: u16 = 61444;
}

/// Values of [`AUTHENTICATION_ALGORITHM`].
pub mod auth {
    /// HMAC-MD5.
    pub const HMAC_MD5: u16 = 1;
    /// HMAC-SHA1.
    pub const HMAC_SHA1: u16 = 2;
    /// DES-MAC.
    pub const DES_MAC: u16 = 3;
    /// KPDK.
    pub const KPDK: u16 = 4;
    /// HMAC-SHA2-256 (RFC 4868).
    pub const HMAC_SHA2_256: u16 = 5;
    /// HMAC-SHA2-384 (RFC 4868).
    pub const HMAC_SHA2_384: u16 = 6;
    /// HMAC-SHA2-512 (RFC 4868).
    pub const HMAC_SHA2_512: u16 = 7;
}

/// ESP transform ids (RFC 2407 §4.4.4), the Transform payload's id for
/// [`crate::ProtocolId::IPSEC_ESP`].
pub mod esp_transform {
    /// ESP_DES.
    pub const DES: u8 = 2;
    /// ESP_3DES.
    pub const TRIPLE_DES: u8 = 3;
    /// ESP_NULL.
    pub const NULL: u8 = 11;
    /// ESP_AES (CBC, RFC 3602); needs KEY_LENGTH.
    pub const AES_CBC: u8 = 12;
    /// AES-CTR (RFC 3686).
    pub const AES_CTR: u8 = 13;
    /// AES-CCM, 8-byte ICV (RFC 4309).
    pub const AES_CCM_8: u8 = 14;
    /// AES-CCM, 12-byte ICV.
    pub const AES_CCM_12: u8 = 15;
    /// AES-CCM, 16-byte ICV.
    pub const AES_CCM_16: u8 = 16;
    /// AES-GCM, 8-byte ICV (RFC 4106).
    pub const AES_GCM_8: u8 = 18;
    /// AES-GCM, 12-byte ICV.
    pub const AES_GCM_12: u8 = 19;
    /// AES-GCM, 16-byte ICV.
    pub const AES_GCM_16: u8 = 20;
}
