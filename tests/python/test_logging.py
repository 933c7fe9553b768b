"""Logging (robyn/logger.py, gateway/lwslog.c): the start line, libwebsockets' lines in the
"robyn.lws" logger at their levels, and the level from --log-level / ROBYN_LOG_LEVEL."""

from __future__ import annotations

import logging
import socket
import platform
import re
import time
import urllib.request

import pytest

from conftest import AppServer, StartApp

import robyn
from robyn import _gateway
from robyn.logger import lws_mask_for


def _get(server: AppServer, path: str) -> str:
    with urllib.request.urlopen(f"http://{server.host}:{server.port}{path}", timeout=5) as answer:
        return answer.read().decode()


def _wait_for(server: AppServer, text: str, timeout: float = 5.0) -> str:
    deadline = time.monotonic() + timeout
    while text not in server.log():
        assert time.monotonic() < deadline, f"{text!r} not logged:\n{server.log()}"
        time.sleep(0.05)
    return server.log()


def test_the_start_line_names_the_address_and_the_versions(start_app: StartApp):
    server = start_app("logging_app")
    server.stop()
    lines = [line for line in server.log().splitlines() if "listening on" in line]
    assert lines == [
        f"INFO:robyn:Robyn {robyn.__version__} listening on http://127.0.0.1:{server.port} "
        f"(processes 1, workers 1; libwebsockets {_gateway.lws_version().rstrip('-')}, "
        f"Python {platform.python_version()})"]
    assert re.match(r"\d+\.\d+", _gateway.lws_version())


def test_several_processes_write_one_start_line(start_app: StartApp):
    server = start_app("logging_app", env={"ROBYN_PROCESSES": "2"})
    server.stop()
    lines = [line for line in server.log().splitlines() if "listening on" in line]
    assert len(lines) == 1, server.log()
    assert lines[0].startswith(f"INFO:robyn:Robyn {robyn.__version__} listening on "
                               f"http://127.0.0.1:{server.port} (processes 2, workers 1; ")
    assert re.search(r"; supervisor pid \d+$", lines[0])


def test_libwebsockets_notices_reach_logging_at_debug(start_app: StartApp):
    server = start_app("logging_app", env={"ROBYN_LOG_LEVEL": "DEBUG"})
    log = _wait_for(server, "DEBUG:robyn.lws:LWS: ")
    assert f"DEBUG:robyn.lws:LWS: {_gateway.lws_version()}" in log
    assert "gateway[lws" not in log  # nothing bypasses logging


def test_each_process_routes_its_own_libwebsockets_lines(start_app: StartApp):
    server = start_app("logging_app", env={"ROBYN_LOG_LEVEL": "DEBUG", "ROBYN_PROCESSES": "2"})
    deadline = time.monotonic() + 5
    while server.log().count("DEBUG:robyn.lws:LWS: ") < 2:
        assert time.monotonic() < deadline, server.log()
        time.sleep(0.05)


def test_libwebsockets_is_quiet_at_info(start_app: StartApp):
    server = start_app("logging_app")
    assert _get(server, "/") == "logging"
    server.stop()
    assert "robyn.lws" not in server.log()


def test_a_libwebsockets_warning_is_a_logging_warning(start_app: StartApp):
    server = start_app("logging_app")
    assert _get(server, "/lws-warning?text=disk%20on%20fire") == "logged"
    _wait_for(server, "WARNING:robyn.lws:disk on fire\n")


@pytest.mark.parametrize("env", [{"ROBYN_LOG_LEVEL": "ERROR"}, {"ROBYN_LOG_LEVEL": "critical"}])
def test_the_level_filters_libwebsockets_lines(env, start_app: StartApp):
    server = start_app("logging_app", env=env)
    assert _get(server, "/lws-warning?text=filtered") == "logged"
    assert _get(server, "/lws-burst?count=1") == "logged"
    server.stop()
    log = server.log()
    assert "filtered" not in log and "listening on" not in log
    assert ("ERROR:robyn.lws:burst line 0" in log) is (env["ROBYN_LOG_LEVEL"] == "ERROR")


def test_a_burst_beyond_the_queue_is_counted_not_lost_silently(start_app: StartApp):
    server = start_app("logging_app")
    assert _get(server, "/lws-burst?count=4100") == "logged"
    log = _wait_for(server, "log lines (libwebsockets' or the access log's) were dropped")
    assert "ERROR:robyn.lws:burst line 0\n" in log and "ERROR:robyn.lws:burst line 4095\n" in log
    assert "burst line 4096\n" not in log
    assert ("WARNING:robyn:4 log lines (libwebsockets' or the access log's) were dropped: they "
            "came faster than the event loop took them") in log
    assert _get(server, "/") == "logging"  # still serving


