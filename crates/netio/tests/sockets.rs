//! IKE UDP sockets with packet info, the raw ESP socket and the AF_PACKET reader, across a veth
//! pair between two network namespaces. Needs root.

mod common;

use std::net::{Ipv6Addr, SocketAddr, SocketAddrV6};
use std::time::Duration;

use common::{A1, A2, B1, VethPair, ifindex};
use netio::nft::NftTable;
use netio::{EspSocket, IkeSocket, PacketSocket, RawIpSocket, RecvMeta, Transmit};
use tokio::time::timeout;

const T: Duration = Duration::from_secs(5);

fn ip(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

fn sa(ip_: &str, port: u16) -> SocketAddr {
    SocketAddr::V6(SocketAddrV6::new(ip(ip_), port, 0, 0))
}

#[test]
fn ike_socket_learns_local_address_and_replies_from_it() {
    let lab = VethPair::new("pktinfo");
    let va = ifindex(&lab.a, "va");
    let vb = ifindex(&lab.b, "vb");
    let a_ll = VethPair::link_local(&lab.a, "va");
    let (a, b) = (&lab.a, &lab.b);
    a.run(|| async move {
        // Responder in A on [::]:500, initiator in B on [::]:500.
        let resp = IkeSocket::bind("[::]:500".parse().unwrap()).unwrap();
        // The port is not silently shared (no SO_REUSEADDR), and errors name the address.
        let e = IkeSocket::bind("[::]:500".parse().unwrap()).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EADDRINUSE), "{e}");
        assert!(e.to_string().contains("[::]:500"), "{e}");
        assert!(IkeSocket::bind("0.0.0.0:500".parse().unwrap()).is_err());
        b.enter().unwrap();
        let init = IkeSocket::bind("[::]:500".parse().unwrap()).unwrap();
        assert_eq!(init.local_addr().port(), 500);

        let mut buf = [0u8; 2048];
        for dst in [A1, A2] {
            let n = init
                .send(b"hello", sa("::", 0), sa(dst, 500))
                .await
                .unwrap();
            assert_eq!(n, 5);
            let (n, from, local) = timeout(T, resp.recv(&mut buf)).await.unwrap().unwrap();
            assert_eq!(&buf[..n], b"hello");
            assert_eq!(from, sa(B1, 500));
            assert_eq!(
                local,
                sa(dst, 500),
                "local address learned from IPV6_PKTINFO"
            );
            // Reply from the learned local address: the initiator must see it as the source.
            resp.send(b"reply", local, from).await.unwrap();
            let (n, from2, local2) = timeout(T, init.recv(&mut buf)).await.unwrap().unwrap();
            assert_eq!(&buf[..n], b"reply");
            assert_eq!(from2, sa(dst, 500));
            assert_eq!(local2, sa(B1, 500));
        }

        // Link-local: the scope id of the learned local address is the receiving interface.
        let to = SocketAddr::V6(SocketAddrV6::new(a_ll, 500, 0, vb));
        init.send(b"ll", sa("::", 0), to).await.unwrap();
        let m = timeout(T, resp.recv_meta(&mut buf)).await.unwrap().unwrap();
        assert_eq!(m.dst, a_ll);
        assert_eq!(m.ifindex, va);
        assert!(m.from.ip().is_unicast_link_local());
        assert_eq!(m.from.scope_id(), va);
        let (_, _, local) = {
            init.send(b"ll", sa("::", 0), to).await.unwrap();
            timeout(T, resp.recv(&mut buf)).await.unwrap().unwrap()
        };
        assert_eq!(local, SocketAddr::V6(SocketAddrV6::new(a_ll, 500, 0, va)));

        // A datagram longer than the buffer is dropped, the next one is delivered.
        init.send(&[7u8; 300], sa("::", 0), sa(A1, 500))
            .await
            .unwrap();
        init.send(b"short", sa("::", 0), sa(A1, 500)).await.unwrap();
        let mut small = [0u8; 100];
        let (n, _, _) = timeout(T, resp.recv(&mut small)).await.unwrap().unwrap();
        assert_eq!(&small[..n], b"short");
    });
}

