//! Engine tests on a virtual clock. Answers are built here independently of the crate's own
//! authenticator code (the `hmac` and `md-5` crates directly).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hmac::{Hmac, KeyInit, Mac};
use md5::{Digest, Md5};

use super::*;
use crate::crypto::recover_password;

const SECRET: &str = "testing123";

fn s1() -> SocketAddr {
    "[2001:db8:1::2]:1812".parse().unwrap()
}

fn s2() -> SocketAddr {
    "[2001:db8:1::3]:1812".parse().unwrap()
}

fn secret() -> SharedSecret {
    SharedSecret::new(SECRET).unwrap()
}

/// A deterministic byte stream: 1, 2, 3, …
fn counter_rng() -> impl FnMut(&mut [u8]) + Send + 'static {
    let mut n = 0u8;
    move |buf: &mut [u8]| {
        for b in buf {
            n = n.wrapping_add(1);
            *b = n;
        }
    }
}

fn config(servers: Vec<SocketAddr>) -> ClientConfig {
    let mut c = ClientConfig::new(servers, secret());
    c.nas_identifier = Some("mip6-ha".into());
    c
}

fn client(servers: Vec<SocketAddr>) -> Client {
    Client::new(config(servers), counter_rng()).unwrap()
}

fn transmit(c: &mut Client, now: Instant) -> (SocketAddr, Vec<u8>) {
    let mut buf = Vec::new();
    let t = c.poll_transmit(now, &mut buf).expect("a datagram");
    assert_eq!(t.size, buf.len());
    (t.destination, buf)
}

fn hmac_md5(data: &[u8]) -> [u8; 16] {
    let mut m = <Hmac<Md5> as KeyInit>::new_from_slice(SECRET.as_bytes()).unwrap();
    m.update(data);
    m.finalize().into_bytes().into()
}

/// Checks the request's Message-Authenticator independently: HMAC-MD5 over the packet with the
/// attribute zeroed.
fn assert_request_ma(request: &[u8]) {
    let p = Packet::new_checked(request).unwrap();
    let a = p
        .attributes()
        .find(|a| a.typ == AttributeType::MESSAGE_AUTHENTICATOR)
        .expect("Message-Authenticator");
    let mut zeroed = request.to_vec();
    zeroed[a.offset + 2..a.offset + 18].fill(0);
    assert_eq!(hmac_md5(&zeroed)[..], *a.value);
}

/// Builds an answer to `request` the way a server does (RFC 3579 §3.2 then RFC 2865 §3).
fn answer(request: &[u8], code: Code, attrs: &[(AttributeType, &[u8])], with_ma: bool) -> Vec<u8> {
    let req = Packet::new_checked(request).unwrap();
    let mut attributes = Vec::new();
    if with_ma {
        attributes.push(AttributeRepr::new(
            AttributeType::MESSAGE_AUTHENTICATOR,
            vec![0; 16],
        ));
    }
    for (t, v) in attrs {
        attributes.push(AttributeRepr::new(*t, v.to_vec()));
    }
    let mut wire = PacketRepr {
        code,
        identifier: req.identifier(),
        authenticator: req.authenticator(),
        attributes,
    }
    .to_vec()
    .unwrap();
    if with_ma {
        let mac = hmac_md5(&wire);
        wire[22..38].copy_from_slice(&mac);
    }
    let mut h = Md5::new();
    h.update(&wire);
    h.update(SECRET.as_bytes());
    let auth: [u8; 16] = h.finalize().into();
    wire[4..20].copy_from_slice(&auth);
    wire
}

fn accept(request: &[u8]) -> Vec<u8> {
    answer(request, Code::ACCESS_ACCEPT, &[], true)
}

fn only_verdict(c: &mut Client) -> Verdict {
    let v = c.poll_event().expect("a verdict");
    assert!(c.poll_event().is_none());
    v
}

