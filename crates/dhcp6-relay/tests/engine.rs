//! Engine tests: relaying up and down, Interface-ID handles, lease snooping, drops.

use std::net::{Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use dhcp6_relay::envelope::{RELAY_FORW, RELAY_REPL};
use dhcp6_relay::{
    ALL_DHCP_SERVERS, ApiError, Config, Drop, Event, GoneReason, Relay, RelayMessage, RelayOption,
    RelayType, TunnelId,
};
use dhcproto::v6::{
    DhcpOption, DhcpOptions, IAAddr, IANA, Message, MessageType, Status, StatusCode,
};
use dhcproto::{Decodable, Decoder, Encodable};

const LINK: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 1);
const SERVER: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 2);
const PEER: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0x10);
const ADDR: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x100);

fn server() -> SocketAddr {
    SocketAddr::from((SERVER, 547))
}

fn relay() -> Relay {
    let mut c = Config::new(LINK);
    c.servers = vec![SERVER];
    c.max_tunnels = 4;
    c.nonce_seed = 0x1234;
    Relay::new(c)
}

fn client(t: MessageType, addr: Option<Ipv6Addr>) -> Vec<u8> {
    let mut m = Message::new_with_id(t, [1, 2, 3]);
    m.opts_mut()
        .insert(DhcpOption::ClientId(vec![0, 3, 0, 1, 2, 0, 0, 0, 0, 1]));
    let mut ia = DhcpOptions::new();
    if let Some(a) = addr {
        ia.insert(DhcpOption::IAAddr(IAAddr {
            addr: a,
            preferred_life: 0,
            valid_life: 0,
            opts: DhcpOptions::new(),
        }));
    }
    m.opts_mut().insert(DhcpOption::IANA(IANA {
        id: 1,
        t1: 0,
        t2: 0,
        opts: ia,
    }));
    m.to_vec().unwrap()
}

fn reply(addr: Ipv6Addr, valid: u32, status: Option<Status>) -> Vec<u8> {
    let mut m = Message::new_with_id(MessageType::Reply, [1, 2, 3]);
    let mut ia = DhcpOptions::new();
    ia.insert(DhcpOption::IAAddr(IAAddr {
        addr,
        preferred_life: valid / 2,
        valid_life: valid,
        opts: DhcpOptions::new(),
    }));
    if let Some(status) = status {
        ia.insert(DhcpOption::StatusCode(StatusCode {
            status,
            msg: "x".into(),
        }));
    }
    m.opts_mut().insert(DhcpOption::IANA(IANA {
        id: 1,
        t1: 100,
        t2: 200,
        opts: ia,
    }));
    m.to_vec().unwrap()
}

fn repl_for(forw: &[u8], inner: &[u8]) -> Vec<u8> {
    let f = RelayMessage::parse(forw).unwrap();
    let mut options = vec![RelayOption::RelayMsg(inner.to_vec())];
    if let Some(iid) = f.interface_id() {
        options.push(RelayOption::InterfaceId(iid.to_vec()));
    }
    RelayMessage {
        msg_type: RelayType::Repl,
        hop_count: f.hop_count,
        link_address: f.link_address,
        peer_address: f.peer_address,
        options,
    }
    .to_bytes()
    .unwrap()
}

fn events(r: &mut Relay) -> Vec<Event> {
    std::iter::from_fn(|| r.poll_event()).collect()
}

