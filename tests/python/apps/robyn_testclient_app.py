"""An app for robyn.testing's tests: hooks, authentication, exception handlers, path and
query parameters, JSON bodies, a const route, streams. Imported by the tests (TestClient)
and run as a server by them (python robyn_testclient_app.py) to compare the two."""

from __future__ import annotations

import asyncio
import os

from robyn import (
    AuthenticationHandler, Request, Response, Robyn, SSEMessage, SSEResponse, StreamingResponse, SubRouter,
)
from robyn.authentication import BearerGetter
from robyn.robyn import Identity

app = Robyn(__file__)


class TokenAuth(AuthenticationHandler):
    def authenticate(self, request: Request) -> Identity | None:
        token = self.token_getter.get_token(request)
        return Identity(claims={"user": "ada"}) if token == "valid" else None


app.configure_authentication(TokenAuth(token_getter=BearerGetter()))


@app.before_request()
def stamp(request: Request) -> Request:
    request.headers.set("x-stamped", "yes")
    return request


@app.after_request()
def mark(response: Response) -> Response:
    response.headers.set("x-after", str(response.status_code))
    return response


@app.before_request("/blocked")
def refuse(request: Request) -> Response:
    return Response(403, {"content-type": "text/plain"}, "blocked by hook")


@app.exception
def on_error(error: Exception) -> Response:
    return Response(418, {"content-type": "text/plain"}, f"handled: {error}")


app.add_response_header("x-app", "testclient")


@app.get("/")
def index(request: Request) -> str:
    return f"stamped={request.headers.get('x-stamped')}"


@app.get("/users/:id")
async def user(request: Request) -> dict:
    await asyncio.sleep(0)
    return {"id": request.path_params["id"], "verbose": request.query_params.get("verbose", "0")}


@app.post("/echo")
def echo(request: Request) -> dict:
    return {"got": request.json(), "type": request.headers.get("content-type")}


@app.put("/form")
def form(request: Request) -> dict:
    return {"form": request.form_data, "files": {k: len(v) for k, v in request.files.items()}}


@app.get("/blocked")
def blocked() -> str:
    return "never"


@app.get("/fail")
def fail() -> str:
    raise KeyError("missing")


@app.get("/admin", auth_required=True)
def admin(request: Request) -> str:
    return f"hello {request.identity.claims['user']}"


@app.get("/const", const=True)
def const() -> str:
    return "computed once"


@app.delete("/items/:id")
def remove(request: Request) -> Response:
    return Response(204, {}, "")


@app.get("/events")
def events() -> SSEResponse:
    def gen():
        for n in range(3):
            yield SSEMessage(f"n={n}", event="tick")
    return SSEResponse(gen())


@app.get("/chunks")
async def chunks() -> StreamingResponse:
    async def gen():
        for part in ("a", "b", "c"):
            await asyncio.sleep(0)
            yield part
    return StreamingResponse(gen(), media_type="text/plain")


api = SubRouter("/api")


@api.get("/ping")
def ping() -> str:
    return "pong"


app.include_router(api)

if __name__ == "__main__":
    app.start(host=os.environ.get("ROBYN_HOST", "127.0.0.1"), port=int(os.environ.get("ROBYN_PORT", "8080")))
