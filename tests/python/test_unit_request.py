"""Unit tests of robyn.request.Request against a fake job."""

from __future__ import annotations

import pytest
from fakes import FakeJob

from robyn.datastructures import Headers, QueryParams
from robyn.request import FormError, Request
from robyn.types import Identity, Url

MULTIPART_BODY = (
    b"preamble\r\n"
    b"--XyZ\r\n"
    b'Content-Disposition: form-data; name="title"\r\n'
    b"\r\n"
    b"hello\r\nworld\r\n"
    b"--XyZ\r\n"
    b'Content-Disposition: form-data; name="upload"; filename="a \\"b\\".txt"\r\n'
    b"Content-Type: text/plain\r\n"
    b"\r\n"
    b"\x00\xff binary\r\n"
    b"--XyZ\r\n"
    b'Content-Disposition: form-data; name="latin"\r\n'
    b"\r\n"
    b"\xe9t\xe9\r\n"
    b"--XyZ--\r\n"
    b"epilogue"
)


def test_nothing_is_read_until_asked() -> None:
    job = FakeJob()
    Request(job)
    assert job.reads == {}


def test_each_attribute_reads_the_job_once() -> None:
    job = FakeJob(query=[("a", "1")], headers=[("x", "1")], body=b"hi", path_params={"id": "1"})
    request = Request(job)
    for _ in range(3):
        assert request.method == "GET"
        assert request.url.path == "/"
        assert request.query_params.get("a") == "1"
        assert request.headers.get("x") == "1"
        assert request.body == "hi"
        assert request.path_params == {"id": "1"}
        assert request.ip_addr == "127.0.0.1"
    assert request.query_params is request.query_params
    assert job.reads == {"method": 1, "path": 1, "host": 1, "query": 1, "headers": 1, "body": 1, "path_params": 1, "ip": 1}


def test_url() -> None:
    request = Request(FakeJob(path="/users/42/", host="example.com:81"))
    assert request.url == Url("http", "example.com:81", "/users/42")
    assert (request.url.scheme, request.url.host) == ("http", "example.com:81")


def test_root_path_keeps_its_slash_and_missing_host_is_empty() -> None:
    assert Request(FakeJob(path="/", host="")).url == Url("http", "", "/")


def test_query_params_and_headers_types() -> None:
    request = Request(FakeJob(query=[("a", "1"), ("a", "2"), ("b", "")], headers=[("x-a", "1"), ("x-a", "2")]))
    assert isinstance(request.query_params, QueryParams)
    assert request.query_params.to_dict() == {"a": ["1", "2"], "b": [""]}
    assert isinstance(request.headers, Headers)
    assert request.headers.get("X-A") == "2"
    assert request.headers.get_all("x-a") == ["1", "2"]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(b"", ""), (b"plain", "plain"), ("h\u00e9".encode(), "h\u00e9"), (b"\xff\x00", b"\xff\x00")],
)
def test_body_is_str_when_utf8_else_bytes(raw: bytes, expected: str | bytes) -> None:
    body = Request(FakeJob(body=raw)).body
    assert body == expected
    assert type(body) is type(expected)


def test_json_parses_the_body() -> None:
    request = Request(FakeJob(body=b'{"a": [1, 2.5, null, true], "b": "\\u00e9"}'))
    assert request.json() == {"a": [1, 2.5, None, True], "b": "\u00e9"}
    assert request.json() is not request.json()


def test_json_reads_the_body_once_and_not_as_text() -> None:
    job = FakeJob(body=b"[1]")
    request = Request(job)
    assert request.json() == [1]
    assert request.json() == [1]
    assert job.reads == {"body": 1}


def test_json_of_a_replaced_body() -> None:
    request = Request(FakeJob(body=b"[1]"))
    request.body = '{"new": true}'
    assert request.json() == {"new": True}
    request.body = b"[2]"
    assert request.json() == [2]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "Invalid JSON: Expecting value: line 1 column 1 (char 0)"),
        (b"{bad", "Invalid JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"),
        (b"[1] x", "Invalid JSON: Extra data: line 1 column 5 (char 4)"),
        (b'"\xff"', "Invalid JSON: 'utf-8' codec can't decode byte 0xff in position 1: invalid start byte"),
    ],
)
def test_invalid_json_raises_value_error(raw: bytes, message: str) -> None:
    with pytest.raises(ValueError) as info:
        Request(FakeJob(body=raw)).json()
    assert type(info.value) is ValueError
    assert str(info.value) == message


def test_too_deep_json_raises_value_error() -> None:
    with pytest.raises(ValueError) as info:
        Request(FakeJob(body=b"[" * 100_000)).json()
    assert type(info.value) is ValueError
    assert str(info.value) == "JSON nesting depth exceeds maximum allowed limit"


