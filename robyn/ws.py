"""WebSocket endpoints: the handler coroutine that lives as long as its connection.

The connection itself lives in C (robyn._gateway.Connection): frames, queues, pings,
close handshakes and topic fan-out happen there. This module turns the C side's events
(handshake, open, message, close, drained) into what a handler sees: Robyn 0.88's
`receive_text()` / `send_text()` / `broadcast()` / `close()` API (and `async for message in
websocket`), awaitable sends with real backpressure, on_connect / on_close callbacks, and
handler parameters filled as Robyn fills them (dependencies, typed query parameters).
docs/websocket.md is the reference.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
import logging
import sys
import threading
import uuid
from collections import deque
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

from . import _gateway
from .datastructures import Headers, QueryParams
from .exceptions import HTTPException, QueryParamValidationError, WebSocketException
from .injection import compile_handler, handler_is_async
from .request import Request
from .responses import Response, jsonify, serialize

if TYPE_CHECKING:
    from .app import Robyn

__all__ = ["Reached", "WebSocket", "WebSocketAdapter", "WebSocketDisconnect", "WebSocketEndpoint"]

logger = logging.getLogger("robyn")

Message = str | bytes

_TEXT = [("content-type", "text/plain; charset=utf-8")]
_MAX_REASON_BYTES = 123  # a close frame's payload is at most 125 bytes, 2 of them the code

# Messages shorter than this leave uncompressed on a permessage-deflate connection: a
# 100-200 byte JSON message shrinks by only 20-35% (a few dozen bytes, less than the TCP/IP
# headers of its packet), while from 256 bytes on the saving is 40% and grows with the size.
DEFAULT_COMPRESSION_THRESHOLD = 256


def check_compression_threshold(compression: bool, threshold: object) -> int:
    """The `compression_threshold` of a websocket endpoint, checked: bytes from which a
    message is sent compressed (DEFAULT_COMPRESSION_THRESHOLD when None)."""
    if threshold is None:
        return DEFAULT_COMPRESSION_THRESHOLD
    if not compression:
        raise ValueError("compression_threshold needs compression=True")
    if isinstance(threshold, bool) or not isinstance(threshold, int) or not 0 <= threshold <= sys.maxsize:
        raise ValueError(f"compression_threshold must be a whole number of bytes from 0 to sys.maxsize, "
                         f"not {threshold!r}")
    return threshold


class WebSocketDisconnect(Exception):
    """The connection closed while a receive was pending, or before it started."""

    def __init__(self, code: int = 1000, reason: str = "") -> None:
        super().__init__(code, reason)
        self.code = code
        self.reason = reason

    def __str__(self) -> str:
        return f"WebSocket closed with code {self.code}" + (f": {self.reason}" if self.reason else "")


class Reached(int):
    """How many connections a broadcast or publish was queued for.

    It is an int, so `n = websocket.broadcast(m)` counts; and it is awaitable, because Robyn's
    `broadcast()` is a coroutine: `await websocket.broadcast(m)` gives the same count. The
    message is queued when the method is called, awaited or not.
    """

    __slots__ = ()

    def __await__(self) -> Generator[Any, None, Reached]:
        return self
        yield  # a generator that finishes at once: awaiting never suspends


def _close_code_error(code: int, reason: str) -> ValueError | None:
    """Why (code, reason) cannot go in a server's close frame, or None. RFC 6455 7.4: 1004-1006
    and 1015 name what a peer observed and are never sent; 1016-2999 belong to the protocol
    and its extensions. Checked before on_close runs, so a bad close changes nothing."""
    if isinstance(code, bool) or not isinstance(code, int):
        return ValueError(f"a close code must be an int, not {code!r}")
    if not (code == 1000 or 3000 <= code <= 4999
            or (1001 <= code <= 1014 and code not in (1004, 1005, 1006))):
        return ValueError(f"{code} is not a close code a server may send")
    if not isinstance(reason, str):
        return ValueError(f"a close reason must be str, not {type(reason).__name__}")
    if len(reason.encode("utf-8")) > _MAX_REASON_BYTES:
        return ValueError("a close reason is at most 123 bytes of UTF-8")
    return None


def _short_reason(text: str) -> str:
    """text cut to what a close frame holds, at a character boundary."""
    data = text.encode("utf-8")[:_MAX_REASON_BYTES]
    return data.decode("utf-8", "ignore")


def _as_message(value: Any) -> Message:
    """What a callback's return value sends: str and bytes as they are, a Response its body,
    anything else as JSON (Robyn sends only str; JSON is what jsonify() would have made)."""
    if isinstance(value, Response):
        value = value.description
    if isinstance(value, (str, bytes)):
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    return jsonify(value)


class WebSocket:
    """One WebSocket connection, as a handler sees it (Robyn's `WebSocketAdapter`).

    An idle connection costs what it holds, times every connection a server keeps: the
    attributes are slots, and the inbox, the drain waiters and the close waiter are made
    only when something needs them (docs/websocket.md, "Memory per connection"). A
    `__dict__` slot keeps attributes an application sets on the socket working; its dict
    is made on the first such attribute.
    """

    __slots__ = ("_conn", "_endpoint", "_loop", "_inbox", "_waiter", "_waiter_iterates",
                 "_drain_waiters", "_close_code", "_close_reason", "_request", "_closed_waiter",
                 "_greeting", "_id", "_refusal", "_run_handler", "_closing", "_on_close_done",
                 "__dict__", "__weakref__")

    def __init__(self, conn: Any, endpoint: WebSocketEndpoint, loop: asyncio.AbstractEventLoop) -> None:
        self._conn = conn
        self._endpoint = endpoint
        self._loop = loop
        self._inbox: deque[Message] | None = None  # messages no receive was waiting for
        self._waiter: asyncio.Future[Message] | None = None
        # The waiter is `async for`'s: a close ends it with StopAsyncIteration.
        self._waiter_iterates = False
        self._drain_waiters: list[asyncio.Future[None]] | None = None
        self._close_code: int | None = None
        self._close_reason = ""
        self._request: Request | None = None
        self._closed_waiter: asyncio.Future[None] | None = None  # see _wait_closed
        self._greeting: Any = None
        self._id: str | None = None
        # Set by the handshake: why the handler's (or on_connect's) parameters could not be
        # filled; the connection then gets "Error: <why>" and is closed with 1008.
        self._refusal: str | None = None
        self._run_handler: Callable[[], Any] | None = None
        self._closing = False  # close() has started (on_close, then the close frame)
        self._on_close_done = False

    # ---- the handshake request ---------------------------------------------------------

    @property
    def id(self) -> str:
        """The connection's id: a UUID string, as Robyn's, made on first read."""
        ident = self._id
        if ident is None:
            ident = self._id = str(uuid.uuid4())
        return ident

    @property
    def request(self) -> Request:
        if self._request is None:
            self._request = Request(self._conn.request)
        return self._request

    # Read straight from the handshake, without building (and keeping for the life of the
    # connection) a Request, unless the handler already asked for one: a handler that reads
    # a query parameter once should not pay for it on every idle connection.
    @property
    def path_params(self) -> dict[str, str]:
        request = self._request
        return request.path_params if request is not None else Request(self._conn.request).path_params

    @property
    def query_params(self) -> QueryParams:
        request = self._request
        return request.query_params if request is not None else Request(self._conn.request).query_params

    @property
    def headers(self) -> Headers:
        request = self._request
        return request.headers if request is not None else Request(self._conn.request).headers

    @property
    def identity(self) -> Any:
        """What the authentication handler returned, on an `auth_required=True` endpoint."""
        return self.request.identity

    @property
    def closed(self) -> bool:
        return self._close_code is not None

    @property
    def close_code(self) -> int | None:
        return self._close_code

    # ---- receiving -----------------------------------------------------------------------

    def __aiter__(self) -> WebSocket:
        return self

    def __anext__(self) -> asyncio.Future[Message]:
        """The next message as a future, awaited by `async for`: no coroutine of its own,
        so an idle `async for` holds one future and nothing more. A close resolves it with
        StopAsyncIteration, which ends the loop."""
        future: asyncio.Future[Message] = self._loop.create_future()
        inbox = self._inbox
        if inbox:
            future.set_result(inbox.popleft())
            self._conn.consumed(1)
        elif self._close_code is not None:
            future.set_exception(StopAsyncIteration())
        else:
            self._set_waiter(future, iterates=True)
        return future

    def _set_waiter(self, future: asyncio.Future[Message], iterates: bool) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            raise RuntimeError("another coroutine is already waiting for the next message")
        self._waiter = future
        self._waiter_iterates = iterates

    def __iter__(self) -> WebSocket:
        return self

    def __next__(self) -> Message:
        """For sync handlers, which run on a worker thread."""
        future = asyncio.run_coroutine_threadsafe(self.receive(), self._loop)
        try:
            return future.result()
        except WebSocketDisconnect:
            raise StopIteration from None

    async def receive(self) -> Message:
        """The next message: str for a text frame, bytes for a binary one. Raises
        WebSocketDisconnect once the connection has closed and every message was read."""
        inbox = self._inbox
        if inbox:
            message = inbox.popleft()
            self._conn.consumed(1)
            return message
        if self._close_code is not None:
            raise WebSocketDisconnect(self._close_code, self._close_reason)
        waiter: asyncio.Future[Message] = self._loop.create_future()
        self._set_waiter(waiter, iterates=False)
        return await waiter

    async def receive_text(self) -> str:
        """The next message as str; a binary message is decoded as UTF-8 (as Robyn does),
        raising UnicodeDecodeError when it is not UTF-8."""
        message = await self.receive()
        return message if isinstance(message, str) else message.decode("utf-8")

    async def receive_bytes(self) -> bytes:
        """The next message as bytes; a text message is encoded as UTF-8 (as Robyn does)."""
        message = await self.receive()
        return message if isinstance(message, bytes) else message.encode("utf-8")

    async def receive_json(self) -> Any:
        """The next message (text or binary) decoded as JSON. Raises json.JSONDecodeError
        (a ValueError), "Invalid JSON message: ...", when it is not JSON."""
        message = await self.receive()
        try:
            return json.loads(message)
        except json.JSONDecodeError as exc:
            raise json.JSONDecodeError(f"Invalid JSON message: {exc.msg}", exc.doc, exc.pos) from None
        except UnicodeDecodeError as exc:
            raise json.JSONDecodeError("Invalid JSON message: not UTF-8",
                                       message.decode("utf-8", "replace")
                                       if isinstance(message, bytes) else message,
                                       exc.start) from None

    # ---- sending ---------------------------------------------------------------------------

    def send(self, message: Message) -> None:
        """Queues a message without waiting (for sync code). Prefer the awaitable sends,
        which wait while the connection is over its send-buffer high-water mark."""
        self._check_open()
        try:
            self._conn.send(message)
        except ConnectionError:
            raise self._gone() from None

    async def _send(self, message: Message) -> None:
        self._check_open()
        # Queued only once the backlog is under the high-water mark: the I/O thread takes
        # any one message into a queue under the mark, however large (one over the send
        # limit included), but closes the connection on a message that does not fit under
        # the limit of a queue over it (publishes or send() may have filled it meanwhile).
        # Several tasks woken by one drain re-check in turn: the first one's send counts in
        # the backlog at once.
        while (waiter := self._drained()) is not None:
            await waiter
            self._check_open()
        try:
            over = self._conn.send(message)
        except ConnectionError:
            raise self._gone() from None
        if over and (waiter := self._drained()) is not None:
            await waiter

    def _drained(self) -> asyncio.Future[None] | None:
        """A future set once the backlog is back under the high-water mark, or None when it
        is under it now. While senders wait, the drained event is already asked for: asking
        again (wait_drain) could clear the request as the I/O thread answers it."""
        if not self._drain_waiters and not self._conn.wait_drain():
            return None
        waiter = self._loop.create_future()
        if self._drain_waiters is None:
            self._drain_waiters = []
        self._drain_waiters.append(waiter)
        return waiter

    async def send_text(self, text: str) -> None:
        if not isinstance(text, str):
            raise TypeError(f"send_text() takes str, not {type(text).__name__}")
        await self._send(text)

    async def send_bytes(self, data: bytes) -> None:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"send_bytes() takes bytes, not {type(data).__name__}")
        await self._send(bytes(data))

    async def send_json(self, data: Any) -> None:
        """Sends data as compact JSON text, encoded as Robyn's orjson does (UTF-8 kept,
        datetimes, UUIDs, enums, dataclasses and Pydantic models too)."""
        await self._send(jsonify(data))

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Ends the connection from the server's side: on_close runs first and what it
        returns goes out as the last message, then the close frame (code, reason). A pending
        receive then raises WebSocketDisconnect. Closing a closed connection does nothing."""
        error = _close_code_error(code, reason)
        if error is not None:
            raise error
        if self._close_code is not None or self._closing:
            return
        self._closing = True
        await self._endpoint._finish(self, deliver=True)
        if self._close_code is None:
            self._conn.close(code, reason)

    def _check_open(self) -> None:
        if self._close_code is not None:
            raise WebSocketDisconnect(self._close_code, self._close_reason)

    def _gone(self) -> WebSocketDisconnect:
        # The C side saw the close before this loop got the event: no code is known yet.
        if self._close_code is not None:
            return WebSocketDisconnect(self._close_code, self._close_reason)
        return WebSocketDisconnect(1006, "")

    # ---- topics ----------------------------------------------------------------------------

    def subscribe(self, topic: str, since: tuple[str, int] | None = None,
                  last: int | None = None, info: dict[str, Any] | None = None) -> Any:
        """Subscribes this connection to topic, at once. Returns False if it already was.
        Raises WebSocketDisconnect when the connection has closed.

        On a topic with history (app.topic, docs/realtime.md), since=(epoch, offset) first
        replays the messages after offset, or last=N the newest N held, then goes on live
        with no gap and no duplicate at the seam; it returns a Recovered (how many were
        replayed, and the topic's position), and raises HistoryGone when the messages after
        offset are not all held any more; with the Redis bus it reads Redis (waiting, GIL
        released) and raises HistoryUnavailable when Redis cannot answer (docs/redis.md).
        On a presence topic, info (a JSON object) is what app.presence() shows for this
        connection."""
        if since is None and last is None and info is None:
            options = self._endpoint.app._topics.of(topic) if isinstance(topic, str) else None
            if options is None or not options.presence:
                try:
                    return bool(self._conn.subscribe(topic))
                except ConnectionError:
                    raise self._gone() from None
        return self._subscribe_with(topic, since, last, info)

    def _subscribe_with(self, topic: str, since: Any, last: Any, info: Any) -> Any:
        from .app import _position
        from .realtime import HistoryGone, Recovered

        app = self._endpoint.app
        options = app._topics.of(topic) if isinstance(topic, str) else None
        if (since is not None or last is not None) and (options is None or not options.history):
            raise ValueError(f"topic {topic!r} keeps no history: give it one with "
                             "app.topic(pattern, history=N) before the app starts")
        if info is not None and (options is None or not options.presence):
            raise ValueError(f"topic {topic!r} has no presence: give it app.topic(pattern, "
                             "presence=True) before the app starts")
        if since is not None and last is not None:
            raise ValueError("subscribe() takes since= or last=, not both")
        if last is not None and (isinstance(last, bool) or not isinstance(last, int) or last < 0):
            raise ValueError(f"last must be an int >= 0, not {last!r}")
        if info is not None:
            if not isinstance(info, dict):
                raise TypeError(f"info must be a dict, not {type(info).__name__}")
            try:
                json.dumps(info, allow_nan=False)
            except (TypeError, ValueError) as exc:
                raise TypeError(f"info must be JSON ({exc})") from None
        epoch, offset = _position(since)
        result: Any
        try:
            if since is not None or last is not None:
                replayed, now_epoch, now_offset = self._conn.subscribe_since(
                    topic, epoch, offset, last or 0)
                if replayed < 0:
                    raise HistoryGone(topic, now_epoch, now_offset)
                result = Recovered(replayed, now_epoch, now_offset)
            else:
                result = bool(self._conn.subscribe(topic))
        except ConnectionError:
            raise self._gone() from None
        assert options is not None
        if options.presence:
            member = dict(info) if info is not None else {}
            if app._topics.join(topic, self.id, member) and options.presence_events:
                _announce(app, topic, options, "join", self.id, member)
        return result

    def unsubscribe(self, topic: str) -> bool:
        was = bool(self._conn.unsubscribe(topic))
        self._leave(topic)
        return was

    def _leave(self, topic: str) -> None:
        """Takes this connection out of topic's presence (announcing it when asked for)."""
        app = self._endpoint.app
        if not app._topics.options or self._id is None:
            return
        info = app._topics.leave(topic, self._id)
        if info is not None:
            options = app._topics.of(topic)
            if options is not None and options.presence_events:
                _announce(app, topic, options, "leave", self._id, info)

    def publish(self, topic: str, message: Any) -> Reached:
        """Sends message to every subscriber of topic except this connection; returns how
        many that is (awaitable too, like broadcast). On a topic with history the answer
        also has the message's epoch and offset, like app.publish()."""
        if self._endpoint.app._topics.options:
            return self._endpoint.app._publish(topic, message, self._conn)
        return Reached(self._conn.publish(topic, message))

    def broadcast(self, message: Message) -> Reached:
        """Sends message (str: text, bytes: binary) to every connection of this endpoint,
        this one included. Returns how many that is, as an int that can also be awaited
        (`await websocket.broadcast(m)`, Robyn's form)."""
        return Reached(self._conn.broadcast(message))

    # ---- events from C ---------------------------------------------------------------------

    def _on_message(self, message: Message) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            self._waiter = None
            self._conn.consumed(1)
            waiter.set_result(message)
        else:
            if self._inbox is None:
                self._inbox = deque()
            self._inbox.append(message)

    def _on_close(self, code: int, reason: str) -> None:
        self._close_code = code
        self._close_reason = reason
        app = self._endpoint.app
        if app._topics.options and self._id is not None:
            # Presence follows the connection: gone before on_close or anything else runs.
            for topic in app._topics.topics_of(self._id):
                self._leave(topic)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            self._waiter = None
            waiter.set_exception(StopAsyncIteration() if self._waiter_iterates
                                 else WebSocketDisconnect(code, reason))
        self._wake_senders(WebSocketDisconnect(code, reason))
        closed = self._closed_waiter
        if closed is not None and not closed.done():
            closed.set_result(None)

    def _handler_done(self, task: asyncio.Task[Any]) -> None:
        """The handler's own task ended (see WebSocketEndpoint._start): the rest runs as a
        task of its own, in the app's task set before this one leaves it, so a shutdown
        waiting for the set waits for it too."""
        app = self._endpoint.app
        app._spawn(self._endpoint._run(self, task))
        app._tasks.discard(task)

    async def _wait_closed(self) -> None:
        """Returns once the C side has reported the close. The future exists only while
        someone waits (a handler that returned before its client left)."""
        if self._close_code is not None:
            return
        if self._closed_waiter is None:
            self._closed_waiter = self._loop.create_future()
        await self._closed_waiter

    def _wake_senders(self, error: BaseException | None = None) -> None:
        waiters, self._drain_waiters = self._drain_waiters, None
        if waiters is None:
            return
        for waiter in waiters:
            if waiter.done():
                continue
            if error is None:
                waiter.set_result(None)
            else:
                waiter.set_exception(error)

    def __repr__(self) -> str:
        state = "open" if self._close_code is None else f"closed {self._close_code}"
        return f"<WebSocket {self._endpoint.path} {state}>"


