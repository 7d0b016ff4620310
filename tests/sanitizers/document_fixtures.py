"""Documents with given text, built in code: xlsx, docx, pptx, PDF, CSV and ZIP (for the tests
of the outbound checks: My Number, keywords)."""

from __future__ import annotations

import io
import zipfile
from xml.sax.saxutils import escape

import pikepdf
from pikepdf import Dictionary, Name

from tests.sanitizers.cdr.office_fixtures import RT, XL_SHEET, W, content_types, package, rels

S = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
P = "http://schemas.openxmlformats.org/presentationml/2006/main"
A = "http://schemas.openxmlformats.org/drawingml/2006/main"
XLSX_MAIN = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"
WORD_MAIN = "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"
PPTX_MAIN = "application/vnd.openxmlformats-officedocument.presentationml.presentation.main+xml"
PPT_SLIDE = "application/vnd.openxmlformats-officedocument.presentationml.slide+xml"


def _column(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


def xlsx(rows: list[list[str | int]], *, shared: bool = True) -> bytes:
    """One sheet; strings shared (or inline), integers as numbers."""
    strings: list[str] = []
    cells_xml = []
    for r, row in enumerate(rows, 1):
        cells = []
        for c, value in enumerate(row):
            ref = f"{_column(c)}{r}"
            if isinstance(value, int):
                cells.append(f'<c r="{ref}"><v>{value}</v></c>')
            elif shared:
                strings.append(value)
                cells.append(f'<c r="{ref}" t="s"><v>{len(strings) - 1}</v></c>')
            else:
                cells.append(f'<c r="{ref}" t="inlineStr"><is><t>{escape(value)}</t></is></c>')
        cells_xml.append(f'<row r="{r}">{"".join(cells)}</row>')
    sheet = f'<worksheet xmlns="{S}"><sheetData>{"".join(cells_xml)}</sheetData></worksheet>'
    sst = "".join(f"<si><t>{escape(s)}</t></si>" for s in strings)
    return package(
        {
            "[Content_Types].xml": content_types(
                {"xl/workbook.xml": XLSX_MAIN, "xl/worksheets/sheet1.xml": XL_SHEET}
            ),
            "_rels/.rels": rels([("rId1", f"{RT}/officeDocument", "xl/workbook.xml", False)]),
            "xl/workbook.xml": f'<workbook xmlns="{S}" xmlns:r="http://schemas.openxmlformats.org/'
            'officeDocument/2006/relationships"><sheets><sheet name="名簿" sheetId="1" '
            'r:id="rId1"/></sheets></workbook>',
            "xl/_rels/workbook.xml.rels": rels(
                [("rId1", f"{RT}/worksheet", "worksheets/sheet1.xml", False)]
            ),
            "xl/worksheets/sheet1.xml": sheet,
            "xl/sharedStrings.xml": f'<sst xmlns="{S}">{sst}</sst>',
        }
    )


def docx(paragraphs: list[str], table: list[list[str]] | None = None) -> bytes:
    body = "".join(
        f'<w:p><w:r><w:t xml:space="preserve">{escape(p)}</w:t></w:r></w:p>' for p in paragraphs
    )
    if table:
        rows = "".join(
            "<w:tr>"
            + "".join(f"<w:tc><w:p><w:r><w:t>{escape(c)}</w:t></w:r></w:p></w:tc>" for c in row)
            + "</w:tr>"
            for row in table
        )
        body += f"<w:tbl>{rows}</w:tbl>"
    return package(
        {
            "[Content_Types].xml": content_types({"word/document.xml": WORD_MAIN}),
            "_rels/.rels": rels([("rId1", f"{RT}/officeDocument", "word/document.xml", False)]),
            "word/document.xml": f'<w:document xmlns:w="{W}"><w:body>{body}</w:body></w:document>',
        }
    )


def pptx(lines: list[str]) -> bytes:
    paragraphs = "".join(f"<a:p><a:r><a:t>{escape(line)}</a:t></a:r></a:p>" for line in lines)
    slide = (
        f'<p:sld xmlns:p="{P}" xmlns:a="{A}"><p:cSld><p:spTree><p:sp><p:txBody>'
        f"{paragraphs}</p:txBody></p:sp></p:spTree></p:cSld></p:sld>"
    )
    return package(
        {
            "[Content_Types].xml": content_types(
                {"ppt/presentation.xml": PPTX_MAIN, "ppt/slides/slide1.xml": PPT_SLIDE}
            ),
            "_rels/.rels": rels([("rId1", f"{RT}/officeDocument", "ppt/presentation.xml", False)]),
            "ppt/presentation.xml": f'<p:presentation xmlns:p="{P}"/>',
            "ppt/_rels/presentation.xml.rels": rels(
                [("rId1", f"{RT}/slide", "slides/slide1.xml", False)]
            ),
            "ppt/slides/slide1.xml": slide,
        }
    )


def pdf(lines: list[str], *, password: str | None = None) -> bytes:
    """A one-page PDF showing ASCII ``lines`` in Helvetica."""
    document = pikepdf.new()
    document.add_blank_page()
    page = document.pages[0]
    page.obj.Resources = Dictionary(
        Font=Dictionary(F1=Dictionary(Type=Name.Font, Subtype=Name.Type1, BaseFont=Name.Helvetica))
    )
    shown = " ".join(f"({line}) Tj 0 -14 Td" for line in lines)
    page.obj.Contents = document.make_stream(f"BT /F1 12 Tf 72 720 Td {shown} ET".encode())
    out = io.BytesIO()
    if password:
        document.save(out, encryption=pikepdf.Encryption(user=password, owner=password))
    else:
        document.save(out)
    return out.getvalue()


def zip_of(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return out.getvalue()
