"""The process pool: crashes and hangs are contained, the pool is rebuilt, others go on."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiosmtplib
import pytest

from gateway.processing.pool import ProcessSanitizer, SanitizerCrashed
from sanitizers.policy import Policy
from tests.gateway.processing.crashy import CLEAN, crash_on_marker
from tests.gateway.relaykit import Sink, make_config, start_gateway


@pytest.fixture(autouse=True)
def _collect_garbage() -> Iterator[None]:
    """A leaked socket warns in the test that leaked it, not in a later one."""
    yield
    gc.collect()


@pytest.fixture
async def pool() -> AsyncIterator[ProcessSanitizer]:
    sanitizer = ProcessSanitizer(Policy(), 2, timeout_seconds=2.0, target=crash_on_marker)
    yield sanitizer
    await asyncio.to_thread(sanitizer.close)


async def test_crash_is_reported_and_pool_rebuilt(pool: ProcessSanitizer) -> None:
    with pytest.raises(SanitizerCrashed):
        await pool.run(b"CRASH", "r1", isolated=False)
    result = await pool.run(b"fine", "r2", isolated=False)
    assert result.message == CLEAN


async def test_hang_is_killed(pool: ProcessSanitizer) -> None:
    pool.timeout_seconds = 0.5
    with pytest.raises(SanitizerCrashed, match="timeout"):
        await pool.run(b"HANG", "r1", isolated=True)
    pool.timeout_seconds = 60  # the replacement process starts slowly on a loaded machine
    assert (await pool.run(b"fine", "r2", isolated=True)).message == CLEAN


async def test_crashing_mail_held_others_delivered(tmp_path: Path) -> None:
    sink = await Sink().start()
    config = make_config(tmp_path / "data", sink.port, worker={"max_crashes": 2})
    sanitizer = ProcessSanitizer(config.policy, 2, timeout_seconds=5.0, target=crash_on_marker)
    gw = await start_gateway(config, sanitizer)
    try:

        async def send(body: bytes) -> None:
            client = aiosmtplib.SMTP(hostname="127.0.0.1", port=gw.port, start_tls=False)
            async with client:
                await client.sendmail("a@example.com", ["u@example.lg.jp"], body)

        await asyncio.gather(
            send(b"Subject: bad\r\n\r\nCRASH secret\r\n"),
            *(send(b"Subject: ok\r\n\r\nfine %d\r\n" % n) for n in range(4)),
        )
        delivered = await sink.wait_for(5, within=30)
        bodies = [d.data for d in delivered]
        assert sum(body == CLEAN for body in bodies) == 4
        (held,) = [body for body in bodies if body != CLEAN]
        assert b"secret" not in held
        assert b"Message held" in held or b"=?utf-8?" in held
    finally:
        await gw.gateway.stop()
        await sink.stop()
