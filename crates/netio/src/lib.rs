//! Tokio drivers for the mip6-bootstrap daemons: the only crate of the workspace that touches
//! the operating system's network stack. It moves bytes and configures the kernel; it holds no
//! protocol logic (the protocol crates are sans-IO and are wired to these drivers by the
//! binaries).
//!
//! ```text
//!   ikev1 engine ──► IkeSocket (UDP 500, UDP 4500: IKE + ESP-in-UDP) ──► network
//!   esp engine   ──► EspSocket (raw IPv6, protocol 50)                ──► network
//!   esp engine   ◄─► Tun (IPv6 packets of the host, batched, optional GSO/GRO)
//!   daemons      ──► Netlink + NetConfigGuard (addresses, routes, proxy NDP, links)
//!                ──► sysctl (forwarding, proxy_ndp, addr_gen_mode)
//! ```
//!
//! * [`IkeSocket`]: UDP bound to an IPv6 address or `[::]`, with `IPV6_RECVPKTINFO`: every
//!   datagram comes with the local address it was sent to, and replies are sent from a chosen
//!   source address (`IPV6_PKTINFO`). `recvmmsg`/`sendmmsg` batches, UDP GSO on send and
//!   UDP GRO on receive (ESP in UDP, RFC 3948), probed per socket with a fallback.
//! * [`EspSocket`]: raw IPv6 socket for protocol 50. Receives start at the SPI (IPv6 raw
//!   sockets never include the IPv6 header).
//! * [`Tun`]: TUN device with `IFF_NO_PI`, no automatic link-local, optional offload and
//!   multi-queue; batched reads and writes.
//! * [`Netlink`]: rtnetlink requests (link up/down, MTU, `addr_gen_mode`, addresses, routes,
//!   proxy neighbours, link deletion, dumps). [`NetConfigGuard`] tracks what was added and
//!   removes exactly that in its async [`NetConfigGuard::cleanup`].
//! * [`sysctl`]: `/proc/sys/net/ipv6/conf/*` writes.
//! * [`PacketSocket`]: an `AF_PACKET` reader for IPv6 packets of one next header on one
//!   interface (Mobile IPv6 packets with a Home Address option, which the kernel drops).
//!
//! # Namespaces and threads
//!
//! Sockets, the TUN device, netlink sockets and `/proc/sys/net` all belong to the network
//! namespace of the **thread** that creates or opens them. A daemon lives in one namespace and
//! need not care; tests move a dedicated thread into a namespace with `setns(2)` and run a
//! current-thread tokio runtime there. Never do namespace-dependent work in `spawn_blocking`.
//!
//! # Errors
//!
//! Set-up calls return [`Error`], which names the interface, address or file involved.
//! Per-packet calls return [`std::io::Result`] and never panic on what the network sends.
//!
//! # Unsafe
//!
//! The workspace denies `unsafe_code`. This crate allows it item by item, only for FFI (in
//! `sys` and `packet`), each block with a `// SAFETY:` comment.

#![warn(missing_docs)]

mod error;
mod guard;
mod netlink;
pub mod nft;
pub mod offload;
mod packet;
mod socket;
mod sys;
pub mod sysctl;
mod tun;

pub use error::{Error, Result};
pub use guard::NetConfigGuard;
pub use netlink::{AddressEntry, AddressOptions, Link, LinkInfo, Netlink, Route, RouteEntry};
pub use packet::PacketSocket;
pub use socket::{
    Datagrams, EspSocket, GSO_MAX_BYTES, GSO_MAX_SEGMENTS, IPPROTO_ESP, IkeSocket, MAX_BATCH,
    RawIpSocket, RecvMeta, Transmit,
};
pub use tun::{TUN_HEADROOM, Tun, TunConfig, TunRecvBatch, TunSendBatch};
