"""The gateway's side of a receiver's channel: a message it cannot read stops that receiver and
gives back every count it held (a follower that died instead would leak them for ever)."""

from __future__ import annotations

import asyncio
import socket
import sys
from collections import Counter
from pathlib import Path

import pytest

from gateway.configuration.config import Config
from gateway.observation.metrics import Metrics
from gateway.service.receivers import ReceiverPool, _Receiver


@pytest.mark.parametrize("line", [b"5\n", b"[]\n", b'{"admit": 1}\n', b"not json\n"])
async def test_an_unreadable_channel_message_kills_the_receiver_and_frees_its_counts(
    line: bytes,
) -> None:
    pool = ReceiverPool(Config(), 1, on_queued=lambda _: None, metrics=Metrics())
    pool._stopping = True  # no restart: this test is about the follower alone
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "import time; time.sleep(60)"
    )
    ours, theirs = socket.socketpair()
    reader, writer = await asyncio.open_unix_connection(sock=ours)
    receiver = _Receiver(0, process, writer, reader, asyncio.get_running_loop().create_future())
    for _ in range(3):
        assert pool.limits.admit_now("192.0.2.1") is None
    receiver.admitted = Counter({"192.0.2.1": 3})
    theirs.sendall(line)
    try:
        await asyncio.wait_for(pool._follow(receiver), 30)
    finally:
        theirs.close()
    assert process.returncode is not None
    assert process.returncode < 0  # killed
    assert receiver.admitted == Counter()
    for _ in range(pool.config.smtp.max_connections_per_client):
        assert pool.limits.admit_now("192.0.2.1") is None


async def test_a_receiver_restarted_while_the_pool_drains_is_drained_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A receiver that dies just before a stop is started again; if the drain begins while that
    start is under way, the new receiver must be drained as well, never left listening."""
    monkeypatch.setattr("gateway.service.receivers.RESTART_PAUSE_SECONDS", 0.01)
    config = Config.model_validate(
        {
            "service": {"data_dir": str(tmp_path)},
            "smtp": {"listen_host": "127.0.0.1", "listen_port": 0, "min_free_disk_bytes": 0},
        }
    )
    pool = ReceiverPool(config, 1, on_queued=lambda _: None, metrics=Metrics())
    host, port = await pool.start()
    started = pool._start_one
    entered, gate = asyncio.Event(), asyncio.Event()
    restarted: list[asyncio.subprocess.Process] = []

    async def held_start(index: int) -> None:
        entered.set()
        await gate.wait()
        await started(index)
        restarted.append(pool._receivers[index].process)

    monkeypatch.setattr(pool, "_start_one", held_start)
    first = pool._receivers[0].process
    first.kill()
    await asyncio.wait_for(entered.wait(), 30)  # the restart has begun: past its stop check
    draining = asyncio.create_task(pool.drain(1.0))
    await asyncio.sleep(0.05)  # the drain has taken its look at the receivers
    gate.set()
    try:
        await asyncio.wait_for(draining, 60)
    finally:
        for process in restarted:
            if process.returncode is None:
                process.kill()
                await process.wait()
    assert len(restarted) == 1
    assert restarted[0].returncode is not None, "the restarted receiver was left running"
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection(host, port)
