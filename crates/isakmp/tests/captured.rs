//! Real messages captured from strongSwan 5.9.8 (see testdata/README.md).

use isakmp::{
    AttrValue, Attribute, ExchangeType, Flags, HEADER_LEN, Header, IdPayload, IdType, Message,
    Payload, PayloadType, ProtocolId, SaPayload, WireError, oakley, split_payloads, vendor,
};

const MM1: &[u8] = include_bytes!("../testdata/strongswan-5.9.8-psk/01-mm1.bin");
const MM2: &[u8] = include_bytes!("../testdata/strongswan-5.9.8-psk/02-mm2.bin");
const MM3: &[u8] = include_bytes!("../testdata/strongswan-5.9.8-psk/03-mm3.bin");
const MM4: &[u8] = include_bytes!("../testdata/strongswan-5.9.8-psk/04-mm4.bin");

/// (name, bytes, exchange, message id) of the encrypted messages.
const ENCRYPTED: &[(&str, &[u8], ExchangeType, u32)] = &[
    (
        "mm5",
        include_bytes!("../testdata/strongswan-5.9.8-psk/05-mm5.bin"),
        ExchangeType::MAIN,
        0,
    ),
    (
        "mm6",
        include_bytes!("../testdata/strongswan-5.9.8-psk/06-mm6.bin"),
        ExchangeType::MAIN,
        0,
    ),
    (
        "modecfg-request",
        include_bytes!("../testdata/strongswan-5.9.8-psk/07-modecfg-request.bin"),
        ExchangeType::TRANSACTION,
        0x87fa_553d,
    ),
    (
        "modecfg-reply",
        include_bytes!("../testdata/strongswan-5.9.8-psk/08-modecfg-reply.bin"),
        ExchangeType::TRANSACTION,
        0x87fa_553d,
    ),
    (
        "qm1",
        include_bytes!("../testdata/strongswan-5.9.8-psk/09-qm1.bin"),
        ExchangeType::QUICK,
        0x0336_a49f,
    ),
    (
        "qm2",
        include_bytes!("../testdata/strongswan-5.9.8-psk/10-qm2.bin"),
        ExchangeType::QUICK,
        0x0336_a49f,
    ),
    (
        "qm3",
        include_bytes!("../testdata/strongswan-5.9.8-psk/11-qm3.bin"),
        ExchangeType::QUICK,
        0x0336_a49f,
    ),
];

const CKY_I: [u8; 8] = [0x27, 0x2c, 0x5c, 0xfa, 0x58, 0x76, 0x61, 0x61];
const CKY_R: [u8; 8] = [0xc0, 0x95, 0x2c, 0x7c, 0x9a, 0x07, 0x62, 0xa2];

fn types(m: &Message) -> Vec<PayloadType> {
    m.payloads.iter().map(Payload::payload_type).collect()
}

fn the_sa(m: &Message) -> &SaPayload {
    match &m.payloads[0] {
        Payload::Sa(sa) => sa,
        other => panic!("expected SA, got {other:?}"),
    }
}

fn vids(m: &Message) -> Vec<&[u8]> {
    m.payloads
        .iter()
        .filter_map(|p| match p {
            Payload::VendorId(v) => Some(v.as_slice()),
            _ => None,
        })
        .collect()
}

/// The phase-1 proposal both sides send: AES-CBC-128 / SHA2-256 / MODP-2048 /
/// PSK / 15840 s, all TV-encoded, in strongSwan's attribute order.
fn check_phase1_sa(sa: &SaPayload) {
    assert_eq!(
        (sa.doi, sa.situation),
        (isakmp::ipsec::DOI_IPSEC, isakmp::ipsec::SIT_IDENTITY_ONLY)
    );
    assert_eq!(sa.proposals.len(), 1);
    let p = &sa.proposals[0];
    assert_eq!(
        (p.number, p.protocol, p.spi.len(), p.transforms.len()),
        (1, ProtocolId::ISAKMP, 0, 1)
    );
    let t = &p.transforms[0];
    assert_eq!((t.number, t.id), (1, isakmp::ipsec::KEY_IKE));
    assert_eq!(
        t.attributes,
        [
            Attribute::basic(oakley::ENCRYPTION_ALGORITHM, oakley::enc::AES_CBC),
            Attribute::basic(oakley::KEY_LENGTH, 128),
            Attribute::basic(oakley::HASH_ALGORITHM, oakley::hash::SHA2_256),
            Attribute::basic(oakley::GROUP_DESCRIPTION, oakley::group::MODP_2048),
            Attribute::basic(oakley::AUTHENTICATION_METHOD, oakley::auth::PRE_SHARED_KEY),
            Attribute::basic(oakley::LIFE_TYPE, oakley::life::SECONDS),
            Attribute::basic(oakley::LIFE_DURATION, 15840),
        ]
    );
    // Life duration is a "V" attribute sent in the TV form: read it as a number.
    assert!(matches!(t.attributes[6].value, AttrValue::Basic(15840)));
    assert_eq!(t.attributes[6].as_u64(), Some(15840));
}

