"""WebSocket endpoints written as Robyn 0.88 apps write them, for tests/python/test_robyn_ws_compat.py.

The first block has the WebSocket routes of Robyn 0.88's integration suite (base_routes.py),
as that app declares them; the rest covers the other behaviours of docs/websocket.md.

Routes:
  GET  /                          "Hello, world!"
  WS   /web_socket                the suite's state machine: broadcast, send_text, query params,
                                  close(); on_connect "Hello world, from ws", on_close
                                  "GoodBye world, from ws"
  WS   /web_socket_json           send_json({"ws_id", "resp", "msg"})
  WS   /web_socket_di             global_dependencies / router_dependencies in the handler,
                                  on_connect and on_close (injected after registration)
  WS   /web_socket_echo           echo; on_connect returns "" (an empty first message)
  WS   /web_socket_binary         receive_bytes() / send_bytes() echo
  WS   /web_socket_empty_returns  callbacks that return None: nothing is sent
  WS   /web_socket_easy_access    room: str = "default", page: int = 1 in all three functions
  WS   /required                  count: int with no default
  WS   /required_connect          on_connect needs token: str
  WS   /items/:item_id            item_id: int from the path, flag: bool from the query,
                                  query_params by name and QueryParams by annotation, request
  WS   /count                     "await broadcast" -> "awaited <n>", "broadcast" -> "plain <n>"
  WS   /convert                   "text"/"bytes"/"json" then the next message through
                                  receive_text() / receive_bytes() / receive_json()
  WS   /send_json                 send_json() of non-ASCII text, a datetime and a UUID
  WS   /farewell                  "bye" -> await websocket.close(); "code C R" -> close(C, R);
                                  "return" -> the handler returns; "raise" -> WebSocketException
                                  (4001); "bad" -> WebSocketException(1005) (not sendable);
                                  on_close returns "farewell <reason>" and logs its call
  WS   /connect_sends             on_connect sends a message and broadcasts one, then returns
                                  the greeting
  WS   /sync_params               a def handler with times: int = 2
  WS   /secret                    auth_required: the app's authenticate seam (see below)
  GET  /closes                    the on_close calls of /farewell and /web_socket_easy_access
"""

from __future__ import annotations

import datetime
import uuid
from collections import defaultdict

from robyn import QueryParams, Request, Response, Robyn, WebSocketDisconnect, jsonify
from robyn.exceptions import WebSocketException

app = Robyn(__file__)

# ===== the suite's WebSocket routes (base_routes.py) =====

websocket_state: defaultdict[str, int] = defaultdict(int)


@app.websocket("/web_socket")
async def websocket_endpoint(websocket):
    try:
        while True:
            _ = await websocket.receive_text()
            websocket_id = websocket.id
            state = websocket_state[websocket_id]

            if state == 0:
                await websocket.broadcast("This is a broadcast message")
                await websocket.send_text("This is a message to self")
                await websocket.send_text("Whaaat??")
            elif state == 1:
                await websocket.send_text("Whooo??")
            elif state == 2:
                await websocket.broadcast(websocket.query_params.get("one", ""))
                await websocket.send_text(websocket.query_params.get("two", ""))
                await websocket.send_text("*chika* *chika* Slim Shady.")
            elif state == 3:
                await websocket.send_text("Connection closed")
                await websocket.close()
                break

            websocket_state[websocket_id] = (state + 1) % 4
    except WebSocketDisconnect:
        pass


@websocket_endpoint.on_connect
def websocket_on_connect(websocket):
    return "Hello world, from ws"


@websocket_endpoint.on_close
def websocket_on_close(websocket):
    return "GoodBye world, from ws"


@app.websocket("/web_socket_json")
async def json_websocket_endpoint(websocket):
    try:
        while True:
            msg = await websocket.receive_text()
            websocket_id = websocket.id
            response = {"ws_id": websocket_id, "resp": "", "msg": msg}
            state = websocket_state[websocket_id]
            if state == 0:
                response["resp"] = "Whaaat??"
            elif state == 1:
                response["resp"] = "Whooo??"
            elif state == 2:
                response["resp"] = "*chika* *chika* Slim Shady."
            websocket_state[websocket_id] = (state + 1) % 3
            await websocket.send_json(response)
    except WebSocketDisconnect:
        pass


