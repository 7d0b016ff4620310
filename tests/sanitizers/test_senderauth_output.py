"""Sender authentication's outcome in the rebuilt message (no DNS here: the outcome is data):
our Authentication-Results header, never an incoming one; the actions reject, hold and warn
(a Japanese subject tag and a warning at the top of the body); hostile values kept out."""

from __future__ import annotations

import email
from email.message import Message
from email.policy import default

import pytest

from sanitizers.pipeline import sanitize_message
from sanitizers.policy import Policy
from sanitizers.senderauth import AuthAction, AuthOutcome, MethodResult
from sanitizers.vocabulary import Reason, Verdict

ID = "mx.city.example.lg.jp"
RAW = (
    "Authentication-Results: mx.city.example.lg.jp; spf=pass smtp.mailfrom=ceo@bank.co.jp;"
    " dkim=pass header.d=bank.co.jp; dmarc=pass header.from=bank.co.jp\r\n"
    "Authentication-Results: other.example.jp; dmarc=pass header.from=bank.co.jp\r\n"
    "From: 銀行 <ceo@bank.co.jp>\r\nTo: staff@city.example.lg.jp\r\n"
    "Subject: 振込先変更のお願い\r\nDate: Thu, 03 Dec 2026 10:00:00 +0900\r\n"
    "Message-ID: <m1@bank.co.jp>\r\nContent-Type: text/plain; charset=utf-8\r\n"
    "Content-Transfer-Encoding: 8bit\r\n\r\n口座を変更しました。\r\n"
).encode()


def outcome(action: AuthAction, *reasons: Reason, dmarc: str = "fail") -> AuthOutcome:
    return AuthOutcome(
        authserv_id=ID,
        results=(
            MethodResult("spf", "fail", (("smtp.mailfrom", "ceo@bank.co.jp"),)),
            MethodResult("dkim", "none"),
            MethodResult("dmarc", dmarc, (("header.from", "bank.co.jp"),), "p=none"),
        ),
        action=action,
        reasons=reasons,
    )


def parsed(message: bytes) -> Message:
    return email.message_from_bytes(message, policy=default)


def body_text(message: Message) -> str:
    part = message.get_body(("plain",)) if hasattr(message, "get_body") else message
    assert part is not None
    return str(part.get_content())  # type: ignore[attr-defined]


def test_our_header_is_written_and_every_incoming_one_is_removed() -> None:
    result = sanitize_message(RAW, Policy(), auth=outcome(AuthAction.NONE, dmarc="pass"))
    headers = parsed(result.message).get_all("Authentication-Results")
    assert headers == [
        f"{ID}; spf=fail smtp.mailfrom=ceo@bank.co.jp; dkim=none;"
        " dmarc=pass (p=none) header.from=bank.co.jp"
    ]
    assert result.report.verdict is Verdict.DELIVER
    assert result.report.auth is not None
    assert result.report.auth["action"] == "none"


def test_without_an_evaluation_no_header_at_all() -> None:
    result = sanitize_message(RAW, Policy())
    assert parsed(result.message).get_all("Authentication-Results") is None
    assert result.report.auth is None


def test_warn_tags_the_subject_and_warns_at_the_top_of_the_body() -> None:
    result = sanitize_message(RAW, Policy(), auth=outcome(AuthAction.WARN, Reason.DMARC_FAIL))
    message = parsed(result.message)
    assert message["Subject"] == "[なりすまし注意] 振込先変更のお願い"
    text = body_text(message)
    assert text.splitlines()[1] == "【なりすましにご注意ください】"
    assert "理由: 送信元ドメインの認証（DMARC）に失敗しました" in text
    assert text.index("なりすまし") < text.index("口座を変更しました。")
    assert Reason.DMARC_FAIL in result.report.reasons
    assert result.report.verdict is Verdict.DELIVER


def test_warn_in_english() -> None:
    policy = Policy.model_validate({"notice": {"language": "en"}})
    result = sanitize_message(RAW, policy, auth=outcome(AuthAction.WARN, Reason.LOOKALIKE_SENDER))
    message = parsed(result.message)
    assert message["Subject"].startswith("[SPOOFING?] ")
    assert "Why: the sender's domain imitates one of ours" in body_text(message)


def test_the_warning_survives_a_second_pass_unchanged() -> None:
    auth = outcome(AuthAction.WARN, Reason.DISPLAY_NAME_ADDRESS)
    first = sanitize_message(RAW, Policy(), auth=auth)
    second = sanitize_message(first.message, Policy(), auth=auth)
    assert parsed(second.message)["Subject"] == parsed(first.message)["Subject"]


@pytest.mark.parametrize(
    ("action", "verdict"), [(AuthAction.HOLD, Verdict.HOLD), (AuthAction.REJECT, Verdict.REJECT)]
)
def test_hold_and_reject_decide_the_verdict(action: AuthAction, verdict: Verdict) -> None:
    result = sanitize_message(RAW, Policy(), auth=outcome(action, Reason.DMARC_REJECT))
    assert result.report.verdict is verdict
    assert Reason.DMARC_REJECT in result.report.reasons
    message = parsed(result.message)
    assert "口座を変更しました" not in result.message.decode("ascii")  # a notice, not the mail
    assert message.get_all("Authentication-Results") is not None


def test_after_acceptance_reject_becomes_hold() -> None:
    held = outcome(AuthAction.REJECT, Reason.DMARC_REJECT).after_acceptance()
    assert held.action is AuthAction.HOLD
    assert AuthOutcome.from_dict(held.to_dict()) == held


@pytest.mark.parametrize(
    "hostile",
    [
        "evil.jp\r\nBcc: victim@city.example.lg.jp",
        "a.jp; dkim=pass header.d=bank.co.jp",
        "a.jp (comment)",
        'a"b.jp',
        "ｂａｎｋ.co.jp",
    ],
)
def test_a_hostile_value_is_left_out_of_the_header(hostile: str) -> None:
    auth = AuthOutcome(
        authserv_id=ID,
        results=(
            MethodResult("dkim", "fail", (("header.d", hostile), ("header.s", "sel1"))),
            MethodResult("dmarc", "fail", (("header.from", "bank.co.jp"),), comment=hostile),
        ),
    )
    header = auth.header_value()
    assert header == f"{ID}; dkim=fail header.s=sel1; dmarc=fail header.from=bank.co.jp"
    result = sanitize_message(RAW, Policy(), auth=auth)
    assert parsed(result.message).get_all("Authentication-Results") == [header]
