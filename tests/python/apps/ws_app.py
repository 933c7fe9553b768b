"""The WebSocket endpoints the tests/python/test_ws_*.py suites talk to.

Routes:
  GET  /                       "Hello, world!" (conftest's assert_serving)
  WS   /chat/:room             the chat of the README: greeting "welcome", every message goes to
                               app.publish(room, ...) (the sender included); on_connect
                               publishes "<id> joined" and on_close "<id> left" to "presence"
  WS   /presence               subscribes to "presence" and never sends
  WS   /echo                   echoes each message with its type (text stays text)
  WS   /zecho                  like /echo, with compression=True (permessage-deflate)
  WS   /info/:a/:b             sends one JSON object: path params, query params, headers, id
  WS   /json                   receive_json() in a loop: answers {"got": value} or "error: ..."
  WS   /broadcast              each message -> websocket.broadcast(message)
  WS   /topic/:name            subscribes to name; each message -> websocket.publish(name, ...),
                               then answers the sender "reached <n>"
  WS   /droproom/:room         like /chat/:room, backpressure="drop"
  WS   /flood                  "go N SIZE": N awaited send_text()s of SIZE bytes, then "done"
  WS   /big                    "send N SIZE": N send()s (not awaited) of SIZE bytes, numbered
                               like /flood's; "publish TOPIC N SIZE": N app.publish(TOPIC, ...)
                               of SIZE bytes, then answers "published N"
  WS   /refuse                 on_connect raises
  WS   /refuse-response        on_connect returns Response(403)
  WS   /refuse-http            on_connect raises HTTPException(401, "token required") unless
                               the query has token=good; then it returns {"hello": "json"}
  WS   /origin                 origins=["http://good.example"]
  WS   /sync                   a def handler: for message in websocket: websocket.send(...)
  WS   /closer                 "close CODE REASON" -> await websocket.close(CODE, REASON)
  WS   /crash                  the handler raises on the first message
  WS   /hold                   reads nothing until POST /release; then counts the messages up
                               to "end" and answers "count <n> ok <all in order and intact>"
  POST /release                lets every /hold handler start reading (async route)
  POST /publish/:topic         app.publish(topic, body) -> {"reached": n}
  GET  /subscribers/:topic     {"count": app.subscribers(topic)}
  GET  /stats                  app.websocket_stats()
  GET  /flood-progress         {"sent": how many sends of /flood completed}

$WS_CLOSE_LOG (when set): every on_close appends "<endpoint> <id>\\n" to that file.
"""

from __future__ import annotations

import asyncio
import os
import threading

from robyn import HTTPException, Request, Response, Robyn, WebSocket, WebSocketDisconnect

app = Robyn(__file__)
app.capture_headers("x-room-token")

CLOSE_LOG = os.environ.get("WS_CLOSE_LOG")
_log_lock = threading.Lock()
FLOOD = {"sent": 0, "target": 0}


def log_close(endpoint: str, websocket: WebSocket) -> None:
    if CLOSE_LOG:
        with _log_lock, open(CLOSE_LOG, "a", encoding="utf-8") as f:
            f.write(f"{endpoint} {websocket.id}\n")


@app.get("/")
def index():
    return "Hello, world!"


# ---- the chat of the README -----------------------------------------------------------


@app.websocket("/chat/:room")
async def chat(websocket: WebSocket):
    room = websocket.path_params["room"]
    websocket.subscribe(room)
    async for message in websocket:
        app.publish(room, message)


@chat.on_connect
def joined(websocket):
    app.publish("presence", f"{websocket.id} joined")
    return "welcome"


@chat.on_close
def left(websocket):
    app.publish("presence", f"{websocket.id} left")
    log_close("chat", websocket)


@app.websocket("/presence")
async def presence(websocket: WebSocket):
    websocket.subscribe("presence")
    async for _ in websocket:
        pass


@app.websocket("/droproom/:room", backpressure="drop")
async def droproom(websocket: WebSocket):
    room = "drop:" + websocket.path_params["room"]
    websocket.subscribe(room)
    async for message in websocket:
        app.publish(room, message)


# ---- single-feature endpoints ------------------------------------------------------------


@app.websocket("/echo")
async def echo(websocket: WebSocket):
    async for message in websocket:
        if isinstance(message, bytes):
            await websocket.send_bytes(message)
        else:
            await websocket.send_text(message)


@app.websocket("/zecho", compression=True)
async def zecho(websocket: WebSocket):
    async for message in websocket:
        if isinstance(message, bytes):
            await websocket.send_bytes(message)
        else:
            await websocket.send_text(message)


@app.websocket("/info/:a/:b")
async def info(websocket: WebSocket):
    await websocket.send_json({
        "path": dict(websocket.path_params),
        "query": {k: websocket.query_params.get_all(k) for k in websocket.query_params.keys()},
        "x_test": websocket.headers.get("x-test"),
        "x_room_token": websocket.headers.get("x-room-token"),
        "user_agent": websocket.headers.get("user-agent"),
        "id": websocket.id,
    })
    async for _ in websocket:
        pass


@app.websocket("/attrs")
async def attrs(websocket: WebSocket):
    """Attributes an application sets on the socket stay (WebSocket has slots and a
    __dict__ slot); query_params is the Request's once the handler has read the Request."""
    before = websocket.query_params.get("who")
    request = websocket.request
    same = websocket.query_params is request.query_params
    await websocket.send_text(f"{before} {'same' if same else 'different'}")
    async for message in websocket:
        if not hasattr(websocket, "nickname"):
            websocket.nickname = message
            await websocket.send_text(f"hello {websocket.nickname}")
        else:
            await websocket.send_text(f"{websocket.nickname}: {message}")