#[test]
fn ike_socket_batches_on_4500() {
    let lab = VethPair::new("batch");
    let (a, b) = (&lab.a, &lab.b);
    a.run(|| async move {
        let resp = IkeSocket::bind("[::]:4500".parse().unwrap()).unwrap();
        resp.set_buffer_sizes(4 << 20, 0).unwrap();
        b.enter().unwrap();
        let init = IkeSocket::bind(sa(B1, 4500)).unwrap();
        const N: usize = 200;
        let payloads: Vec<Vec<u8>> = (0..N)
            .map(|i| {
                let mut p = vec![0u8; 100 + i];
                p[..4].copy_from_slice(&(i as u32 + 1).to_be_bytes()); // ESP-like: SPI != 0
                p
            })
            .collect();
        let dsts = [
            SocketAddrV6::new(ip(A1), 4500, 0, 0),
            SocketAddrV6::new(ip(A2), 4500, 0, 0),
        ];
        let msgs: Vec<Transmit<'_>> = payloads
            .iter()
            .enumerate()
            .map(|(i, p)| Transmit {
                data: p,
                dst: dsts[i % 2],
                src: Some(ip(B1)),
                segment_size: None,
            })
            .collect();
        let sent = init.send_batch(&msgs).await.unwrap();
        assert_eq!(sent, N);

        let mut bufs = vec![vec![0u8; 2048]; 64];
        let mut metas = vec![RecvMeta::default(); 64];
        let mut got = 0;
        let mut calls = 0;
        while got < N {
            let n = timeout(T, resp.recv_batch(&mut bufs, &mut metas))
                .await
                .unwrap()
                .unwrap();
            calls += 1;
            for (buf, m) in bufs.iter().zip(&metas).take(n) {
                let i = got;
                assert!(!m.truncated);
                assert_eq!(m.len, 100 + i, "datagrams arrive in order");
                assert_eq!(&buf[..4], &(i as u32 + 1).to_be_bytes());
                assert_eq!(*m.from.ip(), ip(B1));
                assert_eq!(m.from.port(), 4500);
                assert_eq!(m.dst, *dsts[i % 2].ip());
                got += 1;
            }
        }
        assert!(
            calls < N,
            "recvmmsg returned several datagrams per call ({calls} calls)"
        );

        // UDP GSO: 10 segments of 500 bytes in one call arrive as 10 datagrams.
        let blob: Vec<u8> = (0..5000u32).map(|i| (i / 500) as u8 + 1).collect();
        let n = init
            .send_segmented(&blob, 500, sa(B1, 0), sa(A1, 4500))
            .await
            .unwrap();
        assert_eq!(n, 5000);
        let mut seen = 0;
        while seen < 10 {
            let n = timeout(T, resp.recv_batch(&mut bufs, &mut metas))
                .await
                .unwrap()
                .unwrap();
            for (buf, m) in bufs.iter().zip(&metas).take(n) {
                assert_eq!(m.len, 500);
                assert_eq!(buf[0], seen as u8 + 1);
                seen += 1;
            }
        }

        // Non-blocking variant: nothing queued.
        let e = resp.try_recv_batch(&mut bufs, &mut metas).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock);
    });
}

