"""Topics with history and presence (docs/realtime.md), against a real server
(apps/realtime_app.py) with real `websockets` clients.

- history reads are exact: what is held, the newest N, the first N after a position, gone;
- a client that reconnects with since=(epoch, offset) while a publisher sends 1,000
  messages/s gets every message exactly once, in order, across several reconnects;
- gone: an evicted position, another epoch, a position beyond the last, all say so;
- presence: join/leave events, app.presence() with each member's info, right after a close;
- every bad argument has its exact error, and the server serves afterwards.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as sconnect

from apps.ws_wire import http, wait_until
from conftest import AppServer, StartApp

RECV = 5.0


@pytest.fixture(scope="module", params=["1", "2"], ids=["workers1", "workers2"])
def server(module_app: StartApp, request: pytest.FixtureRequest) -> Iterator[AppServer]:
    """With --workers 2 the connections of a test spread over two I/O shards, which share
    the process's one history (shard 0's) and presence: every test holds for both."""
    yield module_app("realtime_app", env={"ROBYN_WORKERS": request.param})


def url(server: AppServer, path: str) -> str:
    return f"ws://127.0.0.1:{server.port}{path}"


def get(server: AppServer, path: str) -> tuple[int, Any]:
    status, body = http(server.address, "GET", path)
    return status, json.loads(body)


def publish(server: AppServer, topic: str, body: str) -> dict[str, Any]:
    status, data = http(server.address, "POST", f"/publish/{quote(topic)}", body.encode())
    assert status == 200, data
    return json.loads(data)


def still_serving(server: AppServer) -> None:
    assert http(server.address, "GET", "/") == (200, b"ok")
    with sconnect(url(server, "/live/feed:alive?last=0"), open_timeout=RECV) as ws:
        assert json.loads(ws.recv(timeout=RECV))["type"] == "recovered"


def history(server: AppServer, topic: str, **query: Any) -> tuple[int, Any]:
    q = "&".join(f"{k}={quote(str(v))}" for k, v in query.items())
    return get(server, f"/history/{quote(topic)}" + (f"?{q}" if q else ""))


# ---- history reads ------------------------------------------------------------------------


def test_publish_answers_offsets_and_history_reads_are_exact(server: AppServer) -> None:
    first = publish(server, "short:exact", "hello")
    epoch = first["epoch"]
    assert first == {"reached": 0, "epoch": epoch, "offset": 1}
    for n in range(2, 8):
        assert publish(server, "short:exact", json.dumps({"n": n})) == {
            "reached": 0, "epoch": epoch, "offset": n}
    # A ring of 5: offsets 3..7 are held, with the data as published (JSON values stay so).
    assert history(server, "short:exact") == (200, {"messages": [
        [epoch, n, {"n": n}] for n in range(3, 8)]})
    assert history(server, "short:exact", limit=2) == (200, {"messages": [
        [epoch, 6, {"n": 6}], [epoch, 7, {"n": 7}]]})
    assert history(server, "short:exact", epoch=epoch, offset=3, limit=2) == (200, {"messages": [
        [epoch, 4, {"n": 4}], [epoch, 5, {"n": 5}]]})
    assert history(server, "short:exact", epoch=epoch, offset=7) == (200, {"messages": []})
    assert history(server, "short:exact", epoch=epoch, offset=2) == (200, {"messages": [
        [epoch, n, {"n": n}] for n in range(3, 8)]})
    gone = {"gone": True, "epoch": epoch, "offset": 7}
    assert history(server, "short:exact", epoch=epoch, offset=1) == (410, gone)  # 2 is forgotten
    assert history(server, "short:exact", epoch=epoch, offset=8) == (410, gone)  # beyond the last
    assert history(server, "short:exact", epoch="ffffffffff.1", offset=5) == (410, gone)
    # A topic of a history pattern nothing was published to: empty, and no epoch is its own.
    assert history(server, "short:never") == (200, {"messages": []})
    assert history(server, "short:never", epoch=epoch, offset=0)[0] == 410
    still_serving(server)


def test_each_topic_counts_its_own_offsets(server: AppServer) -> None:
    a = publish(server, "feed:own-a", "x")
    b = publish(server, "feed:own-b", "x")
    assert (a["offset"], b["offset"]) == (1, 1)
    assert a["epoch"] != b["epoch"]
    assert publish(server, "feed:own-a", "y")["offset"] == 2
    # A topic without history keeps answering a plain count, with no offset.
    assert publish(server, "plain", "z") == {"reached": 0, "epoch": None, "offset": None}


def test_ttl_forgets_old_messages(server: AppServer) -> None:
    epoch = publish(server, "ttl:t", "old")["epoch"]
    publish(server, "ttl:t", "older")
    assert [m[2] for m in history(server, "ttl:t")[1]["messages"]] == ["old", "older"]
    time.sleep(0.6)  # the ttl is 0.5 s
    publish(server, "ttl:t", "new")
    assert history(server, "ttl:t") == (200, {"messages": [[epoch, 3, "new"]]})
    assert history(server, "ttl:t", epoch=epoch, offset=2) == (200, {"messages": [[epoch, 3, "new"]]})
    assert history(server, "ttl:t", epoch=epoch, offset=1)[0] == 410
    # Without a publish or a read, the once-a-second sweep forgets too (seen by the next read).
    time.sleep(0.6)
    assert history(server, "ttl:t", epoch=epoch, offset=3) == (200, {"messages": []})


def test_bad_history_arguments(server: AppServer) -> None:
    assert history(server, "nothing:here") == (400, {"error": (
        "ValueError: topic 'nothing:here' keeps no history: give it one with "
        "app.topic(pattern, history=N) before the app starts")})
    assert history(server, "short:exact", limit=0) == (400, {
        "error": "ValueError: limit must be a positive int or None, not 0"})
    assert history(server, "short:exact", epoch="", offset=1) == (400, {
        "error": "ValueError: since: '' is not an epoch"})
    assert history(server, "short:exact", epoch="e.1", offset=-1) == (400, {
        "error": "ValueError: since: the offset must be between 0 and 2**64 - 1, not -1"})
    status, body = http(server.address, "POST", "/publish-bytes/short:exact", b"raw")
    assert (status, json.loads(body)) == (400, {"error": (
        "topic 'short:exact' keeps history: its messages are JSON text, so publish str or "
        "a JSON value, not bytes")})
    assert get(server, "/topic-after-start") == (500, {
        "error": "app.topic('late:*') must be called before the app starts"})
    still_serving(server)


# ---- recovery ----------------------------------------------------------------------------


def envelope(frame: str | bytes) -> dict[str, Any]:
    assert isinstance(frame, str)
    value = json.loads(frame)
    assert isinstance(value, dict)
    return value


def test_live_messages_come_in_their_envelope(server: AppServer) -> None:
    with sconnect(url(server, "/live/feed:env?last=0"), open_timeout=RECV) as ws:
        hello = envelope(ws.recv(timeout=RECV))
        assert hello == {"type": "recovered", "replayed": 0, "epoch": hello["epoch"], "offset": 0}
        published = publish(server, "feed:env", "hi")
        assert published["reached"] == 1
        assert envelope(ws.recv(timeout=RECV)) == {
            "epoch": hello["epoch"], "offset": 1, "topic": "feed:env", "data": "hi"}
        publish(server, "feed:env", json.dumps({"k": [1, 2]}))
        assert envelope(ws.recv(timeout=RECV))["data"] == {"k": [1, 2]}


def test_last_replays_the_newest_held(server: AppServer) -> None:
    for n in range(1, 10):
        publish(server, "short:last", str(n))
    with sconnect(url(server, "/live/short:last?last=3"), open_timeout=RECV) as ws:
        got = [envelope(ws.recv(timeout=RECV)) for _ in range(4)]
    assert [(m["offset"], m["data"]) for m in got[:3]] == [(7, "7"), (8, "8"), (9, "9")]
    assert got[3] == {"type": "recovered", "replayed": 3, "epoch": got[0]["epoch"], "offset": 9}


def test_recovery_has_no_gap_and_no_duplicate_at_1000_per_second(server: AppServer) -> None:
    topic, total = "feed:pump", 3000
    seen: list[int] = []
    with sconnect(url(server, f"/live/{topic}?last=0"), open_timeout=RECV) as ws:
        hello = envelope(ws.recv(timeout=RECV))
        assert hello["replayed"] == 0
        epoch = hello["epoch"]
        assert http(server.address, "POST", f"/pump/{topic}?n={total}&rate=1000")[0] == 200
        while len(seen) < 400:
            m = envelope(ws.recv(timeout=RECV))
            seen.append(m["offset"])
    reconnects = 0
    recovered_counts = []
    while seen[-1] < total:
        # Away for a moment while the publisher goes on, then back with the last offset.
        time.sleep(0.05)
        reconnects += 1
        with sconnect(url(server, f"/live/{topic}?epoch={epoch}&offset={seen[-1]}"),
                      open_timeout=RECV) as ws:
            # Offsets come consecutively, so reading stops exactly at stop_at; the handler's
            # "recovered" (sent after the subscribe, so after the replay) may come before
            # that or not.
            stop_at = min(total, seen[-1] + 400)
            while seen[-1] < stop_at:
                m = envelope(ws.recv(timeout=RECV))
                if m.get("type") == "recovered":
                    assert m["epoch"] == epoch
                    recovered_counts.append(m["replayed"])
                    continue
                assert m["epoch"] == epoch
                seen.append(m["offset"])
            ws.socket.shutdown(socket.SHUT_RDWR)  # cut, whatever is still on its way
    assert seen == list(range(1, total + 1))
    assert reconnects == 7  # (3,000 - 400) / 400, rounded up
    # A replay is what the client missed while away: never more than what followed its
    # position when it came back.
    assert all(0 <= n <= total for n in recovered_counts)
    wait_until(lambda: get(server, "/pump-done")[1]["done"] >= 1, 10, what="the pump's end")


def test_recovery_is_exact_with_publishers_on_several_threads(server: AppServer) -> None:
    """Four threads publish at once (numbering and queueing race each other); a client
    reconnecting meanwhile still sees offsets 1..N once each, and every message."""
    topic, threads, per_thread = "feed:threads", 4, 1000
    total = threads * per_thread
    offsets: list[int] = []
    data: list[tuple[int, int]] = []
    with sconnect(url(server, f"/live/{topic}?last=0"), open_timeout=RECV) as ws:
        epoch = envelope(ws.recv(timeout=RECV))["epoch"]
        assert http(server.address, "POST", f"/pump-threads/{topic}?n={per_thread}&threads={threads}")[0] == 200
        while len(offsets) < 500:
            m = envelope(ws.recv(timeout=RECV))
            offsets.append(m["offset"])
            data.append((m["data"]["t"], m["data"]["i"]))
        ws.socket.shutdown(socket.SHUT_RDWR)
    reconnects = 0
    while offsets[-1] < total:
        reconnects += 1
        assert reconnects <= 50
        with sconnect(url(server, f"/live/{topic}?epoch={epoch}&offset={offsets[-1]}"),
                      open_timeout=RECV) as ws:
            stop_at = min(total, offsets[-1] + 700)
            while offsets[-1] < stop_at:
                m = envelope(ws.recv(timeout=RECV))
                if m.get("type") == "recovered":
                    continue
                offsets.append(m["offset"])
                data.append((m["data"]["t"], m["data"]["i"]))
            # Cut, with the rest of the replay unread (the client would not read it to
            # see a close frame behind it).
            ws.socket.shutdown(socket.SHUT_RDWR)
    assert offsets == list(range(1, total + 1))
    assert sorted(data) == [(k, i) for k in range(threads) for i in range(1, per_thread + 1)]
    # Each thread's own messages keep their order.
    for k in range(threads):
        assert [i for t, i in data if t == k] == list(range(1, per_thread + 1))


def test_gone_positions_say_where_the_topic_is(server: AppServer) -> None:
    for n in range(1, 12):
        epoch = publish(server, "short:gone", str(n))["epoch"]
    last = 11
    # Forgotten (2 is out of a ring of 5), beyond the last offset, another epoch.
    for query in (f"epoch={epoch}&offset=2", f"epoch={epoch}&offset=99", "epoch=abc.1&offset=5"):
        with sconnect(url(server, f"/live/short:gone?{query}"), open_timeout=RECV) as ws:
            assert envelope(ws.recv(timeout=RECV)) == {"type": "gone", "epoch": epoch, "offset": last}
            # ... and it goes on live from there.
            publish(server, "short:gone", "after")
            last += 1
            m = envelope(ws.recv(timeout=RECV))
            assert (m["epoch"], m["offset"], m["data"]) == (epoch, last, "after")
    still_serving(server)


def test_a_replay_past_the_send_limit_is_a_slow_consumer(server: AppServer) -> None:
    """5,000 messages of about 330 bytes (1.6 MB) asked for at once, against a send limit
    of 1 MiB: the endpoint's policy ("close") closes the connection with 1008."""
    topic = "feed:big"
    epoch = publish(server, topic, "first")["epoch"]
    assert http(server.address, "POST", f"/pump/{topic}?n=4999&rate=1000000&pad=300")[0] == 200
    wait_until(lambda: history(server, topic, limit=1)[1]["messages"][0][1] == 5000, 10,
               what="the 5,000th message")
    with sconnect(url(server, f"/live/{topic}?epoch={epoch}&offset=0"), open_timeout=RECV) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            for _ in range(5001):
                ws.recv(timeout=RECV)
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (1008, "send queue over its limit")
    still_serving(server)


