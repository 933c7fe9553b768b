"""History kept in Redis (docs/redis.md "Topics with history"): two app processes (two
nodes, apps/redis_history_app.py) sharing one real redis-server (apps/redis_server.py).

- Redis numbers every message: app.publish() answers no offset, both nodes read the same
  history, and the stream in Redis holds exactly it (MAXLEN, the ttl);
- a client subscribed on one node reconnects to the other with since=(epoch, offset) while
  a publisher sends 1,000 messages/s, and sees every offset exactly once, in order;
- gone positions (evicted, another epoch, beyond the last) say where the topic is, exactly;
- Redis restarted without persistence: a new epoch, and an old position is told to reload;
- Redis down: subscribes with recovery and reads raise HistoryUnavailable at once, and
  publishes wait in the outage buffer until Redis is back;
- websocket.publish() (which leaves the sender out) is refused on such a topic.

Every test ends by checking that the nodes still serve.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection
from websockets.sync.client import connect as sconnect

from apps.redis_server import RedisServer
from apps.ws_wire import http, http_json, wait_until
from conftest import AppServer, StartApp, with_env

RECV = 5.0


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


def two_nodes(start_app: StartApp, redis: RedisServer) -> tuple[AppServer, AppServer]:
    env = {"ROBYN_PUBSUB_URL": redis.url}
    a, b = start_app("redis_history_app", env=env), start_app("redis_history_app", env=env)
    wait_until(lambda: connected(a) and connected(b), what="both nodes connected to Redis")
    return a, b


def connected(app: AppServer) -> bool:
    return bool(http_json(app.address, "GET", "/stats")["pubsub_connected"])


def url(app: AppServer, path: str) -> str:
    return f"ws://127.0.0.1:{app.port}{path}"


def publish(app: AppServer, topic: str, body: str) -> dict[str, Any]:
    status, data = http(app.address, "POST", f"/publish/{quote(topic)}", body.encode())
    assert status == 200, data
    return json.loads(data)  # type: ignore[no-any-return]


def history(app: AppServer, topic: str, **query: Any) -> tuple[int, Any]:
    q = "&".join(f"{k}={quote(str(v))}" for k, v in query.items())
    status, body = http(app.address, "GET", f"/history/{quote(topic)}" + (f"?{q}" if q else ""))
    return status, json.loads(body)


def recv_json(ws: ClientConnection) -> dict[str, Any]:
    return json.loads(ws.recv(timeout=RECV))  # type: ignore[no-any-return]


def still_serving(*apps: AppServer) -> None:
    for app in apps:
        assert http(app.address, "GET", "/") == (200, b"ok")
        with sconnect(url(app, "/live/feed:alive?last=0"), open_timeout=RECV) as ws:
            assert recv_json(ws)["type"] == "recovered"


def held(app: AppServer, topic: str, n: int) -> list[Any]:
    """Waits until app.history(topic) holds n messages; returns them."""
    got: list[Any] = []

    def enough() -> bool:
        nonlocal got
        status, body = history(app, topic)
        got = body["messages"] if status == 200 else []
        return len(got) >= n

    wait_until(enough, what=f"{n} messages in the history of {topic}")
    return got


# ---- numbering and reading ----------------------------------------------------------------


def test_redis_numbers_and_both_nodes_read_the_same_history(start_app: StartApp,
                                                             redis: RedisServer) -> None:
    a, b = two_nodes(start_app, redis)
    for i in range(1, 8):
        # Redis numbers the message after publish() returns: no number is made up here.
        assert publish(a if i % 2 else b, "feed:read", "{\"n\": %d}" % i) == {
            "reached": 0, "epoch": None, "offset": None}
        held(a, "feed:read", i)  # in Redis before the other node publishes the next
    on_a = held(a, "feed:read", 7)
    epoch = on_a[0][0]
    assert on_a == [[epoch, i, {"n": i}] for i in range(1, 8)]
    assert history(b, "feed:read") == (200, {"messages": on_a})
    # The newest N, and the first N after a position, from either node.
    assert history(b, "feed:read", limit=2) == (200, {"messages": on_a[5:]})
    assert history(a, "feed:read", epoch=epoch, offset=3, limit=2) == (200, {"messages": on_a[3:5]})
    assert history(b, "feed:read", epoch=epoch, offset=7) == (200, {"messages": []})
    # Positions that cannot be answered exactly: another epoch, beyond the last.
    assert history(a, "feed:read", epoch="zz.1", offset=3) == (
        410, {"gone": True, "epoch": epoch, "offset": 7})
    assert history(b, "feed:read", epoch=epoch, offset=8) == (
        410, {"gone": True, "epoch": epoch, "offset": 7})
    # Nothing published yet: no epoch, nothing held; and a position of it cannot be one.
    assert history(a, "feed:never") == (200, {"messages": []})
    assert history(a, "feed:never", epoch=epoch, offset=0) == (
        410, {"gone": True, "epoch": "", "offset": 0})
    # What Redis holds: the epoch hash and the stream, ids the offsets.
    assert redis.cli("HGET", "robyn:0:epoch:feed:read", "epoch") == epoch
    assert redis.cli("HGET", "robyn:0:epoch:feed:read", "offset") == "7"
    assert redis.cli("XLEN", "robyn:0:stream:feed:read") == "7"
    first = redis.cli("XRANGE", "robyn:0:stream:feed:read", "-", "+", "COUNT", "1").splitlines()
    assert first[0] == "1-0" and first[1] == "d" and json.loads(first[2]) == {
        "epoch": epoch, "offset": 1, "topic": "feed:read", "data": {"n": 1}}
    still_serving(a, b)


def test_live_messages_reach_both_nodes_once_in_redis_order(start_app: StartApp,
                                                             redis: RedisServer) -> None:
    a, b = two_nodes(start_app, redis)
    with sconnect(url(a, "/live/feed:both?last=0"), open_timeout=RECV) as on_a, \
            sconnect(url(b, "/live/feed:both?last=0"), open_timeout=RECV) as on_b:
        hello_a, hello_b = recv_json(on_a), recv_json(on_b)
        # The first subscribe made the epoch; the second found it.
        assert hello_a["epoch"] == hello_b["epoch"] and hello_a["offset"] == 0
        for i in range(1, 41):
            publish(a if i % 3 else b, "feed:both", f"m{i}")
        seen = []
        for ws in (on_a, on_b):
            got = [recv_json(ws) for _ in range(40)]
            assert [(m["epoch"], m["offset"]) for m in got] == [
                (hello_a["epoch"], i) for i in range(1, 41)]
            seen.append([m["data"] for m in got])
            with pytest.raises(TimeoutError):
                ws.recv(timeout=0.3)
        # One order on both nodes: Redis'. Publishes from two nodes race to Redis, so it
        # may interleave them unlike the calls; each node's own stay in its order.
        assert seen[0] == seen[1]
        assert sorted(seen[0]) == sorted(f"m{i}" for i in range(1, 41))
        for mine in ([i for i in range(1, 41) if i % 3], [i for i in range(1, 41) if not i % 3]):
            assert [d for d in seen[0] if int(d[1:]) in mine] == [f"m{i}" for i in mine]
    still_serving(a, b)


def test_the_stream_keeps_history_n_and_the_ttl(start_app: StartApp, redis: RedisServer) -> None:
    a, b = two_nodes(start_app, redis)
    for i in range(1, 12):
        publish(a, "short:cap", str(i))
    got = held(b, "short:cap", 5)
    wait_until(lambda: history(b, "short:cap")[1]["messages"][-1][1] == 11, what="the 11th")
    got = history(b, "short:cap")[1]["messages"]
    assert [m[1] for m in got] == [7, 8, 9, 10, 11]
    assert redis.cli("XLEN", "robyn:0:stream:short:cap") == "5"
    # ttl 0.5 s: gone from reads at once when older, and trimmed from the stream by the
    # next publish.
    publish(a, "ttl:x", "old")
    held(b, "ttl:x", 1)
    time.sleep(0.7)
    assert history(b, "ttl:x") == (200, {"messages": []})
    epoch = redis.cli("HGET", "robyn:0:epoch:ttl:x", "epoch")
    assert history(a, "ttl:x", epoch=epoch, offset=0) == (
        410, {"gone": True, "epoch": epoch, "offset": 1})
    publish(a, "ttl:x", "new")
    got = held(b, "ttl:x", 1)
    assert got == [[epoch, 2, "new"]]
    assert redis.cli("XLEN", "robyn:0:stream:ttl:x") == "1"
    # Both keys expire 10 minutes after the ttl, unused.
    assert 0 < int(redis.cli("PTTL", "robyn:0:stream:ttl:x")) <= 600500
    still_serving(a, b)


# ---- recovery on any node ------------------------------------------------------------------


def test_recovery_on_the_other_node_has_no_gap_and_no_duplicate(start_app: StartApp,
                                                                 redis: RedisServer) -> None:
    """The client reconnects alternately to b and a while a publishes 1,000 messages/s."""
    a, b = two_nodes(start_app, redis)
    topic, total = "feed:pump", 3000
    seen: list[int] = []
    with sconnect(url(a, f"/live/{topic}?last=0"), open_timeout=RECV) as ws:
        hello = recv_json(ws)
        assert hello["replayed"] == 0
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
        node = b if reconnects % 2 else a
        with sconnect(url(node, f"/live/{topic}?epoch={epoch}&offset={seen[-1]}"),
                      open_timeout=RECV) as ws:
            stop_at = min(total, seen[-1] + 400)
            while seen[-1] < stop_at:
                m = recv_json(ws)
                if m.get("type") == "recovered":
                    assert m["epoch"] == epoch
                    replayed.append(m["replayed"])
                    continue
                assert m["epoch"] == epoch
                seen.append(m["offset"])
            ws.socket.shutdown(socket.SHUT_RDWR)
    assert seen == list(range(1, total + 1))
    assert reconnects == 7
    # Each reconnection missed something (50 ms away at 1,000/s) and was replayed it.
    assert len(replayed) >= 1 and all(0 < n <= total for n in replayed)
    wait_until(lambda: http_json(a.address, "GET", "/pump-done")["done"] >= 1, 10,
               what="the pump's end")
    assert history(a, topic, limit=3) == history(b, topic, limit=3)
    still_serving(a, b)


def test_gone_positions_say_where_the_topic_is(start_app: StartApp, redis: RedisServer) -> None:
    a, b = two_nodes(start_app, redis)
    for n in range(1, 12):
        publish(a, "short:gone", str(n))
    epoch = held(b, "short:gone", 5)[0][0]
    wait_until(lambda: history(b, "short:gone")[1]["messages"][-1][1] == 11, what="the 11th")
    last = 11
    # Evicted (2 is out of a stream of 5), beyond the last offset, another epoch.
    for query in (f"epoch={epoch}&offset=2", f"epoch={epoch}&offset=99", "epoch=abc.1&offset=5"):
        with sconnect(url(b, f"/live/short:gone?{query}"), open_timeout=RECV) as ws:
            assert recv_json(ws) == {"type": "gone", "epoch": epoch, "offset": last}
            # The handler subscribed again from there: what follows comes live, exactly.
            publish(a, "short:gone", "after")
            last += 1
            m = recv_json(ws)
            assert (m["epoch"], m["offset"], m["data"]) == (epoch, last, "after")
    # A position still held replays exactly what followed it.
    with sconnect(url(a, f"/live/short:gone?epoch={epoch}&offset={last - 2}"),
                  open_timeout=RECV) as ws:
        got = [recv_json(ws) for _ in range(3)]
        assert [(m["offset"], m["data"]) for m in got[:2]] == [(last - 1, "after"), (last, "after")]
        assert got[2] == {"type": "recovered", "replayed": 2, "epoch": epoch, "offset": last}
    still_serving(a, b)


def test_last_n_replays_the_newest_held_from_redis(start_app: StartApp,
                                                   redis: RedisServer) -> None:
    a, b = two_nodes(start_app, redis)
    for n in range(1, 10):
        publish(a, "feed:last", str(n))
    epoch = held(b, "feed:last", 9)[0][0]
    with sconnect(url(b, "/live/feed:last?last=3"), open_timeout=RECV) as ws:
        got = [recv_json(ws) for _ in range(4)]
        assert [(m["offset"], m["data"]) for m in got[:3]] == [(7, "7"), (8, "8"), (9, "9")]
        assert got[3] == {"type": "recovered", "replayed": 3, "epoch": epoch, "offset": 9}
        publish(a, "feed:last", "10")
        assert (recv_json(ws)["offset"]) == 10
    still_serving(a, b)


# ---- Redis restarted, Redis down --------------------------------------------------------------


def test_a_restarted_redis_is_a_new_epoch_and_old_positions_reload(start_app: StartApp,
                                                                   redis: RedisServer) -> None:
    a, b = two_nodes(start_app, redis)
    for n in range(1, 6):
        publish(a, "feed:restart", str(n))
    old = held(b, "feed:restart", 5)[0][0]
    with sconnect(url(b, f"/live/feed:restart?epoch={old}&offset=5"), open_timeout=RECV) as live:
        assert recv_json(live) == {"type": "recovered", "replayed": 0, "epoch": old, "offset": 5}
        redis.kill()
        wait_until(lambda: not connected(a) and not connected(b), what="both nodes cut off")
        # Meanwhile: reads and recoveries say at once that Redis is away ...
        status, body = history(a, "feed:restart")
        assert (status, body) == (503, {"error": "HistoryUnavailable: the history of "
                                        "'feed:restart' cannot be read: the Redis bus is not "
                                        "connected"})
        with sconnect(url(a, f"/live/feed:restart?epoch={old}&offset=5"),
                      open_timeout=RECV) as ws:
            assert recv_json(ws) == {"type": "unavailable", "error": "HistoryUnavailable: the "
                                     "history of 'feed:restart' cannot be read: the Redis bus "
                                     "is not connected"}
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=RECV)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013
        # ... and publishes wait in the outage buffer (nobody can number them yet).
        assert publish(a, "feed:restart", "during") == {"reached": 0, "epoch": None,
                                                        "offset": None}
        with pytest.raises(TimeoutError):
            live.recv(timeout=0.3)
        redis.start()  # same port, nothing kept: the topic's history is gone
        wait_until(lambda: connected(a) and connected(b), 15, what="both nodes back")
        # The buffered publish was numbered in a new epoch and reached the live client.
        m = recv_json(live)
        new = m["epoch"]
        assert new != old and (m["offset"], m["data"]) == (1, "during")
    # A client coming back with its old position is told to reload, with where to go on.
    with sconnect(url(a, f"/live/feed:restart?epoch={old}&offset=5"), open_timeout=RECV) as ws:
        assert recv_json(ws) == {"type": "gone", "epoch": new, "offset": 1}
    assert history(b, "feed:restart") == (200, {"messages": [[new, 1, "during"]]})
    still_serving(a, b)


def test_a_new_epoch_when_the_stream_vanishes(start_app: StartApp, redis: RedisServer) -> None:
    a, b = two_nodes(start_app, redis)
    publish(a, "feed:vanish", "one")
    old = held(b, "feed:vanish", 1)[0][0]
    # Evicted by Redis (maxmemory) or deleted: the counter alone cannot vouch for history.
    assert redis.cli("DEL", "robyn:0:stream:feed:vanish") == "1"
    publish(b, "feed:vanish", "two")
    got = held(a, "feed:vanish", 1)
    assert got[0][1:] == [1, "two"] and got[0][0] != old
    assert history(a, "feed:vanish", epoch=old, offset=1) == (
        410, {"gone": True, "epoch": got[0][0], "offset": 1})
    still_serving(a, b)


# ---- what cannot be honoured -------------------------------------------------------------------


def test_websocket_publish_cannot_leave_the_sender_out(start_app: StartApp,
                                                       redis: RedisServer) -> None:
    a, b = two_nodes(start_app, redis)
    with sconnect(url(a, "/say/feed:say"), open_timeout=RECV) as ws:
        ws.send("hello")
        assert recv_json(ws) == {"error": (
            "ValueError: websocket.publish('feed:say', ...) cannot leave the sender out on a "
            "topic with history with the Redis bus (every node delivers what Redis numbered, "
            "the sender's included): use app.publish() (docs/redis.md)")}
    assert history(b, "feed:say") == (200, {"messages": []})
    still_serving(a, b)


def test_a_node_reads_its_own_publishes_at_once(start_app: StartApp, redis: RedisServer) -> None:
    """app.history() goes to Redis after every publish the process made before it (one FIFO
    to the I/O thread, one connection): no wait is needed to see them."""
    a, b = two_nodes(start_app, redis)
    for i in range(1, 21):
        publish(a, "feed:own", str(i))
        status, body = history(a, "feed:own", limit=1)
        assert status == 200 and [m[1:] for m in body["messages"]] == [[i, str(i)]]
    still_serving(a, b)


def test_a_redis_that_does_not_answer_in_time(start_app: StartApp, redis: RedisServer) -> None:
    a, b = two_nodes(start_app, redis)
    publish(a, "feed:slow", "one")
    epoch = held(a, "feed:slow", 1)[0][0]
    # Redis holds every client's commands for 6 s: the subscribe gives up after 5.
    assert redis.cli("CLIENT", "PAUSE", "6000", "ALL") == "OK"
    started = time.monotonic()
    with sconnect(url(b, f"/live/feed:slow?epoch={epoch}&offset=0"), open_timeout=RECV) as ws:
        assert json.loads(ws.recv(timeout=8)) == {
            "type": "unavailable", "error": "HistoryUnavailable: the history of 'feed:slow' "
            "cannot be read: Redis did not answer within 5 s"}
        assert 4.5 < time.monotonic() - started < 6
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=RECV)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013
    # Once Redis answers again, the late answer is dropped (nothing was subscribed) and the
    # same position recovers.
    wait_until(lambda: history(b, "feed:slow")[0] == 200, 10, what="Redis answering again")
    with sconnect(url(b, f"/live/feed:slow?epoch={epoch}&offset=0"), open_timeout=RECV) as ws:
        m = recv_json(ws)
        assert (m["epoch"], m["offset"], m["data"]) == (epoch, 1, "one")
        assert recv_json(ws) == {"type": "recovered", "replayed": 1, "epoch": epoch, "offset": 1}
        publish(a, "feed:slow", "two")
        m = recv_json(ws)
        assert (m["offset"], m["data"]) == (2, "two")
        with pytest.raises(TimeoutError):
            ws.recv(timeout=0.3)
    still_serving(a, b)


def test_a_redis_that_refuses_scripts(start_app: StartApp, redis: RedisServer) -> None:
    """Scripting denied (an ACL here): the bus still connects (plain topics need no script);
    topics with history say why they cannot work."""
    assert redis.cli("ACL", "SETUSER", "default", "-@scripting") == "OK"
    a, b = two_nodes(start_app, redis)
    with sconnect(url(a, "/live/feed:noscript?last=0"), open_timeout=RECV) as ws:
        assert recv_json(ws) == {"type": "unavailable", "error": "HistoryUnavailable: the "
                                 "history of 'feed:noscript' cannot be read: Redis refused the "
                                 "history scripts (SCRIPT LOAD; is scripting disabled?)"}
    assert history(b, "feed:noscript") == (503, {"error": "HistoryUnavailable: the history of "
                                                 "'feed:noscript' cannot be read: Redis refused "
                                                 "the history scripts (SCRIPT LOAD; is "
                                                 "scripting disabled?)"})
    dropped = http_json(a.address, "GET", "/stats")["pubsub_dropped"]
    publish(a, "feed:noscript", "lost")
    wait_until(lambda: http_json(a.address, "GET", "/stats")["pubsub_dropped"] == dropped + 1,
               what="the publish counted as dropped")
    for app in (a, b):
        assert http(app.address, "GET", "/") == (200, b"ok")
        assert "refused SCRIPT LOAD" in app.log()


def test_every_worker_of_processes_2_recovers_every_client(start_app: StartApp,
                                                           redis: RedisServer) -> None:
    """With --processes 2 and the Redis bus, history is Redis', not each worker's: whichever
    worker SO_REUSEPORT hands a reconnection to recovers it exactly."""
    server = start_app("redis_history_app", env={"ROBYN_PUBSUB_URL": redis.url,
                                                 "ROBYN_PROCESSES": "2"})
    for n in range(1, 6):
        publish(server, "feed:procs", str(n))
    epoch = held(server, "feed:procs", 5)[0][0]
    pids = set()
    for _ in range(40):  # bounded: until both workers have answered, or 40 connections
        with sconnect(url(server, f"/pid-live/feed:procs?epoch={epoch}&offset=3"),
                      open_timeout=RECV) as ws:
            got = [recv_json(ws) for _ in range(3)]
            assert [(m["epoch"], m["offset"], m["data"]) for m in got[:2]] == [
                (epoch, 4, "4"), (epoch, 5, "5")]
            assert got[2]["type"] == "recovered" and got[2]["replayed"] == 2
            pids.add(got[2]["pid"])
        if len(pids) == 2:
            break
    assert len(pids) == 2
    assert http(server.address, "GET", "/") == (200, b"ok")
