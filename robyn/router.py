"""What Robyn and SubRouter share: route decorators, middlewares (hooks), dependencies,
authentication and exception handlers; and SubRouter, a group of routes under a prefix.

Nothing here runs per request: registration records routes and hooks, and the app turns
them into one request pipeline per route when it starts (robyn/pipeline.py).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .injection import compile_handler, handler_is_async

if TYPE_CHECKING:
    from .app import Robyn
    from .authentication import AuthenticationHandler

__all__ = ["Hook", "Route", "RouterBase", "SubRouter", "coverage", "normalize_endpoint", "path_hooks"]

METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "CONNECT", "TRACE")


def normalize_endpoint(endpoint: str | None, treat_empty_as_root: bool = False) -> str | None:
    """Robyn's rules: a leading slash, no trailing one (but "/" stays "/"); an empty string
    is the root for a prefix and None (invalid) for a route."""
    if endpoint is None or (not endpoint and not treat_empty_as_root):
        return None
    # Unlike Robyn, surrounding whitespace is kept: the C router refuses it by name.
    endpoint = endpoint.rstrip("/")
    if not endpoint:
        return "/"
    return endpoint if endpoint.startswith("/") else "/" + endpoint


def join_prefix(prefix: str, endpoint: str) -> str:
    """prefix + endpoint, both normalized, without a double or trailing slash."""
    head = normalize_endpoint(prefix, treat_empty_as_root=True)
    if head == "/":
        head = ""
    if endpoint in ("", "/"):
        return head or "/"
    tail = normalize_endpoint(endpoint)
    if tail is None:
        raise ValueError("Endpoint cannot be blank, do specify '/' for root endpoint")
    return f"{head}{tail}"


def route_shape(path: str) -> tuple[str, ...]:
    """A pattern with its parameter names dropped: "/u/:id" and "/u/:name" are one route."""
    return tuple(":" if seg[:1] == ":" else "*" if seg[:1] == "*" else seg
                 for seg in path.split("/") if seg)


def _segments(path: str) -> list[str]:
    return [seg for seg in path.split("/") if seg]


def coverage(hook_path: str, route_path: str) -> tuple[int, ...] | None:
    """How specifically the pattern of a path hook covers every request of a route: None when
    it does not (or only some of them), else a score per segment (static 2, parameter 1,
    catch-all 0) where a higher tuple is the more specific pattern, as Robyn's middleware
    router prefers static over parameters over catch-alls."""
    hook, route = _segments(hook_path), _segments(route_path)
    score: list[int] = []
    for i, seg in enumerate(hook):
        if seg[:1] == "*":
            score.append(0)
            return tuple(score)
        if i >= len(route):
            return None
        target = route[i]
        if seg[:1] == ":":
            if target[:1] == "*":
                return None
            score.append(1)
        elif seg != target:
            return None
        else:
            score.append(2)
    return tuple(score) if len(hook) == len(route) else None


def path_hooks(hooks: list[Hook], route: Route) -> list[Hook]:
    """The path hooks of one kind that run for route, in registration order: those of the most
    specific hook pattern covering it (Robyn's middleware router picks one pattern), and the
    route's own authentication check."""
    best: tuple[tuple[int, ...], tuple[str, ...]] | None = None
    for hook in hooks:
        if hook.route is None and hook.path is not None:
            score = coverage(hook.path, route.path)
            if score is not None and (best is None or score > best[0]):
                best = (score, route_shape(hook.path))
    return [hook for hook in hooks
            if (hook.route is not None and hook.route.origin is route.origin)
            or (hook.route is None and best is not None and hook.shape == best[1])]


def _reject_unknown(method: str, unknown: dict[str, Any]) -> None:
    if unknown:
        name = next(iter(unknown))
        raise TypeError(f"{method}() got an unexpected keyword argument '{name}'")


class Hook:
    """A before_request or after_request hook, global (path None) or for one path.

    A before hook takes no parameter or the request; an after hook takes none, the
    response, or the request and the response. `route` is set for the authentication
    check of one route, which runs among the path's before hooks in registration order.
    """

    __slots__ = ("kind", "func", "is_async", "nparams", "path", "shape", "route", "name")
    # None only for the authentication check of a route (Hook.authentication).
    func: Callable[..., Any] | None

    def __init__(self, kind: str, func: Callable[..., Any], path: str | None,
                 route: Route | None = None) -> None:
        if not callable(func):
            raise TypeError(f"a {kind}_request hook must be callable, not {func!r}")
        try:
            params = inspect.signature(func).parameters.values()
        except (TypeError, ValueError):
            raise TypeError(f"cannot read the parameters of {kind}_request hook {func!r}") from None
        named = [p for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        most = 1 if kind == "before" else 2
        if len(named) > most:
            what = "the request" if kind == "before" else "the response, or the request and the response"
            raise TypeError(f"{kind}_request hook {getattr(func, '__qualname__', func)!r} takes "
                            f"{len(named)} parameters; it may take none or {what}")
        self.kind = kind
        self.func = func
        self.is_async = handler_is_async(func)
        self.nparams = len(named)
        self.path = path
        self.shape = None if path is None else route_shape(path)
        self.route = route
        self.name = getattr(func, "__qualname__", repr(func))

    @classmethod
    def authentication(cls, route: Route) -> Hook:
        """The check of an `auth_required=True` route, run where it was registered among the
        before hooks of its path."""
        hook = object.__new__(cls)
        hook.kind = "before"
        hook.func = None
        hook.is_async = False  # decided when the app starts, from the handler's authenticate
        hook.nparams = 1
        hook.path = route.path
        hook.shape = route_shape(route.path)
        hook.route = route
        hook.name = f"authentication of {route.method} {route.path}"
        return hook

    def moved(self, prefix: str) -> Hook:
        """This hook for the same path under a prefix (a router included in another)."""
        copy = object.__new__(Hook)
        for slot in Hook.__slots__:
            setattr(copy, slot, getattr(self, slot))
        if self.path is not None and prefix:
            copy.path = join_prefix(prefix, self.path)
            copy.shape = route_shape(copy.path)
        return copy


class Route:
    """One registered HTTP route: what C calls, and what it was made from (see
    INTERFACES.md, seam 1: `openapi` holds the documentation keywords)."""

    __slots__ = ("method", "path", "handler", "const", "openapi", "auth_required", "owner",
                 "exception_handler", "response_model", "index", "is_async", "call", "handle",
                 "origin", "written")

    def __init__(self, method: str, path: str, handler: Callable[..., Any], const: bool,
                 owner: RouterBase, *, auth_required: bool = False, openapi_name: str = "",
                 openapi_tags: list[str] | None = None, status_code: int | None = None,
                 response_model: Any = None, responses: dict[Any, Any] | None = None,
                 deprecated: bool = False, include_in_schema: bool = True) -> None:
        if not callable(handler):
            raise TypeError(f"the handler of {method} {path} must be callable, not {handler!r}")
        if status_code is not None and (isinstance(status_code, bool) or not isinstance(status_code, int)
                                        or not 100 <= status_code <= 999):
            raise ValueError(f"status_code of {method} {path} must be an HTTP status, not {status_code!r}")
        if response_model is not None and not callable(getattr(response_model, "model_validate", None)):
            raise TypeError(f"response_model of {method} {path} must be a Pydantic model class, "
                            f"not {response_model!r}")
        self.method = method
        self.path = path
        self.handler = handler
        self.const = bool(const)
        self.auth_required = bool(auth_required)
        self.openapi: dict[str, Any] = {
            "name": openapi_name or "",
            "tags": list(openapi_tags) if openapi_tags else [],
            "include_in_schema": bool(include_in_schema),
            "status_code": status_code,
            "responses": responses,
            "deprecated": bool(deprecated),
            "auth_required": bool(auth_required),
            "response_model": response_model,
        }
        self.response_model = response_model
        self.owner = owner
        # As in Robyn, the exception handler in effect when the route is added is its own.
        self.exception_handler = owner.exception_handler
        self.index = -1
        self.is_async, self.call = compile_handler(handler, self.param_names(), owner._dependency_view())
        self.handle: Callable[[Any], None] | None = None
        self.origin = self  # the route as registered; copies under a prefix keep it
        self.written = path  # as the app's own decorator was given it, for error messages

    def param_names(self) -> list[str]:
        return [seg[1:] for seg in self.path.split("/") if seg[:1] in (":", "*")]

    def moved(self, prefix: str) -> Route:
        """This route under a prefix (its router included in another with a prefix)."""
        copy = object.__new__(Route)
        for slot in Route.__slots__:
            setattr(copy, slot, getattr(self, slot))
        copy.path = join_prefix(prefix, self.path) if prefix else self.path
        copy.written = copy.path
        copy.openapi = dict(self.openapi)
        return copy

    def __repr__(self) -> str:
        return f"<Route {self.method} {self.path}>"


class _PendingWebSocket:
    """What SubRouter.websocket returns until the router is included in an app: it keeps
    on_connect / on_close and hands them to the real endpoint once there is one."""

    def __init__(self, handler: Callable[..., Any], router: SubRouter) -> None:
        self.handler = handler
        self.router = router  # where it was declared: whose dependencies it gets
        self.endpoint: Any = None
        self._connect: Callable[..., Any] | None = None
        self._close: Callable[..., Any] | None = None
        self.__name__ = getattr(handler, "__name__", "websocket")
        self.__doc__ = getattr(handler, "__doc__", None)

    def on_connect(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        self._connect = fn
        if self.endpoint is not None:
            self.endpoint.on_connect(fn)
        return fn

    def on_close(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        self._close = fn
        if self.endpoint is not None:
            self.endpoint.on_close(fn)
        return fn

    def attach(self, endpoint: Any) -> None:
        self.endpoint = endpoint
        if self._connect is not None:
            endpoint.on_connect(self._connect)
        if self._close is not None:
            endpoint.on_close(self._close)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.handler(*args, **kwargs)


class RouterBase:
    """Route registration shared by Robyn and SubRouter."""

    _prefix = ""  # SubRouter's own, joined to its routes as they are added

    if TYPE_CHECKING:  # each subclass (Robyn, SubRouter) has its own
        def startup_handler(self, handler: Callable[[], Any]) -> Callable[[], Any]: ...
        def shutdown_handler(self, handler: Callable[[], Any]) -> Callable[[], Any]: ...
        def websocket(self, *args: Any, **kwargs: Any) -> Callable[[Callable[..., Any]], Any]: ...

    def __init__(self) -> None:
        self._routes: list[Route] = []
        self._before: list[Hook] = []
        self._after: list[Hook] = []
        self._dependencies: dict[str, dict[str, Any]] = {"global": {}, "router": {}}
        self.authentication_handler: AuthenticationHandler | None = None
        self.exception_handler: Callable[[Exception], Any] | None = None
        self.session_manager: Any = None  # set by configure_sessions()
        self.included_routers: list[SubRouter] = []
        self._parent: RouterBase | None = None
        # SubRouter websockets: (full path, options, pending endpoint), registered on include.
        self._websockets: list[tuple[str, dict[str, Any], _PendingWebSocket]] = []
        # SubRouter directories: (full route, directory, index file, listing), served on include.
        self._directories: list[tuple[str, str, str | None, bool]] = []

    # ---- dependencies ----------------------------------------------------------------

    def _dependency_view(self) -> dict[str, dict[str, Any]]:
        return self._dependencies

    def inject(self, **kwargs: Any) -> None:
        """Makes values available to this router's handlers as `router_dependencies`."""
        self._dependencies["router"].update(kwargs)

    def inject_global(self, **kwargs: Any) -> None:
        """Makes values available to every handler as `global_dependencies`."""
        self._dependencies["global"].update(kwargs)

    # ---- registration ------------------------------------------------------------------

    def add_route(self, route_type: str, endpoint: str, handler: Callable[..., Any],
                  is_const: bool = False, auth_required: bool = False, openapi_name: str = "",
                  openapi_tags: list[str] | None = None, status_code: int | None = None,
                  response_model: Any = None, responses: dict[Any, Any] | None = None,
                  deprecated: bool = False, include_in_schema: bool = True) -> Route:
        """Connects a method and path to a handler, as the decorators do."""
        method = route_type.upper() if isinstance(route_type, str) else str(getattr(route_type, "name", route_type))
        if method not in METHODS:
            raise ValueError(f"unknown HTTP method {route_type!r} for route {endpoint!r}")
        if not isinstance(endpoint, str):
            raise TypeError(f"the endpoint of a route must be a str, not {endpoint!r}")
        path = join_prefix(self._prefix, endpoint) if self._prefix or endpoint else "/"
        route = Route(method, path, handler, is_const, self, auth_required=auth_required,
                      openapi_name=openapi_name, openapi_tags=openapi_tags, status_code=status_code,
                      response_model=response_model, responses=responses, deprecated=deprecated,
                      include_in_schema=include_in_schema)
        if not self._prefix:
            route.written = endpoint
        self._accept_route(route)
        if route.auth_required:
            self._before.append(Hook.authentication(route))
        return route

    def _accept_route(self, route: Route) -> None:
        self._routes.append(route)

    def _decorator(self, method: str, endpoint: str, options: dict[str, Any]
                   ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def register(handler: Callable[..., Any]) -> Callable[..., Any]:
            self.add_route(method, endpoint, handler, **options)
            return handler

        return register

    def get(self, endpoint: str, const: bool = False, auth_required: bool = False,
            openapi_name: str = "", openapi_tags: list[str] | None = None,
            status_code: int | None = None, response_model: Any = None,
            responses: dict[Any, Any] | None = None, deprecated: bool = False,
            include_in_schema: bool = True, **unknown: Any) -> Callable[..., Any]:
        _reject_unknown("get", unknown)
        return self._decorator("GET", endpoint, dict(
            is_const=const, auth_required=auth_required, openapi_name=openapi_name,
            openapi_tags=["get"] if openapi_tags is None else openapi_tags,
            status_code=status_code, response_model=response_model, responses=responses,
            deprecated=deprecated, include_in_schema=include_in_schema))

    def _method(self, method: str, endpoint: str, auth_required: bool, openapi_name: str,
                openapi_tags: list[str] | None, status_code: int | None, response_model: Any,
                responses: dict[Any, Any] | None, deprecated: bool, include_in_schema: bool,
                unknown: dict[str, Any]) -> Callable[..., Any]:
        _reject_unknown(method.lower(), unknown)
        return self._decorator(method, endpoint, dict(
            auth_required=auth_required, openapi_name=openapi_name,
            openapi_tags=[method.lower()] if openapi_tags is None else openapi_tags,
            status_code=status_code, response_model=response_model, responses=responses,
            deprecated=deprecated, include_in_schema=include_in_schema))

    def post(self, endpoint: str, auth_required: bool = False, openapi_name: str = "",
             openapi_tags: list[str] | None = None, status_code: int | None = None,
             response_model: Any = None, responses: dict[Any, Any] | None = None,
             deprecated: bool = False, include_in_schema: bool = True,
             **unknown: Any) -> Callable[..., Any]:
        return self._method("POST", endpoint, auth_required, openapi_name, openapi_tags, status_code,
                            response_model, responses, deprecated, include_in_schema, unknown)

    def put(self, endpoint: str, auth_required: bool = False, openapi_name: str = "",
            openapi_tags: list[str] | None = None, status_code: int | None = None,
            response_model: Any = None, responses: dict[Any, Any] | None = None,
            deprecated: bool = False, include_in_schema: bool = True,
            **unknown: Any) -> Callable[..., Any]:
        return self._method("PUT", endpoint, auth_required, openapi_name, openapi_tags, status_code,
                            response_model, responses, deprecated, include_in_schema, unknown)

    def delete(self, endpoint: str, auth_required: bool = False, openapi_name: str = "",
               openapi_tags: list[str] | None = None, status_code: int | None = None,
               response_model: Any = None, responses: dict[Any, Any] | None = None,
               deprecated: bool = False, include_in_schema: bool = True,
               **unknown: Any) -> Callable[..., Any]:
        return self._method("DELETE", endpoint, auth_required, openapi_name, openapi_tags, status_code,
                            response_model, responses, deprecated, include_in_schema, unknown)

    def patch(self, endpoint: str, auth_required: bool = False, openapi_name: str = "",
              openapi_tags: list[str] | None = None, status_code: int | None = None,
              response_model: Any = None, responses: dict[Any, Any] | None = None,
              deprecated: bool = False, include_in_schema: bool = True,
              **unknown: Any) -> Callable[..., Any]:
        return self._method("PATCH", endpoint, auth_required, openapi_name, openapi_tags, status_code,
                            response_model, responses, deprecated, include_in_schema, unknown)

    def head(self, endpoint: str, auth_required: bool = False, openapi_name: str = "",
             openapi_tags: list[str] | None = None, status_code: int | None = None,
             response_model: Any = None, responses: dict[Any, Any] | None = None,
             deprecated: bool = False, include_in_schema: bool = True,
             **unknown: Any) -> Callable[..., Any]:
        return self._method("HEAD", endpoint, auth_required, openapi_name, openapi_tags, status_code,
                            response_model, responses, deprecated, include_in_schema, unknown)

    def options(self, endpoint: str, auth_required: bool = False, openapi_name: str = "",
                openapi_tags: list[str] | None = None, status_code: int | None = None,
                response_model: Any = None, responses: dict[Any, Any] | None = None,
                deprecated: bool = False, include_in_schema: bool = True,
                **unknown: Any) -> Callable[..., Any]:
        return self._method("OPTIONS", endpoint, auth_required, openapi_name, openapi_tags, status_code,
                            response_model, responses, deprecated, include_in_schema, unknown)

    def connect(self, endpoint: str, auth_required: bool = False, openapi_name: str = "",
                openapi_tags: list[str] | None = None, status_code: int | None = None,
                response_model: Any = None, responses: dict[Any, Any] | None = None,
                deprecated: bool = False, include_in_schema: bool = True,
                **unknown: Any) -> Callable[..., Any]:
        return self._method("CONNECT", endpoint, auth_required, openapi_name, openapi_tags, status_code,
                            response_model, responses, deprecated, include_in_schema, unknown)

    def trace(self, endpoint: str, auth_required: bool = False, openapi_name: str = "",
              openapi_tags: list[str] | None = None, status_code: int | None = None,
              response_model: Any = None, responses: dict[Any, Any] | None = None,
              deprecated: bool = False, include_in_schema: bool = True,
              **unknown: Any) -> Callable[..., Any]:
        return self._method("TRACE", endpoint, auth_required, openapi_name, openapi_tags, status_code,
                            response_model, responses, deprecated, include_in_schema, unknown)

    # ---- middlewares -------------------------------------------------------------------

    def _hook(self, kind: str, endpoint: str | None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        if endpoint is None:
            path = None
        else:
            if not isinstance(endpoint, str):
                raise TypeError(f"{kind}_request() takes a path (str) or nothing, not {endpoint!r}")
            path = join_prefix(self._prefix, endpoint)
        hooks = self._before if kind == "before" else self._after

        def register(func: Callable[..., Any]) -> Callable[..., Any]:
            hooks.append(Hook(kind, func, path))
            return func

        return register

    def before_request(self, endpoint: str | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Registers a hook run before the handler: for every request (no endpoint) or for
        the routes of one path. It may return the request (or a new one) to go on, or an
        answer (Response, dict, tuple, str...) sent instead of the handler's."""
        return self._hook("before", endpoint)

    def after_request(self, endpoint: str | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Registers a hook run on every response (no endpoint) or on those of one path;
        it returns the response to send (the same one, changed, or another)."""
        return self._hook("after", endpoint)

    def exception(self, exception_handler: Callable[[Exception], Any]) -> Callable[[Exception], Any]:
        """Sets the handler that answers exceptions raised by the routes added after this
        call (Robyn's rule); its result is sent like a handler's."""
        if not callable(exception_handler):
            raise TypeError(f"an exception handler must be callable, not {exception_handler!r}")
        self.exception_handler = exception_handler
        return exception_handler

    # ---- authentication --------------------------------------------------------------------

    def configure_authentication(self, authentication_handler: AuthenticationHandler) -> None:
        """Sets the handler that checks `auth_required=True` routes of this router and of the
        routers it includes that have none of their own."""
        from .authentication import AuthenticationHandler

        if not isinstance(authentication_handler, AuthenticationHandler):
            raise TypeError("configure_authentication() takes an AuthenticationHandler, "
                            f"not {authentication_handler!r}")
        self.authentication_handler = authentication_handler

    def _effective_authentication(self) -> AuthenticationHandler | None:
        router: RouterBase | None = self
        while router is not None:
            if router.authentication_handler is not None:
                return router.authentication_handler
            router = router._parent
        return None

    # ---- sub-routers ---------------------------------------------------------------------

    def include_router(self, router: SubRouter) -> None:
        """Adds the routes, path hooks and websockets of `router` (with this router's prefix
        in front, for a SubRouter); its global hooks become this router's global hooks, its
        global dependencies are merged (those already here win), and its routes without an
        authentication handler of their own use this router's."""
        if not isinstance(router, SubRouter):
            raise TypeError(f"include_router() takes a SubRouter, not {router!r}")
        if router is self or router._parent is not None:
            raise ValueError(f"SubRouter {router._prefix!r} is included already")
        router._parent = self
        self.included_routers.append(router)
        prefix = self._prefix
        for route in router._routes:
            self._accept_route(route.moved(prefix))
        for hook in router._before:
            self._before.append(hook.moved(prefix))
        for hook in router._after:
            self._after.append(hook.moved(prefix))
        mine = self._dependencies["global"]
        for name, value in router._dependencies["global"].items():
            mine.setdefault(name, value)
        for path, options, pending in router._websockets:
            self._accept_websocket(join_prefix(prefix, path) if prefix else path, options, pending)
        for handler in router._startup_handlers:
            self.startup_handler(handler)
        for handler in router._shutdown_handlers:
            self.shutdown_handler(handler)
        for mount, directory_path, index_file, show_files_listing in router._directories:
            # A SubRouter's serve_directory puts its own prefix in front; the app's takes it as is.
            self.serve_directory(mount, directory_path, index_file, show_files_listing)

    def _accept_websocket(self, path: str, options: dict[str, Any], pending: _PendingWebSocket) -> None:
        self._websockets.append((path, options, pending))

    # ---- the rest of Robyn's BaseRobyn ------------------------------------------------------

    def is_port_in_use(self, port: int) -> bool:
        """Whether something accepts connections on `port` of this machine (127.0.0.1)."""
        import socket

        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise ValueError(f"Invalid port number: {port!r}")
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.settimeout(1.0)
            return probe.connect_ex(("127.0.0.1", port)) == 0

    def add_web_socket(self, endpoint: str, handlers: Any) -> None:
        """Robyn's registration of a WebSocket route by its event handlers: `handlers` maps
        "connect", "message" and "close" to functions (or Robyn FunctionInfo objects).
        connect and close are `on_connect` / `on_close` (see docs/websocket.md); message
        is called as message(websocket, msg) for each message, and what it returns (not
        None) is sent back. Any other key is a ValueError naming it."""
        from collections.abc import Mapping

        if not isinstance(handlers, Mapping):
            raise TypeError(f"add_web_socket() takes a dict of handlers, not {handlers!r}")
        unknown = sorted(set(handlers) - {"connect", "message", "close"})
        if unknown:
            raise ValueError(f"add_web_socket() handler {unknown[0]!r} is not one of 'connect', "
                             "'message' and 'close'")
        functions = {}
        for key, value in handlers.items():
            func = getattr(value, "handler", value)  # a FunctionInfo holds it as .handler
            if not callable(func):
                raise TypeError(f"add_web_socket() handler {key!r} must be callable, not {value!r}")
            functions[key] = func
        message = functions.get("message")

        async def run_handlers(websocket: Any) -> None:
            async for msg in websocket:
                if message is None:
                    continue
                answer = message(websocket, msg)
                if inspect.isawaitable(answer):
                    answer = await answer
                if answer is not None:
                    websocket.send(answer)

        endpoint_object = self.websocket(endpoint)(run_handlers)
        if "connect" in functions:
            endpoint_object.on_connect(functions["connect"])
        if "close" in functions:
            endpoint_object.on_close(functions["close"])

    def configure_sessions(self, secret_key: str, cookie_name: str = "session", **options: Any) -> Any:
        """Signed-cookie sessions in `request.session` (see robyn/sessions.py). On a
        SubRouter, as in Robyn, its hooks become the app's when it is included: sessions are
        then app-wide."""
        from . import sessions

        return sessions.configure(self, secret_key, cookie_name, **options)

    @property
    def mcp(self) -> Any:
        """Robyn 0.88's MCP interface, which this project does not provide: always raises
        FeatureNotProvidedError."""
        from .exceptions import FeatureNotProvidedError

        raise FeatureNotProvidedError("app.mcp", "Robyn's MCP (Model Context Protocol) server is not "
                                      "part of this project")

    # ---- seams with other modules ------------------------------------------------------

    def serve_directory(self, route: str, directory_path: str, index_file: str | None = None,
                        show_files_listing: bool = False) -> None:
        """Serves the files under directory_path at route (see robyn/static.py); on a
        SubRouter, at its prefix + route once it is included."""
        from . import static

        static.serve_directory(self, route, directory_path, index_file, show_files_listing)


class SubRouter(RouterBase):
    """A group of routes under a prefix: `SubRouter(prefix="/users")`, or positionally
    `SubRouter("/users")`; the legacy `SubRouter(__name__, prefix="/users")` still works.
    Include it with `app.include_router(router)`."""

    def __init__(self, *args: Any, prefix: str = "", tags: list[str] | None = None,
                 config: Any = None, openapi: Any = None, file_object: str | None = None) -> None:
        super().__init__()
        if len(args) > 2:
            raise TypeError(f"SubRouter() takes at most 2 positional arguments ({len(args)} given)")
        if args:
            if prefix or len(args) == 2:
                # The legacy forms: the module name or __file__ comes first and is not needed.
                prefix = prefix or args[1]
            elif not _looks_like_module(args[0]):
                prefix = args[0]
        if not isinstance(prefix, str):
            raise TypeError(f"SubRouter prefix must be a str, not {prefix!r}")
        if tags is not None and (not isinstance(tags, list) or not all(isinstance(t, str) for t in tags)):
            raise TypeError(f"SubRouter tags must be a list of str, not {tags!r}")
        self.prefix = prefix
        self._prefix = prefix
        self.tags: list[str] = list(tags) if tags else []
        self.config = config
        self.openapi = openapi
        self.file_object = file_object
        self._startup_handlers: list[Callable[[], Any]] = []
        self._shutdown_handlers: list[Callable[[], Any]] = []
        self.event_handlers: dict[Any, Any] = {}

    # ---- lifecycle handlers: the app's, once included ----------------------------------

    def _event(self, handlers: list[Callable[[], Any]], event: Any, handler: Callable[[], Any]
               ) -> Callable[[], Any]:
        from .robyn import FunctionInfo

        if not callable(handler):
            raise TypeError(f"a {event.value} handler must be callable, not {handler!r}")
        self._check_open()
        handlers.append(handler)
        self.event_handlers[event] = FunctionInfo(handler, handler_is_async(handler), 0)
        return handler

    def startup_handler(self, handler: Callable[[], Any]) -> Callable[[], Any]:
        """Runs handler before the server serves, once this router is included in the app
        (Robyn 0.88 kept a SubRouter's and never ran it)."""
        from .events import Events

        return self._event(self._startup_handlers, Events.STARTUP, handler)

    def shutdown_handler(self, handler: Callable[[], Any]) -> Callable[[], Any]:
        """Runs handler after the server has stopped serving, once this router is included."""
        from .events import Events

        return self._event(self._shutdown_handlers, Events.SHUTDOWN, handler)

    # ---- app-wide settings, refused on a router ------------------------------------------
    # Robyn 0.88's SubRouter has these (from its BaseRobyn) and drops what they set when
    # it is included; here they say so instead of doing nothing.

    def _app_only(self, method: str) -> Any:
        raise NotImplementedError(
            f"SubRouter.{method}() is not supported: the app's headers apply to every route, "
            f"so call app.{method}(...) on the Robyn app (Robyn 0.88 ignored a SubRouter's)")

    def add_request_header(self, key: str, value: str) -> None:
        self._app_only("add_request_header")

    def set_request_header(self, key: str, value: str) -> None:
        self._app_only("set_request_header")

    def add_response_header(self, key: str, value: str) -> None:
        self._app_only("add_response_header")

    def set_response_header(self, key: str, value: str) -> None:
        self._app_only("set_response_header")

    def exclude_response_headers_for(self, excluded_response_headers_paths: list[str] | None) -> None:
        self._app_only("exclude_response_headers_for")

    def _check_open(self) -> None:
        if self._parent is not None:
            raise RuntimeError(f"SubRouter {self.prefix!r} is included already: register its routes, "
                               "hooks and websockets before include_router()")

    def _hook(self, kind: str, endpoint: str | None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        self._check_open()
        return super()._hook(kind, endpoint)

    def _accept_route(self, route: Route) -> None:
        self._check_open()
        if self.tags:
            route.openapi["tags"] = list(self.tags) + [t for t in route.openapi["tags"] if t not in self.tags]
        self._routes.append(route)

    def serve_directory(self, route: str, directory_path: str, index_file: str | None = None,
                        show_files_listing: bool = False) -> None:
        self._check_open()
        self._directories.append((join_prefix(self._prefix, route), directory_path, index_file,
                                  show_files_listing))

    def websocket(self, endpoint: str, origins: list[str] | None = None, backpressure: str = "close",
                  compression: bool = False, auth_required: bool = False, *,
                  compression_threshold: int | None = None
                  ) -> Callable[[Callable[..., Any]], _PendingWebSocket]:
        """A WebSocket endpoint at prefix + endpoint, registered with the app when this router
        is included (the options are app.websocket()'s)."""
        from .ws import check_compression_threshold

        if backpressure not in ("close", "drop"):
            raise ValueError(f"backpressure must be 'close' or 'drop', not {backpressure!r}")
        check_compression_threshold(compression, compression_threshold)
        path = join_prefix(self._prefix, endpoint)
        options = {"origins": origins, "backpressure": backpressure, "compression": compression,
                   "auth_required": auth_required, "compression_threshold": compression_threshold}

        def register(handler: Callable[..., Any]) -> _PendingWebSocket:
            self._check_open()
            pending = _PendingWebSocket(handler, self)
            self._websockets.append((path, options, pending))
            return pending

        return register

    def __repr__(self) -> str:
        return f"<SubRouter prefix={self.prefix!r}>"


def _looks_like_module(value: object) -> bool:
    """Tells the legacy `__name__` / `__file__` first argument from a prefix."""
    import os

    if not isinstance(value, str):
        return False
    if value.startswith("/"):
        return value.endswith(".py") and os.path.isfile(value)
    return value == "__main__" or "." in value