def test_bad_subscribe_arguments(server: AppServer) -> None:
    cases = {
        "/live/plain?last=1": ("ValueError: topic 'plain' keeps no history: give it one with "
                               "app.topic(pattern, history=N) before the app starts"),
        "/live/feed:bad?last=-1": "ValueError: last must be an int >= 0, not -1",
        "/live/feed:bad?epoch=": "ValueError: since: '' is not an epoch",
        "/join/feed:bad?name=x": ("ValueError: topic 'feed:bad' has no presence: give it "
                                  "app.topic(pattern, presence=True) before the app starts"),
    }
    for path, error in cases.items():
        with sconnect(url(server, path), open_timeout=RECV) as ws:
            assert envelope(ws.recv(timeout=RECV)) == {"type": "error", "error": error}
    still_serving(server)


def test_a_sync_handler_recovers_too(server: AppServer) -> None:
    epoch = publish(server, "feed:sync", "one")["epoch"]
    publish(server, "feed:sync", "two")
    with sconnect(url(server, f"/live/feed:sync?epoch={epoch}&offset=0"), open_timeout=RECV) as ws:
        assert [envelope(ws.recv(timeout=RECV))["data"] for _ in range(2)] == ["one", "two"]
    with sconnect(url(server, f"/sync-live/feed:sync?epoch={epoch}&offset=1"), open_timeout=RECV) as ws:
        m = envelope(ws.recv(timeout=RECV))
        assert (m["offset"], m["data"]) == (2, "two")
        assert envelope(ws.recv(timeout=RECV)) == {"type": "recovered", "replayed": 1}
        publish(server, "feed:sync", "three")
        assert envelope(ws.recv(timeout=RECV))["data"] == "three"


