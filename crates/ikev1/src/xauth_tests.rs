//! Engine-level XAUTH tests that need the internals (the public API cannot make a peer
//! misbehave): the gate against a peer that skips XAUTH, and an edge request without
//! XAUTH-TYPE as strongSwan sends it. The rest is in `tests/xauth.rs`.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use isakmp::{Attribute, CfgType, ConfigPayload, cfg};
use zeroize::Zeroizing;

use crate::crypto::SeededRng;
use crate::exchange::Kind;
use crate::xauth::{Stage, XauthRequest};
use crate::{
    ChildRequest, Config, Engine, Event, Identity, IkeProposal, IkeSaId, LocalAuth, Mode,
    ModeConfig, PeerAuth, PeerConfig, TrafficSelector, XauthCredentials, XauthResponse, XauthType,
};

const MN: &str = "[2001:db8:ff::2]:500";
const HA: &str = "[2001:db8:ff::1]:500";

fn configs() -> (Config, Config) {
    let psk = || Zeroizing::new(b"secret".to_vec());
    let suite = || vec![IkeProposal::parse("aes128-sha256-modp2048", false).unwrap()];
    let mut mn = Config::new(
        Identity::parse("mn1@example.com"),
        LocalAuth::XauthPsk(XauthCredentials::new("joe", b"pw".to_vec())),
    );
    mn.ike_proposals = suite();
    mn.peers = vec![PeerConfig {
        identity: Identity::parse("ha.example.com"),
        auth: PeerAuth::Psk(psk()),
        addrs: vec![],
    }];
    let mut ha = Config::new(Identity::parse("ha.example.com"), LocalAuth::Psk);
    ha.ike_proposals = suite();
    ha.peers = vec![PeerConfig {
        identity: Identity::parse("mn1@example.com"),
        auth: PeerAuth::XauthPsk {
            psk: psk(),
            xauth: XauthType::Generic,
        },
        addrs: vec![],
    }];
    (mn, ha)
}

struct Link {
    mn: Engine,
    ha: Engine,
    now: Instant,
    wire: VecDeque<(bool, crate::Transmit)>,
    mn_events: Vec<Event>,
    ha_events: Vec<Event>,
}

impl Link {
    fn new() -> Self {
        let (mn, ha) = configs();
        Self {
            mn: Engine::new(mn, Box::new(SeededRng::new(1))),
            ha: Engine::new(ha, Box::new(SeededRng::new(2))),
            now: Instant::now(),
            wire: VecDeque::new(),
            mn_events: Vec::new(),
            ha_events: Vec::new(),
        }
    }

    /// Delivers until quiet (no timers); `keep` decides which datagrams reach their receiver.
    fn pump(&mut self, keep: impl Fn(bool, &[u8]) -> bool) {
        for _ in 0..1000 {
            while let Some(t) = self.mn.poll_transmit() {
                self.wire.push_back((true, t));
            }
            while let Some(t) = self.ha.poll_transmit() {
                self.wire.push_back((false, t));
            }
            self.mn_events
                .extend(std::iter::from_fn(|| self.mn.poll_event()));
            self.ha_events
                .extend(std::iter::from_fn(|| self.ha.poll_event()));
            let Some((to_ha, t)) = self.wire.pop_front() else {
                return;
            };
            if !keep(to_ha, &t.data) {
                continue;
            }
            let e = if to_ha { &mut self.ha } else { &mut self.mn };
            e.handle_datagram(self.now, t.remote, t.local, &t.data);
            self.now += Duration::from_millis(1);
        }
        panic!("no end");
    }

    fn ha_sa(&self) -> IkeSaId {
        self.ha.ike_sas()[0]
    }
}

fn is_transaction(data: &[u8]) -> bool {
    isakmp::Header::parse(data).is_ok_and(|h| h.exchange == isakmp::ExchangeType::TRANSACTION)
}

