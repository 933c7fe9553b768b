"""Signed-cookie sessions through app.configure_sessions (Robyn 0.88's API)."""

from __future__ import annotations

import os

from robyn import Request, Robyn

app = Robyn(__file__)


@app.get("/")
def index():
    return "Hello, world!"


@app.get("/sessions/get")
def session_get(request: Request):
    return {"value": request.session.get("value")}


@app.post("/sessions/set")
def session_set(request: Request):
    request.session["value"] = request.json().get("value")
    return {"stored": request.session["value"]}


@app.get("/sessions/counter")
async def session_counter(request: Request):
    request.session["count"] = request.session.get("count", 0) + 1
    return {"count": request.session["count"]}


@app.get("/sessions/clear")
def session_clear(request: Request):
    request.session.clear()
    return "cleared"


@app.get("/sessions/cart")
def session_cart(request: Request):
    request.session.setdefault("cart", [])
    request.session["cart"].append(len(request.session["cart"]))
    return {"cart": request.session["cart"]}


if __name__ == "__main__":
    app.configure_sessions(secret_key=os.environ.get("APP_SECRET", "test-secret"), cookie_name="robyn_session",
                           max_age=int(os.environ.get("APP_MAX_AGE", "3600")))
    app.start(port=int(os.environ.get("APP_PORT", "8080")))
