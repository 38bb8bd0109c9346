//! Fuzzes the Mobile IPv6 codec and engines (crates/mip6) with untrusted bytes.
//!
//! The same input is used three ways:
//! 1. as a Mobility Header (`Message::parse`, RFC 6275 §6.1);
//! 2. as an IPv6 packet carrying one (`MobilityPacket::parse`/`parse_headers`: Home Address
//!    option, type 2 Routing header, RFC 6275 §6.3/§6.4);
//! 3. as a script, read with `arbitrary::Unstructured` (at most [`MAX_OPS`] operations), driving
//!    a home agent's `BindingCache` (4 entries, 60 s max lifetime) and a mobile node's
//!    `HomeRegistration` on a virtual clock: Binding Updates built from fields or decoded from
//!    input bytes (home address from a small pool, care-of address from a pool that includes
//!    the home address and unroutable addresses, authorized or not), Binding Acknowledgements
//!    built or decoded, Binding Refresh Requests, register/deregister commands, clock advances
//!    and jumps to `poll_timeout`.
//!
//! Invariants (a failed assertion is the crash libFuzzer reports):
//! * nothing panics;
//! * a Mobility Header that parses re-emits (padded to 8, ≤ 2048 bytes, unless canonical
//!   padding makes a packed 2048-byte input too long) to bytes that parse, checksum verified,
//!   to the same value, and re-emitting that is idempotent; an input that does not parse
//!   without the checksum does not parse with it either;
//! * a packet whose extension headers `MobilityPacket::parse_headers` accepts is accepted by
//!   the data plane's `esp::PacketInfo::parse` with the same policy addresses
//!   (`sel_src`/`sel_dst` = the checksum addresses), upper-layer protocol and offset, and
//!   `parse` agrees with it; a message it decodes, re-emitted into the
//!   same headers (and into `build_bu_packet`/`build_ba_packet` packets), decodes to the same
//!   value; a packet refused only for its checksum is decoded again with the checksum fixed
//!   (so the fuzzer gets past it) and then fails for another reason or passes the same checks;
//! * binding cache: at most 4 bindings; an accepted registration of an existing binding has a
//!   sequence number greater (mod 2^16) than the last accepted one; an accepted one is
//!   authorized, has the H bit, and is acknowledged with its sequence number and the requested
//!   lifetime capped at 60 s (0 for a deregistration, which removes the binding); a refusal or a
//!   drop changes nothing, and a 135 carries the binding's sequence number; after
//!   `handle_timeout` no binding has expired; `Expired` events name removed bindings and
//!   `RefreshRequest` events present ones;
//! * binding update list: every transmitted Binding Update decodes (checksum over home address →
//!   home agent) with A and H set, the care-of address in an Alternate Care-of Address option,
//!   the transmit's sequence number, and lifetime 0 exactly while deregistering; `poll_timeout`
//!   is `None` exactly when idle.
#![no_main]

use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use mip6::mh::MAX_MH_LEN;
use mip6::{
    BaFlags, BaStatus, BindingAck, BindingCache, BindingChange, BindingUpdate, BuFlags, BuOutcome,
    BulConfig, BulState, CacheConfig, CacheEvent, HomeRegistration, Message, MhError, MhPacket,
    MobilityOption, MobilityPacket, PacketError, Refusal, build_ba_packet, build_bu_packet,
    seq_greater,
};

const MAX_OPS: usize = 256;
const MAX_ENTRIES: usize = 4;
const MAX_LIFETIME_UNITS: u16 = 15;
const SRC: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x1000);
const DST: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 1);
const HA: Ipv6Addr = DST;
const IDENTITIES: [&str; 3] = ["mn1@example.net", "mn2@example.net", ""];

fn hoa(i: u8) -> Ipv6Addr {
    Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x1000 + u16::from(i))
}

fn check_mh(data: &[u8]) {
    let with_sum = Message::parse(data, Some((SRC, DST)));
    let m = match Message::parse(data, None) {
        Ok(m) => m,
        Err(e) => {
            let _ = e.response();
            assert!(with_sum.is_err(), "checksum made an invalid header valid");
            return;
        }
    };
    if let Ok(w) = &with_sum {
        assert_eq!(w, &m);
    }
    let len = MhPacket::new_checked(data).expect("parsed").total_len();
    assert!(len <= MAX_MH_LEN && len % 8 == 0);
    let mut out = Vec::new();
    match m.emit(SRC, DST, &mut out) {
        Ok(n) => {
            assert_eq!(n, out.len());
            assert!(n % 8 == 0 && (8..=MAX_MH_LEN).contains(&n));
            let back = Message::parse(&out, Some((SRC, DST))).expect("re-emitted header parses");
            assert_eq!(back, m);
            let again = back.to_bytes(SRC, DST).expect("re-emits");
            assert_eq!(again, out, "emit is not idempotent");
            assert_eq!(
                back.mh_type(),
                MhPacket::new_checked(data).expect("parsed").mh_type()
            );
        }
        // Canonical padding of a tightly packed input can exceed Header Len 255.
        Err(MhError::TooLong(n)) => assert!(n > MAX_MH_LEN),
        Err(e) => panic!("emit of a parsed header failed: {e}"),
    }
}

