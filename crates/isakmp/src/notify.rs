//! Notification payload (RFC 2408 §3.14).
//!
//! Used for errors (RFC 2408 §3.14.1), IPsec DOI status messages
//! (RFC 2407 §4.6.3: RESPONDER-LIFETIME, REPLAY-STATUS, INITIAL-CONTACT) and
//! DPD (RFC 3706 §5: R-U-THERE / R-U-THERE-ACK with protocol ISAKMP, a 16-byte
//! SPI of CKY-I | CKY-R and a 4-byte sequence number as data).

use crate::WireError;
use crate::reader::Reader;
use crate::registry::{NotifyType, ProtocolId};

/// A Notification payload body.
///
/// ```text
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// !              Domain of Interpretation  (DOI)                  !
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// !  Protocol-ID  !   SPI Size    !      Notify Message Type      !
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ~                Security Parameter Index (SPI)                 ~
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ~                       Notification Data                       ~
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotifyPayload {
    /// Domain of interpretation.
    pub doi: u32,
    /// Protocol the SPI belongs to.
    pub protocol: ProtocolId,
    /// Notify message type.
    pub notify_type: NotifyType,
    /// SPI (at most 255 bytes; its length is the SPI Size).
    pub spi: Vec<u8>,
    /// Notification data.
    pub data: Vec<u8>,
}

impl NotifyPayload {
    /// Parses a Notification body (after the generic header).
    pub fn parse(body: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(body);
        let doi = r.u32("Notify payload")?;
        let protocol = ProtocolId(r.u8("Notify payload")?);
        let spi_size = r.u8("Notify payload")?;
        let notify_type = NotifyType(r.u16("Notify payload")?);
        let spi = r.take(usize::from(spi_size), "Notify SPI")?.to_vec();
        Ok(Self {
            doi,
            protocol,
            notify_type,
            spi,
            data: r.rest().to_vec(),
        })
    }

    /// Appends the body (without generic header). The SPI must be at most
    /// 255 bytes (debug assertion).
    pub fn emit_body(&self, out: &mut Vec<u8>) {
        debug_assert!(self.spi.len() <= 255);
        out.extend_from_slice(&self.doi.to_be_bytes());
        #[allow(clippy::cast_possible_truncation)]
        out.extend_from_slice(&[self.protocol.0, self.spi.len() as u8]);
        out.extend_from_slice(&self.notify_type.0.to_be_bytes());
        out.extend_from_slice(&self.spi);
        out.extend_from_slice(&self.data);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const R_U_THERE: [u8; 28] = [
        0, 0, 0, 1, 1, 16, 0x8d, 0x28, // DOI 1, ISAKMP, SPI size 16, R-U-THERE
        1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, // CKY-I | CKY-R
        0, 0, 0, 7, // sequence
    ];

    fn r_u_there() -> NotifyPayload {
        NotifyPayload {
            doi: 1,
            protocol: ProtocolId::ISAKMP,
            notify_type: NotifyType::R_U_THERE,
            spi: (1..=16).collect(),
            data: vec![0, 0, 0, 7],
        }
    }

    #[test]
    fn roundtrip() {
        assert_eq!(NotifyPayload::parse(&R_U_THERE), Ok(r_u_there()));
        let mut out = vec![];
        r_u_there().emit_body(&mut out);
        assert_eq!(out, R_U_THERE);
    }

    #[test]
    fn no_spi_no_data() {
        let n = NotifyPayload {
            doi: 1,
            protocol: ProtocolId::ISAKMP,
            notify_type: NotifyType::NO_PROPOSAL_CHOSEN,
            spi: vec![],
            data: vec![],
        };
        let mut out = vec![];
        n.emit_body(&mut out);
        assert_eq!(out, [0, 0, 0, 1, 1, 0, 0, 14]);
        assert_eq!(NotifyPayload::parse(&out), Ok(n));
    }

    #[test]
    fn truncated() {
        for n in 0..8 {
            assert!(matches!(
                NotifyPayload::parse(&R_U_THERE[..n]),
                Err(WireError::Truncated {
                    what: "Notify payload",
                    ..
                })
            ));
        }
        for n in 8..24 {
            assert_eq!(
                NotifyPayload::parse(&R_U_THERE[..n]),
                Err(WireError::Truncated {
                    what: "Notify SPI",
                    need: 16,
                    have: n - 8
                })
            );
        }
    }
}
