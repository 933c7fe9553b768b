"""The Request handed to handlers, built lazily from the C bridge's job.

Each attribute is a non-data descriptor: its first read builds the value from the job and stores
it in the instance dict, so later reads are plain dict hits and writes (middlewares replace
parts) simply store. A handler that reads nothing costs one small object. `body` is a property
because it must be str or bytes. (Measured on CPython 3.11, this beats `__slots__` with
`__getattr__` (an AttributeError per first read) and properties (a call per read).)
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar, overload
from urllib.parse import parse_qsl, unquote

from robyn.datastructures import Headers, QueryParams
from robyn.exceptions import HTTPException
from robyn.types import Identity, Url

__all__ = ["Job", "Request", "FormError", "FormLimits", "FORM_LIMITS"]

_T = TypeVar("_T")


class Job(Protocol):
    """What the C bridge hands over for one HTTP request. Each read builds a new object."""

    method: str
    path: str
    query: list[tuple[str, str]]
    headers: list[tuple[str, str]]
    body: bytes
    ip: str
    host: str
    path_params: dict[str, str]


class _Lazy(Generic[_T]):
    """An attribute built by `build(request)` on first read, then stored on the instance."""

    __slots__ = ("build", "name")

    def __init__(self, build: Callable[[Request], _T]) -> None:
        self.build = build
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, request: None, owner: type | None = None) -> _Lazy[_T]: ...
    @overload
    def __get__(self, request: Request, owner: type | None = None) -> _T: ...
    def __get__(self, request: Request | None, owner: type | None = None) -> _T | _Lazy[_T]:
        if request is None:
            return self
        value = request.__dict__[self.name] = self.build(request)
        return value


class Request:
    """One HTTP request. Construct as `Request(job)`, or with Robyn's fields:
    `Request(query_params, headers, path_params, body, method, url, form_data, files, identity,
    ip_addr, session=None)` (all by keyword also works).
    """

    _job: Any

    def __init__(self, job: Any = None, /, *args: Any, **kwargs: Any) -> None:
        self._job = job
        if args or kwargs:
            self._job = None
            _init_fields(self, *((job,) + args if job is not None else args), **kwargs)

    @classmethod
    def from_job(cls, job: Job) -> Request:
        """`Request(job)` without the constructor's argument handling (what injection uses)."""
        request = cls.__new__(cls)
        request._job = job
        return request

    _raw: _Lazy[bytes] = _Lazy(lambda r: r._job.body)
    method: _Lazy[str] = _Lazy(lambda r: r._job.method)
    url: _Lazy[Url] = _Lazy(lambda r: _build_url(r._job))
    path_params: _Lazy[dict[str, str]] = _Lazy(lambda r: r._job.path_params)
    query_params: _Lazy[QueryParams] = _Lazy(lambda r: QueryParams.from_pairs(r._job.query))
    headers: _Lazy[Headers] = _Lazy(lambda r: Headers.from_pairs(r._job.headers))
    ip_addr: _Lazy[str | None] = _Lazy(lambda r: r._job.ip or None)
    identity: _Lazy[Identity | None] = _Lazy(lambda r: None)
    session: _Lazy[Any] = _Lazy(lambda r: None)
    form_data: _Lazy[dict[str, str]] = _Lazy(lambda r: _build_forms(r)[0])
    files: _Lazy[dict[str, bytes]] = _Lazy(lambda r: _build_forms(r)[1])

    @property
    def body(self) -> str | bytes:
        """The body: str when it is valid UTF-8 (or empty), else bytes."""
        try:
            return self.__dict__["_body"]  # type: ignore[no-any-return]
        except KeyError:
            raw = self._raw
            try:
                body: str | bytes = raw.decode()
            except UnicodeDecodeError:
                body = raw
            self.__dict__["_body"] = body
            return body

    @body.setter
    def body(self, value: str | bytes) -> None:
        if not isinstance(value, (str, bytes)):
            raise ValueError("Could not convert specified body to bytes")
        self.__dict__["_body"] = value
        self.__dict__["_raw"] = value.encode() if isinstance(value, str) else value

    def json(self) -> Any:
        """Parses the body as JSON. Raises ValueError("Invalid JSON: <reason>") when it is not."""
        try:
            return json.loads(self._raw)
        except RecursionError:
            raise ValueError("JSON nesting depth exceeds maximum allowed limit") from None
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
            raise ValueError(f"Invalid JSON: {exc}") from None

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.url.path}>"


