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
(:func:`sanitizers.safetext.body_text`). One of the pre-OLE generations has no readable text
stream: it is removed (``unsupported_type``).

A compressed 一太郎 file (``.jtdc``, ``.jttc``) is a compound file whose ``JSCompDocument``
stream is a ``JustCompressedDocument`` header followed by an LZH archive of one ``-lh5-``
member: the whole uncompressed document, itself a compound file with its ``DocumentText``. Its
text is read the same way, once the member is decoded by the project's bounded LHA decoder
(:mod:`sanitizers.cdr.lzharchive`) under the archive limits (``zip_max_total_bytes`` and
``zip_max_ratio``, like any LZH; CRC-16 checked). Anything else in that stream (another
header, several members, a compressed document inside the compressed one) is not guessed at:
the file is removed (``unsupported_type``; the notice says no text could be extracted from
it), and a member that lies or breaks is ``malformed``.
"""

from __future__ import annotations

import io
import struct
from typing import ClassVar

import olefile

from sanitizers.cdr.base import CdrContext, CdrOutcome, CdrSanitizer
from sanitizers.cdr.lzharchive import LzhReader, is_lzh
from sanitizers.cdr.settings import CdrPolicy
from sanitizers.errors import LimitExceeded, SanitizeError
from sanitizers.filenames import delivered_name
from sanitizers.safetext import body_text
from sanitizers.vocabulary import Action, Reason

TEXT_STREAM = "DocumentText"
COMPRESSED_STREAM = "JSCompDocument"
_HEADER = b"SsmgV.01"
# A JSCompDocument stream: the header's length (little-endian), this name, fields whose meaning
# is not public, then the LZH archive.
_COMPRESSED_NAME = b"JustCompressedDocument\x00"
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


def decompress_document(untrusted_stream: bytes, limits: CdrPolicy) -> bytes:
    """The uncompressed document held in a ``JSCompDocument`` stream (bounded, CRC-checked)."""
    header = int.from_bytes(untrusted_stream[:2], "little")
    archive = untrusted_stream[header:]
    named = untrusted_stream[2:].startswith(_COMPRESSED_NAME)
    if not named or header < 2 + len(_COMPRESSED_NAME) or not is_lzh(archive):
        raise SanitizeError(Reason.UNSUPPORTED_TYPE, "JSCompDocument of an unknown layout")
    reader = LzhReader(archive)
    members = reader.members()
    if len(members) != 1 or members[0].is_dir:
        raise SanitizeError(Reason.UNSUPPORTED_TYPE, f"JSCompDocument of {len(members)} members")
    (member,) = members
    if member.size > min(limits.zip_max_total_bytes, limits.max_file_bytes):
        raise LimitExceeded(Reason.LIMIT_SIZE, f"compressed 一太郎 of {member.size} bytes")
    ratio = member.size / max(member.packed or 0, 1)
    if member.size >= limits.zip_ratio_min_bytes and ratio > limits.zip_max_ratio:
        raise LimitExceeded(Reason.LIMIT_RATIO, f"compressed 一太郎 ratio {ratio:.0f}")
    document = reader.read(member, member.size)
    if len(document) != member.size:
        raise SanitizeError(Reason.MALFORMED, "JSCompDocument shorter than declared")
    return document


def extract_text(
    untrusted_data: bytes,
    limits: CdrPolicy,
    *,
    max_chars: int | None = None,
    compressed: bool = True,
) -> str:
    """The text of a 一太郎 document, compressed (``compressed``: one level allowed) or not,
    at most ``max_chars`` characters (default: what fits ``max_file_bytes`` as UTF-8); raises
    for one whose text cannot be read."""
    if max_chars is None:
        max_chars = limits.max_file_bytes // 4  # at most 4 bytes per character in UTF-8
    if not untrusted_data.startswith(olefile.MAGIC):
        raise SanitizeError(Reason.UNSUPPORTED_TYPE, "not a compound file (an older 一太郎?)")
    inner: bytes | None = None
    try:
        with olefile.OleFileIO(io.BytesIO(untrusted_data)) as ole:
            if ole.exists(TEXT_STREAM):
                stream = ole.openstream(TEXT_STREAM).read()
            elif ole.exists(COMPRESSED_STREAM) and compressed:
                inner = decompress_document(ole.openstream(COMPRESSED_STREAM).read(), limits)
            elif ole.exists(COMPRESSED_STREAM):
                raise SanitizeError(Reason.UNSUPPORTED_TYPE, "a compressed 一太郎 inside another")
            else:
                raise SanitizeError(Reason.MALFORMED, "no DocumentText stream")
    except (SanitizeError, LimitExceeded):
        raise
    except Exception as exc:
        raise SanitizeError(Reason.MALFORMED, f"olefile: {type(exc).__name__}") from exc
    if inner is not None:
        return extract_text(inner, limits, max_chars=max_chars, compressed=False)
    return document_text(stream, max_chars)


class IchitaroSanitizer(CdrSanitizer):
    """Delivers only the text of a 一太郎 document; see the module docstring."""

    kind: ClassVar[str] = "ichitaro"

    def rebuild(self, untrusted_data: bytes, filename: str, ctx: CdrContext) -> CdrOutcome:
        text = extract_text(untrusted_data, ctx.policy)
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
