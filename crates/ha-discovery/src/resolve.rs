//! The async half: the SRV and AAAA queries, through hickory-resolver on tokio.

use std::net::{Ipv6Addr, SocketAddr};
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError, NoRecords};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{Name, RData, RecordType};
use tracing::debug;

use crate::order::{Candidate, NotAvailable, RandomSource, SrvRecord, expand, order_srv};
use crate::{DiscoveryError, SERVICE_PREFIX};

/// Default time limit of one query to one server (hickory's default is 5 s).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);
/// Default number of attempts per query.
pub const DEFAULT_ATTEMPTS: usize = 2;

/// A resolver for home agent discovery: hickory's stub resolver, against given name servers
/// (UDP, TCP on truncation, no hosts file) or the system's `/etc/resolv.conf`. Its answer
/// cache lives as long as it does; make a new one to look again from scratch.
pub struct Discovery {
    resolver: TokioResolver,
}

impl std::fmt::Debug for Discovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Discovery").finish_non_exhaustive()
    }
}

impl Discovery {
    /// A resolver that asks `servers` in turn, or, when `servers` is empty, the name servers
    /// of `/etc/resolv.conf` (with its options), with [`DEFAULT_TIMEOUT`] per query and
    /// [`DEFAULT_ATTEMPTS`] attempts. Must be called inside a tokio runtime.
    pub fn new(servers: &[SocketAddr]) -> Result<Self, DiscoveryError> {
        Self::with_limits(servers, DEFAULT_TIMEOUT, DEFAULT_ATTEMPTS)
    }

    /// As [`Discovery::new`], with the time limit of one query to one server and the number of
    /// attempts.
    pub fn with_limits(
        servers: &[SocketAddr],
        timeout: Duration,
        attempts: usize,
    ) -> Result<Self, DiscoveryError> {
        let mut builder = if servers.is_empty() {
            TokioResolver::builder_tokio().map_err(|e| DiscoveryError::Config {
                reason: format!("/etc/resolv.conf: {e}"),
            })?
        } else {
            let name_servers = servers
                .iter()
                .map(|s| {
                    let mut udp = ConnectionConfig::udp();
                    udp.port = s.port();
                    let mut tcp = ConnectionConfig::tcp();
                    tcp.port = s.port();
                    NameServerConfig::new(s.ip(), true, vec![udp, tcp])
                })
                .collect();
            let mut b = TokioResolver::builder_with_config(
                ResolverConfig::from_name_servers(name_servers),
                TokioRuntimeProvider::default(),
            );
            b.options_mut().use_hosts_file = ResolveHosts::Never;
            b
        };
        let opts: &mut ResolverOpts = builder.options_mut();
        opts.timeout = timeout;
        opts.attempts = attempts.max(1);
        // Names are always absolute here (see `absolute`): no search list, no ndots.
        opts.ndots = 0;
        let resolver = builder.build().map_err(|e| DiscoveryError::Config {
            reason: e.to_string(),
        })?;
        Ok(Self { resolver })
    }

