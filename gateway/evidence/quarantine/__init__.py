"""The quarantine: every original message, kept on the Internet side as evidence.

:mod:`.store` (:class:`Quarantine`) puts the parts together: :mod:`.entries` (what is
recorded: settings, errors, one entry and its text and time forms), :mod:`.files` (the
compressed originals on disk) and :mod:`.index` (its rows in the store). The names below are the
quarantine's public face; import them from here.
"""

from gateway.evidence.quarantine.entries import (
    DELIVERY_STATES,
    ENTRY_STATES,
    WORKFLOW_STATES,
    QuarantineElsewhereError,
    QuarantineEntry,
    QuarantineError,
    QuarantineIntegrityError,
    QuarantineNotFoundError,
    QuarantineStoreError,
    clean_text,
    format_time,
    is_valid_id,
)
from gateway.evidence.quarantine.store import Quarantine

__all__ = [
    "DELIVERY_STATES",
    "ENTRY_STATES",
    "WORKFLOW_STATES",
    "Quarantine",
    "QuarantineElsewhereError",
    "QuarantineEntry",
    "QuarantineError",
    "QuarantineIntegrityError",
    "QuarantineNotFoundError",
    "QuarantineStoreError",
    "clean_text",
    "format_time",
    "is_valid_id",
]
