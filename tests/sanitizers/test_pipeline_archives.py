"""Archives other than ZIP through the whole pipeline with the shipped policy and the real,
isolated sanitizers: delivered as ZIPs of their disarmed members, and the notice says, in
Japanese, that each was rebuilt as a ZIP and what was removed inside."""

from __future__ import annotations

import io
import zipfile

import pytest

from sanitizers.notice import NoticeContext
from sanitizers.pipeline import sanitize_message
from sanitizers.policy import NoticePolicy, Policy
from sanitizers.release import ReleaseTerms
from sanitizers.vocabulary import Action, FileKind, Reason, Verdict, label
from tests.mailfactory import body_text, mail, multipart, parse
from tests.sanitizers.cdr.archive_fixtures import (
    EXE,
    RAR4_FILE_ENCRYPTED,
    RAR4_HEADERS_ENCRYPTED,
    lzh,
    rar4,
    sevenzip,
)
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


def _rar_mail(flags: dict[str, int]) -> bytes:
    encrypted = rar4([("見積.docm".encode("cp932"), EXE)], **flags)
    return mail(
        multipart(
            "mixed",
            [
                attach("メモ.txt", "text/plain", TEXT.encode()),
                attach("秘密.rar", "application/x-rar-compressed", encrypted),
            ],
        )
    )


ENCRYPTED_RAR = {
    "data": {"file_flags": RAR4_FILE_ENCRYPTED},
    "names": {"main_flags": RAR4_HEADERS_ENCRYPTED},
}
LINKS = NoticeContext(
    public_url="https://mukaika.city.example.lg.jp/unlock",
    contact="情報政策課 内線1234",
    links=(("staff@city.example.lg.jp", "https://mukaika.city.example.lg.jp/unlock/l/SIGNED"),),
)


@pytest.mark.parametrize("encrypted", sorted(ENCRYPTED_RAR))
def test_encrypted_rar_is_held_for_an_operator_with_no_unlock_offered(encrypted: str) -> None:
    """An encrypted RAR (data or names) holds the mail like an encrypted ZIP, but the notice
    is the plain held one: no password is asked for, no link is given, and the passwords a
    mail offers are never tried on it."""
    result = sanitize_message(
        _rar_mail(ENCRYPTED_RAR[encrypted]), Policy(), context=LINKS, passwords=("secret",)
    )
    assert result.report.verdict is Verdict.HOLD
    (part,) = [p for p in result.report.parts if p.filename == "秘密.rar"]
    assert (part.action, part.reason) == (Action.HELD, Reason.ENCRYPTED_NO_UNLOCK)
    assert Reason.ENCRYPTED_NO_UNLOCK in result.report.reasons
    assert not result.report.awaiting_password()
    assert result.notices == ()  # no per-recipient notice carrying a link
    text = body_text(result.message)
    assert "【保留のお知らせ】" in text
    assert "パスワード" in label(Reason.ENCRYPTED_NO_UNLOCK, "ja")
    assert label(Reason.ENCRYPTED_NO_UNLOCK, "ja") in text
    assert "ここではパスワードで開けない" in text
    assert "パスワード入力待ち" not in text
    assert "SIGNED" not in text
    assert LINKS.public_url not in text


def test_released_encrypted_rar_is_removed_and_the_rest_delivered() -> None:
    """An operator's release lifts the hold: the RAR, still unreadable, is removed with a
    notice naming it; the rest of the mail is delivered."""
    raw = _rar_mail(ENCRYPTED_RAR["data"])
    result = sanitize_message(raw, Policy(), release=ReleaseTerms(lift_holds=True))
    assert result.report.verdict is Verdict.DELIVER
    parts = {p.filename: p for p in result.report.parts if p.filename}
    assert (parts["秘密.rar"].action, parts["秘密.rar"].reason) == (
        Action.REMOVED,
        Reason.ENCRYPTED_NO_UNLOCK,
    )
    assert parts["メモ.txt"].action is Action.SANITIZED
    assert "秘密.rar" in body_text(result.message)


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
