"""An app configured with Robyn(__file__, pubsub_url=...) (the keyword, not the environment),
for tests/python/test_redis_bus.py. The URL comes from $REDIS_APP_URL.

Routes:
  GET  /                  "Hello, world!"
  WS   /topic/:name       subscribes to name; each message -> websocket.publish(name, ...)
  POST /publish/:topic    app.publish(topic, body) -> {"reached": n}
  GET  /stats             app.websocket_stats()
"""

from __future__ import annotations

import os

from robyn import Request, Robyn, WebSocket

app = Robyn(__file__, pubsub_url=os.environ["REDIS_APP_URL"])


@app.get("/")
def index():
    return "Hello, world!"


@app.websocket("/topic/:name")
async def topic(websocket: WebSocket):
    name = websocket.path_params["name"]
    websocket.subscribe(name)
    async for message in websocket:
        websocket.publish(name, message)


@app.post("/publish/:topic")
def publish(request: Request):
    body = request.body
    if isinstance(body, bytes):
        body = body.decode()
    return {"reached": app.publish(request.path_params["topic"], body)}


@app.get("/stats")
def stats():
    return app.websocket_stats()


if __name__ == "__main__":
    app.start()