#[test]
fn chap_request_carries_chap_password_challenge_and_message_authenticator() {
    let mut c = client(vec![s1()]);
    let h = c
        .start(
            AccessRequest::chap("mnuser", Password::new("mnpass"))
                .with_attribute(AttributeType::CALLING_STATION_ID, "2001:db8:ff::2"),
        )
        .unwrap();
    let now = Instant::now();
    let (dst, wire) = transmit(&mut c, now);
    assert_eq!(dst, s1());
    assert!(c.poll_transmit(now, &mut Vec::new()).is_none());
    let p = Packet::new_checked(&wire[..]).unwrap();
    assert_eq!(p.code(), Code::ACCESS_REQUEST);
    let types: Vec<AttributeType> = p.attributes().map(|a| a.typ).collect();
    assert_eq!(
        types,
        [
            AttributeType::MESSAGE_AUTHENTICATOR,
            AttributeType::USER_NAME,
            AttributeType::CHAP_PASSWORD,
            AttributeType::CHAP_CHALLENGE,
            AttributeType::NAS_IDENTIFIER,
            AttributeType::CALLING_STATION_ID,
        ]
    );
    let chap = p.attribute(AttributeType::CHAP_PASSWORD).unwrap();
    let challenge = p.attribute(AttributeType::CHAP_CHALLENGE).unwrap();
    assert_eq!((chap.len(), challenge.len()), (17, 16));
    let mut m = Md5::new();
    m.update([chap[0]]);
    m.update(b"mnpass");
    m.update(challenge);
    assert_eq!(m.finalize()[..], chap[1..]);
    assert_eq!(p.attribute(AttributeType::USER_PASSWORD), None);
    assert_request_ma(&wire);
    // The Request Authenticator came from the RNG, not zeros.
    assert_ne!(p.authenticator(), [0; 16]);

    c.handle_datagram(now, s1(), &accept(&wire));
    let v = only_verdict(&mut c);
    assert_eq!(v.request, h);
    assert!(matches!(v.outcome, Outcome::Accept(_)));
    assert_eq!(c.outstanding(), 0);
    assert_eq!(c.stats().accepts, 1);
}

#[test]
fn precomputed_chap_response_is_forwarded_unchanged() {
    let mut c = client(vec![s1()]);
    let challenge = b"0123456789abcdef".to_vec();
    let response = crate::chap_response(9, b"never-seen-here", &challenge);
    c.start(AccessRequest::chap_response(
        "mnuser",
        9,
        response,
        challenge.clone(),
    ))
    .unwrap();
    let (_, wire) = transmit(&mut c, Instant::now());
    let p = Packet::new_checked(&wire[..]).unwrap();
    let chap = p.attribute(AttributeType::CHAP_PASSWORD).unwrap();
    assert_eq!(chap[0], 9);
    assert_eq!(chap[1..], response);
    assert_eq!(
        p.attribute(AttributeType::CHAP_CHALLENGE).unwrap(),
        challenge
    );
    assert!(matches!(
        c.start(AccessRequest::chap_response("u", 1, [0; 16], vec![])),
        Err(RequestError::ChapChallenge)
    ));
}

#[test]
fn pap_only_when_configured_and_hidden() {
    let mut c = client(vec![s1()]);
    assert_eq!(
        c.start(AccessRequest::pap("mnuser", Password::new("pw"))),
        Err(RequestError::PapNotAllowed)
    );
    let mut cfg = config(vec![s1()]);
    cfg.allow_pap = true;
    let mut c = Client::new(cfg, counter_rng()).unwrap();
    let long = "a-password-longer-than-one-block-of-16-octets";
    c.start(AccessRequest::pap("mnuser", Password::new(long)))
        .unwrap();
    let (_, wire) = transmit(&mut c, Instant::now());
    let p = Packet::new_checked(&wire[..]).unwrap();
    let hidden = p.attribute(AttributeType::USER_PASSWORD).unwrap();
    assert_eq!(hidden.len(), 48);
    assert!(!wire.windows(8).any(|w| w == &long.as_bytes()[..8]));
    let back = recover_password(&secret(), &p.authenticator(), hidden).unwrap();
    assert_eq!(back.expose(), long.as_bytes());
    assert_eq!(p.attribute(AttributeType::CHAP_PASSWORD), None);
    assert_request_ma(&wire);
    assert_eq!(
        c.start(AccessRequest::pap("u", Password::new(vec![b'x'; 129]))),
        Err(RequestError::PasswordTooLong)
    );
}

