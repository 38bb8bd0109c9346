//! `mn.toml`: the mobile node's configuration, its defaults and its checks.
//!
//! ```toml
//! home_agent = "2001:db8:ff::1"          # or a name: SRV _mip6._ipv6.<name>, else its AAAA
//! dns_servers = ["2001:db8:1::2"]         # for a name; default /etc/resolv.conf
//! home_agent_timeout = 15                 # seconds before the next discovered home agent
//! fqdn = "mn1.example."                   # our name in DNS (RFC 5026 §6, RFC 4704)
//! fqdn_update = "both"                    # who updates it: home_agent | dhcpv6 | both
//! care_of_address = "2001:db8:ff::2"      # optional: default is what the kernel picks
//! address_source = "auto"                 # auto | dhcpv6 | modecfg | static
//! home_address = "2001:db8:1::1000"       # with address_source = "static" only
//! dhcpv6_timeout = 10                     # seconds for DHCPv6 (then auto: Mode Config)
//! binding_lifetime = 420                  # seconds asked for in Binding Updates
//! home_registration = true                # false: no RFC 3776 transport SA, no binding
//! state_dir = "/var/lib/mip6-mn"          # the DUID and the last lease (auto, dhcpv6)
//! control_socket = "/run/mip6-mn.sock"
//! log_level = "info"                      # or RUST_LOG
//! [ike]                                   # daemon::ike::IkeSection
//! identity = "mn1@example.com"
//! psk = "secret"                          # or psk_file, or certificate + key + ca
//! # auth = "hybrid"                       # psk | rsa | hybrid | psk+xauth (daemon::ike)
//! # xauth_user = "mnuser"                 # with hybrid and psk+xauth, and
//! # xauth_password_file = "xauth.secret"  # xauth_password or xauth_password_file
//! proposals = ["aes128-sha256-ecp256"]
//! esp_proposals = ["aes128gcm16"]
//! ```
//!
//! The keys up to `[ike] esp_proposals` are the contract of issue 3: configurations written
//! for one version keep working. Relative paths are relative to the file's directory.

use std::net::{Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

use daemon::ike::{IkeSection, IkeSettings, Role};
use daemon::{ConfigError, Loaded, Validator};
use ikev1::PeerConfig;
use serde::{Deserialize, Serialize};

/// The control socket when the configuration names none.
pub(crate) const DEFAULT_CONTROL_SOCKET: &str = "/run/mip6-mn.sock";
const DEFAULT_STATE_DIR: &str = "/var/lib/mip6-mn";
const DEFAULT_DHCPV6_TIMEOUT: u64 = 10;

/// Where the home address comes from (`address_source`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum AddressSourceMode {
    /// DHCPv6 through the initial tunnel, falling back to Mode Config (draft §3.1).
    #[default]
    Auto,
    /// DHCPv6 only.
    Dhcpv6,
    /// Mode Config only.
    Modecfg,
    /// `home_address`, configured by hand.
    Static,
}

/// The file as written, with defaults filled in and paths made absolute: what `check`
/// prints.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct File {
    /// The home agent: its address, or a DNS name to discover it by (RFC 5026 §5).
    pub(crate) home_agent: String,
    /// Name servers for `home_agent` as a name (`ADDR` or `[ADDR]:PORT`); none: those of
    /// /etc/resolv.conf.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) dns_servers: Vec<String>,
    /// Seconds phase 1 with a discovered home agent may take before the next is tried.
    #[serde(default = "default_home_agent_timeout")]
    pub(crate) home_agent_timeout: u64,
    /// Our care-of address; absent: the one the kernel picks towards the home agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) care_of_address: Option<Ipv6Addr>,
    /// Where the home address comes from.
    #[serde(default)]
    pub(crate) address_source: AddressSourceMode,
    /// The home address, for `address_source = "static"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) home_address: Option<Ipv6Addr>,
    /// Seconds from asking for the initial tunnel to a DHCPv6 lease: past it, `auto` falls
    /// back to Mode Config and `dhcpv6` fails (and retries).
    #[serde(default = "default_dhcpv6_timeout")]
    pub(crate) dhcpv6_timeout: u64,
    /// The binding lifetime asked for in Binding Updates, seconds (issue 5; the home agent may
    /// grant less).
    #[serde(default = "default_binding_lifetime")]
    pub(crate) binding_lifetime: u64,
    /// Ask for the RFC 3776 transport-mode SA and register with the home agent (default).
    /// `false` keeps the address and the tunnel-mode SA only: for a home agent that is a plain
    /// IPsec gateway (strongSwan's libipsec cannot do the transport-mode SA).
    #[serde(default = "default_true")]
    pub(crate) home_registration: bool,
    /// Our name in DNS, kept pointing at the home address (draft §5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) fqdn: Option<String>,
    /// Who is asked to update `fqdn`: the home agent (DNS Update option in the Binding
    /// Update, RFC 5026 §6.2), the DHCPv6 server (Client FQDN option, RFC 4704), or both.
    #[serde(default)]
    pub(crate) fqdn_update: FqdnUpdate,
    /// Where the node keeps state across restarts: the DHCPv6 DUID (`duid`) and the last
    /// leased address (`lease`). Created (mode 0700) when missing, by `auto` and `dhcpv6`.
    #[serde(default = "default_state_dir")]
    pub(crate) state_dir: PathBuf,
    /// The control socket `status` talks to.
    #[serde(default = "default_control_socket")]
    pub(crate) control_socket: PathBuf,
    /// The log filter (`info`, `debug`, `info,ikev1=debug`); `RUST_LOG` overrides it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) log_level: Option<String>,
    /// IKE.
    pub(crate) ike: IkeSection,
}

