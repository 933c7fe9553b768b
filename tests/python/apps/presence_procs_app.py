"""Presence and history with --processes N (ROBYN_PROCESSES), for test_realtime_processes.py.

Topics "feed:*" keep 100 messages; every other topic ("*") has presence with join/leave
events.

Routes:
  GET  /pid                  this worker's pid and slot: {"pid": ..., "slot": ...}
  GET  /subscribers/:topic   {"here": app.presence_count(topic, everywhere=False), "everywhere":
                             app.presence_count(topic, everywhere=True), "members": the
                             infos of app.presence(topic), "pid": os.getpid()}
  WS   /room/:name           subscribes with info {"pid": <this worker's pid>}; greets
                             "hello <pid>"; then passes on what the room is sent
  POST /publish/:topic       app.publish(topic, body) -> {"reached", "epoch", "offset", "pid"}
  WS   /live/:topic?epoch=&offset=   greets "hello <pid>"; subscribe(topic, since=(epoch,
                             offset)) (without epoch: last=0); then {"type": "recovered",
                             "replayed", "epoch", "offset"} or {"type": "gone", "epoch",
                             "offset"} (and it joins from there)
"""

from __future__ import annotations

import json
import os

from robyn import Request, Robyn, WebSocket
from robyn import processes
from robyn.realtime import HistoryGone

app = Robyn(__file__)
app.topic("feed:*", history=100)
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
    return json.dumps({"here": app.presence_count(topic, everywhere=False),
                       "everywhere": app.presence_count(topic, everywhere=True),
                       "members": [m.info for m in app.presence(topic)],
                       "pid": os.getpid()})


@app.websocket("/room/:name")
async def room(websocket: WebSocket) -> None:
    await websocket.send_text(f"hello {os.getpid()}")
    websocket.subscribe(websocket.path_params["name"], info={"pid": os.getpid()})
    async for _ in websocket:
        pass


@app.post("/publish/:topic")
def publish(request: Request) -> str:
    sent = app.publish(request.path_params["topic"], request.body)
    return json.dumps({"reached": int(sent), "epoch": sent.epoch, "offset": sent.offset,
                       "pid": os.getpid()})


@app.websocket("/live/:topic")
async def live(websocket: WebSocket) -> None:
    await websocket.send_text(f"hello {os.getpid()}")
    topic = websocket.path_params["topic"]
    epoch = websocket.query_params.get("epoch", None)
    try:
        if epoch is None:
            got = websocket.subscribe(topic, last=0)
        else:
            got = websocket.subscribe(topic, since=(epoch, int(websocket.query_params.get("offset", "0"))))
        await websocket.send_json({"type": "recovered", "replayed": got.replayed,
                                   "epoch": got.epoch, "offset": got.offset})
    except HistoryGone as gone:
        await websocket.send_json({"type": "gone", "epoch": gone.epoch, "offset": gone.offset})
        websocket.subscribe(topic, since=(gone.epoch, gone.offset))
    async for _ in websocket:
        pass


if __name__ == "__main__":
    app.start()
