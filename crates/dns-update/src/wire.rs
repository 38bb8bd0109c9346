//! The DNS message as UPDATE uses it (RFC 2136 §2, RFC 1035 §4.1): building the request and
//! reading the response.
//!
//! # The UPDATE message (RFC 2136 §2)
//!
//! ```text
//! +---------------------+
//! |        Header       |   ID, QR, Opcode = 5 (UPDATE), RCODE; ZOCOUNT, PRCOUNT, UPCOUNT, ADCOUNT
//! +---------------------+
//! |         Zone        |   one entry: ZNAME, ZTYPE = SOA, ZCLASS = IN        (§2.3)
//! +---------------------+
//! |    Prerequisite     |   none here                                         (§2.4)
//! +---------------------+
//! |        Update       |   "Delete an RRset" CLASS ANY, TTL 0, no RDATA      (§2.5.2)
//! +---------------------+   "Add to an RRset" CLASS IN, TTL, RDATA            (§2.5.1)
//! |   Additional Data   |   the TSIG record, last (RFC 8945 §4.2)
//! +---------------------+
//! ```
//!
//! Replacing a name's addresses is one message with a delete of the AAAA RRset followed by
//! the adds; RFC 2136 §3.4.2 applies the update section in order and the whole message
//! atomically. Names are emitted uncompressed.
//!
//! Responses are read by [`Response::parse`]: the header, then every section skipped record
//! by record (names may be compressed; see [`Name::read`] for the loop protection), with the
//! TSIG record, which must be the last of the additional section (RFC 8945 §5.1), picked out.
//! The parser never panics and does work linear in the message length.

use std::fmt;
use std::net::Ipv6Addr;

use crate::name::Name;

/// Why bytes are not a DNS message we can read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// The message ends inside a field.
    #[error("DNS message truncated in {what} at offset {offset}")]
    Truncated {
        /// What was being read.
        what: &'static str,
        /// Where.
        offset: usize,
    },
    /// A compression pointer that does not point before the labels being read, or too many.
    #[error("bad compression pointer at offset {offset} (to {target})")]
    BadPointer {
        /// Offset of the pointer.
        offset: usize,
        /// Where it points.
        target: usize,
    },
    /// Label type 01 or 10 (RFC 6891 §5).
    #[error("unsupported label type at offset {offset}")]
    BadLabelType {
        /// Offset of the length octet.
        offset: usize,
    },
    /// A name over 255 octets.
    #[error("domain name at offset {offset} longer than 255 octets")]
    NameTooLong {
        /// Where the name starts.
        offset: usize,
    },
    /// A TSIG record that is not the last record of the additional section (RFC 8945 §5.1),
    /// or outside it.
    #[error("TSIG record at offset {offset} is not the last additional record")]
    TsigNotLast {
        /// Where the TSIG record starts.
        offset: usize,
    },
    /// A TSIG record whose RDATA is malformed (RFC 8945 §4.2).
    #[error("malformed TSIG RDATA at offset {offset}")]
    BadTsig {
        /// Where the TSIG RDATA starts.
        offset: usize,
    },
    /// Bytes after the last record.
    #[error("{0} bytes after the last record")]
    TrailingData(usize),
}

