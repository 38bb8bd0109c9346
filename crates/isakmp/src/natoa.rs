//! NAT Original Address payload (RFC 3947 §5.2).
//!
//! The address is kept raw (4 bytes for ID_IPV4_ADDR, 16 for ID_IPV6_ADDR);
//! RESERVED is not checked on parse and is sent as zero.

use crate::WireError;
use crate::reader::Reader;
use crate::registry::IdType;

/// A NAT-OA payload body.
///
/// ```text
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// !    ID Type    !                  RESERVED                     !
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ~                         IPv4 (4 octets) or IPv6 (16 octets)   ~
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NatOaPayload {
    /// ID_IPV4_ADDR or ID_IPV6_ADDR.
    pub id_type: IdType,
    /// The original address, raw.
    pub address: Vec<u8>,
}

impl NatOaPayload {
    /// Parses a NAT-OA body (after the generic header).
    pub fn parse(body: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(body);
        let id_type = IdType(r.u8("NAT-OA payload")?);
        let _reserved = r.take(3, "NAT-OA payload")?;
        Ok(Self {
            id_type,
            address: r.rest().to_vec(),
        })
    }

    /// Appends the body (without generic header).
    pub fn emit_body(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&[self.id_type.0, 0, 0, 0]);
        out.extend_from_slice(&self.address);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip() {
        let bytes = [1, 0, 0, 0, 192, 0, 2, 1];
        let oa = NatOaPayload {
            id_type: IdType::IPV4_ADDR,
            address: vec![192, 0, 2, 1],
        };
        assert_eq!(NatOaPayload::parse(&bytes), Ok(oa.clone()));
        let mut out = vec![];
        oa.emit_body(&mut out);
        assert_eq!(out, bytes);
    }

    #[test]
    fn truncated() {
        for n in 0..4 {
            assert!(matches!(
                NatOaPayload::parse(&[5, 0, 0, 0][..n]),
                Err(WireError::Truncated {
                    what: "NAT-OA payload",
                    ..
                })
            ));
        }
    }
}
