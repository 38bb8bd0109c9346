//! `relay-bench`: the relay overhead of issue 6 — Kea's answer time through `mip6-ha`'s
//! relay against the same exchanges sent straight to Kea (target: ≤ 50 µs per exchange).
//!
//! ```text
//! cargo build --release -p home-agent -p interop-tests
//! ./target/release/relay-bench [--rate 200] [--seconds 10] [--warmup 1] [--out target/relay-bench.json]
//! ```
//!
//! One run, one namespace lab (`testlab`), one Kea (memfile leases, pool of 65,536):
//!
//! 1. `perfdhcp -6 -A 1 -l ha-home -R 1000000` from the home agent's namespace straight to
//!    Kea's unicast address (relayed 4-way exchanges, as a relay sends them, a random DUID
//!    per exchange), at `--rate` and at twice the rate (what Kea sees in step 2), for
//!    `--seconds` each after a 2 s warm-up; its min/avg/max/std delay of Solicit-Advertise and
//!    Request-Reply and its drops are parsed. perfdhcp binds the home-link address port 547,
//!    which `mip6-ha` holds while it runs: these runs happen before `mip6-ha` starts, and once
//!    more at `--rate` after it stopped (drift check).
//! 2. `mip6-ha` starts, with the relay on. One thread of this program plays the mobile node
//!    with the real sans-IO engines `mip6-mn` uses (`ikev1::Engine` as initiator, `esp::Esp`):
//!    phase 1 from the care-of address, then the initial tunnel of draft §3.2 (tunnel-mode
//!    ESP, link-local/128 UDP 546 ↔ ::/0 UDP 547), and nothing else (no RFC 3776 SAs, so the
//!    tunnel stays). Through it go DHCPv6 4-way exchanges (Solicit → Advertise, Request →
//!    Reply, a distinct DUID-LLT per exchange so that Kea allocates a fresh lease each time)
//!    to `ff02::1:2`; `mip6-ha` relays them to Kea. The same thread also sends the same
//!    exchanges straight to Kea from the home agent's namespace as a relay would (Relay-Forw,
//!    link-address = the home agent's home-link address, an Interface-ID of the size
//!    `mip6-ha` uses; sent from `2001:db8:1::3`, an extra address on `ha-home`, since
//!    `mip6-ha` holds `[2001:db8:1::1]:547`). Both paths run at `--rate`, interleaved: the
//!    relayed exchange k starts half a period after the direct exchange k, so both see the
//!    same Kea at the same moment and rarely meet in it. The sockets of both namespaces are
//!    opened by the one thread (`setns(2)` before each), so one event loop serves both.
//!    Each exchange is timed from just before the socket send to just after the socket
//!    receive (`Instant`, reported in µs): the node's own ESP seal and open are outside the
//!    window and measured apart (ns per packet), the home agent's are inside.
//! 3. What the tunnel costs apart from the relay: the ICMPv6 echo round trip over each hop
//!    (`ping`, the kernel answers; the relayed path has the mobile node ↔ home agent hop on
//!    top of the home agent ↔ Kea hop), the node's ESP seal/open per packet (the home agent
//!    does one open and one seal per exchange, the same operations on the same sizes), and
//!    `mip6-ha`'s CPU time per relayed exchange (`/proc`, 10 ms ticks).
//! 4. A table on stdout (perfdhcp direct: avg; ours direct and ours through the relay: p50,
//!    avg, p95 per exchange type; overhead = through the relay − direct, at p50 and p95) and
//!    every sample in `--out` (JSON).
//!
//! Exchanges without an answer within 1 s count as drops (perfdhcp's default drop time).
//! Figures are printed, never asserted. Needs root and Kea + perfdhcp
//! (`scripts/install-deps.sh`); Ctrl-C stops the run and tears the lab down.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt::Write as _;
use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use esp::{Esp, EspAction, SaHandle};
use ikev1::crypto::{Rng as _, SystemRng};
use ikev1::{
    ChildRequest, ChildSa, Engine, Event, Identity, IkeSaId, LocalAuth, Mode, PeerAuth, PeerConfig,
    TrafficSelector,
};
use interop_tests::bench::{catch_signals, daemon_pid, machine, sibling_bin, stopping};
use interop_tests::dhcp6::{self, ClientMsg, RelayMsg};
use netio::{EspSocket, IkeSocket};
use serde_json::{Value, json};
use testlab::{HA_HOME, HA_HOME_IF, HA_INET, HOME_HOST, Kea, KeaOptions, Lab, MN_COA, Node, Spawn};

const PSK: &str = "relay-bench-psk-0123456789abcdef";
const HA_ID: &str = "ha.example.com";
const MN_ID: &str = "mn1@bench.example";
const PERFDHCP: &str = "/usr/sbin/perfdhcp";
/// Our direct client's address on the home link (the home agent holds `[HA_HOME]:547`).
const DIRECT_SRC: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 3);
/// All_DHCP_Relay_Agents_and_Servers.
const ALL_DHCP: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 1, 2);
const DHCP_SERVER_PORT: u16 = 547;
const IPPROTO_UDP: u8 = 17;
/// Request (RFC 8415 §7.3).
const REQUEST: u8 = 3;
/// perfdhcp's default drop time.
const DROP_AFTER: Duration = Duration::from_secs(1);
/// The size of `mip6-ha`'s Interface-ID (the relay's opaque tunnel handle).
const INTERFACE_ID_LEN: usize = 16;

fn arg_value(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

struct Args {
    rate: u32,
    seconds: u32,
    warmup: u32,
    out: PathBuf,
}

fn parse_args() -> Args {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!(
            "relay-bench [--rate 200] [--seconds 10] [--warmup 1] [--out target/relay-bench.json]"
        );
        std::process::exit(0);
    }
    let num = |name: &str, default: u32| {
        arg_value(&args, name).map_or(default, |s| {
            s.parse()
                .unwrap_or_else(|_| panic!("{name}: a whole number"))
        })
    };
    let a = Args {
        rate: num("--rate", 200),
        seconds: num("--seconds", 10),
        warmup: num("--warmup", 1),
        out: arg_value(&args, "--out")
            .unwrap_or_else(|| "target/relay-bench.json".into())
            .into(),
    };
    assert!(a.rate > 0 && a.seconds > 0, "--rate and --seconds above 0");
    a
}

