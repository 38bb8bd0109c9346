//! ISC Kea's DHCPv6 server on the home link, for relayed requests.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::io;
use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::Duration;

use crate::lab::{DHCP_IF, HOME_HOST, HOME_PREFIX, Lab, Node};
use crate::proc::{Proc, Spawn};
use crate::util;

/// kea-dhcp6, of Debian's kea-dhcp6-server.
pub const KEA_DHCP6_BIN: &str = "/usr/sbin/kea-dhcp6";

/// The DHCPv6 server port.
pub const DHCP6_SERVER_PORT: u16 = 547;

/// How to start [`Kea`]. The defaults serve the home prefix from the pool
/// `2001:db8:1::100`–`2001:db8:1::1ff` to clients behind a relay whose link-address is in the
/// home prefix (the home agent's `2001:db8:1::1`).
#[derive(Debug, Clone)]
pub struct KeaOptions {
    name: String,
    pool: (Ipv6Addr, Ipv6Addr),
    rapid_commit: bool,
    subnet_extra: String,
    dhcp6_extra: String,
    ddns: Option<Ddns>,
    debug_level: Option<u32>,
    timeout: Duration,
}

/// kea-dhcp6's DDNS parameters (Kea ARM "DDNS for DHCPv6").
#[derive(Debug, Clone)]
struct Ddns {
    qualifying_suffix: String,
    server_port: u16,
    override_client_update: bool,
    override_no_update: bool,
    replace_client_name: String,
}

impl Default for KeaOptions {
    fn default() -> Self {
        Self {
            name: "kea".to_owned(),
            pool: (
                Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x100),
                Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x1ff),
            ),
            rapid_commit: false,
            subnet_extra: String::new(),
            dhcp6_extra: String::new(),
            ddns: None,
            debug_level: None,
            timeout: Duration::from_secs(10),
        }
    }
}

impl KeaOptions {
    /// The defaults (instance name `kea`).
    pub fn new() -> Self {
        Self::default()
    }

    /// Instance name: the directory is `<lab dir>/<name>/`, the log `<lab dir>/<name>.log`.
    #[must_use]
    pub fn name(mut self, name: &str) -> Self {
        self.name = name.to_owned();
        self
    }

    /// The address pool (inclusive range inside the home prefix).
    #[must_use]
    pub fn pool(mut self, first: Ipv6Addr, last: Ipv6Addr) -> Self {
        self.pool = (first, last);
        self
    }

    /// Enables Rapid Commit on the subnet: a Solicit carrying the Rapid Commit option gets a
    /// Reply (and a committed lease) instead of an Advertise.
    #[must_use]
    pub fn rapid_commit(mut self, on: bool) -> Self {
        self.rapid_commit = on;
        self
    }

    /// Extra JSON members for the subnet entry, e.g.
    /// `r#""relay": { "ip-addresses": [ "2001:db8:2::1" ] }"#`.
    #[must_use]
    pub fn subnet_extra(mut self, json_members: &str) -> Self {
        self.subnet_extra = json_members.to_owned();
        self
    }

    /// Extra JSON members for the `Dhcp6` map, e.g. a `"dhcp-ddns": { … }` block.
    #[must_use]
    pub fn dhcp6_extra(mut self, json_members: &str) -> Self {
        self.dhcp6_extra = json_members.to_owned();
        self
    }

    /// Turns on DNS updates for leases (Client FQDN option, RFC 4704): `"dhcp-ddns"` with
    /// `"enable-updates": true` pointing at kea-dhcp-ddns on `127.0.0.1:53001` (start it with
    /// [`KeaDdns`](crate::KeaDdns)), `"ddns-send-updates": true`, and this
    /// `"ddns-qualifying-suffix"` for partial names (e.g. `example.`). By default Kea follows
    /// the client's flags (`ddns-override-client-update` and `ddns-override-no-update` false)
    /// and keeps its name (`ddns-replace-client-name` `never`).
    #[must_use]
    pub fn ddns(mut self, qualifying_suffix: &str) -> Self {
        self.ddns = Some(Ddns {
            qualifying_suffix: qualifying_suffix.to_owned(),
            server_port: crate::kea_ddns::KEA_DDNS_PORT,
            override_client_update: false,
            override_no_update: false,
            replace_client_name: "never".to_owned(),
        });
        self
    }

    /// With [`KeaOptions::ddns`]: the UDP port of kea-dhcp-ddns on 127.0.0.1 (default 53001).
    #[must_use]
    pub fn ddns_server_port(mut self, port: u16) -> Self {
        if let Some(d) = &mut self.ddns {
            d.server_port = port;
        }
        self
    }

