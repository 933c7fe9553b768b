"""Helpers of the test_processes_*.py suites: a supervised app, its workers, their clients."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any

import pytest
import websocket  # websocket-client

from conftest import AppServer


def get(server: AppServer, path: str, timeout: float = 3.0) -> tuple[int, bytes]:
    """One GET on a new connection (so that SO_REUSEPORT may pick either worker)."""
    with socket.create_connection(server.address, timeout=timeout) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def worker_pids(server: AppServer, count: int, tries: int = 200) -> dict[int, int]:
    """slot -> pid of every worker, asking /pid on new connections until all `count` have
    answered (bounded)."""
    seen: dict[int, int] = {}
    for _ in range(tries):
        try:
            status, body = get(server, "/pid")
        except OSError:
            time.sleep(0.02)
            continue
        if status == 200:
            info = json.loads(body)
            seen[info["slot"]] = info["pid"]
            if len(seen) == count:
                return seen
        time.sleep(0.005)
    pytest.fail(f"only workers {seen} answered /pid in {tries} tries. Log:\n{server.log()}")


def children_of(pid: int) -> list[int]:
    """Live (not zombie) processes whose parent is pid."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    """Whether pid exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2:].split()[0] != "Z"


def wait_gone(pids: list[int], timeout: float) -> list[int]:
    """Waits (bounded) until none of pids is alive; returns those still alive."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = [p for p in pids if alive(p)]
        if not left:
            return []
        time.sleep(0.05)
    return [p for p in pids if alive(p)]


class RoomClient:
    """A WebSocket client of /room/<name>, with the pid of the worker that holds it."""

    def __init__(self, server: AppServer, room: str) -> None:
        self.ws = websocket.create_connection(f"ws://{server.host}:{server.port}/room/{room}",
                                              timeout=5)
        hello = self.ws.recv()
        assert hello.startswith("hello "), hello
        self.pid = int(hello.split()[1])

    def send(self, text: str) -> None:
        self.ws.send(text)

    def recv(self, timeout: float = 5.0) -> str:
        self.ws.settimeout(timeout)
        return self.ws.recv()

    def close(self) -> None:
        try:
            self.ws.close(timeout=1)
        except Exception:
            pass  # the worker is gone (or going): nothing to say goodbye to
        finally:
            self.ws.shutdown()  # the socket itself, whatever close() managed


def clients_on_every_worker(server: AppServer, room: str, pids: list[int], per_worker: int,
                            tries: int = 80) -> dict[int, list[RoomClient]]:
    """Connects clients until every pid holds at least per_worker of them (bounded)."""
    by_pid: dict[int, list[RoomClient]] = {pid: [] for pid in pids}
    extra: list[RoomClient] = []
    for _ in range(tries):
        if all(len(v) >= per_worker for v in by_pid.values()):
            break
        client = RoomClient(server, room)
        if client.pid in by_pid and len(by_pid[client.pid]) < per_worker:
            by_pid[client.pid].append(client)
        else:
            extra.append(client)
    for client in extra:
        client.close()
    if not all(len(v) >= per_worker for v in by_pid.values()):
        pytest.fail(f"clients did not reach every worker in {tries} connections: "
                    f"{ {p: len(v) for p, v in by_pid.items()} }")
    return by_pid


def wait_everywhere(server: AppServer, topic: str, expected: int, pids: int = 2,
                    timeout: float = 5.0) -> dict[int, dict[str, Any]]:
    """Waits (bounded) until app.subscribers(topic, everywhere=True) reports expected in each
    of the `pids` workers (so that every worker reaches every other); returns pid -> answer."""
    deadline = time.monotonic() + timeout
    agreed: dict[int, dict[str, Any]] = {}
    last: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status, body = get(server, f"/subscribers/{topic}")
        if status == 200:
            last = json.loads(body)
            if last["everywhere"] == expected:
                agreed[last["pid"]] = last
                if len(agreed) == pids:
                    return agreed
        time.sleep(0.01)
    pytest.fail(f"subscribers everywhere of {topic}: {agreed} agreed on {expected}, "
                f"last answer {last}")


def procs_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {"ROBYN_PROCESSES": "2", "PROCS_EVENTS": str(tmp_path / "events.txt")}
    env.update(extra)
    return env


def events(tmp_path: Path) -> list[tuple[str, int]]:
    path = tmp_path / "events.txt"
    if not path.exists():
        return []
    return [(line.split()[0], int(line.split()[1]))
            for line in path.read_text().splitlines() if line.strip()]


def assert_no_children(pid: int, timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while children_of(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert children_of(pid) == [], f"children of {pid} still alive: {children_of(pid)}"


