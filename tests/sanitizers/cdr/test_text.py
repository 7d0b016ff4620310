"""Text-like files: the contract, plus Japanese charsets, CSV BOM and HTML attachments."""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Sequence

from sanitizers.cdr.base import CdrContext
from sanitizers.cdr.settings import CdrPolicy
from sanitizers.cdr.text import HtmlSanitizer, TextSanitizer
from sanitizers.policy import Policy
from sanitizers.vocabulary import Action, Reason
from tests.sanitizers.cdr.contract import Case, CdrContract

JAPANESE = "件名：㈱テスト ①～③ 髙橋様 全角ＡＢＣ\r\n"  # round-trips through CP932
CSV = "氏名,所属,電話\r\n山田太郎,総務課,03-1234-5678\r\n"
_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")


def _ctx(keep: bool = False, **cdr: bool) -> CdrContext:
    return CdrContext(policy=CdrPolicy(**cdr), keep_if_clean=keep, full_policy=Policy())


class TestTextContract(CdrContract):
    kind = "text"

    def hostile_cases(self) -> Sequence[Case]:
        escape = "Click here\x1b]8;;http://evil/\x1b\\now\x1b[2J\x07\r\n" + JAPANESE
        return [
            Case(
                "terminal-escapes",
                escape.encode("utf-8"),
                "readme.txt",
                frozenset({"control_characters"}),
                text=(JAPANESE.strip(),),
            ),
            Case(
                "cp932-with-escapes",
                ("\x1b[31m" + JAPANESE).encode("cp932"),
                "memo.txt",
                frozenset({"control_characters"}),
                text=(JAPANESE.strip(),),
            ),
        ]

    def clean_cases(self) -> Sequence[Case]:
        return [
            Case("utf8", JAPANESE.encode("utf-8"), "memo.txt", text=(JAPANESE.strip(),)),
            Case("ascii-csv", b"a,b\r\n1,2\r\n", "data.csv", text=("1,2",)),
        ]

    def dangerous_items(self, data: bytes) -> set[str]:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = data.decode("cp932", "replace")
        return {f"U+{ord(c):04X}" for c in _CONTROLS.findall(text)}

    def assert_parses(self, data: bytes) -> None:
        data.decode("utf-8-sig")

    def extract_text(self, data: bytes) -> str:
        return data.decode("utf-8-sig")


def test_cp932_is_rewritten_as_utf8_exactly() -> None:
    outcome = TextSanitizer().run(JAPANESE.encode("cp932"), "memo.txt", _ctx())
    assert outcome.action == Action.SANITIZED
    assert outcome.data == JAPANESE.encode("utf-8")
    assert outcome.content_type == "text/plain; charset=utf-8"


def test_csv_gets_a_bom_for_excel() -> None:
    outcome = TextSanitizer().run(CSV.encode("cp932"), "名簿.csv", _ctx())
    assert outcome.data == codecs.BOM_UTF8 + CSV.encode("utf-8")
    assert outcome.content_type == "text/csv; charset=utf-8"
    again = TextSanitizer().run(outcome.data, "名簿.csv", _ctx())
    assert again.data == outcome.data  # the BOM is not doubled


def test_csv_bom_can_be_turned_off() -> None:
    outcome = TextSanitizer().run(CSV.encode("utf-8"), "a.csv", _ctx(text_csv_bom=False))
    assert outcome.data == CSV.encode("utf-8")


def test_binary_is_not_text() -> None:
    outcome = TextSanitizer().run(b"MZ\x90\x00\x03\x00\x00\x00", "a.txt", _ctx())
    assert (outcome.action, outcome.reason) == (Action.REMOVED, Reason.TYPE_MISMATCH)


def test_keep_if_clean_refuses_non_utf8() -> None:
    outcome = TextSanitizer().run(JAPANESE.encode("cp932"), "memo.txt", _ctx(keep=True))
    assert outcome.action == Action.REMOVED


def test_html_attachment_becomes_text() -> None:
    html = (
        '<html><head><meta charset="shift_jis"><script>alert(1)</script></head>'
        "<body><p>お知らせ①</p><a href='https://example.jp/'>リンク</a></body></html>"
    ).encode("cp932")
    outcome = HtmlSanitizer().run(html, "案内.html", _ctx())
    assert outcome.action == Action.CONVERTED
    assert outcome.reason == Reason.TEXT_CONVERTED
    assert outcome.filename == "案内.txt"
    assert outcome.data is not None
    text = outcome.data.decode("utf-8")
    assert "お知らせ①" in text
    assert "alert" not in text
    assert "<" not in text.replace("<https://example.jp/>", "")


def test_html_is_never_kept_as_is() -> None:
    outcome = HtmlSanitizer().run(b"<p>hi</p>", "a.html", _ctx(keep=True))
    assert outcome.action == Action.REMOVED


def test_c1_controls_are_removed() -> None:
    outcome = TextSanitizer().run("a\u009b31mb\u0085c\n".encode(), "a.txt", _ctx())
    assert outcome.data == b"a31mb\nc\n"  # NEL is a line break (sanitizers.safetext)
    assert outcome.removed == ("control_characters",)


def test_risky_text_extensions_become_txt() -> None:
    xhtml = b'<html xmlns="http://www.w3.org/1999/xhtml"><script>alert(1)</script></html>'
    outcome = TextSanitizer().run(xhtml, "invoice.xml", _ctx())
    assert outcome.filename == "invoice.txt"
    kept = TextSanitizer().run(b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n", "m.ics", _ctx())
    assert kept.filename == "m.ics"


DDE_CSV = '名前,金額,備考\r\n山田,-500,+81 3\r\n=cmd|\' /C calc\'!A0,@SUM(1+1),"=HYPERLINK(""http://x"")"\r\n'


def test_csv_formulas_become_text_and_numbers_stay() -> None:
    outcome = TextSanitizer().run(DDE_CSV.encode("cp932"), "一覧.csv", _ctx())
    assert outcome.action is Action.SANITIZED
    assert outcome.reason is Reason.ACTIVE_CONTENT
    assert "csv_formula" in outcome.removed
    assert outcome.data is not None
    rows = list(csv.reader(io.StringIO(outcome.data.decode("utf-8-sig"))))
    assert rows[1] == ["山田", "-500", "+81 3"]  # a telephone number, not a formula
    assert rows[2] == ["'=cmd|' /C calc'!A0", "'@SUM(1+1)", '\'=HYPERLINK("http://x")']
    again = TextSanitizer().run(outcome.data, "一覧.csv", _ctx())
    assert "csv_formula" not in again.removed


def test_tsv_formulas_are_neutralized_by_tab() -> None:
    outcome = TextSanitizer().run(b"a\t=1+1\r\n", "x.tsv", _ctx())
    assert outcome.data is not None
    assert outcome.data.decode("utf-8-sig").split("\r\n")[0] == "a\t'=1+1"


def test_formula_neutralizing_can_be_turned_off() -> None:
    outcome = TextSanitizer().run(b"=1+1\r\n", "x.csv", _ctx(text_csv_neutralize_formulas=False))
    assert outcome.data is not None
    assert outcome.data.decode("utf-8-sig") == "=1+1\r\n"
    assert "csv_formula" not in outcome.removed


def test_formulas_in_plain_text_files_are_left_alone() -> None:
    outcome = TextSanitizer().run(b"=1+1\n", "memo.txt", _ctx())
    assert outcome.data == b"=1+1\n"
