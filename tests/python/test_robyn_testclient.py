"""robyn.testing.TestClient: requests answered in-process by the code the server runs
(apps/robyn_testclient_app.py), and the same answers from a real server."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import httpx
import pytest

from robyn import Response, Robyn, TestClient as ExportedTestClient
from robyn.testing import TestClient, TestResponse

APP_FILE = Path(__file__).parent / "apps" / "robyn_testclient_app.py"


def load_app():
    spec = importlib.util.spec_from_file_location("robyn_testclient_app", APP_FILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.app


@pytest.fixture(scope="module")
def client():
    with TestClient(load_app()) as test_client:
        yield test_client


def test_the_exported_name_is_the_client():
    assert ExportedTestClient is TestClient


def test_global_hooks_and_app_headers_run(client):
    response = client.get("/")
    assert isinstance(response, TestResponse)
    assert (response.status_code, response.text, response.ok) == (200, "stamped=yes", True)
    assert response.headers["x-after"] == "200"
    assert response.headers["x-app"] == "testclient"
    assert response.headers["content-type"] == "text/plain"
    assert response.headers["content-length"] == "11"


def test_async_handler_with_path_and_query_params(client):
    response = client.get("/users/42", query_params={"verbose": "1"})
    assert response.status_code == 200
    assert response.json() == {"id": "42", "verbose": "1"}
    assert response.content == b'{"id":"42","verbose":"1"}'
    assert response.headers["content-type"] == "application/json"
    # the query may be in the path too, and `params` is the requests-style spelling
    assert client.get("/users/7?verbose=2").json() == {"id": "7", "verbose": "2"}
    assert client.get("/users/a%20b", params={"verbose": "3"}).json() == {"id": "a b", "verbose": "3"}


def test_json_bodies(client):
    response = client.post("/echo", {"name": "ada", "tags": [1, 2]})
    assert response.status_code == 200
    assert response.json() == {"got": {"name": "ada", "tags": [1, 2]}, "type": "application/json"}
    assert client.post("/echo", json={"n": 1}).json() == {"got": {"n": 1}, "type": "application/json"}
    raw = client.post("/echo", body='{"x": true}', headers={"Content-Type": "application/vnd.x+json"})
    assert raw.json() == {"got": {"x": True}, "type": "application/vnd.x+json"}


def test_bad_json_goes_to_the_exception_handler(client):
    response = client.post("/echo", body="{not json")
    assert response.status_code == 418
    assert response.text.startswith("handled: Invalid JSON")
    assert response.headers["x-after"] == "418"


def test_forms_and_files(client):
    response = client.put("/form", form_data={"a": "1", "b": "two words"})
    assert response.json() == {"form": {"a": "1", "b": "two words"}, "files": {}}
    response = client.put("/form", data={"a": "1"}, files={"upload.bin": b"\x00\x01\x02"})
    assert response.json() == {"form": {"a": "1"}, "files": {"upload.bin": 3}}


def test_before_hook_short_circuits(client):
    response = client.get("/blocked")
    assert (response.status_code, response.text) == (403, "blocked by hook")
    assert response.headers["x-after"] == "403"


def test_exception_handler(client):
    response = client.get("/fail")
    assert (response.status_code, response.text) == (418, "handled: 'missing'")
    assert response.ok is False


def test_authentication(client):
    refused = client.get("/admin")
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == "BearerGetter"
    wrong = client.get("/admin", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    allowed = client.get("/admin", headers={"Authorization": "Bearer valid"})
    assert (allowed.status_code, allowed.text) == (200, "hello ada")


def test_const_route_and_head(client):
    response = client.get("/const")
    assert (response.status_code, response.text) == (200, "computed once")
    head = client.head("/const")
    assert (head.status_code, head.content) == (200, b"")
    assert head.headers["content-length"] == "13"
    assert client.head("/").content == b""


def test_404_and_405_as_the_server_answers_them(client):
    missing = client.get("/nowhere")
    assert (missing.status_code, missing.text) == (404, "Not found")
    # a global after hook applies: the request goes to the app's fallback pipeline
    assert missing.headers["x-after"] == "404"
    wrong_method = client.patch("/users/1")
    assert wrong_method.status_code == 404  # the fallback answers what no route takes


def test_204_has_no_body(client):
    response = client.delete("/items/9")
    assert (response.status_code, response.content) == (204, b"")
    assert "content-length" not in response.headers


def test_streams_are_read_whole(client):
    sse = client.get("/events")
    assert sse.status_code == 200
    assert sse.headers["content-type"] == "text/event-stream"
    assert sse.chunks == [b"event: tick\ndata: n=0\n\n", b"event: tick\ndata: n=1\n\n",
                          b"event: tick\ndata: n=2\n\n"]
    assert sse.text == "event: tick\ndata: n=0\n\nevent: tick\ndata: n=1\n\nevent: tick\ndata: n=2\n\n"
    chunks = client.get("/chunks")
    assert (chunks.chunks, chunks.text) == ([b"a", b"b", b"c"], "abc")


def test_subrouter_routes(client):
    assert client.get("/api/ping").text == "pong"


def test_bad_calls_are_errors_naming_them(client):
    with pytest.raises(TypeError, match=r"give one of body=, json= and form_data= / files=, not body and json"):
        client.post("/echo", body="x", json={"a": 1})
    with pytest.raises(TypeError, match=r"give query_params= or params=, not both"):
        client.get("/", query_params={"a": "1"}, params={"a": "2"})
    with pytest.raises(ValueError, match=r"must be a str starting with '/', not 'users'"):
        client.get("users")
    with pytest.raises(ValueError, match=r"unknown HTTP method 'BREW'"):
        client.request("BREW", "/")
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'cookies'"):
        client.get("/", cookies={"a": "b"})
    assert client.get("/").status_code == 200  # still serves


def test_an_app_without_middleware_gets_the_plain_405():
    app = Robyn(__file__)

    @app.get("/only-get")
    def only_get():
        return "yes"

    @app.get("/none")
    def none():
        return Response(200, {}, b"\xff\xfe")

    with TestClient(app) as client:
        response = client.post("/only-get")
        assert (response.status_code, response.text) == (405, "Method not allowed")
        assert response.headers["allow"] == "GET, HEAD"
        assert client.get("/missing").text == "Not found"
        assert client.get("/none").content == b"\xff\xfe"
        assert client.get("/none").text == "\ufffd\ufffd"
        with pytest.raises(json.JSONDecodeError):
            client.get("/only-get").json()


def test_a_handler_that_never_answers_times_out():
    app = Robyn(__file__)

    @app.get("/hang")
    async def hang():
        import asyncio

        await asyncio.sleep(60)

    with TestClient(app, timeout=0.2) as client:
        with pytest.raises(TimeoutError, match=r"GET /hang: no answer within 0.2 s"):
            client.get("/hang")
    with pytest.raises(ValueError, match="timeout must be a positive number of seconds, not 0"):
        TestClient(app, timeout=0)


def test_static_directories_are_refused_by_name(tmp_path):
    (tmp_path / "a.txt").write_text("file")
    app = Robyn(__file__)
    app.serve_directory("/files", str(tmp_path))

    @app.get("/")
    def index():
        return "root"

    with TestClient(app) as client:
        with pytest.raises(NotImplementedError, match=r"does not serve static directories: GET /files/a.txt"):
            client.get("/files/a.txt")
        assert client.get("/").text == "root"


def test_a_subrouter_is_not_a_client_target():
    from robyn import SubRouter

    with pytest.raises(TypeError, match=r"TestClient\(\) takes the Robyn app"):
        TestClient(SubRouter("/x"))


def test_a_closed_client_says_so():
    app = Robyn(__file__)

    @app.get("/")
    def index():
        return "x"

    client = TestClient(app)
    client.close()
    with pytest.raises(RuntimeError, match="this TestClient is closed"):
        client.get("/")


# ---- the same answers from a real server ----------------------------------------------------

REQUESTS = [
    ("GET", "/", {}),
    ("GET", "/users/42?verbose=1", {}),
    ("POST", "/echo", {"json": {"a": [1, 2]}}),
    ("POST", "/echo", {"content": "{bad"}),
    ("GET", "/blocked", {}),
    ("GET", "/fail", {}),
    ("GET", "/admin", {}),
    ("GET", "/admin", {"headers": {"Authorization": "Bearer valid"}}),
    ("GET", "/const", {}),
    ("HEAD", "/const", {}),
    ("GET", "/nowhere", {}),
    ("PATCH", "/users/1", {}),
    ("DELETE", "/items/3", {}),
    ("GET", "/events", {}),
    ("GET", "/chunks", {}),
    ("GET", "/api/ping", {}),
]
COMPARED_HEADERS = ("content-type", "content-length", "x-after", "x-app", "www-authenticate", "allow")


def test_the_client_answers_as_the_server_does(start_app, client):
    server = start_app("robyn_testclient_app")
    for method, path, options in REQUESTS:
        wire = httpx.request(method, server.url(path), **options)
        local_options = dict(options)
        if "content" in local_options:
            local_options["body"] = local_options.pop("content")
        local = client.request(method, path, **local_options)
        where = f"{method} {path}"
        assert local.status_code == wire.status_code, where
        assert local.content == wire.content, where
        for name in COMPARED_HEADERS:
            assert local.headers.get(name) == wire.headers.get(name), f"{where}: {name}"
