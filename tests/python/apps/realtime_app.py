"""Topics with history and presence, for tests/python/test_realtime.py.

Topics:
  feed:*    history 5000            short:*   history 5
  ttl:*     history 100, ttl 0.5 s  room:*    presence, with join/leave events
  both:*    history 50 and presence (no events)

Routes:
  GET  /                          "ok"
  POST /publish/:topic            app.publish(topic, body) -> {"reached", "epoch", "offset"};
                                  a body starting with "{" is published as that JSON value
  POST /publish-bytes/:topic      app.publish(topic, the body as bytes): the error, 400
  POST /pump/:topic?n=N&rate=R[&pad=P]   publishes {"i": 1..N} (with "pad": P x's) at R
                                  messages/s from the loop; answers
                                  at once; GET /pump-done counts the pumps that ended (pump.py)
  POST /pump-threads/:topic?n=N&threads=T   T threads each publish {"t": k, "i": 1..N} at
                                  once, as fast as they go
  GET  /history/:topic?epoch=&offset=&limit=   app.history() as {"messages": [[epoch, offset,
                                  data], ...]}, 410 {"gone": true, "epoch", "offset"} when gone,
                                  400 {"error"} for a bad argument
  GET  /presence/:topic           {"count": app.presence_count(), "members": [[id, info], ...]}
  GET  /topic-after-start         app.topic() once started: 500 {"error"} with its message
  WS   /live/:topic?epoch=&offset=&last=   subscribe(topic, since=(epoch, offset)) or
                                  (last=N) subscribe(topic, last=N); sends {"type": "recovered",
                                  "replayed", "epoch", "offset"}, or {"type": "gone", "epoch",
                                  "offset"} and then joins from where the topic is; any
                                  error: {"type": "error", "error": "<Type>: <message>"}
  WS   /join/:topic?name=          subscribe(topic, info={"name": name}); "who" -> presence list
  WS   /sync-live/:topic?epoch=&offset=   a def handler: subscribe(topic, since=...), then
                                  sends {"type": "recovered", "replayed"} and reads
  WS   /twice/:topic              subscribe(topic), then subscribe(topic, last=1): the error
  WS   /say/:topic?last=N         subscribe(topic, last=N); each message -> websocket.publish(
                                  topic, message), answered {"reached", "epoch", "offset"}
"""

from __future__ import annotations

import json
import threading
from typing import Any

from robyn import Request, Response, Robyn, WebSocket
from robyn.realtime import HistoryGone

from pump import add_pump_routes

app = Robyn(__file__)
app.topic("feed:*", history=5000)
app.topic("short:*", history=5)
app.topic("ttl:*", history=100, ttl=0.5)
app.topic("room:*", presence=True, presence_events=True)
app.topic("both:*", history=50, presence=True)



def answer(status: int, value: Any) -> Response:
    return Response(status, {"Content-Type": "application/json"}, json.dumps(value))


@app.get("/")
def index() -> str:
    return "ok"


@app.post("/publish/:topic")
def publish(request: Request) -> Response:
    body = request.body if isinstance(request.body, str) else request.body.decode()
    message: Any = json.loads(body) if body.startswith("{") else body
    published = app.publish(request.path_params["topic"], message)
    return answer(200, {"reached": int(published), "epoch": published.epoch,
                        "offset": published.offset})


@app.post("/publish-bytes/:topic")
def publish_bytes(request: Request) -> Response:
    body = request.body if isinstance(request.body, bytes) else request.body.encode()
    try:
        app.publish(request.path_params["topic"], body)
    except TypeError as exc:
        return answer(400, {"error": str(exc)})
    return answer(200, {"error": None})


pumps = add_pump_routes(app)


