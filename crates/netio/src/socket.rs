//! IKE UDP sockets (ports 500 and 4500) and the raw ESP socket (IP protocol 50), as tokio
//! drivers that learn the local address of every datagram.
//!
//! Both kinds set `IPV6_RECVPKTINFO` (RFC 3542 §6.1), so a socket bound to `[::]` still tells
//! which of the host's addresses a datagram was sent to, and both send with an `IPV6_PKTINFO`
//! control message naming the source address, so an answer leaves from the address the request
//! arrived at (RFC 2408 and RFC 7296 §2.11 expect that; NAT-T's NAT-D hashes depend on it).
//!
//! Batches: [`IkeSocket::recv_batch`]/[`IkeSocket::send_batch`] (and the ESP equivalents) move
//! up to [`MAX_BATCH`] datagrams per `recvmmsg`/`sendmmsg` system call, which is what ESP in
//! UDP 4500 needs for throughput. [`IkeSocket::send_segmented`] and a [`Transmit`] with a
//! `segment_size` use UDP GSO (`UDP_SEGMENT`): one call and one pass through the stack for many
//! equal-sized datagrams. [`IkeSocket::enable_gro`] asks for the reverse (UDP GRO): the kernel
//! may hand a run of datagrams of one flow over in one buffer, which
//! [`RecvMeta::datagrams`] cuts back into the datagrams the peer sent. Both are probed when the
//! socket is made; where the kernel refuses them the datagrams go one by one, as before (logged
//! once, at debug).
//!
//! Port 4500 carries IKE and ESP in UDP (RFC 3948 §2.2): the caller demultiplexes, IKE
//! messages start with the four-byte non-ESP marker (all zero). No `UDP_ENCAP` socket option is
//! set: with it the kernel would hand ESP to XFRM, which these kernels do not have.
//!
//! The raw ESP socket sees every ESP packet of the network namespace (demultiplex by SPI) and,
//! as always for IPv6 raw sockets, **without the IPv6 header** (RFC 3542 §3): data starts at the
//! SPI; the source comes from `recvfrom`, the destination from `IPV6_PKTINFO`. With no kernel
//! ESP the packet is consumed by the raw socket and no ICMP error is generated.
//!
//! Sockets must be created inside a tokio runtime (they register with its reactor) and in the
//! network namespace they are meant for: the namespace of the creating thread.

use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

use crate::sys;
pub use crate::sys::{Datagrams, GSO_MAX_BYTES, GSO_MAX_SEGMENTS, MAX_BATCH, RecvMeta, Transmit};
use crate::{Error, Result};

/// IP protocol number of ESP (RFC 4303).
pub const IPPROTO_ESP: i32 = 50;

/// Registers a socket with the tokio reactor for reading and writing.
#[allow(unsafe_code)]
pub(crate) fn register(sock: Socket) -> io::Result<AsyncFd<Socket>> {
    // SAFETY: `sock` owns a valid descriptor, and the AsyncFd owns `sock` from here on: the
    // descriptor is neither closed nor replaced while registered (it is closed only when the
    // AsyncFd, and with it the Socket, is dropped, after deregistration).
    unsafe { AsyncFd::register_with_interest(sock, Interest::READABLE | Interest::WRITABLE) }
        .map_err(io::Error::from)
}

/// A non-blocking datagram socket registered with tokio, with pktinfo I/O.
#[derive(Debug)]
struct Dgram {
    fd: AsyncFd<Socket>,
    /// UDP GSO works on this socket (probed when it was made; cleared when the kernel refuses
    /// a GSO send for a reason that will not go away).
    gso: AtomicBool,
}

impl Dgram {
    fn new(sock: Socket, what: &str) -> Result<Self> {
        sys::set_recv_pktinfo(sock.as_raw_fd())
            .map_err(|e| Error::io("set IPV6_RECVPKTINFO", what, e))?;
        sock.set_nonblocking(true)
            .map_err(|e| Error::io("set O_NONBLOCK", what, e))?;
        let fd = register(sock).map_err(|e| Error::io("register with tokio", what, e))?;
        Ok(Self {
            fd,
            gso: AtomicBool::new(false),
        })
    }

