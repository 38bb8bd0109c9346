//! Shared harness for the IKEv1 engine fuzz targets (`ike_responder`, `ike_pair`) and the seed
//! generator (`examples/gen_ike_seeds.rs`).
//!
//! Everything is deterministic for a given input: the engines draw from `SeededRng`, phase 1
//! uses MODP-2048 wherever both sides are engines (ring's ECP/X25519 key generation reads the
//! OS RNG, MODP draws from the engine's `Rng`), the clock is virtual, and every batch of
//! datagrams one call produces is sorted by its bytes (the engine keeps its SAs and exchanges in
//! `HashMap`s, so the order of datagrams produced by one call is not stable between runs).
//!
//! Invariants checked here (a failed assertion is the crash libFuzzer reports):
//! * every datagram an engine sends parses with `isakmp::Header::parse`, has an ISAKMP length
//!   equal to its size (after the non-ESP marker, which it carries exactly on the NAT-T port),
//!   parses as a whole message when it is plaintext, and is a whole number of cipher blocks
//!   when encrypted; it goes from one of the engine's own addresses to an address it heard from;
//! * the counters never decrease;
//! * `half_open_count() <= max_half_open`, and a Main Mode start is refused for the half-open
//!   limit only when at least `min(max_half_open, max_half_open_per_peer)` SAs are half open;
//! * the SA count stays bounded (by the datagrams fed, and by a small constant for the pair);
//! * an established child SA has keys of the proposal's lengths, its SPI is not reported twice
//!   while alive, and it mirrors the other engine's SA of the same SPI (SPIs, keys, suite, mode,
//!   selectors) whenever both engines have it.
#![allow(dead_code, unexpected_cfgs)]

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use ikev1::crypto::SeededRng;
use ikev1::{
    ChildRequest, ChildSa, Config, Counters, Engine, EspProposal, Event, Identity, IkeProposal,
    IkeSaId, LocalAuth, Mode, ModeConfig, PeerAuth, PeerConfig, TrafficSelector, Transmit,
    XauthCredentials, XauthResponse, XauthType,
};

pub const NATT_PORT: u16 = 4500;
/// The home agent (responder).
pub const HA_IP: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xff, 0, 0, 0, 0, 1);
/// The mobile node (initiator).
pub const MN_IP: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xff, 0, 0, 0, 0, 2);
/// Where the responder target's datagrams come from (flags bits 1-2; 3 maps to 0).
pub const PEERS: [IpAddr; 3] = [
    IpAddr::V6(MN_IP),
    IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0xff, 0, 0, 0, 0, 3)),
    IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)),
];
/// A source port as a NAT would map it.
pub const NAT_MAPPED_PORT: u16 = 61001;
/// Virtual clock advance before a record, by the high nibble of its flags.
pub const ADVANCE_MS: [u64; 16] = [
    0, 0, 0, 0, 1, 10, 100, 500, 1_000, 2_000, 5_000, 10_000, 30_000, 60_000, 300_000, 3_600_000,
];
pub const HA_SEED: u64 = 0x4841_0001;
pub const MN_SEED: u64 = 0x4d4e_0001;

fn psk(s: &str) -> PeerAuth {
    PeerAuth::Psk(s.as_bytes().to_vec().into())
}

/// The XAUTH user the home agent's driver accepts, and its password.
pub const XAUTH_USER: &str = "joe";
pub const XAUTH_PASSWORD: &[u8] = b"xauth-pass";

/// The home agent driver's XAUTH verdict (in place of RADIUS).
pub fn xauth_ok(user: &str, response: &XauthResponse) -> bool {
    user == XAUTH_USER && response.matches_password(XAUTH_PASSWORD)
}

/// The responder (home agent): PSK peers, two of them (mn4, mn5) with XAUTH (Generic,
/// RADIUS-CHAP: method XAUTHInitPreShared), phase-1 suites with MODP-2048 and ECP-256, ESP with
/// and without PFS, small half-open limits, DPD and short child lifetimes.
pub fn ha_config() -> Config {
    let mut c = Config::new(Identity::parse("ha.example.com"), LocalAuth::Psk);
    c.ike_proposals = [
        "aes128-sha256-ecp256",
        "aes128-sha256-modp2048",
        "aes256-sha1-modp2048",
    ]
    .iter()
    .map(|s| IkeProposal::parse(s, false).expect("valid"))
    .collect();
    c.esp_proposals = ["aes128gcm16", "aes128-sha256", "aes128-sha1-modp2048"]
        .iter()
        .map(|s| EspProposal::parse(s, false).expect("valid"))
        .collect();
    c.peers = vec![
        PeerConfig {
            identity: Identity::parse("mn2@example.com"),
            auth: psk("other-secret"),
            addrs: vec![],
        },
        PeerConfig {
            identity: Identity::parse("mn1@example.com"),
            auth: psk("secret"),
            addrs: vec![],
        },
        PeerConfig {
            identity: Identity::parse("mn3@example.com"),
            auth: psk("secret"),
            addrs: vec![PEERS[1]],
        },
        PeerConfig {
            identity: Identity::parse("mn4@example.com"),
            auth: PeerAuth::XauthPsk {
                psk: b"xauth-secret".to_vec().into(),
                xauth: XauthType::Generic,
            },
            addrs: vec![],
        },
        PeerConfig {
            identity: Identity::parse("mn5@example.com"),
            auth: PeerAuth::XauthPsk {
                psk: b"xauth-secret".to_vec().into(),
                xauth: XauthType::RadiusChap,
            },
            addrs: vec![],
        },
    ];
    c.dpd_delay = Some(Duration::from_secs(30));
    c.child_lifetime = Duration::from_secs(300);
    c.max_half_open = 6;
    c.max_half_open_per_peer = 2;
    c
}

