//! IPsec SAs negotiated by Quick Mode, and the traffic selectors carried in its ID payloads
//! (RFC 2409 §5.5, RFC 2407 §4.6.2).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use isakmp::{IdPayload, IdType};
use zeroize::Zeroizing;

use crate::proposal::EspProposal;

/// A traffic selector: an address prefix, a next protocol (0 = any) and a port (0 = any).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TrafficSelector {
    /// The network address (host bits zero for a prefix).
    pub addr: IpAddr,
    /// The prefix length.
    pub prefix_len: u8,
    /// Next protocol (135 = Mobility Header), 0 for any.
    pub protocol: u8,
    /// Port, 0 for any.
    pub port: u16,
}

impl TrafficSelector {
    /// A single host, any protocol.
    pub fn host(addr: IpAddr) -> Self {
        Self {
            addr,
            prefix_len: max_prefix(addr),
            protocol: 0,
            port: 0,
        }
    }

    /// A prefix, any protocol. Host bits are cleared.
    pub fn prefix(addr: IpAddr, prefix_len: u8) -> Self {
        let prefix_len = prefix_len.min(max_prefix(addr));
        Self {
            addr: mask(addr, prefix_len),
            prefix_len,
            protocol: 0,
            port: 0,
        }
    }

    /// The same selector limited to one protocol and port.
    pub fn with_protocol(mut self, protocol: u8, port: u16) -> Self {
        self.protocol = protocol;
        self.port = port;
        self
    }

    /// Parses `2001:db8::/64`, `2001:db8::1` or `::/0`, optionally followed by `[proto/port]`
    /// as in strongSwan (`2001:db8::1[135/0]`, `::/0[udp/547]`).
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        let (net, pp) = match s.split_once('[') {
            Some((n, rest)) => (n, Some(rest.strip_suffix(']')?)),
            None => (s, None),
        };
        let ts = match net.split_once('/') {
            Some((a, l)) => {
                let a: IpAddr = a.parse().ok()?;
                let l: u8 = l.parse().ok()?;
                if l > max_prefix(a) {
                    return None;
                }
                Self::prefix(a, l)
            }
            None => Self::host(net.parse().ok()?),
        };
        let Some(pp) = pp else { return Some(ts) };
        let (proto, port) = pp.split_once('/').unwrap_or((pp, "0"));
        let proto = match proto {
            "udp" => 17,
            "tcp" => 6,
            "icmp6" | "ipv6-icmp" => 58,
            "mh" | "ipv6-mh" => 135,
            "" | "any" => 0,
            p => p.parse().ok()?,
        };
        let port = if port == "any" || port.is_empty() {
            0
        } else {
            port.parse().ok()?
        };
        Some(ts.with_protocol(proto, port))
    }

    /// Whether `other` lies completely inside this selector.
    pub fn contains(&self, other: &Self) -> bool {
        self.addr.is_ipv4() == other.addr.is_ipv4()
            && other.prefix_len >= self.prefix_len
            && mask(other.addr, self.prefix_len) == self.addr
            && (self.protocol == 0 || self.protocol == other.protocol)
            && (self.port == 0 || self.port == other.port)
    }

    /// Whether `addr` matches the address part.
    pub fn contains_addr(&self, addr: IpAddr) -> bool {
        addr.is_ipv4() == self.addr.is_ipv4() && mask(addr, self.prefix_len) == self.addr
    }

    /// The Quick Mode ID payload for this selector: `ID_IPV6_ADDR` for a host, else
    /// `ID_IPV6_ADDR_SUBNET` (address then mask), and the IPv4 equivalents.
    pub fn to_id(&self) -> IdPayload {
        let host = self.prefix_len == max_prefix(self.addr);
        let (id_type, data) = match (self.addr, host) {
            (IpAddr::V6(a), true) => (IdType::IPV6_ADDR, a.octets().to_vec()),
            (IpAddr::V4(a), true) => (IdType::IPV4_ADDR, a.octets().to_vec()),
            (IpAddr::V6(a), false) => {
                let mut d = a.octets().to_vec();
                d.extend_from_slice(&Ipv6Addr::from(prefix_mask128(self.prefix_len)).octets());
                (IdType::IPV6_ADDR_SUBNET, d)
            }
            (IpAddr::V4(a), false) => {
                let mut d = a.octets().to_vec();
                let m = u32::try_from(prefix_mask128(self.prefix_len) >> 96).unwrap_or(0);
                d.extend_from_slice(&m.to_be_bytes());
                (IdType::IPV4_ADDR_SUBNET, d)
            }
        };
        IdPayload {
            id_type,
            protocol: self.protocol,
            port: self.port,
            data,
        }
    }

    /// Reads a Quick Mode ID payload. Ranges and masks that are not prefixes are refused.
    pub fn from_id(id: &IdPayload) -> Option<Self> {
        let d = id.data.as_slice();
        let ts = match id.id_type {
            IdType::IPV6_ADDR => Self::host(IpAddr::from(<[u8; 16]>::try_from(d).ok()?)),
            IdType::IPV4_ADDR => Self::host(IpAddr::from(<[u8; 4]>::try_from(d).ok()?)),
            IdType::IPV6_ADDR_SUBNET if d.len() == 32 => {
                let a = <[u8; 16]>::try_from(&d[..16]).ok()?;
                let m = u128::from_be_bytes(<[u8; 16]>::try_from(&d[16..]).ok()?);
                Self::prefix(IpAddr::from(a), mask_to_prefix(m)?)
            }
            IdType::IPV4_ADDR_SUBNET if d.len() == 8 => {
                let a = <[u8; 4]>::try_from(&d[..4]).ok()?;
                let m = u32::from_be_bytes(<[u8; 4]>::try_from(&d[4..]).ok()?);
                let l = mask_to_prefix(u128::from(m) << 96)?;
                Self::prefix(IpAddr::from(a), l)
            }
            _ => return None,
        };
        Some(ts.with_protocol(id.protocol, id.port))
    }
}

