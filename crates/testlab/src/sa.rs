//! What `swanctl --list-sas` reports, parsed from its `--pretty` dump of the vici messages.
//!
//! The pretty dump prints one item per line, indented: `key = value` (the value runs to the end
//! of the line, so identities with spaces survive), `name {` … `}` for sections and
//! `key = [` … `]` for lists. Each IKE SA comes in a `list-sa event` section:
//!
//! ```text
//! list-sa event {
//!   mip6-psk {
//!     uniqueid = 1
//!     state = ESTABLISHED
//!     local-id = ha.example.com
//!     remote-vips = [
//!       2001:db8:1::1001
//!     ]
//!     child-sas {
//!       home-1 {
//!         mode = TUNNEL
//!         encap = yes
//!         spi-in = 7817624d
//!         local-ts = [
//!           2001:db8:1::/64
//!         ]
//!       }
//!     }
//!   }
//! }
//! ```
//! Boolean keys (`initiator`, `encap`, `nat-*`) appear only when `yes`.

use std::collections::BTreeMap;
use std::io;
use std::net::IpAddr;

/// One IKE SA as charon lists it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SaInfo {
    /// Name of the connection (the key of the section).
    pub name: String,
    /// charon's unique ID of the IKE SA.
    pub unique_id: u32,
    /// IKE version, 1 or 2.
    pub version: u8,
    /// State: `CREATED`, `CONNECTING`, `ESTABLISHED`, `PASSIVE`, `REKEYING`, `REKEYED`,
    /// `DELETING`, `DESTROYING`.
    pub state: String,
    /// Whether this end initiated the IKE SA.
    pub initiator: bool,
    /// Local address of the IKE SA, if established.
    pub local_host: Option<IpAddr>,
    /// Local UDP port (4500 once floated for NAT traversal).
    pub local_port: Option<u16>,
    /// Local identity.
    pub local_id: String,
    /// Remote address.
    pub remote_host: Option<IpAddr>,
    /// Remote UDP port.
    pub remote_port: Option<u16>,
    /// Remote identity.
    pub remote_id: String,
    /// Initiator cookie / SPI in hex as charon prints it (16 digits).
    pub initiator_spi: String,
    /// Responder cookie / SPI in hex.
    pub responder_spi: String,
    /// This end is behind a NAT (by the NAT-D hashes).
    pub nat_local: bool,
    /// The peer is behind a NAT.
    pub nat_remote: bool,
    /// The NAT situation is faked (charon's `encap = yes`).
    pub nat_fake: bool,
    /// Any NAT detected or faked.
    pub nat_any: bool,
    /// Virtual IPs assigned to this end (Mode Config, as client).
    pub local_vips: Vec<IpAddr>,
    /// Virtual IPs handed to the peer (Mode Config, as server).
    pub remote_vips: Vec<IpAddr>,
    /// The CHILD SAs (IPsec SAs) of this IKE SA.
    pub children: Vec<ChildSaInfo>,
    /// Every scalar `key = value` of the section as charon printed it, for keys not modelled
    /// here (`encr-alg`, `dh-group`, `established`, …).
    pub fields: BTreeMap<String, String>,
}

/// One CHILD SA (a pair of IPsec SAs) as charon lists it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChildSaInfo {
    /// Name of the child configuration (`name` key; the section key is `<name>-<uniqueid>`).
    pub name: String,
    /// charon's unique ID of the CHILD SA.
    pub unique_id: u32,
    /// Request ID (shared by the SAs and policies of this child).
    pub reqid: u32,
    /// State: `INSTALLED`, `REKEYING`, `DELETING`, …
    pub state: String,
    /// `TUNNEL`, `TRANSPORT` or `BEET`.
    pub mode: String,
    /// `ESP` or `AH`.
    pub protocol: String,
    /// Whether ESP is encapsulated in UDP (RFC 3948).
    pub encap: bool,
    /// SPI of the inbound SA.
    pub spi_in: u32,
    /// SPI of the outbound SA.
    pub spi_out: u32,
    /// Local traffic selectors, e.g. `2001:db8:1::/64` or `2001:db8:1::1001/128[udp/546]`.
    pub local_ts: Vec<String>,
    /// Remote traffic selectors.
    pub remote_ts: Vec<String>,
    /// Every scalar `key = value` of the section as charon printed it (`encr-alg`, `bytes-in`, …).
    pub fields: BTreeMap<String, String>,
}

impl SaInfo {
    /// The CHILD SA whose configuration is named `name`, if any.
    pub fn child(&self, name: &str) -> Option<&ChildSaInfo> {
        self.children.iter().find(|c| c.name == name)
    }
}

/// A parsed item of the pretty dump.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    Value(String),
    List(Vec<String>),
    Section(Entries),
}