/// A client that pretends XAUTH is over (the gate must not rely on the peer's honesty): its
/// Mode Config request and Quick Mode reach the edge, which drops and counts them, and takes
/// them once the verdict is in. The other way round likewise.
#[test]
fn gate_holds_against_a_peer_that_skips_xauth() {
    let mut l = Link::new();
    let sa =
        l.mn.initiate(l.now, 0, MN.parse().unwrap(), HA.parse().unwrap())
            .unwrap();
    l.pump(|_, _| true);
    // The edge has the credentials and waits for its driver.
    assert!(
        l.ha_events
            .iter()
            .any(|e| matches!(e, Event::XauthCredentials { .. }))
    );
    let ha_sa = l.ha_sa();
    // The client cheats.
    l.mn.sas.get_mut(&sa).unwrap().xauth.as_mut().unwrap().stage = Stage::Succeeded;
    l.mn.request_mode_config(l.now, sa).unwrap();
    let hoa: std::net::IpAddr = "2001:db8:1::1".parse().unwrap();
    l.mn.initiate_child(
        l.now,
        sa,
        ChildRequest {
            mode: Mode::Tunnel,
            local_ts: TrafficSelector::host(hoa),
            remote_ts: TrafficSelector::parse("::/0").unwrap(),
        },
    )
    .unwrap();
    l.pump(|_, _| true);
    assert_eq!(
        l.ha.counters().dropped_xauth_pending,
        2,
        "CFG_REQUEST and QM1"
    );
    assert!(!l.ha_events.iter().any(|e| matches!(
        e,
        Event::AddressRequested { .. } | Event::ChildSaEstablished(_)
    )));
    // The edge cheats the other way: its pushes and Quick Modes are dropped by a client whose
    // XAUTH is not over.
    let mut l2 = Link::new();
    let sa2 = l2
        .mn
        .initiate(l2.now, 0, MN.parse().unwrap(), HA.parse().unwrap())
        .unwrap();
    l2.pump(|_, _| true);
    let ha_sa2 = l2.ha_sa();
    l2.ha
        .sas
        .get_mut(&ha_sa2)
        .unwrap()
        .xauth
        .as_mut()
        .unwrap()
        .stage = Stage::Succeeded;
    l2.ha
        .push_mode_config(l2.now, ha_sa2, &ModeConfig::default())
        .unwrap();
    l2.ha
        .initiate_child(
            l2.now,
            ha_sa2,
            ChildRequest {
                mode: Mode::Transport,
                local_ts: TrafficSelector::parse("2001:db8:ff::1").unwrap(),
                remote_ts: TrafficSelector::parse("2001:db8:ff::2").unwrap(),
            },
        )
        .unwrap();
    l2.pump(|_, _| true);
    assert_eq!(l2.mn.counters().dropped_xauth_pending, 2, "CFG_SET and QM1");
    assert!(!l2.mn_events.iter().any(|e| matches!(
        e,
        Event::ModeConfigReceived { .. } | Event::ChildSaEstablished(_)
    )));
    assert!(l2.mn.sas[&sa2].xauth_blocks());
    // Back to the first pair: the verdict opens the gate; the client's retransmissions now
    // get through.
    l.ha.xauth_verdict(l.now, ha_sa, true).unwrap();
    l.pump(|_, _| true);
    for _ in 0..3 {
        l.now += Duration::from_secs(2);
        l.mn.handle_timeout(l.now);
        l.ha.handle_timeout(l.now);
        l.pump(|_, _| true);
    }
    assert!(
        l.ha_events
            .iter()
            .any(|e| matches!(e, Event::AddressRequested { .. }))
    );
}

/// strongSwan's edge sends no XAUTH-TYPE for Generic (xauth-06 §4.2: then the reply has none
/// either): the client treats it as Generic, and the edge takes the answer.
#[test]
fn request_without_xauth_type_is_generic() {
    let mut l = Link::new();
    l.mn.initiate(l.now, 0, MN.parse().unwrap(), HA.parse().unwrap())
        .unwrap();
    // Phase 1, without the edge's own XAUTH request.
    l.pump(|to_ha, d| to_ha || !is_transaction(d));
    let ha_sa = l.ha_sa();
    let ha = &mut l.ha;
    ha.sas
        .get_mut(&ha_sa)
        .unwrap()
        .exchanges
        .retain(|_, e| !matches!(e.kind, Kind::XauthRequested(_)));
    let mid = ha.random_message_id(ha_sa);
    let p = ConfigPayload {
        cfg_type: CfgType::REQUEST,
        identifier: 77,
        attributes: vec![
            Attribute::variable(cfg::XAUTH_USER_NAME, Vec::new()),
            Attribute::variable(cfg::XAUTH_USER_PASSWORD, Vec::new()),
        ],
    };
    let kind = Kind::XauthRequested(Box::new(XauthRequest {
        identifier: 77,
        xtype: XauthType::Generic,
        challenge: None,
    }));
    ha.send_cfg(l.now, ha_sa, mid, p, Some(kind));
    l.pump(|_, _| true);
    let got = l.ha_events.iter().find_map(|e| match e {
        Event::XauthCredentials { user, response, .. } => Some((user.clone(), response.clone())),
        _ => None,
    });
    let Some((user, XauthResponse::Generic { password })) = got else {
        panic!("no Generic answer: {:?}", l.ha_events)
    };
    assert_eq!(user, "joe");
    assert_eq!(password.as_slice(), b"pw");
    l.ha.xauth_verdict(l.now, ha_sa, true).unwrap();
    l.pump(|_, _| true);
    assert!(
        l.mn_events
            .iter()
            .any(|e| matches!(e, Event::IkeSaEstablished { .. }))
    );
}
