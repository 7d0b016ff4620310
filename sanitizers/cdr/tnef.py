"""Outlook's TNEF (``winmail.dat``, ``application/ms-tnef``): unpacked into the message's parts.

Outlook sends a message's real attachments and its rich body inside one TNEF attachment,
which other mail clients show as an unreadable ``winmail.dat``. This sanitizer only unpacks:
it reads the TNEF stream (tnefparse, LGPL-3.0, used unmodified) and returns its content as
MIME (:mod:`sanitizers.cdr.mailparts`) with action ``converted`` and reason ``unpacked``; the
pipeline then treats every file and the body in it as the message's own parts, with the same
policy and notice (each shown as ``winmail.dat › 見積書.xlsx``). Nothing of the TNEF stream is
delivered.

Threat model: the stream is hostile (truncated, lying lengths, millions of tiny attributes,
messages nested in messages, names and bodies in any code page). Attributes are counted before
tnefparse reads them (``cdr.tnef_max_attributes``, ``limit_entries``): tnefparse copies the rest
of the stream for every attribute, so their number bounds its time. Nested messages are
bounded by ``limits.max_depth`` (``limit_depth``). The RTF body becomes text or HTML
(:mod:`sanitizers.cdr.rtf_text`); an RTF body that cannot be decompressed removes the whole
file (``malformed``). A ``winmail.dat`` inside an archive is not unpacked (``unsupported_type``):
only the pipeline can turn it into parts of the message.
"""

from __future__ import annotations

import logging
import struct
from typing import Any, ClassVar

import compressed_rtf
from tnefparse import TNEF
from tnefparse.properties import MAPI_ATTACH_LONG_FILENAME

from sanitizers.cdr import mailparts
from sanitizers.cdr.base import CdrContext, CdrOutcome, CdrSanitizer
from sanitizers.cdr.rtf_text import rtf_body
from sanitizers.errors import LimitExceeded, SanitizeError
from sanitizers.policy import Limits
from sanitizers.vocabulary import Action, Reason

# tnefparse logs every odd attribute at WARNING/ERROR: the outcome says what matters.
logging.getLogger("tnefparse").setLevel(logging.CRITICAL)

SIGNATURE = b"\x78\x9f\x3e\x22"
_HEADER = 6  # signature and key
_FRAME = 11  # level (1), id (4), length (4) and checksum (2) around each attribute


def count_attributes(untrusted_data: bytes, limit: int) -> int:
    """The number of attributes in the stream, walking only their framing; raises
    ``limit_entries`` past ``limit``."""
    offset, count = _HEADER, 0
    while offset + _FRAME + 1 < len(untrusted_data):
        (length,) = struct.unpack_from("<I", untrusted_data, offset + 5)
        offset += length + _FRAME
        count += 1
        if count > limit:
            raise LimitExceeded(Reason.LIMIT_ENTRIES, f"over {limit} TNEF attributes")
    return count


def _attachment_name(attachment: Any, codepage: str) -> str:
    """The long file name when there is one, else the 8.3 title in the stream's code page
    (tnefparse reads that as UTF-8, which fails on a Shift_JIS name)."""
    for attribute in attachment.mapi_attrs:
        if attribute.name == MAPI_ATTACH_LONG_FILENAME and isinstance(attribute.data, str):
            return str(attribute.data).rstrip("\x00")
    title = getattr(attachment, "_name", b"")
    if isinstance(title, bytes):
        return title.decode(codepage, "replace").rstrip("\x00")
    return str(title).rstrip("\x00")


def _text(value: object, codepage: str) -> mailparts.Text:
    if isinstance(value, str):
        return mailparts.Text(value.encode("utf-8", "surrogatepass"), "utf-8")
    assert isinstance(value, bytes)
    return mailparts.Text(value, codepage)


def to_mail(tnef: Any, ctx: CdrContext, depth: int = 0) -> mailparts.Mail:
    """The body, files and nested messages of a parsed TNEF stream."""
    limits = ctx.full_policy.limits if ctx.full_policy is not None else Limits()
    max_depth = limits.max_depth
    if depth > max_depth:
        raise LimitExceeded(Reason.LIMIT_DEPTH, f"TNEF messages nested over {max_depth}")
    codepage = str(tnef.codepage or "cp1252")
    mail = mailparts.Mail()
    if tnef.body:
        mail.plain = _text(tnef.body, codepage)
    if tnef.htmlbody:
        mail.html = _text(tnef.htmlbody, codepage)
    elif getattr(tnef, "_rtfbody", None):
        try:
            rtf = compressed_rtf.decompress(tnef._rtfbody + b"\x00")
        except Exception as exc:
            raise SanitizeError(Reason.MALFORMED, f"RTF body: {type(exc).__name__}") from exc
        body = rtf_body(
            rtf, max_depth=ctx.policy.rtf_max_depth, max_chars=ctx.policy.max_file_bytes
        )
        text = mailparts.Text(body.text.encode("utf-8", "surrogatepass"), "utf-8")
        if body.kind == "html":
            mail.html = text
        elif mail.plain is None:
            mail.plain = text
    for attachment in tnef.attachments:
        embedded = getattr(attachment, "embed", None)
        if embedded is not None:
            mail.messages.append(to_mail(embedded, ctx, depth + 1))
        else:
            name = _attachment_name(attachment, codepage)
            mail.files.append(mailparts.File(name, bytes(attachment.data or b"")))
    return mail


class TnefSanitizer(CdrSanitizer):
    """Unpacks a ``winmail.dat`` into MIME parts for the pipeline; see the module docstring."""

    kind: ClassVar[str] = "tnef"

    def rebuild(self, untrusted_data: bytes, filename: str, ctx: CdrContext) -> CdrOutcome:
        if ctx.depth > 0:
            raise SanitizeError(Reason.UNSUPPORTED_TYPE, "TNEF inside an archive")
        if not untrusted_data.startswith(SIGNATURE):
            raise SanitizeError(Reason.MALFORMED, "not a TNEF stream")
        count_attributes(untrusted_data, ctx.policy.tnef_max_attributes)
        try:
            tnef = TNEF(untrusted_data, do_checksum=False)
        except (ValueError, IndexError, struct.error, UnicodeDecodeError, LookupError) as exc:
            raise SanitizeError(Reason.MALFORMED, f"tnefparse: {type(exc).__name__}") from exc
        mail = to_mail(tnef, ctx)
        if mail.is_empty():
            return CdrOutcome.drop(Reason.EMPTY, "no body and no attachment in the TNEF")
        return CdrOutcome(
            action=Action.CONVERTED,
            reason=Reason.UNPACKED,
            data=mailparts.compose(mail),
            filename=filename,
            content_type=mailparts.PARTS_TYPE,
        )

    def verify(self, data: bytes, ctx: CdrContext) -> None:
        mailparts.verify(data)
