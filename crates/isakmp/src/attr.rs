//! Data attributes (RFC 2408 §3.3), used in Transform payloads (RFC 2409
//! App. A, RFC 2407 §4.5) and in the Attribute payload (mode-cfg-05 §3.2).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! !A!       Attribute Type        !    AF=0  Attribute Length     !
//! !F!                             !    AF=1  Attribute Value      !
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! .                   AF=0  Attribute Value                       .
//! .                   AF=1  Not Transmitted                       .
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! The two forms are kept apart ([`AttrValue::Basic`] and
//! [`AttrValue::Variable`]) so that a received attribute is re-emitted in the
//! form it came in; [`Attribute::as_u64`] reads either as a number.

use crate::WireError;
use crate::reader::{Reader, len16_placeholder, patch_len16};

/// The AF (attribute format) bit of the 16-bit type field.
const AF: u16 = 0x8000;

/// An attribute value in one of the two wire forms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AttrValue {
    /// AF=1, Type/Value: a 2-byte value.
    Basic(u16),
    /// AF=0, Type/Length/Value: up to 65535 bytes (may be empty).
    Variable(Vec<u8>),
}

/// One data attribute.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attribute {
    /// The attribute type without the AF bit (15 bits).
    pub ty: u16,
    /// The value and its form.
    pub value: AttrValue,
}

impl Attribute {
    /// A TV attribute.
    pub fn basic(ty: u16, v: u16) -> Self {
        Self {
            ty,
            value: AttrValue::Basic(v),
        }
    }

    /// A TLV attribute.
    pub fn variable(ty: u16, v: Vec<u8>) -> Self {
        Self {
            ty,
            value: AttrValue::Variable(v),
        }
    }

    /// The value as an unsigned integer: a Basic value, or a Variable value
    /// of 1 to 8 bytes read big-endian. `None` for other Variable lengths.
    ///
    /// RFC 2409 App. A allows a Variable attribute such as LIFE_DURATION to be
    /// sent in the Basic form when it fits, so read numbers through this.
    pub fn as_u64(&self) -> Option<u64> {
        match &self.value {
            AttrValue::Basic(v) => Some(u64::from(*v)),
            AttrValue::Variable(b) if (1..=8).contains(&b.len()) => {
                Some(b.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x)))
            }
            AttrValue::Variable(_) => None,
        }
    }

    /// Encodes a number: Basic if it fits 16 bits, else a Variable of the
    /// minimal 4 or 8 bytes.
    pub fn encode_u64(ty: u16, v: u64) -> Self {
        if let Ok(small) = u16::try_from(v) {
            Self::basic(ty, small)
        } else if let Ok(mid) = u32::try_from(v) {
            Self::variable(ty, mid.to_be_bytes().to_vec())
        } else {
            Self::variable(ty, v.to_be_bytes().to_vec())
        }
    }

    /// Encoded size in bytes.
    pub fn wire_len(&self) -> usize {
        match &self.value {
            AttrValue::Basic(_) => 4,
            AttrValue::Variable(b) => 4 + b.len(),
        }
    }

    /// Parses one attribute from the cursor.
    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let raw_ty = r.u16("data attribute")?;
        let word = r.u16("data attribute")?;
        let ty = raw_ty & !AF;
        if raw_ty & AF != 0 {
            Ok(Self::basic(ty, word))
        } else {
            let value = r.take(usize::from(word), "data attribute value")?;
            Ok(Self::variable(ty, value.to_vec()))
        }
    }

    /// Appends the encoded attribute.
    ///
    /// `ty` must fit 15 bits and a Variable value 65535 bytes; violating that
    /// is a caller bug (debug assertion; release builds mask/truncate).
    pub fn emit(&self, out: &mut Vec<u8>) {
        debug_assert!(
            self.ty & AF == 0,
            "attribute type {:#x} uses the AF bit",
            self.ty
        );
        let ty = self.ty & !AF;
        match &self.value {
            AttrValue::Basic(v) => {
                out.extend_from_slice(&(ty | AF).to_be_bytes());
                out.extend_from_slice(&v.to_be_bytes());
            }
            AttrValue::Variable(b) => {
                out.extend_from_slice(&ty.to_be_bytes());
                let at = len16_placeholder(out);
                patch_len16(out, at, b.len());
                out.extend_from_slice(b);
            }
        }
    }
}

