//! The mobile node's bootstrap (draft-devarapalli-mip6-ikev1-bootstrap-01 §3, §4) as a sans-IO
//! state machine: it decides, [`crate::runtime`] acts.
//!
//! One attempt, by `address_source`:
//!
//! ```text
//!  dhcpv6 / auto:  phase 1 ─ initial tunnel ─ DHCPv6 (Solicit … Reply) ─ RFC 3776 SAs ─ Delete initial ─ ready
//!  modecfg:        phase 1 ─ Mode Config (CFG_REQUEST/CFG_REPLY)       ─ RFC 3776 SAs ─────────────────── ready
//!  static:         phase 1 ─ (home_address from the file)             ─ tunnel SA ─────────────────────── ready
//! ```
//!
//! - The initial tunnel (draft §3.2) is a tunnel-mode SA limited to DHCPv6: our side is a
//!   random link-local address `fe80::<64-bit iid>/128`, UDP port 546; the home agent's side is
//!   any address, UDP port 547. The DHCPv6 client (RFC 8415, `dhcp6-client`) sends to
//!   `ff02::1:2` port 547 through it, and the home agent relays to the operator's server.
//! - Mode Config (draft §3.1) runs on a fresh phase 1, after it and before any Quick Mode: the
//!   home address is CFG_REPLY's INTERNAL_IP6_ADDRESS.
//! - The RFC 3776 SAs (§4.1 says what must be protected, §5.3 gives the dynamic-keying
//!   selectors), two Quick Modes on the same IKE SA: transport-mode ESP home address/128 ↔
//!   home agent/128, both limited to the Mobility Header (protocol 135), for Binding Update
//!   and Acknowledgement (§5.3.1); tunnel-mode ESP home address/128 ↔ any, for Home Test
//!   Init/Home Test and payload (§5.3.2, §5.3.4; outer: care-of address ↔ home agent). The
//!   home agent grants them only for the address leased to our identity. Static mode keeps
//!   issue 3's single tunnel-mode SA.
//! - Then the initial tunnel is deleted, the home address goes on the TUN device with the
//!   default route through it, and the node is ready. The DHCPv6 client stays: Renew at T1
//!   and Rebind at T2 go from the home address through the tunnel-mode SA.
//!
//! With `auto`, a refused initial tunnel (INVALID-ID-INFORMATION: the relay is off) or no
//! lease within `dhcpv6_timeout` of asking for the initial tunnel makes the node delete that
//! IKE SA and fall back to a fresh phase 1 and Mode Config; `dhcpv6` fails instead. Any
//! failure (phase 1, a refused Quick Mode, the IKE SA deleted, the lease expired or moved)
//! deletes what is left, keeps the reason (`last_error`) and starts again after a back-off of
//! 5 s doubling up to 30 s (so a node whose DHCPv6 server comes back is ready within about
//! half a minute); a success resets it.
//!
//! Inputs: [`Bootstrap::start`], [`Bootstrap::handle_ike_event`],
//! [`Bootstrap::handle_datagram`] (DHCPv6 answers out of the tunnel),
//! [`Bootstrap::handle_timeout`] when [`Bootstrap::poll_timeout`] has passed, and the results
//! of the actions that have one ([`Bootstrap::phase1_initiated`],
//! [`Bootstrap::child_initiated`], [`Bootstrap::address_installed`],
//! [`Bootstrap::action_failed`]). After each input the driver executes
//! [`Bootstrap::poll_action`] until it returns `None` and copies [`Bootstrap::report`] into
//! the status. Time is always a parameter.

use std::collections::VecDeque;
use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddrV6};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use daemon::status::{ChildSaStatus, IkeSaState, IkeSaStatus};
use dhcp6_client::{
    ALL_DHCP_RELAY_AGENTS_AND_SERVERS, CLIENT_PORT, Client, ClientConfig, Duid, Event as DhcpEvent,
    SERVER_PORT, State as DhcpState,
};
use ikev1::{ChildRequest, ChildSa, Event, FailReason, IkeSaId, Mode, ModeConfig, TrafficSelector};
use tracing::{debug, info, warn};

use crate::config::AddressSourceMode;
use crate::status::{AddressSource, DhcpFqdnStatus, State, Status, Timings};

/// The first wait after a failure; it doubles with each failure in a row, up to
/// [`RETRY_MAX`].
pub(crate) const RETRY_BASE: Duration = Duration::from_secs(5);
/// The longest wait between attempts.
pub(crate) const RETRY_MAX: Duration = Duration::from_secs(30);
/// How long shutdown waits for the Reply to Release.
pub(crate) const RELEASE_WAIT: Duration = Duration::from_secs(1);
/// The IAID of our single IA_NA (one home address per node).
pub(crate) const IAID: u32 = 1;
/// Next header of the Mobility Header (RFC 6275 §6.1).
const IPPROTO_MH: u8 = 135;
/// Next header of UDP.
const IPPROTO_UDP: u8 = 17;

/// A source of random bytes shared by the bootstrap and its DHCPv6 clients.
pub type SharedRng = Arc<Mutex<dyn FnMut(&mut [u8]) + Send>>;

fn fill(rng: &SharedRng, buf: &mut [u8]) {
    let mut f = rng.lock().unwrap_or_else(PoisonError::into_inner);
    f(buf);
}