/// Knobs of the initiator (mobile node) configuration.
#[derive(Clone, Copy, Debug, Default)]
pub struct MnVariant {
    /// Pretend a NAT: both sides float to 4500 and use UDP encapsulation.
    pub force_encap: bool,
    /// Dead peer detection every 10 s.
    pub dpd: bool,
    /// Short lifetimes (phase 1 120 s, children 60 s): rekeying and re-authentication.
    pub short_lifetimes: bool,
    /// ESP: AES-CBC/SHA-256 instead of AES-GCM.
    pub cbc: bool,
    /// ESP with PFS (MODP-2048; deterministic).
    pub pfs: bool,
    /// PSK + XAUTH (XAUTHInitPreShared) of this type: mn4 (Generic) or mn5 (RADIUS-CHAP).
    pub xauth: Option<XauthType>,
    /// With `xauth`: a password the home agent refuses.
    pub xauth_wrong: bool,
}

pub fn mn_config(v: MnVariant) -> Config {
    let mut c = Config::new(Identity::parse("mn1@example.com"), LocalAuth::Psk);
    c.ike_proposals = vec![IkeProposal::parse("aes128-sha256-modp2048", false).expect("valid")];
    let esp = match (v.cbc, v.pfs) {
        (_, true) => "aes128-sha1-modp2048",
        (true, false) => "aes128-sha256",
        (false, false) => "aes128gcm16",
    };
    c.esp_proposals = vec![EspProposal::parse(esp, false).expect("valid")];
    c.peers = vec![PeerConfig {
        identity: Identity::parse("ha.example.com"),
        auth: psk("secret"),
        addrs: vec![],
    }];
    if let Some(t) = v.xauth {
        let password: &[u8] = if v.xauth_wrong {
            b"wrong"
        } else {
            XAUTH_PASSWORD
        };
        c.local_id = Identity::parse(match t {
            XauthType::Generic => "mn4@example.com",
            XauthType::RadiusChap => "mn5@example.com",
        });
        c.local_auth = LocalAuth::XauthPsk(XauthCredentials::new(XAUTH_USER, password));
        c.peers[0].auth = psk("xauth-secret");
    }
    c.force_encap = v.force_encap;
    if v.dpd {
        c.dpd_delay = Some(Duration::from_secs(10));
    }
    if v.short_lifetimes {
        c.ike_lifetime = Duration::from_secs(120);
        c.child_lifetime = Duration::from_secs(60);
        c.rekey_margin = Duration::from_secs(20);
    }
    c
}

/// The two Quick Modes of the bootstrap (RFC 3776): transport for the Mobility Header between
/// the home address and the HA, tunnel for everything from the home address.
pub fn rfc3776_requests(hoa: Ipv6Addr) -> [ChildRequest; 2] {
    [
        ChildRequest {
            mode: Mode::Transport,
            local_ts: TrafficSelector::host(hoa.into()).with_protocol(135, 0),
            remote_ts: TrafficSelector::host(HA_IP.into()).with_protocol(135, 0),
        },
        ChildRequest {
            mode: Mode::Tunnel,
            local_ts: TrafficSelector::host(hoa.into()),
            remote_ts: TrafficSelector::parse("::/0").expect("valid"),
        },
    ]
}

/// The home agent's small address pool: `None` once it is empty.
pub fn pool_answer(next: &mut u16) -> Option<ModeConfig> {
    if *next >= 8 {
        return None;
    }
    let a = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x1000 + *next);
    *next += 1;
    Some(ModeConfig {
        address: Some(a),
        dns: vec![Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x53)],
        expiry: Some(Duration::from_secs(3600)),
        ..ModeConfig::default()
    })
}

// ---------------------------------------------------------------------------------------------
// Checks

/// The ISAKMP part of a datagram sent or received on `local_port`.
pub fn isakmp_part(local_port: u16, data: &[u8]) -> &[u8] {
    if local_port == NATT_PORT {
        data.strip_prefix(&[0u8; 4]).unwrap_or(data)
    } else {
        data
    }
}

