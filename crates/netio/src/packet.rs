//! An `AF_PACKET` reader (`man 7 packet`) for IPv6 packets with a given first next header on one
//! interface. The kernel drops Mobile IPv6 packets it cannot process (a Home Address
//! destination option, RFC 6275 §6.3, without kernel MIPv6 support); a packet socket still sees
//! a copy of them before that happens.
//!
//! The socket is `SOCK_DGRAM` with protocol `ETH_P_IPV6`, so data starts at the IPv6 header.
//! A classic BPF filter (`SO_ATTACH_FILTER`) keeps only packets whose IPv6 Next Header field
//! (byte 6) equals the wanted value, so the kernel copies nothing else to user space, and
//! `PACKET_IGNORE_OUTGOING` hides the host's own transmissions.

use std::io::{self, Read};
use std::os::fd::AsRawFd;

use socket2::{Domain, Protocol, SockFilter, Socket, Type};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

use crate::{Error, Result};

const ETH_P_IPV6: u16 = 0x86dd;

/// Reads IPv6 packets of one next header from one interface (copies; the kernel still
/// processes or drops the originals).
#[derive(Debug)]
pub struct PacketSocket {
    fd: AsyncFd<Socket>,
}

#[allow(unsafe_code)]
fn bind_ll(sock: &Socket, ifindex: u32) -> io::Result<()> {
    let sll = libc::sockaddr_ll {
        sll_family: libc::AF_PACKET as u16,
        sll_protocol: ETH_P_IPV6.to_be(),
        sll_ifindex: ifindex as i32,
        sll_hatype: 0,
        sll_pkttype: 0,
        sll_halen: 0,
        sll_addr: [0; 8],
    };
    // SAFETY: `sll` is a fully initialised sockaddr_ll and the length passed is its size.
    let ret = unsafe {
        libc::bind(
            sock.as_raw_fd(),
            std::ptr::from_ref(&sll).cast(),
            size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

impl PacketSocket {
    /// Opens the reader on interface `ifindex` for packets whose IPv6 header's Next Header is
    /// `next_header` (e.g. 60, Destination Options, for packets with a Home Address option).
    pub fn open(ifindex: u32, next_header: u8) -> Result<Self> {
        let what =
            format!("packet socket on interface index {ifindex} for next header {next_header}");
        let sock = Socket::new(
            Domain::PACKET,
            Type::DGRAM,
            Some(Protocol::from(i32::from(ETH_P_IPV6.to_be()))),
        )
        .map_err(|e| Error::io("open", &what, e))?;
        // ld b[6]; jeq #nh, accept, drop (classic BPF, offsets from the network header).
        let filter = [
            SockFilter::new(0x30, 0, 0, 6),
            SockFilter::new(0x15, 0, 1, u32::from(next_header)),
            SockFilter::new(0x06, 0, 0, 0xffff),
            SockFilter::new(0x06, 0, 0, 0),
        ];
        sock.attach_filter(&filter)
            .map_err(|e| Error::io("attach BPF filter", &what, e))?;
        // Linux 4.20+: our own outgoing packets are not looped back to the reader.
        if let Err(e) = crate::sys::set_int_opt(
            sock.as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_IGNORE_OUTGOING,
            1,
        ) {
            tracing::debug!(error = %e, "PACKET_IGNORE_OUTGOING not available");
        }
        bind_ll(&sock, ifindex).map_err(|e| Error::io("bind", &what, e))?;
        sock.set_nonblocking(true)
            .map_err(|e| Error::io("set O_NONBLOCK", &what, e))?;
        let fd = crate::socket::register(sock)
            .map_err(|e| Error::io("register with tokio", &what, e))?;
        Ok(Self { fd })
    }

    /// Receives one packet, starting at the IPv6 header. Packets longer than `buf` are cut.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.fd
            .async_io(Interest::READABLE, |s| {
                let mut r: &Socket = s;
                r.read(buf)
            })
            .await
    }
}
