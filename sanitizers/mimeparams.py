"""Parse Content-Type and Content-Disposition values: the main value and decoded parameters.

Intent: file names and charsets are read the way real mailers write them, Japanese ones
included, and every deviation from RFC 2045/2231 is recorded as a defect instead of guessed
silently or raised. The parser is lenient (it takes what a receiving mail client would show) and
deterministic (one reading for one input).

Threat model: the value is untrusted (a compat32 ``str``: raw 8-bit bytes are lone surrogates,
possibly folded). Parameter values are decoded through ``sanitizers.charsets``, so they never
contain CR, LF, NUL or other controls; parameter names are checked to be tokens and are never
decoded. Defects name parameters only by such checked names. Work is linear in the value; RFC
2231 continuation indexes are limited to four digits.

Decisions:

* The main value is lower-cased, with whitespace removed; a value that is not ``token`` or
  ``token/token`` is kept (non-printable characters as ``?``) with a defect.
* Quoted strings: only ``\\\\`` and ``\\"`` are escapes (as Python's ``email.utils.unquote``), so
  Windows paths and Shift_JIS bytes 0x5C keep their backslash; ``;`` inside quotes is text.
  An unquoted value runs to the next ``;`` and may contain spaces.
* A duplicate parameter: the first one wins (defect). A parameter without ``=``: dropped (defect).
* RFC 2231 ``name*=charset'lang'value`` and ``name*0*=``/``name*1=`` continuations (in any
  order, sorted by index; a missing index, a duplicate index or a mix of ``name*`` and
  ``name*N`` is a defect, and the parts present are used in order). An RFC 2231 value wins over
  a plain one of the same name without a defect: mailers send both on purpose.
* RFC 2047 encoded-words are decoded only in ``name`` and ``filename`` (common, though not
  standard); raw 8-bit bytes are decoded in every value (UTF-8, else detected).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import unquote_to_bytes

from sanitizers.charsets import Decoded, decode_header_bytes, decode_param, header_bytes

__all__ = ["parse_header_params"]

_ENCODED_WORD_PARAMS: Final = frozenset({"name", "filename"})
_TOKEN: Final = re.compile(r"[!#$%&'*+.^_`|~0-9a-z-]+")
_MAIN_VALUE: Final = re.compile(rf"{_TOKEN.pattern}(?:/{_TOKEN.pattern})?")
# The text is latin-1 (one character per byte): whitespace is ASCII whitespace only, never
# 0x85 or 0xA0, which are bytes of Shift_JIS and UTF-8 characters.
_WSP: Final = " \t\r\n"
_MAIN: Final = re.compile(r"[ \t\r\n]*([^;]*)")
_SEPARATORS: Final = re.compile(r"[ \t\r\n;]*")
_NAME: Final = re.compile(r'([^=; \t\r\n"]+)[ \t\r\n]*')
_EQUALS: Final = re.compile(r"=[ \t\r\n]*")
# Raw ISO-2022-JP (ESC $ B ... ESC ( B) is opaque: its pairs may contain '"', ';' and '\\'.
_RAW_JIS: Final = r"\x1b\$[@B][^\x1b]*(?:\x1b\([BJ])?"
_QUOTED: Final = re.compile(rf'"((?:{_RAW_JIS}|\\.|[^"\\])*)("?)', re.DOTALL)
_QUOTED_ESCAPE: Final = re.compile(rf'({_RAW_JIS})|\\([\\"])')
_UNQUOTED: Final = re.compile(rf"(?:{_RAW_JIS}|[^;])*")
_TO_NEXT_PARAMETER: Final = re.compile(r"[^;]*")
_SECTION: Final = re.compile(r"(?P<base>[^*]+)(?:\*(?P<index>[0-9]{1,4}))?(?P<extended>\*)?")
_CHARSET_LANGUAGE: Final = re.compile(r"([^']*)'[^']*'(.*)", re.DOTALL)
_NOT_PRINTABLE: Final = re.compile(r"[^\x21-\x7e]")
_DEFECT_NAME_LIMIT: Final = 64
_NO_WSP: Final = str.maketrans("", "", _WSP)


@dataclass(slots=True)
class _Section:
    """One RFC 2231 section: its value (latin-1 text, one character per byte) and whether it
    is percent-encoded."""

    value: str
    extended: bool


@dataclass(slots=True)
class _Collected:
    """What the scanner found, in order of first appearance."""

    plain: dict[str, str] = field(default_factory=dict)
    sections: dict[str, dict[int | None, _Section]] = field(default_factory=dict)
    defects: list[str] = field(default_factory=list)

    def add(self, name: str, value: str, *, extended_syntax: bool) -> None:
        section = _SECTION.fullmatch(name) if extended_syntax else None
        if extended_syntax and section is None:
            self.defects.append(f"malformed parameter name: {_shown(name)}")
            return
        if section is None:
            if name in self.plain:
                self.defects.append(f"duplicate parameter: {name}")
                return
            self.plain[name] = value
            return
        index = section["index"]
        key = None if index is None else int(index)
        parts = self.sections.setdefault(section["base"], {})
        if key in parts:
            self.defects.append(f"duplicate parameter: {name}")
            return
        parts[key] = _Section(value, section["extended"] is not None)


def _shown(untrusted_name: str) -> str:
    """A parameter name as it may appear in a defect: printable ASCII, bounded."""
    return _NOT_PRINTABLE.sub("?", untrusted_name[:_DEFECT_NAME_LIMIT])


def _unescape(match: re.Match[str]) -> str:
    """Raw ISO-2022-JP stays as it is; ``\\x`` is ``x`` for x in ``\\`` and ``"``."""
    return match.group(1) or match.group(2)


