"""The benchmark app for socketify (uWebSockets for Python): the same routes.

    SOCKETIFY_PORT=8080 python bench/apps/socketify_app.py

/ws/pubsub uses uWebSockets' own topics (`ws.subscribe`, `app.publish`), which
fan out in C++ without Python per subscriber. app.publish includes the sender
when it is subscribed, as on every other peer.
"""

from __future__ import annotations

import os

from socketify import App, CompressOptions, OpCode

HELLO = "Hello, world!"
HELLO_JSON = {"message": HELLO}

app = App()


def plaintext(res, req):
    res.end(HELLO)


async def json_handler(res, req):
    res.end(HELLO_JSON)


def user(res, req):
    q = req.get_query("q") or ""
    res.end(f"{req.get_parameter(0)} {q}")


def echo(res, req):
    # Streamed with on_data: `await res.get_data()` crashes socketify 0.0.31 under
    # load ("ffi.from_handle() ... points to garbage").
    chunks = []

    def on_data(res, chunk, is_end):
        if chunk is not None:
            chunks.append(bytes(chunk))
        if is_end:
            res.end(b"".join(chunks))

    res.on_aborted(lambda res: None)
    res.on_data(on_data)


app.get("/", plaintext)
app.get("/json", json_handler)
app.get("/user/:id", user)
app.post("/echo", echo)
app.get("/const", plaintext)


def echo_message(ws, message, opcode):
    ws.send(message, opcode)


app.ws(
    "/ws",
    {
        "compression": CompressOptions.DISABLED,
        "max_payload_length": 16 * 1024 * 1024,
        "idle_timeout": 120,
        "message": echo_message,
    },
)


def pubsub_upgrade(res, req, socket_context):
    key = req.get_header("sec-websocket-key")
    protocol = req.get_header("sec-websocket-protocol")
    extensions = req.get_header("sec-websocket-extensions")
    data = {"topic": req.get_query("topic") or "bench", "role": req.get_query("role") or "sub"}
    res.upgrade(key, protocol, extensions, socket_context, data)


def pubsub_open(ws):
    data = ws.get_user_data()
    if data["role"] != "pub":
        ws.subscribe(data["topic"])


def pubsub_message(ws, message, opcode):
    app.publish(ws.get_user_data()["topic"], message, opcode)


app.ws(
    "/ws/pubsub",
    {
        "compression": CompressOptions.DISABLED,
        "max_payload_length": 16 * 1024 * 1024,
        "max_backpressure": 64 * 1024 * 1024,
        "idle_timeout": 120,
        "upgrade": pubsub_upgrade,
        "open": pubsub_open,
        "message": pubsub_message,
    },
)

if __name__ == "__main__":
    port = int(os.environ.get("SOCKETIFY_PORT", "8080"))
    host = os.environ.get("SOCKETIFY_HOST", "127.0.0.1")
    app.listen({"port": port, "host": host}, lambda config: print(f"listening on {host}:{port}", flush=True))
    app.run()