WebSocketAdapter = WebSocket


def _announce(app: Robyn, topic: str, options: Any, kind: str, conn_id: str,
              info: dict[str, Any]) -> None:
    """Publishes a presence event: a JSON value in a history envelope, else JSON text."""
    event = {"presence": kind, "id": conn_id, "info": info}
    app._publish(topic, event if options.history else json.dumps(event, separators=(",", ":")), None)


async def _maybe_await(value: Any) -> Any:
    if inspect.isawaitable(value):
        return await value
    return value


async def _in_own_thread(fn: Callable[[], Any]) -> Any:
    """Runs a sync WebSocket handler on a thread of its own: it holds that thread for the
    life of its connection, so a shared pool would stall every connection past its size."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[Any] = loop.create_future()

    def settle(outcome: Callable[[], None]) -> None:
        if not done.cancelled():
            outcome()

    def run() -> None:
        try:
            result = fn()
        except BaseException as exc:  # handed to the loop, raised there
            loop.call_soon_threadsafe(settle, lambda: done.set_exception(exc))
        else:
            loop.call_soon_threadsafe(settle, lambda: done.set_result(result))

    threading.Thread(target=run, name="robyn-ws-sync", daemon=True).start()
    return await done


class _Binder:
    """How one user function (handler, on_connect or on_close) is called for a connection.

    Robyn's rule: the first parameter is the websocket; the others are filled as an HTTP
    handler's are (robyn/injection.py): `global_dependencies` / `router_dependencies`,
    `query_params`, and by name the query parameter (or path parameter) of that name,
    coerced to its annotation. Worked out once, when the function is registered.
    """

    __slots__ = ("fn", "is_async", "_bind")

    def __init__(self, fn: Callable[..., Any], path_params: list[str],
                 dependencies: dict[str, Any] | None) -> None:
        self.fn = fn
        self.is_async = handler_is_async(fn)
        parameters = list(inspect.signature(fn).parameters.values())
        self._bind: Callable[[WebSocket], Callable[[], Any]]
        if not parameters:
            self._bind = lambda ws: fn
            return
        first: inspect.Parameter | None = parameters[0]
        rest = parameters[1:]
        target = fn
        if first is not None and first.kind is first.VAR_KEYWORD:
            first, rest = None, parameters  # `def handler(**kwargs)`: no parameter is the socket
        if first is None:

            def with_socket(ws: WebSocket, *args: Any, **kwargs: Any) -> Callable[[], Any]:
                return functools.partial(target, *args, **kwargs)
        elif first.kind is first.KEYWORD_ONLY:
            name = first.name

            def with_socket(ws: WebSocket, *args: Any, **kwargs: Any) -> Callable[[], Any]:
                return functools.partial(target, *args, **{name: ws}, **kwargs)
        else:

            def with_socket(ws: WebSocket, *args: Any, **kwargs: Any) -> Callable[[], Any]:
                return functools.partial(target, ws, *args, **kwargs)

        if not rest:
            self._bind = with_socket
            return
        resolve = _compile_rest(self.fn, rest, path_params, dependencies)

        def bind(ws: WebSocket) -> Callable[[], Any]:
            outcome = resolve(ws.request)
            if isinstance(outcome, Response):  # a getter's early answer (a JSON body, say)
                description = outcome.description
                text = description.decode("utf-8", "replace") if isinstance(description, bytes) else str(description)
                raise QueryParamValidationError("", None, None, text)
            args, kwargs = outcome
            return with_socket(ws, *args, **kwargs)

        self._bind = bind

    def bind(self, ws: WebSocket) -> Callable[[], Any]:
        """A no-argument call of the function for ws. Raises QueryParamValidationError when a
        parameter is missing or does not fit its annotation."""
        return self._bind(ws)


def _compile_rest(fn: Callable[..., Any], rest: list[inspect.Parameter], path_params: list[str],
                  dependencies: dict[str, Any] | None) -> Callable[[Request], Any]:
    """compile_handler's argument building for the parameters after the websocket: it is
    given a stand-in with just those parameters, which hands back what it was called with."""
    def stand_in(*args: Any, **kwargs: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
        return args, kwargs

    stand_in.__name__ = getattr(fn, "__name__", stand_in.__name__)
    stand_in.__qualname__ = getattr(fn, "__qualname__", stand_in.__qualname__)
    stand_in.__signature__ = inspect.Signature(rest)  # type: ignore[attr-defined]
    stand_in.__annotations__ = {p.name: p.annotation for p in rest if p.annotation is not p.empty}
    stand_in.__wrapped__ = fn  # type: ignore[attr-defined]  # where string annotations are evaluated
    _, call = compile_handler(stand_in, path_params, dependencies)
    return call


class WebSocketEndpoint:
    """What `@app.websocket(path)` returns: the handler plus its on_connect / on_close.

    With an on_connect (or `auth_required=True`), each upgrade waits for it before being
    answered: a refused authentication answers its 401, raising HTTPException(401) or
    returning Response(403, ...) from on_connect refuses the connection with that HTTP status
    instead of a 101; whatever else on_connect returns is sent as the first message.
    """

    def __init__(self, app: Robyn, path: str, handler: Callable[..., Any], policy: int,
                 compress: bool, origins: list[str] | None, *, auth_required: bool = False,
                 dependencies: dict[str, Any] | None = None,
                 compression_threshold: int = DEFAULT_COMPRESSION_THRESHOLD) -> None:
        """`dependencies` is what `global_dependencies` / `router_dependencies` parameters
        get (compile_handler's mapping); the app's when not given (a SubRouter passes its own)."""
        self.app = app
        self.path = path
        self.handler = handler
        self._index = -1  # set once the route is registered
        self._policy = policy
        self._compress = compress
        self._compression_threshold = compression_threshold
        self._origins = origins
        self._path_params = [p[1:] for p in path.split("/") if p[:1] in (":", "*")]
        self._dependencies = dependencies if dependencies is not None else getattr(app, "_dependencies", None)
        self._handler = self._binder(handler)
        self._connect: _Binder | None = None
        self._close: _Binder | None = None
        self._sync = not self._handler.is_async
        self._auth_required = bool(auth_required)
        self.__name__ = getattr(handler, "__name__", "websocket")
        self.__doc__ = getattr(handler, "__doc__", None)

    def _binder(self, fn: Callable[..., Any]) -> _Binder:
        return _Binder(fn, self._path_params, self._dependencies)

    @property
    def auth_required(self) -> bool:
        """Whether the upgrade needs the app's authentication handler to allow it (a refusal
        is answered as HTTP, with the handler's 401, instead of a 101)."""
        return self._auth_required

    @auth_required.setter
    def auth_required(self, value: bool) -> None:
        if not isinstance(value, bool):
            raise TypeError(f"auth_required must be a bool, not {type(value).__name__}")
        self._auth_required = value
        self._apply_options()

    def _apply_options(self) -> None:
        if self._index < 0:
            return
        precheck = self._connect is not None or self._auth_required
        self.app._server.set_ws_options(self._index, self._policy, int(self._compress),
                                        self._compression_threshold, int(precheck), self._origins)

    def on_connect(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        self._connect = self._binder(fn)
        self._apply_options()
        return fn

    def on_close(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        self._close = self._binder(fn)
        return fn

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.handler(*args, **kwargs)

    # ---- driven by the C side's events (on the loop thread) -----------------------------

    def dispatch(self, kind: int, conn: Any, payload: Any) -> None:
        if kind == _gateway.WS_MESSAGE:
            conn.user._on_message(payload)
        elif kind == _gateway.WS_OPEN:
            ws = conn.user
            if ws is None:
                loop = self.app._loop
                assert loop is not None
                ws = WebSocket(conn, self, loop)
                conn.user = ws
            self._start(ws)
        elif kind == _gateway.WS_CLOSE:
            ws = conn.user
            if ws is not None:
                ws._on_close(*payload)
        elif kind == _gateway.WS_DRAINED:
            if conn.user is not None:
                conn.user._wake_senders()
        elif kind == _gateway.WS_HANDSHAKE:
            loop = self.app._loop
            assert loop is not None
            ws = WebSocket(conn, self, loop)
            conn.user = ws
            self.app._spawn(self._precheck(ws))

    def _prepare(self, ws: WebSocket) -> None:
        """Fills the handler's parameters for ws, or notes why they cannot be."""
        try:
            ws._run_handler = self._handler.bind(ws)
        except QueryParamValidationError as exc:
            logger.warning("WebSocket connection to %s rejected: %s", self.path, exc.detail)
            ws._refusal = exc.detail

    async def _precheck(self, ws: WebSocket) -> None:
        """Runs authentication and on_connect while the client waits for its upgrade's answer."""
        if self._auth_required:
            try:
                refusal = await self.app._authenticate(ws.request)
            except Exception:
                logger.exception("authentication for WebSocket %s raised; the upgrade is refused", self.path)
                ws._conn.refuse(500, _TEXT, "Internal Server Error")
                return
            if refusal is not None:
                ws._conn.refuse(*serialize(refusal))
                return
        self._prepare(ws)
        if ws._refusal is None and self._connect is not None:
            try:
                outcome = await _maybe_await(self._connect.bind(ws)())
            except QueryParamValidationError as exc:
                logger.warning("WebSocket on_connect for %s rejected the connection: %s", self.path, exc.detail)
                ws._refusal = exc.detail
                outcome = None
            except HTTPException as exc:
                detail = exc.detail if exc.detail is not None else ""
                ws._conn.refuse(exc.status_code, _TEXT, str(detail))
                return
            except Exception:
                logger.exception("on_connect for %s raised; the upgrade is refused", self.path)
                ws._conn.refuse(403, _TEXT, "Forbidden")
                return
            if isinstance(outcome, Response) and outcome.status_code >= 400:
                ws._conn.refuse(*serialize(outcome))
                return
            ws._greeting = outcome
        ws._conn.accept()

    def _start(self, ws: WebSocket) -> None:
        """Starts the connection's handler. An async handler's coroutine is the task itself,
        with no coroutine of ours around it while it runs (every idle connection would
        keep that frame): what comes after it (its return value sent, its exception
        turned into a close code, on_close) is a second task, started when it ends. A
        greeting, a refusal or a sync handler go through _run whole."""
        if ws._run_handler is None and ws._refusal is None:
            self._prepare(ws)  # no handshake precheck ran
        run = ws._run_handler
        if self._sync or run is None or ws._greeting is not None or ws._refusal is not None:
            self.app._spawn(self._run(ws))
            return
        ws._run_handler = None
        loop = self.app._loop
        assert loop is not None
        task = loop.create_task(run())
        self.app._tasks.add(task)
        task.add_done_callback(ws._handler_done)

    async def _run(self, ws: WebSocket, finished: asyncio.Task[Any] | None = None) -> None:
        """Runs the handler (finished is None) or takes the outcome of its task (from
        _start), then ends the connection the way the outcome says."""
        try:
            try:
                if finished is not None:
                    result = finished.result()  # raises what the handler raised
                else:
                    # The client may leave right after the 101: the greeting then finds
                    # the socket gone, which ends the connection like any disconnect.
                    if ws._greeting is not None and not ws.closed:
                        await ws._send(_as_message(ws._greeting))
                    if ws._refusal is not None:
                        # Robyn sends this text instead of running the handler.
                        if not ws.closed:
                            await ws._send(f"Error: {ws._refusal}")
                        await ws.close(1008, _short_reason(ws._refusal))
                        return
                    run = ws._run_handler
                    assert run is not None
                    ws._run_handler = None
                    awaitable = _in_own_thread(run) if self._sync else run()
                    del run
                    result = await awaitable
                if isinstance(result, (str, bytes)) and not ws.closed:
                    await ws._send(result)
            except WebSocketDisconnect:
                pass
            except asyncio.CancelledError:
                raise
            except WebSocketException as exc:
                error = _close_code_error(exc.code, exc.reason)
                if error is None:
                    await ws.close(exc.code, exc.reason)
                else:
                    logger.error("websocket handler for %s raised %r, which cannot close a connection: %s",
                                 self.path, exc, error)
                    await ws.close(1011, "internal error")
                return
            except Exception:
                logger.exception("websocket handler for %s raised", self.path)
                await ws.close(1011, "internal error")
                return
            await ws.close(1000, "")
        finally:
            await ws._wait_closed()
            await self._finish(ws, deliver=False)

    async def _finish(self, ws: WebSocket, deliver: bool) -> None:
        """Runs on_close once per connection. With deliver (the server is ending an open
        connection), what it returns is sent before the close frame, as Robyn documents;
        after the client has closed there is nothing left to send it on."""
        if ws._on_close_done:
            return
        ws._on_close_done = True
        if self._close is None:
            return
        try:
            result = await _maybe_await(self._close.bind(ws)())
        except QueryParamValidationError as exc:
            logger.warning("WebSocket on_close for %s not called: %s", self.path, exc.detail)
            return
        except WebSocketDisconnect:
            return
        except Exception:
            logger.exception("on_close for %s raised", self.path)
            return
        if deliver and result is not None and not ws.closed:
            try:
                await ws._send(_as_message(result))
            except WebSocketDisconnect:
                pass
