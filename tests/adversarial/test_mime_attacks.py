"""Hostile MIME through the whole pipeline: one deterministic reading or the part removed,
no injected header, no HTML, no byte of a removed part, limits named in the report.

Covered elsewhere (not repeated): tests/sanitizers/test_pipeline.py —
test_conflicting_transfer_encodings_use_the_first (top level), test_missing_boundary_reads_
the_part_as_text, test_nesting_deeper_than_the_limit_holds (multipart), test_broken_base64_is_
repaired_and_recorded, test_message_partial_is_removed (as a part), test_encoded_word_crlf_
cannot_inject_headers (Subject), test_display_name_that_looks_like_an_address_is_dropped,
test_duplicate_from_uses_the_first_and_records_it, test_limits_hold_the_message."""

from __future__ import annotations

import base64
import binascii

import pytest

from sanitizers.policy import Limits, Policy
from sanitizers.vocabulary import Reason, Verdict
from tests.adversarial.invariants import assert_deterministic, assert_safe, sanitize, text_of
from tests.mailfactory import CRLF, headers, leaf, mail, multipart, parse

SECRET = b"ORIGINAL-ATTACHMENT-SECRET-0123456789"
SCRIPT = b"SCRIPT-MARKER-4242"
HTML = b"<html><body><script>" + SCRIPT + b"</script><p>hello</p></body></html>"
ATTACHMENT = leaf(
    "application/octet-stream; name=x.exe",
    SECRET * 3,
    cte="base64",
    extra=[("Content-Disposition", "attachment; filename=x.exe")],
)
TOP = (
    ("From", "a@example.jp"),
    ("To", "b@example.lg.jp"),
    ("Subject", "test"),
    ("Message-ID", "<m1@example.jp>"),
)


def with_content_type(*content_types: str, body: bytes) -> bytes:
    return headers(*TOP, ("MIME-Version", "1.0"), *(("Content-Type", c) for c in content_types)) + (
        CRLF + body
    )


def multipart_body(boundary: str = "XX", parts: tuple[bytes, ...] = ()) -> bytes:
    raw = multipart("mixed", parts or (leaf("text/plain", b"hi"), ATTACHMENT), boundary)
    return raw.partition(b"\r\n\r\n")[2]


# --- conflicting Content-Type and Content-Transfer-Encoding ---------------------------------


@pytest.mark.parametrize(
    "content_types",
    [("text/plain", "text/html"), ("text/html", "text/plain"), ("text/html", "text/html")],
    ids=["plain-then-html", "html-then-plain", "html-twice"],
)
def test_duplicate_content_type_top_level(content_types: tuple[str, ...]) -> None:
    result = assert_deterministic(with_content_type(*content_types, body=HTML + CRLF))
    out = assert_safe(result)
    if content_types[0] == "text/html":
        assert SCRIPT.decode() not in text_of(out)
    assert any("duplicate Content-Type" in d for d in result.report.defects)


def test_multipart_then_text_content_type_removes_the_attachment() -> None:
    raw = with_content_type('multipart/mixed; boundary="XX"', "text/plain", body=multipart_body())
    result = assert_deterministic(raw)
    assert_safe(result, [SECRET])
    assert [p.reason for p in result.report.parts] == [Reason.TEXT_BODY, Reason.POLICY]


def test_text_then_multipart_content_type_is_read_as_text() -> None:
    """The first Content-Type wins: the multipart is text. Its attachment is never decoded
    into a file; its base64 stays visible as text (reported, see the issue note)."""
    raw = with_content_type("text/plain", 'multipart/mixed; boundary="XX"', body=multipart_body())
    result = assert_deterministic(raw)
    out = assert_safe(result)
    assert SECRET.decode() not in text_of(out)
    assert [p.get_content_type() for p in out.walk()] == ["text/plain"]


def test_conflicting_transfer_encodings_in_a_part() -> None:
    part = leaf(
        "text/plain; charset=utf-8",
        base64.b64encode("本文です".encode()),
        extra=[("Content-Transfer-Encoding", "base64"), ("Content-Transfer-Encoding", "7bit")],
    )
    bad_attachment = leaf(
        "application/octet-stream; name=y.bin",
        base64.b64encode(SECRET),
        extra=[
            ("Content-Transfer-Encoding", "quoted-printable"),
            ("Content-Transfer-Encoding", "base64"),
        ],
    )
    result = assert_deterministic(mail(multipart("mixed", [part, bad_attachment])))
    out = assert_safe(result, [SECRET])
    assert "本文です" in text_of(out)
    assert Reason.MALFORMED in result.report.parts[0].findings


