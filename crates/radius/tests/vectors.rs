//! Known answers: the RFC 2865 §7 example packets, and Message-Authenticator / Response
//! Authenticator values computed outside this crate (Python's `hmac`/`hashlib`, and the `hmac`
//! and `md-5` crates directly).
//!
//! RFC 2865 §7.1 (User Telnet to Specified Host) is used whole: the Access-Request's hidden
//! User-Password for "arctangent" and the Access-Accept's Response Authenticator both verify
//! with the secret "xyzzy5461". RFC 2865 §7.2 (Framed User Authenticating with CHAP) gives the
//! CHAP known answer: the response is MD5(0x16 ‖ "arctangent" ‖ Request Authenticator) — the RFC
//! does not name flopsy's password, the 7.1 one fits. Its Access-Accept is not used: as printed
//! its Response Authenticator does not verify (one octet of the attribute dump differs from what
//! was hashed).

use hmac::{Hmac, KeyInit, Mac};
use md5::{Digest, Md5};
use radius::crypto::{
    find_message_authenticator, hide_password, message_authenticator, recover_password,
    response_authenticator,
};
use radius::wire::{AttributeRepr, AttributeType, Code, Packet, PacketRepr};
use radius::{SharedSecret, chap_response};

fn h(s: &str) -> Vec<u8> {
    hex::decode(s.split_whitespace().collect::<String>()).unwrap()
}

fn xyzzy() -> SharedSecret {
    SharedSecret::new("xyzzy5461").unwrap()
}

const RFC2865_7_1_REQUEST: &str = "01 00 00 38 0f 40 3f 94 73 97 80 57 bd 83 d5 cb
    98 f4 22 7a 01 06 6e 65 6d 6f 02 12 0d be 70 8d 93 d4 13 ce 31 96 e4 3f 78 2a
    0a ee 04 06 c0 a8 01 10 05 06 00 00 00 03";
const RFC2865_7_1_ACCEPT: &str = "02 00 00 26 86 fe 22 0e 76 24 ba 2a 10 05 f6 bf
    9b 55 e0 b2 06 06 00 00 00 01 0f 06 00 00 00 00 0e 06 c0 a8 01 03";
const RFC2865_7_2_REQUEST: &str = "01 01 00 47 2a ee 86 f0 8d 0d 55 96 9c a5 97 8e
    0d 33 67 a2 01 08 66 6c 6f 70 73 79 03 13 16 e9 75 57 c3 16 18 58 95 f2 93 ff
    63 44 07 72 75 04 06 c0 a8 01 10 05 06 00 00 00 14 06 06 00 00 00 02 07 06 00
    00 00 01";

#[test]
fn rfc2865_7_1_access_request_is_rebuilt_exactly() {
    let wire = h(RFC2865_7_1_REQUEST);
    let p = Packet::new_checked(&wire[..]).unwrap();
    assert_eq!(p.code(), Code::ACCESS_REQUEST);
    assert_eq!(p.identifier(), 0);
    let ra = p.authenticator();
    // The hidden password recovers to "arctangent"…
    let hidden = p.attribute(AttributeType::USER_PASSWORD).unwrap();
    let pw = recover_password(&xyzzy(), &ra, hidden).unwrap();
    assert_eq!(pw.expose(), b"arctangent");
    // …and hiding it again, then emitting, gives the RFC's octets.
    let repr = PacketRepr {
        code: Code::ACCESS_REQUEST,
        identifier: 0,
        authenticator: ra,
        attributes: vec![
            AttributeRepr::new(AttributeType::USER_NAME, b"nemo".to_vec()),
            AttributeRepr::new(
                AttributeType::USER_PASSWORD,
                hide_password(&xyzzy(), &ra, b"arctangent").unwrap(),
            ),
            AttributeRepr::new(AttributeType::NAS_IP_ADDRESS, vec![192, 168, 1, 16]),
            AttributeRepr::new(AttributeType::NAS_PORT, vec![0, 0, 0, 3]),
        ],
    };
    assert_eq!(repr.to_vec().unwrap(), wire);
    assert_eq!(PacketRepr::parse(&p).unwrap(), repr);
}

