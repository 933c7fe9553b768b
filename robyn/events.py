"""The lifecycle events an app has handlers for (`app.event_handlers`)."""

from __future__ import annotations

from enum import Enum

__all__ = ["Events"]


class Events(Enum):
    STARTUP = "startup"
    SHUTDOWN = "shutdown"
