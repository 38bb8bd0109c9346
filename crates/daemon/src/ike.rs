//! The `[ike]` section both daemons share, and its conversion into the pieces of an
//! [`ikev1::Config`].
//!
//! ```toml
//! [ike]
//! identity = "mn1@example.com"            # what we send in phase 1 (strongSwan's syntax)
//! psk = "secret"                          # or psk_file, or certificate + key (+ ca)
//! proposals = ["aes128-sha256-ecp256"]    # phase 1, most preferred first
//! esp_proposals = ["aes128gcm16"]         # phase 2
//! ```
//!
//! `auth` names the phase-1 method (draft-devarapalli-mip6-ikev1-bootstrap §4); without it,
//! `certificate` + `key` mean `"rsa"` and their absence `"psk"`:
//!
//! | `auth` | the mobile node | the home agent |
//! |---|---|---|
//! | `"psk"` | pre-shared key | pre-shared key |
//! | `"rsa"` | RSA signature (`certificate`, `key`, `ca`) | RSA signature |
//! | `"psk+xauth"` | XAUTHInitPreShared (65001): the key, then XAUTH (`xauth_user`, `xauth_password`) | the key, then asks for XAUTH |
//! | `"hybrid"` | HybridInitRSA (64221): checks the home agent's certificate (`ca`), then XAUTH | signs (`certificate`, `key`), then asks for XAUTH |
//!
//! XAUTH (draft-ietf-ipsec-isakmp-xauth-06) comes right after phase 1. The home agent asks for
//! `xauth_type` (`"radius-chap"` by default, as the draft's §4 wants; `"generic"` for clients
//! that know no other, such as strongSwan) and checks the answer with RADIUS.
//!
//! Both roles share identity, certificate + key, proposals, lifetimes, DPD and NAT-T. How the
//! *peer* authenticates differs: the mobile node has one peer, its home agent, so `psk`,
//! `psk_file` and `ca` sit in its `[ike]`; the home agent has one key or CA per mobile node,
//! in its `[[peers]]` entries ([`peer_auth`] reads both). The IKE engine negotiates one
//! authentication method per configuration (`LocalAuth`), so pre-shared keys and
//! certificates are not mixed in one daemon.
//!
//! Secrets are read here, at load time: a `psk_file` that cannot be read is a configuration
//! error naming the file, and one that others can read is a warning.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ikev1::crypto::{Certificate, RsaPrivateKey};
use ikev1::{
    EspProposal, Identity, IkeProposal, LocalAuth, PeerAuth, PeerConfig, XauthCredentials,
    XauthType,
};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::ConfigError;
use crate::load::Validator;
use crate::secret::Secret;

/// Which daemon reads the section: the rules for `psk`, `psk_file`, `ca` and
/// `remote_identity` differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// `mip6-mn`: one peer, the home agent; its credentials are in `[ike]`.
    MobileNode,
    /// `mip6-ha`: its peers' credentials are in `[[peers]]`.
    HomeAgent,
}

/// The phase-1 authentication method (`[ike] auth`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub enum AuthMethod {
    /// Pre-shared keys.
    #[serde(rename = "psk")]
    Psk,
    /// RSA signatures with certificates.
    #[serde(rename = "rsa")]
    Rsa,
    /// HybridInitRSA: the home agent signs, the mobile node is authenticated by XAUTH.
    #[serde(rename = "hybrid")]
    Hybrid,
    /// XAUTHInitPreShared: the pre-shared key, then XAUTH.
    #[serde(rename = "psk+xauth")]
    PskXauth,
}

impl AuthMethod {
    /// The value as written in the file.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Psk => "psk",
            Self::Rsa => "rsa",
            Self::Hybrid => "hybrid",
            Self::PskXauth => "psk+xauth",
        }
    }

    /// Whether the home agent signs with its certificate in this method.
    pub fn home_agent_signs(self) -> bool {
        matches!(self, Self::Rsa | Self::Hybrid)
    }

    /// Whether XAUTH follows phase 1.
    pub fn xauth(self) -> bool {
        matches!(self, Self::Hybrid | Self::PskXauth)
    }
}

