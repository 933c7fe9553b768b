"""Bounded queues and limits: stalled readers under a publish flood (policy "close" and "drop"),
`await send_text` backpressure, the inbox limit, pings and ping timeouts, the connection limit,
the message size limit, and handshakes that never complete.

Memory is judged by the server process's VmRSS (/proc/<pid>/status) against what an unbounded
queue would have cost. Every test ends by checking that the server still serves.
"""

from __future__ import annotations

import asyncio
import select
import socket
import time
from collections.abc import Iterator

import pytest
from websockets.asyncio.client import connect as aconnect
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as sconnect

from apps.ws_wire import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    PeerClosed,
    RawWS,
    connect,
    encode_frame,
    http,
    http_json,
    rss_kib,
    wait_until,
)
from conftest import AppServer, StartApp

RECV = 5.0
MIB = 1024  # KiB in a MiB, for rss_kib() deltas

SEND_LIMIT = 65536
HIGH_WATER = 16384
INBOX_LIMIT = 8


@pytest.fixture(scope="module")
def slow(module_app: StartApp) -> Iterator[AppServer]:
    """Small send queues: 16 KiB high-water mark, 64 KiB limit; 8 messages of inbox."""
    yield module_app("ws_app", env={
        "ROBYN_WS_SEND_LIMIT": str(SEND_LIMIT),
        "ROBYN_WS_HIGH_WATER": str(HIGH_WATER),
        "ROBYN_WS_INBOX_LIMIT": str(INBOX_LIMIT),
    })


@pytest.fixture(scope="module")
def small(module_app: StartApp) -> Iterator[AppServer]:
    """At most 3 WebSocket connections; messages of at most 1000 bytes."""
    yield module_app("ws_app", env={"ROBYN_WS_MAX_CONNECTIONS": "3", "ROBYN_MAX_PAYLOAD_SIZE": "1000"})


@pytest.fixture(scope="module")
def pinging(module_app: StartApp) -> Iterator[AppServer]:
    """Pings after 1 s of silence; no answer for 1 s more closes the connection."""
    yield module_app("ws_app", env={"ROBYN_WS_PING_INTERVAL": "1", "ROBYN_WS_PING_TIMEOUT": "1"})


def ws_url(server: AppServer, path: str) -> str:
    return f"ws://127.0.0.1:{server.port}{path}"


def stats(server: AppServer) -> dict[str, int]:
    return http_json(server.address, "GET", "/stats")  # type: ignore[return-value]


def subscribers(server: AppServer, topic: str) -> int:
    return int(http_json(server.address, "GET", f"/subscribers/{topic}")["count"])


def still_serving(server: AppServer) -> None:
    assert http(server.address, "GET", "/") == (200, b"Hello, world!")
    with connect(server.address, "/echo") as ws:
        ws.send_text("still there?")
        assert ws.recv_message(RECV) == "still there?"


def numbered(i: int, size: int, fill: str = "y") -> str:
    return f"{i:08d}:".ljust(size, fill)


# ---- a stalled reader under a publish flood --------------------------------------------------

FLOOD_MESSAGES = 6000
FLOOD_SIZE = 4096  # 24 MB to every subscriber in all
BATCH = 8          # the fast clients read each batch before the next is sent


def publish_flood(server: AppServer, path: str, greeting: bool) -> tuple[int, float]:
    """Three fast readers and a sender in the room of `path`; the sender sends FLOOD_MESSAGES
    numbered messages (the endpoint publishes each to the room). Checks that every fast reader
    got every message in order. Returns (peak RSS growth in KiB, seconds)."""

    async def main() -> tuple[int, float]:
        conns = [await aconnect(ws_url(server, path), open_timeout=RECV, max_size=None) for _ in range(4)]
        readers, sender = conns[:3], conns[3]
        try:
            if greeting:
                for ws in conns:
                    assert await asyncio.wait_for(ws.recv(), RECV) == "welcome"
            room = path.rsplit("/", 1)[1]
            topic = room if path.startswith("/chat/") else f"drop:{room}"
            await asyncio.to_thread(wait_until, lambda: subscribers(server, topic) == 5, 5.0, 0.02,
                                    "5 subscribers")
            rss0 = rss_kib(server.proc.pid)
            peak = rss0
            got: list[list[int]] = [[] for _ in readers]
            started = time.monotonic()
            for start in range(0, FLOOD_MESSAGES, BATCH):
                for i in range(start, start + BATCH):
                    await sender.send(numbered(i, FLOOD_SIZE))
                for k, ws in enumerate(conns):
                    for _ in range(BATCH):
                        message = await asyncio.wait_for(ws.recv(), RECV)
                        assert len(message) == FLOOD_SIZE
                        if k < len(readers):
                            got[k].append(int(message[:8]))
                if start % 400 == 0:
                    peak = max(peak, rss_kib(server.proc.pid))
            elapsed = time.monotonic() - started
            peak = max(peak, rss_kib(server.proc.pid))
            for k in range(len(readers)):
                assert got[k] == list(range(FLOOD_MESSAGES)), f"fast reader {k} lost or reordered messages"
            return peak - rss0, elapsed
        finally:
            await asyncio.gather(*[ws.close() for ws in conns], return_exceptions=True)

    return asyncio.run(main())


