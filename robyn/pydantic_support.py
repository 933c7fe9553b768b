"""robyn.pydantic_support: not provided (see FeatureNotProvidedError's message); importing it says why."""

from robyn.exceptions import FeatureNotProvidedError

raise FeatureNotProvidedError('robyn.pydantic_support', "Robyn's private pydantic helpers; pydantic bodies work through handler annotations here (docs/forms.md)")
