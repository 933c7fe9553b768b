"""Compiles a handler, once at registration, into a `call(job)` that builds its arguments.

How each parameter is filled, in order (Robyn 0.88's rules):

1. By annotation: `Request`; `QueryParams` (or a subclass); `Headers`; `PathParams`; `Method` or
   `RequestMethod`; `Url`; `FormData`; `Files`; `IPAddress`; `Identity`; `RequestBody` or a
   subclass of `Body` -> `request.body`; a subclass of `JsonBody`, or a TypedDict -> `request.json()`
   (invalid JSON answers 400 `{"error": "Invalid JSON body: ..."}` without calling the handler);
   a Pydantic 2 model -> the body validated into it with `model_validate_json` (any failure, bad
   JSON or an empty body included, answers 422 `{"detail": [pydantic's errors], "error":
   "Validation Error"}` without calling the handler, as Robyn 0.88). Only one Pydantic body per
   handler: two are a TypeError at registration. Pydantic is never imported here.
2. By name: `r`, `req`, `request` -> the Request; `query_params`, `headers`, `path_params`, `body`,
   `method`, `url`, `ip_addr`, `identity`, `form_data`, `files` -> that part of the request;
   `global_dependencies`, `router_dependencies` -> those entries of `dependencies` (keyed by
   those names or by "global" / "router"; `{}` if absent). The dicts are passed as they are, so
   what is injected into them after registration is seen.
3. Otherwise by value: the path parameter of that name if the route declares one, else the query
   parameter (its last value), coerced to the annotation: str (also when unannotated), int, float,
   bool (true/1/yes/on, false/0/no/off/empty, any case), `list[T]` (every value of the query key),
   `Optional[T]` / `T | None` (None when absent), `Literal[...]`, unions (first member that fits),
   or any other class, called with the string (Enum, UUID, ...). An absent parameter takes its
   default; with none, QueryParamValidationError("Missing required parameter: 'x'") is raised; a
   value that does not fit raises QueryParamValidationError("Invalid value 'abc' for parameter 'x':
   expected int"). Both are HTTPException(400) and are raised by `call(job)` itself, before the
   handler runs, for async handlers too.

`*args` receives nothing. `**kwargs` receives every path and query parameter that no named
parameter took, as strings (path parameters win over query parameters of the same name).

`call` accepts the bridge's job or an already-built Request (say, one a middleware returned).
"""

from __future__ import annotations

import functools
import inspect
import logging
import operator
import sys
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal, Union

from robyn.datastructures import Headers, QueryParams
from robyn.exceptions import QueryParamValidationError
from robyn.request import Request
from robyn.responses import Response, jsonify
from robyn.types import (
    Body,
    Files,
    FormData,
    Identity,
    IPAddress,
    JsonBody,
    Method,
    PathParams,
    RequestBody,
    RequestMethod,
    Url,
)

__all__ = ["compile_handler", "handler_is_async"]

_logger = logging.getLogger(__name__)

Call = Callable[[Any], Any]
Getter = Callable[[Request], Any]

_EMPTY = inspect.Parameter.empty
_REQUEST = "request"  # the plan's marker for "the Request itself"

_COMPONENTS = (
    "query_params", "headers", "path_params", "body", "method", "url", "ip_addr", "identity", "form_data", "files",
)
_BY_TYPE: dict[Any, str] = {
    Request: _REQUEST,
    QueryParams: "query_params",
    Headers: "headers",
    PathParams: "path_params",
    Method: "method",
    RequestMethod: "method",
    Url: "url",
    FormData: "form_data",
    Files: "files",
    IPAddress: "ip_addr",
    Identity: "identity",
    RequestBody: "body",
}
_BY_NAME: dict[str, str] = {"r": _REQUEST, "req": _REQUEST, "request": _REQUEST}
_BY_NAME.update((name, name) for name in _COMPONENTS)
_DEPENDENCY_NAMES = frozenset({"global_dependencies", "router_dependencies"})
# Used when a string annotation cannot be evaluated: recognise the markers by their bare name.
_MARKERS_BY_NAME: dict[str, Any] = {
    "Request": Request,
    "QueryParams": QueryParams,
    "Headers": Headers,
    "PathParams": PathParams,
    "Method": Method,
    "RequestMethod": RequestMethod,
    "Url": Url,
    "RequestURL": Url,
    "FormData": FormData,
    "Files": Files,
    "IPAddress": IPAddress,
    "Identity": Identity,
    "RequestBody": RequestBody,
    "Body": Body,
    "JsonBody": JsonBody,
}

