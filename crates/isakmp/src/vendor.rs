//! Well-known Vendor ID payload contents (RFC 2408 §3.16).
//!
//! Most are MD5 hashes of a string: RFC 3947 §3.1 (NAT-T, MD5("RFC 3947")),
//! RFC 3706 §6 (DPD, with a 2-byte version suffix), the XAUTH draft (first
//! 8 bytes of MD5("draft-ietf-ipsra-isakmp-xauth-06.txt")), Cisco Unity
//! (MD5("CISCO-UNITY") with the last two bytes replaced by version 1.0) and
//! IKE fragmentation (MD5("FRAGMENTATION"); strongSwan and Cisco append a
//! 4-byte capability word such as `80000000`, so match it by prefix).

/// NAT-T, RFC 3947.
pub const NAT_T_RFC3947: [u8; 16] = hex16(*b"4a131c81070358455c5728f20e95452f");
/// NAT-T, draft-ietf-ipsec-nat-t-ike-02 (MD5 of the name).
pub const NAT_T_DRAFT_02: [u8; 16] = hex16(*b"cd60464335df21f87cfdb2fc68b6a448");
/// NAT-T, draft-ietf-ipsec-nat-t-ike-02 with a trailing newline in the hashed
/// name (`draft-ietf-ipsec-nat-t-ike-02\n`), as most implementations send it.
pub const NAT_T_DRAFT_02N: [u8; 16] = hex16(*b"90cb80913ebb696e086381b5ec427b1f");
/// XAUTH (draft-ietf-ipsra-isakmp-xauth-06), 8 bytes.
pub const XAUTH: [u8; 8] = [0x09, 0x00, 0x26, 0x89, 0xdf, 0xd6, 0xb7, 0x12];
/// Dead Peer Detection, RFC 3706 version 1.0.
pub const DPD: [u8; 16] = hex16(*b"afcad71368a1f1c96b8696fc77570100");
/// IKE fragmentation; a prefix ([`is_fragmentation`]).
pub const FRAGMENTATION: [u8; 16] = hex16(*b"4048b7d56ebce88525e7de7f00d6c2d3");
/// Cisco Unity 1.0.
pub const UNITY: [u8; 16] = hex16(*b"12f5f28c457168a9702d9fe274cc0100");

/// True if `vid` is the IKE fragmentation vendor ID, with or without the
/// capability suffix.
pub fn is_fragmentation(vid: &[u8]) -> bool {
    vid.starts_with(&FRAGMENTATION)
}

/// A short name for a known vendor ID, for logs.
pub fn name(vid: &[u8]) -> Option<&'static str> {
    Some(match vid {
        v if v == NAT_T_RFC3947 => "NAT-T (RFC 3947)",
        v if v == NAT_T_DRAFT_02 => "NAT-T draft-02",
        v if v == NAT_T_DRAFT_02N => "NAT-T draft-02\\n",
        v if v == XAUTH => "XAUTH",
        v if v == DPD => "DPD",
        v if v == UNITY => "Cisco Unity",
        v if is_fragmentation(v) => "FRAGMENTATION",
        _ => return None,
    })
}

/// Decodes 32 lowercase hex digits at compile time.
const fn hex16(s: [u8; 32]) -> [u8; 16] {
    const fn nibble(c: u8) -> u8 {
        match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => panic!("not a lowercase hex digit"),
        }
    }
    let mut out = [0u8; 16];
    let mut i = 0;
    while i < 16 {
        out[i] = (nibble(s[2 * i]) << 4) | nibble(s[2 * i + 1]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vids() {
        assert_eq!(NAT_T_RFC3947[..4], [0x4a, 0x13, 0x1c, 0x81]);
        assert_eq!(UNITY[14..], [0x01, 0x00]);
        assert_eq!(name(&DPD), Some("DPD"));
        assert_eq!(name(&XAUTH), Some("XAUTH"));
        let mut frag = FRAGMENTATION.to_vec();
        frag.extend_from_slice(&[0x80, 0, 0, 0]);
        assert!(is_fragmentation(&frag));
        assert_eq!(name(&frag), Some("FRAGMENTATION"));
        assert!(!is_fragmentation(&FRAGMENTATION[..15]));
        assert_eq!(name(b"nope"), None);
    }
}
