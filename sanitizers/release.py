"""What an operator's recorded decision changes when a held message is sanitized again.

The gateway decides (who released it, who approved the exception) and records it; the pipeline
only carries the decision out for one run. Nothing in the message can ask for any of this: the
terms come from the gateway's store, never from a header or a mark in the mail.

- ``lift_holds``: ``policy.hold_reasons`` hold nothing; a part that held the message is removed
  with a notice instead (its reason stays in the report). Limits and faults still hold.
- ``text_only``: every file is removed with reason ``text_only`` and never parsed (the release
  of a message held for a limit, unless the operator raised that limit for this run).
- ``keep_parts``: the parts (paths such as ``1.2``) an approved exception (例外措置) lets cross
  as the sender's bytes, after the malware scan; an executable never does, and an archive is
  still rebuilt (it may hide one).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ReleaseTerms:
    """The terms of one release run (picklable: it travels to the pool's processes)."""

    lift_holds: bool = True
    text_only: bool = False
    keep_parts: frozenset[str] = frozenset()
