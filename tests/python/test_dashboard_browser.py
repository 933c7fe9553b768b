"""The dashboard example (examples/dashboard/) in headless Chromium: the charts draw and
move, a new page gets the minute held at once, and a page whose connection is cut recovers
exactly the samples it missed. The WebDriver client and its fixtures are tests/python/browser.py's
(the same as the chat example's browser tests)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from browser import Page, chromedriver, new_page  # noqa: F401
from conftest import AppServer, StartApp

STATE_JS = """
const s = window.dashboard.state;
return {status: document.getElementById('status').dataset.state, samples: s.samples.length,
        offsets: s.offsets.slice(), epoch: s.epoch, reconnects: s.reconnects,
        recovered: s.recovered, resets: s.resets, outOfOrder: s.outOfOrder,
        shown: document.getElementById('samples').textContent};
"""


@pytest.fixture
def dashboard(start_app: StartApp) -> AppServer:
    return start_app("dashboard_app")


def held(server: AppServer) -> int:
    with requests.Session() as http:
        http.trust_env = False
        return len(http.get(server.url("/samples"), timeout=5).json()["samples"])


def page_state(page: Page) -> dict[str, Any]:
    return dict(page.js(STATE_JS))


def wait(page: Page, predicate: Callable[[dict[str, Any]], bool], what: str,
         timeout: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        state = page_state(page)
        if predicate(state):
            return state
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}; the page has {state}")
        time.sleep(0.05)


def contiguous(offsets: list[int]) -> bool:
    return offsets == list(range(offsets[0], offsets[0] + len(offsets)))


def test_the_charts_draw_and_move(dashboard: AppServer, new_page: Callable[[], Page],
                                  tmp_path: Path) -> None:
    page = new_page()
    page.open(dashboard.url("/"))
    wait(page, lambda s: s["status"] == "live" and s["samples"] >= 5, "live samples")
    first = tmp_path / "first.png"
    page.screenshot(first)
    time.sleep(1.0)   # ten more samples: every line moves left and grows at the right
    second = tmp_path / "second.png"
    page.screenshot(second)
    assert first.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert first.read_bytes() != second.read_bytes()
    state = page_state(page)
    assert state["outOfOrder"] == 0 and contiguous(state["offsets"])
    assert re.fullmatch(r"\d+ samples", state["shown"]), state["shown"]
    # Every chart says its latest value.
    nows = page.js("return Array.from(document.querySelectorAll('.chart .now'))"
                   ".map(e => e.textContent)")
    assert len(nows) == 6 and all(n.strip() for n in nows), nows


def test_a_new_page_gets_the_minute_held_at_once(dashboard: AppServer,
                                                 new_page: Callable[[], Page]) -> None:
    deadline = time.monotonic() + 10
    while held(dashboard) < 30:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    page = new_page()
    opened = time.monotonic()
    page.open(dashboard.url("/"))
    state = wait(page, lambda s: s["samples"] >= 30, "the history the server holds", 5.0)
    # Thirty samples took three seconds to make; the page had them well before that.
    assert time.monotonic() - opened < 3.0
    assert state["recovered"] == 0 and state["resets"] == 0 and contiguous(state["offsets"])


def test_a_cut_connection_recovers_exactly_what_it_missed(dashboard: AppServer,
                                                          new_page: Callable[[], Page]) -> None:
    page = new_page()
    page.open(dashboard.url("/"))
    before = wait(page, lambda s: s["status"] == "live" and s["samples"] >= 10, "live samples")
    page.js("window.dashboard.cut()")
    after = wait(page, lambda s: s["reconnects"] == 1 and s["status"] == "live"
                 and s["samples"] >= before["samples"] + 15, "the page to reconnect and go on")
    # The page was away at least 0.375 s (its first retry waits 0.5 s, give or take a
    # quarter): a few samples were published meanwhile, and it got each of them once.
    assert after["recovered"] >= 2, after
    assert after["resets"] == 0 and after["outOfOrder"] == 0, after
    assert after["epoch"] == before["epoch"]
    assert contiguous(after["offsets"]) and after["offsets"][0] <= before["offsets"][0]
