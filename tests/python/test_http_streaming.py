"""Streaming responses on the wire (docs/http.md, "Streaming responses"), against
apps/stream_app.py: chunk framing, each chunk sent when it is yielded, a client that leaves
stopping the generator, backpressure, HTTP/1.0, HEAD, the SSE headers, errors mid-stream.

Raw sockets throughout, so that the framing itself is checked; every read has a deadline.
"""

from __future__ import annotations

import json
import signal
import socket
import time
import uuid
from collections.abc import Callable, Iterator

import httpx
import pytest

from conftest import AppServer, StartApp

CHUNK = 64 * 1024
EXPECTED_BYTES = bytes([0]) * 4 + bytes([1]) * 4 + bytes([2]) * 4


@pytest.fixture(scope="module")
def server(module_app: StartApp) -> Iterator[AppServer]:
    yield module_app("stream_app")


def key() -> str:
    return uuid.uuid4().hex[:12]


class Client:
    """One connection that reads a response head and then its chunks one at a time."""

    def __init__(self, server: AppServer, timeout: float = 5.0, rcvbuf: int | None = None) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:  # before connect(), so that the window starts small
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect(server.address)
        self.timeout = timeout
        self.buf = b""

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def get(self, path: str, *lines: str, method: str = "GET", version: str = "1.1") -> None:
        head = [f"{method} {path} HTTP/{version}", "Host: test", *lines]
        self.send(("\r\n".join(head) + "\r\n\r\n").encode())

    def _fill(self, deadline: float) -> bool:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"nothing more from the server in time; have {self.buf[:200]!r}")
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            raise TimeoutError(f"nothing more from the server in time; have {self.buf[:200]!r}") from None
        except ConnectionResetError:
            return False
        if not data:
            return False
        self.buf += data
        return True

    def _need(self, deadline: float, what: str, done: Callable[[], bool]) -> None:
        while not done():
            if not self._fill(deadline):
                raise ConnectionError(f"connection closed inside {what}: {self.buf[:200]!r}")

    def head(self, timeout: float | None = None) -> tuple[str, list[tuple[str, str]]]:
        """(status line, [(lower-case name, value)]) of the next response."""
        deadline = time.monotonic() + (timeout or self.timeout)
        self._need(deadline, "a head", lambda: b"\r\n\r\n" in self.buf)
        raw, _, self.buf = self.buf.partition(b"\r\n\r\n")
        status, *lines = raw.decode("latin-1").split("\r\n")
        headers = []
        for line in lines:
            name, _, value = line.partition(":")
            headers.append((name.strip().lower(), value.strip()))
        return status, headers

    def chunk(self, timeout: float | None = None) -> bytes:
        """The next chunk's data; b"" for the last chunk (its trailer section read too)."""
        deadline = time.monotonic() + (timeout or self.timeout)
        self._need(deadline, "a chunk size line", lambda: b"\r\n" in self.buf)
        size_line, _, self.buf = self.buf.partition(b"\r\n")
        assert size_line and all(c in b"0123456789abcdefABCDEF" for c in size_line), size_line
        size = int(size_line, 16)
        if size == 0:
            self._need(deadline, "the end of the chunked body", lambda: b"\r\n" in self.buf)
            end, _, self.buf = self.buf.partition(b"\r\n")
            assert end == b"", f"unexpected trailers: {end!r}"
            return b""
        self._need(deadline, "a chunk", lambda: len(self.buf) >= size + 2)
        data, crlf, self.buf = self.buf[:size], self.buf[size:size + 2], self.buf[size + 2:]
        assert crlf == b"\r\n", f"chunk not ended by CRLF: {crlf!r}"
        return data

    def chunks(self, timeout: float | None = None) -> list[bytes]:
        """Every chunk up to the last one."""
        found = []
        while True:
            data = self.chunk(timeout)
            if not data:
                return found
            found.append(data)

    def nothing_within(self, seconds: float) -> bool:
        """True when no byte arrives within `seconds` (and the connection stays open)."""
        if self.buf:
            return False
        self.sock.settimeout(seconds)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return True
        self.buf += data
        return False

    def until_closed(self, timeout: float | None = None) -> bytes:
        deadline = time.monotonic() + (timeout or self.timeout)
        while self._fill(deadline):
            pass
        data, self.buf = self.buf, b""
        return data


