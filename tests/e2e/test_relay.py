"""The whole relay on real sockets: gateway in, recording aiosmtpd sink (the LGWAN MTA) out.

Every test counts messages in (250s given) and out (arrived at the sink, dead-lettered)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import gc
import ssl
import subprocess
from collections.abc import AsyncIterator, Iterator
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest
from aiosmtpd.smtp import SMTP

from gateway.processing.pool import InlineSanitizer
from gateway.queue.spool import Spool
from sanitizers.policy import Policy
from tests.gateway.relaykit import (
    SIMPLE,
    STUB_TEXT,
    FakeSanitizer,
    Harness,
    Sink,
    free_port,
    make_config,
    start_gateway,
    wait_until,
)

RCPT = "staff@example.lg.jp"


@pytest.fixture(autouse=True)
def _collect_garbage() -> Iterator[None]:
    """A leaked socket warns in the test that leaked it, not in a later one."""
    yield
    gc.collect()


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    server = await Sink().start()
    yield server
    await server.stop()


async def send(
    port: int,
    message: bytes = SIMPLE,
    rcpts: list[str] | None = None,
    sender: str = "someone@example.com",
) -> str:
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False, timeout=10)
    async with client:
        _, reply = await client.sendmail(sender, rcpts or [RCPT], message)
    return reply


class Running:
    """A gateway under test that is always stopped, even when the test fails."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.harnesses: list[Harness] = []

    async def start(self, relay_port: int, sanitizer: Any = None, **sections: Any) -> Harness:
        config = make_config(self.tmp_path / "data", relay_port, **sections)
        harness = await start_gateway(config, sanitizer)
        self.harnesses.append(harness)
        return harness

    async def stop_all(self) -> None:
        for harness in self.harnesses:
            await harness.gateway.stop()
        self.harnesses.clear()


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Running]:
    state = Running(tmp_path)
    yield state
    await state.stop_all()


def japanese_html_mail() -> bytes:
    message = EmailMessage(policy=SMTP_POLICY)
    message["From"] = "山田 太郎 <taro@example.com>"
    message["To"] = RCPT
    message["Subject"] = "【至急】会議資料の送付について"
    message.set_content("いつもお世話になっております。\n会議資料をお送りします。\n")
    message.add_alternative(
        "<html><body><p>いつもお世話になっております。</p><script>alert(1)</script>"
        '<p><a href="http://example.com/">資料はこちら</a></p></body></html>',
        subtype="html",
    )
    message.add_attachment(
        b"MZ\x90\x00 not really a program",
        maintype="application",
        subtype="octet-stream",
        filename="請求書.exe",
    )
    return message.as_bytes()


async def test_japanese_html_mail_arrives_text_only(sink: Sink, running: Running) -> None:
    """With the real pipeline (whatever sanitizers.pipeline is today): structural checks."""
    with concurrent.futures.ThreadPoolExecutor(1) as executor:
        gw = await running.start(sink.port, InlineSanitizer(Policy(), executor))
        reply = await send(gw.port, japanese_html_mail())
        assert reply.startswith("2.0.0 OK queued as")
        (delivered,) = await sink.wait_for(1)
        await wait_until(lambda: len(gw.audit.records) == 1)
        await running.stop_all()
    message = delivered.parsed()
    assert message["Subject"]
    types = [part.get_content_type() for part in message.walk()]
    assert "text/html" not in types
    assert "application/octet-stream" not in types
    assert b"<script" not in delivered.data
    assert b"MZ\x90" not in delivered.data
    body = message.get_body(("plain",))
    assert body is not None
    assert body.get_content_type() == "text/plain"
    assert delivered.rcpt_tos == [RCPT]
    # The original is kept in the quarantine; the audit line says delivered.
    assert len(gw.quarantine.stored) == 1
    (record,) = gw.audit.records
    # Sanitized by the pipeline, not held because the pipeline failed.
    assert record["verdict"] == "deliver"
    assert record["state"] == "delivered"
    assert "Message held" not in str(message["Subject"])
    assert record["queue_id"] in reply
    assert gw.metrics.counts["received"] == 1
    assert gw.metrics.counts["delivered"] == 1


