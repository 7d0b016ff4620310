"""A file delivered under another name than the sender's (issue 11, class 10): the notice
always says so, with the sender's name shown exactly (invisible characters as code points)
and the delivered name, whichever sanitizer or name rule caused the change."""

from __future__ import annotations

import email
import email.policy
from urllib.parse import quote

import pytest

from sanitizers.cdr.registry import InProcessDisarmer
from sanitizers.pipeline import sanitize_message
from sanitizers.policy import NoticePolicy, Policy
from sanitizers.safetext import visible_text
from tests.mailfactory import leaf, mail, multipart


def _sent(name: str, body: bytes = "市役所の資料\r\n".encode()) -> bytes:
    disposition = f"attachment; filename*=utf-8''{quote(name, safe='')}"
    attachment = leaf(
        "text/plain; charset=utf-8", body, extra=[("Content-Disposition", disposition)]
    )
    return mail(multipart("mixed", [leaf("text/plain; charset=utf-8", b"x"), attachment]))


def _body(raw: bytes, language: str = "ja") -> tuple[str, list[str]]:
    policy = Policy(notice=NoticePolicy(language=language))
    result = sanitize_message(raw, policy, disarmer=InProcessDisarmer())
    out = email.message_from_bytes(result.message, policy=email.policy.default)
    names = [p.get_filename() or "" for p in out.walk() if p.get_filename()]
    text = next(p for p in out.walk() if p.get_content_type() == "text/plain")
    return str(text.get_content()), names


RENAMED = [
    ("メモ.txt ", "メモ.txt", '"メモ.txt<U+0020>"'),  # a trailing space
    (" メモ.txt", "メモ.txt", '"<U+0020>メモ.txt"'),  # a leading space
    ("a\u202etxt.txt", "atxt.txt", '"a<U+202E>txt.txt"'),  # a bidi override
    ("\u2067メモ\u2069.txt", "メモ.txt", '"<U+2067>メモ<U+2069>.txt"'),  # bidi isolates
    ("報告\u200b書.txt", "報告書.txt", '"報告<U+200B>書.txt"'),  # a zero-width space
    ("dir/sub/メモ.txt", "メモ.txt", '"dir/sub/メモ.txt"'),  # a path
    ("メモ\t.txt", "メモ.txt", '"メモ<U+0009>.txt"'),  # a tab
]


@pytest.mark.parametrize(("sent", "delivered", "shown"), RENAMED)
@pytest.mark.parametrize("language", ["ja", "en"])
def test_a_renamed_file_is_named_in_the_notice(
    sent: str, delivered: str, shown: str, language: str
) -> None:
    text, names = _body(_sent(sent), language)
    assert names == [delivered]
    sent_as, becomes = {
        "ja": ("送信者が付けた名前", "添付名"),
        "en": ("name as sent", "attached as"),
    }[language]
    assert f"  {sent_as}: {shown}\n  {becomes}: {delivered}\n" in text.replace("\r\n", "\n")


def test_a_file_kept_under_its_own_name_adds_no_notice() -> None:
    """Guard: nothing changed, nothing to say (and a second pass over the output is a no-op)."""
    text, names = _body(_sent("メモ.txt"))
    assert names == ["メモ.txt"]
    assert "送信者が付けた名前" not in text
    assert "無害化処理のお知らせ" not in text


def test_visible_text_shows_what_display_text_would_hide() -> None:
    assert visible_text("a\u202eb\u200bc\t ") == "a<U+202E>b<U+200B>c<U+0009><U+0020>"
    assert visible_text("  ") == "<U+0020><U+0020>"
    assert visible_text("ふつう\u3000資料 1.pdf") == "ふつう\u3000資料 1.pdf"
    assert visible_text("ふつう.pdf") == "ふつう.pdf"
