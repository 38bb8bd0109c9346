//! Main Mode (identity protection exchange), RFC 2409 §5, with NAT-T detection (RFC 3947 §3).
//!
//! ```text
//!  Initiator                          Responder
//!  MM1 HDR, SA, VID...          -->
//!                               <--   MM2 HDR, SA, VID...
//!  MM3 HDR, KE, Ni, NAT-D, NAT-D -->
//!                               <--   MM4 HDR, KE, Nr, NAT-D, NAT-D
//!  MM5 HDR*, IDii, [CERT,] HASH_I|SIG_I   (floated to 4500 when a NAT is detected)
//!                               <--   MM6 HDR*, IDir, [CERT,] HASH_R|SIG_R
//! ```
//! A pre-shared key responder cannot know the peer's identity before MM5 is decrypted, and the
//! key that decrypts MM5 depends on the PSK: it tries each distinct PSK configured for peers
//! allowed at that address, and accepts the one under which MM5 decrypts to an ID of a peer
//! holding that very PSK and whose HASH_I verifies.

use std::net::SocketAddr;
use std::time::Instant;

use isakmp::{
    ExchangeType, Header, Message, NotifyType, Payload, PayloadType, Proposal, ProtocolId,
    SaPayload, ipsec, vendor,
};
use tracing::{debug, info, warn};

use crate::auth::AuthScheme;
use crate::config::PeerConfig;
use crate::crypto::ct_eq;
use crate::crypto::{self, PrfAlg};
use crate::engine::Engine;
use crate::event::{Event, FailReason, IkeSaId};
use crate::exchange::digest;
use crate::identity::Identity;
use crate::ike_sa::{IkeSa, P1Keys, P1State, split_plain};
use crate::proposal::Phase1Offer;
use crate::util::HexFmt;

const NONCE_LEN: usize = 32;

impl Engine {
    fn our_vendor_ids(&self) -> Vec<Payload> {
        let mut v = Vec::new();
        if self.config.nat_traversal {
            v.push(Payload::VendorId(vendor::NAT_T_RFC3947.to_vec()));
        }
        v.push(Payload::VendorId(vendor::DPD.to_vec()));
        // The XAUTH vendor ID (MD5 of the draft's file name, 8 bytes, as strongSwan and racoon
        // send it) when we mean to do XAUTH.
        if self.config.local_auth.xauth_credentials().is_some() {
            v.push(Payload::VendorId(vendor::XAUTH.to_vec()));
        }
        v
    }

    pub(crate) fn send_mm1(&mut self, now: Instant, id: IkeSaId) {
        let scheme = AuthScheme::for_local(&self.config.local_auth);
        let transforms = self
            .config
            .ike_proposals
            .iter()
            .enumerate()
            .map(|(i, p)| {
                p.to_transform(
                    u8::try_from(i + 1).unwrap_or(u8::MAX),
                    scheme.method(),
                    self.config.ike_lifetime,
                )
            })
            .collect();
        let sa_payload = SaPayload {
            doi: ipsec::DOI_IPSEC,
            situation: ipsec::SIT_IDENTITY_ONLY,
            proposals: vec![Proposal {
                number: 1,
                protocol: ProtocolId::ISAKMP,
                spi: Vec::new(),
                transforms,
            }],
        };
        let sa = Payload::Sa(sa_payload);
        let mut sai_b = Vec::new();
        sa.emit_body(&mut sai_b);
        let mut payloads = vec![sa];
        payloads.extend(self.our_vendor_ids());
        let rt = self.config.retransmit;
        let Some(s) = self.sas.get_mut(&id) else {
            return;
        };
        s.p1.sai_b = sai_b;
        let data = s.seal_plain(ExchangeType::MAIN, 0, &payloads);
        s.p1_exchange.sent_request(data.clone(), now, &rt);
        self.transmit(id, data);
    }

