//! Extended authentication (XAUTH, draft-ietf-ipsec-isakmp-xauth-06) after phase 1, both roles:
//! the *edge* (the responder of an XAUTH*Init* method, the home agent) asks, the *client* (the
//! initiator, the mobile node) answers. Everything travels in Transaction exchanges
//! (draft-ietf-ipsec-isakmp-mode-cfg-05 §3, HASH = prf(SKEYID_a, M-ID | attributes)):
//!
//! ```text
//!  Client (MN)                                   Edge (HA)
//!                <--  CFG_REQUEST(M-ID a){XAUTH-TYPE, USER-NAME, USER-PASSWORD [, CHALLENGE]}
//!  CFG_REPLY(M-ID a){[XAUTH-TYPE,] USER-NAME, USER-PASSWORD}  -->
//!                                         (the daemon checks: Event::XauthCredentials,
//!                                          Engine::xauth_verdict)
//!                <--  CFG_SET(M-ID b){XAUTH-STATUS OK|FAIL}
//!  CFG_ACK(M-ID b){XAUTH-STATUS}  -->
//! ```
//!
//! * xauth-06 §4.2: a reply carries XAUTH-TYPE only when the request did, and then the same
//!   value. A request without XAUTH-TYPE is Generic (strongSwan sends none).
//! * xauth-06 (p. 12): for the CHAP of RADIUS the type MUST be RADIUS-CHAP, for the other
//!   RADIUS methods (PAP) Generic. With RADIUS-CHAP the edge sends a fresh random 16-byte
//!   XAUTH-CHALLENGE and the client answers in XAUTH-USER-PASSWORD with the 17 bytes of a RADIUS
//!   CHAP-Password (RFC 2865 §5.3): a CHAP identifier it chose, then
//!   `MD5(identifier | password | challenge)` (RFC 1994 §4.1). The edge can hand both to RADIUS
//!   unchanged (CHAP-Password, and CHAP-Challenge, RFC 2865 §5.40); the password never leaves
//!   the client. (The draft's own text on the byte layout was not at hand to quote: the layout
//!   is that of the implementations that do RADIUS-CHAP, e.g. a QuickSec edge that checks the
//!   17 bytes against `MD5(id | password | challenge)` and forwards them as CHAP-Password.)
//! * STATUS FAIL ends the attempt and the edge deletes the phase-1 SA: here after the client's
//!   ACK (or when the ACK does not come), with a Delete; the client deletes its side at once.
//!
//! The SA is *announced* ([`Event::IkeSaEstablished`]) only once XAUTH has succeeded; until
//! then only Informationals and the XAUTH exchanges themselves are accepted on it (no Mode
//! Config, no Quick Mode either way: dropped and counted in
//! [`crate::Counters::dropped_xauth_pending`]; the API answers [`ApiError::XauthPending`]). The
//! whole of XAUTH is bounded by [`crate::Config::xauth_timeout`]; an edge counts failed
//! attempts per peer identity and per source address and stops asking past
//! [`crate::Config::xauth_max_failures`] within [`crate::Config::xauth_failure_window`].
//!
//! Not implemented: OTP and S/KEY types, XAUTH-NEXT-PIN / XAUTH-ANSWER dialogues, several
//! requests per attempt, the old Cisco attribute numbers (13-20), and the XAUTH*Resp* methods
//! (where the initiator is the edge).

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::time::Instant;

use isakmp::{AttrValue, Attribute, CfgType, ConfigPayload, cfg};
use md5::{Digest, Md5};
use tracing::{debug, info, warn};
use zeroize::Zeroizing;

use crate::auth::XauthRole;
use crate::crypto::ct_eq;
use crate::engine::{ApiError, Engine};
use crate::event::{Event, FailReason, IkeSaId};
use crate::exchange::Kind;
use crate::identity::Identity;
use crate::main_mode::Reject;

/// Length of the RADIUS-CHAP challenge the edge sends (RFC 2865 §5.40 allows other lengths; 16
/// is what RADIUS servers see most).
pub(crate) const CHAP_CHALLENGE_LEN: usize = 16;

/// The longest user name or password we take (a RADIUS attribute holds 253 bytes).
const MAX_CREDENTIAL_LEN: usize = 253;

/// Failure records kept for the attempt limits (identities and addresses together).
const MAX_FAILURE_RECORDS: usize = 4096;