    /// Probes UDP GSO (UDP sockets only).
    fn probe_gso(&self, what: &str) {
        match sys::probe_udp_gso(self.raw()) {
            Ok(()) => self.gso.store(true, Ordering::Relaxed),
            Err(e) => {
                tracing::debug!(socket = what, error = %e, "no UDP GSO: datagrams are sent one by one");
            }
        }
    }

    fn gso(&self) -> bool {
        self.gso.load(Ordering::Relaxed)
    }

    fn set_buffer_sizes(&self, recv: usize, send: usize) -> io::Result<()> {
        let fd = self.raw();
        let s = self.fd.get_ref();
        let clamp = |v: usize| libc::c_int::try_from(v).unwrap_or(libc::c_int::MAX);
        // SO_*BUFFORCE ignores net.core.[rw]mem_max but needs CAP_NET_ADMIN.
        if recv > 0
            && sys::set_int_opt(fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, clamp(recv)).is_err()
        {
            s.set_recv_buffer_size(recv)?;
        }
        if send > 0
            && sys::set_int_opt(fd, libc::SOL_SOCKET, libc::SO_SNDBUFFORCE, clamp(send)).is_err()
        {
            s.set_send_buffer_size(send)?;
        }
        Ok(())
    }

    fn raw(&self) -> i32 {
        self.fd.get_ref().as_raw_fd()
    }

    async fn recv_meta(&self, buf: &mut [u8]) -> io::Result<RecvMeta> {
        loop {
            let meta = self
                .fd
                .async_io(Interest::READABLE, |s| sys::recv_one(s.as_raw_fd(), buf))
                .await?;
            if !meta.truncated {
                return Ok(meta);
            }
            tracing::debug!(from = %meta.from, buf = buf.len(), "dropped datagram: longer than the buffer");
        }
    }

    async fn send(
        &self,
        data: &[u8],
        dst: &SocketAddrV6,
        src: Option<Ipv6Addr>,
        segment: Option<u16>,
    ) -> io::Result<usize> {
        self.fd
            .async_io(Interest::WRITABLE, |s| {
                sys::send_one(s.as_raw_fd(), data, dst, src, segment)
            })
            .await
    }

    async fn recv_batch<B: AsMut<[u8]>>(
        &self,
        bufs: &mut [B],
        metas: &mut [RecvMeta],
    ) -> io::Result<usize> {
        self.fd
            .async_io(Interest::READABLE, |s| {
                sys::recv_many(s.as_raw_fd(), bufs, metas)
            })
            .await
    }

    fn try_recv_batch<B: AsMut<[u8]>>(
        &self,
        bufs: &mut [B],
        metas: &mut [RecvMeta],
    ) -> io::Result<usize> {
        sys::recv_many(self.raw(), bufs, metas)
    }