@json_websocket_endpoint.on_connect
def json_websocket_on_connect(websocket):
    return "Hello world, from ws"


@app.websocket("/web_socket_di")
async def di_websocket_endpoint(websocket, global_dependencies=None, router_dependencies=None):
    try:
        while True:
            _ = await websocket.receive_text()
            global_dep = global_dependencies.get("GLOBAL_DEPENDENCY", "MISSING GLOBAL") if global_dependencies else "MISSING GLOBAL"
            router_dep = router_dependencies.get("ROUTER_DEPENDENCY", "MISSING ROUTER") if router_dependencies else "MISSING ROUTER"
            await websocket.send_text(f"handler: {global_dep} {router_dep}")
    except WebSocketDisconnect:
        pass


@di_websocket_endpoint.on_connect
async def di_websocket_on_connect(websocket, global_dependencies=None, router_dependencies=None):
    global_dep = global_dependencies.get("GLOBAL_DEPENDENCY") if global_dependencies else "MISSING GLOBAL"
    router_dep = router_dependencies.get("ROUTER_DEPENDENCY") if router_dependencies else "MISSING ROUTER"
    return f"connect: {global_dep} {router_dep}"


@di_websocket_endpoint.on_close
async def di_websocket_on_close(websocket, global_dependencies=None):
    global_dep = global_dependencies.get("GLOBAL_DEPENDENCY") if global_dependencies else "MISSING GLOBAL"
    return f"close: {global_dep}"


@app.websocket("/web_socket_echo")
async def echo_websocket_endpoint(websocket):
    try:
        while True:
            msg = await websocket.receive_text()
            await websocket.send_text(msg)
    except WebSocketDisconnect:
        pass


@echo_websocket_endpoint.on_connect
def echo_websocket_on_connect(websocket):
    return ""


@echo_websocket_endpoint.on_close
def echo_websocket_on_close(websocket):
    return ""


@app.websocket("/web_socket_binary")
async def binary_websocket_endpoint(websocket):
    try:
        while True:
            data = await websocket.receive_bytes()
            await websocket.send_bytes(data)
    except WebSocketDisconnect:
        pass


@app.websocket("/web_socket_empty_returns")
async def empty_websocket_endpoint(websocket):
    try:
        while True:
            await websocket.receive_text()
    except WebSocketDisconnect:
        pass


@empty_websocket_endpoint.on_connect
async def empty_websocket_on_connect(websocket):
    """Returns nothing: no first message."""


@empty_websocket_endpoint.on_close
async def empty_websocket_on_close(websocket):
    return None


CLOSES: list[str] = []


@app.websocket("/web_socket_easy_access")
async def easy_access_ws_handler(websocket, room: str = "default", page: int = 1):
    try:
        while True:
            msg = await websocket.receive_text()
            await websocket.send_text(f"room={room} page={page} msg={msg}")
    except WebSocketDisconnect:
        pass


@easy_access_ws_handler.on_connect
def easy_access_ws_on_connect(websocket, room: str = "default"):
    return f"connected to {room}"


@easy_access_ws_handler.on_close
def easy_access_ws_on_close(websocket, room: str = "default"):
    CLOSES.append(f"easy_access left {room}")
    return f"left {room}"


# Injected after the routes that use them, as base_routes.py does.
app.inject_global(GLOBAL_DEPENDENCY="GLOBAL DEPENDENCY")
app.inject(ROUTER_DEPENDENCY="ROUTER DEPENDENCY")


# ===== parameters =====


@app.websocket("/required")
async def required(websocket, count: int):
    await websocket.send_text(f"count={count}")
    async for _ in websocket:
        pass


@app.websocket("/required_connect")
async def required_connect(websocket):
    await websocket.send_text("handler ran")


@required_connect.on_connect
def required_connect_hello(websocket, token: str):
    return f"token {token}"


