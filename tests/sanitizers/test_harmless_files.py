"""Harmless files arrive whole (issue 11, class 11, this helper's part): UTF-16 text, CSV of
telephone numbers, a Content-Transfer-Encoding with a comment. Real formulas are still
neutralised."""

from __future__ import annotations

import base64
import codecs
import csv
import io
from urllib.parse import quote

import pytest

from sanitizers.cdr.base import CdrContext
from sanitizers.cdr.registry import InProcessDisarmer
from sanitizers.cdr.settings import CdrPolicy
from sanitizers.cdr.text import TextSanitizer
from sanitizers.pipeline import sanitize_message
from sanitizers.policy import Policy
from sanitizers.vocabulary import Action, Reason
from tests.mailfactory import CRLF, body_text, headers, mail, multipart, parse

POLICY = Policy()
JAPANESE = "会議のお知らせ①㈱～\r\n日時: 12月3日\r\n"


def _ctx() -> CdrContext:
    return CdrContext(policy=CdrPolicy(), full_policy=POLICY)


UTF16_FORMS = {
    "le-bom": codecs.BOM_UTF16_LE + JAPANESE.encode("utf-16-le"),
    "be-bom": codecs.BOM_UTF16_BE + JAPANESE.encode("utf-16-be"),
    "le-ascii-no-bom": "Meeting at 10:00\r\nRoom 3\r\n".encode("utf-16-le"),
    "be-ascii-no-bom": "Meeting at 10:00\r\nRoom 3\r\n".encode("utf-16-be"),
    "python-utf16": JAPANESE.encode("utf-16"),
}


@pytest.mark.parametrize("form", sorted(UTF16_FORMS))
def test_utf16_text_is_decoded_and_written_as_utf8(form: str) -> None:
    data = UTF16_FORMS[form]
    outcome = TextSanitizer().run(data, "memo.txt", _ctx())
    assert outcome.action is Action.SANITIZED, outcome
    assert outcome.reason is Reason.CLEAN
    assert outcome.data is not None
    expected = data.decode("utf-16" if "bom" in form or form == "python-utf16" else form[:2])
    if "no-bom" in form:
        expected = data.decode("utf-16-le" if form.startswith("le") else "utf-16-be")
    assert outcome.data.decode("utf-8") == expected.lstrip("\ufeff")


def test_utf16_with_a_lone_surrogate_is_lossy_not_a_crash() -> None:
    before, after = "お知らせ" * 50, "以上" * 50
    data = (
        codecs.BOM_UTF16_LE + before.encode("utf-16-le") + b"\x3d\xd8" + after.encode("utf-16-le")
    )
    outcome = TextSanitizer().run(data, "memo.txt", _ctx())
    assert outcome.action is Action.SANITIZED
    assert outcome.reason is Reason.LOSSY_DECODE
    assert outcome.data == f"{before}\ufffd{after}".encode()


@pytest.mark.parametrize(
    "data",
    [
        b"\x00\x01\x02\x03" * 200,  # binary
        b"MZ\x90\x00\x03\x00\x00\x00",
    ],
)
def test_binary_with_nul_bytes_is_still_not_text(data: bytes) -> None:
    outcome = TextSanitizer().run(data, "x.txt", _ctx())
    assert outcome.action is Action.REMOVED
    assert outcome.reason is Reason.TYPE_MISMATCH


PHONE_CELLS = [
    "+81-3-1234-5678",
    "+81 3 1234 5678",
    "+81(3)1234-5678",
    "-03-1234-5678",
    "+1 (555) 010-9999",
    "-500",
    "+1.5e3",
    "-12345",
    "+81-90-1234-5678",
]
FORMULA_CELLS = [
    "=1+1",
    "@SUM(1+1)",
    "+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "+A1",
    "-SUM(1)",
    '+81-3-HYPERLINK("http://x")',
    "\t=1",
    "+\u0030x41",
    '-1+WEBSERVICE("http://x")',
]


def _rows(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def test_a_csv_of_telephone_numbers_is_clean_and_unchanged() -> None:
    text = "名前,電話\r\n" + "".join(f"山田{i},{cell}\r\n" for i, cell in enumerate(PHONE_CELLS))
    outcome = TextSanitizer().run(text.encode("cp932"), "連絡先.csv", _ctx())
    assert outcome.action is Action.SANITIZED
    assert outcome.reason is Reason.CLEAN
    assert outcome.removed == ()
    assert outcome.data is not None
    assert [row[1] for row in _rows(outcome.data)[1:]] == PHONE_CELLS
    assert f"{len(PHONE_CELLS)} cells start with + or -" in outcome.detail


@pytest.mark.parametrize("formula", FORMULA_CELLS)
def test_real_formulas_are_still_neutralised_next_to_phone_numbers(formula: str) -> None:
    quoted = '"' + formula.replace('"', '""') + '"'
    text = f"a,b\r\n+81-3-1234-5678,x\r\n1,{quoted}\r\n"
    outcome = TextSanitizer().run(text.encode(), "x.csv", _ctx())
    assert outcome.reason is Reason.ACTIVE_CONTENT
    assert "csv_formula" in outcome.removed
    assert outcome.data is not None
    rows = _rows(outcome.data)
    assert rows[1][0] == "+81-3-1234-5678"
    assert rows[2][1] == "'" + formula


def test_phone_numbers_through_the_pipeline_get_a_calm_notice() -> None:
    text = "名前,電話\r\n山田,+81-3-1234-5678\r\n"
    part = headers(
        ("Content-Type", "text/csv; charset=utf-8"),
        ("Content-Disposition", "attachment; filename*=utf-8''" + quote("連絡先.csv")),
        ("Content-Transfer-Encoding", "base64"),
    )
    part += CRLF + base64.encodebytes(text.encode()).replace(b"\n", CRLF)
    raw = mail(multipart("mixed", [headers(("Content-Type", "text/plain")) + CRLF + b"x", part]))
    result = sanitize_message(raw, POLICY, disarmer=InProcessDisarmer())
    notice = body_text(result.message)
    assert "動的な内容" not in notice
    assert result.report.parts[-1].reason is Reason.CLEAN


CTE_VALUES = [
    "base64 (encoded by the mailer)",
    "(comment) base64",
    "BASE64 (a (nested) comment)",
    "base64(no space)",
    "base64 (with \\) escaped parenthesis)",
]


@pytest.mark.parametrize("cte", CTE_VALUES)
def test_a_transfer_encoding_with_a_comment_is_that_encoding(cte: str) -> None:
    pdf_like = b"%PDF-1.4\n" + bytes(range(256)) * 4
    part = headers(
        ("Content-Type", "application/octet-stream"),
        ("Content-Disposition", 'attachment; filename="data.bin"'),
        ("Content-Transfer-Encoding", cte),
    )
    part += CRLF + base64.encodebytes(pdf_like).replace(b"\n", CRLF)
    raw = mail(multipart("mixed", [headers(("Content-Type", "text/plain")) + CRLF + b"x", part]))
    result = sanitize_message(raw, POLICY, disarmer=InProcessDisarmer())
    attachment = result.report.parts[-1]
    assert attachment.size == len(pdf_like)
    assert attachment.detected_type == "application/pdf"
    assert all("Content-Transfer-Encoding" not in note for note in result.report.defects)
    assert parse(result.message) is not None
