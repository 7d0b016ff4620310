"""Password candidates from the text of a PPAP password mail (sanitizers.passwords)."""

from __future__ import annotations

import pytest

from sanitizers.passwords import MAX_LENGTH, password_candidates


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("パスワード：Abc123!x", "Abc123!x"),
        ("パスワード: Abc123!x", "Abc123!x"),
        ("PW: kq9Z-77", "kq9Z-77"),
        ("pw=kq9Z-77", "kq9Z-77"),
        ("Password = P@ss.word", "P@ss.word"),
        ("【パスワード】 Hello2026", "Hello2026"),
        ("パスワードは「秘密の鍵99」です。", "秘密の鍵99"),
        ("パスワードは abc999 です。", "abc999"),
        ("パスワードはabc999です。", "abc999"),
        ("パスワード：Ppap-2026!", "Ppap-2026!"),  # ASCII punctuation is part of it
        ("PW: secret.", "secret."),
        ("解凍パスワード: zz11", "zz11"),
        ("ﾊﾟｽﾜｰﾄﾞ=xyz789", "xyz789"),  # half-width katakana label
        ("ＰＷ：ａｂｃ１２３", "abc123"),  # full-width label, separator and value
        ("パスワード（半角）：Q7w8e9", "Q7w8e9"),
    ],
)
def test_labelled_values(line: str, expected: str) -> None:
    text = f"お世話になっております。\n{line}\nよろしくお願いいたします。\n"
    assert password_candidates(text, 10)[0] == expected


def test_a_full_width_value_is_offered_normalised_first_then_as_written() -> None:
    assert password_candidates("ＰＷ：ａｂｃ１２３", 10) == ("abc123", "ａｂｃ１２３")


def test_a_password_alone_on_its_line_comes_after_labelled_ones() -> None:
    text = "先ほどの資料のパスワードです。\n\n  x7Yq!pLm  \n\nPW: first1\n"
    assert password_candidates(text, 10) == ("first1", "x7Yq!pLm")


@pytest.mark.parametrize(
    "line",
    ["https://example.com/x", "user@example.com", "-----", "====", "abc", "> quoted1", "よろしく"],
)
def test_lines_that_are_not_passwords(line: str) -> None:
    assert password_candidates(f"パスワードです。\n{line}\n", 10) == ()


def test_a_text_that_never_names_a_password_offers_none() -> None:
    assert password_candidates("お世話になっております。\n\nx7Yq!pLm\n", 10) == ()
    assert password_candidates("Compass route\nx7Yq!pLm\n", 10) == ()  # "pass" inside a word


def test_bounded_in_number_and_length() -> None:
    text = "パスワードです\n" + "\n".join(f"token{i:04d}" for i in range(5000))
    assert len(password_candidates(text, 7)) == 7
    long_value = "x" * (MAX_LENGTH + 1)
    assert password_candidates(f"PW: {long_value}\n", 10) == ()


def test_duplicates_are_offered_once() -> None:
    assert password_candidates("PW: same1\nパスワード：same1\nsame1\n", 10) == ("same1",)
