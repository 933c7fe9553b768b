"""The Request a handler sees, and what gets injected into handler parameters."""

from __future__ import annotations

import json

import httpx
import pytest


def inspect(server, method="GET", path="/inspect", **kwargs):
    response = httpx.request(method, server.url(path), **kwargs)
    assert response.status_code == 200, response.text
    return response.json()


# ---- method, url, path params, ip -------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
def test_method(main_server, method):
    assert inspect(main_server, method)["method"] == method


def test_url_parts(main_server):
    data = inspect(main_server, path="/inspect/one/two/?q=1")
    assert data["url"] == {"scheme": "http", "host": f"127.0.0.1:{main_server.port}", "path": "/inspect/one/two"}
    assert data["path_params"] == {"first": "one", "second": "two"}


def test_host_header_is_the_url_host(main_server):
    data = inspect(main_server, headers={"Host": "example.test:1234"})
    assert data["url"]["host"] == "example.test:1234"
    assert data["headers"]["host"] == "example.test:1234"


def test_ip_addr(main_server):
    assert inspect(main_server)["ip_addr"] == "127.0.0.1"


def test_ip_addr_on_every_request_of_a_kept_alive_connection(main_server):
    # The address is asked of the kernel once per connection and kept on it: the second
    # and later requests of the connection must still see it.
    with httpx.Client() as client:
        for _ in range(5):
            response = client.get(main_server.url("/inspect"))
            assert response.status_code == 200
            assert response.json()["ip_addr"] == "127.0.0.1"


# ---- query params ---------------------------------------------------------------------------


def test_query_params_api(main_server):
    response = httpx.get(main_server.url("/query?a=1&b=two&a=3&empty="))
    assert response.status_code == 200
    assert response.json() == {
        "get_a": "3",  # the last value, as in Robyn
        "get_missing": None,
        "get_missing_default": "dflt",
        "get_first_a": "1",
        "get_first_missing": None,
        "get_all_a": ["1", "3"],
        "get_all_missing": None,
        "contains_a": True,
        "contains_missing": False,
        "in_a": True,
        "to_dict": {"a": ["1", "3"], "b": ["two"], "empty": [""]},
        "keys": ["a", "b", "empty"],
        "values": ["3", "two", ""],
        "items": [["a", "3"], ["b", "two"], ["empty", ""]],
        "empty": False,
    }


def test_query_params_empty(main_server):
    data = httpx.get(main_server.url("/query")).json()
    assert data["empty"] is True
    assert data["to_dict"] == {} and data["keys"] == [] and data["items"] == []


def test_query_params_are_decoded(main_server):
    data = httpx.get(main_server.url("/query?a=caf%C3%A9&a=x+y%26z&b=%3D")).json()
    assert data["get_all_a"] == ["caf\u00e9", "x y&z"]
    assert data["to_dict"]["b"] == ["="]


def test_query_param_without_value(main_server):
    data = httpx.get(main_server.url("/query?a&b=1")).json()
    assert data["to_dict"] == {"a": [""], "b": ["1"]}


# ---- headers --------------------------------------------------------------------------------


def test_headers_api(main_server):
    response = httpx.get(main_server.url("/headers"), headers={"Cache-Control": "no-cache", "User-Agent": "ua/1"})
    assert response.status_code == 200
    data = response.json()
    assert data["get_lower"] == "no-cache"
    assert data["get_upper"] == "no-cache"
    assert data["get_mixed"] == "no-cache"
    assert data["get_missing"] is None
    assert data["get_missing_default"] == "dflt"
    assert data["contains_upper"] is True
    assert data["contains_missing"] is False
    assert data["in_mixed"] is True
    assert data["user_agent"] == "ua/1"
    assert data["to_dict"]["cache-control"] == "no-cache"
    assert data["to_dict"]["user-agent"] == "ua/1"
    assert data["to_dict"]["host"] == f"127.0.0.1:{main_server.port}"
    assert ["cache-control", "no-cache"] in data["items"]
    assert data["after_set"] == "replaced"
    assert data["after_append"] == "appended"
    assert data["after_append_all"] == ["replaced", "appended"]
    assert data["after_append_dict"] == "replaced, appended"


