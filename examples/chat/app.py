"""A chat with rooms, and the browser page that talks to it.

    python examples/chat/app.py            # then open http://127.0.0.1:8080/

Routes:
  GET  /                        the page (static/index.html), with /app.js and /style.css;
                                all three are const routes, served from memory by the C core
  GET  /rooms                   {"rooms": [{"name", "subscribers", "members"}]}
  POST /rooms/:room/announce    the body (text, or JSON {"text": ...}) goes to everyone in
                                the room as {"type": "announce"}; answers {"delivered_to": n}
  WS   /chat/:room?user=NAME[&epoch=E&offset=N]   the chat itself; epoch and offset: where
                                a reconnecting page left off, to be sent what it missed

The WebSocket protocol is JSON text frames. The client sends
    {"type": "message", "text": "hi"}
and everyone in the room, the sender included, gets
    {"type": "message", "user": "ann", "text": "hi", "ts": 1700000000000}
On connecting the client gets {"type": "welcome", "id", "user", "room", "members", "ts"}; the
room gets {"type": "join" | "leave", "user", "members", "ts"} when someone arrives or goes.
Bad input is answered, to the sender only, with {"type": "error", "error": "<what is wrong>"};
a bad room or user name is answered that way and the connection is then closed with 1008.

Topics are "room:<name>": the fan-out to every member happens in C, the message encoded once.
Each room keeps its last 200 messages for an hour (app.topic(history=...), docs/realtime.md):
everything published to a room reaches the page in an envelope
    {"epoch": "...", "offset": 17, "topic": "room:lobby", "data": {"type": "message", ...}}
and the page remembers the last (epoch, offset) it saw. A new connection is sent the room's
last 50 messages; a reconnecting one gives its position and is sent exactly what it missed,
or, when that is no longer held (or the server restarted), {"type": "reload"} followed by
the last 50.
"""

from __future__ import annotations

import json
import logging
import re
import time
import unicodedata
from pathlib import Path
from typing import Any

from robyn import Request, Response, Robyn, WebSocket
from robyn.realtime import HistoryGone

logger = logging.getLogger("chat")

app = Robyn(__file__)
app.topic("room:*", history=200, ttl=3600)

STATIC = Path(__file__).resolve().parent / "static"

MAX_TEXT = 1000            # characters in one chat message
MAX_FRAME = 8 * 1024       # bytes in one frame from a client
MAX_NAME = 24              # characters in a user name
RATE_MESSAGES = 10         # at most this many messages ...
RATE_SECONDS = 5.0         # ... in this many seconds, per connection
DEFAULT_ROOMS = ("lobby", "random")
RECENT = 50                # messages a newly joined page is shown

ROOM_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}")

# room name -> {connection id: user name}, for presence. Only the members connected to this
# process; subscriber counts come from the C pub/sub (app.subscribers).
members: dict[str, dict[str, str]] = {}


def now_ms() -> int:
    return int(time.time() * 1000)


def topic(room: str) -> str:
    return f"room:{room}"


def event(kind: str, **fields: Any) -> dict[str, Any]:
    """What the room is sent: a JSON object, which history puts in its envelope."""
    return {"type": kind, **fields, "ts": now_ms()}


def check_room(room: str) -> str | None:
    """None when `room` is a valid room name, else what is wrong with it."""
    if not ROOM_NAME.fullmatch(room):
        return ("room names are 1 to 32 letters, digits, '-' or '_', "
                "starting with a letter or digit")
    return None


def clean_name(raw: str | None) -> tuple[str, str | None]:
    """(name, None) for an acceptable user name, else ("", what is wrong)."""
    name = " ".join((raw or "").split())  # trims and folds runs of white space
    if not name:
        return "", "a user name is required: connect with ?user=NAME"
    if len(name) > MAX_NAME:
        return "", f"user names are at most {MAX_NAME} characters"
    if any(unicodedata.category(ch)[0] == "C" for ch in name):
        return "", "user names may not contain control characters"
    return name, None


def clean_text(raw: Any) -> tuple[str, str | None]:
    """(text, None) for an acceptable chat message, else ("", what is wrong)."""
    if not isinstance(raw, str):
        return "", "'text' must be a string"
    text = raw.strip()
    if not text:
        return "", "empty messages are not sent"
    if len(text) > MAX_TEXT:
        return "", f"message too long: {len(text)} characters, at most {MAX_TEXT}"
    # Keep line breaks and tabs, drop every other control character.
    text = "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch) != "Cc")
    return text, None


def room_members(room: str) -> list[str]:
    return sorted(members.get(room, {}).values(), key=str.casefold)


# ---- the page ---------------------------------------------------------------------------


def static_file(name: str, content_type: str) -> Response:
    body = (STATIC / name).read_text(encoding="utf-8")
    return Response(200, {"Content-Type": content_type, "Cache-Control": "no-cache"}, body)


