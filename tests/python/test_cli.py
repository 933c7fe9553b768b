"""The command line (robyn/argument_parser.py, robyn/cli.py, robyn/reloader.py), run as a
user runs it: `python app.py [flags]`, `robyn app.py [flags]`, `python -m robyn app.py`."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
from importlib import metadata
from pathlib import Path

import pytest

from conftest import APPS, free_port

import robyn

ROOT = Path(__file__).resolve().parents[2]
APP = APPS / "cli_app.py"
BIN = Path(sys.executable).parent
ROBYN_FLAGS = ["--processes", "--workers", "--dev", "--log-level", "--create", "--docs",
               "--open-browser", "--version", "--compile-rust-path", "--create-rust-file",
               "--disable-openapi", "--fast"]
OUR_FLAGS = ["--host", "--port", "--help", "--template", "--access-log", "--no-access-log"]


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROBYN_")}
    env.pop("IS_RELOADER_RUNNING", None)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def _run(command: list[str], tmp_path: Path, env: dict[str, str] | None = None,
         timeout: float = 15.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, env=_env(env), cwd=str(tmp_path), capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def _get(port: int, path: str = "/") -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _answer(port: int) -> dict:
    """The app's JSON answer, or {} while it is restarting."""
    try:
        return json.loads(_get(port)[1])
    except (OSError, ValueError):
        return {}


