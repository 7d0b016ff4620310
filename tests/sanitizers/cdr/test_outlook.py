"""Outlook containers (TNEF winmail.dat, .msg) and 一太郎: the contract for each sanitizer,
the RTF body reader, and the three through the whole pipeline with hostile contents."""

from __future__ import annotations

import email
import io
import re
import zipfile
from collections.abc import Sequence
from email.message import Message
from email.policy import compat32
from urllib.parse import quote

import pytest

from sanitizers.cdr.registry import InProcessDisarmer
from sanitizers.cdr.rtf_text import rtf_body
from sanitizers.cdr.settings import CdrPolicy
from sanitizers.errors import LimitExceeded
from sanitizers.filetype import detect
from sanitizers.pipeline import sanitize_message
from sanitizers.policy import AttachmentAction, AttachmentPolicy, BodyPolicy, Limits, Policy
from sanitizers.report import SanitizeResult
from sanitizers.vocabulary import Action, Reason, RemovedItem, Verdict
from tests.corpus import require_corpus
from tests.mailfactory import body_text, leaf, mail, multipart
from tests.sanitizers.cdr import outlook_fixtures as F
from tests.sanitizers.cdr.contract import Case, CdrContract
from tests.sanitizers.cdr.office_fixtures import clean_doc, docm_with_vba, ole10native

INJECTION = "件名\r\nBcc: victim@example.jp\r\nContent-Type: text/html"
JAPANESE_RTF = (
    b"{\\rtf1\\ansi\\ansicpg932{\\fonttbl{\\f0\\fcharset128 MS Mincho;}}"
    b"{\\*\\generator hidden;}\\f0 \\'8c\\'a9\\'90\\'cf\\'8f\\'91\\uc1\\u-26000?\\par "
    b"{\\object{\\*\\objdata 0102}}\\u12354?\\par}"
)


def _leaves(data: bytes) -> list[Message]:
    root = email.message_from_bytes(data, policy=compat32)
    return [part for part in root.walk() if not part.is_multipart()]


def _mime_dangers(data: bytes) -> set[str]:
    """An independent look at composed MIME: a header injected from the container's values
    (no Bcc is ever written), 8-bit bytes."""
    found: set[str] = set()
    if re.search(rb"^Bcc:", data, re.M | re.I):
        found.add("injected_header")
    if not data.isascii():
        found.add("8bit")
    return found


def _mime_text(data: bytes) -> str:
    texts: list[str] = []
    root = email.message_from_bytes(data, policy=compat32)
    for name in ("Subject", "From"):
        value = root.get(name)
        if value:
            texts.append(str(email.header.make_header(email.header.decode_header(value))))
    for part in _leaves(data):
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes):
            texts.append(payload.decode(part.get_content_charset() or "utf-8", "replace"))
        filename = part.get_filename()
        if filename:
            texts.append(filename)
    return "\n".join(texts)


class TestTnefContract(CdrContract):
    kind = "tnef"
    converts_with = Reason.UNPACKED

    def hostile_cases(self) -> Sequence[Case]:
        return [
            Case(
                "header-injection-in-names",
                F.tnef([F.TnefFile(INJECTION + ".docm", docm_with_vba())], body="本文"),
                "winmail.dat",
                action=Action.CONVERTED,
                text=("本文",),
            ),
            Case(
                "attributes-bomb",
                b"\x78\x9f\x3e\x22\x00\x00" + b"\x01\x06\x80\x00\x00\x00\x00\x00\x00\x00\x00" * 200,
                "winmail.dat",
                action=Action.REMOVED,
                reason=Reason.LIMIT_ENTRIES,
                detectable=False,
            ),
        ]

    def clean_cases(self) -> Sequence[Case]:
        return [
            Case(
                "rtf-body-and-files",
                F.tnef(
                    [F.TnefFile("見積書.xlsx", b"PK" + bytes(30)), F.TnefFile("memo.txt", b"hi")],
                    rtf=JAPANESE_RTF,
                ),
                "winmail.dat",
                action=Action.CONVERTED,
                text=("見積書.xlsx", "memo.txt", "見積書", "あ"),
            ),
            Case(
                "plain-body",
                F.tnef([], body="お世話になっております。"),
                "winmail.dat",
                action=Action.CONVERTED,
                text=("お世話になっております。",),
            ),
        ]

    def cdr_policy(self) -> CdrPolicy:
        return CdrPolicy(tnef_max_attributes=100)

    def dangerous_items(self, data: bytes) -> set[str]:
        if data.startswith(b"\x78\x9f\x3e\x22"):  # the input: a name carrying a header
            return {"injection"} if b"\r\nBcc:" in data else set()
        return _mime_dangers(data)

    def assert_parses(self, data: bytes) -> None:
        assert _leaves(data)

    def extract_text(self, data: bytes) -> str:
        return _mime_text(data)