/// A datagram an engine sent must be well framed.
pub fn check_transmit(who: &str, t: &Transmit) {
    let body = if t.local.port() == NATT_PORT {
        assert!(
            t.data.len() > 4 && t.data[..4] == [0; 4],
            "{who} sent a datagram on the NAT-T port without the non-ESP marker"
        );
        &t.data[4..]
    } else {
        &t.data[..]
    };
    let h = isakmp::Header::parse(body)
        .unwrap_or_else(|e| panic!("{who} sent a datagram whose header does not parse: {e}"));
    assert_eq!(
        h.length as usize,
        body.len(),
        "{who} sent an ISAKMP length that differs from the datagram size"
    );
    if h.flags.contains(isakmp::Flags::ENCRYPTION) {
        let ct = body.len() - isakmp::HEADER_LEN;
        assert!(
            ct > 0 && ct % 8 == 0,
            "{who} sent an encrypted message of {ct} bytes (not whole blocks)"
        );
    } else if let Err(e) = isakmp::Message::parse(body) {
        panic!("{who} sent a plaintext message that does not parse: {e}");
    }
}

fn counter_values(c: &Counters) -> [u64; 16] {
    [
        c.received,
        c.dropped_malformed,
        c.dropped_unknown_sa,
        c.dropped_auth,
        c.dropped_unexpected,
        c.dropped_half_open_limit,
        c.retransmits_answered,
        c.retransmits_sent,
        c.ike_established,
        c.ike_failed,
        c.child_established,
        c.child_failed,
        c.dropped_xauth_pending,
        c.xauth_succeeded,
        c.xauth_failed,
        c.xauth_refused_limit,
    ]
}

/// Counters only increase.
pub fn check_counters(who: &str, before: &Counters, after: &Counters) {
    let (b, a) = (counter_values(before), counter_values(after));
    for i in 0..b.len() {
        assert!(
            a[i] >= b[i],
            "{who}: counter {i} went down: {before:?} -> {after:?}"
        );
    }
}

/// A child SA's keys have the lengths its suite needs.
pub fn check_child_keys(who: &str, c: &ChildSa) {
    let p = &c.proposal;
    let integ = p.integ.map_or(0, |i| i.key_len());
    for (dir, k) in [("in", &c.keys_in), ("out", &c.keys_out)] {
        assert_eq!(
            k.encr.len(),
            p.encr.key_len(),
            "{who}: {dir} encr key length"
        );
        assert_eq!(k.integ.len(), integ, "{who}: {dir} integ key length");
    }
}

/// A refused Main Mode start must be justified by the half-open count before the call.
pub fn check_half_open_refusal(e: &Engine, before: &Counters, half_open_before: usize) {
    let c = e.config();
    if e.counters().dropped_half_open_limit > before.dropped_half_open_limit {
        assert!(
            half_open_before >= c.max_half_open.min(c.max_half_open_per_peer),
            "MM1 refused for the half-open limit with only {half_open_before} SAs half open \
             (limits {} in all, {} per peer): the per-address count leaked",
            c.max_half_open,
            c.max_half_open_per_peer
        );
    }
    assert!(
        e.half_open_count() <= c.max_half_open,
        "half-open count over the limit"
    );
}

/// Exchanges the engine holds over all its SAs (a `cfg(fuzzing)` accessor in the engine).
#[cfg(fuzzing)]
pub fn exchange_count(e: &Engine) -> usize {
    e.fuzz_exchange_count()
}

#[cfg(not(fuzzing))]
pub fn exchange_count(_e: &Engine) -> usize {
    0
}

/// The engine's deadline index answers what a scan of every SA answers.
#[cfg(fuzzing)]
pub fn check_deadline_index(e: &Engine) {
    assert_eq!(
        e.poll_timeout(),
        e.fuzz_deadline_scan(),
        "poll_timeout differs from the scan of every SA"
    );
}

#[cfg(not(fuzzing))]
pub fn check_deadline_index(_e: &Engine) {}

/// Runs the engine's timers at `now` when due; afterwards no deadline is left at or before
/// `now` (a deadline in the past would make the driver spin).
pub fn run_timers(e: &mut Engine, now: Instant) {
    check_deadline_index(e);
    if e.poll_timeout().is_some_and(|t| t <= now) {
        e.handle_timeout(now);
        check_deadline_index(e);
        if let Some(t) = e.poll_timeout() {
            assert!(
                t > now,
                "poll_timeout {t:?} not after handle_timeout({now:?})"
            );
        }
    }
}

/// The engine keeps at most `MAX_EXCHANGES` (64, `crates/ikev1/src/phase2.rs`) exchanges per
/// IKE SA, "so that a peer cannot make us hold unbounded state"; allow a few of our own requests
/// (Quick Mode, Mode Config, DPD) on top.
pub const EXCHANGES_PER_SA: usize = 64 + 8;