    /// Sends all of `msgs`, in `sendmmsg` calls of up to [`MAX_BATCH`] messages. A message
    /// with a segment size goes out as one UDP GSO send where the socket has GSO and the
    /// message is within the kernel's limits ([`GSO_MAX_SEGMENTS`], [`GSO_MAX_BYTES`]), else as
    /// its datagrams one by one. A datagram the kernel refuses (no route, message too long, ...)
    /// is skipped and logged, like a loss on the wire; a refused GSO send is retried as single
    /// datagrams. Returns how many datagrams the kernel took; fails only if it took none, with
    /// the last error.
    async fn send_batch(&self, msgs: &[Transmit<'_>]) -> io::Result<usize> {
        let mut staged = [EMPTY; MAX_BATCH];
        let mut n = 0;
        let mut sent = 0;
        let mut last_err = None;
        for t in msgs {
            let single = t.is_single();
            if single || (self.gso() && t.is_gso()) {
                if n == MAX_BATCH {
                    self.send_staged(&staged[..n], &mut sent, &mut last_err)
                        .await;
                    n = 0;
                }
                staged[n] = Transmit {
                    segment_size: t.segment_size.filter(|_| !single),
                    ..*t
                };
                n += 1;
                continue;
            }
            for d in t.segments() {
                if n == MAX_BATCH {
                    self.send_staged(&staged[..n], &mut sent, &mut last_err)
                        .await;
                    n = 0;
                }
                staged[n] = d;
                n += 1;
            }
        }
        if n > 0 {
            self.send_staged(&staged[..n], &mut sent, &mut last_err)
                .await;
        }
        match last_err {
            Some(e) if sent == 0 => Err(e),
            _ => Ok(sent),
        }
    }

    /// `sendmmsg` over `msgs` (valid GSO sends or single datagrams), counting datagrams sent.
    async fn send_staged(
        &self,
        msgs: &[Transmit<'_>],
        sent: &mut usize,
        last_err: &mut Option<io::Error>,
    ) {
        let mut done = 0;
        while done < msgs.len() {
            let rest = &msgs[done..];
            match self.send_many(rest).await {
                Ok(k) => {
                    *sent += rest[..k].iter().map(datagram_count).sum::<usize>();
                    done += k;
                }
                Err(e) if rest[0].segment_size.is_some() => {
                    // EIO: the route's device cannot checksum UDP (GSO needs it); ENOPROTOOPT,
                    // EOPNOTSUPP: no GSO at all. Neither will change, so stop trying. EINVAL
                    // (a segment longer than the path MTU) is this message's own problem.
                    let permanent = matches!(
                        e.raw_os_error(),
                        Some(libc::EIO | libc::ENOPROTOOPT | libc::EOPNOTSUPP)
                    );
                    if permanent && self.gso.swap(false, Ordering::Relaxed) {
                        tracing::debug!(dst = %rest[0].dst, error = %e, "UDP GSO send refused: datagrams are sent one by one from now on");
                    } else {
                        tracing::trace!(dst = %rest[0].dst, error = %e, "UDP GSO send refused; sent one by one");
                    }
                    // A staged GSO send has at most GSO_MAX_SEGMENTS datagrams.
                    let mut single = [EMPTY; GSO_MAX_SEGMENTS];
                    let mut k = 0;
                    for d in rest[0].segments().take(GSO_MAX_SEGMENTS) {
                        single[k] = d;
                        k += 1;
                    }
                    let mut j = 0;
                    while j < k {
                        match self.send_many(&single[j..k]).await {
                            Ok(m) => {
                                *sent += m;
                                j += m;
                            }
                            Err(e) => {
                                dropped(&single[j], e, last_err);
                                j += 1;
                            }
                        }
                    }
                    done += 1;
                }
                Err(e) => {
                    dropped(&rest[0], e, last_err);
                    done += 1;
                }
            }
        }
    }

    async fn send_many(&self, msgs: &[Transmit<'_>]) -> io::Result<usize> {
        self.fd
            .async_io(Interest::WRITABLE, |s| sys::send_many(s.as_raw_fd(), msgs))
            .await
    }
}

fn dropped(t: &Transmit<'_>, e: io::Error, last_err: &mut Option<io::Error>) {
    tracing::debug!(dst = %t.dst, error = %e, "dropped datagram: send failed");
    *last_err = Some(e);
}

/// A placeholder for the stack arrays of [`Dgram::send_batch`].
const EMPTY: Transmit<'static> = Transmit {
    data: &[],
    dst: SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, 0, 0, 0),
    src: None,
    segment_size: None,
};

/// How many datagrams a staged message is.
fn datagram_count(t: &Transmit<'_>) -> usize {
    t.data.len().div_ceil(t.stride().max(1)).max(1)
}

fn v6(addr: SocketAddr, op: &'static str) -> io::Result<SocketAddrV6> {
    match addr {
        SocketAddr::V6(a) => Ok(a),
        // Only IPv6 is spoken here; an IPv4 address is a caller bug.
        SocketAddr::V4(a) => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{op}: {a} is not an IPv6 address"),
        )),
    }
}

fn local_of(meta: &RecvMeta, port: u16) -> SocketAddrV6 {
    let scope = if meta.dst.is_unicast_link_local() || meta.dst.is_multicast() {
        meta.ifindex
    } else {
        0
    };
    SocketAddrV6::new(meta.dst, port, 0, scope)
}

