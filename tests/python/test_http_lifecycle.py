"""Starting, configuring and stopping a server process: start(), env overrides, startup and
shutdown handlers, graceful SIGINT/SIGTERM with requests in flight, and IPv6."""

from __future__ import annotations

import concurrent.futures
import signal
import socket
import time

import httpx
import pytest


@pytest.fixture
def marker_dir(tmp_path):
    path = tmp_path / "markers"
    path.mkdir()
    return path


def markers(path) -> list[str]:
    return sorted(entry.name for entry in path.iterdir())


def refused_after_signal(server) -> str:
    """New requests after the signal: 503 or no connection. The signal is handled
    asynchronously, so a request may still be served 200 just before draining starts;
    within 2 s every new request must be refused. Returns how it was refused."""
    deadline = time.monotonic() + 2.0
    while True:
        try:
            response = httpx.get(server.url("/"), timeout=5)
        except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError):
            return "no connection"
        if response.status_code == 503:
            assert response.text == "Service Unavailable"
            assert response.headers["connection"] == "close"
            return "503"
        assert response.status_code == 200
        assert time.monotonic() < deadline, "still serving new requests 2 s after the signal"
        time.sleep(0.02)


def test_start_with_host_and_port_arguments(start_app, assert_serving, free_port):
    # No ROBYN_HOST/ROBYN_PORT: the app passes port= to app.start() itself.
    port = free_port()
    server = start_app("limits_app", port=port,
                       env={"ROBYN_HOST": None, "ROBYN_PORT": None, "APP_PORT": str(port)})
    assert_serving(server)
    assert f"http://127.0.0.1:{port}" in server.log()


def test_environment_overrides_start_arguments(start_app, assert_serving, free_port):
    # The app asks for APP_PORT; ROBYN_PORT (set by the fixture) wins.
    asked = free_port()
    server = start_app("limits_app", env={"APP_PORT": str(asked)})
    assert server.port != asked
    assert_serving(server)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{asked}/", timeout=2)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_startup_and_shutdown_handlers(start_app, marker_dir, sig):
    server = start_app("lifecycle_app", env={"MARKER_DIR": str(marker_dir)})
    # Startup handlers, sync and async, ran before the first request was served.
    assert httpx.get(server.url("/markers")).json() == ["startup-async", "startup-sync"]
    code = server.stop(sig)
    assert code == 0, server.log()
    assert markers(marker_dir) == ["shutdown-async", "shutdown-sync", "startup-async", "startup-sync"]
    assert "Traceback" not in server.log()


@pytest.mark.parametrize("path", ["/slow", "/slow-async"])
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_in_flight_request_completes_after_signal(start_app, marker_dir, path, sig):
    server = start_app("lifecycle_app", env={"MARKER_DIR": str(marker_dir)})
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        slow = pool.submit(httpx.get, server.url(path), timeout=10)
        server.wait_for_log(f"{path[1:]} handler started")
        server.send_signal(sig)
        server.wait_for_log("Robyn shutting down")
        assert refused_after_signal(server) in ("503", "no connection")
        response = slow.result(timeout=10)
    assert response.status_code == 200
    assert response.text == ("slow done" if path == "/slow" else "slow-async done")
    assert server.wait_exit() == 0, server.log()
    assert "shutdown-sync" in markers(marker_dir)


def test_keep_alive_connection_during_shutdown(start_app, marker_dir, raw, build_request):
    server = start_app("lifecycle_app", env={"MARKER_DIR": str(marker_dir)})
    with raw(server) as idle, raw(server) as busy:
        idle.send(build_request("/"))
        assert idle.read_response().body == b"Hello, world!"
        busy.send(build_request("/slow"))
        server.wait_for_log("slow handler started")
        server.send_signal(signal.SIGTERM)
        server.wait_for_log("Robyn shutting down")
        refused_after_signal(server)  # draining has begun
        # A request on a connection opened before the signal is answered 503 and closed.
        idle.send(build_request("/"))
        late = idle.read_response()
        assert late.status == 503
        assert late.body == b"Service Unavailable"
        assert late.header("connection") == "close"
        assert idle.closed_by_server()
        # The one in flight still gets its answer.
        answer = busy.read_response()
        assert answer.status == 200
        assert answer.body == b"slow done"
    assert server.wait_exit() == 0, server.log()


def test_idle_connections_do_not_delay_exit(start_app, marker_dir, raw, build_request):
    server = start_app("lifecycle_app", env={"MARKER_DIR": str(marker_dir)})
    conns = [raw(server) for _ in range(5)]
    try:
        for conn in conns:
            conn.send(build_request("/"))
            assert conn.read_response().status == 200
        started = time.monotonic()
        assert server.stop(signal.SIGTERM) == 0
        assert time.monotonic() - started < 5
        for conn in conns:
            assert conn.closed_by_server(timeout=2)
    finally:
        for conn in conns:
            conn.close()


def test_repeated_signals_still_exit_cleanly(start_app, marker_dir):
    server = start_app("lifecycle_app", env={"MARKER_DIR": str(marker_dir)})
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        slow = pool.submit(httpx.get, server.url("/slow"), timeout=10)
        server.wait_for_log("slow handler started")
        server.send_signal(signal.SIGTERM)
        server.send_signal(signal.SIGINT)
        server.send_signal(signal.SIGTERM)
        assert slow.result(timeout=10).status_code == 200
    assert server.wait_exit() == 0, server.log()
    assert markers(marker_dir).count("shutdown-sync") == 1


def test_refused_after_exit(start_app, marker_dir):
    server = start_app("lifecycle_app", env={"MARKER_DIR": str(marker_dir)})
    assert server.stop(signal.SIGTERM) == 0
    with pytest.raises(OSError):
        socket.create_connection(server.address, timeout=2).close()


def test_ipv6_loopback(start_app, assert_serving):
    server = start_app("main_app", host="::1")
    assert server.base_url == f"http://[::1]:{server.port}"
    response = httpx.get(server.url("/inspect?x=1"))
    assert response.status_code == 200
    data = response.json()
    assert data["ip_addr"] == "::1"
    assert data["url"]["host"] == f"[::1]:{server.port}"
    assert httpx.get(server.url("/users/6")).json() == {"user": {"id": "6"}}
    assert_serving(server)
    # Only ::1 is bound: IPv4 loopback on that port is not this server.
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.port), timeout=2).close()
