"""Unit tests of streaming responses: robyn.responses' StreamingResponse, SSEResponse and
SSEMessage (as Robyn 0.88 has them), and robyn.streaming's drivers, run against a fake job
that records every call and models the C side's backlog and high-water mark."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import Any

import pytest

import robyn
from robyn.datastructures import Headers
from robyn.responses import SSEMessage, SSEResponse, StreamingResponse
from robyn.streaming import stream_async, stream_head, stream_sync

WHERE = "handler for GET /stream"


class FakeStreamJob:
    """Records calls in `log` as tuples. Each write adds its length to a backlog; write()
    returns whether the backlog is over `high_water`, as the C side does. wait_writable()
    and on_writable() drain it (the latter later, on the loop). `leave_at=n` makes the n-th
    write (from 1) find the client gone."""

    def __init__(self, method: str = "GET", high_water: int = 1 << 30,
                 leave_at: int | None = None, start_error: Exception | None = None,
                 start_result: bool = True) -> None:
        self.method = method
        self.high_water = high_water
        self.leave_at = leave_at
        self.start_error = start_error
        self.start_result = start_result
        self.log: list[tuple[Any, ...]] = []
        self.body = b""
        self.backlog = 0
        self.writes = 0
        self.gone = False
        self.started = False
        self.ended = False
        self.waiters: list[Callable[[], None]] = []

    @property
    def client_gone(self) -> bool:
        return self.gone

    def respond(self, status: int, headers: list[tuple[str, str]] | None,
                body: str | bytes) -> bool:
        self.log.append(("respond", status, headers, body))
        return True

    def start_stream(self, status: int, headers: list[tuple[str, str]] | None) -> bool:
        self.log.append(("start", status, headers))
        if self.start_error is not None:
            raise self.start_error
        self.started = self.start_result
        return self.start_result

    def write(self, data: str | bytes) -> bool:
        if not self.started:
            raise RuntimeError("write() needs a stream started by start_stream()")
        self.writes += 1
        if self.leave_at is not None and self.writes >= self.leave_at:
            self.gone = True
        if self.gone:
            self.log.append(("write-gone",))
            raise ConnectionResetError("client disconnected")
        raw = data.encode("utf-8") if isinstance(data, str) else data
        assert type(raw) is bytes, f"write() takes str or bytes, got {type(data).__name__}"
        self.body += raw
        self.backlog += len(raw)
        over = self.backlog > self.high_water
        self.log.append(("write", raw, over))
        return over

    def wait_writable(self) -> bool:
        self.log.append(("wait",))
        self.backlog = 0
        return not self.gone

    def on_writable(self, callback: Callable[[], None]) -> bool:
        if self.gone or self.backlog <= self.high_water:
            self.log.append(("on_writable", False))
            return False
        self.log.append(("on_writable", True))
        loop = asyncio.get_running_loop()

        def drain() -> None:
            self.backlog = 0
            self.log.append(("drained",))
            callback()

        loop.call_later(0.01, drain)
        return True

    def end_stream(self) -> None:
        self.log.append(("end",))
        self.ended = True

    def kinds(self) -> list[str]:
        return [entry[0] for entry in self.log]


class Recorder:
    """A generator factory that logs each pull into the job's log, and whether its finally
    block ran."""

    def __init__(self, job: FakeStreamJob) -> None:
        self.job = job
        self.finished = False
        self.pulls = 0

    def sync(self, chunks: list[Any], fail_after: int | None = None) -> Iterator[Any]:
        try:
            for index, chunk in enumerate(chunks):
                if fail_after is not None and index == fail_after:
                    raise RuntimeError("the generator broke")
                self.pulls += 1
                self.job.log.append(("pull", index))
                yield chunk
        finally:
            self.finished = True

    async def aio(self, chunks: list[Any], fail_after: int | None = None,
                  pause: float = 0.0) -> AsyncIterator[Any]:
        try:
            for index, chunk in enumerate(chunks):
                if pause:
                    await asyncio.sleep(pause)
                if fail_after is not None and index == fail_after:
                    raise RuntimeError("the generator broke")
                self.pulls += 1
                self.job.log.append(("pull", index))
                yield chunk
        finally:
            self.finished = True


def no_spawn(coro: Coroutine[Any, Any, None]) -> None:
    coro.close()
    raise AssertionError("a sync stream was handed to the loop")


def run_sync(job: FakeStreamJob, response: StreamingResponse,
             stopping: threading.Event | None = None) -> None:
    stream_sync(job, response, WHERE, no_spawn, stopping or threading.Event())


def run_async(job: FakeStreamJob, response: StreamingResponse) -> None:
    asyncio.run(stream_async(job, response, WHERE))


# ---- the Robyn 0.88 API -------------------------------------------------------------------


def test_sse_message_matches_robyn() -> None:
    assert SSEMessage("Hello world") == "data: Hello world\n\n"
    assert SSEMessage("Hello", event="greeting") == "event: greeting\ndata: Hello\n\n"
    assert SSEMessage("Hello", id="123") == "id: 123\ndata: Hello\n\n"
    assert SSEMessage("Hello", retry=5000) == "retry: 5000\ndata: Hello\n\n"
    assert (SSEMessage("Hello", event="test", id="456", retry=3000)
            == "event: test\nid: 456\nretry: 3000\ndata: Hello\n\n")
    assert SSEMessage("Line 1\nLine 2") == "data: Line 1\ndata: Line 2\n\n"
    assert SSEMessage("") == "data: \n\n"
    assert SSEMessage(None) == "data: \n\n"  # type: ignore[arg-type]
    assert (SSEMessage("Hello\nWorld\r\nWith\tTabs\rEnd")
            == "data: Hello\ndata: World\ndata: With\tTabs\ndata: End\n\n")
    assert SSEMessage("trailing\n") == "data: trailing\ndata: \n\n"
    # Falsy fields are left out, as in Robyn (retry=0 too).
    assert SSEMessage("x", event="", id="", retry=0) == "data: x\n\n"
    assert SSEMessage(42) == "data: 42\n\n"  # type: ignore[arg-type]


def test_streaming_response_defaults_match_robyn() -> None:
    def gen() -> Iterator[str]:
        yield "data: test\n\n"

    content = gen()
    response = StreamingResponse(content)
    assert response.content is content
    assert response.status_code == 200
    assert response.media_type == "text/event-stream"
    assert response.headers == Headers({"Content-Type": "text/event-stream"})

    binary = StreamingResponse(gen(), media_type="application/octet-stream")
    assert binary.headers.is_empty()  # Robyn sets no Content-Type on the object here
    assert StreamingResponse(gen(), status_code=0).status_code == 200  # `or 200`, as Robyn


def test_streaming_response_sets_sse_content_type_on_given_headers() -> None:
    given = Headers({"X-Custom-Header": "custom-value", "Content-Type": "text/plain"})
    response = SSEResponse(iter(()), status_code=201, headers=given)
    assert response.headers is given  # Robyn mutates the Headers it is given
    assert given["content-type"] == "text/event-stream"
    assert response.status_code == 201
    assert response.media_type == "text/event-stream"
    assert StreamingResponse(iter(()), headers={"X-A": "1"}).headers["x-a"] == "1"


def test_importable_from_robyn() -> None:
    assert robyn.StreamingResponse is StreamingResponse
    assert robyn.SSEResponse is SSEResponse
    assert robyn.SSEMessage is SSEMessage
    assert {"StreamingResponse", "SSEResponse", "SSEMessage"} <= set(robyn.__all__)


# ---- the head -------------------------------------------------------------------------------


def test_sse_head() -> None:
    status, headers = stream_head(SSEResponse(iter(())))
    assert status == 200
    assert headers == [
        ("content-type", "text/event-stream"),
        ("x-accel-buffering", "no"),
        ("cache-control", "no-cache, no-store, must-revalidate"),
        ("pragma", "no-cache"),
        ("expires", "0"),
    ]


def test_head_keeps_the_handlers_headers_and_drops_framing() -> None:
    headers = Headers({"X-Custom-Header": "custom-value", "Cache-Control": "private",
                       "Content-Length": "12", "Transfer-Encoding": "gzip",
                       "Connection": "keep-alive"})
    headers.append("X-Many", "a")
    headers.append("X-Many", "b")
    status, head = stream_head(SSEResponse(iter(()), status_code=201, headers=headers))
    assert status == 201
    names = [name for name, _ in head]
    assert "content-length" not in names and "transfer-encoding" not in names
    assert "connection" not in names
    assert ("cache-control", "private") in head
    assert names.count("cache-control") == 1
    assert ("x-custom-header", "custom-value") in head
    assert [v for n, v in head if n == "x-many"] == ["a", "b"]
    assert ("content-type", "text/event-stream") in head


def test_head_content_type_for_other_media_types() -> None:
    _, head = stream_head(StreamingResponse(iter(()), media_type="application/octet-stream"))
    assert ("content-type", "application/octet-stream") in head
    _, head = stream_head(StreamingResponse(iter(()), media_type="text/plain",
                                            headers={"Content-Type": "text/csv"}))
    assert [v for n, v in head if n == "content-type"] == ["text/csv"]


def test_head_reads_the_response_when_sent() -> None:
    response = SSEResponse(iter(()))
    response.status_code = 202
    response.headers = {"X-Later": "yes"}  # type: ignore[assignment]
    status, head = stream_head(response)
    assert status == 202 and ("x-later", "yes") in head
    assert ("content-type", "text/event-stream") in head


# ---- the sync driver ----------------------------------------------------------------------


def test_sync_stream_writes_each_chunk_as_yielded() -> None:
    job = FakeStreamJob()
    gen = Recorder(job)
    run_sync(job, SSEResponse(gen.sync([SSEMessage("one"), b"\x00\xff", "é"])))
    assert job.kinds() == ["start", "pull", "write", "pull", "write", "pull", "write", "end"]
    assert job.body == b"data: one\n\n\x00\xff" + "é".encode()
    assert gen.finished
    assert job.log[0][1] == 200


def test_sync_stream_of_a_list_and_bytes_like_chunks() -> None:
    job = FakeStreamJob()
    run_sync(job, StreamingResponse([bytearray(b"ab"), memoryview(b"cd"), "", b""],
                                    media_type="application/octet-stream"))
    assert job.body == b"abcd"
    assert job.ended


def test_sync_backpressure_waits_before_the_next_pull() -> None:
    job = FakeStreamJob(high_water=250)
    gen = Recorder(job)
    run_sync(job, StreamingResponse(gen.sync([b"x" * 100] * 10)))
    log = job.log
    waits = [i for i, entry in enumerate(log) if entry[0] == "wait"]
    assert len(waits) == 3  # after writes 3, 6 and 9
    for i, entry in enumerate(log):
        if entry[0] == "write" and entry[2]:
            assert log[i + 1] == ("wait",), log
    assert len(job.body) == 1000 and gen.pulls == 10 and job.ended


def test_sync_client_gone_on_write_closes_the_generator() -> None:
    job = FakeStreamJob(leave_at=3)
    gen = Recorder(job)
    run_sync(job, SSEResponse(gen.sync([f"data: {i}\n\n" for i in range(100)])))
    assert gen.pulls == 3
    assert gen.finished, "the generator's finally block did not run"
    assert job.kinds()[-2:] == ["write-gone", "end"]


def test_sync_client_gone_while_waiting_closes_the_generator() -> None:
    job = FakeStreamJob(high_water=10)
    gen = Recorder(job)

    def wait_writable() -> bool:
        job.log.append(("wait",))
        job.gone = True
        return False

    job.wait_writable = wait_writable  # type: ignore[method-assign]
    run_sync(job, StreamingResponse(gen.sync([b"x" * 20] * 5)))
    assert gen.pulls == 1 and gen.finished
    assert job.kinds() == ["start", "pull", "write", "wait", "end"]


def test_sync_exception_after_the_head_is_logged_and_ends_the_stream(
        caplog: pytest.LogCaptureFixture) -> None:
    job = FakeStreamJob()
    gen = Recorder(job)
    with caplog.at_level(logging.ERROR, logger="robyn"):
        run_sync(job, SSEResponse(gen.sync(["a", "b", "c"], fail_after=2)))
    assert job.body == b"ab"
    assert job.kinds()[-1] == "end"
    assert "respond" not in job.kinds()  # too late for a 500
    [record] = [r for r in caplog.records if r.name == "robyn"]
    assert WHERE in record.getMessage()
    assert record.exc_info is not None and "the generator broke" in str(record.exc_info[1])


def test_sync_chunk_that_is_not_str_or_bytes_ends_the_stream(
        caplog: pytest.LogCaptureFixture) -> None:
    job = FakeStreamJob()
    gen = Recorder(job)
    with caplog.at_level(logging.ERROR, logger="robyn"):
        run_sync(job, SSEResponse(gen.sync(["a", 42, "never"])))
    assert job.body == b"a" and gen.pulls == 2 and gen.finished and job.ended
    assert any("int" in str(r.exc_info[1]) for r in caplog.records if r.exc_info)


def test_sync_bad_header_is_a_500_before_anything_is_sent(
        caplog: pytest.LogCaptureFixture) -> None:
    job = FakeStreamJob(start_error=ValueError("header value contains CR, LF or NUL"))
    gen = Recorder(job)
    with caplog.at_level(logging.ERROR, logger="robyn"):
        run_sync(job, SSEResponse(gen.sync(["a"]), headers={"X-Bad": "a\nb"}))
    assert job.kinds() == ["start", "respond"]
    assert job.log[1][1] == 500 and job.log[1][3] == "Internal server error"
    assert gen.pulls == 0
    assert any(WHERE in r.getMessage() for r in caplog.records)


def test_sync_content_that_is_not_iterable_is_a_500(caplog: pytest.LogCaptureFixture) -> None:
    job = FakeStreamJob()
    with caplog.at_level(logging.ERROR, logger="robyn"):
        run_sync(job, StreamingResponse(42))  # type: ignore[arg-type]
    assert job.kinds() == ["respond"] and job.log[0][1] == 500


def test_sync_already_answered_pulls_nothing() -> None:
    job = FakeStreamJob(start_result=False)
    gen = Recorder(job)
    run_sync(job, SSEResponse(gen.sync(["a"])))
    assert job.kinds() == ["start"] and gen.pulls == 0


def test_sync_head_request_gets_the_head_alone() -> None:
    job = FakeStreamJob(method="HEAD")
    gen = Recorder(job)
    run_sync(job, SSEResponse(gen.sync(["a", "b"])))
    assert job.kinds() == ["start", "end"] and gen.pulls == 0


def test_sync_stream_stops_when_the_server_stops() -> None:
    job = FakeStreamJob()
    stopping = threading.Event()
    gen = Recorder(job)

    def chunks() -> Iterator[str]:
        for item in gen.sync([str(i) for i in range(100)]):
            if item == "2":
                stopping.set()
            yield item

    run_sync(job, SSEResponse(chunks()), stopping)
    assert job.body == b"012" and gen.finished and job.ended


def test_sync_driver_hands_an_async_generator_to_the_loop() -> None:
    job = FakeStreamJob()
    gen = Recorder(job)
    spawned: list[Coroutine[Any, Any, None]] = []
    stream_sync(job, SSEResponse(gen.aio(["a", "b"])), WHERE, spawned.append, threading.Event())
    assert job.log == [] and len(spawned) == 1  # nothing done on the worker thread
    asyncio.run(spawned[0])  # type: ignore[arg-type]
    assert job.body == b"ab" and job.ended and gen.finished


def test_sync_driver_runs_on_the_calling_thread() -> None:
    job = FakeStreamJob()
    threads: list[int] = []

    def gen() -> Iterator[str]:
        threads.append(threading.get_ident())
        yield "a"

    run_sync(job, SSEResponse(gen()))
    assert threads == [threading.get_ident()]


# ---- the async driver ---------------------------------------------------------------------


def test_async_stream_writes_each_chunk_as_yielded() -> None:
    job = FakeStreamJob()
    gen = Recorder(job)
    run_async(job, SSEResponse(gen.aio([SSEMessage("one", id="1"), b"\x01", "ü"])))
    assert job.kinds() == ["start", "pull", "write", "pull", "write", "pull", "write", "end"]
    assert job.body == b"id: 1\ndata: one\n\n\x01" + "ü".encode()
    assert gen.finished


def test_async_driver_pulls_a_sync_generator_too() -> None:
    job = FakeStreamJob()
    gen = Recorder(job)
    run_async(job, SSEResponse(gen.sync(["a", "b"])))
    assert job.body == b"ab" and job.ended and gen.finished


def test_async_backpressure_waits_for_the_callback_before_the_next_pull() -> None:
    job = FakeStreamJob(high_water=250)
    gen = Recorder(job)
    run_async(job, StreamingResponse(gen.aio([b"x" * 100] * 10)))
    log = job.log
    for i, entry in enumerate(log):
        if entry[0] == "write" and entry[2]:
            assert log[i + 1] == ("on_writable", True), log
            assert log[i + 2] == ("drained",), log
    assert job.kinds().count("drained") == 3
    assert len(job.body) == 1000 and job.ended and gen.finished


def test_async_nothing_to_wait_for_goes_on() -> None:
    job = FakeStreamJob(high_water=150)
    original = job.on_writable

    def on_writable(callback: Callable[[], None]) -> bool:
        job.backlog = 0  # drained between write() and on_writable()
        return original(callback)

    job.on_writable = on_writable  # type: ignore[method-assign]
    run_async(job, StreamingResponse([b"x" * 100] * 4))
    assert len(job.body) == 400 and job.kinds().count("on_writable") == 2


def test_async_client_gone_on_write_closes_the_generator() -> None:
    job = FakeStreamJob(leave_at=2)
    gen = Recorder(job)
    run_async(job, SSEResponse(gen.aio(["a"] * 50)))
    assert gen.pulls == 2 and gen.finished
    assert job.kinds()[-2:] == ["write-gone", "end"]


def test_async_client_gone_while_waiting_closes_the_generator() -> None:
    job = FakeStreamJob(high_water=10)
    gen = Recorder(job)

    def on_writable(callback: Callable[[], None]) -> bool:
        job.log.append(("on_writable", True))

        def leave() -> None:
            job.gone = True
            callback()

        asyncio.get_running_loop().call_later(0.01, leave)
        return True

    job.on_writable = on_writable  # type: ignore[method-assign]
    run_async(job, StreamingResponse(gen.aio([b"x" * 20] * 5)))
    assert gen.pulls == 1 and gen.finished
    assert job.kinds() == ["start", "pull", "write", "on_writable", "end"]


def test_async_exception_after_the_head_is_logged_and_ends_the_stream(
        caplog: pytest.LogCaptureFixture) -> None:
    job = FakeStreamJob()
    gen = Recorder(job)
    with caplog.at_level(logging.ERROR, logger="robyn"):
        run_async(job, SSEResponse(gen.aio(["a", "b"], fail_after=1)))
    assert job.body == b"a" and job.kinds()[-1] == "end" and "respond" not in job.kinds()
    [record] = [r for r in caplog.records if r.name == "robyn"]
    assert WHERE in record.getMessage() and record.exc_info is not None


def test_async_bad_header_is_a_500(caplog: pytest.LogCaptureFixture) -> None:
    job = FakeStreamJob(start_error=TypeError("header value must be str"))
    gen = Recorder(job)
    with caplog.at_level(logging.ERROR, logger="robyn"):
        run_async(job, SSEResponse(gen.aio(["a"])))
    assert job.kinds() == ["start", "respond"] and job.log[1][1] == 500
    assert gen.pulls == 0


def test_async_head_request_gets_the_head_alone() -> None:
    job = FakeStreamJob(method="HEAD")
    gen = Recorder(job)
    run_async(job, SSEResponse(gen.aio(["a"])))
    assert job.kinds() == ["start", "end"] and gen.pulls == 0


def test_async_cancel_closes_the_generator_and_ends_the_stream() -> None:
    job = FakeStreamJob()
    gen = Recorder(job)

    async def main() -> None:
        task = asyncio.ensure_future(
            stream_async(job, SSEResponse(gen.aio(["a"] * 1000, pause=0.01)), WHERE))
        while gen.pulls < 2:
            await asyncio.sleep(0.005)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert gen.finished and job.ended and 2 <= gen.pulls < 1000


def test_async_generator_that_never_awaits_lets_other_tasks_run() -> None:
    job = FakeStreamJob()
    ticks: list[int] = []

    async def endless() -> AsyncIterator[str]:
        while True:
            yield "x"

    async def main() -> None:
        task = asyncio.ensure_future(stream_async(job, SSEResponse(endless()), WHERE))
        for i in range(5):
            await asyncio.sleep(0)
            ticks.append(i)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert ticks == [0, 1, 2, 3, 4] and job.ended


# ---- the app's answer path ----------------------------------------------------------------

app_module = pytest.importorskip("robyn.app", reason="robyn.app needs the built extension")


class RespondJob:
    """respond() refuses headers as the C side does: ValueError for CR, LF or NUL, TypeError
    for a name or value that is not str."""

    def __init__(self) -> None:
        self.answers: list[tuple[int, list[tuple[str, str]] | None, str | bytes]] = []

    def respond(self, status: int, headers: list[tuple[str, str]] | None,
                body: str | bytes) -> bool:
        for name, value in headers or ():
            if not isinstance(name, str) or not isinstance(value, str):
                raise TypeError("header name and value must be str")
            if any(c in name + value for c in "\r\n\x00"):
                raise ValueError("header contains CR, LF or NUL")
        self.answers.append((status, headers, body))
        return True


@pytest.mark.parametrize("result", [
    robyn.Response(200, {"X-Bad": "a\x00b"}, "never"),
    robyn.Response(200, {"X-Bad": "a\rb"}, "never"),
    ("never", {"X-Bad\x00Name": "v"}, 200),
    {"a": object()},
], ids=["nul", "cr", "nul-in-tuple-header", "unserializable"])
def test_unsendable_result_is_a_logged_500(result: Any, caplog: pytest.LogCaptureFixture) -> None:
    job = RespondJob()
    with caplog.at_level(logging.ERROR, logger="robyn"):
        assert app_module._answer(job, result, "handler for GET /bad") is None
    assert [a[0] for a in job.answers] == [500]
    assert job.answers[0][2] == "Internal server error"
    assert any("handler for GET /bad" in r.getMessage() for r in caplog.records)


def test_answer_hands_streams_back() -> None:
    class MyStream(StreamingResponse):
        pass

    job = RespondJob()
    stream = SSEResponse(iter(()))
    assert app_module._answer(job, stream, "h") is stream
    mine = MyStream(iter(()))
    assert app_module._answer(job, mine, "h") is mine
    assert app_module._answer(job, {"a": 1}, "h") is None
    assert job.answers == [(200, [("content-type", "application/json")], b'{"a":1}')]


def test_http_exception_with_a_bad_status_is_a_500() -> None:
    class Strict(RespondJob):
        def respond(self, status: int, headers: list[tuple[str, str]] | None,
                    body: str | bytes) -> bool:
            if not 100 <= status <= 999:
                raise ValueError(f"status code {status} is not a valid HTTP status")
            return super().respond(status, headers, body)

    job = Strict()
    app_module._answer_error(job, robyn.HTTPException(1234, "odd"), "h")
    assert [a[0] for a in job.answers] == [500]


@pytest.mark.parametrize("env, given, error", [
    ("abc", None, "ROBYN_X"),
    ("-1", None, "ROBYN_X"),
    ("1.5", None, "ROBYN_X"),
    (None, -3, "keyword_x"),
    (None, "12", "keyword_x"),
    (None, 1.5, "keyword_x"),
    (None, True, "keyword_x"),
])
def test_limits_refuse_what_is_not_a_non_negative_integer(
        monkeypatch: pytest.MonkeyPatch, env: str | None, given: object, error: str) -> None:
    if env is not None:
        monkeypatch.setenv("ROBYN_X", env)
    else:
        monkeypatch.delenv("ROBYN_X", raising=False)
    with pytest.raises(ValueError, match=error):
        app_module._limit("ROBYN_X", "keyword_x", given, 7)


def test_limits_environment_wins_then_keyword_then_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ROBYN_X", raising=False)
    assert app_module._limit("ROBYN_X", "keyword_x", None, 7) == 7
    assert app_module._limit("ROBYN_X", "keyword_x", 0, 7) == 0
    assert app_module._limit("ROBYN_X", "keyword_x", 9, 7) == 9
    monkeypatch.setenv("ROBYN_X", "")
    assert app_module._limit("ROBYN_X", "keyword_x", 9, 7) == 9
    monkeypatch.setenv("ROBYN_X", " 11 ")
    assert app_module._limit("ROBYN_X", "keyword_x", 9, 7) == 11


def test_trace_and_capture_headers() -> None:
    app = app_module.Robyn(__file__)

    @app.trace("/t")
    def handler() -> str:
        return "t"

    assert [(r.method, r.path) for r in app._routes] == [("TRACE", "/t")]
    assert app.capture_headers("x-anything", "X-Other") is None