def test_stalled_reader_policy_close(slow: AppServer) -> None:
    before = stats(slow)
    stalled = connect(slow.address, "/chat/stall", rcvbuf=4096)
    try:
        assert stalled.recv_message(RECV) == "welcome"
        # from here on the stalled client reads nothing
        growth, elapsed = publish_flood(slow, "/chat/stall", greeting=True)
        # 24 MB went to the room: an unbounded queue for the stalled reader would hold most of it
        assert growth < 8 * MIB, f"server RSS grew by {growth} KiB with a stalled reader"
        assert elapsed < 30
        after = stats(slow)
        assert after["slow_closed"] - before["slow_closed"] == 1
        assert after["slow_dropped"] == before["slow_dropped"]
        code, reason, messages = stalled.expect_close(RECV)
        assert (code, reason) == (1008, "send queue over its limit")
        # what it got before the close is a prefix of the flood, every message whole
        assert 0 < len(messages) < FLOOD_MESSAGES
        assert messages == [numbered(i, FLOOD_SIZE) for i in range(len(messages))]
        assert stalled.eof_within(RECV)
    finally:
        stalled.close()
    wait_until(lambda: subscribers(slow, "stall") == 0, what="room empty")
    still_serving(slow)


def test_stalled_reader_policy_drop(slow: AppServer) -> None:
    before = stats(slow)
    stalled = connect(slow.address, "/droproom/d", rcvbuf=4096)
    try:
        growth, elapsed = publish_flood(slow, "/droproom/d", greeting=False)
        assert growth < 8 * MIB, f"server RSS grew by {growth} KiB with a stalled reader"
        assert elapsed < 30
        after = stats(slow)
        dropped = after["slow_dropped"] - before["slow_dropped"]
        assert after["slow_closed"] == before["slow_closed"]
        assert 0 < dropped < FLOOD_MESSAGES
        # the stalled reader now reads what was kept: whole messages, in order, with gaps
        kept: list[int] = []
        while True:
            try:
                message = stalled.recv_message(1.0)
            except TimeoutError:
                break
            assert isinstance(message, str) and len(message) == FLOOD_SIZE
            assert message == numbered(int(message[:8]), FLOOD_SIZE)
            kept.append(int(message[:8]))
        assert kept == sorted(set(kept)) and kept[0] == 0, kept[:10]
        assert len(kept) + dropped == FLOOD_MESSAGES
        # the connection was kept: it answers pings and gets new messages
        stalled.send(OP_PING, b"still here")
        frame = stalled.recv_frame(RECV)
        assert (frame.opcode, frame.payload) == (OP_PONG, b"still here")
        stalled.send_text("after the flood")  # published to the room, itself included
        assert stalled.recv_message(RECV) == "after the flood"
    finally:
        stalled.close()
    still_serving(slow)


# ---- await send_text() backpressure ------------------------------------------------------------


def flood_progress(server: AppServer) -> int:
    return int(http_json(server.address, "GET", "/flood-progress")["sent"])


def test_awaited_sends_wait_for_a_slow_reader_then_resume(slow: AppServer) -> None:
    count, size = 3000, 16384  # 48 MB if nothing waited
    with connect(slow.address, "/flood", rcvbuf=4096, timeout=RECV) as ws:
        rss0 = rss_kib(slow.proc.pid)
        ws.send_text(f"go {count} {size}")
        time.sleep(0.5)
        first = flood_progress(slow)
        time.sleep(0.5)
        second = flood_progress(slow)
        growth = rss_kib(slow.proc.pid) - rss0
        # the handler's loop waits: it made no progress while nothing was read
        assert first == second, (first, second)
        assert 0 < second < count // 4, second
        assert growth < 8 * MIB, f"server RSS grew by {growth} KiB"
        # a send past the 64 KiB limit would have closed the connection (1008): the handler
        # waited instead. Now the reader reads, and the handler resumes until the end.
        for i in range(count):
            assert ws.recv_message(RECV) == numbered(i, size, "x")  # what /flood sends
        assert ws.recv_message(RECV) == "done"
        assert flood_progress(slow) == count
        ws.send_close(1000)
        code, _, messages = ws.expect_close(RECV)
        assert (code, messages) == (1000, [])
    still_serving(slow)


