"""Issue 12, classes 2 and 5: short Japanese text (subjects, names, file names, one-line bodies)
whose bytes also read without error in another charset. EUC-JP kanji can be valid UTF-8
(道路 as "ƻϩ") or CP932 half-width katakana (施設 as "ｻﾜﾀﾟ"); kanji-only Japanese can be
labelled as Chinese or Korean. The Japanese evidence (kana, frequent kanji, voiced marks where
Japanese puts them) decides; when it cannot, the text is reported lossy: never a different
real character in silence. Every fixture is built here."""

from __future__ import annotations

import base64
import random

import pytest

from sanitizers.charsets import decode_body, decode_header, decode_param
from sanitizers.pipeline import sanitize_message
from sanitizers.policy import AttachmentPolicy, Policy
from sanitizers.vocabulary import Reason
from tests.mailfactory import body_text, leaf, mail, multipart

TEXT_ONLY = Policy(attachments=AttachmentPolicy(by_kind={}))
# Words of a municipality's mail: departments, forms, dates, surnames.
VOCABULARY_LINES = (
    "道路 氏名 住所 施設 分担 担当 名簿 課長 部長 市長 町長 村長 町民 村民 救急 議会 予算",
    "決算 税務 納税 市民 住民 福祉 保健 医療 介護 年金 保険 教育 学校 図書館 公民館 公園",
    "下水道 水道 河川 農業 観光 文化 広報 総務 企画 財政 人事 会計 監査 選挙 防災 消防 環境",
    "戸籍 申請 届出 証明 手数料 補助金 交付金 給付 督促 滞納 会議 議事録 資料 報告 連絡 案内",
    "通知 依頼 回答 照会 確認 承認 決裁 施設予約 道路占用 氏名変更 住所変更 転入 転出 出生",
    "婚姻 本日 明日 午前 午後 日時 件名 宛先 田中 鈴木 高橋 渡辺 伊藤 山本 中村 小林 加藤",
    "吉田 山田 佐々木 松本 井上 木村 斎藤 清水 山崎",
)
VOCABULARY = [word for line in VOCABULARY_LINES for word in line.split()]
# The words above whose bytes another charset read without error before the evidence rule.
SILENTLY_WRONG_BEFORE = ["道路", "施設", "分担", "町長", "村長", "町民", "村民", "救急"]
# Frequent kanji of Japanese official text, for generated compounds.
COMMON_KANJI = (
    "日本国会人年大中長出市区町村県都府民住所氏名申請届書課部係長税務福祉保健医療介護年金"
    "教育学校図館公園道路河川水農業商工観光文化広報総企画財政人事会計監査選挙防災消環境戸籍"
    "証明料金補助交付給還督促滞納議資報告連絡案内通知依頼回答照確認承決裁予約変更転入出生"
)
ENCODINGS = ["euc_jp", "cp932", "iso2022_jp"]
# Real text in UTF-8 whose characters have two-byte forms: never read as Japanese.
ALPHABETIC_UTF8 = [
    "café",
    "Müller",
    "±5°C",
    "© 2024",
    "naïve",
    "résumé",
    "Größe",
    "µg",
    "Ελληνικά",
    "Москва",
    "שלום",
    "Ça va",
    "São Paulo",
    "Ø 12mm",
]


def exact_or_reported(text: str, decoded_text: str, lossy: bool) -> None:
    assert decoded_text == text or lossy, (text, decoded_text)


def raw_header(data: bytes) -> str:
    return data.decode("ascii", "surrogateescape")


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_the_vocabulary_is_exact_or_reported_in_every_place(encoding: str) -> None:
    for word in VOCABULARY:
        data = word.encode(encoding)
        body = decode_body(data, None)
        exact_or_reported(word, body.text, body.lossy)
        header = decode_header(raw_header(data))
        exact_or_reported(word, header.text, header.lossy)
        for label in (None, "iso-8859-1", "us-ascii"):
            param = decode_param(label, data)
            exact_or_reported(word, param.text, param.lossy)


