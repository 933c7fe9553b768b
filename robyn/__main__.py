"""python -m robyn: not provided (see FeatureNotProvidedError's message); importing it says why."""

from robyn.exceptions import FeatureNotProvidedError

raise FeatureNotProvidedError('python -m robyn', "Robyn's command line is not part of this project; run the app file with python (python app.py)")
