"""Topic options, history and presence (docs/realtime.md).

`app.topic(pattern, history=N, ttl=s, presence=True)` says, before the app starts, what the
topics matching a glob keep. History lives in C (pubsub/history.c, on the server's hub; in
Redis with the Redis bus, pubsub/redis_history.c);
this module checks the options, builds the envelope every message of a topic with history
is sent in, and keeps presence: who is subscribed to a presence topic in this process, with
the info each gave.
"""
from __future__ import annotations

import fnmatch
import json
import threading
from dataclasses import dataclass
from typing import Any

from .ws import Reached

__all__ = ["TopicOptions", "HistoryGone", "HistoryUnavailable", "HistoryMessage", "Published",
           "Recovered", "Member"]

# The glob characters fnmatch(3) and Python's fnmatch read alike; a backslash is an escape
# for one and a plain character for the other, so it is refused.
_MAX_PATTERNS = 256
_CACHE_LIMIT = 4096


@dataclass(frozen=True)
class TopicOptions:
    """What the topics matching `pattern` keep (app.topic)."""

    pattern: str
    history: int = 0
    ttl: float | None = None
    presence: bool = False
    presence_events: bool = False


class HistoryGone(LookupError):
    """The messages after a client's position are not all held any more: forgotten (the
    ring is full or the ttl passed) or of another epoch (the process restarted, or served
    the client from another process). The client should reload its state; `epoch` and
    `offset` say where the topic is now, to continue from."""

    def __init__(self, topic: str, epoch: str, offset: int) -> None:
        super().__init__(f"the history of '{topic}' no longer holds what followed that position")
        self.topic = topic
        self.epoch = epoch
        self.offset = offset


class HistoryUnavailable(RuntimeError):
    """With the Redis bus, a topic's history cannot be read now: Redis is not connected,
    did not answer in time, or answered something unexpected (docs/redis.md). Nothing was
    subscribed; the handler may close the connection (the client comes back later) or
    subscribe without recovery."""


@dataclass(frozen=True)
class HistoryMessage:
    """One message a topic's history holds: the data as published."""

    epoch: str
    offset: int
    data: Any


class Published(Reached):
    """app.publish()'s answer: an int (the subscribers reached in this process, as before),
    with the message's `epoch` and `offset` when its topic keeps history (else None; None
    too with the Redis bus, where Redis numbers the message after publish() returns)."""

    epoch: str | None
    offset: int | None

    def __new__(cls, reached: int, epoch: str | None = None, offset: int | None = None) -> Published:
        self = super().__new__(cls, reached)
        self.epoch = epoch
        self.offset = offset
        return self


@dataclass(frozen=True)
class Recovered:
    """What a subscribe with `since=` or `last=` did: `replayed` messages were queued before
    the live ones; `epoch` and `offset` are the topic's position at the seam (the offset of
    the last message replayed, or before the first live one)."""

    replayed: int
    epoch: str
    offset: int


@dataclass(frozen=True)
class Member:
    """One connection present on a topic: its id and the info it subscribed with."""

    id: str
    info: dict[str, Any]


def check_options(pattern: Any, history: Any, ttl: Any, presence: Any,
                  presence_events: Any) -> TopicOptions:
    if not isinstance(pattern, str):
        raise TypeError(f"app.topic(): the pattern must be a str, not {type(pattern).__name__}")
    if not pattern or pattern.startswith("\x01") or "\\" in pattern or "\x00" in pattern:
        raise ValueError(f"app.topic(): {pattern!r} is not a topic pattern (non-empty, "
                         "no backslash or NUL, not starting with \\x01)")
    if isinstance(history, bool) or not isinstance(history, int):
        raise TypeError(f"app.topic(history=...) must be an int, not {type(history).__name__}")
    if history < 0 or history > 1_000_000:
        raise ValueError(f"app.topic(history=...) must be between 0 and 1000000, not {history}")
    if ttl is not None:
        if isinstance(ttl, bool) or not isinstance(ttl, (int, float)):
            raise TypeError(f"app.topic(ttl=...) must be a number of seconds, not {type(ttl).__name__}")
        if not (ttl > 0 and ttl <= 365 * 86400):
            raise ValueError(f"app.topic(ttl=...) must be more than 0 seconds and at most a year, not {ttl}")
        if history == 0:
            raise ValueError("app.topic(ttl=...) needs history=N: the ttl is how long history keeps a message")
    if not isinstance(presence, bool):
        raise TypeError(f"app.topic(presence=...) must be True or False, not {presence!r}")
    if not isinstance(presence_events, bool):
        raise TypeError(f"app.topic(presence_events=...) must be True or False, not {presence_events!r}")
    if presence_events and not presence:
        raise ValueError("app.topic(presence_events=True) needs presence=True")
    if history == 0 and not presence:
        raise ValueError(f"app.topic({pattern!r}) asks for nothing: give history=N or presence=True")
    return TopicOptions(pattern, history, None if ttl is None else float(ttl), presence,
                        presence_events)


