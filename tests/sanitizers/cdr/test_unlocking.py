"""Password-protected files (PPAP): held awaiting a password, opened with the right one and
disarmed like any other file, refused with a wrong one; hold_reasons fails closed.

Every encrypted file is built in code (:mod:`tests.sanitizers.cdr.encrypted_fixtures`).
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from email.message import EmailMessage

import pikepdf
import pytest

from sanitizers.cdr.isolation import IsolatedDisarmer
from sanitizers.cdr.registry import InProcessDisarmer
from sanitizers.cdr.settings import CdrPolicy
from sanitizers.notice import render_notice
from sanitizers.pipeline import sanitize_message
from sanitizers.policy import NoticePolicy, Policy
from sanitizers.report import SanitizeResult
from sanitizers.vocabulary import Action, Reason, RemovedItem, Verdict
from tests.sanitizers.cdr import encrypted_fixtures as enc
from tests.sanitizers.cdr import office_fixtures as office

WRONG = "not-the-password"


def _docm_zip_entries() -> dict[str, bytes]:
    return {"資料/議事録.docm": office.docm_with_vba(), "readme.txt": enc.TEXT.encode()}


# name, builder (password -> bytes), reason
CASES: dict[str, tuple[str, Callable[[str], bytes], Reason]] = {
    "zipcrypto": (
        "資料.zip",
        lambda pw: enc.zipcrypto_zip(_docm_zip_entries(), pw),
        Reason.ENCRYPTED_ARCHIVE,
    ),
    "aes": ("資料.zip", lambda pw: enc.aes_zip(_docm_zip_entries(), pw), Reason.ENCRYPTED_ARCHIVE),
    "7z": ("資料.7z", lambda pw: enc.sevenzip(_docm_zip_entries(), pw), Reason.ENCRYPTED_ARCHIVE),
    "7z-names": (
        "資料.7z",
        lambda pw: enc.sevenzip(_docm_zip_entries(), pw, names=True),
        Reason.ENCRYPTED_ARCHIVE,
    ),
    "docx": (
        "議事録.docx",
        lambda pw: enc.encrypted_office(enc.padded_docx(), pw),
        Reason.ENCRYPTED,
    ),
    "xlsx": (
        "集計.xlsx",
        lambda pw: enc.encrypted_office(enc.padded_xlsx_with_link(), pw),
        Reason.ENCRYPTED,
    ),
    "pdf": ("案内.pdf", lambda pw: enc.encrypted_pdf(pw), Reason.ENCRYPTED),
}


ARCHIVES = frozenset({"zipcrypto", "aes", "7z", "7z-names"})


def _mail(name: str, data: bytes) -> bytes:
    message = EmailMessage()
    message["From"] = "partner@example.com"
    message["To"] = "staff@city.example.lg.jp"
    message["Subject"] = "資料送付"
    message.set_content(enc.TEXT)
    message.add_attachment(data, maintype="application", subtype="octet-stream", filename=name)
    return message.as_bytes()


def _run(
    raw: bytes, passwords: tuple[str, ...] = (), policy: Policy | None = None
) -> SanitizeResult:
    return sanitize_message(
        raw,
        policy or Policy(),
        disarmer=InProcessDisarmer(),
        reference="REF-1",
        passwords=passwords,
    )


def _attachment(result: SanitizeResult) -> tuple[str, bytes]:
    from email import message_from_bytes, policy

    message = message_from_bytes(result.message, policy=policy.default)
    for part in message.iter_attachments():
        payload = part.get_payload(decode=True)
        assert isinstance(payload, bytes)
        return str(part.get_filename()), payload
    raise AssertionError("no attachment delivered")


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_password_protected_file_holds_the_message_with_its_reason(case: str) -> None:
    name, build, reason = CASES[case]
    result = _run(_mail(name, build(enc.PASSWORD)))
    part = result.report.parts[-1]
    assert result.report.verdict is Verdict.HOLD
    assert (part.action, part.reason) == (Action.HELD, reason)
    assert Reason.TYPE_MISMATCH not in part.findings  # the class of the old "type mismatch"
    assert reason in result.report.reasons


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_wrong_password_leaves_it_held(case: str) -> None:
    name, build, reason = CASES[case]
    result = _run(_mail(name, build(enc.PASSWORD)), passwords=(WRONG, WRONG + "2"))
    part = result.report.parts[-1]
    assert result.report.verdict is Verdict.HOLD
    assert (part.action, part.reason) == (Action.HELD, reason)
    assert "none of 2 password(s) fits" in part.detail


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_right_password_delivers_the_disarmed_file(case: str) -> None:
    name, build, _reason = CASES[case]
    result = _run(_mail(name, build(enc.PASSWORD)), passwords=(WRONG, enc.PASSWORD))
    part = result.report.parts[-1]
    assert result.report.verdict is Verdict.DELIVER, part
    assert part.action is Action.SANITIZED
    assert RemovedItem.ENCRYPTION in part.removed
    delivered_name, data = _attachment(result)
    if case in ARCHIVES:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            assert not any(info.flag_bits & 1 for info in archive.infolist())
            assert sorted(archive.namelist()) == ["readme.txt", "資料/議事録.docx"]
            assert archive.read("readme.txt").decode("utf-8-sig") == enc.TEXT
        assert RemovedItem.VBA in part.removed  # the docm inside was disarmed
    elif case == "pdf":
        with pikepdf.open(io.BytesIO(data)) as pdf:
            assert not pdf.is_encrypted
            assert "/OpenAction" not in pdf.Root
        assert RemovedItem.OPEN_ACTION in part.removed or RemovedItem.JAVASCRIPT in part.removed
    else:
        assert data.startswith(b"PK\x03\x04")  # a rebuilt OOXML zip, no longer encrypted
        if case == "xlsx":
            assert RemovedItem.HYPERLINK in part.removed
    # an archive is rebuilt as a ZIP and named so; a document keeps its extension
    assert delivered_name.endswith("zip" if case in ARCHIVES else name.rsplit(".", 1)[1])
    # the notice says a password opened it
    assert "パスワードによる暗号化" in render_notice(result.report, NoticePolicy(), None)


def test_passwords_appear_nowhere_in_the_output_or_the_report() -> None:
    name, build, _ = CASES["aes"]
    result = _run(_mail(name, build(enc.PASSWORD)), passwords=(WRONG, enc.PASSWORD))
    assert result.report.verdict is Verdict.DELIVER
    report = json.dumps(result.report.to_dict(), ensure_ascii=False)
    for secret in (enc.PASSWORD, WRONG):
        assert secret not in report
        assert secret.encode() not in result.message


def test_only_max_passwords_candidates_are_tried() -> None:
    name, build, _ = CASES["zipcrypto"]
    policy = Policy(cdr=CdrPolicy(max_passwords=2))
    tail = _run(_mail(name, build(enc.PASSWORD)), (WRONG, WRONG + "2", enc.PASSWORD), policy)
    assert tail.report.verdict is Verdict.HOLD
    assert "none of 2 password(s) fits" in tail.report.parts[-1].detail
    within = _run(_mail(name, build(enc.PASSWORD)), (WRONG, enc.PASSWORD, WRONG + "2"), policy)
    assert within.report.verdict is Verdict.DELIVER


def test_an_encrypted_document_inside_an_encrypted_zip_opens_with_the_same_password() -> None:
    inner = enc.encrypted_office(enc.padded_docx())
    archive = enc.aes_zip({"議事録.docx": inner})
    held = _run(_mail("資料.zip", archive))
    assert held.report.verdict is Verdict.HOLD
    opened = _run(_mail("資料.zip", archive), passwords=(enc.PASSWORD,))
    assert opened.report.verdict is Verdict.DELIVER
    entries = {entry.name: entry for entry in opened.report.parts[-1].entries}
    assert RemovedItem.ENCRYPTION in entries["議事録.docx"].removed


def test_a_traversal_name_inside_an_encrypted_zip_is_refused_after_unlocking() -> None:
    archive = enc.zipcrypto_zip({"../../evil.txt": b"x"})
    result = _run(_mail("a.zip", archive), passwords=(enc.PASSWORD,))
    part = result.report.parts[-1]
    assert (part.action, part.reason) == (Action.REMOVED, Reason.PATH_TRAVERSAL)


def test_an_unlocked_archive_is_bounded_by_the_zip_limits() -> None:
    archive = enc.aes_zip({"big.txt": b"a" * 200_000})
    policy = Policy(cdr=CdrPolicy(zip_max_total_bytes=100_000))
    result = _run(_mail("a.zip", archive), passwords=(enc.PASSWORD,), policy=policy)
    part = result.report.parts[-1]
    assert (part.action, part.reason) == (Action.REMOVED, Reason.LIMIT_SIZE)


@pytest.mark.parametrize("case", ["zipcrypto", "pdf"])
def test_hold_reasons_fails_closed_a_held_part_whose_reason_is_not_listed_is_removed(
    case: str,
) -> None:
    name, build, reason = CASES[case]
    policy = Policy(hold_reasons=frozenset())
    result = _run(_mail(name, build(enc.PASSWORD)), policy=policy)
    part = result.report.parts[-1]
    assert result.report.verdict is Verdict.DELIVER
    assert (part.action, part.reason) == (Action.REMOVED, reason)
    assert "not in policy.hold_reasons" in part.detail
    with pytest.raises(AssertionError):
        _attachment(result)  # nothing delivered as it was


def test_the_isolated_child_unlocks_with_passwords_sent_through_its_pipe() -> None:
    name, build, _ = CASES["aes"]
    raw = _mail(name, build(enc.PASSWORD))
    with IsolatedDisarmer(warm=False) as disarmer:
        held = sanitize_message(raw, Policy(), disarmer=disarmer, passwords=(WRONG,))
        opened = sanitize_message(raw, Policy(), disarmer=disarmer, passwords=(enc.PASSWORD,))
    assert held.report.verdict is Verdict.HOLD
    assert opened.report.verdict is Verdict.DELIVER
    assert RemovedItem.ENCRYPTION in opened.report.parts[-1].removed


@pytest.mark.parametrize("names", [False, True], ids=["data", "names"])
def test_an_encrypted_zip_inside_an_encrypted_7z_opens_with_the_same_password(
    names: bool,
) -> None:
    archive = enc.sevenzip(
        {"中/資料.zip": enc.aes_zip({"議事録.docx": enc.padded_docx()})}, names=names
    )
    assert _run(_mail("送付.7z", archive)).report.verdict is Verdict.HOLD
    opened = _run(_mail("送付.7z", archive), passwords=(WRONG, enc.PASSWORD))
    assert opened.report.verdict is Verdict.DELIVER, opened.report.parts[-1]
    _name, data = _attachment(opened)
    with zipfile.ZipFile(io.BytesIO(data)) as outer:
        inner = outer.read("中/資料.zip")
    with zipfile.ZipFile(io.BytesIO(inner)) as archive_inside:
        assert archive_inside.namelist() == ["議事録.docx"]
        assert not any(info.flag_bits & 1 for info in archive_inside.infolist())


@pytest.mark.parametrize(
    ("files", "reason"),
    [
        ({"C:/Windows/evil.txt": b"x"}, Reason.PATH_TRAVERSAL),
        ({"big.txt": b"a" * 200_000}, Reason.LIMIT_SIZE),
        ({f"f{n}.txt": b"x" for n in range(12)}, Reason.LIMIT_ENTRIES),
    ],
    ids=["traversal", "size", "entries"],
)
def test_an_unlocked_7z_is_held_to_the_archive_limits(
    files: dict[str, bytes], reason: Reason
) -> None:
    """The names and sizes an encrypted list of names hid are checked once it is open."""
    policy = Policy(cdr=CdrPolicy(zip_max_total_bytes=100_000, zip_max_entries=10))
    archive = enc.sevenzip(files, names=True)
    result = _run(_mail("a.7z", archive), passwords=(enc.PASSWORD,), policy=policy)
    part = result.report.parts[-1]
    assert (part.action, part.reason) == (Action.REMOVED, reason)
