"""Presence with --processes 2 (apps/presence_procs_app.py): each worker lists its own
members, the machine-wide count has them all, and a SIGKILLed worker's members leave the
count at once while the survivor's list is untouched. Topics with history are refused
there (test_realtime.py)."""

from __future__ import annotations

import json
import os
import signal
import time

from procs_support import clients_on_every_worker, get, procs_env, wait_everywhere, worker_pids


def answers_by_pid(server, topic: str, pids: list[int], tries: int = 200) -> dict[int, dict]:
    """/subscribers/<topic> from each of pids (new connections until each has answered)."""
    found: dict[int, dict] = {}
    for _ in range(tries):
        status, body = get(server, f"/subscribers/{topic}")
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
    for pid in (victim, survivor):
        assert answers[pid]["here"] == len(by_pid[pid])
        assert answers[pid]["members"] == [{"pid": pid}] * len(by_pid[pid])
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
