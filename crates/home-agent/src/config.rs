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
//! # auth = "hybrid"                       # psk | rsa | hybrid | psk+xauth (daemon::ike)
//! # certificate = "ha.pem"                # with key (or private_key): rsa and hybrid
//! # xauth_type = "radius-chap"            # or "generic": what XAUTH asks of peers
//! [radius]                                # checks XAUTH answers (draft §4)
//! servers = ["2001:db8:1::18", "[2001:db8:1::19]:1812"]
//! secret = "radius-secret"                # or secret_file
//! method = "chap"                         # or "pap"
//! [dns_update]                            # the mobile nodes' names (RFC 5026 §6)
//! server = "2001:db8:1::2"                # or "[2001:db8:1::2]:53"
//! zone = "example."
//! key_name = "mip6-ha."                   # TSIG (RFC 8945)
//! key_algorithm = "hmac-sha256"
//! key_secret = "base64..."                # or key_file (BIND's tsig-keygen output)
//! [[peers]]
//! identity = "mn1@example.com"
//! psk = "secret"                          # or psk_file, or ca; none with auth = "hybrid"
//! # fqdn = "mn1.example."                 # the one name it may have updated, or
//! # fqdn_suffix = "mn.example."           # any name under this one
//! home_address = "2001:db8:1::1000"       # static: the only home address this peer may use
//! # auth = "psk+xauth"                    # overrides [ike] auth within its family
//! # xauth_user = "mnuser"                 # only this XAUTH user may use this identity
//! ```
//!
//! These keys are the contract of issue 3: configurations written for one version keep
//! working. Relative paths are relative to the file's directory.

use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};

use daemon::addr::{AddrRange, Ipv6Prefix};
use daemon::ike::{AuthMethod, IkeSection, IkeSettings, Paths, Role, XauthTypeName, peer_auth};
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
    /// The RADIUS servers that check XAUTH answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) radius: Option<RadiusSection>,
    /// DNS updates of the mobile nodes' names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) dns_update: Option<DnsUpdateSection>,
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
    /// The CA certificates (PEM files) its certificate must chain to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) ca: Option<Paths>,
    /// A static home address: the only inner address accepted from this peer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) home_address: Option<Ipv6Addr>,
    /// The phase-1 method for this peer; default `[ike] auth`. `psk` and `psk+xauth` go
    /// together, as do `rsa` and `hybrid` (the home agent's own credentials decide).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) auth: Option<AuthMethod>,
    /// The XAUTH type asked of this peer; default `[ike] xauth_type`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) xauth_type: Option<XauthTypeName>,
    /// The only XAUTH user that may use this identity; absent: any user RADIUS accepts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) xauth_user: Option<String>,
    /// The one name this peer may have the home agent update (DNS Update option).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) fqdn: Option<String>,
    /// Or: any name under this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) fqdn_suffix: Option<String>,
}

/// `[dns_update]`: where and how the home agent updates mobile nodes' AAAA records (RFC 2136
/// UPDATE, TSIG-signed per RFC 8945).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DnsUpdateSection {
    /// The primary server of the zone: `ADDR` (port 53) or `[ADDR]:PORT`.
    pub(crate) server: String,
    /// The zone the names are in.
    pub(crate) zone: String,
    /// The TSIG key's name; with `key_file`, which key of the file (default: its only one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) key_name: Option<String>,
    /// `hmac-sha256` (default), `hmac-sha512`, … ; with `key_file`, the file says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) key_algorithm: Option<String>,
    /// The key's secret, base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) key_secret: Option<Secret>,
    /// A file in BIND's `tsig-keygen` format (`key "name" { algorithm …; secret "…"; };`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) key_file: Option<PathBuf>,
    /// TTL of the AAAA records, seconds.
    #[serde(default = "default_dns_ttl")]
    pub(crate) ttl: u32,
}

fn default_dns_ttl() -> u32 {
    300
}

