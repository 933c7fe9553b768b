"""`robyn.testing`: answers requests to an app in-process, without a server or a socket.

    from robyn.testing import TestClient

    client = TestClient(app)
    response = client.get("/users/7", query_params={"verbose": "1"})
    assert response.status_code == 200 and response.json() == {"id": "7"}

The client runs the code the server runs. It hands every route to the app exactly as
`app.start()` does (`Robyn._freeze`: the same plain handles, the same pipelines with their
before hooks, authentication, exception handlers, app headers and after hooks), routes each
request with the C router the I/O thread uses (`_gateway.Server.match`: the same parameter
rules and the same 404 / 405), and gives the handle an in-process job with the interface of
the C bridge's (`respond`, `start_stream`, `write` ...). Const routes are computed once,
as at start-up. Async handlers run on an event loop the client owns; a streamed answer
(StreamingResponse, SSE) is read to its end and kept whole, with its chunks.

Differences from a real server, all deliberate: nothing goes through HTTP, so the limits of
docs/http.md (sizes, timeouts) do not apply; startup and shutdown handlers do not run (as
with Robyn's own TestClient: call them yourself if a test needs them); static directories
(`serve_directory`) are served by C from the file system and a request for one raises
NotImplementedError naming it, and so does a request for the path of `app.enable_metrics()`
(rendered by C from the server's counters); WebSockets need a real server
(tests/python/conftest.py).
"""

from __future__ import annotations

import asyncio
import json as jsonlib
import threading
import uuid
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl, unquote_to_bytes, urlencode, urlsplit

from . import _gateway
from .datastructures import Headers

__all__ = ["TestClient", "TestResponse"]

_DEFAULT_TIMEOUT = 30.0
# Robyn's bodies for what no route takes, as C answers them (gateway/answer.c).
_REFUSED_BODIES = {404: "Not found", 405: "Method not allowed", 501: "Not Implemented"}
_REFUSED_TYPE = "text/plain; charset=utf-8"
_UNANSWERED = "Internal server error"


