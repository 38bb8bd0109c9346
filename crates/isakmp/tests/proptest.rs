//! Property tests: arbitrary bytes never panic the parsers, and every valid
//! value survives emit → parse unchanged.

use isakmp::{
    AttrValue, Attribute, CertEncoding, CertPayload, CfgType, ConfigPayload, DeletePayload,
    ExchangeType, Flags, HEADER_LEN, Header, IdPayload, IdType, Message, NatOaPayload,
    NotifyPayload, NotifyType, Payload, PayloadType, Proposal, ProtocolId, SaPayload, Transform,
    split_payloads,
};
use proptest::collection::vec;
use proptest::prelude::*;

/// Payload types that have their own [`Payload`] variant.
const DECODED: [u8; 14] = [1, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 20, 21];

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..=max)
}

fn attribute() -> impl Strategy<Value = Attribute> {
    let value = prop_oneof![
        any::<u16>().prop_map(AttrValue::Basic),
        bytes(40).prop_map(AttrValue::Variable)
    ];
    (0u16..0x8000, value).prop_map(|(ty, value)| Attribute { ty, value })
}

fn transform() -> impl Strategy<Value = Transform> {
    (any::<u8>(), any::<u8>(), vec(attribute(), 0..6)).prop_map(|(number, id, attributes)| {
        Transform {
            number,
            id,
            attributes,
        }
    })
}

fn proposal() -> impl Strategy<Value = Proposal> {
    (any::<u8>(), any::<u8>(), bytes(16), vec(transform(), 0..4)).prop_map(
        |(number, p, spi, transforms)| Proposal {
            number,
            protocol: ProtocolId(p),
            spi,
            transforms,
        },
    )
}

fn sa() -> impl Strategy<Value = SaPayload> {
    (any::<u32>(), any::<u32>(), vec(proposal(), 0..3)).prop_map(
        |(doi, mut situation, proposals)| {
            if doi == isakmp::ipsec::DOI_IPSEC {
                // Labeled secrecy/integrity situations are unsupported.
                situation &= !6;
            }
            SaPayload {
                doi,
                situation,
                proposals,
            }
        },
    )
}

fn delete() -> impl Strategy<Value = DeletePayload> {
    (any::<u32>(), any::<u8>(), 0u8..=16, 0usize..5).prop_flat_map(|(doi, p, spi_size, count)| {
        let count = if spi_size == 0 { 0 } else { count };
        vec(vec(any::<u8>(), usize::from(spi_size)), count).prop_map(move |spis| DeletePayload {
            doi,
            protocol: ProtocolId(p),
            spi_size,
            spis,
        })
    })
}

fn payload() -> impl Strategy<Value = Payload> {
    prop_oneof![
        sa().prop_map(Payload::Sa),
        bytes(300).prop_map(Payload::Ke),
        (any::<u8>(), any::<u8>(), any::<u16>(), bytes(64)).prop_map(
            |(t, protocol, port, data)| Payload::Id(IdPayload {
                id_type: IdType(t),
                protocol,
                port,
                data
            })
        ),
        (any::<u8>(), bytes(64)).prop_map(|(e, data)| Payload::Cert(CertPayload {
            encoding: CertEncoding(e),
            data
        })),
        (any::<u8>(), bytes(64)).prop_map(|(e, data)| Payload::CertReq(CertPayload {
            encoding: CertEncoding(e),
            data
        })),
        bytes(64).prop_map(Payload::Hash),
        bytes(64).prop_map(Payload::Sig),
        bytes(64).prop_map(Payload::Nonce),
        (
            any::<u32>(),
            any::<u8>(),
            any::<u16>(),
            bytes(32),
            bytes(32)
        )
            .prop_map(|(doi, p, t, spi, data)| {
                Payload::Notify(NotifyPayload {
                    doi,
                    protocol: ProtocolId(p),
                    notify_type: NotifyType(t),
                    spi,
                    data,
                })
            }),
        delete().prop_map(Payload::Delete),
        bytes(32).prop_map(Payload::VendorId),
        (any::<u8>(), any::<u16>(), vec(attribute(), 0..6)).prop_map(
            |(t, identifier, attributes)| {
                Payload::Attribute(ConfigPayload {
                    cfg_type: CfgType(t),
                    identifier,
                    attributes,
                })
            }
        ),
        bytes(32).prop_map(Payload::NatD),
        (any::<u8>(), bytes(16)).prop_map(|(t, address)| Payload::NatOa(NatOaPayload {
            id_type: IdType(t),
            address
        })),
        (1u8..=255)
            .prop_filter("has its own variant", |t| !DECODED.contains(t))
            .prop_flat_map(|t| bytes(64).prop_map(move |body| Payload::Unknown {
                ty: PayloadType(t),
                body
            })),
    ]
}

fn header() -> impl Strategy<Value = Header> {
    (
        any::<[u8; 8]>(),
        any::<[u8; 8]>(),
        0x10u8..=0x1f,
        any::<u8>(),
        any::<u8>(),
        any::<u32>(),
    )
        .prop_map(
            |(initiator_cookie, responder_cookie, version, exchange, flags, message_id)| Header {
                initiator_cookie,
                responder_cookie,
                next_payload: PayloadType::NONE,
                version,
                exchange: ExchangeType(exchange),
                flags: Flags(flags & !Flags::ENCRYPTION.0),
                message_id,
                length: 0,
            },
        )
}

