//! ISC Kea's DHCP-DDNS server (kea-dhcp-ddns, "D2") on the home link: it receives name change
//! requests from kea-dhcp6 and sends TSIG-signed DNS UPDATEs (RFC 2136, RFC 8945) to BIND.
//!
//! What BIND must allow the key (seen with Kea 2.2 and BIND 9.18): AAAA and DHCID in the forward
//! zone, and PTR **and DHCID** in the reverse zone: D2 puts a DHCID next to the PTR too, and a
//! PTR-only grant gets the reverse update REFUSED (`DHCP_DDNS_REVERSE_REPLACE_REJECTED`, then
//! `DHCP_DDNS_ADD_FAILED` although the forward change completed). Without a matching reverse
//! domain at all D2 drops the whole request, forward update included.

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::Duration;

use crate::lab::{HOME_HOST, Lab, Node};
use crate::proc::{Proc, Spawn};
use crate::util;

/// kea-dhcp-ddns, of Debian's kea-dhcp-ddns-server.
pub const KEA_DHCP_DDNS_BIN: &str = "/usr/sbin/kea-dhcp-ddns";

/// The port kea-dhcp-ddns listens on for name change requests (Kea's default), on 127.0.0.1 of
/// the dhcp namespace; [`KeaOptions::ddns`](crate::KeaOptions::ddns) points kea-dhcp6 at it.
pub const KEA_DDNS_PORT: u16 = 53001;

/// The reverse zone of the home prefix `2001:db8:1::/64` (RFC 3596 §2.5 nibble form).
pub const HOME_REVERSE_ZONE: &str = "0.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.";

/// How to start [`KeaDdns`]. The defaults: forward domain `example.`, reverse domain
/// [`HOME_REVERSE_ZONE`], both updated at `[2001:db8:1::2]:53` (BIND on the home-link host)
/// with the one TSIG key, algorithm HMAC-SHA256; listening on `127.0.0.1:53001`.
#[derive(Clone)]
pub struct KeaDdnsOptions {
    name: String,
    key_name: String,
    algorithm: String,
    secret: String,
    forward: Vec<String>,
    reverse: Vec<String>,
    dns_server: SocketAddr,
    port: u16,
    dns_server_timeout_ms: u32,
    debug_level: Option<u32>,
    timeout: Duration,
}

