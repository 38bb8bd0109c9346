//! `ha-discovery-probe`: one home agent discovery (RFC 5026 §5) through the `ha-discovery`
//! crate, for the BIND interop test. Run it inside a lab namespace
//! (`ip netns exec <lab>-ha ha-discovery-probe …`). It prints one line per candidate, in the
//! order to try them, then the time taken:
//!
//! ```text
//! candidate 2001:db8:1::1 target ha1.example. priority 10 weight 0
//! candidate 2001:db8:1::3 target ha2.example. priority 20 weight 0
//! elapsed-ms 3
//! ```
//!
//! or, when discovery fails, `error <kind> <message>` (kind: `nxdomain`, `no-aaaa`,
//! `not-available`, `no-addresses`, `timeout`, `query`, `invalid-name`, `config`) and
//! `elapsed-ms`.
//!
//! Usage: `ha-discovery-probe [--server [ADDR]:PORT]… [--seed N] [--timeout-ms N]
//! [--attempts N] NAME`. Without `--server` the namespace's `/etc/resolv.conf` is used. The
//! weighted choice among SRV records of one priority uses an xorshift generator seeded with
//! `--seed` (default 1). Exit status 0 when candidates were found, 1 when discovery failed,
//! 2 on usage errors.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use ha_discovery::{DEFAULT_ATTEMPTS, DEFAULT_TIMEOUT, Discovery, DiscoveryError};

struct Args {
    servers: Vec<SocketAddr>,
    seed: u64,
    timeout: Duration,
    attempts: usize,
    name: String,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        servers: Vec::new(),
        seed: 1,
        timeout: DEFAULT_TIMEOUT,
        attempts: DEFAULT_ATTEMPTS,
        name: String::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        if !arg.starts_with("--") {
            if !a.name.is_empty() {
                return Err(format!("a second name {arg:?}"));
            }
            a.name = arg;
            continue;
        }
        let value = it.next().ok_or_else(|| format!("{arg} needs a value"))?;
        let bad = |e: &dyn std::fmt::Display| format!("{arg} {value}: {e}");
        match arg.as_str() {
            "--server" => a.servers.push(value.parse().map_err(|e| bad(&e))?),
            "--seed" => a.seed = value.parse().map_err(|e| bad(&e))?,
            "--timeout-ms" => {
                a.timeout = Duration::from_millis(value.parse().map_err(|e| bad(&e))?);
            }
            "--attempts" => a.attempts = value.parse().map_err(|e| bad(&e))?,
            _ => return Err(format!("unknown option {arg}")),
        }
    }
    if a.name.is_empty() {
        return Err("no name given".into());
    }
    Ok(a)
}

fn kind(e: &DiscoveryError) -> &'static str {
    match e {
        DiscoveryError::NxDomain { .. } => "nxdomain",
        DiscoveryError::NoAaaa { .. } => "no-aaaa",
        DiscoveryError::NotAvailable { .. } => "not-available",
        DiscoveryError::NoAddresses { .. } => "no-addresses",
        DiscoveryError::Timeout { .. } => "timeout",
        DiscoveryError::Query { .. } => "query",
        DiscoveryError::InvalidName { .. } => "invalid-name",
        DiscoveryError::Config { .. } => "config",
        _ => "other",
    }
}

fn main() -> ExitCode {
    let a = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("ha-discovery-probe: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ha-discovery-probe: tokio runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let mut s = a.seed | 1;
    let mut rng = move |buf: &mut [u8]| {
        for b in buf {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            *b = (s >> 24) as u8;
        }
    };
    let started = Instant::now();
    let result = rt.block_on(async {
        let d = Discovery::with_limits(&a.servers, a.timeout, a.attempts)?;
        d.resolve(&a.name, &mut rng).await
    });
    let elapsed = started.elapsed().as_millis();
    match result {
        Ok(candidates) => {
            for c in candidates {
                println!(
                    "candidate {} target {} priority {} weight {}",
                    c.addr, c.target, c.priority, c.weight
                );
            }
            println!("elapsed-ms {elapsed}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("error {} {e}", kind(&e));
            println!("elapsed-ms {elapsed}");
            ExitCode::FAILURE
        }
    }
}
