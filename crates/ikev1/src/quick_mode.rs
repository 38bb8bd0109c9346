//! Quick Mode (RFC 2409 §5.5): one ESP SA pair per exchange, either side may start it.
//!
//! ```text
//!  Initiator                                   Responder
//!  QM1 HDR*, HASH(1), SA, Ni [, KE] [, IDci, IDcr]  -->
//!                       <--  QM2 HDR*, HASH(2), SA, Nr [, KE] [, IDci, IDcr]
//!  QM3 HDR*, HASH(3)                                -->
//! ```
//! IDs carry the selectors with protocol and port (RFC 2407 §4.6.2: `ID_IPV6_ADDR`,
//! `ID_IPV6_ADDR_SUBNET`; protocol 135 for the Mobility Header of RFC 3776). Encapsulation
//! modes 3 and 4 (RFC 3947 §5) are used once a NAT was detected. KEYMAT is derived per
//! direction with the SPI of the side that receives on that SA (RFC 2409 §5.5).

use std::time::Instant;

use isakmp::{ExchangeType, NotifyType, Payload, Proposal, ProtocolId, SaPayload, ipsec};
use tracing::{debug, info, warn};

use crate::child::{ChildSa, EspKeys, Mode, TrafficSelector};
use crate::crypto;
use crate::crypto::ct_eq;
use crate::engine::{ApiError, Engine};
use crate::event::{ChildRequest, Event, FailReason, IkeSaId};
use crate::exchange::{Exchange, Kind, QmInit, QmResp};
use crate::ike_sa::{ChildRecord, Hashed, P1Keys, QueuedChild};
use crate::main_mode::Reject;
use crate::phase2::{HashKind, payloads};
use crate::proposal::{EspProposal, Phase2Offer};

const NONCE_LEN: usize = 32;

fn encap_mode(mode: Mode, udp: bool) -> u16 {
    match (mode, udp) {
        (Mode::Tunnel, false) => ipsec::encap::TUNNEL,
        (Mode::Transport, false) => ipsec::encap::TRANSPORT,
        (Mode::Tunnel, true) => ipsec::encap::UDP_TUNNEL,
        (Mode::Transport, true) => ipsec::encap::UDP_TRANSPORT,
    }
}

fn parse_encap(v: u16) -> Option<(Mode, bool)> {
    Some(match v {
        ipsec::encap::TUNNEL => (Mode::Tunnel, false),
        ipsec::encap::TRANSPORT => (Mode::Transport, false),
        ipsec::encap::UDP_TUNNEL | ipsec::encap::UDP_TUNNEL_DRAFT => (Mode::Tunnel, true),
        ipsec::encap::UDP_TRANSPORT | ipsec::encap::UDP_TRANSPORT_DRAFT => (Mode::Transport, true),
        _ => return None,
    })
}

/// Splits KEYMAT of one direction into the ESP keys (encryption first, RFC 2409 §5.5 and
/// RFC 4106 §8.1 for the GCM salt).
fn esp_keys(
    keys: &P1Keys,
    g_qm: Option<&[u8]>,
    spi: u32,
    ni: &[u8],
    nr: &[u8],
    p: &EspProposal,
) -> EspKeys {
    let km = crypto::keymat(
        keys.prf,
        &keys.skeyid_d,
        g_qm,
        ipsec_proto(),
        &spi.to_be_bytes(),
        ni,
        nr,
        p.keymat_len(),
    );
    let e = p.encr.key_len();
    EspKeys {
        encr: zeroize::Zeroizing::new(km[..e].to_vec()),
        integ: zeroize::Zeroizing::new(km[e..].to_vec()),
    }
}

fn ipsec_proto() -> u8 {
    ProtocolId::IPSEC_ESP.0
}

