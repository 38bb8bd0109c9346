//! TSIG (RFC 8945): signing a request and verifying the response to it.
//!
//! * Request MAC (§4.3.1, §4.3.3): HMAC over the whole unsigned message (original ID, ADCOUNT
//!   without the TSIG record) followed by the TSIG variables: key name and algorithm name in
//!   canonical wire form, class ANY, TTL 0, Time Signed, Fudge, Error, Other Len, Other Data.
//! * Response MAC (§4.3.2, §5.3): HMAC over the request MAC (length-prefixed), then the
//!   response without its TSIG record (ADCOUNT decremented, ID set to the Original ID), then
//!   the TSIG variables.
//! * Client checks (§5.4): a response to a signed request must carry TSIG (else it is treated
//!   as a format error and discarded); the key name and algorithm must be ours; the MAC must
//!   verify (compared in constant time, untruncated: §5.2.2.1 truncation is not accepted); then
//!   Time Signed must be within Fudge of our clock (§5.2.3), except on a BADTIME answer,
//!   which carries the server's time. The exception the RFC makes: errors about the key or the
//!   MAC of the request (BADKEY, BADSIG) are answered unsigned, with an empty MAC (§5.3.2);
//!   they are reported as such ([`Verified::Unsigned`]) and cannot be authenticated.
//!
//! Not implemented: multi-message signing (§5.3.1, zone transfers), truncated MACs, the
//! server side.

use hmac::{EagerHash, Hmac, KeyInit, Mac};

use crate::key::{Algorithm, TsigKey};
use crate::name::Name;
use crate::wire::{self, CLASS_ANY, HEADER_LEN, Rcode, Response, RrType, field};

/// The fudge RFC 8945 §10 recommends: 300 seconds.
pub const DEFAULT_FUDGE: u16 = 300;
/// The largest Time Signed (48 bits).
pub const MAX_TIME: u64 = (1 << 48) - 1;

/// Why a response does not authenticate (RFC 8945 §5.4). The response must not be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TsigError {
    /// No TSIG record although the request was signed (§5.4: a format error).
    #[error("response is not signed (no TSIG record)")]
    Missing,
    /// Signed with another key name.
    #[error("response signed with key {got}, expected {expected}")]
    WrongKey {
        /// The key name in the response.
        got: Name,
        /// Ours.
        expected: Name,
    },
    /// Signed with another algorithm.
    #[error("response signed with algorithm {got}, expected {expected}")]
    WrongAlgorithm {
        /// The algorithm name in the response.
        got: Name,
        /// Ours.
        expected: Algorithm,
    },
    /// A MAC of the wrong length (truncation is not accepted) or empty on an answer that
    /// must be signed.
    #[error("response MAC is {got} octets, expected {expected}")]
    BadMacLength {
        /// Its length.
        got: usize,
        /// The algorithm's.
        expected: usize,
    },
    /// The MAC does not verify.
    #[error("response MAC does not verify")]
    BadMac,
    /// Time Signed is more than Fudge away from our clock (§5.2.3).
    #[error("response signed at {time_signed}, now {now}, fudge {fudge} s")]
    BadTime {
        /// Time Signed.
        time_signed: u64,
        /// Our clock.
        now: u64,
        /// The response's fudge.
        fudge: u16,
    },
    /// The Original ID does not match the request's ID.
    #[error("TSIG original ID {got:#06x}, expected {expected:#06x}")]
    WrongOriginalId {
        /// In the response.
        got: u16,
        /// Ours.
        expected: u16,
    },
}

/// A response that passed [`verify_response`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verified {
    /// Signed with our key; the TSIG Error field (NOERROR, or BADTIME with the server's time).
    Signed {
        /// The TSIG Error field.
        error: Rcode,
    },
    /// An unsigned error answer that RFC 8945 §5.3.2 allows: BADKEY or BADSIG, empty MAC.
    /// Nothing proves it came from the server.
    Unsigned {
        /// BADKEY or BADSIG.
        error: Rcode,
    },
}

fn hmac_parts<D>(key: &[u8], parts: &[&[u8]]) -> Hmac<D>
where
    D: EagerHash,
    Hmac<D>: KeyInit + Mac,
{
    let mut mac = <Hmac<D> as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
    for p in parts {
        mac.update(p);
    }
    mac
}

fn compute(alg: Algorithm, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    match alg {
        Algorithm::HmacSha1 => hmac_parts::<sha1::Sha1>(key, parts)
            .finalize()
            .into_bytes()
            .to_vec(),
        Algorithm::HmacSha224 => hmac_parts::<sha2::Sha224>(key, parts)
            .finalize()
            .into_bytes()
            .to_vec(),
        Algorithm::HmacSha256 => hmac_parts::<sha2::Sha256>(key, parts)
            .finalize()
            .into_bytes()
            .to_vec(),
        Algorithm::HmacSha384 => hmac_parts::<sha2::Sha384>(key, parts)
            .finalize()
            .into_bytes()
            .to_vec(),
        Algorithm::HmacSha512 => hmac_parts::<sha2::Sha512>(key, parts)
            .finalize()
            .into_bytes()
            .to_vec(),
    }
}