fn check_packet(data: &[u8]) {
    let Ok((mp, next_header)) = MobilityPacket::parse_headers(data) else {
        assert!(MobilityPacket::parse(data).is_err());
        return;
    };
    assert!(mp.mh_offset + mp.mh.len() <= data.len());
    let info = esp::PacketInfo::parse(data).expect("esp refuses a packet mip6 accepts");
    assert_eq!(info.sel_src, mp.checksum_src());
    assert_eq!(info.sel_dst, mp.checksum_dst());
    assert_eq!(info.next_proto, next_header);
    assert_eq!(info.upper_offset, mp.mh_offset);
    let parsed = MobilityPacket::parse(data);
    if next_header != mip6::IPPROTO_MH {
        assert_eq!(parsed, Err(PacketError::NotMobilityHeader(next_header)));
        // As if ESP had been removed: the same headers with the rest as the Mobility Header.
        if let Ok(m) = mp.with_mh(mp.mh).decode() {
            assert_eq!(m.mh_type().0, mp.mh.get(2).copied().unwrap_or(0xff));
        }
        return;
    }
    assert_eq!(parsed.as_ref(), Ok(&mp));
    match mp.decode() {
        Ok(m) => check_decoded(data, &mp, &m),
        Err(PacketError::Mh(MhError::BadChecksum)) => {
            // Random bytes rarely carry a valid checksum: fix it and look further.
            let Ok(view) = MhPacket::new_checked(mp.mh) else {
                unreachable!("a checksum was verified on a short header")
            };
            let (off, len) = (mp.mh_offset, view.total_len());
            let mut fixed = data.to_vec();
            fixed[off + 4..off + 6].copy_from_slice(&[0, 0]);
            let sum =
                mip6::mh::checksum(mp.checksum_src(), mp.checksum_dst(), &fixed[off..off + len]);
            fixed[off + 4..off + 6].copy_from_slice(&sum.to_be_bytes());
            let mp2 = MobilityPacket::parse(&fixed).expect("same headers parse");
            match mp2.decode() {
                Ok(m) => check_decoded(&fixed, &mp2, &m),
                Err(e) => assert_ne!(e, PacketError::Mh(MhError::BadChecksum)),
            }
        }
        Err(_) => {}
    }
}

/// `m` was decoded from `mp` (parsed from `data`): re-encodings decode to the same value.
fn check_decoded(data: &[u8], mp: &MobilityPacket<'_>, m: &Message) {
    let info = esp::PacketInfo::parse(data).expect("parsed before");
    assert_eq!(info.mh_type, Some(m.mh_type().0));
    let Ok(mh) = m.to_bytes(mp.checksum_src(), mp.checksum_dst()) else {
        return;
    };
    // The same headers around the re-emitted message.
    let mut p = data[..mp.mh_offset].to_vec();
    let plen = u16::try_from(p.len() - 40 + mh.len()).expect("small");
    p[4..6].copy_from_slice(&plen.to_be_bytes());
    p.extend_from_slice(&mh);
    let mp2 = MobilityPacket::parse(&p).expect("rebuilt packet parses");
    assert_eq!(mp2.decode().as_ref(), Ok(m));
    // Our own builders.
    let mut out = Vec::new();
    let built = match (m, mp.home_address_option, mp.routing_address) {
        (Message::BindingUpdate(_), Some(h), None) => {
            build_bu_packet(mp.src, mp.dst, h, &mh, &mut out)
        }
        (Message::BindingAck(_), None, Some(h)) => {
            build_ba_packet(mp.src, mp.dst, h, &mh, &mut out)
        }
        _ => None,
    };
    if let Some(b) = built {
        let mp3 = MobilityPacket::parse(b).expect("built packet parses");
        assert_eq!(mp3.checksum_src(), mp.checksum_src());
        assert_eq!(mp3.checksum_dst(), mp.checksum_dst());
        assert_eq!(mp3.decode().as_ref(), Ok(m));
        if let Message::BindingUpdate(bu) = m {
            assert_eq!(mp3.home_address(), mp.home_address());
            assert_eq!(mp3.care_of_address(bu), mp.care_of_address(bu));
        }
    }
}

