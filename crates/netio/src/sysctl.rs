//! IPv6 per-interface sysctls under `/proc/sys/net/ipv6/conf/<if>/` (kernel
//! `Documentation/networking/ip-sysctl.rst`): forwarding, `proxy_ndp`, `addr_gen_mode`,
//! `accept_ra`, `accept_dad`.
//!
//! These are plain file writes, not a shell-out. `/proc/sys/net` resolves against the network
//! namespace of the **calling thread**, so call these from the thread (or current-thread
//! runtime) that lives in the namespace to configure, never from `spawn_blocking`, whose
//! threads may be in another namespace. The writes are tiny and never block for long, which is
//! why they are synchronous.

use std::fs;
use std::path::PathBuf;

use crate::{Error, Result};

/// Path of `/proc/sys/net/ipv6/conf/<iface>/<key>`; `iface` may also be `all` or `default`.
pub fn ipv6_conf_path(iface: &str, key: &str) -> Result<PathBuf> {
    let ok =
        |s: &str| !s.is_empty() && s != "." && s != ".." && !s.contains('/') && !s.contains('\0');
    if !ok(iface) || iface.len() > 15 {
        return Err(Error::invalid(
            "sysctl",
            format!("bad interface name {iface:?}"),
        ));
    }
    if !ok(key) {
        return Err(Error::invalid("sysctl", format!("bad key {key:?}")));
    }
    Ok(PathBuf::from(format!(
        "/proc/sys/net/ipv6/conf/{iface}/{key}"
    )))
}

/// Reads a sysctl file (trimmed).
pub fn read(path: &std::path::Path) -> Result<String> {
    fs::read_to_string(path)
        .map(|s| s.trim().to_owned())
        .map_err(|e| Error::io("read sysctl", path.display().to_string(), e))
}

/// Writes a sysctl file and returns the value it had before.
pub fn write(path: &std::path::Path, value: &str) -> Result<String> {
    let old = read(path)?;
    fs::write(path, value)
        .map_err(|e| Error::io("write sysctl", format!("{} = {value}", path.display()), e))?;
    Ok(old)
}

/// Sets `net.ipv6.conf.<iface>.<key>`; returns the previous value.
pub fn set_ipv6_conf(iface: &str, key: &str, value: &str) -> Result<String> {
    write(&ipv6_conf_path(iface, key)?, value)
}

/// `net.ipv6.conf.<iface>.forwarding`. Setting it on `all` switches every interface and
/// makes the host a router (it then ignores Router Advertisements unless `accept_ra` = 2).
pub fn set_forwarding(iface: &str, on: bool) -> Result<String> {
    set_ipv6_conf(iface, "forwarding", if on { "1" } else { "0" })
}

/// `net.ipv6.conf.<iface>.proxy_ndp`: answer Neighbour Solicitations for the proxy entries of
/// that interface ([`crate::Netlink::add_proxy_neighbour`]).
pub fn set_proxy_ndp(iface: &str, on: bool) -> Result<String> {
    set_ipv6_conf(iface, "proxy_ndp", if on { "1" } else { "0" })
}

/// `net.ipv6.conf.<iface>.addr_gen_mode` = 1 (none): no automatic link-local address. Same
/// effect as [`crate::Netlink::set_addr_gen_mode_none`]; write it before the interface is up.
pub fn set_addr_gen_mode_none(iface: &str) -> Result<String> {
    set_ipv6_conf(iface, "addr_gen_mode", "1")
}