/// UDP GSO on send and GRO on receive across the veth pair: runs of equal datagrams (with a
/// shorter last one) leave in one message each and come back, cut apart, byte for byte and in
/// order; a message the kernel could not take as one GSO send (too many segments) is cut into
/// single datagrams before it is sent.
#[test]
fn udp_gso_send_gro_receive() {
    let lab = VethPair::new("gro");
    let (a, b) = (&lab.a, &lab.b);
    a.run(|| async move {
        let resp = IkeSocket::bind("[::]:4500".parse().unwrap()).unwrap();
        resp.set_buffer_sizes(4 << 20, 0).unwrap();
        assert!(resp.enable_gro(), "UDP GRO (Linux 5.0)");
        b.enter().unwrap();
        let init = IkeSocket::bind(sa(B1, 4500)).unwrap();
        assert!(init.gso(), "UDP GSO (Linux 4.18)");

        // Each datagram is distinct: run r, datagram i carries (r, i) and a pattern.
        let datagram = |r: usize, i: usize, len: usize| -> Vec<u8> {
            let mut d: Vec<u8> = (0..len).map(|k| (k * 31 + i * 7 + r) as u8).collect();
            let tag = [0xe5, r as u8, i as u8, 1]; // SPI-like, never 0
            let n = len.min(4);
            d[..n].copy_from_slice(&tag[..n]);
            d
        };
        // (segment size, full segments, last length): 40 x 1400 + 600 (about a TSO burst of
        // ESP), 10 x 500 exactly, 3 x 1000 + 1 (a keepalive-sized tail), and 100 x 100: more
        // than the kernel's 64 segments, which goes out one by one.
        let runs = [(1400, 40, 600), (500, 10, 0), (1000, 3, 1), (100, 100, 0)];
        let mut expected = Vec::new();
        let mut blobs = Vec::new();
        for (r, &(seg, full, last)) in runs.iter().enumerate() {
            let mut blob = Vec::new();
            for i in 0..full {
                let d = datagram(r, i, seg);
                blob.extend_from_slice(&d);
                expected.push(d);
            }
            if last > 0 {
                let d = datagram(r, full, last);
                blob.extend_from_slice(&d);
                expected.push(d);
            }
            blobs.push((blob, seg as u16));
        }
        let msgs: Vec<Transmit<'_>> = blobs
            .iter()
            .map(|(blob, seg)| Transmit {
                data: blob,
                dst: SocketAddrV6::new(ip(A1), 4500, 0, 0),
                src: Some(ip(B1)),
                segment_size: Some(*seg),
            })
            .collect();
        assert!(blobs[0].0.len() <= netio::GSO_MAX_BYTES);
        let sent = init.send_batch(&msgs).await.unwrap();
        assert_eq!(sent, expected.len(), "datagrams sent");

        // 64 KiB per buffer: the largest GRO buffer.
        let mut bufs = vec![vec![0u8; 65536]; 8];
        let mut metas = vec![RecvMeta::default(); 8];
        let mut got: Vec<Vec<u8>> = Vec::new();
        let mut coalesced = 0;
        while got.len() < expected.len() {
            let n = timeout(T, resp.recv_batch(&mut bufs, &mut metas))
                .await
                .expect("datagrams missing")
                .unwrap();
            for (buf, m) in bufs.iter().zip(&metas).take(n) {
                assert!(!m.truncated);
                assert_eq!(*m.from.ip(), ip(B1));
                assert_eq!(m.dst, ip(A1));
                if m.segment_size > 0 && m.len > m.segment_size {
                    coalesced += 1;
                }
                got.extend(m.datagrams(buf).map(<[u8]>::to_vec));
            }
        }
        assert_eq!(got.len(), expected.len());
        for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
            assert!(
                g == e,
                "datagram {i}: {} bytes, expected {}",
                g.len(),
                e.len()
            );
        }
        assert!(coalesced > 0, "no receive carried several datagrams (GRO)");
        eprintln!(
            "{} datagrams in {coalesced} GRO buffers and singles",
            got.len()
        );

        // A GSO message through send_segmented too, with the shorter last one.
        let blob: Vec<u8> = (0..2000u32).map(|i| (i / 700) as u8 + 1).collect();
        let n = init
            .send_segmented(&blob, 700, sa(B1, 0), sa(A1, 4500))
            .await
            .unwrap();
        assert_eq!(n, 2000);
        let mut lens = Vec::new();
        while lens.len() < 3 {
            let n = timeout(T, resp.recv_batch(&mut bufs, &mut metas))
                .await
                .unwrap()
                .unwrap();
            for (buf, m) in bufs.iter().zip(&metas).take(n) {
                for d in m.datagrams(buf) {
                    assert!(d.iter().all(|&x| x == d[0]));
                    lens.push(d.len());
                }
            }
        }
        assert_eq!(lens, [700, 700, 600]);
    });
}