fn main() {
    let args = parse_args();
    catch_signals("relay-bench");
    let ha_bin = sibling_bin("mip6-ha");
    if !Path::new(PERFDHCP).is_file() {
        eprintln!("{PERFDHCP} is missing: apt-get install kea-admin (scripts/install-deps.sh)");
        std::process::exit(1);
    }
    let lab = Lab::new("relay_bench").expect("the namespace lab (needs root)");
    let doc = run(&lab, &ha_bin, &args);
    if let Some(e) = doc.get("error") {
        eprintln!("relay-bench: {e}");
    }
    print!("{}", table(&doc));
    if let Some(dir) = args.out.parent()
        && !dir.as_os_str().is_empty()
    {
        let _ = std::fs::create_dir_all(dir);
    }
    match std::fs::write(
        &args.out,
        serde_json::to_string_pretty(&doc).expect("JSON") + "\n",
    ) {
        Ok(()) => println!("raw figures in {}", args.out.display()),
        Err(e) => eprintln!("writing {}: {e}", args.out.display()),
    }
    drop(lab);
    if stopping() {
        std::process::exit(130);
    }
}

/// The whole run; errors end up in the document's `"error"`, with what was measured so far.
fn run(lab: &Lab, ha_bin: &str, a: &Args) -> Value {
    let mut doc = json!({
        "rate_per_s": a.rate,
        "seconds": a.seconds,
        "warmup_s": a.warmup,
        "drop_after_ms": DROP_AFTER.as_millis() as u64,
        "machine_at_start": machine(),
    });
    if let Err(e) = run_inner(lab, ha_bin, a, &mut doc) {
        doc["error"] = json!(e);
    }
    doc["machine_at_end"] = machine();
    doc
}

fn stopped() -> Result<(), String> {
    if stopping() {
        Err("stopped by a signal".into())
    } else {
        Ok(())
    }
}

fn run_inner(lab: &Lab, ha_bin: &str, a: &Args, doc: &mut Value) -> Result<(), String> {
    let mut kea = Kea::start(
        lab,
        KeaOptions::new().name("kea").pool(
            Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 1, 0),
            Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 1, 0xffff),
        ),
    )
    .map_err(|e| format!("Kea: {e}"))?;
    let kea_version = Command::new(testlab::KEA_DHCP6_BIN)
        .arg("-v")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    doc["kea_version"] = json!(kea_version);
    lab.exec_ok(
        Node::Ha,
        "ip",
        [
            "-6",
            "addr",
            "add",
            &format!("{DIRECT_SRC}/64"),
            "dev",
            HA_HOME_IF,
            "nodad",
        ],
    )
    .map_err(|e| format!("{DIRECT_SRC} on {HA_HOME_IF}: {e}"))?;

    // The hops, kernel only.
    eprintln!("ping: each hop");
    doc["ping"] = json!({
        "mn_to_ha": ping(lab, Node::Mn, HA_INET)?,
        "ha_to_kea": ping(lab, Node::Ha, HOME_HOST)?,
    });
    stopped()?;

    // perfdhcp straight to Kea, before mip6-ha holds [HA_HOME]:547.
    eprintln!("perfdhcp: warm-up");
    let _ = perfdhcp(lab, a.rate, 2)?;
    let mut perf = Vec::new();
    for rate in [a.rate, 2 * a.rate] {
        stopped()?;
        eprintln!("perfdhcp: {rate}/s for {} s", a.seconds);
        let mut r = perfdhcp(lab, rate, a.seconds)?;
        r["when"] = json!("before");
        perf.push(r);
        doc["perfdhcp"] = json!(perf);
    }
    stopped()?;

    // mip6-ha, with the relay on.
    let conf = write_ha(lab.dir());
    let t_spawn = Instant::now();
    let mut ha = lab
        .spawn(
            Node::Ha,
            Spawn::new(ha_bin)
                .arg("run")
                .arg("--config")
                .arg(&conf)
                .log_name("mip6-ha"),
        )
        .map_err(|e| format!("mip6-ha: {e}"))?;
    while ha_status(ha_bin, &conf).is_none_or(|s| s.get("counters").is_none()) {
        if t_spawn.elapsed() > Duration::from_secs(30) {
            return Err(format!("mip6-ha did not start:\n{}", ha.log()));
        }
        stopped()?;
        std::thread::sleep(Duration::from_millis(20));
    }
    // The relay socket is bound once the runtime reports counters; give it a moment more.
    std::thread::sleep(Duration::from_millis(200));
    let ha_pid = daemon_pid(ha.pid(), "mip6-ha");
    // Its CPU time when idle (timers, status refreshes), to tell apart from the relaying.
    let idle0 = cpu_s(ha_pid).ok_or("no /proc for mip6-ha")?;
    let t_idle = Instant::now();
    std::thread::sleep(Duration::from_secs(2));
    let cpu0 = cpu_s(ha_pid).ok_or("no /proc for mip6-ha")?;
    let idle_per_s = (cpu0 - idle0) / t_idle.elapsed().as_secs_f64();
    let t_ours = Instant::now();
    let kea0 = cpu_s(kea.pid()).unwrap_or(f64::NAN);

    eprintln!(
        "ours: {}/s per path, {} s warm-up + {} s, direct and through mip6-ha interleaved",
        a.rate, a.warmup, a.seconds
    );
    let mn_ns = lab.netns(Node::Mn).to_owned();
    let ha_ns = lab.netns(Node::Ha).to_owned();
    let (rate, warmup, seconds) = (a.rate, a.warmup, a.seconds);
    let ours = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(measure::run(&mn_ns, &ha_ns, rate, warmup, seconds))
    })
    .join()
    .map_err(|_| "the measuring thread panicked".to_owned())?;
    let cpu1 = cpu_s(ha_pid).unwrap_or(f64::NAN);
    let ours_s = t_ours.elapsed().as_secs_f64();
    let kea1 = cpu_s(kea.pid()).unwrap_or(f64::NAN);
    // `status` is refreshed from the tunnel task once a second.
    std::thread::sleep(Duration::from_millis(1200));
    let st = ha_status(ha_bin, &conf);
    let _ = ha.stop();
    let mut ours = ours?;
    let relayed = ours["relay"]["exchanges_answered"].as_u64().unwrap_or(0);
    ours["mip6_ha"] = json!({
        "cpu_s": cpu1 - cpu0,
        "wall_s": ours_s,
        "idle_cpu_s_per_s": idle_per_s,
        "cpu_us_per_relayed_exchange": if relayed > 0 { (cpu1 - cpu0) * 1e6 / relayed as f64 } else { f64::NAN },
        "cpu_us_per_relayed_exchange_above_idle": if relayed > 0 {
            (cpu1 - cpu0 - idle_per_s * ours_s) * 1e6 / relayed as f64
        } else {
            f64::NAN
        },
        "status_counters": st.as_ref().map(|s| s["counters"].clone()),
    });
    ours["kea_cpu_s"] = json!(kea1 - kea0);
    doc["ours"] = ours;
    stopped()?;

    // perfdhcp once more (drift between the start and the end of the run).
    eprintln!("perfdhcp: {}/s for {} s (after)", a.rate, a.seconds);
    let mut r = perfdhcp(lab, a.rate, a.seconds)?;
    r["when"] = json!("after");
    perf.push(r);
    doc["perfdhcp"] = json!(perf);
    doc["kea_leases"] = json!(kea.leases().map(|l| l.len()).ok());
    let _ = kea.stop();
    Ok(())
}

