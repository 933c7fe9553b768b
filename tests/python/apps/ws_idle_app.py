"""Idle subscribers and what Python holds for them (tests/python/test_ws_memory.py).

Routes:
  GET  /                   "Hello, world!"
  WS   /idle?topic=T        subscribes to T and waits in `async for` (each message is
                           published to T), as docs/websocket.md writes a pub/sub handler
  GET  /python-bytes       {"bytes": what Python's allocator holds (tracemalloc, started
                           at import)}
  GET  /subscribers/:topic {"count": app.subscribers(topic)}
"""

from __future__ import annotations

import json
import tracemalloc
from typing import Any

from robyn import Robyn

tracemalloc.start()
app = Robyn(__file__)


@app.get("/")
def index() -> str:
    return "Hello, world!"


@app.get("/python-bytes")
def python_bytes() -> str:
    return json.dumps({"bytes": tracemalloc.get_traced_memory()[0]})


@app.get("/subscribers/:topic")
def subscribers(request: Any) -> str:
    return json.dumps({"count": app.subscribers(request.path_params["topic"])})


@app.websocket("/idle")
async def idle(websocket: Any) -> None:
    topic = websocket.query_params.get("topic", "idle")
    websocket.subscribe(topic)
    async for message in websocket:
        app.publish(topic, message)


if __name__ == "__main__":
    app.start(host="127.0.0.1", port=8080)
