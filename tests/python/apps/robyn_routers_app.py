"""SubRouters, add_route, dependencies and authentication, with no global middleware (so
unrouted requests keep C's own 404 / 405): tests/python/test_robyn_routers.py."""

import json
import os

from robyn import Request, Response, Robyn, SubRouter, WebSocketDisconnect
from robyn.authentication import AuthenticationHandler, BearerGetter, Identity

app = Robyn(__file__)


class TokenHandler(AuthenticationHandler):
    def authenticate(self, request: Request):
        token = self.token_getter.get_token(request)
        return Identity(claims={"who": "app"}) if token == "app-token" else None


class AsyncTokenHandler(AuthenticationHandler):
    async def authenticate(self, request: Request):
        token = self.token_getter.get_token(request)
        return Identity(claims={"who": "async"}) if token == "async-token" else None


@app.get("/", auth_required=False)
def index():
    return "Hello, world!"


@app.get("/private", auth_required=True)
def private(request: Request):
    return {"claims": request.identity.claims}


@app.post("/private/async", auth_required=True)
async def private_async(request: Request):
    return {"claims": request.identity.claims, "body": request.body}


# ---- SubRouters ---------------------------------------------------------------------------

api = SubRouter(prefix="/api")
api.inject(ROUTER_VALUE="api router value")
api.inject_global(GLOBAL_VALUE="api's global value, overridden by the app's")


@api.get("/")
def api_root():
    return "api root"


@api.get("/items/:item_id")
def api_item(item_id: int, router_dependencies, global_dependencies):
    return {"item": item_id, "router": router_dependencies["ROUTER_VALUE"],
            "global": global_dependencies["GLOBAL_VALUE"]}


for method in ("post", "put", "delete", "patch", "options", "trace", "head"):
    getattr(api, method)("/every")(lambda verb=method: {"registered_for": verb})


@api.before_request("/hooked")
def api_hook(request: Request):
    request.headers.set("x-api-hook", "ran")
    return request


@api.get("/hooked")
def api_hooked(request: Request):
    return request.headers.get("x-api-hook") or "hook missing"


v2 = SubRouter("/v2")


@v2.get("/deep")
def deep():
    return "deep"


v2.add_route("GET", "/added", lambda: "added under /api/v2")


@v2.websocket("/ws")
async def v2_ws(websocket):
    try:
        while True:
            message = await websocket.receive_text()
            await websocket.send_text(f"v2 echo: {message}")
    except WebSocketDisconnect:
        pass


@v2_ws.on_connect
def v2_ws_connect(websocket):
    return "hello from /api/v2/ws"


api.include_router(v2)

secure = SubRouter(prefix="/secure")
secure.configure_authentication(AsyncTokenHandler(token_getter=BearerGetter()))


@secure.get("/mine", auth_required=True)
async def secure_mine(request: Request):
    return {"claims": request.identity.claims}


inherits = SubRouter(prefix="/inherits")


@inherits.get("/mine", auth_required=True)
def inherits_mine(request: Request):
    return {"claims": request.identity.claims}


def no_decorator():
    return "no decorator"


app.add_route("PUT", "/no/decorator", no_decorator)


@app.post("/created", status_code=201)
def created():
    return {"created": True}


@app.get("/created/const", const=True, status_code=202)
def created_const():
    return "accepted once"


@app.get("/created/response", status_code=201)
def created_response():
    return Response(200, {"content-type": "text/plain"}, "its own status wins")


class Item:
    """Validates like a Pydantic model (model_validate / model_dump_json)."""

    def __init__(self, name: str, price: float) -> None:
        self.name, self.price = name, price

    @classmethod
    def model_validate(cls, data: dict):
        return cls(str(data["name"]), float(data.get("price", 0)))

    def model_dump_json(self) -> str:
        return json.dumps({"name": self.name, "price": self.price})


@app.get("/modelled", response_model=Item)
def modelled():
    return {"name": "pen", "price": "2.5", "secret": "dropped by the model"}
app.inject_global(GLOBAL_VALUE="the app's global value")
app.include_router(api)
app.include_router(secure)
app.include_router(inherits)
app.configure_authentication(TokenHandler(token_getter=BearerGetter()))

app.start(host=os.environ.get("ROBYN_HOST", "127.0.0.1"), port=int(os.environ.get("ROBYN_PORT", "8080")))
