"""The granian ASGI peer: "Hello, world!" for every GET, as the plaintext workloads ask.

    bench/.venvs/granian/bin/granian --interface asgi --workers 1 --runtime-threads 1 \
        --loop uvloop --http 1 --no-ws --working-dir bench/apps granian_asgi:app

A bare ASGI 3 application (no framework), so the figure is granian's ASGI server path itself;
bench/apps/starlette_app.py is the framework one, on uvicorn. Only the plaintext workloads
(`GET /`, unpipelined and pipelined) run against it; every path gets the same answer.
"""

from __future__ import annotations

HELLO = b"Hello, world!"
START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(HELLO)).encode())],
}
BODY = {"type": "http.response.body", "body": HELLO}


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    await send(START)
    await send(BODY)