macro_rules! open_enum {
    ($(#[$m:meta])* $name:ident($int:ty) { $($(#[$cm:meta])* $c:ident = $v:expr, $text:expr;)* }) => {
        $(#[$m])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub $int);

        impl $name {
            $($(#[$cm])* pub const $c: Self = Self($v);)*

            /// The registry's name for this value, if it is one we know.
            pub fn name(self) -> Option<&'static str> {
                match self {
                    $(Self::$c => Some($text),)*
                    _ => None,
                }
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.name() {
                    Some(n) => write!(f, "{n}"),
                    None => write!(f, "{}({})", stringify!($name), self.0),
                }
            }
        }
    };
}

open_enum! {
    /// A response code: the 4-bit RCODE of the header (RFC 1035 §4.1.1, RFC 2136 §2.2) or the
    /// 16-bit Error field of a TSIG record (RFC 8945 §4.2, §5.2), IANA "DNS RCODEs". Display
    /// prints the registry's mnemonic (`NOTAUTH`, `BADSIG`) or `RCODE<n>`.
    Rcode(u16) {
        /// No error.
        NOERROR = 0, "NOERROR";
        /// Format error.
        FORMERR = 1, "FORMERR";
        /// Server failure.
        SERVFAIL = 2, "SERVFAIL";
        /// Name does not exist.
        NXDOMAIN = 3, "NXDOMAIN";
        /// Not implemented.
        NOTIMP = 4, "NOTIMP";
        /// Refused (RFC 2136: e.g. the update policy does not allow it).
        REFUSED = 5, "REFUSED";
        /// A name exists that should not (RFC 2136).
        YXDOMAIN = 6, "YXDOMAIN";
        /// An RRset exists that should not (RFC 2136).
        YXRRSET = 7, "YXRRSET";
        /// An RRset that should exist does not (RFC 2136).
        NXRRSET = 8, "NXRRSET";
        /// Not authoritative for the zone (RFC 2136), or not authorized (RFC 8945: TSIG failed).
        NOTAUTH = 9, "NOTAUTH";
        /// A name is not within the zone (RFC 2136).
        NOTZONE = 10, "NOTZONE";
        /// TSIG signature failure (RFC 8945 §5.2.2).
        BADSIG = 16, "BADSIG";
        /// Key not recognized (RFC 8945 §5.2.1).
        BADKEY = 17, "BADKEY";
        /// Signature out of time window (RFC 8945 §5.2.3).
        BADTIME = 18, "BADTIME";
        /// Bad TKEY mode (RFC 2930).
        BADMODE = 19, "BADMODE";
        /// Duplicate key name (RFC 2930).
        BADNAME = 20, "BADNAME";
        /// Algorithm not supported (RFC 2930).
        BADALG = 21, "BADALG";
        /// Bad truncation (RFC 8945 §5.2.4).
        BADTRUNC = 22, "BADTRUNC";
        /// Bad or missing server cookie (RFC 7873).
        BADCOOKIE = 23, "BADCOOKIE";
    }
}

impl fmt::Display for Rcode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "RCODE{}", self.0),
        }
    }
}

open_enum! {
    /// A resource record type (IANA "Resource Record (RR) TYPEs").
    RrType(u16) {
        /// IPv4 address.
        A = 1, "A";
        /// Name server.
        NS = 2, "NS";
        /// Start of authority: the ZTYPE of an UPDATE's zone section (RFC 2136 §2.3).
        SOA = 6, "SOA";
        /// Domain name pointer.
        PTR = 12, "PTR";
        /// IPv6 address (RFC 3596).
        AAAA = 28, "AAAA";
        /// Service location (RFC 2782).
        SRV = 33, "SRV";
        /// EDNS(0) pseudo-record (RFC 6891).
        OPT = 41, "OPT";
        /// DHCP identifier (RFC 4701).
        DHCID = 49, "DHCID";
        /// Transaction signature (RFC 8945).
        TSIG = 250, "TSIG";
        /// Any type.
        ANY = 255, "ANY";
    }
}

/// Class IN (RFC 1035 §3.2.4).
pub const CLASS_IN: u16 = 1;
/// Class NONE (RFC 2136 §2.5.4: delete an RR from an RRset).
pub const CLASS_NONE: u16 = 254;
/// Class ANY (RFC 2136 §2.5.2: delete an RRset; RFC 8945 §4.2: the TSIG record's class).
pub const CLASS_ANY: u16 = 255;
/// Opcode UPDATE (RFC 2136 §1).
pub const OPCODE_UPDATE: u8 = 5;
/// Length of the DNS header.
pub const HEADER_LEN: usize = 12;
/// The largest TTL (RFC 2181 §8: 2^31 - 1).
pub const MAX_TTL: u32 = 0x7fff_ffff;

/// Field offsets of the header (RFC 1035 §4.1.1; RFC 2136 §2.2 renames the counts).
pub(crate) mod field {
    use std::ops::Range;
    pub(crate) const ID: Range<usize> = 0..2;
    pub(crate) const FLAGS: Range<usize> = 2..4;
    pub(crate) const ZOCOUNT: Range<usize> = 4..6;
    pub(crate) const PRCOUNT: Range<usize> = 6..8;
    pub(crate) const UPCOUNT: Range<usize> = 8..10;
    pub(crate) const ADCOUNT: Range<usize> = 10..12;
}

