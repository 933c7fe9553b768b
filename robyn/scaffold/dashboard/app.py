"""A dashboard: http://127.0.0.1:8080/ shows figures that the server pushes every second.

    python app.py --dev      # restarts when you edit this file

GET /stats answers the same figures as JSON. A background task, started with the app,
publishes them to the topic "stats"; every page open on /live is subscribed to it.
"""

from __future__ import annotations

import asyncio
import json
import os
import time

from robyn import Response, Robyn, WebSocket, html

app = Robyn(__file__)
STARTED = time.monotonic()

PAGE = """<!doctype html>
<meta charset="utf-8"><title>Dashboard</title>
<h1>Dashboard</h1>
<dl>
  <dt>Up for (s)</dt><dd id="uptime">-</dd>
  <dt>Load (1 min)</dt><dd id="load">-</dd>
  <dt>Pages open</dt><dd id="viewers">-</dd>
</dl>
<script>
const socket = new WebSocket(`ws://${location.host}/live`);
socket.onmessage = (event) => {
  const stats = JSON.parse(event.data);
  for (const [key, value] of Object.entries(stats)) {
    const cell = document.getElementById(key);
    if (cell) cell.textContent = value;
  }
};
</script>
"""


def stats() -> dict[str, float | int]:
    return {
        "uptime": round(time.monotonic() - STARTED, 1),
        "load": os.getloadavg()[0],
        "viewers": app.subscribers("stats"),
    }


@app.get("/", const=True)
def index() -> Response:
    return html(PAGE)


@app.get("/stats")
def current_stats() -> dict[str, float | int]:
    return stats()


@app.websocket("/live")
async def live(websocket: WebSocket) -> None:
    websocket.subscribe("stats")
    await websocket.send_text(json.dumps(stats()))
    async for _ in websocket:  # the page sends nothing; this waits for it to close
        pass


async def push_stats() -> None:
    while True:
        await asyncio.sleep(1.0)
        app.publish("stats", json.dumps(stats()))


pusher: list[asyncio.Task[None]] = []


@app.startup_handler
async def start_pushing() -> None:
    pusher.append(asyncio.get_running_loop().create_task(push_stats()))


@app.shutdown_handler
async def stop_pushing() -> None:
    for task in pusher:
        task.cancel()


if __name__ == "__main__":
    app.start(host="127.0.0.1", port=8080)