    /// A new MM1 (responder cookie zero): checks the limits, picks a proposal, answers MM2.
    pub(crate) fn accept_mm1(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        h: &Header,
        data: &[u8],
    ) -> Option<IkeSaId> {
        let msg = match Message::parse(data) {
            Ok(m) => m,
            Err(e) => {
                self.counters.dropped_malformed += 1;
                debug!(%remote, error = %e, "dropped malformed MM1");
                return None;
            }
        };
        if self.half_open.len() >= self.config.max_half_open
            || self
                .half_open_per_ip
                .get(&remote.ip())
                .copied()
                .unwrap_or(0)
                >= self.config.max_half_open_per_peer
        {
            self.counters.dropped_half_open_limit += 1;
            warn!(%remote, "dropped MM1: too many unfinished phase-1 exchanges");
            return None;
        }
        let mut sa_body = None;
        let (mut natt, mut dpd) = (false, false);
        for p in &msg.payloads {
            match p {
                Payload::Sa(sa) if sa_body.is_none() => sa_body = Some(sa.clone()),
                Payload::VendorId(v) if v.as_slice() == vendor::NAT_T_RFC3947 => natt = true,
                Payload::VendorId(v) if v.starts_with(&vendor::DPD[..14]) => dpd = true,
                _ => {}
            }
        }
        let Some(sa_payload) = sa_body else {
            self.counters.dropped_malformed += 1;
            debug!(%remote, "dropped MM1 without SA payload");
            return None;
        };
        let Some((proposal, transform, offer)) = self.choose_phase1(&sa_payload, remote) else {
            self.counters.ike_failed += 1;
            warn!(%remote, "no acceptable phase-1 proposal; sending NO_PROPOSAL_CHOSEN");
            self.send_plain_notify(local, remote, h, NotifyType::NO_PROPOSAL_CHOSEN);
            return None;
        };
        let id = self.alloc_sa_id();
        let mut cookie_r = [0u8; 8];
        while cookie_r == [0; 8] {
            self.rng.fill(&mut cookie_r);
        }
        let mut s = self.new_sa(id, false, h.initiator_cookie, cookie_r, local, remote, now);
        let mut sai_b = Vec::new();
        Payload::Sa(sa_payload.clone()).emit_body(&mut sai_b);
        s.p1.sai_b = sai_b;
        s.p1.offer = Some(offer);
        s.p1.peer_natt = natt && self.config.nat_traversal;
        s.p1.peer_dpd = dpd;
        s.nat.negotiated = s.p1.peer_natt;
        s.state = P1State::Mm2Sent;
        let reply_sa = Payload::Sa(SaPayload {
            doi: sa_payload.doi,
            situation: sa_payload.situation,
            proposals: vec![Proposal {
                number: proposal.number,
                protocol: proposal.protocol,
                spi: proposal.spi.clone(),
                transforms: vec![transform],
            }],
        });
        let mut payloads = vec![reply_sa];
        if s.p1.peer_natt {
            payloads.push(Payload::VendorId(vendor::NAT_T_RFC3947.to_vec()));
        }
        payloads.push(Payload::VendorId(vendor::DPD.to_vec()));
        if AuthScheme::from_method(offer.auth_method).is_some_and(|a| a.xauth_role(false).is_some())
        {
            payloads.push(Payload::VendorId(vendor::XAUTH.to_vec()));
        }
        let out = s.seal_plain(ExchangeType::MAIN, 0, &payloads);
        s.p1_exchange.last_rx = Some(digest(data));
        s.p1_exchange.sent_response(out.clone(), now);
        s.p1_exchange.expires_at = now + crate::engine::secs(30);
        self.sas.insert(id, s);
        self.by_cookies.insert((h.initiator_cookie, cookie_r), id);
        self.half_open.insert((h.initiator_cookie, remote), id);
        *self.half_open_per_ip.entry(remote.ip()).or_insert(0) += 1;
        info!(sa = %id, %remote, proposal = %offer.suite, "accepted MM1");
        self.transmit(id, out);
        // The MM1 itself is handled: return None so that the caller does not process it again.
        None
    }

    /// Picks the first of the peer's transforms that we accept (RFC 2409 §5: the responder
    /// echoes the single chosen transform).
    fn choose_phase1(
        &self,
        sa: &SaPayload,
        remote: SocketAddr,
    ) -> Option<(Proposal, isakmp::Transform, Phase1Offer)> {
        if sa.doi != ipsec::DOI_IPSEC || sa.situation != ipsec::SIT_IDENTITY_ONLY {
            return None;
        }
        let local = &self.config.local_auth;
        for prop in &sa.proposals {
            if prop.protocol != ProtocolId::ISAKMP {
                continue;
            }
            for t in &prop.transforms {
                let Some(offer) = Phase1Offer::from_transform(t) else {
                    continue;
                };
                let Some(scheme) = AuthScheme::from_method(offer.auth_method) else {
                    continue;
                };
                let peers_fit = self
                    .config
                    .peers
                    .iter()
                    .any(|p| scheme.fits_peer(&p.auth, false) && addr_ok(p, remote));
                if scheme.fits_local_responder(local)
                    && peers_fit
                    && self.config.ike_proposals.contains(&offer.suite)
                {
                    return Some((prop.clone(), t.clone(), offer));
                }
            }
        }
        None
    }