#[test]
fn rfc2865_7_1_access_accept_authenticator() {
    let request = h(RFC2865_7_1_REQUEST);
    let ra = Packet::new_checked(&request[..]).unwrap().authenticator();
    let accept = h(RFC2865_7_1_ACCEPT);
    let p = Packet::new_checked(&accept[..]).unwrap();
    assert_eq!(p.code(), Code::ACCESS_ACCEPT);
    assert_eq!(
        response_authenticator(&xyzzy(), &ra, &accept),
        p.authenticator()
    );
    assert_eq!(
        p.attribute(AttributeType::SERVICE_TYPE),
        Some(&[0, 0, 0, 1][..])
    );
    assert_eq!(
        p.attribute(AttributeType::LOGIN_IP_HOST),
        Some(&[192, 168, 1, 3][..])
    );
    // Any flipped octet breaks it (the authenticator covers header and attributes).
    for i in 0..accept.len() {
        let mut bad = accept.clone();
        bad[i] ^= 0x01;
        let auth: [u8; 16] = bad[4..20].try_into().unwrap();
        assert_ne!(
            response_authenticator(&xyzzy(), &ra, &bad),
            auth,
            "octet {i}"
        );
    }
    // A different secret or request authenticator too.
    let other = SharedSecret::new("xyzzy5462").unwrap();
    assert_ne!(
        response_authenticator(&other, &ra, &accept),
        p.authenticator()
    );
    assert_ne!(
        response_authenticator(&xyzzy(), &[0; 16], &accept),
        p.authenticator()
    );
}

#[test]
fn rfc2865_7_2_chap_password() {
    let wire = h(RFC2865_7_2_REQUEST);
    let p = Packet::new_checked(&wire[..]).unwrap();
    assert_eq!(p.identifier(), 1);
    assert_eq!(p.attribute(AttributeType::USER_NAME), Some(&b"flopsy"[..]));
    let chap = p.attribute(AttributeType::CHAP_PASSWORD).unwrap();
    assert_eq!(chap.len(), 17);
    assert_eq!(chap[0], 0x16);
    // No CHAP-Challenge: the challenge is the Request Authenticator (RFC 2865 §5.3).
    assert_eq!(p.attribute(AttributeType::CHAP_CHALLENGE), None);
    let challenge = p.authenticator();
    assert_eq!(
        chap_response(0x16, b"arctangent", &challenge),
        chap[1..],
        "MD5(ident ‖ password ‖ challenge)"
    );
    assert_eq!(
        hex::encode(chap_response(0x16, b"arctangent", &challenge)),
        "e97557c316185895f293ff6344077275"
    );
}

#[test]
fn chap_response_independent_md5() {
    let challenge = h("00112233445566778899aabbccddeeff");
    let mut m = Md5::new();
    m.update([7u8]);
    m.update(b"mnpass");
    m.update(&challenge);
    let expected: [u8; 16] = m.finalize().into();
    assert_eq!(chap_response(7, b"mnpass", &challenge), expected);
}

/// An Access-Request (id 0x2a, Request Authenticator 00..0f) with a zeroed Message-Authenticator
/// first, User-Name "mnuser", NAS-Identifier "mip6-ha"; secret "testing123". The HMAC-MD5 was
/// computed with Python's `hmac.new(secret, packet, hashlib.md5)`.
const MA_REQUEST_ZEROED: &str = "012a0037 000102030405060708090a0b0c0d0e0f
    5012 00000000000000000000000000000000 01086d6e75736572 20096d6970362d6861";
const MA_REQUEST_KAT: &str = "ce3fcc62b946df1c7341efd378f84e27";

