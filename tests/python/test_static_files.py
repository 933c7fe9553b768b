"""Static directories served by C (docs/static.md), serve_file / serve_html / html /
FileResponse, and Jinja templates, against a real server (apps/static_app.py) over a tree
of files this module makes in a temporary directory."""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import time
from email.utils import formatdate
from pathlib import Path

import pytest
import requests

from conftest import AppServer, RawConn, get_request

BIG_SIZE = 5 * 1024 * 1024 + 123


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("static")
    pub = root / "pub"
    for d in ("sub", "docs", "site", "site/inner", "empty"):
        (pub / d).mkdir(parents=True)
    (pub / "index.html").write_text("<!DOCTYPE html><h1>home</h1>")
    (pub / "app.js").write_text("console.log(1);")
    (pub / "mod.mjs").write_text("export {};")
    (pub / "data.json").write_text('{"a": 1}')
    (pub / "pic.svg").write_text("<svg/>")
    (pub / "pic.PNG").write_bytes(b"\x89PNG\r\n")
    (pub / "font.woff2").write_bytes(b"wOF2")
    (pub / "code.wasm").write_bytes(b"\0asm")
    (pub / "noext").write_bytes(b"raw")
    (pub / "a b.txt").write_text("spaced")
    (pub / "sub" / "style.css").write_text("p{}")
    (pub / "docs" / "readme.txt").write_text("doc")
    (pub / "site" / "index.html").write_text("<p>site</p>")
    (pub / "site" / "inner" / "index.html").write_text("<p>inner</p>")
    (pub / ".env").write_text("SECRET=1")
    (pub / "big.bin").write_bytes(os.urandom(BIG_SIZE))
    (root / "secret.txt").write_text("top secret")
    os.symlink(root / "secret.txt", pub / "escape.txt")
    os.symlink("/etc", pub / "etc")
    os.symlink("sub/style.css", pub / "alias.css")
    os.mkfifo(pub / "pipe")
    (root / "rootsite").mkdir()
    (root / "rootsite" / "index.html").write_text("root index")
    (root / "rootsite" / "robots.txt").write_text("User-agent: *")
    (root / "downloads").mkdir()
    (root / "downloads" / "test.txt").write_text("This is a test file for the downloading purpose")
    (root / "templates").mkdir()
    (root / "templates" / "page.html").write_text(
        "{# a comment #}\n\n<!DOCTYPE html><h1>{{ framework }} and {{ engine }}</h1>")
    return root


@pytest.fixture(scope="module")
def server(module_app, tree: Path) -> AppServer:
    return module_app("static_app", env={"STATIC_ROOT": str(tree),
                                         "STATIC_TEMPLATES": str(tree / "templates")})


def ask(server: AppServer, target: str, *headers: str, method: str = "GET"):
    with RawConn(server.address) as conn:
        conn.send(get_request(target, *headers, method=method, close=True))
        return conn.read_response(head_request=method == "HEAD")


def assert_still_serving(server: AppServer) -> None:
    response = ask(server, "/hello")
    assert response.status == 200, response
    assert response.body == b"Hello, world!"


# ---- files and their headers ------------------------------------------------------------------

@pytest.mark.parametrize("name, content_type", [
    ("index.html", "text/html; charset=utf-8"),
    ("app.js", "text/javascript; charset=utf-8"),
    ("mod.mjs", "text/javascript; charset=utf-8"),
    ("data.json", "application/json"),
    ("pic.svg", "image/svg+xml"),
    ("pic.PNG", "image/png"),
    ("font.woff2", "font/woff2"),
    ("code.wasm", "application/wasm"),
    ("noext", "application/octet-stream"),
    ("sub/style.css", "text/css; charset=utf-8"),
])
def test_file_with_its_content_type(server: AppServer, tree: Path, name: str, content_type: str):
    response = ask(server, f"/static/{name}")
    assert response.status == 200
    assert response.header("content-type") == content_type
    body = (tree / "pub" / name).read_bytes()
    assert response.body == body
    assert response.header("content-length") == str(len(body))
    mtime = (tree / "pub" / name).stat().st_mtime
    assert response.header("last-modified") == formatdate(int(mtime), usegmt=True)
    assert response.header("etag").startswith('"')


def test_encoded_name_and_link_inside_root(server: AppServer):
    assert ask(server, "/static/a%20b.txt").body == b"spaced"
    assert ask(server, "/static/alias.css").body == b"p{}"
    assert ask(server, "/static//sub///style.css").body == b"p{}"


def test_head_has_headers_and_no_body(server: AppServer):
    with RawConn(server.address) as conn:
        conn.send(get_request("/static/big.bin", method="HEAD"))
        head = conn.read_response(head_request=True)
        assert head.status == 200
        assert head.header("content-length") == str(BIG_SIZE)
        assert head.body == b""
        conn.send(get_request("/static/app.js", close=True))  # the same connection goes on
        assert conn.read_response().body == b"console.log(1);"