impl fmt::Display for TrafficSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)?;
        if self.protocol != 0 || self.port != 0 {
            write!(f, "[{}/{}]", self.protocol, self.port)?;
        }
        Ok(())
    }
}

fn max_prefix(a: IpAddr) -> u8 {
    if a.is_ipv4() { 32 } else { 128 }
}

fn prefix_mask128(len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(len.min(128)))
    }
}

fn mask_to_prefix(m: u128) -> Option<u8> {
    let l = m.leading_ones();
    (m.checked_shl(l).unwrap_or(0) == 0).then(|| u8::try_from(l).unwrap_or(128))
}

fn mask(a: IpAddr, len: u8) -> IpAddr {
    match a {
        IpAddr::V6(v) => IpAddr::V6(Ipv6Addr::from(u128::from(v) & prefix_mask128(len))),
        IpAddr::V4(v) => {
            let m = u32::try_from(prefix_mask128(len.min(32)) >> 96).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(v) & m))
        }
    }
}

/// ESP mode of a negotiated SA.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Tunnel mode (encapsulation 1, or 3 in UDP).
    Tunnel,
    /// Transport mode (encapsulation 2, or 4 in UDP).
    Transport,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Tunnel => "tunnel",
            Self::Transport => "transport",
        })
    }
}

/// Keys of one direction of an ESP SA. Debug output never shows them.
#[derive(Clone)]
pub struct EspKeys {
    /// Encryption key (for AES-GCM: key followed by the 4-byte salt).
    pub encr: Zeroizing<Vec<u8>>,
    /// Integrity key; empty for AEAD.
    pub integ: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for EspKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "EspKeys {{ encr: <{} bytes>, integ: <{} bytes> }}",
            self.encr.len(),
            self.integ.len()
        )
    }
}

/// A pair of ESP SAs established by one Quick Mode.
#[derive(Clone, Debug)]
pub struct ChildSa {
    /// The IKE SA it was negotiated on.
    pub ike_sa: crate::IkeSaId,
    /// The Quick Mode message ID (identifies the negotiation in logs).
    pub message_id: u32,
    /// Tunnel or transport.
    pub mode: Mode,
    /// Whether ESP is carried in UDP (RFC 3948; encapsulation modes 3/4).
    pub udp_encap: bool,
    /// Our SPI: the peer sends with it.
    pub spi_in: u32,
    /// The peer's SPI: we send with it.
    pub spi_out: u32,
    /// Our side's selector.
    pub local_ts: TrafficSelector,
    /// The peer's selector.
    pub remote_ts: TrafficSelector,
    /// Our IKE endpoint (outer address for tunnel mode and UDP encapsulation).
    pub local: SocketAddr,
    /// The peer's IKE endpoint.
    pub remote: SocketAddr,
    /// The suite.
    pub proposal: EspProposal,
    /// Keys for packets we receive (SPI `spi_in`).
    pub keys_in: EspKeys,
    /// Keys for packets we send (SPI `spi_out`).
    pub keys_out: EspKeys,
    /// Lifetime in seconds.
    pub lifetime: Duration,
    /// Lifetime in kilobytes, if negotiated.
    pub life_kbytes: Option<u64>,
    /// Whether we initiated the Quick Mode.
    pub initiator: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors() {
        let p = TrafficSelector::parse("2001:db8:1::/64").unwrap();
        let h = TrafficSelector::parse("2001:db8:1::1000").unwrap();
        assert!(p.contains(&h));
        assert!(!h.contains(&p));
        assert!(TrafficSelector::parse("::/0").unwrap().contains(&p));
        let mh = TrafficSelector::parse("2001:db8:1::1000[mh/0]").unwrap();
        assert_eq!(mh.protocol, 135);
        assert!(p.contains(&mh));
        assert!(!mh.contains(&h));
        assert_eq!(TrafficSelector::parse("::/0[udp/547]").unwrap().port, 547);
        assert!(TrafficSelector::parse("2001:db8::/129").is_none());
    }

    #[test]
    fn id_round_trip() {
        for s in [
            "2001:db8:1::/64",
            "2001:db8:1::5",
            "::/0",
            "192.0.2.0/24",
            "192.0.2.7",
            "2001:db8::1[135/0]",
        ] {
            let t = TrafficSelector::parse(s).unwrap();
            assert_eq!(TrafficSelector::from_id(&t.to_id()), Some(t), "{s}");
        }
        let bad = IdPayload {
            id_type: IdType::IPV6_ADDR_SUBNET,
            protocol: 0,
            port: 0,
            data: [
                [0u8; 16],
                [0xff, 0, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            ]
            .concat(),
        };
        assert_eq!(TrafficSelector::from_id(&bad), None);
    }
}
