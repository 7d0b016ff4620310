"""Tests for sanitizers.alternatives: when a text alternative gives way to the HTML one."""

from __future__ import annotations

import quopri

import pytest

from sanitizers.alternatives import (
    HTML_POINTERS,
    MAX_POINTER_CHARS,
    is_blank,
    points_to_html,
    text_loses,
)
from sanitizers.pipeline import sanitize_message
from sanitizers.policy import Policy
from tests.mailfactory import body_text, leaf, mail, multipart

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
    "ja_html_mail": "本メールはＨＴＭＬ形式のメールです。",
    "ja_mail_client_html": "お使いのメールソフトがHTMLに未対応の場合はお知らせください。",
    "ja_not_shown_properly": "メールが正しく表示されない場合はこちら",
    "en_html_capable_client": "Please open it in an HTML-capable mail program.",
    "en_trouble_viewing": "Having trouble viewing this email? Click here.",
    "en_not_displayed_properly": "If this email is not displaying properly, click here.",
    "ja_html_version_here": "ＨＴＭＬ版はこちら",
    "ja_no_text_version": "テキスト版は準備中です。",
    "en_enable_html": "Please enable HTML to view this message.",
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
    assert not text_loses("HTML形式でご覧ください", lambda: " \n")
    assert not text_loses("HTML形式でご覧ください", lambda: None)


# Text parts that say nothing but "read the HTML": each loses even to a short HTML body.
POINTER_ONLY = [
    "HTML版をご覧ください。",
    "HTML形式でご覧ください。",
    "このメールはHTML形式です。",
    "HTMLメールを表示できる環境でご覧ください。",
    "お使いのメールソフトがHTML形式に対応していない可能性があります。",
    "メールが正しく表示されない場合は、ブラウザでご覧ください。",
    "ＨＴＭＬメールです。\r\nＨＴＭＬ版をご覧ください。\r\n",
    "This email is in HTML.",
    "View this email in your browser",
    "Having trouble viewing this email? View it in your browser.",
    "This message is sent in HTML format. Please use an HTML capable mail program.",
]


@pytest.mark.parametrize("text", POINTER_ONLY)
def test_a_pointer_only_text_loses_to_any_readable_html(text: str) -> None:
    assert points_to_html(text)
    assert text_loses(text, lambda: "本文です")


# Short real messages with a pointer line: they keep their own words against a shorter HTML.
REAL_WITH_POINTER = [
    "明日の会議は中止です。詳細はHTML版をご覧ください。",
    "請求書を添付しました。ご確認ください。\nHTMLメールを表示できる環境でご覧ください。",
    "The meeting is cancelled. View this email in your browser.",
]


@pytest.mark.parametrize("text", REAL_WITH_POINTER)
def test_a_real_short_text_keeps_its_words_against_html(text: str) -> None:
    assert not text_loses(text, lambda: "本文です")
    assert text_loses(text, lambda: "会議の詳細と資料の一覧です。" * 6)


@pytest.mark.parametrize("pointer", POINTER_ONLY[:4])
def test_the_pipeline_delivers_the_html_behind_a_pointer(pointer: str) -> None:
    parts = [
        leaf("text/plain; charset=utf-8", pointer.encode()),
        leaf("text/html; charset=utf-8", "<p>本文です</p>".encode()),
    ]
    out = body_text(sanitize_message(mail(multipart("alternative", parts)), Policy()).message)
    assert out.startswith("本文です"), out


# Pointers written in every Japanese charset and transfer encoding: the decoded text decides.
ENCODED_POINTERS = [
    "HTML版はこちら",
    "ＨＴＭＬメールは下記のＵＲＬです",
    "テキスト版は用意しておりません。",
    "Please enable HTML to view this message.",
]
CHARSETS = [("iso-2022-jp", "iso2022_jp", "7bit"), ("shift_jis", "cp932", "8bit"),
            ("euc-jp", "euc_jp", "8bit"), ("utf-8", "utf-8", "8bit")]  # fmt: skip


@pytest.mark.parametrize("pointer", ENCODED_POINTERS)
@pytest.mark.parametrize(("label", "codec", "plain_cte"), CHARSETS)
@pytest.mark.parametrize("transfer", ["base64", "quoted-printable", "plain"])
def test_pointers_in_every_charset_and_transfer_encoding_give_way_to_the_html(
    pointer: str, label: str, codec: str, plain_cte: str, transfer: str
) -> None:
    data = (pointer + "\r\n").encode(codec)
    if transfer == "quoted-printable":
        data = quopri.encodestring(data)
    cte = plain_cte if transfer == "plain" else transfer
    html = "<p>本日の会議資料を送付いたします。議題は予算案です。</p>"
    parts = [
        leaf(f"text/plain; charset={label}", data, cte=cte),
        leaf("text/html; charset=utf-8", html.encode(), cte="base64"),
    ]
    out = body_text(sanitize_message(mail(multipart("alternative", parts)), Policy()).message)
    assert out.startswith("本日の会議資料を送付いたします。"), out
