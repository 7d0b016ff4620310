"""The held-mail workflow end to end: real SMTP in and out, the real pipeline, the store, the
commands as operators type them, and serve carrying the decisions out.

The acting user of a command is the login sudo records (``SUDO_USER``/``SUDO_UID``), set here
as sudo sets it, so each command runs as the person the test names.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import email
import functools
import io
import json
import struct
import time
import zipfile
from collections.abc import AsyncIterator, Callable, Iterator
from email.message import EmailMessage, Message
from email.policy import SMTP as SMTP_POLICY
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest

from gateway.cli import main
from gateway.cli.exit_codes import ExitCode
from gateway.configuration.config import Config, load_config
from gateway.processing.pool import InlineSanitizer
from gateway.processing.sanitize_task import task_for
from gateway.service.assembly import Gateway, Parts
from sanitizers.cdr.base import CdrOutcome
from sanitizers.cdr.isolation import default_disarmer
from sanitizers.notice import NoticeContext
from sanitizers.pipeline import sanitize_message
from sanitizers.policy import AttachmentAction, Policy
from sanitizers.release import ReleaseTerms
from sanitizers.report import SanitizeResult
from sanitizers.senderauth import AuthOutcome
from sanitizers.vocabulary import Reason, label
from tests.authdns import AuthDns
from tests.clamd import EICAR
from tests.gateway.relaykit import Sink, make_config
from tests.paths import ROOT
from tests.sanitizers.cdr.archive_fixtures import RAR4_FILE_ENCRYPTED, rar4
from tests.sanitizers.cdr.office_fixtures import docm_with_vba

RCPT = "staff@example.lg.jp"
BODY = "お見積書を添付します。①㈱～"


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    relay = await Sink().start()
    yield relay
    await relay.stop()


@contextlib.contextmanager
def _as(monkeypatch: pytest.MonkeyPatch, user: str | None) -> Iterator[None]:
    with monkeypatch.context() as patch:
        if user is None:
            patch.delenv("SUDO_USER", raising=False)
            patch.delenv("SUDO_UID", raising=False)
        else:
            patch.setenv("SUDO_USER", user)
            patch.setenv("SUDO_UID", "4242")
        yield


class Cli:
    """``mukaika`` as an operator types it, as a named person."""

    def __init__(
        self, data_dir: Path, monkeypatch: pytest.MonkeyPatch, config: Path | None = None
    ) -> None:
        self.data_dir = data_dir
        self.monkeypatch = monkeypatch
        self.options = ["--data-dir", str(data_dir)]
        if config is not None:
            self.options += ["--config", str(config)]

    def __call__(self, user: str | None, *argv: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        with (
            _as(self.monkeypatch, user),
            contextlib.redirect_stdout(out),
            contextlib.redirect_stderr(err),
        ):
            code = main([*argv, *self.options])
        return code, out.getvalue(), err.getvalue()

    def users(self) -> None:
        for name, role in (("alice", "operator"), ("bob", "approver"), ("carol", "approver")):
            code, _, err = self(None, "user", "add", name, "--role", role, "--no-password")
            assert code == ExitCode.OK, err


def _encrypted_zip() -> bytes:
    """A ZIP whose entry says it is encrypted (ZipCrypto's flag): the message is held."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("見積書.xlsx", b"PK" + bytes(200))
    data = bytearray(out.getvalue())
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = data.find(signature)
        flags = struct.unpack_from("<H", data, at + offset)[0]
        struct.pack_into("<H", data, at + offset, flags | 1)
    return bytes(data)


def _mail(
    *attachments: tuple[str, bytes, str],
    subject: str = "見積書の送付",
    sender: str = "取引先 <partner@example.com>",
) -> bytes:
    message = EmailMessage(policy=SMTP_POLICY)
    message["From"] = sender
    message["To"] = RCPT
    message["Subject"] = subject
    message["Message-ID"] = f"<{time.monotonic_ns()}@example.com>"
    message.set_content(BODY, charset="utf-8")
    for name, data, mime in attachments:
        maintype, subtype = mime.split("/")
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return message.as_bytes()


async def _until(predicate: Callable[[], bool], within: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


def _config(data_dir: Path, relay_port: int, **sections: dict[str, Any]) -> Config:
    sections.setdefault("release", {}).update(poll_interval_seconds=0.05)
    return make_config(data_dir, relay_port, **sections)


@contextlib.asynccontextmanager
async def _gateway(config: Config, sanitizer: Any = None) -> AsyncIterator[tuple[Gateway, int]]:
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as executor:
        gateway = Gateway(
            config, Parts(sanitizer=sanitizer or InlineSanitizer(config.policy, executor))
        )
        try:
            _, port = await gateway.start()
            yield gateway, port
        finally:
            await gateway.stop()


async def _send(port: int, raw: bytes) -> None:
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False, timeout=10)
    async with client:
        await client.sendmail("partner@example.com", [RCPT], raw)


def _entry(cli: Cli) -> dict[str, Any]:
    code, out, err = cli(None, "quarantine", "list", "--json")
    assert code == ExitCode.OK, err
    entries = [json.loads(line) for line in out.splitlines()]
    assert len(entries) == 1
    entry: dict[str, Any] = entries[0]
    return entry


def _parsed(data: bytes) -> Message:
    return email.message_from_bytes(data)


def _text(message: Message) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload.decode(part.get_content_charset() or "utf-8")
    return ""


def _audit(data_dir: Path) -> list[dict[str, Any]]:
    path = data_dir / "audit" / "audit.jsonl"
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


async def _held(cli: Cli, sink: Sink, port: int, raw: bytes) -> str:
    """Send ``raw``, wait for its held notice; return its reference."""
    before = len(sink.messages)
    await _send(port, raw)
    await sink.wait_for(before + 1, within=30)
    notice = _parsed(sink.messages[-1].data)
    assert notice["X-Mukaika-Verdict"] == "hold"
    # An encrypted archive waits for its password (PPAP); a limit holds: both are held mail.
    await _until(lambda: _entry(cli)["state"] in ("held", "awaiting_password"))
    ref = str(_entry(cli)["id"])
    assert ref in _text(notice)  # the reference printed in the notice is the REF
    return ref


async def test_request_approved_by_another_user_is_released_once(
    tmp_path: Path, sink: Sink, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = tmp_path / "data"
    cli = Cli(data_dir, monkeypatch)
    async with _gateway(_config(data_dir, sink.port)) as (_, port):
        cli.users()
        ref = await _held(
            cli, sink, port, _mail(("見積書.zip", _encrypted_zip(), "application/zip"))
        )
        # An operator asks; the request waits for an approver.
        code, out, err = cli("alice", "quarantine", "request", ref, "--reason", "取引先に確認済み")
        assert code == ExitCode.OK, err
        assert _entry(cli)["state"] == "release_requested"
        # Nobody approves their own request, not even an approver; an operator cannot approve.
        assert cli("alice", "quarantine", "approve", ref)[0] == ExitCode.DENIED
        code, _, err = cli("bob", "quarantine", "request", ref, "--reason", "again")
        assert code == ExitCode.WRONG_STATE  # one open decision at a time
        # Unknown people are refused.
        assert cli("mallory", "quarantine", "approve", ref)[0] == ExitCode.DENIED
        code, out, err = cli("bob", "quarantine", "approve", ref)
        assert code == ExitCode.OK, err
        # serve carries it out: sanitized again, the encrypted archive removed with a notice.
        await sink.wait_for(2, within=30)
        released = _parsed(sink.messages[1].data)
        assert released["X-Mukaika-Verdict"] == "deliver"
        assert "encrypted_archive" in released["X-Mukaika-Summary"]
        text = _text(released)
        assert BODY in text
        assert "見積書.zip" in text  # the notice names the removed archive
        assert sink.messages[1].rcpt_tos == [RCPT]
        await _until(lambda: _entry(cli)["state"] == "released")
        # Releasing twice is refused, whoever asks and however.
        code, _, err = cli("alice", "quarantine", "release", ref)
        assert code == ExitCode.WRONG_STATE
        assert "never released twice" in err
        assert cli("bob", "quarantine", "request", ref, "--reason", "x")[0] == ExitCode.WRONG_STATE
        await _until(
            lambda: any(r.get("request") for r in _audit(data_dir) if r["event"] == "message")
        )
    assert len(sink.messages) == 2
    events = [(r["event"], r.get("actor")) for r in _audit(data_dir) if r["event"] != "user"]
    assert ("request", "alice") in events
    assert ("approval", "bob") in events
    assert ("release_done", "serve") in events
    approval = next(r for r in _audit(data_dir) if r["event"] == "approval")
    assert approval["expires"] > approval["time"]
    assert approval["reason"] == "取引先に確認済み"
    # quarantine show lists the decision: who, when, why, until when, what serve did.
    code, out, _ = cli(None, "quarantine", "show", ref)
    assert "#1 release done" in out
    assert "by alice" in out
    assert "decided by bob" in out


async def test_a_release_while_the_lgwan_mta_is_down_is_delivered_once_it_is_back(
    tmp_path: Path, sink: Sink, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = tmp_path / "data"
    cli = Cli(data_dir, monkeypatch)
    async with _gateway(_config(data_dir, sink.port)) as (gateway, port):
        cli.users()
        ref = await _held(cli, sink, port, _mail(("a.zip", _encrypted_zip(), "application/zip")))
        await sink.stop()
        code, _, err = cli("alice", "quarantine", "release", ref)
        assert code == ExitCode.OK, err
        spool = gateway.spool
        await _until(lambda: _entry(cli)["state"] == "released")
        await _until(
            lambda: any(spool.envelope("outgoing", q).attempts > 0 for q in spool.ids("outgoing"))
        )
        assert len(sink.messages) == 1  # only the held notice so far
        await sink.start()
        await sink.wait_for(2, within=30)
        assert _parsed(sink.messages[1].data)["X-Mukaika-Verdict"] == "deliver"


async def test_an_encrypted_rar_is_held_for_an_operator_and_released_without_it(
    tmp_path: Path, sink: Sink, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An encrypted RAR cannot be unlocked here: the mail is held (not awaiting a password),
    the notice says so and carries no link; an operator's release delivers the rest of the
    mail, the RAR removed with a notice naming it."""
    data_dir = tmp_path / "data"
    cli = Cli(data_dir, monkeypatch)
    encrypted = rar4([(b"report.xlsx", b"PK" + bytes(200))], file_flags=RAR4_FILE_ENCRYPTED)
    async with _gateway(_config(data_dir, sink.port)) as (_, port):
        cli.users()
        ref = await _held(cli, sink, port, _mail(("見積書.rar", encrypted, "application/x-rar")))
        assert _entry(cli)["state"] == "held"
        notice = _text(_parsed(sink.messages[0].data))
        assert "【保留のお知らせ】" in notice
        assert label(Reason.ENCRYPTED_NO_UNLOCK, "ja") in notice
        assert "http" not in notice  # no link to a password page
        code, _, err = cli("alice", "quarantine", "release", ref)
        assert code == ExitCode.OK, err
        await sink.wait_for(2, within=30)
        released = _parsed(sink.messages[1].data)
        assert released["X-Mukaika-Verdict"] == "deliver"
        assert "encrypted_no_unlock" in released["X-Mukaika-Summary"]
        text = _text(released)
        assert BODY in text
        assert "見積書.rar" in text
        assert not [p for p in released.walk() if p.get_filename()]
        await _until(lambda: _entry(cli)["state"] == "released")


# --- limits ---------------------------------------------------------------------------------


class _SlowFiles:
    """A disarmer that spends the message's whole time budget on a file named slow.bin (as a
    file that takes long to disarm would), so the message is held for limit_time."""

    def __init__(self, policy: Policy, seconds: float) -> None:
        self.inner = default_disarmer(policy)
        self.seconds = seconds

    def disarm(
        self,
        untrusted_data: bytes,
        filename: str,
        kind: str,
        action: AttachmentAction,
        policy: Policy,
        **options: Any,
    ) -> CdrOutcome:
        if filename == "slow.bin":
            time.sleep(self.seconds)
        return self.inner.disarm(untrusted_data, filename, kind, action, policy, **options)


def _slow_sanitize(
    untrusted_raw: bytes, policy: Policy, reference: str, release: ReleaseTerms | None = None
) -> SanitizeResult:
    disarmer = _SlowFiles(policy, policy.limits.seconds + 0.2)
    return sanitize_message(
        untrusted_raw, policy, disarmer=disarmer, reference=reference, release=release
    )


class _SlowSanitizer(InlineSanitizer):
    async def run(
        self,
        untrusted_raw: bytes,
        reference: str,
        *,
        isolated: bool,
        policy: Policy | None = None,
        release: ReleaseTerms | None = None,
        context: NoticeContext | None = None,
        auth: AuthOutcome | None = None,
    ) -> SanitizeResult:
        assert auth is None  # sender authentication is off in these tests
        loop = asyncio.get_running_loop()
        effective = self.policy if policy is None else policy
        task = functools.partial(_slow_sanitize, release=release)
        return await loop.run_in_executor(self.executor, task, untrusted_raw, effective, reference)


async def test_a_limit_hold_is_released_text_only(
    tmp_path: Path, sink: Sink, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = tmp_path / "data"
    cli = Cli(data_dir, monkeypatch)
    config = _config(
        data_dir,
        sink.port,
        policy={"limits": {"seconds": 0.6}, "cdr": {"seconds": 0.5}},
    )
    raw = _mail(
        ("slow.bin", b"\x00\x01" * 50, "application/octet-stream"),
        ("report.txt", "報告".encode(), "text/plain"),
    )
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as executor:
        async with _gateway(config, _SlowSanitizer(config.policy, executor)) as (_, port):
            cli.users()
            ref = await _held(cli, sink, port, raw)
            assert "limit_time" in _entry(cli)["reasons"]
            code, _, err = cli("alice", "quarantine", "release", ref)
            assert code == ExitCode.OK, err
            await sink.wait_for(2, within=30)
    released = _parsed(sink.messages[1].data)
    assert released["X-Mukaika-Verdict"] == "deliver"
    assert BODY in _text(released)
    assert [p for p in released.walk() if p.get_filename()] == []  # text only
    assert "text_only" in released["X-Mukaika-Summary"]
    done = next(r for r in _audit(data_dir) if r["event"] == "release_done")
    assert done["outcome"].startswith("text only")


async def test_a_limit_hold_with_the_limit_raised_keeps_its_files(
    tmp_path: Path, sink: Sink, monkeypatch: pytest.MonkeyPatch
) -> None:
    """max_parts held it: released without raising it, it is still held (recorded, the entry
    back to held); raised for this run, the files are sanitized and attached as usual."""
    data_dir = tmp_path / "data"
    limits = {"seconds": 9.5, "max_parts": 2}
    config = _config(data_dir, sink.port, policy={"limits": limits})
    # The commands read the same policy as serve (operators pass serve's --config).
    settings = tmp_path / "mukaika.toml"
    settings.write_text(
        "[policy.limits]\nseconds = 9.5\nmax_parts = 2\n[policy.cdr]\nseconds = 9.0\n"
        "[worker]\nsanitize_timeout_seconds = 10.0\n"
    )
    cli = Cli(data_dir, monkeypatch, settings)
    raw = _mail(("a.txt", b"one", "text/plain"), ("b.txt", b"two", "text/plain"))
    async with _gateway(config) as (_, port):
        cli.users()
        ref = await _held(cli, sink, port, raw)
        assert "limit_parts" in _entry(cli)["reasons"]
        assert cli("alice", "quarantine", "release", ref)[0] == ExitCode.OK
        await _until(lambda: any(r["event"] == "release_done" for r in _audit(data_dir)))
        assert _entry(cli)["state"] == "held"
        failed = next(r for r in _audit(data_dir) if r["event"] == "release_done")
        assert failed["state"] == "failed"
        assert "limit_parts" in failed["outcome"]
        # Lowering is not raising; an unknown limit is named.
        code, _, err = cli("alice", "quarantine", "release", ref, "--raise-limit", "max_parts=1")
        assert code == ExitCode.USAGE
        code, _, err = cli("alice", "quarantine", "release", ref, "--raise-limit", "max_prats=9")
        assert (code, "unknown limit" in err) == (ExitCode.USAGE, True)
        code, _, err = cli("alice", "quarantine", "release", ref, "--raise-limit", "max_parts=10")
        assert code == ExitCode.OK, err
        await sink.wait_for(2, within=30)
        await _until(lambda: _entry(cli)["state"] == "released")
    released = _parsed(sink.messages[1].data)
    assert sorted(p.get_filename() or "" for p in released.walk() if p.get_filename()) == [
        "a.txt",
        "b.txt",
    ]
    release = [r for r in _audit(data_dir) if r["event"] == "release"][-1]
    assert release["raised_limits"] == {"max_parts": 10.0}


# --- exceptions (例外措置): original parts, with the real scanner ------------------------------


class _TaskSanitizer(InlineSanitizer):
    """The pool's task (``task_for``: scanned when the scanner is on) run in threads."""

    def __init__(self, config: Config, executor: concurrent.futures.Executor) -> None:
        super().__init__(config.policy, executor)
        self.task = task_for(config.scanner)

    async def run(
        self,
        untrusted_raw: bytes,
        reference: str,
        *,
        isolated: bool,
        policy: Policy | None = None,
        release: ReleaseTerms | None = None,
        context: NoticeContext | None = None,
        auth: AuthOutcome | None = None,
    ) -> SanitizeResult:
        assert auth is None  # sender authentication is off in these tests
        loop = asyncio.get_running_loop()
        effective = self.policy if policy is None else policy
        task = functools.partial(self.task, release=release)
        return await loop.run_in_executor(self.executor, task, untrusted_raw, effective, reference)


def _attachments(message: Message) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for part in message.walk():
        name = part.get_filename()
        if name:
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            found[name] = payload
    return found


EXE = b"MZ\x90\x00" + bytes(60) + b"PE\x00\x00" + bytes(200)


async def test_an_approved_exception_delivers_only_the_named_original_part(
    tmp_path: Path, sink: Sink, monkeypatch: pytest.MonkeyPatch, clamd_socket: Path
) -> None:
    data_dir = tmp_path / "data"
    scanner = {"enabled": True, "address": f"unix:{clamd_socket}"}
    config = _config(data_dir, sink.port, scanner=scanner)
    settings = tmp_path / "mukaika.toml"
    settings.write_text(f'[scanner]\nenabled = true\naddress = "unix:{clamd_socket}"\n')
    cli = Cli(data_dir, monkeypatch, settings)
    docm = docm_with_vba()
    raw = _mail(
        ("帳票.docm", docm, "application/vnd.ms-word.document.macroEnabled.12"),
        ("tool.exe", EXE, "application/octet-stream"),
        ("eicar.txt", EICAR, "text/plain"),
        ("memo.docm", docm, "application/vnd.ms-word.document.macroEnabled.12"),
    )
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as executor:
        async with _gateway(config, _TaskSanitizer(config, executor)) as (_, port):
            cli.users()
            await _send(port, raw)
            await sink.wait_for(1, within=60)
            first = _attachments(_parsed(sink.messages[0].data))
            assert "帳票.docx" in first  # disarmed: the macro removed, renamed
            await _until(lambda: _entry(cli)["state"] == "delivered")
            await _until(lambda: any(r["event"] == "message" for r in _audit(data_dir)))
            ref = str(_entry(cli)["id"])
            line = next(r for r in _audit(data_dir) if r["event"] == "message")
            paths = {p["filename"]: p["path"] for p in line["parts"] if p.get("filename")}
            wanted = [paths["帳票.docm"], paths["tool.exe"], paths["eicar.txt"]]
            request = ["quarantine", "request", ref, "--reason", "取引銀行の帳票（決裁 2026-123）"]
            for path in wanted:
                request += ["--part", path]
            code, _, err = cli("alice", *request)
            assert code == ExitCode.OK, err
            assert _entry(cli)["state"] == "release_requested"
            assert cli("alice", "quarantine", "approve", ref)[0] == ExitCode.DENIED
            code, _, err = cli("carol", "quarantine", "approve", ref, "--expires", "2099-01-01")
            assert code == ExitCode.OK, err
            await sink.wait_for(2, within=60)
            await _until(lambda: _entry(cli)["state"] == "released")
    released = _parsed(sink.messages[1].data)
    files = _attachments(released)
    assert files["帳票.docm"] == docm  # the named part: the sender's bytes, and name
    assert "memo.docx" in files  # not named: disarmed as usual
    assert files["memo.docx"] != docm
    assert "tool.exe" not in files  # an executable never crosses
    assert all(EICAR not in data for data in files.values())  # the scan still removes malware
    assert released["X-Mukaika-Verdict"] == "deliver"  # headers rebuilt, as always
    assert released["From"] == "取引先 <partner@example.com>" or "partner@example.com" in str(
        released["From"]
    )
    approval = next(r for r in _audit(data_dir) if r["event"] == "approval")
    assert approval["actor"] == "carol"
    assert approval["expires"].startswith("2099-01-01") or approval["expires"].startswith("2098")
    assert sorted(p["path"] for p in approval["parts"]) == sorted(wanted)


async def test_the_guides_exception_keeps_the_partners_macro_files(
    tmp_path: Path, sink: Sink, clamd_socket: Path
) -> None:
    """deploy/GUIDE.en.md section 5.3's exception, as printed there, delivers the bank's
    macro form as it was sent (it used to remove the macro)."""
    guide = (ROOT / "deploy" / "GUIDE.en.md").read_text("utf-8")
    block = next(
        b.partition("\n")[2] for b in guide.split("```toml")[1:] if "keiri-macro-forms" in b
    ).partition("```")[0]
    settings = tmp_path / "mukaika.toml"
    settings.write_text(
        f'[service]\ndata_dir = "{tmp_path / "data"}"\n'
        f'[smtp]\nlisten_port = 0\naccept_domains = ["city.example.lg.jp"]\n'
        "min_free_disk_bytes = 0\n"
        f"[delivery]\nrelay_port = {sink.port}\n[worker]\nprocesses = 1\n"
        f'[scanner]\naddress = "unix:{clamd_socket}"\n'
    )
    (tmp_path / "local.d").mkdir()
    (tmp_path / "local.d" / "keiri.toml").write_text(block)  # as printed: the scanner on too
    config = load_config(settings)
    docm = docm_with_vba()
    message = EmailMessage(policy=SMTP_POLICY)
    message["From"] = "info@bank.example.co.jp"
    message["To"] = "keiri@city.example.lg.jp"
    message["Subject"] = "帳票"
    message.set_content("帳票を送ります。")
    message.add_attachment(
        docm, maintype="application", subtype="vnd.ms-word.document.macroEnabled.12",
        filename="帳票.docm",
    )  # fmt: skip
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as executor:
        async with _gateway(config, _TaskSanitizer(config, executor)) as (_, port):
            client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False, timeout=10)
            async with client:
                await client.sendmail(
                    "info@bank.example.co.jp", ["keiri@city.example.lg.jp"], message.as_bytes()
                )
            await sink.wait_for(1, within=60)
    assert _attachments(_parsed(sink.messages[0].data))["帳票.docm"] == docm


async def test_a_released_copy_keeps_the_sender_authentication_found_before_the_250(
    tmp_path: Path, sink: Sink, monkeypatch: pytest.MonkeyPatch, auth_dns: AuthDns
) -> None:
    data_dir = tmp_path / "data"
    cli = Cli(data_dir, monkeypatch)
    auth = {"enabled": True, "nameservers": [auth_dns.nameserver], "authserv_id": "gw.test"}
    async with _gateway(_config(data_dir, sink.port, auth=auth)) as (_, port):
        cli.users()
        forged = _mail(subject="請求書", sender="a@quarantined.co.jp")
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False, timeout=10)
        async with client:
            await client.sendmail("a@quarantined.co.jp", [RCPT], forged)
        await sink.wait_for(1, within=30)
        assert _parsed(sink.messages[0].data)["X-Mukaika-Verdict"] == "hold"  # p=quarantine
        await _until(lambda: _entry(cli)["state"] == "held")
        entry = _entry(cli)
        assert entry["auth"]["action"] == "hold"
        assert entry["auth"]["reasons"] == ["dmarc_quarantine"]
        code, _, err = cli("alice", "quarantine", "release", entry["id"])
        assert code == ExitCode.OK, err
        await sink.wait_for(2, within=30)
    released = email.message_from_bytes(sink.messages[1].data, policy=default_policy)
    assert released["X-Mukaika-Verdict"] == "deliver"
    # The same results as before the 250, under our authserv-id, and the recipient warned.
    (header,) = released.get_all("Authentication-Results")
    assert header.startswith("gw.test; ")
    assert "dmarc=fail (p=quarantine) header.from=quarantined.co.jp" in header
    assert released["Subject"] == "[なりすまし注意] 請求書"
    assert BODY in _text(released)
