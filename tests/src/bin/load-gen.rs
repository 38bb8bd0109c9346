//! `load-gen`: home-agent capacity (issue 6). One process plays many mobile nodes: it
//! bootstraps N of them against one `mip6-ha` with Kea on the home link and measures how the
//! home agent copes.
//!
//! ```text
//! cargo build --release -p home-agent && cargo build --release -p interop-tests --bin load-gen
//! ./target/release/load-gen [--sizes 100,1000,10000] [--window 128] [--out load-gen.json]
//!                           [--distinct-psk] [--limit-s 900]
//! ```
//!
//! Per size N: a fresh Kea (pool of 65,536 addresses, Rapid Commit) and a fresh `mip6-ha`
//! whose configuration has N `[[peers]]` (`mn<i>@load.example`; one PSK shared by all unless
//! `--distinct-psk`); N care-of addresses `2001:db8:fe::<i>` on the mobile-node namespace's
//! `mn0` (`ip -batch`), with a route to them in the home agent's namespace via the namespace's
//! own address (so the home agent holds one neighbour entry, not N). Then the program runs
//! itself inside the mobile-node namespace (`ip netns exec … load-gen --worker`), where every
//! node is the real sans-IO code of `mip6-mn`: the bootstrap state machine
//! (`mip6_mn::bootstrap::Bootstrap`, `address_source = "dhcpv6"`: phase 1, initial tunnel,
//! DHCPv6 through the home agent's relay to Kea, the two RFC 3776 Quick Modes, Delete of the
//! initial tunnel), its own `ikev1::Engine` (initiator) and its own `esp::Esp` (the initial
//! tunnel's DHCPv6 packets). All nodes share one UDP socket on `[::]:500` (the datagram's
//! destination, from `IPV6_PKTINFO`, says which node it is for; each node sends from its
//! care-of address) and one raw ESP socket (likewise, by destination); one thread, one tokio
//! loop, one timer heap fed by each node's `poll_timeout`. At most `--window` bootstraps are
//! in flight; the next starts when one ends. A node that fails is counted with its reason and
//! not retried. The registration (Binding Update) that `mip6-mn` starts once ready is not part
//! of the measurement.
//!
//! Measured per N: successes and failures (by reason); bootstraps per second (first Main Mode
//! to last success); p50/p99 of each node's bootstrap time (the bootstrap's own `total`: first
//! Main Mode to ready); the home agent's start-up time with N peers, its peak RSS (`VmHWM`),
//! its RSS growth per established node and its CPU time (`utime + stime`) during the run,
//! with Kea's and the generator's CPU time next to it (they share the machine). Prints a table
//! and writes everything to `--out` (JSON).
//!
//! Needs root (network namespaces) and Kea (`scripts/install-deps.sh`). Ctrl-C stops the
//! worker and tears the lab down.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::{IpAddr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use esp::{Esp, EspAction, PacketInfo, SaHandle, Selector};
use ikev1::crypto::{Rng as _, SystemRng};
use ikev1::{ChildSa, Engine, Event, Identity, IkeSaId, LocalAuth, PeerAuth, PeerConfig};
use interop_tests::bench::{catch_signals, daemon_pid, machine, sibling_bin, stopping};
use mip6_mn::bootstrap::{Action, Bootstrap, Settings, SharedRng};
use serde_json::{Value, json};
use testlab::{HA_HOME, HA_INET, Kea, KeaOptions, Lab, MN_COA, MN_IF, Node, Spawn};

/// The care-of addresses: `2001:db8:fe::<i + 1>`, routed by the home agent via [`MN_COA`].
const COA_PREFIX: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xfe, 0, 0, 0, 0, 0);
const PSK: &str = "load-gen-psk-0123456789abcdef";
const HA_ID: &str = "ha.example.com";

fn coa(i: usize) -> Ipv6Addr {
    Ipv6Addr::from(u128::from(COA_PREFIX) + 1 + i as u128)
}

fn identity(i: usize) -> String {
    format!("mn{i}@load.example")
}

fn psk(i: usize, distinct: bool) -> String {
    if distinct {
        format!("{PSK}-{i}")
    } else {
        PSK.to_owned()
    }
}

