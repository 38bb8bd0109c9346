//! The system calls socket2 and tokio do not wrap: `recvmsg`/`sendmsg` with an `IPV6_PKTINFO`
//! control message, their batched forms `recvmmsg`/`sendmmsg` (man 2 recvmmsg, sendmmsg), UDP
//! GSO (`UDP_SEGMENT`, Linux 4.18) and UDP GRO (`UDP_GRO`, Linux 5.0), and the `setsockopt`
//! calls without a socket2 setter (`IPV6_RECVPKTINFO`, RFC 3542 §6.1).
//!
//! UDP GSO and GRO (man 7 udp): with `UDP_SEGMENT` one `sendmsg` hands the kernel a buffer of
//! several datagrams of `segment_size` bytes each (the last may be shorter), all to the same
//! destination; the stack carries them as one packet as far as it can and cuts them at the
//! device or, on a veth or loopback path, not at all. With `UDP_GRO` set, a receive may return
//! such a run of datagrams in one buffer, with their size in a `UDP_GRO` control message
//! ([`RecvMeta::segment_size`]); [`RecvMeta::datagrams`] cuts it back into datagrams.
//!
//! This is the only module with `unsafe` besides the raw `AF_PACKET` reader: every item that
//! needs it carries its own `#[allow(unsafe_code)]` and every block a `// SAFETY:` comment. The
//! functions work on non-blocking descriptors and return `WouldBlock` like the underlying call;
//! the async wrappers in [`crate::socket`] turn that into readiness waits.
//!
//! Control-message buffers, iovecs and `mmsghdr` arrays live on the stack (at most
//! [`MAX_BATCH`] entries per call), so the hot path allocates nothing.

use std::io;
use std::mem;
use std::net::{Ipv6Addr, SocketAddrV6};
use std::os::fd::RawFd;
use std::ptr;

/// Most datagrams moved by one `recvmmsg`/`sendmmsg` call. Longer slices are handled in
/// several calls (send) or truncated to this many (receive).
pub const MAX_BATCH: usize = 64;

/// Room for one `IPV6_PKTINFO` (CMSG_SPACE(20) = 40 on LP64) plus one `UDP_SEGMENT`
/// (CMSG_SPACE(2) = 24) or `UDP_GRO` (CMSG_SPACE(4) = 24) control message.
const CMSG_BUF_LEN: usize = 64;

/// `UDP_SEGMENT` (linux/udp.h); not exported by libc for glibc targets.
const UDP_SEGMENT: libc::c_int = 103;

/// `UDP_GRO` (linux/udp.h).
const UDP_GRO: libc::c_int = 104;

/// Most datagrams in one UDP GSO send: the kernel's `UDP_MAX_SEGMENTS` (64 since Linux 4.18;
/// later kernels allow more, this is what all of them take).
pub const GSO_MAX_SEGMENTS: usize = 64;

/// Most payload bytes in one UDP GSO send over IPv6: the 65,535-byte IPv6 payload limit less
/// the 8-byte UDP header and the 40-byte IPv6 header the kernel counts against it
/// (`__ip6_append_data` checks the cork length against `IPV6_MAXPLEN` less the header size).
pub const GSO_MAX_BYTES: usize = 65_535 - 8 - 40;

/// A control-message buffer aligned like `struct cmsghdr`.
#[repr(C, align(8))]
#[derive(Clone, Copy)]
struct CmsgBuf([u8; CMSG_BUF_LEN]);

impl CmsgBuf {
    const fn new() -> Self {
        Self([0; CMSG_BUF_LEN])
    }
}

/// What one received datagram carried besides its payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecvMeta {
    /// Payload bytes stored in the buffer.
    pub len: usize,
    /// Source address and port (port 0 on raw sockets; scope id set for link-local sources).
    pub from: SocketAddrV6,
    /// Destination address of the datagram, from `IPV6_PKTINFO` (unspecified if the kernel did
    /// not attach one).
    pub dst: Ipv6Addr,
    /// Index of the interface the datagram arrived on, from `IPV6_PKTINFO` (0 if unknown).
    pub ifindex: u32,
    /// The datagram was longer than the buffer and was cut (`MSG_TRUNC`): drop it.
    pub truncated: bool,
    /// UDP GRO: the buffer holds several datagrams of this many bytes, back to back, the last
    /// possibly shorter (from the `UDP_GRO` control message; 0 when the kernel attached none,
    /// i.e. the buffer holds one datagram). Cut it with [`RecvMeta::datagrams`].
    pub segment_size: usize,
}

