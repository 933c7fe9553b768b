"""The app of tests/python/test_logging.py: routes that make libwebsockets log."""

from robyn import Robyn, _gateway

app = Robyn(__file__)


@app.get("/")
def index():
    return "logging"


@app.get("/lws-warning")
def lws_warning(request):
    # On a sync worker thread: lws' logger is called off the event loop, as on the I/O thread.
    _gateway.lws_log_emit(_gateway.LLL_WARN, request.query_params.get("text", "a warning"))
    return "logged"


@app.get("/lws-burst")
async def lws_burst(request):
    # On the event loop, which cannot take the lines before this returns: the queue fills.
    count = int(request.query_params.get("count", "1"))
    for number in range(count):
        _gateway.lws_log_emit(_gateway.LLL_ERR, f"burst line {number}")
    return "logged"


@app.get("/const", const=True)
def const():
    return "stored"


@app.post("/echo")
async def echo(request):
    return {"got": len(request.body)}


@app.websocket("/ws")
async def ws_echo(websocket):
    async for message in websocket:
        if message == "bye":
            await websocket.close(4002, "asked to")
            return
        await websocket.send_text(message)


if __name__ == "__main__":
    app.start()
