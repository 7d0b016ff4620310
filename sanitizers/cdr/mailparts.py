"""The one writer of the MIME that an Outlook container (TNEF, ``.msg``) is turned into.

A ``winmail.dat`` or a ``.msg`` file is read in a sanitizer process and handed back to the
pipeline as MIME it composes here: a body (text and/or HTML, still to be converted to text by
the pipeline), each contained file as an attachment, each contained message as an attached
``message/rfc822``. The pipeline then parses that MIME with its usual limits and treats every
part as one of the message's own (:mod:`sanitizers.pipeline`): same policy, same notice.

Threat model: every value comes from the hostile container. Nothing from it becomes MIME
syntax: header values and file names lose their control characters (no header injection,
no folding tricks) and are RFC 2047/2231-encoded by the standard library; bodies and files
are base64-encoded; text in a code page Python does not know is sent as bytes with no charset
(the pipeline's charset detection reads it).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from email import message_from_bytes
from email.encoders import encode_base64
from email.header import Header
from email.message import Message
from email.mime.application import MIMEApplication
from email.mime.message import MIMEMessage
from email.mime.multipart import MIMEMultipart
from email.mime.nonmultipart import MIMENonMultipart
from email.policy import compat32
from email.utils import formataddr

from sanitizers.errors import SanitizeError
from sanitizers.vocabulary import Reason

_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_MAX_HEADER_CHARS = 2000
_MAX_NAME_CHARS = 255
HEADERS = ("From", "To", "Cc", "Date", "Subject")
# The content types of a sanitizer's result that the pipeline unpacks into the message: the
# parts of the message itself (TNEF), or a message attached to it (.msg).
PARTS_TYPE = "multipart/mixed"
MESSAGE_TYPE = "message/rfc822"


@dataclass(slots=True)
class Text:
    """A body as the container holds it: decoded text, or bytes in a declared charset."""

    data: bytes
    charset: str | None  # None: unknown, left to the pipeline's detection


@dataclass(slots=True)
class File:
    """One contained file, as the sender named it."""

    name: str
    data: bytes


@dataclass(slots=True)
class Mail:
    """What a container holds. ``headers`` are (name, value) of :data:`HEADERS`; an address
    header's value is a list of (display name, address)."""

    headers: list[tuple[str, str | list[tuple[str, str]]]] = field(default_factory=list)
    plain: Text | None = None
    html: Text | None = None
    files: list[File] = field(default_factory=list)
    messages: list[Mail] = field(default_factory=list)
    name: str = ""  # for a contained message: its attachment's name

    def is_empty(self) -> bool:
        return not (self.plain or self.html or self.files or self.messages)


def _clean(value: str, limit: int) -> str:
    return _CONTROLS.sub(" ", value).strip()[:limit]


def _text_part(text: Text, subtype: str) -> Message:
    part = MIMENonMultipart("text", subtype)
    if text.charset is not None:
        part.set_param("charset", text.charset)
    part.set_payload(text.data)
    encode_base64(part)
    return part


def _file_part(file: File) -> Message:
    part = MIMEApplication(file.data, "octet-stream")
    name = _clean(file.name, _MAX_NAME_CHARS) or "file"
    part.add_header("Content-Disposition", "attachment", filename=("utf-8", "", name))
    return part


def _header_value(value: str | list[tuple[str, str]]) -> str:
    if isinstance(value, str):
        return Header(_clean(value, _MAX_HEADER_CHARS), "utf-8").encode()
    addresses = []
    for display, address in value[:100]:
        address = _clean(address, 320).replace("<", "").replace(">", "")
        addresses.append(formataddr((_clean(display, 200), address), charset="utf-8"))
    return ", ".join(addresses)


def compose(mail: Mail) -> bytes:
    """``mail`` as MIME: headers, a body (multipart/alternative when it has both text and
    HTML), its files and its messages; always multipart/mixed."""
    root = MIMEMultipart("mixed", policy=compat32)
    for name, value in mail.headers:
        if name in HEADERS:
            root[name] = _header_value(value)
    bodies = [
        _text_part(text, subtype)
        for text, subtype in ((mail.plain, "plain"), (mail.html, "html"))
        if text is not None
    ]
    if not (bodies or mail.files or mail.messages):
        bodies = [_text_part(Text(b"", "utf-8"), "plain")]  # a mail with headers only
    if len(bodies) == 2:
        alternative = MIMEMultipart("alternative", _subparts=bodies)
        root.attach(alternative)
    elif bodies:
        root.attach(bodies[0])
    for file in mail.files:
        root.attach(_file_part(file))
    for inner in mail.messages:
        root.attach(_message_part(inner))
    _set_boundaries(root)
    return root.as_bytes()


def _set_boundaries(root: Message) -> None:
    """Boundaries from a digest of the leaves (the standard library draws random ones): the same
    container always becomes the same bytes. A hex digest of the content cannot occur in that
    content except by a collision of SHA-256."""
    digest = hashlib.sha256()
    multiparts = []
    for part in root.walk():
        if part.get_content_maintype() == "multipart":
            multiparts.append(part)
        elif not part.is_multipart():
            digest.update(part.as_bytes())
    stem = digest.hexdigest()[:40]
    for number, part in enumerate(multiparts):
        part.set_boundary(f"mukaika-{stem}-{number}")


def _message_part(inner: Mail) -> Message:
    part = MIMEMessage(message_from_bytes(compose(inner), policy=compat32))
    name = _clean(inner.name, _MAX_NAME_CHARS)
    if name:
        part.add_header("Content-Disposition", "inline", filename=("utf-8", "", name))
    return part


def verify(data: bytes) -> None:
    """Independent check of a composed result: 7-bit, parses, a multipart/mixed whose leaves
    are all base64 (raises ``verify_failed``)."""
    if not data.isascii():
        raise SanitizeError(Reason.VERIFY_FAILED, "not 7-bit")
    root = message_from_bytes(data, policy=compat32)
    if root.get_content_type() != PARTS_TYPE or root.defects:
        raise SanitizeError(Reason.VERIFY_FAILED, "not multipart/mixed")
    for part in root.walk():
        if part.is_multipart() or part.get_content_type() == MESSAGE_TYPE:
            continue
        if part.get("Content-Transfer-Encoding", "").lower() != "base64":
            raise SanitizeError(Reason.VERIFY_FAILED, "a part not in base64")