pub fn check_exchange_bound(who: &str, e: &Engine) {
    let (ex, sas) = (exchange_count(e), e.ike_sas().len());
    assert!(
        ex <= sas * EXCHANGES_PER_SA,
        "{who} holds {ex} exchanges on {sas} IKE SAs"
    );
}

/// Drains an engine's datagrams as one batch sorted by bytes.
fn drain_sorted(e: &mut Engine) -> Vec<Transmit> {
    let mut v = Vec::new();
    while let Some(t) = e.poll_transmit() {
        v.push(t);
    }
    v.sort_by(|a, b| a.data.cmp(&b.data));
    v
}

// ---------------------------------------------------------------------------------------------
// Responder target

/// One record of the responder target's input: `flags`, a big-endian `u16` whose low 14 bits
/// are the length and whose bit 15 asks to patch the responder cookie and bit 14 the ISAKMP
/// length field, then the datagram. A record of length 0 followed by a byte `k` replays an
/// earlier datagram instead: number `k & 0x7f` (counting from the first, modulo how many there
/// are; the first 128 are kept), with a fresh initiator cookie when `k & 0x80` (a new phase 1 of
/// the same shape).
///
/// Flags: bit 0 local port 4500 (else 500); bits 1-2 the source address ([`PEERS`], 3 is 0);
/// bit 3 the source port is [`NAT_MAPPED_PORT`] (else the same as the local port); bits 4-7
/// advance the clock by [`ADVANCE_MS`] first.
#[derive(Clone, Debug)]
pub struct Record<'a> {
    pub flags: u8,
    pub fix_cookie: bool,
    pub fix_len: bool,
    pub data: &'a [u8],
    /// A replay of an earlier datagram (`data` is empty).
    pub replay: Option<u8>,
}

impl Record<'_> {
    pub fn local(&self) -> SocketAddr {
        let port = if self.flags & 1 != 0 { NATT_PORT } else { 500 };
        SocketAddr::new(IpAddr::V6(HA_IP), port)
    }

    pub fn remote(&self) -> SocketAddr {
        let ip = PEERS[usize::from((self.flags >> 1) & 3) % PEERS.len()];
        let port = if self.flags & 8 != 0 {
            NAT_MAPPED_PORT
        } else {
            self.local().port()
        };
        SocketAddr::new(ip, port)
    }

    pub fn advance(&self) -> Duration {
        Duration::from_millis(ADVANCE_MS[usize::from(self.flags >> 4)])
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        let len = u16::try_from(self.data.len()).expect("short datagram");
        assert!(len < 0x4000);
        let word =
            len | if self.fix_cookie { 0x8000 } else { 0 } | if self.fix_len { 0x4000 } else { 0 };
        out.push(self.flags);
        out.extend_from_slice(&word.to_be_bytes());
        out.extend_from_slice(self.data);
        if let Some(k) = self.replay {
            assert!(self.data.is_empty());
            out.push(k);
        }
    }
}

/// Splits the input into records; a truncated last record takes what is left.
pub fn parse_records(mut input: &[u8]) -> Vec<Record<'_>> {
    let mut v = Vec::new();
    while input.len() >= 3 {
        let flags = input[0];
        let word = u16::from_be_bytes([input[1], input[2]]);
        let len = usize::from(word & 0x3fff).min(input.len() - 3);
        let replay = (len == 0).then(|| input.get(3).copied()).flatten();
        v.push(Record {
            flags,
            fix_cookie: word & 0x8000 != 0,
            fix_len: word & 0x4000 != 0,
            data: &input[3..3 + len],
            replay,
        });
        input = &input[3 + len + usize::from(replay.is_some())..];
    }
    v
}

/// A responder engine fed records, with its invariants checked after every step.
pub struct Responder {
    pub engine: Engine,
    pub t0: Instant,
    pub now: Instant,
    /// Datagrams handed to the engine.
    pub fed: usize,
    /// Source addresses the engine heard from.
    heard: HashSet<SocketAddr>,
    /// Responder cookie by initiator cookie, learned from what the engine sent.
    rcookies: HashMap<[u8; 8], [u8; 8]>,
    counters: Counters,
    pool_next: u16,
    children: HashMap<u32, ChildSa>,
    /// The first 128 datagrams fed, for replay records.
    history: Vec<Vec<u8>>,
    fresh_cookies: u8,
}

impl Default for Responder {
    fn default() -> Self {
        Self::new()
    }
}

impl Responder {
    pub fn new() -> Self {
        let t0 = Instant::now();
        Self {
            engine: Engine::new(ha_config(), Box::new(SeededRng::new(HA_SEED))),
            t0,
            now: t0,
            fed: 0,
            heard: HashSet::new(),
            rcookies: HashMap::new(),
            counters: Counters::default(),
            pool_next: 0,
            children: HashMap::new(),
            history: Vec::new(),
            fresh_cookies: 0,
        }
    }

