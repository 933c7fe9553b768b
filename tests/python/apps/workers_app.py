"""The app tests/python/test_workers*.py run with --workers M (ROBYN_WORKERS), alone or
under --processes N.

Routes:
  GET  /                    "Hello, world!" (a const route: answered by the I/O shard alone)
  GET  /hello               "hello from Python" (a sync handler)
  GET  /async               "async hello" (an async handler)
  GET  /pid                 {"pid": ..., "slot": this worker's slot under --processes, or null}
  GET  /shards              {"pid": ..., "shards": app's per-shard figures (shard_stats)}
  GET  /stats               app.websocket_stats()
  GET  /slow                sleeps 0.5 s, then answers "slow done" (a request in flight)
  GET  /subscribers/:topic  {"here": app.subscribers(topic), "everywhere": ...(everywhere=True),
                            "pid": ...}
  POST /publish/:topic      app.publish(topic, body) -> {"reached": n, "pid": ...}
  GET  /static/<file>       files of $WORKERS_STATIC (when set), served by the I/O shards
  WS   /room/:name          subscribes to the room; greets "hello <pid>"; each message is
                            published to the room (the sender left out) as "<pid>:<message>",
                            and the sender is told "sent <reached>"; "broadcast <text>" goes to
                            every client of the endpoint, the sender included, as "<pid>:<text>"
                            (websocket.broadcast), and the sender is told "broadcast <reached>"

$WORKERS_EVENTS (when set): every on_close appends "close <pid>" to that file.
$WORKERS_METRICS (when set): app.enable_metrics() serves GET /metrics.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading

from robyn import Request, Robyn, WebSocket
from robyn import processes

app = Robyn(__file__)

EVENTS = os.environ.get("WORKERS_EVENTS")
_lock = threading.Lock()


@app.get("/", const=True)
def index():
    return "Hello, world!"


@app.get("/hello")
def hello():
    return "hello from Python"


@app.get("/async")
async def async_hello():
    return "async hello"


@app.get("/pid")
def pid():
    info = processes.worker()
    return json.dumps({"pid": os.getpid(), "slot": info.slot if info else None})


@app.get("/shards")
def shards():
    return json.dumps({"pid": os.getpid(), "shards": app._server.shard_stats()})


@app.get("/stats")
def stats():
    return json.dumps(app.websocket_stats())


@app.get("/slow")
async def slow():
    await asyncio.sleep(0.5)
    return "slow done"


@app.get("/subscribers/:topic")
def subscribers(request: Request):
    topic = request.path_params["topic"]
    return json.dumps({"here": app.subscribers(topic),
                       "everywhere": app.subscribers(topic, everywhere=True),
                       "pid": os.getpid()})


@app.post("/publish/:topic")
def publish(request: Request):
    reached = app.publish(request.path_params["topic"], request.body)
    return json.dumps({"reached": reached, "pid": os.getpid()})


@app.websocket("/room/:name")
async def room(websocket: WebSocket) -> None:
    name = websocket.path_params["name"]
    websocket.subscribe(name)
    await websocket.send_text(f"hello {os.getpid()}")
    async for message in websocket:
        text = message if isinstance(message, str) else message.decode()
        if text.startswith("broadcast "):
            reached = websocket.broadcast(f"{os.getpid()}:{text[10:]}")
            await websocket.send_text(f"broadcast {reached}")
            continue
        reached = websocket.publish(name, f"{os.getpid()}:{text}")
        await websocket.send_text(f"sent {reached}")


@room.on_close
def room_closed(websocket: WebSocket) -> None:
    if EVENTS:
        with _lock, open(EVENTS, "a", encoding="utf-8") as f:
            f.write(f"close {os.getpid()}\n")


if os.environ.get("WORKERS_STATIC"):
    app.serve_directory("/static", os.environ["WORKERS_STATIC"])
if os.environ.get("WORKERS_METRICS"):
    app.enable_metrics()

if __name__ == "__main__":
    app.start()
