//! DHCP Unique Identifiers (RFC 8415 §11).
//!
//! DUIDs are built by hand here: dhcproto 0.15.0's `Duid::link_layer` writes a
//! 16-byte "address" and so produces a malformed DUID-LL (shared/crates.md §1).
//!
//! The daemon keeps the DUID in its `state_dir` so that a restarted node gets the
//! same lease back; [`Duid::to_state`] / [`duid_from_state`] define that file's
//! content (one line of lowercase hex). The file I/O itself is the daemon's job.

use core::fmt;

/// DUID-LLT type code (RFC 8415 §11.2).
pub const DUID_LLT: u16 = 1;
/// DUID-EN type code (RFC 8415 §11.3).
pub const DUID_EN: u16 = 2;
/// DUID-LL type code (RFC 8415 §11.4).
pub const DUID_LL: u16 = 3;
/// DUID-UUID type code (RFC 8415 §11.5, RFC 6355).
pub const DUID_UUID: u16 = 4;
/// Hardware type Ethernet (IANA ARP hardware types).
pub const HTYPE_ETHERNET: u16 = 1;
/// RFC 8415 §11.1: a DUID is at most 128 octets, not counting the type code.
pub const MAX_DUID_LEN: usize = 130;

/// Why a DUID (or its state-file form) was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DuidError {
    /// The state file is not hex text.
    #[error("DUID state is not hex text")]
    NotHex,
    /// Shorter than the type code plus one octet, or longer than 130 octets.
    #[error("DUID length {0} out of range 3..=130")]
    Length(usize),
    /// A known DUID type whose body has the wrong length.
    #[error("DUID type {ty} with malformed body ({len} octets)")]
    Malformed {
        /// The DUID type code.
        ty: u16,
        /// The total DUID length.
        len: usize,
    },
}

/// A DUID in wire form (type code followed by the type-specific body).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Duid(Vec<u8>);

impl Duid {
    /// DUID-LLT (RFC 8415 §11.2): type 1, hardware type, time (seconds since
    /// 2000-01-01 UTC, mod 2^32), link-layer address.
    pub fn llt(hw_type: u16, time: u32, ll_addr: &[u8]) -> Self {
        let mut v = Vec::with_capacity(8 + ll_addr.len());
        v.extend_from_slice(&DUID_LLT.to_be_bytes());
        v.extend_from_slice(&hw_type.to_be_bytes());
        v.extend_from_slice(&time.to_be_bytes());
        v.extend_from_slice(ll_addr);
        Self(v)
    }

    /// DUID-EN (RFC 8415 §11.3): type 2, IANA enterprise number, identifier.
    pub fn en(enterprise: u32, identifier: &[u8]) -> Self {
        let mut v = Vec::with_capacity(6 + identifier.len());
        v.extend_from_slice(&DUID_EN.to_be_bytes());
        v.extend_from_slice(&enterprise.to_be_bytes());
        v.extend_from_slice(identifier);
        Self(v)
    }

    /// DUID-LL (RFC 8415 §11.4): type 3, hardware type, link-layer address.
    pub fn ll(hw_type: u16, ll_addr: &[u8]) -> Self {
        let mut v = Vec::with_capacity(4 + ll_addr.len());
        v.extend_from_slice(&DUID_LL.to_be_bytes());
        v.extend_from_slice(&hw_type.to_be_bytes());
        v.extend_from_slice(ll_addr);
        Self(v)
    }

    /// DUID-LL for an Ethernet MAC: `00 03 00 01 mac…` (10 octets).
    pub fn from_mac(mac: [u8; 6]) -> Self {
        Self::ll(HTYPE_ETHERNET, &mac)
    }

    /// DUID-UUID (RFC 6355, RFC 8415 §11.5): type 4 followed by the 16-octet UUID.
    pub fn uuid(uuid: [u8; 16]) -> Self {
        let mut v = Vec::with_capacity(18);
        v.extend_from_slice(&DUID_UUID.to_be_bytes());
        v.extend_from_slice(&uuid);
        Self(v)
    }

    /// A random version-4 UUID DUID from 16 random octets (for a first start
    /// with no state file and no stable MAC, e.g. behind a TUN).
    pub fn uuid_from_random(mut random: [u8; 16]) -> Self {
        random[6] = (random[6] & 0x0f) | 0x40; // version 4
        random[8] = (random[8] & 0x3f) | 0x80; // RFC 4122 variant
        Self::uuid(random)
    }

