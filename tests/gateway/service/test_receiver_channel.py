"""The gateway's side of a receiver's channel: a message it cannot read stops that receiver and
gives back every count it held (a follower that died instead would leak them for ever)."""

from __future__ import annotations

import asyncio
import socket
import sys
from collections import Counter

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
