# ruff: noqa: E501 - XML literals read better on one line
"""Word fields that fetch or run something, written every way Word accepts, in OOXML
(document, header, footer, footnotes, glossary; Strict and Transitional) and RTF (escaped
keywords): one table decides, and the verification uses the same table."""

from __future__ import annotations

import io
import zipfile

import pytest

from sanitizers.cdr.base import CdrContext
from sanitizers.cdr.fields import field_danger
from sanitizers.cdr.ooxml import OoxmlSanitizer
from sanitizers.cdr.ooxml_verify import find_dangerous
from sanitizers.cdr.rtf import RtfSanitizer
from sanitizers.cdr.rtf import find_dangerous as rtf_find_dangerous
from sanitizers.cdr.settings import CdrPolicy
from sanitizers.errors import SanitizeError
from sanitizers.vocabulary import Action
from tests.sanitizers.cdr import office_fixtures as F

STRICT = {
    F.W: "http://purl.oclc.org/ooxml/wordprocessingml/main",
    F.R: "http://purl.oclc.org/ooxml/officeDocument/relationships",
    F.S: "http://purl.oclc.org/ooxml/spreadsheetml/main",
    F.A: "http://purl.oclc.org/ooxml/drawingml/main",
    F.P: "http://purl.oclc.org/ooxml/presentationml/main",
}

# (instruction, code) — every dangerous keyword of the table and the HYPERLINK schemes.
DANGEROUS = [
    ('DDEAUTO c:\\\\windows\\\\system32\\\\cmd.exe "/k calc"', "dde"),
    ('dde "c:\\\\x.exe" "a"', "dde"),
    ('INCLUDEPICTURE "\\\\\\\\evil.example\\\\share\\\\p.png" \\d', "linked_field"),
    ('INCLUDEPICTURE"http://evil.example/p.png"', "linked_field"),
    ('INCLUDETEXT "\\\\\\\\evil.example\\\\s\\\\t.docx"', "linked_field"),
    ('LINK Excel.Sheet.8 "\\\\\\\\evil\\\\s\\\\b.xls" "Sheet1!R1C1" \\a', "linked_field"),
    ('IMPORT "http://evil.example/x.wmf"', "linked_field"),
    ('RD "\\\\\\\\evil.example\\\\share\\\\chapter.docx" \\f', "linked_field"),
    ("QUOTE 68 68 69 65 85 84 79", "linked_field"),
    ('DATABASE \\d "\\\\\\\\evil\\\\s\\\\db.mdb" \\s "select * from t"', "data_connection"),
    ("EMBED Package", "ole_object"),
    ("MACROBUTTON AutoOpen click", "program_action"),
    ('PRINT "\\\\\\\\evil\\\\printer"', "program_action"),
    ('HYPERLINK "javascript:alert(1)"', "unsafe_link"),
    ('HYPERLINK "file:///C:/Windows/System32/calc.exe"', "unsafe_link"),
    ('HYPERLINK "\\\\\\\\evil.example\\\\share\\\\x.exe"', "unsafe_link"),
    ('HYPERLINK "ms-msdt:/id PCWDiagnostic"', "unsafe_link"),
    ('HYPERLINK \\o "tip" "search-ms:query=x"', "unsafe_link"),
]
HARMLESS = [
    "PAGE",
    ' TOC \\o "1-3" ',
    'HYPERLINK "https://example.jp/"',
    'HYPERLINK \\l "section2"',
    "MERGEFIELD 氏名 \\* MERGEFORMAT",
    "= 1 + 2",
]


@pytest.mark.parametrize(("instruction", "code"), DANGEROUS)
def test_table(instruction: str, code: str) -> None:
    assert field_danger(instruction.replace("\\\\", "\\"), ("http", "https", "mailto")) == code


@pytest.mark.parametrize("instruction", HARMLESS)
def test_table_leaves_ordinary_fields(instruction: str) -> None:
    assert field_danger(instruction, ("http", "https", "mailto")) is None


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;")


def _field_one_run(instr: str) -> str:
    """begin, instruction, separate, result and end all inside ONE run."""
    return (
        '<w:p><w:r><w:fldChar w:fldCharType="begin"/>'
        f'<w:instrText xml:space="preserve">{_esc(instr)}</w:instrText>'
        '<w:fldChar w:fldCharType="separate"/><w:t>結果</w:t>'
        '<w:fldChar w:fldCharType="end"/></w:r></w:p>'
    )


def _field_split(instr: str) -> str:
    """The instruction split into one run per character (the keyword split too)."""
    runs = "".join(
        f'<w:r><w:instrText xml:space="preserve">{_esc(c)}</w:instrText></w:r>' for c in instr
    )
    return (
        '<w:p><w:r><w:fldChar w:fldCharType="begin"/></w:r>' + runs
        + '<w:r><w:fldChar w:fldCharType="separate"/></w:r><w:r><w:t>結果</w:t></w:r>'
        '<w:r><w:fldChar w:fldCharType="end"/></w:r></w:p>'
    )  # fmt: skip


