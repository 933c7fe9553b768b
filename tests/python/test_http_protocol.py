"""HTTP/1.1 on the wire: keep-alive, pipelining, framing, header bytes, body limits."""

from __future__ import annotations

import json

import httpx
import pytest


def test_keep_alive_serves_many_requests_on_one_connection(main_server, raw, build_request):
    with raw(main_server) as conn:
        for i in range(5):
            conn.send(build_request(f"/users/{i}"))
            response = conn.read_response()
            assert response.status == 200
            assert json.loads(response.body) == {"user": {"id": str(i)}}
            assert response.header("connection") is None


def test_httpx_client_reuses_its_connection(main_server):
    with httpx.Client() as client:
        ports = set()
        for _ in range(5):
            response = client.get(main_server.url("/fast"))
            assert response.status_code == 200
            assert response.text == "fast"
            stream = response.extensions["network_stream"]
            ports.add(stream.get_extra_info("client_addr")[1])
        assert len(ports) == 1


def test_pipelined_requests_are_answered_in_order(main_server, raw, build_request):
    with raw(main_server) as conn:
        conn.send(build_request("/sync") + build_request("/users/2") + build_request("/health")
                  + build_request("/fast"))
        first, second, third, fourth = (conn.read_response() for _ in range(4))
    assert (first.status, first.body) == (200, b"Done")
    assert (second.status, json.loads(second.body)) == (200, {"user": {"id": "2"}})
    assert (third.status, json.loads(third.body)) == (200, {"status": "healthy"})
    assert (fourth.status, fourth.body) == (200, b"fast")


def test_body_split_across_many_writes(main_server, raw):
    with raw(main_server) as conn:
        conn.send(b"POST /body HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n")
        for piece in (b"01", b"234", b"5678", b"9"):
            conn.send(piece)
        response = conn.read_response()
    assert response.status == 200
    assert json.loads(response.body) == {"type": "str", "text": "0123456789"}


def test_request_split_byte_by_byte(main_server, raw, build_request):
    with raw(main_server) as conn:
        for byte in build_request("/users/slow-client"):
            conn.send(bytes([byte]))
        response = conn.read_response()
    assert response.status == 200
    assert json.loads(response.body) == {"user": {"id": "slow-client"}}


def test_connection_close_is_honoured(main_server, raw, build_request):
    with raw(main_server) as conn:
        conn.send(build_request("/fast", close=True))
        response = conn.read_response()
        assert response.status == 200
        assert response.body == b"fast"
        assert response.header("connection") == "close"
        assert conn.closed_cleanly()


def test_connection_close_on_const_route(main_server, raw, build_request):
    with raw(main_server) as conn:
        conn.send(build_request("/health", close=True))
        response = conn.read_response()
        assert response.status == 200
        assert response.body == b'{"status":"healthy"}'
        assert conn.closed_cleanly()


def test_http_1_0_request_gets_answer_and_close(main_server, raw):
    with raw(main_server) as conn:
        conn.send(b"GET / HTTP/1.0\r\n\r\n")
        response = conn.read_response()
        assert response.status == 200
        assert response.body == b"Hello, world!"
        assert conn.closed_cleanly()


def test_response_has_status_headers_and_content_length(main_server, raw, build_request):
    with raw(main_server) as conn:
        conn.send(build_request("/resp/response"))
        response = conn.read_response()
    assert response.raw_head.startswith(b"HTTP/1.1 201 Created\r\n")
    assert response.header("x-custom") == "yes"
    assert response.header("content-length") == "7"
    assert response.body == b"created"


@pytest.mark.parametrize(
    "value",
    [b"\xff\xfe\xfd", b"caf\xe9 latin-1", b"caf\xc3\xa9 \xe2\x82\xac utf-8", b"tab\there", b"\x80"],
    ids=["raw-ff", "latin-1", "utf-8", "tab", "lone-continuation"],
)
def test_non_ascii_header_values_never_crash(main_server, raw, assert_serving, value):
    with raw(main_server) as conn:
        conn.send(b"GET /user-agent HTTP/1.1\r\nHost: t\r\nUser-Agent: " + value
                  + b"\r\nX-Extra: " + value + b"\r\n\r\n")
        response = conn.read_response()
        assert response.status == 200
        data = json.loads(response.body)
        assert data["has"] is True
        # Valid UTF-8 arrives as text; other bytes arrive decoded with replacement characters.
        assert data["user_agent"] == value.decode("utf-8", "replace")
        # The connection is still usable.
        conn.send(b"GET /fast HTTP/1.1\r\nHost: t\r\n\r\n")
        assert conn.read_response().body == b"fast"
    assert_serving(main_server)


def test_utf8_header_value_reaches_handler_intact(main_server, raw):
    with raw(main_server) as conn:
        conn.send("GET /user-agent HTTP/1.1\r\nHost: t\r\nUser-Agent: Grüße 日本\r\n\r\n".encode())
        response = conn.read_response()
    assert json.loads(response.body) == {"user_agent": "Grüße 日本", "has": True}


def test_body_at_the_default_limit_is_accepted(main_server):
    body = b"x" * 1_000_000
    response = httpx.post(main_server.url("/body-length"), content=body, timeout=10)
    assert response.status_code == 200
    assert response.json() == {"length": 1_000_000}


def test_body_over_the_default_limit_is_413(main_server, assert_serving):
    body = b"x" * 1_000_001
    response = httpx.post(main_server.url("/body-length"), content=body, timeout=10)
    assert response.status_code == 413
    assert response.text == "Payload Too Large"
    assert_serving(main_server)


def test_max_payload_size_from_environment(start_app, raw, assert_serving):
    server = start_app("main_app", env={"ROBYN_MAX_PAYLOAD_SIZE": "100"})
    ok = httpx.post(server.url("/body-length"), content=b"a" * 100)
    assert ok.status_code == 200
    assert ok.json() == {"length": 100}
    too_big = httpx.post(server.url("/body-length"), content=b"a" * 101)
    assert too_big.status_code == 413
    assert too_big.text == "Payload Too Large"
    assert_serving(server)


def test_max_payload_size_from_start_argument(start_app, assert_serving):
    server = start_app("limits_app", env={"APP_MAX_PAYLOAD": "2048"})
    ok = httpx.post(server.url("/upload"), content=b"a" * 2048)
    assert ok.status_code == 200
    assert ok.json() == {"length": 2048}
    too_big = httpx.post(server.url("/upload"), content=b"a" * 2049)
    assert too_big.status_code == 413
    assert too_big.text == "Payload Too Large"
    assert_serving(server)

