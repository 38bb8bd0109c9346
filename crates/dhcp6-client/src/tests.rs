//! Engine tests with hand-built server messages and a virtual clock.

use super::*;
use dhcproto::v6::StatusCode;
use proptest::prelude::*;

fn seeded(seed: u64) -> impl FnMut(&mut [u8]) + Send + 'static {
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

const MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x10];
const SRV_A: &[u8] = &[0, 3, 0, 1, 0xaa, 0, 0, 0, 0, 1];
const SRV_B: &[u8] = &[0, 3, 0, 1, 0xbb, 0, 0, 0, 0, 2];
const ADDR: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0, 0, 0, 0x100);
const DNS: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0, 0, 0, 0x53);

fn duid() -> Vec<u8> {
    Duid::from_mac(MAC).into_bytes()
}

fn config(rapid: bool) -> ClientConfig {
    ClientConfig {
        duid: duid(),
        iaid: 7,
        rapid_commit: rapid,
        fqdn: Some("mn1.example.com.".into()),
        oro: vec![24],
        hint: None,
    }
}

fn client(rapid: bool) -> Client {
    Client::new(config(rapid), seeded(42)).unwrap()
}

fn decode(b: &[u8]) -> Message {
    Message::decode(&mut Decoder::new(b)).unwrap()
}

fn sent(c: &mut Client) -> Message {
    let b = c.poll_transmit().expect("a transmit");
    assert!(c.poll_transmit().is_none(), "exactly one transmit");
    decode(&b)
}

#[derive(Clone)]
struct Srv {
    ty: MessageType,
    xid: u32,
    client_id: Option<Vec<u8>>,
    server_id: Option<Vec<u8>>,
    preference: Option<u8>,
    rapid: bool,
    ia: Option<(u32, u32, u32, u32, u32)>, // iaid, t1, t2, preferred, valid
    ia_status: Option<Status>,
    status: Option<Status>,
    /// Raw option 39 data (flags octet + wire name) to include.
    fqdn: Option<Vec<u8>>,
}

