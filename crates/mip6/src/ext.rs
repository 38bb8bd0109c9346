//! The IPv6 extension headers of home registration: the Home Address destination option
//! (RFC 6275 §6.3) on the Binding Update and the type 2 Routing header (RFC 6275 §6.4) on the
//! Binding Acknowledgement, and the walk that finds them and the Mobility Header in a received
//! IPv6 packet (RFC 8200 §4).
//!
//! A Binding Update from a mobile node away from home (RFC 6275 §11.7.1):
//!
//! ```text
//! IPv6 (src = care-of address, dst = home agent, next header 60)
//! Destination Options (Home Address option = home address, next header 135)
//! Mobility Header (Binding Update; checksum over home address → home agent)
//! ```
//!
//! and the home agent's Binding Acknowledgement (RFC 6275 §9.5.4, §10.3.1):
//!
//! ```text
//! IPv6 (src = home agent, dst = care-of address, next header 43)
//! Routing header type 2 (Segments Left 1, address = home address, next header 135)
//! Mobility Header (Binding Acknowledgement; checksum over home agent → home address)
//! ```
//!
//! With RFC 3776 transport-mode ESP, ESP goes after these extension headers and before the
//! Mobility Header: `esp::Esp` inserts it there (see `esp::packet`, whose `PacketInfo` reads
//! the same two headers for the SPD selectors; [`MobilityPacket`] agrees with its
//! `sel_src`/`sel_dst`). [`MobilityPacket::parse`] reads a packet after ESP was removed;
//! for one as it arrives, [`MobilityPacket::parse_headers`] stops at ESP and
//! [`MobilityPacket::with_mh`] attaches the decrypted Mobility Header.
//!
//! Not handled: Hop-by-Hop option processing (the header is skipped), fragments (refused: the
//! Mobility Header is small and we never fragment it), routing headers other than type 2 that
//! still have segments left (refused, RFC 8200 §4.4).

use std::net::Ipv6Addr;

use esp::packet::{IPV6_HEADER_LEN, proto};

use crate::mh::{IPPROTO_MH, Message, MhError, MhType};

/// Option Type of the Home Address destination option (RFC 6275 §6.3).
pub const HOME_ADDRESS_OPTION: u8 = 201;
/// Routing Type of the type 2 Routing header (RFC 6275 §6.4).
pub const ROUTING_TYPE_2: u8 = 2;
/// Length of the Destination Options header [`home_address_destination_options`] builds.
pub const HAO_HEADER_LEN: usize = 24;
/// Length of the type 2 Routing header (RFC 6275 §6.4: Hdr Ext Len 2).
pub const RH2_HEADER_LEN: usize = 24;
/// The walk gives up after this many extension headers (same bound as `esp::packet`).
pub const MAX_EXTENSION_HEADERS: usize = esp::packet::MAX_EXTENSION_HEADERS;
/// Hop limit of the packets built here.
pub const HOP_LIMIT: u8 = 64;

/// Why a received packet does not carry a usable Mobility Header.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PacketError {
    /// Shorter than its headers or its payload length says.
    #[error("IPv6 packet truncated")]
    Truncated,
    /// The version field is not 6.
    #[error("not an IPv6 packet")]
    NotIpv6,
    /// Payload length 0 (a jumbogram, RFC 2675).
    #[error("IPv6 jumbograms are not supported")]
    Jumbogram,
    /// More than [`MAX_EXTENSION_HEADERS`] extension headers.
    #[error("too many IPv6 extension headers")]
    TooManyHeaders,
    /// A Fragment header: reassembly is the caller's business.
    #[error("fragmented packet")]
    Fragmented,
    /// ESP (or another header) still in front of the Mobility Header: decapsulate first.
    #[error("upper-layer protocol {0} is not the Mobility Header (135)")]
    NotMobilityHeader(u8),
    /// A Home Address option whose length is not 16 (RFC 6275 §6.3), or two of them.
    #[error("malformed or repeated Home Address option")]
    BadHomeAddressOption,
    /// A type 2 Routing header that is not Hdr Ext Len 2 / Segments Left 1 (RFC 6275 §6.4), or
    /// two of them.
    #[error("malformed or repeated type 2 Routing header")]
    BadRoutingHeader,
    /// A routing header of another type with segments left: we are not its final destination
    /// (RFC 8200 §4.4).
    #[error("routing header type {0} with segments left")]
    UnsupportedRoutingHeader(u8),
    /// A destination option we do not know whose type says to discard the packet
    /// (RFC 8200 §4.2: the two high-order bits are not 00).
    #[error("unrecognized destination option {0:#04x}")]
    UnknownOption(u8),
    /// A destination option running past its header.
    #[error("destination options overrun their header")]
    OptionOverrun,
    /// A Home Address option on something other than a Binding Update (RFC 6275 §6.1:
    /// "Mobility Header messages also MUST NOT be used with a Home Address destination option,
    /// except ... for Binding Update").
    #[error("Home Address option on a {0}")]
    HomeAddressOptionNotAllowed(MhType),
    /// A type 2 Routing header on something other than a Binding Acknowledgement (RFC 6275
    /// §6.1: "MUST NOT be sent with a type 2 routing header, except ... for Binding
    /// Acknowledgement").
    #[error("type 2 Routing header on a {0}")]
    RoutingHeaderNotAllowed(MhType),
    /// The Mobility Header itself is bad.
    #[error(transparent)]
    Mh(#[from] MhError),
}

