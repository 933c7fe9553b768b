"""A real redis-server (Debian's package) for one test, on a free loopback port, keeping
nothing on disk (--save "" --appendonly no), and redis-cli to look inside it."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    def __init__(self, workdir: Path, password: str | None = None, port: int | None = None):
        if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
            raise RuntimeError("redis-server and redis-cli are needed (Debian's redis-server "
                               "package; tools/install-deps installs it)")
        self.workdir = workdir
        self.password = password
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / f"redis-{self.port}.log"
        workdir.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--dir", str(self.workdir)]
        if self.password:
            args += ["--requirepass", self.password]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited: {self.log_path.read_text()}")
            try:
                if self.cli("PING") == "PONG":
                    return
            except subprocess.CalledProcessError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"redis-server did not answer on {self.port}")

    def kill(self) -> None:
        """SIGKILL: Redis vanishes mid-stream, as a crash would have it."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def cli(self, *args: str) -> str:
        cmd = ["redis-cli", "-h", "127.0.0.1", "-p", str(self.port)]
        if self.password:
            cmd += ["-a", self.password, "--no-auth-warning"]
        done = subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=10,
                              check=True)
        return done.stdout.strip()

    def channels(self, pattern: str = "robyn:*", reserved: bool = False) -> set[str]:
        """The channels subscribed now; without `reserved`, the topics' only (every node also
        subscribes to the reserved presence channel, <prefix>\\x01presence, docs/redis.md)."""
        out = self.cli("PUBSUB", "CHANNELS", pattern)
        return {line for line in out.splitlines()
                if line and (reserved or not line.endswith("\x01presence"))}

    def numsub(self, channel: str) -> int:
        out = self.cli("PUBSUB", "NUMSUB", channel).splitlines()
        return int(out[1]) if len(out) == 2 else 0
