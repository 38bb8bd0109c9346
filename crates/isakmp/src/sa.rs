//! Security Association, Proposal and Transform payloads (RFC 2408 §3.4–3.6,
//! with the IPsec DOI situation of RFC 2407 §4.6.1).
//!
//! Proposal and Transform are nested payloads with their own 4-byte generic
//! headers: every Proposal but the last says "next = PROPOSAL (2)" and the last
//! says NONE; likewise Transforms inside a Proposal with TRANSFORM (3). The
//! nested chain must fill its container exactly, and a Proposal's
//! "# of Transforms" must equal the Transforms present. Several Proposals may
//! share a number (RFC 2408 §4.2: a logical AND, e.g. AH + ESP); the codec
//! keeps them as separate entries in wire order and leaves the meaning to the
//! engine. Labeled-domain situations (SIT_SECRECY / SIT_INTEGRITY) are not
//! supported. RESERVED fields are not checked on parse and are sent as zero.

use crate::WireError;
use crate::attr::{Attribute, emit_attributes, parse_attributes};
use crate::ipsec::{DOI_IPSEC, SIT_INTEGRITY, SIT_SECRECY};
use crate::reader::{Reader, emit_generic};
use crate::registry::{PayloadType, ProtocolId};

/// A Transform payload (RFC 2408 §3.6), without its generic header.
///
/// ```text
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// !  Transform #  !  Transform-Id !           RESERVED2           !
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ~                        SA Attributes                          ~
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transform {
    /// Transform number.
    pub number: u8,
    /// Transform id (KEY_IKE in phase 1, an ESP transform id in phase 2).
    pub id: u8,
    /// SA attributes in wire order.
    pub attributes: Vec<Attribute>,
}

/// A Proposal payload (RFC 2408 §3.5), without its generic header.
///
/// ```text
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// !  Proposal #   !  Protocol-Id  !    SPI Size   !# of Transforms!
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// !                        SPI (variable)                         !
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ~                 Transform payloads (nested)                   ~
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proposal {
    /// Proposal number.
    pub number: u8,
    /// Protocol of this proposal.
    pub protocol: ProtocolId,
    /// SPI (empty in phase 1, 4 bytes for ESP/AH); at most 255 bytes.
    pub spi: Vec<u8>,
    /// Transforms in wire order; at most 255.
    pub transforms: Vec<Transform>,
}

/// A Security Association payload body (RFC 2408 §3.4, RFC 2407 §4.6.1).
///
/// ```text
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// !              Domain of Interpretation  (DOI)                  !
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// !                           Situation                           !
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ~                  Proposal payloads (nested)                   ~
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
///
/// The situation is always read as 4 bytes. An SA without proposals parses
/// (the engine answers it with BAD-PROPOSAL-SYNTAX or NO-PROPOSAL-CHOSEN).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SaPayload {
    /// Domain of interpretation ([`DOI_IPSEC`]).
    pub doi: u32,
    /// Situation bitmap ([`crate::ipsec::SIT_IDENTITY_ONLY`]).
    pub situation: u32,
    /// Proposals in wire order.
    pub proposals: Vec<Proposal>,
}

/// Splits a nested chain of `item` payloads that must fill `buf` exactly.
///
/// Each element's generic header says `item` if another follows, or NONE if
/// it is the last. Returns the bodies (bytes after each generic header).
fn split_nested<'a>(
    buf: &'a [u8],
    item: PayloadType,
    what: &'static str,
    container: &'static str,
) -> Result<Vec<&'a [u8]>, WireError> {
    let mut r = Reader::new(buf);
    let mut out = Vec::new();
    while !r.is_empty() {
        let next = PayloadType(r.u8(what)?);
        let _reserved = r.u8(what)?;
        let len = usize::from(r.u16(what)?);
        if len < 4 {
            return Err(WireError::BadLength { what, len });
        }
        out.push(r.take(len - 4, what)?);
        if next == PayloadType::NONE {
            return r.expect_end(container).map(|()| out);
        }
        if next != item {
            return Err(WireError::Invalid {
                what,
                reason: "nested payload chain has a foreign next-payload type",
            });
        }
        if r.is_empty() {
            return Err(WireError::Invalid {
                what,
                reason: "next-payload announces a payload past the end",
            });
        }
    }
    Ok(out)
}

