"""PPAP end to end on real sockets: a mail with a password-protected attachment is held, its
notice arrives, a wrong password is refused and counted, the right one (given with
``mukaika quarantine unlock`` over the control socket of the running service) delivers the
disarmed files to the original recipients; automatic unlock with the password mail before
and after the encrypted mail.

The gateway runs with its real sanitizer pool (worker processes and their isolated CDR
children), quarantine and audit log; a recording aiosmtpd server stands in for the LGWAN MTA.
"""

from __future__ import annotations

import asyncio
import io
import json
import stat
import subprocess
import sys
import time
import zipfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, redirect_stderr, redirect_stdout
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest

from gateway.cli import main
from gateway.cli.exit_codes import ExitCode
from gateway.configuration.config import Config
from gateway.configuration.secret_key import load_secret_key
from gateway.processing.unlock_links import PAGE_PATH, UnlockLinks
from gateway.service.assembly import Gateway
from tests.gateway.relaykit import Delivered, Sink
from tests.sanitizers.cdr import encrypted_fixtures as enc
from tests.sanitizers.cdr import office_fixtures as office
from tests.storekit import quarantine_in

SENDER = "partner@example.com"
RCPTS = ["staff1@example.lg.jp", "staff2@example.lg.jp"]
WRONG = "wrong-guess-1"
WAIT = 120.0  # generous: the machine may be loaded; nothing is timed


def _config(
    data_dir: Path, relay_port: int, console: dict[str, Any] | None = None, **unlock: Any
) -> Config:
    return Config.model_validate(
        {
            "service": {
                "data_dir": str(data_dir),
                "shutdown_grace_seconds": 5.0,
                "display_timezone": "Asia/Tokyo",
            },
            "smtp": {
                "listen_host": "127.0.0.1",
                "listen_port": 0,
                "hostname": "gw.test",
                "accept_domains": ["example.lg.jp"],
                "min_free_disk_bytes": 0,
            },
            "worker": {"processes": 1, "concurrency": 2},
            "delivery": {"relay_host": "127.0.0.1", "relay_port": relay_port},
            "console": {"contact": "情報政策課 内線1234", **(console or {})},
            "policy": {"unlock": unlock},
        }
    )


@asynccontextmanager
async def _running(
    tmp_path: Path, console: dict[str, Any] | None = None, **unlock: Any
) -> AsyncIterator[tuple[Gateway, Sink, int]]:
    sink = await Sink().start()
    gateway = Gateway(_config(tmp_path / "data", sink.port, console, **unlock))
    try:
        _, port = await gateway.start()
        yield gateway, sink, port
    finally:
        await gateway.stop()
        await sink.stop()


def _ppap_mail(attachment: bytes, name: str) -> bytes:
    message = EmailMessage()
    message["From"] = f"取引先 <{SENDER}>"
    message["To"] = ", ".join(RCPTS)
    message["Subject"] = "資料送付の件"
    message.set_content("資料をお送りします。パスワードは別途お送りします。\n")
    message.add_attachment(attachment, maintype="application", subtype="zip", filename=name)
    return message.as_bytes()


def _password_mail(password: str) -> bytes:
    message = EmailMessage()
    message["From"] = f"取引先 <{SENDER}>"
    message["To"] = ", ".join(RCPTS)
    message["Subject"] = "パスワードのお知らせ"
    message.set_content(f"先ほどの資料のパスワードです。\n\nパスワード：{password}\n")
    return message.as_bytes()


def _archive() -> bytes:
    return enc.aes_zip({"議事録.docm": office.docm_with_vba(), "連絡.txt": enc.TEXT.encode()})


async def _send(port: int, raw: bytes) -> None:
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False, timeout=30)
    async with client:
        await client.sendmail(SENDER, RCPTS, raw)


