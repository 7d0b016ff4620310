"""Outlook ``.msg`` files (an OLE compound file, [MS-OXMSG]): read as an attached mail.

A forwarded ``.msg`` carries a whole message: headers, a body (plain text, HTML and/or
compressed RTF) and attachments, among them other messages. This sanitizer only reads: it
takes those properties from the compound file (olefile) and returns them as a
``message/rfc822`` (:mod:`sanitizers.cdr.mailparts`) with action ``converted`` and reason
``unpacked``; the pipeline handles that like any attached mail (flattened under a separator,
its files through the same policy, shown as ``転送.msg › 見積書.xlsx``). Nothing of the
compound file is delivered.

Threat model: the file is hostile (a broken sector chain, huge or missing streams, lying
property types, strings in any code page, messages nested in messages). olefile reads it in
memory with its own checks; a file it cannot read is ``malformed``. Nested messages are
bounded by ``limits.max_depth`` (``limit_depth``) and attachments by ``limits.max_parts``
(``limit_parts``). The headers shown (From, To, Cc, Date, Subject) are rebuilt from the
message's properties, never copied from its transport headers.

Attachments by their attach method ([MS-OXCMSG] ``PidTagAttachMethod``): a file (1) is handed
on for the pipeline to decide like any file (a ``.docm`` is disarmed, an ``.exe`` removed, a
``.msg`` file unpacked in turn); an embedded message (5) becomes an attached ``message/rfc822``,
read the same way one level deeper, and one whose storage holds no message is ``malformed``;
an OLE object (6: a compound storage a program would activate) and a reference to a file
elsewhere (2, 4, 7: a path or a web address) are never handed on: each is withheld and listed
by name among the ``.msg``'s entries (``embedded_object``, ``external_reference``), so the
notice names it as removed. A ``.msg`` inside an archive is not unpacked (``unsupported_type``).
"""

from __future__ import annotations

import codecs
import io
import struct
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any, ClassVar

import compressed_rtf
import olefile

from sanitizers.cdr import mailparts
from sanitizers.cdr.base import CdrContext, CdrOutcome, CdrSanitizer
from sanitizers.cdr.rtf_text import rtf_body
from sanitizers.errors import LimitExceeded, SanitizeError
from sanitizers.policy import Limits
from sanitizers.vocabulary import Action, Reason, RemovedItem

_PROPERTIES = "__properties_version1.0"
_ATTACHMENT = "__attach_version1.0_#"
_RECIPIENT = "__recip_version1.0_#"
_EMBEDDED = "__substg1.0_3701000D"
# Property ids ([MS-OXPROPS]).
_SUBJECT = 0x0037
_SUBMIT_TIME = 0x0039
_DELIVERY_TIME = 0x0E06
_SENDER_NAME = 0x0C1A
_SENDER_ADDRESS = 0x0C1F
_SENDER_SMTP = 0x5D01
_DISPLAY_TO = 0x0E04
_DISPLAY_CC = 0x0E03
_BODY = 0x1000
_HTML = 0x1013
_RTF_COMPRESSED = 0x1009
_MESSAGE_CODEPAGE = 0x3FFD
_INTERNET_CODEPAGE = 0x3FDE
_DISPLAY_NAME = 0x3001
_EMAIL_ADDRESS = 0x3003
_SMTP_ADDRESS = 0x39FE
_RECIPIENT_TYPE = 0x0C15
_ATTACH_DATA = 0x3701
_ATTACH_METHOD = 0x3705
_ATTACH_LONG_NAME = 0x3707
_ATTACH_NAME = 0x3704
# Property types.
_UNICODE = 0x001F
_STRING8 = 0x001E
_BINARY = 0x0102
_LONG = 0x0003
_SYSTIME = 0x0040
# Fixed-size properties follow a header of 32 bytes in a message, 24 in an embedded message,
# 8 in an attachment or recipient.
_TOP_HEADER, _EMBEDDED_HEADER, _CHILD_HEADER = 32, 24, 8
_FILETIME_EPOCH = datetime(1601, 1, 1, tzinfo=UTC)
# Code pages whose Python codec name differs from "cp<number>".
_CODEPAGE_CHARSETS = {
    20127: "us-ascii", 20932: "euc-jp", 28591: "iso-8859-1", 50220: "iso-2022-jp",
    50221: "iso-2022-jp", 50222: "iso-2022-jp", 51932: "euc-jp", 65001: "utf-8",
}  # fmt: skip
_MAX_RECIPIENTS = 500
# Attach methods whose attachment is never handed on (besides a storage that is not a
# message), and why it is withheld.
_EMBEDDED_MESSAGE = 5
_WITHHELD_METHODS = {
    2: (Reason.EXTERNAL_REFERENCE, "attached by reference"),
    4: (Reason.EXTERNAL_REFERENCE, "attached by reference only"),
    6: (Reason.EMBEDDED_OBJECT, "an OLE object"),
    7: (Reason.EXTERNAL_REFERENCE, "attached by web reference"),
}
_INSIDE = " › "
# What the .msg reports as removed for each kind of withheld attachment.
_REMOVED = {
    Reason.EMBEDDED_OBJECT: RemovedItem.OLE_OBJECT,
    Reason.EXTERNAL_REFERENCE: RemovedItem.EXTERNAL_RELATIONSHIP,
}


