"""Excel binary workbook (.xlsb) sanitizer: the contract, built in code.

An .xlsb is an OOXML package whose workbook and sheets are BIFF12 record streams; the hostile
one carries a VBA project, an external link and an embedded OLE object; another holds a
formula token calling CALL (the whole workbook goes)."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence

from sanitizers.cdr import biff12
from sanitizers.cdr.ooxml_verify import find_dangerous
from sanitizers.vocabulary import Action, Reason
from tests.sanitizers.cdr.contract import Case, CdrContract

BENIGN = "予算集計"
OLE = bytes.fromhex("d0cf11e0a1b11ae1") + bytes(504)
R = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PR = "http://schemas.openxmlformats.org/package/2006/relationships"


def record(kind: int, payload: bytes = b"") -> bytes:
    head = bytes([kind]) if kind < 0x80 else bytes([(kind & 0x7F) | 0x80, kind >> 7])
    return head + bytes([len(payload)]) + payload  # payloads here are < 128 bytes


def cell_string(text: str) -> bytes:  # BrtCellSt: column, style, flags, then the string
    encoded = text.encode("utf-16-le")
    return record(6, bytes(8) + len(text).to_bytes(4, "little") + encoded)


WORKBOOK = record(131) + record(132)  # BrtBeginBook, BrtEndBook
SHEET = record(129) + cell_string(BENIGN) + record(130)  # BrtBeginSheet … BrtEndSheet
# BrtFmlaNum with a PtgFuncVar calling CALL (function 150).
CALLING_SHEET = (
    record(129) + record(9, bytes(18) + b"\x05\x00\x00\x00\x22\x02\x96\x00") + (record(130))
)


def xlsb(*, hostile: bool = False, sheet: bytes = SHEET) -> bytes:
    overrides = {
        "/xl/workbook.bin": "application/vnd.ms-excel.sheet.binary.macroEnabled.main",
        "/xl/worksheets/sheet1.bin": "application/vnd.ms-excel.worksheet",
    }
    book_rels = [("rId1", "worksheet", "worksheets/sheet1.bin", "")]
    parts = {"xl/workbook.bin": WORKBOOK, "xl/worksheets/sheet1.bin": sheet}
    if hostile:
        overrides["/xl/vbaProject.bin"] = "application/vnd.ms-office.vbaProject"
        overrides["/xl/embeddings/oleObject1.bin"] = (
            "application/vnd.openxmlformats-officedocument.oleObject"
        )
        parts["xl/vbaProject.bin"] = OLE
        parts["xl/embeddings/oleObject1.bin"] = OLE
        book_rels += [
            ("rId2", "vbaProject", "vbaProject.bin", ""),
            ("rId3", "externalLink", "file:///C:/secret/book.xlsx", ' TargetMode="External"'),
            ("rId4", "oleObject", "embeddings/oleObject1.bin", ""),
        ]
    types = "".join(f'<Override PartName="{k}" ContentType="{v}"/>' for k, v in overrides.items())
    content_types = (
        '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
        'content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-'
        f'package.relationships+xml"/>{types}</Types>'
    )

    def rels(items: list[tuple[str, str, str, str]]) -> str:
        body = "".join(
            f'<Relationship Id="{i}" Type="{R}/{t}" Target="{target}"{mode}/>'
            for i, t, target, mode in items
        )
        return f'<?xml version="1.0"?><Relationships xmlns="{PR}">{body}</Relationships>'

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", content_types)
        archive.writestr("_rels/.rels", rels([("rId1", "officeDocument", "xl/workbook.bin", "")]))
        archive.writestr("xl/_rels/workbook.bin.rels", rels(book_rels))
        for name, data in parts.items():
            archive.writestr(name, data)
    return out.getvalue()


class TestXlsbContract(CdrContract):
    kind = "xlsb"
    keep_if_clean_rebuilds = True

    def hostile_cases(self) -> Sequence[Case]:
        return [
            Case(
                "vba-extlink-ole",
                xlsb(hostile=True),
                "集計.xlsb",
                frozenset({"vba", "external_link", "ole_object"}),
                reason=Reason.MACRO,
                text=(BENIGN,),
            ),
            Case(
                "call-formula",
                xlsb(sheet=CALLING_SHEET),
                "calc.xlsb",
                frozenset({"formula_function"}),
                action=Action.REMOVED,
                reason=Reason.ACTIVE_CONTENT,
            ),
        ]

    def clean_cases(self) -> Sequence[Case]:
        return [Case("sheet", xlsb(), "clean.xlsb", text=(BENIGN,), detectable=False)]

    def dangerous_items(self, data: bytes) -> set[str]:
        try:
            return find_dangerous(data)
        except Exception as exc:
            return {type(exc).__name__}

    def assert_parses(self, data: bytes) -> None:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for name in archive.namelist():
                if name.endswith(".bin"):
                    assert biff12.well_formed(archive.read(name)), name

    def extract_text(self, data: bytes) -> str:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            sheet = archive.read("xl/worksheets/sheet1.bin")
        # UTF-16 text at an even or odd offset of the record stream.
        return sheet.decode("utf-16-le", "ignore") + sheet[1:].decode("utf-16-le", "ignore")


def test_output_is_an_xlsb_with_consistent_content_types() -> None:
    outcome = TestXlsbContract().run(xlsb(hostile=True), "集計.xlsb")
    assert outcome.data is not None
    assert outcome.filename == "集計.xlsb"
    with zipfile.ZipFile(io.BytesIO(outcome.data)) as archive:
        names = set(archive.namelist())
        types = archive.read("[Content_Types].xml").decode()
        rels = archive.read("xl/_rels/workbook.bin.rels").decode()
    assert names == {
        "[Content_Types].xml", "_rels/.rels", "xl/workbook.bin", "xl/worksheets/sheet1.bin",
        "xl/_rels/workbook.bin.rels",
    }  # fmt: skip
    assert "vbaProject" not in types
    assert "oleObject" not in types
    assert "externalLink" not in rels
    assert "sheet1.bin" in rels


def test_an_xlsb_is_not_sanitized_as_ooxml() -> None:
    outcome = TestXlsbContract().run(xlsb(), "a.xlsb")
    assert outcome.action == Action.SANITIZED
    from sanitizers.cdr.base import CdrContext
    from sanitizers.cdr.ooxml import OoxmlSanitizer
    from sanitizers.cdr.settings import CdrPolicy

    other = OoxmlSanitizer().run(xlsb(), "a.xlsb", CdrContext(policy=CdrPolicy()))
    assert (other.action, other.reason) == (Action.REMOVED, Reason.UNSUPPORTED_TYPE)


def test_malformed_records_are_not_kept() -> None:
    assert biff12.problem(b"\x81") == "unknown_part"
    assert biff12.problem(record(129, b"abc")[:-1]) == "unknown_part"
    assert biff12.problem(OLE) == "unknown_part"
    assert biff12.problem(SHEET) is None


def test_detected_as_its_own_kind_whatever_it_is_called() -> None:
    from sanitizers.filetype import detect

    for name in ("集計.xlsb", "集計.xlsx", "集計.zip", None):
        assert detect(xlsb(), "application/octet-stream", name).kind == "xlsb", name
