"""Removed-item codes shared by the Office sanitizers, and the reason each one implies.

A sanitizer reports every item it took out in ``CdrOutcome.removed``; the outcome's reason is
the gravest of them (macro > active content > embedded object > external reference).
"""

from __future__ import annotations

from collections.abc import Iterable

from sanitizers.cdr.base import CdrOutcome
from sanitizers.vocabulary import Action, Reason, RemovedItem

CODE_REASONS: dict[RemovedItem, Reason] = {
    RemovedItem.VBA: Reason.MACRO,
    RemovedItem.XLM_MACRO: Reason.MACRO,
    RemovedItem.DOCUMENT_MACRO: Reason.MACRO,
    RemovedItem.EVENT_HANDLER: Reason.ACTIVE_CONTENT,
    RemovedItem.FOREIGN_OBJECT: Reason.ACTIVE_CONTENT,
    RemovedItem.JAVASCRIPT: Reason.ACTIVE_CONTENT,
    RemovedItem.ACTIVEX: Reason.ACTIVE_CONTENT,
    RemovedItem.DDE: Reason.ACTIVE_CONTENT,
    RemovedItem.PROGRAM_ACTION: Reason.ACTIVE_CONTENT,
    RemovedItem.CUSTOM_UI: Reason.ACTIVE_CONTENT,
    RemovedItem.WEB_EXTENSION: Reason.ACTIVE_CONTENT,
    RemovedItem.FORMULA_FUNCTION: Reason.ACTIVE_CONTENT,
    RemovedItem.COMPUTED_FIELD: Reason.ACTIVE_CONTENT,
    RemovedItem.SVG_IMAGE: Reason.ACTIVE_CONTENT,
    RemovedItem.OLE_OBJECT: Reason.EMBEDDED_OBJECT,
    RemovedItem.EMBEDDED_PACKAGE: Reason.EMBEDDED_OBJECT,
    RemovedItem.ALT_CHUNK: Reason.EMBEDDED_OBJECT,
    RemovedItem.ATTACHMENT: Reason.EMBEDDED_OBJECT,
    RemovedItem.UNKNOWN_PART: Reason.EMBEDDED_OBJECT,
    RemovedItem.EXTERNAL_RELATIONSHIP: Reason.EXTERNAL_REFERENCE,
    RemovedItem.EXTERNAL_LINK: Reason.EXTERNAL_REFERENCE,
    RemovedItem.DATA_CONNECTION: Reason.EXTERNAL_REFERENCE,
    RemovedItem.HYPERLINK: Reason.EXTERNAL_REFERENCE,
    RemovedItem.LINKED_FIELD: Reason.EXTERNAL_REFERENCE,
    RemovedItem.REMOTE_TEMPLATE: Reason.EXTERNAL_REFERENCE,
    RemovedItem.UNSAFE_LINK: Reason.EXTERNAL_REFERENCE,
}
_GRAVITY = (
    Reason.MACRO,
    Reason.ACTIVE_CONTENT,
    Reason.EMBEDDED_OBJECT,
    Reason.EXTERNAL_REFERENCE,
)


def gravest(codes: Iterable[RemovedItem]) -> Reason:
    """The reason for a set of removed items; ``clean`` when there are none. An unknown code
    counts as active content (never as clean)."""
    reasons = {CODE_REASONS.get(code, Reason.ACTIVE_CONTENT) for code in codes}
    for reason in _GRAVITY:
        if reason in reasons:
            return reason
    return Reason.CLEAN


def rebuilt_outcome(
    removed: tuple[RemovedItem, ...],
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
