"""Logging (robyn/logger.py, gateway/lwslog.c): the start line, libwebsockets' lines in the
"robyn.lws" logger at their levels, and the level from --log-level / ROBYN_LOG_LEVEL."""

from __future__ import annotations

import logging
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
        f"(processes 1, workers 1; libwebsockets {_gateway.lws_version()}, "
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
    assert _get(server, "/lws-burst?count=300") == "logged"
    log = _wait_for(server, "libwebsockets log lines were dropped")
    assert "ERROR:robyn.lws:burst line 0\n" in log and "ERROR:robyn.lws:burst line 255\n" in log
    assert "burst line 256\n" not in log
    assert ("WARNING:robyn.lws:44 libwebsockets log lines were dropped: they came faster than "
            "the event loop took them") in log
    assert _get(server, "/") == "logging"  # still serving


def test_the_lws_mask_follows_the_logger_level():
    everything = (_gateway.LLL_ERR | _gateway.LLL_WARN | _gateway.LLL_NOTICE | _gateway.LLL_INFO
                  | _gateway.LLL_DEBUG | _gateway.LLL_USER)
    assert lws_mask_for(logging.DEBUG) == everything
    assert lws_mask_for(logging.INFO) == _gateway.LLL_ERR | _gateway.LLL_WARN | _gateway.LLL_USER
    assert lws_mask_for(logging.WARNING) == _gateway.LLL_ERR | _gateway.LLL_WARN
    assert lws_mask_for(logging.ERROR) == _gateway.LLL_ERR
    assert lws_mask_for(logging.CRITICAL) == 0