/// What the bootstrap needs from the configuration and the state directory.
#[derive(Clone, Debug)]
pub struct Settings {
    /// `address_source`.
    pub(crate) mode: AddressSourceMode,
    /// The home agent's address (the transport-mode SA's remote selector).
    pub home_agent: Ipv6Addr,
    /// `home_address`, for `static`.
    pub home_address: Option<Ipv6Addr>,
    /// `dhcpv6_timeout`.
    pub dhcpv6_timeout: Duration,
    /// Our DUID (`state_dir/duid`); needed by `auto` and `dhcpv6`.
    pub duid: Option<Duid>,
    /// The address leased last time (`state_dir/lease`), asked for again.
    pub hint: Option<Ipv6Addr>,
    /// `home_registration`: ask for the RFC 3776 transport-mode SA (and register); false
    /// leaves the node with its address and the tunnel-mode SA, as against a plain IPsec
    /// gateway.
    pub home_registration: bool,
    /// `home_agent_timeout`: with several home agents ([`Bootstrap::set_home_agents`]), how long
    /// phase 1 may take before the next one is tried.
    pub home_agent_timeout: Duration,
    /// The name sent in the DHCPv6 Client FQDN option (RFC 4704), asking the server to keep
    /// its AAAA record.
    pub dhcpv6_fqdn: Option<String>,
}

impl Settings {
    /// `address_source = "dhcpv6"` (no Mode Config fallback), for drivers outside the daemon
    /// (the `load-gen` capacity benchmark runs many bootstraps in one process).
    pub fn dhcpv6(home_agent: Ipv6Addr, dhcpv6_timeout: Duration, duid: Duid) -> Self {
        Self {
            mode: AddressSourceMode::Dhcpv6,
            home_agent,
            home_address: None,
            dhcpv6_timeout,
            duid: Some(duid),
            hint: None,
            home_registration: true,
            home_agent_timeout: Duration::from_secs(15),
            dhcpv6_fqdn: None,
        }
    }
}

/// What a child SA is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SaRole {
    /// Draft §3.2: link-local UDP 546 ↔ any UDP 547, tunnel mode, for DHCPv6.
    InitialTunnel,
    /// RFC 3776: home address ↔ home agent, Mobility Header, transport mode (BU/BA).
    Transport,
    /// RFC 3776: home address ↔ any, tunnel mode.
    Tunnel,
}

impl fmt::Display for SaRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::InitialTunnel => "initial tunnel",
            Self::Transport => "transport-mode (Mobility Header)",
            Self::Tunnel => "tunnel-mode",
        })
    }
}

/// What the driver must do.
#[derive(Clone, Debug)]
pub enum Action {
    /// Start Main Mode with the home agent; answer with [`Bootstrap::phase1_initiated`].
    InitiatePhase1,
    /// Start a Quick Mode; answer with [`Bootstrap::child_initiated`].
    InitiateChild {
        /// The IKE SA.
        sa: IkeSaId,
        /// What the SA is for.
        role: SaRole,
        /// Mode and selectors.
        request: ChildRequest,
    },
    /// Start the Transaction exchange (CFG_REQUEST); a local error goes to
    /// [`Bootstrap::action_failed`].
    RequestModeConfig {
        /// The IKE SA.
        sa: IkeSaId,
    },
    /// Delete a child SA (Informational Delete).
    DeleteChild {
        /// The IKE SA.
        sa: IkeSaId,
        /// Our SPI of it.
        spi_in: u32,
    },
    /// Delete an IKE SA and its children.
    DeleteIkeSa {
        /// The IKE SA.
        sa: IkeSaId,
    },
    /// Send a DHCPv6 message through a tunnel-mode child SA of `via`.
    SendDhcp {
        /// The IKE SA whose child SA carries it.
        via: IkeSaId,
        /// Our address and port 546.
        src: SocketAddrV6,
        /// `ff02::1:2` port 547.
        dst: SocketAddrV6,
        /// The DHCPv6 message.
        payload: Vec<u8>,
    },
    /// Put the home address on the TUN device with the default route through it; answer
    /// with [`Bootstrap::address_installed`].
    InstallAddress {
        /// The home address.
        address: Ipv6Addr,
    },
    /// Remove the home address and its route.
    RemoveAddress {
        /// The home address.
        address: Ipv6Addr,
    },
    /// Remember the leased address for the next start (`state_dir/lease`).
    PersistLease {
        /// The leased address.
        address: Ipv6Addr,
    },
    /// The bootstrap is complete.
    Ready {
        /// The home address.
        address: Ipv6Addr,
        /// Where it came from.
        source: AddressSource,
        /// Time from the start of the attempt.
        total: Duration,
    },
    /// The attempt failed; the next one starts after `retry_in`.
    Failed {
        /// Why.
        reason: String,
        /// The back-off.
        retry_in: Duration,
    },
}

/// How this attempt gets its home address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Path {
    Dhcpv6,
    ModeConfig,
    Static,
}

impl Path {
    fn source(self) -> AddressSource {
        match self {
            Self::Dhcpv6 => AddressSource::Dhcpv6,
            Self::ModeConfig => AddressSource::Modecfg,
            Self::Static => AddressSource::Static,
        }
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Dhcpv6 => "dhcpv6",
            Self::ModeConfig => "modecfg",
            Self::Static => "static",
        })
    }
}

/// Where the bootstrap is; each step carries its own timers (style.md §3.11).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    /// Not started yet.
    Idle,
    /// Main Mode, started at `since`.
    Phase1 { since: Instant },
    /// Quick Mode for the initial tunnel, asked for at `since`.
    InitialTunnel { since: Instant },
    /// DHCPv6 or Mode Config, from `since`.
    Address { since: Instant },
    /// Quick Modes for the RFC 3776 SAs, asked for at `since`.
    Rfc3776 { since: Instant },
    /// The driver is installing the home address (the RFC 3776 SAs were asked for at `since`).
    Installing { since: Instant },
    /// Done.
    Ready,
    /// Failed; the next attempt starts at `retry_at`.
    Failed { retry_at: Instant },
    /// Shutting down: Release sent, waiting for its Reply until `deadline`.
    Releasing { deadline: Instant },
    /// Shut down.
    Stopped,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Idle => "idle",
            Self::Phase1 { .. } => "phase1",
            Self::InitialTunnel { .. } => "initial_tunnel",
            Self::Address { .. } => "address",
            Self::Rfc3776 { .. } => "rfc3776_sas",
            Self::Installing { .. } => "installing",
            Self::Ready => "ready",
            Self::Failed { .. } => "failed",
            Self::Releasing { .. } => "releasing",
            Self::Stopped => "stopped",
        })
    }
}

