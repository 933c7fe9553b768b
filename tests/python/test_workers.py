"""--workers M: M I/O shards in one process (docs/architecture.md, "I/O shards"), each with
its own event loop, listening socket and share of the connections; one Python loop.

Every test runs tests/python/apps/workers_app.py in real processes with real clients."""

from __future__ import annotations

import json
import signal
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import websocket  # websocket-client

from conftest import AppServer, launch
from procs_support import RoomClient, get, wait_everywhere, worker_pids


def shard_stats(server: AppServer) -> tuple[int, list[dict[str, int]]]:
    status, body = get(server, "/shards")
    assert status == 200, body
    answer = json.loads(body)
    return answer["pid"], answer["shards"]


def clients_on_every_shard(server: AppServer, room: str, per_shard: int, shards: int = 2,
                           tries: int = 60) -> list[RoomClient]:
    """Connects clients to the room until each of the process's shards holds at least
    per_shard of them (bounded); the kernel picks the shard of each connection."""
    clients: list[RoomClient] = []
    for _ in range(tries):
        clients.append(RoomClient(server, room))
        _, stats = shard_stats(server)
        assert len(stats) == shards
        if all(s["connections"] >= per_shard for s in stats):
            assert sum(s["connections"] for s in stats) == len(clients)
            return clients
    pytest.fail(f"{tries} clients did not reach every shard: {shard_stats(server)}")


def subscribers(server: AppServer, topic: str) -> dict[str, Any]:
    status, body = get(server, f"/subscribers/{topic}")
    assert status == 200
    return dict(json.loads(body))


def post(server: AppServer, path: str, body: bytes) -> tuple[int, bytes]:
    with socket.create_connection(server.address, timeout=3) as sock:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: t\r\nContent-Length: {len(body)}\r\n"
                     f"Connection: close\r\n\r\n".encode() + body)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), rest


def test_http_spreads_over_both_shards_and_every_kind_of_route_answers(start_app):
    server = start_app("workers_app", env={"ROBYN_WORKERS": "2"})
    assert "(processes 1, workers 2;" in server.wait_for_log("listening on")
    _, before = shard_stats(server)
    for _ in range(12):  # each on a new connection, so that the kernel picks a shard
        assert get(server, "/") == (200, b"Hello, world!")  # const: no Python
        assert get(server, "/hello") == (200, b"hello from Python")  # the sync pool
        assert get(server, "/async") == (200, b"async hello")  # the one asyncio loop
    assert get(server, "/nowhere")[0] == 404
    _, stats = shard_stats(server)
    # 38 connections since, this /shards one included; the chance that the kernel put all
    # of them on one shard is 2**-37.
    took = [s["accepted"] - b["accepted"] for s, b in zip(stats, before)]
    assert sum(took) == 38
    assert all(t > 0 for t in took), took
    # Pipelined requests on one connection are answered in order by its shard.
    with socket.create_connection(server.address, timeout=3) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\nGET /hello HTTP/1.1\r\nHost: t\r\n\r\n"
                     b"GET /async HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    bodies = [part.split(b"\r\n\r\n", 1)[1][:17] for part in data.split(b"HTTP/1.1 200 OK")[1:]]
    assert bodies == [b"Hello, world!", b"hello from Python", b"async hello"]


def test_a_room_on_both_shards_gets_every_message_once_in_order(start_app):
    server = start_app("workers_app", env={"ROBYN_WORKERS": "2"})
    clients = clients_on_every_shard(server, "seq", per_shard=2)
    n = len(clients)
    # Each shard has the room and the endpoint's own topic (for broadcast()); the process
    # counts each topic once, and every connection.
    _, stats = shard_stats(server)
    assert [s["topics"] for s in stats] == [2, 2]
    status, body = get(server, "/stats")
    assert status == 200
    totals = json.loads(body)
    assert (totals["connections"], totals["topics"]) == (n, 2)
    assert subscribers(server, "seq")["here"] == n
    assert subscribers(server, "seq")["everywhere"] == n
    sender, receivers = clients[0], clients[1:]
    for i in range(200):
        sender.send(f"m{i}")
    # publish() returned the exact count of the others, on both shards, every time.
    assert [sender.recv() for _ in range(200)] == [f"sent {n - 1}"] * 200
    for client in receivers:
        assert [client.recv() for _ in range(200)] == [f"{sender.pid}:m{i}" for i in range(200)]
    # app.publish() from an HTTP handler: every subscriber of both shards, counted exactly.
    status, body = post(server, "/publish/seq", b"news")
    assert status == 200 and json.loads(body)["reached"] == n
    for client in clients:
        assert client.recv() == "news"
    # Nothing was sent twice: the next message each client gets is the next one published.
    assert json.loads(post(server, "/publish/seq", b"last")[1])["reached"] == n
    for client in clients:
        assert client.recv() == "last"
    # A topic nobody is subscribed to reaches nobody.
    assert json.loads(post(server, "/publish/empty", b"x")[1])["reached"] == 0
    for client in clients[:2]:
        client.close()
    deadline = time.monotonic() + 5
    while subscribers(server, "seq")["here"] != n - 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert subscribers(server, "seq")["here"] == n - 2
    for client in clients[2:]:
        client.close()


