//! Domain names (RFC 1035 §3.1, §4.1.4): text parsing with validation, the uncompressed wire
//! form, reading names with compression pointers out of a message, case-insensitive comparison
//! (RFC 4343) and the canonical (lower-case) form TSIG hashes (RFC 8945 §4.3.3, RFC 4034 §6.2).
//!
//! Every [`Name`] is absolute: `"mn1.example"` and `"mn1.example."` are the same name, and
//! [`Display`](fmt::Display) always prints the trailing dot.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use crate::wire::WireError;

/// The longest label (RFC 1035 §2.3.4).
pub const MAX_LABEL_LEN: usize = 63;
/// The longest name in wire form, length octets and the root label included (RFC 1035 §2.3.4).
pub const MAX_NAME_LEN: usize = 255;
/// Compression pointers followed at most while reading one name. Each pointer must also point
/// before the previous one, so loops are impossible anyway; this bounds the work.
const MAX_POINTERS: usize = 64;

/// Why a text name is not acceptable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// The empty string (the root is written `"."`).
    #[error("empty domain name (the root is \".\")")]
    Empty,
    /// Two dots in a row, or a leading dot.
    #[error("empty label in domain name {0:?}")]
    EmptyLabel(String),
    /// A label over 63 octets (RFC 1035 §2.3.4).
    #[error("label {label:?} is {len} octets long, more than 63")]
    LabelTooLong {
        /// The label.
        label: String,
        /// Its length.
        len: usize,
    },
    /// More than 255 octets in wire form (RFC 1035 §2.3.4).
    #[error("domain name {name:?} is {len} octets in wire form, more than 255")]
    TooLong {
        /// The name (shortened).
        name: String,
        /// Its wire length.
        len: usize,
    },
    /// A character outside letters, digits, `-` and `_`.
    #[error("character {ch:?} not allowed in domain name {name:?} (letters, digits, '-', '_')")]
    InvalidChar {
        /// The character.
        ch: char,
        /// The name.
        name: String,
    },
}

/// An absolute domain name, kept in uncompressed wire form (length-prefixed labels ending
/// with the root label). Comparison and hashing ignore ASCII case (RFC 4343); the original
/// case is kept for emission.
#[derive(Clone)]
pub struct Name {
    wire: Vec<u8>,
}

impl Name {
    /// The root name `.`.
    pub fn root() -> Self {
        Self { wire: vec![0] }
    }

    /// Parses a text name: labels of letters, digits, `-` and `_` (host names and the
    /// `_service._proto` labels of SRV owners) separated by dots, each 1–63 octets, at most 255
    /// octets in wire form; a trailing dot is optional (every name is absolute). `"."` is the
    /// root. No escapes, no wildcards, no other characters.
    pub fn from_ascii(s: &str) -> Result<Self, NameError> {
        if s.is_empty() {
            return Err(NameError::Empty);
        }
        if s == "." {
            return Ok(Self::root());
        }
        let body = s.strip_suffix('.').unwrap_or(s);
        let mut wire = Vec::with_capacity(body.len() + 2);
        for label in body.split('.') {
            if label.is_empty() {
                return Err(NameError::EmptyLabel(s.to_owned()));
            }
            if let Some(ch) = label
                .chars()
                .find(|&c| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
            {
                return Err(NameError::InvalidChar {
                    ch,
                    name: s.to_owned(),
                });
            }
            if label.len() > MAX_LABEL_LEN {
                return Err(NameError::LabelTooLong {
                    label: label.to_owned(),
                    len: label.len(),
                });
            }
            wire.push(label.len() as u8);
            wire.extend_from_slice(label.as_bytes());
        }
        wire.push(0);
        if wire.len() > MAX_NAME_LEN {
            let mut name = s.to_owned();
            name.truncate(40);
            return Err(NameError::TooLong {
                name,
                len: wire.len(),
            });
        }
        Ok(Self { wire })
    }

    /// Reads the name starting at `offset` of the DNS message `msg`, following compression
    /// pointers (RFC 1035 §4.1.4). Returns the name and the offset just after it *in place*
    /// (after the first pointer, if any). Every pointer must point before the start of the
    /// labels being read (so a chain of pointers always moves backwards and cannot loop), at
    /// most 64 are followed, the name must stay within 255 octets, and label types 01/10
    /// (RFC 6891 §5 deprecated extended labels) are refused.
    pub fn read(msg: &[u8], offset: usize) -> Result<(Self, usize), WireError> {
        let mut wire = Vec::new();
        let mut pos = offset;
        // Start of the run of labels being read: a pointer must go strictly before it.
        let mut run_start = offset;
        let mut end = None;
        let mut pointers = 0;
        loop {
            let len = *msg.get(pos).ok_or(WireError::Truncated {
                what: "domain name",
                offset: pos,
            })?;
            match len & 0xc0 {
                0x00 => {
                    let len = usize::from(len);
                    if len == 0 {
                        wire.push(0);
                        if wire.len() > MAX_NAME_LEN {
                            return Err(WireError::NameTooLong { offset });
                        }
                        return Ok((Self { wire }, end.unwrap_or(pos + 1)));
                    }
                    let label = msg
                        .get(pos + 1..pos + 1 + len)
                        .ok_or(WireError::Truncated {
                            what: "label",
                            offset: pos,
                        })?;
                    wire.push(len as u8);
                    wire.extend_from_slice(label);
                    // One more octet for the root label must still fit.
                    if wire.len() + 1 > MAX_NAME_LEN {
                        return Err(WireError::NameTooLong { offset });
                    }
                    pos += 1 + len;
                }
                0xc0 => {
                    let low = *msg.get(pos + 1).ok_or(WireError::Truncated {
                        what: "compression pointer",
                        offset: pos,
                    })?;
                    let target = (usize::from(len & 0x3f) << 8) | usize::from(low);
                    end.get_or_insert(pos + 2);
                    pointers += 1;
                    if target >= run_start || pointers > MAX_POINTERS {
                        return Err(WireError::BadPointer {
                            offset: pos,
                            target,
                        });
                    }
                    pos = target;
                    run_start = target;
                }
                _ => return Err(WireError::BadLabelType { offset: pos }),
            }
        }
    }

    /// The uncompressed wire form.
    pub fn as_wire(&self) -> &[u8] {
        &self.wire
    }

    /// Length of the uncompressed wire form.
    pub fn wire_len(&self) -> usize {
        self.wire.len()
    }

    /// Appends the uncompressed wire form to `out`.
    pub fn emit(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.wire);
    }

