"""The OpenAPI document of an app (`GET /openapi.json`) and its Swagger UI page (`GET /docs`).

The classes are Robyn 0.88's (`OpenAPI`, `OpenAPIInfo`, `Contact`, `License`, `Server`,
`ExternalDocumentation`, `Components`, `RouteOpenAPIMeta`), with the same fields and the same
JSON they produce. `install(app)` fills `app.openapi` from the app's routes when the app starts
and registers the two routes; see docs/openapi.md for what each route contributes:

- the path, with `:id` and `*rest` written `{id}` / `{rest}`, each a path parameter;
- query parameters: the fields of a `QueryParams` subclass annotation, and every parameter
  the handler takes by value (`def h(q: str, page: int = 1)`), typed, required when it has no
  default and is not Optional;
- the request body: a `Body` / `JsonBody` subclass or a TypedDict (an object schema of its
  annotations) or a Pydantic model (its JSON Schema, nested models under components/schemas);
- the success response: the return annotation (or the route's `response_model`) as a schema,
  under the route's `status_code` (200 by default), plus the route's `responses`;
- summary (`openapi_name`), description (the docstring), tags, `deprecated`, and a security
  requirement on `auth_required` routes once a security scheme is registered.

An `openapi_file_path` JSON file replaces the generated document entirely.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import inspect
import json
import logging
import re
import types
import typing
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, TypedDict, Union

from robyn.datastructures import QueryParams
from robyn.responses import FileResponse, Response, StreamingResponse, html
from robyn.types import Body, JsonBody

__all__ = [
    "Contact",
    "License",
    "Server",
    "ExternalDocumentation",
    "Components",
    "OpenAPIInfo",
    "OpenAPI",
    "RouteOpenAPIMeta",
    "for_app",
    "install",
]

_logger = logging.getLogger(__name__)

OPENAPI_VERSION = "3.1.0"
SWAGGER_UI_VERSION = "5"


@dataclass
class Contact:
    """Who to contact about the API (OpenAPI Contact Object)."""

    name: str | None = None
    url: str | None = None
    email: str | None = None


@dataclass
class License:
    """The API's license (OpenAPI License Object)."""

    name: str | None = None
    url: str | None = None


@dataclass
class Server:
    """A server the API is served from (OpenAPI Server Object); `url` may be relative."""

    url: str
    description: str | None = None


@dataclass
class ExternalDocumentation:
    """A link to more documentation (OpenAPI External Documentation Object)."""

    description: str | None = None
    url: str | None = None


@dataclass
class Components:
    """Reusable parts of the document (OpenAPI Components Object)."""

    schemas: dict[str, dict[str, Any]] | None = field(default_factory=dict)
    responses: dict[str, dict[str, Any]] | None = field(default_factory=dict)
    parameters: dict[str, dict[str, Any]] | None = field(default_factory=dict)
    examples: dict[str, dict[str, Any]] | None = field(default_factory=dict)
    requestBodies: dict[str, dict[str, Any]] | None = field(default_factory=dict)  # noqa: N815 (the spec's name)
    securitySchemes: dict[str, dict[str, Any]] | None = field(default_factory=dict)  # noqa: N815
    links: dict[str, dict[str, Any]] | None = field(default_factory=dict)
    callbacks: dict[str, dict[str, Any]] | None = field(default_factory=dict)
    pathItems: dict[str, dict[str, Any]] | None = field(default_factory=dict)  # noqa: N815


@dataclass
class OpenAPIInfo:
    """The document's metadata (OpenAPI Info Object), plus its servers, external docs and
    components, which Robyn keeps here too."""

    title: str = "Robyn API"
    version: str = "1.0.0"
    description: str | None = None
    termsOfService: str | None = None  # noqa: N815
    contact: Contact = field(default_factory=Contact)
    license: License = field(default_factory=License)
    servers: list[Server] = field(default_factory=list)
    externalDocs: ExternalDocumentation | None = field(default_factory=ExternalDocumentation)  # noqa: N815
    components: Components = field(default_factory=Components)


@dataclass
class RouteOpenAPIMeta:
    """What a route's decorator says about it for the document (Robyn 0.88's fields)."""

    status_code: int | None = None
    deprecated: bool = False
    include_in_schema: bool = True
    response_model: Any = None
    responses: dict[int | str, Any] | None = None
    summary: str | None = None
    description: str | None = None
    operation_id: str | None = None


