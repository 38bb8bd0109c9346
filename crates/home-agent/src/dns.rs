//! The mobile nodes' names in DNS, kept by the home agent (RFC 5026 §6; draft §5).
//!
//! A mobile node asks for it with the DNS Update option in its Binding Update (RFC 5026 §6.2).
//! Once the binding is accepted, the home agent checks that the node's identity may use that
//! name (`[[peers]] fqdn` or `fqdn_suffix`), replaces the name's AAAA RRset with the home
//! address by an RFC 2136 UPDATE signed with TSIG (RFC 8945, `dns-update`), and answers in the
//! Binding Acknowledgement's DNS Update option: 0 performed, 129 administratively prohibited,
//! 130 failed (refused, BADSIG, BADKEY, no answer), 128 when no `[dns_update]` is configured.
//! The acknowledgement waits for the server (at most [`ANSWER_WITHIN`], below the node's first
//! retransmission of 1.5 s, RFC 6275 §13); a refresh of a name already in place is answered at
//! once. The record goes again at deregistration (or a Binding Update with the R flag) and when
//! the binding expires. Refusals are logged with the server's reason; the binding itself never
//! depends on DNS.

use std::collections::HashMap;
use std::io;
use std::net::{Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use dns_update::{Name, Outcome, Update, UpdateConfig, UpdateRequest};
use ikev1::crypto::{Rng as _, SystemRng};
use mip6::{BindingAck, DnsUpdateOption, DnsUpdateStatus, MobilityOption};
use tokio::net::UdpSocket;
use tracing::{info, warn};

use crate::config::{DnsUpdateSettings, NameRule};

/// How long a Binding Acknowledgement may wait for the DNS server.
pub(crate) const ANSWER_WITHIN: Duration = Duration::from_secs(1);

/// A Binding Acknowledgement held back until the DNS answer.
#[derive(Debug, Clone)]
pub(crate) struct HeldAck {
    /// Where it goes.
    pub(crate) care_of: Ipv6Addr,
    /// The home address.
    pub(crate) home_address: Ipv6Addr,
    /// The acknowledgement, without the DNS Update option yet.
    pub(crate) ack: BindingAck,
}

/// What a finished update lets go: an acknowledgement with its DNS Update option.
#[derive(Debug)]
pub(crate) struct Release {
    /// The acknowledgement to send, its option filled in.
    pub(crate) held: HeldAck,
}

/// An acknowledgement waiting for an update, with the option that asked for it.
type Waiting = Option<(HeldAck, DnsUpdateOption)>;

enum Purpose {
    /// Put the home address under the name; then answer the Binding Update, if one waits.
    Replace(Waiting),
    /// Take the name out; then answer the Binding Update, if one waits.
    Delete(Waiting),
}

struct Pending {
    update: Update,
    home_address: Ipv6Addr,
    name: Name,
    identity: String,
    purpose: Purpose,
}

/// Counters for `status`.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct DnsCounters {
    /// Names put in place.
    pub(crate) updated: u64,
    /// Names removed.
    pub(crate) removed: u64,
    /// Updates the server refused or did not answer.
    pub(crate) failed: u64,
    /// Names an identity may not use.
    pub(crate) prohibited: u64,
}

/// The DNS side of the home agent.
pub(crate) struct NameUpdates {
    settings: DnsUpdateSettings,
    socket: UdpSocket,
    rng: SystemRng,
    pending: HashMap<u16, Pending>,
    /// The name in DNS for each home address.
    in_dns: HashMap<Ipv6Addr, Name>,
    counters: DnsCounters,
    tx: Vec<u8>,
}

/// The DNS Update option of a Binding Update, if any.
pub(crate) fn requested(options: &[MobilityOption]) -> Option<&DnsUpdateOption> {
    options.iter().find_map(|o| match o {
        MobilityOption::DnsUpdate(d) => Some(d),
        _ => None,
    })
}

