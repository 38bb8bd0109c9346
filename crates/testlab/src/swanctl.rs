//! `swanctl.conf` for the lab's charon instances, built from typed parts instead of written out
//! by hand: [`Connection`]s with their authentication rounds ([`Auth`]) and [`Child`]ren, address
//! [`Pool`]s and [`Secret`]s. [`Swanctl`] renders the text (`Display`) and converts into the
//! `String` that [`CharonOptions::new`](crate::CharonOptions::new) takes.
//!
//! Only what the lab's tests configure is here. Values are written as given (one `key = value`
//! per line, two spaces of indentation a level); a secret is quoted. Setting a key twice keeps
//! the last value, in the place of the first. Empty `connections`, `pools`, `secrets` and
//! `children` sections are left out.
//!
//! ```
//! use testlab::swanctl::{Auth, Child, Connection, Pool, Secret, Swanctl};
//! let conf = Swanctl::new()
//!     .connection(
//!         Connection::ikev1("mip6")
//!             .proposals("aes128-sha256-ecp256")
//!             .local_addrs("2001:db8:ff::1")
//!             .pools("v6pool")
//!             .local(Auth::psk().id("ha.example.com"))
//!             .remote(Auth::psk().id("mn1@example.com"))
//!             .child(Child::new("home").local_ts("::/0").esp_proposals("aes128gcm16")),
//!     )
//!     .pool(Pool::new("v6pool", "2001:db8:1::1000/120"))
//!     .secret(Secret::ike_psk("0123456789abcdef"));
//! let text = conf.to_string();
//! assert!(text.starts_with("connections {\n  mip6 {\n    version = 1\n"));
//! assert!(text.contains("  ike-psk {\n    secret = \"0123456789abcdef\"\n  }\n"));
//! ```

use std::fmt::{self, Display};

/// The `key = value` lines of one section, in the order they were first set.
type Keys = Vec<(&'static str, String)>;

fn set(keys: &mut Keys, key: &'static str, value: impl Display) {
    let value = value.to_string();
    match keys.iter_mut().find(|(k, _)| *k == key) {
        Some(slot) => slot.1 = value,
        None => keys.push((key, value)),
    }
}

/// Writes `name { <keys> <body> }` at `depth` (two spaces a level).
fn section(
    f: &mut fmt::Formatter<'_>,
    depth: usize,
    name: &str,
    keys: &Keys,
    body: impl FnOnce(&mut fmt::Formatter<'_>) -> fmt::Result,
) -> fmt::Result {
    let pad = depth * 2;
    writeln!(f, "{:pad$}{name} {{", "")?;
    for (key, value) in keys {
        writeln!(f, "{:pad$}  {key} = {value}", "")?;
    }
    body(f)?;
    writeln!(f, "{:pad$}}}", "")
}

fn leaf(f: &mut fmt::Formatter<'_>, depth: usize, name: &str, keys: &Keys) -> fmt::Result {
    section(f, depth, name, keys, |_| Ok(()))
}

/// A whole `swanctl.conf`: connections, pools and secrets.
#[derive(Debug, Clone, Default)]
pub struct Swanctl {
    connections: Vec<Connection>,
    pools: Vec<Pool>,
    secrets: Vec<Secret>,
}

impl Swanctl {
    /// An empty configuration.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a connection.
    #[must_use]
    pub fn connection(mut self, connection: Connection) -> Self {
        self.connections.push(connection);
        self
    }

    /// Adds an address pool (named by a connection's [`Connection::pools`]).
    #[must_use]
    pub fn pool(mut self, pool: Pool) -> Self {
        self.pools.push(pool);
        self
    }

    /// Adds a secret.
    #[must_use]
    pub fn secret(mut self, secret: Secret) -> Self {
        self.secrets.push(secret);
        self
    }
}

impl Display for Swanctl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.connections.is_empty() {
            section(f, 0, "connections", &Keys::new(), |f| {
                self.connections.iter().try_for_each(|c| c.write(f, 1))
            })?;
        }
        if !self.pools.is_empty() {
            section(f, 0, "pools", &Keys::new(), |f| {
                self.pools
                    .iter()
                    .try_for_each(|p| leaf(f, 1, &p.name, &p.keys))
            })?;
        }
        if !self.secrets.is_empty() {
            section(f, 0, "secrets", &Keys::new(), |f| {
                self.secrets
                    .iter()
                    .try_for_each(|s| leaf(f, 1, &s.name, &s.keys))
            })?;
        }
        Ok(())
    }
}

