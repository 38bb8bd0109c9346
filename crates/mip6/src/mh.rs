//! The Mobility Header (RFC 6275 §6.1) and its mobility options (RFC 6275 §6.2).
//!
//! Implemented messages: Binding Refresh Request (MH Type 0, §6.1.2), Binding Update (5,
//! §6.1.7), Binding Acknowledgement (6, §6.1.8) and Binding Error (7, §6.1.9). Options: Pad1
//! (§6.2.2), PadN (§6.2.3), Binding Refresh Advice (§6.2.4), Alternate Care-of Address
//! (§6.2.5), Nonce Indices (§6.2.6), Binding Authorization Data (§6.2.7), and the DNS Update
//! option of RFC 5026 §6.2 ([`DnsUpdateOption`], type 17, with its own status registry
//! [`DnsUpdateStatus`]); any other option is kept raw ([`MobilityOption::Unknown`]) and skipped
//! by the engines (§6.2.1: "The receiver MUST ignore and skip any options which it does not
//! understand").
//!
//! Not implemented: the return-routability messages (HoTI, CoTI, HoT, CoT, MH Types 1–4) and
//! the Binding Authorization Data computation (§5.2.6): this crate does home registration only,
//! which RFC 3776 protects with ESP instead.
//!
//! # Parse and emit
//!
//! [`MhPacket`] is a checked view of the fixed header ([`MhPacket::new_checked`] guarantees that
//! no accessor panics and that the buffer holds the `(Header Len + 1) * 8` bytes the header
//! claims). [`Message::parse`] reads the message from the view after the §9.2 checks, and
//! [`Message::emit`] writes it back with the checksum over the IPv6 pseudo-header (§6.1.1,
//! RFC 8200 §8.1, Next Header 135).
//!
//! Padding is not part of a [`Message`]: parse skips Pad1/PadN, emit inserts the padding each
//! option's alignment rule needs (§6.2: `xn+y` from the start of the Mobility Header) and pads
//! the message to a multiple of 8 octets (§6.1.1), with Pad1 for one octet and PadN otherwise.
//! So `emit(parse(x)) == x` for every message padded that way (our own output, UMIP's), and for
//! any input `parse(emit(parse(x))) == parse(x)`. The Reserved fields are sent as zero and
//! ignored on receipt, except the unassigned flag bits of the Binding Update and
//! Acknowledgement, which later RFCs assigned and which are kept.

use std::fmt;
use std::net::Ipv6Addr;
use std::time::Duration;

use crate::status::{BaStatus, BeStatus};

/// IPv6 Next Header value of the Mobility Header (RFC 6275 §6.1.1).
pub const IPPROTO_MH: u8 = 135;
/// IPPROTO_NONE: the only Payload Proto value this specification allows (RFC 6275 §6.1.1).
pub const IPPROTO_NONE: u8 = 59;
/// The smallest Mobility Header: Header Len 0.
pub const MIN_MH_LEN: usize = 8;
/// The largest Mobility Header: Header Len 255.
pub const MAX_MH_LEN: usize = (255 + 1) * 8;
/// The unit of the Lifetime fields of the Binding Update and Acknowledgement (§6.1.7, §6.1.8).
pub const LIFETIME_UNIT: Duration = Duration::from_secs(4);

/// Field offsets of the fixed header and of each message's fixed part (RFC 6275 §6.1).
mod field {
    use std::ops::Range;
    pub(super) const PAYLOAD_PROTO: usize = 0;
    pub(super) const HEADER_LEN: usize = 1;
    pub(super) const MH_TYPE: usize = 2;
    pub(super) const CHECKSUM: Range<usize> = 4..6;

    /// Binding Refresh Request (§6.1.2): 16-bit Reserved, then options.
    pub(super) const BRR_OPTIONS: usize = 8;

    /// Binding Update (§6.1.7).
    pub(super) const BU_SEQUENCE: Range<usize> = 6..8;
    pub(super) const BU_FLAGS: Range<usize> = 8..10;
    pub(super) const BU_LIFETIME: Range<usize> = 10..12;
    pub(super) const BU_OPTIONS: usize = 12;

    /// Binding Acknowledgement (§6.1.8).
    pub(super) const BA_STATUS: usize = 6;
    pub(super) const BA_FLAGS: usize = 7;
    pub(super) const BA_SEQUENCE: Range<usize> = 8..10;
    pub(super) const BA_LIFETIME: Range<usize> = 10..12;
    pub(super) const BA_OPTIONS: usize = 12;

    /// Binding Error (§6.1.9).
    pub(super) const BE_STATUS: usize = 6;
    pub(super) const BE_HOME_ADDRESS: Range<usize> = 8..24;
    pub(super) const BE_OPTIONS: usize = 24;
}

/// Mobility option types (RFC 6275 §6.2, IANA "Mobility Options").
pub mod option_type {
    /// Pad1 (§6.2.2).
    pub const PAD1: u8 = 0;
    /// PadN (§6.2.3).
    pub const PADN: u8 = 1;
    /// Binding Refresh Advice (§6.2.4).
    pub const BINDING_REFRESH_ADVICE: u8 = 2;
    /// Alternate Care-of Address (§6.2.5).
    pub const ALTERNATE_CARE_OF_ADDRESS: u8 = 3;
    /// Nonce Indices (§6.2.6).
    pub const NONCE_INDICES: u8 = 4;
    /// Binding Authorization Data (§6.2.7).
    pub const BINDING_AUTHORIZATION_DATA: u8 = 5;
    /// DNS Update, "DNS-UPDATE-TYPE" (RFC 5026 §6.2; IANA "Mobility Options" value 17).
    pub const DNS_UPDATE: u8 = 17;
}

/// Status of the DNS Update mobility option (RFC 5026 §6.2, IANA "Status Codes (DNS Update
/// Mobility Option)"): an open registry. Values below 128 report success, 128 and above a
/// failure. Unset in the mobile node's Binding Update (0), the home agent's result in its
/// Binding Acknowledgement.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DnsUpdateStatus(pub u8);

impl DnsUpdateStatus {
    /// 0: DNS update performed.
    pub const PERFORMED: Self = Self(0);
    /// 128: Reason unspecified.
    pub const REASON_UNSPECIFIED: Self = Self(128);
    /// 129: Administratively prohibited (e.g. the name is not one this node may update).
    pub const ADMINISTRATIVELY_PROHIBITED: Self = Self(129);
    /// 130: DNS Update Failed (the DNS server refused or did not answer).
    pub const DNS_UPDATE_FAILED: Self = Self(130);

    /// The registry's description, if the value is assigned.
    pub fn name(self) -> Option<&'static str> {
        match self {
            Self::PERFORMED => Some("DNS update performed"),
            Self::REASON_UNSPECIFIED => Some("Reason unspecified"),
            Self::ADMINISTRATIVELY_PROHIBITED => Some("Administratively prohibited"),
            Self::DNS_UPDATE_FAILED => Some("DNS Update Failed"),
            _ => None,
        }
    }

    /// Whether the value reports success (below 128, as for Binding Acknowledgement status).
    pub fn is_success(self) -> bool {
        self.0 < 128
    }
}

impl fmt::Debug for DnsUpdateStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => write!(f, "{n} ({})", self.0),
            None => write!(f, "DnsUpdateStatus({})", self.0),
        }
    }
}

impl fmt::Display for DnsUpdateStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "DNS update status {}", self.0),
        }
    }
}

