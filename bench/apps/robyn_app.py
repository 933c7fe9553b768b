"""The benchmark app, written against Robyn's API.

The same file runs unchanged on Robyn 0.88 (from PyPI) and on this project:

    ROBYN_PORT=8080 python bench/apps/robyn_app.py --processes 1 --workers 1

Routes (the same on every peer app in bench/apps/):

    GET  /                 sync handler, text/plain "Hello, world!"
    GET  /json             async handler, JSON {"message": "Hello, world!"}
    GET  /user/:id?q=...   path parameter plus query parameter, text/plain "<id> <q>"
    POST /echo             echoes the request body (the bench sends 10 KB)
    GET  /const            const=True route, "Hello, world!"
    GET  /mw               sync handler behind one before hook (sets a request header the
                           handler reads) and one after hook (sets a response header)
    WS   /ws               echo: every text message is sent back as it came
    WS   /ws/pubsub?topic=T[&role=pub]
                           pub/sub: the connection subscribes to T on connect
                           (unless role=pub); every message it sends is
                           published to T, so every subscriber of T gets it,
                           the sender included when it is subscribed.
    WS   /ws/zpubsub?...   the same with permessage-deflate (compression=True), on
                           this project only (bench/deflate): a client that offers it
                           gets every message of 256 bytes or more compressed.

Where the two APIs differ, the app detects the feature and says so below:

- `async for message in websocket` is this project's way (DESIGN.md); Robyn 0.88's
  WebSocketAdapter has no __aiter__, so there the loop is `await receive_text()`.
- Topics: Robyn 0.88 has no topics, only `websocket.broadcast()` to every
  connection of the endpoint. With one topic per run (as the bench does) that
  is the same delivery. This project's pub/sub is used when the WebSocket
  object offers `subscribe` (and `publish`, on the socket or on the app).
"""

from __future__ import annotations

import inspect
import os
import sys

from robyn import Robyn

app = Robyn(__file__)

HELLO = "Hello, world!"


@app.get("/")
def plaintext():
    return HELLO


@app.get("/json")
async def json_handler():
    return {"message": HELLO}


@app.get("/user/:id")
def user(request):
    q = request.query_params.get("q", "")
    return f"{request.path_params['id']} {q}"


@app.post("/echo")
def echo(request):
    return request.body


@app.get("/const", const=True)
def const():
    return HELLO


def mark_request(request):
    request.headers.set("x-before", "1")
    return request


def mark_response(response):
    response.headers.set("x-after", "1")
    return response


def behind_middleware(request):
    # Both peers must really run the before hook for this route, or the bench's body check fails.
    return HELLO if request.headers.get("x-before") == "1" else "before hook did not run"


# Builds of this project from before Robyn's middleware API (bench/ab's older commits) serve
# every route but this one.
if hasattr(app, "before_request"):
    app.before_request("/mw")(mark_request)
    app.after_request("/mw")(mark_response)
    app.get("/mw")(behind_middleware)


def _has_async_iter(ws) -> bool:
    return hasattr(type(ws), "__aiter__")


async def ws_echo(websocket):
    if _has_async_iter(websocket):
        async for message in websocket:
            await websocket.send_text(message)
    else:  # Robyn 0.88
        while True:
            message = await websocket.receive_text()
            await websocket.send_text(message)


def _query(websocket, name: str, default: str) -> str:
    qp = getattr(websocket, "query_params", None)
    if qp is None:
        return default
    try:
        value = qp.get(name, default)
    except TypeError:
        value = qp.get(name)
    if value is None:
        return default
    if isinstance(value, list):
        return value[0] if value else default
    return str(value)


async def ws_pubsub(websocket):
    topic = _query(websocket, "topic", "bench")
    role = _query(websocket, "role", "sub")
    subscribe = getattr(websocket, "subscribe", None)
    if subscribe is not None:
        # This project: real topics.
        if role != "pub":
            res = subscribe(topic)
            if hasattr(res, "__await__"):
                await res
        # app.publish reaches every subscriber, the sender included (as on every peer);
        # websocket.publish would skip the sender.
        publish = getattr(app, "publish", None) or websocket.publish

        async def send(message):
            res = publish(topic, message)
            if hasattr(res, "__await__"):
                await res

    else:
        # Robyn 0.88: broadcast to every connection of this endpoint.
        async def send(message):
            await websocket.broadcast(message)

    if _has_async_iter(websocket):
        async for message in websocket:
            await send(message)
    else:
        while True:
            message = await websocket.receive_text()
            await send(message)


