"""Presence across nodes on the Redis bus, with a real redis-server per test
(apps/redis_server.py) and real app processes of apps/presence_cluster_app.py: two nodes list
each other's members, a SIGKILLed node's members expire on the other after the refresh bound
(their leaves announced once), and a Redis restarted mid-way brings the view back (each node
sends its snapshot again)."""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from apps.redis_server import RedisServer
from apps.ws_wire import http, http_json, wait_until
from conftest import AppServer, StartApp, with_env
from presence_support import Member, Pinned, listing, members_on, wait_listing
from procs_support import worker_pids

EXPIRY = 3.0   # PS_PRESENCE_EXPIRY_MS
REFRESH = 1.0  # PS_PRESENCE_REFRESH_MS
CHANNEL = "robyn:0:\x01presence"


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


@pytest.fixture(params=["1", "2"], ids=["workers1", "workers2"])
def start_app(start_app: StartApp, request: pytest.FixtureRequest) -> StartApp:
    """Every test here runs with --workers 1 and 2: with 2, each node's connections spread
    over two I/O shards, and the first one holds the Redis bus for both (docs/redis.md,
    "With `--workers M`")."""
    return with_env(start_app, {"ROBYN_WORKERS": request.param})


class Node:
    """An app instance asked over new connections (one process: no pinning needed)."""

    def __init__(self, app: AppServer) -> None:
        self.app = app

    def presence(self, topic: str) -> dict:
        return http_json(self.app.address, "GET", f"/presence/{topic}")  # type: ignore[return-value]


def two_nodes(start_app: StartApp, url: str) -> tuple[AppServer, AppServer]:
    env = {"ROBYN_PUBSUB_URL": url}
    return start_app("presence_cluster_app", env=env), start_app("presence_cluster_app", env=env)


def one_each(a: AppServer, b: AppServer, room: str, per_node: int) -> tuple[list[Member], list[Member]]:
    on_a = [Member(a, room, f"a{n}") for n in range(per_node)]
    on_b = [Member(b, room, f"b{n}") for n in range(per_node)]
    return on_a, on_b


def leaves(events: list[dict]) -> list[tuple[str, dict]]:
    return sorted((e["id"], e["info"]) for e in events if e["presence"] == "leave")


def test_two_nodes_list_each_others_members(start_app: StartApp, redis: RedisServer) -> None:
    a, b = two_nodes(start_app, redis.url)
    wait_until(lambda: redis.numsub(CHANNEL) == 2, what="both nodes on the presence channel")
    on_a, on_b = one_each(a, b, "hall", 2)
    everyone = on_a + on_b
    for node in (Node(a), Node(b)):
        wait_listing(node, "hall", everyone, timeout=5)
    answer = Node(a).presence("hall")
    assert answer["here"] == [m.id for m in on_a] and answer["count_here"] == 2
    assert answer["stats"]["origins"] == 1 and answer["stats"]["members"] == 2
    # The reserved channel is no topic's: the room has its own channel, subscribed as before.
    assert redis.channels(reserved=True) == {CHANNEL, "robyn:0:hall"}
    on_b[0].close()
    for node in (Node(a), Node(b)):
        wait_listing(node, "hall", on_a + on_b[1:], timeout=3)
    for member in on_a + on_b[1:]:
        member.close()
    for node in (Node(a), Node(b)):
        wait_listing(node, "hall", [], timeout=3)
    assert http(a.address, "GET", "/") == (200, b"Hello, world!")
    assert http(b.address, "GET", "/") == (200, b"Hello, world!")


def test_a_killed_node_expires_after_the_refresh_bound(start_app: StartApp,
                                                       redis: RedisServer) -> None:
    a, b = two_nodes(start_app, redis.url)
    wait_until(lambda: redis.numsub(CHANNEL) == 2, what="both nodes on the presence channel")
    on_a, on_b = one_each(a, b, "hall", 2)
    wait_listing(Node(a), "hall", on_a + on_b, timeout=5)
    observer = on_a[0]
    observer.events(0.3)  # the joins so far
    b.proc.kill()  # SIGKILL: no leave is sent, the beats stop
    b.wait_exit(timeout=5)
    took = wait_listing(Node(a), "hall", on_a, timeout=EXPIRY + REFRESH + 1.5, what="a without b")
    assert EXPIRY - REFRESH - 0.1 <= took <= EXPIRY + REFRESH + 1.5, took
    stats = Node(a).presence("hall")["stats"]
    assert (stats["expired"], stats["origins"], stats["members"]) == (1, 0, 0)
    # a, the only node left, announces their leaves, once each.
    got = observer.events(1.0)
    assert leaves(got) == listing(on_b) and len(got) == 2, got
    for member in on_a + on_b:
        member.close()
    assert http(a.address, "GET", "/") == (200, b"Hello, world!")


