//! The DHCPv6 Client FQDN option (RFC 4704 §4), option code 39: encoding the client's name and
//! decoding the server's answer.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |          OPTION_FQDN          |         option-len            |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |   flags       |                                               |
//! +-+-+-+-+-+-+-+-+                                               |
//! .                                                               .
//! .                          domain-name                          .
//! .                                                               .
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!
//!  flags:  0 1 2 3 4 5 6 7
//!         +-+-+-+-+-+-+-+-+
//!         |  MBZ    |N|O|S|
//!         +-+-+-+-+-+-+-+-+
//! ```
//!
//! RFC 4704 §4.1: S = 1 asks the server to update the AAAA RR (client) or says the server has
//! taken or will take it on (server); O = 1 (server only) says the server overrode the client's
//! S; N = 1 asks for / announces no server updates at all, and then S must be 0. The MBZ bits
//! are sent as zero and ignored on receipt.
//!
//! RFC 4704 §4.2: the name is in DNS wire format (RFC 1035 §3.1) without compression; a fully
//! qualified name ends with the zero-length root label, a partial one does not, and the field
//! may be empty (the client leaves the name to the server). §5: a client sends the option only
//! in Solicit, Request, Renew and Rebind, and lists 39 in its Option Request option when it
//! wants the server's answer.

use core::fmt;
use core::fmt::Write as _;

/// Option code of Client FQDN (RFC 4704 §4).
pub const OPTION_CLIENT_FQDN: u16 = 39;
/// Flag S: the server performs (client: should perform) the AAAA update (RFC 4704 §4.1).
pub const FLAG_S: u8 = 0x01;
/// Flag O: the server overrode the client's S flag (RFC 4704 §4.1).
pub const FLAG_O: u8 = 0x02;
/// Flag N: no DNS updates by the server (RFC 4704 §4.1).
pub const FLAG_N: u8 = 0x04;

/// Longest domain name in wire format (RFC 1035 §2.3.4).
const MAX_NAME: usize = 255;
/// Longest label (RFC 1035 §2.3.4).
const MAX_LABEL: usize = 63;

/// The S, O and N flags of a Client FQDN option (RFC 4704 §4.1); the MBZ bits are dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FqdnFlags {
    /// S: the server performs the AAAA update.
    pub s: bool,
    /// O: the server overrode the client's S flag.
    pub o: bool,
    /// N: the server performs no DNS update.
    pub n: bool,
}

impl FqdnFlags {
    /// From the flags octet (MBZ bits ignored, RFC 4704 §4.1).
    pub fn from_octet(b: u8) -> Self {
        Self {
            s: b & FLAG_S != 0,
            o: b & FLAG_O != 0,
            n: b & FLAG_N != 0,
        }
    }

    /// The flags octet, MBZ bits zero.
    pub fn to_octet(self) -> u8 {
        let bit = |on: bool, flag: u8| if on { flag } else { 0 };
        bit(self.s, FLAG_S) | bit(self.o, FLAG_O) | bit(self.n, FLAG_N)
    }
}

/// `S=1 O=0 N=0`.
impl fmt::Display for FqdnFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "S={} O={} N={}",
            u8::from(self.s),
            u8::from(self.o),
            u8::from(self.n)
        )
    }
}

/// Why the contents of a Client FQDN option are invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FqdnError {
    /// No flags octet.
    #[error("empty Client FQDN option (no flags octet)")]
    Empty,
    /// A label length octet with either of the top two bits set (a compression pointer or an
    /// extended label type, RFC 4704 §4.2 forbids compression).
    #[error("label type {0:#04x} at offset {1} (compression is not allowed)")]
    LabelType(u8, usize),
    /// A label runs past the end of the option.
    #[error("label at offset {0} runs past the option")]
    Truncated(usize),
    /// Data after the root label.
    #[error("{0} octets after the root label")]
    Trailing(usize),
    /// The name is longer than 255 octets.
    #[error("name longer than 255 octets")]
    TooLong,
}

