//! Certificate and Certificate Request payloads (RFC 2408 §3.9, §3.10).
//!
//! Both are an encoding byte followed by raw data: the certificate, or for a
//! request the DER Distinguished Name of an acceptable CA (possibly empty,
//! meaning any).

use crate::WireError;
use crate::reader::Reader;
use crate::registry::CertEncoding;

/// A CERT or CR payload body.
///
/// ```text
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ! Cert Encoding !                                               !
/// +-+-+-+-+-+-+-+-+                                               !
/// ~          Certificate Data / Certificate Authority             ~
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertPayload {
    /// Certificate encoding / requested certificate type.
    pub encoding: CertEncoding,
    /// Certificate data or CA name, raw.
    pub data: Vec<u8>,
}

impl CertPayload {
    /// Parses a CERT or CR body (after the generic header).
    pub fn parse(body: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(body);
        let encoding = CertEncoding(r.u8("CERT/CR payload")?);
        Ok(Self {
            encoding,
            data: r.rest().to_vec(),
        })
    }

    /// Appends the body (without generic header).
    pub fn emit_body(&self, out: &mut Vec<u8>) {
        out.push(self.encoding.0);
        out.extend_from_slice(&self.data);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip() {
        let c = CertPayload {
            encoding: CertEncoding::X509_SIG,
            data: vec![0x30, 0x82, 0x01],
        };
        let mut out = vec![];
        c.emit_body(&mut out);
        assert_eq!(out, [4, 0x30, 0x82, 0x01]);
        assert_eq!(CertPayload::parse(&out), Ok(c));
    }

    #[test]
    fn empty_cr() {
        let c = CertPayload {
            encoding: CertEncoding::X509_SIG,
            data: vec![],
        };
        assert_eq!(CertPayload::parse(&[4]), Ok(c));
    }

    #[test]
    fn truncated() {
        assert_eq!(
            CertPayload::parse(&[]),
            Err(WireError::Truncated {
                what: "CERT/CR payload",
                need: 1,
                have: 0
            })
        );
    }
}
