"""The Redis bus with --workers 2 (docs/redis.md, "With --workers M"): two app instances
(apps/redis_workers_app.py, ROBYN_WORKERS=2) sharing one real redis-server per test
(apps/redis_server.py), with clients on both I/O shards of each (a connection's shard is its
C id modulo M, which the app tells every client).

- every message reaches every subscriber of both shards of both nodes exactly once, in each
  publisher's order, whichever shard the publisher's connection is on;
- each process subscribes a channel once, while any of its shards has a subscriber, and
  unsubscribes it after the last one on every shard leaves, in either order;
- Redis killed and restarted mid-stream: local delivery goes on across both shards, the
  buffered publishes reach the other node's shards in order, the merged interest is
  subscribed again;
- a recovery from Redis history on a shard-1 connection has no gap and no duplicate while a
  publisher sends 1,000 messages/s;
- presence across two nodes with members on both shards of each.

Every test ends by checking that the nodes still serve.
"""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import websocket  # websocket-client
from websockets.sync.client import ClientConnection
from websockets.sync.client import connect as sconnect

from apps.redis_server import RedisServer
from apps.ws_wire import http, http_json, wait_until
from conftest import AppServer, StartApp
from presence_support import Member, wait_listing

RECV = 5.0
WORKERS = {"ROBYN_WORKERS": "2"}


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


def node(start_app: StartApp, url: str, app: str = "redis_workers_app") -> AppServer:
    server = start_app(app, env={**WORKERS, "ROBYN_PUBSUB_URL": url})
    assert "workers 2;" in server.wait_for_log("listening on")
    return server


def stats(app: AppServer) -> dict[str, int]:
    return http_json(app.address, "GET", "/stats")  # type: ignore[return-value]


def connected(app: AppServer) -> bool:
    return bool(stats(app)["pubsub_connected"])


def publish(app: AppServer, topic: str, body: str) -> int:
    return int(http_json(app.address, "POST", f"/publish/{quote(topic)}", body.encode())["reached"])


def still_serving(*apps: AppServer) -> None:
    for app in apps:
        assert http(app.address, "GET", "/") == (200, b"Hello, world!")


class Client:
    """A /room/<name> client, with the pid and the I/O shard that hold it."""

    def __init__(self, app: AppServer, room: str) -> None:
        self.ws = websocket.create_connection(f"ws://127.0.0.1:{app.port}/room/{room}",
                                              timeout=RECV)
        hello = self.ws.recv().split()
        assert hello[0] == "hello", hello
        self.pid, self.shard = int(hello[1]), int(hello[2])

    def send(self, text: str) -> None:
        self.ws.send(text)

    def recv(self, timeout: float = RECV) -> str:
        self.ws.settimeout(timeout)
        return str(self.ws.recv())

    def nothing_within(self, seconds: float) -> None:
        self.ws.settimeout(seconds)
        with pytest.raises(websocket.WebSocketTimeoutException):
            got = self.ws.recv()
            pytest.fail(f"unexpected message {got!r}")

    def close(self) -> None:
        try:
            self.ws.close(timeout=1)
        finally:
            self.ws.shutdown()


def on_both_shards(app: AppServer, room: str, per_shard: int, tries: int = 80) -> list[Client]:
    """Connects clients to the room until each shard of app holds per_shard (bounded); the
    kernel picks each connection's shard. Extra ones are closed again."""
    by_shard: dict[int, list[Client]] = {0: [], 1: []}
    extra: list[Client] = []
    for _ in range(tries):
        if all(len(v) >= per_shard for v in by_shard.values()):
            break
        client = Client(app, room)
        (by_shard[client.shard] if len(by_shard[client.shard]) < per_shard else extra).append(client)
    for client in extra:
        client.close()
    if not all(len(v) >= per_shard for v in by_shard.values()):
        pytest.fail(f"{tries} clients did not reach both shards: "
                    f"{ {k: len(v) for k, v in by_shard.items()} }")
    return by_shard[0] + by_shard[1]


def channel_count(redis: RedisServer, topic: str) -> int:
    return redis.numsub(f"robyn:0:{topic}")


# ---- delivery ---------------------------------------------------------------------------