/// A decoded Client FQDN option (RFC 4704 §4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientFqdn {
    /// The flags.
    pub flags: FqdnFlags,
    /// The name in presentation form: labels joined by `.`, with a trailing `.` when fully
    /// qualified; `.`, `\` and octets outside printable ASCII inside a label are escaped as in
    /// zone files (`\.`, `\\`, `\DDD`). Empty when the option carried no name.
    pub name: String,
    /// Whether the name ended with the root label.
    pub fully_qualified: bool,
}

impl ClientFqdn {
    /// Decodes the option data (flags octet and domain-name field). Never panics.
    pub fn parse(data: &[u8]) -> Result<Self, FqdnError> {
        let (&flags, wire) = data.split_first().ok_or(FqdnError::Empty)?;
        let (name, fully_qualified) = decode_name(wire)?;
        Ok(Self {
            flags: FqdnFlags::from_octet(flags),
            name,
            fully_qualified,
        })
    }
}

/// Checks the option data as [`ClientFqdn::parse`] would, without allocating.
pub fn check(data: &[u8]) -> Result<(), FqdnError> {
    let (_, wire) = data.split_first().ok_or(FqdnError::Empty)?;
    walk_labels(wire, |_| {}).map(|_| ())
}

/// Walks the labels of `wire`, calling `f` on each non-root label; returns whether the name
/// ended with the root label.
fn walk_labels(wire: &[u8], mut f: impl FnMut(&[u8])) -> Result<bool, FqdnError> {
    if wire.len() > MAX_NAME {
        return Err(FqdnError::TooLong);
    }
    let mut at = 0;
    while at < wire.len() {
        let len = wire[at];
        if len & 0xc0 != 0 {
            return Err(FqdnError::LabelType(len, at));
        }
        if len == 0 {
            let rest = wire.len() - at - 1;
            return if rest == 0 {
                Ok(true)
            } else {
                Err(FqdnError::Trailing(rest))
            };
        }
        let label = wire
            .get(at + 1..at + 1 + usize::from(len))
            .ok_or(FqdnError::Truncated(at))?;
        f(label);
        at += 1 + usize::from(len);
    }
    Ok(false)
}

/// Decodes a domain name in wire format (RFC 1035 §3.1, no compression) into presentation form;
/// returns whether it was fully qualified.
fn decode_name(wire: &[u8]) -> Result<(String, bool), FqdnError> {
    let mut out = String::new();
    let full = walk_labels(wire, |label| {
        for &b in label {
            match b {
                b'.' | b'\\' => {
                    out.push('\\');
                    out.push(char::from(b));
                }
                0x21..=0x7e => out.push(char::from(b)),
                _ => {
                    let _ = write!(out, "\\{b:03}");
                }
            }
        }
        out.push('.');
    })?;
    if !full && out.ends_with('.') {
        out.pop();
    }
    if full && out.is_empty() {
        out.push('.');
    }
    Ok((out, full))
}

/// Encodes a domain name in DNS wire format (RFC 1035 §3.1); a name without a trailing dot is a
/// partial name, without the terminating zero label (RFC 4704 §4.2). `None` for an empty label,
/// a label over 63 octets or a name over 255 octets.
pub(crate) fn encode_name(name: &str) -> Option<Vec<u8>> {
    let (body, full) = match name.strip_suffix('.') {
        Some(b) => (b, true),
        None => (name, false),
    };
    let mut out = Vec::with_capacity(name.len() + 2);
    if !body.is_empty() {
        for label in body.split('.') {
            let len = u8::try_from(label.len())
                .ok()
                .filter(|l| (1..=MAX_LABEL as u8).contains(l))?;
            out.push(len);
            out.extend_from_slice(label.as_bytes());
        }
    } else if !full {
        return None;
    }
    if full {
        out.push(0);
    }
    (out.len() <= MAX_NAME).then_some(out)
}

