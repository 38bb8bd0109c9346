//! `radius-probe`: one Access-Request through the sans-IO `radius` client over a UDP socket, for
//! the FreeRADIUS interop test. Run it inside the home agent's namespace
//! (`ip netns exec <lab>-ha radius-probe …`). It prints one `key value…` line each:
//!
//! ```text
//! verdict accept
//! server [2001:db8:1::2]:1812
//! reply-message welcome mnuser
//! elapsed-ms 2
//! stats requests 1 transmissions 1 retransmissions 0 failovers 0 dropped 0 …
//! ```
//!
//! Options: `--server ADDR` (repeatable, in failover order; `ADDR` or `[ADDR]:PORT`),
//! `--secret S`, `--user U`, `--password P`, `--method chap|pap|chap-response`
//! (`chap-response`: the probe computes the CHAP response itself, as the mobile node would, and
//! hands the client only ident, response and challenge), `--bind ADDR` (default `[::]:0`),
//! `--nas-id TEXT`, `--nas-ipv6 ADDR`, `--timeout-ms N`, `--tries N`, `--no-require-ma` (accept
//! answers without Message-Authenticator). Exit status 0 when a verdict was reached (timeout
//! included), 2 on usage or socket errors. Randomness comes from `/dev/urandom`.

use std::fs::File;
use std::io::{ErrorKind, Read};
use std::net::{SocketAddr, UdpSocket};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use radius::{AccessRequest, Client, ClientConfig, Outcome, Password, SharedSecret};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Method {
    Chap,
    Pap,
    ChapResponse,
}

struct Args {
    servers: Vec<SocketAddr>,
    bind: SocketAddr,
    secret: String,
    user: String,
    password: String,
    method: Method,
    nas_id: Option<String>,
    nas_ipv6: Option<std::net::Ipv6Addr>,
    timeout: Option<Duration>,
    tries: Option<u32>,
    require_ma: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        servers: Vec::new(),
        bind: "[::]:0".parse().expect("literal"),
        secret: String::new(),
        user: String::new(),
        password: String::new(),
        method: Method::Chap,
        nas_id: None,
        nas_ipv6: None,
        timeout: None,
        tries: None,
        require_ma: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--no-require-ma" {
            a.require_ma = false;
            continue;
        }
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = |e: &dyn std::fmt::Display| format!("{flag} {value}: {e}");
        match flag.as_str() {
            "--server" => a
                .servers
                .push(radius::parse_server(&value).map_err(|e| bad(&e))?),
            "--bind" => {
                a.bind = match value.parse::<SocketAddr>() {
                    Ok(sa) => sa,
                    Err(_) => SocketAddr::new(value.parse().map_err(|e| bad(&e))?, 0),
                }
            }
            "--secret" => a.secret = value,
            "--user" => a.user = value,
            "--password" => a.password = value,
            "--method" => {
                a.method = match value.as_str() {
                    "chap" => Method::Chap,
                    "pap" => Method::Pap,
                    "chap-response" => Method::ChapResponse,
                    _ => return Err(bad(&"expected chap, pap or chap-response")),
                }
            }
            "--nas-id" => a.nas_id = Some(value),
            "--nas-ipv6" => a.nas_ipv6 = Some(value.parse().map_err(|e| bad(&e))?),
            "--timeout-ms" => {
                a.timeout = Some(Duration::from_millis(value.parse().map_err(|e| bad(&e))?));
            }
            "--tries" => a.tries = Some(value.parse().map_err(|e| bad(&e))?),
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    if a.servers.is_empty() || a.secret.is_empty() || a.user.is_empty() {
        return Err("--server, --secret and --user are required".into());
    }
    Ok(a)
}

fn urandom(buf: &mut [u8]) {
    File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(buf))
        .expect("/dev/urandom");
}

fn run(a: Args) -> Result<(), String> {
    let secret = SharedSecret::new(a.secret.as_bytes()).ok_or("empty secret")?;
    let mut config = ClientConfig::new(a.servers.clone(), secret);
    config.nas_identifier = a.nas_id.clone().or_else(|| Some("radius-probe".into()));
    config.nas_ipv6_address = a.nas_ipv6;
    config.allow_pap = a.method == Method::Pap;
    config.require_message_authenticator = a.require_ma;
    if let Some(t) = a.timeout {
        config.timeout = t;
    }
    if let Some(n) = a.tries {
        config.tries = n;
    }
    let mut client = Client::new(config, urandom).map_err(|e| e.to_string())?;
    let password = Password::new(a.password.as_bytes());
    let request = match a.method {
        Method::Chap => AccessRequest::chap(a.user.as_bytes(), password),
        Method::Pap => AccessRequest::pap(a.user.as_bytes(), password),
        Method::ChapResponse => {
            // What the mobile node does for XAUTH RADIUS-CHAP: ident and challenge come from
            // the home agent, the response from the node's password.
            let mut ident = [0u8; 1];
            let mut challenge = [0u8; 16];
            urandom(&mut ident);
            urandom(&mut challenge);
            let response = radius::chap_response(ident[0], password.expose(), &challenge);
            AccessRequest::chap_response(a.user.as_bytes(), ident[0], response, challenge)
        }
    };
    let socket = UdpSocket::bind(a.bind).map_err(|e| format!("bind {}: {e}", a.bind))?;
    let started = Instant::now();
    let handle = client.start(request).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    let mut recv = vec![0u8; 4096];
    let verdict = loop {
        let now = Instant::now();
        while let Some(t) = client.poll_transmit(now, &mut out) {
            if let Err(e) = socket.send_to(&out[..t.size], t.destination) {
                // A dead server must not end the probe: the client fails over on its timer.
                eprintln!("send to {}: {e}", t.destination);
            }
        }
        if let Some(v) = client.poll_event() {
            break v;
        }
        let wait = client
            .poll_timeout()
            .map_or(Duration::from_secs(1), |d| d.saturating_duration_since(now))
            .max(Duration::from_millis(1));
        socket
            .set_read_timeout(Some(wait))
            .map_err(|e| e.to_string())?;
        match socket.recv_from(&mut recv) {
            Ok((n, from)) => client.handle_datagram(Instant::now(), from, &recv[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => eprintln!("recv: {e}"),
        }
        client.handle_timeout(Instant::now());
    };
    let elapsed = started.elapsed();
    assert_eq!(verdict.request, handle);
    let reply = match &verdict.outcome {
        Outcome::Accept(r) => {
            println!("verdict accept");
            Some(r)
        }
        Outcome::Reject(r) => {
            println!("verdict reject");
            Some(r)
        }
        Outcome::Challenge(r) => {
            println!("verdict challenge");
            Some(r)
        }
        Outcome::Timeout => {
            println!("verdict timeout");
            None
        }
    };
    if let Some(r) = reply {
        println!("server {}", r.server);
        if let Some(m) = r.reply_message() {
            println!("reply-message {m}");
        }
    }
    println!("elapsed-ms {}", elapsed.as_millis());
    let s = client.stats();
    println!(
        "stats requests {} transmissions {} retransmissions {} failovers {} dropped {} \
         missing-ma {} bad-ma {} bad-auth {} unknown {} malformed {}",
        s.requests,
        s.transmissions,
        s.retransmissions,
        s.failovers,
        s.dropped(),
        s.dropped_missing_message_authenticator,
        s.dropped_bad_message_authenticator,
        s.dropped_bad_authenticator,
        s.dropped_unknown,
        s.dropped_malformed
    );
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("radius-probe: {e}");
            return ExitCode::from(2);
        }
    };
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("radius-probe: {e}");
            ExitCode::from(2)
        }
    }
}