/// The XAUTH type the home agent asks for (`xauth_type`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub enum XauthTypeName {
    /// Generic (0): user name and password.
    #[serde(rename = "generic")]
    Generic,
    /// RADIUS-CHAP (1): a CHAP answer to the home agent's challenge.
    #[default]
    #[serde(rename = "radius-chap")]
    RadiusChap,
}

impl From<XauthTypeName> for XauthType {
    fn from(t: XauthTypeName) -> Self {
        match t {
            XauthTypeName::Generic => Self::Generic,
            XauthTypeName::RadiusChap => Self::RadiusChap,
        }
    }
}

/// One path or a list of them (`ca = "a.pem"` or `ca = ["a.pem", "b.pem"]`).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(untagged)]
pub enum Paths {
    /// One file.
    One(PathBuf),
    /// Several files.
    Many(Vec<PathBuf>),
}

impl Paths {
    /// The files.
    pub fn as_slice(&self) -> &[PathBuf] {
        match self {
            Self::One(p) => std::slice::from_ref(p),
            Self::Many(v) => v,
        }
    }

    /// The files, to make absolute.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut PathBuf> {
        match self {
            Self::One(p) => std::slice::from_mut(p).iter_mut(),
            Self::Many(v) => v.iter_mut(),
        }
    }
}

/// The `[ike]` section as written (defaults filled in).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct IkeSection {
    /// Our phase-1 identity (`mn1@example.com`, `ha.example.com`, `2001:db8::1`).
    pub identity: String,
    /// The phase-1 method; absent: `rsa` with `certificate` + `key`, else `psk`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthMethod>,
    /// (Mobile node) The identity the home agent must present; default `%any`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_identity: Option<String>,
    /// (Mobile node) The pre-shared key with the home agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub psk: Option<Secret>,
    /// (Mobile node) A file holding the pre-shared key (one trailing newline is ignored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub psk_file: Option<PathBuf>,
    /// Our certificate (PEM), for RSA signature authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<PathBuf>,
    /// The private key of `certificate` (PEM, PKCS#1 or PKCS#8); also spelled `private_key`.
    #[serde(
        default,
        alias = "private_key",
        skip_serializing_if = "Option::is_none"
    )]
    pub key: Option<PathBuf>,
    /// (Mobile node) The CA certificates (PEM files) the home agent's certificate must chain to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<Paths>,
    /// (Mobile node) The XAUTH user name (`auth = "hybrid"` or `"psk+xauth"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xauth_user: Option<String>,
    /// (Mobile node) The XAUTH password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xauth_password: Option<Secret>,
    /// (Mobile node) A file holding the XAUTH password (one trailing newline is ignored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xauth_password_file: Option<PathBuf>,
    /// (Home agent) The XAUTH type asked of peers that have none of their own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xauth_type: Option<XauthTypeName>,
    /// Phase-1 suites, most preferred first.
    #[serde(default = "default_proposals")]
    pub proposals: Vec<String>,
    /// Phase-2 (ESP) suites, most preferred first.
    #[serde(default = "default_esp_proposals")]
    pub esp_proposals: Vec<String>,
    /// Accept 3DES, MD5 and MODP groups below 2048 bits.
    #[serde(default)]
    pub allow_legacy: bool,
    /// Phase-1 lifetime in seconds.
    #[serde(default = "default_ike_lifetime")]
    pub ike_lifetime: u64,
    /// Phase-2 lifetime in seconds.
    #[serde(default = "default_esp_lifetime")]
    pub esp_lifetime: u64,
    /// Rekey this many seconds before a lifetime ends.
    #[serde(default = "default_rekey_margin")]
    pub rekey_margin: u64,
    /// Dead peer detection (RFC 3706): seconds of silence before R-U-THERE; absent or 0: off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpd_delay: Option<u64>,
    /// Offer and accept NAT traversal (RFC 3947).
    #[serde(default = "default_true")]
    pub nat_traversal: bool,
    /// Make the peer encapsulate ESP in UDP even without a NAT (strongSwan's `encap = yes`).
    #[serde(default)]
    pub force_encap: bool,
}

