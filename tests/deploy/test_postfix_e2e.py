"""Issue 7's deployment acceptance tests: mukaika with a real Postfix, in both layouts.

Debian's Postfix (installed by ``make check`` through ``deploy/system-packages.sh``) runs as a
private instance on loopback; ``mukaika serve`` runs as a child process with one of the
shipped example configurations (``config/examples``), changed only where a test must be
(loopback addresses, free ports, a temporary data directory, no clamd, no metrics port).

* MX relay layout: mail sent to mukaika is relayed to Postfix, the LGWAN-side MTA.
* Content-filter layout: mail sent to Postfix goes through ``content_filter`` to mukaika and
  back into Postfix, whose ``main.cf`` and ``master.cf`` include ``deploy/postfix/*.snippet``.

Either way a Japanese HTML mail carrying a macro-enabled Word document must arrive in
Postfix's Maildir as a text-only mail, the document disarmed (no ``vbaProject.bin``), with the
Japanese notice. Everything is started here with bounded waits and stopped, and its files
removed, even when an assertion fails.
"""

from __future__ import annotations

import email
import email.policy
import io
import json
import os
import re
import shutil
import signal
import smtplib
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.mails import BODY_JA, free_port, japanese_html_mail, smtp_banner, wait_for
from tests.deploy.postfix_instance import PostfixInstance
from tests.tools import require_tool

DOMAIN = "city.example.lg.jp"  # the domain of both example configurations
RECIPIENT = f"staff@{DOMAIN}"
ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "config" / "examples"
SNIPPETS = ROOT / "deploy" / "postfix"

pytestmark = pytest.mark.slow


def toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # JSON's string escapes are TOML's
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    raise TypeError(f"no TOML for {value!r}")


def toml_text(data: dict[str, dict[str, Any]]) -> str:
    lines: list[str] = []
    for section, table in data.items():
        lines.append(f"[{section}]")
        lines.extend(f"{key} = {toml_value(value)}" for key, value in table.items())
    return "\n".join(lines) + "\n"


def example_for_test(name: str, directory: Path, **sections: dict[str, Any]) -> Path:
    """``config/examples/NAME`` with the tests' changes merged in, written to ``directory``."""
    data = tomllib.loads((EXAMPLES / name).read_text(encoding="utf-8"))
    for section, changes in sections.items():
        data.setdefault(section, {}).update(changes)
    path = directory / name
    path.write_text(toml_text(data), encoding="utf-8")
    return path


def loopback_changes(directory: Path, listen_port: int, relay_port: int) -> dict[str, Any]:
    """What a test must change in an example: nothing leaves loopback or the temp dir."""
    return {
        "service": {"data_dir": str(directory / "data"), "shutdown_grace_seconds": 5.0},
        "smtp": {"listen_host": "127.0.0.1", "listen_port": listen_port},
        "delivery": {
            "relay_host": "127.0.0.1",
            "relay_port": relay_port,
            "retry_initial_seconds": 1.0,
            "retry_max_seconds": 2.0,
        },
        "worker": {"processes": 1},
        # clamd is tested in tests/gateway/processing/test_scanner.py; not needed for this path.
        "scanner": {"enabled": False},
        "audit": {"path": "audit/audit.jsonl"},
        "metrics": {"enabled": False},
    }


@pytest.fixture
def postfix_root() -> Iterator[tuple[str, Path]]:
    binary = require_tool("postfix", debian_package="postfix")
    if os.geteuid() != 0:
        pytest.skip("a private Postfix instance must be started as root (as in CI)")
    # Not below pytest's tmp_path: its parents are private to root, and Postfix's daemons
    # (user postfix) must reach their queue and the Maildir.
    root = Path(tempfile.mkdtemp(prefix="mukaika-postfix-"))
    try:
        yield binary, root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def running() -> Iterator[list[Any]]:
    """Things with a ``stop()`` to stop after the test, in reverse order, whatever happens."""
    started: list[Any] = []
    try:
        yield started
    finally:
        for thing in reversed(started):
            thing.stop()


class Mukaika:
    """``mukaika serve --config FILE`` in a child process, stopped with SIGTERM."""

    def __init__(self, config: Path, port: int, data_dir: Path) -> None:
        self.config = config
        self.port = port
        self.data_dir = data_dir
        self.output = config.with_suffix(".log")
        self.process: subprocess.Popen[bytes] | None = None
        self.exit_code: int | None = None

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

    def stop(self) -> None:
        if self.process is None:
            return
        process, self.process = self.process, None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            self.exit_code = process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def delivered_files(maildir: Path) -> list[Path] | None:
    new = maildir / "new"
    files = sorted(new.iterdir()) if new.is_dir() else []
    return files or None


def delivered_record(data_dir: Path) -> dict[str, Any] | None:
    path = data_dir / "audit" / "audit.jsonl"
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return None
    records = [json.loads(line) for line in lines if line.strip()]
    delivered = [r for r in records if r.get("state") == "delivered"]
    assert len(delivered) <= 1, records
    return delivered[0] if delivered else None


