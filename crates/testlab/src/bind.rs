//! BIND 9.18 (Debian's `bind9`) on the home link, as the authoritative server the home agent
//! (RFC 5026 §6, RFC 2136 UPDATE signed with RFC 8945 TSIG) and Kea's `kea-dhcp-ddns` update.

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::net::{SocketAddr, SocketAddrV6};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Output};
use std::time::Duration;

use crate::kea::listening_udp6;
use crate::lab::{HOME_HOST, Lab, Node};
use crate::proc::{Proc, Spawn};
use crate::util;

/// The name server of Debian's `bind9` package.
pub const NAMED_BIN: &str = "/usr/sbin/named";

/// `dig` and `nsupdate` (Debian's `bind9-dnsutils`).
pub const DIG_BIN: &str = "/usr/bin/dig";
/// See [`DIG_BIN`].
pub const NSUPDATE_BIN: &str = "/usr/bin/nsupdate";

/// The DNS port BIND listens on (UDP and TCP).
pub const DNS_PORT: u16 = 53;

/// TSIG algorithms BIND accepts in a `key` statement.
const ALGORITHMS: &[&str] = &[
    "hmac-md5",
    "hmac-sha1",
    "hmac-sha224",
    "hmac-sha256",
    "hmac-sha384",
    "hmac-sha512",
];

#[derive(Clone)]
struct Key {
    name: String,
    algorithm: String,
    secret: String,
}

#[derive(Debug, Clone)]
struct Grant {
    key: String,
    rule: String,
    types: String,
}

#[derive(Debug, Clone)]
struct Zone {
    name: String,
    records: Vec<String>,
    grants: Vec<Grant>,
}

/// How to start [`Bind`]: a primary zone (SOA and NS generated, NS `ns.<zone>` with AAAA
/// `2001:db8:1::2`), optional extra zones, TSIG keys and `update-policy` grants. Without grants
/// a zone takes no updates. `recursion no`; no rndc control channel.
///
/// ```
/// use testlab::BindOptions;
/// let opts = BindOptions::new("example.")
///     .key("ha-key", "hmac-sha256", "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI=")
///     .grant("ha-key", "zonesub", "AAAA")
///     .record("mn1 300 IN AAAA 2001:db8:1::99")
///     .zone(
///         "1.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.",
///         &[],
///         &[("ha-key", "zonesub", "PTR")],
///     );
/// # let _ = opts;
/// ```
#[derive(Clone)]
pub struct BindOptions {
    name: String,
    zones: Vec<Zone>,
    keys: Vec<Key>,
    debug: u8,
    timeout: Duration,
}

impl std::fmt::Debug for BindOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BindOptions")
            .field("name", &self.name)
            .field("zones", &self.zones)
            .field(
                "keys",
                &self
                    .keys
                    .iter()
                    .map(|k| (&k.name, &k.algorithm))
                    .collect::<Vec<_>>(),
            )
            .field("debug", &self.debug)
            .finish_non_exhaustive()
    }
}

impl BindOptions {
    /// The defaults (instance name `bind`) with this primary zone, e.g. `"example."` (a missing
    /// trailing dot is added).
    pub fn new(zone: &str) -> Self {
        Self {
            name: "bind".to_owned(),
            zones: vec![Zone {
                name: absolute(zone),
                records: Vec::new(),
                grants: Vec::new(),
            }],
            keys: Vec::new(),
            debug: 0,
            timeout: Duration::from_secs(15),
        }
    }

    /// Instance name: the directory is `<lab dir>/<name>/`, the log `<lab dir>/<name>.log`.
    #[must_use]
    pub fn name(mut self, name: &str) -> Self {
        self.name = name.to_owned();
        self
    }

    /// Adds a TSIG key (`key "name" { algorithm …; secret "…"; };`). `algorithm` is BIND's
    /// name (`hmac-sha256`, `hmac-sha512`, `hmac-sha1`, …), `secret_base64` the secret as
    /// `tsig-keygen` prints it. [`Bind::key_file`] gives a copy in `tsig-keygen` format.
    #[must_use]
    pub fn key(mut self, name: &str, algorithm: &str, secret_base64: &str) -> Self {
        self.keys.push(Key {
            name: name.to_owned(),
            algorithm: algorithm.to_ascii_lowercase(),
            secret: secret_base64.to_owned(),
        });
        self
    }

