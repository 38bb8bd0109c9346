//! Binding Update sequence numbers: a free-running 16-bit counter compared modulo 2^16
//! (RFC 6275 §9.5.1).
//!
//! RFC 6275 §9.5.1: "A Sequence Number in a received Binding Update is considered less than or
//! equal to the last received number if its value lies in the range of the last received number
//! and the preceding 32768 values, inclusive." So `a` is greater than `b` exactly when
//! `(a - b) mod 2^16` is in `1..=32767`.

/// `a` is greater than `b` modulo 2^16 (RFC 6275 §9.5.1).
pub fn seq_greater(a: u16, b: u16) -> bool {
    matches!(a.wrapping_sub(b), 1..=0x7fff)
}

/// `a` is less than or equal to `b` modulo 2^16: the negation of [`seq_greater`].
pub fn seq_not_greater(a: u16, b: u16) -> bool {
    !seq_greater(a, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_edges() {
        assert!(seq_greater(1, 0));
        assert!(!seq_greater(0, 0));
        assert!(!seq_greater(0, 1));
        // Wrap-around: 0 follows 65535.
        assert!(seq_greater(0, 65535));
        assert!(seq_greater(5, 65530));
        assert!(!seq_greater(65535, 0));
        // "the last received number and the preceding 32768 values, inclusive" are not greater.
        assert!(!seq_greater(100u16.wrapping_sub(32768), 100));
        assert!(seq_greater(100u16.wrapping_add(32767), 100));
        assert!(!seq_greater(100u16.wrapping_add(32768), 100));
        assert!(seq_not_greater(7, 7));
    }

    proptest::proptest! {
        #[test]
        fn exactly_one_of_three(a: u16, b: u16) {
            // For a != b and distance != 32768, exactly one direction is greater.
            let d = a.wrapping_sub(b);
            if d != 0 && d != 0x8000 {
                proptest::prop_assert!(seq_greater(a, b) ^ seq_greater(b, a));
            } else {
                proptest::prop_assert!(!seq_greater(a, b) && !seq_greater(b, a));
            }
            proptest::prop_assert!(seq_greater(a.wrapping_add(1), a));
        }
    }
}
