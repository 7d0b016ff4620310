"""The one vocabulary of outcomes used in reports, audit lines, metric labels and tests.

Values are stable strings: operators grep for them and dashboards group by them, so a value
is never renamed, only added.
"""

from __future__ import annotations

from enum import StrEnum


class Action(StrEnum):
    """What happened to one MIME part."""

    KEPT = "kept"
    CONVERTED = "converted"
    SANITIZED = "sanitized"
    REMOVED = "removed"
    HELD = "held"


class Verdict(StrEnum):
    """What happens to the whole message. Only the SMTP layer turns this into reply codes."""

    DELIVER = "deliver"
    HOLD = "hold"
    REJECT = "reject"


class Reason(StrEnum):
    """Why a part got its action, or why a message got its verdict."""

    # Bodies and text.
    TEXT_BODY = "text_body"  # a text/plain body kept as text
    HTML_BODY = "html_body"  # an HTML body converted to text
    ALTERNATIVE = "alternative"  # an alternative dropped because a better one exists
    TEXT_CONVERTED = "text_converted"  # another text type converted to plain text
    ATTACHED_MESSAGE = "attached_message"  # a message/rfc822 part, flattened into the body
    EMPTY = "empty"  # a part with no content
    # Attachments, by policy or by what they are.
    POLICY = "policy"  # removed because policy says so for this type
    EXECUTABLE = "executable"
    TYPE_MISMATCH = "type_mismatch"
    UNSUPPORTED_TYPE = "unsupported_type"
    UNSUPPORTED_ARCHIVE = "unsupported_archive"
    MESSAGE_PARTIAL = "message_partial"
    EXTERNAL_BODY = "external_body"
    # Findings of content disarm (CDR).
    CLEAN = "clean"  # checked, nothing dangerous found
    MACRO = "macro"
    ACTIVE_CONTENT = "active_content"
    EMBEDDED_OBJECT = "embedded_object"
    EXTERNAL_REFERENCE = "external_reference"
    METADATA = "metadata"
    ENCRYPTED = "encrypted"
    ENCRYPTED_ARCHIVE = "encrypted_archive"
    PATH_TRAVERSAL = "path_traversal"
    MALWARE = "malware"
    SCANNER_UNAVAILABLE = "scanner_unavailable"
    NOT_SCANNED = "not_scanned"  # a file no malware scanner looked at (the scanner is off)
    # Faults while sanitizing: the part is removed, never kept.
    CRASH = "crash"
    TIMEOUT = "timeout"
    ERROR = "error"
    VERIFY_FAILED = "verify_failed"
    # Malformed input, decided one deterministic way and recorded.
    MALFORMED = "malformed"
    LOSSY_DECODE = "lossy_decode"
    # Named limits.
    LIMIT_SIZE = "limit_size"
    LIMIT_HEADER = "limit_header"
    LIMIT_LINE = "limit_line"
    LIMIT_PARTS = "limit_parts"
    LIMIT_DEPTH = "limit_depth"
    LIMIT_TIME = "limit_time"
    LIMIT_RATIO = "limit_ratio"
    LIMIT_ENTRIES = "limit_entries"
    LIMIT_PIXELS = "limit_pixels"