/// How the home agent proves a password to RADIUS (`[radius] method`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RadiusMethod {
    /// CHAP-Password + CHAP-Challenge: for Generic XAUTH computed here from the password, for
    /// RADIUS-CHAP XAUTH the mobile node's own answer, forwarded.
    #[default]
    Chap,
    /// User-Password (RFC 2865 §5.2), for servers whose user store has no clear-text passwords.
    /// A RADIUS-CHAP answer cannot be turned into PAP: those peers still go as CHAP.
    Pap,
}

/// `[radius]`: the RFC 2865 servers that check XAUTH answers.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RadiusSection {
    /// `ADDR` or `[ADDR]:PORT` (port 1812 unless given), in failover order.
    pub(crate) servers: Vec<String>,
    /// The shared secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) secret: Option<Secret>,
    /// A file holding the shared secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) secret_file: Option<PathBuf>,
    /// CHAP (default) or PAP.
    #[serde(default)]
    pub(crate) method: RadiusMethod,
    /// Seconds to wait for an answer to one transmission; longer than the server's reject
    /// delay (FreeRADIUS holds Access-Reject back 1 s).
    #[serde(default = "default_radius_timeout")]
    pub(crate) timeout: u64,
    /// Retransmissions to one server before the next is tried.
    #[serde(default = "default_radius_retries")]
    pub(crate) retries: u32,
    /// Drop answers without a Message-Authenticator (RFC 3579 §3.2; the BlastRADIUS defence).
    /// Turn off only for servers that cannot send one.
    #[serde(default = "default_true")]
    pub(crate) require_message_authenticator: bool,
    /// NAS-Identifier in every request; default: `[ike] identity`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) nas_identifier: Option<String>,
}

fn default_radius_timeout() -> u64 {
    radius::DEFAULT_TIMEOUT.as_secs()
}
fn default_radius_retries() -> u32 {
    radius::DEFAULT_TRIES - 1
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
    /// The only XAUTH user allowed this identity, if restricted.
    pub(crate) xauth_user: Option<String>,
    /// Which names it may have updated in DNS.
    pub(crate) names: NameRule,
}

/// The names a peer may have the home agent put into DNS.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) enum NameRule {
    /// None.
    #[default]
    None,
    /// Exactly this one.
    Exact(dns_update::Name),
    /// This one and any name under it.
    Suffix(dns_update::Name),
}

impl NameRule {
    /// Whether `name` is allowed.
    pub(crate) fn allows(&self, name: &dns_update::Name) -> bool {
        match self {
            Self::None => false,
            Self::Exact(n) => n == name,
            Self::Suffix(s) => name.is_subdomain_of(s),
        }
    }
}

/// `[dns_update]`, validated.
#[derive(Debug)]
pub(crate) struct DnsUpdateSettings {
    /// The server.
    pub(crate) server: std::net::SocketAddr,
    /// The zone.
    pub(crate) zone: dns_update::Name,
    /// The TSIG key.
    pub(crate) key: dns_update::TsigKey,
    /// TTL of the records.
    pub(crate) ttl: u32,
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
    /// The RADIUS client's configuration, when `[radius]` is present.
    pub(crate) radius: Option<RadiusSettings>,
    /// `[dns_update]`, when present.
    pub(crate) dns_update: Option<DnsUpdateSettings>,
}

