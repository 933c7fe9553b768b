"""Robyn 0.88's module name for robyn.env file loading (`from robyn.env_populator import
load_vars, parser`): the same functions as robyn/env.py's."""

from .env import load_vars, parser

__all__ = ["load_vars", "parser"]
