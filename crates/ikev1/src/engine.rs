//! The engine: every IKE SA of one endpoint, driven through the handle/poll quadrants.
//!
//! Calling order for a driver (one loop, see `style.md` §9):
//! 1. feed each received UDP datagram to [`Engine::handle_datagram`] (with our local address
//!    and port, and the peer's);
//! 2. send everything [`Engine::poll_transmit`] returns;
//! 3. call [`Engine::handle_timeout`] when [`Engine::poll_timeout`] is reached;
//! 4. act on [`Engine::poll_event`] (install SAs, answer address requests with
//!    [`Engine::answer_address_request`] and XAUTH credentials with [`Engine::xauth_verdict`],
//!    ...).
//!
//! The engine never reads a clock, opens a socket or draws randomness of its own: `now` is a
//! parameter and randomness comes from the [`Rng`] it was built with.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use isakmp::{ExchangeType, Header, Payload};
use tracing::{debug, info, warn};

use crate::config::Config;
use crate::crypto::Rng;
use crate::event::{ChildRequest, Event, FailReason, IkeSaId, ModeConfig, Transmit};
use crate::exchange::{Exchange, Kind};
use crate::ike_sa::{IkeSa, Nat, P1Material, P1State};
use crate::peer_index::PeerIndex;
use crate::sa_table::SaTable;
use crate::util::HexFmt;

/// A decision hook for Quick Modes the peer starts (the home agent uses it to allow the RFC
/// 3776 selectors only for the home address leased to that identity).
pub trait ChildPolicy: Send {
    /// Whether `identity` may have an SA with these selectors (ours, the peer's).
    fn allow(
        &self,
        identity: &crate::Identity,
        local_ts: &crate::TrafficSelector,
        remote_ts: &crate::TrafficSelector,
        mode: crate::Mode,
    ) -> Result<(), String>;
}

/// Counters of what the engine did and dropped (for `status`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Datagrams handed in.
    pub received: u64,
    /// Datagrams that did not parse.
    pub dropped_malformed: u64,
    /// Datagrams for an SA we do not know.
    pub dropped_unknown_sa: u64,
    /// Datagrams that failed decryption or their HASH.
    pub dropped_auth: u64,
    /// Datagrams in the wrong state or exchange.
    pub dropped_unexpected: u64,
    /// Phase-1 attempts refused because of the half-open limits.
    pub dropped_half_open_limit: u64,
    /// Retransmitted datagrams recognised and answered from cache.
    pub retransmits_answered: u64,
    /// Our retransmissions.
    pub retransmits_sent: u64,
    /// Phase 1 completed.
    pub ike_established: u64,
    /// Phase 1 failed.
    pub ike_failed: u64,
    /// Quick Modes completed.
    pub child_established: u64,
    /// Quick Modes failed or refused.
    pub child_failed: u64,
    /// Authentic messages refused because XAUTH of their IKE SA has not succeeded (Quick
    /// Mode either way, Mode Config, Transactions other than XAUTH's).
    pub dropped_xauth_pending: u64,
    /// XAUTH attempts that succeeded.
    pub xauth_succeeded: u64,
    /// XAUTH attempts that failed (refused, unanswered, malformed, or not tried).
    pub xauth_failed: u64,
    /// (Edge) Phase-1 SAs deleted without an XAUTH request: their identity or address failed
    /// too often ([`Config::xauth_max_failures`]).
    pub xauth_refused_limit: u64,
}