def header(headers: list[tuple[str, str]], name: str) -> list[str]:
    return [value for key, value in headers if key == name]


def state(server: AppServer, name: str) -> dict[str, object]:
    response = httpx.get(server.url(f"/state/{name}"), timeout=5)
    assert response.status_code == 200
    return json.loads(response.text)  # type: ignore[no-any-return]


def wait_closed(server: AppServer, name: str, timeout: float = 5.0) -> dict[str, object]:
    """Waits (bounded) until the generator recorded under `name` ran its finally block."""
    deadline = time.monotonic() + timeout
    while True:
        found = state(server, name)
        if found["closed"]:
            return found
        assert time.monotonic() < deadline, f"the generator {name} was not closed: {found}\n{server.log()[-2000:]}"
        time.sleep(0.05)


def assert_kept_alive(client: Client) -> None:
    client.get("/")
    status, headers = client.head()
    assert status == "HTTP/1.1 200 OK"
    length = int(header(headers, "content-length")[0])
    client._need(time.monotonic() + 5, "a body", lambda: len(client.buf) >= length)
    assert client.buf[:length] == b"Hello, world!"
    client.buf = client.buf[length:]


# ---- framing and headers ------------------------------------------------------------------------


def test_sse_head_is_robyns_and_chunked(server: AppServer) -> None:
    with Client(server) as client:
        client.get("/sse/basic")
        status, headers = client.head()
        assert status == "HTTP/1.1 200 OK"
        assert header(headers, "content-type") == ["text/event-stream"]
        assert header(headers, "cache-control") == ["no-cache, no-store, must-revalidate"]
        assert header(headers, "x-accel-buffering") == ["no"]
        assert header(headers, "pragma") == ["no-cache"]
        assert header(headers, "expires") == ["0"]
        assert header(headers, "transfer-encoding") == ["chunked"]
        assert header(headers, "content-length") == []
        assert header(headers, "connection") in ([], ["keep-alive"])
        # One chunk per yield.
        assert client.chunks() == [f"data: Test message {i}\n\n".encode() for i in range(3)]
        assert_kept_alive(client)


def test_sse_messages_and_async_generators(server: AppServer) -> None:
    with Client(server) as client:
        client.get("/sse/formatted")
        client.head()
        assert client.chunks() == [
            f"event: test\nid: {i}\ndata: Formatted message {i}\n\n".encode() for i in range(3)]
        client.get("/sse/async")
        status, headers = client.head()
        assert status == "HTTP/1.1 200 OK"
        assert header(headers, "content-type") == ["text/event-stream"]
        assert client.chunks() == [
            f"event: async\nid: {i}\ndata: Async message {i}\n\n".encode() for i in range(3)]
        assert_kept_alive(client)


def test_empty_stream_is_just_the_last_chunk(server: AppServer) -> None:
    with Client(server) as client:
        client.get("/sse/empty")
        assert client.head()[0] == "HTTP/1.1 200 OK"
        assert client.chunks() == []
        assert_kept_alive(client)


def test_custom_headers_and_status(server: AppServer) -> None:
    with Client(server) as client:
        client.get("/sse/with_headers")
        _, headers = client.head()
        assert header(headers, "x-custom-header") == ["custom-value"]
        assert header(headers, "content-type") == ["text/event-stream"]
        assert header(headers, "access-control-allow-origin") == []
        client.chunks()
        client.get("/sse/status_code")
        status, headers = client.head()
        assert status == "HTTP/1.1 201 Created"
        assert header(headers, "content-type") == ["text/event-stream"]
        assert client.chunks() == [b"data: Message with custom status\n\n"]


@pytest.mark.parametrize("path", ["/stream/bytes", "/stream/bytes_async"])
def test_binary_stream_as_robyns_test_reads_it(server: AppServer, path: str) -> None:
    response = httpx.get(server.url(path), timeout=5)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.content == EXPECTED_BYTES


