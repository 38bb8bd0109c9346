//! The tunnel task end to end with ESP in UDP (RFC 3948): two tunnels in two network
//! namespaces joined by a veth pair, IKEv1 with `force_encap` on both sides (so both float to
//! UDP 4500 and encapsulate, RFC 3947 §3 / RFC 3948 §2.1), and TCP through the tunnel-mode
//! child SA. ESP in UDP leaves with UDP GSO and arrives with UDP GRO where the kernel has them;
//! the data must cross intact either way. Needs root.

// The namespace fixtures of the netio tests (unique names, deleted on drop, also on panic).
#[path = "../../netio/tests/common/mod.rs"]
mod common;

use std::net::{IpAddr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::time::Duration;

use common::{A1, B1, VethPair};
use ikev1::crypto::SystemRng;
use ikev1::{
    ChildRequest, ChildSa, Config, Engine, EspProposal, Event, Identity, IkeProposal, IkeSaId,
    LocalAuth, Mode, PeerAuth, PeerConfig, TrafficSelector,
};
use netio::{AddressOptions, IkeSocket, Netlink, Route, Transmit};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::timeout;
use tunnel::{Snapshot, Tunnel, TunnelConfig};
use zeroize::Zeroizing;

const T: Duration = Duration::from_secs(10);
const PSK: &[u8] = b"encap-test-psk-0123456789";
/// Inner prefixes: A's side of the tunnel and B's.
const INNER_A: &str = "fd00:a::1";
const INNER_B: &str = "fd00:b::1";

fn ip(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

fn engine(me: &str, peer: &str) -> Engine {
    let mut c = Config::new(Identity::parse(me), LocalAuth::Psk);
    c.ike_proposals = vec![IkeProposal::parse("aes128-sha256-ecp256", false).unwrap()];
    c.esp_proposals = vec![EspProposal::parse("aes128gcm16", false).unwrap()];
    c.peers = vec![PeerConfig {
        identity: Identity::parse(peer),
        auth: PeerAuth::Psk(Zeroizing::new(PSK.to_vec())),
        addrs: vec![],
    }];
    // strongSwan's `encap = yes`: fake NAT-D so that both ends use UDP 4500 for ESP.
    c.force_encap = true;
    Engine::new(c, Box::new(SystemRng::new()))
}

/// A tunnel on `address` whose TUN device `tun` carries `inner/64` and routes `peer/64`.
async fn start(address: &str, tun: &str, inner: &str, peer: &str, me: &str, them: &str) -> Tunnel {
    let nl = Netlink::new().unwrap();
    let cfg = TunnelConfig {
        address: ip(address),
        natt_port: 4500,
        tun_name: tun.into(),
        tun_mtu: 1400,
        local_udp: vec![],
        mh_capture: None,
    };
    let t = tunnel::spawn(engine(me, them), cfg, &nl).await.unwrap();
    nl.add_address(tun, ip(inner), 64, AddressOptions::default())
        .await
        .unwrap();
    nl.add_route(&Route::new(ip(peer), 64, tun)).await.unwrap();
    t
}

async fn next_child(events: &mut mpsc::UnboundedReceiver<Event>) -> ChildSa {
    loop {
        match timeout(T, events.recv())
            .await
            .expect("no child SA")
            .unwrap()
        {
            Event::ChildSaEstablished(c) => return *c,
            Event::IkeSaFailed { reason, .. } => panic!("phase 1 failed: {reason:?}"),
            _ => {}
        }
    }
}

async fn next_ike_sa(events: &mut mpsc::UnboundedReceiver<Event>) -> (IkeSaId, bool) {
    loop {
        match timeout(T, events.recv()).await.expect("no IKE SA").unwrap() {
            Event::IkeSaEstablished { sa, nat, .. } => return (sa, nat),
            Event::IkeSaFailed { reason, .. } => panic!("phase 1 failed: {reason:?}"),
            _ => {}
        }
    }
}

fn drops(s: &Snapshot, reason: &str) -> u64 {
    s.esp_drops
        .iter()
        .find(|(r, _)| r == reason)
        .map_or(0, |(_, n)| *n)
}

/// 4 MiB each way over TCP through a forced-encapsulation tunnel; then a GSO burst of hostile
/// datagrams into the NAT-T port is counted datagram by datagram.
#[test]
fn tcp_through_udp_encapsulated_tunnel() {
    let lab = VethPair::new("encap");
    let (a, b) = (&lab.a, &lab.b);
    a.run(|| async move {
        let mut ta = start(A1, "ga0", INNER_A, "fd00:b::", "a.example", "b.example").await;
        b.enter().unwrap();
        let mut tb = start(B1, "gb0", INNER_B, "fd00:a::", "b.example", "a.example").await;
        let listener =
            tokio::net::TcpListener::bind(SocketAddr::new(IpAddr::V6(ip(INNER_B)), 7777))
                .await
                .unwrap();

        // B initiates phase 1 and a tunnel-mode Quick Mode for fd00:b::/64 <-> fd00:a::/64.
        let local = SocketAddr::new(IpAddr::V6(ip(B1)), 500);
        let remote = SocketAddr::new(IpAddr::V6(ip(A1)), 500);
        tb.handle
            .with_engine(move |e, now| e.initiate(now, 0, local, remote))
            .await
            .unwrap()
            .unwrap();
        let (sa, nat) = next_ike_sa(&mut tb.events).await;
        assert!(nat, "force_encap: NAT-T in use");
        let request = ChildRequest {
            mode: Mode::Tunnel,
            local_ts: TrafficSelector::prefix(IpAddr::V6(ip("fd00:b::")), 64),
            remote_ts: TrafficSelector::prefix(IpAddr::V6(ip("fd00:a::")), 64),
        };
        tb.handle
            .with_engine(move |e, now| e.initiate_child(now, sa, request))
            .await
            .unwrap()
            .unwrap();
        let cb = next_child(&mut tb.events).await;
        let ca = next_child(&mut ta.events).await;
        assert!(cb.udp_encap && ca.udp_encap, "ESP in UDP on both sides");
        assert_eq!(cb.remote.port(), 4500);

        // TCP from A's inner address to B's: the client socket is A's.
        a.enter().unwrap();
        let data: Vec<u8> = (0..4u32 << 20).map(|i| (i * 7 % 251) as u8).collect();
        let transfer = async {
            let mut c =
                tokio::net::TcpStream::connect(SocketAddr::new(IpAddr::V6(ip(INNER_B)), 7777))
                    .await
                    .unwrap();
            let (mut s, peer) = listener.accept().await.unwrap();
            assert_eq!(peer.ip(), IpAddr::V6(ip(INNER_A)));
            let w = async {
                c.write_all(&data).await.unwrap();
                c.shutdown().await.unwrap();
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
        let (back, got) = timeout(Duration::from_secs(60), transfer)
            .await
            .expect("transfer timed out");
        assert!(got == data, "data corrupted A -> B");
        assert!(back == data, "data corrupted B -> A");

        let sa_ = ta.handle.snapshot().await.unwrap();
        let sb = tb.handle.snapshot().await.unwrap();
        for s in [&sa_, &sb] {
            let c = &s.children[0];
            assert!(c.child.udp_encap);
            let (in_p, in_b, out_p, out_b) = c.traffic;
            assert!(in_b > 4 << 20 && out_b > 4 << 20, "{:?}", c.traffic);
            assert!(in_p > 1000 && out_p > 1000, "{:?}", c.traffic);
            for r in ["BadIcv", "Replay", "Malformed", "Truncated"] {
                assert_eq!(drops(s, r), 0, "{r}: {:?}", s.esp_drops);
            }
        }
        eprintln!(
            "A: {:?}\nB: {:?}",
            sa_.children[0].traffic, sb.children[0].traffic
        );

        // A GSO burst into B's NAT-T port from elsewhere in A: 5 ESP datagrams with an SPI
        // nobody has, one IKE message that does not parse, 3 more ESP, and a NAT-keepalive as
        // the shorter last datagram. Whether the kernel hands them to B coalesced (GRO) or
        // one by one, each is counted as a single datagram would be.
        let sock = IkeSocket::bind(SocketAddr::new(IpAddr::V6(ip(A1)), 4600)).unwrap();
        let mut burst = Vec::new();
        for i in 0..9u8 {
            let mut d = [i; 100];
            if i == 5 {
                // Non-ESP marker, then an ISAKMP header that claims more than is there.
                d[..4].fill(0);
            } else {
                d[..4].copy_from_slice(&0xdead_beefu32.to_be_bytes());
            }
            burst.extend_from_slice(&d);
        }
        burst.push(0xff);
        let before_esp = drops(&sb, "NoSa");
        let before_ike = sb.ike_counters.clone();
        let dst = SocketAddrV6::new(ip(B1), 4500, 0, 0);
        let n = sock
            .send_batch(&[Transmit {
                data: &burst,
                dst,
                src: Some(ip(A1)),
                segment_size: Some(100),
            }])
            .await
            .unwrap();
        assert_eq!(n, 10);
        let deadline = tokio::time::Instant::now() + T;
        loop {
            let s = tb.handle.snapshot().await.unwrap();
            let esp = drops(&s, "NoSa") - before_esp;
            let ike = s.ike_counters.received - before_ike.received;
            if esp == 8 && ike == 1 {
                // The IKE message is dropped as one (malformed or for an unknown SA).
                let c = &s.ike_counters;
                let dropped = c.dropped_malformed + c.dropped_unknown_sa;
                let dropped_before = before_ike.dropped_malformed + before_ike.dropped_unknown_sa;
                assert_eq!(dropped, dropped_before + 1, "{c:?}");
                break;
            }
            assert!(
                esp <= 8 && ike <= 1,
                "counted too often: {esp} ESP, {ike} IKE"
            );
            assert!(
                tokio::time::Instant::now() < deadline,
                "burst not counted: {esp} ESP, {ike} IKE"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        ta.handle.shutdown().await.unwrap();
        tb.handle.shutdown().await.unwrap();
    });
}
