//! `ha.toml`: the home agent's configuration, its defaults and its checks.
//!
//! ```toml
//! listen = ["2001:db8:ff::1"]
//! control_socket = "/run/mip6-ha.sock"
//! log_level = "info"                      # or RUST_LOG
//! [home_link]
//! interface = "ha-home"
//! address = "2001:db8:1::1"               # the HA on the home link; the relay's link-address
//! prefix = "2001:db8:1::/64"
//! [dhcpv6]
//! servers = ["2001:db8:1::2"]             # none: All_DHCP_Servers (ff05::1:3)
//! relay = true                            # false: refuse DHCPv6 from mobile nodes
//! [modecfg]
//! source = "dhcpv6"                       # dhcpv6 | pool
//! pool = "2001:db8:1::1000-2001:db8:1::10ff"
//! dns = ["2001:db8:1::53"]
//! [bindings]                              # home registration (RFC 6275 §10.3)
//! max_lifetime = 3600                     # seconds granted at most
//! max_entries = 65536
//! [ike]                                   # daemon::ike::IkeSection
//! identity = "ha.example.com"
//! proposals = ["aes128-sha256-ecp256"]
//! esp_proposals = ["aes128gcm16"]
//! [[peers]]
//! identity = "mn1@example.com"
//! psk = "secret"                          # or psk_file, or ca
//! home_address = "2001:db8:1::1000"       # static: the only home address this peer may use
//! ```
//!
//! These keys are the contract of issue 3: configurations written for one version keep
//! working. Relative paths are relative to the file's directory.

use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};

use daemon::addr::{AddrRange, Ipv6Prefix};
use daemon::ike::{IkeSection, IkeSettings, Role, peer_auth};
use daemon::{ConfigError, Loaded, Secret, Validator};
use ikev1::{Identity, LocalAuth, PeerAuth, PeerConfig};
use serde::{Deserialize, Serialize};

/// The control socket when the configuration names none.
pub(crate) const DEFAULT_CONTROL_SOCKET: &str = "/run/mip6-ha.sock";

/// The file as written, with defaults filled in and paths made absolute: what `check`
/// prints.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct File {
    /// Addresses the IKE sockets listen on (`::` for all).
    pub(crate) listen: Vec<Ipv6Addr>,
    /// The control socket `status` talks to.
    #[serde(default = "default_control_socket")]
    pub(crate) control_socket: PathBuf,
    /// The log filter (`info`, `debug`, `info,ikev1=debug`); `RUST_LOG` overrides it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) log_level: Option<String>,
    /// The home link.
    pub(crate) home_link: HomeLink,
    /// The DHCPv6 relay.
    #[serde(default)]
    pub(crate) dhcpv6: Dhcpv6,
    /// Mode Config.
    #[serde(default)]
    pub(crate) modecfg: Modecfg,
    /// The binding cache (home registration, RFC 6275 §10.3).
    #[serde(default)]
    pub(crate) bindings: Bindings,
    /// IKE.
    pub(crate) ike: IkeSection,
    /// The mobile nodes this home agent serves.
    #[serde(default)]
    pub(crate) peers: Vec<PeerEntry>,
}

/// `[home_link]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HomeLink {
    /// The interface on the home link.
    pub(crate) interface: String,
    /// The home agent's address on the home link (the relay's link-address).
    pub(crate) address: Ipv6Addr,
    /// The home prefix.
    pub(crate) prefix: Ipv6Prefix,
}

/// `[dhcpv6]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Dhcpv6 {
    /// The DHCPv6 servers to relay to; none: All_DHCP_Servers (ff05::1:3).
    #[serde(default)]
    pub(crate) servers: Vec<Ipv6Addr>,
    /// Relay mobile nodes' DHCPv6 through their initial tunnel; false refuses it (Mode
    /// Config still leases from the servers).
    #[serde(default = "default_true")]
    pub(crate) relay: bool,
}

impl Default for Dhcpv6 {
    fn default() -> Self {
        Self {
            servers: Vec::new(),
            relay: true,
        }
    }
}

/// Where Mode Config addresses come from (`[modecfg] source`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ModecfgSource {
    /// Leased from the DHCPv6 servers on the peer's behalf: one address authority.
    #[default]
    Dhcpv6,
    /// Handed out from `pool`.
    Pool,
}

/// `[modecfg]`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Modecfg {
    /// Where addresses come from.
    #[serde(default)]
    pub(crate) source: ModecfgSource,
    /// The range for `source = "pool"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) pool: Option<AddrRange>,
    /// DNS servers sent as INTERNAL_IP6_DNS.
    #[serde(default)]
    pub(crate) dns: Vec<Ipv6Addr>,
}

/// `[bindings]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Bindings {
    /// The longest lifetime granted to a binding, seconds (RFC 6275 §10.3.1 lets the home
    /// agent shorten what the mobile node asks for).
    #[serde(default = "default_max_lifetime")]
    pub(crate) max_lifetime: u64,
    /// The most bindings held at once; beyond, registrations are refused (status 130).
    #[serde(default = "default_max_entries")]
    pub(crate) max_entries: usize,
}