#[test]
fn relays_solicit_up_and_reply_down_and_snoops_lease() {
    let now = Instant::now();
    let mut r = relay();
    r.open_tunnel(TunnelId(7), "mn@example".into()).unwrap();
    let solicit = client(MessageType::Solicit, None);
    let tx = r.handle_client(now, TunnelId(7), PEER, &solicit).unwrap();
    assert_eq!(tx.len(), 1);
    assert_eq!(tx[0].dst, server());
    let f = RelayMessage::parse(&tx[0].payload).unwrap();
    assert_eq!(f.msg_type, RelayType::Forw);
    assert_eq!(f.hop_count, 0);
    assert_eq!(f.link_address, LINK);
    assert_eq!(f.peer_address, PEER);
    assert_eq!(f.relay_msg(), Some(&solicit[..]));
    assert_eq!(f.interface_id().map(<[u8]>::len), Some(16));
    assert_eq!(
        f.interface_id().unwrap(),
        &r.interface_id(TunnelId(7)).unwrap()[..]
    );

    let inner = reply(ADDR, 4000, None);
    let d = r
        .handle_server(now, server(), &repl_for(&tx[0].payload, &inner))
        .unwrap();
    assert_eq!(d.tunnel, TunnelId(7));
    assert_eq!(d.dst, PEER);
    assert_eq!(d.dst_port, 546);
    assert_eq!(d.payload, inner);
    let until = now + Duration::from_secs(4000);
    assert_eq!(
        events(&mut r),
        vec![Event::LeaseBound {
            tunnel: TunnelId(7),
            identity: "mn@example".into(),
            address: ADDR,
            valid_until: until
        }]
    );
    assert_eq!(r.holder_of(ADDR).unwrap().identity, "mn@example");
    assert_eq!(r.lease_for("mn@example").len(), 1);
    assert_eq!(r.poll_timeout(), Some(until));
    assert_eq!(r.counters().relayed_up, 1);
    assert_eq!(r.counters().delivered_down, 1);

    // Expiry.
    r.handle_timeout(until - Duration::from_secs(1));
    assert!(r.holder_of(ADDR).is_some());
    r.handle_timeout(until);
    assert!(r.leases().is_empty());
    assert!(matches!(
        events(&mut r)[..],
        [Event::LeaseGone {
            reason: GoneReason::Expired,
            ..
        }]
    ));
    assert_eq!(r.poll_timeout(), None);
}

#[test]
fn release_and_decline_remove_lease_and_status_failure_records_nothing() {
    let now = Instant::now();
    let mut r = relay();
    r.open_tunnel(TunnelId(1), "a".into()).unwrap();
    let tx = r
        .handle_client(now, TunnelId(1), PEER, &client(MessageType::Request, None))
        .unwrap();
    let forw = tx[0].payload.clone();
    let _ = r
        .handle_server(now, server(), &repl_for(&forw, &reply(ADDR, 100, None)))
        .unwrap();
    assert_eq!(r.leases().len(), 1);
    r.handle_client(
        now,
        TunnelId(1),
        PEER,
        &client(MessageType::Release, Some(ADDR)),
    )
    .unwrap();
    assert!(r.leases().is_empty());

    let _ = r
        .handle_server(now, server(), &repl_for(&forw, &reply(ADDR, 100, None)))
        .unwrap();
    r.handle_client(
        now,
        TunnelId(1),
        PEER,
        &client(MessageType::Decline, Some(ADDR)),
    )
    .unwrap();
    assert!(r.leases().is_empty());

    // IA_NA with NoAddrsAvail: delivered, nothing recorded.
    let _ = r
        .handle_server(
            now,
            server(),
            &repl_for(&forw, &reply(ADDR, 100, Some(Status::NoAddrsAvail))),
        )
        .unwrap();
    assert!(r.leases().is_empty());
    // Valid lifetime 0 in a Reply: nothing recorded either.
    let _ = r
        .handle_server(now, server(), &repl_for(&forw, &reply(ADDR, 0, None)))
        .unwrap();
    assert!(r.leases().is_empty());
}

#[test]
fn stale_handle_is_refused_after_reopen_and_close_ends_leases() {
    let now = Instant::now();
    let mut r = relay();
    r.open_tunnel(TunnelId(3), "old".into()).unwrap();
    let tx = r
        .handle_client(now, TunnelId(3), PEER, &client(MessageType::Solicit, None))
        .unwrap();
    let old_forw = tx[0].payload.clone();
    let _ = r
        .handle_server(now, server(), &repl_for(&old_forw, &reply(ADDR, 100, None)))
        .unwrap();
    events(&mut r);
    r.close_tunnel(TunnelId(3));
    assert!(matches!(
        events(&mut r)[..],
        [Event::LeaseGone {
            reason: GoneReason::TunnelClosed,
            ..
        }]
    ));
    let repl = repl_for(&old_forw, &reply(ADDR, 100, None));
    assert_eq!(
        r.handle_server(now, server(), &repl),
        Err(Drop::UnknownInterfaceId)
    );
    r.open_tunnel(TunnelId(3), "new".into()).unwrap();
    assert_eq!(
        r.handle_server(now, server(), &repl),
        Err(Drop::StaleInterfaceId(TunnelId(3)))
    );
    assert!(r.leases().is_empty());
    assert_eq!(r.counters().drops.get("stale-interface-id"), Some(&1));
}

