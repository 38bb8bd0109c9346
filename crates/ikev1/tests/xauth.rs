//! XAUTH (draft-ietf-ipsec-isakmp-xauth-06) and hybrid authentication
//! (draft-ietf-ipsec-isakmp-hybrid-auth-05), engine against engine in memory: a mobile node
//! (initiator, XAUTH client) and a home agent (responder, XAUTH edge) on a virtual clock, the
//! same harness as `pair.rs`, with the home agent's driver checking credentials against a
//! small user table in place of RADIUS.

use std::collections::{HashMap, VecDeque};
use std::net::{Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ikev1::crypto::{Certificate, RsaPrivateKey, SeededRng};
use ikev1::{
    ApiError, ChildRequest, Config, Engine, EspProposal, Event, FailReason, Identity, IkeProposal,
    IkeSaId, LocalAuth, Mode, ModeConfig, PeerAuth, PeerConfig, TrafficSelector, XauthCredentials,
    XauthResponse, XauthType,
};
use md5::{Digest, Md5};
use zeroize::Zeroizing;

const MN: &str = "[2001:db8:ff::2]:500";
const MN2: &str = "[2001:db8:ff::3]:500";
const HA: &str = "[2001:db8:ff::1]:500";
const CA_PEM: &str = include_str!("../testdata/ca.pem");
const HA_CERT_PEM: &str = include_str!("../testdata/ha-cert.pem");
const HA_KEY_PEM: &str = include_str!("../testdata/rsa2048-pkcs8.pem");
/// Inside the validity of the test CA and the HA certificate (2026-11-27 to 2046).
const UNIX_NOW: i64 = 1_800_000_000;

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn proposals(c: &mut Config) {
    c.ike_proposals = vec![IkeProposal::parse("aes128-sha256-modp2048", false).unwrap()];
    c.esp_proposals = vec![EspProposal::parse("aes128gcm16", false).unwrap()];
}

/// The mobile node: PSK + XAUTH as `mn_id`, with these XAUTH credentials.
fn mn_psk_xauth(mn_id: &str, user: &str, password: &str) -> Config {
    let mut c = Config::new(
        Identity::parse(mn_id),
        LocalAuth::XauthPsk(XauthCredentials::new(user, password.as_bytes())),
    );
    proposals(&mut c);
    c.peers = vec![PeerConfig {
        identity: Identity::parse("ha.example.com"),
        auth: PeerAuth::Psk(Zeroizing::new(b"secret".to_vec())),
        addrs: vec![],
    }];
    c
}

/// The home agent with PSK peers mn1 and mn2 that must pass XAUTH of type `t`, and mn3 that
/// need not.
fn ha_psk_xauth(t: XauthType) -> Config {
    let mut c = Config::new(Identity::parse("ha.example.com"), LocalAuth::Psk);
    proposals(&mut c);
    let xauth = |id: &str| PeerConfig {
        identity: Identity::parse(id),
        auth: PeerAuth::XauthPsk {
            psk: Zeroizing::new(b"secret".to_vec()),
            xauth: t,
        },
        addrs: vec![],
    };
    c.peers = vec![
        xauth("mn1@example.com"),
        xauth("mn2@example.com"),
        PeerConfig {
            identity: Identity::parse("mn3@example.com"),
            auth: PeerAuth::Psk(Zeroizing::new(b"secret".to_vec())),
            addrs: vec![],
        },
    ];
    c
}

fn ca() -> Arc<Certificate> {
    Arc::new(Certificate::from_pem(CA_PEM).unwrap().remove(0))
}

/// Hybrid: the home agent signs with its certificate; any mobile node, authenticated by XAUTH.
fn ha_hybrid(t: XauthType) -> Config {
    let key = RsaPrivateKey::from_pem(HA_KEY_PEM).unwrap();
    let cert = Certificate::from_pem(HA_CERT_PEM).unwrap().remove(0);
    let mut c = Config::new(
        Identity::parse("ha.example.com"),
        LocalAuth::RsaSig {
            key: Arc::new(key),
            cert: Arc::new(cert),
        },
    );
    proposals(&mut c);
    c.peers = vec![PeerConfig {
        identity: Identity::Any,
        auth: PeerAuth::Hybrid { xauth: t },
        addrs: vec![],
    }];
    c
}

/// Hybrid: the mobile node checks the home agent's certificate against `cas`.
fn mn_hybrid(user: &str, password: &str, cas: Vec<Arc<Certificate>>) -> Config {
    let mut c = Config::new(
        Identity::parse("mn1@example.com"),
        LocalAuth::Hybrid(XauthCredentials::new(user, password.as_bytes())),
    );
    proposals(&mut c);
    c.peers = vec![PeerConfig {
        identity: Identity::parse("ha.example.com"),
        auth: PeerAuth::RsaSig { cas },
        addrs: vec![],
    }];
    c
}

/// One datagram seen on the link.
#[derive(Clone, Debug)]
struct Seen {
    to_ha: bool,
    exchange: isakmp::ExchangeType,
}

struct Pair {
    mn: Engine,
    ha: Engine,
    now: Instant,
    wire: VecDeque<(bool, ikev1::Transmit)>,
    /// Drop everything towards the MN (true) or the HA (false) while set.
    blackhole: Option<bool>,
    seen: Vec<Seen>,
    mn_events: Vec<Event>,
    ha_events: Vec<Event>,
    /// The HA driver's user table; `None`: it never answers.
    users: Option<HashMap<String, Vec<u8>>>,
    /// The XAUTH answers the HA driver saw.
    responses: Vec<(String, XauthResponse)>,
    pool_next: u16,
}

impl Pair {
    fn new(mn: Config, ha: Config, seed: u64) -> Self {
        let now = Instant::now();
        let mut mn = Engine::new(mn, Box::new(SeededRng::new(seed)));
        let mut ha = Engine::new(ha, Box::new(SeededRng::new(seed ^ 0x5a5a)));
        mn.set_wall_clock(now, UNIX_NOW);
        ha.set_wall_clock(now, UNIX_NOW);
        let users = HashMap::from([
            ("joe".to_owned(), b"correct horse".to_vec()),
            ("ann".to_owned(), b"battery staple".to_vec()),
        ]);
        Self {
            mn,
            ha,
            now,
            wire: VecDeque::new(),
            blackhole: None,
            seen: Vec::new(),
            mn_events: Vec::new(),
            ha_events: Vec::new(),
            users: Some(users),
            responses: Vec::new(),
            pool_next: 0x1000,
        }
    }

    /// A new mobile node engine against the same home agent (another session).
    fn new_mn(&mut self, mn: Config, seed: u64) {
        self.mn = Engine::new(mn, Box::new(SeededRng::new(seed)));
        self.mn.set_wall_clock(self.now, UNIX_NOW);
        self.mn_events.clear();
        self.ha_events.clear();
        self.responses.clear();
        self.wire.clear();
    }

    fn collect(&mut self) {
        while let Some(t) = self.mn.poll_transmit() {
            self.put(true, t);
        }
        while let Some(t) = self.ha.poll_transmit() {
            self.put(false, t);
        }
    }

    fn put(&mut self, to_ha: bool, t: ikev1::Transmit) {
        let h = isakmp::Header::parse(&t.data).unwrap();
        self.seen.push(Seen {
            to_ha,
            exchange: h.exchange,
        });
        if self.blackhole == Some(!to_ha) {
            return;
        }
        self.wire.push_back((to_ha, t));
    }

    fn events(&mut self) {
        while let Some(e) = self.ha.poll_event() {
            match &e {
                Event::AddressRequested { sa, request, .. } => {
                    let a = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, self.pool_next);
                    self.pool_next += 1;
                    let m = ModeConfig {
                        address: Some(a),
                        ..ModeConfig::default()
                    };
                    self.ha
                        .answer_address_request(self.now, *sa, *request, Some(m))
                        .unwrap();
                }
                Event::XauthCredentials {
                    sa, user, response, ..
                } => {
                    self.responses.push((user.clone(), response.clone()));
                    if let Some(users) = &self.users {
                        let ok = users
                            .get(user)
                            .is_some_and(|pw| response.matches_password(pw));
                        self.ha.xauth_verdict(self.now, *sa, ok).unwrap();
                    }
                }
                _ => {}
            }
            self.ha_events.push(e);
        }
        while let Some(e) = self.mn.poll_event() {
            self.mn_events.push(e);
        }
    }

    /// Runs until nothing is in flight and no timer is due before `limit` from now.
    fn drive(&mut self, limit: Duration) {
        let end = self.now + limit;
        for _ in 0..100_000 {
            self.collect();
            self.events();
            self.collect();
            if let Some((to_ha, t)) = self.wire.pop_front() {
                if to_ha {
                    self.ha
                        .handle_datagram(self.now, t.remote, t.local, &t.data);
                } else {
                    self.mn
                        .handle_datagram(self.now, t.remote, t.local, &t.data);
                }
                self.now += Duration::from_millis(1);
                continue;
            }
            let next = [self.mn.poll_timeout(), self.ha.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(t) if t <= end => {
                    self.now = self.now.max(t);
                    self.mn.handle_timeout(self.now);
                    self.ha.handle_timeout(self.now);
                }
                _ => {
                    self.events();
                    return;
                }
            }
        }
        panic!("no progress");
    }

    fn start(&mut self, from: &str) -> IkeSaId {
        let sa = self.mn.initiate(self.now, 0, addr(from), addr(HA)).unwrap();
        self.drive(Duration::from_secs(30));
        sa
    }

    fn established(events: &[Event]) -> Option<IkeSaId> {
        events.iter().find_map(|e| match e {
            Event::IkeSaEstablished { sa, .. } => Some(*sa),
            _ => None,
        })
    }

    fn position(events: &[Event], f: impl Fn(&Event) -> bool) -> Option<usize> {
        events.iter().position(f)
    }

    fn xauth_failed(events: &[Event]) -> Option<&FailReason> {
        events.iter().find_map(|e| match e {
            Event::XauthFailed { reason, .. } => Some(reason),
            _ => None,
        })
    }

    fn children(events: &[Event]) -> usize {
        events
            .iter()
            .filter(|e| matches!(e, Event::ChildSaEstablished(_)))
            .count()
    }

    /// Mode Config and the two RFC 3776 SAs on an established SA.
    fn bootstrap(&mut self, sa: IkeSaId) {
        self.mn.request_mode_config(self.now, sa).unwrap();
        self.drive(Duration::from_secs(30));
        let hoa = self
            .mn_events
            .iter()
            .find_map(|e| match e {
                Event::ModeConfigReceived { config, .. } => config.address,
                _ => None,
            })
            .expect("Mode Config address");
        let ha: std::net::IpAddr = "2001:db8:ff::1".parse().unwrap();
        for r in [
            ChildRequest {
                mode: Mode::Transport,
                local_ts: TrafficSelector::host(hoa.into()).with_protocol(135, 0),
                remote_ts: TrafficSelector::host(ha).with_protocol(135, 0),
            },
            ChildRequest {
                mode: Mode::Tunnel,
                local_ts: TrafficSelector::host(hoa.into()),
                remote_ts: TrafficSelector::parse("::/0").unwrap(),
            },
        ] {
            self.mn.initiate_child(self.now, sa, r).unwrap();
        }
        self.drive(Duration::from_secs(30));
        assert_eq!(Self::children(&self.mn_events), 2, "MN child SAs");
        assert_eq!(Self::children(&self.ha_events), 2, "HA child SAs");
    }

    /// Both sides went through XAUTH and are established, in that order.
    fn assert_xauth_then_established(&self, user: &str) -> IkeSaId {
        for (side, events) in [("mn", &self.mn_events), ("ha", &self.ha_events)] {
            let ok = Self::position(
                events,
                |e| matches!(e, Event::XauthSucceeded { user: u, .. } if u == user),
            )
            .unwrap_or_else(|| panic!("{side}: no XauthSucceeded for {user}: {events:?}"));
            let est = Self::position(events, |e| matches!(e, Event::IkeSaEstablished { .. }))
                .unwrap_or_else(|| panic!("{side}: not established"));
            assert!(ok < est, "{side}: established before XAUTH succeeded");
        }
        Self::established(&self.mn_events).unwrap()
    }

    /// Both sides failed and hold nothing; no child SA, nothing established.
    fn assert_failed_and_gone(&self) {
        for (side, events, e) in [
            ("mn", &self.mn_events, &self.mn),
            ("ha", &self.ha_events, &self.ha),
        ] {
            assert!(
                Self::xauth_failed(events).is_some(),
                "{side}: no XauthFailed: {events:?}"
            );
            assert!(
                events
                    .iter()
                    .any(|e| matches!(e, Event::IkeSaFailed { .. })),
                "{side}: no IkeSaFailed"
            );
            assert!(Self::established(events).is_none(), "{side}: established");
            assert_eq!(Self::children(events), 0, "{side}: child SA");
            assert!(e.ike_sas().is_empty(), "{side}: SA left");
        }
    }
}