/// The Destination Options header carrying a Home Address option (RFC 6275 §6.3):
///
/// ```text
/// | Next Header | Hdr Ext Len=2 | PadN: 1 | 2 | 0 0 | Type=201 | Len=16 | Home Address (16) |
/// ```
///
/// The PadN puts the option at offset 6, its 8n+6 alignment.
pub fn home_address_destination_options(home_address: Ipv6Addr, next_header: u8) -> [u8; 24] {
    let mut h = [0u8; HAO_HEADER_LEN];
    h[..8].copy_from_slice(&[next_header, 2, 1, 2, 0, 0, HOME_ADDRESS_OPTION, 16]);
    h[8..].copy_from_slice(&home_address.octets());
    h
}

/// The type 2 Routing header (RFC 6275 §6.4):
///
/// ```text
/// | Next Header | Hdr Ext Len=2 | Routing Type=2 | Segments Left=1 | Reserved (4) | Home Address (16) |
/// ```
pub fn type2_routing_header(home_address: Ipv6Addr, next_header: u8) -> [u8; 24] {
    let mut h = [0u8; RH2_HEADER_LEN];
    h[..4].copy_from_slice(&[next_header, 2, ROUTING_TYPE_2, 1]);
    h[8..].copy_from_slice(&home_address.octets());
    h
}

/// Writes an IPv6 packet `src → dst` with the extension header `ext` (whose type is
/// `first_next_header`; its own Next Header must already name what follows) and the Mobility
/// Header `mh`. `out` is cleared first; `None` (and `out` empty) if it exceeds 65535 bytes.
fn build<'a>(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    first_next_header: u8,
    ext: &[u8],
    mh: &[u8],
    out: &'a mut Vec<u8>,
) -> Option<&'a [u8]> {
    out.clear();
    let plen = u16::try_from(ext.len() + mh.len()).ok()?;
    out.reserve(IPV6_HEADER_LEN + ext.len() + mh.len());
    out.extend_from_slice(&[0x60, 0, 0, 0]);
    out.extend_from_slice(&plen.to_be_bytes());
    out.push(first_next_header);
    out.push(HOP_LIMIT);
    out.extend_from_slice(&src.octets());
    out.extend_from_slice(&dst.octets());
    out.extend_from_slice(ext);
    out.extend_from_slice(mh);
    Some(out)
}

/// The IPv6 packet of a Binding Update (RFC 6275 §11.7.1): source the care-of address,
/// destination the home agent, a Home Address option with the home address, then `mh` (whose
/// checksum must be over home address → home agent). At home (`care_of == home`) the packet
/// is sent from the home address without the option (RFC 6275 §11.5.4).
pub fn build_bu_packet<'a>(
    care_of: Ipv6Addr,
    home_agent: Ipv6Addr,
    home_address: Ipv6Addr,
    mh: &[u8],
    out: &'a mut Vec<u8>,
) -> Option<&'a [u8]> {
    if care_of == home_address {
        return build(home_address, home_agent, IPPROTO_MH, &[], mh, out);
    }
    let hao = home_address_destination_options(home_address, IPPROTO_MH);
    build(care_of, home_agent, proto::DEST_OPTS, &hao, mh, out)
}

