//! Fuzzes the mobile node's DHCPv6 client engine (`dhcp6_client::Client`: RFC 8415 §15
//! retransmission, §18.2 client behaviour) with a sequence of operations.
//!
//! The input is read with `arbitrary::Unstructured`: first the configuration (Rapid Commit,
//! an address hint, the Client FQDN and an extra ORO code, each from one bit) and the seed of
//! the engine's random source, then one operation after another (at most [`MAX_OPS`]):
//! * a raw datagram;
//! * a plausible server message built with dhcproto: Advertise or Reply (now and then another
//!   type) with the transaction ID of the current exchange (read back from the last Solicit,
//!   Request, Renew, … the client sent) or another, our Client Identifier or another, one of a
//!   few Server Identifiers, Preference, Rapid Commit, status codes, and IA_NAs with IAADDRs
//!   whose IAID, T1/T2, addresses and lifetimes come from the input; so Bound, Renewing,
//!   Rebinding, Releasing and Declining are reached;
//! * a virtual clock advance by a step from a table, or a jump to `poll_timeout`, then
//!   `handle_timeout`;
//! * `release`, `decline` or (rarely) `start` again.
//!
//! Invariants (a failed assertion is the crash libFuzzer reports):
//! * nothing panics;
//! * every transmit decodes with dhcproto as Solicit, Request, Renew, Rebind, Release or
//!   Decline, carries our Client Identifier, an Elapsed Time, one IA_NA with our IAID and T1/T2
//!   0, a Server Identifier exactly for Request/Renew/Release/Decline, Rapid Commit only in a
//!   Solicit of a client configured for it, and as IAADDR (lifetimes 0) the hint in Solicit
//!   (nothing without one), the offered address in Request and the leased address in
//!   Renew/Rebind/Release/Decline;
//! * a message is sent by the state it names (SOLICITING sends Solicit, …), at most one per
//!   operation, and at most two events per operation;
//! * a server message is accepted only with the current transaction ID, our Client Identifier
//!   and a Server Identifier;
//! * `poll_timeout()` is never in the past; after `handle_timeout(now)` it is later than `now`,
//!   `None` only in IDLE or in BOUND with infinite lifetimes;
//! * `release`/`decline` fail exactly when there is no lease; a `Bound` event leaves the client
//!   BOUND with a valid lifetime > 0 and preferred ≤ valid, `Released` leaves it IDLE.
#![no_main]

use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

use dhcp6_client::{ApiError, Client, ClientConfig, Duid, Event, State};
use dhcproto::v6::{
    DhcpOption, IAAddr, IANA, Message, MessageType, OptionCode, Status, StatusCode,
};
use dhcproto::{Decodable, Decoder, Encodable};
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;

const MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x10];
const IAID: u32 = 7;
const HINT: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x1000);
const SERVERS: [&[u8]; 3] = [
    &[0, 3, 0, 1, 0xaa, 0, 0, 0, 0, 1],
    &[0, 3, 0, 1, 0xbb, 0, 0, 0, 0, 2],
    &[0, 2, 0, 0, 0x12, 0x34, 0x56],
];
/// T1, T2 and lifetimes, in seconds.
const TIMES: [u32; 10] = [
    0,
    1,
    10,
    60,
    100,
    1000,
    3600,
    86_400,
    0xffff_fffe,
    0xffff_ffff,
];
const ADVANCE_MS: [u64; 10] = [
    0,
    1,
    100,
    1_000,
    10_000,
    100_000,
    1_000_000,
    3_600_000,
    86_400_000,
    2_592_000_000,
];
const STATUSES: [Status; 6] = [
    Status::Success,
    Status::UnspecFail,
    Status::NoAddrsAvail,
    Status::NoBinding,
    Status::NotOnLink,
    Status::UseMulticast,
];
const MAX_OPS: usize = 256;

fn pool(i: u16) -> Ipv6Addr {
    Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x1000 + i)
}

/// xorshift64 from the input: retransmission jitter and transaction IDs vary with it.
fn rng(seed: u64) -> impl FnMut(&mut [u8]) + Send + 'static {
    let mut s = seed | 1;
    move |buf: &mut [u8]| {
        for b in buf {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            *b = (s >> 24) as u8;
        }
    }
}

fn status(u: &mut Unstructured<'_>) -> Result<Option<DhcpOption>> {
    if u.ratio(3, 4)? {
        return Ok(None);
    }
    Ok(Some(DhcpOption::StatusCode(StatusCode {
        status: *u.choose(&STATUSES)?,
        msg: String::new(),
    })))
}

struct Harness {
    client: Client,
    now: Instant,
    duid: Vec<u8>,
    rapid: bool,
    hint: Option<Ipv6Addr>,
    /// Transaction ID of the last message sent.
    xid: Option<u32>,
}

