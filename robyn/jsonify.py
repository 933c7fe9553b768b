"""Robyn 0.88's module of `jsonify` (`from robyn.jsonify import jsonify`): the same
function as `robyn.jsonify`, kept in robyn/responses.py."""

from .responses import jsonify

__all__ = ["jsonify"]
