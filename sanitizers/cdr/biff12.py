"""The binary parts of an Excel binary workbook (``.xlsb``, MS-XLSB "BIFF12" record streams).

Threat model: a binary part is where an ``.xlsb`` keeps its cells, names and formulas; a
formula there can call code or fetch (``CALL``, ``REGISTER``, ``EXEC``, ``RTD`` as built-in
function tokens; ``_xlfn.WEBSERVICE``, ``_xlfn.FILTERXML``, add-in ``_xll.`` functions by
name), and a part can be anything at all under a worksheet's content type (an OLE file, a program).

What is done: the record stream is walked (each record a 1–2 byte type and a 1–4 byte size,
both 7 bits per byte): a part that does not consist exactly of well-formed records, or is an
OLE file, is not kept (``unknown_part``). Formulas are not rewritten token by token; instead
a part in which a token calling one of those built-in functions may occur (``PtgFunc`` /
``PtgFuncVar`` with its function number, anywhere in a record: a false alarm only removes
more), or the name of a fetching function written in UTF-16, makes the whole workbook go
(``formula_function``): fail closed rather than keep a formula whose meaning was not read.

Deliberately left alone: cell values, styles, shared strings, and formulas that neither
fetch nor call.
"""

from __future__ import annotations

import re
from typing import Final

from sanitizers.cdr import olescan
from sanitizers.cdr.ooxml_sheet import FETCHING_FUNCTIONS
from sanitizers.vocabulary import RemovedItem

# Content types of the binary parts an .xlsb is made of (lower-case).
PART_TYPES: Final = frozenset(
    "application/vnd.ms-excel." + name
    for name in (
        "sheet.binary.macroenabled.main", "worksheet", "sharedstrings", "styles", "calcchain",
        "comments", "table", "chartsheet", "pivottable", "pivotcachedefinition",
        "pivotcacherecords", "connections", "querytable",
    )
)  # fmt: skip
# Built-in functions that call code or fetch, by their number in the function table
# (MS-XLSB Ftab): EXEC 110, REGISTER 149, CALL 150, REGISTER.ID 267, RTD 379.
_CALLING: Final = (110, 149, 150, 267, 379)
_FUNCTION_TOKEN: Final = re.compile(
    b"|".join(
        re.escape(bytes([ptg]) + number.to_bytes(2, "little"))
        + b"|"
        + re.escape(bytes([ptg + 1]))
        + b"[\\x00-\\xff]"
        + re.escape(number.to_bytes(2, "little"))
        for ptg in (0x21, 0x41, 0x61)
        for number in _CALLING
    ),
    re.DOTALL,
)
# Functions Excel stores by name in a binary workbook: newer ones with "_xlfn.", add-ins "_xll.".
_FUNCTION_NAMES: Final = re.compile(
    b"|".join(
        [
            re.escape(f"_xlfn.{name}(".encode("utf-16-le")[:-2])
            for name in sorted(FETCHING_FUNCTIONS)
        ]
        + [re.escape("_xll.".encode("utf-16-le"))]
    ),
    re.IGNORECASE,
)


def _varint(data: bytes, pos: int, most: int) -> tuple[int, int] | None:
    value = shift = 0
    for count in range(most):
        if pos >= len(data):
            return None
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos
        if count == most - 1:
            return None
    return None


def well_formed(data: bytes) -> bool:
    """Whether ``data`` is exactly a sequence of BIFF12 records."""
    pos = 0
    while pos < len(data):
        kind = _varint(data, pos, 2)
        if kind is None:
            return False
        size = _varint(data, kind[1], 4)
        if size is None or size[1] + size[0] > len(data):
            return False
        pos = size[1] + size[0]
    return bool(data)


def problem(untrusted_content: bytes) -> RemovedItem | None:
    """Why a binary part cannot be kept (``None``: it is a record stream without calling or
    fetching formulas)."""
    if olescan.is_ole(untrusted_content) or not well_formed(untrusted_content):
        return RemovedItem.UNKNOWN_PART
    if _FUNCTION_TOKEN.search(untrusted_content) or _FUNCTION_NAMES.search(untrusted_content):
        return RemovedItem.FORMULA_FUNCTION
    return None