class TestMsgContract(CdrContract):
    kind = "msg"
    converts_with = Reason.UNPACKED

    def hostile_cases(self) -> Sequence[Case]:
        return [
            Case(
                "header-injection-in-subject",
                F.msg(
                    F.Msg(INJECTION, "本文です", files=[F.MsgFile("setup.exe", b"MZ" + bytes(64))])
                ),
                "転送.msg",
                action=Action.CONVERTED,
                text=("本文です", "setup.exe"),
                detectable=False,
            ),
            Case(
                "ole-object-and-web-reference",
                F.msg(
                    F.Msg(
                        "オブジェクト",
                        "本文です",
                        objects=[("図.bin", 6, OLE_OBJECT), ("共有.docx", 7, None)],
                    )
                ),
                "転送.msg",
                frozenset({"ole_object", "external_relationship"}),
                action=Action.CONVERTED,
                text=("本文です",),
                detectable=False,
            ),
            Case(
                "nested-past-the-depth-limit",
                F.nested_msg(6),
                "深い.msg",
                action=Action.REMOVED,
                reason=Reason.LIMIT_DEPTH,
                detectable=False,
            ),
        ]

    def clean_cases(self) -> Sequence[Case]:
        return [
            Case(
                "body-file-and-nested",
                F.msg(
                    F.Msg(
                        "ご確認ください",
                        "添付をご確認ください。",
                        files=[F.MsgFile("資料.pdf", b"%PDF-1.4\n")],
                        messages=[("前回.msg", F.Msg("前回の件", "以前の本文"))],
                    )
                ),
                "転送.msg",
                action=Action.CONVERTED,
                text=("ご確認ください", "添付をご確認ください。", "資料.pdf", "以前の本文"),
            )
        ]

    def policy(self) -> Policy:
        return Policy(cdr=self.cdr_policy(), limits=Limits(max_depth=4))

    def dangerous_items(self, data: bytes) -> set[str]:
        return _mime_dangers(data)

    def assert_parses(self, data: bytes) -> None:
        assert _leaves(data)

    def extract_text(self, data: bytes) -> str:
        return _mime_text(data)


class TestIchitaroContract(CdrContract):
    kind = "ichitaro"
    converts_with = Reason.TEXT_EXTRACTED

    def hostile_cases(self) -> Sequence[Case]:
        return [
            Case(
                "controls-and-macro-storage",
                F.ichitaro("本文\x1b[31m\x00赤", extra={"DocumentMacro": {"MacrosStream": b"x"}}),
                "文書.jtd",
                action=Action.CONVERTED,
                text=("本文", "赤"),
            ),
            Case(
                "compressed-with-macro-storage",
                F.ichitaro_compressed(
                    F.ichitaro("圧縮\x1b本文", extra={"DocumentMacro": {"MacrosStream": b"x"}})
                ),
                "文書.jtdc",
                action=Action.CONVERTED,
                text=("圧縮", "本文"),
            ),
            Case(
                "compressed-inside-compressed",
                F.ichitaro_compressed(F.ichitaro_compressed(F.ichitaro("入れ子"))),
                "文書.jtdc",
                action=Action.REMOVED,
                reason=Reason.UNSUPPORTED_TYPE,
            ),
            Case(
                "compressed-two-members",
                F.ichitaro_compressed(F.ichitaro("二つ"), members=2),
                "文書.jtdc",
                action=Action.REMOVED,
                reason=Reason.UNSUPPORTED_TYPE,
            ),
            Case(
                "compressed-unknown-header",
                F.ichitaro_compressed(F.ichitaro("見知らぬ"), name=b"OtherCompression\x00"),
                "文書.jtdc",
                action=Action.REMOVED,
                reason=Reason.UNSUPPORTED_TYPE,
            ),
            Case(
                "compressed-declares-a-huge-size",
                F.ichitaro_compressed(F.ichitaro("大きい"), declared=2**31),
                "文書.jtdc",
                action=Action.REMOVED,
                reason=Reason.LIMIT_SIZE,
            ),
            Case(
                "compressed-declares-more-than-it-holds",
                F.ichitaro_compressed(F.ichitaro("短い"), method=b"-lh0-", declared=9000),
                "文書.jtdc",
                action=Action.REMOVED,
                reason=Reason.MALFORMED,
            ),
            Case(
                "lying-segment-length",
                F.cfb(
                    {"DocumentText": b"SsmgV.01TextV.01\xff\xff\xff\xff" + "あ".encode("utf-16-be")}
                ),
                "文書.jtd",
                action=Action.REMOVED,
                reason=Reason.MALFORMED,
                detectable=False,
            ),
        ]

    def clean_cases(self) -> Sequence[Case]:
        return [Case("text", F.ichitaro("一太郎の文書\n二行目"), "文書.jtd",
                     action=Action.CONVERTED, text=("一太郎の文書\n二行目",)),
                Case("compressed-text", F.ichitaro_compressed(F.ichitaro("圧縮した文書")),
                     "文書.jtdc", action=Action.CONVERTED, text=("圧縮した文書",))]  # fmt: skip

    def dangerous_items(self, data: bytes) -> set[str]:
        if data.startswith(bytes.fromhex("d0cf11e0")):
            return {"ichitaro_document"}
        return {"control"} if re.search(rb"[\x00-\x08\x0b-\x1f]", data) else set()

    def assert_parses(self, data: bytes) -> None:
        data.decode("utf-8")

    def extract_text(self, data: bytes) -> str:
        return data.decode("utf-8")


