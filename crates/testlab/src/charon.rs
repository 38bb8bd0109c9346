//! strongSwan's charon as a lab peer, driven through swanctl over its own vici socket.

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output};
use std::time::Duration;

use crate::lab::{Lab, Node};
use crate::proc::{Proc, Spawn};
use crate::sa::{self, SaInfo};
use crate::util;

/// The charon daemon of Debian's strongswan-charon.
pub const CHARON_BIN: &str = "/usr/lib/ipsec/charon";
/// swanctl, of strongswan-swanctl.
pub const SWANCTL_BIN: &str = "/usr/sbin/swanctl";
/// Where charon looks for its plugins.
pub const PLUGIN_DIR: &str = "/usr/lib/ipsec/plugins";

/// The plugins charon loads by default. `kernel-libipsec` (userspace ESP over a TUN device,
/// because the kernel has no ESP/XFRM) must come before `kernel-netlink`, which still handles
/// addresses and routes. There is no `resolve` plugin: a DNS server received by Mode Config is
/// not written to the host's /etc/resolv.conf (charon logs "handling INTERNAL_IP6_DNS attribute
/// failed", which is harmless).
pub const DEFAULT_PLUGINS: &str = "random nonce aes sha1 sha2 md5 hmac gmp openssl pem pkcs1 \
    pkcs8 x509 pubkey revocation constraints kernel-libipsec kernel-netlink socket-default vici \
    attr xauth-generic updown";

/// Debian packages that hold the plugins of [`DEFAULT_PLUGINS`] beyond strongswan-charon's.
const PLUGIN_PACKAGES: &str = "libstrongswan-standard-plugins, libcharon-extra-plugins \
    (kernel-libipsec), libcharon-extauth-plugins (xauth-generic)";

/// The directories swanctl reads credentials from, next to `swanctl.conf`.
const SWANCTL_DIRS: [&str; 13] = [
    "x509", "x509ca", "x509ocsp", "x509aa", "x509ac", "x509crl", "pubkey", "private", "rsa",
    "ecdsa", "bliss", "pkcs8", "pkcs12",
];

/// How to start a [`Charon`]: its name, its `swanctl.conf`, log levels, plugins and extra
/// settings.
#[derive(Debug, Clone)]
pub struct CharonOptions {
    name: String,
    swanctl_conf: String,
    log_levels: Vec<(String, i32)>,
    plugins: String,
    settings: String,
    timeout: Duration,
    files: Vec<(PathBuf, Vec<u8>)>,
}

impl CharonOptions {
    /// An instance named `name` (unique within the lab: it names the instance directory
    /// `charon-<name>/` and the log files) with the given `swanctl.conf` text, usually a
    /// [`Swanctl`](crate::swanctl::Swanctl).
    ///
    /// Default log levels: `default = 1`, `ike = 2`, `cfg = 2`, `net = 2`, `knl = 2`,
    /// `enc = 1`.
    pub fn new(name: &str, swanctl_conf: impl Into<String>) -> Self {
        Self {
            name: name.to_owned(),
            swanctl_conf: swanctl_conf.into(),
            log_levels: [
                ("default", 1),
                ("ike", 2),
                ("cfg", 2),
                ("net", 2),
                ("knl", 2),
                ("enc", 1),
            ]
            .iter()
            .map(|&(s, l)| (s.to_owned(), l))
            .collect(),
            plugins: DEFAULT_PLUGINS.to_owned(),
            settings: String::new(),
            timeout: Duration::from_secs(10),
            files: Vec::new(),
        }
    }

    /// Sets the file log level (-1 to 4) of one subsystem (`default`, `ike`, `enc`, `net`,
    /// `knl`, `cfg`, `lib`, `esp`, …). `ike = 4` logs the derived keys (SKEYID…), which lets
    /// tshark decrypt a capture.
    #[must_use]
    pub fn log_level(mut self, subsystem: &str, level: i32) -> Self {
        self.log_levels.retain(|(s, _)| s != subsystem);
        self.log_levels.push((subsystem.to_owned(), level));
        self
    }

