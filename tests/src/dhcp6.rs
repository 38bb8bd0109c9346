//! Just enough DHCPv6 (RFC 8415) to relay a Solicit and read the answer: the client message
//! header (§8), the relay header (§9), and options as raw code/data pairs (§21).
//!
//! ```text
//! client message:  msg-type (1) | transaction-id (3) | options
//! relay message:   msg-type (1) | hop-count (1) | link-address (16) | peer-address (16) | options
//! option:          code (2) | length (2) | data
//! ```

use std::net::Ipv6Addr;

/// Solicit (§7.3).
pub const SOLICIT: u8 = 1;
/// Advertise.
pub const ADVERTISE: u8 = 2;
/// Reply.
pub const REPLY: u8 = 7;
/// Relay-forward.
pub const RELAY_FORW: u8 = 12;
/// Relay-reply.
pub const RELAY_REPL: u8 = 13;

/// Client Identifier option.
pub const OPT_CLIENTID: u16 = 1;
/// Server Identifier option.
pub const OPT_SERVERID: u16 = 2;
/// Identity Association for Non-temporary Addresses.
pub const OPT_IA_NA: u16 = 3;
/// IA Address option.
pub const OPT_IAADDR: u16 = 5;
/// Elapsed Time option.
pub const OPT_ELAPSED_TIME: u16 = 8;
/// Relay Message option.
pub const OPT_RELAY_MSG: u16 = 9;
/// Status Code option.
pub const OPT_STATUS_CODE: u16 = 13;
/// Rapid Commit option.
pub const OPT_RAPID_COMMIT: u16 = 14;
/// Interface-Id option.
pub const OPT_INTERFACE_ID: u16 = 18;

/// One option: code and raw data.
pub type Opt = (u16, Vec<u8>);

/// Encodes options in order.
pub fn encode_options(opts: &[Opt]) -> Vec<u8> {
    let mut out = Vec::new();
    for (code, data) in opts {
        out.extend_from_slice(&code.to_be_bytes());
        let len = u16::try_from(data.len()).expect("option longer than 65535 bytes");
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(data);
    }
    out
}

/// Decodes an option chain; fails on a truncated option.
pub fn parse_options(mut b: &[u8]) -> Result<Vec<Opt>, String> {
    let mut opts = Vec::new();
    while !b.is_empty() {
        if b.len() < 4 {
            return Err(format!("truncated option header ({} bytes)", b.len()));
        }
        let code = u16::from_be_bytes([b[0], b[1]]);
        let len = usize::from(u16::from_be_bytes([b[2], b[3]]));
        let data = b
            .get(4..4 + len)
            .ok_or_else(|| format!("option {code} truncated"))?;
        opts.push((code, data.to_vec()));
        b = &b[4 + len..];
    }
    Ok(opts)
}

/// A Solicit with Client Identifier `duid`, Elapsed Time 0, one empty IA_NA with `iaid` (T1 = T2
/// = 0), and Rapid Commit if asked.
pub fn solicit(xid: [u8; 3], duid: &[u8], iaid: u32, rapid_commit: bool) -> Vec<u8> {
    let mut ia_na = iaid.to_be_bytes().to_vec();
    ia_na.extend_from_slice(&[0; 8]);
    let mut opts = vec![
        (OPT_CLIENTID, duid.to_vec()),
        (OPT_IA_NA, ia_na),
        (OPT_ELAPSED_TIME, vec![0, 0]),
    ];
    if rapid_commit {
        opts.push((OPT_RAPID_COMMIT, Vec::new()));
    }
    let mut msg = vec![SOLICIT, xid[0], xid[1], xid[2]];
    msg.extend(encode_options(&opts));
    msg
}

/// A Relay-forward (hop count 0) carrying `inner` in a Relay Message option, and an
/// Interface-Id option if given.
pub fn relay_forw(
    link: Ipv6Addr,
    peer: Ipv6Addr,
    interface_id: Option<&[u8]>,
    inner: &[u8],
) -> Vec<u8> {
    let mut msg = vec![RELAY_FORW, 0];
    msg.extend_from_slice(&link.octets());
    msg.extend_from_slice(&peer.octets());
    let mut opts = vec![(OPT_RELAY_MSG, inner.to_vec())];
    if let Some(id) = interface_id {
        opts.push((OPT_INTERFACE_ID, id.to_vec()));
    }
    msg.extend(encode_options(&opts));
    msg
}

/// A decoded relay message (Relay-forward or Relay-reply).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayMsg {
    /// 12 or 13.
    pub msg_type: u8,
    /// Hop count.
    pub hop_count: u8,
    /// Link-address.
    pub link: Ipv6Addr,
    /// Peer-address.
    pub peer: Ipv6Addr,
    /// The relay's options (the Relay Message option holds the inner message).
    pub options: Vec<Opt>,
}