def charset_of(codepage: int | None) -> str | None:
    """The charset name of a Windows code page, or ``None`` when Python does not know it."""
    if codepage is None:
        return None
    name = _CODEPAGE_CHARSETS.get(codepage, f"cp{codepage}")
    try:
        codecs.lookup(name)
    except LookupError:
        return None
    return name


class _Storage:
    """The properties of one message, attachment or recipient storage."""

    def __init__(self, ole: Any, path: list[str], header: int) -> None:
        self.ole = ole
        self.path = path
        self.fixed: dict[int, tuple[int, bytes]] = {}
        stream = [*path, _PROPERTIES]
        if ole.exists("/".join(stream)):
            raw = ole.openstream(stream).read()
            for offset in range(header, len(raw) - 15, 16):
                kind, prop = struct.unpack_from("<HH", raw, offset)
                self.fixed[prop] = (kind, raw[offset + 8 : offset + 16])

    def stream(self, prop: int, kind: int) -> bytes | None:
        path = [*self.path, f"__substg1.0_{prop:04X}{kind:04X}"]
        if not self.ole.exists("/".join(path)):
            return None
        return bytes(self.ole.openstream(path).read())

    def text(self, prop: int, charset: str | None) -> str | None:
        value = self.stream(prop, _UNICODE)
        if value is not None:
            return value.decode("utf-16-le", "replace").rstrip("\x00")
        value = self.stream(prop, _STRING8)
        if value is not None:
            return value.decode(charset or "cp1252", "replace").rstrip("\x00")
        return None

    def long(self, prop: int) -> int | None:
        found = self.fixed.get(prop)
        if found is None or found[0] != _LONG:
            return None
        return int(struct.unpack("<i", found[1][:4])[0])

    def time(self, prop: int) -> datetime | None:
        found = self.fixed.get(prop)
        if found is None or found[0] != _SYSTIME:
            return None
        ticks = int(struct.unpack("<Q", found[1])[0])
        try:
            return _FILETIME_EPOCH + timedelta(microseconds=ticks // 10)
        except OverflowError:
            return None

    def children(self, prefix: str) -> list[list[str]]:
        """Sub-storages whose name starts with ``prefix`` (attachments, recipients), in order."""
        depth = len(self.path)
        found = {
            tuple(entry[: depth + 1])
            for entry in self.ole.listdir(streams=True, storages=True)
            if len(entry) > depth and entry[:depth] == self.path and entry[depth].startswith(prefix)
        }
        return [list(entry) for entry in sorted(found)]


def _addresses(message: _Storage, charset: str | None) -> dict[int, list[tuple[str, str]]]:
    """Recipients by type (1 To, 2 Cc; Bcc is not shown)."""
    found: dict[int, list[tuple[str, str]]] = {}
    for path in message.children(_RECIPIENT)[:_MAX_RECIPIENTS]:
        recipient = _Storage(message.ole, path, _CHILD_HEADER)
        address = recipient.text(_SMTP_ADDRESS, charset) or ""
        if "@" not in address:
            address = recipient.text(_EMAIL_ADDRESS, charset) or ""
            address = address if "@" in address else ""
        name = recipient.text(_DISPLAY_NAME, charset) or ""
        found.setdefault(recipient.long(_RECIPIENT_TYPE) or 1, []).append((name, address))
    return found


def _headers(message: _Storage, charset: str | None) -> list[tuple[str, Any]]:
    headers: list[tuple[str, Any]] = []
    sender = message.text(_SENDER_SMTP, charset) or message.text(_SENDER_ADDRESS, charset) or ""
    name = message.text(_SENDER_NAME, charset) or ""
    if sender or name:
        headers.append(("From", [(name, sender if "@" in sender else "")]))
    recipients = _addresses(message, charset)
    for kind, header, display in ((1, "To", _DISPLAY_TO), (2, "Cc", _DISPLAY_CC)):
        if recipients.get(kind):
            headers.append((header, recipients[kind]))
        else:
            shown = message.text(display, charset)
            if shown:
                headers.append((header, shown))
    sent = message.time(_SUBMIT_TIME) or message.time(_DELIVERY_TIME)
    if sent is not None:
        headers.append(("Date", format_datetime(sent)))
    subject = message.text(_SUBJECT, charset)
    if subject is not None:
        headers.append(("Subject", subject))
    return headers


def _bodies(message: _Storage, charset: str | None, ctx: CdrContext) -> tuple[Any, Any]:
    plain = html = None
    body = message.stream(_BODY, _UNICODE)
    if body is not None:
        plain = mailparts.Text(body.decode("utf-16-le", "replace").rstrip("\x00").encode(), "utf-8")
    else:
        raw = message.stream(_BODY, _STRING8)
        if raw is not None:
            plain = mailparts.Text(raw.rstrip(b"\x00"), charset)
    raw_html = message.stream(_HTML, _BINARY)
    if raw_html is not None:
        html_charset = charset_of(message.long(_INTERNET_CODEPAGE)) or charset
        html = mailparts.Text(raw_html.rstrip(b"\x00"), html_charset)
    else:
        text_html = message.stream(_HTML, _UNICODE)
        if text_html is not None:
            decoded = text_html.decode("utf-16-le", "replace").rstrip("\x00")
            html = mailparts.Text(decoded.encode(), "utf-8")
    if html is None:
        compressed = message.stream(_RTF_COMPRESSED, _BINARY)
        if compressed is not None:
            try:
                rtf = compressed_rtf.decompress(compressed)
            except Exception as exc:
                raise SanitizeError(Reason.MALFORMED, f"RTF body: {type(exc).__name__}") from exc
            shown = rtf_body(
                rtf, max_depth=ctx.policy.rtf_max_depth, max_chars=ctx.policy.max_file_bytes
            )
            text = mailparts.Text(shown.text.encode("utf-8", "surrogatepass"), "utf-8")
            if shown.kind == "html":
                html = text
            elif plain is None:
                plain = text
    return plain, html


def _withheld(method: int | None, *, storage: bool) -> tuple[Reason, str] | None:
    """Why an attachment is not handed on, or ``None`` for a file. ``storage``: it holds a
    storage that is not a message (an OLE object, whatever method it declares)."""
    if storage:
        if method == _EMBEDDED_MESSAGE:
            return Reason.MALFORMED, "an embedded message without properties"
        return Reason.EMBEDDED_OBJECT, "an OLE object"
    return _WITHHELD_METHODS.get(method or 0)


def read_message(
    ole: Any,
    path: list[str],
    ctx: CdrContext,
    depth: int = 0,
    withheld: list[tuple[str, CdrOutcome]] | None = None,
    shown_in: str = "",
) -> mailparts.Mail:
    """The headers, body, files and nested messages of the message stored at ``path``;
    attachments never handed on are added to ``withheld`` (named under ``shown_in``, the
    nested messages' names)."""
    withheld = [] if withheld is None else withheld
    limits = ctx.full_policy.limits if ctx.full_policy is not None else Limits()
    max_depth = limits.max_depth
    max_parts = limits.max_parts
    if depth > max_depth:
        raise LimitExceeded(Reason.LIMIT_DEPTH, f".msg messages nested over {max_depth}")
    message = _Storage(ole, path, _EMBEDDED_HEADER if path else _TOP_HEADER)
    if not (message.fixed or any(name.startswith("__substg1.0_") for name in _names(ole, path))):
        raise SanitizeError(Reason.MALFORMED, "no message properties")
    codepage = message.long(_MESSAGE_CODEPAGE) or message.long(_INTERNET_CODEPAGE)
    charset = charset_of(codepage)
    mail = mailparts.Mail(headers=_headers(message, charset))
    mail.plain, mail.html = _bodies(message, charset, ctx)
    attachments = message.children(_ATTACHMENT)
    if len(attachments) > max_parts:
        raise LimitExceeded(Reason.LIMIT_PARTS, f"{len(attachments)} attachments")
    for attachment_path in attachments:
        attachment = _Storage(ole, attachment_path, _CHILD_HEADER)
        name = (
            attachment.text(_ATTACH_LONG_NAME, charset)
            or attachment.text(_ATTACH_NAME, charset)
            or attachment.text(_DISPLAY_NAME, charset)
            or ""
        )
        inner = [*attachment_path, _EMBEDDED]
        method = attachment.long(_ATTACH_METHOD)
        if ole.exists("/".join([*inner, _PROPERTIES])):  # an attached message, not a file
            nested = read_message(
                ole, inner, ctx, depth + 1, withheld, f"{shown_in}{name}{_INSIDE}"
            )
            nested.name = name
            mail.messages.append(nested)
            continue
        withholding = _withheld(method, storage=ole.exists("/".join(inner)))
        if withholding is not None:
            reason, what = withholding
            withheld.append((f"{shown_in}{name or what}", CdrOutcome.drop(reason, what)))
            continue
        mail.files.append(mailparts.File(name, attachment.stream(_ATTACH_DATA, _BINARY) or b""))
    return mail


def _names(ole: Any, path: list[str]) -> set[str]:
    depth = len(path)
    return {
        entry[depth]
        for entry in ole.listdir(streams=True, storages=True)
        if len(entry) > depth and entry[:depth] == path
    }


class MsgSanitizer(CdrSanitizer):
    """Reads an Outlook ``.msg`` into an attached mail for the pipeline; see the module
    docstring."""

    kind: ClassVar[str] = "msg"

    def rebuild(self, untrusted_data: bytes, filename: str, ctx: CdrContext) -> CdrOutcome:
        if ctx.depth > 0:
            raise SanitizeError(Reason.UNSUPPORTED_TYPE, ".msg inside an archive")
        if not untrusted_data.startswith(olefile.MAGIC):
            raise SanitizeError(Reason.MALFORMED, "not a compound file")
        withheld: list[tuple[str, CdrOutcome]] = []
        try:
            with olefile.OleFileIO(io.BytesIO(untrusted_data)) as ole:
                mail = read_message(ole, [], ctx, withheld=withheld)
        except (SanitizeError, LimitExceeded):
            raise
        except Exception as exc:
            raise SanitizeError(Reason.MALFORMED, f"olefile: {type(exc).__name__}") from exc
        return CdrOutcome(
            action=Action.CONVERTED,
            reason=Reason.UNPACKED,
            data=mailparts.compose(mail),
            filename=filename,
            content_type=mailparts.MESSAGE_TYPE,
            removed=tuple(
                sorted({_REMOVED[c.reason] for _n, c in withheld if c.reason in _REMOVED})
            ),
            children=tuple(withheld),
        )

    def verify(self, data: bytes, ctx: CdrContext) -> None:
        mailparts.verify(data)
