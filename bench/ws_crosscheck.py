"""An independent WebSocket echo client (the `websockets` library), to cross-check wsload.

    bench/.venvs/tools/bin/python bench/ws_crosscheck.py --url ws://127.0.0.1:8080/ws \
        --connections 8 --rate 400 --duration 5

Each connection sends rate/connections messages per second at fixed times (the
same payload format as wsload: "T<16 hex ns><8 hex seq>" padded to
--message-size) and waits for each echo. Prints one JSON line: sent, received,
round trips/s, latency percentiles in microseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import time

import websockets


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[rank - 1]


async def one_connection(url: str, per_second: float, duration: float, size: int,
                         latencies: list[float], counts: dict[str, int], start_at: float) -> None:
    async with websockets.connect(url, max_size=None, compression=None) as ws:
        interval = 1.0 / per_second
        next_send = start_at
        seq = 0
        end = start_at + duration
        while True:
            now = time.monotonic()
            if next_send >= end:
                break
            if next_send > now:
                await asyncio.sleep(next_send - now)
            t0 = time.monotonic_ns()
            payload = f"T{t0:016x}{seq:08x}".ljust(size, "x")
            await ws.send(payload)
            counts["sent"] += 1
            reply = await asyncio.wait_for(ws.recv(), 10)
            t1 = time.monotonic_ns()
            if reply == payload:
                counts["received"] += 1
                latencies.append((t1 - t0) / 1000.0)
            else:
                counts["mismatch"] += 1
            seq += 1
            next_send += interval


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--rate", type=float, default=400.0, help="messages/s in total")
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("--message-size", type=int, default=32)
    args = ap.parse_args()
    latencies: list[float] = []
    counts = {"sent": 0, "received": 0, "mismatch": 0}
    start_at = time.monotonic() + 0.5
    per = args.rate / args.connections
    await asyncio.gather(*(
        one_connection(args.url, per, args.duration, args.message_size, latencies, counts,
                       start_at + i * (1.0 / args.rate))
        for i in range(args.connections)))
    latencies.sort()
    print(json.dumps({
        "client": f"websockets {websockets.__version__}",
        "connections": args.connections,
        "rate": args.rate,
        "duration": args.duration,
        "sent": counts["sent"],
        "received": counts["received"],
        "mismatch": counts["mismatch"],
        "received_per_s": counts["received"] / args.duration,
        "latency_us": {
            "p50": percentile(latencies, 0.5),
            "p90": percentile(latencies, 0.9),
            "p99": percentile(latencies, 0.99),
            "max": latencies[-1] if latencies else 0.0,
        },
    }))


if __name__ == "__main__":
    asyncio.run(main())
