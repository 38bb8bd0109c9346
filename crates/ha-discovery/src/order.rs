//! The sans-IO half: ordering SRV records (RFC 2782, "Usage rules") and expanding their targets
//! into [`Candidate`] addresses. No I/O, no clock, randomness passed in.

use std::net::Ipv6Addr;

use tracing::debug;

/// Source of randomness for the weighted selection. Any `FnMut(&mut [u8])` that fills its
/// buffer is one (the same shape as `dhcp6_client::RandomSource`).
pub trait RandomSource {
    /// Fills `buf` with random bytes.
    fn fill(&mut self, buf: &mut [u8]);
}

impl<F: FnMut(&mut [u8])> RandomSource for F {
    fn fill(&mut self, buf: &mut [u8]) {
        self(buf)
    }
}

/// One SRV record (RFC 2782), target in presentation form (`ha1.example.`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrvRecord {
    /// Lower is tried first.
    pub priority: u16,
    /// Relative weight among records of the same priority; 0 = chosen only when nothing else
    /// of that priority is left, or with a very small chance (RFC 2782).
    pub weight: u16,
    /// Port (Mobile IPv6 has no use for it: Binding Updates are IPv6 extension headers).
    pub port: u16,
    /// The target host name; `.` means "decidedly not available".
    pub target: String,
}

/// A home agent address to try, in the order [`order_srv`] / [`expand`] give.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The home agent's address (an AAAA record of `target`).
    pub addr: Ipv6Addr,
    /// The name the address came from: the SRV target, the name itself for the AAAA
    /// fallback, or the literal for an address given directly.
    pub target: String,
    /// SRV priority (0 for the AAAA fallback and a literal address).
    pub priority: u16,
    /// SRV weight (0 for the AAAA fallback and a literal address).
    pub weight: u16,
}

/// The SRV answer says the service is not offered: every record has the target `.`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the SRV target is \".\": the service is decidedly not available")]
pub struct NotAvailable;

/// Whether an SRV target is the root name (`.`), RFC 2782's "service not available".
pub fn is_root(target: &str) -> bool {
    target == "." || target.is_empty()
}

/// A uniform integer in `0..=max` from 64 random bits (the modulo bias is below 2^-32 for
/// any sum of 16-bit weights a DNS message can carry).
fn uniform_inclusive(rng: &mut dyn RandomSource, max: u64) -> u64 {
    let mut b = [0u8; 8];
    rng.fill(&mut b);
    let r = u64::from_be_bytes(b);
    match max.checked_add(1) {
        Some(n) => r % n,
        None => r,
    }
}

/// Orders SRV records for use (RFC 2782, "Usage rules"):
///
/// * records with the target `.` are dropped; if nothing else is left the service is
///   decidedly not available ([`NotAvailable`]). RFC 2782 gives that meaning to a lone `.`
///   record; a `.` next to real targets names no host and is skipped;
/// * lowest priority first;
/// * within one priority, the weighted random selection: the records not yet ordered, those
///   of weight 0 first (otherwise in the order received), each with the running sum of the
///   weights; a uniform random number in `0..=sum`; the first record whose running sum is
///   greater than or equal to it is next. Repeat until none is left. A weight-0 record is
///   thus picked with probability 1/(sum+1) while heavier ones remain, and all-zero weights
///   keep the order received.
///
/// An empty input gives an empty output.
pub fn order_srv(
    records: &[SrvRecord],
    rng: &mut dyn RandomSource,
) -> Result<Vec<SrvRecord>, NotAvailable> {
    let usable: Vec<&SrvRecord> = records.iter().filter(|r| !is_root(&r.target)).collect();
    if usable.is_empty() && !records.is_empty() {
        return Err(NotAvailable);
    }
    let mut priorities: Vec<u16> = usable.iter().map(|r| r.priority).collect();
    priorities.sort_unstable();
    priorities.dedup();
    let mut out = Vec::with_capacity(usable.len());
    for p in priorities {
        // Weight 0 first, then the rest, each group in the order received.
        let mut left: Vec<&SrvRecord> = usable
            .iter()
            .filter(|r| r.priority == p && r.weight == 0)
            .chain(usable.iter().filter(|r| r.priority == p && r.weight != 0))
            .copied()
            .collect();
        while !left.is_empty() {
            let sum: u64 = left.iter().map(|r| u64::from(r.weight)).sum();
            let pick = uniform_inclusive(rng, sum);
            let mut running = 0u64;
            let i = left
                .iter()
                .position(|r| {
                    running += u64::from(r.weight);
                    running >= pick
                })
                .unwrap_or(left.len() - 1);
            out.push(left.remove(i).clone());
        }
    }
    Ok(out)
}

