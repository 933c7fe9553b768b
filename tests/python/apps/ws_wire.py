"""A small RFC 6455 client over a plain socket, for the tests that need exact control of the
bytes on the wire (malformed frames, no pong, never reading). Not an app: test_ws_*.py import it
as `from apps.ws_wire import ...`.

Every read is bounded by a deadline; nothing here ever waits forever.
"""

from __future__ import annotations

import base64
import hashlib
import os
import select
import socket
import struct
import time
from dataclasses import dataclass

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


class PeerClosed(ConnectionError):
    """The server ended the TCP connection (EOF or reset)."""


@dataclass
class Frame:
    fin: bool
    rsv: int
    opcode: int
    payload: bytes

    @property
    def close_code(self) -> int | None:
        assert self.opcode == OP_CLOSE, self
        return struct.unpack("!H", self.payload[:2])[0] if len(self.payload) >= 2 else None

    @property
    def close_reason(self) -> str:
        assert self.opcode == OP_CLOSE, self
        return self.payload[2:].decode("utf-8")


def encode_frame(opcode: int, payload: bytes = b"", *, fin: bool = True, mask: bool = True,
                 rsv: int = 0, length: int | None = None) -> bytes:
    """One frame as a client sends it: masked unless mask=False. `length` overrides the length
    the header announces (the payload given is still what follows)."""
    n = len(payload) if length is None else length
    head = bytearray([(0x80 if fin else 0) | (rsv & 0x7) << 4 | (opcode & 0xF)])
    mbit = 0x80 if mask else 0
    if n < 126:
        head.append(mbit | n)
    elif n < 65536:
        head.append(mbit | 126)
        head += struct.pack("!H", n)
    else:
        head.append(mbit | 127)
        head += struct.pack("!Q", n)
    if not mask:
        return bytes(head) + payload
    key = os.urandom(4)
    masked = bytes(b ^ key[i % 4] for i, b in enumerate(payload)) if len(payload) < 4096 else _mask_fast(payload, key)
    return bytes(head) + key + masked


