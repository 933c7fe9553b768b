#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_http (fuzz/corpus/http/).

Each file is three control bytes (cut pattern, limits, callback behaviour; see
fuzz_http.c) and then the bytes of one connection: well-formed requests of every shape
docs/http.md names, and the malformed ones it says how to answer. The files are
committed; this script only says how they were made (run it again after editing SEEDS).

The regress-* files beside them are inputs the fuzzer found (each is also a test in
tests/c/test_httpparse.c); this script leaves them alone.
"""
import hashlib
import os
import sys

# Control bytes. Cut patterns: 0 byte by byte, 1|k<<3 fixed k+2, 2/3 random, 4 per line,
# 5 before CR/LF, 6|k<<3 two feeds cut at k/32, 7 alternate.
BYTE, FIXED5, RANDOM, RANDOM_SMALL, LINES, CRLF, HALF, ALT = 0, 1 | 3 << 3, 2 | 5 << 3, 3, 4, 5, 6 | 16 << 3, 7
# Limits: bits 0-1 head {64,200,1024,16384}, 2 four header lines, 3 a 24-byte target,
# bits 4-5 body {0,16,100,1000000}.
DEFAULT = 3 | 3 << 4
SMALL = 1 | 4 | 8 | 1 << 4
# Behaviour: 1 drop odd bodies, 2 pause after even requests, 4 stop, 8 out of memory.
KEEP, DROP, PAUSE, STOP, OOM = 0, 1, 2, 4, 8

CHUNKED = b"Transfer-Encoding: chunked\r\n"

SEEDS = [
    # name, cut, limits, behaviour, bytes
    ("get", LINES, DEFAULT, KEEP, b"GET /hello HTTP/1.1\r\nHost: example.com\r\n\r\n"),
    ("get-query", BYTE, DEFAULT, KEEP,
     b"GET /s?q=a+b%20c&amp=%26&x=1%2&flag&&=v#frag HTTP/1.1\r\nHost: h\r\n\r\n"),
    ("path-decoding", RANDOM, DEFAULT, KEEP,
     b"GET /a%20b/c+d/%41%2fx HTTP/1.1\r\n\r\nGET /bad%2 HTTP/1.1\r\n\r\nGET /n%00 HTTP/1.1\r\n\r\n"),
    ("headers", CRLF, DEFAULT, KEEP,
     b"GET / HTTP/1.1\r\nX-Foo: a  \r\nx-foo: b\t\r\nEmpty:\r\nCOOKIE: c=1; d=2\r\n\r\n"),
    ("pipelined-posts", RANDOM_SMALL, DEFAULT, DROP,
     b"POST /a HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"
     b"POST /b HTTP/1.1\r\nContent-Length: 0\r\n\r\n"
     b"POST /c HTTP/1.1\r\nContent-Length: 11\r\n\r\nhello world"),
    ("chunked", BYTE, DEFAULT, KEEP,
     b"POST /up HTTP/1.1\r\n" + CHUNKED + b"\r\n5;name=value\r\nhello\r\n1;a;b=\"q d\"\r\n \r\n"
     b"A\r\n0123456789\r\n0;last=1\r\nX-Trailer: t\r\n\r\nGET /next HTTP/1.1\r\n\r\n"),
    ("chunked-limit", RANDOM, SMALL, KEEP,
     b"POST / HTTP/1.1\r\n" + CHUNKED + b"\r\n6\r\nhello \r\n6\r\nworld!\r\n0\r\n\r\n"),
    ("chunked-bad-crlf", HALF, DEFAULT, KEEP,
     b"POST / HTTP/1.1\r\n" + CHUNKED + b"\r\n5\r\nhelloXX0\r\n\r\n"),
    ("chunked-bare-lf-ext", BYTE, DEFAULT, KEEP,
     b"POST / HTTP/1.1\r\n" + CHUNKED + b"\r\n5;a\nb\r\nhello\r\n0\r\n\r\n"),
    ("absolute-form", LINES, DEFAULT, KEEP,
     b"GET http://example.com:8080/x%20y?a=1 HTTP/1.1\r\nHost: other\r\n\r\n"
     b"GET http://example.org HTTP/1.1\r\n\r\n"),
    ("connect", BYTE, DEFAULT, KEEP,
     b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n\x16\x03\x01\x00"),
    ("websocket", RANDOM, DEFAULT, DROP,
     b"GET /chat HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
     b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
     b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58"),
    ("h2c-ignored", CRLF, DEFAULT, PAUSE,
     b"GET /a HTTP/1.1\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
     b"HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\nGET /b HTTP/1.1\r\n\r\n"),
    ("h2c-body", BYTE, DEFAULT, KEEP,
     b"POST /a HTTP/1.1\r\nConnection: upgrade\r\nUpgrade: h2c\r\nContent-Length: 10\r\n\r\n"
     b"hello worldGET /b HTTP/1.1\r\n\r\n"),
    ("expect", FIXED5, DEFAULT, KEEP,
     b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nok"
     b"POST / HTTP/1.1\r\nExpect: something-else\r\n\r\n"),
    ("purge", LINES, DEFAULT, KEEP, b"PURGE /cache HTTP/1.1\r\n\r\nMKCOL /x HTTP/1.1\r\n\r\n"),
    ("brew", LINES, DEFAULT, KEEP, b"GET / HTTP/1.1\r\n\r\nBREW /pot HTTP/1.1\r\n\r\n"),
    ("tls", BYTE, DEFAULT, KEEP, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"),
    ("http2", RANDOM, DEFAULT, KEEP, b"GET / HTTP/2.0\r\n\r\n"),
    ("lax-version", BYTE, DEFAULT, KEEP, b"GET / HXXP/1.1\r\n\r\n"),
    ("lax-head-end", BYTE, DEFAULT, KEEP, b"GET / HTTP/1.1\r\nFoo: a\r\n\rXGET / HTTP/1.1\r\n\r\n"),
    ("obs-fold", BYTE, DEFAULT, KEEP, b"GET / HTTP/1.1\r\nFoo: a\r\n b\r\n\r\n"),
    ("obs-fold-empty", HALF, DEFAULT, KEEP, b"GET / HTTP/1.1\r\nFoo:\r\n b\r\n\r\n"),
    ("nul-value", BYTE, DEFAULT, KEEP, b"GET / HTTP/1.1\r\nFoo: a\x00b\r\n\r\n"),
    ("no-colon", LINES, DEFAULT, KEEP, b"GET / HTTP/1.1\r\nFoo bar\r\n\r\n"),
    ("space-before-colon", BYTE, DEFAULT, KEEP,
     b"POST / HTTP/1.1\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n"),
    ("cl-te", RANDOM, DEFAULT, KEEP,
     b"POST / HTTP/1.1\r\nContent-Length: 5\r\n" + CHUNKED + b"\r\n0\r\n\r\n"),
    ("cl-cl", LINES, DEFAULT, KEEP,
     b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"),
    ("te-gzip", BYTE, DEFAULT, KEEP,
     b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"),
    ("limits-small", BYTE, SMALL, KEEP,
     b"POST /0123456789 HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nContent-Length: 17\r\n\r\n"
     b"0123456789abcdefg"),
    ("stop", ALT, DEFAULT, STOP | PAUSE,
     b"GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\nGET /3 HTTP/1.1\r\n\r\n"
     b"POST /4 HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET /5 HTTP/1.1\r\n\r\n"),
    ("oom", RANDOM_SMALL, DEFAULT, OOM,
     b"GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\nGET /3 HTTP/1.1\r\n\r\n"),
    ("body-nul-fits", HALF, DEFAULT, KEEP,
     b"GET /?a=" + b"b" * 251 + b" HTTP/1.1\r\n\r\nGET /?a=" + b"b" * 507 + b" HTTP/1.1\r\n\r\n"),
]


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    out = os.path.join(here, "corpus", "http")
    os.makedirs(out, exist_ok=True)
    names = set()
    for name, cut, limits, behaviour, data in SEEDS:
        assert name not in names, name
        names.add(name)
        with open(os.path.join(out, name), "wb") as f:
            f.write(bytes([cut, limits, behaviour]) + data)
    stale = sorted(n for n in set(os.listdir(out)) - names if not n.startswith("regress-"))
    for name in stale:
        os.remove(os.path.join(out, name))
    print(f"{len(SEEDS)} seeds in {out}" + (f" ({len(stale)} stale removed)" if stale else ""),
          file=sys.stderr)


if __name__ == "__main__":
    main()