#[test]
fn psk_xauth_generic_then_mode_config_and_quick_mode() {
    let mut p = Pair::new(
        mn_psk_xauth("mn1@example.com", "joe", "correct horse"),
        ha_psk_xauth(XauthType::Generic),
        1,
    );
    p.start(MN);
    let sa = p.assert_xauth_then_established("joe");
    let [(user, XauthResponse::Generic { password })] = p.responses.as_slice() else {
        panic!("one Generic answer: {:?}", p.responses)
    };
    assert_eq!(user, "joe");
    assert_eq!(password.as_slice(), b"correct horse");
    // Nothing the driver logs shows the password.
    for e in p.ha_events.iter().chain(&p.mn_events) {
        assert!(!format!("{e:?}").contains("correct horse"), "{e:?}");
    }
    let info = p.ha.ike_sa_info(Pair::established(&p.ha_events).unwrap());
    assert_eq!(info.unwrap().xauth_user.as_deref(), Some("joe"));
    assert!(p.mn.ike_sa_info(sa).unwrap().established);
    p.bootstrap(sa);
    for e in [&p.mn, &p.ha] {
        let c = e.counters();
        assert_eq!(c.xauth_succeeded, 1);
        assert_eq!(c.dropped_auth + c.dropped_xauth_pending + c.xauth_failed, 0);
    }
}