    /// Replaces the plugin load list ([`DEFAULT_PLUGINS`]).
    #[must_use]
    pub fn plugins(mut self, load: &str) -> Self {
        self.plugins = load.to_owned();
        self
    }

    /// Extra `strongswan.conf` text placed inside the `charon { … }` section, e.g.
    /// `"retransmit_tries = 2\n"` or `"plugins { eap-radius { … } }\n"`.
    #[must_use]
    pub fn settings(mut self, text: &str) -> Self {
        self.settings.push_str(text);
        self.settings.push('\n');
        self
    }

    /// Time limit for start-up (until the vici socket answers) and for each swanctl command
    /// (default 10 s).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Puts a file into the instance's `swanctl/` directory before the credentials are loaded,
    /// e.g. `("rsa/ha.key", pem)`, `("x509/ha.pem", pem)` or `("x509ca/ca.pem", pem)`.
    pub fn file(mut self, relative: impl Into<PathBuf>, contents: impl Into<Vec<u8>>) -> Self {
        self.files.push((relative.into(), contents.into()));
        self
    }
}

/// A running charon in one lab namespace, with its own private `/run` (charon's pid file is fixed
/// at `/var/run/charon.pid`), its own `strongswan.conf` (`STRONGSWAN_CONF`), vici socket and
/// log file, all under `<lab dir>/charon-<name>/`. Stopped (SIGTERM, by PID) on drop.
///
/// ```no_run
/// # fn main() -> std::io::Result<()> {
/// use testlab::{Charon, CharonOptions, Lab, Node};
/// let lab = Lab::new("doc-charon")?;
/// let conf = "connections {\n  c {\n    version = 1\n    local_addrs = 2001:db8:ff::1\n\
///     local {\n      auth = psk\n    }\n    remote {\n      auth = psk\n    }\n  }\n}\n";
/// let ha = Charon::start(&lab, Node::Ha, CharonOptions::new("ha", conf).log_level("ike", 4))?;
/// assert!(ha.list_sas()?.is_empty());
/// println!("{}", ha.log());
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Charon {
    name: String,
    node: Node,
    dir: PathBuf,
    conf: PathBuf,
    swanctl_conf: PathBuf,
    vici_uri: String,
    log_path: PathBuf,
    timeout: Duration,
    proc: Proc,
}