impl Default for Bindings {
    fn default() -> Self {
        Self {
            max_lifetime: default_max_lifetime(),
            max_entries: default_max_entries(),
        }
    }
}

fn default_max_lifetime() -> u64 {
    3600
}
fn default_max_entries() -> usize {
    65536
}

/// The longest Binding Update lifetime: 65535 units of 4 seconds (RFC 6275 §6.1.7).
pub(crate) const MAX_BINDING_LIFETIME: u64 = 65535 * 4;

/// One `[[peers]]` entry: a mobile node.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PeerEntry {
    /// Its IKE identity.
    pub(crate) identity: String,
    /// The pre-shared key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) psk: Option<Secret>,
    /// A file holding the pre-shared key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) psk_file: Option<PathBuf>,
    /// The CA certificates (PEM) its certificate must chain to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) ca: Option<PathBuf>,
    /// A static home address: the only inner address accepted from this peer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) home_address: Option<Ipv6Addr>,
}

fn default_control_socket() -> PathBuf {
    PathBuf::from(DEFAULT_CONTROL_SOCKET)
}
fn default_true() -> bool {
    true
}

/// A mobile node, validated.
#[derive(Clone, Debug)]
pub(crate) struct Peer {
    /// Its identity.
    pub(crate) identity: Identity,
    /// How it authenticates.
    pub(crate) auth: PeerAuth,
    /// Its static home address, if configured.
    #[allow(
        dead_code,
        reason = "used once the runtime enforces the static home address"
    )]
    pub(crate) home_address: Option<Ipv6Addr>,
}

/// The validated configuration.
#[derive(Debug)]
pub(crate) struct Config {
    /// The file (defaults filled in, paths absolute).
    pub(crate) file: File,
    /// The `[ike]` section, validated.
    pub(crate) ike: IkeSettings,
    /// The `[[peers]]`, validated, in file order.
    pub(crate) peers: Vec<Peer>,
}

impl Config {
    /// Reads and validates `path`.
    pub(crate) fn load(path: &Path) -> Result<Loaded<Self>, ConfigError> {
        let (file, text) = daemon::load::parse_file::<File>(path)?;
        Self::validate(Validator::new(path).with_text(&text), file)
    }

    /// Validates a parsed file; `v` knows where it came from.
    pub(crate) fn validate(mut v: Validator, mut file: File) -> Result<Loaded<Self>, ConfigError> {
        v.resolve(&mut file.control_socket);
        file.ike.resolve_paths(&v);
        for p in &mut file.peers {
            for f in [&mut p.psk_file, &mut p.ca].into_iter().flatten() {
                v.resolve(f);
            }
        }

        if file.listen.is_empty() {
            return Err(v.error("listen", "at least one address is needed (\"::\" for all)"));
        }
        for (i, a) in file.listen.iter().enumerate() {
            let key = format!("listen[{i}]");
            if a.is_multicast() {
                return Err(v.error(key, format!("{a} is a multicast address")));
            }
            if let Some(j) = file.listen[..i].iter().position(|b| b == a) {
                return Err(v.error(key, format!("{a} is already listen[{j}]")));
            }
        }
        if file.control_socket.as_os_str().is_empty() {
            return Err(v.error("control_socket", "must not be empty"));
        }
        if let Some(level) = &file.log_level {
            daemon::logging::check_level(level).map_err(|e| v.error("log_level", e))?;
        }
        check_home_link(&v, &file.home_link)?;
        check_servers(&v, &file.dhcpv6)?;
        check_modecfg(&v, &file.modecfg, &file.home_link)?;
        if !(4..=MAX_BINDING_LIFETIME).contains(&file.bindings.max_lifetime) {
            return Err(v.error(
                "bindings.max_lifetime",
                format!("must be 4 to {MAX_BINDING_LIFETIME} seconds"),
            ));
        }
        if file.bindings.max_entries == 0 {
            return Err(v.error("bindings.max_entries", "must be at least 1"));
        }
        let ike = file.ike.validate(&mut v, Role::HomeAgent)?;
        let peers = check_peers(&mut v, &file, &ike)?;
        Ok(Loaded {
            config: Self { file, ike, peers },
            warnings: v.into_warnings(),
        })
    }

    /// The IKE engine's configuration: every `[[peers]]` entry, from anywhere.
    pub(crate) fn engine_config(&self) -> ikev1::Config {
        let peers = self
            .peers
            .iter()
            .map(|p| PeerConfig {
                identity: p.identity.clone(),
                auth: p.auth.clone(),
                addrs: Vec::new(),
            })
            .collect();
        self.ike.engine_config(peers)
    }
}

/// Linux interface names: 1 to 15 bytes, no `/`, `:` or white space (`dev_valid_name`).
fn check_interface(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 15 {
        return Err(format!("{name:?} is not 1 to 15 bytes long"));
    }
    if name == "."
        || name == ".."
        || name.contains(['/', ':'])
        || name.contains(char::is_whitespace)
    {
        return Err(format!("{name:?} is not a valid interface name"));
    }
    Ok(())
}

