"""The request pipeline of a route with middleware, as Robyn 0.88 runs it:

1. the app's request headers (`app.add_request_header`), then its response headers (as
   Robyn 0.88 does), are added to the request;
2. the before hooks run: the global ones, then the route's path's (an `auth_required`
   route's authentication check among them, where it was registered). A hook returning a
   Request goes on with it, None goes on unchanged; anything else is the answer
   (a Response, or a dict / list / bytes / str / (body, headers, status) tuple cast to
   one) and the handler is skipped;
3. the handler (or the const route's stored answer, or the 404 of a request no route
   takes); its exceptions go to the route's exception handler, if any;
4. the app's response headers (`app.set_response_header`) are added where the response
   has no header of that name, unless the path is excluded;
5. the after hooks run on every response that is not streamed (short-circuited ones,
   404s and 500s included): global, then the path's. Each gets the response (or the
   request and the response) and returns the response to send.

An exception in a before hook is a 500 (no after hook runs); in an after hook, a 500
with the headers the response had. One contextvars.Context holds for the whole request:
a sync pipeline runs in a fresh copy of the app's context on its worker thread, an async
one is a single task on the event loop (a task's context is its own copy).

Routes without any of this keep the plain handle of robyn/app.py: nothing here runs.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .datastructures import Headers
from .exceptions import HTTPException, QueryParamValidationError
from .request import Request
from .responses import Cookies, NotAnAnswerError, Response, StreamingResponse, jsonify, serialize
from .streaming import stream_async, stream_sync

if TYPE_CHECKING:
    from .app import Robyn
    from .authentication import AuthenticationHandler
    from .router import Hook

logger = logging.getLogger("robyn")

__all__ = ["Pipeline", "cast_before", "to_response", "SERVER_ERROR_BODY", "NOT_FOUND_BODY"]

TEXT = [("content-type", "text/plain")]
SERVER_ERROR_BODY = "Internal server error"
NOT_FOUND_BODY = "Not found"


_new = object.__new__


def _built(status: int, headers: Headers, body: str | bytes) -> Response:
    """Response(status, headers, body) without the constructor's checks: the parts are
    known to be right (this is per request)."""
    response = _new(Response)
    response.status_code = status
    response._headers = headers
    response._description = body
    response.response_type = "text"
    response._file_path = None
    response.cookies = Cookies()
    return response


def make_response(status: int, pairs: list[tuple[str, str]], body: bytes | str) -> Response:
    """A Response with the given parts; the body as str when it is UTF-8 (as Robyn hands
    responses to hooks), else bytes."""
    if isinstance(body, bytes):
        try:
            body = body.decode()
        except UnicodeDecodeError:
            pass
    return _built(status, Headers.from_pairs(list(pairs)), body)


def to_response(result: Any) -> Response | StreamingResponse:
    """A handler's or hook's result as the Response (or stream) it stands for."""
    kind = type(result)
    if kind is Response:
        response: Response = result  # typed without a call: this is the per-request path
        return response
    if kind is str:  # the common case: no encoding to bytes and back
        return _built(200, Headers.from_pairs([("content-type", "text/plain")]), result)
    if kind is dict or kind is list:
        return _built(200, Headers.from_pairs([("content-type", "application/json")]), jsonify(result))
    if isinstance(result, (Response, StreamingResponse)):
        return result
    status, pairs, body = serialize(result)
    return make_response(status, pairs, body)


def cast_before(result: Any) -> Any:
    """Robyn's cast of a before hook's result: a Request, None, a Response or a stream are
    kept; a dict / list is JSON, bytes and anything else text, a 3-tuple is
    (body, headers, status)."""
    if result is None or isinstance(result, (Request, Response, StreamingResponse)):
        return result
    if isinstance(result, (dict, list)):
        return Response(200, Headers({"content-type": "application/json"}), jsonify(result))
    if isinstance(result, bytes):
        return Response(200, Headers({"content-type": "text/plain"}), result)
    if isinstance(result, tuple):
        if len(result) != 3:
            raise ValueError("A tuple returned from before_request must have 3 elements: "
                             "(description, headers, status_code)")
        description, headers, status_code = result
        if isinstance(description, (dict, list)):
            body: str | bytes = jsonify(description)
        elif isinstance(description, bytes):
            body = description
        else:
            body = str(description)
        return Response(status_code, Headers(headers) if not isinstance(headers, Headers) else headers, body)
    return Response(200, Headers({"content-type": "text/plain"}), str(result))


def merge_missing(headers: Headers, extra: list[tuple[str, str]]) -> None:
    """Adds the (name, value) pairs whose name `headers` does not have (every value of it)."""
    present = set(headers.keys())
    for name, value in extra:
        if name not in present:
            headers.append(name, value)


def _log(where: str, exc: BaseException) -> None:
    if isinstance(exc, NotAnAnswerError):  # the traceback would show only the serializer
        logger.error("%s returned %s", where, exc)
        return
    logger.error("%s raised", where, exc_info=(type(exc), exc, exc.__traceback__))


class Pipeline:
    """The pipeline of one route (or of the requests no route takes)."""

    def __init__(self, app: Robyn, where: str, path: str | None, befores: list[Hook],
                 afters: list[Hook], produce: Callable[[Request], Any], produce_is_async: bool,
                 exception_handler: Callable[[Any], Any] | None,
                 status_code: int | None = None, response_model: Any = None) -> None:
        self.app = app
        self.where = where
        self.befores = [(h, self._before_call(h)) for h in befores]
        self.afters = [(h, self._after_call(h)) for h in afters]
        self.produce = produce
        self.produce_is_async = produce_is_async
        self.exception_handler = exception_handler
        self.status_code = status_code
        self.response_model = response_model
        excluded = app.excluded_response_headers_paths or ()
        self.response_headers = ([] if path is not None and path in excluded
                                 else app.response_headers.multi_items())
        self.excluded = set(excluded)
        # Robyn 0.88 hands its app response headers to handlers as request headers too
        # (its server keeps both sets under one key, so the response set wins); apps and
        # Robyn's own suite read them there, so they are added after the request headers.
        self.request_headers = app.request_headers.multi_items() + app.response_headers.multi_items()
        self.is_async = (produce_is_async or any(h.is_async for h, _ in self.befores + self.afters)
                         or (exception_handler is not None and _is_async(exception_handler)))

    # ---- hooks as calls ---------------------------------------------------------------

    def _before_call(self, hook: Hook) -> Callable[[Request], Any]:
        if hook.route is not None:
            return self._authentication(hook)
        func = hook.func
        assert func is not None  # only the authentication check has none
        if hook.nparams == 0:
            return lambda request: func()
        return func

    def _authentication(self, hook: Hook) -> Callable[[Request], Any]:
        route = hook.route
        assert route is not None
        handler: AuthenticationHandler | None = route.owner._effective_authentication()
        if handler is None:
            from .authentication import AuthenticationNotConfiguredError

            raise AuthenticationNotConfiguredError(
                f"{route.method} {route.path} has auth_required=True but no authentication "
                "handler is configured: call configure_authentication() on the app or its router")
        hook.is_async = _is_async(handler.authenticate)

        def authenticate(request: Request) -> Any:
            identity = handler.authenticate(request)
            if inspect.isawaitable(identity):
                return _finish_authentication(handler, request, identity)
            if identity is None:
                return handler.unauthorized_response
            request.identity = identity
            return request

        return authenticate

    @staticmethod
    def _after_call(hook: Hook) -> Callable[[Request, Response], Any]:
        func = hook.func
        assert func is not None  # after hooks always have one
        if hook.nparams == 0:
            return lambda request, response: func()
        if hook.nparams == 1:
            return lambda request, response: func(response)
        return func

    # ---- the parts shared by both kinds ------------------------------------------------

    def _request(self, job: Any) -> Request:
        request = Request.from_job(job)
        if self.request_headers:
            headers = request.headers
            for name, value in self.request_headers:
                headers.append(name, value)
        return request

    def _before_result(self, hook: Hook, out: Any) -> Any:
        if type(out) is Request:
            return out
        out = cast_before(out)
        if out is not None and not isinstance(out, (Request, Response, StreamingResponse)):
            raise TypeError(f"before_request hook {hook.name} returned {out!r}")
        return out

    def _error_answer(self, exc: BaseException) -> Response | None:
        """The answer to an exception of the handler that needs no exception handler, or None."""
        if isinstance(exc, QueryParamValidationError):
            return make_response(400, TEXT, str(exc))
        if isinstance(exc, HTTPException) and self.exception_handler is None:
            return make_response(exc.status_code, TEXT, str(exc.detail if exc.detail is not None else ""))
        return None

    def _server_error(self, exc: BaseException) -> Response:
        _log(self.where, exc)
        return make_response(500, TEXT, SERVER_ERROR_BODY)

    def _shape(self, result: Any) -> Response | StreamingResponse:
        """The handler's result with the route's status_code / response_model applied."""
        if isinstance(result, (Response, StreamingResponse)):
            return result
        model = self.response_model
        if model is not None and isinstance(result, dict):
            result = model.model_validate(result)
            status, pairs, body = serialize(result)
            return make_response(self.status_code or status, pairs, body)
        response = to_response(result)
        if self.status_code is not None and isinstance(response, Response):
            response.status_code = self.status_code
        return response

    def _headed(self, request: Request, response: Response | StreamingResponse) -> None:
        if self.response_headers and (not self.excluded or request.url.path not in self.excluded):
            merge_missing(response.headers, self.response_headers)

    def _after_result(self, hook: Hook, out: Any, response: Response) -> Response | StreamingResponse:
        if out is None:
            return response
        if isinstance(out, Request):
            raise TypeError(f"after_request hook {hook.name} returned a Request; it must return the response")
        return to_response(out)

    def _send(self, job: Any, response: Response) -> None:
        try:
            status, pairs, body = serialize(response)
        except Exception as exc:
            _log(f"{self.where} (its response)", exc)
            job.respond(500, TEXT, SERVER_ERROR_BODY)
            return
        job.respond(status, pairs, body)

    # ---- sync ----------------------------------------------------------------------

    def run_sync(self, job: Any) -> None:
        try:
            request = self._request(job)
            response: Any = None
            for hook, call in self.befores:
                out = self._before_result(hook, call(request))
                if out is None:
                    continue
                if isinstance(out, Request):
                    request = out
                    continue
                response = out
                break
        except Exception as exc:
            _log(f"before_request hook of {self.where}", exc)
            job.respond(500, TEXT, SERVER_ERROR_BODY)
            return
        if response is None:
            response = self._produce_sync(request)
        self._headed(request, response)
        if isinstance(response, StreamingResponse):
            stream_sync(job, response, self.where, self.app._spawn_threadsafe, self.app._streams_stopping)
            return
        for hook, after in self.afters:
            try:
                response = self._after_result(hook, after(request, response), response)
            except Exception as exc:
                _log(f"after_request hook {hook.name} of {self.where}", exc)
                job.respond(500, response.headers.multi_items() or TEXT, SERVER_ERROR_BODY)
                return
            if isinstance(response, StreamingResponse):
                stream_sync(job, response, self.where, self.app._spawn_threadsafe,
                            self.app._streams_stopping)
                return
        self._send(job, response)

    def _produce_sync(self, request: Request) -> Response | StreamingResponse:
        try:
            return self._shape(self.produce(request))
        except BaseException as exc:  # as the plain handle: even SystemExit is the handler's 500
            answer = self._error_answer(exc)
            if answer is not None:
                return answer
            if self.exception_handler is None:
                return self._server_error(exc)
            try:
                return to_response(self.exception_handler(exc))
            except Exception as again:
                return self._server_error(again)

    # ---- async -----------------------------------------------------------------------

    async def run_async(self, job: Any) -> None:
        try:
            request = self._request(job)
            response: Any = None
            for hook, call in self.befores:
                out = call(request)
                if inspect.isawaitable(out):
                    out = await out
                out = self._before_result(hook, out)
                if out is None:
                    continue
                if isinstance(out, Request):
                    request = out
                    continue
                response = out
                break
        except Exception as exc:
            _log(f"before_request hook of {self.where}", exc)
            job.respond(500, TEXT, SERVER_ERROR_BODY)
            return
        if response is None:
            response = await self._produce_async(request)
        self._headed(request, response)
        if isinstance(response, StreamingResponse):
            await stream_async(job, response, self.where)
            return
        for hook, after in self.afters:
            try:
                out = after(request, response)
                if inspect.isawaitable(out):
                    out = await out
                response = self._after_result(hook, out, response)
            except Exception as exc:
                _log(f"after_request hook {hook.name} of {self.where}", exc)
                job.respond(500, response.headers.multi_items() or TEXT, SERVER_ERROR_BODY)
                return
            if isinstance(response, StreamingResponse):
                await stream_async(job, response, self.where)
                return
        self._send(job, response)

    async def _produce_async(self, request: Request) -> Response | StreamingResponse:
        try:
            result = self.produce(request)
            if inspect.isawaitable(result):
                result = await result
            return self._shape(result)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            answer = self._error_answer(exc)
            if answer is not None:
                return answer
            if self.exception_handler is None:
                return self._server_error(exc)
            try:
                handled = self.exception_handler(exc)
                if inspect.isawaitable(handled):
                    handled = await handled
                return to_response(handled)
            except Exception as again:
                return self._server_error(again)

    # ---- what C calls ------------------------------------------------------------------

    def handle(self) -> Callable[[Any], None]:
        """The callable C hands each job to (on a sync worker, or on the event loop)."""
        app = self.app
        if not self.is_async:
            base = app._request_context
            run = self.run_sync

            def handle_sync(job: Any) -> None:
                base.copy().run(run, job)

            return handle_sync

        serve = self.run_async
        tasks = app._tasks
        eager = app._eager

        async def guarded(job: Any) -> None:
            try:
                await serve(job)
            except asyncio.CancelledError:
                if app._stopping:
                    job.respond(503, TEXT, "Service Unavailable")
                raise

        def handle_async(job: Any) -> None:
            loop = app._loop
            assert loop is not None
            if eager:
                task = asyncio.Task(guarded(job), loop=loop, eager_start=True)  # type: ignore[call-arg]
                if task.done():
                    return
            else:
                task = loop.create_task(guarded(job))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

        return handle_async


async def _finish_authentication(handler: AuthenticationHandler, request: Request, pending: Any) -> Any:
    identity = await pending
    if identity is None:
        return handler.unauthorized_response
    request.identity = identity
    return request


def _is_async(func: Any) -> bool:
    from .injection import handler_is_async

    return handler_is_async(func)


def new_request_context() -> contextvars.Context:
    """The context each sync request runs a copy of: the app's, as it is once started."""
    return contextvars.copy_context()
