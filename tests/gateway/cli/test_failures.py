"""The command line fails in one clear line, never with a traceback.

* Output into a pipe whose reader is gone (``mukaika quarantine list | head``): every command
  that writes to stdout stops quietly with ExitCode.BROKEN_PIPE, whatever it was printing. The
  pipe's read end is closed before the command starts, so the first write fails: no race.
* ``mukaika send`` against nothing listening, a server that refuses the recipient or the
  sender, a partial refusal, and an unreadable file: one line each, exit 1.
"""

from __future__ import annotations

import errno
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from gateway.cli.exit_codes import ExitCode
from gateway.queue.spool import Envelope as SpoolEnvelope
from gateway.queue.spool import Spool, new_queue_id
from tests.deploy.mails import free_port
from tests.paths import ROOT
from tests.storekit import quarantine_in

MUKAIKA = [sys.executable, "-m", "gateway.cli"]


def mukaika(*argv: str, stdout: Any = subprocess.PIPE) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*MUKAIKA, *argv],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A quarantine with more entries than a terminal page, a spool, and a mail."""
    data = tmp_path / "data"
    spool = Spool(data / "spool")
    for _ in range(5):
        spool.accept(
            SpoolEnvelope(
                queue_id=new_queue_id(), mail_from="a@example.jp", rcpt_tos=("b@example.lg.jp",)
            ),
            b"Subject: x\r\n\r\nx\r\n",
        )
    with quarantine_in(data / "quarantine", 90) as quarantine:
        for n in range(60):
            quarantine.store(
                f"Q{n}",
                f"Subject: 見積書 {n}\r\n\r\n本文\r\n".encode(),
                client="192.0.2.1",
                helo="mx.example.net",
                mail_from="taro@example.jp",
                rcpt_to=["hanako@city.example.lg.jp"],
                received_at=datetime(2026, 11, 1, 0, n, tzinfo=UTC),
            )
    (data / "mail.eml").write_bytes(b"Subject: x\r\n\r\n" + b"line\r\n" * 10_000)
    return data


def into_a_closed_pipe(*argv: str) -> subprocess.CompletedProcess[str]:
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first line is written
    try:
        return mukaika(*argv, stdout=write_end)
    finally:
        os.close(write_end)


def one_quarantine_id(data_dir: Path) -> str:
    with quarantine_in(data_dir / "quarantine", 90) as quarantine:
        return quarantine.list()[0].id


@pytest.mark.parametrize(
    "argv",
    [
        ["quarantine", "list", "--data-dir", "{data}"],
        ["quarantine", "list", "--data-dir", "{data}", "--json"],
        ["quarantine", "show", "--data-dir", "{data}", "{id}"],
        ["quarantine", "export", "--data-dir", "{data}", "{id}", "-"],
        ["quarantine", "verify", "--data-dir", "{data}"],
        ["queue", "--data-dir", "{data}", "list"],
        ["sanitize", "{data}/mail.eml"],
        ["check-config"],
        ["check-config", "--json"],
        ["--help"],
    ],
    ids=" ".join,
)
def test_a_reader_that_went_away_stops_the_command_quietly(argv: list[str], data_dir: Path) -> None:
    qid = one_quarantine_id(data_dir)
    result = into_a_closed_pipe(*(a.format(data=data_dir, id=qid) for a in argv))
    assert "Traceback" not in result.stderr
    assert "Exception ignored" not in result.stderr
    if argv != ["--help"]:  # argparse prints help and exits on its own
        assert result.returncode == ExitCode.BROKEN_PIPE, result.stderr
    assert result.stderr == ""


def test_the_whole_listing_still_reaches_a_reader_that_stays(data_dir: Path) -> None:
    result = mukaika("quarantine", "list", "--data-dir", str(data_dir), "--limit", "60")
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 61  # a header and every entry


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed when this returns: nothing listens


def test_send_to_nothing_listening_says_so_in_one_line() -> None:
    port = closed_port()
    result = mukaika("send", "--server", f"127.0.0.1:{port}")
    assert result.returncode == ExitCode.UNAVAILABLE
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"mukaika send: not sent: cannot connect to 127.0.0.1:{port}: ")


def test_send_an_unreadable_file_says_so_in_one_line(tmp_path: Path) -> None:
    for path in (tmp_path / "missing.eml", tmp_path):
        result = mukaika("send", "--server", f"127.0.0.1:{closed_port()}", str(path))
        assert result.returncode == ExitCode.INPUT
        (line,) = result.stderr.splitlines()
        assert line.startswith(f"mukaika send: cannot read {path}: ")


class Refusing:
    """An SMTP server that refuses one recipient, or every sender."""

    def __init__(self, refuse_sender: bool = False) -> None:
        self.refuse_sender = refuse_sender

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self.refuse_sender:
            return "550 5.7.1 sender blocked"
        envelope.mail_from = address
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address.startswith("outside@"):
            return "554 5.7.1 relay access denied"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        return "250 2.0.0 OK queued"


@pytest.fixture
def refusing_server(request: pytest.FixtureRequest) -> Iterator[int]:
    port = free_port()
    controller = Controller(Refusing(request.param), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


@pytest.mark.parametrize("refusing_server", [False], indirect=True)
def test_send_a_refused_recipient_says_so_in_one_line(refusing_server: int) -> None:
    server = f"127.0.0.1:{refusing_server}"
    result = mukaika("send", "--server", server, "--to", "outside@elsewhere.example")
    assert result.returncode == ExitCode.REFUSED
    assert result.stderr == (
        "mukaika send: not sent: outside@elsewhere.example: 554 5.7.1 relay access denied\n"
    )
    partial = mukaika(
        "send", "--server", server, "--to", "staff@example.lg.jp", "--to", "outside@x.example"
    )
    assert partial.returncode == ExitCode.REFUSED
    assert partial.stdout == "mukaika send: 2.0.0 OK queued\n"
    assert (
        partial.stderr == "mukaika send: refused outside@x.example: 554 5.7.1 relay access denied\n"
    )


@pytest.mark.parametrize("refusing_server", [True], indirect=True)
def test_send_a_refused_sender_says_so_in_one_line(refusing_server: int) -> None:
    result = mukaika("send", "--server", f"127.0.0.1:{refusing_server}")
    assert result.returncode == ExitCode.REFUSED
    assert result.stderr == "mukaika send: not sent: 550 5.7.1 sender blocked\n"


def test_a_broken_pipe_that_is_not_stdout_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only a reader of stdout going away is quiet: a broken pipe or socket met by the command's
    own work (serve writing to a client, a worker pipe) is an error that shows."""
    import gateway.cli.serve
    from gateway.cli import main

    def broken(args: object) -> int:
        raise BrokenPipeError(errno.EPIPE, "Broken pipe (a socket of the command's own work)")

    monkeypatch.setattr(gateway.cli.serve, "run_serve", broken)
    with pytest.raises(BrokenPipeError):
        main(["serve"])
