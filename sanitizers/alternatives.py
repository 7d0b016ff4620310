"""Judging the text alternative of a multipart/alternative: is it worth reading?

A mail that offers text and HTML is read through its text part when the policy prefers plain
text (nothing is lost by conversion). Senders of newsletters often fill that part with nothing
(a base64-encoded CRLF) or with a pointer to the HTML version (「このメールはHTML形式です」,
"view this email in your browser"): reading it would deliver an empty or useless body while
the HTML holds the message. This module decides on *decoded* text only; the caller decodes.

Threat model: the sender controls both parts, so the rule must never let a sender hide text
from the reader: the text part loses only when it is blank, or when it is short, points to
the HTML version, and the HTML version's text is longer than what the text says besides the
pointer (its sentences that match no pointer pattern). Otherwise the text part wins: a short
real message with a pointer line (「会議は中止です。詳細はHTML版をご覧ください。」) is kept
unless the HTML says more.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from typing import Final

__all__ = ["HTML_POINTERS", "MAX_POINTER_CHARS", "is_blank", "points_to_html", "text_loses"]

# A text part longer than this (in characters other than whitespace) is a message of its own,
# whatever it says about HTML.
MAX_POINTER_CHARS: Final = 600

# Phrases of text parts that only point to the HTML version, by name (tests cover each).
# Matched on the NFKC-folded, lower-cased text, so full-width ＨＴＭＬ matches too.
HTML_POINTERS: Final[dict[str, re.Pattern[str]]] = {
    "ja_see_html": re.compile(
        r"html[^。\n]{0,12}?(?:ご覧|お読み|ご確認|閲覧|表示)\s*(?:ください|下さい|いただけ|頂け)"
    ),
    "ja_this_is_html": re.compile(
        r"(?:この|本)\s*(?:メール|メッセージ|メールマガジン|メルマガ)[^。\n]{0,8}?html"
    ),
    "ja_html_capable_client": re.compile(
        r"html[^。\n]{0,20}?(?:対応|表示可能|閲覧可能|表示でき|閲覧でき|見られ|ご覧になれ)"
    ),
    "ja_view_in_browser": re.compile(
        r"(?:ブラウザ|web\s*ページ|ウェブページ|web版)[^。\n]{0,10}?(?:ご覧|表示|閲覧|お読み)"
    ),
    "ja_html_mail": re.compile(
        r"html\s*(?:形式|版)?\s*の?\s*(?:メール|メッセージ|メールマガジン|メルマガ)\s*(?:です|で(?:お|配信|送)|を)"
    ),
    "ja_mail_client_html": re.compile(
        r"(?:メールソフト|メーラー?|メールクライアント|メールアプリ|ご利用の環境|お使いの環境)"
        r"[^。\n]{0,12}?html"
    ),
    "ja_not_shown_properly": re.compile(
        r"(?:正しく|うまく|正常に|きちんと)\s*(?:表示|閲覧)\s*(?:されない|できない|されていない)"
    ),
    "ja_html_version_here": re.compile(
        r"html\s*(?:版|形式|メール)?\s*(?:は|を)?\s*(?:こちら|下記|以下|次の)"
    ),
    "ja_no_text_version": re.compile(
        r"テキスト\s*(?:版|形式|メール)[^。\n]{0,10}?"
        r"(?:準備中|ありません|ございません|用意して(?:い|お)りません|配信して(?:い|お)りません)"
    ),
    "en_enable_html": re.compile(
        r"\b(?:enable|turn\s+on|switch\s+(?:on|to)|allow)\s+(?:the\s+)?html\b"
    ),
    "en_view_in_browser": re.compile(
        r"\b(?:view|read|see|open)\b.{0,40}\b(?:in|with)\s+(?:your|a)\s+(?:web\s+)?browser\b"
    ),
    "en_html_version": re.compile(r"\b(?:view|read|see)\b.{0,20}\bhtml\s+(?:version|format)\b"),
    "en_this_is_html": re.compile(
        r"\b(?:this|the)\s+(?:e-?mail|message|newsletter)\s+(?:is|was)\s+"
        r"(?:sent\s+|written\s+|composed\s+|formatted\s+)?(?:in|as)\s+html\b"
    ),
    "en_trouble_viewing": re.compile(
        r"\b(?:trouble|problems?|difficulty)\s+(?:viewing|reading|seeing|displaying)\s+"
        r"(?:this|the)\s+(?:e-?mail|message|newsletter)\b"
    ),
    "en_not_displayed_properly": re.compile(
        r"\b(?:e-?mail|message|newsletter)\s+(?:does\s+not|doesn't|is\s+not|isn't)\s+"
        r"(?:display(?:ing|ed)?|show(?:ing|n)?)\s+(?:properly|correctly)\b"
    ),
    "en_html_capable_client": re.compile(r"\bhtml[-\s]?(?:capable|compatible|enabled)\b"),
    "en_client_cannot_show_html": re.compile(
        r"\b(?:does\s+not|doesn't|cannot|can't|can\s+not|unable\s+to)\s+"
        r"(?:support|display|show|read|view)\s+html\b"
    ),
}


def _non_space_length(text: str) -> int:
    return sum(1 for char in text if not char.isspace() and unicodedata.category(char) != "Cf")


def is_blank(text: str) -> bool:
    """Whether the text shows nothing: only whitespace and invisible format characters."""
    return _non_space_length(text) == 0


# Sentences of a text part: what a pointer is cut out of.
_SENTENCE_END: Final = re.compile(r"(?<=[。．.!?！？])|\n")


def _is_pointer(sentence: str) -> bool:
    folded = unicodedata.normalize("NFKC", sentence).lower()
    return any(pattern.search(folded) for pattern in HTML_POINTERS.values())


def points_to_html(text: str) -> bool:
    """Whether a short text points to the HTML version (in one of its sentences)."""
    if _non_space_length(text) > MAX_POINTER_CHARS:
        return False
    return _is_pointer(text)


def _besides_pointers(text: str) -> int:
    """How much the text says besides its pointer sentences (characters but spaces)."""
    return sum(
        _non_space_length(sentence)
        for sentence in _SENTENCE_END.split(text)
        if not _is_pointer(sentence)
    )


def text_loses(text: str, html_text: Callable[[], str | None]) -> bool:
    """Whether the text alternative must give way to the HTML one: only when the text is
    blank, or points to the HTML version and the HTML says more than the text does besides
    its pointer. ``html_text`` converts the HTML alternative when needed (``None``: there is
    none, or it cannot be read)."""
    if is_blank(text):
        return True
    if not points_to_html(text):
        return False
    converted = html_text()
    return converted is not None and _non_space_length(converted) > _besides_pointers(text)
