"""The app of tests/python/test_metrics.py's middleware test: global hooks and an app response
header beside app.enable_metrics(), whose route C answers before any of them.

Routes:
  GET  /          "Hello, world!"
  GET  /hooks     how many times the global before hook ran: {"before": n}
  GET  /metrics   the exposition (C)
Every other path: Robyn's 404, through the middleware (the fallback route).
"""

from __future__ import annotations

import threading

from robyn import Request, Response, Robyn

app = Robyn(__file__)
app.add_response_header("x-app", "metrics-middleware")
_lock = threading.Lock()
_before = {"count": 0}


@app.before_request()
def count_before(request: Request):
    with _lock:
        _before["count"] += 1
    return request


@app.after_request()
def mark(response: Response):
    response.headers.set("x-after", "yes")
    return response


@app.get("/")
def index():
    return "Hello, world!"


@app.get("/hooks")
def hooks():
    with _lock:
        return {"before": _before["count"]}


app.enable_metrics()

if __name__ == "__main__":
    app.start()
