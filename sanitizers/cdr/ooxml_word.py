"""Word fields and mail merge in WordprocessingML parts (document, headers, footers,
footnotes, endnotes, comments, the glossary), Strict and Transitional alike.

Threat model: a field that fetches or runs something (:mod:`sanitizers.cdr.fields`) written
any way Word accepts: a simple field (``w:fldSimple w:instr``), a complex field whose
begin/instruction/separate/end markers sit in separate runs, in one run, or spread over many
runs that split the keyword (``DD`` + ``EAUTO``), nested fields that compute the keyword,
deleted instruction text (``w:delInstrText``, which Word still evaluates in some views); and
mail-merge settings that open a data source (a UNC path, an ODBC connection string).

What is done: every run holding field markers together with other content is first split so
each marker or instruction sits in a run of its own (with the run's properties); then the
fields are read in document order with a stack (nested fields), and a dangerous field loses
its markers and its whole instruction (nested fields inside it included) while its last
shown result stays as plain text. ``w:mailMerge`` is removed (``data_connection``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

from lxml import etree

from sanitizers.cdr.fields import NESTED_MARK, field_danger
from sanitizers.cdr.ooxml_package import W_NS, attribute, is_element, is_named, remove, tags, unwrap
from sanitizers.vocabulary import RemovedItem

_INSTRUCTION = ("instrText", "delInstrText")
_MARKERS = ("fldChar", *_INSTRUCTION)


@dataclass
class _Field:
    """One complex field being read: its instruction text and the runs that carry it."""

    instr: list[str] = field(default_factory=list)
    instr_runs: list[etree._Element] = field(default_factory=list)
    markers: list[etree._Element] = field(default_factory=list)
    in_result: bool = False


def _local(elem: etree._Element) -> str:
    return etree.QName(elem).localname if is_element(elem) else ""


def split_field_runs(root: etree._Element) -> None:
    """Give every field marker and instruction a run of its own (same run properties)."""
    for run in list(root.iter(*tags(W_NS, "r"))):
        content = [child for child in run if is_element(child) and _local(child) != "rPr"]
        if len(content) < 2 or not any(_local(child) in _MARKERS for child in content):
            continue
        properties = next((c for c in run if is_element(c) and _local(c) == "rPr"), None)
        parent = run.getparent()
        if parent is None:
            continue
        for child in content:
            piece = etree.Element(run.tag)
            for key, value in run.attrib.items():
                piece.set(key, value)
            if properties is not None:
                piece.append(copy.deepcopy(properties))
            piece.append(child)
            parent.insert(parent.index(run), piece)
        remove(run)


def _marker(run: etree._Element) -> str | None:
    """``begin``/``separate``/``end`` of the field character a (split) run holds."""
    for child in run:
        if is_named(child, W_NS, "fldChar"):
            return attribute(child, W_NS, "fldCharType")
    return None


def disarm_fields(
    root: etree._Element, note: Callable[[RemovedItem], None], allowed_schemes: Collection[str]
) -> None:
    """Remove dangerous simple and complex fields (nested too), keeping their shown result."""
    for simple in list(root.iter(*tags(W_NS, "fldSimple"))):
        code = field_danger(attribute(simple, W_NS, "instr") or "", allowed_schemes)
        if code:
            note(code)
            unwrap(simple)
    if next(root.iter(*tags(W_NS, "fldChar")), None) is None:
        return
    split_field_runs(root)
    stack: list[_Field] = []
    doomed: list[etree._Element] = []
    for run in list(root.iter(*tags(W_NS, "r"))):
        kind = _marker(run)
        for outer in stack:
            if not outer.in_result:
                outer.instr_runs.append(run)
        if kind == "begin":
            if stack and not stack[-1].in_result:
                stack[-1].instr.append(NESTED_MARK)
            stack.append(_Field(markers=[run]))
            continue
        if kind in ("separate", "end") and stack:
            current = stack[-1]
            current.markers.append(run)
            if kind == "separate":
                current.in_result = True
                continue
            stack.pop()
            instruction = "".join(current.instr)
            if stack and not stack[-1].in_result:
                stack[-1].instr.append(instruction + " ")
            code = field_danger(instruction, allowed_schemes)
            if code:
                note(code)
                doomed.extend(current.markers)
                doomed.extend(current.instr_runs)
            continue
        if stack and not stack[-1].in_result:
            stack[-1].instr.extend(
                child.text or "" for child in run if _local(child) in _INSTRUCTION
            )
    # A field left open at the end of the part: Word ignores it, and so is its instruction.
    for unfinished in stack:
        code = field_danger("".join(unfinished.instr), allowed_schemes)
        if code:
            note(code)
            doomed.extend(unfinished.markers)
            doomed.extend(unfinished.instr_runs)
    for run in doomed:
        if run.getparent() is not None:
            remove(run)


def disarm_mail_merge(root: etree._Element, note: Callable[[RemovedItem], None]) -> None:
    """Mail-merge settings open a data source (a file, a UNC path, an ODBC connection)."""
    for merge in list(root.iter(*tags(W_NS, "mailMerge"))):
        note(RemovedItem.DATA_CONNECTION)
        remove(merge)
