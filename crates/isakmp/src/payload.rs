//! The payload chain (RFC 2408 §3.2) and the payload types that travel in it.
//!
//! Every payload starts with a 4-byte generic header:
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ! Next Payload  !   RESERVED    !         Payload Length        !
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! The type of a payload is carried by the *previous* header (or the ISAKMP
//! header for the first), so [`split_payloads`] walks the chain and
//! [`Payload::parse`] decodes one body given its type. Payload Length
//! includes the generic header. RESERVED "MUST be 0" but is not checked on
//! receipt (peers vary); it is always sent as 0.

use crate::WireError;
use crate::cert::CertPayload;
use crate::config::ConfigPayload;
use crate::delete::DeletePayload;
use crate::id::IdPayload;
use crate::natoa::NatOaPayload;
use crate::notify::NotifyPayload;
use crate::reader::{Reader, emit_generic};
use crate::registry::PayloadType;
use crate::sa::SaPayload;

/// Upper bound on the number of payloads in one chain.
pub const MAX_PAYLOADS: usize = 64;

/// Length of the generic payload header.
pub const GENERIC_HEADER_LEN: usize = 4;

/// A decoded payload.
///
/// Opaque payloads (KE, HASH, SIG, NONCE, VID, NAT-D) hold their body bytes
/// as they are. Types this codec does not decode, including the NAT-T draft
/// types 130/131 and IKE fragments (132), are kept raw in
/// [`Payload::Unknown`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Payload {
    /// Security Association (1).
    Sa(SaPayload),
    /// Key Exchange data (4): g^x, left-padded to the group size.
    Ke(Vec<u8>),
    /// Identification (5).
    Id(IdPayload),
    /// Certificate (6).
    Cert(CertPayload),
    /// Certificate Request (7).
    CertReq(CertPayload),
    /// Hash data (8).
    Hash(Vec<u8>),
    /// Signature data (9).
    Sig(Vec<u8>),
    /// Nonce data (10).
    Nonce(Vec<u8>),
    /// Notification (11).
    Notify(NotifyPayload),
    /// Delete (12).
    Delete(DeletePayload),
    /// Vendor ID (13).
    VendorId(Vec<u8>),
    /// Attribute payload, Mode Config / XAUTH (14).
    Attribute(ConfigPayload),
    /// NAT-D hash (20, RFC 3947).
    NatD(Vec<u8>),
    /// NAT-OA (21, RFC 3947).
    NatOa(NatOaPayload),
    /// Any other type, body kept raw. Constructing this with a type that has
    /// its own variant emits fine but parses back as that variant; `ty` must
    /// not be NONE (0), which would end the chain early.
    Unknown {
        /// The payload type.
        ty: PayloadType,
        /// The body after the generic header.
        body: Vec<u8>,
    },
}

impl Payload {
    /// The payload type number this payload is sent with.
    pub fn payload_type(&self) -> PayloadType {
        match self {
            Self::Sa(_) => PayloadType::SA,
            Self::Ke(_) => PayloadType::KE,
            Self::Id(_) => PayloadType::ID,
            Self::Cert(_) => PayloadType::CERT,
            Self::CertReq(_) => PayloadType::CR,
            Self::Hash(_) => PayloadType::HASH,
            Self::Sig(_) => PayloadType::SIG,
            Self::Nonce(_) => PayloadType::NONCE,
            Self::Notify(_) => PayloadType::NOTIFY,
            Self::Delete(_) => PayloadType::DELETE,
            Self::VendorId(_) => PayloadType::VENDOR_ID,
            Self::Attribute(_) => PayloadType::ATTRIBUTE,
            Self::NatD(_) => PayloadType::NAT_D,
            Self::NatOa(_) => PayloadType::NAT_OA,
            Self::Unknown { ty, .. } => *ty,
        }
    }