    /// Resolves `name` to home agent candidates in the order to try them (RFC 5026 §5):
    ///
    /// 1. a literal IPv6 address (`2001:db8::1`, also in brackets) is the one candidate;
    /// 2. SRV `_mip6._ipv6.<name>`: ordered per RFC 2782 ([`order_srv`], `rng` breaks weight
    ///    ties), each target's AAAA addresses in turn ([`expand`]); targets whose AAAA lookup
    ///    fails are skipped; a lone `.` target is [`DiscoveryError::NotAvailable`];
    /// 3. when the SRV name does not exist or has no SRV record: the AAAA records of `name`
    ///    itself (the home agent's own name, RFC 5026 §5.1).
    ///
    /// `name` is taken as absolute (a trailing `.` is added), so no search list applies.
    pub async fn resolve(
        &self,
        name: &str,
        rng: &mut (impl RandomSource + Send),
    ) -> Result<Vec<Candidate>, DiscoveryError> {
        if let Some(addr) = literal(name) {
            return Ok(vec![Candidate {
                addr,
                target: name.to_owned(),
                priority: 0,
                weight: 0,
            }]);
        }
        let fqdn = absolute(name)?;
        let service = format!("{SERVICE_PREFIX}.{fqdn}");
        let records = match self.srv(&service).await {
            Ok(r) => r,
            Err(Failure::NoRecords { .. }) => {
                debug!(%service, "no SRV record; falling back to the name's AAAA");
                Vec::new()
            }
            Err(f) => return Err(f.into_error(&service, "SRV")),
        };
        if records.is_empty() {
            let addrs = self
                .aaaa(&fqdn)
                .await
                .map_err(|f| f.into_error(&fqdn, "AAAA"))?;
            return Ok(addrs
                .into_iter()
                .map(|addr| Candidate {
                    addr,
                    target: fqdn.clone(),
                    priority: 0,
                    weight: 0,
                })
                .collect());
        }
        let ordered =
            order_srv(&records, rng).map_err(|NotAvailable| DiscoveryError::NotAvailable {
                name: service.clone(),
            })?;
        let mut found: Vec<(String, Vec<Ipv6Addr>)> = Vec::new();
        let mut failures: Vec<String> = Vec::new();
        for r in &ordered {
            if found.iter().any(|(t, _)| *t == r.target) {
                continue;
            }
            match self.aaaa(&r.target).await {
                Ok(a) => found.push((r.target.clone(), a)),
                Err(f) => {
                    let e = f.into_error(&r.target, "AAAA");
                    debug!(target = %r.target, error = %e, "SRV target skipped");
                    failures.push(e.to_string());
                    found.push((r.target.clone(), Vec::new()));
                }
            }
        }
        let candidates = expand(&ordered, |t| {
            found
                .iter()
                .find(|(n, _)| n == t)
                .map(|(_, a)| a.as_slice())
                .unwrap_or(&[])
        });
        if candidates.is_empty() {
            return Err(DiscoveryError::NoAddresses {
                name: service,
                failures,
            });
        }
        Ok(candidates)
    }

    async fn srv(&self, name: &str) -> Result<Vec<SrvRecord>, Failure> {
        let lookup = self
            .resolver
            .lookup(qname(name)?, RecordType::SRV)
            .await
            .map_err(Failure::from)?;
        Ok(lookup
            .answers()
            .iter()
            .filter_map(|r| match &r.data {
                RData::SRV(s) => Some(SrvRecord {
                    priority: s.priority,
                    weight: s.weight,
                    port: s.port,
                    target: s.target.to_ascii(),
                }),
                _ => None,
            })
            .collect())
    }

    async fn aaaa(&self, name: &str) -> Result<Vec<Ipv6Addr>, Failure> {
        let lookup = self
            .resolver
            .lookup(qname(name)?, RecordType::AAAA)
            .await
            .map_err(Failure::from)?;
        let addrs: Vec<Ipv6Addr> = lookup
            .answers()
            .iter()
            .filter_map(|r| match &r.data {
                RData::AAAA(a) => Some(a.0),
                _ => None,
            })
            .collect();
        if addrs.is_empty() {
            // E.g. a CNAME without the AAAA at its end.
            return Err(Failure::NoRecords { nxdomain: false });
        }
        Ok(addrs)
    }
}

/// Resolves `name` to home agent candidates with a fresh [`Discovery`] against `servers`
/// (empty: `/etc/resolv.conf`); see [`Discovery::resolve`].
pub async fn resolve_home_agents(
    name: &str,
    servers: &[SocketAddr],
    rng: &mut (impl RandomSource + Send),
) -> Result<Vec<Candidate>, DiscoveryError> {
    if let Some(addr) = literal(name) {
        // No resolver (nor /etc/resolv.conf) needed for a literal.
        return Ok(vec![Candidate {
            addr,
            target: name.to_owned(),
            priority: 0,
            weight: 0,
        }]);
    }
    Discovery::new(servers)?.resolve(name, rng).await
}

/// The query name; relaxed, so that an underscore inside a label (`ha_1.example.`) is taken as
/// zone files take it.
fn qname(name: &str) -> Result<Name, Failure> {
    Name::from_str_relaxed(name).map_err(|e| Failure::Other(format!("bad name: {e}")))
}

/// A literal IPv6 address, bare or in brackets.
fn literal(name: &str) -> Option<Ipv6Addr> {
    let s = name
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or(name);
    s.parse().ok()
}

