"""Injected faults: process kills, a full disk, a hanging sanitizer, a misbehaving LGWAN-side
MTA, a damaged spool. Every 250 is counted and must end delivered, held or dead-lettered with
an audit line; internal faults answer 4xx; the process survives.

Covered elsewhere (not repeated): tests/e2e/test_process_crash.py —
test_sigkill_after_250_then_restart_delivers, test_sigterm_under_load_loses_nothing;
tests/e2e/test_relay.py — test_downstream_down_then_back,
test_downstream_fault_is_retried[4xx|drop|slow], test_downstream_5xx_dead_letter_and_dsn,
test_crashing_message_is_held_never_forwarded, test_low_disk_refuses_at_mail;
tests/gateway/processing/test_pool.py — test_crash_is_reported_and_pool_rebuilt,
test_hang_is_killed, test_crashing_mail_held_others_delivered;
tests/gateway/receiving/test_smtp.py — test_internal_error_answers_451."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest

from gateway.processing.pool import ProcessSanitizer
from gateway.queue.spool import Envelope, Spool, new_queue_id
from gateway.service.assembly import Gateway, Parts
from sanitizers.errors import TemporaryFailure
from sanitizers.report import SanitizeResult
from tests.e2e.test_process_crash import Child, children, write_config
from tests.gateway.processing.crashy import CLEAN, crash_on_marker
from tests.gateway.relaykit import (
    SIMPLE,
    CountingMetrics,
    FakeAudit,
    FakeQuarantine,
    FakeSanitizer,
    RawClient,
    Sink,
    free_port,
    make_config,
    start_gateway,
    wait_until,
)

__all__ = ["children"]  # the fixture that SIGKILLs every child left running

RCPT = "staff@example.lg.jp"


async def send(port: int, message: bytes = SIMPLE) -> tuple[int, str]:
    """(code, text) of the final reply; (0, error) when the connection failed."""
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False, timeout=10)
    try:
        async with client:
            _, text = await client.sendmail("a@example.com", [RCPT], message)
            return 250, text
    except aiosmtplib.SMTPResponseException as exc:
        return exc.code, exc.message
    except (aiosmtplib.SMTPException, OSError) as exc:
        return 0, str(exc)


def audit_lines(data_dir: Path) -> list[dict[str, object]]:
    path = data_dir / "audit" / "audit.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# --- SIGKILL (a child process running `mukaika serve`'s loop) ------------------------------


async def test_sigkill_during_data_before_250_loses_nothing_acknowledged(
    tmp_path: Path, children: list[Child]
) -> None:
    sink = await Sink().start()
    try:
        config = write_config(tmp_path, sink.port)
        first = await Child.start(config)
        children.append(first)
        client, _ = await RawClient.connect(first.port)
        await client.envelope(b"a@example.com", RCPT.encode())
        assert (await client.cmd(b"DATA\r\n")).startswith(b"354")
        await client.send(SIMPLE + b"half of the message, never ended\r\n")
        await asyncio.sleep(0.1)
        assert await first.stop(signal.SIGKILL) == -signal.SIGKILL
        assert await client.reply() == b""  # never a 250
        await client.close()
        second = await Child.start(config)
        children.append(second)
        code, _ = await send(second.port)
        assert code == 250
        (delivered,) = await sink.wait_for(1, within=20)
        assert b"half of the message" not in delivered.data
        assert await second.stop() == 0
        spool = tmp_path / "data" / "spool"
        assert not list((spool / "tmp").iterdir())
        assert len(sink.messages) == 1
        states = [r["state"] for r in audit_lines(tmp_path / "data")]
        assert states == ["delivered"]
    finally:
        await sink.stop()


async def test_sigkill_during_delivery_then_restart_delivers(
    tmp_path: Path, children: list[Child]
) -> None:
    sink = await Sink().start()
    sink.handler.fault = "slow"
    sink.handler.delay = 1.5  # inside the 2 s delivery timeout: the kill lands in it
    try:
        config = write_config(tmp_path, sink.port)
        first = await Child.start(config)
        children.append(first)
        assert (await send(first.port))[0] == 250
        await wait_until(lambda: bool(sink.sessions), within=20)
        await asyncio.sleep(0.3)  # the gateway is waiting for the final reply of DATA
        assert await first.stop(signal.SIGKILL) == -signal.SIGKILL
        sink.handler.fault = None
        second = await Child.start(config)
        children.append(second)
        await sink.wait_for(1, within=20)
        await wait_until(lambda: len(audit_lines(tmp_path / "data")) >= 1, within=20)
        assert await second.stop() == 0
        # A duplicate is acceptable (the first DATA may have completed); a loss is not.
        assert 1 <= len(sink.messages) <= 2
        assert [r["state"] for r in audit_lines(tmp_path / "data")][-1] == "delivered"
        spool = tmp_path / "data" / "spool"
        assert not list((spool / "outgoing").iterdir())
        assert not list((spool / "incoming").iterdir())
    finally:
        await sink.stop()


# --- a full disk ----------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs mounted for the test (needs root); skipped where mounting is refused."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount_point)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode(errors='replace')[:200]}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


class PausedSanitizer(FakeSanitizer):
    """A scanner outage until ``paused`` is cleared: mail stays in incoming/ meanwhile."""

    paused = True

    async def run(self, untrusted_raw: bytes, reference: str, **options: Any) -> SanitizeResult:
        if self.paused:
            raise TemporaryFailure("scanner down")
        return await super().run(untrusted_raw, reference, **options)


async def test_full_disk_answers_4xx_never_250_and_loses_nothing(small_disk: Path) -> None:
    relay_port = free_port()  # the LGWAN MTA is down too: everything stays spooled
    config = make_config(small_disk / "data", relay_port)
    sanitizer = PausedSanitizer()
    gw = await start_gateway(config, sanitizer)
    filler = small_disk / "filler"
    filler.write_bytes(b"\0" * 200 * 1024)  # what the operator will free
    try:
        big = SIMPLE + (b"x" * 76 + b"\r\n") * 3000  # about 234 KB
        codes = [(await send(gw.port, big))[0] for _ in range(6)]
        assert 1 <= codes.count(250) < 6, codes  # the 1 MiB disk filled up
        assert all(code == 250 or 400 <= code < 500 for code in codes), codes
        assert 451 in codes
        # A full disk stalls the queue too (a state change writes before it unlinks): the
        # operator frees space, and everything acknowledged goes on.
        filler.unlink()
        sanitizer.paused = False
        sink = Sink()
        sink.port = relay_port
        await sink.start()
        try:
            accepted = gw.metrics.counts["received"]
            await sink.wait_for(accepted, within=20)
            await wait_until(lambda: len(gw.audit.records) == accepted)
            assert all(r["state"] == "delivered" for r in gw.audit.records)
        finally:
            await sink.stop()
    finally:
        await gw.gateway.stop()


async def test_low_free_disk_measured_on_the_spool_answers_452(small_disk: Path) -> None:
    """The real free-space probe (no fake): below min_free_disk_bytes MAIL gets 452."""
    config = make_config(small_disk / "data", free_port(), smtp={"min_free_disk_bytes": 600 * 1024})
    parts = Parts(
        sanitizer=FakeSanitizer(),
        quarantine=FakeQuarantine(),
        audit=FakeAudit(),
        metrics=CountingMetrics(),
    )
    gateway = Gateway(config, parts)
    _, port = await gateway.start()
    try:
        assert (await send(port))[0] == 250
        (small_disk / "filler").write_bytes(b"\0" * 600 * 1024)
        code, _ = await send(port)
        assert code == 452
    finally:
        await gateway.stop()


async def test_injected_enospc_answers_451(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where no filesystem can be mounted: ENOSPC injected into the spool write."""
    sink = await Sink().start()
    gw = await start_gateway(make_config(tmp_path / "data", sink.port))
    try:
        real = Spool._write_tmp

        def full(self: Spool, envelope: Envelope, message: bytes) -> Path:
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(Spool, "_write_tmp", full)
        code, text = await send(gw.port)
        assert code == 451, text
        monkeypatch.setattr(Spool, "_write_tmp", real)
        assert (await send(gw.port))[0] == 250
        await sink.wait_for(1)
        await wait_until(lambda: len(gw.audit.records) == 1)
        assert gw.metrics.counts["received"] == 1
    finally:
        await gw.gateway.stop()
        await sink.stop()