impl Charon {
    /// Writes the configuration, starts charon in `node`'s namespace, waits until its vici socket
    /// answers, and loads `swanctl.conf` (`swanctl --load-all`). Fails with a clear message if
    /// charon, swanctl or a plugin is not installed, or quoting charon's log if it does not come
    /// up.
    pub fn start(lab: &Lab, node: Node, options: CharonOptions) -> io::Result<Self> {
        util::check_name("charon instance", &options.name)?;
        util::require_executable(Path::new(CHARON_BIN), "strongswan-charon")?;
        util::require_executable(Path::new(SWANCTL_BIN), "strongswan-swanctl")?;
        for plugin in options.plugins.split_whitespace() {
            let plugin = plugin.trim_end_matches('!');
            let so = Path::new(PLUGIN_DIR).join(format!("libstrongswan-{plugin}.so"));
            if !so.is_file() {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!(
                        "charon plugin {plugin} is missing ({}): install {PLUGIN_PACKAGES} \
                         (scripts/install-deps.sh)",
                        so.display()
                    ),
                ));
            }
        }

        let dir = lab.dir().join(format!("charon-{}", options.name));
        let run = dir.join("run");
        let swanctl_dir = dir.join("swanctl");
        fs::create_dir_all(&run)?;
        for d in SWANCTL_DIRS {
            fs::create_dir_all(swanctl_dir.join(d))?;
        }
        let socket = dir.join("charon.vici");
        if socket.as_os_str().len() > 100 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "vici socket path too long for a Unix socket: {}",
                    socket.display()
                ),
            ));
        }
        let vici_uri = format!("unix://{}", socket.display());
        let log_path = dir.join("charon.log");
        let conf = dir.join("strongswan.conf");
        fs::write(&conf, strongswan_conf(&options, &vici_uri, &log_path))?;
        let swanctl_conf = swanctl_dir.join("swanctl.conf");
        fs::write(&swanctl_conf, &options.swanctl_conf)?;
        for (rel, contents) in &options.files {
            if rel.is_absolute()
                || rel
                    .components()
                    .any(|c| matches!(c, std::path::Component::ParentDir))
            {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{}: must be a path inside swanctl/", rel.display()),
                ));
            }
            let path = swanctl_dir.join(rel);
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent)?;
            }
            fs::write(path, contents)?;
        }

        let proc = lab.spawn(
            node,
            Spawn::new(CHARON_BIN)
                .env("STRONGSWAN_CONF", &conf)
                .private_run(&run)
                .log_name(format!("charon-{}", options.name)),
        )?;
        let mut charon = Self {
            name: options.name,
            node,
            dir,
            conf,
            swanctl_conf,
            vici_uri,
            log_path,
            timeout: options.timeout,
            proc,
        };
        charon.wait_ready(&socket)?;
        charon.load_all()?;
        Ok(charon)
    }

    fn wait_ready(&mut self, socket: &Path) -> io::Result<()> {
        let ready = util::poll(self.timeout, Duration::from_millis(10), || {
            if let Ok(Some(st)) = self.proc.try_status() {
                return Some(Err(
                    self.error(&format!("charon exited ({st}) during start-up"))
                ));
            }
            if !socket.exists() {
                return None;
            }
            match self.swanctl(&["--stats"]) {
                Ok(out) if out.status.success() => Some(Ok(())),
                _ => None,
            }
        });
        ready.unwrap_or_else(|| {
            Err(self.error(&format!(
                "vici socket did not answer within {:?}",
                self.timeout
            )))
        })
    }

    /// The instance name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The node whose namespace charon runs in.
    pub fn node(&self) -> Node {
        self.node
    }

    /// charon's PID.
    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }

    /// The instance directory (`strongswan.conf`, `swanctl/`, `run/`, `charon.log`,
    /// `charon.vici`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The `swanctl/` directory: `swanctl.conf` and the credential directories (`x509`,
    /// `private`, …) that `swanctl --load-all` reads.
    pub fn swanctl_dir(&self) -> &Path {
        self.swanctl_conf
            .parent()
            .expect("swanctl.conf has a parent")
    }

    /// The vici URI, `unix://<dir>/charon.vici`.
    pub fn vici_uri(&self) -> &str {
        &self.vici_uri
    }

    /// Runs `swanctl <args> --uri <this instance>` (in the host namespace: the vici socket is a
    /// file) and returns its output whatever the exit status. The first argument must be the
    /// command (`--list-conns`, …).
    pub fn swanctl(&self, args: &[&str]) -> io::Result<Output> {
        util::run(
            &mut self.swanctl_command(args),
            self.timeout + Duration::from_secs(5),
        )
    }

    fn swanctl_command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(SWANCTL_BIN);
        cmd.env("STRONGSWAN_CONF", &self.conf)
            .args(args)
            .arg("--uri")
            .arg(&self.vici_uri);
        cmd
    }

    /// Runs swanctl; a non-zero exit is an error quoting swanctl's output and the end of
    /// charon's log. Returns stdout.
    pub fn swanctl_ok(&self, args: &[&str]) -> io::Result<String> {
        let mut cmd = self.swanctl_command(args);
        let out = util::run(&mut cmd, self.timeout + Duration::from_secs(5))?;
        util::check(&cmd, &out).map_err(|e| self.error(&e.to_string()))?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// `swanctl --load-all` of the instance's `swanctl.conf` (done by [`Charon::start`]; call it
    /// again after changing the file or adding credentials).
    pub fn load_all(&self) -> io::Result<String> {
        let file = self.swanctl_conf.to_string_lossy().into_owned();
        self.swanctl_ok(&["--load-all", "--file", &file])
    }

    /// Initiates CHILD SA `child` of connection `ike` and waits until it is established
    /// (`swanctl --initiate`). Returns swanctl's output (charon's log lines of the exchange).
    pub fn initiate(&self, child: &str, ike: &str) -> io::Result<String> {
        let t = self.timeout.as_secs().max(1).to_string();
        self.swanctl_ok(&[
            "--initiate",
            "--child",
            child,
            "--ike",
            ike,
            "--timeout",
            &t,
        ])
    }

    /// Terminates the IKE SA(s) of connection `ike` (with Delete notifications).
    pub fn terminate(&self, ike: &str) -> io::Result<String> {
        let t = self.timeout.as_secs().max(1).to_string();
        self.swanctl_ok(&["--terminate", "--ike", ike, "--timeout", &t])
    }

    /// Terminates the CHILD SA(s) of child configuration `child`.
    pub fn terminate_child(&self, child: &str) -> io::Result<String> {
        let t = self.timeout.as_secs().max(1).to_string();
        self.swanctl_ok(&["--terminate", "--child", child, "--timeout", &t])
    }

    /// The IKE SAs and their CHILD SAs (`swanctl --list-sas --pretty`, parsed).
    pub fn list_sas(&self) -> io::Result<Vec<SaInfo>> {
        sa::parse_list_sas(&self.swanctl_ok(&["--list-sas", "--pretty"])?)
    }

    /// Polls [`Charon::list_sas`] until `done` holds (returns that listing) or `timeout` passes
    /// (fails quoting the last listing). The responder may install its CHILD SA a moment after
    /// the initiator's `initiate` returns.
    pub fn wait_for_sas(
        &self,
        timeout: Duration,
        mut done: impl FnMut(&[SaInfo]) -> bool,
    ) -> io::Result<Vec<SaInfo>> {
        let mut last = Vec::new();
        let found = util::poll(timeout, Duration::from_millis(20), || {
            match self.list_sas() {
                Ok(sas) if done(&sas) => Some(Ok(sas)),
                Ok(sas) => {
                    last = sas;
                    None
                }
                Err(e) => Some(Err(e)),
            }
        });
        found.unwrap_or_else(|| {
            Err(self.error(&format!(
                "SAs did not reach the expected state within {timeout:?}: {last:#?}"
            )))
        })
    }

    /// charon's log file (at the configured levels).
    pub fn log(&self) -> String {
        util::read_lossy(&self.log_path)
    }

    /// Path of charon's log file.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// charon's stdout/stderr (normally empty; start-up errors land here).
    pub fn output(&self) -> String {
        self.proc.log()
    }

    /// Stops charon (SIGTERM by PID, SIGKILL after 3 s) and returns its exit status.
    pub fn stop(&mut self) -> io::Result<ExitStatus> {
        self.proc.stop()
    }

    fn error(&self, what: &str) -> io::Error {
        io::Error::other(format!(
            "charon {} in {}: {what}\n--- stdout/stderr ---\n{}\n--- last lines of {} ---\n{}",
            self.name,
            self.node,
            util::tail(&self.proc.log(), 20),
            self.log_path.display(),
            util::tail(&self.log(), 40)
        ))
    }
}

fn strongswan_conf(o: &CharonOptions, vici_uri: &str, log_path: &Path) -> String {
    let mut levels = String::new();
    for (subsystem, level) in &o.log_levels {
        let _ = writeln!(levels, "      {subsystem} = {level}");
    }
    format!(
        "# Written by testlab for one charon instance (STRONGSWAN_CONF points here).
charon {{
  load_modular = no
  load = {plugins}
  filelog {{
    lab {{
      path = {log}
      time_format = %H:%M:%S
      time_add_ms = yes
      ike_name = yes
      flush_line = yes
      append = no
{levels}    }}
  }}
  plugins {{
    vici {{
      socket = {vici_uri}
    }}
  }}
{settings}}}
swanctl {{
  load = random openssl pem pkcs1 pkcs8 x509 pubkey revocation constraints
  socket = {vici_uri}
}}
",
        plugins = o.plugins,
        log = log_path.display(),
        settings = o.settings,
    )
}
