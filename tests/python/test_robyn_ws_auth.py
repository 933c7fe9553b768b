"""auth_required=True on a WebSocket route with Robyn's authentication API
(tests/python/apps/robyn_ws_auth_app.py): the upgrade is refused with the handler's HTTP 401
before any 101, or allowed with websocket.identity set.

The app needs the core helper's side of INTERFACES.md seam 5 (`app.websocket(...,
auth_required=...)`, `app.configure_authentication`, `app._authenticate`); until that is in
this tree the tests are expected to fail (strict: they must pass once it is).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from websocket import create_connection

from apps.ws_wire import RawWS, http
from conftest import AppServer, StartApp

RECV = 5.0

try:
    from robyn.app import Robyn as _Robyn

    _HAS_SEAM = hasattr(_Robyn, "_authenticate")
except ImportError:  # the extension is not built: every test here fails on its own
    _HAS_SEAM = True

pytestmark = pytest.mark.xfail(not _HAS_SEAM, strict=True,
                               reason="needs the core helper's app._authenticate (INTERFACES.md seam 5)")


@pytest.fixture(scope="module")
def server(module_app: StartApp) -> Iterator[AppServer]:
    yield module_app("robyn_ws_auth_app")


def still_serving(server: AppServer) -> None:
    assert http(server.address, "GET", "/") == (200, b"Hello, world!")
    ws = create_connection(f"ws://127.0.0.1:{server.port}/open", timeout=RECV)
    try:
        assert ws.recv() == "open"
    finally:
        ws.close()


@pytest.mark.parametrize("extra", [[], ["Authorization: Bearer wrong"], ["Authorization: Basic dmFsaWQ="]])
def test_refused_upgrade_is_the_401_as_http(server: AppServer, extra: list[str]) -> None:
    with RawWS(server.address) as ws:
        status = ws.handshake("/secure", extra)
        length = int(ws.header("content-length") or 0)
        deadline = time.monotonic() + RECV
        while len(ws.buf) < length and ws.readable_within(deadline - time.monotonic()):
            chunk = ws.sock.recv(65536)
            if not chunk:
                break
            ws.buf += chunk
        assert (status, ws.header("www-authenticate"), ws.buf) == (401, "BearerGetter", b"Unauthorized")
    still_serving(server)


def test_allowed_upgrade_has_the_identity(server: AppServer) -> None:
    ws = create_connection(f"ws://127.0.0.1:{server.port}/secure", timeout=RECV,
                           header=["Authorization: Bearer valid"])
    try:
        assert ws.recv() == "welcome batman"
        assert ws.recv() == "hello batman"
        ws.send("x")
        assert ws.recv() == "secure x"
    finally:
        ws.close()
    still_serving(server)