@app.websocket("/items/:item_id")
async def items(websocket, item_id: int, query_params, flag: bool = False, qp: QueryParams = None,
                request: Request = None):
    await websocket.send_json({
        "item_id": item_id,
        "flag": flag,
        "same_query": query_params is qp or query_params == qp,
        "tags": query_params.get_all("tag"),
        "path": dict(websocket.path_params),
        "header": request.headers.get("x-probe"),
    })
    async for _ in websocket:
        pass


@app.websocket("/sync_params")
def sync_params(websocket, times: int = 2):
    for message in websocket:
        websocket.send(message * times)


# ===== broadcast counts, conversions, JSON =====


@app.websocket("/count")
async def count(websocket):
    async for message in websocket:
        if message == "await broadcast":
            reached = await websocket.broadcast("from count")
            await websocket.send_text(f"awaited {reached} {type(reached).__mro__[1].__name__}")
        else:
            reached = websocket.broadcast("from count")
            await websocket.send_text(f"plain {reached + 0}")


@app.websocket("/convert")
async def convert(websocket):
    while True:
        try:
            how = await websocket.receive_text()
            if how == "text":
                value = await websocket.receive_text()
            elif how == "bytes":
                value = await websocket.receive_bytes()
            else:
                value = await websocket.receive_json()
        except WebSocketDisconnect:
            return
        except ValueError as exc:  # not UTF-8 / not JSON
            await websocket.send_text(f"{type(exc).__name__}: {exc}")
            continue
        await websocket.send_text(f"{type(value).__name__} {value!r}")


@app.websocket("/send_json")
async def send_json(websocket):
    await websocket.send_json({
        "text": "café ☕",
        "when": datetime.datetime(2024, 5, 6, 7, 8, 9),
        "id": uuid.UUID("12345678-1234-5678-1234-567812345678"),
    })
    async for _ in websocket:
        pass


# ===== closing =====


@app.websocket("/farewell")
async def farewell(websocket):
    async for message in websocket:
        if message == "bye":
            await websocket.close()
            await websocket.close()  # a second close does nothing
            return
        if message.startswith("code "):
            _, code, reason = message.split(" ", 2)
            await websocket.close(int(code), reason)
            return
        if message == "return":
            return
        if message == "raise":
            raise WebSocketException(4001, "refused by the handler")
        if message == "bad":
            raise WebSocketException(1005, "reserved")
        if message == "bad close":
            try:
                await websocket.close(1005)
            except ValueError as exc:
                await websocket.send_text(f"ValueError: {exc}")
            continue
        await websocket.send_text(f"echo {message}")


@farewell.on_close
def farewell_on_close(websocket):
    CLOSES.append(f"farewell closed={websocket.closed}")
    return f"farewell {websocket.query_params.get('who', 'anyone')}"


@app.websocket("/connect_sends")
async def connect_sends(websocket):
    await websocket.send_text("handler")
    async for _ in websocket:
        pass


@connect_sends.on_connect
async def connect_sends_hello(websocket):
    await websocket.send_text("sent in on_connect")
    reached = await websocket.broadcast("broadcast in on_connect")
    return jsonify({"greeting": "hello", "reached": reached})


# ===== authentication (seam 5 of the project's INTERFACES.md) =====


@app.websocket("/secret")
async def secret(websocket, identity=None):
    await websocket.send_text(f"hello {websocket.identity} {identity}")
    async for message in websocket:
        await websocket.send_text(f"secret {message}")


@secret.on_connect
def secret_hello(websocket):
    return f"on_connect saw {websocket.identity}"


secret.auth_required = True


async def authenticate(request: Request) -> Response | None:
    """What app._authenticate does for a route with auth_required: None (with
    request.identity set) lets the request in; a Response refuses it."""
    if request.headers.get("authorization") == "Bearer good-token":
        request.identity = "batman"
        return None
    return Response(401, {"WWW-Authenticate": "BearerGetter"}, "Unauthorized")


app._authenticate = authenticate


@app.get("/closes")
def closes():
    return jsonify(CLOSES)


@app.get("/")
def index():
    return "Hello, world!"


if __name__ == "__main__":
    app.start(host="127.0.0.1", port=8080)
