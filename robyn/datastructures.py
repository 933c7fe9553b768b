"""Multi-maps for headers and query parameters, with Robyn's semantics.

Both keep every value of a repeated key, in arrival order. As in Robyn, `get` returns the *last*
value of a key, `items`/`values` use the last value, and `multi_items` gives every pair.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

__all__ = ["Headers", "QueryParams"]


def _group(pairs: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for key, value in pairs:
        values = groups.get(key)
        if values is None:
            groups[key] = [value]
        else:
            values.append(value)
    return groups


class Headers:
    """Case-insensitive header multi-map; names are stored lower-case.

    `Headers({"Content-Type": "text/html", "X-Many": ["a", "b"]})`: a list value adds each item.
    `h["missing"]` is None, not a KeyError, as in Robyn.
    """

    __slots__ = ("_map",)

    def __init__(self, default_headers: Mapping[str, Any] | None = None) -> None:
        self._map: dict[str, list[str]] = {}
        if default_headers:
            self.populate_from_dict(default_headers)

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[str, str]]) -> Headers:
        """Builds from (name, value) pairs whose names are already lower-case (the parsed request)."""
        headers = cls.__new__(cls)
        headers._map = _group(pairs)
        return headers

    def populate_from_dict(self, headers: Mapping[str, Any]) -> None:
        """Appends each entry; a list value appends each of its items."""
        groups = self._map
        for key, value in headers.items():
            name = str(key).lower()
            values = groups.setdefault(name, [])
            if isinstance(value, list):
                values.extend(str(item) for item in value)
            else:
                values.append(str(value))

    def set(self, key: str, value: str) -> None:
        """Replaces every value of `key` with `value`."""
        self._map[key.lower()] = [value]

    def append(self, key: str, value: str) -> None:
        self._map.setdefault(key.lower(), []).append(value)

    def get(self, key: str, default: str | None = None) -> str | None:
        """The last value of `key`, or `default`."""
        values = self._map.get(key.lower())
        return values[-1] if values else default

    def get_all(self, key: str) -> list[str]:
        return list(self._map.get(key.lower(), ()))

    def get_headers(self) -> dict[str, list[str]]:
        return {key: list(values) for key, values in self._map.items()}

    def to_dict(self) -> dict[str, str]:
        """One entry per name; repeated values are joined with ", " (RFC 9110)."""
        return {key: ", ".join(values) for key, values in self._map.items()}

    def keys(self) -> list[str]:
        return list(self._map)

    def values(self) -> list[str]:
        return [values[-1] for values in self._map.values() if values]

    def items(self) -> list[tuple[str, str]]:
        return [(key, values[-1]) for key, values in self._map.items() if values]

    def multi_items(self) -> list[tuple[str, str]]:
        return [(key, value) for key, values in self._map.items() for value in values]

    def contains(self, key: str) -> bool:
        return key.lower() in self._map

    def remove(self, key: str) -> None:
        """Drops every value of `key`; no error when absent."""
        self._map.pop(key.lower(), None)

    def is_empty(self) -> bool:
        return not self._map

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._map

    def __getitem__(self, key: str) -> str | None:
        return self.get(key)

    def __setitem__(self, key: str, value: str) -> None:
        self.set(key, value)

    def __delitem__(self, key: str) -> None:
        self.remove(key)

    def __len__(self) -> int:
        return len(self._map)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._map))

    def __eq__(self, other: object) -> bool:
        """Same names, and for each name the same values in any order."""
        if not isinstance(other, Headers):
            return NotImplemented
        if self._map.keys() != other._map.keys():
            return False
        return all(sorted(values) == sorted(other._map[key]) for key, values in self._map.items())

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Headers({self._map!r})"


class QueryParams:
    """Case-sensitive query-string multi-map. `set` *appends* a value, as in Robyn."""

    __slots__ = ("_map",)

    def __init__(self) -> None:
        self._map: dict[str, list[str]] = {}

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[str, str]]) -> QueryParams:
        params = cls.__new__(cls)
        params._map = _group(pairs)
        return params

    def set(self, key: str, value: str) -> None:
        self._map.setdefault(key, []).append(value)

    def get(self, key: str, default: str | None = None) -> str | None:
        """The last value of `key`, or `default`."""
        values = self._map.get(key)
        return values[-1] if values else default

    def get_first(self, key: str) -> str | None:
        values = self._map.get(key)
        return values[0] if values else None

    def get_all(self, key: str) -> list[str] | None:
        """Every value of `key` in order, or None when absent."""
        values = self._map.get(key)
        return list(values) if values is not None else None

    def empty(self) -> bool:
        return not self._map

    def contains(self, key: str) -> bool:
        return key in self._map

    def extend(self, other: QueryParams) -> None:
        for key, values in other._map.items():
            self._map.setdefault(key, []).extend(values)

    def to_dict(self) -> dict[str, list[str]]:
        return {key: list(values) for key, values in self._map.items()}

    def keys(self) -> list[str]:
        return list(self._map)

    def values(self) -> list[str]:
        return [values[-1] for values in self._map.values() if values]

    def items(self) -> list[tuple[str, str]]:
        return [(key, values[-1]) for key, values in self._map.items() if values]

    def multi_items(self) -> list[tuple[str, str]]:
        return [(key, value) for key, values in self._map.items() for value in values]

    def __contains__(self, key: object) -> bool:
        return key in self._map

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, QueryParams):
            return NotImplemented
        return self._map == other._map

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"QueryParams({self._map!r})"