#[test]
fn message_authenticator_request_kat() {
    let secret = SharedSecret::new("testing123").unwrap();
    let zeroed = h(MA_REQUEST_ZEROED);
    // Built by the codec: the same octets.
    let repr = PacketRepr {
        code: Code::ACCESS_REQUEST,
        identifier: 0x2a,
        authenticator: core::array::from_fn(|i| i as u8),
        attributes: vec![
            AttributeRepr::new(AttributeType::MESSAGE_AUTHENTICATOR, vec![0; 16]),
            AttributeRepr::new(AttributeType::USER_NAME, b"mnuser".to_vec()),
            AttributeRepr::new(AttributeType::NAS_IDENTIFIER, b"mip6-ha".to_vec()),
        ],
    };
    let mut wire = repr.to_vec().unwrap();
    assert_eq!(wire, zeroed);
    let offset = find_message_authenticator(&Packet::new_checked(&wire[..]).unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(offset, 22);
    let mac = message_authenticator(&secret, &wire, offset, None);
    assert_eq!(hex::encode(mac), MA_REQUEST_KAT);
    // Independently, with the hmac crate over the zeroed packet.
    let mut m = <Hmac<Md5> as KeyInit>::new_from_slice(b"testing123").unwrap();
    m.update(&zeroed);
    assert_eq!(m.finalize().into_bytes()[..], mac[..]);
    // Once filled in, the computation still zeroes the field itself.
    wire[offset..offset + 16].copy_from_slice(&mac);
    assert_eq!(message_authenticator(&secret, &wire, offset, None), mac);
}

/// The Access-Accept answering that request (id 0x2a): Message-Authenticator first, then
/// Reply-Message "welcome"; computed in Python: M-A = HMAC-MD5(secret, Code ‖ ID ‖ Length ‖
/// RequestAuth ‖ attributes with M-A zeroed), then Response Authenticator = MD5(Code ‖ ID ‖
/// Length ‖ RequestAuth ‖ attributes ‖ secret).
const ACCEPT_KAT: &str = "022a002f 869719d2d97a90528536d86f3196dacd
    5012 30671d8524a89954427f22837c7c09f1 120977656c636f6d65";

#[test]
fn message_authenticator_and_response_authenticator_of_an_answer() {
    let secret = SharedSecret::new("testing123").unwrap();
    let ra: [u8; 16] = core::array::from_fn(|i| i as u8);
    let accept = h(ACCEPT_KAT);
    let p = Packet::new_checked(&accept[..]).unwrap();
    assert_eq!(
        response_authenticator(&secret, &ra, &accept),
        p.authenticator()
    );
    let offset = find_message_authenticator(&p).unwrap().unwrap();
    assert_eq!(
        message_authenticator(&secret, &accept, offset, Some(&ra))[..],
        accept[offset..offset + 16]
    );
    // Computed over the Response Authenticator instead, it would not match.
    assert_ne!(
        message_authenticator(&secret, &accept, offset, None)[..],
        accept[offset..offset + 16]
    );
}

#[test]
fn duplicate_or_short_message_authenticator_is_malformed() {
    let two = PacketRepr {
        code: Code::ACCESS_ACCEPT,
        identifier: 1,
        authenticator: [0; 16],
        attributes: vec![
            AttributeRepr::new(AttributeType::MESSAGE_AUTHENTICATOR, vec![0; 16]),
            AttributeRepr::new(AttributeType::MESSAGE_AUTHENTICATOR, vec![0; 16]),
        ],
    }
    .to_vec()
    .unwrap();
    assert!(find_message_authenticator(&Packet::new_checked(&two[..]).unwrap()).is_err());
    let short = PacketRepr {
        code: Code::ACCESS_ACCEPT,
        identifier: 1,
        authenticator: [0; 16],
        attributes: vec![AttributeRepr::new(
            AttributeType::MESSAGE_AUTHENTICATOR,
            vec![0; 15],
        )],
    }
    .to_vec()
    .unwrap();
    assert!(find_message_authenticator(&Packet::new_checked(&short[..]).unwrap()).is_err());
    let none = PacketRepr {
        code: Code::ACCESS_ACCEPT,
        identifier: 1,
        authenticator: [0; 16],
        attributes: vec![],
    }
    .to_vec()
    .unwrap();
    assert_eq!(
        find_message_authenticator(&Packet::new_checked(&none[..]).unwrap()),
        Ok(None)
    );
}
