"""Graceful shutdown with WebSockets open: SIGTERM / SIGINT close every connection with 1001,
the handlers' loops end, on_close runs for each (counted in $WS_CLOSE_LOG), and the process
exits 0 without using up its grace period.
"""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import pytest
from websockets.asyncio.client import connect as aconnect
from websockets.exceptions import ConnectionClosed

from apps.ws_wire import OP_CLOSE, RawWS, close_payload, encode_frame, http_json, wait_until
from conftest import AppServer, StartApp

RECV = 5.0


def ws_url(server: AppServer, path: str) -> str:
    return f"ws://127.0.0.1:{server.port}{path}"


async def close_code_after(ws, timeout: float) -> tuple[int | None, list]:
    """Reads until the server closes; returns (the close code it sent, messages before it)."""
    messages = []
    try:
        while True:
            messages.append(await asyncio.wait_for(ws.recv(), timeout))
    except ConnectionClosed as exc:
        return (exc.rcvd.code if exc.rcvd is not None else None), messages


def closed_lines(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_closes_every_connection_with_1001_and_runs_on_close(
        start_app: StartApp, tmp_path: Path, sig: signal.Signals) -> None:
    chat_clients = 50 if sig == signal.SIGTERM else 10
    close_log = tmp_path / "closed.log"
    server = start_app("ws_app", env={"WS_CLOSE_LOG": str(close_log)})

    async def main() -> tuple[list, float]:
        chats = []
        for start in range(0, chat_clients, 25):
            chats += await asyncio.gather(*[aconnect(ws_url(server, "/chat/bye"), open_timeout=RECV)
                                            for _ in range(start, min(chat_clients, start + 25))])
        syncs = [await aconnect(ws_url(server, "/sync"), open_timeout=RECV) for _ in range(2)]
        for ws in chats:
            assert await asyncio.wait_for(ws.recv(), RECV) == "welcome"
        for ws in syncs:
            assert await asyncio.wait_for(ws.recv(), RECV) == "sync-hello"
            await ws.send("ping")  # the sync handler is inside its `for message in websocket`
            assert await asyncio.wait_for(ws.recv(), RECV) == "sync:ping"
        await asyncio.to_thread(
            wait_until,
            lambda: http_json(server.address, "GET", "/subscribers/bye")["count"] == chat_clients,
            5.0, 0.02, "every chat client subscribed")
        assert closed_lines(close_log) == []
        started = time.monotonic()
        server.send_signal(sig)
        results = await asyncio.gather(*[close_code_after(ws, RECV) for ws in chats + syncs])
        return results, started

    results, started = asyncio.run(main())
    # every client got a close frame 1001 ("going away"), and no message before it
    assert [code for code, _ in results] == [1001] * (chat_clients + 2)
    assert [messages for _, messages in results] == [[]] * (chat_clients + 2)
    assert server.wait_exit(8.0) == 0
    # the handlers all ended at once: no waiting out the 10 s grace period
    assert time.monotonic() - started < 6.0, time.monotonic() - started
    lines = closed_lines(close_log)
    chat_ids = [line.split()[1] for line in lines if line.startswith("chat ")]
    sync_ids = [line.split()[1] for line in lines if line.startswith("sync ")]
    assert len(chat_ids) == chat_clients and len(set(chat_ids)) == chat_clients, lines
    assert len(sync_ids) == 2 and len(set(sync_ids)) == 2, lines
    assert len(lines) == chat_clients + 2
    log = server.log()
    assert "Traceback" not in log, log


def test_shutdown_with_no_websockets_is_quick(start_app: StartApp) -> None:
    server = start_app("ws_app")
    assert http_json(server.address, "GET", "/stats")["connections"] == 0
    started = time.monotonic()
    assert server.stop(signal.SIGTERM) == 0
    assert time.monotonic() - started < 3.0


def test_close_right_after_the_101_still_runs_on_close(start_app: StartApp, tmp_path: Path) -> None:
    """A close frame sent the moment the 101 arrives: the open and the close reach Python
    (nearly) together. The close handshake completes, on_close runs once for each, and SIGTERM
    is not held up by a handler waiting for a close it already missed."""
    close_log = tmp_path / "closed.log"
    server = start_app("ws_app", env={"WS_CLOSE_LOG": str(close_log)})
    for n in range(1, 11):
        with RawWS(server.address) as ws:
            assert ws.handshake("/chat/quick") == 101
            ws.send_raw(encode_frame(OP_CLOSE, close_payload(1000, "bye")))
            code, _, messages = ws.expect_close(RECV)
            assert code == 1000
            assert messages in ([], ["welcome"])  # the greeting may precede the close
            assert ws.eof_within(RECV)
        wait_until(lambda: len(closed_lines(close_log)) == n, RECV, what=f"{n} on_close runs")
    assert all(line.startswith("chat ") for line in closed_lines(close_log))
    started = time.monotonic()
    assert server.stop(signal.SIGTERM) == 0
    assert time.monotonic() - started < 3.0
    assert "Traceback" not in server.log(), server.log()
