"""HTTP/1.1 requests as docs/http.md says the server takes them: every header, every method,
bodies (Content-Length and chunked), Expect: 100-continue, HTTP/1.0 and keep-alive, request
targets and their decoding, pipelining.

Every request goes over a raw socket, and every answer is checked exactly: status, body, and
whether the connection stays open (the next request on it gets its answer) or closes.
The limits, timeouts and connection floods are in test_http11_limits.py; malformed input in
test_http11_malformed.py; random input in test_http11_fuzz.py.
"""

from __future__ import annotations

import hashlib
import json
import random

import pytest
import requests

PAYLOAD_LIMIT = 65536
ENV = {"ROBYN_MAX_PAYLOAD_SIZE": str(PAYLOAD_LIMIT)}
# Every method a route can have; HEAD is answered by the GET route unless it has its own.
ROUTED_METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"]


@pytest.fixture(scope="module")
def server(module_app):
    return module_app("http11_app", env=ENV)


# ---- building requests and checking answers ---------------------------------------------------


def _bytes(item: str | bytes) -> bytes:
    return item if isinstance(item, bytes) else item.encode("latin-1")


def request(method: str = "GET", target: str | bytes = "/ok", *headers: str | bytes,
            body: bytes | None = None, version: str = "HTTP/1.1", host: str | None = "t") -> bytes:
    """One request. A body gets a Content-Length unless the headers frame it themselves."""
    lines = [_bytes(method) + b" " + _bytes(target) + b" " + _bytes(version)]
    if host is not None:
        lines.append(b"Host: " + _bytes(host))
    lines += [_bytes(h) for h in headers]
    framed = any(_bytes(h).lower().startswith((b"content-length:", b"transfer-encoding:")) for h in headers)
    if body is not None and not framed:
        lines.append(b"Content-Length: %d" % len(body))
    return b"\r\n".join(lines) + b"\r\n\r\n" + (body or b"")


def chunked(*pieces: bytes, extensions: bool = False, trailers: tuple[str, ...] = ()) -> bytes:
    """A chunked body: one chunk per piece (sizes in hex, upper and lower case), then the last
    chunk and the trailers."""
    out = b""
    for i, piece in enumerate(pieces):
        size = b"%x" % len(piece) if i % 2 else b"%X" % len(piece)
        ext = b";name=value;flag" if extensions else b""
        out += size + ext + b"\r\n" + piece + b"\r\n"
    out += b"0" + (b";last=1" if extensions else b"") + b"\r\n"
    out += b"".join(_bytes(t) + b"\r\n" for t in trailers)
    return out + b"\r\n"


def echoed(response) -> dict:
    assert response.status == 200, (response, response.body[:300])
    return json.loads(response.body)


def allow(response) -> set[str]:
    value = response.header("allow")
    assert value is not None, f"no Allow header: {response.raw_head!r}"
    return {method.strip() for method in value.split(",")}


def status_line(response) -> str:
    return response.raw_head.split(b"\r\n", 1)[0].decode("latin-1")


def assert_kept_alive(conn) -> None:
    """The connection still works: another request on it gets its answer."""
    conn.send(request("GET", "/ok"))
    following = conn.read_response()
    assert (following.status, following.body) == (200, b"ok"), following


def assert_closed(conn, timeout: float = 3.0) -> None:
    assert conn.closed_by_server(timeout), "the server kept the connection open"


# ---- headers ----------------------------------------------------------------------------------


def test_any_header_name_reaches_the_handler(server, raw):
    # The app never calls app.capture_headers().
    with raw(server) as conn:
        conn.send(request("GET", "/custom", "X-Custom-Thing: v"))
        assert echoed(conn.read_response()) == {"value": "v"}


