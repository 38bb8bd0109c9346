//! The codec's one error type.
//!
//! Every error says *what* was being decoded (a static type name such as
//! `"Proposal"`), so the engine can log it and map it onto an RFC 2408 §3.14.1
//! notification (`PAYLOAD-MALFORMED`, `BAD-PROPOSAL-SYNTAX`, …). The codec
//! never decides on blame beyond "these bytes are malformed"; that is the
//! engine's job (style guide §3.12).

/// Malformed or unsupported wire bytes.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The input ends before a field or a length-delimited item.
    #[error("{what}: truncated (need {need} bytes, have {have})")]
    Truncated {
        /// The structure being decoded.
        what: &'static str,
        /// Bytes needed.
        need: usize,
        /// Bytes available.
        have: usize,
    },
    /// A length field is impossible (for example smaller than its own header).
    #[error("{what}: bad length {len}")]
    BadLength {
        /// The structure being decoded.
        what: &'static str,
        /// The offending length value.
        len: usize,
    },
    /// Bytes left over after a structure that must fill its container exactly.
    #[error("{what}: trailing bytes ({extra})")]
    TrailingBytes {
        /// The structure being decoded.
        what: &'static str,
        /// Number of bytes left over.
        extra: usize,
    },
    /// The ISAKMP major version is not 1 (RFC 2408 §3.1).
    #[error("unsupported ISAKMP version 0x{0:02x}")]
    BadVersion(u8),
    /// The header's E flag is set; the body must be decrypted first.
    #[error("message is encrypted")]
    Encrypted,
    /// The payload chain is longer than [`crate::MAX_PAYLOADS`].
    #[error("too many payloads")]
    TooManyPayloads,
    /// A field has a value the syntax forbids.
    #[error("{what}: {reason}")]
    Invalid {
        /// The structure being decoded.
        what: &'static str,
        /// Why it is invalid.
        reason: &'static str,
    },
    /// Well-formed but uses a feature this codec does not implement.
    #[error("{0}")]
    Unsupported(&'static str),
}
