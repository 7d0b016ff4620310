"""The one vocabulary: every code of every enum has a Japanese and an English label, the
enums are what the metrics, the quarantine and the file-type detector accept, and no code is
spelled twice within an enum."""

from __future__ import annotations

import pytest

from sanitizers.cdr.findings import CODE_REASONS
from sanitizers.filetype import KINDS
from sanitizers.vocabulary import (
    VOCABULARY,
    Action,
    Code,
    FileKind,
    MessageState,
    Reason,
    RemovedItem,
    SmtpRefusal,
    label,
)

CODES = [(enum.__name__, code) for enum in VOCABULARY for code in enum]


@pytest.mark.parametrize(("enum", "code"), CODES, ids=lambda v: str(v))
def test_every_code_has_a_japanese_and_an_english_label(enum: str, code: Code) -> None:
    ja, en = label(code, "ja"), label(code, "en")
    assert ja, f"{enum}.{code}: no Japanese label"
    assert en, f"{enum}.{code}: no English label"
    assert (ja.strip(), en.strip()) == (ja, en)
    assert en.isascii(), f"{enum}.{code}: English label {en!r}"


def test_japanese_labels_are_japanese() -> None:
    """A label copied from English by mistake shows up here (brand names aside)."""
    ascii_ok = {"JavaScript", "PDF", "HTML", "SVG"}
    for _, code in CODES:
        ja = label(code, "ja")
        assert not ja.isascii() or ja in ascii_ok, f"{code}: {ja!r}"


def test_a_code_shared_by_two_enums_keeps_both_labels() -> None:
    assert label(SmtpRefusal.TIMEOUT, "en") != label(Reason.TIMEOUT, "en")
    assert label(MessageState.HELD, "ja") != label(Action.HELD, "ja")


def test_the_detector_and_the_office_findings_speak_the_vocabulary() -> None:
    assert tuple(kind.value for kind in FileKind) == KINDS
    assert set(CODE_REASONS) <= {item.value for item in RemovedItem}


def test_codes_are_lower_snake_case_and_unique_within_their_enum() -> None:
    for enum in VOCABULARY:
        values = [code.value for code in enum]
        assert len(values) == len(set(values)), enum.__name__
        for value in values:
            assert value.replace("_", "").isalnum(), value
            assert value.islower(), value
