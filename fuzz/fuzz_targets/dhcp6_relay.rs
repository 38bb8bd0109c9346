//! Fuzzes the home agent's DHCPv6 relay engine (`dhcp6_relay::Relay`: RFC 8415 §19.1 relaying
//! a client message, §19.2 relaying a Relay-reply, the §9 envelope, and lease snooping) with a
//! sequence of operations.
//!
//! The input is read with `arbitrary::Unstructured`, one operation after another (at most
//! [`MAX_OPS`]) against a relay with link-address 2001:db8:1::1, one server 2001:db8:1::2 and
//! `max_tunnels` 8:
//! * open a tunnel (id 0-15, identity from a small set) or close one;
//! * a client datagram out of a tunnel (open or not): raw bytes, or a message built with
//!   dhcproto (a client message type, or now and then another one, with an IA_NA listing pool
//!   addresses, so relayed Releases and Declines end leases);
//! * a raw datagram on the home-link socket, from the server or from another address;
//! * a well-formed Relay-Repl built with the crate's envelope codec: the Interface-ID of an open
//!   tunnel (`Relay::interface_id`), of a closed one, junk or none; hop-count 0 and our
//!   link-address most of the time; as Relay Message a Reply built with dhcproto (IA_NAs with
//!   IAADDRs from a small address pool, lifetimes and status codes from the input), an Advertise,
//!   a Reconfigure, a nested relay message or junk; sometimes a byte flipped or cut off after;
//! * a virtual clock advance (or a jump to `poll_timeout`), then `handle_timeout`.
//!
//! Invariants (a failed assertion is the crash libFuzzer reports):
//! * nothing panics;
//! * every `Transmit` parses with `RelayMessage::parse` and is a Relay-Forw with hop-count 0, our
//!   link-address, the client's address as peer-address, the tunnel's current Interface-ID and
//!   the client message as Relay Message, sent to port 547 of the configured server;
//! * every `Delivery` names a tunnel open at that moment whose current Interface-ID the
//!   Relay-Repl carried, goes to the Relay-Repl's peer-address port 546 with its Relay Message
//!   (a server message), and answers a datagram from the server;
//! * each `handle_*` call either succeeds and counts one relayed or delivered message, or counts
//!   exactly one drop; counters never decrease; `open_tunnel` refuses exactly an open id or a
//!   ninth tunnel;
//! * `leases()` holds at most `MAX_LEASES_PER_TUNNEL` per tunnel, only for open tunnels, one
//!   holder per address, exactly what the `LeaseBound`/`LeaseGone` events said, nothing past its
//!   valid lifetime after `handle_timeout`, and `poll_timeout` is its earliest end;
//! * snooping: after a Reply without a failure status is delivered, every address of a
//!   successful IA_NA/IAADDR is held by that tunnel until now + valid lifetime (unless the tunnel
//!   is at its lease limit), or not held when that lifetime is 0; after a failure status nothing
//!   changed; after a Release or Decline is relayed the tunnel holds none of its addresses.
#![no_main]

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use dhcp6_relay::{
    ApiError, Config, Counters, Drop as RelayDrop, Event, GoneReason, Lease, MAX_LEASES_PER_TUNNEL,
    Relay, RelayMessage, RelayOption, RelayType, TunnelId,
};
use dhcproto::Encodable;
use dhcproto::v6::{DhcpOption, IAAddr, IANA, Message, MessageType, Status, StatusCode};
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;

/// The home agent's address on the home link.
const LINK: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 1);
/// The one configured DHCPv6 server.
const SERVER: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 2);
const MAX_TUNNELS: usize = 8;
/// Tunnel ids the input picks from (twice `MAX_TUNNELS`).
const TUNNEL_IDS: u64 = 16;
const IDENTITIES: [&str; 4] = ["mn1@example.com", "mn2@example.com", "mn3@example.com", ""];
/// Leased addresses come from a pool this small, so leases move between tunnels.
const POOL_LEN: u16 = 12;
const LIFETIMES: [u32; 8] = [0, 1, 30, 300, 3600, 86_400, 0xffff_fffe, 0xffff_ffff];
const ADVANCE_MS: [u64; 8] = [0, 1, 999, 1_000, 30_000, 300_000, 3_600_000, 2_592_000_000];
const STATUSES: [Status; 5] = [
    Status::Success,
    Status::UnspecFail,
    Status::NoAddrsAvail,
    Status::NoBinding,
    Status::NotOnLink,
];
const MAX_OPS: usize = 256;
/// Handles of closed tunnels kept for replays.
const MAX_STALE: usize = 16;

