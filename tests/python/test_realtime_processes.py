"""Presence with --processes 2 (apps/presence_procs_app.py): each worker counts its own
members, the machine-wide list and count have them all, and a SIGKILLed worker's members
leave both at once while the survivor's own are untouched. History is per process: each
numbers every message it delivers, its own and its siblings', in its own epoch."""

from __future__ import annotations

import json
import os
import signal
import socket
import time

import websocket  # websocket-client

from procs_support import clients_on_every_worker, get, procs_env, wait_everywhere, worker_pids


def answers_by_pid(server, topic: str, pids: list[int], tries: int = 200) -> dict[int, dict]:
    """/subscribers/<topic> from each of pids (new connections until each has answered)."""
    found: dict[int, dict] = {}
    for _ in range(tries):
        try:
            status, body = get(server, f"/subscribers/{topic}")
        except OSError:  # queued on a killed worker's socket
            time.sleep(0.01)
            continue
        if status == 200:
            answer = json.loads(body)
            if answer["pid"] in pids:
                found[answer["pid"]] = answer
            if len(found) == len(pids):
                return found
        time.sleep(0.005)
    raise AssertionError(f"only {sorted(found)} of {pids} answered")


def test_presence_per_worker_and_machine_wide_after_a_kill(start_app, tmp_path):
    server = start_app("presence_procs_app", env=procs_env(tmp_path))
    slots = worker_pids(server, 2)
    victim, survivor = slots[0], slots[1]
    by_pid = clients_on_every_worker(server, "hall", [victim, survivor], per_worker=2)
    total = sum(len(v) for v in by_pid.values())
    wait_everywhere(server, "hall", total)
    answers = answers_by_pid(server, "hall", [victim, survivor])
    everyone = sorted([{"pid": victim}] * 2 + [{"pid": survivor}] * 2, key=lambda m: m["pid"])
    for pid in (victim, survivor):
        assert answers[pid]["here"] == len(by_pid[pid])
        # app.presence() lists every worker's members (test_presence_processes.py has more).
        assert sorted(answers[pid]["members"], key=lambda m: m["pid"]) == everyone
        assert answers[pid]["everywhere"] == total
    # The join events are publishes: they reach the members of both workers.
    joined = json.loads(by_pid[survivor][0].recv())
    assert joined["presence"] == "join" and joined["info"]["pid"] in (victim, survivor)

    os.kill(victim, signal.SIGKILL)
    # The survivor counts only its own members as soon as the victim's link is gone.
    deadline = time.monotonic() + 2.0
    while True:
        answer = answers_by_pid(server, "hall", [survivor])[survivor]
        if answer["everywhere"] == len(by_pid[survivor]):
            break
        assert time.monotonic() < deadline, answer
        time.sleep(0.02)
    assert answer["here"] == len(by_pid[survivor])
    assert answer["members"] == [{"pid": survivor}] * len(by_pid[survivor])
    for clients in by_pid.values():
        for client in clients:
            client.close()
    # The replacement (or the survivor) answers 0 once everyone has left.
    wait_everywhere(server, "hall", 0, timeout=10)


def pinned_http(server, pid: int, tries: int = 200) -> socket.socket:
    """A keep-alive HTTP connection that worker pid accepted (bounded tries)."""
    for _ in range(tries):
        sock = socket.create_connection(server.address, timeout=3)
        sock.sendall(b"GET /pid HTTP/1.1\r\nHost: t\r\n\r\n")
        status, body = read_response(sock)
        if status == 200 and json.loads(body)["pid"] == pid:
            return sock
        sock.close()
    raise AssertionError(f"no connection reached pid {pid} in {tries} tries")


def read_response(sock: socket.socket) -> tuple[int, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, "closed before an answer"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")[1:]
                  if line.lower().startswith(b"content-length:"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        assert chunk, "closed mid-body"
        rest += chunk
    return int(head.split(b" ", 2)[1]), rest[:length]


def publish_on(sock: socket.socket, topic: str, body: str) -> dict:
    data = body.encode()
    sock.sendall(f"POST /publish/{topic} HTTP/1.1\r\nHost: t\r\nContent-Length: {len(data)}\r\n\r\n"
                 .encode() + data)
    status, answer = read_response(sock)
    assert status == 200, answer
    return json.loads(answer)


def live_on(server, pid: int, query: str, tries: int = 200):
    """A /live/feed:p connection on worker pid, and the first message after the greeting."""
    for _ in range(tries):
        ws = websocket.create_connection(f"ws://{server.host}:{server.port}/live/feed:p{query}",
                                         timeout=5)
        if ws.recv() == f"hello {pid}":
            return ws, json.loads(ws.recv())
        ws.close()
    raise AssertionError(f"no WebSocket reached pid {pid} in {tries} tries")


def test_history_is_per_process(start_app, tmp_path):
    server = start_app("presence_procs_app", env=procs_env(tmp_path))
    slots = worker_pids(server, 2)
    a, b = slots[0], slots[1]
    on_a = pinned_http(server, a)
    on_b = pinned_http(server, b)
    # A member on b that a counts: a's link to b is up, so a's publishes reach b.
    member = clients_on_every_worker(server, "hall", [b], per_worker=1)[b][0]
    deadline = time.monotonic() + 5
    while answers_by_pid(server, "hall", [a])[a]["everywhere"] != 1:
        assert time.monotonic() < deadline, "a never counted b's member"
        time.sleep(0.02)
    ws, hello = live_on(server, b, "")
    assert hello["type"] == "recovered" and hello["replayed"] == 0
    epoch_b = hello["epoch"]
    # Published in a: numbered by a for a's subscribers, and by b, in its own epoch, for b's.
    first = publish_on(on_a, "feed:p", "m1")
    assert first["pid"] == a and first["offset"] == 1 and first["epoch"] != epoch_b
    got = json.loads(ws.recv())
    assert (got["epoch"], got["offset"], got["data"]) == (epoch_b, 1, "m1")
    for n in (2, 3):
        assert publish_on(on_a, "feed:p", f"m{n}")["offset"] == n
        got = json.loads(ws.recv())
        assert (got["epoch"], got["offset"], got["data"]) == (epoch_b, n, f"m{n}")
    assert publish_on(on_b, "feed:p", "m4") == {"reached": 1, "epoch": epoch_b, "offset": 4,
                                                "pid": b}
    assert json.loads(ws.recv())["offset"] == 4
    ws.close()
    # Away: two more from a. Back on b with b's position: exactly those two.
    publish_on(on_a, "feed:p", "m5")
    publish_on(on_a, "feed:p", "m6")
    time.sleep(0.2)  # the siblings bus delivers them to b
    ws, first_replayed = live_on(server, b, f"?epoch={epoch_b}&offset=4")
    replayed = [first_replayed, json.loads(ws.recv())]
    assert [(m["offset"], m["data"]) for m in replayed] == [(5, "m5"), (6, "m6")]
    assert json.loads(ws.recv()) == {"type": "recovered", "replayed": 2, "epoch": epoch_b,
                                     "offset": 6}
    ws.close()
    # Back on a with b's position: another epoch, so gone, with where a's topic is.
    ws, answer = live_on(server, a, f"?epoch={epoch_b}&offset=4")
    assert answer == {"type": "gone", "epoch": first["epoch"], "offset": 6}
    ws.close()
    on_a.close()
    on_b.close()
    member.close()
