//! Packets per second through the netio drivers, with and without batching. Needs root; runs
//! in a network namespace of its own (`ip netns add nio-bench-<pid>`, removed at the end).
//!
//! ```text
//! cargo run --release -p netio --example tun_throughput [seconds per run, default 2]
//! ```
//!
//! * TUN: a UDP sender blasts 1400-byte datagrams at `fd00:2::5` (routed to the TUN); a
//!   reflector reads each packet from the TUN, swaps addresses and ports, and writes it back;
//!   a receiver socket counts what comes back. Plain (one read, one write per packet), batched
//!   (drain + batch write), and offload (virtio header, GSO split on read, GRO on write; with
//!   a plain sender and with a UDP GSO sender).
//! * Raw ESP over loopback: send one packet per call vs `sendmmsg`, receive with `recvmsg` vs
//!   `recvmmsg`; and ESP in UDP 4500: `sendmsg`, `sendmmsg`, UDP GSO.
//!
//! `NETIO_BENCH_ONLY=<substring>` runs only the lines whose label contains it.
//!
//! The sender, the reflector and the receiver share the machine's cores, like the daemons
//! will share them with the applications; the figures are what arrives at the receiver.

use std::net::{Ipv6Addr, SocketAddr, SocketAddrV6};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use netio::{
    AddressOptions, EspSocket, IkeSocket, Netlink, RecvMeta, Route, Transmit, Tun, TunConfig,
    TunRecvBatch, TunSendBatch,
};

const PAYLOAD: usize = 1400;

struct Ns(String);

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

#[allow(unsafe_code)]
fn enter(ns: &str) {
    let f = std::fs::File::open(format!("/var/run/netns/{ns}")).expect("netns file");
    // SAFETY: setns(2) on an open namespace descriptor; affects only the calling thread.
    let r = unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(&f), libc::CLONE_NEWNET) };
    assert_eq!(r, 0, "setns: {}", std::io::Error::last_os_error());
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Swaps the IPv6 source and destination (ports stay: the sender sends from port 7001 to
/// 7000, the reflected packet goes to the receiver on fd00:1::1 port 7000). The UDP checksum
/// stays valid.
fn reflect(p: &mut [u8]) {
    let mut src = [0u8; 16];
    src.copy_from_slice(&p[8..24]);
    p.copy_within(24..40, 8);
    p[24..40].copy_from_slice(&src);
}

#[derive(Clone, Copy, PartialEq)]
enum TunMode {
    Plain,
    Batch,
    Offload,
}

#[derive(Clone, Copy, PartialEq)]
enum Sender {
    /// One `send_to` per datagram.
    Plain,
    /// UDP GSO, 40 datagrams per call.
    Gso,
}

/// Sender thread: blasts datagrams from `from` to `to` until `stop`.
fn spawn_sender(
    ns: String,
    from: SocketAddr,
    to: SocketAddr,
    mode: Sender,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        enter(&ns);
        rt().block_on(async move {
            let s = IkeSocket::bind(from).expect("bind sender");
            s.set_buffer_sizes(0, 4 << 20).expect("sndbuf");
            let blob = vec![0x5au8; PAYLOAD * 40];
            let mut sent = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let r = match mode {
                    Sender::Plain => s.send(&blob[..PAYLOAD], from, to).await.map(|_| 1),
                    Sender::Gso => s
                        .send_segmented(&blob, PAYLOAD as u16, from, to)
                        .await
                        .map(|_| 40),
                };
                match r {
                    Ok(n) => sent += n,
                    // ENOBUFS etc.: the TUN queue is full; back off a little.
                    Err(_) => tokio::task::yield_now().await,
                }
            }
            sent
        })
    })
}

async fn count_until(sock: &IkeSocket, stop: &AtomicBool, counter: &AtomicU64) {
    let mut bufs = vec![vec![0u8; 2048]; 64];
    let mut metas = vec![RecvMeta::default(); 64];
    while !stop.load(Ordering::Relaxed) {
        let r = tokio::time::timeout(
            Duration::from_millis(50),
            sock.recv_batch(&mut bufs, &mut metas),
        )
        .await;
        if let Ok(Ok(n)) = r {
            counter.fetch_add(n as u64, Ordering::Relaxed);
        }
    }
}