#[test]
fn address_has_one_holder() {
    let now = Instant::now();
    let mut r = relay();
    r.open_tunnel(TunnelId(1), "a".into()).unwrap();
    r.open_tunnel(TunnelId(2), "b".into()).unwrap();
    for t in [1, 2] {
        let tx = r
            .handle_client(now, TunnelId(t), PEER, &client(MessageType::Solicit, None))
            .unwrap();
        let _ = r
            .handle_server(
                now,
                server(),
                &repl_for(&tx[0].payload, &reply(ADDR, 100, None)),
            )
            .unwrap();
    }
    assert_eq!(r.holder_of(ADDR).unwrap().identity, "b");
    assert!(r.lease_for("a").is_empty());
}

#[test]
fn client_side_drops() {
    let now = Instant::now();
    let mut r = relay();
    let s = client(MessageType::Solicit, None);
    assert_eq!(
        r.handle_client(now, TunnelId(9), PEER, &s),
        Err(Drop::UnknownTunnel(TunnelId(9)))
    );
    r.open_tunnel(TunnelId(9), "x".into()).unwrap();
    assert_eq!(
        r.handle_client(now, TunnelId(9), PEER, &[]),
        Err(Drop::Empty)
    );
    for t in [0u8, 2, 7, 10, 12, 13, 255] {
        assert_eq!(
            r.handle_client(now, TunnelId(9), PEER, &[t, 0, 0, 0]),
            Err(Drop::NotClientMessage(t))
        );
    }
    assert_eq!(
        r.handle_client(now, TunnelId(9), PEER, &vec![1u8; 70_000]),
        Err(Drop::TooLong(70_000))
    );
    // Every client type is accepted, even with just a header.
    for t in [1u8, 3, 4, 5, 6, 8, 9, 11] {
        assert!(
            r.handle_client(now, TunnelId(9), PEER, &[t, 0, 0, 0])
                .is_ok()
        );
    }
}

#[test]
fn api_limits() {
    let mut r = relay();
    for i in 0..4 {
        r.open_tunnel(TunnelId(i), "x".into()).unwrap();
    }
    assert_eq!(
        r.open_tunnel(TunnelId(1), "x".into()),
        Err(ApiError::AlreadyOpen(TunnelId(1)))
    );
    assert_eq!(
        r.open_tunnel(TunnelId(9), "x".into()),
        Err(ApiError::TooManyTunnels(4))
    );
    r.close_tunnel(TunnelId(0));
    r.open_tunnel(TunnelId(9), "x".into()).unwrap();
}

#[test]
fn multicast_when_no_server_configured() {
    let now = Instant::now();
    let mut r = Relay::new(Config::new(LINK));
    r.open_tunnel(TunnelId(1), "x".into()).unwrap();
    let tx = r
        .handle_client(now, TunnelId(1), PEER, &client(MessageType::Solicit, None))
        .unwrap();
    assert_eq!(tx[0].dst, SocketAddr::from((ALL_DHCP_SERVERS, 547)));
    // Without configured servers any source is accepted.
    let other: SocketAddr = "[2001:db8:1::99]:547".parse().unwrap();
    assert!(
        r.handle_server(
            now,
            other,
            &repl_for(&tx[0].payload, &reply(ADDR, 10, None))
        )
        .is_ok()
    );
}

