"""What the dashboard draws: this machine's CPU, memory and network, and the server's own
process, read from /proc ten times a second.

Each sample is computed from the difference between two readings, so the first call of
`Sampler.sample()` only sets the baseline and later ones give rates over the interval.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


@dataclass
class Reading:
    at: float              # time.monotonic() of the reading
    cpu_busy: int          # jiffies, all CPUs, not idle or iowait
    cpu_total: int         # jiffies, all CPUs
    net_rx: int            # bytes received, every interface but loopback
    net_tx: int            # bytes sent, every interface but loopback
    loop_bytes: int        # bytes through loopback (where the example's own traffic goes)
    proc_jiffies: int      # this process's user + system time
    proc_rss: int          # this process's resident bytes


def read_cpu() -> tuple[int, int]:
    with open("/proc/stat", "rb") as f:
        fields = f.readline().split()[1:]
    values = [int(v) for v in fields[:8]]
    idle = values[3] + values[4]  # idle + iowait
    total = sum(values)
    return total - idle, total


def read_net() -> tuple[int, int, int]:
    rx = tx = loop = 0
    with open("/proc/net/dev", "rb") as f:
        for line in f.readlines()[2:]:
            name, _, rest = line.partition(b":")
            fields = rest.split()
            if name.strip() == b"lo":
                loop += int(fields[0])
            else:
                rx += int(fields[0])
                tx += int(fields[8])
    return rx, tx, loop


def read_memory() -> tuple[int, int]:
    """(used, total) bytes; used is what is not available to new programs."""
    info: dict[bytes, int] = {}
    with open("/proc/meminfo", "rb") as f:
        for line in f:
            key, _, rest = line.partition(b":")
            info[key] = int(rest.split()[0]) * 1024
    total = info[b"MemTotal"]
    return total - info.get(b"MemAvailable", info[b"MemFree"]), total


def read_process() -> tuple[int, int]:
    """(user + system jiffies, resident bytes) of this process."""
    with open("/proc/self/stat", "rb") as f:
        stat = f.read()
    # The command name is in parentheses and may hold spaces: split after its closing one.
    fields = stat[stat.rindex(b")") + 2:].split()
    jiffies = int(fields[11]) + int(fields[12])
    with open("/proc/self/statm", "rb") as f:
        resident_pages = int(f.read().split()[1])
    return jiffies, resident_pages * PAGE_SIZE


def take_reading() -> Reading:
    busy, total = read_cpu()
    rx, tx, loop = read_net()
    proc_jiffies, rss = read_process()
    return Reading(time.monotonic(), busy, total, rx, tx, loop, proc_jiffies, rss)


class Sampler:
    def __init__(self) -> None:
        self.last = take_reading()
        self.cores = os.cpu_count() or 1

    def sample(self) -> dict[str, Any]:
        """One sample over the interval since the previous call: percentages, rates per
        second, and the current memory figures."""
        now = take_reading()
        last, self.last = self.last, now
        seconds = max(now.at - last.at, 1e-6)
        cpu_total = now.cpu_total - last.cpu_total
        used, total = read_memory()
        return {
            "cpu": round(100.0 * (now.cpu_busy - last.cpu_busy) / cpu_total, 1) if cpu_total else 0.0,
            "load1": round(os.getloadavg()[0], 2),
            "mem_used_mb": round(used / 2**20, 1),
            "mem_total_mb": round(total / 2**20, 1),
            "net_rx_kbs": round((now.net_rx - last.net_rx) / seconds / 1024, 1),
            "net_tx_kbs": round((now.net_tx - last.net_tx) / seconds / 1024, 1),
            "loopback_kbs": round((now.loop_bytes - last.loop_bytes) / seconds / 1024, 1),
            # Of one core: 100 is one core busy, as top shows a process.
            "server_cpu": round(100.0 * (now.proc_jiffies - last.proc_jiffies)
                                / CLOCK_TICKS / seconds, 1),
            "server_rss_mb": round(now.proc_rss / 2**20, 1),
        }
