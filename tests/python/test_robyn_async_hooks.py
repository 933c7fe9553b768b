"""Async global hooks in front of sync handlers, const routes, streams and requests no route
takes (apps/robyn_async_hooks_app.py)."""

from __future__ import annotations

import httpx
import pytest


@pytest.fixture(scope="module")
def server(module_app):
    return module_app("robyn_async_hooks_app")


def test_a_sync_handler_behind_async_hooks_runs_on_the_event_loop(server):
    response = httpx.get(server.url("/sync"))
    assert response.json() == {"before": "async", "thread": "MainThread"}
    assert (response.headers["x-after"], response.headers["x-app"]) == ("async", "1")


def test_a_const_route_behind_async_hooks(server):
    response = httpx.get(server.url("/const"))
    assert (response.status_code, response.text) == (200, "const through async hooks")
    assert response.headers["x-after"] == "async"


def test_an_async_hook_short_circuits_every_route_and_unrouted_requests(server, assert_serving):
    for path in ("/sync", "/const", "/nowhere"):
        response = httpx.get(server.url(path), headers={"x-deny": "1"})
        assert (response.status_code, response.text) == (451, "denied by an async hook")
        assert response.headers["x-after"] == "async"
    assert_serving(server)


def test_an_unrouted_request_through_async_hooks_is_404(server):
    response = httpx.put(server.url("/nowhere"), content=b"some body")
    assert (response.status_code, response.text) == (404, "Not found")
    assert (response.headers["x-after"], response.headers["x-app"]) == ("async", "1")


def test_a_stream_gets_the_app_headers_but_skips_after_hooks_as_in_robyn(server):
    response = httpx.get(server.url("/stream"))
    assert (response.status_code, response.text) == (200, "abc")
    assert response.headers["x-app"] == "1"
    assert "x-after" not in response.headers