#[test]
fn radius_chap_response_verified_independently() {
    let mut challenges = Vec::new();
    for (i, seed) in [2u64, 3].into_iter().enumerate() {
        let mut p = Pair::new(
            mn_psk_xauth("mn1@example.com", "joe", "correct horse"),
            ha_psk_xauth(XauthType::RadiusChap),
            seed,
        );
        p.start(MN);
        let sa = p.assert_xauth_then_established("joe");
        let [(user, resp)] = p.responses.as_slice() else {
            panic!("one answer")
        };
        assert_eq!(user, "joe");
        let XauthResponse::Chap {
            ident,
            challenge,
            response,
        } = resp
        else {
            panic!("a CHAP answer, not the password: {resp:?}")
        };
        assert_eq!(challenge.len(), 16, "a 16-byte challenge");
        // RFC 1994 §4.1 / RFC 2865 §2.2, computed here without the engine.
        let mut h = Md5::new();
        h.update([*ident]);
        h.update(b"correct horse");
        h.update(challenge);
        assert_eq!(h.finalize()[..], response[..]);
        // What goes to RADIUS as CHAP-Password: identifier, then the response.
        let cp = resp.chap_password().unwrap();
        assert_eq!(cp[0], *ident);
        assert_eq!(cp[1..], response[..]);
        challenges.push(challenge.clone());
        if i == 0 {
            p.bootstrap(sa);
        }
    }
    assert_ne!(
        challenges[0], challenges[1],
        "a fresh challenge per attempt"
    );
}

