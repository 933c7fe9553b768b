"""robyn.sessions with a fake app (the hooks it registers are called by hand) and fake requests."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import pytest
from fakes import FakeJob

from robyn.request import Request
from robyn.responses import Response
from robyn.sessions import Session, SessionManager, configure, read_cookie


class FakeApp:
    """Records the global hooks configure() registers, as app.before_request()/after_request()."""

    def __init__(self) -> None:
        self.before: list[Any] = []
        self.after: list[Any] = []

    def before_request(self, endpoint: str | None = None) -> Any:
        assert endpoint is None  # sessions are global
        return lambda hook: self.before.append(hook) or hook

    def after_request(self, endpoint: str | None = None) -> Any:
        assert endpoint is None
        return lambda hook: self.after.append(hook) or hook


def round_trip(app: FakeApp, cookie: str | None, handler: Any) -> Response:
    """One request through the hooks: before hooks, handler(request), after hooks."""
    headers = [("cookie", cookie)] if cookie is not None else []
    request = Request(FakeJob(headers=headers))
    for hook in app.before:
        request = hook(request)
    handler(request)
    response = Response(200, {}, "ok")
    for hook in app.after:
        response = hook(request, response)
    return response


def set_cookie_of(response: Response) -> list[str]:
    return response.cookies.header_values()


def cookie_value(response: Response, name: str = "session") -> str:
    cookie = response.cookies.get(name)
    assert cookie is not None
    return cookie.value


def counter(request: Request) -> None:
    request.session["count"] = request.session.get("count", 0) + 1


def test_configure_registers_one_before_and_one_after_hook() -> None:
    app = FakeApp()
    manager = configure(app, "secret", cookie_name="sid")
    assert (len(app.before), len(app.after)) == (1, 1)
    assert app.session_manager is manager  # type: ignore[attr-defined]
    assert manager.cookie_name == "sid"


def test_empty_session_sets_no_cookie() -> None:
    app = FakeApp()
    configure(app, "secret")
    seen: list[Any] = []
    response = round_trip(app, None, lambda request: seen.append(dict(request.session)))
    assert seen == [{}]
    assert set_cookie_of(response) == []


def test_session_round_trips_and_counts() -> None:
    app = FakeApp()
    configure(app, "secret")
    cookie = None
    for expected in (1, 2, 3):
        response = round_trip(app, None if cookie is None else f"other=1; session={cookie}", counter)
        cookie = cookie_value(response)
        assert SessionManager("secret").loads(cookie).to_dict() == {"count": expected}


def test_cookie_attributes_default_as_robyn() -> None:
    app = FakeApp()
    configure(app, "secret")
    [header] = set_cookie_of(round_trip(app, None, counter))
    value = header.split(";")[0].split("=", 1)[1]
    assert header == f"session={value}; HttpOnly; SameSite=Lax; Path=/; Max-Age=1209600"


def test_cookie_options() -> None:
    app = FakeApp()
    configure(app, "secret", cookie_name="sid", max_age=60, path="/app", domain="example.com", secure=True,
              http_only=False, same_site="strict")
    [header] = set_cookie_of(round_trip(app, None, counter))
    value = header.split(";")[0].split("=", 1)[1]
    assert header == f"sid={value}; SameSite=Strict; Secure; Path=/app; Domain=example.com; Max-Age=60"


def test_browser_session_cookie_without_max_age() -> None:
    app = FakeApp()
    configure(app, "secret", max_age=None)
    response = round_trip(app, None, counter)
    assert "Max-Age" not in set_cookie_of(response)[0]
    payload = json.loads(base64.urlsafe_b64decode(cookie_value(response).split(".")[0] + "=="))
    assert payload == {"d": {"count": 1}}


def test_unchanged_session_is_not_resent() -> None:
    app = FakeApp()
    configure(app, "secret")
    cookie = cookie_value(round_trip(app, None, counter))
    response = round_trip(app, f"session={cookie}", lambda request: request.session.get("count"))
    assert set_cookie_of(response) == []


def test_nested_change_is_saved() -> None:
    app = FakeApp()
    configure(app, "secret")
    cookie = cookie_value(round_trip(app, None, lambda request: request.session.update(items=[1])))
    response = round_trip(app, f"session={cookie}", lambda request: request.session["items"].append(2))
    assert SessionManager("secret").loads(cookie_value(response)).to_dict() == {"items": [1, 2]}


def test_cleared_session_expires_the_cookie() -> None:
    app = FakeApp()
    configure(app, "secret")
    cookie = cookie_value(round_trip(app, None, counter))
    response = round_trip(app, f"session={cookie}", lambda request: request.session.clear())
    assert set_cookie_of(response) == ["session=; HttpOnly; SameSite=Lax; Path=/; Max-Age=0"]


def test_session_replaced_by_a_dict_is_saved() -> None:
    app = FakeApp()
    configure(app, "secret")

    def replace(request: Request) -> None:
        request.session = {"user": "ada"}

    response = round_trip(app, None, replace)
    assert SessionManager("secret").loads(cookie_value(response)).to_dict() == {"user": "ada"}


def signed(secret: str, payload: bytes) -> str:
    key = hashlib.sha256(b"robyn.session" + secret.encode()).digest()
    value = base64.urlsafe_b64encode(payload).rstrip(b"=")
    signature = base64.urlsafe_b64encode(hmac.new(key, value, hashlib.sha256).digest()).rstrip(b"=")
    return f"{value.decode()}.{signature.decode()}"


def test_cookie_format_is_robyns() -> None:
    """A cookie signed the way Robyn 0.88 signs it is read, so sessions survive a migration."""
    cookie = signed("secret", json.dumps({"d": {"user": "ada"}, "exp": int(time.time()) + 60}).encode())
    assert SessionManager("secret").loads(cookie).to_dict() == {"user": "ada"}


@pytest.mark.parametrize(
    "cookie",
    [
        "tampered",
        "",
        ".",
        "abc.def",
        "ÿÿÿ.ÿÿÿ",
        signed("other secret", b'{"d": {"user": "ada"}}'),
        signed("secret", b'{"d": {"user": "ada"}, "exp": 1}'),  # expired
        signed("secret", b'{"d": {"user": "ada"}, "exp": NaN}'),
        signed("secret", b'{"d": {"user": "ada"}, "exp": Infinity}'),
        signed("secret", b'{"d": {"user": "ada"}, "exp": true}'),
        signed("secret", b'{"d": {"user": "ada"}, "exp": "never"}'),
        signed("secret", b'{"d": ["not", "a", "dict"]}'),
        signed("secret", b"[1, 2]"),
        signed("secret", b"not json"),
        signed("secret", b"\xff\xfe"),
    ],
)
def test_bad_cookies_give_an_empty_session(cookie: str) -> None:
    app = FakeApp()
    configure(app, "secret")
    seen: list[Any] = []
    response = round_trip(app, f"session={cookie}", lambda request: seen.append(dict(request.session)))
    assert seen == [{}]
    assert set_cookie_of(response) == []


def test_tampered_tail_restarts_the_counter() -> None:
    app = FakeApp()
    configure(app, "secret")
    original = cookie_value(round_trip(app, None, counter))
    tampered = original[:-3] + ("aaa" if not original.endswith("aaa") else "bbb")
    response = round_trip(app, f"session={tampered}", counter)
    assert SessionManager("secret").loads(cookie_value(response)).to_dict() == {"count": 1}


def test_unserializable_session_is_an_error_at_save() -> None:
    app = FakeApp()
    configure(app, "secret")
    with pytest.raises(TypeError, match="Session data must be JSON-serializable to fit in a signed cookie"):
        round_trip(app, None, lambda request: request.session.update(when=object()))


def test_big_session_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    app = FakeApp()
    configure(app, "secret")
    round_trip(app, None, lambda request: request.session.update(blob="x" * 5000))
    assert "more than the ~4 KB most browsers keep" in caplog.text


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"secret_key": ""}, ValueError, "configure_sessions() requires a non-empty secret_key"),
        ({"secret_key": b"k"}, TypeError, "configure_sessions() secret_key must be a str, not bytes"),
        ({"same_site": "sometimes"}, ValueError, "same_site must be one of 'Strict', 'Lax', 'None' (got 'sometimes')"),
        ({"same_site": "none"}, ValueError, "same_site='None' requires secure=True"),
        ({"max_age": 0}, ValueError, "configure_sessions() max_age must be positive (or None), not 0"),
        ({"max_age": "1"}, TypeError, "configure_sessions() max_age must be an int or None, not '1'"),
        ({"secure": "yes"}, TypeError, "configure_sessions() secure must be a bool, not 'yes'"),
        ({"cookie_name": "a b"}, ValueError, "configure_sessions() cookie_name must be a cookie name (a token), not 'a b'"),
        ({"lifetime": 5}, TypeError, "configure_sessions() got an unexpected keyword argument 'lifetime'"),
    ],
)
def test_bad_options(kwargs: dict[str, Any], error: type[Exception], message: str) -> None:
    arguments = {"secret_key": "secret", **kwargs}
    with pytest.raises(error) as info:
        configure(FakeApp(), **arguments)
    assert str(info.value).startswith(message)


def test_configuring_twice_is_an_error() -> None:
    app = FakeApp()
    configure(app, "secret")
    with pytest.raises(RuntimeError, match="Sessions are already configured on this app"):
        configure(app, "secret")
    assert (len(app.before), len(app.after)) == (1, 1)


def test_same_site_none_with_secure() -> None:
    assert SessionManager("s", same_site="NONE", secure=True).same_site == "None"


def test_session_mapping_behaviour() -> None:
    session = Session({"a": 1})
    assert not session.is_modified()
    assert ("a" in session, len(session), list(session), session.get("b", 2)) == (True, 1, ["a"], 2)
    assert session.pop("a") == 1
    assert session.modified and repr(session) == "Session({})"
    empty = Session()
    empty.clear()
    assert not empty.is_modified()


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("session=abc", "abc"),
        ("a=1; session=abc; session=second", "abc"),
        ('session="quoted"', "quoted"),
        ("sessionx=1; xsession=2", None),
        ("flag; session=v", "v"),
    ],
)
def test_read_cookie(header: str | None, expected: str | None) -> None:
    assert read_cookie(header, "session") == expected
