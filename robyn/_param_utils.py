"""robyn._param_utils: not provided (see FeatureNotProvidedError's message); importing it says why."""

from robyn.exceptions import FeatureNotProvidedError

raise FeatureNotProvidedError('robyn._param_utils', "Robyn's private parameter helpers; this project's are in robyn.injection (QueryParamValidationError is robyn.exceptions')")
