"""Request bodies through a real server: urlencoded and multipart forms with their limits and
malformed shapes, Pydantic / TypedDict / JsonBody bodies with their exact error answers, and the
Set-Cookie headers of Response.set_cookie."""

from __future__ import annotations

import hashlib

import httpx
import pydantic
import pytest

LIMITS = {"ROBYN_MAX_FORM_FIELD_SIZE": "64", "ROBYN_MAX_FORM_FILE_SIZE": "1024", "ROBYN_MAX_FORM_PARTS": "4"}
BINARY = b"robyn binary upload \x00\x01\x02\xff\xfe contents\r\n--not-a-boundary\r\n"
TEXT_PLAIN = "text/plain; charset=utf-8"


@pytest.fixture(scope="module")
def server(module_app):
    return module_app("robyn_forms_app", env=LIMITS)


def multipart(*parts: tuple[str, bytes], boundary: str = "XyZzy") -> tuple[dict[str, str], bytes]:
    """(headers, body) of a multipart/form-data body made of (Content-Disposition params, data)."""
    body = b"".join(
        b"--" + boundary.encode() + b"\r\nContent-Disposition: form-data; " + params.encode() + b"\r\n\r\n" + data + b"\r\n"
        for params, data in parts
    ) + b"--" + boundary.encode() + b"--\r\n"
    return {"Content-Type": f"multipart/form-data; boundary={boundary}"}, body


def post(server, path: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(server.url(path), content=body, headers=headers)


# ---- forms -----------------------------------------------------------------------------------


def test_urlencoded_form(server, assert_serving):
    response = httpx.post(server.url("/form"), data={"name": "Jörg X", "empty": "", "amp": "a&b"})
    assert response.status_code == 200
    assert response.json() == {"form_data": {"name": "Jörg X", "empty": "", "amp": "a&b"}, "files": {}}


def test_multipart_fields_and_binary_file_round_trip(server):
    response = httpx.post(server.url("/form"), data={"title": "hello"},
                          files={"upload": ("report.bin", BINARY, "application/octet-stream")})
    assert response.status_code == 200
    assert response.json() == {
        "form_data": {"title": "hello"},
        "files": {"report.bin": {"size": len(BINARY), "sha256": hashlib.sha256(BINARY).hexdigest()}},
    }


def test_multipart_async_handler_and_rfc5987_filename(server):
    headers, body = multipart(("name=\"f\"; filename=\"fallback.txt\"; filename*=UTF-8''na%C3%AFve.txt", b"x"),
                              ('name="a"', b"1"))
    response = post(server, "/form/async", body, headers)
    assert response.json() == {"form_data": {"a": "1"}, "files": ["naïve.txt"]}


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (b"--XyZzy\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\ncut short", "multipart/form-data; boundary=XyZzy",
         "Malformed multipart body: no closing boundary (the body is cut short)"),
        (b"a=1", "multipart/form-data", "Malformed multipart body: the Content-Type has no boundary"),
        (b"no delimiter at all", "multipart/form-data; boundary=XyZzy", "Malformed multipart body: no boundary line"),
        (b"--XyZzy\r\n\r\nheaderless\r\n--XyZzy--\r\n", "multipart/form-data; boundary=XyZzy",
         "Malformed multipart body: part 1 has no Content-Disposition header"),
        (b"--XyZzy\r\nContent-Disposition: form-data\r\n\r\nx\r\n--XyZzy--\r\n", "multipart/form-data; boundary=XyZzy",
         "Malformed multipart body: part 1 has no name"),
        (b"--XyZzy\r\nContent-Disposition: attachment; name=\"a\"\r\n\r\nx\r\n--XyZzy--\r\n",
         "multipart/form-data; boundary=XyZzy", "Malformed multipart body: part 1 is not form-data"),
        (b"--XyZzy\r\nContent-Disposition: form-data; name=\"a\"\r\nno colon here\r\n\r\nx\r\n--XyZzy--\r\n",
         "multipart/form-data; boundary=XyZzy", "Malformed multipart body: part 1 has a header line without a colon"),
        (b"--XyZzy\r\nContent-Disposition: form-data; name=\"a\"", "multipart/form-data; boundary=XyZzy",
         "Malformed multipart body: part 1 has no end of headers"),
        (b"--XyZzyjunk\r\n", "multipart/form-data; boundary=XyZzy",
         "Malformed multipart body: a boundary line is not followed by CRLF"),
    ],
)
def test_malformed_multipart_is_400(server, assert_serving, body, content_type, message):
    response = post(server, "/form", body, {"Content-Type": content_type})
    assert (response.status_code, response.text) == (400, message)
    assert response.headers["content-type"] == TEXT_PLAIN
    assert_serving(server)


