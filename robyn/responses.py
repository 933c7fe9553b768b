"""Response types, the helpers that build them, and `serialize`, which turns any handler result
into the (status, headers, body) triple the C bridge writes.

What a handler may return, as in Robyn:
  str                     200 text/plain
  bytes                   200 application/octet-stream
  dict / list             200 application/json (compact, non-ASCII kept as UTF-8)
  Response                its status, headers (lower-case names) and cookies, as given; no
                          Content-Type is added when it has none
  FileResponse            the file's bytes with the given status and headers
  (body, headers, status) body formatted by these rules; the given headers win, and the body's
                          Content-Type is kept unless they set one
  a Pydantic model        200 application/json (`model_dump_json()`)
  None, a number, a class  200 text/plain with `str(result)`, as Robyn does: any value whose
  or any value with its    class defines __str__ or __repr__
  own text
  anything else           NotAnAnswerError (a TypeError): an object with no text of its own
                          (`object()`, an instance of a plain class) is a handler's mistake;
                          the app answers 500 and logs a line naming the type
A header name or value with CR or LF raises ValueError.

A `StreamingResponse` (and `SSEResponse`, which makes one) is not serialized (TypeError): the
app sends its head at once and then each chunk its generator yields (robyn/streaming.py).
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import json
import json.encoder
import logging
import mimetypes
import os
import uuid
from collections.abc import AsyncIterable, Callable, Iterable, Iterator, Mapping
from typing import Any, Union

from robyn.datastructures import Headers

__all__ = [
    "Cookie",
    "Cookies",
    "CookiesIter",
    "Response",
    "FileResponse",
    "html",
    "serve_html",
    "serve_file",
    "jsonify",
    "serialize",
    "NotAnAnswerError",
    "StreamingResponse",
    "SSEResponse",
    "SSEMessage",
]

_logger = logging.getLogger(__name__)

HeaderList = list[tuple[str, str]]

_CT_TEXT = ("content-type", "text/plain")
_CT_JSON = ("content-type", "application/json")
_CT_OCTET = ("content-type", "application/octet-stream")


def _json_default(obj: Any) -> Any:
    """Encodes what orjson (Robyn's encoder) encodes natively beyond the JSON types."""
    if isinstance(obj, (datetime.datetime, datetime.date, datetime.time)):
        return obj.isoformat()
    if isinstance(obj, uuid.UUID):
        return str(obj)
    if isinstance(obj, enum.Enum):
        return obj.value
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {field.name: getattr(obj, field.name) for field in dataclasses.fields(obj)}
    model_dump = getattr(obj, "model_dump", None)  # Pydantic v2 models
    if callable(model_dump):
        return model_dump(mode="json")
    raise TypeError(f"Type is not JSON serializable: {type(obj).__name__}")


def _make_json_encoder() -> Callable[[Any], str]:
    # The C encoder is made once here rather than by JSONEncoder.encode on every call (2.5x faster).
    # Without its circular-reference check, a cycle raises RecursionError instead of ValueError.
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=_json_default).encode
    encode = make(None, _json_default, json.encoder.encode_basestring, None, ":", ",", False, False, True)
    join = "".join
    return lambda data: join(encode(data, 0))


_encode_json = _make_json_encoder()


def jsonify(data: Any) -> str:
    """Serializes `data` to a compact JSON string (`{"a":1}`), as Robyn's orjson-based jsonify.

    Also encodes datetimes/dates/times (ISO 8601), UUIDs, enums (their value), dataclasses and
    Pydantic models. Anything else raises TypeError("Type is not JSON serializable: <type>").
    """
    return _encode_json(data)