fn tun_run(ns: &str, mode: TunMode, sender: Sender, secs: f64) -> (f64, f64, u64) {
    let ns = ns.to_owned();
    let stop = Arc::new(AtomicBool::new(false));
    let received = Arc::new(AtomicU64::new(0));
    let reflected = Arc::new(AtomicU64::new(0));
    let ready = Arc::new(AtomicBool::new(false));
    let (st, rc, rf, rd) = (
        stop.clone(),
        received.clone(),
        reflected.clone(),
        ready.clone(),
    );
    let nsc = ns.clone();
    let worker = std::thread::spawn(move || {
        enter(&nsc);
        rt().block_on(async move {
            let nl = Netlink::new().expect("netlink");
            let cfg = TunConfig {
                offload: mode == TunMode::Offload,
                ..TunConfig::new("bt0", 1500)
            };
            let tun = Tun::create(&cfg, &nl).await.expect("tun");
            nl.add_address(
                "bt0",
                "fd00:1::1".parse().unwrap(),
                64,
                AddressOptions::default(),
            )
            .await
            .expect("addr");
            nl.add_route(&Route::new("fd00:2::".parse().unwrap(), 64, "bt0"))
                .await
                .expect("route");
            let rx = IkeSocket::bind("[fd00:1::1]:7000".parse().unwrap()).expect("rx");
            rx.set_buffer_sizes(8 << 20, 0).expect("rcvbuf");
            rd.store(true, Ordering::SeqCst);
            let reflector = async {
                let mut batch = TunRecvBatch::new(256, 1500, 0);
                let mut out = TunSendBatch::for_tun(&tun, 128);
                let mut buf = vec![0u8; 2048];
                while !st.load(Ordering::Relaxed) {
                    match mode {
                        TunMode::Plain => {
                            let Ok(Ok(n)) =
                                tokio::time::timeout(Duration::from_millis(50), tun.recv(&mut buf))
                                    .await
                            else {
                                continue;
                            };
                            reflect(&mut buf[..n]);
                            let _ = tun.send(&buf[..n]).await;
                            rf.fetch_add(1, Ordering::Relaxed);
                        }
                        TunMode::Batch | TunMode::Offload => {
                            let Ok(Ok(_)) = tokio::time::timeout(
                                Duration::from_millis(50),
                                tun.recv_batch(&mut batch),
                            )
                            .await
                            else {
                                continue;
                            };
                            for i in 0..batch.len() {
                                out.push_with(|b| {
                                    let start = b.len();
                                    b.extend_from_slice(batch.packet(i));
                                    reflect(&mut b[start..]);
                                });
                            }
                            rf.fetch_add(out.len() as u64, Ordering::Relaxed);
                            let _ = tun.send_batch(&mut out).await;
                        }
                    }
                }
            };
            tokio::join!(reflector, count_until(&rx, &st, &rc));
            drop(tun);
        })
    });
    while !ready.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(5));
    }
    let from: SocketAddr = "[fd00:1::1]:7001".parse().unwrap();
    let to: SocketAddr = "[fd00:2::5]:7000".parse().unwrap();
    let s = spawn_sender(ns, from, to, sender, stop.clone());
    // Warm up, then measure.
    std::thread::sleep(Duration::from_millis(300));
    let (r0, f0, t0) = (
        received.load(Ordering::Relaxed),
        reflected.load(Ordering::Relaxed),
        Instant::now(),
    );
    std::thread::sleep(Duration::from_secs_f64(secs));
    let (r1, f1, el) = (
        received.load(Ordering::Relaxed),
        reflected.load(Ordering::Relaxed),
        t0.elapsed().as_secs_f64(),
    );
    stop.store(true, Ordering::Relaxed);
    let sent = s.join().expect("sender");
    worker.join().expect("worker");
    let total = t0.elapsed().as_secs_f64() + 0.3;
    (
        (r1 - r0) as f64 / el,
        (f1 - f0) as f64 / el,
        (sent as f64 / total) as u64,
    )
}

#[derive(Clone, Copy, PartialEq)]
enum Io {
    One,
    Batch,
    Gso,
}