/// A UDP socket for IKE (port 500) or IKE + ESP in UDP (port 4500) that reports the local
/// address of each datagram.
#[derive(Debug)]
pub struct IkeSocket {
    inner: Dgram,
    local: SocketAddrV6,
}

impl IkeSocket {
    /// Sets the socket's receive and send buffer sizes in bytes (0: leave as is). With
    /// `CAP_NET_ADMIN` the `net.core.[rw]mem_max` limits do not apply (`SO_RCVBUFFORCE`);
    /// otherwise the kernel clamps to them. The kernel doubles the value for its bookkeeping.
    /// Bursts of ESP need more than the default 208 KiB, which holds only about 200 datagrams.
    pub fn set_buffer_sizes(&self, recv: usize, send: usize) -> io::Result<()> {
        self.inner.set_buffer_sizes(recv, send)
    }

    /// Binds UDP on `addr` (an IPv6 address, or `[::]` for all; port 0 picks one). The socket
    /// is IPv6-only and has `IPV6_RECVPKTINFO`. No `SO_REUSEADDR`: if another IKE daemon
    /// (charon) holds the port, this fails with `EADDRINUSE` instead of silently sharing it.
    pub fn bind(addr: SocketAddr) -> Result<Self> {
        let what = addr.to_string();
        let SocketAddr::V6(addr) = addr else {
            return Err(Error::invalid(
                "bind IKE socket",
                format!("{addr} is not IPv6"),
            ));
        };
        let sock = Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::UDP))
            .map_err(|e| Error::io("open UDP socket", &what, e))?;
        sock.set_only_v6(true)
            .map_err(|e| Error::io("set IPV6_V6ONLY", &what, e))?;
        sock.bind(&SocketAddr::V6(addr).into())
            .map_err(|e| Error::io("bind UDP", &what, e))?;
        let local = sock
            .local_addr()
            .ok()
            .and_then(|a| a.as_socket_ipv6())
            .unwrap_or(addr);
        let inner = Dgram::new(sock, &what)?;
        inner.probe_gso(&what);
        Ok(Self { inner, local })
    }

    /// Whether UDP GSO sends go out as one system call on this socket (see [`Transmit`]'s
    /// `segment_size`). False when the kernel has no GSO or refused it; GSO sends are then cut
    /// into single datagrams here.
    pub fn gso(&self) -> bool {
        self.inner.gso()
    }

    /// Asks the kernel for UDP GRO on this socket: from now on one receive may return several
    /// datagrams of one flow back to back, with their size in [`RecvMeta::segment_size`]; cut
    /// them with [`RecvMeta::datagrams`] (use [`Self::recv_meta`] or the batch receives, not
    /// [`Self::recv`], which sees only one buffer). Returns false, logged at debug, when the
    /// kernel refuses (before Linux 5.0); datagrams then keep arriving one per buffer. Give
    /// each receive a buffer of 64 KiB, the largest GRO buffer.
    pub fn enable_gro(&self) -> bool {
        match sys::set_udp_gro(self.inner.raw()) {
            Ok(()) => true,
            Err(e) => {
                tracing::debug!(local = %self.local, error = %e, "no UDP GRO: datagrams arrive one by one");
                false
            }
        }
    }

    /// The bound address (with the port the kernel chose if 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        SocketAddr::V6(self.local)
    }

    /// The underlying socket, e.g. to set buffer sizes.
    pub fn socket(&self) -> &Socket {
        self.inner.fd.get_ref()
    }

    /// Receives one datagram: `(length, from, local)`, where `local` is the address the
    /// datagram was sent to (from `IPV6_PKTINFO`) with this socket's port. Datagrams longer than
    /// `buf` are dropped (logged at debug) and the call waits for the next one.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr, SocketAddr)> {
        let m = self.inner.recv_meta(buf).await?;
        Ok((
            m.len,
            SocketAddr::V6(m.from),
            SocketAddr::V6(local_of(&m, self.local.port())),
        ))
    }

    /// Like [`Self::recv`], with everything the kernel reported (interface index included).
    pub async fn recv_meta(&self, buf: &mut [u8]) -> io::Result<RecvMeta> {
        self.inner.recv_meta(buf).await
    }

    /// Sends `data` to `to` from the local address `from` (its port is ignored: this socket's
    /// port is used). An unspecified `from` lets the kernel choose the source address.
    pub async fn send(&self, data: &[u8], from: SocketAddr, to: SocketAddr) -> io::Result<usize> {
        let to = v6(to, "send")?;
        let from = v6(from, "send")?;
        self.inner.send(data, &to, Some(*from.ip()), None).await
    }

    /// UDP GSO: sends `data` as consecutive datagrams of `segment_size` bytes (the last may be
    /// shorter) with one system call. At most [`GSO_MAX_SEGMENTS`] segments and
    /// [`GSO_MAX_BYTES`] in total per call. Without GSO ([`Self::gso`] false) the datagrams go
    /// out one by one. Returns the bytes sent.
    pub async fn send_segmented(
        &self,
        data: &[u8],
        segment_size: u16,
        from: SocketAddr,
        to: SocketAddr,
    ) -> io::Result<usize> {
        let to = v6(to, "send_segmented")?;
        let from = v6(from, "send_segmented")?;
        if self.inner.gso() {
            return self
                .inner
                .send(data, &to, Some(*from.ip()), Some(segment_size))
                .await;
        }
        let t = Transmit {
            data,
            dst: to,
            src: Some(*from.ip()),
            segment_size: Some(segment_size),
        };
        let n = self.inner.send_batch(&[t]).await?;
        Ok(t.segments().take(n).map(|d| d.data.len()).sum())
    }

    /// Receives up to `min(bufs.len(), metas.len(), MAX_BATCH)` datagrams with one `recvmmsg`,
    /// waiting until at least one is there. `metas[i]` describes `bufs[i]`; entries with
    /// `truncated` set must be dropped. The local address of entry `i` is
    /// `(metas[i].dst, self.local_addr().port())`.
    pub async fn recv_batch<B: AsMut<[u8]>>(
        &self,
        bufs: &mut [B],
        metas: &mut [RecvMeta],
    ) -> io::Result<usize> {
        self.inner.recv_batch(bufs, metas).await
    }

    /// Non-blocking [`Self::recv_batch`]: `WouldBlock` when nothing is queued.
    pub fn try_recv_batch<B: AsMut<[u8]>>(
        &self,
        bufs: &mut [B],
        metas: &mut [RecvMeta],
    ) -> io::Result<usize> {
        self.inner.try_recv_batch(bufs, metas)
    }

    /// Sends every datagram of `msgs` with `sendmmsg` (up to [`MAX_BATCH`] messages per call);
    /// a message with a `segment_size` is a UDP GSO send of several datagrams (cut into single
    /// datagrams here when the socket has no GSO or the kernel refuses it). Returns how many
    /// datagrams the kernel accepted; refused ones are logged and skipped, and the call fails
    /// only if all of them were refused.
    pub async fn send_batch(&self, msgs: &[Transmit<'_>]) -> io::Result<usize> {
        self.inner.send_batch(msgs).await
    }
}

