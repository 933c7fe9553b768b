"""A WebSocket handler runs as a task named after its endpoint, made by the app's task factory
when it set one, and what follows the handler (on_close) runs either way.

The task is robyn.ws._HandlerTask when the loop has no task factory (it carries its
connection, so no per-connection callback object is needed); with a factory, the factory
makes it, as loop.create_task() would.
"""

from __future__ import annotations

import json

import pytest
from websockets.sync.client import connect

from apps.ws_wire import http, http_json, wait_until
from conftest import StartApp

RECV = 5.0


@pytest.mark.parametrize("factory", ["0", "1"])
def test_handler_task_name_factory_and_on_close(start_app: StartApp, factory: str) -> None:
    server = start_app("ws_task_app", env={"WS_TASK_FACTORY": factory})
    url = f"ws://127.0.0.1:{server.port}/who"
    for i in range(3):
        with connect(url, open_timeout=RECV) as ws:
            ws.send(f"hello {i}")
            assert json.loads(ws.recv(timeout=RECV)) == {
                "name": "websocket /who", "factory": factory == "1", "message": f"hello {i}"}
    wait_until(lambda: http_json(server.address, "GET", "/closed") == {"closed": 3}, 5.0,
               what="on_close for the three connections")
    assert http(server.address, "GET", "/") == (200, b"Hello, world!")
