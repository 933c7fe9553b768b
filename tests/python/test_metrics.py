"""app.enable_metrics(): the Prometheus exposition the I/O thread serves
(tests/python/apps/metrics_app.py), parsed by prometheus_client's own text parser, with real
HTTP and WebSocket clients. Counts are checked exactly: after a known sequence of requests
and messages, each counter has moved by exactly what that sequence makes it move (every
scrape is itself a request on a connection of its own, and is counted as such).

Registration errors are checked in-process, each with its exact exception.
"""

from __future__ import annotations

import http.client as httpclient
import json
import socket
import time
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.sync.client import connect as sconnect

from apps.ws_wire import http, wait_until
from conftest import AppServer, RawConn, StartApp

RECV = 5.0
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> tuple[Samples, dict[str, str]]:
    """Every sample by (name, sorted labels), and every family's type."""
    samples: Samples = {}
    types = {}
    for family in text_string_to_metric_families(text):
        types[family.name] = family.type
        for s in family.samples:
            key = (s.name, tuple(sorted(s.labels.items())))
            assert key not in samples, f"sample {key} twice"
            samples[key] = s.value
    return samples, types


def scrape(server: AppServer) -> Samples:
    """One GET /metrics on a connection of its own."""
    conn = httpclient.HTTPConnection(server.host, server.port, timeout=RECV)
    try:
        conn.request("GET", "/metrics")
        response = conn.getresponse()
        assert response.status == 200
        assert response.getheader("content-type") == CONTENT_TYPE
        body = response.read()
    finally:
        conn.close()
    return parse(body.decode("utf-8"))[0]


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def still_serving(server: AppServer) -> None:
    assert http(server.address, "GET", "/") == (200, b"Hello, world!")
    with sconnect(f"ws://127.0.0.1:{server.port}/echo", open_timeout=RECV) as ws:
        ws.send("still there?")
        assert ws.recv(timeout=RECV) == "still there?"
    assert value(scrape(server), "robyn_http_responses_total", status_class="2xx") > 0


@pytest.fixture(params=["1", "2"], ids=["workers1", "workers2"])
def server(start_app: StartApp, request: pytest.FixtureRequest) -> Iterator[AppServer]:
    """A fresh server per test: absolute WebSocket counts start at zero. With --workers 2 the
    figures are both I/O threads' summed, and must be the same."""
    yield start_app("metrics_app", env={"ROBYN_WORKERS": request.param})


