"""Presence across processes and nodes, for test_presence_processes.py and
test_presence_redis.py: run with ROBYN_PROCESSES=N (the siblings bus) or ROBYN_PUBSUB_URL
(the Redis bus), or both. Every topic has presence with join/leave events.

Routes:
  GET  /                     "Hello, world!"
  GET  /pid                  {"pid": ..., "slot": ... (None outside --processes)}
  GET  /presence/:topic      {"pid", "slot", "everywhere": app.presence(topic) as
                             [{"id", "info"}], "here": the ids of app.presence(topic,
                             everywhere=False), "count": app.presence_count(topic,
                             everywhere=True), "count_here": app.presence_count(topic,
                             everywhere=False),
                             "stats": the presence table's counters}
  GET  /shards               {"pid", "shards": app's per-shard figures (shard_stats), one per
                             I/O shard of --workers M}
  GET  /bad/:case            what a bad argument raises: {"error": type, "message": str}
  WS   /room/:name?user=u    greets "hello <pid> <connection id>", subscribes to the room
                             with info {"pid": <pid>, "user": u}; the room's messages (the
                             join/leave events among them) reach the client as published
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


@app.get("/presence/:topic")
def presence(request: Request) -> str:
    topic = request.path_params["topic"]
    info = processes.worker()
    return json.dumps({
        "pid": os.getpid(),
        "slot": info.slot if info else None,
        "everywhere": [{"id": m.id, "info": m.info} for m in app.presence(topic)],
        "here": [m.id for m in app.presence(topic, everywhere=False)],
        "count": app.presence_count(topic, everywhere=True),
        "count_here": app.presence_count(topic, everywhere=False),
        "stats": app._server.presence_stats(),
    })


@app.get("/shards")
def shards() -> str:
    return json.dumps({"pid": os.getpid(), "shards": app._server.shard_stats()})


@app.get("/bad/:case")
def bad(request: Request) -> str:
    case = request.path_params["case"]
    try:
        if case == "everywhere":
            app.presence("hall", everywhere="yes")  # type: ignore[arg-type]
        elif case == "count-everywhere":
            app.presence_count("hall", everywhere=1)  # type: ignore[arg-type]
        elif case == "no-presence":
            app.presence("\x01internal")
    except Exception as exc:  # the test checks the exact type and message
        return json.dumps({"error": type(exc).__name__, "message": str(exc)})
    return json.dumps({"error": None})


@app.websocket("/room/:name")
async def room(websocket: WebSocket) -> None:
    await websocket.send_text(f"hello {os.getpid()} {websocket.id}")
    user = websocket.query_params.get("user", "")
    info: dict[str, object] = {"pid": os.getpid(), "user": user}
    if user == "big":
        info["pad"] = "x" * (16 * 1024)
    try:
        websocket.subscribe(websocket.path_params["name"], info=info)
    except ValueError as exc:
        await websocket.send_text(f"refused {exc}")
    async for _ in websocket:
        pass


if __name__ == "__main__":
    app.start()