/// A raw IPv6 socket for ESP (IP protocol 50).
#[derive(Debug)]
pub struct EspSocket {
    inner: Dgram,
    local: Option<Ipv6Addr>,
}

impl EspSocket {
    /// Sets the socket's receive and send buffer sizes in bytes (0: leave as is). With
    /// `CAP_NET_ADMIN` the `net.core.[rw]mem_max` limits do not apply (`SO_RCVBUFFORCE`);
    /// otherwise the kernel clamps to them. The kernel doubles the value for its bookkeeping.
    /// Bursts of ESP need more than the default 208 KiB, which holds only about 200 datagrams.
    pub fn set_buffer_sizes(&self, recv: usize, send: usize) -> io::Result<()> {
        self.inner.set_buffer_sizes(recv, send)
    }

    /// Opens a raw ESP socket. With `Some(addr)` it is bound to that local address and only
    /// receives ESP sent to it; with `None` it receives all ESP of the namespace.
    pub fn open(local: Option<Ipv6Addr>) -> Result<Self> {
        let what = match local {
            Some(a) => format!("raw ESP socket on {a}"),
            None => "raw ESP socket".to_owned(),
        };
        let sock = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::from(IPPROTO_ESP)))
            .map_err(|e| Error::io("open", &what, e))?;
        if let Some(a) = local.filter(|a| !a.is_unspecified()) {
            sock.bind(&SocketAddr::new(IpAddr::V6(a), 0).into())
                .map_err(|e| Error::io("bind", &what, e))?;
        }
        Ok(Self {
            inner: Dgram::new(sock, &what)?,
            local,
        })
    }

    /// The address the socket is bound to, if any.
    pub fn local_addr(&self) -> Option<Ipv6Addr> {
        self.local
    }

    /// The underlying socket, e.g. to set buffer sizes.
    pub fn socket(&self) -> &Socket {
        self.inner.fd.get_ref()
    }

    /// Receives one ESP packet (starting at the SPI): `(length, source, destination)`.
    /// Packets longer than `buf` are dropped (logged at debug).
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<(usize, Ipv6Addr, Ipv6Addr)> {
        let m = self.inner.recv_meta(buf).await?;
        Ok((m.len, *m.from.ip(), m.dst))
    }

    /// Like [`Self::recv`], with everything the kernel reported (interface index included).
    pub async fn recv_meta(&self, buf: &mut [u8]) -> io::Result<RecvMeta> {
        self.inner.recv_meta(buf).await
    }

    /// Sends one ESP packet (`data` starts at the SPI; the kernel adds the IPv6 header) from
    /// `src` (unspecified: the kernel chooses) to `dst`.
    pub async fn send(&self, data: &[u8], src: Ipv6Addr, dst: Ipv6Addr) -> io::Result<usize> {
        let dst = SocketAddrV6::new(dst, 0, 0, 0);
        self.inner.send(data, &dst, Some(src), None).await
    }

    /// Batched receive, see [`IkeSocket::recv_batch`]; `metas[i].from` has port 0.
    pub async fn recv_batch<B: AsMut<[u8]>>(
        &self,
        bufs: &mut [B],
        metas: &mut [RecvMeta],
    ) -> io::Result<usize> {
        self.inner.recv_batch(bufs, metas).await
    }

    /// Non-blocking [`Self::recv_batch`].
    pub fn try_recv_batch<B: AsMut<[u8]>>(
        &self,
        bufs: &mut [B],
        metas: &mut [RecvMeta],
    ) -> io::Result<usize> {
        self.inner.try_recv_batch(bufs, metas)
    }

    /// Batched send, see [`IkeSocket::send_batch`]. The destination port must be 0. Raw
    /// sockets have no GSO: messages with a `segment_size` go out as single datagrams.
    pub async fn send_batch(&self, msgs: &[Transmit<'_>]) -> io::Result<usize> {
        self.inner.send_batch(msgs).await
    }
}