pub(crate) fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

pub(crate) fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

pub(crate) fn be48(b: &[u8], at: usize) -> Option<u64> {
    let s = b.get(at..at + 6)?;
    Some(s.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x)))
}

/// Why an update cannot be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// A name outside the zone (the server would answer NOTZONE, RFC 2136 §3.4.1.3).
    #[error("{name} is not within zone {zone}")]
    NotInZone {
        /// The name.
        name: Name,
        /// The zone.
        zone: Name,
    },
    /// A replace with no address (use a delete).
    #[error("no address to put in {0}'s AAAA RRset")]
    NoAddresses(Name),
    /// A TTL over 2^31 - 1 (RFC 2181 §8).
    #[error("TTL {0} is over 2^31 - 1")]
    TtlTooLarge(u32),
    /// More than 65535 update records.
    #[error("too many update records")]
    TooManyRecords,
}

/// One change of an UPDATE's update section.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum UpdateOp {
    /// Delete `name`'s AAAA RRset (RFC 2136 §2.5.2), then add one AAAA per address with `ttl`
    /// (§2.5.1): the RRset afterwards is exactly `addrs`.
    ReplaceAaaa {
        /// The owner name.
        name: Name,
        /// The addresses.
        addrs: Vec<Ipv6Addr>,
        /// Their TTL in seconds.
        ttl: u32,
    },
    /// Delete `name`'s AAAA RRset (RFC 2136 §2.5.2). Deleting an absent RRset is not an error
    /// (§3.4.2.3).
    DeleteAaaa {
        /// The owner name.
        name: Name,
    },
}

impl UpdateOp {
    fn records(&self) -> usize {
        match self {
            Self::ReplaceAaaa { addrs, .. } => 1 + addrs.len(),
            Self::DeleteAaaa { .. } => 1,
        }
    }
}

/// An UPDATE request (RFC 2136): one zone, no prerequisites, a list of [`UpdateOp`]s. Sign and
/// send it with [`Update`](crate::Update).
///
/// ```
/// use dns_update::{Name, UpdateRequest};
/// let zone: Name = "example.".parse()?;
/// let mn: Name = "mn1.example.".parse()?;
/// let req = UpdateRequest::replace_aaaa(zone, mn, &["2001:db8:1::99".parse()?], 300)?;
/// let mut msg = Vec::new();
/// req.emit(0x1234, &mut msg);
/// assert_eq!(&msg[..4], &[0x12, 0x34, 0x28, 0x00]); // ID, Opcode UPDATE
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpdateRequest {
    zone: Name,
    ops: Vec<UpdateOp>,
}

impl UpdateRequest {
    /// An empty update of `zone`.
    pub fn new(zone: Name) -> Self {
        Self {
            zone,
            ops: Vec::new(),
        }
    }

    /// Replaces `name`'s AAAA RRset in `zone` with `addrs` at `ttl`.
    pub fn replace_aaaa(
        zone: Name,
        name: Name,
        addrs: &[Ipv6Addr],
        ttl: u32,
    ) -> Result<Self, BuildError> {
        let mut r = Self::new(zone);
        r.push(UpdateOp::ReplaceAaaa {
            name,
            addrs: addrs.to_vec(),
            ttl,
        })?;
        Ok(r)
    }

    /// Deletes `name`'s AAAA RRset in `zone`.
    pub fn delete_aaaa(zone: Name, name: Name) -> Result<Self, BuildError> {
        let mut r = Self::new(zone);
        r.push(UpdateOp::DeleteAaaa { name })?;
        Ok(r)
    }

