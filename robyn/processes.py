"""Serving one app from several processes: `--processes N` and its supervisor.

`python app.py --processes 2` (or ROBYN_PROCESSES=2) makes the process that calls
`app.start()` a supervisor. It forks N workers; each one runs `app.start()` as a single
process would (startup handlers, its own server on the shared port, shutdown handlers),
joined to the others by the siblings bus so that a publish anywhere reaches every
subscriber of the machine. The supervisor itself serves nothing: it replaces a worker
that dies (backing off one that keeps dying), drains them all on SIGTERM/SIGINT, and the
workers die with it when it is killed (PR_SET_PDEATHSIG). docs/deployment.md says why
the port is shared with SO_REUSEPORT and what the numbers are.

The command line is parsed by `parse_options()`, on the parser `argument_parser()` builds,
which later flags of Robyn's CLI extend.
"""

from __future__ import annotations

import argparse
import ctypes
import errno
import functools
import inspect
import logging
import os
import secrets
import select
import signal
import socket
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ParamSpec

logger = logging.getLogger("robyn")

# A worker that lived at least this long before dying was not crash-looping: it is
# replaced at once and its back-off starts over.
STABLE_SECONDS = 5.0
# Restart delays of a crash loop: nothing for the first death, then doubling to the cap.
BACKOFF_FIRST = 0.25
BACKOFF_CAP = 8.0
# What the supervisor gives draining workers beyond their own grace period
# (robyn/app.py: 10 s) before it kills what is left.
DRAIN_MARGIN_SECONDS = 5.0
DRAIN_SECONDS = 10.0 + DRAIN_MARGIN_SECONDS
# Bytes that may wait for one sibling before it is cut off (ROBYN_SIBLINGS_QUEUE_LIMIT).
SIBLINGS_QUEUE_LIMIT = 8 * 1024 * 1024

_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class ProcessOptions:
    processes: int
    workers: int


@dataclass
class WorkerInfo:
    """What a worker knows about its place: its slot, how many there are, its group."""

    slot: int
    count: int
    group: str
    ready_fd: int


# Set in a worker process; None in the supervisor or a single process.
_worker: WorkerInfo | None = None


def _count(flag: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text, 10)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} takes a whole number, not {text!r}") from None
        if value < 1:
            raise argparse.ArgumentTypeError(f"{flag} must be at least 1, not {value}")
        return value

    return parse


def argument_parser() -> argparse.ArgumentParser:
    """The parser of the flags app.start() honours. Unknown arguments are left alone (the
    script may have its own), as Robyn leaves them."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--processes", type=_count("--processes"), default=None,
                        help="worker processes sharing the port [default: 1]")
    parser.add_argument("--workers", type=_count("--workers"), default=None,
                        help="I/O threads per process, each with its own event loop and "
                             "listening socket [default: 1]")
    return parser


def parse_options(argv: Sequence[str] | None = None,
                  environ: dict[str, str] | None = None) -> ProcessOptions:
    """`--processes`/`--workers` from argv (default sys.argv[1:]), else ROBYN_PROCESSES from
    the environment, else 1. A bad value exits with argparse's message (status 2) for a
    flag, or raises ValueError naming the variable."""
    env = os.environ if environ is None else environ
    args, _ = argument_parser().parse_known_args(sys.argv[1:] if argv is None else argv)
    processes = args.processes
    if processes is None:
        raw = env.get("ROBYN_PROCESSES", "").strip()
        if raw:
            try:
                processes = int(raw, 10)
            except ValueError:
                raise ValueError(f"ROBYN_PROCESSES must be a whole number, not {raw!r}") from None
            if processes < 1:
                raise ValueError(f"ROBYN_PROCESSES must be at least 1, not {processes}")
    workers = args.workers or 1
    return ProcessOptions(processes=processes or 1, workers=workers)


def io_threads(app: Any) -> int:
    """`--workers M` (or ROBYN_WORKERS) of the command line the app was started with: its
    I/O threads per process, 1 when none was given."""
    return int(getattr(getattr(app, "_command_line", None), "workers", 1) or 1)


def worker() -> WorkerInfo | None:
    """This process's place among the workers, or None outside a worker."""
    return _worker