# Types whose JSON Schema is a type and a format (what Pydantic writes for them).
_LEAF_SCHEMAS: dict[type, dict[str, str]] = {
    datetime.datetime: {"type": "string", "format": "date-time"},
    datetime.date: {"type": "string", "format": "date"},
    datetime.time: {"type": "string", "format": "time"},
    datetime.timedelta: {"type": "string", "format": "duration"},
    uuid.UUID: {"type": "string", "format": "uuid"},
    decimal.Decimal: {"type": "number"},
    bytes: {"type": "string", "format": "binary"},
}
_PRIMITIVES: dict[Any, str] = {
    int: "integer",
    str: "string",
    bool: "boolean",
    float: "number",
    dict: "object",
    list: "array",
}


def _is_pydantic_model(annotation: Any) -> bool:
    from robyn.injection import is_pydantic_model

    return is_pydantic_model(annotation)


def _pydantic_schema(model: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the model's JSON Schema, the nested models' schemas for components/schemas)."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    return schema, schema.pop("$defs", {})


@dataclass
class OpenAPI:
    """The OpenAPI document of one app. `openapi_spec` is the document as a dict."""

    info: OpenAPIInfo = field(default_factory=OpenAPIInfo)
    openapi_spec: dict[str, Any] = field(init=False)
    openapi_file_override: bool = False  # True once a JSON file replaced the generated document

    def __post_init__(self) -> None:
        external = self.info.externalDocs
        self.openapi_spec = {
            "openapi": OPENAPI_VERSION,
            "info": asdict(self.info),
            "paths": {},
            "components": asdict(self.info.components),
            "servers": [asdict(server) for server in self.info.servers],
            "externalDocs": asdict(external) if external is not None and external.url else None,
        }

    # ---- document-wide parts -----------------------------------------------------------------

    def add_security_scheme(self, name: str, scheme: dict[str, Any]) -> None:
        """Registers a security scheme (e.g. `{"type": "http", "scheme": "bearer"}`) under
        components/securitySchemes; `auth_required` routes then name it. Swagger UI shows its
        Authorize button for it."""
        if self.openapi_file_override:
            return
        components = self.openapi_spec.setdefault("components", {})
        if components.get("securitySchemes") is None:
            components["securitySchemes"] = {}
        components["securitySchemes"][name] = scheme

    @property
    def _security_scheme_names(self) -> list[str]:
        return list((self.openapi_spec.get("components") or {}).get("securitySchemes") or {})

    def prune_empty_components(self) -> None:
        """Drops empty component kinds (an empty securitySchemes would make Swagger UI show an
        Authorize popup with nothing in it)."""
        if self.openapi_file_override:
            return
        components = self.openapi_spec.get("components")
        if isinstance(components, dict):
            for key in [key for key, value in components.items() if not value]:
                del components[key]

    def override_openapi(self, openapi_json_spec_path: str | Path) -> None:
        """Replaces the document with the JSON file at the path. Raises OSError when it cannot
        be read and ValueError when it is not a JSON object."""
        path = Path(openapi_json_spec_path)
        with open(path, encoding="utf-8") as file:
            try:
                document = json.load(file)
            except ValueError as exc:
                raise ValueError(f"OpenAPI file {path} is not valid JSON: {exc}") from None
        if not isinstance(document, dict):
            raise ValueError(f"OpenAPI file {path} must hold a JSON object, not {type(document).__name__}")
        self.openapi_spec = document
        self.openapi_file_override = True

    def add_subrouter_paths(self, subrouter_openapi: OpenAPI) -> None:
        """Copies another document's paths and component schemas into this one."""
        if self.openapi_file_override:
            return
        self.openapi_spec["paths"].update(subrouter_openapi.openapi_spec.get("paths", {}))
        schemas = (subrouter_openapi.openapi_spec.get("components") or {}).get("schemas") or {}
        self._merge_schemas(schemas)

    def _merge_schemas(self, schemas: dict[str, Any]) -> None:
        if not schemas:
            return
        components = self.openapi_spec.setdefault("components", {})
        existing = components.get("schemas")
        if existing is None:
            existing = components["schemas"] = {}
        for name, schema in schemas.items():
            if name in existing and existing[name] != schema:
                _logger.warning("OpenAPI: two different models are named %r; the later one is documented", name)
            existing[name] = schema

    # ---- paths -------------------------------------------------------------------------------

    def add_openapi_path_obj(
        self,
        route_type: str,
        endpoint: str,
        openapi_name: str,
        openapi_tags: list[str],
        handler: Callable[..., Any],
        auth_required: bool = False,
        meta: RouteOpenAPIMeta | None = None,
    ) -> None:
        """Documents `route_type` (get, post ...) on `endpoint` from its handler and metadata."""
        if self.openapi_file_override:
            return
        meta = meta or RouteOpenAPIMeta()
        if not meta.include_in_schema:
            return
        shape = _HandlerShape(handler, _path_param_names(endpoint))
        summary = meta.summary if meta.summary is not None else openapi_name
        description = meta.description if meta.description is not None else shape.docstring
        return_annotation = meta.response_model if meta.response_model is not None else shape.return_annotation
        path, operation = self.get_path_obj(
            endpoint, summary, description, list(openapi_tags), shape.query_params, shape.request_body,
            return_annotation, auth_required=auth_required, meta=meta, handler_shape=shape)
        self.openapi_spec["paths"].setdefault(path, {})[route_type.lower()] = operation

    def get_path_obj(
        self,
        endpoint: str,
        name: str,
        description: str,
        tags: list[str],
        query_params: Any,
        request_body: Any,
        return_annotation: Any,
        auth_required: bool = False,
        meta: RouteOpenAPIMeta | None = None,
        handler_shape: _HandlerShape | None = None,
    ) -> tuple[str, dict[str, Any]]:
        """(the OpenAPI form of `endpoint`, its Operation Object)."""
        meta = meta or RouteOpenAPIMeta()
        operation: dict[str, Any] = {
            "summary": name,
            "description": description or "No description provided",
            "parameters": [],
            "tags": tags,
        }
        if meta.operation_id is not None:
            operation["operationId"] = meta.operation_id
        if meta.deprecated:
            operation["deprecated"] = True
        schemes = self._security_scheme_names
        if auth_required and schemes:
            operation["security"] = [{scheme: []} for scheme in schemes]

        typed_path = handler_shape.path_types if handler_shape is not None else {}
        for param_name in _path_param_names(endpoint):
            annotation = typed_path.get(param_name)
            schema = self._parameter_schema(annotation, param_name) if annotation is not None else {"type": "string"}
            operation["parameters"].append({"name": param_name, "in": "path", "required": True, "schema": schema})
        if query_params is not None:
            for field_name, annotation in _annotations_of(query_params).items():
                operation["parameters"].append(
                    {"name": field_name, "in": "query", "required": False,
                     "schema": {"type": self.get_openapi_type(annotation)}})
        if handler_shape is not None:
            known = {p["name"] for p in operation["parameters"] if p["in"] == "query"}
            for param_name, annotation, default in handler_shape.by_value_query:
                if param_name in known:
                    continue
                operation["parameters"].append(self._query_parameter(param_name, annotation, default))

        if request_body is not None:
            operation["requestBody"] = {"content": {"application/json": {"schema": self._body_schema(request_body)}}}

        media_type, schema = self._response_content(return_annotation)
        status = str(meta.status_code) if meta.status_code is not None else "200"
        operation["responses"] = {status: {"description": "Successful Response", "content": {media_type: {"schema": schema}}}}
        if meta.responses:
            operation["responses"].update(self._build_responses(meta.responses))
        return _openapi_path(endpoint), operation

    def _query_parameter(self, name: str, annotation: Any, default: Any) -> dict[str, Any]:
        inner, optional = _unwrap_optional(annotation)
        required = default is inspect.Parameter.empty and not optional
        parameter: dict[str, Any] = {"name": name, "in": "query", "required": required,
                                     "schema": self._parameter_schema(inner, name)}
        if default is not inspect.Parameter.empty and default is not None:
            try:
                json.dumps(default)
            except (TypeError, ValueError):
                default = getattr(default, "value", str(default))
            parameter["schema"]["default"] = default
        return parameter

    def _parameter_schema(self, annotation: Any, name: str = "") -> dict[str, Any]:
        if annotation in (None, inspect.Parameter.empty, Any, object):
            return {"type": "string"}
        schema = self.get_schema_object(name, annotation)
        schema.pop("title", None)
        return schema

    def _body_schema(self, body_type: Any) -> dict[str, Any]:
        if _is_pydantic_model(body_type):
            schema, nested = _pydantic_schema(body_type)
            self._merge_schemas(nested)
            return schema
        properties = {name: self.get_schema_object(name, annotation)
                      for name, annotation in _annotations_of(body_type).items()}
        return {"type": "object", "properties": properties}

    def _response_content(self, annotation: Any) -> tuple[str, dict[str, Any]]:
        """(media type, schema) of the success response."""
        if annotation is None or annotation is type(None) or annotation is inspect.Signature.empty:
            return "text/plain", {}  # what a handler returning None sends
        if isinstance(annotation, type) and issubclass(annotation, (Response, StreamingResponse, FileResponse)):
            return "text/plain", {}
        if annotation is str:  # a str return is sent as text/plain
            return "text/plain", {"type": "string"}
        if annotation is bytes:
            return "application/octet-stream", {"type": "string", "format": "binary"}
        return "application/json", self.get_schema_object("response object", annotation)

    def _build_responses(self, responses: dict[int | str, Any]) -> dict[str, dict[str, Any]]:
        """`responses=` values: a description str, a Response Object, or one with a `model`
        (a type whose schema becomes its application/json content). Anything else is a
        TypeError naming the status."""
        built: dict[str, dict[str, Any]] = {}
        for status, value in responses.items():
            if isinstance(value, str):
                built[str(status)] = {"description": value}
                continue
            if not isinstance(value, dict):
                raise TypeError(f"responses[{status!r}] must be a str or a dict, not {type(value).__name__}")
            response = {key: item for key, item in value.items() if key != "model"}
            response.setdefault("description", "")
            model = value.get("model")
            if model is not None:
                content = response.setdefault("content", {})
                content["application/json"] = {"schema": self.get_schema_object("response object", model)}
            built[str(status)] = response
        return built

    # ---- schemas -----------------------------------------------------------------------------

    def get_openapi_type(self, annotation: Any) -> str:
        """The JSON Schema type name of a simple annotation ("string" when unknown)."""
        if annotation in _PRIMITIVES:
            return _PRIMITIVES[annotation]
        if annotation in _LEAF_SCHEMAS:
            return _LEAF_SCHEMAS[annotation]["type"]
        origin = typing.get_origin(annotation)
        if origin in _PRIMITIVES:
            return _PRIMITIVES[origin]
        return "string"

    def get_schema_object(self, parameter: str, param_type: Any) -> dict[str, Any]:
        """The JSON Schema of `param_type`, titled after `parameter` (as Robyn titles them)."""
        schema: dict[str, Any] = {"title": parameter.capitalize()}
        if isinstance(param_type, str):  # a forward reference that could not be resolved
            return schema
        if param_type in _PRIMITIVES:
            schema["type"] = _PRIMITIVES[param_type]
            return schema
        if isinstance(param_type, type) and param_type in _LEAF_SCHEMAS:
            schema.update(_LEAF_SCHEMAS[param_type])
            return schema
        if param_type is Any or param_type is object:
            return schema
        origin = typing.get_origin(param_type)
        args = typing.get_args(param_type)
        if origin is typing.Annotated:
            return self.get_schema_object(parameter, args[0])
        if origin is Literal:
            schema["enum"] = list(args)
            schema["type"] = _PRIMITIVES.get(type(args[0]) if args else str, "string")
            return schema
        if isinstance(param_type, type) and issubclass(param_type, enum.Enum):
            values = [member.value for member in param_type]
            schema["enum"] = values
            if values:
                schema["type"] = _PRIMITIVES.get(type(values[0]), "string")
            return schema
        if origin in (list, tuple, set, frozenset):
            schema["type"] = "array"
            if args:
                schema["items"] = self.get_schema_object(f"{parameter}_item", args[0])
            return schema
        if origin is dict:
            schema["type"] = "object"
            if len(args) == 2:
                schema["additionalProperties"] = self.get_schema_object(f"{parameter}_value", args[1])
            return schema
        if origin in (Union, types.UnionType):
            members = []
            for arg in args:
                if arg is type(None):
                    continue
                if arg in _PRIMITIVES:
                    members.append({"type": _PRIMITIVES[arg]})
                elif isinstance(arg, type) and arg in _LEAF_SCHEMAS:
                    members.append(dict(_LEAF_SCHEMAS[arg]))
                else:
                    members.append(self.get_schema_object(parameter, arg))
            if type(None) in args:
                members.append({"type": "null"})
            schema["anyOf"] = members
            return schema
        if _is_pydantic_model(param_type):
            model_schema, nested = _pydantic_schema(param_type)
            self._merge_schemas(nested)
            return model_schema
        if inspect.isclass(param_type):
            schema["type"] = "object"
            schema["properties"] = {name: self.get_schema_object(name, annotation)
                                    for name, annotation in _annotations_of(param_type).items()}
            return schema
        schema["type"] = "object"
        return schema

    # ---- the two routes ----------------------------------------------------------------------

    def get_openapi_docs_page(self) -> Response:
        """The Swagger UI page served at /docs (it loads Swagger UI from the unpkg CDN)."""
        return html(_DOCS_PAGE)

    def get_openapi_config(self) -> dict[str, Any]:
        """The document served at /openapi.json."""
        return self.openapi_spec


