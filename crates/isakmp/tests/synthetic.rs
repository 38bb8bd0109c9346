//! Hand-built plaintext messages (testdata/make_synthetic.py) for payloads the
//! capture only carries encrypted or not at all.

use isakmp::{
    Attribute, CertEncoding, CfgType, ExchangeType, IdType, Message, NotifyType, Payload,
    PayloadType, ProtocolId, cfg, ipsec, oakley, vendor,
};

fn load(name: &str) -> (Vec<u8>, Message) {
    let path = format!(
        "{}/testdata/synthetic/{name}.bin",
        env!("CARGO_MANIFEST_DIR")
    );
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let m = Message::parse(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(m.emit(), bytes, "{name} does not re-emit byte for byte");
    (bytes, m)
}

fn types(m: &Message) -> Vec<u8> {
    m.payloads.iter().map(|p| p.payload_type().0).collect()
}

#[test]
fn every_synthetic_message_roundtrips() {
    let dir = format!("{}/testdata/synthetic", env!("CARGO_MANIFEST_DIR"));
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "bin") {
            load(path.file_stem().unwrap().to_str().unwrap());
            n += 1;
        }
    }
    assert_eq!(n, 12);
}

#[test]
fn quick_mode() {
    let (_, m) = load("qm1-plain");
    assert_eq!(m.header.exchange, ExchangeType::QUICK);
    assert_eq!(types(&m), [8, 1, 10, 4, 5, 5, 21]);
    let Payload::Sa(sa) = &m.payloads[1] else {
        panic!()
    };
    let p = &sa.proposals[0];
    assert_eq!(
        (p.protocol, p.spi.as_slice()),
        (ProtocolId::IPSEC_ESP, &[0xa5, 0xf8, 0x0e, 0x9d][..])
    );
    assert_eq!(p.transforms.len(), 2);
    let t = &p.transforms[0];
    assert_eq!(t.id, ipsec::esp_transform::AES_CBC);
    let life = t
        .attributes
        .iter()
        .find(|a| a.ty == ipsec::SA_LIFE_DURATION)
        .unwrap();
    assert_eq!(life.as_u64(), Some(86400)); // 4-byte TLV
    assert!(t.attributes.contains(&Attribute::basic(
        ipsec::ENCAPSULATION_MODE,
        ipsec::encap::UDP_TUNNEL
    )));
    let Payload::Id(idcr) = &m.payloads[5] else {
        panic!()
    };
    assert_eq!(
        (idcr.id_type, idcr.protocol, idcr.data.len()),
        (IdType::IPV6_ADDR_SUBNET, 135, 32)
    );
    let Payload::NatOa(oa) = &m.payloads[6] else {
        panic!()
    };
    assert_eq!((oa.id_type, oa.address.len()), (IdType::IPV6_ADDR, 16));
}

#[test]
fn notifications_and_deletes() {
    let (_, m) = load("mm5-plain");
    let Payload::Notify(n) = &m.payloads[2] else {
        panic!()
    };
    assert_eq!(
        (n.notify_type, n.protocol, n.spi.len()),
        (NotifyType::INITIAL_CONTACT, ProtocolId::ISAKMP, 16)
    );
    let (_, m) = load("dpd-r-u-there");
    let Payload::Notify(n) = &m.payloads[1] else {
        panic!()
    };
    assert_eq!(n.notify_type, NotifyType::R_U_THERE);
    assert_eq!(n.data, [0, 0, 0, 7]);
    let (_, m) = load("delete-esp");
    let Payload::Delete(d) = &m.payloads[1] else {
        panic!()
    };
    assert_eq!(
        (d.protocol, d.spi_size, d.spis.len()),
        (ProtocolId::IPSEC_ESP, 4, 2)
    );
    let (_, m) = load("delete-isakmp");
    let Payload::Delete(d) = &m.payloads[1] else {
        panic!()
    };
    assert_eq!(
        (d.protocol, d.spi_size, d.spis[0].len()),
        (ProtocolId::ISAKMP, 16, 16)
    );
}

#[test]
fn mode_config_and_xauth() {
    let (_, m) = load("modecfg-reply-17");
    let Payload::Attribute(c) = &m.payloads[1] else {
        panic!()
    };
    assert_eq!(c.cfg_type, CfgType::REPLY);
    let isakmp::AttrValue::Variable(v) = &c.attributes[0].value else {
        panic!()
    };
    let (addr, prefix) = cfg::ip6_address(v).unwrap();
    assert_eq!(
        (addr.to_string().as_str(), prefix),
        ("2001:db8:1::1001", Some(64))
    );
    let (_, m) = load("xauth-request");
    let Payload::Attribute(c) = &m.payloads[1] else {
        panic!()
    };
    assert_eq!((c.cfg_type, c.identifier), (CfgType::REQUEST, 0x1234));
    assert_eq!(
        c.attributes[0],
        Attribute::basic(cfg::XAUTH_TYPE, cfg::xauth_type::RADIUS_CHAP)
    );
    let (_, m) = load("xauth-set-status");
    let Payload::Attribute(c) = &m.payloads[1] else {
        panic!()
    };
    assert_eq!(
        c.attributes,
        [Attribute::basic(cfg::XAUTH_STATUS, cfg::xauth_status::OK)]
    );
}

#[test]
fn certificates_and_raw_types() {
    let (_, m) = load("mm-certs");
    assert_eq!(types(&m), [5, 6, 7, 7, 9, 13, 130, 132]);
    let Payload::Cert(c) = &m.payloads[1] else {
        panic!()
    };
    assert_eq!(c.encoding, CertEncoding::X509_SIG);
    let Payload::CertReq(cr) = &m.payloads[2] else {
        panic!()
    };
    assert!(cr.data.is_empty());
    let Payload::VendorId(v) = &m.payloads[5] else {
        panic!()
    };
    assert!(vendor::is_fragmentation(v));
    assert!(
        matches!(&m.payloads[6], Payload::Unknown { ty: PayloadType::NAT_D_DRAFT, body } if body.len() == 32)
    );
    assert!(matches!(
        &m.payloads[7],
        Payload::Unknown {
            ty: PayloadType::FRAGMENT,
            ..
        }
    ));
}

#[test]
fn aggressive_xauth_hybrid() {
    let (_, m) = load("am1-xauth");
    assert_eq!(m.header.exchange, ExchangeType::AGGRESSIVE);
    let Payload::Sa(sa) = &m.payloads[0] else {
        panic!()
    };
    let auth: Vec<_> = sa.proposals[0]
        .transforms
        .iter()
        .map(|t| {
            t.attributes
                .iter()
                .find(|a| a.ty == oakley::AUTHENTICATION_METHOD)
                .unwrap()
                .as_u64()
        })
        .collect();
    assert_eq!(
        auth,
        [
            Some(u64::from(oakley::auth::XAUTH_INIT_PSK)),
            Some(u64::from(oakley::auth::HYBRID_INIT_RSA))
        ]
    );
    let Payload::Id(id) = &m.payloads[3] else {
        panic!()
    };
    assert_eq!((id.id_type, id.protocol, id.port), (IdType::FQDN, 17, 500));
}

#[test]
fn empty_message() {
    let (bytes, m) = load("empty-informational");
    assert_eq!(bytes.len(), 28);
    assert!(m.payloads.is_empty());
    assert_eq!(m.header.next_payload, PayloadType::NONE);
}