impl std::fmt::Debug for KeaDdnsOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeaDdnsOptions")
            .field("name", &self.name)
            .field("key_name", &self.key_name)
            .field("algorithm", &self.algorithm)
            .field("forward", &self.forward)
            .field("reverse", &self.reverse)
            .field("dns_server", &self.dns_server)
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl KeaDdnsOptions {
    /// The defaults (instance name `kea-ddns`) with this TSIG key: its name (as BIND knows it,
    /// e.g. `ddns-key`) and its base64 secret (as `tsig-keygen` prints it).
    pub fn new(key_name: &str, secret_b64: &str) -> Self {
        Self {
            name: "kea-ddns".to_owned(),
            key_name: key_name.to_owned(),
            algorithm: "HMAC-SHA256".to_owned(),
            secret: secret_b64.to_owned(),
            forward: vec!["example.".to_owned()],
            reverse: vec![HOME_REVERSE_ZONE.to_owned()],
            dns_server: SocketAddr::from((HOME_HOST, 53)),
            port: KEA_DDNS_PORT,
            dns_server_timeout_ms: 500,
            debug_level: None,
            timeout: Duration::from_secs(10),
        }
    }

    /// Instance name: the directory is `<lab dir>/<name>/`, the log `<lab dir>/<name>.log`.
    #[must_use]
    pub fn name(mut self, name: &str) -> Self {
        self.name = name.to_owned();
        self
    }

    /// The TSIG algorithm as Kea spells it (`HMAC-SHA256`, `HMAC-SHA512`, `HMAC-MD5`, …).
    #[must_use]
    pub fn algorithm(mut self, algorithm: &str) -> Self {
        self.algorithm = algorithm.to_owned();
        self
    }

    /// Replaces the forward domains (zones whose AAAA/DHCID records D2 updates).
    #[must_use]
    pub fn forward_domains<I, S>(mut self, domains: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.forward = domains.into_iter().map(Into::into).collect();
        self
    }

    /// Replaces the reverse domains (zones of the PTR records). Kea 2.2 drops the whole name
    /// change request, forward update included, when no reverse domain matches the address.
    #[must_use]
    pub fn reverse_domains<I, S>(mut self, domains: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.reverse = domains.into_iter().map(Into::into).collect();
        self
    }

    /// The DNS server the updates go to (default `[2001:db8:1::2]:53`).
    #[must_use]
    pub fn dns_server(mut self, server: SocketAddr) -> Self {
        self.dns_server = server;
        self
    }

    /// The UDP port on 127.0.0.1 for kea-dhcp6's requests (default [`KEA_DDNS_PORT`]).
    #[must_use]
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// How long D2 waits for the DNS server's answer, in ms (default 500).
    #[must_use]
    pub fn dns_server_timeout_ms(mut self, ms: u32) -> Self {
        self.dns_server_timeout_ms = ms;
        self
    }

    /// Logs at severity DEBUG with this debug level (0–99) instead of INFO.
    #[must_use]
    pub fn debug_level(mut self, level: u32) -> Self {
        self.debug_level = Some(level);
        self
    }

    /// Time limit for start-up (default 10 s).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// A running kea-dhcp-ddns in the lab's [`Node::Dhcp`] namespace, listening on
/// `127.0.0.1:53001` for kea-dhcp6's name change requests (start [`Kea`](crate::Kea) with
/// [`KeaOptions::ddns`](crate::KeaOptions::ddns)) and updating BIND with a TSIG key. Its log
/// (`DHCP_DDNS_ADD_SUCCEEDED`, `DHCP_DDNS_ADD_FAILED`, … at INFO) goes to
/// `<lab dir>/<name>.log`. Stopped (SIGTERM, by PID) on drop.
///
/// ```no_run
/// # fn main() -> std::io::Result<()> {
/// use testlab::{Kea, KeaDdns, KeaDdnsOptions, KeaOptions, Lab};
/// let lab = Lab::new("doc-kea-ddns")?;
/// // … BIND serving `example.` and the home reverse zone, allowing updates with `ddns-key` …
/// let d2 = KeaDdns::start(&lab, KeaDdnsOptions::new("ddns-key", "c2VjcmV0c2VjcmV0c2VjcmV0"))?;
/// let kea = Kea::start(&lab, KeaOptions::new().ddns("example."))?;
/// // … a DHCPv6 exchange with the Client FQDN option …
/// println!("{}", d2.log());
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct KeaDdns {
    dir: PathBuf,
    config: PathBuf,
    proc: Proc,
}

impl KeaDdns {
    /// Writes `kea-dhcp-ddns.conf`, starts `kea-dhcp-ddns -c FILE` in the dhcp namespace and
    /// waits until it listens on UDP `127.0.0.1:<port>`. Fails with a clear message if the
    /// package is missing or a name would break the configuration, or quoting its log if it
    /// does not come up.
    pub fn start(lab: &Lab, options: KeaDdnsOptions) -> io::Result<Self> {
        util::check_name("kea-dhcp-ddns instance", &options.name)?;
        util::require_executable(Path::new(KEA_DHCP_DDNS_BIN), "kea-dhcp-ddns-server")?;
        check_json_literal("TSIG key name", &options.key_name)?;
        check_json_literal("TSIG algorithm", &options.algorithm)?;
        check_json_literal("TSIG secret", &options.secret)?;
        for d in options.forward.iter().chain(&options.reverse) {
            check_json_literal("DDNS domain", d)?;
        }
        let dir = lab.dir().join(&options.name);
        fs::create_dir_all(&dir)?;
        let config = dir.join("kea-dhcp-ddns.conf");
        fs::write(&config, d2_conf(&options))?;
        // As for kea-dhcp6: pid and logger lock files in the instance directory.
        let mut proc = lab.spawn(
            Node::Dhcp,
            Spawn::new(KEA_DHCP_DDNS_BIN)
                .arg("-c")
                .arg(&config)
                .env("KEA_PIDFILE_DIR", &dir)
                .env("KEA_LOCKFILE_DIR", &dir)
                .log_name(options.name.clone()),
        )?;
        let pid = proc.pid();
        let ready = util::poll(options.timeout, Duration::from_millis(10), || {
            if let Ok(Some(st)) = proc.try_status() {
                return Some(Err(proc.error(&format!("exited ({st}) during start-up"))));
            }
            listening_udp4(pid, Ipv4Addr::LOCALHOST, options.port).then_some(Ok(()))
        });
        ready.unwrap_or_else(|| {
            Err(proc.error(&format!(
                "is not listening on 127.0.0.1:{} after {:?}",
                options.port, options.timeout
            )))
        })?;
        Ok(Self { dir, config, proc })
    }

    /// kea-dhcp-ddns's PID.
    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }

    /// The instance directory (config, pid file).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Path of the `kea-dhcp-ddns.conf` written.
    pub fn config_path(&self) -> &Path {
        &self.config
    }

    /// kea-dhcp-ddns's log (stdout, captured in `<lab dir>/<name>.log`).
    pub fn log(&self) -> String {
        self.proc.log()
    }

    /// Waits until the log contains `needle` (e.g. `DHCP_DDNS_ADD_SUCCEEDED`), at most
    /// `timeout`; the error quotes the log.
    pub fn wait_for_log(&mut self, needle: &str, timeout: Duration) -> io::Result<()> {
        self.proc.wait_for_log(needle, timeout)
    }

    /// Stops kea-dhcp-ddns (SIGTERM by PID, SIGKILL after 3 s) and returns its exit status.
    pub fn stop(&mut self) -> io::Result<ExitStatus> {
        self.proc.stop()
    }
}