async def ws_pubsub_topics(websocket):
    """/ws/pubsub on this project: the same delivery as ws_pubsub, written as an app for
    this project writes it (docs/websocket.md). An idle connection's handler holds its
    coroutine and the topic string, and nothing of the feature detection ws_pubsub needs to
    run on Robyn 0.88 too (a closure, two bound methods and the cells they close over: about
    470 bytes per connection, docs/benchmarks.md "idle")."""
    topic = _query(websocket, "topic", "bench")
    if _query(websocket, "role", "sub") != "pub":
        websocket.subscribe(topic)
    # app.publish reaches every subscriber, the sender included (as on every peer).
    async for message in websocket:
        app.publish(topic, message)


# bench/run's idle workload, in its attribution round, asks where the memory went: GET
# /memory answers the bytes Python's allocator holds (tracemalloc, started here) and, when
# bench/build/memsplit.so is preloaded, the bytes malloc'd by this project's C, by
# libwebsockets and by zlib (bench/memsplit.c). Only with ROBYN_BENCH_MEMORY=1.
if os.environ.get("ROBYN_BENCH_MEMORY") == "1":
    import ctypes
    import tracemalloc

    tracemalloc.start()
    _memsplit = getattr(ctypes.CDLL(None), "memsplit_bytes", None)
    if _memsplit is not None:
        _memsplit.restype = ctypes.c_long
        ctypes.CDLL(None).memsplit_rescan()

    # With ROBYN_BENCH_MEMORY_DUMP=DIR, each GET /memory also leaves DIR/N.tracemalloc (a
    # tracemalloc snapshot) and DIR/N.sites (memsplit's live blocks by call site), N counting
    # the calls from 0: bench/memsites compares two of them.
    _dump_dir = os.environ.get("ROBYN_BENCH_MEMORY_DUMP")
    _dumps = [0]
    if _dump_dir:
        tracemalloc.stop()
        tracemalloc.start(8)

    @app.get("/memory")
    def memory():
        import json

        out = {"python": tracemalloc.get_traced_memory()[0]}
        if _memsplit is not None:
            out.update(c_gateway=_memsplit(0), c_lws=_memsplit(1), c_zlib=_memsplit(2))
        if _dump_dir:
            n = _dumps[0]
            _dumps[0] += 1
            tracemalloc.take_snapshot().dump(os.path.join(_dump_dir, f"{n}.tracemalloc"))
            sites = getattr(ctypes.CDLL(None), "memsplit_sites", None)
            if sites is not None:
                sites(os.path.join(_dump_dir, f"{n}.sites").encode())
        return json.dumps(out)


# A build of this project without WebSockets yet still serves the HTTP routes.
if hasattr(app, "websocket"):
    app.websocket("/ws")(ws_echo)
    # This project has topics (app.publish); Robyn 0.88 broadcasts to the endpoint instead.
    # ROBYN_BENCH_PORTABLE_PUBSUB=1 runs the portable handler here too (what it costs:
    # docs/benchmarks.md, "idle").
    portable = os.environ.get("ROBYN_BENCH_PORTABLE_PUBSUB") == "1"
    pubsub = ws_pubsub_topics if hasattr(app, "publish") and not portable else ws_pubsub
    app.websocket("/ws/pubsub")(pubsub)
    # Builds that compress what they send (and Robyn 0.88, which has no such keyword, not).
    if "compression_threshold" in inspect.signature(app.websocket).parameters:
        app.websocket("/ws/zpubsub", compression=True)(pubsub)

# What counting costs (docs/realtime.md): `bench/ab HEAD --current-env ROBYN_BENCH_METRICS=1`.
if os.environ.get("ROBYN_BENCH_METRICS") and hasattr(app, "enable_metrics"):
    app.enable_metrics("/metrics")


if __name__ == "__main__":
    host = os.environ.get("ROBYN_HOST", "127.0.0.1")
    port = int(os.environ.get("ROBYN_PORT", "8080"))
    for i, arg in enumerate(sys.argv):
        if arg == "--port" and i + 1 < len(sys.argv):
            port = int(sys.argv[i + 1])
    app.start(host=host, port=port)
