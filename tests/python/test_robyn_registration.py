"""Registration, in-process: decorator keywords, route metadata (INTERFACES.md seam 1), hooks,
SubRouter prefixes, lifecycle handlers, ALLOW_CORS's headers, robyn.env, robyn.robyn."""

from __future__ import annotations

import os

import pytest

from robyn import ALLOW_CORS, Request, Robyn, SubRouter
from robyn.authentication import AuthenticationHandler, BearerGetter, Identity, TokenGetter
from robyn.events import Events
from robyn.robyn import FunctionInfo, Headers, QueryParams, Url
from robyn.robyn import Request as RobynRequest
from robyn.robyn import Response as RobynResponse


@pytest.fixture
def app(tmp_path):
    return Robyn(str(tmp_path / "app.py"))


def handler():
    return "ok"


@pytest.mark.parametrize("method", ["get", "post", "put", "delete", "patch", "head", "options",
                                    "connect", "trace"])
def test_an_unknown_decorator_keyword_is_a_type_error_naming_it(app, method):
    with pytest.raises(TypeError) as info:
        getattr(app, method)("/x", cache_seconds=5)
    assert str(info.value) == f"{method}() got an unexpected keyword argument 'cache_seconds'"


@pytest.mark.parametrize("method", ["post", "put", "delete", "patch", "head", "options", "connect", "trace"])
def test_const_is_a_get_keyword_only_as_in_robyn(app, method):
    with pytest.raises(TypeError, match=f"^{method}\\(\\) got an unexpected keyword argument 'const'$"):
        getattr(app, method)("/x", const=True)


def test_routes_keep_robyns_keywords(app):
    @app.get("/items/:id/", const=False, auth_required=True, openapi_name="Item",
             openapi_tags=["items"], status_code=201, responses={404: "missing"},
             deprecated=True, include_in_schema=False)
    def item(id: str):
        return id

    @app.post("items")
    def create():
        return "made"

    app.add_route("put", "/plain", handler)
    first, second, third = app._routes
    assert (first.method, first.path, first.handler, first.const) == ("GET", "/items/:id", item, False)
    assert first.openapi == {"name": "Item", "tags": ["items"], "include_in_schema": False,
                             "status_code": 201, "responses": {404: "missing"}, "deprecated": True,
                             "auth_required": True, "response_model": None}
    assert (second.path, second.openapi["tags"], second.openapi["name"]) == ("/items", ["post"], "")
    assert (third.method, third.openapi["tags"], third.openapi["auth_required"]) == ("PUT", [], False)


def test_bad_routes_are_refused_at_registration(app):
    app.get("/same")(handler)
    with pytest.raises(ValueError, match="^Route '/same/' duplicates '/same' for GET$"):
        app.get("/same/")(handler)
    with pytest.raises(ValueError, match="unknown HTTP method 'FETCH'"):
        app.add_route("FETCH", "/x", handler)
    with pytest.raises(ValueError, match="status_code of GET /s must be an HTTP status, not 'ok'"):
        app.get("/s", status_code="ok")(handler)


def test_hooks_take_at_most_the_parameters_robyn_passes(app):
    with pytest.raises(TypeError, match="before_request hook .* takes 2 parameters; it may take none or the request"):
        app.before_request()(lambda request, extra: request)
    with pytest.raises(TypeError, match="after_request hook .* takes 3 parameters"):
        app.after_request("/x")(lambda a, b, c: b)
    with pytest.raises(TypeError, match="before_request\\(\\) takes a path \\(str\\) or nothing"):
        app.before_request(42)


def test_subrouter_prefixes_accumulate_and_take_robyns_constructor_forms(app):
    outer = SubRouter(prefix="/outer", tags=["outer"])
    inner = SubRouter("/inner")
    legacy = SubRouter(__name__, prefix="/legacy")
    assert (inner.prefix, legacy.prefix) == ("/inner", "/legacy")
    inner.get("/leaf")(handler)
    inner.add_route("POST", "/", handler)
    outer.get("")(handler)
    outer.include_router(inner)
    app.include_router(outer)
    assert [(r.method, r.path, r.openapi["tags"]) for r in app._routes] == [
        ("GET", "/outer", ["outer", "get"]),
        ("GET", "/outer/inner/leaf", ["outer", "get"]),
        ("POST", "/outer/inner", ["outer"]),
    ]
    with pytest.raises(ValueError, match="included already"):
        app.include_router(outer)
    with pytest.raises(TypeError, match="include_router\\(\\) takes a SubRouter"):
        app.include_router(app)