fn engine_defaults() -> ikev1::Config {
    ikev1::Config::new(Identity::Any, LocalAuth::Psk)
}
fn default_proposals() -> Vec<String> {
    engine_defaults()
        .ike_proposals
        .iter()
        .map(ToString::to_string)
        .collect()
}
fn default_esp_proposals() -> Vec<String> {
    engine_defaults()
        .esp_proposals
        .iter()
        .map(ToString::to_string)
        .collect()
}
fn default_ike_lifetime() -> u64 {
    engine_defaults().ike_lifetime.as_secs()
}
fn default_esp_lifetime() -> u64 {
    engine_defaults().child_lifetime.as_secs()
}
fn default_rekey_margin() -> u64 {
    engine_defaults().rekey_margin.as_secs()
}
fn default_true() -> bool {
    true
}

/// The `[ike]` section, validated: what the engine needs.
#[derive(Clone, Debug)]
pub struct IkeSettings {
    /// The phase-1 method.
    pub method: AuthMethod,
    /// (Home agent) The XAUTH type asked of peers by default.
    pub xauth_type: XauthTypeName,
    /// Our identity.
    pub local_id: Identity,
    /// How we authenticate.
    pub local_auth: LocalAuth,
    /// (Mobile node) The home agent's identity (`Identity::Any` unless configured).
    pub remote_id: Identity,
    /// (Mobile node) How the home agent authenticates; `None` for the home agent.
    pub peer_auth: Option<PeerAuth>,
    /// Phase-1 suites.
    pub ike_proposals: Vec<IkeProposal>,
    /// Phase-2 suites.
    pub esp_proposals: Vec<EspProposal>,
    /// Phase-1 lifetime.
    pub ike_lifetime: Duration,
    /// Phase-2 lifetime.
    pub esp_lifetime: Duration,
    /// Rekey margin.
    pub rekey_margin: Duration,
    /// DPD delay, if on.
    pub dpd_delay: Option<Duration>,
    /// NAT traversal.
    pub nat_traversal: bool,
    /// Forced UDP encapsulation.
    pub force_encap: bool,
}

impl IkeSettings {
    /// The engine configuration with these settings and `peers`. Selectors, retransmission
    /// and half-open limits keep the engine's defaults.
    pub fn engine_config(&self, peers: Vec<PeerConfig>) -> ikev1::Config {
        let mut c = ikev1::Config::new(self.local_id.clone(), self.local_auth.clone());
        c.peers = peers;
        c.ike_proposals.clone_from(&self.ike_proposals);
        c.esp_proposals.clone_from(&self.esp_proposals);
        c.ike_lifetime = self.ike_lifetime;
        c.child_lifetime = self.esp_lifetime;
        c.rekey_margin = self.rekey_margin;
        c.dpd_delay = self.dpd_delay;
        c.nat_traversal = self.nat_traversal;
        c.force_encap = self.force_encap;
        c
    }
}

impl IkeSection {
    /// Makes the file paths absolute (relative to the configuration file).
    pub fn resolve_paths(&mut self, v: &Validator) {
        for p in [
            &mut self.psk_file,
            &mut self.certificate,
            &mut self.key,
            &mut self.xauth_password_file,
        ]
        .into_iter()
        .flatten()
        .chain(self.ca.iter_mut().flat_map(Paths::iter_mut))
        {
            v.resolve(p);
        }
    }

