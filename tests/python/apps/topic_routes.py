"""The HTTP side of the test apps' topics, shared by those that need nothing more:
POST /publish/:topic publishes the request body (as text) and answers {"reached": n};
GET /subscribers/:topic answers {"count": n}, this process's subscribers."""

from robyn import Request, Robyn


def add_topic_routes(app: Robyn, subscribers: bool = True) -> None:
    @app.post("/publish/:topic")
    def publish(request: Request):
        body = request.body
        if isinstance(body, bytes):
            body = body.decode()
        return {"reached": app.publish(request.path_params["topic"], body)}

    if subscribers:
        @app.get("/subscribers/:topic")
        def subscribers_of(request: Request):
            return {"count": app.subscribers(request.path_params["topic"])}
