"""Unit tests of robyn.injection.compile_handler.

This module uses `from __future__ import annotations`, so every handler here has string
annotations that compile_handler must resolve; `plain()` builds handlers with real ones.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import inspect
import logging
import uuid
from typing import Annotated, Any, Literal, Optional, TypedDict, Union

import pytest
from fakes import FakeJob

from robyn.datastructures import Headers, QueryParams
from robyn.exceptions import HTTPException, QueryParamValidationError
from robyn.injection import compile_handler
from robyn.request import Request
from robyn.responses import Response
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
    RequestURL,
    Url,
)


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Item(JsonBody):
    name: str


class ItemDict(TypedDict):
    name: str


class RawBody(Body):
    pass


def run(handler: Any, job: Any = None, path_params: tuple[str, ...] = (), **compile_kwargs: Any) -> Any:
    is_async, call = compile_handler(handler, list(path_params), **compile_kwargs)
    result = call(job if job is not None else FakeJob())
    return asyncio.run(result) if is_async else result


def plain(function: Any, **annotations: Any) -> Any:
    """Gives `function` real (non-string) annotations."""
    function.__annotations__ = annotations
    return function


def expect_400(handler: Any, job: Any, message: str, path_params: tuple[str, ...] = ()) -> None:
    with pytest.raises(QueryParamValidationError) as info:
        run(handler, job, path_params)
    assert type(info.value) is QueryParamValidationError
    assert isinstance(info.value, HTTPException)
    assert info.value.status_code == 400
    assert info.value.detail == message
    assert str(info.value) == message


# --- shapes ------------------------------------------------------------------------------------


def test_zero_parameters_reads_nothing() -> None:
    job = FakeJob()
    is_async, call = compile_handler(lambda: "hi", [])
    assert (is_async, call(job), job.reads) == (False, "hi", {})


def test_request_by_name_and_by_annotation() -> None:
    for handler in (lambda request: request, lambda req: req, lambda r: r):
        assert isinstance(run(handler), Request)

    def annotated(anything: Request) -> Request:
        return anything

    assert isinstance(run(annotated), Request)


def test_call_accepts_an_existing_request() -> None:
    request = Request(FakeJob(query=[("x", "5")]))
    request.method = "PATCH"

    def handler(req: Request, method: str, x: int) -> tuple[Any, ...]:
        return req, method, x

    _, call = compile_handler(handler, [])
    assert call(request) == (request, "PATCH", 5)


def test_one_request_shared_by_all_pieces() -> None:
    job = FakeJob(headers=[("a", "1")], query=[("q", "2")])

    def handler(request: Request, headers: Headers, h2: Headers, query_params: QueryParams, q: int) -> bool:
        assert headers is request.headers is h2
        assert query_params is request.query_params
        return q == 2

    assert run(handler, job)
    assert job.reads == {"headers": 1, "query": 1}


def test_async_handler() -> None:
    async def handler(request: Request, x: int = 1) -> int:
        await asyncio.sleep(0)
        return x

    is_async, call = compile_handler(handler, [])
    assert is_async
    coroutine = call(FakeJob(query=[("x", "7")]))
    assert inspect.iscoroutine(coroutine)
    assert asyncio.run(coroutine) == 7


def test_async_detection_of_partials_methods_and_callables() -> None:
    async def handler(prefix: str, x: str) -> str:
        return prefix + x

    class Handlers:
        async def method(self, x: str) -> str:
            return "m" + x

        async def __call__(self, x: str) -> str:
            return "c" + x

    job = FakeJob(query=[("x", "1")])
    assert run(functools.partial(handler, "p"), job) == "p1"
    assert run(Handlers().method, job) == "m1"
    assert run(Handlers(), job) == "c1"


def test_nothing_is_introspected_per_request(monkeypatch: pytest.MonkeyPatch) -> None:
    def handler(request: Request, x: int, body: str) -> tuple[int, str]:
        return x, body

    _, call = compile_handler(handler, [])

    def forbidden(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("introspection at request time")

    monkeypatch.setattr(inspect, "signature", forbidden)
    monkeypatch.setattr("typing.get_type_hints", forbidden)
    assert call(FakeJob(query=[("x", "3")], body=b"b")) == (3, "b")


def test_positional_only_keyword_only_args_and_kwargs() -> None:
    def handler(request: Request, /, a: int, *args: Any, b: str = "d", **kwargs: str) -> tuple[Any, ...]:
        return a, args, b, kwargs

    job = FakeJob(query=[("a", "1"), ("b", "x"), ("c", "2"), ("c", "3")], path_params={"id": "9", "other": "o"})
    assert run(handler, job, ("id",)) == (1, (), "x", {"c": "3", "id": "9"})


def test_kwargs_path_params_win_over_query() -> None:
    def handler(**kwargs: str) -> dict[str, str]:
        return kwargs

    assert run(handler, FakeJob(query=[("id", "q")], path_params={"id": "p"}), ("id",)) == {"id": "p"}


# --- request parts by annotation and by name ----------------------------------------------------


def full_job() -> FakeJob:
    return FakeJob(
        method="POST",
        path="/items/3",
        query=[("q", "1")],
        headers=[("content-type", "application/x-www-form-urlencoded"), ("x-a", "b")],
        body=b"f=v",
        ip="10.0.0.1",
        host="h",
        path_params={"id": "3"},
    )


def test_parts_by_annotation() -> None:
    def handler(
        a: QueryParams,
        b: Headers,
        c: PathParams,
        d: Method,
        e: Url,
        f: FormData,
        g: Files,
        h: IPAddress,
        i: Identity,
        j: RequestBody,
        k: RawBody,
        m: RequestMethod,
        n: RequestURL,
        o: Optional[Request] = None,
    ) -> tuple[Any, ...]:
        return a.get("q"), b.get("x-a"), c, d, e, f, g, h, i, j, k, m, n.path, isinstance(o, Request)

    assert run(handler, full_job(), ("id",)) == (
        "1",
        "b",
        {"id": "3"},
        "POST",
        Url("http", "h", "/items/3"),
        {"f": "v"},
        {},
        "10.0.0.1",
        None,
        "f=v",
        "f=v",
        "POST",
        "/items/3",
        True,
    )


def test_parts_by_name() -> None:
    def handler(query_params, headers, path_params, body, method, url, ip_addr, identity, form_data, files):  # type: ignore[no-untyped-def]
        return query_params.get("q"), headers.get("x-a"), path_params, body, method, url.path, ip_addr, identity, form_data, files

    assert run(handler, full_job(), ("id",)) == ("1", "b", {"id": "3"}, "f=v", "POST", "/items/3", "10.0.0.1", None, {"f": "v"}, {})


def test_annotation_wins_over_name() -> None:
    def handler(body: Headers, headers: Method) -> tuple[Any, Any]:
        return body, headers

    headers, method = run(handler, full_job())
    assert isinstance(headers, Headers)
    assert method == "POST"


def test_real_annotations_without_future_import() -> None:
    handler = plain(lambda q, x, r: (q.get("x"), x, r.method), q=QueryParams, x=int)
    assert run(handler, FakeJob(query=[("x", "4")])) == ("4", 4, "GET")
    typed = plain(lambda a, b: (a, b), a=Optional[int], b=list[float])
    assert run(typed, FakeJob(query=[("b", "1.5")])) == (None, [1.5])


def test_unresolvable_annotation_falls_back(caplog: pytest.LogCaptureFixture) -> None:
    handler = plain(lambda req, x: (type(req).__name__, x), req="robyn.Request", x="NoSuchType")
    with caplog.at_level(logging.WARNING, logger="robyn.injection"):
        assert run(handler, FakeJob(query=[("x", "v")])) == ("Request", "v")
    assert "Cannot resolve annotation 'NoSuchType' of parameter 'x'" in caplog.text


# --- JSON bodies ---------------------------------------------------------------------------------


def test_json_body_and_typeddict() -> None:
    def handler(item: Item, other: ItemDict) -> tuple[Any, Any]:
        return item, other

    assert run(handler, FakeJob(body=b'{"name": "x"}')) == ({"name": "x"}, {"name": "x"})


def test_invalid_json_body_answers_400_without_calling_the_handler() -> None:
    called = []

    def handler(item: Item) -> None:
        called.append(item)

    for function in (handler, plain(lambda item: called.append(item), item=ItemDict)):
        response = run(function, FakeJob(body=b"{oops"))
        assert isinstance(response, Response)
        assert response.status_code == 400
        assert response.headers.get("content-type") == "application/json"
        assert response.description == (
            '{"error":"Invalid JSON body: Invalid JSON: Expecting property name enclosed in double quotes: '
            'line 1 column 2 (char 1)"}'
        )
    assert called == []


def test_invalid_json_body_for_an_async_handler() -> None:
    async def handler(request: Request, item: Item) -> str:
        return "called"

    is_async, call = compile_handler(handler, [])
    coroutine = call(FakeJob(body=b""))
    assert is_async and inspect.iscoroutine(coroutine)
    response = asyncio.run(coroutine)
    assert isinstance(response, Response)
    assert response.status_code == 400
    assert run(handler, FakeJob(body=b"[]")) == "called"


def test_handler_errors_are_not_swallowed_when_json_is_injected() -> None:
    def handler(item: Item) -> None:
        raise KeyError("boom")

    with pytest.raises(KeyError):
        run(handler, FakeJob(body=b"{}"))


# --- dependencies --------------------------------------------------------------------------------


def test_dependencies() -> None:
    global_deps: dict[str, Any] = {"db": "database"}
    router_deps: dict[str, Any] = {}

    def handler(request: Request, global_dependencies: dict[str, Any], router_dependencies: dict[str, Any]) -> tuple[Any, Any]:
        return global_dependencies, router_dependencies

    _, call = compile_handler(handler, [], {"global_dependencies": global_deps, "router_dependencies": router_deps})
    router_deps["cache"] = "later"  # injected after registration: still seen
    assert call(FakeJob()) == ({"db": "database"}, {"cache": "later"})
    assert call(FakeJob())[0] is global_deps


def test_dependencies_under_short_keys() -> None:
    deps: dict[str, dict[str, Any]] = {"global": {"g": 1}, "router": {"r": 2}}

    def handler(global_dependencies: dict[str, Any], router_dependencies: dict[str, Any]) -> tuple[Any, Any]:
        return global_dependencies, router_dependencies

    assert run(handler, FakeJob(), (), dependencies=deps) == ({"g": 1}, {"r": 2})


def test_dependencies_without_a_request_read_nothing_and_default_to_empty() -> None:
    job = FakeJob()
    _, call = compile_handler(lambda global_dependencies, router_dependencies=None: (global_dependencies, router_dependencies), [])
    assert call(job) == ({}, {})
    assert job.reads == {}


# --- path and query parameters -------------------------------------------------------------------


def test_path_parameter_is_coerced() -> None:
    def handler(id: int) -> int:
        return id

    job = FakeJob(path_params={"id": "42"}, query=[("id", "7")])
    assert run(handler, job, ("id",)) == 42
    assert job.reads == {"path_params": 1}


def test_query_is_used_when_the_route_has_no_such_path_parameter() -> None:
    def handler(id: int) -> int:
        return id

    assert run(handler, FakeJob(path_params={"id": "42"}, query=[("id", "7")])) == 7
    assert run(handler, FakeJob(path_params={}, query=[("id", "7")]), ("id",)) == 7


def test_query_uses_the_last_value_and_unannotated_is_str() -> None:
    assert run(lambda name: name, FakeJob(query=[("name", "a"), ("name", "b")])) == "b"
    assert run(lambda name: name, FakeJob(query=[("name", "")])) == ""


@pytest.mark.parametrize(
    ("annotation", "raw", "expected"),
    [
        (int, "-12", -12),
        (float, "2.5", 2.5),
        (str, "x", "x"),
        (Any, "x", "x"),
        (bool, "TRUE", True),
        (bool, "yes", True),
        (bool, "1", True),
        (bool, "On", True),
        (bool, "false", False),
        (bool, "No", False),
        (bool, "0", False),
        (bool, "off", False),
        (bool, "", False),
        (Optional[int], "3", 3),
        (int | None, "3", 3),
        (Annotated[int, "meta"], "5", 5),
        (Literal["a", "b"], "b", "b"),
        (Literal[1, 2], "2", 2),
        (Union[int, float], "1.5", 1.5),
        (int | str, "x", "x"),
        (Color, "red", Color.RED),
        (uuid.UUID, "00000000-0000-0000-0000-000000000001", uuid.UUID(int=1)),
    ],
)
def test_coercion(annotation: Any, raw: str, expected: Any) -> None:
    value = run(plain(lambda x: x, x=annotation), FakeJob(query=[("x", raw)]))
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize(
    ("annotation", "raw", "expected_name"),
    [
        (int, "abc", "int"),
        (int, "", "int"),
        (float, "1.2.3", "float"),
        (bool, "maybe", "bool"),
        (Optional[int], "x", "int"),
        (Literal["a", "b"], "c", "Literal['a', 'b']"),
        (Union[int, float], "x", "Union[int, float]"),
        (Color, "green", "Color"),
    ],
)
def test_invalid_values(annotation: Any, raw: str, expected_name: str) -> None:
    expect_400(plain(lambda x: x, x=annotation), FakeJob(query=[("x", raw)]), f"Invalid value '{raw}' for parameter 'x': expected {expected_name}")


def test_invalid_path_parameter() -> None:
    def handler(id: int) -> int:
        return id

    expect_400(handler, FakeJob(path_params={"id": "abc"}), "Invalid value 'abc' for parameter 'id': expected int", ("id",))


def test_missing_required() -> None:
    expect_400(plain(lambda x: x, x=int), FakeJob(), "Missing required parameter: 'x'")
    expect_400(lambda x: x, FakeJob(query=[("y", "1")]), "Missing required parameter: 'x'")
    expect_400(plain(lambda x: x, x=list[int]), FakeJob(), "Missing required parameter: 'x'")

    def path(id: int) -> int:
        return id

    expect_400(path, FakeJob(), "Missing required parameter: 'id'", ("id",))


def test_defaults_and_optional() -> None:
    def handler(a: int = 5, b: Optional[str] = None, c: int | None = None, d: list[int] | None = None) -> tuple[Any, ...]:
        return a, b, c, d

    assert run(handler, FakeJob()) == (5, None, None, None)
    assert run(plain(lambda x: x, x=Optional[int]), FakeJob()) is None
    assert run(handler, FakeJob(query=[("a", "1"), ("b", "s"), ("c", "2"), ("d", "3")])) == (1, "s", 2, [3])


def test_lists_take_every_value() -> None:
    def handler(tags: list[str], ids: list[int] = [], plain_list: list = []) -> tuple[Any, ...]:  # noqa: B006
        return tags, ids, plain_list

    job = FakeJob(query=[("tags", "a"), ("ids", "1"), ("tags", "b"), ("ids", "2"), ("plain_list", "z")])
    assert run(handler, job) == (["a", "b"], [1, 2], ["z"])
    assert run(handler, FakeJob(query=[("tags", "x")])) == (["x"], [], [])


def test_list_from_a_path_parameter() -> None:
    def handler(id: list[int]) -> list[int]:
        return id

    assert run(handler, FakeJob(path_params={"id": "4"}), ("id",)) == [4]


def test_invalid_list_element() -> None:
    def handler(ids: list[int]) -> list[int]:
        return ids

    expect_400(handler, FakeJob(query=[("ids", "1"), ("ids", "x")]), "Invalid value 'x' for parameter 'ids': expected int")


def test_validation_error_is_raised_before_an_async_handler_runs() -> None:
    async def handler(x: int) -> int:
        return x

    _, call = compile_handler(handler, [])
    with pytest.raises(QueryParamValidationError) as info:
        call(FakeJob())
    assert type(info.value) is QueryParamValidationError
    assert str(info.value) == "Missing required parameter: 'x'"