impl Transform {
    /// Parses a Transform body (after its generic header).
    pub fn parse(body: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(body);
        let number = r.u8("Transform")?;
        let id = r.u8("Transform")?;
        let _reserved2 = r.u16("Transform")?;
        let attributes = parse_attributes(r.rest())?;
        Ok(Self {
            number,
            id,
            attributes,
        })
    }

    /// Appends the Transform body (without generic header).
    pub fn emit_body(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&[self.number, self.id, 0, 0]);
        emit_attributes(&self.attributes, out);
    }
}

impl Proposal {
    /// Parses a Proposal body (after its generic header), with its Transforms.
    pub fn parse(body: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(body);
        let number = r.u8("Proposal")?;
        let protocol = ProtocolId(r.u8("Proposal")?);
        let spi_size = r.u8("Proposal")?;
        let count = r.u8("Proposal")?;
        let spi = r.take(usize::from(spi_size), "Proposal SPI")?.to_vec();
        let bodies = split_nested(r.rest(), PayloadType::TRANSFORM, "Transform", "Proposal")?;
        if bodies.len() != usize::from(count) {
            return Err(WireError::Invalid {
                what: "Proposal",
                reason: "# of Transforms does not match the Transform payloads",
            });
        }
        let transforms = bodies
            .into_iter()
            .map(Transform::parse)
            .collect::<Result<_, _>>()?;
        Ok(Self {
            number,
            protocol,
            spi,
            transforms,
        })
    }

    /// Appends the Proposal body (without generic header), with its
    /// Transforms.
    ///
    /// The SPI must be at most 255 bytes and there may be at most 255
    /// transforms (debug assertion).
    pub fn emit_body(&self, out: &mut Vec<u8>) {
        debug_assert!(self.spi.len() <= 255 && self.transforms.len() <= 255);
        #[allow(clippy::cast_possible_truncation)]
        out.extend_from_slice(&[
            self.number,
            self.protocol.0,
            self.spi.len() as u8,
            self.transforms.len() as u8,
        ]);
        out.extend_from_slice(&self.spi);
        let last = self.transforms.len().saturating_sub(1);
        for (i, t) in self.transforms.iter().enumerate() {
            let next = if i == last {
                PayloadType::NONE
            } else {
                PayloadType::TRANSFORM
            };
            emit_generic(out, next.0, |o| t.emit_body(o));
        }
    }
}

impl SaPayload {
    /// Parses an SA payload body (after the generic header).
    pub fn parse(body: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(body);
        let doi = r.u32("SA payload")?;
        let situation = r.u32("SA payload")?;
        // RFC 2407 §4.6.1: with SIT_SECRECY or SIT_INTEGRITY, a Labeled Domain
        // Identifier and secrecy/integrity levels follow the situation.
        if doi == DOI_IPSEC && situation & (SIT_SECRECY | SIT_INTEGRITY) != 0 {
            return Err(WireError::Unsupported(
                "SA payload: labeled secrecy/integrity situation",
            ));
        }
        let bodies = split_nested(r.rest(), PayloadType::PROPOSAL, "Proposal", "SA payload")?;
        let proposals = bodies
            .into_iter()
            .map(Proposal::parse)
            .collect::<Result<_, _>>()?;
        Ok(Self {
            doi,
            situation,
            proposals,
        })
    }

