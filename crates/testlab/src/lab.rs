//! The namespaces, the veth links between them, and running commands inside them.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::proc::{DEFAULT_GRACE, Proc, Spawn};
use crate::util;

/// The mobile node's care-of address, on `mn0` in [`Node::Mn`].
pub const MN_COA: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xff, 0, 0, 0, 0, 2);
/// The home agent's address towards the mobile node (`ha-inet` in [`Node::Ha`]).
pub const HA_INET: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xff, 0, 0, 0, 0, 1);
/// The home agent's address on the home link (`ha-home` in [`Node::Ha`]).
pub const HA_HOME: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 1);
/// The home-link host (the DHCPv6 server), `dhcp0` in [`Node::Dhcp`].
pub const HOME_HOST: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 2);
/// The home prefix (the home link between [`Node::Ha`] and [`Node::Dhcp`]).
pub const HOME_PREFIX: &str = "2001:db8:1::/64";
/// The "Internet" link between [`Node::Mn`] and [`Node::Ha`].
pub const INET_PREFIX: &str = "2001:db8:ff::/64";
/// Prefix length of both links.
pub const PREFIX_LEN: u8 = 64;

/// Interface of the mobile node (in [`Node::Mn`]).
pub const MN_IF: &str = "mn0";
/// Interface of the home agent towards the mobile node (in [`Node::Ha`]).
pub const HA_INET_IF: &str = "ha-inet";
/// Interface of the home agent on the home link (in [`Node::Ha`]).
pub const HA_HOME_IF: &str = "ha-home";
/// Interface of the home-link host (in [`Node::Dhcp`]).
pub const DHCP_IF: &str = "dhcp0";

/// Prefix of every lab's name, namespace and directory.
pub const LAB_PREFIX: &str = "m6lab";

/// Where lab directories are created unless `MIP6_LAB_ROOT` says otherwise.
pub const DEFAULT_ROOT: &str = "/tmp/mip6-lab";

/// Set this environment variable (to anything) to keep a lab's directory (configs and logs)
/// after the lab is dropped.
pub const KEEP_ENV: &str = "MIP6_LAB_KEEP";

const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
const IP_TIMEOUT: Duration = Duration::from_secs(10);

static SEQ: AtomicU32 = AtomicU32::new(0);

/// One of the lab's three network namespaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Node {
    /// The mobile node: `mn0` = [`MN_COA`].
    Mn,
    /// The home agent: `ha-inet` = [`HA_INET`], `ha-home` = [`HA_HOME`], forwarding on.
    Ha,
    /// The home-link host running the DHCPv6 server: `dhcp0` = [`HOME_HOST`].
    Dhcp,
}

impl Node {
    /// All nodes, in creation order.
    pub const ALL: [Self; 3] = [Self::Mn, Self::Ha, Self::Dhcp];

    /// Short role name, the suffix of the namespace name: `mn`, `ha` or `dhcp`.
    pub fn role(self) -> &'static str {
        match self {
            Self::Mn => "mn",
            Self::Ha => "ha",
            Self::Dhcp => "dhcp",
        }
    }

    /// The node's interfaces with their addresses.
    pub fn interfaces(self) -> &'static [(&'static str, Ipv6Addr)] {
        match self {
            Self::Mn => &[(MN_IF, MN_COA)],
            Self::Ha => &[(HA_INET_IF, HA_INET), (HA_HOME_IF, HA_HOME)],
            Self::Dhcp => &[(DHCP_IF, HOME_HOST)],
        }
    }

    fn index(self) -> usize {
        match self {
            Self::Mn => 0,
            Self::Ha => 1,
            Self::Dhcp => 2,
        }
    }
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.role())
    }
}

/// The name prefix shared by every lab created with `name_hint`: [`LAB_PREFIX`], a dash and
/// the FNV-1a hash of the hint in 8 hex digits. A lab is named `<prefix>-<pid>-<seq>`, its
/// namespaces `<lab>-mn`, `<lab>-ha` and `<lab>-dhcp`.
pub fn lab_prefix(name_hint: &str) -> String {
    format!("{LAB_PREFIX}-{:08x}", util::fnv1a32(name_hint))
}

/// The directory under which labs create their directories (`MIP6_LAB_ROOT` or
/// [`DEFAULT_ROOT`]).
pub fn lab_root() -> PathBuf {
    std::env::var_os("MIP6_LAB_ROOT").map_or_else(|| PathBuf::from(DEFAULT_ROOT), PathBuf::from)
}

