"""Every public name of Robyn 0.88 (its robyn.__all__, its compiled robyn.robyn module and
its submodules) either works here or raises FeatureNotProvidedError naming it
(docs/compatibility.md has the table)."""

from __future__ import annotations

import importlib
import inspect

import pytest

import robyn
from robyn.exceptions import FeatureNotProvidedError

# Robyn 0.88's robyn.__all__, in its order.
ROBYN_ALL = [
    "Robyn", "Request", "Response", "status_codes", "jsonify", "serve_file", "serve_html", "html",
    "StreamingResponse", "SSEResponse", "SSEMessage", "ALLOW_CORS", "SubRouter", "AuthenticationHandler",
    "Headers", "WebSocketConnector", "WebSocketAdapter", "WebSocketDisconnect", "JsonBody", "MCPApp",
    "TestClient", "RequestMethod", "RequestBody", "RequestURL", "Session", "SessionManager",
]
NOT_PROVIDED = {"MCPApp"}

# The classes and functions of Robyn 0.88's robyn.robyn (robyn/robyn.pyi).
ROBYN_ROBYN = [
    "get_version", "SocketHeld", "MiddlewareType", "HttpMethod", "FunctionInfo", "Url", "Identity",
    "QueryParams", "Cookie", "Cookies", "CookiesIter", "Headers", "Request", "Response", "Server",
    "WebSocketConnector",
]
ROBYN_ROBYN_NOT_PROVIDED = {"SocketHeld", "Server"}

# Robyn 0.88's submodules, and which of them this project does not provide.
SUBMODULES = [
    "authentication", "env_populator", "events", "exceptions", "jsonify", "openapi", "responses",
    "robyn", "router", "session", "status_codes", "templating", "testing", "types", "ws",
    "__main__", "_param_utils", "ai", "argument_parser", "cli", "dependency_injection", "logger",
    "mcp", "processpool", "pydantic_support", "reloader",
]
SUBMODULES_NOT_PROVIDED = {
    "_param_utils", "ai", "dependency_injection", "mcp", "processpool", "pydantic_support",
}


@pytest.mark.parametrize("name", [n for n in ROBYN_ALL if n not in NOT_PROVIDED])
def test_robyn_all_names_exist(name):
    assert getattr(robyn, name) is not None
    exec(f"from robyn import {name}", {})


def test_our_all_has_every_provided_name_of_robyns():
    assert set(ROBYN_ALL) - NOT_PROVIDED <= set(robyn.__all__)
    namespace: dict = {}
    exec("from robyn import *", namespace)  # nothing in __all__ raises
    assert {"TestClient", "Session", "WebSocketConnector"} <= set(namespace)


@pytest.mark.parametrize("name", sorted(NOT_PROVIDED))
def test_not_provided_names_say_so(name):
    with pytest.raises(FeatureNotProvidedError, match=rf"robyn.{name} is not provided by this Robyn"):
        getattr(robyn, name)
    with pytest.raises(ImportError, match="MCP"):
        exec(f"from robyn import {name}", {})
    assert name not in robyn.__all__


@pytest.mark.parametrize("name", [n for n in ROBYN_ROBYN if n not in ROBYN_ROBYN_NOT_PROVIDED])
def test_robyn_robyn_names_exist(name):
    module = importlib.import_module("robyn.robyn")
    assert getattr(module, name) is not None


@pytest.mark.parametrize("name", sorted(ROBYN_ROBYN_NOT_PROVIDED))
def test_robyn_robyn_rust_internals_say_so(name):
    module = importlib.import_module("robyn.robyn")
    with pytest.raises(FeatureNotProvidedError, match=rf"robyn.robyn.{name} is not provided .*Rust"):
        getattr(module, name)
    with pytest.raises(AttributeError, match="has no attribute 'Nothing'"):
        module.Nothing  # noqa: B018  (an unknown name is still an AttributeError)


@pytest.mark.parametrize("name", [m for m in SUBMODULES if m not in SUBMODULES_NOT_PROVIDED])
def test_submodules_import(name):
    assert importlib.import_module(f"robyn.{name}") is not None


@pytest.mark.parametrize("name", sorted(SUBMODULES_NOT_PROVIDED))
def test_missing_submodules_raise_the_documented_error(name):
    with pytest.raises(FeatureNotProvidedError, match="is not provided by this Robyn") as caught:
        importlib.import_module(f"robyn.{name}")
    assert isinstance(caught.value, ImportError) and isinstance(caught.value, NotImplementedError)
    # A failed import is not cached: it says so every time.
    with pytest.raises(FeatureNotProvidedError):
        importlib.import_module(f"robyn.{name}")


def test_aliases():
    from robyn.env import load_vars, parser
    from robyn.env_populator import load_vars as robyn_load_vars, parser as robyn_parser
    from robyn.jsonify import jsonify
    from robyn.robyn import CookiesIter, WebSocketConnector
    from robyn.session import Session as RobynSession
    from robyn.ws import WebSocket, WebSocketAdapter

    assert (robyn_load_vars, robyn_parser) == (load_vars, parser)
    assert robyn.jsonify is jsonify and inspect.isfunction(robyn.jsonify)
    assert jsonify({"a": [1, None]}) == '{"a":[1,null]}'
    assert WebSocketConnector is WebSocket is WebSocketAdapter is robyn.WebSocketConnector
    assert RobynSession is robyn.Session
    response = robyn.Response(200, {}, "x")
    response.set_cookie("b", "2")
    response.set_cookie("a", "1")
    names = iter(response.cookies)
    assert isinstance(names, CookiesIter)
    assert list(names) == ["b", "a"]


