"""The dashboard example (examples/dashboard/, run unchanged by apps/dashboard_app.py) with
real clients: the samples it publishes ten times a second, the minute of history a new
viewer gets at once, recovery after a reconnect with no gap and no duplicate, a position
that cannot be recovered, /samples, and robyn-load timing the server's own sends."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import requests
import websockets

from conftest import AppServer, StartApp

ROOT = Path(__file__).resolve().parents[2]
LOAD_TESTER = ROOT / "build" / "robyn-load"
SERIES = {"cpu", "load1", "mem_used_mb", "mem_total_mb", "net_rx_kbs", "net_tx_kbs",
          "loopback_kbs", "server_cpu", "server_rss_mb", "t", "sent_us", "viewers"}


@pytest.fixture(scope="module")
def dashboard(module_app: StartApp) -> AppServer:
    return module_app("dashboard_app")


def ws_url(server: AppServer, query: str = "") -> str:
    return f"ws://127.0.0.1:{server.port}/live{query}"


def get(server: AppServer, path: str) -> requests.Response:
    with requests.Session() as http:
        http.trust_env = False
        return http.get(server.url(path), timeout=5)


def wait_for_samples(server: AppServer, n: int, timeout: float = 10.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        held = get(server, "/samples").json()["samples"]
        if len(held) >= n:
            return list(held)
        assert time.monotonic() < deadline, f"only {len(held)} samples after {timeout} s"
        time.sleep(0.1)


async def receive(ws: Any, n: int, timeout: float = 10.0) -> list[dict[str, Any]]:
    frames = []
    async with asyncio.timeout(timeout):
        while len(frames) < n:
            frames.append(json.loads(await ws.recv()))
    return frames


def test_samples_come_ten_a_second_with_every_series(dashboard: AppServer) -> None:
    first = wait_for_samples(dashboard, 5)
    time.sleep(1.0)
    later = get(dashboard, "/samples").json()
    held = later["samples"]
    offsets = [s["offset"] for s in held]
    assert offsets == list(range(offsets[0], offsets[0] + len(offsets)))   # no gap
    assert 8 <= held[-1]["offset"] - first[-1]["offset"] <= 13            # 10 Hz, give or take
    assert set(held[-1]) == SERIES | {"offset"}
    assert 0.0 <= held[-1]["cpu"] <= 100.0
    assert 0 < held[-1]["mem_used_mb"] <= held[-1]["mem_total_mb"]
    assert held[-1]["server_rss_mb"] > 0
    assert isinstance(later["epoch"], str) and later["epoch"]


def test_samples_limit_and_its_errors(dashboard: AppServer) -> None:
    wait_for_samples(dashboard, 3)
    two = get(dashboard, "/samples?limit=2")
    assert two.status_code == 200 and len(two.json()["samples"]) == 2
    for bad in ("0", "601", "-1", "x", ""):
        answer = get(dashboard, f"/samples?limit={bad}")
        assert answer.status_code == 400, bad
        assert answer.json() == {"error": "limit must be a whole number from 1 to 600"}
    assert get(dashboard, "/samples?limit=1").status_code == 200   # still serving


def test_a_new_viewer_gets_what_is_held_then_live_samples(dashboard: AppServer) -> None:
    held = wait_for_samples(dashboard, 10)

    async def main() -> list[dict[str, Any]]:
        async with websockets.connect(ws_url(dashboard)) as ws:
            return await receive(ws, len(held) + 5)

    frames = asyncio.run(main())
    assert {f["topic"] for f in frames} == {"dashboard"}
    assert len({f["epoch"] for f in frames}) == 1
    offsets = [f["offset"] for f in frames]
    assert offsets[0] <= held[0]["offset"]                    # everything held, at once
    assert offsets == list(range(offsets[0], offsets[0] + len(offsets)))
    assert set(frames[-1]["data"]) == SERIES


def test_a_reconnect_gets_exactly_what_it_missed(dashboard: AppServer) -> None:
    async def main() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        async with websockets.connect(ws_url(dashboard)) as ws:
            before = await receive(ws, 3)
        last = before[-1]
        await asyncio.sleep(0.5)   # about five samples published while away
        query = f"?epoch={last['epoch']}&offset={last['offset']}"
        async with websockets.connect(ws_url(dashboard, query)) as ws:
            after = await receive(ws, 10)
        return before, after

    before, after = asyncio.run(main())
    assert [f["offset"] for f in after] == list(range(before[-1]["offset"] + 1,
                                                      before[-1]["offset"] + 11))
    assert {f["epoch"] for f in after} == {before[-1]["epoch"]}


@pytest.mark.parametrize("query", ["?epoch=another.1&offset=3", "?epoch={epoch}&offset=999999999"])
def test_a_position_that_cannot_be_recovered_gets_a_reset_then_the_minute(
        dashboard: AppServer, query: str) -> None:
    held = wait_for_samples(dashboard, 3)
    epoch = get(dashboard, "/samples").json()["epoch"]

    async def main() -> list[dict[str, Any]]:
        async with websockets.connect(ws_url(dashboard, query.format(epoch=epoch))) as ws:
            return await receive(ws, len(held) + 1)

    frames = asyncio.run(main())
    assert frames[0] == {"type": "reset"}
    assert frames[1]["offset"] <= held[0]["offset"] and frames[1]["epoch"] == epoch
    assert get(dashboard, "/samples?limit=1").status_code == 200


def test_a_malformed_position_starts_over_without_a_reset(dashboard: AppServer) -> None:
    wait_for_samples(dashboard, 3)

    async def main() -> dict[str, Any]:
        async with websockets.connect(ws_url(dashboard, "?epoch=x&offset=notanumber")) as ws:
            return dict(json.loads(await asyncio.wait_for(ws.recv(), 5)))

    first = asyncio.run(main())
    assert first["topic"] == "dashboard" and isinstance(first["offset"], int)


def test_robyn_load_times_the_servers_own_sends(dashboard: AppServer) -> None:
    subprocess.run(["make", "-s", "load-tester"], cwd=ROOT, check=True, timeout=120)
    proc = subprocess.run([str(LOAD_TESTER), "--url", ws_url(dashboard), "--mode", "subscribe",
                           "--stamp-field", "sent_us", "--connections", "20", "--duration", "1",
                           "--warmup", "0.5", "--json", "--quiet"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["established"] == 20 and summary["errors"] == 0
    # 20 viewers x 10 samples/s x 1 s, each timed; the history sent on connect is not measured.
    assert 150 <= summary["received_measured"] <= 250, summary
    assert summary["latency_us"]["p50"] > 0
    bad = subprocess.run([str(LOAD_TESTER), "--url", ws_url(dashboard), "--mode", "echo",
                          "--stamp-field", "sent_us"], capture_output=True, text=True, timeout=10)
    assert bad.returncode == 1
    assert bad.stderr == ("wsload: --stamp-field applies to --mode subscribe (other modes time "
                          "their own messages)\n")
