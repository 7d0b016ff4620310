"""Issue 12: a text attachment's declared charset reaches the CDR text sanitizer and is used
before detection, in this process and in the isolated child, for text and HTML files. The
fixtures are short Japanese tables whose bytes another charset also reads without error (EUC-JP
kanji that are valid UTF-8, CP932 half-width katakana that are valid EUC-JP), built here."""

from __future__ import annotations

from email import message_from_bytes
from email.policy import compat32

import pytest

from sanitizers.cdr.isolation import IsolatedDisarmer
from sanitizers.cdr.registry import InProcessDisarmer
from sanitizers.pipeline import sanitize_message
from sanitizers.policy import AttachmentAction, Policy
from sanitizers.vocabulary import Action
from tests.mailfactory import leaf, mail, multipart

# (text, Python codec, the label the attachment declares). Each text's bytes read as another
# real text when nothing is declared: detection alone cannot be right about all of them.
TABLES = [
    ("道路\r\n", "euc_jp", "euc-jp"),  # valid UTF-8: "ƻϩ"
    ("道路,氏名\r\n", "euc_jp", "EUC-JP"),  # valid UTF-8
    ("ｶﾀｶﾅ\r\n", "cp932", "shift_jis"),  # valid EUC-JP: two kanji
    ("道路,ｶﾀｶﾅ\r\n", "iso2022_jp_ext", "iso-2022-jp"),
]


def _attached(data: bytes, label: str, name: str, content_type: str = "text/csv") -> bytes:
    return mail(
        multipart(
            "mixed",
            [
                leaf("text/plain; charset=utf-8", b"see the table"),
                leaf(
                    f"{content_type}; charset={label}",
                    data,
                    cte="base64",
                    extra=[("Content-Disposition", f'attachment; filename="{name}"')],
                ),
            ],
        )
    )


def _delivered_file(raw: bytes) -> tuple[str, bytes]:
    out = message_from_bytes(raw, policy=compat32)
    (part,) = [p for p in out.walk() if p.get_filename()]
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return part.get_content_type(), payload


@pytest.mark.parametrize(("text", "codec", "label"), TABLES)
def test_a_csv_declared_in_a_japanese_charset_is_decoded_as_declared(
    text: str, codec: str, label: str
) -> None:
    result = sanitize_message(_attached(text.encode(codec), label, "table.csv"), Policy())
    (part,) = [p for p in result.report.parts if p.filename == "table.csv"]
    assert part.action is Action.SANITIZED
    content_type, payload = _delivered_file(result.message)
    assert content_type == "text/csv"
    assert payload.decode("utf-8-sig") == text


@pytest.mark.parametrize(("text", "codec", "label"), TABLES)
def test_an_html_file_declared_in_a_japanese_charset_is_decoded_as_declared(
    text: str, codec: str, label: str
) -> None:
    html = f"<html><body><p>{text.strip()}</p></body></html>".encode(codec)
    result = sanitize_message(_attached(html, label, "page.html", "text/html"), Policy())
    _content_type, payload = _delivered_file(result.message)
    assert text.strip() in payload.decode("utf-8")


def test_the_declared_charset_crosses_into_the_isolated_child() -> None:
    policy = Policy()
    cyrillic = "Привет, мир\r\n".encode("koi8_r")  # any single-byte charset reads these bytes
    with IsolatedDisarmer(policy.cdr) as isolated:
        japanese = isolated.disarm(
            "道路\r\n".encode("euc_jp"),
            "t.csv",
            "text",
            AttachmentAction.SANITIZE,
            policy,
            charset="euc-jp",
        )
        russian = isolated.disarm(
            cyrillic, "t.txt", "text", AttachmentAction.SANITIZE, policy, charset="koi8-r"
        )
    assert japanese.data is not None
    assert japanese.data.decode("utf-8-sig") == "道路\r\n"
    assert russian.data is not None
    assert russian.data.decode("utf-8") == "Привет, мир\r\n"


@pytest.mark.parametrize("label", ["x-no-such-charset", "utf-7'; rm", "idna", "a" * 300])
def test_an_unusable_declared_charset_falls_back_to_detection(label: str) -> None:
    data = "道路,ｶﾀｶﾅ,氏名,住所,電話番号\r\n".encode("euc_jp")
    outcome = InProcessDisarmer().disarm(
        data, "t.csv", "text", AttachmentAction.SANITIZE, Policy(), charset=label
    )
    assert outcome.data is not None
    assert outcome.data.decode("utf-8-sig") == "道路,ｶﾀｶﾅ,氏名,住所,電話番号\r\n"
