//! The system calls socket2 and tokio do not wrap: `recvmsg`/`sendmsg` with an `IPV6_PKTINFO`
//! control message, their batched forms `recvmmsg`/`sendmmsg` (man 2 recvmmsg, sendmmsg), UDP
//! GSO (`UDP_SEGMENT`, Linux 4.18), and the `setsockopt` calls without a socket2 setter
//! (`IPV6_RECVPKTINFO`, RFC 3542 §6.1).
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
/// (CMSG_SPACE(2) = 24) control message.
const CMSG_BUF_LEN: usize = 64;

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
}

impl Default for RecvMeta {
    fn default() -> Self {
        Self {
            len: 0,
            from: SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, 0, 0, 0),
            dst: Ipv6Addr::UNSPECIFIED,
            ifindex: 0,
            truncated: false,
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

/// Ask for `IPV6_PKTINFO` on every received datagram (RFC 3542 §6.1).
pub(crate) fn set_recv_pktinfo(fd: RawFd) -> io::Result<()> {
    set_int_opt(fd, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO, 1)
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

/// `UDP_SEGMENT` (linux/udp.h); not exported by libc for glibc targets.
const UDP_SEGMENT: libc::c_int = 103;

/// Read `IPV6_PKTINFO` out of a received message's control data.
#[allow(unsafe_code)]
fn parse_pktinfo(msg: &libc::msghdr) -> (Ipv6Addr, u32) {
    let mut dst = Ipv6Addr::UNSPECIFIED;
    let mut ifindex = 0;
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
            }
            cmsg = libc::CMSG_NXTHDR(msg, cmsg);
        }
    }
    (dst, ifindex)
}

fn meta_from(msg: &libc::msghdr, name: &libc::sockaddr_in6, len: usize) -> RecvMeta {
    let (dst, ifindex) = parse_pktinfo(msg);
    RecvMeta {
        len,
        from: sockaddr_to(name),
        dst,
        ifindex,
        truncated: msg.msg_flags & libc::MSG_TRUNC != 0,
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

/// One `sendmmsg` over up to `MAX_BATCH` of `msgs`. Returns how many the kernel took (at least
/// one, or an error for the first).
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
        clens[i] = build_cmsgs(&mut cmsgs[i], t.src, src_ifindex(t.src, &t.dst), None);
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

    #[test]
    fn link_local_destination_uses_scope() {
        let d = SocketAddrV6::new("fe80::2".parse().unwrap(), 500, 0, 4);
        assert_eq!(src_ifindex(None, &d), 4);
        let g = SocketAddrV6::new("2001:db8::2".parse().unwrap(), 500, 0, 4);
        assert_eq!(src_ifindex(Some("2001:db8::1".parse().unwrap()), &g), 0);
    }
}