impl RecvMeta {
    /// The datagrams in `buf[..self.len]`: one per `segment_size` bytes (the last may be
    /// shorter) when the kernel coalesced several (UDP GRO), else the whole of it. A segment
    /// size of 0 or one at least as long as the data means a single datagram; `len` past the
    /// end of `buf` is cut to it. Never panics, whatever the kernel or the peer put there.
    pub fn datagrams<'a>(&self, buf: &'a [u8]) -> Datagrams<'a> {
        let data = &buf[..self.len.min(buf.len())];
        let stride = if self.segment_size == 0 {
            data.len()
        } else {
            self.segment_size
        };
        Datagrams { rest: data, stride }
    }
}

/// Iterator over the datagrams of one received buffer, see [`RecvMeta::datagrams`].
#[derive(Clone, Debug)]
pub struct Datagrams<'a> {
    rest: &'a [u8],
    stride: usize,
}

impl<'a> Iterator for Datagrams<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.rest.is_empty() {
            return None;
        }
        // A stride of 0 only arises for an empty buffer (see `datagrams`), handled above.
        let n = self.stride.clamp(1, self.rest.len());
        let (d, rest) = self.rest.split_at(n);
        self.rest = rest;
        Some(d)
    }
}

impl Default for RecvMeta {
    fn default() -> Self {
        Self {
            len: 0,
            from: SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, 0, 0, 0),
            dst: Ipv6Addr::UNSPECIFIED,
            ifindex: 0,
            truncated: false,
            segment_size: 0,
        }
    }
}

/// One datagram to send: payload, destination and (optionally) the source address to use.
#[derive(Clone, Copy, Debug)]
pub struct Transmit<'a> {
    /// The payload (for the raw ESP socket: starting at the SPI).
    pub data: &'a [u8],
    /// Destination. The port is ignored on raw sockets; the scope id selects the interface for
    /// link-local destinations.
    pub dst: SocketAddrV6,
    /// Source address to put in `IPV6_PKTINFO`; `None` (or the unspecified address) lets the
    /// kernel choose.
    pub src: Option<Ipv6Addr>,
    /// UDP GSO: `data` is several datagrams of this many bytes to the same destination, the
    /// last possibly shorter (at most [`GSO_MAX_SEGMENTS`] and [`GSO_MAX_BYTES`] in all).
    /// `None`: `data` is one datagram. Where the socket has no GSO the datagrams go out one by
    /// one.
    pub segment_size: Option<u16>,
}

impl Transmit<'_> {
    /// Whether the kernel can take this as one UDP GSO send: a segment size, more than one
    /// segment, within the kernel's limits.
    pub(crate) fn is_gso(&self) -> bool {
        self.segment_size.is_some_and(|s| {
            let s = usize::from(s);
            s > 0
                && self.data.len() > s
                && self.data.len() <= GSO_MAX_BYTES
                && self.data.len().div_ceil(s) <= GSO_MAX_SEGMENTS
        })
    }

    /// The size of each datagram: the segment size, or the whole of `data` without one (a
    /// segment size of 0 means none).
    pub(crate) fn stride(&self) -> usize {
        match self.segment_size {
            Some(s) if s > 0 => usize::from(s),
            _ => self.data.len(),
        }
    }

    /// Whether this is a single datagram (no segment size, or one at least as long as `data`).
    pub(crate) fn is_single(&self) -> bool {
        self.stride() >= self.data.len()
    }

    /// The datagrams of this transmit, one by one (a single one without a segment size).
    pub(crate) fn segments(&self) -> impl Iterator<Item = Self> + '_ {
        self.data.chunks(self.stride().max(1)).map(|d| Self {
            data: d,
            segment_size: None,
            ..*self
        })
    }
}