    /// Validates wire bytes as a DUID (length bounds, known types' body lengths).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DuidError> {
        let len = bytes.len();
        if !(3..=MAX_DUID_LEN).contains(&len) {
            return Err(DuidError::Length(len));
        }
        let ty = u16::from_be_bytes([bytes[0], bytes[1]]);
        let ok = match ty {
            DUID_LLT => len > 8,
            DUID_EN => len > 6,
            DUID_LL => len > 4,
            DUID_UUID => len == 18,
            _ => true,
        };
        if !ok {
            return Err(DuidError::Malformed { ty, len });
        }
        Ok(Self(bytes.to_vec()))
    }

    /// The DUID type code.
    pub fn duid_type(&self) -> u16 {
        u16::from_be_bytes([self.0[0], self.0[1]])
    }

    /// The wire bytes (what goes into the Client Identifier option).
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The wire bytes, owned (for [`crate::ClientConfig::duid`]).
    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }

    /// The state-file form: lowercase hex and a trailing newline.
    pub fn to_state(&self) -> Vec<u8> {
        let mut s = hex_lower(&self.0).into_bytes();
        s.push(b'\n');
        s
    }
}

/// Parses the state-file form written by [`Duid::to_state`]. Surrounding
/// whitespace and `:` separators are accepted.
pub fn duid_from_state(state: &[u8]) -> Result<Duid, DuidError> {
    let digits: Vec<u8> = state
        .iter()
        .copied()
        .filter(|c| !c.is_ascii_whitespace() && *c != b':')
        .collect();
    if !digits.len().is_multiple_of(2) {
        return Err(DuidError::NotHex);
    }
    let mut bytes = Vec::with_capacity(digits.len() / 2);
    for pair in digits.chunks_exact(2) {
        let hi = hex_val(pair[0]).ok_or(DuidError::NotHex)?;
        let lo = hex_val(pair[1]).ok_or(DuidError::NotHex)?;
        bytes.push(hi << 4 | lo);
    }
    Duid::from_bytes(&bytes)
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

pub(crate) fn hex_lower(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[usize::from(b >> 4)] as char);
        s.push(HEX[usize::from(b & 0x0f)] as char);
    }
    s
}

impl fmt::Debug for Duid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Duid({})", hex_lower(&self.0))
    }
}

impl fmt::Display for Duid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex_lower(&self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duid_ll_is_ten_octets() {
        let d = Duid::from_mac([0x02, 0, 0, 0, 0, 0x01]);
        assert_eq!(d.as_bytes(), &[0, 3, 0, 1, 2, 0, 0, 0, 0, 1]);
        assert_eq!(d.duid_type(), DUID_LL);
    }

    #[test]
    fn duid_en_uuid_llt_layout() {
        assert_eq!(
            Duid::en(32473, b"mn1").as_bytes(),
            &[0, 2, 0, 0, 0x7e, 0xd9, b'm', b'n', b'1']
        );
        let u = Duid::uuid([7; 16]);
        assert_eq!(u.as_bytes().len(), 18);
        assert_eq!(&u.as_bytes()[..2], &[0, 4]);
        let r = Duid::uuid_from_random([0xff; 16]);
        assert_eq!(r.as_bytes()[2 + 6] >> 4, 4);
        assert_eq!(r.as_bytes()[2 + 8] & 0xc0, 0x80);
        let l = Duid::llt(1, 0x0102_0304, &[1, 2, 3, 4, 5, 6]);
        assert_eq!(&l.as_bytes()[..8], &[0, 1, 0, 1, 1, 2, 3, 4]);
    }

    #[test]
    fn state_round_trip() {
        let d = Duid::from_mac([0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff]);
        let s = d.to_state();
        assert_eq!(s, b"00030001aabbccddeeff\n");
        assert_eq!(duid_from_state(&s).unwrap(), d);
        assert_eq!(
            duid_from_state(b" 00:03:00:01:AA:BB:CC:DD:EE:FF \n").unwrap(),
            d
        );
    }

    #[test]
    fn state_rejects_garbage() {
        assert_eq!(duid_from_state(b"zz"), Err(DuidError::NotHex));
        assert_eq!(duid_from_state(b"000"), Err(DuidError::NotHex));
        assert_eq!(duid_from_state(b""), Err(DuidError::Length(0)));
        assert!(matches!(
            duid_from_state(b"0004aabb"),
            Err(DuidError::Malformed { ty: 4, .. })
        ));
        let long = vec![b'a'; 2 * 131];
        assert_eq!(duid_from_state(&long), Err(DuidError::Length(131)));
    }
}