#[test]
fn server_side_drops() {
    let now = Instant::now();
    let mut r = relay();
    r.open_tunnel(TunnelId(5), "x".into()).unwrap();
    let tx = r
        .handle_client(now, TunnelId(5), PEER, &client(MessageType::Solicit, None))
        .unwrap();
    let forw = tx[0].payload.clone();
    let good = repl_for(&forw, &reply(ADDR, 10, None));
    let base = RelayMessage::parse(&good).unwrap();

    assert_eq!(r.handle_server(now, server(), &[]), Err(Drop::Empty));
    // A plain Advertise (not relayed).
    assert_eq!(
        r.handle_server(now, server(), &[2, 1, 2, 3]),
        Err(Drop::NotRelayRepl(2))
    );
    assert!(matches!(
        r.handle_server(now, server(), &good[..20]),
        Err(Drop::Malformed(_))
    ));
    // A Relay-Forw from another relay on the home link.
    let mut m = base.clone();
    m.msg_type = RelayType::Forw;
    m.hop_count = 1;
    assert_eq!(
        r.handle_server(now, server(), &m.to_bytes().unwrap()),
        Err(Drop::RelayForwFromHomeLink { hop_count: 1 })
    );
    // From elsewhere.
    let stranger: SocketAddr = "[2001:db8:1::66]:547".parse().unwrap();
    assert_eq!(
        r.handle_server(now, stranger, &good),
        Err(Drop::UnknownServer(stranger))
    );
    // Hop count: over the limit, and another relay's hop.
    let mut m = base.clone();
    m.hop_count = 8;
    assert_eq!(
        r.handle_server(now, server(), &m.to_bytes().unwrap()),
        Err(Drop::HopLimit(8))
    );
    m.hop_count = 1;
    assert_eq!(
        r.handle_server(now, server(), &m.to_bytes().unwrap()),
        Err(Drop::NotOurHop)
    );
    let mut m = base.clone();
    m.link_address = "2001:db8:2::1".parse().unwrap();
    assert_eq!(
        r.handle_server(now, server(), &m.to_bytes().unwrap()),
        Err(Drop::NotOurHop)
    );
    // Nested Relay-Repl inside.
    let mut m = base.clone();
    m.options[0] = RelayOption::RelayMsg(good.clone());
    assert_eq!(
        r.handle_server(now, server(), &m.to_bytes().unwrap()),
        Err(Drop::NotOurHop)
    );
    // Interface-ID missing, wrong length, unknown.
    let mut m = base.clone();
    m.options
        .retain(|o| !matches!(o, RelayOption::InterfaceId(_)));
    assert_eq!(
        r.handle_server(now, server(), &m.to_bytes().unwrap()),
        Err(Drop::NoInterfaceId)
    );
    let mut m = base.clone();
    m.options[1] = RelayOption::InterfaceId(b"ha0".to_vec());
    assert_eq!(
        r.handle_server(now, server(), &m.to_bytes().unwrap()),
        Err(Drop::UnknownInterfaceId)
    );
    m.options[1] = RelayOption::InterfaceId(vec![0xaa; 16]);
    assert_eq!(
        r.handle_server(now, server(), &m.to_bytes().unwrap()),
        Err(Drop::UnknownInterfaceId)
    );
    // Inner message is a client message.
    let mut m = base.clone();
    m.options[0] = RelayOption::RelayMsg(vec![1, 0, 0, 0]);
    assert_eq!(
        r.handle_server(now, server(), &m.to_bytes().unwrap()),
        Err(Drop::NotServerMessage(1))
    );
    let mut m = base;
    m.options[0] = RelayOption::RelayMsg(vec![]);
    assert_eq!(
        r.handle_server(now, server(), &m.to_bytes().unwrap()),
        Err(Drop::Empty)
    );
    // Nothing was delivered, nothing recorded; the good one still works.
    assert_eq!(r.counters().delivered_down, 0);
    assert!(r.leases().is_empty());
    assert!(r.handle_server(now, server(), &good).is_ok());
    assert_eq!(r.leases().len(), 1);
    let total: u64 = r.counters().drops.values().sum();
    assert_eq!(total, 14);
}

/// The inner message is byte-exact through the relay, and dhcproto can decode what we deliver.
#[test]
fn inner_message_passes_byte_exact() {
    let now = Instant::now();
    let mut r = relay();
    r.open_tunnel(TunnelId(1), "x".into()).unwrap();
    let s = client(MessageType::Solicit, None);
    let tx = r.handle_client(now, TunnelId(1), PEER, &s).unwrap();
    let f = RelayMessage::parse(&tx[0].payload).unwrap();
    let m = Message::decode(&mut Decoder::new(f.relay_msg().unwrap())).unwrap();
    assert_eq!(m.msg_type(), MessageType::Solicit);
    assert_eq!(tx[0].payload[0], RELAY_FORW);
    let repl = repl_for(&tx[0].payload, &reply(ADDR, 10, None));
    assert_eq!(repl[0], RELAY_REPL);
}

