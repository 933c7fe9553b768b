#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_presence (fuzz/corpus/presence/): sequences of presence
messages as pubsub/presence.h defines them (each input: u16 length, message, ...), in the
orders a real peer sends them (beat, ask, snapshot, deltas, a gap, a drop) and with one
malformed message of each kind the decoder refuses. The files are committed; this script
says how they were made.
"""
import os
import struct
import sys

JOIN, LEAVE, BEAT, SNAP, ASK = 1, 2, 3, 4, 5


def head(kind: int, origin: int, seq: int, rank: int = 1) -> bytes:
    return b"P" + bytes([kind]) + struct.pack("<QQQ", origin, rank, seq)


def member(topic: bytes, ident: bytes, info: bytes) -> bytes:
    return (struct.pack("<H", len(topic)) + topic + struct.pack("<H", len(ident)) + ident
            + struct.pack("<I", len(info)) + info)


def join(origin: int, seq: int, topic: bytes, ident: bytes, info: bytes = b"{}") -> bytes:
    return head(JOIN, origin, seq) + member(topic, ident, info)


def leave(origin: int, seq: int, topic: bytes, ident: bytes) -> bytes:
    return (head(LEAVE, origin, seq) + struct.pack("<H", len(topic)) + topic
            + struct.pack("<H", len(ident)) + ident)


def snap(origin: int, seq: int, members: list[bytes], part: int = 0, last: int = 1) -> bytes:
    return head(SNAP, origin, seq) + struct.pack("<IBI", part, last, len(members)) + b"".join(members)


def ask(origin: int, target: int) -> bytes:
    return head(ASK, origin, 0) + struct.pack("<Q", target)


def seq_of(*messages: bytes) -> bytes:
    return b"".join(struct.pack("<H", len(m)) + m for m in messages)


def main() -> None:
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus", "presence")
    os.makedirs(out, exist_ok=True)
    o = 0x1234
    m1 = member(b"room", b"a1", b'{"u":1}')
    m2 = member(b"room", b"a2", b"{}")
    seeds = {
        "beat_then_snapshot": seq_of(head(BEAT, o, 2), snap(o, 2, [m1, m2])),
        "snapshot_then_deltas": seq_of(snap(o, 2, [m1, m2]), join(o, 3, b"room", b"a3"),
                                       leave(o, 4, b"room", b"a1"), head(BEAT, o, 4)),
        "a_gap": seq_of(snap(o, 1, [m1]), join(o, 3, b"room", b"a9")),
        "two_parts": seq_of(snap(o, 5, [m1], 0, 0), snap(o, 5, [m2], 1, 1)),
        "parts_out_of_order": seq_of(snap(o, 5, [m1], 1, 0), snap(o, 5, [m2], 0, 1)),
        "asks": seq_of(ask(o, 0), ask(o, 0x5eed), ask(o, 99)),
        "drop": seq_of(snap(o, 1, [m1]), b"\xdd" + head(BEAT, o, 1)[1:]),
        "two_origins": seq_of(snap(o, 1, [m1]), snap(o + 1, 1, [m2]), head(BEAT, o + 1, 1)),
        "bad_kind": seq_of(head(9, o, 1)),
        "bad_origin": seq_of(head(BEAT, 0, 1)),
        "bad_last": seq_of(head(SNAP, o, 1) + struct.pack("<IBI", 0, 2, 0)),
        "bad_count": seq_of(head(SNAP, o, 1) + struct.pack("<IBI", 0, 1, 0xFFFFFFFF)),
        "bad_trailing": seq_of(head(BEAT, o, 1) + b"x"),
        "bad_empty_id": seq_of(head(LEAVE, o, 1) + b"\x01\x00t\x00\x00"),
    }
    for name, data in seeds.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