impl RelayMsg {
    /// Parses a relay message.
    pub fn parse(b: &[u8]) -> Result<Self, String> {
        if b.len() < 34 {
            return Err(format!("relay message of {} bytes, need 34", b.len()));
        }
        if b[0] != RELAY_FORW && b[0] != RELAY_REPL {
            return Err(format!("message type {} is not a relay message", b[0]));
        }
        let addr = |r: std::ops::Range<usize>| {
            let o: [u8; 16] = b[r].try_into().expect("16 bytes");
            Ipv6Addr::from(o)
        };
        Ok(Self {
            msg_type: b[0],
            hop_count: b[1],
            link: addr(2..18),
            peer: addr(18..34),
            options: parse_options(&b[34..])?,
        })
    }

    /// The data of the first option `code`.
    pub fn option(&self, code: u16) -> Option<&[u8]> {
        find(&self.options, code)
    }
}

/// A decoded client/server message (Solicit, Advertise, Reply, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientMsg {
    /// Message type.
    pub msg_type: u8,
    /// Transaction ID.
    pub xid: [u8; 3],
    /// Options.
    pub options: Vec<Opt>,
}

impl ClientMsg {
    /// Parses a client/server message.
    pub fn parse(b: &[u8]) -> Result<Self, String> {
        if b.len() < 4 {
            return Err(format!("message of {} bytes, need 4", b.len()));
        }
        Ok(Self {
            msg_type: b[0],
            xid: [b[1], b[2], b[3]],
            options: parse_options(&b[4..])?,
        })
    }

    /// The data of the first option `code`.
    pub fn option(&self, code: u16) -> Option<&[u8]> {
        find(&self.options, code)
    }

    /// The addresses of the IA_NA options: (address, preferred, valid lifetime).
    pub fn ia_na_addresses(&self) -> Vec<(Ipv6Addr, u32, u32)> {
        let mut out = Vec::new();
        for (code, ia) in &self.options {
            if *code != OPT_IA_NA || ia.len() < 12 {
                continue;
            }
            for (code, a) in parse_options(&ia[12..]).unwrap_or_default() {
                if code == OPT_IAADDR && a.len() >= 24 {
                    let o: [u8; 16] = a[..16].try_into().expect("16 bytes");
                    let be = |r: std::ops::Range<usize>| {
                        u32::from_be_bytes(a[r].try_into().expect("4 bytes"))
                    };
                    out.push((Ipv6Addr::from(o), be(16..20), be(20..24)));
                }
            }
        }
        out
    }
}

fn find(opts: &[Opt], code: u16) -> Option<&[u8]> {
    opts.iter()
        .find(|(c, _)| *c == code)
        .map(|(_, d)| d.as_slice())
}

/// Lower-case hex of `b`.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Parses hex (pairs of digits, `:` separators allowed).
pub fn unhex(s: &str) -> Result<Vec<u8>, String> {
    let digits: String = s.chars().filter(|c| *c != ':').collect();
    if !digits.len().is_multiple_of(2) {
        return Err(format!("odd number of hex digits in {s:?}"));
    }
    (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).map_err(|e| format!("{s:?}: {e}")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relay_round_trip() {
        let inner = solicit([1, 2, 3], &[0, 3, 0, 1, 2, 0, 0, 0, 0, 1], 7, true);
        let link: Ipv6Addr = "2001:db8:1::1".parse().unwrap();
        let peer: Ipv6Addr = "fe80::1".parse().unwrap();
        let fw = relay_forw(link, peer, Some(b"tun1"), &inner);
        let r = RelayMsg::parse(&fw).unwrap();
        assert_eq!(
            (r.msg_type, r.hop_count, r.link, r.peer),
            (RELAY_FORW, 0, link, peer)
        );
        assert_eq!(r.option(OPT_INTERFACE_ID), Some(&b"tun1"[..]));
        let c = ClientMsg::parse(r.option(OPT_RELAY_MSG).unwrap()).unwrap();
        assert_eq!(c.msg_type, SOLICIT);
        assert_eq!(c.xid, [1, 2, 3]);
        assert!(c.option(OPT_RAPID_COMMIT).is_some());
        assert!(c.ia_na_addresses().is_empty());
    }

    #[test]
    fn ia_na_address_is_found() {
        let mut iaaddr = "2001:db8:1::100"
            .parse::<Ipv6Addr>()
            .unwrap()
            .octets()
            .to_vec();
        iaaddr.extend_from_slice(&3000u32.to_be_bytes());
        iaaddr.extend_from_slice(&4000u32.to_be_bytes());
        let mut ia = vec![0, 0, 0, 7, 0, 0, 3, 232, 0, 0, 7, 208];
        ia.extend(encode_options(&[(OPT_IAADDR, iaaddr)]));
        let mut msg = vec![ADVERTISE, 1, 2, 3];
        msg.extend(encode_options(&[(OPT_IA_NA, ia)]));
        let c = ClientMsg::parse(&msg).unwrap();
        assert_eq!(
            c.ia_na_addresses(),
            vec![("2001:db8:1::100".parse().unwrap(), 3000, 4000)]
        );
    }

    #[test]
    fn truncated_option_is_an_error() {
        assert!(parse_options(&[0, 1, 0, 5, 1]).is_err());
        assert!(RelayMsg::parse(&[13; 20]).is_err());
        assert_eq!(unhex("00:03:0a").unwrap(), vec![0, 3, 10]);
    }
}
