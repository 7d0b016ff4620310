"""The service with the real quarantine, audit log and metrics endpoint (fake sanitizer)."""

from __future__ import annotations

import asyncio
import gc
import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import aiosmtplib
import pytest

from gateway.service.assembly import Gateway, Parts
from tests.gateway.relaykit import SIMPLE, FakeSanitizer, Sink, make_config, wait_until
from tests.storekit import quarantine_in


@pytest.fixture(autouse=True)
def _collect_garbage() -> Iterator[None]:
    """A leaked socket warns in the test that leaked it, not in a later one."""
    yield
    gc.collect()


async def test_real_quarantine_audit_and_metrics(tmp_path: Path) -> None:
    sink = await Sink().start()
    config = make_config(
        tmp_path / "data", sink.port, metrics={"enabled": True, "host": "127.0.0.1", "port": 0}
    )
    gateway = Gateway(config, Parts(sanitizer=FakeSanitizer()))
    try:
        _, port = await gateway.start()
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False)
        async with client:
            _, reply = await client.sendmail("a@example.com", ["u@example.lg.jp"], SIMPLE)
        queue_id = reply.rsplit(" ", 1)[1]
        await sink.wait_for(1)
        audit_file = tmp_path / "data" / "audit" / "audit.jsonl"
        await wait_until(lambda: audit_file.exists() and audit_file.read_text().count("\n") == 1)
        (record,) = [json.loads(line) for line in audit_file.read_text().splitlines()]
        assert record["queue_id"] == queue_id
        assert record["state"] == "delivered"
        assert record["time"].endswith("Z")
        assert "dropped_keys" not in record
        assert "body" not in json.dumps(record)
        assert gateway.metrics_server is not None
        url = f"http://127.0.0.1:{gateway.metrics_server.port}/metrics"
        text = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=5).read())
        assert b"mukaika_received_total 1.0" in text
        assert b"mukaika_delivered_total 1.0" in text
    finally:
        await gateway.stop()
        await sink.stop()
    with quarantine_in(tmp_path / "data" / "quarantine") as quarantine:
        (entry,) = quarantine.list()
        assert entry.queue_id == queue_id
        assert entry.state == "delivered"
        assert quarantine.read_original(entry.id) == SIMPLE