@pytest.mark.parametrize("word", SILENTLY_WRONG_BEFORE)
@pytest.mark.parametrize("encoding", ["euc_jp", "cp932"])
def test_words_another_charset_also_reads_are_japanese(word: str, encoding: str) -> None:
    data = word.encode(encoding)
    for label in (None, "iso-8859-1", "windows-1252"):
        decoded = decode_body(data, label)
        assert (decoded.text, decoded.lossy) == (word, False), label
    assert decode_header(raw_header(data)).text == word


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("encoding", ["euc_jp", "cp932"])
def test_generated_compounds_are_never_silently_wrong(seed: int, encoding: str) -> None:
    rng = random.Random(seed)
    for _ in range(400):
        word = "".join(rng.choice(COMMON_KANJI) for _ in range(rng.randint(1, 4)))
        decoded = decode_body(word.encode(encoding), None)
        exact_or_reported(word, decoded.text, decoded.lossy)


@pytest.mark.parametrize("text", ALPHABETIC_UTF8)
def test_real_utf8_with_two_byte_characters_stays_utf8(text: str) -> None:
    for label in (None, "iso-8859-1"):
        decoded = decode_body(text.encode(), label)
        assert (decoded.text, decoded.charset, decoded.lossy) == (text, "utf-8", False)
    assert decode_header(raw_header(text.encode())).text == text


@pytest.mark.parametrize("text", ["ｶﾀｶﾅ", "ﾃｽﾄﾒｰﾙ", "ﾌﾘｺﾐ"])
def test_half_width_katakana_that_read_as_kanji_too_are_exact_or_reported(text: str) -> None:
    decoded = decode_body(text.encode("cp932"), None)
    exact_or_reported(text, decoded.text, decoded.lossy)


@pytest.mark.parametrize("text", ["ｶﾀｶﾅ", "ﾔﾏﾀﾞ ﾀﾛｳ", "ﾃｽﾄ", "ｼﾔｸｼﾖ"])
def test_euc_jp_half_width_katakana_are_exact_or_reported(text: str) -> None:
    data = text.encode("euc_jp")  # SS2 pairs: CP932 reads them as kanji of one row
    decoded = decode_body(data, None)
    exact_or_reported(text, decoded.text, decoded.lossy)
    header = decode_header(raw_header(data))
    exact_or_reported(text, header.text, header.lossy)


def test_half_width_text_with_marks_where_japanese_puts_them_is_not_reported() -> None:
    for text in ("ｱﾘｶﾞﾄｳｺﾞｻﾞｲﾏｼﾀ", "ﾔﾏﾀﾞ ﾀﾛｳ", "ﾊﾟｽﾎﾟｰﾄ"):
        decoded = decode_body(text.encode("cp932"), None)
        assert (decoded.text, decoded.lossy) == (text, False)


@pytest.mark.parametrize("word", SILENTLY_WRONG_BEFORE)
def test_the_pipeline_keeps_short_euc_jp_subjects_names_and_file_names(word: str) -> None:
    data = word.encode("euc_jp")
    attachment = leaf(
        "application/octet-stream",
        b"data",
        cte="base64",
        extra=[("Content-Disposition", b'attachment; filename="' + data + b'.txt"')],
    )
    raw = mail(
        multipart("mixed", [leaf("text/plain", data + b"\r\n"), attachment]),
        ("From", data + b" <sender@example.jp>"),
        ("Subject", data),
    )
    result = sanitize_message(raw, TEXT_ONLY)
    assert result.report.subject == word
    assert body_text(result.message).startswith(word + "\n")
    assert result.report.parts[-1].filename == word + ".txt"
    assert Reason.LOSSY_DECODE not in result.report.reason_codes()


# --- kanji-only Japanese labelled as Chinese or Korean ------------------------------------

KANJI_ONLY = ["会議", "議事録", "市民課", "固定資産税課税台帳", "国民健康保険料", "防災訓練"]
CHINESE = ["我们明天在北京开会", "这是一个重要的问题", "中华人民共和国", "关于会议的通知"]
KOREAN = ["안녕하세요", "회의 자료를 보내드립니다", "감사합니다", "서울특별시"]