    fn timers(&mut self) {
        run_timers(&mut self.engine, self.now);
    }

    /// Feeds one record; returns what the engine sent in answer (already checked).
    pub fn step(&mut self, r: &Record<'_>) -> Vec<Transmit> {
        self.now += r.advance();
        let mut out = Vec::new();
        self.timers();
        self.after_call(&mut out);
        let (local, remote) = (r.local(), r.remote());
        let mut data = r.data.to_vec();
        let mut fresh = false;
        if let Some(k) = r.replay
            && !self.history.is_empty()
        {
            data = self.history[usize::from(k & 0x7f) % self.history.len()].clone();
            fresh = k & 0x80 != 0;
        }
        let off = if local.port() == NATT_PORT && data.len() >= 4 && data[..4] == [0; 4] {
            4
        } else {
            0
        };
        if fresh && data.len() >= off + 8 {
            self.fresh_cookies = self.fresh_cookies.wrapping_add(1);
            data[off + 7] ^= self.fresh_cookies;
            data[off + 6] ^= 0x5a;
        }
        if r.fix_cookie && data.len() >= off + 16 {
            let ic: [u8; 8] = data[off..off + 8].try_into().expect("8 bytes");
            if let Some(rc) = self.rcookies.get(&ic) {
                data[off + 8..off + 16].copy_from_slice(rc);
            }
        }
        if r.fix_len && data.len() >= off + 28 {
            let len = u32::try_from(data.len() - off).expect("small");
            data[off + 24..off + 28].copy_from_slice(&len.to_be_bytes());
        }
        let before = self.engine.counters().clone();
        let half_open = self.engine.half_open_count();
        self.heard.insert(remote);
        self.fed += 1;
        self.engine.handle_datagram(self.now, local, remote, &data);
        if self.history.len() < 128 {
            self.history.push(data);
        }
        check_half_open_refusal(&self.engine, &before, half_open);
        assert_eq!(self.engine.counters().received, self.fed as u64);
        self.after_call(&mut out);
        out
    }

    /// After the last record: let the timers run out (up to a day of virtual time).
    pub fn finish(&mut self) {
        let end = self.now + Duration::from_secs(86_400);
        for _ in 0..64 {
            match self.engine.poll_timeout() {
                Some(t) if t <= end => {
                    self.now = self.now.max(t);
                    run_timers(&mut self.engine, self.now);
                    let mut sink = Vec::new();
                    self.after_call(&mut sink);
                }
                _ => break,
            }
        }
    }

    /// Drains datagrams and events (answering address requests) and checks the invariants.
    fn after_call(&mut self, out: &mut Vec<Transmit>) {
        loop {
            let batch = drain_sorted(&mut self.engine);
            let mut more = false;
            for t in batch {
                check_transmit("responder", &t);
                assert_eq!(
                    t.local.ip(),
                    IpAddr::V6(HA_IP),
                    "sent from a foreign address"
                );
                assert!(
                    matches!(t.local.port(), 500 | NATT_PORT),
                    "sent from port {}",
                    t.local.port()
                );
                assert!(
                    self.heard.contains(&t.remote),
                    "sent to {} which it never heard from",
                    t.remote
                );
                let body = isakmp_part(t.local.port(), &t.data);
                if let Ok(h) = isakmp::Header::parse(body)
                    && h.responder_cookie != [0; 8]
                {
                    self.rcookies.insert(h.initiator_cookie, h.responder_cookie);
                }
                out.push(t);
            }
            while let Some(e) = self.engine.poll_event() {
                match e {
                    Event::AddressRequested { sa, request, .. } => {
                        let answer = pool_answer(&mut self.pool_next);
                        // The request was raised by the call that just returned: it exists.
                        self.engine
                            .answer_address_request(self.now, sa, request, answer)
                            .expect("answering a fresh address request");
                        more = true;
                    }
                    Event::XauthCredentials {
                        sa, user, response, ..
                    } => {
                        // Likewise, the SA awaits exactly this verdict.
                        self.engine
                            .xauth_verdict(self.now, sa, xauth_ok(&user, &response))
                            .expect("a verdict on fresh XAUTH credentials");
                        more = true;
                    }
                    Event::ChildSaEstablished(c) => {
                        check_child_keys("responder", &c);
                        assert!(
                            self.children.insert(c.spi_in, *c).is_none(),
                            "responder reported an SPI twice"
                        );
                    }
                    Event::ChildSaDeleted { spi_in, .. } => {
                        self.children.remove(&spi_in);
                    }
                    _ => {}
                }
            }
            if !more {
                break;
            }
        }
        check_counters("responder", &self.counters, self.engine.counters());
        self.counters = self.engine.counters().clone();
        let sas = self.engine.ike_sas().len();
        assert!(sas <= self.fed, "{sas} SAs after {} datagrams", self.fed);
        assert!(
            self.engine.half_open_count() <= self.engine.config().max_half_open,
            "half-open count over the limit"
        );
        check_exchange_bound("responder", &self.engine);
        let ex = exchange_count(&self.engine);
        assert!(
            ex <= 3 * self.fed + 8,
            "{ex} exchanges after {} datagrams",
            self.fed
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Pair target

/// A cursor over the fuzz input; exhausted means "deliver normally".
pub struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Self { data }
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.data.split_first()?;
        self.data = rest;
        Some(b)
    }

    pub fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.byte().unwrap_or(0), self.byte().unwrap_or(0)])
    }

    pub fn bytes(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.data.len());
        let (a, b) = self.data.split_at(n);
        self.data = b;
        a
    }
}

