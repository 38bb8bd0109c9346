#!/usr/bin/env python3
"""Extracts the ISAKMP messages of ikev1-mip6-psk.pcapng into NN-name.bin files.

Usage: extract.py PCAPNG OUTDIR. Reads Enhanced Packet Blocks (Ethernet, IPv6, UDP), takes the
UDP payload and, on port 4500, strips the 4-byte zero non-ESP marker (RFC 3948 section 2.2).
"""
import os
import struct
import sys

NAMES = ['mm1', 'mm2', 'mm3', 'mm4', 'mm5', 'mm6',
         'cfg_req', 'cfg_reply', 'qm1', 'qm2', 'qm3']


def packets(data):
    off = 0
    while off < len(data):
        btype, blen = struct.unpack_from('<II', data, off)
        if btype == 6:  # Enhanced Packet Block
            caplen = struct.unpack_from('<I', data, off + 20)[0]
            yield data[off + 28:off + 28 + caplen]
        off += blen


def main():
    pcap, outdir = sys.argv[1], sys.argv[2]
    data = open(pcap, 'rb').read()
    assert data[8:12] == b'\x4d\x3c\x2b\x1a', 'little-endian pcapng expected'
    for i, frame in enumerate(packets(data)):
        assert frame[12:14] == b'\x86\xdd', 'IPv6 over Ethernet expected'
        ip = frame[14:]
        assert ip[6] == 17, 'UDP expected'
        udp = ip[40:]
        sport, dport, ulen = struct.unpack('>HHH', udp[:6])
        payload = udp[8:ulen]
        if 4500 in (sport, dport):
            assert payload[:4] == b'\0\0\0\0', 'non-ESP marker expected'
            payload = payload[4:]
        length = struct.unpack('>I', payload[24:28])[0]
        assert length == len(payload), 'ISAKMP length mismatch'
        with open(os.path.join(outdir, f'{i + 1:02d}-{NAMES[i]}.bin'), 'wb') as f:
            f.write(payload)


if __name__ == '__main__':
    main()
