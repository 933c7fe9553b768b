"""Multi-maps for headers and query parameters, with Robyn's semantics.

Both keep every value of a repeated key, in arrival order. As in Robyn, `get` returns the *last*
value of a key, `items`/`values` use the last value, and `multi_items` gives every pair.

Built from the request's pairs, a map costs one `dict(pairs)` (which is exactly "last value per
key"); the grouped lists of all values are made only when something asks for them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any, TypeVar

__all__ = ["Headers", "QueryParams"]

_M = TypeVar("_M", bound="_MultiMap")


class _MultiMap:
    __slots__ = ("_last", "_groups", "_pairs")
    _fold = False  # lower-case keys (Headers)

    def __init__(self) -> None:
        self._last: dict[str, str] = {}  # key -> last value; its order is the map's key order
        self._groups: dict[str, list[str]] | None = {}  # key -> every value; None until needed
        self._pairs: list[tuple[str, str]] | None = None  # the source of _groups while it is None

    @classmethod
    def from_pairs(cls: type[_M], pairs: Iterable[tuple[str, str]]) -> _M:
        """Builds from (key, value) pairs (for Headers, with names already lower-case).

        A list is kept, not copied: the caller hands it over and must not change it afterwards.
        """
        pairs = pairs if isinstance(pairs, list) else list(pairs)
        new = cls.__new__(cls)
        new._last = dict(pairs)
        new._groups = None
        new._pairs = pairs
        return new

    def _all(self) -> dict[str, list[str]]:
        groups = self._groups
        if groups is None:
            groups = {}
            for key, value in self._pairs or ():
                values = groups.get(key)
                if values is None:
                    groups[key] = [value]
                else:
                    values.append(value)
            self._groups, self._pairs = groups, None
        return groups

    def _add(self, key: str, value: str) -> None:
        self._all().setdefault(key, []).append(value)
        self._last[key] = value

    def get(self, key: str, default: str | None = None) -> str | None:
        """The last value of `key`, or `default`."""
        return self._last.get(key.lower() if self._fold else key, default)

    def contains(self, key: str) -> bool:
        return (key.lower() if self._fold else key) in self._last

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        return (key.lower() if self._fold else key) in self._last

    def keys(self) -> list[str]:
        return list(self._last)

    def values(self) -> list[str]:
        """The last value of each key."""
        return list(self._last.values())

    def items(self) -> list[tuple[str, str]]:
        """(key, last value) pairs, one per key."""
        return list(self._last.items())

    def multi_items(self) -> list[tuple[str, str]]:
        """Every (key, value) pair, grouped by key."""
        return [(key, value) for key, values in self._all().items() for value in values]

    def _lists(self) -> dict[str, list[str]]:
        return {key: list(values) for key, values in self._all().items()}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._all()!r})"


class Headers(_MultiMap):
    """Case-insensitive header multi-map; names are stored lower-case.

    `Headers({"Content-Type": "text/html", "X-Many": ["a", "b"]})`: a list value adds each item.
    `h["missing"]` is None, not a KeyError, as in Robyn.
    """

    __slots__ = ()
    _fold = True

    def __init__(self, default_headers: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        if default_headers:
            self.populate_from_dict(default_headers)

    def populate_from_dict(self, headers: Mapping[str, Any]) -> None:
        """Appends each entry; a list value appends each of its items."""
        for key, value in headers.items():
            name = str(key).lower()
            for item in value if isinstance(value, list) else (value,):
                self._add(name, str(item))

    def set(self, key: str, value: str) -> None:
        """Replaces every value of `key` with `value`."""
        key = key.lower()
        self._all()[key] = [value]
        self._last[key] = value

    def append(self, key: str, value: str) -> None:
        self._add(key.lower(), value)

    def get_all(self, key: str) -> list[str]:
        return list(self._all().get(key.lower(), ()))

    def get_headers(self) -> dict[str, list[str]]:
        """Every name with the list of its values."""
        return self._lists()

    def to_dict(self) -> dict[str, str]:
        """One entry per name; repeated values are joined with ", " (RFC 9110)."""
        return {key: ", ".join(values) for key, values in self._all().items()}

    def remove(self, key: str) -> None:
        """Drops every value of `key`; no error when absent."""
        key = key.lower()
        self._all().pop(key, None)
        self._last.pop(key, None)

    def is_empty(self) -> bool:
        return not self._last

    def __getitem__(self, key: str) -> str | None:
        return self._last.get(key.lower())

    def __setitem__(self, key: str, value: str) -> None:
        self.set(key, value)

    def __delitem__(self, key: str) -> None:
        self.remove(key)

    def __len__(self) -> int:
        return len(self._last)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._last))

    def __eq__(self, other: object) -> bool:
        """Same names, and for each name the same values in any order."""
        if not isinstance(other, Headers):
            return NotImplemented
        mine, theirs = self._all(), other._all()
        return mine.keys() == theirs.keys() and all(sorted(values) == sorted(theirs[key]) for key, values in mine.items())

    __hash__ = None  # type: ignore[assignment]


class QueryParams(_MultiMap):
    """Case-sensitive query-string multi-map. `set` *appends* a value, as in Robyn."""

    __slots__ = ()

    def set(self, key: str, value: str) -> None:
        self._add(key, value)

    def get_first(self, key: str) -> str | None:
        values = self._all().get(key)
        return values[0] if values else None

    def get_all(self, key: str) -> list[str] | None:
        """Every value of `key` in order, or None when absent."""
        values = self._all().get(key)
        return list(values) if values is not None else None

    def empty(self) -> bool:
        return not self._last

    def extend(self, other: QueryParams) -> None:
        for key, values in other._all().items():
            for value in values:
                self._add(key, value)

    def to_dict(self) -> dict[str, list[str]]:
        """Every key with the list of its values."""
        return self._lists()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, QueryParams):
            return NotImplemented
        return self._all() == other._all()

    __hash__ = None  # type: ignore[assignment]
