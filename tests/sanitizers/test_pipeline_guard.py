"""Fail closed everywhere (issue 11, classes 8 and 9): nothing in ``sanitize_message`` raises,
composition included; a lone surrogate never reaches the output; the message's time budget
bounds the work inside a sanitizer."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest

from sanitizers import compose
from sanitizers.cdr.base import CdrOutcome
from sanitizers.cdr.registry import InProcessDisarmer
from sanitizers.pipeline import sanitize_message
from sanitizers.policy import AttachmentAction, Limits, OutputPolicy, Policy
from sanitizers.vocabulary import Action, Reason, Verdict
from tests.adversarial.invariants import assert_safe
from tests.mailfactory import leaf, mail, multipart

POLICY = Policy()
# UTF-7 for a lone high surrogate (the first half of an emoji): Python decodes it as U+D83D.
LONE = "+2D0-"
LONE_WORD = f"=?utf-7?Q?{LONE}?="
HEADERS = (
    ("From", "Sender <sender@example.jp>"),
    ("To", "staff@city.example.lg.jp"),
    ("Subject", "test"),
    ("Date", "Mon, 02 Nov 2026 10:00:00 +0900"),
    ("Message-ID", "<t1@example.jp>"),
)


def _with(name: str, value: str) -> tuple[tuple[str, str], ...]:
    return tuple((n, value if n == name else v) for n, v in HEADERS)


def _attachment(filename_param: str, body: bytes = b"data") -> bytes:
    disposition = f"attachment; {filename_param}"
    part = leaf("text/plain; charset=utf-7", body, extra=[("Content-Disposition", disposition)])
    return mail(multipart("mixed", [leaf("text/plain", b"see attached"), part]))


# Every place text from the message reaches the output: each one once with a lone surrogate.
SURROGATE_MAILS = {
    "subject": mail(leaf("text/plain", b"x"), *_with("Subject", f"A {LONE_WORD} B")),
    "subject-raw-utf7": mail(leaf("text/plain", b"x"), *_with("Subject", LONE_WORD)),
    "from-name": mail(leaf("text/plain", b"x"), *_with("From", f"{LONE_WORD} <a@example.jp>")),
    "to-name": mail(leaf("text/plain", b"x"), *_with("To", f"{LONE_WORD} <b@example.jp>")),
    "body": mail(leaf("text/plain; charset=utf-7", f"a {LONE} b".encode())),
    "html-body": mail(leaf("text/html; charset=utf-7", f"<p>a {LONE} b</p>".encode())),
    "filename-2231": _attachment(f"filename*=utf-7''{quote(LONE)}.txt"),
    "filename-2047": _attachment(f'filename="{LONE_WORD}.txt"'),
    "attached-message": mail(
        multipart(
            "mixed",
            [
                leaf("text/plain", b"fwd"),
                leaf("message/rfc822", b"Subject: " + LONE_WORD.encode() + b"\r\n\r\nhi\r\n"),
            ],
        )
    ),
}


@pytest.mark.parametrize("charset", ["utf-8", "iso-2022-jp"])
@pytest.mark.parametrize("case", sorted(SURROGATE_MAILS))
def test_lone_surrogates_are_replaced_and_reported_never_raised(case: str, charset: str) -> None:
    policy = Policy(output=OutputPolicy(charset=charset))  # type: ignore[arg-type]
    result = sanitize_message(SURROGATE_MAILS[case], policy, disarmer=InProcessDisarmer())
    assert_safe(result)
    report = result.report
    assert Reason.LOSSY_DECODE in report.reason_codes()
    # The report is written as JSON by the CLI and the audit log: it must encode.
    json.dumps(report.to_dict(), ensure_ascii=False).encode("utf-8")


class _BrokenOnce:
    """Makes ``compose.compose`` raise on its first call only (a bug in composition)."""

    def __init__(self) -> None:
        self.calls = 0
        self.original = compose.compose

    def __call__(self, *args: Any, **kwargs: Any) -> bytes:
        self.calls += 1
        if self.calls == 1:
            raise ValueError("composition bug")
        return self.original(*args, **kwargs)


def test_a_fault_while_composing_holds_the_message(monkeypatch: pytest.MonkeyPatch) -> None:
    broken = _BrokenOnce()
    monkeypatch.setattr(compose, "compose", broken)
    raw = mail(leaf("text/plain", b"hello"))
    result = sanitize_message(raw, POLICY, disarmer=InProcessDisarmer(), reference="Q1")
    assert result.verdict is Verdict.HOLD
    assert Reason.ERROR in result.report.reasons
    assert b"X-Mukaika-Verdict: hold" in result.message
    assert b"hello" not in result.message
    assert_safe(result)


@pytest.mark.parametrize(
    "where",
    ["sanitizers.pipeline.notice.render_notice", "sanitizers.pipeline._verdict"],
)
def test_a_fault_after_the_parts_is_a_held_result_never_a_raise(
    where: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*_args: object, **_kwargs: object) -> None:
        raise KeyError("bug")

    monkeypatch.setattr(where, boom)
    raw = mail(leaf("text/plain", b"hello"), *_with("Subject", LONE_WORD))
    result = sanitize_message(raw, POLICY, disarmer=InProcessDisarmer())
    assert result.verdict is Verdict.HOLD
    assert Reason.ERROR in result.report.reasons
    assert_safe(result)


# --- the time budget ---------------------------------------------------------------------


class _Recording:
    """A disarmer that records the per-file limit it was given and removes the file."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    def disarm(
        self,
        _data: bytes,
        _name: str,
        _kind: str,
        _action: AttachmentAction,
        policy: Policy,
        *,
        charset: str | None = None,
        passwords: tuple[str, ...] = (),
    ) -> CdrOutcome:
        self.seconds.append(policy.cdr.seconds)
        return CdrOutcome.drop(Reason.POLICY, "recorded")