/// A child SA of the current IKE SA.
#[derive(Debug)]
struct Child {
    role: Option<SaRole>,
    spi_in: u32,
    status: ChildSaStatus,
}

/// What one attempt has built so far.
#[derive(Debug)]
struct Attempt {
    path: Path,
    /// Whether the transport-mode SA for the Mobility Header is wanted (`home_registration`).
    mh_sa: bool,
    /// The IKE SA, once the engine has given it an id; `None` again once it is gone.
    sa: Option<IkeSaId>,
    /// The phase-1 suite, once established.
    proposal: Option<String>,
    /// Our link-local address in the initial tunnel.
    link_local: Option<Ipv6Addr>,
    /// When `dhcpv6_timeout` runs out (from asking for the initial tunnel).
    dhcp_deadline: Option<Instant>,
    dhcp: Option<Client>,
    /// The last thing the DHCPv6 server or client had to say, for the failure reason.
    dhcp_note: Option<String>,
    hoa: Option<Ipv6Addr>,
    /// Our Quick Mode requests: engine request id and role.
    requests: Vec<(u64, SaRole)>,
    children: Vec<Child>,
    /// The home address is on the TUN device.
    installed: bool,
    timings: Timings,
}

impl Attempt {
    fn new(path: Path, mh_sa: bool) -> Self {
        Self {
            path,
            mh_sa,
            sa: None,
            proposal: None,
            link_local: None,
            dhcp_deadline: None,
            dhcp: None,
            dhcp_note: None,
            hoa: None,
            requests: Vec::new(),
            children: Vec::new(),
            installed: false,
            timings: Timings::default(),
        }
    }

    fn has(&self, role: SaRole) -> bool {
        self.children.iter().any(|c| c.role == Some(role))
    }

    /// The roles this path needs before it is ready.
    fn needed(&self) -> &'static [SaRole] {
        match self.path {
            Path::Static => &[SaRole::Tunnel],
            Path::Dhcpv6 | Path::ModeConfig if !self.mh_sa => &[SaRole::Tunnel],
            Path::Dhcpv6 | Path::ModeConfig => &[SaRole::Transport, SaRole::Tunnel],
        }
    }

    fn rfc3776_up(&self) -> bool {
        self.needed().iter().all(|r| self.has(*r))
    }
}

fn us(d: Duration) -> Option<u64> {
    Some(u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

/// The back-off after `failures` failures in a row: 5, 10, 20, 30, 30 … seconds.
pub(crate) fn backoff(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(3);
    RETRY_BASE.saturating_mul(1 << doublings).min(RETRY_MAX)
}

/// The bootstrap state machine (see the module documentation).
pub struct Bootstrap {
    settings: Settings,
    rng: SharedRng,
    /// The address to ask the DHCPv6 server for.
    hint: Option<Ipv6Addr>,
    step: Step,
    attempt: Attempt,
    /// When the attempt started (a Mode Config fallback is part of the same attempt).
    started: Option<Instant>,
    /// Why `auto` fell back to Mode Config, while the fallback runs.
    fallback_cause: Option<String>,
    /// Failures since the last success.
    failures: u32,
    last_error: Option<String>,
    actions: VecDeque<Action>,
    /// The home agents to try, in order (RFC 5026 §5 discovery); `settings.home_agent` is
    /// `home_agents[ha_index]`.
    home_agents: Vec<Ipv6Addr>,
    ha_index: usize,
    /// Home agents that did not answer since the last one that did.
    ha_unanswered: usize,
}

impl fmt::Debug for Bootstrap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bootstrap")
            .field("step", &self.step)
            .field("attempt", &self.attempt)
            .field("last_error", &self.last_error)
            .finish_non_exhaustive()
    }
}

impl Bootstrap {
    /// A bootstrap that has not started.
    pub fn new(settings: Settings, rng: SharedRng) -> Self {
        let hint = settings.hint;
        Self {
            attempt: Attempt::new(Self::first_path(settings.mode), settings.home_registration),
            settings,
            rng,
            hint,
            step: Step::Idle,
            started: None,
            fallback_cause: None,
            failures: 0,
            last_error: None,
            actions: VecDeque::new(),
            home_agents: Vec::new(),
            ha_index: 0,
            ha_unanswered: 0,
        }
    }

    fn first_path(mode: AddressSourceMode) -> Path {
        match mode {
            AddressSourceMode::Auto | AddressSourceMode::Dhcpv6 => Path::Dhcpv6,
            AddressSourceMode::Modecfg => Path::ModeConfig,
            AddressSourceMode::Static => Path::Static,
        }
    }

