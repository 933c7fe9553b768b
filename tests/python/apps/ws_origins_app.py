"""An app-wide WebSocket Origin allow-list: Robyn(__file__, ws_origins=[...]).

  GET /          "Hello, world!"
  WS  /app-wide  no origins= of its own: the app-wide list applies (http://a.example)
  WS  /own       origins=["http://b.example"] replaces the app-wide list
"""

from robyn import Robyn, WebSocket

app = Robyn(__file__, ws_origins=["http://a.example"])


@app.get("/")
def index():
    return "Hello, world!"


@app.websocket("/app-wide")
async def app_wide(websocket: WebSocket):
    await websocket.send_text("app-wide ok")
    async for _ in websocket:
        pass


@app.websocket("/own", origins=["http://b.example"])
async def own(websocket: WebSocket):
    await websocket.send_text("own ok")
    async for _ in websocket:
        pass


if __name__ == "__main__":
    app.start(host="127.0.0.1", port=8080)
