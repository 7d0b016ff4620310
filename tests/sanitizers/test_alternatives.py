"""Tests for sanitizers.alternatives: when a text alternative gives way to the HTML one."""

from __future__ import annotations

import pytest

from sanitizers.alternatives import (
    HTML_POINTERS,
    MAX_POINTER_CHARS,
    is_blank,
    points_to_html,
    text_loses,
)

# One example per named pattern (each must be found by that pattern and no pattern is
# left without an example).
EXAMPLES = {
    "ja_see_html": "お手数ですがHTML形式でご覧ください。",
    "ja_this_is_html": "このメールはHTML形式で配信しています。",
    "ja_html_capable_client": "ＨＴＭＬメールに対応したメールソフトをお使いください。",
    "ja_view_in_browser": "ＷＥＢページで表示する",
    "en_view_in_browser": "Having trouble? View this email in your browser.",
    "en_html_version": "Please see the HTML version of this message.",
    "en_this_is_html": "This message was sent in HTML format.",
    "en_client_cannot_show_html": "If your mail program cannot display HTML, click here.",
}


def test_every_pattern_has_an_example() -> None:
    assert set(EXAMPLES) == set(HTML_POINTERS)


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_each_pattern_finds_its_example(name: str) -> None:
    import unicodedata

    folded = unicodedata.normalize("NFKC", EXAMPLES[name]).lower()
    assert HTML_POINTERS[name].search(folded)
    assert points_to_html(EXAMPLES[name])


@pytest.mark.parametrize(
    "text",
    [
        "会議は十時からです。",
        "HTMLの研修資料を添付します。",
        "Please find the report attached.",
        "html",
        "ブラウザの更新をお願いします。",
    ],
)
def test_ordinary_text_does_not_point_to_html(text: str) -> None:
    assert not points_to_html(text)


def test_a_long_text_is_never_a_pointer() -> None:
    text = "HTML形式でご覧ください。" + "本文" * MAX_POINTER_CHARS
    assert not points_to_html(text)


@pytest.mark.parametrize("text", ["", " ", "\r\n", "\u3000\n", "\u200b\ufeff", "\t \n"])
def test_whitespace_and_invisible_characters_are_blank(text: str) -> None:
    assert is_blank(text)
    assert text_loses(text, lambda: None)


def test_the_html_is_converted_only_for_a_pointer() -> None:
    def fail() -> str | None:
        raise AssertionError("converted without need")

    assert not text_loses("会議は十時からです。", fail)
    assert text_loses("HTML形式でご覧ください", lambda: "長い本文" * 10)
    assert not text_loses("HTML形式でご覧ください", lambda: "短")
    assert not text_loses("HTML形式でご覧ください", lambda: None)
