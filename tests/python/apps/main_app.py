"""The app most HTTP integration tests run against: Robyn's public API, as users write it."""

import asyncio
import time
from typing import Optional

from robyn import Headers, QueryParams, Request, Response, Robyn, jsonify, status_codes
from robyn.exceptions import HTTPException
from robyn.types import Body, IPAddress, Method, PathParams, RequestBody, Url

app = Robyn(__file__)
# libwebsockets 4.1 (Debian 12) can only find headers it has no token for when asked by name:
# the common X- ones are always asked for; these are this app's own.
app.capture_headers("x-other", "x-big", "x-extra")

CONST_CALLS = 0


def describe_body(body):
    if isinstance(body, bytes):
        return {"type": "bytes", "hex": body.hex()}
    return {"type": type(body).__name__, "text": body}


# ---- the example --------------------------------------------------------------------


@app.get("/")
def index():
    return "Hello, world!"


@app.get("/users/:user_id")
async def get_user(request: Request, user_id: str):
    return {"user": {"id": user_id}}


@app.get("/health", const=True)
def health_check():
    global CONST_CALLS
    CONST_CALLS += 1
    return {"status": "healthy"}


@app.get("/const-calls")
def const_calls():
    return {"calls": CONST_CALLS}


@app.get("/const-text", const=True)
async def const_text():
    return Response(203, {"X-Const": "yes", "Content-Type": "text/plain"}, "computed once")


@app.post("/complex/:id")
async def complex_handler(request: Request, query_params: QueryParams, headers: Headers,
                          path_params: PathParams, body: RequestBody):
    return {
        "id": path_params["id"],
        "query": query_params.to_dict(),
        "user_agent": headers.get("user-agent"),
        "body_length": len(body),
    }


@app.get("/simple/:id")
def simple_handler(query_params, path_params, headers):
    return {"id": path_params["id"], "search": query_params.get("q", "")}


@app.get("/sync")
def slow(request):
    time.sleep(1)
    return "Done"


@app.get("/async-sleep")
async def async_slow():
    await asyncio.sleep(1)
    return "Done async"


@app.get("/fast")
def fast():
    return "fast"


# ---- router ---------------------------------------------------------------------------------


@app.get("/files/static")
def files_static():
    return "static"


@app.get("/files/:name")
def files_param(name: str):
    return {"param": name}


@app.get("/files/*rest")
def files_catchall(rest: str):
    return {"rest": rest}


@app.get("/files/:name/meta")
def files_meta(name: str):
    return {"meta": name}


@app.get("/deep/b")
def deep_b():
    return "deep-b"


@app.get("/deep/:x/c")
def deep_x_c(x: str):
    return {"x": x, "leaf": "c"}


@app.get("/everything/*path")
def everything(path: str):
    return {"path": path}


@app.get("/everything")
def everything_exact():
    return "exact"


@app.get("/multi")
def multi_get():
    return "multi-get"


@app.put("/multi")
def multi_put():
    return "multi-put"


@app.delete("/multi")
def multi_delete():
    return "multi-delete"


@app.post("/post-only")
def post_only():
    return "posted"


# ---- the request ----------------------------------------------------------------------------


def inspect_request(request: Request):
    return {
        "method": request.method,
        "url": {"scheme": request.url.scheme, "host": request.url.host, "path": request.url.path},
        "path_params": request.path_params,
        "query": request.query_params.to_dict(),
        "headers": request.headers.to_dict(),
        "body": describe_body(request.body),
        "ip_addr": request.ip_addr,
    }


for _method in ("get", "post", "put", "patch", "delete", "options"):
    getattr(app, _method)("/inspect")(inspect_request)
    getattr(app, _method)("/inspect/:first/:second")(inspect_request)


@app.get("/query")
def query(query_params: QueryParams):
    return {
        "get_a": query_params.get("a"),
        "get_missing": query_params.get("missing"),
        "get_missing_default": query_params.get("missing", "dflt"),
        "get_first_a": query_params.get_first("a"),
        "get_first_missing": query_params.get_first("missing"),
        "get_all_a": query_params.get_all("a"),
        "get_all_missing": query_params.get_all("missing"),
        "contains_a": query_params.contains("a"),
        "contains_missing": query_params.contains("missing"),
        "in_a": "a" in query_params,
        "to_dict": query_params.to_dict(),
        "keys": query_params.keys(),
        "values": query_params.values(),
        "items": [list(pair) for pair in query_params.items()],
        "empty": query_params.empty(),
    }


@app.get("/headers")
def headers_view(headers: Headers):
    result = {
        "get_lower": headers.get("cache-control"),
        "get_upper": headers.get("CACHE-CONTROL"),
        "get_mixed": headers.get("Cache-Control"),
        "get_missing": headers.get("x-missing"),
        "get_missing_default": headers.get("x-missing", "dflt"),
        "contains_upper": headers.contains("CACHE-CONTROL"),
        "contains_missing": headers.contains("X-Missing"),
        "in_mixed": "cAcHe-CoNtRoL" in headers,
        "user_agent": headers.get("User-Agent"),
        "to_dict": headers.to_dict(),
        "items": sorted([list(pair) for pair in headers.items()]),
    }
    headers.set("Cache-Control", "replaced")
    result["after_set"] = headers.get("cache-control")
    headers.append("cache-control", "appended")
    result["after_append"] = headers.get("CACHE-CONTROL")
    result["after_append_all"] = headers.get_all("Cache-Control")
    result["after_append_dict"] = headers.to_dict()["cache-control"]
    return result


