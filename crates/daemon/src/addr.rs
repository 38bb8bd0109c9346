//! IPv6 prefixes (`2001:db8:1::/64`), address ranges (`2001:db8:1::1000-2001:db8:1::10ff`) and
//! server addresses (`2001:db8:1::53` or `[2001:db8:1::53]:5353`) as written in the
//! configuration, with their checks.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

/// A server as the configuration names it: `ADDR` (then `default_port`) or `[ADDR]:PORT`
/// (IPv4 `ADDR:PORT` too); `None` when it is neither.
pub fn server_addr(s: &str, default_port: u16) -> Option<SocketAddr> {
    s.parse::<SocketAddr>().ok().or_else(|| {
        s.parse::<IpAddr>()
            .ok()
            .map(|ip| SocketAddr::new(ip, default_port))
    })
}

/// An IPv6 prefix with its host bits zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ipv6Prefix {
    /// The network address.
    pub addr: Ipv6Addr,
    /// The prefix length, 0 to 128.
    pub len: u8,
}

fn mask(len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(len.min(128)))
    }
}

impl Ipv6Prefix {
    /// Whether `addr` lies in the prefix.
    pub fn contains(&self, addr: Ipv6Addr) -> bool {
        u128::from(addr) & mask(self.len) == u128::from(self.addr)
    }
}

impl FromStr for Ipv6Prefix {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (a, l) = s
            .split_once('/')
            .ok_or_else(|| format!("{s:?} is not a prefix (ADDRESS/LENGTH)"))?;
        let addr: Ipv6Addr = a
            .parse()
            .map_err(|_| format!("{a:?} is not an IPv6 address"))?;
        let len: u8 = l
            .parse()
            .ok()
            .filter(|l| *l <= 128)
            .ok_or_else(|| format!("prefix length {l:?} is not 0 to 128"))?;
        let net = Ipv6Addr::from(u128::from(addr) & mask(len));
        if net != addr {
            return Err(format!(
                "host bits set in {s:?}; did you mean \"{net}/{len}\"?"
            ));
        }
        Ok(Self { addr, len })
    }
}

impl fmt::Display for Ipv6Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

/// An inclusive range of IPv6 addresses, `first-last`, with `first <= last`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AddrRange {
    /// The first address.
    pub first: Ipv6Addr,
    /// The last address.
    pub last: Ipv6Addr,
}

impl AddrRange {
    /// Whether `addr` lies in the range.
    pub fn contains(&self, addr: Ipv6Addr) -> bool {
        (self.first..=self.last).contains(&addr)
    }
}

impl FromStr for AddrRange {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (a, b) = s
            .split_once('-')
            .ok_or_else(|| format!("{s:?} is not a range (FIRST-LAST)"))?;
        let parse = |x: &str| {
            x.trim()
                .parse::<Ipv6Addr>()
                .map_err(|_| format!("{x:?} is not an IPv6 address"))
        };
        let (first, last) = (parse(a)?, parse(b)?);
        if first > last {
            return Err(format!("{first} comes after {last}"));
        }
        Ok(Self { first, last })
    }
}

impl fmt::Display for AddrRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.first, self.last)
    }
}

macro_rules! serde_via_str {
    ($t:ty) => {
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                String::deserialize(d)?.parse().map_err(de::Error::custom)
            }
        }
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
    };
}

serde_via_str!(Ipv6Prefix);
serde_via_str!(AddrRange);

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    #[test]
    fn server_addresses() {
        let sa = |s: &str| server_addr(s, 53).map(|a| a.to_string());
        assert_eq!(sa("2001:db8:1::53").as_deref(), Some("[2001:db8:1::53]:53"));
        assert_eq!(
            sa("[2001:db8:1::53]:5353").as_deref(),
            Some("[2001:db8:1::53]:5353")
        );
        assert_eq!(sa("192.0.2.1:54").as_deref(), Some("192.0.2.1:54"));
        assert_eq!(sa("ns1.example."), None);
        assert_eq!(sa("2001:db8::1:53:"), None);
    }

    #[test]
    fn prefixes() {
        let p: Ipv6Prefix = "2001:db8:1::/64".parse().unwrap();
        assert!(p.contains(a("2001:db8:1::1")));
        assert!(p.contains(a("2001:db8:1::ffff:ffff:ffff:ffff")));
        assert!(!p.contains(a("2001:db8:2::1")));
        assert_eq!(p.to_string(), "2001:db8:1::/64");
        let all: Ipv6Prefix = "::/0".parse().unwrap();
        assert!(all.contains(a("2001:db8::1")));
        let host: Ipv6Prefix = "2001:db8::1/128".parse().unwrap();
        assert!(host.contains(a("2001:db8::1")));
        let e = "2001:db8:1::1/64".parse::<Ipv6Prefix>().unwrap_err();
        assert!(e.contains("did you mean \"2001:db8:1::/64\""), "{e}");
        assert!("2001:db8::/129".parse::<Ipv6Prefix>().is_err());
        assert!("2001:db8::".parse::<Ipv6Prefix>().is_err());
        assert!("10.0.0.0/8".parse::<Ipv6Prefix>().is_err());
    }

    #[test]
    fn ranges() {
        let r: AddrRange = "2001:db8:1::1000-2001:db8:1::10ff".parse().unwrap();
        assert!(r.contains(a("2001:db8:1::1000")));
        assert!(r.contains(a("2001:db8:1::10ff")));
        assert!(!r.contains(a("2001:db8:1::1100")));
        assert_eq!(r.to_string(), "2001:db8:1::1000-2001:db8:1::10ff");
        let e = "2001:db8:1::10ff-2001:db8:1::1000"
            .parse::<AddrRange>()
            .unwrap_err();
        assert!(e.contains("comes after"), "{e}");
        assert!("2001:db8:1::1000".parse::<AddrRange>().is_err());
        assert!("2001:db8:1::1000-x".parse::<AddrRange>().is_err());
    }
}