impl Engine {
    pub(crate) fn start_quick_mode(
        &mut self,
        now: Instant,
        id: IkeSaId,
        request: ChildRequest,
        request_id: u64,
        rekey_of: Option<u32>,
    ) -> Result<(), ApiError> {
        let sa = self.sas.get_mut(&id).ok_or(ApiError::NoSuchSa(id))?;
        if sa
            .exchanges
            .values()
            .any(|e| matches!(e.kind, Kind::QmInitiated(_)))
        {
            debug!(sa = %id, request = request_id, "Quick Mode queued behind the one in flight");
            sa.qm_queue.push_back(QueuedChild {
                request,
                request_id,
                rekey_of,
            });
            return Ok(());
        }
        let config = self.config.clone();
        let first = *config
            .esp_proposals
            .first()
            .ok_or_else(|| ApiError::Crypto("no ESP proposals configured".into()))?;
        let offered: Vec<EspProposal> = config
            .esp_proposals
            .iter()
            .copied()
            .filter(|p| p.pfs == first.pfs)
            .collect();
        let dh = match first.pfs {
            Some(g) => Some(
                g.generate(self.rng.as_mut())
                    .map_err(|e| ApiError::Crypto(e.to_string()))?,
            ),
            None => None,
        };
        let spi_in = self.alloc_spi();
        let ni = self.random_bytes(NONCE_LEN);
        let mid = self.random_message_id(id);
        let nat = self.sas.get(&id).is_some_and(|s| s.nat.detected);
        let mode = encap_mode(request.mode, nat);
        let transforms = offered
            .iter()
            .enumerate()
            .map(|(i, p)| {
                p.to_transform(
                    u8::try_from(i + 1).unwrap_or(u8::MAX),
                    mode,
                    config.child_lifetime,
                    config.child_life_kbytes,
                )
            })
            .collect();
        let mut pl = vec![
            Payload::Sa(SaPayload {
                doi: ipsec::DOI_IPSEC,
                situation: ipsec::SIT_IDENTITY_ONLY,
                proposals: vec![Proposal {
                    number: 1,
                    protocol: ProtocolId::IPSEC_ESP,
                    spi: spi_in.to_be_bytes().to_vec(),
                    transforms,
                }],
            }),
            Payload::Nonce(ni.clone()),
        ];
        if let Some(d) = &dh {
            pl.push(Payload::Ke(d.public_value().to_vec()));
        }
        pl.push(Payload::Id(request.local_ts.to_id()));
        pl.push(Payload::Id(request.remote_ts.to_id()));
        let out = self
            .seal_hashed(now, id, ExchangeType::QUICK, mid, pl, HashKind::Plain)
            .ok_or(ApiError::NotEstablished(id))?;
        let rt = config.retransmit;
        let sa = self.sas.get_mut(&id).ok_or(ApiError::NoSuchSa(id))?;
        let ex = sa
            .exchanges
            .get_mut(&mid)
            .ok_or(ApiError::NotEstablished(id))?;
        info!(sa = %id, msg_id = mid, local_ts = %request.local_ts, remote_ts = %request.remote_ts, mode = %request.mode, "starting Quick Mode");
        ex.kind = Kind::QmInitiated(Box::new(QmInit {
            request,
            request_id,
            spi_in,
            ni,
            dh,
            offered,
            encap_mode: mode,
            rekey_of,
        }));
        ex.sent_request(out.clone(), now, &rt);
        self.transmit(id, out);
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn on_quick_mode(
        &mut self,
        now: Instant,
        id: IkeSaId,
        mid: u32,
        known: bool,
        next_iv: Vec<u8>,
        d: u64,
        msg: Hashed,
    ) -> Result<(), Reject> {
        if !known {
            let sa = self
                .sas
                .get_mut(&id)
                .ok_or_else(|| Reject::Unexpected("sa".into()))?;
            if sa.replaced {
                return Err(Reject::Unexpected("Quick Mode on a replaced IKE SA".into()));
            }
            let mut ex = Exchange::new(Kind::Done, next_iv, now);
            ex.last_rx = Some(d);
            sa.exchanges.insert(mid, ex);
            return self.on_qm1(now, id, mid, msg);
        }
        let sa = self
            .sas
            .get_mut(&id)
            .ok_or_else(|| Reject::Unexpected("sa".into()))?;
        let keys = sa.keys().ok_or_else(|| Reject::Unexpected("keys".into()))?;
        let (prf, skeyid_a) = (keys.prf, keys.skeyid_a.clone());
        let ex = sa
            .exchanges
            .get_mut(&mid)
            .ok_or_else(|| Reject::Unexpected("exchange".into()))?;
        match std::mem::replace(&mut ex.kind, Kind::Done) {
            Kind::QmInitiated(q) => {
                ex.iv = next_iv;
                ex.last_rx = Some(d);
                ex.retransmit_at = None;
                let r = self.on_qm2(now, id, mid, *q, msg);
                self.start_next_quick_mode(now, id);
                r
            }
            Kind::QmResponded(r) => {
                let h3 = crypto::qm_hash3(prf, &skeyid_a, mid, &r.ni, &r.nr);
                if !ct_eq(&msg.hash, &h3) {
                    ex.kind = Kind::QmResponded(r);
                    return Err(Reject::Auth("bad HASH(3)".into()));
                }
                ex.iv = next_iv;
                ex.last_rx = Some(d);
                ex.retransmit_at = None;
                ex.last_sent = None;
                ex.expires_at = now + crate::exchange::KEEP_DONE;
                self.child_established(now, r.child);
                Ok(())
            }
            other => {
                ex.kind = other;
                Err(Reject::Unexpected(
                    "Quick Mode message for a finished exchange".into(),
                ))
            }
        }
    }

    fn on_qm1(&mut self, now: Instant, id: IkeSaId, mid: u32, msg: Hashed) -> Result<(), Reject> {
        let config = self.config.clone();
        let (mut sa_p, mut ni, mut ke, mut ids) = (None, None, None, Vec::new());
        for p in payloads(&msg) {
            match p {
                Payload::Sa(s) => sa_p = Some(s.clone()),
                Payload::Nonce(n) => ni = Some(n.clone()),
                Payload::Ke(k) => ke = Some(k.clone()),
                Payload::Id(i) => ids.push(i.clone()),
                _ => {}
            }
        }
        let sa_p = sa_p.ok_or_else(|| Reject::Malformed("QM1 without SA".into()))?;
        let ni = ni
            .filter(|n| (8..=256).contains(&n.len()))
            .ok_or_else(|| Reject::Malformed("QM1 without a valid nonce".into()))?;
        let sa = self
            .sas
            .get(&id)
            .ok_or_else(|| Reject::Unexpected("sa".into()))?;
        let (local_ts, remote_ts) = match ids.as_slice() {
            [] => (
                TrafficSelector::host(sa.local.ip()),
                TrafficSelector::host(sa.remote.ip()),
            ),
            [i, r] => match (TrafficSelector::from_id(i), TrafficSelector::from_id(r)) {
                // IDci is the initiator's (the peer's) side.
                (Some(ci), Some(cr)) => (cr, ci),
                _ => {
                    return self.refuse_qm(
                        now,
                        id,
                        mid,
                        NotifyType::INVALID_ID_INFORMATION,
                        "unsupported ID type in QM1",
                    );
                }
            },
            _ => return Err(Reject::Malformed("QM1 must carry zero or two IDs".into())),
        };
        // Choose a transform.
        let mut chosen = None;
        if sa_p.doi == ipsec::DOI_IPSEC {
            'outer: for prop in &sa_p.proposals {
                let Ok(spi) = <[u8; 4]>::try_from(prop.spi.as_slice()) else {
                    continue;
                };
                if prop.protocol != ProtocolId::IPSEC_ESP {
                    continue;
                }
                for t in &prop.transforms {
                    let Some(o) = Phase2Offer::from_transform(t) else {
                        continue;
                    };
                    if config.esp_proposals.contains(&o.suite)
                        && parse_encap(o.encap_mode).is_some()
                    {
                        chosen = Some((prop.clone(), t.clone(), o, u32::from_be_bytes(spi)));
                        break 'outer;
                    }
                }
            }
        }
        let Some((prop, transform, offer, spi_out)) = chosen else {
            return self.refuse_qm(
                now,
                id,
                mid,
                NotifyType::NO_PROPOSAL_CHOSEN,
                "no acceptable ESP proposal",
            );
        };
        let (mode, udp) = parse_encap(offer.encap_mode).unwrap_or((Mode::Tunnel, false));
        // Policy: the selectors must be allowed for this peer.
        let identity = sa.remote_id.clone().unwrap_or(crate::Identity::Any);
        let assigned = sa.assigned_address;
        let remote_ok = config.remote_ts.iter().any(|t| t.contains(&remote_ts))
            || assigned.is_some_and(|a| {
                remote_ts.prefix_len == 128 && remote_ts.addr == std::net::IpAddr::V6(a)
            });
        let local_ok = config.local_ts.iter().any(|t| t.contains(&local_ts));
        if !remote_ok || !local_ok {
            let why = format!("selectors {remote_ts} <-> {local_ts} not allowed for {identity}");
            return self.refuse_qm(now, id, mid, NotifyType::INVALID_ID_INFORMATION, &why);
        }
        if let Some(p) = &self.policy
            && let Err(why) = p.allow(&identity, &local_ts, &remote_ts, mode)
        {
            return self.refuse_qm(now, id, mid, NotifyType::INVALID_ID_INFORMATION, &why);
        }
        // PFS.
        let (ke_out, g_qm) = match (offer.suite.pfs, ke) {
            (Some(g), Some(ke)) => {
                if ke.len() != g.public_len() {
                    return Err(Reject::Malformed("QM1 KE of the wrong length".into()));
                }
                let dh = g
                    .generate(self.rng.as_mut())
                    .map_err(|e| Reject::Fatal(FailReason::Protocol(e.to_string())))?;
                let public = dh.public_value().to_vec();
                let shared = dh
                    .agree(&ke)
                    .map_err(|e| Reject::Malformed(format!("QM1 KE: {e}")))?;
                (Some(public), Some(shared))
            }
            (None, None) => (None, None),
            _ => {
                return self.refuse_qm(
                    now,
                    id,
                    mid,
                    NotifyType::NO_PROPOSAL_CHOSEN,
                    "PFS KE does not match the chosen transform",
                );
            }
        };
        let spi_in = self.alloc_spi();
        let nr = self.random_bytes(NONCE_LEN);
        let sa = self
            .sas
            .get(&id)
            .ok_or_else(|| Reject::Unexpected("sa".into()))?;
        let keys = sa.keys().ok_or_else(|| Reject::Unexpected("keys".into()))?;
        let g = g_qm.as_deref().map(Vec::as_slice);
        let lifetime = offer
            .lifetime
            .unwrap_or(config.child_lifetime)
            .min(config.child_lifetime);
        let child = ChildSa {
            ike_sa: id,
            message_id: mid,
            mode,
            udp_encap: udp,
            spi_in,
            spi_out,
            local_ts,
            remote_ts,
            local: sa.local,
            remote: sa.remote,
            proposal: offer.suite,
            keys_in: esp_keys(keys, g, spi_in, &ni, &nr, &offer.suite),
            keys_out: esp_keys(keys, g, spi_out, &ni, &nr, &offer.suite),
            lifetime,
            life_kbytes: offer.life_kbytes,
            initiator: false,
        };
        // QM2: the chosen transform, our SPI, and the IDs as received.
        let mut pl = vec![
            Payload::Sa(SaPayload {
                doi: sa_p.doi,
                situation: sa_p.situation,
                proposals: vec![Proposal {
                    number: prop.number,
                    protocol: prop.protocol,
                    spi: spi_in.to_be_bytes().to_vec(),
                    transforms: vec![transform],
                }],
            }),
            Payload::Nonce(nr.clone()),
        ];
        if let Some(k) = ke_out {
            pl.push(Payload::Ke(k));
        }
        pl.extend(ids.into_iter().map(Payload::Id));
        let out = self
            .seal_hashed(
                now,
                id,
                ExchangeType::QUICK,
                mid,
                pl,
                HashKind::Qm2 { ni: &ni },
            )
            .ok_or_else(|| Reject::Unexpected("seal".into()))?;
        let rt = config.retransmit;
        let sa = self
            .sas
            .get_mut(&id)
            .ok_or_else(|| Reject::Unexpected("sa".into()))?;
        let ex = sa
            .exchanges
            .get_mut(&mid)
            .ok_or_else(|| Reject::Unexpected("exchange".into()))?;
        ex.kind = Kind::QmResponded(Box::new(QmResp { child, ni, nr }));
        ex.sent_request(out.clone(), now, &rt);
        debug!(sa = %id, msg_id = mid, spi_in = format_args!("{spi_in:08x}"), "QM1 accepted, QM2 sent");
        self.transmit(id, out);
        Ok(())
    }

