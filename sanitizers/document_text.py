"""The text of an attachment, for the outbound checks (My Number, keywords, patterns).

Intent: the outbound direction never rebuilds a file, but it must read what a file says:
Word, Excel and PowerPoint files (OOXML), PDF, CSV and other text, 一太郎, HTML, and the same
inside ZIP archives. Tables come out as lines of cells separated by tabs (a spreadsheet row, a
CSV record, a row of a Word or PowerPoint table), so a column header can give a number its
context (:mod:`sanitizers.personal_number`).

Reuses the project's own readers: the charset logic of text attachments
(:func:`sanitizers.cdr.text.decode`), the bounded OOXML/ZIP package reader and safe XML parser
(:mod:`sanitizers.cdr.ooxml_package`), 一太郎's text (:mod:`sanitizers.cdr.ichitaro`), the
HTML-to-text converter, the content-based type detector. PDF text is read with pypdf (BSD),
only here.

Threat model: the file is the sender's and may be broken, encrypted or built to exhaust
(a ZIP bomb, a PDF with endless pages). Every reader is bounded by the CDR limits of the policy
(entries, uncompressed bytes, ratio, nesting) and by ``max_chars`` of text in all. A file that
cannot be read raises :class:`Unreadable` with its reason (``encrypted``, ``encrypted_archive``,
``malformed``, ``unsupported_archive``, a ``limit_*``): the caller decides, failing closed. Nothing
is executed; no file is written.
"""

from __future__ import annotations

import csv
import io
import posixpath
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from lxml import etree

from sanitizers.cdr import olescan
from sanitizers.cdr.ichitaro import extract_text as ichitaro_text
from sanitizers.cdr.ooxml_package import parse_xml, read_package
from sanitizers.cdr.settings import CdrPolicy
from sanitizers.cdr.text import decode
from sanitizers.errors import LimitExceeded, SanitizeError
from sanitizers.filetype import detect
from sanitizers.html_text import html_to_text
from sanitizers.policy import LinkMode
from sanitizers.vocabulary import FileKind, Reason

# Pages of a PDF read for text (a report of residents fits; an endless PDF is cut here).
MAX_PDF_PAGES: Final = 500
# Text files whose records are split into cells.
_DELIMITED: Final = {".csv": ",", ".tsv": "\t"}
_SHEET: Final = re.compile(r"^xl/worksheets/[^/]+\.xml$")
_SLIDE: Final = re.compile(r"^ppt/slides/slide[0-9]+\.xml$")
_WORD_PARTS: Final = re.compile(
    r"^word/(document|header[0-9]*|footer[0-9]*|footnotes|endnotes)\.xml$"
)
_CELL_REF: Final = re.compile(r"^([A-Z]{1,3})[0-9]+$")
# The most columns a spreadsheet row is spread over (XFD is Excel's last, 16,384).
_MAX_COLUMN: Final = 16384


class Unreadable(SanitizeError):
    """The text of a file cannot be read; ``reason`` says why (vocabulary)."""


@dataclass(frozen=True, slots=True)
class FileText:
    """The text of one file; ``name`` is its path inside archives (``a.zip › b.xlsx``)."""

    name: str
    kind: str
    text: str


class _Budget:
    """Characters of text left for one attachment and everything inside it."""

    def __init__(self, max_chars: int) -> None:
        self.left = max_chars

    def take(self, text: str) -> str:
        if len(text) > self.left:
            raise Unreadable(Reason.LIMIT_SIZE, "more text than policy.limits.max_text_chars")
        self.left -= len(text)
        return text


def file_texts(
    untrusted_data: bytes,
    *,
    name: str,
    declared_type: str,
    policy: CdrPolicy,
    max_chars: int,
) -> list[FileText]:
    """The text of a file and of every file inside it (ZIP); kinds without text give none.
    Raises :class:`Unreadable` for a file (or a member) whose text cannot be read."""
    return list(_texts(untrusted_data, name, declared_type, policy, _Budget(max_chars), 0))


def _texts(
    data: bytes, name: str, declared: str, policy: CdrPolicy, budget: _Budget, depth: int
) -> Iterator[FileText]:
    kind = detect(data, declared, name).kind
    if kind == FileKind.ZIP:
        if depth >= policy.zip_max_depth:
            raise Unreadable(Reason.LIMIT_DEPTH, f"{name}: archives nested too deep")
        for member, content in sorted(_package(data, policy).items()):
            if member.endswith("/"):
                continue
            yield from _texts(
                content, f"{name} › {member}", "application/octet-stream", policy, budget, depth + 1
            )
        return
    try:
        text = _text_of(kind, data, name, policy, budget.left)
    except Unreadable:
        raise
    except SanitizeError as exc:  # a reader of the project's (一太郎, XML) refused it
        raise Unreadable(exc.reason, exc.detail) from exc
    if text is not None:
        yield FileText(name, kind, budget.take(text))


def _text_of(kind: str, data: bytes, name: str, policy: CdrPolicy, max_chars: int) -> str | None:
    """The text of one file that is not an archive; None for a kind that has none to read."""
    if kind == FileKind.OOXML:
        return _ooxml_text(_package(data, policy), name)
    if kind == FileKind.PDF:
        return _pdf_text(data, name)
    if kind == FileKind.TEXT:
        text, _, _ = decode(data, None)
        delimiter = _DELIMITED.get(posixpath.splitext(name.lower())[1])
        return _as_cells(text, delimiter) if delimiter else text
    if kind == FileKind.HTML:
        text, _, _ = decode(data, None, html=True)
        return html_to_text(text, LinkMode.KEEP)
    if kind == FileKind.ICHITARO:
        return ichitaro_text(data, policy, max_chars=max_chars)
    if kind == FileKind.OLE and olescan.is_encrypted(data):
        raise Unreadable(Reason.ENCRYPTED, f"{name}: a password-protected Office file")
    if kind in (FileKind.ARCHIVE, FileKind.OLE, FileKind.ODF, FileKind.XLSB, FileKind.RTF):
        # Files that hold text this reader does not read: fail closed rather than pass unread.
        raise Unreadable(Reason.UNSUPPORTED_TYPE, f"{name}: its text is not read ({kind})")
    return None


