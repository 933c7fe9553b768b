"""Robyn 0.88's AI helpers (`robyn.ai`: agents and memory) are not part of this project:
importing this module raises FeatureNotProvidedError (an ImportError) saying so."""

from .exceptions import FeatureNotProvidedError

raise FeatureNotProvidedError("robyn.ai", "Robyn's AI agents and memory are not part of this project; "
                                          "call the AI library of your choice from your handlers")
