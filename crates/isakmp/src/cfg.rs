//! Mode Config and XAUTH attribute types (draft-ietf-ipsec-isakmp-mode-cfg-05
//! §3.3, draft-ietf-ipsec-isakmp-xauth-06 §6.2) and helpers for the IPv6
//! address attribute.
//!
//! The codec keeps every attribute value raw ([`crate::AttrValue`]). Mode
//! Config address attributes are TLV; a CFG_REQUEST carries them with a zero
//! length. INTERNAL_IP6_ADDRESS is 16 bytes in IKEv1, but strongSwan before
//! 5.4 sent 17 (address + prefix length, the IKEv2 format): send 16 with
//! [`ip6_value`], accept both with [`ip6_address`].

use std::net::Ipv6Addr;

/// INTERNAL_IP4_ADDRESS (0/4 bytes).
pub const INTERNAL_IP4_ADDRESS: u16 = 1;
/// INTERNAL_IP4_NETMASK (0/4 bytes).
pub const INTERNAL_IP4_NETMASK: u16 = 2;
/// INTERNAL_IP4_DNS (0/4 bytes).
pub const INTERNAL_IP4_DNS: u16 = 3;
/// INTERNAL_IP4_NBNS (0/4 bytes).
pub const INTERNAL_IP4_NBNS: u16 = 4;
/// INTERNAL_ADDRESS_EXPIRY (0/4 bytes, seconds).
pub const INTERNAL_ADDRESS_EXPIRY: u16 = 5;
/// INTERNAL_IP4_DHCP (0/4 bytes).
pub const INTERNAL_IP4_DHCP: u16 = 6;
/// APPLICATION_VERSION (string).
pub const APPLICATION_VERSION: u16 = 7;
/// INTERNAL_IP6_ADDRESS (0/16 bytes; 17 from old strongSwan).
pub const INTERNAL_IP6_ADDRESS: u16 = 8;
/// INTERNAL_IP6_NETMASK (0/16 bytes).
pub const INTERNAL_IP6_NETMASK: u16 = 9;
/// INTERNAL_IP6_DNS (0/16 bytes).
pub const INTERNAL_IP6_DNS: u16 = 10;
/// INTERNAL_IP6_NBNS (0/16 bytes).
pub const INTERNAL_IP6_NBNS: u16 = 11;
/// INTERNAL_IP6_DHCP (0/16 bytes).
pub const INTERNAL_IP6_DHCP: u16 = 12;
/// INTERNAL_IP4_SUBNET (0/8 bytes: address + mask).
pub const INTERNAL_IP4_SUBNET: u16 = 13;
/// SUPPORTED_ATTRIBUTES (n × 2 bytes).
pub const SUPPORTED_ATTRIBUTES: u16 = 14;
/// INTERNAL_IP6_SUBNET (0/17 bytes: address + prefix length).
pub const INTERNAL_IP6_SUBNET: u16 = 15;

/// XAUTH-TYPE (B; racoon rejects the TLV form).
pub const XAUTH_TYPE: u16 = 16520;
/// XAUTH-USER-NAME.
pub const XAUTH_USER_NAME: u16 = 16521;
/// XAUTH-USER-PASSWORD.
pub const XAUTH_USER_PASSWORD: u16 = 16522;
/// XAUTH-PASSCODE.
pub const XAUTH_PASSCODE: u16 = 16523;
/// XAUTH-MESSAGE.
pub const XAUTH_MESSAGE: u16 = 16524;
/// XAUTH-CHALLENGE.
pub const XAUTH_CHALLENGE: u16 = 16525;
/// XAUTH-DOMAIN.
pub const XAUTH_DOMAIN: u16 = 16526;
/// XAUTH-STATUS (B).
pub const XAUTH_STATUS: u16 = 16527;
/// XAUTH-NEXT-PIN.
pub const XAUTH_NEXT_PIN: u16 = 16528;
/// XAUTH-ANSWER.
pub const XAUTH_ANSWER: u16 = 16529;

/// Values of [`XAUTH_TYPE`] (xauth-06 §6.2).
pub mod xauth_type {
    /// Generic (user name + password).
    pub const GENERIC: u16 = 0;
    /// RADIUS-CHAP.
    pub const RADIUS_CHAP: u16 = 1;
    /// One-time password.
    pub const OTP: u16 = 2;
    /// S/KEY.
    pub const SKEY: u16 = 3;
}

/// Values of [`XAUTH_STATUS`] (xauth-06 §6.2).
pub mod xauth_status {
    /// Authentication failed.
    pub const FAIL: u16 = 0;
    /// Authentication succeeded.
    pub const OK: u16 = 1;
}

/// Decodes an INTERNAL_IP6_ADDRESS (or similar) value.
///
/// Accepts 16 bytes (the IKEv1 mode-cfg-05 format; prefix `None`) or 17
/// bytes (the address followed by a prefix-length byte, as sent by
/// strongSwan before 5.4; returned unvalidated). Any other length, including
/// the empty value of a request, gives `None`.
pub fn ip6_address(value: &[u8]) -> Option<(Ipv6Addr, Option<u8>)> {
    let (addr, prefix) = match value.len() {
        16 => (value, None),
        17 => (&value[..16], Some(value[16])),
        _ => return None,
    };
    let octets: [u8; 16] = addr.try_into().ok()?;
    Some((Ipv6Addr::from(octets), prefix))
}

/// Encodes an INTERNAL_IP6_ADDRESS value: the 16 address bytes, no prefix.
pub fn ip6_value(addr: Ipv6Addr) -> Vec<u8> {
    addr.octets().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip6_address_forms() {
        let a: Ipv6Addr = "2001:db8:1::1001".parse().unwrap();
        let v = ip6_value(a);
        assert_eq!(v.len(), 16);
        assert_eq!(ip6_address(&v), Some((a, None)));
        let mut v17 = v.clone();
        v17.push(64);
        assert_eq!(ip6_address(&v17), Some((a, Some(64))));
        assert_eq!(ip6_address(&[]), None);
        assert_eq!(ip6_address(&v[..15]), None);
        assert_eq!(ip6_address(&[0; 18]), None);
    }
}
