"""Sending a StreamingResponse: its head at once, then each chunk its generator yields.

The C side frames the body (chunked on HTTP/1.1, close-delimited on HTTP/1.0) and keeps
what the socket has not taken yet. `job.write()` says when that backlog is over the
high-water mark; the generator is then not pulled again until it drains, so a client that
reads slowly holds the generator back instead of the server's memory growing.

Two drivers, one per thread a generator can be pulled on:
  stream_sync   on the sync worker that ran the handler; waits with `job.wait_writable()`
  stream_async  on the asyncio loop; waits on a future that `job.on_writable()` resolves
A sync handler that returns an async generator hands it to the loop (`spawn`), since an
async generator can only be driven by an event loop.

Whatever ends the stream (the generator is done, the client went away, the generator
raised, the server is stopping), the generator is closed, so its `finally:` blocks run,
and the response is finished with `job.end_stream()`.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import Any, Protocol, Union

from robyn.responses import SSE_MEDIA_TYPE, StreamingResponse, _as_headers

__all__ = ["StreamJob", "stream_head", "stream_sync", "stream_async"]

logger = logging.getLogger("robyn")

HeaderList = list[tuple[str, str]]
Chunk = Union[str, bytes]
Spawn = Callable[[Coroutine[Any, Any, None]], None]

_TEXT = [("content-type", "text/plain; charset=utf-8")]

# Framing is the C side's: a handler's own Content-Length would contradict chunked coding,
# and Connection is decided by the request (HTTP/1.0 streams end with the connection).
_FRAMING_HEADERS = frozenset({"content-length", "transfer-encoding", "connection"})

# What Robyn 0.88 adds to every streaming answer, so that proxies (nginx's X-Accel-Buffering)
# and caches pass each chunk on at once. A header the handler set itself is kept instead.
_STREAM_DEFAULTS = (
    ("x-accel-buffering", "no"),
    ("cache-control", "no-cache, no-store, must-revalidate"),
    ("pragma", "no-cache"),
    ("expires", "0"),
)


class StreamJob(Protocol):
    """The part of the C bridge's Job that streaming uses."""

    @property
    def method(self) -> str: ...

    @property
    def client_gone(self) -> bool: ...

    def respond(self, status: int, headers: HeaderList | None, body: str | bytes) -> bool: ...

    def start_stream(self, status: int, headers: HeaderList | None) -> bool: ...

    def write(self, data: str | bytes) -> bool: ...

    def wait_writable(self) -> bool: ...

    def on_writable(self, callback: Callable[[], None]) -> bool: ...

    def end_stream(self) -> None: ...


def stream_head(response: StreamingResponse) -> tuple[int, HeaderList]:
    """The status and headers to start the stream with, read from the response now (a
    handler may have changed its attributes after constructing it)."""
    headers = [pair for pair in _as_headers(response.headers).multi_items()
               if pair[0] not in _FRAMING_HEADERS]
    media_type = response.media_type
    if media_type == SSE_MEDIA_TYPE:
        # As in Robyn, an SSE stream always says so, whatever Content-Type it was given.
        headers = [pair for pair in headers if pair[0] != "content-type"]
        headers.append(("content-type", SSE_MEDIA_TYPE))
    names = {name for name, _ in headers}
    if "content-type" not in names and media_type:
        headers.append(("content-type", media_type))
    headers.extend(pair for pair in _STREAM_DEFAULTS if pair[0] not in names)
    return response.status_code, headers


def is_async_content(content: object) -> bool:
    return hasattr(content, "__aiter__")


def _as_chunk(item: object) -> Chunk:
    if isinstance(item, (str, bytes)):
        return item
    if isinstance(item, (bytearray, memoryview)):
        return bytes(item)
    raise TypeError(f"the generator yielded {type(item).__name__}, not str or bytes")


def _refuse(job: StreamJob, exc: BaseException, where: str) -> None:
    """Nothing was sent yet: the request gets a 500 at once."""
    logger.error("%s: cannot start its streaming response", where,
                 exc_info=(type(exc), exc, exc.__traceback__))
    try:
        job.respond(500, _TEXT, "Internal server error")
    except Exception:  # the job is unusable: its deallocation answers 500 instead
        logger.exception("%s: cannot answer 500 either", where)


def _log_broken(where: str, exc: BaseException) -> None:
    # The status line is gone already, so the client only sees the stream end early.
    logger.error("%s: its streaming response failed after the head was sent; the stream "
                 "ends here", where, exc_info=(type(exc), exc, exc.__traceback__))


