"""SubRouters, add_route, dependencies and authentication through real requests
(apps/robyn_routers_app.py, which has no global middleware: C keeps its own 404 / 405)."""

from __future__ import annotations

import httpx
import pytest
from websocket import create_connection


@pytest.fixture(scope="module")
def server(module_app):
    return module_app("robyn_routers_app")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_subrouter_routes_have_the_prefix_and_the_root_is_the_prefix(server):
    for path in ("/api", "/api/"):
        assert httpx.get(server.url(path)).text == "api root"


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"])
def test_subrouters_take_every_method(server, method):
    response = httpx.request(method, server.url("/api/every"))
    assert response.json() == {"registered_for": method.lower()}


def test_subrouter_head_route_has_no_body(server):
    response = httpx.head(server.url("/api/every"))
    assert (response.status_code, response.content) == (200, b"")


def test_nested_subrouters_and_add_route_accumulate_prefixes(server):
    assert httpx.get(server.url("/api/v2/deep")).text == "deep"
    assert httpx.get(server.url("/api/v2/added")).text == "added under /api/v2"
    assert httpx.put(server.url("/no/decorator")).text == "no decorator"


def test_nested_subrouter_websocket_has_the_full_prefix(server):
    ws = create_connection(f"ws://127.0.0.1:{server.port}/api/v2/ws", timeout=5)
    try:
        assert ws.recv() == "hello from /api/v2/ws"
        ws.send("hi")
        assert ws.recv() == "v2 echo: hi"
    finally:
        ws.close()


def test_subrouter_dependencies_its_own_router_ones_and_the_apps_global_ones(server):
    assert httpx.get(server.url("/api/items/5")).json() == {
        "item": 5, "router": "api router value", "global": "the app's global value"}


def test_subrouter_path_hooks_take_its_prefix(server):
    assert httpx.get(server.url("/api/hooked")).text == "ran"


def test_without_middleware_unrouted_requests_keep_cs_answers(server, assert_serving):
    missing = httpx.get(server.url("/missing"))
    assert (missing.status_code, missing.text) == (404, "Not found")
    assert missing.headers["content-type"] == "text/plain; charset=utf-8"
    wrong = httpx.post(server.url("/api/items/5"))
    assert (wrong.status_code, wrong.text, wrong.headers["allow"]) == (405, "Method not allowed", "GET, HEAD")
    assert_serving(server)


@pytest.mark.parametrize("headers", [{}, bearer("wrong"), {"Authorization": "Basic app-token"},
                                     {"Authorization": "Bearerapp-token"}])
def test_a_missing_or_bad_token_is_401_with_www_authenticate(server, headers, assert_serving):
    response = httpx.get(server.url("/private"), headers=headers)
    assert (response.status_code, response.text) == (401, "Unauthorized")
    assert response.headers["www-authenticate"] == "BearerGetter"
    assert_serving(server)


def test_a_good_token_sets_request_identity(server):
    response = httpx.get(server.url("/private/"), headers=bearer("app-token"))
    assert response.json() == {"claims": {"who": "app"}}
    response = httpx.post(server.url("/private/async"), headers=bearer("app-token"), content=b"hi")
    assert response.json() == {"claims": {"who": "app"}, "body": "hi"}


def test_a_subrouter_with_its_own_async_handler(server):
    assert httpx.get(server.url("/secure/mine"), headers=bearer("async-token")).json() == {
        "claims": {"who": "async"}}
    refused = httpx.get(server.url("/secure/mine"), headers=bearer("app-token"))
    assert (refused.status_code, refused.headers["www-authenticate"]) == (401, "BearerGetter")


def test_a_subrouter_without_a_handler_uses_the_apps(server):
    assert httpx.get(server.url("/inherits/mine"), headers=bearer("app-token")).json() == {
        "claims": {"who": "app"}}
    assert httpx.get(server.url("/inherits/mine")).status_code == 401


def test_auth_required_false_is_open(server):
    assert httpx.get(server.url("/")).text == "Hello, world!"


def test_status_code_applies_to_plain_results_and_const_routes(server):
    response = httpx.post(server.url("/created"))
    assert (response.status_code, response.json()) == (201, {"created": True})
    for _ in range(2):
        response = httpx.get(server.url("/created/const"))
        assert (response.status_code, response.text) == (202, "accepted once")
    response = httpx.get(server.url("/created/response"))
    assert (response.status_code, response.text) == (200, "its own status wins")


def test_response_model_validates_a_returned_dict(server):
    response = httpx.get(server.url("/modelled"))
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"name": "pen", "price": 2.5}
