"""Formulas in SpreadsheetML parts (cells, defined names, data validation, conditional
formatting, table columns), Strict and Transitional alike.

Threat model: a formula that reaches outside the workbook or calls code when Excel
recalculates — DDE (``=cmd|'/c calc'!A0``, any ``|`` outside a string), functions that fetch
or call (:data:`FETCHING_FUNCTIONS`: ``WEBSERVICE``, ``FILTERXML``, ``IMAGE``, ``RTD``,
``CALL``, ``REGISTER``, ``REGISTER.ID``, ``EXEC``, ``SQL.REQUEST``, and every ``_xll.``
add-in function), references to other workbooks (``[1]Sheet!A1``, a path before
``[book.xlsx]Sheet!A1``), ``HYPERLINK`` to a target whose scheme is not allowed (or is
computed, so unknown), and ``Auto_Open``-style names that run Excel 4 macros.

What is done: such a cell formula is removed and its cached value stays (what the sender's
Excel last showed); such a defined name is removed, and so is one that refers to a removed
sheet; a data-validation or conditional-formatting rule with such a formula is removed as a
whole, a table column formula on its own. Removed-item codes: ``dde``, ``formula_function``,
``external_link``, ``unsafe_link``, ``xlm_macro``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from typing import Final

from lxml import etree

from sanitizers.cdr.ooxml_package import S_NS, ancestor, remove, tags
from sanitizers.links import UNSAFE_LINK, is_allowed
from sanitizers.vocabulary import RemovedItem

FORMULA_FUNCTION: Final = RemovedItem.FORMULA_FUNCTION
FETCHING_FUNCTIONS: Final = frozenset(
    {
        "WEBSERVICE",
        "FILTERXML",
        "IMAGE",
        "RTD",
        "CALL",
        "REGISTER",
        "REGISTER.ID",
        "EXEC",
        "SQL.REQUEST",
    }
)
AUTO_NAMES: Final = re.compile(r"^(_xlnm\.)?auto_(open|close|activate|deactivate)", re.IGNORECASE)
# Elements holding a formula; a rule whose formula is dangerous goes as a whole.
_FORMULA_ELEMENTS: Final = ("f", "formula", "formula1", "formula2")
_TABLE_FORMULAS: Final = ("calculatedColumnFormula", "totalsRowFormula")
_RULES: Final = ("dataValidation", "cfRule")
STRING_LITERAL: Final = re.compile(r'"(?:[^"]|"")*"')
_FUNCTION: Final = re.compile(r"((?:_x[a-z]+\.)*)([A-Za-z][A-Za-z0-9_.]*)\s*\(")
# [n]Sheet!A1 or [n]!Name with n >= 1 (an externalLink index; [0] is this workbook), or a
# quoted path before [book]Sheet.
_EXTERNAL: Final = re.compile(r"\[[1-9]\d*\][^!\[\]]*!|'[^']*[\\/:][^']*\[[^\]]+\][^']*'!")
_HYPERLINK_TARGET: Final = re.compile(
    r'(?i)(?<![A-Za-z0-9_.])(?:_x[a-z]+\.)*HYPERLINK\s*\(\s*("(?:[^"]|"")*")?'
)


# Everything a dangerous formula must contain (a sound over-approximation of the checks
# below: "|" for DDE, "[" for a reference into another workbook, a fetching function's name,
# "_xll." or HYPERLINK): a formula without any of these is decided at once. Most are.
_SUSPECT: Final = re.compile(
    "|".join(
        [r"[|\[]", r"_xll\.", "HYPERLINK"]
        + [re.escape(name) for name in sorted(FETCHING_FUNCTIONS)]
    ),
    re.IGNORECASE,
)


# The same tokens, lower-cased bytes, for a whole part (bytes.find is much faster than a
# case-insensitive regular expression over a large sheet); "&#" starts a character reference.
_SUSPECT_BYTES: Final = (
    b"|", b"[", b"&#", b"_xll.", b"hyperlink",
    *(name.lower().encode() for name in sorted(FETCHING_FUNCTIONS)),
)  # fmt: skip
_XML_DECLARATION: Final = re.compile(rb"\A(?:\xef\xbb\xbf)?<\?xml\s[^>]*\?>")
_ENCODING: Final = re.compile(rb"""encoding\s*=\s*["']([A-Za-z0-9._-]*)["']""")


def may_hold_dangerous_formula(untrusted_xml: bytes) -> bool:
    """False only when no formula in this XML part can be dangerous, judged on its bytes:
    the part starts with an XML declaration naming UTF-8 (or ASCII, or no encoding: UTF-8),
    so every character of a formula is written as itself or as a character reference, and
    neither a :data:`_SUSPECT` token nor "&#" occurs in it. Anything else answers True, and
    each formula is then judged by :func:`formula_danger`."""
    declaration = _XML_DECLARATION.match(untrusted_xml)
    if declaration is None:
        return True
    encoding = _ENCODING.search(declaration.group())
    if encoding is not None and encoding.group(1).lower() not in (b"utf-8", b"us-ascii"):
        return True
    lowered = untrusted_xml.lower()
    return any(token in lowered for token in _SUSPECT_BYTES)


def formula_danger(untrusted_formula: str, allowed_schemes: Collection[str]) -> RemovedItem | None:
    """The removed-item code of a dangerous formula, or ``None``."""
    if _SUSPECT.search(untrusted_formula) is None:
        return None
    code = _outside_strings(STRING_LITERAL.sub('""', untrusted_formula))
    if code:
        return code
    for match in _HYPERLINK_TARGET.finditer(untrusted_formula):
        literal = match.group(1)
        if literal is None:
            return UNSAFE_LINK  # a computed target: what it will be is unknown
        target = literal[1:-1].replace('""', '"')
        if not target.startswith("#") and not is_allowed(target, allowed_schemes):
            return UNSAFE_LINK
    return None


def _outside_strings(formula: str) -> RemovedItem | None:
    if "|" in formula:
        return RemovedItem.DDE
    for match in _FUNCTION.finditer(formula):
        start = match.start()
        if start and (formula[start - 1].isalnum() or formula[start - 1] in "_."):
            continue
        if "_xll." in match.group(1).lower() or match.group(2).upper() in FETCHING_FUNCTIONS:
            return FORMULA_FUNCTION
    if _EXTERNAL.search(formula):
        return RemovedItem.EXTERNAL_LINK
    return None


def disarm_formulas(
    root: etree._Element, note: Callable[[RemovedItem], None], allowed_schemes: Collection[str]
) -> None:
    """Remove dangerous formulas from a SpreadsheetML part (any namespace of the formula
    element: x14 extensions write ``xm:f``)."""
    wanted = tuple(f"{{*}}{local}" for local in (*_FORMULA_ELEMENTS, *_TABLE_FORMULAS))
    for formula in list(root.iter(*wanted)):
        code = formula_danger(formula.text or "", allowed_schemes)
        if code is None:
            continue
        note(code)
        rules = [r for r in (ancestor(formula, local) for local in _RULES) if r is not None]
        remove(rules[0] if rules else formula)


def disarm_defined_names(
    root: etree._Element,
    note: Callable[[RemovedItem], None],
    allowed_schemes: Collection[str],
    removed_sheets: Collection[str],
) -> None:
    """Defined names of a workbook: auto-run names, dangerous formulas, removed sheets."""
    for name in list(root.iter(*tags(S_NS, "definedName"))):
        label = name.get("name") or ""
        text = name.text or ""
        refers_removed = any(
            f"{sheet}!" in text or f"'{sheet}'!" in text for sheet in removed_sheets
        )
        code = (
            RemovedItem.XLM_MACRO
            if AUTO_NAMES.match(label)
            else formula_danger(text, allowed_schemes)
        )
        if code:
            note(code)
        if code or refers_removed:
            remove(name)
