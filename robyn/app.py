"""The application object: lifecycle, headers, and the glue to the C server (the route
decorators, middlewares and SubRouter are robyn/router.py's).

Routes are recorded as they are registered (a check server refuses bad patterns at once)
and handed to the C server when the app starts, each with the handle it needs: a route no
middleware, app header or exception handler applies to gets the plain handle below (the
handler's call and its answer); the others get their pipeline (robyn/pipeline.py). Per
request, C hands a Job to the handle, which answers it with `job.respond()` or, for a
StreamingResponse, streams it (robyn/streaming.py).
"""

from __future__ import annotations

import asyncio
import contextvars
import importlib
import inspect
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from . import _gateway, processes
from .logger import flush_lws_log, open_browser, route_lws_log, start_line, url_of
from .authentication import AuthenticationNotConfiguredError
from .datastructures import Headers
from .env import load_vars
from .events import Events
from .exceptions import HTTPException
from .injection import compile_handler, handler_is_async
from .realtime import HistoryGone, HistoryMessage, Member, Published, Topics, check_options, envelope_rest, parse_message
from .pipeline import NOT_FOUND_BODY, SERVER_ERROR_BODY, Pipeline, make_response
from .responses import NotAnAnswerError, Response, StreamingResponse, serialize
from .robyn import FunctionInfo
from .router import Route, RouterBase, path_hooks
from .streaming import stream_async, stream_sync

if TYPE_CHECKING:
    from .ws import WebSocketEndpoint

logger = logging.getLogger("robyn")

_TEXT = [("content-type", "text/plain; charset=utf-8")]
_DEFAULT_MAX_PAYLOAD = 1_000_000
_SHUTDOWN_GRACE_SECONDS = 10.0


def _same_path(a: str, b: str) -> bool:
    """Whether two route patterns are one path (the router ignores outer slashes)."""
    return a.strip("/") == b.strip("/")


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


def _const_producer(status: int, pairs: list[tuple[str, str]], body: bytes
                    ) -> Callable[[Any], Response]:
    """The producer of a const route that has hooks: the stored answer, a new Response each
    time (the hooks may change it)."""
    def produce(request: Any) -> Response:
        return make_response(status, pairs, body)

    return produce


def _refuse(job: Any) -> None:
    """The handler of the routes of the registration check, which never serves."""
    raise AssertionError("the route check server does not serve")


def _not_found(request: Any) -> Response:
    return make_response(404, [("content-type", "text/plain")], NOT_FOUND_BODY)


def _header_name(key: str) -> str:
    if not isinstance(key, str) or not key or any(c in key for c in "\r\n:\0 \t"):
        raise ValueError(f"invalid header name {key!r}")
    return key


def _header_value(key: str, value: str) -> str:
    if not isinstance(value, str) or any(c in value for c in "\r\n\0"):
        raise ValueError(f"invalid value for header {key!r}: {value!r}")
    return value


def _event_handler(handler: Callable[[], Any], event: str) -> Callable[[], Any]:
    if not callable(handler):
        raise TypeError(f"a {event} handler must be callable, not {handler!r}")
    return handler


def _header_timeout(header_timeout: int | None, client_timeout: int | None) -> int | None:
    if client_timeout is None:
        return header_timeout
    if header_timeout is not None:
        raise ValueError("app.start() takes client_timeout (Robyn's name) or header_timeout, "
                         "not both: they are the same limit")
    return client_timeout


def _answer_error(job: Any, exc: BaseException, where: str) -> None:
    if isinstance(exc, HTTPException):
        detail = exc.detail if exc.detail is not None else ""
        try:
            job.respond(exc.status_code, _TEXT, str(detail))
            return
        except Exception as bad:  # e.g. a status code that is not one: a 500 after all
            exc = bad
    if isinstance(exc, NotAnAnswerError):  # the traceback would show only the serializer
        logger.error("%s returned %s", where, exc)
    else:
        logger.error("%s raised", where, exc_info=(type(exc), exc, exc.__traceback__))
    job.respond(500, _TEXT, SERVER_ERROR_BODY)


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