def test_sse_through_an_http_client_streaming(server: AppServer) -> None:
    with httpx.stream("GET", server.url("/sse/basic"), timeout=5) as response:
        assert response.headers["content-type"] == "text/event-stream"
        text = "".join(response.iter_text())
    assert [line[6:] for line in text.split("\n") if line.startswith("data: ")] == [
        f"Test message {i}" for i in range(3)]


def test_http_1_0_is_close_delimited(server: AppServer) -> None:
    with Client(server) as client:
        client.get("/stream/bytes", version="1.0")
        status, headers = client.head()
        assert status.split(" ", 1)[1] == "200 OK"
        assert header(headers, "transfer-encoding") == []
        assert header(headers, "content-length") == []
        assert header(headers, "connection") == ["close"]
        assert client.until_closed() == EXPECTED_BYTES


def test_http_1_0_async_is_close_delimited(server: AppServer) -> None:
    with Client(server) as client:
        client.get("/sse/async", version="1.0")
        _, headers = client.head()
        assert header(headers, "connection") == ["close"]
        assert header(headers, "transfer-encoding") == []
        assert client.until_closed() == b"".join(
            f"event: async\nid: {i}\ndata: Async message {i}\n\n".encode() for i in range(3))


@pytest.mark.parametrize("path", ["/sse/basic", "/sse/async", "/endless/sync/head", "/endless/async/head"])
def test_head_gets_the_head_and_no_body(server: AppServer, path: str) -> None:
    with Client(server) as client:
        client.get(path, method="HEAD")
        status, headers = client.head()
        assert status == "HTTP/1.1 200 OK"
        assert header(headers, "content-type") == ["text/event-stream"]
        assert header(headers, "content-length") == []
        # Not a byte of body: the next answer on the connection follows the head at once.
        client.get("/")
        client._need(time.monotonic() + 5, "the next answer", lambda: len(client.buf) >= 9)
        assert client.buf.startswith(b"HTTP/1.1 200"), client.buf[:100]


# ---- each chunk when it is yielded --------------------------------------------------------------


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_each_chunk_is_sent_when_it_is_yielded(server: AppServer, kind: str) -> None:
    name = key()
    with Client(server) as client:
        client.get(f"/gated/{kind}/{name}")
        assert client.head()[0] == "HTTP/1.1 200 OK"
        assert client.chunk() == b"first"  # while the generator waits for the gate
        assert client.nothing_within(0.3)
        assert httpx.get(server.url(f"/gate/{name}/open"), timeout=5).text == "open"
        assert client.chunk() == b"second"
        assert client.chunk() == b""
        assert_kept_alive(client)
    assert wait_closed(server, name)["closed"]


def test_ticks_arrive_as_they_are_made(server: AppServer) -> None:
    name = key()
    with Client(server) as client:
        client.get(f"/endless/sync/{name}")
        client.head()
        arrivals = []
        for _ in range(5):
            assert client.chunk().startswith(b"data: tick ")
            arrivals.append(time.monotonic())
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:])]
    assert all(gap < 0.5 for gap in gaps), gaps
    wait_closed(server, name)


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_threads_generators_run_on(server: AppServer, kind: str) -> None:
    path = "/stream/sync_from_async" if kind == "sync" else "/stream/async_from_sync"
    with Client(server) as client:
        client.get(path)
        _, headers = client.head()
        assert header(headers, "content-type") == ["text/plain"]
        made_on = b"".join(client.chunks()).decode()
    # Both kinds end up on the event loop's thread (the main one), not a sync worker.
    assert made_on == "made on MainThread"