def test_duplicate_content_type_in_a_part_html_never_crosses() -> None:
    part = headers(("Content-Type", "text/plain"), ("Content-Type", "text/html")) + CRLF + HTML
    html_first = (
        headers(("Content-Type", "text/html"), ("Content-Type", "text/plain")) + CRLF + HTML
    )
    result = assert_deterministic(mail(multipart("mixed", [part, html_first, ATTACHMENT])))
    assert_safe(result, [SECRET])


# --- boundary tricks ------------------------------------------------------------------------

PARSED = {
    "second-boundary-param-ignored": "multipart/mixed; boundary=XX; boundary=YY",
    "rfc2231-continuation": 'multipart/mixed; boundary*0="X"; boundary*1="X"',
    "spaces-and-semicolons": 'multipart/mixed; boundary = "XX" ;;',
    "rfc2231-extended-ignored": "multipart/mixed; boundary=XX;boundary*=utf-8''YY",
    "unquoted": "multipart/mixed; boundary=XX",
    "folded": 'multipart/mixed;\r\n\tboundary="XX"',
}
AS_TEXT = {
    "empty": 'multipart/mixed; boundary=""',
    "first-of-two-wins": "multipart/mixed; boundary=YY; boundary=XX",
    "encoded-word": 'multipart/mixed; boundary="=?utf-8?q?XX?="',
    "semicolon-inside-quotes": 'multipart/mixed; boundary="XX;"',
    "no-boundary": "multipart/mixed",
}


@pytest.mark.parametrize("content_type", list(PARSED.values()), ids=list(PARSED))
def test_boundary_trick_read_as_multipart_removes_the_attachment(content_type: str) -> None:
    result = assert_deterministic(with_content_type(content_type, body=multipart_body()))
    assert_safe(result, [SECRET])
    assert Reason.POLICY in [p.reason for p in result.report.parts]


@pytest.mark.parametrize("content_type", list(AS_TEXT.values()), ids=list(AS_TEXT))
def test_boundary_trick_not_matching_is_read_as_text(content_type: str) -> None:
    result = assert_deterministic(with_content_type(content_type, body=multipart_body()))
    out = assert_safe(result)
    assert [p.get_content_type() for p in out.walk()] == ["text/plain"]
    assert SECRET.decode() not in text_of(out)
    assert any("boundary" in d or "Boundary" in d for d in result.report.defects)


def test_inner_part_reusing_the_outer_boundary() -> None:
    inner = multipart("mixed", [leaf("text/plain", b"inner"), ATTACHMENT], boundary="XX")
    raw = mail(multipart("mixed", [leaf("text/plain", b"outer"), inner], boundary="XX"))
    result = assert_deterministic(raw)
    assert_safe(result, [SECRET])


def test_boundary_that_is_a_prefix_of_another() -> None:
    inner = multipart("mixed", [leaf("text/plain", b"inner"), ATTACHMENT], boundary="XXY")
    raw = mail(multipart("mixed", [leaf("text/plain", b"outer"), inner], boundary="XX"))
    result = assert_deterministic(raw)
    assert_safe(result, [SECRET])


def test_html_in_a_part_after_a_fake_closing_delimiter() -> None:
    body = (
        b"--XX\r\nContent-Type: text/plain\r\n\r\nhi\r\n--XX--\r\n"
        b"--XX\r\nContent-Type: text/html\r\n\r\n" + HTML + b"\r\n--XX--\r\n"
    )
    result = assert_deterministic(with_content_type('multipart/mixed; boundary="XX"', body=body))
    out = assert_safe(result)
    assert SCRIPT.decode() not in text_of(out)


# --- separators and line breaks -------------------------------------------------------------

SEPARATORS = {
    "lf-only": lambda raw: raw.replace(b"\r\n", b"\n"),
    "cr-only": lambda raw: raw.replace(b"\r\n", b"\r"),
    "mixed": lambda raw: raw.replace(b"\r\n", b"\n", 3),
    "space-line-separator": lambda raw: raw.replace(b"\r\n\r\n", b"\r\n \r\n", 1),
    "no-separator": lambda raw: raw.replace(b"\r\n\r\n", b"\r\n", 1),
    "nul-in-headers": lambda raw: raw.replace(b"Subject: test", b"Subject: te\x00st", 1),
}


