"""The app tests/python/test_metrics.py scrapes: app.enable_metrics("/metrics") beside HTTP
routes of every kind and a few WebSocket endpoints.

Routes:
  GET  /                  "Hello, world!" (sync)
  GET  /async             "async" (async)
  GET  /const             "const" (const=True: answered by C)
  GET  /moved             302 to /
  GET  /boom              raises: 500
  GET  /slow              async, sleeps 30 ms: "slow"
  GET  /stats             app.websocket_stats()
  GET  /enable-again      calls app.enable_metrics("/other") on the running app: the error
  POST /publish/:topic    app.publish(topic, body) -> {"reached": n}
  POST /flood/:topic      body "N SIZE": N app.publish(topic, SIZE bytes) -> {"reached": sum}
  WS   /echo              echoes each text message
  WS   /room              subscribes to "room"; ignores what it gets
  WS   /droproom          subscribes to "droproom", backpressure="drop"; ignores what it gets
  WS   /slowroom          subscribes to "slowroom" (backpressure "close")
  WS   /closer            "close CODE" -> websocket.close(CODE)
  WS   /guarded           on_connect refuses with 401 unless the query has token=good; echoes
  GET  /metrics           the exposition (C)
"""

from __future__ import annotations

import asyncio

from robyn import HTTPException, Request, Response, Robyn, WebSocket

app = Robyn(__file__)


@app.get("/")
def index():
    return "Hello, world!"


@app.get("/async")
async def async_route():
    return "async"


@app.get("/const", const=True)
def const_route():
    return "const"


@app.get("/moved")
def moved():
    return Response(302, {"location": "/"}, "")


@app.get("/boom")
def boom():
    raise RuntimeError("boom")


@app.get("/slow")
async def slow():
    await asyncio.sleep(0.03)
    return "slow"


@app.get("/stats")
def stats():
    return app.websocket_stats()


@app.get("/enable-again")
def enable_again():
    try:
        app.enable_metrics("/other")
    except RuntimeError as exc:
        return f"RuntimeError: {exc}"
    return "accepted"


@app.post("/publish/:topic")
def publish(request: Request):
    return {"reached": app.publish(request.path_params["topic"], request.body)}


@app.post("/flood/:topic")
def flood(request: Request):
    count, size = (int(word) for word in request.body.split())
    payload = b"x" * size
    topic = request.path_params["topic"]
    return {"reached": sum(app.publish(topic, payload) for _ in range(count))}


@app.websocket("/echo")
async def echo(websocket: WebSocket):
    async for message in websocket:
        await websocket.send_text(message)


@app.websocket("/room")
async def room(websocket: WebSocket):
    websocket.subscribe("room")
    async for _ in websocket:
        pass


@app.websocket("/droproom", backpressure="drop")
async def droproom(websocket: WebSocket):
    websocket.subscribe("droproom")
    async for _ in websocket:  # the client reads nothing: its queue fills
        pass


@app.websocket("/slowroom")
async def slowroom(websocket: WebSocket):
    websocket.subscribe("slowroom")
    async for _ in websocket:
        pass


@app.websocket("/closer")
async def closer(websocket: WebSocket):
    async for message in websocket:
        await websocket.close(int(message.split()[1]))


@app.websocket("/guarded")
async def guarded(websocket: WebSocket):
    async for message in websocket:
        await websocket.send_text(message)


@guarded.on_connect
def guard(websocket):
    if websocket.query_params.get("token") != "good":
        raise HTTPException(401, "token required")
    return None


app.enable_metrics("/metrics")

if __name__ == "__main__":
    app.start()