fn write_ha(dir: &Path) -> PathBuf {
    let p = dir.join("ha.toml");
    let text = format!(
        r#"listen = ["{HA_INET}"]
control_socket = "{}"
log_level = "warn"
[home_link]
interface = "{HA_HOME_IF}"
address = "{HA_HOME}"
prefix = "2001:db8:1::/64"
[dhcpv6]
servers = ["{HOME_HOST}"]
[ike]
identity = "{HA_ID}"
proposals = ["aes128-sha256-ecp256"]
esp_proposals = ["aes128gcm16"]
[[peers]]
identity = "{MN_ID}"
psk = "{PSK}"
"#,
        dir.join("ha.sock").display()
    );
    std::fs::write(&p, text).expect("ha.toml");
    p
}

fn ha_status(ha_bin: &str, conf: &Path) -> Option<Value> {
    let o = Command::new(ha_bin)
        .args(["status", "--json", "--config"])
        .arg(conf)
        .stderr(Stdio::null())
        .output()
        .ok()?;
    o.status
        .success()
        .then(|| serde_json::from_slice(&o.stdout).ok())
        .flatten()
}

/// utime + stime of `pid`, in seconds.
fn cpu_s(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces): utime is field 14, stime 15.
    let after = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    // USER_HZ is 100 on every Linux this runs on.
    Some(ticks / 100.0)
}

/// `ping` over one hop: 200 echoes 5 ms apart; min/avg/max/mdev in µs.
fn ping(lab: &Lab, from: Node, to: Ipv6Addr) -> Result<Value, String> {
    let to_s = to.to_string();
    let o = lab
        .exec_timeout(
            from,
            Duration::from_secs(30),
            "ping",
            ["-6", "-q", "-n", "-c", "200", "-i", "0.005", &to_s],
        )
        .map_err(|e| format!("ping {to}: {e}"))?;
    let text = String::from_utf8_lossy(&o.stdout);
    // rtt min/avg/max/mdev = 0.031/0.045/0.101/0.011 ms
    let rtt = text
        .lines()
        .find(|l| l.starts_with("rtt "))
        .and_then(|l| l.split('=').nth(1))
        .map(|v| {
            v.trim()
                .trim_end_matches("ms")
                .trim()
                .split('/')
                .filter_map(|x| x.parse::<f64>().ok())
                .map(|ms| ms * 1e3)
                .collect::<Vec<_>>()
        })
        .filter(|v| v.len() == 4)
        .ok_or_else(|| format!("ping {to}: no rtt line in {text:?}"))?;
    Ok(json!({
        "to": to_s, "count": 200,
        "min_us": rtt[0], "avg_us": rtt[1], "max_us": rtt[2], "mdev_us": rtt[3],
    }))
}