@pytest.mark.parametrize("change", list(SEPARATORS.values()), ids=list(SEPARATORS))
def test_separator_and_line_break_variants(change) -> None:  # type: ignore[no-untyped-def]
    raw = change(mail(multipart("mixed", [leaf("text/html", HTML), ATTACHMENT]), *TOP))
    result = assert_deterministic(raw)
    out = assert_safe(result, [SECRET])
    assert SCRIPT.decode() not in text_of(out)


def test_header_line_without_colon_ends_the_headers() -> None:
    """As in Postfix and the stdlib: the rest is body text. The multipart is then text (its
    attachment is never decoded into a file; its base64 is visible as text, see the note)."""
    raw = mail(multipart("mixed", [leaf("text/html", HTML), ATTACHMENT]), *TOP)
    raw = raw.replace(b"Subject", b"Subject-no-colon\r\nSubject", 1)
    result = assert_deterministic(raw)
    out = assert_safe(result)
    assert [p.get_content_type() for p in out.walk()] == ["text/plain"]
    assert SECRET.decode() not in text_of(out)
    assert out["subject"] is None or "test" not in str(out["subject"])


def test_body_that_looks_like_headers_is_not_headers() -> None:
    raw = headers(*TOP) + b"\r\nBcc: victim@example.jp\r\nX-Mukaika-Verdict: deliver\r\n\r\nx\r\n"
    result = assert_deterministic(raw)
    out = assert_safe(result)
    assert out["bcc"] is None
    assert out.get_all("x-mukaika-verdict") == [result.verdict.value]


# --- structure limits -----------------------------------------------------------------------


def test_attached_mails_nested_deeper_than_the_limit() -> None:
    inner = mail(leaf("application/octet-stream; name=z.exe", SECRET, cte="base64"), *TOP)
    for _ in range(40):
        inner = mail(headers(("Content-Type", "message/rfc822")) + CRLF + inner, *TOP)
    result = sanitize(inner)
    assert result.verdict is Verdict.HOLD
    assert Reason.LIMIT_DEPTH in result.report.reasons
    assert_safe(result, [SECRET])


def test_thousands_of_parts_hold_with_limit_parts() -> None:
    raw = mail(multipart("mixed", [leaf("text/plain", b"p")] * 5000))
    result = sanitize(raw)
    assert result.verdict is Verdict.HOLD
    assert Reason.LIMIT_PARTS in result.report.reasons
    assert_safe(result)


def test_thousands_of_empty_parts_under_a_raised_limit_are_read() -> None:
    policy = Policy(limits=Limits(max_parts=10_000))
    raw = mail(multipart("mixed", [leaf("text/plain", b"")] * 3000 + [ATTACHMENT]))
    result = sanitize(raw, policy)
    assert_safe(result, [SECRET])


@pytest.mark.parametrize(
    "block",
    [
        headers(("Subject", "s" * 100_000)),
        headers(*((f"X-Filler-{n}", "v" * 60) for n in range(1500))),
        headers(("Subject", "a"), *(("Received", "from x by y; " + "z" * 50) for _ in range(1500))),
    ],
    ids=["one-100k-header", "many-small-headers", "many-received"],
)
def test_a_100k_header_block_holds_with_limit_header(block: bytes) -> None:
    raw = headers(*TOP) + block + CRLF + b"body\r\n"
    result = sanitize(raw)
    assert result.verdict is Verdict.HOLD
    assert Reason.LIMIT_HEADER in result.report.reasons
    assert_safe(result)


# --- broken encodings -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cte", "body"),
    [
        ("base64", b"!!!!====@@@@\r\n"),
        ("base64", b"QUJD\r\n====\r\nREVG\r\n"),
        ("base64", b"QQ"),
        ("quoted-printable", b"=ZZ=0=\r\n=E3=81=\r\n"),
        ("quoted-printable", b"soft break at the end="),
        ("quoted-printable", b"=00=0D=0ABcc: victim@example.jp=0D=0A"),
        ("x-uuencode", b"begin 644 a\r\nend\r\n"),
        ("8bit", b"\x00\xff\xfe" * 50),
    ],
)
def test_invalid_transfer_encodings_never_break_the_output(cte: str, body: bytes) -> None:
    part = leaf("text/plain; charset=utf-8", body, extra=[("Content-Transfer-Encoding", cte)])
    result = assert_deterministic(mail(multipart("mixed", [part, ATTACHMENT])))
    out = assert_safe(result, [SECRET])
    assert out["bcc"] is None