def test_counts_after_a_known_sequence(server: AppServer) -> None:
    before = scrape(server)
    # Nothing touched a WebSocket endpoint yet: every counter of theirs is zero.
    for endpoint in ("/echo", "/room", "/droproom", "/slowroom", "/closer", "/guarded"):
        assert value(before, "robyn_ws_connections_total", endpoint=endpoint) == 0
        assert value(before, "robyn_ws_open_connections", endpoint=endpoint) == 0
        assert value(before, "robyn_ws_queued_bytes", endpoint=endpoint) == 0

    for _ in range(3):
        assert http(server.address, "GET", "/") == (200, b"Hello, world!")
    assert http(server.address, "GET", "/async") == (200, b"async")
    assert http(server.address, "GET", "/const") == (200, b"const")
    assert http(server.address, "GET", "/nowhere")[0] == 404
    assert http(server.address, "GET", "/moved")[0] == 302
    assert http(server.address, "GET", "/boom")[0] == 500
    with sconnect(f"ws://127.0.0.1:{server.port}/echo", open_timeout=RECV) as ws:
        ws.send("hi")
        assert ws.recv(timeout=RECV) == "hi"
        ws.send("yo")
        assert ws.recv(timeout=RECV) == "yo"
        ws.close(1000)

    # The server ends its side of the close a moment after the client has seen it.
    scrapes = 0

    def closed() -> bool:
        nonlocal scrapes, after
        scrapes += 1
        after = scrape(server)
        # With two I/O threads the other one's gauges are as of its last sweep (250 ms).
        return value(after, "robyn_ws_open_connections", endpoint="/echo") == 0 and \
            value(after, "robyn_http_open_connections") == 1 and \
            ("robyn_ws_closes_total", (("code", "1000"), ("endpoint", "/echo"))) in after

    after: Samples = {}
    wait_until(closed, RECV, what="the /echo connection counted as closed")

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    # 9 connections of the sequence (8 HTTP, 1 upgraded) and one per scrape after the first.
    assert moved("robyn_http_connections_total") == 9 + scrapes
    # Only the scrape being answered is open.
    assert value(after, "robyn_http_open_connections") == 1
    # 2xx: 3 "/" + /async + /const, and each earlier scrape (the first one included).
    assert moved("robyn_http_responses_total", status_class="2xx") == 5 + scrapes
    assert moved("robyn_http_responses_total", status_class="1xx") == 1  # the upgrade's 101
    assert moved("robyn_http_responses_total", status_class="3xx") == 1
    assert moved("robyn_http_responses_total", status_class="4xx") == 1
    assert moved("robyn_http_responses_total", status_class="5xx") == 1
    assert moved("robyn_http_request_duration_seconds_count") == 9 + scrapes
    assert moved("robyn_http_request_duration_seconds_bucket", le="+Inf") == 9 + scrapes
    assert moved("robyn_http_request_duration_seconds_sum") > 0

    assert value(after, "robyn_ws_connections_total", endpoint="/echo") == 1
    assert value(after, "robyn_ws_open_connections", endpoint="/echo") == 0
    assert value(after, "robyn_ws_messages_received_total", endpoint="/echo") == 2
    assert value(after, "robyn_ws_messages_sent_total", endpoint="/echo") == 2
    assert value(after, "robyn_ws_deliveries_total", endpoint="/echo") == 0
    assert value(after, "robyn_ws_closes_total", endpoint="/echo", code="1000") == 1
    # In: two masked text frames of 2 bytes (2 + 4 + 2 each) and a masked close with its
    # code (2 + 4 + 2). Out: two text frames (2 + 2) and the close echoed (2 + 2).
    assert value(after, "robyn_ws_received_bytes_total", endpoint="/echo") == 24
    assert value(after, "robyn_ws_sent_bytes_total", endpoint="/echo") == 12
    assert value(after, "robyn_ws_queued_bytes", endpoint="/echo") == 0
    assert value(after, "robyn_ws_connections_total", endpoint="/closer") == 0
    assert value(after, "robyn_pubsub_bus_info", bus="local") == 1
    assert value(after, "robyn_pubsub_connected") == 1
    assert value(after, "robyn_pubsub_buffered_publishes") == 0
    still_serving(server)


def test_exposition_format(server: AppServer) -> None:
    conn = httpclient.HTTPConnection(server.host, server.port, timeout=RECV)
    conn.request("GET", "/metrics")
    response = conn.getresponse()
    body = response.read().decode("utf-8")
    conn.close()
    assert response.status == 200
    assert response.getheader("content-type") == CONTENT_TYPE
    assert int(response.getheader("content-length")) == len(body.encode())
    samples, types = parse(body)
    # prometheus_client names counter families without their _total suffix.
    assert types == {
        "robyn_http_open_connections": "gauge",
        "robyn_http_connections": "counter",
        "robyn_http_responses": "counter",
        "robyn_http_request_duration_seconds": "histogram",
        "robyn_ws_open_connections": "gauge",
        "robyn_ws_connections": "counter",
        "robyn_ws_messages_received": "counter",
        "robyn_ws_messages_sent": "counter",
        "robyn_ws_deliveries": "counter",
        "robyn_ws_dropped_messages": "counter",
        "robyn_ws_slow_consumer_closes": "counter",
        "robyn_ws_received_bytes": "counter",
        "robyn_ws_sent_bytes": "counter",
        "robyn_ws_queued_bytes": "gauge",
        "robyn_ws_closes": "counter",
        "robyn_pubsub_publishes": "counter",
        "robyn_pubsub_bus_info": "gauge",
        "robyn_pubsub_connected": "gauge",
        "robyn_pubsub_buffered_publishes": "gauge",
        "robyn_pubsub_lost_publishes": "counter",
        "robyn_pubsub_published": "counter",
        "robyn_pubsub_received": "counter",
    }
    # Every line is a comment or a sample; each family has HELP and TYPE.
    for line in body.splitlines():
        assert line.startswith(("# HELP robyn_", "# TYPE robyn_", "robyn_")), line
    buckets = [(labels, v) for (name, labels), v in samples.items()
               if name == "robyn_http_request_duration_seconds_bucket"]
    bounds = [dict(labels)["le"] for labels, _ in buckets]
    assert bounds == ["0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025",
                      "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"]
    counts = [v for _, v in buckets]
    assert counts == sorted(counts)  # cumulative
    assert counts[-1] == value(samples, "robyn_http_request_duration_seconds_count")
    # Without --processes there is no worker label.
    assert "worker=" not in body
    still_serving(server)


