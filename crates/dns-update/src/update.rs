//! One UPDATE transaction over UDP, sans-IO: sign, send, retransmit, match and verify the
//! response, report the outcome.
//!
//! RFC 2136 leaves retransmission over UDP to the requestor; this engine resends the same
//! signed bytes every [`UpdateConfig::retransmit`] (1 s) up to [`UpdateConfig::tries`] (3)
//! transmissions in all, so the same ID and Time Signed are used
//! throughout and any copy's answer is accepted.

use std::fmt;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tracing::{debug, trace};

use crate::key::TsigKey;
use crate::tsig::{self, DEFAULT_FUDGE, TsigError, Verified};
use crate::wire::{OPCODE_UPDATE, Rcode, Response, UpdateRequest, WireError};

/// How to run an [`Update`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpdateConfig {
    /// The primary server: responses from any other address are ignored.
    pub server: SocketAddr,
    /// The TSIG Fudge we send (default 300 s, RFC 8945 §10).
    pub fudge: u16,
    /// Time between transmissions (default 1 s).
    pub retransmit: Duration,
    /// Transmissions in all (default 3); the outcome is decided `retransmit` after the last.
    pub tries: u32,
}

impl UpdateConfig {
    /// The defaults for this server.
    pub fn new(server: SocketAddr) -> Self {
        Self {
            server,
            fudge: DEFAULT_FUDGE,
            retransmit: Duration::from_secs(1),
            tries: 3,
        }
    }
}

/// A datagram to send: `size` bytes at the start of the caller's buffer, to `dst`.
#[must_use]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// The server.
    pub dst: SocketAddr,
    /// Bytes written into the buffer.
    pub size: usize,
}

/// Why a datagram from the server was not taken as the answer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BadResponse {
    /// Not a DNS message we can read.
    #[error("malformed response: {0}")]
    Malformed(#[from] WireError),
    /// QR not set, or another opcode.
    #[error("not an UPDATE response (QR {qr}, opcode {opcode})")]
    NotUpdateResponse {
        /// QR.
        qr: bool,
        /// Opcode.
        opcode: u8,
    },
    /// The TSIG check failed (RFC 8945 §5.4).
    #[error("{0}")]
    Tsig(#[from] TsigError),
}

/// How an [`Update`] ended.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// NOERROR, signed by the server with our key: the update is applied.
    Done,
    /// The server answered with an error. `tsig_error` is the TSIG Error field when not
    /// NOERROR (BADSIG, BADKEY, BADTIME). `authenticated` is false for the unsigned BADSIG /
    /// BADKEY answers of RFC 8945 §5.3.2, which nothing authenticates.
    Refused {
        /// The header RCODE (REFUSED, NOTAUTH, NOTZONE, …).
        rcode: Rcode,
        /// The TSIG error, if any.
        tsig_error: Option<Rcode>,
        /// Whether the answer was signed with our key and verified.
        authenticated: bool,
    },
    /// No acceptable answer after every transmission, and nothing unacceptable came either.
    Timeout,
    /// No acceptable answer after every transmission, but the server (or someone at its
    /// address) sent something we had to discard: the last such reason.
    BadResponse(BadResponse),
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Done => f.write_str("NOERROR"),
            Self::Refused {
                rcode,
                tsig_error,
                authenticated,
            } => {
                write!(f, "{rcode}")?;
                if let Some(e) = tsig_error {
                    write!(f, " (TSIG error {e})")?;
                }
                if !authenticated {
                    f.write_str(", unsigned")?;
                }
                Ok(())
            }
            Self::Timeout => f.write_str("no response"),
            Self::BadResponse(r) => write!(f, "bad response: {r}"),
        }
    }
}

/// Counters of an [`Update`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UpdateStats {
    /// Datagrams sent (first transmission included).
    pub transmissions: u32,
    /// Datagrams from an address other than the server's, ignored.
    pub wrong_source: u32,
    /// Datagrams with another ID, ignored.
    pub wrong_id: u32,
    /// Datagrams that did not parse or were not UPDATE responses, ignored.
    pub malformed: u32,
    /// Responses whose TSIG did not verify, ignored.
    pub unauthenticated: u32,
    /// Datagrams after the outcome was decided, ignored.
    pub late: u32,
}

