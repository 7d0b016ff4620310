"""Unquoted raw display names (Shift_JIS, EUC-JP, UTF-8, ISO-2022-JP) with address specials
between their characters: the name is one name, the address survives, nothing is dropped."""

from __future__ import annotations

import pytest

from sanitizers.vocabulary import Reason
from tests.sanitizers.test_japanese_fidelity import headers, lossy, message, run

CODECS = {"shift_jis": "cp932", "euc-jp": "euc_jp", "utf-8": "utf-8", "iso-2022-jp": "iso2022_jp"}
# Each special of RFC 5322 phrases between (and around) Japanese characters, as a mailer that
# writes raw 8-bit names without quoting them sends it.
NAMES = [
    "山田,太郎",
    "山田;太郎",
    "山田:太郎",
    '山田"太郎',
    "山田(太郎)",
    "山田<太郎>",
    "山田[総務課]",
    "総務課, 山田 太郎",
    "表,ソ",  # Shift_JIS trail bytes 0x5C beside the comma
    "山田.太郎",
]


@pytest.mark.parametrize("charset", list(CODECS))
@pytest.mark.parametrize("name", NAMES)
def test_specials_inside_a_raw_name_stay_in_the_name(name: str, charset: str) -> None:
    raw_name = name.encode(CODECS[charset])
    raw = message(
        ("From", raw_name + b" <yamada@example.jp>"),
        ("To", raw_name + b" <staff@city.example.lg.jp>, kacho@city.example.lg.jp"),
    )
    result = run(raw)
    out = headers(result)
    assert out["From"] == [(name, "yamada@example.jp")]
    assert out["To"] == [(name, "staff@city.example.lg.jp"), ("", "kacho@city.example.lg.jp")]
    assert Reason.MALFORMED not in result.report.reason_codes()
    assert not lossy(result)


@pytest.mark.parametrize("charset", list(CODECS))
def test_mailboxes_with_raw_names_are_still_two(charset: str) -> None:
    codec = CODECS[charset]
    value = "山田 <a@example.jp>, 鈴木 <b@example.jp>;".encode(codec)
    out = headers(run(message(("To", value))))
    assert out["To"] == [("山田", "a@example.jp"), ("鈴木", "b@example.jp")]


@pytest.mark.parametrize("charset", list(CODECS))
def test_an_address_between_raw_runs_is_never_absorbed(charset: str) -> None:
    # An address between two raw names is not "specials between runs": it stays an address,
    # and the run after it cannot carry it into a name.
    value = "山田 <a@example.jp>,鈴木 <b@example.jp>".encode(CODECS[charset])
    out = headers(run(message(("To", value))))
    assert out["To"] == [("山田", "a@example.jp"), ("鈴木", "b@example.jp")]


def test_a_quote_closed_after_a_raw_name_is_not_taken() -> None:
    # A quoted raw name: the closing quote belongs to the quoting, not to the name.
    value = b'"' + "山田".encode("cp932") + b'" <yamada@example.jp>'
    assert headers(run(message(("From", value))))["From"] == [("山田", "yamada@example.jp")]
