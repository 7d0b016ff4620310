"""The base of every configuration section, in the pipeline's policy and in the service.

One rule for all settings: a section is frozen (it pickles into worker processes unchanged),
an unknown key is an error (a typo must never weaken a rule), and the string written just
below a field is its description: ``config/defaults.toml`` prints it as the comment above
the key, so the explanation of a setting is written once, next to its type and default.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    """A frozen table of settings that refuses unknown keys; field docstrings describe keys."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)
