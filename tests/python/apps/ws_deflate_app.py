"""The endpoints tests/python/test_ws_deflate.py talks to: permessage-deflate on what the server
sends (compress-once fan-out, direct sends, the threshold) and window-bits negotiation.

Routes:
  GET  /                       "Hello, world!"
  WS   /room/:name             compression=True, compression_threshold=64: subscribes to the
                               topic name; each message -> app.publish(name, message)
  WS   /plain/:name            no compression: subscribes to the topic name, never sends
  WS   /zecho                  compression=True (default threshold, 256): echoes each message
  WS   /zecho0                 compression=True, compression_threshold=0: echoes
  POST /publish/:topic         app.publish(topic, body as text) -> {"reached": n}
  GET  /subscribers/:topic     {"count": app.subscribers(topic)}
"""

from __future__ import annotations

from robyn import Request, Robyn, WebSocket

app = Robyn(__file__)


@app.get("/")
def index():
    return "Hello, world!"


@app.websocket("/room/:name", compression=True, compression_threshold=64)
async def room(websocket: WebSocket):
    name = websocket.path_params["name"]
    websocket.subscribe(name)
    async for message in websocket:
        app.publish(name, message)


@app.websocket("/plain/:name")
async def plain(websocket: WebSocket):
    websocket.subscribe(websocket.path_params["name"])
    async for _ in websocket:
        pass


async def echo(websocket: WebSocket):
    async for message in websocket:
        if isinstance(message, bytes):
            await websocket.send_bytes(message)
        else:
            await websocket.send_text(message)


app.websocket("/zecho", compression=True)(echo)
app.websocket("/zecho0", compression=True, compression_threshold=0)(echo)


@app.post("/publish/:topic")
def publish(request: Request):
    body = request.body
    if isinstance(body, bytes):
        body = body.decode()
    return {"reached": app.publish(request.path_params["topic"], body)}


@app.get("/subscribers/:topic")
def subscribers(request: Request):
    return {"count": app.subscribers(request.path_params["topic"])}


if __name__ == "__main__":
    app.start(host="127.0.0.1", port=8080)
