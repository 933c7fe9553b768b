"""The Request handed to handlers, built lazily from the C bridge's job.

Each attribute is a non-data descriptor: its first read builds the value from the job and stores
it in the instance dict, so later reads are plain dict hits and writes (middlewares replace
parts) simply store. A handler that reads nothing costs one small object. `body` is a property
because it must be str or bytes. (Measured on CPython 3.11, this beats `__slots__` with
`__getattr__` (an AttributeError per first read) and properties (a call per read).)
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar, overload
from urllib.parse import parse_qsl

from robyn.datastructures import Headers, QueryParams
from robyn.types import Identity, Url

__all__ = ["Job", "Request"]

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
    """Parses the body once for both `form_data` and `files`, and stores both."""
    form_data: dict[str, str] = {}
    files: dict[str, bytes] = {}
    content_type = request.headers.get("content-type") or ""
    media_type, _, params = content_type.partition(";")
    media_type = media_type.strip().lower()
    if media_type == "application/x-www-form-urlencoded":
        form_data = dict(parse_qsl(request._raw.decode("utf-8", "replace"), keep_blank_values=True))
    elif media_type == "multipart/form-data":
        boundary = _params(params).get("boundary")
        if boundary:
            form_data, files = _parse_multipart(request._raw, boundary.encode("latin-1"))
    request.__dict__.setdefault("form_data", form_data)
    request.__dict__.setdefault("files", files)
    return form_data, files


# One header parameter: name=token or name="quoted \"string\"".
_PARAM = re.compile(r';\s*([^\s=;]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)')


def _params(text: str) -> dict[str, str]:
    """Parameters of a header value such as `; name="a"; filename="b.txt"` (names lower-cased)."""
    found: dict[str, str] = {}
    for name, value in _PARAM.findall(";" + text if not text.startswith(";") else text):
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        found[name.lower()] = value
    return found


def _parse_multipart(body: bytes, boundary: bytes) -> tuple[dict[str, str], dict[str, bytes]]:
    """Splits a multipart/form-data body into (form fields, files by file name), as Robyn does.

    A part with a filename is a file (keyed by the file name); other parts are fields, skipped
    when they are not valid UTF-8. A later part with the same key replaces an earlier one.
    """
    form_data: dict[str, str] = {}
    files: dict[str, bytes] = {}
    for part in (b"\r\n" + body).split(b"\r\n--" + boundary)[1:]:
        if part.startswith(b"--"):
            break
        line_end = part.find(b"\r\n")  # the rest of the delimiter line is padding
        if line_end < 0:
            continue
        rest = part[line_end + 2 :]
        if rest.startswith(b"\r\n"):
            head, data = b"", rest[2:]
        else:
            head, sep, data = rest.partition(b"\r\n\r\n")
            if not sep:
                continue
        disposition = ""
        for line in head.decode("utf-8", "replace").split("\r\n"):
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-disposition":
                disposition = value
        params_text = disposition.partition(";")[2]
        params = _params(params_text)
        if "filename" in params:
            files[params["filename"]] = data
        else:
            try:
                form_data[params.get("name", "")] = data.decode()
            except UnicodeDecodeError:
                continue
    return form_data, files
