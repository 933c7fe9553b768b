"""Types of the request's parts, which double as the annotations that select what is injected.

`PathParams`, `Method`, `FormData`, `Files` and `IPAddress` are `NewType`s, as in Robyn: they cost
nothing at run time and a handler parameter annotated with one receives that part of the request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NewType, Optional, TypedDict

from robyn.exceptions import QueryParamValidationError

__all__ = [
    "Url",
    "Identity",
    "Directory",
    "PathParams",
    "Method",
    "FormData",
    "Files",
    "IPAddress",
    "RequestMethod",
    "RequestBody",
    "RequestURL",
    "JSONResponse",
    "Body",
    "JsonBody",
    "QueryParamValidationError",
]


class Url:
    """The request URL: `scheme` ("http"), `host` (the Host header) and `path`."""

    __slots__ = ("scheme", "host", "path")

    def __init__(self, scheme: str, host: str, path: str) -> None:
        self.scheme = scheme
        self.host = host
        self.path = path

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Url):
            return NotImplemented
        return (self.scheme, self.host, self.path) == (other.scheme, other.host, other.path)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Url(scheme={self.scheme!r}, host={self.host!r}, path={self.path!r})"


class Identity:
    """Who made the request, as set by an authentication handler."""

    __slots__ = ("claims",)

    def __init__(self, claims: dict[str, str]) -> None:
        self.claims = claims

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Identity):
            return NotImplemented
        return self.claims == other.claims

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Identity(claims={self.claims!r})"


@dataclass
class Directory:
    """A directory served under `route` (see `Robyn.serve_directory`)."""

    route: str
    directory_path: str
    show_files_listing: bool
    index_file: str | None

    def as_list(self) -> list[object]:
        return [self.route, self.directory_path, self.show_files_listing, self.index_file]


PathParams = NewType("PathParams", dict[str, str])
Method = NewType("Method", str)
FormData = NewType("FormData", dict[str, str])
Files = NewType("Files", dict[str, bytes])
IPAddress = NewType("IPAddress", Optional[str])  # type: ignore[valid-newtype]

RequestMethod = Literal["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "CONNECT", "TRACE"]
"""The values `request.method` takes."""

RequestBody = str | bytes
"""The type of `request.body`: text when the body is valid UTF-8, else bytes."""

RequestURL = Url


class JSONResponse(TypedDict):
    """Base for TypedDicts that describe a JSON response body (used by the OpenAPI docs)."""


class Body:
    """Base for request-body annotations: a parameter annotated with a subclass gets `request.body`."""


class JsonBody:
    """Base for JSON-body annotations: a parameter annotated with a subclass gets `request.json()`.

    The body is parsed before the handler runs; if it is not valid JSON the answer is a 400 with
    `{"error": "Invalid JSON body: ..."}` and the handler is not called. Take `body: Body` and call
    `request.json()` yourself to handle bad JSON in the handler.
    """
