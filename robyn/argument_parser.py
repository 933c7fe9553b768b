"""robyn.argument_parser: not provided (see FeatureNotProvidedError's message); importing it says why."""

from robyn.exceptions import FeatureNotProvidedError

raise FeatureNotProvidedError('robyn.argument_parser', "Robyn's command-line Config is not part of this project; set the server's options with app.start() keywords or the ROBYN_* environment (docs/http.md)")
