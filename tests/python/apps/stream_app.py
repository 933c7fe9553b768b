"""Streaming responses for tests/python/test_http_streaming.py.

The generators record what happened to them under a key the test picks (how often each was
pulled, whether its `finally:` ran), and `GET /state/:key` tells it. `GET /gate/:key/open`
lets a gated generator go on to its next chunk, so that a test can see a chunk arrive
before the next one is made. Every wait here is bounded, so that a broken server cannot
leave a worker thread behind forever.
"""

import asyncio
import threading
import time

from robyn import Headers, Robyn, SSEMessage, SSEResponse, StreamingResponse

app = Robyn(__file__)

CHUNK = 64 * 1024
FLOOD_CHUNKS = 4096  # 256 MiB in all: far more than any socket buffer and backlog hold
TICKS = 1500  # endless streams end by themselves after about 30 s
GATE_TIMEOUT = 10.0

pulls: dict[str, int] = {}
closed: dict[str, bool] = {}
gates: dict[str, threading.Event] = {}
lock = threading.Lock()


def gate(key: str) -> threading.Event:
    with lock:
        return gates.setdefault(key, threading.Event())


def pulled(key: str) -> None:
    with lock:
        pulls[key] = pulls.get(key, 0) + 1


def finished(key: str) -> None:
    closed[key] = True
    print(f"stream {key} closed", flush=True)


@app.get("/")
def index():
    return "Hello, world!"


@app.get("/state/:key")
def state(key: str):
    return {"pulls": pulls.get(key, 0), "closed": closed.get(key, False)}


@app.get("/gate/:key/open")
def open_gate(key: str):
    gate(key).set()
    return "open"


# ---- as Robyn's own integration tests use them (integration_tests/base_routes.py) ----------


@app.get("/sse/basic")
def sse_basic():
    def events():
        for i in range(3):
            yield f"data: Test message {i}\n\n"

    return SSEResponse(events())


@app.get("/sse/formatted")
def sse_formatted():
    def events():
        for i in range(3):
            yield SSEMessage(f"Formatted message {i}", event="test", id=str(i))

    return SSEResponse(events())


@app.get("/sse/async")
async def sse_async():
    async def events():
        for i in range(3):
            await asyncio.sleep(0.01)
            yield SSEMessage(f"Async message {i}", event="async", id=str(i))

    return SSEResponse(events())


@app.get("/sse/empty")
def sse_empty():
    def events():
        return
        yield

    return SSEResponse(events())


@app.get("/sse/with_headers")
def sse_with_headers():
    def events():
        yield "data: Message with custom headers\n\n"

    return SSEResponse(events(), headers=Headers({"X-Custom-Header": "custom-value"}))


@app.get("/sse/status_code")
def sse_status_code():
    def events():
        yield "data: Message with custom status\n\n"

    return SSEResponse(events(), status_code=201)


@app.get("/stream/bytes")
def stream_bytes():
    def gen():
        for i in range(3):
            yield bytes([i]) * 4

    return StreamingResponse(gen(), media_type="application/octet-stream",
                             headers=Headers({"Content-Type": "application/octet-stream"}))


@app.get("/stream/bytes_async")
async def stream_bytes_async():
    async def gen():
        for i in range(3):
            await asyncio.sleep(0)
            yield bytes([i]) * 4

    return StreamingResponse(gen(), media_type="application/octet-stream",
                             headers=Headers({"Content-Type": "application/octet-stream"}))


# ---- the threads generators run on ------------------------------------------------------------


@app.get("/stream/sync_from_async")
async def sync_from_async():
    def gen():
        yield "made on "
        yield threading.current_thread().name

    return StreamingResponse(gen(), media_type="text/plain")


@app.get("/stream/async_from_sync")
def async_from_sync():
    async def gen():
        await asyncio.sleep(0)
        yield "made on "
        yield threading.current_thread().name

    return StreamingResponse(gen(), media_type="text/plain")


# ---- timing, disconnects, backpressure, errors ----------------------------------------------


@app.get("/gated/sync/:key")
def gated_sync(key: str):
    def gen():
        try:
            yield "first"
            gate(key).wait(GATE_TIMEOUT)
            yield "second"
        finally:
            finished(key)

    return StreamingResponse(gen(), media_type="text/plain")


@app.get("/gated/async/:key")
async def gated_async(key: str):
    async def gen():
        try:
            yield "first"
            deadline = time.monotonic() + GATE_TIMEOUT
            while not gate(key).is_set() and time.monotonic() < deadline:
                await asyncio.sleep(0.005)
            yield "second"
        finally:
            finished(key)

    return StreamingResponse(gen(), media_type="text/plain")


@app.get("/endless/sync/:key")
def endless_sync(key: str):
    def gen():
        try:
            for i in range(TICKS):
                pulled(key)
                yield SSEMessage(f"tick {i}")
                time.sleep(0.02)
        finally:
            finished(key)

    return SSEResponse(gen())


@app.get("/endless/async/:key")
async def endless_async(key: str):
    async def gen():
        try:
            for i in range(TICKS):
                pulled(key)
                yield SSEMessage(f"tick {i}")
                await asyncio.sleep(0.02)
        finally:
            finished(key)

    return SSEResponse(gen())


@app.get("/flood/sync/:key")
def flood_sync(key: str):
    block = b"x" * CHUNK

    def gen():
        try:
            for _ in range(FLOOD_CHUNKS):
                pulled(key)
                yield block
        finally:
            finished(key)

    return StreamingResponse(gen(), media_type="application/octet-stream")


@app.get("/flood/async/:key")
async def flood_async(key: str):
    block = b"x" * CHUNK

    async def gen():
        try:
            for _ in range(FLOOD_CHUNKS):
                pulled(key)
                yield block
        finally:
            finished(key)

    return StreamingResponse(gen(), media_type="application/octet-stream")


@app.get("/broken/sync")
def broken_sync():
    def gen():
        yield "a"
        raise RuntimeError("boom mid-stream (sync)")

    return StreamingResponse(gen(), media_type="text/plain")


@app.get("/broken/async")
async def broken_async():
    async def gen():
        yield "a"
        raise RuntimeError("boom mid-stream (async)")

    return StreamingResponse(gen(), media_type="text/plain")


@app.get("/not_a_chunk")
def not_a_chunk():
    def gen():
        yield "a"
        yield 42
        yield "never"

    return StreamingResponse(gen(), media_type="text/plain")


@app.get("/stream/bad_header")
def stream_bad_header():
    def gen():
        yield "never sent"

    return SSEResponse(gen(), headers=Headers({"X-Bad": "a\r\nSet-Cookie: injected=1"}))


@app.get("/stream/bad_header_async")
async def stream_bad_header_async():
    async def gen():
        yield "never sent"

    return SSEResponse(gen(), headers=Headers({"X-Bad": "a\x00b"}))


if __name__ == "__main__":
    app.start(host="127.0.0.1", port=8080)
