#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_redis_history (fuzz/corpus/redis_history/): replies of
the read script as Redis sends them (RESP), well-formed and malformed, and channel messages
for the head parser (prefixed 'h'). The files are committed; this script says how they were
made.
"""
import os
import sys


def bulk(b: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(b), b)


def integer(v: int) -> bytes:
    return b":%d\r\n" % v


def reply(status: int, epoch: bytes, last: int, entries: list[tuple[int, bytes]]) -> bytes:
    out = b"*%d\r\n" % (3 + 2 * len(entries)) + integer(status) + bulk(epoch) + integer(last)
    for off, msg in entries:
        out += integer(off) + bulk(msg)
    return out


def message(epoch: bytes, off: int, data: bytes = b"1") -> bytes:
    return b'{"epoch":"%s","offset":%d,"topic":"t","data":%s}' % (epoch, off, data)


SEEDS = {
    "ok_two": reply(0, b"3f9a0c12be.7", 9, [(7, message(b"3f9a0c12be.7", 7)),
                                            (9, message(b"3f9a0c12be.7", 9, b'"\xc3\xa9"'))]),
    "ok_none_held": reply(0, b"ab.1", 0, []),
    "gone": reply(1, b"ab.1", 12, []),
    "no_epoch": reply(2, b"", 0, []),
    "bad_head": reply(0, b"ab.1", 9, [(8, message(b"ab.1", 7))]),
    "bad_order": reply(0, b"ab.1", 9, [(7, message(b"ab.1", 7)), (7, message(b"ab.1", 7))]),
    "error": b"-NOSCRIPT No matching script\r\n",
    "nested": b"*3\r\n*1\r\n:0\r\n$1\r\na\r\n:1\r\n",
    "two_replies": reply(1, b"e", 1, []) + reply(2, b"", 0, []),
    # Claims the bounded reader refuses before hiredis allocates (a CI run's out-of-memory
    # finding: hiredis 1.x's RESP3 sets and pushes were not bounded before).
    "huge_array": b"*2000000000\r\n",
    "huge_set": b"~693609863\r\n",
    "huge_push": b">693609863\r\n",
    "huge_map": b"%346804932\r\n",
    "huge_nested": b"*3\r\n*9\r\n",
    "head_ok": b"h" + message(b"3f9a0c12be.7", 418),
    "head_max": b'h{"epoch":"e","offset":18446744073709551615,',
    "head_zero": b'h{"epoch":"e","offset":0,',
}


def main() -> None:
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus", "redis_history")
    os.makedirs(out, exist_ok=True)
    for name, data in SEEDS.items():
        # Replies start with any byte but 'h' (the decoder's side of the target).
        with open(os.path.join(out, name), "wb") as f:
            f.write(data if data.startswith(b"h") else b"r" + data)


if __name__ == "__main__":
    main()