def test_invalid_base64_in_an_attachment_is_still_removed() -> None:
    broken = base64.b64encode(SECRET * 3)[:-3] + b"!!\r\n"
    part = leaf(
        "application/octet-stream; name=x.exe",
        broken,
        extra=[("Content-Transfer-Encoding", "base64")],
    )
    result = assert_deterministic(mail(multipart("mixed", [leaf("text/plain", b"hi"), part])))
    assert_safe(result, [SECRET])


def test_top_level_message_partial_is_not_delivered() -> None:
    raw = with_content_type('message/partial; id="abc@x"; number=1; total=2', body=SECRET + CRLF)
    result = assert_deterministic(raw)
    assert_safe(result, [SECRET])
    assert Reason.MESSAGE_PARTIAL in [p.reason for p in result.report.parts]


# --- addresses and encoded-words ------------------------------------------------------------

FROMS = {
    "two-mailboxes": "ceo@city.example.lg.jp, attacker@evil.example",
    "at-in-quoted-display-name": '"ceo@city.example.lg.jp" <attacker@evil.example>',
    "at-in-bare-display-name": "ceo@city.example.lg.jp <attacker@evil.example>",
    "address-in-comment": "attacker@evil.example (ceo@city.example.lg.jp)",
    "encoded-display-name-with-angle": (
        "=?utf-8?q?ceo@city.example.lg.jp_<x@y>?= <attacker@evil.example>"
    ),
    "group-syntax": "Staff: ceo@city.example.lg.jp;, attacker@evil.example",
    "null-route": "<@city.example.lg.jp:attacker@evil.example>",
}


@pytest.mark.parametrize("value", list(FROMS.values()), ids=list(FROMS))
def test_from_address_confusion_shows_one_true_sender(value: str) -> None:
    raw = headers(("From", value), ("To", "b@example.lg.jp"), ("Subject", "x")) + CRLF + b"x\r\n"
    result = assert_deterministic(raw)
    out = assert_safe(result)
    sender = out["from"]
    if sender is None:
        return
    addresses = [a.addr_spec for a in sender.addresses]
    assert len(addresses) <= 2
    if "attacker@evil.example" in value and "ceo@city.example.lg.jp" in addresses:
        # Never the impostor alone: the real mailbox is shown beside it.
        assert "attacker@evil.example" in addresses
    for address in sender.addresses:
        assert "@" not in address.display_name or address.display_name == ""


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("From", "=?utf-8?q?Boss=0D=0ABcc:_victim@example.jp?= <boss@example.jp>"),
        (
            "To",
            "=?utf-8?b?"
            + base64.b64encode(b"x\r\nBcc: v@example.jp").decode()
            + "?= <b@example.lg.jp>",
        ),
        ("Subject", "=?iso-2022-jp?q?a=0Db=0Ac?="),
        ("Message-ID", "<a=?utf-8?q?=0D=0ABcc:_v@x?=@example.jp>"),
        ("References", "<a@x>\r\n\t=?utf-8?q?=0D=0ABcc:_v@x?="),
    ],
)
def test_encoded_words_decoding_to_crlf_inject_nothing(name: str, value: str) -> None:
    raw = mail(leaf("text/plain", b"x"), *[p for p in TOP if p[0] != name], (name, value))
    result = assert_deterministic(raw)
    out = assert_safe(result)
    assert out["bcc"] is None
    assert b"\r\nBcc:" not in result.message


def test_filename_decoding_to_crlf_injects_nothing() -> None:
    part = leaf(
        "application/octet-stream",
        SECRET,
        cte="base64",
        extra=[("Content-Disposition", "attachment; filename*=utf-8''a%0D%0ABcc%3A%20v%40x.exe")],
    )
    result = assert_deterministic(mail(multipart("mixed", [leaf("text/plain", b"hi"), part])))
    out = assert_safe(result, [SECRET])
    assert out["bcc"] is None


# --- text that mail readers turn back into files -------------------------------------------


def _uuencode(name: bytes, data: bytes) -> bytes:
    lines = [binascii.b2a_uu(data[i : i + 45]) for i in range(0, len(data), 45)]
    return b"begin 644 " + name + b"\n" + b"".join(lines) + b"`\nend\n"


