"""Which body is read, and that it is not lost (issue 12, class 1): responsive HTML whose
visible text sits under hidden-looking wrappers, and text alternatives that are blank once
decoded or only point to the HTML version. Japanese in ISO-2022-JP, Shift_JIS and UTF-8."""

from __future__ import annotations

import pytest

from sanitizers.pipeline import sanitize_message
from sanitizers.policy import Policy
from sanitizers.vocabulary import Action, Reason
from tests.mailfactory import body_text, leaf, mail, multipart

POLICY = Policy()
CHARSETS = ["iso-2022-jp", "shift_jis", "utf-8"]
NEWS = "住民税の申告受付を開始しました。窓口は市役所本庁舎二階です。"
PREHEADER = "プレヘッダー隠し文"


def mjml_newsletter(text: str) -> str:
    """A newsletter as MJML writes it: a hidden preheader, then columns whose wrappers zero
    the font size (to remove the gaps between inline blocks) and whose children set it."""
    return (
        "<!doctype html><html><body style='word-spacing:normal'>"
        "<div style='display:none;font-size:1px;color:#ffffff;line-height:1px;max-height:0px;"
        f"max-width:0px;opacity:0;overflow:hidden;'>{PREHEADER}</div>"
        "<div style='margin:0px auto;max-width:600px'><table role='presentation'><tbody><tr>"
        "<td style='direction:ltr;font-size:0px;padding:20px 0;text-align:center'>"
        "<div class='mj-column-per-100' style='font-size:0px;text-align:left;"
        "display:inline-block;vertical-align:top;width:100%'>"
        "<table role='presentation' width='100%'><tbody><tr>"
        "<td align='left' style='font-size:0px;padding:10px 25px;word-break:break-word'>"
        "<div style='font-family:Helvetica,Arial,sans-serif;font-size:14px;line-height:1.6;"
        f"color:#333333'>{text}</div></td></tr>"
        "<tr><td style='font-size:0px'><img src='cid:x' alt='市章' width='80'></td></tr>"
        "</tbody></table></div></td></tr></tbody></table></div></body></html>"
    )


def html_part(html: str, charset: str) -> bytes:
    return leaf(f"text/html; charset={charset}", html.encode(charset), cte="base64")


@pytest.mark.parametrize("charset", CHARSETS)
def test_a_responsive_newsletter_keeps_its_visible_text(charset: str) -> None:
    raw = mail(html_part(mjml_newsletter(NEWS), charset))
    result = sanitize_message(raw, POLICY)
    body = body_text(result.message)
    assert NEWS in body
    assert "[市章]" in body  # an image under a zero font size is still shown
    assert PREHEADER not in body  # display:none and opacity:0 hide for good
    assert not result.report.parts[0].findings


def alternative(plain: bytes, html: bytes) -> bytes:
    return mail(multipart("alternative", [plain, html]))


@pytest.mark.parametrize(
    "blank", [b"\r\n", b" \r\n\t\r\n", "\u3000\r\n".encode(), b"", b" \r\n" * 3000]
)
@pytest.mark.parametrize("cte", ["base64", "quoted-printable", None])
def test_a_text_alternative_blank_once_decoded_gives_way_to_the_html(
    blank: bytes, cte: str | None
) -> None:
    payload = blank
    if cte == "quoted-printable":
        payload = b"".join(b"=%02X" % byte for byte in blank)
    plain = leaf("text/plain; charset=utf-8", payload, cte=cte)
    raw = alternative(plain, html_part(f"<p>{NEWS}</p>", "utf-8"))
    result = sanitize_message(raw, POLICY)
    assert NEWS in body_text(result.message)
    plain_report, html_report = result.report.parts
    assert plain_report.reason is Reason.ALTERNATIVE
    assert html_report.action is Action.CONVERTED


POINTERS = [
    "このメールはHTML形式です。HTML形式でご覧ください。",
    "HTML形式でご覧ください",
    "本メールはＨＴＭＬ形式でお送りしています。",
    "HTMLメールを表示できるメールソフトでご覧ください。",
    "ブラウザでご覧になる場合はこちら",
    "This email is in HTML. View it in your browser.",
    "Your email client does not support HTML; please view the HTML version.",
]


@pytest.mark.parametrize("charset", CHARSETS)
@pytest.mark.parametrize("pointer", POINTERS)
def test_a_text_alternative_that_only_points_to_the_html_gives_way(
    pointer: str, charset: str
) -> None:
    plain = leaf(f"text/plain; charset={charset}", pointer.encode(charset), cte="base64")
    html = html_part(f"<p>{NEWS}</p><p>{NEWS}</p>", charset)
    body = body_text(sanitize_message(alternative(plain, html), POLICY).message)
    assert NEWS in body
    assert pointer not in body


@pytest.mark.parametrize("charset", CHARSETS)
def test_a_useful_text_alternative_still_wins(charset: str) -> None:
    # It mentions HTML, but it is the message: the text part is read, as before.
    text = "会議資料を送ります。HTML形式でご覧ください。\r\n" + NEWS * 20
    plain = leaf(f"text/plain; charset={charset}", text.encode(charset), cte="base64")
    html = html_part(f"<p>{NEWS}</p>", charset)
    body = body_text(sanitize_message(alternative(plain, html), POLICY).message)
    assert "会議資料を送ります。" in body


@pytest.mark.parametrize("charset", CHARSETS)
def test_a_pointer_wins_when_the_html_says_less(charset: str) -> None:
    # Never lose text: an HTML part with less to say than the pointer does not replace it.
    pointer = "HTML形式でご覧ください。"
    plain = leaf(f"text/plain; charset={charset}", pointer.encode(charset))
    html = html_part("<p style='display:none'>x</p>", charset)
    body = body_text(sanitize_message(alternative(plain, html), POLICY).message)
    assert pointer in body


def test_a_pointer_gives_way_to_related_html() -> None:
    plain = leaf("text/plain; charset=utf-8", POINTERS[0].encode())
    related = multipart(
        "related", [html_part(f"<p>{NEWS}</p>", "utf-8"), leaf("image/png", b"x")], "REL"
    )
    raw = mail(multipart("alternative", [plain, related]))
    assert NEWS in body_text(sanitize_message(raw, POLICY).message)