/// The DNS Update mobility option (RFC 5026 §6.2, type 17). The mobile node puts it in its
/// Binding Update to ask the home agent to update (R = 0) or remove (R = 1) the DNS entry of
/// its FQDN; the home agent answers with the Status in its Binding Acknowledgement.
///
/// ```text
///                                 +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///                                 |  Option Type  | Option Length |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |    Status     |R|  Reserved   |  MN identity (FQDN) ...
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
///
/// RFC 5026 does not say how the FQDN is encoded. [`DnsUpdateOption::new`] writes it in DNS
/// wire form (RFC 1035 §3.1, uncompressed: length-prefixed labels and the root label), as
/// DHCPv6's Client FQDN option does (RFC 4704 §4.2); [`DnsUpdateOption::fqdn`] reads that form
/// and, for other implementations, plain dotted text. The raw bytes are kept either way, so
/// the option always round-trips. No alignment requirement: it is emitted without padding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsUpdateOption {
    /// Status (0 in a Binding Update).
    pub status: DnsUpdateStatus,
    /// R flag: remove the DNS entry rather than create or update it.
    pub remove: bool,
    /// MN identity, as on the wire.
    pub mn_identity: Vec<u8>,
}

/// The R flag in the second octet of the DNS Update option's data (RFC 5026 §6.2).
const DNS_UPDATE_R: u8 = 0x80;

impl DnsUpdateOption {
    /// An option for `fqdn` (`"mn1.example."`, trailing dot optional) in DNS wire form, with
    /// this status and R flag. `None` if `fqdn` is not a valid name (an empty label, a label
    /// over 63 octets, over 255 octets in all, or characters other than letters, digits, `-`
    /// and `_`).
    pub fn new(fqdn: &str, status: DnsUpdateStatus, remove: bool) -> Option<Self> {
        Some(Self {
            status,
            remove,
            mn_identity: fqdn_to_wire(fqdn)?,
        })
    }

    /// The mobile node's request (status 0): update (`remove` false) or remove its entry.
    pub fn request(fqdn: &str, remove: bool) -> Option<Self> {
        Self::new(fqdn, DnsUpdateStatus::PERFORMED, remove)
    }

    /// The home agent's answer to `request`: the same identity and R flag, with `status`.
    pub fn answer(request: &Self, status: DnsUpdateStatus) -> Self {
        Self {
            status,
            ..request.clone()
        }
    }

    /// The MN identity as dotted text with the trailing dot (`mn1.example.`), lower-cased
    /// nowhere: from DNS wire form when the bytes are exactly one uncompressed name, else
    /// from plain text (letters, digits, `-`, `_`, `.`). `None` for anything else.
    pub fn fqdn(&self) -> Option<String> {
        wire_to_fqdn(&self.mn_identity).or_else(|| text_fqdn(&self.mn_identity))
    }
}

fn valid_label(label: &[u8]) -> bool {
    !label.is_empty()
        && label.len() <= 63
        && label
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Dotted text → uncompressed DNS wire form (RFC 1035 §3.1).
fn fqdn_to_wire(fqdn: &str) -> Option<Vec<u8>> {
    let body = fqdn.strip_suffix('.').unwrap_or(fqdn);
    let mut out = Vec::with_capacity(body.len() + 2);
    for label in body.split('.') {
        if !valid_label(label.as_bytes()) {
            return None;
        }
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    (out.len() <= 255).then_some(out)
}

/// Uncompressed DNS wire form that fills `b` exactly → dotted text with the trailing dot.
fn wire_to_fqdn(b: &[u8]) -> Option<String> {
    if b.len() > 255 {
        return None;
    }
    let mut text = String::new();
    let mut i = 0;
    loop {
        let len = usize::from(*b.get(i)?);
        if len == 0 {
            return (i + 1 == b.len() && !text.is_empty()).then_some(text);
        }
        let label = b.get(i + 1..i + 1 + len)?;
        if !valid_label(label) {
            return None;
        }
        text.push_str(std::str::from_utf8(label).ok()?);
        text.push('.');
        i += 1 + len;
    }
}

/// Plain dotted text (trailing dot optional) → the same with the trailing dot.
fn text_fqdn(b: &[u8]) -> Option<String> {
    let s = std::str::from_utf8(b).ok()?;
    let wire = fqdn_to_wire(s)?;
    wire_to_fqdn(&wire)
}

/// The MH Type field (RFC 6275 §6.1.1, IANA "Mobility Header Types"): an open registry.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MhType(pub u8);

impl MhType {
    /// 0: Binding Refresh Request (§6.1.2).
    pub const BINDING_REFRESH_REQUEST: Self = Self(0);
    /// 1: Home Test Init (§6.1.3), not implemented.
    pub const HOME_TEST_INIT: Self = Self(1);
    /// 2: Care-of Test Init (§6.1.4), not implemented.
    pub const CARE_OF_TEST_INIT: Self = Self(2);
    /// 3: Home Test (§6.1.5), not implemented.
    pub const HOME_TEST: Self = Self(3);
    /// 4: Care-of Test (§6.1.6), not implemented.
    pub const CARE_OF_TEST: Self = Self(4);
    /// 5: Binding Update (§6.1.7).
    pub const BINDING_UPDATE: Self = Self(5);
    /// 6: Binding Acknowledgement (§6.1.8).
    pub const BINDING_ACK: Self = Self(6);
    /// 7: Binding Error (§6.1.9).
    pub const BINDING_ERROR: Self = Self(7);

    /// The RFC 6275 name of this type.
    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            0 => "Binding Refresh Request",
            1 => "Home Test Init",
            2 => "Care-of Test Init",
            3 => "Home Test",
            4 => "Care-of Test",
            5 => "Binding Update",
            6 => "Binding Acknowledgement",
            7 => "Binding Error",
            _ => return None,
        })
    }

    /// Offset of the mobility options, i.e. the length of the fixed part, for the types this
    /// crate implements.
    fn options_offset(self) -> Option<usize> {
        Some(match self {
            Self::BINDING_REFRESH_REQUEST => field::BRR_OPTIONS,
            Self::BINDING_UPDATE => field::BU_OPTIONS,
            Self::BINDING_ACK => field::BA_OPTIONS,
            Self::BINDING_ERROR => field::BE_OPTIONS,
            _ => return None,
        })
    }

    /// The smallest Header Len for this type (§9.2: "MUST NOT be less than the length specified
    /// for this particular type of message").
    fn min_header_len(self) -> Option<u8> {
        // (fixed part rounded up to 8) / 8 - 1
        self.options_offset().map(|off| (off.div_ceil(8) - 1) as u8)
    }
}

impl fmt::Debug for MhType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => write!(f, "MhType({} {n:?})", self.0),
            None => write!(f, "MhType({})", self.0),
        }
    }
}

impl fmt::Display for MhType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => write!(f, "{n} ({})", self.0),
            None => write!(f, "MH type {}", self.0),
        }
    }
}

/// What RFC 6275 §9.2 says to do about a Mobility Header that fails its checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MhErrorResponse {
    /// Silently discard.
    Discard,
    /// Discard and send ICMPv6 Parameter Problem, Code 0 (RFC 4443 §3.4) to the packet's
    /// source. `pointer` is the offset of the offending field *within the Mobility Header*: add
    /// the Mobility Header's offset in the packet.
    ParameterProblem {
        /// Offset of the offending field from the start of the Mobility Header.
        pointer: usize,
    },
    /// Discard and send a Binding Error with this status (§9.3.3).
    BindingError(BeStatus),
}

