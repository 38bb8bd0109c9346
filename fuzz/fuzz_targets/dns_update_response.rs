//! Fuzzes the DNS UPDATE client (crates/dns-update) with untrusted bytes.
//!
//! The input is used four ways:
//! 1. as a DNS message (`Response::parse`), and every offset of it as the start of a domain
//!    name (`Name::read`, compression pointers included);
//! 2. as the answer to a signed UPDATE, fed to the `Update` engine with its ID patched to the
//!    request's: nothing the fuzzer writes can carry a valid MAC, so the engine must never
//!    report an authenticated outcome;
//! 3. when it parses as a message without TSIG, signed as the server would sign it (with the
//!    key and the request MAC) and fed to a fresh engine: if it is an UPDATE response, the
//!    engine must decide, with an authenticated outcome (this gets the fuzzer past the MAC);
//! 4. as text, to the BIND key-file parser (`TsigKey::parse_bind_file`).
//!
//! Invariants: nothing panics; a parsed response's TSIG offset lies within the message; a
//! name read from the input is at most 255 octets in wire form and ends where it says; the
//! engine's outcome follows the rules above; a key the parser accepts has a non-empty secret
//! and its Debug output does not contain the secret's base64 text.
#![no_main]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use dns_update::tsig::sign_response_for_tests;
use dns_update::{
    Algorithm, Name, Outcome, Rcode, Response, TsigKey, Update, UpdateConfig, UpdateRequest,
};
use libfuzzer_sys::fuzz_target;

const T0: u64 = 1_800_000_000;

fn engine(key: &TsigKey, server: SocketAddr, now: Instant) -> Update {
    let req = UpdateRequest::replace_aaaa(
        Name::from_ascii("example.").unwrap(),
        Name::from_ascii("mn1.example.").unwrap(),
        &["2001:db8:1::99".parse().unwrap()],
        300,
    )
    .unwrap();
    let mut up = Update::new(UpdateConfig::new(server), &req, key, 0x5a5a, now, T0);
    let mut buf = Vec::new();
    assert!(up.poll_transmit(now, &mut buf).is_some());
    up
}

fuzz_target!(|data: &[u8]| {
    // 1. Parsers.
    if let Ok(r) = Response::parse(data) {
        assert!(r.tsig_offset <= data.len());
        assert_eq!(r.tsig.is_some(), r.tsig_offset < data.len());
    }
    for off in 0..data.len().min(64) {
        if let Ok((name, end)) = Name::read(data, off) {
            assert!(name.wire_len() <= 255);
            assert!(end > off && end <= data.len());
            let _ = name.to_string();
        }
    }

    let key = TsigKey::new(
        Name::from_ascii("ha-key").unwrap(),
        Algorithm::HmacSha256,
        b"0123456789abcdef0123456789abcdef".to_vec(),
    )
    .unwrap();
    let server: SocketAddr = "[2001:db8:1::2]:53".parse().unwrap();
    let now = Instant::now();

    // 2. As a forged answer.
    let mut up = engine(&key, server, now);
    let mut forged = data.to_vec();
    if forged.len() >= 2 {
        forged[..2].copy_from_slice(&0x5a5au16.to_be_bytes());
    }
    up.handle_datagram(now, server, &forged, T0);
    match up.outcome() {
        None => {}
        Some(Outcome::Refused {
            authenticated: false,
            tsig_error: Some(e),
            rcode: _,
        }) => assert!(*e == Rcode::BADSIG || *e == Rcode::BADKEY),
        Some(o) => panic!("forged answer accepted: {o:?}"),
    }
    up.handle_timeout(now + Duration::from_secs(10));
    let _ = up.outcome();

    // 3. Signed as the server would.
    if let Ok(r) = Response::parse(&forged) {
        if r.tsig.is_none() && forged.len() >= 12 && r.counts[3] < u16::MAX {
            let mut up = engine(&key, server, now);
            let mut signed = forged.clone();
            sign_response_for_tests(
                &mut signed,
                &key,
                up.request_mac(),
                T0,
                300,
                Rcode::NOERROR,
                false,
            );
            up.handle_datagram(now, server, &signed, T0);
            if r.qr && r.opcode == 5 {
                match up.outcome() {
                    Some(Outcome::Done) => assert_eq!(r.rcode, Rcode::NOERROR),
                    Some(Outcome::Refused {
                        authenticated: true,
                        rcode,
                        tsig_error: None,
                    }) => assert_eq!(*rcode, r.rcode),
                    other => panic!("signed answer not taken: {other:?} for {r:?}"),
                }
            } else {
                assert_eq!(up.outcome(), None);
            }
        }
    }

    // 4. Key files.
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(keys) = TsigKey::parse_bind_file(text) {
            for k in keys {
                assert!(!k.secret().is_empty());
                let _ = format!("{k:?}");
            }
        }
    }
});