#[test]
fn accept_reject_and_challenge_keep_reply_message_class_and_state() {
    let mut c = client(vec![s1()]);
    let now = Instant::now();
    let a = c
        .start(AccessRequest::chap("u", Password::new("p")))
        .unwrap();
    let b = c
        .start(AccessRequest::chap("u", Password::new("p")))
        .unwrap();
    let d = c
        .start(AccessRequest::chap("u", Password::new("p")))
        .unwrap();
    let (_, wa) = transmit(&mut c, now);
    let (_, wb) = transmit(&mut c, now);
    let (_, wd) = transmit(&mut c, now);
    c.handle_datagram(
        now,
        s1(),
        &answer(
            &wb,
            Code::ACCESS_REJECT,
            &[
                (AttributeType::REPLY_MESSAGE, b"access "),
                (AttributeType::REPLY_MESSAGE, b"denied"),
            ],
            true,
        ),
    );
    c.handle_datagram(
        now,
        s1(),
        &answer(
            &wa,
            Code::ACCESS_ACCEPT,
            &[
                (AttributeType::CLASS, b"c1"),
                (AttributeType::REPLY_MESSAGE, b"welcome"),
            ],
            true,
        ),
    );
    c.handle_datagram(
        now,
        s1(),
        &answer(
            &wd,
            Code::ACCESS_CHALLENGE,
            &[
                (AttributeType::STATE, b"st"),
                (AttributeType::REPLY_MESSAGE, b"next token?"),
            ],
            true,
        ),
    );
    let v = c.poll_event().unwrap();
    assert_eq!(v.request, b);
    let Outcome::Reject(r) = v.outcome else {
        panic!("{v:?}")
    };
    assert_eq!(r.reply_message().as_deref(), Some("access denied"));
    assert_eq!(r.server, s1());
    let v = c.poll_event().unwrap();
    assert_eq!(v.request, a);
    let Outcome::Accept(r) = v.outcome else {
        panic!("{v:?}")
    };
    assert_eq!(r.class, [b"c1".to_vec()]);
    assert_eq!(r.reply_messages, ["welcome"]);
    assert!(
        r.attributes
            .iter()
            .all(|a| a.typ != AttributeType::MESSAGE_AUTHENTICATOR)
    );
    let v = c.poll_event().unwrap();
    assert_eq!(v.request, d);
    let Outcome::Challenge(r) = v.outcome else {
        panic!("{v:?}")
    };
    assert_eq!(r.state.as_deref(), Some(&b"st"[..]));
    assert!(c.poll_event().is_none());
    let s = c.stats();
    assert_eq!((s.accepts, s.rejects, s.challenges), (1, 1, 1));
    assert_eq!(c.poll_timeout(), None);
}

#[test]
fn any_tampered_octet_is_dropped_and_the_genuine_answer_still_counts() {
    let mut c = client(vec![s1()]);
    let now = Instant::now();
    c.start(AccessRequest::chap("u", Password::new("p")))
        .unwrap();
    let (_, wire) = transmit(&mut c, now);
    let good = answer(
        &wire,
        Code::ACCESS_ACCEPT,
        &[(AttributeType::REPLY_MESSAGE, b"ok")],
        true,
    );
    for i in 0..good.len() {
        let mut bad = good.clone();
        bad[i] ^= 0x80;
        let before = c.stats().dropped();
        c.handle_datagram(now, s1(), &bad);
        assert_eq!(c.stats().dropped(), before + 1, "octet {i}");
        assert!(c.poll_event().is_none(), "octet {i} gave a verdict");
    }
    // Every truncation too.
    for n in 0..good.len() {
        c.handle_datagram(now, s1(), &good[..n]);
        assert!(c.poll_event().is_none());
    }
    let s = c.stats().clone();
    assert!(s.dropped_bad_authenticator > 0);
    assert!(s.dropped_malformed > 0);
    assert!(s.dropped_unknown > 0, "a flipped Identifier");
    assert_eq!(c.outstanding(), 1);
    c.handle_datagram(now, s1(), &good);
    assert!(matches!(only_verdict(&mut c).outcome, Outcome::Accept(_)));
    // A duplicate of the answer after the verdict: unknown.
    c.handle_datagram(now, s1(), &good);
    assert_eq!(c.stats().dropped_unknown, s.dropped_unknown + 1);
    assert!(c.poll_event().is_none());
}