#[test]
fn wrong_password_fails_deletes_and_leaves_no_child_sa() {
    for t in [XauthType::Generic, XauthType::RadiusChap] {
        let mut p = Pair::new(
            mn_psk_xauth("mn1@example.com", "joe", "wrong"),
            ha_psk_xauth(t),
            4,
        );
        let sa = p.start(MN);
        p.assert_failed_and_gone();
        assert!(matches!(
            Pair::xauth_failed(&p.mn_events),
            Some(FailReason::Authentication(_))
        ));
        assert!(matches!(
            Pair::xauth_failed(&p.ha_events),
            Some(FailReason::Authentication(_))
        ));
        // The HA sent XAUTH-STATUS (a Transaction) and then a Delete (an Informational).
        let from_ha: Vec<_> = p
            .seen
            .iter()
            .filter(|s| !s.to_ha)
            .map(|s| s.exchange)
            .collect();
        assert_eq!(
            &from_ha[from_ha.len() - 3..],
            &[
                isakmp::ExchangeType::TRANSACTION,
                isakmp::ExchangeType::TRANSACTION,
                isakmp::ExchangeType::INFORMATIONAL
            ],
            "{t:?}: request, status, Delete"
        );
        assert_eq!(p.ha.counters().xauth_failed, 1);
        assert!(matches!(
            p.mn.request_mode_config(p.now, sa),
            Err(ApiError::NoSuchSa(_))
        ));
    }
}

