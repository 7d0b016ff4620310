"""Legacy OLE: the contract (decide only, never sanitized), plus detection details."""

from __future__ import annotations

import io
from collections.abc import Sequence

import olefile
import pytest

from sanitizers.cdr import olescan
from sanitizers.cdr.base import CdrContext
from sanitizers.cdr.ole import MAIN_STREAMS, OleSanitizer
from sanitizers.cdr.settings import CdrPolicy
from sanitizers.errors import SanitizeError
from sanitizers.vocabulary import Action, Reason
from tests.sanitizers.cdr import office_fixtures as F
from tests.sanitizers.cdr.contract import Case, CdrContract


class TestOleContract(CdrContract):
    kind = "ole"
    garbage_may_be_kept = True  # decide-only: a bit-flipped clean .doc can still be clean

    def hostile_cases(self) -> Sequence[Case]:
        removed = Action.REMOVED
        return [
            Case(
                "doc-vba", F.doc_with_macros(), "a.doc", frozenset({"vba"}), removed, Reason.MACRO
            ),
            Case(
                "doc-objectpool",
                F.doc_with_object(),
                "a.doc",
                frozenset({"ole_object"}),
                removed,
                Reason.EMBEDDED_OBJECT,
            ),
            Case(
                "xls-mbd",
                F.xls_with_mbd(),
                "a.xls",
                frozenset({"ole_object"}),
                removed,
                Reason.EMBEDDED_OBJECT,
            ),
            Case(
                "encrypted-package",
                F.encrypted_ooxml(),
                "a.docx",
                action=Action.HELD,
                reason=Reason.ENCRYPTED,
            ),
            Case(
                "msg-not-office",
                F.msg_with_attachment(),
                "a.msg",
                action=removed,
                reason=Reason.UNSUPPORTED_TYPE,
                detectable=False,
            ),
        ]

    def clean_cases(self) -> Sequence[Case]:
        return [
            Case("clean-doc", F.clean_doc(), "a.doc"),
            Case("clean-xls", F.clean_xls(), "b.xls"),
        ]

    def dangerous_items(self, data: bytes) -> set[str]:
        found = olescan.macros(data, "x.doc") | olescan.embedded(data)
        if olescan.is_encrypted(data):
            found.add("encrypted")
        return found

    def assert_parses(self, data: bytes) -> None:
        with olefile.OleFileIO(io.BytesIO(data)) as ole:
            assert any(ole.exists(name) for name in MAIN_STREAMS)


def test_sanitize_never_rebuilds() -> None:
    ctx = CdrContext(policy=CdrPolicy())
    for data in (F.clean_doc(), F.doc_with_macros(), F.doc_with_object()):
        outcome = OleSanitizer().run(data, "a.doc", ctx)
        assert outcome.action in (Action.KEPT, Action.REMOVED)
        if outcome.action == Action.KEPT:
            assert outcome.data == data


def test_not_a_compound_file() -> None:
    outcome = OleSanitizer().run(b"PK\x03\x04", "a.doc", CdrContext(policy=CdrPolicy()))
    assert (outcome.action, outcome.reason) == (Action.REMOVED, Reason.MALFORMED)


def test_verify_rejects_macros() -> None:
    with pytest.raises(SanitizeError) as info:
        OleSanitizer().verify(F.doc_with_macros(), CdrContext(policy=CdrPolicy()))
    assert info.value.reason == Reason.VERIFY_FAILED


def test_short_bytes_are_never_a_file_name() -> None:
    # olefile.OleFileIO(bytes) treats short bytes as a path; olescan must not.
    outcome = OleSanitizer().run(
        olefile.MAGIC + b"/etc/passwd", "a.doc", CdrContext(policy=CdrPolicy())
    )
    assert outcome.action == Action.REMOVED