def test_every_header_line_reaches_request_headers_in_order(server, raw):
    sent = [
        ("X-Custom-Thing", "v"),
        ("Foo-Bar", "baz"),
        ("A", "single-letter name"),
        ("x-lower", "lower"),
        ("X-UPPER", "upper"),
        ("X-Token.Chars_!#$%&'*+^`|~", "every token character"),
        ("Accept-Encoding", "gzip"),
        ("Authorization", "Bearer t"),
        ("Sec-Fetch-Mode", "cors"),
        ("Never-Heard-Of-This-One-" + "n" * 200, "long name"),
    ]
    with raw(server) as conn:
        conn.send(request("POST", "/echo", *(f"{n}: {v}" for n, v in sent), body=b"b"))
        data = echoed(conn.read_response())
    got = [tuple(pair) for pair in data["headers"]]
    expected = [("host", "t")] + [(n.lower(), v) for n, v in sent] + [("content-length", "1")]
    assert got == expected


@pytest.mark.parametrize(
    ("line", "value"),
    [
        (b"X-Pad:   v  \t", "v"),  # optional white space around the value is not part of it
        (b"X-Pad:v", "v"),
        (b"X-Pad:", ""),
        (b"X-Pad:   ", ""),
        (b"X-Pad: a  b\tc", "a  b\tc"),  # inner white space is
        (b"X-Pad: a:b: c", "a:b: c"),
        (b"X-Pad: caf\xc3\xa9", "caf\u00e9"),
        (b"X-Pad: \xff\xfe", "\ufffd\ufffd"),  # obs-text arrives decoded with replacements
    ],
    ids=["padded", "no-space", "empty", "only-spaces", "inner-space", "colons", "utf-8", "obs-text"],
)
def test_header_values(server, raw, line, value):
    with raw(server) as conn:
        conn.send(request("GET", "/echo", line))
        data = echoed(conn.read_response())
        assert data["headers_dict"]["x-pad"] == value
        assert_kept_alive(conn)


def test_repeated_headers_stay_repeated(server, raw):
    # Robyn's semantics (robyn/datastructures.py): get() is the last value, get_all() every
    # value in arrival order, to_dict() joins them with ", ".
    with raw(server) as conn:
        conn.send(request("GET", "/repeated", "X-Dup: one", "x-dup: two", "Other: o", "X-DUP: three"))
        data = echoed(conn.read_response())
    assert data == {"get": "three", "get_all": ["one", "two", "three"],
                    "to_dict": "one, two, three", "contains": True}


def test_repeated_headers_in_the_echo(server, raw):
    with raw(server) as conn:
        conn.send(request("GET", "/echo", "Cookie: a=1", "Accept: a/b", "Cookie: b=2", "Accept: c/d"))
        data = echoed(conn.read_response())
    assert [p for p in data["headers"] if p[0] == "cookie"] == [["cookie", "a=1"], ["cookie", "b=2"]]
    assert data["headers_dict"]["accept"] == "a/b, c/d"


def test_a_hundred_custom_headers_all_arrive(server, raw):
    # 99 of them and Host: exactly ROBYN_MAX_HEADER_COUNT (100) header lines.
    lines = [f"X-Custom-{i:03d}: value-{i}" for i in range(99)]
    with raw(server) as conn:
        conn.send(request("GET", "/echo", *lines))
        data = echoed(conn.read_response())
    assert len(data["headers"]) == 100
    assert all(data["headers_dict"][f"x-custom-{i:03d}"] == f"value-{i}" for i in range(99))


def test_capture_headers_is_kept_as_a_no_op():
    from robyn import Robyn

    app = Robyn(__file__)
    assert app.capture_headers("x-anything", "x-else") is None


# ---- methods ----------------------------------------------------------------------------------


def test_trace_is_part_of_the_api():
    from robyn import Robyn

    app = Robyn(__file__)
    assert callable(getattr(app, "trace", None)), "Robyn has no app.trace"

    @app.trace("/traced")
    def traced():
        return "t"

    assert traced() == "t"  # the decorator gives the handler back


@pytest.mark.parametrize("method", ROUTED_METHODS)
def test_every_method_token_routes(server, raw, method):
    with raw(server) as conn:
        conn.send(request(method, "/m"))
        response = conn.read_response()
        assert (response.status, response.body) == (200, f"{method} route".encode())
        assert response.header("x-route") == method
        conn.send(request(method, "/echo/x", body=b"body of " + method.encode()))
        data = echoed(conn.read_response())
        assert (data["method"], data["path"], data["body"]) == (method, "/echo/x", f"body of {method}")
        assert_kept_alive(conn)


