//! What the benchmark binaries (`load-gen`, `relay-bench`, `throughput`, `bench-bootstrap`)
//! share: stopping cleanly on a signal (so that the lab and its daemons are removed), finding
//! the daemons built next to them and their PIDs, and describing the machine the figures come
//! from.

use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{Value, json};

/// Set by SIGINT or SIGTERM once [`catch_signals`] ran.
pub static STOP: AtomicBool = AtomicBool::new(false);

/// Whether a signal asked the benchmark to stop.
pub fn stopping() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// SIGINT and SIGTERM set [`STOP`] instead of killing the process, so that the lab is dropped
/// (`name` is the binary, for the message).
pub fn catch_signals(name: &'static str) {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("SIGTERM");
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            eprintln!("{name}: stopping (signal)");
            STOP.store(true, Ordering::SeqCst);
        });
    });
}

/// A binary of the workspace next to this one (same target directory); exits with a hint
/// when it has not been built.
pub fn sibling_bin(name: &str) -> String {
    let exe = std::env::current_exe().expect("exe");
    let p = exe.parent().expect("dir").join(name);
    if !p.is_file() {
        eprintln!(
            "{} is missing: build the workspace in this profile (cargo build --release --workspace)",
            p.display()
        );
        std::process::exit(1);
    }
    p.display().to_string()
}

/// Cores, CPU model and load average, for the raw figures.
pub fn machine() -> Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_default();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    json!({
        "cores": std::thread::available_parallelism().map_or(0, usize::from),
        "cpu": cpu,
        "loadavg": load.trim(),
    })
}

/// The daemon's own PID, for its CPU time and memory: `pid` is what the lab spawned (`ip
/// netns exec`, maybe a wrapper such as heaptrack), which execs the daemon (named `comm`) or
/// starts it as a descendant. `pid` itself when no such process is found.
pub fn daemon_pid(pid: u32, comm: &str) -> u32 {
    let is = |pid: u32| {
        std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == comm)
    };
    if is(pid) {
        return pid;
    }
    let mut stack = vec![pid];
    while let Some(p) = stack.pop() {
        let kids =
            std::fs::read_to_string(format!("/proc/{p}/task/{p}/children")).unwrap_or_default();
        for k in kids.split_whitespace().filter_map(|k| k.parse().ok()) {
            if is(k) {
                return k;
            }
            stack.push(k);
        }
    }
    pid
}
