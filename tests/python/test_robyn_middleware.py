"""Middlewares, app headers and exception handlers as Robyn 0.88 runs them
(apps/robyn_middleware_app.py; docs/robyn-api.md)."""

from __future__ import annotations

import httpx
import pytest

APP_HEADERS = {"server": "core-test"}


@pytest.fixture(scope="module")
def server(module_app):
    return module_app("robyn_middleware_app")


def get(server, path: str, **kwargs) -> httpx.Response:
    return httpx.get(server.url(path), **kwargs)


def assert_app_headers(response: httpx.Response) -> None:
    assert response.headers["server"] == "core-test"
    assert response.headers.get_list("x-many") == ["a", "b"]


def test_global_hooks_and_app_request_header_reach_the_handler(server):
    response = get(server, "/plain")
    assert (response.status_code, response.text) == (200, "stamped=yes added=by-app")
    assert response.headers["x-after"] == "GET 200"
    assert "x-stamped" not in response.headers  # request headers stay on the request
    assert_app_headers(response)


def test_app_response_headers_reach_handlers_as_request_headers_as_in_robyn(server):
    assert get(server, "/seen").json() == {"server": "core-test", "x-many": ["a", "b"],
                                           "x-added": "by-app"}


def test_path_hooks_run_in_order_sync_and_async_with_any_parameter_count(server):
    response = get(server, "/order")
    assert response.text == "first,second [after]"
    assert response.headers["x-after"] == "GET 200"


def test_a_path_hook_applies_to_every_method_of_the_routes_it_covers(server):
    assert get(server, "/users/7").json() == {"id": "7", "hook": "7"}
    # POST /users/:name has the same shape: the hook runs (its :id parameter is absent).
    response = httpx.post(server.url("/users/ann"))
    assert response.json() == {"name": "ann", "hook": "?"}
    assert response.headers["x-after"] == "POST 200"


@pytest.mark.parametrize(("path", "pattern"), [
    ("/files/readme", "readme"), ("/files/other", ":name"), ("/files/deep/a/b", "*rest")])
def test_the_most_specific_hook_pattern_covering_a_route_wins(server, path, pattern):
    assert get(server, path).text == pattern


def test_a_hook_for_a_path_without_routes_is_logged_at_start(server):
    assert ("before_request hook never_runs for /nothing/routed/here never runs: no route has "
            "that path") in server.log()


@pytest.mark.parametrize(("path", "status", "body", "content_type", "why"), [
    ("/blocked/response", 401, "blocked", None, "no"),
    ("/blocked/dict", 200, '{"blocked":true}', "application/json", None),
    ("/blocked/tuple", 403, "denied", None, "tuple"),
    ("/blocked/str", 200, "just text", "text/plain", None),
])
def test_a_before_hook_answer_short_circuits_and_after_hooks_still_run(server, path, status, body,
                                                                        content_type, why):
    response = get(server, path)
    assert (response.status_code, response.text) == (status, body)
    assert response.headers.get("content-type") == content_type
    assert response.headers.get("x-why") == why
    assert response.headers["x-after"] == f"GET {status}"
    assert_app_headers(response)


def test_a_before_hook_may_replace_the_request(server):
    assert get(server, "/blocked/new_request").text == "1 replaced body"


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_one_context_per_request_across_hooks_and_handler(server, kind):
    response = get(server, f"/ctx/{kind}")
    assert response.text == f"{kind}-before"
    assert response.headers["x-trace"] == f"{kind}-before+handler"


def test_context_values_do_not_leak_into_the_next_request(server):
    for _ in range(20):  # the sync workers serve these one after another
        assert get(server, "/ctx/sync").text == "sync-before"
        assert get(server, "/ctx/leak").text == "unset"


def test_a_const_route_with_hooks_is_computed_once_and_goes_through_them(server):
    for _ in range(3):
        response = get(server, "/const/hooked")
        assert response.text == "const computed 1 time(s) +after"
        assert response.headers["x-const"] == "1"
        assert response.headers["x-after"] == "GET 200"


def test_an_unknown_path_is_robyns_404_through_the_middleware(server, assert_serving):
    for method in ("GET", "POST", "DELETE"):
        response = httpx.request(method, server.url("/no/such/path"))
        assert (response.status_code, response.text) == (404, "Not found")
        assert response.headers["content-type"] == "text/plain"
        assert response.headers["x-after"] == f"{method} 404"
        assert_app_headers(response)
    # A known path with another method is Robyn's 404 too (Robyn has no 405 for it).
    response = httpx.delete(server.url("/plain"))
    assert (response.status_code, response.text) == (404, "Not found")
    assert_serving(server)


def test_head_of_an_unknown_path_has_no_body(server):
    response = httpx.head(server.url("/no/such/path"))
    assert response.status_code == 404
    assert response.content == b""
    assert response.headers["content-length"] == "9"


def test_a_route_added_before_the_exception_handler_answers_500(server):
    response = get(server, "/raise/before_handler")
    assert (response.status_code, response.text) == (500, "Internal server error")
    assert response.headers["content-type"] == "text/plain"
    assert response.headers["x-after"] == "GET 500"  # after hooks see 500s too


@pytest.mark.parametrize(("path", "body"), [
    ("/raise/sync", "handled: sync boom"),
    ("/raise/async", "handled: 'async boom'"),
])
def test_the_exception_handler_answers_later_routes(server, path, body):
    response = get(server, path)
    assert (response.status_code, response.text) == (500, body)
    assert response.headers["x-after"] == "GET 500"


def test_a_bad_query_parameter_is_400_not_the_exception_handler(server):
    response = get(server, "/query/abc")
    assert (response.status_code, response.text) == (400, "Invalid value 'abc' for parameter 'n': expected int")
    assert get(server, "/query/12").json() == {"n": 12}


def test_app_headers_do_not_duplicate_what_the_handler_set(server):
    response = get(server, "/headers/own")
    assert response.headers.get_list("server") == ["mine"]
    assert response.headers.get_list("x-many") == ["a", "b"]


def test_excluded_paths_get_no_app_headers(server):
    response = get(server, "/headers/excluded")
    assert response.text == "excluded"
    assert "server" not in response.headers and "x-many" not in response.headers
    assert response.headers["x-after"] == "GET 200"  # hooks still run


def test_a_before_hook_that_raises_is_500_without_after_hooks(server, assert_serving):
    response = get(server, "/plain", headers={"x-break-before": "1"})
    assert (response.status_code, response.text) == (500, "Internal server error")
    assert "x-after" not in response.headers
    assert_serving(server)
    assert "before_request hook of handler for GET /plain raised" in server.log()
    assert "RuntimeError: before hook broke" in server.log()


def test_an_after_hook_that_raises_is_500_with_the_headers_so_far(server, assert_serving):
    response = get(server, "/plain", headers={"x-break-after": "1"})
    assert (response.status_code, response.text) == (500, "Internal server error")
    assert response.headers["x-after"] == "GET 200"  # set before it raised
    assert_serving(server)
    assert "RuntimeError: after hook broke" in server.log()
