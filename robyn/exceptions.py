"""Exceptions users raise from handlers, and the one injection raises for bad parameters."""

from __future__ import annotations

import http

__all__ = ["FeatureNotProvidedError", "HTTPException", "WebSocketException", "QueryParamValidationError"]


class HTTPException(Exception):
    """An HTTP error answer: `status_code` with `detail` (the status phrase when omitted).

    An unknown status code with no detail raises ValueError, as `http.HTTPStatus` does.
    """

    def __init__(self, status_code: int, detail: str | None = None) -> None:
        if detail is None:
            detail = http.HTTPStatus(status_code).phrase
        super().__init__(status_code, detail)
        self.status_code = status_code
        self.detail = detail

    def __str__(self) -> str:
        return f"{self.status_code}: {self.detail}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status_code={self.status_code}, detail={self.detail})"


class WebSocketException(Exception):
    """Closes a WebSocket with `code` and `reason`."""

    def __init__(self, code: int, reason: str | None = None) -> None:
        super().__init__(code, reason)
        self.code = code
        self.reason = reason or ""

    def __str__(self) -> str:
        return f"{self.code}: {self.reason}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code}, reason={self.reason})"


class QueryParamValidationError(HTTPException):
    """A path or query parameter is missing or cannot be coerced: answered with 400.

    Robyn raises this (exported from `robyn.types`); here it is also an HTTPException, and
    `str(err)` is the bare detail, which Robyn sends as the text/plain body.
    """

    def __init__(self, param_name: str, value: str | None, expected_type: object, message: str | None = None) -> None:
        self.param_name = param_name
        self.value = value
        self.expected_type = expected_type
        if message is None:
            if value is None:
                message = f"Missing required parameter: '{param_name}'"
            else:
                message = f"Invalid value '{value}' for parameter '{param_name}': expected {type_name(expected_type)}"
        super().__init__(400, message)

    def __str__(self) -> str:
        return self.detail


def type_name(tp: object) -> str:
    """The name of a type or annotation as it appears in error messages (`int`, `list[int]`)."""
    name = getattr(tp, "__name__", None)
    if isinstance(tp, type) and isinstance(name, str):
        return name
    text = repr(tp)
    return text[len("typing.") :] if text.startswith("typing.") else text


class FeatureNotProvidedError(ImportError, NotImplementedError):
    """A part of Robyn 0.88's API this project does not provide (its MCP server, its AI
    agents, its Rust internals). Raised when the name is imported or used, never a stand-in
    that would seem to work: it is an ImportError, so `try: import ... except ImportError`
    guards see it, and a NotImplementedError, for code that uses it at run time."""

    def __init__(self, name: str, why: str) -> None:
        super().__init__(f"{name} is not provided by this Robyn (robyn-gateway): {why}")
        self.feature = name
