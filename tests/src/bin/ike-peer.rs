//! `ike-peer`: our IKEv1 engine on real UDP sockets, for the interop tests against charon.
//!
//! A deliberately small driver (blocking std sockets, one loop): the daemons of the project get
//! the real tokio driver. It binds UDP 500 and 4500 on one address, runs the engine as
//! initiator (Main Mode, optional Mode Config, then the requested Quick Modes) or responder
//! (answering Mode Config from a pool), and writes what the engine reports as JSON to `--out`
//! after every change. It stops when the file `<out>.stop` appears (deleting its SAs first) or
//! after `--hold` seconds.
//!
//! ```text
//! ike-peer --role initiator --local 2001:db8:ff::2 --remote 2001:db8:ff::1 \
//!     --id mn1@example.com --peer-id ha.example.com --psk secret \
//!     --ike aes128-sha256-ecp256 --esp aes128gcm16 --modecfg \
//!     --child tunnel:vip:2001:db8:1::/64 --out /tmp/x.json
//! ```
//! In `--child MODE:LOCAL_TS:REMOTE_TS`, `vip` stands for the Mode Config address; a selector
//! may carry `[proto/port]` as in strongSwan.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ikev1::crypto::{Certificate, RsaPrivateKey, SystemRng};
use ikev1::{
    ChildRequest, Config, Engine, EspProposal, Event, Identity, IkeProposal, LocalAuth, Mode,
    ModeConfig, PeerAuth, PeerConfig, TrafficSelector,
};
use serde_json::{Value, json};

struct Args {
    role: String,
    local: IpAddr,
    remote: Option<IpAddr>,
    id: String,
    peer_id: String,
    psk: Option<String>,
    key: Option<PathBuf>,
    cert: Option<PathBuf>,
    ca: Option<PathBuf>,
    ike: Vec<String>,
    esp: Vec<String>,
    modecfg: bool,
    children: Vec<String>,
    local_ts: Vec<String>,
    pool: Option<Ipv6Addr>,
    dns: Vec<Ipv6Addr>,
    out: PathBuf,
    hold: u64,
    dpd: Option<u64>,
}

fn usage(msg: &str) -> ! {
    eprintln!("ike-peer: {msg}");
    std::process::exit(2);
}

fn parse_args() -> Args {
    let mut a = Args {
        role: String::new(),
        local: IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        remote: None,
        id: String::new(),
        peer_id: "%any".into(),
        psk: None,
        key: None,
        cert: None,
        ca: None,
        ike: Vec::new(),
        esp: Vec::new(),
        modecfg: false,
        children: Vec::new(),
        local_ts: Vec::new(),
        pool: None,
        dns: Vec::new(),
        out: PathBuf::new(),
        hold: 60,
        dpd: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        if k == "--modecfg" {
            a.modecfg = true;
            continue;
        }
        let v = it
            .next()
            .unwrap_or_else(|| usage(&format!("{k} needs a value")));
        let bad = |what: &str| -> ! { usage(&format!("{k}: invalid {what}: {v}")) };
        match k.as_str() {
            "--role" => a.role = v,
            "--local" => a.local = v.parse().unwrap_or_else(|_| bad("address")),
            "--remote" => a.remote = Some(v.parse().unwrap_or_else(|_| bad("address"))),
            "--id" => a.id = v,
            "--peer-id" => a.peer_id = v,
            "--psk" => a.psk = Some(v),
            "--key" => a.key = Some(v.into()),
            "--cert" => a.cert = Some(v.into()),
            "--ca" => a.ca = Some(v.into()),
            "--ike" => a.ike.push(v),
            "--esp" => a.esp.push(v),
            "--child" => a.children.push(v),
            "--local-ts" => a.local_ts.push(v),
            "--pool" => a.pool = Some(v.parse().unwrap_or_else(|_| bad("address"))),
            "--dns" => a.dns.push(v.parse().unwrap_or_else(|_| bad("address"))),
            "--out" => a.out = v.into(),
            "--hold" => a.hold = v.parse().unwrap_or_else(|_| bad("number")),
            "--dpd" => a.dpd = Some(v.parse().unwrap_or_else(|_| bad("number"))),
            _ => usage(&format!("unknown option {k}")),
        }
    }
    if !matches!(a.role.as_str(), "initiator" | "responder") {
        usage("--role initiator|responder");
    }
    if a.out.as_os_str().is_empty() {
        usage("--out FILE");
    }
    a
}

fn read(path: &PathBuf) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| usage(&format!("{}: {e}", path.display())))
}

