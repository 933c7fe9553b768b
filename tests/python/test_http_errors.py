"""Error answers: 404, 405, 413, 431, 400, 500, and a busy port (docs/http.md)."""

from __future__ import annotations

import json

import httpx
import pytest
import requests


def allow(response) -> set[str]:
    return {method.strip() for method in response.headers["allow"].split(",")}


def test_unknown_path_is_404(main_server, assert_serving):
    response = httpx.get(main_server.url("/no/such/route"))
    assert response.status_code == 404
    assert response.text == "Not found"
    assert response.headers["content-type"].startswith("text/plain")
    assert_serving(main_server)


def test_404_keeps_the_connection(main_server, raw, build_request):
    with raw(main_server) as conn:
        conn.send(build_request("/missing"))
        assert conn.read_response().status == 404
        conn.send(build_request("/fast"))
        assert conn.read_response().body == b"fast"


def test_wrong_method_is_405_with_allow(main_server, assert_serving):
    response = httpx.post(main_server.url("/users/1"))
    assert response.status_code == 405
    assert response.text == "Method not allowed"
    assert allow(response) == {"GET", "HEAD"}
    assert_serving(main_server)


def test_405_allow_lists_every_method_of_the_path(main_server):
    response = httpx.post(main_server.url("/multi"))
    assert response.status_code == 405
    assert allow(response) == {"GET", "HEAD", "PUT", "DELETE"}
    response = httpx.get(main_server.url("/post-only"))
    assert response.status_code == 405
    assert allow(response) == {"POST"}


def test_405_on_const_route(main_server):
    response = httpx.delete(main_server.url("/health"))
    assert response.status_code == 405
    assert allow(response) == {"GET", "HEAD"}


def test_head_on_post_only_route_is_405(main_server):
    response = httpx.head(main_server.url("/post-only"))
    assert response.status_code == 405
    assert allow(response) == {"POST"}


def test_too_large_body_with_content_length_is_413(main_server, assert_serving):
    response = requests.post(main_server.url("/body-length"), data=b"x" * 1_500_000, timeout=10)
    assert response.status_code == 413
    assert response.text == "Payload Too Large"
    assert_serving(main_server)


def test_413_arrives_before_the_body_is_sent(main_server, raw, assert_serving):
    with raw(main_server) as conn:
        conn.send(b"POST /body-length HTTP/1.1\r\nHost: t\r\nContent-Length: 2000000\r\n\r\n")
        response = conn.read_response()
        assert response.status == 413
        assert response.body == b"Payload Too Large"
        assert response.header("connection") == "close"
        # The client sends its body anyway: the server swallows it, then closes.
        conn.send(b"y" * 2_000_000)
        assert conn.closed_cleanly()
    assert_serving(main_server)


def test_huge_declared_body_gets_413_not_a_reset(main_server, raw, assert_serving):
    with raw(main_server) as conn:
        conn.send(b"POST /body-length HTTP/1.1\r\nHost: t\r\nContent-Length: 100000000000\r\n\r\n")
        response = conn.read_response()
        assert response.status == 413
        assert response.body == b"Payload Too Large"
        assert conn.closed_by_server()
    assert_serving(main_server)


def test_oversized_header_is_431(main_server, raw, assert_serving):
    with raw(main_server) as conn:
        conn.send(b"GET / HTTP/1.1\r\nHost: t\r\nUser-Agent: " + b"a" * 20_000 + b"\r\n\r\n")
        response = conn.read_response()
        assert response.status == 431
        assert response.body == b"Request Header Fields Too Large"
        assert response.header("connection") == "close"
        assert conn.closed_cleanly()
    assert_serving(main_server)


def test_oversized_custom_header_is_431(main_server, raw, assert_serving):
    with raw(main_server) as conn:
        conn.send(b"GET / HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n")
        response = conn.read_response()
        assert response.status == 431
        assert response.body == b"Request Header Fields Too Large"
    assert_serving(main_server)


def test_many_header_lines_over_the_size_limit_are_431(main_server, raw, assert_serving):
    lines = b"".join(b"Accept: t/%s\r\n" % (b"x" * 900) for _ in range(20))  # about 18 KB
    with raw(main_server) as conn:
        conn.send(b"GET / HTTP/1.1\r\nHost: t\r\n" + lines + b"\r\n")
        response = conn.read_response()
        assert response.status == 431
        assert response.body == b"Request Header Fields Too Large"
    assert_serving(main_server)


def test_more_header_lines_than_the_limit_is_431(main_server, raw, assert_serving):
    # 101 short lines, about 1.8 KB: small, but over ROBYN_MAX_HEADER_COUNT's 100.
    lines = b"".join(b"Accept: t/%05d\r\n" % i for i in range(100))
    with raw(main_server) as conn:
        conn.send(b"GET / HTTP/1.1\r\nHost: t\r\n" + lines + b"\r\n")
        response = conn.read_response()
        assert response.status == 431
        assert response.body == b"Request Header Fields Too Large"
        assert response.header("connection") == "close"
        assert conn.closed_by_server()
    assert_serving(main_server)