class Robyn(RouterBase):
    """A web application, with Robyn's API."""

    def __init__(self, file_object: str, config: Any = None, openapi_file_path: str | None = None,
                 openapi: Any = None, dependencies: Any = None,
                 ws_origins: list[str] | None = None, pubsub_url: str | None = None) -> None:
        super().__init__()
        if dependencies is not None:
            raise TypeError("Robyn(dependencies=...) is not supported: use app.inject() and "
                            "app.inject_global()")
        self.file_path = file_object
        self.directory_path = os.path.dirname(os.path.abspath(file_object))
        self.config = config
        # The parsed command line (robyn/argument_parser.py), set by start() before it runs.
        self._command_line: Any = None
        self.openapi_file_path = openapi_file_path
        self._openapi = openapi
        self._openapi_made = False
        self._openapi_installed = False
        if not os.environ.get("ROBYN_CLI"):
            load_vars(project_root=self.directory_path)
        self._server = _gateway.Server()
        # Routes reach the real server when the app starts (their pipelines are known only
        # then); this one refuses a malformed or conflicting pattern at registration.
        self._route_check = _gateway.Server()
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
        self._startup_handlers: list[Callable[[], Any]] = []
        self._shutdown_handlers: list[Callable[[], Any]] = []
        self.event_handlers: dict[Events, FunctionInfo] = {}
        self.request_headers = Headers({})
        self.response_headers = Headers({})
        self.excluded_response_headers_paths: list[str] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stopping = False
        self._started = False
        self._eager = sys.version_info >= (3, 12)
        self._ws_origins = ws_origins
        self._ws_endpoints: list[Any] = []
        self._metrics_path: str | None = None  # enable_metrics(); served from start()
        self._topics = Topics(self._server)  # app.topic(): history, presence (robyn/realtime.py)
        self._request_context = contextvars.copy_context()
        # Set when the shutdown grace period ends: streams pulled on sync workers stop at
        # their next chunk (those on the loop are cancelled instead).
        self._streams_stopping = threading.Event()

    def capture_headers(self, *names: str) -> None:
        """Kept for apps written for earlier versions: every request header now reaches
        handlers (the server parses HTTP itself), so there is nothing to ask for."""
        for name in names:
            if not isinstance(name, str) or not name:
                raise ValueError(f"invalid header name {name!r}")

    # ---- OpenAPI (robyn/openapi.py) ------------------------------------------------------

    @property
    def openapi(self) -> Any:
        """The app's robyn.openapi.OpenAPI, made on first use as Robyn makes it in its
        constructor: the one given (or a new one), its document replaced by
        `openapi_file_path` or by an openapi.json next to the app (robyn.openapi.for_app)."""
        if not self._openapi_made and not self._docs_disabled():
            from .openapi import for_app

            self._openapi = for_app(self.directory_path, self._openapi, self.openapi_file_path)
            self._openapi_made = True
        return self._openapi

    @openapi.setter
    def openapi(self, value: Any) -> None:
        self._openapi = value
        self._openapi_made = True

    def _docs_disabled(self) -> bool:
        return bool(getattr(self.config, "disable_openapi", False)
                    or getattr(self._command_line, "disable_openapi", False))

    # ---- registration ------------------------------------------------------------------

    def _accept_route(self, route: Route) -> None:
        if self._started:
            raise RuntimeError(f"routes cannot be added once the app has started ({route.method} {route.path})")
        self._refuse_metrics_path(route.method, route.written)
        self._route_check.add_route(route.method, route.written, _gateway.ROUTE_SYNC, _refuse)
        self._routes.append(route)

    def _accept_websocket(self, path: str, options: dict[str, Any], pending: Any) -> None:
        router_dependencies = pending.router._dependencies["router"]
        # Only a router with dependencies of its own needs them handed over; the others
        # see the app's, the WebSocketEndpoint's default.
        dependencies = ({"global": self._dependencies["global"], "router": router_dependencies}
                        if router_dependencies else None)
        pending.attach(self.websocket(path, **options, _dependencies=dependencies)(pending.handler))

    # ---- headers ---------------------------------------------------------------------------

    def add_request_header(self, key: str, value: str) -> None:
        """Adds a header to every request handlers see."""
        self.request_headers.append(_header_name(key), _header_value(key, value))

    def set_request_header(self, key: str, value: str) -> None:
        self.request_headers.set(_header_name(key), _header_value(key, value))

    def add_response_header(self, key: str, value: str) -> None:
        """Adds a header to every response that does not set one of that name itself."""
        self.response_headers.append(_header_name(key), _header_value(key, value))

    def set_response_header(self, key: str, value: str) -> None:
        self.response_headers.set(_header_name(key), _header_value(key, value))

    def exclude_response_headers_for(self, excluded_response_headers_paths: list[str] | None) -> None:
        """The paths whose responses do not get the app's response headers."""
        if excluded_response_headers_paths is not None and (
                not isinstance(excluded_response_headers_paths, list)
                or not all(isinstance(p, str) for p in excluded_response_headers_paths)):
            raise TypeError("exclude_response_headers_for() takes a list of paths or None, "
                            f"not {excluded_response_headers_paths!r}")
        self.excluded_response_headers_paths = excluded_response_headers_paths

    # ---- seams with other modules ------------------------------------------------------

    async def _authenticate(self, request: Any) -> Any:
        """For WebSocket handshakes: None when the request may go on (request.identity is
        set), else the 401 Response to send."""
        handler = self._effective_authentication()
        if handler is None:
            raise AuthenticationNotConfiguredError()
        identity = handler.authenticate(request)
        if inspect.isawaitable(identity):
            identity = await identity
        if identity is None:
            return handler.unauthorized_response
        request.identity = identity
        return None

    def websocket(self, endpoint: str, origins: list[str] | None = None,
                  backpressure: str = "close", compression: bool = False,
                  auth_required: bool = False, *, compression_threshold: int | None = None,
                  _dependencies: dict[str, Any] | None = None
                  ) -> Callable[[Callable[..., Any]], "WebSocketEndpoint"]:
        """Registers a WebSocket endpoint. The decorated handler runs once per connection,
        for as long as it lives. `origins` restricts the Origin header (403 otherwise;
        the app-wide `Robyn(..., ws_origins=[...])` applies when not given);
        `backpressure` is what a publish does to a subscriber over its send-buffer limit:
        "close" (1008) or "drop" (the message); `compression` allows permessage-deflate, and
        then messages of `compression_threshold` bytes or more (256 when not given) leave
        compressed to the clients that negotiated it; `auth_required` makes the handshake
        pass the app's authentication handler first."""
        from .ws import WebSocketEndpoint, check_compression_threshold

        if backpressure not in ("close", "drop"):
            raise ValueError(f"backpressure must be 'close' or 'drop', not {backpressure!r}")
        threshold = check_compression_threshold(compression, compression_threshold)
        allowed = origins if origins is not None else self._ws_origins

        def register(handler: Callable[..., Any]) -> WebSocketEndpoint:
            policy = _gateway.WS_POLICY_DROP if backpressure == "drop" else _gateway.WS_POLICY_CLOSE
            # A SubRouter's websocket gets its router's dependencies (robyn/ws.py binds them).
            extra: dict[str, Any] = {} if _dependencies is None else {"dependencies": _dependencies}
            self._refuse_metrics_path("WebSocket", endpoint)
            ws_endpoint = WebSocketEndpoint(self, endpoint, handler, policy, compression,
                                            None if allowed is None else list(allowed), **extra,
                                            compression_threshold=threshold)
            ws_endpoint._index = self._server.add_route("WS", endpoint, _gateway.ROUTE_ASYNC,
                                                        ws_endpoint.dispatch)
            ws_endpoint.auth_required = bool(auth_required)
            ws_endpoint._apply_options()
            self._ws_endpoints.append(ws_endpoint)
            return ws_endpoint

        return register

    def serve_directory(self, route: str, directory_path: str, index_file: str | None = None,
                        show_files_listing: bool = False) -> None:
        """Serves a directory at `route` from C (robyn/static.py, docs/static.md)."""
        from . import static

        static.serve_directory(self, route, directory_path, index_file, show_files_listing)

    def publish(self, topic: str, message: Any) -> Published:
        """Sends message to every subscriber of topic; returns how many there are in this
        process (an int). Fan-out happens in C: the message is framed once for all of them.
        On a topic with history (app.topic) the message (str or any JSON value) is sent in
        its envelope, and the answer's `epoch` and `offset` say where it was kept; with the
        Redis bus they are None: Redis numbers the message after this returns
        (docs/redis.md)."""
        return self._publish(topic, message, None)

    def _publish(self, topic: str, message: Any, conn: Any) -> Published:
        """publish() for the app (conn None) or from a connection (which it skips)."""
        options = self._topics.of(topic) if isinstance(topic, str) else None
        source = self._server if conn is None else conn
        if options is None or not options.history:
            return Published(int(source.publish(topic, message)))
        reached, epoch, offset = source.publish_history(topic, envelope_rest(topic, message))
        return Published(reached, epoch, offset)

    def topic(self, pattern: str, history: int = 0, ttl: float | None = None,
              presence: bool = False, presence_events: bool = False) -> None:
        """Options of the topics matching pattern (a glob: "room:*"), set before the app
        starts; the first pattern a topic matches applies. `history`: how many of its last
        messages each topic keeps for recovery (websocket.subscribe(since=...)) and
        app.history(); `ttl`: seconds a message is kept at most; `presence`: track who is
        subscribed (websocket.subscribe(info=...), app.presence()); `presence_events`:
        publish a join and a leave message to the topic. docs/realtime.md."""
        if self._started:
            raise RuntimeError(f"app.topic({pattern!r}) must be called before the app starts")
        options = check_options(pattern, history, ttl, presence, presence_events)
        self._topics.add(options)
        if options.history:
            ttl_ms = 0 if options.ttl is None else max(1, int(options.ttl * 1000))
            self._server.history_pattern(options.pattern, options.history, ttl_ms)

    def history(self, topic: str, since: tuple[str, int] | None = None,
                limit: int | None = None) -> list[HistoryMessage]:
        """The messages topic's history holds, oldest first: all (or the newest `limit`);
        with since=(epoch, offset), those after offset (the first `limit` of them).
        Raises HistoryGone when they are not all held any more."""
        options = self._topics.of(topic) if isinstance(topic, str) else None
        if options is None or not options.history:
            raise ValueError(f"topic {topic!r} keeps no history: give it one with "
                             "app.topic(pattern, history=N) before the app starts")
        epoch, offset = _position(since)
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
            raise ValueError(f"limit must be a positive int or None, not {limit!r}")
        got = self._server.history(topic, epoch, offset, limit or 0)
        if got is None:
            assert epoch is not None
            now = self._server.history(topic, None, 0, 1)
            assert now is not None  # without since, never gone
            raise HistoryGone(topic, now[0] or "", now[1])
        messages = []
        for _, payload in got[2]:
            m_epoch, m_offset, data = parse_message(payload)
            messages.append(HistoryMessage(m_epoch, m_offset, data))
        return messages

    def presence(self, topic: str, everywhere: bool = True) -> list[Member]:
        """Who is subscribed to a presence topic, with the info each gave
        (websocket.subscribe(topic, info=...)): in every process and node the bus reaches
        (--processes N, the Redis bus), in the order this process learnt of them; with
        everywhere=False, this process's only, in the order they joined. Answered from this
        process's copy, kept up to date by the bus (docs/realtime.md, "Presence")."""
        self._presence_topic(topic)
        _check_everywhere(everywhere)
        if everywhere:
            return self._topics.members_everywhere(topic)
        return self._topics.members(topic)

    def presence_count(self, topic: str, everywhere: bool = True) -> int:
        """How many connections are present on topic in every process and node the bus
        reaches (what app.presence(topic) lists); with everywhere=False, in this process."""
        self._presence_topic(topic)
        _check_everywhere(everywhere)
        if everywhere:
            return self._topics.count_everywhere(topic)
        return self._topics.count(topic)

    def _announce_gone(self) -> None:
        """Publishes the leaves of members whose process died (and the joins of those whose
        process was only silent and came back), when the table chose this process to
        announce them (presence_events topics only)."""
        gone = self._server.presence_take_gone()
        if not gone:
            return
        from .ws import _announce

        for kind, topic, conn_id, info in gone:
            options = self._topics.of(topic)
            if options is None or not options.presence_events:
                continue
            try:
                _announce(self, topic, options, kind, conn_id, json.loads(info))
            except Exception:  # one that cannot be published must not cost the others
                logger.exception("robyn: cannot announce the %s of %s on %r", kind, conn_id,
                                 topic)

    def _presence_topic(self, topic: str) -> None:
        options = self._topics.of(topic) if isinstance(topic, str) else None
        if options is None or not options.presence:
            raise ValueError(f"topic {topic!r} has no presence: give it app.topic(pattern, "
                             "presence=True) before the app starts")

    def subscribers(self, topic: str, everywhere: bool = False) -> int:
        """Subscribers of topic in this process; with everywhere=True, in every process of
        the machine serving this app (--processes N: siblings answer within a second)."""
        if everywhere:
            return int(self._server.subscribers_everywhere(topic)[0])
        return int(self._server.subscribers(topic))

    def websocket_stats(self) -> dict[str, int]:
        return dict(self._server.ws_stats())

    # ---- metrics (docs/realtime.md) ----------------------------------------------------

    def enable_metrics(self, path: str = "/metrics") -> None:
        """Serves the server's counters at `path` in Prometheus' text format, answered by C
        on the I/O thread (no Python runs per scrape): GET and HEAD, other methods 405.
        Once per app, before it starts, on a path no route has."""
        if not isinstance(path, str):
            raise TypeError(f"enable_metrics() takes the path as a str, not {type(path).__name__}")
        if self._started:
            raise RuntimeError(f"enable_metrics({path!r}) must be called before the app starts")
        if self._metrics_path is not None:
            raise RuntimeError(f"enable_metrics({path!r}): metrics are already served at "
                               f"{self._metrics_path!r} (enable_metrics() is called once)")
        if not path.startswith("/"):
            raise ValueError(f"enable_metrics({path!r}): the path must start with '/'")
        if any(segment[:1] in (":", "*") for segment in path.split("/")):
            raise ValueError(f"enable_metrics({path!r}): the path must be fixed, without "
                             "parameters")
        try:  # the router's own checks (empty segments, bytes outside printable ASCII)
            _gateway.Server().add_route("GET", path, _gateway.ROUTE_SYNC, _refuse)
        except ValueError as exc:
            raise ValueError(f"enable_metrics({path!r}): {exc}") from None
        taken = [f"{route.method} {route.written}" for route in self._routes
                 if _same_path(route.written, path)]
        taken += [f"WebSocket {ws.path}" for ws in self._ws_endpoints if _same_path(ws.path, path)]
        if taken:
            raise ValueError(f"enable_metrics({path!r}): the path is already the route {taken[0]}")
        self._metrics_path = path

    def _refuse_metrics_path(self, what: str, path: str) -> None:
        if self._metrics_path is not None and _same_path(path, self._metrics_path):
            raise ValueError(f"{what} {path}: the path is served by "
                             f"enable_metrics({self._metrics_path!r})")

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
        """Runs handler (sync or async, no parameters) before the server serves. Every one
        registered runs, in order; `event_handlers` shows the last."""
        self._startup_handlers.append(_event_handler(handler, "startup"))
        self.event_handlers[Events.STARTUP] = FunctionInfo(handler, handler_is_async(handler), 0)
        return handler

    def shutdown_handler(self, handler: Callable[[], Any]) -> Callable[[], Any]:
        """Runs handler (sync or async, no parameters) after the server has stopped serving."""
        self._shutdown_handlers.append(_event_handler(handler, "shutdown"))
        self.event_handlers[Events.SHUTDOWN] = FunctionInfo(handler, handler_is_async(handler), 0)
        return handler

    # ---- the handles C calls -----------------------------------------------------------

    def _plain_handle(self, route: Route) -> Callable[[Any], None]:
        """The handle of a route no middleware, header or exception handler applies to:
        the handler's call and its answer, nothing else."""
        where = f"handler for {route.method} {route.path}"
        call = route.call
        if route.is_async:
            return self._make_async_handle(call, where)
        spawn = self._spawn_threadsafe
        stopping = self._streams_stopping

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

        return handle

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

    def _freeze(self, consts: dict[int, tuple[int, list[tuple[str, str]], bytes]],
                server: Any = None) -> None:
        """Hands every HTTP route to the server with the handle it needs (robyn/pipeline.py),
        and, when global middleware or response headers exist, the requests no route takes.
        `server` is the app's own by default; robyn.testing passes one it answers in-process."""
        server = self._server if server is None else server
        self._request_context = contextvars.copy_context()
        global_before = [h for h in self._before if h.path is None]
        global_after = [h for h in self._after if h.path is None]
        path_before = [h for h in self._before if h.path is not None]
        path_after = [h for h in self._after if h.path is not None]
        global_headers = self.response_headers.multi_items()
        excluded = self.excluded_response_headers_paths or ()
        used: set[int] = set()
        for number, route in enumerate(self._routes):
            if route.owner is not self:
                # A SubRouter's route: its own router dependencies, the app's global ones.
                _, route.call = compile_handler(route.handler, route.param_names(), {
                    "global": self._dependencies["global"],
                    "router": route.owner._dependencies["router"]})
            route_before, route_after = path_hooks(path_before, route), path_hooks(path_after, route)
            used.update(id(h) for h in route_before + route_after)
            befores, afters = global_before + route_before, global_after + route_after
            where = f"handler for {route.method} {route.path}"
            if route.const:
                status, pairs, body = consts[number]
                if not befores and not afters:
                    if route.path not in excluded:
                        names = {name for name, _ in pairs}
                        pairs = pairs + [(n, v) for n, v in global_headers if n not in names]
                    route.index = server.add_route(route.method, route.path, _gateway.ROUTE_CONST, None)
                    server.set_const(route.index, status, pairs, body)
                    continue
                pipeline = Pipeline(self, where, route.path, befores, afters,
                                    _const_producer(status, pairs, body), False, None)
            elif (befores or afters or global_headers or self.request_headers
                  or route.exception_handler is not None or route.openapi["status_code"] is not None
                  or route.response_model is not None):
                pipeline = Pipeline(self, where, route.path, befores, afters, route.call, route.is_async,
                                    route.exception_handler, route.openapi["status_code"],
                                    route.response_model)
            else:
                route.handle = self._plain_handle(route)
                kind = _gateway.ROUTE_ASYNC if route.is_async else _gateway.ROUTE_SYNC
                route.index = server.add_route(route.method, route.path, kind, route.handle)
                continue
            route.handle = pipeline.handle()
            kind = _gateway.ROUTE_ASYNC if pipeline.is_async else _gateway.ROUTE_SYNC
            route.index = server.add_route(route.method, route.path, kind, route.handle)
        for hook in path_before + path_after:
            if id(hook) not in used:
                logger.warning("%s_request hook %s for %s never runs: no route has that path",
                               hook.kind, hook.name, hook.path)
        if global_before or global_after or global_headers:
            unrouted = Pipeline(self, "request no route takes", None, global_before, global_after,
                                _not_found, False, None)
            server.set_fallback(
                _gateway.ROUTE_ASYNC if unrouted.is_async else _gateway.ROUTE_SYNC, unrouted.handle())

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

    async def _compute_const_routes(self) -> dict[int, tuple[int, list[tuple[str, str]], bytes]]:
        """Each const route's answer, computed once: by position in the route list."""
        consts = {}
        for number, route in enumerate(self._routes):
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
            model = route.response_model
            if model is not None and isinstance(result, dict):
                result = model.model_validate(result)
            try:
                status, pairs, body = serialize(result)
            except NotAnAnswerError as exc:
                raise TypeError(f"const route {route.method} {route.path} returned {exc}") from None
            if route.openapi["status_code"] is not None and not isinstance(result, Response):
                status = route.openapi["status_code"]  # as for any route: plain results only
            consts[number] = (status, pairs, body)
        return consts

    def _install_openapi(self) -> None:
        """Registers GET /openapi.json and GET /docs (robyn/openapi.py), unless disabled."""
        if self._docs_disabled() or self._openapi_installed:
            return
        self._openapi_installed = True  # robyn.testing may have done it before start()
        try:
            openapi = importlib.import_module("robyn.openapi")
        except ModuleNotFoundError as exc:
            if exc.name != "robyn.openapi":
                raise
            logger.warning("robyn.openapi is not installed: /docs and /openapi.json are not served")
            return
        openapi.install(self)
        # As in Robyn, the documentation pages do not get the app's response headers.
        self.excluded_response_headers_paths = list(self.excluded_response_headers_paths or []) + [
            path for path in ("/docs", "/openapi.json")
            if path not in (self.excluded_response_headers_paths or [])]

    @processes.supervised  # --processes N: this process supervises N that each run start()
    def start(self, host: str = "127.0.0.1", port: int = 8080, _check_port: bool = True,
              client_timeout: int | None = None, keep_alive_timeout: int = 20,
              max_payload_size: int | None = None, workers: int | None = None,
              max_header_size: int | None = None, max_header_count: int | None = None,
              max_url_size: int | None = None, header_timeout: int | None = None,
              body_timeout: int | None = None) -> None:
        """Serves until SIGINT or SIGTERM, then shuts down gracefully and returns."""
        if not logging.getLogger().handlers:
            logging.basicConfig(level=logging.INFO, format="%(levelname)s:%(name)s:%(message)s")
        # The command line wins over the environment, which wins over the keywords.
        command_line = self._command_line
        host = getattr(command_line, "host", None) or os.environ.get("ROBYN_HOST") or host
        port = getattr(command_line, "port", None) or _env_int("ROBYN_PORT", port)
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
            # Robyn's client_timeout is how long a client may take to send its request head:
            # this server's header_timeout, under Robyn's name.
            "header_timeout": _limit("ROBYN_HEADER_TIMEOUT", "header_timeout",
                                     _header_timeout(header_timeout, client_timeout), 10),
            "body_timeout": _limit("ROBYN_BODY_TIMEOUT", "body_timeout", body_timeout, 10),
            "keepalive_timeout": _limit("ROBYN_KEEP_ALIVE_TIMEOUT", "keep_alive_timeout",
                                        keep_alive_timeout, 20),
            "max_pipeline": _limit("ROBYN_MAX_PIPELINE", "", None, 64),
            "stream_high_water": _limit("ROBYN_STREAM_HIGH_WATER", "", None, 65536),
        }

        # With the Redis bus, topics with history keep it in Redis (docs/redis.md).
        pubsub_url = os.environ.get("ROBYN_PUBSUB_URL") or self._pubsub_url
        if (not pubsub_url and processes.worker() is not None
                and any(o.presence for o in self._topics.options)
                and processes._queue_limit() < _PRESENCE_QUEUE_MIN):
            raise ValueError(f"ROBYN_SIBLINGS_QUEUE_LIMIT must be at least {_PRESENCE_QUEUE_MIN} "
                             "with presence topics: a presence message between workers can be "
                             "that large (docs/realtime.md)")
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
        lws_log_fd = -1
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            if self._started:
                raise RuntimeError("an app starts once")
            self._install_openapi()
            loop.run_until_complete(self._run_hooks(self._startup_handlers))
            consts = loop.run_until_complete(self._compute_const_routes())
            self._freeze(consts)
            if self._metrics_path is not None:
                place = processes.worker()
                self._server.enable_metrics(self._metrics_path,
                                            worker=-1 if place is None else place.slot)
            self._started = True
            self._server.configure_ws(
                max_message=max_payload_size,
                high_water=_env_int("ROBYN_WS_HIGH_WATER", 64 * 1024),
                send_limit=_env_int("ROBYN_WS_SEND_LIMIT", 1024 * 1024),
                max_connections=_env_int("ROBYN_WS_MAX_CONNECTIONS", 100_000),
                ping_interval=_env_int("ROBYN_WS_PING_INTERVAL", 30),
                ping_timeout=_env_int("ROBYN_WS_PING_TIMEOUT", 30),
                inbox_limit=_env_int("ROBYN_WS_INBOX_LIMIT", 256))
            lws_log_fd = route_lws_log()
            loop.add_reader(lws_log_fd, flush_lws_log)
            # Before the server answers anything: a SIGTERM that comes as soon as the first
            # answer did must drain, not kill (the loop runs the handler once it runs).
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, self._request_shutdown)
            try:
                self._server.start(host, port, max_body=max_payload_size, workers=workers,
                                   reuse_port=processes.reuse_port(),
                                   access_log=bool(getattr(command_line, "access_log", False)),
                                   io_threads=processes.io_threads(self), **limits)
            except OSError as exc:
                raise SystemExit(f"robyn: cannot start the server: {exc.strerror}") from None
            processes.worker_ready()
            server = self._server
            loop_name, why_poll = server.event_loop
            if why_poll is not None:
                place = processes.worker()
                if place is None or place.slot == 0:  # once for the app, not per process
                    logger.info("the I/O threads wait in %s(), not epoll: %s (each wake-up walks "
                                "every connection; docs/deployment.md)", loop_name, why_poll)
            announces = any(o.presence_events for o in self._topics.options)

            def run_async() -> None:
                # The handlers this wakes run in the loop's next pass; the flush, queued
                # behind them, wakes the I/O thread once for every publish and send they
                # make, so that a subscriber gets them all in one write (docs/architecture.md).
                server.defer_ws_wakes()
                try:
                    server.run_async()
                    if announces:
                        self._announce_gone()
                finally:
                    loop.call_soon(server.flush_ws_wakes)

            loop.add_reader(server.async_fd(), run_async)
            place = processes.worker()
            if place is None:
                logger.info("%s", start_line(host, port, processes=1,
                                             workers=processes.io_threads(self)))
            else:  # the supervisor wrote the start line
                logger.debug("Robyn worker %d listening on %s", place.slot, url_of(host, port))
            if getattr(command_line, "open_browser", False) and (place is None or place.slot == 0):
                open_browser(url_of(host, port))
            loop.run_forever()
            loop.run_until_complete(self._shutdown())
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
            self._server.stop()
            if lws_log_fd >= 0:
                loop.remove_reader(lws_log_fd)
                flush_lws_log()  # what lws said while stopping
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
        # Handlers whose connections closed finish their loops and run on_close (a
        # WebSocket handler's ending starts the task that runs it: waited for too).
        while self._tasks and time.monotonic() < deadline:
            await asyncio.wait(list(self._tasks), timeout=max(0.0, deadline - time.monotonic()))
        # Grace is over: streams stop at their next chunk (sync workers) or now (the loop's,
        # cancelled below, close their generators on the way out).
        self._streams_stopping.set()
        for task in list(self._tasks):
            task.cancel()
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        loop = asyncio.get_running_loop()
        loop.remove_reader(self._server.async_fd())
        await self._run_hooks(self._shutdown_handlers)


# The largest presence message (pubsub/presence.h, PS_PRESENCE_MAX_MESSAGE, about 150 KB)
# must fit what one sibling may have queued.
_PRESENCE_QUEUE_MIN = 256 * 1024


def _check_everywhere(everywhere: Any) -> None:
    if not isinstance(everywhere, bool):
        raise TypeError(f"everywhere must be True or False, not {everywhere!r}")


def _position(since: Any) -> tuple[str | None, int]:
    """(epoch, offset) of a since= argument (None: (None, 0))."""
    if since is None:
        return None, 0
    if (not isinstance(since, (tuple, list)) or len(since) != 2 or not isinstance(since[0], str)
            or isinstance(since[1], bool) or not isinstance(since[1], int)):
        raise TypeError(f"since must be an (epoch, offset) pair of a str and an int, not {since!r}")
    if not since[0] or len(since[0]) > 31:
        raise ValueError(f"since: {since[0]!r} is not an epoch")
    if since[1] < 0 or since[1] >= 1 << 64:
        raise ValueError(f"since: the offset must be between 0 and 2**64 - 1, not {since[1]}")
    return since[0], since[1]