fn pool(i: u16) -> Ipv6Addr {
    Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x1000 + i)
}

fn drops_total(c: &Counters) -> u64 {
    c.drops.values().sum()
}

/// An optional status code; `true` when it is a failure.
fn status(u: &mut Unstructured<'_>) -> Result<(Option<Status>, bool)> {
    if u.ratio(3, 4)? {
        return Ok((None, false));
    }
    let s = *u.choose(&STATUSES)?;
    Ok((Some(s), s != Status::Success))
}

fn status_option(s: Status) -> DhcpOption {
    DhcpOption::StatusCode(StatusCode {
        status: s,
        msg: String::new(),
    })
}

/// What a Reply built by [`server_message`] should do to the leases of its tunnel.
struct Snoop {
    /// A top-level failure status: nothing is recorded or removed.
    failed: bool,
    /// Addresses of successful IA_NAs and IAADDRs, with their valid lifetimes.
    addrs: Vec<(Ipv6Addr, u32)>,
}

/// A server message of type `ty` built with dhcproto: IA_NAs with distinct pool addresses.
fn server_message(u: &mut Unstructured<'_>, ty: MessageType) -> Result<(Vec<u8>, Snoop)> {
    let xid: [u8; 3] = u.arbitrary()?;
    let mut m = Message::new_with_id(ty, xid);
    let o = m.opts_mut();
    if u.ratio(7, 8)? {
        o.insert(DhcpOption::ClientId(u.arbitrary::<&[u8]>()?.to_vec()));
    }
    o.insert(DhcpOption::ServerId(vec![0, 3, 0, 1, 0xaa, 0, 0, 0, 0, 1]));
    let (top, failed) = status(u)?;
    if let Some(s) = top {
        o.insert(status_option(s));
    }
    let mut snoop = Snoop {
        failed,
        addrs: Vec::new(),
    };
    let mut used = [false; POOL_LEN as usize];
    for _ in 0..u.int_in_range(0..=3u8)? {
        let mut ia = IANA {
            id: u.arbitrary()?,
            t1: *u.choose(&LIFETIMES)?,
            t2: *u.choose(&LIFETIMES)?,
            opts: Default::default(),
        };
        let (ia_status, ia_failed) = status(u)?;
        if let Some(s) = ia_status {
            ia.opts.insert(status_option(s));
        }
        for _ in 0..u.int_in_range(0..=4u8)? {
            let i = u.int_in_range(0..=POOL_LEN - 1)?;
            if std::mem::replace(&mut used[usize::from(i)], true) {
                continue;
            }
            let mut a = IAAddr {
                addr: pool(i),
                preferred_life: *u.choose(&LIFETIMES)?,
                valid_life: *u.choose(&LIFETIMES)?,
                opts: Default::default(),
            };
            let (a_status, a_failed) = status(u)?;
            if let Some(s) = a_status {
                a.opts.insert(status_option(s));
            }
            if !ia_failed && !a_failed {
                snoop.addrs.push((a.addr, a.valid_life));
            }
            ia.opts.insert(DhcpOption::IAAddr(a));
        }
        o.insert(DhcpOption::IANA(ia));
    }
    let bytes = m.to_vec().expect("dhcproto encodes what it built");
    Ok((bytes, snoop))
}

struct Harness {
    relay: Relay,
    now: Instant,
    /// Open tunnels and their identities, as the harness opened them.
    open: BTreeMap<u64, &'static str>,
    /// The identity each id was last opened with.
    identity: BTreeMap<u64, &'static str>,
    /// Interface-ID handles of closed tunnels.
    stale: Vec<[u8; 16]>,
    /// The leases according to the events.
    model: BTreeMap<(TunnelId, Ipv6Addr), Instant>,
    counters: Counters,
}

impl Harness {
    fn new() -> Self {
        let mut c = Config::new(LINK);
        c.servers = vec![SERVER];
        c.max_tunnels = MAX_TUNNELS;
        let relay = Relay::new(c);
        let counters = relay.counters().clone();
        Self {
            relay,
            now: Instant::now(),
            open: BTreeMap::new(),
            identity: BTreeMap::new(),
            stale: Vec::new(),
            model: BTreeMap::new(),
            counters,
        }
    }

