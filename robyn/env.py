"""`robyn.env`: KEY=VALUE lines in the project's folder (the app file's), loaded into the
environment when the app is created, as Robyn does. A variable already set wins; lines
starting with '#' and blank lines are skipped; a line without '=' is an error naming it.
Not read when ROBYN_CLI is set (the command line has loaded it already)."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

__all__ = ["load_vars", "parser"]

logger = logging.getLogger("robyn")


def parser(config_path: str | os.PathLike[str] | None = None, project_root: str = "") -> Iterator[tuple[str, str]]:
    """The (key, value) pairs of the robyn.env file, if there is one."""
    path = Path(config_path) if config_path is not None else Path(project_root) / "robyn.env"
    if not path.exists():
        return
    with open(path, encoding="utf-8") as file:
        for number, raw in enumerate(file, 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            key, sep, value = line.partition("=")
            key = key.strip()
            if not sep or not key:
                raise ValueError(f"{path}:{number}: expected KEY=VALUE, not {line!r}")
            yield key, value.strip()


def load_vars(variables: Iterable[tuple[str, str]] | None = None, project_root: str = "") -> None:
    """Sets each variable that is not set yet."""
    for key, value in variables if variables is not None else parser(project_root=project_root):
        if key in os.environ:
            logger.debug("robyn.env: %s is set already", key)
            continue
        os.environ[key] = value
        logger.debug("robyn.env: %s set", key)