/// A raw IPv6 socket that sends whole IPv6 packets (`IPPROTO_RAW`, which implies
/// `IPV6_HDRINCL`, `man 7 raw`): for packets whose extension headers the kernel would not build
/// itself, such as transport-mode ESP behind a Home Address destination option (RFC 6275 §6.3)
/// or a type 2 Routing header (§6.4). Send only; it receives nothing.
#[derive(Debug)]
pub struct RawIpSocket {
    inner: Dgram,
}

impl RawIpSocket {
    /// Opens the socket (needs `CAP_NET_RAW`).
    pub fn open() -> Result<Self> {
        let what = "raw IPv6 socket (IPPROTO_RAW)";
        let sock = Socket::new(
            Domain::IPV6,
            Type::RAW,
            Some(Protocol::from(libc::IPPROTO_RAW)),
        )
        .map_err(|e| Error::io("open", what, e))?;
        Ok(Self {
            inner: Dgram::new(sock, what)?,
        })
    }

    /// Sends `packet`, which starts with its IPv6 header; `dst` (the header's destination)
    /// decides the route.
    pub async fn send(&self, packet: &[u8], dst: Ipv6Addr) -> io::Result<usize> {
        let dst = SocketAddrV6::new(dst, 0, 0, 0);
        self.inner.send(packet, &dst, None, None).await
    }
}