def send(port: int) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.ehlo("sender.example.com")
        refused = client.sendmail("taro@example.com", [RECIPIENT], japanese_html_mail(RECIPIENT))
    assert refused == {}


def assert_text_only_and_disarmed(delivered: EmailMessage) -> None:
    assert str(delivered["Subject"]) == "会議資料の送付"
    assert delivered["X-Mukaika-Verdict"] == "deliver"
    # Text only: no HTML anywhere, the Japanese body readable, the notice at the end.
    assert "text/html" not in [part.get_content_type() for part in delivered.walk()]
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
    assert [a.get_filename() for a in attachments] == ["会議資料.docx"]
    with zipfile.ZipFile(io.BytesIO(attachments[0].get_content())) as package:
        names = package.namelist()
        assert "word/document.xml" in names
        assert not any("vbaProject" in name or "vbaData" in name for name in names)
        assert "macroEnabled" not in package.read("[Content_Types].xml").decode()


def assert_audited(record: dict[str, Any]) -> None:
    assert record["verdict"] == "deliver"
    assert any(
        p.get("filename") == "会議資料.docm" and p.get("action") == "sanitized"
        for p in record["parts"]
    )
    assert record["deliveries"][-1]["code"] == 250


def received_chain(message: EmailMessage) -> str:
    return "\n".join(str(line) for line in message.get_all("Received") or [])


def test_mx_relay_layout_delivers_into_postfix_text_only_and_disarmed(
    postfix_root: tuple[str, Path], running: list[Any], tmp_path: Path
) -> None:
    binary, root = postfix_root
    postfix = PostfixInstance(root, free_port(), DOMAIN, binary)
    postfix.write_config()
    running.append(postfix)
    postfix.start()

    port = free_port()
    changes = loopback_changes(tmp_path, port, postfix.port)
    changes["smtp"].update(tls_cert_file="", tls_key_file="")  # no certificate in the test
    changes["delivery"].update(dsn_relay_host="")
    gateway = Mukaika(
        example_for_test("mx-relay.toml", tmp_path, **changes), port, tmp_path / "data"
    )
    running.append(gateway)
    gateway.start()

    def logs() -> str:
        return f"{gateway.log()}\nPostfix maillog:\n{postfix.log()}"

    send(gateway.port)
    files = wait_for(
        "mail in Postfix's Maildir", lambda: delivered_files(postfix.maildir), 90, logs
    )
    record = wait_for("the audit line", lambda: delivered_record(gateway.data_dir), 30, logs)
    gateway.stop()

    assert len(files) == 1
    delivered = email.message_from_bytes(files[0].read_bytes(), policy=email.policy.default)
    assert isinstance(delivered, EmailMessage)
    # It went through Postfix: its smtpd received it from mukaika over loopback.
    chain = received_chain(delivered)
    assert "lgwan-mta.test" in chain
    assert "mx.city.example.lg.jp" in chain
    assert_text_only_and_disarmed(delivered)
    assert_audited(record)
    assert gateway.exit_code == 0


def snippet_lines(name: str, ports: dict[str, int]) -> str:
    """A deploy/postfix snippet with its loopback ports moved to the test's free ports."""
    text = (SNIPPETS / name).read_text(encoding="utf-8")
    for fixed, free in ports.items():
        text = text.replace(fixed, str(free))
    return text


def test_content_filter_layout_filters_through_mukaika_back_into_postfix(
    postfix_root: tuple[str, Path], running: list[Any], tmp_path: Path
) -> None:
    binary, root = postfix_root
    mukaika_port, return_port = free_port(), free_port()
    ports = {"10025": mukaika_port, "10026": return_port}
    postfix = PostfixInstance(
        root,
        free_port(),
        DOMAIN,
        binary,
        main_cf_extra=snippet_lines("main.cf.snippet", ports),
        master_cf_extra=snippet_lines("master.cf.snippet", ports),
    )
    postfix.write_config()
    running.append(postfix)
    postfix.start()
    # The snippets are accepted as written: no warning from postfix check or start.
    warnings = [line for line in postfix.log().splitlines() if "warning:" in line]
    assert warnings == []

    changes = loopback_changes(tmp_path, mukaika_port, return_port)
    # Notices to senders go back into Postfix through the same return port.
    example = tomllib.loads((EXAMPLES / "postfix-content-filter.toml").read_text("utf-8"))
    assert example["delivery"]["dsn_relay_port"] == example["delivery"]["relay_port"] == 10026
    changes["delivery"]["dsn_relay_port"] = return_port
    config = example_for_test("postfix-content-filter.toml", tmp_path, **changes)
    gateway = Mukaika(config, mukaika_port, tmp_path / "data")
    running.append(gateway)
    gateway.start()

    def logs() -> str:
        return f"{gateway.log()}\nPostfix maillog:\n{postfix.log()}"

    send(postfix.port)  # to Postfix, the Internet-facing MX of this layout
    files = wait_for(
        "mail in Postfix's Maildir", lambda: delivered_files(postfix.maildir), 90, logs
    )
    record = wait_for("the audit line", lambda: delivered_record(gateway.data_dir), 30, logs)
    gateway.stop()

    assert len(files) == 1
    delivered = email.message_from_bytes(files[0].read_bytes(), policy=email.policy.default)
    assert isinstance(delivered, EmailMessage)
    # Postfix -> mukaika -> Postfix's return smtpd: the Maildir copy passed the filter once.
    maillog = postfix.log()
    assert re.search(r"postfix/mukaika/smtp\[\d+\]: .*status=sent", maillog), maillog
    assert "postfix/mukaika-return/smtpd" in maillog
    assert "mukaika.localhost" in received_chain(delivered)
    assert record["mail_from"] == "taro@example.com"
    assert record["rcpt_to"] == [RECIPIENT]
    assert_text_only_and_disarmed(delivered)
    assert_audited(record)
    assert gateway.exit_code == 0