def test_custom_headers_reach_the_handler(main_server):
    data = inspect(main_server, headers={"X-Request-Id": "abc-123", "Authorization": "Bearer t",
                                         "X-Other": "named to capture_headers", "X-Test": "hello",
                                         "X-Never-Named-Anywhere": "still here"})
    assert data["headers"]["x-request-id"] == "abc-123"
    assert data["headers"]["x-test"] == "hello"
    assert data["headers"]["authorization"] == "Bearer t"
    assert data["headers"]["x-other"] == "named to capture_headers"  # a no-op now
    # Every header reaches the handler; capture_headers is not needed (docs/http.md).
    assert data["headers"]["x-never-named-anywhere"] == "still here"


def test_custom_header_case_insensitive_and_repeated(main_server, raw):
    with raw(main_server) as conn:
        conn.send(b"GET /inspect HTTP/1.1\r\nHost: t\r\nX-OTHER: one\r\nx-other: two\r\n\r\n")
        data = json.loads(conn.read_response().body)
    assert data["headers"]["x-other"] == "one, two"


def test_repeated_header_values_are_all_kept(main_server, raw):
    with raw(main_server) as conn:
        conn.send(b"GET /inspect HTTP/1.1\r\nHost: t\r\nAccept: a/b\r\nAccept: c/d\r\n\r\n")
        data = json.loads(conn.read_response().body)
    assert data["headers"]["accept"] == "a/b, c/d"


# ---- nothing carries over from one request to the next ----------------------------------------


def test_a_request_sees_nothing_of_the_requests_before_it(main_server):
    # Finished requests are reused for later ones, buffers included. A large request (more
    # headers, query pairs and body than a reused request keeps room for) alternates with a
    # bare one, on one kept-alive connection and on fresh ones: the bare one must see only
    # its own parts.
    big_headers = {"Referer": "http://r.test/" + "r" * 3000, "Accept-Language": "en-GB", "X-Request-Id": "big"}
    big_headers.update({f"X-Extra-{i}": str(i) for i in range(10)})
    big_query = "&".join(f"k{i}={'v' * 50}" for i in range(70))
    big_body = "b" * 20000
    with httpx.Client() as kept:
        for client in (kept, None):
            for _ in range(3):
                send = client.post if client else httpx.post
                big = send(main_server.url("/inspect?" + big_query), headers=big_headers, content=big_body)
                assert big.status_code == 200
                assert big.json()["body"] == {"type": "str", "text": big_body}
                assert big.json()["query"]["k69"] == ["v" * 50]
                small = send(main_server.url("/inspect?only=1"), headers={"X-Small": "yes"}, content="s")
                assert small.status_code == 200
                data = small.json()
                assert data["query"] == {"only": ["1"]}
                assert data["body"] == {"type": "str", "text": "s"}
                assert data["path_params"] == {}
                assert "referer" not in data["headers"] and "accept-language" not in data["headers"]
                assert "x-request-id" not in data["headers"]
                assert not any(name.startswith("x-extra-") for name in data["headers"])
                assert data["headers"]["content-length"] == "1"


# ---- body and json ----------------------------------------------------------------------------


def test_utf8_body_is_str(main_server):
    response = httpx.post(main_server.url("/body"), content="grüße".encode())
    assert response.json() == {"type": "str", "text": "grüße"}


def test_binary_body_is_bytes(main_server):
    response = httpx.post(main_server.url("/body"), content=b"\xff\x00\xfe")
    assert response.json() == {"type": "bytes", "hex": "ff00fe"}


def test_empty_body_is_empty_str(main_server):
    response = httpx.post(main_server.url("/body"))
    assert response.json() == {"type": "str", "text": ""}


def test_body_with_nul_bytes_keeps_its_length(main_server):
    response = httpx.post(main_server.url("/body"), content=b"a\x00b")
    assert response.json() == {"type": "str", "text": "a\x00b"}


def test_json_body(main_server):
    response = httpx.post(main_server.url("/json"), json={"a": [1, 2, {"b": None}], "c": "d"})
    assert response.status_code == 200
    assert response.json() == {"parsed": {"a": [1, 2, {"b": None}], "c": "d"}}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "ValueError: Invalid JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"),
        (b"", "ValueError: Invalid JSON: Expecting value: line 1 column 1 (char 0)"),
        (b'{"a": 1} x', "ValueError: Invalid JSON: Extra data: line 1 column 10 (char 9)"),
    ],
)
def test_invalid_json_raises_value_error_naming_the_problem(main_server, assert_serving, body, message):
    response = httpx.post(main_server.url("/json"), content=body)
    assert response.status_code == 422
    assert response.text == message
    assert_serving(main_server)


