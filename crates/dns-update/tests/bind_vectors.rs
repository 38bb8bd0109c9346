//! Known-answer tests against real BIND 9.18 exchanges (`tests/data/bind-9.18-exchanges.txt`,
//! captured with the lab's `dns-update-probe --dump`): our request encoding and MAC
//! (RFC 8945 §4.3.1) reproduce the bytes BIND accepted, and BIND's signed answers verify with
//! the request MAC as prefix (§4.3.2, §5.4), including its BADTIME answer (signed, with the
//! server's time in Other Data) and its unsigned BADSIG answer (§5.3.2).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

use dns_update::{
    Name, Outcome, Rcode, Response, TsigError, TsigKey, Update, UpdateConfig, UpdateRequest,
    Verified, sign_request, verify_response,
};

const SECRET: &str = "V1oILbFeMjnJAdFl0BC05Mno9ZJ1tRIEvYwXCSQKdcA=";
const WRONG_SECRET: &str = "AAAALbFeMjnJAdFl0BC05Mno9ZJ1tRIEvYwXCSQKdcA=";

struct Exchange {
    id: u16,
    time: u64,
    request: Vec<u8>,
    request_mac: Vec<u8>,
    response: Vec<u8>,
}

fn exchanges() -> HashMap<String, Exchange> {
    let text = include_str!("data/bind-9.18-exchanges.txt");
    let mut out = HashMap::new();
    let mut section = String::new();
    let mut fields: HashMap<String, String> = HashMap::new();
    let mut flush = |section: &str, fields: &mut HashMap<String, String>| {
        if section.is_empty() {
            return;
        }
        let hex = |k: &str| hex::decode(&fields[k]).expect(k);
        out.insert(
            section.to_owned(),
            Exchange {
                id: fields["id"].parse().unwrap(),
                time: fields["time"].parse().unwrap(),
                request: hex("request-hex"),
                request_mac: hex("request-mac"),
                response: hex("response-hex"),
            },
        );
        fields.clear();
    };
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        if let Some(s) = line.strip_prefix('[') {
            flush(&section, &mut fields);
            section = s.trim_end_matches(']').to_owned();
            continue;
        }
        let (k, v) = line.split_once(' ').unwrap();
        fields.insert(k.to_owned(), v.to_owned());
    }
    flush(&section, &mut fields);
    out
}

fn key(secret: &str) -> TsigKey {
    TsigKey::from_strings("ha-key", "hmac-sha256", secret).unwrap()
}

fn n(s: &str) -> Name {
    s.parse().unwrap()
}

fn replace_request() -> UpdateRequest {
    UpdateRequest::replace_aaaa(
        n("example."),
        n("mn1.example."),
        &["2001:db8:1::99".parse().unwrap()],
        300,
    )
    .unwrap()
}

fn delete_request() -> UpdateRequest {
    UpdateRequest::delete_aaaa(n("example."), n("mn1.example.")).unwrap()
}

fn signed(req: &UpdateRequest, key: &TsigKey, id: u16, time: u64) -> (Vec<u8>, Vec<u8>) {
    let mut msg = Vec::new();
    req.emit(id, &mut msg);
    let mac = sign_request(&mut msg, key, time, 300);
    (msg, mac)
}

#[test]
fn our_request_bytes_are_what_bind_accepted() {
    let x = exchanges();
    let ok = &x["ok"];
    let (msg, mac) = signed(&replace_request(), &key(SECRET), ok.id, ok.time);
    assert_eq!(hex::encode(&msg), hex::encode(&ok.request));
    assert_eq!(mac, ok.request_mac);

    let bad = &x["badsig"];
    let (msg, mac) = signed(&delete_request(), &key(WRONG_SECRET), bad.id, bad.time);
    assert_eq!(hex::encode(&msg), hex::encode(&bad.request));
    assert_eq!(mac, bad.request_mac);

    let late = &x["badtime"];
    let (msg, _) = signed(&delete_request(), &key(SECRET), late.id, late.time);
    assert_eq!(hex::encode(&msg), hex::encode(&late.request));
}

