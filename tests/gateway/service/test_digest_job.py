"""serve's daily digest job as the service wires it: present only with digest.enabled, on the
service's store, its key and its notice sender; one round sends the day's digests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.service.assembly import Gateway, Parts
from tests.gateway.relaykit import CountingMetrics, FakeAudit, FakeSanitizer, Sink, make_config
from tests.gateway.service.daykit import KACHO, RIN, day_config, day_of_mail


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    relay = await Sink().start()
    yield relay
    await relay.stop()


def _gateway(data_dir: Path, port: int, enabled: bool) -> Gateway:
    config = make_config(
        data_dir,
        port,
        digest={"enabled": enabled},
        console={"public_url": "https://gw.example.lg.jp/"},
        service={"display_timezone": "Asia/Tokyo"},
    )
    parts = Parts(
        sanitizer=FakeSanitizer(),
        audit=FakeAudit(),
        metrics=CountingMetrics(),
        receive_in_process=True,
    )
    return Gateway(config, parts)


async def test_serve_runs_the_digests_when_enabled(tmp_path: Path, sink: Sink) -> None:
    data_dir = tmp_path / "data"
    with day_of_mail(day_config(data_dir), now=datetime.now(UTC) - timedelta(minutes=1)):
        pass
    gateway = _gateway(data_dir, sink.port, enabled=True)
    try:
        assert gateway.daily_digests is not None
        assert await gateway.daily_digests.round() == (2, 0)  # no summary_recipients here
        assert sorted(m.rcpt_tos[0] for m in sink.messages) == [KACHO, RIN]
        assert {str(m.parsed()["From"]) for m in sink.messages} == {"MAILER-DAEMON@gw.test"}
    finally:
        await gateway.stop()


async def test_no_job_without_digest_enabled(tmp_path: Path, sink: Sink) -> None:
    gateway = _gateway(tmp_path / "data", sink.port, enabled=False)
    try:
        assert gateway.daily_digests is None
    finally:
        await gateway.stop()