    /// Decodes the body of a payload of type `ty` (the bytes after its
    /// generic header, e.g. [`RawPayload::body`]).
    pub fn parse(ty: PayloadType, body: &[u8]) -> Result<Self, WireError> {
        Ok(match ty {
            PayloadType::SA => Self::Sa(SaPayload::parse(body)?),
            PayloadType::KE => Self::Ke(body.to_vec()),
            PayloadType::ID => Self::Id(IdPayload::parse(body)?),
            PayloadType::CERT => Self::Cert(CertPayload::parse(body)?),
            PayloadType::CR => Self::CertReq(CertPayload::parse(body)?),
            PayloadType::HASH => Self::Hash(body.to_vec()),
            PayloadType::SIG => Self::Sig(body.to_vec()),
            PayloadType::NONCE => Self::Nonce(body.to_vec()),
            PayloadType::NOTIFY => Self::Notify(NotifyPayload::parse(body)?),
            PayloadType::DELETE => Self::Delete(DeletePayload::parse(body)?),
            PayloadType::VENDOR_ID => Self::VendorId(body.to_vec()),
            PayloadType::ATTRIBUTE => Self::Attribute(ConfigPayload::parse(body)?),
            PayloadType::NAT_D => Self::NatD(body.to_vec()),
            PayloadType::NAT_OA => Self::NatOa(NatOaPayload::parse(body)?),
            ty => Self::Unknown {
                ty,
                body: body.to_vec(),
            },
        })
    }

    /// Appends the body (everything after the generic header).
    pub fn emit_body(&self, out: &mut Vec<u8>) {
        match self {
            Self::Sa(p) => p.emit_body(out),
            Self::Id(p) => p.emit_body(out),
            Self::Cert(p) | Self::CertReq(p) => p.emit_body(out),
            Self::Notify(p) => p.emit_body(out),
            Self::Delete(p) => p.emit_body(out),
            Self::Attribute(p) => p.emit_body(out),
            Self::NatOa(p) => p.emit_body(out),
            Self::Ke(b)
            | Self::Hash(b)
            | Self::Sig(b)
            | Self::Nonce(b)
            | Self::VendorId(b)
            | Self::NatD(b)
            | Self::Unknown { body: b, .. } => out.extend_from_slice(b),
        }
    }
}

/// One payload of a chain as it sits on the wire (needed for hashes over raw
/// bytes, e.g. SAi_b and IDii_b in RFC 2409 §5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawPayload<'a> {
    /// The payload's type (from the previous header).
    pub ty: PayloadType,
    /// The body, after the generic header.
    pub body: &'a [u8],
    /// Offset of the generic header within the buffer given to
    /// [`split_payloads`].
    pub offset: usize,
    /// Length including the 4-byte generic header.
    pub len: usize,
}

/// Walks a payload chain starting with type `first`.
///
/// Stops after the payload whose next-payload is NONE (at once if `first` is
/// NONE) and returns the payloads and the number of bytes consumed. Bytes
/// after the chain are *not* an error here: an encrypted message carries
/// padding after its last payload, so the caller decides.
///
/// Errors: a generic header cut short, a Payload Length below 4 or beyond the
/// buffer, or more than [`MAX_PAYLOADS`] payloads. A non-zero RESERVED byte
/// is accepted.
pub fn split_payloads(
    first: PayloadType,
    buf: &[u8],
) -> Result<(Vec<RawPayload<'_>>, usize), WireError> {
    let mut r = Reader::new(buf);
    let mut out = Vec::new();
    let mut ty = first;
    while ty != PayloadType::NONE {
        if out.len() == MAX_PAYLOADS {
            return Err(WireError::TooManyPayloads);
        }
        let offset = r.position();
        let next = PayloadType(r.u8("generic payload header")?);
        let _reserved = r.u8("generic payload header")?;
        let len = usize::from(r.u16("generic payload header")?);
        if len < GENERIC_HEADER_LEN {
            return Err(WireError::BadLength {
                what: "generic payload header",
                len,
            });
        }
        let have = r.remaining() + GENERIC_HEADER_LEN;
        if len > have {
            return Err(WireError::Truncated {
                what: "payload",
                need: len,
                have,
            });
        }
        let body = r.take(len - GENERIC_HEADER_LEN, "payload")?;
        out.push(RawPayload {
            ty,
            body,
            offset,
            len,
        });
        ty = next;
    }
    Ok((out, r.position()))
}