/// The items of one section, in order, by key.
type Entries = Vec<(String, Item)>;

/// Parses the pretty dump into its top-level sections (`("list-sa event", entries)`, …).
fn parse_pretty(text: &str) -> io::Result<Vec<(String, Entries)>> {
    // Stack of open sections; the bottom one collects the top-level messages.
    let mut stack: Vec<(String, Entries)> = vec![(String::new(), Vec::new())];
    let mut list: Option<(String, Vec<String>)> = None;
    for (no, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        if let Some((_, items)) = list.as_mut() {
            if line == "]" {
                let (key, items) = list.take().expect("in a list");
                stack
                    .last_mut()
                    .expect("bottom")
                    .1
                    .push((key, Item::List(items)));
            } else {
                items.push(line.to_owned());
            }
            continue;
        }
        if line == "}" {
            if stack.len() < 2 {
                return Err(bad(no, raw, "unbalanced '}'"));
            }
            let (key, entries) = stack.pop().expect("checked");
            stack
                .last_mut()
                .expect("bottom")
                .1
                .push((key, Item::Section(entries)));
        } else if let Some(key) = line.strip_suffix(" {") {
            stack.push((key.to_owned(), Vec::new()));
        } else if let Some(key) = line.strip_suffix(" = [") {
            list = Some((key.to_owned(), Vec::new()));
        } else if let Some((key, value)) = line.split_once(" = ") {
            stack
                .last_mut()
                .expect("bottom")
                .1
                .push((key.to_owned(), Item::Value(value.to_owned())));
        } else if let Some(key) = line.strip_suffix(" =") {
            stack
                .last_mut()
                .expect("bottom")
                .1
                .push((key.to_owned(), Item::Value(String::new())));
        } else if stack.len() > 1 {
            return Err(bad(no, raw, "not a vici item"));
        }
        // Lines outside any section (e.g. log lines) are ignored.
    }
    if stack.len() != 1 || list.is_some() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "swanctl output ends inside a section",
        ));
    }
    let (_, top) = stack.pop().expect("bottom");
    Ok(top
        .into_iter()
        .filter_map(|(k, v)| match v {
            Item::Section(entries) => Some((k, entries)),
            _ => None,
        })
        .collect())
}

fn bad(no: usize, line: &str, why: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("swanctl output line {}: {why}: {line:?}", no + 1),
    )
}

/// Scalar fields, lists and subsections of one section, by key.
struct Fields<'a> {
    entries: &'a [(String, Item)],
}

impl<'a> Fields<'a> {
    fn value(&self, key: &str) -> Option<&'a str> {
        self.entries.iter().find_map(|(k, v)| match v {
            Item::Value(s) if k == key => Some(s.as_str()),
            _ => None,
        })
    }
    fn string(&self, key: &str) -> String {
        self.value(key).unwrap_or_default().to_owned()
    }
    fn flag(&self, key: &str) -> bool {
        self.value(key) == Some("yes")
    }
    fn number<T: std::str::FromStr + Default>(&self, key: &str) -> T {
        self.value(key)
            .and_then(|v| v.parse().ok())
            .unwrap_or_default()
    }
    fn list(&self, key: &str) -> Vec<String> {
        self.entries
            .iter()
            .find_map(|(k, v)| match v {
                Item::List(items) if k == key => Some(items.clone()),
                _ => None,
            })
            .unwrap_or_default()
    }
    fn addrs(&self, key: &str) -> Vec<IpAddr> {
        self.list(key)
            .iter()
            .filter_map(|a| a.parse().ok())
            .collect()
    }
    fn section(&self, key: &str) -> Option<&'a [(String, Item)]> {
        self.entries.iter().find_map(|(k, v)| match v {
            Item::Section(s) if k == key => Some(s.as_slice()),
            _ => None,
        })
    }
    fn scalars(&self) -> BTreeMap<String, String> {
        self.entries
            .iter()
            .filter_map(|(k, v)| match v {
                Item::Value(s) => Some((k.clone(), s.clone())),
                _ => None,
            })
            .collect()
    }
}

fn hex_u32(key: &str, v: Option<&str>) -> io::Result<u32> {
    let v = v.unwrap_or_default();
    u32::from_str_radix(v.trim_start_matches("0x"), 16).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("CHILD SA {key} {v:?} is not a hex SPI"),
        )
    })
}