impl From<Swanctl> for String {
    fn from(conf: Swanctl) -> Self {
        conf.to_string()
    }
}

/// One IKE connection (`connections { <name> { … } }`).
#[derive(Debug, Clone)]
pub struct Connection {
    name: String,
    keys: Keys,
    local: Option<Auth>,
    remote: Option<Auth>,
    /// Further rounds of the peer's authentication: (`remote-<suffix>`, round).
    remote_rounds: Vec<(String, Auth)>,
    children: Vec<Child>,
}

impl Connection {
    /// An IKEv1 connection (`version = 1`) named `name`, the name `swanctl --initiate --ike`
    /// takes.
    pub fn ikev1(name: &str) -> Self {
        let mut keys = Keys::new();
        set(&mut keys, "version", 1);
        Self {
            name: name.to_owned(),
            keys,
            local: None,
            remote: None,
            remote_rounds: Vec::new(),
            children: Vec::new(),
        }
    }

    /// `proposals`: the IKE (phase 1) proposals, e.g. `aes128-sha256-ecp256`.
    #[must_use]
    pub fn proposals(mut self, proposals: &str) -> Self {
        set(&mut self.keys, "proposals", proposals);
        self
    }

    /// `local_addrs`: the address charon uses and accepts IKE on.
    #[must_use]
    pub fn local_addrs(mut self, addrs: impl Display) -> Self {
        set(&mut self.keys, "local_addrs", addrs);
        self
    }

    /// `remote_addrs`: the peer to initiate to (unset: any peer, responder only).
    #[must_use]
    pub fn remote_addrs(mut self, addrs: impl Display) -> Self {
        set(&mut self.keys, "remote_addrs", addrs);
        self
    }

    /// `vips`: virtual IPs to request by Mode Config, e.g. `::` for any IPv6 address.
    #[must_use]
    pub fn vips(mut self, vips: &str) -> Self {
        set(&mut self.keys, "vips", vips);
        self
    }

    /// `pools`: the [`Pool`] Mode Config assigns addresses from.
    #[must_use]
    pub fn pools(mut self, pools: &str) -> Self {
        set(&mut self.keys, "pools", pools);
        self
    }

    /// The `local` authentication round: how charon authenticates itself.
    #[must_use]
    pub fn local(mut self, auth: Auth) -> Self {
        self.local = Some(auth);
        self
    }

    /// The `remote` authentication round: how charon authenticates the peer.
    #[must_use]
    pub fn remote(mut self, auth: Auth) -> Self {
        self.remote = Some(auth);
        self
    }

    /// A further round of the peer's authentication, `remote-<suffix>`, written after `remote`
    /// and the rounds added before it, e.g. `remote_round("xauth", Auth::new("xauth-radius"))`
    /// for XAUTH after PSK.
    #[must_use]
    pub fn remote_round(mut self, suffix: &str, auth: Auth) -> Self {
        let name = format!("remote-{suffix}");
        match self.remote_rounds.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = auth,
            None => self.remote_rounds.push((name, auth)),
        }
        self
    }

    /// Adds a CHILD SA configuration.
    #[must_use]
    pub fn child(mut self, child: Child) -> Self {
        self.children.push(child);
        self
    }

    fn write(&self, f: &mut fmt::Formatter<'_>, depth: usize) -> fmt::Result {
        section(f, depth, &self.name, &self.keys, |f| {
            if let Some(local) = &self.local {
                leaf(f, depth + 1, "local", &local.keys)?;
            }
            if let Some(remote) = &self.remote {
                leaf(f, depth + 1, "remote", &remote.keys)?;
            }
            for (name, auth) in &self.remote_rounds {
                leaf(f, depth + 1, name, &auth.keys)?;
            }
            if self.children.is_empty() {
                return Ok(());
            }
            section(f, depth + 1, "children", &Keys::new(), |f| {
                self.children
                    .iter()
                    .try_for_each(|c| leaf(f, depth + 2, &c.name, &c.keys))
            })
        })
    }
}

/// One authentication round of a connection (`local { … }`, `remote { … }`).
#[derive(Debug, Clone)]
pub struct Auth {
    keys: Keys,
}

impl Auth {
    /// `auth = <method>`, e.g. `xauth` (an XAUTH client) or `xauth-radius` (XAUTH checked by
    /// the eap-radius plugin).
    pub fn new(method: &str) -> Self {
        let mut keys = Keys::new();
        set(&mut keys, "auth", method);
        Self { keys }
    }