def test_lifecycle_handlers_are_listed_as_robyn_lists_them(app):
    def on_start():
        pass

    async def on_stop():
        pass

    assert app.startup_handler(on_start) is on_start
    app.shutdown_handler(on_stop)
    start, stop = app.event_handlers[Events.STARTUP], app.event_handlers[Events.SHUTDOWN]
    assert isinstance(start, FunctionInfo)
    assert (start.handler, start.is_async, start.number_of_params) == (on_start, False, 0)
    assert (stop.handler, stop.is_async, stop.number_of_params) == (on_stop, True, 0)


def test_app_headers(app):
    app.set_request_header("server", "robyn")
    app.add_response_header("x-a", "1")
    app.add_response_header("x-a", "2")
    app.set_response_header("x-b", "3")
    assert app.request_headers.get_headers() == {"server": ["robyn"]}
    assert app.response_headers.get_headers() == {"x-a": ["1", "2"], "x-b": ["3"]}
    with pytest.raises(ValueError, match="invalid value for header 'x-c'"):
        app.set_response_header("x-c", "a\r\nb")
    with pytest.raises(ValueError, match="invalid header name 'bad name'"):
        app.add_request_header("bad name", "v")


@pytest.mark.parametrize(("origins", "allow_origin"), [(["*"], "*"), ("https://a.example", "https://a.example"),
                                                       (["https://a.example", "https://b.example"], "*")])
def test_allow_cors_sets_robyns_response_headers(app, origins, allow_origin):
    ALLOW_CORS(app, origins)
    assert app.response_headers.get_headers() == {
        "access-control-allow-origin": [allow_origin],
        "access-control-allow-methods": ["GET, POST, PUT, DELETE, PATCH, HEAD, OPTIONS"],
        "access-control-allow-headers": ["Content-Type, Authorization"],
        "access-control-allow-credentials": ["true"],
    }
    assert len(app._before) == 1 and app._before[0].path is None


def test_allow_cors_refuses_what_is_not_origins(app):
    with pytest.raises(TypeError, match="ALLOW_CORS origins must be a str or a list of str, not 3"):
        ALLOW_CORS(app, 3)


def test_robyn_env_is_loaded_without_overriding_the_environment(tmp_path, monkeypatch):
    (tmp_path / "robyn.env").write_text("# comment\nCORE_TEST_A=from file\n\n  CORE_TEST_B = b=c \n")
    monkeypatch.setenv("CORE_TEST_B", "from environment")
    monkeypatch.delenv("CORE_TEST_A", raising=False)
    monkeypatch.delenv("ROBYN_CLI", raising=False)
    Robyn(str(tmp_path / "app.py"))
    assert os.environ["CORE_TEST_A"] == "from file"
    assert os.environ["CORE_TEST_B"] == "from environment"
    monkeypatch.delenv("CORE_TEST_A")


def test_a_bad_robyn_env_line_names_itself(tmp_path):
    (tmp_path / "robyn.env").write_text("JUSTAKEY\n")
    with pytest.raises(ValueError, match="robyn.env:1: expected KEY=VALUE, not 'JUSTAKEY'"):
        Robyn(str(tmp_path / "app.py"))


def test_robyn_robyn_names_are_the_package_classes():
    import robyn

    assert (Headers, QueryParams, Url, RobynRequest, RobynResponse) == (
        robyn.Headers, robyn.QueryParams, robyn.Url, robyn.Request, robyn.Response)


def test_authentication_classes():
    assert BearerGetter().scheme == "BearerGetter"
    assert issubclass(BearerGetter, TokenGetter)
    with pytest.raises(TypeError, match="token_getter must be a TokenGetter"):
        type("H", (AuthenticationHandler,), {"authenticate": lambda self, r: None})(token_getter="x")

    class Handler(AuthenticationHandler):
        def authenticate(self, request: Request):
            return Identity(claims={})

    unauthorized = Handler(BearerGetter()).unauthorized_response
    assert (unauthorized.status_code, unauthorized.description) == (401, "Unauthorized")
    assert unauthorized.headers.get("www-authenticate") == "BearerGetter"