def test_ip_identity_session_defaults() -> None:
    request = Request(FakeJob(ip=""))
    assert request.ip_addr is None
    assert request.identity is None
    assert request.session is None
    assert Request(FakeJob(ip="::1")).ip_addr == "::1"


def test_attributes_can_be_set_before_and_after_first_read() -> None:
    job = FakeJob(headers=[("a", "1")])
    request = Request(job)
    request.method = "POST"
    assert request.method == "POST"
    assert request.headers.get("a") == "1"
    request.headers = Headers({"b": "2"})
    assert request.headers.get("b") == "2"
    request.identity = Identity({"user": "bob"})
    assert request.identity == Identity({"user": "bob"})
    request.path_params = {"x": "y"}
    assert request.path_params == {"x": "y"}
    assert "method" not in job.reads


def test_body_setter_rejects_other_types() -> None:
    request = Request(FakeJob())
    with pytest.raises(ValueError) as info:
        request.body = 5  # type: ignore[assignment]
    assert type(info.value) is ValueError
    assert str(info.value) == "Could not convert specified body to bytes"


def test_unknown_attribute() -> None:
    with pytest.raises(AttributeError) as info:
        Request(FakeJob()).nope  # type: ignore[attr-defined]  # noqa: B018
    assert str(info.value) == "'Request' object has no attribute 'nope'"


def test_urlencoded_form() -> None:
    job = FakeJob(
        method="POST",
        headers=[("content-type", "application/x-www-form-urlencoded; charset=utf-8")],
        body=b"name=J%C3%B6rg+X&empty=&name2=a%26b",
    )
    request = Request(job)
    assert request.form_data == {"name": "J\u00f6rg X", "empty": "", "name2": "a&b"}
    assert request.files == {}
    assert job.reads["body"] == 1


def test_multipart_form() -> None:
    job = FakeJob(
        method="POST",
        headers=[("content-type", 'multipart/form-data; boundary="XyZ"')],
        body=MULTIPART_BODY,
    )
    request = Request(job)
    assert request.files == {'a "b".txt': b"\x00\xff binary"}
    assert request.form_data == {"title": "hello\r\nworld"}  # the non-UTF-8 field is skipped, as Robyn
    assert job.reads["body"] == 1


def test_multipart_unquoted_boundary() -> None:
    body = b"--b1\r\nContent-Disposition: form-data; name=x\r\n\r\n1\r\n--b1--\r\n"
    request = Request(FakeJob(headers=[("content-type", "multipart/form-data; boundary=b1")], body=body))
    assert request.form_data == {"x": "1"}


def test_multipart_part_without_headers_is_400() -> None:
    body = b"--b1\r\n\r\nanon\r\n--b1--\r\n"
    request = Request(FakeJob(headers=[("content-type", "multipart/form-data; boundary=b1")], body=body))
    with pytest.raises(FormError) as info:
        request.form_data  # noqa: B018
    assert (info.value.status_code, info.value.detail) == (
        400, "Malformed multipart body: part 1 has no Content-Disposition header")


def test_multipart_without_boundary_is_400() -> None:
    request = Request(FakeJob(headers=[("content-type", "multipart/form-data")], body=b"a=1"))
    with pytest.raises(FormError) as info:
        request.files  # noqa: B018
    assert (info.value.status_code, info.value.detail) == (
        400, "Malformed multipart body: the Content-Type has no boundary")


@pytest.mark.parametrize("content_type", [[], [("content-type", "application/json")]])
def test_no_form_without_a_form_content_type(content_type: list[tuple[str, str]]) -> None:
    request = Request(FakeJob(headers=content_type, body=b"a=1"))
    assert request.form_data == {}
    assert request.files == {}


def test_robyn_style_constructor() -> None:
    url = Url("https", "h", "/p")
    request = Request(QueryParams(), Headers({"a": "1"}), {"id": "1"}, b"\xff", "PUT", url, {"f": "v"}, {}, None, "1.2.3.4")
    assert (request.method, request.url, request.path_params, request.body) == ("PUT", url, {"id": "1"}, b"\xff")
    assert (request.form_data, request.files, request.identity, request.ip_addr) == ({"f": "v"}, {}, None, "1.2.3.4")
    assert request.headers.get("a") == "1"
    assert request.session is None


def test_robyn_style_constructor_by_keyword() -> None:
    request = Request(
        query_params=QueryParams(),
        headers=Headers(),
        path_params={},
        body='{"a": 1}',
        method="GET",
        url=Url("http", "", "/"),
        form_data={},
        files={},
        identity=None,
        ip_addr=None,
        session="s",
    )
    assert request.json() == {"a": 1}
    assert request.session == "s"


def test_repr() -> None:
    assert repr(Request(FakeJob(method="DELETE", path="/x"))) == "<Request DELETE /x>"
