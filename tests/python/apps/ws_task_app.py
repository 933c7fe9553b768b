"""How a WebSocket handler's task is made, with and without an app's task factory.

Routes:
  GET  /                "Hello, world!"
  WS   /who             answers each message with JSON: the handler task's name, whether the
                        app's task factory made it, and the message; on_close records the id
  GET  /closed          {"closed": how many /who connections on_close has seen}

$WS_TASK_FACTORY=1: a startup handler installs a task factory that marks every task it makes.
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

from robyn import Robyn

app = Robyn(__file__)
closed: list[str] = []
factory_made: set[int] = set()


@app.get("/")
def index() -> str:
    return "Hello, world!"


@app.get("/closed")
def closed_count() -> str:
    return json.dumps({"closed": len(closed)})


if os.environ.get("WS_TASK_FACTORY") == "1":

    @app.startup_handler
    async def install_factory() -> None:
        def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
            task = asyncio.Task(coro, loop=loop, **kwargs)
            factory_made.add(id(task))
            return task

        asyncio.get_running_loop().set_task_factory(factory)


@app.websocket("/who")
async def who(websocket: Any) -> None:
    task = asyncio.current_task()
    assert task is not None
    async for message in websocket:
        await websocket.send_text(json.dumps({"name": task.get_name(),
                                              "factory": id(task) in factory_made,
                                              "message": message}))


@who.on_close
def who_closed(websocket: Any) -> None:
    closed.append(websocket.id)


if __name__ == "__main__":
    app.start(host="127.0.0.1", port=8080)
