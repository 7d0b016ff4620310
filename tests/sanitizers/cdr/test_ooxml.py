"""OOXML sanitizer: the contract, plus what exactly is removed and what stays."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable, Sequence

import pytest
from lxml import etree

from sanitizers.cdr import olescan
from sanitizers.cdr.base import CdrOutcome
from sanitizers.cdr.ooxml import find_dangerous, parse_xml
from sanitizers.cdr.settings import CdrPolicy
from sanitizers.errors import SanitizeError
from sanitizers.vocabulary import Action, Reason
from tests.sanitizers.cdr import office_fixtures as F
from tests.sanitizers.cdr.contract import Case, CdrContract


def main_part(data: bytes) -> tuple[zipfile.ZipFile, str]:
    archive = zipfile.ZipFile(io.BytesIO(data))
    rels = parse_xml(archive.read("_rels/.rels"), "rels")
    target = next(r.get("Target") for r in rels if str(r.get("Type")).endswith("/officeDocument"))
    return archive, str(target).lstrip("/")


class TestOoxmlContract(CdrContract):
    kind = "ooxml"
    keep_if_clean_rebuilds = True

    def hostile_cases(self) -> Sequence[Case]:
        return [
            Case(
                "docm-vba",
                F.docm_with_vba(),
                "レポート.docm",
                frozenset({"vba"}),
                reason=Reason.MACRO,
                text=(F.BENIGN,),
            ),
            Case(
                "docx-template-dde-link",
                F.docx_template_dde_link(),
                "invoice.docx",
                frozenset({"external_relationship", "dde", "linked_field", "hyperlink"}),
                reason=Reason.ACTIVE_CONTENT,
                text=(F.BENIGN, "結果テキスト", "リンク文字"),
            ),
            Case(
                "docx-ole-activex",
                F.docx_with_ole_object(),
                "a.docx",
                frozenset({"ole_object", "activex"}),
                reason=Reason.ACTIVE_CONTENT,
                text=(F.BENIGN,),
            ),
            Case(
                "xlsm-macrosheet-dde-extlink",
                F.xlsm_with_macrosheet(),
                "book.xlsm",
                frozenset({"xlm_macro", "dde", "external_link"}),
                reason=Reason.MACRO,
                text=(F.BENIGN,),
            ),
            Case(
                "pptm-vba-program-action",
                F.pptm_with_vba_and_action(),
                "slides.pptm",
                frozenset({"vba", "program_action"}),
                reason=Reason.MACRO,
                text=(F.BENIGN,),
            ),
            Case(
                "docx-xxe",
                F.docx_with_dtd(),
                "x.docx",
                action=Action.REMOVED,
                reason=Reason.MALFORMED,
                detectable=False,
            ),
            Case(
                "encrypted-ooxml",
                F.encrypted_ooxml(),
                "secret.docx",
                action=Action.HELD,
                reason=Reason.ENCRYPTED,
                detectable=False,
            ),
        ]

    def clean_cases(self) -> Sequence[Case]:
        return [
            Case("clean-docx", F.clean_docx(), "clean.docx", text=(F.BENIGN, "内部リンク")),
            Case("rels-cycle", F.docx_rels_cycle(), "cycle.docx", text=(F.BENIGN,)),
        ]

    def bomb_cases(self) -> Sequence[Case]:
        return [
            Case("ratio-bomb", F.docx_bomb(), "bomb.docx", action=Action.REMOVED),
            Case("many-entries", F.docx_many_entries(), "many.docx", action=Action.REMOVED),
            Case("deep-xml", F.deep_xml_docx(), "deep.docx", action=Action.REMOVED),
        ]

    def dangerous_items(self, data: bytes) -> set[str]:
        return find_dangerous(data)

    def assert_parses(self, data: bytes) -> None:
        archive, main = main_part(data)
        parse_xml(archive.read(main), main)
        parse_xml(archive.read("[Content_Types].xml"), "ct")

    def extract_text(self, data: bytes) -> str:
        archive = zipfile.ZipFile(io.BytesIO(data))
        texts = []
        for name in archive.namelist():
            if name.endswith(".xml"):
                root = parse_xml(archive.read(name), name)
                texts.append("".join(str(t) for t in root.itertext()))
        return "\n".join(texts)


def run(data: bytes, filename: str = "a.docx") -> CdrOutcome:
    return TestOoxmlContract().run(data, filename)


def test_docm_becomes_docx() -> None:
    outcome = run(F.docm_with_vba(), "レポート.docm")
    assert outcome.filename == "レポート.docx"
    assert outcome.content_type == (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    )
    assert outcome.data is not None
    archive = zipfile.ZipFile(io.BytesIO(outcome.data))
    names = archive.namelist()
    assert not any("vba" in n.lower() for n in names)
    types = archive.read("[Content_Types].xml").decode()
    assert "macroEnabled" not in types
    assert "vbaProject" not in types
    assert olescan.macros(outcome.data, "x.docx") == set()


@pytest.mark.parametrize(
    ("builder", "name", "extension"),
    [(F.xlsm_with_macrosheet, "b.xlsm", ".xlsx"), (F.pptm_with_vba_and_action, "p.pptm", ".pptx")],
)
def test_macro_enabled_renamed(builder: Callable[[], bytes], name: str, extension: str) -> None:
    outcome = run(builder(), name)
    assert outcome.filename is not None
    assert outcome.filename.endswith(extension)


def test_remote_template_and_dde_gone_text_kept() -> None:
    outcome = run(F.docx_template_dde_link())
    assert outcome.data is not None
    archive = zipfile.ZipFile(io.BytesIO(outcome.data))
    document = archive.read("word/document.xml").decode()
    settings = archive.read("word/settings.xml").decode()
    assert "attachedTemplate" not in settings
    assert "DDE" not in document
    assert "instrText" not in document
    assert "fldSimple" not in document
    assert "INCLUDEPICTURE" not in document
    assert "リンク文字" in document
    assert "hyperlink" not in document
    assert "TargetMode" not in "".join(
        archive.read(n).decode() for n in archive.namelist() if n.endswith(".rels")
    )


def test_ordinary_fields_and_internal_links_stay() -> None:
    outcome = run(F.clean_docx())
    assert outcome.data is not None
    document = zipfile.ZipFile(io.BytesIO(outcome.data)).read("word/document.xml").decode()
    assert "PAGE" in document
    assert 'w:anchor="top"' in document


def test_ole_object_reference_removed_preview_kept() -> None:
    outcome = run(F.docx_with_ole_object())
    assert outcome.data is not None
    archive = zipfile.ZipFile(io.BytesIO(outcome.data))
    document = archive.read("word/document.xml").decode()
    assert "OLEObject" not in document
    assert "w:control" not in document
    assert "imagedata" in document  # the preview picture
    assert "word/media/image1.png" in archive.namelist()
    assert not any("embeddings" in n or "activeX" in n for n in archive.namelist())


def test_xlm_names_and_dde_formula_removed() -> None:
    outcome = run(F.xlsm_with_macrosheet(), "b.xlsm")
    assert outcome.data is not None
    archive = zipfile.ZipFile(io.BytesIO(outcome.data))
    workbook = archive.read("xl/workbook.xml").decode()
    assert "Macro1" not in workbook
    assert "Auto_Open" not in workbook
    assert "externalReference" not in workbook
    assert "Keep" in workbook
    cells = archive.read("xl/worksheets/sheet1.xml").decode()
    assert "cmd|" not in cells
    assert "SUM(1,2)" in cells


def test_all_parts_reserialized_no_dtd_no_original_bytes() -> None:
    data = F.clean_docx()
    outcome = run(data)
    assert outcome.data is not None
    archive = zipfile.ZipFile(io.BytesIO(outcome.data))
    for name in archive.namelist():
        if name.endswith((".xml", ".rels")):
            assert archive.read(name).startswith(b"<?xml version='1.0' encoding='UTF-8'")


def test_orphan_vba_part_not_copied() -> None:
    parts = {
        n: zipfile.ZipFile(io.BytesIO(F.clean_docx())).read(n)
        for n in zipfile.ZipFile(io.BytesIO(F.clean_docx())).namelist()
    }
    parts["word/hidden/vbaProject.bin"] = F.vba_project()
    outcome = run(F.package(dict(parts)))
    assert outcome.action == Action.SANITIZED
    assert "vba" in outcome.removed
    assert outcome.data is not None
    assert find_dangerous(outcome.data) == set()


def test_path_traversal_name_removed() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("../evil.xml", "<x/>")
    outcome = run(buffer.getvalue())
    assert (outcome.action, outcome.reason) == (Action.REMOVED, Reason.PATH_TRAVERSAL)


def test_verify_rejects_macro_package() -> None:
    from sanitizers.cdr.base import CdrContext
    from sanitizers.cdr.ooxml import OoxmlSanitizer

    with pytest.raises(SanitizeError) as info:
        OoxmlSanitizer().verify(F.docm_with_vba(), CdrContext(policy=CdrPolicy()))
    assert info.value.reason == Reason.VERIFY_FAILED


def test_keep_if_clean_reports_finding_as_reason() -> None:
    outcome = TestOoxmlContract().run(F.docm_with_vba(), "a.docm", keep_if_clean=True)
    assert (outcome.action, outcome.reason) == (Action.REMOVED, Reason.MACRO)


def test_xml_parser_has_no_entities() -> None:
    with pytest.raises(SanitizeError):
        parse_xml(b'<!DOCTYPE a [<!ENTITY b "c">]><a>&b;</a>', "x")
    root = parse_xml(b"<a><!-- c --><?pi x?>t</a>", "x")
    assert isinstance(root, etree._Element)


def test_chart_workbook_rebuilt_inside() -> None:
    outcome = run(F.docx_with_chart(F.xlsx_with_external_hyperlink()))
    assert outcome.action == Action.SANITIZED
    assert "hyperlink" in outcome.removed  # found inside the embedded workbook
    assert "data_connection" in outcome.removed  # the mail merge
    assert "embedded_package" not in outcome.removed
    assert outcome.data is not None
    archive = zipfile.ZipFile(io.BytesIO(outcome.data))
    inner = archive.read("word/embeddings/Microsoft_Excel_Worksheet.xlsx")
    assert find_dangerous(inner) == set()
    assert "グラフデータ" in TestOoxmlContract().extract_text(inner)
    assert "externalData" in archive.read("word/charts/chart1.xml").decode()
    assert "mailMerge" not in archive.read("word/settings.xml").decode()
    assert find_dangerous(outcome.data) == set()
    again = run(outcome.data)
    assert again.removed == ()


def test_macro_enabled_or_ole_embedding_dropped() -> None:
    xlsm = F.xlsm_with_macrosheet()
    outcome = run(
        F.docx_with_chart(xlsm, "application/vnd.ms-excel.sheet.macroEnabled.12", "Book.xlsm")
    )
    assert "embedded_package" in outcome.removed
    assert outcome.data is not None
    archive = zipfile.ZipFile(io.BytesIO(outcome.data))
    assert not any("embeddings" in n for n in archive.namelist())
    assert "externalData" not in archive.read("word/charts/chart1.xml").decode()
    outcome = run(F.docx_with_chart(F.vba_project(), F.XLSX_PACKAGE))
    assert "embedded_package" in outcome.removed


def test_nesting_depth_is_bounded() -> None:
    data = F.xlsx_with_external_hyperlink()
    for _ in range(4):
        data = F.docx_with_chart(
            data,
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            "Doc.docx",
        )
    outcome = run(data)
    assert outcome.action == Action.SANITIZED
    assert "embedded_package" in outcome.removed
    assert outcome.data is not None
    assert find_dangerous(outcome.data) == set()


def test_dde_in_defined_name_removed() -> None:
    parts = {
        n: zipfile.ZipFile(io.BytesIO(F.xlsm_with_macrosheet())).read(n)
        for n in zipfile.ZipFile(io.BytesIO(F.xlsm_with_macrosheet())).namelist()
    }
    workbook = parts["xl/workbook.xml"].decode()
    parts["xl/workbook.xml"] = workbook.replace(
        '<definedName name="Keep">',
        '<definedName name="Run">cmd|\' /c calc\'!A0</definedName><definedName name="Keep">',
    ).encode()
    outcome = run(F.package(dict(parts)), "b.xlsm")
    assert outcome.data is not None
    text = zipfile.ZipFile(io.BytesIO(outcome.data)).read("xl/workbook.xml").decode()
    assert "cmd|" not in text
    assert "Keep" in text
