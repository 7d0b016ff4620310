"""Archives other than ZIP through the whole pipeline with the shipped policy and the real,
isolated sanitizers: delivered as ZIPs of their disarmed members, and the notice says, in
Japanese, that each was rebuilt as a ZIP and what was removed inside."""

from __future__ import annotations

import io
import zipfile

from sanitizers.pipeline import sanitize_message
from sanitizers.policy import NoticePolicy, Policy
from sanitizers.vocabulary import Action, FileKind, Verdict
from tests.mailfactory import body_text, mail, multipart, parse
from tests.sanitizers.cdr.archive_fixtures import EXE, lzh, sevenzip
from tests.sanitizers.test_pipeline_cdr import attach

TEXT = "見積書を送ります。\n"


def _mail() -> bytes:
    return mail(
        multipart(
            "mixed",
            [
                attach(
                    "見積.lzh",
                    "application/x-lzh-compressed",
                    lzh(
                        [
                            ("請求書.exe".encode("cp932"), EXE),
                            ("見積.txt".encode("cp932"), TEXT.encode()),
                        ]
                    ),
                ),
                attach(
                    "資料.7z",
                    "application/x-7z-compressed",
                    sevenzip([("メモ.txt", TEXT.encode())]),
                ),
                attach("秘密.7z", "application/x-7z-compressed", sevenzip([("a.txt", b"x")], "pw")),
            ],
        )
    )


def test_encrypted_7z_holds_the_message() -> None:
    result = sanitize_message(_mail(), Policy())
    assert result.verdict is Verdict.HOLD
    held = {p.filename: p.action for p in result.report.parts if p.filename}
    assert held["秘密.7z"] is Action.HELD


def test_archives_are_delivered_as_zips_and_the_notice_says_so() -> None:
    raw = mail(
        multipart(
            "mixed",
            [
                attach(
                    "見積.lzh",
                    "application/x-lzh-compressed",
                    lzh(
                        [
                            ("請求書.exe".encode("cp932"), EXE),
                            ("見積.txt".encode("cp932"), TEXT.encode()),
                        ]
                    ),
                ),
                attach(
                    "資料.7z",
                    "application/x-7z-compressed",
                    sevenzip([("メモ.txt", TEXT.encode())]),
                ),
            ],
        )
    )
    result = sanitize_message(raw, Policy())
    assert result.verdict is Verdict.DELIVER
    out = parse(result.message)
    attachments = {a.get_filename(): a.get_content() for a in out.iter_attachments()}
    assert set(attachments) == {"見積.zip", "資料.zip"}
    with zipfile.ZipFile(io.BytesIO(attachments["見積.zip"])) as archive:
        assert {n: archive.read(n) for n in archive.namelist()} == {"見積.txt": TEXT.encode()}
    parts = {p.filename: p for p in result.report.parts if p.filename}
    assert parts["見積.lzh"].rebuilt_as is FileKind.ZIP
    assert parts["見積.lzh"].kind == "archive"
    text = body_text(result.message)
    assert "ZIP 圧縮ファイルの形式に作り直しました" in text
    assert "圧縮ファイル内: 請求書.exe → 削除: 実行ファイルまたはスクリプトのため" in text
    assert "添付名: 見積.zip" in text
    english = body_text(sanitize_message(raw, Policy(notice=NoticePolicy(language="en"))).message)
    assert "rebuilt as ZIP archive" in english


def test_a_zip_is_not_said_to_be_rebuilt_as_zip() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a.txt", TEXT)
    result = sanitize_message(mail(attach("a.zip", "application/zip", buffer.getvalue())), Policy())
    assert [p.rebuilt_as for p in result.report.parts if p.filename] == [None]
    assert "作り直しました" not in body_text(result.message)
