"""The app tests/python/test_processes_*.py run with --processes N (ROBYN_PROCESSES).

Routes:
  GET  /                    "Hello, world!"
  GET  /pid                 this worker's pid and slot: {"pid": ..., "slot": ...}
  GET  /slow                sleeps 0.5 s, then answers "slow done" (a request in flight)
  GET  /subscribers/:topic  {"here": app.subscribers(topic), "everywhere": ...(everywhere=True),
                            "pid": os.getpid()}
  POST /publish/:topic      app.publish(topic, body) -> {"reached": n, "pid": ...}
  WS   /room/:name          subscribes to the room; greets "hello <pid>"; each message is
                            published to the room as "<pid>:<message>"

$PROCS_EVENTS (when set): every startup, shutdown and on_close appends "<event> <pid>" to
that file. $PROCS_CRASH_AFTER (seconds, when set): a worker exits with status 3 that long
after it starts serving (a crash loop). $PROCS_FAIL_STARTUP (when set): the startup
handler raises. $PROCS_METRICS (when set): app.enable_metrics() serves GET /metrics.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time

from robyn import Request, Robyn, WebSocket
from robyn import processes

app = Robyn(__file__)

EVENTS = os.environ.get("PROCS_EVENTS")
CRASH_AFTER = os.environ.get("PROCS_CRASH_AFTER")
_lock = threading.Lock()


def note(event: str) -> None:
    if EVENTS:
        with _lock, open(EVENTS, "a", encoding="utf-8") as f:
            f.write(f"{event} {os.getpid()}\n")


def crash_later() -> None:
    time.sleep(float(CRASH_AFTER or 0))
    os._exit(3)


@app.startup_handler
def started() -> None:
    note("startup")
    if os.environ.get("PROCS_FAIL_STARTUP"):
        raise RuntimeError("startup failed on purpose")
    if CRASH_AFTER:
        threading.Thread(target=crash_later, daemon=True).start()


@app.shutdown_handler
def stopped() -> None:
    note("shutdown")


@app.get("/")
def index():
    return "Hello, world!"


@app.get("/pid")
def pid():
    info = processes.worker()
    return json.dumps({"pid": os.getpid(), "slot": info.slot if info else None})


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
        websocket.publish(name, f"{os.getpid()}:{text}")


@room.on_close
def room_closed(websocket: WebSocket) -> None:
    note("close")


if os.environ.get("PROCS_METRICS"):
    app.enable_metrics()

if __name__ == "__main__":
    app.start()