#[test]
fn message_authenticator_required_unless_configured_off() {
    let now = Instant::now();
    // Missing: dropped by default.
    let mut c = client(vec![s1()]);
    c.start(AccessRequest::chap("u", Password::new("p")))
        .unwrap();
    let (_, wire) = transmit(&mut c, now);
    c.handle_datagram(now, s1(), &answer(&wire, Code::ACCESS_ACCEPT, &[], false));
    assert!(c.poll_event().is_none());
    assert_eq!(c.stats().dropped_missing_message_authenticator, 1);
    // Wrong: a Message-Authenticator computed over the Response Authenticator slot (a server
    // bug) is dropped even though the Response Authenticator is right.
    let mut bad = answer(&wire, Code::ACCESS_ACCEPT, &[], true);
    bad[22] ^= 1;
    let mut h = Md5::new();
    h.update(&bad[..4]);
    h.update(&wire[4..20]);
    h.update(&bad[20..]);
    h.update(SECRET.as_bytes());
    let auth: [u8; 16] = h.finalize().into();
    bad[4..20].copy_from_slice(&auth);
    c.handle_datagram(now, s1(), &bad);
    assert!(c.poll_event().is_none());
    assert_eq!(c.stats().dropped_bad_message_authenticator, 1);

    // Not required: an answer without one is taken, one with a wrong one still is not.
    let mut cfg = config(vec![s1()]);
    cfg.require_message_authenticator = false;
    let mut c = Client::new(cfg, counter_rng()).unwrap();
    c.start(AccessRequest::chap("u", Password::new("p")))
        .unwrap();
    let (_, wire) = transmit(&mut c, now);
    let mut bad = answer(&wire, Code::ACCESS_ACCEPT, &[], true);
    bad[30] ^= 1;
    let mut h = Md5::new();
    h.update(&bad[..4]);
    h.update(&wire[4..20]);
    h.update(&bad[20..]);
    h.update(SECRET.as_bytes());
    let auth: [u8; 16] = h.finalize().into();
    bad[4..20].copy_from_slice(&auth);
    c.handle_datagram(now, s1(), &bad);
    assert_eq!(c.stats().dropped_bad_message_authenticator, 1);
    c.handle_datagram(now, s1(), &answer(&wire, Code::ACCESS_ACCEPT, &[], false));
    assert!(matches!(only_verdict(&mut c).outcome, Outcome::Accept(_)));
}

#[test]
fn wrong_source_wrong_code_and_wrong_secret_are_dropped() {
    let now = Instant::now();
    let mut c = client(vec![s1(), s2()]);
    c.start(AccessRequest::chap("u", Password::new("p")))
        .unwrap();
    let (_, wire) = transmit(&mut c, now);
    let good = accept(&wire);
    // From the other configured server, from another port, from a stranger.
    c.handle_datagram(now, s2(), &good);
    c.handle_datagram(now, "[2001:db8:1::2]:1813".parse().unwrap(), &good);
    c.handle_datagram(now, "192.0.2.1:1812".parse().unwrap(), &good);
    assert_eq!(c.stats().dropped_unknown, 3);
    // An authentic Accounting-Response.
    c.handle_datagram(
        now,
        s1(),
        &answer(&wire, Code::ACCOUNTING_RESPONSE, &[], true),
    );
    assert_eq!(c.stats().dropped_unexpected_code, 1);
    // Signed with another secret.
    let mut forged = good.clone();
    let mut h = Md5::new();
    h.update(&forged[..4]);
    h.update(&wire[4..20]);
    h.update(&forged[20..]);
    h.update(b"other-secret");
    let auth: [u8; 16] = h.finalize().into();
    forged[4..20].copy_from_slice(&auth);
    c.handle_datagram(now, s1(), &forged);
    assert_eq!(c.stats().dropped_bad_authenticator, 1);
    assert!(c.poll_event().is_none());
    // The IPv4-mapped form of an IPv4 server counts as that server.
    let v4: SocketAddr = "192.0.2.7:1812".parse().unwrap();
    let mut c = client(vec![v4]);
    c.start(AccessRequest::chap("u", Password::new("p")))
        .unwrap();
    let (_, wire) = transmit(&mut c, now);
    c.handle_datagram(
        now,
        "[::ffff:192.0.2.7]:1812".parse().unwrap(),
        &accept(&wire),
    );
    assert!(matches!(only_verdict(&mut c).outcome, Outcome::Accept(_)));
}