async def test_delivers_stub_output_and_records_everything(sink: Sink, running: Running) -> None:
    gw = await running.start(sink.port)
    for _ in range(3):
        await send(gw.port)
    delivered = await sink.wait_for(3)
    assert all(d.data == STUB_TEXT for d in delivered)
    await wait_until(lambda: len(gw.audit.records) == 3)
    spool = gw.gateway.spool
    assert spool.ids("incoming") == []
    assert spool.ids("outgoing") == []
    assert len(spool.ids("delivered")) == 3
    assert all(states == ["delivered"] for states in gw.quarantine.states.values())
    record = gw.audit.records[0]
    assert record["deliveries"][0]["code"] == 250
    assert record["attempts"] == 1
    assert "body" not in str(record).lower()


async def test_downstream_down_then_back(tmp_path: Path, running: Running) -> None:
    port = free_port()  # nothing listens yet
    gw = await running.start(port)
    await send(gw.port)
    await send(gw.port)
    await wait_until(lambda: gw.metrics.counts["deferred"] >= 2)
    assert len(gw.gateway.spool.ids("outgoing")) == 2
    sink = Sink()
    sink.port = port
    await sink.start()
    try:
        await sink.wait_for(2)
        await wait_until(lambda: gw.metrics.counts["delivered"] == 2)
        assert gw.gateway.spool.ids("outgoing") == []
        record = gw.audit.records[0]
        assert record["attempts"] >= 2
        assert record["deliveries"][0]["error"] == "temporary"
    finally:
        await sink.stop()


@pytest.mark.parametrize("fault", ["4xx", "drop", "slow"])
async def test_downstream_fault_is_retried(sink: Sink, running: Running, fault: str) -> None:
    sink.handler.fault = fault
    sink.handler.delay = 3.0  # beyond delivery.timeout_seconds for "slow"
    gw = await running.start(sink.port, delivery={"timeout_seconds": 0.5})
    await send(gw.port)
    await wait_until(lambda: gw.metrics.counts["deferred"] >= 1)
    assert gw.gateway.spool.ids("outgoing")
    sink.handler.fault = None
    await sink.wait_for(1)
    await wait_until(lambda: gw.metrics.counts["delivered"] == 1)
    # Duplicates are acceptable after a broken connection; a loss is not.
    assert len(sink.messages) >= 1
    assert gw.metrics.counts["dead_lettered"] == 0


async def test_downstream_5xx_dead_letter_and_dsn(sink: Sink, running: Running) -> None:
    dsn_sink = await Sink().start()
    try:
        sink.handler.fault = "5xx"
        gw = await running.start(
            sink.port, delivery={"dsn_relay_host": "127.0.0.1", "dsn_relay_port": dsn_sink.port}
        )
        await send(gw.port, sender="sender@example.com")
        await send(gw.port, sender="")  # a bounce: never answered with a notice
        await wait_until(lambda: gw.metrics.counts["dead_lettered"] == 2)
        (notice,) = await dsn_sink.wait_for(1)
        assert notice.mail_from in ("", "<>")  # the null reverse-path
        assert notice.rcpt_tos == ["sender@example.com"]
        parsed = notice.parsed()
        assert parsed.get_content_type() == "multipart/report"
        assert b"554 5.6.0" in notice.data
        assert b"(stub)" not in notice.data  # no content goes back out
        assert len(gw.gateway.spool.ids("dead")) == 2
        assert sink.messages == []
        await wait_until(lambda: len(gw.audit.records) == 2)
        states = sorted(r["state"] for r in gw.audit.records)
        assert states == ["dead", "dead"]
        assert all(s[-1] == "dead" for s in gw.quarantine.states.values())
        await asyncio.sleep(0.1)
        assert len(dsn_sink.messages) == 1
    finally:
        await dsn_sink.stop()


