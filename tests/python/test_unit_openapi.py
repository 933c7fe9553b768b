"""robyn.openapi against a fake app: a list of routes with seam 1's attributes."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Literal, Optional, TypedDict

import pytest
from pydantic import BaseModel

from robyn.datastructures import QueryParams
from robyn.openapi import Contact, ExternalDocumentation, OpenAPI, OpenAPIInfo, Server, for_app, install
from robyn.responses import Response
from robyn.types import Body, JsonBody


class FakeRoute:
    def __init__(self, method: str, path: str, handler: Any, **openapi: Any) -> None:
        self.method, self.path, self.handler, self.const = method, path, handler, False
        self.openapi = {"name": "", "tags": [], "include_in_schema": True, "status_code": None, "responses": None,
                        "deprecated": False, "auth_required": False, **openapi}


class FakeApp:
    def __init__(self, *routes: FakeRoute, **attributes: Any) -> None:
        self._routes = list(routes)
        self.openapi: OpenAPI | None = OpenAPI()
        self.config = None
        self.added: list[tuple[str, str, bool]] = []
        self.__dict__.update(attributes)

    def add_route(self, method: str, path: str, handler: Any, is_const: bool = False) -> None:
        self.added.append((method, path, is_const))
        self._routes.append(FakeRoute(method, path, handler))


def spec_of(*routes: FakeRoute, **attributes: Any) -> dict[str, Any]:
    app = FakeApp(*routes, **attributes)
    install(app)
    assert app.openapi is not None
    return app.openapi.openapi_spec


def test_install_adds_the_two_const_routes_and_serves_the_document() -> None:
    app = FakeApp(FakeRoute("GET", "/", lambda: "hi"))
    install(app)
    assert app.added == [("GET", "/openapi.json", True), ("GET", "/docs", True)]
    assert app.openapi is not None
    assert app.openapi.get_openapi_config() is app.openapi.openapi_spec
    page = app.openapi.get_openapi_docs_page()
    assert isinstance(page, Response) and page.headers.get("content-type") == "text/html"
    install(app)  # twice: the routes exist, nothing is added or documented twice
    assert len(app.added) == 2
    assert set(app.openapi.openapi_spec["paths"]) == {"/"}


def test_a_route_the_app_serves_itself_is_kept() -> None:
    app = FakeApp(FakeRoute("GET", "/docs", lambda: "my docs"))
    install(app)
    assert app.added == [("GET", "/openapi.json", True)]


def test_disabled_by_config() -> None:
    app = FakeApp(FakeRoute("GET", "/", lambda: "hi"), config=SimpleNamespace(disable_openapi=True))
    install(app)
    assert app.added == []


def test_defaults_as_robyn() -> None:
    def handler() -> None: ...

    operation = spec_of(FakeRoute("GET", "/", handler, tags=["get"]))["paths"]["/"]["get"]
    assert operation == {
        "summary": "", "description": "No description provided", "parameters": [], "tags": ["get"],
        "responses": {"200": {"description": "Successful Response", "content": {"text/plain": {"schema": {}}}}},
    }


def test_info_servers_and_external_docs() -> None:
    info = OpenAPIInfo(title="T", version="2", contact=Contact(name="me"), servers=[Server("https://x", "prod")],
                       externalDocs=ExternalDocumentation(url="https://docs"))
    spec = OpenAPI(info=info).openapi_spec
    assert spec["info"]["title"] == "T" and spec["info"]["contact"] == {"name": "me", "url": None, "email": None}
    assert spec["servers"] == [{"url": "https://x", "description": "prod"}]
    assert spec["externalDocs"] == {"description": None, "url": "https://docs"}


def test_empty_components_are_pruned() -> None:
    assert spec_of(FakeRoute("GET", "/", lambda: "x"))["components"] == {}


class Search(QueryParams):
    required: bool
    page: int


class Payload(TypedDict):
    name: str
    kind: Literal["a", "b"]


class Model(BaseModel):
    name: str
    size: int = 1


def test_parameters_and_bodies() -> None:
    def handler(request, search: Search, payload: Payload, id: int, q: str, limit: Optional[int] = None,
                global_dependencies=None) -> list[Model]:
        """Doc."""

    operation = spec_of(FakeRoute("POST", "/things/:id", handler))["paths"]["/things/{id}"]["post"]
    assert operation["parameters"] == [
        {"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}},
        {"name": "required", "in": "query", "required": False, "schema": {"type": "boolean"}},
        {"name": "page", "in": "query", "required": False, "schema": {"type": "integer"}},
        {"name": "q", "in": "query", "required": True, "schema": {"type": "string"}},
        {"name": "limit", "in": "query", "required": False, "schema": {"type": "integer"}},
    ]
    assert operation["requestBody"]["content"]["application/json"]["schema"]["properties"]["kind"] == {
        "title": "Kind", "enum": ["a", "b"], "type": "string"}
    returned = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert returned["type"] == "array" and returned["items"]["title"] == "Model"
    assert returned["items"]["properties"]["size"] == {"default": 1, "title": "Size", "type": "integer"}


def test_bare_jsonbody_and_body_default_style() -> None:
    class Old(Body):
        text: str

    def bare(data: JsonBody) -> Response: ...
    def old(body=Old): ...

    spec = spec_of(FakeRoute("POST", "/bare", bare), FakeRoute("POST", "/old", old))
    assert spec["paths"]["/bare"]["post"]["requestBody"] == {
        "content": {"application/json": {"schema": {"type": "object", "properties": {}}}}}
    assert spec["paths"]["/bare"]["post"]["responses"]["200"]["content"] == {"text/plain": {"schema": {}}}
    assert spec["paths"]["/old"]["post"]["requestBody"]["content"]["application/json"]["schema"]["properties"] == {
        "text": {"title": "Text", "type": "string"}}


def test_metadata_keywords() -> None:
    def handler() -> dict: ...

    spec = spec_of(
        FakeRoute("POST", "/made", handler, name="Make", status_code=201, deprecated=True,
                  responses={404: "Missing", "default": {"description": "Other", "model": Model}}),
        FakeRoute("GET", "/gone", handler, include_in_schema=False),
        FakeRoute("GET", "/model", handler, response_model=Model, operation_id="getModel"),
    )
    made = spec["paths"]["/made"]["post"]
    assert (made["summary"], made["deprecated"], list(made["responses"])) == ("Make", True, ["201", "404", "default"])
    assert made["responses"]["default"]["content"]["application/json"]["schema"]["title"] == "Model"
    assert "/gone" not in spec["paths"]
    model = spec["paths"]["/model"]["get"]
    assert model["operationId"] == "getModel"
    assert model["responses"]["200"]["content"]["application/json"]["schema"]["title"] == "Model"


def test_bad_responses_value_is_logged_and_the_route_skipped(caplog: pytest.LogCaptureFixture) -> None:
    spec = spec_of(FakeRoute("GET", "/bad", lambda: 1, responses={404: 12}))
    assert "/bad" not in spec["paths"]
    assert "OpenAPI: cannot document GET /bad: responses[404] must be a str or a dict, not int" in caplog.text


def test_security_for_auth_required_routes() -> None:
    auth = SimpleNamespace(token_getter=SimpleNamespace(scheme="Bearer"))
    spec = spec_of(FakeRoute("GET", "/me", lambda: 1, auth_required=True), FakeRoute("GET", "/open", lambda: 1),
                   authentication_handler=auth)
    assert spec["components"]["securitySchemes"] == {"BearerAuth": {"type": "http", "scheme": "bearer"}}
    assert spec["paths"]["/me"]["get"]["security"] == [{"BearerAuth": []}]
    assert "security" not in spec["paths"]["/open"]["get"]
    other = spec_of(FakeRoute("GET", "/me", lambda: 1, auth_required=True),
                    authentication_handler=SimpleNamespace(token_getter=None))
    assert other["components"]["securitySchemes"] == {
        "ApiKeyAuth": {"type": "apiKey", "in": "header", "name": "Authorization"}}


def test_no_security_without_a_scheme() -> None:
    spec = spec_of(FakeRoute("GET", "/me", lambda: 1, auth_required=True))
    assert "security" not in spec["paths"]["/me"]["get"]


def test_routes_without_metadata_are_documented() -> None:
    route = SimpleNamespace(method="GET", path="/plain", handler=lambda: 1)  # today's Route: no .openapi
    assert spec_of(route)["paths"]["/plain"]["get"]["tags"] == []  # type: ignore[arg-type]


def test_for_app_reads_the_file_relative_to_the_app(tmp_path: Path) -> None:
    (tmp_path / "custom.json").write_text(json.dumps({"openapi": "3.1.0", "info": {"title": "Mine"}, "paths": {}}))
    openapi = for_app(tmp_path, None, "custom.json")
    assert openapi.openapi_file_override and openapi.openapi_spec["info"]["title"] == "Mine"
    app = FakeApp(FakeRoute("GET", "/", lambda: 1), openapi=openapi)
    install(app)
    assert openapi.openapi_spec["paths"] == {}  # the file is the document: routes are not added
    assert app.added == [("GET", "/openapi.json", True), ("GET", "/docs", True)]


def test_for_app_picks_up_openapi_json_next_to_the_app(tmp_path: Path) -> None:
    assert not for_app(tmp_path).openapi_file_override
    (tmp_path / "openapi.json").write_text('{"openapi": "3.0.0"}')
    assert for_app(tmp_path).openapi_spec == {"openapi": "3.0.0"}


def test_for_app_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        for_app(tmp_path, None, "missing.json")
    (tmp_path / "bad.json").write_text("{nope")
    with pytest.raises(ValueError, match=r"OpenAPI file .*bad.json is not valid JSON"):
        for_app(tmp_path, None, "bad.json")
    (tmp_path / "list.json").write_text("[]")
    with pytest.raises(ValueError, match=r"must hold a JSON object, not list"):
        for_app(tmp_path, None, "list.json")
    with pytest.raises(TypeError, match="Robyn\\(\\) openapi must be a robyn.openapi.OpenAPI, not dict"):
        for_app(tmp_path, {}, None)  # type: ignore[arg-type]
