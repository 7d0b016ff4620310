"""Slow clients: time limits per complete record, and stress mode under load.

The receiver runs on real sockets with small configured limits. Bounds in these tests are
generous (seconds where the limit is a fraction of one); nothing is timed precisely.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from tests.gateway.receiving.test_smtp import Receiver
from tests.gateway.relaykit import RawClient


@pytest.fixture(autouse=True)
def _collect_garbage() -> Iterator[None]:
    import gc

    yield
    gc.collect()


async def trickle(client: RawClient, data: bytes, pause: float) -> bytes:
    """Send ``data`` one byte at a time until the server answers; return the answer."""
    for byte in data:
        try:
            await client.send(bytes([byte]))
        except (ConnectionError, OSError):
            break
        try:
            return await client.reply(within=pause)
        except TimeoutError:
            continue
    return await client.reply(within=5)


async def test_trickled_command_line_is_cut_off_with_421() -> None:
    """A command line that never completes within the limit: 421 4.4.2, not a silent close,
    long before the session deadline."""
    async with Receiver(command_timeout_seconds=0.5, session_deadline_seconds=600) as rx:
        client, _ = await RawClient.connect(rx.port)
        reply = await trickle(client, b"EHLO " + b"x" * 400, pause=0.05)
        assert reply.startswith(b"421 4.4.2"), reply
        assert await client.reply(within=5) == b""
        await client.close()
        assert rx.rejected == ["timeout"]


async def test_trickled_data_line_is_cut_off_even_without_a_minimum_rate() -> None:
    """Data trickled byte by byte without ever ending a line: each read used to restart the
    clock; now the whole record must arrive within the limit."""
    async with Receiver(
        command_timeout_seconds=0.5, min_data_rate_bytes_per_second=0, session_deadline_seconds=600
    ) as rx:
        client, _ = await RawClient.connect(rx.port)
        await client.envelope()
        assert (await client.cmd(b"DATA\r\n")).startswith(b"354")
        reply = await trickle(client, b"Subject: " + b"y" * 400, pause=0.05)
        assert reply.startswith(b"421 4.4.2"), reply
        await client.close()
        assert rx.accepted == []
        assert rx.rejected == ["timeout"]


async def test_complete_lines_each_within_the_limit_are_fine() -> None:
    """The limit is per record, not per message: many lines, each arriving well within the
    limit, add up to far more than the limit and the message is accepted."""
    async with Receiver(command_timeout_seconds=2.0, min_data_rate_bytes_per_second=0) as rx:
        client, _ = await RawClient.connect(rx.port)
        await client.envelope()
        assert (await client.cmd(b"DATA\r\n")).startswith(b"354")
        await client.send(b"Subject: slow but steady\r\n\r\n")
        for number in range(16):
            await asyncio.sleep(0.25)
            await client.send(b"line %d\r\n" % number)
        assert (await client.cmd(b".\r\n")).startswith(b"250")
        await client.close()
        assert len(rx.accepted) == 1


async def still_open(client: RawClient) -> bool:
    try:
        return (await client.cmd(b"NOOP\r\n")).startswith(b"250")
    except (ConnectionError, OSError):
        return False


async def test_stress_mode_engages_above_the_ratio_and_releases() -> None:
    """5 of 10 slots open: normal limits (60 s). The 6th connection crosses 50 %: every
    session, the idle ones already open included, now has 0.5 s for its next record and is
    cut off with 421 4.4.2. When they are gone, a new idle session keeps the normal limit."""
    async with Receiver(
        max_connections=10,
        max_connections_per_client=10,
        stress_threshold_ratio=0.5,
        command_timeout_seconds=60,
        stress_timeout_seconds=0.5,
    ) as rx:
        tracker = rx.server.tracker
        first = [(await RawClient.connect(rx.port))[0] for _ in range(5)]
        assert not tracker.stressed
        await asyncio.sleep(1.5)  # three stress limits: nobody is cut while below the ratio
        assert all([await still_open(client) for client in first])

        sixth, greeting = await RawClient.connect(rx.port)
        assert greeting.startswith(b"220")
        assert tracker.stressed
        clients = [*first, sixth]
        replies = await asyncio.gather(*(client.reply(within=30) for client in clients))
        assert all(reply.startswith(b"421 4.4.2") for reply in replies), replies
        for client in clients:
            await client.close()
        assert rx.rejected.count("stress_timeout") == 6

        await asyncio.wait_for(tracker.idle.wait(), 30)
        assert not tracker.stressed
        calm, _ = await RawClient.connect(rx.port)
        await asyncio.sleep(1.5)
        assert await still_open(calm)
        await calm.close()
        assert rx.rejected.count("stress_timeout") == 6


async def test_new_records_under_stress_get_the_stress_limit() -> None:
    """Under stress, a session that completes a command gets only the stress limit for the
    next one (not the normal limit again)."""
    async with Receiver(
        max_connections=4,
        stress_threshold_ratio=0.25,
        command_timeout_seconds=60,
        stress_timeout_seconds=0.5,
    ) as rx:
        first, _ = await RawClient.connect(rx.port)
        second, _ = await RawClient.connect(rx.port)
        assert rx.server.tracker.stressed
        assert (await first.cmd(b"EHLO c\r\n")).startswith(b"250")
        assert (await first.reply(within=30)).startswith(b"421 4.4.2")
        assert (await second.reply(within=30)).startswith(b"421 4.4.2")
        for client in (first, second):
            await client.close()
        assert rx.rejected == ["stress_timeout", "stress_timeout"]


async def test_the_limit_is_armed_again_after_a_failed_handover() -> None:
    """The clock stops while the spool takes the message (our time, not the client's); when
    that fails (451), the next record is timed again, not left without a limit."""
    async with Receiver(command_timeout_seconds=0.5, session_deadline_seconds=600) as rx:
        rx.fail = RuntimeError("spool on fire")
        client, _ = await RawClient.connect(rx.port)
        await client.envelope()
        assert (await client.cmd(b"DATA\r\n")).startswith(b"354")
        assert (await client.cmd(b"Subject: x\r\n\r\nbody\r\n.\r\n")).startswith(b"451 4.3.0")
        assert (await client.reply(within=30)).startswith(b"421 4.4.2")
        await client.close()
        assert rx.rejected == ["internal", "timeout"]
