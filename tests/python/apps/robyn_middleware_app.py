"""Middlewares, app headers and exception handlers (tests/python/test_robyn_middleware.py)."""

import asyncio
import contextvars
import os

from robyn import Headers, Request, Response, Robyn

app = Robyn(__file__)
trace: contextvars.ContextVar[str] = contextvars.ContextVar("trace", default="unset")
seen_by_worker: list[str] = []


@app.before_request()
def stamp(request: Request):
    request.headers.set("x-stamped", "yes")
    if request.headers.get("x-break-before") == "1":
        raise RuntimeError("before hook broke")
    return request


@app.after_request()
def mark(request: Request, response: Response):
    response.headers.set("x-after", f"{request.method} {response.status_code}")
    if request.headers.get("x-break-after") == "1":
        raise RuntimeError("after hook broke")
    return response


@app.get("/")
def hello():
    return "Hello, world!"


@app.get("/plain")
def plain(request: Request):
    return f"stamped={request.headers.get('x-stamped')} added={request.headers.get('x-added')}"


@app.get("/seen")
def seen(request: Request):
    return {"server": request.headers.get("server"), "x-many": request.headers.get_all("x-many"),
            "x-added": request.headers.get("x-added")}


# ---- path hooks: sync, async, zero / one / two parameters, order ---------------------

@app.before_request("/order")
def order_first(request: Request):
    request.headers.set("x-order", "first")
    return request


@app.before_request("/order")
async def order_second(request: Request):
    await asyncio.sleep(0)
    request.headers.set("x-order", request.headers.get("x-order") + ",second")
    return request


@app.after_request("/order")
def order_after_none():
    return None  # changes nothing


@app.after_request("/order")
async def order_after(response: Response):
    response.description = response.description + " [after]"
    return response


@app.get("/order")
def order(request: Request):
    return request.headers.get("x-order")


@app.before_request("/users/:id")
def users_hook(request: Request):
    request.headers.set("x-user-hook", request.path_params.get("id", "?"))
    return request


@app.get("/users/:id")
def user(request: Request, id: str):
    return {"id": id, "hook": request.headers.get("x-user-hook")}


@app.post("/users/:name")
def post_user(request: Request, name: str):
    return {"name": name, "hook": request.headers.get("x-user-hook")}


# Robyn's middleware router picks the most specific pattern: static, then :param, then *rest.
@app.before_request("/files/*rest")
def files_any(request: Request):
    request.headers.set("x-pattern", "*rest")
    return request


@app.before_request("/files/:name")
def files_param(request: Request):
    request.headers.set("x-pattern", ":name")
    return request


@app.before_request("/files/readme")
def files_readme(request: Request):
    request.headers.set("x-pattern", "readme")
    return request


@app.get("/files/readme")
def files_readme_route(request: Request):
    return request.headers.get("x-pattern")


@app.get("/files/:name")
def files_name_route(request: Request, name: str):
    return request.headers.get("x-pattern")


@app.get("/files/deep/*path")
def files_deep_route(request: Request):
    return request.headers.get("x-pattern")


@app.before_request("/nothing/routed/here")
def never_runs(request: Request):
    return request


# ---- short circuits -------------------------------------------------------------------

@app.before_request("/blocked/response")
def block_with_response():
    return Response(401, Headers({"x-why": "no"}), "blocked")


@app.before_request("/blocked/dict")
def block_with_dict(request: Request):
    return {"blocked": True}


@app.before_request("/blocked/tuple")
def block_with_tuple(request: Request):
    return ("denied", {"x-why": "tuple"}, 403)


@app.before_request("/blocked/str")
async def block_with_str(request: Request):
    return "just text"


@app.before_request("/blocked/new_request")
def replace_request(request: Request):
    replaced = Request(request.query_params, Headers({"x-replaced": "1"}), request.path_params,
                       "replaced body", request.method, request.url, {}, {}, None, request.ip_addr)
    return replaced


def never_called():
    raise AssertionError("the handler of a short-circuited route ran")


for path in ("/blocked/response", "/blocked/dict", "/blocked/tuple", "/blocked/str"):
    app.add_route("GET", path, never_called)


@app.get("/blocked/new_request")
def new_request(request: Request):
    return f"{request.headers.get('x-replaced')} {request.body}"


# ---- contextvars ------------------------------------------------------------------------

@app.before_request("/ctx/sync")
def ctx_sync_before(request: Request):
    trace.set("sync-before")
    return request


@app.after_request("/ctx/sync")
def ctx_sync_after(response: Response):
    response.headers.set("x-trace", trace.get())
    return response


@app.get("/ctx/sync")
def ctx_sync():
    seen = trace.get()
    trace.set(seen + "+handler")
    return seen


@app.get("/ctx/leak")
def ctx_leak():
    # Runs on the same worker threads: a value set by an earlier request must not be seen.
    return trace.get()


@app.before_request("/ctx/async")
async def ctx_async_before(request: Request):
    trace.set("async-before")
    return request


@app.after_request("/ctx/async")
async def ctx_async_after(response: Response):
    response.headers.set("x-trace", trace.get())
    return response


@app.get("/ctx/async")
async def ctx_async():
    seen = trace.get()
    trace.set(seen + "+handler")
    return seen


# ---- const routes -----------------------------------------------------------------------

calls = {"const": 0}


@app.get("/const/hooked", const=True)
def const_hooked():
    calls["const"] += 1
    return Response(200, Headers({"x-const": "1"}), f"const computed {calls['const']} time(s)")


@app.after_request("/const/hooked")
def const_after(response: Response):
    response.description = response.description + " +after"
    return response


# ---- errors and exception handlers ---------------------------------------------------

@app.get("/raise/before_handler")
def raise_before_handler():
    raise ValueError("no handler yet")


@app.exception
def on_error(error: Exception):
    return Response(500, Headers({"content-type": "text/plain"}), f"handled: {error}")


@app.get("/raise/sync")
def raise_sync():
    raise ValueError("sync boom")


@app.get("/raise/async")
async def raise_async():
    await asyncio.sleep(0)
    raise KeyError("async boom")


@app.get("/query/:n")
def typed(n: int):
    return {"n": n}


# ---- app headers --------------------------------------------------------------------------

@app.get("/headers/own")
def own_header():
    return Response(200, Headers({"server": "mine", "content-type": "text/plain"}), "own")


@app.get("/headers/excluded")
def excluded():
    return "excluded"


app.add_response_header("server", "core-test")
app.add_response_header("x-many", "a")
app.add_response_header("x-many", "b")
app.set_request_header("x-added", "by-app")
app.exclude_response_headers_for(["/headers/excluded"])

app.start(host=os.environ.get("ROBYN_HOST", "127.0.0.1"), port=int(os.environ.get("ROBYN_PORT", "8080")))