@app.get("/user-agent")
def user_agent(headers: Headers):
    value = headers.get("user-agent")
    return {"user_agent": value, "has": headers.contains("User-Agent")}


@app.post("/body")
def body_view(request: Request):
    return describe_body(request.body)


@app.post("/body-length")
def body_length(body: RequestBody):
    return {"length": len(body)}


@app.post("/json")
def json_view(request: Request):
    try:
        return {"parsed": request.json()}
    except ValueError as exc:
        return Response(422, {"Content-Type": "text/plain"}, f"{type(exc).__name__}: {exc}")


# ---- injection ------------------------------------------------------------------------------


@app.post("/inject/type/:id")
def inject_by_type(req_obj: Request, qp: QueryParams, hd: Headers, pp: PathParams,
                   raw_body: RequestBody, m: Method, u: Url, ip: IPAddress):
    return {
        "request": type(req_obj).__name__,
        "query": qp.to_dict(),
        "header": hd.get("content-type"),
        "path_params": pp,
        "body": raw_body,
        "method": m,
        "url": [u.scheme, u.host, u.path],
        "ip": ip,
    }


class TextBody(Body):
    pass


@app.post("/inject/body-subclass")
def inject_body_subclass(payload: TextBody):
    return {"body": payload}


@app.post("/inject/name/:id")
async def inject_by_name(request, req, r, query_params, headers, path_params, body, method, url, ip_addr):
    return {
        "same_request": request is req is r,
        "request": type(request).__name__,
        "query": query_params.to_dict(),
        "header": headers.get("content-type"),
        "path_params": path_params,
        "body": body,
        "method": method,
        "url": [url.scheme, url.host, url.path],
        "ip": ip_addr,
    }


@app.get("/coerce/:n")
def coerce(n: int, f: float, flag: bool, ids: list[int], opt: Optional[int] = None, name="anon"):
    return {
        "n": [n, type(n).__name__],
        "f": [f, type(f).__name__],
        "flag": [flag, type(flag).__name__],
        "ids": ids,
        "opt": opt,
        "name": name,
    }


@app.get("/needs")
def needs(x: int):
    return {"x": x}


@app.get("/needs-async")
async def needs_async(x: int):
    return {"x": x}


@app.get("/by-path-or-query/:item")
def path_or_query(item, extra: str = "none"):
    return {"item": item, "extra": extra}


# ---- responses ------------------------------------------------------------------------------


@app.get("/resp/str")
def resp_str():
    return "plain text"


@app.get("/resp/bytes")
def resp_bytes():
    return b"\x00\x01\xffraw"


@app.get("/resp/dict")
def resp_dict():
    return {"a": 1, "nested": {"b": [1, 2]}, "text": "caf\u00e9"}


@app.get("/resp/list")
def resp_list():
    return [1, "two", None, True]


@app.get("/resp/response")
def resp_response():
    return Response(status_codes.HTTP_201_CREATED, {"X-Custom": "yes", "Content-Type": "text/plain"}, "created")


@app.get("/resp/response-bytes")
def resp_response_bytes():
    return Response(200, Headers({"Content-Type": "image/png"}), b"\x89PNG")


@app.get("/resp/tuple")
def resp_tuple():
    return ("I am a teapot", {"X-Tuple": "1"}, status_codes.HTTP_418_IM_A_TEAPOT)


@app.get("/resp/tuple-dict")
async def resp_tuple_dict():
    return ({"ok": True}, {"X-Tuple": "2"}, 202)


@app.get("/resp/jsonify")
def resp_jsonify():
    return jsonify({"b": 2, "list": [1, 2]})


@app.get("/resp/jsonify-response")
def resp_jsonify_response():
    return Response(200, {"Content-Type": "application/json"}, jsonify({"wrapped": True}))


@app.get("/resp/status-codes")
def resp_status_codes():
    return Response(status_codes.HTTP_404_NOT_FOUND, {}, "custom not found")


@app.get("/resp/no-content")
def resp_no_content():
    return Response(status_codes.HTTP_204_NO_CONTENT, {}, "")


@app.get("/resp/http-exception")
def resp_http_exception():
    raise HTTPException(status_codes.HTTP_403_FORBIDDEN, "no entry")


@app.get("/resp/multi-header")
def resp_multi_header():
    headers = Headers({})
    headers.append("X-Many", "one")
    headers.append("X-Many", "two")
    return Response(200, headers, "many")


# ---- errors ---------------------------------------------------------------------------------


@app.get("/boom")
def boom():
    raise RuntimeError("sync-boom-marker-4711")


@app.get("/boom-async")
async def boom_async():
    raise KeyError("async-boom-marker-4712")


@app.get("/bad-return")
def bad_return():
    return ("only", "two")


if __name__ == "__main__":
    app.start(host="127.0.0.1", port=8080)
