"""Logging: everything this package says goes through the `logging` module.

Loggers: "robyn" (the server's own lines: the start line, shutdown, errors of handlers)
and "robyn.lws" (libwebsockets' own log, at its levels: see route_lws_log). `--log-level`
/ ROBYN_LOG_LEVEL set the level (robyn/argument_parser.py).

`Colors`, `Logger` and `logger` are Robyn's: a wrapper of the "robyn" logger whose
methods take `color`, `bold` and `underline`, for apps that use it.
"""

from __future__ import annotations

import logging
import platform
import threading
import webbrowser
from enum import Enum

__all__ = ["Colors", "Logger", "logger", "open_browser", "start_line", "url_of"]

_log = logging.getLogger("robyn")


class Colors(Enum):
    BLUE = "\033[94m"
    CYAN = "\033[96m"
    GREEN = "\033[92m"
    YELLOW = "\033[93m"
    RED = "\033[91m"


class Logger:
    """Robyn's logger: the "robyn" logger's levels, a message optionally coloured (ANSI)."""

    HEADER = "\033[95m"
    ENDC = "\033[0m"
    BOLD = "\033[1m"
    UNDERLINE = "\033[4m"

    def __init__(self) -> None:
        self.logger = logging.getLogger("robyn")

    def _format_msg(self, msg: str, color: Colors | None, bold: bool, underline: bool) -> str:
        text = msg if color is None else f"{color.value}{msg}{self.ENDC}"
        if bold:
            text = f"{self.BOLD}{text}"
        if underline:
            text = f"{self.UNDERLINE}{text}"
        return text

    def error(self, msg: str, *args: object, color: Colors | None = Colors.RED,
              bold: bool = False, underline: bool = False) -> None:
        self.logger.error(self._format_msg(msg, color, bold, underline), *args)

    def warn(self, msg: str, *args: object, color: Colors | None = Colors.YELLOW,
             bold: bool = False, underline: bool = False) -> None:
        self.logger.warning(self._format_msg(msg, color, bold, underline), *args)

    warning = warn

    def info(self, msg: str, *args: object, color: Colors | None = Colors.GREEN,
             bold: bool = False, underline: bool = False) -> None:
        self.logger.info(self._format_msg(msg, color, bold, underline), *args)

    def debug(self, msg: str, *args: object, color: Colors | None = Colors.BLUE,
              bold: bool = False, underline: bool = False) -> None:
        self.logger.debug(self._format_msg(msg, color, bold, underline), *args)


logger = Logger()


def url_of(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def lws_version() -> str:
    from . import _gateway

    # Debian's build leaves the git part of "4.1.6-<hash>" empty: "4.1.6-".
    return str(_gateway.lws_version()).strip().rstrip("-")


def start_line(host: str, port: int, processes: int, workers: int) -> str:
    """The one line a starting server logs: where, how many, and the versions."""
    from . import __version__

    return (f"Robyn {__version__} listening on {url_of(host, port)} "
            f"(processes {processes}, workers {workers}; libwebsockets {lws_version()}, "
            f"Python {platform.python_version()})")


def open_browser(url: str) -> None:
    """--open-browser: the browser is launched beside the loop (it may take a while)."""
    def run() -> None:
        try:
            if not webbrowser.open(url):
                _log.warning("--open-browser: no web browser found to open %s", url)
        except Exception as exc:  # a broken browser setup must not stop the server
            _log.warning("--open-browser: could not open %s: %s", url, exc)

    threading.Thread(target=run, name="robyn-open-browser", daemon=True).start()


# ---- libwebsockets' log --------------------------------------------------------------------

lws_logger = logging.getLogger("robyn.lws")
# One line per answer (--access-log): "IP METHOD PATH STATUS BYTES MICROSECONDS" (docs/cli.md).
access_logger = logging.getLogger("robyn.access")


def _lws_levels() -> dict[int, int]:
    from . import _gateway

    # lws' notices and infos are details of its own workings: DEBUG here.
    return {_gateway.LLL_ERR: logging.ERROR, _gateway.LLL_WARN: logging.WARNING,
            _gateway.LLL_NOTICE: logging.DEBUG, _gateway.LLL_INFO: logging.DEBUG,
            _gateway.LLL_DEBUG: logging.DEBUG, _gateway.LLL_USER: logging.INFO}


def lws_mask_for(level: int) -> int:
    """The lws levels worth formatting when "robyn.lws" logs at `level` and above: lws does
    not build the lines nobody would see."""
    return sum(bit for bit, mapped in _lws_levels().items() if mapped >= level)


def flush_lws_log() -> int:
    """Logs the lines libwebsockets queued (gateway/lwslog.c) to "robyn.lws"; returns how
    many. Runs on the event loop when the queue's eventfd is readable, and at shutdown."""
    from . import _gateway

    levels = _lws_levels()
    access = _gateway.LOG_ACCESS
    lines, dropped = _gateway.lws_log_take()
    for bit, text in lines:
        if bit == access:
            access_logger.info("%s", text)
        else:
            lws_logger.log(levels.get(bit, logging.INFO), "%s", text)
    if dropped:
        logging.getLogger("robyn").warning(
            "%d log lines (libwebsockets' or the access log's) were dropped: they came faster "
            "than the event loop took them", dropped)
    return len(lines)


def route_lws_log() -> int:
    """Sets the lws levels from the "robyn.lws" logger's and returns the fd to watch."""
    from . import _gateway

    _gateway.lws_log_mask(lws_mask_for(lws_logger.getEffectiveLevel()))
    return int(_gateway.lws_log_fd())
