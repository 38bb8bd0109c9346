//! TUN device, netlink addresses/routes/proxy neighbours, sysctls and the clean-up guard, each
//! in its own network namespace. Needs root.

mod common;

use std::net::{Ipv6Addr, SocketAddr, SocketAddrV6};
use std::time::Duration;

use common::{A1, B1, NetNs, VethPair};
use netio::{
    AddressOptions, Error, IkeSocket, NetConfigGuard, Netlink, Route, Tun, TunConfig, TunRecvBatch,
    TunSendBatch,
};
use tokio::net::UdpSocket;
use tokio::time::timeout;

const T: Duration = Duration::from_secs(5);

fn ip(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

/// Swaps source and destination addresses and UDP ports of an IPv6/UDP packet in place (the
/// UDP checksum stays valid: its pseudo-header sum does not depend on the order).
fn reflect(p: &mut [u8]) {
    let mut src = [0u8; 16];
    src.copy_from_slice(&p[8..24]);
    p.copy_within(24..40, 8);
    p[24..40].copy_from_slice(&src);
    let sport = [p[40], p[41]];
    p.copy_within(42..44, 40);
    p[42..44].copy_from_slice(&sport);
}

/// Reads from the TUN until a UDP packet arrives; returns it and the other packets seen.
async fn read_udp(tun: &Tun, buf: &mut [u8]) -> (usize, Vec<Vec<u8>>) {
    let mut noise = Vec::new();
    loop {
        let n = timeout(T, tun.recv(buf)).await.unwrap().unwrap();
        if n >= 48 && buf[0] >> 4 == 6 && buf[6] == 17 {
            return (n, noise);
        }
        noise.push(buf[..n].to_vec());
    }
}

#[test]
fn tun_address_route_and_packets_both_ways() {
    let ns = NetNs::new("tun");
    ns.run(|| async {
        let nl = Netlink::new().unwrap();
        let mut guard = NetConfigGuard::new(&nl);
        let tun = Tun::create(&TunConfig::new("nt0", 1400), &nl)
            .await
            .unwrap();
        guard.track_link(tun.ifindex(), tun.name());
        assert_eq!(nl.ifindex("nt0").await.unwrap(), tun.ifindex());
        let info = nl.link_info("nt0").await.unwrap();
        assert!(info.up);
        assert_eq!(info.mtu, Some(1400));

        guard
            .add_address("nt0", ip("fd00:1::1"), 64, AddressOptions::default())
            .await
            .unwrap();
        guard
            .add_route(&Route::new(ip("fd00:2::"), 64, "nt0").metric(100))
            .await
            .unwrap();
        guard
            .add_route(
                &Route::new(ip("fd00:3::"), 48, tun.ifindex())
                    .gateway(ip("fd00:1::fe"))
                    .source(ip("fd00:1::1"))
                    .table(100),
            )
            .await
            .unwrap();
        // Adding the same address again is not an error and is not tracked twice.
        guard
            .add_address("nt0", ip("fd00:1::1"), 64, AddressOptions::default())
            .await
            .unwrap();
        assert_eq!(guard.len(), 4);

        // Only our address: no automatic link-local (addr_gen_mode none), not tentative.
        let addrs = nl.addresses(Some(tun.ifindex().into())).await.unwrap();
        assert_eq!(addrs.len(), 1, "{addrs:?}");
        assert_eq!(
            (addrs[0].address, addrs[0].prefix_len),
            (ip("fd00:1::1"), 64)
        );
        assert!(!addrs[0].tentative);
        let routes = nl.routes().await.unwrap();
        let r2 = routes
            .iter()
            .find(|r| r.destination == ip("fd00:2::"))
            .expect("route fd00:2::/64");
        assert_eq!(
            (r2.prefix_len, r2.ifindex, r2.metric),
            (64, Some(tun.ifindex()), Some(100))
        );
        let r3 = routes
            .iter()
            .find(|r| r.destination == ip("fd00:3::"))
            .expect("route fd00:3::/48");
        assert_eq!(r3.table, 100);
        assert_eq!(r3.gateway, Some(ip("fd00:1::fe")));
        assert_eq!(r3.source, Some(ip("fd00:1::1")));

        // Host -> TUN: a datagram routed to the TUN is read from it.
        let sock = UdpSocket::bind("[fd00:1::1]:0").await.unwrap();
        let port = sock.local_addr().unwrap().port();
        sock.send_to(b"to the tunnel", "[fd00:2::5]:9999")
            .await
            .unwrap();
        let mut buf = [0u8; 2000];
        let (n, noise) = read_udp(&tun, &mut buf).await;
        assert!(
            noise.is_empty(),
            "kernel-generated packets on the TUN: {noise:02x?}"
        );
        assert_eq!(&buf[8..24], &ip("fd00:1::1").octets());
        assert_eq!(&buf[24..40], &ip("fd00:2::5").octets());
        assert_eq!(u16::from_be_bytes([buf[40], buf[41]]), port);
        assert_eq!(&buf[48..n], b"to the tunnel");

        // TUN -> host: the reflected packet is delivered to the socket.
        reflect(&mut buf[..n]);
        assert_eq!(tun.send(&buf[..n]).await.unwrap(), n);
        let mut rb = [0u8; 100];
        let (m, from) = timeout(T, sock.recv_from(&mut rb)).await.unwrap().unwrap();
        assert_eq!(&rb[..m], b"to the tunnel");
        assert_eq!(from, "[fd00:2::5]:9999".parse::<SocketAddr>().unwrap());

        // Batched read: several datagrams, one batch.
        for i in 0..5u8 {
            sock.send_to(&[i; 100], "[fd00:2::5]:9999").await.unwrap();
        }
        let mut batch = TunRecvBatch::new(16, 1500, 0);
        let mut out = TunSendBatch::new(16);
        let mut got = 0;
        while got < 5 {
            let k = timeout(T, tun.recv_batch(&mut batch))
                .await
                .unwrap()
                .unwrap();
            for p in batch.iter() {
                assert_eq!(p.len(), 148);
                assert_eq!(p[48], got as u8);
                let mut q = p.to_vec();
                reflect(&mut q);
                assert!(out.push(&q));
                got += 1;
            }
            assert_eq!(k, batch.len());
        }
        tun.send_batch(&mut out).await.unwrap();
        assert!(out.is_empty());
        for i in 0..5u8 {
            let (m, _) = timeout(T, sock.recv_from(&mut rb)).await.unwrap().unwrap();
            assert_eq!(&rb[..m], &[i; 100]);
        }

        // Clean-up removes the routes, the address and the TUN link (fd still open).
        guard.cleanup().await.unwrap();
        assert!(!nl.link_exists("nt0").await.unwrap());
        assert!(
            !nl.routes()
                .await
                .unwrap()
                .iter()
                .any(|r| r.destination == ip("fd00:2::") || r.destination == ip("fd00:3::"))
        );
        assert!(
            !nl.addresses(None)
                .await
                .unwrap()
                .iter()
                .any(|a| a.address == ip("fd00:1::1"))
        );
        drop(tun);
    });
}

#[test]
fn cleanup_removes_address_and_route_while_tun_lives() {
    let ns = NetNs::new("guard");
    ns.run(|| async {
        let nl = Netlink::new().unwrap();
        let mut guard = NetConfigGuard::new(&nl);
        let tun = Tun::create(&TunConfig::new("nt1", 1280), &nl)
            .await
            .unwrap();
        guard
            .add_address(
                tun.ifindex(),
                ip("fd00:7::1"),
                128,
                AddressOptions::default(),
            )
            .await
            .unwrap();
        let route = Route::new(ip("fd00:8::"), 64, "nt1");
        guard.add_route(&route).await.unwrap();
        // A route added twice is only tracked once.
        guard.add_route(&route).await.unwrap();
        assert_eq!(guard.len(), 2);
        guard.cleanup().await.unwrap();
        assert!(
            nl.link_exists("nt1").await.unwrap(),
            "TUN not tracked: left alone"
        );
        assert!(nl.addresses(Some("nt1".into())).await.unwrap().is_empty());
        assert!(
            !nl.routes()
                .await
                .unwrap()
                .iter()
                .any(|r| r.destination == ip("fd00:8::"))
        );
        // The TUN goes away with its last descriptor. Not necessarily at once: a fork() in
        // another thread (the parallel tests run `ip`) briefly holds a copy of every
        // descriptor until its exec.
        drop(tun);
        let deadline = tokio::time::Instant::now() + T;
        while nl.link_exists("nt1").await.unwrap() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "TUN outlived its descriptor"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }

        // Errors name what they were about.
        let e = nl.ifindex("nope0").await.unwrap_err();
        assert!(
            matches!(e, Error::NoSuchInterface(ref n) if n == "nope0"),
            "{e}"
        );
        let e = nl
            .add_address("lo", ip("fd00:9::1"), 129, AddressOptions::default())
            .await
            .unwrap_err();
        assert!(e.to_string().contains("129"), "{e}");
        let e = nl.del_address("lo", ip("fd00:9::1"), 64).await.unwrap_err();
        assert!(e.is_not_found(), "{e}");
        assert!(e.to_string().contains("fd00:9::1/64 on lo"), "{e}");
        assert!(netio::sysctl::set_proxy_ndp("../x", true).is_err());
    });
}

