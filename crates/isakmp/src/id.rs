//! Identification payload (RFC 2408 §3.8) in its IPsec DOI form
//! (RFC 2407 §4.6.2).
//!
//! The identification data is kept raw; interpreting it (an address, a
//! subnet, an FQDN, a DER name) is up to the engine. In phase 1 the
//! protocol and port are normally 0 (or UDP/500); in Quick Mode they are
//! part of the traffic selector.

use crate::WireError;
use crate::reader::Reader;
use crate::registry::IdType;

/// An Identification payload body (RFC 2407 §4.6.2).
///
/// ```text
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// !   ID Type     !  Protocol ID  !             Port              !
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ~                     Identification Data                       ~
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdPayload {
    /// Identification type.
    pub id_type: IdType,
    /// IP protocol (0 = any).
    pub protocol: u8,
    /// Port (0 = any).
    pub port: u16,
    /// Identification data, raw.
    pub data: Vec<u8>,
}

impl IdPayload {
    /// Parses an ID payload body (after the generic header).
    pub fn parse(body: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(body);
        let id_type = IdType(r.u8("ID payload")?);
        let protocol = r.u8("ID payload")?;
        let port = r.u16("ID payload")?;
        Ok(Self {
            id_type,
            protocol,
            port,
            data: r.rest().to_vec(),
        })
    }

    /// Appends the body (without generic header).
    pub fn emit_body(&self, out: &mut Vec<u8>) {
        out.push(self.id_type.0);
        out.push(self.protocol);
        out.extend_from_slice(&self.port.to_be_bytes());
        out.extend_from_slice(&self.data);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_user_fqdn() {
        let bytes = b"\x03\x11\x01\xf4mn@example.com";
        let id = IdPayload {
            id_type: IdType::USER_FQDN,
            protocol: 17,
            port: 500,
            data: b"mn@example.com".to_vec(),
        };
        assert_eq!(IdPayload::parse(bytes), Ok(id.clone()));
        let mut out = vec![];
        id.emit_body(&mut out);
        assert_eq!(out, bytes);
    }

    #[test]
    fn empty_data() {
        let id = IdPayload {
            id_type: IdType(200),
            protocol: 0,
            port: 0,
            data: vec![],
        };
        assert_eq!(IdPayload::parse(&[200, 0, 0, 0]), Ok(id));
    }

    #[test]
    fn truncated() {
        for n in 0..4 {
            assert!(matches!(
                IdPayload::parse(&[5, 0, 0, 0][..n]),
                Err(WireError::Truncated {
                    what: "ID payload",
                    ..
                })
            ));
        }
    }
}
