"""Malformed HTTP/1.1 as docs/http.md answers it: each gets its exact status (body: the reason
phrase), "+ close" ones carry Connection: close and the server closes, at once (long before
any timeout); then the server still serves. Also the answers a handler must not be able to
send as they are (CR, LF or NUL in a header): 500, logged, nothing of them on the wire.
"""

from __future__ import annotations

import time

import pytest

HEADER_TIMEOUT = 2
ENV = {"ROBYN_HEADER_TIMEOUT": str(HEADER_TIMEOUT), "ROBYN_BODY_TIMEOUT": "2"}
AT_ONCE = 0.5  # seconds: "at once", well under the head timeout


@pytest.fixture(scope="module")
def server(module_app):
    return module_app("http11_app", env=ENV)


def status_line(response) -> str:
    return response.raw_head.split(b"\r\n", 1)[0].decode("latin-1")


# Robyn's bodies for these; the reason phrase for the others.
BODIES = {404: "Not found", 405: "Method not allowed", 500: "Internal server error"}
REASONS = {400: "Bad Request", 405: "Method Not Allowed", 500: "Internal Server Error",
           501: "Not Implemented", 505: "HTTP Version Not Supported"}


def refused_at_once(server, raw, data: bytes, status: int) -> None:
    """`data` is answered `status` + close within AT_ONCE seconds; the server serves on."""
    with raw(server) as conn:
        started = time.monotonic()
        conn.send_tolerant(data)
        response = conn.read_response()
        elapsed = time.monotonic() - started
        assert status_line(response) == f"HTTP/1.1 {status} {REASONS[status]}", response
        assert response.body == BODIES.get(status, REASONS[status]).encode()
        assert response.header("connection") == "close"
        assert elapsed < AT_ONCE, f"the answer took {elapsed:.3f} s"
        assert conn.closed_by_server(3), "the server kept the connection open"


# ---- request lines ------------------------------------------------------------------------------


BAD_REQUEST_LINES = dict(zip(
    ["words", "method-only", "unknown-token-no-version", "binary", "not-http", "extra-token",
     "nul-in-target", "space-in-target", "bad-minor", "control-in-method"],
    [
        b"HELLO WORLD\r\n\r\n",
        b"GET\r\n\r\n",
        b"Foo bar\r\n\r\n",
        b"\x00\x01\x02garbage\r\n\r\n",
        b"GET /ok FOO/1.1\r\nHost: t\r\n\r\n",
        b"GET /ok HTTP/1.1 extra\r\nHost: t\r\n\r\n",
        b"GET /o\x00k HTTP/1.1\r\nHost: t\r\n\r\n",
        b"GET /o k HTTP/1.1\r\nHost: t\r\n\r\n",
        b"GET /ok HTTP/1.x\r\nHost: t\r\n\r\n",
        b"G\x7fT /ok HTTP/1.1\r\nHost: t\r\n\r\n",
    ],
))


@pytest.mark.parametrize("data", list(BAD_REQUEST_LINES.values()), ids=list(BAD_REQUEST_LINES))
def test_malformed_request_line_is_400_and_close(server, raw, assert_serving, data):
    refused_at_once(server, raw, data, 400)
    assert_serving(server)


@pytest.mark.parametrize("data", list(BAD_REQUEST_LINES.values()), ids=list(BAD_REQUEST_LINES))
def test_malformed_request_line_after_a_good_request_is_400_and_close(server, raw, assert_serving, data):
    # The same answer as on a connection's first request: the parser starts each request alike.
    with raw(server) as conn:
        conn.send(b"GET /ok HTTP/1.1\r\nHost: t\r\n\r\n" + data)
        first = conn.read_response()
        assert (first.status, first.body) == (200, b"ok")
        second = conn.read_response()
        assert status_line(second) == "HTTP/1.1 400 Bad Request", second
        assert second.body == b"Bad Request"
        assert second.header("connection") == "close"
        assert conn.closed_by_server(3)
    assert_serving(server)


@pytest.mark.parametrize("version", [b" HTTP/2.0", b" HTTP/0.9", b" HTTP/3.1", b" HTTP/9.9", b""],
                         ids=["2.0", "0.9", "3.1", "9.9", "no-version"])