def test_many_header_lines_under_the_limits_are_served(main_server):
    headers = [("Accept", f"t/{i:05d}") for i in range(60)]
    response = httpx.get(main_server.url("/inspect"), headers=headers)
    assert response.status_code == 200
    joined = response.json()["headers"]["accept"]
    assert [value.strip() for value in joined.split(",")] == [value for _, value in headers]


def test_header_just_under_the_limit_is_served(main_server):
    response = httpx.get(main_server.url("/user-agent"), headers={"User-Agent": "u" * 15_000})
    assert response.status_code == 200
    assert response.json() == {"user_agent": "u" * 15_000, "has": True}


def test_100_kb_header_is_431_and_close(main_server, raw, assert_serving):
    with raw(main_server) as conn:
        try:
            conn.send(b"GET / HTTP/1.1\r\nHost: t\r\nUser-Agent: " + b"a" * 100_000 + b"\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may close while the client is still writing
        response = conn.read_response()
        assert response.status == 431
        assert response.body == b"Request Header Fields Too Large"
        assert conn.closed_by_server()
    assert_serving(main_server)


def test_handler_exception_is_500_with_traceback_logged(main_server, assert_serving):
    response = httpx.get(main_server.url("/boom"))
    assert response.status_code == 500
    assert response.text == "Internal server error"
    log = main_server.wait_for_log("RuntimeError: sync-boom-marker-4711")
    assert "Traceback (most recent call last):" in log
    assert "handler for GET /boom raised" in log
    assert_serving(main_server)


def test_async_handler_exception_is_500_with_traceback_logged(main_server, assert_serving):
    response = httpx.get(main_server.url("/boom-async"))
    assert response.status_code == 500
    assert response.text == "Internal server error"
    log = main_server.wait_for_log("KeyError: 'async-boom-marker-4712'")
    assert "handler for GET /boom-async raised" in log
    assert_serving(main_server)


def test_unsendable_return_value_is_500(main_server, assert_serving):
    response = httpx.get(main_server.url("/bad-return"))
    assert response.status_code == 500
    assert response.text == "Internal server error"
    main_server.wait_for_log("ValueError: Tuple should have 3 elements")
    assert_serving(main_server)


def test_repeated_exceptions_keep_the_server_serving(main_server):
    with httpx.Client() as client:
        for _ in range(20):
            assert client.get(main_server.url("/boom")).status_code == 500
            assert client.get(main_server.url("/boom-async")).status_code == 500
            assert client.get(main_server.url("/fast")).text == "fast"


def test_chunked_request_body_reaches_the_handler(main_server, raw, assert_serving):
    with raw(main_server) as conn:
        conn.send(b"POST /body HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                  b"5;name=value\r\nhello\r\n1\r\n!\r\n0\r\nX-Trailer: yes\r\n\r\n")
        response = conn.read_response()
        assert response.status == 200
        assert json.loads(response.body) == {"type": "str", "text": "hello!"}
        assert response.header("connection") is None
        conn.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        assert conn.read_response().body == b"Hello, world!"
    assert_serving(main_server)


def test_chunked_body_from_a_real_client(main_server, assert_serving):
    def chunks():
        yield b"hello "
        yield b"world"

    response = requests.post(main_server.url("/body"), data=chunks(), timeout=5)
    assert response.status_code == 200
    assert response.json() == {"type": "str", "text": "hello world"}
    assert_serving(main_server)


def test_transfer_encoding_with_content_length_is_400(main_server, raw, assert_serving):
    # RFC 9112 6.1: both framings at once is how requests are smuggled.
    with raw(main_server) as conn:
        conn.send(b"POST /body HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
        response = conn.read_response()
        assert response.status == 400
        assert response.body == b"Bad Request"
        assert response.header("connection") == "close"
        assert conn.closed_by_server()
    assert_serving(main_server)


@pytest.mark.parametrize(
    "value",
    [b"abc", b"-5", b"5x", b"+5", b"99999999999999999999999", b"0x10", b"1 2"],
    ids=["letters", "negative", "trailing-garbage", "plus-sign", "overflow", "hex", "two-numbers"],
)
def test_invalid_content_length_is_400(main_server, raw, assert_serving, value):
    with raw(main_server) as conn:
        conn.send(b"POST /body HTTP/1.1\r\nHost: t\r\nContent-Length: " + value + b"\r\n\r\nhello")
        response = conn.read_response()
        assert response.status == 400
        assert response.body == b"Bad Request"
        assert response.header("connection") == "close"
        assert conn.closed_by_server()
    assert_serving(main_server)


def test_conflicting_content_lengths_are_400(main_server, raw, assert_serving):
    with raw(main_server) as conn:
        conn.send(b"POST /body HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!")
        response = conn.read_response()
        assert response.status == 400
        assert response.body == b"Bad Request"
        assert conn.closed_by_server()
    assert_serving(main_server)


def test_busy_port_gives_a_clear_message(main_server, start_app):
    second = start_app("main_app", port=main_server.port, wait=False)
    code = second.wait_exit(timeout=10)
    assert code != 0
    assert f"address 127.0.0.1:{main_server.port} is already in use" in second.log()
    # The first server is unaffected.
    assert httpx.get(main_server.url("/fast")).text == "fast"