/// Why a Mobility Header could not be read or written.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MhError {
    /// Shorter than 8 octets or than its Header Len says.
    #[error("Mobility Header truncated: need {need} bytes, have {have}")]
    Truncated {
        /// Bytes the header needs.
        need: usize,
        /// Bytes available.
        have: usize,
    },
    /// Payload Proto is not IPPROTO_NONE (59) (§6.1.1, §9.2).
    #[error("Mobility Header Payload Proto {0} is not IPPROTO_NONE (59)")]
    BadPayloadProto(u8),
    /// The checksum over the pseudo-header does not verify (§6.1.1).
    #[error("Mobility Header checksum mismatch")]
    BadChecksum,
    /// An MH Type this crate does not implement (§9.2: answer with Binding Error status 2).
    #[error("unrecognized {0}")]
    UnknownMhType(MhType),
    /// Header Len is smaller than the message type's fixed part (§9.2).
    #[error("Header Len {header_len} too small for {mh_type}")]
    HeaderLenTooShort {
        /// The message type.
        mh_type: MhType,
        /// The Header Len field.
        header_len: u8,
    },
    /// A mobility option runs past the end of the message.
    #[error("mobility option {ty} at offset {offset} is truncated")]
    OptionTruncated {
        /// Option type.
        ty: u8,
        /// Offset of the option from the start of the Mobility Header.
        offset: usize,
    },
    /// A mobility option this crate knows has the wrong length.
    #[error("mobility option {ty} has length {len}, expected {expected}")]
    BadOptionLength {
        /// Option type.
        ty: u8,
        /// The Option Length field.
        len: u8,
        /// The length the option's definition requires.
        expected: u8,
    },
    /// (emit) An option's data does not fit its 8-bit length field.
    #[error("mobility option {ty} data of {len} bytes is longer than 255")]
    OptionTooLong {
        /// Option type.
        ty: u8,
        /// Data length.
        len: usize,
    },
    /// (emit) The message would be longer than 2048 bytes (Header Len 255).
    #[error("Mobility Header of {0} bytes is longer than 2048")]
    TooLong(usize),
}

impl MhError {
    /// What RFC 6275 §9.2 says to do with the packet.
    pub fn response(&self) -> MhErrorResponse {
        match self {
            Self::BadPayloadProto(_) => MhErrorResponse::ParameterProblem {
                pointer: field::PAYLOAD_PROTO,
            },
            Self::HeaderLenTooShort { .. } => MhErrorResponse::ParameterProblem {
                pointer: field::HEADER_LEN,
            },
            Self::UnknownMhType(_) => MhErrorResponse::BindingError(BeStatus::UNRECOGNIZED_MH_TYPE),
            _ => MhErrorResponse::Discard,
        }
    }
}

fn be16(b: &[u8], at: usize) -> u16 {
    // Callers index only inside a length-checked buffer.
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn addr_at(b: &[u8], at: usize) -> Ipv6Addr {
    let mut a = [0u8; 16];
    a.copy_from_slice(&b[at..at + 16]);
    Ipv6Addr::from(a)
}

/// The upper-layer checksum of RFC 8200 §8.1 with Next Header 135 (RFC 6275 §6.1.1).
///
/// `src` is the home address when the packet carries a Home Address option, and `dst` the final
/// destination (the type 2 routing header's address) when it carries a routing header.
pub fn checksum(src: Ipv6Addr, dst: Ipv6Addr, mh: &[u8]) -> u16 {
    esp::datagram::upper_layer_checksum(src, dst, IPPROTO_MH, mh)
}

/// A read-only view of a Mobility Header's fixed part (RFC 6275 §6.1.1):
///
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// | Payload Proto |  Header Len   |   MH Type     |   Reserved    |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |           Checksum            |                               |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                               |
/// .                                                               .
/// .                       Message Data                            .
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
///
/// Header Len counts 8-octet units after the first 8 octets.
#[derive(Clone, Copy, Debug)]
pub struct MhPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> MhPacket<T> {
    /// Wraps a buffer without checking it: accessors may panic on a short buffer.
    pub fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wraps a buffer after [`Self::check_len`].
    pub fn new_checked(buffer: T) -> Result<Self, MhError> {
        let p = Self { buffer };
        p.check_len()?;
        Ok(p)
    }

    /// The buffer holds at least 8 bytes and the `(Header Len + 1) * 8` bytes the header claims.
    /// Bytes after that are not part of the Mobility Header (Payload Proto 59: RFC 8200 §4.7).
    pub fn check_len(&self) -> Result<(), MhError> {
        let have = self.buffer.as_ref().len();
        if have < MIN_MH_LEN {
            return Err(MhError::Truncated {
                need: MIN_MH_LEN,
                have,
            });
        }
        let need = self.total_len();
        if have < need {
            return Err(MhError::Truncated { need, have });
        }
        Ok(())
    }

    /// Payload Proto.
    pub fn payload_proto(&self) -> u8 {
        self.buffer.as_ref()[field::PAYLOAD_PROTO]
    }

    /// Header Len (8-octet units, excluding the first 8 octets).
    pub fn header_len(&self) -> u8 {
        self.buffer.as_ref()[field::HEADER_LEN]
    }

    /// The Mobility Header's length in bytes: `(Header Len + 1) * 8`.
    pub fn total_len(&self) -> usize {
        (usize::from(self.header_len()) + 1) * 8
    }

    /// MH Type.
    pub fn mh_type(&self) -> MhType {
        MhType(self.buffer.as_ref()[field::MH_TYPE])
    }

    /// The Checksum field.
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), field::CHECKSUM.start)
    }

    /// The Mobility Header's bytes (`total_len` of them).
    pub fn bytes(&self) -> &[u8] {
        &self.buffer.as_ref()[..self.total_len()]
    }

    /// The checksum verifies over the pseudo-header with these addresses (see [`checksum`] for
    /// which addresses).
    pub fn verify_checksum(&self, src: Ipv6Addr, dst: Ipv6Addr) -> bool {
        checksum(src, dst, self.bytes()) == 0
    }
}

/// Binding Update flags (RFC 6275 §6.1.7): the 16 bits after the Sequence #. Bits this crate has
/// no name for (assigned by later RFCs or reserved) are kept as they came.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct BuFlags(pub u16);

impl BuFlags {
    /// A: Acknowledge, a Binding Acknowledgement is requested.
    pub const ACK: Self = Self(0x8000);
    /// H: Home Registration.
    pub const HOME: Self = Self(0x4000);
    /// L: Link-Local Address Compatibility.
    pub const LINK_LOCAL: Self = Self(0x2000);
    /// K: Key Management Mobility Capability.
    pub const KEY_MGMT: Self = Self(0x1000);

    /// All bits of `other` are set.
    pub fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// These bits plus `other`'s.
    #[must_use]
    pub fn with(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }
}

impl std::ops::BitOr for BuFlags {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        self.with(rhs)
    }
}

impl fmt::Debug for BuFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BuFlags(")?;
        for (bit, name) in [
            (Self::ACK, "A"),
            (Self::HOME, "H"),
            (Self::LINK_LOCAL, "L"),
            (Self::KEY_MGMT, "K"),
        ] {
            if self.contains(bit) {
                f.write_str(name)?;
            }
        }
        let rest = self.0 & 0x0fff;
        if rest != 0 {
            write!(f, "|{rest:#06x}")?;
        }
        write!(f, ")")
    }
}

/// Binding Acknowledgement flags (RFC 6275 §6.1.8): the octet after the Status. Unnamed bits
/// are kept as they came.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct BaFlags(pub u8);

impl BaFlags {
    /// K: Key Management Mobility Capability.
    pub const KEY_MGMT: Self = Self(0x80);

    /// All bits of `other` are set.
    pub fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }
}

impl fmt::Debug for BaFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BaFlags(")?;
        if self.contains(Self::KEY_MGMT) {
            f.write_str("K")?;
        }
        let rest = self.0 & 0x7f;
        if rest != 0 {
            write!(f, "|{rest:#04x}")?;
        }
        write!(f, ")")
    }
}

/// Converts a Lifetime field (4-second units) to a duration.
pub fn lifetime_to_duration(units: u16) -> Duration {
    LIFETIME_UNIT * u32::from(units)
}

/// Converts a duration to Lifetime units, rounding down and saturating at 65535
/// (about 72.8 hours).
pub fn duration_to_lifetime(d: Duration) -> u16 {
    u16::try_from(d.as_secs() / LIFETIME_UNIT.as_secs()).unwrap_or(u16::MAX)
}