fn pick_coa(u: &mut Unstructured<'_>, home: Ipv6Addr) -> Result<Ipv6Addr> {
    Ok(match u.int_in_range(0..=7u8)? {
        0 => home,
        1 => Ipv6Addr::UNSPECIFIED,
        2 => "fe80::2".parse().expect("literal"),
        3 => "ff02::1".parse().expect("literal"),
        n => Ipv6Addr::new(0x2001, 0xdb8, 0xff, 0, 0, 0, 0, u16::from(n)),
    })
}

/// A Binding Update from fields, or decoded from input bytes.
fn binding_update(u: &mut Unstructured<'_>) -> Result<Option<BindingUpdate>> {
    if u.ratio(1, 4)? {
        let n = u.int_in_range(0..=64usize)?;
        let bytes = u.bytes(n)?;
        return Ok(match Message::parse(bytes, None) {
            Ok(Message::BindingUpdate(b)) => Some(b),
            _ => None,
        });
    }
    let mut flags = BuFlags(u.arbitrary::<u16>()? & 0xf000);
    if u.ratio(3, 4)? {
        flags = flags | BuFlags::HOME;
    }
    let lifetime = if u.ratio(1, 8)? {
        u.arbitrary()?
    } else {
        u.int_in_range(0..=20)?
    };
    Ok(Some(BindingUpdate {
        sequence: u.arbitrary()?,
        flags,
        lifetime,
        options: vec![],
    }))
}

fn check_bu(cache: &mut BindingCache, now: Instant, u: &mut Unstructured<'_>) -> Result<()> {
    let Some(bu) = binding_update(u)? else {
        return Ok(());
    };
    let home = hoa(u.int_in_range(0..=5)?);
    let coa = pick_coa(u, home)?;
    let allowed = u.ratio(7, 8)?;
    let identity = IDENTITIES[u.int_in_range(0..=2usize)?];
    let before = cache.get(&home).cloned();
    let out = cache.handle_bu(now, identity, allowed, home, coa, &bu);
    let after = cache.get(&home).cloned();
    assert!(cache.len() <= MAX_ENTRIES);
    match &out {
        BuOutcome::Accepted { ack, change } => {
            assert!(allowed && bu.flags.contains(BuFlags::HOME));
            assert_eq!(ack.status, BaStatus::ACCEPTED);
            assert_eq!(ack.sequence, bu.sequence);
            if let Some(b) = &before {
                assert!(
                    seq_greater(bu.sequence, b.sequence),
                    "accepted sequence {} not above {}",
                    bu.sequence,
                    b.sequence
                );
            }
            match change {
                BindingChange::Deregistered { home_address, .. } => {
                    assert!(bu.lifetime == 0 || coa == home);
                    assert_eq!(*home_address, home);
                    assert!(before.is_some() && after.is_none());
                    assert_eq!(ack.lifetime, 0);
                }
                BindingChange::Created { .. }
                | BindingChange::Refreshed { .. }
                | BindingChange::Moved { .. } => {
                    assert_eq!(
                        matches!(change, BindingChange::Created { .. }),
                        before.is_none()
                    );
                    let a = after.expect("binding present");
                    assert_eq!(a.sequence, bu.sequence);
                    assert_eq!(a.care_of_address, coa);
                    assert_eq!(a.identity, identity);
                    assert_eq!(ack.lifetime, bu.lifetime.min(MAX_LIFETIME_UNITS));
                    assert!(ack.lifetime > 0 && a.expires_at > now);
                }
            }
        }
        BuOutcome::Refused { ack, reason } => {
            assert_eq!(before, after, "a refusal changed the binding");
            assert!(!ack.status.is_accepted());
            assert_eq!(ack.status, reason.status());
            assert_eq!(ack.lifetime, 0);
            if let Refusal::SequenceOutOfWindow { last } = reason {
                let b = before.as_ref().expect("135 needs a binding");
                assert_eq!((*last, ack.sequence), (b.sequence, b.sequence));
                assert!(!seq_greater(bu.sequence, b.sequence));
            }
            if *reason == Refusal::CacheFull {
                assert!(before.is_none() && cache.len() == MAX_ENTRIES);
            }
        }
        BuOutcome::Dropped(_) => assert_eq!(before, after, "a drop changed the binding"),
    }
    // The acknowledgement encodes and decodes.
    if let Some(ack) = out.ack() {
        let m = Message::BindingAck(ack.clone());
        let mh = m.to_bytes(HA, home).expect("BA emits");
        assert_eq!(Message::parse(&mh, Some((HA, home))).as_ref(), Ok(&m));
    }
    Ok(())
}

