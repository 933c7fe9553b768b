"""A live dashboard: the server samples this machine and itself ten times a second and
publishes each sample to every page watching; a page draws the last minute on canvases.

    python examples/dashboard/app.py       # then open http://127.0.0.1:8080/
    make run APP=dashboard                  # the same, after installing what is missing

Routes:
  GET /, /app.js, /style.css   the page (static/), const routes served from memory by C
  GET /samples?limit=N         the samples still held, oldest first, as JSON
  WS  /live[?epoch=E&offset=N] the live feed

The samples go to the topic "dashboard", which keeps a minute of history (docs/realtime.md).
Each frame a page gets is the topic's envelope, one JSON text frame:
    {"epoch": E, "offset": N, "topic": "dashboard", "data": {"t": <ms>, "cpu": ..., ...}}
A page that opens gets the minute held at once, then every new sample. A page whose
connection dropped comes back with ?epoch=E&offset=N of the last sample it drew and gets
exactly the samples after it; when those are gone (the server restarted, or it was away
longer than a minute) it is sent {"type": "reset"} first, then the minute held.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path
from typing import Any

from robyn import Request, Response, Robyn, WebSocket
from robyn.realtime import HistoryGone

from sampler import Sampler

logger = logging.getLogger("dashboard")

app = Robyn(__file__)

STATIC = Path(__file__).resolve().parent / "static"
TOPIC = "dashboard"
RATE_HZ = 10
HISTORY = 60 * RATE_HZ    # one minute of samples

app.topic(TOPIC, history=HISTORY)


def static_file(name: str, content_type: str) -> Response:
    body = (STATIC / name).read_text(encoding="utf-8")
    return Response(200, {"Content-Type": content_type, "Cache-Control": "no-cache"}, body)


@app.get("/", const=True)
def index() -> Response:
    return static_file("index.html", "text/html; charset=utf-8")


@app.get("/app.js", const=True)
def script() -> Response:
    return static_file("app.js", "text/javascript; charset=utf-8")


@app.get("/style.css", const=True)
def style() -> Response:
    return static_file("style.css", "text/css; charset=utf-8")


@app.get("/samples")
def samples(request: Request) -> Any:
    raw = request.query_params.get("limit", None)
    limit = None
    if raw is not None:
        if not raw.isdigit() or not 0 < int(raw) <= HISTORY:
            return Response(400, {"Content-Type": "application/json"},
                            json.dumps({"error": f"limit must be a whole number from 1 to {HISTORY}"}))
        limit = int(raw)
    held = app.history(TOPIC, limit=limit)
    return {"epoch": held[-1].epoch if held else None,
            "samples": [{"offset": m.offset, **m.data} for m in held]}


def position(websocket: WebSocket) -> tuple[str, int] | None:
    """The (epoch, offset) a reconnecting page gave, or None for a first connection (or a
    position that is not one: the page then starts over, as after a reset)."""
    epoch = websocket.query_params.get("epoch", None)
    offset = websocket.query_params.get("offset", None)
    if not epoch or offset is None or not offset.isdigit():
        return None
    return epoch, int(offset)


@app.websocket("/live")
async def live(websocket: WebSocket) -> None:
    since = position(websocket)
    if since is None:
        websocket.subscribe(TOPIC, last=HISTORY)
    else:
        try:
            websocket.subscribe(TOPIC, since=since)
        except HistoryGone:
            await websocket.send_json({"type": "reset"})
            websocket.subscribe(TOPIC, last=HISTORY)
    # The page sends nothing; reading keeps the connection's close and pings handled.
    async for _ in websocket:
        pass


async def publish_samples() -> None:
    """Ten samples a second, on a clock that does not drift: a late tick is followed by an
    early one, so a minute holds 600 samples."""
    sampler = Sampler()
    loop = asyncio.get_running_loop()
    period = 1.0 / RATE_HZ
    next_at = loop.time() + period
    while True:
        await asyncio.sleep(max(0.0, next_at - loop.time()))
        next_at += period
        if loop.time() - next_at > 1.0:  # the loop was held up: skip, do not burst
            next_at = loop.time() + period
        sample = sampler.sample()
        sample["t"] = int(time.time() * 1000)
        sample["sent_us"] = time.time_ns() // 1000   # what robyn-load --stamp-field times
        sample["viewers"] = app.subscribers(TOPIC)
        app.publish(TOPIC, sample)


@app.startup_handler
async def start_sampling() -> None:
    logger.info("publishing a sample %d times a second to topic %r", RATE_HZ, TOPIC)
    task = asyncio.get_running_loop().create_task(publish_samples())
    tasks.add(task)
    task.add_done_callback(tasks.discard)


tasks: set[asyncio.Task[None]] = set()


@app.shutdown_handler
async def stop_sampling() -> None:
    for task in list(tasks):
        task.cancel()


if __name__ == "__main__":
    app.start(host="127.0.0.1", port=8080)