def test_every_message_reaches_both_shards_of_both_nodes_once_and_in_order(
        start_app: StartApp, redis: RedisServer) -> None:
    a, b = node(start_app, redis.url), node(start_app, redis.url)
    on_a = on_both_shards(a, "room", per_shard=4)
    on_b = on_both_shards(b, "room", per_shard=4)
    # One SUBSCRIBE per process, whichever shards hold the room.
    wait_until(lambda: channel_count(redis, "room") == 2, what="both nodes subscribed")
    assert redis.channels() == {"robyn:0:room"}
    # Two publishers on a (one per shard) and one on b, interleaved; the others get every
    # message of each publisher once, in its order.
    senders = [next(c for c in on_a if c.shard == 0), next(c for c in on_a if c.shard == 1),
               next(c for c in on_b if c.shard == 1)]
    for i in range(60):
        for n, sender in enumerate(senders):
            sender.send(f"p{n}:{i}")
    for client in on_a + on_b:
        expect = {n: [f"p{n}:{i}" for i in range(60)] for n, s in enumerate(senders)
                  if s is not client}
        want = sum(len(v) for v in expect.values())
        got = [client.recv() for _ in range(want + (60 if client in senders else 0))]
        mine = [m for m in got if m.startswith("sent ")]
        others = [m for m in got if not m.startswith("sent ")]
        if client in senders:
            # Reached: the other subscribers of the sender's process, on both shards.
            here = len(on_a) if client in on_a else len(on_b)
            assert mine == [f"sent {here - 1}"] * 60
        else:
            assert mine == []
        for n, messages in expect.items():
            assert [m for m in others if m.startswith(f"p{n}:")] == messages
        assert len(others) == want
        client.nothing_within(0.1)
    # An HTTP publish on b reaches every client of both nodes once.
    assert publish(b, "room", "from b") == len(on_b)
    for client in on_a + on_b:
        assert client.recv() == "from b"
    for client in on_a[:2] + on_b[:2]:
        client.nothing_within(0.3)
    sa, sb = stats(a), stats(b)
    # Each publish left its process once, and each process dropped its own echo once.
    assert sa["pubsub_published"] == 120 and sb["pubsub_published"] == 61
    assert sa["pubsub_own_skipped"] == 120 and sb["pubsub_own_skipped"] == 61
    assert sa["pubsub_received"] == 61 and sb["pubsub_received"] == 120
    assert sa["pubsub_gaps"] == sb["pubsub_gaps"] == 0
    for client in on_a + on_b:
        client.close()
    still_serving(a, b)


# ---- the process's interest, merged over its shards ----------------------------------------


def connections(app: AppServer) -> int:
    """The WebSocket connections open on every shard of app."""
    return sum(int(s["connections"]) for s in http_json(app.address, "GET", "/shards")["shards"])


@pytest.mark.parametrize("last_shard", [0, 1])
def test_the_last_subscriber_leaving_on_every_shard_unsubscribes(
        start_app: StartApp, redis: RedisServer, last_shard: int) -> None:
    a = node(start_app, redis.url)
    wait_until(lambda: connected(a), what="a connected to Redis")
    assert redis.channels() == set()
    clients = on_both_shards(a, "x", per_shard=2)
    wait_until(lambda: redis.channels() == {"robyn:0:x"}, what="x subscribed")
    assert channel_count(redis, "x") == 1  # one SUBSCRIBE for both shards
    first = [c for c in clients if c.shard != last_shard]
    last = [c for c in clients if c.shard == last_shard]
    # Every client of one shard leaves: the other shard still wants the channel.
    for client in first:
        client.close()
    wait_until(lambda: connections(a) == len(last), what="the first shard's clients gone")
    time.sleep(0.3)  # an UNSUBSCRIBE would have reached Redis by now
    assert redis.channels() == {"robyn:0:x"}
    assert publish(a, "x", "still") == len(last)
    for client in last:
        assert client.recv() == "still"
    # One of the last shard's two leaves: still wanted; the other: gone.
    last[0].close()
    time.sleep(0.3)
    assert redis.channels() == {"robyn:0:x"}
    last[1].close()
    wait_until(lambda: redis.channels() == set(), what="x unsubscribed")
    assert stats(a)["pubsub_channels"] == 0
    # Interest that comes back on either shard subscribes again, once.
    again = on_both_shards(a, "x", per_shard=1)
    wait_until(lambda: redis.channels() == {"robyn:0:x"}, what="x again")
    assert channel_count(redis, "x") == 1
    for client in again:
        client.close()
    wait_until(lambda: redis.channels() == set(), what="x gone again")
    still_serving(a)