_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off", ""})
_PASSTHROUGH = (None, str, Any, object)


class _EarlyResponse(Exception):
    """Raised by an argument getter to answer without calling the handler."""

    def __init__(self, response: Response) -> None:
        super().__init__(response)
        self.response = response


def handler_is_async(handler: Callable[..., Any]) -> bool:
    """True for coroutine functions, including partials of them and objects with an async __call__."""
    if inspect.iscoroutinefunction(handler):
        return True
    call = getattr(type(handler), "__call__", None)
    return not inspect.isfunction(handler) and inspect.iscoroutinefunction(call)


def compile_handler(
    handler: Callable[..., Any],
    path_param_names: Iterable[str] = (),
    dependencies: Mapping[str, Any] | None = None,
) -> tuple[bool, Call]:
    """Returns (is_async, call): `call(job)` fills the handler's parameters from the request and
    calls it, returning its result (a coroutine, for an async handler). See the module docstring."""
    is_async = handler_is_async(handler)
    parameters = list(inspect.signature(handler).parameters.values())
    if not parameters:
        return is_async, lambda job: handler()

    route_params = frozenset(path_param_names)
    deps = dependencies or {}
    hints = _type_hints(handler)
    bound = {p.name for p in parameters if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
    plan: list[tuple[inspect.Parameter, Any]] = []  # (parameter, source)
    for param in parameters:
        if param.kind is param.VAR_POSITIONAL:
            continue
        if param.kind is param.VAR_KEYWORD:
            plan.append((param, _leftover_getter(bound, route_params)))
            continue
        annotation = _annotation(handler, param, hints)
        source = _source_by_annotation(annotation)
        if source is None:
            source = _BY_NAME.get(param.name)
        if source is None and param.name in _DEPENDENCY_NAMES:
            short = param.name.partition("_")[0]  # "global" / "router" are accepted as keys too
            source = _Const(deps[param.name] if param.name in deps else deps[short] if short in deps else {})
        if source is None:
            source = _param_getter(param.name, annotation, param.default, param.name in route_params)
        plan.append((param, source))
    _check_pydantic(handler, plan)
    return is_async, _generate(handler, plan, is_async)


class _Const:
    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


def _generate(handler: Callable[..., Any], plan: list[tuple[inspect.Parameter, Any]], is_async: bool) -> Call:
    """Writes the per-request closure as straight-line code: no loops, no introspection."""
    namespace: dict[str, Any] = {
        "handler": handler, "Request": Request, "_new": object.__new__, "_EarlyResponse": _EarlyResponse,
    }
    arguments: list[tuple[str, str]] = []  # (how it is passed: "", "name=" or "**"; its expression)
    needs_request = catches = False
    for index, (param, source) in enumerate(plan):
        if isinstance(source, _Const):
            namespace[f"c{index}"] = source.value
            expr = f"c{index}"
        elif source == _REQUEST:
            needs_request, expr = True, "r"
        else:
            getter = operator.attrgetter(source) if isinstance(source, str) else source
            needs_request, catches = True, catches or getattr(getter, "answers_early", False)
            namespace[f"g{index}"] = getter
            expr = f"g{index}(r)"
        if param.kind is param.VAR_KEYWORD:
            arguments.append(("**", expr))
        elif param.kind is param.KEYWORD_ONLY:
            arguments.append((f"{param.name}=", expr))
        else:
            arguments.append(("", expr))
    lines = ["def call(job):"]
    if needs_request:
        # Request(job), inlined: this is the hot path.
        lines += ["    if isinstance(job, Request):", "        r = job", "    else:"]
        lines += ["        r = _new(Request)", "        r._job = job"]
    if catches:
        # Build every argument first so that only the getters' early answers are caught.
        lines.append("    try:")
        lines += [f"        a{i} = {expr}" for i, (_, expr) in enumerate(arguments)]
        lines.append("    except _EarlyResponse as exc:")
        lines.append("        return early(exc.response)")
        arguments = [(how, f"a{i}") for i, (how, _) in enumerate(arguments)]
        namespace["early"] = _async_value if is_async else _identity
    lines.append(f"    return handler({', '.join(how + expr for how, expr in arguments)})")
    exec("\n".join(lines), namespace)  # noqa: S102 - the source is built above from identifiers only
    call: Call = namespace["call"]
    call.__qualname__ = f"call<{getattr(handler, '__qualname__', type(handler).__name__)}>"
    return call


def _identity(value: Any) -> Any:
    return value


async def _async_value(value: Any) -> Any:
    return value


def _json_body(request: Request) -> Any:
    try:
        return request.json()
    except ValueError as exc:
        raise _EarlyResponse(
            Response(400, {"Content-Type": "application/json"}, jsonify({"error": f"Invalid JSON body: {exc}"}))
        ) from None


_json_body.answers_early = True  # type: ignore[attr-defined]


def is_pydantic_model(annotation: Any) -> bool:
    """True for a subclass of pydantic.BaseModel. Never imports pydantic: a class that is a
    model means pydantic is already imported."""
    pydantic = sys.modules.get("pydantic")
    base = getattr(pydantic, "BaseModel", None)
    return base is not None and isinstance(annotation, type) and issubclass(annotation, base)


def _pydantic_body_getter(model: Any) -> Getter:
    """Validates the body as JSON into `model` (Pydantic v2's model_validate_json, as Robyn).
    Any failure, bad JSON included, answers 422 {"detail": [...], "error": "Validation Error"}."""
    pydantic = sys.modules["pydantic"]
    validate = getattr(model, "model_validate_json", None)
    if validate is None:
        raise TypeError(f"Pydantic body parameters need Pydantic 2 (model_validate_json); "
                        f"pydantic {getattr(pydantic, 'VERSION', '?')} is installed")
    validation_error = pydantic.ValidationError

    def pydantic_body(request: Request) -> Any:
        try:
            return validate(request.body)
        except validation_error as exc:
            detail = {"detail": _json_safe_errors(exc.errors()), "error": "Validation Error"}
            raise _EarlyResponse(Response(422, {"Content-Type": "application/json"}, jsonify(detail))) from None

    pydantic_body.answers_early = True  # type: ignore[attr-defined]
    return pydantic_body


def _json_safe_errors(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Pydantic's error dicts with what JSON cannot hold made plain, as Robyn sends them:
    `loc` a list, bytes `input` decoded, `ctx` values as strings."""
    safe = []
    for error in errors:
        error = dict(error)
        error["loc"] = list(error.get("loc", ()))
        if isinstance(error.get("input"), (bytes, bytearray)):
            error["input"] = bytes(error["input"]).decode("utf-8", "replace")
        ctx = error.get("ctx")
        if isinstance(ctx, dict):
            error["ctx"] = {key: str(value) for key, value in ctx.items()}
        safe.append(error)
    return safe


def _check_pydantic(handler: Callable[..., Any], plan: list[tuple[inspect.Parameter, Any]]) -> None:
    """One Pydantic body per handler (the whole body is parsed into it), and Pydantic v2."""
    names = [param.name for param, source in plan if getattr(source, "__name__", "") == "pydantic_body"]
    if len(names) > 1:
        raise TypeError(
            f"Handler '{getattr(handler, '__name__', handler)}' has multiple Pydantic body parameters {names}. "
            "Only one Pydantic body parameter per handler is supported — the entire request body is parsed "
            "into that single model.")


def _leftover_getter(bound: set[str], route_params: frozenset[str]) -> Getter:
    path_names = route_params - bound

    def leftover(request: Request) -> dict[str, str]:
        found = {key: value for key, value in request.query_params.items() if key not in bound}
        if path_names:
            found.update((key, value) for key, value in request.path_params.items() if key in path_names)
        return found

    return leftover


# --- annotations ---------------------------------------------------------------------------------


def _type_hints(handler: Callable[..., Any]) -> dict[str, Any]:
    target = handler.func if isinstance(handler, functools.partial) else handler
    if not (inspect.isfunction(target) or inspect.ismethod(target)):
        target = getattr(type(target), "__call__", target)
    try:
        return typing.get_type_hints(target)
    except Exception:  # an annotation that does not evaluate: fall back parameter by parameter
        return {}


def _annotation(handler: Callable[..., Any], param: inspect.Parameter, hints: dict[str, Any]) -> Any:
    annotation = hints.get(param.name, param.annotation)
    if isinstance(annotation, str):
        annotation = _evaluate(handler, param.name, annotation)
    if typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    return None if annotation is _EMPTY else annotation


def _evaluate(handler: Callable[..., Any], name: str, text: str) -> Any:
    unwrapped = inspect.unwrap(handler.func if isinstance(handler, functools.partial) else handler)
    namespace = getattr(unwrapped, "__globals__", None)
    if namespace is None:  # a callable object: its __call__'s module
        namespace = getattr(getattr(type(handler), "__call__", None), "__globals__", {})
    try:
        return eval(text, dict(namespace))  # noqa: S307 - what typing.get_type_hints does too
    except Exception:
        marker = _MARKERS_BY_NAME.get(text.rsplit(".", 1)[-1])
        if marker is None:
            _logger.warning("Cannot resolve annotation %r of parameter %r of %r; treating it as str", text, name, handler)
        return marker


def _source_by_annotation(annotation: Any) -> Any:
    """The request part an annotation asks for, a getter for it, or None."""
    if annotation is None:
        return None
    inner, optional = _unwrap_optional(annotation)
    if optional:  # `request: Request | None = None`
        annotation = inner
    try:
        source = _BY_TYPE.get(annotation)
    except TypeError:  # unhashable annotation
        return None
    if source is not None:
        return source
    if isinstance(annotation, type):
        if is_pydantic_model(annotation):
            return _pydantic_body_getter(annotation)
        if issubclass(annotation, JsonBody) or typing.is_typeddict(annotation):
            return _json_body
        if issubclass(annotation, Body):
            return "body"
        if issubclass(annotation, QueryParams):
            return "query_params"
    return None


# --- path and query parameters -------------------------------------------------------------------


def _unwrap_optional(annotation: Any) -> tuple[Any, bool]:
    if typing.get_origin(annotation) in (Union, types.UnionType):
        args = typing.get_args(annotation)
        rest = tuple(arg for arg in args if arg is not type(None))
        if len(rest) < len(args):
            return (rest[0] if len(rest) == 1 else Union[rest]), True  # noqa: UP007
    return annotation, False


def _param_getter(name: str, annotation: Any, default: Any, in_path: bool) -> Getter:
    target, optional = _unwrap_optional(annotation)
    if default is not _EMPTY:
        has_fallback, fallback = True, default
    else:
        has_fallback, fallback = optional, None

    def missing() -> Any:
        if has_fallback:
            return fallback
        raise QueryParamValidationError(name, None, target)

    if typing.get_origin(target) is list or target is list:
        element = (typing.get_args(target) or (str,))[0]
        convert_one = _converter(name, element)

        def get_list(request: Request) -> Any:
            if in_path:
                value = request.path_params.get(name)
                if value is not None:
                    return [convert_one(value)]
            values = request.query_params.get_all(name)
            return [convert_one(value) for value in values] if values is not None else missing()

        return get_list

    convert = _converter(name, target)
    if in_path:

        def get_path(request: Request) -> Any:
            value = request.path_params.get(name)
            if value is None:
                value = request.query_params.get(name)
                if value is None:
                    return missing()
            return convert(value)

        return get_path

    def get_query(request: Request) -> Any:
        value = request.query_params.get(name)
        return missing() if value is None else convert(value)

    return get_query


def _converter(name: str, target: Any) -> Callable[[str], Any]:
    """A function from the raw string to `target`, raising QueryParamValidationError."""
    if target in _PASSTHROUGH or isinstance(target, (str, typing.TypeVar)):
        return _identity
    if target is bool:

        def to_bool(value: str) -> bool:
            lowered = value.lower()
            if lowered in _TRUE:
                return True
            if lowered in _FALSE:
                return False
            raise QueryParamValidationError(name, value, bool)

        return to_bool
    origin = typing.get_origin(target)
    if origin is Literal:
        choices = {str(choice): choice for choice in typing.get_args(target)}

        def to_literal(value: str) -> Any:
            if value in choices:
                return choices[value]
            raise QueryParamValidationError(name, value, target)

        return to_literal
    if origin in (Union, types.UnionType):
        members = [_converter(name, member) for member in typing.get_args(target)]

        def to_union(value: str) -> Any:
            for member in members:
                try:
                    return member(value)
                except QueryParamValidationError:
                    continue
            raise QueryParamValidationError(name, value, target)

        return to_union
    if not callable(target) or origin is not None:
        _logger.warning("Parameter %r has an annotation that cannot be coerced (%r); passing it as str", name, target)
        return _identity

    def to_type(value: str) -> Any:
        try:
            return target(value)
        except (ValueError, TypeError):
            raise QueryParamValidationError(name, value, target) from None

    return to_type