def _unquote(untrusted_text: str, position: int, found: _Collected) -> tuple[str, int]:
    """The value starting at ``position`` (quoted or not) and the position after it."""
    if untrusted_text.startswith('"', position):
        quoted = _QUOTED.match(untrusted_text, position)
        assert quoted is not None  # the pattern matches any text that starts with '"'
        if not quoted.group(2):
            found.defects.append("unterminated quoted string")
        end = quoted.end()
        trailing = _TO_NEXT_PARAMETER.match(untrusted_text, end)
        assert trailing is not None  # the pattern matches the empty string
        if trailing.group().strip(_WSP):
            found.defects.append("text after quoted string")
        return _QUOTED_ESCAPE.sub(_unescape, quoted.group(1)), trailing.end()
    unquoted = _UNQUOTED.match(untrusted_text, position)
    assert unquoted is not None  # the pattern matches the empty string
    return unquoted.group().strip(_WSP), unquoted.end()


def _scan(untrusted_text: str, position: int, found: _Collected) -> None:
    """Collect ``name=value`` pairs from ``position`` on."""
    end = len(untrusted_text)
    while True:
        separators = _SEPARATORS.match(untrusted_text, position)
        assert separators is not None  # the pattern matches the empty string
        position = separators.end()
        if position >= end:
            return
        name = _NAME.match(untrusted_text, position)
        equals = _EQUALS.match(untrusted_text, name.end()) if name else None
        if name is None or equals is None:
            shown = f": {_shown(name.group(1).lower())}" if name else ""
            found.defects.append(f"parameter without a value{shown}")
            skipped = _TO_NEXT_PARAMETER.match(untrusted_text, position + 1)
            assert skipped is not None  # the pattern matches the empty string
            position = skipped.end()
            continue
        value, position = _unquote(untrusted_text, equals.end(), found)
        parameter = name.group(1).lower()
        if not _TOKEN.fullmatch(parameter):
            found.defects.append(f"invalid parameter name: {_shown(parameter)}")
            continue
        found.add(parameter, value, extended_syntax="*" in parameter)


def _main_value(untrusted_text: str, found: _Collected) -> tuple[str, int]:
    main = _MAIN.match(untrusted_text)
    assert main is not None  # the pattern matches the empty string
    value = main.group(1).translate(_NO_WSP).lower()
    if _MAIN_VALUE.fullmatch(value):
        return value, main.end()
    # "text/plain charset=x" (a missing ';'): keep the first word, read the rest as parameters.
    first, _space, rest = main.group(1).strip(_WSP).partition(" ")
    if rest and _MAIN_VALUE.fullmatch(first.lower()):
        found.defects.append("missing ';' after the value")
        return first.lower(), main.start(1) + len(first)
    found.defects.append("malformed value")
    return _NOT_PRINTABLE.sub("?", value), main.end()


def _join_sections(name: str, parts: dict[int | None, _Section], found: _Collected) -> Decoded:
    """One RFC 2231 parameter from its sections."""
    if None in parts:
        if len(parts) > 1:
            found.defects.append(f"both {name}* and {name}*N: using {name}*")
        sections = [parts[None]]
    else:
        indexes = sorted(index for index in parts if index is not None)
        if indexes != list(range(len(indexes))):
            found.defects.append(f"missing RFC 2231 section of {name}")
        sections = [parts[index] for index in indexes]
    if not any(section.extended for section in sections):
        return _decode_plain(name, "".join(section.value for section in sections))
    charset = None
    first = sections[0]
    if first.extended:
        prefix = _CHARSET_LANGUAGE.fullmatch(first.value)
        if prefix is None:
            found.defects.append(f"RFC 2231 value of {name} without charset'language'")
        else:
            charset, first = prefix.group(1) or None, _Section(prefix.group(2), extended=True)
    data = b"".join(
        unquote_to_bytes(part.value.encode("latin-1"))
        if part.extended
        else part.value.encode("latin-1")
        for part in (first, *sections[1:])
    )
    return decode_param(charset, data)


def _decode_plain(name: str, untrusted_value: str) -> Decoded:
    return decode_header_bytes(
        untrusted_value.encode("latin-1"), encoded_words=name in _ENCODED_WORD_PARAMS
    )


def parse_header_params(untrusted_value: str) -> tuple[str, dict[str, Decoded], list[str]]:
    """Parse a raw Content-Type or Content-Disposition value (a compat32 ``str``).

    Returns the lower-cased main value (``"text/plain"``, ``"attachment"``), the parameters by
    lower-case name (RFC 2231 names without their ``*`` sections), and the defects found."""
    raw, lossy = header_bytes(untrusted_value)
    found = _Collected()
    if lossy:
        found.defects.append("characters that are not bytes replaced")
    text = raw.decode("latin-1")  # One character per byte: parse, then decode values as bytes.
    main, position = _main_value(text, found)
    _scan(text, position, found)
    params: dict[str, Decoded] = {}
    for name, value in found.plain.items():
        if name not in found.sections:
            params[name] = _decode_plain(name, value)
    for name, parts in found.sections.items():
        params[name] = _join_sections(name, parts, found)
    return main, params, found.defects
