//! The IPv6 header and extension-header walk that the SPD and the transport mode need
//! (RFC 8200 §3–§4, RFC 4301 §4.4.1.1 for the selector fields, RFC 6275 §6.1, §6.3, §6.4 for
//! the Mobile IPv6 additions).
//!
//! [`PacketInfo::parse`] reads the fixed header, then follows at most
//! [`MAX_EXTENSION_HEADERS`] extension headers (Hop-by-Hop 0, Routing 43, Fragment 44,
//! Destination Options 60, AH 51) to the upper-layer protocol. From that it takes the selector
//! fields of RFC 4301 §4.4.1.1: the next-layer protocol, the ports of TCP, UDP, SCTP, DCCP and
//! UDP-Lite, and the Mobility Header type of protocol 135 (RFC 6275 §6.1.1, the "MH Type"
//! selector of RFC 4301 §4.4.1.1).
//!
//! Mobile IPv6 changes which addresses the policy sees (RFC 6275 §9.3.1, RFC 3776 §4): a Home
//! Address destination option (type 201) stands for the source address, and a type 2 Routing
//! header for the destination. [`PacketInfo::sel_src`] / [`PacketInfo::sel_dst`] are the
//! addresses after that substitution; the header addresses stay in `src` / `dst`.
//!
//! For transport mode the walk also finds where ESP goes (RFC 4303 §3.1.1, RFC 8200 §4.1):
//! after Hop-by-Hop, Routing, and Destination Options headers that precede a Routing header or
//! carry a Home Address option (RFC 6275 §6.3: that option comes before AH/ESP). A later
//! Destination Options header goes inside ESP.
//!
//! Not handled: jumbograms (RFC 2675; payload length 0 is refused), ICMPv6 type/code as
//! selector ports (ICMPv6 packets have no ports here), and the ports of non-first fragments
//! (RFC 4301 §7: they are "OPAQUE"; a selector that names ports does not match them).

use std::net::Ipv6Addr;

/// Length of the fixed IPv6 header (RFC 8200 §3).
pub const IPV6_HEADER_LEN: usize = 40;
/// The walk gives up (the packet is malformed for us) after this many extension headers.
pub const MAX_EXTENSION_HEADERS: usize = 16;

/// IPv6 next-header values used here (IANA "Assigned Internet Protocol Numbers").
pub mod proto {
    /// IPv6 Hop-by-Hop Options.
    pub const HOP_BY_HOP: u8 = 0;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
    /// DCCP.
    pub const DCCP: u8 = 33;
    /// IPv6 encapsulated in IPv6 (tunnel mode ESP next header).
    pub const IPV6: u8 = 41;
    /// Routing header.
    pub const ROUTING: u8 = 43;
    /// Fragment header.
    pub const FRAGMENT: u8 = 44;
    /// ESP.
    pub const ESP: u8 = 50;
    /// AH.
    pub const AH: u8 = 51;
    /// ICMPv6.
    pub const ICMPV6: u8 = 58;
    /// No Next Header; ESP uses it for dummy packets (RFC 4303 §2.6).
    pub const NO_NEXT_HEADER: u8 = 59;
    /// Destination Options.
    pub const DEST_OPTS: u8 = 60;
    /// SCTP.
    pub const SCTP: u8 = 132;
    /// Mobility Header (RFC 6275 §6.1).
    pub const MOBILITY: u8 = 135;
    /// UDP-Lite.
    pub const UDP_LITE: u8 = 136;
}

/// Home Address destination option type (RFC 6275 §6.3).
const OPT_HOME_ADDRESS: u8 = 201;
/// Type 2 Routing header (RFC 6275 §6.4).
const ROUTING_TYPE_2: u8 = 2;

/// Field offsets of the fixed IPv6 header (RFC 8200 §3).
mod field {
    use std::ops::Range;
    pub(super) const VER_TC_FLOW: Range<usize> = 0..4;
    pub(super) const PAYLOAD_LEN: Range<usize> = 4..6;
    pub(super) const NEXT_HEADER: usize = 6;
    pub(super) const HOP_LIMIT: usize = 7;
    pub(super) const SRC: Range<usize> = 8..24;
    pub(super) const DST: Range<usize> = 24..40;
}