# ---- a client that goes away -------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_client_that_leaves_stops_the_generator(server: AppServer, kind: str) -> None:
    name = key()
    with Client(server) as client:
        client.get(f"/endless/{kind}/{name}")
        client.head()
        assert client.chunk() == b"data: tick 0\n\n"
        assert client.chunk() == b"data: tick 1\n\n"
    found = wait_closed(server, name)
    # Stopped soon after the client left (a few ticks of 20 ms at most), not after all 1500.
    later = state(server, name)
    assert later["pulls"] == found["pulls"]
    assert int(found["pulls"]) < 100, found
    assert f"stream {name} closed" in server.log()


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_client_that_leaves_a_gated_stream_stops_it(server: AppServer, kind: str) -> None:
    name = key()
    with Client(server) as client:
        client.get(f"/gated/{kind}/{name}")
        client.head()
        assert client.chunk() == b"first"
    # The generator learns of it when it next writes: let it go on.
    httpx.get(server.url(f"/gate/{name}/open"), timeout=5)
    wait_closed(server, name)


# ---- backpressure --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_a_client_that_does_not_read_holds_the_generator_back(start_app: StartApp, kind: str) -> None:
    server = start_app("stream_app")  # its own: a flood must not disturb the other tests
    name = key()
    with Client(server, rcvbuf=64 * 1024) as client:
        client.get(f"/flood/{kind}/{name}")
        # Read nothing. The generator runs until socket buffers and the high-water mark are
        # full, then waits: its pull count settles far below the 4096 chunks it could make.
        deadline = time.monotonic() + 10
        last = -1
        while True:
            time.sleep(0.3)
            now = int(state(server, name)["pulls"])
            if now == last and now > 0:
                break
            assert time.monotonic() < deadline, f"the generator never paused: {now} pulls"
            last = now
        assert now * CHUNK < 32 * 1024 * 1024, f"{now} chunks of 64 KiB pulled for a client that reads nothing"
        assert not state(server, name)["closed"]
        # Reading lets it go on.
        client.head()
        for _ in range(now + 8):
            assert len(client.chunk()) == CHUNK
        deadline = time.monotonic() + 5
        while int(state(server, name)["pulls"]) <= now:
            assert time.monotonic() < deadline, "the generator did not go on once the client read"
            time.sleep(0.02)
    wait_closed(server, name)


# ---- errors ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_generator_error_mid_stream_is_logged_and_ends_the_stream(server: AppServer, kind: str) -> None:
    with Client(server) as client:
        client.get(f"/broken/{kind}")
        assert client.head()[0] == "HTTP/1.1 200 OK"
        assert client.chunk() == b"a"
        assert client.chunk() == b""
        assert_kept_alive(client)
    log = server.wait_for_log(f"boom mid-stream ({kind})")
    assert f"/broken/{kind}" in log
    assert "Traceback" in log


def test_chunk_that_is_not_str_or_bytes_ends_the_stream(server: AppServer) -> None:
    with Client(server) as client:
        client.get("/not_a_chunk")
        client.head()
        assert client.chunks() == [b"a"]
        assert_kept_alive(client)
    server.wait_for_log("not str or bytes")


@pytest.mark.parametrize("path", ["/stream/bad_header", "/stream/bad_header_async"])
def test_bad_header_on_a_stream_is_a_500_at_once(server: AppServer, path: str) -> None:
    with Client(server, timeout=2) as client:
        started = time.monotonic()
        client.get(path)
        status, headers = client.head()
        assert status == "HTTP/1.1 500 Internal Server Error"
        length = int(header(headers, "content-length")[0])
        client._need(time.monotonic() + 2, "the body", lambda: len(client.buf) >= length)
        assert client.buf[:length] == b"Internal server error"
        assert time.monotonic() - started < 1.0
        assert header(headers, "x-bad") == [] and header(headers, "set-cookie") == []
    server.wait_for_log(path)


# ---- shutdown -------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_shutdown_stops_open_streams(start_app: StartApp, kind: str) -> None:
    own = start_app("stream_app")
    name = key()
    with Client(own, timeout=15) as client:
        client.get(f"/endless/{kind}/{name}")
        client.head()
        assert client.chunk() == b"data: tick 0\n\n"
        started = time.monotonic()
        own.send_signal(signal.SIGTERM)
        # The stream goes on through the grace period, then ends; the process exits 0.
        client.until_closed(timeout=15)
        assert own.wait_exit(timeout=15) == 0
        assert time.monotonic() - started < 13
    assert f"stream {name} closed" in own.log()