# --- the RTF body ----------------------------------------------------------------------------


def test_rtf_body_reads_japanese_code_pages_and_unicode() -> None:
    body = rtf_body(JAPANESE_RTF, max_depth=50, max_chars=1000)
    assert body.kind == "plain"
    assert body.text == "見積書\u9a70\nあ\n"  # \u-26000 is U+9A70; objects and generator dropped


def test_rtf_body_takes_the_encapsulated_html() -> None:
    rtf = (
        b"{\\rtf1\\ansi\\fromhtml1 {\\*\\htmltag19 <html>}{\\*\\htmltag34 <p>}"
        b"\\htmlrtf {\\b \\htmlrtf0 Hello \\'82\\'a0\\htmlrtf }\\htmlrtf0 "
        b'{\\*\\htmltag 42 <a href="javascript:x">}link{\\*\\htmltag </a></p>}}'
    )
    body = rtf_body(rtf, max_depth=50, max_chars=1000)
    assert body.kind == "html"
    assert "<p>" in body.text
    assert '<a href="javascript:x">link</a>' in body.text


def test_rtf_body_skips_binary_data_unread() -> None:
    """Braces and words inside \\binN data neither close the picture group nor show."""
    rtf = b"{\\rtf1 shown{\\pict\\bin9 }}\\par hid}after picture\\par}"
    assert rtf_body(rtf, max_depth=50, max_chars=1000).text == "shownafter picture\n"


def test_rtf_body_limits_depth_and_size() -> None:
    with pytest.raises(LimitExceeded) as deep:
        rtf_body(b"{\\rtf1" + b"{" * 100 + b"x", max_depth=50, max_chars=1000)
    assert deep.value.reason is Reason.LIMIT_DEPTH
    with pytest.raises(LimitExceeded) as long:
        rtf_body(b"{\\rtf1 " + b"a" * 2000 + b"}", max_depth=50, max_chars=1000)
    assert long.value.reason is Reason.LIMIT_SIZE


# --- detection -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "name", "kind", "mismatch"),
    [
        (F.tnef([], body="x"), "winmail.dat", "tnef", False),
        (F.msg(F.Msg("s")), "a.msg", "msg", False),
        (F.ichitaro("x"), "a.jtd", "ichitaro", False),
        (F.ichitaro("x"), "a.doc", "ichitaro", True),  # the content decides, not the name
        ("一太郎ではない".encode(), "偽物.jtd", "text", True),
        (clean_doc(), "偽物.jtd", "ole", True),
        (F.msg(F.Msg("s")), "偽物.jtd", "msg", True),
        (F.cfb({"DocumentText": b"not the header", "WordDocument": b"x"}), "a.jtd", "ole", True),
        (b"MZ" + bytes(200), "a.jtd", "executable", True),
        (F.ichitaro_compressed(F.ichitaro("x")), "a.jtdc", "ichitaro", False),
        (b"DOC" + bytes(5) + b" " * 8 + bytes(48), "a.jtw", "ichitaro", False),  # 一太郎 4-6
        (b"DOC" + bytes(5) + b" " * 8 + bytes(48), "a.txt", "ichitaro", True),
    ],
)
def test_kind_is_decided_by_content(data: bytes, name: str, kind: str, mismatch: bool) -> None:
    info = detect(data, "application/octet-stream", name)
    assert (info.kind, info.mismatch) == (kind, mismatch)