#[test]
fn bind_noerror_answer_verifies() {
    let x = exchanges();
    let ok = &x["ok"];
    let r = Response::parse(&ok.response).unwrap();
    assert_eq!(
        (r.id, r.qr, r.opcode, r.rcode),
        (ok.id, true, 5, Rcode::NOERROR)
    );
    assert_eq!(
        verify_response(&r, &key(SECRET), ok.id, &ok.request_mac, ok.time + 1),
        Ok(Verified::Signed {
            error: Rcode::NOERROR
        })
    );
    // Another secret, another request MAC, a flipped MAC bit, an old clock: refused.
    assert_eq!(
        verify_response(&r, &key(WRONG_SECRET), ok.id, &ok.request_mac, ok.time),
        Err(TsigError::BadMac)
    );
    let mut other_mac = ok.request_mac.clone();
    other_mac[31] ^= 1;
    assert_eq!(
        verify_response(&r, &key(SECRET), ok.id, &other_mac, ok.time),
        Err(TsigError::BadMac)
    );
    let mut flipped = ok.response.clone();
    let at = r.tsig.as_ref().unwrap().mac.as_ptr() as usize - ok.response.as_ptr() as usize;
    flipped[at + 5] ^= 0x10;
    let rf = Response::parse(&flipped).unwrap();
    assert_eq!(
        verify_response(&rf, &key(SECRET), ok.id, &ok.request_mac, ok.time),
        Err(TsigError::BadMac)
    );
    assert!(matches!(
        verify_response(&r, &key(SECRET), ok.id, &ok.request_mac, ok.time + 301),
        Err(TsigError::BadTime { .. })
    ));

    // The engine, with the captured ID and time, takes the captured answer.
    let server: SocketAddr = "127.0.0.1:5399".parse().unwrap();
    let now = Instant::now();
    let mut up = Update::new(
        UpdateConfig::new(server),
        &replace_request(),
        &key(SECRET),
        ok.id,
        now,
        ok.time,
    );
    assert_eq!(up.request_bytes(), &ok.request[..]);
    let mut buf = Vec::new();
    let _ = up.poll_transmit(now, &mut buf).unwrap();
    up.handle_datagram(now, server, &ok.response, ok.time);
    assert_eq!(up.outcome(), Some(&Outcome::Done));
}

#[test]
fn bind_badsig_answer_is_unsigned() {
    let x = exchanges();
    let bad = &x["badsig"];
    let r = Response::parse(&bad.response).unwrap();
    assert_eq!(r.rcode, Rcode::NOTAUTH);
    let t = r.tsig.as_ref().unwrap();
    assert_eq!((t.error, t.mac.len()), (Rcode::BADSIG, 0));
    // Whatever key we hold, it is reported as an unsigned BADSIG.
    for secret in [SECRET, WRONG_SECRET] {
        assert_eq!(
            verify_response(&r, &key(secret), bad.id, &bad.request_mac, bad.time),
            Ok(Verified::Unsigned {
                error: Rcode::BADSIG
            })
        );
    }
}

#[test]
fn bind_badtime_answer_is_signed_with_server_time() {
    let x = exchanges();
    let late = &x["badtime"];
    let r = Response::parse(&late.response).unwrap();
    let t = r.tsig.as_ref().unwrap();
    assert_eq!((r.rcode, t.error), (Rcode::NOTAUTH, Rcode::BADTIME));
    // Other Data: the server's clock (48 bits), 1000 s behind ours.
    assert_eq!(t.other.len(), 6);
    let server_time = t.other.iter().fold(0u64, |a, &b| (a << 8) | u64::from(b));
    assert_eq!(server_time + 1000, late.time);
    assert_eq!(
        verify_response(&r, &key(SECRET), late.id, &late.request_mac, server_time),
        Ok(Verified::Signed {
            error: Rcode::BADTIME
        })
    );
}