    fn refuse_qm(
        &mut self,
        now: Instant,
        id: IkeSaId,
        mid: u32,
        notify: NotifyType,
        why: &str,
    ) -> Result<(), Reject> {
        warn!(sa = %id, msg_id = mid, reason = %why, "refusing Quick Mode");
        self.counters.child_failed += 1;
        self.events.push_back(Event::ChildSaFailed {
            sa: id,
            request: None,
            reason: FailReason::Policy(why.to_owned()),
        });
        self.send_notify(now, id, notify, ProtocolId::IPSEC_ESP, Vec::new());
        Ok(())
    }

    fn on_qm2(
        &mut self,
        now: Instant,
        id: IkeSaId,
        mid: u32,
        q: QmInit,
        msg: Hashed,
    ) -> Result<(), Reject> {
        let fail = |this: &mut Self, why: String| {
            warn!(sa = %id, msg_id = mid, reason = %why, "Quick Mode failed");
            this.spis.remove(&q.spi_in);
            this.counters.child_failed += 1;
            this.events.push_back(Event::ChildSaFailed {
                sa: id,
                request: Some(q.request_id),
                reason: FailReason::Protocol(why),
            });
            Ok(())
        };
        let (mut sa_p, mut nr, mut ke, mut ids) = (None, None, None, Vec::new());
        for p in payloads(&msg) {
            match p {
                Payload::Sa(s) => sa_p = Some(s.clone()),
                Payload::Nonce(n) => nr = Some(n.clone()),
                Payload::Ke(k) => ke = Some(k.clone()),
                Payload::Id(i) => ids.push(i.clone()),
                _ => {}
            }
        }
        let Some(sa_p) = sa_p else {
            return fail(self, "QM2 without SA".into());
        };
        let Some(nr) = nr.filter(|n| (8..=256).contains(&n.len())) else {
            return fail(self, "QM2 without a valid nonce".into());
        };
        let ([prop], true) = (sa_p.proposals.as_slice(), sa_p.doi == ipsec::DOI_IPSEC) else {
            return fail(self, "QM2 must carry one proposal".into());
        };
        let (Ok(spi), [t]) = (
            <[u8; 4]>::try_from(prop.spi.as_slice()),
            prop.transforms.as_slice(),
        ) else {
            return fail(
                self,
                "QM2 proposal must carry a 4-byte SPI and one transform".into(),
            );
        };
        let spi_out = u32::from_be_bytes(spi);
        let Some(offer) = Phase2Offer::from_transform(t).filter(|o| q.offered.contains(&o.suite))
        else {
            return fail(self, "QM2 chose a transform we did not offer".into());
        };
        let Some((mode, udp)) =
            parse_encap(offer.encap_mode).filter(|(m, u)| encap_mode(*m, *u) == q.encap_mode)
        else {
            return fail(self, "QM2 changed the encapsulation mode".into());
        };
        if !ids.is_empty() {
            let ci = ids.first().and_then(TrafficSelector::from_id);
            let cr = ids.get(1).and_then(TrafficSelector::from_id);
            if ids.len() != 2 || ci != Some(q.request.local_ts) || cr != Some(q.request.remote_ts) {
                return fail(self, "QM2 IDs differ from ours".into());
            }
        }
        let g_qm = match (q.dh, ke) {
            (Some(dh), Some(ke)) => match dh.agree(&ke) {
                Ok(s) => Some(s),
                Err(e) => return fail(self, format!("QM2 KE: {e}")),
            },
            (None, None) => None,
            _ => return fail(self, "QM2 PFS does not match our offer".into()),
        };
        let config = self.config.clone();
        let Some(sa) = self.sas.get(&id) else {
            return Ok(());
        };
        let Some(keys) = sa.keys() else { return Ok(()) };
        let g = g_qm.as_deref().map(Vec::as_slice);
        let h3 = crypto::qm_hash3(keys.prf, &keys.skeyid_a, mid, &q.ni, &nr);
        // Never longer than ours (and so never an `Instant` overflow from a hostile value).
        let lifetime = offer
            .lifetime
            .unwrap_or(config.child_lifetime)
            .min(config.child_lifetime);
        let child = ChildSa {
            ike_sa: id,
            message_id: mid,
            mode,
            udp_encap: udp,
            spi_in: q.spi_in,
            spi_out,
            local_ts: q.request.local_ts,
            remote_ts: q.request.remote_ts,
            local: sa.local,
            remote: sa.remote,
            proposal: offer.suite,
            keys_in: esp_keys(keys, g, q.spi_in, &q.ni, &nr, &offer.suite),
            keys_out: esp_keys(keys, g, spi_out, &q.ni, &nr, &offer.suite),
            lifetime,
            life_kbytes: offer.life_kbytes,
            initiator: true,
        };
        let out = self
            .seal_raw(now, id, ExchangeType::QUICK, mid, &[Payload::Hash(h3)])
            .ok_or_else(|| Reject::Unexpected("seal".into()))?;
        if let Some(ex) = self
            .sas
            .get_mut(&id)
            .and_then(|s| s.exchanges.get_mut(&mid))
        {
            ex.sent_response(out.clone(), now);
        }
        self.transmit(id, out);
        self.child_established(now, child);
        if let Some(old) = q.rekey_of {
            self.send_delete_child(now, id, old, "rekeyed");
        }
        Ok(())
    }

