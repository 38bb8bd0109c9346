//! The running tunnel shared by `mip6-ha` and `mip6-mn`: the sans-IO IKEv1 engine (`ikev1`)
//! and ESP data plane (`esp`) driven over the tokio drivers of `netio` (UDP 500/4500, the raw
//! ESP socket, the TUN device). The daemons own the policy: which peers, which addresses and
//! routes, what to do with each event.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod convert;
mod driver;

pub use driver::{
    ChildInfo, Handle, LocalCounters, LocalDatagram, LocalPayload, LocalUdp, Snapshot, TunInfo,
    Tunnel, TunnelConfig, TunnelError, spawn,
};
