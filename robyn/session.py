"""Robyn 0.88's module name for the session classes (`from robyn.session import Session`)."""

from robyn.sessions import Session, SessionManager

__all__ = ["Session", "SessionManager"]