class Served:
    """A server started from the command line, its output in a file."""

    def __init__(self, command: list[str], tmp_path: Path, port: int,
                 env: dict[str, str] | None = None, wait: bool = True) -> None:
        self.port = port
        self.log_path = tmp_path / f"out-{port}-{time.monotonic_ns()}.log"
        with open(self.log_path, "wb") as out:
            self.proc = subprocess.Popen(command, env=_env(env), cwd=str(tmp_path), stdout=out,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        if wait:
            self.wait_answering()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_answering(self, timeout: float = 10.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            try:
                status, body = _get(self.port)
                if status == 200:
                    return json.loads(body)
            except (OSError, ValueError):
                pass
            if self.proc.poll() is not None:
                pytest.fail(f"exited with {self.proc.returncode} before answering:\n{self.log()}")
            if time.monotonic() > deadline:
                pytest.fail(f"no answer on {self.port} within {timeout} s:\n{self.log()}")
            time.sleep(0.05)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
            pytest.fail(f"did not stop within 15 s after SIGTERM:\n{self.log()}")


@pytest.fixture
def serve(tmp_path):
    started: list[Served] = []

    def start(args: list[str], env: dict[str, str] | None = None, command: list[str] | None = None,
              app: Path = APP, port: int | None = None, wait: bool = True) -> Served:
        port = port or free_port()
        full = (command or [sys.executable, str(app)]) + args
        if "--port" not in args:
            env = {"ROBYN_PORT": str(port), **(env or {})}
        server = Served(full, tmp_path, port, env, wait)
        started.append(server)
        return server

    yield start
    for server in started:
        assert server.stop() == 0, server.log()


# ---- what exits at once ----------------------------------------------------------------


@pytest.mark.parametrize("command", [
    [sys.executable, str(APP)], [str(BIN / "robyn")], [sys.executable, "-m", "robyn"]])
def test_help_lists_every_flag_and_exits_0(command, tmp_path):
    done = _run(command + ["--help"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: ")
    for flag in ROBYN_FLAGS + OUR_FLAGS:
        assert flag in done.stdout, flag
    assert "ROBYN_LOG_LEVEL" in done.stdout and done.stderr == ""


@pytest.mark.parametrize("command", [
    [sys.executable, str(APP)], [str(BIN / "robyn")], [sys.executable, "-m", "robyn"]])
def test_version_prints_the_package_version_and_exits_0(command, tmp_path):
    with open(ROOT / "pyproject.toml", "rb") as file:
        declared = tomllib.load(file)["project"]["version"]
    assert robyn.__version__ == declared == metadata.version("robyn-gateway")
    done = _run(command + ["--version"], tmp_path)
    assert (done.returncode, done.stdout, done.stderr) == (0, f"robyn {declared}\n", "")


@pytest.mark.parametrize("args, message", [
    (["--bogus"], "error: unrecognized arguments: --bogus"),
    (["--proceses", "2"], "error: unrecognized arguments: --proceses"),
    (["--dev", "-x"], "error: unrecognized arguments: -x"),
    (["--port", "0"], "error: argument --port: --port must be between 1 and 65535, not 0"),
    (["--port", "http"], "error: argument --port: --port takes a whole number, not 'http'"),
    (["--log-level", "LOUD"], "error: argument --log-level: --log-level must be one of DEBUG, "
                              "INFO, WARNING, WARN, ERROR, CRITICAL, not 'LOUD'"),
    (["--docs"], "error: --docs is not supported: Robyn's online documentation"),
    (["--compile-rust-path", "src"], "error: --compile-rust-path is not supported: Rust"),
    (["--create-rust-file", "x"], "error: --create-rust-file is not supported: Rust"),
    (["--create"], "error: --create is the robyn command's: robyn --create FOLDER"),
    (["--template", "chat"], "error: --template is only meaningful with --create"),
    (["--fast", "--dev"], "error: --fast and --dev cannot be used together"),
    (["--dev", "--processes", "2"], "error: --processes and --workers cannot be used with --dev"),
])
def test_a_bad_or_unsupported_flag_exits_2_naming_it(args, message, tmp_path):
    port = free_port()
    done = _run([sys.executable, str(APP), *args], tmp_path, {"ROBYN_PORT": str(port)})
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("usage: cli_app.py ")
    assert message in done.stderr
    assert "listening" not in done.stderr + done.stdout


@pytest.mark.parametrize("env, message", [
    ({"ROBYN_LOG_LEVEL": "LOUD"}, "ValueError: ROBYN_LOG_LEVEL must be one of DEBUG, INFO, "
                                  "WARNING, WARN, ERROR, CRITICAL, not 'LOUD'"),
    ({"ROBYN_DEV_MODE": "maybe"}, "ValueError: ROBYN_DEV_MODE must be one of true, false"),
    ({"ROBYN_PORT": "web"}, "ValueError: ROBYN_PORT must be an integer, not 'web'"),
    ({"ROBYN_WORKERS": "0"}, "ValueError: ROBYN_WORKERS must be at least 1, not 0"),
    ({"ROBYN_EVENT_LOOP": "select"}, "ValueError: ROBYN_EVENT_LOOP must be one of epoll, poll, "
                                     "not 'select'"),
])
def test_a_bad_environment_value_is_an_error_naming_it(env, message, tmp_path):
    done = _run([sys.executable, str(APP)], tmp_path, env)
    assert done.returncode == 1
    assert message in done.stderr
    assert "listening" not in done.stderr


# ---- what serves -------------------------------------------------------------------------


def test_host_and_port_flags_win_over_the_environment(serve):
    port = free_port()
    server = serve(["--host", "127.0.0.1", "--port", str(port)],
                   env={"ROBYN_PORT": str(free_port()), "ROBYN_HOST": "localhost"}, port=port)
    assert server.wait_answering()["version"] == "one"
    assert f"listening on http://127.0.0.1:{port} (processes 1, workers 1;" in server.log()


def test_processes_and_workers_as_the_bench_gives_them(serve):
    server = serve(["--processes", "1", "--workers", "1"])
    assert server.wait_answering()["argv"] == ["--processes", "1", "--workers", "1"]


def test_processes_flag_serves_from_several_processes(serve):
    server = serve(["--processes", "2"])
    pids = {server.wait_answering()["pid"] for _ in range(40)}
    assert server.proc.pid not in pids and len(pids) >= 1
    assert "(processes 2, workers 1;" in server.log()


def test_arguments_that_are_not_flags_are_left_to_the_script(serve):
    server = serve(["extra", "--log-level", "INFO", "--", "--script-flag", "-v"])
    assert server.wait_answering()["argv"] == ["extra", "--log-level", "INFO", "--",
                                               "--script-flag", "-v"]


@pytest.mark.parametrize("args, env, shown", [
    ([], {}, True),
    (["--log-level", "WARNING"], {}, False),
    (["--log-level", "warn"], {}, False),
    ([], {"ROBYN_LOG_LEVEL": "ERROR"}, False),
    (["--log-level", "INFO"], {"ROBYN_LOG_LEVEL": "ERROR"}, True),
])
def test_log_level_decides_whether_the_start_line_shows(args, env, shown, serve):
    server = serve(args, env=env)
    server.stop()
    assert ("listening on http://" in server.log()) is shown, server.log()


@pytest.mark.parametrize("args, env", [(["--disable-openapi"], {}),
                                       ([], {"ROBYN_DISABLE_OPENAPI": "true"})])
def test_disable_openapi_stops_serving_the_docs(args, env, serve):
    server = serve(args, env=env)
    assert _get(server.port, "/openapi.json")[0] == 404
    assert _get(server.port, "/docs")[0] == 404


def test_openapi_is_served_without_the_flag(serve):
    server = serve([])
    status, body = _get(server.port, "/openapi.json")
    assert status == 200 and json.loads(body)["openapi"].startswith("3.")


def test_fast_takes_a_process_per_core_and_warning_unless_told(serve):
    quiet = serve(["--fast"])
    quiet.wait_answering()
    flagged = serve(["--fast", "--log-level", "INFO", "--processes", "1"])
    flagged.wait_answering()
    counted = serve(["--fast", "--log-level", "INFO"])
    counted.wait_answering()
    quiet.stop(), flagged.stop(), counted.stop()
    assert "listening" not in quiet.log()
    assert "(processes 1, workers 1;" in flagged.log()
    assert f"(processes {os.cpu_count()}, workers 1;" in counted.log()


def test_open_browser_opens_the_app_url(serve, tmp_path):
    opened = tmp_path / "opened.txt"
    browser = tmp_path / "browser.sh"
    browser.write_text(f'#!/bin/sh\necho "$1" > {opened}\n')
    browser.chmod(0o755)
    server = serve(["--open-browser"], env={"BROWSER": f"{browser} %s"})
    deadline = time.monotonic() + 10
    while not opened.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert opened.read_text() == f"http://127.0.0.1:{server.port}\n"


# ---- --dev ---------------------------------------------------------------------------------


def test_dev_restarts_the_app_when_a_py_file_changes(serve, tmp_path):
    folder = tmp_path / "project"
    (folder / "lib").mkdir(parents=True)
    app = folder / "app.py"
    shutil.copy(APP, app)
    (folder / "lib" / "helper.py").write_text("X = 1\n")
    (folder / "notes.txt").write_text("not code\n")
    server = serve(["--dev"], app=app)
    first = server.wait_answering()
    assert first["version"] == "one" and first["pid"] != server.proc.pid
    assert first["argv"] == []  # --dev is the reloader's, not the app's

    app.write_text(app.read_text().replace('VERSION = "one"', 'VERSION = "two"'))
    deadline = time.monotonic() + 10
    while (now := _answer(server.port)).get("version") != "two":
        assert time.monotonic() < deadline, server.log()
        time.sleep(0.1)
    assert now["pid"] != first["pid"]

    (folder / "notes.txt").write_text("still not code\n")  # not a .py file: no restart
    time.sleep(1.0)
    assert json.loads(_get(server.port)[1])["pid"] == now["pid"]

    (folder / "lib" / "helper.py").write_text("X = 2\n")  # a module in a sub-folder
    deadline = time.monotonic() + 10
    while _answer(server.port).get("pid") in (None, now["pid"]):
        assert time.monotonic() < deadline, server.log()
        time.sleep(0.1)
    log = server.log()
    assert "Robyn dev mode: restarting the app when a .py file under" in log
    assert "robyn --dev: app.py changed; restarting the app" in log
    assert "robyn --dev: lib/helper.py changed; restarting the app" in log
    assert "DEBUG:" in log  # --dev logs at DEBUG


def test_dev_waits_for_a_fix_after_a_broken_save(serve, tmp_path):
    app = tmp_path / "app.py"
    shutil.copy(APP, app)
    server = serve([], env={"ROBYN_DEV_MODE": "True"}, app=app)
    good = app.read_text()
    app.write_text(good + "\ndef broken(:\n")
    deadline = time.monotonic() + 10
    while "the app exited with status 1; it starts again when a file changes" not in server.log():
        assert time.monotonic() < deadline, server.log()
        time.sleep(0.1)
    app.write_text(good.replace('VERSION = "one"', 'VERSION = "fixed"'))
    deadline = time.monotonic() + 10
    while _answer(server.port).get("version") != "fixed":
        assert time.monotonic() < deadline, server.log()
        time.sleep(0.1)


def test_dev_stops_its_app_on_sigterm(serve, tmp_path):
    server = serve(["--dev"])
    child = server.wait_answering()["pid"]
    assert server.stop() == 0
    deadline = time.monotonic() + 5
    while Path(f"/proc/{child}").exists():
        assert time.monotonic() < deadline, "the app outlived its reloader"
        time.sleep(0.05)
    assert "Robyn dev mode stopped" in server.log()


# ---- the robyn command and python -m robyn -------------------------------------------------


@pytest.mark.parametrize("launcher", [[str(BIN / "robyn")], [sys.executable, "-m", "robyn"]])
def test_the_robyn_command_runs_the_app_with_its_flags(launcher, serve, tmp_path):
    folder = tmp_path / "site"
    folder.mkdir()
    app = folder / "app.py"
    shutil.copy(APP, app)
    (folder / "robyn.env").write_text("CLI_APP_SETTING=from the file\n")
    port = free_port()
    server = serve(["--port", str(port), "extra"], command=[*launcher, str(app)], port=port)
    answer = server.wait_answering()
    assert answer["argv"] == ["--port", str(port), "extra"]
    assert answer["from_env_file"] == "from the file"
    assert f"listening on http://127.0.0.1:{port}" in server.log()


def test_the_robyn_command_refuses_a_missing_app(tmp_path):
    done = _run([str(BIN / "robyn")], tmp_path)
    assert (done.returncode, done.stderr) == (
        2, "robyn: error: which app? robyn app.py [flags] (robyn --help lists them)\n")
    done = _run([str(BIN / "robyn"), "nowhere.py"], tmp_path)
    assert (done.returncode, done.stderr) == (2, "robyn: error: nowhere.py: no such file\n")
    done = _run([str(BIN / "robyn"), "app.py", "--bogus"], tmp_path)
    assert done.returncode == 2 and "robyn: error: unrecognized arguments: --bogus" in done.stderr


@pytest.mark.parametrize("template, page, path", [
    ("chat", b"new WebSocket(`ws://${location.host}/chat`)", "/"),
    ("dashboard", b"Dashboard", "/"),
])
def test_create_scaffolds_a_project_that_serves(template, page, path, serve, tmp_path):
    target = tmp_path / f"new-{template}"
    done = _run([str(BIN / "robyn"), "--create", str(target), "--template", template], tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == (f"Created a {template} project in {target}: run it with "
                           f"`python {target / 'app.py'} --dev`\n")
    assert sorted(p.name for p in target.iterdir()) == ["app.py"]
    server = serve([], app=target / "app.py", wait=False)
    deadline = time.monotonic() + 10
    while True:
        try:
            status, body = _get(server.port, path)
            break
        except OSError:
            assert server.proc.poll() is None and time.monotonic() < deadline, server.log()
            time.sleep(0.05)
    assert status == 200 and page in body
    if template == "dashboard":
        status, body = _get(server.port, "/stats")
        assert status == 200 and set(json.loads(body)) == {"uptime", "load", "viewers"}
    # A second run would overwrite the project: refused, nothing written.
    again = _run([str(BIN / "robyn"), "--create", str(target)], tmp_path)
    assert again.returncode == 1
    assert again.stderr == f"robyn: error: {target / 'app.py'} exists already; nothing was written\n"


def test_create_without_a_folder_is_an_error(tmp_path):
    done = _run([str(BIN / "robyn"), "--create"], tmp_path)
    assert (done.returncode, done.stderr) == (
        2, "robyn: error: --create needs the folder to create: robyn --create FOLDER\n")
    done = _run([str(BIN / "robyn"), "--create", "x", "--template", "blog"], tmp_path)
    assert done.returncode == 2 and "argument --template: invalid choice: 'blog'" in done.stderr


# ---- the pieces, without a server ------------------------------------------------------------


def test_the_reloader_replays_the_command_without_dev():
    from robyn.reloader import child_command

    assert child_command(["/srv/app.py", "--dev", "--port", "9000"],
                         ["python3", "-X", "dev", "/srv/app.py", "--dev", "--port", "9000"]) == [
        sys.executable, "-X", "dev", "/srv/app.py", "--port", "9000"]
    # python -m pkg.app: the module is run again as a module, not as a file.
    assert child_command(["/srv/pkg/app.py", "--dev"], ["python3", "-m", "pkg.app", "--dev"]) == [
        sys.executable, "-m", "pkg.app"]
    # After `--`, a --dev is the script's own.
    assert child_command(["app.py", "--", "--dev"], ["python3", "app.py", "--", "--dev"]) == [
        sys.executable, "app.py", "--", "--dev"]


def test_the_snapshot_sees_py_files_and_skips_the_rest(tmp_path):
    from robyn.reloader import snapshot

    for name in ["app.py", "lib/util.py", ".venv/lib/x.py", "__pycache__/app.py",
                 "node_modules/m.py", "notes.txt"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("")
    assert sorted(Path(p).relative_to(tmp_path).as_posix() for p in snapshot(tmp_path)) == [
        "app.py", "lib/util.py"]


def test_precedence_flag_then_environment_then_defaults():
    from robyn.argument_parser import parse

    config = parse([], {})
    assert (config.processes, config.workers, config.dev, config.log_level, config.host,
            config.port, config.disable_openapi) == (1, 1, False, "INFO", None, None, False)
    env = {"ROBYN_PORT": "9001", "ROBYN_HOST": "0.0.0.0", "ROBYN_LOG_LEVEL": "error",
           "ROBYN_PROCESSES": "3", "ROBYN_DISABLE_OPENAPI": "yes"}
    config = parse([], env)
    assert (config.port, config.host, config.log_level, config.processes,
            config.disable_openapi) == (9001, "0.0.0.0", "ERROR", 3, True)
    config = parse(["--port", "9002", "--host", "::1", "--log-level", "debug",
                    "--processes", "2"], env)
    assert (config.port, config.host, config.log_level, config.processes) == (9002, "::1", "DEBUG", 2)
    assert parse(["--dev"], {}).log_level == "DEBUG"
    assert parse([], {"ROBYN_DEV": "1"}).dev is True
    assert parse([], {"IS_RELOADER_RUNNING": "True"}).dev is True  # the reloader's child
