//! The DHCPv6 relay-agent envelope: Relay-Forward / Relay-Reply (RFC 8415 §9, options §21.10
//! Relay Message and §21.18 Interface-Id).
//!
//! dhcproto 0.15.0 parses the Relay Message option as another relay header and silently loses it
//! (shared/protocol-notes.md C.1), so this is our own codec: the relay header plus a TLV option
//! chain, with RELAY_MSG and INTERFACE_ID kept as raw bytes. The inner client/server message is
//! left to dhcproto. Option order is kept, so `emit(parse(x)) == x` for any valid input.
//!
//! Not covered: typed decoding of other options (they round-trip as [`RelayOption::Other`]).

use std::net::Ipv6Addr;

/// Message type RELAY-FORW (RFC 8415 §7.3).
pub const RELAY_FORW: u8 = 12;
/// Message type RELAY-REPL (RFC 8415 §7.3).
pub const RELAY_REPL: u8 = 13;
/// Option code OPTION_RELAY_MSG (RFC 8415 §21.10).
pub const OPTION_RELAY_MSG: u16 = 9;
/// Option code OPTION_INTERFACE_ID (RFC 8415 §21.18).
pub const OPTION_INTERFACE_ID: u16 = 18;
/// HOP_COUNT_LIMIT (RFC 8415 §7.6).
pub const HOP_COUNT_LIMIT: u8 = 8;
/// Length of the fixed relay header: msg-type, hop-count, link-address, peer-address.
pub const HEADER_LEN: usize = 34;

mod field {
    use std::ops::Range;
    pub(super) const MSG_TYPE: usize = 0;
    pub(super) const HOP_COUNT: usize = 1;
    pub(super) const LINK_ADDRESS: Range<usize> = 2..18;
    pub(super) const PEER_ADDRESS: Range<usize> = 18..34;
}

/// Relay message type: the two relay-agent messages of RFC 8415 §7.3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RelayType {
    /// RELAY-FORW (12): relay → server.
    Forw,
    /// RELAY-REPL (13): server → relay.
    Repl,
}

impl RelayType {
    /// The wire value.
    pub fn code(self) -> u8 {
        match self {
            Self::Forw => RELAY_FORW,
            Self::Repl => RELAY_REPL,
        }
    }
}

/// One option of the relay envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelayOption {
    /// OPTION_RELAY_MSG (9): the relayed message, raw.
    RelayMsg(Vec<u8>),
    /// OPTION_INTERFACE_ID (18): opaque bytes the server echoes back.
    InterfaceId(Vec<u8>),
    /// Any other option, raw.
    Other {
        /// Option code.
        code: u16,
        /// Option data.
        data: Vec<u8>,
    },
}

impl RelayOption {
    /// The option code.
    pub fn code(&self) -> u16 {
        match self {
            Self::RelayMsg(_) => OPTION_RELAY_MSG,
            Self::InterfaceId(_) => OPTION_INTERFACE_ID,
            Self::Other { code, .. } => *code,
        }
    }

    /// The option data.
    pub fn data(&self) -> &[u8] {
        match self {
            Self::RelayMsg(d) | Self::InterfaceId(d) | Self::Other { data: d, .. } => d,
        }
    }
}

/// Malformed relay envelope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// Fewer bytes than the fixed header or an option header needs.
    #[error("{what} truncated: need {need} bytes, have {have}")]
    Truncated {
        /// What was being read.
        what: &'static str,
        /// Bytes needed.
        need: usize,
        /// Bytes available.
        have: usize,
    },
    /// An option's length runs past the end of the message.
    #[error("option {code} length {len} overruns the message ({left} bytes left)")]
    OptionOverrun {
        /// Option code.
        code: u16,
        /// Declared length.
        len: usize,
        /// Bytes left after the option header.
        left: usize,
    },
    /// The message type is not RELAY-FORW or RELAY-REPL.
    #[error("message type {0} is not a relay message")]
    NotRelay(u8),
    /// A Relay Message or Interface-ID option appears twice.
    #[error("option {0} appears more than once")]
    DuplicateOption(u16),
    /// No Relay Message option (RFC 8415 §9: it MUST be included).
    #[error("no Relay Message option")]
    MissingRelayMsg,
    /// An option too long for its 16-bit length field (emit only).
    #[error("option {code} data of {len} bytes does not fit a 16-bit length")]
    OptionTooLong {
        /// Option code.
        code: u16,
        /// Data length.
        len: usize,
    },
}