class TestResponse:
    """What the client got: `status_code`, `headers` (a robyn Headers, names lower case, as
    they arrive over HTTP, content-length included), the body as `content` (bytes), `text`
    and `json()`, `ok` for a 2xx, and, for a streamed answer, its `chunks` as written."""

    __test__ = False  # not a pytest test class, despite its name

    def __init__(self, status_code: int, headers: Headers, _body: bytes = b"",
                 chunks: list[bytes] | None = None) -> None:
        self.status_code = status_code
        self.headers = headers
        self._body = _body
        self.chunks = chunks

    @property
    def content(self) -> bytes:
        return self._body

    @property
    def text(self) -> str:
        return self._body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body parsed as JSON; raises ValueError (json.JSONDecodeError) when it is not."""
        return jsonlib.loads(self._body)

    @property
    def ok(self) -> bool:
        return 200 <= self.status_code < 300

    def __repr__(self) -> str:
        return f"<TestResponse [{self.status_code}]>"


def _as_bytes(value: Any, what: str) -> bytes:
    # The same rule (and message) as the C bridge's.
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, bytes):
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"{what} must be str or bytes, not {type(value).__name__}")


def _header_pairs(headers: Any, streamed: bool) -> list[tuple[str, str]]:
    """The headers a response would be sent with, checked as the C bridge checks them;
    Content-Length (and, for a stream, Transfer-Encoding) is the server's, not the handler's."""
    if headers is None:
        return []
    try:
        items = list(headers)
    except TypeError:
        raise TypeError("response headers must be a sequence of pairs") from None
    pairs = []
    for pair in items:
        if not isinstance(pair, tuple) or len(pair) != 2:
            raise TypeError("each response header must be a (name, value) tuple")
        name = _as_bytes(pair[0], "header name")
        value = _as_bytes(pair[1], "header value")
        for text, what in ((name, "name"), (value, "value")):
            if any(c in text for c in b"\r\n\0"):
                raise ValueError(f"response header {what} contains a line break or NUL")
        lowered = name.lower()
        if lowered == b"content-length" or (streamed and lowered == b"transfer-encoding"):
            continue
        pairs.append((name.decode("utf-8", "replace"), value.decode("utf-8", "replace")))
    return pairs


def _check_status(status: Any) -> int:
    if isinstance(status, bool) or not isinstance(status, int):
        status = int(status)  # as PyLong_AsLong: a TypeError for what is not a number
    if not 100 <= status <= 999:
        raise ValueError(f"status code {status} is not a valid HTTP status")
    return int(status)


class InProcessJob:
    """One request, answered in-process: the attributes and methods of the C bridge's Job
    (robyn._gateway.Job) that handles, pipelines and streams use."""

    def __init__(self, method: str, path: str, query: list[tuple[str, str]],
                 headers: list[tuple[str, str]], body: bytes, host: str, ip: str = "127.0.0.1") -> None:
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
        self.host = host
        self.ip = ip
        self.path_params: dict[str, str] = {}
        self.client_gone = False
        self.status: int | None = None
        self.response_headers: list[tuple[str, str]] = []
        self.content = b""
        self.chunks: list[bytes] | None = None
        self.finished = threading.Event()
        self._streaming = False
        self._on_finish: Callable[[], None] | None = None

    @property
    def answered(self) -> bool:
        return self.status is not None

    def _finish(self) -> None:
        self.finished.set()
        if self._on_finish is not None:
            self._on_finish()

    def respond(self, status: int, headers: Any, body: Any) -> bool:
        status = _check_status(status)
        pairs = _header_pairs(headers, streamed=False)
        content = _as_bytes(body, "response body")
        if self.answered:
            return False
        bodiless = status < 200 or status in (204, 304)
        if not bodiless:
            pairs.append(("content-length", str(len(content))))
        self.status, self.response_headers = status, pairs
        self.content = b"" if bodiless or self.method == "HEAD" else content
        self._finish()
        return True

    def start_stream(self, status: int, headers: Any) -> bool:
        status = _check_status(status)
        pairs = _header_pairs(headers, streamed=True)
        if self.answered:
            return False
        self.status, self.response_headers = status, pairs + [("transfer-encoding", "chunked")]
        self.chunks = []
        self._streaming = True
        return True

    def write(self, data: Any) -> bool:
        chunk = _as_bytes(data, "a streamed chunk")
        if not self._streaming:
            raise RuntimeError("write() needs a stream started by start_stream()")
        if self.method != "HEAD" and chunk:
            assert self.chunks is not None
            self.chunks.append(chunk)
        return False  # nothing is ever waiting to be sent

    def wait_writable(self) -> bool:
        return True

    def on_writable(self, callback: Callable[[], None]) -> bool:
        return False

    def end_stream(self) -> None:
        if self._streaming:
            self._streaming = False
            self.content = b"".join(self.chunks or [])
            self._finish()


class _Routes:
    """What `Robyn._freeze` hands the server, kept for answering in-process: it goes on to
    a real (never started) C server, whose router then matches each request."""

    def __init__(self) -> None:
        self.server = _gateway.Server()
        self.handles: dict[int, Callable[[Any], None] | None] = {}
        self.consts: dict[int, tuple[int, list[tuple[str, str]], bytes]] = {}
        self.fallback: Callable[[Any], None] | None = None

    def add_route(self, method: str, path: str, kind: int, handle: Callable[[Any], None] | None) -> int:
        index = int(self.server.add_route(method, path, kind, handle))
        self.handles[index] = handle
        return index

    def set_const(self, index: int, status: int, pairs: list[tuple[str, str]], body: bytes) -> None:
        self.server.set_const(index, status, pairs, body)
        self.consts[index] = (status, list(pairs), body)

    def set_fallback(self, kind: int, handle: Callable[[Any], None]) -> None:
        self.server.set_fallback(kind, handle)
        self.fallback = handle


def _form_body(form_data: Mapping[str, Any] | None, files: Mapping[str, Any] | None
               ) -> tuple[bytes, str]:
    """A form as a browser sends it: urlencoded, or multipart/form-data once there are files."""
    if not files:
        return urlencode([(str(k), str(v)) for k, v in (form_data or {}).items()]).encode(), \
            "application/x-www-form-urlencoded"
    boundary = f"robyn-testclient-{uuid.uuid4().hex}"
    parts = []
    for name, value in (form_data or {}).items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
                     + str(value).encode() + b"\r\n")
    for name, content in files.items():
        data = _as_bytes(content, f"file {name!r}")
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
                     f'filename="{name}"\r\nContent-Type: application/octet-stream\r\n\r\n'.encode()
                     + data + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def _one_of(what: str, robyn_name: str, robyn_value: Any, alias: str, alias_value: Any) -> Any:
    if robyn_value is not None and alias_value is not None:
        raise TypeError(f"{what}: give {robyn_name}= or {alias}=, not both")
    return robyn_value if robyn_value is not None else alias_value


def _segments(path: str) -> list[str]:
    """A path as the router sees it: empty segments are only separators."""
    return [segment for segment in path.split("/") if segment]


class TestClient:
    """Sends requests to `app` in-process (see the module's documentation). Use it as a
    context manager, or call close(), to close its event loop.

    `timeout` bounds the wait for an answer, in seconds: a handler that never answers
    raises TimeoutError naming the request instead of hanging the test."""

    __test__ = False  # not a pytest test class, despite its name

    def __init__(self, app: Any, timeout: float = _DEFAULT_TIMEOUT) -> None:
        from .app import Robyn

        if not isinstance(app, Robyn):
            # Robyn's client also took a SubRouter; here a router's routes are the app's
            # once it is included, which is where they get their hooks and handlers.
            raise TypeError("TestClient() takes the Robyn app (include SubRouters in it first), "
                            f"not {app!r}")
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
            raise ValueError(f"TestClient timeout must be a positive number of seconds, not {timeout!r}")
        self.app = app
        self.timeout = float(timeout)
        self._loop = app._new_loop()
        self._routes = _Routes()
        self._build()

    def _build(self) -> None:
        app = self.app
        if app._loop is not None:
            raise RuntimeError("TestClient cannot drive an app that is being served")
        app._install_openapi()
        consts = self._loop.run_until_complete(app._compute_const_routes())
        app._freeze(consts, self._routes)

    # ---- lifecycle ---------------------------------------------------------------------

    def close(self) -> None:
        if not self._loop.is_closed():
            self._loop.run_until_complete(self._loop.shutdown_asyncgens())
            self._loop.close()

    def __enter__(self) -> TestClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ---- one request ---------------------------------------------------------------------

    def _job(self, method: str, path: str, body: str | bytes | None, headers: Mapping[str, str] | None,
             query_params: Mapping[str, Any] | None, form_data: Mapping[str, Any] | None,
             files: Mapping[str, Any] | None, json_data: Any) -> InProcessJob:
        if not isinstance(path, str) or not path.startswith("/"):
            raise ValueError(f"the path of a request must be a str starting with '/', not {path!r}")
        given = [name for name, value in (("body", body), ("json", json_data),
                                          ("form_data / files", form_data or files)) if value is not None]
        if len(given) > 1:
            raise TypeError(f"{method.lower()}(): give one of body=, json= and form_data= / files=, "
                            f"not {' and '.join(given)}")
        pairs = [(str(name).lower(), str(value)) for name, value in (headers or {}).items()]
        names = {name for name, _ in pairs}
        raw = b""
        content_type = None
        if body is not None:
            raw = _as_bytes(body, "body")
        elif json_data is not None:
            raw, content_type = jsonlib.dumps(json_data).encode(), "application/json"
        elif form_data is not None or files is not None:
            raw, content_type = _form_body(form_data, files)
        if content_type is not None and "content-type" not in names:
            pairs.append(("content-type", content_type))
        if raw and "content-length" not in names:
            pairs.append(("content-length", str(len(raw))))
        if "host" not in names:
            pairs.insert(0, ("host", "testclient"))
        host = next(value for name, value in pairs if name == "host")
        parts = urlsplit(path)
        query = parse_qsl(parts.query, keep_blank_values=True)
        if query_params:
            for name, value in query_params.items():
                values = value if isinstance(value, (list, tuple)) else [value]
                query.extend((str(name), str(v)) for v in values)
        decoded = unquote_to_bytes(parts.path).decode("utf-8", "replace")
        return InProcessJob(method, decoded, query, pairs, raw, host)

    def _static_mount(self, job: InProcessJob) -> Any:
        if job.method not in ("GET", "HEAD"):
            return None
        for directory in getattr(self.app, "directories", None) or []:
            route = directory.route.rstrip("/") or "/"
            if route == "/" or job.path == route or job.path.startswith(route + "/"):
                return directory
        return None

    def request(self, method: str, path: str, body: str | bytes | None = None,
                headers: Mapping[str, str] | None = None, query_params: Mapping[str, Any] | None = None,
                form_data: Mapping[str, Any] | None = None, files: Mapping[str, Any] | None = None,
                json_data: Any = None, *, params: Mapping[str, Any] | None = None, json: Any = None,
                data: Any = None) -> TestResponse:
        """Sends one request. Robyn's keywords (`body`, `headers`, `query_params`,
        `form_data`, `files`, `json_data`) and the requests-style `params`, `json` and
        `data` (a mapping is a form, str / bytes the body) are both taken; giving two
        names for one thing is a TypeError."""
        if not isinstance(method, str) or method.upper() not in (
                "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "CONNECT", "TRACE"):
            raise ValueError(f"unknown HTTP method {method!r}")
        method = method.upper()
        query_params = _one_of(method.lower(), "query_params", query_params, "params", params)
        json_data = _one_of(method.lower(), "json_data", json_data, "json", json)
        if data is not None:
            if isinstance(data, Mapping):
                form_data = _one_of(method.lower(), "form_data", form_data, "data", data)
            else:
                body = _one_of(method.lower(), "body", body, "data", data)
        job = self._job(method, path, body, headers, query_params, form_data, files, json_data)
        directory = self._static_mount(job)
        if directory is not None:
            raise NotImplementedError(
                f"TestClient does not serve static directories: {method} {job.path} is under "
                f"serve_directory({directory.route!r}, {directory.directory_path!r}), which C serves "
                "from the file system; test it against a running server")
        metrics = getattr(self.app, "_metrics_path", None)
        if metrics is not None and _segments(job.path) == _segments(metrics):
            raise NotImplementedError(
                f"TestClient does not serve metrics: {method} {job.path} is the path of "
                f"enable_metrics({metrics!r}), which C renders from the server's counters; test "
                "it against a running server")
        return self._answer(job)

    def _answer(self, job: InProcessJob) -> TestResponse:
        routes = self._routes
        index, job.path_params, allowed = routes.server.match(job.method, job.path)
        if index is None:
            if routes.fallback is not None:
                self._run(job, routes.fallback)
            else:
                status = 405 if allowed else 501 if job.method == "CONNECT" else 404
                extra = [("allow", ", ".join(allowed))] if status == 405 else []
                job.respond(status, [("content-type", _REFUSED_TYPE), *extra], _REFUSED_BODIES[status])
        elif index in routes.consts:
            job.respond(*routes.consts[index])
        else:
            handle = routes.handles[index]
            assert handle is not None
            self._run(job, handle)
        assert job.status is not None
        return TestResponse(job.status, Headers.from_pairs(job.response_headers), job.content, job.chunks)

    def _run(self, job: InProcessJob, handle: Callable[[Any], None]) -> None:
        """Calls the handle as the server would (a sync one on this thread, an async one
        schedules its task on the app's loop, here the client's), then runs the loop until
        the job is answered."""
        app, loop = self.app, self._loop
        if loop.is_closed():
            raise RuntimeError("this TestClient is closed")
        if app._loop is not None:
            raise RuntimeError("TestClient cannot drive an app that is being served")
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            raise RuntimeError("TestClient is synchronous: call it outside a running event loop "
                               "(from a plain test function, not an async one)")
        app._loop = loop
        try:
            done = loop.create_future()
            def finished() -> None:
                loop.call_soon_threadsafe(_resolve, done)

            job._on_finish = finished
            handle(job)
            if job.finished.is_set():
                _resolve(done)
            loop.run_until_complete(self._wait(job, done))
        finally:
            job._on_finish = None
            app._loop = None

    async def _wait(self, job: InProcessJob, done: asyncio.Future[None]) -> None:
        deadline = self._loop.time() + self.timeout
        while not done.done():
            pending = {task for task in self.app._tasks if not task.done()}
            left = deadline - self._loop.time()
            if left <= 0:
                for task in pending:
                    task.cancel()
                raise TimeoutError(f"{job.method} {job.path}: no answer within {self.timeout:g} s")
            if not pending:
                # Give what was scheduled from this thread (a stream handed to the loop)
                # a turn; once nothing is left to run, the job was dropped unanswered,
                # which the server answers 500 when it frees the job.
                await asyncio.sleep(0)
                await asyncio.sleep(0)
                if done.done() or any(not task.done() for task in self.app._tasks):
                    continue
                job.respond(500, [("content-type", _REFUSED_TYPE)], _UNANSWERED)
                return
            await asyncio.wait(pending | {done}, timeout=left, return_when=asyncio.FIRST_COMPLETED)

    # ---- the methods, with Robyn's signatures ----------------------------------------

    def get(self, path: str, **kw: Any) -> TestResponse:
        return self.request("GET", path, **kw)

    def post(self, path: str, json_data: Any = None, **kw: Any) -> TestResponse:
        return self.request("POST", path, json_data=json_data, **kw)

    def put(self, path: str, json_data: Any = None, **kw: Any) -> TestResponse:
        return self.request("PUT", path, json_data=json_data, **kw)

    def patch(self, path: str, json_data: Any = None, **kw: Any) -> TestResponse:
        return self.request("PATCH", path, json_data=json_data, **kw)

    def delete(self, path: str, json_data: Any = None, **kw: Any) -> TestResponse:
        return self.request("DELETE", path, json_data=json_data, **kw)

    def head(self, path: str, **kw: Any) -> TestResponse:
        return self.request("HEAD", path, **kw)

    def options(self, path: str, **kw: Any) -> TestResponse:
        return self.request("OPTIONS", path, **kw)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