class Cookie:
    """One cookie to set; serialized as a Set-Cookie header. `expires` is kept but not sent
    (Robyn sends `Max-Age` only)."""

    __slots__ = ("value", "path", "domain", "max_age", "expires", "secure", "http_only", "same_site")

    def __init__(
        self,
        value: str,
        path: str | None = None,
        domain: str | None = None,
        max_age: int | None = None,
        expires: str | None = None,
        secure: bool = False,
        http_only: bool = False,
        same_site: str | None = None,
    ) -> None:
        self.value = value
        self.path = path
        self.domain = domain
        self.max_age = max_age
        self.expires = expires
        self.secure = secure
        self.http_only = http_only
        self.same_site = same_site

    @staticmethod
    def deleted() -> Cookie:
        """A cookie that makes the browser drop it: empty value, Path=/, Max-Age=0."""
        return Cookie("", path="/", max_age=0)

    def to_header_value(self, name: str) -> str:
        """The Set-Cookie value. Raises ValueError for a SameSite other than Strict, Lax or None."""
        parts = [f"{name}={self.value}"]
        if self.http_only:
            parts.append("HttpOnly")
        if self.same_site is not None:
            same_site = {"strict": "Strict", "lax": "Lax", "none": "None"}.get(self.same_site.lower())
            if same_site is None:
                raise ValueError(f"Invalid SameSite value: must be 'Strict', 'Lax', or 'None', got '{self.same_site}'")
            parts.append(f"SameSite={same_site}")
            if same_site == "None" and not self.secure:
                parts.append("Secure")
        if self.secure:
            parts.append("Secure")
        if self.path is not None:
            parts.append(f"Path={self.path}")
        if self.domain is not None:  # one leading dot is dropped, as the cookie crate does
            parts.append(f"Domain={self.domain[1:] if self.domain.startswith('.') else self.domain}")
        if self.max_age is not None:
            parts.append(f"Max-Age={self.max_age}")
        return "; ".join(parts)

    def __repr__(self) -> str:
        return (
            f"Cookie(value={self.value!r}, path={self.path!r}, domain={self.domain!r}, max_age={self.max_age!r}, "
            f"expires={self.expires!r}, secure={self.secure}, http_only={self.http_only}, same_site={self.same_site!r})"
        )


class CookiesIter:
    """Iterates over the names of a Cookies collection (`for name in response.cookies`),
    as of when the iteration started."""

    __slots__ = ("_names",)

    def __init__(self, names: list[str]) -> None:
        self._names = iter(names)

    def __iter__(self) -> CookiesIter:
        return self

    def __next__(self) -> str:
        return next(self._names)


class Cookies:
    """Cookies to set on a response, by name."""

    __slots__ = ("_cookies",)

    def __init__(self) -> None:
        self._cookies: dict[str, Cookie] = {}

    def set(self, name: str, cookie: Cookie) -> None:
        self._cookies[name] = cookie

    def get(self, name: str) -> Cookie | None:
        return self._cookies.get(name)

    def remove(self, name: str) -> None:
        """Forgets the cookie (the browser keeps it); see `delete`."""
        self._cookies.pop(name, None)

    def delete(self, name: str) -> None:
        """Replaces the cookie with one that makes the browser drop it."""
        self._cookies[name] = Cookie.deleted()

    def is_empty(self) -> bool:
        return not self._cookies

    def keys(self) -> list[str]:
        return list(self._cookies)

    def header_values(self) -> list[str]:
        """One Set-Cookie value per cookie; a cookie with an invalid SameSite is skipped, as in Robyn."""
        values = []
        for name, cookie in self._cookies.items():
            try:
                values.append(cookie.to_header_value(name))
            except ValueError as exc:
                _logger.warning("Skipping cookie %r: %s", name, exc)
        return values

    def __setitem__(self, name: str, cookie: Cookie) -> None:
        self._cookies[name] = cookie

    def __getitem__(self, name: str) -> Cookie | None:
        return self._cookies.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._cookies

    def __len__(self) -> int:
        return len(self._cookies)

    def __iter__(self) -> CookiesIter:
        return CookiesIter(list(self._cookies))

    def __repr__(self) -> str:
        return f"Cookies({self._cookies!r})"


_MISSING: Any = object()


def _as_headers(headers: Headers | Mapping[str, Any] | None) -> Headers:
    if isinstance(headers, Headers):
        return headers
    if headers is None:
        return Headers()
    if isinstance(headers, Mapping):
        return Headers(headers)
    raise TypeError("headers must be a Headers instance or a dict")


