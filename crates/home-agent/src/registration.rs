//! Home registration at the home agent (RFC 6275 §10.3) over the RFC 3776 SAs.
//!
//! A Binding Update reaches the home agent as transport-mode ESP behind a Home Address option;
//! the tunnel task reads it before the kernel drops it and hands over the decapsulated Mobility
//! Header with the home address, the care-of address and the SA that carried it. Here:
//! * RFC 3776 §4: the Binding Update must have come through the transport-mode SA of that
//!   home address (its selector names it), and the SA's IKE identity must hold the address
//!   (`home_addresses`); otherwise it is refused (status 133) or dropped, and logged with
//!   identity, address and reason. A Mobility Header that did not come through ESP never gets
//!   here (the tunnel counts it and drops it).
//! * The binding cache (`mip6::BindingCache`) checks the sequence number and the flags, grants
//!   the lifetime and answers with a Binding Acknowledgement, sent through the same SA with a
//!   type 2 Routing header (§9.5.4, §10.3.1). Before a binding expires, a Binding Refresh
//!   Request goes to the home address (§10.3.1 "MAY"; §6.1.2).
//! * What changed (created, moved, refreshed, deregistered, expired) goes back to the daemon,
//!   which forwards the home address only while a binding exists.
//! * An accepted Binding Update with the DNS Update option (RFC 5026 §6.2) has its
//!   acknowledgement held back for the daemon's DNS side (`dns`), which adds the option's
//!   answer.

use std::collections::HashMap;
use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

use ikev1::{ChildSa, IkeSaId, Mode, TrafficSelector};
use mip6::{
    BindingCache, BindingChange, BuOutcome, CacheConfig, CacheEvent, Message, Refusal,
    build_ba_packet, build_mh_packet,
};
use tracing::{debug, info, warn};
use tunnel::LocalPayload;

use crate::dns::HeldAck;

/// The Mobility Header (RFC 6275 §6.1).
const IPPROTO_MH: u8 = 135;

/// The child SAs a Binding Update may come through: transport mode, our SPI → the IKE SA and
/// the home address its selector names.
#[derive(Clone, Copy, Debug)]
struct TransportSa {
    ike_sa: IkeSaId,
    home_address: Ipv6Addr,
}

/// What the daemon must do after a Binding Update or a timer.
#[derive(Debug, Default)]
pub(crate) struct Output {
    /// Packets to send through the SPD (Binding Acknowledgements, Binding Refresh Requests).
    pub(crate) packets: Vec<Vec<u8>>,
    /// Forward this home address into the tunnel from now on.
    pub(crate) forward: Vec<Ipv6Addr>,
    /// Stop forwarding it.
    pub(crate) stop: Vec<Ipv6Addr>,
    /// Acknowledgements held back for a DNS update, with the option asking for it and the
    /// identity that asked.
    pub(crate) dns: Vec<(HeldAck, mip6::DnsUpdateOption, String)>,
}

/// Counters for `status`.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Counters {
    pub(crate) bu_accepted: u64,
    pub(crate) bu_refused: u64,
    pub(crate) bu_dropped: u64,
    pub(crate) mh_malformed: u64,
    pub(crate) brr_sent: u64,
    pub(crate) expired: u64,
}

/// The binding cache and the SAs that may feed it.
pub(crate) struct Registrations {
    cache: BindingCache,
    home_agent: Ipv6Addr,
    transport: HashMap<u32, TransportSa>,
    counters: Counters,
}

impl Registrations {
    pub(crate) fn new(home_agent: Ipv6Addr, max_lifetime: Duration, max_bindings: usize) -> Self {
        let config = CacheConfig {
            max_lifetime,
            max_entries: max_bindings,
            ..CacheConfig::default()
        };
        Self {
            cache: BindingCache::new(config),
            home_agent,
            transport: HashMap::new(),
            counters: Counters::default(),
        }
    }

    pub(crate) fn counters(&self) -> Counters {
        self.counters
    }