    /// Appends the canonical wire form (RFC 4034 §6.2: upper-case ASCII letters lowered), as
    /// the TSIG variables need (RFC 8945 §4.3.3).
    pub fn emit_canonical(&self, out: &mut Vec<u8>) {
        out.extend(self.wire.iter().map(u8::to_ascii_lowercase));
    }

    /// Whether this is the root.
    pub fn is_root(&self) -> bool {
        self.wire.len() == 1
    }

    /// The labels, from the leftmost; the root label is not included.
    pub fn labels(&self) -> Labels<'_> {
        Labels { rest: &self.wire }
    }

    /// Number of labels, the root label not counted.
    pub fn label_count(&self) -> usize {
        self.labels().count()
    }

    /// Whether this name equals `suffix` or lies below it (`mn1.example.` is a subdomain of
    /// `example.` and of itself, not of `xample.`), ignoring case. Every name is a subdomain
    /// of the root.
    pub fn is_subdomain_of(&self, suffix: &Self) -> bool {
        let n = self.label_count();
        let m = suffix.label_count();
        if m > n {
            return false;
        }
        self.labels()
            .skip(n - m)
            .zip(suffix.labels())
            .all(|(a, b)| a.eq_ignore_ascii_case(b))
    }

    /// The name with ASCII letters lowered.
    pub fn to_lowercase(&self) -> Self {
        Self {
            wire: self.wire.iter().map(u8::to_ascii_lowercase).collect(),
        }
    }
}

/// Iterator over the labels of a [`Name`].
#[derive(Clone, Debug)]
pub struct Labels<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Labels<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let (&len, tail) = self.rest.split_first()?;
        if len == 0 {
            return None;
        }
        let (label, rest) = tail.split_at_checked(usize::from(len))?;
        self.rest = rest;
        Some(label)
    }
}

impl PartialEq for Name {
    fn eq(&self, other: &Self) -> bool {
        self.wire.eq_ignore_ascii_case(&other.wire)
    }
}

impl Eq for Name {}

impl Hash for Name {
    fn hash<H: Hasher>(&self, state: &mut H) {
        for b in &self.wire {
            state.write_u8(b.to_ascii_lowercase());
        }
    }
}

impl FromStr for Name {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, NameError> {
        Self::from_ascii(s)
    }
}