impl Harness {
    fn new(u: &mut Unstructured<'_>) -> Result<Self> {
        let flags: u8 = u.arbitrary()?;
        let seed: u64 = u.arbitrary()?;
        let duid = Duid::from_mac(MAC).into_bytes();
        let config = ClientConfig {
            duid: duid.clone(),
            iaid: IAID,
            rapid_commit: flags & 1 != 0,
            fqdn: (flags & 4 != 0).then(|| "mn1.example.com.".to_string()),
            oro: if flags & 8 != 0 { vec![24] } else { vec![] },
            hint: (flags & 2 != 0).then_some(HINT),
        };
        let rapid = config.rapid_commit;
        let hint = config.hint;
        let client = Client::new(config, rng(seed)).expect("valid configuration");
        Ok(Self {
            client,
            now: Instant::now(),
            duid,
            rapid,
            hint,
            xid: None,
        })
    }

    fn step(&mut self, u: &mut Unstructured<'_>) -> Result<()> {
        match u.int_in_range(0..=15u8)? {
            0 | 1 => {
                let data = u.arbitrary::<&[u8]>()?;
                self.message(data, None);
            }
            2..=8 => self.server_message(u)?,
            9..=11 => {
                let ms = *u.choose(&ADVANCE_MS)?;
                self.timeout(self.now + Duration::from_millis(ms));
            }
            12 | 13 => match self.client.poll_timeout() {
                Some(t) => self.timeout(self.now.max(t)),
                None => self.timeout(self.now),
            },
            14 => {
                let has_lease = lease_address(self.client.state()).is_some();
                let name = self.client.state().name();
                let r = if u.arbitrary()? {
                    self.client.release(self.now)
                } else {
                    self.client.decline(self.now)
                };
                match r {
                    Ok(()) => assert!(has_lease, "release/decline without a lease in {name}"),
                    Err(ApiError::NoLease(n)) => {
                        assert!(!has_lease, "release/decline refused in {name}");
                        assert_eq!(n, name);
                    }
                    Err(e) => panic!("{e:?}"),
                }
            }
            _ => {
                if u.ratio(1, 4)? {
                    self.client.start(self.now);
                }
            }
        }
        Ok(())
    }

    fn timeout(&mut self, now: Instant) {
        self.now = now;
        self.client.handle_timeout(now);
        let state = self.client.state();
        match self.client.poll_timeout() {
            Some(t) => assert!(
                t > now,
                "{state}: poll_timeout {:?} not after handle_timeout",
                now.saturating_duration_since(t)
            ),
            None => assert!(
                matches!(state, State::Idle | State::Bound { .. }),
                "{state} without a timer"
            ),
        }
    }

    /// A plausible server message.
    fn server_message(&mut self, u: &mut Unstructured<'_>) -> Result<()> {
        let ty = match u.int_in_range(0..=15u8)? {
            0..=6 => MessageType::Advertise,
            7..=14 => MessageType::Reply,
            _ => MessageType::from(u.arbitrary::<u8>()?),
        };
        let xid = match self.xid {
            Some(x) if u.ratio(7, 8)? => x,
            _ => u.int_in_range(0..=0xff_ffffu32)?,
        };
        let [_, a, b, c] = xid.to_be_bytes();
        let mut m = Message::new_with_id(ty, [a, b, c]);
        let o = m.opts_mut();
        match u.int_in_range(0..=15u8)? {
            0 => {}
            1 => o.insert(DhcpOption::ClientId(u.arbitrary::<&[u8]>()?.to_vec())),
            _ => o.insert(DhcpOption::ClientId(self.duid.clone())),
        }
        if u.ratio(15, 16)? {
            o.insert(DhcpOption::ServerId(u.choose(&SERVERS)?.to_vec()));
        }
        if u.ratio(1, 4)? {
            let any = u.arbitrary()?;
            o.insert(DhcpOption::Preference(*u.choose(&[0, 10, 255, any])?));
        }
        if u.arbitrary()? {
            o.insert(DhcpOption::RapidCommit);
        }
        if let Some(s) = status(u)? {
            o.insert(s);
        }
        if u.arbitrary()? {
            o.insert(DhcpOption::DomainNameServers(vec![pool(0x53)]));
        }
        for _ in 0..u.int_in_range(0..=2u8)? {
            let mut ia = IANA {
                id: if u.ratio(7, 8)? { IAID } else { u.arbitrary()? },
                t1: *u.choose(&TIMES)?,
                t2: *u.choose(&TIMES)?,
                opts: Default::default(),
            };
            if let Some(s) = status(u)? {
                ia.opts.insert(s);
            }
            for _ in 0..u.int_in_range(0..=2u8)? {
                let mut addr = IAAddr {
                    addr: pool(u.int_in_range(0..=3)?),
                    preferred_life: *u.choose(&TIMES)?,
                    valid_life: *u.choose(&TIMES)?,
                    opts: Default::default(),
                };
                if let Some(s) = status(u)? {
                    addr.opts.insert(s);
                }
                ia.opts.insert(DhcpOption::IAAddr(addr));
            }
            o.insert(DhcpOption::IANA(ia));
        }
        let Ok(bytes) = m.to_vec() else {
            return Ok(());
        };
        self.message(&bytes, Some(&m));
        Ok(())
    }