    /// Validates the section and loads its secrets, certificates and keys.
    pub fn validate(&self, v: &mut Validator, role: Role) -> Result<IkeSettings, ConfigError> {
        let local_id = local_identity(v, "ike.identity", &self.identity)?;
        let ike_proposals = proposals(v, "ike.proposals", &self.proposals, |s| {
            IkeProposal::parse(s, self.allow_legacy)
        })?;
        let esp_proposals = proposals(v, "ike.esp_proposals", &self.esp_proposals, |s| {
            EspProposal::parse(s, self.allow_legacy)
        })?;
        if self.ike_lifetime == 0 {
            return Err(v.error("ike.ike_lifetime", "must be more than 0 seconds"));
        }
        if self.esp_lifetime == 0 {
            return Err(v.error("ike.esp_lifetime", "must be more than 0 seconds"));
        }
        if self.rekey_margin >= self.ike_lifetime.min(self.esp_lifetime) {
            return Err(v.error(
                "ike.rekey_margin",
                format!(
                    "{} seconds is not less than the shortest lifetime ({} seconds)",
                    self.rekey_margin,
                    self.ike_lifetime.min(self.esp_lifetime)
                ),
            ));
        }
        let method = self.method(v, role)?;
        let local_auth = self.local_auth(v, &local_id, method, role)?;
        let (remote_id, peer_auth) = match role {
            Role::MobileNode => {
                if self.xauth_type.is_some() {
                    return Err(v.error(
                        "ike.xauth_type",
                        "the home agent chooses the XAUTH type; the mobile node answers what it asks",
                    ));
                }
                self.home_agent_auth(v, &local_auth)?
            }
            Role::HomeAgent => {
                for (key, set) in [
                    ("psk", self.psk.is_some()),
                    ("psk_file", self.psk_file.is_some()),
                    ("ca", self.ca.is_some()),
                    ("remote_identity", self.remote_identity.is_some()),
                ] {
                    if set {
                        return Err(v.error(
                            format!("ike.{key}"),
                            "the home agent has this per mobile node: put it in its [[peers]] entry",
                        ));
                    }
                }
                for (key, set) in [
                    ("xauth_user", self.xauth_user.is_some()),
                    ("xauth_password", self.xauth_password.is_some()),
                    ("xauth_password_file", self.xauth_password_file.is_some()),
                ] {
                    if set {
                        return Err(v.error(
                            format!("ike.{key}"),
                            "XAUTH credentials belong to the mobile node; the home agent checks them with [radius]",
                        ));
                    }
                }
                (Identity::Any, None)
            }
        };
        Ok(IkeSettings {
            method,
            xauth_type: self.xauth_type.unwrap_or_default(),
            local_id,
            local_auth,
            remote_id,
            peer_auth,
            ike_proposals,
            esp_proposals,
            ike_lifetime: Duration::from_secs(self.ike_lifetime),
            esp_lifetime: Duration::from_secs(self.esp_lifetime),
            rekey_margin: Duration::from_secs(self.rekey_margin),
            dpd_delay: self.dpd_delay.filter(|d| *d > 0).map(Duration::from_secs),
            nat_traversal: self.nat_traversal,
            force_encap: self.force_encap,
        })
    }

    /// `auth`, or what `certificate` + `key` imply.
    fn method(&self, v: &Validator, role: Role) -> Result<AuthMethod, ConfigError> {
        let has_cert = self.certificate.is_some() || self.key.is_some();
        let Some(method) = self.auth else {
            return Ok(if has_cert {
                AuthMethod::Rsa
            } else {
                AuthMethod::Psk
            });
        };
        // The mobile node signs only with "rsa"; the home agent with "rsa" and "hybrid".
        let signs = match role {
            Role::MobileNode => method == AuthMethod::Rsa,
            Role::HomeAgent => method.home_agent_signs(),
        };
        if !signs && has_cert {
            let key = if self.certificate.is_some() {
                "ike.certificate"
            } else {
                "ike.key"
            };
            let why = match (role, method) {
                (Role::MobileNode, AuthMethod::Hybrid) => {
                    "not used with auth = \"hybrid\": the mobile node is authenticated by XAUTH (give ca, the home agent's CA)"
                }
                _ => "not used with a pre-shared key (auth = \"psk\" or \"psk+xauth\")",
            };
            return Err(v.error(key, why));
        }
        if signs && !has_cert {
            return Err(v.error(
                "ike.certificate",
                format!(
                    "required with auth = \"{}\" (with key, our private key)",
                    method.as_str()
                ),
            ));
        }
        Ok(method)
    }

