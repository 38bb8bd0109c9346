//! Home agent discovery by DNS for the mobile node (RFC 5026 §5, the split-scenario
//! bootstrapping the draft refers to in its §1).
//!
//! RFC 5026 §5 gives two lookups:
//! - **by service name** (§5.2): the SRV records of `_mip6._ipv6.<domain>` (RFC 2782 form:
//!   service `mip6`, protocol `ipv6`), ordered by priority and weight, then each target's
//!   AAAA records;
//! - **by home agent name** (§5.1): the AAAA records of a configured home agent name.
//!
//! [`Discovery::resolve`] (or [`resolve_home_agents`]) tries the first and falls back to the
//! second when the SRV name does not exist or holds no SRV record, so `home_agent` may be
//! either a domain with SRV records or a home agent's own name; a literal IPv6 address is
//! returned as is. The result is the list of [`Candidate`]s in the order to try them: the
//! mobile node moves to the next one when a home agent does not answer.
//!
//! The crate is split like the protocol crates (shared/style.md §2):
//! - [`order`]: sans-IO, no clock, randomness passed in. [`order_srv`] implements RFC 2782's
//!   usage rules (lowest priority first; within a priority the weighted random selection by
//!   running sums, weight-0 records first in the list so they are picked only with
//!   probability 1/(sum+1); a lone `.` target means "decidedly not available");
//!   [`expand`] turns ordered records into addresses.
//! - [`resolve`]: the queries, through hickory-resolver (tokio; UDP with TCP on truncation;
//!   no DNSSEC, no DNS over TLS/HTTPS) against given name servers or `/etc/resolv.conf`.
//!
//! Left out: the DHCPv6 Home Network Information options (RFC 6610), the DNS update of the
//! mobile node's own name (done by the home agent or by the DHCPv6 server, RFC 5026 §6 / RFC
//! 4704), and DNSSEC validation of the answers.
//!
//! ```no_run
//! # async fn f() -> Result<(), ha_discovery::DiscoveryError> {
//! let servers = ["[2001:db8:1::2]:53".parse().unwrap()];
//! let mut rng = |buf: &mut [u8]| buf.fill(4); // use a real random source
//! for c in ha_discovery::resolve_home_agents("example.", &servers, &mut rng).await? {
//!     println!("{} ({} priority {} weight {})", c.addr, c.target, c.priority, c.weight);
//! }
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod order;
pub mod resolve;

pub use order::{Candidate, NotAvailable, RandomSource, SrvRecord, expand, order_srv};
pub use resolve::{DEFAULT_ATTEMPTS, DEFAULT_TIMEOUT, Discovery, resolve_home_agents};

/// The labels before the domain in the SRV owner name (RFC 5026 §5.2: service `mip6`, protocol
/// `ipv6`, in RFC 2782's `_Service._Proto.Name` form).
pub const SERVICE_PREFIX: &str = "_mip6._ipv6";

/// Why discovery failed. Each variant names the DNS name concerned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DiscoveryError {
    /// The configured name is not a domain name.
    #[error("{name:?} is not a domain name: {reason}")]
    InvalidName {
        /// As configured.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The resolver could not be set up (e.g. `/etc/resolv.conf` unreadable).
    #[error("resolver configuration: {reason}")]
    Config {
        /// The error.
        reason: String,
    },
    /// The name does not exist (NXDOMAIN).
    #[error("{name}: NXDOMAIN (the name does not exist)")]
    NxDomain {
        /// The name queried.
        name: String,
    },
    /// The name exists but has no AAAA record.
    #[error("{name}: no AAAA record")]
    NoAaaa {
        /// The name queried.
        name: String,
    },
    /// The SRV records say the service is not offered (a lone `.` target, RFC 2782).
    #[error("{name}: SRV target \".\", the service is not available at this domain")]
    NotAvailable {
        /// The SRV owner name.
        name: String,
    },
    /// SRV records exist, but none of their targets has an AAAA address.
    #[error("{name}: no SRV target has an AAAA address ({})", failures.join("; "))]
    NoAddresses {
        /// The SRV owner name.
        name: String,
        /// What each target's lookup gave.
        failures: Vec<String>,
    },
    /// No server answered in time.
    #[error("{name}: {rtype} query timed out")]
    Timeout {
        /// The name queried.
        name: String,
        /// The record type queried.
        rtype: &'static str,
    },
    /// Any other failure of a query (SERVFAIL, REFUSED, I/O).
    #[error("{name}: {rtype} query failed: {reason}")]
    Query {
        /// The name queried.
        name: String,
        /// The record type queried.
        rtype: &'static str,
        /// The resolver's error.
        reason: String,
    },
}
