"""sanitizers.safetext: one table of characters per unsafe class and what each use makes of
them; every other character (Japanese spaces and symbols included) is kept."""

from __future__ import annotations

import pytest

from sanitizers.safetext import (
    UNSAFE_CLASSES,
    body_text,
    display_text,
    has_protocol_breaking,
    has_unsafe,
    log_text,
    terminal_text,
    unsafe_classes,
)

# (character, class, display, body, terminal); a log removes every one of them.
TABLE = [
    ("\x00", "c0", "", "", "?"),
    ("\x07", "c0", "", "", "?"),
    ("\t", "c0", " ", "\t", "?"),
    ("\n", "c0", " ", "\n", "?"),
    ("\v", "c0", " ", "\n", "?"),
    ("\f", "c0", " ", "\n", "?"),
    ("\r", "c0", " ", "\r", "?"),
    ("\x1b", "c0", "", "", "?"),
    ("\x1c", "c0", " ", "\n", "?"),
    ("\x1f", "c0", "", "", "?"),
    ("\x7f", "c0", "", "", "?"),
    ("\x80", "c1", "", "", "?"),
    ("\x85", "c1", " ", "\n", "?"),
    ("\x9b", "c1", "", "", "?"),
    ("\x9f", "c1", "", "", "?"),
    ("\u061c", "bidi", "", "", "?"),
    ("\u200e", "bidi", "", "", "?"),
    ("\u200f", "bidi", "", "", "?"),
    ("\u202a", "bidi", "", "", "?"),
    ("\u202e", "bidi", "", "", "?"),
    ("\u2066", "bidi", "", "", "?"),
    ("\u2069", "bidi", "", "", "?"),
    ("\u2028", "line_separators", " ", "\n", "?"),
    ("\u2029", "line_separators", " ", "\n", "?"),
    ("\ud800", "surrogates", "", "", "?"),
    ("\udfff", "surrogates", "", "", "?"),
]
# Characters that look like whitespace or formatting but are text: always kept.
KEPT = [
    "\u3000",  # IDEOGRAPHIC SPACE
    "\xa0",  # NO-BREAK SPACE
    "\u200b",  # ZERO WIDTH SPACE (not a bidi control)
    "\u00ad",  # SOFT HYPHEN
    "\ufeff",  # BYTE ORDER MARK inside text
    "\ue000",  # private use
    "～",
    "髙",
    "ｱ",
    "①",
    "😀",
]


@pytest.mark.parametrize(("char", "name", "one_line", "body", "terminal"), TABLE)
def test_each_unsafe_character_per_use(
    char: str, name: str, one_line: str, body: str, terminal: str
) -> None:
    assert char in UNSAFE_CLASSES[name]
    assert unsafe_classes(f"a{char}b") == {name}
    assert has_unsafe(char)
    assert display_text(f"a{char}b") == f"a{one_line}b"
    assert log_text(f"a{char}b") == "ab"
    assert body_text(f"a{char}b") == f"a{body}b"
    assert terminal_text(f"a{char}b") == f"a{terminal}b"


@pytest.mark.parametrize("char", KEPT)
def test_text_characters_are_kept_by_every_use(char: str) -> None:
    text = f"{char}件名{char}"
    assert not has_unsafe(text)
    assert unsafe_classes(text) == frozenset()
    for use in (display_text, log_text, body_text, terminal_text):
        assert use(text) == text


def test_classes_are_disjoint_and_cover_all_controls() -> None:
    names = list(UNSAFE_CLASSES)
    for index, first in enumerate(names):
        for second in names[index + 1 :]:
            assert set(UNSAFE_CLASSES[first]).isdisjoint(UNSAFE_CLASSES[second])
    controls = {chr(code) for code in (*range(0x20), *range(0x7F, 0xA0))}
    assert controls == set(UNSAFE_CLASSES["c0"]) | set(UNSAFE_CLASSES["c1"])


def test_display_drops_outer_ascii_spaces_only_and_bounds_length() -> None:
    assert display_text(" \u3000件名\u3000 ") == "\u3000件名\u3000"
    assert display_text("あ" * 10, limit=5) == "ああああ…"
    assert log_text(" x ", limit=10) == " x "
    assert log_text("x" * 20, limit=10) == "x" * 9 + "…"


@pytest.mark.parametrize(("char", "name", "_one_line", "_body", "_terminal"), TABLE)
def test_protocol_lines_refuse_controls_and_separators_only(
    char: str, name: str, _one_line: str, _body: str, _terminal: str
) -> None:
    assert has_protocol_breaking(f"a{char}b") is (name in ("c0", "c1", "line_separators"))


def test_disguised_file_name_and_terminal_escape() -> None:
    assert display_text("請求書\u202efdp.exe") == "請求書fdp.exe"
    assert terminal_text("\x1b]0;owned\x07ok") == "?]0;owned?ok"
    assert body_text("一行目\r\n二行目\u2028三行目\x1b[2J") == "一行目\r\n二行目\n三行目[2J"