    /// Our side of phase 1 (and XAUTH): certificate + key when we sign, XAUTH credentials when
    /// we are the client of a hybrid or PSK+XAUTH exchange, else pre-shared keys.
    fn local_auth(
        &self,
        v: &mut Validator,
        id: &Identity,
        method: AuthMethod,
        role: Role,
    ) -> Result<LocalAuth, ConfigError> {
        let xauth_client = role == Role::MobileNode && method.xauth();
        if role == Role::MobileNode && !xauth_client {
            for (key, set) in [
                ("xauth_user", self.xauth_user.is_some()),
                ("xauth_password", self.xauth_password.is_some()),
                ("xauth_password_file", self.xauth_password_file.is_some()),
            ] {
                if set {
                    return Err(v.error(
                        format!("ike.{key}"),
                        "only used with auth = \"hybrid\" or \"psk+xauth\"",
                    ));
                }
            }
        }
        if xauth_client {
            let creds = self.xauth_credentials(v)?;
            return Ok(match method {
                AuthMethod::Hybrid => LocalAuth::Hybrid(creds),
                _ => LocalAuth::XauthPsk(creds),
            });
        }
        let (cert_path, key_path) = match (&self.certificate, &self.key) {
            (None, None) => return Ok(LocalAuth::Psk),
            (Some(c), Some(k)) => (c, k),
            (Some(_), None) => {
                return Err(v.error("ike.key", "required with ike.certificate (its private key)"));
            }
            (None, Some(_)) => {
                return Err(v.error("ike.certificate", "required with ike.key"));
            }
        };
        let pem = read_text(v, "ike.certificate", cert_path)?;
        let cert = Certificate::from_pem(&pem)
            .map_err(|e| v.error("ike.certificate", format!("{}: {e}", cert_path.display())))?
            .into_iter()
            .next()
            .ok_or_else(|| v.error("ike.certificate", "no certificate in the file"))?;
        warn_validity(v, "ike.certificate", &cert);
        warn_readable(v, "ike.key", key_path);
        let pem = Zeroizing::new(read_text(v, "ike.key", key_path)?);
        let key = RsaPrivateKey::from_pem(&pem)
            .map_err(|e| v.error("ike.key", format!("{}: {e}", key_path.display())))?;
        let cert_key = cert
            .public_key()
            .map_err(|e| v.error("ike.certificate", format!("{}: {e}", cert_path.display())))?;
        if key.public() != cert_key {
            return Err(v.error(
                "ike.key",
                format!(
                    "{} is not the private key of {}",
                    key_path.display(),
                    cert_path.display()
                ),
            ));
        }
        let in_cert = match id {
            Identity::Fqdn(n) | Identity::UserFqdn(n) => cert
                .subject_alt_names()
                .iter()
                .any(|s| s.eq_ignore_ascii_case(n)),
            Identity::Addr(a) => {
                cert.subject_alt_ips().contains(a)
                    || cert.subject_alt_names().iter().any(|s| s.parse() == Ok(*a))
            }
            _ => true,
        };
        if !in_cert {
            return Err(v.error(
                "ike.identity",
                format!(
                    "{id} is not a subjectAltName of {} (peers would refuse it, RFC 4945 §3)",
                    cert_path.display()
                ),
            ));
        }
        Ok(LocalAuth::RsaSig {
            key: Arc::new(key),
            cert: Arc::new(cert),
        })
    }