    /// Starts the next queued Quick Mode of `id`, if any and none is in flight.
    pub(crate) fn start_next_quick_mode(&mut self, now: Instant, id: IkeSaId) {
        let Some(sa) = self.sas.get_mut(&id) else {
            return;
        };
        if sa.dead
            || sa
                .exchanges
                .values()
                .any(|e| matches!(e.kind, Kind::QmInitiated(_)))
        {
            return;
        }
        let Some(q) = sa.qm_queue.pop_front() else {
            return;
        };
        if let Err(e) = self.start_quick_mode(now, id, q.request, q.request_id, q.rekey_of) {
            warn!(sa = %id, error = %e, "could not start a queued Quick Mode");
            self.events.push_back(Event::ChildSaFailed {
                sa: id,
                request: Some(q.request_id),
                reason: FailReason::Protocol(e.to_string()),
            });
        }
    }

    fn child_established(&mut self, now: Instant, child: ChildSa) {
        let margin = self.config.rekey_margin;
        let id = child.ike_sa;
        let Some(sa) = self.sas.get_mut(&id) else {
            return;
        };
        let life = child.lifetime.max(crate::engine::secs(1));
        sa.children.push(ChildRecord {
            spi_in: child.spi_in,
            spi_out: child.spi_out,
            mode: child.mode,
            local_ts: child.local_ts,
            remote_ts: child.remote_ts,
            rekey_at: child
                .initiator
                .then(|| now + life.saturating_sub(margin.min(life / 2))),
            expires_at: now + life,
        });
        info!(
            sa = %id,
            mode = %child.mode,
            spi_in = format_args!("{:08x}", child.spi_in),
            spi_out = format_args!("{:08x}", child.spi_out),
            local_ts = %child.local_ts,
            remote_ts = %child.remote_ts,
            proposal = %child.proposal,
            "IPsec SA established"
        );
        self.counters.child_established += 1;
        self.events
            .push_back(Event::ChildSaEstablished(Box::new(child)));
    }
}
