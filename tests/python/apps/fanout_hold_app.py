"""An app for test_ws_registry.py: a big fan-out held in its middle by the server's test hook,
and a Python thread that subscribes, publishes and counts meanwhile.

Routes:
  GET  /                       "Hello, world!" (conftest's assert_serving)
  WS   /crowd                  subscribes to "crowd", reads and drops what it is sent
  WS   /side                   subscribes to nothing; the witness thread subscribes it to "side"
  WS   /ops                    one operation per message, answered with its result:
                               "sub T", "unsub T" -> "sub T True|False" (websocket.(un)subscribe);
                               "pub T M" -> "pub T <n>" (app.publish), "wspub T M" ->
                               "wspub T <n>" (websocket.publish), "count T" -> "count T <n>"
  POST /arm/:after             arms the hold (the next fan-out to "crowd" stops the I/O thread
                               after `after` deliveries) and starts the witness thread
  POST /publish/:topic         app.publish(topic, body) -> {"reached": n}
  GET  /subscribers/:topic     {"count": app.subscribers(topic)}
  GET  /witness                what the witness thread saw, once it is done (else 409)

The witness thread waits for the I/O thread to stop at the hold, then, while it is stopped in
the middle of the fan-out, subscribes the /side connection to "side", publishes to "side" and
counts both topics; then it asks whether the I/O thread was still stopped (it was, unless a
call of the thread had to wait the 10 s the hold lasts at most) and lets it go on.
"""

from __future__ import annotations

import threading
from typing import Any

from robyn import Request, Response, Robyn, WebSocket

app = Robyn(__file__)

SIDE: list[WebSocket] = []
WITNESS: dict[str, Any] = {}
_witness_done = threading.Event()


@app.get("/")
def index():
    return "Hello, world!"


@app.websocket("/crowd")
async def crowd(websocket: WebSocket):
    websocket.subscribe("crowd")
    async for _ in websocket:
        pass


@app.websocket("/side")
async def side(websocket: WebSocket):
    SIDE.append(websocket)
    async for _ in websocket:
        pass


@app.websocket("/ops")
async def ops(websocket: WebSocket):
    async for message in websocket:
        op, topic, *rest = str(message).split(" ", 2)
        if op == "sub":
            result: object = websocket.subscribe(topic)
        elif op == "unsub":
            result = websocket.unsubscribe(topic)
        elif op == "pub":
            result = app.publish(topic, rest[0])
        elif op == "wspub":
            result = int(websocket.publish(topic, rest[0]))
        elif op == "count":
            result = app.subscribers(topic)
        else:
            result = "unknown operation"
        await websocket.send_text(f"{op} {topic} {result}")


def witness() -> None:
    server = app._server
    delivered = server._test_wait_held(10.0)
    WITNESS["delivered_when_held"] = delivered
    if delivered is not None:
        WITNESS["subscribed"] = SIDE[0].subscribe("side")
        WITNESS["published"] = app.publish("side", "after the crowd")
        WITNESS["crowd_subscribers"] = app.subscribers("crowd")
        WITNESS["side_subscribers"] = app.subscribers("side")
    WITNESS["still_held"] = server._test_release()
    _witness_done.set()


@app.post("/arm/:after")
def arm(request: Request):
    if len(SIDE) != 1:
        return Response(409, {}, f"{len(SIDE)} /side connections, want 1")
    app._server._test_hold_fanout("crowd", int(request.path_params["after"]))
    threading.Thread(target=witness, name="witness", daemon=True).start()
    return "armed"


@app.post("/publish/:topic")
def publish(request: Request):
    body = request.body
    if isinstance(body, bytes):
        body = body.decode()
    return {"reached": app.publish(request.path_params["topic"], body)}


@app.get("/subscribers/:topic")
def subscribers(request: Request):
    return {"count": app.subscribers(request.path_params["topic"])}


@app.get("/witness")
def witness_result():
    if not _witness_done.is_set():
        return Response(409, {}, "the witness is not done")
    return dict(WITNESS, fanout_reached=app._server._test_hold_result())


if __name__ == "__main__":
    app.start(host="127.0.0.1", port=8080)
