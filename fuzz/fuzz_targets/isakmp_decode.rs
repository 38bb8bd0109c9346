//! Fuzzes the ISAKMP codec (crates/isakmp) with untrusted datagrams.
//!
//! Invariants checked:
//! * nothing panics;
//! * a message that parses re-emits to the same length, differing from the
//!   input only where emit wrote a zero (RESERVED bytes, which are accepted
//!   non-zero and always sent as zero), and the re-emitted bytes parse to the
//!   same value (so for RFC-conforming input, emit == input exactly);
//! * the same holds payload by payload for `split_payloads` + `Payload::parse`,
//!   both behind a header and on a bare chain (first byte = first type).
#![no_main]

use isakmp::{HEADER_LEN, Header, Message, Payload, PayloadType, split_payloads};
use libfuzzer_sys::fuzz_target;

/// `out` must equal `input` except for bytes that `out` has as zero.
fn assert_same_modulo_reserved(input: &[u8], out: &[u8]) {
    assert_eq!(input.len(), out.len(), "re-emitted length differs");
    for (i, (&a, &b)) in input.iter().zip(out).enumerate() {
        assert!(
            a == b || b == 0,
            "byte {i}: {a:#04x} re-emitted as {b:#04x}"
        );
    }
}

fn check_chain(first: PayloadType, buf: &[u8]) {
    let Ok((raw, used)) = split_payloads(first, buf) else {
        return;
    };
    assert!(used <= buf.len());
    assert!(raw.len() <= isakmp::MAX_PAYLOADS);
    let mut end = 0;
    for r in &raw {
        assert_eq!(r.offset, end, "payloads are contiguous");
        assert_eq!(&buf[r.offset + 4..r.offset + r.len], r.body);
        end = r.offset + r.len;
        if let Ok(p) = Payload::parse(r.ty, r.body) {
            assert_eq!(p.payload_type(), r.ty);
            let mut out = Vec::new();
            p.emit_body(&mut out);
            assert_same_modulo_reserved(r.body, &out);
            assert_eq!(Payload::parse(r.ty, &out).as_ref(), Ok(&p));
        }
    }
    assert_eq!(end, used);
}

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Message::parse(data) {
        let out = m.emit();
        assert_same_modulo_reserved(data, &out);
        assert_eq!(Message::parse(&out).as_ref(), Ok(&m));
    }
    if let Ok(h) = Header::parse(data) {
        check_chain(h.next_payload, &data[HEADER_LEN..]);
    }
    if let Some((&first, rest)) = data.split_first() {
        check_chain(PayloadType(first), rest);
    }
});