fn sockaddr_from(addr: &SocketAddrV6) -> libc::sockaddr_in6 {
    libc::sockaddr_in6 {
        sin6_family: libc::AF_INET6 as libc::sa_family_t,
        sin6_port: addr.port().to_be(),
        sin6_flowinfo: addr.flowinfo(),
        sin6_addr: libc::in6_addr {
            s6_addr: addr.ip().octets(),
        },
        sin6_scope_id: addr.scope_id(),
    }
}

fn sockaddr_to(sa: &libc::sockaddr_in6) -> SocketAddrV6 {
    SocketAddrV6::new(
        Ipv6Addr::from(sa.sin6_addr.s6_addr),
        u16::from_be(sa.sin6_port),
        sa.sin6_flowinfo,
        sa.sin6_scope_id,
    )
}

fn zero_sockaddr() -> libc::sockaddr_in6 {
    sockaddr_from(&SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, 0, 0, 0))
}

const fn empty_iovec() -> libc::iovec {
    libc::iovec {
        iov_base: ptr::null_mut(),
        iov_len: 0,
    }
}

/// A zeroed `msghdr`/`mmsghdr` (both are plain C structs of integers and pointers; glibc and
/// musl add private padding fields, so they cannot be built with a struct literal).
#[allow(unsafe_code)]
fn zeroed<T: Copy>() -> T {
    // SAFETY: only instantiated with libc::msghdr and libc::mmsghdr (see callers), for which
    // all-zero bytes are a valid value (null pointers, zero lengths).
    unsafe { mem::zeroed() }
}

fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn cvt_size(ret: libc::ssize_t) -> io::Result<usize> {
    usize::try_from(ret).map_err(|_| io::Error::last_os_error())
}

/// `setsockopt(fd, level, name, &value, sizeof(int))`.
#[allow(unsafe_code)]
pub(crate) fn set_int_opt(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: the option value points to a live c_int and the length passed is its size.
    let ret = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            ptr::from_ref(&value).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    cvt(ret).map(drop)
}

/// Runs the child `cmd` will start at the idle scheduling class (`SCHED_IDLE`, `man 7 sched`):
/// a helper program of the daemon (nft) then takes no CPU time the daemon wants.
#[allow(unsafe_code)]
pub(crate) fn idle_priority(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt as _;
    // SAFETY: the closure runs in the child between fork and exec and only calls
    // sched_setscheduler(2), which is async-signal-safe; it allocates nothing.
    unsafe {
        cmd.pre_exec(|| {
            let param = libc::sched_param { sched_priority: 0 };
            // Best effort: a kernel without SCHED_IDLE leaves the default class.
            let _ = libc::sched_setscheduler(0, libc::SCHED_IDLE, &raw const param);
            Ok(())
        });
    }
}

/// Ask for `IPV6_PKTINFO` on every received datagram (RFC 3542 §6.1).
pub(crate) fn set_recv_pktinfo(fd: RawFd) -> io::Result<()> {
    set_int_opt(fd, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO, 1)
}

/// Whether the kernel knows UDP GSO on this UDP socket: setting the socket's default segment
/// size to 0 (none, the default) succeeds from Linux 4.18 on and fails with `ENOPROTOOPT`
/// before.
pub(crate) fn probe_udp_gso(fd: RawFd) -> io::Result<()> {
    set_int_opt(fd, libc::SOL_UDP, UDP_SEGMENT, 0)
}

/// Let the kernel coalesce received datagrams (UDP GRO, Linux 5.0).
pub(crate) fn set_udp_gro(fd: RawFd) -> io::Result<()> {
    set_int_opt(fd, libc::SOL_UDP, UDP_GRO, 1)
}