def test_conditional_requests(server: AppServer, tree: Path):
    first = ask(server, "/static/app.js")
    etag, modified = first.header("etag"), first.header("last-modified")
    again = ask(server, "/static/app.js", f"If-None-Match: {etag}")
    assert again.status == 304
    assert again.body == b""
    assert again.header("etag") == etag
    assert ask(server, "/static/app.js", f'If-None-Match: "x", W/{etag}').status == 304
    assert ask(server, "/static/app.js", "If-None-Match: *").status == 304
    assert ask(server, "/static/app.js", 'If-None-Match: "stale"').status == 200
    assert ask(server, "/static/app.js", f"If-Modified-Since: {modified}").status == 304
    assert ask(server, "/static/app.js",
               "If-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT").status == 200
    assert ask(server, "/static/app.js", "If-Modified-Since: yesterday").status == 200
    # If-None-Match decides alone when both are sent.
    assert ask(server, "/static/app.js", 'If-None-Match: "stale"',
               f"If-Modified-Since: {modified}").status == 200
    # A changed file gets a new validator.
    path = tree / "pub" / "data.json"
    before = ask(server, "/static/data.json").header("etag")
    path.write_text('{"a": 2}')
    os.utime(path, (time.time() + 5, time.time() + 5))
    changed = ask(server, "/static/data.json", f"If-None-Match: {before}")
    assert changed.status == 200
    assert changed.body == b'{"a": 2}'


# ---- directories ----------------------------------------------------------------------------

def test_index_file_and_slash_redirect(server: AppServer):
    redirect = ask(server, "/site")
    assert redirect.status == 302
    assert redirect.header("location") == "/site/"
    assert ask(server, "/site?x=1").header("location") == "/site/?x=1"
    assert ask(server, "/site/").body == b"<!DOCTYPE html><h1>home</h1>"
    assert ask(server, "/site/site").header("location") == "/site/site/"
    assert ask(server, "/site/site/").body == b"<p>site</p>"
    assert ask(server, "/site/site/inner/").body == b"<p>inner</p>"
    # requests follows the redirect, as a browser does.
    response = requests.get(f"{server.base_url}/site/site", timeout=5)
    assert response.url.endswith("/site/site/")
    assert response.text == "<p>site</p>"


def test_directory_without_index_goes_to_the_routes(server: AppServer):
    response = ask(server, "/site/sub/")
    assert response.status == 404
    assert response.body == b"Not found"
    # On a plain mount a directory is not the mount's: a route of that path answers.
    assert ask(server, "/static/docs").body == b"python docs"
    assert ask(server, "/static/docs/readme.txt").body == b"doc"
    assert ask(server, "/static/sub").status == 405  # only a POST route there


def test_listing(server: AppServer):
    response = ask(server, "/list/")
    assert response.status == 200
    assert response.header("content-type") == "text/html; charset=utf-8"
    page = response.body.decode()
    assert page.startswith('<html><head><meta charset="utf-8"><title>Index of /list/</title>')
    for entry in ('<a href="a%20b.txt">a b.txt</a>', '<a href="sub/">sub/</a>',
                  '<a href="big.bin">big.bin</a>', '<a href="alias.css">alias.css</a>'):
        assert entry in page
    for hidden in (".env", "escape.txt", '"etc/"', "pipe", "../"):
        assert hidden not in page
    sub = ask(server, "/list/sub/").body.decode()
    assert '<li><a href="../">../</a></li><li><a href="style.css">style.css</a></li>' in sub
    assert ask(server, "/list/sub").header("location") == "/list/sub/"


def test_root_mount(server: AppServer):
    assert ask(server, "/").body == b"root index"
    assert ask(server, "/robots.txt").body == b"User-agent: *"
    assert_still_serving(server)  # routes outside the files still answer


# ---- routes and mounts together --------------------------------------------------------------

def test_routes_and_mounts(server: AppServer):
    assert ask(server, "/static/sub", method="POST").body == b"posted"
    # A file wins over a GET route of the same path, as in Robyn.
    assert ask(server, "/static/index.html").body == b"<!DOCTYPE html><h1>home</h1>"
    # A missing file goes on to the routes.
    assert ask(server, "/static/nothing-here").body == b"python route for a missing file"
    # OPTIONS under a mount reaches its route.
    assert ask(server, "/site/preflight", method="OPTIONS").body == b"options-under-static"
    # Other methods on a file: 405 with what the file allows.
    response = ask(server, "/static/app.js", method="PUT")
    assert response.status == 405
    assert response.header("allow") == "GET, HEAD"
    assert ask(server, "/static/missing.txt", method="DELETE").status == 404
    assert_still_serving(server)