def test_the_lws_mask_follows_the_logger_level():
    everything = (_gateway.LLL_ERR | _gateway.LLL_WARN | _gateway.LLL_NOTICE | _gateway.LLL_INFO
                  | _gateway.LLL_DEBUG | _gateway.LLL_USER)
    assert lws_mask_for(logging.DEBUG) == everything
    assert lws_mask_for(logging.INFO) == _gateway.LLL_ERR | _gateway.LLL_WARN | _gateway.LLL_USER
    assert lws_mask_for(logging.WARNING) == _gateway.LLL_ERR | _gateway.LLL_WARN
    assert lws_mask_for(logging.ERROR) == _gateway.LLL_ERR
    assert lws_mask_for(logging.CRITICAL) == 0


# ---- the access log -----------------------------------------------------------------------


def _exchange(server: AppServer, request: bytes) -> bytes:
    """Sends one request on its own connection (closed by the server after the answer) and
    returns every byte of the answer."""
    with socket.create_connection((server.host, server.port), timeout=5) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def _access_lines(server: AppServer, count: int) -> list[str]:
    deadline = time.monotonic() + 5
    while True:
        lines = [line[len("INFO:robyn.access:"):] for line in server.log().splitlines()
                 if line.startswith("INFO:robyn.access:") and "/__ready_probe__" not in line]
        if len(lines) >= count:
            return lines
        assert time.monotonic() < deadline, server.log()
        time.sleep(0.05)


ACCESS_LINE = re.compile(r"^127\.0\.0\.1 (\S+) (\S+) (\d{3}) (\d+) (\d+)$")


def test_the_access_log_has_a_line_per_answer(start_app: StartApp):
    server = start_app("logging_app", env={"ROBYN_ACCESS_LOG": "true"})
    sent = [
        (b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", "GET", "/", "200"),
        (b"GET /const HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", "GET", "/const", "200"),
        (b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
         "POST", "/echo", "200"),
        (b"GET /nowhere/a%20b%0A%22 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
         "GET", "/nowhere/a%20b%0A%22", "404"),
        (b"HEAD / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", "HEAD", "/", "200"),
        (b"GET /x HTTP/1.1\r\nHost: t\r\nBad Header\r\n\r\n", "-", "-", "400"),
    ]
    sizes = []
    for request, *_ in sent:
        sizes.append(len(_exchange(server, request)))
    lines = _access_lines(server, len(sent))
    assert len(lines) == len(sent), lines
    for line, (_, method, path, status), size in zip(lines, sent, sizes):
        match = ACCESS_LINE.match(line)
        assert match, line
        assert match.groups()[:4] == (method, path, status, str(size)), line
    # Python's answers take time; C's (const, 404, a bad head) are given at once.
    assert int(ACCESS_LINE.match(lines[0]).group(5)) > 0
    assert [ACCESS_LINE.match(lines[i]).group(5) for i in (1, 3, 5)] == ["0", "0", "0"]
    assert _get(server, "/") == "logging"  # still serving


CLOSE_LINE = re.compile(r"^127\.0\.0\.1 GET /ws close (\d{4}) (\d+)$")


def test_the_access_log_has_a_websocket_open_and_close_with_its_code(start_app: StartApp):
    from websockets.sync.client import connect

    server = start_app("logging_app", env={"ROBYN_ACCESS_LOG": "true"})
    url = f"ws://{server.host}:{server.port}/ws"
    with connect(url, open_timeout=5) as ws:  # the client closes: 4001
        ws.send("hi")
        assert ws.recv(timeout=5) == "hi"
        ws.close(4001, "done")
    with connect(url, open_timeout=5) as ws:  # the server closes: 4002
        ws.send("bye")
        with pytest.raises(Exception):
            ws.recv(timeout=5)
    lines = _access_lines(server, 4)
    assert len(lines) == 4, lines
    assert ACCESS_LINE.match(lines[0]).groups()[:4] == ("GET", "/ws", "101", "0"), lines
    assert [CLOSE_LINE.match(lines[1]).group(1), CLOSE_LINE.match(lines[3]).group(1)] == [
        "4001", "4002"], lines
    assert int(CLOSE_LINE.match(lines[1]).group(2)) > 0  # how long the connection lived, µs
    assert _get(server, "/") == "logging"  # still serving


@pytest.mark.parametrize("env, on", [({}, False), ({"ROBYN_ACCESS_LOG": "0"}, False),
                                     ({"ROBYN_ACCESS_LOG": "on"}, True)])
def test_the_access_log_is_off_unless_asked(env, on, start_app: StartApp):
    server = start_app("logging_app", env=env)
    assert _get(server, "/") == "logging"
    server.stop()
    assert ("INFO:robyn.access:127.0.0.1 GET / 200 " in server.log()) is on


def test_the_access_log_is_on_in_dev_mode_unless_refused():
    from robyn.argument_parser import parse

    assert parse(["--dev"], {}).access_log is True
    assert parse(["--dev", "--no-access-log"], {}).access_log is False
    assert parse([], {}).access_log is False
    assert parse(["--access-log"], {}).access_log is True
    assert parse(["--no-access-log"], {"ROBYN_ACCESS_LOG": "1"}).access_log is False