/// Constant-time comparison of the MAC (through `Mac::verify_slice`).
fn verify(alg: Algorithm, key: &[u8], parts: &[&[u8]], tag: &[u8]) -> bool {
    match alg {
        Algorithm::HmacSha1 => hmac_parts::<sha1::Sha1>(key, parts)
            .verify_slice(tag)
            .is_ok(),
        Algorithm::HmacSha224 => hmac_parts::<sha2::Sha224>(key, parts)
            .verify_slice(tag)
            .is_ok(),
        Algorithm::HmacSha256 => hmac_parts::<sha2::Sha256>(key, parts)
            .verify_slice(tag)
            .is_ok(),
        Algorithm::HmacSha384 => hmac_parts::<sha2::Sha384>(key, parts)
            .verify_slice(tag)
            .is_ok(),
        Algorithm::HmacSha512 => hmac_parts::<sha2::Sha512>(key, parts)
            .verify_slice(tag)
            .is_ok(),
    }
}

/// The TSIG variables (RFC 8945 §4.3.3), with names in canonical form.
fn variables(
    key_name: &Name,
    algorithm: &Name,
    time_signed: u64,
    fudge: u16,
    error: Rcode,
    other: &[u8],
) -> Vec<u8> {
    let mut v = Vec::with_capacity(64);
    key_name.emit_canonical(&mut v);
    v.extend_from_slice(&CLASS_ANY.to_be_bytes());
    v.extend_from_slice(&0u32.to_be_bytes());
    algorithm.emit_canonical(&mut v);
    v.extend_from_slice(&time_signed.to_be_bytes()[2..]);
    v.extend_from_slice(&fudge.to_be_bytes());
    v.extend_from_slice(&error.0.to_be_bytes());
    v.extend_from_slice(&u16::try_from(other.len()).unwrap_or(u16::MAX).to_be_bytes());
    v.extend_from_slice(other);
    v
}

/// Signs the complete unsigned message `msg` (RFC 8945 §5.1): appends the TSIG record with
/// Time Signed `time_signed` (seconds since the epoch, the caller's clock, masked to 48
/// bits) and `fudge`, increments ADCOUNT, and returns the request MAC, which the response
/// verification needs.
///
/// # Panics
///
/// If `msg` is shorter than a DNS header or its ADCOUNT is 65535 (a caller bug, not input).
pub fn sign_request(msg: &mut Vec<u8>, key: &TsigKey, time_signed: u64, fudge: u16) -> Vec<u8> {
    assert!(msg.len() >= HEADER_LEN, "sign_request needs a DNS message");
    let time_signed = time_signed & MAX_TIME;
    let alg_name = key.algorithm.wire_name();
    let vars = variables(
        &key.name,
        &alg_name,
        time_signed,
        fudge,
        Rcode::NOERROR,
        &[],
    );
    let mac = compute(key.algorithm, key.secret().expose(), &[msg, &vars]);
    let id = [msg[0], msg[1]];
    // The record (§4.2): names uncompressed, in the key's own case.
    key.name.emit(msg);
    msg.extend_from_slice(&RrType::TSIG.0.to_be_bytes());
    msg.extend_from_slice(&CLASS_ANY.to_be_bytes());
    msg.extend_from_slice(&0u32.to_be_bytes());
    let rdlen = alg_name.wire_len() + 6 + 2 + 2 + mac.len() + 2 + 2 + 2;
    msg.extend_from_slice(&(rdlen as u16).to_be_bytes());
    alg_name.emit(msg);
    msg.extend_from_slice(&time_signed.to_be_bytes()[2..]);
    msg.extend_from_slice(&fudge.to_be_bytes());
    msg.extend_from_slice(&(mac.len() as u16).to_be_bytes());
    msg.extend_from_slice(&mac);
    msg.extend_from_slice(&id); // Original ID
    msg.extend_from_slice(&0u16.to_be_bytes()); // Error
    msg.extend_from_slice(&0u16.to_be_bytes()); // Other Len
    let ad = wire::be16(msg, field::ADCOUNT.start).expect("header present");
    let ad = ad.checked_add(1).expect("ADCOUNT below 65535");
    msg[field::ADCOUNT].copy_from_slice(&ad.to_be_bytes());
    mac
}

