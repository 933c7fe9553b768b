"""Robyn's API on a C core: libwebsockets owns the sockets, C routes and fans out, Python
runs only the handlers."""

from __future__ import annotations

from typing import Any

from . import status_codes
from .authentication import AuthenticationHandler
from .cors import ALLOW_CORS
from .datastructures import Headers, QueryParams
from .exceptions import HTTPException, WebSocketException
from .request import Request
from .responses import (
    Response, SSEMessage, SSEResponse, StreamingResponse, html, jsonify, serve_file, serve_html,
)
from .router import SubRouter
from .types import Body, IPAddress, JsonBody, Method, PathParams, RequestBody, RequestMethod, RequestURL, Url

__all__ = [
    "ALLOW_CORS", "AuthenticationHandler", "JsonBody", "RequestMethod", "RequestURL", "SubRouter",
    "Body", "HTTPException", "Headers", "IPAddress", "Method", "PathParams", "QueryParams",
    "Request", "RequestBody", "Response", "Robyn", "SSEMessage", "SSEResponse",
    "StreamingResponse", "Url", "WebSocket", "WebSocketAdapter",
    "WebSocketDisconnect", "WebSocketException", "html",
    "jsonify", "serve_file", "serve_html", "status_codes",
]


def __getattr__(name: str) -> Any:
    # The application class needs the compiled extension; the pure-Python types do not,
    # so importing them works before the extension is built.
    if name == "Robyn":
        from .app import Robyn

        return Robyn
    if name in ("WebSocket", "WebSocketAdapter", "WebSocketDisconnect"):
        from . import ws

        return getattr(ws, name)
    raise AttributeError(f"module 'robyn' has no attribute {name!r}")
