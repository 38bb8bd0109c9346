//! `udp-send`: sends UDP datagrams given in hex, one per argument, from `--from ADDR` to
//! `--to ADDR --port N` (for feeding hostile input to a daemon in the lab).
//!
//! ```text
//! udp-send --from 2001:db8:1::2 --to 2001:db8:1::1 --port 547 0d00 0c00ff…
//! ```

use std::net::{Ipv6Addr, SocketAddr, UdpSocket};
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (mut from, mut to, mut port, mut payloads) = (None, None, None, Vec::new());
    while let Some(a) = args.next() {
        match a.as_str() {
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
