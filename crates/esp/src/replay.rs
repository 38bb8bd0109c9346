//! The receiver's anti-replay window (RFC 4303 §3.4.3), 1024 packets wide.
//!
//! The check is split in two, as RFC 4303 §3.4.3 requires: [`ReplayWindow::check`] runs before
//! the integrity check ("duplicates are rejected ... before the ICV is verified" to save the
//! cost of an ICV computation), and [`ReplayWindow::mark`] runs only after the ICV verified
//! ("the receive window is updated only if the integrity verification succeeds"), so a forged
//! packet cannot move the window.
//!
//! The bitmap is a ring of 64-bit words as in RFC 6479: bit `seq mod 1088` records `seq`, and
//! moving the right edge clears whole words instead of shifting the map. With one spare word
//! every sequence number within [`WINDOW`] of the highest keeps its own bit.
//!
//! Only 32-bit sequence numbers: Extended Sequence Numbers (RFC 4303 §2.2.1) are not
//! negotiated by IKEv1 and not implemented. Sequence number 0 is never sent (RFC 4303 §3.3.3:
//! the first packet has number 1) and is refused.

/// Width of the window: a packet up to `WINDOW - 1` below the highest accepted one is accepted
/// once (RFC 4303 §3.4.3 asks for at least 32, recommends 64; high rates need more).
pub const WINDOW: u64 = 1024;

const WORDS: usize = (WINDOW as usize / 64) + 1;
const BITS: u64 = WORDS as u64 * 64;

/// Why a sequence number is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    /// Already received.
    #[error("duplicate sequence number")]
    Duplicate,
    /// Left of the window.
    #[error("sequence number left of the replay window")]
    TooOld,
    /// Zero is never a valid sequence number.
    #[error("sequence number 0")]
    Zero,
}

/// The anti-replay state of one inbound SA.
#[derive(Clone, Debug)]
pub struct ReplayWindow {
    /// Highest sequence number marked so far; 0 before the first packet.
    top: u64,
    bitmap: [u64; WORDS],
}

impl Default for ReplayWindow {
    fn default() -> Self {
        Self::new()
    }
}

impl ReplayWindow {
    /// A window that has seen nothing.
    pub fn new() -> Self {
        Self {
            top: 0,
            bitmap: [0; WORDS],
        }
    }

    /// The highest sequence number accepted so far (0 if none).
    pub fn highest(&self) -> u32 {
        u32::try_from(self.top).unwrap_or(u32::MAX)
    }

    #[inline]
    fn slot(seq: u64) -> (usize, u64) {
        let bit = seq % BITS;
        // `bit / 64 < WORDS`, so the cast cannot truncate.
        ((bit / 64) as usize, 1u64 << (bit % 64))
    }

    /// Whether `seq` would be accepted. Does not change the window.
    #[inline]
    pub fn check(&self, seq: u32) -> Result<(), ReplayError> {
        let seq = u64::from(seq);
        if seq == 0 {
            return Err(ReplayError::Zero);
        }
        if seq > self.top {
            return Ok(());
        }
        if seq + WINDOW <= self.top {
            return Err(ReplayError::TooOld);
        }
        let (w, b) = Self::slot(seq);
        if self.bitmap[w] & b != 0 {
            Err(ReplayError::Duplicate)
        } else {
            Ok(())
        }
    }