def test_trace_route_answers(server, raw):
    with raw(server) as conn:
        conn.send(request("TRACE", "/t"))
        response = conn.read_response()
        assert status_line(response) == "HTTP/1.1 200 OK"
        assert response.body == b"traced"
        assert_kept_alive(conn)


def test_head_with_a_route_of_its_own(server, raw):
    with raw(server) as conn:
        conn.send(request("HEAD", "/m"))
        response = conn.read_response(head_request=True)
        assert response.status == 200
        assert response.header("x-route") == "HEAD"
        assert_kept_alive(conn)  # no body bytes came after the head


def test_head_is_served_by_the_get_route(server, raw):
    with raw(server) as conn:
        conn.send(request("GET", "/m"))
        get = conn.read_response()
        conn.send(request("HEAD", "/ok") + request("HEAD", "/echo/h"))
        head_ok, head_echo = conn.read_responses(2, head_request=True)
        assert head_ok.status == 200 and head_ok.header("content-length") == "2"
        assert head_echo.status == 200 and head_echo.header("content-type") == "application/json"
        assert_kept_alive(conn)  # no body bytes came after either head
    assert get.header("x-route") == "GET"


# Method tokens http-parser knows but no route can have.
@pytest.mark.parametrize("method", ["PURGE", "MKCOL", "LINK", "SEARCH"])
def test_unknown_method_on_a_path_without_routes_is_501_kept_alive(server, raw, method):
    with raw(server) as conn:
        conn.send(request(method, "/nothing/here"))
        response = conn.read_response()
        assert status_line(response) == "HTTP/1.1 501 Not Implemented"
        assert response.body == b"Not Implemented"
        assert response.header("connection") != "close"
        assert_kept_alive(conn)


@pytest.mark.parametrize("method", ["PURGE", "MKCOL", "LINK"])
def test_unknown_method_on_a_routed_path_is_405_with_allow_kept_alive(server, raw, method):
    with raw(server) as conn:
        conn.send(request(method, "/ok"))
        response = conn.read_response()
        assert status_line(response) == "HTTP/1.1 405 Method Not Allowed"
        assert response.body == b"Method not allowed"
        assert allow(response) == {"GET", "HEAD"}
        assert_kept_alive(conn)


# Method tokens http-parser does not know: read like any request (docs/http.md).
UNKNOWN_TOKENS = ["BREW", "NONSTANDARD", "get", "GETX", "X-1.0_~!"]


@pytest.mark.parametrize("method", UNKNOWN_TOKENS)
def test_unknown_method_token_on_a_path_without_routes_is_501_kept_alive(server, raw, method):
    with raw(server) as conn:
        conn.send(request(method, "/nothing/here"))
        response = conn.read_response()
        assert status_line(response) == "HTTP/1.1 501 Not Implemented"
        assert response.body == b"Not Implemented"
        assert response.header("allow") is None
        assert response.header("connection") != "close"
        assert_kept_alive(conn)


@pytest.mark.parametrize("method", UNKNOWN_TOKENS)
def test_unknown_method_token_on_a_routed_path_is_405_with_allow_kept_alive(server, raw, method):
    with raw(server) as conn:
        conn.send(request(method, "/ok"))
        response = conn.read_response()
        assert status_line(response) == "HTTP/1.1 405 Method Not Allowed"
        assert response.body == b"Method not allowed"
        assert allow(response) == {"GET", "HEAD"}
        assert response.header("connection") != "close"
        assert_kept_alive(conn)


def test_unknown_method_token_with_bodies_and_pipelining_keeps_the_connection_in_step(server, raw):
    smuggled = b"GET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n"
    with raw(server) as conn:
        conn.send(request("BREW", "/post-only", body=smuggled)
                  + b"\r\n"  # the empty line RFC 9112 2.2 lets a client send between requests
                  + request("NONSTANDARD", "/ok", "Transfer-Encoding: chunked", body=chunked(smuggled))
                  + request("GET", "/ok"))
        first, second, third = conn.read_responses(3)
        assert (first.status, allow(first)) == (405, {"POST"})
        assert (second.status, allow(second)) == (405, {"GET", "HEAD"})
        assert (third.status, third.body) == (200, b"ok")  # neither body was taken for a request
        assert_kept_alive(conn)