# --- through the pipeline --------------------------------------------------------------------


def _run(attachments: list[tuple[str, str, bytes]], policy: Policy | None = None) -> SanitizeResult:
    parts = [leaf("text/plain; charset=utf-8", "元のメールの本文".encode())]
    for name, content_type, data in attachments:
        disposition = f"attachment; filename*=utf-8''{quote(name)}"
        parts.append(
            leaf(content_type, data, cte="base64", extra=[("Content-Disposition", disposition)])
        )
    raw = mail(multipart("mixed", parts))
    return sanitize_message(raw, policy or Policy(), disarmer=InProcessDisarmer())


def _attachments(result: SanitizeResult) -> dict[str, bytes]:
    root = email.message_from_bytes(result.message, policy=compat32)
    found = {}
    for part in root.walk():
        name = part.get_filename()
        if name:
            decoded = str(email.header.make_header(email.header.decode_header(name)))
            found[decoded] = part.get_payload(decode=True)
    return found


def test_tnef_files_are_the_messages_own_with_their_path_shown() -> None:
    winmail = F.tnef(
        [F.TnefFile("見積書.docm", docm_with_vba()), F.TnefFile("setup.exe", b"MZ" + bytes(64))],
        rtf=JAPANESE_RTF,
    )
    result = _run([("winmail.dat", "application/ms-tnef", winmail)])
    assert result.report.verdict is Verdict.DELIVER
    parts = {part.filename: part for part in result.report.parts if part.kind}
    container = parts["winmail.dat"]
    assert (container.action, container.reason, container.kind) == (
        Action.REMOVED,
        Reason.UNPACKED,
        "tnef",
    )
    docm = parts["winmail.dat › 見積書.docm"]
    assert docm.action is Action.SANITIZED
    assert RemovedItem.VBA in docm.removed
    assert docm.attached_as == "見積書.docx"
    exe = parts["winmail.dat › setup.exe"]
    assert (exe.action, exe.reason) == (Action.REMOVED, Reason.EXECUTABLE)
    delivered = _attachments(result)
    assert set(delivered) == {"見積書.docx"}
    with zipfile.ZipFile(io.BytesIO(delivered["見積書.docx"])) as docx:
        assert not any("vba" in name.lower() for name in docx.namelist())
    text = body_text(result.message)
    assert "元のメールの本文" in text
    assert "見積書\u9a70" in text
    assert "あ" in text
    assert "winmail.dat › 見積書.docm" in text
    assert "winmail.dat › setup.exe" in text
    assert "中のファイルと本文を取り出し、それぞれ処理しました" in text
    assert "winmail.dat" not in delivered
    assert "Outlook の winmail.dat" not in text  # unpacked, not refused by policy


@pytest.mark.parametrize("container", ["winmail.dat", "転送.msg"])
def test_sanitizing_the_output_again_changes_nothing(container: str) -> None:
    """The output holds the containers' text and disarmed files, never the containers: a
    second pass keeps the body as it is (the contract cannot check this for converters)."""
    files = [("見積書.docm", docm_with_vba()), ("setup.exe", b"MZ" + bytes(64))]
    if container == "winmail.dat":
        data = F.tnef([F.TnefFile(n, d) for n, d in files], rtf=JAPANESE_RTF)
    else:
        data = F.msg(F.Msg("件名", "本文", files=[F.MsgFile(n, d) for n, d in files]))
    first = _run([(container, "application/octet-stream", data)])
    again = sanitize_message(first.message, Policy(), disarmer=InProcessDisarmer())
    assert again.report.verdict is Verdict.DELIVER
    assert body_text(again.message) == body_text(first.message)
    assert set(_attachments(again)) == set(_attachments(first)) == {"見積書.docx"}


