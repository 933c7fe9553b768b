"""Static directories: `app.serve_directory(...)` hands a URL prefix and a directory to the C
core, which serves the files from the I/O thread with no Python per request.

What is served, the content types, the caching headers and the rules against climbing out
of the directory are in docs/static.md.
"""

from __future__ import annotations

import os
from typing import Any

from .types import Directory

__all__ = ["serve_directory"]


def serve_directory(app: Any, route: str, directory_path: str | os.PathLike[str],
                    index_file: str | None = None, show_files_listing: bool = False) -> None:
    """Serves the files under `directory_path` at the URL prefix `route`.

    GET and HEAD requests under `route` are answered from the file system. With
    `index_file`, a request for a directory (the mount itself or any directory below it)
    is answered with that file from it; with `show_files_listing`, a directory without one
    is answered with an HTML listing. Without either, only regular files are served and
    every other path under `route` goes on to the app's routes, as in Robyn.

    A relative `directory_path` is taken from the current working directory, once, now.
    Raises TypeError for arguments of the wrong type and ValueError naming the route, the
    directory or the index file when it cannot be served (a missing directory, a route
    already served, an index file that is not a plain file name).
    """
    if not isinstance(route, str):
        raise TypeError(f"serve_directory() route must be a str, not {type(route).__name__}")
    if isinstance(directory_path, os.PathLike):
        directory_path = os.fspath(directory_path)
    if not isinstance(directory_path, str):
        raise TypeError("serve_directory() directory_path must be a str or a path, not "
                        f"{type(directory_path).__name__}")
    if index_file is not None and not isinstance(index_file, str):
        raise TypeError("serve_directory() index_file must be a str or None, not "
                        f"{type(index_file).__name__}")
    if not isinstance(show_files_listing, bool):
        raise TypeError("serve_directory() show_files_listing must be a bool, not "
                        f"{type(show_files_listing).__name__}")
    for name, value in (("route", route), ("directory_path", directory_path),
                        ("index_file", index_file or "")):
        if "\0" in value:
            raise ValueError(f"serve_directory: {name} {value!r} contains a NUL byte")
    app._server.serve_directory(route, directory_path, index_file, show_files_listing)
    directories = getattr(app, "directories", None)
    if directories is None:
        directories = []
        app.directories = directories
    directories.append(Directory(route, directory_path, show_files_listing, index_file))
