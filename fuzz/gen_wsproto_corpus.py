#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_wsproto (fuzz/corpus/wsproto/).

Each file is a control byte and a cut byte (see fuzz_wsproto.c) and then either the
client's byte stream (stream mode) or one message (round-trip mode, control bit 7): client
frames of every shape docs/websocket.md names, with and without permessage-deflate,
fragmented, with control frames between fragments, closes, and the malformed frames the
parser answers with 1002, 1007 and 1009. The files are committed; this script only says
how they were made (run it again after editing SEEDS).

The regress-* files beside them are inputs the fuzzer found (each is also a test in
tests/c/test_wsproto.c); this script leaves them alone.
"""
import os
import struct
import sys
import zlib

# Control byte: bit 0 deflate, bits 1-3 limit index, bit 4 stop at the 2nd event,
# bit 5 text (round trip), bit 7 round trip.
DEFLATE = 1
LIMIT_0, LIMIT_2, LIMIT_125, LIMIT_1000, LIMIT_64K, NO_LIMIT = 0 << 1, 2 << 1, 3 << 1, 5 << 1, 6 << 1, 7 << 1
STOP = 0x10
TEXT = 0x20
ROUND = 0x80

TEXT_OP, BINARY_OP, CONT, CLOSE, PING, PONG = 1, 2, 0, 8, 9, 10
# A zero key leaves payloads as they are, so the fuzzer's mutations of them stay
# meaningful; "masked" uses a real one.
KEY = b"\0\0\0\0"
REAL_KEY = b"\x37\xfa\x21\x3d"


def frame(op, payload=b"", fin=True, rsv1=False, masked=True, key=KEY, length_form=None):
    """A client frame; length_form 16 or 64 forces a longer length encoding."""
    first = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | op
    n = len(payload)
    mask_bit = 0x80 if masked else 0
    if length_form == 64 or (length_form is None and n > 0xFFFF):
        head = bytes([first, mask_bit | 127]) + struct.pack(">Q", n)
    elif length_form == 16 or (length_form is None and n >= 126):
        head = bytes([first, mask_bit | 126]) + struct.pack(">H", n)
    else:
        head = bytes([first, mask_bit | n])
    if not masked:
        return head + payload
    body = bytes(b ^ key[i & 3] for i, b in enumerate(payload))
    return head + key + body


def compress(data):
    """permessage-deflate's form: raw deflate, sync-flushed, the 00 00 ff ff tail removed."""
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


def close(code=None, reason=b""):
    return frame(CLOSE, b"" if code is None else struct.pack(">H", code) + reason)


HELLO = b"Hello"
LOREM = b"lorem ipsum dolor sit amet " * 40
UTF8 = "h\u00e9llo w\u00f6rld \u20ac \U0001f600".encode()
Z_HELLO = compress(HELLO)
Z_LOREM = compress(LOREM)