def test_unknown_method_token_cut_across_writes(server, raw):
    with raw(server) as conn:
        data = request("GET", "/ok") + request("NONSTANDARD", "/ok")
        cut = len(request("GET", "/ok")) + 5  # "NONST" | "ANDARD /ok ..."
        conn.send(data[:cut])
        assert (conn.read_response().status) == 200
        conn.send(data[cut:])
        response = conn.read_response()
        assert (response.status, allow(response)) == (405, {"GET", "HEAD"})
        assert_kept_alive(conn)


def test_unknown_method_token_with_connection_close_closes(server, raw, assert_serving):
    with raw(server) as conn:
        conn.send(request("BREW", "/nothing/here", "Connection: close"))
        response = conn.read_response()
        assert (response.status, response.body) == (501, b"Not Implemented")
        assert response.header("connection") == "close"
        assert_closed(conn)
    assert_serving(server)


def test_method_token_over_32_bytes_is_501_and_close(server, raw, assert_serving):
    with raw(server) as conn:
        conn.send(request("A" * 33, "/ok"))
        response = conn.read_response()
        assert status_line(response) == "HTTP/1.1 501 Not Implemented"
        assert response.body == b"Not Implemented"
        assert response.header("connection") == "close"
        assert_closed(conn)
    with raw(server) as conn:  # 32 bytes is a token like any other
        conn.send(request("A" * 32, "/ok"))
        response = conn.read_response()
        assert (response.status, allow(response)) == (405, {"GET", "HEAD"})
        assert_kept_alive(conn)
    assert_serving(server)


@pytest.mark.parametrize("line", [b"BR@W /ok HTTP/1.1", b"BREW\t/ok HTTP/1.1", b"BREW(1) /ok HTTP/1.1",
                                  b"\xc3\x89T\xc3\x89 /ok HTTP/1.1"])
def test_method_that_is_not_a_token_is_400_and_close(server, raw, assert_serving, line):
    with raw(server) as conn:
        conn.send(line + b"\r\nHost: t\r\n\r\n")
        response = conn.read_response()
        assert (response.status, response.body) == (400, b"Bad Request")
        assert response.header("connection") == "close"
        assert_closed(conn)
    assert_serving(server)


def test_unknown_method_with_a_body_keeps_the_connection_in_step(server, raw):
    with raw(server) as conn:
        conn.send(request("PURGE", "/ok", body=b"GET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n"))
        assert conn.read_response().status == 405
        assert_kept_alive(conn)  # the body was not taken for a request


def test_known_method_without_its_route_is_405_kept_alive(server, raw):
    with raw(server) as conn:
        conn.send(request("DELETE", "/ok") + request("GET", "/post-only") + request("POST", "/nope", body=b"x"))
        first, second, third = conn.read_responses(3)
        assert (first.status, allow(first)) == (405, {"GET", "HEAD"})
        assert (second.status, allow(second)) == (405, {"POST"})
        assert (third.status, third.body) == (404, b"Not found")
        assert_kept_alive(conn)


def test_connect_without_a_route_is_501_and_closed(server, raw, assert_serving):
    with raw(server) as conn:
        conn.send(b"CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\n\r\n")
        response = conn.read_response()
        assert status_line(response) == "HTTP/1.1 501 Not Implemented"
        assert response.body == b"Not Implemented"
        assert_closed(conn)
    assert_serving(server)


def test_connect_to_a_path_with_other_routes_is_405_and_closed(start_app, raw, assert_serving):
    server = start_app("http11_app", env={"APP_CONNECT_ROUTE": "get"})
    with raw(server) as conn:
        conn.send(b"CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\n\r\n")
        response = conn.read_response()
        assert status_line(response) == "HTTP/1.1 405 Method Not Allowed"
        assert response.body == b"Method not allowed"
        assert allow(response) == {"GET", "HEAD"}
        assert_closed(conn)
    with raw(server) as conn:  # the route is there for GET
        conn.send(request("GET", "/127.0.0.1:22"))
        assert echoed(conn.read_response()) == {"get": "127.0.0.1:22"}
    assert_serving(server)


