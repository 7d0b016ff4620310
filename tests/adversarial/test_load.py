"""Sustained load on loopback: concurrent senders, a bounded number of messages, the gateway
as a process (``mukaika serve``'s loop with the stub sanitizer). Memory stays bounded and
every 250 is delivered with an audit line."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiosmtplib
import pytest

from tests.e2e.test_process_crash import Child, children, write_config
from tests.gateway.relaykit import Sink, wait_until
from tests.mailfactory import leaf, mail

__all__ = ["children"]

SENDERS = 8
PER_SENDER = 50
WARM_UP = 40
# Generous: the gateway keeps nothing per message once it is delivered.
RSS_GROWTH_LIMIT = 64 * 1024 * 1024


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def message(n: int) -> bytes:
    body = ("負荷試験のメールです。" * 40 + "\n").encode() * 25  # about 30 KB
    return mail(leaf("text/plain; charset=utf-8", body + b"%d\r\n" % n))


async def sender(port: int, index: int, accepted: list[int]) -> int:
    refused = 0
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False, timeout=30)
    async with client:
        for n in range(PER_SENDER):
            try:
                await client.sendmail("load@example.com", ["staff@example.lg.jp"], message(n))
                accepted.append(index * PER_SENDER + n)
            except aiosmtplib.SMTPResponseException:
                refused += 1
    return refused


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc for the RSS")
async def test_sustained_load_memory_bounded_and_every_message_accounted(
    tmp_path: Path, children: list[Child]
) -> None:
    sink = await Sink().start()
    try:
        config = write_config(tmp_path, sink.port)
        child = await Child.start(config)
        children.append(child)
        pid = child.process.pid
        warm: list[int] = []
        await sender(child.port, 99, warm)  # one sender warms caches and pools
        await sink.wait_for(len(warm), within=60)
        before = rss_bytes(pid)
        accepted: list[int] = []
        refused = await asyncio.gather(*(sender(child.port, i, accepted) for i in range(SENDERS)))
        assert sum(refused) == 0
        total = len(warm) + len(accepted)
        assert len(accepted) == SENDERS * PER_SENDER
        await sink.wait_for(total, within=120)
        audit = tmp_path / "data" / "audit" / "audit.jsonl"
        await wait_until(lambda: audit.exists() and audit.read_text().count("\n") >= total, 30)
        after = rss_bytes(pid)
        print(
            f"load: {total} messages, RSS before {before / 2**20:.1f} MiB, "
            f"after {after / 2**20:.1f} MiB, growth {(after - before) / 2**20:.1f} MiB"
        )
        assert after - before < RSS_GROWTH_LIMIT
        records = [json.loads(line) for line in audit.read_text().splitlines()]
        assert len(records) == total
        assert {r["state"] for r in records} == {"delivered"}
        assert len({r["queue_id"] for r in records}) == total
        assert await child.stop() == 0
        assert len(sink.messages) >= total  # a duplicate is acceptable, a loss is not
        spool = tmp_path / "data" / "spool"
        assert not list((spool / "incoming").iterdir())
        assert not list((spool / "outgoing").iterdir())
    finally:
        await sink.stop()


async def test_hostile_mix_through_the_real_pipeline_end_to_end(tmp_path: Path) -> None:
    """The MIME and file attacks of this suite, sent concurrently to a gateway running the
    real pipeline in its process pool: every 250 arrives sanitized (or as a held notice) at
    the LGWAN side, with one audit line each; nothing unsanitized crosses."""
    from gateway.processing.pool import ProcessSanitizer
    from tests.adversarial import test_file_attacks as files
    from tests.adversarial import test_mime_attacks as mime
    from tests.adversarial.invariants import assert_safe_message, text_of
    from tests.gateway.relaykit import make_config, start_gateway

    hostile = [
        mime.with_content_type("text/html", "text/plain", body=mime.HTML),
        mime.with_content_type('multipart/mixed; boundary="XX"', body=mime.multipart_body()),
        *(
            mime.with_content_type(ct, body=mime.multipart_body())
            for ct in list(mime.PARSED.values()) + list(mime.AS_TEXT.values())
        ),
        files.attach(files._nested_zip(30), "nested.zip", "application/zip"),
        files.attach(files._pdf_reference_loop(), "doc.pdf", "application/pdf"),
        files.attach(files._png_header_bomb(60_000, 60_000), "photo.png", "image/png"),
        *(files.attach(files.EXE, name, "application/pdf") for name in files.TRICKS.values()),
    ]
    sink = await Sink().start()
    config = make_config(tmp_path / "data", sink.port, worker={"processes": 2})
    sanitizer = ProcessSanitizer(config.policy, 2, timeout_seconds=30.0)
    gw = await start_gateway(config, sanitizer)
    try:

        async def one(raw: bytes) -> None:
            client = aiosmtplib.SMTP(hostname="127.0.0.1", port=gw.port, start_tls=False)
            async with client:
                await client.sendmail("x@example.com", ["staff@example.lg.jp"], raw)

        for start in range(0, len(hostile), 4):
            await asyncio.gather(*(one(raw) for raw in hostile[start : start + 4]))
        delivered = await sink.wait_for(len(hostile), within=120)
        await wait_until(lambda: len(gw.audit.records) == len(hostile), within=30)
        assert gw.metrics.counts["received"] == len(hostile)
        for item in delivered:
            # (A multipart read as text shows its attachment's base64 as text: see the
            # boundary tests; its decoded bytes never cross.)
            out = assert_safe_message(item.data, [files.EXE[:64]])
            assert mime.SECRET not in item.data
            assert mime.SECRET.decode() not in text_of(out)
            assert mime.SCRIPT.decode() not in text_of(out)
        assert {r["state"] for r in gw.audit.records} == {"delivered"}
    finally:
        await gw.gateway.stop()
        await asyncio.to_thread(sanitizer.close)
        await sink.stop()