#[test]
fn tun_offload_splits_and_coalesces() {
    let ns = NetNs::new("offload");
    ns.run(|| async {
        let nl = Netlink::new().unwrap();
        let cfg = TunConfig {
            offload: true,
            ..TunConfig::new("nt2", 1500)
        };
        let tun = Tun::create(&cfg, &nl).await.unwrap();
        assert!(tun.offload(), "IFF_VNET_HDR offload not available");
        nl.add_address("nt2", ip("fd00:1::1"), 64, AddressOptions::default())
            .await
            .unwrap();
        nl.add_route(&Route::new(ip("fd00:2::"), 64, "nt2"))
            .await
            .unwrap();
        let sock = IkeSocket::bind("[fd00:1::1]:0".parse().unwrap()).unwrap();
        let to: SocketAddr = "[fd00:2::5]:9999".parse().unwrap();
        let from = sock.local_addr();

        // One UDP GSO send of 10 x 1000 bytes.
        let blob: Vec<u8> = (0..10_000u32).map(|i| (i / 1000) as u8).collect();
        sock.send_segmented(&blob, 1000, from, to).await.unwrap();
        let mut batch = TunRecvBatch::new(128, 1500, 0);
        let mut out = TunSendBatch::for_tun(&tun, 128);
        let mut got = 0;
        let mut reads = 0;
        while got < 10 {
            timeout(T, tun.recv_batch(&mut batch))
                .await
                .unwrap()
                .unwrap();
            reads += 1;
            for p in batch.iter() {
                assert_eq!(p.len(), 40 + 8 + 1000);
                assert_eq!(p[48], got as u8);
                let mut q = p.to_vec();
                reflect(&mut q);
                assert!(out.push(&q));
                got += 1;
            }
        }
        eprintln!(
            "offload: udp_offload={} 10 segments in {reads} TUN read(s)",
            tun.udp_offload()
        );
        let wrote = tun.send_batch(&mut out).await.unwrap();
        if tun.udp_offload() {
            // GRO: the ten datagrams were coalesced into one write (one virtio header, one
            // IPv6 + UDP header, ten payloads).
            assert_eq!(wrote, netio::TUN_HEADROOM + 48 + 10 * 1000);
        }
        let mut rb = [0u8; 2000];
        for i in 0..10u8 {
            let (n, src, _) = timeout(T, sock.recv(&mut rb)).await.unwrap().unwrap();
            assert_eq!(n, 1000);
            assert_eq!(rb[0], i);
            assert_eq!(src, to);
        }

        // Single packets work with offload too (an empty virtio header is prepended).
        sock.send(b"single", from, to).await.unwrap();
        timeout(T, tun.recv_batch(&mut batch))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(batch.len(), 1);
        let mut q = batch.packet(0).to_vec();
        reflect(&mut q);
        tun.send(&q).await.unwrap();
        let (n, _, _) = timeout(T, sock.recv(&mut rb)).await.unwrap().unwrap();
        assert_eq!(&rb[..n], b"single");
        assert_eq!(
            tun.recv(&mut rb).await.unwrap_err().kind(),
            std::io::ErrorKind::Unsupported
        );
    });
}

