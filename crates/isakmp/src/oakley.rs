//! IKE (Oakley) phase-1 SA attribute types and values (RFC 2409 Appendix A),
//! with later additions: AES (RFC 3602), SHA-2 (RFC 4868), ECDSA auth methods
//! (RFC 4754), and the XAUTH / Hybrid authentication methods of
//! draft-ietf-ipsec-isakmp-xauth-06 §4.2 and draft-ietf-ipsec-isakmp-hybrid-auth-05.
//!
//! Attribute types are given *without* the AF bit; the codec adds it
//! ([`crate::Attribute`]). RFC 2409 App. A marks which types are Basic (B) and
//! which are Variable (V); note that LIFE_DURATION is V and may arrive either
//! as a 2-byte TV or as a 4-byte TLV — use [`crate::Attribute::as_u64`].

/// Encryption algorithm (B).
pub const ENCRYPTION_ALGORITHM: u16 = 1;
/// Hash algorithm (B).
pub const HASH_ALGORITHM: u16 = 2;
/// Authentication method (B).
pub const AUTHENTICATION_METHOD: u16 = 3;
/// Group description (B).
pub const GROUP_DESCRIPTION: u16 = 4;
/// Group type (B).
pub const GROUP_TYPE: u16 = 5;
/// Group prime / irreducible polynomial (V).
pub const GROUP_PRIME: u16 = 6;
/// Group generator one (V).
pub const GROUP_GENERATOR_ONE: u16 = 7;
/// Group generator two (V).
pub const GROUP_GENERATOR_TWO: u16 = 8;
/// Group curve A (V).
pub const GROUP_CURVE_A: u16 = 9;
/// Group curve B (V).
pub const GROUP_CURVE_B: u16 = 10;
/// Life type (B).
pub const LIFE_TYPE: u16 = 11;
/// Life duration (V).
pub const LIFE_DURATION: u16 = 12;
/// PRF (B).
pub const PRF: u16 = 13;
/// Key length in bits (B).
pub const KEY_LENGTH: u16 = 14;
/// Field size (B).
pub const FIELD_SIZE: u16 = 15;
/// Group order (V).
pub const GROUP_ORDER: u16 = 16;

/// Values of [`ENCRYPTION_ALGORITHM`].
pub mod enc {
    /// DES-CBC.
    pub const DES_CBC: u16 = 1;
    /// IDEA-CBC.
    pub const IDEA: u16 = 2;
    /// Blowfish-CBC.
    pub const BLOWFISH: u16 = 3;
    /// RC5-R16-B64-CBC.
    pub const RC5: u16 = 4;
    /// 3DES-CBC.
    pub const TRIPLE_DES_CBC: u16 = 5;
    /// CAST-CBC.
    pub const CAST: u16 = 6;
    /// AES-CBC (RFC 3602); needs KEY_LENGTH.
    pub const AES_CBC: u16 = 7;
    /// Camellia-CBC (RFC 4312).
    pub const CAMELLIA_CBC: u16 = 8;
}

/// Values of [`HASH_ALGORITHM`].
pub mod hash {
    /// MD5.
    pub const MD5: u16 = 1;
    /// SHA-1.
    pub const SHA1: u16 = 2;
    /// Tiger.
    pub const TIGER: u16 = 3;
    /// SHA2-256 (RFC 4868).
    pub const SHA2_256: u16 = 4;
    /// SHA2-384.
    pub const SHA2_384: u16 = 5;
    /// SHA2-512.
    pub const SHA2_512: u16 = 6;
}

/// Values of [`AUTHENTICATION_METHOD`].
pub mod auth {
    /// Pre-shared key.
    pub const PRE_SHARED_KEY: u16 = 1;
    /// DSS signatures.
    pub const DSS: u16 = 2;
    /// RSA signatures.
    pub const RSA_SIG: u16 = 3;
    /// Encryption with RSA.
    pub const RSA_ENC: u16 = 4;
    /// Revised encryption with RSA.
    pub const RSA_ENC_REV: u16 = 5;
    /// ECDSA with SHA-256 on P-256 (RFC 4754).
    pub const ECDSA_256: u16 = 9;
    /// ECDSA with SHA-384 on P-384 (RFC 4754).
    pub const ECDSA_384: u16 = 10;
    /// ECDSA with SHA-512 on P-521 (RFC 4754).
    pub const ECDSA_521: u16 = 11;
    /// XAUTHInitPreShared.
    pub const XAUTH_INIT_PSK: u16 = 65001;
    /// XAUTHRespPreShared.
    pub const XAUTH_RESP_PSK: u16 = 65002;
    /// XAUTHInitDSS.
    pub const XAUTH_INIT_DSS: u16 = 65003;
    /// XAUTHRespDSS.
    pub const XAUTH_RESP_DSS: u16 = 65004;
    /// XAUTHInitRSA.
    pub const XAUTH_INIT_RSA: u16 = 65005;
    /// XAUTHRespRSA.
    pub const XAUTH_RESP_RSA: u16 = 65006;
    /// XAUTHInitRSAEncryption.
    pub const XAUTH_INIT_RSA_ENC: u16 = 65007;
    /// XAUTHRespRSAEncryption.
    pub const XAUTH_RESP_RSA_ENC: u16 = 65008;
    /// XAUTHInitRSARevisedEncryption.
    pub const XAUTH_INIT_RSA_REV_ENC: u16 = 65009;
    /// XAUTHRespRSARevisedEncryption.
    pub const XAUTH_RESP_RSA_REV_ENC: u16 = 65010;
    /// HybridInitRSA.
    pub const HYBRID_INIT_RSA: u16 = 64221;
    /// HybridRespRSA.
    pub const HYBRID_RESP_RSA: u16 = 64222;
    /// HybridInitDSS.
    pub const HYBRID_INIT_DSS: u16 = 64223;
    /// HybridRespDSS.
    pub const HYBRID_RESP_DSS: u16 = 64224;
}

/// Values of [`GROUP_DESCRIPTION`] (RFC 2409 §6, RFC 3526, RFC 5903).
pub mod group {
    /// 768-bit MODP.
    pub const MODP_768: u16 = 1;
    /// 1024-bit MODP.
    pub const MODP_1024: u16 = 2;
    /// 1536-bit MODP (RFC 3526).
    pub const MODP_1536: u16 = 5;
    /// 2048-bit MODP (RFC 3526).
    pub const MODP_2048: u16 = 14;
    /// 3072-bit MODP (RFC 3526).
    pub const MODP_3072: u16 = 15;
    /// 4096-bit MODP (RFC 3526).
    pub const MODP_4096: u16 = 16;
    /// 256-bit random ECP group (RFC 5903).
    pub const ECP_256: u16 = 19;
    /// 384-bit random ECP group (RFC 5903).
    pub const ECP_384: u16 = 20;
    /// 521-bit random ECP group (RFC 5903).
    pub const ECP_521: u16 = 21;
}

/// Values of [`LIFE_TYPE`].
pub mod life {
    /// Life duration in seconds.
    pub const SECONDS: u16 = 1;
    /// Life duration in kilobytes.
    pub const KILOBYTES: u16 = 2;
}