/// Refuses what would need escaping in a JSON string.
fn check_json_literal(what: &str, s: &str) -> io::Result<()> {
    if s.is_empty() || s.chars().any(|c| c.is_control() || c == '"' || c == '\\') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("kea-dhcp-ddns {what} {s:?} must be non-empty, without quotes or controls"),
        ));
    }
    Ok(())
}

fn domains_json(domains: &[String], key: &str, server: SocketAddr) -> String {
    let mut s = String::new();
    for (i, d) in domains.iter().enumerate() {
        if i > 0 {
            s.push_str(",\n");
        }
        let _ = write!(
            s,
            r#"      {{ "name": "{d}", "key-name": "{key}",
        "dns-servers": [ {{ "ip-address": "{ip}", "port": {port} }} ] }}"#,
            ip = server.ip(),
            port = server.port(),
        );
    }
    s
}

fn d2_conf(o: &KeaDdnsOptions) -> String {
    let (severity, debuglevel) = match o.debug_level {
        Some(l) => ("DEBUG", l),
        None => ("INFO", 0),
    };
    format!(
        r#"// Written by testlab.
{{
  "DhcpDdns": {{
    "ip-address": "127.0.0.1",
    "port": {port},
    "dns-server-timeout": {dns_timeout},
    "ncr-protocol": "UDP",
    "ncr-format": "JSON",
    "tsig-keys": [ {{ "name": "{key}", "algorithm": "{alg}", "secret": "{secret}" }} ],
    "forward-ddns": {{ "ddns-domains": [
{forward}
    ] }},
    "reverse-ddns": {{ "ddns-domains": [
{reverse}
    ] }},
    "loggers": [ {{
      "name": "kea-dhcp-ddns",
      "output_options": [ {{ "output": "stdout", "flush": true }} ],
      "severity": "{severity}",
      "debuglevel": {debuglevel}
    }} ]
  }}
}}
"#,
        port = o.port,
        dns_timeout = o.dns_server_timeout_ms,
        key = o.key_name,
        alg = o.algorithm,
        secret = o.secret,
        forward = domains_json(&o.forward, &o.key_name, o.dns_server),
        reverse = domains_json(&o.reverse, &o.key_name, o.dns_server),
    )
}

/// Whether the process `pid` (through its network namespace's `/proc/<pid>/net/udp`) has a UDP
/// socket bound to `addr:port`.
fn listening_udp4(pid: u32, addr: Ipv4Addr, port: u16) -> bool {
    let Ok(table) = fs::read_to_string(format!("/proc/{pid}/net/udp")) else {
        return false;
    };
    table.lines().skip(1).any(|line| {
        line.split_whitespace()
            .nth(1)
            .and_then(parse_proc_addr4)
            .is_some_and(|a| a == (addr, port))
    })
}

/// Parses `/proc/net/udp`'s local address column: 8 hex digits (the address as a 32-bit word in
/// host byte order), a colon, the port in hex.
fn parse_proc_addr4(s: &str) -> Option<(Ipv4Addr, u16)> {
    let (a, p) = s.split_once(':')?;
    if a.len() != 8 {
        return None;
    }
    let word = u32::from_str_radix(a, 16).ok()?;
    Some((
        Ipv4Addr::from(word.to_ne_bytes()),
        u16::from_str_radix(p, 16).ok()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_udp4_address_column() {
        // 127.0.0.1 port 53001 as /proc/net/udp prints it on a little-endian machine.
        let (a, p) = parse_proc_addr4("0100007F:CF09").unwrap();
        if cfg!(target_endian = "little") {
            assert_eq!(a, Ipv4Addr::LOCALHOST);
        }
        assert_eq!(p, 53001);
        assert_eq!(parse_proc_addr4("0100007F"), None);
    }

    #[test]
    fn config_has_key_and_both_domains() {
        let o = KeaDdnsOptions::new("ddns-key", "c2VjcmV0")
            .forward_domains(["example.", "example.org."])
            .dns_server("[2001:db8:1::53]:5353".parse().unwrap());
        let c = d2_conf(&o);
        assert!(
            c.contains(r#""name": "ddns-key", "algorithm": "HMAC-SHA256", "secret": "c2VjcmV0""#),
            "{c}"
        );
        assert!(c.contains(r#""name": "example.org.", "key-name": "ddns-key""#));
        assert!(c.contains(&format!(r#""name": "{HOME_REVERSE_ZONE}""#)));
        assert_eq!(
            c.matches(r#""ip-address": "2001:db8:1::53", "port": 5353"#)
                .count(),
            3
        );
        assert!(!format!("{o:?}").contains("c2VjcmV0"), "secret in Debug");
        assert!(check_json_literal("x", "a\"b").is_err());
    }
}
