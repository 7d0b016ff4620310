"""一太郎 documents and templates (``.jtd``, ``.jtt``; JustSystems): never delivered; at most
their text.

一太郎 files are compound files (OLE2) whose ``DocumentText`` stream holds the text as UTF-16BE
in ``TextV.01`` segments after a ``SsmgV.01`` header; the rest (layout, embedded objects,
``DocumentMacro`` storages) is a format only 一太郎 reads, and its reader has been the target
of exploits sent to Japanese government offices. Nothing here checks or rebuilds that: the
shipped policy removes the kind (the notice names it as a 一太郎 document); with the kind set
to "sanitize" (or "keep_if_clean") the text alone is delivered as a UTF-8 ``.txt`` file, action
``converted`` with reason ``text_extracted``, so the reader knows layout, pictures and tables
were left behind.

Threat model: the file is hostile (broken sector chains, lying segment lengths, control
characters in the text). olefile reads the compound file in memory; each segment's length is
bounded by the stream; controls other than newlines and tabs are dropped
(:func:`sanitizers.safetext.body_text`). A compressed 一太郎 file (``.jtdc``, ``.jttc``: a
``JSCompDocument`` stream) or one of the pre-OLE generations has no readable text stream: it is
removed (``unsupported_type``).
"""

from __future__ import annotations

import io
import struct
from typing import ClassVar

import olefile

from sanitizers.cdr.base import CdrContext, CdrOutcome, CdrSanitizer
from sanitizers.errors import LimitExceeded, SanitizeError
from sanitizers.filenames import delivered_name
from sanitizers.safetext import body_text
from sanitizers.vocabulary import Action, Reason

TEXT_STREAM = "DocumentText"
COMPRESSED_STREAM = "JSCompDocument"
_HEADER = b"SsmgV.01"
_SEGMENT = b"TextV.01"


def document_text(untrusted_stream: bytes, max_chars: int) -> str:
    """The text of every ``TextV.01`` segment of a ``DocumentText`` stream, in order."""
    if not untrusted_stream.startswith(_HEADER):
        raise SanitizeError(Reason.MALFORMED, "DocumentText without its header")
    segments: list[str] = []
    chars = 0
    position = untrusted_stream.find(_SEGMENT)
    while position >= 0:
        start = position + len(_SEGMENT) + 4
        if start > len(untrusted_stream):
            raise SanitizeError(Reason.MALFORMED, "a text segment is cut short")
        (units,) = struct.unpack_from(">I", untrusted_stream, start - 4)
        end = start + 2 * units
        if end > len(untrusted_stream):
            raise SanitizeError(Reason.MALFORMED, "a text segment runs past the stream")
        chars += units
        if chars > max_chars:
            raise LimitExceeded(Reason.LIMIT_SIZE, f"over {max_chars} characters of text")
        segments.append(untrusted_stream[start:end].decode("utf-16-be", "replace"))
        position = untrusted_stream.find(_SEGMENT, end)
    return body_text("\n".join(segments))


def extract_text(untrusted_data: bytes, max_chars: int) -> str:
    """The text of a 一太郎 document; raises for one whose text cannot be read."""
    if not untrusted_data.startswith(olefile.MAGIC):
        raise SanitizeError(Reason.UNSUPPORTED_TYPE, "not a compound file (an older 一太郎?)")
    try:
        with olefile.OleFileIO(io.BytesIO(untrusted_data)) as ole:
            if ole.exists(COMPRESSED_STREAM) and not ole.exists(TEXT_STREAM):
                raise SanitizeError(Reason.UNSUPPORTED_TYPE, "compressed 一太郎 (jtdc, jttc)")
            if not ole.exists(TEXT_STREAM):
                raise SanitizeError(Reason.MALFORMED, "no DocumentText stream")
            stream = ole.openstream(TEXT_STREAM).read()
    except SanitizeError:
        raise
    except Exception as exc:
        raise SanitizeError(Reason.MALFORMED, f"olefile: {type(exc).__name__}") from exc
    return document_text(stream, max_chars)


class IchitaroSanitizer(CdrSanitizer):
    """Delivers only the text of a 一太郎 document; see the module docstring."""

    kind: ClassVar[str] = "ichitaro"

    def rebuild(self, untrusted_data: bytes, filename: str, ctx: CdrContext) -> CdrOutcome:
        # At most 4 bytes per character in UTF-8: the text always fits the output limit.
        text = extract_text(untrusted_data, ctx.policy.max_file_bytes // 4)
        if not text.strip():
            raise SanitizeError(Reason.EMPTY, "no text in the document")
        return CdrOutcome(
            action=Action.CONVERTED,
            reason=Reason.TEXT_EXTRACTED,
            data=text.encode("utf-8"),
            filename=delivered_name(filename, "text/plain"),
            content_type="text/plain; charset=utf-8",
        )

    def verify(self, data: bytes, ctx: CdrContext) -> None:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SanitizeError(Reason.VERIFY_FAILED, "not UTF-8") from exc
        if body_text(text) != text:
            raise SanitizeError(Reason.VERIFY_FAILED, "control characters left")