def _encrypted_zip() -> bytes:
    """A ZIP whose entry claims ZipCrypto encryption: the message is held."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("見積書.xlsx", b"PK" + bytes(100))
    data = bytearray(out.getvalue())
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = data.find(signature)
        flags = int.from_bytes(data[at + offset : at + offset + 2], "little") | 1
        data[at + offset : at + offset + 2] = flags.to_bytes(2, "little")
    return bytes(data)


def test_content_filter_layout_a_release_never_passes_the_filter_again(
    postfix_root: tuple[str, Path], running: list[Any], tmp_path: Path
) -> None:
    """A held message released with ``mukaika quarantine release`` reaches the Maildir through
    Postfix's return port only: Postfix handed mail to mukaika's filter once (the original)."""
    binary, root = postfix_root
    mukaika_port, return_port = free_port(), free_port()
    ports = {"10025": mukaika_port, "10026": return_port}
    postfix = PostfixInstance(
        root,
        free_port(),
        DOMAIN,
        binary,
        main_cf_extra=snippet_lines("main.cf.snippet", ports),
        master_cf_extra=snippet_lines("master.cf.snippet", ports),
    )
    postfix.write_config()
    running.append(postfix)
    postfix.start()
    changes = loopback_changes(tmp_path, mukaika_port, return_port)
    changes["delivery"]["dsn_relay_port"] = return_port
    changes["release"] = {"poll_interval_seconds": 0.2}
    config = example_for_test("postfix-content-filter.toml", tmp_path, **changes)
    gateway = Mukaika(config, mukaika_port, tmp_path / "data")
    running.append(gateway)
    gateway.start()

    def logs() -> str:
        return f"{gateway.log()}\nPostfix maillog:\n{postfix.log()}"

    mail = japanese_html_mail(RECIPIENT, [("見積書.zip", "application/zip", _encrypted_zip())])
    with smtplib.SMTP("127.0.0.1", postfix.port, timeout=30) as client:
        assert client.sendmail("taro@example.com", [RECIPIENT], mail) == {}
    notice = wait_for("the held notice", lambda: delivered_files(postfix.maildir), 90, logs)
    entries = [
        json.loads(line)
        for line in cli(config, None, "quarantine", "list", "--json").stdout.splitlines()
    ]
    assert [e["state"] for e in entries] == ["awaiting_password"], entries
    assert (
        cli(config, None, "user", "add", "suzuki", "--role", "operator", "--no-password").returncode
        == 0
    )
    released = cli(config, "suzuki", "quarantine", "release", entries[0]["id"])
    assert released.returncode == 0, released.stderr

    def two() -> list[Path] | None:
        files = delivered_files(postfix.maildir)
        return files if files is not None and len(files) == 2 else None

    files = wait_for("the released mail in the Maildir", two, 90, logs)
    gateway.stop()
    copies = [email.message_from_bytes(f.read_bytes(), policy=email.policy.default) for f in files]
    verdicts = sorted(str(m["X-Mukaika-Verdict"]) for m in copies)
    assert verdicts == ["deliver", "hold"]
    assert notice[0] in files
    # Postfix's filter transport handed mukaika mail exactly once: the original.
    maillog = postfix.log()
    assert len(re.findall(r"postfix/mukaika/smtp\[\d+\]: .*status=sent", maillog)) == 1, maillog
    assert len(re.findall(r"postfix/mukaika-return/smtpd\[\d+\]: [0-9A-F]+: client=", maillog)) == 2


def cli(config: Path, user: str | None, *argv: str) -> subprocess.CompletedProcess[str]:
    """``mukaika ARGV --config CONFIG`` as the person ``user`` (as sudo records them)."""
    env = {k: v for k, v in os.environ.items() if k not in ("SUDO_USER", "SUDO_UID")}
    if user is not None:
        env.update(SUDO_USER=user, SUDO_UID="4242")
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *argv, "--config", str(config)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