/// Raw ESP (or ESP in UDP 4500) over loopback: sender thread and receiver thread.
fn sock_run(ns: &str, udp: bool, send: Io, recv: Io, size: usize, secs: f64) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let received = Arc::new(AtomicU64::new(0));
    let ready = Arc::new(AtomicBool::new(false));
    let (st, rc, rd, nsr) = (stop.clone(), received.clone(), ready.clone(), ns.to_owned());
    let dst = Ipv6Addr::LOCALHOST;
    let rx_thread = std::thread::spawn(move || {
        enter(&nsr);
        rt().block_on(async move {
            let mut bufs = vec![vec![0u8; 2048]; 64];
            let mut metas = vec![RecvMeta::default(); 64];
            let mut one = vec![0u8; 2048];
            enum S {
                Esp(EspSocket),
                Udp(IkeSocket),
            }
            let s = if udp {
                let s = IkeSocket::bind("[::1]:4500".parse().unwrap()).expect("bind 4500");
                s.set_buffer_sizes(8 << 20, 0).expect("rcvbuf");
                S::Udp(s)
            } else {
                let s = EspSocket::open(None).expect("esp");
                s.set_buffer_sizes(8 << 20, 0).expect("rcvbuf");
                S::Esp(s)
            };
            rd.store(true, Ordering::SeqCst);
            while !st.load(Ordering::Relaxed) {
                let fut = async {
                    match (&s, recv) {
                        (S::Esp(s), Io::One) => s.recv_meta(&mut one).await.map(|_| 1),
                        (S::Udp(s), Io::One) => s.recv_meta(&mut one).await.map(|_| 1),
                        (S::Esp(s), _) => s.recv_batch(&mut bufs, &mut metas).await,
                        (S::Udp(s), _) => s.recv_batch(&mut bufs, &mut metas).await,
                    }
                };
                if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(50), fut).await {
                    rc.fetch_add(n as u64, Ordering::Relaxed);
                }
            }
        })
    });
    while !ready.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(5));
    }
    let (st, nss) = (stop.clone(), ns.to_owned());
    let tx_thread = std::thread::spawn(move || {
        enter(&nss);
        rt().block_on(async move {
            let mut pkt = vec![0xa5u8; size];
            pkt[..4].copy_from_slice(&0x1234u32.to_be_bytes());
            let blob: Vec<u8> = pkt.iter().copied().cycle().take(size * 40).collect();
            let dst6 = SocketAddrV6::new(dst, if udp { 4500 } else { 0 }, 0, 0);
            let msgs: Vec<Transmit<'_>> = (0..64)
                .map(|_| Transmit {
                    data: &pkt,
                    dst: dst6,
                    src: Some(dst),
                    segment_size: None,
                })
                .collect();
            let esp = EspSocket::open(None).expect("esp tx");
            let u = IkeSocket::bind("[::1]:0".parse().unwrap()).expect("udp tx");
            let from = SocketAddr::V6(SocketAddrV6::new(dst, 0, 0, 0));
            while !st.load(Ordering::Relaxed) {
                let _ = match (udp, send) {
                    (false, Io::One) => esp.send(&pkt, dst, dst).await,
                    (false, _) => esp.send_batch(&msgs).await,
                    (true, Io::One) => u.send(&pkt, from, SocketAddr::V6(dst6)).await,
                    (true, Io::Batch) => u.send_batch(&msgs).await,
                    (true, Io::Gso) => {
                        u.send_segmented(&blob, size as u16, from, SocketAddr::V6(dst6))
                            .await
                    }
                };
            }
        });
    });
    std::thread::sleep(Duration::from_millis(300));
    let (r0, t0) = (received.load(Ordering::Relaxed), Instant::now());
    std::thread::sleep(Duration::from_secs_f64(secs));
    let (r1, el) = (received.load(Ordering::Relaxed), t0.elapsed().as_secs_f64());
    stop.store(true, Ordering::Relaxed);
    tx_thread.join().expect("tx");
    rx_thread.join().expect("rx");
    (r1 - r0) as f64 / el
}

fn main() {
    let secs: f64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0);
    let name = format!("nio-bench-{}", std::process::id());
    let ok = Command::new("ip")
        .args(["netns", "add", &name])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "ip netns add {name} failed (root and iproute2 needed)");
    let ns = Ns(name);
    // NETIO_BENCH_ONLY=<substring> runs only the matching lines (e.g. under perf).
    let only = std::env::var("NETIO_BENCH_ONLY").unwrap_or_default();
    let wanted = |label: &str| label.contains(only.as_str());
    let _ = Command::new("ip")
        .args(["-n", &ns.0, "link", "set", "lo", "up"])
        .status();

    println!("# TUN reflect, {PAYLOAD}-byte UDP payloads, {secs} s per run (packets/s)");
    println!(
        "{:<44} {:>10} {:>12} {:>12} {:>8}",
        "mode", "sent/s", "reflected/s", "received/s", "Gbit/s"
    );
    for (label, mode, sender) in [
        (
            "plain recv/send, plain sender",
            TunMode::Plain,
            Sender::Plain,
        ),
        (
            "batch (drain + send_batch), plain sender",
            TunMode::Batch,
            Sender::Plain,
        ),
        (
            "offload (GSO split, GRO write), plain sender",
            TunMode::Offload,
            Sender::Plain,
        ),
        (
            "plain recv/send, UDP GSO sender",
            TunMode::Plain,
            Sender::Gso,
        ),
        ("offload, UDP GSO sender", TunMode::Offload, Sender::Gso),
    ] {
        if !wanted(label) {
            continue;
        }
        let (rx, rf, sent) = tun_run(&ns.0, mode, sender, secs);
        println!(
            "{label:<44} {sent:>10} {rf:>12.0} {rx:>12.0} {:>8.2}",
            rx * (PAYLOAD as f64) * 8.0 / 1e9
        );
    }

    for size in [1400usize, 100] {
        println!("\n# loopback, {size}-byte payloads, {secs} s per run (packets/s received)");
        for (label, udp, send, recv) in [
            (
                "raw ESP: send + recv (1 call each)",
                false,
                Io::One,
                Io::One,
            ),
            (
                "raw ESP: send_batch + recv_batch (64)",
                false,
                Io::Batch,
                Io::Batch,
            ),
            ("raw ESP: send + recv_batch", false, Io::One, Io::Batch),
            ("UDP 4500: send + recv", true, Io::One, Io::One),
            (
                "UDP 4500: send_batch + recv_batch",
                true,
                Io::Batch,
                Io::Batch,
            ),
            (
                "UDP 4500: send_segmented (GSO 40) + recv_batch",
                true,
                Io::Gso,
                Io::Batch,
            ),
        ] {
            if !wanted(label) {
                continue;
            }
            let pps = sock_run(&ns.0, udp, send, recv, size, secs);
            println!("{label:<50} {pps:>12.0}");
        }
    }
}
