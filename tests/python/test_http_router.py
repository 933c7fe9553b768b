"""The C router through real requests, and route registration errors (in-process)."""

from __future__ import annotations

import re

import httpx
import pytest


# ---- matching, over HTTP --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/files/static", "static"),  # static beats parameter and catch-all
        ("/files/static/", "static"),
        ("/files/other", {"param": "other"}),  # parameter beats catch-all
        ("/files/other/", {"param": "other"}),
        ("/files/x/meta", {"meta": "x"}),  # a longer static tail under a parameter
        ("/files/a/b/c", {"rest": "a/b/c"}),  # only the catch-all takes several segments
        ("/files/static/deeper", {"rest": "static/deeper"}),
        ("/files/x/meta/more", {"rest": "x/meta/more"}),
        ("/files", {"rest": ""}),  # catch-all matching an empty rest
        ("/files/", {"rest": ""}),
        ("/deep/b", "deep-b"),
        ("/deep/b/c", {"x": "b", "leaf": "c"}),  # backtracks from static "b" to ":x"
        ("/deep/q/c", {"x": "q", "leaf": "c"}),
        ("/everything", "exact"),  # an exact route beats a catch-all with an empty rest
        ("/everything/", "exact"),
        ("/everything/one", {"path": "one"}),
        ("/everything/one/two/three.txt", {"path": "one/two/three.txt"}),
        ("//users///42//", {"user": {"id": "42"}}),  # repeated slashes are separators
        ("/users/a%20b", {"user": {"id": "a b"}}),  # parameters are decoded
        ("/users/caf%C3%A9", {"user": {"id": "caf\u00e9"}}),
    ],
)
def test_route_precedence_and_normalisation(main_server, path, expected):
    response = httpx.get(main_server.url(path))
    assert response.status_code == 200, response.text
    if isinstance(expected, str):
        assert response.text == expected
    else:
        assert response.json() == expected


@pytest.mark.parametrize("path", ["/users", "/users/1/2", "/nope", "/deep/x", "/deep/x/d", "/filesx"])
def test_unmatched_paths_are_404(main_server, path):
    response = httpx.get(main_server.url(path))
    assert response.status_code == 404
    assert response.text == "Not found"


def test_routes_are_case_sensitive(main_server):
    assert httpx.get(main_server.url("/FILES/static")).status_code == 404
    assert httpx.get(main_server.url("/Users/1")).status_code == 404


def test_query_string_is_not_part_of_the_path(main_server):
    response = httpx.get(main_server.url("/files/static?x=/y/z"))
    assert response.status_code == 200
    assert response.text == "static"


def test_each_method_has_its_own_routes(main_server):
    assert httpx.get(main_server.url("/multi")).text == "multi-get"
    assert httpx.put(main_server.url("/multi")).text == "multi-put"
    assert httpx.delete(main_server.url("/multi")).text == "multi-delete"
    assert httpx.post(main_server.url("/post-only")).text == "posted"


# ---- registration errors, in-process ----------------------------------------------------------


def handler():
    return "x"


@pytest.fixture
def app():
    from robyn import Robyn

    return Robyn(__file__)


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("/b//c", "Malformed route pattern '/b//c': empty segment"),
        ("/c/:", "Malformed route pattern '/c/:': empty parameter name"),
        ("/d/*", "Malformed route pattern '/d/*': empty catch-all name"),
        ("/e/*rest/f", "Malformed route pattern '/e/*rest/f': catch-all '*rest' is not the last segment"),
        ("/g/a:b", "Malformed route pattern '/g/a:b': ':' inside segment 'a:b'"),
        ("/g/a*b", "Malformed route pattern '/g/a*b': '*' inside segment 'a*b'"),
        ("/h/:id/:id", "Malformed route pattern '/h/:id/:id': parameter 'id' repeated"),
        ("/h/:id/*id", "Malformed route pattern '/h/:id/*id': parameter 'id' repeated"),
        ("/j/\n", "Malformed route pattern '/j/\\x0a': byte 0x0a at offset 3 is not printable ASCII"),
        ("/j/caf\u00e9", "Malformed route pattern '/j/caf\\xc3\\xa9': byte 0xc3 at offset 6 is not printable ASCII"),
    ],
)
def test_malformed_pattern_raises_value_error_naming_it(app, pattern, message):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        app.get(pattern)(handler)


def test_too_many_parameters(app):
    pattern = "/i/" + "/".join(f":p{i}" for i in range(17))
    with pytest.raises(ValueError, match=f"^Malformed route pattern '{re.escape(pattern)}': more than 16 parameters$"):
        app.get(pattern)(handler)
    app.get("/ok/" + "/".join(f":p{i}" for i in range(16)))(handler)  # 16 is the limit


def test_too_long_pattern(app):
    with pytest.raises(ValueError, match=r"^Malformed route pattern '/a{60,}\.\.\.': longer than 2048 bytes$"):
        app.get("/" + "a" * 3000)(handler)


def test_duplicate_route(app):
    app.get("/a/:x")(handler)
    with pytest.raises(ValueError, match=r"^Route '/a/:x' already exists for GET$"):
        app.get("/a/:x")(handler)


def test_duplicate_written_differently(app):
    app.get("/a/:x")(handler)
    with pytest.raises(ValueError, match=r"^Route 'a/:x/' duplicates '/a/:x' for GET$"):
        app.get("a/:x/")(handler)


def test_conflicting_parameter_names(app):
    app.get("/a/:x")(handler)
    with pytest.raises(ValueError, match=r"^Route '/a/:y' conflicts with '/a/:x' for GET$"):
        app.get("/a/:y")(handler)


def test_conflicting_catch_all_names(app):
    app.get("/k/*r")(handler)
    with pytest.raises(ValueError, match=r"^Route '/k/\*s' conflicts with '/k/\*r' for GET$"):
        app.get("/k/*s")(handler)


def test_same_pattern_for_other_methods_and_shapes_is_fine(app):
    app.get("/a/:x")(handler)
    app.post("/a/:y")(handler)  # another method: another table
    app.get("/a/static")(handler)
    app.get("/a/*rest")(handler)
    app.get("/a/:x/more")(handler)
    app.get("/")(handler)
    with pytest.raises(ValueError, match=r"^Route '' duplicates '/' for GET$"):
        app.get("")(handler)


def test_failed_registration_leaves_the_router_unchanged(app):
    app.get("/a/:x")(handler)
    with pytest.raises(ValueError):
        app.get("/a/:y")(handler)
    app.get("/b/:y")(handler)  # later registrations still work
    with pytest.raises(ValueError, match=r"^Route '/b/:y' already exists for GET$"):
        app.get("/b/:y")(handler)


def test_unknown_method(app):
    with pytest.raises(ValueError, match=r"^unknown HTTP method 'BREW' for route '/x'$"):
        app.add_route("BREW", "/x", handler)
