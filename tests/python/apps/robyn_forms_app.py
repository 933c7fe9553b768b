"""Bodies and cookies: forms, uploads, Pydantic / TypedDict / JsonBody bodies, set_cookie."""

from __future__ import annotations

import hashlib
import os
from typing import TypedDict

from pydantic import BaseModel

from robyn import Request, Response, Robyn
from robyn.types import JsonBody

app = Robyn(__file__)


class UserCreate(BaseModel):
    name: str
    email: str
    age: int
    active: bool = True


class Address(BaseModel):
    street: str
    city: str


class UserWithAddress(BaseModel):
    name: str
    address: Address


class Item(TypedDict):
    name: str
    value: int


class Temperature(JsonBody):
    fahrenheit: float


@app.get("/")
def index():
    return "Hello, world!"


@app.post("/form")
def form(request: Request):
    return {
        "form_data": request.form_data,
        "files": {name: {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
                  for name, data in request.files.items()},
    }


@app.post("/form/async")
async def form_async(request: Request):
    return {"form_data": request.form_data, "files": sorted(request.files)}


@app.post("/form/ignored")
def form_ignored(request: Request):
    return "the body was not read"


@app.post("/pydantic/user")
def create_user(user: UserCreate):
    return user.model_dump()


@app.post("/pydantic/user/async")
async def create_user_async(request: Request, user: UserCreate):
    return {"method": request.method, **user.model_dump()}


@app.post("/pydantic/nested")
def create_nested(user: UserWithAddress):
    return {"name": user.name, "city": user.address.city}


@app.post("/pydantic/return")
def return_models(user: UserCreate):
    return [user, user]


@app.post("/typeddict")
def typed_dict_body(data: Item):
    return {"type": type(data).__name__, "name": data["name"], "value": data["value"]}


@app.post("/jsonbody")
async def json_body(data: Temperature):
    return {"celsius": (float(data["fahrenheit"]) - 32) * 5 / 9}


@app.get("/cookie/attributes")
def cookie_attributes():
    response = Response(200, {}, "cookies")
    response.set_cookie("secure_session", "secret123", path="/", max_age=3600, secure=True,
                        http_only=True, same_site="strict", domain=".example.com")
    return response


@app.get("/cookie/several")
def several_cookies():
    response = Response(200, {}, "cookies")
    response.set_cookie("session", "first")
    response.set_cookie("theme", "dark", same_site="None")
    response.set_cookie("session", "final")
    response.set_cookie("bad", "x", same_site="sometimes")  # skipped, as Robyn skips it
    return response


@app.get("/cookie/deleted")
def deleted_cookie():
    response = Response(200, {}, "deleted")
    response.set_cookie("theme", "dark")
    response.cookies.delete("theme")
    return response


@app.get("/cookie/wrong-type")
def wrong_type_cookie():
    response = Response(200, {}, "never sent")
    response.set_cookie("n", "v", max_age="3600")  # TypeError: a 500, logged
    return response


if __name__ == "__main__":
    app.start(port=int(os.environ.get("APP_PORT", "8080")))