    /// `auth = psk`: a pre-shared key from the secrets.
    pub fn psk() -> Self {
        Self::new("psk")
    }

    /// `auth = pubkey`: signatures (RSA in the lab's tests).
    pub fn pubkey() -> Self {
        Self::new("pubkey")
    }

    /// `id`: the IKE identity (`%any` matches any).
    #[must_use]
    pub fn id(mut self, id: &str) -> Self {
        set(&mut self.keys, "id", id);
        self
    }

    /// `certs`: a certificate file in `swanctl/x509/` (see
    /// [`CharonOptions::file`](crate::CharonOptions::file)).
    #[must_use]
    pub fn certs(mut self, file: &str) -> Self {
        set(&mut self.keys, "certs", file);
        self
    }

    /// `cacerts`: the CA file in `swanctl/x509ca/` the peer's certificate must chain to.
    #[must_use]
    pub fn cacerts(mut self, file: &str) -> Self {
        set(&mut self.keys, "cacerts", file);
        self
    }

    /// `xauth_id`: the XAUTH user name (when it differs from the IKE identity).
    #[must_use]
    pub fn xauth_id(mut self, id: &str) -> Self {
        set(&mut self.keys, "xauth_id", id);
        self
    }
}

/// One CHILD SA configuration (`children { <name> { … } }`), the name
/// `swanctl --initiate --child` takes.
#[derive(Debug, Clone)]
pub struct Child {
    name: String,
    keys: Keys,
}

impl Child {
    /// A child named `name`; with no selectors charon uses `dynamic` (its own address, or the
    /// virtual IP) on both sides.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            keys: Keys::new(),
        }
    }

    /// `local_ts`: the local traffic selector, e.g. `2001:db8:1::/64` or `2001:db8:ff::1[135]`.
    #[must_use]
    pub fn local_ts(mut self, ts: impl Display) -> Self {
        set(&mut self.keys, "local_ts", ts);
        self
    }

    /// `remote_ts`: the remote traffic selector.
    #[must_use]
    pub fn remote_ts(mut self, ts: impl Display) -> Self {
        set(&mut self.keys, "remote_ts", ts);
        self
    }

    /// `esp_proposals`: the ESP proposals (with a DH group for PFS), e.g. `aes128gcm16`.
    #[must_use]
    pub fn esp_proposals(mut self, proposals: &str) -> Self {
        set(&mut self.keys, "esp_proposals", proposals);
        self
    }

    /// `mode`: `tunnel` (charon's default) or `transport`.
    #[must_use]
    pub fn mode(mut self, mode: &str) -> Self {
        set(&mut self.keys, "mode", mode);
        self
    }
}

/// An address pool for Mode Config (`pools { <name> { … } }`).
#[derive(Debug, Clone)]
pub struct Pool {
    name: String,
    keys: Keys,
}

impl Pool {
    /// A pool named `name` with `addrs`: a prefix (`2001:db8:1::1000/120`) or a range
    /// (`2001:db8:1::4000-2001:db8:1::40ff`).
    pub fn new(name: &str, addrs: &str) -> Self {
        let mut keys = Keys::new();
        set(&mut keys, "addrs", addrs);
        Self {
            name: name.to_owned(),
            keys,
        }
    }

    /// `dns`: a DNS server sent with the address.
    #[must_use]
    pub fn dns(mut self, server: impl Display) -> Self {
        set(&mut self.keys, "dns", server);
        self
    }
}

/// One secret (`secrets { <name> { … } }`); the name's prefix is its type (`ike`, `xauth`, …).
#[derive(Debug, Clone)]
pub struct Secret {
    name: String,
    keys: Keys,
}

impl Secret {
    /// A secret section `name` (`ike-…`, `xauth-…`, unique in the file) with the quoted
    /// `secret`; without [`Secret::id`] it applies to any identity.
    pub fn new(name: &str, secret: &str) -> Self {
        let mut keys = Keys::new();
        set(&mut keys, "secret", format_args!("\"{secret}\""));
        Self {
            name: name.to_owned(),
            keys,
        }
    }

    /// `ike-psk`: an IKE pre-shared key for any identity.
    pub fn ike_psk(psk: &str) -> Self {
        Self::new("ike-psk", psk)
    }

