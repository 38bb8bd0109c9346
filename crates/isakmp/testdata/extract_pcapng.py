#!/usr/bin/env python3
"""Extract the ISAKMP payloads of UDP/500 and UDP/4500 datagrams from a pcapng file.

Minimal pcapng reader (SHB, IDB, EPB only; Ethernet link type; IPv4 or IPv6 without
extension headers). On port 4500 the 4-byte zero Non-ESP marker (RFC 3948 §2.2) is
stripped; ESP packets and NAT-T keepalives on 4500 are skipped.

usage: extract_pcapng.py CAPTURE.pcapng OUTDIR NAME1 NAME2 ...
Writes OUTDIR/NN-NAMEk.bin for the k-th ISAKMP datagram.
"""
import struct
import sys


def blocks(data):
    off = 0
    endian = "<"
    while off + 12 <= len(data):
        btype = struct.unpack_from(endian + "I", data, off)[0]
        if btype == 0x0A0D0D0A:
            magic = data[off + 8:off + 12]
            endian = "<" if magic == b"\x4d\x3c\x2b\x1a" else ">"
        blen = struct.unpack_from(endian + "I", data, off + 4)[0]
        if blen < 12 or off + blen > len(data):
            raise ValueError("bad block length at %d" % off)
        yield btype, data[off + 8:off + blen - 4], endian
        off += blen


def udp_payloads(data):
    linktypes = []
    for btype, body, e in blocks(data):
        if btype == 1:  # Interface Description Block
            linktypes.append(struct.unpack_from(e + "H", body, 0)[0])
        elif btype == 6:  # Enhanced Packet Block
            ifid, _, _, caplen, _ = struct.unpack_from(e + "IIIII", body, 0)
            pkt = body[20:20 + caplen]
            if linktypes[ifid] != 1:
                raise ValueError("only Ethernet is supported")
            ethertype = struct.unpack_from(">H", pkt, 12)[0]
            ip = pkt[14:]
            if ethertype == 0x86DD:
                if ip[6] != 17:
                    continue
                udp = ip[40:]
            elif ethertype == 0x0800:
                ihl = (ip[0] & 0x0F) * 4
                if ip[9] != 17:
                    continue
                udp = ip[ihl:]
            else:
                continue
            sport, dport, ulen = struct.unpack_from(">HHH", udp, 0)
            yield sport, dport, udp[8:ulen]


def main():
    src, outdir, names = sys.argv[1], sys.argv[2], sys.argv[3:]
    data = open(src, "rb").read()
    n = 0
    for sport, dport, payload in udp_payloads(data):
        if 4500 in (sport, dport):
            if len(payload) < 4 or payload[:4] != b"\0\0\0\0":
                continue  # ESP or keepalive
            payload = payload[4:]
        elif 500 not in (sport, dport):
            continue
        name = names[n] if n < len(names) else "msg"
        n += 1
        path = "%s/%02d-%s.bin" % (outdir, n, name)
        open(path, "wb").write(payload)
        print(path, len(payload), "bytes", "port", sport)


if __name__ == "__main__":
    main()