SEEDS = [
    # name, control, cut, bytes
    ("text", NO_LIMIT, 0, frame(TEXT_OP, HELLO)),
    ("masked", NO_LIMIT, 1, frame(TEXT_OP, b"Hel", fin=False, key=REAL_KEY)
     + frame(CONT, b"lo", key=b"\x01\x02\x03\x04")),
    ("binary", NO_LIMIT, 3, frame(BINARY_OP, bytes(range(256)))),
    ("lengths", NO_LIMIT, 7, frame(TEXT_OP, b"a" * 125) + frame(TEXT_OP, b"b" * 126)
     + frame(BINARY_OP, b"c" * 70000)),
    ("non-minimal-lengths", NO_LIMIT, 1, frame(TEXT_OP, HELLO, length_form=16)
     + frame(TEXT_OP, HELLO, length_form=64)),
    ("fragments", NO_LIMIT, 5, frame(TEXT_OP, b"Hel", fin=False) + frame(CONT, b"", fin=False)
     + frame(CONT, b"lo", fin=True)),
    ("control-between-fragments", NO_LIMIT, 9,
     frame(TEXT_OP, b"Hel", fin=False) + frame(PING, b"are you there") + frame(PONG, b"")
     + frame(CONT, b"lo") + frame(PING, b"")),
    ("utf8", NO_LIMIT, 2, frame(TEXT_OP, UTF8)),
    ("utf8-split-across-fragments", NO_LIMIT, 11,
     frame(TEXT_OP, UTF8[:2], fin=False) + frame(PING, b"x") + frame(CONT, UTF8[2:])),
    ("utf8-bad", NO_LIMIT, 0, frame(TEXT_OP, b"ok \xed\xa0\x80 surrogate")),
    ("utf8-overlong", NO_LIMIT, 4, frame(TEXT_OP, b"\xc0\xaf") + frame(TEXT_OP, b"\xe0\x80\xaf")),
    ("utf8-truncated-at-end", NO_LIMIT, 6, frame(TEXT_OP, b"abc\xe2\x82")),
    ("close", NO_LIMIT, 0, frame(TEXT_OP, HELLO) + close(1000, b"bye") + frame(TEXT_OP, b"ignored")),
    ("close-empty", NO_LIMIT, 1, close()),
    ("close-1-byte", NO_LIMIT, 2, frame(CLOSE, b"\x03")),
    ("close-bad-code", NO_LIMIT, 3, close(1005)),
    ("close-bad-reason", NO_LIMIT, 4, close(4000, b"\xff")),
    ("close-private-code", NO_LIMIT, 5, close(3000, "d\u00e9j\u00e0".encode())),
    ("unmasked", NO_LIMIT, 0, frame(TEXT_OP, HELLO, masked=False)),
    ("reserved-opcode", NO_LIMIT, 0, frame(3, HELLO) + frame(0xB, b"")),
    ("rsv1-without-deflate", NO_LIMIT, 0, frame(TEXT_OP, Z_HELLO, rsv1=True)),
    ("rsv2", NO_LIMIT, 0, bytes([0xA1, 0x80]) + KEY),
    ("fragmented-ping", NO_LIMIT, 0, frame(PING, b"x", fin=False)),
    ("long-ping", NO_LIMIT, 0, frame(PING, b"p" * 126)),
    ("continuation-first", NO_LIMIT, 0, frame(CONT, HELLO)),
    ("message-inside-message", NO_LIMIT, 3, frame(TEXT_OP, b"a", fin=False) + frame(TEXT_OP, b"b")),
    ("length-top-bit", NO_LIMIT, 0, bytes([0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0]) + KEY),
    ("limit-on-header", LIMIT_125, 0, frame(TEXT_OP, b"a" * 126)),
    ("limit-across-fragments", LIMIT_125, 8,
     frame(BINARY_OP, b"a" * 100, fin=False) + frame(CONT, b"b" * 26)),
    ("limit-zero", LIMIT_0, 0, frame(TEXT_OP, b"") + frame(TEXT_OP, b"x")),
    ("stop-at-second-event", NO_LIMIT | STOP, 2, frame(TEXT_OP, b"one") + frame(PING, b"")
     + frame(TEXT_OP, b"three")),
    ("deflate", DEFLATE | NO_LIMIT, 0, frame(TEXT_OP, Z_HELLO, rsv1=True)),
    ("deflate-mixed", DEFLATE | NO_LIMIT, 5, frame(TEXT_OP, Z_HELLO, rsv1=True)
     + frame(TEXT_OP, HELLO) + frame(BINARY_OP, Z_LOREM, rsv1=True)),
    ("deflate-fragments", DEFLATE | NO_LIMIT, 13,
     frame(TEXT_OP, Z_LOREM[:10], fin=False, rsv1=True) + frame(PING, b"mid")
     + frame(CONT, Z_LOREM[10:30], fin=False) + frame(PONG, b"") + frame(CONT, Z_LOREM[30:])),
    ("deflate-rsv1-on-continuation", DEFLATE | NO_LIMIT, 0,
     frame(TEXT_OP, Z_HELLO[:2], fin=False, rsv1=True) + frame(CONT, Z_HELLO[2:], rsv1=True)),
    ("deflate-final-block", DEFLATE | NO_LIMIT, 0,
     # RFC 7692 7.2.3.4: a BFINAL block, then bytes that are ignored.
     frame(TEXT_OP, b"\xf3\x48\xcd\xc9\xc9\x07\x00\x00", rsv1=True)),
    ("deflate-bad-data", DEFLATE | NO_LIMIT, 0, frame(TEXT_OP, b"\xff\xff\xff", rsv1=True)),
    ("deflate-truncated", DEFLATE | NO_LIMIT, 1, frame(BINARY_OP, Z_LOREM[:-3], rsv1=True)),
    ("deflate-bomb", DEFLATE | LIMIT_1000, 0, frame(BINARY_OP, compress(b"\0" * 100000), rsv1=True)),
    ("deflate-bad-utf8", DEFLATE | NO_LIMIT, 0, frame(TEXT_OP, compress(b"ok \xff"), rsv1=True)),
    ("deflate-close", DEFLATE | NO_LIMIT, 2, frame(TEXT_OP, Z_HELLO, rsv1=True) + close(1001)),
    # Round trips: the message itself.
    ("rt-text", ROUND | TEXT | NO_LIMIT, 0, UTF8),
    ("rt-binary-fragments", ROUND | NO_LIMIT, 3, bytes(range(256)) * 3),
    ("rt-deflate-text", ROUND | TEXT | DEFLATE | NO_LIMIT, 2, LOREM),
    ("rt-deflate-binary", ROUND | DEFLATE | LIMIT_64K, 7, bytes(range(256)) * 8),
    ("rt-deflate-limit", ROUND | DEFLATE | LIMIT_1000, 1, b"z" * 5000),
    ("rt-deflate-bad-utf8", ROUND | TEXT | DEFLATE | NO_LIMIT, 1, b"abc\xc3"),
    ("rt-empty", ROUND | DEFLATE | TEXT | LIMIT_0, 0, b""),
]


def main():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "wsproto")
    os.makedirs(out, exist_ok=True)
    for name, control, cut, data in SEEDS:
        with open(os.path.join(out, name), "wb") as f:
            f.write(bytes([control, cut]) + data)
    print(f"wrote {len(SEEDS)} seeds to {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
