"""Unit tests of robyn.datastructures: Headers and QueryParams."""

from __future__ import annotations

from robyn.datastructures import Headers, QueryParams


class TestHeaders:
    def test_constructor_lowercases_names_and_expands_lists(self) -> None:
        headers = Headers({"Content-Type": "text/html", "X-Many": ["a", "b"], "X-Num": 5})
        assert headers.get_headers() == {"content-type": ["text/html"], "x-many": ["a", "b"], "x-num": ["5"]}

    def test_constructor_accepts_none_and_nothing(self) -> None:
        assert Headers(None).is_empty()
        assert Headers().is_empty()
        assert Headers({}).is_empty()

    def test_get_is_case_insensitive_and_returns_last_value(self) -> None:
        headers = Headers.from_pairs([("x-a", "1"), ("x-a", "2")])
        assert headers.get("X-A") == "2"
        assert headers["x-a"] == "2"

    def test_missing_key_gives_none_or_default(self) -> None:
        headers = Headers()
        assert headers.get("nope") is None
        assert headers.get("nope", "d") == "d"
        assert headers["nope"] is None

    def test_set_replaces_every_value(self) -> None:
        headers = Headers.from_pairs([("x", "1"), ("x", "2")])
        headers.set("X", "3")
        assert headers.get_all("x") == ["3"]
        headers["X"] = "4"
        assert headers.get_all("x") == ["4"]

    def test_append_keeps_existing_values(self) -> None:
        headers = Headers({"Set-Cookie": "a=1"})
        headers.append("set-cookie", "b=2")
        assert headers.get_all("SET-COOKIE") == ["a=1", "b=2"]
        assert headers.get_all("missing") == []

    def test_get_all_is_a_copy(self) -> None:
        headers = Headers({"x": "1"})
        headers.get_all("x").append("2")
        assert headers.get_all("x") == ["1"]

    def test_views(self) -> None:
        headers = Headers.from_pairs([("a", "1"), ("b", "2"), ("a", "3")])
        assert headers.keys() == ["a", "b"]
        assert headers.values() == ["3", "2"]
        assert headers.items() == [("a", "3"), ("b", "2")]
        assert headers.multi_items() == [("a", "1"), ("a", "3"), ("b", "2")]
        assert headers.to_dict() == {"a": "1, 3", "b": "2"}
        assert len(headers) == 2
        assert list(headers) == ["a", "b"]

    def test_contains(self) -> None:
        headers = Headers({"Accept": "*/*"})
        assert headers.contains("ACCEPT")
        assert "accept" in headers
        assert "Accept" in headers
        assert "other" not in headers
        assert 5 not in headers

    def test_populate_from_dict_appends(self) -> None:
        headers = Headers({"a": "1"})
        headers.populate_from_dict({"A": "2", "b": ["3", "4"]})
        assert headers.multi_items() == [("a", "1"), ("a", "2"), ("b", "3"), ("b", "4")]

    def test_remove_and_del(self) -> None:
        headers = Headers({"a": "1", "b": "2"})
        headers.remove("A")
        del headers["b"]
        headers.remove("absent")
        assert headers.is_empty()

    def test_equality_ignores_value_order_and_name_case(self) -> None:
        assert Headers.from_pairs([("a", "1"), ("a", "2")]) == Headers({"A": ["2", "1"]})
        assert Headers({"a": "1"}) != Headers({"a": "2"})
        assert Headers({"a": "1"}) != Headers({"b": "1"})
        assert Headers({"a": ["1", "1"]}) != Headers({"a": ["1", "2"]})
        assert Headers() == Headers({})
        assert Headers({"a": "1"}) != {"a": "1"}

    def test_repr(self) -> None:
        assert repr(Headers({"A": "1"})) == "Headers({'a': ['1']})"

    def test_from_pairs_accepts_any_iterable(self) -> None:
        headers = Headers.from_pairs(iter([("a", "1"), ("a", "2")]))
        assert headers.get_all("a") == ["1", "2"]
        assert Headers.from_pairs(()).is_empty()

    def test_mutations_after_from_pairs_keep_both_views_in_step(self) -> None:
        headers = Headers.from_pairs([("a", "1"), ("b", "2"), ("a", "3")])
        headers.append("B", "4")
        assert headers.items() == [("a", "3"), ("b", "4")]
        assert headers.multi_items() == [("a", "1"), ("a", "3"), ("b", "2"), ("b", "4")]
        headers.set("a", "5")
        headers.remove("b")
        headers.append("c", "6")
        assert headers.items() == [("a", "5"), ("c", "6")]
        assert headers.multi_items() == [("a", "5"), ("c", "6")]

    def test_empty_list_value_adds_nothing(self) -> None:
        headers = Headers({"a": []})
        assert headers.is_empty()
        assert headers.get("a") is None


class TestQueryParams:
    def make(self) -> QueryParams:
        return QueryParams.from_pairs([("a", "1"), ("b", ""), ("a", "2")])

    def test_get_returns_last_value(self) -> None:
        params = self.make()
        assert params.get("a") == "2"
        assert params.get("b") == ""

    def test_get_missing(self) -> None:
        params = self.make()
        assert params.get("z") is None
        assert params.get("z", "d") == "d"

    def test_get_first_and_get_all(self) -> None:
        params = self.make()
        assert params.get_first("a") == "1"
        assert params.get_first("z") is None
        assert params.get_all("a") == ["1", "2"]
        assert params.get_all("z") is None

    def test_keys_are_case_sensitive(self) -> None:
        params = self.make()
        assert params.get("A") is None
        assert not params.contains("A")

    def test_set_appends(self) -> None:
        params = QueryParams()
        assert params.empty()
        params.set("k", "1")
        params.set("k", "2")
        assert not params.empty()
        assert params.get_all("k") == ["1", "2"]
        assert params.get("k") == "2"

    def test_contains(self) -> None:
        params = self.make()
        assert params.contains("a")
        assert "b" in params
        assert "z" not in params

    def test_views(self) -> None:
        params = self.make()
        assert params.keys() == ["a", "b"]
        assert params.values() == ["2", ""]
        assert params.items() == [("a", "2"), ("b", "")]
        assert params.multi_items() == [("a", "1"), ("a", "2"), ("b", "")]

    def test_to_dict_maps_keys_to_value_lists_and_copies(self) -> None:
        params = self.make()
        as_dict = params.to_dict()
        assert as_dict == {"a": ["1", "2"], "b": [""]}
        as_dict["a"].append("3")
        assert params.get_all("a") == ["1", "2"]

    def test_extend(self) -> None:
        params = QueryParams.from_pairs([("a", "1")])
        params.extend(QueryParams.from_pairs([("a", "2"), ("c", "3")]))
        assert params.to_dict() == {"a": ["1", "2"], "c": ["3"]}

    def test_mutations_after_from_pairs(self) -> None:
        params = QueryParams.from_pairs([("a", "1"), ("b", "2")])
        params.set("a", "3")
        assert (params.get("a"), params.get_first("a"), params.items()) == ("3", "1", [("a", "3"), ("b", "2")])
        assert params.multi_items() == [("a", "1"), ("a", "3"), ("b", "2")]

    def test_repr_and_equality(self) -> None:
        assert repr(QueryParams.from_pairs([("a", "1")])) == "QueryParams({'a': ['1']})"
        assert QueryParams.from_pairs([("a", "1")]) == QueryParams.from_pairs([("a", "1")])
        assert QueryParams() != QueryParams.from_pairs([("a", "1")])
