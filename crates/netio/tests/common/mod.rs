//! Network-namespace fixtures for the netio tests (root only).
//!
//! A [`NetNs`] is created with `ip netns add nio-<tag>-<pid>-<n>` and deleted when dropped, also
//! when the test panics. Leftovers of earlier runs (same prefix, process gone) are removed
//! before the first namespace of a run is made. Test code runs in a dedicated thread that
//! `setns(2)`s into a namespace ([`NetNs::run`]) and builds a current-thread tokio runtime;
//! [`NetNs::enter`] switches that thread into another namespace, e.g. to open the peer's
//! sockets, which stay in the namespace they were opened in.

#![allow(dead_code, unreachable_pub)]

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::Once;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

const PREFIX: &str = "nio-";
static COUNTER: AtomicU32 = AtomicU32::new(0);
static SWEEP: Once = Once::new();

/// A network namespace that is deleted on drop.
pub struct NetNs {
    pub name: String,
}

fn run(cmd: &str, args: &[&str]) -> io::Result<String> {
    let out = Command::new(cmd).args(args).output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "{cmd} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Deletes `nio-*` namespaces whose creating process no longer exists.
fn sweep_leftovers() {
    let Ok(dir) = std::fs::read_dir("/var/run/netns") else {
        return;
    };
    let me = std::process::id();
    for e in dir.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(PREFIX) else {
            continue;
        };
        let parts: Vec<&str> = rest.rsplitn(3, '-').collect();
        let Some(pid) = parts.get(1).and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if pid != me && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = run("ip", &["netns", "del", &name]);
        }
    }
}

impl NetNs {
    /// Creates `nio-<tag>-<pid>-<n>` with `lo` up. `tag` must not contain '-'.
    pub fn new(tag: &str) -> Self {
        SWEEP.call_once(sweep_leftovers);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("{PREFIX}{tag}-{}-{n}", std::process::id());
        run("ip", &["netns", "add", &name]).expect("ip netns add (needs root and iproute2)");
        let ns = Self { name };
        ns.ip("link set lo up");
        ns
    }

    /// `ip -n <name> <args>`; panics with stderr on failure.
    pub fn ip(&self, args: &str) -> String {
        let mut v = vec!["-n", &self.name];
        v.extend(args.split_whitespace());
        run("ip", &v).unwrap()
    }

    /// Moves the calling thread into this namespace.
    #[allow(unsafe_code)]
    pub fn enter(&self) -> io::Result<()> {
        let f = File::open(format!("/var/run/netns/{}", self.name))?;
        // SAFETY: setns(2) on an open namespace file descriptor; it only changes the calling
        // thread's network namespace, and `f` stays open for the duration of the call.
        let r = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    /// Runs `f` in a new thread inside this namespace, on a current-thread tokio runtime, and
    /// returns its result (re-raising its panic).
    pub fn run<F, Fut, R>(&self, f: F) -> R
    where
        F: FnOnce() -> Fut + Send,
        Fut: Future<Output = R>,
        R: Send,
    {
        std::thread::scope(|s| {
            s.spawn(|| {
                self.enter().expect("setns");
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("tokio runtime");
                rt.block_on(f())
            })
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
        })
    }

    /// Runs a command inside this namespace (`ip netns exec`) and returns its stdout.
    pub fn exec(&self, cmd: &[&str]) -> String {
        let mut v = vec!["netns", "exec", &self.name];
        v.extend(cmd);
        run("ip", &v).unwrap()
    }

    /// Reads a sysctl as seen from inside this namespace.
    pub fn read_sysctl(&self, key: &str) -> String {
        run("ip", &["netns", "exec", &self.name, "sysctl", "-n", key])
            .unwrap()
            .trim()
            .to_owned()
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        if let Err(e) = run("ip", &["netns", "del", &self.name]) {
            eprintln!("could not delete netns {}: {e}", self.name);
        }
    }
}

/// Two namespaces joined by a veth pair `va` (in `a`, `fd00:ab::1/64` and `fd00:ab::11/64`) —
/// `vb` (in `b`, `fd00:ab::2/64`), both up; returns once both ends report carrier.
pub struct VethPair {
    pub a: NetNs,
    pub b: NetNs,
}

pub const A1: &str = "fd00:ab::1";
pub const A2: &str = "fd00:ab::11";
pub const B1: &str = "fd00:ab::2";

impl VethPair {
    pub fn new(tag: &str) -> Self {
        let a = NetNs::new(&format!("{tag}A"));
        let b = NetNs::new(&format!("{tag}B"));
        for ns in [&a, &b] {
            for key in ["all", "default"] {
                let kv = format!("net.ipv6.conf.{key}.accept_dad=0");
                run("ip", &["netns", "exec", &ns.name, "sysctl", "-qw", &kv]).unwrap();
            }
        }
        a.ip(&format!(
            "link add va type veth peer name vb netns {}",
            b.name
        ));
        a.ip(&format!("addr add {A1}/64 dev va nodad"));
        a.ip(&format!("addr add {A2}/64 dev va nodad"));
        b.ip(&format!("addr add {B1}/64 dev vb nodad"));
        a.ip("link set va up");
        b.ip("link set vb up");
        let deadline = Instant::now() + Duration::from_secs(5);
        while !(a.ip("-o link show va").contains("state UP")
            && b.ip("-o link show vb").contains("state UP"))
        {
            assert!(Instant::now() < deadline, "veth did not come up");
            std::thread::sleep(Duration::from_millis(20));
        }
        // Link-local addresses are generated on up; wait until they left DAD.
        while a.ip("-6 -o addr show dev va tentative").contains("inet6")
            || b.ip("-6 -o addr show dev vb tentative").contains("inet6")
        {
            assert!(Instant::now() < deadline, "addresses stayed tentative");
            std::thread::sleep(Duration::from_millis(20));
        }
        // The kernel acknowledges an address before it installs its local route.
        while !(a
            .ip("-6 route show table local")
            .contains(&format!("local {A2} "))
            && a.ip("-6 route show table local")
                .contains(&format!("local {A1} "))
            && b.ip("-6 route show table local")
                .contains(&format!("local {B1} ")))
        {
            assert!(Instant::now() < deadline, "local routes missing");
            std::thread::sleep(Duration::from_millis(10));
        }
        Self { a, b }
    }

    /// The link-local address of an interface in a namespace.
    pub fn link_local(ns: &NetNs, dev: &str) -> std::net::Ipv6Addr {
        let out = ns.ip(&format!("-6 -o addr show dev {dev} scope link"));
        let tok = out
            .split_whitespace()
            .skip_while(|t| *t != "inet6")
            .nth(1)
            .expect("link-local address");
        tok.split('/').next().unwrap().parse().unwrap()
    }
}

/// Interface index of `dev` in `ns`.
pub fn ifindex(ns: &NetNs, dev: &str) -> u32 {
    let out = ns.ip(&format!("-o link show {dev}"));
    out.split(':').next().unwrap().trim().parse().unwrap()
}
