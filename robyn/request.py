"""The Request handed to handlers, built lazily from the C bridge's job.

Every attribute is computed on first read and then stored in its slot, so later reads are plain
slot reads and a handler that reads nothing costs one small object. All attributes can be set
(middlewares replace them). `body` must be str or bytes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any, Protocol
from urllib.parse import parse_qsl

from robyn.datastructures import Headers, QueryParams
from robyn.types import Identity, Url

__all__ = ["Job", "Request"]


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


class Request:
    """One HTTP request. Construct as `Request(job)`, or with Robyn's fields:
    `Request(query_params, headers, path_params, body, method, url, form_data, files, identity,
    ip_addr, session=None)` (all by keyword also works).
    """

    __slots__ = (
        "_job",
        "_raw",
        "_body",
        "method",
        "url",
        "path_params",
        "query_params",
        "headers",
        "ip_addr",
        "identity",
        "form_data",
        "files",
        "session",
    )

    method: str
    url: Url
    path_params: dict[str, str]
    query_params: QueryParams
    headers: Headers
    ip_addr: str | None
    identity: Identity | None
    form_data: dict[str, str]
    files: dict[str, bytes]
    session: Any

    def __init__(self, job: Any = None, /, *args: Any, **kwargs: Any) -> None:
        self._job = job
        if args or kwargs:
            self._job = None
            _init_fields(self, *((job,) + args if job is not None else args), **kwargs)

    def __getattr__(self, name: str) -> Any:
        # Reached only when a slot is still unset: build it, store it, return it.
        build = _BUILDERS.get(name)
        if build is None:
            raise AttributeError(f"'Request' object has no attribute '{name}'")
        value = build(self)
        object.__setattr__(self, name, value)
        return value

    @property
    def body(self) -> str | bytes:
        """The body: str when it is valid UTF-8 (or empty), else bytes."""
        return self._body

    @body.setter
    def body(self, value: str | bytes) -> None:
        if not isinstance(value, (str, bytes)):
            raise ValueError("Could not convert specified body to bytes")
        self._body = value
        self._raw = value.encode() if isinstance(value, str) else value

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
    request.query_params = query_params
    request.headers = headers
    request.path_params = path_params
    request.body = body
    request.method = method
    request.url = url
    request.form_data = form_data
    request.files = files
    request.identity = identity
    request.ip_addr = ip_addr
    request.session = session


def _job(request: Request) -> Any:
    job = request._job
    if job is None:
        raise AttributeError("Request was built without a job and this field was not given")
    return job


def _build_url(request: Request) -> Url:
    job = _job(request)
    path = job.path
    if len(path) > 1 and path.endswith("/"):
        path = path[:-1]
    return Url("http", job.host, path)


def _build_body(request: Request) -> str | bytes:
    raw = request._raw
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return raw


def _build_forms(request: Request) -> tuple[dict[str, str], dict[str, bytes]]:
    content_type = request.headers.get("content-type") or ""
    media_type, _, params = content_type.partition(";")
    media_type = media_type.strip().lower()
    if media_type == "application/x-www-form-urlencoded":
        text = request._raw.decode("utf-8", "replace")
        return dict(parse_qsl(text, keep_blank_values=True)), {}
    if media_type == "multipart/form-data":
        boundary = _params(params).get("boundary")
        if boundary:
            return _parse_multipart(request._raw, boundary.encode("latin-1"))
    return {}, {}


def _build_form_data(request: Request) -> dict[str, str]:
    form_data, files = _build_forms(request)
    object.__setattr__(request, "files", files)
    return form_data


def _build_files(request: Request) -> dict[str, bytes]:
    form_data, files = _build_forms(request)
    object.__setattr__(request, "form_data", form_data)
    return files


_BUILDERS: dict[str, Callable[[Request], Any]] = {
    "_raw": lambda r: _job(r).body,
    "_body": _build_body,
    "method": lambda r: _job(r).method,
    "url": _build_url,
    "path_params": lambda r: _job(r).path_params,
    "query_params": lambda r: QueryParams.from_pairs(_job(r).query),
    "headers": lambda r: Headers.from_pairs(_job(r).headers),
    "ip_addr": lambda r: _job(r).ip or None,
    "identity": lambda r: None,
    "session": lambda r: None,
    "form_data": _build_form_data,
    "files": _build_files,
}

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