    /// The next thing to do.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When [`Self::handle_timeout`] must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let step = match self.step {
            Step::Failed { retry_at } => Some(retry_at),
            Step::Phase1 { since } if self.home_agents.len() > 1 => {
                since.checked_add(self.settings.home_agent_timeout)
            }
            Step::Releasing { deadline } => Some(deadline),
            Step::InitialTunnel { .. } | Step::Address { .. } => self.attempt.dhcp_deadline,
            _ => None,
        };
        earliest(
            step,
            self.attempt.dhcp.as_ref().and_then(Client::poll_timeout),
        )
    }

    /// Whether shutdown is complete (see [`Self::shutdown`]).
    pub fn is_stopped(&self) -> bool {
        self.step == Step::Stopped
    }

    /// The home agents to try in this order (discovered by DNS, RFC 5026 §5); the first one
    /// is used from the next attempt on. One that does not answer phase 1 within
    /// `home_agent_timeout` (or at all) makes the node try the next; once none has answered,
    /// the back-off applies and the first is tried again.
    pub fn set_home_agents(&mut self, home_agents: Vec<Ipv6Addr>) {
        if let Some(first) = home_agents.first() {
            self.settings.home_agent = *first;
            self.home_agents = home_agents;
            self.ha_index = 0;
            self.ha_unanswered = 0;
        }
    }

    /// The home agent of the current attempt.
    pub fn home_agent(&self) -> Ipv6Addr {
        self.settings.home_agent
    }

    /// Phase 1 went unanswered by the current home agent: the next one, or the back-off once
    /// all were tried.
    fn home_agent_unanswered(&mut self, now: Instant, reason: String) {
        let ha = self.settings.home_agent;
        let reason = format!("the home agent {ha} does not answer: {reason}");
        self.ha_unanswered += 1;
        if self.home_agents.len() < 2 || self.ha_unanswered >= self.home_agents.len() {
            self.ha_unanswered = 0;
            self.ha_index = 0;
            if let Some(first) = self.home_agents.first() {
                self.settings.home_agent = *first;
            }
            return self.fail(now, reason);
        }
        self.ha_index = (self.ha_index + 1) % self.home_agents.len();
        self.settings.home_agent = self.home_agents[self.ha_index];
        warn!(%reason, next = %self.settings.home_agent, "trying the next home agent");
        if let Some(sa) = self.attempt.sa.take() {
            self.actions.push_back(Action::DeleteIkeSa { sa });
        }
        self.last_error = Some(reason);
        self.start(now);
    }

    /// Starts an attempt with phase 1.
    pub fn start(&mut self, now: Instant) {
        self.attempt = Attempt::new(
            Self::first_path(self.settings.mode),
            self.settings.home_registration,
        );
        self.started = Some(now);
        self.fallback_cause = None;
        self.begin_phase1(now);
    }

    fn begin_phase1(&mut self, now: Instant) {
        info!(path = %self.attempt.path, home_agent = %self.settings.home_agent, "starting phase 1");
        self.set_step(Step::Phase1 { since: now });
        self.actions.push_back(Action::InitiatePhase1);
    }

    fn set_step(&mut self, step: Step) {
        debug!(from = %self.step, to = %step, "bootstrap step");
        self.step = step;
    }

    fn stopping(&self) -> bool {
        matches!(self.step, Step::Releasing { .. } | Step::Stopped)
    }

    fn is_current(&self, sa: IkeSaId) -> bool {
        self.attempt.sa == Some(sa)
    }

    /// The engine's answer to [`Action::InitiatePhase1`].
    pub fn phase1_initiated(&mut self, now: Instant, result: Result<IkeSaId, String>) {
        match result {
            Ok(sa) if matches!(self.step, Step::Phase1 { .. }) => {
                debug!(ike_sa = %sa, "phase 1 initiated");
                self.attempt.sa = Some(sa);
            }
            Ok(sa) => {
                debug!(ike_sa = %sa, step = %self.step, "phase 1 no longer wanted; deleting it");
                self.actions.push_back(Action::DeleteIkeSa { sa });
            }
            Err(e) => self.fail(now, format!("starting phase 1: {e}")),
        }
    }

    /// The engine's answer to [`Action::InitiateChild`]: the request id, or why it could not
    /// start.
    pub fn child_initiated(&mut self, now: Instant, role: SaRole, result: Result<u64, String>) {
        match result {
            Ok(id) => self.attempt.requests.push((id, role)),
            Err(e) => self.fail(
                now,
                format!("starting the Quick Mode for the {role} SA: {e}"),
            ),
        }
    }

    /// The driver's answer to [`Action::InstallAddress`].
    pub fn address_installed(&mut self, now: Instant, result: Result<(), String>) {
        let Step::Installing { since } = self.step else {
            debug!(step = %self.step, "address installed outside the installing step");
            return;
        };
        if let Err(e) = result {
            return self.fail(now, format!("installing the home address: {e}"));
        }
        self.attempt.installed = true;
        let Some(address) = self.attempt.hoa else {
            return;
        };
        let total = self.started.map_or(Duration::ZERO, |s| now - s);
        self.attempt.timings.rfc3776_sas = us(now - since);
        self.attempt.timings.total = us(total);
        self.failures = 0;
        self.fallback_cause = None;
        self.set_step(Step::Ready);
        self.actions.push_back(Action::Ready {
            address,
            source: self.attempt.path.source(),
            total,
        });
    }

    /// An action that has no answer of its own failed (the tunnel task stopped, the engine
    /// refused a request).
    pub fn action_failed(&mut self, now: Instant, reason: String) {
        self.fail(now, reason);
    }

    /// An event of the IKE engine.
    pub fn handle_ike_event(&mut self, now: Instant, event: &Event) {
        match event {
            Event::IkeSaEstablished { sa, proposal, .. } if self.is_current(*sa) => {
                self.phase1_done(now, *sa, proposal);
            }
            Event::IkeSaFailed {
                sa,
                reason: FailReason::Timeout,
            } if self.is_current(*sa) && self.home_agents.len() > 1 => {
                self.attempt.sa = None;
                self.home_agent_unanswered(now, "phase 1 timed out".into());
            }
            Event::IkeSaFailed { sa, reason } if self.is_current(*sa) => {
                self.attempt.sa = None;
                let ha = self.settings.home_agent;
                self.fail(
                    now,
                    format!("phase 1 with the home agent {ha} failed: {reason}"),
                );
            }
            // Phase-1 re-authentication: the child SAs, and we, go with the newer IKE SA; the
            // old one's deletion that follows is then no longer ours.
            Event::IkeSaReplaced { old, new, children } if self.is_current(*old) => {
                info!(old = %old, new = %new, children = children.len(), "the IKE SA was replaced");
                self.attempt.sa = Some(*new);
            }
            Event::IkeSaDeleted { sa, reason } if self.is_current(*sa) => {
                self.attempt.sa = None;
                self.attempt.children.clear();
                self.fail(now, format!("the IKE SA was deleted: {reason}"));
            }
            Event::ChildSaEstablished(c) if self.is_current(c.ike_sa) => self.child_up(now, c),
            Event::ChildSaFailed {
                sa,
                request,
                reason,
            } if self.is_current(*sa) => self.child_failed(now, *request, reason),
            Event::ChildSaDeleted {
                sa, spi_in, reason, ..
            } if self.is_current(*sa) => self.child_deleted(now, *spi_in, reason),
            Event::ModeConfigReceived { sa, config } if self.is_current(*sa) => {
                self.mode_config(now, *sa, config);
            }
            Event::ModeConfigFailed { sa, reason } if self.is_current(*sa) => {
                if matches!(self.step, Step::Address { .. })
                    && self.attempt.path == Path::ModeConfig
                {
                    self.fail(now, format!("Mode Config failed: {reason}"));
                }
            }
            Event::ChildSaRekeying { sa, spi_in } if self.is_current(*sa) => {
                debug!(spi_in = format_args!("{spi_in:08x}"), "child SA rekeying");
            }
            _ => debug!("event not for the current bootstrap; ignored"),
        }
    }

    fn phase1_done(&mut self, now: Instant, sa: IkeSaId, proposal: &str) {
        let Step::Phase1 { since } = self.step else {
            return debug!(step = %self.step, "phase 1 established outside the phase1 step");
        };
        info!(ike_sa = %sa, proposal, "phase 1 established");
        self.ha_unanswered = 0;
        self.attempt.proposal = Some(proposal.to_owned());
        self.attempt.timings.phase1 = us(now - since);
        match self.attempt.path {
            Path::Static => {
                let Some(hoa) = self.settings.home_address else {
                    return self.fail(
                        now,
                        "address_source = \"static\" without home_address".into(),
                    );
                };
                self.attempt.hoa = Some(hoa);
                self.attempt.timings.address = Some(0);
                self.request_rfc3776(now, sa, hoa);
            }
            Path::Dhcpv6 => {
                // Draft §3.2: the initial tunnel, from a random link-local address.
                let mut iid = [0u8; 8];
                fill(&self.rng, &mut iid);
                let iid = u64::from_be_bytes(iid).max(1);
                let ll = Ipv6Addr::from((0xfe80_u128 << 112) | u128::from(iid));
                self.attempt.link_local = Some(ll);
                // (A timeout too large for the clock is no deadline.)
                self.attempt.dhcp_deadline = now.checked_add(self.settings.dhcpv6_timeout);
                self.set_step(Step::InitialTunnel { since: now });
                self.actions.push_back(Action::InitiateChild {
                    sa,
                    role: SaRole::InitialTunnel,
                    request: initial_tunnel_request(ll),
                });
            }
            Path::ModeConfig => {
                // Draft §3.1: the Transaction exchange after phase 1, before any Quick Mode.
                self.set_step(Step::Address { since: now });
                self.actions.push_back(Action::RequestModeConfig { sa });
            }
        }
    }

    fn request_rfc3776(&mut self, now: Instant, sa: IkeSaId, hoa: Ipv6Addr) {
        self.set_step(Step::Rfc3776 { since: now });
        for role in self.attempt.needed() {
            let request = match role {
                SaRole::Transport => transport_request(hoa, self.settings.home_agent),
                _ => tunnel_request(hoa),
            };
            self.actions.push_back(Action::InitiateChild {
                sa,
                role: *role,
                request,
            });
        }
    }

    /// Which of our SAs an established child is, by its mode and selectors.
    fn classify(&self, c: &ChildSa) -> Option<SaRole> {
        let a = &self.attempt;
        if let Some(ll) = a.link_local
            && c.mode == Mode::Tunnel
            && c.local_ts == initial_tunnel_request(ll).local_ts
        {
            return Some(SaRole::InitialTunnel);
        }
        let hoa = a.hoa?;
        let host = TrafficSelector::host(IpAddr::V6(hoa));
        match c.mode {
            Mode::Transport if c.local_ts == host.with_protocol(IPPROTO_MH, 0) => {
                Some(SaRole::Transport)
            }
            Mode::Tunnel if c.local_ts == host => Some(SaRole::Tunnel),
            _ => None,
        }
    }

    fn child_up(&mut self, now: Instant, c: &ChildSa) {
        let role = self.classify(c);
        info!(
            role = role.map_or_else(|| "unknown".to_owned(), |r| r.to_string()),
            mode = %c.mode,
            local_ts = %c.local_ts,
            remote_ts = %c.remote_ts,
            spi_in = format_args!("{:08x}", c.spi_in),
            "child SA established"
        );
        self.attempt.children.push(Child {
            role,
            spi_in: c.spi_in,
            status: ChildSaStatus::from_child(c),
        });
        match (role, self.step) {
            (Some(SaRole::InitialTunnel), Step::InitialTunnel { since }) => {
                self.attempt.timings.initial_tunnel = us(now - since);
                self.set_step(Step::Address { since: now });
                self.start_dhcp(now);
            }
            (Some(SaRole::Transport | SaRole::Tunnel), Step::Rfc3776 { since })
                if self.attempt.rfc3776_up() =>
            {
                self.rfc3776_done(since);
            }
            _ => {}
        }
    }

    /// Both RFC 3776 SAs are up: the initial tunnel goes, the home address comes.
    fn rfc3776_done(&mut self, since: Instant) {
        let (Some(sa), Some(address)) = (self.attempt.sa, self.attempt.hoa) else {
            return;
        };
        // The initial tunnel goes out of the status at once: it is no longer in use.
        while let Some(i) = self
            .attempt
            .children
            .iter()
            .position(|c| c.role == Some(SaRole::InitialTunnel))
        {
            let initial = self.attempt.children.remove(i);
            info!(
                spi_in = format_args!("{:08x}", initial.spi_in),
                "deleting the initial tunnel"
            );
            self.actions.push_back(Action::DeleteChild {
                sa,
                spi_in: initial.spi_in,
            });
        }
        self.set_step(Step::Installing { since });
        self.actions.push_back(Action::InstallAddress { address });
    }

    fn child_failed(&mut self, now: Instant, request: Option<u64>, reason: &FailReason) {
        let role = request.and_then(|id| {
            self.attempt
                .requests
                .iter()
                .find(|(r, _)| *r == id)
                .map(|(_, role)| *role)
        });
        // A Notify (INVALID-ID-INFORMATION, NO-PROPOSAL-CHOSEN) is a refusal; a timeout is not.
        let what = match reason {
            FailReason::Notify(_) | FailReason::NoProposalChosen | FailReason::Policy(_) => {
                "the home agent refused"
            }
            _ => "no answer to the Quick Mode for",
        };
        match (role, self.step) {
            (Some(SaRole::InitialTunnel), Step::InitialTunnel { .. }) => {
                self.dhcp_path_failed(
                    now,
                    format!("{what} the initial tunnel for DHCPv6 (draft §3.2): {reason}"),
                );
            }
            (Some(role @ (SaRole::Transport | SaRole::Tunnel)), Step::Rfc3776 { .. }) => {
                let hoa = self.attempt.hoa.map_or_else(String::new, |a| a.to_string());
                self.fail(
                    now,
                    format!("{what} the RFC 3776 {role} SA for {hoa}: {reason}"),
                );
            }
            _ => warn!(?request, %reason, step = %self.step, "Quick Mode failed; ignored"),
        }
    }

    fn child_deleted(&mut self, now: Instant, spi_in: u32, reason: &str) {
        let Some(i) = self
            .attempt
            .children
            .iter()
            .position(|c| c.spi_in == spi_in)
        else {
            return;
        };
        let gone = self.attempt.children.remove(i);
        debug!(
            spi_in = format_args!("{spi_in:08x}"),
            reason, "child SA deleted"
        );
        let Some(role) = gone.role else { return };
        if self.attempt.has(role) {
            return; // a rekeyed pair
        }
        match (role, self.step) {
            (SaRole::InitialTunnel, Step::Address { .. }) => self.dhcp_path_failed(
                now,
                format!("the home agent deleted the initial tunnel ({reason})"),
            ),
            (SaRole::Transport | SaRole::Tunnel, Step::Ready) => {
                self.fail(now, format!("the {role} SA was deleted ({reason})"));
            }
            _ => {}
        }
    }

    fn mode_config(&mut self, now: Instant, sa: IkeSaId, config: &ModeConfig) {
        let Step::Address { since } = self.step else {
            return debug!(step = %self.step, "Mode Config attributes outside the address step");
        };
        if self.attempt.path != Path::ModeConfig {
            return;
        }
        let Some(hoa) = config.address.filter(|a| !a.is_unspecified()) else {
            return self.fail(
                now,
                "the home agent's Mode Config reply has no INTERNAL_IP6_ADDRESS".into(),
            );
        };
        info!(home_address = %hoa, expiry = ?config.expiry, "home address from Mode Config");
        self.attempt.hoa = Some(hoa);
        self.attempt.timings.address = us(now - since);
        self.request_rfc3776(now, sa, hoa);
    }

    /// The DHCPv6 path cannot go on: `auto` falls back to Mode Config (draft §3.1),
    /// `dhcpv6` fails.
    fn dhcp_path_failed(&mut self, now: Instant, cause: String) {
        if self.settings.mode != AddressSourceMode::Auto {
            return self.fail(now, cause);
        }
        warn!(%cause, "falling back to a fresh phase 1 and Mode Config (draft §3.1)");
        if let Some(sa) = self.attempt.sa.take() {
            self.actions.push_back(Action::DeleteIkeSa { sa });
        }
        self.attempt = Attempt::new(Path::ModeConfig, self.settings.home_registration);
        self.fallback_cause = Some(cause);
        self.begin_phase1(now);
    }

    fn start_dhcp(&mut self, now: Instant) {
        let Some(duid) = &self.settings.duid else {
            return self.fail(now, "no DHCPv6 DUID".into());
        };
        let config = ClientConfig {
            duid: duid.as_bytes().to_vec(),
            iaid: IAID,
            rapid_commit: true,
            fqdn: self.settings.dhcpv6_fqdn.clone(),
            oro: Vec::new(),
            hint: self.hint,
        };
        let rng = Arc::clone(&self.rng);
        match Client::new(config, move |b: &mut [u8]| fill(&rng, b)) {
            Ok(mut c) => {
                info!(hint = ?self.hint, "soliciting a home address through the initial tunnel");
                c.start(now);
                self.attempt.dhcp = Some(c);
                self.pump_dhcp(now);
            }
            Err(e) => self.fail(now, format!("DHCPv6 client: {e}")),
        }
    }

    /// A datagram to port 546 out of a tunnel of `ike_sa`, from `src`.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        ike_sa: IkeSaId,
        src: SocketAddrV6,
        payload: &[u8],
    ) {
        if !self.is_current(ike_sa) {
            return debug!(%ike_sa, %src, "dropped a DHCPv6 message: not from the current IKE SA");
        }
        if src.port() != SERVER_PORT {
            return debug!(%src, "dropped a DHCPv6 message: not from port 547");
        }
        let Some(c) = self.attempt.dhcp.as_mut() else {
            return debug!(%src, "dropped a DHCPv6 message: no DHCPv6 client running");
        };
        // Drops are logged by the client.
        let _ = c.handle_message(now, payload);
        self.pump_dhcp(now);
    }

    /// Timers due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.step {
            Step::Failed { retry_at } if now >= retry_at => return self.start(now),
            Step::Phase1 { since }
                if self.home_agents.len() > 1
                    && since
                        .checked_add(self.settings.home_agent_timeout)
                        .is_some_and(|t| now >= t) =>
            {
                let limit = self.settings.home_agent_timeout.as_secs();
                return self.home_agent_unanswered(
                    now,
                    format!("phase 1 not done within home_agent_timeout ({limit} s)"),
                );
            }
            Step::Releasing { deadline } if now >= deadline => {
                info!("no Reply to Release in time; going on with the shutdown");
                return self.stop();
            }
            Step::InitialTunnel { .. } | Step::Address { .. }
                if self.attempt.dhcp_deadline.is_some_and(|d| now >= d) =>
            {
                let mut cause = format!(
                    "no DHCPv6 lease within dhcpv6_timeout ({} s)",
                    self.settings.dhcpv6_timeout.as_secs()
                );
                if let Some(note) = &self.attempt.dhcp_note {
                    cause.push_str(&format!(" ({note})"));
                } else if matches!(self.step, Step::InitialTunnel { .. }) {
                    cause.push_str(" (the initial tunnel is not up)");
                }
                return self.dhcp_path_failed(now, cause);
            }
            _ => {}
        }
        if let Some(c) = self.attempt.dhcp.as_mut()
            && c.poll_timeout().is_some_and(|t| now >= t)
        {
            c.handle_timeout(now);
            self.pump_dhcp(now);
        }
    }

    /// Moves the DHCPv6 client's datagrams and events out.
    fn pump_dhcp(&mut self, now: Instant) {
        loop {
            let Some(c) = self.attempt.dhcp.as_mut() else {
                return;
            };
            if let Some(payload) = c.poll_transmit() {
                self.send_dhcp(payload);
                continue;
            }
            let Some(event) = c.poll_event() else { return };
            self.dhcp_event(now, event);
        }
    }

    /// Where DHCPv6 messages come from: the home address once the tunnel-mode SA for it is
    /// up (Renew, Rebind, Release), else the initial tunnel's link-local address.
    fn dhcp_source(&self) -> Option<Ipv6Addr> {
        match self.attempt.hoa {
            Some(hoa) if self.attempt.has(SaRole::Tunnel) => Some(hoa),
            _ if self.attempt.has(SaRole::InitialTunnel) => self.attempt.link_local,
            _ => None,
        }
    }

    fn send_dhcp(&mut self, payload: Vec<u8>) {
        let (Some(via), Some(src)) = (self.attempt.sa, self.dhcp_source()) else {
            return debug!("no tunnel for the DHCPv6 message; not sent");
        };
        self.actions.push_back(Action::SendDhcp {
            via,
            src: SocketAddrV6::new(src, CLIENT_PORT, 0, 0),
            dst: SocketAddrV6::new(ALL_DHCP_RELAY_AGENTS_AND_SERVERS, SERVER_PORT, 0, 0),
            payload,
        });
    }

    fn dhcp_event(&mut self, now: Instant, event: DhcpEvent) {
        match event {
            DhcpEvent::Bound {
                address,
                valid,
                t1,
                t2,
                ..
            } => match self.step {
                Step::Address { since } if self.attempt.hoa.is_none() => {
                    info!(home_address = %address, ?valid, ?t1, ?t2, "home address leased by DHCPv6");
                    let Some(sa) = self.attempt.sa else { return };
                    self.attempt.hoa = Some(address);
                    self.attempt.timings.address = us(now - since);
                    self.hint = Some(address);
                    self.actions.push_back(Action::PersistLease { address });
                    self.request_rfc3776(now, sa, address);
                }
                _ if self.attempt.hoa == Some(address) => {
                    info!(home_address = %address, ?valid, ?t1, ?t2, "DHCPv6 lease extended");
                }
                _ => {
                    let old = self.attempt.hoa.map_or_else(String::new, |a| a.to_string());
                    self.hint = Some(address);
                    self.actions.push_back(Action::PersistLease { address });
                    self.fail(
                        now,
                        format!("the DHCPv6 server moved the lease from {old} to {address}"),
                    );
                }
            },
            DhcpEvent::Expired { address } => {
                self.fail(
                    now,
                    format!(
                        "the DHCPv6 lease of {address} expired without an answer to Renew or Rebind"
                    ),
                );
            }
            DhcpEvent::ServerStatus { code, message } => {
                warn!(code, %message, "DHCPv6 server status");
                self.attempt.dhcp_note = Some(format!("last answer: status {code} \"{message}\""));
            }
            DhcpEvent::RequestFailed => {
                warn!("DHCPv6 Request unanswered; soliciting again");
                self.attempt.dhcp_note = Some("the Request got no Reply".into());
            }
            DhcpEvent::Released => {
                info!("DHCPv6 lease released");
                if matches!(self.step, Step::Releasing { .. }) {
                    self.stop();
                }
            }
            other => debug!(event = ?other, "DHCPv6 client event"),
        }
    }

    /// The attempt failed: delete what is left, keep the reason, retry after the back-off.
    fn fail(&mut self, now: Instant, reason: String) {
        // What the failed attempt still had queued is moot.
        self.actions.retain(|a| {
            matches!(
                a,
                Action::DeleteIkeSa { .. }
                    | Action::RemoveAddress { .. }
                    | Action::PersistLease { .. }
                    | Action::Ready { .. }
                    | Action::Failed { .. }
            )
        });
        let reason = match self.fallback_cause.take() {
            Some(cause) => format!("{cause}; then Mode Config: {reason}"),
            None => reason,
        };
        if let Some(sa) = self.attempt.sa.take() {
            self.actions.push_back(Action::DeleteIkeSa { sa });
        }
        if self.attempt.installed
            && let Some(address) = self.attempt.hoa
        {
            self.actions.push_back(Action::RemoveAddress { address });
        }
        self.attempt.installed = false;
        self.attempt.dhcp = None;
        self.attempt.hoa = None;
        self.attempt.children.clear();
        self.attempt.proposal = None;
        if self.stopping() {
            warn!(%reason, "bootstrap ended during shutdown");
            return self.stop();
        }
        self.failures = self.failures.saturating_add(1);
        let retry_in = backoff(self.failures);
        warn!(%reason, retry_in_s = retry_in.as_secs(), "bootstrap failed");
        self.last_error = Some(reason.clone());
        self.set_step(Step::Failed {
            retry_at: now + retry_in,
        });
        self.actions.push_back(Action::Failed { reason, retry_in });
    }

    /// Shutdown begins. With a DHCPv6 lease and a tunnel to carry it, Release is sent and the
    /// bootstrap waits for its Reply (at most [`RELEASE_WAIT`]): returns true, and the driver
    /// keeps feeding inputs until [`Self::is_stopped`]. Otherwise it is stopped at once.
    pub(crate) fn shutdown(&mut self, now: Instant) -> bool {
        let holding = self.attempt.dhcp.as_ref().is_some_and(|c| {
            matches!(
                c.state(),
                DhcpState::Bound { .. } | DhcpState::Renewing { .. } | DhcpState::Rebinding { .. }
            )
        });
        if holding
            && self.attempt.sa.is_some()
            && self.dhcp_source().is_some()
            && let Some(c) = self.attempt.dhcp.as_mut()
            && c.release(now).is_ok()
        {
            info!("releasing the DHCPv6 lease");
            self.set_step(Step::Releasing {
                deadline: now + RELEASE_WAIT,
            });
            self.pump_dhcp(now);
            return true;
        }
        self.stop();
        false
    }

    /// Shut down: no more timers or datagrams.
    fn stop(&mut self) {
        self.attempt.dhcp = None;
        self.set_step(Step::Stopped);
    }

    /// Writes what the bootstrap knows into the status.
    pub(crate) fn report(&self, s: &mut Status) {
        let a = &self.attempt;
        s.state = match self.step {
            Step::Idle => State::Starting,
            Step::Phase1 { .. } => State::Phase1,
            Step::InitialTunnel { .. } => State::InitialTunnel,
            Step::Address { .. } => State::Address,
            Step::Rfc3776 { .. } | Step::Installing { .. } => State::Rfc3776Sas,
            Step::Ready => State::Ready,
            Step::Failed { .. } => State::Failed,
            Step::Releasing { .. } | Step::Stopped => State::Stopping,
        };
        s.home_address = a.hoa;
        s.address_source = a.hoa.map(|_| a.path.source());
        s.ike_sa = IkeSaStatus {
            state: match (a.sa, &a.proposal) {
                (None, _) => IkeSaState::None,
                (Some(_), None) => IkeSaState::Connecting,
                (Some(_), Some(_)) => IkeSaState::Established,
            },
            proposal: a.proposal.clone(),
        };
        s.child_sas = a.children.iter().map(|c| c.status.clone()).collect();
        s.timings_ms = a.timings.millis();
        s.timings_us = a.timings.clone();
        s.last_error = self.last_error.clone();
        s.dhcpv6_fqdn = a
            .dhcp
            .as_ref()
            .and_then(Client::lease_fqdn)
            .map(|f| DhcpFqdnStatus {
                name: f.name.clone(),
                s: f.flags.s,
                o: f.flags.o,
                n: f.flags.n,
            });
    }
}

