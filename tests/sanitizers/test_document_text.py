"""The text of attachments for the outbound checks, and My Numbers found in it."""

from __future__ import annotations

import pytest

from sanitizers.cdr.settings import CdrPolicy
from sanitizers.document_text import Unreadable, file_texts
from sanitizers.personal_number import find_personal_numbers
from sanitizers.vocabulary import Reason
from tests.sanitizers.cdr.encrypted_fixtures import zipcrypto_zip
from tests.sanitizers.document_fixtures import docx, pdf, pptx, xlsx, zip_of

NUMBER = "621498320257"
FAR = "備考" * 40  # keeps the keyword out of reach of the number but for the column header


def _texts(data: bytes, name: str, **limits: int) -> str:
    policy = CdrPolicy.model_validate(limits)
    texts = file_texts(
        data, name=name, declared_type="application/octet-stream", policy=policy, max_chars=10**6
    )
    return "\n".join(t.text for t in texts)


def _found(data: bytes, name: str) -> int:
    return len(find_personal_numbers(_texts(data, name)))


def test_xlsx_column_header_shared_and_inline_strings() -> None:
    rows: list[list[str | int]] = [["氏名", "個人番号", "備考"]]
    rows += [[f"住民{i}", int(NUMBER), FAR] for i in range(30)]
    assert _found(xlsx(rows), "名簿.xlsx") == 30
    assert _found(xlsx(rows, shared=False), "名簿.xlsx") == 30


def test_xlsx_one_column_sheet_is_still_a_table() -> None:
    rows: list[list[str | int]] = [["個人番号"]] + [[FAR]] + [[int(NUMBER)]] * 5
    assert _found(xlsx(rows), "list.xlsx") == 5


def test_xlsx_without_context_finds_nothing() -> None:
    rows: list[list[str | int]] = [["氏名", "会員番号"]] + [["x", int(NUMBER)]] * 5
    assert _found(xlsx(rows), "list.xlsx") == 0


def test_docx_paragraph_and_table() -> None:
    assert _found(docx([f"マイナンバー：{NUMBER}"]), "a.docx") == 1
    table = [["氏名", "個人番号"], [FAR, "6214 9832 0257"]]
    assert _found(docx(["名簿"], table), "a.docx") == 1
    assert _found(docx([f"注文 {NUMBER}"]), "a.docx") == 0


def test_pptx() -> None:
    assert _found(pptx(["My Number", "6214-9832-0257"]), "a.pptx") == 1


def test_pdf() -> None:
    assert _found(pdf(["My Number: 6214 9832 0257"]), "a.pdf") == 1
    assert _found(pdf(["Order 6214 9832 0257"]), "a.pdf") == 0


def test_csv_and_text() -> None:
    rows = "氏名,個人番号,住所\n" + "".join(f'"住民{i}",{NUMBER},"{FAR}"\n' for i in range(10))
    assert _found(rows.encode("cp932"), "名簿.csv") == 10
    assert _found(f"個人番号 {NUMBER}".encode("utf-16"), "a.txt") == 1


def test_inside_zip_and_nested_zip() -> None:
    inner = zip_of({"b/名簿.xlsx": xlsx([["個人番号"], [int(NUMBER)]])})
    outer = zip_of({"a.pdf": pdf(["My Number 621498320257"]), "inner.zip": inner})
    assert _found(outer, "送付.zip") == 2


def test_zip_nested_past_the_limit_is_unreadable() -> None:
    data = zip_of({"a.txt": b"x"})
    for _ in range(3):
        data = zip_of({"n.zip": data})
    with pytest.raises(Unreadable) as caught:
        _texts(data, "deep.zip", zip_max_depth=2)
    assert caught.value.reason is Reason.LIMIT_DEPTH


@pytest.mark.parametrize(
    ("data", "name", "reason"),
    [
        (pdf(["x"], password="secret"), "a.pdf", Reason.ENCRYPTED),
        (zipcrypto_zip({"a.txt": b"x"}), "a.zip", Reason.ENCRYPTED_ARCHIVE),
        (b"PK\x03\x04 broken", "a.xlsx", Reason.MALFORMED),
        (b"%PDF-1.4\n broken", "a.pdf", Reason.MALFORMED),
    ],
)
def test_unreadable_files_say_why(data: bytes, name: str, reason: Reason) -> None:
    with pytest.raises(Unreadable) as caught:
        _texts(data, name)
    assert caught.value.reason is reason


def test_text_is_bounded() -> None:
    policy = CdrPolicy()
    with pytest.raises(Unreadable) as caught:
        file_texts(
            b"a" * 5000, name="a.txt", declared_type="text/plain", policy=policy, max_chars=1000
        )
    assert caught.value.reason is Reason.LIMIT_SIZE


def test_files_without_text_give_none() -> None:
    from tests.sanitizers.cdr.office_fixtures import PNG_1PX

    assert (
        file_texts(
            PNG_1PX, name="a.png", declared_type="image/png", policy=CdrPolicy(), max_chars=100
        )
        == []
    )