def test_other_major_versions_are_505_and_close(server, raw, assert_serving, version):
    # docs/http.md: a request line without a version is HTTP/0.9.
    refused_at_once(server, raw, b"GET /ok" + version + b"\r\nHost: t\r\n\r\n", 505)
    assert_serving(server)


# ---- header lines -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "line",
    [b"Foo bar", b"Foo", b"Foo\tbar", b"X-Fine: v\r\nno colon here"],
    ids=["words", "one-word", "tab", "after-a-good-one"],
)
def test_header_line_without_a_colon_is_400_and_close_at_once(server, raw, assert_serving, line):
    refused_at_once(server, raw, b"GET /ok HTTP/1.1\r\nHost: t\r\n" + line + b"\r\n\r\n", 400)
    assert_serving(server)


@pytest.mark.parametrize(
    "line",
    [b"Transfer-Encoding : chunked", b"Host : t", b"X-A\t: v", b"Content-Length : 5"],
    ids=["transfer-encoding", "host", "tab", "content-length"],
)
def test_white_space_before_the_colon_is_400_and_close(server, raw, assert_serving, line):
    refused_at_once(server, raw, b"POST /echo HTTP/1.1\r\nHost: t\r\n" + line + b"\r\n\r\n", 400)
    assert_serving(server)


@pytest.mark.parametrize(
    "lines",
    [b"X-A: one\r\n two", b"X-A: one\r\n\ttwo", b"X-A: one\r\n  \r\nX-B: b"],
    ids=["space", "tab", "blank-continuation"],
)
def test_obs_fold_is_400_and_close(server, raw, assert_serving, lines):
    refused_at_once(server, raw, b"GET /echo HTTP/1.1\r\nHost: t\r\n" + lines + b"\r\n\r\n", 400)
    assert_serving(server)


def test_white_space_line_before_the_first_header_is_400(server, raw, assert_serving):
    refused_at_once(server, raw, b"GET /echo HTTP/1.1\r\n Host: t\r\n\r\n", 400)
    assert_serving(server)


@pytest.mark.parametrize(
    "line",
    [b"X-A: a\x00b", b"X-A: \x00", b"X-A: a\x01b", b"X-A: a\x7fb", b"X-A: a\x1bb",
     b"X-\x00A: v", b"X-\x01A: v", b"X-\x7fA: v", b"X-A\x00: v"],
    ids=["nul-in-value", "only-nul", "soh-in-value", "del-in-value", "esc-in-value",
         "nul-in-name", "soh-in-name", "del-in-name", "nul-before-colon"],
)
def test_control_character_in_a_header_is_400_and_close(server, raw, assert_serving, line):
    refused_at_once(server, raw, b"GET /echo HTTP/1.1\r\nHost: t\r\n" + line + b"\r\n\r\n", 400)
    assert_serving(server)