def test_head_and_other_methods(server: AppServer) -> None:
    with RawConn(server.address) as conn:
        # HEAD: the head of a GET, no body: the GET right behind it on the same connection
        # is read as the next answer.
        conn.send(b"HEAD /metrics HTTP/1.1\r\nHost: t\r\n\r\nGET /metrics HTTP/1.1\r\nHost: t\r\n\r\n")
        head = conn.read_head()
        assert head.status == 200
        assert head.header("content-type") == CONTENT_TYPE
        assert int(head.header("content-length") or 0) > 1000
        get = conn.read_response()
        assert get.status == 200
        assert get.header("content-type") == CONTENT_TYPE
        assert get.body.startswith(b"# HELP robyn_http_open_connections ")
        for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
            conn.send(f"{method} /metrics HTTP/1.1\r\nHost: t\r\ncontent-length: 2\r\n\r\nab"
                      .encode())
            refused = conn.read_response()
            assert refused.status == 405, method
            assert refused.header("allow") == "GET, HEAD"
            assert refused.body == b"Method not allowed"
    # HTTP/1.0: closed after the answer unless the client asks for keep-alive.
    with RawConn(server.address) as conn:
        conn.send(b"GET /metrics HTTP/1.0\r\n\r\n")
        answer = conn.read_response()
        assert answer.status == 200 and answer.header("connection") == "close"
        assert answer.body.startswith(b"# HELP ")
        assert conn.closed_by_server()
    with RawConn(server.address) as conn:
        conn.send(b"GET /metrics HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        answer = conn.read_response()
        assert answer.status == 200 and answer.header("connection") == "keep-alive"
        conn.send(b"GET /metrics HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        assert conn.read_response().status == 200  # the connection was kept
    still_serving(server)


def test_the_trailing_slash_and_a_query_are_the_same_path(server: AppServer) -> None:
    for target in ("/metrics/", "/metrics?x=1", "//metrics"):
        conn = httpclient.HTTPConnection(server.host, server.port, timeout=RECV)
        conn.request("GET", target)
        response = conn.getresponse()
        assert response.status == 200, target
        assert response.getheader("content-type") == CONTENT_TYPE
        response.read()
        conn.close()
    still_serving(server)


def publish(server: AppServer, topic: str, body: bytes) -> int:
    status, answer = http(server.address, "POST", f"/publish/{topic}", body)
    assert status == 200
    return int(json.loads(answer)["reached"])


def stalled_subscriber(server: AppServer, path: str) -> socket.socket:
    """A WebSocket client that completes its handshake and then never reads."""
    sock = socket.create_connection(server.address, timeout=RECV)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
                 .encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101 ")
    return sock


def flood(server: AppServer, topic: str, count: int, size: int) -> int:
    status, answer = http(server.address, "POST", f"/flood/{topic}", f"{count} {size}".encode(),
                          timeout=30)
    assert status == 200
    return int(json.loads(answer)["reached"])


def test_deliveries_drops_and_slow_consumer_closes(start_app: StartApp) -> None:
    # A small send limit, so that a subscriber that does not read reaches it once the
    # kernel's socket buffers are full (16 MB is well past them).
    server = start_app("metrics_app", env={"ROBYN_WS_SEND_LIMIT": "65536",
                                           "ROBYN_WS_HIGH_WATER": "16384"})
    drop = stalled_subscriber(server, "/droproom")
    slow = stalled_subscriber(server, "/slowroom")
    try:
        wait_until(lambda: publish(server, "droproom", b"") == 1, RECV, what="the drop subscriber")
        wait_until(lambda: publish(server, "slowroom", b"") == 1, RECV, what="the slow subscriber")
        sent_drop = 1 + flood(server, "droproom", 1000, 16384)
        assert sent_drop == 1001  # the policy keeps the subscriber: every publish reached it

        def settled() -> bool:
            s = scrape(server)
            return value(s, "robyn_ws_deliveries_total", endpoint="/droproom") + \
                value(s, "robyn_ws_dropped_messages_total", endpoint="/droproom") == sent_drop
        wait_until(settled, RECV, what="every publish delivered or dropped")
        s = scrape(server)
        delivered = value(s, "robyn_ws_deliveries_total", endpoint="/droproom")
        dropped = value(s, "robyn_ws_dropped_messages_total", endpoint="/droproom")
        assert dropped >= 1 and delivered >= 1
        assert value(s, "robyn_ws_messages_sent_total", endpoint="/droproom") == delivered
        assert value(s, "robyn_ws_open_connections", endpoint="/droproom") == 1
        # What waits in the queue is under its limit (what the socket did not take may also
        # wait inside libwebsockets, which the gauge does not see).
        assert value(s, "robyn_ws_queued_bytes", endpoint="/droproom") <= 65536
        assert value(s, "robyn_ws_slow_consumer_closes_total", endpoint="/droproom") == 0

        flood(server, "slowroom", 1000, 16384)
        wait_until(lambda: ("robyn_ws_closes_total", (("code", "1008"), ("endpoint", "/slowroom")))
                   in scrape(server), RECV, what="the slow consumer closed")
        s = scrape(server)
        assert value(s, "robyn_ws_slow_consumer_closes_total", endpoint="/slowroom") == 1
        assert value(s, "robyn_ws_closes_total", endpoint="/slowroom", code="1008") == 1
        assert value(s, "robyn_ws_open_connections", endpoint="/slowroom") == 0
        assert value(s, "robyn_ws_queued_bytes", endpoint="/slowroom") == 0
        assert value(s, "robyn_ws_dropped_messages_total", endpoint="/slowroom") == 0
        # app.websocket_stats() counts the same events, for the whole process.
        stats = json.loads(http(server.address, "GET", "/stats")[1])
        assert stats["slow_closed"] == 1
        assert stats["slow_dropped"] == dropped
    finally:
        drop.close()
        slow.close()
    still_serving(server)


def test_publishes_heard_or_not(server: AppServer) -> None:
    with sconnect(f"ws://127.0.0.1:{server.port}/room", open_timeout=RECV) as ws:
        wait_until(lambda: publish(server, "room", b"") == 1, RECV, what="the room subscriber")
        assert ws.recv(timeout=RECV) == ""  # the route publishes the body as text
        before = scrape(server)
        assert publish(server, "nobody", b"lost") == 0
        assert publish(server, "nobody", b"lost") == 0
        assert publish(server, "room", b"heard") == 1
        assert ws.recv(timeout=RECV) == "heard"
        after = scrape(server)
    assert (value(after, "robyn_pubsub_publishes_total")
            - value(before, "robyn_pubsub_publishes_total")) == 3
    assert (value(after, "robyn_ws_deliveries_total", endpoint="/room")
            - value(before, "robyn_ws_deliveries_total", endpoint="/room")) == 1
    still_serving(server)


def test_close_codes_by_endpoint(server: AppServer) -> None:
    for code in (4001, 4001, 4002):
        with sconnect(f"ws://127.0.0.1:{server.port}/closer", open_timeout=RECV) as ws:
            ws.send(f"close {code}")
            with pytest.raises(Exception):
                ws.recv(timeout=RECV)
            assert ws.close_code == code

    def counted() -> bool:
        s = scrape(server)
        keys = {k for k in s if k[0] == "robyn_ws_closes_total"}
        return (("robyn_ws_closes_total", (("code", "4002"), ("endpoint", "/closer"))) in keys
                and value(s, "robyn_ws_closes_total", endpoint="/closer", code="4001") == 2)
    wait_until(counted, RECV, what="three closes counted")
    s = scrape(server)
    assert value(s, "robyn_ws_closes_total", endpoint="/closer", code="4002") == 1
    assert value(s, "robyn_ws_connections_total", endpoint="/closer") == 3
    assert value(s, "robyn_ws_messages_received_total", endpoint="/closer") == 3
    assert value(s, "robyn_ws_messages_sent_total", endpoint="/closer") == 0
    still_serving(server)


def test_upgrades_are_answers(server: AppServer) -> None:
    """A WebSocket handshake counts as a request: 1xx when accepted (by C or by on_connect),
    the refusal's status otherwise."""
    before = scrape(server)
    with RawConn(server.address) as conn:  # refused by on_connect
        conn.send(b"GET /guarded HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\n"
                  b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                  b"Sec-WebSocket-Version: 13\r\n\r\n")
        assert conn.read_head().status == 401
    with RawConn(server.address) as conn:  # no such endpoint: refused by C
        conn.send(b"GET /nowhere HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\n"
                  b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                  b"Sec-WebSocket-Version: 13\r\n\r\n")
        assert conn.read_head().status == 404
    with sconnect(f"ws://127.0.0.1:{server.port}/guarded?token=good", open_timeout=RECV) as ws:
        ws.send("in")
        assert ws.recv(timeout=RECV) == "in"
    after = scrape(server)

    def moved(status_class: str) -> float:
        return (value(after, "robyn_http_responses_total", status_class=status_class)
                - value(before, "robyn_http_responses_total", status_class=status_class))
    assert moved("1xx") == 1
    assert moved("4xx") == 2
    assert moved("2xx") == 1  # the scrape before
    assert (value(after, "robyn_http_request_duration_seconds_count")
            - value(before, "robyn_http_request_duration_seconds_count")) == 4
    assert value(after, "robyn_ws_connections_total", endpoint="/guarded") == 1
    assert value(after, "robyn_ws_messages_received_total", endpoint="/guarded") == 1
    still_serving(server)


def test_latency_lands_in_its_bucket(server: AppServer) -> None:
    before = scrape(server)
    assert http(server.address, "GET", "/slow") == (200, b"slow")
    after = scrape(server)

    def moved(le: str) -> float:
        return (value(after, "robyn_http_request_duration_seconds_bucket", le=le)
                - value(before, "robyn_http_request_duration_seconds_bucket", le=le))
    # The 30 ms sleep is over 25 ms: not in the 0.025 bucket. The scrape before is counted
    # in the second scrape too, in a small bucket.
    assert moved("0.025") == 1
    assert moved("+Inf") == 2
    assert (value(after, "robyn_http_request_duration_seconds_sum")
            - value(before, "robyn_http_request_duration_seconds_sum")) >= 0.03
    still_serving(server)


def test_answers_to_bytes_that_made_no_request(start_app: StartApp) -> None:
    """A malformed head (400) and a head that never ends (408) count by class, and are not
    observed by the latency histogram: there was no request to time."""
    server = start_app("metrics_app", env={"ROBYN_HEADER_TIMEOUT": "1"})
    before = scrape(server)
    with RawConn(server.address) as conn:
        conn.send(b"GET / HTTP/1.1\r\nBad Header\r\n\r\n")
        assert conn.read_response().status == 400
    with RawConn(server.address) as conn:
        conn.send(b"GET / HTTP/1.1\r\nHost: t\r\n")  # and nothing more
        assert conn.read_response().status == 408
    after = scrape(server)
    assert (value(after, "robyn_http_responses_total", status_class="4xx")
            - value(before, "robyn_http_responses_total", status_class="4xx")) == 2
    # Observed since the first scrape: that scrape only.
    assert (value(after, "robyn_http_request_duration_seconds_count")
            - value(before, "robyn_http_request_duration_seconds_count")) == 1
    assert (value(after, "robyn_http_connections_total")
            - value(before, "robyn_http_connections_total")) == 3
    still_serving(server)


def test_a_scrape_has_its_access_log_line(start_app: StartApp) -> None:
    server = start_app("metrics_app", env={"ROBYN_ACCESS_LOG": "true"})
    with RawConn(server.address) as conn:
        conn.send(b"GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        size = len(conn.read_until_closed())
    with RawConn(server.address) as conn:
        conn.send(b"HEAD /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        head_size = len(conn.read_until_closed())
    assert 0 < head_size < size
    # C answers at once: 0 µs, as for its other answers.
    server.wait_for_log(f"INFO:robyn.access:127.0.0.1 GET /metrics 200 {size} 0\n")
    server.wait_for_log(f"INFO:robyn.access:127.0.0.1 HEAD /metrics 200 {head_size} 0\n")
    still_serving(server)


def test_enable_metrics_on_a_running_app_is_refused(server: AppServer) -> None:
    assert http(server.address, "GET", "/enable-again") == (
        200, b"RuntimeError: enable_metrics('/other') must be called before the app starts")
    still_serving(server)


def test_middleware_does_not_see_the_metrics_route(start_app: StartApp) -> None:
    server = start_app("metrics_middleware_app")

    def get(path: str) -> httpclient.HTTPResponse:
        conn = httpclient.HTTPConnection(server.host, server.port, timeout=RECV)
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        conn.close()
        return response

    hello = get("/")
    assert (hello.status, hello.getheader("x-app"), hello.getheader("x-after")) == \
        (200, "metrics-middleware", "yes")
    hooks_before = json.loads(http(server.address, "GET", "/hooks")[1])["before"]
    before = scrape(server)
    for _ in range(3):
        answer = get("/metrics")
        assert answer.status == 200
        assert (answer.getheader("x-app"), answer.getheader("x-after")) == (None, None)
    # Robyn's 404 for an unknown path comes from Python here (the fallback route), and
    # counts the same.
    missing = get("/nowhere")
    assert (missing.status, missing.getheader("x-after")) == (404, "yes")
    # Another method on the metrics path is answered like one on any route here: by the
    # middleware's 404, as POST / is.
    for path in ("/metrics", "/"):
        conn = httpclient.HTTPConnection(server.host, server.port, timeout=RECV)
        conn.request("POST", path, body=b"x")
        answer = conn.getresponse()
        assert (answer.status, answer.getheader("x-after"), answer.read()) == (404, "yes",
                                                                               b"Not found")
        conn.close()
    after = scrape(server)
    assert (value(after, "robyn_http_responses_total", status_class="4xx")
            - value(before, "robyn_http_responses_total", status_class="4xx")) == 3
    assert (value(after, "robyn_http_responses_total", status_class="2xx")
            - value(before, "robyn_http_responses_total", status_class="2xx")) == 4
    # The hook ran for /hooks, /nowhere and the two POSTs: never for a scrape.
    assert json.loads(http(server.address, "GET", "/hooks")[1])["before"] == hooks_before + 4
    assert http(server.address, "GET", "/") == (200, b"Hello, world!")


# ---- --processes 2 ------------------------------------------------------------------------


def connection_to_each_worker(server: AppServer, count: int, tries: int = 200) -> dict[int, RawConn]:
    """slot -> a kept-alive connection that worker accepted (bounded tries)."""
    found: dict[int, RawConn] = {}
    for _ in range(tries):
        conn = RawConn(server.address)
        conn.send(b"GET /pid HTTP/1.1\r\nHost: t\r\n\r\n")
        slot = json.loads(conn.read_response().body)["slot"]
        if slot in found:
            conn.close()
        else:
            found[slot] = conn
        if len(found) == count:
            return found
    for conn in found.values():
        conn.close()
    pytest.fail(f"only workers {sorted(found)} answered in {tries} tries")


def scrape_on(conn: RawConn) -> Samples:
    conn.send(b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n")
    answer = conn.read_response()
    assert answer.status == 200
    assert answer.header("content-type") == CONTENT_TYPE
    return parse(answer.body.decode())[0]


def test_each_worker_serves_its_own_numbers(start_app: StartApp, tmp_path) -> None:
    from procs_support import procs_env

    server = start_app("processes_app", env=procs_env(tmp_path, PROCS_METRICS="1"))
    conns = connection_to_each_worker(server, 2)
    try:
        def meshed() -> bool:
            return all(value(scrape_on(conns[slot]), "robyn_pubsub_siblings_connected",
                             worker=str(slot)) == 1 for slot in (0, 1))
        wait_until(meshed, RECV, what="both workers connected to each other")
        before = {slot: scrape_on(conns[slot]) for slot in (0, 1)}
        for slot, samples in before.items():
            # Every sample carries its worker's slot, and only that one.
            assert {dict(labels).get("worker") for _, labels in samples} == {str(slot)}
            assert value(samples, "robyn_pubsub_bus_info", worker=str(slot), bus="siblings") == 1
            assert value(samples, "robyn_pubsub_siblings", worker=str(slot)) == 1
            assert value(samples, "robyn_pubsub_connected", worker=str(slot)) == 1
        # Three publishes made in worker 0 travel to worker 1 on the siblings bus.
        for _ in range(3):
            conns[0].send(b"POST /publish/news HTTP/1.1\r\nHost: t\r\ncontent-length: 2\r\n\r\nhi")
            assert conns[0].read_response().status == 200

        def moved(slot: int, name: str) -> float:
            return value(scrape_on(conns[slot]), name, worker=str(slot)) - \
                value(before[slot], name, worker=str(slot))
        wait_until(lambda: moved(1, "robyn_pubsub_received_total") == 3, RECV,
                   what="worker 1 received the three publishes")
        assert moved(0, "robyn_pubsub_published_total") == 3
        assert moved(0, "robyn_pubsub_received_total") == 0
        assert moved(1, "robyn_pubsub_published_total") == 0
        # Worker 0 answered the three publishes and the scrapes on its connection: its own
        # 2xx, not worker 1's.
        after0 = scrape_on(conns[0])
        answered0 = (value(after0, "robyn_http_responses_total", worker="0", status_class="2xx")
                     - value(before[0], "robyn_http_responses_total", worker="0",
                             status_class="2xx"))
        assert answered0 == 3 + 1 + 2  # publishes, the scrape before, two moved() scrapes of 0
    finally:
        for conn in conns.values():
            conn.close()


# ---- the Redis bus ----------------------------------------------------------------------------


def test_the_redis_bus_state(start_app: StartApp, tmp_path) -> None:
    from apps.redis_server import RedisServer

    redis = RedisServer(tmp_path / "redis")
    redis.start()
    try:
        server = start_app("metrics_app", env={
            "ROBYN_PUBSUB_URL": redis.url + "?buffer=20&retry_max_ms=500"})

        def bus() -> dict[str, float]:
            s = scrape(server)
            return {name: value(s, f"robyn_pubsub_{name}") for name in (
                "connected", "buffered_publishes", "lost_publishes_total", "published_total",
                "received_total", "outages_total", "gaps_total")} | {
                "info": value(s, "robyn_pubsub_bus_info", bus="redis")}

        wait_until(lambda: bus()["connected"] == 1, RECV, what="connected to Redis")
        assert bus() == {"connected": 1, "buffered_publishes": 0, "lost_publishes_total": 0,
                         "published_total": 0, "received_total": 0, "outages_total": 0,
                         "gaps_total": 0, "info": 1}
        for _ in range(2):
            assert publish(server, "news", b"hello") == 0  # nobody here; Redis takes it
        wait_until(lambda: bus()["published_total"] == 2, RECV, what="two publishes to Redis")

        redis.kill()
        wait_until(lambda: bus()["connected"] == 0, RECV, what="the outage seen")
        for i in range(30):  # 20 wait in the buffer, 10 do not fit
            publish(server, "news", f"during{i}".encode())
        state = bus()
        assert (state["connected"], state["buffered_publishes"], state["lost_publishes_total"],
                state["outages_total"]) == (0, 20, 10, 1)
        # The same numbers app.websocket_stats() gives.
        stats = json.loads(http(server.address, "GET", "/stats")[1])
        assert (stats["pubsub_buffered"], stats["pubsub_dropped"], stats["pubsub_outages"]) == \
            (20, 10, 1)

        redis.start()
        wait_until(lambda: bus()["connected"] == 1, 10, what="reconnected")
        wait_until(lambda: bus()["buffered_publishes"] == 0, RECV, what="the buffer sent")
        state = bus()
        assert (state["published_total"], state["lost_publishes_total"],
                state["outages_total"]) == (22, 10, 1)
        still_serving(server)
    finally:
        redis.stop()


# ---- registration, in-process ---------------------------------------------------------------


def new_app():
    from robyn import Robyn

    return Robyn(__file__)


def test_enable_twice_is_refused() -> None:
    app = new_app()
    app.enable_metrics()
    with pytest.raises(RuntimeError) as info:
        app.enable_metrics("/stats")
    assert str(info.value) == ("enable_metrics('/stats'): metrics are already served at "
                               "'/metrics' (enable_metrics() is called once)")


def test_a_path_a_route_has_is_refused() -> None:
    app = new_app()

    @app.post("/metrics/")
    def taken():
        return ""

    with pytest.raises(ValueError) as info:
        app.enable_metrics("/metrics")
    assert str(info.value) == "enable_metrics('/metrics'): the path is already the route POST /metrics/"

    @app.websocket("/live")
    async def live(websocket):
        pass

    with pytest.raises(ValueError) as info:
        app.enable_metrics("/live")
    assert str(info.value) == "enable_metrics('/live'): the path is already the route WebSocket /live"
    app.enable_metrics("/stats")  # a free path is still taken


def test_a_route_on_the_metrics_path_is_refused() -> None:
    app = new_app()
    app.enable_metrics("/metrics")
    with pytest.raises(ValueError) as info:
        app.get("/metrics")(lambda: "")
    assert str(info.value) == "GET /metrics: the path is served by enable_metrics('/metrics')"
    with pytest.raises(ValueError) as info:
        app.put("metrics/")(lambda: "")
    assert str(info.value) == "PUT metrics/: the path is served by enable_metrics('/metrics')"
    with pytest.raises(ValueError) as info:
        app.websocket("/metrics")(lambda websocket: None)
    assert str(info.value) == "WebSocket /metrics: the path is served by enable_metrics('/metrics')"
    app.get("/metrics/more")(lambda: "")  # another path is fine


@pytest.mark.parametrize(("path", "error", "message"), [
    (b"/metrics", TypeError, "enable_metrics() takes the path as a str, not bytes"),
    ("metrics", ValueError, "enable_metrics('metrics'): the path must start with '/'"),
    ("/m/:name", ValueError, "enable_metrics('/m/:name'): the path must be fixed, without parameters"),
    ("/m/*rest", ValueError, "enable_metrics('/m/*rest'): the path must be fixed, without parameters"),
    ("/a//b", ValueError, "enable_metrics('/a//b'): Malformed route pattern '/a//b': empty segment"),
    ("/caf\u00e9", ValueError, "enable_metrics('/caf\u00e9'): Malformed route pattern '/caf\\xc3\\xa9': "
                               "byte 0xc3 at offset 4 is not printable ASCII"),
])
def test_bad_paths(path: object, error: type[Exception], message: str) -> None:
    app = new_app()
    with pytest.raises(error) as info:
        app.enable_metrics(path)  # type: ignore[arg-type]
    assert str(info.value) == message
    app.enable_metrics("/metrics")  # the app is unchanged: a good path is accepted after


def test_the_test_client_refuses_the_metrics_path() -> None:
    from robyn.testing import TestClient

    app = new_app()
    app.enable_metrics()

    @app.get("/")
    def index():
        return "root"

    with TestClient(app) as client:
        for method, path in (("GET", "/metrics"), ("POST", "/metrics/")):
            with pytest.raises(NotImplementedError) as info:
                client.request(method, path)
            assert str(info.value) == (
                f"TestClient does not serve metrics: {method} {path} is the path of "
                "enable_metrics('/metrics'), which C renders from the server's counters; test it "
                "against a running server")
        assert client.get("/").text == "root"