@app.websocket("/two-readers")
async def two_readers(websocket: WebSocket):
    """One message has one reader: a receive() while `async for` waits is refused, and
    the waiting one gets the message."""
    pending = websocket.__aiter__().__anext__()
    try:
        await websocket.receive()
    except RuntimeError as exc:
        await websocket.send_text(f"error: {exc}")
    await websocket.send_text(f"first got {await pending}")
    async for message in websocket:
        await websocket.send_text(f"then {message}")


@app.websocket("/json")
async def json_endpoint(websocket: WebSocket):
    while True:
        try:
            value = await websocket.receive_json()
        except ValueError as exc:
            await websocket.send_text(f"error: {exc}")
            continue
        except WebSocketDisconnect:
            return
        await websocket.send_json({"got": value})


@app.websocket("/broadcast")
async def broadcast(websocket: WebSocket):
    async for message in websocket:
        websocket.broadcast(message)


@app.websocket("/topic/:name")
async def topic(websocket: WebSocket):
    name = websocket.path_params["name"]
    websocket.subscribe(name)
    async for message in websocket:
        reached = websocket.publish(name, message)
        await websocket.send_text(f"reached {reached}")


@app.websocket("/flood")
async def flood(websocket: WebSocket):
    async for message in websocket:
        _, count, size = message.split()
        FLOOD["sent"] = 0
        FLOOD["target"] = int(count)
        for i in range(int(count)):
            head = f"{i:08d}:"
            await websocket.send_text(head + "x" * (int(size) - len(head)))
            FLOOD["sent"] = i + 1
        await websocket.send_text("done")


def numbered(i: int, size: int) -> str:
    head = f"{i:08d}:"
    return head + "x" * (size - len(head))


@app.websocket("/big")
async def big(websocket: WebSocket):
    async for message in websocket:
        verb, *args = message.split()
        if verb == "send":
            count, size = int(args[0]), int(args[1])
            for i in range(count):
                websocket.send(numbered(i, size))
        elif verb == "publish":
            topic, count, size = args[0], int(args[1]), int(args[2])
            for i in range(count):
                app.publish(topic, numbered(i, size))
            await websocket.send_text(f"published {count}")


@app.websocket("/refuse")
async def refuse(websocket: WebSocket):
    await websocket.send_text("handler ran")


@refuse.on_connect
def refuse_connect(websocket):
    raise PermissionError("no entry")


@app.websocket("/refuse-response")
async def refuse_response(websocket: WebSocket):
    await websocket.send_text("handler ran")


@refuse_response.on_connect
def refuse_with_response(websocket):
    return Response(403, {}, "forbidden")


@app.websocket("/refuse-http")
async def refuse_http(websocket: WebSocket):
    async for message in websocket:
        await websocket.send_text("echo:" + message)


@refuse_http.on_connect
async def refuse_http_connect(websocket):
    if websocket.query_params.get("token") != "good":
        raise HTTPException(401, "token required")
    return {"hello": "json"}


@app.websocket("/origin", origins=["http://good.example"])
async def origin(websocket: WebSocket):
    await websocket.send_text("origin ok")
    async for _ in websocket:
        pass


@app.websocket("/sync")
def sync_handler(websocket):
    for message in websocket:
        if isinstance(message, bytes):
            websocket.send(message[::-1])
        else:
            websocket.send("sync:" + message)


@sync_handler.on_connect
def sync_connect(websocket):
    return "sync-hello"


@sync_handler.on_close
def sync_close(websocket):
    app.publish("presence", f"{websocket.id} sync-left")
    log_close("sync", websocket)


@app.websocket("/closer")
async def closer(websocket: WebSocket):
    async for message in websocket:
        _, code, reason = message.split(" ", 2)
        await websocket.close(int(code), reason)


@app.websocket("/crash")
async def crash(websocket: WebSocket):
    await websocket.receive()
    raise RuntimeError("handler failed on purpose")


HOLD: dict[str, asyncio.Event] = {}


def hold_event() -> asyncio.Event:
    if "event" not in HOLD:
        HOLD["event"] = asyncio.Event()
    return HOLD["event"]


@app.websocket("/hold")
async def hold(websocket: WebSocket):
    await hold_event().wait()
    count, ok = 0, True
    async for message in websocket:
        if message == "end":
            break
        ok = ok and isinstance(message, bytes) and message == count.to_bytes(4, "big") * (len(message) // 4)
        count += 1
    await websocket.send_text(f"count {count} ok {ok}")


@app.post("/release")
async def release():
    hold_event().set()
    return "released"


# ---- HTTP side -----------------------------------------------------------------------------


@app.post("/publish/:topic")
def publish(request: Request):
    body = request.body
    if isinstance(body, bytes):
        body = body.decode()
    return {"reached": app.publish(request.path_params["topic"], body)}


@app.get("/subscribers/:topic")
def subscribers(request: Request):
    return {"count": app.subscribers(request.path_params["topic"])}


@app.get("/stats")
def stats():
    return app.websocket_stats()


@app.get("/flood-progress")
def flood_progress():
    return dict(FLOOD)


if __name__ == "__main__":
    app.start(host="127.0.0.1", port=8080)
