"""The gateway as a process: SIGKILL right after a 250, SIGTERM under load. Nothing is lost."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiosmtplib
import pytest

from tests.gateway.relaykit import SIMPLE, Sink, free_port, wait_until
from tests.paths import ROOT


@pytest.fixture(autouse=True)
def _collect_garbage() -> Iterator[None]:
    """A leaked socket warns in the test that leaked it, not in a later one."""
    yield
    gc.collect()


def write_config(tmp_path: Path, relay_port: int, grace: float = 5.0) -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text(
        f"""
[service]
data_dir = "{tmp_path / "data"}"
shutdown_grace_seconds = {grace}
[smtp]
listen_port = 0
hostname = "gw.test"
accept_domains = ["example.lg.jp"]
min_free_disk_bytes = 0
[worker]
processes = 1
rescan_seconds = 0.05
temporary_failure_retry_seconds = 0.05
[delivery]
relay_port = {relay_port}
timeout_seconds = 2.0
retry_initial_seconds = 0.05
retry_max_seconds = 0.2
"""
    )
    return path


class Child:
    def __init__(self, process: asyncio.subprocess.Process, port: int) -> None:
        self.process = process
        self.port = port

    @classmethod
    async def start(cls, config: Path) -> Child:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.e2e.serve_child",
            str(config),
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        assert process.stdout is not None
        while True:
            line = await asyncio.wait_for(process.stdout.readline(), 30)
            assert line, "the gateway exited before listening"
            if line.startswith(b"mukaika: listening on "):
                port = int(line.rsplit(b":", 1)[1])
                return cls(process, port)

    async def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.process.returncode is None:
            self.process.send_signal(sig)
        return await asyncio.wait_for(self.process.wait(), 30)


async def send(port: int) -> bool:
    try:
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False, timeout=10)
        async with client:
            await client.sendmail("a@example.com", ["staff@example.lg.jp"], SIMPLE)
    except (aiosmtplib.SMTPException, OSError):
        return False
    return True


@pytest.fixture
async def children() -> AsyncIterator[list[Child]]:
    started: list[Child] = []
    yield started
    for child in started:
        await child.stop(signal.SIGKILL)


async def test_sigkill_after_250_then_restart_delivers(
    tmp_path: Path, children: list[Child]
) -> None:
    relay_port = free_port()  # the LGWAN MTA is down: the message stays spooled
    config = write_config(tmp_path, relay_port)
    first = await Child.start(config)
    children.append(first)
    assert await send(first.port)  # 250 received
    assert await first.stop(signal.SIGKILL) == -signal.SIGKILL
    sink = Sink()
    sink.port = relay_port
    await sink.start()
    try:
        second = await Child.start(config)
        children.append(second)
        (delivered,) = await sink.wait_for(1, within=20)
        assert delivered.rcpt_tos == ["staff@example.lg.jp"]
        assert await second.stop() == 0
        assert len(sink.messages) == 1
    finally:
        await sink.stop()


async def test_sigterm_under_load_loses_nothing(tmp_path: Path, children: list[Child]) -> None:
    sink = await Sink().start()
    sink.handler.fault = "slow"
    sink.handler.delay = 0.05
    try:
        config = write_config(tmp_path, sink.port, grace=0.3)
        first = await Child.start(config)
        children.append(first)
        done: list[bool] = []

        async def many() -> int:
            count = 0
            for _ in range(10):
                if await send(first.port):
                    done.append(True)
                    count += 1
            return count

        senders = [asyncio.create_task(many()) for _ in range(6)]
        await wait_until(lambda: len(done) >= 5, within=20)
        assert await first.stop() == 0  # clean exit on SIGTERM
        accepted = sum(await asyncio.gather(*senders))
        assert 5 <= accepted < 60
        sink.handler.fault = None
        second = await Child.start(config)
        children.append(second)
        await sink.wait_for(accepted, within=30)
        await asyncio.sleep(0.2)
        assert await second.stop() == 0
        # Every 250 was delivered; a duplicate is acceptable, a loss is not.
        assert len(sink.messages) >= accepted
        assert not list((tmp_path / "data" / "spool" / "outgoing").iterdir())
        assert not list((tmp_path / "data" / "spool" / "incoming").iterdir())
    finally:
        await sink.stop()
