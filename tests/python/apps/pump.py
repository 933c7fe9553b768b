"""The publisher that recovery tests race against, for the test apps that need one
(realtime_app, redis_history_app, redis_workers_app):

  POST /pump/:topic?n=N&rate=R[&pad=P]   app.publish(topic, {"i": 1..N}) (with "pad": P x's
                                         when P > 0) at R messages/s from the app's loop,
                                         paced against the clock; answers at once
  GET  /pump-done                        {"done": how many pumps have ended}
"""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

from robyn import Request, Response, Robyn


class Pumps:
    """What the routes share with an app that adds pumps of its own (threads)."""

    def __init__(self) -> None:
        self.done = 0
        self.lock = threading.Lock()
        self.tasks: set[asyncio.Task[None]] = set()

    def finished(self) -> None:
        with self.lock:
            self.done += 1


def _answer(status: int, value: Any) -> Response:
    return Response(status, {"Content-Type": "application/json"}, json.dumps(value))


def add_pump_routes(app: Robyn) -> Pumps:
    pumps = Pumps()

    async def pump(topic: str, n: int, rate: int, pad: int) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        for i in range(1, n + 1):
            app.publish(topic, {"i": i, "pad": "x" * pad} if pad else {"i": i})
            # R per second on average: paced against the clock, not by sleeping after each.
            ahead = start + i / rate - loop.time()
            if ahead > 0.001:
                await asyncio.sleep(ahead)
        pumps.finished()

    @app.post("/pump/:topic")
    async def start_pump(request: Request) -> Response:
        n = int(request.query_params.get("n", "1000"))
        rate = int(request.query_params.get("rate", "1000"))
        pad = int(request.query_params.get("pad", "0"))
        task = asyncio.get_running_loop().create_task(
            pump(request.path_params["topic"], n, rate, pad))
        pumps.tasks.add(task)
        task.add_done_callback(pumps.tasks.discard)
        return _answer(200, {"started": True})

    @app.get("/pump-done")
    def pump_done() -> Response:
        return _answer(200, {"done": pumps.done})

    return pumps
