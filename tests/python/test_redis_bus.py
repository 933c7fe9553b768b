"""Publishes across app instances through Redis (docs/redis.md), with a real redis-server per
test (apps/redis_server.py) and real app processes (apps/ws_app.py configured by
ROBYN_PUBSUB_URL, apps/redis_app.py by the pubsub_url keyword).

Every test that starts servers ends by checking that they still serve.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.sync.client import connect as sconnect

from apps.redis_server import RedisServer, free_port
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


def ws_url(app: AppServer, path: str) -> str:
    return f"ws://127.0.0.1:{app.port}{path}"


def stats(app: AppServer) -> dict[str, int]:
    return http_json(app.address, "GET", "/stats")  # type: ignore[return-value]


def publish(app: AppServer, topic: str, body: str) -> int:
    return int(http_json(app.address, "POST", f"/publish/{topic}", body.encode())["reached"])


def still_serving(*apps: AppServer) -> None:
    for app in apps:
        assert http(app.address, "GET", "/") == (200, b"Hello, world!")


def nothing_within(ws, seconds: float) -> None:
    with pytest.raises(TimeoutError):
        got = ws.recv(timeout=seconds)
        pytest.fail(f"unexpected message {got!r}")


def two_nodes(start_app: StartApp, url: str, app: str = "ws_app") -> tuple[AppServer, AppServer]:
    env = {"ROBYN_PUBSUB_URL": url} if app == "ws_app" else {"REDIS_APP_URL": url}
    return start_app(app, env=env), start_app(app, env=env)


def failed_start(start_app: StartApp, name: str, env: dict[str, str]) -> str:
    """Starts an app that must refuse to start; returns its log."""
    app = start_app(name, env=env, wait=False)
    code = app.wait_exit(timeout=15)
    assert code != 0, app.log()
    return app.log()


# ---- two nodes share a room ---------------------------------------------------------------


def test_two_instances_share_a_room_once_and_in_order(start_app: StartApp,
                                                      redis: RedisServer) -> None:
    a, b = two_nodes(start_app, redis.url)
    with sconnect(ws_url(a, "/topic/room"), open_timeout=RECV) as on_a, \
            sconnect(ws_url(b, "/topic/room"), open_timeout=RECV) as on_b:
        # Both processes have subscribed the room's channel on Redis.
        wait_until(lambda: redis.numsub("robyn:0:room") == 2, what="both nodes subscribed")
        # A client on a publishes 100 messages (to the room but itself): b's client gets
        # every one, once, in order; a's client only gets its own "reached 0" answers.
        for i in range(100):
            on_a.send(f"a{i}")
        assert [on_b.recv(timeout=RECV) for _ in range(100)] == [f"a{i}" for i in range(100)]
        assert [on_a.recv(timeout=RECV) for _ in range(100)] == ["reached 0"] * 100
        # And the other way: an HTTP publish on b reaches both clients once.
        assert publish(b, "room", "from b") == 1  # the local count
        assert on_b.recv(timeout=RECV) == "from b"
        assert on_a.recv(timeout=RECV) == "from b"
        nothing_within(on_a, 0.5)
        nothing_within(on_b, 0.2)
    sa, sb = stats(a), stats(b)
    assert sa["pubsub_connected"] == 1 and sb["pubsub_connected"] == 1
    assert sa["pubsub_published"] == 100 and sb["pubsub_published"] == 1
    assert sb["pubsub_received"] == 100 and sa["pubsub_received"] == 1
    # Each process saw its own messages come back from Redis and dropped them.
    assert sa["pubsub_own_skipped"] == 100 and sb["pubsub_own_skipped"] == 1
    assert sa["pubsub_gaps"] == sb["pubsub_gaps"] == 0
    assert sa["pubsub_bad"] == sb["pubsub_bad"] == 0
    still_serving(a, b)


def test_a_topic_nobody_listens_to_here_still_reaches_the_other_node(
        start_app: StartApp, redis: RedisServer) -> None:
    a, b = two_nodes(start_app, redis.url)
    with sconnect(ws_url(b, "/topic/only-b"), open_timeout=RECV) as on_b:
        wait_until(lambda: redis.numsub("robyn:0:only-b") == 1, what="b subscribed")
        assert publish(a, "only-b", "across") == 0  # nobody on a
        assert on_b.recv(timeout=RECV) == "across"
    still_serving(a, b)


def test_binary_messages_stay_binary(start_app: StartApp, redis: RedisServer) -> None:
    a, b = two_nodes(start_app, redis.url)
    with sconnect(ws_url(a, "/topic/bin"), open_timeout=RECV) as on_a, \
            sconnect(ws_url(b, "/topic/bin"), open_timeout=RECV) as on_b:
        wait_until(lambda: redis.numsub("robyn:0:bin") == 2, what="both subscribed")
        on_a.send(bytes(range(256)))
        assert on_b.recv(timeout=RECV) == bytes(range(256))
        on_a.send("ünïcode ✓")
        assert on_b.recv(timeout=RECV) == "ünïcode ✓"
    still_serving(a, b)


def test_a_foreign_message_on_our_channel_is_counted_and_dropped(
        start_app: StartApp, redis: RedisServer) -> None:
    (a,) = (start_app("ws_app", env={"ROBYN_PUBSUB_URL": redis.url}),)
    with sconnect(ws_url(a, "/topic/t"), open_timeout=RECV) as on_a:
        wait_until(lambda: redis.numsub("robyn:0:t") == 1, what="subscribed")
        assert redis.cli("PUBLISH", "robyn:0:t", "not msgpack") == "1"
        wait_until(lambda: stats(a)["pubsub_bad"] == 1, what="the bad message counted")
        nothing_within(on_a, 0.3)
        assert publish(a, "t", "still fine") == 1
        assert on_a.recv(timeout=RECV) == "still fine"
    assert a.log().count("is not a Robyn envelope (not a msgpack array of six elements)") == 1
    still_serving(a)


# ---- following local interest ------------------------------------------------------------


def test_subscribe_and_unsubscribe_follow_local_interest(start_app: StartApp,
                                                         redis: RedisServer) -> None:
    a = start_app("ws_app", env={"ROBYN_PUBSUB_URL": redis.url})
    assert redis.channels() == set()
    stack = contextlib.ExitStack()
    first = stack.enter_context(sconnect(ws_url(a, "/topic/x"), open_timeout=RECV))
    wait_until(lambda: redis.channels() == {"robyn:0:x"}, what="x subscribed")
    second = stack.enter_context(sconnect(ws_url(a, "/topic/x"), open_timeout=RECV))
    other = stack.enter_context(sconnect(ws_url(a, "/topic/y"), open_timeout=RECV))
    wait_until(lambda: redis.channels() == {"robyn:0:x", "robyn:0:y"}, what="y subscribed")
    assert redis.numsub("robyn:0:x") == 1  # one SUBSCRIBE per process, not per client
    first.close()
    wait_until(lambda: http_json(a.address, "GET", "/subscribers/x")["count"] == 1,
               what="first gone")
    assert redis.channels() == {"robyn:0:x", "robyn:0:y"}  # second still wants x
    second.close()
    wait_until(lambda: redis.channels() == {"robyn:0:y"}, what="x unsubscribed")
    other.close()
    wait_until(lambda: redis.channels() == set(), what="y unsubscribed")
    stack.close()
    assert stats(a)["pubsub_channels"] == 0
    # Interest that comes back subscribes again.
    with sconnect(ws_url(a, "/topic/x"), open_timeout=RECV):
        wait_until(lambda: redis.channels() == {"robyn:0:x"}, what="x again")
    wait_until(lambda: redis.channels() == set(), what="x gone again")
    still_serving(a)


def test_the_db_and_the_prefix_name_the_channels(start_app: StartApp,
                                                 redis: RedisServer) -> None:
    # Redis Pub/Sub ignores the database, so the default prefix carries it.
    a = start_app("ws_app", env={"ROBYN_PUBSUB_URL": f"redis://127.0.0.1:{redis.port}/3"})
    b = start_app("ws_app", env={
        "ROBYN_PUBSUB_URL": f"redis://127.0.0.1:{redis.port}/0?prefix=chat%3A"})
    with sconnect(ws_url(a, "/topic/t"), open_timeout=RECV), \
            sconnect(ws_url(b, "/topic/t"), open_timeout=RECV):
        wait_until(lambda: redis.channels("*") == {"robyn:3:t", "chat:t"}, what="channels")
    still_serving(a, b)


# ---- Redis lost and back ----------------------------------------------------------------


def test_redis_killed_and_restarted_mid_stream(start_app: StartApp, redis: RedisServer) -> None:
    url = redis.url + "?buffer=20&retry_max_ms=500"
    a, b = two_nodes(start_app, url)
    with sconnect(ws_url(a, "/topic/live"), open_timeout=RECV) as on_a, \
            sconnect(ws_url(b, "/topic/live"), open_timeout=RECV) as on_b:
        wait_until(lambda: redis.numsub("robyn:0:live") == 2, what="both subscribed")
        assert publish(a, "live", "before") == 1
        assert on_a.recv(timeout=RECV) == "before" and on_b.recv(timeout=RECV) == "before"

        redis.kill()
        wait_until(lambda: stats(a)["pubsub_connected"] == 0, what="a sees the outage")
        # Local delivery goes on; 20 publishes wait in the buffer, 10 do not fit.
        for i in range(30):
            assert publish(a, "live", f"during{i}") == 1
        assert [on_a.recv(timeout=RECV) for _ in range(30)] == [f"during{i}" for i in range(30)]
        s = stats(a)
        assert (s["pubsub_buffered"], s["pubsub_dropped"], s["pubsub_outages"]) == (20, 10, 1)
        nothing_within(on_b, 0.3)

        redis.start()
        # The buffered ones reach b, in order, once both nodes are back.
        assert [on_b.recv(timeout=10) for _ in range(20)] == [f"during{i}" for i in range(20)]
        wait_until(lambda: stats(a)["pubsub_connected"] == 1 and stats(b)["pubsub_connected"],
                   what="both connected")
        assert publish(a, "live", "after") == 1
        assert on_a.recv(timeout=RECV) == "after" and on_b.recv(timeout=RECV) == "after"
        on_b.send("from b")
        assert on_a.recv(timeout=RECV) == "from b"
        assert on_b.recv(timeout=RECV) == "reached 0"  # ws_app answers its sender
        nothing_within(on_b, 0.3)
    sa, sb = stats(a), stats(b)
    assert (sa["pubsub_buffered"], sa["pubsub_dropped"]) == (0, 10)
    assert sb["pubsub_gaps"] == 10  # b can tell that it missed the ten that were dropped
    # The overflow was said once, with where to see it.
    log = a.log()
    assert log.count("the outage buffer is full (20 messages") == 1, log
    assert "websocket_stats()['pubsub_dropped']" in log
    assert log.count("lost the connection to 127.0.0.1") == 1
    assert "reconnected to 127.0.0.1" in log and "20 publishes buffered, 10 dropped" in log
    still_serving(a, b)


# ---- AUTH -----------------------------------------------------------------------------------


def test_auth_with_a_password(start_app: StartApp, tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis", password="s3cret!")
    server.start()
    try:
        url = f"redis://:{'s3cret%21'}@127.0.0.1:{server.port}/0"
        a, b = two_nodes(start_app, url, app="redis_app")
        with sconnect(ws_url(a, "/topic/auth"), open_timeout=RECV) as on_a, \
                sconnect(ws_url(b, "/topic/auth"), open_timeout=RECV) as on_b:
            wait_until(lambda: server.numsub("robyn:0:auth") == 2, what="subscribed")
            on_a.send("authenticated")
            assert on_b.recv(timeout=RECV) == "authenticated"
        still_serving(a, b)
        log = failed_start(start_app, "redis_app", {
            "REDIS_APP_URL": f"redis://:wrong@127.0.0.1:{server.port}/0"})
        assert re.search(r"ConnectionError: pubsub_url: Redis at 127\.0\.0\.1:\d+/0 refused "
                         r"AUTH: WRONGPASS", log), log
        log = failed_start(start_app, "redis_app", {
            "REDIS_APP_URL": f"redis://127.0.0.1:{server.port}/0"})
        assert "needs a password: NOAUTH" in log, log
    finally:
        server.stop()


def test_auth_with_a_user_and_password(start_app: StartApp, redis: RedisServer) -> None:
    redis.cli("ACL", "SETUSER", "robyn", "on", ">pw", "~*", "&*", "+@all")
    url = f"redis://robyn:pw@127.0.0.1:{redis.port}/0"
    a, b = two_nodes(start_app, url)
    with sconnect(ws_url(a, "/topic/acl"), open_timeout=RECV) as on_a, \
            sconnect(ws_url(b, "/topic/acl"), open_timeout=RECV) as on_b:
        wait_until(lambda: redis.numsub("robyn:0:acl") == 2, what="subscribed")
        on_b.send("as robyn")
        assert on_a.recv(timeout=RECV) == "as robyn"
    assert "robyn" in redis.cli("CLIENT", "LIST")
    still_serving(a, b)
    log = failed_start(start_app, "ws_app", {
        "ROBYN_PUBSUB_URL": f"redis://robyn:nope@127.0.0.1:{redis.port}/0"})
    assert "refused AUTH: WRONGPASS" in log, log


# ---- at start ---------------------------------------------------------------------------


BAD_URLS = [
    ("http://127.0.0.1:6379", "the scheme must be redis://, not 'http://'"),
    ("redis://", "the host is missing: redis://host:port/db"),
    ("redis://127.0.0.1:0/0", "the port must be a number from 1 to 65535, not '0'"),
    ("redis://127.0.0.1:6379/abc", "the database must be a number (/0, /1 ...), not '/abc'"),
    ("redis://127.0.0.1?buffer=-1", "buffer must be a number of messages from 0 to 10000000"),
    ("redis://127.0.0.1?colour=blue", "unknown option 'colour' (known: buffer, buffer_bytes, "
                                      "prefix, retry_max_ms, connect_timeout_ms)"),
    ("redis://user@127.0.0.1", "a user needs a password: redis://user:password@host or "
                               "redis://:password@host"),
    ("rediss://127.0.0.1", "rediss:// (TLS) is not supported: this build's hiredis has no TLS"),
]


@pytest.mark.parametrize("url,message", BAD_URLS)
def test_a_bad_url_is_a_value_error_at_construction(url: str, message: str) -> None:
    from robyn import Robyn

    with pytest.raises(ValueError) as info:
        Robyn(__file__, pubsub_url=url)
    assert str(info.value).startswith(f"pubsub_url: {message}")
    with pytest.raises(TypeError, match="pubsub_url must be a str, not int"):
        Robyn(__file__, pubsub_url=6379)  # type: ignore[arg-type]


def test_a_bad_url_in_the_environment_stops_the_start(start_app: StartApp) -> None:
    log = failed_start(start_app, "ws_app", {"ROBYN_PUBSUB_URL": "http://127.0.0.1:6379"})
    assert "ValueError: ROBYN_PUBSUB_URL: the scheme must be redis://, not 'http://'" in log, log
    assert "Robyn listening" not in log


def test_an_unreachable_redis_at_start_stops_the_start(start_app: StartApp) -> None:
    port = free_port()
    log = failed_start(start_app, "ws_app", {"ROBYN_PUBSUB_URL": f"redis://127.0.0.1:{port}/0"})
    assert (f"ConnectionError: ROBYN_PUBSUB_URL: cannot connect to Redis at 127.0.0.1:{port}/0: "
            "Connection refused (Robyn does not start without the Redis it is configured "
            "with)") in log, log
    assert "Robyn listening" not in log
    log = failed_start(start_app, "ws_app",
                       {"ROBYN_PUBSUB_URL": "redis://no-such-host.invalid:6379/0"})
    assert "cannot resolve the Redis host 'no-such-host.invalid'" in log, log


def test_a_database_redis_does_not_have_stops_the_start(start_app: StartApp,
                                                        redis: RedisServer) -> None:
    log = failed_start(start_app, "ws_app",
                       {"ROBYN_PUBSUB_URL": f"redis://127.0.0.1:{redis.port}/99"})
    assert f"Redis at 127.0.0.1:{redis.port}/99 refused database 99: ERR DB index is out of " \
           "range" in log, log


def test_the_environment_wins_over_the_keyword(start_app: StartApp, redis: RedisServer) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    a = start_app("redis_app", env={"REDIS_APP_URL": dead, "ROBYN_PUBSUB_URL": redis.url})
    with sconnect(ws_url(a, "/topic/env"), open_timeout=RECV):
        wait_until(lambda: redis.channels() == {"robyn:0:env"}, what="env URL used")
    assert json.loads(http(a.address, "GET", "/stats")[1])["pubsub_connected"] == 1
    still_serving(a)


def test_without_a_url_there_is_no_redis_bus(start_app: StartApp) -> None:
    a = start_app("ws_app")
    s = stats(a)
    assert not [k for k in s if k.startswith("pubsub_")], s
    still_serving(a)