def test_invalid_utf8_json_raises_value_error(main_server):
    response = httpx.post(main_server.url("/json"), content=b'{"a": "\xff"}')
    assert response.status_code == 422
    assert response.text.startswith("ValueError: Invalid JSON: ")


# ---- injection --------------------------------------------------------------------------------


def test_injection_by_type(main_server):
    response = httpx.post(main_server.url("/inject/type/77?k=v"), content=b"payload",
                          headers={"Content-Type": "text/plain"})
    assert response.status_code == 200
    assert response.json() == {
        "request": "Request",
        "query": {"k": ["v"]},
        "header": "text/plain",
        "path_params": {"id": "77"},
        "body": "payload",
        "method": "POST",
        "url": ["http", f"127.0.0.1:{main_server.port}", "/inject/type/77"],
        "ip": "127.0.0.1",
    }


def test_injection_of_body_subclass(main_server):
    response = httpx.post(main_server.url("/inject/body-subclass"), content=b"subclass body")
    assert response.json() == {"body": "subclass body"}


def test_injection_by_reserved_name(main_server):
    response = httpx.post(main_server.url("/inject/name/5?k=v&k=w"), content=b"named",
                          headers={"Content-Type": "text/x-named"})
    assert response.status_code == 200
    assert response.json() == {
        "same_request": True,
        "request": "Request",
        "query": {"k": ["v", "w"]},
        "header": "text/x-named",
        "path_params": {"id": "5"},
        "body": "named",
        "method": "POST",
        "url": ["http", f"127.0.0.1:{main_server.port}", "/inject/name/5"],
        "ip": "127.0.0.1",
    }


def test_coercion_to_annotations(main_server):
    response = httpx.get(main_server.url("/coerce/12?f=2.5&flag=TRUE&ids=1&ids=22&opt=7&name=bob"))
    assert response.status_code == 200
    assert response.json() == {
        "n": [12, "int"],
        "f": [2.5, "float"],
        "flag": [True, "bool"],
        "ids": [1, 22],
        "opt": 7,
        "name": "bob",
    }


@pytest.mark.parametrize(("raw_value", "expected"), [("0", False), ("off", False), ("no", False),
                                                     ("yes", True), ("On", True), ("1", True)])
def test_bool_coercion(main_server, raw_value, expected):
    data = httpx.get(main_server.url(f"/coerce/1?f=1&flag={raw_value}&ids=1")).json()
    assert data["flag"] == [expected, "bool"]


def test_optional_and_default_parameters_when_absent(main_server):
    data = httpx.get(main_server.url("/coerce/1?f=1&flag=0&ids=3")).json()
    assert data["opt"] is None
    assert data["name"] == "anon"


def test_path_parameter_wins_and_query_fills_the_rest(main_server):
    response = httpx.get(main_server.url("/by-path-or-query/from-path?item=from-query&extra=e"))
    assert response.json() == {"item": "from-path", "extra": "e"}


@pytest.mark.parametrize("path", ["/needs", "/needs-async", "/needs?y=1"])
def test_missing_required_parameter_is_400(main_server, assert_serving, path):
    response = httpx.get(main_server.url(path))
    assert response.status_code == 400
    assert response.text == "Missing required parameter: 'x'"
    assert_serving(main_server)


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/needs?x=abc", "Invalid value 'abc' for parameter 'x': expected int"),
        ("/needs-async?x=1.5", "Invalid value '1.5' for parameter 'x': expected int"),
        ("/coerce/notanint?f=1&flag=1&ids=1", "Invalid value 'notanint' for parameter 'n': expected int"),
        ("/coerce/1?f=nope&flag=1&ids=1", "Invalid value 'nope' for parameter 'f': expected float"),
        ("/coerce/1?f=1&flag=maybe&ids=1", "Invalid value 'maybe' for parameter 'flag': expected bool"),
        ("/coerce/1?f=1&flag=1&ids=1&ids=x", "Invalid value 'x' for parameter 'ids': expected int"),
        ("/coerce/1?f=1&flag=1&ids=1&opt=seven", "Invalid value 'seven' for parameter 'opt': expected int"),
        ("/coerce/1?f=1&flag=1", "Missing required parameter: 'ids'"),
    ],
)
def test_uncoercible_parameter_is_400_naming_it(main_server, assert_serving, path, message):
    response = httpx.get(main_server.url(path))
    assert response.status_code == 400
    assert response.text == message
    assert_serving(main_server)