/// Write the control messages of one outgoing datagram into `buf`; returns the length to put
/// in `msg_controllen` (0: no control message).
#[allow(unsafe_code)]
fn build_cmsgs(
    buf: &mut CmsgBuf,
    src: Option<Ipv6Addr>,
    ifindex: u32,
    segment: Option<u16>,
) -> usize {
    let src = src.filter(|a| !a.is_unspecified());
    if src.is_none() && ifindex == 0 && segment.is_none() {
        return 0;
    }
    let mut msg: libc::msghdr = zeroed();
    msg.msg_control = buf.0.as_mut_ptr().cast();
    msg.msg_controllen = CMSG_BUF_LEN as _;
    let mut used = 0usize;
    // SAFETY: `msg` describes `buf`, which is CMSG_BUF_LEN bytes, aligned for cmsghdr, and large
    // enough for both messages written here (CMSG_SPACE(20) + CMSG_SPACE(2) = 64 on LP64).
    // CMSG_FIRSTHDR/CMSG_NXTHDR return pointers inside that buffer or null, which is checked;
    // the payloads are written with write_unaligned.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        if src.is_some() || ifindex != 0 {
            if cmsg.is_null() {
                return 0;
            }
            let info = libc::in6_pktinfo {
                ipi6_addr: libc::in6_addr {
                    s6_addr: src.unwrap_or(Ipv6Addr::UNSPECIFIED).octets(),
                },
                ipi6_ifindex: ifindex,
            };
            (*cmsg).cmsg_level = libc::IPPROTO_IPV6;
            (*cmsg).cmsg_type = libc::IPV6_PKTINFO;
            (*cmsg).cmsg_len = libc::CMSG_LEN(size_of::<libc::in6_pktinfo>() as u32) as _;
            ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::in6_pktinfo>(), info);
            used += libc::CMSG_SPACE(size_of::<libc::in6_pktinfo>() as u32) as usize;
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
        if let Some(seg) = segment {
            if cmsg.is_null() {
                return used;
            }
            (*cmsg).cmsg_level = libc::SOL_UDP;
            (*cmsg).cmsg_type = UDP_SEGMENT;
            (*cmsg).cmsg_len = libc::CMSG_LEN(size_of::<u16>() as u32) as _;
            ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<u16>(), seg);
            used += libc::CMSG_SPACE(size_of::<u16>() as u32) as usize;
        }
    }
    used
}

/// Read `IPV6_PKTINFO` and `UDP_GRO` out of a received message's control data: (destination,
/// interface index, GRO segment size or 0).
#[allow(unsafe_code)]
fn parse_cmsgs(msg: &libc::msghdr) -> (Ipv6Addr, u32, usize) {
    let mut dst = Ipv6Addr::UNSPECIFIED;
    let mut ifindex = 0;
    let mut segment = 0;
    // SAFETY: `msg` was filled by the kernel; msg_control/msg_controllen describe our live
    // CmsgBuf and the kernel never reports more than we gave it. CMSG_FIRSTHDR/NXTHDR stay
    // inside [msg_control, msg_control + msg_controllen) and return null at the end; the
    // payload is read with read_unaligned after checking cmsg_len covers it.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(msg);
        while !cmsg.is_null() {
            let c = &*cmsg;
            if c.cmsg_level == libc::IPPROTO_IPV6
                && c.cmsg_type == libc::IPV6_PKTINFO
                && c.cmsg_len as usize
                    >= libc::CMSG_LEN(size_of::<libc::in6_pktinfo>() as u32) as usize
            {
                let info: libc::in6_pktinfo =
                    ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::in6_pktinfo>());
                dst = Ipv6Addr::from(info.ipi6_addr.s6_addr);
                ifindex = info.ipi6_ifindex;
            } else if c.cmsg_level == libc::SOL_UDP
                && c.cmsg_type == UDP_GRO
                && c.cmsg_len as usize >= libc::CMSG_LEN(size_of::<libc::c_int>() as u32) as usize
            {
                // The kernel puts the segment size as an int (udp_cmsg_recv).
                let v: libc::c_int = ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast());
                segment = usize::try_from(v).unwrap_or(0);
            }
            cmsg = libc::CMSG_NXTHDR(msg, cmsg);
        }
    }
    (dst, ifindex, segment)
}

fn meta_from(msg: &libc::msghdr, name: &libc::sockaddr_in6, len: usize) -> RecvMeta {
    let (dst, ifindex, segment_size) = parse_cmsgs(msg);
    RecvMeta {
        len,
        from: sockaddr_to(name),
        dst,
        ifindex,
        truncated: msg.msg_flags & libc::MSG_TRUNC != 0,
        segment_size,
    }
}

