#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_envelope (fuzz/corpus/envelope/): envelopes as
pubsub/envelope.h defines them (a msgpack array of version, origin, seq, topic, kind,
payload), well-formed in each header width, and one malformed input of each kind the
decoder names. The files are committed; this script says how they were made.
"""
import os
import struct
import sys

ORIGIN = bytes(range(16))


def uint(v: int) -> bytes:
    if v < 0x80:
        return bytes([v])
    if v < 1 << 8:
        return b"\xcc" + struct.pack(">B", v)
    if v < 1 << 16:
        return b"\xcd" + struct.pack(">H", v)
    if v < 1 << 32:
        return b"\xce" + struct.pack(">I", v)
    return b"\xcf" + struct.pack(">Q", v)


def string(b: bytes) -> bytes:
    n = len(b)
    if n < 32:
        return bytes([0xA0 | n]) + b
    if n < 1 << 8:
        return b"\xd9" + struct.pack(">B", n) + b
    if n < 1 << 16:
        return b"\xda" + struct.pack(">H", n) + b
    return b"\xdb" + struct.pack(">I", n) + b


def binary(b: bytes) -> bytes:
    n = len(b)
    if n < 1 << 8:
        return b"\xc4" + struct.pack(">B", n) + b
    if n < 1 << 16:
        return b"\xc5" + struct.pack(">H", n) + b
    return b"\xc6" + struct.pack(">I", n) + b


def env(topic: bytes = b"room:lobby", kind: int = 1, payload: bytes = b"hello",
        seq: int = 1, version: int = 1, origin: bytes = ORIGIN) -> bytes:
    return (b"\x96" + uint(version) + binary(origin) + uint(seq) + string(topic) + uint(kind)
            + binary(payload))


SEEDS = {
    "text": env(),
    "binary": env(kind=2, payload=bytes(range(256))),
    "empty-payload": env(payload=b""),
    "utf8": env(topic="ünï ✓".encode(), payload="καλημέρα".encode()),
    "seq-max": env(seq=(1 << 64) - 1),
    "seq-widths": env(seq=300) + b"",
    "topic-str8": env(topic=b"t" * 200),
    "topic-str16": env(topic=b"t" * 300),
    "payload-bin16": env(kind=2, payload=b"x" * 1000),
    "array16": b"\xdc\x00\x06" + env()[1:],
    "int8-kind": env()[:-8] + b"\xd0\x01" + binary(b"hello"),
    # Malformed, one of each.
    "empty": b"",
    "trailing": env() + b"\x00",
    "five-elements": b"\x95" + env()[1:],
    "a-map": b"\x81\x01\x02",
    "never-used-byte": b"\xc1",
    "huge-array": b"\xdd\xff\xff\xff\xff",
    "nested-huge-array": b"\x96\xdd\xff\xff\xff\xff",
    "nested-huge-map": b"\x96\xdf\xff\xff\xff\xff",
    "huge-bin": b"\x96\x01\xc6\xff\xff\xff\xff",
    "nil-version": b"\x96\xc0" + env()[2:],
    "negative-version": b"\x96\xff" + env()[2:],
    "float-version": b"\x96\xca\x3f\x80\x00\x00" + env()[2:],
    "version-2": env(version=2),
    "short-origin": env(origin=b"abc"),
    "seq-0": env(seq=0),
    "empty-topic": env(topic=b""),
    "topic-not-utf8": env(topic=b"\xff"),
    "kind-8": env(kind=8),
    "text-not-utf8": env(payload=b"\xc3\x28"),
    "binary-not-utf8": env(kind=2, payload=b"\xc3\x28"),
    "truncated": env()[:-3],
    "ext-payload": env()[:-7] + b"\xd4\x01\x00",
}


def main() -> int:
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "envelope")
    os.makedirs(out, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
    print(f"wrote {len(SEEDS)} seeds to {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