@pytest.mark.parametrize("text", KANJI_ONLY)
@pytest.mark.parametrize(
    ("encoding", "label"),
    [("euc_jp", "gb2312"), ("euc_jp", "euc-kr"), ("cp932", "gbk"), ("euc_jp", "big5")],
)
def test_kanji_only_japanese_labelled_chinese_or_korean_is_japanese(
    text: str, encoding: str, label: str
) -> None:
    data = text.encode(encoding)
    decoded = decode_body(data, label)
    assert decoded.text == text
    word = b"=?" + label.encode() + b"?B?" + base64.b64encode(data) + b"?="
    assert decode_header(word.decode("ascii")).text == text


@pytest.mark.parametrize(
    ("text", "codec", "label"),
    [*((t, "gb2312", "gb2312") for t in CHINESE), *((t, "euc_kr", "euc-kr") for t in KOREAN)],
)
def test_real_chinese_and_korean_keep_their_label(text: str, codec: str, label: str) -> None:
    decoded = decode_body(text.encode(codec), label)
    assert (decoded.text, decoded.lossy) == (text, False)


def _every_jis_kanji() -> list[str]:
    """Every kanji of JIS X 0208 (levels 1 and 2), by its EUC-JP code."""
    found = []
    for first in range(0xB0, 0xF5):
        for second in range(0xA1, 0xFF):
            try:
                found.append(bytes((first, second)).decode("euc_jp"))
            except UnicodeDecodeError:
                continue
    return found


@pytest.mark.parametrize("encoding", ["euc_jp", "cp932"])
def test_every_kanji_alone_is_exact_or_reported(encoding: str) -> None:
    """A lone rare kanji's bytes may also be one Greek or Cyrillic letter in UTF-8 (乖 / Ъ):
    one or two letters are no evidence of that alphabet."""
    wrong = []
    for kanji in _every_jis_kanji():
        decoded = decode_body(kanji.encode(encoding), None)
        if decoded.text != kanji and not decoded.lossy:
            wrong.append((kanji, decoded.text))
    assert wrong == []
    lone = decode_body("乖".encode("euc_jp"), None)
    assert (lone.text, lone.lossy) == ("乖", True)


# --- rare kanji whose bytes read in another charset too (issue 12, class 2) --------------------


def _jis_level(first: range) -> list[str]:
    """The kanji of one JIS X 0208 level, by the EUC-JP lead bytes ``first``."""
    return [kanji for kanji in _every_jis_kanji() if kanji.encode("euc_jp")[0] in first]


LEVEL_1 = range(0xB0, 0xD0)
LEVEL_2 = range(0xD0, 0xF5)


@pytest.mark.parametrize(("level", "seed"), [(LEVEL_2, 0), (LEVEL_2, 1), (LEVEL_1, 2)])
def test_random_kanji_pairs_are_exact_or_reported_in_every_charset(level: range, seed: int) -> None:
    """Pairs of rare kanji in CP932 can be valid three-byte UTF-8 (陜汽 as "蝋D"), in EUC-JP
    a few Chinese or Korean marker characters (祥蛍 as 就分): never a silent wrong reading.
    Real UTF-8 of the same pairs stays UTF-8, unreported."""
    rng = random.Random(seed)
    kanji = _jis_level(level)
    wrong = []
    for _ in range(1000):
        word = rng.choice(kanji) + rng.choice(kanji)
        for encoding in ("cp932", "euc_jp"):
            data = word.encode(encoding)
            body = decode_body(data, None)
            header = decode_header(raw_header(data))
            for decoded in (body, header):
                if decoded.text != word and not decoded.lossy:
                    wrong.append((encoding, word, decoded.text))
        utf8 = decode_body(word.encode(), None)
        if (utf8.text, utf8.lossy) != (word, False):
            wrong.append(("utf-8", word, utf8.text))
    assert wrong == []


@pytest.mark.parametrize("word", ["陜汽", "燿廡"])
def test_cp932_kanji_that_read_as_utf8_are_exact_or_reported(word: str) -> None:
    decoded = decode_body(word.encode("cp932"), None)
    exact_or_reported(word, decoded.text, decoded.lossy)


STRONG_FOREIGN = [
    ("我们明天在北京开会", "gb18030"),
    ("中华人民共和国", "gb18030"),
    ("회의 자료를 보내드립니다", "cp949"),
    ("감사합니다", "cp949"),
]