def test_malformed_multipart_is_not_parsed_when_the_handler_does_not_read_it(server):
    response = post(server, "/form/ignored", b"garbage", {"Content-Type": "multipart/form-data; boundary=XyZzy"})
    assert (response.status_code, response.text) == (200, "the body was not read")


def test_oversized_field_is_413(server, assert_serving):
    headers, body = multipart(('name="small"', b"ok"), ('name="big"', b"x" * 65))
    response = post(server, "/form", body, headers)
    assert (response.status_code, response.text) == (413, "Multipart field 'big' is larger than 64 bytes")
    headers, body = multipart(('name="exact"', b"x" * 64))
    assert post(server, "/form", body, headers).json()["form_data"] == {"exact": "x" * 64}
    assert_serving(server)


def test_oversized_file_is_413(server, assert_serving):
    headers, body = multipart(('name="f"; filename="big.bin"', b"\x00" * 1025))
    response = post(server, "/form", body, headers)
    assert (response.status_code, response.text) == (413, "Multipart file 'big.bin' is larger than 1024 bytes")
    headers, body = multipart(('name="f"; filename="fits.bin"', b"\x00" * 1024))
    assert post(server, "/form", body, headers).json()["files"]["fits.bin"]["size"] == 1024
    assert_serving(server)


def test_too_many_parts_is_413(server, assert_serving):
    headers, body = multipart(*[(f'name="f{i}"', b"v") for i in range(5)])
    response = post(server, "/form", body, headers)
    assert (response.status_code, response.text) == (413, "Multipart body has more than 4 parts")
    response = httpx.post(server.url("/form"), data={f"f{i}": "v" for i in range(5)})
    assert (response.status_code, response.text) == (413, "Form body has more than 4 fields")
    assert_serving(server)


def test_oversized_urlencoded_field_is_413(server, assert_serving):
    response = httpx.post(server.url("/form"), data={"big": "y" * 65})
    assert (response.status_code, response.text) == (413, "Form field 'big' is larger than 64 bytes")
    assert_serving(server)


# ---- Pydantic, TypedDict and JsonBody bodies --------------------------------------------------


def errors_without_urls(response: httpx.Response) -> dict:
    """The 422 body with each error's documentation URL checked and taken out (it names the
    installed Pydantic version)."""
    body = response.json()
    for error in body["detail"]:
        assert error.pop("url").startswith("https://errors.pydantic.dev/")
    return body


def test_pydantic_body_valid_with_coercion_and_default(server):
    response = httpx.post(server.url("/pydantic/user"), json={"name": "Coerce", "email": "c@t", "age": "30", "extra": 1})
    assert response.json() == {"name": "Coerce", "email": "c@t", "age": 30, "active": True}
    response = httpx.post(server.url("/pydantic/user/async"), json={"name": "A", "email": "a@t", "age": 1, "active": False})
    assert response.json() == {"method": "POST", "name": "A", "email": "a@t", "age": 1, "active": False}


def test_pydantic_missing_field_is_422(server, assert_serving):
    response = httpx.post(server.url("/pydantic/user"), json={"name": "Charlie", "email": "c@e"})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/json"
    assert list(response.json()) == ["detail", "error"]  # Robyn's key order
    assert errors_without_urls(response) == {
        "detail": [{"type": "missing", "loc": ["age"], "msg": "Field required", "input": {"name": "Charlie", "email": "c@e"}}],
        "error": "Validation Error",
    }
    assert_serving(server)