def test_redis_restarted_mid_way_recovers_the_view(start_app: StartApp,
                                                   redis: RedisServer) -> None:
    a, b = two_nodes(start_app, redis.url + "?retry_max_ms=300")
    wait_until(lambda: redis.numsub(CHANNEL) == 2, what="both nodes on the presence channel")
    on_a, on_b = one_each(a, b, "hall", 2)
    everyone = on_a + on_b
    for node in (Node(a), Node(b)):
        wait_listing(node, "hall", everyone, timeout=5)
    observers = [on_a[0], on_b[0]]
    for observer in observers:
        observer.events(0.3)

    redis.kill()
    # Cut off for longer than the expiry, each node stops listing the other's members...
    wait_listing(Node(a), "hall", on_a, timeout=EXPIRY + REFRESH + 1.5, what="a alone")
    wait_listing(Node(b), "hall", on_b, timeout=2, what="b alone")
    # ...which are out of sight, not gone: no leave is announced while the bus is down.
    for observer in observers:
        assert observer.events(0.2) == []
    # A member of b leaves and one joins a during the outage: the snapshots carry both.
    on_b[1].close()
    late = Member(a, "hall", "late")
    now = on_a + [late, on_b[0]]

    redis.start()
    for node in (Node(a), Node(b)):
        wait_listing(node, "hall", now, timeout=10, what="the view after Redis came back")
    stats = Node(a).presence("hall")["stats"]
    assert stats["snapshots_in"] >= 2 and stats["origins"] == 1 and stats["bad"] == 0
    wait_until(lambda: redis.numsub(CHANNEL) == 2, what="both nodes back on the channel")
    # And deltas flow again at once.
    again = Member(b, "hall", "again")
    wait_listing(Node(a), "hall", now + [again], timeout=3, what="a after a new join on b")
    for member in now + [again]:
        member.close()
    for node in (Node(a), Node(b)):
        wait_listing(node, "hall", [], timeout=3)
    assert http(a.address, "GET", "/") == (200, b"Hello, world!")
    assert http(b.address, "GET", "/") == (200, b"Hello, world!")


def test_workers_of_a_machine_are_nodes_of_their_own(start_app: StartApp,
                                                     redis: RedisServer) -> None:
    # With Redis there is no siblings bus: each of the two workers talks to Redis itself and
    # is an origin on the presence channel, beside a third, single-process node.
    machine = start_app("presence_cluster_app",
                        env={"ROBYN_PUBSUB_URL": redis.url, "ROBYN_PROCESSES": "2"})
    single = start_app("presence_cluster_app", env={"ROBYN_PUBSUB_URL": redis.url})
    wait_until(lambda: redis.numsub(CHANNEL) == 3, what="three nodes on the presence channel")
    slots = worker_pids(machine, 2)
    by_pid = members_on(machine, "hall", list(slots.values()), per_process=1)
    alone = Member(single, "hall", "alone")
    everyone = [m for ms in by_pid.values() for m in ms] + [alone]
    pins = [Pinned(machine, pid) for pid in slots.values()]
    for where in pins + [Node(single)]:
        wait_listing(where, "hall", everyone, timeout=5)
    for pin in pins:
        assert pin.presence("hall")["stats"]["origins"] == 2
        pin.close()
    for member in everyone:
        member.close()
    wait_listing(Node(single), "hall", [], timeout=3)
    assert http(single.address, "GET", "/") == (200, b"Hello, world!")


def resp_publish(redis: RedisServer, channel: bytes, payload: bytes) -> int:
    """PUBLISH with binary arguments (redis-cli cannot pass NUL bytes); the receivers."""
    parts = [b"PUBLISH", channel, payload]
    command = b"*3\r\n" + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)
    with socket.create_connection(("127.0.0.1", redis.port), timeout=5) as sock:
        sock.sendall(command)
        answer = sock.recv(64)
    assert answer.startswith(b":"), answer
    return int(answer[1:].split(b"\r\n")[0])


def presence_message(kind: int, origin: int, seq: int, body: bytes) -> bytes:
    return b"P" + bytes([kind]) + struct.pack("<QQQ", origin, origin, seq) + body


def member_bytes(topic: bytes, ident: bytes, info: bytes) -> bytes:
    return (struct.pack("<H", len(topic)) + topic + struct.pack("<H", len(ident)) + ident
            + struct.pack("<I", len(info)) + info)


def test_foreign_messages_on_the_presence_channel(start_app: StartApp,
                                                  redis: RedisServer) -> None:
    app = start_app("presence_cluster_app", env={"ROBYN_PUBSUB_URL": redis.url})
    wait_until(lambda: redis.numsub(CHANNEL) == 1, what="the node on the presence channel")
    own = Member(app, "hall", "own")
    wait_listing(Node(app), "hall", [own], timeout=3)
    channel = CHANNEL.encode()
    # Malformed: counted, nothing changes.
    assert resp_publish(redis, channel, b"P\x03short") == 1
    assert resp_publish(redis, channel, presence_message(4, 77, 1, b"\x00" * 9 + b"junk")) == 1
    wait_until(lambda: Node(app).presence("hall")["stats"]["bad"] == 2, what="two bad counted")
    assert Node(app).presence("hall")["stats"]["origins"] == 0
    # A foreign snapshot: a member whose info has the shape of an object but does not parse
    # is held (and counted) but left out of the list; the other is listed.
    snapshot = presence_message(4, 77, 1, struct.pack("<IBI", 0, 1, 2)
                                + member_bytes(b"hall", b"f1", b"{bad}")
                                + member_bytes(b"hall", b"f2", b'{"ok":1}'))
    assert resp_publish(redis, channel, snapshot) == 1
    wait_until(lambda: Node(app).presence("hall")["count"] == 3, what="the foreign snapshot")
    answer = Node(app).presence("hall")
    assert sorted((m["id"], m["info"]) for m in answer["everywhere"]) == sorted(
        [(own.id, own.info), ("f2", {"ok": 1})])
    assert answer["stats"]["origins"] == 1 and answer["stats"]["members"] == 2
    # The foreign origin never beats: it expires like a dead node.
    wait_listing(Node(app), "hall", [own], timeout=EXPIRY + REFRESH + 1.5, what="the foreigner expired")
    own.close()
    assert http(app.address, "GET", "/") == (200, b"Hello, world!")