#[test]
fn retransmission_then_failover_then_timeout_on_a_virtual_clock() {
    let mut c = client(vec![s1(), s2()]);
    let t0 = Instant::now();
    let s = Duration::from_secs;
    let h = c
        .start(AccessRequest::chap("u", Password::new("p")))
        .unwrap();
    assert_eq!(c.poll_timeout(), None, "nothing sent yet");
    let (dst, first) = transmit(&mut c, t0);
    assert_eq!(dst, s1());
    assert_eq!(c.poll_timeout(), Some(t0 + s(3)));

    // Nothing happens before the deadline.
    c.handle_timeout(t0 + s(3) - Duration::from_millis(1));
    assert!(c.poll_transmit(t0, &mut Vec::new()).is_none());

    // Tries 2 and 3 to the first server: identical bytes (same ID, same authenticator).
    for k in 1..=2 {
        c.handle_timeout(t0 + s(3 * k));
        assert_eq!(c.poll_timeout(), None, "queued, not yet sent");
        let (dst, again) = transmit(&mut c, t0 + s(3 * k));
        assert_eq!(dst, s1());
        assert_eq!(again, first);
        assert_eq!(c.poll_timeout(), Some(t0 + s(3 * k + 3)));
    }
    assert!(c.poll_event().is_none());

    // Fail over at 9 s: a new packet for the second server.
    c.handle_timeout(t0 + s(9));
    let (dst, moved) = transmit(&mut c, t0 + s(9));
    assert_eq!(dst, s2());
    let p1 = Packet::new_checked(&first[..]).unwrap();
    let p2 = Packet::new_checked(&moved[..]).unwrap();
    assert_ne!(p1.authenticator(), p2.authenticator());
    assert_eq!(
        p1.attribute(AttributeType::CHAP_PASSWORD),
        p2.attribute(AttributeType::CHAP_PASSWORD)
    );
    assert_request_ma(&moved);
    assert_eq!(c.stats().failovers, 1);

    // A late answer from the first server is no longer taken.
    c.handle_datagram(t0 + s(10), s1(), &accept(&first));
    assert!(c.poll_event().is_none());
    assert_eq!(c.stats().dropped_unknown, 1);

    for k in 1..=2 {
        c.handle_timeout(t0 + s(9 + 3 * k));
        let (dst, again) = transmit(&mut c, t0 + s(9 + 3 * k));
        assert_eq!(dst, s2());
        assert_eq!(again, moved);
    }
    c.handle_timeout(t0 + s(17));
    assert!(c.poll_event().is_none());
    c.handle_timeout(t0 + s(18));
    let v = only_verdict(&mut c);
    assert_eq!(
        v,
        Verdict {
            request: h,
            outcome: Outcome::Timeout
        }
    );
    assert_eq!(c.poll_timeout(), None);
    assert!(c.poll_transmit(t0 + s(18), &mut Vec::new()).is_none());
    let st = c.stats();
    assert_eq!(
        (
            st.transmissions,
            st.retransmissions,
            st.failovers,
            st.timeouts
        ),
        (6, 4, 1, 1)
    );
}