    /// Records `seq` as received. Call only after the packet authenticated and
    /// [`check`](Self::check) accepted it.
    #[inline]
    pub fn mark(&mut self, seq: u32) {
        let seq = u64::from(seq);
        if seq == 0 || seq + WINDOW <= self.top {
            return;
        }
        if seq > self.top {
            // Clear the words between the old and the new right edge (all if far ahead).
            let old_block = self.top / 64;
            let new_block = seq / 64;
            let n = (new_block - old_block).min(WORDS as u64);
            for i in 1..=n {
                let w = ((old_block + i) % WORDS as u64) as usize;
                self.bitmap[w] = 0;
            }
            self.top = seq;
        }
        let (w, b) = Self::slot(seq);
        self.bitmap[w] |= b;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(w: &mut ReplayWindow, seq: u32) -> Result<(), ReplayError> {
        w.check(seq)?;
        w.mark(seq);
        Ok(())
    }

    #[test]
    fn first_packet_and_zero() {
        let mut w = ReplayWindow::new();
        assert_eq!(w.check(0), Err(ReplayError::Zero));
        assert_eq!(accept(&mut w, 1), Ok(()));
        assert_eq!(accept(&mut w, 1), Err(ReplayError::Duplicate));
        assert_eq!(w.highest(), 1);
        // A first packet far from 1 is fine too.
        let mut w = ReplayWindow::new();
        assert_eq!(accept(&mut w, 5000), Ok(()));
        assert_eq!(accept(&mut w, 5000 - 1023), Ok(()));
        assert_eq!(w.check(5000 - 1024), Err(ReplayError::TooOld));
    }

    #[test]
    fn edges() {
        let mut w = ReplayWindow::new();
        for s in 1..=2000 {
            accept(&mut w, s).unwrap();
        }
        assert_eq!(w.check(2000), Err(ReplayError::Duplicate));
        assert_eq!(w.check(977), Err(ReplayError::Duplicate)); // 2000 - 1023, still in the window
        assert_eq!(w.check(976), Err(ReplayError::TooOld)); // 2000 - 1024, just outside
        assert_eq!(w.check(1), Err(ReplayError::TooOld));
        assert_eq!(w.check(2001), Ok(()));
        // Far ahead: the whole map is cleared, nothing old is remembered.
        accept(&mut w, 1_000_000).unwrap();
        assert_eq!(w.highest(), 1_000_000);
        for s in (1_000_000 - 1023)..1_000_000 {
            assert_eq!(w.check(s), Ok(()), "{s}");
        }
        assert_eq!(w.check(1_000_000 - 1024), Err(ReplayError::TooOld));
    }

    #[test]
    fn out_of_order_inside_window() {
        let mut w = ReplayWindow::new();
        accept(&mut w, 100).unwrap();
        accept(&mut w, 98).unwrap();
        assert_eq!(accept(&mut w, 98), Err(ReplayError::Duplicate));
        accept(&mut w, 99).unwrap();
        accept(&mut w, 1100).unwrap(); // 100 is now 1000 below the top: still remembered
        assert_eq!(w.check(100), Err(ReplayError::Duplicate));
        assert_eq!(w.check(101), Ok(()));
        assert_eq!(w.check(99), Err(ReplayError::Duplicate));
        // Moving by exactly one word boundary keeps bits that are still in the window.
        accept(&mut w, 1100 + 64).unwrap();
        assert_eq!(w.check(1100), Err(ReplayError::Duplicate));
        assert_eq!(w.check(1101), Ok(()));
    }

    #[test]
    fn top_of_sequence_space() {
        let mut w = ReplayWindow::new();
        accept(&mut w, u32::MAX).unwrap();
        assert_eq!(w.check(u32::MAX), Err(ReplayError::Duplicate));
        assert_eq!(accept(&mut w, u32::MAX - 1023), Ok(()));
        assert_eq!(w.check(u32::MAX - 1024), Err(ReplayError::TooOld));
        // No wrap: 1 after u32::MAX is far left of the window.
        assert_eq!(w.check(1), Err(ReplayError::TooOld));
    }

    #[test]
    fn mark_without_check_is_harmless() {
        let mut w = ReplayWindow::new();
        w.mark(0);
        assert_eq!(w.highest(), 0);
        w.mark(3000);
        w.mark(1);
        assert_eq!(w.check(1), Err(ReplayError::TooOld));
    }

    /// Against a reference model: a set of received numbers and the highest.
    #[test]
    fn matches_model() {
        use std::collections::HashSet;
        let mut w = ReplayWindow::new();
        let mut seen = HashSet::new();
        let mut top = 0u64;
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Mostly near the top, sometimes jumps.
            let seq = match x % 16 {
                0 => (top + 1 + (x >> 8) % 5000) as u32,
                _ => (top + 40).saturating_sub((x >> 8) % 1200).max(1) as u32,
            };
            let s = u64::from(seq);
            let expected = if s > top {
                Ok(())
            } else if s + WINDOW <= top {
                Err(ReplayError::TooOld)
            } else if seen.contains(&s) {
                Err(ReplayError::Duplicate)
            } else {
                Ok(())
            };
            assert_eq!(w.check(seq), expected, "seq {seq} top {top}");
            if expected.is_ok() {
                w.mark(seq);
                seen.insert(s);
                top = top.max(s);
            }
        }
    }
}
