"""Bcc conversion (BCC強制変換): outside recipients taken out of To and Cc when there are many.

Intent: staff must not show outside recipients each other's addresses (対策基準 ⑮ウ). When the
outside addresses in To and Cc together are more than the threshold, every outside address is
removed from those headers; the envelope keeps every recipient, so each still gets the mail,
as a Bcc would. Internal addresses stay where they were. A To left empty becomes
``undisclosed-recipients:;``; a Cc left empty is dropped.

Outbound mail leaves as the sender wrote it: only the To and Cc fields are written anew (each
kept entry as the sender wrote it, display name and encoded-words included); every other
header line and the body are the sender's bytes, in their order.

Threat model: the header block is the sender's; it is read within a bound
(:data:`MAX_HEADER_BYTES`) and a message whose header block cannot be found is returned
unchanged together with ``False`` (the caller decides: the gateway holds it).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from email.utils import getaddresses
from typing import Final

MAX_HEADER_BYTES: Final = 1024 * 1024
UNDISCLOSED: Final = "undisclosed-recipients:;"
_HEADER_END: Final = re.compile(rb"\r?\n\r?\n")
_FIELD_START: Final = re.compile(rb"^[!-9;-~]+:")
_ADDRESS_FIELDS: Final = (b"to", b"cc")


def _fields(block: bytes) -> list[bytes]:
    """The header block as fields, each with its continuation lines and line ends."""
    fields: list[bytes] = []
    for line in block.splitlines(keepends=True):
        if fields and line[:1] in (b" ", b"\t"):
            fields[-1] += line
        else:
            fields.append(line)
    return fields


def _name(field: bytes) -> bytes:
    match = _FIELD_START.match(field)
    return match.group()[:-1].strip().lower() if match else b""


def _entries(value: str) -> list[tuple[str, str]]:
    """(entry as written, address) for each address of a To or Cc value."""
    pairs = getaddresses([value])
    written = [part.strip() for part in _split_top_level(value)]
    if len(written) != len(pairs):  # groups or odd syntax: rebuild each entry from its parts
        return [(f"{name} <{address}>" if name else address, address) for name, address in pairs]
    return [(entry, address) for entry, (_, address) in zip(written, pairs, strict=True) if address]


def _split_top_level(value: str) -> list[str]:
    """``value`` split at commas outside quotes, comments and angle brackets."""
    parts: list[str] = []
    depth = 0
    quoted = False
    current = ""
    escaped = False
    for char in value:
        if escaped:
            escaped = False
        elif char == "\\" and quoted:
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif not quoted and char in "(<":
            depth += 1
        elif not quoted and char in ")>":
            depth = max(0, depth - 1)
        elif not quoted and depth == 0 and char == ",":
            parts.append(current)
            current = ""
            continue
        current += char
    if current.strip():
        parts.append(current)
    return parts


def convert_to_bcc(
    message: bytes, *, threshold: int, is_outside: Callable[[str], bool]
) -> tuple[bytes, int]:
    """``message`` with outside To/Cc addresses removed when there are more than
    ``threshold`` of them (0: never); and how many were removed."""
    if threshold <= 0:
        return message, 0
    end = _HEADER_END.search(message, 0, MAX_HEADER_BYTES)
    if end is None:
        return message, 0
    block, rest = message[: end.start()], message[end.start() :]
    newline = b"\r\n" if b"\r\n" in block else b"\n"
    fields = _fields(block + newline)
    values: dict[bytes, list[tuple[str, str]]] = {b"to": [], b"cc": []}
    for field in fields:
        name = _name(field)
        if name in _ADDRESS_FIELDS:
            raw = field.split(b":", 1)[1].decode("utf-8", "surrogateescape")
            values[name] += _entries(" ".join(raw.split()))
    outside = [a for entries in values.values() for _, a in entries if is_outside(a)]
    if len(outside) <= threshold:
        return message, 0
    kept = {
        name: [entry for entry, address in entries if not is_outside(address)]
        for name, entries in values.items()
    }
    rebuilt: list[bytes] = []
    written = False
    for field in fields:
        if _name(field) not in _ADDRESS_FIELDS:
            rebuilt.append(field)
            continue
        if written:
            continue
        written = True
        fold = "," + newline.decode() + " "  # one entry a line: no line grows past the limit
        to = fold.join(kept[b"to"]) or UNDISCLOSED
        rebuilt.append(b"To: " + to.encode("utf-8", "surrogateescape") + newline)
        if kept[b"cc"]:
            cc = fold.join(kept[b"cc"])
            rebuilt.append(b"Cc: " + cc.encode("utf-8", "surrogateescape") + newline)
    joined = b"".join(rebuilt)
    return joined[: -len(newline)] + rest, len(outside)