def test_msg_is_an_attached_mail_and_its_exe_is_removed() -> None:
    outlook = F.msg(
        F.Msg(
            "見積のご依頼",
            "よろしくお願いします。",
            sender=("山田太郎", "yamada@example.co.jp"),
            files=[F.MsgFile("請求書.exe", b"MZ" + bytes(64)), F.MsgFile("memo.txt", b"memo")],
        )
    )
    result = _run([("転送.msg", "application/vnd.ms-outlook", outlook)])
    assert result.report.verdict is Verdict.DELIVER
    parts = {part.filename: part for part in result.report.parts if part.filename}
    exe = parts["転送.msg › 請求書.exe"]
    assert (exe.action, exe.reason) == (Action.REMOVED, Reason.EXECUTABLE)
    assert parts["転送.msg › memo.txt"].action is Action.SANITIZED
    assert set(_attachments(result)) == {"memo.txt"}
    text = body_text(result.message)
    assert "---------- 添付されたメール ----------" in text
    assert "山田太郎 <yamada@example.co.jp>" in text
    assert "Subject: 見積のご依頼" in text
    assert "よろしくお願いします。" in text


EXE = b"MZ" + bytes(64)
# An OLE object's storage: a Package whose native data is a compound file holding a .bat.
OLE_OBJECT: F.Tree = {"\x01Ole10Native": ole10native(), "\x01CompObj": b"\x01\xfe\x00\x00"}


def test_msg_carrying_a_docm_delivers_it_disarmed() -> None:
    outlook = F.msg(F.Msg("マクロ", "本文", files=[F.MsgFile("集計.docm", docm_with_vba())]))
    result = _run([("転送.msg", "application/vnd.ms-outlook", outlook)])
    assert result.report.verdict is Verdict.DELIVER
    (part,) = [p for p in result.report.parts if p.filename == "転送.msg › 集計.docm"]
    assert part.action is Action.SANITIZED
    assert RemovedItem.VBA in part.removed
    delivered = _attachments(result)
    assert set(delivered) == {"集計.docx"}
    with zipfile.ZipFile(io.BytesIO(delivered["集計.docx"])) as package:
        assert not [n for n in package.namelist() if "vba" in n.lower()]


@pytest.mark.parametrize("carried", ["embedded", "by_value"])
def test_msg_carrying_a_msg_carrying_an_exe_never_passes_it(carried: str) -> None:
    """The inner .msg as an embedded message (attach method 5) or as a .msg file (method 1):
    either way it is read like an attached mail and its .exe is removed."""
    inner = F.Msg("内側", "内側の本文", files=[F.MsgFile("請求書.exe", EXE)])
    if carried == "embedded":
        outer = F.Msg("外側", "外側の本文", messages=[("内側.msg", inner)])
    else:
        outer = F.Msg("外側", "外側の本文", files=[F.MsgFile("内側.msg", F.msg(inner))])
    result = _run([("転送.msg", "application/vnd.ms-outlook", F.msg(outer))])
    assert result.report.verdict is Verdict.DELIVER
    exes = [p for p in result.report.parts if p.filename and p.filename.endswith("請求書.exe")]
    assert [(p.action, p.reason) for p in exes] == [(Action.REMOVED, Reason.EXECUTABLE)]
    assert "転送.msg › " in (exes[0].filename or "")
    assert _attachments(result) == {}
    text = body_text(result.message)
    assert "内側の本文" in text
    assert "請求書.exe" in text


@pytest.mark.parametrize(
    ("method", "storage", "reason", "label"),
    [
        (6, OLE_OBJECT, Reason.EMBEDDED_OBJECT, "埋め込みオブジェクト"),
        (1, OLE_OBJECT, Reason.EMBEDDED_OBJECT, "埋め込みオブジェクト"),  # lies about its method
        (5, OLE_OBJECT, Reason.MALFORMED, "形式に不正な箇所"),  # a "message" with no properties
        (2, None, Reason.EXTERNAL_REFERENCE, "外部への参照"),
        (7, None, Reason.EXTERNAL_REFERENCE, "外部への参照"),
    ],
)
def test_msg_objects_and_references_are_removed_with_a_notice_naming_them(
    method: int, storage: F.Tree | None, reason: Reason, label: str
) -> None:
    """An OLE object (a compound storage, here a Package holding a program) or a reference to
    a file elsewhere is never handed on, at any depth: the notice names it as removed."""
    inner = F.Msg("内側", "内側の本文", objects=[("図.bin", method, storage)])
    outer = F.Msg("外側", "外側の本文", objects=[("表.xls", method, storage)])
    outer.messages.append(("内側.msg", inner))
    result = _run([("転送.msg", "application/vnd.ms-outlook", F.msg(outer))])
    assert result.report.verdict is Verdict.DELIVER
    (container,) = [p for p in result.report.parts if p.path == "1.2"]
    fates = {entry.name: (entry.action, entry.reason) for entry in container.entries}
    assert fates == {
        "表.xls": (Action.REMOVED, reason),
        "内側.msg › 図.bin": (Action.REMOVED, reason),
    }
    assert _attachments(result) == {}
    text = body_text(result.message)
    assert "メール内: 表.xls → 削除" in text
    assert "メール内: 内側.msg › 図.bin → 削除" in text
    assert label in text
    assert "内側の本文" in text


