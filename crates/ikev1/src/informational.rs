//! Informational exchanges (RFC 2408 §4.8, RFC 2409 §5.7): Delete of ISAKMP and ESP SAs,
//! Notify, and dead peer detection (RFC 3706: R-U-THERE / R-U-THERE-ACK, a 32-bit sequence
//! number, SPI = CKY-I | CKY-R). Also the lifetimes: child SAs the engine initiated are
//! re-keyed by a new Quick Mode before they expire, phase 1 is re-authenticated by its
//! initiator before it expires, and whatever reaches its hard lifetime is deleted.

use std::time::Instant;

use isakmp::{DeletePayload, ExchangeType, NotifyPayload, NotifyType, Payload, ProtocolId, ipsec};
use tracing::{debug, info, warn};

use crate::engine::Engine;
use crate::event::{ChildRequest, Event, FailReason, IkeSaId};
use crate::exchange::{Exchange, Kind};
use crate::ike_sa::{Hashed, P1State};
use crate::main_mode::Reject;
use crate::phase2::{HashKind, payloads};

impl Engine {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn on_informational(
        &mut self,
        now: Instant,
        id: IkeSaId,
        mid: u32,
        known: bool,
        next_iv: Vec<u8>,
        d: u64,
        msg: Hashed,
    ) -> Result<(), Reject> {
        let sa = self
            .sas
            .get_mut(&id)
            .ok_or_else(|| Reject::Unexpected("sa".into()))?;
        let cookies = [sa.cookie_i, sa.cookie_r].concat();
        if known {
            if let Some(ex) = sa.exchanges.get_mut(&mid) {
                ex.iv = next_iv;
                ex.last_rx = Some(d);
            }
        } else {
            let mut ex = Exchange::new(Kind::Done, next_iv, now);
            ex.last_rx = Some(d);
            ex.expires_at = now + crate::exchange::KEEP_DONE;
            sa.exchanges.insert(mid, ex);
        }
        let list: Vec<Payload> = payloads(&msg).cloned().collect();
        for p in list {
            match p {
                Payload::Delete(del) => self.on_delete(now, id, &del, &cookies),
                Payload::Notify(n) => self.on_notify(now, id, mid, &n, &cookies),
                other => {
                    debug!(sa = %id, payload = ?other.payload_type(), "ignoring payload in Informational")
                }
            }
        }
        Ok(())
    }

    fn on_delete(&mut self, now: Instant, id: IkeSaId, del: &DeletePayload, cookies: &[u8]) {
        match del.protocol {
            ProtocolId::ISAKMP => {
                if del.spis.iter().any(|s| s.as_slice() == cookies) {
                    info!(sa = %id, "peer deleted the IKE SA");
                    self.delete_ike(now, id, false, "deleted by peer");
                } else {
                    debug!(sa = %id, "Delete for another ISAKMP SA ignored");
                }
            }
            ProtocolId::IPSEC_ESP => {
                for spi in &del.spis {
                    let Ok(b) = <[u8; 4]>::try_from(spi.as_slice()) else {
                        continue;
                    };
                    let spi_out = u32::from_be_bytes(b);
                    let Some(sa) = self.sas.get_mut(&id) else {
                        return;
                    };
                    // RFC 2408 §3.15 names the SA by the sender's inbound SPI (our outbound); strongSwan
                    // names ours when it could not install the SA: accept either.
                    if let Some(pos) = sa
                        .children
                        .iter()
                        .position(|c| c.spi_out == spi_out || c.spi_in == spi_out)
                    {
                        let c = sa.children.remove(pos);
                        self.spis.remove(&c.spi_in);
                        info!(sa = %id, spi_in = format_args!("{:08x}", c.spi_in), spi_out = format_args!("{:08x}", c.spi_out), "peer deleted an IPsec SA");
                        self.events.push_back(Event::ChildSaDeleted {
                            sa: id,
                            spi_in: c.spi_in,
                            spi_out: c.spi_out,
                            reason: "deleted by peer".into(),
                        });
                    } else {
                        debug!(sa = %id, spi = format_args!("{spi_out:08x}"), "Delete for an unknown ESP SPI ignored");
                    }
                }
            }
            p => debug!(sa = %id, protocol = ?p, "Delete for an unsupported protocol ignored"),
        }
    }

