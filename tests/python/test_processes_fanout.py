"""Fan-out across worker processes (--processes 2, the siblings bus): clients on both
workers share a room, the machine-wide count, and a worker SIGKILLed mid-stream."""

from __future__ import annotations

import json
import signal
import socket
import time
import os

import pytest

from procs_support import (RoomClient, clients_on_every_worker, get, procs_env,
                           wait_everywhere, worker_pids)


def test_two_processes_share_a_room(start_app, tmp_path):
    server = start_app("processes_app", env=procs_env(tmp_path))
    pids = list(worker_pids(server, 2).values())
    by_pid = clients_on_every_worker(server, "lobby", pids, per_worker=3)
    a, b = pids
    # Every client is counted where it is, and the machine-wide count has them all.
    counts = wait_everywhere(server, "lobby", 6)
    assert {pid: answer["here"] for pid, answer in counts.items()} == {a: 3, b: 3}
    # A message from a client on worker a reaches every client on worker b (and the
    # other clients of a); the sender itself is left out by websocket.publish().
    sender = by_pid[a][0]
    sender.send("from-a")
    for client in by_pid[b] + by_pid[a][1:]:
        assert client.recv() == f"{a}:from-a"
    by_pid[b][0].send("from-b")
    for client in by_pid[a] + by_pid[b][1:]:
        assert client.recv() == f"{b}:from-b"
    # app.publish() from an HTTP handler counts the subscribers of its own process only,
    # and still reaches everyone.
    status, body = _post(server, "/publish/lobby", b"news")
    assert status == 200
    answer = json.loads(body)
    assert answer["reached"] == 3
    for client in by_pid[a] + by_pid[b]:
        assert client.recv() == "news"
    # A topic nobody subscribed to: nothing anywhere.
    assert {pid: (answer["here"], answer["everywhere"])
            for pid, answer in wait_everywhere(server, "nobody", 0).items()} == {a: (0, 0),
                                                                                 b: (0, 0)}
    for clients in by_pid.values():
        for client in clients:
            client.close()
    wait_everywhere(server, "lobby", 0)


def test_order_per_publisher_across_processes(start_app, tmp_path):
    server = start_app("processes_app", env=procs_env(tmp_path))
    pids = list(worker_pids(server, 2).values())
    by_pid = clients_on_every_worker(server, "seq", pids, per_worker=1)
    wait_everywhere(server, "seq", 2)
    a, b = pids
    sender, receiver = by_pid[a][0], by_pid[b][0]
    for i in range(300):
        sender.send(str(i))
    got = [receiver.recv() for _ in range(300)]
    assert got == [f"{a}:{i}" for i in range(300)]
    sender.close()
    receiver.close()


def _post(server, path: str, body: bytes, sock: socket.socket | None = None) -> tuple[int, bytes]:
    own = sock is None
    if own:
        sock = socket.create_connection(server.address, timeout=3)
    try:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: t\r\nContent-Length: {len(body)}\r\n"
                     f"{'Connection: close' if own else 'Connection: keep-alive'}\r\n\r\n"
                     .encode() + body)
        return _read_response(sock)
    finally:
        if own:
            sock.close()


def _read_response(sock: socket.socket) -> tuple[int, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before an answer")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed mid-body")
        rest += chunk
    return int(head.split(b" ", 2)[1]), rest[:length]


def _connection_to(server, pid: int, tries: int = 100) -> socket.socket:
    """A keep-alive connection that worker pid accepted (bounded tries)."""
    for _ in range(tries):
        sock = socket.create_connection(server.address, timeout=3)
        sock.sendall(b"GET /pid HTTP/1.1\r\nHost: t\r\n\r\n")
        status, body = _read_response(sock)
        if status == 200 and json.loads(body)["pid"] == pid:
            return sock
        sock.close()
    pytest.fail(f"no connection reached pid {pid} in {tries} tries")


def test_worker_killed_mid_stream(start_app, tmp_path):
    server = start_app("processes_app", env=procs_env(tmp_path))
    slots = worker_pids(server, 2)
    victim_slot = 0
    victim, survivor = slots[0], slots[1]
    by_pid = clients_on_every_worker(server, "feed", [victim, survivor], per_worker=2)
    wait_everywhere(server, "feed", 4)
    publisher = _connection_to(server, survivor)  # every message is published by survivor
    sent = 0
    for _ in range(50):
        assert _post(server, "/publish/feed", str(sent).encode(), publisher)[0] == 200
        sent += 1
    os.kill(victim, signal.SIGKILL)
    killed_at = time.monotonic()
    for _ in range(50):
        assert _post(server, "/publish/feed", str(sent).encode(), publisher)[0] == 200
        sent += 1
    # The survivor's clients got the whole stream, in order, untouched by the death.
    for client in by_pid[survivor]:
        assert [client.recv() for _ in range(sent)] == [str(i) for i in range(sent)]
    # The victim's clients were cut (maybe after some of the stream, never all of it).
    for client in by_pid[victim]:
        with pytest.raises(Exception):
            for _ in range(sent + 1):
                client.recv(timeout=3)
    # The supervisor logged the death with its status and replaced the worker in < 1 s.
    server.wait_for_log(f"worker {victim_slot} (pid {victim}) was killed by SIGKILL", timeout=3)
    replacement = None
    while replacement is None and time.monotonic() - killed_at < 3.0:
        found = worker_pids(server, 2)
        if found[victim_slot] != victim:
            replacement = found[victim_slot]
    serving_after = time.monotonic() - killed_at
    assert replacement is not None, server.log()
    assert serving_after < 1.5, f"the replacement served {serving_after:.2f} s after the kill"
    log = server.log()
    assert f"worker {victim_slot} started (pid {replacement})" in log
    # The replacement rejoins the mesh: its clients get the survivor's publishes.
    newcomer = clients_on_every_worker(server, "feed", [replacement], per_worker=1)[replacement][0]
    wait_everywhere(server, "feed", 3)  # both ways: the replacement and the survivor
    assert _post(server, "/publish/feed", b"after", publisher)[0] == 200
    assert newcomer.recv() == "after"
    for client in by_pid[survivor]:
        assert client.recv() == "after"
    publisher.close()
    newcomer.close()
    for clients in by_pid.values():
        for client in clients:
            client.close()


def test_room_client_reports_its_worker(start_app, tmp_path):
    # The pid a client is greeted with is the pid /pid reports for that worker.
    server = start_app("processes_app", env=procs_env(tmp_path))
    pids = set(worker_pids(server, 2).values())
    client = RoomClient(server, "x")
    assert client.pid in pids
    client.close()
    assert get(server, "/")[1] == b"Hello, world!"
