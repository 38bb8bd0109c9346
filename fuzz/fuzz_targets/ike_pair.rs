//! Fuzzes a mobile node (initiator) and a home agent (responder) `ikev1::Engine` against each
//! other through the bootstrap: Main Mode (PSK, MODP-2048), Mode Config (answered from a small
//! pool), then the two RFC 3776 Quick Modes (no PFS). Both engines use `SeededRng` and MODP, so
//! the run is deterministic and an empty input is a clean bootstrap.
//!
//! Input: the first byte picks the initiator's variant (bit 0 forced NAT-T encapsulation,
//! bit 1 DPD, bit 2 short lifetimes for rekeying and re-authentication, bit 3 AES-CBC ESP,
//! bit 4 PSK + XAUTH after phase 1, bit 5 RADIUS-CHAP instead of Generic, bit 6 a password the
//! home agent refuses);
//! then, for every datagram taken off the wire, one byte steers the link (`ike_common::LinkOp`,
//! bits 0-2): deliver, drop, duplicate (deliver and queue a copy), deliver with 1-4 bits flipped
//! (positions and masks from the input), replace with input bytes, replace the body after the
//! header with input bytes (length fixed), or reorder (queue it behind the rest). Bit 3 first
//! advances the virtual clock (bits 4-6 pick the step) and runs due timers; bit 7 delivers it
//! from another source address. When the wire is empty the clock jumps to the next timer.
//!
//! Invariants (see `ike_common`): no panic; a reported child SA mirrors the peer's SA of the
//! same SPI (SPIs, keys, suite, mode, selectors); counters never decrease; SAs and exchanges
//! stay under small bounds; well-framed datagrams.
#![no_main]

mod ike_common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = ike_common::Pair::fuzz(data);
});