    /// Appends a change after checking it: the name within the zone, a non-empty address list,
    /// a TTL of at most 2^31 - 1.
    pub fn push(&mut self, op: UpdateOp) -> Result<(), BuildError> {
        let name = match &op {
            UpdateOp::ReplaceAaaa { name, addrs, ttl } => {
                if addrs.is_empty() {
                    return Err(BuildError::NoAddresses(name.clone()));
                }
                if *ttl > MAX_TTL {
                    return Err(BuildError::TtlTooLarge(*ttl));
                }
                name
            }
            UpdateOp::DeleteAaaa { name } => name,
        };
        if !name.is_subdomain_of(&self.zone) {
            return Err(BuildError::NotInZone {
                name: name.clone(),
                zone: self.zone.clone(),
            });
        }
        if self.update_count() + op.records() > usize::from(u16::MAX) {
            return Err(BuildError::TooManyRecords);
        }
        self.ops.push(op);
        Ok(())
    }

    /// The zone.
    pub fn zone(&self) -> &Name {
        &self.zone
    }

    /// The changes, in order.
    pub fn ops(&self) -> &[UpdateOp] {
        &self.ops
    }

    fn update_count(&self) -> usize {
        self.ops.iter().map(UpdateOp::records).sum()
    }

    /// Appends the unsigned message with this ID to `out` (ADCOUNT 0; TSIG signing appends its
    /// record and increments ADCOUNT).
    pub fn emit(&self, id: u16, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(&id.to_be_bytes());
        // QR 0, Opcode 5, all flags 0, RCODE 0 (RFC 2136 §2.2).
        out.extend_from_slice(&(u16::from(OPCODE_UPDATE) << 11).to_be_bytes());
        out.extend_from_slice(&1u16.to_be_bytes()); // ZOCOUNT
        out.extend_from_slice(&0u16.to_be_bytes()); // PRCOUNT
        let up = u16::try_from(self.update_count()).unwrap_or(u16::MAX);
        out.extend_from_slice(&up.to_be_bytes()); // UPCOUNT (≤ 65535, checked by push)
        out.extend_from_slice(&0u16.to_be_bytes()); // ADCOUNT
        debug_assert_eq!(out.len() - start, HEADER_LEN);
        // Zone section (§2.3).
        self.zone.emit(out);
        out.extend_from_slice(&RrType::SOA.0.to_be_bytes());
        out.extend_from_slice(&CLASS_IN.to_be_bytes());
        // Update section (§2.5).
        for op in &self.ops {
            match op {
                UpdateOp::ReplaceAaaa { name, addrs, ttl } => {
                    delete_rrset(out, name, RrType::AAAA);
                    for a in addrs {
                        name.emit(out);
                        out.extend_from_slice(&RrType::AAAA.0.to_be_bytes());
                        out.extend_from_slice(&CLASS_IN.to_be_bytes());
                        out.extend_from_slice(&ttl.to_be_bytes());
                        out.extend_from_slice(&16u16.to_be_bytes());
                        out.extend_from_slice(&a.octets());
                    }
                }
                UpdateOp::DeleteAaaa { name } => delete_rrset(out, name, RrType::AAAA),
            }
        }
    }
}

/// RFC 2136 §2.5.2: NAME, TYPE, CLASS ANY, TTL 0, RDLENGTH 0.
fn delete_rrset(out: &mut Vec<u8>, name: &Name, ty: RrType) {
    name.emit(out);
    out.extend_from_slice(&ty.0.to_be_bytes());
    out.extend_from_slice(&CLASS_ANY.to_be_bytes());
    out.extend_from_slice(&0u32.to_be_bytes());
    out.extend_from_slice(&0u16.to_be_bytes());
}

/// The TSIG record of a message (RFC 8945 §4.2).
///
/// ```text
/// NAME  key name           TYPE TSIG (250)    CLASS ANY (255)    TTL 0    RDLENGTH
/// RDATA:
///   Algorithm Name  (domain name, uncompressed)
///   Time Signed     (u48, seconds since the epoch)
///   Fudge           (u16, seconds)
///   MAC Size (u16)  MAC
///   Original ID     (u16)
///   Error           (u16, an extended RCODE)
///   Other Len (u16) Other Data  (the server's time on BADTIME)
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TsigRecord<'a> {
    /// The key name (the record's owner).
    pub key_name: Name,
    /// The algorithm name, e.g. `hmac-sha256.`.
    pub algorithm: Name,
    /// Time Signed.
    pub time_signed: u64,
    /// Fudge.
    pub fudge: u16,
    /// The MAC (empty on unsigned error answers, RFC 8945 §5.3.2).
    pub mac: &'a [u8],
    /// Original ID.
    pub original_id: u16,
    /// Error.
    pub error: Rcode,
    /// Other Data.
    pub other: &'a [u8],
}