/// The XAUTH type an edge asks for (XAUTH-TYPE, xauth-06 §6.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum XauthType {
    /// Generic (0): user name and password; the password travels (encrypted) to the edge.
    Generic,
    /// RADIUS-CHAP (1): the edge sends a challenge and the client answers with a CHAP response
    /// (RFC 1994 §4.1); the password never leaves the client.
    RadiusChap,
}

impl XauthType {
    /// The XAUTH-TYPE value.
    pub fn value(self) -> u16 {
        match self {
            Self::Generic => cfg::xauth_type::GENERIC,
            Self::RadiusChap => cfg::xauth_type::RADIUS_CHAP,
        }
    }

    /// The type of an XAUTH-TYPE value, if we implement it.
    pub fn from_value(v: u64) -> Option<Self> {
        match u16::try_from(v).ok()? {
            cfg::xauth_type::GENERIC => Some(Self::Generic),
            cfg::xauth_type::RADIUS_CHAP => Some(Self::RadiusChap),
            _ => None,
        }
    }
}

/// A client's XAUTH credentials. `Debug` does not show the password.
#[derive(Clone)]
pub struct XauthCredentials {
    /// XAUTH-USER-NAME.
    pub user: String,
    /// The password; sent as XAUTH-USER-PASSWORD for Generic, used only to compute the CHAP
    /// response for RADIUS-CHAP.
    pub password: Zeroizing<Vec<u8>>,
}

impl XauthCredentials {
    /// Credentials from a user name and a password.
    pub fn new(user: impl Into<String>, password: impl Into<Vec<u8>>) -> Self {
        Self {
            user: user.into(),
            password: Zeroizing::new(password.into()),
        }
    }
}

impl fmt::Debug for XauthCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("XauthCredentials")
            .field("user", &self.user)
            .field("password", &format_args!("<redacted>"))
            .finish()
    }
}

/// What a client answered to an edge's XAUTH request, for the driver to check (against
/// RADIUS, RFC 2865). `Debug` shows neither the password nor the CHAP response.
#[derive(Clone)]
pub enum XauthResponse {
    /// Generic: the password itself (RADIUS: User-Password, or a CHAP-Password the edge
    /// computes with [`chap_response`] and a challenge of its own).
    Generic {
        /// The password.
        password: Zeroizing<Vec<u8>>,
    },
    /// RADIUS-CHAP: the client's CHAP answer to the challenge we sent.
    Chap {
        /// The CHAP identifier the client chose (first octet of CHAP-Password).
        ident: u8,
        /// The challenge we sent (RADIUS CHAP-Challenge).
        challenge: Vec<u8>,
        /// `MD5(ident | password | challenge)`.
        response: [u8; 16],
    },
}

impl XauthResponse {
    /// The value of a RADIUS CHAP-Password attribute (RFC 2865 §5.3: identifier, then the 16
    /// response octets), for RADIUS-CHAP answers.
    pub fn chap_password(&self) -> Option<[u8; 17]> {
        match self {
            Self::Chap {
                ident, response, ..
            } => {
                let mut v = [0u8; 17];
                v[0] = *ident;
                v[1..].copy_from_slice(response);
                Some(v)
            }
            Self::Generic { .. } => None,
        }
    }

    /// Whether the answer proves knowledge of `password` (for drivers with a local user table
    /// instead of RADIUS). Constant time in the compared bytes.
    pub fn matches_password(&self, password: &[u8]) -> bool {
        match self {
            Self::Generic { password: p } => ct_eq(p, password),
            Self::Chap {
                ident,
                challenge,
                response,
            } => ct_eq(&chap_response(*ident, password, challenge), response),
        }
    }
}

impl fmt::Debug for XauthResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Generic { .. } => f.write_str("Generic { password: <redacted> }"),
            Self::Chap {
                ident, challenge, ..
            } => f
                .debug_struct("Chap")
                .field("ident", ident)
                .field("challenge_len", &challenge.len())
                .field("response", &format_args!("<redacted>"))
                .finish(),
        }
    }
}

/// The CHAP response (RFC 1994 §4.1, as RADIUS checks it, RFC 2865 §2.2): `MD5(ident | secret |
/// challenge)`.
pub fn chap_response(ident: u8, secret: &[u8], challenge: &[u8]) -> [u8; 16] {
    let mut h = Md5::new();
    h.update([ident]);
    h.update(secret);
    h.update(challenge);
    let mut out = [0u8; 16];
    out.copy_from_slice(&h.finalize());
    out
}

