"""auth_required=True on WebSocket routes through the public API (Robyn's AuthenticationHandler,
app.configure_authentication), for tests/python/test_robyn_ws_auth.py.

Routes:
  GET  /          "Hello, world!"
  WS   /secure    auth_required=True: "hello <user>" (websocket.identity's claims), then
                  "secure <message>" for each message; on_connect returns "welcome <user>"
  WS   /open      no authentication: "open"
"""

from __future__ import annotations

from robyn import Request, Robyn
from robyn.authentication import AuthenticationHandler, BearerGetter, Identity

app = Robyn(__file__)


class TokenHandler(AuthenticationHandler):
    def authenticate(self, request: Request) -> Identity | None:
        token = self.token_getter.get_token(request)
        return Identity(claims={"user": "batman"}) if token == "valid" else None


@app.websocket("/secure", auth_required=True)
async def secure(websocket):
    await websocket.send_text(f"hello {websocket.identity.claims['user']}")
    async for message in websocket:
        await websocket.send_text(f"secure {message}")


@secure.on_connect
def secure_welcome(websocket):
    return f"welcome {websocket.identity.claims['user']}"


@app.websocket("/open")
async def open_endpoint(websocket):
    await websocket.send_text("open")
    async for _ in websocket:
        pass


@app.get("/")
def index():
    return "Hello, world!"


app.configure_authentication(TokenHandler(token_getter=BearerGetter()))

if __name__ == "__main__":
    app.start(host="127.0.0.1", port=8080)