/// Parses the stdout of `swanctl --list-sas --pretty`.
pub(crate) fn parse_list_sas(text: &str) -> io::Result<Vec<SaInfo>> {
    let mut sas = Vec::new();
    for (msg, entries) in parse_pretty(text)? {
        if msg != "list-sa event" {
            continue;
        }
        for (name, item) in entries {
            let Item::Section(ike) = item else { continue };
            let f = Fields { entries: &ike };
            let mut sa = SaInfo {
                name,
                unique_id: f.number("uniqueid"),
                version: f.number("version"),
                state: f.string("state"),
                initiator: f.flag("initiator"),
                local_host: f.value("local-host").and_then(|v| v.parse().ok()),
                local_port: f.value("local-port").and_then(|v| v.parse().ok()),
                local_id: f.string("local-id"),
                remote_host: f.value("remote-host").and_then(|v| v.parse().ok()),
                remote_port: f.value("remote-port").and_then(|v| v.parse().ok()),
                remote_id: f.string("remote-id"),
                initiator_spi: f.string("initiator-spi"),
                responder_spi: f.string("responder-spi"),
                nat_local: f.flag("nat-local"),
                nat_remote: f.flag("nat-remote"),
                nat_fake: f.flag("nat-fake"),
                nat_any: f.flag("nat-any"),
                local_vips: f.addrs("local-vips"),
                remote_vips: f.addrs("remote-vips"),
                children: Vec::new(),
                fields: f.scalars(),
            };
            for (_key, child) in f.section("child-sas").unwrap_or_default() {
                let Item::Section(child) = child else {
                    continue;
                };
                let c = Fields { entries: child };
                sa.children.push(ChildSaInfo {
                    name: c.string("name"),
                    unique_id: c.number("uniqueid"),
                    reqid: c.number("reqid"),
                    state: c.string("state"),
                    mode: c.string("mode"),
                    protocol: c.string("protocol"),
                    encap: c.flag("encap"),
                    spi_in: hex_u32("spi-in", c.value("spi-in"))?,
                    spi_out: hex_u32("spi-out", c.value("spi-out"))?,
                    local_ts: c.list("local-ts"),
                    remote_ts: c.list("remote-ts"),
                    fields: c.scalars(),
                });
            }
            sas.push(sa);
        }
    }
    Ok(sas)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Captured from charon 5.9.8 (the HA side of the lab's charon-to-charon test).
    const HA: &str = "\
list-sa event {
  mip6-psk {
    uniqueid = 1
    version = 1
    state = ESTABLISHED
    local-host = 2001:db8:ff::1
    local-port = 4500
    local-id = ha.example.com
    remote-host = 2001:db8:ff::2
    remote-port = 4500
    remote-id = C=CH, O=strongSwan, CN=mn
    initiator-spi = 6476b19e67e5cfa5
    responder-spi = 4aaa99e933af5acc
    nat-remote = yes
    nat-any = yes
    encr-alg = AES_CBC
    encr-keysize = 128
    remote-vips = [
      2001:db8:1::1001
    ]
    child-sas {
      home-1 {
        name = home
        uniqueid = 1
        reqid = 1
        state = INSTALLED
        mode = TUNNEL
        protocol = ESP
        encap = yes
        spi-in = 7817624d
        spi-out = 1d135dcc
        local-ts = [
          2001:db8:1::/64
        ]
        remote-ts = [
          2001:db8:1::1001/128
        ]
      }
    }
  }
}
list-sas reply {
}
";

    #[test]
    fn parses_ike_and_child() {
        let sas = parse_list_sas(HA).unwrap();
        assert_eq!(sas.len(), 1);
        let sa = &sas[0];
        assert_eq!(sa.name, "mip6-psk");
        assert_eq!(sa.state, "ESTABLISHED");
        assert_eq!(sa.version, 1);
        assert!(!sa.initiator);
        assert_eq!(sa.local_port, Some(4500));
        assert_eq!(sa.remote_id, "C=CH, O=strongSwan, CN=mn");
        assert!(sa.nat_remote && sa.nat_any && !sa.nat_local);
        assert_eq!(
            sa.remote_vips,
            vec!["2001:db8:1::1001".parse::<IpAddr>().unwrap()]
        );
        assert_eq!(sa.fields["encr-alg"], "AES_CBC");
        let c = sa.child("home").unwrap();
        assert_eq!((c.spi_in, c.spi_out), (0x7817_624d, 0x1d13_5dcc));
        assert!(c.encap);
        assert_eq!(c.mode, "TUNNEL");
        assert_eq!(c.local_ts, ["2001:db8:1::/64"]);
        assert_eq!(c.remote_ts, ["2001:db8:1::1001/128"]);
    }

    #[test]
    fn empty_listing() {
        assert!(parse_list_sas("list-sas reply {\n}\n").unwrap().is_empty());
        assert!(parse_list_sas("").unwrap().is_empty());
    }

    #[test]
    fn rejects_truncated() {
        assert!(parse_list_sas("list-sa event {\n  x {\n").is_err());
        assert!(parse_list_sas("}\n").is_err());
    }
}
