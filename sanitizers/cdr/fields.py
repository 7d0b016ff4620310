"""Word field codes that fetch or run something: the one table for OOXML and RTF.

Threat model: a Word field is an instruction Word evaluates when the document is opened or
its fields are updated. Some reach outside the document or run something: ``DDE``/``DDEAUTO``
start a program, ``INCLUDEPICTURE``/``INCLUDETEXT``/``INCLUDE``/``LINK``/``IMPORT``/``RD``
fetch a file or URL (a UNC path leaks the user's NTLM credentials), ``DATABASE`` runs a query
on an external data source, ``EMBED`` is an OLE object, ``MACROBUTTON`` and ``PRINT`` (printer
escapes) act on Word or the printer, ``HYPERLINK`` opens its target when clicked. The keyword
may be spelled in any case, split across runs, escaped (RTF ``\\'hh``, ``\\uN``) or computed
by nested fields (``QUOTE`` with character codes, an ``IF`` whose result is ``DDEAUTO``).

So an instruction is dangerous when its keyword is in :data:`FIELD_CODES`, when it is a
``HYPERLINK`` whose target's scheme is not allowed (:mod:`sanitizers.links`), or when its
keyword is not written at all but computed (the instruction begins with a nested field). The
OOXML and RTF sanitizers and their verifications all call :func:`field_danger` on the
instruction text they have assembled, each in its own way.

Left alone: every other field (PAGE, TOC, REF, MERGEFIELD — its data source is removed with
the mail-merge settings —, ``=`` formulas, HYPERLINK to a bookmark or an allowed URL).
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Final

from sanitizers.links import UNSAFE_LINK, is_allowed
from sanitizers.vocabulary import RemovedItem

# Field keyword → removed-item code.
FIELD_CODES: Final[dict[str, RemovedItem]] = {
    "DDE": RemovedItem.DDE,
    "DDEAUTO": RemovedItem.DDE,
    "LINK": RemovedItem.LINKED_FIELD,
    "INCLUDETEXT": RemovedItem.LINKED_FIELD,
    "INCLUDEPICTURE": RemovedItem.LINKED_FIELD,
    "INCLUDE": RemovedItem.LINKED_FIELD,
    "IMPORT": RemovedItem.LINKED_FIELD,
    "RD": RemovedItem.LINKED_FIELD,
    "QUOTE": RemovedItem.LINKED_FIELD,
    "DATABASE": RemovedItem.DATA_CONNECTION,
    "EMBED": RemovedItem.OLE_OBJECT,
    "MACROBUTTON": RemovedItem.PROGRAM_ACTION,
    "PRINT": RemovedItem.PROGRAM_ACTION,
}
# The removed-item code of a field whose keyword is computed by nested fields.
COMPUTED_FIELD: Final = RemovedItem.COMPUTED_FIELD
# Where a nested field begins in an assembled instruction (the assemblers write this mark).
NESTED_MARK: Final = "\x00"

_KEYWORD: Final = re.compile(r'[^\s"\\]+')
_ARGUMENT: Final = re.compile(r'"([^"]*)"?|([^\s"]+)')


def field_danger(instruction: str, allowed_schemes: Collection[str]) -> RemovedItem | None:
    """The removed-item code of a field with this instruction text, or ``None`` if harmless.

    ``instruction`` is the field's own text with :data:`NESTED_MARK` where a nested field
    begins (its instruction follows the mark)."""
    stripped = instruction.lstrip(' \t\r\n\u3000"')
    if stripped.startswith(NESTED_MARK):
        return COMPUTED_FIELD
    flat = stripped.replace(NESTED_MARK, " ")
    match = _KEYWORD.match(flat)
    if match is None:
        return None
    keyword = match.group().upper()
    if keyword in FIELD_CODES:
        return FIELD_CODES[keyword]
    if keyword == "HYPERLINK":
        arguments = _ARGUMENT.findall(flat[match.end() :])
        return _hyperlink_danger([quoted or bare for quoted, bare in arguments], allowed_schemes)
    return None


def _hyperlink_danger(arguments: list[str], allowed_schemes: Collection[str]) -> RemovedItem | None:
    """HYPERLINK "target" [\\l "bookmark"] [\\o "tip"] …: the target is the first argument
    that is not a switch or a switch's value. No target (a bookmark only) is internal."""
    skip = False
    for argument in arguments:
        if skip:
            skip = False
            continue
        if argument.startswith("\\") and len(argument) == 2:
            skip = argument[1].lower() in "lot"  # switches that take a value
            continue
        return None if is_allowed(argument, allowed_schemes) else UNSAFE_LINK
    return None