impl Srv {
    fn new(ty: MessageType, xid: u32, server: &[u8]) -> Self {
        Self {
            ty,
            xid,
            client_id: Some(duid()),
            server_id: Some(server.to_vec()),
            preference: None,
            rapid: false,
            ia: Some((7, 100, 160, 150, 200)),
            ia_status: None,
            status: None,
            fqdn: None,
        }
    }
    fn bytes(&self) -> Vec<u8> {
        let [_, a, b, c] = self.xid.to_be_bytes();
        let mut m = Message::new_with_id(self.ty, [a, b, c]);
        let o = m.opts_mut();
        if let Some(id) = &self.client_id {
            o.insert(DhcpOption::ClientId(id.clone()));
        }
        if let Some(id) = &self.server_id {
            o.insert(DhcpOption::ServerId(id.clone()));
        }
        if let Some(p) = self.preference {
            o.insert(DhcpOption::Preference(p));
        }
        if self.rapid {
            o.insert(DhcpOption::RapidCommit);
        }
        if let Some(s) = self.status {
            o.insert(DhcpOption::StatusCode(StatusCode {
                status: s,
                msg: "top".into(),
            }));
        }
        o.insert(DhcpOption::DomainNameServers(vec![DNS]));
        if let Some(f) = &self.fqdn {
            o.insert(DhcpOption::Unknown(UnknownOption::new(
                OptionCode::ClientFqdn,
                f.clone(),
            )));
        }
        if let Some((id, t1, t2, pref, valid)) = self.ia {
            let mut ia = IANA {
                id,
                t1,
                t2,
                opts: Default::default(),
            };
            if let Some(s) = self.ia_status {
                ia.opts.insert(DhcpOption::StatusCode(StatusCode {
                    status: s,
                    msg: "no".into(),
                }));
            } else {
                ia.opts.insert(DhcpOption::IAAddr(IAAddr {
                    addr: ADDR,
                    preferred_life: pref,
                    valid_life: valid,
                    opts: Default::default(),
                }));
            }
            o.insert(DhcpOption::IANA(ia));
        }
        m.to_vec().unwrap()
    }
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// Drives a client to Bound (Solicit → Advertise → first RT → Request → Reply) and
/// returns the time of binding.
fn bound(c: &mut Client, t0: Instant) -> Instant {
    c.start(t0);
    let sol = sent(c);
    c.handle_message(
        t0 + secs(0.1),
        &Srv::new(MessageType::Advertise, sol.xid_num(), SRV_A).bytes(),
    )
    .unwrap();
    let t = c.poll_timeout().unwrap();
    c.handle_timeout(t);
    let req = sent(c);
    assert_eq!(req.msg_type(), MessageType::Request);
    c.handle_message(
        t,
        &Srv::new(MessageType::Reply, req.xid_num(), SRV_A).bytes(),
    )
    .unwrap();
    assert!(matches!(c.poll_event(), Some(Event::Bound { .. })));
    assert_eq!(c.state().name(), "BOUND");
    t
}

#[test]
fn backoff_bounds_and_caps() {
    for seed in 1..200u64 {
        let mut rng = seeded(seed);
        let t0 = Instant::now();
        let mut r = Retransmit::new(t0, SOL_TIMEOUT, Some(SOL_MAX_RT), None, true, &mut rng);
        // §18.2.1: first Solicit RT strictly greater than IRT, at most 1.1·IRT.
        assert!(r.rt() > SOL_TIMEOUT && r.rt() <= secs(1.1), "{:?}", r.rt());
        for _ in 0..40 {
            let prev = r.rt();
            let now = r.next;
            assert!(r.advance(now, &mut rng));
            let rt = r.rt().as_secs_f64();
            if rt < 0.9 * 3600.0 {
                let p = prev.as_secs_f64();
                assert!(rt >= 1.9 * p - 1e-9 && rt <= 2.1 * p + 1e-9, "{rt} vs {p}");
            }
            assert!(rt <= 1.1 * 3600.0 + 1e-9, "MRT cap: {rt}");
        }
        assert!(r.rt() >= secs(0.9 * 3600.0), "reaches MRT");
        // Ordinary exchanges: RAND in [-0.1, 0.1].
        let r = Retransmit::new(
            t0,
            REQ_TIMEOUT,
            Some(REQ_MAX_RT),
            Some(REQ_MAX_RC),
            false,
            &mut rng,
        );
        assert!(r.rt() >= secs(0.9) && r.rt() <= secs(1.1));
    }
}

#[test]
fn backoff_mrc_and_elapsed_cap() {
    let mut rng = seeded(3);
    let t0 = Instant::now();
    let mut r = Retransmit::new(t0, REL_TIMEOUT, None, Some(REL_MAX_RC), false, &mut rng);
    let mut n = 1;
    while r.advance(r.next, &mut rng) {
        n += 1;
    }
    assert_eq!(n, REL_MAX_RC);
    assert_eq!(r.elapsed_cs(t0 + secs(1.234)), 123);
    assert_eq!(r.elapsed_cs(t0 + secs(655.35)), 0xffff);
    assert_eq!(r.elapsed_cs(t0 + secs(10_000.0)), 0xffff);
}

#[test]
fn deterministic_with_seeded_rng() {
    let t0 = Instant::now();
    let mut a = client(false);
    let mut b = client(false);
    a.start(t0);
    b.start(t0);
    assert_eq!(a.poll_transmit(), b.poll_transmit());
    assert_eq!(a.poll_timeout(), b.poll_timeout());
}

#[test]
fn solicit_contents_and_retransmission() {
    let t0 = Instant::now();
    let mut c = client(false);
    assert_eq!(c.state().to_string(), "IDLE");
    assert_eq!(c.poll_timeout(), None);
    c.start(t0);
    assert_eq!(c.state().to_string(), "SOLICITING");
    let m = sent(&mut c);
    assert_eq!(m.msg_type(), MessageType::Solicit);
    let o = m.opts();
    assert_eq!(
        o.get(OptionCode::ClientId),
        Some(&DhcpOption::ClientId(duid()))
    );
    assert_eq!(
        o.get(OptionCode::ElapsedTime),
        Some(&DhcpOption::ElapsedTime(0))
    );
    assert!(o.get(OptionCode::RapidCommit).is_none());
    assert!(o.get(OptionCode::ServerId).is_none());
    match o.get(OptionCode::ORO) {
        Some(DhcpOption::ORO(oro)) => {
            assert!(oro.opts.contains(&OptionCode::DomainNameServers));
            assert!(oro.opts.contains(&OptionCode::DomainSearchList));
            // RFC 4704 §5: option 39 is requested when it is sent.
            assert!(oro.opts.contains(&OptionCode::ClientFqdn));
        }
        other => panic!("ORO: {other:?}"),
    }
    match o.get(OptionCode::IANA) {
        Some(DhcpOption::IANA(ia)) => assert_eq!(ia.id, 7),
        other => panic!("IA_NA: {other:?}"),
    }
    match o.get(OptionCode::ClientFqdn) {
        Some(DhcpOption::Unknown(u)) => {
            assert_eq!(u.data(), b"\x01\x03mn1\x07example\x03com\x00");
        }
        other => panic!("FQDN: {other:?}"),
    }
    let t1 = c.poll_timeout().unwrap();
    assert!(t1 > t0 + SOL_TIMEOUT && t1 <= t0 + secs(1.1));
    c.handle_timeout(t1 - secs(0.01));
    assert!(c.poll_transmit().is_none(), "not yet due");
    c.handle_timeout(t1);
    let m2 = sent(&mut c);
    assert_eq!(m2.xid(), m.xid(), "retransmission keeps the xid");
    let cs = u16::try_from((t1 - t0).as_millis() / 10).unwrap();
    assert_eq!(
        m2.opts().get(OptionCode::ElapsedTime),
        Some(&DhcpOption::ElapsedTime(cs))
    );
    let t2 = c.poll_timeout().unwrap();
    let (rt1, rt2) = ((t1 - t0).as_secs_f64(), (t2 - t1).as_secs_f64());
    assert!(rt2 >= 1.9 * rt1 && rt2 <= 2.1 * rt1);
}

#[test]
fn advertise_choice_by_preference_after_first_rt() {
    let t0 = Instant::now();
    let mut c = client(false);
    c.start(t0);
    let xid = sent(&mut c).xid_num();
    let mut a = Srv::new(MessageType::Advertise, xid, SRV_A);
    a.preference = Some(10);
    let mut b = Srv::new(MessageType::Advertise, xid, SRV_B);
    b.preference = Some(50);
    let mut a2 = a.clone();
    a2.preference = Some(20);
    c.handle_message(t0 + secs(0.1), &a.bytes()).unwrap();
    c.handle_message(t0 + secs(0.2), &b.bytes()).unwrap();
    c.handle_message(t0 + secs(0.3), &a2.bytes()).unwrap();
    assert!(c.poll_transmit().is_none(), "collects until the first RT");
    c.handle_timeout(c.poll_timeout().unwrap());
    let req = sent(&mut c);
    assert_eq!(req.msg_type(), MessageType::Request);
    assert_ne!(req.xid_num(), xid, "new transaction");
    assert_eq!(
        req.opts().get(OptionCode::ServerId),
        Some(&DhcpOption::ServerId(SRV_B.to_vec()))
    );
    assert_eq!(
        req.opts().get(OptionCode::ElapsedTime),
        Some(&DhcpOption::ElapsedTime(0))
    );
    assert!(req.opts().get(OptionCode::ClientFqdn).is_some());
    assert_eq!(c.state().to_string(), "REQUESTING");
}

#[test]
fn advertise_preference_255_is_immediate_and_late_advertise_wins() {
    let t0 = Instant::now();
    let mut c = client(false);
    c.start(t0);
    let xid = sent(&mut c).xid_num();
    let mut a = Srv::new(MessageType::Advertise, xid, SRV_A);
    a.preference = Some(255);
    c.handle_message(t0 + secs(0.1), &a.bytes()).unwrap();
    assert_eq!(sent(&mut c).msg_type(), MessageType::Request);

    // After the first RT passed with nothing, the first Advertise is taken at once.
    let mut c = client(false);
    c.start(t0);
    let _ = sent(&mut c);
    let t1 = c.poll_timeout().unwrap();
    c.handle_timeout(t1);
    let xid = sent(&mut c).xid_num();
    c.handle_message(
        t1 + secs(0.5),
        &Srv::new(MessageType::Advertise, xid, SRV_B).bytes(),
    )
    .unwrap();
    assert_eq!(sent(&mut c).msg_type(), MessageType::Request);
}

#[test]
fn request_reply_binds() {
    let t0 = Instant::now();
    let mut c = client(false);
    c.start(t0);
    let xid = sent(&mut c).xid_num();
    c.handle_message(t0, &Srv::new(MessageType::Advertise, xid, SRV_A).bytes())
        .unwrap();
    c.handle_timeout(c.poll_timeout().unwrap());
    let req = sent(&mut c);
    // An Advertise in Requesting, and a Reply from another server, are dropped.
    assert_eq!(
        c.handle_message(
            t0,
            &Srv::new(MessageType::Advertise, req.xid_num(), SRV_A).bytes()
        ),
        Err(DropReason::UnexpectedType(2))
    );
    assert_eq!(
        c.handle_message(
            t0,
            &Srv::new(MessageType::Reply, req.xid_num(), SRV_B).bytes()
        ),
        Err(DropReason::ServerIdMismatch)
    );
    c.handle_message(
        t0 + secs(2.0),
        &Srv::new(MessageType::Reply, req.xid_num(), SRV_A).bytes(),
    )
    .unwrap();
    assert_eq!(
        c.poll_event(),
        Some(Event::Bound {
            address: ADDR,
            preferred: secs(150.0),
            valid: secs(200.0),
            t1: secs(100.0),
            t2: secs(160.0),
            dns_servers: vec![DNS],
            server_id: SRV_A.to_vec(),
            fqdn: None,
        })
    );
    assert_eq!(c.state().to_string(), "BOUND");
    assert_eq!(c.poll_timeout(), Some(t0 + secs(2.0) + secs(100.0)));
}

const HINT: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0, 0, 0, 0x1234);

