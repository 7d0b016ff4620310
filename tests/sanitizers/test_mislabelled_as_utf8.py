"""Seeded: Japanese text in Shift_JIS or EUC-JP labelled UTF-8 is decoded exactly or reported
lossy, never silently wrong. The text is what municipal mail holds: kanji-only compounds,
half-width katakana words, symbols, and mixes with kana and ASCII."""

from __future__ import annotations

import random
import unicodedata

import pytest

from sanitizers.charsets import decode_body

# Full-width katakana (voiced ones too) to their half-width forms.
_HALF = {unicodedata.normalize("NFKC", chr(code)): chr(code) for code in range(0xFF66, 0xFF9E)}
_HALF.update(
    {
        unicodedata.normalize("NFKC", chr(code) + mark): chr(code) + mark
        for code in range(0xFF66, 0xFF9E)
        for mark in "\uff9e\uff9f"
        if len(unicodedata.normalize("NFKC", chr(code) + mark)) == 1
    }
)
KANJI_WORDS = [
    "市民課",
    "総務部",
    "情報政策課",
    "固定資産税",
    "住民票",
    "会議",
    "議事録",
    "見積書",
    "申請書",
    "福祉課",
    "健康保険",
    "介護保険",
    "環境課",
    "防災訓練",
    "避難所",
    "図書館",
    "児童手当",
    "高齢者",
    "医療費",
    "助成金",
    "評価額",
    "契約",
    "入札",
    "観光振興",
    "漁業",
    "農業",
    "東京都",
    "千代田区",
    "永田町",
    "一丁目",
    "髙橋",
    "山﨑",
    "鬱蒼",
    "薔薇",
    "檸檬",
    "曖昧",
]
KATAKANA_WORDS = [
    "メール",
    "データ",
    "システム",
    "サーバー",
    "パスワード",
    "アカウント",
    "ファイル",
    "プリンター",
    "コピー",
    "ガイド",
    "ダウンロード",
    "ボランティア",
    "イベント",
    "スケジュール",
    "センター",
    "サービス",
    "パンフレット",
    "ポスター",
    "デジタル",
    "ネットワーク",
]
KANA = ["の", "は", "を", "に", "が", "です", "ます", "ください", "お願いします", "よろしく"]
SYMBOLS = list("　、。・「」【】（）①②③㈱№～！？※→◎○●△□■")
ASCII = ["abc", "2026", " ", "-", "/", "No.", "10:00"]


def _half(word: str) -> str:
    return "".join(_HALF.get(char, char) for char in word)


def _text(rng: random.Random) -> str:
    count = rng.randint(1, 5)
    kind = rng.choice(["kanji", "half", "symbols", "kanji_ascii", "mixed"])
    pools = {
        "kanji": KANJI_WORDS,
        "half": [_half(word) for word in KATAKANA_WORDS],
        "symbols": SYMBOLS + KANJI_WORDS,
        "kanji_ascii": KANJI_WORDS + ASCII,
        "mixed": KANJI_WORDS
        + KATAKANA_WORDS
        + [_half(word) for word in KATAKANA_WORDS]
        + KANA
        + SYMBOLS
        + ASCII,
    }
    return "".join(rng.choice(pools[kind]) for _ in range(count)).strip() or "日"


@pytest.mark.parametrize("codec", ["cp932", "euc_jp"])
def test_japanese_labelled_utf8_is_exact_or_reported(codec: str) -> None:
    rng = random.Random(12)
    silently_wrong = []
    exact = tried = 0
    for _ in range(1500):
        text = _text(rng)
        try:
            data = text.encode(codec)
        except UnicodeEncodeError:  # 髙 and 﨑 are CP932 only
            continue
        decoded = decode_body(data, "utf-8")
        tried += 1
        if decoded.text == text:
            exact += 1
        elif not decoded.lossy:
            silently_wrong.append((text, decoded.text))
    assert silently_wrong == []
    assert exact > 0.7 * tried  # most of it is still read exactly, unreported


@pytest.mark.parametrize("text", ["ﾈｯﾄﾜｰｸ", "ｾﾝﾀｰｱｶｳﾝﾄﾒｰﾙ", "ｼｽﾃﾑﾈｯﾄﾜｰｸ", "ﾎﾞﾗﾝﾃｨｱﾌﾟﾘﾝﾀｰ"])
def test_half_width_words_are_never_silently_euc_jp_kanji(text: str) -> None:
    # Every byte is a half-width katakana in CP932 and half of a level-1 kanji in EUC-JP.
    decoded = decode_body(text.encode("cp932"), "utf-8")
    assert decoded.text == text or decoded.lossy


def test_undeclared_half_width_is_not_silently_chinese() -> None:
    # No Japanese reading scores (a misplaced small kana): Big5 with no Chinese evidence is no
    # better; the strict Japanese reading is kept, reported.
    decoded = decode_body("ｮｼ".encode("cp932"), None)
    assert decoded.lossy
    assert decoded.text == "ｮｼ"