#[test]
fn answer_to_a_retransmission_and_deadline_from_actual_send() {
    let mut cfg = config(vec![s1(), s2()]);
    cfg.timeout = Duration::from_millis(500);
    cfg.tries = 2;
    let mut c = Client::new(cfg, counter_rng()).unwrap();
    let t0 = Instant::now();
    c.start(AccessRequest::chap("u", Password::new("p")))
        .unwrap();
    // The driver polls late: the timer starts at the actual send.
    let t1 = t0 + Duration::from_millis(200);
    let (_, wire) = transmit(&mut c, t1);
    assert_eq!(c.poll_timeout(), Some(t1 + Duration::from_millis(500)));
    c.handle_timeout(t1 + Duration::from_millis(500));
    let (_, again) = transmit(&mut c, t1 + Duration::from_millis(500));
    assert_eq!(again, wire);
    // The first server answers (either transmission: they are the same packet).
    c.handle_datagram(t1 + Duration::from_millis(600), s1(), &accept(&wire));
    assert!(matches!(only_verdict(&mut c).outcome, Outcome::Accept(_)));
    assert_eq!(c.stats().failovers, 0);
}

#[test]
fn identifiers_are_exhausted_at_256_and_reused_last() {
    let mut c = client(vec![s1()]);
    let now = Instant::now();
    let mut handles = Vec::new();
    let mut ids = std::collections::BTreeSet::new();
    let mut wires = Vec::new();
    for _ in 0..256 {
        handles.push(
            c.start(AccessRequest::chap("u", Password::new("p")))
                .unwrap(),
        );
        let (_, w) = transmit(&mut c, now);
        ids.insert(w[1]);
        wires.push(w);
    }
    assert_eq!(ids.len(), 256, "every Identifier once");
    assert_eq!(c.outstanding(), 256);
    assert_eq!(
        c.start(AccessRequest::chap("u", Password::new("p"))),
        Err(RequestError::TooManyOutstanding { limit: 256 })
    );
    // Answer the 10th: its Identifier is the only free one, so the next request gets it.
    c.handle_datagram(now, s1(), &accept(&wires[10]));
    assert_eq!(only_verdict(&mut c).request, handles[10]);
    c.start(AccessRequest::chap("u", Password::new("p")))
        .unwrap();
    let (_, w) = transmit(&mut c, now);
    assert_eq!(w[1], wires[10][1]);
    // The old answer to the 10th does not match the new request (other authenticator).
    c.handle_datagram(now, s1(), &accept(&wires[10]));
    assert!(c.poll_event().is_none());
    assert_eq!(c.stats().dropped_bad_authenticator, 1);
    // Cancelling frees an Identifier too.
    assert!(c.cancel(handles[0]));
    assert!(!c.cancel(handles[0]));
    assert!(
        c.start(AccessRequest::chap("u", Password::new("p")))
            .is_ok()
    );
}

#[test]
fn identifiers_rotate_and_a_lower_bound_applies() {
    let mut cfg = config(vec![s1()]);
    cfg.max_outstanding = 2;
    let mut c = Client::new(cfg, counter_rng()).unwrap();
    let now = Instant::now();
    let mut seen = Vec::new();
    for _ in 0..5 {
        c.start(AccessRequest::chap("u", Password::new("p")))
            .unwrap();
        let (_, w) = transmit(&mut c, now);
        seen.push(w[1]);
        c.handle_datagram(now, s1(), &accept(&w));
        assert!(c.poll_event().is_some());
    }
    // Round-robin: a freed Identifier is not taken again at once (RFC 5080 §2.2.1).
    for pair in seen.windows(2) {
        assert_eq!(pair[1], pair[0].wrapping_add(1));
    }
    c.start(AccessRequest::chap("u", Password::new("p")))
        .unwrap();
    c.start(AccessRequest::chap("u", Password::new("p")))
        .unwrap();
    assert_eq!(
        c.start(AccessRequest::chap("u", Password::new("p"))),
        Err(RequestError::TooManyOutstanding { limit: 2 })
    );
}