@pytest.mark.parametrize(
    "block",
    [
        _uuencode(b"invoice.exe", b"MZ\x90\x00" + SECRET),
        b"begin-base64 644 invoice.exe\n" + base64.encodebytes(SECRET) + b"====\n",
        b"=ybegin line=128 size=37 name=invoice.exe\nabcdef\n=yend size=37\n",
        b"(This file must be converted with BinHex 4.0)\n:abcdef:\n",
    ],
    ids=["uuencode", "uuencode-base64", "yenc", "binhex"],
)
@pytest.mark.parametrize("subtype", ["plain", "html"])
def test_inline_encoded_file_in_text_is_disarmed(block: bytes, subtype: str) -> None:
    """Thunderbird and Becky! show a uuencode/yEnc/BinHex block in a text body as an
    attachment: the block must not start a line of the output text."""
    text = b"see below\r\n" + block.replace(b"\n", b"\r\n") + b"thanks\r\n"
    if subtype == "html":
        text = b"<html><body><pre>" + text + b"</pre></body></html>"
    result = assert_deterministic(mail(leaf(f"text/{subtype}; charset=us-ascii", text)))
    out = assert_safe(result)
    for line in text_of(out).splitlines():
        lowered = line.lower()
        assert not lowered.startswith(("begin ", "begin-base64 ", "=ybegin ", "(this file must"))
    again = sanitize(result.message)
    assert text_of(parse(again.message)) == text_of(out)


# --- the standard library parser's known slow inputs ----------------------------------------
# CPython gh-136063 (quadratic header value parser: long token runs, comments, quoted strings,
# encoded-word runs) and bpo-42909 / gh-87075 (";" stuffing in parameters). The pipeline must
# end each within its own limits: a verdict, or a hold with a named limit reason.

SLOW_HEADERS = {
    "semicolon-stuffing": ("Content-Type", "text/plain; a=b" + ";" * 60_000),
    "semicolon-after-open-quote": ("Content-Type", 'text/plain; s="' + ";" * 60_000),
    "nested-comments": ("From", "(" * 30_000 + "a@example.jp"),
    "many-addresses": ("To", ", ".join(f"u{n}@example.lg.jp" for n in range(3_000))),
    "encoded-word-run": ("Subject", "=?utf-8?q?a?= " * 4_000),
    "quoted-string-backslashes": ("From", '"' + "\\a" * 30_000 + '" <a@example.jp>'),
    "dots-in-phrase": ("From", "." * 60_000 + " <a@example.jp>"),
    "disposition-params": ("Content-Disposition", "attachment" + "; a=b" * 10_000),
}


@pytest.mark.parametrize("pair", list(SLOW_HEADERS.values()), ids=list(SLOW_HEADERS))
def test_known_slow_inputs_of_the_stdlib_parser_end_within_the_limits(
    pair: tuple[str, str],
) -> None:
    raw = headers(("Subject", "x"), pair) + CRLF + b"body\r\n"
    result = sanitize(raw)
    assert_safe(result)
    if result.verdict is Verdict.HOLD:
        assert any(r.value.startswith("limit_") for r in result.report.reasons)


# --- espoofer's From header cases (corpus, read in place) ----------------------------------


def _espoofer_from_headers() -> list[bytes]:
    """Every literal ``from_header`` of espoofer's testcases.py (parsed, never executed)."""
    import ast
    import re
    import warnings

    from tests.corpus import require_corpus

    path = require_corpus() / "espoofer" / "testcases.py"
    if not path.is_file():
        pytest.skip(f"{path} is not in the corpus")
    source = path.read_text(encoding="utf-8")
    literals = re.findall(r'"from_header":\s*(b"(?:[^"\\]|\\.)*")\s*,', source)
    found = []
    for literal in literals:
        with warnings.catch_warnings():  # espoofer writes "\," in a bytes literal
            warnings.simplefilter("ignore")
            value = ast.literal_eval(literal)
        if value not in found:
            found.append(value)
    assert len(found) >= 10
    return found


@pytest.mark.corpus
def test_espoofer_from_headers_give_at_most_one_from_and_no_injection() -> None:
    for from_header in _espoofer_from_headers():
        raw = from_header + b"To: <victim@example.lg.jp>\r\nSubject: espoofer\r\n\r\n" + b"body\r\n"
        result = assert_deterministic(raw)
        out = assert_safe(result)
        assert len(out.get_all("from") or []) <= 1, from_header
        sender = out["from"]
        if sender is not None:
            for address in sender.addresses:
                assert "@" not in address.display_name, from_header