/// One mobility option (RFC 6275 §6.2). Pad1 and PadN are not represented: see the module doc.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MobilityOption {
    /// Binding Refresh Advice (§6.2.4), alignment 2n: the Refresh Interval in 4-second units.
    BindingRefreshAdvice(u16),
    /// Alternate Care-of Address (§6.2.5), alignment 8n+6.
    AlternateCareOfAddress(Ipv6Addr),
    /// Nonce Indices (§6.2.6), alignment 2n.
    NonceIndices {
        /// Home Nonce Index.
        home: u16,
        /// Care-of Nonce Index.
        care_of: u16,
    },
    /// Binding Authorization Data (§6.2.7), alignment 8n+2: the authenticator.
    BindingAuthorizationData(Vec<u8>),
    /// DNS Update (RFC 5026 §6.2), no alignment requirement.
    DnsUpdate(DnsUpdateOption),
    /// An option this crate does not interpret, kept raw (emitted without alignment padding).
    Unknown {
        /// Option Type.
        ty: u8,
        /// Option Data.
        data: Vec<u8>,
    },
}

impl MobilityOption {
    /// The Option Type.
    pub fn option_type(&self) -> u8 {
        match self {
            Self::BindingRefreshAdvice(_) => option_type::BINDING_REFRESH_ADVICE,
            Self::AlternateCareOfAddress(_) => option_type::ALTERNATE_CARE_OF_ADDRESS,
            Self::NonceIndices { .. } => option_type::NONCE_INDICES,
            Self::BindingAuthorizationData(_) => option_type::BINDING_AUTHORIZATION_DATA,
            Self::DnsUpdate(_) => option_type::DNS_UPDATE,
            Self::Unknown { ty, .. } => *ty,
        }
    }

    /// The alignment rule `xn + y` as `(x, y)`, from the start of the Mobility Header (§6.2).
    fn alignment(&self) -> (usize, usize) {
        match self {
            Self::BindingRefreshAdvice(_) | Self::NonceIndices { .. } => (2, 0),
            Self::AlternateCareOfAddress(_) => (8, 6),
            Self::BindingAuthorizationData(_) => (8, 2),
            Self::DnsUpdate(_) | Self::Unknown { .. } => (1, 0),
        }
    }

    /// Length of the Option Data.
    fn data_len(&self) -> usize {
        match self {
            Self::BindingRefreshAdvice(_) => 2,
            Self::AlternateCareOfAddress(_) => 16,
            Self::NonceIndices { .. } => 4,
            Self::BindingAuthorizationData(d) | Self::Unknown { data: d, .. } => d.len(),
            Self::DnsUpdate(o) => 2 + o.mn_identity.len(),
        }
    }

    fn emit(&self, out: &mut Vec<u8>) -> Result<(), MhError> {
        let ty = self.option_type();
        let len = self.data_len();
        let len8 = u8::try_from(len).map_err(|_| MhError::OptionTooLong { ty, len })?;
        out.push(ty);
        out.push(len8);
        match self {
            Self::BindingRefreshAdvice(i) => out.extend_from_slice(&i.to_be_bytes()),
            Self::AlternateCareOfAddress(a) => out.extend_from_slice(&a.octets()),
            Self::NonceIndices { home, care_of } => {
                out.extend_from_slice(&home.to_be_bytes());
                out.extend_from_slice(&care_of.to_be_bytes());
            }
            Self::BindingAuthorizationData(d) | Self::Unknown { data: d, .. } => {
                out.extend_from_slice(d);
            }
            Self::DnsUpdate(o) => {
                out.push(o.status.0);
                out.push(if o.remove { DNS_UPDATE_R } else { 0 });
                out.extend_from_slice(&o.mn_identity);
            }
        }
        Ok(())
    }
}

/// Parses the options area `data`, which starts `base` bytes into the Mobility Header.
fn parse_options(data: &[u8], base: usize) -> Result<Vec<MobilityOption>, MhError> {
    let mut opts = Vec::new();
    let mut i = 0;
    while let Some(&ty) = data.get(i) {
        if ty == option_type::PAD1 {
            i += 1;
            continue;
        }
        let offset = base + i;
        let len = *data
            .get(i + 1)
            .ok_or(MhError::OptionTruncated { ty, offset })?;
        let body = data
            .get(i + 2..i + 2 + usize::from(len))
            .ok_or(MhError::OptionTruncated { ty, offset })?;
        let want = |expected: u8| {
            if len == expected {
                Ok(())
            } else {
                Err(MhError::BadOptionLength { ty, len, expected })
            }
        };
        match ty {
            option_type::PADN => {}
            option_type::BINDING_REFRESH_ADVICE => {
                want(2)?;
                opts.push(MobilityOption::BindingRefreshAdvice(be16(body, 0)));
            }
            option_type::ALTERNATE_CARE_OF_ADDRESS => {
                want(16)?;
                opts.push(MobilityOption::AlternateCareOfAddress(addr_at(body, 0)));
            }
            option_type::NONCE_INDICES => {
                want(4)?;
                opts.push(MobilityOption::NonceIndices {
                    home: be16(body, 0),
                    care_of: be16(body, 2),
                });
            }
            option_type::BINDING_AUTHORIZATION_DATA => {
                opts.push(MobilityOption::BindingAuthorizationData(body.to_vec()));
            }
            option_type::DNS_UPDATE => {
                // Status, flags/reserved, then the MN identity (possibly empty here; the
                // home agent answers an unusable identity with a failure status).
                if body.len() < 2 {
                    return Err(MhError::BadOptionLength {
                        ty,
                        len,
                        expected: 2,
                    });
                }
                opts.push(MobilityOption::DnsUpdate(DnsUpdateOption {
                    status: DnsUpdateStatus(body[0]),
                    remove: body[1] & DNS_UPDATE_R != 0,
                    mn_identity: body[2..].to_vec(),
                }));
            }
            _ => opts.push(MobilityOption::Unknown {
                ty,
                data: body.to_vec(),
            }),
        }
        i += 2 + usize::from(len);
    }
    Ok(opts)
}

/// Appends `n` bytes of padding: Pad1 for one, PadN for more (§6.2.2, §6.2.3).
fn push_padding(out: &mut Vec<u8>, n: usize) {
    match n {
        0 => {}
        1 => out.push(option_type::PAD1),
        _ => {
            // n < 8 here (alignment padding is at most 7 bytes).
            out.push(option_type::PADN);
            out.push((n - 2) as u8);
            out.resize(out.len() + n - 2, 0);
        }
    }
}

/// Appends the options with their alignment padding, then pads the Mobility Header (which
/// starts at `out[0]`) to a multiple of 8 octets.
fn emit_options(opts: &[MobilityOption], out: &mut Vec<u8>) -> Result<(), MhError> {
    for o in opts {
        let (x, y) = o.alignment();
        let pad = (y + x - out.len() % x) % x;
        push_padding(out, pad);
        o.emit(out)?;
    }
    let pad = (8 - out.len() % 8) % 8;
    push_padding(out, pad);
    Ok(())
}

/// Binding Refresh Request (RFC 6275 §6.1.2, MH Type 0).
///
/// ```text
///                                 +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///                                 |          Reserved             |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// .                        Mobility options                       .
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct BindingRefreshRequest {
    /// Mobility options (none are defined for this message).
    pub options: Vec<MobilityOption>,
}