# --- a sanitizer that hangs, end to end -----------------------------------------------------


async def test_hanging_sanitizer_holds_that_mail_and_delivers_the_others(tmp_path: Path) -> None:
    sink = await Sink().start()
    config = make_config(tmp_path / "data", sink.port, worker={"max_crashes": 2})
    sanitizer = ProcessSanitizer(config.policy, 1, timeout_seconds=3.0, target=crash_on_marker)
    gw = await start_gateway(config, sanitizer)
    try:
        bodies = [b"Subject: stuck\r\n\r\nHANG secret-payload\r\n"] + [
            b"Subject: ok\r\n\r\nfine %d\r\n" % n for n in range(3)
        ]
        codes = [(await send(gw.port, body))[0] for body in bodies]
        assert codes == [250] * 4
        delivered = await sink.wait_for(4, within=30)
        assert sum(d.data == CLEAN for d in delivered) == 3
        (held,) = [d for d in delivered if d.data != CLEAN]
        assert b"secret-payload" not in held.data
        await wait_until(lambda: len(gw.audit.records) == 4, within=10)
        assert sorted(r["verdict"] for r in gw.audit.records) == ["deliver"] * 3 + ["hold"]
    finally:
        await gw.gateway.stop()
        await asyncio.to_thread(sanitizer.close)
        await sink.stop()


# --- the LGWAN-side MTA misbehaving ---------------------------------------------------------