def test_connect_route_answers_then_closes(start_app, raw, assert_serving):
    server = start_app("http11_app", env={"APP_CONNECT_ROUTE": "connect"})
    with raw(server) as conn:
        conn.send(b"CONNECT 127.0.0.1:8443 HTTP/1.1\r\nHost: 127.0.0.1:8443\r\n\r\n")
        response = conn.read_head()
        assert response.status == 200, response
        rest = conn.read_until_closed(3)  # always closed after the answer
        expected = b'{"tunnel":"127.0.0.1:8443"}'
        if response.header("content-length") is not None:
            assert rest == expected
        else:
            assert rest in (b"", expected)
    assert_serving(server)


# ---- bodies -----------------------------------------------------------------------------------


def test_content_length_body_reaches_the_handler_whole(server, raw):
    body = random.Random(1).randbytes(50_000)
    with raw(server) as conn:
        conn.send(request("POST", "/echo", body=body))
        data = echoed(conn.read_response())
        assert (data["body_length"], data["body_sha256"]) == (len(body), hashlib.sha256(body).hexdigest())
        assert_kept_alive(conn)


def test_chunked_body_reaches_the_handler_whole(server, raw):
    rng = random.Random(2)
    pieces = [rng.randbytes(size) for size in (1, 15, 16, 255, 256, 4096, 10_000, 3)]
    body = b"".join(pieces)
    with raw(server) as conn:
        conn.send(request("POST", "/echo", "Transfer-Encoding: chunked") + chunked(*pieces))
        data = echoed(conn.read_response())
        assert (data["body_length"], data["body_sha256"]) == (len(body), hashlib.sha256(body).hexdigest())
        assert_kept_alive(conn)


def test_chunked_body_with_extensions_and_trailers(server, raw):
    with raw(server) as conn:
        conn.send(request("POST", "/echo", "Transfer-Encoding: chunked", "Trailer: X-Checksum")
                  + chunked(b"hello", b" ", b"world", extensions=True,
                            trailers=("X-Checksum: abc", "X-Other-Trailer: 1")))
        data = echoed(conn.read_response())
        assert data["body"] == "hello world"
        names = [name for name, _ in data["headers"]]
        assert "x-checksum" not in names and "x-other-trailer" not in names  # read and dropped
        assert_kept_alive(conn)


def test_chunked_body_split_byte_by_byte(server, raw):
    data_bytes = request("POST", "/echo", "Transfer-Encoding: chunked") + chunked(
        b"split ", b"into bytes", extensions=True, trailers=("X-T: t",))
    with raw(server) as conn:
        for byte in data_bytes:
            conn.send(bytes([byte]))
        assert echoed(conn.read_response())["body"] == "split into bytes"
        assert_kept_alive(conn)


def test_empty_chunked_body(server, raw):
    with raw(server) as conn:
        conn.send(request("POST", "/echo", "Transfer-Encoding: chunked") + b"0\r\n\r\n")
        assert echoed(conn.read_response())["body_length"] == 0
        assert_kept_alive(conn)


def test_transfer_encoding_name_and_value_are_case_insensitive(server, raw):
    with raw(server) as conn:
        conn.send(request("POST", "/echo", "transfer-ENCODING: Chunked") + chunked(b"abc"))
        assert echoed(conn.read_response())["body"] == "abc"
        assert_kept_alive(conn)


def test_chunked_body_from_a_real_client(server):
    def pieces():
        yield b"hello "
        yield b"world"

    response = requests.post(server.url("/echo"), data=pieces(), timeout=5)
    assert response.status_code == 200
    assert response.json()["body"] == "hello world"


def test_chunked_body_at_the_limit_is_accepted(server, raw):
    body = b"c" * PAYLOAD_LIMIT
    with raw(server) as conn:
        conn.send(request("POST", "/echo", "Transfer-Encoding: chunked")
                  + chunked(*(body[i:i + 10_000] for i in range(0, len(body), 10_000))))
        assert echoed(conn.read_response())["body_length"] == PAYLOAD_LIMIT


