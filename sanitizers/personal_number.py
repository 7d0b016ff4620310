"""My Number (個人番号) in text: twelve digits whose check digit is valid, and only in context.

Intent: outbound mail must not carry residents' individual numbers out of the municipality
unnoticed (番号法; the security policy's 添付ファイルの監視). The check digit is the statutory
one (python-stdnum's ``stdnum.jp.in_``), but one random twelve-digit string in ten passes it
(telephone lists, account numbers, order numbers), so a number counts only with context:

- a keyword (:data:`KEYWORDS`: 個人番号, マイナンバー, My Number, Individual Number, written
  in any width or case) within :data:`CONTEXT_CHARS` characters before or after it; or
- a column header: in a table (lines of cells separated by tabs, as
  :mod:`sanitizers.document_text` writes spreadsheets, CSV files and document tables), a cell
  above it in the same column holds a keyword.

Written forms: full-width digits (０-９) are read as digits; the digits may be grouped by one
to three separator characters (:data:`SEPARATORS`: spaces of every width, hyphens, dashes, minus
signs and the long-vowel mark often typed for a hyphen). A run of digits joined by separators
is one number only when it has exactly twelve digits, or when it is several numbers of twelve
whose groups end at every twelfth digit (``621498320257 621498320258``); a longer run (a card
number, a telephone list written as one string) is not cut into a twelve-digit slice.

What is found is reported masked (only the last four digits shown): the report, the audit and
the notice never carry a whole number. Threat model: the text is the sender's, so it is
bounded (:data:`MAX_MATCHES`, and the caller's character limit); nothing here raises on any
input.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from dataclasses import dataclass
from typing import Final

from stdnum.jp import in_ as individual_number

# Characters of context searched on each side of a number for a keyword.
CONTEXT_CHARS: Final = 40
# Numbers reported per text (a spreadsheet of residents has thousands; a few prove the point).
MAX_MATCHES: Final = 100
KEYWORDS: Final = ("個人番号", "マイナンバー", "mynumber", "individualnumber")
SEPARATORS: Final = " \u00a0\u3000-\u2010\u2011\u2012\u2013\u2014\u2015\u2212\uff0d\u30fc\uff70"
_FULL_WIDTH_DIGITS: Final = str.maketrans("０１２３４５６７８９", "0123456789")
_SEPARATOR_CLASS: Final = "[" + re.escape(SEPARATORS) + "]"
# A run of digits joined by at most three separator characters at a time ("6214 - 9832").
_RUN: Final = re.compile(rf"[0-9](?:{_SEPARATOR_CLASS}{{0,3}}[0-9])*")
_GROUP: Final = re.compile(r"[0-9]+")
_DIGITS: Final = 12
# What a keyword is compared in: width and case folded, spaces and the middle dot removed.
_SQUEEZE: Final = re.compile(r"[\s・･_]+")
# A character every keyword has in any width (番, ナ, ﾅ, n): text without one has none (most
# table cells: names, addresses, dates), so it is not normalised at all.
_KEYWORD_HINT: Final = re.compile(r"[番ナﾅnNｎＮ]")


@dataclass(frozen=True, slots=True)
class PersonalNumber:
    """One number found: where it is in the text, masked, and what gave it context."""

    start: int
    end: int
    masked: str  # "********0257"
    context: str  # "keyword" or "column"


def is_valid_number(digits: str) -> bool:
    """Twelve ASCII digits whose last is the statutory check digit of the first eleven."""
    return len(digits) == _DIGITS and digits.isascii() and individual_number.is_valid(digits)


def mask(digits: str) -> str:
    return "*" * (len(digits) - 4) + digits[-4:]


def has_keyword(text: str) -> bool:
    """Whether ``text`` names the individual number (any width, case or spacing)."""
    if not _KEYWORD_HINT.search(text):
        return False
    folded = _SQUEEZE.sub("", unicodedata.normalize("NFKC", text).casefold())
    return any(keyword in folded for keyword in KEYWORDS)


def find_personal_numbers(text: str, limit: int = MAX_MATCHES) -> list[PersonalNumber]:
    """Every number in ``text`` that is valid and has context, in order, at most ``limit``."""
    normalized = text.translate(_FULL_WIDTH_DIGITS)  # one character for one: offsets hold
    found: list[PersonalNumber] = []
    columns: _ColumnHeaders | None = None  # read only when a number needs it
    for start, end, digits in _candidates(normalized):
        if not is_valid_number(digits):
            continue
        if has_keyword(normalized[max(0, start - CONTEXT_CHARS) : end + CONTEXT_CHARS]):
            context = "keyword"
        elif (columns := columns or _ColumnHeaders(normalized)).under_keyword(start):
            context = "column"
        else:
            continue
        found.append(PersonalNumber(start, end, mask(digits), context))
        if len(found) >= limit:
            break
    return found


def _candidates(text: str) -> list[tuple[int, int, str]]:
    """(start, end, digits) of each twelve-digit number a run of digits is made of."""
    candidates: list[tuple[int, int, str]] = []
    for run in _RUN.finditer(text):
        pieces: list[tuple[int, int]] = []
        count = 0
        first: int | None = None
        for group in _GROUP.finditer(run.group()):
            size = len(group.group())
            first = group.start() if first is None else first
            if (count + size) // _DIGITS != count // _DIGITS and (count + size) % _DIGITS:
                pieces = []  # a group straddles a twelfth digit: not a list of numbers
                break
            count += size
            if count % _DIGITS == 0:
                pieces.append((first, group.end()))
                first = None
        if count % _DIGITS:
            continue
        for start, end in pieces:
            digits = "".join(_GROUP.findall(run.group()[start:end]))
            candidates.append((run.start() + start, run.start() + end, digits))
    return candidates


class _ColumnHeaders:
    """Whether a cell above an offset, in the same column of the same table, names the
    individual number. A table is a block of consecutive lines that hold a tab; its cells are
    separated by tabs (a spreadsheet or CSV file as :mod:`sanitizers.document_text` writes it)."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._starts: list[int] = []
        self._ends: list[int] = []
        self._marked: list[frozenset[int]] = []  # per table line: columns headed by a keyword
        marked: set[int] = set()
        position = 0
        for line in text.split("\n"):
            end = position + len(line)
            if "\t" in line:
                self._starts.append(position)
                self._ends.append(end)
                self._marked.append(frozenset(marked))
                marked |= {
                    index for index, cell in enumerate(line.split("\t")) if has_keyword(cell)
                }
            else:
                marked = set()
            position = end + 1

    def under_keyword(self, offset: int) -> bool:
        index = bisect.bisect_right(self._starts, offset) - 1
        if index < 0 or offset > self._ends[index]:
            return False
        column = self._text.count("\t", self._starts[index], offset)
        return column in self._marked[index]
