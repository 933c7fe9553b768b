"""`--dev`: the app runs in a child process that is restarted when its code changes.

The process that was started with `--dev` becomes the reloader: it serves nothing itself.
It runs the same command again without `--dev` (with IS_RELOADER_RUNNING set, so that the
child serves in dev mode and does not reload in turn), watches the modification times of
the `.py` files under the app's folder, and on a change stops the child (SIGTERM, as any
shutdown) and starts a new one. A child that exits by itself (a syntax error, say) is
started again at the next change. Polling needs no dependency and sees every editor's way
of saving (in place, or by rename); its cost is a stat() per file every POLL_SECONDS.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from .argument_parser import RELOADED_MARKER

__all__ = ["Reloader", "child_command", "setup_reloader", "snapshot"]

logger = logging.getLogger("robyn")

POLL_SECONDS = 0.3
# Lets an editor finish writing (several files, or write-then-rename) before the restart.
SETTLE_SECONDS = 0.1
# What a stopping app gets before it is killed: it drains requests in flight first.
STOP_SECONDS = 5.0

# Folders that are not the app's code: never watched.
_SKIPPED_DIRS = {"__pycache__", "node_modules", "site-packages", "venv", "env"}


def snapshot(directory: str | os.PathLike[str]) -> dict[str, int]:
    """The modification time (ns) of every .py file under `directory`, hidden folders and
    virtual environments left out."""
    found: dict[str, int] = {}
    for root, dirs, files in os.walk(directory):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d not in _SKIPPED_DIRS]
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(root, name)
                try:
                    found[path] = os.stat(path).st_mtime_ns
                except OSError:
                    pass  # removed between the listing and the stat
    return found


def child_command(argv: Sequence[str] | None = None, orig_argv: Sequence[str] | None = None) -> list[str]:
    """The command that started this process (the interpreter's own options and `-m` kept),
    without `--dev`: what the reloader runs."""
    argv = list(sys.argv if argv is None else argv)
    orig = list(getattr(sys, "orig_argv", []) if orig_argv is None else orig_argv)
    script_args = argv[1:]
    if orig and len(orig) >= len(script_args) + 1 and orig[len(orig) - len(script_args):] == script_args:
        launcher = orig[1:len(orig) - len(script_args)]
    else:
        launcher = [argv[0]]
    if "--" in script_args:
        cut = script_args.index("--")
        kept = [a for a in script_args[:cut] if a != "--dev"] + script_args[cut:]
    else:
        kept = [a for a in script_args if a != "--dev"]
    return [sys.executable, *launcher, *kept]


class Reloader:
    """Runs `command`, restarting it when a .py file under `directory` changes."""

    def __init__(self, directory: str | os.PathLike[str], command: Sequence[str],
                 env: dict[str, str] | None = None) -> None:
        self.directory = str(directory)
        self.command = list(command)
        self.env = dict(os.environ if env is None else env)
        self.env[RELOADED_MARKER] = "True"
        self.process: subprocess.Popen[bytes] | None = None
        self._stop_signal: int | None = None
        self.restarts = 0

    def _start_child(self) -> None:
        from .processes import _die_with_parent

        self.process = subprocess.Popen(self.command, env=self.env, preexec_fn=_die_with_parent)
        logger.debug("robyn --dev: started the app (pid %d)", self.process.pid)

    def _stop_child(self) -> None:
        process = self.process
        self.process = None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            logger.warning("robyn --dev: the app (pid %d) did not stop in %.0f s; killing it",
                           process.pid, STOP_SECONDS)
            process.kill()
            process.wait()

    def _on_signal(self, sig: int, _frame: object) -> None:
        self._stop_signal = sig

    def run(self) -> int:
        """Until SIGINT or SIGTERM; returns the exit status (0)."""
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        logger.info("Robyn dev mode: restarting the app when a .py file under %s changes",
                    self.directory)
        files = snapshot(self.directory)
        reported_exit = False
        try:
            self._start_child()
            while self._stop_signal is None:
                time.sleep(POLL_SECONDS)
                process = self.process
                if process is not None and process.poll() is not None and not reported_exit:
                    logger.error("robyn --dev: the app exited with status %d; it starts again "
                                 "when a file changes", process.returncode)
                    reported_exit = True
                now = snapshot(self.directory)
                if now == files:
                    continue
                time.sleep(SETTLE_SECONDS)
                now = snapshot(self.directory)
                changed = sorted(set(now.items()) ^ set(files.items()))
                files = now
                names = sorted({os.path.relpath(path, self.directory) for path, _ in changed})
                logger.info("robyn --dev: %s changed; restarting the app", ", ".join(names))
                self._stop_child()
                if self._stop_signal is not None:
                    break
                self._start_child()
                self.restarts += 1
                reported_exit = False
        finally:
            self._stop_child()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        logger.info("Robyn dev mode stopped")
        return 0


def setup_reloader(directory_path: str, file_path: str) -> None:
    """Robyn's entry point: serves `file_path` in dev mode, restarting it when a .py file
    under `directory_path` changes, until SIGINT or SIGTERM."""
    path = Path(file_path).resolve()
    Reloader(directory_path, [sys.executable, str(path)]).run()
