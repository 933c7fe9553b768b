"""WebSocket endpoints: the handler coroutine that lives as long as its connection.

The connection itself lives in C (robyn._gateway.Connection): frames, queues, pings,
close handshakes and topic fan-out happen there. This module turns the C side's events
(open, message, close, drained) into what a handler sees: `async for message in
websocket`, awaitable sends with real backpressure, and on_connect / on_close callbacks.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import _gateway
from .datastructures import Headers, QueryParams
from .exceptions import HTTPException
from .request import Request
from .responses import Response, serialize

if TYPE_CHECKING:
    from .app import Robyn

__all__ = ["WebSocket", "WebSocketAdapter", "WebSocketDisconnect", "WebSocketEndpoint"]

logger = logging.getLogger("robyn")

Message = str | bytes


class WebSocketDisconnect(Exception):
    """The connection closed while a receive was pending, or before it started."""

    def __init__(self, code: int = 1000, reason: str = "") -> None:
        super().__init__(code, reason)
        self.code = code
        self.reason = reason

    def __str__(self) -> str:
        return f"WebSocket closed with code {self.code}" + (f": {self.reason}" if self.reason else "")


class WebSocket:
    """One WebSocket connection, as a handler sees it."""

    def __init__(self, conn: Any, endpoint: "WebSocketEndpoint", loop: asyncio.AbstractEventLoop) -> None:
        self._conn = conn
        self._endpoint = endpoint
        self._loop = loop
        self._inbox: deque[Message] = deque()
        self._waiter: asyncio.Future[Message] | None = None
        self._drain_waiters: list[asyncio.Future[None]] = []
        self._close_code: int | None = None
        self._close_reason = ""
        self._request: Request | None = None
        self._closed_event = asyncio.Event()
        self._greeting: Any = None
        self.id: int = conn.id

    # ---- the handshake request ---------------------------------------------------------

    @property
    def request(self) -> Request:
        if self._request is None:
            self._request = Request(self._conn.request)
        return self._request

    @property
    def path_params(self) -> dict[str, str]:
        return self.request.path_params

    @property
    def query_params(self) -> QueryParams:
        return self.request.query_params

    @property
    def headers(self) -> Headers:
        return self.request.headers

    @property
    def closed(self) -> bool:
        return self._close_code is not None

    @property
    def close_code(self) -> int | None:
        return self._close_code

    # ---- receiving -----------------------------------------------------------------------

    def __aiter__(self) -> "WebSocket":
        return self

    async def __anext__(self) -> Message:
        try:
            return await self.receive()
        except WebSocketDisconnect:
            raise StopAsyncIteration from None

    def __iter__(self) -> "WebSocket":
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
        if self._inbox:
            message = self._inbox.popleft()
            self._conn.consumed(1)
            return message
        if self._close_code is not None:
            raise WebSocketDisconnect(self._close_code, self._close_reason)
        if self._waiter is not None:
            raise RuntimeError("another coroutine is already waiting for the next message")
        waiter = self._loop.create_future()
        self._waiter = waiter
        try:
            return await waiter
        finally:
            self._waiter = None

    async def receive_text(self) -> str:
        message = await self.receive()
        if not isinstance(message, str):
            raise TypeError("expected a text message, got a binary one")
        return message

    async def receive_bytes(self) -> bytes:
        message = await self.receive()
        if not isinstance(message, bytes):
            raise TypeError("expected a binary message, got a text one")
        return message

    async def receive_json(self) -> Any:
        message = await self.receive()
        try:
            return json.loads(message)
        except json.JSONDecodeError as exc:
            raise ValueError(f"Invalid JSON message: {exc}") from None

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
        try:
            over = self._conn.send(message)
        except ConnectionError:
            raise self._gone() from None
        if over and self._conn.wait_drain():
            waiter = self._loop.create_future()
            self._drain_waiters.append(waiter)
            await waiter

    async def send_text(self, text: str) -> None:
        if not isinstance(text, str):
            raise TypeError(f"send_text() takes str, not {type(text).__name__}")
        await self._send(text)

    async def send_bytes(self, data: bytes) -> None:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"send_bytes() takes bytes, not {type(data).__name__}")
        await self._send(bytes(data))

    async def send_json(self, data: Any) -> None:
        await self._send(json.dumps(data, separators=(",", ":")))

    async def close(self, code: int = 1000, reason: str = "") -> None:
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

    def subscribe(self, topic: str) -> bool:
        """Subscribes this connection to topic, at once. Returns False if it already was.
        Raises WebSocketDisconnect when the connection has closed."""
        try:
            return bool(self._conn.subscribe(topic))
        except ConnectionError:
            raise self._gone() from None

    def unsubscribe(self, topic: str) -> bool:
        return bool(self._conn.unsubscribe(topic))

    def publish(self, topic: str, message: Message) -> int:
        """Sends message to every subscriber of topic except this connection."""
        return int(self._conn.publish(topic, message))

    def broadcast(self, message: Message) -> int:
        """Sends message to every connection of this endpoint, this one included."""
        return int(self._conn.broadcast(message))

    # ---- events from C ---------------------------------------------------------------------

    def _on_message(self, message: Message) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            self._conn.consumed(1)
            waiter.set_result(message)
        else:
            self._inbox.append(message)

    def _on_close(self, code: int, reason: str) -> None:
        self._close_code = code
        self._close_reason = reason
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(WebSocketDisconnect(code, reason))
        self._wake_senders(WebSocketDisconnect(code, reason))

    def _wake_senders(self, error: BaseException | None = None) -> None:
        waiters, self._drain_waiters = self._drain_waiters, []
        for waiter in waiters:
            if waiter.done():
                continue
            if error is None:
                waiter.set_result(None)
            else:
                waiter.set_exception(error)

    def __repr__(self) -> str:
        state = "open" if self._close_code is None else f"closed {self._close_code}"
        return f"<WebSocket {self.id} {self._endpoint.path} {state}>"


WebSocketAdapter = WebSocket


async def _maybe_await(value: Any) -> Any:
    if inspect.isawaitable(value):
        return await value
    return value


async def _in_own_thread(fn: Callable[..., Any], *args: Any) -> Any:
    """Runs a sync WebSocket handler on a thread of its own: it holds that thread for the
    life of its connection, so a shared pool would stall every connection past its size."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[Any] = loop.create_future()

    def settle(outcome: Callable[[], None]) -> None:
        if not done.cancelled():
            outcome()

    def run() -> None:
        try:
            result = fn(*args)
        except BaseException as exc:  # handed to the loop, raised there
            loop.call_soon_threadsafe(settle, lambda: done.set_exception(exc))
        else:
            loop.call_soon_threadsafe(settle, lambda: done.set_result(result))

    threading.Thread(target=run, name="robyn-ws-sync", daemon=True).start()
    return await done