/// Verifies the response `resp` to a request signed with `key` whose MAC was `request_mac`
/// and whose ID was `request_id` (RFC 8945 §5.4), at our time `now` (seconds since the
/// epoch). See the module doc for the checks and their order.
pub fn verify_response(
    resp: &Response<'_>,
    key: &TsigKey,
    request_id: u16,
    request_mac: &[u8],
    now: u64,
) -> Result<Verified, TsigError> {
    let tsig = resp.tsig.as_ref().ok_or(TsigError::Missing)?;
    if tsig.key_name != key.name {
        return Err(TsigError::WrongKey {
            got: tsig.key_name.clone(),
            expected: key.name.clone(),
        });
    }
    if tsig.original_id != request_id {
        return Err(TsigError::WrongOriginalId {
            got: tsig.original_id,
            expected: request_id,
        });
    }
    // §5.3.2: a key or MAC error on the request is answered unsigned (MAC Size 0).
    if tsig.mac.is_empty() && matches!(tsig.error, Rcode::BADKEY | Rcode::BADSIG) {
        return Ok(Verified::Unsigned { error: tsig.error });
    }
    if tsig.algorithm != key.algorithm.wire_name() {
        return Err(TsigError::WrongAlgorithm {
            got: tsig.algorithm.clone(),
            expected: key.algorithm,
        });
    }
    if tsig.mac.len() != key.algorithm.mac_len() {
        return Err(TsigError::BadMacLength {
            got: tsig.mac.len(),
            expected: key.algorithm.mac_len(),
        });
    }
    // The response as it was before the TSIG record was added: ID = Original ID, ADCOUNT - 1.
    let mut head = [0u8; HEADER_LEN];
    head.copy_from_slice(&resp.bytes[..HEADER_LEN]);
    head[field::ID].copy_from_slice(&tsig.original_id.to_be_bytes());
    let ad = resp.counts[3].saturating_sub(1);
    head[field::ADCOUNT].copy_from_slice(&ad.to_be_bytes());
    let body = &resp.bytes[HEADER_LEN..resp.tsig_offset];
    let vars = variables(
        &tsig.key_name,
        &tsig.algorithm,
        tsig.time_signed,
        tsig.fudge,
        tsig.error,
        tsig.other,
    );
    let mac_len = u16::try_from(request_mac.len())
        .unwrap_or(u16::MAX)
        .to_be_bytes();
    let parts: [&[u8]; 5] = [&mac_len, request_mac, &head, body, &vars];
    if !verify(key.algorithm, key.secret().expose(), &parts, tsig.mac) {
        return Err(TsigError::BadMac);
    }
    // §5.4, §5.2.3: the time check comes after the MAC check. A BADTIME answer carries
    // the server's clock, so its time is not ours to check.
    if tsig.error != Rcode::BADTIME && now.abs_diff(tsig.time_signed) > u64::from(tsig.fudge) {
        return Err(TsigError::BadTime {
            time_signed: tsig.time_signed,
            now,
            fudge: tsig.fudge,
        });
    }
    Ok(Verified::Signed { error: tsig.error })
}

/// Signs a response the way a server does (RFC 8945 §4.3.2), for tests and the fuzz target:
/// appends the TSIG record to the unsigned response `msg`. An empty `request_mac` and
/// `unsigned_error` produce the unsigned BADKEY/BADSIG answer of §5.3.2.
#[doc(hidden)]
pub fn sign_response_for_tests(
    msg: &mut Vec<u8>,
    key: &TsigKey,
    request_mac: &[u8],
    time_signed: u64,
    fudge: u16,
    error: Rcode,
    unsigned_error: bool,
) {
    let alg_name = key.algorithm.wire_name();
    let id = [msg[0], msg[1]];
    let mac = if unsigned_error {
        Vec::new()
    } else {
        let vars = variables(&key.name, &alg_name, time_signed, fudge, error, &[]);
        let mac_len = (request_mac.len() as u16).to_be_bytes();
        compute(
            key.algorithm,
            key.secret().expose(),
            &[&mac_len, request_mac, msg, &vars],
        )
    };
    key.name.emit(msg);
    msg.extend_from_slice(&RrType::TSIG.0.to_be_bytes());
    msg.extend_from_slice(&CLASS_ANY.to_be_bytes());
    msg.extend_from_slice(&0u32.to_be_bytes());
    let rdlen = alg_name.wire_len() + 16 + mac.len();
    msg.extend_from_slice(&(rdlen as u16).to_be_bytes());
    alg_name.emit(msg);
    msg.extend_from_slice(&time_signed.to_be_bytes()[2..]);
    msg.extend_from_slice(&fudge.to_be_bytes());
    msg.extend_from_slice(&(mac.len() as u16).to_be_bytes());
    msg.extend_from_slice(&mac);
    msg.extend_from_slice(&id);
    msg.extend_from_slice(&error.0.to_be_bytes());
    msg.extend_from_slice(&0u16.to_be_bytes());
    let ad = u16::from_be_bytes([msg[10], msg[11]]) + 1;
    msg[10..12].copy_from_slice(&ad.to_be_bytes());
}
