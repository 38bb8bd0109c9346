//! `dns-update-probe`: one DNS UPDATE through the sans-IO `dns-update` engine over a UDP
//! socket, for the BIND interop test. Run it inside a lab namespace
//! (`ip netns exec <lab>-ha dns-update-probe …`). It prints one `key value…` line each:
//!
//! ```text
//! outcome done            (done | refused | timeout | bad-response)
//! detail NOERROR          (the outcome's Display)
//! rcode NOERROR           (refused only)
//! tsig-error BADSIG       (refused only: none or the TSIG error)
//! authenticated yes       (refused only)
//! elapsed-ms 2
//! stats transmissions 1 wrong-source 0 wrong-id 0 malformed 0 unauthenticated 0
//! ```
//!
//! Options: `--server ADDR` (`[ADDR]:PORT`, default `[2001:db8:1::2]:53`), `--zone Z`,
//! `--name FQDN`, `--op replace|delete`, `--addr A` (repeatable, for replace), `--ttl N`
//! (default 300); the key either from `--key-file PATH` (BIND's `tsig-keygen` format) with
//! optional `--key-name N`, or from `--key-name N --algorithm A --secret BASE64`;
//! `--timeout-ms N` (retransmission interval), `--tries N`, `--clock-offset S` (seconds added
//! to the wall clock for Time Signed: tests BADTIME), `--corrupt-response` (flip one bit of the
//! MAC of every received datagram before the engine sees it), `--dump` (also print `id`,
//! `time`, `request-hex`, `request-mac` and the last `response-hex`). Exit status 0 when an
//! outcome was reached (timeout included), 2 on usage, key or socket errors.

use std::fs::{self, File};
use std::io::{ErrorKind, Read};
use std::net::{SocketAddr, UdpSocket};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use dns_update::{Name, Outcome, Response, TsigKey, Update, UpdateConfig, UpdateRequest};

struct Args {
    server: SocketAddr,
    zone: String,
    name: String,
    op: String,
    addrs: Vec<std::net::Ipv6Addr>,
    ttl: u32,
    key_file: Option<String>,
    key_name: Option<String>,
    algorithm: Option<String>,
    secret: Option<String>,
    retransmit: Option<Duration>,
    tries: Option<u32>,
    clock_offset: i64,
    corrupt: bool,
    dump: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        server: "[2001:db8:1::2]:53".parse().expect("literal"),
        zone: String::new(),
        name: String::new(),
        op: "replace".into(),
        addrs: Vec::new(),
        ttl: 300,
        key_file: None,
        key_name: None,
        algorithm: None,
        secret: None,
        retransmit: None,
        tries: None,
        clock_offset: 0,
        corrupt: false,
        dump: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--corrupt-response" => {
                a.corrupt = true;
                continue;
            }
            "--dump" => {
                a.dump = true;
                continue;
            }
            _ => {}
        }
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = |e: &dyn std::fmt::Display| format!("{flag} {value}: {e}");
        match flag.as_str() {
            "--server" => a.server = value.parse().map_err(|e| bad(&e))?,
            "--zone" => a.zone = value,
            "--name" => a.name = value,
            "--op" => a.op = value,
            "--addr" => a.addrs.push(value.parse().map_err(|e| bad(&e))?),
            "--ttl" => a.ttl = value.parse().map_err(|e| bad(&e))?,
            "--key-file" => a.key_file = Some(value),
            "--key-name" => a.key_name = Some(value),
            "--algorithm" => a.algorithm = Some(value),
            "--secret" => a.secret = Some(value),
            "--timeout-ms" => {
                a.retransmit = Some(Duration::from_millis(value.parse().map_err(|e| bad(&e))?));
            }
            "--tries" => a.tries = Some(value.parse().map_err(|e| bad(&e))?),
            "--clock-offset" => a.clock_offset = value.parse().map_err(|e| bad(&e))?,
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    if a.zone.is_empty() || a.name.is_empty() {
        return Err("--zone and --name are required".into());
    }
    Ok(a)
}

fn key(a: &Args) -> Result<TsigKey, String> {
    if let Some(path) = &a.key_file {
        let text = fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
        return TsigKey::from_bind_file(&text, a.key_name.as_deref())
            .map_err(|e| format!("{path}: {e}"));
    }
    match (&a.key_name, &a.algorithm, &a.secret) {
        (Some(n), Some(alg), Some(s)) => {
            TsigKey::from_strings(n, alg, s).map_err(|e| e.to_string())
        }
        _ => Err("--key-file, or --key-name, --algorithm and --secret, are required".into()),
    }
}