/// The IPv6 packet of a Binding Acknowledgement (RFC 6275 §9.5.4, §10.3.1): source the home
/// agent, destination the care-of address, a type 2 Routing header with the home address, then
/// `mh` (whose checksum must be over home agent → home address). When the care-of address is
/// the home address (deregistration from home) no routing header is needed.
pub fn build_ba_packet<'a>(
    home_agent: Ipv6Addr,
    care_of: Ipv6Addr,
    home_address: Ipv6Addr,
    mh: &[u8],
    out: &'a mut Vec<u8>,
) -> Option<&'a [u8]> {
    if care_of == home_address {
        return build(home_agent, home_address, IPPROTO_MH, &[], mh, out);
    }
    let rh = type2_routing_header(home_address, IPPROTO_MH);
    build(home_agent, care_of, proto::ROUTING, &rh, mh, out)
}

/// An IPv6 packet with no extension header around `mh` (e.g. a Binding Refresh Request to the
/// home address, sent through the tunnel to the care-of address).
pub fn build_mh_packet<'a>(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    mh: &[u8],
    out: &'a mut Vec<u8>,
) -> Option<&'a [u8]> {
    build(src, dst, IPPROTO_MH, &[], mh, out)
}

/// A received IPv6 packet whose upper layer is a Mobility Header, with the Mobile IPv6
/// extension-header addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MobilityPacket<'a> {
    /// Source address of the IPv6 header (the care-of address on a Binding Update).
    pub src: Ipv6Addr,
    /// Destination address of the IPv6 header.
    pub dst: Ipv6Addr,
    /// The Home Address option's address, if any.
    pub home_address_option: Option<Ipv6Addr>,
    /// The type 2 Routing header's address (Segments Left 1), if any.
    pub routing_address: Option<Ipv6Addr>,
    /// Hop limit of the IPv6 header.
    pub hop_limit: u8,
    /// Offset of the Mobility Header in the packet (add it to
    /// [`crate::MhErrorResponse::ParameterProblem`]'s pointer).
    pub mh_offset: usize,
    /// The Mobility Header and anything after it up to the end of the IPv6 payload (with
    /// [`Self::parse_headers`]: whatever header follows the extension headers, e.g. ESP).
    pub mh: &'a [u8],
}

impl<'a> MobilityPacket<'a> {
    /// Walks the extension headers of an IPv6 packet (no link-layer header, ESP already
    /// removed) to the Mobility Header. Bytes after the IPv6 payload length are ignored.
    pub fn parse(p: &'a [u8]) -> Result<Self, PacketError> {
        let (mp, next_header) = Self::parse_headers(p)?;
        if next_header != IPPROTO_MH {
            return Err(PacketError::NotMobilityHeader(next_header));
        }
        Ok(mp)
    }

    /// Walks the extension headers (Hop-by-Hop, Routing, Destination Options, AH) of an IPv6
    /// packet to the first other header, and returns the view with `mh` holding the bytes from
    /// that header on (`mh_offset` its offset) and that header's protocol number. For a
    /// packet still protected by transport-mode ESP (protocol 50), decapsulate `mh` with
    /// [`Self::home_address`] as the source (`esp::Esp::decapsulate`), then use
    /// [`Self::with_mh`] on the decrypted Mobility Header.
    pub fn parse_headers(p: &'a [u8]) -> Result<(Self, u8), PacketError> {
        let hdr = p.get(..IPV6_HEADER_LEN).ok_or(PacketError::Truncated)?;
        if hdr[0] >> 4 != 6 {
            return Err(PacketError::NotIpv6);
        }
        let plen = usize::from(u16::from_be_bytes([hdr[4], hdr[5]]));
        if plen == 0 && hdr[6] == proto::HOP_BY_HOP {
            return Err(PacketError::Jumbogram);
        }
        let p = p
            .get(..IPV6_HEADER_LEN + plen)
            .ok_or(PacketError::Truncated)?;
        let mut out = Self {
            src: addr_at(hdr, 8),
            dst: addr_at(hdr, 24),
            home_address_option: None,
            routing_address: None,
            hop_limit: hdr[7],
            mh_offset: IPV6_HEADER_LEN,
            mh: &[],
        };
        let mut nh = hdr[6];
        let mut off = IPV6_HEADER_LEN;
        for _ in 0..=MAX_EXTENSION_HEADERS {
            let len = match nh {
                proto::HOP_BY_HOP | proto::ROUTING | proto::DEST_OPTS => {
                    let h = p.get(off..off + 2).ok_or(PacketError::Truncated)?;
                    (usize::from(h[1]) + 1) * 8
                }
                // RFC 4302 §2.2: Payload Len in 4-octet units, minus 2.
                proto::AH => {
                    let h = p.get(off..off + 2).ok_or(PacketError::Truncated)?;
                    (usize::from(h[1]) + 2) * 4
                }
                proto::FRAGMENT => return Err(PacketError::Fragmented),
                other => {
                    out.mh_offset = off;
                    out.mh = &p[off..];
                    return Ok((out, other));
                }
            };
            let h = p.get(off..off + len).ok_or(PacketError::Truncated)?;
            match nh {
                proto::ROUTING => out.read_routing(h)?,
                proto::DEST_OPTS => out.read_destination_options(&h[2..])?,
                _ => {}
            }
            nh = h[0];
            off += len;
        }
        Err(PacketError::TooManyHeaders)
    }

