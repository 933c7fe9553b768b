"""Messages bigger than the send limit (ROBYN_WS_SEND_LIMIT, 1 MiB by default): a send queue at
or under its high-water mark (64 KiB) takes any one message, however large, so a 16 MiB echo
goes through `async for`; a queue already over its mark gets the slow-consumer policy for a
message that does not fit under the limit: close 1008 `send queue over its limit` for a send()
or a publish, the message dropped for a publish to a backpressure="drop" endpoint.

The server runs with ROBYN_MAX_PAYLOAD_SIZE=20000000 (as for Autobahn's section 9) and the
default marks. A stalled reader is a raw client with a 4 KiB receive buffer that reads nothing
for a while: the first big message then waits in the server's socket buffers and lws', the next
one in the queue. Every test ends by checking that the server still serves.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from websockets.sync.client import connect as sconnect

from apps.ws_wire import OP_PING, OP_PONG, connect, http, http_json, wait_until
from conftest import AppServer, StartApp

RECV = 10.0
MIB = 1024 * 1024
BIG = 3 * MIB  # three times the send limit
STALL_RCVBUF = 4096


@pytest.fixture(scope="module")
def server(module_app: StartApp) -> Iterator[AppServer]:
    yield module_app("ws_app", env={"ROBYN_MAX_PAYLOAD_SIZE": "20000000"})


def numbered(i: int, size: int) -> str:
    """What /big and /flood send: the index in 8 digits, a colon, then x up to size."""
    head = f"{i:08d}:"
    return head + "x" * (size - len(head))


def stats(server: AppServer) -> dict[str, int]:
    return http_json(server.address, "GET", "/stats")  # type: ignore[return-value]


def subscribers(server: AppServer, topic: str) -> int:
    return int(http_json(server.address, "GET", f"/subscribers/{topic}")["count"])  # type: ignore[index]


def flood_progress(server: AppServer) -> int:
    return int(http_json(server.address, "GET", "/flood-progress")["sent"])  # type: ignore[index]


def still_serving(server: AppServer) -> None:
    assert http(server.address, "GET", "/") == (200, b"Hello, world!")
    with connect(server.address, "/echo") as ws:
        ws.send_text("still there?")
        assert ws.recv_message(RECV) == "still there?"


def ws_url(server: AppServer, path: str) -> str:
    return f"ws://127.0.0.1:{server.port}{path}"


# ---- idle connections take a message over the limit ----------------------------------------------


@pytest.mark.parametrize("path", ["/echo", "/zecho"])
def test_16_mib_echo_through_async_for(server: AppServer, path: str) -> None:
    """16 MiB text and binary messages echoed by `async for` + `await send_*()`, plain and
    with permessage-deflate; then a small one on the same connection."""
    before = stats(server)
    text = "".join(chr(0x20 + i % 90) for i in range(1024)) * (16 * 1024)
    binary = bytes(range(256)) * (16 * 4096)
    assert len(text) == len(binary) == 16 * MIB
    with sconnect(ws_url(server, path), max_size=None, open_timeout=RECV) as ws:
        if path == "/zecho":
            assert ws.response.headers["Sec-WebSocket-Extensions"].startswith("permessage-deflate")
        ws.send(text)
        assert ws.recv(timeout=RECV) == text
        ws.send(binary)
        assert ws.recv(timeout=RECV) == binary
        ws.send("small after big")
        assert ws.recv(timeout=RECV) == "small after big"
    after = stats(server)
    assert (after["slow_closed"], after["slow_dropped"]) == (before["slow_closed"], before["slow_dropped"])
    still_serving(server)


def test_send_and_publish_over_the_limit_on_idle_connections(server: AppServer) -> None:
    """A send() that is not awaited and a publish, each of one 3 MiB message, to connections
    with empty queues: both delivered whole, and both connections stay open."""
    before = stats(server)
    with connect(server.address, "/big", timeout=RECV) as sender, \
            connect(server.address, "/topic/idle-big", timeout=RECV) as subscriber:
        wait_until(lambda: subscribers(server, "idle-big") == 1, what="1 subscriber")
        sender.send_text(f"send 1 {BIG}")
        assert sender.recv_message(RECV) == numbered(0, BIG)
        sender.send_text(f"publish idle-big 1 {BIG}")
        assert sender.recv_message(RECV) == "published 1"
        assert subscriber.recv_message(RECV) == numbered(0, BIG)
        # both still open: a second round goes the same way
        sender.send_text(f"send 1 {BIG}")
        assert sender.recv_message(RECV) == numbered(0, BIG)
        subscriber.send_text("hello")  # /topic publishes it to the others (none), answers
        assert subscriber.recv_message(RECV) == "reached 0"
    after = stats(server)
    assert (after["slow_closed"], after["slow_dropped"]) == (before["slow_closed"], before["slow_dropped"])
    still_serving(server)


def test_awaited_sends_over_the_limit_wait_for_a_slow_reader(server: AppServer) -> None:
    """Six awaited send_text()s of 3 MiB to a reader that reads nothing for a second: the
    handler waits (each message goes once the queue is under its mark) instead of being closed,
    then every message arrives, in order."""
    count = 6
    with connect(server.address, "/flood", rcvbuf=STALL_RCVBUF, timeout=RECV) as ws:
        ws.send_text(f"go {count} {BIG}")
        time.sleep(0.5)
        first = flood_progress(server)
        time.sleep(0.5)
        second = flood_progress(server)
        assert first == second, (first, second)  # waiting, not sending
        assert 0 < second < count, second
        for i in range(count):
            assert ws.recv_message(RECV) == numbered(i, BIG)
        assert ws.recv_message(RECV) == "done"
        assert flood_progress(server) == count
        ws.send_close(1000)
        code, _, messages = ws.expect_close(RECV)
        assert (code, messages) == (1000, [])
    still_serving(server)


# ---- a queue already over its mark: the slow-consumer policy ------------------------------------


def test_send_over_the_limit_to_a_queue_over_its_mark_closes_1008(server: AppServer) -> None:
    """Three send()s of 3 MiB, not awaited, to a reader that reads nothing: the first is taken
    by an empty queue; one that finds the queue over its mark does not fit under the limit, and
    the connection is closed with 1008. What arrived before the close is whole and in order."""
    before = stats(server)
    stalled = connect(server.address, "/big", rcvbuf=STALL_RCVBUF, timeout=RECV)
    try:
        stalled.send_text(f"send 3 {BIG}")
        wait_until(lambda: stats(server)["slow_closed"] == before["slow_closed"] + 1, RECV,
                   what="the slow consumer closed")
        code, reason, messages = stalled.expect_close(RECV)
        assert (code, reason) == (1008, "send queue over its limit")
        assert len(messages) < 3
        assert messages == [numbered(i, BIG) for i in range(len(messages))]
        assert stalled.eof_within(RECV)
    finally:
        stalled.close()
    assert stats(server)["slow_dropped"] == before["slow_dropped"]
    still_serving(server)


def test_publish_over_the_limit_to_a_queue_over_its_mark_closes_1008(server: AppServer) -> None:
    """The same with three publishes to a stalled subscriber of a backpressure="close"
    endpoint: closed with 1008, the publisher unaffected."""
    before = stats(server)
    stalled = connect(server.address, "/topic/stall-big", rcvbuf=STALL_RCVBUF, timeout=RECV)
    try:
        wait_until(lambda: subscribers(server, "stall-big") == 1, what="1 subscriber")
        with connect(server.address, "/big", timeout=RECV) as publisher:
            publisher.send_text(f"publish stall-big 3 {BIG}")
            assert publisher.recv_message(RECV) == "published 3"
            wait_until(lambda: stats(server)["slow_closed"] == before["slow_closed"] + 1, RECV,
                       what="the slow consumer closed")
            code, reason, messages = stalled.expect_close(RECV)
            assert (code, reason) == (1008, "send queue over its limit")
            assert len(messages) < 3
            assert messages == [numbered(i, BIG) for i in range(len(messages))]
            assert stalled.eof_within(RECV)
            wait_until(lambda: subscribers(server, "stall-big") == 0, what="no subscriber")
            publisher.send_text(f"send 1 {BIG}")  # the publisher's own connection is fine
            assert publisher.recv_message(RECV) == numbered(0, BIG)
    finally:
        stalled.close()
    assert stats(server)["slow_dropped"] == before["slow_dropped"]
    still_serving(server)


def test_publish_over_the_limit_to_a_queue_over_its_mark_drops_it(server: AppServer) -> None:
    """Three publishes of 3 MiB to a stalled subscriber of a backpressure="drop" endpoint: what
    finds its queue over the mark is dropped and counted; the connection stays open, gets what
    was kept whole and in order, answers a ping and gets the next message."""
    before = stats(server)
    with connect(server.address, "/droproom/big", rcvbuf=STALL_RCVBUF, timeout=RECV) as stalled:
        wait_until(lambda: subscribers(server, "drop:big") == 1, what="1 subscriber")
        with connect(server.address, "/big", timeout=RECV) as publisher:
            publisher.send_text(f"publish drop:big 3 {BIG}")
            # the answer was queued after the three publishes, and commands run in order
            assert publisher.recv_message(RECV) == "published 3"
        dropped = stats(server)["slow_dropped"] - before["slow_dropped"]
        kept = 3 - dropped
        assert 1 <= kept < 3, dropped
        got = [stalled.recv_message(RECV) for _ in range(kept)]
        indexes = [int(message[:8]) for message in got]
        # whole, in order, the first one always kept (the queue was empty); a gap where one was
        # dropped (the queue can drain between two publishes)
        assert indexes[0] == 0 and indexes == sorted(set(indexes)) and indexes[-1] < 3, indexes
        assert got == [numbered(i, BIG) for i in indexes]
        stalled.send(OP_PING, b"still here")
        frame = stalled.recv_frame(RECV)
        assert (frame.opcode, frame.payload) == (OP_PONG, b"still here")
        stalled.send_text("after the drop")  # /droproom publishes it to the room, itself included
        assert stalled.recv_message(RECV) == "after the drop"
    after = stats(server)
    assert after["slow_dropped"] - before["slow_dropped"] == dropped
    assert after["slow_closed"] == before["slow_closed"]
    still_serving(server)