def test_chunked_body_over_the_limit_is_413_and_close(server, raw, assert_serving):
    body = b"c" * (PAYLOAD_LIMIT + 1)
    with raw(server) as conn:
        conn.send_tolerant(request("POST", "/echo", "Transfer-Encoding: chunked")
                           + chunked(*(body[i:i + 10_000] for i in range(0, len(body), 10_000))))
        response = conn.read_response()
        assert (response.status, response.body) == (413, b"Payload Too Large")
        assert response.header("connection") == "close"
        assert conn.closed_cleanly(3)
    assert_serving(server)


def test_one_huge_chunk_over_the_limit_is_413_before_its_data(server, raw, assert_serving):
    # A chunk size over the limit is refused on its size line, without waiting for its data.
    with raw(server) as conn:
        conn.send(request("POST", "/echo", "Transfer-Encoding: chunked") + b"%x\r\n" % (10 * PAYLOAD_LIMIT) + b"x" * 100)
        response = conn.read_response()
        assert (response.status, response.body) == (413, b"Payload Too Large")
        assert response.header("connection") == "close"
        assert_closed(conn)
    assert_serving(server)


# ---- Expect: 100-continue -----------------------------------------------------------------------


def test_expect_100_continue(server, raw):
    body = b"sent only after the 100"
    with raw(server) as conn:
        conn.send(request("POST", "/echo", "Expect: 100-continue", f"Content-Length: {len(body)}"))
        interim = conn.read_response()
        assert status_line(interim) == "HTTP/1.1 100 Continue", interim
        conn.send(body)
        data = echoed(conn.read_response())
        assert data["body"] == body.decode()
        assert_kept_alive(conn)


def test_expect_100_continue_with_a_chunked_body(server, raw):
    with raw(server) as conn:
        conn.send(request("PUT", "/echo", "Expect: 100-Continue", "Transfer-Encoding: chunked"))
        assert status_line(conn.read_response()) == "HTTP/1.1 100 Continue"
        conn.send(chunked(b"after", b" the 100"))
        assert echoed(conn.read_response())["body"] == "after the 100"
        assert_kept_alive(conn)


def test_expect_100_continue_over_the_limit_is_413_without_100(server, raw, assert_serving):
    with raw(server) as conn:
        conn.send(request("POST", "/echo", "Expect: 100-continue", f"Content-Length: {PAYLOAD_LIMIT + 1}"))
        response = conn.read_response()
        assert (response.status, response.body) == (413, b"Payload Too Large")
        assert response.header("connection") == "close"
        assert_closed(conn)
    assert_serving(server)


@pytest.mark.parametrize("value", ["teapot", "100-continue-please", "200-ok"])
def test_other_expectation_is_417_and_close(server, raw, assert_serving, value):
    # docs/http.md: + close, since the client may send its body anyway.
    with raw(server) as conn:
        conn.send(request("POST", "/echo", f"Expect: {value}", "Content-Length: 5"))
        response = conn.read_response()
        assert status_line(response) == "HTTP/1.1 417 Expectation Failed"
        assert response.body == b"Expectation Failed"
        assert response.header("connection") == "close"
        conn.send_tolerant(b"hello")
        assert conn.closed_cleanly(3)
    assert_serving(server)


# ---- pipelining ---------------------------------------------------------------------------------


def test_three_posts_with_bodies_pipelined_in_one_write(server, raw):
    bodies = [b"first body", b"", b"third" * 1000]
    with raw(server) as conn:
        conn.send(b"".join(request("POST", f"/echo/{i}", body=body) for i, body in enumerate(bodies)))
        for i, (response, body) in enumerate(zip(conn.read_responses(3), bodies)):
            data = echoed(response)
            assert (data["path"], data["body_length"]) == (f"/echo/{i}", len(body))
            assert data["body_sha256"] == hashlib.sha256(body).hexdigest()
        assert_kept_alive(conn)


def test_pipelined_404s_with_and_without_a_body(server, raw, assert_serving):
    with raw(server) as conn:
        conn.send(b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"
                  b"GET /nope HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\na")
        first, second = conn.read_responses(2)
        assert (first.status, first.body) == (404, b"Not found")
        assert (second.status, second.body) == (404, b"Not found")
        assert_kept_alive(conn)  # the "a" was the second request's body, nothing more
    assert_serving(server)