/// perfdhcp in relayed mode from the home agent's namespace to Kea's unicast address, a
/// random DUID per exchange (`-R`), parsed.
fn perfdhcp(lab: &Lab, rate: u32, seconds: u32) -> Result<Value, String> {
    let (r, p) = (rate.to_string(), seconds.to_string());
    let home = HOME_HOST.to_string();
    let args = [
        "-6", "-A", "1", "-l", HA_HOME_IF, "-r", &r, "-p", &p, "-R", "1000000", &home,
    ];
    let o = lab
        .exec_timeout(
            Node::Ha,
            Duration::from_secs(u64::from(seconds) + 30),
            PERFDHCP,
            args,
        )
        .map_err(|e| format!("perfdhcp: {e}"))?;
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    let section = |name: &str| -> Value {
        let start = text.find(&format!("***Statistics for: {name}***"));
        let body = start.map_or("", |s| {
            let rest = &text[s + 3..];
            let end = rest.find("***").map_or(rest.len(), |e| {
                // The next section's opening stars.
                rest[e + 3..]
                    .find("***")
                    .map_or(rest.len(), |e2| e + 3 + e2)
            });
            &rest[..end]
        });
        let field = |key: &str| -> Option<f64> {
            body.lines()
                .find(|l| l.trim_start().starts_with(key))
                .and_then(|l| l.split(':').nth(1))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse::<f64>().ok())
        };
        let us = |key: &str| field(key).map(|ms| ms * 1e3);
        json!({
            "sent": field("sent packets"),
            "received": field("received packets"),
            "drops": field("drops:"),
            "min_us": us("min delay"),
            "avg_us": us("avg delay"),
            "max_us": us("max delay"),
            "std_us": us("std deviation"),
        })
    };
    let achieved = text
        .lines()
        .find(|l| l.starts_with("Rate:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok());
    let sa = section("SOLICIT-ADVERTISE");
    if sa["received"].is_null() {
        return Err(format!(
            "perfdhcp gave no statistics ({}):\n{text}\n{}",
            o.status,
            String::from_utf8_lossy(&o.stderr)
        ));
    }
    Ok(json!({
        "rate_per_s": rate,
        "seconds": seconds,
        "achieved_per_s": achieved,
        "exit": o.status.code(),
        "solicit_advertise": sa,
        "request_reply": section("REQUEST-REPLY"),
    }))
}

/// Sorted-sample statistics (nearest rank), in the unit of the samples.
fn stats(samples: &[f64]) -> Value {
    if samples.is_empty() {
        return json!({ "n": 0 });
    }
    let mut s = samples.to_vec();
    s.sort_by(f64::total_cmp);
    let q = |p: f64| s[(((s.len() - 1) as f64) * p).round() as usize];
    let n = s.len() as f64;
    let mean = s.iter().sum::<f64>() / n;
    let var = s.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
    json!({
        "n": s.len(),
        "min": s[0],
        "p50": q(0.5),
        "mean": mean,
        "p95": q(0.95),
        "p99": q(0.99),
        "max": s[s.len() - 1],
        "std": var.sqrt(),
    })
}

/// The measurement: the mobile node's engines and both paths' sockets on one event loop.
mod measure {
    use super::*;

    const DIRECT: usize = 0;
    const RELAY: usize = 1;
    const PATHS: [&str; 2] = ["direct", "relay"];

    /// Moves the calling thread into the network namespace `name`.
    #[allow(unsafe_code)]
    fn enter(name: &str) -> io::Result<()> {
        use std::os::fd::AsRawFd as _;
        let f = std::fs::File::open(format!("/var/run/netns/{name}"))?;
        // SAFETY: setns(2) on an open namespace file descriptor; it changes only the calling
        // thread's network namespace, and `f` stays open for the duration of the call.
        let r = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    /// Draft §3.2: the initial tunnel, limited to DHCPv6 from our link-local address (as
    /// `mip6_mn::bootstrap` asks for it).
    fn initial_tunnel_request(ll: Ipv6Addr) -> ChildRequest {
        ChildRequest {
            mode: Mode::Tunnel,
            local_ts: TrafficSelector::host(IpAddr::V6(ll))
                .with_protocol(IPPROTO_UDP, dhcp6_client::CLIENT_PORT),
            remote_ts: TrafficSelector::prefix(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0)
                .with_protocol(IPPROTO_UDP, DHCP_SERVER_PORT),
        }
    }

    fn engine_config() -> ikev1::Config {
        let mut c = ikev1::Config::new(Identity::parse(MN_ID), LocalAuth::Psk);
        c.peers = vec![PeerConfig {
            identity: Identity::parse(HA_ID),
            auth: PeerAuth::Psk(zeroize::Zeroizing::new(PSK.as_bytes().to_vec())),
            addrs: vec![IpAddr::V6(HA_INET)],
        }];
        c.ike_proposals =
            vec![ikev1::IkeProposal::parse("aes128-sha256-ecp256", false).expect("proposal")];
        c.esp_proposals = vec![ikev1::EspProposal::parse("aes128gcm16", false).expect("proposal")];
        c
    }

    #[derive(Clone, Copy, PartialEq)]
    enum State {
        NotSent,
        Solicited(Instant),
        Requested(Instant),
        Done,
        Dropped,
        Failed,
    }

    struct Exchange {
        state: State,
        warmup: bool,
        /// When it was due (µs after the start of the schedule).
        due_us: f64,
        sa_us: Option<f64>,
        rr_us: Option<f64>,
    }

    #[derive(Default)]
    struct PathStats {
        sent: [u64; 2],
        answered: [u64; 2],
        dropped: [u64; 2],
        late_or_unknown: u64,
        failed: Vec<String>,
        send_errors: u64,
    }

    /// The mobile node: engines, sockets, the initial tunnel.
    struct Mn {
        engine: Engine,
        esp: Esp,
        ike: IkeSocket,
        esp_sock: EspSocket,
        ll: Ipv6Addr,
        sa: Option<IkeSaId>,
        /// (spi_in, inbound, outbound) of the initial tunnel.
        tunnel: Option<(u32, SaHandle, SaHandle)>,
        child_request: Option<u64>,
        failed: Option<String>,
        tunnel_gone: Option<String>,
        scratch: Vec<u8>,
        out: Vec<u8>,
    }

    impl Mn {
        async fn pump(&mut self) {
            loop {
                let mut more = false;
                while let Some(t) = self.engine.poll_transmit() {
                    more = true;
                    let _ = self.ike.send(&t.data, t.local, t.remote).await;
                }
                while let Some(ev) = self.engine.poll_event() {
                    more = true;
                    let now = Instant::now();
                    match ev {
                        Event::IkeSaEstablished { sa, .. } => {
                            self.sa = Some(sa);
                            if self.tunnel.is_none() && self.child_request.is_none() {
                                match self.engine.initiate_child(
                                    now,
                                    sa,
                                    initial_tunnel_request(self.ll),
                                ) {
                                    Ok(r) => self.child_request = Some(r),
                                    Err(e) => self.failed = Some(format!("initial tunnel: {e}")),
                                }
                            }
                        }
                        Event::ChildSaEstablished(c) => self.install(&c, now),
                        Event::IkeSaFailed { reason, .. } => {
                            self.failed = Some(format!("phase 1: {reason:?}"));
                        }
                        Event::ChildSaFailed { reason, .. } => {
                            self.failed = Some(format!("initial tunnel: {reason:?}"));
                        }
                        Event::ChildSaDeleted { spi_in, reason, .. }
                            if self.tunnel.is_some_and(|t| t.0 == spi_in) =>
                        {
                            self.tunnel_gone = Some(reason);
                        }
                        Event::IkeSaDeleted { reason, .. } => {
                            self.tunnel_gone.get_or_insert(reason);
                        }
                        _ => {}
                    }
                }
                if !more {
                    break;
                }
            }
        }

        fn install(&mut self, c: &ChildSa, now: Instant) {
            let Ok((inb, outb)) = tunnel::convert::sa_params(c) else {
                self.failed = Some("initial tunnel: unusable SA parameters".into());
                return;
            };
            match (self.esp.add_sa(now, &inb), self.esp.add_sa(now, &outb)) {
                (Ok(i), Ok(o)) => self.tunnel = Some((c.spi_in, i, o)),
                _ => self.failed = Some("initial tunnel: SA not installed".into()),
            }
        }

        fn timeout(&self) -> Option<Instant> {
            [self.engine.poll_timeout(), self.esp.poll_timeout()]
                .into_iter()
                .flatten()
                .min()
        }

        async fn on_timer(&mut self, now: Instant) {
            if self.engine.poll_timeout().is_some_and(|t| t <= now) {
                self.engine.handle_timeout(now);
            }
            if self.esp.poll_timeout().is_some_and(|t| t <= now) {
                self.esp.handle_timeout(now);
                while self.esp.poll_event().is_some() {}
            }
            self.pump().await;
        }

        async fn on_ike(&mut self, from: SocketAddr, local: SocketAddr, data: &[u8]) {
            self.engine
                .handle_datagram(Instant::now(), local, from, data);
            self.pump().await;
        }

        /// Phase 1 and the initial tunnel: (phase 1 ms, initial tunnel ms).
        async fn bootstrap(&mut self) -> Result<(f64, f64), String> {
            let t0 = Instant::now();
            let deadline = t0 + Duration::from_secs(15);
            self.engine
                .initiate(
                    t0,
                    0,
                    SocketAddr::new(IpAddr::V6(MN_COA), 500),
                    SocketAddr::new(IpAddr::V6(HA_INET), 500),
                )
                .map_err(|e| format!("phase 1: {e}"))?;
            self.pump().await;
            let mut t1 = None;
            let mut buf = vec![0u8; 65536];
            while self.tunnel.is_none() {
                if let Some(e) = &self.failed {
                    return Err(e.clone());
                }
                if self.sa.is_some() && t1.is_none() {
                    t1 = Some(Instant::now());
                }
                let now = Instant::now();
                if now >= deadline {
                    return Err("no initial tunnel within 15 s".into());
                }
                let wake = self.timeout().map_or(deadline, |t| t.min(deadline));
                tokio::select! {
                    r = self.ike.recv(&mut buf) => if let Ok((len, from, local)) = r {
                        self.on_ike(from, local, &buf[..len]).await;
                    },
                    () = tokio::time::sleep_until(wake.into()) => self.on_timer(Instant::now()).await,
                }
            }
            let t2 = Instant::now();
            let t1 = t1.unwrap_or(t2);
            Ok(((t1 - t0).as_secs_f64() * 1e3, (t2 - t1).as_secs_f64() * 1e3))
        }
    }

    /// DUID-LLT (RFC 8415 §11.2, hardware type 1), distinct per path, exchange and run.
    fn duid(run: [u8; 4], path: usize, k: usize) -> Vec<u8> {
        let mut d = vec![0, 1, 0, 1];
        d.extend_from_slice(&run);
        d.extend_from_slice(&[0x02, path as u8]);
        d.extend_from_slice(&(k as u32).to_be_bytes());
        d
    }

    fn xid(k: usize, stage: usize) -> [u8; 3] {
        let x = ((k * 2 + stage) as u32) & 0x00ff_ffff;
        let b = x.to_be_bytes();
        [b[1], b[2], b[3]]
    }

    fn request(xid: [u8; 3], duid: &[u8], server_id: &[u8], ia_na: &[u8]) -> Vec<u8> {
        let opts = vec![
            (dhcp6::OPT_CLIENTID, duid.to_vec()),
            (dhcp6::OPT_SERVERID, server_id.to_vec()),
            (dhcp6::OPT_IA_NA, ia_na.to_vec()),
            (dhcp6::OPT_ELAPSED_TIME, vec![0, 0]),
        ];
        let mut msg = vec![REQUEST, xid[0], xid[1], xid[2]];
        msg.extend(dhcp6::encode_options(&opts));
        msg
    }

    struct Run {
        mn: Mn,
        direct: tokio::net::UdpSocket,
        direct_peer: Ipv6Addr,
        direct_ifid: Vec<u8>,
        run_id: [u8; 4],
        ex: [Vec<Exchange>; 2],
        st: [PathStats; 2],
        /// (deadline, path, exchange, stage)
        drops: BinaryHeap<Reverse<(Instant, usize, usize, usize)>>,
        seal_ns: Vec<f64>,
        open_ns: Vec<f64>,
        /// Relayed exchange k − direct exchange k (both answered, not warm-up), µs.
        paired: [Vec<f64>; 2],
    }

    impl Run {
        /// Sends `msg` (a client message) on `path`; returns when it went out.
        async fn send(&mut self, path: usize, msg: &[u8]) -> Option<Instant> {
            if path == DIRECT {
                let forw =
                    dhcp6::relay_forw(HA_HOME, self.direct_peer, Some(&self.direct_ifid), msg);
                let t = Instant::now();
                let to = SocketAddr::new(IpAddr::V6(HOME_HOST), DHCP_SERVER_PORT);
                return self.direct.send_to(&forw, to).await.ok().map(|_| t);
            }
            let (_, _, outbound) = self.mn.tunnel?;
            let src = SocketAddrV6::new(self.mn.ll, dhcp6_client::CLIENT_PORT, 0, 0);
            let dst = SocketAddrV6::new(ALL_DHCP, DHCP_SERVER_PORT, 0, 0);
            esp::datagram::build_udp(src, dst, msg, &mut self.mn.scratch)?;
            let t_seal = Instant::now();
            let action =
                self.mn
                    .esp
                    .encapsulate_with(t_seal, outbound, &self.mn.scratch, &mut self.mn.out);
            let EspAction::ToNetwork(tx) = action else {
                return None;
            };
            let t = Instant::now();
            self.seal_ns.push((t - t_seal).as_secs_f64() * 1e9);
            self.mn
                .esp_sock
                .send(tx.data, MN_COA, HA_INET)
                .await
                .ok()
                .map(|_| t)
        }

        async fn start(&mut self, path: usize, k: usize) {
            let msg = dhcp6::solicit(xid(k, 0), &duid(self.run_id, path, k), 1, false);
            match self.send(path, &msg).await {
                Some(t) => {
                    self.ex[path][k].state = State::Solicited(t);
                    self.st[path].sent[0] += 1;
                    self.drops.push(Reverse((t + DROP_AFTER, path, k, 0)));
                }
                None => {
                    self.ex[path][k].state = State::Failed;
                    self.st[path].send_errors += 1;
                }
            }
        }

        async fn on_answer(&mut self, path: usize, t: Instant, msg: &[u8]) {
            let Ok(m) = ClientMsg::parse(msg) else {
                self.st[path].late_or_unknown += 1;
                return;
            };
            let x = u32::from_be_bytes([0, m.xid[0], m.xid[1], m.xid[2]]) as usize;
            let (k, stage) = (x / 2, x % 2);
            let Some(e) = self.ex[path].get_mut(k) else {
                self.st[path].late_or_unknown += 1;
                return;
            };
            match (m.msg_type, stage, e.state) {
                (dhcp6::ADVERTISE, 0, State::Solicited(t0)) => {
                    e.sa_us = Some((t - t0).as_secs_f64() * 1e6);
                    self.st[path].answered[0] += 1;
                    let (Some(sid), Some(ia)) =
                        (m.option(dhcp6::OPT_SERVERID), m.option(dhcp6::OPT_IA_NA))
                    else {
                        e.state = State::Failed;
                        self.st[path]
                            .failed
                            .push("Advertise without Server ID or IA_NA".into());
                        return;
                    };
                    if m.ia_na_addresses().is_empty() {
                        e.state = State::Failed;
                        self.st[path]
                            .failed
                            .push("Advertise without an address".into());
                        return;
                    }
                    let req = request(xid(k, 1), &duid(self.run_id, path, k), sid, ia);
                    match self.send(path, &req).await {
                        Some(t) => {
                            self.ex[path][k].state = State::Requested(t);
                            self.st[path].sent[1] += 1;
                            self.drops.push(Reverse((t + DROP_AFTER, path, k, 1)));
                        }
                        None => {
                            self.ex[path][k].state = State::Failed;
                            self.st[path].send_errors += 1;
                        }
                    }
                }
                (dhcp6::REPLY, 1, State::Requested(t0)) => {
                    e.rr_us = Some((t - t0).as_secs_f64() * 1e6);
                    self.st[path].answered[1] += 1;
                    if m.ia_na_addresses().iter().all(|a| a.2 == 0) {
                        e.state = State::Failed;
                        self.st[path].failed.push("Reply without a lease".into());
                    } else {
                        e.state = State::Done;
                    }
                }
                _ => self.st[path].late_or_unknown += 1,
            }
        }

        async fn on_direct(&mut self, t: Instant, data: &[u8]) {
            let inner = RelayMsg::parse(data)
                .ok()
                .filter(|r| r.msg_type == dhcp6::RELAY_REPL)
                .and_then(|r| r.option(dhcp6::OPT_RELAY_MSG).map(<[u8]>::to_vec));
            match inner {
                Some(inner) => self.on_answer(DIRECT, t, &inner).await,
                None => self.st[DIRECT].late_or_unknown += 1,
            }
        }

        async fn on_esp(&mut self, t: Instant, src: Ipv6Addr, data: &[u8]) {
            let t_open = Instant::now();
            let action = self
                .mn
                .esp
                .decapsulate(t_open, IpAddr::V6(src), data, &mut self.mn.out);
            let payload = match action {
                EspAction::ToTun(p) => {
                    let d = Instant::now() - t_open;
                    let payload = esp::datagram::parse_udp(p)
                        .ok()
                        .filter(|d| d.dst.port() == dhcp6_client::CLIENT_PORT)
                        .map(|d| d.payload.to_vec());
                    self.open_ns.push(d.as_secs_f64() * 1e9);
                    payload
                }
                _ => None,
            };
            match payload {
                Some(p) => self.on_answer(RELAY, t, &p).await,
                None => self.st[RELAY].late_or_unknown += 1,
            }
        }

        fn expire(&mut self, now: Instant) {
            while let Some(&Reverse((d, path, k, stage))) = self.drops.peek() {
                if d > now {
                    break;
                }
                self.drops.pop();
                let e = &mut self.ex[path][k];
                let pending = match (stage, e.state) {
                    (0, State::Solicited(t)) | (1, State::Requested(t)) => t + DROP_AFTER == d,
                    _ => false,
                };
                if pending {
                    e.state = State::Dropped;
                    self.st[path].dropped[stage] += 1;
                }
            }
        }

        fn in_flight(&self) -> bool {
            self.ex.iter().flatten().any(|e| {
                matches!(
                    e.state,
                    State::NotSent | State::Solicited(_) | State::Requested(_)
                )
            })
        }
    }

    pub(super) async fn run(
        mn_ns: &str,
        ha_ns: &str,
        rate: u32,
        warmup: u32,
        seconds: u32,
    ) -> Result<Value, String> {
        let mut sys = SystemRng::new();
        let mut b = [0u8; 8];
        sys.fill(&mut b);
        let ll = Ipv6Addr::from((0xfe80_u128 << 112) | u128::from(u64::from_be_bytes(b).max(1)));
        sys.fill(&mut b);
        let direct_peer =
            Ipv6Addr::from((0xfe80_u128 << 112) | u128::from(u64::from_be_bytes(b).max(1)));
        let mut direct_ifid = vec![0u8; INTERFACE_ID_LEN];
        sys.fill(&mut direct_ifid);
        let mut run_id = [0u8; 4];
        sys.fill(&mut run_id);

        // The mobile node's sockets in its namespace, the direct client's in the home agent's.
        enter(mn_ns).map_err(|e| format!("setns {mn_ns}: {e}"))?;
        let ike = IkeSocket::bind(SocketAddr::new(IpAddr::V6(MN_COA), 500))
            .map_err(|e| format!("UDP [{MN_COA}]:500: {e}"))?;
        let esp_sock = EspSocket::open(Some(MN_COA)).map_err(|e| format!("raw ESP socket: {e}"))?;
        enter(ha_ns).map_err(|e| format!("setns {ha_ns}: {e}"))?;
        let direct =
            tokio::net::UdpSocket::bind(SocketAddr::new(IpAddr::V6(DIRECT_SRC), DHCP_SERVER_PORT))
                .await
                .map_err(|e| format!("UDP [{DIRECT_SRC}]:547: {e}"))?;

        let mut mn = Mn {
            engine: Engine::new(engine_config(), Box::new(SystemRng::new())),
            esp: Esp::new(),
            ike,
            esp_sock,
            ll,
            sa: None,
            tunnel: None,
            child_request: None,
            failed: None,
            tunnel_gone: None,
            scratch: Vec::with_capacity(2048),
            out: Vec::with_capacity(2048),
        };
        let (p1_ms, it_ms) = mn.bootstrap().await?;
        eprintln!("initial tunnel up: phase 1 {p1_ms:.1} ms, Quick Mode {it_ms:.1} ms");

        let period = Duration::from_secs(1) / rate;
        let n_warm = (rate * warmup) as usize;
        let n = n_warm + (rate * seconds) as usize;
        let offset = [Duration::ZERO, period / 2];
        let mk = |_: usize| -> Vec<Exchange> {
            (0..n)
                .map(|k| Exchange {
                    state: State::NotSent,
                    warmup: k < n_warm,
                    due_us: (period * k as u32).as_secs_f64() * 1e6,
                    sa_us: None,
                    rr_us: None,
                })
                .collect()
        };
        let mut r = Run {
            mn,
            direct,
            direct_peer,
            direct_ifid,
            run_id,
            ex: [mk(DIRECT), mk(RELAY)],
            st: [PathStats::default(), PathStats::default()],
            drops: BinaryHeap::new(),
            seal_ns: Vec::with_capacity(4 * n),
            open_ns: Vec::with_capacity(4 * n),
            paired: [Vec::new(), Vec::new()],
        };
        let mut next = [0usize; 2];
        let mut b_esp = vec![0u8; 65536];
        let mut b_direct = vec![0u8; 65536];
        let mut b_ike = vec![0u8; 65536];
        // Start a little ahead so the first sends are on time.
        let t0 = Instant::now() + Duration::from_millis(20);
        let due = |p: usize, k: usize| t0 + period * k as u32 + offset[p];
        loop {
            if stopping() {
                return Err("stopped by a signal".into());
            }
            let now = Instant::now();
            // Both paths' due exchanges, in the order they were due.
            loop {
                let p = match (next[DIRECT] < n, next[RELAY] < n) {
                    (false, false) => break,
                    (true, false) => DIRECT,
                    (false, true) => RELAY,
                    (true, true) => {
                        if due(DIRECT, next[DIRECT]) <= due(RELAY, next[RELAY]) {
                            DIRECT
                        } else {
                            RELAY
                        }
                    }
                };
                if due(p, next[p]) > now {
                    break;
                }
                let k = next[p];
                next[p] += 1;
                r.start(p, k).await;
            }
            r.expire(Instant::now());
            if next.iter().all(|&k| k >= n) && !r.in_flight() {
                break;
            }
            let wake = [
                (next[DIRECT] < n).then(|| due(DIRECT, next[DIRECT])),
                (next[RELAY] < n).then(|| due(RELAY, next[RELAY])),
                r.drops.peek().map(|Reverse((d, ..))| *d),
                r.mn.timeout(),
                Some(Instant::now() + Duration::from_millis(250)),
            ]
            .into_iter()
            .flatten()
            .min()
            .expect("a deadline");
            tokio::select! {
                res = r.mn.esp_sock.recv(&mut b_esp) => {
                    let t = Instant::now();
                    if let Ok((len, src, _dst)) = res {
                        r.on_esp(t, src, &b_esp[..len]).await;
                    }
                },
                res = r.direct.recv_from(&mut b_direct) => {
                    let t = Instant::now();
                    if let Ok((len, _)) = res {
                        r.on_direct(t, &b_direct[..len]).await;
                    }
                },
                res = r.mn.ike.recv(&mut b_ike) => {
                    if let Ok((len, from, local)) = res {
                        r.mn.on_ike(from, local, &b_ike[..len]).await;
                    }
                },
                () = tokio::time::sleep_until(wake.into()) => r.mn.on_timer(Instant::now()).await,
            }
        }

        // Paired differences: the relayed exchange k against the direct exchange k.
        for k in 0..n {
            let (d, v) = (&r.ex[DIRECT][k], &r.ex[RELAY][k]);
            if d.warmup {
                continue;
            }
            if let (Some(a), Some(b)) = (d.sa_us, v.sa_us) {
                r.paired[0].push(b - a);
            }
            if let (Some(a), Some(b)) = (d.rr_us, v.rr_us) {
                r.paired[1].push(b - a);
            }
        }
        let gone_during_run = r.mn.tunnel_gone.clone();
        // Say goodbye to the home agent (Delete of the IKE SA and its child).
        if let Some(sa) = r.mn.sa {
            let _ = r.mn.engine.delete_ike_sa(Instant::now(), sa);
            r.mn.pump().await;
        }

        let mut paths = serde_json::Map::new();
        for (p, name) in PATHS.iter().enumerate() {
            let measured: Vec<&Exchange> = r.ex[p].iter().filter(|e| !e.warmup).collect();
            let sa: Vec<f64> = measured.iter().filter_map(|e| e.sa_us).collect();
            let rr: Vec<f64> = measured.iter().filter_map(|e| e.rr_us).collect();
            let four: Vec<f64> = measured
                .iter()
                .filter_map(|e| Some(e.sa_us? + e.rr_us?))
                .collect();
            let st = &r.st[p];
            let mut failed: Vec<String> = st.failed.clone();
            failed.sort();
            failed.dedup();
            let dropped_measured = |stage: usize| {
                measured
                    .iter()
                    .filter(|e| {
                        e.state == State::Dropped
                            && if stage == 0 {
                                e.sa_us.is_none()
                            } else {
                                e.sa_us.is_some()
                            }
                    })
                    .count()
            };
            paths.insert(
                (*name).to_owned(),
                json!({
                    "exchanges": measured.len(),
                    "exchanges_answered": r.ex[p].iter().filter(|e| e.state == State::Done).count(),
                    "solicit_advertise_us": stats(&sa),
                    "request_reply_us": stats(&rr),
                    "four_way_us": stats(&four),
                    "drops_solicit_advertise": dropped_measured(0),
                    "drops_request_reply": dropped_measured(1),
                    "counters_incl_warmup": {
                        "sent": st.sent, "answered": st.answered, "dropped": st.dropped,
                        "late_or_unknown": st.late_or_unknown, "send_errors": st.send_errors,
                        "failed": st.failed.len(), "failure_reasons": failed,
                    },
                    "samples": measured.iter().map(|e| json!([
                        (e.due_us * 10.0).round() / 10.0,
                        e.sa_us.map(|v| (v * 10.0).round() / 10.0),
                        e.rr_us.map(|v| (v * 10.0).round() / 10.0),
                    ])).collect::<Vec<_>>(),
                }),
            );
        }
        Ok(json!({
            "initial_tunnel": {
                "phase1_ms": p1_ms,
                "quick_mode_ms": it_ms,
                "link_local": ll.to_string(),
                "gone_during_run": gone_during_run,
            },
            "direct_source": DIRECT_SRC.to_string(),
            "samples_format": "[due µs after the start, Solicit-Advertise µs, Request-Reply µs]",
            "direct": paths.remove("direct"),
            "relay": paths.remove("relay"),
            "paired_overhead_us": {
                "solicit_advertise": stats(&r.paired[0]),
                "request_reply": stats(&r.paired[1]),
            },
            "mn_esp_ns": {
                "seal": stats(&r.seal_ns),
                "open": stats(&r.open_ns),
            },
        }))
    }
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

fn table(doc: &Value) -> String {
    let mut t = String::new();
    let ours = &doc["ours"];
    let _ = writeln!(
        t,
        "relay overhead (issue 6): DHCPv6 4-way exchanges, {}/s per path for {} s (+{} s warm-up), one Kea ({})",
        doc["rate_per_s"],
        doc["seconds"],
        doc["warmup_s"],
        doc["kea_version"].as_str().unwrap_or("?")
    );
    let _ = writeln!(
        t,
        "{:<36} {:>6} | {:^30} | {:^30} | {:>5}",
        "µs per exchange", "n", "Solicit-Advertise", "Request-Reply", "drops"
    );
    let _ = writeln!(
        t,
        "{:<36} {:>6} | {:>6} {:>7} {:>7} {:>7} | {:>6} {:>7} {:>7} {:>7} |",
        "", "", "min", "p50", "avg", "p95", "min", "p50", "avg", "p95"
    );
    if let Some(perf) = doc["perfdhcp"].as_array() {
        for p in perf {
            let (sa, rr) = (&p["solicit_advertise"], &p["request_reply"]);
            let _ = writeln!(
                t,
                "{:<36} {:>6} | {:>6.0} {:>7} {:>7.0} {:>7} | {:>6.0} {:>7} {:>7.0} {:>7} | {:>5}",
                format!(
                    "perfdhcp direct {}/s ({})",
                    p["rate_per_s"],
                    p["when"].as_str().unwrap_or("")
                ),
                f(&sa["received"]),
                f(&sa["min_us"]),
                "-",
                f(&sa["avg_us"]),
                "-",
                f(&rr["min_us"]),
                "-",
                f(&rr["avg_us"]),
                "-",
                f(&sa["drops"]) + f(&rr["drops"]),
            );
        }
    }
    for (name, key) in [
        ("ours direct (Relay-Forw from HA ns)", "direct"),
        ("ours through mip6-ha's relay", "relay"),
    ] {
        let p = &ours[key];
        if p.is_null() {
            continue;
        }
        let (sa, rr) = (&p["solicit_advertise_us"], &p["request_reply_us"]);
        let _ = writeln!(
            t,
            "{:<36} {:>6} | {:>6.0} {:>7.0} {:>7.0} {:>7.0} | {:>6.0} {:>7.0} {:>7.0} {:>7.0} | {:>5}",
            name,
            p["exchanges"].as_u64().unwrap_or(0),
            f(&sa["min"]),
            f(&sa["p50"]),
            f(&sa["mean"]),
            f(&sa["p95"]),
            f(&rr["min"]),
            f(&rr["p50"]),
            f(&rr["mean"]),
            f(&rr["p95"]),
            p["drops_solicit_advertise"].as_u64().unwrap_or(0)
                + p["drops_request_reply"].as_u64().unwrap_or(0),
        );
    }
    let (d, v) = (&ours["direct"], &ours["relay"]);
    if !d.is_null() && !v.is_null() {
        let diff = |k: &str, q: &str| f(&v[k][q]) - f(&d[k][q]);
        let _ = writeln!(
            t,
            "overhead = through relay − direct:  Solicit-Advertise p50 {:+.0} µs, p95 {:+.0} µs; Request-Reply p50 {:+.0} µs, p95 {:+.0} µs; 4-way p50 {:+.0} µs, p95 {:+.0} µs",
            diff("solicit_advertise_us", "p50"),
            diff("solicit_advertise_us", "p95"),
            diff("request_reply_us", "p50"),
            diff("request_reply_us", "p95"),
            diff("four_way_us", "p50"),
            diff("four_way_us", "p95"),
        );
        let po = &ours["paired_overhead_us"];
        let _ = writeln!(
            t,
            "paired (relayed k − direct k):      Solicit-Advertise p50 {:+.0} µs, p95 {:+.0} µs; Request-Reply p50 {:+.0} µs, p95 {:+.0} µs",
            f(&po["solicit_advertise"]["p50"]),
            f(&po["solicit_advertise"]["p95"]),
            f(&po["request_reply"]["p50"]),
            f(&po["request_reply"]["p95"]),
        );
    }
    let ping = &doc["ping"];
    if !ping.is_null() {
        let _ = writeln!(
            t,
            "ICMPv6 echo RTT (kernel): MN↔HA {:.0} µs avg (min {:.0}), HA↔Kea {:.0} µs avg (min {:.0})",
            f(&ping["mn_to_ha"]["avg_us"]),
            f(&ping["mn_to_ha"]["min_us"]),
            f(&ping["ha_to_kea"]["avg_us"]),
            f(&ping["ha_to_kea"]["min_us"]),
        );
    }
    let esp = &ours["mn_esp_ns"];
    if !esp.is_null() {
        let _ = writeln!(
            t,
            "ESP AES-128-GCM at the node, per DHCPv6 packet: seal p50 {:.0} ns, open p50 {:.0} ns (the HA does one open + one seal per exchange)",
            f(&esp["seal"]["p50"]),
            f(&esp["open"]["p50"]),
        );
    }
    let ha = &ours["mip6_ha"];
    if !ha.is_null() {
        let _ = writeln!(
            t,
            "mip6-ha CPU: {:.2} s in {:.1} s, {:.0} µs per relayed 4-way exchange ({:.0} above its idle {:.1} ms/s; 10 ms ticks; warm-up included); Kea CPU {:.2} s",
            f(&ha["cpu_s"]),
            f(&ha["wall_s"]),
            f(&ha["cpu_us_per_relayed_exchange"]),
            f(&ha["cpu_us_per_relayed_exchange_above_idle"]),
            f(&ha["idle_cpu_s_per_s"]) * 1e3,
            f(&ours["kea_cpu_s"]),
        );
    }
    t
}
