//! Encrypted exchanges after phase 1 (message ID ≠ 0): Quick Mode, Transaction and
//! Informational. This module finds the exchange of a message ID, decrypts under that
//! exchange's IV chain, checks the HASH the exchange type prescribes (RFC 2409 §5.5, §5.7;
//! mode-cfg-05 §3.2) and only then advances the chain and hands the payloads on.

use std::net::SocketAddr;
use std::time::Instant;

use isakmp::{ExchangeType, Flags, Header, Message, Payload};
use tracing::debug;

use crate::crypto;
use crate::crypto::ct_eq;
use crate::engine::Engine;
use crate::event::{FailReason, IkeSaId};
use crate::exchange::{Exchange, Kind, digest};
use crate::ike_sa::{Hashed, P1State, split_hashed};
use crate::main_mode::Reject;

/// Exchanges one IKE SA may have in progress or remembered (finished ones are kept
/// [`crate::exchange::KEEP_DONE`] to answer retransmissions); new message IDs beyond this are
/// dropped, so that a peer cannot make us hold unbounded state.
pub(crate) const MAX_EXCHANGES: usize = 64;

/// Which HASH protects a message.
#[derive(Clone, Copy, Debug)]
pub(crate) enum HashKind<'a> {
    /// QM1, Informational and Transaction: prf(SKEYID_a, M-ID | rest).
    Plain,
    /// QM2: prf(SKEYID_a, M-ID | Ni_b | rest).
    Qm2 { ni: &'a [u8] },
}

impl Engine {
    pub(crate) fn handle_after_phase1(
        &mut self,
        now: Instant,
        id: IkeSaId,
        local: SocketAddr,
        remote: SocketAddr,
        h: &Header,
        data: &[u8],
    ) {
        let Some(sa) = self.sas.get(&id) else { return };
        if !h.flags.contains(Flags::ENCRYPTION) {
            // Unauthenticated: at most a hint for a failure reason, never a state change.
            if h.exchange == ExchangeType::INFORMATIONAL
                && let Ok(m) = Message::parse(data)
            {
                for p in m.payloads {
                    if let Payload::Notify(n) = p {
                        debug!(sa = %id, notify = ?n.notify_type, "plaintext notify (unauthenticated), noted only");
                        if let Some(s) = self.sas.get_mut(&id)
                            && s.state != P1State::Established
                        {
                            s.p1.hint = Some(FailReason::Notify(n.notify_type));
                        }
                    }
                }
            }
            self.counters.dropped_unexpected += 1;
            return;
        }
        if sa.state != P1State::Established {
            // draft-devarapalli-mip6-ikev1-bootstrap §6: no Transaction before phase 1 ends.
            self.count_drop(
                id,
                remote,
                Reject::Unexpected(format!(
                    "{:?} exchange before phase 1 completed",
                    h.exchange
                )),
            );
            return;
        }
        if !matches!(
            h.exchange,
            ExchangeType::QUICK | ExchangeType::TRANSACTION | ExchangeType::INFORMATIONAL
        ) {
            self.count_drop(
                id,
                remote,
                Reject::Unexpected(format!("exchange {:?}", h.exchange)),
            );
            return;
        }
        let mid = h.message_id;
        if mid == 0 && h.exchange != ExchangeType::INFORMATIONAL {
            self.count_drop(
                id,
                remote,
                Reject::Malformed("message ID 0 after phase 1".into()),
            );
            return;
        }
        if !sa.exchanges.contains_key(&mid)
            && sa.exchanges.len() >= MAX_EXCHANGES
            && !self.evict_finished_exchange(id)
        {
            self.count_drop(
                id,
                remote,
                Reject::Unexpected(format!(
                    "new exchange {mid:#010x}: {MAX_EXCHANGES} already in progress"
                )),
            );
            return;
        }
        let Some(sa) = self.sas.get(&id) else { return };
        let d = digest(data);
        let (iv, known) = match sa.exchanges.get(&mid) {
            Some(ex) => {
                if ex.last_rx == Some(d) {
                    if let Some(out) = ex.last_sent.clone() {
                        self.counters.retransmits_answered += 1;
                        debug!(sa = %id, msg_id = mid, "peer repeated a message; repeating our answer");
                        self.transmit(id, out);
                    }
                    return;
                }
                (ex.iv.clone(), true)
            }
            None => match sa.phase2_iv(mid) {
                Some(iv) => (iv, false),
                None => return,
            },
        };
        let (plain, next_iv) = match sa.open(data, &iv) {
            Ok(x) => x,
            Err(e) => {
                self.count_drop(id, remote, Reject::Malformed(format!("{e}")));
                return;
            }
        };
        let msg = match split_hashed(h.next_payload, &plain) {
            Ok(m) => m,
            Err(e) => {
                self.count_drop(
                    id,
                    remote,
                    Reject::Auth(format!("does not decrypt to a HASH-first message: {e}")),
                );
                return;
            }
        };
        let Some(keys) = sa.keys() else { return };
        let ok = match (h.exchange, sa.exchanges.get(&mid).map(|e| &e.kind)) {
            (ExchangeType::QUICK, Some(Kind::QmInitiated(q))) => ct_eq(
                &msg.hash,
                &crypto::qm_hash2(keys.prf, &keys.skeyid_a, mid, &q.ni, &msg.rest),
            ),
            (ExchangeType::QUICK, Some(Kind::QmResponded(_))) => true, // HASH(3) is checked by the handler
            (ExchangeType::QUICK, Some(_)) => false,
            _ => ct_eq(
                &msg.hash,
                &crypto::info_hash(keys.prf, &keys.skeyid_a, mid, &msg.rest),
            ),
        };
        if !ok {
            self.count_drop(
                id,
                remote,
                Reject::Auth(format!("bad HASH in {:?} message {mid:#010x}", h.exchange)),
            );
            return;
        }
        // Authentic (QM3 is checked below before anything changes).
        let Some(sa) = self.sas.get_mut(&id) else {
            return;
        };
        sa.last_heard = now;
        if sa.remote != remote || sa.local != local {
            debug!(sa = %id, old = %sa.remote, new = %remote, "peer endpoint changed");
            sa.remote = remote;
            sa.local = local;
        }
        if h.exchange == ExchangeType::QUICK && !known && sa.xauth_blocks() {
            // Nothing before XAUTH has succeeded (draft-devarapalli-mip6-ikev1-bootstrap §4:
            // hybrid authentication MUST be followed by XAUTH; `xauth.rs`).
            self.counters.dropped_xauth_pending += 1;
            debug!(sa = %id, msg_id = mid, "dropped Quick Mode: XAUTH has not succeeded");
            return;
        }
        let result = match h.exchange {
            ExchangeType::QUICK => self.on_quick_mode(now, id, mid, known, next_iv, d, msg),
            ExchangeType::TRANSACTION => self.on_transaction(now, id, mid, known, next_iv, d, msg),
            _ => self.on_informational(now, id, mid, known, next_iv, d, msg),
        };
        if let Err(e) = result {
            self.count_drop(id, remote, e);
        }
    }

