"""robyn.dependency_injection: not provided (see FeatureNotProvidedError's message); importing it says why."""

from robyn.exceptions import FeatureNotProvidedError

raise FeatureNotProvidedError('robyn.dependency_injection', "Robyn's DependencyMap is internal; use app.inject() and app.inject_global()")
