"""The text-only pipeline end to end, on mail built in code."""

from __future__ import annotations

import base64
import hashlib
import io
import struct
from email import message_from_bytes
from email.policy import compat32

import pytest

from sanitizers.cdr.base import CdrOutcome
from sanitizers.charsets import decode_body, decode_header
from sanitizers.errors import TemporaryFailure
from sanitizers.pipeline import sanitize_message
from sanitizers.policy import (
    AttachmentAction,
    AttachmentPolicy,
    BodyPolicy,
    Limits,
    NoticePolicy,
    OutputPolicy,
)
from sanitizers.policy import Policy as PolicyModel
from sanitizers.vocabulary import Action, Reason, RemovedItem, Verdict
from tests.mailfactory import (
    ISO2022JP_CP932_BYTES,
    ISO2022JP_CP932_TEXT,
    body_text,
    headers,
    leaf,
    mail,
    multipart,
    parse,
    text_mail,
)

POLICY = PolicyModel()
# The text-only policy (メールテキスト化方式): every attachment removed.
TEXT_ONLY = PolicyModel(attachments=AttachmentPolicy(by_kind={}))
ALLOWED = {
    "from",
    "to",
    "cc",
    "reply-to",
    "subject",
    "date",
    "message-id",
    "in-reply-to",
    "references",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    "x-mukaika-verdict",
    "x-mukaika-summary",
    "x-mukaika-reference",
}
JP = "お世話になっております。①㈱～髙﨑の件、ご確認ください。"


def run(raw: bytes, policy: PolicyModel = POLICY, **kwargs: object):  # type: ignore[no-untyped-def]
    return sanitize_message(raw, policy, **kwargs)  # type: ignore[arg-type]


def header_names(raw: bytes) -> set[str]:
    return {name.lower() for name in parse(raw)}


class FakeDisarmer:
    """Returns a fixed outcome, and records what it was asked."""

    def __init__(self, outcome: CdrOutcome | Exception) -> None:
        self.outcome = outcome
        self.calls: list[tuple[str, str, AttachmentAction]] = []

    def disarm(self, untrusted_data, filename, kind, action, policy, *, charset=None, passwords=()):  # type: ignore[no-untyped-def]
        self.calls.append((filename, kind, action))
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return self.outcome


# -- bodies and Japanese text -------------------------------------------------------------


@pytest.mark.parametrize("charset", ["utf-8", "shift_jis", "cp932", "euc-jp"])
def test_japanese_text_body_is_exact_in_every_charset(charset: str) -> None:
    # Shift_JIS and EUC-JP proper have no NEC/IBM extensions (CP932 and CP51932 do).
    text = JP if charset in ("utf-8", "cp932") else "お世話になっております。会議の件"
    result = run(text_mail(text + "\n", charset))
    assert result.verdict is Verdict.DELIVER
    assert body_text(result.message) == text + "\n"
    assert result.report.parts[0].action is Action.KEPT


def test_iso2022jp_with_cp932_characters_in_body_and_subject() -> None:
    encoded_subject = "=?ISO-2022-JP?B?" + base64.b64encode(ISO2022JP_CP932_BYTES).decode() + "?="
    raw = mail(
        leaf("text/plain; charset=ISO-2022-JP", ISO2022JP_CP932_BYTES + b"\r\n", cte="7bit"),
        ("From", "a@example.jp"),
        ("Subject", encoded_subject),
    )
    result = run(raw)
    assert body_text(result.message) == ISO2022JP_CP932_TEXT + "\n"
    assert parse(result.message)["subject"] == ISO2022JP_CP932_TEXT
    assert result.report.subject == ISO2022JP_CP932_TEXT
    assert Reason.LOSSY_DECODE not in result.report.reason_codes()


def test_plain_mail_gets_no_notice_and_only_allowlisted_headers() -> None:
    raw = mail(
        leaf("text/plain; charset=utf-8", JP.encode()),
        ("From", "Sender <sender@example.jp>"),
        ("To", "staff@city.example.lg.jp"),
        ("Subject", "hello"),
        ("Received", "from evil by x"),
        ("X-Mukaika-Verdict", "deliver"),
        ("X-Mailer", "spam"),
        ("Content-Disposition", "inline"),
    )
    result = run(raw)
    out = parse(result.message)
    assert header_names(result.message) <= ALLOWED
    assert out.get_all("x-mukaika-verdict") == ["deliver"]
    assert "received" not in header_names(result.message)
    assert "無害化" not in body_text(result.message)


