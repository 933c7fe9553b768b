"""robyn.logger: not provided (see FeatureNotProvidedError's message); importing it says why."""

from robyn.exceptions import FeatureNotProvidedError

raise FeatureNotProvidedError('robyn.logger', "Robyn's coloured Logger is not part of this project; use logging.getLogger('robyn')")
