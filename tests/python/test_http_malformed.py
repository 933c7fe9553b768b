"""Malformed and abandoned requests over raw sockets: each gets its exact status or a clean
close, and the server serves the next request.

These run against a server of their own (one per module, `malformed_server`), except the
ones that are known to be able to wedge a server, which get a fresh one each.
"""

from __future__ import annotations

import json
import socket
import time

import httpx
import pytest


@pytest.fixture(scope="module")
def malformed_server(module_app):
    return module_app("main_app")


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"HELLO WORLD\r\n\r\n",
        b"GET\r\n\r\n",
        b"\x00\x01\x02garbage\r\n\r\n",
        b"GET / FOO/1.1\r\nHost: t\r\n\r\n",
        b"GET /\xff\xfe HTTP/1.1 extra\r\nHost: t\r\n\r\n",
    ],
    ids=["words", "method-only", "binary", "bad-protocol", "extra-token"],
)
def test_unparsable_request_line_is_400_and_close(malformed_server, raw, assert_serving,
                                                  request_bytes):
    with raw(malformed_server) as conn:
        conn.send(request_bytes)
        response = conn.read_response()
        assert (response.status, response.body) == (400, b"Bad Request")
        assert response.header("connection") == "close"
        assert conn.closed_by_server()
    assert_serving(malformed_server)


def test_unknown_method_token_is_405_with_allow_and_kept_alive(malformed_server, raw, assert_serving):
    # A token http-parser does not know is read like any request (docs/http.md): 405 where
    # the path has routes, 501 where it has none, and the connection goes on either way.
    with raw(malformed_server) as conn:
        conn.send(b"BREW / HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\npot!")
        response = conn.read_response()
        assert (response.status, response.body) == (405, b"Method not allowed")
        assert response.header("allow") == "GET, HEAD"
        assert response.header("content-type") == "text/plain; charset=utf-8"
        conn.send(b"BREW /pot/nowhere HTTP/1.1\r\nHost: t\r\n\r\n")
        response = conn.read_response()
        assert (response.status, response.body) == (501, b"Not Implemented")
        assert response.header("connection") != "close"
        conn.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        assert conn.read_response().body == b"Hello, world!"
    assert_serving(malformed_server)


def test_trace_without_a_route_is_405_and_kept_alive(malformed_server, raw, assert_serving):
    with raw(malformed_server) as conn:
        conn.send(b"TRACE / HTTP/1.1\r\nHost: t\r\n\r\n")
        response = conn.read_response()
        assert (response.status, response.body) == (405, b"Method not allowed")
        assert response.header("allow") == "GET, HEAD"
        conn.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        assert conn.read_response().body == b"Hello, world!"
    assert_serving(malformed_server)


def test_header_line_without_colon_is_400_at_once(malformed_server, raw, assert_serving):
    with raw(malformed_server) as conn:
        started = time.monotonic()
        conn.send(b"GET / HTTP/1.1\r\nNo colon in this header line\r\n\r\n")
        response = conn.read_response()
        assert (response.status, response.body) == (400, b"Bad Request")
        assert response.header("connection") == "close"
        assert conn.closed_by_server()
        assert time.monotonic() - started < 1.0
    assert_serving(malformed_server)


def test_unsupported_http_version_is_505(malformed_server, raw, assert_serving):
    with raw(malformed_server) as conn:
        conn.send(b"GET / HTTP/9.9\r\nHost: t\r\n\r\n")
        response = conn.read_response()
        assert (response.status, response.body) == (505, b"HTTP Version Not Supported")
        assert response.header("connection") == "close"
        assert conn.closed_by_server()
    assert_serving(malformed_server)


def test_truncated_body_then_close(malformed_server, raw, assert_serving):
    with raw(malformed_server) as conn:
        conn.send(b"POST /body HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n0123456789")
        conn.sock.shutdown(socket.SHUT_WR)
        assert conn.closed_by_server()
    assert_serving(malformed_server)


def test_truncated_body_abandoned(malformed_server, raw, assert_serving):
    for _ in range(10):
        conn = raw(malformed_server)
        conn.send(b"POST /body HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n0123456789")
        conn.close()
    assert_serving(malformed_server)
    response = httpx.post(malformed_server.url("/body"), content=b"complete")
    assert response.json() == {"type": "str", "text": "complete"}


@pytest.mark.parametrize(
    "partial",
    [b"GE", b"GET /fast HTT", b"GET /fast HTTP/1.1\r\nHost: t\r\nUser-", b"GET /fast HTTP/1.1\r\nHost: t\r\n"],
    ids=["method", "request-line", "header-name", "before-blank-line"],
)
def test_client_disconnects_mid_request(malformed_server, raw, assert_serving, partial):
    for _ in range(5):
        conn = raw(malformed_server)
        conn.send(partial)
        conn.close()
    assert_serving(malformed_server)


def test_client_disconnects_while_sync_handler_runs(malformed_server, raw, assert_serving):
    for _ in range(4):
        conn = raw(malformed_server)
        conn.send(b"GET /sync HTTP/1.1\r\nHost: t\r\n\r\n")
        time.sleep(0.05)
        conn.close()
    assert_serving(malformed_server)
    time.sleep(1.2)  # the handlers finish and answer into closed connections
    assert_serving(malformed_server)
    assert malformed_server.proc.poll() is None


