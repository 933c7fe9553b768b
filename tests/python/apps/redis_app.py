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
from topic_routes import add_topic_routes

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


add_topic_routes(app, subscribers=False)


@app.get("/stats")
def stats():
    return app.websocket_stats()


if __name__ == "__main__":
    app.start()
