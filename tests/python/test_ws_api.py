"""The WebSocket API as users write it (tests/python/apps/ws_app.py), with real clients: the
`websockets` library, and the raw RFC 6455 client of apps/ws_wire.py where exact bytes matter.

Every test ends by checking that the server still serves (HTTP and a WebSocket echo).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator

import pytest
from websockets.asyncio.client import connect as aconnect
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as sconnect

from apps.ws_wire import OP_CLOSE, connect, http, http_json, wait_until
from conftest import AppServer, StartApp

RECV = 5.0  # seconds for any message the server should send


@pytest.fixture(scope="module")
def server(module_app: StartApp) -> Iterator[AppServer]:
    yield module_app("ws_app")


def ws_url(server: AppServer, path: str) -> str:
    return f"ws://127.0.0.1:{server.port}{path}"


def still_serving(server: AppServer) -> None:
    """HTTP answers, and a new WebSocket connection echoes."""
    assert http(server.address, "GET", "/") == (200, b"Hello, world!")
    with sconnect(ws_url(server, "/echo"), open_timeout=RECV) as ws:
        ws.send("still there?")
        assert ws.recv(timeout=RECV) == "still there?"


def subscribers(server: AppServer, topic: str) -> int:
    return int(http_json(server.address, "GET", f"/subscribers/{topic}")["count"])


def wait_subscribers(server: AppServer, topic: str, n: int, timeout: float = 5.0) -> None:
    wait_until(lambda: subscribers(server, topic) == n, timeout, what=f"{n} subscribers of {topic!r}")


def is_uuid(text: object) -> bool:
    """websocket.id is a UUID string, as Robyn's."""
    try:
        return isinstance(text, str) and str(uuid.UUID(text)) == text
    except ValueError:
        return False


def nothing_within(ws, seconds: float) -> None:
    """The (sync) client receives nothing for `seconds`."""
    with pytest.raises(TimeoutError):
        got = ws.recv(timeout=seconds)
        pytest.fail(f"unexpected message {got!r}")


# ---- the chat of the README ----------------------------------------------------------------


def test_chat_flow_greeting_room_fanout_and_isolation(server: AppServer) -> None:
    with sconnect(ws_url(server, "/chat/lobby")) as ann, \
            sconnect(ws_url(server, "/chat/lobby")) as bob, \
            sconnect(ws_url(server, "/chat/other")) as eve:
        for ws in (ann, bob, eve):
            assert ws.recv(timeout=RECV) == "welcome"
        wait_subscribers(server, "lobby", 2)
        wait_subscribers(server, "other", 1)

        ann.send("hi from ann")
        assert ann.recv(timeout=RECV) == "hi from ann"  # app.publish reaches the sender too
        assert bob.recv(timeout=RECV) == "hi from ann"
        bob.send(b"\x00binary\xff")
        assert ann.recv(timeout=RECV) == b"\x00binary\xff"
        assert bob.recv(timeout=RECV) == b"\x00binary\xff"
        eve.send("only other")
        assert eve.recv(timeout=RECV) == "only other"
        nothing_within(ann, 0.3)
        nothing_within(bob, 0.05)
    wait_subscribers(server, "lobby", 0)
    still_serving(server)


def test_on_connect_and_on_close_seen_by_a_presence_subscriber(server: AppServer) -> None:
    with sconnect(ws_url(server, "/presence")) as presence:
        wait_subscribers(server, "presence", 1)
        with sconnect(ws_url(server, "/chat/room-p")) as member:
            assert member.recv(timeout=RECV) == "welcome"
            joined = presence.recv(timeout=RECV)
            ident, _, word = joined.partition(" ")
            assert word == "joined" and is_uuid(ident), joined
        # the client closed: on_close runs and publishes "<id> left"
        assert presence.recv(timeout=RECV) == f"{ident} left"
        with sconnect(ws_url(server, "/chat/room-p")) as second:
            assert second.recv(timeout=RECV) == "welcome"
            ident2 = presence.recv(timeout=RECV).split(" ")[0]
            assert ident2 != ident
        assert presence.recv(timeout=RECV) == f"{ident2} left"
    still_serving(server)


# ---- messages ------------------------------------------------------------------------------