#[test]
fn nothing_before_xauth_succeeds() {
    let mut p = Pair::new(
        mn_psk_xauth("mn1@example.com", "joe", "correct horse"),
        ha_psk_xauth(XauthType::Generic),
        5,
    );
    p.users = None; // The HA's driver takes its time.
    let sa = p.start(MN);
    assert_eq!(p.responses.len(), 1, "the HA has the credentials");
    assert!(Pair::established(&p.mn_events).is_none());
    assert!(Pair::established(&p.ha_events).is_none());
    let ha_sa = p.ha.ike_sas()[0];
    assert_eq!(p.ha.ike_sa_info(ha_sa).unwrap().state, "XAUTH");
    assert!(!p.mn.ike_sa_info(sa).unwrap().established);
    let req = ChildRequest {
        mode: Mode::Tunnel,
        local_ts: TrafficSelector::parse("2001:db8:1::1").unwrap(),
        remote_ts: TrafficSelector::parse("::/0").unwrap(),
    };
    assert_eq!(
        p.mn.request_mode_config(p.now, sa),
        Err(ApiError::XauthPending(sa))
    );
    assert_eq!(
        p.mn.initiate_child(p.now, sa, req.clone()),
        Err(ApiError::XauthPending(sa))
    );
    assert_eq!(
        p.ha.initiate_child(p.now, ha_sa, req),
        Err(ApiError::XauthPending(ha_sa))
    );
    assert_eq!(
        p.ha.push_mode_config(p.now, ha_sa, &ModeConfig::default()),
        Err(ApiError::XauthPending(ha_sa))
    );
    // A verdict for an SA that awaits none is refused.
    assert_eq!(
        p.mn.xauth_verdict(p.now, sa, true),
        Err(ApiError::NoXauthPending(sa))
    );
    // Now the verdict: everything works.
    p.ha.xauth_verdict(p.now, ha_sa, true).unwrap();
    assert_eq!(
        p.ha.xauth_verdict(p.now, ha_sa, true),
        Err(ApiError::NoXauthPending(ha_sa)),
        "only one verdict"
    );
    p.drive(Duration::from_secs(5));
    p.assert_xauth_then_established("joe");
    p.bootstrap(sa);
}

#[test]
fn hybrid_ha_signs_mn_hashes_then_xauth() {
    for t in [XauthType::RadiusChap, XauthType::Generic] {
        let mut p = Pair::new(
            mn_hybrid("ann", "battery staple", vec![ca()]),
            ha_hybrid(t),
            6,
        );
        p.start(MN);
        let sa = p.assert_xauth_then_established("ann");
        assert_eq!(p.mn.counters().dropped_auth, 0);
        // The HA's identity is the one in its certificate; the MN's is only claimed.
        let remote = p.mn_events.iter().find_map(|e| match e {
            Event::IkeSaEstablished { remote_id, .. } => Some(remote_id.clone()),
            _ => None,
        });
        assert_eq!(remote, Some(Identity::parse("ha.example.com")));
        let claimed = p.ha_events.iter().find_map(|e| match e {
            Event::XauthCredentials { identity, .. } => Some(identity.clone()),
            _ => None,
        });
        assert_eq!(claimed, Some(Identity::parse("mn1@example.com")));
        p.bootstrap(sa);
    }
}