/// `[radius]`, validated.
#[derive(Debug)]
pub(crate) struct RadiusSettings {
    /// The client's configuration.
    pub(crate) client: radius::ClientConfig,
    /// CHAP or PAP.
    pub(crate) method: RadiusMethod,
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
            for f in p
                .psk_file
                .iter_mut()
                .chain(p.ca.iter_mut().flat_map(Paths::iter_mut))
            {
                v.resolve(f);
            }
        }
        if let Some(r) = &mut file.radius
            && let Some(f) = &mut r.secret_file
        {
            v.resolve(f);
        }
        if let Some(d) = &mut file.dns_update
            && let Some(f) = &mut d.key_file
        {
            v.resolve(f);
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
        let radius = match &file.radius {
            Some(r) => Some(check_radius(&mut v, r, &file, &ike)?),
            None => None,
        };
        if radius.is_none()
            && let Some(i) = file
                .peers
                .iter()
                .position(|p| p.auth.unwrap_or(ike.method).xauth())
        {
            return Err(v.error(
                "radius",
                format!(
                    "peers[{i}] must pass XAUTH (auth = \"{}\"), which the home agent checks with RADIUS: add a [radius] section",
                    file.peers[i].auth.unwrap_or(ike.method).as_str()
                ),
            ));
        }
        let dns_update = match &file.dns_update {
            Some(d) => Some(check_dns_update(&mut v, d)?),
            None => None,
        };
        if let Some(d) = &dns_update {
            for (i, p) in peers.iter().enumerate() {
                let name = match &p.names {
                    NameRule::Exact(n) | NameRule::Suffix(n) => n,
                    NameRule::None => continue,
                };
                if !name.is_subdomain_of(&d.zone) {
                    let k = if matches!(p.names, NameRule::Exact(_)) {
                        "fqdn"
                    } else {
                        "fqdn_suffix"
                    };
                    return Err(v.error(
                        format!("peers[{i}].{k}"),
                        format!("{name} is not in dns_update.zone {}", d.zone),
                    ));
                }
            }
        } else if let Some(i) = peers.iter().position(|p| p.names != NameRule::None) {
            v.warn(
                &format!("peers[{i}].fqdn"),
                "unused without a [dns_update] section",
            );
        }
        Ok(Loaded {
            config: Self {
                file,
                ike,
                peers,
                radius,
                dns_update,
            },
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
    // Identities (canonical text, case-folded: FQDNs compare without case) and static home
    // addresses seen so far: one lookup per entry, so 10,000 peers load in milliseconds.
    let mut identities: std::collections::HashMap<String, usize> =
        std::collections::HashMap::with_capacity(file.peers.len());
    let mut statics: std::collections::HashMap<Ipv6Addr, usize> = std::collections::HashMap::new();
    for (i, p) in file.peers.iter().enumerate() {
        let key = |k: &str| format!("peers[{i}].{k}");
        if p.identity.trim().is_empty() {
            return Err(v.error(key("identity"), "must not be empty"));
        }
        let identity = Identity::parse(&p.identity);
        if let Some(j) = identities.insert(identity.to_string().to_ascii_lowercase(), i) {
            return Err(v.error(
                key("identity"),
                format!("{identity} is already peers[{j}].identity"),
            ));
        }
        let auth = check_peer_auth(v, i, p, ike)?;
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
            if let Some(j) = statics.insert(hoa, i) {
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
        let names = match (&p.fqdn, &p.fqdn_suffix) {
            (None, None) => NameRule::None,
            (Some(n), None) => NameRule::Exact(
                dns_update::Name::from_ascii(n).map_err(|e| v.error(key("fqdn"), e.to_string()))?,
            ),
            (None, Some(n)) => NameRule::Suffix(
                dns_update::Name::from_ascii(n)
                    .map_err(|e| v.error(key("fqdn_suffix"), e.to_string()))?,
            ),
            (Some(_), Some(_)) => {
                return Err(v.error(
                    key("fqdn_suffix"),
                    "conflicts with fqdn: give the one name or a suffix",
                ));
            }
        };
        peers.push(Peer {
            identity,
            auth,
            home_address: p.home_address,
            xauth_user: p.xauth_user.clone(),
            names,
        });
    }
    Ok(peers)
}

/// A peer's credentials under its method: a key (`psk`, `psk+xauth`), CAs (`rsa`) or nothing
/// but XAUTH (`hybrid`); the method must suit the home agent's own credentials, since the IKE
/// engine negotiates one kind per configuration.
fn check_peer_auth(
    v: &mut Validator,
    i: usize,
    p: &PeerEntry,
    ike: &IkeSettings,
) -> Result<PeerAuth, ConfigError> {
    let key = |k: &str| format!("peers[{i}].{k}");
    let method = p.auth.unwrap_or(ike.method);
    if method.home_agent_signs() != ike.method.home_agent_signs() {
        let (k, why) = match (p.auth.is_some(), method.home_agent_signs()) {
            (true, true) => (
                "auth",
                "needs the home agent's own ike.certificate and ike.key",
            ),
            (true, false) => (
                "auth",
                "uses a pre-shared key, but the home agent authenticates with ike.certificate; pre-shared keys and certificates cannot be mixed",
            ),
            (false, _) => ("auth", "does not suit [ike] auth"),
        };
        return Err(v.error(key(k), format!("auth = \"{}\" {why}", method.as_str())));
    }
    if !method.xauth() {
        for (k, set) in [
            ("xauth_user", p.xauth_user.is_some()),
            ("xauth_type", p.xauth_type.is_some()),
        ] {
            if set {
                return Err(v.error(
                    key(k),
                    format!(
                        "only used with auth = \"hybrid\" or \"psk+xauth\" (this peer: \"{}\")",
                        method.as_str()
                    ),
                ));
            }
        }
    }
    if let Some(u) = &p.xauth_user
        && (u.is_empty() || u.len() > 253)
    {
        return Err(v.error(key("xauth_user"), "must be 1 to 253 bytes long"));
    }
    let xauth = p.xauth_type.unwrap_or(ike.xauth_type).into();
    let prefix = format!("peers[{i}]");
    let ca = p.ca.as_ref().map(Paths::as_slice);
    match method {
        AuthMethod::Psk | AuthMethod::Rsa => {
            let auth = peer_auth(v, &prefix, p.psk.as_ref(), p.psk_file.as_deref(), ca)?;
            match (&ike.local_auth, &auth) {
                (LocalAuth::Psk, PeerAuth::RsaSig { .. }) => Err(v.error(
                    key("ca"),
                    "certificate authentication needs the home agent's own ike.certificate and ike.key",
                )),
                (LocalAuth::RsaSig { .. }, PeerAuth::Psk(_)) => {
                    let k = if p.psk.is_some() { "psk" } else { "psk_file" };
                    Err(v.error(
                        key(k),
                        "the home agent authenticates with ike.certificate; pre-shared keys and certificates cannot be mixed (give this peer a ca)",
                    ))
                }
                _ => Ok(auth),
            }
        }
        AuthMethod::PskXauth => {
            if ca.is_some() {
                return Err(v.error(
                    key("ca"),
                    "not used with auth = \"psk+xauth\" (give psk or psk_file)",
                ));
            }
            match peer_auth(v, &prefix, p.psk.as_ref(), p.psk_file.as_deref(), None)? {
                PeerAuth::Psk(psk) => Ok(PeerAuth::XauthPsk { psk, xauth }),
                _ => Err(v.error(key("psk"), "required with auth = \"psk+xauth\"")),
            }
        }
        AuthMethod::Hybrid => {
            for (k, set) in [
                ("psk", p.psk.is_some()),
                ("psk_file", p.psk_file.is_some()),
                ("ca", p.ca.is_some()),
            ] {
                if set {
                    return Err(v.error(
                        key(k),
                        "a hybrid peer proves nothing in phase 1 and is authenticated by XAUTH alone: remove it",
                    ));
                }
            }
            Ok(PeerAuth::Hybrid { xauth })
        }
    }
}

fn check_dns_update(
    v: &mut Validator,
    d: &DnsUpdateSection,
) -> Result<DnsUpdateSettings, ConfigError> {
    let server = daemon::addr::server_addr(&d.server, 53).ok_or_else(|| {
        v.error(
            "dns_update.server",
            format!("{:?} is not ADDR or [ADDR]:PORT", d.server),
        )
    })?;
    let zone = dns_update::Name::from_ascii(&d.zone)
        .map_err(|e| v.error("dns_update.zone", e.to_string()))?;
    if zone.is_root() {
        return Err(v.error("dns_update.zone", "the root is no zone to update"));
    }
    let key = match (&d.key_secret, &d.key_file) {
        (Some(secret), None) => {
            let name = d
                .key_name
                .as_deref()
                .ok_or_else(|| v.error("dns_update.key_name", "required with key_secret"))?;
            dns_update::TsigKey::from_strings(
                name,
                d.key_algorithm.as_deref().unwrap_or("hmac-sha256"),
                secret.expose(),
            )
            .map_err(|e| v.error("dns_update.key_secret", e.to_string()))?
        }
        (None, Some(path)) => {
            if d.key_algorithm.is_some() {
                return Err(v.error("dns_update.key_algorithm", "comes from key_file: remove it"));
            }
            let text = daemon::ike::read_secret_file(v, "dns_update.key_file", path)?;
            let text = std::str::from_utf8(&text).map_err(|_| {
                v.error(
                    "dns_update.key_file",
                    format!("{} is not UTF-8 text", path.display()),
                )
            })?;
            dns_update::TsigKey::from_bind_file(text, d.key_name.as_deref())
                .map_err(|e| v.error("dns_update.key_file", format!("{}: {e}", path.display())))?
        }
        (None, None) => {
            return Err(v.error(
                "dns_update.key_secret",
                "required (or key_file): updates are TSIG-signed",
            ));
        }
        (Some(_), Some(_)) => {
            return Err(v.error(
                "dns_update.key_file",
                "conflicts with key_secret: give one of them",
            ));
        }
    };
    if d.ttl == 0 || d.ttl > 86400 {
        return Err(v.error("dns_update.ttl", "must be 1 to 86400 seconds"));
    }
    Ok(DnsUpdateSettings {
        server,
        zone,
        key,
        ttl: d.ttl,
    })
}

fn check_radius(
    v: &mut Validator,
    r: &RadiusSection,
    file: &File,
    ike: &IkeSettings,
) -> Result<RadiusSettings, ConfigError> {
    if r.servers.is_empty() {
        return Err(v.error("radius.servers", "at least one server is needed"));
    }
    let mut servers = Vec::with_capacity(r.servers.len());
    for (i, s) in r.servers.iter().enumerate() {
        let a = radius::parse_server(s)
            .map_err(|e| v.error(format!("radius.servers[{i}]"), e.to_string()))?;
        if let Some(j) = servers.iter().position(|b| *b == a) {
            return Err(v.error(
                format!("radius.servers[{i}]"),
                format!("{a} is already radius.servers[{j}]"),
            ));
        }
        servers.push(a);
    }
    let secret = match (&r.secret, &r.secret_file) {
        (Some(s), None) => s.expose().as_bytes().to_vec(),
        (None, Some(path)) => {
            daemon::ike::read_secret_file(v, "radius.secret_file", path)?.to_vec()
        }
        (None, None) => {
            return Err(v.error(
                "radius.secret",
                "required (or secret_file): the RADIUS shared secret",
            ));
        }
        (Some(_), Some(_)) => {
            return Err(v.error(
                "radius.secret_file",
                "conflicts with radius.secret: give one of them",
            ));
        }
    };
    let secret = radius::SharedSecret::new(secret)
        .ok_or_else(|| v.error("radius.secret", "must not be empty"))?;
    if r.timeout == 0 {
        return Err(v.error("radius.timeout", "must be at least 1 second"));
    }
    if r.timeout <= 1 {
        v.warn(
            "radius.timeout",
            "1 second is not longer than FreeRADIUS's reject delay: rejections would look like timeouts",
        );
    }
    if r.retries > 10 {
        return Err(v.error("radius.retries", "at most 10"));
    }
    let mut client = radius::ClientConfig::new(servers, secret);
    client.timeout = std::time::Duration::from_secs(r.timeout);
    client.tries = r.retries + 1;
    client.allow_pap = r.method == RadiusMethod::Pap;
    client.require_message_authenticator = r.require_message_authenticator;
    client.nas_identifier = Some(
        r.nas_identifier
            .clone()
            .unwrap_or_else(|| ike.local_id.to_string()),
    );
    client.nas_ipv6_address = Some(file.home_link.address);
    if let Some(n) = &client.nas_identifier
        && (n.is_empty() || n.len() > 253)
    {
        return Err(v.error("radius.nas_identifier", "must be 1 to 253 bytes long"));
    }
    if !r.require_message_authenticator {
        v.warn(
            "radius.require_message_authenticator",
            "off: forged answers without Message-Authenticator are accepted if their Response Authenticator checks (BlastRADIUS, CVE-2024-3596)",
        );
    }
    Ok(RadiusSettings {
        client,
        method: r.method,
    })
}

#[cfg(test)]
mod tests;
