//! Upper-layer datagrams the daemons build and read themselves inside the tunnel: UDP over
//! IPv6 (RFC 768, RFC 8200 §8.1 for the checksum over the pseudo-header) and the checksum
//! the Mobility Header uses too (RFC 6275 §6.1.1 refers to the same pseudo-header).
//!
//! The home agent's DHCPv6 relay and the mobile node's DHCPv6 client exchange their messages
//! through ESP without the kernel's UDP stack: [`build_udp`] makes the inner packet to hand
//! to [`crate::Esp::encapsulate`], and [`parse_udp`] reads a decapsulated one, checksum
//! verified.

use std::net::{Ipv6Addr, SocketAddrV6};

use crate::packet::{IPV6_HEADER_LEN, proto};

/// Length of the UDP header.
pub const UDP_HEADER_LEN: usize = 8;
/// Hop limit of the packets [`build_udp`] makes.
const HOP_LIMIT: u8 = 64;

/// The upper-layer checksum of RFC 8200 §8.1: one's complement sum over the pseudo-header
/// (source, destination, upper-layer length, next header) and `data`, whose checksum field
/// must be zero (when computing) or hold the received value (then a correct packet sums to 0).
pub fn upper_layer_checksum(src: Ipv6Addr, dst: Ipv6Addr, next_header: u8, data: &[u8]) -> u16 {
    let mut sum: u64 = 0;
    for chunk in src
        .octets()
        .chunks_exact(2)
        .chain(dst.octets().chunks_exact(2))
    {
        sum += u64::from(u16::from_be_bytes([chunk[0], chunk[1]]));
    }
    let len = data.len() as u64;
    sum += (len >> 16) + (len & 0xffff);
    sum += u64::from(next_header);
    let mut words = data.chunks_exact(2);
    for w in &mut words {
        sum += u64::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [last] = words.remainder() {
        sum += u64::from(u16::from_be_bytes([*last, 0]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Builds an IPv6 packet carrying one UDP datagram (checksum set; RFC 8200 §8.1 forbids a
/// zero UDP checksum over IPv6, so a computed 0 is sent as 0xffff). `out` is cleared first.
/// `None` (and `out` empty) if the datagram does not fit in 65535 bytes.
pub fn build_udp<'a>(
    src: SocketAddrV6,
    dst: SocketAddrV6,
    payload: &[u8],
    out: &'a mut Vec<u8>,
) -> Option<&'a [u8]> {
    out.clear();
    let udp_len = u16::try_from(UDP_HEADER_LEN + payload.len()).ok()?;
    out.reserve(IPV6_HEADER_LEN + usize::from(udp_len));
    out.extend_from_slice(&[0x60, 0, 0, 0]);
    out.extend_from_slice(&udp_len.to_be_bytes());
    out.push(proto::UDP);
    out.push(HOP_LIMIT);
    out.extend_from_slice(&src.ip().octets());
    out.extend_from_slice(&dst.ip().octets());
    out.extend_from_slice(&src.port().to_be_bytes());
    out.extend_from_slice(&dst.port().to_be_bytes());
    out.extend_from_slice(&udp_len.to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(payload);
    let c = upper_layer_checksum(*src.ip(), *dst.ip(), proto::UDP, &out[IPV6_HEADER_LEN..]);
    let c = if c == 0 { 0xffff } else { c };
    out[IPV6_HEADER_LEN + 6..IPV6_HEADER_LEN + 8].copy_from_slice(&c.to_be_bytes());
    Some(out)
}

/// A UDP datagram read from an IPv6 packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UdpDatagram<'a> {
    /// Source address and port.
    pub src: SocketAddrV6,
    /// Destination address and port.
    pub dst: SocketAddrV6,
    /// The UDP payload.
    pub payload: &'a [u8],
}

/// Why [`parse_udp`] refused a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UdpError {
    /// Not IPv6, or shorter than its headers.
    #[error("truncated or not IPv6")]
    Truncated,
    /// The next header after the fixed header is not UDP (extension headers are not walked).
    #[error("not UDP directly after the IPv6 header")]
    NotUdp,
    /// The UDP length disagrees with the IPv6 payload length.
    #[error("UDP length does not match the IPv6 payload length")]
    Length,
    /// Checksum zero (forbidden over IPv6) or wrong.
    #[error("bad UDP checksum")]
    Checksum,
}

/// The destination port of an IPv6 packet whose fixed header is followed directly by UDP,
/// without checking anything else: the cheap test the data plane makes on every packet
/// before [`parse_udp`].
pub fn udp_dst_port(packet: &[u8]) -> Option<u16> {
    if packet.len() < IPV6_HEADER_LEN + UDP_HEADER_LEN || packet[6] != proto::UDP {
        return None;
    }
    Some(u16::from_be_bytes([packet[42], packet[43]]))
}

/// Reads a UDP datagram that directly follows the fixed IPv6 header, verifying lengths and
/// the checksum.
pub fn parse_udp(packet: &[u8]) -> Result<UdpDatagram<'_>, UdpError> {
    if packet.len() < IPV6_HEADER_LEN + UDP_HEADER_LEN || packet[0] >> 4 != 6 {
        return Err(UdpError::Truncated);
    }
    if packet[6] != proto::UDP {
        return Err(UdpError::NotUdp);
    }
    let plen = usize::from(u16::from_be_bytes([packet[4], packet[5]]));
    let Some(udp) = packet.get(IPV6_HEADER_LEN..IPV6_HEADER_LEN + plen) else {
        return Err(UdpError::Truncated);
    };
    let udp_len = usize::from(u16::from_be_bytes([udp[4], udp[5]]));
    if udp_len != plen || udp_len < UDP_HEADER_LEN {
        return Err(UdpError::Length);
    }
    let addr = |at: usize| {
        let mut a = [0u8; 16];
        a.copy_from_slice(&packet[at..at + 16]);
        Ipv6Addr::from(a)
    };
    let (src, dst) = (addr(8), addr(24));
    if udp[6..8] == [0, 0] || upper_layer_checksum(src, dst, proto::UDP, udp) != 0 {
        return Err(UdpError::Checksum);
    }
    Ok(UdpDatagram {
        src: SocketAddrV6::new(src, u16::from_be_bytes([udp[0], udp[1]]), 0, 0),
        dst: SocketAddrV6::new(dst, u16::from_be_bytes([udp[2], udp[3]]), 0, 0),
        payload: &udp[UDP_HEADER_LEN..],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str, port: u16) -> SocketAddrV6 {
        SocketAddrV6::new(s.parse().unwrap(), port, 0, 0)
    }

    #[test]
    fn round_trip() {
        let mut out = Vec::new();
        let p = build_udp(sa("fe80::1", 546), sa("ff02::1:2", 547), b"hello", &mut out)
            .unwrap()
            .to_vec();
        assert_eq!(p.len(), 40 + 8 + 5);
        assert_eq!(udp_dst_port(&p), Some(547));
        let d = parse_udp(&p).unwrap();
        assert_eq!(d.src, sa("fe80::1", 546));
        assert_eq!(d.dst, sa("ff02::1:2", 547));
        assert_eq!(d.payload, b"hello");
    }

    /// The checksum agrees with a straightforward RFC 1071 sum over the pseudo-header bytes
    /// laid out as RFC 8200 §8.1 draws them (odd payload length: the last byte is padded).
    #[test]
    fn checksum_matches_rfc1071_reference() {
        let mut out = Vec::new();
        let p = build_udp(sa("fe80::1", 546), sa("ff02::1:2", 547), b"abc", &mut out).unwrap();
        let c = u16::from_be_bytes([p[46], p[47]]);
        assert_eq!(c, expected_checksum(p));
    }

    /// Reference: RFC 1071 over the explicit pseudo-header bytes.
    fn expected_checksum(p: &[u8]) -> u16 {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&p[8..40]);
        let ulen = (p.len() - 40) as u32;
        bytes.extend_from_slice(&ulen.to_be_bytes());
        bytes.extend_from_slice(&[0, 0, 0, 17]);
        let mut udp = p[40..].to_vec();
        udp[6] = 0;
        udp[7] = 0;
        bytes.extend_from_slice(&udp);
        if bytes.len() % 2 == 1 {
            bytes.push(0);
        }
        let mut sum: u32 = 0;
        for w in bytes.chunks(2) {
            sum += u32::from(u16::from_be_bytes([w[0], w[1]]));
        }
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        !(sum as u16)
    }

    #[test]
    fn refuses_bad_checksum_length_and_truncation() {
        let mut out = Vec::new();
        let p = build_udp(
            sa("2001:db8::1", 547),
            sa("2001:db8::2", 546),
            b"xyz!",
            &mut out,
        )
        .unwrap()
        .to_vec();
        let mut bad = p.clone();
        bad[50] ^= 1;
        assert_eq!(parse_udp(&bad), Err(UdpError::Checksum));
        let mut zero = p.clone();
        zero[46] = 0;
        zero[47] = 0;
        assert_eq!(parse_udp(&zero), Err(UdpError::Checksum));
        let mut len = p.clone();
        len[45] += 1;
        assert_eq!(parse_udp(&len), Err(UdpError::Length));
        for n in 0..p.len() {
            assert!(parse_udp(&p[..n]).is_err(), "accepted {n} bytes");
        }
        let mut tcp = p.clone();
        tcp[6] = 6;
        assert_eq!(parse_udp(&tcp), Err(UdpError::NotUdp));
        assert_eq!(udp_dst_port(&tcp), None);
    }
}
