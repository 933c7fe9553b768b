"""The wheel users install: built once per session by tools/wheel (sdist, wheel from that
sdist, auditwheel repair), installed with --no-deps into a fresh venv, and checked to load
libwebsockets and the other C libraries from its own robyn_gateway.libs/ folder, then to
serve a request from that venv. Building takes about 10-20 s; every step has a time limit."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tarfile
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
BUILD_TIMEOUT = 300
INSTALL_TIMEOUT = 120
READY_TIMEOUT = 10.0

pytestmark = pytest.mark.wheel

# Each library the extension links beyond the manylinux policy, as its soname starts.
BUNDLED = ("libwebsockets", "libhttp_parser", "libhiredis", "libmsgpackc", "libssl", "libcrypto",
           "libev")

APP = '''\
import os
import robyn
from robyn import Robyn

app = Robyn(__file__)


@app.get("/")
def index():
    return {"answer": "from the wheel", "package": robyn.__file__}


app.start(host="127.0.0.1", port=int(os.environ["WHEEL_APP_PORT"]))
'''


def _clean_env(**extra: str) -> dict[str, str]:
    """The environment of the fresh venv's processes: nothing that points back at this
    project's .venv or source tree."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "LD_LIBRARY_PATH", "PYTHONHOME")
           and not k.startswith("ROBYN_")}
    env.update(extra)
    return env


@pytest.fixture(scope="session")
def dist_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, str(ROOT / "tools" / "wheel"), str(out)], check=True,
                   timeout=BUILD_TIMEOUT, stdout=subprocess.DEVNULL)
    return out


@pytest.fixture(scope="session")
def wheel_venv(dist_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    venv = tmp_path_factory.mktemp("wheel-venv")
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True,
                   timeout=INSTALL_TIMEOUT, env=_clean_env())
    (wheel,) = dist_dir.glob("*.whl")
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps",
                    "--no-index", str(wheel)], check=True, timeout=INSTALL_TIMEOUT, env=_clean_env())
    return venv


def _site_packages(venv: Path) -> Path:
    (site,) = venv.glob("lib/python3*/site-packages")
    return site


def test_the_wheel_is_manylinux_and_bundles_the_c_libraries(dist_dir: Path) -> None:
    (wheel,) = dist_dir.glob("*.whl")
    assert re.fullmatch(r"robyn_gateway-[^-]+-cp3\d+-cp3\d+-manylinux_2_\d+_x86_64\.whl", wheel.name), wheel.name
    names = zipfile.ZipFile(wheel).namelist()
    bundled = [n for n in names if n.startswith("robyn_gateway.libs/")]
    for lib in BUNDLED:
        assert any(Path(n).name.startswith(lib + "-") for n in bundled), (lib, bundled)
    assert any(re.fullmatch(r"robyn/_gateway\.cpython-3\d+-x86_64-linux-gnu\.so", n) for n in names), names


def test_the_sdist_holds_what_the_build_needs(dist_dir: Path) -> None:
    (sdist,) = dist_dir.glob("*.tar.gz")
    with tarfile.open(sdist) as tar:
        names = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    for needed in ("pyproject.toml", "meson.build", "meson_options.txt", "gateway/meson.build",
                   "pubsub/meson.build", "robyn/__init__.py", "robyn/_gateway.pyi", "robyn/py.typed",
                   "README.md"):
        assert needed in names, needed


def test_the_installed_extension_loads_the_bundled_libraries(wheel_venv: Path) -> None:
    site = _site_packages(wheel_venv)
    (extension,) = (site / "robyn").glob("_gateway.cpython-*.so")
    libs_dir = site / "robyn_gateway.libs"
    ldd = subprocess.run(["ldd", str(extension)], check=True, capture_output=True, text=True,
                         timeout=30).stdout
    resolved = dict(re.findall(r"^\s*(\S+) => (\S+)", ldd, re.MULTILINE))
    assert "not found" not in ldd, ldd
    for lib in BUNDLED:
        matches = [(name, path) for name, path in resolved.items() if name.startswith(lib + "-")]
        assert len(matches) == 1, (lib, ldd)
        assert Path(matches[0][1]).resolve().parent == libs_dir.resolve(), (lib, ldd)
    # None of them may come from the system's packages.
    system = [line for line in ldd.splitlines()
              if any(lib in line for lib in BUNDLED) and ("/usr/lib" in line or " /lib" in line)]
    assert system == [], ldd


@pytest.fixture
def wheel_app(wheel_venv: Path, tmp_path: Path) -> Iterator[tuple[int, Path, int]]:
    script = tmp_path / "app.py"
    script.write_text(APP)
    port = free_port()
    log_path = tmp_path / "app.log"
    with open(log_path, "wb") as log:
        # Run from tmp_path so `import robyn` cannot find the source tree.
        proc = subprocess.Popen([str(wheel_venv / "bin" / "python"), str(script)], cwd=tmp_path,
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                env=_clean_env(WHEEL_APP_PORT=str(port), PYTHONUNBUFFERED="1"))
    try:
        yield port, log_path, proc.pid
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                code = proc.wait(timeout=8)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
                pytest.fail(f"the wheel's app did not stop on SIGTERM. Log:\n{log_path.read_text()}")
            assert code == 0, f"exit {code}. Log:\n{log_path.read_text()}"


def test_an_app_runs_from_the_wheel(wheel_app: tuple[int, Path, int], wheel_venv: Path) -> None:
    port, log_path, pid = wheel_app
    deadline = time.monotonic() + READY_TIMEOUT
    body = None
    while body is None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as answer:
                assert answer.status == 200
                body = answer.read()
        except OSError:
            if time.monotonic() > deadline:
                pytest.fail(f"no answer within {READY_TIMEOUT} s. Log:\n{log_path.read_text()}")
            time.sleep(0.05)
    answer = json.loads(body)
    assert answer["answer"] == "from the wheel"
    assert Path(answer["package"]).resolve() == (_site_packages(wheel_venv) / "robyn" / "__init__.py").resolve()
    # What the running process really mapped, not only what ldd predicts.
    mapped = {line.split()[-1] for line in Path(f"/proc/{pid}/maps").read_text().splitlines()
              if len(line.split()) >= 6}
    libs_dir = (_site_packages(wheel_venv) / "robyn_gateway.libs").resolve()
    for lib in ("libwebsockets", "libhttp_parser", "libhiredis", "libmsgpackc", "libev"):
        ours = [m for m in mapped if Path(m).name.startswith(lib) and "evlib" not in m]
        assert len(ours) == 1 and Path(ours[0]).parent == libs_dir, (lib, ours)
    # libwebsockets' libev plugin would bring the system's libwebsockets beside the bundled
    # one: the wheel's I/O threads wait in poll() instead, and the start log says why.
    assert not [m for m in mapped if "evlib" in m], mapped
    assert ("the I/O threads wait in poll(), not epoll: this build carries its own copy of "
            "libwebsockets (a wheel), which libwebsockets' libev plugin cannot share") in log_path.read_text()