def test_html_only_mail_becomes_text_with_notice() -> None:
    html = "<html><body><p>会議の<b>資料</b></p><script>alert(1)</script>"
    html += '<a href="http://example.jp/x">こちら</a></body></html>'
    result = run(mail(leaf("text/html; charset=utf-8", html.encode())))
    text = body_text(result.message)
    assert "会議の資料" in text
    assert "alert" not in text
    assert "http://example.jp/x" in text
    assert "無害化処理のお知らせ" in text
    assert result.report.parts[0].action is Action.CONVERTED
    assert result.report.parts[0].reason is Reason.HTML_BODY
    assert all(p.get_content_type() != "text/html" for p in parse(result.message).walk())


def test_defanged_links_by_policy() -> None:
    policy = PolicyModel(body=BodyPolicy(links="defang"))  # type: ignore[arg-type]
    html = b'<a href="https://evil.example/login">login</a>'
    text = body_text(run(mail(leaf("text/html; charset=utf-8", html)), policy).message)
    assert "hxxps://" in text
    assert "https://" not in text


def test_alternative_prefers_plain_and_is_not_news() -> None:
    raw = mail(
        multipart(
            "alternative",
            [
                leaf("text/plain; charset=utf-8", "テキスト版".encode()),
                leaf("text/html; charset=utf-8", "<p>HTML版</p>".encode()),
            ],
        )
    )
    result = run(raw)
    text = body_text(result.message)
    assert text.strip() == "テキスト版"
    assert [p.reason for p in result.report.parts] == [Reason.TEXT_BODY, Reason.ALTERNATIVE]


def test_alternative_with_empty_plain_uses_html() -> None:
    raw = mail(
        multipart(
            "alternative",
            [leaf("text/plain; charset=utf-8", b"  \r\n"), leaf("text/html", b"<p>HTML only</p>")],
        )
    )
    assert "HTML only" in body_text(run(raw).message)


def test_prefer_plain_off_reads_html() -> None:
    policy = PolicyModel(body=BodyPolicy(prefer_plain=False))
    raw = mail(
        multipart(
            "alternative",
            [leaf("text/plain", b"plain version"), leaf("text/html", b"<p>html version</p>")],
        )
    )
    assert "html version" in body_text(run(raw, policy).message)


def test_other_text_types_by_policy() -> None:
    raw = mail(
        multipart(
            "mixed",
            [leaf("text/plain", b"main"), leaf("text/enriched", b"<bold>extra words</bold>")],
        )
    )
    assert "extra words" in body_text(run(raw).message)
    policy = PolicyModel(body=BodyPolicy(other_text="remove"))
    result = run(raw, policy)
    assert "extra words" not in body_text(result.message)
    assert result.report.parts[1].action is Action.REMOVED


# -- attachments --------------------------------------------------------------------------

JP_NAME = "見積書①.docm"


def attachment_mail(data: bytes, name_param: str, content_type: str) -> bytes:
    return mail(
        multipart(
            "mixed",
            [
                leaf("text/plain; charset=utf-8", "添付をご確認ください。".encode()),
                leaf(
                    content_type,
                    data,
                    cte="base64",
                    extra=[("Content-Disposition", f"attachment; {name_param}")],
                ),
            ],
        )
    )


def rfc2231(name: str) -> str:
    from urllib.parse import quote

    return "filename*=UTF-8''" + quote(name.encode())


def test_attachment_removed_with_notice_and_report() -> None:
    data = b"PK\x03\x04" + b"\x00" * 100
    result = run(attachment_mail(data, rfc2231(JP_NAME), "application/octet-stream"), TEXT_ONLY)
    out = parse(result.message)
    assert not out.is_multipart()
    part = result.report.parts[1]
    assert part.action is Action.REMOVED
    assert part.reason is Reason.POLICY
    assert part.filename == JP_NAME
    assert part.sha256 == hashlib.sha256(data).hexdigest()
    assert part.size == len(data)
    text = body_text(result.message)
    assert JP_NAME in text
    assert part.sha256 in text
    assert "削除" in text


def minimal_pe() -> bytes:
    """DOS header whose e_lfanew points at a PE signature: enough for libmagic."""
    return b"MZ" + b"\x00" * 58 + struct.pack("<I", 64) + b"PE\x00\x00" + b"\x00" * 200


def test_executable_disguised_as_pdf_is_removed_with_the_mismatch_recorded() -> None:
    result = run(attachment_mail(minimal_pe(), 'filename="invoice.pdf"', "application/pdf"))
    part = result.report.parts[1]
    assert part.kind == "executable"
    assert part.action is Action.REMOVED
    assert part.reason is Reason.EXECUTABLE
    assert Reason.TYPE_MISMATCH in part.findings
    assert b"PE\x00\x00" not in result.message