/// One DNS UPDATE transaction (RFC 2136 over UDP, signed with RFC 8945 TSIG).
///
/// Calling order, in a loop until [`Update::outcome`] is `Some`: [`Update::poll_transmit`]
/// until `None` (send each datagram), wait for a datagram or [`Update::poll_timeout`], then
/// [`Update::handle_datagram`] or [`Update::handle_timeout`]. Time is passed in twice: a
/// monotonic `now` for the timers, and the wall clock in seconds since the epoch for TSIG's
/// Time Signed and the response's time check.
///
/// ```
/// use std::time::Instant;
/// use dns_update::{TsigKey, Update, UpdateConfig, UpdateRequest};
/// let key = TsigKey::from_strings("ha-key", "hmac-sha256", "c2VjcmV0")?;
/// let req = UpdateRequest::delete_aaaa("example.".parse()?, "mn1.example.".parse()?)?;
/// let now = Instant::now();
/// let cfg = UpdateConfig::new("[2001:db8:1::2]:53".parse()?);
/// let mut up = Update::new(cfg, &req, &key, 0x4242, now, 1_800_000_000);
/// let mut buf = Vec::new();
/// let t = up.poll_transmit(now, &mut buf).expect("first transmission");
/// assert_eq!(t.size, buf.len());
/// // socket.send_to(&buf[..t.size], t.dst) … then handle_datagram / handle_timeout.
/// assert!(up.poll_transmit(now, &mut buf).is_none());
/// assert_eq!(up.poll_timeout(), Some(now + std::time::Duration::from_secs(1)));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Update {
    config: UpdateConfig,
    key: TsigKey,
    id: u16,
    request: Vec<u8>,
    request_mac: Vec<u8>,
    transmit_due: bool,
    retry_at: Option<Instant>,
    last_bad: Option<BadResponse>,
    outcome: Option<Outcome>,
    stats: UpdateStats,
}

impl Update {
    /// Builds and signs the request with ID `id` (pick it at random: it is the first defence
    /// against spoofed answers) and Time Signed `unix_time`; the first transmission is due at
    /// once.
    pub fn new(
        config: UpdateConfig,
        request: &UpdateRequest,
        key: &TsigKey,
        id: u16,
        now: Instant,
        unix_time: u64,
    ) -> Self {
        let _ = now;
        let mut msg = Vec::with_capacity(256);
        request.emit(id, &mut msg);
        let request_mac = tsig::sign_request(&mut msg, key, unix_time, config.fudge);
        debug!(
            id,
            zone = %request.zone(),
            key = %key.name,
            bytes = msg.len(),
            "DNS UPDATE built"
        );
        Self {
            config,
            key: key.clone(),
            id,
            request: msg,
            request_mac,
            transmit_due: true,
            retry_at: None,
            last_bad: None,
            outcome: None,
            stats: UpdateStats::default(),
        }
    }

    /// The message ID.
    pub fn id(&self) -> u16 {
        self.id
    }

    /// The signed request as sent.
    pub fn request_bytes(&self) -> &[u8] {
        &self.request
    }

    /// The request's MAC.
    pub fn request_mac(&self) -> &[u8] {
        &self.request_mac
    }

    /// The server.
    pub fn server(&self) -> SocketAddr {
        self.config.server
    }

    /// The outcome, once decided.
    pub fn outcome(&self) -> Option<&Outcome> {
        self.outcome.as_ref()
    }

    /// Whether the outcome is decided.
    pub fn is_finished(&self) -> bool {
        self.outcome.is_some()
    }

    /// Counters.
    pub fn stats(&self) -> &UpdateStats {
        &self.stats
    }

