"""The issue's example app, route by route, with real HTTP clients."""

from __future__ import annotations

import httpx
import requests


def test_index_zero_parameter_handler(main_server):
    response = httpx.get(main_server.url("/"))
    assert response.status_code == 200
    assert response.text == "Hello, world!"
    assert response.headers["content-type"].startswith("text/plain")
    assert response.headers["content-length"] == "13"


def test_async_handler_with_request_and_path_parameter(main_server):
    response = httpx.get(main_server.url("/users/42"))
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"user": {"id": "42"}}


def test_trailing_slash_is_normalised(main_server):
    response = httpx.get(main_server.url("/users/42/"))
    assert response.status_code == 200
    assert response.json() == {"user": {"id": "42"}}


def test_const_route(main_server):
    response = httpx.get(main_server.url("/health"))
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"status": "healthy"}


def test_complex_handler_gets_every_part(main_server):
    response = requests.post(
        main_server.url("/complex/abc?x=1&x=2&y=z"),
        data=b"hello body",
        headers={"User-Agent": "example-agent/1.0"},
        timeout=5,
    )
    assert response.status_code == 200
    assert response.json() == {
        "id": "abc",
        "query": {"x": ["1", "2"], "y": ["z"]},
        "user_agent": "example-agent/1.0",
        "body_length": 10,
    }


def test_complex_handler_with_empty_body(main_server):
    response = httpx.post(main_server.url("/complex/7"), headers={"User-Agent": "ua"})
    assert response.status_code == 200
    assert response.json() == {"id": "7", "query": {}, "user_agent": "ua", "body_length": 0}


def test_simple_handler_injection_by_reserved_name(main_server):
    response = httpx.get(main_server.url("/simple/9"), params={"q": "needle"})
    assert response.status_code == 200
    assert response.json() == {"id": "9", "search": "needle"}
    response = httpx.get(main_server.url("/simple/9"))
    assert response.json() == {"id": "9", "search": ""}


def test_sync_slow_handler(main_server):
    response = httpx.get(main_server.url("/sync"), timeout=10)
    assert response.status_code == 200
    assert response.text == "Done"