class FlakyMta:
    """A raw server that answers 421 at the greeting, or drops the connection mid-DATA."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.connections = 0
        self.server: asyncio.Server | None = None
        self.writers: list[asyncio.StreamWriter] = []

    async def start(self, port: int) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", port)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        with contextlib.suppress(ConnectionError, OSError, asyncio.IncompleteReadError):
            if self.mode == "421":
                writer.write(b"421 4.3.2 Service not available, closing channel\r\n")
                await writer.drain()
                return
            writer.write(b"220 flaky ESMTP\r\n")
            while True:
                line = await reader.readline()
                if not line:
                    return
                verb = line[:4].upper()
                if verb in (b"EHLO", b"HELO"):
                    writer.write(b"250-flaky\r\n250 8BITMIME\r\n")
                elif verb == b"DATA":
                    writer.write(b"354 go ahead\r\n")
                    await writer.drain()
                    await reader.read(20)  # a little of the message, then the line drops
                    return
                elif verb == b"QUIT":
                    writer.write(b"221 bye\r\n")
                    return
                else:
                    writer.write(b"250 OK\r\n")
                await writer.drain()
        writer.close()

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            for writer in self.writers:
                writer.close()
            await self.server.wait_closed()


@pytest.fixture
def flaky_port() -> int:
    return free_port()


@pytest.mark.parametrize("mode", ["421", "drop-mid-data"])
async def test_downstream_421_or_drop_mid_data_is_retried_then_delivered(
    tmp_path: Path, mode: str, flaky_port: int
) -> None:
    flaky = FlakyMta(mode)
    await flaky.start(flaky_port)
    gw = await start_gateway(make_config(tmp_path / "data", flaky_port))
    try:
        assert (await send(gw.port))[0] == 250
        await wait_until(lambda: gw.metrics.counts["deferred"] >= 2)
        assert flaky.connections >= 2
        assert gw.gateway.spool.ids("outgoing")
        assert gw.audit.records == []  # not finished: no final audit line yet
        await flaky.stop()
        sink = Sink()
        sink.port = flaky_port
        await sink.start()
        try:
            await sink.wait_for(1)
            await wait_until(lambda: len(gw.audit.records) == 1)
            (record,) = gw.audit.records
            assert record["state"] == "delivered"
            assert record["attempts"] >= 3
        finally:
            await sink.stop()
    finally:
        await gw.gateway.stop()


# --- a damaged spool at start-up ------------------------------------------------------------


async def test_restart_with_half_written_spool_files(tmp_path: Path) -> None:
    sink = await Sink().start()
    data = tmp_path / "data"
    spool = Spool(data / "spool")
    # A write cut short before its rename (tmp/), and files damaged on disk in both queues.
    (spool.root / "tmp" / f"{new_queue_id()}.abcd.msg").write_bytes(b'{"queue_id": "Q')
    half_incoming = new_queue_id()
    spool.path("incoming", half_incoming).write_bytes(b'{"queue_id": "' + half_incoming.encode())
    half_outgoing = new_queue_id()
    spool.path("outgoing", half_outgoing).write_bytes(b"")
    # And one whole message waiting from before the crash.
    good = Envelope(
        queue_id=new_queue_id(),
        mail_from="a@example.com",
        rcpt_tos=(RCPT,),
        client="192.0.2.1",
        helo="x",
        received_at=0.0,
        size=len(SIMPLE),
    )
    spool.accept(good, SIMPLE)
    gw = await start_gateway(make_config(data, sink.port))
    try:
        assert (await send(gw.port))[0] == 250  # the process is alive and serving
        await sink.wait_for(2)
        await wait_until(
            lambda: sorted(spool.ids("dead")) == sorted([half_incoming, half_outgoing])
        )
        assert not list((spool.root / "tmp").iterdir())
        await wait_until(lambda: spool.ids("incoming") == spool.ids("outgoing") == [])
        # Every file is accounted for: two delivered, two damaged ones dead with a line each.
        await wait_until(lambda: len(gw.audit.records) == 4)
        assert gw.metrics.counts["dead_lettered"] == 2
        dead = sorted(r["queue_id"] for r in gw.audit.records if r["state"] == "dead")
        assert dead == sorted([half_incoming, half_outgoing])
        assert all("unreadable" in r["error"] for r in gw.audit.records if r["state"] == "dead")
    finally:
        await gw.gateway.stop()
        await sink.stop()


async def test_process_survives_a_crash_loop_of_internal_errors(tmp_path: Path) -> None:
    """Every accept fails (the spool directory vanished): 451 each time, never 5xx or 250,
    and the listener survives for the next client once the directory is back."""
    sink = await Sink().start()
    gw = await start_gateway(make_config(tmp_path / "data", sink.port))
    try:
        tmp_dir = gw.gateway.spool.tmp
        os.rename(tmp_dir, tmp_dir.with_name("tmp-away"))
        codes = [(await send(gw.port))[0] for _ in range(5)]
        assert codes == [451] * 5
        os.rename(tmp_dir.with_name("tmp-away"), tmp_dir)
        assert (await send(gw.port))[0] == 250
        await sink.wait_for(1)
    finally:
        await gw.gateway.stop()
        await sink.stop()
