"""A stand-in for the C bridge's per-request job, for unit tests of the Python layer."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class FakeJob:
    """Same attributes as the bridge's job. `reads` counts attribute reads, to check caching."""

    method: str = "GET"
    path: str = "/"
    query: list[tuple[str, str]] = field(default_factory=list)
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    ip: str = "127.0.0.1"
    host: str = "localhost:8080"
    path_params: dict[str, str] = field(default_factory=dict)
    reads: dict[str, int] = field(default_factory=dict)

    def __getattribute__(self, name: str) -> object:
        if name in _COUNTED:
            reads = object.__getattribute__(self, "reads")
            reads[name] = reads.get(name, 0) + 1
            value = object.__getattribute__(self, name)
            # The bridge builds a new object on every read; copy so that sharing would show.
            return list(value) if isinstance(value, list) else dict(value) if isinstance(value, dict) else value
        return object.__getattribute__(self, name)


_COUNTED = frozenset({"method", "path", "query", "headers", "body", "ip", "host", "path_params"})
