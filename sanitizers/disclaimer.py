"""An optional disclaimer (免責文) at the end of outbound mail, without rebuilding it.

Intent: municipalities append a fixed text to mail leaving for the Internet. Outbound mail is
never rebuilt, so the text is appended only where that needs no re-encoding of what the sender
wrote: a single-part ``text/plain`` mail (or one with no Content-Type) whose transfer encoding
is 7bit or 8bit (or absent) and whose charset is UTF-8, US-ASCII or ISO-2022-JP (the disclaimer
is encoded in that charset; US-ASCII only when the text is ASCII). Any other mail (multipart,
HTML, quoted-printable, base64, another charset) leaves without it, and the caller records
that. The header block and every byte of the body stay as they were; the disclaimer follows
the body after a line break.

Threat model: the header block is the sender's and is read within a bound; the disclaimer is
the operator's (configuration), checked to hold no control characters.
"""

from __future__ import annotations

import re
from email.parser import BytesHeaderParser
from email.policy import compat32
from typing import Final

MAX_HEADER_BYTES: Final = 1024 * 1024
_HEADER_END: Final = re.compile(rb"\r?\n\r?\n")
_CHARSETS: Final = {"utf-8": "utf-8", "us-ascii": "ascii", "iso-2022-jp": "iso-2022-jp"}


def append_disclaimer(message: bytes, disclaimer: str) -> tuple[bytes, bool]:
    """``message`` with ``disclaimer`` appended to its text, and whether it was appended."""
    if not disclaimer:
        return message, False
    end = _HEADER_END.search(message, 0, MAX_HEADER_BYTES)
    if end is None:
        return message, False
    headers = BytesHeaderParser(policy=compat32).parsebytes(message[: end.end()])
    content_type = headers.get_content_type()
    encoding = str(headers.get("Content-Transfer-Encoding", "7bit")).strip().lower()
    if content_type != "text/plain" or encoding not in ("7bit", "8bit"):
        return message, False
    if len(headers.get_all("Content-Type", [])) > 1:
        return message, False  # conflicting headers: a reader may see another type
    codec = _CHARSETS.get(str(headers.get_content_charset("us-ascii")).lower())
    if codec is None:
        return message, False
    newline = b"\r\n" if b"\r\n" in message[: end.end()] else b"\n"
    lines = disclaimer.replace("\r\n", "\n").split("\n")
    try:
        text = newline.join(line.encode(codec) for line in lines)
    except UnicodeEncodeError:
        return message, False
    if encoding == "7bit" and any(byte > 0x7F for byte in text):
        return message, False  # 8-bit text in a 7bit part would be a lie
    body = message[end.end() :]
    separator = b"" if not body or body.endswith(newline) else newline
    return message + separator + newline + text + newline, True