/// Bounds-checked cursor over untrusted bytes (style.md §3.5).
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    fn left(&self) -> usize {
        self.buf.len()
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], EnvelopeError> {
        if n > self.buf.len() {
            return Err(EnvelopeError::Truncated {
                what,
                need: n,
                have: self.buf.len(),
            });
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn u16(&mut self, what: &'static str) -> Result<u16, EnvelopeError> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
}

fn addr(b: &[u8]) -> Ipv6Addr {
    let mut a = [0u8; 16];
    a.copy_from_slice(b);
    Ipv6Addr::from(a)
}

/// A Relay-Forward or Relay-Reply message (RFC 8415 §9):
///
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |    msg-type   |   hop-count   |                               |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                               |
/// |                         link-address  (16)                    |
/// |                               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                               |                               |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                               |
/// |                         peer-address  (16)                    |
/// |                               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                               |                               .
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                               .
/// .            options (variable number and length)   ....        .
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
///
/// Options are `code(2) len(2) data(len)`. Exactly one RELAY_MSG is required; at most one
/// INTERFACE_ID is accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayMessage {
    /// RELAY-FORW or RELAY-REPL.
    pub msg_type: RelayType,
    /// Number of relays that have relayed this message.
    pub hop_count: u8,
    /// Address identifying the client's link.
    pub link_address: Ipv6Addr,
    /// The client's (or previous relay's) address.
    pub peer_address: Ipv6Addr,
    /// Options, in wire order.
    pub options: Vec<RelayOption>,
}

impl RelayMessage {
    /// Parses untrusted bytes; never panics.
    pub fn parse(data: &[u8]) -> Result<Self, EnvelopeError> {
        let mut r = Reader::new(data);
        let head = r.take(HEADER_LEN, "relay header")?;
        let msg_type = match head[field::MSG_TYPE] {
            RELAY_FORW => RelayType::Forw,
            RELAY_REPL => RelayType::Repl,
            other => return Err(EnvelopeError::NotRelay(other)),
        };
        let hop_count = head[field::HOP_COUNT];
        let link_address = addr(&head[field::LINK_ADDRESS]);
        let peer_address = addr(&head[field::PEER_ADDRESS]);
        let mut options = Vec::new();
        let (mut seen_msg, mut seen_iid) = (false, false);
        while r.left() > 0 {
            let code = r.u16("option header")?;
            let len = usize::from(r.u16("option header")?);
            if len > r.left() {
                return Err(EnvelopeError::OptionOverrun {
                    code,
                    len,
                    left: r.left(),
                });
            }
            let data = r.take(len, "option data")?.to_vec();
            let opt = match code {
                OPTION_RELAY_MSG => {
                    if std::mem::replace(&mut seen_msg, true) {
                        return Err(EnvelopeError::DuplicateOption(code));
                    }
                    RelayOption::RelayMsg(data)
                }
                OPTION_INTERFACE_ID => {
                    if std::mem::replace(&mut seen_iid, true) {
                        return Err(EnvelopeError::DuplicateOption(code));
                    }
                    RelayOption::InterfaceId(data)
                }
                code => RelayOption::Other { code, data },
            };
            options.push(opt);
        }
        if !seen_msg {
            return Err(EnvelopeError::MissingRelayMsg);
        }
        Ok(Self {
            msg_type,
            hop_count,
            link_address,
            peer_address,
            options,
        })
    }

    /// The Relay Message option's payload, if present.
    pub fn relay_msg(&self) -> Option<&[u8]> {
        self.options.iter().find_map(|o| match o {
            RelayOption::RelayMsg(d) => Some(d.as_slice()),
            _ => None,
        })
    }

    /// The Interface-ID option's payload, if present.
    pub fn interface_id(&self) -> Option<&[u8]> {
        self.options.iter().find_map(|o| match o {
            RelayOption::InterfaceId(d) => Some(d.as_slice()),
            _ => None,
        })
    }

    /// Length of the emitted message.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN
            + self
                .options
                .iter()
                .map(|o| 4 + o.data().len())
                .sum::<usize>()
    }

    /// Appends the wire form to `out`. Fails only if an option's data exceeds 65535 bytes.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<(), EnvelopeError> {
        for o in &self.options {
            if o.data().len() > usize::from(u16::MAX) {
                return Err(EnvelopeError::OptionTooLong {
                    code: o.code(),
                    len: o.data().len(),
                });
            }
        }
        out.reserve(self.buffer_len());
        out.push(self.msg_type.code());
        out.push(self.hop_count);
        out.extend_from_slice(&self.link_address.octets());
        out.extend_from_slice(&self.peer_address.octets());
        for o in &self.options {
            out.extend_from_slice(&o.code().to_be_bytes());
            // Checked above.
            let len = u16::try_from(o.data().len()).unwrap_or(u16::MAX);
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(o.data());
        }
        Ok(())
    }

    /// The wire form as a new vector.
    pub fn to_bytes(&self) -> Result<Vec<u8>, EnvelopeError> {
        let mut v = Vec::new();
        self.emit(&mut v)?;
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(inner: &[u8]) -> RelayMessage {
        RelayMessage {
            msg_type: RelayType::Forw,
            hop_count: 0,
            link_address: "2001:db8::1".parse().unwrap(),
            peer_address: "fe80::2".parse().unwrap(),
            options: vec![
                RelayOption::RelayMsg(inner.to_vec()),
                RelayOption::InterfaceId(b"ha0".to_vec()),
            ],
        }
    }

    /// protocol-notes C.1: a short inner Solicit (4-byte header, xid 010203) followed by an
    /// Interface-ID; dhcproto lost both. We must keep both, byte-exact.
    #[test]
    fn c1_short_inner_solicit_is_kept() {
        let inner = [1u8, 1, 2, 3];
        let m = sample(&inner);
        let bytes = m.to_bytes().unwrap();
        assert_eq!(bytes.len(), 34 + 4 + 4 + 4 + 3);
        let p = RelayMessage::parse(&bytes).unwrap();
        assert_eq!(p.relay_msg(), Some(&inner[..]));
        assert_eq!(p.interface_id(), Some(&b"ha0"[..]));
        assert_eq!(p, m);
        assert_eq!(p.to_bytes().unwrap(), bytes);
    }

    #[test]
    fn round_trip_keeps_order_and_unknown_options() {
        let mut m = sample(&[3, 9, 9, 9, 0, 8, 0, 2, 0, 0]);
        m.options.insert(
            0,
            RelayOption::Other {
                code: 65000,
                data: vec![],
            },
        );
        m.options.push(RelayOption::Other {
            code: 37,
            data: vec![1, 2, 3],
        });
        m.msg_type = RelayType::Repl;
        m.hop_count = 7;
        let bytes = m.to_bytes().unwrap();
        assert_eq!(bytes.len(), m.buffer_len());
        let p = RelayMessage::parse(&bytes).unwrap();
        assert_eq!(p, m);
        assert_eq!(p.to_bytes().unwrap(), bytes);
    }

    #[test]
    fn every_truncation_is_an_error() {
        let bytes = sample(&[1, 1, 2, 3]).to_bytes().unwrap();
        for n in 0..bytes.len() {
            let r = RelayMessage::parse(&bytes[..n]);
            if n == 42 {
                // Cutting off exactly the Interface-ID option leaves a valid message.
                assert!(r.is_ok());
            } else if n < HEADER_LEN {
                assert!(matches!(r, Err(EnvelopeError::Truncated { .. })), "{n}");
            } else {
                assert!(
                    matches!(
                        r,
                        Err(EnvelopeError::Truncated { .. }
                            | EnvelopeError::OptionOverrun { .. }
                            | EnvelopeError::MissingRelayMsg)
                    ),
                    "{n}: {r:?}"
                );
            }
        }
    }

    #[test]
    fn overrun_duplicate_missing_and_type() {
        let mut bytes = sample(&[1, 1, 2, 3]).to_bytes().unwrap();
        // RELAY_MSG length 0xffff.
        bytes[36] = 0xff;
        bytes[37] = 0xff;
        assert!(matches!(
            RelayMessage::parse(&bytes),
            Err(EnvelopeError::OptionOverrun {
                code: 9,
                len: 65535,
                ..
            })
        ));

        let mut m = sample(&[1, 1, 2, 3]);
        m.options.push(RelayOption::RelayMsg(vec![1, 0, 0, 0]));
        let b = m.to_bytes().unwrap();
        assert_eq!(
            RelayMessage::parse(&b),
            Err(EnvelopeError::DuplicateOption(9))
        );

        let mut m = sample(&[1, 1, 2, 3]);
        m.options.push(RelayOption::InterfaceId(vec![]));
        let b = m.to_bytes().unwrap();
        assert_eq!(
            RelayMessage::parse(&b),
            Err(EnvelopeError::DuplicateOption(18))
        );

        let mut m = sample(&[]);
        m.options.remove(0);
        let b = m.to_bytes().unwrap();
        assert_eq!(RelayMessage::parse(&b), Err(EnvelopeError::MissingRelayMsg));

        let mut b = sample(&[1, 1, 2, 3]).to_bytes().unwrap();
        b[0] = 1;
        assert_eq!(RelayMessage::parse(&b), Err(EnvelopeError::NotRelay(1)));
    }

    #[test]
    fn emit_refuses_oversized_option() {
        let m = sample(&vec![0u8; 70_000]);
        assert!(matches!(
            m.to_bytes(),
            Err(EnvelopeError::OptionTooLong { code: 9, .. })
        ));
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics_and_valid_round_trips(data in proptest::collection::vec(0u8..=255, 0..200)) {
            if let Ok(m) = RelayMessage::parse(&data) {
                proptest::prop_assert_eq!(m.to_bytes().unwrap(), data);
            }
        }
    }
}
