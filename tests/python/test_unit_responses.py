"""Unit tests of robyn.responses, robyn.status_codes and robyn.exceptions."""

from __future__ import annotations

import dataclasses
import datetime
import enum
import logging
import uuid
from pathlib import Path
from typing import Any

import pytest

from robyn import status_codes
from robyn.datastructures import Headers
from robyn.exceptions import HTTPException, QueryParamValidationError, WebSocketException
from robyn.responses import (
    Cookie,
    Cookies,
    FileResponse,
    Response,
    html,
    jsonify,
    serialize,
    serve_file,
    serve_html,
)

TEXT = ("content-type", "text/plain")
JSON = ("content-type", "application/json")
OCTET = ("content-type", "application/octet-stream")


class Color(enum.Enum):
    RED = "red"


@dataclasses.dataclass
class Point:
    x: int
    y: int


class FakeModel:
    """Quacks like a Pydantic v2 model."""

    def model_dump_json(self) -> str:
        return '{"m":1}'

    def model_dump(self, mode: str = "python") -> dict[str, Any]:
        return {"m": 1, "mode": mode}


class TestSerialize:
    def test_str(self) -> None:
        assert serialize("h\u00e9") == (200, [TEXT], "h\u00e9".encode())

    def test_dict_and_list(self) -> None:
        assert serialize({"a": [1, "\u00e9", None]}) == (200, [JSON], '{"a":[1,"\u00e9",null]}'.encode())
        assert serialize([]) == (200, [JSON], b"[]")

    def test_bytes_like(self) -> None:
        assert serialize(b"\x00\xff") == (200, [OCTET], b"\x00\xff")
        assert serialize(bytearray(b"ab")) == (200, [OCTET], b"ab")
        assert serialize(memoryview(b"cd")) == (200, [OCTET], b"cd")

    def test_subclasses_of_the_basic_types(self) -> None:
        class S(str):
            pass

        class D(dict):  # type: ignore[type-arg]
            pass

        assert serialize(S("x")) == (200, [TEXT], b"x")
        assert serialize(D(a=1)) == (200, [JSON], b'{"a":1}')

    def test_header_lists_are_fresh(self) -> None:
        first = serialize("a")[1]
        first.append(("x", "y"))
        assert serialize("a")[1] == [TEXT]

    def test_anything_else_is_its_str_as_robyn(self) -> None:
        assert serialize(None) == (200, [TEXT], b"None")
        assert serialize(42) == (200, [TEXT], b"42")

    def test_pydantic_like_model(self) -> None:
        assert serialize(FakeModel()) == (200, [JSON], b'{"m":1}')

    def test_response(self) -> None:
        response = Response(201, {"Content-Type": "text/html", "X-A": ["1", "2"]}, "<b>\u00e9</b>")
        assert serialize(response) == (
            201,
            [("content-type", "text/html"), ("x-a", "1"), ("x-a", "2")],
            "<b>\u00e9</b>".encode(),
        )

    def test_response_without_headers_gets_no_content_type(self) -> None:
        assert serialize(Response(204, None, b"")) == (204, [], b"")

    def test_response_subclass(self) -> None:
        class Mine(Response):
            __slots__ = ()

        assert serialize(Mine(202, {}, "x")) == (202, [], b"x")

    def test_response_cookies(self) -> None:
        response = Response(200, {}, "ok")
        response.set_cookie("sid", "abc", path="/", max_age=60, secure=True, http_only=True, same_site="lax")
        response.set_cookie("plain", "1")
        response.cookies.delete("old")
        assert serialize(response)[1] == [
            ("set-cookie", "sid=abc; HttpOnly; SameSite=Lax; Secure; Path=/; Max-Age=60"),
            ("set-cookie", "plain=1"),
            ("set-cookie", "old=; Path=/; Max-Age=0"),
        ]

    @pytest.mark.parametrize(
        "result",
        [
            Response(200, {"X-A": "a\r\nSet-Cookie: evil=1"}, ""),
            ("", {"X-A\n": "a"}, 200),
        ],
    )
    def test_header_injection_is_refused(self, result: Any) -> None:
        with pytest.raises(ValueError) as info:
            serialize(result)
        assert type(info.value) is ValueError
        assert str(info.value).startswith("Invalid header 'x-a")
        assert str(info.value).endswith("': it contains CR or LF")

    def test_cookie_injection_is_refused(self) -> None:
        response = Response(200, {}, "")
        response.set_cookie("a", "1\r\nX-Evil: 1")
        with pytest.raises(ValueError) as info:
            serialize(response)
        assert type(info.value) is ValueError
        assert str(info.value) == "Invalid header 'set-cookie': it contains CR or LF"

    def test_tuple(self) -> None:
        assert serialize(({"e": 1}, Headers({"X-Error": "true"}), 404)) == (
            404,
            [("x-error", "true"), JSON],
            b'{"e":1}',
        )

    def test_tuple_headers_override_the_body_content_type(self) -> None:
        assert serialize(("<p>", {"Content-Type": "text/html"}, 200)) == (200, [("content-type", "text/html")], b"<p>")
        assert serialize((b"x", None, 202)) == (202, [OCTET], b"x")

    def test_tuple_of_wrong_length(self) -> None:
        with pytest.raises(ValueError) as info:
            serialize(("a", {}))
        assert type(info.value) is ValueError
        assert str(info.value) == "Tuple should have 3 elements"

    def test_tuple_with_bad_status(self) -> None:
        with pytest.raises(TypeError) as info:
            serialize(("a", {}, "200"))
        assert type(info.value) is TypeError
        assert str(info.value) == "Tuple status code must be an int, got str"

    def test_tuple_with_bad_headers(self) -> None:
        with pytest.raises(TypeError) as info:
            serialize(("a", [("x", "y")], 200))
        assert type(info.value) is TypeError
        assert str(info.value) == "headers must be a Headers instance or a dict"

    def test_file_response(self, tmp_path: Path) -> None:
        path = tmp_path / "report.csv"
        path.write_bytes(b"a,b\n")
        assert serialize(FileResponse(str(path))) == (200, [("content-disposition", "attachment")], b"a,b\n")
        assert serialize(FileResponse(str(path), 206, Headers({"Content-Type": "text/csv"})))[:2] == (
            206,
            [("content-type", "text/csv")],
        )
        assert serialize(serve_file(str(path)))[1] == [
            ("content-type", "text/csv"),
            ("content-disposition", "attachment; filename=report.csv"),
        ]
        assert serialize(serve_file(str(path), "data.unknownext"))[1][0] == OCTET

    def test_missing_file(self, tmp_path: Path) -> None:
        with pytest.raises(FileNotFoundError):
            serialize(FileResponse(str(tmp_path / "nope")))

    def test_serve_html_and_html(self, tmp_path: Path) -> None:
        page = tmp_path / "index.html"
        page.write_text("<h1>hi</h1>")
        assert serialize(serve_html(str(page))) == (200, [("content-type", "text/html")], b"<h1>hi</h1>")
        assert serialize(html("<p>x</p>")) == (200, [("content-type", "text/html")], b"<p>x</p>")