/// Why an IPv6 packet could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PacketError {
    /// Shorter than its headers or its payload length says.
    #[error("IPv6 packet truncated")]
    Truncated,
    /// The version field is not 6.
    #[error("not an IPv6 packet")]
    NotIpv6,
    /// Payload length 0 (a jumbogram, RFC 2675), not supported.
    #[error("IPv6 jumbograms are not supported")]
    Jumbogram,
    /// More than [`MAX_EXTENSION_HEADERS`] extension headers, or an inconsistent one.
    #[error("bad IPv6 extension header chain")]
    BadExtensionHeader,
}

/// What the SPD and the ESP modes need to know about one IPv6 packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PacketInfo {
    /// Source address of the IPv6 header.
    pub src: Ipv6Addr,
    /// Destination address of the IPv6 header.
    pub dst: Ipv6Addr,
    /// Source address for policy: the Home Address option's address if there is one.
    pub sel_src: Ipv6Addr,
    /// Destination address for policy: the type 2 Routing header's address if there is one.
    pub sel_dst: Ipv6Addr,
    /// Upper-layer protocol (after all extension headers). For a non-first fragment, 44.
    pub next_proto: u8,
    /// Source port (TCP, UDP, SCTP, DCCP, UDP-Lite), if present.
    pub src_port: Option<u16>,
    /// Destination port, if present.
    pub dst_port: Option<u16>,
    /// Mobility Header type, for protocol 135.
    pub mh_type: Option<u8>,
    /// Hop limit of the IPv6 header.
    pub hop_limit: u8,
    /// 40 + payload length. Bytes beyond it are not part of the packet.
    pub total_len: usize,
    /// Offset of the upper-layer header.
    pub upper_offset: usize,
    /// Offset where transport-mode ESP is inserted (see the module doc).
    pub esp_offset: usize,
    /// Offset of the Next Header byte that names the header at `esp_offset`.
    pub esp_nh_index: usize,
    /// The packet carries a Fragment header.
    pub fragment: bool,
}