@pytest.mark.parametrize("message", [
    "hello", "héllo ✓ 日本語 🎉", "", "x" * 125, "y" * 126, "z" * 65535, "w" * 70000,
    b"", bytes(range(256)), b"\x00" * 65536, bytes(range(256)) * 1000,
], ids=["ascii", "unicode", "empty-text", "len125", "len126", "len65535", "len70000",
        "empty-bytes", "all-bytes", "zeros64k", "bytes256k"])
def test_echo_round_trip_keeps_type_and_content(server: AppServer, message: str | bytes) -> None:
    with sconnect(ws_url(server, "/echo")) as ws:
        ws.send(message)
        got = ws.recv(timeout=RECV)
        assert type(got) is type(message)
        assert got == message
    still_serving(server)


def test_compression_is_negotiated_only_where_enabled(server: AppServer) -> None:
    text = "compress me please " * 10000  # 190 KB that deflates well
    data = bytes(range(256)) * 800
    with sconnect(ws_url(server, "/zecho")) as ws:
        assert ws.response.headers.get("Sec-WebSocket-Extensions", "").startswith("permessage-deflate")
        for message in (text, data, "short", b"", ""):
            ws.send(message)
            got = ws.recv(timeout=RECV)
            assert type(got) is type(message) and got == message
    with sconnect(ws_url(server, "/echo")) as ws:  # offered by the client, refused here
        assert ws.response.headers.get("Sec-WebSocket-Extensions") is None
        ws.send(text)
        assert ws.recv(timeout=RECV) == text
    still_serving(server)


def test_path_query_and_headers_in_the_handler(server: AppServer) -> None:
    headers = {"X-Test": "test-value", "X-Room-Token": "tok 42", "User-Agent": "ws-suite/1.0"}
    ids = []
    for _ in range(2):
        with sconnect(ws_url(server, "/info/first/sec%20ond?q=1&q=2&z=%C3%A9"),
                      additional_headers=headers, user_agent_header=None) as ws:
            info = json.loads(ws.recv(timeout=RECV))
            ids.append(info.pop("id"))
            assert info == {
                "path": {"a": "first", "b": "sec ond"},
                "query": {"q": ["1", "2"], "z": ["é"]},
                "x_test": "test-value",
                "x_room_token": "tok 42",
                "user_agent": "ws-suite/1.0",
            }
    assert all(is_uuid(i) for i in ids) and ids[0] != ids[1], ids
    still_serving(server)


def test_receive_json_values_and_errors(server: AppServer) -> None:
    with sconnect(ws_url(server, "/json")) as ws:
        ws.send('{"a": [1, 2.5, null], "b": "é"}')
        assert json.loads(ws.recv(timeout=RECV)) == {"got": {"a": [1, 2.5, None], "b": "é"}}
        ws.send("not json")
        assert ws.recv(timeout=RECV) == "error: Invalid JSON message: Expecting value: line 1 column 1 (char 0)"
        ws.send('{"open": ')
        assert ws.recv(timeout=RECV) == "error: Invalid JSON message: Expecting value: line 1 column 10 (char 9)"
        ws.send(b"[1, 2]")  # a binary frame with JSON in it
        assert ws.recv(timeout=RECV) == '{"got":[1,2]}'
        ws.send("7")  # the connection survives the errors
        assert ws.recv(timeout=RECV) == '{"got":7}'
    still_serving(server)


def test_broadcast_reaches_every_connection_of_the_endpoint_only(server: AppServer) -> None:
    with sconnect(ws_url(server, "/broadcast")) as a, sconnect(ws_url(server, "/broadcast")) as b, \
            sconnect(ws_url(server, "/broadcast")) as c, sconnect(ws_url(server, "/echo")) as other:
        a.send("to everyone")
        for ws in (a, b, c):  # the sender included
            assert ws.recv(timeout=RECV) == "to everyone"
        c.send(b"\x01\x02")
        for ws in (a, b, c):
            assert ws.recv(timeout=RECV) == b"\x01\x02"
        other.send("mine")  # another endpoint's connection got none of it
        assert other.recv(timeout=RECV) == "mine"
        nothing_within(a, 0.2)
    still_serving(server)