# ---- framing: no request smuggling ------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        b"Content-Length: 5\r\nTransfer-Encoding: chunked",
        b"Transfer-Encoding: chunked\r\nContent-Length: 5",
        b"Content-Length: 0\r\nTransfer-Encoding: chunked",
    ],
    ids=["cl-first", "te-first", "cl-zero"],
)
def test_content_length_with_transfer_encoding_is_400_and_close(server, raw, assert_serving, headers):
    refused_at_once(server, raw, b"POST /echo HTTP/1.1\r\nHost: t\r\n" + headers
                    + b"\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 400)
    assert_serving(server)


@pytest.mark.parametrize(
    "headers",
    [b"Content-Length: 5\r\nContent-Length: 6", b"Content-Length: 6\r\nContent-Length: 5"],
    ids=["5-then-6", "6-then-5"],
)
def test_two_different_content_lengths_are_400_and_close(server, raw, assert_serving, headers):
    refused_at_once(server, raw, b"POST /echo HTTP/1.1\r\nHost: t\r\n" + headers + b"\r\n\r\nhello!", 400)
    assert_serving(server)


@pytest.mark.parametrize(
    "value",
    [b"abc", b"-5", b"+5", b"5x", b"0x10", b"1 2", b"5.0", b"", b"99999999999999999999999"],
    ids=["letters", "negative", "plus", "trailing-garbage", "hex", "two-numbers", "decimal", "empty",
         "overflow"],
)
def test_content_length_that_is_not_digits_is_400_and_close(server, raw, assert_serving, value):
    refused_at_once(server, raw, b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: " + value
                    + b"\r\n\r\nhello", 400)
    assert_serving(server)


@pytest.mark.parametrize("coding", [b"gzip", b"deflate", b"chunked, gzip", b"identity"])
def test_a_transfer_coding_other_than_chunked_is_501_and_close(server, raw, assert_serving, coding):
    refused_at_once(server, raw, b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: " + coding
                    + b"\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 501)
    assert_serving(server)


@pytest.mark.parametrize(
    "body",
    [
        b"zz\r\nhello\r\n0\r\n\r\n",
        b"5\r\nhelloXX0\r\n\r\n",
        b"-1\r\nhello\r\n0\r\n\r\n",
        b"\r\nhello\r\n0\r\n\r\n",
    ],
    ids=["not-hex", "no-crlf-after-data", "negative", "empty-size"],
)
def test_malformed_chunks_are_400_and_close(server, raw, assert_serving, body):
    refused_at_once(server, raw, b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n" + body,
                    400)
    assert_serving(server)


def test_a_good_request_then_a_bad_one_on_the_same_connection(server, raw, assert_serving):
    with raw(server) as conn:
        conn.send(b"GET /ok HTTP/1.1\r\nHost: t\r\n\r\nGET /ok HTTP/1.1\r\nHost: t\r\nFoo bar\r\n\r\n")
        first = conn.read_response()
        assert (first.status, first.body) == (200, b"ok")
        second = conn.read_response()
        assert (second.status, second.body) == (400, b"Bad Request")
        assert second.header("connection") == "close"
        assert conn.closed_by_server(3)
    assert_serving(server)


def test_bare_lf_line_endings_are_accepted(server, raw):
    with raw(server) as conn:
        conn.send(b"GET /users/lf HTTP/1.1\nHost: t\n\n")
        response = conn.read_response()
        assert (response.status, response.body) == (200, b'{"user_id":"lf"}')


# ---- what a handler cannot send ----------------------------------------------------------------------


@pytest.mark.parametrize("route", ["/bad-header", "/bad-header-headers", "/bad-header-async"])
@pytest.mark.parametrize("kind", ["nul-value", "nul-name", "cr-value", "lf-value", "crlf-injection", "lf-name"])
def test_header_with_cr_lf_or_nul_from_a_handler_is_500_logged_never_sent(server, raw, assert_serving,
                                                                          route, kind):
    path = f"{route}/{kind}"
    log_before = len(server.log())
    with raw(server, timeout=2) as conn:  # "at once": never a hang
        started = time.monotonic()
        conn.send(f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
        response = conn.read_response()
        elapsed = time.monotonic() - started
        assert status_line(response) == "HTTP/1.1 500 Internal Server Error", response
        assert response.body == b"Internal server error"
        assert elapsed < 1.0, f"the 500 took {elapsed:.3f} s"
        head = response.raw_head.lower()
        for never in (b"x-bad", b"injected", b"\x00", b"should never be sent"):
            assert never not in head, f"{never!r} reached the wire: {response.raw_head!r}"
        assert b"\r" not in head.replace(b"\r\n", b"")
    # Logged: new lines in the log, about the route or the header. (How the message reads
    # is not part of docs/http.md.)
    deadline = time.monotonic() + 3
    while True:
        logged = server.log()[log_before:]
        if f"{route}/" in logged or "header" in logged.lower():
            break
        assert time.monotonic() < deadline, f"nothing about {path} or its header was logged:\n{logged}"
        time.sleep(0.02)
    assert_serving(server)


def test_a_500_for_a_bad_header_leaves_the_connection_usable_or_closed(server, raw):
    with raw(server, timeout=2) as conn:
        conn.send(b"GET /bad-header/nul-value HTTP/1.1\r\nHost: t\r\n\r\n"
                  b"GET /ok HTTP/1.1\r\nHost: t\r\n\r\n")
        first = conn.read_response()
        assert first.status == 500
        if first.header("connection") == "close":
            assert conn.closed_by_server(3)
        else:
            second = conn.read_response()
            assert (second.status, second.body) == (200, b"ok")
