"""The template filter ``label``: a code of the vocabulary (a state, a reason, an action, a
role...) shown as its Japanese or English label, in the page's language, from the one place
every label is written (:func:`sanitizers.vocabulary.label`).

``{{ entry.state|label:"state" }}`` shows 保留中 for ``held`` on a Japanese page; a value that
is not a code of that kind is shown as it is (still escaped by the template).
"""

from __future__ import annotations

from typing import Final

from django import template
from django.utils import translation

from sanitizers.vocabulary import (
    Action,
    AuditEvent,
    Code,
    MessageState,
    Reason,
    RequestKind,
    RequestState,
    UserRole,
    Verdict,
    label,
)

register = template.Library()

KINDS: Final[dict[str, type[Code]]] = {
    "action": Action,
    "event": AuditEvent,
    "reason": Reason,
    "request": RequestState,
    "kind": RequestKind,
    "role": UserRole,
    "state": MessageState,
    "verdict": Verdict,
}


@register.filter(name="label")
def label_filter(value: object, kind: str) -> str:
    """The label of ``value`` as a code of ``kind`` in the active language."""
    text = "" if value is None else str(value)
    enum = KINDS.get(kind)
    if enum is None:
        return text
    try:
        code = enum(text)
    except ValueError:
        return text
    return label(code, "en" if translation.get_language() == "en" else "ja")