/// One `recvmsg` with pktinfo.
#[allow(unsafe_code)]
pub(crate) fn recv_one(fd: RawFd, buf: &mut [u8]) -> io::Result<RecvMeta> {
    let mut name = zero_sockaddr();
    let mut cmsg = CmsgBuf::new();
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let mut msg: libc::msghdr = zeroed();
    msg.msg_name = ptr::from_mut(&mut name).cast();
    msg.msg_namelen = size_of::<libc::sockaddr_in6>() as libc::socklen_t;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cmsg.0.as_mut_ptr().cast();
    msg.msg_controllen = CMSG_BUF_LEN as _;
    // SAFETY: every pointer in `msg` refers to a live local (name, iov → buf, cmsg) with the
    // length given next to it; the kernel writes at most those lengths.
    let ret = unsafe { libc::recvmsg(fd, &mut msg, 0) };
    let len = cvt_size(ret)?;
    Ok(meta_from(&msg, &name, len.min(buf.len())))
}

/// One `sendmsg`, with `IPV6_PKTINFO` when a source address or interface is given, and with
/// `UDP_SEGMENT` when `segment` is given (UDP GSO: the kernel cuts `data` into datagrams of
/// that size).
#[allow(unsafe_code)]
pub(crate) fn send_one(
    fd: RawFd,
    data: &[u8],
    dst: &SocketAddrV6,
    src: Option<Ipv6Addr>,
    segment: Option<u16>,
) -> io::Result<usize> {
    let mut name = sockaddr_from(dst);
    let mut cmsg = CmsgBuf::new();
    let ifindex = src_ifindex(src, dst);
    let clen = build_cmsgs(&mut cmsg, src, ifindex, segment);
    let mut iov = libc::iovec {
        iov_base: data.as_ptr().cast_mut().cast(),
        iov_len: data.len(),
    };
    let mut msg: libc::msghdr = zeroed();
    msg.msg_name = ptr::from_mut(&mut name).cast();
    msg.msg_namelen = size_of::<libc::sockaddr_in6>() as libc::socklen_t;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    if clen > 0 {
        msg.msg_control = cmsg.0.as_mut_ptr().cast();
        msg.msg_controllen = clen as _;
    }
    // SAFETY: all pointers in `msg` refer to live locals or to `data` with matching lengths;
    // sendmsg only reads through them (the *mut cast of data is never written through).
    let ret = unsafe { libc::sendmsg(fd, &msg, libc::MSG_NOSIGNAL) };
    cvt_size(ret)
}

/// For a link-local source or destination, the interface comes from the scope id.
fn src_ifindex(src: Option<Ipv6Addr>, dst: &SocketAddrV6) -> u32 {
    let ll = |a: &Ipv6Addr| a.is_unicast_link_local() || a.is_multicast();
    if ll(dst.ip()) || src.as_ref().is_some_and(ll) {
        dst.scope_id()
    } else {
        0
    }
}

