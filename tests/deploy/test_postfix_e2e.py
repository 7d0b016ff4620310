"""Issue 7's deployment acceptance test: mukaika in front of a real Postfix.

Debian's Postfix (installed by ``make check`` through ``deploy/system-packages.sh``) runs as a
private instance on loopback and plays the LGWAN-side MTA; ``mukaika serve`` runs as a child
process with its own configuration and relays to it. A Japanese HTML mail carrying a
macro-enabled Word document is sent in over SMTP and must arrive in Postfix's Maildir as a
text-only mail, with the document disarmed (no ``vbaProject.bin``) and the Japanese notice.
The test starts everything it needs, waits with bounded polls, and stops Postfix and mukaika
and removes their files even when an assertion fails.
"""

from __future__ import annotations

import email
import email.policy
import io
import json
import os
import shutil
import signal
import smtplib
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deploy.mails import BODY_JA, free_port, japanese_html_mail, smtp_banner, wait_for
from tests.deploy.postfix_instance import PostfixInstance, postfix_binary

DOMAIN = "example.lg.jp"
ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


@pytest.fixture
def postfix() -> Iterator[PostfixInstance]:
    binary = postfix_binary()
    if binary is None:
        pytest.skip(
            "Debian's postfix is not installed (make check installs it: "
            "sh deploy/system-packages.sh postfix)"
        )
    if os.geteuid() != 0:
        pytest.skip("a private Postfix instance must be started as root (as in CI)")
    # Not below pytest's tmp_path: its parents are private to root, and Postfix's daemons
    # (user postfix) must reach their queue and the Maildir.
    root = Path(tempfile.mkdtemp(prefix="mukaika-postfix-"))
    instance = PostfixInstance(root, free_port(), DOMAIN, binary)
    try:
        instance.write_config()
        instance.start()
        yield instance
    finally:
        try:
            instance.stop()
        finally:
            shutil.rmtree(root, ignore_errors=True)


class Mukaika:
    """``mukaika serve --config FILE`` in a child process, stopped with SIGTERM."""

    def __init__(self, directory: Path, relay_port: int) -> None:
        self.directory = directory
        self.port = free_port()
        self.data_dir = directory / "data"
        self.config = directory / "mukaika.toml"
        self.output = directory / "serve.log"
        self.config.write_text(
            f"""
[service]
data_dir = "{self.data_dir}"
shutdown_grace_seconds = 5.0

[smtp]
listen_host = "127.0.0.1"
listen_port = {self.port}
hostname = "mukaika.test"
accept_domains = ["{DOMAIN}"]

[worker]
processes = 1

[delivery]
relay_host = "127.0.0.1"
relay_port = {relay_port}
helo_name = "mukaika.test"
timeout_seconds = 30.0
retry_initial_seconds = 1.0
retry_max_seconds = 2.0
""",
            encoding="utf-8",
        )
        self.process: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        script = Path(sys.executable).with_name("mukaika")
        if script.exists():
            return [str(script), "serve", "--config", str(self.config)]
        return [sys.executable, "-m", "gateway.cli", "serve", "--config", str(self.config)]

    def log(self) -> str:
        try:
            return "mukaika serve output:\n" + self.output.read_text(errors="replace")[-4000:]
        except OSError:
            return "(no output from mukaika serve)"

    def start(self) -> None:
        with self.output.open("wb") as sink:
            self.process = subprocess.Popen(
                self.command(),
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )

        def up() -> bool | None:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"mukaika serve exited early\n{self.log()}")
            return smtp_banner(self.port)

        wait_for("mukaika to listen", up, 60, self.log)

    def stop(self) -> int | None:
        if self.process is None:
            return None
        process, self.process = self.process, None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
            return None


def delivered_files(maildir: Path) -> list[Path] | None:
    new = maildir / "new"
    files = sorted(new.iterdir()) if new.is_dir() else []
    return files or None


def audit_records(data_dir: Path) -> list[dict[str, object]] | None:
    path = data_dir / "audit" / "audit.jsonl"
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return None
    records = [json.loads(line) for line in lines if line.strip()]
    return records if any(r.get("state") == "delivered" for r in records) else None


def test_macro_docm_arrives_in_postfix_maildir_text_only_and_disarmed(
    postfix: PostfixInstance, tmp_path: Path
) -> None:
    gateway = Mukaika(tmp_path, postfix.port)
    try:
        gateway.start()

        def logs() -> str:
            return f"{gateway.log()}\nPostfix maillog:\n{postfix.log()}"

        with smtplib.SMTP("127.0.0.1", gateway.port, timeout=30) as client:
            client.ehlo("sender.example.com")
            refused = client.sendmail(
                "taro@example.com", [f"staff@{DOMAIN}"], japanese_html_mail(f"staff@{DOMAIN}")
            )
        assert refused == {}

        files = wait_for(
            "the mail in Postfix's Maildir", lambda: delivered_files(postfix.maildir), 90, logs
        )
        assert len(files) == 1
        delivered = email.message_from_bytes(files[0].read_bytes(), policy=email.policy.default)
        records = wait_for(
            "the audit line", lambda: audit_records(gateway.data_dir), 30, gateway.log
        )
        exit_code = gateway.stop()
    finally:
        gateway.stop()

    # It went through Postfix: its smtpd received it from mukaika over loopback.
    received = delivered.get_all("Received") or []
    assert any("lgwan-mta.test" in str(line) and "mukaika.test" in str(line) for line in received)
    assert str(delivered["Subject"]) == "会議資料の送付"
    assert delivered["X-Mukaika-Verdict"] == "deliver"

    # Text only: no HTML anywhere, the Japanese body readable, the notice at the end.
    types = [part.get_content_type() for part in delivered.walk()]
    assert "text/html" not in types
    body = delivered.get_body(preferencelist=("plain",))
    assert body is not None
    text = body.get_content()
    assert BODY_JA in text
    assert "ご確認ください。" in text
    assert "<p>" not in text
    assert "会議資料.docm" in text
    assert "VBAマクロ" in text

    # The document arrives disarmed: still a Word document, without its macro project.
    attachments = list(delivered.iter_attachments())
    assert len(attachments) == 1
    assert attachments[0].get_filename() == "会議資料.docx"
    data = attachments[0].get_content()
    with zipfile.ZipFile(io.BytesIO(data)) as package:
        names = package.namelist()
        assert "word/document.xml" in names
        assert not any("vbaProject" in name or "vbaData" in name for name in names)
        assert "macroEnabled" not in package.read("[Content_Types].xml").decode()

    # The audit line records the CDR and Postfix's 250 reply; the service stopped cleanly.
    (record,) = [r for r in records if r.get("state") == "delivered"]
    assert record["verdict"] == "deliver"
    parts = record["parts"]
    assert isinstance(parts, list)
    assert any(
        p.get("filename") == "会議資料.docm" and p.get("action") == "sanitized" for p in parts
    )
    deliveries = record["deliveries"]
    assert isinstance(deliveries, list)
    assert deliveries[-1]["code"] == 250
    assert exit_code == 0