def test_websocket_publish_excludes_the_sender_and_counts_the_others(server: AppServer) -> None:
    with sconnect(ws_url(server, "/topic/news")) as a, sconnect(ws_url(server, "/topic/news")) as b, \
            sconnect(ws_url(server, "/topic/news")) as c:
        wait_subscribers(server, "news", 3)
        a.send("first")
        assert a.recv(timeout=RECV) == "reached 2"
        assert b.recv(timeout=RECV) == "first"
        assert c.recv(timeout=RECV) == "first"
        # The publish of "first" was queued before "reached 2": had it reached a, it would
        # have come first. A second round shows the same.
        a.send("second")
        assert a.recv(timeout=RECV) == "reached 2"
        assert b.recv(timeout=RECV) == "second"
        assert c.recv(timeout=RECV) == "second"
        b.send(b"from b")
        assert b.recv(timeout=RECV) == "reached 2"
        assert a.recv(timeout=RECV) == b"from b"
        assert c.recv(timeout=RECV) == b"from b"
        nothing_within(a, 0.2)
    still_serving(server)


def test_app_publish_from_http_returns_the_count_and_subscribers(server: AppServer) -> None:
    assert subscribers(server, "alerts") == 0
    assert http_json(server.address, "POST", "/publish/alerts", b"nobody") == {"reached": 0}
    with sconnect(ws_url(server, "/topic/alerts")) as a, sconnect(ws_url(server, "/topic/alerts")) as b:
        wait_subscribers(server, "alerts", 2)
        assert http_json(server.address, "POST", "/publish/alerts", b"server says hi") == {"reached": 2}
        assert a.recv(timeout=RECV) == "server says hi"
        assert b.recv(timeout=RECV) == "server says hi"
        b.close()
        wait_subscribers(server, "alerts", 1)
        assert http_json(server.address, "POST", "/publish/alerts", b"again") == {"reached": 1}
        assert a.recv(timeout=RECV) == "again"
    wait_subscribers(server, "alerts", 0)
    still_serving(server)


def test_websocket_stats_count_connections(server: AppServer) -> None:
    def stats() -> dict[str, int]:
        return http_json(server.address, "GET", "/stats")  # type: ignore[return-value]

    base = wait_until(lambda: stats() if stats()["connections"] == 0 else None, what="no connections")
    assert set(base) == {"connections", "topics", "slow_closed", "slow_dropped"}
    with sconnect(ws_url(server, "/topic/s1")) as a, sconnect(ws_url(server, "/topic/s2")) as b:
        wait_subscribers(server, "s2", 1)
        now = stats()
        assert now["connections"] == 2
        assert now["topics"] >= 2  # s1 and s2 (and the endpoint's own topic)
        a.send("x")
        b.send("y")
        assert a.recv(timeout=RECV) == "reached 0"
        assert b.recv(timeout=RECV) == "reached 0"
    wait_until(lambda: stats()["connections"] == 0, what="connections back to 0")
    assert subscribers(server, "s1") == 0
    still_serving(server)


# ---- on_connect refusing, handler ends and failures -------------------------------------


def test_on_connect_raising_refuses_the_upgrade_with_403(server: AppServer) -> None:
    """on_connect runs before the 101: an exception refuses the upgrade (the handler never runs)."""
    assert handshake_status(server, "/refuse", []) == (403, b"Forbidden")
    server.wait_for_log("no entry")  # the exception is logged
    still_serving(server)


def test_on_connect_response_403_refuses_with_that_response(server: AppServer) -> None:
    assert handshake_status(server, "/refuse-response", []) == (403, b"forbidden")
    still_serving(server)


def test_on_connect_http_exception_refuses_with_its_status(server: AppServer) -> None:
    assert handshake_status(server, "/refuse-http", []) == (401, b"token required")
    assert handshake_status(server, "/refuse-http?token=bad", []) == (401, b"token required")
    with connect(server.address, "/refuse-http?token=good") as ws:  # accepted: JSON greeting
        assert ws.recv_message(RECV) == '{"hello":"json"}'
        ws.send_text("x")
        assert ws.recv_message(RECV) == "echo:x"
    still_serving(server)


def test_handler_close_with_custom_code_and_reason(server: AppServer) -> None:
    with connect(server.address, "/closer") as ws:
        ws.send_text("close 4000 done here")
        code, reason, messages = ws.expect_close(RECV)
        assert (code, reason, messages) == (4000, "done here", [])
        ws.send_close(4000)
        assert ws.eof_within(RECV)
    still_serving(server)