def envelope_rest(topic: str, data: Any) -> str:
    """The part of a history message after its epoch and offset, which C writes:
    `"topic":...,"data":...}`. data is what was published: a str stays a JSON string,
    any other JSON value is sent as that value."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"topic '{topic}' keeps history: its messages are JSON text, "
                        "so publish str or a JSON value, not bytes")
    try:
        encoded = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"topic '{topic}' keeps history: a message must be str or a JSON "
                        f"value ({exc})") from None
    return '"topic":' + json.dumps(topic, ensure_ascii=False) + ',"data":' + encoded + "}"


def parse_message(payload: str) -> tuple[str, int, Any]:
    """(epoch, offset, data) of a history message's payload."""
    value = json.loads(payload)
    return value["epoch"], value["offset"], value["data"]


class Topics:
    """The app's topic options and its presence registry (one per app)."""

    def __init__(self) -> None:
        self.options: list[TopicOptions] = []
        self._cache: dict[str, TopicOptions | None] = {}
        self._lock = threading.Lock()
        # presence: topic -> {connection id: info}, in join order
        self._present: dict[str, dict[str, dict[str, Any]]] = {}
        self._joined: dict[str, set[str]] = {}  # connection id -> its presence topics

    def add(self, options: TopicOptions) -> None:
        if any(o.pattern == options.pattern for o in self.options):
            raise ValueError(f"app.topic(): the pattern {options.pattern!r} is already configured")
        if len(self.options) >= _MAX_PATTERNS:
            raise ValueError(f"app.topic(): at most {_MAX_PATTERNS} patterns")
        self.options.append(options)
        self._cache.clear()

    def has_history(self) -> bool:
        return any(o.history for o in self.options)

    def of(self, topic: str) -> TopicOptions | None:
        """The options of the first pattern topic matches, or None."""
        if not self.options:
            return None
        try:
            return self._cache[topic]
        except KeyError:
            pass
        found = next((o for o in self.options if fnmatch.fnmatchcase(topic, o.pattern)), None)
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[topic] = found
        return found

    # ---- presence (this process) ---------------------------------------------------------

    def join(self, topic: str, conn_id: str, info: dict[str, Any]) -> bool:
        with self._lock:
            members = self._present.setdefault(topic, {})
            new = conn_id not in members
            members[conn_id] = info
            self._joined.setdefault(conn_id, set()).add(topic)
            return new

    def leave(self, topic: str, conn_id: str) -> dict[str, Any] | None:
        """Removes conn_id from topic; returns the info it had, or None if it was absent."""
        with self._lock:
            members = self._present.get(topic)
            if members is None or conn_id not in members:
                return None
            info = members.pop(conn_id)
            if not members:
                del self._present[topic]
            topics = self._joined.get(conn_id)
            if topics is not None:
                topics.discard(topic)
                if not topics:
                    del self._joined[conn_id]
            return info

    def topics_of(self, conn_id: str) -> list[str]:
        with self._lock:
            return sorted(self._joined.get(conn_id, ()))

    def members(self, topic: str) -> list[Member]:
        with self._lock:
            return [Member(cid, dict(info)) for cid, info in self._present.get(topic, {}).items()]

    def count(self, topic: str) -> int:
        with self._lock:
            return len(self._present.get(topic, ()))
