//! The fixed 28-byte ISAKMP header (RFC 2408 §3.1).
//!
//! [`HeaderPacket`] is a checked view over the raw bytes (read a flag or patch
//! the length of an already-built message without a full parse); [`Header`]
//! is the parsed representation. Only the major version is checked (it must
//! be 1); the minor version and unknown flag bits are kept as they are.

use crate::WireError;
use crate::registry::{ExchangeType, Flags, PayloadType};

/// Length of the ISAKMP header.
pub const HEADER_LEN: usize = 28;
/// Version byte we send: major 1, minor 0.
pub const ISAKMP_VERSION: u8 = 0x10;

/// Byte ranges of the header fields (style guide §3.2).
mod field {
    use core::ops::Range;
    pub(super) const INITIATOR_COOKIE: Range<usize> = 0..8;
    pub(super) const RESPONDER_COOKIE: Range<usize> = 8..16;
    pub(super) const NEXT_PAYLOAD: usize = 16;
    pub(super) const VERSION: usize = 17;
    pub(super) const EXCHANGE: usize = 18;
    pub(super) const FLAGS: usize = 19;
    pub(super) const MESSAGE_ID: Range<usize> = 20..24;
    pub(super) const LENGTH: Range<usize> = 24..28;
}

/// A view over the first 28 bytes of an ISAKMP message.
///
/// [`HeaderPacket::new_checked`] guarantees that the buffer holds at least
/// [`HEADER_LEN`] bytes, so no accessor panics. [`HeaderPacket::new_unchecked`]
/// is for buffers the caller built (accessors panic if it is too short).
/// The view checks nothing but the length: use [`Header::parse`] for the
/// version and length rules.
#[derive(Clone, Copy, Debug)]
pub struct HeaderPacket<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> HeaderPacket<T> {
    /// Wraps `buf` without checking its length.
    pub const fn new_unchecked(buf: T) -> Self {
        Self { buf }
    }

    /// Wraps `buf`, which must hold at least [`HEADER_LEN`] bytes.
    pub fn new_checked(buf: T) -> Result<Self, WireError> {
        let have = buf.as_ref().len();
        if have < HEADER_LEN {
            return Err(WireError::Truncated {
                what: "ISAKMP header",
                need: HEADER_LEN,
                have,
            });
        }
        Ok(Self { buf })
    }

    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buf
    }

    fn array<const N: usize>(&self, r: core::ops::Range<usize>) -> [u8; N] {
        let mut out = [0u8; N];
        out.copy_from_slice(&self.buf.as_ref()[r]);
        out
    }

    /// CKY-I.
    pub fn initiator_cookie(&self) -> [u8; 8] {
        self.array(field::INITIATOR_COOKIE)
    }

    /// CKY-R.
    pub fn responder_cookie(&self) -> [u8; 8] {
        self.array(field::RESPONDER_COOKIE)
    }

    /// Type of the first payload.
    pub fn next_payload(&self) -> PayloadType {
        PayloadType(self.buf.as_ref()[field::NEXT_PAYLOAD])
    }

    /// Version byte (major in the high nibble).
    pub fn version(&self) -> u8 {
        self.buf.as_ref()[field::VERSION]
    }

    /// Exchange type.
    pub fn exchange(&self) -> ExchangeType {
        ExchangeType(self.buf.as_ref()[field::EXCHANGE])
    }

    /// Flags.
    pub fn flags(&self) -> Flags {
        Flags(self.buf.as_ref()[field::FLAGS])
    }

    /// Message ID.
    pub fn message_id(&self) -> u32 {
        u32::from_be_bytes(self.array(field::MESSAGE_ID))
    }

    /// Length of the whole message, header included.
    pub fn length(&self) -> u32 {
        u32::from_be_bytes(self.array(field::LENGTH))
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> HeaderPacket<T> {
    /// Sets the next-payload field.
    pub fn set_next_payload(&mut self, ty: PayloadType) {
        self.buf.as_mut()[field::NEXT_PAYLOAD] = ty.0;
    }

    /// Sets the flags.
    pub fn set_flags(&mut self, flags: Flags) {
        self.buf.as_mut()[field::FLAGS] = flags.0;
    }

    /// Sets the length field.
    pub fn set_length(&mut self, len: u32) {
        self.buf.as_mut()[field::LENGTH].copy_from_slice(&len.to_be_bytes());
    }
}

/// The ISAKMP header (RFC 2408 §3.1).
///
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// !                          Initiator                            !
/// !                            Cookie                             !
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// !                          Responder                            !
/// !                            Cookie                             !
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// !  Next Payload ! MjVer ! MnVer ! Exchange Type !     Flags     !
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// !                          Message ID                           !
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// !                            Length                             !
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// CKY-I.
    pub initiator_cookie: [u8; 8],
    /// CKY-R (all zero in the first message).
    pub responder_cookie: [u8; 8],
    /// Type of the first payload.
    pub next_payload: PayloadType,
    /// Version byte; [`ISAKMP_VERSION`] when sending.
    pub version: u8,
    /// Exchange type.
    pub exchange: ExchangeType,
    /// Flags.
    pub flags: Flags,
    /// Message ID (0 in phase 1).
    pub message_id: u32,
    /// Total message length including the header (and, for encrypted
    /// messages, the padding).
    pub length: u32,
}