/// The option data the client sends: flags S=1, O=0, N=0 and the name (RFC 4704 §5.2).
pub(crate) fn client_option_data(wire_name: &[u8]) -> Vec<u8> {
    let mut data = Vec::with_capacity(1 + wire_name.len());
    data.push(
        FqdnFlags {
            s: true,
            o: false,
            n: false,
        }
        .to_octet(),
    );
    data.extend_from_slice(wire_name);
    data
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fully_qualified_name_round_trips() {
        let wire = encode_name("mn1.example.").unwrap();
        assert_eq!(wire, b"\x03mn1\x07example\x00");
        let data = client_option_data(&wire);
        assert_eq!(data[0], 0x01);
        let o = ClientFqdn::parse(&data).unwrap();
        assert_eq!(
            o.flags,
            FqdnFlags {
                s: true,
                o: false,
                n: false
            }
        );
        assert_eq!(o.name, "mn1.example.");
        assert!(o.fully_qualified);
        assert_eq!(o.flags.to_string(), "S=1 O=0 N=0");
    }

    #[test]
    fn partial_empty_and_root_names() {
        let o = ClientFqdn::parse(b"\x00\x03mn1").unwrap();
        assert_eq!((o.name.as_str(), o.fully_qualified), ("mn1", false));
        let o = ClientFqdn::parse(&[FLAG_N]).unwrap();
        assert_eq!((o.name.as_str(), o.fully_qualified), ("", false));
        assert!(o.flags.n && !o.flags.s);
        let o = ClientFqdn::parse(&[FLAG_S | FLAG_O, 0]).unwrap();
        assert_eq!((o.name.as_str(), o.fully_qualified), (".", true));
        assert!(o.flags.s && o.flags.o);
        assert_eq!(encode_name("mn1").unwrap(), b"\x03mn1");
        assert_eq!(encode_name(".").unwrap(), b"\x00");
        assert_eq!(encode_name(""), None);
        assert_eq!(encode_name("a..b."), None);
        assert_eq!(encode_name(&format!("{}.", "a".repeat(64))), None);
    }

    #[test]
    fn mbz_bits_are_ignored() {
        let o = ClientFqdn::parse(&[0xf8 | FLAG_S, 0]).unwrap();
        assert_eq!(
            o.flags,
            FqdnFlags {
                s: true,
                o: false,
                n: false
            }
        );
        assert_eq!(o.flags.to_octet(), FLAG_S);
    }

    #[test]
    fn odd_octets_are_escaped() {
        let o = ClientFqdn::parse(b"\x01\x04a.b\\\x02\x00z\x00").unwrap();
        assert_eq!(o.name, "a\\.b\\\\.\\000z.");
    }

    #[test]
    fn hostile_names_are_refused() {
        assert_eq!(ClientFqdn::parse(&[]), Err(FqdnError::Empty));
        assert_eq!(
            ClientFqdn::parse(b"\x01\xc0\x0c"),
            Err(FqdnError::LabelType(0xc0, 0))
        );
        assert_eq!(
            ClientFqdn::parse(b"\x01\x03mn1\x40"),
            Err(FqdnError::LabelType(0x40, 4))
        );
        assert_eq!(
            ClientFqdn::parse(b"\x01\x05mn"),
            Err(FqdnError::Truncated(0))
        );
        assert_eq!(
            ClientFqdn::parse(b"\x01\x02mn\x00\x01x"),
            Err(FqdnError::Trailing(2))
        );
        let mut long = vec![FLAG_S];
        for _ in 0..5 {
            long.push(63);
            long.extend_from_slice(&[b'a'; 63]);
        }
        long.push(0);
        assert_eq!(ClientFqdn::parse(&long), Err(FqdnError::TooLong));
        assert_eq!(check(&long), Err(FqdnError::TooLong));
        assert_eq!(check(b"\x01\x03mn1\x00"), Ok(()));
    }

    #[test]
    fn any_input_decodes_or_errs_without_panic() {
        // Every 0–3 octet input, and a pseudo-random sample of longer ones.
        let mut s = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        for len in 0..300usize {
            for _ in 0..50 {
                let data: Vec<u8> = (0..len).map(|_| (next() % 70) as u8).collect();
                let parsed = ClientFqdn::parse(&data);
                assert_eq!(parsed.is_ok(), check(&data).is_ok());
            }
        }
    }
}
