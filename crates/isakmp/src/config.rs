//! Attribute payload (type 14) of the Transaction exchange
//! (draft-ietf-ipsec-isakmp-mode-cfg-05 §3.2), used by Mode Config and XAUTH.
//!
//! The attribute numbers are in [`crate::cfg`]. RESERVED is not checked on
//! parse and is sent as zero.

use crate::WireError;
use crate::attr::{Attribute, emit_attributes, parse_attributes};
use crate::reader::Reader;
use crate::registry::CfgType;

/// An Attribute payload body.
///
/// ```text
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// !     Type      !   RESERVED    !           Identifier          !
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ~                           Attributes                          ~
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigPayload {
    /// CFG_REQUEST / CFG_REPLY / CFG_SET / CFG_ACK.
    pub cfg_type: CfgType,
    /// Identifier; a reply or ack repeats the one of its request or set.
    pub identifier: u16,
    /// Attributes in wire order.
    pub attributes: Vec<Attribute>,
}

impl ConfigPayload {
    /// Parses an Attribute payload body (after the generic header).
    pub fn parse(body: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(body);
        let cfg_type = CfgType(r.u8("Attribute payload")?);
        let _reserved = r.u8("Attribute payload")?;
        let identifier = r.u16("Attribute payload")?;
        let attributes = parse_attributes(r.rest())?;
        Ok(Self {
            cfg_type,
            identifier,
            attributes,
        })
    }

    /// Appends the body (without generic header).
    pub fn emit_body(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&[self.cfg_type.0, 0]);
        out.extend_from_slice(&self.identifier.to_be_bytes());
        emit_attributes(&self.attributes, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cfg;

    #[test]
    fn request_roundtrip() {
        // strongSwan's CFG_REQUEST for an IPv6 address: empty TLV attribute.
        let bytes = [1, 0, 0, 0, 0x00, 0x08, 0x00, 0x00];
        let c = ConfigPayload {
            cfg_type: CfgType::REQUEST,
            identifier: 0,
            attributes: vec![Attribute::variable(cfg::INTERNAL_IP6_ADDRESS, vec![])],
        };
        assert_eq!(ConfigPayload::parse(&bytes), Ok(c.clone()));
        let mut out = vec![];
        c.emit_body(&mut out);
        assert_eq!(out, bytes);
    }

    #[test]
    fn xauth_set_status() {
        let c = ConfigPayload {
            cfg_type: CfgType::SET,
            identifier: 0xbeef,
            attributes: vec![Attribute::basic(cfg::XAUTH_STATUS, cfg::xauth_status::OK)],
        };
        let mut out = vec![];
        c.emit_body(&mut out);
        assert_eq!(out, [3, 0, 0xbe, 0xef, 0xc0, 0x8f, 0x00, 0x01]);
        assert_eq!(ConfigPayload::parse(&out), Ok(c));
    }

    #[test]
    fn errors() {
        for n in 0..4 {
            assert!(matches!(
                ConfigPayload::parse(&[1, 0, 0, 0][..n]),
                Err(WireError::Truncated {
                    what: "Attribute payload",
                    ..
                })
            ));
        }
        assert_eq!(
            ConfigPayload::parse(&[2, 0, 0, 0, 0x00, 0x08, 0x00, 0x10, 0x20, 0x01]),
            Err(WireError::Truncated {
                what: "data attribute value",
                need: 16,
                have: 2
            })
        );
    }
}
