//! The ESP packet format (RFC 4303 §2) and ESP in UDP (RFC 3948 §2).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |               Security Parameters Index (SPI)                 |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                      Sequence Number                          |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                IV (8 octets GCM, 16 octets CBC)               |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+ -+
//! |                    Payload Data (variable)                    |  |
//! +               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+  | encrypted
//! |               |     Padding (0-255 bytes): 1, 2, 3, ...       |  |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+  |
//! |                               |  Pad Length   | Next Header   |  |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+ -+
//! |         Integrity Check Value (12 or 16 octets)               |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! Padding (RFC 4303 §2.4) brings Payload ‖ Padding ‖ Pad Length ‖ Next Header to a multiple
//! of the cipher block (4 octets for GCM); its bytes are 1, 2, 3, … and the receiver checks them.
//! Next Header 59 marks a dummy packet (§2.6), which the receiver discards.
//!
//! On UDP port 4500 (RFC 3948 §2.2–§2.3) a datagram is ESP when its first four octets (the SPI)
//! are not zero, IKE when they are zero (the Non-ESP Marker), and a NAT-keepalive when it is the
//! single octet 0xFF. [`classify_udp_4500`] sorts them.

/// Length of SPI and sequence number.
pub const ESP_HEADER_LEN: usize = 8;

/// Field offsets of the ESP header.
pub(crate) mod field {
    use std::ops::Range;
    pub(crate) const SPI: Range<usize> = 0..4;
    pub(crate) const SEQ: Range<usize> = 4..8;
}

/// The SPI of an ESP packet, if it is long enough to have one.
#[inline]
pub fn spi(packet: &[u8]) -> Option<u32> {
    let b = packet.get(field::SPI)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// The sequence number of an ESP packet, if it is long enough to have one.
#[inline]
pub fn seq(packet: &[u8]) -> Option<u32> {
    let b = packet.get(field::SEQ)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// The number of padding octets for `payload_len` octets of payload (RFC 4303 §2.4).
#[inline]
pub(crate) fn pad_len(payload_len: usize, block: usize) -> usize {
    (block - (payload_len + 2) % block) % block
}

/// Appends padding 1, 2, 3, …, Pad Length and Next Header.
#[inline]
pub(crate) fn push_trailer(buf: &mut Vec<u8>, pad: usize, next_header: u8) {
    const PAD: [u8; 16] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16];
    debug_assert!(pad <= 16);
    buf.extend_from_slice(&PAD[..pad.min(16)]);
    // `pad < 16`, the cast cannot truncate.
    buf.extend_from_slice(&[pad as u8, next_header]);
}

/// Splits a decrypted ESP payload into (payload, next header), checking the padding bytes
/// (RFC 4303 §2.4: "the receiver SHOULD inspect the Padding field"). `None` if the Pad Length
/// runs past the start or the padding is not 1, 2, 3, ….
#[inline]
pub(crate) fn strip_trailer(plain: &[u8]) -> Option<(usize, u8)> {
    let n = plain.len();
    let (&pad_len, &next_header) = (plain.get(n.checked_sub(2)?)?, plain.get(n - 1)?);
    let pad_len = usize::from(pad_len);
    let payload_len = n.checked_sub(2 + pad_len)?;
    let pad = &plain[payload_len..n - 2];
    if pad.iter().zip(1u8..).all(|(&p, i)| p == i) {
        Some((payload_len, next_header))
    } else {
        None
    }
}

/// What arrived on UDP port 4500.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Udp4500<'a> {
    /// ESP, starting at the SPI.
    Esp(&'a [u8]),
    /// IKE, after the 4-octet Non-ESP Marker.
    Ike(&'a [u8]),
    /// A NAT-keepalive (RFC 3948 §2.3).
    Keepalive,
    /// Too short to be any of them.
    Invalid,
}

/// Sorts a UDP port 4500 payload (RFC 3948 §2.2–§2.3).
pub fn classify_udp_4500(payload: &[u8]) -> Udp4500<'_> {
    match payload {
        [0xff] => Udp4500::Keepalive,
        [0, 0, 0, 0, rest @ ..] => Udp4500::Ike(rest),
        p if p.len() >= ESP_HEADER_LEN => Udp4500::Esp(p),
        _ => Udp4500::Invalid,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding() {
        for block in [4, 16] {
            for len in 0..64 {
                let pad = pad_len(len, block);
                assert_eq!((len + pad + 2) % block, 0);
                assert!(pad < block);
                let mut b = vec![0xaa; len];
                push_trailer(&mut b, pad, 41);
                assert_eq!(strip_trailer(&b), Some((len, 41)));
            }
        }
        assert_eq!(strip_trailer(&[]), None);
        assert_eq!(strip_trailer(&[0]), None);
        assert_eq!(strip_trailer(&[0, 4]), Some((0, 4)));
        assert_eq!(strip_trailer(&[1, 1, 4]), Some((0, 4)));
        assert_eq!(strip_trailer(&[2, 1, 4]), None);
        assert_eq!(strip_trailer(&[1, 2, 4]), None);
        assert_eq!(strip_trailer(&[9, 1, 2, 2, 4]), Some((1, 4)));
        assert_eq!(strip_trailer(&[9, 9, 1, 2, 2, 4]), Some((2, 4)));
        assert_eq!(strip_trailer(&[1, 2, 3, 3, 4]), Some((0, 4)));
        assert_eq!(strip_trailer(&[1, 3, 3, 3, 4]), None);
        assert_eq!(strip_trailer(&[0, 2, 3, 3, 4]), None);
    }

    #[test]
    fn udp_4500() {
        assert_eq!(classify_udp_4500(&[0xff]), Udp4500::Keepalive);
        assert_eq!(
            classify_udp_4500(&[0, 0, 0, 0, 1, 2]),
            Udp4500::Ike(&[1, 2])
        );
        let esp = [0, 0, 1, 0, 0, 0, 0, 1];
        assert_eq!(classify_udp_4500(&esp), Udp4500::Esp(&esp));
        assert_eq!(classify_udp_4500(&[1, 2, 3]), Udp4500::Invalid);
        assert_eq!(classify_udp_4500(&[]), Udp4500::Invalid);
        assert_eq!(spi(&esp), Some(256));
        assert_eq!(seq(&esp), Some(1));
        assert_eq!(spi(&esp[..3]), None);
    }
}
