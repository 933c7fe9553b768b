"""The app bench/realtime measures: fan-out with and without history, and recovery.

    WS   /ws/pubsub?topic=T[&role=pub]   as bench/apps/robyn_app.py: subscribes to T (unless
                                         role=pub); each message it sends is app.publish()ed
    POST /fill/:topic?n=N                publishes N messages of 100 bytes; answers
                                         {"epoch", "offset"} of the last
    WS   /ws/recover?topic=T&epoch=E&offset=O   subscribe(T, since=(E, O)); then reads

Topics "hist:*" keep 2,000 messages (app.topic); any other topic keeps none. With
ROBYN_PUBSUB_URL set (bench/realtime --redis), they keep them in Redis.
"""

from __future__ import annotations

import os

from robyn import Robyn

app = Robyn(__file__)
app.topic("hist:*", history=2000)


@app.get("/")
def index() -> str:
    return "Hello, world!"


@app.websocket("/ws/pubsub")
async def pubsub(websocket):
    topic = websocket.query_params.get("topic", "bench")
    if websocket.query_params.get("role", "sub") != "pub":
        websocket.subscribe(topic)
    async for message in websocket:
        app.publish(topic, message)


@app.post("/fill/:topic")
def fill(request):
    topic = request.path_params["topic"]
    n = int(request.query_params.get("n", "1000"))
    sent = None
    for i in range(n):
        sent = app.publish(topic, f"{i:08d}" + "x" * 92)
    if sent is not None and sent.epoch is None:
        # The Redis bus (bench/realtime --redis): Redis numbers them; a read from this
        # process comes after its publishes, so the newest one held is the last of them.
        last = app.history(topic, limit=1)[-1]
        return {"epoch": last.epoch, "offset": last.offset}
    return {"epoch": sent.epoch, "offset": sent.offset}


@app.websocket("/ws/recover")
async def recover(websocket):
    q = websocket.query_params
    websocket.subscribe(q.get("topic", "hist:r"), since=(q.get("epoch", ""), int(q.get("offset", "0"))))
    async for _ in websocket:
        pass


if __name__ == "__main__":
    app.start(host=os.environ.get("ROBYN_HOST", "127.0.0.1"), port=int(os.environ.get("ROBYN_PORT", "8080")))
