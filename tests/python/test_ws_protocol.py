"""RFC 6455 on the wire: close codes for bad input (1009, 1007, 1002), the close handshake,
fragmentation, control frames between fragments, ping/pong. A raw client (apps/ws_wire.py)
writes exactly the frames each case needs; the server is tests/python/apps/ws_app.py with the
default limits (ROBYN_MAX_PAYLOAD_SIZE 1,000,000).

Every test checks afterwards that the server still serves HTTP and WebSockets.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

from apps.ws_wire import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    RawWS,
    close_payload,
    connect,
    encode_frame,
    http,
)
from conftest import AppServer, StartApp

RECV = 5.0
MAX = 1_000_000  # the default ROBYN_MAX_PAYLOAD_SIZE


@pytest.fixture(scope="module")
def server(module_app: StartApp) -> Iterator[AppServer]:
    yield module_app("ws_app", env={"ROBYN_MAX_PAYLOAD_SIZE": None})


def still_serving(server: AppServer) -> None:
    assert http(server.address, "GET", "/") == (200, b"Hello, world!")
    with connect(server.address, "/echo") as ws:
        ws.send_text("still there?")
        assert ws.recv_message(RECV) == "still there?"
        ws.send(OP_BINARY, b"\x00\xff")
        assert ws.recv_message(RECV) == b"\x00\xff"


def expect_close_code(ws: RawWS, code: int, timeout: float = RECV) -> str:
    """The server's next frames end with a close frame carrying `code` and no data message
    before it; then the server ends the TCP connection. Returns the reason."""
    got, reason, messages = ws.expect_close(timeout)
    assert (got, messages) == (code, []), (got, reason, messages)
    assert ws.eof_within(RECV), "the server kept the TCP connection open after its close frame"
    return reason


# ---- 1009: too big ---------------------------------------------------------------------------


def test_1009_as_soon_as_the_header_announces_2mb(server: AppServer) -> None:
    """Only the 14-byte header of a 2 MB binary frame is sent: the header alone says it is too
    big, so the close must come without waiting for (or reading) the payload."""
    with connect(server.address, "/echo") as ws:
        ws.send_raw(encode_frame(OP_BINARY, b"", length=2_000_000))
        expect_close_code(ws, 1009)
    still_serving(server)


def test_1009_header_with_some_payload(server: AppServer) -> None:
    with connect(server.address, "/echo") as ws:
        ws.send_raw(encode_frame(OP_TEXT, b"", length=2_000_000) + b"x" * 1000)
        assert expect_close_code(ws, 1009) == "message too big"
    still_serving(server)


def test_1009_when_fragments_add_up_past_the_limit(server: AppServer) -> None:
    chunk = b"f" * 100_000
    with connect(server.address, "/echo") as ws:
        ws.send(OP_BINARY, chunk, fin=False)
        for _ in range(MAX // len(chunk) - 1):  # exactly MAX bytes so far: fine
            ws.send(OP_CONT, chunk, fin=False)
        ws.send(OP_CONT, b"!", fin=True)  # MAX + 1
        expect_close_code(ws, 1009)
    still_serving(server)


def test_message_of_exactly_the_limit_is_accepted(server: AppServer) -> None:
    payload = os.urandom(MAX)
    with connect(server.address, "/echo", timeout=15) as ws:
        ws.send(OP_BINARY, payload)
        assert ws.recv_message(15) == payload
    still_serving(server)


# ---- 1007: invalid UTF-8 ---------------------------------------------------------------------


@pytest.mark.parametrize("payload", [
    b"ab\xff", b"\x80", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"ok\xc3",
], ids=["ff-byte", "lone-continuation", "overlong", "surrogate", "above-10ffff", "truncated-at-end"])
def test_1007_invalid_utf8_text(server: AppServer, payload: bytes) -> None:
    with connect(server.address, "/echo") as ws:
        ws.send(OP_TEXT, payload)
        expect_close_code(ws, 1007)
    still_serving(server)


@pytest.mark.parametrize("fragments", [
    [b"ab\xc3", b"\x28"],                      # a 2-byte sequence broken by the next fragment
    [b"\xe2\x82", b"\x28rest"],                # a 3-byte one
    [b"fine", b"still fine", b"bad \xff end"],  # the bad byte in the last fragment
    [b"\xf0\x9f", b"\x98", b"\x41"],           # 4-byte sequence spread over three fragments
], ids=["2-byte", "3-byte", "last-fragment", "three-fragments"])
def test_1007_invalid_utf8_split_across_fragments(server: AppServer, fragments: list[bytes]) -> None:
    with connect(server.address, "/echo") as ws:
        for i, part in enumerate(fragments):
            ws.send(OP_TEXT if i == 0 else OP_CONT, part, fin=i == len(fragments) - 1)
        expect_close_code(ws, 1007)
    still_serving(server)


def test_valid_utf8_split_inside_characters_is_reassembled(server: AppServer) -> None:
    text = "é✓🎉日本" * 20
    data = text.encode()
    cuts = list(range(0, len(data), 3))  # cuts fall inside multi-byte characters
    with connect(server.address, "/echo") as ws:
        for n, start in enumerate(cuts):
            ws.send(OP_TEXT if n == 0 else OP_CONT, data[start:start + 3], fin=n == len(cuts) - 1)
        assert ws.recv_message(RECV) == text
    still_serving(server)


# ---- 1002: protocol errors -------------------------------------------------------------------


PROTOCOL_ERRORS = {
    "rsv1": [encode_frame(OP_TEXT, b"x", rsv=4)],
    "rsv2": [encode_frame(OP_TEXT, b"x", rsv=2)],
    "rsv3": [encode_frame(OP_TEXT, b"x", rsv=1)],
    "opcode-3": [encode_frame(0x3, b"x")],
    "opcode-7": [encode_frame(0x7, b"x")],
    "opcode-B": [encode_frame(0xB, b"")],
    "opcode-F": [encode_frame(0xF, b"x")],
    "unmasked-client-frame": [encode_frame(OP_TEXT, b"hello", mask=False)],
    "ping-over-125": [encode_frame(OP_PING, b"p" * 126)],
    "close-over-125": [encode_frame(OP_CLOSE, close_payload(1000, "r" * 124))],
    "fragmented-ping": [encode_frame(OP_PING, b"a", fin=False), encode_frame(OP_CONT, b"b")],
    "fragmented-close": [encode_frame(OP_CLOSE, close_payload(1000), fin=False)],
    "continuation-without-start": [encode_frame(OP_CONT, b"orphan")],
    "text-while-fragmented": [encode_frame(OP_TEXT, b"a", fin=False), encode_frame(OP_TEXT, b"b")],
    "binary-while-fragmented": [encode_frame(OP_BINARY, b"a", fin=False), encode_frame(OP_BINARY, b"b")],
    "close-body-of-one-byte": [encode_frame(OP_CLOSE, b"\x03")],
    "close-code-999": [encode_frame(OP_CLOSE, close_payload(999))],
    "close-code-1005": [encode_frame(OP_CLOSE, close_payload(1005))],
    "close-code-1006": [encode_frame(OP_CLOSE, close_payload(1006))],
}


@pytest.mark.parametrize("frames", list(PROTOCOL_ERRORS.values()), ids=list(PROTOCOL_ERRORS))
def test_1002_protocol_errors(server: AppServer, frames: list[bytes]) -> None:
    with connect(server.address, "/echo") as ws:
        ws.send_raw(b"".join(frames))
        expect_close_code(ws, 1002)
    still_serving(server)


def test_1007_close_reason_not_utf8(server: AppServer) -> None:
    with connect(server.address, "/echo") as ws:
        ws.send(OP_CLOSE, close_payload(1000) + b"\xff\xfe")
        expect_close_code(ws, 1007)
    still_serving(server)


# ---- the close handshake -----------------------------------------------------------------------


@pytest.mark.parametrize("code", [1000, 1001, 3000, 4999])
def test_close_handshake_server_echoes_the_code(server: AppServer, code: int) -> None:
    with connect(server.address, "/echo") as ws:
        ws.send_text("before close")
        assert ws.recv_message(RECV) == "before close"
        ws.send_close(code, "bye")
        frame = ws.recv_frame(RECV)
        assert frame.opcode == OP_CLOSE and frame.close_code == code, frame
        assert ws.eof_within(RECV)
    still_serving(server)


def test_close_without_a_body_is_answered_and_the_connection_ends(server: AppServer) -> None:
    with connect(server.address, "/echo") as ws:
        ws.send(OP_CLOSE, b"")
        frame = ws.recv_frame(RECV)
        # no code to echo: an empty close or 1000 (normal) are both right (RFC 6455 5.5.1)
        assert frame.opcode == OP_CLOSE and frame.payload in (b"", b"\x03\xe8"), frame
        assert ws.eof_within(RECV)
    still_serving(server)


def test_data_after_close_is_ignored(server: AppServer) -> None:
    with connect(server.address, "/echo") as ws:
        ws.send_raw(encode_frame(OP_CLOSE, close_payload(1000)) + encode_frame(OP_TEXT, b"too late"))
        code, _, messages = ws.expect_close(RECV)
        assert (code, messages) == (1000, [])
        assert ws.eof_within(RECV)
    still_serving(server)


# ---- fragmentation and control frames ----------------------------------------------------------


def test_binary_message_in_many_fragments(server: AppServer) -> None:
    parts = [bytes([i]) * 1000 for i in range(200)]
    with connect(server.address, "/echo") as ws:
        for i, part in enumerate(parts):
            ws.send(OP_BINARY if i == 0 else OP_CONT, part, fin=i == len(parts) - 1)
        assert ws.recv_message(RECV) == b"".join(parts)
    still_serving(server)


def test_text_in_fragments_with_empty_ones_and_a_pipelined_batch(server: AppServer) -> None:
    batch = (encode_frame(OP_TEXT, b"one")
             + encode_frame(OP_BINARY, b"two")
             + encode_frame(OP_TEXT, b"th", fin=False)
             + encode_frame(OP_CONT, b"", fin=False)
             + encode_frame(OP_CONT, b"ree")
             + encode_frame(OP_TEXT, b""))
    with connect(server.address, "/echo") as ws:
        ws.send_raw(batch)  # six frames, four messages, one write
        assert [ws.recv_message(RECV) for _ in range(4)] == ["one", b"two", "three", ""]
    still_serving(server)


def test_frame_dribbled_one_byte_at_a_time(server: AppServer) -> None:
    data = encode_frame(OP_TEXT, "slow ✓".encode() * 30)
    with connect(server.address, "/echo") as ws:
        for i in range(len(data)):
            ws.send_raw(data[i:i + 1])
            if i % 16 == 0:
                time.sleep(0.002)
        assert ws.recv_message(RECV) == "slow ✓" * 30
    still_serving(server)


def test_pings_between_fragments_are_answered_and_the_message_kept(server: AppServer) -> None:
    with connect(server.address, "/echo") as ws:
        ws.send(OP_TEXT, b"Hel", fin=False)
        ws.send(OP_PING, b"p1")
        frame = ws.recv_frame(RECV)
        assert (frame.opcode, frame.payload) == (OP_PONG, b"p1")
        ws.send(OP_CONT, b"lo, ", fin=False)
        ws.send(OP_PING, b"")
        ws.send(OP_PONG, b"unsolicited")  # ignored
        ws.send(OP_PING, b"p3")
        assert [(f.opcode, f.payload) for f in (ws.recv_frame(RECV), ws.recv_frame(RECV))] == [
            (OP_PONG, b""), (OP_PONG, b"p3")]
        ws.send(OP_CONT, b"world", fin=True)
        frame = ws.recv_frame(RECV)
        assert (frame.fin, frame.opcode, frame.payload) == (True, OP_TEXT, b"Hello, world")
    still_serving(server)


@pytest.mark.parametrize("payload", [b"", b"abc", bytes(range(125))], ids=["empty", "short", "125"])
def test_ping_at_any_time_gets_the_same_payload_back(server: AppServer, payload: bytes) -> None:
    with connect(server.address, "/echo") as ws:
        ws.send(OP_PING, payload)
        frame = ws.recv_frame(RECV)
        assert (frame.fin, frame.opcode, frame.payload) == (True, OP_PONG, payload)
        ws.send_text("after ping")
        assert ws.recv_message(RECV) == "after ping"
        ws.send(OP_PONG, b"unsolicited pong")
        ws.send(OP_PING, payload)
        frame = ws.recv_frame(RECV)
        assert (frame.opcode, frame.payload) == (OP_PONG, payload)
    still_serving(server)


def test_server_frames_are_unmasked_and_final(server: AppServer) -> None:
    with connect(server.address, "/echo") as ws:
        ws.send(OP_BINARY, b"z" * 70000)
        frame = ws.recv_frame(RECV)  # recv_frame fails on a masked server frame
        assert (frame.fin, frame.rsv, frame.opcode, len(frame.payload)) == (True, 0, OP_BINARY, 70000)
    still_serving(server)