    fn tunnel(u: &mut Unstructured<'_>) -> Result<u64> {
        u.int_in_range(0..=TUNNEL_IDS - 1)
    }

    /// The client's address inside the tunnel.
    fn client_addr(u: &mut Unstructured<'_>) -> Result<Ipv6Addr> {
        Ok(match u.int_in_range(0..=3u8)? {
            0 => Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1),
            1 => Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 2),
            2 => pool(u.int_in_range(0..=POOL_LEN - 1)?),
            _ => Ipv6Addr::from(u.arbitrary::<[u8; 16]>()?),
        })
    }

    /// Where a home-link datagram comes from: mostly the server.
    fn server_from(u: &mut Unstructured<'_>) -> Result<SocketAddr> {
        Ok(match u.int_in_range(0..=15u8)? {
            0 => SocketAddr::from((Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 3), 547)),
            1 => SocketAddr::from((Ipv4Addr::new(192, 0, 2, 2), 547)),
            2 => SocketAddr::from((LINK, 547)),
            3 => SocketAddr::from((SERVER, u.arbitrary::<u16>()?)),
            _ => SocketAddr::from((SERVER, 547)),
        })
    }

    fn step(&mut self, u: &mut Unstructured<'_>) -> Result<()> {
        match u.int_in_range(0..=11u8)? {
            0 | 1 => self.open_tunnel(u),
            2 => self.close_tunnel(u),
            3 => {
                let id = Self::tunnel(u)?;
                let src = Self::client_addr(u)?;
                let data = u.arbitrary::<&[u8]>()?;
                self.client(id, src, data, &[]);
                Ok(())
            }
            4 | 5 => self.client_message(u),
            6 => {
                let from = Self::server_from(u)?;
                let data = u.arbitrary::<&[u8]>()?;
                self.server(from, data);
                Ok(())
            }
            7..=9 => self.relay_repl(u),
            _ => self.advance(u),
        }
    }

    fn open_tunnel(&mut self, u: &mut Unstructured<'_>) -> Result<()> {
        let id = Self::tunnel(u)?;
        let identity = *u.choose(&IDENTITIES)?;
        let was_open = self.open.contains_key(&id);
        match self.relay.open_tunnel(TunnelId(id), identity.to_string()) {
            Ok(()) => {
                assert!(!was_open, "{id} opened twice");
                assert!(self.open.len() < MAX_TUNNELS, "more than max_tunnels open");
                self.open.insert(id, identity);
                self.identity.insert(id, identity);
            }
            Err(ApiError::AlreadyOpen(t)) => assert!(was_open && t == TunnelId(id)),
            Err(ApiError::TooManyTunnels(n)) => {
                assert!(!was_open && self.open.len() >= MAX_TUNNELS && n == MAX_TUNNELS);
            }
            Err(e) => panic!("open_tunnel: {e:?}"),
        }
        Ok(())
    }

    fn close_tunnel(&mut self, u: &mut Unstructured<'_>) -> Result<()> {
        let id = Self::tunnel(u)?;
        if let Some(h) = self.relay.interface_id(TunnelId(id)) {
            if self.stale.len() >= MAX_STALE {
                self.stale.remove(0);
            }
            self.stale.push(h);
        }
        self.relay.close_tunnel(TunnelId(id));
        self.open.remove(&id);
        assert!(!self.relay.is_open(TunnelId(id)));
        assert_eq!(self.relay.interface_id(TunnelId(id)), None);
        Ok(())
    }

    /// A client message built with dhcproto, listing pool addresses in an IA_NA.
    fn client_message(&mut self, u: &mut Unstructured<'_>) -> Result<()> {
        let id = Self::tunnel(u)?;
        let src = Self::client_addr(u)?;
        let ty: u8 = if u.ratio(7, 8)? {
            *u.choose(&[1u8, 3, 4, 5, 6, 8, 8, 9, 9, 11])?
        } else {
            u.arbitrary()?
        };
        let xid: [u8; 3] = u.arbitrary()?;
        let mut m = Message::new_with_id(MessageType::from(ty), xid);
        let o = m.opts_mut();
        o.insert(DhcpOption::ClientId(vec![0, 3, 0, 1, 2, 0, 0, 0, 0, 0x10]));
        let mut listed = Vec::new();
        for _ in 0..u.int_in_range(0..=2u8)? {
            let mut ia = IANA {
                id: u.arbitrary()?,
                t1: 0,
                t2: 0,
                opts: Default::default(),
            };
            for _ in 0..u.int_in_range(0..=3u8)? {
                let a = pool(u.int_in_range(0..=POOL_LEN - 1)?);
                listed.push(a);
                ia.opts.insert(DhcpOption::IAAddr(IAAddr {
                    addr: a,
                    preferred_life: 0,
                    valid_life: 0,
                    opts: Default::default(),
                }));
            }
            o.insert(DhcpOption::IANA(ia));
        }
        let Ok(mut bytes) = m.to_vec() else {
            return Ok(());
        };
        if let Some(b) = bytes.first_mut() {
            // dhcproto maps unknown types to its own codes; keep the chosen one.
            *b = ty;
        }
        let released = if matches!(ty, 8 | 9) {
            listed
        } else {
            Vec::new()
        };
        self.client(id, src, &bytes, &released);
        Ok(())
    }

    fn client(&mut self, id: u64, src: Ipv6Addr, data: &[u8], released: &[Ipv6Addr]) {
        let tunnel = TunnelId(id);
        let before = self.relay.counters().clone();
        let was_open = self.open.contains_key(&id);
        let handle = self.relay.interface_id(tunnel);
        let r = self.relay.handle_client(self.now, tunnel, src, data);
        let after = self.relay.counters().clone();
        match r {
            Ok(transmits) => {
                assert!(was_open, "relayed a message from closed {tunnel}");
                let handle = handle.expect("an open tunnel has a handle");
                assert_eq!(transmits.len(), 1, "one Relay-Forw per configured server");
                for t in &transmits {
                    assert_eq!(t.dst, SocketAddr::from((SERVER, 547)));
                    let m = RelayMessage::parse(&t.payload).expect("Relay-Forw parses");
                    assert_eq!(m.msg_type, RelayType::Forw);
                    assert_eq!(m.hop_count, 0);
                    assert_eq!(m.link_address, LINK);
                    assert_eq!(m.peer_address, src);
                    assert_eq!(m.interface_id(), Some(&handle[..]));
                    assert_eq!(m.relay_msg(), Some(data));
                    assert_eq!(m.to_bytes().expect("re-emits"), t.payload);
                }
                assert_eq!(after.relayed_up, before.relayed_up + 1);
                assert_eq!(drops_total(&after), drops_total(&before));
                for a in released {
                    assert!(
                        !self.holds(tunnel, *a),
                        "{tunnel} still holds {a} after relaying a Release/Decline"
                    );
                }
            }
            Err(d) => {
                if !was_open {
                    assert_eq!(d, RelayDrop::UnknownTunnel(tunnel));
                }
                assert_eq!(after.relayed_up, before.relayed_up);
                assert_eq!(drops_total(&after), drops_total(&before) + 1, "{d:?}");
            }
        }
        assert_eq!(after.delivered_down, before.delivered_down);
    }

    /// Feeds a home-link datagram; returns the tunnel it was delivered to.
    fn server(&mut self, from: SocketAddr, data: &[u8]) -> Option<TunnelId> {
        let before = self.relay.counters().clone();
        let r = self.relay.handle_server(self.now, from, data);
        let after = self.relay.counters().clone();
        assert_eq!(after.relayed_up, before.relayed_up);
        match r {
            Ok(d) => {
                assert_eq!(from.ip(), SERVER, "delivered a datagram from {from}");
                assert!(
                    self.relay.is_open(d.tunnel) && self.open.contains_key(&d.tunnel.0),
                    "delivered to closed {}",
                    d.tunnel
                );
                let m = RelayMessage::parse(data).expect("a delivered datagram parses");
                assert_eq!(m.msg_type, RelayType::Repl);
                assert_eq!((m.hop_count, m.link_address), (0, LINK));
                let handle = self.relay.interface_id(d.tunnel).expect("open");
                assert_eq!(
                    m.interface_id(),
                    Some(&handle[..]),
                    "not the current handle"
                );
                assert_eq!(d.dst, m.peer_address);
                assert_eq!(d.dst_port, 546);
                assert_eq!(Some(&d.payload[..]), m.relay_msg());
                assert!(
                    matches!(d.payload.first(), Some(2 | 7 | 10)),
                    "{:?}",
                    d.payload
                );
                assert_eq!(after.delivered_down, before.delivered_down + 1);
                assert_eq!(drops_total(&after), drops_total(&before));
                Some(d.tunnel)
            }
            Err(d) => {
                assert_eq!(after.delivered_down, before.delivered_down);
                assert_eq!(drops_total(&after), drops_total(&before) + 1, "{d:?}");
                None
            }
        }
    }

    fn relay_repl(&mut self, u: &mut Unstructured<'_>) -> Result<()> {
        let open: Vec<u64> = self.open.keys().copied().collect();
        let iid: Option<Vec<u8>> = match u.int_in_range(0..=7u8)? {
            0..=4 if !open.is_empty() => {
                let id = *u.choose(&open)?;
                self.relay.interface_id(TunnelId(id)).map(|h| h.to_vec())
            }
            5 if !self.stale.is_empty() => Some(u.choose(&self.stale)?.to_vec()),
            6 => Some(u.arbitrary::<&[u8]>()?.to_vec()),
            7 => None,
            _ => {
                // A handle of any id with a guessed nonce.
                let mut h = [0u8; 16];
                h[..8].copy_from_slice(&Self::tunnel(u)?.to_be_bytes());
                h[8..].copy_from_slice(&u.int_in_range(0..=32u64)?.to_be_bytes());
                Some(h.to_vec())
            }
        };
        let (inner, snoop) = match u.int_in_range(0..=7u8)? {
            0..=4 => {
                let (b, s) = server_message(u, MessageType::Reply)?;
                (b, Some(s))
            }
            5 => (server_message(u, MessageType::Advertise)?.0, None),
            6 => {
                let mut b = vec![*u.choose(&[10u8, 12, 13, 1, 0])?];
                b.extend_from_slice(u.arbitrary::<&[u8]>()?);
                (b, None)
            }
            _ => (u.arbitrary::<&[u8]>()?.to_vec(), None),
        };
        let mut options = Vec::new();
        if u.ratio(1, 8)? {
            options.push(RelayOption::Other {
                code: u.arbitrary()?,
                data: u.arbitrary::<&[u8]>()?.to_vec(),
            });
        }
        options.push(RelayOption::RelayMsg(inner));
        if let Some(iid) = iid {
            let at = if u.arbitrary()? { 0 } else { options.len() };
            options.insert(at, RelayOption::InterfaceId(iid));
        }
        let repl = RelayMessage {
            msg_type: if u.ratio(1, 16)? {
                RelayType::Forw
            } else {
                RelayType::Repl
            },
            hop_count: if u.ratio(1, 8)? { u.arbitrary()? } else { 0 },
            link_address: if u.ratio(1, 8)? {
                Ipv6Addr::from(u.arbitrary::<[u8; 16]>()?)
            } else {
                LINK
            },
            peer_address: Self::client_addr(u)?,
            options,
        };
        let Ok(mut bytes) = repl.to_bytes() else {
            return Ok(());
        };
        let mutated = u.ratio(1, 8)?;
        if mutated && !bytes.is_empty() {
            let i = u.choose_index(bytes.len())?;
            if u.arbitrary()? {
                bytes[i] ^= u.int_in_range(1..=255u8)?;
            } else {
                bytes.truncate(i);
            }
        }
        let from = if u.ratio(15, 16)? {
            SocketAddr::from((SERVER, 547))
        } else {
            Self::server_from(u)?
        };
        let before = self.relay.leases();
        let delivered = self.server(from, &bytes);
        if let (Some(tunnel), Some(snoop), false) = (delivered, snoop, mutated) {
            self.check_snoop(tunnel, &before, &snoop);
        }
        Ok(())
    }

    fn holds(&self, tunnel: TunnelId, address: Ipv6Addr) -> bool {
        self.relay
            .leases()
            .iter()
            .any(|l| l.tunnel == tunnel && l.address == address)
    }

    /// What a delivered Reply must have done to the leases of `tunnel`.
    fn check_snoop(&self, tunnel: TunnelId, before: &[Lease], snoop: &Snoop) {
        let after = self.relay.leases();
        if snoop.failed {
            assert_eq!(
                after, before,
                "a Reply with a failure status changed the leases"
            );
            return;
        }
        let held_before = |a: Ipv6Addr| before.iter().any(|l| l.tunnel == tunnel && l.address == a);
        // A new address is not recorded on a tunnel at its limit; addresses with valid
        // lifetime 0 may have made room afterwards.
        let may_be_full = after.iter().filter(|l| l.tunnel == tunnel).count()
            >= MAX_LEASES_PER_TUNNEL
            || snoop.addrs.iter().any(|&(a, v)| v == 0 && held_before(a));
        for &(a, valid) in &snoop.addrs {
            let lease = after.iter().find(|l| l.tunnel == tunnel && l.address == a);
            if valid == 0 {
                assert!(lease.is_none(), "{tunnel} holds {a} after valid lifetime 0");
                continue;
            }
            let until = self.now.checked_add(Duration::from_secs(u64::from(valid)));
            match lease {
                Some(l) => assert_eq!(Some(l.valid_until), until, "{a}"),
                None => assert!(
                    may_be_full || until.is_none(),
                    "{tunnel} does not hold {a} after a Reply with valid lifetime {valid}"
                ),
            }
        }
    }

    fn advance(&mut self, u: &mut Unstructured<'_>) -> Result<()> {
        let jump = u.ratio(1, 4)?;
        match self.relay.poll_timeout() {
            Some(t) if jump => self.now = self.now.max(t),
            _ => self.now += Duration::from_millis(*u.choose(&ADVANCE_MS)?),
        }
        self.relay.handle_timeout(self.now);
        for l in self.relay.leases() {
            assert!(
                l.valid_until > self.now,
                "lease {l:?} outlived handle_timeout"
            );
        }
        Ok(())
    }

    /// The invariants that hold between operations.
    fn check(&mut self) {
        let mut n = 0;
        while let Some(e) = self.relay.poll_event() {
            n += 1;
            match e {
                Event::LeaseBound {
                    tunnel,
                    identity,
                    address,
                    valid_until,
                } => {
                    assert_eq!(self.open.get(&tunnel.0).copied(), Some(&*identity));
                    self.model.insert((tunnel, address), valid_until);
                }
                Event::LeaseGone {
                    tunnel,
                    identity,
                    address,
                    reason,
                } => {
                    assert!(
                        self.model.remove(&(tunnel, address)).is_some(),
                        "LeaseGone for {address} on {tunnel}, which did not hold it"
                    );
                    assert_eq!(self.identity.get(&tunnel.0).copied(), Some(&*identity));
                    assert_eq!(
                        reason == GoneReason::TunnelClosed,
                        !self.open.contains_key(&tunnel.0),
                        "{reason:?} on {tunnel}"
                    );
                }
            }
        }
        // One operation touches at most the leases of every tunnel plus a Reply's worth.
        assert!(
            n <= 2 * MAX_TUNNELS * MAX_LEASES_PER_TUNNEL + 32,
            "{n} events"
        );

        let leases = self.relay.leases();
        let got: BTreeMap<(TunnelId, Ipv6Addr), Instant> = leases
            .iter()
            .map(|l| ((l.tunnel, l.address), l.valid_until))
            .collect();
        assert_eq!(got.len(), leases.len());
        assert_eq!(
            got, self.model,
            "leases() differs from what the events said"
        );
        let mut per_tunnel: BTreeMap<TunnelId, usize> = BTreeMap::new();
        let mut holders: BTreeMap<Ipv6Addr, TunnelId> = BTreeMap::new();
        for l in &leases {
            assert!(
                self.open.contains_key(&l.tunnel.0),
                "lease on closed {}",
                l.tunnel
            );
            assert_eq!(self.open[&l.tunnel.0], l.identity);
            *per_tunnel.entry(l.tunnel).or_default() += 1;
            if let Some(other) = holders.insert(l.address, l.tunnel) {
                panic!("{} held by {other} and {}", l.address, l.tunnel);
            }
        }
        assert!(per_tunnel.values().all(|&n| n <= MAX_LEASES_PER_TUNNEL));
        assert_eq!(
            self.relay.poll_timeout(),
            leases.iter().map(|l| l.valid_until).min()
        );
        for id in 0..TUNNEL_IDS {
            assert_eq!(
                self.relay.is_open(TunnelId(id)),
                self.open.contains_key(&id)
            );
        }

        let c = self.relay.counters().clone();
        assert!(c.relayed_up >= self.counters.relayed_up);
        assert!(c.delivered_down >= self.counters.delivered_down);
        for (k, v) in &self.counters.drops {
            assert!(
                c.drops.get(k).is_some_and(|n| n >= v),
                "drop counter {k} went down"
            );
        }
        self.counters = c;
    }
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let mut h = Harness::new();
    for _ in 0..MAX_OPS {
        if u.is_empty() || h.step(&mut u).is_err() {
            break;
        }
        h.check();
    }
    h.check();
});
