"""The chat example (examples/chat/) in real browsers: headless Chromium pages that chat
with each other through the server.

The pages are headless Chromium, driven through tests/python/browser.py (Debian's chromium
and chromium-driver, the W3C WebDriver API spoken directly; missing, the tests fail and say
what to install).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import requests

from browser import WAIT, Page, chromedriver, new_page  # noqa: F401
from conftest import AppServer, StartApp

ENTER = "\ue007"

MESSAGES_JS = """
return Array.from(document.querySelectorAll('#messages .message')).map(li => ({
    user: li.dataset.user,
    text: li.querySelector('.text').textContent,
    mine: li.classList.contains('mine'),
}));
"""
NOTICES_JS = """
return Array.from(document.querySelectorAll('#messages .presence .text, #messages .announce .text'))
    .map(el => el.textContent);
"""
MEMBERS_JS = """
return Array.from(document.querySelectorAll('#members li'))
    .map(li => li.firstChild ? li.firstChild.textContent : '');
"""
STATUS_JS = """
const s = document.getElementById('status');
return {state: s.dataset.state, text: s.textContent};
"""


class ChatPage(Page):
    """A page showing the chat."""

    def status(self) -> dict[str, str]:
        return dict(self.js(STATUS_JS))

    def messages(self) -> list[dict[str, Any]]:
        return list(self.js(MESSAGES_JS))

    def texts(self) -> list[str]:
        return [m["text"] for m in self.messages()]

    def notices(self) -> list[str]:
        return list(self.js(NOTICES_JS))

    def members(self) -> list[str]:
        return list(self.js(MEMBERS_JS))

    def join(self, name: str, room: str) -> None:
        self.type("#name", name)
        self.type("#room", room)
        self.click("#join")
        self.wait_for(lambda: self.status()["state"] == "connected", f"{name} to connect to #{room}")

    def say(self, text: str, press_enter: bool = True) -> None:
        if press_enter:
            self.type("#message", text + ENTER, clear=False)
        else:
            self.type("#message", text, clear=False)
            self.click("#send")

    def wait_for(self, predicate: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
        """Polls `predicate` until it is truthy; fails after `timeout` seconds saying what
        the page shows."""
        deadline = time.monotonic() + timeout
        while True:
            result = predicate()
            if result:
                return result
            if time.monotonic() > deadline:
                pytest.fail(f"timed out after {timeout} s waiting for {what}; the page shows "
                            f"status={self.status()}, messages={self.messages()}, "
                            f"notices={self.notices()}, members={self.members()}")
            time.sleep(0.05)


@pytest.fixture
def chat_server(start_app: StartApp) -> AppServer:
    """examples/chat/app.py on a free port; stopped with SIGTERM (exit code 0) afterwards."""
    return start_app("chat_app")


# ---- the tests -------------------------------------------------------------------------------


def test_page_and_assets_are_served(chat_server: AppServer) -> None:
    with requests.Session() as http:
        http.trust_env = False
        page = http.get(chat_server.url("/"), timeout=5)
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        for element_id in ("name", "room", "join", "message", "send", "messages"):
            assert f'id="{element_id}"' in page.text
        assert 'aria-live="polite"' in page.text
        assert "http://" not in page.text and "https://" not in page.text  # nothing external
        script = http.get(chat_server.url("/app.js"), timeout=5)
        assert script.status_code == 200
        assert "javascript" in script.headers["content-type"]
        assert "new WebSocket(" in script.text
        style = http.get(chat_server.url("/style.css"), timeout=5)
        assert style.status_code == 200
        assert style.headers["content-type"].startswith("text/css")


def test_two_pages_chat_and_another_room_hears_nothing(chat_server: AppServer, new_page) -> None:
    alice, bob, carol = new_page(ChatPage), new_page(ChatPage), new_page(ChatPage)
    for page in (alice, bob, carol):
        page.open(chat_server.url("/"))

    alice.join("Alice", "tea-room")
    bob.join("Bob", "tea-room")
    carol.join("Carol", "elsewhere")

    # Presence: each sees the other arrive, so both are subscribed before anyone speaks.
    alice.wait_for(lambda: alice.members() == ["Alice", "Bob"], "Alice to see Bob in the room")
    bob.wait_for(lambda: bob.members() == ["Alice", "Bob"], "Bob to see Alice in the room")
    alice.wait_for(lambda: "Bob joined." in alice.notices(), "Alice to see that Bob joined")

    alice.say("hello from A")  # typed, sent with Enter
    bob.wait_for(lambda: "hello from A" in bob.texts(), "Bob to receive Alice's message")
    assert bob.messages()[-1] == {"user": "Alice", "text": "hello from A", "mine": False}

    bob.say("hello from B, nice to meet you", press_enter=False)  # sent with the button
    alice.wait_for(lambda: "hello from B, nice to meet you" in alice.texts(), "Alice to receive Bob's reply")
    assert alice.messages() == [
        {"user": "Alice", "text": "hello from A", "mine": True},
        {"user": "Bob", "text": "hello from B, nice to meet you", "mine": False},
    ]
    assert alice.js("return document.getElementById('message').value") == ""

    # The other room: Carol's own message comes back to her, and nothing from the tea room.
    carol.say("anyone here?")
    carol.wait_for(lambda: "anyone here?" in carol.texts(), "Carol to see her own message")
    assert carol.texts() == ["anyone here?"]
    assert carol.members() == ["Carol"]
    assert not any("Alice" in n or "Bob" in n for n in carol.notices()), carol.notices()
    assert "anyone here?" not in alice.texts() + bob.texts()

    # Leaving: Alice sees Bob go.
    bob.click("#leave")
    alice.wait_for(lambda: "Bob left." in alice.notices(), "Alice to see that Bob left")
    alice.wait_for(lambda: alice.members() == ["Alice"], "Bob to leave Alice's member list")


def test_rooms_listing_and_announcements_reach_the_pages(chat_server: AppServer, new_page) -> None:
    first, second = new_page(ChatPage), new_page(ChatPage)
    for page, name in ((first, "Dora"), (second, "Eve")):
        page.open(chat_server.url("/"))
        page.join(name, "news")
    first.wait_for(lambda: first.members() == ["Dora", "Eve"], "both in #news")

    with requests.Session() as http:
        http.trust_env = False
        rooms = http.get(chat_server.url("/rooms"), timeout=5).json()["rooms"]
        news = next(room for room in rooms if room["name"] == "news")
        assert news == {"name": "news", "subscribers": 2, "members": ["Dora", "Eve"]}
        assert {"lobby", "random"} <= {room["name"] for room in rooms}

        answer = http.post(chat_server.url("/rooms/news/announce"), data="Server restarts at noon".encode(), timeout=5)
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"delivered_to": 2}

        bad = http.post(chat_server.url("/rooms/news/announce"), data=b"   ", timeout=5)
        assert bad.status_code == 400
        assert "empty" in bad.json()["error"]

    for page in (first, second):
        page.wait_for(lambda p=page: "Announcement: Server restarts at noon" in p.notices(),
                      "the announcement on the page")
    # The page's room list shows the room with its subscriber count.
    first.wait_for(lambda: "#news" in first.js("return document.getElementById('rooms').textContent"),
                   "#news in the room list")


def test_bad_name_is_refused_with_a_clear_message(chat_server: AppServer, new_page) -> None:
    page = new_page(ChatPage)
    page.open(chat_server.url("/"))
    # The input's maxlength stops a person typing a longer name; set it as a script would.
    page.js("document.getElementById('name').value = arguments[0];", "x" * 40)
    page.type("#room", "lobby")
    page.click("#join")
    page.wait_for(lambda: page.status()["state"] == "refused", "the server to refuse the name")
    # The error frame (sent before the close) shows in the alert; the close reason in the status.
    error = page.wait_for(lambda: page.js("return document.getElementById('error').textContent"),
                          "the error message")
    assert "user names are at most 24 characters" in error, error
    assert "at most 24 characters" in page.status()["text"], page.status()
    # Refused means refused: no reconnect loop.
    time.sleep(1.0)
    assert page.status()["state"] == "refused"
    assert page.js("return document.getElementById('message').disabled") is True


def test_page_reconnects_after_the_server_restarts(chat_server: AppServer, start_app: StartApp,
                                                   new_page) -> None:
    page = new_page(ChatPage)
    page.open(chat_server.url("/"))
    page.join("Frank", "lobby")

    assert chat_server.stop() == 0, chat_server.log()  # SIGTERM: clean exit, sockets closed 1001
    page.wait_for(lambda: page.status()["state"] in ("reconnecting", "connecting"),
                  "the page to notice the server went away")

    restarted = start_app("chat_app", port=chat_server.port)
    page.wait_for(lambda: page.status()["state"] == "connected", "the page to reconnect", timeout=20)
    page.wait_for(lambda: "Reconnected." in page.notices(), "the reconnect notice")

    other = new_page(ChatPage)
    other.open(restarted.url("/"))
    other.join("Grace", "lobby")
    other.say("welcome back")
    page.wait_for(lambda: "welcome back" in page.texts(), "a message after the reconnect")


class CuttableProxy:
    """A TCP proxy in front of the chat server: the page loads and connects through it, and
    cut() ends every connection it carries at once (both sockets closed, no close frame: a
    network drop as the page sees it). While held, new connections are closed as they come,
    so the page's reconnects fail until release()."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.lock = threading.Lock()
        self.open: list[socket.socket] = []
        self.held = False
        self.accepted = 0
        self.running = True
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def _accept(self) -> None:
        while self.running:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                self.accepted += 1
                if self.held:
                    client.close()
                    continue
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            with self.lock:
                self.open += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        for sock in (source, sink):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self, hold: bool) -> None:
        with self.lock:
            self.held = hold
            doomed, self.open = self.open, []
        for sock in doomed:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def release(self) -> None:
        with self.lock:
            self.held = False

    def close(self) -> None:
        self.running = False
        self.listener.close()
        self.cut(hold=True)