#[test]
fn bad_requests_are_refused_without_side_effects() {
    let mut c = client(vec![s1()]);
    assert_eq!(
        c.start(AccessRequest::chap("", Password::new("p"))),
        Err(RequestError::UserName)
    );
    assert_eq!(
        c.start(AccessRequest::chap(vec![b'u'; 254], Password::new("p"))),
        Err(RequestError::UserName)
    );
    assert_eq!(
        c.start(
            AccessRequest::chap("u", Password::new("p"))
                .with_attribute(AttributeType::MESSAGE_AUTHENTICATOR, vec![0; 16])
        ),
        Err(RequestError::ReservedAttribute(
            AttributeType::MESSAGE_AUTHENTICATOR
        ))
    );
    assert!(matches!(
        c.start(
            AccessRequest::chap("u", Password::new("p"))
                .with_attribute(AttributeType::CLASS, vec![0; 254])
        ),
        Err(RequestError::Wire(WireError::ValueLength { .. }))
    ));
    assert_eq!(c.outstanding(), 0);
    assert_eq!(c.stats().requests, 0);
    assert!(c.poll_transmit(Instant::now(), &mut Vec::new()).is_none());
}

#[test]
fn configuration_is_checked() {
    let err = |cfg: ClientConfig| Client::new(cfg, counter_rng()).unwrap_err();
    assert_eq!(err(config(vec![])), ConfigError::NoServers);
    assert_eq!(
        err(config(vec![s1(), s1()])),
        ConfigError::DuplicateServer(s1())
    );
    let mut c = config(vec![s1()]);
    c.nas_identifier = None;
    assert_eq!(err(c.clone()), ConfigError::NoNasIdentification);
    c.nas_ipv6_address = Some("2001:db8:1::1".parse().unwrap());
    let mut client = Client::new(c, counter_rng()).unwrap();
    client
        .start(AccessRequest::chap("u", Password::new("p")))
        .unwrap();
    let (_, w) = transmit(&mut client, Instant::now());
    let p = Packet::new_checked(&w[..]).unwrap();
    assert_eq!(
        p.attribute(AttributeType::NAS_IPV6_ADDRESS).unwrap(),
        "2001:db8:1::1".parse::<Ipv6Addr>().unwrap().octets()
    );
    assert_eq!(p.attribute(AttributeType::NAS_IDENTIFIER), None);
    let mut c = config(vec![s1()]);
    c.tries = 0;
    assert_eq!(err(c), ConfigError::NoTries);
    let mut c = config(vec![s1()]);
    c.timeout = Duration::ZERO;
    assert_eq!(err(c), ConfigError::NoTries);
    for n in [0, 257] {
        let mut c = config(vec![s1()]);
        c.max_outstanding = n;
        assert_eq!(err(c), ConfigError::MaxOutstanding(n));
    }
    let mut c = config(vec![s1()]);
    c.nas_identifier = Some(String::new());
    assert_eq!(err(c), ConfigError::NasIdentifier);
}

#[test]
fn server_addresses_parse_with_default_port() {
    assert_eq!(
        parse_server("2001:db8:1::18").unwrap(),
        "[2001:db8:1::18]:1812".parse().unwrap()
    );
    assert_eq!(
        parse_server("[2001:db8:1::19]:1645").unwrap(),
        "[2001:db8:1::19]:1645".parse().unwrap()
    );
    assert_eq!(parse_server("[2001:db8::1]").unwrap().port(), 1812);
    assert_eq!(
        parse_server("192.0.2.1").unwrap(),
        "192.0.2.1:1812".parse().unwrap()
    );
    assert_eq!(parse_server(" 192.0.2.1:18 ").unwrap().port(), 18);
    assert!(matches!(
        parse_server("radius.example"),
        Err(ConfigError::BadServer(_))
    ));
}

#[test]
fn debug_output_has_no_secret_or_password() {
    let mut c = client(vec![s1()]);
    c.start(AccessRequest::chap("u", Password::new("hunter2")))
        .unwrap();
    let dump = format!("{c:?}");
    assert!(!dump.contains(SECRET), "{dump}");
    let req = AccessRequest::pap("u", Password::new("hunter2"));
    let dump = format!("{req:?}");
    assert!(!dump.contains("hunter2"), "{dump}");
    let req = AccessRequest::chap("u", Password::new("hunter2"));
    assert!(!format!("{req:?}").contains("hunter2"));
    let req = AccessRequest::chap_response("u", 1, [0xab; 16], b"chal".to_vec());
    assert!(!format!("{req:?}").contains("171"), "response octets");
}