    /// With [`KeaOptions::ddns`]: `ddns-override-client-update` (the server does the AAAA
    /// update even when the client asked to do it, S=0, and answers O=1).
    #[must_use]
    pub fn ddns_override_client_update(mut self, on: bool) -> Self {
        if let Some(d) = &mut self.ddns {
            d.override_client_update = on;
        }
        self
    }

    /// With [`KeaOptions::ddns`]: `ddns-override-no-update` (the server updates even when the
    /// client asked for no update, N=1).
    #[must_use]
    pub fn ddns_override_no_update(mut self, on: bool) -> Self {
        if let Some(d) = &mut self.ddns {
            d.override_no_update = on;
        }
        self
    }

    /// With [`KeaOptions::ddns`]: `ddns-replace-client-name` (`never`, `always`,
    /// `when-present`, `when-not-present`).
    #[must_use]
    pub fn ddns_replace_client_name(mut self, mode: &str) -> Self {
        if let Some(d) = &mut self.ddns {
            d.replace_client_name = mode.to_owned();
        }
        self
    }

    /// Logs at severity DEBUG with this debug level (0–99; 40–55 show packets) instead of INFO.
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

/// One lease of Kea's memfile CSV (`leases6.csv`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease6 {
    /// The leased address (or delegated prefix).
    pub address: Ipv6Addr,
    /// The client's DUID, as Kea writes it (`00:03:00:01:…`).
    pub duid: String,
    /// Valid lifetime in seconds (0 once released or reclaimed).
    pub valid_lifetime: u32,
    /// Expiry, Unix time.
    pub expire: u64,
    /// Subnet ID.
    pub subnet_id: u32,
    /// Preferred lifetime in seconds.
    pub pref_lifetime: u32,
    /// 0 = IA_NA address, 1 = IA_TA, 2 = delegated prefix.
    pub lease_type: u8,
    /// The IAID of the IA.
    pub iaid: u32,
    /// Prefix length (128 for addresses).
    pub prefix_len: u8,
    /// Client host name (from the Client FQDN option), may be empty.
    pub hostname: String,
    /// 0 = default (assigned), 1 = declined, 2 = expired-reclaimed.
    pub state: u32,
    /// Every column by its header name, as written.
    pub fields: BTreeMap<String, String>,
}

/// A running kea-dhcp6 in the lab's [`Node::Dhcp`] namespace, listening on
/// `dhcp0/2001:db8:1::2` (so relays can send to that unicast address: Kea 2.2 ignores
/// Relay-Forw sent to ff05::1:3 in this set-up), with a memfile lease database in its instance
/// directory. Stopped (SIGTERM, by PID) on drop.
///
/// ```no_run
/// # fn main() -> std::io::Result<()> {
/// use testlab::{Kea, KeaOptions, Lab};
/// let lab = Lab::new("doc-kea")?;
/// let kea = Kea::start(&lab, KeaOptions::new().rapid_commit(true))?;
/// // … relay a Solicit to 2001:db8:1::2 port 547 from the home agent's namespace …
/// for lease in kea.leases()? {
///     println!("{} -> {}", lease.duid, lease.address);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Kea {
    dir: PathBuf,
    config: PathBuf,
    leases: PathBuf,
    proc: Proc,
}

impl Kea {
    /// Writes `kea-dhcp6.conf`, starts `kea-dhcp6 -c FILE` in the dhcp namespace and waits
    /// until it listens on UDP 547 of `2001:db8:1::2`. Fails with a clear message if Kea is not
    /// installed, or quoting its log if it does not come up.
    pub fn start(lab: &Lab, options: KeaOptions) -> io::Result<Self> {
        util::check_name("kea instance", &options.name)?;
        util::require_executable(Path::new(KEA_DHCP6_BIN), "kea-dhcp6-server")?;
        if let Some(d) = &options.ddns {
            for (what, v) in [
                ("DDNS qualifying suffix", &d.qualifying_suffix),
                ("ddns-replace-client-name", &d.replace_client_name),
            ] {
                if v.chars().any(|c| c.is_control() || c == '"' || c == '\\') {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("Kea {what} {v:?} must be without quotes or controls"),
                    ));
                }
            }
        }
        let dir = lab.dir().join(&options.name);
        fs::create_dir_all(&dir)?;
        let config = dir.join("kea-dhcp6.conf");
        let leases = dir.join("leases6.csv");
        fs::write(&config, kea_conf(&options, &dir, &leases))?;
        // Kea writes its pid file under /run/kea and a logger lock file under /var/run/kea (both
        // missing without systemd's tmpfiles, and shared between instances): point both at the
        // instance directory.
        let mut proc = lab.spawn(
            Node::Dhcp,
            Spawn::new(KEA_DHCP6_BIN)
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
            listening_udp6(pid, HOME_HOST, DHCP6_SERVER_PORT).then_some(Ok(()))
        });
        ready.unwrap_or_else(|| {
            Err(proc.error(&format!(
                "is not listening on [{HOME_HOST}]:{DHCP6_SERVER_PORT} after {:?}",
                options.timeout
            )))
        })?;
        Ok(Self {
            dir,
            config,
            leases,
            proc,
        })
    }

    /// kea-dhcp6's PID.
    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }

    /// The instance directory (config, lease file, server DUID, pid file).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Path of the `kea-dhcp6.conf` written.
    pub fn config_path(&self) -> &Path {
        &self.config
    }

    /// Path of the memfile lease CSV.
    pub fn leases_path(&self) -> &Path {
        &self.leases
    }

    /// Kea's log (it logs to stdout, captured in `<lab dir>/<name>.log`).
    pub fn log(&self) -> String {
        self.proc.log()
    }

    /// The current leases: the latest CSV row of each address (Kea appends a row for every
    /// change; with `lfc-interval = 0` the file is never compacted). A released lease shows
    /// `valid_lifetime == 0`.
    pub fn leases(&self) -> io::Result<Vec<Lease6>> {
        let text = match fs::read_to_string(&self.leases) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        parse_leases(&text)
    }

    /// Stops Kea (SIGTERM by PID, SIGKILL after 3 s) and returns its exit status.
    pub fn stop(&mut self) -> io::Result<ExitStatus> {
        self.proc.stop()
    }
}