def _unlock_cli(data_dir: Path, reference: str, password_file: Path) -> tuple[int, str, str]:
    """``mukaika quarantine unlock`` in this process (it talks to the service's socket)."""
    out, err = io.StringIO(), io.StringIO()
    argv = ["quarantine", "unlock", reference, "--password-file", str(password_file)]
    with redirect_stdout(out), redirect_stderr(err):
        code = main([*argv, "--data-dir", str(data_dir)])
    return code, out.getvalue(), err.getvalue()


def _unlock_stdin(
    data_dir: Path, reference: str, password: str
) -> subprocess.CompletedProcess[str]:
    """The same command as its own process, the password on standard input."""
    argv = ["quarantine", "unlock", reference, "--password-file", "-", "--data-dir", str(data_dir)]
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *argv],
        input=password + "\n",
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _body(delivered: Delivered) -> str:
    part = delivered.parsed().get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def _entry(data_dir: Path, reference: str) -> Any:
    with quarantine_in(data_dir / "quarantine") as quarantine:
        return quarantine.get(reference)


def _audit(data_dir: Path) -> list[dict[str, Any]]:
    text = (data_dir / "audit" / "audit.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines()]


def _no_secret_on_disk(data_dir: Path, *secrets: str) -> None:
    """Neither the audit log, the spool, the quarantine index nor anything else written under
    the data directory holds a password (the originals are gzip: the archive is encrypted)."""
    for path in data_dir.rglob("*"):
        if path.is_file() and path.suffix != ".gz":
            data = path.read_bytes()
            for secret in secrets:
                assert secret.encode() not in data, path


async def test_ppap_held_notice_wrong_then_right_password_by_command(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    async with _running(tmp_path) as (_gateway, sink, port):
        await _send(port, _ppap_mail(_archive(), "資料.zip"))
        (notice,) = await sink.wait_for(1, WAIT)
        assert sorted(notice.rcpt_tos) == sorted(RCPTS)
        reference = notice.parsed()["X-Mukaika-Reference"]
        text = _body(notice)
        assert "【パスワード入力待ちのお知らせ】" in text
        assert f"参照番号: {reference}" in text
        assert "情報政策課 内線1234" in text
        assert not list(notice.parsed().iter_attachments())
        await _until(lambda: _entry(data_dir, reference).state == "awaiting_password")

        wrong = tmp_path / "wrong.txt"
        wrong.write_text(WRONG + "\n", encoding="utf-8")
        code, _out, err = await asyncio.to_thread(_unlock_cli, data_dir, reference, wrong)
        assert code == ExitCode.WRONG_PASSWORD, err
        assert "wrong password" in err
        assert "パスワードが違います" in err
        assert "attempt 1" in err
        assert _entry(data_dir, reference).unlock_attempts == 1
        assert _entry(data_dir, reference).state == "awaiting_password"

        done = await asyncio.to_thread(_unlock_stdin, data_dir, reference, enc.PASSWORD)
        assert done.returncode == ExitCode.OK, done.stderr
        assert "unlocked" in done.stdout
        unlocked = (await sink.wait_for(2, WAIT))[1]
        assert sorted(unlocked.rcpt_tos) == sorted(RCPTS)  # every recipient of the copy
        assert unlocked.mail_from == SENDER
        message = unlocked.parsed()
        assert message["X-Mukaika-Verdict"] == "deliver"
        (attachment,) = list(message.iter_attachments())
        payload = attachment.get_payload(decode=True)
        assert isinstance(payload, bytes)
        with zipfile.ZipFile(io.BytesIO(payload)) as archive:
            assert sorted(archive.namelist()) == ["議事録.docx", "連絡.txt"]  # docm disarmed
            assert not any(info.flag_bits & 1 for info in archive.infolist())
        assert "パスワードによる暗号化" in _body(unlocked)
        await _until(
            lambda: _entry(data_dir, reference).state == "released",
            what=lambda: _entry(data_dir, reference).state,
        )

        again = await asyncio.to_thread(_unlock_cli, data_dir, reference, wrong)
        assert again[0] == ExitCode.WRONG_STATE
    unlocks = [line for line in _audit(data_dir) if line.get("event") == "unlock_attempt"]
    assert [(line["outcome"], line["attempts"], line["actor"]) for line in unlocks] == [
        ("wrong_password", 1, "root"),
        ("unlocked", 2, "root"),
    ]
    assert len(sink.messages) == 2
    _no_secret_on_disk(data_dir, enc.PASSWORD, WRONG)


async def test_attempts_are_limited_per_message(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    async with _running(tmp_path, max_attempts=2) as (_gateway, sink, port):
        await _send(port, _ppap_mail(enc.zipcrypto_zip({"a.txt": b"x"}), "a.zip"))
        (notice,) = await sink.wait_for(1, WAIT)
        reference = notice.parsed()["X-Mukaika-Reference"]
        await _until(lambda: _entry(data_dir, reference).state == "awaiting_password")
        wrong = tmp_path / "wrong.txt"
        wrong.write_text(WRONG, encoding="utf-8")
        codes = [
            (await asyncio.to_thread(_unlock_cli, data_dir, reference, wrong))[0] for _ in range(2)
        ]
        assert codes == [ExitCode.WRONG_PASSWORD, ExitCode.WRONG_PASSWORD]
        right = tmp_path / "right.txt"
        right.write_text(enc.PASSWORD, encoding="utf-8")
        code, _out, err = await asyncio.to_thread(_unlock_cli, data_dir, reference, right)
        assert code == ExitCode.WRONG_STATE
        assert "no attempts left" in err
        assert _entry(data_dir, reference).unlock_attempts == 2
    assert len(sink.messages) == 1  # only the notice


@pytest.mark.parametrize("password_first", [False, True], ids=["archive-first", "password-first"])
async def test_automatic_unlock_in_either_order(tmp_path: Path, password_first: bool) -> None:
    data_dir = tmp_path / "data"
    ppap = (
        _ppap_mail(enc.encrypted_pdf(), "案内.pdf")
        if password_first
        else _ppap_mail(enc.zipcrypto_zip({"連絡.txt": enc.TEXT.encode()}), "連絡.zip")
    )
    password = _password_mail(enc.PASSWORD)
    async with _running(tmp_path, automatic=True) as (_gateway, sink, port):
        first, second = (password, ppap) if password_first else (ppap, password)
        await _send(port, first)
        await sink.wait_for(1, WAIT)
        await _send(port, second)
        messages = await sink.wait_for(3, WAIT)
    subjects = [str(m.parsed()["Subject"]) for m in messages]
    held = next(m for m in messages if "パスワード入力待ち" in _body(m))
    assert "自動で解除を試みます" in _body(held)
    password_mail = next(
        m for m in messages if "パスワードのお知らせ" in str(m.parsed()["Subject"])
    )
    assert "パスワード：" in _body(password_mail)  # delivered as usual
    unlocked = messages[-1]
    assert unlocked.parsed()["X-Mukaika-Verdict"] == "deliver", subjects
    assert sorted(unlocked.rcpt_tos) == sorted(RCPTS)
    assert len(list(unlocked.parsed().iter_attachments())) == 1
    assert "パスワードによる暗号化" in _body(unlocked)
    assert "同じ送信者から届いたパスワードのメールで自動的に解除しました" in _body(unlocked)
    events = [line for line in _audit(data_dir) if line.get("event") == "unlock_attempt"]
    assert [(line["outcome"], line["actor"]) for line in events] == [("unlocked", "automatic")]
    _no_secret_on_disk(data_dir, enc.PASSWORD)


async def _until(predicate: Any, within: float = WAIT, what: Any = None) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, (what or (lambda: ""))()
        await asyncio.sleep(0.05)


async def test_forged_password_mails_never_use_up_the_operators_attempts(tmp_path: Path) -> None:
    """A password mail's sender can be forged: its tries have their own count."""
    data_dir = tmp_path / "data"
    async with _running(tmp_path, automatic=True, max_attempts=2) as (_gateway, sink, port):
        await _send(port, _ppap_mail(enc.zipcrypto_zip({"a.txt": b"x"}), "a.zip"))
        (notice,) = await sink.wait_for(1, WAIT)
        reference = notice.parsed()["X-Mukaika-Reference"]
        await _until(lambda: _entry(data_dir, reference).state == "awaiting_password")
        for guess in ("guess-1", "guess-2", "guess-3"):
            await _send(port, _password_mail(guess))
        await sink.wait_for(4, WAIT)  # the forged mails are delivered as usual
        await _until(
            lambda: sum(line.get("event") == "unlock_attempt" for line in _audit(data_dir)) == 3
        )
        assert _entry(data_dir, reference).unlock_attempts == 0
        right = tmp_path / "right.txt"
        right.write_text(enc.PASSWORD, encoding="utf-8")
        code, _out, err = await asyncio.to_thread(_unlock_cli, data_dir, reference, right)
        assert code == ExitCode.OK, err
        await sink.wait_for(5, WAIT)
    unlocks = [line for line in _audit(data_dir) if line.get("event") == "unlock_attempt"]
    assert [(line["outcome"], line["actor"]) for line in unlocks] == [
        ("wrong_password", "automatic"),
        ("wrong_password", "automatic"),
        ("no_attempts_left", "automatic"),
        ("unlocked", "root"),
    ]


async def test_an_unlock_the_store_failed_to_record_is_never_delivered_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Spooled, then the store refused the state change: delivered once, not unlocked again."""
    from gateway.evidence.quarantine import QuarantineStoreError

    data_dir = tmp_path / "data"
    async with _running(tmp_path) as (gateway, sink, port):
        await _send(port, _ppap_mail(enc.zipcrypto_zip({"a.txt": b"x"}), "a.zip"))
        (notice,) = await sink.wait_for(1, WAIT)
        reference = notice.parsed()["X-Mukaika-Reference"]
        await _until(lambda: _entry(data_dir, reference).state == "awaiting_password")
        unlocking = gateway.worker.unlocking
        assert unlocking is not None

        def store_down(*_: object) -> bool:
            raise QuarantineStoreError("database is locked")

        monkeypatch.setattr(unlocking.quarantine, "transition", store_down)
        right = tmp_path / "right.txt"
        right.write_text(enc.PASSWORD, encoding="utf-8")
        code, _out, err = await asyncio.to_thread(_unlock_cli, data_dir, reference, right)
        assert code == ExitCode.OK, err
        await sink.wait_for(2, WAIT)
        again, _out, _err = await asyncio.to_thread(_unlock_cli, data_dir, reference, right)
        assert again == ExitCode.WRONG_STATE
        assert _entry(data_dir, reference).state == "awaiting_password"  # as the store says
    assert len(sink.messages) == 2  # the notice and one unlocked mail


async def test_each_recipient_gets_a_notice_with_their_own_signed_link(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    console = {"public_url": "https://mukaika.example.lg.jp/", "link_lifetime_seconds": 3600}
    async with _running(tmp_path, console) as (_gateway, sink, port):
        started = time.time()
        await _send(port, _ppap_mail(_archive(), "資料.zip"))
        notices = await sink.wait_for(2, WAIT)
    key = load_secret_key(data_dir / "secret_key")
    assert stat.S_IMODE((data_dir / "secret_key").stat().st_mode) == 0o600
    links = UnlockLinks(key, console["public_url"], 3600)
    assert sorted(rcpt for notice in notices for rcpt in notice.rcpt_tos) == sorted(RCPTS)
    for notice in notices:
        (rcpt,) = notice.rcpt_tos  # one notice per recipient
        text = _body(notice)
        (line,) = [line for line in text.splitlines() if line.startswith(console["public_url"])]
        claim = links.verify(line.removeprefix(console["public_url"] + PAGE_PATH))
        assert claim.recipient == rcpt
        assert claim.reference == notice.parsed()["X-Mukaika-Reference"]
        assert started + 3600 - 5 <= claim.expires <= time.time() + 3600
        others = [other for other in RCPTS if other != rcpt]
        assert not any(other in text for other in others)  # nor another's link