    /// The bindings, for `status`.
    pub(crate) fn bindings(&self) -> impl Iterator<Item = &mip6::Binding> {
        self.cache.iter()
    }

    /// Whether a binding for `hoa` exists.
    pub(crate) fn has_binding(&self, hoa: Ipv6Addr) -> bool {
        self.cache.get(&hoa).is_some()
    }

    /// A child SA came up: remember the transport-mode ones with a home address.
    pub(crate) fn child_up(&mut self, c: &ChildSa) {
        self.sa_up(c.spi_in, c.ike_sa, c.mode, &c.remote_ts);
    }

    fn sa_up(&mut self, spi_in: u32, ike_sa: IkeSaId, mode: Mode, remote_ts: &TrafficSelector) {
        if mode != Mode::Transport || remote_ts.protocol != IPPROTO_MH {
            return;
        }
        if let Some(hoa) = tunnel::convert::host_addr(remote_ts) {
            self.transport.insert(
                spi_in,
                TransportSa {
                    ike_sa,
                    home_address: hoa,
                },
            );
        }
    }

    /// A child SA went away.
    pub(crate) fn child_down(&mut self, spi_in: u32) {
        self.transport.remove(&spi_in);
    }

    /// A newer IKE SA took over the children of `old`.
    pub(crate) fn ike_sa_replaced(&mut self, old: IkeSaId, new: IkeSaId) {
        for t in self.transport.values_mut().filter(|t| t.ike_sa == old) {
            t.ike_sa = new;
        }
    }

    /// A transport-mode payload out of the tunnel. `identity` is the IKE SA's peer;
    /// `holds(identity, hoa)` says whether it holds the home address.
    pub(crate) fn on_payload(
        &mut self,
        now: Instant,
        p: &LocalPayload,
        identity: &str,
        holds: impl Fn(&str, Ipv6Addr) -> bool,
    ) -> Output {
        let mut out = Output::default();
        if p.next_header != IPPROTO_MH {
            debug!(
                next_header = p.next_header,
                "transport-mode payload that is not a Mobility Header; dropped"
            );
            return out;
        }
        let msg = match Message::parse(&p.payload, Some((p.src, p.dst))) {
            Ok(m) => m,
            Err(e) => {
                self.counters.mh_malformed += 1;
                warn!(%identity, src = %p.src, error = %e, "malformed Mobility Header; dropped");
                return out;
            }
        };
        let Message::BindingUpdate(bu) = msg else {
            debug!(%identity, message = ?msg, "Mobility Header other than a Binding Update; ignored");
            return out;
        };
        let hoa = p.src;
        let coa = bu.alternate_care_of_address().unwrap_or(p.outer_src);
        // RFC 3776 §4: the SA must be this home address's transport-mode SA.
        let sa_ok = self
            .transport
            .get(&p.spi_in)
            .is_some_and(|t| t.ike_sa == p.ike_sa && t.home_address == hoa);
        if !sa_ok {
            self.counters.bu_dropped += 1;
            warn!(%identity, home_address = %hoa, care_of_address = %coa, spi = format_args!("{:08x}", p.spi_in),
                "Binding Update not protected by the transport-mode SA of its home address; dropped");
            return out;
        }
        let allowed = holds(identity, hoa);
        let outcome = self.cache.handle_bu(now, identity, allowed, hoa, coa, &bu);
        match &outcome {
            BuOutcome::Accepted { change, .. } => {
                self.counters.bu_accepted += 1;
                self.apply(change, &mut out);
            }
            BuOutcome::Refused { reason, .. } => {
                self.counters.bu_refused += 1;
                warn!(%identity, home_address = %hoa, care_of_address = %coa, sequence = bu.sequence,
                    status = %reason.status(), %reason, "Binding Update refused");
                if matches!(reason, Refusal::NotAuthorized) && !allowed {
                    // The only SA that could carry the answer belongs to the address, which
                    // this identity does not hold.
                    return out;
                }
            }
            BuOutcome::Dropped(reason) => {
                self.counters.bu_dropped += 1;
                warn!(%identity, home_address = %hoa, care_of_address = %coa, %reason, "Binding Update dropped");
            }
        }
        if let Some(ack) = outcome.ack() {
            let held = HeldAck {
                care_of: coa,
                home_address: hoa,
                ack: ack.clone(),
            };
            match crate::dns::requested(&bu.options) {
                Some(req) if matches!(outcome, BuOutcome::Accepted { .. }) => {
                    out.dns.push((held, req.clone(), identity.to_owned()));
                }
                _ => out.packets.extend(self.ba_packet(&held)),
            }
        }
        out
    }