/// Clock steps of the pair target (op bit 3 set, bits 4-6 index).
pub const PAIR_ADVANCE_MS: [u64; 8] = [1, 100, 1_000, 3_000, 10_000, 30_000, 70_000, 200_000];
/// A source address the link may substitute (op bit 7): a NAT rebinding or a spoofer.
pub const ALT_SRC: SocketAddr = SocketAddr::new(
    IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0xff, 1, 0, 0, 0, 2)),
    NAT_MAPPED_PORT,
);
const MAX_STEPS: u32 = 4_000;
/// Virtual time the timers run after the input is used up: longer than a request's whole
/// retransmission schedule (47 s by default) and than the responder's phase-1 wait (30 s).
const IDLE_AFTER_INPUT: Duration = Duration::from_secs(150);
const MAX_SAS: usize = 4;

/// What the link does with the datagram at the head of the wire (op bits 0-2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkOp {
    Deliver,
    Drop,
    Duplicate,
    Mutate,
    Replace,
    ReplaceBody,
    Reorder,
}

impl LinkOp {
    pub fn from_byte(b: u8) -> Self {
        match b & 7 {
            0 | 1 => Self::Deliver,
            2 => Self::Drop,
            3 => Self::Duplicate,
            4 => Self::Mutate,
            5 => Self::Replace,
            6 => Self::ReplaceBody,
            _ => Self::Reorder,
        }
    }
}

/// Initiator and responder engines over a steered in-memory link.
pub struct Pair {
    pub mn: Engine,
    pub ha: Engine,
    pub t0: Instant,
    pub now: Instant,
    /// (to the HA, datagram).
    pub wire: VecDeque<(bool, Transmit)>,
    pub steps: u32,
    mn_counters: Counters,
    ha_counters: Counters,
    mn_children: HashMap<u32, ChildSa>,
    ha_children: HashMap<u32, ChildSa>,
    mn_heard: HashSet<SocketAddr>,
    ha_heard: HashSet<SocketAddr>,
    cfg_requested: bool,
    children_started: bool,
    pool_next: u16,
    /// Milestones reached (for the seed generator's report).
    pub mn_established: Option<IkeSaId>,
    pub hoa: Option<Ipv6Addr>,
    pub children_up: usize,
}

pub fn mn_addr() -> SocketAddr {
    SocketAddr::new(IpAddr::V6(MN_IP), 500)
}

pub fn ha_addr() -> SocketAddr {
    SocketAddr::new(IpAddr::V6(HA_IP), 500)
}

impl Pair {
    pub fn new(v: MnVariant) -> Self {
        let t0 = Instant::now();
        let mut ha = ha_config();
        ha.max_half_open = 8;
        ha.max_half_open_per_peer = 3;
        Self {
            mn: Engine::new(mn_config(v), Box::new(SeededRng::new(MN_SEED))),
            ha: Engine::new(ha, Box::new(SeededRng::new(HA_SEED))),
            t0,
            now: t0,
            wire: VecDeque::new(),
            steps: 0,
            mn_counters: Counters::default(),
            ha_counters: Counters::default(),
            mn_children: HashMap::new(),
            ha_children: HashMap::new(),
            mn_heard: HashSet::from([ha_addr()]),
            ha_heard: HashSet::new(),
            cfg_requested: false,
            children_started: false,
            pool_next: 0,
            mn_established: None,
            hoa: None,
            children_up: 0,
        }
    }

    /// The whole `ike_pair` target: the first byte picks the initiator's variant (bit 0 forced
    /// NAT-T encapsulation, bit 1 DPD, bit 2 short lifetimes, bit 3 AES-CBC ESP, bit 4 PSK +
    /// XAUTH, bit 5 with it RADIUS-CHAP instead of Generic, bit 6 with it a wrong password),
    /// the rest steers the link.
    pub fn fuzz(data: &[u8]) -> Self {
        let mut input = Input::new(data);
        let v = input.byte().unwrap_or(0);
        let variant = MnVariant {
            force_encap: v & 1 != 0,
            dpd: v & 2 != 0,
            short_lifetimes: v & 4 != 0,
            cbc: v & 8 != 0,
            pfs: false,
            xauth: (v & 0x10 != 0).then_some(if v & 0x20 != 0 {
                XauthType::RadiusChap
            } else {
                XauthType::Generic
            }),
            xauth_wrong: v & 0x40 != 0,
        };
        let mut p = Self::new(variant);
        p.run(&mut input);
        p
    }

