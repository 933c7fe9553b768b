"""Authentication as Robyn 0.88 has it: an AuthenticationHandler reads a token from the
request with its TokenGetter and returns an Identity (or None for a 401)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable

from .datastructures import Headers
from .request import Request
from .responses import Response
from .status_codes import HTTP_401_UNAUTHORIZED
from .types import Identity

__all__ = ["AuthenticationHandler", "AuthenticationNotConfiguredError", "BearerGetter", "Identity",
           "TokenGetter"]


class AuthenticationNotConfiguredError(Exception):
    """An `auth_required=True` route with no authentication handler to check it."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or "Authentication is not configured. "
                         "Use app.configure_authentication() to configure it.")


class TokenGetter(ABC):
    """Reads (and writes) the encoded token of a request; decoding is the handler's job."""

    @property
    def scheme(self) -> str:
        """The scheme, sent in the WWW-Authenticate header of a 401: the class name."""
        return self.__class__.__name__

    @classmethod
    @abstractmethod
    def get_token(cls, request: Request) -> str | None:
        raise NotImplementedError()

    @classmethod
    @abstractmethod
    def set_token(cls, request: Request, token: str) -> None:
        raise NotImplementedError()


class AuthenticationHandler(ABC):
    """Subclass it and write `authenticate(request)` (sync or `async def`): the Identity
    of the caller, or None to answer 401."""

    def __init__(self, token_getter: TokenGetter) -> None:
        if not isinstance(token_getter, TokenGetter):
            raise TypeError(f"token_getter must be a TokenGetter, not {token_getter!r}")
        self.token_getter = token_getter

    @property
    def unauthorized_response(self) -> Response:
        return Response(status_code=HTTP_401_UNAUTHORIZED,
                        headers=Headers({"WWW-Authenticate": self.token_getter.scheme}),
                        description="Unauthorized")

    @abstractmethod
    def authenticate(self, request: Request) -> Identity | None | Awaitable[Identity | None]:
        raise NotImplementedError()


class BearerGetter(TokenGetter):
    """The token of an `Authorization: Bearer <token>` header."""

    @classmethod
    def get_token(cls, request: Request) -> str | None:
        header = request.headers.get("authorization")
        if not header or not header.startswith("Bearer "):
            return None
        return header[7:]

    @classmethod
    def set_token(cls, request: Request, token: str) -> None:
        request.headers["Authorization"] = f"Bearer {token}"
