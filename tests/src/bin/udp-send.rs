//! `udp-send`: sends UDP datagrams given in hex, one per argument, from `--from ADDR` to
//! `--to ADDR --port N` (for feeding hostile input to a daemon in the lab). With `--raw`, each
//! argument is a whole IPv6 packet (header included) sent through a raw socket
//! (`IPPROTO_RAW`) towards `--to`, e.g. a Mobility Header with a Home Address option and no
//! ESP.
//!
//! ```text
//! udp-send --from 2001:db8:1::2 --to 2001:db8:1::1 --port 547 0d00 0c00ff…
//! udp-send --raw --to 2001:db8:ff::1 6000000000203c40…
//! ```

use std::net::{Ipv6Addr, SocketAddr, UdpSocket};
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (mut from, mut to, mut port, mut payloads) = (None, None, None, Vec::new());
    let mut raw = false;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--raw" => raw = true,
            "--from" => from = args.next().and_then(|s| s.parse::<Ipv6Addr>().ok()),
            "--to" => to = args.next().and_then(|s| s.parse::<Ipv6Addr>().ok()),
            "--port" => port = args.next().and_then(|s| s.parse::<u16>().ok()),
            hex => match hex::decode(hex) {
                Ok(p) => payloads.push(p),
                Err(e) => {
                    eprintln!("udp-send: {hex:?} is not hex: {e}");
                    return ExitCode::FAILURE;
                }
            },
        }
    }
    if raw {
        let Some(to) = to else {
            eprintln!("usage: udp-send --raw --to ADDR HEX...");
            return ExitCode::FAILURE;
        };
        return send_raw(to, &payloads);
    }
    let (Some(from), Some(to), Some(port)) = (from, to, port) else {
        eprintln!("usage: udp-send --from ADDR --to ADDR --port N HEX...");
        return ExitCode::FAILURE;
    };
    let sock = match UdpSocket::bind(SocketAddr::from((from, 0))) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("udp-send: bind [{from}]:0: {e}");
            return ExitCode::FAILURE;
        }
    };
    for p in &payloads {
        if let Err(e) = sock.send_to(p, SocketAddr::from((to, port))) {
            eprintln!("udp-send: to [{to}]:{port}: {e}");
            return ExitCode::FAILURE;
        }
    }
    println!("sent {}", payloads.len());
    ExitCode::SUCCESS
}

/// Whole IPv6 packets through an `IPPROTO_RAW` socket (the kernel sends the header as given).
fn send_raw(to: Ipv6Addr, packets: &[Vec<u8>]) -> ExitCode {
    use socket2::{Domain, Protocol, SockAddr, Socket, Type};
    let sock = match Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::from(255))) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("udp-send: raw socket: {e}");
            return ExitCode::FAILURE;
        }
    };
    let dst = SockAddr::from(SocketAddr::from((to, 0)));
    for p in packets {
        if let Err(e) = sock.send_to(p, &dst) {
            eprintln!("udp-send: raw to {to}: {e}");
            return ExitCode::FAILURE;
        }
    }
    println!("sent {}", packets.len());
    ExitCode::SUCCESS
}