def test_mismatch_across_kinds_is_recorded_and_content_decides() -> None:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (2, 2)).save(buffer, "PNG")
    docx_type = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    png_named_docx = attachment_mail(buffer.getvalue(), 'filename="a.docx"', docx_type)
    part = run(png_named_docx, TEXT_ONLY).report.parts[1]
    assert Reason.TYPE_MISMATCH in part.findings
    assert part.kind == "image"
    assert part.detected_type == "image/png"


def test_same_kind_difference_is_not_a_mismatch() -> None:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (2, 2)).save(buffer, "PNG")
    png_named_jpg = attachment_mail(buffer.getvalue(), 'filename="a.jpg"', "image/jpeg")
    part = run(png_named_jpg, TEXT_ONLY).report.parts[1]
    assert Reason.TYPE_MISMATCH not in part.findings
    assert part.detected_type == "image/png"


def test_sanitized_attachment_is_attached_with_japanese_name() -> None:
    disarmer = FakeDisarmer(
        CdrOutcome(
            action=Action.SANITIZED,
            reason=Reason.MACRO,
            data=b"clean bytes",
            filename="見積書①.docx",
            content_type="application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            removed=(RemovedItem.VBA,),
        )
    )
    raw = attachment_mail(b"PK\x03\x04 fake", rfc2231(JP_NAME), "application/octet-stream")
    result = run(raw, disarmer=disarmer)
    out = parse(result.message)
    attachments = list(out.iter_attachments())  # type: ignore[attr-defined]
    assert len(attachments) == 1
    assert attachments[0].get_filename() == "見積書①.docx"
    assert attachments[0].get_content() == b"clean bytes"
    assert disarmer.calls[0][0] == JP_NAME
    text = body_text(result.message)
    assert "VBAマクロ" in text
    assert result.report.parts[1].removed == ["vba"]


def test_disarmer_temporary_failure_escapes() -> None:
    raw = attachment_mail(b"data", 'filename="a.bin"', "application/octet-stream")
    with pytest.raises(TemporaryFailure):
        run(raw, disarmer=FakeDisarmer(TemporaryFailure("clamd down")))


def test_disarmer_crash_holds_the_message() -> None:
    raw = attachment_mail(b"data", 'filename="a.bin"', "application/octet-stream")
    result = run(raw, disarmer=FakeDisarmer(RuntimeError("boom")))
    assert result.verdict is Verdict.HOLD
    assert Reason.ERROR in result.report.reasons
    assert b"data" not in result.message


def test_held_part_holds_the_message() -> None:
    disarmer = FakeDisarmer(CdrOutcome(action=Action.HELD, reason=Reason.ENCRYPTED_ARCHIVE))
    raw = attachment_mail(b"PK\x03\x04", 'filename="a.zip"', "application/zip")
    result = run(raw, disarmer=disarmer)
    assert result.verdict is Verdict.HOLD
    assert Reason.ENCRYPTED_ARCHIVE in result.report.reasons
    text = body_text(result.message)
    # Held for a password: the notice that asks for it, naming the file and why.
    assert "【パスワード入力待ちのお知らせ】" in text
    assert "→ 保留: パスワード付きの圧縮ファイルで検査できないため" in text


def test_a_part_held_for_another_reason_gets_the_plain_held_notice() -> None:
    disarmer = FakeDisarmer(CdrOutcome(action=Action.HELD, reason=Reason.MALWARE))
    raw = attachment_mail(b"PK\x03\x04", 'filename="a.zip"', "application/zip")
    policy = PolicyModel(hold_reasons=frozenset({Reason.MALWARE}))
    result = run(raw, disarmer=disarmer, policy=policy)
    assert result.verdict is Verdict.HOLD
    text = body_text(result.message)
    assert "【保留のお知らせ】" in text
    assert "保留の理由: " in text


# -- headers ------------------------------------------------------------------------------


def test_encoded_word_crlf_cannot_inject_headers() -> None:
    evil = "=?utf-8?q?hello=0D=0ABcc:_victim@example.jp=0D=0A?="
    raw = text_mail("x", "utf-8", ("From", "a@example.jp"), ("Subject", evil))
    result = run(raw)
    assert "bcc" not in header_names(result.message)
    assert b"\r\nBcc:" not in result.message
    assert "victim@example.jp" in parse(result.message)["subject"]