    /// Runs the bootstrap with the link steered by `input`.
    pub fn run(&mut self, input: &mut Input<'_>) {
        self.mn
            .initiate(self.now, 0, mn_addr(), ha_addr())
            .expect("peer 0 exists");
        self.after_call();
        // Once the input is used up, timers still run for a while so that retransmissions
        // finish and the run ends.
        let mut exhausted_at: Option<Instant> = None;
        loop {
            self.steps += 1;
            if self.steps > MAX_STEPS {
                break;
            }
            if input.is_empty() && exhausted_at.is_none() {
                exhausted_at = Some(self.now);
            }
            if let Some((to_ha, t)) = self.wire.pop_front() {
                self.link(input, to_ha, t);
                continue;
            }
            // Nothing in flight: jump to the next timer.
            let next = [self.mn.poll_timeout(), self.ha.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(t) if exhausted_at.is_none_or(|x| t <= x + IDLE_AFTER_INPUT) => {
                    self.now = self.now.max(t);
                    self.timers();
                }
                _ => break,
            }
        }
    }

    fn timers(&mut self) {
        run_timers(&mut self.mn, self.now);
        run_timers(&mut self.ha, self.now);
        self.after_call();
    }

    /// Applies one link operation to the datagram taken off the wire.
    fn link(&mut self, input: &mut Input<'_>, to_ha: bool, t: Transmit) {
        let Some(op) = input.byte() else {
            self.deliver(to_ha, t.local, t.remote, &t.data);
            return;
        };
        if op & 0x08 != 0 {
            self.now += Duration::from_millis(PAIR_ADVANCE_MS[usize::from((op >> 4) & 7)]);
            self.timers();
        }
        let src = if op & 0x80 != 0 { ALT_SRC } else { t.local };
        match LinkOp::from_byte(op) {
            LinkOp::Deliver => self.deliver(to_ha, src, t.remote, &t.data),
            LinkOp::Drop => {}
            LinkOp::Duplicate => {
                self.deliver(to_ha, src, t.remote, &t.data);
                self.wire.push_back((to_ha, t));
            }
            LinkOp::Mutate => {
                let mut d = t.data.clone();
                let flips = 1 + input.byte().unwrap_or(0) % 4;
                for _ in 0..flips {
                    let pos = usize::from(input.u16()) % d.len().max(1);
                    let mask = input.byte().unwrap_or(1) | 1;
                    if let Some(b) = d.get_mut(pos) {
                        *b ^= mask;
                    }
                }
                self.deliver(to_ha, src, t.remote, &d);
            }
            LinkOp::Replace => {
                let n = usize::from(input.u16() & 0x07ff);
                let d = input.bytes(n).to_vec();
                self.deliver(to_ha, src, t.remote, &d);
            }
            LinkOp::ReplaceBody => {
                // Keep the header (and marker), replace what follows, fix the length.
                let off = if t.remote.port() == NATT_PORT { 4 } else { 0 };
                let keep = (off + isakmp::HEADER_LEN).min(t.data.len());
                let n = usize::from(input.u16() & 0x07ff);
                let mut d = t.data[..keep].to_vec();
                d.extend_from_slice(input.bytes(n));
                if d.len() >= off + isakmp::HEADER_LEN {
                    let len = u32::try_from(d.len() - off).expect("small");
                    d[off + 24..off + 28].copy_from_slice(&len.to_be_bytes());
                }
                self.deliver(to_ha, src, t.remote, &d);
            }
            LinkOp::Reorder => self.wire.push_back((to_ha, t)),
        }
    }

    /// Hands a datagram to its receiver: it arrives on `dst` from `src`.
    pub fn deliver(&mut self, to_ha: bool, src: SocketAddr, dst: SocketAddr, data: &[u8]) {
        if to_ha {
            let before = self.ha.counters().clone();
            let half_open = self.ha.half_open_count();
            self.ha_heard.insert(src);
            self.ha.handle_datagram(self.now, dst, src, data);
            check_half_open_refusal(&self.ha, &before, half_open);
        } else {
            self.mn_heard.insert(src);
            self.mn.handle_datagram(self.now, dst, src, data);
        }
        self.now += Duration::from_millis(1);
        self.after_call();
    }

