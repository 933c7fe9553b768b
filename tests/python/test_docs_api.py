"""docs/api.md, docs/configuration.md and the README stay in step with the code.

Every heading of docs/api.md names an object by its import path (`robyn.ws.WebSocket.send`);
each must import, and every name of robyn.__all__ must have one. Every ROBYN_ variable the
package reads must be in docs/configuration.md; the README links every page of docs/, and
no page names a path of one machine.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

import robyn

ROOT = Path(__file__).resolve().parents[2]
API_PAGE = ROOT / "docs" / "api.md"
CONFIG_PAGE = ROOT / "docs" / "configuration.md"
HEADING = re.compile(r"^#{2,4} `(robyn(?:\.\w+)*)`\s*$", re.MULTILINE)


def listed_names() -> list[str]:
    return HEADING.findall(API_PAGE.read_text(encoding="utf-8"))


def resolve(dotted: str) -> Any:
    """The object at `dotted`: the longest prefix that imports as a module, then attributes."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            target: Any = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attribute in parts[cut:]:
            target = getattr(target, attribute)
        return target
    raise ModuleNotFoundError(dotted)


def test_the_page_lists_names() -> None:
    names = listed_names()
    assert len(names) > 100, names
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)


def test_every_listed_name_exists() -> None:
    missing = []
    for name in listed_names():
        try:
            resolve(name)
        except (ImportError, AttributeError) as exc:
            missing.append(f"{name}: {exc}")
    assert missing == []


def test_every_name_of_all_is_listed() -> None:
    listed = set(listed_names())
    assert sorted(n for n in robyn.__all__ if f"robyn.{n}" not in listed) == []


def test_the_named_parts_of_the_api_are_listed() -> None:
    listed = set(listed_names())
    wanted = {
        "robyn.Robyn.start", "robyn.Robyn.websocket", "robyn.Robyn.startup_handler",
        "robyn.Robyn.shutdown_handler", "robyn.Robyn.publish", "robyn.Robyn.subscribers",
        "robyn.Robyn.websocket_stats", "robyn.ws.WebSocket.receive", "robyn.ws.WebSocket.send_text",
        "robyn.ws.WebSocketEndpoint.on_connect", "robyn.testing.TestClient.request",
    }
    assert sorted(wanted - listed) == []


def test_every_public_method_of_robyn_is_listed() -> None:
    listed = set(listed_names())
    public = [name for name in dir(robyn.Robyn) if not name.startswith("_")
              and name not in ("event_handlers",)]
    assert sorted(n for n in public if f"robyn.Robyn.{n}" not in listed) == []


def test_every_robyn_variable_read_by_the_package_is_in_the_configuration_page() -> None:
    package = ROOT / "robyn"
    read = set()
    for source in package.rglob("*.py"):
        read.update(re.findall(r"\bROBYN_[A-Z0-9_]+\b", source.read_text(encoding="utf-8")))
    assert len(read) > 20, sorted(read)
    page = CONFIG_PAGE.read_text(encoding="utf-8")
    assert sorted(v for v in read if f"`{v}`" not in page) == []


def test_the_readme_links_every_page_of_docs() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    pages = sorted(p.name for p in (ROOT / "docs").glob("*.md"))
    assert len(pages) > 10, pages
    assert [p for p in pages if f"(docs/{p})" not in readme] == []


def test_no_page_names_a_path_of_one_machine() -> None:
    # A clone has none of these: the team's checkouts and the folder beside them.
    pages = [ROOT / "README.md", ROOT / "bench" / "README.md", *(ROOT / "docs").glob("*.md")]
    found = []
    for page in pages:
        for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
            if "/work/" in line or "../shared" in line:
                found.append(f"{page.relative_to(ROOT)}:{number}: {line.strip()}")
    assert found == []
