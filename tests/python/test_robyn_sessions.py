"""Signed-cookie sessions through a real server: app.configure_sessions, request.session, the
cookie re-sent only when the session changed, and tampered or foreign cookies read as empty."""

from __future__ import annotations

import time

import pytest
import requests

COOKIE = "robyn_session"


@pytest.fixture(scope="module")
def server(module_app):
    return module_app("robyn_sessions_app")


def test_no_cookie_until_something_is_stored(server):
    response = requests.get(server.url("/sessions/get"), timeout=5)
    assert response.json() == {"value": None}
    assert "set-cookie" not in response.headers


def test_value_persists_and_cookie_attributes(server):
    client = requests.Session()
    response = client.post(server.url("/sessions/set"), json={"value": "hello"}, timeout=5)
    assert response.json() == {"stored": "hello"}
    [header] = response.raw.headers.getlist("Set-Cookie")
    value = client.cookies[COOKIE]
    assert header == f"{COOKIE}={value}; HttpOnly; SameSite=Lax; Path=/; Max-Age=3600"
    response = client.get(server.url("/sessions/get"), timeout=5)
    assert response.json() == {"value": "hello"}
    assert "set-cookie" not in response.headers  # unchanged: not re-sent


def test_counter_per_client(server):
    client = requests.Session()
    assert [client.get(server.url("/sessions/counter"), timeout=5).json()["count"] for _ in range(3)] == [1, 2, 3]
    assert requests.Session().get(server.url("/sessions/counter"), timeout=5).json() == {"count": 1}


def test_nested_change_is_saved(server):
    client = requests.Session()
    assert [client.get(server.url("/sessions/cart"), timeout=5).json()["cart"] for _ in range(3)] == [
        [0], [0, 1], [0, 1, 2]]


@pytest.mark.parametrize("mangle", [
    lambda value: value[:-3] + ("aaa" if not value.endswith("aaa") else "bbb"),
    lambda value: "x" + value,
    lambda value: value.replace(".", ""),
    lambda value: "garbage",
])
def test_tampered_cookie_is_an_empty_session(server, assert_serving, mangle):
    client = requests.Session()
    client.get(server.url("/sessions/counter"), timeout=5)
    original = client.cookies[COOKIE]
    response = requests.get(server.url("/sessions/counter"), cookies={COOKIE: mangle(original)}, timeout=5)
    assert (response.status_code, response.json()) == (200, {"count": 1})
    assert_serving(server)


def test_cookie_of_another_secret_is_an_empty_session(server, start_app):
    other = start_app("robyn_sessions_app", env={"APP_SECRET": "another-secret"})
    client = requests.Session()
    client.get(other.url("/sessions/counter"), timeout=5)
    foreign = client.cookies[COOKIE]
    response = requests.get(server.url("/sessions/counter"), cookies={COOKIE: foreign}, timeout=5)
    assert response.json() == {"count": 1}


def test_expired_cookie_is_an_empty_session(start_app):
    short = start_app("robyn_sessions_app", env={"APP_MAX_AGE": "1"})
    response = requests.get(short.url("/sessions/counter"), timeout=5)
    cookie = response.cookies[COOKIE]
    assert requests.get(short.url("/sessions/counter"), cookies={COOKIE: cookie}, timeout=5).json() == {"count": 2}
    time.sleep(2.1)  # the cookie's own expiry time is checked, not only the browser's Max-Age
    assert requests.get(short.url("/sessions/counter"), cookies={COOKIE: cookie}, timeout=5).json() == {"count": 1}


def test_clear_expires_the_cookie(server):
    client = requests.Session()
    client.post(server.url("/sessions/set"), json={"value": "to-be-cleared"}, timeout=5)
    response = client.get(server.url("/sessions/clear"), timeout=5)
    assert response.raw.headers.getlist("Set-Cookie") == [f"{COOKIE}=; HttpOnly; SameSite=Lax; Path=/; Max-Age=0"]
    assert client.get(server.url("/sessions/get"), timeout=5).json() == {"value": None}