    /// Collects datagrams and events of both engines, runs the bootstrap script and checks
    /// the invariants.
    pub fn after_call(&mut self) {
        loop {
            let mut more = false;
            for t in drain_sorted(&mut self.mn) {
                check_transmit("initiator", &t);
                // The initiator floats to 4500 on its own (RFC 3947 §4): compare addresses only.
                assert!(
                    self.mn_heard.iter().any(|a| a.ip() == t.remote.ip()),
                    "MN sent to {}",
                    t.remote
                );
                self.wire.push_back((true, t));
            }
            for t in drain_sorted(&mut self.ha) {
                check_transmit("responder", &t);
                assert!(self.ha_heard.contains(&t.remote), "HA sent to {}", t.remote);
                self.wire.push_back((false, t));
            }
            while let Some(e) = self.ha.poll_event() {
                match e {
                    Event::AddressRequested { sa, request, .. } => {
                        let answer = pool_answer(&mut self.pool_next);
                        self.ha
                            .answer_address_request(self.now, sa, request, answer)
                            .expect("answering a fresh address request");
                        more = true;
                    }
                    Event::XauthCredentials {
                        sa, user, response, ..
                    } => {
                        self.ha
                            .xauth_verdict(self.now, sa, xauth_ok(&user, &response))
                            .expect("a verdict on fresh XAUTH credentials");
                        more = true;
                    }
                    Event::ChildSaEstablished(c) => {
                        Self::child_up("HA", &mut self.ha_children, &self.mn_children, *c);
                    }
                    Event::ChildSaDeleted { spi_in, .. } => {
                        self.ha_children.remove(&spi_in);
                    }
                    _ => {}
                }
            }
            while let Some(e) = self.mn.poll_event() {
                match e {
                    Event::IkeSaEstablished { sa, .. } => {
                        self.mn_established.get_or_insert(sa);
                        if !self.cfg_requested {
                            self.cfg_requested = true;
                            self.mn
                                .request_mode_config(self.now, sa)
                                .expect("just established");
                            more = true;
                        }
                    }
                    Event::ModeConfigReceived { sa, config } => {
                        if let (Some(hoa), false) = (config.address, self.children_started) {
                            self.children_started = true;
                            self.hoa = Some(hoa);
                            for r in rfc3776_requests(hoa) {
                                // The SA may be gone already; that is not an engine bug.
                                let _ = self.mn.initiate_child(self.now, sa, r);
                            }
                            more = true;
                        }
                    }
                    Event::ChildSaEstablished(c) => {
                        self.children_up += 1;
                        Self::child_up("MN", &mut self.mn_children, &self.ha_children, *c);
                    }
                    Event::ChildSaDeleted { spi_in, .. } => {
                        self.mn_children.remove(&spi_in);
                    }
                    _ => {}
                }
            }
            if !more {
                break;
            }
        }
        check_counters("initiator", &self.mn_counters, self.mn.counters());
        check_counters("responder", &self.ha_counters, self.ha.counters());
        self.mn_counters = self.mn.counters().clone();
        self.ha_counters = self.ha.counters().clone();
        let (m, h) = (self.mn.ike_sas().len(), self.ha.ike_sas().len());
        assert!(m <= MAX_SAS, "initiator holds {m} IKE SAs");
        let ha_bound = self.ha.config().max_half_open + MAX_SAS;
        assert!(h <= ha_bound, "responder holds {h} IKE SAs");
        check_exchange_bound("initiator", &self.mn);
        check_exchange_bound("responder", &self.ha);
    }

    fn child_up(
        who: &str,
        mine: &mut HashMap<u32, ChildSa>,
        theirs: &HashMap<u32, ChildSa>,
        c: ChildSa,
    ) {
        check_child_keys(who, &c);
        if let Some(o) = theirs.get(&c.spi_out) {
            assert_eq!(
                o.spi_out, c.spi_in,
                "{who}: SPIs do not mirror the peer's SA"
            );
            assert_eq!(
                o.proposal, c.proposal,
                "{who}: suite differs from the peer's"
            );
            assert_eq!(o.mode, c.mode, "{who}: mode differs from the peer's");
            assert_eq!(o.udp_encap, c.udp_encap, "{who}: encapsulation differs");
            assert_eq!(o.local_ts, c.remote_ts, "{who}: selectors do not mirror");
            assert_eq!(o.remote_ts, c.local_ts, "{who}: selectors do not mirror");
            assert!(
                *o.keys_out.encr == *c.keys_in.encr && *o.keys_out.integ == *c.keys_in.integ,
                "{who}: inbound keys differ from the peer's outbound keys"
            );
            assert!(
                *o.keys_in.encr == *c.keys_out.encr && *o.keys_in.integ == *c.keys_out.integ,
                "{who}: outbound keys differ from the peer's inbound keys"
            );
        }
        let spi = c.spi_in;
        assert!(
            mine.insert(spi, c).is_none(),
            "{who} reported SPI {spi:08x} twice while it is alive"
        );
    }
}