def test_the_sanitizer_gets_at_most_what_is_left_of_the_message_budget() -> None:
    policy = Policy(limits=Limits(seconds=5.0))  # the per-file limit (cdr.seconds) is 20
    assert policy.cdr.seconds > policy.limits.seconds
    raw = mail(
        multipart(
            "mixed",
            [
                leaf("text/plain", b"x"),
                *(
                    leaf(
                        "text/plain",
                        b"data",
                        extra=[("Content-Disposition", f'attachment; filename="{i}.txt"')],
                    )
                    for i in range(3)
                ),
            ],
        )
    )
    recording = _Recording()
    result = sanitize_message(raw, policy, disarmer=recording)  # type: ignore[arg-type]
    assert result.verdict is Verdict.DELIVER
    assert len(recording.seconds) == 3
    assert all(0 < seconds <= 5.0 for seconds in recording.seconds)
    assert recording.seconds == sorted(recording.seconds, reverse=True)


def test_a_budget_spent_inside_a_sanitizer_removes_that_part_and_holds_the_rest() -> None:
    """A sanitizer that never finishes, in the real isolated child: its part is removed with
    ``timeout`` when the message budget (not the longer per-file limit) runs out, and the
    parts after it are not started: the message is held with ``limit_time``."""
    from sanitizers.cdr.isolation import IsolatedDisarmer
    from sanitizers.cdr.registry import SANITIZERS

    policy = Policy(limits=Limits(seconds=1.5))
    sleepy = {**SANITIZERS, "text": "tests.sanitizers.cdr.misbehaving:Sleep"}
    parts = [leaf("text/plain", b"x")]
    parts += [
        leaf("text/plain", b"data", extra=[("Content-Disposition", f'attachment; filename="{i}"')])
        for i in range(2)
    ]
    with IsolatedDisarmer(policy.cdr, sanitizers=sleepy) as disarmer:
        result = sanitize_message(mail(multipart("mixed", parts)), policy, disarmer=disarmer)
    (first,) = result.report.parts[1:]  # the second attachment was never started
    assert (first.action, first.reason) == (Action.REMOVED, Reason.TIMEOUT)
    # Killed after what was left of the 1.5 s budget, not after the per-file 20 s.
    assert float(first.detail.split(" s")[0]) <= 1.5
    assert result.verdict is Verdict.HOLD
    assert Reason.LIMIT_TIME in result.report.reasons


class _TimingOut:
    """A disarmer whose every file runs out of the wall-clock limit it was given."""

    def disarm(
        self,
        _data: bytes,
        _name: str,
        _kind: str,
        _action: AttachmentAction,
        policy: Policy,
        *,
        charset: str | None = None,
        passwords: tuple[str, ...] = (),
    ) -> CdrOutcome:
        return CdrOutcome.drop(Reason.TIMEOUT, f"{policy.cdr.seconds:.3g} s")


def _with_files(count: int) -> bytes:
    files = [
        leaf("text/plain", b"data", extra=[("Content-Disposition", f'attachment; filename="{i}"')])
        for i in range(count)
    ]
    return mail(multipart("mixed", [leaf("text/plain", b"x"), *files]))


@pytest.mark.parametrize("seconds", [0.5, 2.0, 19.0])
def test_the_last_file_running_out_of_the_message_budget_holds_the_message(
    seconds: float,
) -> None:
    """Even when no part follows the one that ran out (a single 20,000-page PDF), spending
    the message budget holds the message with ``limit_time``, as the README says."""
    policy = Policy(limits=Limits(seconds=seconds))
    result = sanitize_message(_with_files(1), policy, disarmer=_TimingOut())  # type: ignore[arg-type]
    (part,) = result.report.parts[1:]
    assert (part.action, part.reason) == (Action.REMOVED, Reason.TIMEOUT)
    assert result.verdict is Verdict.HOLD
    assert Reason.LIMIT_TIME in result.report.reasons


@pytest.mark.parametrize("count", [1, 3])
def test_a_file_over_its_own_per_file_limit_is_removed_without_holding(count: int) -> None:
    """Guard: the per-file limit (``cdr.seconds``, shorter than the budget) removes the file
    with ``timeout``; the message budget is not spent, so the rest is delivered."""
    policy = Policy(limits=Limits(seconds=600.0))
    assert policy.cdr.seconds < policy.limits.seconds
    result = sanitize_message(_with_files(count), policy, disarmer=_TimingOut())  # type: ignore[arg-type]
    assert [p.reason for p in result.report.parts[1:]] == [Reason.TIMEOUT] * count
    assert result.verdict is Verdict.DELIVER
    assert Reason.LIMIT_TIME not in result.report.reasons