def _field_simple(instr: str) -> str:
    return (
        f'<w:p><w:fldSimple w:instr="{_esc(instr)}"><w:r><w:t>結果</w:t></w:r></w:fldSimple></w:p>'
    )


def _field_computed(instr: str) -> str:
    """The keyword computed by a nested field: { {QUOTE "…"} rest }."""
    keyword, _, rest = instr.partition(" ")
    return (
        '<w:p><w:r><w:fldChar w:fldCharType="begin"/></w:r>'
        '<w:r><w:fldChar w:fldCharType="begin"/></w:r>'
        f'<w:r><w:instrText xml:space="preserve"> IF 1 = 1 "{_esc(keyword)}" "" </w:instrText></w:r>'
        '<w:r><w:fldChar w:fldCharType="separate"/></w:r><w:r><w:t>'
        + _esc(keyword)
        + "</w:t></w:r>"
        '<w:r><w:fldChar w:fldCharType="end"/></w:r>'
        f'<w:r><w:instrText xml:space="preserve"> {_esc(rest)}</w:instrText></w:r>'
        '<w:r><w:fldChar w:fldCharType="separate"/></w:r><w:r><w:t>結果</w:t></w:r>'
        '<w:r><w:fldChar w:fldCharType="end"/></w:r></w:p>'
    )


def _field_deleted(instr: str) -> str:
    return _field_split(instr).replace("w:instrText", "w:delInstrText")


WRITINGS = {
    "one-run": _field_one_run,
    "split-runs": _field_split,
    "simple": _field_simple,
    "computed": _field_computed,
    "deleted-instr": _field_deleted,
}
HDR = "application/vnd.openxmlformats-officedocument.wordprocessingml.header+xml"
FTR = "application/vnd.openxmlformats-officedocument.wordprocessingml.footer+xml"
FOOTNOTES = "application/vnd.openxmlformats-officedocument.wordprocessingml.footnotes+xml"
GLOSSARY = "application/vnd.openxmlformats-officedocument.wordprocessingml.document.glossary+xml"


def _part(root: str, body: str) -> str:
    return (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        f'<w:{root} xmlns:w="{F.W}" xmlns:r="{F.R}">{body}</w:{root}>'
    )


def docx_with_field(body: str, where: str) -> bytes:
    """A docx with the field paragraph ``body`` in the part ``where``."""
    parts: dict[str, str | bytes] = {}
    document_body = F.para(F.BENIGN)
    rels: list[tuple[str, str, str, bool]] = []
    overrides = {"word/document.xml": F.WORD_MAIN}
    if where == "document":
        document_body += body
    else:
        name, ctype, rtype, root, inner = {
            "header": ("header1.xml", HDR, "header", "hdr", body),
            "footer": ("footer1.xml", FTR, "footer", "ftr", body),
            "footnotes": ("footnotes.xml", FOOTNOTES, "footnotes", "footnotes",
                          f'<w:footnote w:id="1">{body}</w:footnote>'),
            "glossary": ("glossary/document.xml", GLOSSARY, "glossaryDocument",
                         "glossaryDocument", f"<w:docParts><w:docPart><w:docPartBody>{body}"
                         "</w:docPartBody></w:docPart></w:docParts>"),
        }[where]  # fmt: skip
        parts[f"word/{name}"] = _part(root, inner)
        overrides[f"word/{name}"] = ctype
        rels.append(("rId7", f"{F.RT}/{rtype}", name, False))
    parts["[Content_Types].xml"] = F.content_types(overrides)
    parts["_rels/.rels"] = F.rels([("rId1", f"{F.RT}/officeDocument", "word/document.xml", False)])
    parts["word/document.xml"] = F.word_document(document_body)
    parts["word/_rels/document.xml.rels"] = F.rels(rels)
    return F.package(parts)


