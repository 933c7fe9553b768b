"""Presence across the processes of one machine (--processes N, the siblings bus), with real
worker processes of apps/presence_cluster_app.py: every worker lists every member, a SIGKILLed
worker's members leave every list at once and their leaves are announced once, a stopped
worker's members expire after the refresh bound and come back when it resumes (their leaves
and then their joins announced once each), and the
replacement worker's members appear everywhere."""

from __future__ import annotations

import os
import signal
import time

import pytest

from presence_support import Member, Pinned, listing, members_on, wait_listing
from procs_support import worker_pids

EXPIRY = 3.0   # PS_PRESENCE_EXPIRY_MS
REFRESH = 1.0  # PS_PRESENCE_REFRESH_MS


def leaves(events: list[dict]) -> list[tuple[str, dict]]:
    return sorted((e["id"], e["info"]) for e in events if e["presence"] == "leave")


def test_every_worker_lists_every_member_and_a_killed_workers_leave_once(start_app):
    server = start_app("presence_cluster_app", env={"ROBYN_PROCESSES": "3"})
    slots = worker_pids(server, 3)
    pins = {pid: Pinned(server, pid) for pid in slots.values()}
    by_pid = members_on(server, "hall", list(slots.values()), per_process=2)
    everyone = [m for ms in by_pid.values() for m in ms]
    for pid, pin in pins.items():
        wait_listing(pin, "hall", everyone, timeout=5, what=f"pid {pid}'s list")
        answer = pin.presence("hall")
        # Each process's own, in the order they joined, and its own count.
        assert answer["here"] == [m.id for m in by_pid[pid]]
        assert answer["count_here"] == 2
        assert answer["stats"]["origins"] == 2 and answer["stats"]["local"] == 2
        assert answer["stats"]["members"] == 4 and answer["stats"]["bad"] == 0

    # Slot 0, the lowest, dies: slot 1 is now the lowest alive and announces its leaves,
    # which reach the members of slots 1 and 2 once each.
    victim = slots[0]
    survivors = [slots[1], slots[2]]
    observers = [by_pid[survivors[0]][0], by_pid[survivors[1]][0]]
    for observer in observers:
        observer.events(0.3)  # the joins so far
    os.kill(victim, signal.SIGKILL)
    killed_at = time.monotonic()
    pins.pop(victim).close()
    for member in by_pid[victim]:
        member.close()
    left = [m for m in everyone if m.pid != victim]
    for pid in survivors:
        took = wait_listing(pins[pid], "hall", left, timeout=2, what=f"survivor {pid}'s list")
        # The link's close drops them: no waiting for the expiry.
        assert time.monotonic() - killed_at < EXPIRY, took
        assert pins[pid].presence("hall")["stats"]["dropped"] == 1
    expected_leaves = listing(by_pid[victim])
    for observer in observers:
        got = observer.events(2.0)
        assert leaves(got) == expected_leaves, got
        assert all(e["presence"] == "leave" for e in got), got

    # The replacement (slot 0 again, a new pid and a new origin) is listed by all, and lists
    # all.
    deadline = time.monotonic() + 15
    replacement = None
    while replacement is None:
        assert time.monotonic() < deadline, "no replacement worker answered"
        try:
            now = worker_pids(server, 3)
        except pytest.fail.Exception:  # the replacement is not serving yet
            continue
        if now[0] != victim:
            replacement = now[0]
    newcomer = members_on(server, "hall", [replacement], per_process=1)[replacement]
    everyone_now = left + newcomer
    pins[replacement] = Pinned(server, replacement)
    for pid in survivors + [replacement]:
        wait_listing(pins[pid], "hall", everyone_now, timeout=5, what=f"pid {pid} after the restart")
    assert pins[replacement].presence("hall")["here"] == [newcomer[0].id]

    # Leaving still works everywhere: a survivor's member closes, a leave goes to all lists.
    gone = by_pid[survivors[1]][1]
    gone.close()
    rest = [m for m in everyone_now if m is not gone]
    for pid in survivors + [replacement]:
        wait_listing(pins[pid], "hall", rest, timeout=3, what=f"pid {pid} after a close")
    for member in rest:
        member.close()
    for pid in survivors + [replacement]:
        wait_listing(pins[pid], "hall", [], timeout=3, what=f"pid {pid} when all left")
        assert pins[pid].get_raw("/") == (200, b"Hello, world!")
        pins[pid].close()