class Response:
    """A full response. The body is `description` (Robyn's name) or `body=` (its alias);
    pass exactly one. `headers` may be a Headers, a dict or None."""

    __slots__ = ("status_code", "_headers", "_description", "response_type", "_file_path", "cookies")

    def __init__(
        self,
        status_code: int,
        headers: Headers | Mapping[str, Any] | None = None,
        description: str | bytes = _MISSING,
        *,
        body: str | bytes = _MISSING,
    ) -> None:
        if description is _MISSING:
            if body is _MISSING:
                raise TypeError("Response() missing required argument: 'description' (or its alias 'body')")
            description = body
        elif body is not _MISSING:
            raise TypeError("Response() got both 'description' and 'body'; pass only one")
        if not isinstance(description, (str, bytes)):
            raise ValueError("Could not convert specified body to bytes")
        self.status_code = status_code
        self._headers = _as_headers(headers)
        self._description = description
        self.response_type = "text"
        self._file_path: str | None = None
        self.cookies = Cookies()

    @property
    def headers(self) -> Headers:
        return self._headers

    @headers.setter
    def headers(self, value: Headers | Mapping[str, Any]) -> None:
        self._headers = _as_headers(value)

    @property
    def description(self) -> str | bytes:
        return self._description

    @description.setter
    def description(self, value: str | bytes) -> None:
        if not isinstance(value, (str, bytes)):
            raise ValueError("Could not convert specified response description to bytes")
        self._description = value

    @property
    def file_path(self) -> str | None:
        return self._file_path

    @file_path.setter
    def file_path(self, path: str) -> None:
        """Reads the file into the body now; OSError("Failed to read file: ...") if it cannot."""
        try:
            with open(path, "rb") as file:
                content = file.read()
        except OSError as exc:
            raise OSError(f"Failed to read file: {exc}") from exc
        self.response_type = "static_file"
        self._file_path = path
        self._description = content

    def set_cookie(
        self,
        key: str,
        value: str,
        path: str | None = None,
        domain: str | None = None,
        max_age: int | None = None,
        expires: str | None = None,
        secure: bool = False,
        http_only: bool = False,
        same_site: str | None = None,
    ) -> None:
        """Sets (or replaces) the cookie `key`. Serialized as Robyn 0.88 (actix's cookie crate) does:
        `key=value; HttpOnly; SameSite=X; Secure; Path=p; Domain=d; Max-Age=n` (each attribute
        only when given; SameSite=None adds Secure; `expires` is kept but not sent). A SameSite
        other than Strict/Lax/None (any case) makes the cookie skipped with a warning, as Robyn.
        Raises TypeError for an argument of the wrong type."""
        _check_cookie_args(key, value, path, domain, max_age, expires, secure, http_only, same_site)
        self.cookies.set(key, Cookie(value, path, domain, max_age, expires, secure, http_only, same_site))

    def __repr__(self) -> str:
        return f"Response(status_code={self.status_code}, headers={self._headers!r}, description={self._description!r})"


def _check_cookie_args(key: Any, value: Any, path: Any, domain: Any, max_age: Any, expires: Any,
                       secure: Any, http_only: Any, same_site: Any) -> None:
    for name, given in (("key", key), ("value", value)):
        if not isinstance(given, str):
            raise TypeError(f"set_cookie() {name} must be a str, not {type(given).__name__}")
    for name, given in (("path", path), ("domain", domain), ("expires", expires), ("same_site", same_site)):
        if given is not None and not isinstance(given, str):
            raise TypeError(f"set_cookie() {name} must be a str or None, not {type(given).__name__}")
    if max_age is not None and (isinstance(max_age, bool) or not isinstance(max_age, int)):
        raise TypeError(f"set_cookie() max_age must be an int or None, not {type(max_age).__name__}")
    for name, given in (("secure", secure), ("http_only", http_only)):
        if not isinstance(given, bool):
            raise TypeError(f"set_cookie() {name} must be a bool, not {type(given).__name__}")
    if not key or any(c in key for c in ' \t\r\n;,="'):
        raise ValueError(f"set_cookie() key must be a cookie name (a token), not {key!r}")


