"""A minimal WebDriver client for the browser tests, and its fixtures: headless Chromium
pages driven through Debian's chromium and chromium-driver.

The tests speak chromedriver's W3C WebDriver HTTP API directly with `requests` (no selenium,
so nothing ever downloads a driver or a browser). Each page is its own Chromium, with a fresh
profile, launched with exactly `--headless --no-sandbox --disable-gpu
--disable-background-networking --disable-component-update --disable-sync --no-first-run
--user-data-dir=<tmp>`.

When chromium or chromedriver is missing the tests fail (they are never skipped) and say what
to install. A test module uses the fixtures by importing them:
`from browser import chromedriver, new_page  # noqa: F401`.
"""

from __future__ import annotations

import base64
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROME_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ELEMENT = "element-6066-11e4-a52e-4f735466cecf"  # the W3C key of an element reference
WAIT = 10.0           # seconds for anything a page should show
COMMAND_TIMEOUT = 60  # seconds for one WebDriver command (a new session starts a browser)


# ---- a minimal WebDriver client ------------------------------------------------------------


class WebDriverError(AssertionError):
    pass


class Page:
    """One Chromium (one WebDriver session) showing one page."""

    def __init__(self, driver_url: str, http: requests.Session, profile: str) -> None:
        self.http = http
        self.profile = profile
        capabilities = {
            "browserName": "chrome",
            "pageLoadStrategy": "normal",
            "timeouts": {"implicit": 0, "pageLoad": 15000, "script": 10000},
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": CHROME_FLAGS + [f"--user-data-dir={profile}"],
            },
        }
        answer = self._call("POST", f"{driver_url}/session",
                            {"capabilities": {"alwaysMatch": capabilities}})
        self.session = f"{driver_url}/session/{answer['sessionId']}"
        self.command("POST", "/window/rect", {"width": 1100, "height": 760})

    def _call(self, method: str, url: str, body: Any = None) -> Any:
        response = self.http.request(method, url, json=body, timeout=COMMAND_TIMEOUT)
        try:
            value = response.json().get("value")
        except ValueError:
            raise WebDriverError(f"{method} {url}: HTTP {response.status_code}: {response.text[:500]}") from None
        if response.status_code != 200:
            detail = value.get("message", value) if isinstance(value, dict) else value
            raise WebDriverError(f"{method} {url}: HTTP {response.status_code}: {detail}")
        return value

    def command(self, method: str, path: str, body: Any = None) -> Any:
        return self._call(method, self.session + path, body)

    # -- what a test does with a page --

    def open(self, url: str) -> None:
        self.command("POST", "/url", {"url": url})

    def element(self, css: str) -> str:
        return str(self.command("POST", "/element", {"using": "css selector", "value": css})[ELEMENT])

    def type(self, css: str, text: str, clear: bool = True) -> None:
        element = self.element(css)
        if clear:
            self.command("POST", f"/element/{element}/clear", {})
        self.command("POST", f"/element/{element}/value", {"text": text})

    def click(self, css: str) -> None:
        self.command("POST", f"/element/{self.element(css)}/click", {})

    def js(self, script: str, *args: Any) -> Any:
        return self.command("POST", "/execute/sync", {"script": script, "args": list(args)})

    def screenshot(self, path: str | Path) -> None:
        Path(path).write_bytes(base64.b64decode(self.command("GET", "/screenshot")))

    def quit(self) -> None:
        try:
            self._call("DELETE", self.session)
        finally:
            shutil.rmtree(self.profile, ignore_errors=True)

def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _require_browser() -> None:
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    if missing:
        pytest.fail(
            f"the browser tests need Debian's Chromium and its WebDriver, missing: {', '.join(missing)}. "
            "Install them with `apt-get install chromium chromium-driver` (tools/install-deps).",
            pytrace=False)


@pytest.fixture(scope="module")
def chromedriver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One chromedriver for the module; returns its URL."""
    _require_browser()
    port = _free_port()
    log_path = tmp_path_factory.mktemp("chromedriver") / "chromedriver.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([CHROMEDRIVER, f"--port={port}", "--allowed-ips=127.0.0.1"],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    http = requests.Session()
    http.trust_env = False  # never through a proxy
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                if http.get(f"{url}/status", timeout=2).json()["value"]["ready"]:
                    break
            except (requests.RequestException, ValueError, KeyError):
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"chromedriver did not start: {log_path.read_text(errors='replace')}")
            time.sleep(0.05)
        yield url
    finally:
        http.close()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@pytest.fixture
def new_page(chromedriver: str) -> Iterator[Callable[..., Any]]:
    """new_page() -> a fresh headless Chromium page (a Page, or an instance of the subclass
    given: new_page(ChatPage)); every one is closed after the test."""
    pages: list[Page] = []
    http = requests.Session()
    http.trust_env = False

    def make(kind: type[Page] = Page) -> Page:
        profile = tempfile.mkdtemp(prefix="chat-chromium-")
        try:
            page = kind(chromedriver, http, profile)
        except BaseException:
            shutil.rmtree(profile, ignore_errors=True)
            raise
        pages.append(page)
        return page

    yield make
    errors = []
    for page in pages:
        try:
            page.quit()
        except Exception as exc:  # close every browser even when one fails
            errors.append(exc)
    http.close()
    if errors:
        raise errors[0]
