//! The shared-secret cryptography of RADIUS:
//!
//! - CHAP response, RFC 1994 §4.1 as carried by RFC 2865 §5.3 (CHAP-Password) and §5.40
//!   (CHAP-Challenge): `MD5(ident ‖ password ‖ challenge)`.
//! - User-Password hiding, RFC 2865 §5.2: `c(1) = p(1) ⊕ MD5(S ‖ RA)`,
//!   `c(i) = p(i) ⊕ MD5(S ‖ c(i−1))` over the password padded with NULs to a multiple of 16.
//! - Response Authenticator, RFC 2865 §3:
//!   `MD5(Code ‖ ID ‖ Length ‖ RequestAuth ‖ Attributes ‖ Secret)`.
//! - Message-Authenticator, RFC 2869 §5.14 and RFC 3579 §3.2: HMAC-MD5 keyed with the secret over
//!   the whole packet with the attribute's value zeroed; in an Access-Request the Authenticator
//!   field holds the Request Authenticator, in an Access-Accept/Reject/Challenge the Request
//!   Authenticator of the request it answers replaces the Response Authenticator.
//!
//! Secrets and passwords live in [`SharedSecret`] and [`Password`]: zeroized on drop, never
//! printed by `Debug`. Comparisons of authenticators take constant time.

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use md5::{Digest, Md5};
use zeroize::Zeroizing;

use crate::wire::{AUTHENTICATOR_LEN, AttributeType, HEADER_LEN, Packet, WireError};

/// Longest User-Password before hiding (RFC 2865 §5.2: "between 16 and 128, inclusive").
pub const MAX_PAP_PASSWORD_LEN: usize = 128;
/// Length of a CHAP response (an MD5 digest).
pub const CHAP_RESPONSE_LEN: usize = 16;

/// The RADIUS shared secret between this client and its servers. Zeroized on drop; `Debug`
/// prints only its length.
#[derive(Clone)]
pub struct SharedSecret(Zeroizing<Vec<u8>>);

impl SharedSecret {
    /// A secret; `None` if it is empty (an empty secret leaves every authenticator unkeyed and
    /// FreeRADIUS refuses one).
    pub fn new(secret: impl Into<Vec<u8>>) -> Option<Self> {
        let secret = Zeroizing::new(secret.into());
        (!secret.is_empty()).then_some(Self(secret))
    }

    /// Length in octets.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Always `false`: an empty secret cannot be built.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SharedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SharedSecret(<{} octets>)", self.0.len())
    }
}

/// A user's password (for CHAP computed here, or PAP). Zeroized on drop; `Debug` prints only
/// `<redacted>`.
#[derive(Clone)]
pub struct Password(Zeroizing<Vec<u8>>);

impl Password {
    /// A password.
    pub fn new(password: impl Into<Vec<u8>>) -> Self {
        Self(Zeroizing::new(password.into()))
    }

