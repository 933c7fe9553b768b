"""What handlers return, as it arrives at the client; and const routes."""

from __future__ import annotations

import httpx

from robyn import status_codes


def test_str_is_text_plain(main_server):
    response = httpx.get(main_server.url("/resp/str"))
    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] == "text/plain"
    assert response.text == "plain text"


def test_bytes_is_octet_stream(main_server):
    response = httpx.get(main_server.url("/resp/bytes"))
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.content == b"\x00\x01\xffraw"
    assert response.headers["content-length"] == "6"


def test_dict_is_json(main_server):
    response = httpx.get(main_server.url("/resp/dict"))
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"a": 1, "nested": {"b": [1, 2]}, "text": "caf\u00e9"}
    assert response.content == '{"a":1,"nested":{"b":[1,2]},"text":"caf\u00e9"}'.encode()


def test_list_is_json(main_server):
    response = httpx.get(main_server.url("/resp/list"))
    assert response.headers["content-type"] == "application/json"
    assert response.json() == [1, "two", None, True]


def test_response_object(main_server):
    response = httpx.get(main_server.url("/resp/response"))
    assert response.status_code == 201
    assert response.headers["x-custom"] == "yes"
    assert response.headers["content-type"] == "text/plain"
    assert response.text == "created"


def test_response_object_with_bytes(main_server):
    response = httpx.get(main_server.url("/resp/response-bytes"))
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert response.content == b"\x89PNG"


def test_tuple_body_headers_status(main_server):
    response = httpx.get(main_server.url("/resp/tuple"))
    assert response.status_code == 418
    assert response.headers["x-tuple"] == "1"
    assert response.headers["content-type"].split(";")[0] == "text/plain"
    assert response.text == "I am a teapot"


def test_tuple_with_dict_body_from_async_handler(main_server):
    response = httpx.get(main_server.url("/resp/tuple-dict"))
    assert response.status_code == 202
    assert response.headers["x-tuple"] == "2"
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"ok": True}


def test_jsonify(main_server):
    response = httpx.get(main_server.url("/resp/jsonify"))
    assert response.status_code == 200
    assert response.text == '{"b":2,"list":[1,2]}'
    wrapped = httpx.get(main_server.url("/resp/jsonify-response"))
    assert wrapped.headers["content-type"] == "application/json"
    assert wrapped.json() == {"wrapped": True}


def test_status_codes_module(main_server):
    assert status_codes.HTTP_200_OK == 200
    assert status_codes.HTTP_404_NOT_FOUND == 404
    assert status_codes.HTTP_418_IM_A_TEAPOT == 418
    response = httpx.get(main_server.url("/resp/status-codes"))
    assert response.status_code == 404
    assert response.text == "custom not found"


def test_no_content(main_server, raw, build_request):
    with raw(main_server) as conn:
        conn.send(build_request("/resp/no-content"))
        response = conn.read_response()
        assert response.status == 204
        assert response.body == b""
        # RFC 9110 8.6: no Content-Length in a 204.
        assert response.header("content-length") is None
        # Nothing follows the head: the next answer on the connection is intact.
        conn.send(build_request("/fast"))
        assert conn.read_response().body == b"fast"


def test_http_exception(main_server):
    response = httpx.get(main_server.url("/resp/http-exception"))
    assert response.status_code == 403
    assert response.text == "no entry"


def test_repeated_response_headers(main_server, raw, build_request):
    with raw(main_server) as conn:
        conn.send(build_request("/resp/multi-header"))
        response = conn.read_response()
    assert [value for name, value in response.headers if name == "x-many"] == ["one", "two"]
    assert response.body == b"many"


def test_head_on_dynamic_route_has_headers_and_no_body(main_server, raw, build_request):
    with raw(main_server) as conn:
        conn.send(build_request("/fast", method="HEAD"))
        response = conn.read_response(head_request=True)
        assert response.status == 200
        assert response.header("content-length") == "4"
        conn.send(build_request("/fast"))
        assert conn.read_response().body == b"fast"


# ---- const routes -----------------------------------------------------------------------------


def test_const_route_runs_its_handler_once(main_server):
    with httpx.Client() as client:
        for _ in range(200):
            response = client.get(main_server.url("/health"))
            assert response.status_code == 200
            assert response.json() == {"status": "healthy"}
    assert httpx.get(main_server.url("/const-calls")).json() == {"calls": 1}


def test_const_route_on_many_connections(main_server):
    for _ in range(20):
        response = httpx.get(main_server.url("/health"), headers={"Connection": "close"})
        assert response.json() == {"status": "healthy"}
    assert httpx.get(main_server.url("/const-calls")).json() == {"calls": 1}


def test_const_route_from_async_handler_with_response(main_server):
    response = httpx.get(main_server.url("/const-text"))
    assert response.status_code == 203
    assert response.headers["x-const"] == "yes"
    assert response.text == "computed once"


def test_head_on_const_route_has_headers_and_no_body(main_server, raw, build_request):
    with raw(main_server) as conn:
        conn.send(build_request("/health", method="HEAD"))
        response = conn.read_response(head_request=True)
        assert response.status == 200
        assert response.header("content-type") == "application/json"
        assert response.header("content-length") == "20"
        # No body bytes follow: the next response on the connection parses cleanly.
        conn.send(build_request("/health"))
        following = conn.read_response()
        assert following.status == 200
        assert following.body == b'{"status":"healthy"}'
    assert httpx.head(main_server.url("/health")).content == b""