def test_many_topics_on_both_shards_are_subscribed_once_each(start_app: StartApp,
                                                             redis: RedisServer) -> None:
    a = node(start_app, redis.url)
    # Clients come and go on both shards over 20 topics: Redis ends up with exactly the
    # topics someone still listens to.
    clients = {f"t{n}": on_both_shards(a, f"t{n}", per_shard=1) for n in range(20)}
    want = {f"robyn:0:t{n}" for n in range(20)}
    wait_until(lambda: redis.channels() == want, what="20 channels")
    for n in range(0, 20, 2):
        for client in clients[f"t{n}"]:
            client.close()
    for n in range(1, 20, 4):  # only one of the two shards leaves these
        clients[f"t{n}"][0].close()
    want = {f"robyn:0:t{n}" for n in range(1, 20, 2)}
    wait_until(lambda: redis.channels() == want, what="the odd ones left")
    time.sleep(0.3)
    assert redis.channels() == want
    assert stats(a)["pubsub_channels"] == 10
    for n in range(1, 20, 2):
        for client in clients[f"t{n}"][(1 if n % 4 == 1 else 0):]:
            client.close()
    wait_until(lambda: redis.channels() == set(), what="every channel gone")
    still_serving(a)


# ---- Redis lost and back ------------------------------------------------------------------


def test_redis_killed_and_restarted_mid_stream(start_app: StartApp, redis: RedisServer) -> None:
    url = redis.url + "?buffer=20&retry_max_ms=500"
    a, b = node(start_app, url), node(start_app, url)
    on_a = on_both_shards(a, "live", per_shard=2)
    on_b = on_both_shards(b, "live", per_shard=2)
    wait_until(lambda: channel_count(redis, "live") == 2, what="both nodes subscribed")
    assert publish(a, "live", "before") == 4
    for client in on_a + on_b:
        assert client.recv() == "before"

    redis.kill()
    wait_until(lambda: not connected(a), what="a sees the outage")
    # Local delivery goes on on both of a's shards; 20 publishes wait, 10 do not fit.
    for i in range(30):
        assert publish(a, "live", f"during{i}") == 4
    for client in on_a:
        assert [client.recv() for _ in range(30)] == [f"during{i}" for i in range(30)]
    s = stats(a)
    assert (s["pubsub_buffered"], s["pubsub_dropped"], s["pubsub_outages"]) == (20, 10, 1)
    for client in on_b:
        client.nothing_within(0.1)

    redis.start()
    # The merged interest is subscribed again, and the buffered publishes reach both of
    # b's shards, in order, once.
    for client in on_b:
        assert [client.recv(timeout=10) for _ in range(20)] == [f"during{i}" for i in range(20)]
    wait_until(lambda: connected(a) and connected(b), what="both connected")
    wait_until(lambda: channel_count(redis, "live") == 2, what="both nodes subscribed again")
    assert publish(a, "live", "after") == 4  # a's next: b can tell it missed ten
    for client in on_a + on_b:
        assert client.recv() == "after"
    sender = next(c for c in on_b if c.shard == 1)
    sender.send("from b1")
    for client in on_a + on_b:
        if client is not sender:
            assert client.recv() == "from b1"
    assert sender.recv() == "sent 3"
    for client in on_a + on_b:
        client.nothing_within(0.1)
    sa, sb = stats(a), stats(b)
    assert (sa["pubsub_buffered"], sa["pubsub_dropped"]) == (0, 10)
    assert sb["pubsub_gaps"] == 10
    log = a.log()
    assert log.count("lost the connection to 127.0.0.1") == 1
    assert "20 publishes buffered, 10 dropped" in log
    for client in on_a + on_b:
        client.close()
    still_serving(a, b)


# ---- topics with history in Redis ---------------------------------------------------------


@contextlib.contextmanager
def live_on_shard(app: AppServer, query: str, shard: int, topic: str,
                  tries: int = 60) -> Iterator[ClientConnection]:
    """A /live/<topic>?<query> connection that shard `shard` of app holds (bounded tries;
    the kernel picks each connection's shard; the others are closed before they subscribe)."""
    for _ in range(tries):
        with sconnect(f"ws://127.0.0.1:{app.port}/live/{quote(topic)}?{query}&wait=1",
                      open_timeout=RECV) as ws:
            hello = recv_json(ws)
            assert hello["type"] == "hello", hello
            if hello["shard"] == shard:
                ws.send("go")
                yield ws
                return
    pytest.fail(f"no connection reached shard {shard} in {tries} tries")


