"""The topic registry belongs to the I/O thread: a Python thread's subscribe, publish and counts
do not wait for a fan-out in progress (docs/architecture.md, "Topics: the I/O thread's
registry and a ledger").

Measured by order, not by time. The server's test hook stops the I/O thread in the middle of
a fan-out to 10,000 subscribers, after exactly 5,000 deliveries. While it is stopped there, a
Python thread (apps/fanout_hold_app.py) subscribes a connection, publishes and counts; then it
asks whether the I/O thread was still stopped at the hold. Had any of those calls waited for
the fan-out (as they did while the registry had a mutex held across every fan-out), it could
only have returned once the hold gave up after 10 s and the fan-out went on, and the answer
would be no.
"""

from __future__ import annotations

import base64
import json
import os
import resource
import socket
import time
from collections.abc import Iterator

import pytest

from apps.ws_wire import connect, http, http_json, wait_until
from conftest import AppServer, StartApp

CROWD = 10_000
HOLD_AFTER = 5_000
BATCH = 500  # handshakes in flight at once, well inside the listen backlog


def _raise_descriptor_limit(need: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        assert hard == resource.RLIM_INFINITY or hard >= need, (
            f"this test needs {need} descriptors; the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))


@pytest.fixture(scope="module")
def server(module_app: StartApp) -> Iterator[AppServer]:
    # The server inherits the raised limit: it holds one descriptor per subscriber too.
    _raise_descriptor_limit(CROWD + 1024)
    yield module_app("fanout_hold_app")


def _handshake_request(path: str) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (f"GET {path} HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode()


def _read_exactly(sock: socket.socket, n: int, what: str) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise AssertionError(f"{what}: connection closed after {data!r}")
        data += chunk
    return data


def _open_crowd(address: tuple[str, int], n: int) -> list[socket.socket]:
    """n WebSocket connections to /crowd, each past its 101 (the answer read to its end)."""
    socks: list[socket.socket] = []
    request = _handshake_request("/crowd")
    while len(socks) < n:
        batch = [socket.create_connection(address, timeout=10) for _ in range(min(BATCH, n - len(socks)))]
        for sock in batch:
            sock.sendall(request)
        for sock in batch:
            head = b""
            while not head.endswith(b"\r\n\r\n"):
                head += _read_exactly(sock, 1, "handshake")
            assert head.startswith(b"HTTP/1.1 101 "), head
        socks.extend(batch)
    return socks


def subscribers(server: AppServer, topic: str) -> int:
    return int(http_json(server.address, "GET", f"/subscribers/{topic}")["count"])


def test_a_python_thread_subscribes_and_publishes_in_the_middle_of_a_10k_fanout(
        server: AppServer, assert_serving) -> None:
    crowd = _open_crowd(server.address, CROWD)
    try:
        with connect(server.address, "/side") as side:
            wait_until(lambda: subscribers(server, "crowd") == CROWD, 30.0,
                       what=f"{CROWD} subscribers of 'crowd'")
            assert subscribers(server, "side") == 0
            assert http(server.address, "POST", f"/arm/{HOLD_AFTER}") == (200, b"armed")

            # Answered once the fan-out has gone on: within the hold's 10 s even if it gives up.
            status, body = http(server.address, "POST", "/publish/crowd", b"big", timeout=15.0)
            assert (status, json.loads(body)) == (200, {"reached": CROWD})

            witness = wait_until(lambda: _witness(server), 15.0, what="the witness thread's report")
            assert witness == {
                # The I/O thread stopped after exactly HOLD_AFTER of CROWD deliveries ...
                "delivered_when_held": HOLD_AFTER,
                # ... and while it stayed there the thread's calls all returned, with the
                # counts the commands queued so far give:
                "subscribed": True,
                "published": 1,
                "crowd_subscribers": CROWD,
                "side_subscribers": 1,
                "still_held": True,
                # Then the fan-out went on to everyone.
                "fanout_reached": CROWD,
            }
            # The subscribe and publish the thread queued ran after the fan-out, in order:
            # the side connection got the message published right after it was subscribed.
            assert side.recv_message(timeout=10.0) == "after the crowd"

            for i, sock in enumerate(crowd):
                assert _read_exactly(sock, 5, f"subscriber {i}") == b"\x81\x03big"
            assert http_json(server.address, "POST", "/publish/side", b"again") == {"reached": 1}
            assert side.recv_message(timeout=5.0) == "again"
    finally:
        for sock in crowd:
            sock.close()
    # The I/O thread unsubscribes closed connections; the counts follow.
    wait_until(lambda: subscribers(server, "crowd") == 0 and subscribers(server, "side") == 0,
               30.0, what="no subscribers left")
    assert_serving(server)


def test_subscription_commands_and_counts_keep_the_order_they_were_made_in(
        server: AppServer, assert_serving) -> None:
    """Each answer is sent after the operation's command, on the same queue: a message the
    operation's publish delivers to the asker arrives before the answer, and counts agree
    with the deliveries."""
    with connect(server.address, "/ops") as a, connect(server.address, "/ops") as b:
        def ask(ws, op: str) -> str:
            ws.send_text(op)
            return str(ws.recv_message(timeout=5.0))

        assert ask(a, "sub room") == "sub room True"
        assert ask(a, "sub room") == "sub room False"
        assert ask(b, "count room") == "count room 1"
        # app.publish counts the asker and reaches it before the answer comes.
        a.send_text("pub room hello")
        assert a.recv_message(timeout=5.0) == "hello"
        assert a.recv_message(timeout=5.0) == "pub room 1"
        # websocket.publish leaves out its sender only when the sender is subscribed.
        assert ask(a, "wspub room not-to-me") == "wspub room 0"
        assert ask(b, "wspub room from-b") == "wspub room 1"
        assert a.recv_message(timeout=5.0) == "from-b"
        # Unsubscribed, then a publish on the next line reaches nobody.
        assert ask(a, "unsub room") == "unsub room True"
        assert ask(a, "pub room lost") == "pub room 0"
        assert ask(a, "unsub room") == "unsub room False"
        assert ask(b, "sub room") == "sub room True"
        assert ask(a, "pub room to-b") == "pub room 1"
        assert b.recv_message(timeout=5.0) == "to-b"
        assert ask(a, "count room") == "count room 1"
        assert ask(a, "sub other") == "sub other True"
    # Both closed: the I/O thread takes them out of the counts.
    wait_until(lambda: subscribers(server, "room") == 0 and subscribers(server, "other") == 0,
               5.0, what="no subscribers of room and other")
    assert_serving(server)


def _witness(server: AppServer) -> dict[str, object] | None:
    status, body = http(server.address, "GET", "/witness")
    if status == 409:
        return None
    assert status == 200, (status, body)
    report = json.loads(body)
    assert isinstance(report, dict)
    return report
