"""The smallest app: `make run APP=hello` (or `python examples/hello/app.py`) starts it on
http://127.0.0.1:8080; plain `make run` starts the chat example."""

from robyn import Robyn, Request

app = Robyn(__file__)


@app.get("/")
def index():
    return "Hello, world!"


@app.get("/users/:user_id")
async def get_user(request: Request, user_id: str):
    return {"user": {"id": user_id}}


@app.get("/health", const=True)
def health_check():
    return {"status": "healthy"}


if __name__ == "__main__":
    app.start(host="127.0.0.1", port=8080)