class FileResponse:
    """Sends the file at `file_path` (read when the response is written)."""

    def __init__(self, file_path: str, status_code: int | None = None, headers: Headers | None = None) -> None:
        self.file_path = file_path
        self.description = ""
        self.status_code = status_code or 200
        self.headers = headers if headers is not None else Headers({"Content-Disposition": "attachment"})


def html(html: str) -> Response:
    """A 200 text/html response with `html` as its body."""
    return Response(200, Headers({"Content-Type": "text/html"}), html)


def serve_html(file_path: str) -> FileResponse:
    return FileResponse(file_path, headers=Headers({"Content-Type": "text/html"}))


def serve_file(file_path: str, file_name: str | None = None) -> FileResponse:
    """Sends a file as a download named `file_name` (default: its base name), its type guessed
    from that name (application/octet-stream when unknown)."""
    file_name = file_name or os.path.basename(file_path)
    headers = Headers({"Content-Type": mimetypes.guess_type(file_name)[0] or "application/octet-stream"})
    headers.append("Content-Disposition", f"attachment; filename={file_name}")
    return FileResponse(file_path, headers=headers)


SSE_MEDIA_TYPE = "text/event-stream"

# What a streaming response's generator may yield. Robyn 0.88 annotates Generator and
# AsyncGenerator; any iterable (a list, a file object) or async iterable works here too.
StreamContent = Union[Iterable[Union[str, bytes]], AsyncIterable[Union[str, bytes]]]


class StreamingResponse:
    """A response whose body is written chunk by chunk as `content` yields it (str chunks
    are sent as UTF-8). `content` is a generator or an async generator; as in Robyn 0.88,
    `media_type` defaults to Server-Sent Events, and for that media type the Content-Type
    header is set to it here. Any other media type becomes the Content-Type when `headers`
    names none.

    A sync generator from a sync handler is pulled on that handler's worker thread; an async
    generator (or any generator from an async handler) is pulled on the event loop."""

    def __init__(
        self,
        content: StreamContent,
        status_code: int | None = None,
        headers: Headers | Mapping[str, Any] | None = None,
        media_type: str = SSE_MEDIA_TYPE,
    ) -> None:
        # Unlike Robyn 0.88, an async generator is kept as it is rather than wrapped in a
        # sync iterator that drives it from another thread: here it runs on the app's loop.
        self.content = content
        self.status_code = status_code or 200
        self.headers = _as_headers(headers)
        self.media_type = media_type
        if media_type == SSE_MEDIA_TYPE:
            self.headers.set("Content-Type", SSE_MEDIA_TYPE)

    def __repr__(self) -> str:
        return (f"StreamingResponse(status_code={self.status_code}, headers={self.headers!r}, "
                f"media_type={self.media_type!r})")


def SSEResponse(  # noqa: N802 (Robyn's name: a function that reads like a class)
    content: StreamContent,
    status_code: int | None = None,
    headers: Headers | Mapping[str, Any] | None = None,
) -> StreamingResponse:
    """A Server-Sent Events stream: a StreamingResponse with media type text/event-stream.
    `content` yields SSE-formatted strings, e.g. from `SSEMessage`."""
    return StreamingResponse(content=content, status_code=status_code, headers=headers,
                             media_type=SSE_MEDIA_TYPE)


def SSEMessage(  # noqa: N802
    data: str, event: str | None = None, id: str | None = None, retry: int | None = None
) -> str:
    """One Server-Sent Event, ended by the blank line that dispatches it:
    `event: <event>`, `id: <id>`, `retry: <retry>` lines (each only when given and not empty
    or zero, as in Robyn 0.88), then one `data:` line per line of `data` (CRLF and CR count as
    line ends). Empty or None `data` gives a single empty `data: ` line."""
    parts = []
    if event:
        parts.append(f"event: {event}\n")
    if id:
        parts.append(f"id: {id}\n")
    if retry:
        parts.append(f"retry: {retry}\n")
    if data:
        text = str(data)  # Robyn accepts any object here, e.g. a number
        if "\n" not in text and "\r" not in text:
            parts.append(f"data: {text}\n")
        else:
            for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
                parts.append(f"data: {line}\n")
    else:
        parts.append("data: \n")
    parts.append("\n")
    return "".join(parts)