    /// Phase-1 messages of a known SA.
    pub(crate) fn handle_phase1(
        &mut self,
        now: Instant,
        id: IkeSaId,
        local: SocketAddr,
        remote: SocketAddr,
        h: &Header,
        data: &[u8],
    ) {
        let Some(sa) = self.sas.get_mut(&id) else {
            return;
        };
        let d = digest(data);
        if sa.p1_exchange.last_rx == Some(d) {
            // A retransmission of the message we answered last: the responder repeats its
            // answer. The initiator's last message (MM5) answers nothing it could repeat.
            if !sa.initiator
                && let Some(out) = sa.p1_exchange.last_sent.clone()
            {
                self.counters.retransmits_answered += 1;
                debug!(sa = %id, "peer repeated a phase-1 message; repeating our answer");
                self.transmit(id, out);
            }
            return;
        }
        let state = sa.state;
        let encrypted = h.flags.contains(isakmp::Flags::ENCRYPTION);
        let result = match (state, encrypted) {
            (P1State::Mm1Sent, false) => self.on_mm2(now, id, h, data),
            (P1State::Mm2Sent, false) => self.on_mm3(now, id, data),
            (P1State::Mm3Sent, false) => self.on_mm4(now, id, local, remote, data),
            (P1State::Mm4Sent, true) => self.on_mm5(now, id, local, remote, data),
            (P1State::Mm5Sent, true) => self.on_mm6(now, id, local, remote, data),
            _ => Err(Reject::Unexpected(format!(
                "phase-1 message (encrypted: {encrypted}) in state {state}"
            ))),
        };
        match result {
            Ok(()) => {
                if let Some(sa) = self.sas.get_mut(&id) {
                    sa.p1_exchange.last_rx = Some(d);
                }
            }
            Err(e) => self.count_drop(id, remote, e),
        }
    }

    pub(crate) fn count_drop(&mut self, id: IkeSaId, remote: SocketAddr, e: Reject) {
        match e {
            Reject::Malformed(why) => {
                self.counters.dropped_malformed += 1;
                debug!(sa = %id, %remote, reason = %why, "dropped malformed message");
            }
            Reject::Auth(why) => {
                self.counters.dropped_auth += 1;
                warn!(sa = %id, %remote, reason = %why, "dropped message that did not authenticate");
            }
            Reject::Unexpected(why) => {
                self.counters.dropped_unexpected += 1;
                debug!(sa = %id, %remote, reason = %why, "dropped unexpected message");
            }
            Reject::Fatal(reason) => self.fail_ike(id, reason),
        }
    }

    fn on_mm2(&mut self, now: Instant, id: IkeSaId, h: &Header, data: &[u8]) -> Result<(), Reject> {
        let msg = Message::parse(data).map_err(|e| Reject::Malformed(e.to_string()))?;
        let mut chosen = None;
        let mut natt = false;
        let mut dpd = false;
        for p in &msg.payloads {
            match p {
                Payload::Sa(sa) => chosen = Some(sa.clone()),
                Payload::VendorId(v) if v.as_slice() == vendor::NAT_T_RFC3947 => natt = true,
                Payload::VendorId(v) if v.starts_with(&vendor::DPD[..14]) => dpd = true,
                Payload::Notify(n) => {
                    return Err(Reject::Unexpected(format!(
                        "notify {:?} in MM2",
                        n.notify_type
                    )));
                }
                _ => {}
            }
        }
        let sa_p = chosen.ok_or_else(|| Reject::Malformed("MM2 without SA".into()))?;
        let [prop] = sa_p.proposals.as_slice() else {
            return Err(Reject::Fatal(FailReason::Protocol(
                "MM2 must carry exactly one proposal".into(),
            )));
        };
        let [t] = prop.transforms.as_slice() else {
            return Err(Reject::Fatal(FailReason::Protocol(
                "MM2 must carry exactly one transform".into(),
            )));
        };
        let ours = AuthScheme::for_local(&self.config.local_auth);
        let offer = Phase1Offer::from_transform(t)
            .filter(|o| {
                self.config.ike_proposals.contains(&o.suite) && o.auth_method == ours.method()
            })
            .ok_or_else(|| {
                Reject::Fatal(FailReason::Protocol(
                    "MM2 chose a transform we did not offer".into(),
                ))
            })?;
        let group = offer.suite.group;
        let dh = group
            .generate(self.rng.as_mut())
            .map_err(|e| Reject::Fatal(FailReason::Protocol(e.to_string())))?;
        let ni = self.random_bytes(NONCE_LEN);
        let natt_on = natt && self.config.nat_traversal;
        let force = self.config.force_encap;
        let rt = self.config.retransmit;
        let Some(sa) = self.sas.get_mut(&id) else {
            return Ok(());
        };
        sa.cookie_r = h.responder_cookie;
        sa.p1.offer = Some(offer);
        sa.p1.peer_natt = natt_on;
        sa.p1.peer_dpd = dpd;
        sa.nat.negotiated = natt_on;
        sa.p1.g_xi = dh.public_value().to_vec();
        sa.p1.ni = ni.clone();
        sa.p1.dh = Some(dh);
        let mut payloads = vec![Payload::Ke(sa.p1.g_xi.clone()), Payload::Nonce(ni)];
        payloads
            .extend(ours.cert_requests(sa.peer.and_then(|i| self.config.peers.get(i)).into_iter()));
        if natt_on {
            payloads.extend(natd_payloads(sa, offer.suite.prf, force));
        }
        let out = sa.seal_plain(ExchangeType::MAIN, 0, &payloads);
        sa.state = P1State::Mm3Sent;
        sa.p1_exchange.sent_request(out.clone(), now, &rt);
        let key = (sa.cookie_i, sa.cookie_r);
        self.by_icookie.remove(&key.0);
        self.by_cookies.insert(key, id);
        debug!(sa = %id, proposal = %offer.suite, "MM2 received, MM3 sent");
        self.transmit(id, out);
        Ok(())
    }