def recv_json(ws: ClientConnection) -> dict[str, Any]:
    return json.loads(ws.recv(timeout=RECV))  # type: ignore[no-any-return]


def nothing_more(ws: ClientConnection, seconds: float) -> None:
    with pytest.raises(TimeoutError):
        got = ws.recv(timeout=seconds)
        pytest.fail(f"unexpected message {got!r}")


def epoch_of(redis: RedisServer, topic: str) -> str:
    return redis.cli("HGET", f"robyn:0:epoch:{topic}", "epoch")


@pytest.mark.parametrize("shard", [1, 0])
def test_a_recovery_replays_exactly_on_either_shard(start_app: StartApp, redis: RedisServer,
                                                    shard: int) -> None:
    a, b = node(start_app, redis.url), node(start_app, redis.url)
    wait_until(lambda: connected(a) and connected(b), what="both nodes connected")
    topic = "feed:r"
    for i in range(1, 11):
        publish(b, topic, f"m{i}")
    wait_until(lambda: redis.cli("XLEN", f"robyn:0:stream:{topic}") == "10", what="10 in Redis")
    epoch = epoch_of(redis, topic)
    # From a position: what followed it, then the answer, then live messages once each.
    with live_on_shard(a, f"epoch={epoch}&offset=4", shard, topic) as ws:
        got = [recv_json(ws) for _ in range(7)]
        assert [(m["epoch"], m["offset"], m["data"]) for m in got[:6]] == [
            (epoch, i, f"m{i}") for i in range(5, 11)]
        assert got[6] == {"type": "recovered", "replayed": 6, "epoch": epoch, "offset": 10}
        for i in range(11, 16):
            # From either node; each in Redis before the next (two nodes race to Redis).
            publish(a if i % 2 else b, topic, f"m{i}")
            wait_until(lambda i=i: redis.cli("XLEN", f"robyn:0:stream:{topic}") == str(i),
                       what=f"m{i} in Redis")
        got = [recv_json(ws) for _ in range(5)]
        assert [(m["offset"], m["data"]) for m in got] == [(i, f"m{i}") for i in range(11, 16)]
        nothing_more(ws, 0.3)
    # The newest N, on the same shard.
    with live_on_shard(b, "last=3", shard, topic) as ws:
        got = [recv_json(ws) for _ in range(4)]
        assert [m["offset"] for m in got[:3]] == [13, 14, 15]
        assert got[3] == {"type": "recovered", "replayed": 3, "epoch": epoch, "offset": 15}
        publish(b, topic, "m16")
        assert recv_json(ws)["offset"] == 16
        nothing_more(ws, 0.3)
    # The channel is not left subscribed by the recoveries once their connections are gone.
    wait_until(lambda: redis.channels() == set(), what="no channel left")
    still_serving(a, b)


def test_recovery_on_shard_1_while_publishing_has_no_gap_and_no_duplicate(
        start_app: StartApp, redis: RedisServer) -> None:
    """The client reconnects, always to a connection of shard 1, alternately of b and a,
    while a publishes 1,000 messages/s."""
    a, b = node(start_app, redis.url), node(start_app, redis.url)
    wait_until(lambda: connected(a) and connected(b), what="both nodes connected")
    topic, total = "feed:pump", 3000
    seen: list[int] = []
    with live_on_shard(a, "last=0", 1, topic) as ws:
        hello = recv_json(ws)
        assert hello["type"] == "recovered" and hello["replayed"] == 0
        epoch = hello["epoch"]
        assert http(a.address, "POST", f"/pump/{topic}?n={total}&rate=1000")[0] == 200
        while len(seen) < 400:
            m = recv_json(ws)
            assert m["epoch"] == epoch
            seen.append(m["offset"])
    reconnects, replayed = 0, []
    while seen[-1] < total:
        time.sleep(0.05)  # away while the publisher goes on
        reconnects += 1
        there = b if reconnects % 2 else a
        with live_on_shard(there, f"epoch={epoch}&offset={seen[-1]}", 1, topic) as ws:
            stop_at = min(total, seen[-1] + 400)
            answered = False
            while seen[-1] < stop_at or not answered:  # the answer follows the replay
                m = recv_json(ws)
                if m.get("type") == "recovered":
                    assert m["epoch"] == epoch
                    replayed.append(m["replayed"])
                    answered = True
                    continue
                assert m["epoch"] == epoch
                seen.append(m["offset"])
            ws.socket.shutdown(socket.SHUT_RDWR)
    assert seen == list(range(1, total + 1))
    # At least one reconnection to each node (400 or more messages each, 2,600 in all).
    assert 2 <= reconnects <= 7, reconnects
    # Each reconnection missed something (50 ms away at 1,000/s) and was replayed it.
    assert len(replayed) == reconnects and all(0 < n <= total for n in replayed), replayed
    wait_until(lambda: http_json(a.address, "GET", "/pump-done")["done"] >= 1, 10,
               what="the pump's end")
    still_serving(a, b)