fn kea_conf(o: &KeaOptions, dir: &Path, leases: &Path) -> String {
    let (severity, debuglevel) = match o.debug_level {
        Some(l) => ("DEBUG", l),
        None => ("INFO", 0),
    };
    let mut subnet_extra = String::new();
    if !o.subnet_extra.is_empty() {
        let _ = write!(subnet_extra, ",\n      {}", o.subnet_extra);
    }
    let mut dhcp6_extra = String::new();
    if let Some(d) = &o.ddns {
        let _ = write!(
            dhcp6_extra,
            r#",
    "dhcp-ddns": {{
      "enable-updates": true,
      "server-ip": "127.0.0.1",
      "server-port": {port},
      "ncr-protocol": "UDP",
      "ncr-format": "JSON"
    }},
    "ddns-send-updates": true,
    "ddns-override-client-update": {override_client},
    "ddns-override-no-update": {override_no},
    "ddns-replace-client-name": "{replace}",
    "ddns-qualifying-suffix": "{suffix}""#,
            port = d.server_port,
            override_client = d.override_client_update,
            override_no = d.override_no_update,
            replace = d.replace_client_name,
            suffix = d.qualifying_suffix,
        );
    }
    if !o.dhcp6_extra.is_empty() {
        let _ = write!(dhcp6_extra, ",\n    {}", o.dhcp6_extra);
    }
    format!(
        r#"// Written by testlab.
{{
  "Dhcp6": {{
    // Without it Kea tries /var/lib/kea for its server DUID and fails.
    "data-directory": "{dir}",
    // Interface/address makes Kea listen on the global unicast address too.
    "interfaces-config": {{ "interfaces": [ "{ifname}/{addr}" ] }},
    "lease-database": {{ "type": "memfile", "name": "{leases}", "persist": true, "lfc-interval": 0 }},
    "renew-timer": 1000,
    "rebind-timer": 2000,
    "preferred-lifetime": 3000,
    "valid-lifetime": 4000,
    "subnet6": [ {{
      "id": 1,
      "subnet": "{prefix}",
      "rapid-commit": {rapid},
      "pools": [ {{ "pool": "{first}-{last}" }} ]{subnet_extra}
    }} ],
    "loggers": [ {{
      "name": "kea-dhcp6",
      "output_options": [ {{ "output": "stdout", "flush": true }} ],
      "severity": "{severity}",
      "debuglevel": {debuglevel}
    }} ]{dhcp6_extra}
  }}
}}
"#,
        dir = dir.display(),
        ifname = DHCP_IF,
        addr = HOME_HOST,
        leases = leases.display(),
        prefix = HOME_PREFIX,
        rapid = o.rapid_commit,
        first = o.pool.0,
        last = o.pool.1,
    )
}

/// Whether the process `pid` (through its network namespace's `/proc/<pid>/net/udp6`) has a UDP
/// socket bound to `[addr]:port`.
pub(crate) fn listening_udp6(pid: u32, addr: Ipv6Addr, port: u16) -> bool {
    let Ok(table) = fs::read_to_string(format!("/proc/{pid}/net/udp6")) else {
        return false;
    };
    table.lines().skip(1).any(|line| {
        let Some(local) = line.split_whitespace().nth(1) else {
            return false;
        };
        parse_proc_addr(local) == Some((addr, port))
    })
}