    fn on_mm3(&mut self, now: Instant, id: IkeSaId, data: &[u8]) -> Result<(), Reject> {
        let msg = Message::parse(data).map_err(|e| Reject::Malformed(e.to_string()))?;
        let (ke, nonce, natd) = ke_nonce_natd(&msg.payloads)?;
        let Some(sa) = self.sas.get(&id) else {
            return Ok(());
        };
        let offer = sa
            .p1
            .offer
            .ok_or_else(|| Reject::Unexpected("no offer".into()))?;
        if ke.len() != offer.suite.group.public_len() {
            return Err(Reject::Malformed(format!(
                "KE of {} bytes for group {:?}",
                ke.len(),
                offer.suite.group
            )));
        }
        let dh = offer
            .suite
            .group
            .generate(self.rng.as_mut())
            .map_err(|e| Reject::Fatal(FailReason::Protocol(e.to_string())))?;
        let g_xr = dh.public_value().to_vec();
        let g_xy = dh
            .agree(&ke)
            .map_err(|e| Reject::Malformed(format!("peer's DH value: {e}")))?;
        let nr = self.random_bytes(NONCE_LEN);
        let force = self.config.force_encap;
        let Some(sa) = self.sas.get_mut(&id) else {
            return Ok(());
        };
        sa.p1.g_xi = ke;
        sa.p1.ni = nonce;
        sa.p1.g_xr = g_xr.clone();
        sa.p1.nr = nr.clone();
        sa.p1.g_xy = Some(g_xy);
        if sa.nat.negotiated {
            sa.nat.detected = detect_nat(sa, offer.suite.prf, &natd);
        }
        let mut payloads = vec![Payload::Ke(g_xr), Payload::Nonce(nr)];
        if let Some(scheme) = AuthScheme::from_method(offer.auth_method) {
            let remote = sa.remote;
            payloads.extend(
                scheme.cert_requests(
                    self.config
                        .peers
                        .iter()
                        .filter(|p| addr_ok(p, remote) && scheme.fits_peer(&p.auth, false)),
                ),
            );
        }
        if sa.nat.negotiated {
            payloads.extend(natd_payloads(sa, offer.suite.prf, force));
        }
        // For signatures (and hybrid) SKEYID does not depend on the peer, so the keys exist now.
        if AuthScheme::from_method(offer.auth_method).is_some_and(AuthScheme::skeyid_is_signature) {
            derive_keys(sa, offer, None);
        }
        let out = sa.seal_plain(ExchangeType::MAIN, 0, &payloads);
        sa.state = P1State::Mm4Sent;
        sa.p1_exchange.sent_response(out.clone(), now);
        sa.p1_exchange.expires_at = now + crate::engine::secs(30);
        debug!(sa = %id, nat = sa.nat.detected, "MM3 received, MM4 sent");
        self.transmit(id, out);
        Ok(())
    }