def test_msg_attached_messages_removed_by_policy() -> None:
    outlook = F.msg(F.Msg("件名", "消える本文", files=[F.MsgFile("memo.txt", b"memo")]))
    policy = Policy(body=BodyPolicy(attached_messages="remove"))
    result = _run([("転送.msg", "application/vnd.ms-outlook", outlook)], policy)
    assert "消える本文" not in body_text(result.message)
    assert _attachments(result) == {}


@pytest.mark.parametrize(("levels", "held"), [(2, False), (3, True)])
def test_msg_nested_to_the_depth_limit(levels: int, held: bool) -> None:
    """Each nested .msg adds two MIME levels (the attached message and its multipart) below
    the attachment's one: with max_depth 6, two levels fit and a third is one too many."""
    policy = Policy(limits=Limits(max_depth=6))
    result = _run([("入れ子.msg", "application/vnd.ms-outlook", F.nested_msg(levels))], policy)
    if held:
        assert result.report.verdict is Verdict.HOLD
        assert Reason.LIMIT_DEPTH in result.report.reasons
    else:
        assert result.report.verdict is Verdict.DELIVER
        text = body_text(result.message)
        assert all(f"本文 {level}" in text for level in range(1, levels + 1))


def test_container_inside_an_archive_is_not_unpacked() -> None:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("winmail.dat", F.tnef([F.TnefFile("a.txt", b"a")], body="x"))
        zipped.writestr("readme.txt", b"readme")
    result = _run([("files.zip", "application/zip", archive.getvalue())])
    (part,) = [p for p in result.report.parts if p.filename == "files.zip"]
    entries = {entry.name: entry for entry in part.entries}
    assert entries["winmail.dat"].reason is Reason.UNSUPPORTED_TYPE


def test_ichitaro_is_removed_by_default_with_a_notice_naming_it() -> None:
    result = _run([("議事録.jtd", "application/octet-stream", F.ichitaro("議事録の本文"))])
    (part,) = [p for p in result.report.parts if p.filename == "議事録.jtd"]
    assert part.kind == "ichitaro"
    assert (part.action, part.reason, part.kind) == (Action.REMOVED, Reason.POLICY, "ichitaro")
    assert _attachments(result) == {}
    text = body_text(result.message)
    assert "議事録.jtd" in text
    assert "一太郎" in text


def test_ichitaro_text_extracted_when_the_policy_says_sanitize() -> None:
    policy = Policy(attachments=AttachmentPolicy(by_kind={"ichitaro": AttachmentAction.SANITIZE}))
    result = _run([("議事録.jtd", "application/octet-stream", F.ichitaro("議事録の本文")), (
        "偽物.jtd", "application/octet-stream", "ただのテキスト".encode())], policy)  # fmt: skip
    parts = {p.filename: p for p in result.report.parts if p.filename}
    assert (parts["議事録.jtd"].action, parts["議事録.jtd"].reason) == (
        Action.CONVERTED,
        Reason.TEXT_EXTRACTED,
    )
    assert parts["偽物.jtd"].kind == "text"
    assert Reason.TYPE_MISMATCH in parts["偽物.jtd"].findings
    delivered = _attachments(result)
    assert delivered["議事録.txt"] == "議事録の本文".encode()
    assert "文書の文字だけを取り出し、テキストファイルにしました" in body_text(result.message)


