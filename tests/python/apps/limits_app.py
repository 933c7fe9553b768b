"""A body-size limit given to app.start(max_payload_size=...) from $APP_MAX_PAYLOAD (when set),
and a port given to app.start(port=...) from $APP_PORT (when set)."""

import os

from robyn import Robyn
from robyn.types import RequestBody

app = Robyn(__file__)


@app.get("/")
def index():
    return "Hello, world!"


@app.post("/upload")
def upload(body: RequestBody):
    return {"length": len(body)}


if __name__ == "__main__":
    options = {}
    if os.environ.get("APP_MAX_PAYLOAD"):
        options["max_payload_size"] = int(os.environ["APP_MAX_PAYLOAD"])
    port = int(os.environ.get("APP_PORT", "8080"))
    app.start(host="127.0.0.1", port=port, **options)
