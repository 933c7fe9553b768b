"""How two processes share incoming connections: SO_REUSEPORT (one socket each) against one
listening socket inherited by fork. Each process runs a poll() accept loop, as
libwebsockets' default loop does, and keeps what it accepts open (a long-lived WebSocket
client is what matters for fan-out). Prints the share of each process, for N connections
opened one after another and N opened by 8 threads at once.

    python3 bench/spread.py [N]
"""

from __future__ import annotations

import os
import select
import socket
import sys
import threading
import time


def serve(sock: socket.socket, pipe_w: int, stop_r: int) -> None:
    sock.setblocking(False)
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    poller.register(stop_r, select.POLLIN)
    held, count = [], 0
    while True:
        events = poller.poll(1000)
        if any(fd == stop_r for fd, _ in events):
            break
        while True:
            try:
                conn, _ = sock.accept()
            except BlockingIOError:
                break
            held.append(conn)
            count += 1
            time.sleep(0.0002)  # some work per accept, as a real server has
    os.write(pipe_w, str(count).encode())
    os._exit(0)


def listener(port: int, reuse: bool) -> socket.socket:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    s.bind(("127.0.0.1", port))
    s.listen(4096)
    return s


def trial(mode: str, n: int, parallel: bool) -> list[int]:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    shared = listener(port, False) if mode == "inherited" else None
    pipes, stops, pids = [], [], []
    for _ in range(2):
        r, w = os.pipe()
        sr, sw = os.pipe()
        pid = os.fork()
        if pid == 0:
            sock = shared if shared is not None else listener(port, True)
            serve(sock, w, sr)
        pipes.append(r)
        stops.append(sw)
        pids.append(pid)
    if shared is not None:
        shared.close()
    time.sleep(0.3)
    clients: list[socket.socket] = []
    lock = threading.Lock()

    def open_some(k: int) -> None:
        for _ in range(k):
            c = socket.create_connection(("127.0.0.1", port))
            with lock:
                clients.append(c)

    if parallel:
        threads = [threading.Thread(target=open_some, args=(n // 8,)) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    else:
        open_some(n)
    time.sleep(0.5)
    for sw in stops:
        os.write(sw, b"x")
    counts = [int(os.read(r, 64)) for r in pipes]
    for pid in pids:
        os.waitpid(pid, 0)
    for c in clients:
        c.close()
    return counts


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    for mode in ("reuseport", "inherited"):
        for parallel in (False, True):
            counts = trial(mode, n, parallel)
            total = sum(counts)
            shares = ", ".join(f"{c} ({100 * c / total:.0f}%)" for c in counts)
            print(f"{mode:10s} {'8 threads' if parallel else 'sequential':10s} {shares}")


if __name__ == "__main__":
    main()