# ---- what is refused ----------------------------------------------------------------------------

@pytest.mark.parametrize("target, status", [
    ("/static/../secret.txt", 400),
    ("/static/sub/../../secret.txt", 400),
    ("/static/%2e%2e/secret.txt", 400),
    ("/static/%2E%2E/%2E%2E/%2E%2E/etc/passwd", 400),
    ("/static/.%2e/secret.txt", 400),
    ("/static/sub/..%2f..%2fsecret.txt", 400),
    ("/static/sub%2fstyle.css", 400),
    ("/static/..%5csecret.txt", 400),
    ("/static/./app.js", 400),
    ("/static/..", 400),
    ("/site/../secret.txt", 400),
    ("/list/../secret.txt", 400),
    ("http://test/static/../secret.txt", 400),
    ("/static/%00", 400),
    ("/static/app.js%00.txt", 400),
    ("/static/escape.txt", 404),  # a link out of the root
    ("/site/escape.txt", 404),
    ("/static/etc/passwd", 404),
    ("/static/.env", 404),
    ("/site/.env", 404),
    ("/static/%2eenv", 404),
    ("/static/pipe", 404),  # neither file nor directory (opening it must not block)
    ("/static/app.js/x", 404),
    ("/static/missing.txt", 404),
])
def test_refused_paths(server: AppServer, target: str, status: int):
    response = ask(server, target)
    assert response.status == status
    assert response.body == (b"Bad Request" if status == 400 else b"Not found")
    assert b"top secret" not in response.body
    assert_still_serving(server)


def test_refused_head_and_keep_alive(server: AppServer):
    with RawConn(server.address) as conn:
        conn.send(get_request("/static/../secret.txt", method="HEAD"))
        response = conn.read_response(head_request=True)
        assert response.status == 400
        assert response.body == b""
        conn.send(get_request("/static/app.js", close=True))
        assert conn.read_response().body == b"console.log(1);"


# ---- large files ----------------------------------------------------------------------------------

