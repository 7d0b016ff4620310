"""An optional disclaimer (免責文) at the end of outbound mail, without rebuilding it.

Intent: municipalities append a fixed text to mail leaving for the Internet. Outbound mail is
never rebuilt, so the text is appended only where that needs no re-encoding of what the sender
wrote, to the mail's text: a ``text/plain`` entity (or one with no Content-Type) whose transfer
encoding is 7bit or 8bit (or absent) and whose charset is UTF-8, US-ASCII or ISO-2022-JP (the
disclaimer is encoded in that charset; US-ASCII only when the text is ASCII). That entity is
found where mailers put the text:

- the mail itself, when it is single-part;
- the first part of a ``multipart/mixed`` (the text before the attachments), looked into once
  more when that part is itself a ``multipart/alternative`` or ``multipart/mixed``;
- the first ``text/plain`` part of a ``multipart/alternative``. Its HTML alternative is left
  as it is (HTML is usually quoted-printable or base64, and changing it means parsing it):
  a reader that shows the HTML does not see the disclaimer. The caller records that it was
  appended.

Any other mail (HTML only, quoted-printable or base64 text, another charset, a text part that
is not where the text is expected, nesting deeper than :data:`MAX_DEPTH`, a boundary that
cannot be found) leaves without it, and the caller records that. The header blocks and every
byte the sender wrote stay as they were: the disclaimer is inserted after the text's last
line, before the delimiter of its part (whose line break stays the delimiter's, RFC 2046 5.1.1).

Threat model: the header blocks are the sender's and are read within a bound; boundaries are
found by a bounded search of the sender's bytes and nothing else is parsed; the disclaimer is
the operator's (configuration), checked to hold no control characters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32
from typing import Final

MAX_HEADER_BYTES: Final = 1024 * 1024
# How many multipart levels are looked into for the text (mixed → alternative → text/plain).
MAX_DEPTH: Final = 2
_HEADER_END: Final = re.compile(rb"\r?\n\r?\n")
_CHARSETS: Final = {"utf-8": "utf-8", "us-ascii": "ascii", "iso-2022-jp": "iso-2022-jp"}


@dataclass(frozen=True, slots=True)
class _Text:
    """Where the text entity is: its headers, its body's start and end."""

    headers: Message
    body_start: int
    body_end: int


def append_disclaimer(message: bytes, disclaimer: str) -> tuple[bytes, bool]:
    """``message`` with ``disclaimer`` appended to its text, and whether it was appended."""
    if not disclaimer:
        return message, False
    found = _text_of(message, 0, len(message), 0)
    if found is None:
        return message, False
    headers = found.headers
    encoding = str(headers.get("Content-Transfer-Encoding", "7bit")).strip().lower()
    if encoding not in ("7bit", "8bit"):
        return message, False
    codec = _CHARSETS.get(str(headers.get_content_charset("us-ascii")).lower())
    if codec is None:
        return message, False
    newline = b"\r\n" if b"\r\n" in message[: found.body_start] else b"\n"
    lines = disclaimer.replace("\r\n", "\n").split("\n")
    try:
        text = newline.join(line.encode(codec) for line in lines)
    except UnicodeEncodeError:
        return message, False
    if encoding == "7bit" and any(byte > 0x7F for byte in text):
        return message, False  # 8-bit text in a 7bit part would be a lie
    body = message[found.body_start : found.body_end]
    separator = b"" if not body or body.endswith(newline) else newline
    insert = separator + newline + text + newline
    return message[: found.body_end] + insert + message[found.body_end :], True


def _text_of(data: bytes, start: int, stop: int, depth: int) -> _Text | None:
    """The text entity of the entity ``data[start:stop]`` (headers, blank line, body)."""
    if data.startswith((b"\r\n", b"\n"), start):
        header_end = start + (2 if data.startswith(b"\r\n", start) else 1)  # no header fields
    else:
        end = _HEADER_END.search(data, start, min(stop, start + MAX_HEADER_BYTES))
        if end is None:
            return None
        header_end = end.end()
    headers = BytesHeaderParser(policy=compat32).parsebytes(data[start:header_end])
    if len(headers.get_all("Content-Type", [])) > 1:
        return None  # conflicting headers: a reader may see another type
    content_type = headers.get_content_type()
    if content_type == "text/plain":
        return _Text(headers, header_end, stop)
    if depth >= MAX_DEPTH or content_type not in ("multipart/mixed", "multipart/alternative"):
        return None
    boundary = headers.get_boundary()
    if not boundary:
        return None
    parts = _parts(data, header_end, stop, boundary.encode("ascii", "replace"))
    if not parts:
        return None
    if content_type == "multipart/mixed":
        return _text_of(data, *parts[0], depth + 1)
    for part_start, part_stop in parts:
        inner = BytesHeaderParser(policy=compat32).parsebytes(
            data[part_start : min(part_stop, part_start + MAX_HEADER_BYTES)]
        )
        if inner.get_content_type() == "text/plain":
            return _text_of(data, part_start, part_stop, MAX_DEPTH)
    return None


def _parts(data: bytes, start: int, stop: int, boundary: bytes) -> list[tuple[int, int]]:
    """The (start, stop) of each part of a multipart body ``data[start:stop]``: from after its
    delimiter line to before the line break of the next delimiter; [] unless the body has a
    closing delimiter."""
    delimiter = re.compile(rb"(?m)^--" + re.escape(boundary) + rb"(--)?[ \t]*\r?$")
    parts: list[tuple[int, int]] = []
    opened: int | None = None
    for match in delimiter.finditer(data, start, stop):
        if opened is not None:
            line_start = match.start()
            before = line_start - (2 if data[line_start - 2 : line_start] == b"\r\n" else 1)
            parts.append((opened, max(opened, before)))
        if match.group(1):
            return parts
        after = match.end()
        opened = after + (1 if data[after : after + 1] == b"\n" else 0)
    return []