    /// Adds `grant <key> <rule> <types>;` to the primary zone's `update-policy`, e.g.
    /// `.grant("ha-key", "zonesub", "AAAA")` or `.grant("ddns", "zonesub", "AAAA DHCID")`.
    #[must_use]
    pub fn grant(mut self, key: &str, rule: &str, types: &str) -> Self {
        self.zones[0].grants.push(Grant {
            key: key.to_owned(),
            rule: rule.to_owned(),
            types: types.to_owned(),
        });
        self
    }

    /// Adds a zone-file line to the primary zone, e.g. `"mn1 300 IN AAAA 2001:db8:1::99"`
    /// (relative names are relative to the zone; `$TTL` is 300).
    #[must_use]
    pub fn record(mut self, line: &str) -> Self {
        self.zones[0].records.push(line.to_owned());
        self
    }

    /// Adds another primary zone (SOA and NS generated, NS pointing to the primary zone's
    /// `ns`) with zone-file lines and `(key, rule, types)` grants: the reverse zone
    /// `1.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.` for Kea's DDNS, or a zone holding the SRV records
    /// `_mip6._ipv6.<domain>` of home-agent discovery (RFC 5026 §5).
    #[must_use]
    pub fn zone(mut self, name: &str, records: &[&str], grants: &[(&str, &str, &str)]) -> Self {
        self.zones.push(Zone {
            name: absolute(name),
            records: records.iter().map(|&r| r.to_owned()).collect(),
            grants: grants
                .iter()
                .map(|&(key, rule, types)| Grant {
                    key: key.to_owned(),
                    rule: rule.to_owned(),
                    types: types.to_owned(),
                })
                .collect(),
        });
        self
    }

    /// Debug level of `named -d` (0, the default, logs start-up and updates only).
    #[must_use]
    pub fn debug(mut self, level: u8) -> Self {
        self.debug = level;
        self
    }

    /// Time limit for start-up (default 15 s).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// A key in the format `tsig-keygen -a ALGORITHM NAME` prints, which `named.conf`,
    /// `nsupdate -k` and the home agent's `key_file` all read (statements indented by a tab):
    ///
    /// ```text
    /// key "NAME" {
    ///     algorithm hmac-sha256;
    ///     secret "BASE64";
    /// };
    /// ```
    pub fn tsig_keygen_format(name: &str, algorithm: &str, secret_base64: &str) -> String {
        format!("key \"{name}\" {{\n\talgorithm {algorithm};\n\tsecret \"{secret_base64}\";\n}};\n")
    }
}

/// A running BIND (`named -g`) in the lab's [`Node::Dhcp`] namespace, authoritative for the
/// zones of its [`BindOptions`], listening on UDP and TCP 53 of `2001:db8:1::2` only. Its
/// instance directory holds `named.conf`, the zone files (`zone-<n>.db`, with journals
/// `zone-<n>.db.jnl` once updated), one `<key>.key` file per TSIG key and the pid file;
/// its log (stderr: start-up, `updating zone` / `update … denied` / `request has invalid
/// signature` lines) is `<lab dir>/<name>.log`. Stopped (SIGTERM, by PID) on drop.
///
/// ```no_run
/// # fn main() -> std::io::Result<()> {
/// use testlab::{Bind, BindOptions, Lab};
/// let lab = Lab::new("doc-bind")?;
/// let secret = "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI=";
/// let bind = Bind::start(
///     &lab,
///     BindOptions::new("example.")
///         .key("ha-key", "hmac-sha256", secret)
///         .grant("ha-key", "zonesub", "AAAA"),
/// )?;
/// let out = bind.nsupdate(&lab, Some("ha-key"), "update add mn1.example. 60 AAAA 2001:db8:1::99\nsend\n")?;
/// assert!(out.status.success());
/// assert_eq!(bind.query(&lab, "mn1.example.", "AAAA")?, ["2001:db8:1::99"]);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Bind {
    dir: PathBuf,
    zones: Vec<String>,
    keys: Vec<String>,
    proc: Proc,
}

