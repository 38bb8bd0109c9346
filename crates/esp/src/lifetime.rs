//! SA lifetimes (RFC 4301 §4.4.2.1): soft and hard limits on bytes, packets and time.
//!
//! Reaching a soft limit raises [`SaEvent::SoftExpired`](crate::SaEvent::SoftExpired) once, so
//! the daemon rekeys; reaching a hard limit raises
//! [`SaEvent::HardExpired`](crate::SaEvent::HardExpired) once and the SA stops carrying
//! traffic ([`DropReason::SaExpired`](crate::DropReason::SaExpired)). A hard limit also raises
//! the soft event first if it had not fired. Byte counts are payload bytes (the inner packet in
//! tunnel mode, the upper-layer payload in transport mode). Time runs from the moment the SA
//! was added; the engine never reads a clock, deadlines come from the `now` the caller passes.
//!
//! The packet (or byte) that reaches a hard limit is still processed; the next one is not.

use std::time::{Duration, Instant};

/// One set of limits; `None` means no limit of that kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Limits {
    /// Payload bytes.
    pub bytes: Option<u64>,
    /// Packets.
    pub packets: Option<u64>,
    /// Time since the SA was added.
    pub time: Option<Duration>,
}

impl Limits {
    /// No limit at all.
    pub const NONE: Self = Self {
        bytes: None,
        packets: None,
        time: None,
    };

    fn reached(&self, bytes: u64, packets: u64) -> bool {
        self.bytes.is_some_and(|b| bytes >= b) || self.packets.is_some_and(|p| packets >= p)
    }
}

/// Soft and hard limits of an SA.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Lifetime {
    /// Limits that ask for a rekey.
    pub soft: Limits,
    /// Limits after which the SA is unusable.
    pub hard: Limits,
}

impl Lifetime {
    /// No limits.
    pub const UNLIMITED: Self = Self {
        soft: Limits::NONE,
        hard: Limits::NONE,
    };

    /// A time-only lifetime: hard after `hard`, soft after `soft`.
    pub fn time(soft: Duration, hard: Duration) -> Self {
        Self {
            soft: Limits {
                time: Some(soft),
                ..Limits::NONE
            },
            hard: Limits {
                time: Some(hard),
                ..Limits::NONE
            },
        }
    }
}

/// Which events a step of the lifetime raised.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Expiry {
    pub(crate) soft: bool,
    pub(crate) hard: bool,
}

impl Expiry {
    pub(crate) fn any(self) -> bool {
        self.soft || self.hard
    }
}

/// The lifetime state of one SA.
#[derive(Clone, Debug)]
pub(crate) struct LifetimeState {
    limits: Lifetime,
    soft_at: Option<Instant>,
    hard_at: Option<Instant>,
    soft_fired: bool,
    hard_fired: bool,
}

impl LifetimeState {
    pub(crate) fn new(now: Instant, limits: Lifetime) -> Self {
        Self {
            limits,
            soft_at: limits.soft.time.and_then(|d| now.checked_add(d)),
            hard_at: limits.hard.time.and_then(|d| now.checked_add(d)),
            soft_fired: false,
            hard_fired: false,
        }
    }

    pub(crate) fn is_hard_expired(&self) -> bool {
        self.hard_fired
    }

    pub(crate) fn is_soft_expired(&self) -> bool {
        self.soft_fired
    }

    /// Forces the hard expiry (sequence number exhausted). Returns the events to raise.
    pub(crate) fn expire_now(&mut self) -> Expiry {
        let e = Expiry {
            soft: !self.soft_fired,
            hard: !self.hard_fired,
        };
        self.soft_fired = true;
        self.hard_fired = true;
        e
    }

    /// Forces the soft expiry only. Returns whether it fired now.
    pub(crate) fn soft_now(&mut self) -> bool {
        !std::mem::replace(&mut self.soft_fired, true)
    }

    /// Checks the time limits.
    #[inline]
    pub(crate) fn on_time(&mut self, now: Instant) -> Expiry {
        let mut e = Expiry::default();
        if !self.hard_fired && self.hard_at.is_some_and(|t| now >= t) {
            e = self.expire_now();
        } else if !self.soft_fired && self.soft_at.is_some_and(|t| now >= t) {
            self.soft_fired = true;
            e.soft = true;
        }
        e
    }

    /// Checks the byte and packet limits against the SA's totals.
    #[inline]
    pub(crate) fn on_traffic(&mut self, bytes: u64, packets: u64) -> Expiry {
        let mut e = Expiry::default();
        if !self.hard_fired && self.limits.hard.reached(bytes, packets) {
            e = self.expire_now();
        } else if !self.soft_fired && self.limits.soft.reached(bytes, packets) {
            self.soft_fired = true;
            e.soft = true;
        }
        e
    }

    /// The next time limit that has not fired.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        if self.hard_fired {
            return None;
        }
        let soft = self.soft_at.filter(|_| !self.soft_fired);
        match (soft, self.hard_at) {
            (Some(s), Some(h)) => Some(s.min(h)),
            (s, h) => s.or(h),
        }
    }

    pub(crate) fn limits(&self) -> &Lifetime {
        &self.limits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time() {
        let t0 = Instant::now();
        let mut l = LifetimeState::new(
            t0,
            Lifetime::time(Duration::from_secs(10), Duration::from_secs(20)),
        );
        assert_eq!(l.deadline(), Some(t0 + Duration::from_secs(10)));
        assert!(!l.on_time(t0 + Duration::from_secs(9)).any());
        assert_eq!(
            l.on_time(t0 + Duration::from_secs(10)),
            Expiry {
                soft: true,
                hard: false
            }
        );
        assert!(!l.on_time(t0 + Duration::from_secs(11)).any());
        assert_eq!(l.deadline(), Some(t0 + Duration::from_secs(20)));
        assert_eq!(
            l.on_time(t0 + Duration::from_secs(20)),
            Expiry {
                soft: false,
                hard: true
            }
        );
        assert!(l.is_hard_expired());
        assert_eq!(l.deadline(), None);
        assert!(!l.on_time(t0 + Duration::from_secs(30)).any());
    }

    #[test]
    fn hard_first_raises_both() {
        let t0 = Instant::now();
        let mut l = LifetimeState::new(
            t0,
            Lifetime {
                soft: Limits {
                    packets: Some(100),
                    ..Limits::NONE
                },
                hard: Limits {
                    bytes: Some(1000),
                    ..Limits::NONE
                },
            },
        );
        assert!(!l.on_traffic(999, 1).any());
        assert_eq!(
            l.on_traffic(1000, 2),
            Expiry {
                soft: true,
                hard: true
            }
        );
        assert!(!l.on_traffic(2000, 200).any());
    }
}