    /// The next datagram, written into `buf` (cleared first), if one is due.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut Vec<u8>) -> Option<Transmit> {
        if self.outcome.is_some() || !self.transmit_due {
            return None;
        }
        self.transmit_due = false;
        self.stats.transmissions += 1;
        self.retry_at = Some(now + self.config.retransmit);
        buf.clear();
        buf.extend_from_slice(&self.request);
        trace!(
            id = self.id,
            try_ = self.stats.transmissions,
            "DNS UPDATE sent"
        );
        Some(Transmit {
            dst: self.config.server,
            size: buf.len(),
        })
    }

    /// When [`Update::handle_timeout`] must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.outcome.is_some() {
            None
        } else {
            self.retry_at
        }
    }

    /// Retransmits or gives up when the retransmission time has come.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.outcome.is_some() || self.retry_at.is_none_or(|t| now < t) {
            return;
        }
        self.retry_at = None;
        if self.stats.transmissions < self.config.tries {
            debug!(
                id = self.id,
                sent = self.stats.transmissions,
                "no DNS UPDATE response yet; retransmitting"
            );
            self.transmit_due = true;
        } else {
            let outcome = self
                .last_bad
                .take()
                .map_or(Outcome::Timeout, Outcome::BadResponse);
            debug!(id = self.id, %outcome, "DNS UPDATE gave up");
            self.outcome = Some(outcome);
        }
    }

    /// A datagram received on the socket the request was sent from. Datagrams from another
    /// address, with another ID, that do not parse, or whose TSIG does not verify are ignored
    /// (counted, logged); only an authenticated answer, or an unsigned BADKEY/BADSIG error,
    /// decides the outcome.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, data: &[u8], unix_time: u64) {
        let _ = now;
        if self.outcome.is_some() {
            self.stats.late += 1;
            trace!(%from, "ignoring datagram after the DNS UPDATE outcome");
            return;
        }
        if from != self.config.server {
            self.stats.wrong_source += 1;
            debug!(%from, server = %self.config.server, "ignoring DNS datagram from another address");
            return;
        }
        if data.len() >= 2 && u16::from_be_bytes([data[0], data[1]]) != self.id {
            self.stats.wrong_id += 1;
            debug!(
                id = u16::from_be_bytes([data[0], data[1]]),
                expected = self.id,
                "ignoring DNS response with another ID"
            );
            return;
        }
        let resp = match Response::parse(data) {
            Ok(r) => r,
            Err(e) => {
                self.stats.malformed += 1;
                debug!(error = %e, "ignoring malformed DNS response");
                self.last_bad = Some(BadResponse::Malformed(e));
                return;
            }
        };
        if !resp.qr || resp.opcode != OPCODE_UPDATE {
            self.stats.malformed += 1;
            debug!(
                qr = resp.qr,
                opcode = resp.opcode,
                "ignoring non-UPDATE-response"
            );
            self.last_bad = Some(BadResponse::NotUpdateResponse {
                qr: resp.qr,
                opcode: resp.opcode,
            });
            return;
        }
        let verified = match tsig::verify_response(
            &resp,
            &self.key,
            self.id,
            &self.request_mac,
            unix_time,
        ) {
            Ok(v) => v,
            Err(e) => {
                self.stats.unauthenticated += 1;
                debug!(error = %e, rcode = %resp.rcode, "ignoring DNS response that fails TSIG");
                self.last_bad = Some(BadResponse::Tsig(e));
                return;
            }
        };
        let outcome = match verified {
            Verified::Signed {
                error: Rcode::NOERROR,
            } if resp.rcode == Rcode::NOERROR => Outcome::Done,
            Verified::Signed { error } => Outcome::Refused {
                rcode: resp.rcode,
                tsig_error: (error != Rcode::NOERROR).then_some(error),
                authenticated: true,
            },
            Verified::Unsigned { error } => Outcome::Refused {
                rcode: resp.rcode,
                tsig_error: Some(error),
                authenticated: false,
            },
        };
        debug!(id = self.id, %outcome, "DNS UPDATE answered");
        self.outcome = Some(outcome);
        self.retry_at = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::Algorithm;
    use crate::name::Name;
    use crate::tsig::sign_response_for_tests;
    use crate::wire::HEADER_LEN;

    const T0: u64 = 1_800_000_000;

    fn key(alg: Algorithm) -> TsigKey {
        TsigKey::new(
            Name::from_ascii("ha-key").unwrap(),
            alg,
            b"0123456789abcdef0123456789abcdef".to_vec(),
        )
        .unwrap()
    }

    fn server() -> SocketAddr {
        "[2001:db8:1::2]:53".parse().unwrap()
    }

    fn request() -> UpdateRequest {
        UpdateRequest::replace_aaaa(
            Name::from_ascii("example.").unwrap(),
            Name::from_ascii("mn1.example.").unwrap(),
            &["2001:db8:1::99".parse().unwrap()],
            300,
        )
        .unwrap()
    }

    /// The server's answer to `up`'s request: the zone section echoed, header RCODE `rcode`,
    /// signed with `k` (or unsigned with TSIG error `error` when `unsigned`).
    fn answer(
        up: &Update,
        k: &TsigKey,
        rcode: Rcode,
        error: Rcode,
        unsigned: bool,
        time: u64,
    ) -> Vec<u8> {
        let req = up.request_bytes();
        let zone_end = {
            let (_, end) = Name::read(req, HEADER_LEN).unwrap();
            end + 4
        };
        let mut m = req[..zone_end].to_vec();
        m[2] |= 0x80; // QR
        m[3] = (m[3] & 0xf0) | (rcode.0 as u8);
        m[6..12].fill(0); // PR, UP, AD = 0
        sign_response_for_tests(&mut m, k, up.request_mac(), time, 300, error, unsigned);
        m
    }

    fn started(alg: Algorithm) -> (Update, Instant, Vec<u8>) {
        let now = Instant::now();
        let mut up = Update::new(
            UpdateConfig::new(server()),
            &request(),
            &key(alg),
            0x1234,
            now,
            T0,
        );
        let mut buf = Vec::new();
        let t = up.poll_transmit(now, &mut buf).expect("first transmission");
        assert_eq!((t.dst, t.size), (server(), buf.len()));
        (up, now, buf)
    }

    #[test]
    fn request_is_signed_and_parses() {
        for alg in Algorithm::ALL {
            let (up, _, buf) = started(alg);
            let r = Response::parse(&buf).expect("our request parses");
            assert_eq!((r.id, r.qr, r.opcode), (0x1234, false, OPCODE_UPDATE));
            assert_eq!(r.counts, [1, 0, 2, 1]);
            let t = r.tsig.expect("tsig");
            assert_eq!(t.key_name, Name::from_ascii("ha-key.").unwrap());
            assert_eq!(t.algorithm, alg.wire_name());
            assert_eq!((t.time_signed, t.fudge, t.original_id), (T0, 300, 0x1234));
            assert_eq!(t.mac, up.request_mac());
            assert_eq!(t.mac.len(), alg.mac_len());
        }
    }

    #[test]
    fn signed_noerror_is_done() {
        for alg in Algorithm::ALL {
            let (mut up, now, _) = started(alg);
            let a = answer(
                &up,
                &key(alg),
                Rcode::NOERROR,
                Rcode::NOERROR,
                false,
                T0 + 1,
            );
            up.handle_datagram(now, server(), &a, T0 + 2);
            assert_eq!(up.outcome(), Some(&Outcome::Done), "{alg}");
            assert_eq!(up.poll_timeout(), None);
            up.handle_datagram(now, server(), &a, T0 + 2);
            assert_eq!(up.stats().late, 1);
        }
    }

    #[test]
    fn signed_refusal_and_unsigned_key_errors() {
        let k = key(Algorithm::HmacSha256);
        let (mut up, now, _) = started(Algorithm::HmacSha256);
        let a = answer(&up, &k, Rcode::REFUSED, Rcode::NOERROR, false, T0);
        up.handle_datagram(now, server(), &a, T0);
        assert_eq!(
            up.outcome(),
            Some(&Outcome::Refused {
                rcode: Rcode::REFUSED,
                tsig_error: None,
                authenticated: true
            })
        );
        assert_eq!(up.outcome().unwrap().to_string(), "REFUSED");

        for err in [Rcode::BADSIG, Rcode::BADKEY] {
            let (mut up, now, _) = started(Algorithm::HmacSha256);
            let a = answer(&up, &k, Rcode::NOTAUTH, err, true, T0);
            up.handle_datagram(now, server(), &a, T0 + 10_000);
            let o = up.outcome().expect("decided").clone();
            assert_eq!(
                o,
                Outcome::Refused {
                    rcode: Rcode::NOTAUTH,
                    tsig_error: Some(err),
                    authenticated: false
                }
            );
            assert_eq!(
                o.to_string(),
                format!("NOTAUTH (TSIG error {err}), unsigned")
            );
        }

        // BADTIME is signed, with the server's clock: no time check on it.
        let (mut up, now, _) = started(Algorithm::HmacSha256);
        let a = answer(&up, &k, Rcode::NOTAUTH, Rcode::BADTIME, false, T0 + 5000);
        up.handle_datagram(now, server(), &a, T0);
        assert_eq!(
            up.outcome(),
            Some(&Outcome::Refused {
                rcode: Rcode::NOTAUTH,
                tsig_error: Some(Rcode::BADTIME),
                authenticated: true
            })
        );
    }

    #[test]
    fn forged_answers_are_ignored_then_reported() {
        let k = key(Algorithm::HmacSha256);
        let (mut up, t0, _) = started(Algorithm::HmacSha256);
        let good = answer(&up, &k, Rcode::NOERROR, Rcode::NOERROR, false, T0);

        // Another source, another ID: ignored, counted, not reported.
        up.handle_datagram(t0, "[2001:db8:1::3]:53".parse().unwrap(), &good, T0);
        let mut other_id = good.clone();
        other_id[1] ^= 1;
        up.handle_datagram(t0, server(), &other_id, T0);
        // Bad MAC, wrong key, unsigned NOERROR, garbage, a query: ignored and remembered.
        let mut bad_mac = good.clone();
        let last = bad_mac.len() - 8;
        bad_mac[last] ^= 0x55; // inside the MAC
        up.handle_datagram(t0, server(), &bad_mac, T0);
        let other_key =
            TsigKey::new(k.name.clone(), k.algorithm, b"another secret".to_vec()).unwrap();
        up.handle_datagram(
            t0,
            server(),
            &answer(&up, &other_key, Rcode::NOERROR, Rcode::NOERROR, false, T0),
            T0,
        );
        let renamed = TsigKey::new(
            Name::from_ascii("other").unwrap(),
            k.algorithm,
            b"x".to_vec(),
        )
        .unwrap();
        up.handle_datagram(
            t0,
            server(),
            &answer(&up, &renamed, Rcode::NOERROR, Rcode::NOERROR, false, T0),
            T0,
        );
        let mut unsigned = good[..good.len()].to_vec();
        let r = Response::parse(&good).unwrap();
        unsigned.truncate(r.tsig_offset);
        unsigned[11] = 0;
        up.handle_datagram(t0, server(), &unsigned, T0);
        up.handle_datagram(t0, server(), &good[..20], T0);
        let mut query = good.clone();
        query[2] &= 0x7f;
        up.handle_datagram(t0, server(), &query, T0);
        // Signed NOERROR outside the fudge.
        let stale = answer(&up, &k, Rcode::NOERROR, Rcode::NOERROR, false, T0 - 301);
        up.handle_datagram(t0, server(), &stale, T0);
        // A NOERROR answer claiming BADSIG without MAC is still not a success.
        assert_eq!(up.outcome(), None);
        let s = *up.stats();
        assert_eq!(
            (s.wrong_source, s.wrong_id, s.malformed, s.unauthenticated),
            (1, 1, 2, 5),
            "{s:?}"
        );

        // Retransmissions every second, then the last reason.
        let mut buf = Vec::new();
        let mut at = t0;
        for i in 2..=3 {
            at = up.poll_timeout().expect("timer");
            assert_eq!(at, t0 + Duration::from_secs(i - 1));
            up.handle_timeout(at);
            assert!(up.poll_transmit(at, &mut buf).is_some());
            assert!(up.poll_transmit(at, &mut buf).is_none());
            assert_eq!(&buf[..], up.request_bytes());
        }
        up.handle_timeout(at + Duration::from_millis(999));
        assert_eq!(up.outcome(), None);
        up.handle_timeout(at + Duration::from_secs(1));
        assert!(
            matches!(
                up.outcome(),
                Some(Outcome::BadResponse(BadResponse::Tsig(
                    TsigError::BadTime { .. }
                )))
            ),
            "{:?}",
            up.outcome()
        );
        assert_eq!(up.stats().transmissions, 3);
    }

    #[test]
    fn silence_is_timeout() {
        let (mut up, t0, _) = started(Algorithm::HmacSha1);
        let mut buf = Vec::new();
        let mut now = t0;
        while let Some(t) = up.poll_timeout() {
            now = t;
            up.handle_timeout(now);
            while up.poll_transmit(now, &mut buf).is_some() {}
        }
        assert_eq!(up.outcome(), Some(&Outcome::Timeout));
        assert_eq!(now, t0 + Duration::from_secs(3));
        assert_eq!(up.stats().transmissions, 3);
    }

    #[test]
    fn tampered_answers_never_verify() {
        let k = key(Algorithm::HmacSha256);
        let (up, _, _) = started(Algorithm::HmacSha256);
        let good = answer(&up, &k, Rcode::NOERROR, Rcode::NOERROR, false, T0);
        let r = Response::parse(&good).unwrap();
        assert!(tsig::verify_response(&r, &k, 0x1234, up.request_mac(), T0).is_ok());
        // Flipping any bit of the signed part or the MAC breaks it (or the parse). The ID
        // (bytes 0-1) is not signed as sent: the MAC covers the Original ID, and the engine
        // matches the ID itself.
        for i in 2..good.len() {
            for bit in [0x01, 0x80] {
                let mut m = good.clone();
                m[i] ^= bit;
                if let Ok(r) = Response::parse(&m) {
                    let v = tsig::verify_response(&r, &k, 0x1234, up.request_mac(), T0);
                    assert!(v.is_err(), "byte {i} bit {bit:#x} still verifies: {v:?}");
                }
            }
        }
        // Another request MAC (a replayed answer to another request) does not verify.
        let mut other = up.request_mac().to_vec();
        other[0] ^= 1;
        assert_eq!(
            tsig::verify_response(&r, &k, 0x1234, &other, T0),
            Err(TsigError::BadMac)
        );
    }
}