# ---- presence over Redis ---------------------------------------------------------------------


class PresenceNode:
    """presence_cluster_app's /presence/<topic>, asked over new connections (one process)."""

    def __init__(self, app: AppServer) -> None:
        self.app = app

    def presence(self, topic: str) -> dict[str, Any]:
        return http_json(self.app.address, "GET", f"/presence/{topic}")  # type: ignore[return-value]


def members_on_both_shards(app: AppServer, room: str, prefix: str, per_shard: int,
                           tries: int = 60) -> list[Member]:
    """Members of room on app until each of its shards holds per_shard connections (bounded;
    the app's only WebSockets are these)."""
    members: list[Member] = []
    for n in range(tries):
        shards = http_json(app.address, "GET", "/shards")["shards"]
        if all(int(s["connections"]) >= per_shard for s in shards):
            return members
        members.append(Member(app, room, f"{prefix}{n}"))
    pytest.fail(f"{tries} members did not reach both shards of {app.port}")


def test_presence_across_two_nodes_with_members_on_both_shards(start_app: StartApp,
                                                               redis: RedisServer) -> None:
    a = node(start_app, redis.url, app="presence_cluster_app")
    b = node(start_app, redis.url, app="presence_cluster_app")
    channel = "robyn:0:\x01presence"
    wait_until(lambda: redis.numsub(channel) == 2, what="both nodes on the presence channel")
    on_a = members_on_both_shards(a, "hall", "a", per_shard=2)
    on_b = members_on_both_shards(b, "hall", "b", per_shard=2)
    everyone = on_a + on_b
    for where in (PresenceNode(a), PresenceNode(b)):
        wait_listing(where, "hall", everyone, timeout=5)
    # The table is the process's: one origin per node, whatever shard a member is on.
    answer = PresenceNode(a).presence("hall")
    assert sorted(answer["here"]) == sorted(m.id for m in on_a)
    assert answer["count_here"] == len(on_a)
    assert answer["stats"]["origins"] == 1 and answer["stats"]["members"] == len(on_b)
    assert redis.channels(reserved=True) == {channel, "robyn:0:hall"}
    assert channel_count(redis, "hall") == 2
    for n, member in enumerate(everyone):
        member.events(0.3 if n == 0 else 0.05)  # the joins so far
    # One member of each node leaves: every other member, on both shards of both nodes,
    # is told each leave once.
    leavers = [on_a[0], on_b[-1]]
    for member in leavers:
        member.close()
    staying = [m for m in everyone if m not in leavers]
    for where in (PresenceNode(a), PresenceNode(b)):
        wait_listing(where, "hall", staying, timeout=3)
    expected = sorted((m.id, m.info) for m in leavers)
    # The first waits long enough for any late event; the others' have come by then.
    for n, member in enumerate(staying):
        got = member.events(0.6 if n == 0 else 0.1)
        assert sorted((e["id"], e["info"]) for e in got if e["presence"] == "leave") == expected
        assert len(got) == 2, got
    # A join on b reaches the members of both of a's shards once.
    late = Member(b, "hall", "late")
    for n, member in enumerate(staying):
        got = member.events(0.6 if n == 0 else 0.1)
        assert [(e["presence"], e["id"]) for e in got] == [("join", late.id)], got
    for member in staying + [late]:
        member.close()
    for where in (PresenceNode(a), PresenceNode(b)):
        wait_listing(where, "hall", [], timeout=3)
    wait_until(lambda: redis.channels() == set(), what="the hall unsubscribed")
    for app in (a, b):
        assert http(app.address, "GET", "/") == (200, b"Hello, world!")