fn check_home_link(v: &Validator, h: &HomeLink) -> Result<(), ConfigError> {
    check_interface(&h.interface).map_err(|e| v.error("home_link.interface", e))?;
    let a = h.address;
    if a.is_unspecified() || a.is_multicast() || a.is_loopback() || a.is_unicast_link_local() {
        return Err(v.error(
            "home_link.address",
            format!("{a} is not a global unicast address"),
        ));
    }
    if !h.prefix.contains(a) {
        return Err(v.error(
            "home_link.address",
            format!("{a} is not inside home_link.prefix {}", h.prefix),
        ));
    }
    Ok(())
}

fn check_servers(v: &Validator, d: &Dhcpv6) -> Result<(), ConfigError> {
    for (i, a) in d.servers.iter().enumerate() {
        let key = format!("dhcpv6.servers[{i}]");
        if a.is_unspecified() || a.is_loopback() {
            return Err(v.error(key, format!("{a} is not a server address")));
        }
        if let Some(j) = d.servers[..i].iter().position(|b| b == a) {
            return Err(v.error(key, format!("{a} is already dhcpv6.servers[{j}]")));
        }
    }
    Ok(())
}

fn check_modecfg(v: &Validator, m: &Modecfg, home: &HomeLink) -> Result<(), ConfigError> {
    if let Some(pool) = m.pool {
        for end in [pool.first, pool.last] {
            if !home.prefix.contains(end) {
                return Err(v.error(
                    "modecfg.pool",
                    format!("{end} is not inside home_link.prefix {}", home.prefix),
                ));
            }
        }
        if pool.contains(home.address) {
            return Err(v.error(
                "modecfg.pool",
                format!("contains home_link.address {}", home.address),
            ));
        }
    } else if m.source == ModecfgSource::Pool {
        return Err(v.error("modecfg.pool", "required with source = \"pool\""));
    }
    for (i, a) in m.dns.iter().enumerate() {
        if a.is_unspecified() || a.is_multicast() {
            return Err(v.error(
                format!("modecfg.dns[{i}]"),
                format!("{a} is not a unicast address"),
            ));
        }
    }
    Ok(())
}

fn check_peers(
    v: &mut Validator,
    file: &File,
    ike: &IkeSettings,
) -> Result<Vec<Peer>, ConfigError> {
    if file.peers.is_empty() {
        return Err(v.error(
            "peers",
            "no [[peers]] entry: the home agent would accept no mobile node",
        ));
    }
    let home = &file.home_link;
    let mut peers: Vec<Peer> = Vec::with_capacity(file.peers.len());
    for (i, p) in file.peers.iter().enumerate() {
        let key = |k: &str| format!("peers[{i}].{k}");
        if p.identity.trim().is_empty() {
            return Err(v.error(key("identity"), "must not be empty"));
        }
        let identity = Identity::parse(&p.identity);
        if let Some(j) = peers
            .iter()
            .position(|q| q.identity.matches(&identity) && identity.matches(&q.identity))
        {
            return Err(v.error(
                key("identity"),
                format!("{identity} is already peers[{j}].identity"),
            ));
        }
        let auth = peer_auth(
            v,
            &format!("peers[{i}]"),
            p.psk.as_ref(),
            p.psk_file.as_deref(),
            p.ca.as_deref(),
        )?;
        // The engine negotiates one authentication method: ours.
        match (&ike.local_auth, &auth) {
            (LocalAuth::Psk, PeerAuth::RsaSig { .. }) => {
                return Err(v.error(
                    key("ca"),
                    "certificate authentication needs the home agent's own ike.certificate and ike.key",
                ));
            }
            (LocalAuth::RsaSig { .. }, PeerAuth::Psk(_)) => {
                let k = if p.psk.is_some() { "psk" } else { "psk_file" };
                return Err(v.error(
                    key(k),
                    "the home agent authenticates with ike.certificate; pre-shared keys and certificates cannot be mixed (give this peer a ca)",
                ));
            }
            _ => {}
        }
        if let Some(hoa) = p.home_address {
            let k = key("home_address");
            if !home.prefix.contains(hoa) {
                return Err(v.error(
                    k,
                    format!("{hoa} is not inside home_link.prefix {}", home.prefix),
                ));
            }
            if hoa == home.address {
                return Err(v.error(
                    k,
                    format!("{hoa} is home_link.address, the home agent's own"),
                ));
            }
            if hoa == home.prefix.addr {
                return Err(v.error(
                    k,
                    format!("{hoa} is the prefix's Subnet-Router anycast address"),
                ));
            }
            if let Some(j) = peers.iter().position(|q| q.home_address == Some(hoa)) {
                return Err(v.error(k, format!("{hoa} is already peers[{j}].home_address")));
            }
            if file.modecfg.source == ModecfgSource::Pool
                && file.modecfg.pool.is_some_and(|pool| pool.contains(hoa))
            {
                return Err(v.error(
                    k,
                    format!("{hoa} is inside modecfg.pool, which hands it out to others"),
                ));
            }
        }
        peers.push(Peer {
            identity,
            auth,
            home_address: p.home_address,
        });
    }
    Ok(peers)
}

#[cfg(test)]
mod tests;