class TestJsonify:
    def test_compact_and_utf8(self) -> None:
        assert jsonify({"a": 1, "b": [True, None], "c": "\u00e9"}) == '{"a":1,"b":[true,null],"c":"\u00e9"}'

    def test_extra_types(self) -> None:
        value = {
            "when": datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc),
            "day": datetime.date(2024, 1, 2),
            "id": uuid.UUID(int=1),
            "color": Color.RED,
            "point": Point(1, 2),
            "model": FakeModel(),
        }
        assert jsonify(value) == (
            '{"when":"2024-01-02T03:04:05+00:00","day":"2024-01-02",'
            '"id":"00000000-0000-0000-0000-000000000001","color":"red","point":{"x":1,"y":2},'
            '"model":{"m":1,"mode":"json"}}'
        )

    def test_unserializable(self) -> None:
        with pytest.raises(TypeError) as info:
            jsonify({"a": object()})
        assert type(info.value) is TypeError
        assert str(info.value) == "Type is not JSON serializable: object"


class TestResponse:
    def test_body_alias(self) -> None:
        response = Response(200, body="x")
        assert response.description == "x"
        assert response.headers == Headers()
        assert response.response_type == "text"
        assert response.file_path is None
        assert response.cookies.is_empty()

    def test_keyword_description(self) -> None:
        assert Response(status_code=200, headers={}, description=b"y").description == b"y"

    def test_both_bodies(self) -> None:
        with pytest.raises(TypeError) as info:
            Response(200, {}, "a", body="b")
        assert type(info.value) is TypeError
        assert str(info.value) == "Response() got both 'description' and 'body'; pass only one"

    def test_no_body(self) -> None:
        with pytest.raises(TypeError) as info:
            Response(200, {})
        assert type(info.value) is TypeError
        assert str(info.value) == "Response() missing required argument: 'description' (or its alias 'body')"

    def test_body_of_wrong_type(self) -> None:
        with pytest.raises(ValueError) as info:
            Response(200, {}, None)  # type: ignore[arg-type]
        assert type(info.value) is ValueError
        assert str(info.value) == "Could not convert specified body to bytes"

    def test_description_setter(self) -> None:
        response = Response(200, {}, "a")
        response.description = b"b"
        assert response.description == b"b"
        with pytest.raises(ValueError) as info:
            response.description = 1  # type: ignore[assignment]
        assert type(info.value) is ValueError
        assert str(info.value) == "Could not convert specified response description to bytes"

    def test_headers(self) -> None:
        shared = Headers({"a": "1"})
        assert Response(200, shared, "").headers is shared
        response = Response(200, {"B": "2"}, "")
        assert response.headers.get("b") == "2"
        response.headers = {"C": "3"}
        assert response.headers == Headers({"c": "3"})
        with pytest.raises(TypeError) as info:
            Response(200, [("a", "b")], "")  # type: ignore[arg-type]
        assert type(info.value) is TypeError
        assert str(info.value) == "headers must be a Headers instance or a dict"

    def test_status_code_is_settable(self) -> None:
        response = Response(200, {}, "")
        response.status_code = 418
        assert serialize(response)[0] == 418

    def test_file_path_reads_the_file(self, tmp_path: Path) -> None:
        path = tmp_path / "f.bin"
        path.write_bytes(b"\x01\x02")
        response = Response(200, {}, "")
        response.file_path = str(path)
        assert (response.description, response.response_type, response.file_path) == (b"\x01\x02", "static_file", str(path))

    def test_file_path_missing(self, tmp_path: Path) -> None:
        response = Response(200, {}, "")
        with pytest.raises(OSError) as info:
            response.file_path = str(tmp_path / "nope")
        assert type(info.value) is OSError
        assert str(info.value).startswith("Failed to read file: [Errno 2] No such file or directory")

    def test_repr(self) -> None:
        assert repr(Response(200, {}, "x")) == "Response(status_code=200, headers=Headers({}), description='x')"