impl<'a> TsigRecord<'a> {
    fn parse_rdata(msg: &'a [u8], start: usize, end: usize) -> Result<Self, WireError> {
        let bad = WireError::BadTsig { offset: start };
        let rdata = msg.get(..end).ok_or_else(|| bad.clone())?;
        // The algorithm name must not be compressed (RFC 8945 §4.2) but may be read from the
        // whole message; it must end inside the RDATA.
        let (algorithm, mut p) = Name::read(rdata, start).map_err(|_| bad.clone())?;
        let time_signed = be48(rdata, p).ok_or_else(|| bad.clone())?;
        let fudge = be16(rdata, p + 6).ok_or_else(|| bad.clone())?;
        let mac_len = usize::from(be16(rdata, p + 8).ok_or_else(|| bad.clone())?);
        p += 10;
        let mac = rdata.get(p..p + mac_len).ok_or_else(|| bad.clone())?;
        p += mac_len;
        let original_id = be16(rdata, p).ok_or_else(|| bad.clone())?;
        let error = Rcode(be16(rdata, p + 2).ok_or_else(|| bad.clone())?);
        let other_len = usize::from(be16(rdata, p + 4).ok_or_else(|| bad.clone())?);
        p += 6;
        let other = rdata.get(p..p + other_len).ok_or_else(|| bad.clone())?;
        if p + other_len != end {
            return Err(bad);
        }
        Ok(Self {
            key_name: Name::root(),
            algorithm,
            time_signed,
            fudge,
            mac,
            original_id,
            error,
            other,
        })
    }
}

/// A parsed DNS response (only what an UPDATE client needs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response<'a> {
    /// The message ID.
    pub id: u16,
    /// QR: set on responses.
    pub qr: bool,
    /// The Opcode (5 for UPDATE).
    pub opcode: u8,
    /// The header's 4-bit RCODE.
    pub rcode: Rcode,
    /// ZOCOUNT, PRCOUNT, UPCOUNT, ADCOUNT.
    pub counts: [u16; 4],
    /// The TSIG record, if the last additional record is one.
    pub tsig: Option<TsigRecord<'a>>,
    /// Offset of the TSIG record (the message length without one).
    pub tsig_offset: usize,
    /// The whole message.
    pub bytes: &'a [u8],
}

