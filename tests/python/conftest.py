"""Shared fixtures for the integration tests: real server processes and raw-socket clients.

`start_app("name", env={...})` runs `tests/python/apps/<name>.py` in a new Python process with
ROBYN_HOST and ROBYN_PORT set, waits (at most 10 s) until it answers HTTP, and returns an
`AppServer` (base_url, port, proc, log). At teardown every server still running gets SIGTERM
and must exit with code 0 within a few seconds, else it is killed and the test fails.
`main_server` is one session-wide instance of apps/main_app.py for the read-only tests.

`RawConn` (the `raw` fixture makes them) speaks HTTP/1.1 over a plain socket, for pipelining
and malformed input.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
APPS = HERE / "apps"
READY_TIMEOUT = 10.0
STOP_TIMEOUT = 8.0


def _use_built_extension() -> None:
    """`python -m pytest` from the repository root imports `robyn` from the source tree, which
    has no compiled `_gateway`; let that package also find the extension the build installed,
    so that in-process tests (route registration) can build a `Robyn` app."""
    try:
        import robyn
    except ImportError:
        return
    if importlib.util.find_spec("robyn._gateway") is not None:
        return
    for key in ("platlib", "purelib"):
        candidate = Path(sysconfig.get_paths()[key]) / "robyn"
        if candidate.is_dir() and str(candidate) not in robyn.__path__:
            robyn.__path__.append(str(candidate))


_use_built_extension()


# ---- server processes ----------------------------------------------------------------------


def free_port(host: str = "127.0.0.1") -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass
class AppServer:
    name: str
    host: str
    port: int
    proc: subprocess.Popen[bytes]
    log_path: Path
    stopped: bool = False
    returncode: int | None = None

    @property
    def base_url(self) -> str:
        shown = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{shown}:{self.port}"

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    def url(self, path: str) -> str:
        return self.base_url + path

    def log(self) -> str:
        """Everything the process wrote to stdout and stderr so far."""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def wait_for_log(self, text: str, timeout: float = 5.0) -> str:
        """Waits (bounded) until `text` appears in the log; returns the log, or fails."""
        deadline = time.monotonic() + timeout
        while True:
            log = self.log()
            if text in log:
                return log
            if time.monotonic() > deadline:
                pytest.fail(f"{text!r} did not appear in the log of {self.name} within {timeout} s:\n{log}")
            time.sleep(0.02)

    def send_signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def wait_exit(self, timeout: float = STOP_TIMEOUT) -> int:
        """Waits for the process to end; kills it and fails the test if it does not in time."""
        try:
            self.returncode = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
            self.stopped = True
            pytest.fail(f"{self.name} did not exit within {timeout} s; killed. Log:\n{self.log()}")
        self.stopped = True
        return self.returncode

    def stop(self, sig: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT) -> int:
        """Sends `sig` and waits for the exit; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.wait_exit(timeout)


def _answers_http(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.settimeout(1.0)
            sock.connect((host, port))
            sock.sendall(b"GET /__ready_probe__ HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n")
            return sock.recv(16).startswith(b"HTTP/1.1 ")
    except OSError:
        return False


def launch(
    name: str,
    log_dir: Path,
    env: dict[str, str | None] | None = None,
    host: str = "127.0.0.1",
    port: int | None = None,
    wait: bool = True,
) -> AppServer:
    """Starts apps/<name>.py with ROBYN_HOST/ROBYN_PORT set (an `env` value of None removes a
    variable); with `wait`, returns once it answers HTTP (fails after 10 s)."""
    script = APPS / f"{name}.py"
    assert script.is_file(), script
    port = port if port is not None else free_port(host)
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("ROBYN_")}
    full_env.update({"ROBYN_HOST": host, "ROBYN_PORT": str(port), "PYTHONUNBUFFERED": "1"})
    for key, value in (env or {}).items():  # None removes a variable
        if value is None:
            full_env.pop(key, None)
        else:
            full_env[key] = value
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}-{port}-{time.monotonic_ns()}.log"
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(
            [sys.executable, str(script)],
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=full_env,
            cwd=str(log_dir),
        )
    server = AppServer(name, host, port, proc, log_path)
    if not wait:
        return server
    deadline = time.monotonic() + READY_TIMEOUT
    while not _answers_http(host, port):
        if proc.poll() is not None:
            server.stopped = True
            pytest.fail(f"{name} exited with {proc.returncode} before answering. Log:\n{server.log()}")
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait(timeout=5)
            server.stopped = True
            pytest.fail(f"{name} did not answer on {host}:{port} within {READY_TIMEOUT} s. Log:\n{server.log()}")
        time.sleep(0.05)
    return server