    /// The same packet with `mh` as its Mobility Header: the one ESP decapsulation returned
    /// (`esp::TransportPayload::payload` with Next Header 135). `mh_offset` keeps the offset
    /// of the ESP header.
    pub fn with_mh<'b>(&self, mh: &'b [u8]) -> MobilityPacket<'b> {
        MobilityPacket {
            src: self.src,
            dst: self.dst,
            home_address_option: self.home_address_option,
            routing_address: self.routing_address,
            hop_limit: self.hop_limit,
            mh_offset: self.mh_offset,
            mh,
        }
    }

    /// Reads a routing header (whole header in `h`, at least 8 bytes).
    fn read_routing(&mut self, h: &[u8]) -> Result<(), PacketError> {
        let (ty, segments_left) = (h[2], h[3]);
        if ty == ROUTING_TYPE_2 {
            // RFC 6275 §6.4: Hdr Ext Len 2, Segments Left 1, one address; only one such header.
            if h[1] != 2 || segments_left != 1 || self.routing_address.is_some() {
                return Err(PacketError::BadRoutingHeader);
            }
            self.routing_address = Some(addr_at(h, 8));
        } else if segments_left != 0 {
            return Err(PacketError::UnsupportedRoutingHeader(ty));
        }
        Ok(())
    }

    /// Reads the options area of a Destination Options header (RFC 8200 §4.2).
    fn read_destination_options(&mut self, mut opts: &[u8]) -> Result<(), PacketError> {
        while let Some((&ty, rest)) = opts.split_first() {
            if ty == 0 {
                // Pad1.
                opts = rest;
                continue;
            }
            let (&len, rest) = rest.split_first().ok_or(PacketError::OptionOverrun)?;
            let len = usize::from(len);
            let data = rest.get(..len).ok_or(PacketError::OptionOverrun)?;
            match ty {
                // PadN.
                1 => {}
                HOME_ADDRESS_OPTION => {
                    if len != 16 || self.home_address_option.is_some() {
                        return Err(PacketError::BadHomeAddressOption);
                    }
                    self.home_address_option = Some(addr_at(data, 0));
                }
                // RFC 8200 §4.2: high-order bits 00 = skip over this option.
                t if t >> 6 == 0 => {}
                t => return Err(PacketError::UnknownOption(t)),
            }
            opts = &rest[len..];
        }
        Ok(())
    }

    /// The pseudo-header source for the checksum: the home address when a Home Address option
    /// is present (RFC 6275 §6.1.1), else the IPv6 source.
    pub fn checksum_src(&self) -> Ipv6Addr {
        self.home_address_option.unwrap_or(self.src)
    }

    /// The pseudo-header destination for the checksum: the final destination, i.e. the type 2
    /// Routing header's address when present (RFC 8200 §8.1), else the IPv6 destination.
    pub fn checksum_dst(&self) -> Ipv6Addr {
        self.routing_address.unwrap_or(self.dst)
    }

    /// The mobile node's home address as RFC 6275 §9.5.1 defines it for a Binding Update: the
    /// Home Address option, or the source address when there is none (a node at home).
    pub fn home_address(&self) -> Ipv6Addr {
        self.checksum_src()
    }

    /// The care-of address of a Binding Update (RFC 6275 §9.5.1): the Alternate Care-of
    /// Address option if present, else the IPv6 source address.
    pub fn care_of_address(&self, bu: &crate::mh::BindingUpdate) -> Ipv6Addr {
        bu.alternate_care_of_address().unwrap_or(self.src)
    }

    /// Decodes the Mobility Header with its checksum verified, and checks that the extension
    /// headers are allowed with that message (RFC 6275 §6.1).
    pub fn decode(&self) -> Result<Message, PacketError> {
        let msg = Message::parse(self.mh, Some((self.checksum_src(), self.checksum_dst())))?;
        let ty = msg.mh_type();
        if self.home_address_option.is_some() && ty != MhType::BINDING_UPDATE {
            return Err(PacketError::HomeAddressOptionNotAllowed(ty));
        }
        if self.routing_address.is_some() && ty != MhType::BINDING_ACK {
            return Err(PacketError::RoutingHeaderNotAllowed(ty));
        }
        Ok(msg)
    }
}