/// One `recvmmsg`: up to `min(bufs.len(), metas.len(), MAX_BATCH)` datagrams. Returns how many
/// were received; `metas[i]` describes `bufs[i]`.
#[allow(unsafe_code)]
pub(crate) fn recv_many<B: AsMut<[u8]>>(
    fd: RawFd,
    bufs: &mut [B],
    metas: &mut [RecvMeta],
) -> io::Result<usize> {
    let n = bufs.len().min(metas.len()).min(MAX_BATCH);
    if n == 0 {
        return Ok(0);
    }
    let mut names = [zero_sockaddr(); MAX_BATCH];
    let mut cmsgs = [CmsgBuf::new(); MAX_BATCH];
    let mut iovs = [empty_iovec(); MAX_BATCH];
    let mut hdrs = [zeroed::<libc::mmsghdr>(); MAX_BATCH];
    for i in 0..n {
        let b = bufs[i].as_mut();
        iovs[i] = libc::iovec {
            iov_base: b.as_mut_ptr().cast(),
            iov_len: b.len(),
        };
    }
    for i in 0..n {
        let h = &mut hdrs[i].msg_hdr;
        h.msg_name = ptr::from_mut(&mut names[i]).cast();
        h.msg_namelen = size_of::<libc::sockaddr_in6>() as libc::socklen_t;
        h.msg_iov = &mut iovs[i];
        h.msg_iovlen = 1;
        h.msg_control = cmsgs[i].0.as_mut_ptr().cast();
        h.msg_controllen = CMSG_BUF_LEN as _;
    }
    // SAFETY: hdrs[..n] point to live names/iovs/cmsgs entries and, through the iovecs, to the
    // caller's buffers, each with its true length. A null timeout means none; the descriptor
    // is non-blocking so the call returns what is queued (at least one datagram, or EAGAIN).
    let ret =
        unsafe { libc::recvmmsg(fd, hdrs.as_mut_ptr(), n as libc::c_uint, 0, ptr::null_mut()) };
    let got = cvt(ret)? as usize;
    for i in 0..got {
        let cap = iovs[i].iov_len;
        metas[i] = meta_from(
            &hdrs[i].msg_hdr,
            &names[i],
            (hdrs[i].msg_len as usize).min(cap),
        );
    }
    Ok(got)
}

