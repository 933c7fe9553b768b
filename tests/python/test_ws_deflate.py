"""permessage-deflate on what the server sends (tests/python/apps/ws_deflate_app.py): published
messages compressed once and shared by every deflate subscriber, direct sends compressed, the
per-endpoint threshold, deflate and plain subscribers of one topic, and the window-bits offers
of RFC 7692 7.1.2 with their exact answers. Raw sockets (apps/ws_wire.py) check RSV1 and the
compressed bytes themselves; the `websockets` library checks that a real client inflates them.

Every server test ends by checking that the server still serves.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import zlib
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
from websockets.sync.client import connect as sconnect

from apps.ws_wire import OP_BINARY, OP_TEXT, Frame, connect, encode_frame, http, http_json, wait_until
from conftest import AppServer, StartApp
from robyn import Robyn, SubRouter

RECV = 5.0
RSV1 = 4  # Frame.rsv holds RSV1..RSV3 as three bits
BASE = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
OFFER = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits"


@pytest.fixture(scope="module")
def server(module_app: StartApp) -> Iterator[AppServer]:
    yield module_app("ws_deflate_app")


def ws_url(server: AppServer, path: str) -> str:
    return f"ws://127.0.0.1:{server.port}{path}"


def inflate(payload: bytes, bits: int = 15) -> bytes:
    """A permessage-deflate payload inflated with a raw window of 2**bits bytes. Output is
    taken one byte per call: zlib may refer back into output it wrote in the same call
    whatever its window, so only this way must every back-reference fit the window."""
    d = zlib.decompressobj(-bits)
    data = payload + b"\x00\x00\xff\xff"  # RFC 7692 7.2.2
    out = bytearray()
    while True:
        chunk = d.decompress(data, 1)
        data = d.unconsumed_tail
        if not chunk and not data:
            return bytes(out)
        out += chunk


def deflate(data: bytes, bits: int = 15) -> bytes:
    """What a permessage-deflate client sends for data (no context takeover)."""
    c = zlib.compressobj(6, zlib.DEFLATED, -bits)
    out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


def chat_message(size: int = 1024, seed: int = 1) -> str:
    """A chat message as JSON, exactly `size` bytes: the kind of message a room fans out."""
    rnd = random.Random(seed)
    words = ("hello there how are you doing today the meeting moved to noon bring the slides "
             "and some coffee please we ship on friday").split()
    head = {"type": "message", "room": "general", "id": 48213, "ts": 1733312345678,
            "user": {"id": 1234, "name": "alice", "avatar": "https://example.com/a/1234.png"}}
    text = ""
    while True:
        candidate = json.dumps({**head, "text": text})
        if len(candidate) >= size:
            break
        text += rnd.choice(words) + " "
    text = text[: len(text) - (len(candidate) - size)]
    message = json.dumps({**head, "text": text})
    assert len(message) == size
    return message


def far_repeats() -> str:
    """Text with repeats 300 and 2000 bytes back: it compresses well only with a window
    that reaches them, and a back-reference beyond the window negotiated would show."""
    rnd = random.Random(5)
    block300 = "".join(rnd.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(300))
    block2000 = "".join(rnd.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(2000))
    return block300 * 3 + block2000 * 2


def subscribers(server: AppServer, topic: str) -> int:
    return int(http_json(server.address, "GET", f"/subscribers/{topic}")["count"])


def publish(server: AppServer, topic: str, message: str) -> int:
    return int(http_json(server.address, "POST", f"/publish/{topic}", message.encode())["reached"])


def expect_compressed(frame: Frame, message: str, bits: int = 15) -> None:
    assert (frame.fin, frame.rsv, frame.opcode) == (True, RSV1, OP_TEXT), frame
    assert len(frame.payload) < len(message.encode())
    assert inflate(frame.payload, bits) == message.encode()


def expect_plain(frame: Frame, message: str) -> None:
    assert (frame.fin, frame.rsv, frame.opcode) == (True, 0, OP_TEXT), frame
    assert frame.payload == message.encode()


def still_serving(server: AppServer) -> None:
    """HTTP answers, and a new deflate connection gets a compressed echo back."""
    assert http(server.address, "GET", "/") == (200, b"Hello, world!")
    with sconnect(ws_url(server, "/zecho"), open_timeout=RECV) as ws:
        message = chat_message(600, seed=99)
        ws.send(message)
        assert ws.recv(timeout=RECV) == message


# ---- fan-out ------------------------------------------------------------------------------


def test_broadcast_reaches_deflate_subscribers_compressed(server: AppServer) -> None:
    """Three `websockets` clients (which offer permessage-deflate) and a raw one subscribe to
    a room; one 1 KB JSON message reaches all four: compressed (RSV1, a payload that inflates
    to the message), and inflated by the library."""
    with ExitStack() as stack:
        clients = [stack.enter_context(sconnect(ws_url(server, "/room/bcast"), open_timeout=RECV))
                   for _ in range(3)]
        for ws in clients:
            assert ws.response.headers["Sec-WebSocket-Extensions"] == BASE
        with connect(server.address, "/room/bcast", [OFFER]) as raw:
            assert raw.header("sec-websocket-extensions") == BASE
            wait_until(lambda: subscribers(server, "bcast") == 4, what="4 subscribers")
            message = chat_message()
            assert publish(server, "bcast", message) == 4
            for ws in clients:
                assert ws.recv(timeout=RECV) == message
            frame = raw.recv_frame()
            expect_compressed(frame, message)
            # A 1 KB chat message in JSON shrinks to well under half.
            assert len(frame.payload) < 0.5 * len(message)
            # A second message is compressed on its own (no context takeover): the same
            # bytes again.
            assert publish(server, "bcast", message) == 4
            assert raw.recv_frame().payload == frame.payload
            for ws in clients:
                assert ws.recv(timeout=RECV) == message
    still_serving(server)


def test_a_message_under_the_threshold_goes_uncompressed(server: AppServer) -> None:
    """/room has compression_threshold=64: 63 bytes leave as they are (RSV1 clear), 64 bytes
    compressed."""
    with connect(server.address, "/room/thr", [OFFER]) as raw:
        wait_until(lambda: subscribers(server, "thr") == 1, what="1 subscriber")
        assert publish(server, "thr", "x" * 63) == 1
        expect_plain(raw.recv_frame(), "x" * 63)
        assert publish(server, "thr", "x" * 64) == 1
        expect_compressed(raw.recv_frame(), "x" * 64)
    still_serving(server)


def test_deflate_and_plain_subscribers_of_one_topic_each_get_their_bytes(server: AppServer) -> None:
    """One topic, five subscribers: deflate with a 15-bit window, deflate with
    server_max_window_bits=10, a client that offered nothing, a plain endpoint's client that
    offered deflate, and a `websockets` client without compression."""
    topic = "mix"
    with connect(server.address, f"/room/{topic}", [OFFER]) as z15, \
            connect(server.address, f"/room/{topic}",
                    ["Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=10"]) as z10, \
            connect(server.address, f"/room/{topic}") as no_offer, \
            connect(server.address, f"/plain/{topic}", [OFFER]) as plain_endpoint, \
            sconnect(ws_url(server, f"/room/{topic}"), compression=None, open_timeout=RECV) as lib:
        assert z15.header("sec-websocket-extensions") == BASE
        assert z10.header("sec-websocket-extensions") == BASE + "; server_max_window_bits=10"
        assert no_offer.header("sec-websocket-extensions") is None
        assert plain_endpoint.header("sec-websocket-extensions") is None
        assert lib.response.headers.get("Sec-WebSocket-Extensions") is None
        wait_until(lambda: subscribers(server, topic) == 5, what="5 subscribers")
        message = far_repeats()
        assert publish(server, topic, message) == 5
        f15 = z15.recv_frame()
        f10 = z10.recv_frame()
        expect_compressed(f15, message, bits=15)
        expect_compressed(f10, message, bits=10)
        # The 2000-byte repeats are out of a 10-bit window's reach: different bytes, and
        # the 15-bit ones need more than 10 bits to inflate.
        assert f10.payload != f15.payload
        with pytest.raises(zlib.error):
            inflate(f15.payload, 10)
        expect_plain(no_offer.recv_frame(), message)
        expect_plain(plain_endpoint.recv_frame(), message)
        assert lib.recv(timeout=RECV) == message
    still_serving(server)


# ---- direct sends ----------------------------------------------------------------------------


def test_direct_sends_to_a_deflate_connection_are_compressed(server: AppServer) -> None:
    """/zecho echoes with send_text(): 1 KB comes back compressed, 100 bytes (under the default
    threshold of 256) plain; /zecho0 (threshold 0) compresses whatever gets smaller."""
    message = chat_message()
    with connect(server.address, "/zecho", [OFFER]) as raw:
        raw.send_text(message)
        expect_compressed(raw.recv_frame(), message)
        raw.send_text(message[:100])
        expect_plain(raw.recv_frame(), message[:100])
        raw.send_text(message[:256])
        expect_compressed(raw.recv_frame(), message[:256])
        # What the client sends compressed is inflated, and echoed compressed.
        raw.send_raw(encode_frame(OP_TEXT, deflate(message.encode()), rsv=RSV1))
        expect_compressed(raw.recv_frame(), message)
    with connect(server.address, "/zecho0", [OFFER]) as raw:
        raw.send_text("aaaaaaaaaa")
        frame = raw.recv_frame()
        expect_compressed(frame, "aaaaaaaaaa")
        assert frame.payload == deflate(b"aaaaaaaaaa")
        # "a" would take 3 bytes compressed and "" one: both leave as they are.
        for short in ("a", ""):
            raw.send_text(short)
            expect_plain(raw.recv_frame(), short)
        # So do random bytes, which deflate makes longer.
        noise = random.Random(3).randbytes(300)
        assert len(deflate(noise)) > len(noise)
        raw.send(OP_BINARY, noise)
        frame = raw.recv_frame()
        assert (frame.fin, frame.rsv, frame.opcode, frame.payload) == (True, 0, OP_BINARY, noise)
    with sconnect(ws_url(server, "/zecho"), open_timeout=RECV) as ws:
        for text in (message, far_repeats(), "short"):
            ws.send(text)
            assert ws.recv(timeout=RECV) == text
        ws.send(message.encode())
        assert ws.recv(timeout=RECV) == message.encode()
    still_serving(server)


# ---- window bits -------------------------------------------------------------------------------

AUTOBAHN_13_5 = ("permessage-deflate; client_no_context_takeover; client_max_window_bits; "
                 "server_no_context_takeover; server_max_window_bits=8")
AUTOBAHN_13_7 = (AUTOBAHN_13_5 + ", permessage-deflate; client_no_context_takeover; "
                 "client_max_window_bits; server_no_context_takeover, permessage-deflate; "
                 "client_max_window_bits")


@pytest.mark.parametrize("offer, answer, server_bits, client_bits", [
    ("permessage-deflate", BASE, 15, 15),
    ("permessage-deflate; client_max_window_bits", BASE, 15, 15),
    ("permessage-deflate; client_max_window_bits=10", BASE + "; client_max_window_bits=10", 15, 10),
    ("permessage-deflate; client_max_window_bits=8", BASE, 15, 15),
    ("permessage-deflate; server_max_window_bits=8", BASE + "; server_max_window_bits=8", 8, 15),
    ("permessage-deflate; server_max_window_bits=\"9\"", BASE + "; server_max_window_bits=9", 9, 15),
    ("permessage-deflate; server_max_window_bits=12; client_max_window_bits=11",
     BASE + "; server_max_window_bits=12; client_max_window_bits=11", 12, 11),
    (AUTOBAHN_13_5, BASE + "; server_max_window_bits=8", 8, 15),
    (AUTOBAHN_13_7, BASE + "; server_max_window_bits=8", 8, 15),
    ("permessage-deflate; server_max_window_bits=7, permessage-deflate; server_max_window_bits=11",
     BASE + "; server_max_window_bits=11", 11, 15),
    # Declined: a value out of range, a missing value, leading zeros, a parameter twice, an
    # unknown parameter; and a header that is not extension syntax at all.
    ("permessage-deflate; server_max_window_bits=7", None, 0, 0),
    ("permessage-deflate; server_max_window_bits=16", None, 0, 0),
    ("permessage-deflate; server_max_window_bits", None, 0, 0),
    ("permessage-deflate; server_max_window_bits=09", None, 0, 0),
    ("permessage-deflate; client_max_window_bits=7", None, 0, 0),
    ("permessage-deflate; server_max_window_bits=10; server_max_window_bits=10", None, 0, 0),
    ("permessage-deflate; client_max_window_bits; mystery", None, 0, 0),
    ("permessage-deflate; server_max_window_bits=10, foo bar", None, 0, 0),
], ids=["bare", "client-bits", "client-bits-10", "client-bits-8", "server-bits-8",
        "server-bits-quoted-9", "server-12-client-11", "autobahn-13.5", "autobahn-13.7",
        "declined-then-next", "server-bits-7", "server-bits-16", "server-bits-no-value",
        "server-bits-leading-zero", "client-bits-7", "server-bits-twice", "unknown-param",
        "bad-syntax"])
def test_window_bits_offers(server: AppServer, request: pytest.FixtureRequest, offer: str,
                            answer: str | None, server_bits: int, client_bits: int) -> None:
    """Each offer gets its exact answer (or none, and plain frames); the messages the server
    sends inflate with the server window answered, and it inflates what the client sends with
    the client window answered."""
    topic = "wb-" + request.node.callspec.id
    with connect(server.address, f"/room/{topic}", [f"Sec-WebSocket-Extensions: {offer}"]) as raw:
        assert raw.header("sec-websocket-extensions") == answer
        wait_until(lambda: subscribers(server, topic) == 1, what="1 subscriber")
        message = far_repeats()
        assert publish(server, topic, message) == 1
        frame = raw.recv_frame()
        if answer is None:
            expect_plain(frame, message)
            raw.send_text(message)
            expect_plain(raw.recv_frame(), message)
        else:
            expect_compressed(frame, message, bits=server_bits)
            # The room publishes what it receives: compressed within the client window, it
            # is inflated, then compressed again for the way back.
            raw.send_raw(encode_frame(OP_TEXT, deflate(message.encode(), max(client_bits, 9)),
                                      rsv=RSV1))
            expect_compressed(raw.recv_frame(), message, bits=server_bits)
    still_serving(server)


@pytest.mark.parametrize("server_bits, client_bits, answer", [
    (8, None, BASE + "; server_max_window_bits=8"),
    (10, 9, BASE + "; server_max_window_bits=10; client_max_window_bits=9"),
    (None, 12, BASE + "; client_max_window_bits=12"),
    (15, 15, BASE + "; server_max_window_bits=15; client_max_window_bits=15"),
])
def test_websockets_client_with_window_bits(server: AppServer, server_bits: int | None,
                                            client_bits: int | None, answer: str) -> None:
    """The `websockets` client negotiates windows, then inflates what the server compressed for
    them (with zlib's own window checks) and compresses within the client window it got."""
    factory = ClientPerMessageDeflateFactory(server_max_window_bits=server_bits,
                                             client_max_window_bits=client_bits or True)
    with sconnect(ws_url(server, "/zecho"), extensions=[factory], compression=None,
                  open_timeout=RECV) as ws:
        assert ws.response.headers["Sec-WebSocket-Extensions"] == answer
        for text in (far_repeats(), chat_message(), "tiny"):
            ws.send(text)
            assert ws.recv(timeout=RECV) == text
    still_serving(server)


def test_a_close_after_compressed_messages_is_clean(server: AppServer) -> None:
    """Compressed messages queued before a close all arrive, then the close frame."""
    with connect(server.address, "/room/closing", [OFFER]) as raw:
        wait_until(lambda: subscribers(server, "closing") == 1, what="1 subscriber")
        messages = [chat_message(800, seed=i) for i in range(5)]
        for message in messages:
            assert publish(server, "closing", message) == 1
        for message in messages:
            expect_compressed(raw.recv_frame(), message)
        raw.send_close(1000, "bye")
        code, _, rest = raw.expect_close(RECV)
        assert (code, rest) == (1000, [])
    wait_until(lambda: subscribers(server, "closing") == 0, what="no subscribers")
    still_serving(server)


# ---- the keyword ------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [-1, "256", 2.5, True, [], sys.maxsize + 1])
def test_a_bad_compression_threshold_is_refused_naming_it(tmp_path, value) -> None:
    app = Robyn(str(tmp_path / "app.py"))
    want = ("compression_threshold must be a whole number of bytes from 0 to sys.maxsize, "
            f"not {value!r}")
    with pytest.raises(ValueError) as info:
        app.websocket("/ws", compression=True, compression_threshold=value)
    assert str(info.value) == want
    router = SubRouter(__file__, prefix="/sub")
    with pytest.raises(ValueError) as info:
        router.websocket("/ws", compression=True, compression_threshold=value)
    assert str(info.value) == want


def test_a_compression_threshold_without_compression_is_refused(tmp_path) -> None:
    app = Robyn(str(tmp_path / "app.py"))
    for make in (app.websocket, SubRouter(__file__, prefix="/sub").websocket):
        with pytest.raises(ValueError) as info:
            make("/ws", compression_threshold=100)
        assert str(info.value) == "compression_threshold needs compression=True"
        with pytest.raises(ValueError) as info:
            make("/ws", compression=False, compression_threshold=0)
        assert str(info.value) == "compression_threshold needs compression=True"


def test_good_compression_thresholds_are_taken(tmp_path) -> None:
    app = Robyn(str(tmp_path / "app.py"))

    async def handler(websocket):
        pass

    for i, value in enumerate((0, 1, 256, 10**6, sys.maxsize)):
        endpoint = app.websocket(f"/ws{i}", compression=True, compression_threshold=value)(handler)
        assert endpoint._compression_threshold == value
    assert app.websocket("/default", compression=True)(handler)._compression_threshold == 256
    router = SubRouter(__file__, prefix="/sub")
    router.websocket("/ws", compression=True, compression_threshold=32)(handler)
    app.include_router(router)
    assert app._ws_endpoints[-1].path == "/sub/ws"
    assert app._ws_endpoints[-1]._compression_threshold == 32


# ---- robyn-load --deflate ----------------------------------------------------------------------

LOAD_TESTER = Path(__file__).resolve().parents[2] / "build" / "robyn-load"


@pytest.fixture(scope="module")
def load_tester() -> Path:
    """build/robyn-load, rebuilt by `make load-tester` when bench/wsload.c changed."""
    subprocess.run(["make", "-s", "load-tester"], cwd=LOAD_TESTER.parents[1], check=True, timeout=120)
    return LOAD_TESTER


def load(load_tester: Path, *args: str) -> tuple[int, dict]:
    proc = subprocess.run([str(load_tester), *args, "--json", "--quiet"], capture_output=True,
                          text=True, timeout=60)
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1, (proc.stdout, proc.stderr)
    return proc.returncode, json.loads(lines[0])


def test_load_tester_negotiates_deflate_and_counts_wire_bytes(server: AppServer, load_tester: Path) -> None:
    """robyn-load --deflate on a fan-out: every connection negotiates permessage-deflate, every
    message arrives compressed and is read (latency, no loss), and the bytes received per
    message show it; without --deflate the same run gets 600 payload bytes and a 4-byte header
    per message."""
    url = f"ws://127.0.0.1:{server.port}/room/load"
    common = ["--url", url, "--mode", "fanout", "--connections", "20", "--rate", "50",
              "--duration", "1", "--warmup", "0.3", "--message-size", "600"]
    status, z = load(load_tester, *common, "--deflate")
    assert status == 0, z
    assert (z["deflate"], z["errors"], z["loss"], z["foreign"]) == (True, 0, 0, 0)
    assert z["deflate_accepted"] == 21  # the subscribers and the publisher
    assert z["received"] > 0 and z["compressed_messages"] >= z["received"]
    assert z["latency_samples"] == z["received_measured"] > 0
    # 25 bytes of timing header and 575 of 'x' squeeze into a few dozen.
    assert 0 < z["bytes_per_message"] < 80
    assert z["error_classes"]["bad_compressed"] == 0
    status, plain = load(load_tester, *common)
    assert status == 0, plain
    assert (plain["deflate"], plain["deflate_accepted"], plain["compressed_messages"]) == (False, 0, 0)
    assert (plain["errors"], plain["loss"]) == (0, 0)
    assert plain["bytes_per_message"] == 604.0
    assert plain["bytes_received_measured"] == 604 * plain["received_measured"]
    still_serving(server)


def test_load_tester_deflate_against_an_endpoint_without_it(server: AppServer, load_tester: Path) -> None:
    """--deflate where the server declines it (/plain answers no extension): the run goes on
    uncompressed and says so. Echo on /zecho (threshold 256): 600-byte messages come back
    compressed, 100-byte ones not, and both are counted as answers."""
    status, s = load(load_tester, "--url", f"ws://127.0.0.1:{server.port}/plain/nobody",
                     "--mode", "subscribe", "--connections", "5", "--duration", "0.5",
                     "--warmup", "0.2", "--deflate")
    assert status == 0, s
    assert (s["deflate_accepted"], s["compressed_messages"], s["errors"]) == (0, 0, 0)
    for size, compressed in ((600, True), (100, False)):
        status, e = load(load_tester, "--url", f"ws://127.0.0.1:{server.port}/zecho", "--connections",
                         "4", "--duration", "0.5", "--warmup", "0.2", "--message-size", str(size),
                         "--deflate")
        assert status == 0, e
        assert (e["errors"], e["loss"], e["foreign"], e["deflate_accepted"]) == (0, 0, 0, 4)
        assert e["received"] > 0
        assert e["compressed_messages"] == (e["received"] if compressed else 0)
        if not compressed:
            assert e["bytes_per_message"] == size + 2
    still_serving(server)
