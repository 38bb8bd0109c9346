//! Delete payload (RFC 2408 §3.15).
//!
//! For ISAKMP SAs the SPI is CKY-I | CKY-R (16 bytes); for ESP/AH it is the
//! 4-byte SPI. A zero SPI size with a non-zero SPI count carries no
//! information and is rejected (it would otherwise let 4 input bytes announce
//! 65535 entries).

use crate::WireError;
use crate::reader::Reader;
use crate::registry::ProtocolId;

/// A Delete payload body.
///
/// ```text
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// !              Domain of Interpretation  (DOI)                  !
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// !  Protocol-Id  !   SPI Size    !           # of SPIs           !
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ~               Security Parameter Index(es) (SPI)              ~
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeletePayload {
    /// Domain of interpretation.
    pub doi: u32,
    /// Protocol of the SAs being deleted.
    pub protocol: ProtocolId,
    /// Size of each SPI. Every entry of `spis` must have this length.
    pub spi_size: u8,
    /// The SPIs (at most 65535).
    pub spis: Vec<Vec<u8>>,
}

impl DeletePayload {
    /// Parses a Delete body (after the generic header). The SPIs must fill
    /// the body exactly.
    pub fn parse(body: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(body);
        let doi = r.u32("Delete payload")?;
        let protocol = ProtocolId(r.u8("Delete payload")?);
        let spi_size = r.u8("Delete payload")?;
        let count = usize::from(r.u16("Delete payload")?);
        if spi_size == 0 && count != 0 {
            return Err(WireError::Invalid {
                what: "Delete payload",
                reason: "SPI size 0 with a non-zero SPI count",
            });
        }
        let size = usize::from(spi_size);
        let need = size * count;
        let have = r.remaining();
        if need > have {
            return Err(WireError::Truncated {
                what: "Delete SPIs",
                need,
                have,
            });
        }
        if need < have {
            return Err(WireError::TrailingBytes {
                what: "Delete payload",
                extra: have - need,
            });
        }
        let spis = r
            .rest()
            .chunks_exact(size.max(1))
            .map(<[u8]>::to_vec)
            .collect();
        Ok(Self {
            doi,
            protocol,
            spi_size,
            spis,
        })
    }

    /// Appends the body (without generic header). Each SPI is written as
    /// given; keeping them `spi_size` long and fewer than 65536 is the
    /// caller's job (debug assertion).
    pub fn emit_body(&self, out: &mut Vec<u8>) {
        debug_assert!(self.spis.len() <= usize::from(u16::MAX));
        debug_assert!(
            self.spis
                .iter()
                .all(|s| s.len() == usize::from(self.spi_size))
        );
        out.extend_from_slice(&self.doi.to_be_bytes());
        out.extend_from_slice(&[self.protocol.0, self.spi_size]);
        #[allow(clippy::cast_possible_truncation)]
        out.extend_from_slice(&(self.spis.len() as u16).to_be_bytes());
        for s in &self.spis {
            out.extend_from_slice(s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn esp_roundtrip() {
        let bytes = [
            0, 0, 0, 1, 3, 4, 0, 2, 0xa5, 0xf8, 0x0e, 0x9d, 0xb1, 0x65, 0xec, 0x58,
        ];
        let d = DeletePayload {
            doi: 1,
            protocol: ProtocolId::IPSEC_ESP,
            spi_size: 4,
            spis: vec![vec![0xa5, 0xf8, 0x0e, 0x9d], vec![0xb1, 0x65, 0xec, 0x58]],
        };
        assert_eq!(DeletePayload::parse(&bytes), Ok(d.clone()));
        let mut out = vec![];
        d.emit_body(&mut out);
        assert_eq!(out, bytes);
    }

    #[test]
    fn isakmp_and_empty() {
        let mut bytes = vec![0, 0, 0, 1, 1, 16, 0, 1];
        bytes.extend(0..16u8);
        let d = DeletePayload::parse(&bytes).unwrap();
        assert_eq!(d.spis, [(0..16u8).collect::<Vec<_>>()]);
        let empty = DeletePayload {
            doi: 1,
            protocol: ProtocolId::ISAKMP,
            spi_size: 0,
            spis: vec![],
        };
        assert_eq!(DeletePayload::parse(&[0, 0, 0, 1, 1, 0, 0, 0]), Ok(empty));
    }

    #[test]
    fn errors() {
        for n in 0..8 {
            assert!(matches!(
                DeletePayload::parse(&[0, 0, 0, 1, 3, 4, 0, 1][..n]),
                Err(WireError::Truncated {
                    what: "Delete payload",
                    ..
                })
            ));
        }
        assert_eq!(
            DeletePayload::parse(&[0, 0, 0, 1, 3, 4, 0, 2, 1, 2, 3, 4, 5]),
            Err(WireError::Truncated {
                what: "Delete SPIs",
                need: 8,
                have: 5
            })
        );
        assert_eq!(
            DeletePayload::parse(&[0, 0, 0, 1, 3, 4, 0, 1, 1, 2, 3, 4, 5]),
            Err(WireError::TrailingBytes {
                what: "Delete payload",
                extra: 1
            })
        );
        assert!(matches!(
            DeletePayload::parse(&[0, 0, 0, 1, 3, 0, 0xff, 0xff]),
            Err(WireError::Invalid {
                what: "Delete payload",
                ..
            })
        ));
    }
}