fn addr_at(b: &[u8], at: usize) -> Ipv6Addr {
    let mut a = [0u8; 16];
    a.copy_from_slice(&b[at..at + 16]);
    Ipv6Addr::from(a)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mh::{
        BaFlags, BindingAck, BindingRefreshRequest, BindingUpdate, BuFlags, MobilityOption,
    };
    use crate::status::BaStatus;
    use esp::PacketInfo;

    fn a(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    const HOA: &str = "2001:db8:1::1000";
    const HA: &str = "2001:db8:1::1";
    const COA: &str = "2001:db8:ff::2";

    fn bu() -> Message {
        Message::BindingUpdate(BindingUpdate {
            sequence: 9,
            flags: BuFlags::ACK | BuFlags::HOME,
            lifetime: 150,
            options: vec![MobilityOption::AlternateCareOfAddress(a(COA))],
        })
    }

    fn ba() -> Message {
        Message::BindingAck(BindingAck {
            status: BaStatus::ACCEPTED,
            flags: BaFlags::default(),
            sequence: 9,
            lifetime: 150,
            options: vec![],
        })
    }

    #[test]
    fn bu_packet_round_trip() {
        let mh = bu().to_bytes(a(HOA), a(HA)).unwrap();
        let mut out = Vec::new();
        let p = build_bu_packet(a(COA), a(HA), a(HOA), &mh, &mut out)
            .unwrap()
            .to_vec();
        assert_eq!(p.len(), 40 + 24 + mh.len());
        assert_eq!(p[6], 60);
        // HAO at 8n+6 inside its header.
        assert_eq!(p[40 + 6], HOME_ADDRESS_OPTION);
        let mp = MobilityPacket::parse(&p).unwrap();
        assert_eq!(mp.src, a(COA));
        assert_eq!(mp.home_address_option, Some(a(HOA)));
        assert_eq!(mp.home_address(), a(HOA));
        assert_eq!(mp.routing_address, None);
        assert_eq!(mp.mh_offset, 64);
        assert_eq!(mp.mh, &mh[..]);
        let m = mp.decode().unwrap();
        assert_eq!(m, bu());
        let Message::BindingUpdate(b) = &m else {
            unreachable!()
        };
        assert_eq!(mp.care_of_address(b), a(COA));
        // Agrees with the data plane's view of the same packet.
        let info = PacketInfo::parse(&p).unwrap();
        assert_eq!(info.sel_src, mp.checksum_src());
        assert_eq!(info.sel_dst, mp.checksum_dst());
        assert_eq!(info.mh_type, Some(5));
        assert_eq!(info.upper_offset, mp.mh_offset);
    }

    #[test]
    fn ba_packet_round_trip() {
        let mh = ba().to_bytes(a(HA), a(HOA)).unwrap();
        let mut out = Vec::new();
        let p = build_ba_packet(a(HA), a(COA), a(HOA), &mh, &mut out)
            .unwrap()
            .to_vec();
        assert_eq!(&p[40..44], &[135, 2, 2, 1]);
        let mp = MobilityPacket::parse(&p).unwrap();
        assert_eq!((mp.src, mp.dst), (a(HA), a(COA)));
        assert_eq!(mp.routing_address, Some(a(HOA)));
        assert_eq!(mp.checksum_dst(), a(HOA));
        assert_eq!(mp.decode().unwrap(), ba());
        let info = PacketInfo::parse(&p).unwrap();
        assert_eq!(info.sel_dst, a(HOA));
        assert_eq!(info.sel_src, mp.checksum_src());
    }

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// Packets built outside this crate (checksums computed independently, the fuzz seeds).
    #[test]
    fn golden_packets() {
        let bu = unhex(concat!(
            "6000000000383c4020010db800ff0000000000000000000220010db80001000000000000000000018702",
            "01020000c91020010db80001000000000000000010003b030500601b0064c00000960100031020010db8",
            "00ff00000000000000000002"
        ));
        let mp = MobilityPacket::parse(&bu).unwrap();
        let Message::BindingUpdate(m) = mp.decode().unwrap() else {
            panic!("not a BU")
        };
        assert_eq!((m.sequence, m.lifetime), (100, 150));
        assert_eq!(mp.home_address(), a(HOA));
        assert_eq!(mp.care_of_address(&m), a(COA));
        // Our encoding of the same message is byte-identical.
        let mut out = Vec::new();
        let mh = Message::BindingUpdate(m).to_bytes(a(HOA), a(HA)).unwrap();
        assert_eq!(
            build_bu_packet(a(COA), a(HA), a(HOA), &mh, &mut out).unwrap(),
            &bu[..]
        );
        let ba = unhex(concat!(
            "6000000000282b4020010db800010000000000000000000120010db800ff000000000000000000028702",
            "02010000000020010db80001000000000000000010003b01060050f600000064009601020000"
        ));
        let mp = MobilityPacket::parse(&ba).unwrap();
        let m = mp.decode().unwrap();
        assert!(
            matches!(&m, Message::BindingAck(b) if b.sequence == 100 && b.status == BaStatus::ACCEPTED)
        );
        let mh = m.to_bytes(a(HA), a(HOA)).unwrap();
        assert_eq!(
            build_ba_packet(a(HA), a(COA), a(HOA), &mh, &mut out).unwrap(),
            &ba[..]
        );
    }

    /// The packet as received, ESP still in place: the walk stops at ESP, and the decrypted
    /// Mobility Header is checked against the outer headers' addresses.
    #[test]
    fn esp_protected_bu() {
        let mh = bu().to_bytes(a(HOA), a(HA)).unwrap();
        let hao = home_address_destination_options(a(HOA), proto::ESP);
        let esp = [0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 1, 9, 9, 9, 9];
        let mut out = Vec::new();
        let p = build(a(COA), a(HA), proto::DEST_OPTS, &hao, &esp, &mut out)
            .unwrap()
            .to_vec();
        assert_eq!(
            MobilityPacket::parse(&p),
            Err(PacketError::NotMobilityHeader(proto::ESP))
        );
        let (outer, nh) = MobilityPacket::parse_headers(&p).unwrap();
        assert_eq!(nh, proto::ESP);
        assert_eq!(outer.mh, &esp[..]);
        assert_eq!(outer.mh_offset, 64);
        assert_eq!(outer.home_address(), a(HOA));
        let info = PacketInfo::parse(&p).unwrap();
        assert_eq!((info.next_proto, info.upper_offset), (nh, outer.mh_offset));
        // What esp::Esp::decapsulate would return as the transport payload.
        let inner = outer.with_mh(&mh);
        assert_eq!(inner.decode().unwrap(), bu());
        assert_eq!(inner.home_address(), a(HOA));
    }

    #[test]
    fn at_home_packets_have_no_extension_headers() {
        let mh = bu().to_bytes(a(HOA), a(HA)).unwrap();
        let mut out = Vec::new();
        let p = build_bu_packet(a(HOA), a(HA), a(HOA), &mh, &mut out)
            .unwrap()
            .to_vec();
        assert_eq!(p.len(), 40 + mh.len());
        let mp = MobilityPacket::parse(&p).unwrap();
        assert_eq!(mp.home_address(), a(HOA));
        assert!(mp.decode().is_ok());
        let mh = ba().to_bytes(a(HA), a(HOA)).unwrap();
        let p = build_ba_packet(a(HA), a(HOA), a(HOA), &mh, &mut out)
            .unwrap()
            .to_vec();
        assert_eq!(p[6], 135);
        assert!(MobilityPacket::parse(&p).unwrap().decode().is_ok());
    }

    #[test]
    fn wrong_checksum_addresses() {
        // Checksummed over CoA instead of HoA: refused.
        let mh = bu().to_bytes(a(COA), a(HA)).unwrap();
        let mut out = Vec::new();
        let p = build_bu_packet(a(COA), a(HA), a(HOA), &mh, &mut out)
            .unwrap()
            .to_vec();
        assert_eq!(
            MobilityPacket::parse(&p).unwrap().decode(),
            Err(PacketError::Mh(MhError::BadChecksum))
        );
    }

    /// Builds a packet from raw extension headers (Next Header bytes chained here).
    fn raw(ext: &[(u8, Vec<u8>)], upper: u8, body: &[u8]) -> Vec<u8> {
        let mut chain = Vec::new();
        for (i, (_, h)) in ext.iter().enumerate() {
            let mut h = h.clone();
            h[0] = ext.get(i + 1).map_or(upper, |e| e.0);
            chain.extend_from_slice(&h);
        }
        let first = ext.first().map_or(upper, |e| e.0);
        let mut out = Vec::new();
        build(a(COA), a(HA), first, &chain, body, &mut out).unwrap();
        out
    }

    #[test]
    fn hao_found_among_other_options() {
        let mh = bu().to_bytes(a(HOA), a(HA)).unwrap();
        // Hop-by-Hop (skipped), then a Destination Options header with Pad1s, an unknown
        // skippable option (type 0x1e), then the HAO at offset 8n+6.
        let hbh = vec![0, 0, 1, 4, 0, 0, 0, 0];
        let mut d = vec![0, 3, 0, 0, 0x1e, 1, 0xaa, 0, 0, 0, 0, 0, 1, 0];
        d.extend_from_slice(&[HOME_ADDRESS_OPTION, 16]);
        d.extend_from_slice(&a(HOA).octets());
        assert_eq!(d.len(), 32);
        let p = raw(
            &[(proto::HOP_BY_HOP, hbh), (proto::DEST_OPTS, d)],
            IPPROTO_MH,
            &mh,
        );
        let mp = MobilityPacket::parse(&p).unwrap();
        assert_eq!(mp.home_address_option, Some(a(HOA)));
        assert_eq!(mp.mh_offset, 40 + 8 + 32);
        assert_eq!(mp.decode().unwrap(), bu());
        assert_eq!(PacketInfo::parse(&p).unwrap().sel_src, a(HOA));
    }

    #[test]
    fn errors() {
        let mh = bu().to_bytes(a(HOA), a(HA)).unwrap();
        let hao = home_address_destination_options(a(HOA), 0).to_vec();
        // Unknown option with "discard" action.
        let d = vec![0, 0, 0x80, 2, 0, 0, 1, 0];
        let p = raw(&[(proto::DEST_OPTS, d)], IPPROTO_MH, &mh);
        assert_eq!(
            MobilityPacket::parse(&p),
            Err(PacketError::UnknownOption(0x80))
        );
        // HAO with length 15.
        let mut bad = hao.clone();
        bad[7] = 15;
        let p = raw(&[(proto::DEST_OPTS, bad)], IPPROTO_MH, &mh);
        assert_eq!(
            MobilityPacket::parse(&p),
            Err(PacketError::BadHomeAddressOption)
        );
        // An option running past its header.
        let d = vec![0, 0, 1, 9, 0, 0, 0, 0];
        let p = raw(&[(proto::DEST_OPTS, d)], IPPROTO_MH, &mh);
        assert_eq!(MobilityPacket::parse(&p), Err(PacketError::OptionOverrun));
        // Two HAOs.
        let p = raw(
            &[
                (proto::DEST_OPTS, hao.clone()),
                (proto::DEST_OPTS, hao.clone()),
            ],
            IPPROTO_MH,
            &mh,
        );
        assert_eq!(
            MobilityPacket::parse(&p),
            Err(PacketError::BadHomeAddressOption)
        );
        // RH2 with Segments Left 0, and a type 0 routing header with segments left.
        let mut rh = type2_routing_header(a(HOA), 0).to_vec();
        rh[3] = 0;
        let p = raw(&[(proto::ROUTING, rh.clone())], IPPROTO_MH, &mh);
        assert_eq!(
            MobilityPacket::parse(&p),
            Err(PacketError::BadRoutingHeader)
        );
        rh[2] = 0;
        rh[3] = 1;
        let p = raw(&[(proto::ROUTING, rh.clone())], IPPROTO_MH, &mh);
        assert_eq!(
            MobilityPacket::parse(&p),
            Err(PacketError::UnsupportedRoutingHeader(0))
        );
        // Another routing type with no segments left is ignored.
        rh[3] = 0;
        let p = raw(&[(proto::ROUTING, rh)], IPPROTO_MH, &mh);
        assert!(MobilityPacket::parse(&p).is_ok());
        // Fragment, ESP, UDP.
        let p = raw(&[(proto::FRAGMENT, vec![0; 8])], IPPROTO_MH, &mh);
        assert_eq!(MobilityPacket::parse(&p), Err(PacketError::Fragmented));
        let p = raw(&[], proto::ESP, &[0; 16]);
        assert_eq!(
            MobilityPacket::parse(&p),
            Err(PacketError::NotMobilityHeader(50))
        );
        // Truncation, version, jumbogram, too many headers.
        assert_eq!(
            MobilityPacket::parse(&[0x60; 39]),
            Err(PacketError::Truncated)
        );
        let mut p = raw(&[], IPPROTO_MH, &mh);
        p[0] = 0x40;
        assert_eq!(MobilityPacket::parse(&p), Err(PacketError::NotIpv6));
        p[0] = 0x60;
        p[5] += 1;
        assert_eq!(MobilityPacket::parse(&p), Err(PacketError::Truncated));
        let mut p = raw(
            &[(proto::HOP_BY_HOP, vec![0, 0, 1, 4, 0, 0, 0, 0])],
            59,
            &[],
        );
        p[4] = 0;
        p[5] = 0;
        assert_eq!(MobilityPacket::parse(&p), Err(PacketError::Jumbogram));
        let ext: Vec<_> = (0..17)
            .map(|_| (proto::DEST_OPTS, vec![0, 0, 1, 4, 0, 0, 0, 0]))
            .collect();
        let p = raw(&ext, IPPROTO_MH, &mh);
        assert_eq!(MobilityPacket::parse(&p), Err(PacketError::TooManyHeaders));
        let p = raw(
            &[(proto::ROUTING, vec![0, 5, 0, 0, 0, 0, 0, 0])],
            IPPROTO_MH,
            &[],
        );
        assert_eq!(MobilityPacket::parse(&p), Err(PacketError::Truncated));
    }

    #[test]
    fn headers_only_where_allowed() {
        // A Binding Acknowledgement carrying a Home Address option.
        let mh = ba().to_bytes(a(HOA), a(HA)).unwrap();
        let mut out = Vec::new();
        let p = build_bu_packet(a(COA), a(HA), a(HOA), &mh, &mut out)
            .unwrap()
            .to_vec();
        assert_eq!(
            MobilityPacket::parse(&p).unwrap().decode(),
            Err(PacketError::HomeAddressOptionNotAllowed(
                MhType::BINDING_ACK
            ))
        );
        // A Binding Refresh Request with a type 2 routing header.
        let brr = Message::BindingRefreshRequest(BindingRefreshRequest::default());
        let mh = brr.to_bytes(a(HA), a(HOA)).unwrap();
        let p = build_ba_packet(a(HA), a(COA), a(HOA), &mh, &mut out)
            .unwrap()
            .to_vec();
        assert_eq!(
            MobilityPacket::parse(&p).unwrap().decode(),
            Err(PacketError::RoutingHeaderNotAllowed(
                MhType::BINDING_REFRESH_REQUEST
            ))
        );
        // A plain one is fine.
        let p = build_mh_packet(a(HA), a(HOA), &mh, &mut out)
            .unwrap()
            .to_vec();
        assert_eq!(MobilityPacket::parse(&p).unwrap().decode().unwrap(), brr);
    }

    #[test]
    fn oversized() {
        let mut out = vec![1];
        assert!(build_mh_packet(a(HA), a(HOA), &vec![0; 70_000], &mut out).is_none());
        assert!(out.is_empty());
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            if let Ok(mp) = MobilityPacket::parse(&data) {
                proptest::prop_assert!(mp.mh_offset <= data.len());
                let _ = mp.decode();
            }
        }
    }
}