def finish(server: AppServer) -> None:
    """Teardown: SIGTERM, then the process must exit 0 within a few seconds."""
    if server.stopped:
        return
    code = server.stop(signal.SIGTERM)
    assert code == 0, f"{server.name} exited with {code} after SIGTERM. Log:\n{server.log()}"


StartApp = Callable[..., AppServer]


@pytest.fixture
def start_app(tmp_path: Path) -> Iterator[StartApp]:
    """Factory: start_app(name, env=None, host="127.0.0.1", port=None, wait=True)."""
    started: list[AppServer] = []

    def start(name: str, **kwargs: Any) -> AppServer:
        server = launch(name, tmp_path / "logs", **kwargs)
        started.append(server)
        return server

    yield start
    failures = []
    for server in started:
        try:
            finish(server)
        except BaseException as exc:  # stop every server even when one fails
            failures.append(exc)
    if failures:
        raise failures[0]


def with_env(start: StartApp, extra: dict[str, str]) -> StartApp:
    """start (a start_app) with extra environment variables under each call's own env, which
    wins: how a module runs all its servers with, say, ROBYN_WORKERS set."""

    def start_with(name: str, **kwargs: Any) -> AppServer:
        return start(name, **{**kwargs, "env": {**extra, **(kwargs.get("env") or {})}})

    return start_with


@pytest.fixture
def fresh_server(start_app: StartApp) -> AppServer:
    """A private apps/main_app.py for a test that might break or stop it."""
    return start_app("main_app")


@pytest.fixture(scope="module")
def module_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StartApp]:
    """Like start_app, for servers shared by the tests of one module."""
    started: list[AppServer] = []
    log_dir = tmp_path_factory.mktemp("logs")

    def start(name: str, **kwargs: Any) -> AppServer:
        server = launch(name, log_dir, **kwargs)
        started.append(server)
        return server

    yield start
    for server in started:
        finish(server)


@pytest.fixture(scope="session")
def main_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    """One apps/main_app.py for the whole session (tests that do not stop or break it)."""
    server = launch("main_app", tmp_path_factory.mktemp("main"))
    yield server
    finish(server)


# ---- raw HTTP over sockets ----------------------------------------------------------------


@dataclass
class RawResponse:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes
    raw_head: bytes = field(repr=False, default=b"")

    def header(self, name: str) -> str | None:
        found = [value for key, value in self.headers if key.lower() == name.lower()]
        return found[-1] if found else None