def test_a_connection_publishes_with_offsets(server: AppServer) -> None:
    with sconnect(url(server, "/say/feed:say"), open_timeout=RECV) as a:
        a.send("first")  # answered once a's handler is subscribed and reading
        first = envelope(a.recv(timeout=RECV))
        epoch = first["epoch"]
        assert first == {"reached": 0, "epoch": epoch, "offset": 1}
        with sconnect(url(server, "/say/feed:say"), open_timeout=RECV) as b:
            b.send("second")
            # The sender is not counted and gets no copy; a gets the envelope.
            assert envelope(b.recv(timeout=RECV)) == {"reached": 1, "epoch": epoch, "offset": 2}
            assert envelope(a.recv(timeout=RECV)) == {"epoch": epoch, "offset": 2,
                                                     "topic": "feed:say", "data": "second"}
            a.send("third")
            assert envelope(a.recv(timeout=RECV)) == {"reached": 1, "epoch": epoch, "offset": 3}
            assert envelope(b.recv(timeout=RECV)) == {"epoch": epoch, "offset": 3,
                                                     "topic": "feed:say", "data": "third"}


def test_since_after_a_plain_subscribe_is_refused(server: AppServer) -> None:
    with sconnect(url(server, "/twice/feed:twice"), open_timeout=RECV) as ws:
        assert envelope(ws.recv(timeout=RECV)) == {"type": "error", "error": (
            "ValueError: this connection is already subscribed to 'feed:twice': a subscribe "
            "with since= or last= must be its first")}
    still_serving(server)


