//! The Transaction exchange (draft-ietf-ipsec-isakmp-mode-cfg-05 §3): CFG_REQUEST/CFG_REPLY
//! and CFG_SET/CFG_ACK, both roles, protected by HASH = prf(SKEYID_a, M-ID | attributes).
//!
//! IPv6 only: INTERNAL_IP6_ADDRESS is sent as 16 bytes and accepted as 16 or 17 (older
//! strongSwan added a prefix byte; `protocol-notes.md` A.2), INTERNAL_IP6_DNS,
//! INTERNAL_IP6_DHCP and INTERNAL_ADDRESS_EXPIRY. The responder does not hand out addresses
//! itself: it raises [`Event::AddressRequested`] and answers once the driver's address
//! provider (a pool, or DHCPv6 through the relay) has answered. A Transaction before phase 1
//! completes is refused (draft-devarapalli-mip6-ikev1-bootstrap §6; see `phase2.rs`), and so
//! is every Transaction but XAUTH's before XAUTH has succeeded on an SA that has it
//! (`xauth.rs`).

use std::time::{Duration, Instant};

use isakmp::{AttrValue, Attribute, CfgType, ConfigPayload, ExchangeType, Payload, cfg};
use tracing::{debug, info, warn};

use crate::engine::{ApiError, Engine};
use crate::event::{Event, IkeSaId, ModeConfig};
use crate::exchange::{Exchange, Kind};
use crate::ike_sa::Hashed;
use crate::main_mode::Reject;
use crate::phase2::{HashKind, payloads};

/// The attributes of `m`; zero-length ones for a request.
pub(crate) fn to_attributes(m: &ModeConfig, request: bool) -> Vec<Attribute> {
    let mut a = Vec::new();
    if request {
        for t in [
            cfg::INTERNAL_IP6_ADDRESS,
            cfg::INTERNAL_IP6_DNS,
            cfg::INTERNAL_IP6_DHCP,
            cfg::INTERNAL_ADDRESS_EXPIRY,
        ] {
            a.push(Attribute::variable(t, Vec::new()));
        }
        return a;
    }
    if let Some(addr) = m.address {
        a.push(Attribute::variable(
            cfg::INTERNAL_IP6_ADDRESS,
            cfg::ip6_value(addr),
        ));
    }
    for d in &m.dns {
        a.push(Attribute::variable(
            cfg::INTERNAL_IP6_DNS,
            d.octets().to_vec(),
        ));
    }
    for d in &m.dhcp {
        a.push(Attribute::variable(
            cfg::INTERNAL_IP6_DHCP,
            d.octets().to_vec(),
        ));
    }
    if let Some(e) = m.expiry {
        let secs = u32::try_from(e.as_secs()).unwrap_or(u32::MAX);
        a.push(Attribute::variable(
            cfg::INTERNAL_ADDRESS_EXPIRY,
            secs.to_be_bytes().to_vec(),
        ));
    }
    a
}

/// Reads the attributes we understand; others are ignored (and logged).
pub(crate) fn from_attributes(attrs: &[Attribute]) -> ModeConfig {
    let mut m = ModeConfig::default();
    for a in attrs {
        let AttrValue::Variable(v) = &a.value else {
            debug!(attr = a.ty, "ignoring TV Mode Config attribute");
            continue;
        };
        let ip6 = || {
            <[u8; 16]>::try_from(v.as_slice())
                .ok()
                .map(std::net::Ipv6Addr::from)
        };
        match a.ty {
            cfg::INTERNAL_IP6_ADDRESS if !v.is_empty() => {
                if let Some((addr, plen)) = cfg::ip6_address(v) {
                    m.address = Some(addr);
                    m.prefix_len = plen;
                }
            }
            cfg::INTERNAL_IP6_DNS => m.dns.extend(ip6()),
            cfg::INTERNAL_IP6_DHCP => m.dhcp.extend(ip6()),
            cfg::INTERNAL_ADDRESS_EXPIRY if v.len() == 4 => {
                let s = u32::from_be_bytes([v[0], v[1], v[2], v[3]]);
                m.expiry = Some(Duration::from_secs(u64::from(s)));
            }
            _ => {}
        }
    }
    m
}

impl Engine {
    pub(crate) fn new_identifier(&mut self) -> u16 {
        let mut b = [0u8; 2];
        self.rng.fill(&mut b);
        u16::from_be_bytes(b)
    }

    pub(crate) fn send_cfg(
        &mut self,
        now: Instant,
        id: IkeSaId,
        mid: u32,
        payload: ConfigPayload,
        kind: Option<Kind>,
    ) {
        let rt = self.config.retransmit;
        let Some(out) = self.seal_hashed(
            now,
            id,
            ExchangeType::TRANSACTION,
            mid,
            vec![Payload::Attribute(payload)],
            HashKind::Plain,
        ) else {
            return;
        };
        if let Some(ex) = self
            .sas
            .get_mut(&id)
            .and_then(|s| s.exchanges.get_mut(&mid))
        {
            match kind {
                Some(k) => {
                    ex.kind = k;
                    ex.sent_request(out.clone(), now, &rt);
                }
                None => {
                    ex.kind = Kind::Done;
                    ex.sent_response(out.clone(), now);
                }
            }
        }
        self.transmit(id, out);
    }

