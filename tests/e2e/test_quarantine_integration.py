"""Quarantine, audit and metrics as the running gateway uses them (real sockets, port 0).

The gateway is built with its real quarantine, audit log and metrics (no fakes) and the real
pipeline in a thread; a recording aiosmtpd server stands in for the LGWAN MTA.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import email
import json
import urllib.request
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.policy import default as default_policy
from pathlib import Path

import aiosmtplib
import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

from gateway.configuration.config import Config
from gateway.processing.pool import InlineSanitizer
from gateway.service.assembly import Gateway, Parts
from sanitizers.policy import Policy
from tests.storekit import quarantine_in

SECRET = "SECRET-BODY-MARKER-機密本文"
RCPT = "staff@example.lg.jp"


class _Recorder:
    """The LGWAN MTA stand-in: an aiosmtpd handler that keeps what it is given."""

    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        assert isinstance(envelope.original_content, bytes)
        self.messages.append(envelope.original_content)
        return "250 2.0.0 OK"


@pytest.fixture
async def sink() -> AsyncIterator[tuple[_Recorder, int]]:
    recorder = _Recorder()
    server = await asyncio.get_running_loop().create_server(
        lambda: SMTP(recorder, hostname="sink"), "127.0.0.1", 0
    )
    yield recorder, server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


def _config(data_dir: Path, relay_port: int) -> Config:
    return Config.model_validate(
        {
            "service": {"data_dir": str(data_dir), "shutdown_grace_seconds": 5.0},
            "smtp": {
                "listen_host": "127.0.0.1",
                "listen_port": 0,
                "hostname": "gw.test",
                "accept_domains": ["example.lg.jp"],
                "min_free_disk_bytes": 0,
            },
            "worker": {"processes": 1, "concurrency": 2},
            "delivery": {"relay_host": "127.0.0.1", "relay_port": relay_port},
            "metrics": {"enabled": True, "host": "127.0.0.1", "port": 0},
        }
    )


async def _until(predicate: Callable[[], bool], within: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


def _mail() -> bytes:
    message = EmailMessage(policy=SMTP_POLICY)
    message["From"] = "山田 太郎 <taro@example.jp>"
    message["To"] = RCPT
    message["Subject"] = "見積書の送付について①"
    message["Message-ID"] = "<integration-1@example.jp>"
    message.set_content(
        f"<html><body><p>{SECRET}</p><p>よろしくお願いします。</p></body></html>",
        subtype="html",
        charset="utf-8",
    )
    return message.as_bytes()


def _fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        body: bytes = response.read()
    return body.decode()


async def test_one_message_through_real_quarantine_audit_and_metrics(
    tmp_path: Path, sink: tuple[_Recorder, int]
) -> None:
    recorder, relay_port = sink
    data_dir = tmp_path / "data"
    config = _config(data_dir, relay_port)
    raw = _mail()
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as executor:
        gateway = Gateway(config, Parts(sanitizer=InlineSanitizer(Policy(), executor)))
        try:
            _, port = await gateway.start()
            client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False, timeout=10)
            async with client:
                await client.sendmail("taro@example.jp", [RCPT], raw)
            await _until(lambda: len(recorder.messages) == 1)
            audit_path = data_dir / "audit" / "audit.jsonl"
            await _until(lambda: audit_path.exists() and audit_path.stat().st_size > 0)
            assert gateway.metrics_server is not None
            url = f"http://127.0.0.1:{gateway.metrics_server.port}/metrics"
            exposition = await asyncio.to_thread(_fetch, url)
        finally:
            await gateway.stop()

    # The text itself does reach the LGWAN side (converted from HTML) ...
    parsed = email.message_from_bytes(recorder.messages[0], policy=default_policy)
    assert isinstance(parsed, EmailMessage)
    delivered = parsed.get_body(("plain",))
    assert delivered is not None
    assert SECRET in delivered.get_content()

    # Metrics: in and out, and the HTML body converted to text.
    assert "mukaika_received_total 1.0" in exposition
    assert "mukaika_delivered_total 1.0" in exposition
    assert 'mukaika_verdicts_total{verdict="deliver"} 1.0' in exposition
    assert "mukaika_quarantined_total 1.0" in exposition
    assert 'mukaika_parts_total{action="converted",reason="html_body"} 1.0' in exposition
    assert "mukaika_sanitize_seconds_count 1.0" in exposition

    # ... but the audit line has one line, RFC 3339 time first, envelope, verdict, no body.
    text = audit_path.read_text(encoding="utf-8")
    assert "SECRET-BODY-MARKER" not in text
    assert "機密本文" not in text
    assert base64.b64encode(SECRET.encode())[:16].decode() not in text
    [line] = [json.loads(x) for x in text.splitlines()]
    assert next(iter(line)) == "time"
    assert line["time"].endswith("Z")
    assert line["verdict"] == "deliver"
    assert line["state"] == "delivered"
    assert line["rcpt_to"] == [RCPT]
    assert line["message_id"] == "<integration-1@example.jp>"
    assert "dropped_keys" not in line

    # Quarantine: the original, verified, with the decoded header fields and final state.
    with quarantine_in(data_dir / "quarantine", 90) as quarantine:
        [entry] = quarantine.list()
        assert entry.id == line["quarantine_id"]
        assert entry.queue_id == line["queue_id"]
        assert entry.state == "delivered"
        assert entry.verdict == "deliver"
        assert entry.subject == "見積書の送付について①"
        assert entry.from_ is not None
        assert "山田 太郎" in entry.from_
        assert entry.mail_from == "taro@example.jp"
        assert entry.rcpt_to == (RCPT,)
        original = quarantine.read_original(entry.id)  # verified against its SHA-256
        assert original.endswith(raw)  # the receiver may add a trace header, nothing else
        assert entry.size == len(original)
        assert "html_body" in entry.reasons


async def test_the_running_gateway_purges_its_quarantine(
    tmp_path: Path, sink: tuple[_Recorder, int]
) -> None:
    """An original past retention is removed by the service itself, without a timer."""
    _, relay_port = sink
    data_dir = tmp_path / "data"
    config = _config(data_dir, relay_port)
    with quarantine_in(config.quarantine.resolve_directory(data_dir)) as old:
        stale = old.store(
            "Qold",
            _mail(),
            client="192.0.2.1",
            helo="old",
            mail_from="taro@example.jp",
            rcpt_to=[RCPT],
            received_at=datetime.now(UTC) - timedelta(days=config.quarantine.retention_days + 1),
        )
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as executor:
        gateway = Gateway(config, Parts(sanitizer=InlineSanitizer(Policy(), executor)))
        try:
            await gateway.start()
            with quarantine_in(config.quarantine.resolve_directory(data_dir)) as check:
                await _until(lambda: check.count() == 0)
                with pytest.raises(LookupError):
                    check.get(stale)
        finally:
            await gateway.stop()