def test_display_name_that_looks_like_an_address_is_dropped() -> None:
    raw = text_mail(
        "x", "utf-8", ("From", '"=?utf-8?b?Y2hpZWZAY2l0eS5sZy5qcA==?=" <attacker@evil.example>')
    )
    result = run(raw)
    assert str(parse(result.message)["from"]) == "attacker@evil.example"


def test_encoded_word_cannot_add_a_mailbox() -> None:
    evil = "=?utf-8?q?a=2C_b@evil.example?= <real@example.jp>"
    result = run(text_mail("x", "utf-8", ("To", evil)))
    addresses = parse(result.message)["to"].addresses
    assert [a.addr_spec for a in addresses] == ["real@example.jp"]


def test_duplicate_from_uses_the_first_and_records_it() -> None:
    raw = text_mail("x", "utf-8", ("From", "first@example.jp"), ("From", "second@example.jp"))
    result = run(raw)
    assert parse(result.message).get_all("from") == ["first@example.jp"]
    assert any("more than once" in d for d in result.report.defects)


def test_subject_tag_is_added_once() -> None:
    policy = PolicyModel(output=OutputPolicy(subject_tag="[外部]"))
    first = run(text_mail("x", "utf-8", ("Subject", "会議")), policy)
    assert parse(first.message)["subject"] == "[外部] 会議"
    second = run(first.message, policy)
    assert parse(second.message)["subject"] == "[外部] 会議"


def test_iso2022jp_output_is_selectable() -> None:
    policy = PolicyModel(output=OutputPolicy(charset="iso-2022-jp"))
    result = run(text_mail(JP + "\n", "utf-8", ("Subject", JP)), policy)
    out = parse(result.message)
    assert out.get_content_charset() == "iso-2022-jp"
    assert result.message.isascii()
    # Python's iso2022_jp codec lacks the CP932 extensions Japanese mailers use: read with ours.
    payload = out.get_payload(decode=True)
    assert decode_body(payload, "iso-2022-jp").text.replace("\r\n", "\n") == JP + "\n"
    raw_subject = message_from_bytes(result.message, policy=compat32)["Subject"]
    assert decode_header(raw_subject).text == JP


def test_english_notice_is_selectable() -> None:
    policy = PolicyModel(notice=NoticePolicy(language="en"))
    text = body_text(run(mail(leaf("text/html", b"<p>x</p>")), policy).message)
    assert "Sanitization notice" in text


def test_operator_template_replaces_the_wording(tmp_path) -> None:  # type: ignore[no-untyped-def]
    template = tmp_path / "notice.txt"
    template.write_text("\n--- 庁内ルール: ${parts}\n", encoding="utf-8")
    policy = PolicyModel(notice=NoticePolicy(template=str(template)))
    text = body_text(run(mail(leaf("text/html", b"<p>x</p>")), policy).message)
    assert "--- 庁内ルール: ■" in text


# -- structure and limits -----------------------------------------------------------------


def test_attached_message_is_flattened_under_a_separator() -> None:
    inner = text_mail("内側の本文", "utf-8", ("From", "inner@example.jp"), ("Subject", "内側"))
    raw = mail(
        multipart(
            "mixed",
            [
                leaf("text/plain", b"outer"),
                headers(("Content-Type", "message/rfc822")) + b"\r\n" + inner,
            ],
        )
    )
    result = run(raw)
    text = body_text(result.message)
    assert "添付されたメール" in text
    assert "Subject: 内側" in text
    assert "内側の本文" in text


def test_message_partial_is_removed() -> None:
    raw = mail(
        multipart(
            "mixed",
            [leaf("text/plain", b"x"), leaf('message/partial; id="a"; number=1; total=2', b"Z")],
        )
    )
    result = run(raw)
    assert result.report.parts[1].reason is Reason.MESSAGE_PARTIAL


@pytest.mark.parametrize(
    ("limits", "raw", "reason"),
    [
        (Limits(max_message_bytes=100), text_mail("x" * 200), Reason.LIMIT_SIZE),
        (
            Limits(max_header_bytes=200),
            text_mail("x", "utf-8", ("Subject", "y" * 300)),
            Reason.LIMIT_HEADER,
        ),
        (Limits(max_line_bytes=50), text_mail("x" * 60), Reason.LIMIT_LINE),
        (
            Limits(max_parts=3),
            mail(multipart("mixed", [leaf("text/plain", b"a")] * 5)),
            Reason.LIMIT_PARTS,
        ),
        (Limits(seconds=1e-9), text_mail("x"), Reason.LIMIT_TIME),
    ],
)
def test_limits_hold_the_message(limits: Limits, raw: bytes, reason: Reason) -> None:
    result = run(raw, PolicyModel(limits=limits))
    assert result.verdict is Verdict.HOLD
    assert reason in result.report.reasons
    out = parse(result.message)
    assert out["subject"].startswith("[保留]")
    assert "保留の理由" in body_text(result.message)


