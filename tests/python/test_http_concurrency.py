"""Sync handlers run in a thread pool and async ones on the loop: slow handlers never stall others."""

from __future__ import annotations

import concurrent.futures
import time

import httpx


def timed_get(client: httpx.Client, url: str) -> tuple[int, str, float]:
    started = time.monotonic()
    response = client.get(url)
    return response.status_code, response.text, time.monotonic() - started


def test_sync_and_async_sleeps_run_concurrently_and_others_answer_at_once(fresh_server):
    server = fresh_server
    limits = httpx.Limits(max_connections=32, max_keepalive_connections=32)
    with httpx.Client(limits=limits, timeout=10) as client, \
            concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
        started = time.monotonic()
        sync_calls = [pool.submit(timed_get, client, server.url("/sync")) for _ in range(8)]
        async_calls = [pool.submit(timed_get, client, server.url("/async-sleep")) for _ in range(8)]
        time.sleep(0.2)  # let the sleeps start
        quick = [timed_get(client, server.url(path)) for path in ("/fast", "/users/1", "/health")]
        quick_done = time.monotonic() - started
        sync_results = [call.result(timeout=10) for call in sync_calls]
        async_results = [call.result(timeout=10) for call in async_calls]
        total = time.monotonic() - started

    assert [result[:2] for result in sync_results] == [(200, "Done")] * 8
    assert [result[:2] for result in async_results] == [(200, "Done async")] * 8
    assert [result[:2] for result in quick] == [
        (200, "fast"), (200, '{"user":{"id":"1"}}'), (200, '{"status":"healthy"}')]
    # Each of the sixteen sleeps takes 1 s; run one after another they would take 16 s.
    assert total < 1.8, total
    # The quick requests were answered while the sleeps were still running.
    assert quick_done < 0.9, quick_done
    assert all(result[2] >= 0.9 for result in sync_results + async_results)


def test_many_concurrent_connections(main_server):
    limits = httpx.Limits(max_connections=32, max_keepalive_connections=32)
    with httpx.Client(limits=limits, timeout=10) as client, \
            concurrent.futures.ThreadPoolExecutor(max_workers=32) as pool:
        results = list(pool.map(lambda i: client.get(main_server.url(f"/users/{i}")), range(200)))
    assert [response.status_code for response in results] == [200] * 200
    assert [response.json() for response in results] == [{"user": {"id": str(i)}} for i in range(200)]
