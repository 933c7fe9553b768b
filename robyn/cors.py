"""ALLOW_CORS(app, origins): Robyn 0.88's CORS set-up.

It adds one global before hook and the app's CORS response headers:
- a request whose Origin is not allowed gets 403 (unless "*" is allowed);
- an OPTIONS request (a preflight) gets 204 with Access-Control-Allow-Origin (the
  request's Origin), -Methods, -Headers, -Credentials and -Max-Age, also on paths that
  have no OPTIONS route;
- every response carries Access-Control-Allow-Origin (the one origin, or "*" when several
  are allowed), -Methods, -Headers and -Credentials, unless it sets them itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .datastructures import Headers
from .responses import Response

if TYPE_CHECKING:
    from .app import Robyn

__all__ = ["ALLOW_CORS"]

_METHODS = "GET, POST, PUT, DELETE, PATCH, HEAD, OPTIONS"
_DEFAULT_HEADERS = ["Content-Type", "Authorization"]


def ALLOW_CORS(app: Robyn, origins: list[str] | str, headers: list[str] | str | None = None) -> None:  # noqa: N802
    if isinstance(origins, str):
        origins = [origins]
    if not isinstance(origins, list) or not all(isinstance(o, str) for o in origins):
        raise TypeError(f"ALLOW_CORS origins must be a str or a list of str, not {origins!r}")
    if isinstance(headers, list):
        if not all(isinstance(h, str) for h in headers):
            raise TypeError(f"ALLOW_CORS headers must be a str or a list of str, not {headers!r}")
        allowed_headers = ", ".join(_DEFAULT_HEADERS + [h for h in headers if h not in _DEFAULT_HEADERS])
    elif isinstance(headers, str):
        allowed_headers = headers
    elif headers is None:
        allowed_headers = ", ".join(_DEFAULT_HEADERS)
    else:
        raise TypeError(f"ALLOW_CORS headers must be a str or a list of str, not {headers!r}")
    allowed = list(origins)
    any_origin = "*" in allowed

    @app.before_request()
    def cors_middleware(request: Any) -> Any:
        origin = request.headers.get("origin")
        if origin and not any_origin and origin not in allowed:
            return Response(status_code=403, headers=Headers({}), description="")
        if request.method == "OPTIONS":
            return Response(
                status_code=204,
                headers=Headers({
                    "Access-Control-Allow-Origin": origin if origin else (allowed[0] if allowed else "*"),
                    "Access-Control-Allow-Methods": _METHODS,
                    "Access-Control-Allow-Headers": allowed_headers,
                    "Access-Control-Allow-Credentials": "true",
                    "Access-Control-Max-Age": "3600",
                }),
                description="",
            )
        return request

    app.set_response_header("Access-Control-Allow-Origin", allowed[0] if len(allowed) == 1 else "*")
    app.set_response_header("Access-Control-Allow-Methods", _METHODS)
    app.set_response_header("Access-Control-Allow-Headers", allowed_headers)
    app.set_response_header("Access-Control-Allow-Credentials", "true")