# ---- reading handlers ----------------------------------------------------------------------------


class _HandlerShape:
    """What a handler's signature says for the document, classified as injection does."""

    def __init__(self, handler: Callable[..., Any], path_params: list[str]) -> None:
        from robyn import injection

        self.docstring = inspect.getdoc(handler) or ""
        self.query_params: Any = None
        self.request_body: Any = None
        self.return_annotation: Any = None
        self.path_types: dict[str, Any] = {}
        self.by_value_query: list[tuple[str, Any, Any]] = []
        try:
            signature = inspect.signature(handler)
        except (TypeError, ValueError):
            return
        hints = injection._type_hints(handler)
        returned = hints.get("return", signature.return_annotation)
        if returned is not inspect.Signature.empty:
            if isinstance(returned, str):
                returned = injection._evaluate(handler, "return", returned)
            self.return_annotation = returned
        for param in signature.parameters.values():
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                continue
            annotation = injection._annotation(handler, param, hints)
            # Robyn's older style: the type given as the default of `query_params` / `body`.
            if param.name in ("query_params", "body") and inspect.isclass(param.default) \
                    and param.default is not inspect.Parameter.empty:
                if param.name == "query_params":
                    self.query_params = param.default
                else:
                    self.request_body = param.default
                continue
            if _is_body_type(annotation):
                self.request_body = annotation
                continue
            if inspect.isclass(annotation) and issubclass(annotation, QueryParams) and annotation is not QueryParams:
                self.query_params = annotation
                continue
            if injection._source_by_annotation(annotation) is not None or param.name in injection._BY_NAME:
                continue
            if param.name in injection._DEPENDENCY_NAMES:
                continue
            if param.name in path_params:
                if annotation is not None:
                    self.path_types[param.name] = annotation
                continue
            self.by_value_query.append((param.name, annotation, param.default))