def test_page_recovers_what_it_missed_after_a_cut(chat_server: AppServer, new_page) -> None:
    proxy = CuttableProxy(chat_server.address)
    try:
        watcher, writer = new_page(ChatPage), new_page(ChatPage)
        watcher.open(proxy.url("/"))
        watcher.join("Hana", "recovery")
        writer.open(chat_server.url("/"))  # straight to the server: never cut
        writer.join("Ivan", "recovery")
        watcher.wait_for(lambda: watcher.members() == ["Hana", "Ivan"], "both in the room")
        writer.say("before the cut")
        watcher.wait_for(lambda: "before the cut" in watcher.texts(), "the first message")

        proxy.cut(hold=True)  # the page's connection drops; its reconnects fail for now
        watcher.wait_for(lambda: watcher.status()["state"] in ("reconnecting", "connecting"),
                         "the page to notice the cut")
        missed = [f"missed {i}" for i in range(1, 6)]
        with requests.Session() as http:
            http.trust_env = False
            for text in missed:
                answer = http.post(chat_server.url("/rooms/recovery/announce"),
                                   data=text.encode(), timeout=5)
                assert answer.status_code == 200, answer.text
        writer.say("also missed")
        writer.wait_for(lambda: "also missed" in writer.texts(), "the writer's own message")
        proxy.release()

        watcher.wait_for(lambda: watcher.status()["state"] == "connected", "the reconnect",
                         timeout=20)
        writer.say("after the cut")
        watcher.wait_for(lambda: "after the cut" in watcher.texts(), "a live message after it")
        # Every message exactly once and in order: those before, those missed, those after.
        assert watcher.texts() == ["before the cut", "also missed", "after the cut"]
        notices = watcher.notices()
        announced = [n for n in notices if n.startswith("Announcement: ")]
        assert announced == [f"Announcement: {t}" for t in missed]
        # The server replayed them (the page did not reload): 5 announcements, Ivan's
        # message, and Hana's own leave (her old connection closing) at least.
        recovered = [n for n in notices if n.startswith("Reconnected: ")]
        assert len(recovered) == 1, notices
        count = int(recovered[0].split()[1])
        assert count >= 7, notices
        assert "Reconnected." not in notices  # the plain notice is for a reload
    finally:
        proxy.close()