def test_client_disconnects_while_async_handler_runs(malformed_server, raw, assert_serving):
    for _ in range(4):
        conn = raw(malformed_server)
        conn.send(b"GET /async-sleep HTTP/1.1\r\nHost: t\r\n\r\n")
        time.sleep(0.05)
        conn.close()
    assert_serving(malformed_server)
    time.sleep(1.2)
    assert_serving(malformed_server)
    assert malformed_server.proc.poll() is None


def test_client_resets_while_handler_runs(malformed_server, raw, assert_serving):
    conn = raw(malformed_server)
    conn.send(b"GET /sync HTTP/1.1\r\nHost: t\r\n\r\n")
    time.sleep(0.05)
    conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    conn.close()  # RST instead of FIN
    time.sleep(1.2)
    assert_serving(malformed_server)


def test_half_closed_client_is_closed_and_the_server_serves_on(malformed_server, raw,
                                                               assert_serving):
    # libwebsockets closes a raw connection when a read returns end-of-file, so a client
    # that shuts its sending side before its answer arrives gets a close, not the answer
    # (docs/architecture.md, "known limits").
    with raw(malformed_server) as conn:
        conn.send(b"GET /users/half HTTP/1.1\r\nHost: t\r\n\r\n")
        conn.sock.shutdown(socket.SHUT_WR)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                chunk = conn.sock.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not chunk:
                break
            conn.buf += chunk
        assert conn.buf in (b"",) or conn.buf.startswith(b"HTTP/1.1 200 OK\r\n")
    assert_serving(malformed_server)


def test_idle_connection_does_not_block_others(malformed_server, raw, assert_serving):
    idle = [raw(malformed_server) for _ in range(20)]
    try:
        assert_serving(malformed_server)
    finally:
        for conn in idle:
            conn.close()


def test_request_with_nul_in_path_is_400_and_close(malformed_server, raw, assert_serving):
    with raw(malformed_server) as conn:
        conn.send(b"GET /users/a\x00b HTTP/1.1\r\nHost: t\r\n\r\n")
        response = conn.read_response()
        assert (response.status, response.body) == (400, b"Bad Request")
        assert conn.closed_by_server()
    assert_serving(malformed_server)


def test_bare_lf_line_endings_are_accepted(malformed_server, raw):
    with raw(malformed_server) as conn:
        conn.send(b"GET /users/lf HTTP/1.1\nHost: t\n\n")
        response = conn.read_response()
        assert response.status == 200
        assert json.loads(response.body) == {"user": {"id": "lf"}}


# ---- pipelining with bodies: each on a fresh server, since a failure can wedge one -------------


def test_pipelined_get_then_post_with_body(fresh_server, raw, assert_serving):
    with raw(fresh_server) as conn:
        conn.send(b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n"
                  b"POST /body HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\ntwo")
        first = conn.read_response()
        second = conn.read_response()
        assert json.loads(first.body) == {"status": "healthy"}
        assert (second.status, json.loads(second.body)) == (200, {"type": "str", "text": "two"})
        assert second.header("connection") is None
    assert_serving(fresh_server)


def test_pipelined_posts_with_bodies(fresh_server, raw, assert_serving):
    requests_bytes = b"".join(
        b"POST /body HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
        for body in (b"one", b"", b"three!")
    )
    with raw(fresh_server) as conn:
        conn.send(requests_bytes)
        first, second, third = (conn.read_response() for _ in range(3))
        assert json.loads(first.body) == {"type": "str", "text": "one"}
        assert json.loads(second.body) == {"type": "str", "text": ""}
        assert json.loads(third.body) == {"type": "str", "text": "three!"}
        conn.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        assert conn.read_response().body == b"Hello, world!"
    assert_serving(fresh_server)


def test_posts_with_bodies_one_after_another_on_one_connection(fresh_server, raw, assert_serving):
    with raw(fresh_server) as conn:
        for body in (b"one", b"", b"three!"):
            conn.send(b"POST /body HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n%s"
                      % (len(body), body))
            assert json.loads(conn.read_response().body) == {"type": "str", "text": body.decode()}
    assert_serving(fresh_server)


def test_post_body_then_pipelined_get(fresh_server, raw, assert_serving):
    with raw(fresh_server) as conn:
        conn.send(b"POST /body HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\none"
                  b"GET /fast HTTP/1.1\r\nHost: t\r\n\r\n")
        assert json.loads(conn.read_response().body) == {"type": "str", "text": "one"}
        assert conn.read_response().body == b"fast"
    assert_serving(fresh_server)


def test_body_of_a_404_is_not_read_as_a_request(fresh_server, raw, assert_serving):
    smuggled = b"GET /fast HTTP/1.1\r\nHost: t\r\n\r\n"
    with raw(fresh_server) as conn:
        conn.send(b"POST /nope HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n%s" % (len(smuggled), smuggled))
        assert conn.read_response().status == 404
        conn.send(b"GET /users/next HTTP/1.1\r\nHost: t\r\n\r\n")
        following = conn.read_response()
        assert json.loads(following.body) == {"user": {"id": "next"}}
    assert_serving(fresh_server)
