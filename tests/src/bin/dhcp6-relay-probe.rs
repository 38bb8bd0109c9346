//! `dhcp6-relay-probe`: acts as a DHCPv6 relay agent for one Solicit. Run it inside the home
//! agent's namespace (`ip netns exec <lab>-ha dhcp6-relay-probe …`); it sends a Relay-forward
//! from `[--bind]:547` to `[--server]:547` and prints what the Relay-reply carries, one
//! `key value…` line each, for the test to check:
//!
//! ```text
//! relay-repl link 2001:db8:1::1 peer fe80::1 interface-id 74756e31
//! inner type 2 xid 0a0b0c
//! server-id 000100012c…
//! iaaddr 2001:db8:1::100 preferred 3000 valid 4000
//! ```
//!
//! Options: `--bind ADDR --server ADDR --link ADDR --peer ADDR --duid HEX --iaid N
//! [--interface-id TEXT] [--rapid-commit] [--timeout-ms N]`. The Relay-forward is sent again
//! every second until an answer arrives. Exit status 0 on a Relay-reply, 1 otherwise.

use std::net::{Ipv6Addr, SocketAddr, UdpSocket};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use interop_tests::dhcp6::{self, ClientMsg, RELAY_REPL, RelayMsg};

struct Args {
    bind: Ipv6Addr,
    server: Ipv6Addr,
    link: Ipv6Addr,
    peer: Ipv6Addr,
    duid: Vec<u8>,
    iaid: u32,
    interface_id: Option<String>,
    rapid_commit: bool,
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
        interface_id: None,
        rapid_commit: false,
        timeout: Duration::from_secs(5),
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
            "--interface-id" => a.interface_id = Some(value),
            "--timeout-ms" => {
                a.timeout =
                    Duration::from_millis(value.parse().map_err(|e| format!("--timeout-ms: {e}"))?);
            }
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    Ok(a)
}

fn run() -> Result<(), String> {
    let a = parse_args()?;
    let sock = UdpSocket::bind(SocketAddr::from((a.bind, 547)))
        .map_err(|e| format!("bind [{}]:547: {e}", a.bind))?;
    let xid = [0x0a, 0x0b, 0x0c];
    let solicit = dhcp6::solicit(xid, &a.duid, a.iaid, a.rapid_commit);
    let forw = dhcp6::relay_forw(
        a.link,
        a.peer,
        a.interface_id.as_deref().map(str::as_bytes),
        &solicit,
    );
    let server = SocketAddr::from((a.server, 547));
    let deadline = Instant::now() + a.timeout;
    let mut buf = [0u8; 4096];
    loop {
        sock.send_to(&forw, server)
            .map_err(|e| format!("send to {server}: {e}"))?;
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
            let relay = match RelayMsg::parse(&buf[..n]) {
                Ok(r) if r.msg_type == RELAY_REPL => r,
                Ok(r) => {
                    eprintln!("ignoring message type {} from {from}", r.msg_type);
                    continue;
                }
                Err(e) => {
                    eprintln!("ignoring {n} bytes from {from}: {e}");
                    continue;
                }
            };
            print_reply(&relay)?;
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "no Relay-reply from {server} within {:?}",
                a.timeout
            ));
        }
    }
}

fn print_reply(relay: &RelayMsg) -> Result<(), String> {
    let iface = relay
        .option(dhcp6::OPT_INTERFACE_ID)
        .map(dhcp6::hex)
        .unwrap_or_else(|| "-".into());
    println!(
        "relay-repl link {} peer {} interface-id {iface}",
        relay.link, relay.peer
    );
    let inner = relay
        .option(dhcp6::OPT_RELAY_MSG)
        .ok_or("Relay-reply without a Relay Message option")?;
    let msg = ClientMsg::parse(inner)?;
    println!("inner type {} xid {}", msg.msg_type, dhcp6::hex(&msg.xid));
    if let Some(id) = msg.option(dhcp6::OPT_SERVERID) {
        println!("server-id {}", dhcp6::hex(id));
    }
    if let Some(id) = msg.option(dhcp6::OPT_CLIENTID) {
        println!("client-id {}", dhcp6::hex(id));
    }
    if msg.option(dhcp6::OPT_RAPID_COMMIT).is_some() {
        println!("rapid-commit");
    }
    if let Some(st) = msg.option(dhcp6::OPT_STATUS_CODE).filter(|s| s.len() >= 2) {
        let code = u16::from_be_bytes([st[0], st[1]]);
        println!("status {code} {}", String::from_utf8_lossy(&st[2..]));
    }
    for (addr, preferred, valid) in msg.ia_na_addresses() {
        println!("iaaddr {addr} preferred {preferred} valid {valid}");
    }
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dhcp6-relay-probe: {e}");
            ExitCode::FAILURE
        }
    }
}
