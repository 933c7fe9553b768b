"""A bounded batch of randomly mutated requests (seeded, so a failure can be replayed): each
one is answered (a whole response head with a status docs/http.md can give) or closed,
within a bound; and afterwards the server still serves.

Mutations flip, insert, delete, duplicate or truncate bytes, and splice in the tokens HTTP
parsing is sensitive to (CR, LF, NUL, colons, framing headers, percent signs ...). A third
of the clients half-close after sending, the rest wait.
"""

from __future__ import annotations

import random
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

SEED = 20250611
CASES = 500
WORKERS = 40
# Incomplete requests wait for the 1 s head or body timeout; the rest is the sweep's
# granularity and a shared machine's delays.
TIMEOUT = 1
BOUND = 2.5
ENV = {
    "ROBYN_HEADER_TIMEOUT": str(TIMEOUT),
    "ROBYN_BODY_TIMEOUT": str(TIMEOUT),
    "ROBYN_KEEP_ALIVE_TIMEOUT": "2",
    "ROBYN_MAX_PAYLOAD_SIZE": "65536",
}
# Every status the server or the app can give to a client's bytes (no 500: the app's
# handlers do not fail on any input).
STATUSES = {100, 200, 400, 404, 405, 408, 413, 414, 417, 431, 501, 505}

BASES = [
    b"GET /echo?a=1&b=%26 HTTP/1.1\r\nHost: t\r\nX-Custom-Thing: v\r\nAccept: */*\r\n\r\n",
    b"POST /echo/x HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\nContent-Type: text/plain\r\n\r\nhello world",
    b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5;e=1\r\nhello\r\n6\r\n world\r\n0\r\nT: x\r\n\r\n",
    b"GET /users/a%20b HTTP/1.1\r\nHost: t\r\n\r\nGET /const HTTP/1.1\r\nHost: t\r\n\r\n",
    b"PUT /m HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 3\r\n\r\nabc",
    b"GET http://example.com/echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n\r\n",
    b"DELETE /ok HTTP/1.1\r\nHost: t\r\nCookie: a=1\r\nCookie: b=2\r\n\r\n",
    b"TRACE /t HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
]
TOKENS = [
    b"\r\n", b"\n", b"\r", b"\x00", b" ", b":", b"\t", b"%", b"%00", b"%zz", b"0", b"chunked",
    b"Content-Length: 5\r\n", b"Transfer-Encoding: chunked\r\n", b"Content-Length: 99999999999\r\n",
    b"\xff", b"HTTP/1.1", b"HTTP/2.0", b"\r\n\r\n", b"9" * 20, b"/", b"?", b"#", b";", b"\r\n ",
    b"Expect: 100-continue\r\n", b"CONNECT", b"PURGE",
]


def mutate(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(6)
        pos = rng.randrange(len(out) + 1)
        if op == 0 and out:
            out[min(pos, len(out) - 1)] = rng.randrange(256)
        elif op == 1:
            out[pos:pos] = bytes([rng.randrange(256)])
        elif op == 2 and out:
            del out[pos:pos + rng.randint(1, 8)]
        elif op == 3:
            out[pos:pos] = rng.choice(TOKENS)
        elif op == 4 and out:
            start = rng.randrange(len(out))
            out[pos:pos] = out[start:start + rng.randint(1, 40)]
        elif op == 5 and rng.random() < 0.3:
            del out[pos:]
    return bytes(out)


def run_case(address: tuple[str, int], index: int, data: bytes, half_close: bool) -> str | None:
    """None when the server answered or closed in time; else what went wrong."""
    started = time.monotonic()
    received = b""
    with socket.socket() as sock:
        sock.settimeout(BOUND)
        sock.connect(address)
        try:
            sock.sendall(data)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            return None  # closed while the client wrote
        while True:
            remaining = started + BOUND - time.monotonic()
            if remaining <= 0:
                return f"case {index}: neither answered nor closed within {BOUND} s (got {received[:80]!r}): {data!r}"
            sock.settimeout(remaining)
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                chunk = b""
            except socket.timeout:
                continue
            if not chunk:
                if received and b"\r\n\r\n" not in received:
                    return f"case {index}: closed inside a response head {received[:80]!r}: {data!r}"
                break
            received += chunk
            if b"\r\n\r\n" in received:
                break
    if received:
        line = received.split(b"\r\n", 1)[0]
        parts = line.split(b" ", 2)
        if len(parts) < 2 or parts[0] != b"HTTP/1.1" or not parts[1].isdigit() or int(parts[1]) not in STATUSES:
            return f"case {index}: unexpected status line {line!r}: {data!r}"
    return None


@pytest.fixture(scope="module")
def server(module_app):
    return module_app("http11_app", env=ENV)


def test_mutated_requests_are_answered_or_closed(server, assert_serving):
    rng = random.Random(SEED)
    cases = []
    for i in range(CASES):
        data, half_close = mutate(rng, rng.choice(BASES)), rng.random() < 0.33
        if not data.strip(b"\r\n"):
            # Nothing but line ends is no request yet: an idle connection, which waits for
            # the keep-alive timeout. Such a client says it is done instead.
            half_close = True
        cases.append((i, data, half_close))
    started = time.monotonic()
    with ThreadPoolExecutor(WORKERS) as pool:
        results = list(pool.map(lambda case: run_case(server.address, *case), cases))
    elapsed = time.monotonic() - started
    failures = [result for result in results if result is not None]
    assert not failures, (f"{len(failures)} of {CASES} mutated requests failed (seed {SEED}, "
                          f"{elapsed:.1f} s):\n" + "\n".join(failures[:10]))
    assert server.proc.poll() is None, server.log()[-3000:]
    assert_serving(server)


def test_the_server_serves_normally_after_the_fuzz(server, raw, assert_serving):
    with raw(server) as conn:
        conn.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello"
                  b"GET /const HTTP/1.1\r\nHost: t\r\n\r\n")
        first, second = conn.read_responses(2)
        assert first.status == 200 and b'"body":"hello"' in first.body
        assert (second.status, second.body) == (200, b"const!")
    assert_serving(server)