#[test]
fn proxy_ndp_entry_sysctls_and_cleanup() {
    let lab = VethPair::new("proxy");
    let (a, b) = (&lab.a, &lab.b);
    let hoa = ip("fd00:ab::99");
    let idx = common::ifindex(a, "va");
    a.run(|| async move {
        let nl = Netlink::new().unwrap();
        let mut guard = NetConfigGuard::new(&nl);
        guard.add_proxy_neighbour("va", hoa).await.unwrap();
        guard.set_ipv6_conf("va", "proxy_ndp", "1").unwrap();
        guard.set_ipv6_conf("va", "forwarding", "1").unwrap();
        assert!(nl.proxy_neighbours().await.unwrap().contains(&(idx, hoa)));
        assert_eq!(a.read_sysctl("net.ipv6.conf.va.proxy_ndp"), "1");
        assert_eq!(a.read_sysctl("net.ipv6.conf.va.forwarding"), "1");
        assert_eq!(
            netio::sysctl::read(&netio::sysctl::ipv6_conf_path("va", "proxy_ndp").unwrap())
                .unwrap(),
            "1"
        );

        // B resolves the proxied address to A's interface.
        b.enter().unwrap();
        let s = IkeSocket::bind(SocketAddr::V6(SocketAddrV6::new(ip(B1), 0, 0, 0))).unwrap();
        let va_mac = a.ip("-o link show va");
        let va_mac = va_mac
            .split_whitespace()
            .skip_while(|t| *t != "link/ether")
            .nth(1)
            .unwrap()
            .to_owned();
        let deadline = tokio::time::Instant::now() + T;
        loop {
            s.send(
                b"x",
                SocketAddr::V6(SocketAddrV6::new(ip(B1), 0, 0, 0)),
                SocketAddr::V6(SocketAddrV6::new(hoa, 9, 0, 0)),
            )
            .await
            .unwrap();
            let neigh = b.ip(&format!("-6 neigh show {hoa} dev vb"));
            if neigh.contains(&va_mac) {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no proxy NA: {neigh}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        a.enter().unwrap();

        guard.cleanup().await.unwrap();
        assert!(!nl.proxy_neighbours().await.unwrap().contains(&(idx, hoa)));
        assert_eq!(a.read_sysctl("net.ipv6.conf.va.proxy_ndp"), "0");
        assert_eq!(a.read_sysctl("net.ipv6.conf.va.forwarding"), "0");
        let _ = A1;
    });
}

#[test]
fn tun_multi_queue_and_tracked_create() {
    let ns = NetNs::new("mq");
    ns.run(|| async {
        let nl = Netlink::new().unwrap();
        let mut guard = NetConfigGuard::new(&nl);
        let cfg = TunConfig {
            multi_queue: true,
            ..TunConfig::new("nt3", 1500)
        };
        let q0 = Tun::create_tracked(&cfg, &mut guard).await.unwrap();
        let q1 = q0.try_clone_queue().unwrap();
        guard
            .add_address("nt3", ip("fd00:1::1"), 64, AddressOptions::default())
            .await
            .unwrap();
        guard
            .add_route(&Route::new(ip("fd00:2::"), 64, "nt3"))
            .await
            .unwrap();
        // Flows are spread over the queues: read from both until every flow was seen.
        let mut socks = Vec::new();
        for _ in 0..8 {
            let s = UdpSocket::bind("[fd00:1::1]:0").await.unwrap();
            s.send_to(b"q", "[fd00:2::5]:9").await.unwrap();
            socks.push(s);
        }
        let (mut b0, mut b1) = ([0u8; 1500], [0u8; 1500]);
        let mut seen = [0usize; 2];
        while seen[0] + seen[1] < 8 {
            tokio::select! {
                r = q0.recv(&mut b0) => { r.unwrap(); seen[0] += 1; }
                r = q1.recv(&mut b1) => { r.unwrap(); seen[1] += 1; }
                () = tokio::time::sleep(T) => panic!("only {seen:?} of 8 flows read"),
            }
        }
        // A packet written to the second queue is delivered too.
        let mut q = b1;
        let n = 49;
        q[..n].copy_from_slice(&b0[..n]);
        reflect(&mut q[..n]);
        q1.send(&q[..n]).await.unwrap();
        let port = u16::from_be_bytes([q[42], q[43]]);
        let s = socks
            .iter()
            .find(|s| s.local_addr().unwrap().port() == port)
            .unwrap();
        let mut rb = [0u8; 10];
        let (m, _) = timeout(T, s.recv_from(&mut rb)).await.unwrap().unwrap();
        assert_eq!(&rb[..m], b"q");
        guard.cleanup().await.unwrap();
        assert!(!nl.link_exists("nt3").await.unwrap());
        eprintln!("multi-queue: flows per queue {seen:?}");
    });
}

/// Swaps the IPv6 source and destination addresses only (ports stay), so that a TCP
/// connection to `fd00:2::5:P` routed into the TUN comes back to a listener on
/// `fd00:1::1:P`; the TCP checksum stays valid.
fn swap_addrs(p: &mut [u8]) {
    let mut src = [0u8; 16];
    src.copy_from_slice(&p[8..24]);
    p.copy_within(24..40, 8);
    p[24..40].copy_from_slice(&src);
}

/// TCP over an offloading TUN: the kernel's TSO super-packets are split into segments (with
/// their checksums), the segments (addresses swapped) coalesced again and written back as GRO
/// frames with a partial checksum; 4 MiB cross the loop both ways intact.
#[test]
fn tun_offload_carries_tcp() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let ns = NetNs::new("offtcp");
    ns.run(|| async {
        let nl = Netlink::new().unwrap();
        let cfg = TunConfig {
            offload: true,
            ..TunConfig::new("nt3", 1400)
        };
        let tun = Tun::create(&cfg, &nl).await.unwrap();
        assert!(tun.offload(), "IFF_VNET_HDR offload not available");
        nl.add_address("nt3", ip("fd00:1::1"), 64, AddressOptions::default())
            .await
            .unwrap();
        nl.add_route(&Route::new(ip("fd00:2::"), 64, "nt3"))
            .await
            .unwrap();
        let listener = tokio::net::TcpListener::bind("[fd00:1::1]:7777")
            .await
            .unwrap();
        let mut most = 0;
        let mut biggest = 0;
        let reflector = async {
            let mut rx = TunRecvBatch::new(128, 1400, 0);
            let mut tx = TunSendBatch::for_tun(&tun, 128);
            loop {
                tun.recv_batch(&mut rx).await.unwrap();
                most = most.max(rx.len());
                for p in rx.iter() {
                    assert!(p.len() <= 1400, "segment of {} bytes", p.len());
                    let mut q = p.to_vec();
                    swap_addrs(&mut q);
                    if tx.is_full() {
                        tun.send_batch(&mut tx).await.unwrap();
                    }
                    assert!(tx.push(&q));
                }
                let frames = tx.len();
                let n = tun.send_batch(&mut tx).await.unwrap();
                if frames > 0 {
                    biggest = biggest.max(n);
                }
            }
        };
        let data: Vec<u8> = (0..4u32 << 20).map(|i| (i * 7 % 251) as u8).collect();
        let transfer = async {
            let mut c = tokio::net::TcpStream::connect("[fd00:2::5]:7777")
                .await
                .unwrap();
            let (mut s, peer) = listener.accept().await.unwrap();
            assert_eq!(peer.ip(), ip("fd00:2::5"));
            let w = async {
                c.write_all(&data).await.unwrap();
                c.shutdown().await.unwrap();
                // And back: the listener echoes what it read.
                let mut back = Vec::new();
                c.read_to_end(&mut back).await.unwrap();
                back
            };
            let r = async {
                let mut got = Vec::new();
                s.read_to_end(&mut got).await.unwrap();
                s.write_all(&got).await.unwrap();
                s.shutdown().await.unwrap();
                got
            };
            tokio::join!(w, r)
        };
        let (back, got) = tokio::select! {
            () = reflector => unreachable!(),
            r = timeout(Duration::from_secs(30), transfer) => r.expect("transfer timed out"),
        };
        assert!(got == data, "data corrupted on the way in");
        assert!(back == data, "data corrupted on the way back");
        eprintln!(
            "offload TCP: up to {most} packets per read, up to {biggest} bytes per write batch"
        );
        assert!(most > 1, "no TSO frame was split");
        assert!(biggest > 1500, "nothing was coalesced");
    });
}