impl PacketInfo {
    /// Reads an IPv6 packet as it comes from a TUN device (no link-layer header, no packet
    /// information prefix). Trailing bytes beyond the payload length are ignored.
    pub fn parse(p: &[u8]) -> Result<Self, PacketError> {
        if p.len() < IPV6_HEADER_LEN {
            return Err(PacketError::Truncated);
        }
        if p[field::VER_TC_FLOW.start] >> 4 != 6 {
            return Err(PacketError::NotIpv6);
        }
        let plen = usize::from(u16::from_be_bytes([
            p[field::PAYLOAD_LEN.start],
            p[field::PAYLOAD_LEN.start + 1],
        ]));
        if plen == 0 && p[field::NEXT_HEADER] == proto::HOP_BY_HOP {
            return Err(PacketError::Jumbogram);
        }
        let total_len = IPV6_HEADER_LEN + plen;
        if p.len() < total_len {
            return Err(PacketError::Truncated);
        }
        let p = &p[..total_len];
        let src = addr_at(p, field::SRC.start);
        let dst = addr_at(p, field::DST.start);
        let mut info = Self {
            src,
            dst,
            sel_src: src,
            sel_dst: dst,
            next_proto: p[field::NEXT_HEADER],
            src_port: None,
            dst_port: None,
            mh_type: None,
            hop_limit: p[field::HOP_LIMIT],
            total_len,
            upper_offset: IPV6_HEADER_LEN,
            esp_offset: IPV6_HEADER_LEN,
            esp_nh_index: field::NEXT_HEADER,
            fragment: false,
        };
        let mut nh = info.next_proto;
        let mut off = IPV6_HEADER_LEN;
        // Whether every header so far stays in front of a transport-mode ESP header.
        let mut outside = true;
        for _ in 0..=MAX_EXTENSION_HEADERS {
            let len = match nh {
                proto::HOP_BY_HOP | proto::ROUTING | proto::DEST_OPTS => {
                    let h = p.get(off..off + 2).ok_or(PacketError::Truncated)?;
                    (usize::from(h[1]) + 1) * 8
                }
                proto::FRAGMENT => 8,
                // RFC 4302 §2.2: Payload Len is the AH length in 4-octet units, minus 2.
                proto::AH => {
                    let h = p.get(off..off + 2).ok_or(PacketError::Truncated)?;
                    (usize::from(h[1]) + 2) * 4
                }
                _ => {
                    info.next_proto = nh;
                    info.upper_offset = off;
                    info.read_upper(&p[off..]);
                    return Ok(info);
                }
            };
            let hdr = p.get(off..off + len).ok_or(PacketError::Truncated)?;
            let mut stays_outside = false;
            match nh {
                proto::HOP_BY_HOP => stays_outside = true,
                proto::ROUTING => {
                    stays_outside = true;
                    // RFC 6275 §6.4: type 2, Hdr Ext Len 2, Segments Left 1, one address.
                    if hdr[2] == ROUTING_TYPE_2 && hdr.len() >= 24 {
                        info.sel_dst = addr_at(hdr, 8);
                    }
                }
                proto::DEST_OPTS => {
                    if let Some(hoa) = home_address_option(&hdr[2..]) {
                        info.sel_src = hoa;
                        stays_outside = true;
                    }
                    if hdr[0] == proto::ROUTING {
                        stays_outside = true;
                    }
                }
                proto::FRAGMENT => {
                    info.fragment = true;
                    stays_outside = true;
                    let frag_offset = u16::from_be_bytes([hdr[2], hdr[3]]) >> 3;
                    if frag_offset != 0 {
                        // RFC 4301 §7: a non-first fragment has no next-layer header.
                        info.next_proto = proto::FRAGMENT;
                        info.upper_offset = off;
                        return Ok(info);
                    }
                }
                _ => {}
            }
            if outside && stays_outside {
                info.esp_offset = off + len;
                info.esp_nh_index = off;
            } else {
                outside = false;
            }
            nh = hdr[0];
            off += len;
        }
        Err(PacketError::BadExtensionHeader)
    }

    /// Fills the port and MH type fields from the upper-layer header `h` of protocol
    /// `next_proto`. Missing bytes leave them `None`.
    fn read_upper(&mut self, h: &[u8]) {
        let (s, d, m) = upper_layer_fields(self.next_proto, h);
        self.src_port = s;
        self.dst_port = d;
        self.mh_type = m;
    }
}

/// The selector fields of an upper-layer header: (source port, destination port, MH type).
pub fn upper_layer_fields(next_proto: u8, h: &[u8]) -> (Option<u16>, Option<u16>, Option<u8>) {
    match next_proto {
        proto::TCP | proto::UDP | proto::SCTP | proto::DCCP | proto::UDP_LITE if h.len() >= 4 => (
            Some(u16::from_be_bytes([h[0], h[1]])),
            Some(u16::from_be_bytes([h[2], h[3]])),
            None,
        ),
        // RFC 6275 §6.1.1: Payload Proto, Header Len, MH Type, ...
        proto::MOBILITY if h.len() >= 3 => (None, None, Some(h[2])),
        _ => (None, None, None),
    }
}

/// Finds a Home Address option in the options area of a Destination Options header.
fn home_address_option(mut opts: &[u8]) -> Option<Ipv6Addr> {
    while let Some((&ty, rest)) = opts.split_first() {
        if ty == 0 {
            // Pad1 (RFC 8200 §4.2).
            opts = rest;
            continue;
        }
        let (&len, rest) = rest.split_first()?;
        let data = rest.get(..usize::from(len))?;
        if ty == OPT_HOME_ADDRESS && data.len() == 16 {
            return Some(addr_at(data, 0));
        }
        opts = &rest[usize::from(len)..];
    }
    None
}