def _is_body_type(annotation: Any) -> bool:
    if not inspect.isclass(annotation):
        return False
    return (issubclass(annotation, (JsonBody, Body)) or typing.is_typeddict(annotation)
            or _is_pydantic_model(annotation))


def _annotations_of(cls: Any) -> dict[str, Any]:
    """A class's field annotations, resolved when they can be (PEP 563 strings)."""
    if cls in (Body, JsonBody, QueryParams, TypedDict):
        return {}
    try:
        hints = typing.get_type_hints(cls)
    except Exception:
        hints = dict(getattr(cls, "__annotations__", {}))
    if dataclasses.is_dataclass(cls):
        return hints
    # Methods' annotations never show here; ClassVar fields are not data.
    return {name: hint for name, hint in hints.items() if typing.get_origin(hint) is not typing.ClassVar}


def _unwrap_optional(annotation: Any) -> tuple[Any, bool]:
    if typing.get_origin(annotation) in (Union, types.UnionType):
        args = typing.get_args(annotation)
        rest = tuple(arg for arg in args if arg is not type(None))
        if len(rest) < len(args):
            return (rest[0] if len(rest) == 1 else Union[rest]), True  # noqa: UP007
    return annotation, False


_PATH_PARAM = re.compile(r"(?<=/)[:*]([A-Za-z_][A-Za-z0-9_]*)")