    fn on_notify(
        &mut self,
        now: Instant,
        id: IkeSaId,
        mid: u32,
        n: &NotifyPayload,
        cookies: &[u8],
    ) {
        match n.notify_type {
            NotifyType::R_U_THERE => {
                let Ok(seq) = <[u8; 4]>::try_from(n.data.as_slice()) else {
                    debug!(sa = %id, "R-U-THERE without a 4-byte sequence number");
                    return;
                };
                debug!(sa = %id, seq = u32::from_be_bytes(seq), "R-U-THERE; acknowledging");
                let ack = self.send_notify(
                    now,
                    id,
                    NotifyType::R_U_THERE_ACK,
                    ProtocolId::ISAKMP,
                    seq.to_vec(),
                );
                // The ACK travels in an exchange of its own; remembered as the answer to this
                // R-U-THERE, it is sent again when the peer repeats the R-U-THERE (our ACK was
                // lost) instead of the peer declaring us dead.
                if let (Some(ack), Some(ex)) = (
                    ack,
                    self.sas
                        .get_mut(&id)
                        .and_then(|s| s.exchanges.get_mut(&mid)),
                ) {
                    ex.last_sent = Some(ack);
                }
            }
            NotifyType::R_U_THERE_ACK => {
                let Ok(seq) = <[u8; 4]>::try_from(n.data.as_slice()) else {
                    return;
                };
                let seq = u32::from_be_bytes(seq);
                if n.spi.as_slice() != cookies {
                    debug!(sa = %id, "R-U-THERE-ACK for other cookies ignored");
                    return;
                }
                if let Some(sa) = self.sas.get_mut(&id) {
                    sa.exchanges
                        .retain(|_, e| !matches!(e.kind, Kind::Dpd { seq: s } if s == seq));
                    sa.last_heard = now;
                }
            }
            NotifyType::INITIAL_CONTACT => debug!(sa = %id, "peer sent INITIAL-CONTACT"),
            NotifyType::RESPONDER_LIFETIME => debug!(sa = %id, "peer sent RESPONDER-LIFETIME"),
            t if t.0 < 8192 => {
                // An error notify. It may refuse a Quick Mode we started: match it by SPI or,
                // when the peer did not say which, to our only pending one.
                warn!(sa = %id, notify = ?t, "peer sent an error notify");
                let Some(sa) = self.sas.get_mut(&id) else {
                    return;
                };
                let pending: Vec<(u32, u32)> = sa
                    .exchanges
                    .iter()
                    .filter_map(|(m, e)| match &e.kind {
                        Kind::QmInitiated(q) => Some((*m, q.spi_in)),
                        _ => None,
                    })
                    .collect();
                let spi = <[u8; 4]>::try_from(n.spi.as_slice())
                    .ok()
                    .map(u32::from_be_bytes);
                // Match by our SPI when the peer named one; otherwise (or when it named
                // something else, as strongSwan does) our only pending Quick Mode.
                let by_spi =
                    spi.and_then(|s| pending.iter().find(|(_, x)| *x == s).map(|(m, _)| *m));
                let target = by_spi.or_else(|| (pending.len() == 1).then(|| pending[0].0));
                if let Some(mid) = target
                    && let Some(Exchange {
                        kind: Kind::QmInitiated(q),
                        ..
                    }) = sa.exchanges.remove(&mid)
                {
                    self.spis.remove(&q.spi_in);
                    self.counters.child_failed += 1;
                    self.events.push_back(Event::ChildSaFailed {
                        sa: id,
                        request: Some(q.request_id),
                        reason: FailReason::Notify(t),
                    });
                    self.start_next_quick_mode(now, id);
                }
            }
            t => debug!(sa = %id, notify = ?t, "ignoring status notify"),
        }
    }

    /// Sends one Notify in a new Informational exchange.
    pub(crate) fn send_notify(
        &mut self,
        now: Instant,
        id: IkeSaId,
        t: NotifyType,
        protocol: ProtocolId,
        data: Vec<u8>,
    ) -> Option<Vec<u8>> {
        let sa = self.sas.get(&id)?;
        let spi = if protocol == ProtocolId::ISAKMP {
            [sa.cookie_i, sa.cookie_r].concat()
        } else {
            Vec::new()
        };
        let n = Payload::Notify(NotifyPayload {
            doi: ipsec::DOI_IPSEC,
            protocol,
            notify_type: t,
            spi,
            data,
        });
        self.send_informational(now, id, vec![n], None)
    }