#[test]
fn mm1() {
    let m = Message::parse(MM1).unwrap();
    let h = &m.header;
    assert_eq!(h.initiator_cookie, CKY_I);
    assert_eq!(h.responder_cookie, [0; 8]);
    assert_eq!(
        (h.exchange, h.flags, h.message_id, h.version),
        (ExchangeType::MAIN, Flags::NONE, 0, 0x10)
    );
    assert_eq!(h.next_payload, PayloadType::SA);
    assert_eq!(h.length as usize, MM1.len());
    let mut expect = vec![PayloadType::SA];
    expect.extend([PayloadType::VENDOR_ID; 5]);
    assert_eq!(types(&m), expect);
    check_phase1_sa(the_sa(&m));
    let v = vids(&m);
    assert_eq!(v[0], vendor::XAUTH);
    assert_eq!(v[1], vendor::DPD);
    assert!(vendor::is_fragmentation(v[2]));
    assert_eq!(v[2][16..], [0x80, 0, 0, 0]);
    assert_eq!(v[3], vendor::NAT_T_RFC3947);
    assert_eq!(v[4], vendor::NAT_T_DRAFT_02N);
    assert_eq!(m.emit(), MM1);
}

#[test]
fn mm2() {
    let m = Message::parse(MM2).unwrap();
    assert_eq!(
        (m.header.initiator_cookie, m.header.responder_cookie),
        (CKY_I, CKY_R)
    );
    let mut expect = vec![PayloadType::SA];
    expect.extend([PayloadType::VENDOR_ID; 4]);
    assert_eq!(types(&m), expect);
    check_phase1_sa(the_sa(&m));
    let names: Vec<_> = vids(&m)
        .into_iter()
        .map(|v| vendor::name(v).unwrap())
        .collect();
    assert_eq!(names, ["XAUTH", "DPD", "FRAGMENTATION", "NAT-T (RFC 3947)"]);
    assert_eq!(m.emit(), MM2);
}

fn check_ke_nonce_natd(bytes: &[u8]) {
    let m = Message::parse(bytes).unwrap();
    assert_eq!(
        (m.header.initiator_cookie, m.header.responder_cookie),
        (CKY_I, CKY_R)
    );
    assert_eq!(m.header.exchange, ExchangeType::MAIN);
    assert_eq!(
        types(&m),
        [
            PayloadType::KE,
            PayloadType::NONCE,
            PayloadType::NAT_D,
            PayloadType::NAT_D
        ]
    );
    match &m.payloads[..] {
        [
            Payload::Ke(ke),
            Payload::Nonce(n),
            Payload::NatD(d1),
            Payload::NatD(d2),
        ] => {
            assert_eq!(ke.len(), 256); // MODP-2048
            assert_eq!(n.len(), 32);
            assert_eq!((d1.len(), d2.len()), (32, 32)); // SHA2-256
        }
        other => panic!("unexpected payloads {other:?}"),
    }
    assert_eq!(m.emit(), bytes);
}

#[test]
fn mm3() {
    check_ke_nonce_natd(MM3);
}

#[test]
fn mm4() {
    check_ke_nonce_natd(MM4);
}

/// The raw payload bodies are what the HASH_I input is built from: the
/// charon log's "HASH_I data" is g^xi | g^xr | CKY-I | CKY-R | SAi_b | IDii_b,
/// where SAi_b is the SA body *without* its generic header.
#[test]
fn hash_i_input_matches_raw_bodies() {
    let hex_text = include_str!("../testdata/strongswan-5.9.8-psk/hash_i_data.hex");
    let logged = hex::decode(hex_text.trim()).unwrap();
    let raw = |buf: &'static [u8]| {
        let h = Header::parse(buf).unwrap();
        split_payloads(h.next_payload, &buf[HEADER_LEN..])
            .unwrap()
            .0
    };
    let (mm1, mm3, mm4) = (raw(MM1), raw(MM3), raw(MM4));
    assert_eq!(mm1[0].ty, PayloadType::SA);
    assert_eq!((mm1[0].offset, mm1[0].len), (0, 56));
    let mut built = Vec::new();
    built.extend_from_slice(mm3[0].body); // g^xi
    built.extend_from_slice(mm4[0].body); // g^xr
    built.extend_from_slice(&CKY_I);
    built.extend_from_slice(&CKY_R);
    built.extend_from_slice(mm1[0].body); // SAi_b
    assert_eq!(logged[..built.len()], built);
    // The rest is IDii_b: USER_FQDN, protocol 0, port 0.
    let id = IdPayload::parse(&logged[built.len()..]).unwrap();
    assert_eq!(
        id,
        IdPayload {
            id_type: IdType::USER_FQDN,
            protocol: 0,
            port: 0,
            data: b"mn@example.com".to_vec()
        }
    );
}

#[test]
fn encrypted_headers() {
    for &(name, bytes, exchange, mid) in ENCRYPTED {
        let h = Header::parse(bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(h.flags.contains(Flags::ENCRYPTION), "{name}");
        assert_eq!(h.flags, Flags::ENCRYPTION, "{name}");
        assert_eq!(
            (h.initiator_cookie, h.responder_cookie),
            (CKY_I, CKY_R),
            "{name}"
        );
        assert_eq!((h.exchange, h.message_id), (exchange, mid), "{name}");
        assert_eq!(h.length as usize, bytes.len(), "{name}");
        // AES-CBC: the encrypted part is whole 16-byte blocks.
        assert_eq!((bytes.len() - HEADER_LEN) % 16, 0, "{name}");
        let first = if name.starts_with("mm") {
            PayloadType::ID
        } else {
            PayloadType::HASH
        };
        assert_eq!(h.next_payload, first, "{name}");
        assert_eq!(Message::parse(bytes), Err(WireError::Encrypted), "{name}");
        // Re-emitting the header reproduces it.
        let mut out = vec![];
        h.emit(&mut out);
        assert_eq!(out, bytes[..HEADER_LEN], "{name}");
    }
}
