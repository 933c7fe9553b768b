"""Routes documented in /openapi.json (Robyn 0.88's decorator keywords, typed handlers)."""

from __future__ import annotations

import datetime
import os
from typing import Optional, TypedDict

from pydantic import BaseModel

from robyn import Request, Robyn, SubRouter
from robyn.robyn import QueryParams
from robyn.types import Body, JsonBody, JSONResponse

app = Robyn(__file__)


class Address(BaseModel):
    street: str
    city: str


class User(BaseModel):
    name: str
    address: Address


class Item(TypedDict):
    name: str
    value: int


class Temperature(JsonBody):
    fahrenheit: float


class Note(Body):
    text: str
    tags: list[str]


class Created(JSONResponse):
    id: int


class Search(QueryParams):
    required: bool


@app.get("/")
def index():
    return "Hello, world!"


@app.get("/users/:id", openapi_name="Get a user", openapi_tags=["users"])
def get_user(id: int, verbose: bool = False, fields: Optional[list[str]] = None) -> dict:
    """Returns one user."""
    return {"id": id}


@app.post("/users", openapi_tags=["users"], status_code=201,
          responses={409: "Already exists", 422: {"description": "Invalid", "model": Created}})
def create_user(user: User) -> User:
    """Creates a user."""
    return user


@app.post("/items")
def create_item(request: Request, item: Item, search: Search) -> Created:
    return {"id": 1}


@app.post("/temperature")
async def temperature(data: Temperature) -> datetime.datetime:
    return datetime.datetime.now()


@app.post("/notes", deprecated=True)
def notes(body: Note) -> str:
    return "ok"


@app.get("/hidden", include_in_schema=False)
def hidden() -> str:
    return "hidden"


@app.get("/files/*rest")
def files(rest: str) -> bytes:
    return rest.encode()


router = SubRouter(__file__, prefix="/sub")


@router.post("/thing", openapi_tags=["sub"])
def sub_thing() -> dict:
    """A subrouter route."""
    return {}


app.include_router(router)


if __name__ == "__main__":
    app.start(port=int(os.environ.get("APP_PORT", "8080")))
