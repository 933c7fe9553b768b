"""Unit tests of robyn/ws.py's pieces that need no server: how handler parameters are bound
(Robyn's rules, through robyn.injection), the awaitable broadcast count, close codes, and
what a callback's return value sends.

`from __future__ import annotations` makes every annotation here a string to be resolved.
"""

from __future__ import annotations

import asyncio
import datetime
import json
from typing import Any, Optional

import pytest
from fakes import FakeJob

from robyn.datastructures import QueryParams
from robyn.exceptions import QueryParamValidationError
from robyn.request import Request
from robyn.responses import Response
from robyn.ws import Reached, WebSocket, _as_message, _Binder, _close_code_error


class FakeSocket:
    """What _Binder reads of a WebSocket: its handshake request."""

    def __init__(self, query: list[tuple[str, str]] = (), path_params: dict[str, str] | None = None) -> None:
        self.request = Request.from_job(FakeJob(query=list(query), path_params=path_params or {}))


def bound(fn, ws: FakeSocket, path_params: list[str] = (), dependencies: dict[str, Any] | None = None) -> Any:
    call = _Binder(fn, list(path_params), dependencies).bind(ws)
    result = call()
    return asyncio.run(result) if asyncio.iscoroutine(result) else result


def test_no_parameters_is_called_bare() -> None:
    def greet():
        return "hi"

    binder = _Binder(greet, [], None)
    assert binder.bind(FakeSocket()) is greet and not binder.is_async


def test_the_first_parameter_is_the_socket_whatever_its_name_or_annotation() -> None:
    ws = FakeSocket()

    def named_request(request: Request):
        return request

    async def annotated(websocket: WebSocket):
        return websocket

    def keyword_only(*, ws):
        return ws

    assert bound(named_request, ws) is ws
    assert bound(annotated, ws) is ws and _Binder(annotated, [], None).is_async
    assert bound(keyword_only, ws) is ws


def test_only_var_keyword_gets_the_query_and_no_socket() -> None:
    def leftovers(**params):
        return params

    assert bound(leftovers, FakeSocket([("a", "1"), ("b", "x")])) == {"a": "1", "b": "x"}


def test_typed_query_and_path_parameters_defaults_and_optional() -> None:
    def handler(websocket, room: str, page: int = 1, ratio: float = 0.5, live: bool = False,
                tags: list[int] = None, note: Optional[str] = None, item: int = 0):
        return websocket, room, page, ratio, live, tags, note, item

    ws = FakeSocket([("room", "chat"), ("page", "5"), ("live", "YES"), ("tags", "1"), ("tags", "2")],
                    {"item": "9"})
    assert bound(handler, ws, ["item"]) == (ws, "chat", 5, 0.5, True, [1, 2], None, 9)


def test_query_params_by_name_and_by_annotation() -> None:
    def handler(websocket, query_params, qp: QueryParams):
        return query_params.get("x"), qp.get("x")

    assert bound(handler, FakeSocket([("x", "1")])) == ("1", "1")


def test_dependencies_are_the_live_dicts() -> None:
    deps: dict[str, dict[str, Any]] = {"global": {}, "router": {}}

    def handler(websocket, global_dependencies, router_dependencies):
        return global_dependencies.get("G"), router_dependencies.get("R")

    binder = _Binder(handler, [], deps)
    deps["global"]["G"] = "global value"  # injected after registration, as apps do
    deps["router"]["R"] = "router value"
    assert binder.bind(FakeSocket())() == ("global value", "router value")


@pytest.mark.parametrize(("query", "detail"), [
    ([], "Missing required parameter: 'count'"),
    ([("count", "x")], "Invalid value 'x' for parameter 'count': expected int"),
    ([("count", "1"), ("flag", "perhaps")], "Invalid value 'perhaps' for parameter 'flag': expected bool"),
])
def test_parameters_that_cannot_be_filled(query: list[tuple[str, str]], detail: str) -> None:
    def handler(websocket, count: int, flag: bool = False):
        return count

    with pytest.raises(QueryParamValidationError) as info:
        _Binder(handler, [], None).bind(FakeSocket(query))
    assert info.value.detail == detail


def test_reached_is_an_int_and_awaitable() -> None:
    reached = Reached(3)
    assert isinstance(reached, int) and reached == 3 and reached + 1 == 4
    assert json.dumps({"n": reached}) == '{"n": 3}'

    async def awaited() -> int:
        return await reached

    result = asyncio.run(awaited())
    assert result == 3 and isinstance(result, Reached)


@pytest.mark.parametrize(("code", "reason", "error"), [
    (1000, "", None),
    (1001, "going", None),
    (1003, "", None),
    (1004, "", "1004 is not a close code a server may send"),
    (1005, "", "1005 is not a close code a server may send"),
    (1006, "", "1006 is not a close code a server may send"),
    (1014, "", None),
    (1015, "", "1015 is not a close code a server may send"),
    (999, "", "999 is not a close code a server may send"),
    (2999, "", "2999 is not a close code a server may send"),
    (3000, "", None),
    (4999, "x" * 123, None),
    (5000, "", "5000 is not a close code a server may send"),
    (4000, "é" * 62, "a close reason is at most 123 bytes of UTF-8"),
    (4000, b"bytes", "a close reason must be str, not bytes"),
    (True, "", "a close code must be an int, not True"),
    ("1000", "", "a close code must be an int, not '1000'"),
])
def test_close_codes(code: Any, reason: Any, error: str | None) -> None:
    found = _close_code_error(code, reason)
    assert (None if found is None else str(found)) == error


@pytest.mark.parametrize(("value", "message"), [
    ("text", "text"),
    ("", ""),
    (b"\x00raw", b"\x00raw"),
    (bytearray(b"ab"), b"ab"),
    (Response(200, {}, "body"), "body"),
    ({"a": [1, None], "é": datetime.date(2024, 1, 2)}, '{"a":[1,null],"é":"2024-01-02"}'),
    (7, "7"),
])
def test_what_a_callback_return_value_sends(value: Any, message: str | bytes) -> None:
    assert _as_message(value) == message
