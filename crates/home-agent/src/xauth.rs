//! XAUTH answers checked with RADIUS (draft-devarapalli-mip6-ikev1-bootstrap §4: the home agent
//! "SHOULD" check the mobile node with RADIUS CHAP).
//!
//! The IKE engine asks for the credentials (draft-ietf-ipsec-isakmp-xauth-06) and hands the
//! answer over as [`ikev1::Event::XauthCredentials`]; this module turns it into an RFC 2865
//! Access-Request and the RADIUS verdict into [`ikev1::Engine::xauth_verdict`]:
//!
//! * RADIUS-CHAP XAUTH: the node's own CHAP answer goes out as CHAP-Password with our challenge
//!   as CHAP-Challenge (RFC 2865 §5.3, §5.40): the password never reaches this host.
//! * Generic XAUTH: with `method = "chap"` (the default) the password becomes a CHAP-Password to
//!   a fresh challenge of ours, so it does not travel further; with `"pap"` it goes as
//!   User-Password (RFC 2865 §5.2).
//! * A `[[peers]] xauth_user` restricts the XAUTH users an identity may log in as: any other
//!   user is refused before RADIUS is asked.
//!
//! The RADIUS engine is the sans-IO [`radius::Client`] (retransmission, failover,
//! Message-Authenticator); this module owns its UDP socket and the map from requests to IKE SAs.
//! Passwords are not logged; outcomes are, with the identity, the user and the server's
//! Reply-Message.

use std::collections::HashMap;
use std::io;
use std::net::{Ipv6Addr, SocketAddr};
use std::time::Instant;

use ikev1::crypto::{Rng as _, SystemRng};
use ikev1::{IkeSaId, XauthResponse};
use radius::{AccessRequest, AttributeType, Client, Outcome, Password, RequestHandle};
use tokio::net::UdpSocket;
use tracing::{info, warn};

use crate::config::{RadiusMethod, RadiusSettings};

/// What the engine is to be told about one IKE SA's XAUTH.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Decision {
    /// The IKE SA.
    pub(crate) sa: IkeSaId,
    /// Accepted.
    pub(crate) ok: bool,
}

/// One XAUTH answer of a peer.
pub(crate) struct Attempt<'a> {
    /// The IKE SA.
    pub(crate) sa: IkeSaId,
    /// Its phase-1 identity.
    pub(crate) identity: &'a str,
    /// The XAUTH user.
    pub(crate) user: &'a str,
    /// What the peer answered.
    pub(crate) response: XauthResponse,
    /// The only user this identity may log in as, if restricted.
    pub(crate) allowed_user: Option<&'a str>,
    /// The peer's outer address (RADIUS Calling-Station-Id).
    pub(crate) peer: Option<SocketAddr>,
}

struct Pending {
    sa: IkeSaId,
    identity: String,
    user: String,
}

/// Counters for `status`.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct XauthCounters {
    /// Accepted by RADIUS.
    pub(crate) accepted: u64,
    /// Rejected by RADIUS (or by the identity's `xauth_user`).
    pub(crate) rejected: u64,
    /// No RADIUS server answered.
    pub(crate) timeouts: u64,
}

/// The RADIUS side of XAUTH.
pub(crate) struct XauthChecker {
    client: Client,
    socket: UdpSocket,
    method: RadiusMethod,
    pending: HashMap<RequestHandle, Pending>,
    counters: XauthCounters,
    tx: Vec<u8>,
}

impl XauthChecker {
    /// A client for the configured servers, with its socket (any local address: the kernel
    /// picks the source toward each server).
    pub(crate) fn new(settings: &RadiusSettings) -> anyhow::Result<Self> {
        let mut rng = SystemRng::new();
        let client = Client::new(settings.client.clone(), move |b: &mut [u8]| rng.fill(b))?;
        let socket = std::net::UdpSocket::bind((Ipv6Addr::UNSPECIFIED, 0))?;
        socket.set_nonblocking(true)?;
        Ok(Self {
            client,
            socket: UdpSocket::from_std(socket)?,
            method: settings.method,
            pending: HashMap::new(),
            counters: XauthCounters::default(),
            tx: Vec::with_capacity(4096),
        })
    }

    /// Counters so far.
    pub(crate) fn counters(&self) -> XauthCounters {
        self.counters
    }

    /// RADIUS datagrams dropped (malformed, unknown, failing their authenticators).
    pub(crate) fn radius_dropped(&self) -> u64 {
        self.client.stats().dropped()
    }

