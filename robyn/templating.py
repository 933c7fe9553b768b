"""Templates: `JinjaTemplate(directory).render_template(name, **context)` returns a
`Response` (200, text/html; charset=utf-8), as in Robyn. `TemplateInterface` is the base
for other engines. Jinja2 is an optional dependency: without it, `JinjaTemplate(...)` raises
an ImportError that says how to install it.
"""

from __future__ import annotations

import inspect
import os
from abc import ABC, abstractmethod
from functools import lru_cache
from typing import Any

from . import status_codes
from .datastructures import Headers
from .responses import Response

__all__ = ["TemplateInterface", "JinjaTemplate", "render"]

_MISSING_JINJA = ("robyn.templating.JinjaTemplate needs the 'jinja2' package, which is not "
                  "installed: pip install jinja2")


class TemplateInterface(ABC):
    """What a template engine provides: `render_template(...)` returning a Response."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()

    @abstractmethod
    def render_template(self, *args: Any, **kwargs: Any) -> Response:
        """Renders a template into a Response."""


class JinjaTemplate(TemplateInterface):
    """Jinja2 templates from `directory`, autoescaped for .html, .htm and .xml files (and
    for names without a known extension, as Jinja's `select_autoescape` default does)."""

    def __init__(self, directory: str | os.PathLike[str], encoding: str = "utf-8",
                 followlinks: bool = False) -> None:
        super().__init__()
        try:
            from jinja2 import Environment, FileSystemLoader, select_autoescape
        except ImportError as exc:
            raise ImportError(_MISSING_JINJA, name="jinja2") from exc
        if not isinstance(encoding, str):
            raise TypeError(f"JinjaTemplate() encoding must be a str, not {type(encoding).__name__}")
        if not isinstance(followlinks, bool):
            raise TypeError("JinjaTemplate() followlinks must be a bool, not "
                            f"{type(followlinks).__name__}")
        self.env = Environment(
            loader=FileSystemLoader(searchpath=directory, encoding=encoding,
                                    followlinks=followlinks),
            autoescape=select_autoescape(enabled_extensions=("html", "htm", "xml"), default=True),
        )

    def render_template(self, template_name: str, **kwargs: Any) -> Response:
        """Renders `template_name` with `kwargs` as its context. A missing template raises
        jinja2's TemplateNotFound (a 500 when a handler lets it through)."""
        rendered = self.env.get_template(template_name).render(**kwargs)
        return Response(status_codes.HTTP_200_OK,
                        Headers({"Content-Type": "text/html; charset=utf-8"}), rendered)


@lru_cache(maxsize=None)
def _engine(engine: type[TemplateInterface], directory: str) -> TemplateInterface:
    return engine(directory)


def render(template_name: str, *, templates_dir: str = "templates",
           template_engine: type[TemplateInterface] = JinjaTemplate, **kwargs: Any) -> Response:
    """Renders a template from `templates_dir` (relative to the calling file when not
    absolute), with one engine kept per directory."""
    if not os.path.isabs(templates_dir):
        frame = inspect.currentframe()
        caller = frame.f_back if frame is not None else None
        try:
            caller_file = caller.f_globals.get("__file__") if caller is not None else None
        finally:
            del frame, caller
        base = os.path.dirname(os.path.abspath(caller_file)) if caller_file else os.getcwd()
        templates_dir = os.path.join(base, templates_dir)
    return _engine(template_engine, templates_dir).render_template(template_name, **kwargs)
