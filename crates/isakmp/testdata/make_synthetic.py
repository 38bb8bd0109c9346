#!/usr/bin/env python3
"""Writes hand-built plaintext ISAKMP messages to synthetic/ (regression tests and fuzz seeds).

They cover payloads that the strongSwan capture only carries encrypted or not at all:
ID, HASH, Notify (INITIAL-CONTACT, R-U-THERE), Delete, Attribute (Mode Config / XAUTH),
CERT, CR, SIG, NAT-OA, an ESP proposal with two transforms, and raw types 130 and 132.
All RESERVED fields are zero, so each must re-emit byte for byte.
"""
import os
import struct

CKY_I = bytes.fromhex("272c5cfa58766161")
CKY_R = bytes.fromhex("c0952c7c9a0762a2")


def chain(payloads):
    """payloads: list of (type, body) -> (first type, bytes)."""
    out = b""
    for i, (_, body) in enumerate(payloads):
        nxt = payloads[i + 1][0] if i + 1 < len(payloads) else 0
        out += struct.pack(">BBH", nxt, 0, 4 + len(body)) + body
    return (payloads[0][0] if payloads else 0), out


def message(exchange, mid, payloads, flags=0):
    first, body = chain(payloads)
    return CKY_I + CKY_R + struct.pack(">BBBBII", first, 0x10, exchange, flags, mid, 28 + len(body)) + body


def tv(ty, v):
    return struct.pack(">HH", 0x8000 | ty, v)


def tlv(ty, v):
    return struct.pack(">HH", ty, len(v)) + v


def nested(ty, items):
    out = b""
    for i, body in enumerate(items):
        out += struct.pack(">BBH", ty if i + 1 < len(items) else 0, 0, 4 + len(body)) + body
    return out


def transform(num, tid, attrs):
    return struct.pack(">BBH", num, tid, 0) + b"".join(attrs)


def proposal(num, proto, spi, transforms):
    return struct.pack(">BBBB", num, proto, len(spi), len(transforms)) + spi + nested(3, transforms)


def sa(proposals, doi=1, sit=1):
    return struct.pack(">II", doi, sit) + nested(2, proposals)


def ident(idtype, data, proto=0, port=0):
    return struct.pack(">BBH", idtype, proto, port) + data


def notify(ntype, spi=b"", data=b"", proto=1, doi=1):
    return struct.pack(">IBBH", doi, proto, len(spi), ntype) + spi + data


def attr_payload(cfg_type, ident_, attrs):
    return struct.pack(">BBH", cfg_type, 0, ident_) + b"".join(attrs)


HOA = bytes.fromhex("20010db8000100000000000000001001")
PREFIX = bytes.fromhex("20010db8000100000000000000000000")
MASK64 = bytes.fromhex("ffffffffffffffff0000000000000000")
HASH = bytes(range(32))

MESSAGES = {
    # Quick Mode as it would look decrypted: HASH SA No KE ID ID, ESP with two transforms,
    # Life duration as a 4-byte TLV, UDP-encapsulated tunnel.
    "qm1-plain": message(32, 0x0336A49F, [
        (8, HASH),
        (1, sa([proposal(1, 3, bytes.fromhex("a5f80e9d"), [
            transform(1, 12, [tv(6, 128), tv(5, 5), tv(3, 14), tv(4, 3), tv(1, 1), tlv(2, struct.pack(">I", 86400))]),
            transform(2, 3, [tv(5, 2), tv(4, 1), tv(1, 2), tlv(2, struct.pack(">I", 4608000))]),
        ])])),
        (10, bytes(32)),
        (4, bytes(range(256))),
        (5, ident(5, HOA)),
        (5, ident(6, PREFIX + MASK64, proto=135)),
        (21, struct.pack(">B3x", 5) + HOA),
    ]),
    # Main Mode 5 as it would look decrypted: ID HASH N(INITIAL-CONTACT).
    "mm5-plain": message(2, 0, [
        (5, ident(3, b"mn@example.com")),
        (8, HASH),
        (11, notify(24578, CKY_I + CKY_R)),
    ]),
    # Informational: HASH N(R-U-THERE) and HASH D(ESP).
    "dpd-r-u-there": message(5, 0x11223344, [(8, HASH), (11, notify(36136, CKY_I + CKY_R, struct.pack(">I", 7)))]),
    "delete-esp": message(5, 0x55667788, [(8, HASH), (12, struct.pack(">IBBH", 1, 3, 4, 2) + bytes.fromhex("a5f80e9db165ec58"))]),
    "delete-isakmp": message(5, 0x01020304, [(8, HASH), (12, struct.pack(">IBBH", 1, 1, 16, 1) + CKY_I + CKY_R)]),
    # Transaction: Mode Config request/reply, XAUTH request and status.
    "modecfg-request": message(6, 0x87FA553D, [(8, HASH), (14, attr_payload(1, 0, [tlv(8, b""), tlv(10, b"")]))]),
    "modecfg-reply-17": message(6, 0x87FA553D, [
        (8, HASH),
        (14, attr_payload(2, 0, [tlv(8, HOA + b"\x40"), tlv(10, bytes.fromhex("20010db8000100000000000000000053")),
                                 tlv(15, PREFIX + b"\x40"), tlv(14, struct.pack(">HHH", 8, 10, 15))])),
    ]),
    "xauth-request": message(6, 0x0BADF00D, [(8, HASH), (14, attr_payload(1, 0x1234, [tv(16520, 1), tlv(16521, b""), tlv(16522, b""), tlv(16525, bytes(16))]))]),
    "xauth-set-status": message(6, 0x0C0FFEE0, [(8, HASH), (14, attr_payload(3, 0x4321, [tv(16527, 1)]))]),
    # Phase 1 with certificates: CERT, CR (empty and with a CA name), SIG, a fragment VID and
    # the draft NAT-D type 130, kept raw.
    "mm-certs": message(2, 0, [
        (5, ident(9, b"\x30\x00")),
        (6, b"\x04" + b"\x30\x82\x00\x00"),
        (7, b"\x04"),
        (7, b"\x04" + b"\x30\x0d\x31\x0b"),
        (9, bytes(64)),
        (13, bytes.fromhex("4048b7d56ebce88525e7de7f00d6c2d380000000")),
        (130, HASH),
        (132, b"\x00\x01\x01\x01" + b"frag"),
    ]),
    # Aggressive Mode 1 with a hybrid/XAUTH proposal set and an unusual minor version.
    "am1-xauth": message(4, 0, [
        (1, sa([proposal(1, 1, b"", [
            transform(1, 1, [tv(1, 7), tv(14, 256), tv(2, 2), tv(4, 2), tv(3, 65001), tv(11, 1), tlv(12, struct.pack(">I", 86400))]),
            transform(2, 1, [tv(1, 5), tv(2, 1), tv(4, 2), tv(3, 64221), tv(11, 1), tv(12, 28800)]),
        ])])),
        (4, bytes(128)),
        (10, bytes(16)),
        (5, ident(2, b"mn.example.com", proto=17, port=500)),
        (13, bytes.fromhex("09002689dfd6b712")),
    ]),
    # Empty message (next payload NONE).
    "empty-informational": message(5, 0xFFFFFFFF, []),
}


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    outdir = os.path.join(here, "synthetic")
    os.makedirs(outdir, exist_ok=True)
    for name, data in MESSAGES.items():
        with open(os.path.join(outdir, name + ".bin"), "wb") as f:
            f.write(data)
        print(name, len(data))


if __name__ == "__main__":
    main()
