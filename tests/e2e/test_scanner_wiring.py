"""The relay with the malware scanner on: clamd unreachable defers, never passes unscanned."""

from __future__ import annotations

import functools
import gc
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib
import pytest

from gateway.configuration.config import Config
from gateway.processing.sanitize_task import sanitize_scanned, sanitize_unscanned, task_for
from gateway.service.assembly import Gateway, Parts
from tests.gateway.relaykit import (
    CountingMetrics,
    FakeAudit,
    FakeQuarantine,
    Sink,
    make_config,
    wait_until,
)


@pytest.fixture(autouse=True)
def _collect_garbage() -> Iterator[None]:
    yield
    gc.collect()


def test_task_scans_only_when_enabled() -> None:
    unscanned = task_for(Config().scanner)
    assert isinstance(unscanned, functools.partial)
    assert unscanned.func is sanitize_unscanned
    enabled = Config.model_validate({"scanner": {"enabled": True}}).scanner
    scanned = task_for(enabled)
    assert isinstance(scanned, functools.partial)
    assert scanned.func is sanitize_scanned


async def test_clamd_unreachable_defers(tmp_path: Path) -> None:
    sink = await Sink().start()
    base = make_config(tmp_path / "data", sink.port)
    data = base.model_dump(mode="python")
    data["scanner"] = {"enabled": True, "address": f"unix:{tmp_path}/no-clamd.sock"}
    config = Config.model_validate(data)
    metrics = CountingMetrics()
    gateway = Gateway(
        config, Parts(quarantine=FakeQuarantine(), audit=FakeAudit(), metrics=metrics)
    )
    try:
        _, port = await gateway.start()
        message = EmailMessage()
        message["From"] = "a@example.com"
        message["To"] = "u@example.lg.jp"
        message["Subject"] = "with a file"
        message.set_content("see attached\n")
        message.add_attachment(
            b"%PDF-1.4\n", maintype="application", subtype="pdf", filename="a.pdf"
        )
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False)
        async with client:
            await client.sendmail("a@example.com", ["u@example.lg.jp"], message.as_bytes())
        await wait_until(lambda: metrics.counts["deferred"] >= 1, within=30)
        assert sink.messages == []
        assert gateway.spool.ids("incoming")  # still waiting, unsanitized, not delivered
    finally:
        await gateway.stop()
        await sink.stop()