class RawConn:
    """One client connection with a read buffer. Every read is bounded by `timeout`."""

    def __init__(self, address: tuple[str, int], timeout: float = 5.0) -> None:
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(address)
        self.timeout = timeout
        self.buf = b""

    def __enter__(self) -> RawConn:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self, deadline: float) -> bool:
        """Reads more into the buffer. False when the peer closed (EOF or reset)."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no data from the server in time")
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            return False
        except socket.timeout:
            raise TimeoutError("no data from the server in time") from None
        if not chunk:
            return False
        self.buf += chunk
        return True

    def send_tolerant(self, data: bytes) -> bool:
        """Sends data; False when the server closed or reset the connection while the client
        was still writing (a server may refuse a request before reading all of it)."""
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            return False
        return True

    def read_head(self, deadline: float | None = None) -> RawResponse:
        """Reads one response head only (its body, if any, stays in the buffer)."""
        deadline = deadline if deadline is not None else time.monotonic() + self.timeout
        while b"\r\n\r\n" not in self.buf:
            if not self._fill(deadline):
                raise ConnectionError(f"connection closed before a full response head: {self.buf!r}")
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        version, status, *reason = lines[0].split(" ", 2)
        # Our answers are HTTP/1.1; libwebsockets' own refusals are HTTP/1.0.
        assert version in ("HTTP/1.1", "HTTP/1.0"), lines[0]
        headers = []
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers.append((name.strip().lower(), value.strip()))
        return RawResponse(int(status), reason[0] if reason else "", headers, b"", head)

    def _read_chunked_body(self, deadline: float) -> bytes:
        body = b""
        while True:
            while b"\r\n" not in self.buf:
                if not self._fill(deadline):
                    raise ConnectionError(f"connection closed inside a chunk size line: {self.buf!r}")
            size_line, _, self.buf = self.buf.partition(b"\r\n")
            size = int(size_line.split(b";", 1)[0].strip(), 16)
            if size == 0:
                # Trailers (if any) up to the blank line.
                while True:
                    while b"\r\n" not in self.buf:
                        if not self._fill(deadline):
                            raise ConnectionError("connection closed inside the trailers")
                    line, _, self.buf = self.buf.partition(b"\r\n")
                    if not line:
                        return body
            while len(self.buf) < size + 2:
                if not self._fill(deadline):
                    raise ConnectionError(f"connection closed inside a chunk: {body[-100:]!r}")
            assert self.buf[size:size + 2] == b"\r\n", f"chunk not ended by CRLF: {self.buf[:size + 2][-20:]!r}"
            body += self.buf[:size]
            self.buf = self.buf[size + 2:]

    def read_response(self, head_request: bool = False) -> RawResponse:
        """Reads one response framed by Content-Length or chunked transfer coding (no body for
        HEAD, 1xx, 204, 304)."""
        deadline = time.monotonic() + self.timeout
        response = self.read_head(deadline)
        head = response.raw_head
        code = response.status
        if head_request or code in (204, 304) or 100 <= code < 200:
            return response
        coding = response.header("transfer-encoding")
        if coding is not None and coding.lower() == "chunked":
            response.body = self._read_chunked_body(deadline)
            return response
        length = response.header("content-length")
        assert length is not None, f"response without Content-Length: {head!r}"
        need = int(length)
        while len(self.buf) < need:
            if not self._fill(deadline):
                raise ConnectionError(f"connection closed inside a response body: {head!r}")
        response.body, self.buf = self.buf[:need], self.buf[need:]
        return response

    def read_responses(self, count: int, head_request: bool = False) -> list[RawResponse]:
        """Reads `count` responses in a row (pipelined requests), each bounded by `timeout`."""
        return [self.read_response(head_request) for _ in range(count)]

    def read_until_closed(self, timeout: float | None = None) -> bytes:
        """Everything the server still sends until it closes (EOF or reset); fails when it
        keeps the connection open longer than `timeout`."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        while True:
            if not self._fill(deadline):
                data, self.buf = self.buf, b""
                return data

    def closed_by_server(self, timeout: float | None = None) -> bool:
        """True when the server closes the connection (EOF or reset) within `timeout`, with
        no further bytes; False when it stays open that long. Fails on unexpected data."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        while True:
            if self.buf:
                raise AssertionError(f"unexpected bytes from the server: {self.buf[:200]!r}")
            try:
                if not self._fill(deadline):
                    return True
            except TimeoutError:
                return False

    def closed_cleanly(self, timeout: float | None = None) -> bool:
        """True when the server ends the connection with a FIN (EOF), not a reset."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                return False
            except socket.timeout:
                return False
            if not chunk:
                return True
            self.buf += chunk


@pytest.fixture(name="free_port", scope="session")
def free_port_fixture() -> Callable[..., int]:
    """free_port(host="127.0.0.1") -> a port nothing listens on right now."""
    return free_port


@pytest.fixture(scope="session")
def raw() -> Callable[..., RawConn]:
    """raw(server_or_address, timeout=5.0) -> a connected RawConn."""

    def connect(target: AppServer | tuple[str, int], timeout: float = 5.0) -> RawConn:
        address = target.address if isinstance(target, AppServer) else target
        return RawConn(address, timeout)

    return connect


def get_request(path: str, *headers: str, method: str = "GET", close: bool = False) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: test"] + list(headers)
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@pytest.fixture(scope="session")
def build_request() -> Callable[..., bytes]:
    """build_request(path, *header_lines, method="GET", close=False) -> request bytes."""
    return get_request


@pytest.fixture(scope="session")
def assert_serving() -> Callable[[AppServer], None]:
    """assert_serving(server): a fresh connection gets 200 "Hello, world!" from GET / (every
    app in apps/ that the HTTP tests use has that route)."""

    def check(server: AppServer) -> None:
        with RawConn(server.address) as conn:
            conn.send(get_request("/", close=True))
            response = conn.read_response()
        assert response.status == 200, response
        assert response.body == b"Hello, world!"

    return check


# ---- known failures ---------------------------------------------------------------------------
# Tests of the HTTP/1.1 issue that the server does not pass yet, each with why. They run, and
# must fail (strict): one that starts passing is a failure here until it is taken off this list.
KNOWN_FAILURES = {
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        reason = KNOWN_FAILURES.get(item.nodeid.split("tests/python/")[-1])
        if reason:
            item.add_marker(pytest.mark.xfail(strict=True, reason=reason))