    fn on_mm4(
        &mut self,
        now: Instant,
        id: IkeSaId,
        local: SocketAddr,
        remote: SocketAddr,
        data: &[u8],
    ) -> Result<(), Reject> {
        let msg = Message::parse(data).map_err(|e| Reject::Malformed(e.to_string()))?;
        let (ke, nonce, natd) = ke_nonce_natd(&msg.payloads)?;
        let natt_port = self.config.natt_port;
        let config = self.config.clone();
        let Some(sa) = self.sas.get_mut(&id) else {
            return Ok(());
        };
        let offer = sa
            .p1
            .offer
            .ok_or_else(|| Reject::Unexpected("no offer".into()))?;
        if ke.len() != offer.suite.group.public_len() {
            return Err(Reject::Malformed(format!("KE of {} bytes", ke.len())));
        }
        let dh = sa
            .p1
            .dh
            .take()
            .ok_or_else(|| Reject::Unexpected("no DH secret".into()))?;
        let g_xy = match dh.agree(&ke) {
            Ok(k) => k,
            Err(e) => {
                return Err(Reject::Fatal(FailReason::Protocol(format!(
                    "peer's DH value: {e}"
                ))));
            }
        };
        sa.p1.g_xr = ke;
        sa.p1.nr = nonce;
        sa.p1.g_xy = Some(g_xy);
        let _ = (local, remote);
        if sa.nat.negotiated {
            sa.nat.detected = detect_nat(sa, offer.suite.prf, &natd) || config.force_encap;
        }
        let peer = sa
            .peer
            .and_then(|i| config.peers.get(i))
            .ok_or_else(|| Reject::Unexpected("no peer".into()))?;
        let scheme = AuthScheme::from_method(offer.auth_method)
            .ok_or_else(|| Reject::Unexpected("auth".into()))?;
        derive_keys(sa, offer, Some(peer));
        // RFC 3947 §4: float to the NAT-T port once a NAT is detected.
        if sa.nat.detected {
            sa.local.set_port(natt_port);
            sa.remote.set_port(natt_port);
        }
        let id_payload = config.local_id.to_payload();
        let mut idii_b = Vec::new();
        Payload::Id(id_payload.clone()).emit_body(&mut idii_b);
        let keys = sa
            .keys
            .as_ref()
            .ok_or_else(|| Reject::Unexpected("no keys".into()))?;
        let hash_i = hash_i(sa, keys, &idii_b);
        let mut payloads = vec![Payload::Id(id_payload)];
        payloads.extend(
            scheme
                .prove(&config.local_auth, hash_i)
                .map_err(|e| Reject::Fatal(FailReason::Authentication(e)))?,
        );
        let (out, next_iv) = sa
            .seal(ExchangeType::MAIN, 0, &payloads, &sa.p1_iv)
            .ok_or_else(|| Reject::Unexpected("seal".into()))?;
        sa.p1_iv = next_iv;
        sa.state = P1State::Mm5Sent;
        sa.p1_exchange
            .sent_request(out.clone(), now, &config.retransmit);
        debug!(sa = %id, nat = sa.nat.detected, "MM4 received, MM5 sent");
        self.transmit(id, out);
        Ok(())
    }

    fn on_mm5(
        &mut self,
        now: Instant,
        id: IkeSaId,
        local: SocketAddr,
        remote: SocketAddr,
        data: &[u8],
    ) -> Result<(), Reject> {
        let config = self.config.clone();
        let now_unix = self.unix_time(now);
        let Some(sa) = self.sas.get_mut(&id) else {
            return Ok(());
        };
        let (offer, scheme) = negotiated(sa)?;
        let iv = crypto::phase1_iv(offer.suite.prf, offer.suite.enc, &sa.p1.g_xi, &sa.p1.g_xr);
        let first = Header::parse(data)
            .map_err(|e| Reject::Malformed(e.to_string()))?
            .next_payload;
        // Keys depend on the peer only through its pre-shared key: each distinct key is tried
        // once (not once per peer: thousands of peers may share one), in the order of its first
        // peer allowed at this address whose method fits, and the peers holding it are then
        // found by the identity MM5 reveals.
        let index = self.peer_index.clone();
        let fits = |i: usize| {
            let p = &config.peers[i];
            scheme.fits_peer(&p.auth, false) && addr_ok(p, remote)
        };
        let mut order: Vec<(usize, usize)> = index
            .groups()
            .iter()
            .enumerate()
            .filter_map(|(g, members)| members.iter().copied().find(|&i| fits(i)).map(|i| (i, g)))
            .collect();
        order.sort_unstable();
        let mut last_err = String::from("no candidate peer");
        let mut found = None;
        for &(pi, group) in &order {
            let first_peer = &config.peers[pi];
            let keys = derive_keys_for(sa, offer, scheme, Some(first_peer));
            let Ok((plain, next_iv)) = crate::ike_sa::open_with(keys.enc, &keys.enc_key, data, &iv)
            else {
                return Err(Reject::Malformed(
                    "MM5 length not a multiple of the block size".into(),
                ));
            };
            let Ok(payloads) = split_plain(first, &plain) else {
                last_err = "MM5 does not decrypt under the key of any configured peer".into();
                continue;
            };
            let Some((_, idii_b, Payload::Id(idp))) =
                payloads.iter().find(|(t, _, _)| *t == PayloadType::ID)
            else {
                last_err = "MM5 without ID".into();
                continue;
            };
            let Some(their_id) = Identity::from_payload(idp) else {
                last_err = "MM5 ID of an unsupported type".into();
                continue;
            };
            let hash_i = hash_i(sa, &keys, idii_b);
            let parsed: Vec<Payload> = payloads.iter().map(|(_, _, p)| p.clone()).collect();
            let mut matched = false;
            for pj in index.matching(group, &their_id) {
                if !fits(pj) {
                    continue;
                }
                let peer = &config.peers[pj];
                matched = true;
                match scheme.verify(peer, &their_id, &parsed, &hash_i, now_unix) {
                    Ok(()) => {
                        found = Some((pj, their_id.clone()));
                        break;
                    }
                    Err(e) => last_err = format!("{their_id}: {e}"),
                }
            }
            if !matched {
                last_err = format!("identity {their_id} does not match a peer with this key");
            }
            if let Some((pj, their_id)) = found.take() {
                // Authenticated.
                sa.keys = Some(keys);
                sa.p1_iv = next_iv;
                sa.peer = Some(pj);
                sa.remote_id = Some(their_id);
                sa.local = local;
                sa.remote = remote;
                // MM6.
                let id_payload = config.local_id.to_payload();
                let mut idir_b = Vec::new();
                Payload::Id(id_payload.clone()).emit_body(&mut idir_b);
                let k = sa
                    .keys
                    .as_ref()
                    .ok_or_else(|| Reject::Unexpected("keys".into()))?;
                let hash_r = hash_r(sa, k, &idir_b);
                let mut out_payloads = vec![Payload::Id(id_payload)];
                out_payloads.extend(
                    scheme
                        .prove(&config.local_auth, hash_r)
                        .map_err(|e| Reject::Fatal(FailReason::Authentication(e)))?,
                );
                let (out, next_iv) = sa
                    .seal(ExchangeType::MAIN, 0, &out_payloads, &sa.p1_iv)
                    .ok_or_else(|| Reject::Unexpected("seal".into()))?;
                sa.p1_iv = next_iv.clone();
                sa.last_p1_block = next_iv;
                sa.p1_exchange.sent_response(out.clone(), now);
                self.transmit(id, out);
                self.established(now, id);
                return Ok(());
            }
        }
        // Nothing authenticated: the peer is told (in the clear: it may not share our keys).
        let h = Header::parse(data).map_err(|e| Reject::Malformed(e.to_string()))?;
        let sa_label = self.sas.get(&id).map(IkeSa::peer_label).unwrap_or_default();
        warn!(sa = %id, peer = %sa_label, reason = %last_err, "MM5 authentication failed");
        self.send_plain_notify(local, remote, &h, NotifyType::AUTHENTICATION_FAILED);
        Err(Reject::Fatal(FailReason::Authentication(last_err)))
    }

