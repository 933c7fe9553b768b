"""The app of the HTTP/1.1 wire tests (tests/python/test_http11_*.py, docs/http.md).

Robyn's public API only, as users write it. Note what it does *not* do: it never calls
`app.capture_headers(...)`, so any header a handler sees got there by itself.

From the environment (besides ROBYN_HOST / ROBYN_PORT and the ROBYN_* limits, which the
server reads itself):
- APP_START_LIMITS: a JSON object of keywords for `app.start(...)` (`{"max_header_size": 2048}`).
- APP_CONNECT_ROUTE: "connect": a CONNECT route takes every authority; "get": a GET route
  does (so that a CONNECT finds a path with routes for other methods only).
- APP_NOFILE: lowers this process's RLIMIT_NOFILE (soft and hard) to that many descriptors
  before the server starts, to test what it does at the fd limit.
"""

import asyncio
import hashlib
import json
import os
import resource
import time

from robyn import Headers, Request, Response, Robyn

app = Robyn(__file__)

ALL_METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE")


def register(method, path, handler):
    """Registers through the method's decorator (`app.get`, ..., `app.trace`)."""
    decorator = getattr(app, method.lower(), None)
    if decorator is None:
        # app.trace is new with the HTTP/1.1 work; test_http11_requests checks that it
        # exists. Until then the route still gets registered, so the rest of the suite runs.
        app.add_route(method, path, handler)
    else:
        decorator(path)(handler)


def raw_body(request):
    body = request.body
    return body.encode() if isinstance(body, str) else body


def describe(request: Request):
    body = raw_body(request)
    return {
        "method": request.method,
        "path": request.url.path,
        "host": request.url.host,
        "path_params": request.path_params,
        "query": request.query_params.to_dict(),
        "headers": [list(pair) for pair in request.headers.multi_items()],
        "headers_dict": request.headers.to_dict(),
        "body_length": len(body),
        "body_sha256": hashlib.sha256(body).hexdigest(),
        "body": body.decode("utf-8", "replace") if len(body) <= 256 else None,
    }


# ---- basics -------------------------------------------------------------------------------


@app.get("/")
def index():
    return "Hello, world!"


@app.get("/ok")
def ok():
    return "ok"


@app.post("/post-only")
def post_only():
    return "posted"


@app.get("/const", const=True)
def const():
    return "const!"


@app.get("/slow")
def slow():
    time.sleep(0.3)
    return "slow"


@app.get("/slow-async")
async def slow_async():
    await asyncio.sleep(0.3)
    return "slow-async"


@app.get("/users/:user_id")
def user(user_id: str):
    return {"user_id": user_id}


@app.get("/repeated")
def repeated(request: Request):
    headers = request.headers
    return {
        "get": headers.get("X-DUP"),
        "get_all": headers.get_all("x-Dup"),
        "to_dict": headers.to_dict().get("x-dup"),
        "contains": "X-dup" in headers,
    }


@app.get("/custom")
def custom(request: Request):
    return {"value": request.headers.get("x-custom-thing")}


# ---- the echo: every method, any path below /echo ------------------------------------------


for _method in ALL_METHODS:
    if _method == "HEAD":
        continue  # HEAD is served by the GET route (docs/http.md)
    register(_method, "/echo", describe)
    register(_method, "/echo/*rest", describe)


# ---- one route per method ------------------------------------------------------------------


def method_route(method):
    def handler():
        return Response(200, {"X-Route": method, "Content-Type": "text/plain"}, f"{method} route")

    handler.__name__ = f"route_{method.lower()}"
    return handler


for _method in ALL_METHODS:
    register(_method, "/m", method_route(_method))


# app.trace, spelled as users will write it (when the API has it).
if hasattr(app, "trace"):
    @app.trace("/t")
    def trace_route():
        return "traced"
else:
    app.add_route("TRACE", "/t", lambda: "traced")


# CONNECT targets are authorities, routed as the path "host:port" (docs/http.md). Route
# patterns cannot hold a ':' inside a segment, so a route for them takes the authority as a
# parameter, and then takes every authority: only with APP_CONNECT_ROUTE set, since the
# other tests want CONNECT without a route.
if os.environ.get("APP_CONNECT_ROUTE") == "connect":
    @app.connect("/:authority")
    def tunnel(authority: str):
        return {"tunnel": authority}
elif os.environ.get("APP_CONNECT_ROUTE") == "get":
    @app.get("/:authority")
    def not_a_tunnel(authority: str):
        return {"get": authority}


# ---- responses a handler must not be able to send as they are ---------------------------------


BAD_HEADERS = {
    "nul-value": ("X-Bad-Nul", "a\x00b"),
    "nul-name": ("X-Bad\x00Name", "v"),
    "cr-value": ("X-Bad-Cr", "a\rb"),
    "lf-value": ("X-Bad-Lf", "a\nb"),
    "crlf-injection": ("X-Bad-Split", "v\r\nSet-Cookie: injected=1"),
    "lf-name": ("X-Bad\nName", "v"),
}


@app.get("/bad-header/:kind")
def bad_header(kind: str):
    name, value = BAD_HEADERS[kind]
    return Response(200, {name: value}, "should never be sent")


@app.get("/bad-header-headers/:kind")
def bad_header_headers(kind: str):
    name, value = BAD_HEADERS[kind]
    headers = Headers({})
    headers.append(name, value)
    return Response(200, headers, "should never be sent")


@app.get("/bad-header-async/:kind")
async def bad_header_async(kind: str):
    name, value = BAD_HEADERS[kind]
    return Response(200, {name: value}, "should never be sent")


if __name__ == "__main__":
    nofile = os.environ.get("APP_NOFILE")
    if nofile:
        resource.setrlimit(resource.RLIMIT_NOFILE, (int(nofile), int(nofile)))
    options = json.loads(os.environ.get("APP_START_LIMITS") or "{}")
    app.start(host="127.0.0.1", port=8080, **options)