#[test]
fn hybrid_with_an_untrusted_ha_certificate_fails_at_the_mn() {
    let mut p = Pair::new(
        mn_hybrid("ann", "battery staple", Vec::new()),
        ha_hybrid(XauthType::RadiusChap),
        7,
    );
    p.start(MN);
    assert!(p.responses.is_empty(), "no credentials handed out");
    assert!(p.mn_events.iter().any(|e| matches!(
        e,
        Event::IkeSaFailed {
            reason: FailReason::Authentication(_),
            ..
        }
    )));
    assert!(Pair::established(&p.mn_events).is_none());
}

#[test]
fn hybrid_wrong_password_fails() {
    let mut p = Pair::new(
        mn_hybrid("ann", "wrong", vec![ca()]),
        ha_hybrid(XauthType::RadiusChap),
        8,
    );
    p.start(MN);
    p.assert_failed_and_gone();
}

#[test]
fn peers_must_use_the_method_configured_for_them() {
    // mn3 needs no XAUTH at the HA: an XAUTH proposal for it does not authenticate.
    let mut p = Pair::new(
        mn_psk_xauth("mn3@example.com", "joe", "correct horse"),
        ha_psk_xauth(XauthType::Generic),
        9,
    );
    p.start(MN);
    assert!(Pair::established(&p.mn_events).is_none());
    assert!(p.responses.is_empty());
    // mn1 must do XAUTH: plain PSK is refused.
    let mut mn = mn_psk_xauth("mn1@example.com", "joe", "correct horse");
    mn.local_auth = LocalAuth::Psk;
    let mut p = Pair::new(mn, ha_psk_xauth(XauthType::Generic), 10);
    p.start(MN);
    assert!(Pair::established(&p.mn_events).is_none());
    assert!(Pair::established(&p.ha_events).is_none());
}

#[test]
fn failed_attempts_are_bounded_per_identity_and_address() {
    let mut ha = ha_psk_xauth(XauthType::Generic);
    ha.xauth_max_failures = 2;
    ha.xauth_failure_window = Duration::from_secs(600);
    let mut p = Pair::new(mn_psk_xauth("mn1@example.com", "joe", "wrong"), ha, 11);
    for i in 0..2 {
        p.new_mn(mn_psk_xauth("mn1@example.com", "joe", "wrong"), 20 + i);
        p.start(MN);
        p.assert_failed_and_gone();
        assert_eq!(p.responses.len(), 1, "attempt {i} asked");
    }
    // Third time: the HA does not even ask, and deletes the SA; right password or not.
    p.new_mn(mn_psk_xauth("mn1@example.com", "joe", "correct horse"), 30);
    p.start(MN);
    assert!(p.responses.is_empty(), "no XAUTH request");
    assert!(matches!(
        Pair::xauth_failed(&p.ha_events),
        Some(FailReason::Policy(_))
    ));
    p.assert_failed_and_gone();
    assert_eq!(p.ha.counters().xauth_refused_limit, 1);
    // Another identity from the same address: refused too (per address).
    p.new_mn(mn_psk_xauth("mn2@example.com", "ann", "battery staple"), 31);
    p.start(MN);
    assert!(p.responses.is_empty());
    assert_eq!(p.ha.counters().xauth_refused_limit, 2);
    // mn2 from another address is fine; mn1 from there is refused (per identity).
    p.new_mn(mn_psk_xauth("mn2@example.com", "ann", "battery staple"), 32);
    p.start(MN2);
    p.assert_xauth_then_established("ann");
    p.new_mn(mn_psk_xauth("mn1@example.com", "joe", "correct horse"), 33);
    p.start(MN2);
    assert!(p.responses.is_empty());
    assert_eq!(p.ha.counters().xauth_refused_limit, 3);
    // After the window mn1 may try again.
    p.now += Duration::from_secs(601);
    p.new_mn(mn_psk_xauth("mn1@example.com", "joe", "correct horse"), 34);
    p.start(MN);
    p.assert_xauth_then_established("joe");
}