def test_handler_exception_closes_with_1011_and_is_logged(server: AppServer) -> None:
    with connect(server.address, "/crash") as ws:
        ws.send_text("boom")
        code, reason, _ = ws.expect_close(RECV)
        assert (code, reason) == (1011, "internal error")
    server.wait_for_log("handler failed on purpose")
    still_serving(server)


def test_client_close_code_reaches_the_server_and_ends_the_loop(server: AppServer) -> None:
    with sconnect(ws_url(server, "/presence")) as presence:
        wait_subscribers(server, "presence", 1)
        with connect(server.address, "/chat/closing") as ws:
            assert ws.recv_message(RECV) == "welcome"
            ident = presence.recv(timeout=RECV).split(" ")[0]
            ws.send_close(4321, "client leaving")
            frame = ws.recv_frame(RECV)
            assert (frame.opcode, frame.close_code) == (OP_CLOSE, 4321)  # the code echoed
            assert ws.eof_within(RECV)
        assert presence.recv(timeout=RECV) == f"{ident} left"
    still_serving(server)


# ---- sync handlers ---------------------------------------------------------------------------


def test_sync_handler_sync_on_connect_and_on_close(server: AppServer) -> None:
    with sconnect(ws_url(server, "/presence")) as presence:
        wait_subscribers(server, "presence", 1)
        with sconnect(ws_url(server, "/sync")) as ws:
            assert ws.recv(timeout=RECV) == "sync-hello"
            ws.send("a")
            assert ws.recv(timeout=RECV) == "sync:a"
            ws.send(b"abc")
            assert ws.recv(timeout=RECV) == b"cba"
            for i in range(20):
                ws.send(str(i))
            assert [ws.recv(timeout=RECV) for _ in range(20)] == [f"sync:{i}" for i in range(20)]
        left = presence.recv(timeout=RECV)
        assert left.endswith(" sync-left") and is_uuid(left.split(" ")[0]), left
    still_serving(server)


def test_many_sync_handlers_at_once(server: AppServer) -> None:
    """Each sync handler holds a worker thread for its connection's life; 12 at once must all be
    served (more than the asyncio default executor's min(32, cpus + 4) threads on small boxes)."""

    async def main() -> None:
        conns = [await aconnect(ws_url(server, "/sync"), open_timeout=RECV) for _ in range(12)]
        try:
            for ws in conns:
                assert await asyncio.wait_for(ws.recv(), RECV) == "sync-hello"
            for i, ws in enumerate(conns):
                await ws.send(f"n{i}")
            answers = await asyncio.gather(*[_poll(ws, RECV) for ws in conns])
            assert answers == [f"sync:n{i}" for i in range(len(conns))]
        finally:
            for ws in conns:
                await ws.close()

    asyncio.run(main())
    still_serving(server)


# ---- origins ---------------------------------------------------------------------------------


def test_endpoint_origin_allow_list(server: AppServer) -> None:
    with connect(server.address, "/origin", ["Origin: http://good.example"]) as ws:
        assert ws.recv_message(RECV) == "origin ok"
    for extra in (["Origin: http://evil.example"], [], ["Origin: http://good.example.evil"]):
        status, body = handshake_status(server, "/origin", extra)
        assert (status, body) == (403, b"Origin not allowed"), extra
    still_serving(server)


def handshake_status(server: AppServer, path: str, extra: list[str]) -> tuple[int, bytes]:
    from apps.ws_wire import RawWS

    with RawWS(server.address) as ws:
        status = ws.handshake(path, extra)
        assert status != 101, f"{path} was upgraded"
        length = int(ws.header("content-length") or 0)
        deadline = time.monotonic() + RECV
        while len(ws.buf) < length and time.monotonic() < deadline:
            if not ws.readable_within(deadline - time.monotonic()):
                break
            chunk = ws.sock.recv(65536)
            if not chunk:
                break
            ws.buf += chunk
        return status, ws.buf


def test_app_wide_origin_allow_list(start_app: StartApp) -> None:
    srv = start_app("ws_origins_app")
    with connect(srv.address, "/app-wide", ["Origin: http://a.example"]) as ws:
        assert ws.recv_message(RECV) == "app-wide ok"
    assert handshake_status(srv, "/app-wide", ["Origin: http://b.example"])[0] == 403
    assert handshake_status(srv, "/app-wide", [])[0] == 403
    with connect(srv.address, "/own", ["Origin: http://b.example"]) as ws:  # its own list
        assert ws.recv_message(RECV) == "own ok"
    assert handshake_status(srv, "/own", ["Origin: http://a.example"])[0] == 403
    assert http(srv.address, "GET", "/") == (200, b"Hello, world!")


