"""robyn.cli: not provided (see FeatureNotProvidedError's message); importing it says why."""

from robyn.exceptions import FeatureNotProvidedError

raise FeatureNotProvidedError('robyn.cli', "Robyn's command line (dev server, reloader, project scaffolding) is not part of this project; run the app file with python (python app.py)")
