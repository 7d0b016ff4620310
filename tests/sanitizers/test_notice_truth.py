"""The notice tells the truth (issue 11, class 10): a converted HTML attachment arrives as the
.txt the notice describes; the files removed from an archive are named in the notice, the
report and the audit line; a display name that reads as another address is dropped however
its @ is written."""

from __future__ import annotations

import io
import zipfile
from base64 import b64encode
from urllib.parse import quote

import pytest

from gateway.evidence.audit import audit_record, clean_record
from sanitizers.cdr.registry import InProcessDisarmer
from sanitizers.pipeline import sanitize_message
from sanitizers.policy import NoticePolicy, Policy
from sanitizers.report import SanitizeResult
from sanitizers.vocabulary import Action, Reason
from tests.adversarial.invariants import assert_safe
from tests.mailfactory import body_text, leaf, mail, multipart, parse

POLICY = Policy()
EN = Policy(notice=NoticePolicy(language="en"))


def attach(data: bytes, filename: str, content_type: str = "application/octet-stream") -> bytes:
    disposition = f"attachment; filename*=utf-8''{quote(filename)}"
    part = leaf(content_type, data, cte="base64", extra=[("Content-Disposition", disposition)])
    return mail(multipart("mixed", [leaf("text/plain; charset=utf-8", b"see attached"), part]))


def run(raw: bytes, policy: Policy = POLICY) -> SanitizeResult:
    return sanitize_message(raw, policy, disarmer=InProcessDisarmer())


HTML_FILES = {
    "plain": ("案内.html", "text/html", "<p>会議のお知らせ</p>"),
    "no-extension": ("案内", "text/html", "<html><body><p>会議のお知らせ</p></body></html>"),
    "xhtml-name": ("page.xhtml", "application/xhtml+xml", "<p>会議のお知らせ</p>"),
    "octet-stream": ("x.htm", "application/octet-stream", "<html><p>会議のお知らせ</p></html>"),
}


@pytest.mark.parametrize("case", sorted(HTML_FILES))
def test_a_converted_html_attachment_arrives_as_txt(case: str) -> None:
    name, declared, html = HTML_FILES[case]
    result = run(attach(html.encode(), name, declared))
    part = result.report.parts[-1]
    assert part.action is Action.CONVERTED
    assert part.attached_as is not None
    assert part.attached_as.endswith(".txt")
    message = parse(result.message)
    files = [p for p in message.walk() if p.get_filename()]
    assert [p.get_filename() for p in files] == [part.attached_as]
    assert files[0].get_content_type() == "text/plain"  # with its charset, not octet-stream
    assert files[0].get_content_charset() == "utf-8"
    payload = files[0].get_payload(decode=True)
    assert isinstance(payload, bytes)
    assert "会議のお知らせ" in payload.decode("utf-8")
    text = body_text(result.message)
    # The notice lists it as an attachment, with the name it arrives under; not as the body.
    assert f"添付ファイル: {part.filename}" in text
    assert f"添付名: {part.attached_as}" in text
    assert_safe(result)


def _zip(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return out.getvalue()


MZ = b"MZ" + b"\x00" * 62 + b"PE\x00\x00" + b"\x00" * 200


def test_files_removed_from_an_archive_are_named_everywhere() -> None:
    inner = _zip({"深い/payload.js": b"WScript.Echo(1)"})
    archive = _zip(
        {
            "readme.txt": b"hello",
            "tool.exe": MZ,
            "報告\u202etxt.scr": MZ,
            "nested.zip": inner,
        }
    )
    for policy, phrase in ((POLICY, "圧縮ファイル内"), (EN, "in the archive")):
        result = run(attach(archive, "files.zip"), policy)
        part = result.report.parts[-1]
        assert part.action is Action.SANITIZED
        removed = {e.name: e.reason for e in part.entries if e.action is Action.REMOVED}
        assert removed == {
            "tool.exe": Reason.EXECUTABLE,
            "報告txt.scr": Reason.EXECUTABLE,  # the bidi override is not shown
            "nested.zip/深い/payload.js": Reason.EXECUTABLE,
            "nested.zip": Reason.EXECUTABLE,  # nothing in it survived
        }
        text = body_text(result.message)
        for name in removed:
            assert f"{phrase}: {name}" in text
        assert "\u202e" not in text
        record = clean_record(
            audit_record(
                queue_id="Q1",
                client="192.0.2.1",
                helo="mx.example",
                mail_from="a@example.jp",
                rcpt_to=["staff@city.example.lg.jp"],
                report=result.report,
                state="delivered",
            )
        )
        (logged,) = [p for p in record["parts"] if p["path"] == part.path]
        logged_names = {e["name"] for e in logged["entries"] if e["action"] == "removed"}
        assert logged_names == set(removed)


def test_the_notice_names_at_most_twenty_entries_then_counts() -> None:
    archive = _zip({f"t{i:02d}.exe": MZ for i in range(25)} | {"ok.txt": b"ok"})
    result = run(attach(archive, "many.zip"))
    text = body_text(result.message)
    assert text.count("圧縮ファイル内:") == 20
    assert "ほか 5 件" in text
    assert len(result.report.parts[-1].entries) == 26


# Characters that NFKC folds to "@": full-width, small form.
AT_SIGNS = ["\uff20", "\ufe6b"]


@pytest.mark.parametrize("at", AT_SIGNS)
@pytest.mark.parametrize(
    "display",
    ["admin{at}city.lg.jp", "ＡＤＭＩＮ{at}ｃｉｔｙ．ｌｇ．ｊｐ", "総務課 admin{at}city.lg.jp"],
)
def test_a_display_name_that_reads_as_another_address_is_dropped(display: str, at: str) -> None:
    shown = display.format(at=at)
    raw = mail(
        leaf("text/plain", b"x"),
        ("From", f"=?utf-8?b?{b64encode(shown.encode()).decode()}?= <attacker@evil.example>"),
        ("To", "staff@city.example.lg.jp"),
        ("Subject", "s"),
    )
    result = run(raw)
    assert result.report.from_ == "attacker@evil.example"
    head = result.message.split(b"\r\n\r\n", 1)[0]
    assert b"From: attacker@evil.example" in head