def test_broadcast_and_static_files_on_both_shards(start_app, tmp_path):
    public = tmp_path / "public"
    public.mkdir()
    (public / "a.txt").write_bytes(b"static bytes\n")
    server = start_app("workers_app", env={"ROBYN_WORKERS": "2", "WORKERS_STATIC": str(public)})
    _, before = shard_stats(server)
    for _ in range(16):  # each on a new connection: both shards serve the mount
        assert get(server, "/static/a.txt") == (200, b"static bytes\n")
    assert get(server, "/static/missing.txt")[0] == 404
    assert get(server, "/static/../workers_app.py")[0] == 400  # a dot segment: docs/static.md
    _, after = shard_stats(server)
    assert all(a["accepted"] - b["accepted"] > 0 for a, b in zip(after, before)), after
    # broadcast() reaches every connection of the endpoint, whatever room and shard.
    clients = clients_on_every_shard(server, "one", per_shard=1)
    clients += [RoomClient(server, "two"), RoomClient(server, "two")]
    n = len(clients)
    clients[0].send("broadcast hi")
    for client in clients:
        assert client.recv() == f"{clients[0].pid}:hi"
    assert clients[0].recv() == f"broadcast {n}"
    for client in clients:
        client.close()
    assert get(server, "/static/a.txt") == (200, b"static bytes\n")


def test_metrics_sum_both_shards(start_app):
    server = start_app("workers_app", env={"ROBYN_WORKERS": "2", "WORKERS_METRICS": "1"})

    def scrape() -> str:
        status, body = get(server, "/metrics")
        assert status == 200
        return body.decode()

    def total_2xx(text: str) -> int:
        line = next(l for l in text.splitlines()
                    if l.startswith('robyn_http_responses_total{status_class="2xx"}'))
        return int(line.split()[-1])

    before = total_2xx(scrape())
    _, stats_before = shard_stats(server)
    for _ in range(20):
        assert get(server, "/") == (200, b"Hello, world!")
    _, stats_after = shard_stats(server)
    # Both shards answered some of them, and every answer is counted once: the 20, the two
    # /shards answers around them and the first scrape.
    assert all(a["accepted"] > b["accepted"] for a, b in zip(stats_after, stats_before))
    assert total_2xx(scrape()) - before == 20 + 2 + 1


def test_sigterm_drains_both_shards(start_app, tmp_path):
    events = tmp_path / "events.txt"
    server = start_app("workers_app", env={"ROBYN_WORKERS": "2", "WORKERS_EVENTS": str(events)})
    clients = clients_on_every_shard(server, "bye", per_shard=2)
    # Requests in flight on either shard are answered, whichever shard took them.
    slow: dict[int, tuple[int, bytes]] = {}
    askers = [threading.Thread(target=lambda i=i: slow.__setitem__(i, get(server, "/slow")))
              for i in range(6)]
    for asker in askers:
        asker.start()
    time.sleep(0.2)
    server.send_signal(signal.SIGTERM)
    for asker in askers:
        asker.join(timeout=5)
    assert slow == {i: (200, b"slow done") for i in range(6)}
    # Every WebSocket of both shards is closed with 1001 going away.
    for client in clients:
        client.ws.settimeout(5)
        opcode, data = client.ws.recv_data(control_frame=True)
        assert opcode == websocket.ABNF.OPCODE_CLOSE
        assert int.from_bytes(data[:2], "big") == 1001
        client.close()
    assert server.wait_exit() == 0
    server.stopped = True
    assert events.read_text().splitlines() == [f"close {server.proc.pid}"] * len(clients)