def _init_fields(
    request: Request,
    query_params: QueryParams,
    headers: Headers,
    path_params: dict[str, str],
    body: str | bytes,
    method: str,
    url: Url,
    form_data: dict[str, str],
    files: dict[str, bytes],
    identity: Identity | None,
    ip_addr: str | None,
    session: Any = None,
) -> None:
    request.body = body
    request.__dict__.update(
        query_params=query_params,
        headers=headers,
        path_params=path_params,
        method=method,
        url=url,
        form_data=form_data,
        files=files,
        identity=identity,
        ip_addr=ip_addr,
        session=session,
    )


def _build_url(job: Any) -> Url:
    path = job.path
    if len(path) > 1 and path.endswith("/"):
        path = path[:-1]
    return Url("http", job.host, path)


def _build_forms(request: Request) -> tuple[dict[str, str], dict[str, bytes]]:
    """Parses the body once for both `form_data` and `files`, and stores both.

    Raises FormError (400 or 413) for a body that cannot be parsed or is over a limit; nothing
    is stored then, so every read raises the same error.
    """
    form_data: dict[str, str] = {}
    files: dict[str, bytes] = {}
    content_type = request.headers.get("content-type") or ""
    media_type, _, params = content_type.partition(";")
    media_type = media_type.strip().lower()
    if media_type == "application/x-www-form-urlencoded":
        form_data = _parse_urlencoded(request._raw)
    elif media_type == "multipart/form-data":
        boundary = _params(params).get("boundary")
        if not boundary:
            raise FormError(400, "Malformed multipart body: the Content-Type has no boundary")
        form_data, files = _parse_multipart(request._raw, boundary)
    request.__dict__.setdefault("form_data", form_data)
    request.__dict__.setdefault("files", files)
    return form_data, files


class FormError(HTTPException):
    """A form body that cannot be parsed (400) or is over a limit of FORM_LIMITS (413).

    Raised by the first read of `request.form_data` or `request.files`; the app answers it like
    any HTTPException: the status with `detail` as a text/plain body.
    """


class FormLimits:
    """Limits on form bodies, from the environment when robyn is imported (docs/http.md):

    ROBYN_MAX_FORM_FIELD_SIZE  bytes in one non-file field (default 1 MiB, as Starlette)
    ROBYN_MAX_FORM_FILE_SIZE   bytes in one uploaded file (default 0: no limit but the body's)
    ROBYN_MAX_FORM_PARTS       parts of a multipart body, or fields of an urlencoded one (1000)

    The whole body is limited first, by max_payload_size (413 before any Python runs). Assign
    the attributes to change a limit at run time.
    """

    def __init__(self) -> None:
        self.max_field_size = _env_limit("ROBYN_MAX_FORM_FIELD_SIZE", 1024 * 1024)
        self.max_file_size = _env_limit("ROBYN_MAX_FORM_FILE_SIZE", 0)
        self.max_parts = _env_limit("ROBYN_MAX_FORM_PARTS", 1000)


def _env_limit(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be an integer, not {raw!r}") from None
    if value < 0:
        raise ValueError(f"{name} must not be negative, not {value}")
    return value


FORM_LIMITS = FormLimits()


def _parse_urlencoded(body: bytes) -> dict[str, str]:
    """Fields of an application/x-www-form-urlencoded body (the last value of a repeated name)."""
    limit = FORM_LIMITS.max_parts
    try:
        pairs = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=limit or None)
    except ValueError:  # parse_qsl's "Max number of fields exceeded"
        raise FormError(413, f"Form body has more than {limit} fields") from None
    field_limit = FORM_LIMITS.max_field_size
    if field_limit:
        for name, value in pairs:
            if len(value) > field_limit:
                raise FormError(413, f"Form field '{name}' is larger than {field_limit} bytes")
    return dict(pairs)


# One header parameter: name=token or name="quoted \"string\"".
_PARAM = re.compile(r';\s*([^\s=;]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)')
# In a quoted string only \" and \\ are escapes: browsers send Windows paths (C:\dir\f.txt) as they are.
_QUOTED_ESCAPE = re.compile(r'\\(["\\])')


def _params(text: str) -> dict[str, str]:
    """Parameters of a header value such as `; name="a"; filename="b.txt"` (names lower-cased)."""
    found: dict[str, str] = {}
    for name, value in _PARAM.findall(";" + text if not text.startswith(";") else text):
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = _QUOTED_ESCAPE.sub(r"\1", value[1:-1])
        found[name.lower()] = value
    return found