class WebSocketEndpoint:
    """What `@app.websocket(path)` returns: the handler plus its on_connect / on_close.

    With an on_connect, each upgrade waits for it before being answered: raising
    HTTPException(401) or returning Response(403, ...) refuses the connection with that
    HTTP status instead of a 101; whatever else it returns is sent as the first message.
    """

    def __init__(self, app: "Robyn", path: str, handler: Callable[..., Any], policy: int,
                 compress: bool, origins: list[str] | None) -> None:
        self.app = app
        self.path = path
        self.handler = handler
        self._index = -1  # set once the route is registered
        self._takes: dict[Callable[..., Any], bool] = {}
        self._policy = policy
        self._compress = compress
        self._origins = origins
        self._connect: Callable[..., Any] | None = None
        self._close: Callable[..., Any] | None = None
        self._sync = not inspect.iscoroutinefunction(handler)
        self.__name__ = getattr(handler, "__name__", "websocket")
        self.__doc__ = getattr(handler, "__doc__", None)

    def _apply_options(self) -> None:
        if self._index < 0:
            return
        self.app._server.set_ws_options(self._index, self._policy, int(self._compress),
                                        int(self._connect is not None), self._origins)

    def on_connect(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        self._connect = fn
        self._apply_options()
        return fn

    def on_close(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        self._close = fn
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
            self.app._spawn(self._run(ws))
        elif kind == _gateway.WS_CLOSE:
            ws = conn.user
            if ws is not None:
                ws._on_close(*payload)
                ws._closed_event.set()
        elif kind == _gateway.WS_DRAINED:
            if conn.user is not None:
                conn.user._wake_senders()
        elif kind == _gateway.WS_HANDSHAKE:
            loop = self.app._loop
            assert loop is not None
            ws = WebSocket(conn, self, loop)
            conn.user = ws
            self.app._spawn(self._precheck(ws))

    async def _precheck(self, ws: WebSocket) -> None:
        """Runs on_connect while the client waits for the answer to its upgrade."""
        assert self._connect is not None
        try:
            outcome = await _maybe_await(self._call(self._connect, ws))
        except HTTPException as exc:
            detail = exc.detail if exc.detail is not None else ""
            ws._conn.refuse(exc.status_code, [("content-type", "text/plain; charset=utf-8")],
                            str(detail))
            return
        except Exception:
            logger.exception("on_connect for %s raised; the upgrade is refused", self.path)
            ws._conn.refuse(403, [("content-type", "text/plain; charset=utf-8")], "Forbidden")
            return
        if isinstance(outcome, Response) and outcome.status_code >= 400:
            status, headers, body = serialize(outcome)
            ws._conn.refuse(status, headers, body)
            return
        ws._greeting = outcome
        ws._conn.accept()

    async def _run(self, ws: WebSocket) -> None:
        where = f"websocket handler for {self.path}"
        try:
            greeting = ws._greeting
            if isinstance(greeting, Response):
                greeting = greeting.description
            try:
                # The client may leave right after the 101: the greeting then finds the
                # socket gone, which ends the connection like any disconnect.
                if greeting is not None and not ws.closed:
                    await ws._send(greeting if isinstance(greeting, (str, bytes))
                                   else json.dumps(greeting, separators=(",", ":")))
                if self._sync:
                    result = await _in_own_thread(self._call, self.handler, ws)
                else:
                    result = await self._call(self.handler, ws)
                if isinstance(result, (str, bytes)) and not ws.closed:
                    await ws._send(result)
            except WebSocketDisconnect:
                pass
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("%s raised", where)
                await ws.close(1011, "internal error")
                return
            await ws.close(1000, "")
        finally:
            await ws._closed_event.wait()
            if self._close is not None:
                try:
                    await _maybe_await(self._call(self._close, ws))
                except Exception:
                    logger.exception("on_close for %s raised", self.path)

    def _call(self, fn: Callable[..., Any], ws: WebSocket) -> Any:
        # Whether fn takes the socket is looked up once per function, not per connection.
        takes = self._takes.get(fn)
        if takes is None:
            takes = self._takes[fn] = bool(inspect.signature(fn).parameters)
        return fn(ws) if takes else fn()