fn arg_value(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--worker") {
        worker::main(&args);
        return;
    }
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!(
            "load-gen [--sizes 100,1000,10000] [--window 128] [--out load-gen.json] [--distinct-psk] [--limit-s 900]"
        );
        return;
    }
    let sizes: Vec<usize> = arg_value(&args, "--sizes")
        .unwrap_or_else(|| "100,1000,10000".into())
        .split(',')
        .map(|s| s.trim().parse().expect("--sizes: numbers"))
        .collect();
    let window: usize = arg_value(&args, "--window").map_or(128, |s| s.parse().expect("--window"));
    let limit: u64 = arg_value(&args, "--limit-s").map_or(900, |s| s.parse().expect("--limit-s"));
    let out: PathBuf = arg_value(&args, "--out")
        .unwrap_or_else(|| "load-gen.json".into())
        .into();
    let distinct = args.iter().any(|a| a == "--distinct-psk");
    catch_signals("load-gen");
    let ha_bin = sibling_bin("mip6-ha");
    let max = sizes.iter().copied().max().unwrap_or(0);

    let lab = Lab::new("load_gen").expect("the namespace lab (needs root)");
    setup_coas(&lab, max);
    let mut runs = Vec::new();
    for &n in &sizes {
        if stopping() {
            break;
        }
        match run_size(&lab, &ha_bin, n, window, distinct, limit) {
            Ok(r) => runs.push(r),
            Err(e) => {
                eprintln!("N = {n}: {e}");
                runs.push(json!({ "n": n, "error": e }));
            }
        }
    }
    let table = table(&runs, window, distinct);
    print!("{table}");
    let machine = machine();
    let doc =
        json!({ "machine": machine, "window": window, "distinct_psk": distinct, "runs": runs });
    match std::fs::write(
        &out,
        serde_json::to_string_pretty(&doc).expect("JSON") + "\n",
    ) {
        Ok(()) => println!("raw figures in {}", out.display()),
        Err(e) => eprintln!("writing {}: {e}", out.display()),
    }
    drop(lab);
    if stopping() {
        std::process::exit(130);
    }
}

/// `n` care-of addresses on `mn0`, and the home agent's route to them.
fn setup_coas(lab: &Lab, n: usize) {
    let t0 = Instant::now();
    let mut batch = String::new();
    for i in 0..n {
        let _ = writeln!(batch, "address add {}/128 dev {MN_IF} nodad", coa(i));
    }
    let file = lab.dir().join("coas.batch");
    std::fs::write(&file, batch).expect("batch file");
    let f = file.display().to_string();
    // The kernel's address list is linear: 10,000 addresses take about two minutes.
    let o = lab
        .exec_timeout(
            Node::Mn,
            Duration::from_secs(1800),
            "ip",
            ["-6", "-batch", &f],
        )
        .expect("ip -batch (care-of addresses)");
    assert!(
        o.status.success(),
        "ip -batch: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    lab.route(Node::Ha, &format!("{COA_PREFIX}/64"), MN_COA)
        .expect("route to the care-of addresses");
    eprintln!(
        "{n} care-of addresses on {MN_IF} in {:.1} s",
        t0.elapsed().as_secs_f64()
    );
}

fn write_ha(dir: &Path, n: usize, distinct: bool) -> PathBuf {
    let p = dir.join(format!("ha-{n}.toml"));
    let mut text = format!(
        r#"listen = ["{HA_INET}"]
control_socket = "{}"
log_level = "warn"
[home_link]
interface = "ha-home"
address = "{HA_HOME}"
prefix = "2001:db8:1::/64"
[dhcpv6]
servers = ["2001:db8:1::2"]
[bindings]
max_entries = 65536
[ike]
identity = "{HA_ID}"
proposals = ["aes128-sha256-ecp256"]
esp_proposals = ["aes128gcm16"]
"#,
        dir.join(format!("ha-{n}.sock")).display()
    );
    for i in 0..n {
        let _ = write!(
            text,
            "[[peers]]\nidentity = \"{}\"\npsk = \"{}\"\n",
            identity(i),
            psk(i, distinct)
        );
    }
    std::fs::write(&p, text).expect("ha.toml");
    p
}

/// What `/proc/<pid>` says: (VmRSS KiB, VmHWM KiB, utime + stime seconds).
fn proc_stats(pid: u32) -> Option<(u64, u64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
    };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
    let after = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    // USER_HZ is 100 on every Linux this runs on.
    Some((kib("VmRSS:")?, kib("VmHWM:")?, ticks / 100.0))
}