def test_pydantic_wrong_type_and_nested_errors(server):
    response = httpx.post(server.url("/pydantic/user/async"), json={"name": "D", "email": "d@e", "age": "not_a_number"})
    assert response.status_code == 422
    [error] = errors_without_urls(response)["detail"]
    assert error == {"type": "int_parsing", "loc": ["age"], "input": "not_a_number",
                     "msg": "Input should be a valid integer, unable to parse string as an integer"}
    response = httpx.post(server.url("/pydantic/nested"), json={"name": "G", "address": {"street": "Main"}})
    assert response.status_code == 422
    assert [(e["loc"], e["type"]) for e in response.json()["detail"]] == [(["address", "city"], "missing")]
    assert httpx.post(server.url("/pydantic/nested"), json={"name": "G", "address": {"street": "M", "city": "S"}}).json() == {
        "name": "G", "city": "S"}


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b"not json at all {{{", {"type": "json_invalid", "loc": [], "msg": "Invalid JSON: expected ident at line 1 column 2",
                                 "input": "not json at all {{{", "ctx": {"error": "expected ident at line 1 column 2"}}),
        (b"", {"type": "json_invalid", "loc": [], "msg": "Invalid JSON: EOF while parsing a value at line 1 column 0",
               "input": "", "ctx": {"error": "EOF while parsing a value at line 1 column 0"}}),
        (b"null", {"type": "model_type", "loc": [], "msg": "Input should be an object", "input": None,
                   "ctx": {"class_name": "UserCreate"}}),
        (b'[{"name": "X"}]', {"type": "model_type", "loc": [], "msg": "Input should be an object",
                              "input": [{"name": "X"}], "ctx": {"class_name": "UserCreate"}}),
    ],
)
def test_pydantic_bad_json_is_422(server, assert_serving, body, detail):
    response = post(server, "/pydantic/user", body, {"Content-Type": "application/json"})
    assert response.status_code == 422
    assert errors_without_urls(response) == {"detail": [detail], "error": "Validation Error"}
    assert_serving(server)


def test_pydantic_models_returned_as_json(server):
    response = httpx.post(server.url("/pydantic/return"), json={"name": "L", "email": "l@e", "age": 45})
    assert response.headers["content-type"] == "application/json"
    assert response.json() == [{"name": "L", "email": "l@e", "age": 45, "active": True}] * 2


def test_typeddict_and_jsonbody_bodies(server):
    assert httpx.post(server.url("/typeddict"), json={"name": "alice", "value": 42}).json() == {
        "type": "dict", "name": "alice", "value": 42}
    assert httpx.post(server.url("/jsonbody"), json={"fahrenheit": 212}).json() == {"celsius": 100.0}


@pytest.mark.parametrize("path", ["/typeddict", "/jsonbody"])
def test_typeddict_and_jsonbody_bad_json_is_400(server, assert_serving, path):
    response = post(server, path, b"not valid json", {"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"error": "Invalid JSON body: Invalid JSON: Expecting value: line 1 column 1 (char 0)"}
    assert_serving(server)


# ---- cookies ---------------------------------------------------------------------------------


def set_cookies(response: httpx.Response) -> list[str]:
    return sorted(response.headers.get_list("set-cookie"))


def test_cookie_attributes_on_the_wire(server):
    response = httpx.get(server.url("/cookie/attributes"))
    assert set_cookies(response) == [
        "secure_session=secret123; HttpOnly; SameSite=Strict; Secure; Path=/; Domain=example.com; Max-Age=3600"]


def test_cookies_replaced_by_name_and_invalid_same_site_skipped(server):
    response = httpx.get(server.url("/cookie/several"))
    assert set_cookies(response) == ["session=final", "theme=dark; SameSite=None; Secure"]


def test_deleted_cookie(server):
    assert set_cookies(httpx.get(server.url("/cookie/deleted"))) == ["theme=; Path=/; Max-Age=0"]


def test_set_cookie_with_a_wrong_type_is_500(server, assert_serving):
    response = httpx.get(server.url("/cookie/wrong-type"))
    assert (response.status_code, response.text) == (500, "Internal server error")
    assert "set_cookie() max_age must be an int or None, not str" in server.log()
    assert_serving(server)


def test_pydantic_version_is_2():
    assert pydantic.VERSION.startswith("2."), "these tests expect Pydantic 2 error texts"
