//! Why packets were dropped, and the counters kept for it.

use std::fmt;

use crate::sad::SaInfo;

/// Why a packet was not passed on. Each drop is counted ([`Stats::drops`]) and logged once at
/// `debug` level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DropReason {
    /// Inbound: no SA has this SPI. Outbound: the policy's SA is gone or is not outbound.
    NoSa,
    /// The sequence number is a duplicate, left of the window, or 0 (RFC 4303 §3.4.3).
    Replay,
    /// The ICV did not verify (RFC 4303 §3.4.4).
    BadIcv,
    /// The padding is not 1, 2, 3, … or the Pad Length is too large (RFC 4303 §2.4).
    BadPadding,
    /// Shorter than the ESP header, IV, one cipher block and ICV.
    Truncated,
    /// The decapsulated packet is not within the SA's selectors (RFC 4301 §5.2 step 4).
    PolicyMismatch,
    /// Outbound: no SPD entry matches.
    NoPolicy,
    /// Outbound: the matching SPD entry says DISCARD.
    PolicyDiscard,
    /// The SA reached its hard lifetime or ran out of sequence numbers.
    SaExpired,
    /// Not a well-formed IPv6 packet (outbound), ciphertext not a multiple of the block size,
    /// or an inner packet that is not IPv6 (inbound).
    Malformed,
    /// A dummy packet (Next Header 59, RFC 4303 §2.6), which is discarded by design.
    DummyPacket,
    /// Something this data plane does not do: transport mode over an IPv6 fragment, an IPv4
    /// outer address where a selector needs IPv6.
    Unsupported,
}

impl DropReason {
    /// Every reason, in counter order.
    pub const ALL: [Self; 12] = [
        Self::NoSa,
        Self::Replay,
        Self::BadIcv,
        Self::BadPadding,
        Self::Truncated,
        Self::PolicyMismatch,
        Self::NoPolicy,
        Self::PolicyDiscard,
        Self::SaExpired,
        Self::Malformed,
        Self::DummyPacket,
        Self::Unsupported,
    ];

    fn index(self) -> usize {
        match self {
            Self::NoSa => 0,
            Self::Replay => 1,
            Self::BadIcv => 2,
            Self::BadPadding => 3,
            Self::Truncated => 4,
            Self::PolicyMismatch => 5,
            Self::NoPolicy => 6,
            Self::PolicyDiscard => 7,
            Self::SaExpired => 8,
            Self::Malformed => 9,
            Self::DummyPacket => 10,
            Self::Unsupported => 11,
        }
    }

    /// A stable snake_case name for logs and status output.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoSa => "no_sa",
            Self::Replay => "replay",
            Self::BadIcv => "bad_icv",
            Self::BadPadding => "bad_padding",
            Self::Truncated => "truncated",
            Self::PolicyMismatch => "policy_mismatch",
            Self::NoPolicy => "no_policy",
            Self::PolicyDiscard => "policy_discard",
            Self::SaExpired => "sa_expired",
            Self::Malformed => "malformed",
            Self::DummyPacket => "dummy_packet",
            Self::Unsupported => "unsupported",
        }
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Drop counters by reason, for both directions together.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DropCounters {
    counts: [u64; DropReason::ALL.len()],
}

impl DropCounters {
    #[inline]
    pub(crate) fn add(&mut self, r: DropReason) {
        self.counts[r.index()] += 1;
    }

    /// Drops for one reason.
    pub fn get(&self, r: DropReason) -> u64 {
        self.counts[r.index()]
    }

    /// All drops.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// (reason, count) for every reason.
    pub fn iter(&self) -> impl Iterator<Item = (DropReason, u64)> + '_ {
        DropReason::ALL.iter().map(|&r| (r, self.get(r)))
    }
}

/// A snapshot of the data plane's counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Every SA with its counters.
    pub sas: Vec<SaInfo>,
    /// Drops by reason (including those that happened before an SA was found).
    pub drops: DropCounters,
    /// Packets sent in the clear by a BYPASS policy.
    pub bypassed: u64,
}
