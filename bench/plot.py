"""Plots latency percentiles per peer from a bench/run results file.

    bench/.venvs/tools/bin/python bench/plot.py bench/results/latest.json docs/bench-latency.png

Left: HTTP plaintext (wrk, 64 connections, 1 process 1 worker): p50/p75/p90/p99.
Right: WebSocket echo (wsload, 64 connections): p50/p99/p99.9.
Medians over rounds; log scale.
"""

from __future__ import annotations

import json
import statistics
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

PLAIN = FuncFormatter(lambda v, _: f"{v:g}")
# Minor ticks: label only 2x, 3x and 5x of each decade, so the labels do not crowd.
SPARSE = FuncFormatter(lambda v, _: f"{v:g}" if f"{v:e}"[0] in "235" else "")

ORDER = ["ours", "robyn088", "starlette", "socketify", "granian-rsgi", "granian-asgi", "lws",
         "nginx"]


def order(r) -> int:
    return ORDER.index(r["peer"]) if r["peer"] in ORDER else len(ORDER)


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def main() -> None:
    src, out = sys.argv[1], sys.argv[2]
    d = json.load(open(src))
    fig, axes = plt.subplots(1, 2, figsize=(12, 5.4))

    http = [r for r in d["http"] if r["group"] == "1p1w" and r["workload"] == "plaintext"
            and r["connections"] == 64 and not r.get("status")]
    http.sort(key=order)
    pcts = ["p50_ms", "p75_ms", "p90_ms", "p99_ms"]
    ax = axes[0]
    for r in http:
        ys = [med([x.get(p) for x in r["rounds"] if "error" not in x]) for p in pcts]
        if any(y is None for y in ys):
            continue
        ax.plot([p[:-3] for p in pcts], ys, marker="o", label=r["label"])
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(PLAIN)
    ax.yaxis.set_minor_formatter(SPARSE)
    ax.set_ylabel("latency (ms, log scale)")
    ax.set_title("HTTP plaintext, wrk -t1 -c64, 1 process 1 worker")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=3, frameon=False)

    ws = [r for r in d["ws"] if r["workload"] == "ws-echo" and not r.get("status")]
    ws.sort(key=order)
    keys = [("p50", "p50"), ("p99", "p99"), ("p99.9", "p99.9")]
    ax = axes[1]
    for r in ws:
        rounds = [x for x in r["rounds"] if "latency_us" in x]
        ys = [med([x["latency_us"][k] / 1000.0 for x in rounds]) for _, k in keys]
        if any(y is None for y in ys):
            continue
        ax.plot([lbl for lbl, _ in keys], ys, marker="o", label=r["label"])
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(PLAIN)
    ax.yaxis.set_minor_formatter(SPARSE)
    ax.set_ylabel("round-trip latency (ms, log scale)")
    ax.set_title("WebSocket echo, wsload, 64 connections, 1 process")
    ax.grid(True, which="both", alpha=0.3)
    if ws:
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=3, frameon=False)
    else:
        ax.text(0.5, 0.5, "no WebSocket data", ha="center", transform=ax.transAxes)

    fig.suptitle(f"Latency percentiles per peer (medians over rounds), {d['started_at']}, "
                 f"{d['machine'].get('cpu', '')}", fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=110)


if __name__ == "__main__":
    main()