impl Bind {
    /// Writes the configuration, starts `named -g -c named.conf` in the dhcp namespace and
    /// waits until it listens on `[2001:db8:1::2]:53` and answers `dig SOA` for every zone.
    /// Fails with a clear message if BIND is not installed or a string would break the
    /// configuration, or quoting its log if it does not come up.
    pub fn start(lab: &Lab, options: BindOptions) -> io::Result<Self> {
        util::check_name("bind instance", &options.name)?;
        util::require_executable(Path::new(NAMED_BIN), "bind9")?;
        util::require_executable(Path::new(DIG_BIN), "bind9-dnsutils")?;
        validate(&options)?;

        let dir = lab.dir().join(&options.name);
        fs::create_dir_all(&dir)?;
        for (i, z) in options.zones.iter().enumerate() {
            fs::write(dir.join(zone_file(i)), zone_text(z, &options.zones[0].name))?;
        }
        for k in &options.keys {
            fs::write(
                dir.join(format!("{}.key", k.name)),
                BindOptions::tsig_keygen_format(&k.name, &k.algorithm, &k.secret),
            )?;
        }
        let conf = dir.join("named.conf");
        fs::write(&conf, named_conf(&options, &dir))?;

        let mut spawn = Spawn::new(NAMED_BIN)
            .log_name(options.name.clone())
            // -g: foreground, log to stderr; -n 1: one worker thread (the lab is small);
            // -u root: stay root, the lab directory is root's.
            .args(["-g", "-n", "1", "-u", "root", "-c"])
            .arg(&conf);
        if options.debug > 0 {
            spawn = spawn.arg("-d").arg(options.debug.to_string());
        }
        let mut proc = lab.spawn(Node::Dhcp, spawn)?;
        let pid = proc.pid();
        let zones: Vec<String> = options.zones.iter().map(|z| z.name.clone()).collect();
        let ready = util::poll(options.timeout, Duration::from_millis(20), || {
            if let Ok(Some(st)) = proc.try_status() {
                return Some(Err(proc.error(&format!("exited ({st}) during start-up"))));
            }
            if !listening_udp6(pid, HOME_HOST, DNS_PORT) || !proc.log().contains("running") {
                return None;
            }
            zones.iter().all(|z| soa_answers(lab, z)).then_some(Ok(()))
        });
        ready.unwrap_or_else(|| {
            Err(proc.error(&format!(
                "does not answer SOA queries on [{HOME_HOST}]:{DNS_PORT} after {:?}",
                options.timeout
            )))
        })?;
        Ok(Self {
            dir,
            zones,
            keys: options.keys.iter().map(|k| k.name.clone()).collect(),
            proc,
        })
    }

    /// `[2001:db8:1::2]:53`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::V6(SocketAddrV6::new(HOME_HOST, DNS_PORT, 0, 0))
    }

    /// named's PID.
    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }

    /// The instance directory: `named.conf`, zone files and journals, key files, pid file.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The zones served, absolute, primary first.
    pub fn zones(&self) -> &[String] {
        &self.zones
    }

    /// Path of the key file (`tsig-keygen` format) of key `name`, for `nsupdate -k`, Kea's
    /// D2 or the home agent's `key_file`. The file exists only for keys given to
    /// [`BindOptions::key`].
    pub fn key_file(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.key"))
    }

    /// named's log (stderr with `-g`).
    pub fn log(&self) -> String {
        self.proc.log()
    }

    /// `dig +short NAME RTYPE` against this server from inside the dhcp namespace: the answer
    /// lines (empty for NXDOMAIN or no data). Fails if dig fails (no answer, timeout).
    pub fn query(&self, lab: &Lab, name: &str, rtype: &str) -> io::Result<Vec<String>> {
        let server = format!("@{HOME_HOST}");
        let out = lab.exec_ok(
            Node::Dhcp,
            DIG_BIN,
            [
                server.as_str(),
                "+short",
                "+norecurse",
                "+time=2",
                "+tries=2",
                name,
                rtype,
            ],
        )?;
        Ok(out
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with(";;"))
            .map(str::to_owned)
            .collect())
    }

    /// Runs `nsupdate` (with `-k <key file>` when `key` is given) inside the dhcp namespace on
    /// a script of `commands` (`server` is prepended; end it with `send`). A non-zero exit is
    /// not an error here: `nsupdate` fails on a refused update, and its stderr says why
    /// (`update failed: NOTAUTH(BADSIG)`).
    pub fn nsupdate(&self, lab: &Lab, key: Option<&str>, commands: &str) -> io::Result<Output> {
        util::require_executable(Path::new(NSUPDATE_BIN), "bind9-dnsutils")?;
        let n = fs::read_dir(&self.dir)?.count();
        let script = self.dir.join(format!("nsupdate-{n}.txt"));
        fs::write(
            &script,
            format!("server {HOME_HOST} {DNS_PORT}\n{commands}"),
        )?;
        let mut args: Vec<std::ffi::OsString> = Vec::new();
        if let Some(k) = key {
            args.push("-k".into());
            args.push(self.key_file(k).into());
        }
        args.push(script.into());
        lab.exec(Node::Dhcp, NSUPDATE_BIN, args)
    }

    /// Whether key `name` was configured.
    pub fn has_key(&self, name: &str) -> bool {
        self.keys.iter().any(|k| k == name)
    }

    /// Stops named (SIGTERM by PID, SIGKILL after 3 s) and returns its exit status.
    pub fn stop(&mut self) -> io::Result<ExitStatus> {
        self.proc.stop()
    }
}