def test_compressed_ichitaro_bomb_keeps_the_archive_ratio_limit() -> None:
    from sanitizers.cdr.ichitaro import extract_text

    data = F.ichitaro_compressed(F.ichitaro("圧縮率"))
    assert extract_text(data, CdrPolicy()) == "圧縮率"
    with pytest.raises(LimitExceeded) as raised:
        extract_text(data, CdrPolicy(zip_ratio_min_bytes=0, zip_max_ratio=1))
    assert raised.value.reason is Reason.LIMIT_RATIO


def test_ichitaro_whose_text_cannot_be_extracted_is_removed_with_a_notice_saying_so() -> None:
    policy = Policy(attachments=AttachmentPolicy(by_kind={"ichitaro": AttachmentAction.SANITIZE}))
    broken = F.ichitaro_compressed(F.ichitaro("二つ"), members=2)
    result = _run([("議事録.jtdc", "application/octet-stream", broken)], policy)
    (part,) = [p for p in result.report.parts if p.filename == "議事録.jtdc"]
    assert (part.kind, part.action) == ("ichitaro", Action.REMOVED)
    assert _attachments(result) == {}
    text = body_text(result.message)
    assert "議事録.jtdc" in text
    assert "文書の文字を取り出せませんでした" in text
    default = _run([("議事録.jtdc", "application/octet-stream", broken)])
    assert "文書の文字を取り出せませんでした" not in body_text(default.message)  # not asked for


# --- corpus ----------------------------------------------------------------------------------


def test_corpus_tnef_and_msg_unpack_or_are_removed_cleanly() -> None:
    root = require_corpus()
    files = sorted((root / "mimekit/UnitTests/TestData/tnef").glob("*.tnef"))
    files += sorted((root / "apache-poi/test-data/hsmf").glob("*.msg"))
    if not files:
        pytest.skip("no TNEF or .msg samples in the corpus")
    outcomes = {}
    for path in files:
        result = _run([(path.name, "application/octet-stream", path.read_bytes())])
        (part,) = [p for p in result.report.parts if p.path == "1.2"]
        outcomes[path.name] = (part.kind, part.reason)
        assert part.reason not in (Reason.ERROR, Reason.CRASH, Reason.TIMEOUT), (path, part)
    unpacked = [name for name, (_k, reason) in outcomes.items() if reason is Reason.UNPACKED]
    assert len(unpacked) >= len(files) - 4, outcomes


def test_corpus_ichitaro_detected_and_its_text_read() -> None:
    folder = require_corpus() / "ichitaro/src/test/resources/extractor/ichitaro"
    if not folder.is_dir():
        pytest.skip("no 一太郎 samples in the corpus")
    policy = Policy(attachments=AttachmentPolicy(by_kind={"ichitaro": AttachmentAction.SANITIZE}))
    for name in ("taro2016_basic.jtd", "taro2016_temp.jtt", "taro7_taro2016_basic.jfw"):
        result = _run([(name, "application/octet-stream", (folder / name).read_bytes())], policy)
        (part,) = [p for p in result.report.parts if p.filename == name]
        assert (part.kind, part.reason) == ("ichitaro", Reason.TEXT_EXTRACTED)
        (text,) = _attachments(result).values()
        assert "テスト\n\n一太郎\n\nsheet1\n\nシート1" in text.decode("utf-8")
    for path in sorted(folder.iterdir()):  # every generation, documents and templates
        detected = detect(path.read_bytes(), "application/octet-stream", path.name)
        assert (detected.kind, detected.mismatch) == ("ichitaro", False), path.name
    for name in ("ver4_taro2016_basic.jsw", "ver6_taro2016_temp.juw"):  # before OLE: no text
        result = _run([(name, "application/octet-stream", (folder / name).read_bytes())], policy)
        (part,) = [p for p in result.report.parts if p.filename == name]
        assert (part.kind, part.action, part.reason) == (
            "ichitaro",
            Action.REMOVED,
            Reason.UNSUPPORTED_TYPE,
        )
        assert "文書の文字を取り出せませんでした" in body_text(result.message)
    for name in ("taro2016_basic_zip.jtdc", "taro2016_temp_zip.jttc"):  # compressed
        result = _run([(name, "application/octet-stream", (folder / name).read_bytes())], policy)
        (part,) = [p for p in result.report.parts if p.filename == name]
        assert (part.kind, part.action, part.reason) == (
            "ichitaro",
            Action.CONVERTED,
            Reason.TEXT_EXTRACTED,
        )
        (text,) = _attachments(result).values()
        assert "テスト\n\n一太郎\n\nsheet1\n\nシート1" in text.decode("utf-8")