    fn on_mm6(
        &mut self,
        now: Instant,
        id: IkeSaId,
        local: SocketAddr,
        remote: SocketAddr,
        data: &[u8],
    ) -> Result<(), Reject> {
        let config = self.config.clone();
        let now_unix = self.unix_time(now);
        let Some(sa) = self.sas.get_mut(&id) else {
            return Ok(());
        };
        let (_, scheme) = negotiated(sa)?;
        let (plain, next_iv) = sa
            .open(data, &sa.p1_iv)
            .map_err(|e| Reject::Malformed(format!("{e}")))?;
        let first = Header::parse(data)
            .map_err(|e| Reject::Malformed(e.to_string()))?
            .next_payload;
        let payloads = split_plain(first, &plain)
            .map_err(|e| Reject::Auth(format!("MM6 does not decrypt: {e}")))?;
        let (idir_b, idp) = payloads
            .iter()
            .find_map(|(t, b, p)| match p {
                Payload::Id(i) if *t == PayloadType::ID => Some((b.clone(), i.clone())),
                _ => None,
            })
            .ok_or_else(|| Reject::Malformed("MM6 without ID".into()))?;
        let their_id = Identity::from_payload(&idp).ok_or_else(|| {
            Reject::Fatal(FailReason::Authentication(
                "MM6 ID of an unsupported type".into(),
            ))
        })?;
        let peer = sa
            .peer
            .and_then(|i| config.peers.get(i))
            .ok_or_else(|| Reject::Unexpected("no peer".into()))?;
        if !peer.identity.matches(&their_id) {
            return Err(Reject::Fatal(FailReason::Authentication(format!(
                "peer identified as {their_id}, expected {}",
                peer.identity
            ))));
        }
        let k = sa
            .keys
            .as_ref()
            .ok_or_else(|| Reject::Unexpected("keys".into()))?;
        let hash_r = hash_r(sa, k, &idir_b);
        let parsed: Vec<Payload> = payloads.into_iter().map(|(_, _, p)| p).collect();
        scheme
            .verify(peer, &their_id, &parsed, &hash_r, now_unix)
            .map_err(|e| Reject::Fatal(FailReason::Authentication(e)))?;
        sa.p1_iv = next_iv.clone();
        sa.last_p1_block = next_iv;
        sa.remote_id = Some(their_id);
        sa.local = local;
        sa.remote = remote;
        sa.p1_exchange.retransmit_at = None;
        self.established(now, id);
        Ok(())
    }