/// Binding Update (RFC 6275 §6.1.7, MH Type 5).
///
/// ```text
///                                 +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///                                 |          Sequence #           |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |A|H|L|K|        Reserved       |           Lifetime            |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// .                        Mobility options                       .
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
///
/// Valid options: Binding Authorization Data, Nonce Indices, Alternate Care-of Address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BindingUpdate {
    /// Sequence #.
    pub sequence: u16,
    /// A, H, L, K and the other flag bits.
    pub flags: BuFlags,
    /// Lifetime in 4-second units; 0 asks to delete the binding.
    pub lifetime: u16,
    /// Mobility options.
    pub options: Vec<MobilityOption>,
}

impl BindingUpdate {
    /// The Lifetime as a duration.
    pub fn lifetime_duration(&self) -> Duration {
        lifetime_to_duration(self.lifetime)
    }

    /// The first Alternate Care-of Address option (§6.2.5), if any. RFC 6275 §11.7.1: home
    /// registrations carry it, as ESP does not protect the IPv6 source address.
    pub fn alternate_care_of_address(&self) -> Option<Ipv6Addr> {
        self.options.iter().find_map(|o| match o {
            MobilityOption::AlternateCareOfAddress(a) => Some(*a),
            _ => None,
        })
    }

    /// The first DNS Update option (RFC 5026 §6.2), if any: the mobile node asks the home
    /// agent to update or remove its name.
    pub fn dns_update(&self) -> Option<&DnsUpdateOption> {
        find_dns_update(&self.options)
    }
}

fn find_dns_update(options: &[MobilityOption]) -> Option<&DnsUpdateOption> {
    options.iter().find_map(|o| match o {
        MobilityOption::DnsUpdate(d) => Some(d),
        _ => None,
    })
}

/// Binding Acknowledgement (RFC 6275 §6.1.8, MH Type 6).
///
/// ```text
///                                 +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///                                 |    Status     |K|  Reserved   |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |           Sequence #          |           Lifetime            |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// .                        Mobility options                       .
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
///
/// Valid options: Binding Authorization Data, Binding Refresh Advice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BindingAck {
    /// Status.
    pub status: BaStatus,
    /// K and the other flag bits.
    pub flags: BaFlags,
    /// Sequence #: the Binding Update's, or the last accepted one for status 135.
    pub sequence: u16,
    /// Granted lifetime in 4-second units.
    pub lifetime: u16,
    /// Mobility options.
    pub options: Vec<MobilityOption>,
}

impl BindingAck {
    /// The Lifetime as a duration.
    pub fn lifetime_duration(&self) -> Duration {
        lifetime_to_duration(self.lifetime)
    }

    /// The first Binding Refresh Advice option (§6.2.4) as a duration, if any.
    pub fn refresh_advice(&self) -> Option<Duration> {
        self.options.iter().find_map(|o| match o {
            MobilityOption::BindingRefreshAdvice(i) => Some(lifetime_to_duration(*i)),
            _ => None,
        })
    }

    /// The first DNS Update option (RFC 5026 §6.2), if any: the home agent's result.
    pub fn dns_update(&self) -> Option<&DnsUpdateOption> {
        find_dns_update(&self.options)
    }
}

/// Binding Error (RFC 6275 §6.1.9, MH Type 7).
///
/// ```text
///                                 +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///                                 |     Status    |   Reserved    |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// +                          Home Address                         +
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// .                        Mobility options                       .
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BindingError {
    /// Status.
    pub status: BeStatus,
    /// The home address from the offending packet's Home Address option (or unspecified).
    pub home_address: Ipv6Addr,
    /// Mobility options.
    pub options: Vec<MobilityOption>,
}

/// A Mobility Header message of one of the types this crate implements.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// Binding Refresh Request (0).
    BindingRefreshRequest(BindingRefreshRequest),
    /// Binding Update (5).
    BindingUpdate(BindingUpdate),
    /// Binding Acknowledgement (6).
    BindingAck(BindingAck),
    /// Binding Error (7).
    BindingError(BindingError),
}

impl Message {
    /// Reads a Mobility Header from `data` (bytes after its `(Header Len + 1) * 8` are
    /// ignored). With `pseudo = Some((src, dst))` the checksum is verified first (see
    /// [`checksum`] for which addresses).
    ///
    /// The checks of RFC 6275 §9.2, in order: length, Payload Proto 59, checksum, known MH
    /// Type, Header Len at least the type's fixed part. [`MhError::response`] says what to
    /// send back.
    pub fn parse(data: &[u8], pseudo: Option<(Ipv6Addr, Ipv6Addr)>) -> Result<Self, MhError> {
        let p = MhPacket::new_checked(data)?;
        if p.payload_proto() != IPPROTO_NONE {
            return Err(MhError::BadPayloadProto(p.payload_proto()));
        }
        if let Some((src, dst)) = pseudo
            && !p.verify_checksum(src, dst)
        {
            return Err(MhError::BadChecksum);
        }
        Self::parse_packet(&p)
    }

    /// Reads the message from a checked view, without the checksum and Payload Proto checks.
    pub fn parse_packet(p: &MhPacket<&[u8]>) -> Result<Self, MhError> {
        let ty = p.mh_type();
        let (Some(min_hl), Some(opt_off)) = (ty.min_header_len(), ty.options_offset()) else {
            return Err(MhError::UnknownMhType(ty));
        };
        if p.header_len() < min_hl {
            return Err(MhError::HeaderLenTooShort {
                mh_type: ty,
                header_len: p.header_len(),
            });
        }
        let b = p.bytes();
        // Header Len >= the minimum, so the fixed part (opt_off <= total_len) is in `b`.
        let options = parse_options(&b[opt_off..], opt_off)?;
        Ok(match ty {
            MhType::BINDING_REFRESH_REQUEST => {
                Self::BindingRefreshRequest(BindingRefreshRequest { options })
            }
            MhType::BINDING_UPDATE => Self::BindingUpdate(BindingUpdate {
                sequence: be16(b, field::BU_SEQUENCE.start),
                flags: BuFlags(be16(b, field::BU_FLAGS.start)),
                lifetime: be16(b, field::BU_LIFETIME.start),
                options,
            }),
            MhType::BINDING_ACK => Self::BindingAck(BindingAck {
                status: BaStatus(b[field::BA_STATUS]),
                flags: BaFlags(b[field::BA_FLAGS]),
                sequence: be16(b, field::BA_SEQUENCE.start),
                lifetime: be16(b, field::BA_LIFETIME.start),
                options,
            }),
            _ => Self::BindingError(BindingError {
                status: BeStatus(b[field::BE_STATUS]),
                home_address: addr_at(b, field::BE_HOME_ADDRESS.start),
                options,
            }),
        })
    }

    /// The MH Type.
    pub fn mh_type(&self) -> MhType {
        match self {
            Self::BindingRefreshRequest(_) => MhType::BINDING_REFRESH_REQUEST,
            Self::BindingUpdate(_) => MhType::BINDING_UPDATE,
            Self::BindingAck(_) => MhType::BINDING_ACK,
            Self::BindingError(_) => MhType::BINDING_ERROR,
        }
    }

    /// The mobility options.
    pub fn options(&self) -> &[MobilityOption] {
        match self {
            Self::BindingRefreshRequest(m) => &m.options,
            Self::BindingUpdate(m) => &m.options,
            Self::BindingAck(m) => &m.options,
            Self::BindingError(m) => &m.options,
        }
    }

    /// Writes the Mobility Header into `out` (cleared first), padded to a multiple of 8, with
    /// the checksum over the pseudo-header `src`, `dst` (see [`checksum`] for which addresses).
    /// Returns the length. On error `out` is left empty.
    pub fn emit(&self, src: Ipv6Addr, dst: Ipv6Addr, out: &mut Vec<u8>) -> Result<usize, MhError> {
        out.clear();
        if let Err(e) = self.emit_body(out) {
            out.clear();
            return Err(e);
        }
        let len = out.len();
        if len > MAX_MH_LEN {
            out.clear();
            return Err(MhError::TooLong(len));
        }
        // len is a multiple of 8 in 8..=2048.
        out[field::HEADER_LEN] = (len / 8 - 1) as u8;
        let c = checksum(src, dst, out);
        out[field::CHECKSUM].copy_from_slice(&c.to_be_bytes());
        Ok(len)
    }