# ---- presence ------------------------------------------------------------------------------


def presence(server: AppServer, topic: str) -> dict[str, Any]:
    status, body = get(server, f"/presence/{quote(topic)}")
    assert status == 200, body
    return body


def test_presence_follows_joins_leaves_and_closes(server: AppServer) -> None:
    topic = "room:p"
    assert presence(server, topic) == {"count": 0, "members": []}
    with sconnect(url(server, f"/join/{topic}?name=ann"), open_timeout=RECV) as ann:
        joined = json.loads(ann.recv(timeout=RECV))
        assert joined["presence"] == "join" and joined["info"] == {"name": "ann"}
        ann_id = joined["id"]
        with sconnect(url(server, f"/join/{topic}?name=bob"), open_timeout=RECV) as bob:
            bob_join = json.loads(ann.recv(timeout=RECV))
            assert bob_join["presence"] == "join" and bob_join["info"] == {"name": "bob"}
            bob_id = bob_join["id"]
            assert json.loads(bob.recv(timeout=RECV)) == bob_join  # the joiner sees its own join
            assert presence(server, topic) == {"count": 2, "members": [
                [ann_id, {"name": "ann"}], [bob_id, {"name": "bob"}]]}
            bob.send("who")
            assert json.loads(bob.recv(timeout=RECV)) == {"type": "who", "members": [
                [ann_id, {"name": "ann"}], [bob_id, {"name": "bob"}]]}
        # bob's connection closed: the others hear it before anything else, and
        # app.presence() no longer lists it by then.
        assert json.loads(ann.recv(timeout=RECV)) == {"presence": "leave", "id": bob_id,
                                                      "info": {"name": "bob"}}
        assert presence(server, topic) == {"count": 1, "members": [[ann_id, {"name": "ann"}]]}
        # An unsubscribe leaves too.
        ann.send("leave")
        assert json.loads(ann.recv(timeout=RECV)) == {"type": "left"}
        assert presence(server, topic) == {"count": 0, "members": []}
    assert get(server, "/presence/feed:x") == (400, {"error": (
        "ValueError: topic 'feed:x' has no presence: give it app.topic(pattern, presence=True) "
        "before the app starts")})
    still_serving(server)


