//! `mn.toml`: the mobile node's configuration, its defaults and its checks.
//!
//! ```toml
//! home_agent = "2001:db8:ff::1"
//! care_of_address = "2001:db8:ff::2"      # optional: default is what the kernel picks
//! address_source = "auto"                 # auto | dhcpv6 | modecfg | static
//! home_address = "2001:db8:1::1000"       # with address_source = "static" only
//! dhcpv6_timeout = 10                     # seconds for DHCPv6 (then auto: Mode Config)
//! state_dir = "/var/lib/mip6-mn"          # the DUID and the last lease (auto, dhcpv6)
//! control_socket = "/run/mip6-mn.sock"
//! log_level = "info"                      # or RUST_LOG
//! [ike]                                   # daemon::ike::IkeSection
//! identity = "mn1@example.com"
//! psk = "secret"                          # or psk_file, or certificate + key + ca
//! proposals = ["aes128-sha256-ecp256"]
//! esp_proposals = ["aes128gcm16"]
//! ```
//!
//! The keys up to `[ike] esp_proposals` are the contract of issue 3: configurations written
//! for one version keep working. Relative paths are relative to the file's directory.

use std::net::Ipv6Addr;
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
    /// The home agent's address.
    pub(crate) home_agent: Ipv6Addr,
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

        unicast(&v, "home_agent", file.home_agent)?;
        if let Some(coa) = file.care_of_address {
            unicast(&v, "care_of_address", coa)?;
            if coa == file.home_agent {
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
                if hoa == file.home_agent {
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
            config: Self { file, ike },
            warnings: v.into_warnings(),
        })
    }

    /// The IKE engine's configuration: one peer, the home agent, at its address.
    pub(crate) fn engine_config(&self) -> ikev1::Config {
        let peer = PeerConfig {
            identity: self.ike.remote_id.clone(),
            auth: self
                .ike
                .peer_auth
                .clone()
                .expect("validated: the mobile node has its home agent's credentials"),
            addrs: vec![self.file.home_agent.into()],
        };
        self.ike.engine_config(vec![peer])
    }
}

/// A peer or own address must be a unicast address.
fn unicast(v: &Validator, key: &str, a: Ipv6Addr) -> Result<(), ConfigError> {
    if a.is_unspecified() || a.is_multicast() {
        return Err(v.error(key, format!("{a} is not a unicast address")));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