def _path_param_names(endpoint: str) -> list[str]:
    return _PATH_PARAM.findall(endpoint)


def _openapi_path(endpoint: str) -> str:
    """`/users/:id/*rest` as OpenAPI writes it: `/users/{id}/{rest}`."""
    return _PATH_PARAM.sub(lambda match: "{" + match.group(1) + "}", endpoint)


# ---- wiring into an app --------------------------------------------------------------------------


def for_app(directory_path: str | Path, openapi: OpenAPI | None = None,
            openapi_file_path: str | None = None) -> OpenAPI:
    """The OpenAPI object a new app keeps (what `Robyn(..., openapi=, openapi_file_path=)` does):
    `openapi` or a new one; its document is replaced by `openapi_file_path` (relative to the
    app's directory) when given, else by an `openapi.json` next to the app when there is one.
    """
    if openapi is None:
        openapi = OpenAPI()
    elif not isinstance(openapi, OpenAPI):
        raise TypeError(f"Robyn() openapi must be a robyn.openapi.OpenAPI, not {type(openapi).__name__}")
    directory = Path(directory_path)
    if openapi_file_path:
        openapi.override_openapi(directory / openapi_file_path)
    elif (directory / "openapi.json").is_file():
        openapi.override_openapi(directory / "openapi.json")
    return openapi