impl AddressSourceMode {
    /// The name in the file.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Dhcpv6 => "dhcpv6",
            Self::Modecfg => "modecfg",
            Self::Static => "static",
        }
    }
}

fn default_dhcpv6_timeout() -> u64 {
    DEFAULT_DHCPV6_TIMEOUT
}
fn default_binding_lifetime() -> u64 {
    420
}
fn default_true() -> bool {
    true
}
fn default_home_agent_timeout() -> u64 {
    15
}

/// Who is asked to keep `fqdn` in DNS (`fqdn_update`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum FqdnUpdate {
    /// The home agent, through the Binding Update.
    HomeAgent,
    /// The DHCPv6 server (DHCPv6 address sources only).
    Dhcpv6,
    /// Both.
    #[default]
    Both,
}

impl FqdnUpdate {
    /// Whether the home agent is asked.
    pub(crate) fn home_agent(self) -> bool {
        matches!(self, Self::HomeAgent | Self::Both)
    }

    /// Whether the DHCPv6 server is asked.
    pub(crate) fn dhcpv6(self) -> bool {
        matches!(self, Self::Dhcpv6 | Self::Both)
    }
}

/// `home_agent`, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum HomeAgent {
    /// A configured address.
    Address(Ipv6Addr),
    /// A name to resolve (SRV `_mip6._ipv6.<name>`, else the name's AAAA).
    Name(String),
}
fn default_state_dir() -> PathBuf {
    PathBuf::from(DEFAULT_STATE_DIR)
}
fn default_control_socket() -> PathBuf {
    PathBuf::from(DEFAULT_CONTROL_SOCKET)
}

/// The validated configuration.
#[derive(Debug)]
pub(crate) struct Config {
    /// The file (defaults filled in, paths absolute).
    pub(crate) file: File,
    /// The `[ike]` section, validated and with its secrets loaded.
    pub(crate) ike: IkeSettings,
    /// `home_agent`, parsed.
    pub(crate) home_agent: HomeAgent,
    /// `dns_servers`, parsed.
    pub(crate) dns_servers: Vec<SocketAddr>,
}

impl Config {
    /// Reads and validates `path`.
    pub(crate) fn load(path: &Path) -> Result<Loaded<Self>, ConfigError> {
        let (file, text) = daemon::load::parse_file::<File>(path)?;
        Self::validate(Validator::new(path).with_text(&text), file)
    }