/// Parses a sequence of attributes that must fill `buf` exactly.
pub fn parse_attributes(buf: &[u8]) -> Result<Vec<Attribute>, WireError> {
    let mut r = Reader::new(buf);
    let mut out = Vec::new();
    while !r.is_empty() {
        out.push(Attribute::read(&mut r)?);
    }
    Ok(out)
}

/// Appends the encoded attributes in order.
pub fn emit_attributes(attrs: &[Attribute], out: &mut Vec<u8>) {
    for a in attrs {
        a.emit(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_and_variable() {
        let bytes = [
            0x80, 0x01, 0x00, 0x07, // ENCRYPTION_ALGORITHM = AES-CBC (TV)
            0x00, 0x0c, 0x00, 0x04, 0x00, 0x01, 0x51, 0x80, // LIFE_DURATION = 86400 (TLV)
            0x00, 0x08, 0x00, 0x00, // INTERNAL_IP6_ADDRESS, empty
        ];
        let attrs = parse_attributes(&bytes).unwrap();
        assert_eq!(
            attrs,
            [
                Attribute::basic(1, 7),
                Attribute::variable(12, vec![0, 1, 0x51, 0x80]),
                Attribute::variable(8, vec![]),
            ]
        );
        assert_eq!(attrs[1].as_u64(), Some(86400));
        assert_eq!(attrs[2].as_u64(), None);
        let mut out = vec![];
        emit_attributes(&attrs, &mut out);
        assert_eq!(out, bytes);
        assert_eq!(
            attrs.iter().map(Attribute::wire_len).sum::<usize>(),
            bytes.len()
        );
    }

    #[test]
    fn empty_buffer_is_no_attributes() {
        assert_eq!(parse_attributes(&[]), Ok(vec![]));
    }

    #[test]
    fn truncation() {
        // Fewer than 4 bytes of attribute header.
        for n in 1..4 {
            assert!(matches!(
                parse_attributes(&[0x80, 0x01, 0x00, 0x07][..n]),
                Err(WireError::Truncated {
                    what: "data attribute",
                    ..
                })
            ));
        }
        // TLV length beyond the buffer.
        assert_eq!(
            parse_attributes(&[0x00, 0x0c, 0x00, 0x04, 0, 1, 2]),
            Err(WireError::Truncated {
                what: "data attribute value",
                need: 4,
                have: 3
            })
        );
        // Trailing partial attribute after a complete one.
        assert!(parse_attributes(&[0x80, 0x01, 0x00, 0x07, 0x80]).is_err());
    }

    #[test]
    fn as_u64_forms() {
        assert_eq!(Attribute::basic(12, 15840).as_u64(), Some(15840));
        assert_eq!(
            Attribute::variable(12, vec![0xff; 8]).as_u64(),
            Some(u64::MAX)
        );
        assert_eq!(Attribute::variable(12, vec![1; 9]).as_u64(), None);
        assert_eq!(Attribute::variable(12, vec![0x2a]).as_u64(), Some(42));
    }

    #[test]
    fn encode_u64_minimal() {
        assert_eq!(
            Attribute::encode_u64(12, 0xffff),
            Attribute::basic(12, 0xffff)
        );
        assert_eq!(
            Attribute::encode_u64(12, 0x1_0000),
            Attribute::variable(12, vec![0, 1, 0, 0])
        );
        assert_eq!(
            Attribute::encode_u64(12, u64::from(u32::MAX)),
            Attribute::variable(12, vec![0xff; 4])
        );
        assert_eq!(
            Attribute::encode_u64(12, 1 << 32),
            Attribute::variable(12, vec![0, 0, 0, 1, 0, 0, 0, 0])
        );
        for v in [0, 1, 0xffff, 0x1_0000, 1 << 40, u64::MAX] {
            assert_eq!(Attribute::encode_u64(2, v).as_u64(), Some(v));
        }
    }
}
