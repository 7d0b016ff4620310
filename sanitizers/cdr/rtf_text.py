"""The readable body of an RTF document: its text, or the HTML an Outlook RTF body wraps.

Outlook keeps a message's body as RTF (in a TNEF ``winmail.dat`` and in ``.msg`` files). That
RTF is either ordinary RTF (``\\fromtext`` or none) or HTML encapsulated in RTF
(``\\fromhtml1``, [MS-OXRTFEX]): the HTML tags in ``{\\*\\htmltag…}`` groups, the text between
them as RTF text, and RTF-only formatting between ``\\htmlrtf`` and ``\\htmlrtf0``.

Threat model: the RTF is hostile. Nothing in it is interpreted but text: objects, pictures,
fields' instructions (only their shown result is kept), font and style tables and every
ignorable (``\\*``) destination are skipped; the HTML taken out of an encapsulated body is
untrusted HTML that the pipeline converts to text like any HTML body. Group nesting is bounded
(``limit_depth``) and so is the text produced (``limit_size``); ``\\binN`` data is skipped
unread, so bytes in it can never open or close a group.

Japanese text exact: ``\\'hh`` bytes are decoded in the code page of the current font's
``\\fcharset`` (128 = Shift_JIS, CP932), else the document's ``\\ansicpg``; ``\\uN`` characters
(with their ``\\ucN`` fallbacks skipped) and surrogate pairs are read as Unicode.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass, replace
from typing import Literal

from sanitizers.errors import LimitExceeded
from sanitizers.vocabulary import Reason

_TOKEN = re.compile(
    rb"\\([a-zA-Z]{1,32})(-?[0-9]{1,10})? ?"  # control word
    rb"|\\'([0-9a-fA-F]{2})"  # a byte in the current code page
    rb"|\\([^a-zA-Z'])"  # control symbol
    rb"|([{}])"
    rb"|[\r\n]+"
    rb"|([^\\{}\r\n]+)"
    rb"|(\\)",  # a lone backslash at the end
    re.S,
)
# Destinations whose content is never text.
_SKIPPED = frozenset(
    b"""fonttbl colortbl stylesheet info pict object objdata themedata colorschememapping
    datastore latentstyles listtable listoverridetable rsidtbl generator xmlnstbl mmathPr
    fldinst header headerl headerr headerf footer footerl footerr footerf filetbl revtbl
    pgdsctbl userprops nonshppict shpinst bkmkstart bkmkend field_instruction""".split()
)
_CHARACTERS = {
    b"par": "\n",
    b"line": "\n",
    b"sect": "\n",
    b"page": "\n",
    b"row": "\n",
    b"cell": "\t",
    b"tab": "\t",
    b"emdash": "\u2014",
    b"endash": "\u2013",
    b"bullet": "\u2022",
    b"lquote": "\u2018",
    b"rquote": "\u2019",
    b"ldblquote": "\u201c",
    b"rdblquote": "\u201d",
    b"emspace": "\u2003",
    b"enspace": "\u2002",
}
_SYMBOLS = {b"~": "\u00a0", b"_": "\u2011", b"\\": "\\", b"{": "{", b"}": "}"}
# \fcharset values and the code pages they mean (0 and 1 follow the document's \ansicpg).
_CHARSET_CODEPAGES = {
    2: 1252, 77: 10000, 128: 932, 129: 949, 130: 1361, 134: 936, 136: 950, 161: 1253,
    162: 1254, 163: 1258, 177: 1255, 178: 1256, 186: 1257, 204: 1251, 222: 874, 238: 1250,
}  # fmt: skip
_DEFAULT_CODEPAGE = 1252


@dataclass(frozen=True, slots=True)
class _State:
    """What applies inside one group."""

    skip: bool = False
    codepage: int = _DEFAULT_CODEPAGE
    unicode_skip: int = 1
    html_rtf: bool = False  # between \htmlrtf and \htmlrtf0: RTF-only, not part of the HTML
    font_table: bool = False


@dataclass(frozen=True, slots=True)
class RtfBody:
    """The body an RTF document shows: ``html`` when it encapsulates HTML, else ``plain``."""

    kind: Literal["plain", "html"]
    text: str


def _codec(codepage: int) -> str:
    try:
        return codecs.lookup(f"cp{codepage}").name
    except LookupError:
        return codecs.lookup(f"cp{_DEFAULT_CODEPAGE}").name


class _Reader:
    def __init__(self, max_depth: int, max_chars: int) -> None:
        self.max_depth = max_depth
        self.max_chars = max_chars
        self.out: list[str] = []
        self.chars = 0
        self.pending = bytearray()  # \'hh bytes not yet decoded
        self.pending_codepage = _DEFAULT_CODEPAGE
        self.fonts: dict[int, int] = {}
        self.font_in_table = 0
        self.document_codepage = _DEFAULT_CODEPAGE
        self.html = False
        self.to_skip = 0  # fallback characters still to skip after a \uN

    def emit(self, text: str) -> None:
        self.chars += len(text)
        if self.chars > self.max_chars:
            raise LimitExceeded(Reason.LIMIT_SIZE, "RTF body text too long")
        self.out.append(text)

    def flush(self) -> None:
        if self.pending:
            self.emit(self.pending.decode(_codec(self.pending_codepage), "replace"))
            self.pending.clear()

    def read(self, untrusted_rtf: bytes) -> RtfBody:
        stack: list[_State] = []
        state = _State()
        ignorable_next = False
        position = 0
        while position < len(untrusted_rtf):
            match = _TOKEN.match(untrusted_rtf, position)
            assert match is not None  # the last alternative takes any lone backslash
            position = match.end()
            word, param, hexbyte, symbol, brace, text, _backslash = match.groups()
            if word == b"bin" and param:  # \binN: N raw bytes, never text (nor braces)
                position += max(0, int(param))
                continue
            if hexbyte is not None:
                if self.to_skip:
                    self.to_skip -= 1
                elif self._shows(state):
                    if self.pending and self.pending_codepage != state.codepage:
                        self.flush()
                    self.pending_codepage = state.codepage
                    self.pending.append(int(hexbyte, 16))
                continue
            self.flush()
            if brace == b"{":
                stack.append(state)
                if len(stack) > self.max_depth:
                    raise LimitExceeded(Reason.LIMIT_DEPTH, f"RTF groups over {self.max_depth}")
                continue
            if brace == b"}":
                if not stack:
                    continue
                state = stack.pop()
                ignorable_next = False
                if not stack:
                    break  # the end of the document: what follows is not RTF
                continue
            if text is not None:
                if self.to_skip:
                    skipped = min(self.to_skip, len(text))
                    self.to_skip -= skipped
                    text = text[skipped:]
                if self._shows(state) and text:
                    self.emit(text.decode(_codec(state.codepage), "replace"))
                elif state.font_table:
                    pass
                continue
            if symbol is not None:
                if symbol == b"*":
                    ignorable_next = True
                elif self._shows(state) and symbol in _SYMBOLS:
                    self.emit(_SYMBOLS[symbol])
                continue
            if word is None:
                continue
            state, ignorable_next = self._control(state, word, param, ignorable_next)
        self.flush()
        text = "".join(self.out)
        # \uN values are UTF-16 code units: pair the surrogates, replace lone ones.
        text = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
        return RtfBody("html" if self.html else "plain", text)

    def _shows(self, state: _State) -> bool:
        return not (state.skip or state.html_rtf or state.font_table)

    def _control(
        self, state: _State, word: bytes, param: bytes | None, ignorable: bool
    ) -> tuple[_State, bool]:
        value = int(param) if param else None
        if word == b"htmltag" or word == b"mhtmltag":
            # Encapsulated HTML: the tag text is part of the HTML (\mhtmltag holds a rewritten
            # copy of the next \htmltag and is skipped).
            return replace(state, skip=word == b"mhtmltag" or state.skip, html_rtf=False), False
        if ignorable or word in _SKIPPED:
            if word == b"fonttbl":
                return replace(state, font_table=True), False
            return replace(state, skip=True), False
        if word == b"fromhtml":
            self.html = True
        elif word == b"ansicpg" and value is not None:
            self.document_codepage = value
            return replace(state, codepage=value), False
        elif word == b"htmlrtf":
            return replace(state, html_rtf=value != 0), False
        elif word == b"uc" and value is not None:
            return replace(state, unicode_skip=max(0, min(value, 8))), False
        elif word == b"u" and value is not None:
            if self._shows(state):
                self.emit(chr(value + 0x10000 if value < 0 else value & 0xFFFF))
            self.to_skip = state.unicode_skip
        elif word == b"f" and value is not None:
            if state.font_table:
                self.font_in_table = value
            else:
                return replace(state, codepage=self.fonts.get(value, self.document_codepage)), False
        elif word == b"fcharset" and value is not None and state.font_table:
            self.fonts[self.font_in_table] = _CHARSET_CODEPAGES.get(value, self.document_codepage)
        elif word in _CHARACTERS and self._shows(state):
            newline = "\r\n" if self.html else "\n"
            shown = _CHARACTERS[word]
            self.emit(newline if shown == "\n" else shown)
        return state, False


def rtf_body(untrusted_rtf: bytes, *, max_depth: int, max_chars: int) -> RtfBody:
    """The body ``untrusted_rtf`` shows; raises ``LimitExceeded`` past the limits."""
    return _Reader(max_depth, max_chars).read(untrusted_rtf)