    /// Starts checking an answer. A refusal that needs no server comes back at once.
    pub(crate) async fn check(&mut self, now: Instant, a: Attempt<'_>) -> Option<Decision> {
        if let Some(allowed) = a.allowed_user
            && allowed != a.user
        {
            warn!(sa = %a.sa, identity = a.identity, user = a.user, allowed, "XAUTH refused: this identity may not log in as that user ([[peers]] xauth_user)");
            self.counters.rejected += 1;
            return Some(Decision {
                sa: a.sa,
                ok: false,
            });
        }
        let mut req = match (a.response, self.method) {
            (
                XauthResponse::Chap {
                    ident,
                    challenge,
                    response,
                },
                _,
            ) => AccessRequest::chap_response(a.user, ident, response, challenge),
            (XauthResponse::Generic { password }, RadiusMethod::Chap) => {
                AccessRequest::chap(a.user, Password::new(password.to_vec()))
            }
            (XauthResponse::Generic { password }, RadiusMethod::Pap) => {
                AccessRequest::pap(a.user, Password::new(password.to_vec()))
            }
        };
        // Service-Type Framed (2), NAS-Port-Type Virtual (5), as for a remote-access login.
        req = req
            .with_attribute(AttributeType::SERVICE_TYPE, 2u32.to_be_bytes())
            .with_attribute(AttributeType::NAS_PORT_TYPE, 5u32.to_be_bytes());
        if let Some(peer) = a.peer {
            req = req.with_attribute(AttributeType::CALLING_STATION_ID, peer.ip().to_string());
        }
        match self.client.start(req) {
            Ok(h) => {
                self.pending.insert(
                    h,
                    Pending {
                        sa: a.sa,
                        identity: a.identity.to_owned(),
                        user: a.user.to_owned(),
                    },
                );
                self.flush(now).await;
                None
            }
            Err(e) => {
                warn!(sa = %a.sa, identity = a.identity, user = a.user, error = %e, "XAUTH refused: RADIUS request not sent");
                self.counters.rejected += 1;
                Some(Decision {
                    sa: a.sa,
                    ok: false,
                })
            }
        }
    }

    /// The IKE SA went before its verdict: forget the request.
    pub(crate) fn forget(&mut self, sa: IkeSaId) {
        let gone: Vec<RequestHandle> = self
            .pending
            .iter()
            .filter(|(_, p)| p.sa == sa)
            .map(|(h, _)| *h)
            .collect();
        for h in gone {
            self.client.cancel(h);
            self.pending.remove(&h);
        }
    }

    /// Receives a datagram from a RADIUS server.
    pub(crate) async fn recv(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.socket.recv_from(buf).await
    }

    /// An answer from a server.
    pub(crate) async fn on_datagram(
        &mut self,
        now: Instant,
        from: SocketAddr,
        data: &[u8],
    ) -> Vec<Decision> {
        self.client.handle_datagram(now, from, data);
        self.flush(now).await;
        self.verdicts()
    }

    /// When [`XauthChecker::on_timeout`] is next due.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.client.poll_timeout()
    }

    /// Retransmissions, failovers and timeouts.
    pub(crate) async fn on_timeout(&mut self, now: Instant) -> Vec<Decision> {
        self.client.handle_timeout(now);
        self.flush(now).await;
        self.verdicts()
    }

    async fn flush(&mut self, now: Instant) {
        while let Some(t) = self.client.poll_transmit(now, &mut self.tx) {
            if let Err(e) = self.socket.send_to(&self.tx[..t.size], t.destination).await {
                warn!(server = %t.destination, error = %e, "RADIUS send failed");
            }
        }
    }

    fn verdicts(&mut self) -> Vec<Decision> {
        let mut out = Vec::new();
        while let Some(v) = self.client.poll_event() {
            let Some(p) = self.pending.remove(&v.request) else {
                continue;
            };
            let ok = match &v.outcome {
                Outcome::Accept(reply) => {
                    self.counters.accepted += 1;
                    info!(sa = %p.sa, identity = %p.identity, user = %p.user, server = %reply.server, "XAUTH accepted by RADIUS");
                    true
                }
                Outcome::Reject(reply) => {
                    self.counters.rejected += 1;
                    warn!(sa = %p.sa, identity = %p.identity, user = %p.user, server = %reply.server, message = reply.reply_message().unwrap_or_default(), "XAUTH rejected by RADIUS");
                    false
                }
                Outcome::Challenge(reply) => {
                    // A second round (one-time passwords) would need a new XAUTH request with
                    // the server's prompt; not offered, so a challenge is a refusal.
                    self.counters.rejected += 1;
                    warn!(sa = %p.sa, identity = %p.identity, user = %p.user, server = %reply.server, "XAUTH refused: RADIUS answered Access-Challenge, which this home agent does not relay");
                    false
                }
                Outcome::Timeout => {
                    self.counters.timeouts += 1;
                    warn!(sa = %p.sa, identity = %p.identity, user = %p.user, "XAUTH refused: no RADIUS server answered");
                    false
                }
            };
            out.push(Decision { sa: p.sa, ok });
        }
        out
    }
}
