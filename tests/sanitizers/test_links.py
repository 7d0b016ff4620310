"""policy.links.allowed_schemes: one list of URL schemes for bodies and documents. Text
bodies (plain, and HTML whose link text is itself a link) get other schemes defanged and the
removal reported; ordinary words before a colon are left exactly as written."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from sanitizers.links import DEFAULT_ALLOWED_SCHEMES, defang_text, is_allowed
from sanitizers.pipeline import sanitize_message
from sanitizers.policy import LinksPolicy, Policy
from tests.mailfactory import body_text, leaf, mail, text_mail

CLICKABLE = [
    "javascript:alert(document.cookie)",
    "JavaScript:alert(1)",
    "vbscript:msgbox(1)",
    "file:///C:/Windows/System32/calc.exe",
    "file://evil.example/share/x.exe",
    "ms-msdt:/id PCWDiagnostic /skip force /param x",
    "search-ms:query=請求書&crumb=location:\\\\evil.example\\share",
    'ms-officecmd:{"id":1}',
    "ms-word:ofe|u|http://evil.example/x.docx",
    "data:text/html;base64,PHNjcmlwdD4=",
    "smb://evil.example/share",
    "ftp://files.example.jp/x.zip",
    "mhtml:http://evil.example/x.mht!x",
]
UNTOUCHED = [
    "https://example.jp/path?q=1",
    "http://example.jp/",
    "mailto:soumu@city.example.lg.jp",
    "TEL:03-1234-5678",
    "件名:会議のご案内",
    "Note: see below",
    "時刻 12:00 集合",
    "ratio 3:1",
    "Re:Fwd:お知らせ",
    "hxxps://evil[.]example/login fxp://f[.]example/",  # already defanged by LinkMode.DEFANG
]


@pytest.mark.parametrize("link", CLICKABLE)
def test_clickable_links_of_other_schemes_are_defanged(link: str) -> None:
    text, count = defang_text(f"こちら {link} をご覧ください", DEFAULT_ALLOWED_SCHEMES)
    assert count >= 1  # a scheme inside it (location:\\\\host) may be defanged too
    scheme = link.split(":", 1)[0]
    assert f"{scheme}[:]" in text
    assert f"{scheme}:" not in text
    assert not is_allowed(link, DEFAULT_ALLOWED_SCHEMES)
    # Defanging is idempotent: the result has nothing left to defang.
    assert defang_text(text, DEFAULT_ALLOWED_SCHEMES) == (text, 0)


@pytest.mark.parametrize("text", UNTOUCHED)
def test_allowed_links_and_ordinary_text_stay_exact(text: str) -> None:
    assert defang_text(text, DEFAULT_ALLOWED_SCHEMES) == (text, 0)


def test_scheme_list_is_validated_and_normalized() -> None:
    assert LinksPolicy(allowed_schemes=("HTTPS", "https", "mailto")).allowed_schemes == (
        "https",
        "mailto",
    )
    with pytest.raises(ValidationError):
        LinksPolicy(allowed_schemes=("http s",))
    with pytest.raises(ValidationError):
        Policy.model_validate({"cdr": {"pdf_uri": "remove"}})  # replaced by links


@pytest.mark.parametrize("link", CLICKABLE)
def test_plain_body_links_are_defanged_and_reported(link: str) -> None:
    result = sanitize_message(text_mail(f"ご確認ください: {link}\n以上です。"), Policy())
    text = body_text(result.message)
    assert link not in text
    assert "ご確認ください" in text
    assert "以上です。" in text
    body = result.report.parts[0]
    assert body.removed == ["unsafe_link"]
    assert "許可されていない種類のリンク" in text  # the notice says what was done


@pytest.mark.parametrize("link", CLICKABLE)
def test_html_link_text_that_is_a_link_is_defanged(link: str) -> None:
    html = f'<p>請求書は<a href="{link}">{link}</a>から</p>'.encode()
    result = sanitize_message(mail(leaf("text/html; charset=utf-8", html)), Policy())
    text = body_text(result.message)
    assert link not in text
    assert "請求書は" in text


def test_the_same_list_decides_which_link_urls_are_shown() -> None:
    html = (
        b'<p><a href="mailto:a@example.jp">mail us</a> <a href="https://example.jp/">site</a></p>'
    )
    only_https = Policy(links=LinksPolicy(allowed_schemes=("https",)))
    text = body_text(sanitize_message(mail(leaf("text/html", html)), only_https).message)
    assert "<https://example.jp/>" in text
    assert "mailto:a@example.jp" not in text
    default = body_text(sanitize_message(mail(leaf("text/html", html)), Policy()).message)
    assert "<mailto:a@example.jp>" in default


VCARD = (
    "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:山田 太郎\r\nURL:{url}\r\n"
    "URL;TYPE=work:https://example.jp/\r\nEND:VCARD\r\n"
)


@pytest.mark.parametrize("link", CLICKABLE)
@pytest.mark.parametrize("suffix", [".vcf", ".ics"])
def test_vcard_and_calendar_links_are_defanged(link: str, suffix: str) -> None:
    from sanitizers.cdr.base import CdrContext
    from sanitizers.cdr.settings import CdrPolicy
    from sanitizers.cdr.text import TextSanitizer

    data = VCARD.format(url=link).encode()
    outcome = TextSanitizer().run(data, "card" + suffix, CdrContext(policy=CdrPolicy()))
    assert outcome.removed == ("unsafe_link",), outcome
    assert outcome.data is not None
    text = outcome.data.decode()
    assert link not in text
    assert "https://example.jp/" in text
    assert "山田 太郎" in text