async def test_some_recipients_refused(sink: Sink, running: Running) -> None:
    dsn_sink = await Sink().start()
    try:
        sink.handler.refuse_rcpt = {"gone@example.lg.jp"}
        gw = await running.start(
            sink.port, delivery={"dsn_relay_host": "127.0.0.1", "dsn_relay_port": dsn_sink.port}
        )
        await send(gw.port, rcpts=[RCPT, "gone@example.lg.jp"])
        (delivered,) = await sink.wait_for(1)
        assert delivered.rcpt_tos == [RCPT]
        (notice,) = await dsn_sink.wait_for(1)
        assert b"gone@example.lg.jp" in notice.data
        assert gw.gateway.spool.ids("delivered")
    finally:
        await dsn_sink.stop()


async def test_lifetime_exceeded_dead_letter(running: Running) -> None:
    gw = await running.start(free_port(), delivery={"lifetime_seconds": 0.3})
    await send(gw.port)
    await wait_until(lambda: len(gw.audit.records) == 1)
    assert gw.metrics.counts["deferred"] >= 1
    (record,) = gw.audit.records
    assert record["state"] == "dead"
    assert record["error"] == "undeliverable"


async def test_hold_verdict_delivers_notice(sink: Sink, running: Running) -> None:
    gw = await running.start(sink.port, FakeSanitizer(["hold"]))
    await send(gw.port)
    (delivered,) = await sink.wait_for(1)
    assert b"(held)" in delivered.data
    await wait_until(lambda: len(gw.audit.records) == 1)
    assert list(gw.quarantine.states.values()) == [["held"]]


async def test_reject_verdict_dead_letter(sink: Sink, running: Running) -> None:
    gw = await running.start(sink.port, FakeSanitizer(["reject"]))
    await send(gw.port)
    await wait_until(lambda: len(gw.audit.records) == 1)
    assert sink.messages == []
    assert gw.audit.records[0]["verdict"] == "reject"


async def test_scanner_down_defers_then_delivers(sink: Sink, running: Running) -> None:
    gw = await running.start(sink.port, FakeSanitizer(["temporary", "temporary"]))
    await send(gw.port)
    await sink.wait_for(1)
    assert len(gw.sanitizer.calls) == 3
    assert gw.metrics.counts["deferred"] == 2


async def test_crashing_message_is_held_never_forwarded(sink: Sink, running: Running) -> None:
    sanitizer = FakeSanitizer(["crash", "crash", "crash"])
    gw = await running.start(sink.port, sanitizer, worker={"max_crashes": 3})
    secret = b"Subject: poison\r\n\r\nTOP SECRET PAYLOAD\r\n"
    await send(gw.port, secret)
    (delivered,) = await sink.wait_for(1)
    assert b"TOP SECRET" not in delivered.data
    assert "Message held" in str(delivered.parsed()["Subject"])
    # After the first crash it ran isolated.
    assert [isolated for _, isolated in sanitizer.calls] == [False, True, True]
    await wait_until(lambda: len(gw.audit.records) == 1)
    assert gw.audit.records[0]["verdict"] == "hold"


async def test_low_disk_refuses_at_mail(sink: Sink, tmp_path: Path) -> None:
    config = make_config(tmp_path / "data", sink.port, smtp={"min_free_disk_bytes": 1000})
    free = [10]
    gw = await start_gateway(config, free=free)
    try:
        with pytest.raises(aiosmtplib.SMTPSenderRefused) as info:
            await send(gw.port)
        assert info.value.code == 452
        free[0] = 10**6
        await send(gw.port)
        await sink.wait_for(1)
    finally:
        await gw.gateway.stop()