/// A running lab: three network namespaces joined by two veth links, and a directory for
/// configuration files and logs. See the [crate documentation](crate) for the topology.
///
/// Dropping the lab stops every process it started (by PID: SIGTERM, then SIGKILL), and any
/// other process still inside its namespaces, deletes the namespaces and removes the directory
/// (kept if [`KEEP_ENV`] is set). This also happens when the test panics; the last lines of every
/// log file are then printed to stderr, where the test runner shows them.
#[derive(Debug)]
pub struct Lab {
    name: String,
    dir: PathBuf,
    netns: [String; 3],
}

impl Lab {
    /// Creates the namespaces and links. `name_hint` (usually the test's name) makes the names
    /// recognisable; the PID and a counter make them unique, so tests can run in parallel.
    /// Leftovers of an earlier run with the same hint whose process is gone (namespaces, the
    /// processes recorded in their directory or still inside their namespaces, the directory)
    /// are removed first.
    ///
    /// Fails with a clear message if not root or if a needed tool is missing.
    pub fn new(name_hint: &str) -> io::Result<Self> {
        if !util::is_root() {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "the namespace lab needs root (ip netns, veth, mount): run the tests as root",
            ));
        }
        for (tool, package) in [
            ("ip", "iproute2"),
            ("unshare", "util-linux"),
            ("setpriv", "util-linux"),
            ("mount", "mount"),
            ("sysctl", "procps"),
            ("kill", "procps"),
        ] {
            util::require_in_path(tool, package)?;
        }
        let prefix = lab_prefix(name_hint);
        remove_stale(&prefix);

        let pid = std::process::id();
        let name = format!("{prefix}-{pid}-{}", SEQ.fetch_add(1, Ordering::Relaxed));
        let dir = lab_root().join(&name);
        fs::create_dir_all(&dir)?;
        let start = util::start_time(pid).unwrap_or(0);
        fs::write(dir.join("owner"), format!("{pid} {start} {name_hint}\n"))?;
        let netns = Node::ALL.map(|n| format!("{name}-{}", n.role()));
        // From here on, Drop cleans up whatever part of the set-up was done.
        let lab = Self { name, dir, netns };
        lab.build()?;
        Ok(lab)
    }

    fn build(&self) -> io::Result<()> {
        for node in Node::ALL {
            self.ip(&["netns", "add", self.netns(node)])?;
        }
        for node in Node::ALL {
            self.ip(&["-n", self.netns(node), "link", "set", "lo", "up"])?;
            let mut sysctls = vec![
                "net.ipv6.conf.all.accept_dad=0",
                "net.ipv6.conf.default.accept_dad=0",
                "net.ipv6.conf.all.accept_ra=0",
                "net.ipv6.conf.default.accept_ra=0",
            ];
            if node == Node::Ha {
                sysctls.extend([
                    "net.ipv6.conf.all.forwarding=1",
                    "net.ipv6.conf.default.forwarding=1",
                ]);
            }
            let mut args = vec!["-q", "-w"];
            args.extend(sysctls);
            self.exec_ok(node, "sysctl", args)?;
        }
        // Both ends are created directly inside their namespaces: the fixed interface names never
        // exist in the host namespace, so parallel labs do not collide.
        for (a, a_if, b, b_if) in [
            (Node::Mn, MN_IF, Node::Ha, HA_INET_IF),
            (Node::Ha, HA_HOME_IF, Node::Dhcp, DHCP_IF),
        ] {
            self.ip(&[
                "link",
                "add",
                a_if,
                "netns",
                self.netns(a),
                "type",
                "veth",
                "peer",
                "name",
                b_if,
                "netns",
                self.netns(b),
            ])?;
        }
        for node in Node::ALL {
            for &(ifname, addr) in node.interfaces() {
                let cidr = format!("{addr}/{PREFIX_LEN}");
                let ns = self.netns(node);
                self.ip(&["-n", ns, "addr", "add", &cidr, "dev", ifname, "nodad"])?;
                self.ip(&["-n", ns, "link", "set", ifname, "up"])?;
            }
        }
        // A veth reports carrier through the kernel's link watcher, which may take up to a second;
        // until then packets are dropped (the first ping took 1 s). Wait for "state UP".
        for node in Node::ALL {
            for &(ifname, _) in node.interfaces() {
                let ns = self.netns(node);
                let up = util::poll(Duration::from_secs(5), Duration::from_millis(10), || {
                    let out = self
                        .ip(&["-n", ns, "-o", "link", "show", "dev", ifname])
                        .ok()?;
                    out.contains("state UP").then_some(())
                });
                if up.is_none() {
                    return Err(io::Error::other(format!(
                        "{ifname} in {ns} did not come up within 5 s"
                    )));
                }
            }
        }
        Ok(())
    }

    /// The lab's name, `<prefix>-<pid>-<seq>` (see [`lab_prefix`]).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The lab directory: configuration files, logs and the `pids` record.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The name of a node's network namespace (for `ip netns exec` / `ip -n`).
    pub fn netns(&self, node: Node) -> &str {
        &self.netns[node.index()]
    }

    /// Runs a command inside a node's namespace and waits for it (at most 60 s; it is killed
    /// after that and the call fails). A non-zero exit is *not* an error here: check
    /// `output.status`, or use [`Lab::exec_ok`].
    pub fn exec<I, S>(&self, node: Node, program: impl AsRef<OsStr>, args: I) -> io::Result<Output>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.exec_timeout(node, COMMAND_TIMEOUT, program, args)
    }

    /// [`Lab::exec`] with an explicit time limit.
    pub fn exec_timeout<I, S>(
        &self,
        node: Node,
        timeout: Duration,
        program: impl AsRef<OsStr>,
        args: I,
    ) -> io::Result<Output>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        util::run(&mut self.command(node, program, args), timeout)
    }

    /// Runs a command inside a node's namespace; a non-zero exit is an error quoting the command
    /// and its outputs. Returns stdout.
    pub fn exec_ok<I, S>(
        &self,
        node: Node,
        program: impl AsRef<OsStr>,
        args: I,
    ) -> io::Result<String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        util::run_ok(&mut self.command(node, program, args), COMMAND_TIMEOUT)
    }

    fn command<I, S>(&self, node: Node, program: impl AsRef<OsStr>, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", self.netns(node)])
            .arg(program)
            .args(args);
        cmd
    }

    fn ip(&self, args: &[&str]) -> io::Result<String> {
        util::run_ok(Command::new("ip").args(args), IP_TIMEOUT)
    }

    /// Starts a long-running process inside a node's namespace. Its stdout and stderr go to
    /// `<lab dir>/<log name>.log`; its PID is recorded in `<lab dir>/pids` so that the lab's
    /// drop (or the next run's leftover removal) can stop it. The process also gets SIGTERM if
    /// the thread that spawned it dies (`setpriv --pdeathsig`), so spawn from the test's thread.
    pub fn spawn(&self, node: Node, spawn: Spawn) -> io::Result<Proc> {
        let base = match &spawn.log_name {
            Some(n) => n.clone(),
            None => Path::new(&spawn.program)
                .file_name()
                .map_or_else(|| "proc".to_owned(), |f| f.to_string_lossy().into_owned()),
        };
        util::check_name("log", &base)?;
        let (name, log_path, log) = (1..)
            .find_map(|i| {
                let name = if i == 1 {
                    base.clone()
                } else {
                    format!("{base}-{i}")
                };
                let path = self.dir.join(format!("{name}.log"));
                match OpenOptions::new().write(true).create_new(true).open(&path) {
                    Ok(f) => Some(Ok((name, path, f))),
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => None,
                    Err(e) => Some(Err(e)),
                }
            })
            .expect("unbounded search")?;
        let mut cmd = Command::new("setpriv");
        cmd.args([
            "--pdeathsig",
            "TERM",
            "--",
            "ip",
            "netns",
            "exec",
            self.netns(node),
        ]);
        if let Some(run) = &spawn.private_run {
            // `ip netns exec` already runs in a mount namespace of its own, but one whose
            // propagation is only "slave"; a fresh private one makes the intent explicit.
            cmd.args([
                "unshare",
                "--mount",
                "--propagation",
                "private",
                "--",
                "sh",
                "-c",
            ])
            .arg(r#"mount --bind "$0" /run && exec "$@""#)
            .arg(run);
        }
        cmd.arg(&spawn.program)
            .args(&spawn.args)
            .envs(spawn.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        let child = cmd.spawn().map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot run {}: {e}", util::describe(&cmd)),
            )
        })?;
        let pid = child.id();
        let start = util::start_time(pid).unwrap_or(0);
        let mut pids = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("pids"))?;
        pids.write_all(format!("{pid} {start} {name}\n").as_bytes())?;
        Ok(Proc::new(child, name, log_path, spawn.grace))
    }

    /// Sends one ICMPv6 echo request from `node` to `dst` (from source address `src` if given)
    /// and waits up to 2 s for the reply; tries 3 times. Fails quoting ping's output.
    pub fn ping(&self, node: Node, src: Option<Ipv6Addr>, dst: Ipv6Addr) -> io::Result<()> {
        util::require_in_path("ping", "iputils-ping")?;
        let mut args = vec![
            "-6".to_owned(),
            "-n".into(),
            "-c".into(),
            "1".into(),
            "-W".into(),
            "2".into(),
        ];
        if let Some(src) = src {
            args.extend(["-I".to_owned(), src.to_string()]);
        }
        args.push(dst.to_string());
        let mut last = None;
        for _ in 0..3 {
            match self.exec_ok(node, "ping", &args) {
                Ok(_) => return Ok(()),
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("three attempts"))
    }

    /// Adds (or replaces) an IPv6 route in a node's namespace: `prefix` (e.g.
    /// `"2001:db8:1::1000/120"`) via the neighbour `via`. Use it to let the home-link host reach
    /// addresses the home agent serves through a tunnel:
    /// `lab.route(Node::Dhcp, "2001:db8:1::1000/120", HA_HOME)`.
    pub fn route(&self, node: Node, prefix: &str, via: Ipv6Addr) -> io::Result<()> {
        self.ip(&[
            "-n",
            self.netns(node),
            "-6",
            "route",
            "replace",
            prefix,
            "via",
            &via.to_string(),
        ])
        .map(drop)
    }

    /// The PIDs of the processes that are inside a node's namespace now (`ip netns pids`).
    pub fn pids_in(&self, node: Node) -> io::Result<Vec<u32>> {
        netns_pids(self.netns(node))
    }

    fn dump_logs(&self) {
        let mut logs = Vec::new();
        collect_logs(&self.dir, 2, &mut logs);
        logs.sort();
        for path in logs {
            let text = util::read_lossy(&path);
            eprintln!(
                "===== {} (last 60 lines) =====\n{}",
                path.display(),
                util::tail(&text, 60)
            );
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("lab {} torn down after a panic; its logs follow", self.name);
            self.dump_logs();
        }
        let keep = std::env::var_os(KEEP_ENV).is_some();
        destroy(&self.dir, &self.netns, !keep);
        if keep {
            eprintln!("{KEEP_ENV} is set: keeping {}", self.dir.display());
        }
    }
}