def test_pipelined_chunked_posts(server, raw):
    with raw(server) as conn:
        conn.send(request("POST", "/echo/1", "Transfer-Encoding: chunked") + chunked(b"one", trailers=("T: 1",))
                  + request("POST", "/echo/2", body=b"two")
                  + request("POST", "/echo/3", "Transfer-Encoding: chunked") + chunked(b"th", b"ree"))
        bodies = [echoed(r)["body"] for r in conn.read_responses(3)]
        assert bodies == ["one", "two", "three"]


def test_pipelined_answers_keep_request_order_across_kinds_of_route(server, raw):
    # A slow sync handler, a slow async one, a const route, the server's own answers and a
    # body: answers strictly in request order, whatever finishes first.
    with raw(server) as conn:
        conn.send(request("GET", "/slow") + request("GET", "/const") + request("GET", "/slow-async")
                  + request("GET", "/nope") + request("DELETE", "/ok") + request("PURGE", "/nothing")
                  + request("POST", "/echo/last", body=b"body") + request("GET", "/users/u1"))
        answers = conn.read_responses(8)
    assert [(r.status, r.body) for r in answers[:6]] == [
        (200, b"slow"), (200, b"const!"), (200, b"slow-async"), (404, b"Not found"),
        (405, b"Method not allowed"), (501, b"Not Implemented")]
    assert echoed(answers[6])["body"] == "body"
    assert echoed(answers[7]) == {"user_id": "u1"}


def test_a_pipeline_deeper_than_max_pipeline_is_answered_whole(server, raw):
    # ROBYN_MAX_PIPELINE (64) only pauses reading: nothing is refused.
    count = 200
    with raw(server, timeout=10) as conn:
        conn.send(b"".join(request("GET", f"/echo?i={i}") if i % 3 else request("GET", "/const")
                           for i in range(count)))
        for i, response in enumerate(conn.read_responses(count)):
            if i % 3:
                assert echoed(response)["query"] == {"i": [str(i)]}, i
            else:
                assert (response.status, response.body) == (200, b"const!"), i
        assert_kept_alive(conn)


def test_pipelined_connection_close_ends_the_connection_there(server, raw):
    with raw(server) as conn:
        conn.send(request("GET", "/ok") + request("GET", "/const", "Connection: close")
                  + request("GET", "/ok"))
        first, second = conn.read_responses(2)
        assert (first.body, second.body) == (b"ok", b"const!")
        assert second.header("connection") == "close"
        assert_closed(conn)  # the third request is not answered


# ---- HTTP/1.0, HTTP/1.1 and keep-alive ------------------------------------------------------------


def test_http_1_1_keeps_alive_by_default(server, raw):
    with raw(server) as conn:
        for i in range(5):
            conn.send(request("GET", f"/users/{i}"))
            response = conn.read_response()
            assert echoed(response) == {"user_id": str(i)}
            assert response.header("connection") in (None, "keep-alive")


@pytest.mark.parametrize("value", ["close", "Close", "keep-alive, close", "CLOSE"])
def test_http_1_1_connection_close(server, raw, value):
    with raw(server) as conn:
        conn.send(request("GET", "/ok", f"Connection: {value}"))
        response = conn.read_response()
        assert (response.status, response.body) == (200, b"ok")
        assert response.header("connection") == "close"
        assert conn.closed_cleanly(3)


def test_http_1_0_is_closed_after_the_answer(server, raw):
    with raw(server) as conn:
        conn.send(b"GET /ok HTTP/1.0\r\n\r\n")  # no Host: HTTP/1.0 need not send one
        response = conn.read_response()
        assert (response.status, response.body) == (200, b"ok")
        assert status_line(response).startswith("HTTP/1.1 ")
        assert conn.closed_cleanly(3)


def test_http_1_0_post_with_a_body(server, raw):
    with raw(server) as conn:
        conn.send(request("POST", "/echo", body=b"one-oh", version="HTTP/1.0", host=None))
        assert echoed(conn.read_response())["body"] == "one-oh"
        assert conn.closed_cleanly(3)