def serialize(result: Any) -> tuple[int, HeaderList, bytes]:
    """Turns a handler's return value into (status, headers, body); see the module docstring.

    The header list is new on every call; the caller may keep or extend it.
    """
    kind = type(result)
    if kind is str:
        return 200, [_CT_TEXT], result.encode()
    if kind is dict or kind is list:
        return 200, [_CT_JSON], _encode_json(result).encode()
    if kind is Response:
        return _from_response(result)
    if kind is bytes:
        return 200, [_CT_OCTET], result
    return _serialize_other(result)


def _checked(headers: HeaderList) -> HeaderList:
    """Refuses a CR or LF in a header (a user-built header must not start another)."""
    for name, value in headers:
        if "\n" in value or "\r" in value or "\n" in name or "\r" in name:
            raise ValueError(f"Invalid header {name!r}: it contains CR or LF")
    return headers


def _from_response(response: Response) -> tuple[int, HeaderList, bytes]:
    headers = response.headers.multi_items()
    if response.cookies:
        headers.extend(("set-cookie", value) for value in response.cookies.header_values())
    body = response.description
    return response.status_code, _checked(headers), body.encode() if isinstance(body, str) else body


class NotAnAnswerError(TypeError):
    """A handler returned a value that stands for no answer (see the module docstring)."""

    def __init__(self, result: object) -> None:
        kind = type(result)
        where = kind.__module__
        name = kind.__qualname__ if where in ("builtins", "__main__") else f"{where}.{kind.__qualname__}"
        super().__init__(
            f"a value of type {name!r}, which is not an answer: return str, bytes, dict, list, "
            "a Response, a (body, headers, status) tuple or a Pydantic model")
        self.type_name = name


def _serialize_other(result: Any) -> tuple[int, HeaderList, bytes]:
    if isinstance(result, StreamingResponse):
        raise TypeError("a StreamingResponse is streamed, not serialized")
    if isinstance(result, Response):
        return _from_response(result)
    if isinstance(result, str):
        return 200, [_CT_TEXT], str.encode(result)
    if isinstance(result, (dict, list)):
        return 200, [_CT_JSON], _encode_json(result).encode()
    if isinstance(result, (bytes, bytearray, memoryview)):
        return 200, [_CT_OCTET], bytes(result)
    if isinstance(result, FileResponse):
        with open(result.file_path, "rb") as file:
            content = file.read()
        return result.status_code, _checked(_as_headers(result.headers).multi_items()), content
    if isinstance(result, tuple):
        return _from_tuple(result)
    model_dump_json = getattr(result, "model_dump_json", None)  # Pydantic v2 models
    if callable(model_dump_json) and not isinstance(result, type):
        return 200, [_CT_JSON], model_dump_json().encode()
    kind = type(result)
    own_text = (getattr(kind, "__str__") is not object.__str__
                or getattr(kind, "__repr__") is not object.__repr__)
    if not own_text:
        raise NotAnAnswerError(result)  # its text would be "<x object at 0x...>"
    return 200, [_CT_TEXT], str(result).encode()


def _from_tuple(result: tuple[Any, ...]) -> tuple[int, HeaderList, bytes]:
    if len(result) != 3:
        raise ValueError("Tuple should have 3 elements")
    description, headers, status_code = result
    if not isinstance(status_code, int):
        raise TypeError(f"Tuple status code must be an int, got {type(status_code).__name__}")
    _, body_headers, body = serialize(description)
    given = _as_headers(headers).multi_items()
    names = {name for name, _ in given}
    return status_code, _checked(given) + [pair for pair in body_headers if pair[0] not in names], body