def test_a_stopped_worker_expires_and_comes_back(start_app):
    server = start_app("presence_cluster_app", env={"ROBYN_PROCESSES": "2"})
    slots = worker_pids(server, 2)
    a, b = slots[0], slots[1]
    pin_a = Pinned(server, a)
    by_pid = members_on(server, "hall", [a, b], per_process=2)
    everyone = by_pid[a] + by_pid[b]
    wait_listing(pin_a, "hall", everyone, timeout=5, what="a's list")
    observer = by_pid[a][0]
    observer.events(0.3)

    # b stops (SIGSTOP): its link stays open, its beats stop. a drops its members once
    # PS_PRESENCE_EXPIRY_MS passed since the last beat it heard, at the next tick: between
    # EXPIRY - REFRESH and EXPIRY + REFRESH after the stop.
    os.kill(b, signal.SIGSTOP)
    try:
        took = wait_listing(pin_a, "hall", by_pid[a], timeout=EXPIRY + REFRESH + 1.5,
                            what="a's list without b")
        assert EXPIRY - REFRESH - 0.1 <= took <= EXPIRY + REFRESH + 1.5, took
        stats = pin_a.presence("hall")["stats"]
        assert (stats["expired"], stats["origins"], stats["members"]) == (1, 0, 0)
        # a is the lowest slot alive: it announces b's members' leaves, once.
        got = observer.events(1.0)
        assert leaves(got) == listing(by_pid[b]), got
    finally:
        os.kill(b, signal.SIGCONT)
    # b resumes: its next beat names an origin a no longer knows, a asks for its snapshot,
    # and a, which announced their leaves, announces their joins, once.
    wait_listing(pin_a, "hall", everyone, timeout=REFRESH + 2, what="a's list with b back")
    assert pin_a.presence("hall")["stats"]["snapshots_in"] >= 2
    got = observer.events(1.0)
    assert sorted((e["id"], e["info"]) for e in got) == listing(by_pid[b]), got
    assert all(e["presence"] == "join" for e in got), got
    pin_b = Pinned(server, b)
    wait_listing(pin_b, "hall", everyone, timeout=2, what="b's list")
    for member in everyone:
        member.close()
    wait_listing(pin_a, "hall", [], timeout=3, what="a's list when all left")
    assert pin_a.get_raw("/") == (200, b"Hello, world!")
    pin_a.close()
    pin_b.close()


def test_bad_arguments_are_refused_and_a_big_info_is_refused_before_subscribing(start_app):
    server = start_app("presence_cluster_app", env={"ROBYN_PROCESSES": "2"})
    slots = worker_pids(server, 2)
    pin = Pinned(server, slots[0])
    assert pin.get("/bad/everywhere") == (200, {
        "error": "TypeError", "message": "everywhere must be True or False, not 'yes'"})
    assert pin.get("/bad/count-everywhere") == (200, {
        "error": "TypeError", "message": "everywhere must be True or False, not 1"})
    assert pin.get("/bad/no-presence") == (200, {
        "error": "ValueError", "message": "topic must be a non-empty str not starting with \\x01"})
    big = Member(server, "hall", "big")
    big.ws.settimeout(5)
    refused = big.ws.recv()
    assert refused.startswith("refused info must be at most 16384 bytes of JSON, not "), refused
    assert int(refused.rsplit(" ", 1)[1]) > 16384
    for pid in slots.values():
        other = Pinned(server, pid)
        assert other.presence("hall")["count"] == 0
        other.close()
    big.close()
    assert pin.get_raw("/") == (200, b"Hello, world!")
    pin.close()


def test_a_siblings_queue_too_small_for_presence_stops_the_start(start_app):
    server = start_app("presence_cluster_app", wait=False,
                       env={"ROBYN_PROCESSES": "2", "ROBYN_SIBLINGS_QUEUE_LIMIT": "100000"})
    code = server.wait_exit(timeout=15)
    assert code != 0
    assert ("ValueError: ROBYN_SIBLINGS_QUEUE_LIMIT must be at least 262144 with presence "
            "topics: a presence message between workers can be that large (docs/realtime.md)"
            in server.log()), server.log()