/// Draft §3.2: the initial tunnel, limited to DHCPv6 from our link-local address.
fn initial_tunnel_request(link_local: Ipv6Addr) -> ChildRequest {
    ChildRequest {
        mode: Mode::Tunnel,
        local_ts: TrafficSelector::host(IpAddr::V6(link_local))
            .with_protocol(IPPROTO_UDP, CLIENT_PORT),
        remote_ts: TrafficSelector::prefix(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0)
            .with_protocol(IPPROTO_UDP, SERVER_PORT),
    }
}

/// RFC 3776 §5.3.1 (BU/BA): transport-mode ESP between the home address and the home agent,
/// Mobility Header only.
fn transport_request(hoa: Ipv6Addr, home_agent: Ipv6Addr) -> ChildRequest {
    ChildRequest {
        mode: Mode::Transport,
        local_ts: TrafficSelector::host(IpAddr::V6(hoa)).with_protocol(IPPROTO_MH, 0),
        remote_ts: TrafficSelector::host(IpAddr::V6(home_agent)).with_protocol(IPPROTO_MH, 0),
    }
}

/// RFC 3776 §5.3.2, §5.3.4 (HoTI/HoT, payload): tunnel-mode ESP between the home address
/// and any address.
fn tunnel_request(hoa: Ipv6Addr) -> ChildRequest {
    ChildRequest {
        mode: Mode::Tunnel,
        local_ts: TrafficSelector::host(IpAddr::V6(hoa)),
        remote_ts: TrafficSelector::prefix(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0),
    }
}

#[cfg(test)]
mod tests;
