"""Presence with --processes N (ROBYN_PROCESSES), for test_realtime_processes.py.

Topics "*" have presence with join/leave events.

Routes:
  GET  /pid                  this worker's pid and slot: {"pid": ..., "slot": ...}
  GET  /subscribers/:topic   {"here": app.presence_count(topic), "everywhere":
                             app.presence_count(topic, everywhere=True), "members": the
                             infos of app.presence(topic), "pid": os.getpid()}
  WS   /room/:name           subscribes with info {"pid": <this worker's pid>}; greets
                             "hello <pid>"; then passes on what the room is sent
"""

from __future__ import annotations

import json
import os

from robyn import Request, Robyn, WebSocket
from robyn import processes

app = Robyn(__file__)
app.topic("*", presence=True, presence_events=True)


@app.get("/")
def index() -> str:
    return "Hello, world!"


@app.get("/pid")
def pid() -> str:
    info = processes.worker()
    return json.dumps({"pid": os.getpid(), "slot": info.slot if info else None})


@app.get("/subscribers/:topic")
def subscribers(request: Request) -> str:
    topic = request.path_params["topic"]
    return json.dumps({"here": app.presence_count(topic),
                       "everywhere": app.presence_count(topic, everywhere=True),
                       "members": [m.info for m in app.presence(topic)],
                       "pid": os.getpid()})


@app.websocket("/room/:name")
async def room(websocket: WebSocket) -> None:
    await websocket.send_text(f"hello {os.getpid()}")
    websocket.subscribe(websocket.path_params["name"], info={"pid": os.getpid()})
    async for _ in websocket:
        pass


if __name__ == "__main__":
    app.start()