/// `name` with a trailing dot, checked to be a domain name.
fn absolute(name: &str) -> Result<String, DiscoveryError> {
    let invalid = |reason: &str| DiscoveryError::InvalidName {
        name: name.to_owned(),
        reason: reason.to_owned(),
    };
    let body = name.strip_suffix('.').unwrap_or(name);
    if body.is_empty() {
        return Err(invalid("empty name"));
    }
    if body.len() > 253 {
        return Err(invalid("longer than 253 characters"));
    }
    if body.split('.').any(|l| l.is_empty() || l.len() > 63) {
        return Err(invalid("empty label or label over 63 characters"));
    }
    if body
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '\\')
    {
        return Err(invalid("whitespace, control character or backslash"));
    }
    Ok(format!("{body}."))
}

/// A failed query, before the name is attached.
enum Failure {
    /// NXDOMAIN (`nxdomain`) or NOERROR without records of the type (NODATA).
    NoRecords { nxdomain: bool },
    /// No answer in time from any server.
    Timeout,
    /// An error response code (SERVFAIL, REFUSED, …).
    Response(ResponseCode),
    /// Anything else (I/O, protocol).
    Other(String),
}

impl From<NetError> for Failure {
    fn from(e: NetError) -> Self {
        match e {
            NetError::Dns(DnsError::NoRecordsFound(NoRecords { response_code, .. })) => {
                Self::NoRecords {
                    nxdomain: response_code == ResponseCode::NXDomain,
                }
            }
            NetError::Dns(DnsError::ResponseCode(code)) => Self::Response(code),
            NetError::Timeout => Self::Timeout,
            other => Self::Other(other.to_string()),
        }
    }
}

impl Failure {
    fn into_error(self, name: &str, rtype: &'static str) -> DiscoveryError {
        let name = name.to_owned();
        match self {
            Self::NoRecords { nxdomain: true } => DiscoveryError::NxDomain { name },
            Self::NoRecords { nxdomain: false } if rtype == "AAAA" => {
                DiscoveryError::NoAaaa { name }
            }
            Self::NoRecords { nxdomain: false } => DiscoveryError::Query {
                name,
                rtype,
                reason: "no records of that type".to_owned(),
            },
            Self::Timeout => DiscoveryError::Timeout { name, rtype },
            Self::Response(code) => DiscoveryError::Query {
                name,
                rtype,
                reason: format!("server answered {code}"),
            },
            Self::Other(reason) => DiscoveryError::Query {
                name,
                rtype,
                reason,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_and_names() {
        let a: Ipv6Addr = "2001:db8::1".parse().unwrap();
        assert_eq!(literal("2001:db8::1"), Some(a));
        assert_eq!(literal("[2001:db8::1]"), Some(a));
        assert_eq!(literal("example."), None);
        assert_eq!(absolute("example").unwrap(), "example.");
        assert_eq!(absolute("ha.example.").unwrap(), "ha.example.");
        for bad in ["", ".", "a..b", "a b.", &format!("{}.", "x".repeat(64))] {
            assert!(
                matches!(absolute(bad), Err(DiscoveryError::InvalidName { .. })),
                "{bad:?}"
            );
        }
    }

    #[tokio::test]
    async fn literal_short_circuits_without_a_resolver() {
        let mut rng = |b: &mut [u8]| b.fill(0);
        let c = resolve_home_agents("[2001:db8:1::1]", &[], &mut rng)
            .await
            .unwrap();
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].addr, "2001:db8:1::1".parse::<Ipv6Addr>().unwrap());
        assert_eq!(c[0].target, "[2001:db8:1::1]");
    }

    #[test]
    fn errors_name_the_name_and_the_failure() {
        let e = Failure::NoRecords { nxdomain: true }.into_error("_mip6._ipv6.x.", "SRV");
        assert_eq!(
            e.to_string(),
            "_mip6._ipv6.x.: NXDOMAIN (the name does not exist)"
        );
        let e = Failure::NoRecords { nxdomain: false }.into_error("ha.x.", "AAAA");
        assert_eq!(e.to_string(), "ha.x.: no AAAA record");
        let e = Failure::Timeout.into_error("ha.x.", "AAAA");
        assert_eq!(e.to_string(), "ha.x.: AAAA query timed out");
        let e = Failure::Response(ResponseCode::ServFail).into_error("x.", "SRV");
        assert!(
            e.to_string()
                .starts_with("x.: SRV query failed: server answered"),
            "{e}"
        );
    }
}
