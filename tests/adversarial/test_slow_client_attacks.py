"""Slowloris against the SMTP listener: one address opens every slot and trickles.

Each attacking connection sends one byte of a command line at a time, each byte well within
the normal time limit. Without per-record limits and stress mode the attacker keeps every
slot until the session deadline and a real sender is refused with 421 the whole time. With
them, the slots are freed within the stress limit and the real sender gets through. Bounds are
generous; the test does not time anything precisely.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import Iterator

import pytest

from tests.gateway.receiving.test_smtp import Receiver
from tests.gateway.relaykit import SIMPLE, RawClient


@pytest.fixture(autouse=True)
def _collect_garbage() -> Iterator[None]:
    yield
    gc.collect()


async def attacker(port: int) -> bytes:
    """Open a session and trickle an endless EHLO line; return the server's last word."""
    client, greeting = await RawClient.connect(port)
    if not greeting.startswith(b"220"):
        await client.close()
        return greeting
    try:
        for _ in range(3000):
            await client.send(b"x" if _ else b"EHLO ")
            with contextlib.suppress(TimeoutError):
                return await client.reply(within=0.1)
        return b""
    except (ConnectionError, OSError):
        return b""
    finally:
        await client.close()


async def real_sender(port: int) -> bytes:
    """Retry until a session is granted, then send one message; return the final reply."""
    for _ in range(300):
        client, greeting = await RawClient.connect(port)
        if greeting.startswith(b"220"):
            await client.envelope()
            assert (await client.cmd(b"DATA\r\n")).startswith(b"354")
            reply = await client.cmd(SIMPLE + b".\r\n")
            await client.close()
            return reply
        await client.close()
        await asyncio.sleep(0.1)
    return b"never admitted"


async def test_one_address_trickling_on_every_slot_cannot_lock_out_a_real_sender() -> None:
    async with Receiver(
        max_connections=6,
        max_connections_per_client=6,
        stress_threshold_ratio=0.5,
        command_timeout_seconds=300,
        stress_timeout_seconds=0.5,
        session_deadline_seconds=1800,
    ) as rx:
        attackers = [asyncio.create_task(attacker(rx.port)) for _ in range(6)]
        await asyncio.sleep(0.3)  # every slot is taken
        reply = await asyncio.wait_for(real_sender(rx.port), 60)
        results = await asyncio.wait_for(asyncio.gather(*attackers), 60)
        assert reply.startswith(b"250"), reply
        assert len(rx.accepted) == 1
        assert all(result.startswith(b"421 4.4.2") for result in results), results
