"""Header text that reads two ways is written so that it reads one way: a rebuilt message is
a fixed point (a second pass reports nothing, adds no notice, changes no header)."""

from __future__ import annotations

import base64
import random

import pytest

from sanitizers.charsets import decode_header
from sanitizers.compose import encoded_words
from sanitizers.pipeline import sanitize_message
from sanitizers.policy import OutputPolicy, Policy
from sanitizers.vocabulary import Reason
from tests.mailfactory import body_text, leaf, mail, parse

UTF8_POLICY = Policy()
JIS_POLICY = Policy(output=OutputPolicy(charset="iso-2022-jp"))
# Short text whose UTF-8 also reads as Shift_JIS or EUC-JP: a kanji glued to a letter, a lone
# Greek or Cyrillic letter or Latin-1 character (two-byte UTF-8, an EUC-JP kanji's shape).
TWO_WAY = ["会a", "資a", "語本a", "2料①a?&", "c語①a", "Ω", "Ъ", "1Ω>>Ω", "é", "¥", "2é", "会a Ω"]


def _word(text: str) -> str:
    return "=?UTF-8?B?" + base64.b64encode(text.encode()).decode() + "?="


@pytest.mark.parametrize("policy", [UTF8_POLICY, JIS_POLICY], ids=["utf-8", "iso-2022-jp"])
@pytest.mark.parametrize("text", TWO_WAY)
def test_a_second_pass_finds_nothing_to_report(text: str, policy: Policy) -> None:
    body = leaf("text/plain; charset=utf-8", "本文です。".encode(), cte="8bit")
    raw = mail(
        body,
        ("From", f"{_word(text)} <a@example.jp>"),
        ("To", "b@example.lg.jp"),
        ("Subject", _word(text)),
    )
    first = sanitize_message(raw, policy)
    second = sanitize_message(first.message, policy)
    assert Reason.LOSSY_DECODE not in second.report.reasons
    assert body_text(second.message) == body_text(first.message)
    out, again = parse(first.message), parse(second.message)
    for key in ("Subject", "From"):
        assert str(again[key]) == str(out[key])
    assert second.report.subject == first.report.subject


@pytest.mark.parametrize("charset", ["utf-8", "iso-2022-jp"])
def test_generated_short_text_reads_back_unambiguously(charset: str) -> None:
    """Seeded: short mixes of kanji, kana, half-width kana, symbols, Greek, Cyrillic and
    ASCII (where each word reading two ways is most likely) read back exactly, unreported."""
    rng = random.Random(2047)
    alphabet = list("日本語のメール会議資料①㈱～髙﨑アイウｱｲｳ市民課ΩΣЪЖabcXYZ 123<>&\"'=?")
    failures = []
    for _ in range(1500):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 6))).strip()
        decoded = decode_header(" ".join(encoded_words(text, charset)))
        if decoded.text != text or decoded.lossy:
            failures.append(text)
    assert failures == []


def test_latin1_text_reads_back_unambiguously() -> None:
    """Seeded: Western text with single Latin-1 letters or symbols between ASCII (Müller, ¥100,
    a lone é). Two or more such characters side by side with no ASCII letter (é¥) read as a
    Shift_JIS kanji in every label and stay reported: see the module's limits."""
    rng = random.Random(8859)
    failures = []
    for _ in range(500):
        pieces = [rng.choice(["a", "M", "ller", " ", "12", "?"]) for _ in range(3)]
        text = rng.choice("éüß¥£©").join(pieces).strip() or "é"
        decoded = decode_header(" ".join(encoded_words(text, "utf-8")))
        if decoded.text != text or decoded.lossy:
            failures.append(text)
    assert failures == []