    /// `id`: the identity the secret belongs to (for XAUTH, the user name).
    #[must_use]
    pub fn id(mut self, id: &str) -> Self {
        set(&mut self.keys, "id", id);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_config_with_pools_children_and_secrets() {
        let conf = Swanctl::new()
            .connection(
                Connection::ikev1("ha")
                    .proposals("aes128-sha256-ecp256")
                    .local_addrs("2001:db8:ff::1")
                    .pools("home")
                    .local(Auth::psk().id("ha.example.com"))
                    .remote(Auth::psk().id("%any"))
                    .remote_round("xauth", Auth::new("xauth-radius"))
                    .child(
                        Child::new("tun")
                            .local_ts("::/0")
                            .esp_proposals("aes128gcm16"),
                    ),
            )
            .pool(Pool::new("home", "2001:db8:1::4000-2001:db8:1::40ff").dns("2001:db8:1::53"))
            .pool(Pool::new("spare", "2001:db8:1::5000/120"))
            .secret(Secret::ike_psk("lab-secret"))
            .secret(Secret::new("xauth-mn", "pw").id("mnuser"));
        assert_eq!(
            String::from(conf),
            r#"connections {
  ha {
    version = 1
    proposals = aes128-sha256-ecp256
    local_addrs = 2001:db8:ff::1
    pools = home
    local {
      auth = psk
      id = ha.example.com
    }
    remote {
      auth = psk
      id = %any
    }
    remote-xauth {
      auth = xauth-radius
    }
    children {
      tun {
        local_ts = ::/0
        esp_proposals = aes128gcm16
      }
    }
  }
}
pools {
  home {
    addrs = 2001:db8:1::4000-2001:db8:1::40ff
    dns = 2001:db8:1::53
  }
  spare {
    addrs = 2001:db8:1::5000/120
  }
}
secrets {
  ike-psk {
    secret = "lab-secret"
  }
  xauth-mn {
    secret = "pw"
    id = mnuser
  }
}
"#
        );
    }

    #[test]
    fn two_children_and_an_initiator_without_pools_or_secrets() {
        let conf = Swanctl::new().connection(
            Connection::ikev1("c")
                .proposals("aes256-sha384-ecp384")
                .local_addrs("2001:db8:ff::2")
                .remote_addrs("2001:db8:ff::1")
                .vips("::")
                .local(Auth::pubkey().id("mn1@example.com").certs("mn.pem"))
                .remote(Auth::pubkey().id("ha.example.com").cacerts("ca.pem"))
                .child(
                    Child::new("home")
                        .remote_ts("2001:db8:1::/64")
                        .esp_proposals("aes128gcm16"),
                )
                .child(
                    Child::new("mh")
                        .mode("transport")
                        .local_ts("2001:db8:ff::2[135]")
                        .remote_ts("2001:db8:ff::1[135]")
                        .esp_proposals("aes128gcm16"),
                ),
        );
        assert_eq!(
            conf.to_string(),
            "connections {
  c {
    version = 1
    proposals = aes256-sha384-ecp384
    local_addrs = 2001:db8:ff::2
    remote_addrs = 2001:db8:ff::1
    vips = ::
    local {
      auth = pubkey
      id = mn1@example.com
      certs = mn.pem
    }
    remote {
      auth = pubkey
      id = ha.example.com
      cacerts = ca.pem
    }
    children {
      home {
        remote_ts = 2001:db8:1::/64
        esp_proposals = aes128gcm16
      }
      mh {
        mode = transport
        local_ts = 2001:db8:ff::2[135]
        remote_ts = 2001:db8:ff::1[135]
        esp_proposals = aes128gcm16
      }
    }
  }
}
"
        );
    }

    #[test]
    fn later_settings_replace_earlier_ones_and_remote_comes_first() {
        let child = Child::new("home")
            .local_ts("::/0")
            .esp_proposals("aes128gcm16")
            .local_ts("2001:db8:1::/64");
        let conf = Swanctl::new().connection(
            Connection::ikev1("c")
                .proposals("a")
                .proposals("b")
                .remote_round("xauth", Auth::new("xauth"))
                .remote_round("xauth", Auth::new("xauth-radius"))
                .remote(Auth::psk())
                .remote(Auth::pubkey())
                .local(Auth::new("xauth").xauth_id("mnuser"))
                .child(child),
        );
        assert_eq!(
            conf.to_string(),
            "connections {
  c {
    version = 1
    proposals = b
    local {
      auth = xauth
      xauth_id = mnuser
    }
    remote {
      auth = pubkey
    }
    remote-xauth {
      auth = xauth-radius
    }
    children {
      home {
        local_ts = 2001:db8:1::/64
        esp_proposals = aes128gcm16
      }
    }
  }
}
"
        );
        assert_eq!(Swanctl::new().to_string(), "");
    }
}
