"""The I/O threads' event loop (docs/architecture.md, "The I/O loop"): epoll through libev by
default, lws' own poll() loop with ROBYN_EVENT_LOOP=poll, and a clear error for anything else.

Which loop a process runs is read off /proc: an epoll instance is an `anon_inode:[eventpoll]`
descriptor: one per I/O thread, plus the one of the app's asyncio loop (its selector). (Draining every I/O thread's connections on SIGTERM is
test_workers.py's, which runs on the default loop.)
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import AppServer, launch
from procs_support import RoomClient, get, wait_everywhere


ASYNCIO_LOOP = 1


def epoll_instances(pid: int) -> int:
    fds = Path(f"/proc/{pid}/fd")
    count = 0
    for fd in fds.iterdir():
        try:
            if os.readlink(fd) == "anon_inode:[eventpoll]":
                count += 1
        except OSError:  # closed while we looked
            continue
    return count


def room_round_trip(server: AppServer, clients: int) -> None:
    """`clients` members of one room: the first one's 20 messages reach every other, in order."""
    members = [RoomClient(server, "lobby") for _ in range(clients)]
    try:
        wait_everywhere(server, "lobby", clients, pids=1)
        sender = members[0]
        for i in range(20):
            sender.send(f"m{i}")
        assert [sender.recv() for _ in range(20)] == [f"sent {clients - 1}"] * 20
        for member in members[1:]:
            assert [member.recv() for _ in range(20)] == [f"{sender.pid}:m{i}" for i in range(20)]
    finally:
        for member in members:
            member.close()
    wait_everywhere(server, "lobby", 0, pids=1)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_every_io_thread_waits_in_epoll_by_default(tmp_path, workers):
    server = launch("workers_app", tmp_path, env={"ROBYN_WORKERS": workers})
    try:
        assert epoll_instances(server.proc.pid) == int(workers) + ASYNCIO_LOOP
        assert get(server, "/") == (200, b"Hello, world!")
        assert get(server, "/hello") == (200, b"hello from Python")
        room_round_trip(server, 200)
        assert get(server, "/async") == (200, b"async hello")
    finally:
        assert server.stop() == 0, server.log()


def test_poll_loop_on_request(tmp_path):
    server = launch("workers_app", tmp_path, env={"ROBYN_EVENT_LOOP": "poll", "ROBYN_WORKERS": "2"})
    try:
        assert epoll_instances(server.proc.pid) == ASYNCIO_LOOP
        assert get(server, "/") == (200, b"Hello, world!")
        room_round_trip(server, 50)
    finally:
        assert server.stop() == 0, server.log()


@pytest.mark.parametrize("processes", ["1", "2"])
@pytest.mark.parametrize("value", ["select", "EPOLL", " poll"])
def test_an_unknown_event_loop_is_refused_by_name(tmp_path, value, processes):
    """Checked with the other variables, before any process starts or the port is bound."""
    server = launch("workers_app", tmp_path,
                    env={"ROBYN_EVENT_LOOP": value, "ROBYN_PROCESSES": processes}, wait=False)
    assert server.proc.wait(timeout=10) == 1
    server.stopped = True
    log = server.log()
    assert (f"ValueError: ROBYN_EVENT_LOOP must be one of epoll, poll, not {value!r}") in log
    assert "listening" not in log and "started" not in log, log
    ok = launch("workers_app", tmp_path, env={"ROBYN_EVENT_LOOP": "epoll"})
    try:
        assert get(ok, "/") == (200, b"Hello, world!")
    finally:
        assert ok.stop() == 0, ok.log()