/// Expands ordered SRV records into candidates: the addresses of each target in turn (as
/// `addresses` returns them for that target), each address once, keeping the first
/// occurrence. Targets without addresses are skipped (logged at `debug`).
pub fn expand<'a>(
    ordered: &[SrvRecord],
    mut addresses: impl FnMut(&str) -> &'a [Ipv6Addr],
) -> Vec<Candidate> {
    let mut out: Vec<Candidate> = Vec::new();
    for r in ordered {
        let addrs = addresses(&r.target);
        if addrs.is_empty() {
            debug!(target = %r.target, "SRV target without an AAAA address skipped");
        }
        for &addr in addrs {
            if out.iter().any(|c| c.addr == addr) {
                continue;
            }
            out.push(Candidate {
                addr,
                target: r.target.clone(),
                priority: r.priority,
                weight: r.weight,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn srv(priority: u16, weight: u16, target: &str) -> SrvRecord {
        SrvRecord {
            priority,
            weight,
            port: 0,
            target: target.to_owned(),
        }
    }

    /// xorshift64, seeded: a deterministic random source.
    fn seeded(seed: u64) -> impl FnMut(&mut [u8]) {
        let mut s = seed | 1;
        move |buf: &mut [u8]| {
            for b in buf {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                *b = (s >> 24) as u8;
            }
        }
    }

    /// A source that yields the given u64 values in turn (big-endian, as `uniform_inclusive`
    /// reads them).
    fn script(values: Vec<u64>) -> impl FnMut(&mut [u8]) {
        let mut it = values.into_iter();
        move |buf: &mut [u8]| {
            let v = it.next().expect("script ran out");
            buf.copy_from_slice(&v.to_be_bytes()[..buf.len()]);
        }
    }

    fn targets(v: &[SrvRecord]) -> Vec<&str> {
        v.iter().map(|r| r.target.as_str()).collect()
    }

    #[test]
    fn lowest_priority_first_whatever_the_weights() {
        let recs = [
            srv(20, 65535, "c."),
            srv(10, 0, "a."),
            srv(30, 1, "d."),
            srv(10, 0, "b."),
        ];
        for seed in 1..50 {
            let out = order_srv(&recs, &mut seeded(seed)).unwrap();
            let p: Vec<u16> = out.iter().map(|r| r.priority).collect();
            assert_eq!(p, [10, 10, 20, 30]);
            // All-zero weights in one priority: the order received (pick is always 0).
            assert_eq!(targets(&out), ["a.", "b.", "c.", "d."]);
        }
    }

    #[test]
    fn running_sum_selection_follows_rfc_2782() {
        // Weights 0, 10, 30 (weight 0 moved to the front): running sums 0, 10, 40.
        let recs = [srv(1, 10, "w10."), srv(1, 30, "w30."), srv(1, 0, "w0.")];
        // pick 0 → w0 (running 0 >= 0); then sums 10, 40: pick 11 → w30; then w10.
        let out = order_srv(&recs, &mut script(vec![0, 11, 5])).unwrap();
        assert_eq!(targets(&out), ["w0.", "w30.", "w10."]);
        // pick 1 → w10 (0 < 1 <= 10); then sums 0, 30: pick 0 → w0; then w30.
        let out = order_srv(&recs, &mut script(vec![1, 0, 0])).unwrap();
        assert_eq!(targets(&out), ["w10.", "w0.", "w30."]);
        // pick 40 (the inclusive top) → w30.
        let out = order_srv(&recs, &mut script(vec![40, 10, 0])).unwrap();
        assert_eq!(targets(&out), ["w30.", "w10.", "w0."]);
        // Values reduce modulo sum+1: 41 → 0.
        let out = order_srv(&recs, &mut script(vec![41, 0, 0])).unwrap();
        assert_eq!(out[0].target, "w0.");
    }

    #[test]
    fn weights_set_the_odds_and_weight_zero_is_rare() {
        let recs = [srv(5, 0, "zero."), srv(5, 1, "one."), srv(5, 3, "three.")];
        let mut rng = seeded(0x5eed);
        let (mut zero, mut one, mut three) = (0u32, 0u32, 0u32);
        let n = 40_000;
        for _ in 0..n {
            match order_srv(&recs, &mut rng).unwrap()[0].target.as_str() {
                "zero." => zero += 1,
                "one." => one += 1,
                _ => three += 1,
            }
        }
        // Running sums 0, 1, 4; pick in 0..=4: 0 → zero, 1 → one, 2..=4 → three.
        let f = |c: u32| f64::from(c) / f64::from(n);
        assert!((f(zero) - 0.2).abs() < 0.015, "zero {}", f(zero));
        assert!((f(one) - 0.2).abs() < 0.015, "one {}", f(one));
        assert!((f(three) - 0.6).abs() < 0.015, "three {}", f(three));
    }

    #[test]
    fn deterministic_for_a_seed() {
        let recs: Vec<SrvRecord> = (0..8)
            .map(|i| srv(i % 2, 10 * i, &format!("h{i}.")))
            .collect();
        let a = order_srv(&recs, &mut seeded(7)).unwrap();
        let b = order_srv(&recs, &mut seeded(7)).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.len(), 8);
        let mut sorted = targets(&a);
        sorted.sort_unstable();
        assert_eq!(
            sorted,
            ["h0.", "h1.", "h2.", "h3.", "h4.", "h5.", "h6.", "h7."]
        );
    }

    #[test]
    fn root_target_means_not_available() {
        assert_eq!(
            order_srv(&[srv(0, 0, ".")], &mut seeded(1)),
            Err(NotAvailable)
        );
        assert_eq!(
            order_srv(&[srv(0, 0, "."), srv(1, 0, ".")], &mut seeded(1)),
            Err(NotAvailable)
        );
        // A "." next to real targets is skipped.
        let out = order_srv(&[srv(0, 0, "."), srv(1, 0, "ha.")], &mut seeded(1)).unwrap();
        assert_eq!(targets(&out), ["ha."]);
        assert_eq!(order_srv(&[], &mut seeded(1)), Ok(vec![]));
    }

    #[test]
    fn expand_keeps_order_and_drops_duplicates() {
        let a1: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let a2: Ipv6Addr = "2001:db8::2".parse().unwrap();
        let b1: Ipv6Addr = "2001:db8::b1".parse().unwrap();
        let ordered = [srv(1, 5, "a."), srv(2, 0, "none."), srv(3, 0, "b.")];
        let table: Vec<(&str, Vec<Ipv6Addr>)> = vec![
            ("a.", vec![a1, a2]),
            ("none.", vec![]),
            ("b.", vec![a2, b1]),
        ];
        let out = expand(&ordered, |t| {
            table
                .iter()
                .find(|(n, _)| *n == t)
                .map(|(_, v)| v.as_slice())
                .unwrap_or(&[])
        });
        let got: Vec<(Ipv6Addr, &str, u16, u16)> = out
            .iter()
            .map(|c| (c.addr, c.target.as_str(), c.priority, c.weight))
            .collect();
        assert_eq!(got, [(a1, "a.", 1, 5), (a2, "a.", 1, 5), (b1, "b.", 3, 0)]);
    }
}