/// Where XAUTH of one SA stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stage {
    /// Edge: the request is out (or about to be). Client: waiting for the request.
    Pending,
    /// Edge: the reply is in; waiting for [`Engine::xauth_verdict`].
    AwaitingVerdict,
    /// Client: replied; waiting for the status.
    Replied,
    /// Done: the SA may be used.
    Succeeded,
    /// Failed: the SA goes away.
    Failed,
}

/// XAUTH state of an IKE SA whose method has XAUTH.
#[derive(Debug)]
pub(crate) struct Xauth {
    pub(crate) role: XauthRole,
    pub(crate) stage: Stage,
    /// When the whole of XAUTH must be over.
    pub(crate) deadline: Instant,
    /// The XAUTH user, once known.
    pub(crate) user: Option<String>,
    /// Why it failed, once it has.
    pub(crate) failure: Option<FailReason>,
}

impl Xauth {
    pub(crate) fn new(role: XauthRole, deadline: Instant) -> Self {
        Self {
            role,
            stage: Stage::Pending,
            deadline,
            user: None,
            failure: None,
        }
    }

    /// Whether the SA may not be used (yet).
    pub(crate) fn blocks(&self) -> bool {
        self.stage != Stage::Succeeded
    }

    /// Whether XAUTH is still under way (its deadline applies).
    pub(crate) fn running(&self) -> bool {
        matches!(
            self.stage,
            Stage::Pending | Stage::AwaitingVerdict | Stage::Replied
        )
    }
}

/// The edge's XAUTH request in flight.
pub(crate) struct XauthRequest {
    pub(crate) identifier: u16,
    pub(crate) xtype: XauthType,
    pub(crate) challenge: Option<Vec<u8>>,
}

/// What failed XAUTH attempts are counted by.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum FailureKey {
    Identity(Identity),
    Addr(IpAddr),
}

/// Failed attempts of one key: how many, since when (a fixed window).
pub(crate) type FailureRecords = HashMap<FailureKey, (u32, Instant)>;

/// Whether an Attribute payload is XAUTH's (any attribute of the xauth-06 §6.2 range).
pub(crate) fn has_xauth_attributes(attrs: &[Attribute]) -> bool {
    attrs
        .iter()
        .any(|a| (cfg::XAUTH_TYPE..=cfg::XAUTH_ANSWER).contains(&a.ty))
}

fn variable(a: &Attribute) -> Option<&[u8]> {
    match &a.value {
        AttrValue::Variable(v) => Some(v),
        AttrValue::Basic(_) => None,
    }
}