def test_two_processes_of_two_shards_share_a_room(start_app, tmp_path):
    server = start_app("workers_app", env={"ROBYN_PROCESSES": "2", "ROBYN_WORKERS": "2"})
    pids = sorted(worker_pids(server, 2).values())
    clients: list[RoomClient] = []
    # Until every shard of both processes holds a client (bounded).
    per_pid: dict[int, list[dict[str, int]]] = {}
    for _ in range(80):
        clients.append(RoomClient(server, "all"))
        for _ in range(6):
            pid, stats = shard_stats(server)
            per_pid[pid] = stats
        if (sorted(per_pid) == pids
                and all(s["connections"] >= 1 for stats in per_pid.values() for s in stats)):
            break
    else:
        pytest.fail(f"clients did not reach all four shards: {per_pid}")
    n = len(clients)
    answers = wait_everywhere(server, "all", n)
    here = {pid: answer["here"] for pid, answer in answers.items()}
    assert sum(here.values()) == n
    assert here == {pid: sum(1 for c in clients if c.pid == pid) for pid in pids}
    sender = clients[0]
    for i in range(100):
        sender.send(f"m{i}")
    # The sender's publish counts its own process's other subscribers, both shards.
    assert [sender.recv() for _ in range(100)] == [f"sent {here[sender.pid] - 1}"] * 100
    for client in clients[1:]:
        assert [client.recv() for _ in range(100)] == [f"{sender.pid}:m{i}" for i in range(100)]
    for client in clients:
        client.close()
    wait_everywhere(server, "all", 0)


def test_the_redis_bus_carries_both_shards_with_one_subscription(tmp_path):
    # It used to refuse to start with --workers above 1; tests/python/test_redis_workers.py
    # has the rest (two nodes, outages, history, presence).
    from apps.redis_server import RedisServer
    from apps.ws_wire import wait_until

    redis = RedisServer(tmp_path / "redis")
    redis.start()
    try:
        env = {"ROBYN_WORKERS": "2", "ROBYN_PUBSUB_URL": redis.url}
        server = launch("workers_app", tmp_path, env=env)
        try:
            clients = clients_on_every_shard(server, "r", per_shard=2)
            wait_until(lambda: redis.numsub("robyn:0:r") == 1, what="one SUBSCRIBE")
            sender = clients[0]
            sender.send("hi")
            assert sender.recv() == f"sent {len(clients) - 1}"
            for client in clients[1:]:
                assert client.recv() == f"{sender.pid}:hi"
            assert json.loads(get(server, "/stats")[1])["pubsub_published"] == 1
            for client in clients:
                client.close()
            wait_until(lambda: redis.channels() == set(), what="the room unsubscribed")
        finally:
            assert server.stop() == 0, server.log()
    finally:
        redis.stop()


def test_the_connection_limit_is_the_process_s_split_between_the_shards(start_app):
    # ROBYN_WS_MAX_CONNECTIONS 2 with two shards: one each, so never more than 2 open.
    server = start_app("workers_app", env={"ROBYN_WORKERS": "2",
                                           "ROBYN_WS_MAX_CONNECTIONS": "2"})
    opened: list[RoomClient] = []
    refused = 0
    for _ in range(6):
        try:
            opened.append(RoomClient(server, "full"))
        except websocket.WebSocketBadStatusException as exc:
            assert exc.status_code == 503
            refused += 1
    _, stats = shard_stats(server)
    assert len(opened) <= 2 and refused == 6 - len(opened)
    assert [s["connections"] <= 1 for s in stats] == [True, True]
    assert sum(s["connections"] for s in stats) == len(opened)
    for client in opened:
        client.close()
    deadline = time.monotonic() + 5
    while (sum(s["connections"] for s in shard_stats(server)[1]) != 0
           and time.monotonic() < deadline):
        time.sleep(0.02)
    assert sum(s["connections"] for s in shard_stats(server)[1]) == 0
    # The server still serves: HTTP, and a WebSocket once a slot is free.
    assert get(server, "/") == (200, b"Hello, world!")
    client = RoomClient(server, "full")
    client.close()


@pytest.mark.parametrize("count", [0, 65, -1])
def test_server_start_refuses_an_io_thread_count_out_of_range(count):
    from conftest import free_port
    from robyn import _gateway

    server = _gateway.Server()
    port = free_port()
    with pytest.raises(ValueError, match=rf"^io_threads must be between 1 and 64, not {count}$"):
        server.start("127.0.0.1", port, io_threads=count)
    # Refused before anything started: the same server starts with a count in range.
    server.start("127.0.0.1", port, io_threads=2)
    try:
        assert [s["accepted"] for s in server.shard_stats()] == [0, 0]
        with socket.create_connection(("127.0.0.1", port), timeout=3) as sock:
            sock.sendall(b"GET /none HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            assert sock.recv(64).startswith(b"HTTP/1.1 404 Not Found")
        assert sum(s["accepted"] for s in server.shard_stats()) == 1
    finally:
        server.stop()
