"""ALLOW_CORS as Robyn 0.88 has it (apps/robyn_cors_app.py)."""

from __future__ import annotations

import httpx
import pytest

ALLOWED = "http://localhost:3000"
HEADERS = "Content-Type, Authorization, X-Token"
METHODS = "GET, POST, PUT, DELETE, PATCH, HEAD, OPTIONS"


@pytest.fixture(scope="module")
def server(module_app):
    return module_app("robyn_cors_app")


@pytest.mark.parametrize("path", ["/data", "/", "/own-options", "/no/route/here"])
def test_a_preflight_is_204_with_every_cors_header_once(server, path):
    response = httpx.options(server.url(path), headers={
        "Origin": ALLOWED, "Access-Control-Request-Method": "POST"})
    assert (response.status_code, response.content) == (204, b"")
    assert response.headers.get_list("access-control-allow-origin") == [ALLOWED]
    assert response.headers["access-control-allow-methods"] == METHODS
    assert response.headers["access-control-allow-headers"] == HEADERS
    assert response.headers["access-control-allow-credentials"] == "true"
    assert response.headers["access-control-max-age"] == "3600"


@pytest.mark.parametrize("method", ["OPTIONS", "GET", "POST"])
def test_another_origin_is_403(server, method, assert_serving):
    response = httpx.request(method, server.url("/data"), headers={"Origin": "http://evil.example"})
    assert (response.status_code, response.content) == (403, b"")
    assert_serving(server)


@pytest.mark.parametrize("headers", [{"Origin": ALLOWED}, {}])
def test_responses_carry_the_app_cors_headers(server, headers):
    response = httpx.get(server.url("/"), headers=headers)
    assert (response.status_code, response.text) == (200, "Hello, world!")
    assert response.headers["access-control-allow-origin"] == "*"  # two origins allowed
    assert response.headers["access-control-allow-methods"] == METHODS
    assert response.headers["access-control-allow-headers"] == HEADERS
    assert response.headers["access-control-allow-credentials"] == "true"
    assert httpx.post(server.url("/data"), headers=headers).text == "created"


def test_a_handlers_own_cors_header_wins(server):
    response = httpx.get(server.url("/custom"), headers={"Origin": ALLOWED})
    assert response.headers.get_list("access-control-allow-origin") == ["https://front.example"]
    assert response.headers["access-control-allow-methods"] == METHODS


def test_an_unknown_path_is_404_with_the_cors_headers(server):
    response = httpx.get(server.url("/no/route/here"), headers={"Origin": ALLOWED})
    assert (response.status_code, response.text) == (404, "Not found")
    assert response.headers["access-control-allow-origin"] == "*"
