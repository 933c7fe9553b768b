"""Connections that read `websocket.headers` are freed when they close, and an idle one holds
little.

`WebSocket -> Request -> Job -> Connection -> WebSocket` is a reference cycle; the Job takes
part in garbage collection so that the collector can free it. Each connection here does the
whole handshake over a raw socket, gets the handler's one message (built from
`websocket.headers`) and leaves; the server's resident memory must stay flat. Then 400 idle
subscribers are held and what Python's allocator holds for each is bounded.
"""

from __future__ import annotations

import base64
import os
import socket
import time

from apps.ws_wire import http_json, wait_until



def _rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS line")


def _one_connection(address: tuple[str, int], i: int) -> None:
    key = base64.b64encode(os.urandom(16)).decode()
    request = (f"GET /info/a{i}/b?q={i} HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
               f"Sec-WebSocket-Version: 13\r\nX-Test: value-{i}\r\n\r\n").encode()
    with socket.create_connection(address, timeout=5) as sock:
        sock.sendall(request)
        data = b""
        deadline = time.monotonic() + 5
        # The 101, then the first frame: a text frame whose payload names our X-Test value.
        while f"value-{i}".encode() not in data:
            if time.monotonic() > deadline:
                raise AssertionError(f"no message from connection {i}: {data[:200]!r}")
            chunk = sock.recv(65536)
            if not chunk:
                raise AssertionError(f"connection {i} closed early: {data[:200]!r}")
            data += chunk
        assert data.startswith(b"HTTP/1.1 101 ")


def _run(address: tuple[str, int], start: int, count: int) -> None:
    for i in range(start, start + count):
        _one_connection(address, i)


def test_connections_reading_headers_leave_memory_flat(start_app, assert_serving):
    server = start_app("ws_app")
    pid = server.proc.pid
    _run(server.address, 0, 1000)  # warm-up: pools, allocator arenas, caches
    time.sleep(0.5)
    before = _rss_kb(pid)
    _run(server.address, 1000, 5000)
    time.sleep(0.5)
    after = _rss_kb(pid)
    # A leaked connection (its C state, its Python objects) costs well over 5 KB: 5,000 of
    # them would be 25 MB and more. 4 MB leaves room for the allocator's own noise.
    assert after - before < 4096, f"RSS grew {after - before} KB over 5,000 connections ({before} -> {after} KB)"
    assert_serving(server)


def _open_idle(address: tuple[str, int], topic: str) -> socket.socket:
    key = base64.b64encode(os.urandom(16)).decode()
    sock = socket.create_connection(address, timeout=5)
    sock.sendall((f"GET /idle?topic={topic} HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                  "Sec-WebSocket-Version: 13\r\n\r\n").encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        assert chunk, f"closed before the 101: {data!r}"
        data += chunk
    assert data.startswith(b"HTTP/1.1 101 "), data[:100]
    return sock


def test_python_holds_little_per_idle_subscriber(start_app, assert_serving):
    """What Python keeps for an idle `subscribe` + `async for` connection: about 1.2 KB of
    objects (docs/benchmarks.md, "idle": the Task, the future it waits on, asyncio's
    bookkeeping, the WebSocket, the handler's coroutine; 1,241 bytes when this was
    written). 1.4 KB is the bound: a coroutine of the framework waiting around the handler
    (about 500 bytes) or a second task per connection would go past it."""
    server = start_app("ws_idle_app")
    n = 400
    warm = [_open_idle(server.address, "warm") for _ in range(50)]  # pools, set and arena growth
    wait_until(lambda: http_json(server.address, "GET", "/subscribers/warm")["count"] == 50, 10.0,
               what="50 warm-up subscribers")
    before = http_json(server.address, "GET", "/python-bytes")["bytes"]
    socks = [_open_idle(server.address, "idle") for _ in range(n)]
    try:
        # The count is read on the loop that runs the handlers: once it says n, every handler
        # has subscribed and reached its `async for`, with nothing awaited in between.
        wait_until(lambda: http_json(server.address, "GET", "/subscribers/idle")["count"] == n,
                   10.0, what=f"{n} subscribers")
        after = http_json(server.address, "GET", "/python-bytes")["bytes"]
        per = (after - before) / n
        assert 600 < per < 1400, f"Python holds {per:.0f} bytes per idle connection"
    finally:
        for sock in socks + warm:
            sock.close()
    assert_serving(server)