def in_worker() -> bool:
    return _worker is not None


def reuse_port() -> bool:
    """Whether the server must share its port with sibling processes (SO_REUSEPORT)."""
    return _worker is not None


def worker_ready() -> None:
    """Tells the supervisor that this worker's server is listening (app.start() calls it
    once the port is bound). Does nothing outside a worker."""
    info = _worker
    if info is None or info.ready_fd < 0:
        return
    try:
        os.write(info.ready_fd, b"r")
    except OSError:
        pass  # the supervisor is gone; PDEATHSIG stops us
    os.close(info.ready_fd)
    info.ready_fd = -1


_Params = ParamSpec("_Params")


def supervised(start: Callable[_Params, None]) -> Callable[_Params, None]:
    """Wraps Robyn.start: with more than one process wanted, the caller becomes the
    supervisor and each worker runs the wrapped start() itself."""
    signature = inspect.signature(start)

    @functools.wraps(start)
    def wrapper(*args: _Params.args, **kwargs: _Params.kwargs) -> None:
        app: Any = args[0]  # start's self
        if _worker is not None:
            return start(*args, **kwargs)
        # The whole command line (robyn/argument_parser.py), once, before anything starts:
        # --help and --version exit here, a bad flag exits 2.
        from . import argument_parser

        config = argument_parser.parse(sys.argv[1:], prog=os.path.basename(sys.argv[0]) or None)
        app._command_line = config
        argument_parser.apply_log_level(config)
        if config.dev and not os.environ.get(argument_parser.RELOADED_MARKER):
            from .reloader import Reloader, child_command

            Reloader(app.directory_path, child_command()).run()
            return None
        if config.processes == 1:
            return start(*args, **kwargs)
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        host = config.host or bound.arguments.get("host", "127.0.0.1")
        port = config.port or int(bound.arguments.get("port", 8080))
        supervisor = Supervisor(app, config.processes, host, port,
                                lambda: start(*args, **kwargs))
        supervisor.run()
        return None

    return wrapper


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = f"signal {sig}"
        return f"was killed by {name}"
    return f"exited with status {os.WEXITSTATUS(status)}"


@dataclass
class _Slot:
    index: int
    pid: int = 0
    started: float = 0.0
    ready: bool = False
    ready_r: int = -1
    failures: int = 0
    respawn_at: float | None = None
    spawns: int = 0


