"""Signed-cookie sessions, as Robyn 0.88 has them (`app.configure_sessions(secret_key, ...)`).

The whole session lives in one cookie: base64url JSON `{"d": data, "exp": unix time}`, then a
dot, then base64url HMAC-SHA256 of that text under a key derived from `secret_key`. Signing
stops a client from *changing* the session; it does not stop anyone from *reading* it (the data
is encoded, not encrypted), so keep secrets out of it.

Per request, a global before hook reads the cookie into `request.session` (a dict-like
`Session`); a cookie that is missing, malformed, tampered with, signed with another key or
expired gives an empty session, never an error. A global after hook writes the cookie back only
when the session changed (a nested change such as `session["items"].append(x)` counts); a
session emptied by the handler is sent as an expired cookie so that the browser drops it.

The cookie format and the key derivation are Robyn 0.88's, so a session cookie made by a Robyn
0.88 app with the same secret key is read here, and the other way round.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import math
import time
from collections.abc import Callable, Iterator, MutableMapping
from typing import Any

__all__ = ["Session", "SessionManager", "configure"]

_logger = logging.getLogger(__name__)

# Most browsers keep cookies of up to 4096 bytes, name and attributes included; a bigger
# session is dropped by the browser without a word, so it is logged here.
_MAX_COOKIE_SIZE = 4093
_SALT = b"robyn.session"
_DEFAULT_MAX_AGE = 14 * 24 * 60 * 60
_SAME_SITE = {"strict": "Strict", "lax": "Lax", "none": "None"}


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class _Signer:
    """HMAC-SHA256 over the cookie's payload text, with a key derived from the secret."""

    __slots__ = ("_key",)

    def __init__(self, secret_key: str) -> None:
        # Hashing gives a fixed-length key whatever the secret's length.
        self._key = hashlib.sha256(_SALT + secret_key.encode("utf-8")).digest()

    def _signature(self, value: bytes) -> str:
        return _b64encode(hmac.new(self._key, value, hashlib.sha256).digest())

    def sign(self, payload: bytes) -> str:
        value = _b64encode(payload)
        return f"{value}.{self._signature(value.encode('ascii'))}"

    def unsign(self, signed: str) -> bytes | None:
        """The payload of a signed value, or None when the signature does not match."""
        value, dot, signature = signed.rpartition(".")
        if not dot:
            return None
        try:
            expected = self._signature(value.encode("ascii"))
        except UnicodeEncodeError:
            return None
        # compare_digest takes the same time wherever the strings differ.
        if not hmac.compare_digest(expected.encode("ascii"), signature.encode("utf-8", "replace")):
            return None
        try:
            return _b64decode(value)
        except (ValueError, binascii.Error):
            return None


class Session(MutableMapping[str, Any]):
    """The session of one request: a dict whose values must be JSON-serializable.

    `modified` turns True on any top-level change (`session[k] = v`, `del`, `pop`, `clear` of a
    non-empty session ...). Changes inside values (`session["cart"].append(x)`) are found by
    comparing the data with what was loaded. Set `modified = True` to force a write.
    """

    __slots__ = ("_data", "modified", "_snapshot")

    def __init__(self, data: dict[str, Any] | None = None) -> None:
        self._data: dict[str, Any] = dict(data) if data else {}
        self.modified = False
        self._snapshot = self._canonical()

    def _canonical(self) -> str | None:
        try:
            return json.dumps(self._data, sort_keys=True, separators=(",", ":"))
        except (TypeError, ValueError):
            return None  # not serializable: counts as changed, so saving reports it

    def is_modified(self) -> bool:
        """True when the session changed during this request."""
        if self.modified:
            return True
        current = self._canonical()
        return current is None or current != self._snapshot

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._data[key] = value
        self.modified = True

    def __delitem__(self, key: str) -> None:
        del self._data[key]
        self.modified = True

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def clear(self) -> None:
        if self._data:
            self.modified = True
        self._data.clear()

    def to_dict(self) -> dict[str, Any]:
        return dict(self._data)

    def __repr__(self) -> str:
        return f"Session({self._data!r})"