    fn send_informational(
        &mut self,
        now: Instant,
        id: IkeSaId,
        pl: Vec<Payload>,
        kind: Option<Kind>,
    ) -> Option<Vec<u8>> {
        let mid = self.random_message_id(id);
        let out = self.seal_hashed(
            now,
            id,
            ExchangeType::INFORMATIONAL,
            mid,
            pl,
            HashKind::Plain,
        )?;
        let rt = self.config.retransmit;
        if let Some(s) = self.sas.get_mut(&id) {
            match kind {
                Some(k) => {
                    if let Some(ex) = s.exchanges.get_mut(&mid) {
                        ex.kind = k;
                        ex.sent_request(out.clone(), now, &rt);
                    }
                }
                // A one-message exchange (RFC 2408 §4.8): nothing comes back in it, so it is not
                // kept. Kept, these replies (R-U-THERE-ACK, refusals) escaped MAX_EXCHANGES and
                // the peer's message rate decided how many exchanges an SA held.
                None => {
                    s.exchanges.remove(&mid);
                }
            }
        }
        self.transmit(id, out.clone());
        Some(out)
    }

    /// Deletes one child SA (by our SPI) and tells the peer.
    pub(crate) fn send_delete_child(
        &mut self,
        now: Instant,
        id: IkeSaId,
        spi_in: u32,
        reason: &str,
    ) {
        let Some(sa) = self.sas.get_mut(&id) else {
            return;
        };
        let Some(pos) = sa.children.iter().position(|c| c.spi_in == spi_in) else {
            return;
        };
        let c = sa.children.remove(pos);
        self.spis.remove(&c.spi_in);
        let del = Payload::Delete(DeletePayload {
            doi: ipsec::DOI_IPSEC,
            protocol: ProtocolId::IPSEC_ESP,
            spi_size: 4,
            spis: vec![spi_in.to_be_bytes().to_vec()],
        });
        info!(sa = %id, spi_in = format_args!("{spi_in:08x}"), %reason, "deleting IPsec SA");
        self.send_informational(now, id, vec![del], None);
        self.events.push_back(Event::ChildSaDeleted {
            sa: id,
            spi_in,
            spi_out: c.spi_out,
            reason: reason.to_owned(),
        });
    }

    /// Sends a Delete of the ISAKMP SA itself (RFC 2408 §3.15: SPI = CKY-I | CKY-R).
    pub(crate) fn send_isakmp_delete(&mut self, now: Instant, id: IkeSaId) {
        let Some(sa) = self.sas.get(&id) else { return };
        let del = Payload::Delete(DeletePayload {
            doi: ipsec::DOI_IPSEC,
            protocol: ProtocolId::ISAKMP,
            spi_size: 16,
            spis: vec![[sa.cookie_i, sa.cookie_r].concat()],
        });
        self.send_informational(now, id, vec![del], None);
    }

    /// Removes an IKE SA; with `notify`, its children and then the ISAKMP SA are deleted at
    /// the peer too.
    pub(crate) fn delete_ike(&mut self, now: Instant, id: IkeSaId, notify: bool, reason: &str) {
        let Some(sa) = self.sas.get(&id) else { return };
        if sa.dead {
            return;
        }
        if sa.state != P1State::Established {
            self.fail_ike(id, FailReason::Protocol(reason.to_owned()));
            return;
        }
        if sa.xauth_blocks() {
            // Never announced: it ends as a failed phase 1.
            let why = FailReason::Authentication(format!("XAUTH not completed: {reason}"));
            self.xauth_abort(now, id, why, notify);
            return;
        }
        // Child SAs outlive phase 1 (RFC 2409): a newer SA with the same peer takes them over.
        if let Some(newer) = self.newest_sa_like(id).filter(|n| *n != id) {
            let children = self
                .sas
                .get_mut(&id)
                .map(|s| std::mem::take(&mut s.children))
                .unwrap_or_default();
            if !children.is_empty() {
                debug!(sa = %id, to = %newer, n = children.len(), "child SAs handed to the newer IKE SA");
            }
            self.events.push_back(Event::IkeSaReplaced {
                old: id,
                new: newer,
                children: children.iter().map(|c| c.spi_in).collect(),
            });
            if let Some(n) = self.sas.get_mut(&newer) {
                n.children.extend(children);
            }
        }
        let Some(sa) = self.sas.get(&id) else { return };
        let spis: Vec<u32> = sa.children.iter().map(|c| c.spi_in).collect();
        if notify {
            for spi in spis {
                self.send_delete_child(now, id, spi, reason);
            }
            self.send_isakmp_delete(now, id);
        } else {
            let Some(sa) = self.sas.get_mut(&id) else {
                return;
            };
            let children = std::mem::take(&mut sa.children);
            for c in children {
                self.spis.remove(&c.spi_in);
                self.events.push_back(Event::ChildSaDeleted {
                    sa: id,
                    spi_in: c.spi_in,
                    spi_out: c.spi_out,
                    reason: reason.to_owned(),
                });
            }
        }
        if let Some(sa) = self.sas.get_mut(&id) {
            sa.dead = true;
            info!(sa = %id, peer = %sa.peer_label(), %reason, "IKE SA deleted");
        }
        self.events.push_back(Event::IkeSaDeleted {
            sa: id,
            reason: reason.to_owned(),
        });
    }

