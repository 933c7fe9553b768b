"""The Redis bus with --workers M (ROBYN_PUBSUB_URL and ROBYN_WORKERS), for
tests/python/test_redis_workers.py. Each connection says which I/O shard holds it: its C
connection id modulo M (ids go up by M from the shard's index, docs/architecture.md).

Topics:
  feed:*    history 5000 (kept in Redis)

Routes:
  GET  /                      "Hello, world!" (const: answered by the I/O shard alone)
  GET  /stats                 app.websocket_stats()
  GET  /shards                {"pid", "shards": app's per-shard figures (shard_stats)}
  POST /publish/:topic        app.publish(topic, body) -> {"reached": n}
  POST /pump/:topic?n=N&rate=R  app.publish(topic, {"i": 1..N}) at R messages/s from the
                              loop; answers at once; GET /pump-done counts the pumps ended (pump.py)
  WS   /room/:name            greets "hello <pid> <shard>", subscribes to the room; each
                              message -> websocket.publish(name, message) (the sender left
                              out), then the sender is told "sent <reached>"
  WS   /live/:topic?epoch=&offset=&last=&wait=   sends {"type": "hello", "shard"} first,
                              (with wait=1, then waits for one message from the client),
                              then subscribe(topic, since=(epoch, offset)) or last=N, then
                              {"type": "recovered", "replayed", "epoch", "offset"}
"""

from __future__ import annotations

import json
import os
from typing import Any

from robyn import Request, Response, Robyn, WebSocket
from robyn import processes

from pump import add_pump_routes

app = Robyn(__file__)
app.topic("feed:*", history=5000)



def shard_of(websocket: WebSocket) -> int:
    return int(websocket._conn.id) % processes.io_threads(app)


def answer(status: int, value: Any) -> Response:
    return Response(status, {"Content-Type": "application/json"}, json.dumps(value))


@app.get("/", const=True)
def index() -> str:
    return "Hello, world!"


@app.get("/stats")
def stats() -> Any:
    return app.websocket_stats()


@app.get("/shards")
def shards() -> Response:
    return answer(200, {"pid": os.getpid(), "shards": app._server.shard_stats()})


@app.post("/publish/:topic")
def publish(request: Request) -> Response:
    body = request.body if isinstance(request.body, str) else request.body.decode()
    return answer(200, {"reached": int(app.publish(request.path_params["topic"], body))})


pumps = add_pump_routes(app)


@app.websocket("/room/:name")
async def room(websocket: WebSocket) -> None:
    name = websocket.path_params["name"]
    websocket.subscribe(name)
    await websocket.send_text(f"hello {os.getpid()} {shard_of(websocket)}")
    async for message in websocket:
        reached = websocket.publish(name, message)
        await websocket.send_text(f"sent {reached}")


@app.websocket("/live/:topic")
async def live(websocket: WebSocket) -> None:
    topic = websocket.path_params["topic"]
    await websocket.send_json({"type": "hello", "shard": shard_of(websocket)})
    query = websocket.query_params
    if query.get("wait", None) == "1":
        await websocket.receive_text()  # the client's go: it is on the shard it wanted
    last = query.get("last", None)
    epoch = query.get("epoch", None)
    since = (epoch, int(query.get("offset", "0"))) if epoch is not None else None
    got = websocket.subscribe(topic, since=since, last=None if last is None else int(last))
    await websocket.send_json({"type": "recovered", "replayed": got.replayed,
                               "epoch": got.epoch, "offset": got.offset})
    async for _ in websocket:
        pass


if __name__ == "__main__":
    app.start()
