"""The dashboard workload's peer: examples/dashboard's sampler and publisher on socketify
(uWebSockets for Python), without history (socketify has none).

    SOCKETIFY_PORT=8080 python bench/apps/socketify_dashboard.py

Ten times a second it reads the same /proc figures as examples/dashboard/sampler.py and
publishes one JSON sample to the topic every /live connection subscribes to; the fan-out is
uWebSockets' own, in C++.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path

from socketify import App, CompressOptions, OpCode

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples" / "dashboard"))
from sampler import Sampler  # noqa: E402

TOPIC = "dashboard"
RATE_HZ = 10

app = App()


def live_open(ws):
    ws.subscribe(TOPIC)


app.ws("/live", {
    "compression": CompressOptions.DISABLED,
    "max_payload_length": 64 * 1024,
    "max_backpressure": 1024 * 1024,
    "idle_timeout": 120,
    "open": live_open,
    "message": lambda ws, message, opcode: None,
})
app.get("/", lambda res, req: res.end("dashboard"))


async def publish_samples() -> None:
    sampler = Sampler()
    loop = asyncio.get_running_loop()
    period = 1.0 / RATE_HZ
    next_at = loop.time() + period
    offset = 0
    while True:
        await asyncio.sleep(max(0.0, next_at - loop.time()))
        next_at += period
        offset += 1
        sample = sampler.sample()
        sample.update(type="sample", offset=offset, t=int(time.time() * 1000),
                      sent_us=time.time_ns() // 1000, viewers=app.num_subscribers(TOPIC))
        app.publish(TOPIC, json.dumps(sample, separators=(",", ":")), OpCode.TEXT)


if __name__ == "__main__":
    port = int(os.environ.get("SOCKETIFY_PORT", "8080"))
    host = os.environ.get("SOCKETIFY_HOST", "127.0.0.1")
    app.listen({"port": port, "host": host}, lambda config: print(f"listening on {host}:{port}", flush=True))
    app.loop.ensure_future(publish_samples())
    app.run()
