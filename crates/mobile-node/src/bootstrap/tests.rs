//! The bootstrap driven with synthetic engine events, hand-built DHCPv6 server messages and a
//! virtual clock. [`H::step`] answers the actions the way the runtime does (phase 1 and
//! Quick Mode request ids, the address installed) and returns them all, in order.

use std::net::SocketAddr;

use dhcproto::v6::{DhcpOption, IAAddr, IANA, Message, MessageType, OptionCode};
use dhcproto::{Decodable, Decoder, Encodable};
use ikev1::{EspKeys, EspProposal, Identity};
use isakmp::NotifyType;
use zeroize::Zeroizing;

use super::*;

const HA: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xff, 0, 0, 0, 0, 1);
const COA: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xff, 0, 0, 0, 0, 2);
const HOA: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x1000);
const OTHER: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x2000);
/// The home agent's home-link address: where relayed answers come from.
const HA_HOME: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 1);
const SERVER_DUID: &[u8] = &[0, 3, 0, 1, 0xaa, 0, 0, 0, 0, 1];

fn seeded(seed: u64) -> SharedRng {
    let mut s = seed | 1;
    Arc::new(Mutex::new(move |buf: &mut [u8]| {
        for b in buf {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            *b = (s >> 24) as u8;
        }
    }))
}

fn settings(mode: AddressSourceMode) -> Settings {
    Settings {
        mode,
        home_agent: HA,
        home_address: (mode == AddressSourceMode::Static).then_some(HOA),
        dhcpv6_timeout: Duration::from_secs(10),
        duid: Some(Duid::uuid_from_random([5; 16])),
        hint: None,
        home_registration: true,
        home_agent_timeout: Duration::from_secs(5),
        dhcpv6_fqdn: None,
    }
}