fn status_ok(ha_bin: &str, conf: &Path) -> bool {
    Command::new(ha_bin)
        .args(["status", "--json", "--config"])
        .arg(conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn ha_status(ha_bin: &str, conf: &Path) -> Option<Value> {
    let o = Command::new(ha_bin)
        .args(["status", "--json", "--config"])
        .arg(conf)
        .output()
        .ok()?;
    o.status
        .success()
        .then(|| serde_json::from_slice(&o.stdout).ok())
        .flatten()
}

fn run_size(
    lab: &Lab,
    ha_bin: &str,
    n: usize,
    window: usize,
    distinct: bool,
    limit: u64,
) -> Result<Value, String> {
    eprintln!("--- N = {n} ---");
    let d = lab.dir();
    let mut kea = Kea::start(
        lab,
        KeaOptions::new()
            .name(&format!("kea-{n}"))
            .rapid_commit(true)
            .pool(
                Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 1, 0),
                Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 1, 0xffff),
            ),
    )
    .map_err(|e| format!("Kea: {e}"))?;
    let conf = write_ha(d, n, distinct);
    let t_spawn = Instant::now();
    // LOAD_GEN_HA_WRAPPER runs the home agent under a tool, e.g. `heaptrack -o FILE`.
    let wrapper: Vec<String> = std::env::var("LOAD_GEN_HA_WRAPPER")
        .map(|w| w.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default();
    let spawn = match wrapper.split_first() {
        Some((tool, rest)) => Spawn::new(tool).args(rest).arg(ha_bin),
        None => Spawn::new(ha_bin),
    };
    let mut ha = lab
        .spawn(
            Node::Ha,
            spawn
                .arg("run")
                .arg("--config")
                .arg(&conf)
                .log_name(format!("mip6-ha-{n}")),
        )
        .map_err(|e| format!("mip6-ha: {e}"))?;
    while !status_ok(ha_bin, &conf) {
        if t_spawn.elapsed() > Duration::from_secs(300) || stopping() {
            return Err(format!("mip6-ha did not start:\n{}", ha.log()));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let startup_s = t_spawn.elapsed().as_secs_f64();
    let ha_pid = daemon_pid(ha.pid(), "mip6-ha");
    let kea_pid = kea.pid();
    std::thread::sleep(Duration::from_millis(300));
    let (rss0, _, cpu0) = proc_stats(ha_pid).ok_or("no /proc for mip6-ha")?;
    let kea0 = proc_stats(kea_pid).map_or(0.0, |s| s.2);
    eprintln!(
        "mip6-ha (pid {ha_pid}) up with {n} peers in {startup_s:.2} s, RSS {rss0} KiB, CPU {cpu0:.2} s"
    );

    let result_file = d.join(format!("worker-{n}.json"));
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut child: Child = Command::new("ip")
        .args(["netns", "exec", lab.netns(Node::Mn)])
        .arg(&exe)
        .args([
            "--worker",
            "--n",
            &n.to_string(),
            "--window",
            &window.to_string(),
        ])
        .args(["--limit-s", &limit.to_string(), "--out"])
        .arg(&result_file)
        .args(if distinct {
            &["--distinct-psk"][..]
        } else {
            &[][..]
        })
        .spawn()
        .map_err(|e| format!("worker: {e}"))?;
    // Sample the home agent while the worker runs (peak RSS is VmHWM anyway).
    let mut peak_cpu_rate: f64 = 0.0;
    let mut last = (Instant::now(), cpu0);
    let status = loop {
        if let Some(st) = child.try_wait().map_err(|e| e.to_string())? {
            break st;
        }
        if stopping() {
            let _ = child.kill();
            let _ = child.wait();
            return Err("stopped by a signal".into());
        }
        std::thread::sleep(Duration::from_millis(250));
        if let Some((_, _, c)) = proc_stats(ha_pid) {
            let dt = last.0.elapsed().as_secs_f64();
            if dt >= 1.0 {
                peak_cpu_rate = peak_cpu_rate.max((c - last.1) / dt);
                last = (Instant::now(), c);
            }
        }
    };
    let (rss1, hwm, cpu1) = proc_stats(ha_pid).ok_or("mip6-ha is gone")?;
    let kea1 = proc_stats(kea_pid).map_or(0.0, |s| s.2);
    let ha_st = ha_status(ha_bin, &conf);
    if !status.success() {
        return Err(format!("worker exited with {status}"));
    }
    let mut w: Value = serde_json::from_slice(
        &std::fs::read(&result_file).map_err(|e| format!("worker result: {e}"))?,
    )
    .map_err(|e| format!("worker result: {e}"))?;
    let ok = w["successes"].as_u64().unwrap_or(0);
    let ha_obj = json!({
        "pid": ha_pid,
        "startup_s": startup_s,
        "rss_before_kib": rss0,
        "rss_after_kib": rss1,
        "peak_rss_kib": hwm,
        "rss_per_node_kib": if ok > 0 { (rss1 as f64 - rss0 as f64) / ok as f64 } else { 0.0 },
        "cpu_s": cpu1 - cpu0,
        "cpu_per_bootstrap_ms": if ok > 0 { (cpu1 - cpu0) * 1e3 / ok as f64 } else { 0.0 },
        "peak_cpu_cores": peak_cpu_rate,
        // Established peers as the home agent's `status` reports them (refreshed once a second).
        "status_peers": ha_st.as_ref().and_then(|s| s.get("peers")).and_then(Value::as_array).map(Vec::len),
        "status_counters": ha_st.as_ref().map(|s| s["counters"].clone()),
    });
    w["ha"] = ha_obj;
    w["kea_cpu_s"] = json!(kea1 - kea0);
    if !wrapper.is_empty() {
        // The tool writes its results when the daemon exits: SIGTERM the daemon itself (the
        // wrapper's pid is the tool's) and give it time to finish.
        let _ = Command::new("kill").arg(ha_pid.to_string()).status();
        let t = Instant::now();
        while Path::new(&format!("/proc/{ha_pid}")).exists()
            && t.elapsed() < Duration::from_secs(60)
        {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let _ = ha.stop();
    let _ = kea.stop();
    Ok(w)
}

fn num(v: &Value, k: &str) -> f64 {
    v[k].as_f64().unwrap_or(f64::NAN)
}

fn table(runs: &[Value], window: usize, distinct: bool) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "home-agent capacity: DHCPv6 path (phase 1, initial tunnel, DHCPv6 via the relay to Kea, 2 RFC 3776 Quick Modes), window {window}, {} PSK",
        if distinct {
            "one per peer"
        } else {
            "one shared"
        }
    );
    let _ = writeln!(
        t,
        "{:>6} {:>6} {:>5} {:>8} {:>8} {:>8} {:>9} {:>9} {:>9} {:>8} {:>9} {:>8} {:>8} {:>8}",
        "N",
        "ok",
        "fail",
        "boot/s",
        "p50 ms",
        "p99 ms",
        "HA up s",
        "HA peak",
        "KiB/node",
        "HA cpu",
        "ms/boot",
        "HA cores",
        "Kea cpu",
        "gen cpu"
    );
    for r in runs {
        if let Some(e) = r.get("error") {
            let _ = writeln!(t, "{:>6} error: {e}", r["n"]);
            continue;
        }
        let ha = &r["ha"];
        let _ = writeln!(
            t,
            "{:>6} {:>6} {:>5} {:>8.0} {:>8.1} {:>8.1} {:>9.2} {:>7.1}Mi {:>9.2} {:>7.1}s {:>9.2} {:>8.2} {:>7.2}s {:>7.2}s",
            r["n"].as_u64().unwrap_or(0),
            r["successes"].as_u64().unwrap_or(0),
            r["failures"].as_u64().unwrap_or(0),
            num(r, "bootstraps_per_s"),
            num(r, "p50_ms"),
            num(r, "p99_ms"),
            num(ha, "startup_s"),
            num(ha, "peak_rss_kib") / 1024.0,
            num(ha, "rss_per_node_kib"),
            num(ha, "cpu_s"),
            num(ha, "cpu_per_bootstrap_ms"),
            num(ha, "peak_cpu_cores"),
            num(r, "kea_cpu_s"),
            num(r, "generator_cpu_s"),
        );
        if let Some(reasons) = r["failure_reasons"].as_object() {
            for (why, count) in reasons {
                let _ = writeln!(t, "         {count} x {why}");
            }
        }
    }
    t
}

/// The generator proper, inside the mobile-node namespace.
mod worker {
    use super::*;

    use netio::{EspSocket, IkeSocket};

    /// A child SA installed in a node's data plane.
    struct Installed {
        spi_in: u32,
        tunnel: bool,
        selector: Option<Selector>,
        inbound: SaHandle,
        outbound: SaHandle,
        ike_sa: IkeSaId,
    }

    enum Outcome {
        Waiting,
        Running,
        Ready,
        Failed,
    }

    struct MobileNode {
        coa: Ipv6Addr,
        engine: Engine,
        esp: Esp,
        boot: Bootstrap,
        installed: Vec<Installed>,
        outcome: Outcome,
        /// The deadline in the timer heap for this node, if any.
        timer: Option<Instant>,
    }

    #[derive(Default)]
    struct Counters {
        ike_tx: u64,
        ike_rx: u64,
        esp_tx: u64,
        esp_rx: u64,
        send_errors: u64,
        dhcp_no_sa: u64,
        esp_drops: u64,
        unknown_dst: u64,
    }

    struct Run {
        ike: IkeSocket,
        esp: EspSocket,
        ha: Ipv6Addr,
        nodes: Vec<MobileNode>,
        by_coa: HashMap<Ipv6Addr, usize>,
        timers: BinaryHeap<Reverse<(Instant, usize)>>,
        in_flight: usize,
        next: usize,
        done: usize,
        first_start: Option<Instant>,
        last_success: Option<Instant>,
        latencies_ms: Vec<f64>,
        failures: BTreeMap<String, u64>,
        c: Counters,
        scratch: Vec<u8>,
        out: Vec<u8>,
    }

    fn engine_config(i: usize, ha: Ipv6Addr, distinct: bool) -> ikev1::Config {
        let mut c = ikev1::Config::new(Identity::parse(&identity(i)), LocalAuth::Psk);
        c.peers = vec![PeerConfig {
            identity: Identity::parse(HA_ID),
            auth: PeerAuth::Psk(zeroize::Zeroizing::new(psk(i, distinct).into_bytes())),
            addrs: vec![IpAddr::V6(ha)],
        }];
        c.ike_proposals =
            vec![ikev1::IkeProposal::parse("aes128-sha256-ecp256", false).expect("proposal")];
        c.esp_proposals = vec![ikev1::EspProposal::parse("aes128gcm16", false).expect("proposal")];
        c
    }

    pub(super) fn main(args: &[String]) {
        let n: usize = arg_value(args, "--n")
            .and_then(|s| s.parse().ok())
            .expect("--n");
        let window: usize =
            arg_value(args, "--window").map_or(128, |s| s.parse().expect("--window"));
        let limit: u64 =
            arg_value(args, "--limit-s").map_or(900, |s| s.parse().expect("--limit-s"));
        let out: PathBuf = arg_value(args, "--out").expect("--out").into();
        let distinct = args.iter().any(|a| a == "--distinct-psk");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let result = rt.block_on(run(n, window, distinct, Duration::from_secs(limit)));
        let mut f = std::fs::File::create(&out).expect("worker result file");
        f.write_all(serde_json::to_string(&result).expect("JSON").as_bytes())
            .expect("worker result");
    }

    async fn run(n: usize, window: usize, distinct: bool, limit: Duration) -> Value {
        let ha = HA_INET;
        let ike = IkeSocket::bind(SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 500))
            .expect("UDP [::]:500");
        let esp = EspSocket::open(None).expect("raw ESP socket");
        let _ = ike.set_buffer_sizes(8 << 20, 8 << 20);
        let _ = esp.set_buffer_sizes(8 << 20, 8 << 20);
        let rng: SharedRng = {
            let mut sys = SystemRng::new();
            Arc::new(Mutex::new(move |b: &mut [u8]| sys.fill(b)))
        };
        let t_build = Instant::now();
        let mut nodes = Vec::with_capacity(n);
        let mut by_coa = HashMap::with_capacity(n);
        let mut sys = SystemRng::new();
        for i in 0..n {
            let mut u = [0u8; 16];
            sys.fill(&mut u);
            let settings = Settings::dhcpv6(
                ha,
                Duration::from_secs(30),
                dhcp6_client::Duid::uuid_from_random(u),
            );
            let a = coa(i);
            by_coa.insert(a, i);
            nodes.push(MobileNode {
                coa: a,
                engine: Engine::new(engine_config(i, ha, distinct), Box::new(SystemRng::new())),
                esp: Esp::new(),
                boot: Bootstrap::new(settings, Arc::clone(&rng)),
                installed: Vec::new(),
                outcome: Outcome::Waiting,
                timer: None,
            });
        }
        eprintln!(
            "worker: {n} nodes built in {:.2} s",
            t_build.elapsed().as_secs_f64()
        );
        let mut run = Run {
            ike,
            esp,
            ha,
            nodes,
            by_coa,
            timers: BinaryHeap::new(),
            in_flight: 0,
            next: 0,
            done: 0,
            first_start: None,
            last_success: None,
            latencies_ms: Vec::with_capacity(n),
            failures: BTreeMap::new(),
            c: Counters::default(),
            scratch: Vec::with_capacity(2048),
            out: Vec::with_capacity(2048),
        };
        let cpu0 = proc_stats(std::process::id()).map_or(0.0, |s| s.2);
        let deadline = Instant::now() + limit;
        let mut b_ike = vec![0u8; 65536];
        let mut b_esp = vec![0u8; 65536];
        let mut progress = Instant::now();
        // (seconds since the first start, bootstraps done, successes), every 5 s.
        let mut samples: Vec<(f64, usize, usize)> = Vec::new();
        while run.done < n {
            while run.in_flight < window && run.next < n {
                let i = run.next;
                run.next += 1;
                run.start(i).await;
            }
            if run.done >= n {
                break;
            }
            if Instant::now() >= deadline {
                eprintln!("worker: time limit reached");
                break;
            }
            if progress.elapsed() >= Duration::from_secs(5) {
                progress = Instant::now();
                let since = run.first_start.map_or(0.0, |t| t.elapsed().as_secs_f64());
                samples.push((since, run.done, run.latencies_ms.len()));
                eprintln!(
                    "worker: {} done ({} ok), {} in flight",
                    run.done,
                    run.latencies_ms.len(),
                    run.in_flight
                );
            }
            let next_timer = run
                .timers
                .peek()
                .map_or(deadline, |Reverse((t, _))| *t)
                .min(deadline)
                .min(Instant::now() + Duration::from_secs(1));
            tokio::select! {
                biased;
                r = run.ike.recv(&mut b_ike) => match r {
                    Ok((len, from, local)) => run.on_ike(from, local, &b_ike[..len]).await,
                    Err(e) => eprintln!("worker: UDP receive: {e}"),
                },
                r = run.esp.recv(&mut b_esp) => match r {
                    Ok((len, src, dst)) => run.on_esp(src, dst, &b_esp[..len]).await,
                    Err(e) => eprintln!("worker: ESP receive: {e}"),
                },
                () = tokio::time::sleep_until(next_timer.into()) => run.fire_timers().await,
            }
        }
        let cpu1 = proc_stats(std::process::id()).map_or(0.0, |s| s.2);
        let unfinished = n - run.done;
        if unfinished > 0 {
            *run.failures
                .entry("unfinished at the time limit".into())
                .or_default() += unfinished as u64;
        }
        let ok = run.latencies_ms.len();
        let wall = match (run.first_start, run.last_success) {
            (Some(a), Some(b)) => (b - a).as_secs_f64(),
            _ => 0.0,
        };
        let mut lat = run.latencies_ms.clone();
        lat.sort_by(f64::total_cmp);
        let q = |p: f64| {
            if lat.is_empty() {
                f64::NAN
            } else {
                lat[(((lat.len() - 1) as f64) * p).round() as usize]
            }
        };
        let failures: u64 = run.failures.values().sum();
        json!({
            "n": n,
            "window": window,
            "successes": ok,
            "failures": failures,
            "failure_reasons": run.failures,
            "wall_s": wall,
            "bootstraps_per_s": if wall > 0.0 { ok as f64 / wall } else { 0.0 },
            "p50_ms": q(0.5),
            "p99_ms": q(0.99),
            "max_ms": lat.last().copied(),
            "generator_cpu_s": cpu1 - cpu0,
            "counters": {
                "ike_tx": run.c.ike_tx, "ike_rx": run.c.ike_rx,
                "esp_tx": run.c.esp_tx, "esp_rx": run.c.esp_rx,
                "send_errors": run.c.send_errors, "dhcp_no_sa": run.c.dhcp_no_sa,
                "esp_drops": run.c.esp_drops, "unknown_dst": run.c.unknown_dst,
            },
            "progress": samples,
            "latencies_ms": lat,
        })
    }

    impl Run {
        async fn start(&mut self, i: usize) {
            let now = Instant::now();
            self.first_start.get_or_insert(now);
            self.in_flight += 1;
            let node = &mut self.nodes[i];
            node.outcome = Outcome::Running;
            node.boot.start(now);
            self.drive(i).await;
        }

        async fn on_ike(&mut self, from: SocketAddr, local: SocketAddr, data: &[u8]) {
            self.c.ike_rx += 1;
            let IpAddr::V6(dst) = local.ip() else { return };
            let Some(&i) = self.by_coa.get(&dst) else {
                self.c.unknown_dst += 1;
                return;
            };
            self.nodes[i]
                .engine
                .handle_datagram(Instant::now(), local, from, data);
            self.drive(i).await;
        }

        async fn on_esp(&mut self, src: Ipv6Addr, dst: Ipv6Addr, data: &[u8]) {
            self.c.esp_rx += 1;
            let Some(&i) = self.by_coa.get(&dst) else {
                self.c.unknown_dst += 1;
                return;
            };
            let spi = esp::wire::spi(data).unwrap_or(0);
            let now = Instant::now();
            let node = &mut self.nodes[i];
            let action = node
                .esp
                .decapsulate(now, IpAddr::V6(src), data, &mut self.out);
            match action {
                EspAction::ToTun(p) => {
                    let Some(ike_sa) = node
                        .installed
                        .iter()
                        .find(|s| s.spi_in == spi)
                        .map(|s| s.ike_sa)
                    else {
                        return;
                    };
                    if let Ok(d) = esp::datagram::parse_udp(p)
                        && d.dst.port() == dhcp6_client::CLIENT_PORT
                    {
                        node.boot.handle_datagram(now, ike_sa, d.src, d.payload);
                    }
                }
                EspAction::Drop(_) => self.c.esp_drops += 1,
                _ => {}
            }
            self.drive(i).await;
        }

        async fn fire_timers(&mut self) {
            let now = Instant::now();
            while let Some(&Reverse((t, i))) = self.timers.peek() {
                if t > now {
                    break;
                }
                self.timers.pop();
                let node = &mut self.nodes[i];
                if node.timer != Some(t) {
                    continue; // stale
                }
                node.timer = None;
                node.engine.handle_timeout(now);
                node.esp.handle_timeout(now);
                while node.esp.poll_event().is_some() {}
                if matches!(node.outcome, Outcome::Running) {
                    node.boot.handle_timeout(now);
                }
                self.drive(i).await;
            }
        }

        /// Moves everything node `i`'s engines produced until none has more, then re-arms its
        /// timer.
        async fn drive(&mut self, i: usize) {
            loop {
                let mut more = false;
                while let Some(t) = self.nodes[i].engine.poll_transmit() {
                    more = true;
                    self.c.ike_tx += 1;
                    if self.ike.send(&t.data, t.local, t.remote).await.is_err() {
                        self.c.send_errors += 1;
                    }
                }
                while let Some(ev) = self.nodes[i].engine.poll_event() {
                    more = true;
                    let now = Instant::now();
                    let node = &mut self.nodes[i];
                    match &ev {
                        Event::ChildSaEstablished(c) => install(node, c, now),
                        Event::ChildSaDeleted { spi_in, .. } => {
                            uninstall(node, |s| s.spi_in == *spi_in)
                        }
                        Event::IkeSaDeleted { sa, .. } => uninstall(node, |s| s.ike_sa == *sa),
                        _ => {}
                    }
                    if matches!(node.outcome, Outcome::Running) {
                        node.boot.handle_ike_event(now, &ev);
                    }
                }
                while let Some(a) = self.nodes[i].boot.poll_action() {
                    more = true;
                    self.execute(i, a).await;
                }
                if !more {
                    break;
                }
            }
            let node = &mut self.nodes[i];
            let d = [
                node.engine.poll_timeout(),
                node.esp.poll_timeout(),
                if matches!(node.outcome, Outcome::Running) {
                    node.boot.poll_timeout()
                } else {
                    None
                },
            ]
            .into_iter()
            .flatten()
            .min();
            if d != node.timer {
                node.timer = d;
                if let Some(t) = d {
                    self.timers.push(Reverse((t, i)));
                }
            }
        }

        async fn execute(&mut self, i: usize, action: Action) {
            let now = Instant::now();
            let (ha, node) = (self.ha, &mut self.nodes[i]);
            match action {
                Action::InitiatePhase1 => {
                    let r = node
                        .engine
                        .initiate(
                            now,
                            0,
                            SocketAddr::new(IpAddr::V6(node.coa), 500),
                            SocketAddr::new(IpAddr::V6(ha), 500),
                        )
                        .map_err(|e| e.to_string());
                    node.boot.phase1_initiated(now, r);
                }
                Action::InitiateChild { sa, role, request } => {
                    let r = node
                        .engine
                        .initiate_child(now, sa, request)
                        .map_err(|e| e.to_string());
                    node.boot.child_initiated(now, role, r);
                }
                Action::RequestModeConfig { sa } => {
                    if let Err(e) = node.engine.request_mode_config(now, sa) {
                        node.boot
                            .action_failed(now, format!("requesting Mode Config: {e}"));
                    }
                }
                Action::DeleteChild { sa, spi_in } => {
                    let _ = node.engine.delete_child(now, sa, spi_in);
                }
                Action::DeleteIkeSa { sa } => {
                    let _ = node.engine.delete_ike_sa(now, sa);
                }
                Action::SendDhcp {
                    via,
                    src,
                    dst,
                    payload,
                } => self.send_dhcp(i, via, src, dst, &payload).await,
                Action::InstallAddress { .. } => node.boot.address_installed(now, Ok(())),
                Action::RemoveAddress { .. } | Action::PersistLease { .. } => {}
                Action::Ready { total, .. } => {
                    if matches!(node.outcome, Outcome::Running) {
                        node.outcome = Outcome::Ready;
                        self.latencies_ms.push(total.as_secs_f64() * 1e3);
                        self.last_success = Some(now);
                        self.in_flight -= 1;
                        self.done += 1;
                    }
                }
                Action::Failed { reason, .. } => {
                    if matches!(node.outcome, Outcome::Running) {
                        node.outcome = Outcome::Failed;
                        *self.failures.entry(generalize(&reason)).or_default() += 1;
                        self.in_flight -= 1;
                        self.done += 1;
                    }
                }
            }
        }

        /// Through the newest tunnel-mode child SA of `via` whose selector covers the
        /// datagram, as the tunnel task does.
        async fn send_dhcp(
            &mut self,
            i: usize,
            via: IkeSaId,
            src: SocketAddrV6,
            dst: SocketAddrV6,
            payload: &[u8],
        ) {
            let node = &mut self.nodes[i];
            if esp::datagram::build_udp(src, dst, payload, &mut self.scratch).is_none() {
                return;
            }
            let info = PacketInfo::parse(&self.scratch).ok();
            let h = node
                .installed
                .iter()
                .rev()
                .filter(|s| s.ike_sa == via && s.tunnel)
                .find(|s| matches!((&s.selector, &info), (Some(sel), Some(p)) if sel.matches(p)))
                .map(|s| s.outbound);
            let Some(h) = h else {
                self.c.dhcp_no_sa += 1;
                return;
            };
            let action = node
                .esp
                .encapsulate_with(Instant::now(), h, &self.scratch, &mut self.out);
            if let EspAction::ToNetwork(t) = action {
                self.c.esp_tx += 1;
                if self.esp.send(t.data, node.coa, self.ha).await.is_err() {
                    self.c.send_errors += 1;
                }
            }
        }
    }

    fn install(node: &mut MobileNode, c: &ChildSa, now: Instant) {
        let Ok((inb, outb)) = tunnel::convert::sa_params(c) else {
            return;
        };
        let Ok(inbound) = node.esp.add_sa(now, &inb) else {
            return;
        };
        let Ok(outbound) = node.esp.add_sa(now, &outb) else {
            node.esp.remove_sa(inbound);
            return;
        };
        node.installed.push(Installed {
            spi_in: c.spi_in,
            tunnel: c.mode == ikev1::Mode::Tunnel,
            selector: tunnel::convert::selector(c).ok(),
            inbound,
            outbound,
            ike_sa: c.ike_sa,
        });
    }

    fn uninstall(node: &mut MobileNode, gone: impl Fn(&Installed) -> bool) {
        let mut k = 0;
        while k < node.installed.len() {
            if gone(&node.installed[k]) {
                let s = node.installed.remove(k);
                node.esp.remove_sa(s.inbound);
                node.esp.remove_sa(s.outbound);
            } else {
                k += 1;
            }
        }
    }

    /// A failure reason without the per-node details (addresses, SPIs), for counting.
    fn generalize(reason: &str) -> String {
        reason
            .split_whitespace()
            .map(|w| {
                if w.contains("::") || w.contains('@') {
                    "<addr>"
                } else {
                    w
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}