class TestCookies:
    def test_same_site_none_forces_secure(self) -> None:
        assert Cookie("v", same_site="None").to_header_value("n") == "n=v; SameSite=None; Secure"

    def test_domain_and_case(self) -> None:
        assert Cookie("v", domain=".example.com", same_site="STRICT").to_header_value("n") == (
            "n=v; SameSite=Strict; Domain=example.com"
        )

    def test_invalid_same_site(self, caplog: pytest.LogCaptureFixture) -> None:
        with pytest.raises(ValueError) as info:
            Cookie("v", same_site="sometimes").to_header_value("n")
        assert type(info.value) is ValueError
        assert str(info.value) == "Invalid SameSite value: must be 'Strict', 'Lax', or 'None', got 'sometimes'"
        response = Response(200, {}, "")
        response.set_cookie("n", "v", same_site="sometimes")
        with caplog.at_level(logging.WARNING, logger="robyn.responses"):
            assert serialize(response)[1] == []
        assert "Skipping cookie 'n'" in caplog.text

    def test_collection(self) -> None:
        cookies = Cookies()
        cookies["a"] = Cookie("1")
        cookies.set("b", Cookie("2"))
        assert (len(cookies), list(cookies), cookies.keys()) == (2, ["a", "b"], ["a", "b"])
        assert "a" in cookies
        assert cookies["a"] is not None and cookies["a"].value == "1"
        assert cookies.get("zz") is None
        assert cookies["zz"] is None
        cookies.remove("a")
        cookies.remove("absent")
        assert cookies.keys() == ["b"]
        assert Cookie.deleted().to_header_value("x") == "x=; Path=/; Max-Age=0"


class TestStatusCodesAndExceptions:
    def test_status_codes(self) -> None:
        assert status_codes.HTTP_200_OK == 200
        assert status_codes.HTTP_404_NOT_FOUND == 404
        assert status_codes.HTTP_306_RESERVED == 306
        assert status_codes.HTTP_418_IM_A_TEAPOT == 418
        assert len(status_codes.__all__) == 63
        for name in status_codes.__all__:
            assert getattr(status_codes, name) == int(name.split("_")[1])

    def test_http_exception(self) -> None:
        error = HTTPException(404)
        assert (error.status_code, error.detail) == (404, "Not Found")
        assert str(error) == "404: Not Found"
        assert repr(HTTPException(400, "bad")) == "HTTPException(status_code=400, detail=bad)"

    def test_http_exception_unknown_status_without_detail(self) -> None:
        with pytest.raises(ValueError) as info:
            HTTPException(999)
        assert type(info.value) is ValueError
        assert str(info.value) == "999 is not a valid HTTPStatus"
        assert HTTPException(999, "odd").detail == "odd"

    def test_websocket_exception(self) -> None:
        error = WebSocketException(1008)
        assert (error.code, error.reason, str(error)) == (1008, "", "1008: ")
        assert repr(WebSocketException(1011, "boom")) == "WebSocketException(code=1011, reason=boom)"

    def test_query_param_validation_error(self) -> None:
        missing = QueryParamValidationError("x", None, int)
        assert isinstance(missing, HTTPException)
        assert (missing.status_code, missing.detail, str(missing)) == (400, "Missing required parameter: 'x'", "Missing required parameter: 'x'")
        invalid = QueryParamValidationError("x", "abc", list[int])
        assert str(invalid) == "Invalid value 'abc' for parameter 'x': expected list[int]"
        assert str(QueryParamValidationError("x", "v", int, "custom")) == "custom"
