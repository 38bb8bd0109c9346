//! Fuzzes a responder (home agent) `ikev1::Engine` with a sequence of datagrams.
//!
//! The input is a sequence of records (`ike_common::Record`): one flags byte (local port 500 or
//! 4500, one of three source addresses, a NAT-mapped source port, and a virtual clock advance),
//! a big-endian `u16` (low 14 bits the length; bit 15 patches the responder cookie the engine
//! handed out for the record's initiator cookie, bit 14 patches the ISAKMP length field), then
//! the datagram; a record of length 0 and one more byte replays an earlier datagram (optionally
//! under a fresh initiator cookie). Before each datagram the clock advances and
//! `handle_timeout` runs when due; after the last record the timers run out. Address requests
//! are answered from a small pool.
//!
//! The engine draws from `SeededRng` and the seed corpus (`examples/gen_ike_seeds.rs`) holds
//! the datagrams a real initiator sent to this very responder, so with MODP-2048 the replay
//! reaches the encrypted states (MM5, Mode Config, Quick Mode, Informational). Two of the
//! responder's peers must pass XAUTH (XAUTHInitPreShared, Generic and RADIUS-CHAP; the target
//! answers `XauthCredentials` from a one-user table), and the `seed-xauth-*` seeds take it
//! through the edge's XAUTH transactions: the request, the reply, the status (OK and FAIL),
//! the ACK and the Delete after a failure.
//!
//! Invariants (see `ike_common`): no panic; `half_open_count() <= max_half_open` and a refusal
//! for the half-open limit only at that limit; every transmitted datagram well framed (header
//! parses, length field = size after the non-ESP marker on 4500); counters never decrease; SAs
//! bounded by the datagrams fed.
#![no_main]

mod ike_common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut r = ike_common::Responder::new();
    for rec in ike_common::parse_records(data) {
        let _ = r.step(&rec);
    }
    r.finish();
});