fn random_id() -> u16 {
    let mut b = [0u8; 2];
    File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .expect("/dev/urandom");
    u16::from_be_bytes(b)
}

fn unix_time(offset: i64) -> u64 {
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    t.saturating_add_signed(offset)
}

fn run(a: Args) -> Result<(), String> {
    let key = key(&a)?;
    let zone = Name::from_ascii(&a.zone).map_err(|e| format!("--zone: {e}"))?;
    let name = Name::from_ascii(&a.name).map_err(|e| format!("--name: {e}"))?;
    let request = match a.op.as_str() {
        "replace" => UpdateRequest::replace_aaaa(zone, name, &a.addrs, a.ttl),
        "delete" => UpdateRequest::delete_aaaa(zone, name),
        other => return Err(format!("--op {other}: expected replace or delete")),
    }
    .map_err(|e| e.to_string())?;
    let mut config = UpdateConfig::new(a.server);
    if let Some(r) = a.retransmit {
        config.retransmit = r;
    }
    if let Some(n) = a.tries {
        config.tries = n;
    }
    let bind: SocketAddr = if a.server.is_ipv6() {
        "[::]:0".parse().expect("literal")
    } else {
        "0.0.0.0:0".parse().expect("literal")
    };
    let socket = UdpSocket::bind(bind).map_err(|e| format!("bind {bind}: {e}"))?;
    let started = Instant::now();
    let time_signed = unix_time(a.clock_offset);
    let mut up = Update::new(config, &request, &key, random_id(), started, time_signed);
    let mut out = Vec::new();
    let mut recv = vec![0u8; 65535];
    let mut last_response: Option<Vec<u8>> = None;
    let outcome = loop {
        let now = Instant::now();
        while let Some(t) = up.poll_transmit(now, &mut out) {
            if let Err(e) = socket.send_to(&out[..t.size], t.dst) {
                eprintln!("send to {}: {e}", t.dst);
            }
        }
        if let Some(o) = up.outcome() {
            break o.clone();
        }
        let wait = up
            .poll_timeout()
            .map_or(Duration::from_secs(1), |d| d.saturating_duration_since(now))
            .max(Duration::from_millis(1));
        socket
            .set_read_timeout(Some(wait))
            .map_err(|e| e.to_string())?;
        match socket.recv_from(&mut recv) {
            Ok((n, from)) => {
                let data = &mut recv[..n];
                last_response = Some(data.to_vec());
                if a.corrupt {
                    corrupt_mac(data);
                }
                up.handle_datagram(Instant::now(), from, data, unix_time(0));
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => eprintln!("recv: {e}"),
        }
        up.handle_timeout(Instant::now());
    };
    let elapsed = started.elapsed();
    match &outcome {
        Outcome::Done => println!("outcome done"),
        Outcome::Refused {
            rcode,
            tsig_error,
            authenticated,
        } => {
            println!("outcome refused");
            println!("rcode {rcode}");
            match tsig_error {
                Some(e) => println!("tsig-error {e}"),
                None => println!("tsig-error none"),
            }
            println!(
                "authenticated {}",
                if *authenticated { "yes" } else { "no" }
            );
        }
        Outcome::Timeout => println!("outcome timeout"),
        Outcome::BadResponse(_) => println!("outcome bad-response"),
        _ => println!("outcome other"),
    }
    println!("detail {outcome}");
    println!("elapsed-ms {}", elapsed.as_millis());
    let s = up.stats();
    println!(
        "stats transmissions {} wrong-source {} wrong-id {} malformed {} unauthenticated {}",
        s.transmissions, s.wrong_source, s.wrong_id, s.malformed, s.unauthenticated
    );
    if a.dump {
        println!("id {}", up.id());
        println!("time {time_signed}");
        println!("request-hex {}", hex::encode(up.request_bytes()));
        println!("request-mac {}", hex::encode(up.request_mac()));
        if let Some(r) = last_response {
            println!("response-hex {}", hex::encode(r));
        }
    }
    Ok(())
}

/// Flips the low bit of the first MAC octet of the TSIG record, if there is one with a MAC.
fn corrupt_mac(data: &mut [u8]) {
    let at = {
        let Ok(resp) = Response::parse(data) else {
            return;
        };
        match &resp.tsig {
            Some(t) if !t.mac.is_empty() => t.mac.as_ptr() as usize - data.as_ptr() as usize,
            _ => return,
        }
    };
    data[at] ^= 1;
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("dns-update-probe: {e}");
            return ExitCode::from(2);
        }
    };
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dns-update-probe: {e}");
            ExitCode::from(2)
        }
    }
}
