//! DHCPv6 relay micro-benchmarks (issue 6): envelope wrap and unwrap on the home agent's relay.
//!
//! * wrap: [`Relay::handle_client`] turns a mobile node's Solicit (out of its tunnel) into the
//!   Relay-Forw for the server;
//! * unwrap: [`Relay::handle_server`] turns the server's Relay-Repl (holding a Reply with an
//!   IA_NA address) back into a [`dhcp6_relay::Delivery`] for the tunnel; this includes the
//!   lease snooping of the Reply (a refresh of the same lease every iteration), and the
//!   event it raises is drained each time.
//!
//! The messages are what a client and Kea exchange: DUID-LLT client and server ids, Elapsed
//! Time, ORO (DNS), IA_NA; the Reply with an address, T1/T2 and DNS servers.
//!
//! Run: `cargo bench -p dhcp6-relay --bench relay`.

use std::hint::black_box;
use std::net::{Ipv6Addr, SocketAddr};
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use dhcp6_relay::{Config, Relay, RelayMessage, RelayOption, RelayType, TunnelId};
use dhcproto::Encodable;
use dhcproto::v6::{DhcpOption, DhcpOptions, IAAddr, IANA, Message, MessageType, ORO, OptionCode};

const LINK: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 1);
const SERVER: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 2);
const PEER: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0x10);
const ADDR: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x100);
const DNS: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x53);
const TUNNEL: TunnelId = TunnelId(7);
const XID: [u8; 3] = [0x5a, 0x1c, 0x07];

/// DUID-LLT (type 1, hardware type 1, time, MAC).
fn duid(mac_last: u8) -> Vec<u8> {
    vec![
        0, 1, 0, 1, 0x2e, 0x4c, 0x6b, 0x10, 0x02, 0x42, 0xac, 0x11, 0x00, mac_last,
    ]
}

fn solicit() -> Vec<u8> {
    let mut m = Message::new_with_id(MessageType::Solicit, XID);
    let o = m.opts_mut();
    o.insert(DhcpOption::ClientId(duid(2)));
    o.insert(DhcpOption::ElapsedTime(0));
    o.insert(DhcpOption::ORO(ORO {
        opts: vec![OptionCode::DomainNameServers],
    }));
    o.insert(DhcpOption::IANA(IANA {
        id: 1,
        t1: 0,
        t2: 0,
        opts: DhcpOptions::new(),
    }));
    m.to_vec().unwrap()
}

fn reply() -> Vec<u8> {
    let mut m = Message::new_with_id(MessageType::Reply, XID);
    let o = m.opts_mut();
    o.insert(DhcpOption::ServerId(duid(3)));
    o.insert(DhcpOption::ClientId(duid(2)));
    let mut ia = DhcpOptions::new();
    ia.insert(DhcpOption::IAAddr(IAAddr {
        addr: ADDR,
        preferred_life: 3000,
        valid_life: 4000,
        opts: DhcpOptions::new(),
    }));
    o.insert(DhcpOption::IANA(IANA {
        id: 1,
        t1: 1000,
        t2: 2000,
        opts: ia,
    }));
    o.insert(DhcpOption::DomainNameServers(vec![DNS]));
    m.to_vec().unwrap()
}

fn relay() -> Relay {
    let mut c = Config::new(LINK);
    c.servers = vec![SERVER];
    c.nonce_seed = 0x1234;
    let mut r = Relay::new(c);
    r.open_tunnel(TUNNEL, "mn@example.com".into()).unwrap();
    r
}

/// The server's Relay-Repl answering `forw` with `inner`, as Kea builds it (Interface-ID echoed).
fn repl_for(forw: &[u8], inner: &[u8]) -> Vec<u8> {
    let f = RelayMessage::parse(forw).unwrap();
    RelayMessage {
        msg_type: RelayType::Repl,
        hop_count: f.hop_count,
        link_address: f.link_address,
        peer_address: f.peer_address,
        options: vec![
            RelayOption::InterfaceId(f.interface_id().unwrap().to_vec()),
            RelayOption::RelayMsg(inner.to_vec()),
        ],
    }
    .to_bytes()
    .unwrap()
}

fn bench(c: &mut Criterion) {
    let now = Instant::now();
    let server = SocketAddr::from((SERVER, 547));
    let solicit = solicit();
    let reply = reply();
    let mut r = relay();
    let forw = r.handle_client(now, TUNNEL, PEER, &solicit).unwrap();
    assert_eq!(forw.len(), 1);
    let repl = repl_for(&forw[0].payload, &reply);
    let d = r.handle_server(now, server, &repl).unwrap();
    assert_eq!((d.tunnel, d.dst, &d.payload), (TUNNEL, PEER, &reply));
    assert!(r.poll_event().is_some(), "the Reply's lease is snooped");

    let mut g = c.benchmark_group("dhcp6-relay");
    g.bench_function("wrap-solicit", |b| {
        b.iter(|| {
            r.handle_client(now, TUNNEL, PEER, black_box(&solicit))
                .unwrap()
        });
    });
    g.bench_function("unwrap-reply", |b| {
        b.iter(|| {
            let d = r.handle_server(now, server, black_box(&repl)).unwrap();
            while r.poll_event().is_some() {}
            d
        });
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
