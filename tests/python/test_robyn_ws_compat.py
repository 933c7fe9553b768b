"""Robyn 0.88 WebSocket apps, unchanged (tests/python/apps/robyn_ws_compat_app.py), with the
client Robyn's own suite uses (websocket-client) and the raw client of apps/ws_wire.py where
close frames and their codes matter. docs/websocket.md is the reference being checked.

Every test ends by checking that the server still serves.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator

import pytest
from websocket import ABNF, WebSocketTimeoutException, create_connection

from apps.ws_wire import OP_BINARY, OP_CLOSE, OP_TEXT, RawWS, connect, encode_frame, http, wait_until
from conftest import AppServer, StartApp

RECV = 5.0


@pytest.fixture(scope="module")
def server(module_app: StartApp) -> Iterator[AppServer]:
    yield module_app("robyn_ws_compat_app")


def url(server: AppServer, path: str) -> str:
    return f"ws://127.0.0.1:{server.port}{path}"


def ws_connect(server: AppServer, path: str, **kwargs):
    return create_connection(url(server, path), timeout=RECV, **kwargs)


def still_serving(server: AppServer) -> None:
    assert http(server.address, "GET", "/") == (200, b"Hello, world!")
    ws = ws_connect(server, "/web_socket_echo")
    try:
        assert ws.recv() == ""
        ws.send("still there?")
        assert ws.recv() == "still there?"
    finally:
        ws.close()


def nothing_within(ws, seconds: float) -> None:
    ws.settimeout(seconds)
    with pytest.raises(WebSocketTimeoutException):
        got = ws.recv()
        pytest.fail(f"unexpected message {got!r}")
    ws.settimeout(RECV)


def closes(server: AppServer) -> list[str]:
    status, body = http(server.address, "GET", "/closes")
    assert status == 200
    return json.loads(body)


def handshake_refused(server: AppServer, path: str, extra: list[str] = ()) -> tuple[int, dict[str, str], bytes]:
    with RawWS(server.address) as ws:
        status = ws.handshake(path, list(extra))
        assert status != 101, f"{path} was upgraded"
        length = int(ws.header("content-length") or 0)
        deadline = time.monotonic() + RECV
        while len(ws.buf) < length and ws.readable_within(deadline - time.monotonic()):
            chunk = ws.sock.recv(65536)
            if not chunk:
                break
            ws.buf += chunk
        return status, ws.headers, ws.buf


def is_uuid(text: object) -> bool:
    try:
        return isinstance(text, str) and str(uuid.UUID(text)) == text
    except ValueError:
        return False


# ---- the suite's routes, as test_web_sockets.py drives them -----------------------------------


def test_suite_state_machine_broadcast_query_params_and_close(server: AppServer) -> None:
    ws = ws_connect(server, "/web_socket?one=hi&two=hello")
    try:
        assert ws.recv() == "Hello world, from ws"
        ws.send("My name is?")
        assert sorted(ws.recv() for _ in range(3)) == sorted(
            ["This is a broadcast message", "This is a message to self", "Whaaat??"])
        ws.send("My name is?")
        assert ws.recv() == "Whooo??"
        ws.send("My name is?")
        assert sorted(ws.recv() for _ in range(3)) == sorted(["hi", "hello", "*chika* *chika* Slim Shady."])
        ws.send("test")
        assert ws.recv() == "Connection closed"
        # close() ran on_close first: its return value is the last message, then a 1000 close.
        assert ws.recv() == "GoodBye world, from ws"
        opcode, data = ws.recv_data(control_frame=True)
        assert opcode == ABNF.OPCODE_CLOSE and data[:2] == (1000).to_bytes(2, "big")
    finally:
        ws.shutdown()  # the close handshake is over: close() would wait for another
    still_serving(server)


def test_suite_close_frame_exactly(server: AppServer) -> None:
    with connect(server.address, "/web_socket") as ws:
        assert ws.recv_message(RECV) == "Hello world, from ws"
        for _ in range(3):  # states 0, 1 and 2
            ws.send_text("x")
        for _ in range(3 + 1 + 3):
            ws.recv_message(RECV)
        ws.send_text("x")
        assert ws.expect_close(RECV) == (1000, "", ["Connection closed", "GoodBye world, from ws"])
    still_serving(server)


def test_broadcast_reaches_every_connection_of_the_endpoint(server: AppServer) -> None:
    first = ws_connect(server, "/web_socket?one=a&two=b")
    second = ws_connect(server, "/web_socket")
    try:
        assert first.recv() == "Hello world, from ws"
        assert second.recv() == "Hello world, from ws"
        first.send("go")
        assert sorted(first.recv() for _ in range(3)) == sorted(
            ["This is a broadcast message", "This is a message to self", "Whaaat??"])
        assert second.recv() == "This is a broadcast message"
        nothing_within(second, 0.2)
    finally:
        first.close()
        second.close()
    still_serving(server)


def test_suite_json_endpoint_and_the_id(server: AppServer) -> None:
    ws = ws_connect(server, "/web_socket_json")
    try:
        assert ws.recv() == "Hello world, from ws"
        answers = []
        for expected in ("Whaaat??", "Whooo??", "*chika* *chika* Slim Shady.", "Whaaat??"):
            ws.send("My name is?")
            answer = json.loads(ws.recv())
            assert answer["resp"] == expected and answer["msg"] == "My name is?"
            answers.append(answer["ws_id"])
        assert is_uuid(answers[0]) and len(set(answers)) == 1, answers  # a UUID, stable
    finally:
        ws.close()
    other = ws_connect(server, "/web_socket_json")
    try:
        other.recv()
        other.send("again")
        assert json.loads(other.recv())["ws_id"] != answers[0]
    finally:
        other.close()
    still_serving(server)


def test_suite_dependency_injection(server: AppServer) -> None:
    ws = ws_connect(server, "/web_socket_di")
    try:
        assert ws.recv() == "connect: GLOBAL DEPENDENCY ROUTER DEPENDENCY"
        for message in ("test", "test again"):
            ws.send(message)
            assert ws.recv() == "handler: GLOBAL DEPENDENCY ROUTER DEPENDENCY"
    finally:
        ws.close()
    still_serving(server)


def test_suite_large_payload_and_empty_first_message(server: AppServer) -> None:
    ws = ws_connect(server, "/web_socket_echo")
    try:
        assert ws.recv() == ""  # on_connect returned "": an empty message is still a message
        large = "A" * (128 * 1024)
        ws.send(large)
        assert ws.recv() == large
    finally:
        ws.close()
    still_serving(server)


def test_suite_empty_returns_send_nothing(server: AppServer) -> None:
    with connect(server.address, "/web_socket_empty_returns") as ws:
        ws.send_text("test message")
        assert not ws.readable_within(0.3)  # no greeting, no answer
        ws.send_close(1000)
        assert ws.expect_close(RECV) == (1000, "", [])  # on_close's None sends nothing either
    still_serving(server)


def test_suite_binary_echo(server: AppServer) -> None:
    ws = ws_connect(server, "/web_socket_binary")
    try:
        payload = b"\x00\x01\x02\xff\xfe robyn binary \x80\x81"
        ws.send_binary(payload)
        assert ws.recv_data() == (ABNF.OPCODE_BINARY, payload)
        ws.send("text becomes bytes é")  # receive_bytes() of a text message: its UTF-8
        assert ws.recv_data() == (ABNF.OPCODE_BINARY, "text becomes bytes é".encode())
    finally:
        ws.close()
    still_serving(server)


@pytest.mark.parametrize(("query", "greeting", "answer"), [
    ("?room=chat&page=5", "connected to chat", "room=chat page=5 msg=hello"),
    ("", "connected to default", "room=default page=1 msg=hello"),
])
def test_suite_easy_access_query_params(server: AppServer, query: str, greeting: str, answer: str) -> None:
    ws = ws_connect(server, f"/web_socket_easy_access{query}")
    try:
        assert ws.recv() == greeting
        ws.send("hello")
        assert ws.recv() == answer
    finally:
        ws.close()
    room = "chat" if query else "default"
    # The client closed: on_close ran (with its own parameters), its value had nowhere to go.
    wait_until(lambda: f"easy_access left {room}" in closes(server), what="on_close of easy access")
    still_serving(server)


# ---- parameters that cannot be filled ---------------------------------------------------------


@pytest.mark.parametrize(("path", "detail", "farewell"), [
    # The connection was accepted, so on_close runs, and its value is the last message.
    ("/web_socket_easy_access?page=two", "Invalid value 'two' for parameter 'page': expected int",
     ["left default"]),
    ("/required", "Missing required parameter: 'count'", []),
    ("/required?count=1.5", "Invalid value '1.5' for parameter 'count': expected int", []),
    ("/items/abc", "Invalid value 'abc' for parameter 'item_id': expected int", []),
    ("/items/7?flag=maybe", "Invalid value 'maybe' for parameter 'flag': expected bool", []),
])
def test_bad_parameters_send_the_error_then_close_1008(server: AppServer, path: str, detail: str,
                                                       farewell: list[str]) -> None:
    """Robyn sends "Error: <detail>" instead of running the handler; the connection then
    closes with 1008 (policy violation), the detail as the reason."""
    with connect(server.address, path) as ws:
        assert ws.expect_close(RECV) == (1008, detail, [f"Error: {detail}", *farewell])
        ws.send_close(1008)
        assert ws.eof_within(RECV)
    still_serving(server)


def test_required_parameter_given(server: AppServer) -> None:
    with connect(server.address, "/required?count=3") as ws:
        assert ws.recv_message(RECV) == "count=3"
    still_serving(server)


def test_on_connect_parameters(server: AppServer) -> None:
    with connect(server.address, "/required_connect") as ws:
        detail = "Missing required parameter: 'token'"
        # The handler never runs: no "handler ran".
        assert ws.expect_close(RECV) == (1008, detail, [f"Error: {detail}"])
    with connect(server.address, "/required_connect?token=abc") as ws:
        assert ws.recv_message(RECV) == "token abc"
        assert ws.recv_message(RECV) == "handler ran"
        assert ws.expect_close(RECV) == (1000, "", [])  # the handler returned
    still_serving(server)


def test_path_params_query_params_and_request_by_name_and_type(server: AppServer) -> None:
    ws = ws_connect(server, "/items/42?flag=yes&tag=a&tag=b", header=["X-Probe: probe value"])
    try:
        assert json.loads(ws.recv()) == {
            "item_id": 42, "flag": True, "same_query": True, "tags": ["a", "b"],
            "path": {"item_id": "42"}, "header": "probe value",
        }
    finally:
        ws.close()
    still_serving(server)


def test_sync_handler_with_a_typed_parameter(server: AppServer) -> None:
    for query, expected in (("?times=3", "ababab"), ("", "abab")):
        ws = ws_connect(server, f"/sync_params{query}")
        try:
            ws.send("ab")
            assert ws.recv() == expected
        finally:
            ws.close()
    still_serving(server)


# ---- broadcast, conversions, JSON ---------------------------------------------------------------


def test_broadcast_is_awaitable_and_counts(server: AppServer) -> None:
    a = ws_connect(server, "/count")
    b = ws_connect(server, "/count")
    try:
        a.send("await broadcast")
        # Queued before the answer, so the sender sees its broadcast first.
        assert [a.recv(), a.recv()] == ["from count", "awaited 2 int"]
        assert b.recv() == "from count"
        b.send("broadcast")  # not awaited: sent all the same, and an int
        assert [b.recv(), b.recv()] == ["from count", "plain 2"]
        assert a.recv() == "from count"
    finally:
        a.close()
        b.close()
    still_serving(server)


@pytest.mark.parametrize(("how", "opcode", "payload", "answer"), [
    ("text", OP_BINARY, "café".encode(), "str 'café'"),
    ("text", OP_TEXT, "plain".encode(), "str 'plain'"),
    ("bytes", OP_TEXT, "é".encode(), "bytes b'\\xc3\\xa9'"),
    ("bytes", OP_BINARY, b"\xff\x00", "bytes b'\\xff\\x00'"),
    ("json", OP_BINARY, b'{"a": [1, null]}', "dict {'a': [1, None]}"),
    ("json", OP_TEXT, b'"x"', "str 'x'"),
    ("text", OP_BINARY, b"\xff", "UnicodeDecodeError: 'utf-8' codec can't decode byte 0xff in position 0: "
                                 "invalid start byte"),
    ("json", OP_TEXT, b"nope", "JSONDecodeError: Invalid JSON message: Expecting value: line 1 column 1 (char 0)"),
    ("json", OP_BINARY, b'[1, \xff]', "JSONDecodeError: Invalid JSON message: not UTF-8: line 1 column 5 (char 4)"),
])
def test_receive_conversions(server: AppServer, how: str, opcode: int, payload: bytes, answer: str) -> None:
    with connect(server.address, "/convert") as ws:
        ws.send_text(how)
        ws.send_raw(encode_frame(opcode, payload))
        assert ws.recv_message(RECV) == answer
        ws.send_text("text")  # the connection survives a bad message
        ws.send_text("next")
        assert ws.recv_message(RECV) == "str 'next'"
    still_serving(server)


def test_send_json_encodes_as_robyn(server: AppServer) -> None:
    ws = ws_connect(server, "/send_json")
    try:
        assert ws.recv() == ('{"text":"café ☕","when":"2024-05-06T07:08:09",'
                             '"id":"12345678-1234-5678-1234-567812345678"}')
    finally:
        ws.close()
    still_serving(server)


# ---- closing and on_close ---------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "message", "code", "reason", "farewell"), [
    ("/farewell?who=bruce", "bye", 1000, "", "farewell bruce"),
    ("/farewell", "code 4000 done here", 4000, "done here", "farewell anyone"),
    ("/farewell", "return", 1000, "", "farewell anyone"),
    ("/farewell", "raise", 4001, "refused by the handler", "farewell anyone"),
])
def test_server_close_sends_on_close_value_last(server: AppServer, path: str, message: str, code: int,
                                                reason: str, farewell: str) -> None:
    before = closes(server).count("farewell closed=False")
    with connect(server.address, path) as ws:
        ws.send_text("hi")
        assert ws.recv_message(RECV) == "echo hi"
        ws.send_text(message)
        assert ws.expect_close(RECV) == (code, reason, [farewell])
        ws.send_close(code)
        assert ws.eof_within(RECV)
    # on_close ran once, while the connection was still open.
    assert closes(server).count("farewell closed=False") == before + 1
    still_serving(server)


def test_unsendable_websocket_exception_closes_1011_and_is_logged(server: AppServer) -> None:
    with connect(server.address, "/farewell") as ws:
        ws.send_text("bad")
        assert ws.expect_close(RECV) == (1011, "internal error", ["farewell anyone"])
    server.wait_for_log("1005 is not a close code a server may send")
    still_serving(server)


def test_close_with_a_reserved_code_raises_and_keeps_the_connection(server: AppServer) -> None:
    with connect(server.address, "/farewell") as ws:
        ws.send_text("bad close")
        assert ws.recv_message(RECV) == "ValueError: 1005 is not a close code a server may send"
        ws.send_text("still open")
        assert ws.recv_message(RECV) == "echo still open"
    still_serving(server)


def test_client_close_runs_on_close_after_the_close(server: AppServer) -> None:
    before = closes(server).count("farewell closed=True")
    with connect(server.address, "/farewell") as ws:
        ws.send_text("hi")
        assert ws.recv_message(RECV) == "echo hi"
        ws.send_close(4100, "client leaves")
        frame = ws.recv_frame(RECV)  # the echo of the close, and no farewell before it
        assert (frame.opcode, frame.close_code) == (OP_CLOSE, 4100)
        assert ws.eof_within(RECV)
    wait_until(lambda: closes(server).count("farewell closed=True") == before + 1, what="on_close after the close")
    still_serving(server)


def test_on_connect_sends_broadcasts_then_greets(server: AppServer) -> None:
    ws = ws_connect(server, "/connect_sends")
    try:
        assert [ws.recv() for _ in range(4)] == [
            "sent in on_connect", "broadcast in on_connect", '{"greeting":"hello","reached":1}', "handler"]
    finally:
        ws.close()
    still_serving(server)


# ---- auth_required (INTERFACES.md seam 5: app._authenticate) ----------------------------------------


@pytest.mark.parametrize("extra", [[], ["Authorization: Bearer wrong"]])
def test_auth_required_refusal_is_the_http_401(server: AppServer, extra: list[str]) -> None:
    status, headers, body = handshake_refused(server, "/secret", extra)
    assert (status, headers.get("www-authenticate"), body) == (401, "BearerGetter", b"Unauthorized")
    still_serving(server)


def test_auth_required_allowed_sets_the_identity(server: AppServer) -> None:
    ws = ws_connect(server, "/secret", header=["Authorization: Bearer good-token"])
    try:
        assert ws.recv() == "on_connect saw batman"
        assert ws.recv() == "hello batman batman"  # websocket.identity, and `identity` by name
        ws.send("x")
        assert ws.recv() == "secret x"
    finally:
        ws.close()
    still_serving(server)