@app.get("/", const=True)
def index() -> Response:
    return static_file("index.html", "text/html; charset=utf-8")


@app.get("/app.js", const=True)
def script() -> Response:
    return static_file("app.js", "text/javascript; charset=utf-8")


@app.get("/style.css", const=True)
def style() -> Response:
    return static_file("style.css", "text/css; charset=utf-8")


# ---- HTTP API ---------------------------------------------------------------------------


def error_response(status: int, message: str) -> Response:
    return Response(status, {"Content-Type": "application/json"},
                    json.dumps({"error": message}))


@app.get("/rooms")
def list_rooms() -> dict[str, Any]:
    names = set(DEFAULT_ROOMS) | {room for room, who in members.items() if who}
    return {"rooms": [
        {"name": room, "subscribers": app.subscribers(topic(room)), "members": room_members(room)}
        for room in sorted(names)
    ]}


@app.post("/rooms/:room/announce")
def announce(request: Request) -> Any:
    room = request.path_params["room"]
    problem = check_room(room)
    if problem:
        return error_response(400, problem)
    body = request.body
    if isinstance(body, bytes):
        return error_response(400, "the announcement must be UTF-8 text")
    if body.lstrip().startswith("{"):
        try:
            body = json.loads(body).get("text")
        except (ValueError, AttributeError):
            return error_response(400, "invalid JSON: send text, or {\"text\": ...}")
    text, problem = clean_text(body)
    if problem:
        return error_response(400, problem)
    delivered = app.publish(topic(room), event("announce", room=room, text=text))
    return {"delivered_to": int(delivered)}


# ---- the chat -----------------------------------------------------------------------------


@app.websocket("/chat/:room")
async def chat(websocket: WebSocket) -> None:
    room = websocket.path_params["room"]
    name, problem = clean_name(websocket.query_params.get("user"))
    problem = check_room(room) or problem
    if problem:
        await websocket.send_json({"type": "error", "error": problem, "fatal": True})
        await websocket.close(code=1008, reason=problem[:120])
        return

    room_topic = topic(room)
    members.setdefault(room, {})[websocket.id] = name
    recovered = join_room(websocket, room_topic)
    try:
        await websocket.send_json(event("welcome", id=websocket.id, user=name, room=room,
                                        members=room_members(room), recovered=recovered))
        app.publish(room_topic, event("join", user=name, members=room_members(room)))
        logger.info("%s joined %s (%s)", name, room, websocket.id)

        sent: list[float] = []  # when this connection's recent messages came
        async for frame in websocket:
            problem = None
            if isinstance(frame, bytes):
                problem = "binary frames are not supported: send JSON text"
            elif len(frame.encode()) > MAX_FRAME:
                problem = f"frame too large: at most {MAX_FRAME} bytes"
            else:
                try:
                    data = json.loads(frame)
                except ValueError:
                    data = None
                if not isinstance(data, dict):
                    problem = 'invalid message: send {"type": "message", "text": "..."}'
                elif data.get("type") != "message":
                    problem = f"unknown message type {str(data.get('type'))[:40]!r}"
                else:
                    text, problem = clean_text(data.get("text"))
            if problem is None:
                clock = time.monotonic()
                sent[:] = [t for t in sent if clock - t < RATE_SECONDS]
                if len(sent) >= RATE_MESSAGES:
                    problem = (f"slow down: at most {RATE_MESSAGES} messages "
                               f"in {RATE_SECONDS:g} seconds")
                else:
                    sent.append(clock)
            if problem:
                await websocket.send_json({"type": "error", "error": problem})
                continue
            app.publish(room_topic, event("message", user=name, text=text))
    finally:
        room_map = members.get(room, {})
        room_map.pop(websocket.id, None)
        if not room_map:
            members.pop(room, None)
        app.publish(room_topic, event("leave", user=name, members=room_members(room)))
        logger.info("%s left %s (%s)", name, room, websocket.id)


def join_room(websocket: WebSocket, room_topic: str) -> int | None:
    """Subscribes to the room. A reconnecting page (epoch and offset in the query) is sent
    what it missed first; a new one the room's last messages. Returns how many messages a
    recovery replayed, None when there was nothing to recover from."""
    query = websocket.query_params
    epoch, offset = query.get("epoch", None), query.get("offset", None)
    if epoch and offset is not None and offset.isdigit():
        try:
            return int(websocket.subscribe(room_topic, since=(epoch, int(offset))).replayed)
        except (HistoryGone, ValueError):
            # Forgotten, another epoch (the server restarted) or not an epoch at all: the
            # page starts over from the last messages. Sent first, so it clears before them.
            websocket.send(json.dumps({"type": "reload"}))
    websocket.subscribe(room_topic, last=RECENT)
    return None


@chat.on_close
def closed(websocket: WebSocket) -> None:
    logger.debug("connection %s closed", websocket.id)


if __name__ == "__main__":
    app.start(host="127.0.0.1", port=8080)