    /// The Binding Acknowledgement as a packet: behind a type 2 Routing header to the care-of
    /// address (§6.4, §9.5.4).
    pub(crate) fn ba_packet(&self, held: &HeldAck) -> Option<Vec<u8>> {
        let mut mh = Vec::new();
        let mut packet = Vec::new();
        Message::BindingAck(held.ack.clone())
            .emit(self.home_agent, held.home_address, &mut mh)
            .ok()?;
        build_ba_packet(
            self.home_agent,
            held.care_of,
            held.home_address,
            &mh,
            &mut packet,
        )?;
        Some(packet)
    }

    fn apply(&mut self, change: &BindingChange, out: &mut Output) {
        match change {
            BindingChange::Created {
                home_address,
                care_of_address,
                lifetime,
            } => {
                info!(%home_address, %care_of_address, lifetime_s = lifetime.as_secs(), "binding created");
                out.forward.push(*home_address);
            }
            BindingChange::Moved {
                home_address,
                care_of_address,
                old_care_of_address,
                ..
            } => {
                info!(%home_address, %care_of_address, %old_care_of_address, "binding moved");
                out.forward.push(*home_address);
            }
            BindingChange::Refreshed {
                home_address,
                lifetime,
                ..
            } => debug!(%home_address, lifetime_s = lifetime.as_secs(), "binding refreshed"),
            BindingChange::Deregistered {
                home_address,
                care_of_address,
            } => {
                info!(%home_address, %care_of_address, "binding deleted (deregistration)");
                out.stop.push(*home_address);
            }
        }
    }