@app.post("/pump-threads/:topic")
def start_thread_pumps(request: Request) -> Response:
    """threads=T threads each publish {"t": k, "i": 1..N} as fast as they go, at once."""
    topic = request.path_params["topic"]
    n = int(request.query_params.get("n", "1000"))
    count = int(request.query_params.get("threads", "4"))

    def run(k: int) -> None:
        for i in range(1, n + 1):
            app.publish(topic, {"t": k, "i": i})
        pumps.finished()

    for k in range(count):
        threading.Thread(target=run, args=(k,), daemon=True).start()
    return answer(200, {"started": count})




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
    except (TypeError, ValueError) as exc:
        return answer(400, {"error": f"{type(exc).__name__}: {exc}"})
    return answer(200, {"messages": [[m.epoch, m.offset, m.data] for m in messages]})


@app.get("/presence/:topic")
def presence(request: Request) -> Response:
    topic = request.path_params["topic"]
    try:
        members = app.presence(topic)
    except ValueError as exc:
        return answer(400, {"error": f"{type(exc).__name__}: {exc}"})
    return answer(200, {"count": app.presence_count(topic),
                        "members": [[m.id, m.info] for m in members]})


@app.get("/topic-after-start")
def topic_after_start() -> Response:
    try:
        app.topic("late:*", history=1)
    except RuntimeError as exc:
        return answer(500, {"error": str(exc)})
    return answer(200, {"error": None})


@app.websocket("/live/:topic")
async def live(websocket: WebSocket) -> None:
    topic = websocket.path_params["topic"]
    last = websocket.query_params.get("last", None)
    try:
        since = None if last is not None else position(websocket.request)
        try:
            got = websocket.subscribe(topic, since=since,
                                      last=None if last is None else int(last))
            await websocket.send_json({"type": "recovered", "replayed": got.replayed,
                                       "epoch": got.epoch, "offset": got.offset})
        except HistoryGone as gone:
            # Told first, so that what follows is from where the topic is now: the client
            # reloads, then goes on from there.
            await websocket.send_json({"type": "gone", "epoch": gone.epoch, "offset": gone.offset})
            websocket.subscribe(topic, since=(gone.epoch, gone.offset))
    except (TypeError, ValueError) as exc:
        await websocket.send_json({"type": "error", "error": f"{type(exc).__name__}: {exc}"})
    async for _ in websocket:
        pass


@app.websocket("/join/:topic")
async def join(websocket: WebSocket) -> None:
    topic = websocket.path_params["topic"]
    try:
        websocket.subscribe(topic, info={"name": websocket.query_params.get("name", "")})
    except (TypeError, ValueError) as exc:
        await websocket.send_json({"type": "error", "error": f"{type(exc).__name__}: {exc}"})
    async for message in websocket:
        if message == "who":
            await websocket.send_json({"type": "who", "members": [
                [m.id, m.info] for m in app.presence(topic)]})
        elif message == "leave":
            websocket.unsubscribe(topic)
            await websocket.send_json({"type": "left"})


@app.websocket("/sync-live/:topic")
def sync_live(websocket: WebSocket) -> None:
    got = websocket.subscribe(websocket.path_params["topic"], since=position(websocket.request))
    websocket.send(json.dumps({"type": "recovered", "replayed": got.replayed}))
    for _ in websocket:
        pass


@app.websocket("/twice/:topic")
async def twice(websocket: WebSocket) -> None:
    topic = websocket.path_params["topic"]
    websocket.subscribe(topic)
    try:
        websocket.subscribe(topic, last=1)
    except ValueError as exc:
        await websocket.send_json({"type": "error", "error": f"{type(exc).__name__}: {exc}"})
    async for _ in websocket:
        pass


@app.websocket("/say/:topic")
async def say(websocket: WebSocket) -> None:
    topic = websocket.path_params["topic"]
    websocket.subscribe(topic, last=int(websocket.query_params.get("last", "0")))
    async for message in websocket:
        sent = websocket.publish(topic, message)
        await websocket.send_json({"reached": int(sent), "epoch": sent.epoch, "offset": sent.offset})


if __name__ == "__main__":
    app.start()