def test_http_1_0_keep_alive_when_asked(server, raw):
    with raw(server) as conn:
        for i in range(3):
            conn.send(request("GET", f"/users/{i}", "Connection: keep-alive", version="HTTP/1.0", host=None))
            response = conn.read_response()
            assert echoed(response) == {"user_id": str(i)}
            # An HTTP/1.0 client (ab -k) reuses the connection only when the answer says so.
            assert (response.header("connection") or "").lower() == "keep-alive", response.raw_head
        conn.send(request("GET", "/ok", version="HTTP/1.0", host=None))  # and now without
        assert conn.read_response().body == b"ok"
        assert conn.closed_cleanly(3)


# ---- request targets ----------------------------------------------------------------------------


def test_absolute_form_target(server, raw):
    with raw(server) as conn:
        conn.send(request("GET", "http://example.com/echo?a=1", host="other.test"))
        data = echoed(conn.read_response())
        assert (data["path"], data["query"], data["host"]) == ("/echo", {"a": ["1"]}, "example.com")
        assert_kept_alive(conn)


def test_absolute_form_without_a_path_is_the_root(server, raw):
    with raw(server) as conn:
        conn.send(request("GET", "http://example.com"))
        response = conn.read_response()
        assert (response.status, response.body) == (200, b"Hello, world!")


def test_host_header_is_the_url_host(server, raw):
    with raw(server) as conn:
        conn.send(request("GET", "/echo", host="example.test:1234"))
        assert echoed(conn.read_response())["host"] == "example.test:1234"


@pytest.mark.parametrize(
    ("target", "user_id"),
    [
        ("/users/a%20b", "a b"),
        ("/users/a+b", "a+b"),  # "+" stays "+" in a path
        ("/users/caf%C3%A9", "caf\u00e9"),
        ("/users/%2520", "%20"),  # decoded once, not twice
        ("/users/100%25", "100%"),
        ("/%75sers/x", "x"),  # decoded before routing
        ("/users/a%3Fb", "a?b"),
        ("/users/a%23b", "a#b"),
    ],
)
def test_percent_encoded_paths(server, raw, target, user_id):
    with raw(server) as conn:
        conn.send(request("GET", target))
        assert echoed(conn.read_response()) == {"user_id": user_id}


def test_decoded_path_is_request_url_path(server, raw):
    with raw(server) as conn:
        conn.send(request("GET", "/echo/a%20b/c%2Fd+e?x=1"))
        data = echoed(conn.read_response())
        assert data["path"] == "/echo/a b/c/d+e"
        assert data["path_params"] == {"rest": "a b/c/d+e"}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("a=1+2&b=%26", {"a": ["1 2"], "b": ["&"]}),
        ("a=1&a=2&b=", {"a": ["1", "2"], "b": [""]}),
        ("flag&x=%3D%3d", {"flag": [""], "x": ["=="]}),
        ("k%20ey=v%2Bw", {"k ey": ["v+w"]}),
        ("a=caf%C3%A9", {"a": ["caf\u00e9"]}),
        ("a=1&&b=2&", {"a": ["1"], "b": ["2"]}),
        ("eq=a=b", {"eq": ["a=b"]}),
    ],
)
def test_query_decoding(server, raw, query, expected):
    with raw(server) as conn:
        conn.send(request("GET", "/echo?" + query))
        assert echoed(conn.read_response())["query"] == expected


@pytest.mark.parametrize(
    "target",
    ["/users/a%00b", "/echo?a=%00", "/echo?%00=1", "/echo?a=1&b=x%00y", "/users/a%zz", "/users/a%2", "/users/%"],
    ids=["nul-in-path", "nul-in-query-value", "nul-in-query-name", "nul-later-in-query",
         "bad-hex-in-path", "short-escape-in-path", "bare-percent-in-path"],
)
def test_nul_or_bad_escape_in_the_target_is_400_kept_alive(server, raw, target):
    with raw(server) as conn:
        conn.send(request("GET", target))
        response = conn.read_response()
        assert status_line(response) == "HTTP/1.1 400 Bad Request"
        assert response.body == b"Bad Request"
        assert response.header("connection") != "close"
        assert_kept_alive(conn)