/// A printable, bounded rendering of an XAUTH-MESSAGE for logs and failure reasons.
fn message_text(v: &[u8]) -> String {
    String::from_utf8_lossy(&v[..v.len().min(128)])
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// (Edge) Reads the client's CFG_REPLY to `req`: the user and the answer, or why it is
/// unusable.
pub(crate) fn parse_reply(
    req: &XauthRequest,
    attrs: &[Attribute],
) -> Result<(String, XauthResponse), String> {
    let (mut ty, mut user, mut password, mut passcode, mut status) = (None, None, None, None, None);
    for a in attrs {
        match a.ty {
            cfg::XAUTH_TYPE => ty = Some(a.as_u64()),
            cfg::XAUTH_USER_NAME => user = variable(a),
            cfg::XAUTH_USER_PASSWORD => password = variable(a),
            cfg::XAUTH_PASSCODE => passcode = variable(a),
            cfg::XAUTH_STATUS => status = a.as_u64(),
            _ => {}
        }
    }
    if status == Some(u64::from(cfg::xauth_status::FAIL)) {
        return Err("the client cancelled (XAUTH-STATUS FAIL in its reply)".into());
    }
    // xauth-06 §4.2: the reply's type is the request's.
    if let Some(t) = ty
        && t != Some(u64::from(req.xtype.value()))
    {
        return Err(format!(
            "reply of XAUTH-TYPE {t:?} to a request of type {}",
            req.xtype.value()
        ));
    }
    let user = user.ok_or("no XAUTH-USER-NAME in the reply")?;
    if user.is_empty() || user.len() > MAX_CREDENTIAL_LEN {
        return Err(format!("XAUTH-USER-NAME of {} bytes", user.len()));
    }
    let user = String::from_utf8(user.to_vec()).map_err(|_| "XAUTH-USER-NAME is not UTF-8")?;
    let response = match req.xtype {
        XauthType::Generic => {
            let pw = password
                .or(passcode)
                .ok_or("no XAUTH-USER-PASSWORD in the reply")?;
            if pw.is_empty() || pw.len() > MAX_CREDENTIAL_LEN {
                return Err(format!("XAUTH-USER-PASSWORD of {} bytes", pw.len()));
            }
            XauthResponse::Generic {
                password: Zeroizing::new(pw.to_vec()),
            }
        }
        XauthType::RadiusChap => {
            let pw = password.ok_or("no XAUTH-USER-PASSWORD (CHAP response) in the reply")?;
            let Some((&ident, rest)) = pw.split_first() else {
                return Err("empty CHAP response".into());
            };
            let response: [u8; 16] = rest.try_into().map_err(|_| {
                format!(
                    "CHAP response of {} bytes (a CHAP-Password is 17: identifier and MD5)",
                    pw.len()
                )
            })?;
            XauthResponse::Chap {
                ident,
                challenge: req.challenge.clone().unwrap_or_default(),
                response,
            }
        }
    };
    Ok((user, response))
}

/// (Client) The attributes of our CFG_REPLY to an edge's request, or why we cannot answer.
/// `ident` is the CHAP identifier to use for RADIUS-CHAP.
pub(crate) fn build_reply(
    creds: &XauthCredentials,
    attrs: &[Attribute],
    ident: u8,
) -> Result<(XauthType, Vec<Attribute>), String> {
    let (mut ty, mut wants_password, mut wants_passcode, mut challenge) =
        (None, false, false, None);
    for a in attrs {
        match a.ty {
            cfg::XAUTH_TYPE => ty = Some(a.as_u64()),
            cfg::XAUTH_USER_PASSWORD => wants_password = true,
            cfg::XAUTH_PASSCODE => wants_passcode = true,
            cfg::XAUTH_CHALLENGE => challenge = variable(a),
            cfg::XAUTH_MESSAGE => {
                if let Some(m) = variable(a) {
                    debug!(message = %message_text(m), "XAUTH message from the edge");
                }
            }
            _ => {}
        }
    }
    // xauth-06 §4.2: no XAUTH-TYPE means Generic, and then none in the reply either.
    let xtype = match ty {
        None => XauthType::Generic,
        Some(v) => v
            .and_then(XauthType::from_value)
            .ok_or_else(|| format!("unsupported XAUTH-TYPE {v:?}"))?,
    };
    let mut out = Vec::with_capacity(3);
    if ty.is_some() {
        out.push(Attribute::basic(cfg::XAUTH_TYPE, xtype.value()));
    }
    out.push(Attribute::variable(
        cfg::XAUTH_USER_NAME,
        creds.user.as_bytes().to_vec(),
    ));
    match xtype {
        XauthType::Generic => {
            let t = if wants_passcode && !wants_password {
                cfg::XAUTH_PASSCODE
            } else {
                cfg::XAUTH_USER_PASSWORD
            };
            out.push(Attribute::variable(t, creds.password.to_vec()));
        }
        XauthType::RadiusChap => {
            let challenge = challenge
                .filter(|c| !c.is_empty())
                .ok_or("RADIUS-CHAP request without XAUTH-CHALLENGE")?;
            let mut v = Vec::with_capacity(17);
            v.push(ident);
            v.extend_from_slice(&chap_response(ident, &creds.password, challenge));
            out.push(Attribute::variable(cfg::XAUTH_USER_PASSWORD, v));
        }
    }
    Ok((xtype, out))
}

impl Engine {
    /// (Edge) Phase 1 is done: asks for the credentials, unless the peer's identity or address
    /// failed too often lately (then the SA is deleted at once).
    pub(crate) fn start_xauth_edge(&mut self, now: Instant, id: IkeSaId) {
        let Some(sa) = self.sas.get(&id) else { return };
        let xtype = sa
            .peer
            .and_then(|i| self.config.peers.get(i))
            .and_then(|p| p.auth.xauth())
            .unwrap_or(XauthType::Generic);
        let identity = sa.remote_id.clone().unwrap_or(Identity::Any);
        let ip = sa.remote.ip();
        if let Some(why) = self.xauth_limited(now, &identity, ip) {
            self.counters.xauth_refused_limit += 1;
            warn!(sa = %id, %identity, %ip, reason = %why, "not asking for XAUTH credentials");
            self.xauth_abort(now, id, FailReason::Policy(why), true);
            return;
        }
        let mid = self.random_message_id(id);
        let identifier = self.new_identifier();
        let challenge =
            (xtype == XauthType::RadiusChap).then(|| self.random_bytes(CHAP_CHALLENGE_LEN));
        let mut attributes = vec![
            Attribute::basic(cfg::XAUTH_TYPE, xtype.value()),
            Attribute::variable(cfg::XAUTH_USER_NAME, Vec::new()),
            Attribute::variable(cfg::XAUTH_USER_PASSWORD, Vec::new()),
        ];
        if let Some(c) = &challenge {
            attributes.push(Attribute::variable(cfg::XAUTH_CHALLENGE, c.clone()));
        }
        info!(sa = %id, %identity, msg_id = mid, xauth = ?xtype, "sending XAUTH request");
        let p = ConfigPayload {
            cfg_type: CfgType::REQUEST,
            identifier,
            attributes,
        };
        let kind = Kind::XauthRequested(Box::new(XauthRequest {
            identifier,
            xtype,
            challenge,
        }));
        self.send_cfg(now, id, mid, p, Some(kind));
    }

    /// (Edge) The client's CFG_REPLY: hands the credentials to the driver, or fails XAUTH.
    pub(crate) fn on_xauth_reply(
        &mut self,
        now: Instant,
        id: IkeSaId,
        req: &XauthRequest,
        cp: &ConfigPayload,
    ) {
        let running = self
            .sas
            .get(&id)
            .and_then(|s| s.xauth.as_ref())
            .is_some_and(|x| x.role == XauthRole::Edge && x.stage == Stage::Pending);
        if !running {
            debug!(sa = %id, "XAUTH reply after XAUTH ended; ignored");
            return;
        }
        match parse_reply(req, &cp.attributes) {
            Ok((user, response)) => {
                let Some(sa) = self.sas.get_mut(&id) else {
                    return;
                };
                let identity = sa.remote_id.clone().unwrap_or(Identity::Any);
                if let Some(x) = sa.xauth.as_mut() {
                    x.stage = Stage::AwaitingVerdict;
                    x.user = Some(user.clone());
                }
                info!(sa = %id, %identity, %user, xauth = ?req.xtype, "XAUTH reply received; asking for a verdict");
                self.events.push_back(Event::XauthCredentials {
                    sa: id,
                    identity,
                    user,
                    response,
                });
            }
            Err(why) => {
                warn!(sa = %id, reason = %why, "unusable XAUTH reply");
                self.record_xauth_failure(now, id);
                self.send_xauth_status(now, id, Err(FailReason::Authentication(why)));
            }
        }
    }

    /// (Edge) Answers an [`Event::XauthCredentials`]: `ok` sends XAUTH-STATUS OK, after which
    /// the SA is established ([`Event::XauthSucceeded`], then [`Event::IkeSaEstablished`]);
    /// otherwise STATUS FAIL ([`Event::XauthFailed`]), and the SA is deleted once the client
    /// acknowledges (or does not).
    pub fn xauth_verdict(&mut self, now: Instant, sa: IkeSaId, ok: bool) -> Result<(), ApiError> {
        let s = self.sas.get(&sa).ok_or(ApiError::NoSuchSa(sa))?;
        let awaited = !s.dead
            && s.xauth
                .as_ref()
                .is_some_and(|x| x.role == XauthRole::Edge && x.stage == Stage::AwaitingVerdict);
        if !awaited {
            return Err(ApiError::NoXauthPending(sa));
        }
        if ok {
            self.send_xauth_status(now, sa, Ok(()));
        } else {
            self.record_xauth_failure(now, sa);
            self.send_xauth_status(
                now,
                sa,
                Err(FailReason::Authentication(
                    "XAUTH credentials refused".into(),
                )),
            );
        }
        Ok(())
    }

    /// (Edge) Sends CFG_SET with XAUTH-STATUS on a new message ID and records the outcome.
    fn send_xauth_status(&mut self, now: Instant, id: IkeSaId, outcome: Result<(), FailReason>) {
        let ok = outcome.is_ok();
        let mid = self.random_message_id(id);
        let identifier = self.new_identifier();
        let status = if ok {
            cfg::xauth_status::OK
        } else {
            cfg::xauth_status::FAIL
        };
        let p = ConfigPayload {
            cfg_type: CfgType::SET,
            identifier,
            attributes: vec![Attribute::basic(cfg::XAUTH_STATUS, status)],
        };
        info!(sa = %id, msg_id = mid, ok, "sending XAUTH status");
        self.send_cfg(now, id, mid, p, Some(Kind::XauthStatus { identifier, ok }));
        match outcome {
            Ok(()) => self.xauth_succeeded(id),
            Err(reason) => self.xauth_failed(id, reason),
        }
    }

    /// (Edge) The client acknowledged our status: after FAIL the SA goes.
    pub(crate) fn on_xauth_ack(&mut self, now: Instant, id: IkeSaId, ok: bool) {
        if ok {
            debug!(sa = %id, "XAUTH status OK acknowledged");
        } else {
            self.xauth_abort(
                now,
                id,
                FailReason::Authentication("XAUTH failed".into()),
                true,
            );
        }
    }

    /// (Client) The edge's XAUTH request: answers it from our credentials.
    pub(crate) fn on_xauth_request(
        &mut self,
        now: Instant,
        id: IkeSaId,
        mid: u32,
        cp: &ConfigPayload,
    ) -> Result<(), Reject> {
        let Some(creds) = self.config.local_auth.xauth_credentials().cloned() else {
            return Err(Reject::Unexpected(
                "XAUTH request but no XAUTH credentials".into(),
            ));
        };
        let stage = self
            .sas
            .get(&id)
            .and_then(|s| s.xauth.as_ref())
            .map(|x| x.stage);
        if !matches!(stage, Some(Stage::Pending | Stage::Replied)) {
            return Err(Reject::Unexpected(format!(
                "XAUTH request in stage {stage:?}"
            )));
        }
        let mut ident = [0u8];
        self.rng.fill(&mut ident);
        match build_reply(&creds, &cp.attributes, ident[0]) {
            Ok((xtype, attributes)) => {
                info!(sa = %id, msg_id = mid, xauth = ?xtype, user = %creds.user, "answering the XAUTH request");
                let p = ConfigPayload {
                    cfg_type: CfgType::REPLY,
                    identifier: cp.identifier,
                    attributes,
                };
                self.send_cfg(now, id, mid, p, None);
                if let Some(x) = self.sas.get_mut(&id).and_then(|s| s.xauth.as_mut()) {
                    x.stage = Stage::Replied;
                    x.user = Some(creds.user);
                }
            }
            Err(why) => {
                warn!(sa = %id, reason = %why, "cannot answer the XAUTH request");
                self.xauth_abort(now, id, FailReason::Protocol(why), true);
            }
        }
        Ok(())
    }

    /// (Client) The edge's XAUTH status: acknowledged; OK establishes the SA, FAIL ends it.
    pub(crate) fn on_xauth_set(
        &mut self,
        now: Instant,
        id: IkeSaId,
        mid: u32,
        cp: &ConfigPayload,
    ) -> Result<(), Reject> {
        let (mut status, mut message) = (None, None);
        for a in &cp.attributes {
            match a.ty {
                cfg::XAUTH_STATUS => status = a.as_u64(),
                cfg::XAUTH_MESSAGE => message = variable(a).map(message_text),
                _ => {}
            }
        }
        let Some(status) = status.and_then(|s| u16::try_from(s).ok()) else {
            return Err(Reject::Malformed(
                "XAUTH CFG_SET without XAUTH-STATUS".into(),
            ));
        };
        let ack = ConfigPayload {
            cfg_type: CfgType::ACK,
            identifier: cp.identifier,
            attributes: vec![Attribute::basic(cfg::XAUTH_STATUS, status)],
        };
        self.send_cfg(now, id, mid, ack, None);
        let stage = self
            .sas
            .get(&id)
            .and_then(|s| s.xauth.as_ref())
            .map(|x| x.stage);
        if !matches!(stage, Some(Stage::Pending | Stage::Replied)) {
            debug!(sa = %id, ?stage, "XAUTH status after XAUTH ended; acknowledged only");
            return Ok(());
        }
        if status == cfg::xauth_status::OK {
            info!(sa = %id, "the edge accepted our XAUTH credentials");
            if let (Some(x), Some(c)) = (
                self.sas.get_mut(&id).and_then(|s| s.xauth.as_mut()),
                self.config.local_auth.xauth_credentials(),
            ) {
                x.user.get_or_insert_with(|| c.user.clone());
            }
            self.xauth_succeeded(id);
        } else {
            let why = match message {
                Some(m) => format!("the edge refused our XAUTH credentials: {m}"),
                None => "the edge refused our XAUTH credentials".to_owned(),
            };
            warn!(sa = %id, status, reason = %why, "XAUTH failed");
            // The edge deletes the phase-1 SA; we need not tell it.
            self.xauth_abort(now, id, FailReason::Authentication(why), false);
        }
        Ok(())
    }

    /// XAUTH succeeded: the SA is announced.
    fn xauth_succeeded(&mut self, id: IkeSaId) {
        let Some(x) = self.sas.get_mut(&id).and_then(|s| s.xauth.as_mut()) else {
            return;
        };
        x.stage = Stage::Succeeded;
        let user = x.user.clone().unwrap_or_default();
        self.counters.xauth_succeeded += 1;
        info!(sa = %id, %user, "XAUTH succeeded");
        self.events
            .push_back(Event::XauthSucceeded { sa: id, user });
        self.announce_established(id);
    }

    /// XAUTH failed (once): reported; the SA stays until [`Engine::xauth_abort`].
    fn xauth_failed(&mut self, id: IkeSaId, reason: FailReason) {
        let Some(x) = self.sas.get_mut(&id).and_then(|s| s.xauth.as_mut()) else {
            return;
        };
        if x.stage == Stage::Failed {
            return;
        }
        x.stage = Stage::Failed;
        x.failure = Some(reason.clone());
        self.counters.xauth_failed += 1;
        warn!(sa = %id, user = ?x.user, %reason, "XAUTH failed");
        self.events.push_back(Event::XauthFailed { sa: id, reason });
    }

    /// Ends an SA whose XAUTH did not succeed: XAUTH fails (if it had not yet), a Delete goes
    /// out with `send_delete`, and the SA, never announced, ends with [`Event::IkeSaFailed`].
    pub(crate) fn xauth_abort(
        &mut self,
        now: Instant,
        id: IkeSaId,
        reason: FailReason,
        send_delete: bool,
    ) {
        if self.sas.get(&id).is_none_or(|s| s.dead) {
            return;
        }
        self.xauth_failed(id, reason.clone());
        let reason = self
            .sas
            .get(&id)
            .and_then(|s| s.xauth.as_ref())
            .and_then(|x| x.failure.clone())
            .unwrap_or(reason);
        if send_delete {
            self.send_isakmp_delete(now, id);
        }
        self.fail_ike(id, reason);
    }

    /// The XAUTH deadline of `id` passed.
    pub(crate) fn xauth_timed_out(&mut self, now: Instant, id: IkeSaId) {
        let Some(x) = self.sas.get(&id).and_then(|s| s.xauth.as_ref()) else {
            return;
        };
        let reason = match (x.role, x.stage) {
            (XauthRole::Edge, Stage::AwaitingVerdict) => {
                FailReason::Policy("no verdict on the XAUTH credentials in time".into())
            }
            (XauthRole::Edge, _) => {
                self.record_xauth_failure(now, id);
                FailReason::Timeout
            }
            (XauthRole::Client, _) => FailReason::Timeout,
        };
        warn!(sa = %id, %reason, "XAUTH did not complete in time");
        self.xauth_abort(now, id, reason, true);
    }

    /// (Edge) Why XAUTH must not be tried for this identity or address now, if so.
    fn xauth_limited(&self, now: Instant, identity: &Identity, ip: IpAddr) -> Option<String> {
        let max = self.config.xauth_max_failures;
        let window = self.config.xauth_failure_window;
        if max == 0 {
            return None;
        }
        let over = |k: &FailureKey| {
            self.xauth_failures
                .get(k)
                .is_some_and(|(n, since)| *n >= max && now < *since + window)
        };
        if *identity != Identity::Any && over(&FailureKey::Identity(identity.clone())) {
            return Some(format!(
                "{max} failed XAUTH attempts of {identity} within {window:?}"
            ));
        }
        if over(&FailureKey::Addr(ip)) {
            return Some(format!(
                "{max} failed XAUTH attempts from {ip} within {window:?}"
            ));
        }
        None
    }

    /// (Edge) Counts a failed attempt against the SA's identity and address.
    fn record_xauth_failure(&mut self, now: Instant, id: IkeSaId) {
        let Some(sa) = self.sas.get(&id) else { return };
        let window = self.config.xauth_failure_window;
        let mut keys = vec![FailureKey::Addr(sa.remote.ip())];
        if let Some(i) = sa.remote_id.clone().filter(|i| *i != Identity::Any) {
            keys.push(FailureKey::Identity(i));
        }
        if self.xauth_failures.len() + keys.len() > MAX_FAILURE_RECORDS {
            self.xauth_failures
                .retain(|_, (_, since)| now < *since + window);
            while self.xauth_failures.len() + keys.len() > MAX_FAILURE_RECORDS {
                let Some(oldest) = self
                    .xauth_failures
                    .iter()
                    .min_by_key(|(_, (_, since))| *since)
                    .map(|(k, _)| k.clone())
                else {
                    break;
                };
                self.xauth_failures.remove(&oldest);
            }
        }
        for k in keys {
            let e = self.xauth_failures.entry(k).or_insert((0, now));
            if now >= e.1 + window {
                *e = (0, now);
            }
            e.0 = e.0.saturating_add(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 1994 §4.1 semantics, independently: the response is the MD5 of the identifier
    /// octet, the secret and the challenge, in that order (RFC 2865 §2.2 and §5.3 use the same).
    #[test]
    fn chap_response_known_answer() {
        // MD5(0x01 | "secret" | 0x00..0x0f), computed independently with Python's hashlib.
        let challenge: Vec<u8> = (0u8..16).collect();
        assert_eq!(
            hex(&chap_response(1, b"secret", &challenge)),
            "740e86463bda3a4d7017d6e0fba0699d"
        );
        // The RFC 1321 test vector MD5("abc") through the same function: ident 'a', "b", "c".
        assert_eq!(
            hex(&chap_response(b'a', b"b", b"c")),
            "900150983cd24fb0d6963f7d28e17f72"
        );
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn reply_round_trip_generic_and_chap() {
        let creds = XauthCredentials::new("joe", b"pw".to_vec());
        // Generic without XAUTH-TYPE (strongSwan): none in the reply either.
        let req = [
            Attribute::variable(cfg::XAUTH_USER_NAME, vec![]),
            Attribute::variable(cfg::XAUTH_USER_PASSWORD, vec![]),
        ];
        let (t, attrs) = build_reply(&creds, &req, 7).unwrap();
        assert_eq!(t, XauthType::Generic);
        assert!(!attrs.iter().any(|a| a.ty == cfg::XAUTH_TYPE));
        let r = XauthRequest {
            identifier: 1,
            xtype: XauthType::Generic,
            challenge: None,
        };
        let (user, resp) = parse_reply(&r, &attrs).unwrap();
        assert_eq!(user, "joe");
        assert!(resp.matches_password(b"pw"));
        assert!(!resp.matches_password(b"pW"));
        assert_eq!(format!("{resp:?}"), "Generic { password: <redacted> }");
        // RADIUS-CHAP.
        let challenge = vec![0x42; 16];
        let req = [
            Attribute::basic(cfg::XAUTH_TYPE, 1),
            Attribute::variable(cfg::XAUTH_USER_NAME, vec![]),
            Attribute::variable(cfg::XAUTH_USER_PASSWORD, vec![]),
            Attribute::variable(cfg::XAUTH_CHALLENGE, challenge.clone()),
        ];
        let (t, attrs) = build_reply(&creds, &req, 9).unwrap();
        assert_eq!(t, XauthType::RadiusChap);
        assert_eq!(attrs[0], Attribute::basic(cfg::XAUTH_TYPE, 1));
        let pw = attrs
            .iter()
            .find(|a| a.ty == cfg::XAUTH_USER_PASSWORD)
            .unwrap();
        let AttrValue::Variable(v) = &pw.value else {
            panic!()
        };
        assert_eq!(v.len(), 17);
        assert_eq!(v[0], 9);
        assert_eq!(v[1..], chap_response(9, b"pw", &challenge));
        assert!(!v.windows(2).any(|w| w == b"pw"), "no password on the wire");
        let r = XauthRequest {
            identifier: 1,
            xtype: XauthType::RadiusChap,
            challenge: Some(challenge),
        };
        let (_, resp) = parse_reply(&r, &attrs).unwrap();
        assert_eq!(resp.chap_password().unwrap()[..], v[..]);
        assert!(resp.matches_password(b"pw"));
        assert!(!format!("{resp:?}").contains("response: ["));
        // A RADIUS-CHAP request without a challenge, an unknown type, a wrong-type reply.
        assert!(build_reply(&creds, &req[..3], 1).is_err());
        assert!(build_reply(&creds, &[Attribute::basic(cfg::XAUTH_TYPE, 2)], 1).is_err());
        let generic = XauthRequest {
            identifier: 1,
            xtype: XauthType::Generic,
            challenge: None,
        };
        assert!(parse_reply(&generic, &attrs).is_err());
        assert!(parse_reply(&generic, &[]).is_err());
    }

    #[test]
    fn credentials_debug_hides_the_password() {
        let c = XauthCredentials::new("joe", b"hunter2".to_vec());
        let d = format!("{c:?}");
        assert!(d.contains("joe") && !d.contains("hunter2"), "{d}");
        let d = format!("{:?}", crate::LocalAuth::Hybrid(c));
        assert!(!d.contains("hunter2"), "{d}");
    }
}
