"""The held notices: from templates operators can replace, dates in local time, the one for
a message awaiting a password says where and how to give it and whom to ask, and no notice
claims the content is both left out and kept."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from email import message_from_bytes
from email import policy as email_policy
from email.message import EmailMessage
from pathlib import Path

from sanitizers.cdr.registry import InProcessDisarmer
from sanitizers.notice import NoticeContext, render_crash
from sanitizers.pipeline import sanitize_message
from sanitizers.policy import NoticePolicy, Policy, UnlockPolicy
from sanitizers.vocabulary import Verdict
from tests.sanitizers.cdr import encrypted_fixtures as enc

CONTEXT = NoticeContext(
    public_url="https://mukaika.city.example.lg.jp/unlock",
    contact="情報政策課 内線1234",
    timezone="Asia/Tokyo",
)


def _mail(attachment: bytes | None, name: str = "資料.zip") -> bytes:
    message = EmailMessage()
    message["From"] = "取引先 <partner@example.com>"
    message["To"] = "staff@city.example.lg.jp"
    message["Subject"] = "資料送付"
    message["Date"] = "Thu, 03 Dec 2026 08:30:00 +0000"
    message.set_content("本文のテキスト\n")
    if attachment is not None:
        message.add_attachment(
            attachment, maintype="application", subtype="octet-stream", filename=name
        )
    return message.as_bytes()


def _body(raw: bytes) -> str:
    message = message_from_bytes(raw, policy=email_policy.default)
    assert isinstance(message, EmailMessage)
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def _held(raw: bytes, policy: Policy | None = None, context: NoticeContext = CONTEXT) -> str:
    result = sanitize_message(
        raw, policy or Policy(), disarmer=InProcessDisarmer(), reference="REF-42", context=context
    )
    assert result.report.verdict is Verdict.HOLD
    return _body(result.message)


def test_awaiting_password_says_reference_where_how_and_whom_in_japanese() -> None:
    text = _held(_mail(enc.aes_zip({"a.txt": b"x"})))
    assert "【パスワード入力待ちのお知らせ】" in text
    assert "参照番号: REF-42" in text
    assert CONTEXT.public_url in text
    assert "情報政策課 内線1234" in text
    assert "資料.zip" in text
    assert "自動で解除" not in text  # automatic unlock is off by default


def test_without_a_console_it_says_to_give_the_password_to_the_contact() -> None:
    text = _held(_mail(enc.aes_zip({"a.txt": b"x"})), context=NoticeContext())
    assert "参照番号とパスワードをお問い合わせ先へお伝えください" in text
    assert "情報システム担当" in text


def test_automatic_unlock_is_mentioned_when_it_is_on() -> None:
    policy = Policy(unlock=UnlockPolicy(automatic=True))
    assert "自動で解除を試みます" in _held(_mail(enc.aes_zip({"a.txt": b"x"})), policy)


def test_dates_are_shown_in_local_time() -> None:
    text = _held(_mail(enc.encrypted_pdf(), "案内.pdf"))
    assert "日付: 2026-12-03 17:30:00 JST" in text


def test_a_held_notice_lists_no_body_as_kept() -> None:
    policy = Policy(hold_reasons=frozenset(Policy().hold_reasons))
    for raw in (_mail(enc.aes_zip({"a.txt": b"x"})), _mail(enc.encrypted_pdf(), "a.pdf")):
        text = _held(raw, policy)
        assert "含まれていません" in text
        assert "そのまま" not in text
        assert "本文 (" not in text


def test_operators_replace_each_template_by_name(tmp_path: Path) -> None:
    (tmp_path / "held_password_ja.txt").write_text(
        "独自の文面 ${reference} ${unlock_how} ${contact}\n", encoding="utf-8"
    )
    policy = Policy(notice=NoticePolicy(templates_dir=str(tmp_path)))
    text = _held(_mail(enc.aes_zip({"a.txt": b"x"})), policy)
    assert text.startswith("独自の文面 REF-42 次のページで")
    crash = render_crash(
        policy.notice,
        CONTEXT,
        sender="partner@example.com",
        received=datetime(2026, 12, 3, 8, 30, tzinfo=UTC),
        reference="REF-9",
        queue_id="Q1",
    )
    assert "受信日時: 2026-12-03 17:30:00 JST" in crash  # the shipped one: no crash_ja.txt here
    (tmp_path / "crash_ja.txt").write_text("障害 ${reference}\n", encoding="utf-8")
    other = policy.model_copy(
        update={"notice": NoticePolicy(templates_dir=str(tmp_path), language="ja", always=True)}
    )
    crash = render_crash(
        other.notice,
        CONTEXT,
        sender="a@b",
        received=datetime(2026, 12, 3, tzinfo=UTC),
        reference="REF-9",
        queue_id="Q1",
    )
    assert crash == "障害 REF-9\n"


LINKS = (
    ("a@city.example.lg.jp", "https://mukaika.city.example.lg.jp/ppap/TOKEN-A.sigA"),
    ("bcc@city.example.lg.jp", "https://mukaika.city.example.lg.jp/ppap/TOKEN-B.sigB"),
)
LINKED = replace(CONTEXT, links=LINKS, links_expire=datetime(2026, 12, 10, 11, 0, tzinfo=UTC))


def test_each_recipient_gets_a_notice_with_their_own_link_only() -> None:
    result = sanitize_message(
        _mail(enc.aes_zip({"a.txt": b"x"})),
        Policy(),
        disarmer=InProcessDisarmer(),
        reference="REF-42",
        context=LINKED,
    )
    assert [rcpt for rcpt, _ in result.notices] == [rcpt for rcpt, _ in LINKS]
    for (_, link), (_, other) in ((LINKS[0], LINKS[1]), (LINKS[1], LINKS[0])):
        (notice,) = [raw for rcpt, raw in result.notices if link in _body(raw)]
        text = _body(notice)
        assert other not in text  # nobody sees another's link (a Bcc recipient stays unseen)
        assert link in text.splitlines()  # a line of its own: copyable through screen transfer
        assert "2026-12-10 20:00:00 JST まで有効" in text
        assert "参照番号: REF-42" in text
    # The message for everyone (used when links are off) carries no link at all.
    assert "TOKEN-" not in _body(result.message)


def test_english_notice_with_a_link() -> None:
    policy = Policy(notice=NoticePolicy(language="en"))
    result = sanitize_message(
        _mail(enc.aes_zip({"a.txt": b"x"})),
        policy,
        disarmer=InProcessDisarmer(),
        reference="REF-42",
        context=LINKED,
    )
    text = _body(result.notices[0][1])
    assert "Open this link and enter the password" in text
    assert LINKS[0][1] in text.splitlines()


def test_no_per_recipient_notices_unless_awaiting_a_password() -> None:
    for raw in (_mail(None), _mail(b"MZ\x90\x00" + b"\x00" * 200, "a.exe")):
        result = sanitize_message(
            raw, Policy(), disarmer=InProcessDisarmer(), reference="REF-42", context=LINKED
        )
        assert result.notices == ()