def test_presence_after_an_abrupt_close(server: AppServer) -> None:
    """The client's TCP connection is cut without a close frame."""
    topic = "both:cut"
    with sconnect(url(server, f"/join/{topic}?name=cut"), open_timeout=RECV) as ws:
        wait_until(lambda: presence(server, topic)["count"] == 1, 5, what="the member")
        assert presence(server, topic)["members"][0][1] == {"name": "cut"}
        ws.socket.shutdown(socket.SHUT_RDWR)  # no close handshake: the server reads end of file
        wait_until(lambda: presence(server, topic)["count"] == 0, 2, what="the member gone")
    assert presence(server, topic) == {"count": 0, "members": []}
    still_serving(server)


# ---- options checked in the process ------------------------------------------------------


def test_topic_options_are_checked() -> None:
    from robyn import Robyn

    app = Robyn(__file__)
    cases: list[tuple[dict[str, Any], type[Exception], str]] = [
        ({"pattern": 3, "history": 1}, TypeError, "app.topic(): the pattern must be a str, not int"),
        ({"pattern": "", "history": 1}, ValueError,
         "app.topic(): '' is not a topic pattern (non-empty, no backslash or NUL, not starting with \\x01)"),
        ({"pattern": "a\\*", "history": 1}, ValueError,
         "app.topic(): 'a\\\\*' is not a topic pattern (non-empty, no backslash or NUL, not starting with \\x01)"),
        ({"pattern": "a", "history": "5"}, TypeError, "app.topic(history=...) must be an int, not str"),
        ({"pattern": "a", "history": True}, TypeError, "app.topic(history=...) must be an int, not bool"),
        ({"pattern": "a", "history": -1}, ValueError,
         "app.topic(history=...) must be between 0 and 1000000, not -1"),
        ({"pattern": "a", "history": 1_000_001}, ValueError,
         "app.topic(history=...) must be between 0 and 1000000, not 1000001"),
        ({"pattern": "a", "history": 5, "ttl": 0}, ValueError,
         "app.topic(ttl=...) must be more than 0 seconds and at most a year, not 0"),
        ({"pattern": "a", "history": 5, "ttl": "1"}, TypeError,
         "app.topic(ttl=...) must be a number of seconds, not str"),
        ({"pattern": "a", "ttl": 5, "presence": True}, ValueError,
         "app.topic(ttl=...) needs history=N: the ttl is how long history keeps a message"),
        ({"pattern": "a", "presence": 1}, TypeError, "app.topic(presence=...) must be True or False, not 1"),
        ({"pattern": "a", "history": 1, "presence_events": True}, ValueError,
         "app.topic(presence_events=True) needs presence=True"),
        ({"pattern": "a"}, ValueError, "app.topic('a') asks for nothing: give history=N or presence=True"),
    ]
    for kwargs, kind, message in cases:
        with pytest.raises(kind) as caught:
            app.topic(**kwargs)
        assert str(caught.value) == message, kwargs
    app.topic("room:*", history=10, presence=True)
    with pytest.raises(ValueError) as caught:
        app.topic("room:*", presence=True)
    assert str(caught.value) == "app.topic(): the pattern 'room:*' is already configured"
    # Nothing refused was kept: only room:* has options.
    assert [o.pattern for o in app._topics.options] == ["room:*"]
    with pytest.raises(ValueError) as caught:
        app.history("lobby")
    assert str(caught.value) == ("topic 'lobby' keeps no history: give it one with "
                                 "app.topic(pattern, history=N) before the app starts")
    assert app.history("room:1") == []
    with pytest.raises(TypeError) as caught:
        app.history("room:1", since=("e.1",))  # type: ignore[arg-type]
    assert str(caught.value) == "since must be an (epoch, offset) pair of a str and an int, not ('e.1',)"
    assert app.presence("room:1") == [] and app.presence_count("room:1") == 0
