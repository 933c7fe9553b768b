"""The robyn command: `robyn app.py [flags]`, `python -m robyn app.py [flags]`,
`robyn --create FOLDER [--template chat|dashboard]`, `robyn --version`, `robyn --help`.

Running an app: the flags are checked here (a bad one exits 2 before anything starts), the
app folder's robyn.env is loaded, ROBYN_CLI is set, and this process becomes
`python app.py [flags]` (exec), where app.start() parses the same flags and honours them:
there is one way an app runs, whichever command started it.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from . import argument_parser
from .env import load_vars

__all__ = ["SCAFFOLD_DIR", "create_robyn_app", "run"]

SCAFFOLD_DIR = Path(__file__).resolve().parent / "scaffold"


def create_robyn_app(folder: str | os.PathLike[str], template: str = "chat") -> Path:
    """Writes the `template` project (robyn/scaffold/<template>/) into `folder`, which must
    not hold any of its files yet. Returns the folder."""
    if template not in argument_parser.TEMPLATES:
        raise ValueError(f"template must be one of {', '.join(argument_parser.TEMPLATES)}, "
                         f"not {template!r}")
    source = SCAFFOLD_DIR / template
    target = Path(folder).resolve()
    files = [p for p in source.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    clashes = [str(target / p.relative_to(source)) for p in files
               if (target / p.relative_to(source)).exists()]
    if clashes:
        raise FileExistsError(f"{', '.join(clashes)} exists already; nothing was written")
    for path in files:
        destination = target / path.relative_to(source)
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, destination)
    return target


def run(argv: Sequence[str] | None = None) -> None:
    """The console script's entry point."""
    args = list(sys.argv[1:] if argv is None else argv)
    config = argument_parser.parse(args, prog="robyn", with_app=True)
    if config.create:
        folder = config.create_path
        if folder is None and sys.stdin.isatty():
            folder = input("Folder of the new project: ").strip() or None
        if folder is None:
            print("robyn: error: --create needs the folder to create: robyn --create FOLDER",
                  file=sys.stderr)
            raise SystemExit(2)
        try:
            target = create_robyn_app(folder, config.template)
        except (FileExistsError, ValueError, OSError) as exc:
            print(f"robyn: error: {exc}", file=sys.stderr)
            raise SystemExit(1) from None
        print(f"Created a {config.template} project in {target}: run it with "
              f"`python {target / 'app.py'} --dev`")
        return
    if config.file_path is None:
        print("robyn: error: which app? robyn app.py [flags] (robyn --help lists them)",
              file=sys.stderr)
        raise SystemExit(2)
    app_file = Path(config.file_path)
    if not app_file.is_file():
        print(f"robyn: error: {config.file_path}: no such file", file=sys.stderr)
        raise SystemExit(2)
    load_vars(project_root=str(app_file.resolve().parent))
    os.environ["ROBYN_CLI"] = "True"
    rest = list(args)
    rest.remove(config.file_path)  # the first positional argument is the app; the rest is its
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, str(app_file), *rest])
