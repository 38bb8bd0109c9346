//! The network-namespace lab of the interop tests: three namespaces joined by veth links, and
//! helpers that run strongSwan's charon, ISC Kea and FreeRADIUS inside them.
//!
//! Everything needs root and real tools (`ip`, `unshare`, `setpriv`, charon with
//! kernel-libipsec, Kea, FreeRADIUS; `scripts/install-deps.sh` installs them). Nothing is
//! skipped: a missing tool or missing privileges is an error whose message says what to install.
//!
//! # Topology
//!
//! ```text
//!  netns <lab>-mn              netns <lab>-ha                                netns <lab>-dhcp
//!  (mobile node)               (home agent, forwarding=1)                    (home-link host, Kea)
//! ┌────────────────────┐      ┌──────────────────────────────────────────┐      ┌────────────────────┐
//! │ mn0                │ veth │ ha-inet                          ha-home │ veth │ dhcp0              │
//! │ 2001:db8:ff::2/64  ├──────┤ 2001:db8:ff::1/64      2001:db8:1::1/64 ├──────┤ 2001:db8:1::2/64   │
//! │ (care-of address)  │      │                                          │      │ (DHCPv6 server)    │
//! └────────────────────┘      └──────────────────────────────────────────┘      └────────────────────┘
//!        "Internet" link 2001:db8:ff::/64                home link 2001:db8:1::/64 (home prefix)
//! ```
//!
//! The constants [`MN_COA`], [`HA_INET`], [`HA_HOME`], [`HOME_HOST`], [`HOME_PREFIX`] and the
//! interface names [`MN_IF`], [`HA_INET_IF`], [`HA_HOME_IF`], [`DHCP_IF`] name these; each
//! namespace is reached through a [`Node`] and [`Lab::netns`]. Addresses are added with `nodad`,
//! `accept_dad` and `accept_ra` are 0 everywhere, `lo` is up everywhere, and [`Lab::new`] returns
//! only once every veth reports `state UP` (a fresh veth may drop packets for up to a second).
//! The interface names are fixed: both ends of each veth are created directly inside their
//! namespaces, so parallel labs never see each other's interfaces.
//!
//! There are no default routes: the two links are all there is. A home-link host that must reach
//! an address the home agent serves through a tunnel (a Mode Config or DHCPv6 address on the
//! mobile node) needs a route via the home agent ([`Lab::route`]) or proxy NDP on `ha-home`.
//!
//! # Naming, clean-up and parallel tests
//!
//! A lab is named `m6lab-<hash of the name hint>-<pid>-<n>` ([`lab_prefix`]); its namespaces add
//! `-mn`, `-ha`, `-dhcp`, and its directory is `/tmp/mip6-lab/<name>/` (`MIP6_LAB_ROOT` moves
//! it). The directory holds every configuration file, every log, an `owner` file (PID and start
//! time of the test process) and a `pids` file recording each spawned process (PID, start time,
//! name). Dropping the [`Lab`] — also while a test panics — stops the recorded processes by PID
//! (SIGTERM, then SIGKILL after a grace period; never by name), then any process still inside
//! its namespaces, deletes the namespaces and removes the directory (set `MIP6_LAB_KEEP=1` to
//! keep it). On a panic the last lines of every log are printed to stderr first. If a test
//! process died without dropping its lab (SIGKILL, timeout), the next [`Lab::new`] with the same
//! hint removes the leftovers; spawned processes also get SIGTERM when their parent dies
//! (`setpriv --pdeathsig`).
//!
//! ```no_run
//! # fn main() -> std::io::Result<()> {
//! use testlab::{HA_INET, HOME_HOST, HA_HOME, Lab, Node};
//! let lab = Lab::new("my_test")?;
//! lab.ping(Node::Mn, None, HA_INET)?;
//! lab.ping(Node::Dhcp, None, HA_HOME)?;
//! let routes = lab.exec_ok(Node::Ha, "ip", ["-6", "route"])?;
//! assert!(routes.contains("ha-home"));
//! # let _ = HOME_HOST;
//! # Ok(()) }
//! ```
//!
//! # Processes
//!
//! [`Lab::exec`] runs a command to completion inside a namespace (`ip netns exec`), with a time
//! limit. [`Lab::spawn`] starts a long-running one and returns a [`Proc`] guard: its output goes
//! to `<lab dir>/<name>.log` ([`Proc::log`]), and dropping it stops it by PID. A [`Spawn`] with
//! [`Spawn::private_run`] runs the program in its own mount namespace with a directory
//! bind-mounted over `/run`, for daemons with fixed paths there:
//!
//! ```no_run
//! # fn main() -> std::io::Result<()> {
//! use std::time::Duration;
//! use testlab::{Lab, Node, Spawn};
//! let lab = Lab::new("spawn_example")?;
//! let run = lab.dir().join("my-run");
//! std::fs::create_dir_all(&run)?;
//! let mut p = lab.spawn(
//!     Node::Ha,
//!     Spawn::new("sh").args(["-c", "touch /run/marker; echo ready; exec sleep 60"]).private_run(&run),
//! )?;
//! p.wait_for_log("ready", Duration::from_secs(5))?;
//! assert!(run.join("marker").exists());
//! p.stop()?;
//! # Ok(()) }
//! ```
//!
//! # charon
//!
//! [`Charon::start`] writes a `strongswan.conf` (`load_modular = no`, the plugin list of
//! [`DEFAULT_PLUGINS`] with `kernel-libipsec` before `kernel-netlink` because the kernel has no
//! ESP, a file log at configurable levels, a vici socket in the instance directory) and the
//! `swanctl.conf` the test gives (built with [`swanctl::Swanctl`]), starts charon in a namespace
//! with a private `/run`, waits for its vici socket and loads the configuration.
//! [`Charon::initiate`], [`Charon::list_sas`] (parsed into [`SaInfo`] / [`ChildSaInfo`]),
//! [`Charon::terminate`] and [`Charon::log`] drive and inspect it.
//!
//! kernel-libipsec makes charon behave as if behind a NAT: it floats IKE to UDP 4500 from Main
//! Mode message 5 on, proposes encapsulation mode UDP-Encapsulated-Tunnel (3, RFC 3947) and sends
//! ESP in UDP (RFC 3948). Its TUN device is `ipsec0` in charon's namespace; a Mode Config address
//! is installed on it, with routes in table 220.
//!
//! ```no_run
//! # fn main() -> std::io::Result<()> {
//! use testlab::{Charon, CharonOptions, Lab, Node};
//! use testlab::swanctl::{Auth, Child, Connection, Pool, Secret, Swanctl};
//! // The full HA/MN pair (PSK, IPv6 Mode Config pool, tunnel to the home prefix) is in
//! // tests/tests/lab_charon.rs.
//! let ha_conf = Swanctl::new()
//!     .connection(
//!         Connection::ikev1("mip6-psk")
//!             .proposals("aes128-sha256-modp2048")
//!             .local_addrs("2001:db8:ff::1")
//!             .pools("v6pool")
//!             .local(Auth::psk().id("ha.example.com"))
//!             .remote(Auth::psk())
//!             .child(
//!                 Child::new("home")
//!                     .local_ts("2001:db8:1::/64")
//!                     .esp_proposals("aes128-sha256-modp2048"),
//!             ),
//!     )
//!     .pool(Pool::new("v6pool", "2001:db8:1::1000/120"))
//!     .secret(Secret::ike_psk("0123456789abcdef"));
//! # let mn_conf = ha_conf.clone();
//! let lab = Lab::new("charon_example")?;
//! let ha = Charon::start(&lab, Node::Ha, CharonOptions::new("ha", ha_conf).log_level("ike", 4))?;
//! let mn = Charon::start(&lab, Node::Mn, CharonOptions::new("mn", mn_conf))?;
//! mn.initiate("home", "mip6-psk")?;
//! let sas = mn.list_sas()?;
//! let child = sas[0].child("home").expect("CHILD SA");
//! println!("vip {:?}, SPIs in {:08x} out {:08x}, encap {}", sas[0].local_vips, child.spi_in,
//!     child.spi_out, child.encap);
//! println!("{}", ha.log()); // charon's file log, at the levels chosen
//! # Ok(()) }
//! ```
//!
//! # Kea
//!
//! [`Kea::start`] writes a `kea-dhcp6.conf` (data directory, memfile leases and pid/lock files in
//! its instance directory, listening on `dhcp0/2001:db8:1::2`, subnet `2001:db8:1::/64` with a
//! pool, optional Rapid Commit), starts `kea-dhcp6` in the dhcp namespace and waits until it
//! listens on UDP 547. Relays send to `2001:db8:1::2` port 547 from the home agent's namespace;
//! [`Kea::leases`] reads the lease file.
//!
//! ```no_run
//! # fn main() -> std::io::Result<()> {
//! use testlab::{Kea, KeaOptions, Lab};
//! let lab = Lab::new("kea_example")?;
//! let kea = Kea::start(&lab, KeaOptions::new().rapid_commit(true))?;
//! assert!(kea.leases()?.is_empty());
//! # Ok(()) }
//! ```
//!
//! # FreeRADIUS
//!
//! [`FreeRadius::start`] writes a minimal FreeRADIUS 3.2 configuration into its instance
//! directory (a client entry with the shared secret for the home agent's `2001:db8:1::1`, a
//! `users` file with `Cleartext-Password`s so PAP and CHAP both verify, a `detail` log of every
//! request, Debian's 1 s `reject_delay`), starts `freeradius -f` in the dhcp namespace and waits
//! until it listens on UDP 1812 of `2001:db8:1::2`. [`FreeRadius::requests`] reads the detail
//! log back ([`RadiusRequestRecord`]), e.g. to check that a request carried CHAP-Password and no
//! User-Password.
//!
//! ```no_run
//! # fn main() -> std::io::Result<()> {
//! use testlab::{FreeRadius, FreeRadiusOptions, Lab};
//! let lab = Lab::new("radius_example")?;
//! let radius = FreeRadius::start(&lab, FreeRadiusOptions::new("secret").user("mn", "pw"))?;
//! assert!(radius.requests()?.is_empty());
//! # Ok(()) }
//! ```

