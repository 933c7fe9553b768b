"""robyn.processpool: not provided (see FeatureNotProvidedError's message); importing it says why."""

from robyn.exceptions import FeatureNotProvidedError

raise FeatureNotProvidedError('robyn.processpool', "Robyn's process pool is internal to its Rust server; this project's C core runs its own workers (app.start(workers=...))")
