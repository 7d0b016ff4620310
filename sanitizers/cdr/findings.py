"""Removed-item codes shared by the Office sanitizers, and the reason each one implies.

A sanitizer reports every item it took out in ``CdrOutcome.removed``; the outcome's reason is
the gravest of them (macro > active content > embedded object > external reference).
"""

from __future__ import annotations

from collections.abc import Iterable

from sanitizers.cdr.base import CdrOutcome
from sanitizers.vocabulary import Action, Reason

CODE_REASONS: dict[str, Reason] = {
    "vba": Reason.MACRO,
    "xlm_macro": Reason.MACRO,
    "activex": Reason.ACTIVE_CONTENT,
    "dde": Reason.ACTIVE_CONTENT,
    "program_action": Reason.ACTIVE_CONTENT,
    "custom_ui": Reason.ACTIVE_CONTENT,
    "web_extension": Reason.ACTIVE_CONTENT,
    "formula_function": Reason.ACTIVE_CONTENT,
    "computed_field": Reason.ACTIVE_CONTENT,
    "svg_image": Reason.ACTIVE_CONTENT,
    "ole_object": Reason.EMBEDDED_OBJECT,
    "embedded_package": Reason.EMBEDDED_OBJECT,
    "alt_chunk": Reason.EMBEDDED_OBJECT,
    "attachment": Reason.EMBEDDED_OBJECT,
    "unknown_part": Reason.EMBEDDED_OBJECT,
    "external_relationship": Reason.EXTERNAL_REFERENCE,
    "external_link": Reason.EXTERNAL_REFERENCE,
    "data_connection": Reason.EXTERNAL_REFERENCE,
    "hyperlink": Reason.EXTERNAL_REFERENCE,
    "linked_field": Reason.EXTERNAL_REFERENCE,
    "remote_template": Reason.EXTERNAL_REFERENCE,
    "unsafe_link": Reason.EXTERNAL_REFERENCE,
}
_GRAVITY = (
    Reason.MACRO,
    Reason.ACTIVE_CONTENT,
    Reason.EMBEDDED_OBJECT,
    Reason.EXTERNAL_REFERENCE,
)


def gravest(codes: Iterable[str]) -> Reason:
    """The reason for a set of removed items; ``clean`` when there are none. An unknown code
    counts as active content (never as clean)."""
    reasons = {CODE_REASONS.get(code, Reason.ACTIVE_CONTENT) for code in codes}
    for reason in _GRAVITY:
        if reason in reasons:
            return reason
    return Reason.CLEAN


def rebuilt_outcome(
    removed: tuple[str, ...],
    *,
    rebuilt: bytes,
    filename: str,
    rebuilt_name: str,
    content_type: str,
    keep_if_clean: bool,
) -> CdrOutcome:
    """The outcome of a rebuilding sanitizer. Under ``keep_if_clean`` a file in which anything
    was found is removed; otherwise (and always under ``sanitize``) the rebuilt file is
    delivered — never the sender's bytes, which may hold data no parser read (after ``%%EOF``,
    parts nothing references): what crosses is exactly what was verified."""
    if keep_if_clean and removed:
        return CdrOutcome(
            action=Action.REMOVED,
            reason=gravest(removed),
            removed=removed,
            detail=",".join(removed),
        )
    return CdrOutcome(
        action=Action.SANITIZED,
        reason=gravest(removed),
        data=rebuilt,
        filename=rebuilt_name,
        content_type=content_type,
        removed=removed,
    )