def _package(data: bytes, policy: CdrPolicy) -> dict[str, bytes]:
    """Every member of a ZIP or OOXML package, within the ZIP limits."""
    try:
        return read_package(data, policy)
    except LimitExceeded as exc:
        raise Unreadable(exc.reason, exc.detail) from exc
    except SanitizeError as exc:
        reason: Reason = exc.reason
        if reason is Reason.ENCRYPTED and not olescan.is_ole(data):
            reason = Reason.ENCRYPTED_ARCHIVE  # an encrypted ZIP entry, not an Office file
        raise Unreadable(reason, exc.detail) from exc


def _as_cells(text: str, delimiter: str) -> str:
    """CSV or TSV records as lines of tab-separated cells (a quoted field's line breaks and
    tabs become spaces, so one record stays one line)."""
    rows = csv.reader(io.StringIO(text), delimiter=delimiter)
    try:
        return "\n".join("\t".join(re.sub(r"[\t\r\n]+", " ", cell) for cell in row) for row in rows)
    except csv.Error:
        return text  # not really delimited: read as plain text


def _local(element: etree._Element) -> str:
    tag = element.tag
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""


def _ooxml_text(parts: dict[str, bytes], name: str) -> str:
    """Word: paragraphs and table rows; Excel: every sheet's rows; PowerPoint: every slide."""
    lines: list[str] = []
    if "xl/workbook.xml" in parts:
        strings = _shared_strings(parts.get("xl/sharedStrings.xml"))
        for part in sorted(p for p in parts if _SHEET.match(p)):
            lines.extend(_sheet_rows(parse_xml(parts[part], part), strings))
            lines.append("")
        return "\n".join(lines)
    for part in sorted(p for p in parts if _WORD_PARTS.match(p) or _SLIDE.match(p)):
        lines.extend(_paragraphs_and_rows(parse_xml(parts[part], part)))
        lines.append("")
    return "\n".join(lines)


def _texts_below(element: etree._Element) -> str:
    return "".join(t.text or "" for t in element.iter() if _local(t) == "t")


def _paragraphs_and_rows(root: etree._Element) -> list[str]:
    """Paragraphs as lines; a table row as one line of tab-separated cells."""
    lines: list[str] = []

    def walk(element: etree._Element) -> None:
        for child in element:
            local = _local(child)
            if local == "tr":
                cells = [_texts_below(cell) for cell in child if _local(cell) == "tc"]
                lines.append("\t".join(cells))
            elif local == "p":
                lines.append(_texts_below(child))
            else:
                walk(child)

    walk(root)
    return lines


def _shared_strings(data: bytes | None) -> list[str]:
    if data is None:
        return []
    root = parse_xml(data, "xl/sharedStrings.xml")
    return [_texts_below(item) for item in root if _local(item) == "si"]


def _column(reference: str | None) -> int | None:
    match = _CELL_REF.match(reference or "")
    if match is None:
        return None
    number = 0
    for letter in match.group(1):
        number = number * 26 + ord(letter) - ord("A") + 1
    return number - 1 if number <= _MAX_COLUMN else None


def _sheet_rows(root: etree._Element, strings: list[str]) -> Iterator[str]:
    """Each row of a sheet as tab-separated cells, each cell in its own column."""
    for row in root.iter():
        if _local(row) != "row":
            continue
        cells: dict[int, str] = {}
        for cell in row:
            if _local(cell) != "c":
                continue
            column = _column(cell.get("r"))
            index = column if column is not None else len(cells)
            cells[index] = _cell_value(cell, strings)
        if cells:
            width = max(cells) + 1
            line = "\t".join(cells.get(index, "") for index in range(width))
            yield line + "\t" if width == 1 else line  # a one-column sheet is a table too


def _cell_value(cell: etree._Element, strings: list[str]) -> str:
    kind = cell.get("t")
    if kind == "inlineStr":
        return _texts_below(cell)
    value = next((v.text or "" for v in cell if _local(v) == "v"), "")
    if kind == "s":
        index = int(value) if value.isdigit() else -1
        return strings[index] if 0 <= index < len(strings) else ""
    return value


def _pdf_text(data: bytes, name: str) -> str:
    """The text of each page (pypdf); an encrypted PDF that opens with no password is read."""
    import pypdf
    from pypdf.errors import PyPdfError

    try:
        reader = pypdf.PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted and not reader.decrypt(""):
            raise Unreadable(Reason.ENCRYPTED, f"{name}: a password-protected PDF")
        pages = []
        for index, page in enumerate(reader.pages):
            if index >= MAX_PDF_PAGES:
                raise Unreadable(Reason.LIMIT_PARTS, f"{name}: more than {MAX_PDF_PAGES} pages")
            pages.append(page.extract_text() or "")
    except Unreadable:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, OSError) as exc:
        raise Unreadable(Reason.MALFORMED, f"{name}: {type(exc).__name__}") from exc
    return "\n".join(pages)