/// `held` answered with `request`'s option and `status`.
pub(crate) fn answer(
    mut held: HeldAck,
    request: &DnsUpdateOption,
    status: DnsUpdateStatus,
) -> HeldAck {
    held.ack
        .options
        .push(MobilityOption::DnsUpdate(DnsUpdateOption::answer(
            request, status,
        )));
    held
}

fn unix_time() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl NameUpdates {
    /// The socket toward the server (any local address: the kernel picks the source).
    pub(crate) fn new(settings: DnsUpdateSettings) -> io::Result<Self> {
        let any: SocketAddr = if settings.server.is_ipv6() {
            (Ipv6Addr::UNSPECIFIED, 0).into()
        } else {
            (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
        };
        let socket = std::net::UdpSocket::bind(any)?;
        socket.set_nonblocking(true)?;
        Ok(Self {
            settings,
            socket: UdpSocket::from_std(socket)?,
            rng: SystemRng::new(),
            pending: HashMap::new(),
            in_dns: HashMap::new(),
            counters: DnsCounters::default(),
            tx: Vec::with_capacity(512),
        })
    }

    /// Counters so far.
    pub(crate) fn counters(&self) -> DnsCounters {
        self.counters
    }

    /// A Binding Update with the DNS Update option was accepted (`held` is its
    /// acknowledgement): the answer now, or `None` while the server is asked.
    pub(crate) async fn on_binding(
        &mut self,
        now: Instant,
        identity: &str,
        rule: &NameRule,
        request: &DnsUpdateOption,
        held: HeldAck,
    ) -> Option<HeldAck> {
        let hoa = held.home_address;
        let Some(name) = request.fqdn().and_then(|n| Name::from_ascii(&n).ok()) else {
            warn!(%identity, home_address = %hoa, "DNS Update option with an unreadable name; refused");
            self.counters.prohibited += 1;
            return Some(answer(held, request, DnsUpdateStatus::REASON_UNSPECIFIED));
        };
        if !rule.allows(&name) || !name.is_subdomain_of(&self.settings.zone) {
            warn!(%identity, home_address = %hoa, %name, zone = %self.settings.zone,
                "DNS update refused: the name is not one this identity may use ([[peers]] fqdn / fqdn_suffix)");
            self.counters.prohibited += 1;
            return Some(answer(
                held,
                request,
                DnsUpdateStatus::ADMINISTRATIVELY_PROHIBITED,
            ));
        }
        if request.remove {
            self.in_dns.remove(&hoa);
            let waiting = Some((held, request.clone()));
            self.start(now, identity, hoa, name, Purpose::Delete(waiting))
                .await;
            return None;
        }
        if self.in_dns.get(&hoa) == Some(&name) {
            // A refresh: the record is in place.
            return Some(answer(held, request, DnsUpdateStatus::PERFORMED));
        }
        if let Some(old) = self.in_dns.remove(&hoa)
            && old != name
        {
            self.start(now, identity, hoa, old, Purpose::Delete(None))
                .await;
        }
        let waiting = Some((held, request.clone()));
        self.start(now, identity, hoa, name, Purpose::Replace(waiting))
            .await;
        None
    }

    /// The binding of `hoa` is gone (deregistered or expired): its name goes too.
    pub(crate) async fn on_binding_gone(&mut self, now: Instant, hoa: Ipv6Addr) {
        let Some(name) = self.in_dns.remove(&hoa) else {
            return;
        };
        self.start(now, "-", hoa, name, Purpose::Delete(None)).await;
    }

    async fn start(
        &mut self,
        now: Instant,
        identity: &str,
        hoa: Ipv6Addr,
        name: Name,
        purpose: Purpose,
    ) {
        let zone = self.settings.zone.clone();
        let built = match &purpose {
            Purpose::Replace(_) => {
                UpdateRequest::replace_aaaa(zone, name.clone(), &[hoa], self.settings.ttl)
            }
            Purpose::Delete(_) => UpdateRequest::delete_aaaa(zone, name.clone()),
        };
        let req = match built {
            Ok(r) => r,
            Err(e) => {
                warn!(%identity, %name, error = %e, "DNS UPDATE not built");
                self.counters.failed += 1;
                return;
            }
        };
        let id = loop {
            let mut b = [0u8; 2];
            self.rng.fill(&mut b);
            let id = u16::from_be_bytes(b);
            if !self.pending.contains_key(&id) {
                break id;
            }
        };
        let mut config = UpdateConfig::new(self.settings.server);
        // Two tries within ANSWER_WITHIN, so that the acknowledgement beats the node's first
        // retransmission.
        config.retransmit = ANSWER_WITHIN / 2;
        config.tries = 2;
        let update = Update::new(config, &req, &self.settings.key, id, now, unix_time());
        self.pending.insert(
            id,
            Pending {
                update,
                home_address: hoa,
                name,
                identity: identity.to_owned(),
                purpose,
            },
        );
        self.flush(now).await;
    }

    /// Receives a datagram from the server.
    pub(crate) async fn recv(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.socket.recv_from(buf).await
    }

    /// An answer: delivered to the update with its ID.
    pub(crate) async fn on_datagram(
        &mut self,
        now: Instant,
        from: SocketAddr,
        data: &[u8],
    ) -> Vec<Release> {
        if let Some(id) = data.get(..2).map(|b| u16::from_be_bytes([b[0], b[1]]))
            && let Some(p) = self.pending.get_mut(&id)
        {
            p.update.handle_datagram(now, from, data, unix_time());
        }
        self.flush(now).await;
        self.finished()
    }

    /// When [`NameUpdates::on_timeout`] is due.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.pending
            .values()
            .filter_map(|p| p.update.poll_timeout())
            .min()
    }

    /// Retransmissions and give-ups.
    pub(crate) async fn on_timeout(&mut self, now: Instant) -> Vec<Release> {
        for p in self.pending.values_mut() {
            if p.update.poll_timeout().is_some_and(|t| now >= t) {
                p.update.handle_timeout(now);
            }
        }
        self.flush(now).await;
        self.finished()
    }

    async fn flush(&mut self, now: Instant) {
        for p in self.pending.values_mut() {
            while let Some(t) = p.update.poll_transmit(now, &mut self.tx) {
                if let Err(e) = self.socket.send_to(&self.tx[..t.size], t.dst).await {
                    warn!(server = %t.dst, error = %e, "DNS UPDATE not sent");
                }
            }
        }
    }

    fn finished(&mut self) -> Vec<Release> {
        let done: Vec<u16> = self
            .pending
            .iter()
            .filter(|(_, p)| p.update.is_finished())
            .map(|(id, _)| *id)
            .collect();
        let mut out = Vec::new();
        for id in done {
            let Some(p) = self.pending.remove(&id) else {
                continue;
            };
            let ok = matches!(p.update.outcome(), Some(Outcome::Done));
            let outcome = p
                .update
                .outcome()
                .map_or_else(|| "unknown".to_owned(), ToString::to_string);
            let (waiting, what) = match p.purpose {
                Purpose::Replace(waiting) => {
                    if ok {
                        self.counters.updated += 1;
                        self.in_dns.insert(p.home_address, p.name.clone());
                        info!(identity = %p.identity, name = %p.name, home_address = %p.home_address, "DNS: AAAA updated");
                    }
                    (waiting, "update")
                }
                Purpose::Delete(waiting) => {
                    if ok {
                        self.counters.removed += 1;
                        info!(identity = %p.identity, name = %p.name, home_address = %p.home_address, "DNS: AAAA removed");
                    }
                    (waiting, "removal")
                }
            };
            if !ok {
                self.counters.failed += 1;
                warn!(identity = %p.identity, name = %p.name, home_address = %p.home_address,
                    server = %self.settings.server, key = %self.settings.key.name, %outcome,
                    "DNS {what} refused or unanswered");
            }
            if let Some((held, request)) = waiting {
                let status = if ok {
                    DnsUpdateStatus::PERFORMED
                } else {
                    DnsUpdateStatus::DNS_UPDATE_FAILED
                };
                out.push(Release {
                    held: answer(held, &request, status),
                });
            }
        }
        out
    }
}