def _mask_fast(payload: bytes, key: bytes) -> bytes:
    n = len(payload)
    k = int.from_bytes((key * (n // 4 + 1))[:n], "big")
    return (int.from_bytes(payload, "big") ^ k).to_bytes(n, "big")


def close_payload(code: int, reason: str = "") -> bytes:
    return struct.pack("!H", code) + reason.encode()


class RawWS:
    """One WebSocket client connection over a raw socket."""

    def __init__(self, address: tuple[str, int], timeout: float = 5.0, rcvbuf: int | None = None) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:  # before connect, so the window stays small
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect(address)
        self.timeout = timeout
        self.buf = b""
        self.status: int | None = None
        self.headers: dict[str, str] = {}
        self.response_head = b""

    # ---- the opening handshake -----------------------------------------------------------

    @staticmethod
    def request_bytes(path: str, extra: list[str] | tuple[str, ...] = (), key: str | None = None) -> bytes:
        key = key or base64.b64encode(os.urandom(16)).decode()
        lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1", "Upgrade: websocket", "Connection: Upgrade",
                 f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13", *extra]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    def handshake(self, path: str, extra: list[str] | tuple[str, ...] = ()) -> int:
        """Sends the upgrade request; returns the status (101 checked for its accept key)."""
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(self.request_bytes(path, extra, key))
        deadline = time.monotonic() + self.timeout
        while b"\r\n\r\n" not in self.buf:
            self._fill(deadline)
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        self.response_head = head
        first = head.split(b"\r\n", 1)[0].decode("latin-1")
        self.status = int(first.split(" ")[1])
        self.headers = {}
        for line in head.decode("latin-1").split("\r\n")[1:]:
            name, _, value = line.partition(":")
            self.headers[name.strip().lower()] = value.strip()
        if self.status == 101:
            expected = base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()
            assert self.headers.get("sec-websocket-accept") == expected, head
        return self.status

    def header(self, name: str) -> str | None:
        """A header of the handshake's answer."""
        return self.headers.get(name.lower())

    def readable_within(self, timeout: float) -> bool:
        return bool(select.select([self.sock], [], [], max(0.0, timeout))[0])

    # ---- bytes -------------------------------------------------------------------------------

    def _fill(self, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"nothing from the server in time (buffered {self.buf[:80]!r})")
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(262144)
        except socket.timeout:
            raise TimeoutError(f"nothing from the server in time (buffered {self.buf[:80]!r})") from None
        except ConnectionResetError:
            raise PeerClosed("connection reset by the server") from None
        if not chunk:
            raise PeerClosed("EOF from the server")
        self.buf += chunk

    def _need(self, n: int, deadline: float) -> bytes:
        while len(self.buf) < n:
            self._fill(deadline)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send(self, opcode: int, payload: bytes = b"", **kwargs: object) -> None:
        self.sock.sendall(encode_frame(opcode, payload, **kwargs))  # type: ignore[arg-type]

    def send_text(self, text: str) -> None:
        self.send(OP_TEXT, text.encode())

    def send_close(self, code: int = 1000, reason: str = "") -> None:
        self.send(OP_CLOSE, close_payload(code, reason))

    # ---- frames ------------------------------------------------------------------------------

    def recv_frame(self, timeout: float | None = None) -> Frame:
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        b0, b1 = self._need(2, deadline)
        assert not b1 & 0x80, "the server masked a frame"
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self._need(2, deadline))[0]
        elif n == 127:
            n = struct.unpack("!Q", self._need(8, deadline))[0]
        payload = self._need(n, deadline)
        return Frame(bool(b0 & 0x80), (b0 >> 4) & 0x7, b0 & 0xF, payload)

    def recv_message(self, timeout: float | None = None) -> str | bytes:
        """The next data message (fragments joined); fails on a close frame. Pings are answered."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        parts: list[bytes] = []
        opcode = None
        while True:
            frame = self.recv_frame(max(0.001, deadline - time.monotonic()))
            if frame.opcode == OP_PING:
                self.send(OP_PONG, frame.payload)
                continue
            if frame.opcode == OP_PONG:
                continue
            if frame.opcode == OP_CLOSE:
                raise AssertionError(f"close frame {frame.close_code} {frame.payload[2:]!r} instead of a message")
            if opcode is None:
                opcode = frame.opcode
            parts.append(frame.payload)
            if frame.fin:
                data = b"".join(parts)
                return data.decode("utf-8") if opcode == OP_TEXT else data

    def expect_close(self, timeout: float | None = None) -> tuple[int | None, str, list[str | bytes]]:
        """Reads until the server's close frame; returns (code, reason, data messages before
        it). Fails when the connection ends without a close frame, or on a timeout."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        messages: list[str | bytes] = []
        parts: list[bytes] = []
        opcode = None
        while True:
            try:
                frame = self.recv_frame(max(0.001, deadline - time.monotonic()))
            except PeerClosed as exc:
                raise AssertionError(f"the connection ended with no close frame ({exc}); "
                                     f"{len(messages)} messages before it") from None
            if frame.opcode == OP_CLOSE:
                return frame.close_code, frame.close_reason, messages
            if frame.opcode in (OP_PING, OP_PONG):
                continue
            if opcode is None:
                opcode = frame.opcode
            parts.append(frame.payload)
            if frame.fin:
                data = b"".join(parts)
                messages.append(data.decode("utf-8") if opcode == OP_TEXT else data)
                parts, opcode = [], None

    def eof_within(self, timeout: float) -> bool:
        """True when the server ends the TCP connection within timeout (bytes before the end
        are discarded)."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            if not select.select([self.sock], [], [], remaining)[0]:
                return False
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                return True
            if not chunk:
                return True

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "RawWS":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect(address: tuple[str, int], path: str, extra: list[str] | tuple[str, ...] = (),
            timeout: float = 5.0, rcvbuf: int | None = None) -> RawWS:
    """A RawWS past a successful (101) handshake."""
    ws = RawWS(address, timeout, rcvbuf)
    status = ws.handshake(path, extra)
    assert status == 101, ws.response_head
    return ws


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


# ---- small HTTP and polling helpers ------------------------------------------------------------


def http(address: tuple[str, int], method: str, path: str, body: bytes | None = None,
         timeout: float = 5.0) -> tuple[int, bytes]:
    """One HTTP/1.1 request on a fresh connection: (status, body)."""
    import http.client

    conn = http.client.HTTPConnection(address[0], address[1], timeout=timeout)
    try:
        conn.request(method, path, body=body)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def http_json(address: tuple[str, int], method: str, path: str, body: bytes | None = None) -> object:
    import json

    status, data = http(address, method, path, body)
    assert status == 200, (method, path, status, data)
    return json.loads(data)


def wait_until(predicate, timeout: float = 5.0, interval: float = 0.02, what: str = "condition"):
    """Polls predicate() until it returns something truthy (returned); fails after timeout."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"{what} not reached within {timeout} s (last: {last!r})")
