"""Startup and shutdown handlers (sync and async) that leave marker files in $MARKER_DIR,
and slow routes for graceful-shutdown tests."""

import asyncio
import os
import sys
import time
from pathlib import Path

from robyn import Robyn

app = Robyn(__file__)
MARKERS = Path(os.environ["MARKER_DIR"])


def mark(name: str) -> None:
    (MARKERS / name).write_text(str(os.getpid()))


@app.startup_handler
def startup_sync():
    mark("startup-sync")


@app.startup_handler
async def startup_async():
    await asyncio.sleep(0.01)
    mark("startup-async")


@app.shutdown_handler
def shutdown_sync():
    mark("shutdown-sync")


@app.shutdown_handler
async def shutdown_async():
    await asyncio.sleep(0.01)
    mark("shutdown-async")


@app.get("/")
def index():
    return "Hello, world!"


@app.get("/markers")
def markers():
    return sorted(path.name for path in MARKERS.iterdir())


@app.get("/slow")
def slow():
    print("slow handler started", file=sys.stderr, flush=True)
    time.sleep(1)
    return "slow done"


@app.get("/slow-async")
async def slow_async():
    print("slow-async handler started", file=sys.stderr, flush=True)
    await asyncio.sleep(1)
    return "slow-async done"


if __name__ == "__main__":
    app.start(host="127.0.0.1", port=8080)