    /// (Mobile node) `xauth_user` with `xauth_password` or `xauth_password_file`.
    fn xauth_credentials(&self, v: &mut Validator) -> Result<XauthCredentials, ConfigError> {
        let user = match &self.xauth_user {
            None => {
                return Err(v.error(
                    "ike.xauth_user",
                    "required with auth = \"hybrid\" or \"psk+xauth\" (the XAUTH user name)",
                ));
            }
            Some(u) if u.is_empty() || u.len() > 253 => {
                return Err(v.error("ike.xauth_user", "must be 1 to 253 bytes long"));
            }
            Some(u) => u.clone(),
        };
        let password = match (&self.xauth_password, &self.xauth_password_file) {
            (Some(p), None) => Zeroizing::new(p.expose().as_bytes().to_vec()),
            (None, Some(path)) => read_secret_file(v, "ike.xauth_password_file", path)?,
            (None, None) => {
                return Err(v.error(
                    "ike.xauth_password",
                    "required with ike.xauth_user (or xauth_password_file)",
                ));
            }
            (Some(_), Some(_)) => {
                return Err(v.error(
                    "ike.xauth_password_file",
                    "conflicts with ike.xauth_password: give one of them",
                ));
            }
        };
        if password.is_empty() || password.len() > 253 {
            return Err(v.error("ike.xauth_password", "must be 1 to 253 bytes long"));
        }
        Ok(XauthCredentials { user, password })
    }

    /// The mobile node's view of its home agent: `psk` / `psk_file`, or `ca` with certificates.
    fn home_agent_auth(
        &self,
        v: &mut Validator,
        local: &LocalAuth,
    ) -> Result<(Identity, Option<PeerAuth>), ConfigError> {
        let remote_id = match &self.remote_identity {
            None => Identity::Any,
            Some(s) if s.trim().is_empty() => {
                return Err(v.error("ike.remote_identity", "must not be empty (or leave it out)"));
            }
            Some(s) => Identity::parse(s),
        };
        let auth = match local {
            // PSK + XAUTH: the home agent still proves the pre-shared key.
            LocalAuth::Psk | LocalAuth::XauthPsk(_) => {
                if self.ca.is_some() {
                    return Err(v.error(
                        "ike.ca",
                        "only used with certificate + key (give those, or remove ca)",
                    ));
                }
                if self.psk.is_none() && self.psk_file.is_none() {
                    return Err(v.error(
                        "ike.psk",
                        "no credentials: give psk, psk_file, or certificate + key with ca",
                    ));
                }
                peer_auth(v, "ike", self.psk.as_ref(), self.psk_file.as_deref(), None)?
            }
            // Hybrid: the home agent signs; its certificate must chain to `ca`.
            LocalAuth::RsaSig { .. } | LocalAuth::Hybrid(_) => {
                for (key, set) in [
                    ("psk", self.psk.is_some()),
                    ("psk_file", self.psk_file.is_some()),
                ] {
                    if set {
                        return Err(v.error(
                            format!("ike.{key}"),
                            "conflicts with ike.certificate: give a pre-shared key or a certificate, not both",
                        ));
                    }
                }
                if self.ca.is_none() {
                    return Err(v.error(
                        "ike.ca",
                        "required with ike.certificate (the CA that issued the home agent's certificate)",
                    ));
                }
                peer_auth(v, "ike", None, None, self.ca.as_ref().map(Paths::as_slice))?
            }
        };
        Ok((remote_id, Some(auth)))
    }
}

/// Reads a peer's credentials: exactly one of `psk`, `psk_file` and `ca`, with keys named
/// under `prefix` (`ike` or `peers[3]`).
pub fn peer_auth(
    v: &mut Validator,
    prefix: &str,
    psk: Option<&Secret>,
    psk_file: Option<&Path>,
    ca: Option<&[PathBuf]>,
) -> Result<PeerAuth, ConfigError> {
    let key = |k: &str| format!("{prefix}.{k}");
    match (psk, psk_file, ca) {
        (Some(s), None, None) => {
            if s.expose().is_empty() {
                return Err(v.error(key("psk"), "must not be empty"));
            }
            Ok(PeerAuth::Psk(Zeroizing::new(
                s.expose().as_bytes().to_vec(),
            )))
        }
        (None, Some(path), None) => Ok(PeerAuth::Psk(read_secret_file(v, &key("psk_file"), path)?)),
        (None, None, Some(paths)) => Ok(PeerAuth::RsaSig {
            cas: read_cas(v, &key("ca"), paths)?,
        }),
        (None, None, None) => Err(v.error(
            key("psk"),
            "no credentials: give one of psk, psk_file or ca",
        )),
        (Some(_), Some(_), _) => Err(v.error(
            key("psk_file"),
            format!(
                "conflicts with {}: give one of psk, psk_file or ca",
                key("psk")
            ),
        )),
        (_, _, Some(_)) => Err(v.error(
            key("ca"),
            "conflicts with the pre-shared key: give one of psk, psk_file or ca",
        )),
    }
}