/// Parses `/proc/net/udp6`'s local address column: 32 hex digits (four 32-bit words in host
/// byte order), a colon, the port in hex.
fn parse_proc_addr(s: &str) -> Option<(Ipv6Addr, u16)> {
    let (a, p) = s.split_once(':')?;
    if a.len() != 32 {
        return None;
    }
    let mut bytes = [0u8; 16];
    for (i, chunk) in bytes.chunks_mut(4).enumerate() {
        let word = u32::from_str_radix(a.get(i * 8..i * 8 + 8)?, 16).ok()?;
        chunk.copy_from_slice(&word.to_ne_bytes());
    }
    Some((Ipv6Addr::from(bytes), u16::from_str_radix(p, 16).ok()?))
}

fn parse_leases(text: &str) -> io::Result<Vec<Lease6>> {
    let mut lines = text.lines();
    let Some(header) = lines.next() else {
        return Ok(Vec::new());
    };
    let names: Vec<&str> = header.split(',').collect();
    let mut latest: Vec<Lease6> = Vec::new();
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let fields: BTreeMap<String, String> = names
            .iter()
            .zip(line.split(','))
            .map(|(k, v)| ((*k).to_owned(), v.to_owned()))
            .collect();
        let get = |k: &str| fields.get(k).map(String::as_str).unwrap_or_default();
        let num = |k: &str| get(k).parse::<u64>().unwrap_or_default();
        let address: Ipv6Addr = get("address").parse().map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("lease row without an address: {line:?}"),
            )
        })?;
        let lease = Lease6 {
            address,
            duid: get("duid").to_owned(),
            valid_lifetime: u32::try_from(num("valid_lifetime")).unwrap_or(u32::MAX),
            expire: num("expire"),
            subnet_id: u32::try_from(num("subnet_id")).unwrap_or_default(),
            pref_lifetime: u32::try_from(num("pref_lifetime")).unwrap_or(u32::MAX),
            lease_type: u8::try_from(num("lease_type")).unwrap_or(u8::MAX),
            iaid: u32::try_from(num("iaid")).unwrap_or_default(),
            prefix_len: u8::try_from(num("prefix_len")).unwrap_or(128),
            hostname: get("hostname").to_owned(),
            state: u32::try_from(num("state")).unwrap_or_default(),
            fields: BTreeMap::new(),
        };
        let lease = Lease6 { fields, ..lease };
        match latest
            .iter_mut()
            .find(|l| l.address == lease.address && l.lease_type == lease.lease_type)
        {
            Some(old) => *old = lease,
            None => latest.push(lease),
        }
    }
    Ok(latest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_address_column() {
        // 2001:db8:1::2 port 547 as /proc/net/udp6 prints it on a little-endian machine.
        let (a, p) = parse_proc_addr("B80D0120000001000000000002000000:0223").unwrap();
        if cfg!(target_endian = "little") {
            assert_eq!(a, HOME_HOST);
        }
        assert_eq!(p, 547);
    }

    #[test]
    fn ddns_parameters_in_the_config() {
        let plain = kea_conf(&KeaOptions::new(), Path::new("/d"), Path::new("/d/l.csv"));
        assert!(!plain.contains("dhcp-ddns"));
        let o = KeaOptions::new()
            .ddns("example.")
            .ddns_override_client_update(true)
            .dhcp6_extra(r#""x": 1"#);
        let c = kea_conf(&o, Path::new("/d"), Path::new("/d/l.csv"));
        assert!(c.contains(r#""enable-updates": true"#), "{c}");
        assert!(c.contains(r#""server-port": 53001"#));
        assert!(c.contains(r#""ddns-send-updates": true"#));
        assert!(c.contains(r#""ddns-override-client-update": true"#));
        assert!(c.contains(r#""ddns-qualifying-suffix": "example.""#));
        assert!(c.contains(",\n    \"x\": 1"), "{c}");
    }

    #[test]
    fn lease_csv_latest_row_wins() {
        let csv = "address,duid,valid_lifetime,expire,subnet_id,pref_lifetime,lease_type,iaid,\
prefix_len,fqdn_fwd,fqdn_rev,hostname,hwaddr,state,user_context,hwtype,hwaddr_source
2001:db8:1::100,00:03:00:01:02:00:00:00:00:01,4000,1790000000,1,3000,0,1,128,0,0,,,0,,,
2001:db8:1::100,00:03:00:01:02:00:00:00:00:01,0,1790000000,1,0,0,1,128,0,0,,,0,,,
2001:db8:1::101,00:03:00:01:02:00:00:00:00:02,4000,1790000001,1,3000,0,7,128,0,0,mn,,0,,,
";
        let leases = parse_leases(csv).unwrap();
        assert_eq!(leases.len(), 2);
        assert_eq!(leases[0].valid_lifetime, 0);
        assert_eq!(leases[1].iaid, 7);
        assert_eq!(leases[1].hostname, "mn");
        assert_eq!(leases[1].fields["subnet_id"], "1");
    }
}