def _close(iterator: object, where: str) -> None:
    close = getattr(iterator, "close", None)
    if close is None:
        return
    try:
        close()
    except Exception as exc:
        logger.error("%s: closing its stream's generator raised", where,
                     exc_info=(type(exc), exc, exc.__traceback__))


async def _aclose(iterator: object, where: str) -> None:
    aclose = getattr(iterator, "aclose", None)
    if aclose is None:
        _close(iterator, where)
        return
    try:
        await aclose()
    except Exception as exc:
        logger.error("%s: closing its stream's generator raised", where,
                     exc_info=(type(exc), exc, exc.__traceback__))


def _write(job: StreamJob, item: object, where: str) -> bool | None:
    """Writes one yielded item. True: the backlog is over the mark (wait before the next
    pull); False: carry on; None: the stream is over (the client left, or the item could
    not be sent, which is logged)."""
    try:
        return job.write(_as_chunk(item))
    except ConnectionResetError:
        return None
    except Exception as exc:  # a value that is not str or bytes, a str that is not UTF-8
        _log_broken(where, exc)
        return None


def _start(job: StreamJob, response: StreamingResponse, where: str) -> bool:
    """Sends the head. False when the stream must not go on (already answered, or refused
    with a 500 here)."""
    try:
        status, headers = stream_head(response)
        return job.start_stream(status, headers)
    except Exception as exc:  # CR/LF/NUL in a header (ValueError), a bad header type
        _refuse(job, exc, where)
        return False


def stream_sync(job: StreamJob, response: StreamingResponse, where: str, spawn: Spawn,
                stopping: threading.Event) -> None:
    """Sends `response` from the sync worker thread that ran its handler; returns when the
    stream is over. An async generator is handed to the loop with `spawn` instead. Between
    pulls, `stopping` (set when the server's grace period ends) stops the stream."""
    content = response.content
    if is_async_content(content):
        spawn(stream_async(job, response, where))
        return
    try:
        iterator: Iterator[object] = iter(content)  # type: ignore[arg-type]
    except Exception as exc:
        _refuse(job, exc, where)
        return
    if not _start(job, response, where):
        _close(iterator, where)
        return
    # A HEAD request gets the head alone: the body would not be sent anyway.
    head_only = job.method == "HEAD"
    try:
        while not head_only and not stopping.is_set():
            try:
                item = next(iterator)
            except StopIteration:
                break
            except Exception as exc:
                _log_broken(where, exc)
                break
            over = _write(job, item, where)
            if over is None or (over and not job.wait_writable()):
                break
    finally:
        _close(iterator, where)
        job.end_stream()


async def _drained(job: StreamJob) -> bool:
    """Waits until the backlog is under the mark; False when the client is gone."""
    loop = asyncio.get_running_loop()
    drained: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not drained.done():  # it may have been cancelled meanwhile
            drained.set_result(None)

    if job.on_writable(wake):
        await drained
    return not job.client_gone


async def stream_async(job: StreamJob, response: StreamingResponse, where: str) -> None:
    """Sends `response` from the event loop. A sync generator is pulled here too, blocking
    the loop while it computes: returning one from an async handler is the handler's choice.
    Cancelling the task (the server's grace period ended) closes the generator and ends the
    stream before the CancelledError goes on."""
    content = response.content
    is_async = is_async_content(content)
    aiterator: AsyncIterator[object] | None = None
    iterator: Iterator[object] | None = None
    try:
        if is_async:
            aiterator = content.__aiter__()  # type: ignore[union-attr]
        else:
            iterator = iter(content)  # type: ignore[arg-type]
    except Exception as exc:
        _refuse(job, exc, where)
        return
    if not _start(job, response, where):
        if aiterator is not None:
            await _aclose(aiterator, where)
        else:
            _close(iterator, where)
        return
    head_only = job.method == "HEAD"
    try:
        while not head_only:
            try:
                if aiterator is not None:
                    item = await aiterator.__anext__()
                else:
                    assert iterator is not None
                    item = next(iterator)
            except (StopAsyncIteration, StopIteration):
                break
            except Exception as exc:
                _log_broken(where, exc)
                break
            over = _write(job, item, where)
            if over is None or (over and not await _drained(job)):
                break
            if not over:
                # A generator that never awaits, read by a fast client, would otherwise
                # keep the loop from every other request.
                await asyncio.sleep(0)
    finally:
        if aiterator is not None:
            await _aclose(aiterator, where)
        else:
            _close(iterator, where)
        job.end_stream()