impl Header {
    /// Parses the first 28 bytes of `buf`.
    ///
    /// Fails if `buf` is shorter than 28 bytes, the major version is not 1,
    /// or the length field is below 28. Bytes after the header, and whether
    /// `buf.len()` equals the length field, are the caller's business
    /// ([`crate::Message::parse`] checks them).
    pub fn parse(buf: &[u8]) -> Result<Self, WireError> {
        let p = HeaderPacket::new_checked(buf)?;
        let version = p.version();
        if version >> 4 != ISAKMP_VERSION >> 4 {
            return Err(WireError::BadVersion(version));
        }
        let length = p.length();
        if (length as usize) < HEADER_LEN {
            return Err(WireError::BadLength {
                what: "ISAKMP header",
                len: length as usize,
            });
        }
        Ok(Self {
            initiator_cookie: p.initiator_cookie(),
            responder_cookie: p.responder_cookie(),
            next_payload: p.next_payload(),
            version,
            exchange: p.exchange(),
            flags: p.flags(),
            message_id: p.message_id(),
            length,
        })
    }

    /// Appends the 28 header bytes to `out`, exactly as the fields say.
    pub fn emit(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.initiator_cookie);
        out.extend_from_slice(&self.responder_cookie);
        out.extend_from_slice(&[
            self.next_payload.0,
            self.version,
            self.exchange.0,
            self.flags.0,
        ]);
        out.extend_from_slice(&self.message_id.to_be_bytes());
        out.extend_from_slice(&self.length.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BYTES: [u8; 28] = [
        1, 2, 3, 4, 5, 6, 7, 8, // CKY-I
        9, 10, 11, 12, 13, 14, 15, 16, // CKY-R
        8, 0x10, 6, 0x01, // HASH, 1.0, Transaction, E
        0x6e, 0x40, 0x7e, 0x5a, // M-ID
        0, 0, 0, 92, // length
    ];

    fn repr() -> Header {
        Header {
            initiator_cookie: [1, 2, 3, 4, 5, 6, 7, 8],
            responder_cookie: [9, 10, 11, 12, 13, 14, 15, 16],
            next_payload: PayloadType::HASH,
            version: ISAKMP_VERSION,
            exchange: ExchangeType::TRANSACTION,
            flags: Flags::ENCRYPTION,
            message_id: 0x6e40_7e5a,
            length: 92,
        }
    }

    #[test]
    fn parse() {
        assert_eq!(Header::parse(&BYTES), Ok(repr()));
        // Trailing bytes are not the header's concern.
        let mut longer = BYTES.to_vec();
        longer.extend_from_slice(&[0; 64]);
        assert_eq!(Header::parse(&longer), Ok(repr()));
    }

    #[test]
    fn emit() {
        let mut out = vec![];
        repr().emit(&mut out);
        assert_eq!(out, BYTES);
    }

    #[test]
    fn truncated() {
        for n in 0..HEADER_LEN {
            assert_eq!(
                Header::parse(&BYTES[..n]),
                Err(WireError::Truncated {
                    what: "ISAKMP header",
                    need: 28,
                    have: n
                })
            );
        }
    }

    #[test]
    fn version() {
        let mut b = BYTES;
        b[17] = 0x1f; // minor 15: accepted and kept
        assert_eq!(Header::parse(&b).map(|h| h.version), Ok(0x1f));
        b[17] = 0x20; // IKEv2
        assert_eq!(Header::parse(&b), Err(WireError::BadVersion(0x20)));
        b[17] = 0x00;
        assert_eq!(Header::parse(&b), Err(WireError::BadVersion(0x00)));
    }

    #[test]
    fn length_below_header() {
        let mut b = BYTES;
        b[27] = 27;
        assert_eq!(
            Header::parse(&b),
            Err(WireError::BadLength {
                what: "ISAKMP header",
                len: 27
            })
        );
        b[27] = 28;
        assert!(Header::parse(&b).is_ok());
    }

    #[test]
    fn view() {
        let mut b = BYTES;
        let mut p = HeaderPacket::new_checked(&mut b[..]).unwrap();
        assert!(p.flags().contains(Flags::ENCRYPTION));
        assert_eq!(p.exchange(), ExchangeType::TRANSACTION);
        assert_eq!(p.message_id(), 0x6e40_7e5a);
        p.set_length(0x0102_0304);
        p.set_flags(Flags::NONE);
        p.set_next_payload(PayloadType::SA);
        assert_eq!(
            &b[16..28],
            &[1, 0x10, 6, 0, 0x6e, 0x40, 0x7e, 0x5a, 1, 2, 3, 4]
        );
        assert!(HeaderPacket::new_checked(&BYTES[..27]).is_err());
    }
}
