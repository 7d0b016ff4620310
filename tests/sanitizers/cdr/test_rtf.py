"""RTF: the contract, plus the tokenizer's handling of malformed input."""

from __future__ import annotations

import re
from collections.abc import Sequence

import pytest

from sanitizers.cdr.base import CdrContext, CdrOutcome
from sanitizers.cdr.rtf import RtfSanitizer, find_dangerous, rebuild_rtf
from sanitizers.cdr.settings import CdrPolicy
from sanitizers.errors import SanitizeError
from sanitizers.vocabulary import Action, Reason
from tests.sanitizers.cdr import office_fixtures as F
from tests.sanitizers.cdr.contract import Case, CdrContract

DDE_RTF = (
    b"{\\rtf1\\ansi \\pard benign RTF text\\par "
    b'{\\field{\\*\\fldinst {\\rtlch DDEAUTO c:\\\\windows\\\\system32\\\\cmd.exe "/k calc"}}'
    b"{\\fldrslt {shown field result}}}\\par "
    b"{\\field{\\*\\fldinst PAGE}{\\fldrslt 1}}}"
)


def run(data: bytes, keep_if_clean: bool = False) -> CdrOutcome:
    ctx = CdrContext(policy=CdrPolicy(), keep_if_clean=keep_if_clean)
    return RtfSanitizer().run(data, "a.rtf", ctx)


class TestRtfContract(CdrContract):
    kind = "rtf"
    keep_if_clean_rebuilds = True

    def hostile_cases(self) -> Sequence[Case]:
        return [
            Case(
                "object-package",
                F.rtf_with_object(),
                "a.rtf",
                frozenset({"ole_object"}),
                reason=Reason.EMBEDDED_OBJECT,
                text=("benign RTF text", "after object", "shown result"),
            ),
            Case(
                "objdata-in-unknown-destination",
                F.rtf_with_nested_objdata(),
                "b.rtf",
                frozenset({"ole_object"}),
                text=("visible", "tail"),
            ),
            Case(
                "remote-template",
                F.rtf_template(),
                "c.rtf",
                frozenset({"external_relationship"}),
                reason=Reason.EXTERNAL_REFERENCE,
                text=("benign RTF text",),
            ),
            Case(
                "ddeauto-field",
                DDE_RTF,
                "d.rtf",
                frozenset({"dde"}),
                reason=Reason.ACTIVE_CONTENT,
                text=("benign RTF text", "shown field result"),
            ),
        ]

    def clean_cases(self) -> Sequence[Case]:
        return [Case("clean", F.clean_rtf(), "clean.rtf", text=("benign RTF text",))]

    def bomb_cases(self) -> Sequence[Case]:
        return [
            Case("deep-nesting", b"{\\rtf1" + b"{" * 200_000, "deep.rtf", action=Action.REMOVED),
            Case("bin-past-end", b"{\\rtf1\\bin999999 abc}", "bin.rtf", action=Action.REMOVED),
            Case("long-word", b"{\\rtf1\\" + b"a" * 5000 + b"}", "w.rtf", action=Action.REMOVED),
            Case("trailing-text", b"{\\rtf1 a}{\\object}", "t.rtf", action=Action.REMOVED),
            Case("extra-close", b"{\\rtf1 a}}}", "x.rtf", action=Action.REMOVED),
        ]

    def dangerous_items(self, data: bytes) -> set[str]:
        return find_dangerous(data)

    def assert_parses(self, data: bytes) -> None:
        assert data.startswith(b"{\\rt")
        rebuild_rtf(data, CdrPolicy().rtf_max_depth)

    def extract_text(self, data: bytes) -> str:
        return re.sub(rb"\\[a-zA-Z]+-?\d* ?|[{}]", b"", data).decode("latin-1")


def test_unclosed_groups_are_closed() -> None:
    rebuilt = rebuild_rtf(b"{\\rtf1 {\\b bold", 512)
    assert rebuilt.data.count(b"{") == rebuilt.data.count(b"}")


def test_object_without_star_and_mid_group() -> None:
    data = b"{\\rtf1 keep {\\pard text \\objdata 0102} after}"
    rebuilt = rebuild_rtf(data, 512)
    assert b"objdata" not in rebuilt.data
    assert b"after" in rebuilt.data
    assert rebuilt.removed == ["ole_object"]


def test_depth_limit_reason() -> None:
    with pytest.raises(SanitizeError) as info:
        rebuild_rtf(b"{\\rtf1" + b"{" * 600 + b"}" * 601, 512)
    assert info.value.reason == Reason.LIMIT_DEPTH


def test_ordinary_field_kept() -> None:
    rebuilt = rebuild_rtf(DDE_RTF, 512)
    assert b"PAGE" in rebuilt.data
    assert b"DDEAUTO" not in rebuilt.data


def test_keep_if_clean() -> None:
    kept = run(F.clean_rtf(), keep_if_clean=True)
    removed = run(F.rtf_with_object(), keep_if_clean=True)
    assert kept.action == Action.SANITIZED  # the verified rebuild, not the sender's bytes
    assert removed.action == Action.REMOVED


def test_not_rtf() -> None:
    outcome = run(b"hello")
    assert outcome.reason == Reason.MALFORMED