def test_configure_authentication_takes_a_handler(app):
    with pytest.raises(TypeError, match="configure_authentication\\(\\) takes an AuthenticationHandler"):
        app.configure_authentication(object())


def test_websocket_routes_keep_auth_required(app):
    endpoint = app.websocket("/ws", auth_required=True)(lambda websocket: None)
    assert endpoint.auth_required is True
    assert app.websocket("/ws2")(lambda websocket: None).auth_required is False


def test_a_subrouter_takes_nothing_more_once_included(app):
    router = SubRouter("/late")
    app.include_router(router)
    message = "SubRouter '/late' is included already: register its routes, hooks and websockets before include_router()"
    for register in (lambda: router.get("/x")(handler), lambda: router.before_request()(handler),
                     lambda: router.websocket("/ws")(handler), lambda: router.add_route("GET", "/y", handler)):
        with pytest.raises(RuntimeError) as info:
            register()
        assert str(info.value) == message


def test_subrouter_directories_reach_the_app_with_the_full_prefix(app, monkeypatch):
    import types

    served = []
    fake = types.ModuleType("robyn.static")
    fake.serve_directory = lambda target, *args: served.append((target, *args))
    monkeypatch.setitem(__import__("sys").modules, "robyn.static", fake)
    import robyn

    monkeypatch.setattr(robyn, "static", fake, raising=False)
    outer, inner = SubRouter("/outer"), SubRouter("/inner")
    inner.serve_directory("/files", "/srv/files", index_file="index.html")
    outer.include_router(inner)
    assert served == []  # nothing is served before an app includes it
    app.include_router(outer)
    assert served == [(app, "/outer/inner/files", "/srv/files", "index.html", False)]


def test_authenticate_for_websockets(app):
    import asyncio

    from robyn.authentication import AuthenticationNotConfiguredError

    request = Request(QueryParams(), Headers({"authorization": "Bearer good"}), {}, "", "GET",
                      Url("http", "test", "/ws"), {}, {}, None, "127.0.0.1")
    with pytest.raises(AuthenticationNotConfiguredError):
        asyncio.run(app._authenticate(request))

    class Handler(AuthenticationHandler):
        async def authenticate(self, request: Request):
            return Identity(claims={"ok": "yes"}) if self.token_getter.get_token(request) == "good" else None

    app.configure_authentication(Handler(BearerGetter()))
    assert asyncio.run(app._authenticate(request)) is None
    assert request.identity == Identity(claims={"ok": "yes"})
    request.headers.set("authorization", "Bearer bad")
    refused = asyncio.run(app._authenticate(request))
    assert (refused.status_code, refused.description) == (401, "Unauthorized")
    assert refused.headers.get("www-authenticate") == "BearerGetter"


def test_auth_required_without_any_handler_stops_the_start(app):
    from robyn.authentication import AuthenticationNotConfiguredError

    app.get("/admin", auth_required=True)(handler)
    with pytest.raises(AuthenticationNotConfiguredError) as info:
        app._freeze({})
    assert str(info.value) == ("GET /admin has auth_required=True but no authentication handler is "
                               "configured: call configure_authentication() on the app or its router")


@pytest.mark.parametrize(("hook", "route", "score"), [
    ("/a/b", "/a/b", (2, 2)),
    ("/a/:x", "/a/b", (2, 1)),
    ("/a/:x", "/a/:y", (2, 1)),
    ("/a/*rest", "/a/b/c", (2, 0)),
    ("/a/*rest", "/a", (2, 0)),
    ("/*all", "/", (0,)),
    ("/", "/", ()),
    ("/a/b", "/a/:x", None),      # only some requests of the route
    ("/a/:x", "/a/*rest", None),
    ("/a", "/a/b", None),
    ("/a/b/c", "/a/b", None),
])
def test_hook_pattern_coverage(hook, route, score):
    from robyn.router import coverage

    assert coverage(hook, route) == score


def test_responses_built_per_request_have_every_slot_of_a_response():
    from robyn.pipeline import make_response, to_response
    from robyn.responses import Response

    for response in (make_response(201, [("x-a", "1")], b"body"), to_response("text"), to_response({"a": 1})):
        assert all(hasattr(response, slot) for slot in Response.__slots__)
        response.set_cookie("c", "v")  # as an after hook may
    assert (to_response({"a": 1}).description, to_response("t").headers.get("content-type")) == (
        '{"a":1}', "text/plain")
