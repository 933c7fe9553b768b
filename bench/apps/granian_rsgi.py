"""The granian RSGI peer: "Hello, world!" for every GET, as the plaintext workloads ask.

    bench/.venvs/granian/bin/granian --interface rsgi --workers 1 --runtime-threads 1 \
        --loop uvloop --http 1 --no-ws --working-dir bench/apps granian_rsgi:app

RSGI is granian's own interface (Rust-to-Python with no ASGI message dicts): the handler gets
the request scope and a protocol object and answers with one call. Only the plaintext
workloads (`GET /`, unpipelined and pipelined) run against it; the other routes of
bench/apps/robyn_app.py have no counterpart here, so every path gets the same answer.
"""

from __future__ import annotations

HELLO = b"Hello, world!"
HEADERS = [("content-type", "text/plain")]


async def app(scope, protocol):
    protocol.response_bytes(200, HEADERS, HELLO)