@pytest.mark.parametrize("word", ["祥蛍", "依馬", "高冏艦拭"])
def test_a_few_foreign_markers_do_not_outweigh_japanese_but_many_do(word: str) -> None:
    """Undeclared EUC-JP whose Chinese or Korean reading has two marker characters (祥蛍 as
    就分) is Japanese, reported; real Chinese and Korean with many markers stay so."""
    decoded = decode_body(word.encode("euc_jp"), None)
    exact_or_reported(word, decoded.text, decoded.lossy)
    for text, codec in STRONG_FOREIGN:
        foreign = decode_body(text.encode(codec), None)
        assert (foreign.text, foreign.lossy) == (text, False)


# --- Japanese under a Western or UTF-8 label (issue 12, class 3: encoded-words, bodies) -------

REAL_WESTERN = [
    "Müller",
    "café",
    "Größe",
    "São Paulo",
    "naïve",
    "½ kg",
    "© 2024",
    "±5°C",
    "Ångström",
]
REAL_UTF8 = [*REAL_WESTERN, "Ελληνικά", "Москва", "שלום", "日本語", "こんにちは", "①②", "µg"]


@pytest.mark.parametrize("encoding", ["cp932", "euc_jp"])
@pytest.mark.parametrize("label", ["iso-8859-1", "windows-1252", "utf-8"])
def test_lone_kanji_under_a_wrong_label_are_exact_or_reported(encoding: str, label: str) -> None:
    """One or two kanji (a name, a one-word subject) mislabelled as Latin-1 read as Western
    characters (亜 as "ˆŸ" or "°¡", 十 as "\\"), as UTF-8 as a letter (表 as "ɽ"):
    never in silence. Real Western and UTF-8 text under its own label stays exact."""
    rng = random.Random(label + encoding)
    every = _every_jis_kanji()
    wrong = []
    for index, kanji in enumerate(rng.sample(every, 1500)):
        if index % 2:
            kanji += rng.choice(every)  # and pairs (CP932 pairs can be valid UTF-8)
        data = kanji.encode(encoding)
        word = f"=?{label}?B?{base64.b64encode(data).decode()}?="
        for decoded in (decode_body(data, label), decode_header(word)):
            if decoded.text != kanji and not decoded.lossy:
                wrong.append((kanji, decoded.text))
    assert wrong == []
    for text in REAL_UTF8 if label == "utf-8" else REAL_WESTERN:
        decoded = decode_body(text.encode("latin-1" if label != "utf-8" else "utf-8"), label)
        assert (decoded.text, decoded.lossy) == (text, False)


# --- UTF-8 labelled Shift_JIS or EUC-JP (issue 12, class 5's reverse) -------------------------

UTF8_TEXTS = [
    "こんにちは",
    "本日の会議資料を送付します。",
    "東京都千代田区",
    "ありがとうございました",
    "テスト",
    "\u3000\u3000",
    "の",
    "たし",
]


@pytest.mark.parametrize("label", ["shift_jis", "windows-31j", "shift-jis"])
def test_utf8_labelled_shift_jis_is_utf8_or_reported(label: str) -> None:
    """A mailer's default Japanese label over UTF-8 text gives the classic 文字化け
    (こんにちは as 縺薙ｓ縺ｫ縺｡縺ｯ): the UTF-8 reading wins when it is the better Japanese,
    and a short text both read as well is reported. Real text in the label's charset stays."""
    rng = random.Random(label)
    kana = [chr(code) for code in range(0x3041, 0x3094)] + [chr(c) for c in range(0x30A1, 0x30F7)]
    words = UTF8_TEXTS + [
        "".join(rng.choice(kana) for _ in range(rng.randint(1, 5))) for _ in range(500)
    ]
    wrong = []
    for word in words:
        decoded = decode_body(word.encode(), label)
        if decoded.text != word and not decoded.lossy:
            wrong.append((word, decoded.text))
    assert wrong == []
    for word in VOCABULARY:
        decoded = decode_body(word.encode("cp932"), label)
        assert (decoded.text, decoded.lossy) == (word, False)