impl<'a> Response<'a> {
    /// Reads a DNS message: header, every record of every section (skipped), the TSIG record.
    /// Fails on truncation, bad names, a TSIG record that is not last, trailing bytes.
    pub fn parse(msg: &'a [u8]) -> Result<Self, WireError> {
        let header = |r: std::ops::Range<usize>| {
            be16(msg, r.start).ok_or(WireError::Truncated {
                what: "header",
                offset: 0,
            })
        };
        let id = header(field::ID)?;
        let flags = header(field::FLAGS)?;
        let counts = [
            header(field::ZOCOUNT)?,
            header(field::PRCOUNT)?,
            header(field::UPCOUNT)?,
            header(field::ADCOUNT)?,
        ];
        let mut p = HEADER_LEN;
        // Zone (question) section: NAME, TYPE, CLASS.
        for _ in 0..counts[0] {
            let (_, end) = Name::read(msg, p)?;
            if msg.len() < end + 4 {
                return Err(WireError::Truncated {
                    what: "zone entry",
                    offset: p,
                });
            }
            p = end + 4;
        }
        let total_rrs = u32::from(counts[1]) + u32::from(counts[2]) + u32::from(counts[3]);
        let mut tsig = None;
        let mut tsig_offset = msg.len();
        for i in 0..total_rrs {
            let rr_start = p;
            let (owner, end) = Name::read(msg, p)?;
            let trunc = WireError::Truncated {
                what: "resource record",
                offset: rr_start,
            };
            let ty = RrType(be16(msg, end).ok_or_else(|| trunc.clone())?);
            let rdlen = usize::from(be16(msg, end + 8).ok_or_else(|| trunc.clone())?);
            let rdata_start = end + 10;
            let rdata_end = rdata_start + rdlen;
            if msg.len() < rdata_end {
                return Err(trunc);
            }
            if ty == RrType::TSIG {
                // RFC 8945 §5.1: the last record of the additional section.
                if i + 1 != total_rrs || counts[3] == 0 {
                    return Err(WireError::TsigNotLast { offset: rr_start });
                }
                // RFC 8945 §4.2: CLASS ANY and TTL 0 (neither is covered by the MAC).
                if be16(msg, end + 2) != Some(CLASS_ANY) || be32(msg, end + 4) != Some(0) {
                    return Err(WireError::BadTsig {
                        offset: rdata_start,
                    });
                }
                let mut rec = TsigRecord::parse_rdata(msg, rdata_start, rdata_end)?;
                rec.key_name = owner;
                tsig = Some(rec);
                tsig_offset = rr_start;
            }
            p = rdata_end;
        }
        if p != msg.len() {
            return Err(WireError::TrailingData(msg.len() - p));
        }
        Ok(Self {
            id,
            qr: flags & 0x8000 != 0,
            opcode: ((flags >> 11) & 0x0f) as u8,
            rcode: Rcode(flags & 0x000f),
            counts,
            tsig,
            tsig_offset,
            bytes: msg,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Name {
        s.parse().expect(s)
    }

    #[test]
    fn replace_and_delete_bytes() {
        let req = UpdateRequest::replace_aaaa(
            n("example."),
            n("mn1.example."),
            &["2001:db8:1::99".parse().unwrap()],
            300,
        )
        .unwrap();
        let mut m = Vec::new();
        req.emit(0xbeef, &mut m);
        let want = hex::decode(concat!(
            "beef2800000100000002",
            "0000", // header: UPDATE, ZO 1, UP 2
            "076578616d706c6500",
            "0006",
            "0001", // example. SOA IN
            "036d6e31076578616d706c6500",
            "001c",
            "00ff",
            "00000000",
            "0000", // delete RRset
            "036d6e31076578616d706c6500",
            "001c",
            "0001",
            "0000012c",
            "0010",
            "20010db8000100000000000000000099", // add AAAA
        ))
        .unwrap();
        assert_eq!(hex::encode(&m), hex::encode(&want));

        let del = UpdateRequest::delete_aaaa(n("example."), n("MN1.example")).unwrap();
        let mut m = Vec::new();
        del.emit(1, &mut m);
        assert_eq!(&m[8..10], &[0, 1]);
        assert!(m.ends_with(b"\x03MN1\x07example\x00\x00\x1c\x00\xff\x00\x00\x00\x00\x00\x00"));
    }

    #[test]
    fn build_checks() {
        let z = n("example.");
        assert!(matches!(
            UpdateRequest::delete_aaaa(z.clone(), n("mn1.example.org")),
            Err(BuildError::NotInZone { .. })
        ));
        assert!(matches!(
            UpdateRequest::replace_aaaa(z.clone(), n("mn1.example"), &[], 60),
            Err(BuildError::NoAddresses(_))
        ));
        assert_eq!(
            UpdateRequest::replace_aaaa(z, n("mn1.example"), &[Ipv6Addr::LOCALHOST], u32::MAX),
            Err(BuildError::TtlTooLarge(u32::MAX))
        );
    }

    #[test]
    fn rcode_names() {
        assert_eq!(Rcode::NOTAUTH.to_string(), "NOTAUTH");
        assert_eq!(Rcode(16).to_string(), "BADSIG");
        assert_eq!(Rcode(4000).to_string(), "RCODE4000");
        assert_eq!(format!("{:?}", Rcode(4000)), "Rcode(4000)");
        assert_eq!(format!("{:?}", RrType::AAAA), "AAAA");
    }

    #[test]
    fn parse_response_with_tsig() {
        // Header (QR, UPDATE, NOTAUTH), zone example. SOA IN, TSIG with compressed owner.
        let mut m = Vec::new();
        m.extend_from_slice(&[0xbe, 0xef, 0xa8, 0x09, 0, 1, 0, 0, 0, 0, 0, 1]);
        m.extend_from_slice(b"\x07example\x00\x00\x06\x00\x01");
        let tsig_at = m.len();
        m.extend_from_slice(b"\x03key\xc0\x0c\x00\xfa\x00\xff\x00\x00\x00\x00");
        let mut rd = Vec::new();
        rd.extend_from_slice(b"\x0bhmac-sha256\x00");
        rd.extend_from_slice(&[0, 0, 0x5f, 0x5e, 0x10, 0x00]); // time
        rd.extend_from_slice(&[1, 0x2c]); // fudge 300
        rd.extend_from_slice(&[0, 0]); // MAC size 0
        rd.extend_from_slice(&[0xbe, 0xef]); // original ID
        rd.extend_from_slice(&[0, 16]); // BADSIG
        rd.extend_from_slice(&[0, 0]);
        m.extend_from_slice(&(rd.len() as u16).to_be_bytes());
        m.extend_from_slice(&rd);
        let r = Response::parse(&m).expect("parse");
        assert!(r.qr);
        assert_eq!(r.opcode, OPCODE_UPDATE);
        assert_eq!(r.rcode, Rcode::NOTAUTH);
        let t = r.tsig.as_ref().expect("tsig");
        assert_eq!(t.key_name, n("key.example."));
        assert_eq!(t.algorithm, n("hmac-sha256."));
        assert_eq!(t.time_signed, 0x5f5e_1000);
        assert_eq!((t.fudge, t.error, t.mac.len()), (300, Rcode::BADSIG, 0));
        assert_eq!(r.tsig_offset, tsig_at);
        // Trailing byte, truncation everywhere.
        let mut longer = m.clone();
        longer.push(0);
        assert_eq!(Response::parse(&longer), Err(WireError::TrailingData(1)));
        for cut in 0..m.len() {
            assert!(Response::parse(&m[..cut]).is_err(), "cut at {cut}");
        }
        // A TSIG that is not last.
        let mut two = m.clone();
        two[11] = 2;
        two.extend_from_slice(b"\x00\x00\x01\x00\x01\x00\x00\x00\x00\x00\x00");
        assert!(matches!(
            Response::parse(&two),
            Err(WireError::TsigNotLast { .. })
        ));
    }
}

#[cfg(test)]
mod proptests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn parse_never_panics(data in proptest::collection::vec(any::<u8>(), 0..600)) {
            if let Ok(r) = Response::parse(&data) {
                prop_assert!(r.tsig_offset <= data.len());
            }
            for off in 0..data.len().min(40) {
                if let Ok((n, end)) = Name::read(&data, off) {
                    prop_assert!(n.wire_len() <= 255 && end <= data.len());
                }
            }
        }

        /// Mostly-valid messages: a header with small counts, then random records.
        #[test]
        fn parse_structured_never_panics(
            counts in proptest::array::uniform4(0u16..4),
            body in proptest::collection::vec(
                prop_oneof![Just(0u8), Just(0xc0), Just(0x0c), Just(250), Just(255), any::<u8>()],
                0..300,
            ),
        ) {
            let mut m = vec![0x12, 0x34, 0xa8, 0x00];
            for c in counts {
                m.extend_from_slice(&c.to_be_bytes());
            }
            m.extend_from_slice(&body);
            let _ = Response::parse(&m);
        }

        #[test]
        fn names_round_trip(labels in proptest::collection::vec("[a-zA-Z0-9_-]{1,20}", 1..8)) {
            let text = labels.join(".");
            let n = Name::from_ascii(&text).unwrap();
            prop_assert_eq!(n.to_string(), format!("{text}."));
            let (back, end) = Name::read(n.as_wire(), 0).unwrap();
            prop_assert_eq!(end, n.wire_len());
            prop_assert_eq!(&back, &n);
            prop_assert!(n.is_subdomain_of(&Name::from_ascii(labels.last().unwrap()).unwrap()));
        }
    }
}
