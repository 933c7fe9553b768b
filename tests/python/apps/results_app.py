"""The app of tests/python/test_results.py: handlers returning values that are answers and
values that are not."""

import os

from robyn import Robyn

app = Robyn(__file__)


class Thing:
    """A class with no text of its own."""


class Named:
    def __str__(self) -> str:
        return "a named thing"


@app.get("/object")
def plain_object():
    return object()


@app.get("/thing")
async def plain_thing():
    return Thing()


@app.get("/tuple-of-object")
def tuple_of_object():
    return (object(), {"x-kind": "tuple"}, 201)


@app.before_request("/hooked")
def before(request):
    return request


@app.get("/hooked")
def hooked():
    return object()


@app.get("/status-code", status_code=201)
async def with_status_code():
    return Thing()


@app.get("/none")
def none():
    return None


@app.get("/number")
def number():
    return 200


@app.get("/type")
def a_type():
    return dict


@app.get("/named")
def named():
    return Named()


@app.get("/ok")
def ok():
    return "ok"


if os.environ.get("RESULTS_CONST_OBJECT"):
    @app.get("/const-object", const=True)
    def const_object():
        return Thing()


if __name__ == "__main__":
    app.start()