fn ms_(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A child SA as the engine reports it for `request`.
fn child_sa(sa: IkeSaId, request: &ChildRequest, spi_in: u32) -> ChildSa {
    let keys = || EspKeys {
        encr: Zeroizing::new(vec![0; 20]),
        integ: Zeroizing::new(Vec::new()),
    };
    ChildSa {
        ike_sa: sa,
        message_id: spi_in,
        mode: request.mode,
        udp_encap: false,
        spi_in,
        spi_out: spi_in ^ 0xffff_0000,
        local_ts: request.local_ts,
        remote_ts: request.remote_ts,
        local: SocketAddr::new(IpAddr::V6(COA), 500),
        remote: SocketAddr::new(IpAddr::V6(HA), 500),
        proposal: EspProposal::parse("aes128gcm16", false).unwrap(),
        keys_in: keys(),
        keys_out: keys(),
        lifetime: Duration::from_secs(3600),
        life_kbytes: None,
        initiator: true,
    }
}

fn decode(b: &[u8]) -> Message {
    Message::decode(&mut Decoder::new(b)).unwrap()
}

/// The server's answer to `msg`: a Reply granting `addr` (with Rapid Commit to a Solicit).
fn reply(msg: &Message, addr: Ipv6Addr, t1: u32, t2: u32, valid: u32) -> Vec<u8> {
    let [_, a, b, c] = msg.xid_num().to_be_bytes();
    let mut r = Message::new_with_id(MessageType::Reply, [a, b, c]);
    let o = r.opts_mut();
    if let Some(id) = msg.opts().get(OptionCode::ClientId) {
        o.insert(id.clone());
    }
    o.insert(DhcpOption::ServerId(SERVER_DUID.to_vec()));
    if msg.msg_type() == MessageType::Solicit {
        o.insert(DhcpOption::RapidCommit);
    }
    if msg.msg_type() != MessageType::Release {
        let mut ia = IANA {
            id: IAID,
            t1,
            t2,
            opts: Default::default(),
        };
        ia.opts.insert(DhcpOption::IAAddr(IAAddr {
            addr,
            preferred_life: valid,
            valid_life: valid,
            opts: Default::default(),
        }));
        o.insert(DhcpOption::IANA(ia));
    }
    r.to_vec().unwrap()
}

/// The addresses listed in the IA_NA of a client message.
fn ia_addrs(m: &Message) -> Vec<Ipv6Addr> {
    let Some(DhcpOption::IANA(ia)) = m.opts().get(OptionCode::IANA) else {
        panic!("no IA_NA");
    };
    assert_eq!(ia.id, IAID);
    ia.opts
        .get_all(OptionCode::IAAddr)
        .unwrap_or(&[])
        .iter()
        .filter_map(|o| match o {
            DhcpOption::IAAddr(a) => Some(a.addr),
            _ => None,
        })
        .collect()
}

/// The harness: the bootstrap, a virtual clock, and the runtime's answers.
struct H {
    bs: Bootstrap,
    t0: Instant,
    now: Instant,
    next_sa: u64,
    next_request: u64,
    next_spi: u32,
    /// Quick Modes asked for: role, request id, selectors.
    asked: Vec<(SaRole, u64, IkeSaId, ChildRequest)>,
    /// What `address_installed` answers.
    install: Result<(), String>,
}

impl H {
    fn new(mode: AddressSourceMode) -> Self {
        Self::with(settings(mode))
    }

    fn with(settings: Settings) -> Self {
        let t0 = Instant::now();
        Self {
            bs: Bootstrap::new(settings, seeded(7)),
            t0,
            now: t0,
            next_sa: 1,
            next_request: 1,
            next_spi: 0xc000_0001,
            asked: Vec::new(),
            install: Ok(()),
        }
    }

    /// Sets the clock to `t0 + ms`.
    fn at(&mut self, ms: u64) -> Instant {
        self.now = self.t0 + ms_(ms);
        self.now
    }

    fn ms_since_t0(&self) -> u64 {
        (self.now - self.t0).as_millis() as u64
    }

    /// Executes the pending actions like the runtime, returns them.
    fn step(&mut self) -> Vec<Action> {
        let mut out = Vec::new();
        while let Some(a) = self.bs.poll_action() {
            match &a {
                Action::InitiatePhase1 => {
                    let sa = IkeSaId(self.next_sa);
                    self.next_sa += 1;
                    self.bs.phase1_initiated(self.now, Ok(sa));
                }
                Action::InitiateChild { sa, role, request } => {
                    let id = self.next_request;
                    self.next_request += 1;
                    self.asked.push((*role, id, *sa, request.clone()));
                    self.bs.child_initiated(self.now, *role, Ok(id));
                }
                Action::InstallAddress { .. } => {
                    self.bs.address_installed(self.now, self.install.clone());
                }
                _ => {}
            }
            out.push(a);
        }
        out
    }

    fn ike(&mut self, ev: Event) -> Vec<Action> {
        self.bs.handle_ike_event(self.now, &ev);
        self.step()
    }

    fn phase1_up(&mut self, sa: IkeSaId) -> Vec<Action> {
        self.ike(Event::IkeSaEstablished {
            sa,
            remote_id: Identity::parse("ha.example.com"),
            local: SocketAddr::new(IpAddr::V6(COA), 500),
            remote: SocketAddr::new(IpAddr::V6(HA), 500),
            proposal: "aes128-sha256-ecp256".into(),
            initiator: true,
            nat: false,
        })
    }

    /// The last request asked for `role`.
    fn asked(&self, role: SaRole) -> (u64, IkeSaId, ChildRequest) {
        let (_, id, sa, req) = self
            .asked
            .iter()
            .rev()
            .find(|(r, ..)| *r == role)
            .unwrap_or_else(|| panic!("no Quick Mode asked for the {role} SA"));
        (*id, *sa, req.clone())
    }

    /// The engine reports the Quick Mode for `role` established; returns our SPI and the
    /// actions.
    fn child_up(&mut self, role: SaRole) -> (u32, Vec<Action>) {
        let (_, sa, req) = self.asked(role);
        let spi = self.next_spi;
        self.next_spi += 1;
        let c = child_sa(sa, &req, spi);
        (spi, self.ike(Event::ChildSaEstablished(Box::new(c))))
    }

    fn child_refused(&mut self, role: SaRole) -> Vec<Action> {
        let (id, sa, _) = self.asked(role);
        self.ike(Event::ChildSaFailed {
            sa,
            request: Some(id),
            reason: FailReason::Notify(NotifyType::INVALID_ID_INFORMATION),
        })
    }

    fn datagram(&mut self, sa: IkeSaId, payload: &[u8]) -> Vec<Action> {
        self.bs
            .handle_datagram(self.now, sa, SocketAddrV6::new(HA_HOME, 547, 0, 0), payload);
        self.step()
    }

    /// Runs the timers: jumps to each deadline up to `t0 + until_ms` and returns the actions.
    fn run_until(&mut self, until_ms: u64) -> Vec<Action> {
        let until = self.t0 + ms_(until_ms);
        let mut out = Vec::new();
        while let Some(t) = self.bs.poll_timeout() {
            if t > until {
                break;
            }
            self.now = t.max(self.now);
            self.bs.handle_timeout(self.now);
            out.extend(self.step());
        }
        self.now = until.max(self.now);
        out
    }

    fn status(&self) -> Status {
        let mut s = Status::new(Some(HA));
        self.bs.report(&mut s);
        s
    }

    /// Starts at t0 and completes phase 1 at t0 + 40 ms; returns the actions of phase 1's
    /// completion.
    fn through_phase1(&mut self) -> Vec<Action> {
        self.bs.start(self.now);
        let a = self.step();
        assert!(matches!(a.as_slice(), [Action::InitiatePhase1]), "{a:?}");
        assert_eq!(self.status().state, State::Phase1);
        assert_eq!(self.status().ike_sa.state, IkeSaState::Connecting);
        self.at(40);
        self.phase1_up(IkeSaId(1))
    }

    /// The DHCPv6 path up to the Solicit; returns it.
    fn until_solicit(&mut self) -> Message {
        let a = self.through_phase1();
        assert!(
            matches!(
                a.as_slice(),
                [Action::InitiateChild {
                    role: SaRole::InitialTunnel,
                    ..
                }]
            ),
            "{a:?}"
        );
        self.at(60);
        let (_, a) = self.child_up(SaRole::InitialTunnel);
        let [Action::SendDhcp { payload, .. }] = a.as_slice() else {
            panic!("a Solicit: {a:?}");
        };
        decode(payload)
    }

    /// The DHCPv6 path to ready, with the lease (T1 100 s, T2 160 s, valid 200 s) at 90 ms,
    /// the RFC 3776 SAs at 100 and 110 ms, the address installed at once.
    fn until_ready_dhcp(&mut self) {
        let sol = self.until_solicit();
        self.at(90);
        self.datagram(IkeSaId(1), &reply(&sol, HOA, 100, 160, 200));
        self.at(100);
        self.child_up(SaRole::Transport);
        self.at(110);
        let (_, a) = self.child_up(SaRole::Tunnel);
        assert!(matches!(a.last(), Some(Action::Ready { .. })), "{a:?}");
    }
}

fn sent_dhcp(a: &[Action]) -> Vec<(IkeSaId, SocketAddrV6, SocketAddrV6, Message)> {
    a.iter()
        .filter_map(|a| match a {
            Action::SendDhcp {
                via,
                src,
                dst,
                payload,
            } => Some((*via, *src, *dst, decode(payload))),
            _ => None,
        })
        .collect()
}

fn failed_reason(a: &[Action]) -> (String, Duration) {
    a.iter()
        .find_map(|a| match a {
            Action::Failed { reason, retry_in } => Some((reason.clone(), *retry_in)),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no Failed action in {a:?}"))
}

#[test]
fn dhcpv6_path_to_ready_with_every_steps_timing() {
    let mut h = H::new(AddressSourceMode::Auto);
    assert_eq!(h.status().state, State::Starting);
    let a = h.through_phase1();
    // Draft §3.2: the initial tunnel, from a random link-local address, DHCPv6 only.
    let [Action::InitiateChild { sa, role, request }] = a.as_slice() else {
        panic!("{a:?}");
    };
    assert_eq!((*sa, *role), (IkeSaId(1), SaRole::InitialTunnel));
    assert_eq!(request.mode, Mode::Tunnel);
    let IpAddr::V6(ll) = request.local_ts.addr else {
        panic!()
    };
    assert!(ll.is_unicast_link_local() && ll != Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0));
    assert_eq!(
        (
            request.local_ts.prefix_len,
            request.local_ts.protocol,
            request.local_ts.port
        ),
        (128, 17, 546)
    );
    assert_eq!(request.remote_ts.to_string(), "::/0[17/547]");
    let s = h.status();
    assert_eq!(s.state, State::InitialTunnel);
    assert_eq!(s.ike_sa.state, IkeSaState::Established);
    assert_eq!(s.timings_ms.phase1, Some(40));

    h.at(60);
    let (initial_spi, a) = h.child_up(SaRole::InitialTunnel);
    let sent = sent_dhcp(&a);
    let [(via, src, dst, sol)] = sent.as_slice() else {
        panic!("{a:?}")
    };
    assert_eq!(*via, IkeSaId(1));
    assert_eq!(*src, SocketAddrV6::new(ll, 546, 0, 0));
    assert_eq!(*dst, "[ff02::1:2]:547".parse().unwrap());
    assert_eq!(sol.msg_type(), MessageType::Solicit);
    assert!(sol.opts().get(OptionCode::RapidCommit).is_some());
    assert!(ia_addrs(sol).is_empty(), "no hint without a lease file");
    assert_eq!(h.status().state, State::Address);
    assert_eq!(h.status().timings_ms.initial_tunnel, Some(20));

    h.at(90);
    let a = h.datagram(IkeSaId(1), &reply(sol, HOA, 100, 160, 200));
    assert!(
        matches!(a[0], Action::PersistLease { address } if address == HOA),
        "{a:?}"
    );
    let roles: Vec<_> = a
        .iter()
        .filter_map(|a| match a {
            Action::InitiateChild { role, .. } => Some(*role),
            _ => None,
        })
        .collect();
    assert_eq!(roles, [SaRole::Transport, SaRole::Tunnel]);
    // RFC 3776 §5.3.1 and §5.3.4 selectors, on the same IKE SA.
    let (_, sa, t) = h.asked(SaRole::Transport);
    assert_eq!(sa, IkeSaId(1));
    assert_eq!(t.mode, Mode::Transport);
    assert_eq!(t.local_ts.to_string(), "2001:db8:1::1000/128[135/0]");
    assert_eq!(t.remote_ts.to_string(), "2001:db8:ff::1/128[135/0]");
    let (_, _, u) = h.asked(SaRole::Tunnel);
    assert_eq!(u.mode, Mode::Tunnel);
    assert_eq!(u.local_ts.to_string(), "2001:db8:1::1000/128");
    assert_eq!(u.remote_ts.to_string(), "::/0");
    let s = h.status();
    assert_eq!(s.state, State::Rfc3776Sas);
    assert_eq!(s.home_address, Some(HOA));
    assert_eq!(s.address_source, Some(AddressSource::Dhcpv6));
    assert_eq!(s.timings_ms.address, Some(30));

    h.at(100);
    let (_, a) = h.child_up(SaRole::Transport);
    assert!(a.is_empty(), "waits for the tunnel-mode SA: {a:?}");
    h.at(110);
    let (_, a) = h.child_up(SaRole::Tunnel);
    // Delete of the initial tunnel, then the address, then ready.
    assert!(
        matches!(a.as_slice(), [
            Action::DeleteChild { sa: IkeSaId(1), spi_in },
            Action::InstallAddress { address },
            Action::Ready { address: ready, source: AddressSource::Dhcpv6, total },
        ] if *spi_in == initial_spi && *address == HOA && *ready == HOA && *total == ms_(110)),
        "{a:?}"
    );
    let s = h.status();
    assert_eq!(s.state, State::Ready);
    assert_eq!(
        s.timings_ms,
        Timings {
            phase1: Some(40),
            initial_tunnel: Some(20),
            address: Some(30),
            rfc3776_sas: Some(20),
            total: Some(110),
        }
    );
    assert_eq!(s.timings_us.phase1, Some(40_000));
    assert_eq!(s.timings_us.total, Some(110_000));
    assert_eq!(s.last_error, None);
    // The initial tunnel is out of the status as soon as its Delete is asked for.
    let modes: Vec<_> = s.child_sas.iter().map(|c| c.mode.as_str()).collect();
    assert_eq!(modes, ["transport", "tunnel"]);
    let a = h.ike(Event::ChildSaDeleted {
        sa: IkeSaId(1),
        spi_in: initial_spi,
        spi_out: 0,
        reason: "deleted locally".into(),
    });
    assert!(a.is_empty(), "{a:?}");
    let s = h.status();
    assert_eq!(
        s.state,
        State::Ready,
        "the initial tunnel going is expected"
    );
    assert_eq!(s.child_sas.len(), 2);
    // Next: Renew at T1.
    assert_eq!(
        h.bs.poll_timeout(),
        Some(h.t0 + ms_(90) + Duration::from_secs(100))
    );
}

#[test]
fn renew_goes_out_through_the_ike_sa_after_t1() {
    let mut h = H::new(AddressSourceMode::Dhcpv6);
    h.until_ready_dhcp();
    let t1 = 90 + 100_000;
    assert!(h.run_until(t1 - 1).is_empty());
    let a = h.run_until(t1);
    let sent = sent_dhcp(&a);
    let [(via, src, dst, renew)] = sent.as_slice() else {
        panic!("{a:?}")
    };
    assert_eq!(renew.msg_type(), MessageType::Renew);
    assert_eq!(*via, IkeSaId(1));
    // From the home address: the tunnel-mode SA home address ↔ any covers it.
    assert_eq!(*src, SocketAddrV6::new(HOA, 546, 0, 0));
    assert_eq!(*dst, "[ff02::1:2]:547".parse().unwrap());
    assert_eq!(ia_addrs(renew), [HOA]);
    h.at(t1 + 20);
    let a = h.datagram(IkeSaId(1), &reply(renew, HOA, 100, 160, 200));
    assert!(a.is_empty(), "{a:?}");
    assert_eq!(h.status().state, State::Ready);
    // The renewed lease counts from its Reply.
    assert_eq!(
        h.bs.poll_timeout(),
        Some(h.t0 + ms_(t1 + 20) + Duration::from_secs(100))
    );
}

#[test]
fn answers_from_elsewhere_are_dropped() {
    let mut h = H::new(AddressSourceMode::Auto);
    let sol = h.until_solicit();
    h.at(90);
    // Another IKE SA, or not from port 547: nothing happens.
    assert!(
        h.datagram(IkeSaId(9), &reply(&sol, HOA, 100, 160, 200))
            .is_empty()
    );
    h.bs.handle_datagram(
        h.now,
        IkeSaId(1),
        SocketAddrV6::new(HA_HOME, 546, 0, 0),
        &reply(&sol, HOA, 100, 160, 200),
    );
    assert!(h.step().is_empty());
    assert!(h.datagram(IkeSaId(1), b"\x07garbage").is_empty());
    assert_eq!(h.status().state, State::Address);
    // The right one still binds.
    let a = h.datagram(IkeSaId(1), &reply(&sol, HOA, 100, 160, 200));
    assert!(matches!(a[0], Action::PersistLease { .. }), "{a:?}");
}

#[test]
fn auto_falls_back_to_mode_config_when_the_initial_tunnel_is_refused() {
    let mut h = H::new(AddressSourceMode::Auto);
    h.through_phase1();
    h.at(55);
    let a = h.child_refused(SaRole::InitialTunnel);
    // Draft §3.1: a fresh phase 1, then Mode Config before any Quick Mode.
    assert!(
        matches!(
            a.as_slice(),
            [
                Action::DeleteIkeSa { sa: IkeSaId(1) },
                Action::InitiatePhase1
            ]
        ),
        "{a:?}"
    );
    assert_eq!(h.status().state, State::Phase1);
    assert_eq!(h.status().last_error, None, "a fallback is not a failure");
    // Events of the old IKE SA no longer matter.
    let a = h.ike(Event::IkeSaDeleted {
        sa: IkeSaId(1),
        reason: "deleted locally".into(),
    });
    assert!(a.is_empty(), "{a:?}");
    h.at(85);
    let a = h.phase1_up(IkeSaId(2));
    assert!(
        matches!(a.as_slice(), [Action::RequestModeConfig { sa: IkeSaId(2) }]),
        "{a:?}"
    );
    assert_eq!(h.status().state, State::Address);
    h.at(95);
    let a = h.ike(Event::ModeConfigReceived {
        sa: IkeSaId(2),
        config: ModeConfig {
            address: Some(HOA),
            ..ModeConfig::default()
        },
    });
    assert_eq!(a.len(), 2, "{a:?}");
    assert_eq!(h.asked(SaRole::Transport).1, IkeSaId(2));
    assert_eq!(h.asked(SaRole::Tunnel).1, IkeSaId(2));
    h.at(100);
    h.child_up(SaRole::Tunnel);
    h.at(105);
    let (_, a) = h.child_up(SaRole::Transport);
    assert!(
        matches!(
            a.as_slice(),
            [
                Action::InstallAddress { .. },
                Action::Ready {
                    source: AddressSource::Modecfg,
                    ..
                }
            ]
        ),
        "no initial tunnel to delete: {a:?}"
    );
    let s = h.status();
    assert_eq!(s.state, State::Ready);
    assert_eq!(s.address_source, Some(AddressSource::Modecfg));
    assert_eq!(
        s.timings_ms,
        Timings {
            phase1: Some(30),
            initial_tunnel: None,
            address: Some(10),
            rfc3776_sas: Some(10),
            total: Some(105),
        }
    );
}

#[test]
fn auto_falls_back_when_no_dhcpv6_answer_comes_within_dhcpv6_timeout() {
    let mut h = H::new(AddressSourceMode::Auto);
    h.until_solicit();
    // The initial tunnel was asked for at 40 ms: the bound runs out at 10.040 s. Until then
    // the client retransmits its Solicit (RFC 8415 §15), through the same IKE SA.
    let a = h.run_until(10_039);
    let solicits = sent_dhcp(&a);
    assert!(solicits.len() >= 3, "{a:?}");
    assert!(
        solicits
            .iter()
            .all(|(via, _, _, m)| *via == IkeSaId(1) && m.msg_type() == MessageType::Solicit)
    );
    assert_eq!(h.status().state, State::Address);
    let a = h.run_until(10_040);
    assert_eq!(h.ms_since_t0(), 10_040);
    assert!(
        matches!(
            a.as_slice(),
            [
                Action::DeleteIkeSa { sa: IkeSaId(1) },
                Action::InitiatePhase1
            ]
        ),
        "{a:?}"
    );
    // The fallback fails too (the home agent's Mode Config gets its address from the same
    // DHCPv6 server): failed, with both reasons, and a retry.
    h.at(10_080);
    h.phase1_up(IkeSaId(2));
    h.at(10_090);
    let a = h.ike(Event::ModeConfigFailed {
        sa: IkeSaId(2),
        reason: FailReason::Notify(NotifyType::ATTRIBUTES_NOT_SUPPORTED),
    });
    let (reason, retry_in) = failed_reason(&a);
    assert!(
        matches!(a.first(), Some(Action::DeleteIkeSa { sa: IkeSaId(2) })),
        "{a:?}"
    );
    assert!(
        reason.starts_with("no DHCPv6 lease within dhcpv6_timeout (10 s)"),
        "{reason}"
    );
    assert!(
        reason.contains("then Mode Config: Mode Config failed"),
        "{reason}"
    );
    assert_eq!(retry_in, Duration::from_secs(5));
    let s = h.status();
    assert_eq!(s.state, State::Failed);
    assert_eq!(s.last_error.as_deref(), Some(reason.as_str()));
    assert_eq!(s.home_address, None);
    // The retry starts with DHCPv6 again, and keeps the reason while it runs.
    let a = h.run_until(15_090);
    assert!(matches!(a.as_slice(), [Action::InitiatePhase1]), "{a:?}");
    h.at(15_100);
    let a = h.phase1_up(IkeSaId(3));
    assert!(
        matches!(
            a.as_slice(),
            [Action::InitiateChild {
                role: SaRole::InitialTunnel,
                ..
            }]
        ),
        "{a:?}"
    );
    assert_eq!(h.status().last_error.as_deref(), Some(reason.as_str()));
}

#[test]
fn dhcpv6_alone_fails_and_retries_instead_of_falling_back() {
    let mut h = H::new(AddressSourceMode::Dhcpv6);
    h.through_phase1();
    h.at(50);
    let a = h.child_refused(SaRole::InitialTunnel);
    assert!(
        matches!(a.first(), Some(Action::DeleteIkeSa { sa: IkeSaId(1) })),
        "{a:?}"
    );
    let (reason, retry_in) = failed_reason(&a);
    assert!(
        reason.contains("the home agent refused the initial tunnel"),
        "{reason}"
    );
    assert!(reason.contains("INVALID_ID_INFORMATION"), "{reason}");
    assert_eq!(retry_in, RETRY_BASE);
    assert_eq!(h.status().state, State::Failed);
    assert_eq!(h.bs.poll_timeout(), Some(h.t0 + ms_(5_050)));
    // The retry after 5 s: the tunnel comes up, but no lease within dhcpv6_timeout.
    let a = h.run_until(5_050);
    assert!(matches!(a.as_slice(), [Action::InitiatePhase1]), "{a:?}");
    h.at(5_070);
    h.phase1_up(IkeSaId(2));
    h.at(5_080);
    h.child_up(SaRole::InitialTunnel);
    let a = h.run_until(15_070);
    let (reason, retry_in) = failed_reason(&a);
    assert_eq!(h.ms_since_t0(), 15_070);
    assert!(
        reason.starts_with("no DHCPv6 lease within dhcpv6_timeout (10 s)"),
        "{reason}"
    );
    assert_eq!(retry_in, Duration::from_secs(10), "the back-off doubles");
    assert!(
        !a.iter()
            .any(|a| matches!(a, Action::RequestModeConfig { .. })),
        "{a:?}"
    );
    assert_eq!(h.status().state, State::Failed);
}

#[test]
fn an_unanswered_initial_tunnel_is_no_refusal_and_auto_falls_back() {
    let mut h = H::new(AddressSourceMode::Auto);
    h.through_phase1();
    let (id, sa, _) = h.asked(SaRole::InitialTunnel);
    let a = h.ike(Event::ChildSaFailed {
        sa,
        request: Some(id),
        reason: FailReason::Timeout,
    });
    assert!(
        matches!(
            a.as_slice(),
            [Action::DeleteIkeSa { .. }, Action::InitiatePhase1]
        ),
        "{a:?}"
    );
    h.phase1_up(IkeSaId(2));
    let a = h.ike(Event::ModeConfigFailed {
        sa: IkeSaId(2),
        reason: FailReason::Timeout,
    });
    let (reason, _) = failed_reason(&a);
    assert_eq!(
        reason,
        "no answer to the Quick Mode for the initial tunnel for DHCPv6 (draft §3.2): peer did \
         not answer; then Mode Config: Mode Config failed: peer did not answer"
    );
}

#[test]
fn a_huge_dhcpv6_timeout_does_not_overflow_the_clock() {
    let mut s = settings(AddressSourceMode::Dhcpv6);
    s.dhcpv6_timeout = Duration::from_secs(u64::MAX);
    let mut h = H::with(s);
    h.until_solicit();
    assert_eq!(h.status().state, State::Address);
    assert!(h.bs.poll_timeout().is_some(), "the Solicit retransmission");
}

#[test]
fn dhcp_timeout_reports_what_the_server_said() {
    let mut h = H::new(AddressSourceMode::Dhcpv6);
    let sol = h.until_solicit();
    h.at(100);
    // NoAddrsAvail in the IA_NA (RFC 8415 §21.13): the client keeps soliciting.
    let [_, a, b, c] = sol.xid_num().to_be_bytes();
    let mut r = Message::new_with_id(MessageType::Advertise, [a, b, c]);
    let o = r.opts_mut();
    o.insert(sol.opts().get(OptionCode::ClientId).unwrap().clone());
    o.insert(DhcpOption::ServerId(SERVER_DUID.to_vec()));
    o.insert(DhcpOption::StatusCode(dhcproto::v6::StatusCode {
        status: dhcproto::v6::Status::NoAddrsAvail,
        msg: "no addresses".into(),
    }));
    h.datagram(IkeSaId(1), &r.to_vec().unwrap());
    let a = h.run_until(10_040);
    let (reason, _) = failed_reason(&a);
    assert!(reason.contains("status 2 \"no addresses\""), "{reason}");
}

#[test]
fn modecfg_goes_straight_to_mode_config() {
    let mut h = H::new(AddressSourceMode::Modecfg);
    let a = h.through_phase1();
    assert!(
        matches!(a.as_slice(), [Action::RequestModeConfig { sa: IkeSaId(1) }]),
        "{a:?}"
    );
    assert_eq!(h.status().state, State::Address);
    h.at(70);
    h.ike(Event::ModeConfigReceived {
        sa: IkeSaId(1),
        config: ModeConfig {
            address: Some(HOA),
            prefix_len: Some(64),
            expiry: Some(Duration::from_secs(3600)),
            ..ModeConfig::default()
        },
    });
    assert_eq!(h.status().state, State::Rfc3776Sas);
    h.at(80);
    h.child_up(SaRole::Transport);
    let (_, a) = h.child_up(SaRole::Tunnel);
    assert!(matches!(a.last(), Some(Action::Ready { .. })), "{a:?}");
    let s = h.status();
    assert_eq!(
        (s.state, s.home_address, s.address_source),
        (State::Ready, Some(HOA), Some(AddressSource::Modecfg))
    );
    assert_eq!(s.timings_ms.address, Some(30));
    assert_eq!(s.timings_ms.initial_tunnel, None);
    // Shutdown: no DHCPv6 lease to release.
    assert!(!h.bs.shutdown(h.now));
    assert!(h.bs.is_stopped());
}

/// `home_registration = false` (a plain IPsec gateway as home agent): after the address only
/// the tunnel-mode SA is asked for, and it alone makes the node ready.
#[test]
fn without_home_registration_only_the_tunnel_sa_is_asked_for() {
    let mut h = H::with(Settings {
        home_registration: false,
        ..settings(AddressSourceMode::Modecfg)
    });
    h.through_phase1();
    let a = h.ike(Event::ModeConfigReceived {
        sa: IkeSaId(1),
        config: ModeConfig {
            address: Some(HOA),
            ..ModeConfig::default()
        },
    });
    let roles: Vec<SaRole> = a
        .iter()
        .filter_map(|a| match a {
            Action::InitiateChild { role, .. } => Some(*role),
            _ => None,
        })
        .collect();
    assert_eq!(roles, vec![SaRole::Tunnel], "{a:?}");
    let (_, a) = h.child_up(SaRole::Tunnel);
    assert!(matches!(a.last(), Some(Action::Ready { .. })), "{a:?}");
    assert_eq!(h.status().state, State::Ready);
}

/// Discovered home agents (RFC 5026 §5): one that does not answer phase 1 within
/// `home_agent_timeout`, or at all, makes the node try the next at once; after the last, the
/// back-off applies and the first is tried again; one that answers is kept.
#[test]
fn an_unanswering_home_agent_makes_the_node_try_the_next() {
    let ha2: Ipv6Addr = "2001:db8:ff::11".parse().unwrap();
    let mut h = H::new(AddressSourceMode::Modecfg);
    h.bs.set_home_agents(vec![HA, ha2]);
    h.bs.start(h.now);
    let a = h.step();
    assert!(matches!(a.as_slice(), [Action::InitiatePhase1]), "{a:?}");
    assert_eq!(h.bs.home_agent(), HA);
    assert_eq!(h.bs.poll_timeout(), Some(h.t0 + Duration::from_secs(5)));
    // 5 s without phase 1: the next home agent, at once.
    let a = h.run_until(5000);
    assert!(
        matches!(
            a.as_slice(),
            [
                Action::DeleteIkeSa { sa: IkeSaId(1) },
                Action::InitiatePhase1
            ]
        ),
        "{a:?}"
    );
    assert_eq!(h.bs.home_agent(), ha2);
    let s = h.status();
    assert!(
        s.last_error
            .as_deref()
            .is_some_and(|e| e.contains("2001:db8:ff::1 does not answer")),
        "{s:?}"
    );
    // The engine gives up on the second: all tried, so back-off, and the first comes next.
    let a = h.ike(Event::IkeSaFailed {
        sa: IkeSaId(2),
        reason: FailReason::Timeout,
    });
    let (reason, retry_in) = failed_reason(&a);
    assert!(
        reason.contains("2001:db8:ff::11 does not answer"),
        "{reason}"
    );
    assert_eq!(retry_in, Duration::from_secs(5));
    assert_eq!(h.bs.home_agent(), HA);
}

#[test]
fn mode_config_reply_without_an_address_fails() {
    let mut h = H::new(AddressSourceMode::Modecfg);
    h.through_phase1();
    let a = h.ike(Event::ModeConfigReceived {
        sa: IkeSaId(1),
        config: ModeConfig::default(),
    });
    let (reason, _) = failed_reason(&a);
    assert!(reason.contains("no INTERNAL_IP6_ADDRESS"), "{reason}");
}

#[test]
fn a_refused_rfc3776_quick_mode_fails_with_the_reason() {
    let mut h = H::new(AddressSourceMode::Auto);
    let sol = h.until_solicit();
    h.at(90);
    h.datagram(IkeSaId(1), &reply(&sol, HOA, 100, 160, 200));
    h.at(95);
    h.child_up(SaRole::Tunnel);
    let a = h.child_refused(SaRole::Transport);
    assert!(
        matches!(a.first(), Some(Action::DeleteIkeSa { sa: IkeSaId(1) })),
        "{a:?}"
    );
    assert!(
        !a.iter().any(|a| matches!(a, Action::InitiatePhase1)),
        "no fallback once the address is leased: {a:?}"
    );
    let (reason, _) = failed_reason(&a);
    assert_eq!(
        reason,
        "the home agent refused the RFC 3776 transport-mode (Mobility Header) SA for \
         2001:db8:1::1000: peer sent notify INVALID_ID_INFORMATION"
    );
    let s = h.status();
    assert_eq!(s.state, State::Failed);
    assert_eq!(s.home_address, None);
    assert!(s.child_sas.is_empty());
    assert_eq!(s.ike_sa.state, IkeSaState::None);
}

#[test]
fn ike_sa_deleted_fails_retries_and_asks_for_the_same_address() {
    let mut h = H::new(AddressSourceMode::Auto);
    h.until_ready_dhcp();
    h.at(1_000);
    let a = h.ike(Event::IkeSaDeleted {
        sa: IkeSaId(1),
        reason: "deleted by the peer".into(),
    });
    // The IKE SA is gone already: no Delete; the address goes.
    assert!(
        matches!(a.as_slice(), [
            Action::RemoveAddress { address },
            Action::Failed { reason, retry_in },
        ] if *address == HOA && reason == "the IKE SA was deleted: deleted by the peer"
            && *retry_in == RETRY_BASE),
        "{a:?}"
    );
    assert_eq!(h.status().state, State::Failed);
    h.run_until(6_000);
    assert_eq!(h.status().state, State::Phase1);
    h.at(6_040);
    h.phase1_up(IkeSaId(2));
    let (_, a) = h.child_up(SaRole::InitialTunnel);
    let sent = sent_dhcp(&a);
    let [(IkeSaId(2), _, _, sol)] = sent.as_slice() else {
        panic!("{a:?}")
    };
    assert_eq!(
        ia_addrs(sol),
        [HOA],
        "the Solicit asks for the leased address again"
    );
}

#[test]
fn the_hint_from_the_lease_file_goes_into_the_solicit() {
    let mut s = settings(AddressSourceMode::Auto);
    s.hint = Some(OTHER);
    let mut h = H::with(s);
    let sol = h.until_solicit();
    assert_eq!(ia_addrs(&sol), [OTHER]);
}

#[test]
fn a_lease_that_expires_or_moves_starts_over() {
    // Renew and Rebind unanswered: at the valid lifetime the address goes.
    let mut h = H::new(AddressSourceMode::Auto);
    h.until_ready_dhcp();
    let a = h.run_until(90 + 200_000);
    let kinds: Vec<_> = sent_dhcp(&a).iter().map(|m| m.3.msg_type()).collect();
    assert!(kinds.contains(&MessageType::Renew), "{kinds:?}");
    assert!(kinds.contains(&MessageType::Rebind), "{kinds:?}");
    let (reason, _) = failed_reason(&a);
    assert!(
        reason.contains("lease of 2001:db8:1::1000 expired"),
        "{reason}"
    );
    assert!(
        a.iter()
            .any(|a| matches!(a, Action::RemoveAddress { address } if *address == HOA)),
        "{a:?}"
    );
    assert!(
        a.iter()
            .any(|a| matches!(a, Action::DeleteIkeSa { sa: IkeSaId(1) })),
        "{a:?}"
    );

    // A Rebind answered with another address.
    let mut h = H::new(AddressSourceMode::Auto);
    h.until_ready_dhcp();
    let a = h.run_until(90 + 160_000);
    let rebind = sent_dhcp(&a)
        .into_iter()
        .map(|m| m.3)
        .find(|m| m.msg_type() == MessageType::Rebind)
        .expect("a Rebind at T2");
    let a = h.datagram(IkeSaId(1), &reply(&rebind, OTHER, 100, 160, 200));
    let (reason, _) = failed_reason(&a);
    assert!(
        reason.contains("moved the lease from 2001:db8:1::1000 to 2001:db8:1::2000"),
        "{reason}"
    );
    assert!(
        a.iter()
            .any(|a| matches!(a, Action::PersistLease { address } if *address == OTHER)),
        "{a:?}"
    );
    assert!(
        a.iter()
            .any(|a| matches!(a, Action::RemoveAddress { address } if *address == HOA)),
        "{a:?}"
    );
}

#[test]
fn a_deleted_rfc3776_sa_fails_unless_rekeyed() {
    let mut h = H::new(AddressSourceMode::Auto);
    h.until_ready_dhcp();
    // A rekey: the new pair comes before the old one goes.
    let old = h.next_spi - 1;
    let (_, a) = h.child_up(SaRole::Tunnel);
    assert!(a.is_empty(), "{a:?}");
    let a = h.ike(Event::ChildSaDeleted {
        sa: IkeSaId(1),
        spi_in: old,
        spi_out: 0,
        reason: "rekeyed".into(),
    });
    assert!(a.is_empty(), "{a:?}");
    assert_eq!(h.status().state, State::Ready);
    // The transport-mode SA deleted with no replacement.
    let transport = h
        .status()
        .child_sas
        .iter()
        .find(|c| c.mode == "transport")
        .unwrap()
        .spi_in
        .clone();
    let spi = u32::from_str_radix(transport.trim_start_matches("0x"), 16).unwrap();
    let a = h.ike(Event::ChildSaDeleted {
        sa: IkeSaId(1),
        spi_in: spi,
        spi_out: 0,
        reason: "deleted by the peer".into(),
    });
    let (reason, _) = failed_reason(&a);
    assert!(
        reason.starts_with("the transport-mode (Mobility Header) SA was deleted"),
        "{reason}"
    );
}

#[test]
fn phase1_reauthentication_keeps_the_node_ready() {
    let mut h = H::new(AddressSourceMode::Auto);
    h.until_ready_dhcp();
    h.at(50_000);
    // The engine re-authenticates phase 1: the new SA comes up, takes the children over,
    // then the old one is deleted.
    assert!(h.phase1_up(IkeSaId(7)).is_empty());
    let a = h.ike(Event::IkeSaReplaced {
        old: IkeSaId(1),
        new: IkeSaId(7),
        children: vec![0xc000_0002, 0xc000_0003],
    });
    assert!(a.is_empty(), "{a:?}");
    let a = h.ike(Event::IkeSaDeleted {
        sa: IkeSaId(1),
        reason: "lifetime expired".into(),
    });
    assert!(a.is_empty(), "{a:?}");
    assert_eq!(h.status().state, State::Ready);
    // Renew now goes through the newer IKE SA.
    let a = h.run_until(90 + 100_000);
    let sent = sent_dhcp(&a);
    assert!(
        sent.iter().all(|(via, ..)| *via == IkeSaId(7)) && !sent.is_empty(),
        "{a:?}"
    );
    // Its deletion is the node's.
    let a = h.ike(Event::IkeSaDeleted {
        sa: IkeSaId(7),
        reason: "deleted by the peer".into(),
    });
    assert!(matches!(a.last(), Some(Action::Failed { .. })), "{a:?}");
}

#[test]
fn a_failure_drops_what_the_attempt_still_had_queued() {
    let mut h = H::new(AddressSourceMode::Modecfg);
    h.through_phase1();
    // Both RFC 3776 Quick Modes are queued at once; the first cannot start.
    h.bs.handle_ike_event(
        h.now,
        &Event::ModeConfigReceived {
            sa: IkeSaId(1),
            config: ModeConfig {
                address: Some(HOA),
                ..ModeConfig::default()
            },
        },
    );
    let first = h.bs.poll_action();
    assert!(
        matches!(
            first,
            Some(Action::InitiateChild {
                role: SaRole::Transport,
                ..
            })
        ),
        "{first:?}"
    );
    h.bs.child_initiated(h.now, SaRole::Transport, Err("no such SA".into()));
    let rest: Vec<_> = std::iter::from_fn(|| h.bs.poll_action()).collect();
    assert!(
        matches!(rest.as_slice(), [Action::DeleteIkeSa { .. }, Action::Failed { reason, .. }]
            if reason.starts_with("starting the Quick Mode for the transport-mode")),
        "no Quick Mode for the tunnel-mode SA after the failure: {rest:?}"
    );
}

#[test]
fn static_mode_keeps_one_tunnel_sa() {
    let mut h = H::new(AddressSourceMode::Static);
    let a = h.through_phase1();
    let [Action::InitiateChild { role, request, .. }] = a.as_slice() else {
        panic!("{a:?}")
    };
    assert_eq!(*role, SaRole::Tunnel);
    assert_eq!(request.mode, Mode::Tunnel);
    assert_eq!(request.local_ts.to_string(), "2001:db8:1::1000/128");
    assert_eq!(request.remote_ts.to_string(), "::/0");
    let s = h.status();
    assert_eq!(s.state, State::Rfc3776Sas);
    assert_eq!(s.address_source, Some(AddressSource::Static));
    h.at(50);
    let (_, a) = h.child_up(SaRole::Tunnel);
    assert!(
        matches!(a.as_slice(), [
            Action::InstallAddress { address },
            Action::Ready { source: AddressSource::Static, .. },
        ] if *address == HOA),
        "{a:?}"
    );
    let t = h.status().timings_ms;
    assert_eq!(
        (
            t.phase1,
            t.initial_tunnel,
            t.address,
            t.rfc3776_sas,
            t.total
        ),
        (Some(40), None, Some(0), Some(10), Some(50))
    );
    assert!(!h.bs.shutdown(h.now), "nothing to release");
}

#[test]
fn phase1_failure_and_a_failed_install_are_failures() {
    let mut h = H::new(AddressSourceMode::Static);
    h.bs.start(h.now);
    h.step();
    h.at(30_000);
    let a = h.ike(Event::IkeSaFailed {
        sa: IkeSaId(1),
        reason: FailReason::Timeout,
    });
    assert!(
        matches!(a.as_slice(), [Action::Failed { reason, .. }]
            if reason == "phase 1 with the home agent 2001:db8:ff::1 failed: peer did not answer"),
        "{a:?}"
    );
    let mut h = H::new(AddressSourceMode::Static);
    h.install = Err("adding 2001:db8:1::1000 to mip6mn0: permission denied".into());
    h.through_phase1();
    let (_, a) = h.child_up(SaRole::Tunnel);
    let (reason, _) = failed_reason(&a);
    assert_eq!(
        reason,
        "installing the home address: adding 2001:db8:1::1000 to mip6mn0: permission denied"
    );
    assert!(
        !a.iter().any(|a| matches!(a, Action::RemoveAddress { .. })),
        "{a:?}"
    );
}

#[test]
fn backoff_doubles_up_to_half_a_minute_and_resets_on_success() {
    let secs: Vec<_> = (1..=6).map(|n| backoff(n).as_secs()).collect();
    assert_eq!(secs, [5, 10, 20, 30, 30, 30]);
    assert_eq!(backoff(u32::MAX), RETRY_MAX);
    let mut h = H::new(AddressSourceMode::Static);
    for (n, expect) in [(1, 5), (2, 10), (3, 20)] {
        h.bs.start(h.now);
        h.step();
        let sa = IkeSaId(h.next_sa - 1);
        let a = h.ike(Event::IkeSaFailed {
            sa,
            reason: FailReason::Timeout,
        });
        assert_eq!(failed_reason(&a).1.as_secs(), expect, "failure {n}");
    }
    h.bs.start(h.now);
    h.step();
    h.phase1_up(IkeSaId(h.next_sa - 1));
    h.child_up(SaRole::Tunnel);
    assert_eq!(h.status().state, State::Ready);
    let a = h.ike(Event::IkeSaDeleted {
        sa: IkeSaId(h.next_sa - 1),
        reason: "expired".into(),
    });
    assert_eq!(failed_reason(&a).1, RETRY_BASE, "reset by the success");
}

#[test]
fn shutdown_releases_the_lease_and_waits_for_the_reply() {
    let mut h = H::new(AddressSourceMode::Auto);
    h.until_ready_dhcp();
    h.at(2_000);
    assert!(h.bs.shutdown(h.now));
    let a = h.step();
    let sent = sent_dhcp(&a);
    let [(IkeSaId(1), src, _, release)] = sent.as_slice() else {
        panic!("{a:?}")
    };
    assert_eq!(release.msg_type(), MessageType::Release);
    assert_eq!(*src, SocketAddrV6::new(HOA, 546, 0, 0));
    assert_eq!(ia_addrs(release), [HOA]);
    assert_eq!(h.status().state, State::Stopping);
    assert!(!h.bs.is_stopped());
    assert!(
        h.bs.poll_timeout()
            .is_some_and(|t| t <= h.now + RELEASE_WAIT)
    );
    h.at(2_010);
    let a = h.datagram(IkeSaId(1), &reply(release, HOA, 0, 0, 0));
    assert!(a.is_empty(), "{a:?}");
    assert!(h.bs.is_stopped());

    // No Reply: given up after RELEASE_WAIT.
    let mut h = H::new(AddressSourceMode::Auto);
    h.until_ready_dhcp();
    h.at(2_000);
    assert!(h.bs.shutdown(h.now));
    h.step();
    h.run_until(2_999);
    assert!(!h.bs.is_stopped());
    h.run_until(3_000);
    assert!(h.bs.is_stopped());
    assert_eq!(h.bs.poll_timeout(), None);

    // The IKE SA going away meanwhile ends the wait without a retry.
    let mut h = H::new(AddressSourceMode::Auto);
    h.until_ready_dhcp();
    assert!(h.bs.shutdown(h.now));
    h.step();
    let a = h.ike(Event::IkeSaDeleted {
        sa: IkeSaId(1),
        reason: "deleted by the peer".into(),
    });
    assert!(
        !a.iter().any(|a| matches!(a, Action::Failed { .. })),
        "{a:?}"
    );
    assert!(h.bs.is_stopped());
}

#[test]
fn shutdown_while_soliciting_has_nothing_to_release() {
    let mut h = H::new(AddressSourceMode::Auto);
    h.until_solicit();
    assert!(!h.bs.shutdown(h.now));
    assert!(h.bs.is_stopped());
    assert_eq!(
        h.bs.poll_timeout(),
        None,
        "the client's timers no longer count"
    );
}
