"""Topics with history kept in Redis (ROBYN_PUBSUB_URL), for tests/python/test_redis_history.py.

Topics:
  feed:*    history 5000            short:*   history 5
  ttl:*     history 100, ttl 0.5 s

Routes:
  GET  /                          "ok"
  GET  /stats                     app.websocket_stats()
  POST /publish/:topic            app.publish(topic, body) -> {"reached", "epoch", "offset"};
                                  a body starting with "{" is published as that JSON value
  POST /pump/:topic?n=N&rate=R    publishes {"i": 1..N} at R messages/s from the loop;
                                  answers at once; GET /pump-done counts the pumps that ended (pump.py)
  GET  /history/:topic?epoch=&offset=&limit=   app.history() as {"messages": [[epoch, offset,
                                  data], ...]}, 410 {"gone": true, "epoch", "offset"} when gone,
                                  503 {"error"} when Redis cannot answer
  WS   /live/:topic?epoch=&offset=&last=   subscribe(topic, since=(epoch, offset)) or
                                  subscribe(topic, last=N); sends {"type": "recovered",
                                  "replayed", "epoch", "offset"}, or {"type": "gone", "epoch",
                                  "offset"} and joins from there, or {"type": "unavailable",
                                  "error"} (HistoryUnavailable) and closes with 1013
  WS   /say/:topic                each message -> websocket.publish(topic, message): the error
  WS   /pid-live/:topic?epoch=&offset=   subscribe(topic, since=(epoch, offset)), then sends
                                  {"type": "recovered", "replayed", "pid"} (this worker's pid)
"""

from __future__ import annotations

import json
import os
from typing import Any

from robyn import Request, Response, Robyn, WebSocket
from robyn.realtime import HistoryGone, HistoryUnavailable

from pump import add_pump_routes

app = Robyn(__file__)
app.topic("feed:*", history=5000)
app.topic("short:*", history=5)
app.topic("ttl:*", history=100, ttl=0.5)



def answer(status: int, value: Any) -> Response:
    return Response(status, {"Content-Type": "application/json"}, json.dumps(value))


@app.get("/")
def index() -> str:
    return "ok"


@app.get("/stats")
def stats() -> Any:
    return app.websocket_stats()


@app.post("/publish/:topic")
def publish(request: Request) -> Response:
    body = request.body if isinstance(request.body, str) else request.body.decode()
    message: Any = json.loads(body) if body.startswith("{") else body
    published = app.publish(request.path_params["topic"], message)
    return answer(200, {"reached": int(published), "epoch": published.epoch,
                        "offset": published.offset})


pumps = add_pump_routes(app)


def position(request: Request) -> tuple[str, int] | None:
    epoch = request.query_params.get("epoch", None)
    if epoch is None:
        return None
    return (epoch, int(request.query_params.get("offset", "0")))


@app.get("/history/:topic")
def history(request: Request) -> Response:
    limit = request.query_params.get("limit", None)
    try:
        messages = app.history(request.path_params["topic"], since=position(request),
                               limit=None if limit is None else int(limit))
    except HistoryGone as gone:
        return answer(410, {"gone": True, "epoch": gone.epoch, "offset": gone.offset})
    except HistoryUnavailable as exc:
        return answer(503, {"error": f"{type(exc).__name__}: {exc}"})
    return answer(200, {"messages": [[m.epoch, m.offset, m.data] for m in messages]})


@app.websocket("/live/:topic")
async def live(websocket: WebSocket) -> None:
    topic = websocket.path_params["topic"]
    last = websocket.query_params.get("last", None)
    try:
        since = None if last is not None else position(websocket.request)
        got = websocket.subscribe(topic, since=since, last=None if last is None else int(last))
        await websocket.send_json({"type": "recovered", "replayed": got.replayed,
                                   "epoch": got.epoch, "offset": got.offset})
    except HistoryGone as gone:
        await websocket.send_json({"type": "gone", "epoch": gone.epoch, "offset": gone.offset})
        websocket.subscribe(topic, since=(gone.epoch, gone.offset))
    except HistoryUnavailable as exc:
        await websocket.send_json({"type": "unavailable", "error": f"{type(exc).__name__}: {exc}"})
        await websocket.close(1013, "history unavailable")
        return
    async for _ in websocket:
        pass


@app.websocket("/say/:topic")
async def say(websocket: WebSocket) -> None:
    topic = websocket.path_params["topic"]
    async for message in websocket:
        try:
            websocket.publish(topic, message)
        except ValueError as exc:
            await websocket.send_json({"error": f"{type(exc).__name__}: {exc}"})


@app.websocket("/pid-live/:topic")
async def pid_live(websocket: WebSocket) -> None:
    got = websocket.subscribe(websocket.path_params["topic"], since=position(websocket.request))
    await websocket.send_json({"type": "recovered", "replayed": got.replayed, "pid": os.getpid()})
    async for _ in websocket:
        pass


if __name__ == "__main__":
    app.start()
