"""What a handler returns (robyn/responses.py serialize): values that are no answer are a
500 with a log line naming their type, on every path."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

import httpx

from conftest import APPS, AppServer, free_port


@pytest.fixture(scope="module")
def server(module_app) -> AppServer:
    return module_app("results_app")


def get_request(server: AppServer, path: str) -> httpx.Response:
    return httpx.get(server.url(path), timeout=5)


def _wait_logged(server: AppServer, line: str) -> None:
    deadline = time.monotonic() + 5
    while line not in server.log():
        assert time.monotonic() < deadline, f"{line!r} not logged:\n{server.log()}"
        time.sleep(0.05)


HINT = ("which is not an answer: return str, bytes, dict, list, a Response, a (body, headers, "
        "status) tuple or a Pydantic model")


@pytest.mark.parametrize("path, type_name", [
    ("/object", "object"),                         # a plain sync route
    ("/thing", "Thing"),               # async
    ("/tuple-of-object", "object"),                # the body of a (body, headers, status) tuple
    ("/hooked", "object"),                         # a route with a before hook (the pipeline)
    ("/status-code", "Thing"),         # status_code= (the pipeline too)
])
def test_a_value_with_no_text_is_a_500_naming_its_type(path, type_name, server):
    response = get_request(server, path)
    assert (response.status_code, response.content) == (500, b"Internal server error")
    _wait_logged(server, f"ERROR:robyn:handler for GET {path} returned a value of type "
                         f"'{type_name}', {HINT}\n")
    assert b" object at 0x" not in response.content
    assert get_request(server, "/ok").content == b"ok"  # still serving


@pytest.mark.parametrize("path, body", [
    ("/none", b"None"), ("/number", b"200"), ("/type", b"<class 'dict'>"),
    ("/named", b"a named thing")])
def test_values_with_a_text_of_their_own_are_text_as_in_robyn(path, body, server):
    response = get_request(server, path)
    assert (response.status_code, response.content) == (200, body)
    assert response.headers["content-type"].startswith("text/plain")


def test_a_const_route_with_no_answer_stops_the_start(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROBYN_")}
    env.update({"RESULTS_CONST_OBJECT": "1", "ROBYN_PORT": str(free_port())})
    done = subprocess.run([sys.executable, str(APPS / "results_app.py")], env=env,
                          cwd=str(tmp_path), capture_output=True, text=True, timeout=20)
    assert done.returncode == 1
    assert (f"TypeError: const route GET /const-object returned a value of type "
            f"'Thing', {HINT}") in done.stderr
    assert "listening" not in done.stderr