def _ext_value(value: str) -> str | None:
    """An RFC 5987 value (`UTF-8''na%C3%AFve.txt`), decoded; None when it is not one."""
    charset, quote, rest = value.partition("'")
    _, quote2, encoded = rest.partition("'")
    if not (quote and quote2):
        return None
    try:
        return unquote(encoded, encoding=charset or "utf-8", errors="strict")
    except (LookupError, UnicodeDecodeError):
        return None


def _parse_multipart(body: bytes, boundary: str) -> tuple[dict[str, str], dict[str, bytes]]:
    """Splits a multipart/form-data body into (form fields, files by file name), as Robyn does.

    A part with a filename is a file (keyed by the file name); other parts are fields, skipped
    when they are not valid UTF-8. A later part with the same key replaces an earlier one.
    A preamble before the first boundary and an epilogue after the last are ignored (RFC 2046).
    Anything else out of shape is a FormError(400) naming what is wrong; a part over a limit
    is a FormError(413).
    """
    if len(boundary) > 70:  # RFC 2046 caps it at 70 characters
        raise FormError(400, "Malformed multipart body: the boundary is longer than 70 characters")
    delimiter = b"--" + boundary.encode("latin-1", "replace")
    next_delimiter = b"\r\n" + delimiter
    if body.startswith(delimiter):
        pos = len(delimiter)
    else:
        found = body.find(next_delimiter)
        if found < 0:
            raise FormError(400, "Malformed multipart body: no boundary line")
        pos = found + len(next_delimiter)
    limits = FORM_LIMITS
    form_data: dict[str, str] = {}
    files: dict[str, bytes] = {}
    number = 0
    while True:
        if body.startswith(b"--", pos):
            return form_data, files  # the closing delimiter; the rest is the epilogue
        line_end = body.find(b"\r\n", pos)
        if line_end < 0 or body[pos:line_end].strip(b" \t"):
            raise FormError(400, "Malformed multipart body: a boundary line is not followed by CRLF")
        number += 1
        if limits.max_parts and number > limits.max_parts:
            raise FormError(413, f"Multipart body has more than {limits.max_parts} parts")
        head_start = line_end + 2
        if body.startswith(b"\r\n", head_start):
            head, data_start = b"", head_start + 2
        else:
            head_end = body.find(b"\r\n\r\n", head_start)
            if head_end < 0:
                raise FormError(400, f"Malformed multipart body: part {number} has no end of headers")
            head, data_start = body[head_start:head_end], head_end + 4
        data_end = body.find(next_delimiter, data_start)
        if data_end < 0:
            raise FormError(400, "Malformed multipart body: no closing boundary (the body is cut short)")
        name, filename = _disposition(head, number)
        size = data_end - data_start
        if filename is not None:
            if limits.max_file_size and size > limits.max_file_size:
                raise FormError(413, f"Multipart file '{filename}' is larger than {limits.max_file_size} bytes")
            files[filename] = body[data_start:data_end]
        else:
            if limits.max_field_size and size > limits.max_field_size:
                raise FormError(413, f"Multipart field '{name}' is larger than {limits.max_field_size} bytes")
            try:
                form_data[name] = body[data_start:data_end].decode()
            except UnicodeDecodeError:
                pass  # Robyn keeps only fields that are text
        pos = data_end + len(next_delimiter)


def _disposition(head: bytes, number: int) -> tuple[str, str | None]:
    """(name, filename or None) from a part's Content-Disposition; FormError(400) without one."""
    disposition = None
    for line in head.decode("utf-8", "replace").split("\r\n"):
        if not line:  # a part with no headers at all
            continue
        header, colon, value = line.partition(":")
        if not colon:
            raise FormError(400, f"Malformed multipart body: part {number} has a header line without a colon")
        if header.strip().lower() == "content-disposition":
            disposition = value
    if disposition is None:
        raise FormError(400, f"Malformed multipart body: part {number} has no Content-Disposition header")
    kind, _, params_text = disposition.partition(";")
    if kind.strip().lower() != "form-data":
        raise FormError(400, f"Malformed multipart body: part {number} is not form-data")
    params = _params(params_text)
    name = params.get("name")
    if name is None:
        raise FormError(400, f"Malformed multipart body: part {number} has no name")
    filename = params.get("filename")
    extended = params.get("filename*")
    if extended is not None:  # RFC 7578 4.2: when both are given, filename* wins
        filename = _ext_value(extended) or filename
    return name, filename