/// Emits the chain with correct next-payload fields and lengths; returns the
/// type of the first payload (for the ISAKMP header), NONE if empty.
///
/// A payload longer than 65535 bytes cannot be encoded (debug assertion).
pub fn emit_payloads(payloads: &[Payload], out: &mut Vec<u8>) -> PayloadType {
    for (i, p) in payloads.iter().enumerate() {
        let next = payloads
            .get(i + 1)
            .map_or(PayloadType::NONE, Payload::payload_type);
        emit_generic(out, next.0, |o| p.emit_body(o));
    }
    payloads
        .first()
        .map_or(PayloadType::NONE, Payload::payload_type)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Attribute;
    use crate::registry::{CertEncoding, CfgType, IdType, NotifyType, ProtocolId};

    #[test]
    fn split_simple_chain() {
        // VID(2 bytes) → NONCE(3 bytes), then 2 bytes of padding.
        let buf = [10, 0, 0, 6, 0xaa, 0xbb, 0, 0xff, 0, 7, 1, 2, 3, 0, 0];
        let (raw, used) = split_payloads(PayloadType::VENDOR_ID, &buf).unwrap();
        assert_eq!(used, 13);
        assert_eq!(raw.len(), 2);
        assert_eq!(
            (raw[0].ty, raw[0].body, raw[0].offset, raw[0].len),
            (PayloadType::VENDOR_ID, &[0xaa, 0xbb][..], 0, 6)
        );
        // Non-zero RESERVED (0xff) is tolerated.
        assert_eq!(
            (raw[1].ty, raw[1].body, raw[1].offset, raw[1].len),
            (PayloadType::NONCE, &[1, 2, 3][..], 6, 7)
        );
    }

    #[test]
    fn split_none_first() {
        let (raw, used) = split_payloads(PayloadType::NONE, &[1, 2, 3]).unwrap();
        assert!(raw.is_empty());
        assert_eq!(used, 0);
    }

    #[test]
    fn split_errors() {
        assert_eq!(
            split_payloads(PayloadType::HASH, &[]),
            Err(WireError::Truncated {
                what: "generic payload header",
                need: 1,
                have: 0
            })
        );
        assert_eq!(
            split_payloads(PayloadType::HASH, &[0, 0, 0]),
            Err(WireError::Truncated {
                what: "generic payload header",
                need: 2,
                have: 1
            })
        );
        assert_eq!(
            split_payloads(PayloadType::HASH, &[0, 0, 0, 3]),
            Err(WireError::BadLength {
                what: "generic payload header",
                len: 3
            })
        );
        assert_eq!(
            split_payloads(PayloadType::HASH, &[0, 0, 0, 9, 1, 2, 3, 4]),
            Err(WireError::Truncated {
                what: "payload",
                need: 9,
                have: 8
            })
        );
        // The chain says another payload follows, but the buffer ends.
        assert!(matches!(
            split_payloads(PayloadType::HASH, &[8, 0, 0, 4]),
            Err(WireError::Truncated {
                what: "generic payload header",
                ..
            })
        ));
    }

    #[test]
    fn split_limit() {
        // 64 empty VIDs are fine, 65 are too many.
        let mut buf = Vec::new();
        for _ in 0..63 {
            buf.extend_from_slice(&[13, 0, 0, 4]);
        }
        buf.extend_from_slice(&[0, 0, 0, 4]);
        assert_eq!(
            split_payloads(PayloadType::VENDOR_ID, &buf).map(|(r, n)| (r.len(), n)),
            Ok((64, 256))
        );
        buf[252] = 13;
        buf.extend_from_slice(&[0, 0, 0, 4]);
        assert_eq!(
            split_payloads(PayloadType::VENDOR_ID, &buf),
            Err(WireError::TooManyPayloads)
        );
        // A loop of zero-length payloads cannot run forever either.
        let looping = [13u8, 0, 0, 4].repeat(1000);
        assert_eq!(
            split_payloads(PayloadType::VENDOR_ID, &looping),
            Err(WireError::TooManyPayloads)
        );
    }

    fn samples() -> Vec<Payload> {
        vec![
            Payload::Ke(vec![1; 8]),
            Payload::Id(IdPayload {
                id_type: IdType::FQDN,
                protocol: 0,
                port: 0,
                data: b"ha".to_vec(),
            }),
            Payload::Cert(CertPayload {
                encoding: CertEncoding::X509_SIG,
                data: vec![0x30],
            }),
            Payload::CertReq(CertPayload {
                encoding: CertEncoding::X509_SIG,
                data: vec![],
            }),
            Payload::Hash(vec![2; 32]),
            Payload::Sig(vec![3; 3]),
            Payload::Nonce(vec![4; 16]),
            Payload::Notify(NotifyPayload {
                doi: 1,
                protocol: ProtocolId::ISAKMP,
                notify_type: NotifyType::INITIAL_CONTACT,
                spi: vec![9; 16],
                data: vec![],
            }),
            Payload::Delete(DeletePayload {
                doi: 1,
                protocol: ProtocolId::IPSEC_ESP,
                spi_size: 4,
                spis: vec![vec![5; 4]],
            }),
            Payload::VendorId(crate::vendor::DPD.to_vec()),
            Payload::Attribute(ConfigPayload {
                cfg_type: CfgType::REPLY,
                identifier: 7,
                attributes: vec![Attribute::variable(
                    crate::cfg::INTERNAL_IP6_DNS,
                    vec![0x20; 16],
                )],
            }),
            Payload::NatD(vec![6; 32]),
            Payload::NatOa(NatOaPayload {
                id_type: IdType::IPV6_ADDR,
                address: vec![7; 16],
            }),
            Payload::Unknown {
                ty: PayloadType::FRAGMENT,
                body: vec![0, 1, 2],
            },
            Payload::Unknown {
                ty: PayloadType::NAT_D_DRAFT,
                body: vec![],
            },
            Payload::Sa(SaPayload {
                doi: 1,
                situation: 1,
                proposals: vec![],
            }),
        ]
    }

    #[test]
    fn chain_roundtrip() {
        let payloads = samples();
        let mut out = vec![];
        let first = emit_payloads(&payloads, &mut out);
        assert_eq!(first, PayloadType::KE);
        let (raw, used) = split_payloads(first, &out).unwrap();
        assert_eq!(used, out.len());
        let parsed: Vec<_> = raw
            .iter()
            .map(|r| Payload::parse(r.ty, r.body).unwrap())
            .collect();
        assert_eq!(parsed, payloads);
        for (r, p) in raw.iter().zip(&payloads) {
            assert_eq!(r.ty, p.payload_type());
            assert_eq!(&out[r.offset + 4..r.offset + r.len], r.body);
        }
    }

    #[test]
    fn empty_chain() {
        let mut out = vec![];
        assert_eq!(emit_payloads(&[], &mut out), PayloadType::NONE);
        assert!(out.is_empty());
    }

    #[test]
    fn unknown_types_kept_raw() {
        for ty in [
            PayloadType::PROPOSAL,
            PayloadType::TRANSFORM,
            PayloadType(15),
            PayloadType::NAT_OA_DRAFT,
            PayloadType(255),
        ] {
            assert_eq!(
                Payload::parse(ty, &[1, 2]),
                Ok(Payload::Unknown {
                    ty,
                    body: vec![1, 2]
                })
            );
        }
    }

    #[test]
    fn body_errors_propagate() {
        assert!(Payload::parse(PayloadType::ID, &[5, 0]).is_err());
        assert!(Payload::parse(PayloadType::NOTIFY, &[0; 7]).is_err());
        assert!(Payload::parse(PayloadType::CR, &[]).is_err());
        assert!(Payload::parse(PayloadType::NAT_OA, &[1]).is_err());
        assert!(Payload::parse(PayloadType::ATTRIBUTE, &[1]).is_err());
        assert!(Payload::parse(PayloadType::DELETE, &[0; 7]).is_err());
        assert!(Payload::parse(PayloadType::SA, &[0; 7]).is_err());
        // Opaque payloads accept anything, even empty bodies.
        assert_eq!(
            Payload::parse(PayloadType::NONCE, &[]),
            Ok(Payload::Nonce(vec![]))
        );
    }
}