    /// Forgets the finished exchange that would expire first; false if none is finished.
    fn evict_finished_exchange(&mut self, id: IkeSaId) -> bool {
        let Some(sa) = self.sas.get_mut(&id) else {
            return false;
        };
        let oldest = sa
            .exchanges
            .iter()
            .filter(|(_, e)| matches!(e.kind, Kind::Done))
            .min_by_key(|(_, e)| e.expires_at)
            .map(|(m, _)| *m);
        oldest.is_some_and(|m| sa.exchanges.remove(&m).is_some())
    }

    /// Encrypts `payloads` behind a HASH in exchange `mid` (created when new), advances its
    /// chain and returns the datagram.
    pub(crate) fn seal_hashed(
        &mut self,
        now: Instant,
        id: IkeSaId,
        xt: ExchangeType,
        mid: u32,
        payloads: Vec<Payload>,
        hash: HashKind<'_>,
    ) -> Option<Vec<u8>> {
        let sa = self.sas.get_mut(&id)?;
        let keys = sa.keys()?;
        let (prf, skeyid_a) = (keys.prf, keys.skeyid_a.clone());
        let all = sa.hashed(payloads, |rest| match hash {
            HashKind::Plain => crypto::info_hash(prf, &skeyid_a, mid, rest),
            HashKind::Qm2 { ni } => crypto::qm_hash2(prf, &skeyid_a, mid, ni, rest),
        });
        self.seal_raw(now, id, xt, mid, &all)
    }

    /// Encrypts `payloads` as they are in exchange `mid` and advances its chain.
    pub(crate) fn seal_raw(
        &mut self,
        now: Instant,
        id: IkeSaId,
        xt: ExchangeType,
        mid: u32,
        payloads: &[Payload],
    ) -> Option<Vec<u8>> {
        let sa = self.sas.get_mut(&id)?;
        if !sa.exchanges.contains_key(&mid) {
            let iv = sa.phase2_iv(mid)?;
            sa.exchanges.insert(mid, Exchange::new(Kind::Done, iv, now));
        }
        let iv = sa.exchanges.get(&mid)?.iv.clone();
        let (out, next_iv) = sa.seal(xt, mid, payloads, &iv)?;
        sa.exchanges.get_mut(&mid)?.iv = next_iv;
        Some(out)
    }
}

/// The payloads of a verified message, without their raw bytes.
pub(crate) fn payloads(msg: &Hashed) -> impl Iterator<Item = &Payload> {
    msg.payloads.iter().map(|(_, _, p)| p)
}
