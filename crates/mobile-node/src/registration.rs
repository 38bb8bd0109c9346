//! Home registration at the mobile node (RFC 6275 §11.7.1, §11.8) over the RFC 3776 SAs.
//!
//! Once the bootstrap is ready with the transport-mode SA (the DHCPv6 and Mode Config paths;
//! static mode has only the tunnel SA and no registration), a Binding Update goes from the
//! care-of address to the home agent with a Home Address option and the A and H bits, through
//! the transport-mode SA; it is retransmitted with back-off until the Binding Acknowledgement
//! (which arrives with a type 2 Routing header, read before the kernel drops it) and refreshed
//! before the binding expires (`mip6::HomeRegistration` decides when). A Binding Refresh
//! Request from the home agent, through the tunnel-mode SA, triggers a refresh at once. At
//! shutdown the node deregisters (lifetime 0) before the SAs are deleted.

use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

use mip6::{BulConfig, BulEvent, BulState, HomeRegistration, Message, build_bu_packet};
use tracing::{debug, info, warn};
use tunnel::LocalPayload;

use crate::status::BindingStatus;

/// The Mobility Header (RFC 6275 §6.1).
const IPPROTO_MH: u8 = 135;

/// The node's registration with its home agent, while it has a home address.
pub(crate) struct Registration {
    bul: HomeRegistration,
    care_of: Ipv6Addr,
    buf: Vec<u8>,
}

impl Registration {
    /// Starts registering `home_address` at `care_of` with `home_agent`; `sequence` is the
    /// first sequence number (random); with `fqdn`, every Binding Update asks the home agent to
    /// keep that name's AAAA record (RFC 5026 §6.2).
    pub(crate) fn start(
        now: Instant,
        home_address: Ipv6Addr,
        home_agent: Ipv6Addr,
        care_of: Ipv6Addr,
        sequence: u16,
        lifetime: Duration,
        fqdn: Option<String>,
    ) -> Self {
        let config = BulConfig {
            lifetime,
            dns_update: fqdn,
            ..BulConfig::default()
        };
        let mut bul = HomeRegistration::new(config, home_address, home_agent, sequence);
        bul.register(now, care_of);
        info!(%home_address, %care_of, %home_agent, "sending the Binding Update");
        Self {
            bul,
            care_of,
            buf: Vec::new(),
        }
    }

    /// A transport- or tunnel-mode Mobility Header from the home agent.
    pub(crate) fn on_payload(&mut self, now: Instant, p: &LocalPayload) {
        if p.next_header != IPPROTO_MH {
            return;
        }
        match Message::parse(&p.payload, Some((p.src, p.dst))) {
            Ok(Message::BindingAck(ba)) => {
                if let Err(e) = self.bul.handle_ba(now, &ba) {
                    debug!(reason = %e, sequence = ba.sequence, "Binding Acknowledgement ignored");
                }
            }
            Ok(Message::BindingRefreshRequest(_)) => {
                if self.bul.handle_brr(now) {
                    info!("Binding Refresh Request: refreshing");
                }
            }
            Ok(Message::BindingError(e)) => {
                warn!(status = ?e.status, "Binding Error from the home agent");
            }
            Ok(other) => debug!(message = ?other, "Mobility Header ignored"),
            Err(e) => warn!(src = %p.src, error = %e, "malformed Mobility Header; dropped"),
        }
    }

    /// Deregisters (lifetime 0); `false` if nothing is registered.
    pub(crate) fn deregister(&mut self, now: Instant) -> bool {
        self.bul.deregister(now)
    }

    /// Whether a deregistration is still in flight.
    pub(crate) fn deregistering(&self) -> bool {
        self.bul.state() == BulState::Deregistering
    }

    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.bul.poll_timeout()
    }

    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        self.bul.handle_timeout(now);
    }

    /// The Binding Updates due, as IPv6 packets to send through the SPD, and what happened.
    pub(crate) fn poll(&mut self, now: Instant) -> Vec<Vec<u8>> {
        let mut packets = Vec::new();
        while let Some(t) = self.bul.poll_transmit(now, &mut self.buf) {
            let mut p = Vec::new();
            if build_bu_packet(t.care_of, t.home_agent, t.home_address, &self.buf, &mut p).is_some()
            {
                debug!(sequence = t.sequence, care_of = %t.care_of, "Binding Update");
                packets.push(p);
            }
        }
        while let Some(ev) = self.bul.poll_event() {
            match ev {
                BulEvent::Registered {
                    care_of,
                    lifetime,
                    refresh,
                    ..
                } => {
                    info!(%care_of, lifetime_s = lifetime.as_secs(), refresh, "home registration accepted");
                }
                BulEvent::Failed { care_of, status } => {
                    warn!(%care_of, %status, "home registration refused");
                }
                BulEvent::Expired { care_of } => warn!(%care_of, "binding expired"),
                BulEvent::Deregistered { care_of, status } => {
                    info!(%care_of, status = ?status.map(|s| s.to_string()), "deregistered");
                }
            }
        }
        packets
    }

    /// For `status`.
    pub(crate) fn status(&self, now: Instant) -> BindingStatus {
        let s = self.bul.status(now);
        BindingStatus {
            state: s.state.to_string(),
            care_of_address: s.care_of.or(Some(self.care_of)),
            lifetime_left: s.lifetime_left.map(|d| d.as_secs()),
            sequence: s.sequence,
            last_status: s.last_status.map(|st| st.to_string()),
            dns_update: s.dns_update.map(|st| st.to_string()),
        }
    }
}
