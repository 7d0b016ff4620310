"""PostgreSQL stopped under a running gateway, then started again: new mail is answered 451
(never a 250 that cannot be recorded), mail already sanitized is still delivered, and when the
database is back the gateway accepts again and writes the states it kept, with nobody acting.
The database is the tests' private cluster (tests/postgres.py), really stopped and started."""

from __future__ import annotations

import json
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib
import pytest

from gateway.processing.pool import InlineSanitizer
from gateway.service.assembly import Gateway, Parts
from sanitizers.policy import Policy
from tests.gateway.relaykit import Sink, make_config, wait_until
from tests.postgres import Cluster

RCPT = "staff@example.lg.jp"


async def _send(port: int, subject: str) -> None:
    message = EmailMessage()
    message["From"] = "sender@example.jp"
    message["To"] = RCPT
    message["Subject"] = subject
    message.set_content("本文です。")
    await aiosmtplib.send(message, hostname="127.0.0.1", port=port, timeout=10)


def _states(gateway: Gateway) -> list[str]:
    assert gateway._purgeable is not None
    return [entry.state for entry in gateway._purgeable.list()]


async def test_a_store_outage_refuses_new_mail_delivers_sanitized_mail_and_heals(
    tmp_path: Path, postgres_cluster: Cluster, postgres_url: str
) -> None:
    sink = await Sink().start()
    sink.handler.fault = "4xx"  # the LGWAN side refuses for now: mail waits sanitized
    config = make_config(
        tmp_path, sink.port, store={"url": postgres_url, "probe_interval_seconds": 0.05}
    )
    gateway = Gateway(
        config,
        Parts(
            sanitizer=InlineSanitizer(Policy()), receive_in_process=True, free_bytes=lambda: 10**12
        ),
    )
    _, port = await gateway.start()
    health = gateway.store_health
    assert health is not None
    try:
        await _send(port, "before")
        await wait_until(lambda: _states(gateway) == ["deferred"])

        postgres_cluster.stop()
        await wait_until(lambda: not health.up)
        with pytest.raises(aiosmtplib.SMTPSenderRefused) as refused:
            await _send(port, "during")
        assert refused.value.code == 451
        assert "4.3.0" in refused.value.message
        # Sanitized mail goes on: the LGWAN side accepts again and gets it, the store away.
        sink.handler.fault = None
        (first,) = await sink.wait_for(1)
        assert first.parsed()["Subject"] == "before"
        assert [d.parsed()["Subject"] for d in sink.messages] == ["before"]

        postgres_cluster.start()
        await wait_until(lambda: health.up)
        # The delivery state kept while the store was away is written now.
        await wait_until(lambda: _states(gateway) == ["delivered"])
        await _send(port, "after")
        await sink.wait_for(2)
        await wait_until(lambda: _states(gateway) == ["delivered", "delivered"])
    finally:
        await gateway.stop()
        await sink.stop()
    assert [d.parsed()["Subject"] for d in sink.messages] == ["before", "after"]
    audit = [
        json.loads(line) for line in (tmp_path / "audit" / "audit.jsonl").read_text().splitlines()
    ]
    delivered_lines = [
        r for r in audit if r["event"] == "message" and r.get("state") == "delivered"
    ]
    assert len(delivered_lines) == 2  # the evidence of both, the one during the outage too