/// All IKE SAs of one endpoint.
pub struct Engine {
    pub(crate) config: Arc<Config>,
    /// `config.peers` grouped by key and indexed by identity (Main Mode responder).
    pub(crate) peer_index: Arc<PeerIndex>,
    pub(crate) rng: Box<dyn Rng>,
    pub(crate) sas: SaTable,
    /// Established or responder SAs by cookie pair.
    pub(crate) by_cookies: HashMap<([u8; 8], [u8; 8]), IkeSaId>,
    /// Our initiator SAs waiting for MM2, by our cookie.
    pub(crate) by_icookie: HashMap<[u8; 8], IkeSaId>,
    /// Responder SAs by the initiator's cookie and address (to recognise a repeated MM1).
    pub(crate) half_open: HashMap<([u8; 8], SocketAddr), IkeSaId>,
    pub(crate) half_open_per_ip: HashMap<IpAddr, usize>,
    pub(crate) spis: HashSet<u32>,
    pub(crate) next_sa: u64,
    pub(crate) next_request: u64,
    pub(crate) transmits: VecDeque<Transmit>,
    pub(crate) events: VecDeque<Event>,
    pub(crate) counters: Counters,
    pub(crate) policy: Option<Box<dyn ChildPolicy>>,
    /// A reference point of the wall clock: (engine instant, Unix seconds), for certificates.
    pub(crate) wall_clock: Option<(Instant, i64)>,
    /// (XAUTH edge) Recent failed attempts by peer identity and by source address.
    pub(crate) xauth_failures: crate::xauth::FailureRecords,
}

/// Errors of the command API (never caused by the network).
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// No such IKE SA.
    #[error("no IKE SA {0}")]
    NoSuchSa(IkeSaId),
    /// The IKE SA is not established.
    #[error("IKE SA {0} is not established")]
    NotEstablished(IkeSaId),
    /// No such peer in the configuration.
    #[error("no peer {0} in the configuration")]
    NoSuchPeer(usize),
    /// No such pending request.
    #[error("no pending request {0}")]
    NoSuchRequest(u64),
    /// A crypto operation failed.
    #[error("crypto: {0}")]
    Crypto(String),
    /// XAUTH of the IKE SA has not succeeded (yet): it cannot be used.
    #[error("XAUTH of IKE SA {0} has not succeeded")]
    XauthPending(IkeSaId),
    /// The IKE SA awaits no XAUTH verdict.
    #[error("IKE SA {0} awaits no XAUTH verdict")]
    NoXauthPending(IkeSaId),
}

impl Engine {
    /// A new engine.
    pub fn new(config: Config, rng: Box<dyn Rng>) -> Self {
        Self {
            sas: SaTable::new(config.dpd_delay),
            peer_index: Arc::new(PeerIndex::new(&config.peers)),
            config: Arc::new(config),
            rng,
            by_cookies: HashMap::new(),
            by_icookie: HashMap::new(),
            half_open: HashMap::new(),
            half_open_per_ip: HashMap::new(),
            spis: HashSet::new(),
            next_sa: 1,
            next_request: 1,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            counters: Counters::default(),
            policy: None,
            wall_clock: None,
            xauth_failures: HashMap::new(),
        }
    }

    /// Tells the engine which Unix time `now` is (certificate validity is checked against
    /// it; without it every certificate is treated as not yet valid).
    pub fn set_wall_clock(&mut self, now: Instant, unix_secs: i64) {
        self.wall_clock = Some((now, unix_secs));
    }