fn collect_logs(dir: &Path, depth: u32, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        if path.is_dir() && depth > 0 {
            collect_logs(&path, depth - 1, out);
        } else if path.extension().is_some_and(|x| x == "log") {
            out.push(path);
        }
    }
}

/// `ip netns pids NAME`: the processes inside a namespace.
fn netns_pids(netns: &str) -> io::Result<Vec<u32>> {
    let out = util::run_ok(
        Command::new("ip").args(["netns", "pids", netns]),
        IP_TIMEOUT,
    )?;
    Ok(out.lines().filter_map(|l| l.trim().parse().ok()).collect())
}

/// Stops a lab's processes (recorded ones first, then any still inside its namespaces),
/// deletes the namespaces and, if `remove_dir`, the directory.
fn destroy(dir: &Path, netns: &[String], remove_dir: bool) {
    let recorded: Vec<(u32, Option<u64>)> = util::read_lossy(&dir.join("pids"))
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let pid = f.next()?.parse().ok()?;
            let start = f.next()?.parse().ok().filter(|&s| s != 0);
            Some((pid, start))
        })
        .collect();
    util::terminate_all(&recorded, DEFAULT_GRACE);
    let existing = existing_netns();
    for ns in netns.iter().filter(|ns| existing.contains(*ns)) {
        let inside: Vec<(u32, Option<u64>)> = netns_pids(ns)
            .unwrap_or_default()
            .into_iter()
            .map(|pid| (pid, util::start_time(pid)))
            .collect();
        util::terminate_all(&inside, DEFAULT_GRACE);
        let _ = util::run(Command::new("ip").args(["netns", "del", ns]), IP_TIMEOUT);
    }
    if remove_dir {
        let _ = fs::remove_dir_all(dir);
    }
}

/// Names of the network namespaces that `ip netns` knows (the files under /run/netns).
fn existing_netns() -> BTreeSet<String> {
    fs::read_dir("/run/netns")
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Removes the labs named `<prefix>-<pid>-<seq>` whose owner process is gone.
fn remove_stale(prefix: &str) {
    let root = lab_root();
    let dash = format!("{prefix}-");
    let mut labs = BTreeSet::new();
    for ns in existing_netns() {
        if ns.starts_with(&dash)
            && let Some((lab, _role)) = ns.rsplit_once('-')
        {
            labs.insert(lab.to_owned());
        }
    }
    if let Ok(rd) = fs::read_dir(&root) {
        for e in rd.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.starts_with(&dash) {
                labs.insert(n);
            }
        }
    }
    let me = std::process::id();
    for lab in labs {
        let Some(pid) = lab[dash.len()..]
            .split('-')
            .next()
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        let dir = root.join(&lab);
        let owner_start = util::read_lossy(&dir.join("owner"))
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .filter(|&s| s != 0);
        if util::pid_alive(pid, owner_start) {
            continue; // a run in progress
        }
        let netns = Node::ALL.map(|n| format!("{lab}-{}", n.role()));
        destroy(&dir, &netns, true);
    }
}