def test_unknown_websocket_path_is_404(server: AppServer) -> None:
    for path in ("/nope", "/chat", "/chat/a/b", "/echo/extra"):
        assert handshake_status(server, path, []) == (404, b"Not Found"), path
    still_serving(server)


def test_connection_churn_every_message_answered(server: AppServer) -> None:
    """400 short connections, 8 at a time: each connects, is echoed once, and leaves. Every
    event (open, message, close) must reach Python: none may be left waiting for a wake-up."""

    async def one(n: int) -> str:
        async with aconnect(ws_url(server, "/echo"), open_timeout=RECV) as ws:
            await ws.send(f"churn {n}")
            return await asyncio.wait_for(ws.recv(), RECV)

    async def main() -> list[str]:
        answers: list[str] = []
        for start in range(0, 400, 8):
            answers += await asyncio.gather(*[one(n) for n in range(start, start + 8)])
        return answers

    assert asyncio.run(main()) == [f"churn {n}" for n in range(400)]
    wait_until(lambda: http_json(server.address, "GET", "/stats")["connections"] == 0,
               what="every connection closed")
    still_serving(server)


# ---- fan-out at scale ------------------------------------------------------------------------


def test_fanout_300_connections_3_senders_no_loss_order_kept(server: AppServer) -> None:
    clients, senders, per_sender = 300, 3, 20
    room = "fanout"

    async def main() -> None:
        conns = []
        for start in range(0, clients, 50):
            batch = await asyncio.gather(*[
                aconnect(ws_url(server, f"/chat/{room}"), open_timeout=10) for _ in range(start, start + 50)])
            conns.extend(batch)
        try:
            for ws in conns:
                assert await asyncio.wait_for(ws.recv(), RECV) == "welcome"
            await asyncio.to_thread(wait_subscribers, server, room, clients, 10.0)

            async def send(k: int) -> None:
                for i in range(per_sender):
                    await conns[k].send(f"s{k}-{i}")

            async def receive(ws) -> list[str]:
                got = []
                for _ in range(senders * per_sender):
                    got.append(await asyncio.wait_for(ws.recv(), 10))
                return got

            started = time.monotonic()
            results = await asyncio.gather(*[send(k) for k in range(senders)],
                                           *[receive(ws) for ws in conns])
            received = results[senders:]
            for n, got in enumerate(received):
                assert len(got) == senders * per_sender, n
                for k in range(senders):
                    mine = [m for m in got if m.startswith(f"s{k}-")]
                    assert mine == [f"s{k}-{i}" for i in range(per_sender)], (n, k, mine)
            assert time.monotonic() - started < 20
            # nothing more comes
            extra = await asyncio.gather(*[_poll(ws, 0.2) for ws in conns[:20]])
            assert extra == [None] * 20
        finally:
            await asyncio.gather(*[ws.close() for ws in conns], return_exceptions=True)

    asyncio.run(main())
    wait_subscribers(server, room, 0, timeout=10)
    still_serving(server)


async def _poll(ws, seconds: float):
    try:
        return await asyncio.wait_for(ws.recv(), seconds)
    except (asyncio.TimeoutError, ConnectionClosed):
        return None


def test_attributes_set_on_the_socket_stay(server: AppServer) -> None:
    with sconnect(ws_url(server, "/attrs?who=ann"), open_timeout=RECV) as ws:
        assert ws.recv(timeout=RECV) == "ann same"
        ws.send("bob")
        assert ws.recv(timeout=RECV) == "hello bob"
        ws.send("hi")
        assert ws.recv(timeout=RECV) == "bob: hi"
        ws.send("again")
        assert ws.recv(timeout=RECV) == "bob: again"
    still_serving(server)


def test_one_reader_at_a_time(server: AppServer) -> None:
    with sconnect(ws_url(server, "/two-readers"), open_timeout=RECV) as ws:
        assert ws.recv(timeout=RECV) == "error: another coroutine is already waiting for the next message"
        ws.send("one")
        assert ws.recv(timeout=RECV) == "first got one"
        ws.send("two")
        assert ws.recv(timeout=RECV) == "then two"
    still_serving(server)