fn addr_at(p: &[u8], at: usize) -> Ipv6Addr {
    let mut a = [0u8; 16];
    a.copy_from_slice(&p[at..at + 16]);
    Ipv6Addr::from(a)
}

/// Appends a fixed IPv6 header and `payload` to `out` (which is cleared first): for handing a
/// transport-mode payload to a TUN device after [`crate::EspAction::Transport`]. Traffic class and
/// flow label are zero. Returns `None` (and leaves `out` empty) if the payload is over 65535
/// bytes.
pub fn build_ipv6_packet<'a>(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    next_header: u8,
    hop_limit: u8,
    payload: &[u8],
    out: &'a mut Vec<u8>,
) -> Option<&'a [u8]> {
    out.clear();
    let plen = u16::try_from(payload.len()).ok()?;
    out.reserve(IPV6_HEADER_LEN + payload.len());
    out.extend_from_slice(&[0x60, 0, 0, 0]);
    out.extend_from_slice(&plen.to_be_bytes());
    out.push(next_header);
    out.push(hop_limit);
    out.extend_from_slice(&src.octets());
    out.extend_from_slice(&dst.octets());
    out.extend_from_slice(payload);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    /// Builds an IPv6 packet from extension headers (each given with its own type; the Next
    /// Header bytes are chained here) and an upper-layer payload.
    pub(crate) fn build(
        src: &str,
        dst: &str,
        ext: &[(u8, Vec<u8>)],
        upper: u8,
        body: &[u8],
    ) -> Vec<u8> {
        let mut chain = Vec::new();
        for (i, (_, h)) in ext.iter().enumerate() {
            let mut h = h.clone();
            h[0] = ext.get(i + 1).map_or(upper, |e| e.0);
            chain.extend_from_slice(&h);
        }
        chain.extend_from_slice(body);
        let first = ext.first().map_or(upper, |e| e.0);
        let mut out = Vec::new();
        build_ipv6_packet(a(src), a(dst), first, 64, &chain, &mut out).unwrap();
        out
    }

    fn hao(addr: &str) -> Vec<u8> {
        // Dest opts, len 2 (24 bytes): PadN(4) to align, HAO type 201 len 16.
        let mut h = vec![0, 2, 1, 2, 0, 0, OPT_HOME_ADDRESS, 16];
        h.extend_from_slice(&a(addr).octets());
        h
    }

    fn rh2(addr: &str) -> Vec<u8> {
        let mut h = vec![0, 2, ROUTING_TYPE_2, 1, 0, 0, 0, 0];
        h.extend_from_slice(&a(addr).octets());
        h
    }

    #[test]
    fn plain_udp() {
        let p = build(
            "2001:db8::1",
            "2001:db8::2",
            &[],
            proto::UDP,
            &[0x02, 0x22, 0x02, 0x23, 0, 8, 0, 0],
        );
        let i = PacketInfo::parse(&p).unwrap();
        assert_eq!(i.next_proto, proto::UDP);
        assert_eq!((i.src_port, i.dst_port), (Some(546), Some(547)));
        assert_eq!(i.upper_offset, 40);
        assert_eq!(i.esp_offset, 40);
        assert_eq!(i.esp_nh_index, 6);
        assert_eq!(i.total_len, 48);
    }

    #[test]
    fn binding_update_with_hao() {
        // IPv6 (CoA -> HA), Dest Opts (HAO = HoA), MH type 5 (BU).
        let p = build(
            "2001:db8:ff::2",
            "2001:db8:ff::1",
            &[(proto::DEST_OPTS, hao("2001:db8:1::1000"))],
            proto::MOBILITY,
            &[59, 1, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        );
        let i = PacketInfo::parse(&p).unwrap();
        assert_eq!(i.src, a("2001:db8:ff::2"));
        assert_eq!(i.sel_src, a("2001:db8:1::1000"));
        assert_eq!(i.sel_dst, a("2001:db8:ff::1"));
        assert_eq!(i.next_proto, proto::MOBILITY);
        assert_eq!(i.mh_type, Some(5));
        assert_eq!(i.esp_offset, 64);
        assert_eq!(i.esp_nh_index, 40);
    }

    #[test]
    fn binding_ack_with_rh2() {
        let p = build(
            "2001:db8:ff::1",
            "2001:db8:ff::2",
            &[(proto::ROUTING, rh2("2001:db8:1::1000"))],
            proto::MOBILITY,
            &[59, 1, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        );
        let i = PacketInfo::parse(&p).unwrap();
        assert_eq!(i.sel_dst, a("2001:db8:1::1000"));
        assert_eq!(i.mh_type, Some(6));
        assert_eq!(i.esp_offset, 64);
    }

    #[test]
    fn trailing_dest_opts_go_inside_esp() {
        let pad = vec![0, 0, 1, 4, 0, 0, 0, 0];
        let p = build(
            "2001:db8::1",
            "2001:db8::2",
            &[(proto::HOP_BY_HOP, pad.clone()), (proto::DEST_OPTS, pad)],
            proto::TCP,
            &[0, 80, 0x1f, 0x90, 0, 0, 0, 0],
        );
        let i = PacketInfo::parse(&p).unwrap();
        assert_eq!(i.esp_offset, 48);
        assert_eq!(i.esp_nh_index, 40);
        assert_eq!(i.upper_offset, 56);
        assert_eq!((i.src_port, i.dst_port), (Some(80), Some(8080)));
    }

    #[test]
    fn fragments() {
        let first = vec![0, 0, 0, 1, 0, 0, 0, 7];
        let p = build(
            "::1",
            "::2",
            &[(proto::FRAGMENT, first)],
            proto::UDP,
            &[0, 1, 0, 2],
        );
        let i = PacketInfo::parse(&p).unwrap();
        assert!(i.fragment);
        assert_eq!((i.next_proto, i.dst_port), (proto::UDP, Some(2)));
        let later = vec![0, 0, 0, 0x11, 0, 0, 0, 7];
        let p = build(
            "::1",
            "::2",
            &[(proto::FRAGMENT, later)],
            proto::UDP,
            &[0, 1, 0, 2],
        );
        let i = PacketInfo::parse(&p).unwrap();
        assert_eq!((i.next_proto, i.dst_port), (proto::FRAGMENT, None));
    }

    #[test]
    fn errors() {
        assert_eq!(PacketInfo::parse(&[0x60; 39]), Err(PacketError::Truncated));
        let mut p = build("::1", "::2", &[], proto::UDP, &[0, 1, 0, 2]);
        p[0] = 0x45;
        assert_eq!(PacketInfo::parse(&p), Err(PacketError::NotIpv6));
        p[0] = 0x60;
        p[5] = 5;
        assert_eq!(PacketInfo::parse(&p), Err(PacketError::Truncated));
        // Trailing bytes are ignored.
        p[5] = 3;
        assert_eq!(PacketInfo::parse(&p).unwrap().total_len, 43);
        assert_eq!(PacketInfo::parse(&p).unwrap().src_port, None);
        // A chain of 17 empty destination options headers is refused.
        let ext: Vec<_> = (0..17)
            .map(|_| (proto::DEST_OPTS, vec![0, 0, 1, 4, 0, 0, 0, 0]))
            .collect();
        let p = build("::1", "::2", &ext, proto::UDP, &[0, 1, 0, 2]);
        assert_eq!(PacketInfo::parse(&p), Err(PacketError::BadExtensionHeader));
        // A header running past the end.
        let p = build(
            "::1",
            "::2",
            &[(proto::ROUTING, vec![0, 5, 0, 0, 0, 0, 0, 0])],
            proto::UDP,
            &[],
        );
        assert_eq!(PacketInfo::parse(&p), Err(PacketError::Truncated));
        // Jumbogram.
        let mut p = build(
            "::1",
            "::2",
            &[(proto::HOP_BY_HOP, vec![0, 0, 1, 4, 0, 0, 0, 0])],
            59,
            &[],
        );
        p[4] = 0;
        p[5] = 0;
        assert_eq!(PacketInfo::parse(&p), Err(PacketError::Jumbogram));
    }
}