def to_strict(data: bytes) -> bytes:
    """The same package written with the ISO Strict namespaces and relationship types."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            content = source.read(info)
            for transitional, strict in STRICT.items():
                content = content.replace(transitional.encode(), strict.encode())
            target.writestr(info.filename, content)
    return out.getvalue()


def _run(data: bytes, name: str = "a.docx") -> object:
    return OoxmlSanitizer().run(data, name, CdrContext(policy=CdrPolicy()))


def _text_of(data: bytes) -> str:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return "".join(
            archive.read(n).decode("utf-8", "replace")
            for n in archive.namelist()
            if n.endswith(".xml")
        )


CASES = [
    (instr, code, writing, where, flavor)
    for instr, code in [*DANGEROUS[::3], DANGEROUS[0], DANGEROUS[2], DANGEROUS[13]]
    for writing in WRITINGS
    for where in ("document", "header", "footer", "footnotes", "glossary")
    for flavor in ("transitional", "strict")
    if not (writing == "computed" and " " not in instr)
]


@pytest.mark.parametrize(("instr", "code", "writing", "where", "flavor"), CASES)
def test_docx_field_is_disarmed(
    instr: str, code: str, writing: str, where: str, flavor: str
) -> None:
    instruction = instr.replace("\\\\", "\\")
    data = docx_with_field(WRITINGS[writing](instruction), where)
    if flavor == "strict":
        data = to_strict(data)
    outcome = _run(data)
    assert outcome.action == Action.SANITIZED, outcome  # type: ignore[attr-defined]
    removed = outcome.removed  # type: ignore[attr-defined]
    expected = "computed_field" if writing == "computed" else code
    assert expected in removed, removed
    output = outcome.data  # type: ignore[attr-defined]
    text = _text_of(output)
    keyword = instruction.split()[0].split('"')[0]
    assert f">{keyword}" not in text
    assert f'"{keyword}' not in text
    assert f" {keyword}" not in text
    assert "結果" in text  # the shown result stays
    assert F.BENIGN in text
    assert find_dangerous(output) == set()


@pytest.mark.parametrize("writing", list(WRITINGS))
def test_verification_sees_every_writing(writing: str) -> None:
    """The independent check finds the field however it is written (and in Strict)."""
    for flavor_data in (
        docx_with_field(WRITINGS[writing]('DDEAUTO c:\\x.exe "/k calc"'), "header"),
        to_strict(docx_with_field(WRITINGS[writing]('DDEAUTO c:\\x.exe "/k calc"'), "footer")),
    ):
        found = find_dangerous(flavor_data)
        assert found & {"dde", "computed_field"}, found


def test_ordinary_fields_and_links_stay() -> None:
    body = "".join(_field_split(i) for i in HARMLESS)
    outcome = _run(docx_with_field(body, "document"))
    assert outcome.removed == ()  # type: ignore[attr-defined]
    text = _text_of(outcome.data)  # type: ignore[attr-defined]
    for instruction in HARMLESS:
        assert "".join(f">{_esc(c)}<" for c in instruction[:3]) in text.replace(
            '<w:instrText xml:space="preserve">', ">"
        ).replace("</w:instrText>", "<").replace("</w:r><w:r>", "")


# --- RTF -----------------------------------------------------------------------------------


def _rtf_hex(text: str) -> str:
    return "".join(f"\\'{ord(c):02x}" for c in text)


def _rtf_unicode(text: str) -> str:
    return "".join(f"\\u{ord(c)}?" for c in text)


RTF_WRITINGS = {
    "plain": lambda k: k,
    "hex-escaped": _rtf_hex,
    "unicode-escaped": _rtf_unicode,
    "mixed": lambda k: k[0] + _rtf_hex(k[1]) + _rtf_unicode(k[2:3]) + k[3:],
    "split-groups": lambda k: "}{".join(k),
    "line-broken": lambda k: k[:2] + "\r\n" + k[2:],
    "uc2-fallback": lambda k: "\\uc2 " + "".join(f"\\u{ord(c)}??" for c in k),
}


def rtf_with_field(keyword_written: str, rest: str) -> bytes:
    return (
        "{\\rtf1\\ansi \\pard benign RTF text\\par "
        "{\\field{\\*\\fldinst {" + keyword_written + " " + rest + "}}"
        "{\\fldrslt {shown field result}}}\\par after}"
    ).encode("latin-1")


RTF_CASES = [
    (writing, instr, code)
    for writing in RTF_WRITINGS
    for instr, code in DANGEROUS
    if "\\" not in instr.split()[0]
]


@pytest.mark.parametrize(("writing", "instr", "code"), RTF_CASES)
def test_rtf_field_escapes(writing: str, instr: str, code: str) -> None:
    keyword = instr.split()[0].split('"')[0]
    rest = instr[len(keyword) :].replace("{", "\\{")  # RTF escapes backslashes like Word's fields
    data = rtf_with_field(RTF_WRITINGS[writing](keyword), rest)
    assert code in rtf_find_dangerous(data)
    outcome = RtfSanitizer().run(data, "a.rtf", CdrContext(policy=CdrPolicy()))
    assert outcome.action == Action.SANITIZED, outcome
    assert code in outcome.removed, outcome.removed
    assert outcome.data is not None
    assert b"shown field result" in outcome.data
    assert rtf_find_dangerous(outcome.data) == set()


@pytest.mark.parametrize("writing", list(RTF_WRITINGS))
def test_rtf_verification_decodes_escapes(writing: str) -> None:
    data = rtf_with_field(RTF_WRITINGS[writing]("DDEAUTO"), 'c:\\\\x.exe "/k calc"')
    assert "dde" in rtf_find_dangerous(data)
    with pytest.raises(SanitizeError):
        RtfSanitizer().verify(data, CdrContext(policy=CdrPolicy()))


def test_rtf_computed_keyword() -> None:
    data = (
        b"{\\rtf1 {\\field{\\*\\fldinst {\\field{\\*\\fldinst QUOTE 68 68 69}{\\fldrslt DDE}}"
        b" c:\\\\x.exe}{\\fldrslt {shown}}}}"
    )
    outcome = RtfSanitizer().run(data, "a.rtf", CdrContext(policy=CdrPolicy()))
    assert outcome.action == Action.SANITIZED
    assert "computed_field" in outcome.removed