/// `code len` followed by 16 zero octets: with `len` short of what dhcproto reads first, its
/// `len - 2` / `len - 4` overflowed (a panic with overflow checks on; fuzz finding).
fn short_option(code: u16, len: u16) -> Vec<u8> {
    let mut v = code.to_be_bytes().to_vec();
    v.extend_from_slice(&len.to_be_bytes());
    v.extend_from_slice(&[0; 16]);
    v
}

#[test]
fn release_with_short_status_code_or_vendor_opts_is_relayed_not_a_panic() {
    let now = Instant::now();
    let mut r = relay();
    r.open_tunnel(TunnelId(1), "a".into()).unwrap();
    let tx = r
        .handle_client(now, TunnelId(1), PEER, &client(MessageType::Request, None))
        .unwrap();
    let _ = r
        .handle_server(
            now,
            server(),
            &repl_for(&tx[0].payload, &reply(ADDR, 100, None)),
        )
        .unwrap();
    for (code, len) in [(13u16, 0u16), (13, 1), (16, 3), (17, 0), (17, 2)] {
        let mut release = client(MessageType::Release, Some(ADDR));
        release.extend_from_slice(&short_option(code, len));
        let tx = r
            .handle_client(now, TunnelId(1), PEER, &release)
            .expect("relayed as it is");
        assert_eq!(
            RelayMessage::parse(&tx[0].payload).unwrap().relay_msg(),
            Some(&release[..])
        );
        // Not readable, so the lease stays until the server's Reply says otherwise.
        assert_eq!(r.leases().len(), 1, "option {code} length {len}");
    }
    // The same in a Reply: delivered, not snooped.
    let mut bad = reply(
        Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x200),
        100,
        None,
    );
    bad.extend_from_slice(&short_option(17, 0));
    let d = r
        .handle_server(now, server(), &repl_for(&tx[0].payload, &bad))
        .unwrap();
    assert_eq!(d.payload, bad);
    assert_eq!(r.leases().len(), 1);
}

/// dhcproto decodes nested IA_NAs recursively without a limit: a Reply of IA_NAs nested 4000
/// deep overflowed a 2 MiB thread stack even in release builds (process abort). It is delivered
/// and not snooped, here on a 256 KiB stack.
#[test]
fn reply_with_ia_na_nested_thousands_deep_is_delivered_unsnooped_on_a_small_stack() {
    let now = Instant::now();
    let mut r = relay();
    r.open_tunnel(TunnelId(1), "a".into()).unwrap();
    let tx = r
        .handle_client(now, TunnelId(1), PEER, &client(MessageType::Request, None))
        .unwrap();
    let mut inner = vec![7u8, 1, 2, 3];
    let depth = 64_000 / 16;
    for i in 0..depth {
        let len = u16::try_from((depth - 1 - i) * 16 + 12).unwrap();
        inner.extend_from_slice(&[0, 3]);
        inner.extend_from_slice(&len.to_be_bytes());
        inner.extend_from_slice(&[0; 12]);
    }
    let repl = repl_for(&tx[0].payload, &inner);
    let (r, d) = std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || {
            let d = r.handle_server(now, server(), &repl);
            (r, d)
        })
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(d.unwrap().payload, inner);
    assert!(r.leases().is_empty());
}

proptest::proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300), t in 0u64..3) {
        let now = Instant::now();
        let mut r = relay();
        r.open_tunnel(TunnelId(1), "x".into()).unwrap();
        let _ = r.handle_client(now, TunnelId(t), PEER, &data);
        let _ = r.handle_server(now, server(), &data);
        r.handle_timeout(now + Duration::from_secs(5));
    }

    /// Arbitrary inner messages inside a well-formed Relay-Repl with a valid handle.
    #[test]
    fn arbitrary_inner_never_panics(inner in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
        let now = Instant::now();
        let mut r = relay();
        r.open_tunnel(TunnelId(1), "x".into()).unwrap();
        let tx = r.handle_client(now, TunnelId(1), PEER, &[1, 0, 0, 0]).unwrap();
        let mut inner = inner;
        if let Some(b) = inner.first_mut() { *b = 7; }
        let _ = r.handle_server(now, server(), &repl_for(&tx[0].payload, &inner));
        let _ = r.handle_client(now, TunnelId(1), PEER, &{ let mut v = inner.clone(); if let Some(b) = v.first_mut() { *b = 8; } v });
        r.handle_timeout(now + Duration::from_secs(1 << 40));
    }
}