fn config(a: &Args) -> Config {
    let local_auth = match (&a.key, &a.cert) {
        (Some(k), Some(c)) => {
            let key =
                RsaPrivateKey::from_pem(&read(k)).unwrap_or_else(|e| usage(&format!("key: {e}")));
            let cert = Certificate::from_pem(&read(c))
                .unwrap_or_else(|e| usage(&format!("cert: {e}")))
                .into_iter()
                .next()
                .unwrap_or_else(|| usage("cert: no certificate"));
            LocalAuth::RsaSig {
                key: Arc::new(key),
                cert: Arc::new(cert),
            }
        }
        _ => LocalAuth::Psk,
    };
    let peer_auth = match (&a.psk, &a.ca) {
        (Some(p), _) => PeerAuth::Psk(zeroize::Zeroizing::new(p.as_bytes().to_vec())),
        (None, Some(ca)) => PeerAuth::RsaSig {
            cas: Certificate::from_pem(&read(ca))
                .unwrap_or_else(|e| usage(&format!("ca: {e}")))
                .into_iter()
                .map(Arc::new)
                .collect(),
        },
        _ => usage("--psk or --ca is required"),
    };
    let mut c = Config::new(Identity::parse(&a.id), local_auth);
    c.peers = vec![PeerConfig {
        identity: Identity::parse(&a.peer_id),
        auth: peer_auth,
        addrs: vec![],
    }];
    if !a.ike.is_empty() {
        c.ike_proposals = a
            .ike
            .iter()
            .map(|p| IkeProposal::parse(p, true).unwrap_or_else(|e| usage(&e.to_string())))
            .collect();
    }
    if !a.esp.is_empty() {
        c.esp_proposals = a
            .esp
            .iter()
            .map(|p| EspProposal::parse(p, true).unwrap_or_else(|e| usage(&e.to_string())))
            .collect();
    }
    if !a.local_ts.is_empty() {
        c.local_ts = a
            .local_ts
            .iter()
            .map(|t| TrafficSelector::parse(t).unwrap_or_else(|| usage(&format!("selector {t}"))))
            .collect();
    }
    c.dpd_delay = a.dpd.map(Duration::from_secs);
    c
}