def _meta_of(route: Any) -> tuple[str, list[str], bool, RouteOpenAPIMeta]:
    """(summary, tags, auth_required, metadata) of an app route (seam 1 of issue 9)."""
    info = getattr(route, "openapi", None) or {}
    tags = info.get("tags")
    meta = RouteOpenAPIMeta(
        status_code=info.get("status_code"),
        deprecated=bool(info.get("deprecated", False)),
        include_in_schema=bool(info.get("include_in_schema", True)),
        response_model=info.get("response_model"),
        responses=info.get("responses"),
        summary=info.get("summary"),
        description=info.get("description"),
        operation_id=info.get("operation_id"),
    )
    auth_required = bool(info.get("auth_required", getattr(route, "auth_required", False)))
    return info.get("name") or "", list(tags) if tags else [], auth_required, meta


def _register_auth_scheme(app: Any, openapi: OpenAPI) -> None:
    """Names the app's authentication in the document, as Robyn's configure_authentication
    does: BearerAuth for a bearer token getter, else the Authorization header as an API key."""
    handler = getattr(app, "authentication_handler", None)
    if handler is None or openapi._security_scheme_names:
        return
    scheme = getattr(getattr(handler, "token_getter", None), "scheme", "") or ""
    if scheme.lower().startswith("bearer"):
        openapi.add_security_scheme("BearerAuth", {"type": "http", "scheme": "bearer"})
    else:
        openapi.add_security_scheme("ApiKeyAuth", {"type": "apiKey", "in": "header", "name": "Authorization"})


def install(app: Any) -> None:
    """Documents every route of `app._routes` in `app.openapi` and registers `GET /openapi.json`
    and `GET /docs` (const routes, left out of the document). Does nothing when the app's
    config disables OpenAPI. A path the app already serves itself is left to the app's handler.
    """
    config = getattr(app, "config", None)
    if getattr(config, "disable_openapi", False):
        return
    openapi = getattr(app, "openapi", None)
    if openapi is None:
        openapi = app.openapi = OpenAPI()
    routes = list(getattr(app, "_routes", ()))
    taken = {(route.method, route.path) for route in routes}
    if not openapi.openapi_file_override:
        _register_auth_scheme(app, openapi)
        for route in routes:
            if route.method == "GET" and route.path in ("/openapi.json", "/docs") \
                    and route.handler in (openapi.get_openapi_config, openapi.get_openapi_docs_page):
                continue
            summary, tags, auth_required, meta = _meta_of(route)
            try:
                openapi.add_openapi_path_obj(route.method.lower(), route.path, summary, tags, route.handler,
                                             auth_required=auth_required, meta=meta)
            except Exception as exc:  # a handler the document cannot describe must not stop the app
                _logger.warning("OpenAPI: cannot document %s %s: %s", route.method, route.path, exc)
        openapi.prune_empty_components()
    for path, handler in (("/openapi.json", openapi.get_openapi_config), ("/docs", openapi.get_openapi_docs_page)):
        if ("GET", path) in taken:
            continue
        app.add_route("GET", path, handler, is_const=True)


# Our own page (not Robyn's file), loading Swagger UI 5 from unpkg as Robyn's /docs does.
_DOCS_PAGE = f"""<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>API documentation</title>
  <link rel="stylesheet" href="https://unpkg.com/swagger-ui-dist@{SWAGGER_UI_VERSION}/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="https://unpkg.com/swagger-ui-dist@{SWAGGER_UI_VERSION}/swagger-ui-bundle.js"></script>
  <script src="https://unpkg.com/swagger-ui-dist@{SWAGGER_UI_VERSION}/swagger-ui-standalone-preset.js"></script>
  <script>
    window.addEventListener("load", function () {{
      window.ui = SwaggerUIBundle({{
        url: "/openapi.json",
        dom_id: "#swagger-ui",
        deepLinking: true,
        presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
        layout: "StandaloneLayout",
      }});
    }});
  </script>
</body>
</html>
"""