    pub(crate) fn lifetime_timers(&mut self, now: Instant, id: IkeSaId) {
        let Some(sa) = self.sas.get_mut(&id) else {
            return;
        };
        // Child SAs.
        let mut rekey = Vec::new();
        let mut expire = Vec::new();
        for c in &mut sa.children {
            if c.rekey_at.is_some_and(|t| t <= now) {
                c.rekey_at = None;
                rekey.push((
                    c.spi_in,
                    ChildRequest {
                        mode: c.mode,
                        local_ts: c.local_ts,
                        remote_ts: c.remote_ts,
                    },
                ));
            }
            if c.expires_at <= now {
                expire.push(c.spi_in);
            }
        }
        for spi in expire {
            self.send_delete_child(now, id, spi, "lifetime expired");
        }
        for (spi, req) in rekey {
            let target = self.newest_sa_like(id).unwrap_or(id);
            let request_id = self.next_request;
            self.next_request += 1;
            self.events.push_back(Event::ChildSaRekeying {
                sa: id,
                spi_in: spi,
            });
            // The old SA is deleted once the new one is up; if the new Quick Mode fails the
            // old one still expires on its own.
            let rekey_of = (target == id).then_some(spi);
            if let Err(e) = self.start_quick_mode(now, target, req, request_id, rekey_of) {
                warn!(sa = %id, error = %e, "could not start the rekeying Quick Mode");
            }
        }
        // Phase 1.
        let Some(sa) = self.sas.get_mut(&id) else {
            return;
        };
        if sa.rekey_at.is_some_and(|t| t <= now) {
            sa.rekey_at = None;
            if let Some(peer) = sa.peer {
                let (local, remote) = (sa.local, sa.remote);
                let local = std::net::SocketAddr::new(local.ip(), 500);
                let remote = std::net::SocketAddr::new(
                    remote.ip(),
                    if remote.port() == self.config.natt_port {
                        500
                    } else {
                        remote.port()
                    },
                );
                info!(sa = %id, "re-authenticating phase 1 before it expires");
                if let Ok(new) = self.initiate(now, peer, local, remote) {
                    debug!(sa = %id, replacement = %new, "replacement phase 1 started");
                }
            }
        }
        let Some(sa) = self.sas.get_mut(&id) else {
            return;
        };
        if sa.expires_at.is_some_and(|t| t <= now) {
            sa.expires_at = None;
            if let Some(s) = self.sas.get_mut(&id) {
                s.replaced = true;
            }
            self.delete_ike(now, id, true, "lifetime expired");
        }
    }

    /// The newest established SA with the same peer identity as `id`.
    fn newest_sa_like(&self, id: IkeSaId) -> Option<IkeSaId> {
        let sa = self.sas.get(&id)?;
        let who = sa.remote_id.clone()?;
        self.sas
            .values()
            .filter(|s| s.usable() && !s.dead && s.remote_id.as_ref() == Some(&who))
            .max_by_key(|s| (s.established_at, s.id))
            .map(|s| s.id)
    }

    pub(crate) fn dpd_timer(&mut self, now: Instant, id: IkeSaId) {
        let Some(delay) = self.config.dpd_delay else {
            return;
        };
        let Some(sa) = self.sas.get_mut(&id) else {
            return;
        };
        if sa.state != P1State::Established || sa.dead || !sa.p1.peer_dpd {
            return;
        }
        if sa
            .exchanges
            .values()
            .any(|e| matches!(e.kind, Kind::Dpd { .. }))
            || now < sa.last_heard + delay
        {
            return;
        }
        sa.dpd_seq = sa.dpd_seq.wrapping_add(1);
        let seq = sa.dpd_seq;
        let spi = [sa.cookie_i, sa.cookie_r].concat();
        let n = Payload::Notify(NotifyPayload {
            doi: ipsec::DOI_IPSEC,
            protocol: ProtocolId::ISAKMP,
            notify_type: NotifyType::R_U_THERE,
            spi,
            data: seq.to_be_bytes().to_vec(),
        });
        debug!(sa = %id, seq, "sending R-U-THERE");
        self.send_informational(now, id, vec![n], Some(Kind::Dpd { seq }));
    }
}