    /// The message as bytes (see [`Self::emit`]).
    pub fn to_bytes(&self, src: Ipv6Addr, dst: Ipv6Addr) -> Result<Vec<u8>, MhError> {
        let mut out = Vec::new();
        self.emit(src, dst, &mut out)?;
        Ok(out)
    }

    fn emit_body(&self, out: &mut Vec<u8>) -> Result<(), MhError> {
        // Payload Proto, Header Len (set later), MH Type, Reserved, Checksum (set later).
        out.extend_from_slice(&[IPPROTO_NONE, 0, self.mh_type().0, 0, 0, 0]);
        match self {
            Self::BindingRefreshRequest(_) => out.extend_from_slice(&[0, 0]),
            Self::BindingUpdate(m) => {
                out.extend_from_slice(&m.sequence.to_be_bytes());
                out.extend_from_slice(&m.flags.0.to_be_bytes());
                out.extend_from_slice(&m.lifetime.to_be_bytes());
            }
            Self::BindingAck(m) => {
                out.push(m.status.0);
                out.push(m.flags.0);
                out.extend_from_slice(&m.sequence.to_be_bytes());
                out.extend_from_slice(&m.lifetime.to_be_bytes());
            }
            Self::BindingError(m) => {
                out.push(m.status.0);
                out.push(0);
                out.extend_from_slice(&m.home_address.octets());
            }
        }
        emit_options(self.options(), out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    const HOA: &str = "2001:db8:1::1000";
    const HA: &str = "2001:db8:1::1";

    /// A home registration as UMIP sends it: A|H, Alternate CoA after PadN(0).
    fn bu_bytes() -> Vec<u8> {
        let mut b = vec![
            59, 3, 5, 0, 0, 0, // proto, len 3 (32 bytes), BU, reserved, checksum
            0x12, 0x34, // seq
            0xc0, 0x00, // A|H
            0x00, 0x96, // lifetime 150 (600 s)
            1, 0, // PadN(0) -> offset 14 = 8n+6
            3, 16, // Alternate CoA
        ];
        b.extend_from_slice(&a("2001:db8:ff::2").octets());
        let c = checksum(a(HOA), a(HA), &b);
        b[4..6].copy_from_slice(&c.to_be_bytes());
        b
    }

    #[test]
    fn binding_update_golden() {
        let b = bu_bytes();
        let p = MhPacket::new_checked(&b[..]).unwrap();
        assert_eq!(p.total_len(), 32);
        assert!(p.verify_checksum(a(HOA), a(HA)));
        assert!(!p.verify_checksum(a(HOA), a("2001:db8:1::2")));
        let m = Message::parse(&b, Some((a(HOA), a(HA)))).unwrap();
        let Message::BindingUpdate(bu) = &m else {
            panic!("not a BU: {m:?}")
        };
        assert_eq!(bu.sequence, 0x1234);
        assert!(bu.flags.contains(BuFlags::ACK | BuFlags::HOME));
        assert!(!bu.flags.contains(BuFlags::KEY_MGMT));
        assert_eq!(bu.lifetime_duration(), Duration::from_secs(600));
        assert_eq!(bu.alternate_care_of_address(), Some(a("2001:db8:ff::2")));
        assert_eq!(m.to_bytes(a(HOA), a(HA)).unwrap(), b);
        assert_eq!(format!("{:?}", bu.flags), "BuFlags(AH)");
    }

    #[test]
    fn checksum_is_checked() {
        let mut b = bu_bytes();
        b[7] ^= 1;
        assert_eq!(
            Message::parse(&b, Some((a(HOA), a(HA)))),
            Err(MhError::BadChecksum)
        );
        // Without addresses the checksum is not looked at.
        assert!(Message::parse(&b, None).is_ok());
        assert_eq!(MhError::BadChecksum.response(), MhErrorResponse::Discard);
    }

    #[test]
    fn binding_ack_and_padding() {
        // BA with no options: 12 bytes + PadN(2) = 16.
        let ba = Message::BindingAck(BindingAck {
            status: BaStatus::ACCEPTED,
            flags: BaFlags::default(),
            sequence: 7,
            lifetime: 150,
            options: vec![],
        });
        let b = ba.to_bytes(a(HA), a(HOA)).unwrap();
        assert_eq!(b.len(), 16);
        assert_eq!(b[1], 1);
        assert_eq!(&b[6..16], &[0, 0, 0, 7, 0, 150, 1, 2, 0, 0]);
        assert_eq!(Message::parse(&b, Some((a(HA), a(HOA)))).unwrap(), ba);

        // Binding Refresh Advice (2n) right after the fixed part: 16 bytes, no padding.
        let ba = Message::BindingAck(BindingAck {
            status: BaStatus::ACCEPTED,
            flags: BaFlags::KEY_MGMT,
            sequence: 7,
            lifetime: 150,
            options: vec![MobilityOption::BindingRefreshAdvice(100)],
        });
        let b = ba.to_bytes(a(HA), a(HOA)).unwrap();
        assert_eq!(&b[6..], &[0, 0x80, 0, 7, 0, 150, 2, 2, 0, 100]);
        let back = Message::parse(&b, Some((a(HA), a(HOA)))).unwrap();
        assert_eq!(back, ba);
        let Message::BindingAck(back) = back else {
            unreachable!()
        };
        assert_eq!(back.refresh_advice(), Some(Duration::from_secs(400)));

        // Binding Authorization Data (8n+2) at offset 12 needs 6 bytes of padding.
        let ba = Message::BindingAck(BindingAck {
            status: BaStatus::SEQUENCE_OUT_OF_WINDOW,
            flags: BaFlags::default(),
            sequence: 7,
            lifetime: 0,
            options: vec![MobilityOption::BindingAuthorizationData(vec![0xaa; 12])],
        });
        let b = ba.to_bytes(a(HA), a(HOA)).unwrap();
        assert_eq!(&b[12..18], &[1, 4, 0, 0, 0, 0]);
        assert_eq!(b[18], 5); // option type at 18 = 8*2+2
        assert_eq!(b.len() % 8, 0);
        assert_eq!(Message::parse(&b, None).unwrap(), ba);
    }

    #[test]
    fn alignment_of_every_option() {
        // Each option lands on its xn+y boundary whatever precedes it.
        let opts = vec![
            MobilityOption::Unknown {
                ty: 200,
                data: vec![1],
            },
            MobilityOption::AlternateCareOfAddress(a("2001:db8::9")),
            MobilityOption::Unknown {
                ty: 201,
                data: vec![],
            },
            MobilityOption::NonceIndices {
                home: 1,
                care_of: 2,
            },
            MobilityOption::Unknown {
                ty: 202,
                data: vec![9],
            },
            MobilityOption::BindingAuthorizationData(vec![5; 3]),
            MobilityOption::BindingRefreshAdvice(9),
        ];
        let m = Message::BindingUpdate(BindingUpdate {
            sequence: 1,
            flags: BuFlags::HOME,
            lifetime: 1,
            options: opts.clone(),
        });
        let b = m.to_bytes(a(HOA), a(HA)).unwrap();
        assert_eq!(b.len() % 8, 0);
        // Walk the emitted options and check each offset.
        let mut i = 12;
        while i < b.len() {
            match b[i] {
                0 => i += 1,
                ty => {
                    match ty {
                        3 => assert_eq!(i % 8, 6),
                        5 => assert_eq!(i % 8, 2),
                        2 | 4 => assert_eq!(i % 2, 0),
                        _ => {}
                    }
                    i += 2 + usize::from(b[i + 1]);
                }
            }
        }
        assert_eq!(Message::parse(&b, Some((a(HOA), a(HA)))).unwrap(), m);
    }

    #[test]
    fn brr_and_be() {
        let brr = Message::BindingRefreshRequest(BindingRefreshRequest::default());
        let b = brr.to_bytes(a(HA), a(HOA)).unwrap();
        assert_eq!(b.len(), 8);
        assert_eq!(&b[..4], &[59, 0, 0, 0]);
        assert_eq!(Message::parse(&b, Some((a(HA), a(HOA)))).unwrap(), brr);

        let be = Message::BindingError(BindingError {
            status: BeStatus::UNRECOGNIZED_MH_TYPE,
            home_address: a(HOA),
            options: vec![],
        });
        let b = be.to_bytes(a(HA), a(HOA)).unwrap();
        assert_eq!(b.len(), 24);
        assert_eq!(b[1], 2);
        assert_eq!(Message::parse(&b, Some((a(HA), a(HOA)))).unwrap(), be);
    }

    #[test]
    fn section_9_2_checks() {
        let mut b = bu_bytes();
        b[0] = 6;
        let e = Message::parse(&b, None).unwrap_err();
        assert_eq!(e, MhError::BadPayloadProto(6));
        assert_eq!(
            e.response(),
            MhErrorResponse::ParameterProblem { pointer: 0 }
        );

        // A BU needs Header Len >= 1.
        let b = [59, 0, 5, 0, 0, 0, 0, 0];
        let e = Message::parse(&b, None).unwrap_err();
        assert_eq!(
            e,
            MhError::HeaderLenTooShort {
                mh_type: MhType::BINDING_UPDATE,
                header_len: 0
            }
        );
        assert_eq!(
            e.response(),
            MhErrorResponse::ParameterProblem { pointer: 1 }
        );
        // A BE needs Header Len >= 2.
        let b = [59, 1, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        assert!(matches!(
            Message::parse(&b, None),
            Err(MhError::HeaderLenTooShort { .. })
        ));

        // Unknown MH Type -> Binding Error status 2.
        for t in [1u8, 4, 8, 255] {
            let b = [59, 0, t, 0, 0, 0, 0, 0];
            let e = Message::parse(&b, None).unwrap_err();
            assert_eq!(e, MhError::UnknownMhType(MhType(t)));
            assert_eq!(
                e.response(),
                MhErrorResponse::BindingError(BeStatus::UNRECOGNIZED_MH_TYPE)
            );
        }

        // Length checks.
        assert_eq!(
            Message::parse(&[59, 0, 0], None),
            Err(MhError::Truncated { need: 8, have: 3 })
        );
        assert_eq!(
            Message::parse(&[59, 1, 0, 0, 0, 0, 0, 0], None),
            Err(MhError::Truncated { need: 16, have: 8 })
        );
        // Trailing bytes after the Mobility Header are ignored.
        let mut b = bu_bytes();
        b.extend_from_slice(&[0xff; 5]);
        assert!(Message::parse(&b, Some((a(HOA), a(HA)))).is_ok());
    }

    #[test]
    fn option_errors() {
        // Alternate CoA with length 15.
        let mut b = vec![59, 1, 0, 0, 0, 0, 0, 0, 3, 6, 0, 0, 0, 0, 0, 0];
        assert_eq!(
            Message::parse(&b, None),
            Err(MhError::BadOptionLength {
                ty: 3,
                len: 6,
                expected: 16
            })
        );
        // Option running past the end.
        b[9] = 7;
        assert_eq!(
            Message::parse(&b, None),
            Err(MhError::OptionTruncated { ty: 3, offset: 8 })
        );
        // Lone type byte at the very end.
        let b = [59, 1, 5, 0, 0, 0, 0, 1, 0xc0, 0, 0, 1, 0, 0, 0, 1];
        assert_eq!(
            Message::parse(&b, None),
            Err(MhError::OptionTruncated { ty: 1, offset: 15 })
        );
        // Binding Refresh Advice with length 3, Nonce Indices with length 2.
        let b = [59, 1, 0, 0, 0, 0, 0, 0, 2, 3, 0, 0, 0, 1, 0, 0];
        assert!(matches!(
            Message::parse(&b, None),
            Err(MhError::BadOptionLength { ty: 2, .. })
        ));
        let b = [59, 1, 0, 0, 0, 0, 0, 0, 4, 2, 0, 0, 1, 0, 0, 0];
        assert!(matches!(
            Message::parse(&b, None),
            Err(MhError::BadOptionLength { ty: 4, .. })
        ));
        // Unknown options round-trip raw; non-canonical padding is accepted.
        let b = [59, 1, 0, 0, 0, 0, 0, 0, 0, 0, 99, 2, 7, 7, 0, 0];
        let m = Message::parse(&b, None).unwrap();
        assert_eq!(
            m.options(),
            &[MobilityOption::Unknown {
                ty: 99,
                data: vec![7, 7]
            }]
        );
    }

    #[test]
    fn emit_limits() {
        let big = Message::BindingRefreshRequest(BindingRefreshRequest {
            options: vec![MobilityOption::Unknown {
                ty: 50,
                data: vec![0; 256],
            }],
        });
        let mut out = vec![1, 2, 3];
        assert_eq!(
            big.emit(a(HA), a(HOA), &mut out),
            Err(MhError::OptionTooLong { ty: 50, len: 256 })
        );
        assert!(out.is_empty());
        let big = Message::BindingRefreshRequest(BindingRefreshRequest {
            options: vec![
                MobilityOption::Unknown {
                    ty: 50,
                    data: vec![0; 255],
                };
                9
            ],
        });
        assert!(matches!(
            big.emit(a(HA), a(HOA), &mut out),
            Err(MhError::TooLong(_))
        ));
        assert!(out.is_empty());
        // The largest message still fits.
        let max = Message::BindingRefreshRequest(BindingRefreshRequest {
            options: vec![
                MobilityOption::Unknown {
                    ty: 50,
                    data: vec![0; 253],
                };
                8
            ],
        });
        let n = max.emit(a(HA), a(HOA), &mut out).unwrap();
        assert_eq!(n, 2048);
        assert_eq!(out[1], 255);
        assert_eq!(Message::parse(&out, Some((a(HA), a(HOA)))).unwrap(), max);
    }

    #[test]
    fn dns_update_option() {
        // RFC 5026 §6.2: type 17, length 2 + identity; Status, R|Reserved, MN identity.
        let req = DnsUpdateOption::request("mn1.example.", false).unwrap();
        assert_eq!(req.mn_identity, b"\x03mn1\x07example\x00");
        assert_eq!(req.fqdn().as_deref(), Some("mn1.example."));
        let bu = Message::BindingUpdate(BindingUpdate {
            sequence: 7,
            flags: BuFlags::ACK | BuFlags::HOME,
            lifetime: 150,
            options: vec![MobilityOption::DnsUpdate(req.clone())],
        });
        let bytes = bu.to_bytes(a(HOA), a(HA)).unwrap();
        assert_eq!(
            &bytes[12..12 + 4 + 13],
            b"\x11\x0f\x00\x00\x03mn1\x07example\x00"
        );
        assert_eq!(bytes.len() % 8, 0);
        let back = Message::parse(&bytes, Some((a(HOA), a(HA)))).unwrap();
        assert_eq!(back, bu);
        let Message::BindingUpdate(b) = &back else {
            panic!("BU")
        };
        assert_eq!(b.dns_update(), Some(&req));

        // The answer in the BA: status and R flag.
        let removed = DnsUpdateOption::request("MN1.example", true).unwrap();
        let ans = DnsUpdateOption::answer(&removed, DnsUpdateStatus::ADMINISTRATIVELY_PROHIBITED);
        let ba = Message::BindingAck(BindingAck {
            status: BaStatus::ACCEPTED,
            flags: BaFlags(0),
            sequence: 7,
            lifetime: 150,
            options: vec![MobilityOption::DnsUpdate(ans.clone())],
        });
        let bytes = ba.to_bytes(a(HA), a(HOA)).unwrap();
        assert_eq!(&bytes[12..16], &[17, 15, 129, 0x80]);
        let Message::BindingAck(back) = Message::parse(&bytes, Some((a(HA), a(HOA)))).unwrap()
        else {
            panic!("BA")
        };
        let got = back.dns_update().unwrap();
        assert_eq!(got, &ans);
        assert!(got.remove);
        assert_eq!(got.fqdn().as_deref(), Some("MN1.example."));
        assert!(!got.status.is_success());
        assert_eq!(got.status.to_string(), "Administratively prohibited");

        // Reserved bits are ignored; a plain-text identity is read too; an empty one is kept.
        let b = [59, 2, 0, 0, 0, 0, 0, 0, 17, 14, 0, 0x7f]
            .into_iter()
            .chain(*b"mn2.example.")
            .collect::<Vec<u8>>();
        let m = Message::parse(&b, None).unwrap();
        let MobilityOption::DnsUpdate(o) = &m.options()[0] else {
            panic!("{m:?}")
        };
        assert!(!o.remove);
        assert_eq!(o.status, DnsUpdateStatus::PERFORMED);
        assert_eq!(o.fqdn().as_deref(), Some("mn2.example."));
        let b = [59, 1, 0, 0, 0, 0, 0, 0, 17, 2, 130, 0, 1, 0, 0, 0];
        let m = Message::parse(&b, None).unwrap();
        let MobilityOption::DnsUpdate(o) = &m.options()[0] else {
            panic!("{m:?}")
        };
        assert_eq!(o.status, DnsUpdateStatus::DNS_UPDATE_FAILED);
        assert!(o.mn_identity.is_empty());
        assert_eq!(o.fqdn(), None);
        // Shorter than Status + flags.
        let b = [59, 1, 0, 0, 0, 0, 0, 0, 17, 1, 0, 0, 0, 0, 0, 0];
        assert_eq!(
            Message::parse(&b, None),
            Err(MhError::BadOptionLength {
                ty: 17,
                len: 1,
                expected: 2
            })
        );
    }

    #[test]
    fn dns_update_identities() {
        let long = "a".repeat(63);
        assert!(DnsUpdateOption::request(&format!("{long}.example"), false).is_some());
        assert!(DnsUpdateOption::request(&format!("a{long}.example"), false).is_none());
        assert!(DnsUpdateOption::request("a..example", false).is_none());
        assert!(DnsUpdateOption::request("", false).is_none());
        assert!(DnsUpdateOption::request("bad name.example", false).is_none());
        let too_long = [long.as_str(); 4].join(".");
        assert!(DnsUpdateOption::request(&too_long, false).is_none());
        let o = |id: &[u8]| DnsUpdateOption {
            status: DnsUpdateStatus::PERFORMED,
            remove: false,
            mn_identity: id.to_vec(),
        };
        // Wire form must fill the bytes exactly; compression pointers are not names here.
        assert_eq!(o(b"\x03mn1\x00\x00").fqdn(), None);
        assert_eq!(o(b"\x03mn1\xc0\x00").fqdn(), None);
        assert_eq!(o(b"\x00").fqdn(), None);
        assert_eq!(o(b"mn1.example").fqdn().as_deref(), Some("mn1.example."));
        assert_eq!(o(b"mn1 example").fqdn(), None);
        assert_eq!(
            format!("{:?}", DnsUpdateStatus(130)),
            "DNS Update Failed (130)"
        );
        assert_eq!(DnsUpdateStatus(7).to_string(), "DNS update status 7");
        assert!(DnsUpdateStatus::PERFORMED.is_success());
    }

    #[test]
    fn lifetime_units() {
        assert_eq!(duration_to_lifetime(Duration::from_secs(600)), 150);
        assert_eq!(duration_to_lifetime(Duration::from_secs(7)), 1);
        assert_eq!(duration_to_lifetime(Duration::from_secs(1_000_000)), 65535);
        assert_eq!(lifetime_to_duration(65535), Duration::from_secs(262_140));
    }

    fn arb_option() -> proptest::strategy::BoxedStrategy<MobilityOption> {
        use proptest::prelude::*;
        prop_oneof![
            any::<u16>().prop_map(MobilityOption::BindingRefreshAdvice),
            any::<[u8; 16]>().prop_map(|o| MobilityOption::AlternateCareOfAddress(o.into())),
            (any::<u16>(), any::<u16>())
                .prop_map(|(home, care_of)| MobilityOption::NonceIndices { home, care_of }),
            proptest::collection::vec(any::<u8>(), 0..40)
                .prop_map(MobilityOption::BindingAuthorizationData),
            (
                any::<u8>(),
                any::<bool>(),
                proptest::collection::vec(any::<u8>(), 0..40)
            )
                .prop_map(|(status, remove, mn_identity)| {
                    MobilityOption::DnsUpdate(DnsUpdateOption {
                        status: DnsUpdateStatus(status),
                        remove,
                        mn_identity,
                    })
                }),
            (6u8..=255, proptest::collection::vec(any::<u8>(), 0..40))
                .prop_filter("17 is the DNS Update option", |(ty, _)| {
                    *ty != option_type::DNS_UPDATE
                })
                .prop_map(|(ty, data)| MobilityOption::Unknown { ty, data }),
        ]
        .boxed()
    }

    fn arb_message() -> impl proptest::strategy::Strategy<Value = Message> {
        use proptest::prelude::*;
        let opts = proptest::collection::vec(arb_option(), 0..6);
        prop_oneof![
            opts.clone()
                .prop_map(
                    |options| Message::BindingRefreshRequest(BindingRefreshRequest { options })
                ),
            (any::<u16>(), any::<u16>(), any::<u16>(), opts.clone()).prop_map(
                |(sequence, f, lifetime, options)| Message::BindingUpdate(BindingUpdate {
                    sequence,
                    flags: BuFlags(f),
                    lifetime,
                    options
                })
            ),
            (
                any::<u8>(),
                any::<u8>(),
                any::<u16>(),
                any::<u16>(),
                opts.clone()
            )
                .prop_map(|(s, f, sequence, lifetime, options)| Message::BindingAck(
                    BindingAck {
                        status: BaStatus(s),
                        flags: BaFlags(f),
                        sequence,
                        lifetime,
                        options
                    }
                )),
            (any::<u8>(), any::<[u8; 16]>(), opts).prop_map(|(s, h, options)| {
                Message::BindingError(BindingError {
                    status: BeStatus(s),
                    home_address: h.into(),
                    options,
                })
            }),
        ]
    }

    proptest::proptest! {
        #[test]
        fn emit_parse_round_trip(m in arb_message(), src: [u8; 16], dst: [u8; 16]) {
            let (src, dst) = (Ipv6Addr::from(src), Ipv6Addr::from(dst));
            let b = m.to_bytes(src, dst).unwrap();
            proptest::prop_assert_eq!(b.len() % 8, 0);
            let back = Message::parse(&b, Some((src, dst))).unwrap();
            proptest::prop_assert_eq!(&back, &m);
            // Canonical bytes: emit(parse(x)) == x.
            proptest::prop_assert_eq!(back.to_bytes(src, dst).unwrap(), b);
        }

        #[test]
        fn parse_never_panics(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            let src = Ipv6Addr::LOCALHOST;
            if let Ok(m) = Message::parse(&data, None) {
                let b = m.to_bytes(src, src).unwrap();
                proptest::prop_assert_eq!(Message::parse(&b, Some((src, src))).unwrap(), m);
            }
        }
    }
}
