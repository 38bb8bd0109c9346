//! From what Quick Mode negotiated (`ikev1::ChildSa`) to what the ESP data plane installs
//! (`esp::SaParams`, one per direction, and the outbound SPD entry).
//!
//! Selectors: an `ikev1::TrafficSelector` carries a prefix, a next protocol (0 = any) and a
//! port (0 = any); IKEv1 cannot express the Mobility Header type (RFC 3776 §4.3), so it is left
//! open. The SA's selector is written from our side (`src` = our selector).

use std::net::{IpAddr, Ipv6Addr};

use esp::{Direction, Lifetime, Limits, Mode, Prefix, SaParams, Selector, Transform};
use ikev1::{ChildSa, EspEncr, EspInteg, TrafficSelector};

/// Why a negotiated SA cannot be installed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConvertError {
    /// The data plane is IPv6 only.
    #[error("selector {0} is not IPv6")]
    NotIpv6(TrafficSelector),
    /// A transform the data plane does not offer.
    #[error("ESP transform {0} is not supported by the data plane")]
    Transform(String),
}

fn prefix(ts: &TrafficSelector) -> Result<Prefix, ConvertError> {
    match ts.addr {
        IpAddr::V6(a) => Ok(Prefix::new(a, ts.prefix_len)),
        IpAddr::V4(_) => Err(ConvertError::NotIpv6(*ts)),
    }
}

/// The data plane's selector for a child SA, from our side.
pub fn selector(child: &ChildSa) -> Result<Selector, ConvertError> {
    let (l, r) = (&child.local_ts, &child.remote_ts);
    // IKEv1 has one protocol per ID; both IDs name the same one when it is set.
    let proto = [l.protocol, r.protocol].into_iter().find(|p| *p != 0);
    Ok(Selector {
        src: prefix(l)?,
        dst: prefix(r)?,
        next_proto: proto,
        src_port: (l.port != 0).then_some(l.port),
        dst_port: (r.port != 0).then_some(r.port),
        mh_type: None,
    })
}

fn transform(child: &ChildSa) -> Result<Transform, ConvertError> {
    let p = child.proposal;
    Ok(match (p.encr, p.integ) {
        (EspEncr::AesGcm16 { bits }, None) => Transform::AesGcm16 { key_bits: bits },
        (EspEncr::AesCbc { bits }, Some(EspInteg::HmacSha1_96)) => {
            Transform::AesCbcHmacSha1_96 { key_bits: bits }
        }
        (EspEncr::AesCbc { bits }, Some(EspInteg::HmacSha256_128)) => {
            Transform::AesCbcHmacSha256_128 { key_bits: bits }
        }
        _ => return Err(ConvertError::Transform(p.to_string())),
    })
}

/// The inbound and outbound SAs of a child SA.
pub fn sa_params(child: &ChildSa) -> Result<(SaParams, SaParams), ConvertError> {
    let mode = match child.mode {
        ikev1::Mode::Tunnel => Mode::Tunnel,
        ikev1::Mode::Transport => Mode::Transport,
    };
    let t = transform(child)?;
    let sel = selector(child)?;
    // Soft at 90 % of the negotiated lifetime; the IKE engine rekeys before that anyway.
    let mut life = Lifetime::UNLIMITED;
    life.hard = Limits {
        time: Some(child.lifetime),
        bytes: child.life_kbytes.map(|k| k * 1024),
        packets: None,
    };
    life.soft = Limits {
        time: Some(child.lifetime.mul_f32(0.9)),
        bytes: child.life_kbytes.map(|k| k * 1024 / 10 * 9),
        packets: None,
    };
    let make = |spi, dir, keys: &ikev1::EspKeys| {
        SaParams::new(spi, dir, mode, t, &keys.encr, &keys.integ)
            .with_endpoints(child.local, child.remote)
            .with_udp_encap(child.udp_encap)
            .with_selector(sel)
            .with_lifetime(life)
    };
    Ok((
        make(child.spi_in, Direction::Inbound, &child.keys_in),
        make(child.spi_out, Direction::Outbound, &child.keys_out),
    ))
}

/// The IPv6 address of a host selector, if it is one.
pub fn host_addr(ts: &TrafficSelector) -> Option<Ipv6Addr> {
    match ts.addr {
        IpAddr::V6(a) if ts.prefix_len == 128 => Some(a),
        _ => None,
    }
}