    pub(crate) fn send_cfg_request(&mut self, now: Instant, id: IkeSaId) {
        let mid = self.random_message_id(id);
        let identifier = self.new_identifier();
        let p = ConfigPayload {
            cfg_type: CfgType::REQUEST,
            identifier,
            attributes: to_attributes(&ModeConfig::default(), true),
        };
        info!(sa = %id, msg_id = mid, "sending CFG_REQUEST");
        self.send_cfg(now, id, mid, p, Some(Kind::CfgRequested { identifier }));
    }

    pub(crate) fn send_cfg_set(&mut self, now: Instant, id: IkeSaId, m: &ModeConfig) {
        // A fresh M-ID (and so a fresh IV): libreswan#1954 reused the phase-1 IV here.
        let mid = self.random_message_id(id);
        let identifier = self.new_identifier();
        let p = ConfigPayload {
            cfg_type: CfgType::SET,
            identifier,
            attributes: to_attributes(m, false),
        };
        if let (Some(a), Some(sa)) = (m.address, self.sas.get_mut(&id)) {
            sa.assigned_address = Some(a);
        }
        self.send_cfg(now, id, mid, p, Some(Kind::CfgPushed { identifier }));
    }

    pub(crate) fn send_cfg_reply(
        &mut self,
        now: Instant,
        id: IkeSaId,
        request: u64,
        answer: Option<ModeConfig>,
    ) -> Result<(), ApiError> {
        let sa = self.sas.get_mut(&id).ok_or(ApiError::NoSuchSa(id))?;
        let (mid, identifier) = sa
            .exchanges
            .iter()
            .find_map(|(m, e)| match e.kind {
                Kind::CfgAwaitingAddress {
                    identifier,
                    request: r,
                    ..
                } if r == request => Some((*m, identifier)),
                _ => None,
            })
            .ok_or(ApiError::NoSuchRequest(request))?;
        let attributes = match &answer {
            Some(m) => {
                if let Some(a) = m.address {
                    sa.assigned_address = Some(a);
                }
                to_attributes(m, false)
            }
            None => Vec::new(),
        };
        info!(sa = %id, msg_id = mid, address = ?answer.as_ref().and_then(|m| m.address), "sending CFG_REPLY");
        let p = ConfigPayload {
            cfg_type: CfgType::REPLY,
            identifier,
            attributes,
        };
        self.send_cfg(now, id, mid, p, None);
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn on_transaction(
        &mut self,
        now: Instant,
        id: IkeSaId,
        mid: u32,
        known: bool,
        next_iv: Vec<u8>,
        d: u64,
        msg: Hashed,
    ) -> Result<(), Reject> {
        let Some(cp) = payloads(&msg).find_map(|p| match p {
            Payload::Attribute(c) => Some(c.clone()),
            _ => None,
        }) else {
            return Err(Reject::Malformed(
                "Transaction without attribute payload".into(),
            ));
        };
        let sa = self
            .sas
            .get_mut(&id)
            .ok_or_else(|| Reject::Unexpected("sa".into()))?;
        if !known {
            // The edge's XAUTH request and status, to the client (`xauth.rs`).
            let xauth_msg = sa
                .xauth
                .as_ref()
                .is_some_and(|x| x.role == crate::auth::XauthRole::Client)
                && matches!(cp.cfg_type, CfgType::REQUEST | CfgType::SET)
                && crate::xauth::has_xauth_attributes(&cp.attributes);
            if sa.xauth_blocks() && !xauth_msg {
                self.counters.dropped_xauth_pending += 1;
                debug!(sa = %id, msg_id = mid, cfg_type = ?cp.cfg_type, "dropped Transaction: XAUTH has not succeeded");
                return Ok(());
            }
            let mut ex = Exchange::new(Kind::Done, next_iv, now);
            ex.last_rx = Some(d);
            sa.exchanges.insert(mid, ex);
            if xauth_msg {
                return if cp.cfg_type == CfgType::REQUEST {
                    self.on_xauth_request(now, id, mid, &cp)
                } else {
                    self.on_xauth_set(now, id, mid, &cp)
                };
            }
            return match cp.cfg_type {
                CfgType::REQUEST => {
                    if sa.initiator {
                        // We are the client; we do not serve addresses.
                        warn!(sa = %id, "peer sent CFG_REQUEST to the Mode Config client; ignored");
                        return Ok(());
                    }
                    let request = self.next_request;
                    self.next_request += 1;
                    let asked = from_attributes(&cp.attributes);
                    let identity = sa.remote_id.clone().unwrap_or(crate::Identity::Any);
                    if let Some(ex) = sa.exchanges.get_mut(&mid) {
                        ex.kind = Kind::CfgAwaitingAddress {
                            identifier: cp.identifier,
                            request,
                        };
                        ex.expires_at = now + Duration::from_secs(60);
                    }
                    info!(sa = %id, %identity, request, "CFG_REQUEST received; asking the address provider");
                    self.events.push_back(Event::AddressRequested {
                        sa: id,
                        request,
                        identity,
                        asked,
                    });
                    Ok(())
                }
                CfgType::SET => {
                    let config = from_attributes(&cp.attributes);
                    // CFG_ACK names the attributes we accepted, with no values.
                    let acked: Vec<Attribute> = cp
                        .attributes
                        .iter()
                        .filter(|a| {
                            matches!(
                                a.ty,
                                cfg::INTERNAL_IP6_ADDRESS
                                    | cfg::INTERNAL_IP6_DNS
                                    | cfg::INTERNAL_IP6_DHCP
                                    | cfg::INTERNAL_ADDRESS_EXPIRY
                            )
                        })
                        .map(|a| Attribute::variable(a.ty, Vec::new()))
                        .collect();
                    let ack = ConfigPayload {
                        cfg_type: CfgType::ACK,
                        identifier: cp.identifier,
                        attributes: acked,
                    };
                    info!(sa = %id, address = ?config.address, "CFG_SET received; acknowledging");
                    self.send_cfg(now, id, mid, ack, None);
                    self.events
                        .push_back(Event::ModeConfigReceived { sa: id, config });
                    Ok(())
                }
                t => Err(Reject::Unexpected(format!("unsolicited {t:?}"))),
            };
        }
        let ex = sa
            .exchanges
            .get_mut(&mid)
            .ok_or_else(|| Reject::Unexpected("exchange".into()))?;
        // xauth-06 §3.1 ties REPLY and ACK to the request by Identifier, but strongSwan answers
        // XAUTH with Identifier 0 (seen on the wire here); the message ID and HASH already bind
        // the answer to the exchange, so 0 is accepted too.
        let xauth_fits = |expected: u16| cp.identifier == expected || cp.identifier == 0;
        match (&ex.kind, cp.cfg_type) {
            (Kind::XauthRequested(r), CfgType::REPLY) if xauth_fits(r.identifier) => {
                let Kind::XauthRequested(r) = std::mem::replace(&mut ex.kind, Kind::Done) else {
                    return Ok(());
                };
                ex.iv = next_iv;
                ex.last_rx = Some(d);
                ex.retransmit_at = None;
                ex.last_sent = None;
                ex.expires_at = now + crate::exchange::KEEP_DONE;
                self.on_xauth_reply(now, id, &r, &cp);
                Ok(())
            }
            (Kind::XauthStatus { identifier, ok }, CfgType::ACK) if xauth_fits(*identifier) => {
                let ok = *ok;
                ex.iv = next_iv;
                ex.last_rx = Some(d);
                ex.kind = Kind::Done;
                ex.retransmit_at = None;
                ex.last_sent = None;
                ex.expires_at = now + crate::exchange::KEEP_DONE;
                self.on_xauth_ack(now, id, ok);
                Ok(())
            }
            (Kind::CfgRequested { identifier }, CfgType::REPLY) if *identifier == cp.identifier => {
                ex.iv = next_iv;
                ex.last_rx = Some(d);
                ex.kind = Kind::Done;
                ex.retransmit_at = None;
                ex.last_sent = None;
                ex.expires_at = now + crate::exchange::KEEP_DONE;
                let config = from_attributes(&cp.attributes);
                info!(sa = %id, address = ?config.address, dns = ?config.dns, "CFG_REPLY received");
                self.events
                    .push_back(Event::ModeConfigReceived { sa: id, config });
                Ok(())
            }
            (Kind::CfgPushed { identifier }, CfgType::ACK) if *identifier == cp.identifier => {
                ex.iv = next_iv;
                ex.last_rx = Some(d);
                ex.kind = Kind::Done;
                ex.retransmit_at = None;
                ex.last_sent = None;
                self.events.push_back(Event::ModeConfigAcked { sa: id });
                Ok(())
            }
            _ => Err(Reject::Unexpected(format!(
                "{:?} with identifier {} does not fit the exchange",
                cp.cfg_type, cp.identifier
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_16_and_17_bytes() {
        let a: std::net::Ipv6Addr = "2001:db8:1::1000".parse().unwrap();
        let mut v17 = a.octets().to_vec();
        v17.push(64);
        let m = from_attributes(&[Attribute::variable(cfg::INTERNAL_IP6_ADDRESS, v17)]);
        assert_eq!(m.address, Some(a));
        assert_eq!(m.prefix_len, Some(64));
        let m = from_attributes(&[Attribute::variable(
            cfg::INTERNAL_IP6_ADDRESS,
            a.octets().to_vec(),
        )]);
        assert_eq!(m.address, Some(a));
        let bad = from_attributes(&[Attribute::variable(
            cfg::INTERNAL_IP6_ADDRESS,
            vec![1, 2, 3],
        )]);
        assert_eq!(bad.address, None);
        let out = to_attributes(
            &ModeConfig {
                address: Some(a),
                ..ModeConfig::default()
            },
            false,
        );
        assert_eq!(out[0].value, AttrValue::Variable(a.octets().to_vec()));
    }
}
