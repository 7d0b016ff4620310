"""Excel binary workbooks (``.xlsb``): rebuilt like any OOXML package, as their own kind.

Threat model and what is done: those of :mod:`sanitizers.cdr.ooxml` (``vbaProject.bin``,
macro sheets, ActiveX, embedded objects, external links and connections go; content types
and relationships are written from scratch; pictures are re-encoded), with the binary record
parts checked by :mod:`sanitizers.cdr.biff12`. A workbook whose records may hold a formula
that calls code or fetches is removed whole (``formula_function``): the records are not
rewritten token by token. The kind is separate so that a policy can treat ``.xlsb``
differently from the XML formats.
"""

from __future__ import annotations

from typing import ClassVar

from sanitizers.cdr import biff12
from sanitizers.cdr.base import CdrContext, CdrOutcome
from sanitizers.cdr.findings import gravest
from sanitizers.cdr.ooxml import OoxmlSanitizer
from sanitizers.cdr.ooxml_package import CONTENT_TYPES, ContentTypes, read_package
from sanitizers.errors import SanitizeError
from sanitizers.vocabulary import Action, Reason, RemovedItem


class XlsbSanitizer(OoxmlSanitizer):
    """Rebuilds an ``.xlsb`` package; removes one whose formulas may call or fetch."""

    kind: ClassVar[str] = "xlsb"

    def rebuild(self, untrusted_data: bytes, filename: str, ctx: CdrContext) -> CdrOutcome:
        parts = read_package(untrusted_data, ctx.policy)
        if CONTENT_TYPES not in parts:
            raise SanitizeError(Reason.MALFORMED, "no [Content_Types].xml")
        types = ContentTypes(parts[CONTENT_TYPES])
        for name, content in parts.items():
            if types.of(name).lower() not in biff12.PART_TYPES:
                continue
            if biff12.problem(content) == RemovedItem.FORMULA_FUNCTION:
                codes = (RemovedItem.FORMULA_FUNCTION,)
                return CdrOutcome(
                    action=Action.REMOVED, reason=gravest(codes), removed=codes, detail=name
                )
        return super().rebuild(untrusted_data, filename, ctx)
