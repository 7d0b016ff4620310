"""The outbound checks (pure): My Number, keywords, files, recipients, forwarding; and Bcc
conversion."""

from __future__ import annotations

import email
from email.message import EmailMessage
from email.policy import default as default_policy

import pytest

from sanitizers.bcc_conversion import UNDISCLOSED, convert_to_bcc
from sanitizers.errors import TemporaryFailure
from sanitizers.outbound_checks import check_outbound
from sanitizers.policy import Policy
from sanitizers.vocabulary import Reason, Verdict
from tests.sanitizers.cdr.encrypted_fixtures import zipcrypto_zip
from tests.sanitizers.document_fixtures import docx, pdf, xlsx, zip_of

NUMBER = "621498320257"
INTERNAL = "city.example.lg.jp"


def outside(address: str) -> bool:
    return not address.lower().endswith("@" + INTERNAL)


def mail(
    text: str = "お世話になっております。",
    *,
    subject: str = "資料送付",
    to: list[str] | None = None,
    cc: list[str] | None = None,
    files: list[tuple[str, bytes]] = (),  # type: ignore[assignment]
    headers: dict[str, str] | None = None,
) -> bytes:
    message = EmailMessage()
    message["From"] = "山田 <yamada@city.example.lg.jp>"
    message["To"] = ", ".join(to or ["partner@example.co.jp"])
    if cc:
        message["Cc"] = ", ".join(cc)
    message["Subject"] = subject
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(text)
    for name, data in files:
        message.add_attachment(data, maintype="application", subtype="octet-stream", filename=name)
    return message.as_bytes()


def run(raw: bytes, policy: Policy | None = None, recipients: list[str] | None = None):  # type: ignore[no-untyped-def]
    return check_outbound(
        raw,
        policy or Policy(),
        recipients=recipients or ["partner@example.co.jp"],
        is_outside=outside,
    )


def with_outbound(**checks: object) -> Policy:
    return Policy.model_validate({"outbound": checks})


def test_plain_mail_passes() -> None:
    report = run(mail())
    assert report.verdict is Verdict.DELIVER
    assert report.findings == []


@pytest.mark.parametrize(
    "files",
    [
        [("名簿.xlsx", xlsx([["氏名", "個人番号"], ["山田", int(NUMBER)]]))],
        [("a.docx", docx([f"マイナンバー {NUMBER}"]))],
        [("a.pdf", pdf([f"My Number {NUMBER}"]))],
        [("a.zip", zip_of({"x/名簿.csv": f"氏名,個人番号\n山田,{NUMBER}\n".encode("cp932")}))],
    ],
)
def test_my_number_in_an_attachment_holds(files: list[tuple[str, bytes]]) -> None:
    report = run(mail(files=files))
    assert report.verdict is Verdict.HOLD
    assert report.reasons == [Reason.PERSONAL_NUMBER]
    assert NUMBER not in repr(report.to_dict())  # masked


def test_my_number_in_the_body_or_subject_by_policy() -> None:
    assert run(mail(f"個人番号：{NUMBER}")).reasons == [Reason.PERSONAL_NUMBER]
    assert run(mail(subject=f"マイナンバー {NUMBER}")).reasons == [Reason.PERSONAL_NUMBER]
    assert run(mail(f"個人番号：{NUMBER}"), with_outbound(personal_number="reject")).verdict is (
        Verdict.REJECT
    )
    assert run(mail(f"個人番号：{NUMBER}"), with_outbound(personal_number="pass")).verdict is (
        Verdict.DELIVER
    )
    assert run(mail(f"注文番号：{NUMBER}")).verdict is Verdict.DELIVER


def test_encrypted_and_unreadable_attachments() -> None:
    ppap = mail(files=[("秘.zip", zipcrypto_zip({"a.txt": b"x"}))])
    assert run(ppap).reasons == [Reason.ENCRYPTED_ARCHIVE]
    assert run(ppap).verdict is Verdict.HOLD
    assert run(ppap, with_outbound(unreadable="reject")).verdict is Verdict.REJECT
    locked = mail(files=[("a.pdf", pdf(["x"], password="pw"))])
    assert run(locked).reasons == [Reason.ENCRYPTED]
    broken = mail(files=[("a.xlsx", b"PK\x03\x04broken")])
    assert run(broken).reasons == [Reason.UNREADABLE]


def test_keywords_and_patterns() -> None:
    policy = with_outbound(
        keywords=["極秘"], patterns=[r"\bCONFIDENTIAL\b"], keyword_action="reject"
    )
    assert run(mail("これは極秘です"), policy).reasons == [Reason.KEYWORD]
    assert run(mail("これは極秘です"), policy).verdict is Verdict.REJECT
    assert run(mail(files=[("a.docx", docx(["ＣＯＮＦＩＤＥＮＴＩＡＬ"]))]), policy).verdict is (
        Verdict.DELIVER  # the pattern is not width-folded; the keyword list is
    )
    assert run(
        mail(files=[("a.docx", docx(["ＣＯＮＦＩＤＥＮＴＩＡＬ 極秘"]))]), policy
    ).reasons == [Reason.KEYWORD]
    assert run(mail("ok"), policy).verdict is Verdict.DELIVER


