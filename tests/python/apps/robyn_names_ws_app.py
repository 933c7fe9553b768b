"""A WebSocket registered the way Robyn's add_web_socket takes it: by event handlers."""

import os

from robyn import Robyn
from robyn.robyn import FunctionInfo

app = Robyn(__file__)


def connect(ws):
    return "hello"


async def message(ws, msg):
    return None if msg == "quiet" else f"echo:{msg}"


def close(ws):
    print("closed", ws.id, flush=True)


app.add_web_socket("/ws", {"connect": connect, "message": FunctionInfo(message, True, 2), "close": close})
app.start(host=os.environ.get("ROBYN_HOST", "127.0.0.1"), port=int(os.environ.get("ROBYN_PORT", "8080")))