class Supervisor:
    """Starts `count` workers and keeps them running until told to stop."""

    def __init__(self, app: Any, count: int, host: str, port: int,
                 serve: Callable[[], Any]) -> None:
        self.app = app
        self.count = count
        self.host = host
        self.port = port
        self.serve = serve
        self.group = f"{os.getpid()}-{secrets.token_hex(4)}"
        self.slots = [_Slot(i) for i in range(count)]
        self.stopping = False
        self.ever_ready = False
        self.exit_status = 0
        self.queue_limit = _queue_limit()
        self._reserved: socket.socket | None = None
        self._wake_r = self._wake_w = -1

    # ---- the port ------------------------------------------------------------------------

    def _reserve_port(self) -> None:
        """Binds the port (SO_REUSEPORT, not listening) for as long as the supervisor runs:
        port 0 becomes a real port every worker uses, a port already taken is an error
        before any worker starts, and nobody takes the port while workers restart."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        host = "127.0.0.1" if self.host == "localhost" else self.host
        try:
            sock.bind((host, self.port))
        except OSError as exc:
            sock.close()
            if exc.errno == errno.EADDRINUSE:
                raise SystemExit(f"robyn: cannot start the server: address {self.host}:"
                                 f"{self.port} is already in use") from None
            raise SystemExit(f"robyn: cannot start the server: {exc.strerror}") from None
        self.port = sock.getsockname()[1]
        os.environ["ROBYN_PORT"] = str(self.port)
        self._reserved = sock

    # ---- workers -------------------------------------------------------------------------

    def _spawn(self, slot: _Slot) -> None:
        ready_r, ready_w = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the worker
            os.close(ready_r)
            self._become_worker(slot.index, ready_w)  # never returns
        os.close(ready_w)
        slot.pid = pid
        slot.started = time.monotonic()
        slot.ready = False
        slot.ready_r = ready_r
        slot.respawn_at = None
        slot.spawns += 1
        logger.info("Robyn worker %d started (pid %d)", slot.index, pid)

    def _become_worker(self, index: int, ready_w: int) -> None:
        global _worker
        status = 1
        try:
            parent = os.getppid()
            _die_with_parent()
            if os.getppid() != parent:  # the supervisor died before prctl took effect
                os._exit(1)
            signal.pthread_sigmask(signal.SIG_SETMASK, set())
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD):
                signal.signal(sig, signal.SIG_DFL)
            signal.set_wakeup_fd(-1)
            for fd in (self._wake_r, self._wake_w):
                if fd >= 0:
                    os.close(fd)
            for other in self.slots:
                if other.ready_r >= 0:
                    os.close(other.ready_r)
                    other.ready_r = -1
            if self._reserved is not None:
                self._reserved.close()
            os.environ["ROBYN_WORKER_INDEX"] = str(index)
            _worker = WorkerInfo(index, self.count, self.group, ready_w)
            # With Redis configured, every process talks to Redis itself, and Redis also
            # carries publishes between siblings (docs/redis.md): no siblings bus then.
            if not (os.environ.get("ROBYN_PUBSUB_URL") or getattr(self.app, "_pubsub_url", None)):
                self.app._server.use_siblings(self.group, index, self.count,
                                              queue_limit=self.queue_limit)
            self.serve()
            status = 0
        except SystemExit as exc:
            if isinstance(exc.code, int):
                status = exc.code
            elif exc.code is None:
                status = 0
            else:
                print(exc.code, file=sys.stderr)
                status = 1
        except BaseException:
            logger.exception("Robyn worker %d failed", index)
            status = 1
        finally:
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                # Never return into the supervisor's code, nor run its atexit handlers.
                os._exit(status)

    def _backoff(self, slot: _Slot) -> float:
        if slot.failures <= 1:
            return 0.0
        return min(BACKOFF_FIRST * 2.0 ** (slot.failures - 2), BACKOFF_CAP)

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            slot = next((s for s in self.slots if s.pid == pid), None)
            if slot is None:
                continue
            lived = time.monotonic() - slot.started
            slot.pid = 0
            if slot.ready_r >= 0:
                os.close(slot.ready_r)
                slot.ready_r = -1
            if self.stopping:
                # Killed by the signal that asked it to stop: a second one (a terminal's ^C
                # reaches the whole process group, then ours follows) found its handlers
                # already removed at the very end of its shutdown. It had drained.
                told = os.WIFSIGNALED(status) and os.WTERMSIG(status) in (
                    signal.SIGTERM, signal.SIGINT)
                if status != 0 and not told:
                    logger.warning("Robyn worker %d (pid %d) %s while stopping", slot.index,
                                   pid, _describe(status))
                    self.exit_status = 1
                continue
            logger.error("Robyn worker %d (pid %d) %s after %.1f s", slot.index, pid,
                         _describe(status), lived)
            if not slot.ready and not self.ever_ready:
                # It never served: the same error would stop every new one (a bad route, a
                # failing startup handler). Stop as a single process would.
                logger.error("Robyn worker %d failed before serving; stopping", slot.index)
                self.exit_status = os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1
                self.exit_status = self.exit_status or 1
                self._begin_stop()
                continue
            slot.failures = slot.failures + 1 if lived < STABLE_SECONDS else 1
            delay = self._backoff(slot)
            if delay:
                logger.warning("Robyn worker %d died %d times in a row; restarting it in "
                               "%.2f s", slot.index, slot.failures, delay)
            slot.respawn_at = time.monotonic() + delay

    def _begin_stop(self) -> None:
        if self.stopping:
            return
        self.stopping = True
        for slot in self.slots:
            slot.respawn_at = None
            if slot.pid:
                try:
                    os.kill(slot.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass

    # ---- the loop ------------------------------------------------------------------------

    def run(self) -> None:
        if not logging.getLogger().handlers:  # the wrapper has set logging up unless called directly
            logging.basicConfig(level=logging.INFO, format="%(levelname)s:%(name)s:%(message)s")
        self._reserve_port()
        # Signals only wake the loop (set_wakeup_fd); they are acted on here, never in a
        # handler, so no state changes between two lines of the loop.
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        pending: list[int] = []
        handlers = {}
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD):
            handlers[sig] = signal.signal(sig, lambda s, _f: pending.append(s))
        old_wakeup = signal.set_wakeup_fd(self._wake_w)
        from .logger import start_line

        logger.info("%s; supervisor pid %d", start_line(self.host, self.port, self.count,
                                                   io_threads(self.app)),
                    os.getpid())
        try:
            for slot in self.slots:
                self._spawn(slot)
            self._loop(pending)
        finally:
            signal.set_wakeup_fd(old_wakeup)
            for sig, handler in handlers.items():
                signal.signal(sig, handler)
            os.close(self._wake_r)
            os.close(self._wake_w)
            self._wake_r = self._wake_w = -1
            if self._reserved is not None:
                self._reserved.close()
                self._reserved = None
        if self.exit_status:
            raise SystemExit(self.exit_status)
        logger.info("Robyn supervisor stopped")

    def _loop(self, pending: list[int]) -> None:
        drain_deadline: float | None = None
        while True:
            now = time.monotonic()
            if self.stopping:
                if not any(s.pid for s in self.slots):
                    return
                if drain_deadline is None:
                    drain_deadline = now + DRAIN_SECONDS
                elif now >= drain_deadline:
                    for slot in self.slots:
                        if slot.pid:
                            logger.error("Robyn worker %d (pid %d) did not stop in %.0f s; "
                                         "killed", slot.index, slot.pid, DRAIN_SECONDS)
                            os.kill(slot.pid, signal.SIGKILL)
                    self.exit_status = 1
                    drain_deadline = now + 60.0  # only the reaping is left
            else:
                for slot in self.slots:
                    if slot.pid == 0 and slot.respawn_at is not None and now >= slot.respawn_at:
                        self._spawn(slot)
            waits = [s.respawn_at - now for s in self.slots
                     if s.pid == 0 and s.respawn_at is not None]
            if drain_deadline is not None:
                waits.append(drain_deadline - now)
            timeout = max(0.0, min(waits + [1.0]))
            readers = [self._wake_r] + [s.ready_r for s in self.slots if s.ready_r >= 0]
            try:
                ready, _, _ = select.select(readers, [], [], timeout)
            except InterruptedError:
                ready = []
            if self._wake_r in ready:
                try:
                    while os.read(self._wake_r, 512):
                        pass
                except BlockingIOError:
                    pass
            for slot in self.slots:
                if slot.ready_r >= 0 and slot.ready_r in ready:
                    data = os.read(slot.ready_r, 1)
                    os.close(slot.ready_r)
                    slot.ready_r = -1
                    if data:
                        slot.ready = True
                        self.ever_ready = True
            while pending:
                sig = pending.pop(0)
                if sig in (signal.SIGINT, signal.SIGTERM) and not self.stopping:
                    logger.info("Robyn supervisor stopping: draining %d workers",
                                sum(1 for s in self.slots if s.pid))
                    self._begin_stop()
            self._reap()


def _queue_limit() -> int:
    raw = os.environ.get("ROBYN_SIBLINGS_QUEUE_LIMIT", "").strip()
    if not raw:
        return SIBLINGS_QUEUE_LIMIT
    try:
        value = int(raw, 10)
    except ValueError:
        raise ValueError(f"ROBYN_SIBLINGS_QUEUE_LIMIT must be a whole number of bytes, "
                         f"not {raw!r}") from None
    if value < 1024:
        raise ValueError(f"ROBYN_SIBLINGS_QUEUE_LIMIT must be at least 1024, not {value}")
    return value


def _die_with_parent() -> None:
    """Asks the kernel to send SIGTERM to this process when the supervisor dies, however
    it dies: the worker then drains as it would on any SIGTERM, and no orphan is left."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl(PR_SET_PDEATHSIG): {os.strerror(err)}")