/// If `buf` parses as a message, re-emitting it gives a message that parses
/// to the same value and differs from `buf` only where RESERVED bytes were
/// zeroed.
fn check_message_roundtrip(buf: &[u8]) {
    if let Ok(m) = Message::parse(buf) {
        let out = m.emit();
        assert_eq!(out.len(), buf.len());
        for (i, (&a, &b)) in buf.iter().zip(&out).enumerate() {
            assert!(a == b || b == 0, "byte {i}: {a:#x} re-emitted as {b:#x}");
        }
        assert_eq!(Message::parse(&out).as_ref(), Ok(&m));
    }
}

/// A buffer with a plausible header (version 1.x, no E flag, consistent
/// length) so that random bodies reach the payload parsers.
fn framed(first: u8, body: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; HEADER_LEN];
    buf[16] = first;
    buf[17] = 0x10;
    buf[18] = 2;
    buf[24..28].copy_from_slice(
        &u32::try_from(HEADER_LEN + body.len())
            .unwrap()
            .to_be_bytes(),
    );
    buf.extend_from_slice(body);
    buf
}

const CAPTURED: [&[u8]; 4] = [
    include_bytes!("../testdata/strongswan-5.9.8-psk/01-mm1.bin"),
    include_bytes!("../testdata/strongswan-5.9.8-psk/02-mm2.bin"),
    include_bytes!("../testdata/strongswan-5.9.8-psk/03-mm3.bin"),
    include_bytes!("../testdata/strongswan-5.9.8-psk/04-mm4.bin"),
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn message_parse_never_panics(buf in bytes(600)) {
        check_message_roundtrip(&buf);
    }

    #[test]
    fn framed_message_parse_never_panics(first in any::<u8>(), body in bytes(600)) {
        check_message_roundtrip(&framed(first, &body));
    }

    #[test]
    fn split_payloads_never_panics(first in any::<u8>(), buf in bytes(600)) {
        if let Ok((raw, used)) = split_payloads(PayloadType(first), &buf) {
            prop_assert!(used <= buf.len());
            prop_assert!(raw.len() <= isakmp::MAX_PAYLOADS);
            for r in &raw {
                prop_assert_eq!(&buf[r.offset + 4..r.offset + r.len], r.body);
                // Every body parses or fails cleanly.
                let _ = Payload::parse(r.ty, r.body);
            }
        }
    }

    #[test]
    fn payload_parse_never_panics(ty in any::<u8>(), body in bytes(600)) {
        if let Ok(p) = Payload::parse(PayloadType(ty), &body) {
            let mut out = vec![];
            p.emit_body(&mut out);
            prop_assert_eq!(out.len(), body.len());
            prop_assert_eq!(Payload::parse(PayloadType(ty), &out), Ok(p));
        }
    }

    #[test]
    fn mutated_captures_never_panic(
        which in 0usize..4,
        edits in vec((any::<usize>(), any::<u8>()), 1..6),
        cut in any::<usize>(),
    ) {
        let mut buf = CAPTURED[which].to_vec();
        for (at, v) in edits {
            let i = at % buf.len();
            buf[i] = v;
        }
        check_message_roundtrip(&buf);
        // Keep the header's length consistent with a truncation too.
        let n = HEADER_LEN + cut % (buf.len() - HEADER_LEN + 1);
        buf.truncate(n);
        buf[24..28].copy_from_slice(&u32::try_from(n).unwrap().to_be_bytes());
        check_message_roundtrip(&buf);
    }
}

proptest! {
    #[test]
    fn payload_roundtrip(p in payload()) {
        let mut body = vec![];
        p.emit_body(&mut body);
        prop_assert_eq!(Payload::parse(p.payload_type(), &body), Ok(p));
    }

    #[test]
    fn message_roundtrip(mut h in header(), payloads in vec(payload(), 0..6)) {
        let m = Message { header: h.clone(), payloads };
        let bytes = m.emit();
        h.next_payload = m.payloads.first().map_or(PayloadType::NONE, Payload::payload_type);
        h.length = u32::try_from(bytes.len()).unwrap();
        let expect = Message { header: h, payloads: m.payloads };
        prop_assert_eq!(Message::parse(&bytes), Ok(expect.clone()));
        prop_assert_eq!(expect.emit(), bytes);
    }

    #[test]
    fn attributes_roundtrip(attrs in vec(attribute(), 0..10)) {
        let mut out = vec![];
        isakmp::emit_attributes(&attrs, &mut out);
        prop_assert_eq!(isakmp::parse_attributes(&out), Ok(attrs));
    }

    #[test]
    fn encode_u64_roundtrip(ty in 0u16..0x8000, v in any::<u64>()) {
        let a = Attribute::encode_u64(ty, v);
        prop_assert_eq!(a.as_u64(), Some(v));
        let mut out = vec![];
        a.emit(&mut out);
        prop_assert_eq!(isakmp::parse_attributes(&out), Ok(vec![a]));
    }
}

/// Every file in testdata either parses and re-emits exactly, or is an
/// encrypted message with a valid header.
#[test]
fn testdata_corpus_replays() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/strongswan-5.9.8-psk");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "bin") {
            let buf = std::fs::read(&path).unwrap();
            match Message::parse(&buf) {
                Ok(m) => assert_eq!(m.emit(), buf, "{}", path.display()),
                Err(isakmp::WireError::Encrypted) => assert!(Header::parse(&buf).is_ok()),
                Err(e) => panic!("{}: {e}", path.display()),
            }
            n += 1;
        }
    }
    assert_eq!(n, 11);
}
