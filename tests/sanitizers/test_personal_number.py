"""My Number detection: the statutory check digit, written forms, and context."""

from __future__ import annotations

import random

import pytest
from stdnum.jp import in_ as individual_number

from sanitizers.personal_number import find_personal_numbers, has_keyword, is_valid_number

VALID = "621498320257"  # python-stdnum's own example


def _valid_numbers(count: int, seed: int = 19) -> list[str]:
    rng = random.Random(seed)
    numbers = []
    for _ in range(count):
        body = "".join(rng.choice("0123456789") for _ in range(11))
        numbers.append(body + individual_number.calc_check_digit(body))
    return numbers


def _wrong_check_digit(number: str) -> str:
    return number[:11] + str((int(number[11]) + 1) % 10)


def test_check_digit_is_the_statutory_one() -> None:
    for number in _valid_numbers(200):
        assert is_valid_number(number)
        assert not is_valid_number(_wrong_check_digit(number))
    assert not is_valid_number("62149832025")  # eleven digits
    assert not is_valid_number("６２１４９８３２０２５７")  # the check takes ASCII digits only


@pytest.mark.parametrize("number", _valid_numbers(20))
def test_every_valid_number_with_a_keyword_is_found_and_masked(number: str) -> None:
    found = find_personal_numbers(f"個人番号：{number}")
    assert [f.masked for f in found] == ["********" + number[-4:]]
    assert number not in repr(found)  # never the whole number


@pytest.mark.parametrize("number", _valid_numbers(20, seed=3))
def test_a_wrong_check_digit_is_never_found(number: str) -> None:
    assert find_personal_numbers(f"マイナンバー {_wrong_check_digit(number)}") == []


@pytest.mark.parametrize(
    "written",
    [
        "621498320257",
        "6214 9832 0257",
        "6214-9832-0257",
        "6214－9832－0257",  # full-width hyphen-minus
        "6214ー9832ー0257",  # the long-vowel mark typed for a hyphen
        "6214‐9832‐0257",  # U+2010
        "6214−9832−0257",  # minus sign
        "6214　9832　0257",  # ideographic space
        "６２１４９８３２０２５７",  # full-width digits
        "６２１４ ９８３２ ０２５７",
        "6214 - 9832 - 0257",  # two separator characters
    ],
)
def test_written_forms_are_normalised(written: str) -> None:
    assert len(find_personal_numbers(f"個人番号は {written} です")) == 1


@pytest.mark.parametrize(
    "keyword",
    [
        "個人番号",
        "マイナンバー",
        "ﾏｲﾅﾝﾊﾞｰ",
        "My Number",
        "MYNUMBER",
        "Ｍｙ　Ｎｕｍｂｅｒ",
        "Individual Number",
    ],
)
def test_keywords_in_any_width_and_case(keyword: str) -> None:
    assert has_keyword(keyword)
    assert len(find_personal_numbers(f"{keyword}: {VALID}")) == 1
    assert len(find_personal_numbers(f"{VALID} ({keyword})")) == 1  # after the number too


def test_without_context_a_valid_number_is_not_reported() -> None:
    assert find_personal_numbers(f"注文番号 {VALID} の件") == []
    far = f"個人番号について。{'あ' * 100}{VALID}"
    assert find_personal_numbers(far) == []


def test_one_random_number_in_ten_passes_the_check_digit_so_context_is_required() -> None:
    rng = random.Random(7)
    numbers = ["".join(rng.choice("0123456789") for _ in range(12)) for _ in range(2000)]
    passing = sum(is_valid_number(n) for n in numbers)
    assert 150 < passing < 250  # about a tenth
    assert find_personal_numbers("\n".join(f"会員番号 {n}" for n in numbers)) == []


def test_longer_digit_runs_are_not_sliced() -> None:
    # A 16-digit card number, a 13-digit corporate-style number, digits glued to the number.
    for text in (
        f"個人番号 {VALID}1234",
        f"個人番号 1{VALID}",
        f"個人番号 {VALID[:4]}-{VALID[4:8]}-{VALID[8:]}-1234",
        f"個人番号 12{VALID[:10]} {VALID[10:]}",
    ):
        assert find_personal_numbers(text) == [], text


def test_several_numbers_in_one_run_of_twelves() -> None:
    second = _valid_numbers(1)[0]
    assert len(find_personal_numbers(f"個人番号 {VALID} {second}")) == 2
    spaced = f"{VALID[:4]} {VALID[4:8]} {VALID[8:]} {second[:4]} {second[4:8]} {second[8:]}"
    assert len(find_personal_numbers(f"個人番号 {spaced}")) == 2


def test_column_header_gives_context_far_below() -> None:
    numbers = _valid_numbers(60, seed=11)
    rows = ["番号\t氏名\t個人番号\t住所"]
    rows += [f"{i}\t住民{i}\t{n}\t東京都千代田区{i}" for i, n in enumerate(numbers)]
    found = find_personal_numbers("\n".join(rows))
    assert len(found) == 60
    assert {f.context for f in found[-10:]} == {"column"}


def test_column_header_counts_only_for_its_column_and_its_table() -> None:
    number = _valid_numbers(1, seed=5)[0]
    padding = "住所" * 30
    other_column = f"個人番号\t備考\n{padding}\t{number}"
    assert find_personal_numbers(other_column) == []
    new_table = f"個人番号\t氏名\n{padding}\t\n\n{padding}\n{number}\tx"
    assert find_personal_numbers(new_table) == []


def test_matches_are_bounded() -> None:
    text = "\n".join(f"個人番号 {n}" for n in _valid_numbers(300))
    assert len(find_personal_numbers(text, limit=50)) == 50