    /// Appends the SA payload body (without generic header).
    pub fn emit_body(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.doi.to_be_bytes());
        out.extend_from_slice(&self.situation.to_be_bytes());
        let last = self.proposals.len().saturating_sub(1);
        for (i, p) in self.proposals.iter().enumerate() {
            let next = if i == last {
                PayloadType::NONE
            } else {
                PayloadType::PROPOSAL
            };
            emit_generic(out, next.0, |o| p.emit_body(o));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipsec::SIT_IDENTITY_ONLY;
    use crate::oakley;

    /// The SA body of strongSwan's MM1 in the captured exchange.
    const MM1_SA: [u8; 52] = [
        0, 0, 0, 1, 0, 0, 0, 1, // DOI IPsec, SIT_IDENTITY_ONLY
        0, 0, 0, 44, 1, 1, 0, 1, // Proposal #1 ISAKMP, SPI size 0, 1 transform
        0, 0, 0, 36, 1, 1, 0, 0, // Transform #1 KEY_IKE
        0x80, 0x01, 0x00, 0x07, 0x80, 0x0e, 0x00, 0x80, 0x80, 0x02, 0x00, 0x04, 0x80, 0x04, 0x00,
        0x0e, 0x80, 0x03, 0x00, 0x01, 0x80, 0x0b, 0x00, 0x01, 0x80, 0x0c, 0x3d, 0xe0,
    ];

    fn mm1_sa() -> SaPayload {
        SaPayload {
            doi: DOI_IPSEC,
            situation: SIT_IDENTITY_ONLY,
            proposals: vec![Proposal {
                number: 1,
                protocol: ProtocolId::ISAKMP,
                spi: vec![],
                transforms: vec![Transform {
                    number: 1,
                    id: crate::ipsec::KEY_IKE,
                    attributes: vec![
                        Attribute::basic(oakley::ENCRYPTION_ALGORITHM, oakley::enc::AES_CBC),
                        Attribute::basic(oakley::KEY_LENGTH, 128),
                        Attribute::basic(oakley::HASH_ALGORITHM, oakley::hash::SHA2_256),
                        Attribute::basic(oakley::GROUP_DESCRIPTION, oakley::group::MODP_2048),
                        Attribute::basic(
                            oakley::AUTHENTICATION_METHOD,
                            oakley::auth::PRE_SHARED_KEY,
                        ),
                        Attribute::basic(oakley::LIFE_TYPE, oakley::life::SECONDS),
                        Attribute::basic(oakley::LIFE_DURATION, 15840),
                    ],
                }],
            }],
        }
    }

    #[test]
    fn parse_emit_roundtrip() {
        assert_eq!(SaPayload::parse(&MM1_SA), Ok(mm1_sa()));
        let mut out = vec![];
        mm1_sa().emit_body(&mut out);
        assert_eq!(out, MM1_SA);
    }

    fn esp_proposal(number: u8, transforms: Vec<Transform>) -> Proposal {
        Proposal {
            number,
            protocol: ProtocolId::IPSEC_ESP,
            spi: vec![0xa5, 0xf8, 0x0e, 0x9d],
            transforms,
        }
    }

    #[test]
    fn several_proposals_and_transforms() {
        let t = |n, id| Transform {
            number: n,
            id,
            attributes: vec![Attribute::basic(crate::ipsec::KEY_LENGTH, 128)],
        };
        let sa = SaPayload {
            doi: DOI_IPSEC,
            situation: SIT_IDENTITY_ONLY,
            proposals: vec![
                esp_proposal(1, vec![t(1, 12), t(2, 3)]),
                esp_proposal(1, vec![]),
                esp_proposal(2, vec![t(1, 20)]),
            ],
        };
        let mut out = vec![];
        sa.emit_body(&mut out);
        // next-payload of the nested chains
        assert_eq!(out[8], PayloadType::PROPOSAL.0);
        assert_eq!(out[8 + 12], PayloadType::TRANSFORM.0);
        assert_eq!(SaPayload::parse(&out), Ok(sa));
    }

    #[test]
    fn no_proposals() {
        let sa = SaPayload {
            doi: 0,
            situation: 0x1234_5678,
            proposals: vec![],
        };
        let mut out = vec![];
        sa.emit_body(&mut out);
        assert_eq!(out.len(), 8);
        assert_eq!(SaPayload::parse(&out), Ok(sa));
    }

    #[test]
    fn truncated_everywhere() {
        // Every strict prefix of a valid SA body is an error, never a panic,
        // except the 8-byte one, which is an SA without proposals.
        for n in (0..MM1_SA.len()).filter(|&n| n != 8) {
            assert!(SaPayload::parse(&MM1_SA[..n]).is_err(), "prefix {n}");
        }
        assert_eq!(
            SaPayload::parse(&MM1_SA[..7]),
            Err(WireError::Truncated {
                what: "SA payload",
                need: 4,
                have: 3
            })
        );
        assert_eq!(
            SaPayload::parse(&MM1_SA[..10]),
            Err(WireError::Truncated {
                what: "Proposal",
                need: 2,
                have: 0
            })
        );
        assert_eq!(
            SaPayload::parse(&MM1_SA[..20]),
            Err(WireError::Truncated {
                what: "Proposal",
                need: 40,
                have: 8
            })
        );
    }

    #[test]
    fn overlong_and_trailing() {
        let mut b = MM1_SA.to_vec();
        b.extend_from_slice(&[0, 0]);
        assert_eq!(
            SaPayload::parse(&b),
            Err(WireError::TrailingBytes {
                what: "SA payload",
                extra: 2
            })
        );
        // Transform length larger than its Proposal.
        let mut b = MM1_SA.to_vec();
        b[19] = 37;
        assert_eq!(
            SaPayload::parse(&b),
            Err(WireError::Truncated {
                what: "Transform",
                need: 33,
                have: 32
            })
        );
        // Transform shorter than its Proposal → trailing bytes in the Proposal.
        let mut b = MM1_SA.to_vec();
        b[19] = 32;
        assert_eq!(
            SaPayload::parse(&b),
            Err(WireError::TrailingBytes {
                what: "Proposal",
                extra: 4
            })
        );
    }

    #[test]
    fn bad_lengths() {
        let mut b = MM1_SA.to_vec();
        b[11] = 3;
        assert_eq!(
            SaPayload::parse(&b),
            Err(WireError::BadLength {
                what: "Proposal",
                len: 3
            })
        );
        let mut b = MM1_SA.to_vec();
        b[19] = 0;
        assert_eq!(
            SaPayload::parse(&b),
            Err(WireError::BadLength {
                what: "Transform",
                len: 0
            })
        );
    }

    #[test]
    fn transform_count_mismatch() {
        let mut b = MM1_SA.to_vec();
        b[15] = 2;
        assert!(matches!(
            SaPayload::parse(&b),
            Err(WireError::Invalid {
                what: "Proposal",
                ..
            })
        ));
        b[15] = 0;
        assert!(matches!(
            SaPayload::parse(&b),
            Err(WireError::Invalid {
                what: "Proposal",
                ..
            })
        ));
    }

    #[test]
    fn bad_nested_next_payload() {
        // Proposal says another Proposal follows, but the SA ends.
        let mut b = MM1_SA.to_vec();
        b[8] = 2;
        assert!(matches!(
            SaPayload::parse(&b),
            Err(WireError::Invalid {
                what: "Proposal",
                ..
            })
        ));
        // Proposal chain using a foreign type.
        b[8] = 13;
        assert!(matches!(
            SaPayload::parse(&b),
            Err(WireError::Invalid {
                what: "Proposal",
                ..
            })
        ));
        // Transform says another Transform follows inside a Proposal that ends.
        let mut b = MM1_SA.to_vec();
        b[16] = 3;
        assert!(matches!(
            SaPayload::parse(&b),
            Err(WireError::Invalid {
                what: "Transform",
                ..
            })
        ));
    }

    #[test]
    fn spi_beyond_proposal() {
        let mut b = MM1_SA.to_vec();
        b[14] = 40;
        assert_eq!(
            SaPayload::parse(&b),
            Err(WireError::Truncated {
                what: "Proposal SPI",
                need: 40,
                have: 36
            })
        );
    }

    #[test]
    fn attribute_error_in_transform() {
        let mut b = MM1_SA.to_vec();
        // Make the last attribute TLV with length 0x3de0: beyond the transform.
        b[48] = 0x00;
        assert_eq!(
            SaPayload::parse(&b),
            Err(WireError::Truncated {
                what: "data attribute value",
                need: 0x3de0,
                have: 0
            })
        );
    }

    #[test]
    fn labeled_situation_unsupported() {
        let mut b = MM1_SA.to_vec();
        b[7] = 0x03;
        assert!(matches!(
            SaPayload::parse(&b),
            Err(WireError::Unsupported(_))
        ));
        // Other DOIs: situation kept as 4 bytes, no labeled fields expected.
        b[3] = 0x02;
        assert_eq!(
            SaPayload::parse(&b).map(|s| (s.doi, s.situation)),
            Ok((2, 3))
        );
    }

    #[test]
    fn reserved_tolerated_and_zeroed() {
        let mut b = MM1_SA.to_vec();
        b[9] = 0xff; // Proposal generic RESERVED
        b[22] = 0xff; // Transform RESERVED2
        assert_eq!(SaPayload::parse(&b), Ok(mm1_sa()));
    }
}