fn binding_ack(
    u: &mut Unstructured<'_>,
    bul: &HomeRegistration,
    now: Instant,
) -> Result<Option<BindingAck>> {
    if u.ratio(1, 4)? {
        let n = u.int_in_range(0..=48usize)?;
        let bytes = u.bytes(n)?;
        return Ok(match Message::parse(bytes, None) {
            Ok(Message::BindingAck(b)) => Some(b),
            _ => None,
        });
    }
    let status = match u.int_in_range(0..=4u8)? {
        0 | 1 => BaStatus::ACCEPTED,
        2 => BaStatus::SEQUENCE_OUT_OF_WINDOW,
        3 => BaStatus::NOT_HOME_AGENT,
        _ => BaStatus(u.arbitrary()?),
    };
    let sequence = match (u.ratio(3, 4)?, bul.status(now).sequence) {
        (true, Some(s)) => s,
        _ => u.arbitrary()?,
    };
    let mut options = vec![];
    if u.ratio(1, 4)? {
        options.push(MobilityOption::BindingRefreshAdvice(u.arbitrary()?));
    }
    Ok(Some(BindingAck {
        status,
        flags: BaFlags(u.arbitrary()?),
        sequence,
        lifetime: u.arbitrary()?,
        options,
    }))
}

fn drain(cache: &mut BindingCache, bul: &mut HomeRegistration, now: Instant, buf: &mut Vec<u8>) {
    while let Some(e) = cache.poll_event() {
        match e {
            CacheEvent::Expired { home_address, .. } => {
                assert!(cache.get(&home_address).is_none())
            }
            CacheEvent::RefreshRequest { home_address, .. } => {
                assert!(cache.get(&home_address).is_some())
            }
        }
    }
    while let Some(t) = bul.poll_transmit(now, buf) {
        assert_eq!(t.size, buf.len());
        let Ok(Message::BindingUpdate(bu)) = Message::parse(buf, Some((SRC, HA))) else {
            panic!("transmit is not a valid Binding Update");
        };
        assert!(bu.flags.contains(BuFlags::ACK | BuFlags::HOME));
        assert_eq!(bu.sequence, t.sequence);
        assert_eq!(bu.alternate_care_of_address(), Some(t.care_of));
        assert_eq!(bu.lifetime == 0, bul.state() == BulState::Deregistering);
    }
    while bul.poll_event().is_some() {}
    assert_eq!(bul.poll_timeout().is_none(), bul.state() == BulState::Idle);
}

fn run(u: &mut Unstructured<'_>) -> Result<()> {
    let t0 = Instant::now();
    let mut now = t0;
    let mut cache = BindingCache::new(CacheConfig {
        max_entries: MAX_ENTRIES,
        max_lifetime: Duration::from_secs(60),
        refresh_request_lead: Duration::from_secs(5),
        key_management_mobility: u.arbitrary()?,
    });
    let mut bul = HomeRegistration::new(
        BulConfig {
            lifetime: Duration::from_secs(u.int_in_range(0..=100)?),
            max_deregistration_transmissions: 3,
            ..BulConfig::default()
        },
        SRC,
        HA,
        u.arbitrary()?,
    );
    let mut buf = Vec::new();
    for _ in 0..MAX_OPS {
        if u.is_empty() {
            break;
        }
        match u.int_in_range(0..=8u8)? {
            0..=2 => check_bu(&mut cache, now, u)?,
            3 | 4 => {
                if u.ratio(1, 2)? {
                    now += Duration::from_millis(u.int_in_range(0..=120_000)?);
                } else if let Some(t) = [cache.poll_timeout(), bul.poll_timeout()]
                    .into_iter()
                    .flatten()
                    .min()
                {
                    now = now.max(t);
                }
                cache.handle_timeout(now);
                bul.handle_timeout(now);
                for b in cache.iter() {
                    assert!(b.expires_at > now, "expired binding kept");
                }
            }
            5 => {
                let _ = cache.remove(&hoa(u.int_in_range(0..=5)?));
            }
            6 => {
                if u.ratio(3, 4)? {
                    let coa = pick_coa(u, SRC)?;
                    bul.register(now, coa);
                } else {
                    let _ = bul.deregister(now);
                }
            }
            7 => {
                if let Some(ba) = binding_ack(u, &bul, now)? {
                    let _ = bul.handle_ba(now, &ba);
                }
            }
            _ => {
                let _ = bul.handle_brr(now);
            }
        }
        drain(&mut cache, &mut bul, now, &mut buf);
        assert!(cache.len() <= MAX_ENTRIES);
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    check_mh(data);
    check_packet(data);
    let _ = run(&mut Unstructured::new(data));
});