class SessionManager:
    """Reads and writes the session cookie; what `configure` installs, usable on its own too
    (`manager.load(request)` and `manager.save(session, response)`).

    Raises ValueError for an empty secret key, a SameSite other than Strict/Lax/None (any case),
    or SameSite=None without secure=True (browsers refuse such cookies); TypeError for a value
    of the wrong type.
    """

    def __init__(
        self,
        secret_key: str,
        *,
        cookie_name: str = "session",
        max_age: int | None = _DEFAULT_MAX_AGE,
        path: str = "/",
        domain: str | None = None,
        secure: bool = False,
        http_only: bool = True,
        same_site: str = "Lax",
    ) -> None:
        if not isinstance(secret_key, str):
            raise TypeError(f"configure_sessions() secret_key must be a str, not {type(secret_key).__name__}")
        if not secret_key:
            raise ValueError("configure_sessions() requires a non-empty secret_key")
        if not isinstance(cookie_name, str) or not cookie_name or any(c in cookie_name for c in ' ;,="\t\r\n'):
            raise ValueError(f"configure_sessions() cookie_name must be a cookie name (a token), not {cookie_name!r}")
        if max_age is not None and (isinstance(max_age, bool) or not isinstance(max_age, int)):
            raise TypeError(f"configure_sessions() max_age must be an int or None, not {max_age!r}")
        if max_age is not None and max_age <= 0:
            raise ValueError(f"configure_sessions() max_age must be positive (or None), not {max_age}")
        for name, flag in (("secure", secure), ("http_only", http_only)):
            if not isinstance(flag, bool):
                raise TypeError(f"configure_sessions() {name} must be a bool, not {flag!r}")
        if not isinstance(path, str) or (domain is not None and not isinstance(domain, str)):
            raise TypeError("configure_sessions() path must be a str and domain a str or None")
        self._signer = _Signer(secret_key)
        self.cookie_name = cookie_name
        self.max_age = max_age
        self.path = path
        self.domain = domain
        self.secure = secure
        self.http_only = http_only
        self.same_site = _normalize_same_site(same_site)
        if self.same_site == "None" and not secure:
            raise ValueError(
                "same_site='None' requires secure=True (browsers reject SameSite=None cookies "
                "without the Secure attribute)")

    def dumps(self, session: Session | dict[str, Any]) -> str:
        """The signed cookie value for `session`. TypeError when it is not JSON-serializable."""
        envelope: dict[str, Any] = {"d": dict(session)}
        if self.max_age is not None:
            envelope["exp"] = int(time.time()) + self.max_age
        try:
            payload = json.dumps(envelope, separators=(",", ":"), allow_nan=False).encode("utf-8")
        except (TypeError, ValueError) as exc:
            raise TypeError(f"Session data must be JSON-serializable to fit in a signed cookie: {exc}") from exc
        return self._signer.sign(payload)

    def loads(self, raw: str) -> Session:
        """The session in a cookie value; empty when the value is invalid, tampered or expired."""
        payload = self._signer.unsign(raw)
        if payload is None:
            return Session()
        try:
            envelope = json.loads(payload)
        except ValueError:  # also UnicodeDecodeError
            return Session()
        if not isinstance(envelope, dict) or not isinstance(envelope.get("d"), dict):
            return Session()
        expires = envelope.get("exp")
        # NaN and Infinity pass json.loads and would slip past `expires < now`.
        if expires is not None and (
            isinstance(expires, bool) or not isinstance(expires, (int, float)) or not math.isfinite(expires)
            or expires < time.time()
        ):
            return Session()
        return Session(envelope["d"])

    def load(self, request: Any) -> Session:
        raw = read_cookie(request.headers.get("cookie"), self.cookie_name)
        return Session() if raw is None else self.loads(raw)

    def save(self, session: Session, response: Any) -> None:
        """Sets the cookie on `response` when the session changed (an expired one when it is empty)."""
        if not session.is_modified():
            return
        max_age: int | None
        if len(session) == 0:
            value, max_age = "", 0
        else:
            value, max_age = self.dumps(session), self.max_age
            if len(value) > _MAX_COOKIE_SIZE:
                _logger.warning(
                    "the session cookie is %d bytes, more than the ~4 KB most browsers keep; it may be dropped. "
                    "Store less in the session.", len(value))
        response.set_cookie(
            key=self.cookie_name, value=value, path=self.path, domain=self.domain, max_age=max_age,
            secure=self.secure, http_only=self.http_only, same_site=self.same_site)


def _normalize_same_site(value: Any) -> str:
    normalized = _SAME_SITE.get(value.strip().lower()) if isinstance(value, str) else None
    if normalized is None:
        raise ValueError(f"same_site must be one of 'Strict', 'Lax', 'None' (got {value!r})")
    return normalized


def read_cookie(header: str | None, name: str) -> str | None:
    """The value of cookie `name` in a Cookie header (the first one of that name), or None."""
    if not header:
        return None
    for part in header.split(";"):
        key, sep, value = part.partition("=")
        if sep and key.strip() == name:
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            return value
    return None


def configure(app: Any, secret_key: str, cookie_name: str = "session", **options: Any) -> SessionManager:
    """Turns on sessions for `app`: what `app.configure_sessions(...)` does.

    `options` are SessionManager's keywords (max_age, path, domain, secure, http_only,
    same_site); any other is a TypeError naming it. Configuring sessions twice on one app is a
    RuntimeError (it would register the hooks twice). Returns the SessionManager.
    """
    unknown = sorted(set(options) - _OPTIONS)
    if unknown:
        raise TypeError(f"configure_sessions() got an unexpected keyword argument '{unknown[0]}'")
    if getattr(app, "session_manager", None) is not None:
        raise RuntimeError(
            "Sessions are already configured on this app; configure_sessions() may only be called once "
            "(calling it again would register duplicate session middleware).")
    manager = SessionManager(secret_key, cookie_name=cookie_name, **options)
    app.session_manager = manager

    before: Callable[[Callable[..., Any]], Any] = app.before_request()
    after: Callable[[Callable[..., Any]], Any] = app.after_request()

    def load_session(request: Any) -> Any:
        # The same Session object is seen by the handler and by the after hook, so whatever
        # the handler changes is what gets saved.
        request.session = manager.load(request)
        return request

    def save_session(request: Any, response: Any) -> Any:
        session = getattr(request, "session", None)
        if isinstance(session, Session):
            manager.save(session, response)
        elif isinstance(session, dict):  # the handler replaced the session with a plain dict
            replaced = Session(session)
            replaced.modified = True
            manager.save(replaced, response)
        return response

    before(load_session)
    after(save_session)
    return manager


_OPTIONS = frozenset({"max_age", "path", "domain", "secure", "http_only", "same_site"})