#[test]
fn unanswered_xauth_request_deletes_the_sa() {
    let mut p = Pair::new(
        mn_psk_xauth("mn1@example.com", "joe", "correct horse"),
        ha_psk_xauth(XauthType::Generic),
        12,
    );
    p.mn.initiate(p.now, 0, addr(MN), addr(HA)).unwrap();
    // Up to phase 1 done at the HA; then the MN hears nothing more.
    let in_xauth = |e: &Engine| {
        e.ike_sas()
            .first()
            .and_then(|s| e.ike_sa_info(*s))
            .is_some_and(|i| i.state == "XAUTH")
    };
    while !in_xauth(&p.ha) {
        p.collect();
        let (to_ha, t) = p.wire.pop_front().expect("exchange in progress");
        if to_ha {
            p.ha.handle_datagram(p.now, t.remote, t.local, &t.data);
        } else {
            p.mn.handle_datagram(p.now, t.remote, t.local, &t.data);
        }
    }
    p.blackhole = Some(true);
    p.drive(Duration::from_secs(300));
    assert!(matches!(
        Pair::xauth_failed(&p.ha_events),
        Some(FailReason::Timeout)
    ));
    assert!(p.ha.ike_sas().is_empty(), "the HA gave up");
    // The MN never saw MM6 either: its phase 1 failed on its own.
    assert!(p.mn.ike_sas().is_empty());
    assert!(Pair::established(&p.mn_events).is_none());
}

#[test]
fn xauth_timeout_when_the_driver_never_answers() {
    let mut p = Pair::new(
        mn_psk_xauth("mn1@example.com", "joe", "correct horse"),
        ha_psk_xauth(XauthType::Generic),
        13,
    );
    p.users = None;
    p.start(MN);
    assert_eq!(p.responses.len(), 1);
    p.drive(Duration::from_secs(120));
    assert!(matches!(
        Pair::xauth_failed(&p.ha_events),
        Some(FailReason::Policy(_))
    ));
    // The MN learns from the HA's Delete.
    p.assert_failed_and_gone();
    let why = p.mn_events.iter().find_map(|e| match e {
        Event::IkeSaFailed { reason, .. } => Some(reason.to_string()),
        _ => None,
    });
    assert!(why.unwrap().contains("deleted by peer"));
}

#[test]
fn mn_gives_up_when_the_edge_never_asks() {
    // A home agent that takes the XAUTH method but whose requests never arrive.
    let mut p = Pair::new(
        mn_psk_xauth("mn1@example.com", "joe", "correct horse"),
        ha_psk_xauth(XauthType::Generic),
        14,
    );
    p.mn.initiate(p.now, 0, addr(MN), addr(HA)).unwrap();
    // Deliver the whole of phase 1, then drop every Transaction towards the MN.
    let mut dropped_request = false;
    for _ in 0..1000 {
        p.collect();
        let Some((to_ha, t)) = p.wire.pop_front() else {
            break;
        };
        let h = isakmp::Header::parse(&t.data).unwrap();
        if !to_ha && h.exchange == isakmp::ExchangeType::TRANSACTION {
            dropped_request = true;
            continue;
        }
        if to_ha {
            p.ha.handle_datagram(p.now, t.remote, t.local, &t.data);
        } else {
            p.mn.handle_datagram(p.now, t.remote, t.local, &t.data);
        }
    }
    assert!(dropped_request);
    assert!(Pair::established(&p.mn_events).is_none());
    assert_eq!(p.mn.ike_sa_info(p.mn.ike_sas()[0]).unwrap().state, "XAUTH");
    p.blackhole = Some(true); // nor the retransmissions
    p.drive(Duration::from_secs(120));
    assert!(matches!(
        Pair::xauth_failed(&p.mn_events),
        Some(FailReason::Timeout)
    ));
    assert!(p.mn.ike_sas().is_empty());
    assert!(Pair::established(&p.mn_events).is_none());
}
