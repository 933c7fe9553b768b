"""Robyn's API on a C core: libwebsockets owns the sockets, C routes and fans out, Python
runs only the handlers."""

from __future__ import annotations

from importlib import metadata as _metadata
from typing import TYPE_CHECKING, Any

try:
    # The distribution's version (pyproject.toml), as installed.
    __version__: str = _metadata.version("robyn-gateway")
except _metadata.PackageNotFoundError:  # imported from a source tree that is not installed
    __version__ = "0+unknown"

from . import status_codes
from .authentication import AuthenticationHandler
from .cors import ALLOW_CORS
from .datastructures import Headers, QueryParams
from .exceptions import HTTPException, WebSocketException
from .request import Request
from .responses import Response, SSEMessage, SSEResponse, StreamingResponse, html, serve_file, serve_html
from .router import SubRouter
from .sessions import Session, SessionManager
from .types import Body, IPAddress, JsonBody, Method, PathParams, RequestBody, RequestMethod, RequestURL, Url

# Importing the submodule robyn.jsonify sets `robyn.jsonify` to the module; the name is then
# bound to the function, as in Robyn (`from robyn.jsonify import jsonify` works too).
from .jsonify import jsonify  # noqa: E402  (isort: skip)

__all__ = [
    "ALLOW_CORS", "AuthenticationHandler", "JsonBody", "RequestMethod", "RequestURL", "SubRouter",
    "Body", "HTTPException", "Headers", "IPAddress", "Method", "PathParams", "QueryParams",
    "Request", "RequestBody", "Response", "Robyn", "SSEMessage", "SSEResponse", "Session",
    "SessionManager", "StreamingResponse", "TestClient", "Url", "WebSocket", "WebSocketAdapter",
    "WebSocketConnector", "WebSocketDisconnect", "WebSocketException", "html",
    "jsonify", "serve_file", "serve_html", "status_codes",
]
# Not in __all__ (a star import would raise): Robyn 0.88's MCPApp, which this project does
# not provide; `robyn.MCPApp` raises FeatureNotProvidedError naming it.


if TYPE_CHECKING:  # imported on first use at run time (see __getattr__)
    from .app import Robyn
    from .testing import TestClient
    from .ws import WebSocket, WebSocketAdapter, WebSocketDisconnect
    from .ws import WebSocket as WebSocketConnector


def __getattr__(name: str) -> Any:
    # The application class needs the compiled extension; the pure-Python types do not,
    # so importing them works before the extension is built.
    if name == "Robyn":
        from .app import Robyn

        return Robyn
    if name in ("WebSocket", "WebSocketAdapter", "WebSocketDisconnect"):
        from . import ws

        return getattr(ws, name)
    if name == "WebSocketConnector":
        # Robyn's name for the per-connection object its WebSocket handlers get: ours is
        # robyn.ws.WebSocket (WebSocketAdapter is the same class).
        from .ws import WebSocket

        return WebSocket
    if name == "TestClient":
        from .testing import TestClient

        return TestClient
    if name == "MCPApp":
        from .exceptions import FeatureNotProvidedError

        raise FeatureNotProvidedError("robyn.MCPApp", "Robyn's MCP (Model Context Protocol) server is "
                                      "not part of this project")
    raise AttributeError(f"module 'robyn' has no attribute {name!r}")