/// The IA_NA of a sent message and the IAADDR options in it.
fn ia_na(m: &Message) -> (IANA, Vec<IAAddr>) {
    let Some(DhcpOption::IANA(ia)) = m.opts().get(OptionCode::IANA) else {
        panic!("no IA_NA in {:?}", m.msg_type());
    };
    let addrs = ia
        .opts
        .get_all(OptionCode::IAAddr)
        .unwrap_or(&[])
        .iter()
        .map(|o| match o {
            DhcpOption::IAAddr(a) => a.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    (ia.clone(), addrs)
}

/// Asserts that `m` lists exactly `addr` in its IA_NA, with T1/T2 and both lifetimes 0.
fn assert_lists_only(m: &Message, addr: Ipv6Addr) {
    let (ia, addrs) = ia_na(m);
    assert_eq!((ia.id, ia.t1, ia.t2), (7, 0, 0), "{:?}", m.msg_type());
    assert_eq!(addrs.len(), 1, "{:?}: {addrs:?}", m.msg_type());
    assert_eq!(addrs[0].addr, addr, "{:?}", m.msg_type());
    assert_eq!(
        (addrs[0].preferred_life, addrs[0].valid_life),
        (0, 0),
        "{:?}",
        m.msg_type()
    );
}

#[test]
fn hint_is_sent_in_solicit_and_request_and_the_lease_afterwards() {
    let t0 = Instant::now();
    let mut cfg = config(false);
    cfg.hint = Some(HINT);
    let mut c = Client::new(cfg, seeded(42)).unwrap();
    c.start(t0);
    let sol = sent(&mut c);
    assert_eq!(sol.msg_type(), MessageType::Solicit);
    assert_lists_only(&sol, HINT);
    // The retransmitted Solicit keeps it.
    c.handle_timeout(c.poll_timeout().unwrap());
    let sol2 = sent(&mut c);
    assert_lists_only(&sol2, HINT);
    c.handle_message(
        t0 + secs(1.5),
        &Srv::new(MessageType::Advertise, sol2.xid_num(), SRV_A).bytes(),
    )
    .unwrap();
    let req = sent(&mut c);
    assert_eq!(req.msg_type(), MessageType::Request);
    // The server ignored the hint and offered ADDR: the Request asks for what was offered
    // (RFC 8415 §18.2.2; Kea allocates afresh otherwise), and the lease is listed afterwards.
    assert_lists_only(&req, ADDR);
    c.handle_message(
        t0 + secs(2.0),
        &Srv::new(MessageType::Reply, req.xid_num(), SRV_A).bytes(),
    )
    .unwrap();
    assert!(matches!(
        c.poll_event(),
        Some(Event::Bound { address: ADDR, .. })
    ));
    let tb = t0 + secs(2.0);
    c.handle_timeout(tb + secs(100.0));
    let ren = sent(&mut c);
    assert_eq!(ren.msg_type(), MessageType::Renew);
    assert_lists_only(&ren, ADDR);
    c.handle_timeout(tb + secs(160.0));
    let reb = sent(&mut c);
    assert_eq!(reb.msg_type(), MessageType::Rebind);
    assert_lists_only(&reb, ADDR);
    c.release(tb + secs(161.0)).unwrap();
    let rel = sent(&mut c);
    assert_eq!(rel.msg_type(), MessageType::Release);
    assert_lists_only(&rel, ADDR);

    // Decline lists the leased address too.
    let mut cfg = config(true);
    cfg.hint = Some(HINT);
    let mut c = Client::new(cfg, seeded(7)).unwrap();
    c.start(t0);
    let sol = sent(&mut c);
    assert_lists_only(&sol, HINT);
    let mut r = Srv::new(MessageType::Reply, sol.xid_num(), SRV_A);
    r.rapid = true;
    c.handle_message(t0, &r.bytes()).unwrap();
    c.decline(t0).unwrap();
    let dec = sent(&mut c);
    assert_eq!(dec.msg_type(), MessageType::Decline);
    assert_lists_only(&dec, ADDR);
}

/// Without a hint the Solicit's IA_NA is empty; the Request names the offered address.
#[test]
fn no_hint_leaves_solicit_empty_and_the_request_asks_for_the_offer() {
    let t0 = Instant::now();
    let mut c = client(false);
    c.start(t0);
    let sol = sent(&mut c);
    let (ia, addrs) = ia_na(&sol);
    assert_eq!((ia.id, ia.t1, ia.t2), (7, 0, 0));
    assert!(addrs.is_empty(), "{addrs:?}");
    c.handle_message(
        t0,
        &Srv::new(MessageType::Advertise, sol.xid_num(), SRV_A).bytes(),
    )
    .unwrap();
    c.handle_timeout(c.poll_timeout().unwrap());
    let req = sent(&mut c);
    assert_eq!(req.msg_type(), MessageType::Request);
    assert_lists_only(&req, ADDR);
}

#[test]
fn rapid_commit() {
    let t0 = Instant::now();
    let mut c = client(true);
    c.start(t0);
    let sol = sent(&mut c);
    assert_eq!(
        sol.opts().get(OptionCode::RapidCommit),
        Some(&DhcpOption::RapidCommit)
    );
    // A Reply without Rapid Commit is not accepted in Soliciting.
    let mut r = Srv::new(MessageType::Reply, sol.xid_num(), SRV_A);
    assert_eq!(
        c.handle_message(t0, &r.bytes()),
        Err(DropReason::NoRapidCommit)
    );
    r.rapid = true;
    c.handle_message(t0, &r.bytes()).unwrap();
    assert!(matches!(
        c.poll_event(),
        Some(Event::Bound { address: ADDR, .. })
    ));
    assert!(c.poll_transmit().is_none());

    // Not configured: a Rapid Commit Reply is dropped.
    let mut c = client(false);
    c.start(t0);
    let sol = sent(&mut c);
    let mut r = Srv::new(MessageType::Reply, sol.xid_num(), SRV_A);
    r.rapid = true;
    assert_eq!(
        c.handle_message(t0, &r.bytes()),
        Err(DropReason::NoRapidCommit)
    );
    assert_eq!(c.state().to_string(), "SOLICITING");
}

#[test]
fn xid_and_client_id_mismatch_dropped() {
    let t0 = Instant::now();
    let mut c = client(true);
    c.start(t0);
    let xid = sent(&mut c).xid_num();
    let mut r = Srv::new(MessageType::Reply, xid ^ 1, SRV_A);
    r.rapid = true;
    assert!(matches!(
        c.handle_message(t0, &r.bytes()),
        Err(DropReason::XidMismatch { .. })
    ));
    r.xid = xid;
    r.client_id = None;
    assert_eq!(
        c.handle_message(t0, &r.bytes()),
        Err(DropReason::MissingClientId)
    );
    r.client_id = Some(Duid::from_mac([9; 6]).into_bytes());
    assert_eq!(
        c.handle_message(t0, &r.bytes()),
        Err(DropReason::ClientIdMismatch)
    );
    r.client_id = Some(duid());
    r.server_id = None;
    assert_eq!(
        c.handle_message(t0, &r.bytes()),
        Err(DropReason::MissingServerId)
    );
    r.server_id = Some(SRV_A.to_vec());
    r.ia = Some((8, 1, 2, 3, 4));
    assert!(matches!(
        c.handle_message(t0, &r.bytes()),
        Err(DropReason::NoUsableIa(_))
    ));
    // Relay messages and client message types are refused by type.
    assert_eq!(
        c.handle_message(t0, &[12; 40]),
        Err(DropReason::UnexpectedType(12))
    );
    assert_eq!(
        c.handle_message(t0, &[1, 0, 0, 0]),
        Err(DropReason::UnexpectedType(1))
    );
    assert!(matches!(
        c.handle_message(t0, &[7, 0]),
        Err(DropReason::Malformed(_))
    ));
    assert!(c.poll_event().is_none());
    assert!(c.poll_transmit().is_none());
    assert_eq!(c.state().to_string(), "SOLICITING");
}

#[test]
fn no_addrs_avail_keeps_soliciting() {
    let t0 = Instant::now();
    let mut c = client(false);
    c.start(t0);
    let xid = sent(&mut c).xid_num();
    let mut a = Srv::new(MessageType::Advertise, xid, SRV_A);
    a.ia_status = Some(Status::NoAddrsAvail);
    assert!(matches!(
        c.handle_message(t0, &a.bytes()),
        Err(DropReason::Status { code: 2, .. })
    ));
    assert!(matches!(
        c.poll_event(),
        Some(Event::ServerStatus { code: 2, .. })
    ));
    c.handle_timeout(c.poll_timeout().unwrap());
    assert_eq!(
        sent(&mut c).msg_type(),
        MessageType::Solicit,
        "no offer kept"
    );

    // NoAddrsAvail in the Reply to a Request: back to discovery.
    let xid = c.state().xid().unwrap();
    c.handle_message(t0, &Srv::new(MessageType::Advertise, xid, SRV_A).bytes())
        .unwrap();
    let req = sent(&mut c);
    let mut r = Srv::new(MessageType::Reply, req.xid_num(), SRV_A);
    r.ia_status = Some(Status::NoAddrsAvail);
    assert!(c.handle_message(t0, &r.bytes()).is_err());
    assert!(matches!(
        c.poll_event(),
        Some(Event::ServerStatus { code: 2, .. })
    ));
    assert_eq!(c.state().to_string(), "SOLICITING");
    assert_eq!(sent(&mut c).msg_type(), MessageType::Solicit);
}

#[test]
fn request_gives_up_after_req_max_rc() {
    let t0 = Instant::now();
    let mut c = client(false);
    c.start(t0);
    let xid = sent(&mut c).xid_num();
    let mut a = Srv::new(MessageType::Advertise, xid, SRV_A);
    a.preference = Some(255);
    c.handle_message(t0, &a.bytes()).unwrap();
    let mut n = 0;
    while c.state().name() == "REQUESTING" {
        let m = sent(&mut c);
        assert_eq!(m.msg_type(), MessageType::Request);
        n += 1;
        let t = c.poll_timeout().unwrap();
        c.handle_timeout(t);
    }
    assert_eq!(n, REQ_MAX_RC);
    assert_eq!(c.poll_event(), Some(Event::RequestFailed));
    assert_eq!(sent(&mut c).msg_type(), MessageType::Solicit);
}

#[test]
fn renew_rebind_expire_with_virtual_clock() {
    let t0 = Instant::now();
    let mut c = client(false);
    let tb = bound(&mut c, t0);
    // Nothing happens before T1.
    c.handle_timeout(tb + secs(99.0));
    assert!(c.poll_transmit().is_none());
    assert_eq!(c.poll_timeout(), Some(tb + secs(100.0)));
    c.handle_timeout(tb + secs(100.0));
    assert_eq!(c.state().to_string(), "RENEWING");
    let ren = sent(&mut c);
    assert_eq!(ren.msg_type(), MessageType::Renew);
    assert_eq!(
        ren.opts().get(OptionCode::ServerId),
        Some(&DhcpOption::ServerId(SRV_A.to_vec()))
    );
    match ren.opts().get(OptionCode::IANA) {
        Some(DhcpOption::IANA(ia)) => {
            assert!(
                matches!(ia.opts.get(OptionCode::IAAddr), Some(DhcpOption::IAAddr(a)) if a.addr == ADDR)
            );
        }
        other => panic!("{other:?}"),
    }
    // Renew retransmits from REN_TIMEOUT.
    let t = c.poll_timeout().unwrap();
    assert!(t >= tb + secs(109.0) && t <= tb + secs(111.0));
    c.handle_timeout(t);
    let ren2 = sent(&mut c);
    assert_eq!(ren2.xid(), ren.xid());
    // At T2: Rebind, without Server Identifier.
    let mut now = t;
    while c.state().name() == "RENEWING" {
        now = c.poll_timeout().unwrap();
        c.handle_timeout(now);
        let _ = c.poll_transmit();
    }
    assert_eq!(now, tb + secs(160.0));
    assert_eq!(c.state().to_string(), "REBINDING");
    let reb = c.state().xid().unwrap();
    // (The Rebind was drained in the loop above; check the next retransmission.)
    let t = c.poll_timeout().unwrap();
    c.handle_timeout(t);
    let reb_msg = sent(&mut c);
    assert_eq!(reb_msg.msg_type(), MessageType::Rebind);
    assert_eq!(reb_msg.xid_num(), reb);
    assert!(reb_msg.opts().get(OptionCode::ServerId).is_none());
    // Until the valid lifetime ends.
    while c.state().name() == "REBINDING" {
        now = c.poll_timeout().unwrap();
        c.handle_timeout(now);
        let _ = c.poll_transmit();
    }
    assert_eq!(now, tb + secs(200.0));
    assert_eq!(c.poll_event(), Some(Event::Expired { address: ADDR }));
    assert_eq!(c.state().to_string(), "SOLICITING");
}

#[test]
fn renew_reply_extends_and_rebind_reply_from_other_server() {
    let t0 = Instant::now();
    let mut c = client(false);
    let tb = bound(&mut c, t0);
    c.handle_timeout(tb + secs(100.0));
    let ren = sent(&mut c);
    // Renew only accepts the granting server.
    assert_eq!(
        c.handle_message(
            tb + secs(101.0),
            &Srv::new(MessageType::Reply, ren.xid_num(), SRV_B).bytes()
        ),
        Err(DropReason::ServerIdMismatch)
    );
    c.handle_message(
        tb + secs(101.0),
        &Srv::new(MessageType::Reply, ren.xid_num(), SRV_A).bytes(),
    )
    .unwrap();
    assert!(matches!(c.poll_event(), Some(Event::Bound { .. })));
    assert_eq!(
        c.poll_timeout(),
        Some(tb + secs(201.0)),
        "T1 counts from the new Reply"
    );
    // Rebind: any server.
    c.handle_timeout(tb + secs(101.0 + 160.0));
    let reb = sent(&mut c);
    assert_eq!(reb.msg_type(), MessageType::Rebind);
    c.handle_message(
        tb + secs(262.0),
        &Srv::new(MessageType::Reply, reb.xid_num(), SRV_B).bytes(),
    )
    .unwrap();
    assert!(matches!(c.poll_event(), Some(Event::Bound { server_id, .. }) if server_id == SRV_B));
}

#[test]
fn renew_no_binding_sends_request() {
    let t0 = Instant::now();
    let mut c = client(false);
    let tb = bound(&mut c, t0);
    c.handle_timeout(tb + secs(100.0));
    let ren = sent(&mut c);
    let mut r = Srv::new(MessageType::Reply, ren.xid_num(), SRV_A);
    r.ia_status = Some(Status::NoBinding);
    assert!(c.handle_message(tb + secs(100.5), &r.bytes()).is_err());
    assert_eq!(c.state().to_string(), "REQUESTING");
    assert_eq!(sent(&mut c).msg_type(), MessageType::Request);
}

#[test]
fn zero_t1_t2_derived_from_preferred() {
    let t0 = Instant::now();
    let mut c = client(true);
    c.start(t0);
    let mut r = Srv::new(MessageType::Reply, sent(&mut c).xid_num(), SRV_A);
    r.rapid = true;
    r.ia = Some((7, 0, 0, 1000, 2000));
    c.handle_message(t0, &r.bytes()).unwrap();
    assert!(
        matches!(c.poll_event(), Some(Event::Bound { t1, t2, .. }) if t1 == secs(500.0) && t2 == secs(800.0))
    );
    // T1 > T2 is refused.
    let mut c = client(true);
    c.start(t0);
    let mut r = Srv::new(MessageType::Reply, sent(&mut c).xid_num(), SRV_A);
    r.rapid = true;
    r.ia = Some((7, 900, 800, 1000, 2000));
    assert_eq!(
        c.handle_message(t0, &r.bytes()),
        Err(DropReason::NoUsableIa("T1 > T2"))
    );
}

#[test]
fn release_retransmission_limit() {
    let t0 = Instant::now();
    let mut c = client(false);
    assert!(matches!(c.release(t0), Err(ApiError::NoLease("IDLE"))));
    let tb = bound(&mut c, t0);
    c.release(tb).unwrap();
    let mut n = 0;
    let mut xid = None;
    while c.state().name() == "RELEASING" {
        let m = sent(&mut c);
        assert_eq!(m.msg_type(), MessageType::Release);
        assert_eq!(*xid.get_or_insert(m.xid_num()), m.xid_num());
        assert_eq!(
            m.opts().get(OptionCode::ServerId),
            Some(&DhcpOption::ServerId(SRV_A.to_vec()))
        );
        n += 1;
        c.handle_timeout(c.poll_timeout().unwrap());
    }
    assert_eq!(n, REL_MAX_RC);
    assert_eq!(c.poll_event(), Some(Event::Released));
    assert_eq!(c.state().to_string(), "IDLE");
    assert_eq!(c.poll_timeout(), None);
}

#[test]
fn release_reply_and_decline() {
    let t0 = Instant::now();
    let mut c = client(false);
    let tb = bound(&mut c, t0);
    c.release(tb).unwrap();
    let m = sent(&mut c);
    let mut r = Srv::new(MessageType::Reply, m.xid_num(), SRV_A);
    r.ia = None;
    r.status = Some(Status::Success);
    c.handle_message(tb, &r.bytes()).unwrap();
    assert_eq!(c.poll_event(), Some(Event::Released));
    assert_eq!(c.state().to_string(), "IDLE");

    let mut c = client(false);
    let tb = bound(&mut c, t0);
    c.decline(tb).unwrap();
    let m = sent(&mut c);
    assert_eq!(m.msg_type(), MessageType::Decline);
    let mut r = Srv::new(MessageType::Reply, m.xid_num(), SRV_A);
    r.ia = None;
    c.handle_message(tb, &r.bytes()).unwrap();
    assert_eq!(c.poll_event(), Some(Event::Declined { address: ADDR }));
    assert_eq!(c.state().to_string(), "SOLICITING");
    assert_eq!(sent(&mut c).msg_type(), MessageType::Solicit);
}

#[test]
fn fqdn_encoding_and_config_errors() {
    assert_eq!(fqdn::encode_name("mn1").unwrap(), b"\x03mn1");
    assert_eq!(fqdn::encode_name("a.b.").unwrap(), b"\x01a\x01b\x00");
    assert!(fqdn::encode_name("a..b").is_none());
    assert!(fqdn::encode_name("").is_none());
    assert!(fqdn::encode_name(&"x".repeat(64)).is_none());
    let mut cfg = config(false);
    cfg.fqdn = Some("bad..name".into());
    assert!(matches!(
        Client::new(cfg, seeded(1)),
        Err(ConfigError::Fqdn(_))
    ));
    let mut cfg = config(false);
    cfg.duid = vec![0];
    assert!(matches!(
        Client::new(cfg, seeded(1)),
        Err(ConfigError::Duid(_))
    ));
}

/// The option 39 data of a message, if any.
fn fqdn_data(m: &Message) -> Option<Vec<u8>> {
    m.opts().iter().find_map(|o| match o {
        DhcpOption::Unknown(u) if u16::from(u.code()) == OPTION_CLIENT_FQDN => {
            Some(u.data().to_vec())
        }
        _ => None,
    })
}

fn oro_has_fqdn(m: &Message) -> bool {
    matches!(m.opts().get(OptionCode::ORO), Some(DhcpOption::ORO(oro))
        if oro.opts.iter().any(|c| u16::from(*c) == OPTION_CLIENT_FQDN))
}

/// RFC 4704 §5: option 39 (S=1, the configured name) and 39 in the ORO go in Solicit,
/// Request, Renew and Rebind; Release and Decline carry neither.
#[test]
fn fqdn_option_in_configuring_messages_only() {
    const WIRE: &[u8] = b"\x01\x03mn1\x07example\x03com\x00";
    let t0 = Instant::now();
    let mut c = client(false);
    c.start(t0);
    let sol = sent(&mut c);
    assert_eq!(fqdn_data(&sol).as_deref(), Some(WIRE));
    assert!(oro_has_fqdn(&sol));
    c.handle_message(
        t0,
        &Srv::new(MessageType::Advertise, sol.xid_num(), SRV_A).bytes(),
    )
    .unwrap();
    c.handle_timeout(c.poll_timeout().unwrap());
    let req = sent(&mut c);
    assert_eq!(req.msg_type(), MessageType::Request);
    assert_eq!(fqdn_data(&req).as_deref(), Some(WIRE));
    assert!(oro_has_fqdn(&req));
    c.handle_message(
        t0,
        &Srv::new(MessageType::Reply, req.xid_num(), SRV_A).bytes(),
    )
    .unwrap();
    c.handle_timeout(t0 + secs(100.0));
    let ren = sent(&mut c);
    assert_eq!(ren.msg_type(), MessageType::Renew);
    assert_eq!(fqdn_data(&ren).as_deref(), Some(WIRE));
    assert!(oro_has_fqdn(&ren));
    c.handle_timeout(t0 + secs(160.0));
    let reb = sent(&mut c);
    assert_eq!(reb.msg_type(), MessageType::Rebind);
    assert_eq!(fqdn_data(&reb).as_deref(), Some(WIRE));
    c.release(t0 + secs(161.0)).unwrap();
    let rel = sent(&mut c);
    assert_eq!(rel.msg_type(), MessageType::Release);
    assert_eq!(fqdn_data(&rel), None);
    assert!(rel.opts().get(OptionCode::ORO).is_none());

    let mut c = client(false);
    let tb = bound(&mut c, t0);
    c.decline(tb).unwrap();
    let dec = sent(&mut c);
    assert_eq!(dec.msg_type(), MessageType::Decline);
    assert_eq!(fqdn_data(&dec), None);

    // Without a name: no option 39 and no 39 in the ORO.
    let mut cfg = config(false);
    cfg.fqdn = None;
    let mut c = Client::new(cfg, seeded(5)).unwrap();
    c.start(t0);
    let sol = sent(&mut c);
    assert_eq!(fqdn_data(&sol), None);
    assert!(!oro_has_fqdn(&sol));
}

/// RFC 4704 §6: the server's option 39 in the Reply (here S=1 O=1 and a name of the server's
/// choosing) is reported with the lease, and replaced by the option of each later Reply.
#[test]
fn server_fqdn_answer_is_reported_with_the_lease() {
    let t0 = Instant::now();
    let mut c = client(false);
    c.start(t0);
    let sol = sent(&mut c);
    let mut adv = Srv::new(MessageType::Advertise, sol.xid_num(), SRV_A);
    adv.fqdn = Some(b"\x01\x03mn1\x07example\x03com\x00".to_vec());
    c.handle_message(t0, &adv.bytes()).unwrap();
    c.handle_timeout(c.poll_timeout().unwrap());
    let req = sent(&mut c);
    let mut rep = Srv::new(MessageType::Reply, req.xid_num(), SRV_A);
    rep.fqdn = Some(b"\x03\x03mn7\x07example\x00".to_vec());
    c.handle_message(t0 + secs(1.0), &rep.bytes()).unwrap();
    let expected = ClientFqdn {
        flags: FqdnFlags {
            s: true,
            o: true,
            n: false,
        },
        name: "mn7.example.".into(),
        fully_qualified: true,
    };
    match c.poll_event() {
        Some(Event::Bound { fqdn, address, .. }) => {
            assert_eq!(address, ADDR);
            assert_eq!(fqdn.as_ref(), Some(&expected));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(c.lease_fqdn(), Some(&expected));
    match c.state() {
        State::Bound { lease } => assert_eq!(lease.fqdn(), Some(&expected)),
        other => panic!("{other}"),
    }
    assert_eq!(expected.flags.to_string(), "S=1 O=1 N=0");

    // The Renew's Reply says N=1 (no update): the report follows it.
    c.handle_timeout(t0 + secs(101.0));
    let ren = sent(&mut c);
    let mut rep = Srv::new(MessageType::Reply, ren.xid_num(), SRV_A);
    rep.fqdn = Some(vec![fqdn::FLAG_N, 3, b'm', b'n', b'1']);
    c.handle_message(t0 + secs(102.0), &rep.bytes()).unwrap();
    match c.poll_event() {
        Some(Event::Bound { fqdn: Some(f), .. }) => {
            assert_eq!(
                f.flags,
                FqdnFlags {
                    s: false,
                    o: false,
                    n: true
                }
            );
            assert_eq!((f.name.as_str(), f.fully_qualified), ("mn1", false));
        }
        other => panic!("{other:?}"),
    }
    // A Reply without option 39 clears it.
    c.handle_timeout(t0 + secs(203.0));
    let ren = sent(&mut c);
    c.handle_message(
        t0 + secs(203.5),
        &Srv::new(MessageType::Reply, ren.xid_num(), SRV_A).bytes(),
    )
    .unwrap();
    assert!(matches!(
        c.poll_event(),
        Some(Event::Bound { fqdn: None, .. })
    ));
    assert_eq!(c.lease_fqdn(), None);
}

/// A Reply whose option 39 is hostile (compression pointer, label past the end, no flags) is
/// malformed: dropped with a reason, no panic, the client keeps waiting.
#[test]
fn hostile_server_fqdn_is_malformed_not_a_panic() {
    for body in [&b""[..], b"\x01\xc0\x00", b"\x01\x3f", b"\x01\x01a\x00\x00"] {
        let t0 = Instant::now();
        let mut c = client(true);
        c.start(t0);
        let sol = sent(&mut c);
        let mut r = Srv::new(MessageType::Reply, sol.xid_num(), SRV_A);
        r.rapid = true;
        r.fqdn = Some(body.to_vec());
        assert!(
            matches!(
                c.handle_message(t0, &r.bytes()),
                Err(DropReason::Malformed(_))
            ),
            "{body:?}"
        );
        assert_eq!(c.state().name(), "SOLICITING");
        assert_eq!(c.poll_event(), None);
    }
}

/// The start of a Reply to the current exchange that passes the xid and Client ID checks.
fn reply_head(c: &Client) -> Vec<u8> {
    let mut data = vec![7u8];
    data.extend_from_slice(&c.state().xid().unwrap().to_be_bytes()[1..]);
    let d = duid();
    data.extend_from_slice(&[0, 1, 0, d.len() as u8]);
    data.extend_from_slice(&d);
    data.extend_from_slice(&[0, 2, 0, SRV_A.len() as u8]);
    data.extend_from_slice(SRV_A);
    data
}

/// Fuzz finding (dhcp6_client): dhcproto reads a Vendor-specific Information option's
/// enterprise number and then slices `len - 4` bytes, so a length under 4 overflowed (a panic
/// with overflow checks on); Status Code (`len - 2`) and Vendor Class alike.
#[test]
fn short_vendor_opts_status_code_and_vendor_class_are_malformed_not_a_panic() {
    for (code, len) in [(17u16, 0u16), (17, 3), (13, 0), (13, 1), (16, 2)] {
        let t0 = Instant::now();
        let mut c = client(true);
        c.start(t0);
        let _ = sent(&mut c);
        let mut data = reply_head(&c);
        data.extend_from_slice(&code.to_be_bytes());
        data.extend_from_slice(&len.to_be_bytes());
        data.extend_from_slice(&[0; 16]);
        assert!(
            matches!(c.handle_message(t0, &data), Err(DropReason::Malformed(_))),
            "option {code} length {len}"
        );
        assert_eq!(c.state().name(), "SOLICITING");
    }
}

/// dhcproto decodes nested IA_NAs recursively without a limit: a 64 KiB Reply of IA_NAs nested
/// 4000 deep overflowed a 2 MiB thread stack even in release builds (process abort). The guard
/// refuses it after a walk of bounded depth, here on a 256 KiB stack.
#[test]
fn ia_na_nested_thousands_deep_is_malformed_on_a_small_stack() {
    let t0 = Instant::now();
    let mut c = client(true);
    c.start(t0);
    let _ = sent(&mut c);
    let mut data = reply_head(&c);
    let room = 65_000 - data.len();
    let depth = room / 16;
    for i in 0..depth {
        let inner = u16::try_from((depth - 1 - i) * 16 + 12).unwrap();
        data.extend_from_slice(&[0, 3]);
        data.extend_from_slice(&inner.to_be_bytes());
        data.extend_from_slice(&7u32.to_be_bytes());
        data.extend_from_slice(&[0; 8]);
    }
    let r = std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || c.handle_message(t0, &data))
        .unwrap()
        .join()
        .unwrap();
    assert!(
        matches!(&r, Err(DropReason::Malformed(m)) if m.contains("nested")),
        "{r:?}"
    );
}

fn client_in_state(which: u8) -> (Client, Instant) {
    let t0 = Instant::now();
    let mut c = client(true);
    match which % 4 {
        0 => c.start(t0),
        1 => {
            bound(&mut c, t0);
        }
        2 => {
            let tb = bound(&mut c, t0);
            c.handle_timeout(tb + secs(100.0));
        }
        _ => {
            let tb = bound(&mut c, t0);
            c.release(tb).unwrap();
        }
    }
    while c.poll_transmit().is_some() {}
    while c.poll_event().is_some() {}
    (c, t0)
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(which in 0u8..4, data in proptest::collection::vec(any::<u8>(), 0..300)) {
        let (mut c, t0) = client_in_state(which);
        let _ = c.handle_message(t0, &data);
        let _ = c.poll_timeout();
    }

    #[test]
    fn arbitrary_options_with_right_header_never_panic(
        which in 0u8..4,
        ty in prop_oneof![Just(2u8), Just(7u8)],
        tail in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        let (mut c, t0) = client_in_state(which);
        let mut data = vec![ty];
        data.extend_from_slice(&c.state().xid().unwrap_or(0).to_be_bytes()[1..]);
        // A valid Client ID first so the fuzz reaches the deeper checks.
        let d = duid();
        data.extend_from_slice(&[0, 1, 0, d.len() as u8]);
        data.extend_from_slice(&d);
        data.extend_from_slice(&tail);
        let _ = c.handle_message(t0, &data);
        c.handle_timeout(t0 + secs(1.0));
    }
}