mod bind;
mod charon;
mod freeradius;
mod kea;
mod kea_ddns;
mod lab;
mod proc;
mod sa;
pub mod swanctl;
mod util;

pub use bind::{Bind, BindOptions, DIG_BIN, DNS_PORT, NAMED_BIN, NSUPDATE_BIN};
pub use charon::{CHARON_BIN, Charon, CharonOptions, DEFAULT_PLUGINS, PLUGIN_DIR, SWANCTL_BIN};
pub use freeradius::{
    FREERADIUS_BIN, FreeRadius, FreeRadiusOptions, RADIUS_AUTH_PORT, RadiusRequestRecord,
};
pub use kea::{DHCP6_SERVER_PORT, KEA_DHCP6_BIN, Kea, KeaOptions, Lease6};
pub use kea_ddns::{HOME_REVERSE_ZONE, KEA_DDNS_PORT, KEA_DHCP_DDNS_BIN, KeaDdns, KeaDdnsOptions};
pub use lab::{
    DEFAULT_ROOT, DHCP_IF, HA_HOME, HA_HOME_IF, HA_INET, HA_INET_IF, HOME_HOST, HOME_PREFIX,
    INET_PREFIX, KEEP_ENV, LAB_PREFIX, Lab, MN_COA, MN_IF, Node, PREFIX_LEN, lab_prefix, lab_root,
};
pub use proc::{DEFAULT_GRACE, Proc, Spawn};
pub use sa::{ChildSaInfo, SaInfo};
