//! A whole plaintext ISAKMP message: header and payload chain
//! (RFC 2408 §3.1–3.2).
//!
//! Encrypted messages (E flag, RFC 2408 §3.1 / RFC 2409 §5.3) are not
//! handled here: the engine parses the [`Header`], decrypts the bytes after
//! it, and walks the plaintext with [`split_payloads`], which tolerates the
//! trailing padding.

use crate::WireError;
use crate::header::{HEADER_LEN, Header};
use crate::payload::{Payload, emit_payloads, split_payloads};
use crate::registry::Flags;

/// A plaintext message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// The header. [`Message::emit`] overwrites `next_payload` and `length`.
    pub header: Header,
    /// The payloads in wire order.
    pub payloads: Vec<Payload>,
}

impl Message {
    /// Parses one UDP datagram's worth of ISAKMP (after any Non-ESP marker).
    ///
    /// The header's length must equal `buf.len()` and the chain must end
    /// exactly at the end of the buffer. The framing is checked before the E
    /// flag, so [`WireError::Encrypted`] means "well-framed, but encrypted".
    pub fn parse(buf: &[u8]) -> Result<Self, WireError> {
        let header = Header::parse(buf)?;
        let length = header.length as usize;
        if length > buf.len() {
            return Err(WireError::Truncated {
                what: "ISAKMP message",
                need: length,
                have: buf.len(),
            });
        }
        if length < buf.len() {
            return Err(WireError::TrailingBytes {
                what: "ISAKMP message",
                extra: buf.len() - length,
            });
        }
        if header.flags.contains(Flags::ENCRYPTION) {
            return Err(WireError::Encrypted);
        }
        let body = &buf[HEADER_LEN..];
        let (raw, used) = split_payloads(header.next_payload, body)?;
        if used != body.len() {
            return Err(WireError::TrailingBytes {
                what: "ISAKMP payload chain",
                extra: body.len() - used,
            });
        }
        let payloads = raw
            .iter()
            .map(|p| Payload::parse(p.ty, p.body))
            .collect::<Result<_, _>>()?;
        Ok(Self { header, payloads })
    }

    /// Encodes the message, filling in the header's next-payload and length.
    /// All other header fields, flags included, are sent as they are.
    pub fn emit(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + 64);
        self.header.emit(&mut out);
        let first = emit_payloads(&self.payloads, &mut out);
        out[16] = first.0;
        #[allow(clippy::cast_possible_truncation)]
        let len = out.len() as u32;
        out[24..28].copy_from_slice(&len.to_be_bytes());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ISAKMP_VERSION;
    use crate::registry::{ExchangeType, PayloadType};

    fn msg() -> Message {
        Message {
            header: Header {
                initiator_cookie: [1; 8],
                responder_cookie: [0; 8],
                next_payload: PayloadType::NONE, // filled by emit
                version: ISAKMP_VERSION,
                exchange: ExchangeType::INFORMATIONAL,
                flags: Flags::NONE,
                message_id: 0x1234_5678,
                length: 0, // filled by emit
            },
            payloads: vec![
                Payload::VendorId(vec![0xaa; 4]),
                Payload::Nonce(vec![0xbb; 2]),
            ],
        }
    }

    fn expected() -> Message {
        let mut m = msg();
        m.header.next_payload = PayloadType::VENDOR_ID;
        m.header.length = 28 + 8 + 6;
        m
    }

    #[test]
    fn emit_fills_header() {
        let bytes = msg().emit();
        assert_eq!(bytes.len(), 42);
        assert_eq!(bytes[16], 13);
        assert_eq!(&bytes[24..28], &[0, 0, 0, 42]);
        assert_eq!(
            &bytes[28..],
            &[10, 0, 0, 8, 0xaa, 0xaa, 0xaa, 0xaa, 0, 0, 0, 6, 0xbb, 0xbb]
        );
        assert_eq!(Message::parse(&bytes), Ok(expected()));
        assert_eq!(expected().emit(), bytes);
    }

    #[test]
    fn empty_message() {
        let mut m = msg();
        m.payloads.clear();
        let bytes = m.emit();
        assert_eq!(bytes.len(), 28);
        let parsed = Message::parse(&bytes).unwrap();
        assert_eq!(parsed.header.next_payload, PayloadType::NONE);
        assert!(parsed.payloads.is_empty());
    }

    #[test]
    fn length_mismatch() {
        let bytes = msg().emit();
        assert_eq!(
            Message::parse(&bytes[..41]),
            Err(WireError::Truncated {
                what: "ISAKMP message",
                need: 42,
                have: 41
            })
        );
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(
            Message::parse(&longer),
            Err(WireError::TrailingBytes {
                what: "ISAKMP message",
                extra: 1
            })
        );
        // Length field consistent, but the chain ends early.
        let mut padded = bytes;
        padded.extend_from_slice(&[0, 0]);
        padded[27] = 44;
        assert_eq!(
            Message::parse(&padded),
            Err(WireError::TrailingBytes {
                what: "ISAKMP payload chain",
                extra: 2
            })
        );
    }

    #[test]
    fn encrypted_rejected() {
        let mut m = msg();
        m.header.flags = Flags::ENCRYPTION;
        assert_eq!(Message::parse(&m.emit()), Err(WireError::Encrypted));
    }

    #[test]
    fn every_prefix_fails_cleanly() {
        let bytes = msg().emit();
        for n in 0..bytes.len() {
            assert!(Message::parse(&bytes[..n]).is_err());
        }
    }

    #[test]
    fn payload_error_propagates() {
        let mut m = msg();
        m.payloads = vec![Payload::Unknown {
            ty: PayloadType::ID,
            body: vec![1],
        }];
        assert_eq!(
            Message::parse(&m.emit()),
            Err(WireError::Truncated {
                what: "ID payload",
                need: 1,
                have: 0
            })
        );
    }
}