fn soa_answers(lab: &Lab, zone: &str) -> bool {
    let server = format!("@{HOME_HOST}");
    lab.exec_timeout(
        Node::Dhcp,
        Duration::from_secs(5),
        DIG_BIN,
        [
            server.as_str(),
            "+short",
            "+norecurse",
            "+time=1",
            "+tries=1",
            zone,
            "SOA",
        ],
    )
    .is_ok_and(|o| o.status.success() && !String::from_utf8_lossy(&o.stdout).trim().is_empty())
}

fn absolute(name: &str) -> String {
    if name.ends_with('.') {
        name.to_owned()
    } else {
        format!("{name}.")
    }
}

fn zone_file(i: usize) -> String {
    format!("zone-{i}.db")
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

fn is_dns_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 254
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'*'))
}

/// Refuses what would break `named.conf` or a zone file.
fn validate(o: &BindOptions) -> io::Result<()> {
    for z in &o.zones {
        if !is_dns_name(&z.name) || z.name.starts_with('.') {
            return Err(invalid(format!("BIND zone {:?} is not a DNS name", z.name)));
        }
        for r in &z.records {
            if r.chars().any(|c| c.is_control()) || r.trim().is_empty() {
                return Err(invalid(format!(
                    "BIND zone {} record {r:?} must be one non-empty line",
                    z.name
                )));
            }
        }
        for g in &z.grants {
            if !o.keys.iter().any(|k| k.name == g.key) {
                return Err(invalid(format!(
                    "BIND zone {} grants to key {:?}, which is not configured",
                    z.name, g.key
                )));
            }
            let word = |s: &str| {
                !s.is_empty()
                    && s.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b' ' | b'.'))
            };
            if !word(&g.rule) || !word(&g.types) {
                return Err(invalid(format!(
                    "BIND grant {:?} {:?} must be words of [A-Za-z0-9.-]",
                    g.rule, g.types
                )));
            }
        }
    }
    for k in &o.keys {
        if !is_dns_name(&k.name) || k.name.contains('*') || k.name.starts_with('.') {
            return Err(invalid(format!(
                "TSIG key name {:?} is not a DNS name",
                k.name
            )));
        }
        util::check_name("TSIG key file", &k.name)?;
        if !ALGORITHMS.contains(&k.algorithm.as_str()) {
            return Err(invalid(format!(
                "TSIG key {}: algorithm {:?} is not one of {ALGORITHMS:?}",
                k.name, k.algorithm
            )));
        }
        let b64 = !k.secret.is_empty()
            && k.secret
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='));
        if !b64 {
            return Err(invalid(format!(
                "TSIG key {}: the secret must be base64",
                k.name
            )));
        }
    }
    Ok(())
}

fn zone_text(z: &Zone, primary: &str) -> String {
    let mut s = format!(
        "; Written by testlab.\n$ORIGIN {name}\n$TTL 300\n\
         @\tIN SOA ns.{primary} hostmaster.{primary} 1 3600 600 86400 60\n\
         @\tIN NS ns.{primary}\n",
        name = z.name
    );
    if z.name == primary {
        let _ = writeln!(s, "ns\tIN AAAA {HOME_HOST}");
    }
    for r in &z.records {
        s.push_str(r);
        s.push('\n');
    }
    s
}