    fn message(&mut self, data: &[u8], built: Option<&Message>) {
        let xid = self.xid;
        let in_exchange = !matches!(self.client.state(), State::Idle | State::Bound { .. });
        if self.client.handle_message(self.now, data).is_ok() {
            assert!(in_exchange, "a message was accepted outside an exchange");
            let decoded;
            let m = match built {
                Some(m) => m,
                None => {
                    decoded = Message::decode(&mut Decoder::new(data))
                        .expect("an accepted datagram decodes");
                    &decoded
                }
            };
            assert_eq!(Some(m.xid_num()), xid, "accepted another transaction ID");
            assert!(matches!(
                m.msg_type(),
                MessageType::Advertise | MessageType::Reply
            ));
            assert_eq!(
                m.opts().get(OptionCode::ClientId),
                Some(&DhcpOption::ClientId(self.duid.clone())),
                "accepted another Client Identifier"
            );
            assert!(m.opts().get(OptionCode::ServerId).is_some());
        }
    }

    /// The invariants that hold between operations.
    fn check(&mut self) {
        let mut events = 0;
        while let Some(e) = self.client.poll_event() {
            events += 1;
            match e {
                Event::Bound {
                    preferred, valid, ..
                } => {
                    assert!(valid > Duration::ZERO && preferred <= valid);
                    assert_eq!(self.client.state().name(), "BOUND");
                }
                Event::Released => assert_eq!(self.client.state().name(), "IDLE"),
                _ => {}
            }
        }
        assert!(events <= 2, "{events} events from one operation");

        let mut sent = 0;
        while let Some(b) = self.client.poll_transmit() {
            sent += 1;
            self.check_transmit(&b);
        }
        assert!(sent <= 1, "{sent} datagrams from one operation");

        if let Some(t) = self.client.poll_timeout() {
            assert!(
                t >= self.now,
                "{}: poll_timeout in the past",
                self.client.state()
            );
        } else {
            assert!(matches!(
                self.client.state(),
                State::Idle | State::Bound { .. }
            ));
        }
    }

    fn check_transmit(&mut self, b: &[u8]) {
        let m = Message::decode(&mut Decoder::new(b)).expect("a transmit decodes");
        let state = self.client.state();
        let (ty, expect_state) = match m.msg_type() {
            MessageType::Solicit => ("Solicit", "SOLICITING"),
            MessageType::Request => ("Request", "REQUESTING"),
            MessageType::Renew => ("Renew", "RENEWING"),
            MessageType::Rebind => ("Rebind", "REBINDING"),
            MessageType::Release => ("Release", "RELEASING"),
            MessageType::Decline => ("Decline", "DECLINING"),
            other => panic!("sent {other:?}"),
        };
        assert_eq!(state.name(), expect_state, "{ty} sent, now in {state}");
        self.xid = Some(m.xid_num());
        let o = m.opts();
        assert_eq!(
            o.get(OptionCode::ClientId),
            Some(&DhcpOption::ClientId(self.duid.clone())),
            "{ty} without our Client Identifier"
        );
        assert!(matches!(
            o.get(OptionCode::ElapsedTime),
            Some(DhcpOption::ElapsedTime(_))
        ));
        // RFC 8415 §18.2: Solicit and Rebind go to any server.
        assert_eq!(
            o.get(OptionCode::ServerId).is_some(),
            !matches!(ty, "Solicit" | "Rebind"),
            "{ty}: Server Identifier"
        );
        assert_eq!(
            o.get(OptionCode::RapidCommit).is_some(),
            ty == "Solicit" && self.rapid,
            "{ty}: Rapid Commit"
        );
        let ias = o.get_all(OptionCode::IANA).unwrap_or(&[]);
        assert_eq!(ias.len(), 1, "{ty}: one IA_NA");
        let DhcpOption::IANA(ia) = &ias[0] else {
            panic!("{ty}: {:?}", ias[0]);
        };
        assert_eq!((ia.id, ia.t1, ia.t2), (IAID, 0, 0));
        let listed: Vec<(Ipv6Addr, u32, u32)> = ia
            .opts
            .iter()
            .filter_map(|o| match o {
                DhcpOption::IAAddr(a) => Some((a.addr, a.preferred_life, a.valid_life)),
                _ => None,
            })
            .collect();
        let expected = match (ty, state) {
            ("Solicit", _) => self.hint,
            // RFC 8415 §18.2.2: the address the chosen Advertise offered.
            ("Request", State::Requesting { offered, .. }) => Some(*offered),
            _ => Some(lease_address(state).expect("a state with a lease")),
        };
        assert_eq!(
            listed,
            expected.map(|a| (a, 0, 0)).into_iter().collect::<Vec<_>>(),
            "{ty}: IAADDR"
        );
    }
}

fn lease_address(s: &State) -> Option<Ipv6Addr> {
    match s {
        State::Bound { lease }
        | State::Renewing { lease, .. }
        | State::Rebinding { lease, .. }
        | State::Releasing { lease, .. }
        | State::Declining { lease, .. } => Some(lease.address()),
        _ => None,
    }
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(mut h) = Harness::new(&mut u) else {
        return;
    };
    h.client.start(h.now);
    h.check();
    for _ in 0..MAX_OPS {
        if u.is_empty() || h.step(&mut u).is_err() {
            break;
        }
        h.check();
    }
});