#[test]
fn raw_esp_between_namespaces() {
    let lab = VethPair::new("esp");
    let (a, b) = (&lab.a, &lab.b);
    let va = ifindex(a, "va");
    a.run(|| async move {
        let rx = EspSocket::open(None).unwrap();
        rx.set_buffer_sizes(4 << 20, 0).unwrap();
        let rx_bound = EspSocket::open(Some(ip(A2))).unwrap();
        b.enter().unwrap();
        let tx = EspSocket::open(None).unwrap();

        let pkt = [0x00, 0x00, 0x10, 0x01, 0, 0, 0, 1, 0xde, 0xad, 0xbe, 0xef];
        tx.send(&pkt, ip(B1), ip(A2)).await.unwrap();
        let mut buf = [0u8; 2048];
        let (n, src, dst) = timeout(T, rx.recv(&mut buf)).await.unwrap().unwrap();
        assert_eq!(&buf[..n], &pkt, "data starts at the SPI: no IPv6 header");
        assert_eq!((src, dst), (ip(B1), ip(A2)));
        // The bound socket gets it too (every raw socket of the protocol sees every packet that
        // matches its binding).
        let m = timeout(T, rx_bound.recv_meta(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!((m.len, m.dst, m.ifindex), (12, ip(A2), va));

        // Sent to A1: the unbound socket sees it, the socket bound to A2 does not.
        tx.send(&pkt, Ipv6Addr::UNSPECIFIED, ip(A1)).await.unwrap();
        let (_, src, dst) = timeout(T, rx.recv(&mut buf)).await.unwrap().unwrap();
        assert_eq!((src, dst), (ip(B1), ip(A1)), "kernel chose the source");
        assert!(
            timeout(Duration::from_millis(200), rx_bound.recv(&mut buf))
                .await
                .is_err()
        );

        // Batches.
        const N: usize = 150;
        let payloads: Vec<Vec<u8>> = (0..N)
            .map(|i| {
                let mut p = vec![0xabu8; 64];
                p[..4].copy_from_slice(&0x1001u32.to_be_bytes());
                p[4..8].copy_from_slice(&(i as u32).to_be_bytes());
                p
            })
            .collect();
        let msgs: Vec<Transmit<'_>> = payloads
            .iter()
            .map(|p| Transmit {
                data: p,
                dst: SocketAddrV6::new(ip(A1), 0, 0, 0),
                src: Some(ip(B1)),
                segment_size: None,
            })
            .collect();
        assert_eq!(tx.send_batch(&msgs).await.unwrap(), N);
        let mut bufs = vec![vec![0u8; 2048]; 32];
        let mut metas = vec![RecvMeta::default(); 32];
        let mut got = 0u32;
        while (got as usize) < N {
            let n = timeout(T, rx.recv_batch(&mut bufs, &mut metas))
                .await
                .unwrap()
                .unwrap();
            for (b, m) in bufs.iter().zip(&metas).take(n) {
                assert_eq!(m.len, 64);
                assert_eq!(&b[4..8], &got.to_be_bytes());
                assert_eq!((*m.from.ip(), m.dst), (ip(B1), ip(A1)));
                got += 1;
            }
        }
    });
    // No kernel ESP: the raw socket consumed the packets, no ICMP parameter problem went out.
    let snmp = lab.a.exec(&["cat", "/proc/net/snmp6"]);
    let counter = |name: &str| -> u64 {
        snmp.lines()
            .find_map(|l| l.strip_prefix(name).map(|v| v.trim().parse().unwrap()))
            .unwrap_or(0)
    };
    assert_eq!(counter("Ip6InUnknownProtos"), 0);
    assert_eq!(counter("Icmp6OutParmProblems"), 0);
}

#[test]
fn packet_socket_sees_ipv6_header() {
    let lab = VethPair::new("pkt");
    let (a, b) = (&lab.a, &lab.b);
    let va = ifindex(a, "va");
    a.run(|| async move {
        let reader = PacketSocket::open(va, 50).unwrap();
        let _consume = EspSocket::open(None).unwrap();
        b.enter().unwrap();
        let tx = EspSocket::open(None).unwrap();
        let udp = IkeSocket::bind(sa(B1, 0)).unwrap();
        // A UDP datagram (next header 17) must be filtered out, the ESP packet kept.
        udp.send(b"noise", sa(B1, 0), sa(A1, 9)).await.unwrap();
        tx.send(&[0, 0, 0, 9, 0, 0, 0, 1, 1, 2, 3], ip(B1), ip(A1))
            .await
            .unwrap();
        let mut buf = [0u8; 2048];
        let n = timeout(T, reader.recv(&mut buf)).await.unwrap().unwrap();
        assert_eq!(n, 40 + 11);
        assert_eq!(buf[0] >> 4, 6);
        assert_eq!(buf[6], 50, "next header");
        assert_eq!(&buf[8..24], &ip(B1).octets());
        assert_eq!(&buf[24..40], &ip(A1).octets());
        assert_eq!(&buf[40..44], &[0, 0, 0, 9]);
    });
}

/// A packet with a Home Address option (RFC 6275 §6.3), sent whole through the raw IPv6
/// socket: the packet socket sees it although the kernel drops it, and the kernel's ICMPv6
/// Parameter Problem about the option is dropped by the daemon's nftables rule (counted),
/// which goes away with the table.
#[test]
fn home_address_option_captured_and_its_parameter_problem_dropped() {
    let lab = VethPair::new("hao");
    let (a, b) = (&lab.a, &lab.b);
    let va = ifindex(a, "va");
    a.run(|| async move {
        let reader = PacketSocket::open(va, 60).unwrap();
        let table = NftTable::create(
            "nio_hao_test",
            &["icmpv6 type parameter-problem icmpv6 code 2 counter drop".to_owned()],
        )
        .unwrap();
        b.enter().unwrap();
        let tx = RawIpSocket::open().unwrap();
        let mut p = vec![0x60, 0, 0, 0, 0, 32, 60, 64];
        p.extend_from_slice(&ip(B1).octets());
        p.extend_from_slice(&ip(A1).octets());
        // Destination Options: next header ESP, 24 octets; PadN(2) so that the option sits
        // at 8n+6; Home Address option 201, 16 octets.
        p.extend_from_slice(&[50, 2, 1, 2, 0, 0, 201, 16]);
        p.extend_from_slice(&ip("2001:db8:1::100").octets());
        p.extend_from_slice(&[0, 0, 0, 9, 0, 0, 0, 1]);
        assert_eq!(tx.send(&p, ip(A1)).await.unwrap(), p.len());
        let mut buf = [0u8; 2048];
        let n = timeout(T, reader.recv(&mut buf)).await.unwrap().unwrap();
        assert_eq!(&buf[..n], &p[..]);
        a.enter().unwrap();
        let mut dropped = false;
        for _ in 0..50 {
            let out = std::process::Command::new(netio::nft::NFT)
                .args(["list", "table", "ip6", "nio_hao_test"])
                .output()
                .unwrap();
            if String::from_utf8_lossy(&out.stdout).contains("counter packets 1 ") {
                dropped = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(dropped, "the Parameter Problem was not dropped by the rule");
        drop(table);
        let out = std::process::Command::new(netio::nft::NFT)
            .args(["list", "table", "ip6", "nio_hao_test"])
            .output()
            .unwrap();
        assert!(!out.status.success(), "the table outlived its owner");
    });
}
