"""A chat room: open http://127.0.0.1:8080/ in two browser tabs and talk.

    python app.py --dev      # restarts when you edit this file

Everyone connected to /chat is subscribed to the topic "chat"; a message one of them sends
is published to that topic, and the server fans it out to all of them.
"""

from __future__ import annotations

import json
import time

from robyn import Response, Robyn, WebSocket, html

app = Robyn(__file__)

PAGE = """<!doctype html>
<meta charset="utf-8"><title>Chat</title>
<ul id="log"></ul>
<form id="form"><input id="text" autocomplete="off" autofocus><button>Send</button></form>
<script>
const socket = new WebSocket(`ws://${location.host}/chat`);
const log = document.getElementById("log");
socket.onmessage = (event) => {
  const message = JSON.parse(event.data);
  const item = document.createElement("li");
  item.textContent = `${new Date(message.ts).toLocaleTimeString()} ${message.text}`;
  log.append(item);
};
document.getElementById("form").onsubmit = (event) => {
  event.preventDefault();
  const input = document.getElementById("text");
  if (input.value) socket.send(input.value);
  input.value = "";
};
</script>
"""


@app.get("/", const=True)
def index() -> Response:
    return html(PAGE)


@app.websocket("/chat")
async def chat(websocket: WebSocket) -> None:
    websocket.subscribe("chat")
    async for text in websocket:
        message = json.dumps({"text": str(text)[:1000], "ts": int(time.time() * 1000)})
        app.publish("chat", message)


if __name__ == "__main__":
    app.start(host="127.0.0.1", port=8080)