def test_nesting_deeper_than_the_limit_holds() -> None:
    part = leaf("text/plain", b"deep")
    for level in range(30):
        part = multipart("mixed", [part], boundary=f"b{level}")
    result = run(mail(part), PolicyModel(limits=Limits(max_depth=10)))
    assert result.verdict is Verdict.HOLD
    assert Reason.LIMIT_DEPTH in result.report.reasons


def test_broken_base64_is_repaired_and_recorded() -> None:
    raw = mail(leaf("text/plain; charset=utf-8", b"5pel5pys6Kqe!!!\r\n44Gn", cte="base64x"))
    raw = raw.replace(b"base64x", b"base64")
    result = run(raw)
    assert Reason.MALFORMED in result.report.parts[0].findings
    assert body_text(result.message).startswith("日本語")


def test_conflicting_transfer_encodings_use_the_first() -> None:
    body = base64.b64encode("本文".encode())
    raw = mail(
        leaf(
            "text/plain; charset=utf-8",
            body,
            extra=[("Content-Transfer-Encoding", "base64"), ("Content-Transfer-Encoding", "8bit")],
        )
    )
    result = run(raw)
    assert body_text(result.message).startswith("本文\n")
    assert Reason.MALFORMED in result.report.parts[0].findings


def test_missing_boundary_reads_the_part_as_text() -> None:
    raw = mail(headers(("Content-Type", "multipart/mixed")) + b"\r\nsome text\r\n")
    result = run(raw)
    assert result.verdict is Verdict.DELIVER
    assert "some text" in body_text(result.message)


def test_garbage_never_raises() -> None:
    for raw in [
        b"",
        b"\x00\xff" * 100,
        b"\r\n\r\n",
        b"Content-Type: multipart/mixed; boundary=\r\n\r\n--\r\n",
    ]:
        result = run(raw)
        assert result.verdict in (Verdict.DELIVER, Verdict.HOLD)
        parse(result.message)


def test_resanitizing_changes_nothing() -> None:
    html = "<p>資料①</p><img alt='図'>".encode()
    raw = attachment_mail(b"MZ\x90\x00", rfc2231("a.exe"), "application/octet-stream")
    raw = mail(
        multipart("mixed", [leaf("text/html; charset=utf-8", html), raw.split(b"\r\n", 6)[-1]])
    )
    first = run(raw)
    second = run(first.message)
    assert body_text(second.message) == body_text(first.message)
    strip = [k for k in ("subject", "from", "to", "date", "message-id")]
    for key in strip:
        assert parse(second.message)[key] == parse(first.message)[key]


@pytest.mark.parametrize(
    "name_param",
    [
        # RFC 2231 in ISO-2022-JP carrying CP932 characters (①㈱～).
        "filename*=ISO-2022-JP''%1B%24B-%21-j%21A%1B%28B.txt",
        # RFC 2047 inside the quoted value, as many Japanese mailers still write it.
        'filename="=?ISO-2022-JP?B?GyRCLSEtaiFBGyhC?=.txt"',
        # Raw 8-bit CP932 bytes, no encoding at all.
        'filename="' + "①㈱～".encode("cp932").decode("latin-1") + '.txt"',
    ],
)
def test_japanese_attachment_names_decode_exactly(name_param: str) -> None:
    # The factory writes headers as UTF-8; put the raw bytes back as a mailer would send them.
    raw = attachment_mail(b"hello", name_param, "text/plain")
    raw = raw.replace(name_param.encode("utf-8"), name_param.encode("latin-1"))
    result = run(raw, TEXT_ONLY)
    assert result.report.parts[1].filename == "①㈱～.txt"
    assert "①㈱～.txt" in body_text(result.message)


def test_bidi_override_controls_cannot_disguise_subject_or_body() -> None:
    disguised = "請求書\u202efdp.exe"
    result = run(text_mail(f"添付: {disguised}\n", "utf-8", ("Subject", disguised)))
    out = parse(result.message)
    assert out["subject"] == "請求書fdp.exe"
    assert body_text(result.message) == "添付: 請求書fdp.exe\n"
    assert any("bidi" in note for note in result.report.defects)
