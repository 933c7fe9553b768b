"""The application object: route decorators, lifecycle, and the glue to the C server.

Everything about a route is resolved when it is registered (sync or async, what to inject,
how to answer); per request, C hands a Job to the route's `handle` closure and the
closure answers it with `job.respond()`, or, for a StreamingResponse, streams it (see
robyn/streaming.py).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any

from . import _gateway
from .exceptions import HTTPException
from .injection import compile_handler
from .responses import StreamingResponse, serialize
from .streaming import stream_async, stream_sync

logger = logging.getLogger("robyn")

_TEXT = [("content-type", "text/plain; charset=utf-8")]
_METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "CONNECT", "TRACE")
_DEFAULT_MAX_PAYLOAD = 1_000_000
_SHUTDOWN_GRACE_SECONDS = 10.0


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name} must be an integer, not {raw!r}") from None


def _limit(name: str, keyword: str, given: object, default: int) -> int:
    """A limit of docs/http.md: the environment's value, else app.start()'s, else the default.
    A value that is not a non-negative integer raises ValueError naming where it came from."""
    raw = os.environ.get(name)
    if raw is not None and raw.strip() != "":
        try:
            value = int(raw)
        except ValueError:
            raise ValueError(f"{name} must be an integer, not {raw!r}") from None
        source = name
    elif given is None:
        return default
    else:
        # bool is an int, but True as a size is surely a mistake.
        if isinstance(given, bool) or not isinstance(given, int):
            raise ValueError(f"app.start({keyword}=...) must be an integer, not {given!r}")
        value, source = given, f"app.start({keyword}=...)"
    if value < 0:
        raise ValueError(f"{source} must not be negative, not {value}")
    return value


def _answer_error(job: Any, exc: BaseException, where: str) -> None:
    if isinstance(exc, HTTPException):
        detail = exc.detail if exc.detail is not None else ""
        try:
            job.respond(exc.status_code, _TEXT, str(detail))
            return
        except Exception as bad:  # e.g. a status code that is not one: a 500 after all
            exc = bad
    logger.error("%s raised", where, exc_info=(type(exc), exc, exc.__traceback__))
    job.respond(500, _TEXT, "Internal Server Error")


def _answer(job: Any, result: Any, where: str) -> StreamingResponse | None:
    """Answers job with a handler's result, except a StreamingResponse, which is returned
    for the caller to stream from its own thread."""
    if type(result) is str:
        job.respond(200, _TEXT, result)
        return None
    try:
        status, headers, body = serialize(result)
        job.respond(status, headers, body)
    except Exception as exc:
        # serialize() refuses streams, so telling them apart costs other results nothing.
        if isinstance(result, StreamingResponse):
            return result
        # What cannot be sent (an unserializable value; a header respond() refuses for a
        # CR, LF or NUL, or for not being str) is the handler's bug: a 500 now, and nothing
        # of the refused answer reaches the wire.
        _answer_error(job, exc, where)
    return None


class Route:
    """One registered route: what C calls, and what it was made from."""

    __slots__ = ("method", "path", "handler", "is_async", "const", "index", "handle", "call")

    def __init__(self, method: str, path: str, handler: Callable[..., Any], const: bool,
                 app: "Robyn") -> None:
        self.method = method
        self.path = path
        self.handler = handler
        self.const = const
        params = [p[1:] for p in path.split("/") if p[:1] in (":", "*")]
        self.is_async, self.call = compile_handler(handler, params, app._dependencies)
        where = f"handler for {method} {path}"
        call = self.call
        if self.is_async:
            self.handle = app._make_async_handle(call, where)
        else:
            spawn = app._spawn_threadsafe
            stopping = app._streams_stopping

            def handle(job: Any) -> None:
                try:
                    result = call(job)
                except BaseException as exc:
                    _answer_error(job, exc, where)
                    return
                if type(result) is str:  # the common case, without a call
                    job.respond(200, _TEXT, result)
                else:
                    stream = _answer(job, result, where)
                    if stream is not None:
                        stream_sync(job, stream, where, spawn, stopping)

            self.handle = handle
        self.index = -1


class Robyn:
    """A web application, with Robyn's API."""

    def __init__(self, file_object: str, config: Any = None, dependencies: Any = None,
                 ws_origins: list[str] | None = None, pubsub_url: str | None = None) -> None:
        self.file_path = file_object
        self.directory_path = os.path.dirname(os.path.abspath(file_object))
        self.config = config
        self._server = _gateway.Server()
        # docs/redis.md: publishes reach other processes and machines through Redis.
        # ROBYN_PUBSUB_URL, read at start(), wins over this keyword.
        if pubsub_url is not None:
            if not isinstance(pubsub_url, str):
                raise TypeError(f"pubsub_url must be a str, not {type(pubsub_url).__name__}")
            try:
                self._server.configure_pubsub(pubsub_url, connect=False)
            except ValueError as exc:
                raise ValueError(f"pubsub_url: {exc}") from None
        self._pubsub_url = pubsub_url
        self._routes: list[Route] = []
        self._startup_handlers: list[Callable[[], Any]] = []
        self._shutdown_handlers: list[Callable[[], Any]] = []
        self._dependencies: dict[str, dict[str, Any]] = {"global": {}, "router": {}}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stopping = False
        self._eager = sys.version_info >= (3, 12)
        self._ws_origins = ws_origins
        self._ws_endpoints: list[Any] = []
        # Set when the shutdown grace period ends: streams pulled on sync workers stop at
        # their next chunk (those on the loop are cancelled instead).
        self._streams_stopping = threading.Event()

    def capture_headers(self, *names: str) -> None:
        """Kept for apps written for earlier versions: every request header now reaches
        handlers (the server parses HTTP itself), so there is nothing to ask for."""
        for name in names:
            if not isinstance(name, str) or not name:
                raise ValueError(f"invalid header name {name!r}")

    # ---- registration ------------------------------------------------------------------

    def add_route(self, route_type: str, endpoint: str, handler: Callable[..., Any],
                  is_const: bool = False) -> Route:
        method = route_type.upper() if isinstance(route_type, str) else str(route_type)
        if method not in _METHODS:
            raise ValueError(f"unknown HTTP method {route_type!r} for route {endpoint!r}")
        route = Route(method, endpoint, handler, is_const, self)
        kind = _gateway.ROUTE_CONST if is_const else (
            _gateway.ROUTE_ASYNC if route.is_async else _gateway.ROUTE_SYNC)
        route.index = self._server.add_route(method, endpoint, kind, route.handle)
        self._routes.append(route)
        return route

    def _decorator(self, method: str, endpoint: str, const: bool = False
                   ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def register(handler: Callable[..., Any]) -> Callable[..., Any]:
            self.add_route(method, endpoint, handler, const)
            return handler

        return register

    def get(self, endpoint: str, const: bool = False, **_: Any) -> Callable[..., Any]:
        return self._decorator("GET", endpoint, const)

    def post(self, endpoint: str, const: bool = False, **_: Any) -> Callable[..., Any]:
        return self._decorator("POST", endpoint, const)

    def put(self, endpoint: str, const: bool = False, **_: Any) -> Callable[..., Any]:
        return self._decorator("PUT", endpoint, const)

    def delete(self, endpoint: str, const: bool = False, **_: Any) -> Callable[..., Any]:
        return self._decorator("DELETE", endpoint, const)

    def patch(self, endpoint: str, const: bool = False, **_: Any) -> Callable[..., Any]:
        return self._decorator("PATCH", endpoint, const)

    def head(self, endpoint: str, const: bool = False, **_: Any) -> Callable[..., Any]:
        return self._decorator("HEAD", endpoint, const)

    def options(self, endpoint: str, const: bool = False, **_: Any) -> Callable[..., Any]:
        return self._decorator("OPTIONS", endpoint, const)

    def connect(self, endpoint: str, const: bool = False, **_: Any) -> Callable[..., Any]:
        return self._decorator("CONNECT", endpoint, const)

    def trace(self, endpoint: str, const: bool = False, **_: Any) -> Callable[..., Any]:
        return self._decorator("TRACE", endpoint, const)

    def websocket(self, endpoint: str, origins: list[str] | None = None,
                  backpressure: str = "close", compression: bool = False
                  ) -> Callable[[Callable[..., Any]], "WebSocketEndpoint"]:
        """Registers a WebSocket endpoint. The decorated handler runs once per connection,
        for as long as it lives. `origins` restricts the Origin header (403 otherwise;
        the app-wide `Robyn(..., ws_origins=[...])` applies when not given);
        `backpressure` is what a publish does to a subscriber over its send-buffer limit:
        "close" (1008) or "drop" (the message); `compression` allows permessage-deflate."""
        from .ws import WebSocketEndpoint

        if backpressure not in ("close", "drop"):
            raise ValueError(f"backpressure must be 'close' or 'drop', not {backpressure!r}")
        allowed = origins if origins is not None else self._ws_origins

        def register(handler: Callable[..., Any]) -> WebSocketEndpoint:
            policy = _gateway.WS_POLICY_DROP if backpressure == "drop" else _gateway.WS_POLICY_CLOSE
            ws_endpoint = WebSocketEndpoint(self, endpoint, handler, policy, compression,
                                            None if allowed is None else list(allowed))
            ws_endpoint._index = self._server.add_route("WS", endpoint, _gateway.ROUTE_ASYNC,
                                                        ws_endpoint.dispatch)
            ws_endpoint._apply_options()
            self._ws_endpoints.append(ws_endpoint)
            return ws_endpoint

        return register

    def serve_directory(self, route: str, directory_path: str, index_file: str | None = None,
                        show_files_listing: bool = False) -> None:
        """Serves a directory at `route` from C (robyn/static.py, docs/static.md)."""
        from . import static

        static.serve_directory(self, route, directory_path, index_file, show_files_listing)

    def publish(self, topic: str, message: str | bytes) -> int:
        """Sends message to every subscriber of topic; returns how many there are in this
        process. Fan-out happens in C: the message is framed once for all of them."""
        return int(self._server.publish(topic, message))

    def subscribers(self, topic: str) -> int:
        return int(self._server.subscribers(topic))

    def websocket_stats(self) -> dict[str, int]:
        return dict(self._server.ws_stats())

    def _spawn(self, coro: Any) -> None:
        assert self._loop is not None
        task = self._loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _spawn_threadsafe(self, coro: Coroutine[Any, Any, None]) -> None:
        """_spawn from another thread: a sync worker hands an async stream to the loop."""
        loop = self._loop
        try:
            if loop is None:
                raise RuntimeError("the event loop is not running")
            loop.call_soon_threadsafe(self._spawn, coro)
        except RuntimeError:
            # The loop is gone (the server is stopping): releasing the job answers it.
            coro.close()
            logger.error("a streaming response came after the event loop stopped; dropped")

    def startup_handler(self, handler: Callable[[], Any]) -> Callable[[], Any]:
        self._startup_handlers.append(handler)
        return handler

    def shutdown_handler(self, handler: Callable[[], Any]) -> Callable[[], Any]:
        self._shutdown_handlers.append(handler)
        return handler

    def inject(self, **kwargs: Any) -> None:
        """Makes values available to handlers by parameter name (router dependencies)."""
        self._dependencies["router"].update(kwargs)

    def inject_global(self, **kwargs: Any) -> None:
        self._dependencies["global"].update(kwargs)

    # ---- async handlers ------------------------------------------------------------------

    def _make_async_handle(self, call: Callable[[Any], Any], where: str
                           ) -> Callable[[Any], None]:
        tasks = self._tasks

        async def serve(job: Any) -> None:
            try:
                result = await call(job)
            except BaseException as exc:
                if isinstance(exc, asyncio.CancelledError) and self._stopping:
                    job.respond(503, _TEXT, "Service Unavailable")
                    raise
                _answer_error(job, exc, where)
                return
            if type(result) is str:
                job.respond(200, _TEXT, result)
            else:
                stream = _answer(job, result, where)
                if stream is not None:
                    await stream_async(job, stream, where)

        def handle(job: Any) -> None:
            loop = self._loop
            assert loop is not None
            if self._eager:
                task = asyncio.Task(serve(job), loop=loop, eager_start=True)  # type: ignore[call-arg]
                if task.done():
                    return
            else:
                task = loop.create_task(serve(job))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

        return handle

    # ---- lifecycle -------------------------------------------------------------------------

    def _new_loop(self) -> asyncio.AbstractEventLoop:
        try:
            import uvloop  # type: ignore[import-not-found]
        except ImportError:
            return asyncio.new_event_loop()
        return uvloop.new_event_loop()  # type: ignore[no-any-return]

    async def _run_hooks(self, hooks: list[Callable[[], Any]]) -> None:
        for hook in hooks:
            result = hook()
            if inspect.isawaitable(result):
                await result

    async def _compute_const_routes(self) -> None:
        for route in self._routes:
            if not route.const:
                continue
            params = inspect.signature(route.handler).parameters
            if params:
                raise ValueError(
                    f"const route {route.method} {route.path} must take no parameters: "
                    "its response is computed once, before any request")
            result = route.handler()
            if inspect.isawaitable(result):
                result = await result
            if isinstance(result, StreamingResponse):
                raise ValueError(f"const route {route.method} {route.path} cannot stream: "
                                 "its response is computed once, before any request")
            status, headers, body = serialize(result)
            self._server.set_const(route.index, status, headers, body)

    def start(self, host: str = "127.0.0.1", port: int = 8080, _check_port: bool = True,
              client_timeout: int = 30, keep_alive_timeout: int = 20,
              max_payload_size: int | None = None, workers: int | None = None,
              max_header_size: int | None = None, max_header_count: int | None = None,
              max_url_size: int | None = None, header_timeout: int | None = None,
              body_timeout: int | None = None) -> None:
        """Serves until SIGINT or SIGTERM, then shuts down gracefully and returns."""
        if not logging.getLogger().handlers:
            logging.basicConfig(level=logging.INFO, format="%(levelname)s:%(name)s:%(message)s")
        host = os.environ.get("ROBYN_HOST") or host
        port = _env_int("ROBYN_PORT", port)
        # docs/http.md: the environment wins over app.start()'s keywords, which win over the
        # defaults. All are checked before anything starts.
        max_payload_size = _limit("ROBYN_MAX_PAYLOAD_SIZE", "max_payload_size", max_payload_size,
                                  _DEFAULT_MAX_PAYLOAD)
        workers = _limit("ROBYN_SYNC_WORKERS", "workers", workers, 16)
        if workers < 1:  # sync routes would never be answered
            raise ValueError(f"ROBYN_SYNC_WORKERS / app.start(workers=...) must be at least 1, "
                             f"not {workers}")
        limits = {
            "max_header": _limit("ROBYN_MAX_HEADER_SIZE", "max_header_size", max_header_size,
                                 16384),
            "max_header_count": _limit("ROBYN_MAX_HEADER_COUNT", "max_header_count",
                                       max_header_count, 100),
            "max_url": _limit("ROBYN_MAX_URL_SIZE", "max_url_size", max_url_size, 8192),
            "header_timeout": _limit("ROBYN_HEADER_TIMEOUT", "header_timeout", header_timeout, 10),
            "body_timeout": _limit("ROBYN_BODY_TIMEOUT", "body_timeout", body_timeout, 10),
            "keepalive_timeout": _limit("ROBYN_KEEP_ALIVE_TIMEOUT", "keep_alive_timeout",
                                        keep_alive_timeout, 20),
            "max_pipeline": _limit("ROBYN_MAX_PIPELINE", "", None, 64),
            "stream_high_water": _limit("ROBYN_STREAM_HIGH_WATER", "", None, 65536),
        }

        pubsub_url = os.environ.get("ROBYN_PUBSUB_URL") or self._pubsub_url
        if pubsub_url:
            where = "ROBYN_PUBSUB_URL" if os.environ.get("ROBYN_PUBSUB_URL") else "pubsub_url"
            try:
                self._server.configure_pubsub(pubsub_url)
            except ValueError as exc:
                raise ValueError(f"{where}: {exc}") from None
            except ConnectionError as exc:
                raise ConnectionError(f"{where}: {exc} (Robyn does not start without the "
                                      "Redis it is configured with)") from None

        loop = self._new_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._run_hooks(self._startup_handlers))
            loop.run_until_complete(self._compute_const_routes())
            self._server.configure_ws(
                max_message=max_payload_size,
                high_water=_env_int("ROBYN_WS_HIGH_WATER", 64 * 1024),
                send_limit=_env_int("ROBYN_WS_SEND_LIMIT", 1024 * 1024),
                max_connections=_env_int("ROBYN_WS_MAX_CONNECTIONS", 100_000),
                ping_interval=_env_int("ROBYN_WS_PING_INTERVAL", 30),
                ping_timeout=_env_int("ROBYN_WS_PING_TIMEOUT", 30),
                inbox_limit=_env_int("ROBYN_WS_INBOX_LIMIT", 256))
            try:
                self._server.start(host, port, max_body=max_payload_size, workers=workers,
                                   **limits)
            except OSError as exc:
                raise SystemExit(f"robyn: cannot start the server: {exc.strerror}") from None
            loop.add_reader(self._server.async_fd(), self._server.run_async)
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, self._request_shutdown)
            shown = f"[{host}]" if ":" in host else host
            logger.info("Robyn listening on http://%s:%d", shown, port)
            loop.run_forever()
            loop.run_until_complete(self._shutdown())
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
            self._server.stop()
            asyncio.set_event_loop(None)
            loop.close()
            self._loop = None

    def _request_shutdown(self) -> None:
        if self._stopping:
            return
        self._stopping = True
        logger.info("Robyn shutting down")
        assert self._loop is not None
        self._loop.stop()

    async def _shutdown(self) -> None:
        """New requests get 503; requests in flight get until the grace period ends."""
        self._server.drain()
        self._server.close_websockets()
        deadline = time.monotonic() + _SHUTDOWN_GRACE_SECONDS
        while time.monotonic() < deadline and (
                self._server.in_flight() or self._server.ws_stats()["connections"]):
            await asyncio.sleep(0.01)
        # Handlers whose connections closed finish their loops and run on_close.
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=max(0.0, deadline - time.monotonic()))
        # Grace is over: streams stop at their next chunk (sync workers) or now (the loop's,
        # cancelled below, close their generators on the way out).
        self._streams_stopping.set()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        loop = asyncio.get_running_loop()
        loop.remove_reader(self._server.async_fd())
        await self._run_hooks(self._shutdown_handlers)
