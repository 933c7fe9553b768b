"""The supervisor of --processes N: flags, startup and shutdown handlers once per worker,
crash loops backed off, a worker that never starts, SIGTERM draining every worker, and
SIGKILL of the supervisor taking the workers with it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest
import websocket

from conftest import APPS, free_port
from procs_support import (assert_no_children, clients_on_every_worker, events, get,
                           procs_env, wait_everywhere, wait_gone, worker_pids)
from robyn.processes import parse_options


# ---- the command line ------------------------------------------------------------------


def test_parse_options_defaults_and_flags():
    assert parse_options([], {}) == parse_options(["app.py"], {})
    assert parse_options([], {}).processes == 1
    assert parse_options(["--processes", "3"], {}).processes == 3
    assert parse_options(["--processes=2", "--workers", "1"], {}).processes == 2
    assert parse_options([], {"ROBYN_PROCESSES": "4"}).processes == 4
    # The flag wins over the environment; other arguments are the script's own.
    assert parse_options(["--processes", "2", "--dev", "x"], {"ROBYN_PROCESSES": "4"}).processes == 2


@pytest.mark.parametrize("argv, message", [
    (["--processes", "0"], "--processes must be at least 1, not 0"),
    (["--processes", "two"], "--processes takes a whole number, not 'two'"),
    (["--workers", "-1"], "--workers must be at least 1, not -1"),
])
def test_bad_flag_values_exit_with_the_reason(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        parse_options(argv, {})
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_bad_environment_and_workers_are_errors():
    with pytest.raises(ValueError, match=r"^ROBYN_PROCESSES must be a whole number, not 'x'$"):
        parse_options([], {"ROBYN_PROCESSES": "x"})
    with pytest.raises(ValueError, match=r"^ROBYN_PROCESSES must be at least 1, not 0$"):
        parse_options([], {"ROBYN_PROCESSES": "0"})
    assert parse_options(["--workers", "2"], {}).workers == 2


def _run(args: list[str], env: dict[str, str], tmp_path, timeout: float = 10.0
         ) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("ROBYN_")}
    full.update(env)
    return subprocess.run([sys.executable, str(APPS / "processes_app.py"), *args], env=full,
                          cwd=str(tmp_path), capture_output=True, text=True, timeout=timeout)


def test_cli_refuses_bad_values_before_serving(tmp_path):
    port = str(free_port())
    env = {"ROBYN_HOST": "127.0.0.1", "ROBYN_PORT": port}
    done = _run(["--processes", "0"], env, tmp_path)
    assert done.returncode == 2
    assert "--processes must be at least 1, not 0" in done.stderr
    done = _run(["--processes", "2", "--workers", "65"], env, tmp_path)
    assert done.returncode == 1
    assert ("ValueError: --workers 65: at most 64 I/O threads per process (each is one event "
            "loop; more than the cores only adds switching)") in done.stderr
    assert "listening" not in done.stderr


def test_cli_flag_starts_the_workers(tmp_path):
    port = free_port()
    full = {k: v for k, v in os.environ.items() if not k.startswith("ROBYN_")}
    full.update({"ROBYN_HOST": "127.0.0.1", "ROBYN_PORT": str(port), "PYTHONUNBUFFERED": "1"})
    log = tmp_path / "log.txt"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, str(APPS / "processes_app.py"),
                                 "--processes", "2", "--workers", "1"], env=full,
                                cwd=str(tmp_path), stdout=out, stderr=subprocess.STDOUT)
    try:
        from conftest import AppServer
        server = AppServer("cli", "127.0.0.1", port, proc, log)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if get(server, "/")[0] == 200:
                    break
            except OSError:
                time.sleep(0.05)
        pids = worker_pids(server, 2)
        assert sorted(pids) == [0, 1]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert wait_gone(list(pids.values()), 3) == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_single_process_is_unchanged(start_app, tmp_path):
    # No flag, no variable: one process, no supervisor (the /pid route sees no slot).
    server = start_app("processes_app", env={"PROCS_EVENTS": str(tmp_path / "events.txt")})
    status, body = get(server, "/pid")
    assert status == 200 and b'"slot": null' in body
    assert children_of_server(server) == []


def children_of_server(server) -> list[int]:
    from procs_support import children_of
    return children_of(server.proc.pid)


# ---- lifecycle -------------------------------------------------------------------------


def test_handlers_run_once_per_worker_and_sigterm_drains(start_app, tmp_path):
    server = start_app("processes_app", env=procs_env(tmp_path))
    pids = worker_pids(server, 2)
    worker_set = set(pids.values())
    by_pid = clients_on_every_worker(server, "drain", list(worker_set), per_worker=2)
    wait_everywhere(server, "drain", 4)
    before = events(tmp_path)  # the startups, and the closes of extra clients
    assert sorted(p for e, p in before if e == "startup") == sorted(worker_set)
    # A request in flight when the signal comes is finished.
    slow: dict[str, object] = {}

    def ask_slow() -> None:
        slow["answer"] = get(server, "/slow", timeout=5)

    asker = threading.Thread(target=ask_slow)
    asker.start()
    time.sleep(0.15)
    server.send_signal(signal.SIGTERM)
    asker.join(timeout=5)
    assert slow["answer"] == (200, b"slow done")
    # Every WebSocket is closed with 1001 going away.
    for clients in by_pid.values():
        for client in clients:
            client.ws.settimeout(5)
            opcode, data = client.ws.recv_data(control_frame=True)
            assert opcode == websocket.ABNF.OPCODE_CLOSE
            assert int.from_bytes(data[:2], "big") == 1001
            client.close()
    assert server.wait_exit(timeout=15) == 0
    assert wait_gone(list(worker_set), 2) == []
    seen = events(tmp_path)[len(before):]
    # on_close ran for each connection, each worker's shutdown handler once.
    assert sorted(p for e, p in seen if e == "close") == sorted(
        c.pid for clients in by_pid.values() for c in clients)
    assert sorted(p for e, p in seen if e == "shutdown") == sorted(worker_set)
    assert "Robyn supervisor stopped" in server.log()


def test_sigint_drains_too(start_app, tmp_path):
    server = start_app("processes_app", env=procs_env(tmp_path))
    pids = list(worker_pids(server, 2).values())
    server.send_signal(signal.SIGINT)
    assert server.wait_exit(timeout=15) == 0
    assert wait_gone(pids, 2) == []


def test_sigkill_of_the_supervisor_leaves_no_worker(start_app, tmp_path):
    server = start_app("processes_app", env=procs_env(tmp_path))
    pids = list(worker_pids(server, 2).values())
    server.send_signal(signal.SIGKILL)
    server.wait_exit(timeout=5)
    # The kernel tells each worker (PR_SET_PDEATHSIG: SIGTERM); they drain and exit.
    assert wait_gone(pids, 12) == [], f"workers left behind: {pids}"
    assert sorted(p for e, p in events(tmp_path) if e == "shutdown") == sorted(pids)


def test_crash_loop_is_backed_off(start_app, tmp_path):
    server = start_app("processes_app", env=procs_env(tmp_path, PROCS_CRASH_AFTER="0.1"))
    started = time.monotonic()
    time.sleep(5.0)
    window = time.monotonic() - started
    log = server.log()
    spawns = log.count(" started (pid ")
    # Each life lasts about 0.1 s plus its startup: respawned at once, that would be
    # dozens of starts in 5 s. Backed off (0, 0.25, 0.5, 1, 2 s ...), a handful per slot.
    assert 2 * 3 <= spawns <= 2 * 7, f"{spawns} starts in {window:.1f} s:\n{log}"
    assert "exited with status 3" in log
    assert "died 4 times in a row; restarting it in 1.00 s" in log
    server.send_signal(signal.SIGTERM)
    assert server.wait_exit(timeout=15) in (0, 1)
    assert_no_children(server.proc.pid)


def test_worker_that_never_serves_stops_the_supervisor(tmp_path):
    port = str(free_port())
    done = _run([], {"ROBYN_HOST": "127.0.0.1", "ROBYN_PORT": port, "ROBYN_PROCESSES": "2",
                     "PROCS_FAIL_STARTUP": "1"}, tmp_path, timeout=15)
    assert done.returncode == 1
    assert "RuntimeError: startup failed on purpose" in done.stderr
    assert "failed before serving; stopping" in done.stderr
    assert done.stderr.count(" started (pid ") == 2  # no respawn of a broken app


def test_port_in_use_is_refused_by_the_supervisor(tmp_path):
    import socket
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        done = _run([], {"ROBYN_HOST": "127.0.0.1", "ROBYN_PORT": port,
                         "ROBYN_PROCESSES": "2"}, tmp_path)
    assert done.returncode == 1
    assert f"robyn: cannot start the server: address 127.0.0.1:{port} is already in use" in (
        done.stderr)
    assert " started (pid " not in done.stderr
