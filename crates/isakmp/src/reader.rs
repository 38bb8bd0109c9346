//! A bounds-checked cursor over untrusted bytes (style guide §3.5).
//!
//! Every read checks the remaining length first and returns
//! [`WireError::Truncated`] instead of panicking; `expect_end` rejects
//! trailing bytes.

use crate::WireError;

/// Cursor over a byte slice.
#[derive(Clone, Debug)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Starts at the beginning of `buf`.
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Bytes not yet consumed.
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// True when every byte has been consumed.
    pub(crate) fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// Offset of the next byte within the original slice.
    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    /// Takes the next `n` bytes.
    pub(crate) fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], WireError> {
        let have = self.remaining();
        if n > have {
            return Err(WireError::Truncated {
                what,
                need: n,
                have,
            });
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    /// Takes everything that is left.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        let out = &self.buf[self.pos..];
        self.pos = self.buf.len();
        out
    }

    /// Takes a fixed-size array.
    pub(crate) fn array<const N: usize>(
        &mut self,
        what: &'static str,
    ) -> Result<[u8; N], WireError> {
        let bytes = self.take(N, what)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    /// Reads one byte.
    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8, WireError> {
        Ok(self.array::<1>(what)?[0])
    }

    /// Reads a big-endian `u16`.
    pub(crate) fn u16(&mut self, what: &'static str) -> Result<u16, WireError> {
        self.array(what).map(u16::from_be_bytes)
    }

    /// Reads a big-endian `u32`.
    pub(crate) fn u32(&mut self, what: &'static str) -> Result<u32, WireError> {
        self.array(what).map(u32::from_be_bytes)
    }

    /// Fails with [`WireError::TrailingBytes`] unless everything was consumed.
    pub(crate) fn expect_end(&self, what: &'static str) -> Result<(), WireError> {
        match self.remaining() {
            0 => Ok(()),
            extra => Err(WireError::TrailingBytes { what, extra }),
        }
    }
}

/// Appends a 16-bit length placeholder and returns its position, for
/// [`patch_len16`].
pub(crate) fn len16_placeholder(out: &mut Vec<u8>) -> usize {
    let at = out.len();
    out.extend_from_slice(&[0, 0]);
    at
}

/// Writes `value` as a big-endian `u16` at `at`.
///
/// Lengths above `u16::MAX` cannot be represented on the wire; that is a
/// caller error (an over-long value was built) and trips a debug assertion.
/// Release builds write the value truncated.
pub(crate) fn patch_len16(out: &mut [u8], at: usize, value: usize) {
    debug_assert!(
        value <= usize::from(u16::MAX),
        "ISAKMP length {value} does not fit 16 bits"
    );
    #[allow(clippy::cast_possible_truncation)]
    let v = value as u16;
    out[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

/// Emits a payload-like structure with a 4-byte generic header
/// (`next`, RESERVED = 0, 16-bit length covering the header) around `body`.
pub(crate) fn emit_generic(out: &mut Vec<u8>, next: u8, body: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.push(next);
    out.push(0);
    let at = len16_placeholder(out);
    body(out);
    let len = out.len() - start;
    patch_len16(out, at, len);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_bounds() {
        let mut r = Reader::new(&[1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(r.u8("a"), Ok(1));
        assert_eq!(r.u16("b"), Ok(0x0203));
        assert_eq!(r.position(), 3);
        assert_eq!(r.u32("c"), Ok(0x0405_0607));
        assert!(r.is_empty());
        assert_eq!(
            r.u8("d"),
            Err(WireError::Truncated {
                what: "d",
                need: 1,
                have: 0
            })
        );
    }

    #[test]
    fn truncated_take_does_not_advance() {
        let mut r = Reader::new(&[1, 2]);
        assert_eq!(
            r.take(3, "x"),
            Err(WireError::Truncated {
                what: "x",
                need: 3,
                have: 2
            })
        );
        assert_eq!(r.remaining(), 2);
        assert_eq!(
            r.expect_end("r"),
            Err(WireError::TrailingBytes {
                what: "r",
                extra: 2
            })
        );
        assert_eq!(r.rest(), &[1, 2]);
        assert_eq!(r.expect_end("r"), Ok(()));
    }

    #[test]
    fn generic_header_emission() {
        let mut out = vec![0xaa];
        emit_generic(&mut out, 13, |o| o.extend_from_slice(&[9, 9]));
        assert_eq!(out, [0xaa, 13, 0, 0, 6, 9, 9]);
    }
}