    fn established(&mut self, now: Instant, id: IkeSaId) {
        let margin = self.config.rekey_margin;
        let our_life = self.config.ike_lifetime;
        let xauth_timeout = self.config.xauth_timeout;
        let Some(sa) = self.sas.get_mut(&id) else {
            return;
        };
        sa.state = P1State::Established;
        sa.established_at = Some(now);
        sa.last_heard = now;
        // What only the phase-1 hashes needed (an established SA may live for hours; a
        // repeated MM5 is answered from the stored MM6).
        sa.p1.dh = None;
        sa.p1.g_xy = None;
        for v in [
            &mut sa.p1.sai_b,
            &mut sa.p1.g_xi,
            &mut sa.p1.g_xr,
            &mut sa.p1.ni,
            &mut sa.p1.nr,
        ] {
            *v = Vec::new();
        }
        let life = sa
            .p1
            .offer
            .and_then(|o| o.lifetime)
            .unwrap_or(our_life)
            .min(our_life.max(crate::engine::secs(60)));
        sa.expires_at = Some(now + life);
        // The initiator re-authenticates before expiry (IKEv1 has no in-place phase-1 rekey).
        sa.rekey_at = sa
            .initiator
            .then(|| now + life.saturating_sub(margin.min(life / 2)));
        let key = (sa.cookie_i, sa.cookie_r);
        // XAUTH methods: the SA is announced only once XAUTH has succeeded (xauth.rs).
        let xauth_role = sa
            .p1
            .offer
            .and_then(|o| AuthScheme::from_method(o.auth_method))
            .and_then(|s| s.xauth_role(sa.initiator));
        if let Some(role) = xauth_role {
            sa.xauth = Some(crate::xauth::Xauth::new(role, now + xauth_timeout));
        }
        info!(sa = %id, peer = %sa.peer_label(), icookie = %HexFmt(&key.0), rcookie = %HexFmt(&key.1), nat = sa.nat.detected, xauth = xauth_role.is_some(), "phase 1 authenticated");
        // The SA is indexed under the address of its MM1, which is not `sa.remote` when the
        // peer floated to the NAT-T port: release the count of the address in the index.
        let stale: Vec<_> = self
            .half_open
            .iter()
            .filter(|&(_, v)| *v == id)
            .map(|(k, _)| *k)
            .collect();
        for k in stale {
            self.half_open.remove(&k);
            self.release_half_open(k.1.ip());
        }
        self.by_cookies.insert(key, id);
        match xauth_role {
            None => self.announce_established(id),
            Some(crate::auth::XauthRole::Edge) => self.start_xauth_edge(now, id),
            Some(crate::auth::XauthRole::Client) => {
                debug!(sa = %id, "waiting for the peer's XAUTH request");
            }
        }
    }

    /// Reports an SA as established: phase 1, and XAUTH where the method has it, are done.
    pub(crate) fn announce_established(&mut self, id: IkeSaId) {
        let Some(sa) = self.sas.get(&id) else {
            return;
        };
        let ev = Event::IkeSaEstablished {
            sa: id,
            remote_id: sa.remote_id.clone().unwrap_or(Identity::Any),
            local: sa.local,
            remote: sa.remote,
            proposal: sa.p1.offer.map(|o| o.suite.to_string()).unwrap_or_default(),
            initiator: sa.initiator,
            nat: sa.nat.detected,
        };
        info!(sa = %id, peer = %sa.peer_label(), "IKE SA established");
        self.counters.ike_established += 1;
        self.events.push_back(ev);
    }

    /// Converts an engine instant to Unix time, for certificate validity.
    pub(crate) fn unix_time(&self, now: Instant) -> i64 {
        match self.wall_clock {
            Some((base, unix)) => {
                let d = if now >= base {
                    i64::try_from(now.duration_since(base).as_secs()).unwrap_or(i64::MAX)
                } else {
                    -i64::try_from(base.duration_since(now).as_secs()).unwrap_or(0)
                };
                unix.saturating_add(d)
            }
            None => 0,
        }
    }
}

/// The phase-1 transform and authentication scheme chosen in MM1/MM2.
fn negotiated(sa: &IkeSa) -> Result<(Phase1Offer, AuthScheme), Reject> {
    let offer = sa
        .p1
        .offer
        .ok_or_else(|| Reject::Unexpected("no phase-1 offer yet".into()))?;
    let scheme = AuthScheme::from_method(offer.auth_method)
        .ok_or_else(|| Reject::Unexpected("unsupported authentication method".into()))?;
    Ok((offer, scheme))
}

/// Why a received message was not used.
pub(crate) enum Reject {
    Malformed(String),
    Auth(String),
    Unexpected(String),
    Fatal(FailReason),
}

/// HASH_I (RFC 2409 §5) over the SA's phase-1 exchange and the initiator's ID payload body.
fn hash_i(sa: &IkeSa, keys: &P1Keys, idii_b: &[u8]) -> Vec<u8> {
    crypto::hash_i(
        keys.prf,
        &keys.skeyid,
        &sa.p1.g_xi,
        &sa.p1.g_xr,
        &sa.cookie_i,
        &sa.cookie_r,
        &sa.p1.sai_b,
        idii_b,
    )
}

/// HASH_R (RFC 2409 §5) over the SA's phase-1 exchange and the responder's ID payload body.
fn hash_r(sa: &IkeSa, keys: &P1Keys, idir_b: &[u8]) -> Vec<u8> {
    crypto::hash_r(
        keys.prf,
        &keys.skeyid,
        &sa.p1.g_xr,
        &sa.p1.g_xi,
        &sa.cookie_r,
        &sa.cookie_i,
        &sa.p1.sai_b,
        idir_b,
    )
}