fn child_request(spec: &str, vip: Option<Ipv6Addr>) -> ChildRequest {
    let Some((mode, tail)) = spec.split_once(':') else {
        usage(&format!("--child {spec}"))
    };
    let mode = match mode {
        "tunnel" => Mode::Tunnel,
        "transport" => Mode::Transport,
        _ => usage(&format!("--child mode {mode}")),
    };
    let subst = |t: &str| match (t.split_once('['), vip) {
        (Some(("vip", pp)), Some(v)) => format!("{v}[{pp}"),
        (None, Some(v)) if t == "vip" => v.to_string(),
        _ => t.to_owned(),
    };
    // IPv6 selectors contain colons: take the first split point where both halves parse.
    for (i, _) in tail.match_indices(':') {
        let (l, r) = (&tail[..i], &tail[i + 1..]);
        if let (Some(local_ts), Some(remote_ts)) = (
            TrafficSelector::parse(&subst(l)),
            TrafficSelector::parse(&subst(r)),
        ) {
            return ChildRequest {
                mode,
                local_ts,
                remote_ts,
            };
        }
    }
    usage(&format!("--child {spec}: selectors"))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("debug")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let a = parse_args();
    let cfg = config(&a);
    let natt_port = cfg.natt_port;
    let bind = |port: u16| {
        let s = UdpSocket::bind(SocketAddr::new(a.local, port))
            .unwrap_or_else(|e| usage(&format!("bind {}:{port}: {e}", a.local)));
        s.set_nonblocking(true).expect("nonblocking");
        s
    };
    let s500 = bind(500);
    let s4500 = bind(natt_port);
    let t0 = Instant::now();
    let mut engine = Engine::new(cfg, Box::new(SystemRng::new()));
    let unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    engine.set_wall_clock(t0, i64::try_from(unix).unwrap_or(0));

    let initiator = a.role == "initiator";
    if initiator {
        let remote = a
            .remote
            .unwrap_or_else(|| usage("--remote is required for the initiator"));
        engine
            .initiate(
                t0,
                0,
                SocketAddr::new(a.local, 500),
                SocketAddr::new(remote, 500),
            )
            .expect("initiate");
    }
    let stop_file = a.out.with_extension("stop");
    let mut state: BTreeMap<&str, Value> = BTreeMap::new();
    state.insert("children", json!([]));
    state.insert("failures", json!([]));
    let mut pool_next: u16 = 0;
    let mut vip = None;
    let mut pending_children = if a.modecfg { None } else { Some(()) };
    let mut ike_sa = None;
    let mut buf = [0u8; 65536];
    let deadline = t0 + Duration::from_secs(a.hold);
    let mut stopping = false;
    loop {
        let now = Instant::now();
        if !stopping && (now >= deadline || stop_file.exists()) {
            stopping = true;
            for sa in engine.ike_sas() {
                let _ = engine.delete_ike_sa(now, sa);
            }
        }
        let mut busy = false;
        for (sock, port) in [(&s500, 500u16), (&s4500, natt_port)] {
            while let Ok((n, from)) = sock.recv_from(&mut buf) {
                busy = true;
                let data = &buf[..n];
                if port == natt_port && ikev1::classify_natt(data) != ikev1::NattKind::Ike {
                    continue; // ESP or keepalive: no data plane here.
                }
                engine.handle_datagram(Instant::now(), SocketAddr::new(a.local, port), from, data);
            }
        }
        if engine.poll_timeout().is_some_and(|t| t <= Instant::now()) {
            engine.handle_timeout(Instant::now());
        }
        let mut changed = false;
        while let Some(ev) = engine.poll_event() {
            changed = true;
            let now = Instant::now();
            match ev {
                Event::IkeSaEstablished {
                    sa,
                    remote_id,
                    local,
                    remote,
                    proposal,
                    nat,
                    ..
                } => {
                    let info = engine.ike_sa_info(sa);
                    state.insert(
                        "ike",
                        json!({
                            "established": true, "remote_id": remote_id.to_string(),
                            "local": local.to_string(), "remote": remote.to_string(),
                            "proposal": proposal, "nat": nat,
                            "cookie_i": info.as_ref().map(|i| hex(&i.cookie_i)),
                            "cookie_r": info.as_ref().map(|i| hex(&i.cookie_r)),
                        }),
                    );
                    if initiator {
                        ike_sa = Some(sa);
                        if a.modecfg {
                            engine.request_mode_config(now, sa).expect("mode config");
                        }
                    }
                }
                Event::ModeConfigReceived { config, .. } => {
                    vip = config.address;
                    state.insert("vip", json!(vip.map(|v| v.to_string())));
                    state.insert(
                        "dns",
                        json!(
                            config
                                .dns
                                .iter()
                                .map(ToString::to_string)
                                .collect::<Vec<_>>()
                        ),
                    );
                    pending_children = Some(());
                }
                Event::AddressRequested {
                    sa,
                    request,
                    identity,
                    ..
                } => {
                    let answer = a.pool.map(|base| {
                        let addr = Ipv6Addr::from(u128::from(base) + u128::from(pool_next));
                        pool_next += 1;
                        ModeConfig {
                            address: Some(addr),
                            dns: a.dns.clone(),
                            ..ModeConfig::default()
                        }
                    });
                    tracing::info!(%identity, address = ?answer.as_ref().and_then(|m| m.address), "answering Mode Config");
                    if let Some(addr) = answer.as_ref().and_then(|m| m.address) {
                        state.insert("assigned", json!(addr.to_string()));
                    }
                    engine
                        .answer_address_request(now, sa, request, answer)
                        .expect("answer");
                }
                Event::ChildSaEstablished(c) => {
                    if let Some(Value::Array(v)) = state.get_mut("children") {
                        v.push(json!({
                            "mode": c.mode.to_string(), "udp_encap": c.udp_encap,
                            "spi_in": format!("{:08x}", c.spi_in), "spi_out": format!("{:08x}", c.spi_out),
                            "local_ts": c.local_ts.to_string(), "remote_ts": c.remote_ts.to_string(),
                            "proposal": c.proposal.to_string(), "initiator": c.initiator,
                        }));
                    }
                }
                Event::ChildSaDeleted { spi_in, .. } => {
                    if let Some(Value::Array(v)) = state.get_mut("children") {
                        v.retain(|c| c["spi_in"] != json!(format!("{spi_in:08x}")));
                    }
                }
                other => {
                    tracing::info!(event = ?other, "event");
                    if let Some(Value::Array(v)) = state.get_mut("failures") {
                        v.push(json!(format!("{other:?}")));
                    }
                }
            }
        }
        if let (Some(()), Some(sa), false) = (pending_children, ike_sa, stopping) {
            pending_children = None;
            for spec in &a.children {
                let req = child_request(spec, vip);
                engine
                    .initiate_child(Instant::now(), sa, req)
                    .expect("quick mode");
            }
            state.insert("requested", json!(a.children.len()));
        }
        while let Some(t) = engine.poll_transmit() {
            busy = true;
            let sock = if t.local.port() == natt_port {
                &s4500
            } else {
                &s500
            };
            if let Err(e) = sock.send_to(&t.data, t.remote) {
                tracing::warn!(error = %e, remote = %t.remote, "send failed");
            }
        }
        if changed {
            state.insert("counters", json!(format!("{:?}", engine.counters())));
            let tmp = a.out.with_extension("tmp");
            std::fs::write(&tmp, serde_json::to_vec_pretty(&state).expect("json")).expect("write");
            std::fs::rename(&tmp, &a.out).expect("rename");
        }
        if stopping && engine.ike_sas().is_empty() {
            break;
        }
        if stopping && Instant::now() > deadline + Duration::from_secs(5) {
            break;
        }
        if !busy {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}
