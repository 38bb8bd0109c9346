//! `relay-kea`: drives the `dhcp6-relay` engine against a real DHCPv6 server for one Solicit
//! with Rapid Commit, as if it came out of tunnel 42 (identity `mn@example`, inner source
//! `fe80::1`). Run it inside the home agent's namespace; it binds `[--bind]:547`, sends the
//! engine's Relay-Forw to `[--server]:547` (again every second), feeds the Relay-Repl back to
//! the engine and prints one `key value…` line each:
//!
//! ```text
//! delivery tunnel 42 dst fe80::1 port 546 type 7 xid 0a0b0c
//! lease identity mn@example address 2001:db8:1::1a0 valid 4000
//! event lease-bound tunnel 42 address 2001:db8:1::1a0
//! replay-after-reopen stale-interface-id
//! ```
//!
//! Options: `--bind ADDR --server ADDR --duid HEX --iaid N [--timeout-ms N]`. Exit status 0 on a
//! delivery, 1 otherwise.

use std::net::{Ipv6Addr, SocketAddr, UdpSocket};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use dhcp6_relay::{Config, Drop, Event, Relay, TunnelId};
use dhcproto::v6::{DhcpOption, DhcpOptions, IANA, Message, MessageType};
use dhcproto::{Decodable, Decoder, Encodable};
use interop_tests::dhcp6;

const PEER: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);
const TUNNEL: TunnelId = TunnelId(42);
const IDENTITY: &str = "mn@example";

struct Args {
    bind: Ipv6Addr,
    server: Ipv6Addr,
    duid: Vec<u8>,
    iaid: u32,
    timeout: Duration,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        bind: "2001:db8:1::1".parse().expect("literal"),
        server: "2001:db8:1::2".parse().expect("literal"),
        duid: vec![0, 3, 0, 1, 2, 0, 0, 0, 0, 3],
        iaid: 3,
        timeout: Duration::from_secs(5),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let addr = |v: &str| {
            v.parse::<Ipv6Addr>()
                .map_err(|e| format!("{flag} {v}: {e}"))
        };
        match flag.as_str() {
            "--bind" => a.bind = addr(&value)?,
            "--server" => a.server = addr(&value)?,
            "--duid" => a.duid = dhcp6::unhex(&value)?,
            "--iaid" => a.iaid = value.parse().map_err(|e| format!("--iaid {value}: {e}"))?,
            "--timeout-ms" => {
                a.timeout =
                    Duration::from_millis(value.parse().map_err(|e| format!("--timeout-ms: {e}"))?);
            }
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    Ok(a)
}

fn solicit(duid: &[u8], iaid: u32) -> Result<Vec<u8>, String> {
    let mut m = Message::new_with_id(MessageType::Solicit, [0x0a, 0x0b, 0x0c]);
    let o = m.opts_mut();
    o.insert(DhcpOption::ClientId(duid.to_vec()));
    o.insert(DhcpOption::IANA(IANA {
        id: iaid,
        t1: 0,
        t2: 0,
        opts: DhcpOptions::new(),
    }));
    o.insert(DhcpOption::ElapsedTime(0));
    o.insert(DhcpOption::RapidCommit);
    m.to_vec().map_err(|e| format!("encode Solicit: {e}"))
}

fn run() -> Result<(), String> {
    let a = parse_args()?;
    let sock = UdpSocket::bind(SocketAddr::from((a.bind, 547)))
        .map_err(|e| format!("bind [{}]:547: {e}", a.bind))?;
    let mut config = Config::new(a.bind);
    config.servers = vec![a.server];
    config.max_tunnels = 8;
    config.nonce_seed = 0x5eed;
    let mut relay = Relay::new(config);
    relay
        .open_tunnel(TUNNEL, IDENTITY.to_owned())
        .map_err(|e| e.to_string())?;
    let msg = solicit(&a.duid, a.iaid)?;
    let transmits = relay
        .handle_client(Instant::now(), TUNNEL, PEER, &msg)
        .map_err(|e| format!("relay refused the Solicit: {e}"))?;

    let deadline = Instant::now() + a.timeout;
    let mut buf = [0u8; 4096];
    let (delivery, repl) = 'outer: loop {
        if Instant::now() >= deadline {
            return Err("no Relay-Repl before the deadline".into());
        }
        for t in &transmits {
            sock.send_to(&t.payload, t.dst)
                .map_err(|e| format!("send to {}: {e}", t.dst))?;
        }
        let resend_at = (Instant::now() + Duration::from_secs(1)).min(deadline);
        while let Some(left) = resend_at
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
        {
            sock.set_read_timeout(Some(left))
                .map_err(|e| e.to_string())?;
            let (n, from) = match sock.recv_from(&mut buf) {
                Ok(r) => r,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    break;
                }
                Err(e) => return Err(format!("recv: {e}")),
            };
            match relay.handle_server(Instant::now(), from, &buf[..n]) {
                Ok(d) => break 'outer (d, buf[..n].to_vec()),
                Err(e) => eprintln!("dropped {n} bytes from {from}: {e}"),
            }
        }
    };
    let inner = Message::decode(&mut Decoder::new(&delivery.payload))
        .map_err(|e| format!("delivered payload: {e}"))?;
    let xid = inner.xid();
    println!(
        "delivery tunnel {} dst {} port {} type {} xid {:02x}{:02x}{:02x}",
        delivery.tunnel.0,
        delivery.dst,
        delivery.dst_port,
        u8::from(inner.msg_type()),
        xid[0],
        xid[1],
        xid[2]
    );
    let now = Instant::now();
    for l in relay.leases() {
        println!(
            "lease identity {} address {} valid {}",
            l.identity,
            l.address,
            l.valid_until.saturating_duration_since(now).as_secs() + 1
        );
    }
    while let Some(e) = relay.poll_event() {
        if let Event::LeaseBound {
            tunnel, address, ..
        } = e
        {
            println!("event lease-bound tunnel {} address {address}", tunnel.0);
        }
    }
    // The same Relay-Repl after the tunnel id was closed and reused: refused.
    relay.close_tunnel(TUNNEL);
    relay
        .open_tunnel(TUNNEL, "someone-else".to_owned())
        .map_err(|e| e.to_string())?;
    let server = SocketAddr::from((a.server, 547));
    match relay.handle_server(Instant::now(), server, &repl) {
        Err(d @ Drop::StaleInterfaceId(_)) => println!("replay-after-reopen {}", d.kind()),
        other => println!("replay-after-reopen unexpected {other:?}"),
    }
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("relay-kea: {e}");
            ExitCode::FAILURE
        }
    }
}
