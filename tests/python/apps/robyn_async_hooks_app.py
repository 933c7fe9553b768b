"""Async global hooks in front of sync handlers, const routes, streams and unrouted
requests (tests/python/test_robyn_async_hooks.py)."""

import asyncio
import os
import threading

from robyn import Request, Response, Robyn, StreamingResponse

app = Robyn(__file__)


@app.before_request()
async def before(request: Request):
    await asyncio.sleep(0)
    if request.headers.get("x-deny") == "1":
        return Response(451, {"content-type": "text/plain"}, "denied by an async hook")
    request.headers.set("x-before", "async")
    return request


@app.after_request()
async def after(request: Request, response: Response):
    await asyncio.sleep(0)
    response.headers.set("x-after", "async")
    return response


@app.get("/")
def hello():
    return "Hello, world!"


@app.get("/sync")
def sync_handler(request: Request):
    return {"before": request.headers.get("x-before"), "thread": threading.current_thread().name}


@app.get("/const", const=True)
async def const():
    return "const through async hooks"


@app.get("/stream")
def stream():
    return StreamingResponse((chunk for chunk in ("a", "b", "c")), media_type="text/plain")


app.set_response_header("x-app", "1")
app.start(host=os.environ.get("ROBYN_HOST", "127.0.0.1"), port=int(os.environ.get("ROBYN_PORT", "8080")))