impl fmt::Display for Name {
    /// Labels joined by dots with a trailing dot (`mn1.example.`, the root as `.`); in names
    /// read off the wire, `.`, `\`, spaces and non-printable octets are escaped as in zone
    /// files (`\.`, `\\`, `\032`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_root() {
            return f.write_str(".");
        }
        for label in self.labels() {
            for &b in label {
                match b {
                    b'.' | b'\\' => write!(f, "\\{}", b as char)?,
                    0x21..=0x7e => write!(f, "{}", b as char)?,
                    _ => write!(f, "\\{b:03}")?,
                }
            }
            f.write_str(".")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Name({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Name {
        Name::from_ascii(s).expect(s)
    }

    #[test]
    fn text_names() {
        assert_eq!(n("mn1.example").to_string(), "mn1.example.");
        assert_eq!(n("mn1.example."), n("MN1.Example"));
        assert_eq!(n("mn1.example.").as_wire(), b"\x03mn1\x07example\x00");
        assert_eq!(n(".").as_wire(), b"\x00");
        assert!(n(".").is_root());
        assert_eq!(n("_mip6._ipv6.example.").label_count(), 3);
        assert_eq!(Name::from_ascii(""), Err(NameError::Empty));
        assert!(matches!(
            Name::from_ascii("a..b"),
            Err(NameError::EmptyLabel(_))
        ));
        assert!(matches!(
            Name::from_ascii(".a"),
            Err(NameError::EmptyLabel(_))
        ));
        assert!(matches!(
            Name::from_ascii("a.b.."),
            Err(NameError::EmptyLabel(_))
        ));
        assert!(matches!(
            Name::from_ascii("a b.example"),
            Err(NameError::InvalidChar { ch: ' ', .. })
        ));
        assert!(matches!(
            Name::from_ascii("*.example"),
            Err(NameError::InvalidChar { ch: '*', .. })
        ));
        let l63 = "a".repeat(63);
        assert!(Name::from_ascii(&format!("{l63}.example")).is_ok());
        assert!(matches!(
            Name::from_ascii(&format!("a{l63}.example")),
            Err(NameError::LabelTooLong { len: 64, .. })
        ));
        // 4 × (1 + 63) + 1 = 257 > 255; 3 × 64 + (1 + 61) + 1 = 255 fits.
        let four = [l63.as_str(); 4].join(".");
        assert!(matches!(
            Name::from_ascii(&four),
            Err(NameError::TooLong { len: 257, .. })
        ));
        let fits = format!("{l63}.{l63}.{l63}.{}", "b".repeat(61));
        assert_eq!(n(&fits).wire_len(), 255);
    }

    #[test]
    fn subdomains() {
        let example = n("example.");
        assert!(n("mn1.example.").is_subdomain_of(&example));
        assert!(n("a.b.EXAMPLE").is_subdomain_of(&example));
        assert!(example.is_subdomain_of(&example));
        assert!(!n("mn1.xample.").is_subdomain_of(&example));
        assert!(!n("mn1example.").is_subdomain_of(&example));
        assert!(!example.is_subdomain_of(&n("mn1.example.")));
        assert!(n("mn1.example.").is_subdomain_of(&Name::root()));
        assert!(!n("mn1.example.org").is_subdomain_of(&example));
    }

    #[test]
    fn hash_ignores_case() {
        use std::collections::HashSet;
        let set: HashSet<Name> = [n("A.example"), n("a.EXAMPLE.")].into_iter().collect();
        assert_eq!(set.len(), 1);
        let mut c = Vec::new();
        n("Mn1.EXample").emit_canonical(&mut c);
        assert_eq!(c, b"\x03mn1\x07example\x00");
    }

    #[test]
    fn read_with_compression() {
        // "example." at 2, "mn1" + pointer to 2 at 11.
        let msg = b"\xff\xff\x07example\x00\x03mn1\xc0\x02\xee";
        let (a, end) = Name::read(msg, 2).expect("plain");
        assert_eq!((a.to_string().as_str(), end), ("example.", 11));
        let (b, end) = Name::read(msg, 11).expect("compressed");
        assert_eq!((b.to_string().as_str(), end), ("mn1.example.", 17));
        // A pointer to itself, forwards, or into the run being read loops: refused.
        assert!(matches!(
            Name::read(b"\xc0\x00", 0),
            Err(WireError::BadPointer { .. })
        ));
        assert!(matches!(
            Name::read(b"\x01a\xc0\x00", 0),
            Err(WireError::BadPointer { .. })
        ));
        assert!(matches!(
            Name::read(b"\x00\xc0\x03\x00", 1),
            Err(WireError::BadPointer { .. })
        ));
        // Label/pointer ping-pong: from 4, "b" then a pointer to 0 (backwards: fine); from 0,
        // "a" then a pointer to 4, which is not before the run started at 0: refused.
        assert!(matches!(
            Name::read(b"\x01a\xc0\x04\x01b\xc0\x00", 4),
            Err(WireError::BadPointer { .. })
        ));
        assert!(matches!(
            Name::read(b"\x40", 0),
            Err(WireError::BadLabelType { .. })
        ));
        assert!(matches!(
            Name::read(b"\x05ab", 0),
            Err(WireError::Truncated { .. })
        ));
        assert!(matches!(
            Name::read(b"\xc0", 0),
            Err(WireError::Truncated { .. })
        ));
        // Binary labels print escaped.
        let (odd, _) = Name::read(b"\x03a.\x20\x00", 0).expect("binary label");
        assert_eq!(odd.to_string(), "a\\.\\032.");
    }

    #[test]
    fn read_refuses_long_names_built_from_pointers() {
        // A 63-octet label repeated through a backwards pointer chain: 5 × 64 > 255.
        let mut msg = Vec::new();
        msg.push(0);
        let mut prev = 0usize;
        for _ in 0..5 {
            let at = msg.len();
            msg.push(63);
            msg.extend_from_slice(&[b'x'; 63]);
            msg.push(0xc0 | (prev >> 8) as u8);
            msg.push(prev as u8);
            prev = at;
        }
        assert!(matches!(
            Name::read(&msg, prev),
            Err(WireError::NameTooLong { .. })
        ));
    }
}