    /// Validates a parsed file; `v` knows where it came from.
    pub(crate) fn validate(mut v: Validator, mut file: File) -> Result<Loaded<Self>, ConfigError> {
        v.resolve(&mut file.state_dir);
        v.resolve(&mut file.control_socket);
        file.ike.resolve_paths(&v);

        let home_agent = parse_home_agent(&v, &file.home_agent)?;
        let literal = match &home_agent {
            HomeAgent::Address(a) => Some(*a),
            HomeAgent::Name(_) => None,
        };
        let mut dns_servers = Vec::with_capacity(file.dns_servers.len());
        for (i, s) in file.dns_servers.iter().enumerate() {
            let key = format!("dns_servers[{i}]");
            let a = daemon::addr::server_addr(s, 53)
                .ok_or_else(|| v.error(&key, format!("{s:?} is not ADDR or [ADDR]:PORT")))?;
            if dns_servers.contains(&a) {
                return Err(v.error(key, format!("{a} is listed twice")));
            }
            dns_servers.push(a);
        }
        if literal.is_some() && !dns_servers.is_empty() {
            v.warn(
                "dns_servers",
                "unused: home_agent is an address, nothing is looked up",
            );
        }
        if let Some(n) = &file.fqdn {
            let name =
                dns_update::Name::from_ascii(n).map_err(|e| v.error("fqdn", e.to_string()))?;
            if name.is_root() || !n.contains('.') || n.trim_end_matches('.').is_empty() {
                return Err(v.error("fqdn", format!("{n:?} is not a host name")));
            }
        }
        if !(1..=600).contains(&file.home_agent_timeout) {
            return Err(v.error("home_agent_timeout", "must be 1 to 600 seconds"));
        }
        if let Some(coa) = file.care_of_address {
            unicast(&v, "care_of_address", coa)?;
            if Some(coa) == literal {
                return Err(v.error("care_of_address", "is the home agent's address"));
            }
        }
        match (file.address_source, file.home_address) {
            (AddressSourceMode::Static, None) => {
                return Err(v.error("home_address", "required with address_source = \"static\""));
            }
            (AddressSourceMode::Static, Some(hoa)) => {
                unicast(&v, "home_address", hoa)?;
                if hoa.is_unicast_link_local() {
                    return Err(v.error("home_address", format!("{hoa} is link-local")));
                }
                if Some(hoa) == literal {
                    return Err(v.error("home_address", "is the home agent's address"));
                }
                if Some(hoa) == file.care_of_address {
                    return Err(v.error("home_address", "is the care-of address"));
                }
            }
            (mode, Some(_)) => {
                return Err(v.error(
                    "home_address",
                    format!(
                        "only used with address_source = \"static\" (it is \"{}\")",
                        mode.as_str()
                    ),
                ));
            }
            (_, None) => {}
        }
        // RFC 6275 §6.1.7: 16 bits of 4-second units.
        if !(4..=65535 * 4).contains(&file.binding_lifetime) {
            return Err(v.error("binding_lifetime", "must be 4 to 262140 seconds"));
        }
        if file.dhcpv6_timeout == 0 {
            return Err(v.error("dhcpv6_timeout", "must be at least 1 second"));
        }
        for (key, p) in [
            ("state_dir", &file.state_dir),
            ("control_socket", &file.control_socket),
        ] {
            if p.as_os_str().is_empty() {
                return Err(v.error(key, "must not be empty"));
            }
        }
        if let Some(level) = &file.log_level {
            daemon::logging::check_level(level).map_err(|e| v.error("log_level", e))?;
        }
        let ike = file.ike.validate(&mut v, Role::MobileNode)?;
        Ok(Loaded {
            config: Self {
                file,
                ike,
                home_agent,
                dns_servers,
            },
            warnings: v.into_warnings(),
        })
    }

    /// The IKE engine's configuration: one peer, the home agent, at any of `home_agents` (the
    /// configured address or the discovered ones).
    pub(crate) fn engine_config(&self, home_agents: &[Ipv6Addr]) -> ikev1::Config {
        let peer = PeerConfig {
            identity: self.ike.remote_id.clone(),
            auth: self
                .ike
                .peer_auth
                .clone()
                .expect("validated: the mobile node has its home agent's credentials"),
            addrs: home_agents.iter().map(|a| (*a).into()).collect(),
        };
        self.ike.engine_config(vec![peer])
    }
}

/// `home_agent`: an IPv6 address (also in brackets), or a domain name.
fn parse_home_agent(v: &Validator, s: &str) -> Result<HomeAgent, ConfigError> {
    let bare = s.trim_start_matches('[').trim_end_matches(']');
    if let Ok(a) = bare.parse::<Ipv6Addr>() {
        unicast(v, "home_agent", a)?;
        return Ok(HomeAgent::Address(a));
    }
    if s.contains(':') {
        return Err(v.error(
            "home_agent",
            format!("{s:?} is neither an IPv6 address nor a domain name"),
        ));
    }
    dns_update::Name::from_ascii(s).map_err(|why| v.error("home_agent", why.to_string()))?;
    Ok(HomeAgent::Name(s.to_owned()))
}

/// `ADDR` (port 53) or `[ADDR]:PORT`.
/// A peer or own address must be a unicast address.
fn unicast(v: &Validator, key: &str, a: Ipv6Addr) -> Result<(), ConfigError> {
    if a.is_unspecified() || a.is_multicast() {
        return Err(v.error(key, format!("{a} is not a unicast address")));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
