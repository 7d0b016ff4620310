"""Header values to display text: RFC 2047 encoded-words, RFC 2231 values, raw 8-bit text.

Threat model: encoded-words may be malformed, mix charsets, decode to controls or to address
syntax; raw 8-bit text has no declared charset. Encoded-words of one charset next to each other
are joined as bytes before decoding (a character may be split across them); whitespace between
encoded-words is dropped (RFC 2047); raw runs of one header value are decoded together, so one
charset decision covers them all. The result is display text (:mod:`sanitizers.safetext`),
and ``charset`` lists the non-ASCII charsets used, comma-separated, in order.
"""

from __future__ import annotations

import binascii
import re
from dataclasses import replace
from typing import Final

from sanitizers.charsets.decoded import Decoded
from sanitizers.charsets.detection import _decode
from sanitizers.charsets.labels import _plan, _strict_plan
from sanitizers.charsets.steps import _lenient
from sanitizers.safetext import display_text, unsafe_classes

__all__ = [
    "decode_header",
    "decode_header_bytes",
    "decode_param",
    "decode_raw_runs",
    "header_bytes",
    "join_decoded",
]

# A fold (a line break before whitespace) with the whitespace around it: one space when
# unfolded, as mail readers show it; whitespace the sender typed within a line stays.
_FOLD: Final = re.compile(rb"[ \t]*(?:(?:\r\n|\r|\n)[ \t]+)+")
_ENCODED_WORD: Final = re.compile(rb"=\?([^?\s]+)\?([bBqQ])\?([^?]*)\?=")
_BASE64: Final = re.compile(rb"[A-Za-z0-9+/]*={0,2}")
_BASE64_SPACE: Final = re.compile(rb"[ \t\r\n]+")
_WHITESPACE: Final = re.compile(rb"[ \t\r\n]*")


def _without_controls(decoded: Decoded) -> Decoded:
    """Header text as :func:`sanitizers.safetext.display_text` shows it, with the unsafe
    classes it had recorded in ``removed``."""
    removed = unsafe_classes(decoded.text)
    text = display_text(decoded.text)
    if text == decoded.text and not removed:
        return decoded
    return Decoded(text, decoded.charset, decoded.lossy, decoded.detected, removed, decoded.text)


def header_bytes(untrusted_value: str) -> tuple[bytes, bool]:
    """The bytes of a raw header value as the compat32 parser keeps it (8-bit bytes as lone
    surrogates), unfolded. Other non-ASCII characters are taken as UTF-8. The flag is True
    when a surrogate that no byte can stand for had to be replaced."""
    try:
        raw, lossy = untrusted_value.encode("utf-8", "surrogateescape"), False
    except UnicodeEncodeError:
        raw, lossy = untrusted_value.encode("utf-8", "replace"), True
    return _FOLD.sub(b" ", raw), lossy


def _word_bytes(encoding: bytes, payload: bytes) -> bytes | None:
    """The bytes an encoded-word carries, or None when it is malformed (then it stays text).
    Base64 may lack its padding or contain whitespace; anything else is malformed."""
    if encoding in b"qQ":
        return binascii.a2b_qp(payload, header=True)
    letters = _BASE64_SPACE.sub(b"", payload)
    if not _BASE64.fullmatch(letters):
        return None
    letters = letters.rstrip(b"=")
    if len(letters) % 4 == 1:
        return None
    return binascii.a2b_base64(letters + b"=" * (-len(letters) % 4))


def _pieces(raw: bytes) -> list[tuple[str | None, bytes]]:
    """Split header bytes into (charset label, bytes) pieces: None for plain text. Whitespace
    between encoded-words is dropped and adjacent words of one charset are joined as bytes."""
    pieces: list[tuple[str | None, bytes]] = []
    position = 0
    after_word = False
    for match in _ENCODED_WORD.finditer(raw):
        label_bytes, encoding, payload = match.groups()
        carried = _word_bytes(encoding, payload)
        if carried is None:
            continue
        between = raw[position : match.start()]
        if between and not (after_word and _WHITESPACE.fullmatch(between)):
            pieces.append((None, between))
        label = label_bytes.split(b"*", 1)[0].decode("ascii", "replace").lower()
        if after_word and pieces[-1][0] == label:
            pieces[-1] = (label, pieces[-1][1] + carried)
        else:
            pieces.append((label, carried))
        position, after_word = match.end(), True
    if position < len(raw):
        pieces.append((None, raw[position:]))
    return pieces


def join_decoded(parts: list[Decoded]) -> Decoded:
    """Pieces of one header value as one: charsets listed in order, lossy if any piece is."""
    charsets = dict.fromkeys(part.charset for part in parts if part.charset != "us-ascii")
    return Decoded(
        "".join(part.text for part in parts),
        ",".join(charsets) or "us-ascii",
        lossy=any(part.lossy for part in parts),
        detected=any(part.detected for part in parts),
    )


def decode_header_bytes(untrusted_raw: bytes, *, encoded_words: bool = True) -> Decoded:
    """Decode unfolded header bytes: RFC 2047 encoded-words (when ``encoded_words``) and raw
    8-bit text. ``charset`` lists the non-ASCII charsets used, comma-separated, in order."""
    plain = not (encoded_words and b"=?" in untrusted_raw)
    if plain and untrusted_raw.isascii() and b"\x1b" not in untrusted_raw:
        return _without_controls(Decoded(untrusted_raw.decode("ascii"), "us-ascii", False, False))
    pieces = _pieces(untrusted_raw) if encoded_words else [(None, untrusted_raw)]
    return _without_controls(join_decoded([_decode(data, _plan(label)) for label, data in pieces]))


def decode_raw_runs(untrusted_value: bytes, untrusted_runs: list[bytes]) -> list[Decoded]:
    """Decode the raw 8-bit (or raw ISO-2022-JP) runs of one header value in the charset
    chosen on the whole value (its ASCII words are evidence too); each result is header
    text."""
    if not untrusted_runs:
        return []
    whole = _decode(untrusted_value, None)
    plan = _plan(whole.charset.split(",")[0])
    if plan is None:
        return [_without_controls(_decode(run, None)) for run in untrusted_runs]
    decoded: list[Decoded] = []
    for run in untrusted_runs:
        found = _strict_plan(plan, run)
        if found is not None:
            decoded.append(Decoded(*found, lossy=False, detected=True))
        else:
            decoded.append(Decoded(*_lenient(plan[0], run), detected=True))
    return [_without_controls(part) for part in decoded]


def decode_param(charset: str | None, untrusted_value: bytes) -> Decoded:
    """Decode an RFC 2231 parameter value (already percent-decoded) in the charset it names.
    The result is header text: no controls (see the module docstring)."""
    decoded = _decode(untrusted_value, _plan(charset))
    return _without_controls(decoded)


def decode_header(untrusted_value: str) -> Decoded:
    """Decode a raw header value (a compat32 ``str``) into display text without controls."""
    raw, lossy = header_bytes(untrusted_value)
    decoded = decode_header_bytes(raw)
    return replace(decoded, lossy=decoded.lossy or lossy)
