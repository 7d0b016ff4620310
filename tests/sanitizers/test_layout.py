"""Layout survives (issue 12, class 7): format=flowed is undone (RFC 3676), multi-line table
cells stay apart from their neighbours, and leading no-break-space indentation is kept.
Japanese in ISO-2022-JP, Shift_JIS and UTF-8."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sanitizers.flowed import unflow
from sanitizers.html_text import html_to_text
from sanitizers.pipeline import sanitize_message
from sanitizers.policy import LinkMode, Policy
from tests.mailfactory import body_text, leaf, mail

CHARSETS = ["iso-2022-jp", "shift_jis", "utf-8"]
SENTENCE = "市民課の窓口は月曜日から金曜日まで開いています。"


# --- format=flowed ---------------------------------------------------------------------------


def test_delsp_joins_japanese_without_a_space() -> None:
    assert unflow("市民課の窓口は月曜 \r\n日から金曜日まで \r\n開いています。\r\n", True) == (
        SENTENCE + "\n"
    )


def test_without_delsp_the_soft_break_space_stays() -> None:
    assert unflow("The office is \r\nopen on \r\nMonday.\r\n", False) == (
        "The office is open on Monday.\n"
    )


def test_hard_breaks_stay() -> None:
    assert unflow("一行目\r\n二行目\r\n\r\n三行目", True) == "一行目\n二行目\n\n三行目"


def test_space_stuffing_is_removed() -> None:
    assert unflow(" From here\r\n >not a quote\r\n  two spaces", False) == (
        "From here\n>not a quote\n two spaces"
    )


def test_quoted_paragraphs_flow_within_their_depth() -> None:
    text = "> 引用の \r\n> 続き\r\n>> 深い \r\n>> 引用\r\n本文 \r\n>> 別\r\n"
    assert unflow(text, True) == "> 引用の続き\n>> 深い引用\n本文\n>> 別\n"


def test_a_change_of_depth_ends_a_flowed_paragraph() -> None:
    assert unflow("> quoted \r\nunquoted\r\n", False) == "> quoted \nunquoted\n"


def test_the_signature_separator_never_flows() -> None:
    assert unflow("本文\r\n-- \r\n山田\r\n", True) == "本文\n-- \n山田\n"
    assert unflow("> -- \r\n> 署名\r\n", True) == "> -- \n> 署名\n"


@pytest.mark.parametrize("delsp", [True, False])
@pytest.mark.parametrize(
    ("flowed", "expected_end"),
    [
        ("end of text \r\n-- \r\nsig\r\n", "\n-- \nsig\n"),
        ("本文の終わり \r\n-- \r\n山田\r\n", "\n-- \n山田\n"),
        ("一行目 \r\n二行目 \r\n-- \r\n", "\n-- \n"),
        ("> 引用の終わり \r\n> -- \r\n> 署名\r\n", "\n> -- \n> 署名\n"),
    ],
)
def test_a_flowed_line_is_never_joined_to_the_signature_separator(
    flowed: str, expected_end: str, delsp: bool
) -> None:
    """RFC 3676: the separator ends the paragraph before it, even after a soft break."""
    out = unflow(flowed, delsp)
    assert out.endswith(expected_end)
    assert "-- " not in out.split("\n")[0]
    raw = mail(leaf("text/plain; charset=utf-8; format=flowed", flowed.encode()))
    assert expected_end in body_text(sanitize_message(raw, Policy()).message).replace("\r\n", "\n")


@given(st.lists(st.text(alphabet="あ漢a >-\t", max_size=12), max_size=12))
def test_lines_without_trailing_spaces_are_left_as_written(lines: list[str]) -> None:
    lines = [line.rstrip(" ") for line in lines if not line.startswith((">", " "))]
    text = "\n".join(lines)
    assert unflow(text, True) == text
    assert unflow(text, False) == text


@given(st.text(alphabet="あ漢a >-\r\n", max_size=80), st.booleans())
def test_unflowing_never_loses_a_visible_character(text: str, delsp: bool) -> None:
    visible = [c for c in text if c not in " \r\n>"]
    assert [c for c in unflow(text, delsp) if c not in " \r\n>"] == visible


@pytest.mark.parametrize("charset", CHARSETS)
@pytest.mark.parametrize("delsp", [True, False])
def test_a_flowed_body_is_joined(charset: str, delsp: bool) -> None:
    pieces = ["市民課の窓口は月曜", "日から金曜日まで", "開いています。"]
    joiner = " \r\n" if delsp else "\r\n"  # without DelSp a Japanese sender breaks at no space
    flowed = (joiner.join(pieces) if delsp else " \r\n".join(pieces)) + "\r\n"
    params = "; format=flowed" + ("; delsp=yes" if delsp else "")
    raw = mail(leaf(f"text/plain; charset={charset}{params}", flowed.encode(charset)))
    body = body_text(sanitize_message(raw, Policy()).message)
    expected = SENTENCE if delsp else " ".join(pieces)
    assert expected in body


def test_a_body_that_is_not_flowed_keeps_its_trailing_spaces_as_breaks() -> None:
    raw = mail(leaf("text/plain; charset=utf-8", "一行目 \r\n二行目\r\n".encode()))
    assert "一行目 \n二行目" in body_text(sanitize_message(raw, Policy()).message)


# --- tables and indentation ------------------------------------------------------------------


def text(html: str) -> str:
    return html_to_text(html, LinkMode.KEEP)


@pytest.mark.parametrize("inner", ["東京都千代田区<br>一丁目", "<p>東京都千代田区</p>一丁目"])
def test_a_multi_line_cell_is_not_glued_to_the_next_cell(inner: str) -> None:
    html = f"<table><tr><td>{inner}</td><td>03-1234-5678</td></tr><tr><td>a</td><td>b</td></tr>"
    out = text(html)
    assert "一丁目 | 03" not in out
    assert "東京都千代田区\n" in out
    assert "一丁目\n03-1234-5678\n" in out
    assert "a | b" in out


def test_a_multi_line_cell_after_others_starts_its_own_line() -> None:
    html = "<table><tr><td>住所</td><td>東京都<br>千代田区</td><td>電話</td></tr></table>"
    assert text(html) == "住所\n東京都\n千代田区\n電話\n"


def test_single_line_cells_still_share_a_line() -> None:
    assert text("<table><tr><td>氏名</td><td>山田</td></tr></table>") == "氏名 | 山田\n"


def test_multi_line_cells_in_a_quote_keep_the_quote_marks() -> None:
    html = "<blockquote><table><tr><td>a</td><td>x<br>y</td></tr></table></blockquote>"
    assert text(html) == "> a\n> x\n> y\n"


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        ("<p>&nbsp;&nbsp;字下げの段落</p>", "  字下げの段落\n"),
        ("<div>&nbsp;&nbsp;&nbsp;<b>太字</b>で始まる</div>", "   太字で始まる\n"),
        ("<p>&#160;一字下げ<br>&nbsp;&nbsp;二行目</p>", " 一字下げ\n  二行目\n"),
        ("<div>&nbsp;</div><div>次の行</div>", "次の行\n"),
        ("<p>&nbsp;&nbsp;</p><p>後</p>", "後\n"),
        ("<table><tr><td>&nbsp;</td><td>値</td></tr></table>", "値\n"),
        ("<p>a&nbsp;&nbsp;b</p>", "a  b\n"),
    ],
)
def test_leading_no_break_spaces_indent_the_line(html: str, expected: str) -> None:
    assert text(html) == expected


@pytest.mark.parametrize("charset", CHARSETS)
def test_indentation_and_cells_survive_the_pipeline(charset: str) -> None:
    html = (
        "<p>&nbsp;&nbsp;記</p><table><tr><td>日時<br>場所</td>"
        "<td>十月一日<br>本庁舎</td></tr></table>"
    )
    raw = mail(leaf(f"text/html; charset={charset}", html.encode(charset)))
    body = body_text(sanitize_message(raw, Policy()).message)
    assert "  記\n" in body
    assert "場所\n十月一日\n本庁舎" in body