/// One `sendmmsg` over up to `MAX_BATCH` of `msgs`, each with its `UDP_SEGMENT` if it has a
/// segment size (the caller passes only valid GSO sends, [`Transmit::is_gso`], and only to UDP
/// sockets that have GSO). Returns how many
/// the kernel took (at least one, or an error for the first).
#[allow(unsafe_code)]
pub(crate) fn send_many(fd: RawFd, msgs: &[Transmit<'_>]) -> io::Result<usize> {
    let n = msgs.len().min(MAX_BATCH);
    if n == 0 {
        return Ok(0);
    }
    let mut names = [zero_sockaddr(); MAX_BATCH];
    let mut cmsgs = [CmsgBuf::new(); MAX_BATCH];
    let mut clens = [0usize; MAX_BATCH];
    let mut iovs = [empty_iovec(); MAX_BATCH];
    let mut hdrs = [zeroed::<libc::mmsghdr>(); MAX_BATCH];
    for (i, t) in msgs[..n].iter().enumerate() {
        names[i] = sockaddr_from(&t.dst);
        clens[i] = build_cmsgs(
            &mut cmsgs[i],
            t.src,
            src_ifindex(t.src, &t.dst),
            t.segment_size,
        );
        iovs[i] = libc::iovec {
            iov_base: t.data.as_ptr().cast_mut().cast(),
            iov_len: t.data.len(),
        };
    }
    for i in 0..n {
        let h = &mut hdrs[i].msg_hdr;
        h.msg_name = ptr::from_mut(&mut names[i]).cast();
        h.msg_namelen = size_of::<libc::sockaddr_in6>() as libc::socklen_t;
        h.msg_iov = &mut iovs[i];
        h.msg_iovlen = 1;
        if clens[i] > 0 {
            h.msg_control = cmsgs[i].0.as_mut_ptr().cast();
            h.msg_controllen = clens[i] as _;
        }
    }
    // SAFETY: hdrs[..n] point to live names/iovs/cmsgs entries and to the callers' payloads with
    // their true lengths; sendmmsg only reads the payloads.
    let ret =
        unsafe { libc::sendmmsg(fd, hdrs.as_mut_ptr(), n as libc::c_uint, libc::MSG_NOSIGNAL) };
    Ok(cvt(ret)? as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockaddr_round_trip() {
        let a = SocketAddrV6::new("fe80::1".parse().unwrap(), 500, 7, 3);
        assert_eq!(sockaddr_to(&sockaddr_from(&a)), a);
    }

    #[test]
    fn cmsg_sizes_fit() {
        let mut b = CmsgBuf::new();
        let n = build_cmsgs(&mut b, Some("2001:db8::1".parse().unwrap()), 0, Some(1400));
        assert!(n <= CMSG_BUF_LEN, "{n}");
        assert!(n > 40);
        assert_eq!(build_cmsgs(&mut b, None, 0, None), 0);
        assert_eq!(build_cmsgs(&mut b, Some(Ipv6Addr::UNSPECIFIED), 0, None), 0);
    }

    fn meta(len: usize, segment_size: usize) -> RecvMeta {
        RecvMeta {
            len,
            segment_size,
            ..RecvMeta::default()
        }
    }

    #[test]
    fn gro_buffer_is_cut_into_datagrams() {
        // 3 x 4 bytes and a shorter last one, as the kernel coalesces them.
        let buf: Vec<u8> = (0..14).collect();
        let d: Vec<&[u8]> = meta(14, 4).datagrams(&buf).collect();
        assert_eq!(d, [&buf[0..4], &buf[4..8], &buf[8..12], &buf[12..14]]);
        // Exact multiple: no empty tail.
        assert_eq!(meta(12, 4).datagrams(&buf).count(), 3);
        // No GRO control message: one datagram.
        assert_eq!(meta(14, 0).datagrams(&buf).collect::<Vec<_>>(), [&buf[..]]);
    }

    #[test]
    fn gro_buffer_with_hostile_sizes_does_not_panic() {
        let buf = [7u8; 10];
        // Segment size 0 (the kernel never sends it): the whole buffer as one datagram.
        assert_eq!(meta(10, 0).datagrams(&buf).collect::<Vec<_>>(), [&buf[..]]);
        // Segment size larger than the data: one datagram.
        assert_eq!(
            meta(10, 65_536).datagrams(&buf).collect::<Vec<_>>(),
            [&buf[..]]
        );
        assert_eq!(meta(10, usize::MAX).datagrams(&buf).count(), 1);
        // A length past the buffer is cut to it.
        assert_eq!(
            meta(99, 3).datagrams(&buf).map(<[u8]>::len).sum::<usize>(),
            10
        );
        // Nothing received: nothing.
        assert_eq!(meta(0, 3).datagrams(&buf).count(), 0);
        assert_eq!(meta(0, 0).datagrams(&[]).count(), 0);
    }

    #[test]
    fn gso_transmit_limits() {
        let data = vec![0u8; GSO_MAX_BYTES + 1];
        let dst = SocketAddrV6::new(Ipv6Addr::LOCALHOST, 4500, 0, 0);
        let t = |len: usize, seg: Option<u16>| Transmit {
            data: &data[..len],
            dst,
            src: None,
            segment_size: seg,
        };
        assert!(t(3000, Some(1000)).is_gso());
        assert!(t(2500, Some(1000)).is_gso(), "shorter last segment");
        assert!(!t(1000, Some(1000)).is_gso(), "a single datagram");
        assert!(!t(3000, None).is_gso());
        assert!(!t(3000, Some(0)).is_gso());
        assert!(t(64 * 100, Some(100)).is_gso());
        assert!(!t(65 * 100, Some(100)).is_gso(), "more than 64 segments");
        assert!(!t(GSO_MAX_BYTES + 1, Some(1500)).is_gso(), "over 64 KiB");
        let segs: Vec<usize> = t(2500, Some(1000))
            .segments()
            .map(|s| s.data.len())
            .collect();
        assert_eq!(segs, [1000, 1000, 500]);
        assert!(
            t(2500, Some(1000))
                .segments()
                .all(|s| s.segment_size.is_none())
        );
        assert_eq!(t(2500, Some(0)).segments().count(), 1, "0: no segmentation");
        assert!(t(2500, Some(0)).is_single() && t(1000, Some(1000)).is_single());
        assert!(!t(1001, Some(1000)).is_single());
        assert_eq!(t(0, Some(100)).segments().count(), 0);
    }

    #[test]
    fn link_local_destination_uses_scope() {
        let d = SocketAddrV6::new("fe80::2".parse().unwrap(), 500, 0, 4);
        assert_eq!(src_ifindex(None, &d), 4);
        let g = SocketAddrV6::new("2001:db8::2".parse().unwrap(), 500, 0, 4);
        assert_eq!(src_ifindex(Some("2001:db8::1".parse().unwrap()), &g), 0);
    }
}