fn named_conf(o: &BindOptions, dir: &Path) -> String {
    let d = dir.display();
    let mut s = format!(
        "// Written by testlab: an authoritative-only BIND for the lab.\n\
options {{\n\
\tdirectory \"{d}\";\n\
\tpid-file \"{d}/named.pid\";\n\
\tsession-keyfile \"{d}/session.key\";\n\
\tmanaged-keys-directory \"{d}\";\n\
\tdump-file \"{d}/named_dump.db\";\n\
\tstatistics-file \"{d}/named.stats\";\n\
\tlisten-on {{ none; }};\n\
\tlisten-on-v6 port {DNS_PORT} {{ {HOME_HOST}; }};\n\
\trecursion no;\n\
\tallow-query {{ any; }};\n\
\tallow-transfer {{ none; }};\n\
\tnotify no;\n\
\tdnssec-validation no;\n\
\tautomatic-interface-scan no;\n\
}};\n\
controls {{ }};\n"
    );
    for k in &o.keys {
        s.push_str(&BindOptions::tsig_keygen_format(
            &k.name,
            &k.algorithm,
            &k.secret,
        ));
    }
    for (i, z) in o.zones.iter().enumerate() {
        let _ = write!(
            s,
            "zone \"{}\" {{\n\ttype primary;\n\tfile \"{d}/{}\";\n",
            z.name,
            zone_file(i)
        );
        if !z.grants.is_empty() {
            s.push_str("\tupdate-policy {\n");
            for g in &z.grants {
                let _ = writeln!(s, "\t\tgrant {} {} {};", g.key, g.rule, g.types);
            }
            s.push_str("\t};\n");
        }
        s.push_str("};\n");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI=";

    #[test]
    fn config_has_keys_zones_and_grants() {
        let o = BindOptions::new("example")
            .key("ha-key", "HMAC-SHA256", SECRET)
            .grant("ha-key", "zonesub", "AAAA")
            .record("mn1 300 IN AAAA 2001:db8:1::99")
            .zone(
                "1.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.",
                &[],
                &[("ha-key", "zonesub", "PTR DHCID")],
            );
        validate(&o).expect("valid");
        let conf = named_conf(&o, Path::new("/tmp/x"));
        assert!(
            conf.contains("listen-on-v6 port 53 { 2001:db8:1::2; };"),
            "{conf}"
        );
        assert!(conf.contains("recursion no;"));
        assert!(conf.contains("key \"ha-key\" {\n\talgorithm hmac-sha256;\n\tsecret \""));
        assert!(
            conf.contains("zone \"example.\" {\n\ttype primary;\n\tfile \"/tmp/x/zone-0.db\";")
        );
        assert!(conf.contains("grant ha-key zonesub AAAA;"));
        assert!(conf.contains("grant ha-key zonesub PTR DHCID;"));
        let zone = zone_text(&o.zones[0], "example.");
        assert!(zone.contains("@\tIN SOA ns.example. hostmaster.example."));
        assert!(zone.contains("ns\tIN AAAA 2001:db8:1::2\n"));
        assert!(zone.ends_with("mn1 300 IN AAAA 2001:db8:1::99\n"));
        let rev = zone_text(&o.zones[1], "example.");
        assert!(rev.contains("$ORIGIN 1.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.\n"));
        assert!(!rev.contains("ns\tIN AAAA"));
        assert!(!format!("{o:?}").contains(SECRET));
    }

    #[test]
    fn bad_strings_are_refused() {
        let base = || BindOptions::new("example.").key("k", "hmac-sha256", SECRET);
        assert!(validate(&base()).is_ok());
        assert!(validate(&base().grant("other", "zonesub", "AAAA")).is_err());
        assert!(validate(&base().grant("k", "zonesub;", "AAAA")).is_err());
        assert!(validate(&base().record("a IN AAAA ::1\nb IN A 1.2.3.4")).is_err());
        assert!(validate(&BindOptions::new("ex\"ample.")).is_err());
        assert!(validate(&BindOptions::new("e.").key("k", "hmac-sha256", "a\"b")).is_err());
        assert!(validate(&BindOptions::new("e.").key("k", "hmac-foo", SECRET)).is_err());
    }

    #[test]
    fn keygen_format() {
        assert_eq!(
            BindOptions::tsig_keygen_format("k1", "hmac-sha256", "QUJD"),
            "key \"k1\" {\n\talgorithm hmac-sha256;\n\tsecret \"QUJD\";\n};\n"
        );
    }
}
