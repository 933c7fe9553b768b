"""Helpers of test_presence_*.py: members' clients, keep-alive HTTP connections pinned to one
worker, and reads of /presence/<topic> (apps/presence_cluster_app.py)."""

from __future__ import annotations

import json
import socket
import time
from typing import Any

import pytest
import websocket  # websocket-client

from conftest import AppServer


class Member:
    """A /room/<name> client, with the pid of the process that holds it and its id there."""

    def __init__(self, server: AppServer, room: str, user: str) -> None:
        self.ws = websocket.create_connection(
            f"ws://{server.host}:{server.port}/room/{room}?user={user}", timeout=5)
        hello = self.ws.recv().split()
        assert hello[0] == "hello", hello
        self.pid, self.id, self.user = int(hello[1]), hello[2], user

    @property
    def info(self) -> dict[str, Any]:
        return {"pid": self.pid, "user": self.user}

    def events(self, seconds: float) -> list[dict[str, Any]]:
        """The presence events received within `seconds` (bounded by it)."""
        found: list[dict[str, Any]] = []
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self.ws.settimeout(left)
            try:
                found.append(json.loads(self.ws.recv()))
            except websocket.WebSocketTimeoutException:
                break
        return found

    def close(self) -> None:
        try:
            self.ws.close(timeout=1)
        except Exception:
            pass  # its process is gone (or going)
        finally:
            self.ws.shutdown()


def members_on(server: AppServer, room: str, pids: list[int], per_process: int,
               tries: int = 120) -> dict[int, list[Member]]:
    """Connects members (users u0, u1, ...) until each of pids holds per_process (bounded);
    the others are closed again."""
    by_pid: dict[int, list[Member]] = {pid: [] for pid in pids}
    extra: list[Member] = []
    for n in range(tries):
        if all(len(v) >= per_process for v in by_pid.values()):
            break
        member = Member(server, room, f"u{n}")
        if member.pid in by_pid and len(by_pid[member.pid]) < per_process:
            by_pid[member.pid].append(member)
        else:
            extra.append(member)
    for member in extra:
        member.close()
    if not all(len(v) >= per_process for v in by_pid.values()):
        pytest.fail(f"members did not reach every process in {tries} connections: "
                    f"{ {p: len(v) for p, v in by_pid.items()} }")
    return by_pid


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


class Pinned:
    """A keep-alive HTTP connection that one worker accepted: asks that worker only."""

    def __init__(self, server: AppServer, pid: int, tries: int = 200) -> None:
        for _ in range(tries):
            sock = socket.create_connection(server.address, timeout=3)
            sock.sendall(b"GET /pid HTTP/1.1\r\nHost: t\r\n\r\n")
            try:
                status, body = read_response(sock)
            except (OSError, AssertionError):
                sock.close()
                continue
            if status == 200 and json.loads(body)["pid"] == pid:
                self.sock, self.pid = sock, pid
                return
            sock.close()
        pytest.fail(f"no connection reached pid {pid} in {tries} tries")

    def get_raw(self, path: str) -> tuple[int, bytes]:
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
        return read_response(self.sock)

    def get(self, path: str) -> tuple[int, Any]:
        status, body = self.get_raw(path)
        return status, json.loads(body)

    def presence(self, topic: str) -> dict[str, Any]:
        status, answer = self.get(f"/presence/{topic}")
        assert status == 200, answer
        assert answer["pid"] == self.pid
        return answer  # type: ignore[no-any-return]

    def close(self) -> None:
        self.sock.close()


def listing(members: list[Member]) -> list[tuple[str, dict[str, Any]]]:
    """What /presence lists for these members, in a canonical order."""
    return sorted((m.id, m.info) for m in members)


def listed(answer: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return sorted((m["id"], m["info"]) for m in answer["everywhere"])


def wait_listing(where: Any, topic: str, members: list[Member], timeout: float,
                 what: str = "") -> float:
    """Waits (bounded) until where.presence(topic) lists exactly members, with the count
    agreeing; returns the seconds it took."""
    expected = listing(members)
    start = time.monotonic()
    answer: dict[str, Any] = {}
    while time.monotonic() - start < timeout:
        answer = where.presence(topic)
        if listed(answer) == expected and answer["count"] == len(expected):
            return time.monotonic() - start
        time.sleep(0.02)
    pytest.fail(f"{what or 'the listing'} did not become {expected} within {timeout} s; "
                f"last answer {answer}")