    /// The password octets.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// The CHAP response `MD5(ident ‖ password ‖ challenge)` (RFC 1994 §4.1; RFC 2865 §5.3 carries
/// `ident ‖ response` in CHAP-Password).
pub fn chap_response(ident: u8, password: &[u8], challenge: &[u8]) -> [u8; CHAP_RESPONSE_LEN] {
    let mut h = Md5::new();
    h.update([ident]);
    h.update(password);
    h.update(challenge);
    h.finalize().into()
}

fn md5_secret_then(secret: &SharedSecret, block: &[u8]) -> [u8; 16] {
    let mut h = Md5::new();
    h.update(secret.expose());
    h.update(block);
    h.finalize().into()
}

/// Hides a User-Password (RFC 2865 §5.2) for the Access-Request with Request Authenticator
/// `request_authenticator`. The result is 16–128 octets, a multiple of 16. A password of more
/// than 128 octets is refused; an empty one hides as 16 NULs.
pub fn hide_password(
    secret: &SharedSecret,
    request_authenticator: &[u8; AUTHENTICATOR_LEN],
    password: &[u8],
) -> Result<Vec<u8>, WireError> {
    if password.len() > MAX_PAP_PASSWORD_LEN {
        return Err(WireError::PasswordLength(password.len()));
    }
    let padded_len = password.len().div_ceil(16).max(1) * 16;
    let mut out = Vec::with_capacity(padded_len);
    let mut previous: [u8; 16] = *request_authenticator;
    for i in (0..padded_len).step_by(16) {
        let b = md5_secret_then(secret, &previous);
        for (j, bj) in b.iter().enumerate() {
            // p(i) is the password padded with NULs.
            let p = password.get(i + j).copied().unwrap_or(0);
            previous[j] = p ^ bj;
        }
        out.extend_from_slice(&previous);
    }
    Ok(out)
}

/// Recovers a hidden User-Password (the server's side of RFC 2865 §5.2), without the NUL
/// padding. For tests and tools: the client never needs it.
pub fn recover_password(
    secret: &SharedSecret,
    request_authenticator: &[u8; AUTHENTICATOR_LEN],
    hidden: &[u8],
) -> Result<Password, WireError> {
    if hidden.is_empty() || !hidden.len().is_multiple_of(16) || hidden.len() > MAX_PAP_PASSWORD_LEN
    {
        return Err(WireError::PasswordLength(hidden.len()));
    }
    let mut out = Zeroizing::new(Vec::with_capacity(hidden.len()));
    let mut previous: &[u8] = request_authenticator;
    for chunk in hidden.chunks(16) {
        let b = md5_secret_then(secret, previous);
        out.extend(chunk.iter().zip(b).map(|(c, b)| c ^ b));
        previous = chunk;
    }
    while out.last() == Some(&0) {
        out.pop();
    }
    Ok(Password(out))
}

/// The packet up to its Length field (padding cut off); shorter data as it is.
fn up_to_length(data: &[u8]) -> &[u8] {
    if data.len() < HEADER_LEN {
        return data;
    }
    let len = usize::from(u16::from_be_bytes([data[2], data[3]]));
    &data[..len.min(data.len())]
}

/// Constant-time equality of two byte strings of equal length (false if lengths differ).
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The Response Authenticator a server computes for `response` (RFC 2865 §3):
/// `MD5(Code ‖ ID ‖ Length ‖ RequestAuth ‖ Attributes ‖ Secret)`, over the packet up to Length.
pub fn response_authenticator(
    secret: &SharedSecret,
    request_authenticator: &[u8; AUTHENTICATOR_LEN],
    response: &[u8],
) -> [u8; AUTHENTICATOR_LEN] {
    let bytes = up_to_length(response);
    let mut h = Md5::new();
    h.update(&bytes[..4.min(bytes.len())]);
    h.update(request_authenticator);
    h.update(bytes.get(HEADER_LEN..).unwrap_or_default());
    h.update(secret.expose());
    h.finalize().into()
}

/// Where the single Message-Authenticator of a checked packet is: `Ok(None)` if absent,
/// the offset of its value if present, an error if it is repeated or not 16 octets long
/// (RFC 3579 §3.2: at most one, Length 18).
pub fn find_message_authenticator<T: AsRef<[u8]>>(
    packet: &Packet<T>,
) -> Result<Option<usize>, WireError> {
    let mut found = None;
    for a in packet.attributes() {
        if a.typ == AttributeType::MESSAGE_AUTHENTICATOR {
            if found.is_some() || a.value.len() != AUTHENTICATOR_LEN {
                return Err(WireError::MessageAuthenticator);
            }
            found = Some(a.offset + 2);
        }
    }
    Ok(found)
}

/// HMAC-MD5 over the packet `data` (up to its Length) with the 16 octets at `value_offset` taken
/// as zero and, if given, `authenticator` in place of the Authenticator field (RFC 3579 §3.2:
/// the Request Authenticator, for responses).
pub fn message_authenticator(
    secret: &SharedSecret,
    data: &[u8],
    value_offset: usize,
    authenticator: Option<&[u8; AUTHENTICATOR_LEN]>,
) -> [u8; AUTHENTICATOR_LEN] {
    let bytes = up_to_length(data);
    let mut mac = <Hmac<Md5> as KeyInit>::new_from_slice(secret.expose())
        .expect("HMAC takes keys of any length");
    let end = (value_offset + AUTHENTICATOR_LEN).min(bytes.len());
    let value_offset = value_offset.min(end);
    match authenticator {
        Some(a) if value_offset >= HEADER_LEN => {
            mac.update(&bytes[..4]);
            mac.update(a);
            mac.update(&bytes[HEADER_LEN..value_offset]);
        }
        _ => mac.update(&bytes[..value_offset]),
    }
    mac.update(&[0; AUTHENTICATOR_LEN][..end - value_offset]);
    mac.update(&bytes[end..]);
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> SharedSecret {
        SharedSecret::new("xyzzy5461").unwrap()
    }

    #[test]
    fn empty_secret_is_refused() {
        assert!(SharedSecret::new("").is_none());
        assert!(!secret().is_empty());
        assert_eq!(secret().len(), 9);
    }

    #[test]
    fn debug_never_prints_secrets() {
        assert_eq!(format!("{:?}", secret()), "SharedSecret(<9 octets>)");
        let p = Password::new("arctangent");
        assert!(!format!("{p:?}").contains("arctangent"));
    }

    #[test]
    fn pap_round_trip_at_every_block_boundary() {
        let ra = [0x5a; 16];
        for len in [0usize, 1, 15, 16, 17, 31, 32, 33, 100, 127, 128] {
            let pw: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            let hidden = hide_password(&secret(), &ra, &pw).unwrap();
            assert_eq!(hidden.len(), len.div_ceil(16).max(1) * 16, "{len}");
            if len > 0 {
                assert_ne!(&hidden[..len.min(16)], &pw[..len.min(16)]);
            }
            let back = recover_password(&secret(), &ra, &hidden).unwrap();
            assert_eq!(back.expose(), &pw[..], "{len}");
        }
        assert_eq!(
            hide_password(&secret(), &ra, &[b'x'; 129]).unwrap_err(),
            WireError::PasswordLength(129)
        );
        assert!(recover_password(&secret(), &ra, &[0; 17]).is_err());
        assert!(recover_password(&secret(), &ra, &[]).is_err());
    }

    #[test]
    fn pap_chains_blocks_on_ciphertext() {
        // The second block depends on the first ciphertext block, not on the authenticator:
        // changing the password's first block changes both.
        let ra = [1; 16];
        let a = hide_password(&secret(), &ra, &[b'a'; 32]).unwrap();
        let b = hide_password(&secret(), &ra, &[[b'b'; 16], [b'a'; 16]].concat()).unwrap();
        assert_ne!(a[16..], b[16..]);
        // Block 2 = p2 ⊕ MD5(S ‖ c1).
        let mut h = Md5::new();
        h.update(b"xyzzy5461");
        h.update(&a[..16]);
        let k: [u8; 16] = h.finalize().into();
        let p2: Vec<u8> = a[16..].iter().zip(k).map(|(c, k)| c ^ k).collect();
        assert_eq!(p2, [b'a'; 16]);
    }

    #[test]
    fn ct_eq_basics() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
    }
}