def test_session_classes_match_robyns():
    manager = robyn.SessionManager("secret", cookie_name="sid", max_age=60)
    session = robyn.Session({"user": "ada"})
    assert not session.is_modified()
    session["n"] = 1
    assert session.is_modified() and dict(session) == {"user": "ada", "n": 1}
    assert dict(manager.loads(manager.dumps(session))) == {"user": "ada", "n": 1}
    assert dict(manager.loads("tampered." + manager.dumps(session))) == {}
    with pytest.raises(ValueError, match="requires a non-empty secret_key"):
        robyn.SessionManager("")


def test_app_mcp_says_so():
    app = robyn.Robyn(__file__)
    with pytest.raises(FeatureNotProvidedError, match=r"app.mcp is not provided by this Robyn \(robyn-gateway\): .*MCP"):
        app.mcp  # noqa: B018
    with pytest.raises(FeatureNotProvidedError, match=r"app.mcp"):
        robyn.SubRouter("/x").mcp  # noqa: B018


def test_is_port_in_use():
    import socket

    app = robyn.Robyn(__file__)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert app.is_port_in_use(port) is True
    assert app.is_port_in_use(port) is False
    for bad in (0, 70000, "80", True):
        with pytest.raises(ValueError, match=f"Invalid port number: {bad!r}"):
            app.is_port_in_use(bad)


def test_subrouter_refuses_app_wide_headers_by_name():
    router = robyn.SubRouter("/x")
    for method, args in (("add_request_header", ("a", "b")), ("set_request_header", ("a", "b")),
                         ("add_response_header", ("a", "b")), ("set_response_header", ("a", "b")),
                         ("exclude_response_headers_for", (["/x"],))):
        with pytest.raises(NotImplementedError, match=rf"SubRouter.{method}\(\) is not supported: .*app.{method}"):
            getattr(router, method)(*args)


def test_subrouter_lifecycle_handlers_become_the_apps():
    from robyn.events import Events

    app = robyn.Robyn(__file__)
    router = robyn.SubRouter("/x")
    outer = robyn.SubRouter("/outer")
    calls = []
    router.startup_handler(lambda: calls.append("start"))

    async def stop():
        calls.append("stop")

    router.shutdown_handler(stop)
    assert set(router.event_handlers) == {Events.STARTUP, Events.SHUTDOWN}
    outer.include_router(router)
    app.include_router(outer)
    assert app.event_handlers[Events.SHUTDOWN].handler is stop
    assert app.event_handlers[Events.SHUTDOWN].is_async is True
    import asyncio

    asyncio.run(app._run_hooks(app._startup_handlers + app._shutdown_handlers))
    assert calls == ["start", "stop"]
    with pytest.raises(RuntimeError, match="is included already"):
        router.startup_handler(lambda: None)
    with pytest.raises(TypeError, match="a startup handler must be callable, not 3"):
        robyn.SubRouter("/y").startup_handler(3)


def test_subrouter_sessions_are_the_apps():
    from robyn.testing import TestClient

    app = robyn.Robyn(__file__)
    router = robyn.SubRouter("/s")
    manager = router.configure_sessions("secret", cookie_name="sid")
    assert isinstance(manager, robyn.SessionManager) and router.session_manager is manager

    @router.get("/count")
    def count(request):
        request.session["n"] = request.session.get("n", 0) + 1
        return str(request.session["n"])

    app.include_router(router)
    with TestClient(app) as client:
        first = client.get("/s/count")
        assert first.text == "1"
        cookie = first.headers["set-cookie"].split(";")[0]
        assert cookie.startswith("sid=")
        assert client.get("/s/count", headers={"Cookie": cookie}).text == "2"


def test_add_web_socket_validates_its_handlers():
    app = robyn.Robyn(__file__)
    with pytest.raises(ValueError, match="handler 'open' is not one of 'connect', 'message' and 'close'"):
        app.add_web_socket("/ws", {"open": lambda ws: None})
    with pytest.raises(TypeError, match="handler 'message' must be callable, not 5"):
        app.add_web_socket("/ws", {"message": 5})
    with pytest.raises(TypeError, match="takes a dict of handlers"):
        app.add_web_socket("/ws", [lambda ws: None])


def test_add_web_socket_serves_its_handlers(start_app):
    import websocket

    server = start_app("robyn_names_ws_app")
    ws = websocket.create_connection(f"ws://127.0.0.1:{server.port}/ws", timeout=5)
    try:
        assert ws.recv() == "hello"
        ws.send("quiet")  # None is not sent back
        ws.send("hi")
        assert ws.recv() == "echo:hi"
    finally:
        ws.close()
    assert "closed" in server.wait_for_log("closed")