    /// Sets the policy hook for Quick Modes the peer starts.
    pub fn set_child_policy(&mut self, policy: Box<dyn ChildPolicy>) {
        self.policy = Some(policy);
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Engine::handle_timeout`] must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.sas.next_deadline()
    }

    /// Whether an SA is established, its peer identity and endpoints.
    pub fn ike_sa_info(&self, sa: IkeSaId) -> Option<IkeSaInfo> {
        let s = self.sas.get(&sa)?;
        Some(IkeSaInfo {
            state: if s.state == P1State::Established && s.xauth_blocks() {
                "XAUTH".to_owned()
            } else {
                s.state.to_string()
            },
            established: s.usable(),
            xauth_user: s.xauth.as_ref().and_then(|x| x.user.clone()),
            initiator: s.initiator,
            local: s.local,
            remote: s.remote,
            remote_id: s.remote_id.clone(),
            proposal: s.p1.offer.map(|o| o.suite.to_string()),
            nat: s.nat.detected,
            cookie_i: s.cookie_i,
            cookie_r: s.cookie_r,
        })
    }

    /// Ids of every SA the engine holds.
    pub fn ike_sas(&self) -> Vec<IkeSaId> {
        let mut v: Vec<_> = self.sas.keys().copied().collect();
        v.sort();
        v
    }

    /// Tells the engine the peer of `sa` is alive (the driver saw ESP from it), which keeps
    /// dead peer detection quiet.
    pub fn note_peer_alive(&mut self, sa: IkeSaId, now: Instant) {
        if let Some(s) = self.sas.get_mut(&sa) {
            s.last_heard = s.last_heard.max(now);
        }
    }

    /// Starts phase 1 (Main Mode) with peer `peer` (index into the configuration) at `remote`,
    /// from `local` (port 500).
    pub fn initiate(
        &mut self,
        now: Instant,
        peer: usize,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> Result<IkeSaId, ApiError> {
        if peer >= self.config.peers.len() {
            return Err(ApiError::NoSuchPeer(peer));
        }
        let id = self.alloc_sa_id();
        let mut cookie_i = [0u8; 8];
        loop {
            self.rng.fill(&mut cookie_i);
            if cookie_i != [0; 8] && !self.by_icookie.contains_key(&cookie_i) {
                break;
            }
        }
        let mut sa = self.new_sa(id, true, cookie_i, [0; 8], local, remote, now);
        sa.peer = Some(peer);
        sa.state = P1State::Mm1Sent;
        self.by_icookie.insert(cookie_i, id);
        self.sas.insert(id, sa);
        info!(sa = %id, %remote, "initiating Main Mode");
        self.send_mm1(now, id);
        Ok(id)
    }

    /// Starts a Quick Mode on an established IKE SA; returns a request handle that the
    /// [`Event::ChildSaFailed`] of this negotiation names.
    pub fn initiate_child(
        &mut self,
        now: Instant,
        sa: IkeSaId,
        request: ChildRequest,
    ) -> Result<u64, ApiError> {
        self.check_established(sa)?;
        let req = self.next_request;
        self.next_request += 1;
        self.start_quick_mode(now, sa, request, req, None)?;
        Ok(req)
    }

    /// Asks the peer for Mode Config attributes (CFG_REQUEST for an IPv6 address, DNS, DHCP
    /// server and the address expiry).
    pub fn request_mode_config(&mut self, now: Instant, sa: IkeSaId) -> Result<(), ApiError> {
        self.check_established(sa)?;
        self.send_cfg_request(now, sa);
        Ok(())
    }

    /// (Responder) Pushes Mode Config attributes with CFG_SET.
    pub fn push_mode_config(
        &mut self,
        now: Instant,
        sa: IkeSaId,
        config: &ModeConfig,
    ) -> Result<(), ApiError> {
        self.check_established(sa)?;
        self.send_cfg_set(now, sa, config);
        Ok(())
    }

    /// (Responder) Answers an [`Event::AddressRequested`]: `Some` sends CFG_REPLY with these
    /// attributes, `None` refuses (CFG_REPLY without an address).
    pub fn answer_address_request(
        &mut self,
        now: Instant,
        sa: IkeSaId,
        request: u64,
        answer: Option<ModeConfig>,
    ) -> Result<(), ApiError> {
        self.check_established(sa)?;
        self.send_cfg_reply(now, sa, request, answer)
    }

    /// Deletes one child SA pair (by our SPI): sends a Delete and reports it.
    pub fn delete_child(&mut self, now: Instant, sa: IkeSaId, spi_in: u32) -> Result<(), ApiError> {
        self.check_established(sa)?;
        self.send_delete_child(now, sa, spi_in, "deleted locally");
        Ok(())
    }

    /// Deletes an IKE SA: its children first (one Delete each), then the ISAKMP SA.
    pub fn delete_ike_sa(&mut self, now: Instant, sa: IkeSaId) -> Result<(), ApiError> {
        if !self.sas.contains_key(&sa) {
            return Err(ApiError::NoSuchSa(sa));
        }
        self.delete_ike(now, sa, true, "deleted locally");
        self.reap(now);
        Ok(())
    }

    /// Handles a UDP datagram received on `local` from `remote`. On the NAT-T port the
    /// datagram must start with the non-ESP marker (four zero bytes); ESP and keepalives are
    /// for the driver to separate first ([`classify_natt`]).
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        data: &[u8],
    ) {
        self.counters.received += 1;
        let data = if local.port() == self.config.natt_port {
            match data.strip_prefix(&[0u8; 4]) {
                Some(d) => d,
                None => {
                    self.counters.dropped_malformed += 1;
                    debug!(%remote, "dropped datagram on the NAT-T port without the non-ESP marker");
                    return;
                }
            }
        } else {
            data
        };
        let header = match Header::parse(data) {
            Ok(h) => h,
            Err(e) => {
                self.counters.dropped_malformed += 1;
                debug!(%remote, error = %e, "dropped malformed ISAKMP header");
                return;
            }
        };
        if usize::try_from(header.length).ok() != Some(data.len()) {
            self.counters.dropped_malformed += 1;
            debug!(%remote, length = header.length, got = data.len(), "dropped: ISAKMP length does not match the datagram");
            return;
        }
        let Some(id) = self.find_sa(&header, local, remote, now, data) else {
            return;
        };
        let is_phase1 = header.exchange == ExchangeType::MAIN && header.message_id == 0;
        if is_phase1 {
            self.handle_phase1(now, id, local, remote, &header, data);
        } else {
            self.handle_after_phase1(now, id, local, remote, &header, data);
        }
        self.reap(now);
    }

    /// Advances timers: retransmissions, lifetimes, dead peer detection, forgotten exchanges.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.sas.flush();
        for id in self.sas.due(now) {
            self.sa_timers(now, id);
        }
        self.reap(now);
    }

    fn check_established(&self, sa: IkeSaId) -> Result<(), ApiError> {
        match self.sas.get(&sa) {
            None => Err(ApiError::NoSuchSa(sa)),
            Some(s) if s.state != P1State::Established || s.dead => {
                Err(ApiError::NotEstablished(sa))
            }
            Some(s) if s.xauth_blocks() => Err(ApiError::XauthPending(sa)),
            Some(_) => Ok(()),
        }
    }

    pub(crate) fn alloc_sa_id(&mut self) -> IkeSaId {
        let id = IkeSaId(self.next_sa);
        self.next_sa += 1;
        id
    }

    /// A fresh SPI of ours (≥ 256, RFC 4303 §2.1, and unique in this engine).
    pub(crate) fn alloc_spi(&mut self) -> u32 {
        loop {
            let mut b = [0u8; 4];
            self.rng.fill(&mut b);
            let spi = u32::from_be_bytes(b);
            if spi >= 256 && self.spis.insert(spi) {
                return spi;
            }
        }
    }

    pub(crate) fn random_message_id(&mut self, sa: IkeSaId) -> u32 {
        loop {
            let mut b = [0u8; 4];
            self.rng.fill(&mut b);
            let m = u32::from_be_bytes(b);
            if m != 0
                && self
                    .sas
                    .get(&sa)
                    .is_none_or(|s| !s.exchanges.contains_key(&m))
            {
                return m;
            }
        }
    }

    pub(crate) fn random_bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = vec![0u8; n];
        self.rng.fill(&mut v);
        v
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new_sa(
        &self,
        id: IkeSaId,
        initiator: bool,
        cookie_i: [u8; 8],
        cookie_r: [u8; 8],
        local: SocketAddr,
        remote: SocketAddr,
        now: Instant,
    ) -> IkeSa {
        IkeSa {
            id,
            initiator,
            cookie_i,
            cookie_r,
            local,
            remote,
            peer: None,
            state: if initiator {
                P1State::Mm1Sent
            } else {
                P1State::Mm2Sent
            },
            p1: P1Material::default(),
            keys: None,
            p1_iv: Vec::new(),
            last_p1_block: Vec::new(),
            nat: Nat::default(),
            remote_id: None,
            p1_exchange: Exchange::new(Kind::Phase1, Vec::new(), now),
            exchanges: HashMap::new(),
            children: Vec::new(),
            established_at: None,
            rekey_at: None,
            expires_at: None,
            last_heard: now,
            dpd_seq: 0,
            assigned_address: None,
            qm_queue: VecDeque::new(),
            dead: false,
            replaced: false,
            xauth: None,
        }
    }

    /// Finds (or for MM1, creates) the SA a datagram belongs to.
    fn find_sa(
        &mut self,
        h: &Header,
        local: SocketAddr,
        remote: SocketAddr,
        now: Instant,
        data: &[u8],
    ) -> Option<IkeSaId> {
        let key = (h.initiator_cookie, h.responder_cookie);
        if let Some(&id) = self.by_cookies.get(&key) {
            return Some(id);
        }
        if h.responder_cookie == [0; 8] {
            if let Some(&id) = self.half_open.get(&(h.initiator_cookie, remote)) {
                return Some(id);
            }
            if h.exchange == ExchangeType::MAIN && h.message_id == 0 {
                return self.accept_mm1(now, local, remote, h, data);
            }
            // A (plaintext) notify answering our MM1 carries no responder cookie.
            if let Some(&id) = self.by_icookie.get(&h.initiator_cookie) {
                return Some(id);
            }
            self.counters.dropped_unknown_sa += 1;
            debug!(%remote, exchange = ?h.exchange, "dropped: no SA and not a Main Mode start");
            return None;
        }
        if let Some(&id) = self.by_icookie.get(&h.initiator_cookie)
            && self
                .sas
                .get(&id)
                .is_some_and(|s| s.state == P1State::Mm1Sent)
        {
            return Some(id);
        }
        self.counters.dropped_unknown_sa += 1;
        debug!(%remote, icookie = %HexFmt(&h.initiator_cookie), rcookie = %HexFmt(&h.responder_cookie), exchange = ?h.exchange, "dropped: unknown SA");
        None
    }

    /// The datagram for `data` from this SA's current endpoints, with the non-ESP marker on
    /// the NAT-T port.
    pub(crate) fn transmit(&mut self, sa: IkeSaId, data: Vec<u8>) {
        let Some(s) = self.sas.get(&sa) else { return };
        let (local, remote) = (s.local, s.remote);
        let data = if local.port() == self.config.natt_port {
            let mut d = Vec::with_capacity(data.len() + 4);
            d.extend_from_slice(&[0; 4]);
            d.extend_from_slice(&data);
            d
        } else {
            data
        };
        self.transmits.push_back(Transmit {
            local,
            remote,
            data,
        });
    }

    /// Sends a plaintext Informational with one Notify (before keys exist).
    pub(crate) fn send_plain_notify(
        &mut self,
        local: SocketAddr,
        remote: SocketAddr,
        h: &Header,
        notify: isakmp::NotifyType,
    ) {
        let header = Header {
            initiator_cookie: h.initiator_cookie,
            responder_cookie: h.responder_cookie,
            next_payload: isakmp::PayloadType::NONE,
            version: isakmp::ISAKMP_VERSION,
            exchange: ExchangeType::INFORMATIONAL,
            flags: isakmp::Flags(0),
            message_id: 0,
            length: 0,
        };
        let n = Payload::Notify(isakmp::NotifyPayload {
            doi: isakmp::ipsec::DOI_IPSEC,
            protocol: isakmp::ProtocolId::ISAKMP,
            notify_type: notify,
            spi: [h.initiator_cookie, h.responder_cookie].concat(),
            data: Vec::new(),
        });
        let data = isakmp::Message {
            header,
            payloads: vec![n],
        }
        .emit();
        let data = if local.port() == self.config.natt_port {
            [&[0u8; 4][..], &data].concat()
        } else {
            data
        };
        self.transmits.push_back(Transmit {
            local,
            remote,
            data,
        });
    }

    fn sa_timers(&mut self, now: Instant, id: IkeSaId) {
        let rt = self.config.retransmit;
        let Some(sa) = self.sas.get_mut(&id) else {
            return;
        };
        // Phase-1 retransmission or give-up. Past its time budget (the clock may leap, as
        // after a suspend) the exchange is over even if a retransmission is due too:
        // retransmitting would leave the budget's deadline behind, in the past.
        if sa.state != P1State::Established {
            if sa.p1_exchange.expires_at <= now {
                let reason = sa.p1.hint.clone().unwrap_or(FailReason::Timeout);
                self.fail_ike(id, reason);
                return;
            }
            if sa.p1_exchange.retransmit_at.is_some_and(|t| t <= now) {
                if sa.p1_exchange.backoff(now, &rt) {
                    if let Some(d) = sa.p1_exchange.last_sent.clone() {
                        self.counters.retransmits_sent += 1;
                        debug!(sa = %id, state = %sa.state, "retransmitting phase-1 message");
                        self.transmit(id, d);
                    }
                } else {
                    let reason = sa.p1.hint.clone().unwrap_or(FailReason::Timeout);
                    self.fail_ike(id, reason);
                    return;
                }
            }
            return;
        }
        // XAUTH must be over in time (draft-ietf-ipsec-isakmp-xauth-06 leaves it to us).
        if sa
            .xauth
            .as_ref()
            .is_some_and(|x| x.running() && x.deadline <= now)
        {
            self.xauth_timed_out(now, id);
            return;
        }
        // Exchanges.
        let mut resend = Vec::new();
        let mut failed = Vec::new();
        let mut forget = Vec::new();
        for (&mid, ex) in &mut sa.exchanges {
            if ex.expires_at <= now {
                // A request past its time budget has failed (as above); anything else is
                // forgotten.
                if ex.retransmit_at.is_some() {
                    failed.push(mid);
                } else {
                    forget.push(mid);
                }
            } else if ex.retransmit_at.is_some_and(|t| t <= now) {
                if ex.backoff(now, &rt) {
                    if let Some(d) = &ex.last_sent {
                        resend.push(d.clone());
                    }
                } else {
                    failed.push(mid);
                }
            }
        }
        for d in resend {
            self.counters.retransmits_sent += 1;
            self.transmit(id, d);
        }
        for mid in forget {
            if let Some(sa) = self.sas.get_mut(&id)
                && let Some(ex) = sa.exchanges.remove(&mid)
                && let Kind::CfgAwaitingAddress { request, .. } = ex.kind
            {
                debug!(sa = %id, request, "address request expired unanswered");
            }
        }
        // An established SA is mostly idle: give back the table of its finished exchanges.
        if let Some(sa) = self.sas.get_mut(&id)
            && sa.exchanges.is_empty()
        {
            sa.exchanges.shrink_to_fit();
        }
        for mid in failed {
            self.exchange_timed_out(now, id, mid);
        }
        self.lifetime_timers(now, id);
        self.dpd_timer(now, id);
    }

    fn exchange_timed_out(&mut self, now: Instant, id: IkeSaId, mid: u32) {
        let Some(sa) = self.sas.get_mut(&id) else {
            return;
        };
        let Some(ex) = sa.exchanges.remove(&mid) else {
            return;
        };
        match ex.kind {
            Kind::QmInitiated(q) => {
                self.spis.remove(&q.spi_in);
                self.counters.child_failed += 1;
                warn!(sa = %id, msg_id = mid, "Quick Mode timed out");
                self.events.push_back(Event::ChildSaFailed {
                    sa: id,
                    request: Some(q.request_id),
                    reason: FailReason::Timeout,
                });
                self.start_next_quick_mode(now, id);
            }
            Kind::QmResponded(c) => {
                self.spis.remove(&c.child.spi_in);
                debug!(sa = %id, msg_id = mid, "no QM3 received; Quick Mode abandoned");
            }
            Kind::CfgRequested { .. } => {
                warn!(sa = %id, "Mode Config request timed out");
                self.events.push_back(Event::ModeConfigFailed {
                    sa: id,
                    reason: FailReason::Timeout,
                });
            }
            Kind::CfgPushed { .. } => warn!(sa = %id, "CFG_SET not acknowledged"),
            Kind::Dpd { .. } => {
                warn!(sa = %id, "dead peer detection: no answer, deleting the IKE SA");
                self.delete_ike(now, id, false, "dead peer");
            }
            Kind::XauthRequested(_) => {
                warn!(sa = %id, "the peer did not answer the XAUTH request");
                self.xauth_timed_out(now, id);
            }
            Kind::XauthStatus { ok: false, .. } => {
                self.xauth_abort(
                    now,
                    id,
                    FailReason::Authentication("XAUTH failed".into()),
                    true,
                );
            }
            Kind::XauthStatus { ok: true, .. } => {
                warn!(sa = %id, "XAUTH status OK not acknowledged");
            }
            Kind::Phase1 | Kind::CfgAwaitingAddress { .. } | Kind::Done => {}
        }
    }

    pub(crate) fn fail_ike(&mut self, id: IkeSaId, reason: FailReason) {
        if let Some(sa) = self.sas.get_mut(&id) {
            if sa.dead {
                return;
            }
            sa.dead = true;
            self.counters.ike_failed += 1;
            warn!(sa = %id, peer = %sa.peer_label(), state = %sa.state, %reason, "phase 1 failed");
            self.events.push_back(Event::IkeSaFailed { sa: id, reason });
        }
    }

    /// Removes SAs marked dead, with their indexes and SPIs.
    pub(crate) fn reap(&mut self, _now: Instant) {
        for id in self.sas.take_dead() {
            let Some(sa) = self.sas.remove(&id) else {
                continue;
            };
            self.by_cookies.remove(&(sa.cookie_i, sa.cookie_r));
            if self.by_icookie.get(&sa.cookie_i) == Some(&id) {
                self.by_icookie.remove(&sa.cookie_i);
            }
            if self.half_open.remove(&(sa.cookie_i, sa.remote)).is_some() {
                self.release_half_open(sa.remote.ip());
            }
            for c in &sa.children {
                self.spis.remove(&c.spi_in);
            }
            for ex in sa.exchanges.values() {
                match &ex.kind {
                    Kind::QmInitiated(q) => {
                        self.spis.remove(&q.spi_in);
                    }
                    Kind::QmResponded(c) => {
                        self.spis.remove(&c.child.spi_in);
                    }
                    _ => {}
                }
            }
        }
    }

    pub(crate) fn release_half_open(&mut self, ip: IpAddr) {
        if let Some(n) = self.half_open_per_ip.get_mut(&ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.half_open_per_ip.remove(&ip);
            }
        }
    }

    /// The number of responder SAs still in phase 1.
    pub fn half_open_count(&self) -> usize {
        self.half_open.len()
    }
}

/// Internals for the fuzz targets (`fuzz/`, built with `--cfg fuzzing`; style.md §3.16).
#[allow(unexpected_cfgs)]
mod fuzzing {
    #[cfg(fuzzing)]
    impl super::Engine {
        /// The number of exchanges (message ID ≠ 0) held over all SAs.
        #[doc(hidden)]
        pub fn fuzz_exchange_count(&self) -> usize {
            self.sas.values().map(|s| s.exchanges.len()).sum()
        }
    }

    #[cfg(any(test, fuzzing))]
    impl super::Engine {
        /// The next deadline by a scan of every SA (what the deadline index must answer).
        #[doc(hidden)]
        pub fn fuzz_deadline_scan(&self) -> Option<std::time::Instant> {
            self.sas
                .values()
                .filter_map(|sa| crate::sa_table::deadline(sa, self.config.dpd_delay))
                .min()
        }
    }
}

/// Information about one IKE SA, for status output.
#[derive(Clone, Debug)]
pub struct IkeSaInfo {
    /// Phase-1 state name.
    pub state: String,
    /// Whether phase 1 completed.
    pub established: bool,
    /// Whether we initiated.
    pub initiator: bool,
    /// Our endpoint.
    pub local: SocketAddr,
    /// The peer's endpoint.
    pub remote: SocketAddr,
    /// The peer's authenticated identity.
    pub remote_id: Option<crate::Identity>,
    /// The XAUTH user (ours as client, the peer's as edge), once known.
    pub xauth_user: Option<String>,
    /// The suite.
    pub proposal: Option<String>,
    /// NAT traversal in use.
    pub nat: bool,
    /// Initiator cookie.
    pub cookie_i: [u8; 8],
    /// Responder cookie.
    pub cookie_r: [u8; 8],
}

/// What a datagram received on the NAT-T port is (RFC 3948 §2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NattKind {
    /// IKE: starts with the non-ESP marker.
    Ike,
    /// ESP in UDP: starts with a non-zero SPI.
    Esp,
    /// A NAT keepalive (the single byte 0xFF).
    Keepalive,
    /// Anything else.
    Invalid,
}

/// Sorts a datagram received on UDP 4500.
pub fn classify_natt(data: &[u8]) -> NattKind {
    match data {
        [0xff] => NattKind::Keepalive,
        [0, 0, 0, 0, ..] if data.len() > 4 => NattKind::Ike,
        [a, b, c, d, ..] if data.len() >= 8 && [*a, *b, *c, *d] != [0; 4] => NattKind::Esp,
        _ => NattKind::Invalid,
    }
}

pub(crate) const fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}
