"""robyn.reloader: not provided (see FeatureNotProvidedError's message); importing it says why."""

from robyn.exceptions import FeatureNotProvidedError

raise FeatureNotProvidedError('robyn.reloader', "Robyn's dev-mode reloader (and its Rust file compiler) is not part of this project")