fn addr_ok(p: &PeerConfig, remote: SocketAddr) -> bool {
    p.addrs.is_empty() || p.addrs.contains(&remote.ip())
}

/// KE, nonce and NAT-D payloads of MM3/MM4.
type KeNonceNatd = (Vec<u8>, Vec<u8>, Vec<Vec<u8>>);

fn ke_nonce_natd(payloads: &[Payload]) -> Result<KeNonceNatd, Reject> {
    let (mut ke, mut nonce, mut natd) = (None, None, Vec::new());
    for p in payloads {
        match p {
            Payload::Ke(k) => ke = Some(k.clone()),
            Payload::Nonce(n) => nonce = Some(n.clone()),
            Payload::NatD(d) => natd.push(d.clone()),
            _ => {}
        }
    }
    let nonce = nonce.ok_or_else(|| Reject::Malformed("no NONCE".into()))?;
    // RFC 2409 §5: nonces are 8 to 256 bytes.
    if !(8..=256).contains(&nonce.len()) {
        return Err(Reject::Malformed(format!("nonce of {} bytes", nonce.len())));
    }
    Ok((
        ke.ok_or_else(|| Reject::Malformed("no KE".into()))?,
        nonce,
        natd,
    ))
}

/// NAT-D payloads (RFC 3947 §3.2): first the peer's address as we send to it, then ours.
/// With `force` ours is falsified so that the peer sees a NAT.
fn natd_payloads(sa: &IkeSa, prf: PrfAlg, force: bool) -> Vec<Payload> {
    let theirs = crypto::natd_hash(
        prf,
        &sa.cookie_i,
        &sa.cookie_r,
        sa.remote.ip(),
        sa.remote.port(),
    );
    let mut ours = crypto::natd_hash(
        prf,
        &sa.cookie_i,
        &sa.cookie_r,
        sa.local.ip(),
        sa.local.port(),
    );
    if force {
        for b in &mut ours {
            *b ^= 0xa5;
        }
    }
    vec![Payload::NatD(theirs), Payload::NatD(ours)]
}

/// Whether the peer's NAT-D hashes show a NAT (RFC 3947 §3.2): the first must match our
/// address as the peer saw it, one of the others the peer's address as we see it.
fn detect_nat(sa: &IkeSa, prf: PrfAlg, natd: &[Vec<u8>]) -> bool {
    let Some((dst, srcs)) = natd.split_first() else {
        return false;
    };
    let me = crypto::natd_hash(
        prf,
        &sa.cookie_i,
        &sa.cookie_r,
        sa.local.ip(),
        sa.local.port(),
    );
    let them = crypto::natd_hash(
        prf,
        &sa.cookie_i,
        &sa.cookie_r,
        sa.remote.ip(),
        sa.remote.port(),
    );
    let local_nat = !ct_eq(dst, &me);
    let remote_nat = !srcs.iter().any(|s| ct_eq(s, &them));
    local_nat || remote_nat
}

/// The phase-1 keys (RFC 2409 §5) under the SKEYID input of `scheme` for `peer` (the PSK),
/// or the signature input when there is no peer yet.
fn derive_keys_for(
    sa: &IkeSa,
    offer: Phase1Offer,
    scheme: AuthScheme,
    peer: Option<&PeerConfig>,
) -> P1Keys {
    let input = peer
        .and_then(|p| scheme.skeyid_input(p))
        .unwrap_or(crypto::SkeyidInput::Signature);
    let g_xy = sa.p1.g_xy.as_deref().map(Vec::as_slice).unwrap_or_default();
    let (prf, enc) = (offer.suite.prf, offer.suite.enc);
    let k = crypto::derive_phase1(
        prf,
        enc,
        input,
        &sa.p1.ni,
        &sa.p1.nr,
        g_xy,
        &sa.cookie_i,
        &sa.cookie_r,
    );
    P1Keys {
        prf,
        enc,
        skeyid: k.skeyid,
        skeyid_d: k.skeyid_d,
        skeyid_a: k.skeyid_a,
        enc_key: k.enc_key,
    }
}

/// Derives the phase-1 keys and the initial phase-1 IV. `peer` is `None` for signatures.
fn derive_keys(sa: &mut IkeSa, offer: Phase1Offer, peer: Option<&PeerConfig>) {
    let scheme = AuthScheme::from_method(offer.auth_method).unwrap_or(AuthScheme::RsaSig);
    sa.keys = Some(derive_keys_for(sa, offer, scheme, peer));
    sa.p1_iv = crypto::phase1_iv(offer.suite.prf, offer.suite.enc, &sa.p1.g_xi, &sa.p1.g_xr);
}