/// Reads a secret from a file: one trailing newline is ignored, an empty file is an error, a
/// file every user can read a warning.
pub fn read_secret_file(
    v: &mut Validator,
    key: &str,
    path: &Path,
) -> Result<Zeroizing<Vec<u8>>, ConfigError> {
    warn_readable(v, key, path);
    let mut bytes = Zeroizing::new(
        std::fs::read(path)
            .map_err(|e| v.error(key, format!("cannot read {}: {e}", path.display())))?,
    );
    if bytes.ends_with(b"\n") {
        bytes.pop();
        if bytes.ends_with(b"\r") {
            bytes.pop();
        }
    }
    if bytes.is_empty() {
        return Err(v.error(key, format!("{} is empty", path.display())));
    }
    Ok(bytes)
}

/// Reads CA certificates (PEM, one or more per file) from each file.
pub fn read_cas(
    v: &mut Validator,
    key: &str,
    paths: &[PathBuf],
) -> Result<Vec<Arc<Certificate>>, ConfigError> {
    if paths.is_empty() {
        return Err(v.error(key, "at least one CA file is needed"));
    }
    let mut all = Vec::new();
    for path in paths {
        let pem = read_text(v, key, path)?;
        let cas = Certificate::from_pem(&pem)
            .map_err(|e| v.error(key, format!("{}: {e}", path.display())))?;
        if cas.is_empty() {
            return Err(v.error(
                key,
                format!("{}: no certificate in the file", path.display()),
            ));
        }
        for ca in &cas {
            warn_validity(v, key, ca);
        }
        all.extend(cas.into_iter().map(Arc::new));
    }
    Ok(all)
}

/// Parses our own identity: it is sent, so `%any` is no identity.
pub fn local_identity(v: &Validator, key: &str, s: &str) -> Result<Identity, ConfigError> {
    match Identity::parse(s) {
        _ if s.trim().is_empty() => Err(v.error(key, "must not be empty")),
        Identity::Any => Err(v.error(
            key,
            "%any matches any peer; give the identity this daemon sends (e.g. mn1@example.com)",
        )),
        id => Ok(id),
    }
}

fn proposals<T>(
    v: &Validator,
    key: &str,
    list: &[String],
    parse: impl Fn(&str) -> Result<T, ikev1::ProposalError>,
) -> Result<Vec<T>, ConfigError> {
    if list.is_empty() {
        return Err(v.error(key, "at least one proposal is needed"));
    }
    list.iter()
        .enumerate()
        .map(|(i, s)| parse(s).map_err(|e| v.error(format!("{key}[{i}]"), e.reason)))
        .collect()
}

fn read_text(v: &Validator, key: &str, path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path)
        .map_err(|e| v.error(key, format!("cannot read {}: {e}", path.display())))
}

/// A secret that every user of the machine can read deserves a warning.
fn warn_readable(v: &mut Validator, key: &str, path: &Path) {
    if let Ok(m) = std::fs::metadata(path)
        && m.permissions().mode() & 0o004 != 0
    {
        v.warn(
            key,
            format!(
                "{} is readable by every user (chmod 600 it)",
                path.display()
            ),
        );
    }
}

fn warn_validity(v: &mut Validator, key: &str, cert: &Certificate) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let (not_before, not_after) = cert.validity();
    if now > not_after {
        v.warn(
            key,
            format!("certificate {} has expired", cert.subject_text()),
        );
    } else if now < not_before {
        v.warn(
            key,
            format!("certificate {} is not valid yet", cert.subject_text()),
        );
    }
}
