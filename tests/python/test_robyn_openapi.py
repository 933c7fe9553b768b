"""/openapi.json and /docs through a real server: what install() documents from the routes,
their decorator keywords and their handlers' types. Needs the Route metadata and the call to
robyn.openapi.install in app.start() (issue 9, seams 1 and 2)."""

from __future__ import annotations

import httpx
import pytest


@pytest.fixture(scope="module")
def server(module_app):
    return module_app("robyn_openapi_app")


@pytest.fixture(scope="module")
def spec(server):
    response = httpx.get(server.url("/openapi.json"))
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    return response.json()


def test_document_shape(spec):
    assert spec["openapi"] == "3.1.0"
    assert spec["info"]["title"] == "Robyn API"
    assert (spec["servers"], spec["externalDocs"]) == ([], None)
    assert set(spec["paths"]) == {"/", "/users/{id}", "/users", "/items", "/temperature", "/notes", "/files/{rest}",
                                  "/sub/thing"}


def test_path_and_query_parameters_from_types(spec):
    operation = spec["paths"]["/users/{id}"]["get"]
    assert (operation["summary"], operation["description"], operation["tags"]) == ("Get a user", "Returns one user.", ["users"])
    assert operation["parameters"] == [
        {"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}},
        {"name": "verbose", "in": "query", "required": False, "schema": {"type": "boolean", "default": False}},
        {"name": "fields", "in": "query", "required": False,
         "schema": {"type": "array", "items": {"title": "Fields_item", "type": "string"}}},
    ]
    assert spec["paths"]["/files/{rest}"]["get"]["parameters"] == [
        {"name": "rest", "in": "path", "required": True, "schema": {"type": "string"}}]


def test_pydantic_body_status_code_and_responses(spec):
    operation = spec["paths"]["/users"]["post"]
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    assert (body["title"], body["required"]) == ("User", ["name", "address"])
    assert body["properties"]["address"] == {"$ref": "#/components/schemas/Address"}
    assert spec["components"]["schemas"]["Address"]["title"] == "Address"
    assert set(operation["responses"]) == {"201", "409", "422"}
    assert operation["responses"]["201"]["content"]["application/json"]["schema"]["title"] == "User"
    assert operation["responses"]["409"] == {"description": "Already exists"}
    assert operation["responses"]["422"]["content"]["application/json"]["schema"]["properties"] == {
        "id": {"title": "Id", "type": "integer"}}


def test_typeddict_body_and_queryparams_subclass(spec):
    operation = spec["paths"]["/items"]["post"]
    assert operation["requestBody"]["content"]["application/json"]["schema"] == {
        "type": "object",
        "properties": {"name": {"title": "Name", "type": "string"}, "value": {"title": "Value", "type": "integer"}},
    }
    assert operation["parameters"] == [{"name": "required", "in": "query", "required": False, "schema": {"type": "boolean"}}]
    assert operation["description"] == "No description provided"


def test_jsonbody_body_and_datetime_return(spec):
    operation = spec["paths"]["/temperature"]["post"]
    assert operation["requestBody"]["content"]["application/json"]["schema"]["properties"] == {
        "fahrenheit": {"title": "Fahrenheit", "type": "number"}}
    assert operation["responses"]["200"]["content"]["application/json"]["schema"] == {
        "title": "Response object", "type": "string", "format": "date-time"}


def test_body_subclass_deprecated_and_text_return(spec):
    operation = spec["paths"]["/notes"]["post"]
    assert operation["deprecated"] is True
    assert operation["requestBody"]["content"]["application/json"]["schema"]["properties"]["tags"] == {
        "title": "Tags", "type": "array", "items": {"title": "Tags_item", "type": "string"}}
    assert operation["responses"]["200"]["content"] == {"text/plain": {"schema": {"type": "string"}}}


def test_hidden_and_own_routes_are_left_out(spec):
    assert "/hidden" not in spec["paths"]
    assert "/openapi.json" not in spec["paths"] and "/docs" not in spec["paths"]


def test_subrouter_route_has_its_full_path(spec):
    operation = spec["paths"]["/sub/thing"]["post"]
    assert (operation["tags"], operation["description"]) == (["sub"], "A subrouter route.")


def test_docs_page(server):
    response = httpx.get(server.url("/docs"))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert 'url: "/openapi.json"' in response.text
    assert "https://unpkg.com/swagger-ui-dist@5/swagger-ui-bundle.js" in response.text
