"""ALLOW_CORS with two origins (tests/python/test_robyn_cors.py)."""

import os

from robyn import ALLOW_CORS, Headers, Response, Robyn

app = Robyn(__file__)
ALLOW_CORS(app, origins=["http://localhost:3000", "https://front.example"], headers=["X-Token"])


@app.get("/")
def index():
    return "Hello, world!"


@app.post("/data")
def data():
    return "created"


@app.options("/own-options")
def own_options():
    return "never reached: the CORS hook answers every OPTIONS request"


@app.get("/custom")
def custom():
    return Response(200, Headers({"access-control-allow-origin": "https://front.example"}), "custom")


app.start(host=os.environ.get("ROBYN_HOST", "127.0.0.1"), port=int(os.environ.get("ROBYN_PORT", "8080")))
