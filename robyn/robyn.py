"""`robyn.robyn`: the names Robyn 0.88 keeps in its compiled module, for apps that import
them from there (`from robyn.robyn import Headers, QueryParams, Request, Response, Url`).
They are the same classes as `robyn.Headers` and the others."""

from __future__ import annotations

import enum
from collections.abc import Callable
from importlib import metadata
from typing import Any

from .datastructures import Headers, QueryParams
from .request import Request
from .exceptions import FeatureNotProvidedError
from .responses import Cookie, Cookies, CookiesIter, Response
from .types import Identity, Url

__all__ = ["Cookie", "Cookies", "CookiesIter", "FunctionInfo", "Headers", "HttpMethod", "Identity",
           "MiddlewareType", "QueryParams", "Request", "Response", "Url", "WebSocketConnector",
           "get_version"]

# Robyn's Rust server and its listening socket: this project's server is the C core
# (robyn._gateway), which Robyn.start() drives; there is nothing for an app to call here.
_RUST_INTERNALS = {
    "Server": "Robyn's Rust server class; this project's server is its C core, started by Robyn.start()",
    "SocketHeld": "Robyn's Rust listening socket; the C core binds its own when Robyn.start() runs",
}


def __getattr__(name: str) -> Any:
    if name == "WebSocketConnector":
        # The per-connection object of a WebSocket handler (robyn/ws.py), which needs the
        # compiled extension: imported when asked for.
        from .ws import WebSocket

        return WebSocket
    if name in _RUST_INTERNALS:
        raise FeatureNotProvidedError(f"robyn.robyn.{name}", _RUST_INTERNALS[name])
    raise AttributeError(f"module 'robyn.robyn' has no attribute {name!r}")


class HttpMethod(enum.Enum):
    GET = "GET"
    POST = "POST"
    PUT = "PUT"
    DELETE = "DELETE"
    PATCH = "PATCH"
    HEAD = "HEAD"
    OPTIONS = "OPTIONS"
    CONNECT = "CONNECT"
    TRACE = "TRACE"

    def __str__(self) -> str:
        return f"HttpMethod.{self.name}"


class MiddlewareType(enum.Enum):
    BEFORE_REQUEST = "BEFORE_REQUEST"
    AFTER_REQUEST = "AFTER_REQUEST"


class FunctionInfo:
    """A registered function as Robyn describes it: the callable, whether it is a
    coroutine function, and its parameter count."""

    __slots__ = ("handler", "is_async", "number_of_params", "args", "kwargs")

    def __init__(self, handler: Callable[..., Any], is_async: bool, number_of_params: int,
                 args: dict[str, Any] | None = None, kwargs: dict[str, Any] | None = None) -> None:
        self.handler = handler
        self.is_async = is_async
        self.number_of_params = number_of_params
        self.args = args if args is not None else {}
        self.kwargs = kwargs if kwargs is not None else {}

    def __repr__(self) -> str:
        return (f"FunctionInfo(handler={self.handler!r}, is_async={self.is_async}, "
                f"number_of_params={self.number_of_params})")


def get_version() -> str:
    try:
        return metadata.version("robyn-gateway")
    except metadata.PackageNotFoundError:
        return "0.0.0"