# ---- the inbox limit: the server stops reading a socket Python does not keep up with -----------


def test_inbox_limit_stops_reading_until_the_handler_reads(slow: AppServer) -> None:
    count, size = 2000, 16384  # 32 MB of binary messages
    frames = b"".join(encode_frame(OP_BINARY, i.to_bytes(4, "big") * (size // 4)) for i in range(count))
    with connect(slow.address, "/hold", timeout=10) as ws:
        rss0 = rss_kib(slow.proc.pid)
        sock = ws.sock
        sock.setblocking(False)
        sent, last_progress = 0, time.monotonic()
        deadline = time.monotonic() + 20
        while sent < len(frames) and time.monotonic() - last_progress < 1.0 and time.monotonic() < deadline:
            select.select([], [sock], [], 0.1)
            try:
                n = sock.send(frames[sent:sent + 262144])
            except BlockingIOError:
                continue
            sent += n
            last_progress = time.monotonic()
        growth = rss_kib(slow.proc.pid) - rss0
        # the handler reads nothing: the server stopped reading after a few messages, and
        # the rest waits in the kernel's buffers and the client's
        assert sent < len(frames) // 2, f"the server read {sent} bytes while its handler read nothing"
        assert growth < 8 * MIB, f"server RSS grew by {growth} KiB"
        assert http(slow.address, "POST", "/release") == (200, b"released")
        sock.settimeout(20)
        sock.sendall(frames[sent:])
        sock.sendall(encode_frame(OP_TEXT, b"end"))
        assert ws.recv_message(20) == f"count {count} ok True"
    still_serving(slow)


# ---- handshakes that never complete ----------------------------------------------------------------


def read_to_eof(sock: socket.socket, deadline: float) -> bytes:
    """Everything the server sends until it ends the connection; fails at the deadline."""
    data = b""
    while True:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"the server kept the connection open (got {data[:100]!r})"
        if not select.select([sock], [], [], remaining)[0]:
            continue
        try:
            chunk = sock.recv(4096)
        except ConnectionResetError:
            return data
        if not chunk:
            return data
        data += chunk


def test_half_sent_handshake_is_dropped_within_the_timeout(slow: AppServer) -> None:
    half = [socket.create_connection(slow.address, timeout=5) for _ in range(5)]
    try:
        for sock in half:
            sock.sendall(b"GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n")
        started = time.monotonic()
        still_serving(slow)  # the half-open ones block nothing
        for sock in half:
            answer = read_to_eof(sock, started + 15)
            # dropped (EOF or reset), or told 408 first: never upgraded, never left open
            assert answer == b"" or answer.startswith(b"HTTP/1.1 408"), answer[:200]
        assert time.monotonic() - started < 15
    finally:
        for sock in half:
            sock.close()
    still_serving(slow)


# ---- pings -----------------------------------------------------------------------------------------


def test_idle_connections_are_pinged_and_a_silent_peer_is_closed(pinging: AppServer) -> None:
    """Over 6.5 s (interval 1 s, timeout 1 s): a raw client that never answers pings is dropped;
    four raw clients that answer every ping at once, and a `websockets` client (which answers
    pings itself), all stay open."""
    window = 6.5
    polite = [connect(pinging.address, "/echo") for _ in range(4)]
    silent = connect(pinging.address, "/echo")
    try:
        with sconnect(ws_url(pinging, "/echo"), ping_interval=None) as library:
            started = time.monotonic()
            silent_pings, silent_closed_at = 0, None
            polite_pings = [0] * len(polite)
            polite_lost: dict[int, float] = {}
            while time.monotonic() - started < window:
                watched = [ws.sock for i, ws in enumerate(polite) if i not in polite_lost]
                if silent_closed_at is None:
                    watched.append(silent.sock)
                ready = select.select(watched, [], [], 0.05)[0]
                now = round(time.monotonic() - started, 3)
                for i, ws in enumerate(polite):
                    if i in polite_lost or ws.sock not in ready:
                        continue
                    try:
                        frame = ws.recv_frame(RECV)
                    except PeerClosed:
                        polite_lost[i] = now
                        continue
                    assert frame.opcode == OP_PING, frame
                    ws.send(OP_PONG, frame.payload)  # answered at once
                    polite_pings[i] += 1
                if silent_closed_at is None and silent.sock in ready:
                    try:
                        frame = silent.recv_frame(RECV)
                    except PeerClosed:
                        silent_closed_at = now
                        continue
                    if frame.opcode == OP_PING:
                        silent_pings += 1  # and no pong
                    elif frame.opcode == OP_CLOSE:
                        assert silent.eof_within(RECV)
                        silent_closed_at = now
                    else:
                        pytest.fail(f"unexpected frame {frame}")
            assert polite_lost == {}, (f"clients that answered every ping were dropped at "
                                       f"{polite_lost} s (pings answered: {polite_pings})")
            assert min(polite_pings) >= 2, polite_pings
            assert silent_pings >= 1
            assert silent_closed_at is not None and 1.0 <= silent_closed_at <= 4.5, silent_closed_at
            for i, ws in enumerate(polite):
                ws.send_text(f"polite {i} still open")
                assert ws.recv_message(RECV) == f"polite {i} still open"
            library.send("library still open")
            assert library.recv(timeout=RECV) == "library still open"
    finally:
        for ws in polite + [silent]:
            ws.close()
    still_serving(pinging)


def test_a_busy_connection_is_not_closed_by_the_ping_timeout(pinging: AppServer) -> None:
    """A client that answers every ping and keeps talking for 3 s (longer than interval plus
    timeout) stays open: the ping timeout never cuts a live connection."""
    with connect(pinging.address, "/echo") as ws:
        started = time.monotonic()
        n = 0
        while time.monotonic() - started < 3.0:
            ws.send_text(f"m{n}")
            assert ws.recv_message(RECV) == f"m{n}"  # recv_message answers pings
            n += 1
            time.sleep(0.05)
        assert n > 20
    still_serving(pinging)


# ---- the connection limit and the message size limit -----------------------------------------------


def test_max_connections_503_then_room_again(small: AppServer) -> None:
    wait_until(lambda: stats(small)["connections"] == 0, what="no connections")
    conns = [connect(small.address, "/echo") for _ in range(3)]
    try:
        with RawWS(small.address) as extra:
            assert extra.handshake("/echo") == 503
            assert extra.eof_within(RECV)
        assert http(small.address, "GET", "/") == (200, b"Hello, world!")  # HTTP unaffected
        for i, ws in enumerate(conns):  # the three are fine
            ws.send_text(f"c{i}")
            assert ws.recv_message(RECV) == f"c{i}"
        conns[0].send_close(1000)
        assert conns[0].expect_close(RECV)[0] == 1000
        wait_until(lambda: stats(small)["connections"] == 2, what="2 connections")
        with connect(small.address, "/echo") as again:
            again.send_text("room again")
            assert again.recv_message(RECV) == "room again"
    finally:
        for ws in conns:
            ws.close()
    wait_until(lambda: stats(small)["connections"] == 0, what="no connections")
    still_serving(small)


def test_max_payload_size_boundary(small: AppServer) -> None:
    wait_until(lambda: stats(small)["connections"] == 0, what="no connections")
    with connect(small.address, "/echo") as ws:
        ws.send(OP_BINARY, b"b" * 1000)
        assert ws.recv_message(RECV) == b"b" * 1000
        ws.send(OP_TEXT, b"t" * 600, fin=False)
        ws.send(OP_CONT, b"t" * 400)
        assert ws.recv_message(RECV) == "t" * 1000
        ws.send(OP_BINARY, b"b" * 1001)
        code, reason, messages = ws.expect_close(RECV)
        assert (code, reason, messages) == (1009, "message too big", [])
    with connect(small.address, "/echo") as ws:
        ws.send(OP_TEXT, b"t" * 600, fin=False)
        ws.send(OP_CONT, b"t" * 401)
        code, _, messages = ws.expect_close(RECV)
        assert (code, messages) == (1009, [])
    still_serving(small)


def test_max_payload_size_applies_to_the_inflated_size(small: AppServer) -> None:
    """A compressed message is judged by what it inflates to: 1000 bytes pass, 1001 (a frame of
    a few bytes on the wire) close with 1009."""
    wait_until(lambda: stats(small)["connections"] == 0, what="no connections")
    with sconnect(ws_url(small, "/zecho")) as ws:
        assert ws.response.headers.get("Sec-WebSocket-Extensions", "").startswith("permessage-deflate")
        ws.send("a" * 1000)
        assert ws.recv(timeout=RECV) == "a" * 1000
        ws.send("a" * 1001)
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=RECV)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
    still_serving(small)
