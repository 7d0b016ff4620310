"""RTF documents.

Threat model: embedded OLE objects (``\\object`` groups with ``\\objdata``, OLE1 ``Package``
objects carrying executables, exploit payloads for the equation editor and other OLE
servers), OLE data stores (``\\*\\datastore``), remote templates (``\\*\\template``),
fields that fetch or run something (``\\fldinst``, judged by the one table of
:mod:`sanitizers.cdr.fields`, however the keyword is escaped), mail-merge data connections,
and a reader
overwhelmed by deep nesting, unbalanced braces or ``\\binN`` lengths that run past the end.

What it does: the file is **rebuilt** from tokens. A bounded, iterative tokenizer (no
recursion; nesting deeper than ``rtf_max_depth`` removes the file) reads control words,
control symbols, ``\\binN`` data and text; every group whose destination (or any control
word inside it) is dangerous is left out; everything else is written anew, one token at a
time, with braces balanced. An ``\\object``'s ``\\result`` (the picture Word shows in its
place) is kept. oletools' rtfobj double-checks the output (``verify``): an object it finds
there means the two parsers disagree, and the file is removed (``verify_failed``). (Running
rtfobj on the input as well would only change that reason, at twice the cost: rtfobj is a
pure-Python parser, about 1.5 s per MB.)

Removed-item codes: ``ole_object`` (objects, object data, data stores),
``external_relationship`` (remote template), ``dde``, ``linked_field``, ``unsafe_link``,
``computed_field`` and the other codes of the field table (fields; their shown result is
kept), ``data_connection`` (mail-merge data source and query).

Deliberately left alone: text, fonts, colours, styles, tables, pictures (``\\pict``, which
Word renders itself), ordinary fields (PAGE, HYPERLINK…), document info, and unknown
``\\*`` destinations (Word skips them). Text after the document's closing brace must be
whitespace or NUL padding, otherwise the file is removed.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import ClassVar

from sanitizers.cdr import olescan
from sanitizers.cdr.base import CdrContext, CdrOutcome, CdrSanitizer
from sanitizers.cdr.fields import NESTED_MARK, field_danger
from sanitizers.cdr.findings import rebuilt_outcome
from sanitizers.errors import LimitExceeded, SanitizeError
from sanitizers.links import DEFAULT_ALLOWED_SCHEMES
from sanitizers.vocabulary import Reason, RemovedItem

# Control words that make their whole group dangerous, wherever they appear in it.
DROP_WORDS: dict[bytes, RemovedItem] = {
    b"object": RemovedItem.OLE_OBJECT,
    b"objdata": RemovedItem.OLE_OBJECT,
    b"objclass": RemovedItem.OLE_OBJECT,
    b"objname": RemovedItem.OLE_OBJECT,
    b"objalias": RemovedItem.OLE_OBJECT,
    b"objsect": RemovedItem.OLE_OBJECT,
    b"objemb": RemovedItem.OLE_OBJECT,
    b"objlink": RemovedItem.OLE_OBJECT,
    b"objautlink": RemovedItem.OLE_OBJECT,
    b"objsub": RemovedItem.OLE_OBJECT,
    b"objpub": RemovedItem.OLE_OBJECT,
    b"objicemb": RemovedItem.OLE_OBJECT,
    b"objhtml": RemovedItem.OLE_OBJECT,
    b"objocx": RemovedItem.OLE_OBJECT,
    b"datastore": RemovedItem.OLE_OBJECT,
    b"template": RemovedItem.EXTERNAL_RELATIONSHIP,
    b"mmconnectstr": RemovedItem.DATA_CONNECTION,
    b"mmquery": RemovedItem.DATA_CONNECTION,
    b"mmdatasource": RemovedItem.DATA_CONNECTION,
    b"mmodsoudldata": RemovedItem.DATA_CONNECTION,
}
_LETTERS = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_DIGITS = frozenset(b"0123456789")
_HEX = frozenset(b"0123456789abcdefABCDEF")
_MAX_WORD = 32
_MAX_PARAM_DIGITS = 10
_TRAILER = re.compile(rb"[\x00\s]*")
_WORD = re.compile(rb"\\([a-zA-Z]+)(-?[0-9]*) ?")
_TEXT = re.compile(rb"[^\\{}]+")
# A control word is a backslash preceded by an even number of backslashes ("\\object" is
# the text "\object", not a control word).
_RAW_DANGER = re.compile(
    rb"(?<!\\)(?:\\\\)*\\(objdata|object|objclass|datastore|template)(?![a-z])"
)


@dataclass
class _Group:
    start: int
    out: bytearray = field(default_factory=bytearray)
    first_word: bytes | None = None
    starred: bool = False
    code: RemovedItem | None = None  # why this group is dropped
    text: bytearray = field(default_factory=bytearray)
    result: bytes | None = None  # an \object's \result, kept in its place
    tokens: int = 0
    collect: bool = False  # inside a \fldinst: keep the text to read the instruction
    unicode_skip: int = 1  # \ucN: fallback characters that follow a \uN
    skip: int = 0  # fallback characters still to leave out of ``text``


@dataclass
class Rebuilt:
    data: bytes
    removed: list[RemovedItem]
    dropped: list[tuple[int, int]]  # byte ranges of the input that were left out


def rebuild_rtf(
    untrusted_data: bytes,
    max_depth: int,
    allowed_schemes: Collection[str] = DEFAULT_ALLOWED_SCHEMES,
) -> Rebuilt:
    """Tokenize and re-emit ``untrusted_data`` without dangerous groups. Iterative.

    A field instruction is read as Word reads it: ``\\'hh`` and ``\\uN`` escapes decoded (the
    ``\\ucN`` fallback characters left out), escaped braces and backslashes as characters,
    and a nested ``\\field`` marked, then judged by :func:`field_danger`."""
    data = untrusted_data
    size = len(data)
    if not data.startswith(b"{\\rt"):
        raise SanitizeError(Reason.MALFORMED, "not RTF")
    stack: list[_Group] = []
    removed: list[RemovedItem] = []
    dropped: list[tuple[int, int]] = []
    root_out: bytearray | None = None
    pos = 0

    def emit(chunk: bytes, shown: bytes | None = None) -> None:
        """Write ``chunk``; ``shown`` is the text it stands for in a field instruction."""
        group = stack[-1]
        group.out += chunk
        group.tokens += 1
        if shown is not None and group.collect:
            for char in shown:
                if group.skip:
                    group.skip -= 1
                else:
                    group.text.append(char)

    while pos < size:
        byte = data[pos]
        if byte == 0x7B:  # {
            if len(stack) >= max_depth:
                raise LimitExceeded(Reason.LIMIT_DEPTH, f"RTF nesting > {max_depth}")
            outer = stack[-1] if stack else None
            stack.append(
                _Group(
                    start=pos,
                    collect=outer is not None and outer.collect,
                    unicode_skip=outer.unicode_skip if outer is not None else 1,
                )
            )
            pos += 1
            continue
        if byte == 0x7D:  # }
            if not stack:
                raise SanitizeError(Reason.MALFORMED, "unbalanced }")
            group = stack.pop()
            pos += 1
            code = group.code
            if code is None and group.first_word == b"fldinst":
                code = field_danger(group.text.decode("latin-1"), allowed_schemes)
            if not stack:
                root_out = bytearray(b"{" + group.out + b"}")
                if code is not None:
                    raise SanitizeError(Reason.MALFORMED, "the whole document is an object")
                break
            parent = stack[-1]
            if code is not None:
                if code not in removed:
                    removed.append(code)
                dropped.append((group.start, pos))
                if group.result is not None:
                    parent.out += group.result
                continue
            rendered = b"{" + bytes(group.out) + b"}"
            if group.first_word == b"result" and parent.code is not None:
                parent.result = rendered
            parent.out += rendered
            if parent.collect:
                parent.text += group.text
            continue
        if not stack:
            raise SanitizeError(Reason.MALFORMED, "text outside the document group")
        group = stack[-1]
        if byte == 0x5C:  # backslash
            if pos + 1 >= size:
                raise SanitizeError(Reason.MALFORMED, "truncated control word")
            nxt = data[pos + 1]
            if nxt in _LETTERS:
                match = _WORD.match(data, pos)
                assert match is not None  # a letter follows the backslash
                word, param = match.group(1), match.group(2)
                if len(word) > _MAX_WORD:
                    raise SanitizeError(Reason.MALFORMED, "control word too long")
                if len(param.lstrip(b"-")) > _MAX_PARAM_DIGITS or param == b"-":
                    raise SanitizeError(Reason.MALFORMED, "bad control word parameter")
                pos = match.end()
                lowered = word.lower()
                if group.tokens == 0 or (group.starred and group.first_word is None):
                    group.first_word = lowered
                    if lowered == b"field" and group.collect:
                        group.text += NESTED_MARK.encode()
                    group.collect = group.collect or lowered == b"fldinst"
                if lowered == b"uc" and param:
                    group.unicode_skip = max(0, min(int(param), 8))
                if lowered in DROP_WORDS and group.code is None:
                    group.code = DROP_WORDS[lowered]
                if lowered == b"bin":
                    count = int(param) if param and param != b"-" else 0
                    if count < 0 or pos + count > size:
                        raise SanitizeError(Reason.MALFORMED, "\\bin past the end")
                    emit(b"\\bin" + param + b" " + data[pos : pos + count])
                    pos += count
                    continue
                if lowered == b"u" and param:
                    code_point = int(param) % 0x10000  # \uN is a signed 16-bit number
                    emit(b"\\u" + param + b" ", chr(code_point).encode("latin-1", "replace"))
                    group.skip = group.unicode_skip if group.collect else 0
                    continue
                emit(b"\\" + word + param + b" ")
                continue
            if nxt == 0x27:  # \'hh
                hexpair = data[pos + 2 : pos + 4]
                if len(hexpair) != 2 or not all(c in _HEX for c in hexpair):
                    raise SanitizeError(Reason.MALFORMED, "bad \\' escape")
                emit(b"\\'" + hexpair, bytes((int(hexpair, 16),)))
                pos += 4
                continue
            if nxt == 0x2A and group.tokens == 0:  # \* at the start of a group
                group.starred = True
                emit(b"\\*")
                group.tokens = 0  # the destination word still counts as first
                pos += 2
                continue
            if nxt in (0x0D, 0x0A):
                emit(b"\\par ")
                pos += 2
                continue
            emit(bytes((0x5C, nxt)), bytes((nxt,)) if nxt in (0x5C, 0x7B, 0x7D) else b"")
            pos += 2
            continue
        text_match = _TEXT.match(data, pos)
        assert text_match is not None  # data[pos] is not a brace or a backslash
        emit(text_match.group(), text_match.group().replace(b"\r", b"").replace(b"\n", b""))
        pos = text_match.end()
    if root_out is None:
        # Unclosed groups at the end: Word closes them; so do we, innermost first, applying
        # the same rules by re-reading with the braces added.
        if not stack:
            raise SanitizeError(Reason.MALFORMED, "empty document")
        if len(stack) > max_depth:
            raise LimitExceeded(Reason.LIMIT_DEPTH, "RTF nesting")
        return rebuild_rtf(untrusted_data + b"}" * len(stack), max_depth, allowed_schemes)
    if not _TRAILER.fullmatch(data, pos):
        raise SanitizeError(Reason.MALFORMED, "content after the document group")
    return Rebuilt(data=bytes(root_out), removed=removed, dropped=dropped)


_TOKEN = re.compile(
    rb"\\'([0-9a-fA-F]{2})|\\([a-zA-Z]{1,32})(-?[0-9]{1,10})? ?|\\(.)|([{}])|([^\\{}]+)", re.DOTALL
)


def field_instructions(data: bytes) -> list[str]:
    """Every ``\\fldinst`` instruction as Word reads it, decoded by a reader of its own (not
    the rebuild's tokenizer): escapes decoded, one fallback character after ``\\uN``
    dropped, line ends ignored, a nested ``\\field`` marked with :data:`NESTED_MARK`."""
    found: list[str] = []
    open_fields: list[tuple[int, list[str]]] = []  # (brace depth of the \fldinst group, text)
    depth = 0
    skip = 0
    unicode_skips = [1]  # \ucN of each open group
    pos = 0
    while pos < len(data):
        token = _TOKEN.match(data, pos)
        if token is None:
            break
        pos = token.end()
        hexpair, word, param, symbol, brace, text = token.groups()
        shown = ""
        if brace == b"{":
            depth += 1
            unicode_skips.append(unicode_skips[-1])
        elif brace == b"}":
            if len(unicode_skips) > 1:
                unicode_skips.pop()
            while open_fields and open_fields[-1][0] >= depth:
                _depth, pieces = open_fields.pop()
                instruction = "".join(pieces)
                found.append(instruction)
                if open_fields:
                    open_fields[-1][1].append(instruction + " ")
            depth -= 1
        elif word is not None:
            lowered = word.lower()
            if lowered == b"fldinst":
                open_fields.append((depth, []))
            elif lowered == b"field" and open_fields:
                open_fields[-1][1].append(NESTED_MARK)
            elif lowered == b"bin" and param:
                pos += max(0, int(param))
            elif lowered == b"uc" and param:
                unicode_skips[-1] = max(0, min(int(param), 8))
            elif lowered == b"u" and param:
                shown, skip = chr(int(param) % 0x10000), unicode_skips[-1]
                if open_fields:
                    open_fields[-1][1].append(shown)
                continue
            continue
        elif hexpair is not None:
            shown = chr(int(hexpair, 16))
        elif symbol is not None:
            shown = symbol.decode("latin-1") if symbol in b"\\{}" else ""
        elif text is not None:
            shown = text.decode("latin-1").replace("\r", "").replace("\n", "")
        while skip and shown:
            shown, skip = shown[1:], skip - 1
        if open_fields and shown:
            open_fields[-1][1].append(shown)
    found.extend("".join(pieces) for _depth, pieces in open_fields)
    return found


def find_dangerous(
    data: bytes, allowed_schemes: Collection[str] = DEFAULT_ALLOWED_SCHEMES
) -> set[str]:
    """An independent look: rtfobj's objects, dangerous words in the raw bytes, and every
    field instruction judged by the same table as the rebuild."""
    found: set[str] = set()
    if olescan.rtf_objects(data):
        found.add(RemovedItem.OLE_OBJECT)
    match = _RAW_DANGER.search(data)
    if match:
        found.add(DROP_WORDS.get(match.group(1), RemovedItem.OLE_OBJECT))
    for instruction in field_instructions(data):
        code = field_danger(instruction, allowed_schemes)
        if code:
            found.add(code)
    return found


class RtfSanitizer(CdrSanitizer):
    """Rebuilds RTF without embedded objects and link fields; see the module docstring."""

    kind: ClassVar[str] = "rtf"

    def rebuild(self, untrusted_data: bytes, filename: str, ctx: CdrContext) -> CdrOutcome:
        rebuilt = rebuild_rtf(untrusted_data, ctx.policy.rtf_max_depth, ctx.allowed_schemes)
        return rebuilt_outcome(
            tuple(rebuilt.removed),
            rebuilt=rebuilt.data,
            filename=filename,
            rebuilt_name=filename,
            content_type="application/rtf",
            keep_if_clean=ctx.keep_if_clean,
        )

    def verify(self, data: bytes, ctx: CdrContext) -> None:
        found = find_dangerous(data, ctx.allowed_schemes)
        if found:
            raise SanitizeError(Reason.VERIFY_FAILED, ",".join(sorted(found)))