def test_file_types_and_sizes() -> None:
    sheet = [("a.xlsx", xlsx([["a"]]))]
    assert run(mail(files=sheet), with_outbound(file_kinds=["ooxml"])).reasons == [Reason.FILE_TYPE]
    assert run(mail(files=sheet), with_outbound(file_extensions=["XLSX"])).reasons == [
        Reason.FILE_TYPE
    ]
    big = [("a.txt", b"x" * 2000)]
    assert run(mail(files=big), with_outbound(max_attachment_bytes=1000)).reasons == [
        Reason.LIMIT_SIZE
    ]


def test_recipient_domains_and_counts() -> None:
    policy = with_outbound(recipient_domains=["*.freemail.example"], max_outside_recipients=2)
    report = run(mail(), policy, ["a@x.freemail.example", f"b@{INTERNAL}"])
    assert report.reasons == [Reason.RECIPIENT_DOMAIN]
    many = [f"p{i}@example.com" for i in range(3)] + [f"s{i}@{INTERNAL}" for i in range(5)]
    assert run(mail(), policy, many).reasons == [Reason.RECIPIENT_COUNT]


@pytest.mark.parametrize(
    "headers",
    [
        {"Auto-Submitted": "auto-forwarded"},
        {"Resent-From": "yamada@city.example.lg.jp"},
        {"X-MS-Exchange-Inbox-Rules-Loop": "yamada@city.example.lg.jp"},
    ],
)
def test_automatic_forwarding_to_the_outside_is_refused(headers: dict[str, str]) -> None:
    report = run(mail(headers=headers))
    assert report.reasons == [Reason.AUTO_FORWARD]
    assert report.verdict is Verdict.REJECT
    internal_only = run(mail(headers=headers), recipients=[f"b@{INTERNAL}"])
    assert internal_only.verdict is Verdict.DELIVER
    assert run(mail(headers=headers), with_outbound(auto_forward="pass")).verdict is (
        Verdict.DELIVER
    )


def test_malware_scan_rejects_and_a_scanner_outage_escapes() -> None:
    raw = mail(files=[("a.bin", b"payload")])

    def hit(data: bytes, name: str) -> str | None:
        return "Eicar-Test-Signature" if data == b"payload" else None

    report = check_outbound(
        raw, Policy(), recipients=["p@example.com"], is_outside=outside, scan=hit
    )
    assert report.reasons == [Reason.MALWARE]
    assert report.verdict is Verdict.REJECT

    def down(data: bytes, name: str) -> str | None:
        raise TemporaryFailure("clamd down")

    with pytest.raises(TemporaryFailure):
        check_outbound(raw, Policy(), recipients=["p@example.com"], is_outside=outside, scan=down)


def test_a_limit_holds_and_garbage_never_raises() -> None:
    policy = Policy.model_validate({"limits": {"max_parts": 2}})
    raw = mail(files=[("a.txt", b"a"), ("b.txt", b"b"), ("c.txt", b"c")])
    assert run(raw, policy).verdict is Verdict.HOLD
    for garbage in (b"", b"\x00" * 100, b"Content-Type: multipart/mixed\r\n\r\n--", b"\xff" * 5000):
        assert run(garbage).verdict in (Verdict.DELIVER, Verdict.HOLD)


# --- Bcc conversion ------------------------------------------------------------------------


def test_many_outside_recipients_leave_to_and_cc() -> None:
    outside_to = [f"p{i}@example.com" for i in range(20)]
    raw = mail(to=[*outside_to, f"kacho@{INTERNAL}"], cc=["x@example.net", f"b@{INTERNAL}"])
    converted, removed = convert_to_bcc(raw, threshold=10, is_outside=outside)
    assert removed == 21
    parsed = email.message_from_bytes(converted, policy=default_policy)
    assert parsed["To"] == f"kacho@{INTERNAL}"
    assert parsed["Cc"] == f"b@{INTERNAL}"
    body_before = raw.partition(b"\n\n")[2]
    assert converted.endswith(body_before)  # the body is the sender's bytes
    assert parsed["Subject"] == "資料送付"


def test_only_outside_recipients_become_undisclosed() -> None:
    raw = mail(to=[f"p{i}@example.com" for i in range(5)], cc=["q@example.com"])
    converted, removed = convert_to_bcc(raw, threshold=3, is_outside=outside)
    assert removed == 6
    parsed = email.message_from_bytes(converted, policy=default_policy)
    assert str(parsed["To"]) == UNDISCLOSED
    assert parsed["Cc"] is None


def test_at_or_below_the_threshold_nothing_changes() -> None:
    raw = mail(to=[f"p{i}@example.com" for i in range(3)])
    assert convert_to_bcc(raw, threshold=3, is_outside=outside) == (raw, 0)
    assert convert_to_bcc(raw, threshold=0, is_outside=outside) == (raw, 0)


def test_japanese_display_names_and_quoted_commas_are_kept_as_written() -> None:
    raw = (
        b'From: a@city.example.lg.jp\r\nTo: "Suzuki, Taro" <s@example.com>, '
        b"=?UTF-8?B?5bGx55Sw?= <yamada@city.example.lg.jp>,\r\n p2@example.com\r\n"
        b"Subject: x\r\n\r\nbody\r\n"
    )
    converted, removed = convert_to_bcc(raw, threshold=1, is_outside=outside)
    assert removed == 2
    assert b"To: =?UTF-8?B?5bGx55Sw?= <yamada@city.example.lg.jp>\r\n" in converted
    assert converted.endswith(b"\r\n\r\nbody\r\n")
