"""The base of every configuration section, in the pipeline's policy and in the service.

One rule for all settings: a section is frozen (it pickles into worker processes unchanged),
an unknown key is an error (a typo must never weaken a rule), and the string written just
below a field is its description: ``config/defaults.toml`` prints it as the comment above
the key, so the explanation of a setting is written once, next to its type and default.
"""

from __future__ import annotations

from typing import Self

from pydantic import BaseModel, ConfigDict, model_validator

# The longest time any ``*_seconds`` setting may name (a year): a limit that never fires is no
# limit.
LONGEST_SECONDS = 366 * 86400.0


class Section(BaseModel):
    """A frozen table of settings that refuses unknown keys, infinite or NaN numbers and
    times longer than :data:`LONGEST_SECONDS`; field docstrings describe keys."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, use_attribute_docstrings=True, allow_inf_nan=False
    )

    @model_validator(mode="after")
    def _times_are_bounded(self) -> Self:
        for name, value in self:
            if name.endswith("_seconds") and value > LONGEST_SECONDS:
                raise ValueError(f"{name} = {value} is longer than {LONGEST_SECONDS:.0f} s")
        return self