def test_large_file_whole(server: AppServer, tree: Path):
    want = hashlib.sha256((tree / "pub" / "big.bin").read_bytes()).hexdigest()
    response = requests.get(f"{server.base_url}/static/big.bin", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-length"] == str(BIG_SIZE)
    assert hashlib.sha256(response.content).hexdigest() == want


def test_large_file_pipelined_in_order(server: AppServer, tree: Path):
    big = (tree / "pub" / "big.bin").read_bytes()
    with RawConn(server.address, timeout=10) as conn:
        conn.send(get_request("/static/big.bin") + get_request("/static/app.js")
                  + get_request("/hello") + get_request("/static/big.bin", close=True))
        first, second, third, fourth = conn.read_responses(4)
    assert first.body == big
    assert second.body == b"console.log(1);"
    assert third.body == b"Hello, world!"
    assert fourth.body == big


def test_slow_reader_does_not_stall_others(server: AppServer):
    with socket.create_connection(server.address, timeout=10) as slow:
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        slow.sendall(get_request("/static/big.bin", close=True))
        time.sleep(0.2)  # the socket is full: the rest of the file waits on disk
        for _ in range(20):
            assert_still_serving(server)
            assert ask(server, "/static/app.js").body == b"console.log(1);"
        received = 0
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            chunk = slow.recv(1 << 20)
            if not chunk:
                break
            received += len(chunk)
    head_end = 200  # the head is well under this
    assert BIG_SIZE < received < BIG_SIZE + head_end


def open_fds(server: AppServer) -> int:
    return len(os.listdir(f"/proc/{server.proc.pid}/fd"))


def test_clients_leaving_mid_file_leak_nothing(server: AppServer):
    assert_still_serving(server)
    before = open_fds(server)
    for _ in range(30):
        with socket.create_connection(server.address, timeout=5) as sock:
            sock.sendall(get_request("/static/big.bin"))
            sock.recv(1000)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
    deadline = time.monotonic() + 5
    while open_fds(server) > before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert open_fds(server) <= before
    assert_still_serving(server)


def test_http10_keep_alive(server: AppServer):
    with RawConn(server.address) as conn:
        conn.send(b"GET /static/app.js HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        response = conn.read_response()
        assert response.header("connection") == "keep-alive"
        assert response.body == b"console.log(1);"
        conn.send(b"GET /static/sub/style.css HTTP/1.0\r\n\r\n")
        assert conn.read_response().body == b"p{}"
        assert conn.closed_by_server()


# ---- serve_file, serve_html, html, FileResponse, templates --------------------------------------

@pytest.mark.parametrize("kind", ["sync", "async"])
def test_file_download(server: AppServer, kind: str):
    response = requests.get(f"{server.base_url}/{kind}/file/download", timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Disposition"] == "attachment; filename=test.txt"
    assert response.headers["Content-Type"] == "text/plain"
    assert response.text == "This is a test file for the downloading purpose"


def test_file_download_renamed_and_file_response(server: AppServer):
    response = requests.get(f"{server.base_url}/file/renamed", timeout=5)
    assert response.headers["Content-Disposition"] == "attachment; filename=report.csv"
    assert response.headers["Content-Type"] == "text/csv"
    response = requests.get(f"{server.base_url}/file/response", timeout=5)
    assert response.status_code == 203
    assert response.headers["Content-Disposition"] == "attachment"
    assert response.text == "This is a test file for the downloading purpose"


def test_missing_download_is_500(server: AppServer):
    response = requests.get(f"{server.base_url}/file/missing", timeout=5)
    assert response.status_code == 500
    assert response.text == "Internal server error"
    assert_still_serving(server)


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_serve_html(server: AppServer, kind: str):
    response = requests.get(f"{server.base_url}/{kind}/serve/html", timeout=5)
    assert response.headers["Content-Type"] == "text/html"
    assert response.text == "<!DOCTYPE html><h1>home</h1>"


def test_inline_html(server: AppServer):
    response = requests.get(f"{server.base_url}/inline/html", timeout=5)
    assert response.headers["Content-Type"] == "text/html"
    assert response.text == "<p>inline</p>"


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_template(server: AppServer, kind: str):
    response = requests.get(f"{server.base_url}/{kind}/template", timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    engine = "&lt;Jinja2&gt;" if kind == "sync" else "Jinja2"  # autoescaped
    assert response.text == f"\n\n<!DOCTYPE html><h1>Robyn and {engine}</h1>"


def test_missing_template_is_500(server: AppServer):
    response = requests.get(f"{server.base_url}/template/missing", timeout=5)
    assert response.status_code == 500
    assert "absent.html" in server.log()
    assert_still_serving(server)


# ---- registration ----------------------------------------------------------------------------------

def test_registration_errors(tree: Path):
    from robyn import Robyn

    app = Robyn(__file__)
    app.serve_directory("/files", str(tree / "pub"))
    with pytest.raises(ValueError) as e:
        app.serve_directory("/files/", str(tree / "pub"))
    assert str(e.value) == "serve_directory: route '/files' is already served"
    with pytest.raises(ValueError) as e:
        app.serve_directory("/x", str(tree / "nope"))
    assert str(e.value) == f"serve_directory: directory '{tree / 'nope'}' does not exist"
    with pytest.raises(ValueError) as e:
        app.serve_directory("/x", str(tree / "secret.txt"))
    assert str(e.value) == f"serve_directory: directory '{tree / 'secret.txt'}' is not a directory"
    with pytest.raises(ValueError) as e:
        app.serve_directory("x", str(tree / "pub"))
    assert str(e.value) == "serve_directory: route 'x' must start with '/'"
    with pytest.raises(ValueError) as e:
        app.serve_directory("/x", str(tree / "pub"), index_file="../index.html")
    assert str(e.value) == "serve_directory: index_file '../index.html' must be a file name"
    with pytest.raises(ValueError) as e:
        app.serve_directory("/a/:id", str(tree / "pub"))
    assert str(e.value) == ("serve_directory: route '/a/:id' may not hold '.', '..', ':name' "
                            "or '*name' segments")
    with pytest.raises(TypeError) as e:
        app.serve_directory("/y", str(tree / "pub"), show_files_listing="yes")
    assert str(e.value) == "serve_directory() show_files_listing must be a bool, not str"
    with pytest.raises(TypeError) as e:
        app.serve_directory("/y", 42)
    assert str(e.value) == "serve_directory() directory_path must be a str or a path, not int"
    app.serve_directory("/p", tree / "pub", "index.html", True)  # a Path works
    assert [d.route for d in app.directories] == ["/files", "/p"]


def test_jinja_missing_names_the_package(tmp_path: Path):
    code = ("import sys; sys.modules['jinja2'] = None\n"
            "from robyn.templating import JinjaTemplate\n"
            "try:\n    JinjaTemplate('.')\nexcept ImportError as exc:\n    print(exc)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=30, cwd=tmp_path)
    assert out.stdout.strip() == ("robyn.templating.JinjaTemplate needs the 'jinja2' package, "
                                  "which is not installed: pip install jinja2")


def test_template_interface_is_abstract():
    from robyn.templating import TemplateInterface

    with pytest.raises(TypeError):
        TemplateInterface()

    class Upper(TemplateInterface):
        def render_template(self, text: str):
            from robyn import Response
            return Response(200, {}, text.upper())

    assert Upper().render_template("hi").description == "HI"
