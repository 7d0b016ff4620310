"""Text that is safe to show: the one definition of the characters that never leave mukaika.

Intent: text from a mail (a subject, a display name, a file name, a body, a value in a log
line or on a terminal) keeps every character the sender wrote, except the characters of the
named unsafe classes below. Each use has one function; every module that shows, logs, writes
or prints untrusted text calls it instead of keeping its own list.

Threat model: the text is hostile. Control characters can end a header or a log line early
(CR, LF, NUL), drive a terminal (ESC, CSI), or be read as line ends by some readers and not
by others (VT, FF, NEL, U+2028); bidi controls make text display in another order than it is
stored (``請求書\\u202efdp.exe`` shows as ``請求書exe.pdf``); lone surrogates are not
characters and break encoders. No Japanese text needs any of them.

Classes (each a string of characters, named in ``UNSAFE_CLASSES``):

* ``c0``: the C0 controls U+0000-U+001F and DEL U+007F.
* ``c1``: the C1 controls U+0080-U+009F (CSI, NEL, ...).
* ``bidi``: the bidi controls: ALM U+061C, LRM/RLM U+200E/U+200F, the embeddings and overrides
  U+202A-U+202E, the isolates U+2066-U+2069.
* ``line_separators``: U+2028 LINE SEPARATOR and U+2029 PARAGRAPH SEPARATOR.
* ``surrogates``: U+D800-U+DFFF (only lone surrogates can occur in a ``str``).

Everything else, the ideographic space U+3000, no-break spaces and private-use characters
included, is kept.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final

__all__ = [
    "BIDI",
    "C0",
    "C1",
    "LINE_SEPARATORS",
    "SURROGATES",
    "UNSAFE_CLASSES",
    "body_text",
    "display_text",
    "has_protocol_breaking",
    "has_unsafe",
    "log_text",
    "terminal_text",
    "unsafe_classes",
]


def _chars(first: int, last: int) -> str:
    return "".join(map(chr, range(first, last + 1)))


C0: Final = _chars(0x00, 0x1F) + "\x7f"
C1: Final = _chars(0x80, 0x9F)
BIDI: Final = "\u061c\u200e\u200f" + _chars(0x202A, 0x202E) + _chars(0x2066, 0x2069)
LINE_SEPARATORS: Final = "\u2028\u2029"
SURROGATES: Final = _chars(0xD800, 0xDFFF)
UNSAFE_CLASSES: Final = {
    "c0": C0,
    "c1": C1,
    "bidi": BIDI,
    "line_separators": LINE_SEPARATORS,
    "surrogates": SURROGATES,
}
# The unsafe characters that separate words or lines where they stand (str.splitlines breaks
# at all of these but TAB): in one-line text they become a space, in a body a line end.
_BREAKS: Final = "\t\n\v\f\r\x1c\x1d\x1e\x85\u2028\u2029"
# What a body keeps of the classes above: tab and its line ends as written (CR LF or LF).
_BODY_KEPT: Final = "\t\n\r"


def _class_pattern(chars: str) -> re.Pattern[str]:
    return re.compile(f"[{re.escape(chars)}]")


_ALL_UNSAFE: Final = "".join(UNSAFE_CLASSES.values())
_UNSAFE: Final = _class_pattern(_ALL_UNSAFE)
_PROTOCOL_BREAKING: Final = _class_pattern(C0 + C1 + LINE_SEPARATORS)
_BODY_UNSAFE: Final = _class_pattern(_ALL_UNSAFE.translate({ord(c): None for c in _BODY_KEPT}))


def _as_space(match: re.Match[str]) -> str:
    return " " if match.group() in _BREAKS else ""


def _as_line_end(match: re.Match[str]) -> str:
    return "\n" if match.group() in _BREAKS else ""


def has_protocol_breaking(text: str) -> bool:
    """True when ``text`` has a control (C0, C1) or a line separator: what may not stand in a
    protocol line such as an SMTP envelope address (bidi controls there are shown escaped)."""
    return _PROTOCOL_BREAKING.search(text) is not None


def has_unsafe(text: str) -> bool:
    """True when ``text`` has a character of any unsafe class."""
    return _UNSAFE.search(text) is not None


def unsafe_classes(text: str) -> frozenset[str]:
    """The names of the unsafe classes that ``text`` has characters of."""
    if not has_unsafe(text):
        return frozenset()
    return frozenset(
        name for name, chars in UNSAFE_CLASSES.items() if not set(chars).isdisjoint(text)
    )


def _bounded(text: str, limit: int | None) -> str:
    if limit is None or len(text) <= limit:
        return text
    return text[: limit - 1] + "…"


def display_text(text: str, limit: int | None = None) -> str:
    """One line to show a reader (a subject, a display name, a file name): tabs and line
    breaks become a space, the other unsafe characters are removed, ASCII spaces at the ends
    are dropped, and the result is cut to ``limit`` characters (``…`` marks a cut)."""
    return _bounded(_UNSAFE.sub(_as_space, text).strip(" "), limit)


def visible_text(text: str, limit: int | None = None) -> str:
    """A sender's value shown exactly (a file name the delivered one differs from): every
    unsafe or invisible character (a control or format character, e.g. U+200B), and an ASCII
    space at either end, is written as its code point (``<U+202E>``), so a reader sees what
    was there; the result is cut to ``limit`` characters (``…`` marks a cut)."""
    shown = "".join(_as_code_point(c) if _is_invisible(c) else c for c in text)
    start, end = len(shown) - len(shown.lstrip(" ")), len(shown.rstrip(" "))
    if start >= end:
        return _bounded("<U+0020>" * len(shown), limit)
    edges = "<U+0020>"
    return _bounded(edges * start + shown[start:end] + edges * (len(shown) - end), limit)


def _is_invisible(character: str) -> bool:
    return bool(_UNSAFE.match(character)) or unicodedata.category(character).startswith("C")


def _as_code_point(character: str) -> str:
    return f"<U+{ord(character):04X}>"


def log_text(text: str, limit: int | None = None) -> str:
    """A value inside a log or audit line or a database field: every unsafe character is
    removed (``evil\r\nX-Injected`` stays one visible word), spaces stay as they were, and the
    result is cut to ``limit`` characters (``…`` marks a cut)."""
    return _bounded(_UNSAFE.sub("", text), limit)


def body_text(text: str) -> str:
    """Text of a body or a text file: tabs, CR and LF stay as written, the other line breaks
    (VT, FF, NEL, U+2028, U+2029, ...) become LF, the other unsafe characters are removed."""
    return _BODY_UNSAFE.sub(_as_line_end, text)


def terminal_text(text: str) -> str:
    """Text printed on an operator's terminal: every unsafe character shows as ``?`` (so that
    a value that had some is visibly not what it seems)."""
    return _UNSAFE.sub("?", text)
