//! Per-exchange bookkeeping: the CBC chain of a message ID, retransmission of the request we
//! are waiting on (with exponential backoff and a limit), and the answer we repeat when the
//! peer retransmits a message we already processed (RFC 2408 §5 leaves timers to the
//! implementation; the backoff follows common practice).

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::time::{Duration, Instant};

use crate::child::ChildSa;
use crate::config::Retransmit;
use crate::crypto::DhSecret;
use crate::event::ChildRequest;
use crate::proposal::EspProposal;

/// What an exchange with a non-zero message ID is doing.
pub(crate) enum Kind {
    /// Phase 1 (message ID zero); the state lives in the SA.
    Phase1,
    /// We sent QM1 and wait for QM2.
    QmInitiated(Box<QmInit>),
    /// We sent QM2 and wait for QM3.
    QmResponded(Box<QmResp>),
    /// We sent CFG_REQUEST and wait for CFG_REPLY.
    CfgRequested { identifier: u16 },
    /// We received CFG_REQUEST and wait for the address provider.
    CfgAwaitingAddress { identifier: u16, request: u64 },
    /// We sent CFG_SET and wait for CFG_ACK.
    CfgPushed { identifier: u16 },
    /// We sent R-U-THERE and wait for the ACK.
    Dpd { seq: u32 },
    /// (XAUTH edge) We sent the XAUTH CFG_REQUEST and wait for CFG_REPLY.
    XauthRequested(Box<crate::xauth::XauthRequest>),
    /// (XAUTH edge) We sent CFG_SET with XAUTH-STATUS and wait for CFG_ACK.
    XauthStatus { identifier: u16, ok: bool },
    /// Finished; kept so that a retransmitted last message gets our last answer again.
    Done,
}

/// The initiator's side of a Quick Mode in flight.
pub(crate) struct QmInit {
    pub(crate) request: ChildRequest,
    pub(crate) request_id: u64,
    pub(crate) spi_in: u32,
    pub(crate) ni: Vec<u8>,
    pub(crate) dh: Option<DhSecret>,
    pub(crate) offered: Vec<EspProposal>,
    pub(crate) encap_mode: u16,
    /// The SA this one replaces (our SPI), when it is a rekey.
    pub(crate) rekey_of: Option<u32>,
}

/// The responder's side of a Quick Mode waiting for QM3.
pub(crate) struct QmResp {
    pub(crate) child: ChildSa,
    pub(crate) ni: Vec<u8>,
    pub(crate) nr: Vec<u8>,
}

/// One exchange.
pub(crate) struct Exchange {
    pub(crate) kind: Kind,
    /// The IV for the next message of this exchange (either direction).
    pub(crate) iv: Vec<u8>,
    /// The last datagram we sent in this exchange.
    pub(crate) last_sent: Option<Vec<u8>>,
    /// When to send `last_sent` again; `None` when we are not waiting for an answer.
    pub(crate) retransmit_at: Option<Instant>,
    /// How often `last_sent` went out.
    pub(crate) sent: u32,
    /// Digest of the last datagram we accepted in this exchange.
    pub(crate) last_rx: Option<u64>,
    /// When to forget the exchange.
    pub(crate) expires_at: Instant,
}

/// How long a finished exchange is kept to answer retransmissions.
pub(crate) const KEEP_DONE: Duration = Duration::from_secs(30);

impl Exchange {
    pub(crate) fn new(kind: Kind, iv: Vec<u8>, now: Instant) -> Self {
        Self {
            kind,
            iv,
            last_sent: None,
            retransmit_at: None,
            sent: 0,
            last_rx: None,
            expires_at: now + Duration::from_secs(120),
        }
    }

    /// Records a request we sent and arms its retransmission.
    pub(crate) fn sent_request(&mut self, data: Vec<u8>, now: Instant, rt: &Retransmit) {
        self.last_sent = Some(data);
        self.sent = 1;
        self.retransmit_at = Some(now + rt.initial);
        self.expires_at = now + total_wait(rt) + Duration::from_secs(1);
    }

    /// Records a response (or final message) we sent; it is repeated only when the peer
    /// repeats the message it answers.
    pub(crate) fn sent_response(&mut self, data: Vec<u8>, now: Instant) {
        self.last_sent = Some(data);
        self.retransmit_at = None;
        self.expires_at = now + KEEP_DONE;
    }

    /// The next retransmission is due: returns whether to send again (false: give up).
    pub(crate) fn backoff(&mut self, now: Instant, rt: &Retransmit) -> bool {
        if self.sent >= rt.tries {
            self.retransmit_at = None;
            return false;
        }
        let wait = rt
            .initial
            .saturating_mul(1u32 << self.sent.min(16))
            .min(rt.max_interval);
        self.sent += 1;
        self.retransmit_at = Some(now + wait);
        true
    }

    pub(crate) fn deadline(&self) -> Instant {
        self.retransmit_at
            .map_or(self.expires_at, |r| r.min(self.expires_at))
    }
}

/// The longest a request may wait for its answer, over all its retransmissions.
pub(crate) fn total_wait(rt: &Retransmit) -> Duration {
    (0..rt.tries.min(32))
        .map(|i| {
            rt.initial
                .saturating_mul(1u32 << i.min(16))
                .min(rt.max_interval)
        })
        .sum()
}

/// A digest of a datagram to recognise retransmissions.
pub(crate) fn digest(data: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    data.hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_gives_up() {
        let rt = Retransmit {
            initial: Duration::from_secs(1),
            max_interval: Duration::from_secs(3),
            tries: 4,
        };
        let t0 = Instant::now();
        let mut e = Exchange::new(Kind::Done, vec![], t0);
        e.sent_request(vec![1], t0, &rt);
        assert_eq!(e.retransmit_at, Some(t0 + Duration::from_secs(1)));
        assert!(e.backoff(t0, &rt));
        assert_eq!(e.retransmit_at, Some(t0 + Duration::from_secs(2)));
        assert!(e.backoff(t0, &rt));
        assert_eq!(e.retransmit_at, Some(t0 + Duration::from_secs(3)));
        assert!(e.backoff(t0, &rt));
        assert!(!e.backoff(t0, &rt));
        assert_eq!(total_wait(&rt), Duration::from_secs(1 + 2 + 3 + 3));
    }
}