async def test_stop_under_load_loses_nothing(sink: Sink, tmp_path: Path) -> None:
    sink.handler.fault = "slow"
    sink.handler.delay = 0.05
    config = make_config(tmp_path / "data", sink.port, service={"shutdown_grace_seconds": 0.2})
    gw = await start_gateway(config)

    done: list[bool] = []

    async def one() -> bool:
        try:
            await send(gw.port)
        except (aiosmtplib.SMTPException, OSError):
            return False
        done.append(True)
        return True

    async def many() -> list[bool]:
        return [await one() for _ in range(10)]

    senders = [asyncio.create_task(many()) for _ in range(6)]
    await wait_until(lambda: len(done) >= 5)
    await gw.gateway.stop()
    accepted = sum(sum(results) for results in await asyncio.gather(*senders))
    assert 5 <= accepted < 60  # some were refused: the gateway stopped accepting
    # Restart on the same spool: everything that got a 250 is delivered.
    sink.handler.fault = None
    gw2 = await start_gateway(config)
    try:
        await sink.wait_for(accepted)
        await wait_until(lambda: Spool(tmp_path / "data" / "spool").ids("outgoing") == [])
        assert len(sink.messages) >= accepted
    finally:
        await gw2.gateway.stop()


async def test_queue_retry_on_a_running_gateway(running: Running, tmp_path: Path) -> None:
    from gateway.cli.queue import _retry

    port = free_port()
    # The retry is an hour away (retry_max_seconds too: it caps the wait), so only
    # `queue retry` brings the message out.
    gw = await running.start(
        port, delivery={"retry_initial_seconds": 3600.0, "retry_max_seconds": 3600.0}
    )
    await send(gw.port)
    await wait_until(lambda: gw.metrics.counts["deferred"] == 1)
    sink = Sink()
    sink.port = port
    await sink.start()
    try:
        spool = Spool(tmp_path / "data" / "spool")
        (queue_id,) = spool.ids("outgoing")
        _retry(spool, queue_id)  # what `mukaika queue retry` does (raises on failure)
        await sink.wait_for(1)
        await wait_until(lambda: gw.metrics.counts["delivered"] == 1)
    finally:
        await sink.stop()


async def test_scanner_down_past_lifetime_dead_without_content(
    sink: Sink, running: Running, tmp_path: Path
) -> None:
    gw = await running.start(
        sink.port, FakeSanitizer(["temporary"] * 1000), delivery={"lifetime_seconds": 0.3}
    )
    await send(gw.port)
    await wait_until(lambda: len(gw.audit.records) == 1)
    assert sink.messages == []
    spool = Spool(tmp_path / "data" / "spool")
    (queue_id,) = spool.ids("dead")
    envelope, body = spool.load("dead", queue_id)
    assert body == b""  # the original stays in the quarantine only
    assert envelope.verdict == ""
    assert gw.audit.records[0]["error"] == "lifetime"


def make_certificate(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


async def test_delivery_over_starttls(running: Running, tmp_path: Path) -> None:
    cert, key = await asyncio.to_thread(make_certificate, tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    sink = Sink()

    def factory() -> SMTP:
        session = SMTP(sink.handler, hostname="sink", tls_context=context, require_starttls=True)
        sink.sessions.append(session)
        return session

    sink._factory = factory  # type: ignore[method-assign]
    await sink.start()
    try:
        gw = await running.start(sink.port, delivery={"tls": "starttls", "tls_ca_file": str(cert)})
        await send(gw.port)
        (delivered,) = await sink.wait_for(1)
        assert delivered.data == STUB_TEXT
        assert sink.sessions[0].session is not None
        assert sink.sessions[0].session.ssl is not None  # it really was TLS
    finally:
        await sink.stop()


async def test_unreadable_spool_file_set_aside(
    sink: Sink, running: Running, tmp_path: Path
) -> None:
    from gateway.queue.spool import new_queue_id

    spool = Spool(tmp_path / "data" / "spool")
    broken = new_queue_id()
    spool.path("incoming", broken).write_bytes(b"not json\nbody")
    gw = await running.start(sink.port)
    await wait_until(lambda: spool.ids("dead") == [broken])
    await send(gw.port)  # the gateway goes on working
    await sink.wait_for(1)
