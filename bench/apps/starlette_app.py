"""The benchmark app for uvicorn + Starlette: the same routes as robyn_app.py.

    uvicorn --app-dir bench/apps starlette_app:app --host 127.0.0.1 --port 8080 \
        --workers 1 --loop uvloop --http httptools --ws websockets --log-level warning

Starlette has no pub/sub: /ws/pubsub keeps topic -> set of sockets in this
process and sends to each subscriber in turn (the smallest honest variant; with
--workers > 1 a topic only reaches the sockets of the worker that published).
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

HELLO = "Hello, world!"
HELLO_RESPONSE_BODY = HELLO.encode()


def plaintext(request: Request) -> Response:
    return PlainTextResponse(HELLO)


async def json_handler(request: Request) -> Response:
    return JSONResponse({"message": HELLO})


def user(request: Request) -> Response:
    q = request.query_params.get("q", "")
    return PlainTextResponse(f"{request.path_params['id']} {q}")


async def echo(request: Request) -> Response:
    return Response(await request.body(), media_type="text/plain")


async def const(request: Request) -> Response:
    # Starlette has no const routes: the closest is a prebuilt body.
    return Response(HELLO_RESPONSE_BODY, media_type="text/plain")


async def ws_echo(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        async for message in websocket.iter_text():
            await websocket.send_text(message)
    except WebSocketDisconnect:
        pass


TOPICS: dict[str, set[WebSocket]] = {}


async def ws_pubsub(websocket: WebSocket) -> None:
    await websocket.accept()
    topic = websocket.query_params.get("topic", "bench")
    subscribed = websocket.query_params.get("role", "sub") != "pub"
    members = TOPICS.setdefault(topic, set())
    if subscribed:
        members.add(websocket)
    try:
        async for message in websocket.iter_text():
            for member in list(members):
                try:
                    await member.send_text(message)
                except Exception:
                    members.discard(member)
    except WebSocketDisconnect:
        pass
    finally:
        members.discard(websocket)


app = Starlette(
    routes=[
        Route("/", plaintext),
        Route("/json", json_handler),
        Route("/user/{id}", user),
        Route("/echo", echo, methods=["POST"]),
        Route("/const", const),
        WebSocketRoute("/ws", ws_echo),
        WebSocketRoute("/ws/pubsub", ws_pubsub),
    ]
)
