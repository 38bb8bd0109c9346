//! `dhcp6-client-kea`: drives the sans-IO `dhcp6-client` engine against Kea from the home
//! agent's namespace, wrapping each client message in a Relay-forward (as the HA's relay
//! does) and feeding the Relay-reply's inner message back. It runs Solicit → Advertise →
//! Request → Reply, then Release, and prints one `key value…` line per event:
//!
//! ```text
//! bound address 2001:db8:1::100 preferred 3000 valid 4000 t1 1000 t2 2000 server-id 0001…
//! fqdn flags S=1 O=0 N=0 name mn1.example.
//! released
//! ```
//!
//! The `fqdn` line reports the server's Client FQDN option (RFC 4704) in the Reply, when it
//! sent one or `--fqdn` was given (`fqdn none` then means the Reply had none).
//!
//! Options: `--bind ADDR --server ADDR --link ADDR --peer ADDR --duid HEX --iaid N
//! [--rapid-commit] [--fqdn NAME] [--hold-ms N] [--timeout-ms N]`. `--hold-ms` keeps the
//! lease that long before the Release (default 0), e.g. for a DNS check meanwhile. Exit status
//! 0 when bound and released.

use std::net::{Ipv6Addr, SocketAddr, UdpSocket};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use dhcp6_client::{Client, ClientConfig, Event};
use interop_tests::dhcp6::{self, RELAY_REPL, RelayMsg};

struct Args {
    bind: Ipv6Addr,
    server: Ipv6Addr,
    link: Ipv6Addr,
    peer: Ipv6Addr,
    duid: Vec<u8>,
    iaid: u32,
    rapid_commit: bool,
    fqdn: Option<String>,
    hold: Duration,
    timeout: Duration,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        bind: "2001:db8:1::1".parse().expect("literal"),
        server: "2001:db8:1::2".parse().expect("literal"),
        link: "2001:db8:1::1".parse().expect("literal"),
        peer: "fe80::1".parse().expect("literal"),
        duid: vec![0, 3, 0, 1, 2, 0, 0, 0, 0, 1],
        iaid: 1,
        rapid_commit: false,
        fqdn: None,
        hold: Duration::ZERO,
        timeout: Duration::from_secs(20),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--rapid-commit" {
            a.rapid_commit = true;
            continue;
        }
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let addr = |v: &str| {
            v.parse::<Ipv6Addr>()
                .map_err(|e| format!("{flag} {v}: {e}"))
        };
        match flag.as_str() {
            "--bind" => a.bind = addr(&value)?,
            "--server" => a.server = addr(&value)?,
            "--link" => a.link = addr(&value)?,
            "--peer" => a.peer = addr(&value)?,
            "--duid" => a.duid = dhcp6::unhex(&value)?,
            "--iaid" => a.iaid = value.parse().map_err(|e| format!("--iaid {value}: {e}"))?,
            "--fqdn" => a.fqdn = Some(value),
            "--hold-ms" => {
                a.hold =
                    Duration::from_millis(value.parse().map_err(|e| format!("--hold-ms: {e}"))?);
            }
            "--timeout-ms" => {
                a.timeout =
                    Duration::from_millis(value.parse().map_err(|e| format!("--timeout-ms: {e}"))?);
            }
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    Ok(a)
}

fn rng() -> impl FnMut(&mut [u8]) + Send + 'static {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1);
    let mut s = nanos ^ (u64::from(std::process::id()) << 32) | 1;
    move |buf: &mut [u8]| {
        for b in buf {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            *b = (s >> 24) as u8;
        }
    }
}

fn run() -> Result<(), String> {
    let a = parse_args()?;
    let sock = UdpSocket::bind(SocketAddr::from((a.bind, 547)))
        .map_err(|e| format!("bind [{}]:547: {e}", a.bind))?;
    let server = SocketAddr::from((a.server, 547));
    let config = ClientConfig {
        duid: a.duid.clone(),
        iaid: a.iaid,
        rapid_commit: a.rapid_commit,
        fqdn: a.fqdn.clone(),
        oro: Vec::new(),
        hint: None,
    };
    let mut client = Client::new(config, rng()).map_err(|e| e.to_string())?;
    let deadline = Instant::now() + a.timeout + a.hold;
    client.start(Instant::now());
    let mut released = false;
    let mut release_at: Option<Instant> = None;
    let mut buf = [0u8; 4096];
    while !released {
        while let Some(msg) = client.poll_transmit() {
            let forw = dhcp6::relay_forw(a.link, a.peer, None, &msg);
            sock.send_to(&forw, server)
                .map_err(|e| format!("send to {server}: {e}"))?;
        }
        while let Some(ev) = client.poll_event() {
            match ev {
                Event::Bound {
                    address,
                    preferred,
                    valid,
                    t1,
                    t2,
                    server_id,
                    fqdn,
                    ..
                } => {
                    println!(
                        "bound address {address} preferred {} valid {} t1 {} t2 {} server-id {}",
                        preferred.as_secs(),
                        valid.as_secs(),
                        t1.as_secs(),
                        t2.as_secs(),
                        dhcp6::hex(&server_id)
                    );
                    match fqdn {
                        Some(f) => println!("fqdn flags {} name {}", f.flags, f.name),
                        None if a.fqdn.is_some() => println!("fqdn none"),
                        None => {}
                    }
                    release_at.get_or_insert(Instant::now() + a.hold);
                }
                Event::Released => {
                    println!("released");
                    released = true;
                }
                other => println!("event {other:?}"),
            }
        }
        if released {
            break;
        }
        if let Some(at) = release_at
            && Instant::now() >= at
        {
            client.release(Instant::now()).map_err(|e| e.to_string())?;
            release_at = None;
            continue;
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(format!("timed out in state {}", client.state()));
        }
        let mut wake = client.poll_timeout().unwrap_or(deadline).min(deadline);
        if let Some(at) = release_at {
            wake = wake.min(at);
        }
        let left = wake
            .saturating_duration_since(now)
            .max(Duration::from_millis(1));
        sock.set_read_timeout(Some(left))
            .map_err(|e| e.to_string())?;
        match sock.recv_from(&mut buf) {
            Ok((n, from)) => match RelayMsg::parse(&buf[..n]) {
                Ok(r) if r.msg_type == RELAY_REPL => {
                    if let Some(inner) = r.option(dhcp6::OPT_RELAY_MSG)
                        && let Err(e) = client.handle_message(Instant::now(), inner)
                    {
                        eprintln!("client dropped message: {e}");
                    }
                }
                Ok(r) => eprintln!("ignoring message type {} from {from}", r.msg_type),
                Err(e) => eprintln!("ignoring {n} bytes from {from}: {e}"),
            },
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(format!("recv: {e}")),
        }
        client.handle_timeout(Instant::now());
    }
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dhcp6-client-kea: {e}");
            ExitCode::FAILURE
        }
    }
}
