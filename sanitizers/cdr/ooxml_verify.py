"""An independent look at an OOXML package: what the rebuilt output must not contain.

It shares no walk with the rebuild: every part of the zip is looked at (not only those the
relationships reach): every part is checked for an OLE compound file, every ``.rels`` for an
external or dangerous relationship, oletools (olevba) looks for VBA anywhere; fields
are re-assembled from the field markers of every XML part in any namespace (so a Strict part
or a marker in an odd place is seen too) and judged by the same table
(:mod:`sanitizers.cdr.fields`), spreadsheet formulas by :func:`formula_danger`, and every
binary part must be media whose content is what its type says. Embedded packages are looked
into the same way, up to ``NESTED_MAX`` levels.

oletools' own OOXML scan (``oleobj``: OLE parts and external relationships) is not run: it
parses every XML part again in Python (two thirds of an xlsx's verification time) to find
``Relationship`` elements, which only ``.rels`` parts hold and which the loop here reads
itself; the OLE parts it finds are those :func:`olescan.is_ole` finds on every part here.
``tests/sanitizers/cdr/test_ooxml_verify.py`` shows each reference kind is still caught.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Collection

from lxml import etree

from sanitizers.cdr import biff12, olescan
from sanitizers.cdr.fields import NESTED_MARK, field_danger
from sanitizers.cdr.ooxml_media import media_problem
from sanitizers.cdr.ooxml_package import (
    CONTENT_TYPES,
    DANGEROUS_CT,
    NESTED_MAX,
    REL_CODES,
    S_NS,
    XLSB_MAIN,
    ContentTypes,
    canonical,
    is_xml_type,
    parse_rels,
    parse_xml,
    read_package,
    resolve,
)
from sanitizers.cdr.ooxml_sheet import formula_danger, may_hold_dangerous_formula
from sanitizers.cdr.settings import CdrPolicy
from sanitizers.links import DEFAULT_ALLOWED_SCHEMES
from sanitizers.vocabulary import RemovedItem

_PROGRAM_ACTION = re.compile(rb"ppaction://(program|macro|ole)", re.IGNORECASE)
_FORMULAS = ("f", "formula", "formula1", "formula2", "calculatedColumnFormula", "totalsRowFormula")


def _source_of(rels: str) -> str:
    head, tail = posixpath.split(rels)
    return posixpath.join(posixpath.dirname(head), tail[: -len(".rels")])


def field_findings(root: etree._Element, allowed_schemes: Collection[str]) -> set[str]:
    """Codes of dangerous fields in one parsed part: simple fields, and complex fields
    re-assembled from their markers in document order, nested fields included."""
    found: set[str] = set()
    stack: list[list[str]] = []  # per open field: [instruction pieces..., state]
    in_result: list[bool] = []
    for elem in root.iter("{*}fldSimple", "{*}fldChar", "{*}instrText", "{*}delInstrText"):
        local = etree.QName(elem).localname
        if local == "fldSimple":
            instr = next((str(v) for k, v in elem.attrib.items() if str(k).endswith("instr")), "")
            code = field_danger(instr, allowed_schemes)
            if code:
                found.add(code)
            continue
        if local != "fldChar":
            if stack and not in_result[-1]:
                stack[-1].append(elem.text or "")
            continue
        kind = next((str(v) for k, v in elem.attrib.items() if str(k).endswith("fldCharType")), "")
        if kind == "begin":
            if stack and not in_result[-1]:
                stack[-1].append(NESTED_MARK)
            stack.append([])
            in_result.append(False)
        elif kind == "separate" and stack:
            in_result[-1] = True
        elif kind == "end" and stack:
            instruction = "".join(stack.pop())
            in_result.pop()
            if stack and not in_result[-1]:
                stack[-1].append(instruction + " ")
            code = field_danger(instruction, allowed_schemes)
            if code:
                found.add(code)
    for pieces in stack:
        code = field_danger("".join(pieces), allowed_schemes)
        if code:
            found.add(code)
    return found


def formula_findings(root: etree._Element, allowed_schemes: Collection[str]) -> set[str]:
    found: set[str] = set()
    for elem in root.iter(*(f"{{*}}{local}" for local in _FORMULAS)):
        code = formula_danger(elem.text or "", allowed_schemes)
        if code:
            found.add(code)
    for elem in root.iter("{*}definedName"):
        code = formula_danger(elem.text or "", allowed_schemes)
        if code:
            found.add(code)
    return found


def _xml_findings(name: str, content: bytes, allowed_schemes: Collection[str]) -> set[str]:
    found: set[str] = set()
    if _PROGRAM_ACTION.search(content):
        found.add(RemovedItem.PROGRAM_ACTION)
    root = parse_xml(content, name)
    found |= field_findings(root, allowed_schemes)
    if canonical(etree.QName(root).namespace) == S_NS and may_hold_dangerous_formula(content):
        found |= formula_findings(root, allowed_schemes)
    if next(root.iter("{*}mailMerge"), None) is not None:
        found.add(RemovedItem.DATA_CONNECTION)
    return found


def find_dangerous(
    data: bytes,
    policy: CdrPolicy | None = None,
    level: int = 0,
    allowed_schemes: Collection[str] = DEFAULT_ALLOWED_SCHEMES,
) -> set[str]:
    """What oletools and a plain look at every part still find in a package."""
    parts = read_package(data, policy or CdrPolicy())
    found: set[str] = set()
    if CONTENT_TYPES not in parts or "_rels/.rels" not in parts:
        return {"no_content_types"}
    types = ContentTypes(parts[CONTENT_TYPES])
    for ctype in [*types.overrides.values(), *types.defaults.values()]:
        low = ctype.lower()
        if low in DANGEROUS_CT:
            found.add(DANGEROUS_CT[low])
        elif "macroenabled" in low and low != XLSB_MAIN.lower():
            found.add(RemovedItem.VBA)
    for name, content in parts.items():
        low = name.lower()
        nested = content[:4] == b"PK\x03\x04"
        if nested and level < NESTED_MAX:
            inner = find_dangerous(content, policy, level + 1, allowed_schemes)
            found |= {f"{name}>{item}" for item in inner}
        elif nested:
            found.add("nested too deep:" + name)
        if "vbaproject" in low or "/activex/" in low or ("/embeddings/" in low and not nested):
            found.add("part:" + name)
        if "macrosheets/" in low or "customui/" in low:
            found.add("part:" + name)
        if olescan.is_ole(content):
            found.add(RemovedItem.OLE_OBJECT)
        ctype = types.of(name)
        if name.endswith(".rels"):
            for rel in parse_rels(content, name):
                if rel.external:
                    found.add(RemovedItem.EXTERNAL_RELATIONSHIP)
                if rel.short_type == "package" and not rel.external:
                    target = resolve(_source_of(name), rel.target)
                    if target is None or parts.get(target, b"")[:4] != b"PK\x03\x04":
                        found.add(RemovedItem.EMBEDDED_PACKAGE)
                elif rel.short_type in REL_CODES:
                    found.add(REL_CODES[rel.short_type])
        elif name == CONTENT_TYPES:
            continue
        elif ctype.lower() == "image/svg+xml":
            found.add("svg:" + name)
        elif is_xml_type(ctype) or (low.endswith(".xml") and not nested):
            found |= _xml_findings(name, content, allowed_schemes)
        elif ctype.lower() in biff12.PART_TYPES:
            code = biff12.problem(content)
            if code:
                found.add(f"{code}:{name}")
        elif not nested:
            problem = media_problem(content, ctype)
            if problem:
                found.add(f"{problem}:{name}")
    rels = parse_rels(parts["_rels/.rels"], "_rels/.rels")
    mains = [resolve("", r.target) for r in rels if r.short_type == "officeDocument"]
    if not mains or mains[0] is None or mains[0] not in parts:
        found.add("no_main_part")
    found |= olescan.macros(data, "file.zip")
    return found