    /// When [`Self::handle_timeout`] is due.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.cache.poll_timeout()
    }

    /// Expired bindings and Binding Refresh Requests.
    pub(crate) fn handle_timeout(&mut self, now: Instant) -> Output {
        self.cache.handle_timeout(now);
        let mut out = Output::default();
        while let Some(ev) = self.cache.poll_event() {
            match ev {
                CacheEvent::Expired {
                    home_address,
                    care_of_address,
                    identity,
                } => {
                    self.counters.expired += 1;
                    info!(%identity, %home_address, %care_of_address, "binding expired");
                    out.stop.push(home_address);
                }
                CacheEvent::RefreshRequest { home_address, .. } => {
                    // Sent to the home address: the tunnel-mode SA carries it to the node.
                    let mut mh = Vec::new();
                    let mut packet = Vec::new();
                    let brr = Message::BindingRefreshRequest(mip6::BindingRefreshRequest {
                        options: Vec::new(),
                    });
                    if brr.emit(self.home_agent, home_address, &mut mh).is_ok()
                        && build_mh_packet(self.home_agent, home_address, &mh, &mut packet)
                            .is_some()
                    {
                        self.counters.brr_sent += 1;
                        debug!(%home_address, "Binding Refresh Request sent");
                        out.packets.push(packet);
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use mip6::{BaStatus, BindingUpdate, BuFlags, MobilityPacket};

    use super::*;

    const HA: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xff, 0, 0, 0, 0, 1);
    const COA: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xff, 0, 0, 0, 0, 2);
    const HOA: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x100);
    const OTHER: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x200);
    const SA: IkeSaId = IkeSaId(1);
    const SPI: u32 = 0x1111;

    fn regs() -> Registrations {
        let mut r = Registrations::new(HA, Duration::from_secs(60), 8);
        let ts = TrafficSelector::host(IpAddr::V6(HOA)).with_protocol(IPPROTO_MH, 0);
        r.sa_up(SPI, SA, Mode::Transport, &ts);
        r
    }

    /// A Binding Update from the home address (Home Address option) as the tunnel hands it
    /// over.
    fn bu(hoa: Ipv6Addr, sequence: u16, lifetime_units: u16) -> LocalPayload {
        let mut mh = Vec::new();
        Message::BindingUpdate(BindingUpdate {
            sequence,
            flags: BuFlags::ACK | BuFlags::HOME,
            lifetime: lifetime_units,
            options: Vec::new(),
        })
        .emit(hoa, HA, &mut mh)
        .unwrap();
        LocalPayload {
            ike_sa: SA,
            spi_in: SPI,
            src: hoa,
            dst: HA,
            outer_src: COA,
            mobile_ipv6: true,
            next_header: IPPROTO_MH,
            payload: mh,
        }
    }

    /// The Binding Acknowledgement in an output packet: sent to the care-of address with a
    /// type 2 Routing header naming the home address.
    fn ba(packet: &[u8]) -> mip6::BindingAck {
        let p = MobilityPacket::parse(packet).unwrap();
        assert_eq!((p.src, p.dst), (HA, COA));
        assert_eq!(p.routing_address, Some(HOA));
        match Message::parse(p.mh, Some((HA, HOA))).unwrap() {
            Message::BindingAck(a) => a,
            other => panic!("not a BA: {other:?}"),
        }
    }

    #[test]
    fn accepted_then_refreshed_then_deregistered() {
        let mut r = regs();
        let now = Instant::now();
        let out = r.on_payload(now, &bu(HOA, 7, 15), "mn1", |_, _| true);
        assert_eq!(out.forward, vec![HOA]);
        let a = ba(&out.packets[0]);
        assert_eq!((a.status, a.sequence), (BaStatus::ACCEPTED, 7));
        assert!(r.has_binding(HOA));
        let out = r.on_payload(now, &bu(HOA, 8, 15), "mn1", |_, _| true);
        assert!(out.forward.is_empty() && out.stop.is_empty());
        assert_eq!(ba(&out.packets[0]).sequence, 8);
        let out = r.on_payload(now, &bu(HOA, 9, 0), "mn1", |_, _| true);
        assert_eq!(out.stop, vec![HOA]);
        assert!(!r.has_binding(HOA));
        assert_eq!(r.counters().bu_accepted, 3);
    }

    /// RFC 5026 §6.2: an accepted Binding Update asking for a DNS update has its
    /// acknowledgement held for the DNS side, which answers in the option; a refused one is
    /// answered at once.
    #[test]
    fn dns_update_request_holds_the_acknowledgement() {
        let mut r = regs();
        let now = Instant::now();
        let mut p = bu(HOA, 7, 15);
        let mut mh = Vec::new();
        let request = mip6::DnsUpdateOption::request("mn1.example.", false).unwrap();
        Message::BindingUpdate(BindingUpdate {
            sequence: 7,
            flags: BuFlags::ACK | BuFlags::HOME,
            lifetime: 15,
            options: vec![mip6::MobilityOption::DnsUpdate(request.clone())],
        })
        .emit(HOA, HA, &mut mh)
        .unwrap();
        p.payload = mh;
        let out = r.on_payload(now, &p, "mn1", |_, _| true);
        assert!(out.packets.is_empty(), "the BA waits for DNS");
        assert_eq!(out.forward, vec![HOA]);
        let (held, req, identity) = &out.dns[0];
        assert_eq!((req, identity.as_str()), (&request, "mn1"));
        let answered = crate::dns::answer(held.clone(), req, mip6::DnsUpdateStatus::PERFORMED);
        let a = ba(&r.ba_packet(&answered).expect("packet"));
        assert_eq!((a.status, a.sequence), (BaStatus::ACCEPTED, 7));
        assert!(a.options.iter().any(|o| matches!(
            o,
            mip6::MobilityOption::DnsUpdate(d) if d.status == mip6::DnsUpdateStatus::PERFORMED
                && d.fqdn().as_deref() == Some("mn1.example.")
        )));
        // The same sequence again is refused (135): answered at once, no DNS work.
        let out = r.on_payload(now, &p, "mn1", |_, _| true);
        assert!(out.dns.is_empty());
        assert_eq!(ba(&out.packets[0]).status, BaStatus::SEQUENCE_OUT_OF_WINDOW);
    }

    #[test]
    fn old_sequence_refused_with_135_and_the_last_accepted() {
        let mut r = regs();
        let now = Instant::now();
        let _ = r.on_payload(now, &bu(HOA, 100, 15), "mn1", |_, _| true);
        let out = r.on_payload(now, &bu(HOA, 100, 15), "mn1", |_, _| true);
        let a = ba(&out.packets[0]);
        assert_eq!(a.status, BaStatus::SEQUENCE_OUT_OF_WINDOW);
        assert_eq!(a.sequence, 100);
        assert_eq!(r.counters().bu_refused, 1);
    }

    #[test]
    fn identity_without_the_address_is_refused_without_an_answer() {
        let mut r = regs();
        let out = r.on_payload(Instant::now(), &bu(HOA, 1, 15), "mn2", |_, _| false);
        assert!(out.packets.is_empty() && out.forward.is_empty());
        assert!(!r.has_binding(HOA));
        assert_eq!(r.counters().bu_refused, 1);
    }

    #[test]
    fn another_home_address_through_this_sa_is_dropped() {
        let mut r = regs();
        let out = r.on_payload(Instant::now(), &bu(OTHER, 1, 15), "mn1", |_, _| true);
        assert!(out.packets.is_empty() && out.forward.is_empty());
        assert!(!r.has_binding(OTHER));
        assert_eq!(r.counters().bu_dropped, 1);
        // Through an SA of another IKE SA: dropped too.
        let mut p = bu(HOA, 1, 15);
        p.ike_sa = IkeSaId(9);
        let out = r.on_payload(Instant::now(), &p, "mn1", |_, _| true);
        assert!(out.packets.is_empty());
        assert_eq!(r.counters().bu_dropped, 2);
    }

    #[test]
    fn bad_checksum_is_counted() {
        let mut r = regs();
        let mut p = bu(HOA, 1, 15);
        p.payload[10] ^= 0xff;
        let out = r.on_payload(Instant::now(), &p, "mn1", |_, _| true);
        assert!(out.packets.is_empty());
        assert_eq!(r.counters().mh_malformed, 1);
    }

    #[test]
    fn refresh_request_then_expiry() {
        let mut r = regs();
        let now = Instant::now();
        // 15 units = 60 s granted.
        let _ = r.on_payload(now, &bu(HOA, 1, 15), "mn1", |_, _| true);
        let mut brr = 0;
        let mut stopped = false;
        let mut t = now;
        while let Some(next) = r.poll_timeout() {
            assert!(
                next <= now + Duration::from_secs(61),
                "timer past the lifetime"
            );
            t = t.max(next);
            let out = r.handle_timeout(t);
            for p in &out.packets {
                let m = MobilityPacket::parse(p).unwrap();
                assert_eq!((m.src, m.dst), (HA, HOA));
                assert!(matches!(
                    Message::parse(m.mh, Some((HA, HOA))).unwrap(),
                    Message::BindingRefreshRequest(_)
                ));
                brr += 1;
            }
            if out.stop == vec![HOA] {
                stopped = true;
                break;
            }
        }
        assert_eq!(brr, 1);
        assert!(stopped && !r.has_binding(HOA));
        assert_eq!(r.counters().expired, 1);
    }
}
