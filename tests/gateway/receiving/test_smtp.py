"""The SMTP receiver alone (fake accept): relay policy, limits, smuggling, faults."""

from __future__ import annotations

import asyncio
import gc
import logging
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest

from gateway.configuration.settings import SmtpSettings
from gateway.receiving.smtp import Received, SmtpServer
from tests.gateway.relaykit import SIMPLE, RawClient


@pytest.fixture(autouse=True)
def _collect_garbage() -> Iterator[None]:
    """A leaked socket warns in the test that leaked it, not in a later one."""
    yield
    gc.collect()


class Receiver:
    def __init__(self, **settings: Any) -> None:
        base: dict[str, Any] = {"accept_domains": ("example.lg.jp",), "min_free_disk_bytes": 0}
        base.update(settings)
        if "command_timeout_seconds" in settings and "stress_timeout_seconds" not in settings:
            # The stress limit may not be longer: a short command limit shortens it too.
            default = SmtpSettings.model_fields["stress_timeout_seconds"].default
            base["stress_timeout_seconds"] = min(default, settings["command_timeout_seconds"])
        self.settings = SmtpSettings(**base)
        self.accepted: list[Received] = []
        self.rejected: list[str] = []
        self.free = 10**12
        self.fail: BaseException | None = None
        self.server = SmtpServer(
            self.settings, self.accept, lambda: self.free, self.rejected.append
        )
        self.port = 0

    async def accept(self, received: Received) -> str:
        if self.fail is not None:
            raise self.fail
        self.accepted.append(received)
        return f"Q{len(self.accepted)}"

    async def __aenter__(self) -> Receiver:
        _, self.port = await self.server.start("127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.server.close()


@pytest.fixture
async def rx() -> AsyncIterator[Receiver]:
    async with Receiver() as receiver:
        yield receiver


async def test_accepts_domain_and_refuses_relay(rx: Receiver) -> None:
    client, greeting = await RawClient.connect(rx.port)
    assert greeting.startswith(b"220")
    await client.cmd(b"EHLO c\r\n")
    assert (await client.cmd(b"MAIL FROM:<a@example.com>\r\n")).startswith(b"250")
    assert (await client.cmd(b"RCPT TO:<x@outside.example>\r\n")).startswith(b"554 5.7.1")
    assert (await client.cmd(b"RCPT TO:<x@sub.example.lg.jp>\r\n")).startswith(b"554 5.7.1")
    assert (await client.cmd(b"RCPT TO:<X@EXAMPLE.LG.JP>\r\n")).startswith(b"250")
    assert (await client.cmd(b"DATA\r\n")).startswith(b"354")
    reply = await client.cmd(SIMPLE + b".\r\n")
    assert reply.startswith(b"250 2.0.0")
    assert b"Q1" in reply
    await client.close()
    assert len(rx.accepted) == 1
    assert rx.accepted[0].rcpt_tos == ("X@EXAMPLE.LG.JP",)
    assert rx.accepted[0].untrusted_raw == SIMPLE
    assert rx.rejected == ["relay", "relay"]


async def test_relay_refused_with_aiosmtplib(rx: Receiver) -> None:
    with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as info:
        await aiosmtplib.send(
            SIMPLE,
            sender="a@example.com",
            recipients=["b@gmail.example"],
            hostname="127.0.0.1",
            port=rx.port,
            start_tls=False,
        )
    assert info.value.recipients[0].code == 554
    assert rx.accepted == []


async def test_trusted_network_may_send_anywhere() -> None:
    async with Receiver(trusted_networks=("127.0.0.0/8",)) as rx:
        await aiosmtplib.send(
            SIMPLE,
            sender="a@example.com",
            recipients=["b@elsewhere.example"],
            hostname="127.0.0.1",
            port=rx.port,
            start_tls=False,
        )
        assert len(rx.accepted) == 1


async def test_subdomains_when_enabled() -> None:
    async with Receiver(accept_subdomains=True) as rx:
        client, _ = await RawClient.connect(rx.port)
        await client.cmd(b"EHLO c\r\n")
        await client.cmd(b"MAIL FROM:<a@example.com>\r\n")
        assert (await client.cmd(b"RCPT TO:<x@sub.example.lg.jp>\r\n")).startswith(b"250")
        assert (await client.cmd(b"RCPT TO:<x@badexample.lg.jp>\r\n")).startswith(b"554")
        await client.close()


async def test_size_advertised_and_declared_size_refused() -> None:
    async with Receiver(max_message_bytes=1000) as rx:
        client, _ = await RawClient.connect(rx.port)
        ehlo = await client.cmd(b"EHLO c\r\n")
        assert b"250-SIZE 1000" in ehlo
        assert b"PIPELINING" not in ehlo
        reply = await client.cmd(b"MAIL FROM:<a@example.com> SIZE=1001\r\n")
        assert reply.startswith(b"552 5.3.4")
        assert (await client.cmd(b"MAIL FROM:<a@example.com> SIZE=999\r\n")).startswith(b"250")
        await client.close()
        assert rx.accepted == []


async def test_undeclared_size_enforced_after_data() -> None:
    async with Receiver(max_message_bytes=1000) as rx:
        client, _ = await RawClient.connect(rx.port)
        await client.envelope()
        assert (await client.cmd(b"DATA\r\n")).startswith(b"354")
        body = SIMPLE + (b"x" * 70 + b"\r\n") * 200
        assert (await client.cmd(body + b".\r\n")).startswith(b"552 5.3.4")
        # The session goes on: a small message is accepted afterwards.
        await client.cmd(b"MAIL FROM:<a@example.com>\r\n")
        await client.cmd(b"RCPT TO:<u@example.lg.jp>\r\n")
        await client.cmd(b"DATA\r\n")
        assert (await client.cmd(SIMPLE + b".\r\n")).startswith(b"250")
        await client.close()
        assert len(rx.accepted) == 1
        assert rx.rejected == ["size"]


async def test_recipient_limit(rx: Receiver) -> None:
    client, _ = await RawClient.connect(rx.port)
    await client.cmd(b"EHLO c\r\n")
    await client.cmd(b"MAIL FROM:<a@example.com>\r\n")
    replies = [await client.cmd(b"RCPT TO:<u%d@example.lg.jp>\r\n" % n) for n in range(103)]
    assert all(r.startswith(b"250") for r in replies[:100])
    assert all(r.startswith(b"452 4.5.3") for r in replies[100:])
    await client.cmd(b"DATA\r\n")
    assert (await client.cmd(SIMPLE + b".\r\n")).startswith(b"250")
    await client.close()
    assert len(rx.accepted) == 1
    assert len(rx.accepted[0].rcpt_tos) == 100


SMUGGLE = (
    b"MAIL FROM:<ceo@example.lg.jp>\r\nRCPT TO:<u@example.lg.jp>\r\nDATA\r\n"
    b"Subject: evil\r\n\r\nx\r\n"
)


@pytest.mark.parametrize(
    "fake_end",
    [b"\n.\n", b"\n.\r\n", b"\r.\r\n", b"\r\n.\n", b"\r\n.\r", b"\r.\r", b"\n..\n"],
    ids=["lf-lf", "lf-crlf", "cr-crlf", "crlf-lf", "crlf-cr", "cr-cr", "lf-dotdot-lf"],
)
async def test_smuggling_refused(rx: Receiver, fake_end: bytes) -> None:
    client, _ = await RawClient.connect(rx.port)
    await client.envelope()
    assert (await client.cmd(b"DATA\r\n")).startswith(b"354")
    # One write: a fake end of data, a smuggled transaction, then the real end.
    reply = await client.cmd(SIMPLE + b"text" + fake_end + SMUGGLE + b".\r\n")
    assert reply.startswith(b"550 5.5.2"), reply
    # Nothing else was read as commands: the next command gets its own normal reply.
    assert (await client.cmd(b"NOOP\r\n")).startswith(b"250")
    await client.close()
    assert rx.accepted == []
    assert rx.rejected == ["bare_newline"]


async def test_smuggling_normalized_is_one_message() -> None:
    async with Receiver(bare_newlines="normalize") as rx:
        client, _ = await RawClient.connect(rx.port)
        await client.envelope()
        await client.cmd(b"DATA\r\n")
        reply = await client.cmd(SIMPLE + b"text\n.\n" + SMUGGLE + b".\r\n")
        assert reply.startswith(b"250")
        await client.close()
        assert len(rx.accepted) == 1
        raw = rx.accepted[0].untrusted_raw
        assert b"\n" not in raw.replace(b"\r\n", b"")
        assert b"MAIL FROM:<ceo@example.lg.jp>" in raw  # content, never a command


async def test_pipelining_after_final_dot_refused(rx: Receiver) -> None:
    client, _ = await RawClient.connect(rx.port)
    await client.envelope()
    await client.cmd(b"DATA\r\n")
    await client.send(SIMPLE + b".\r\n" + SMUGGLE + b".\r\n")
    assert (await client.reply()).startswith(b"250")
    assert (await client.reply()).startswith(b"503 5.5.0")
    assert await client.reply() == b""  # closed
    await client.close()
    assert len(rx.accepted) == 1
    assert rx.rejected == ["pipelining"]


async def test_quit_pipelined_after_dot_is_fine(rx: Receiver) -> None:
    client, _ = await RawClient.connect(rx.port)
    await client.envelope()
    await client.cmd(b"DATA\r\n")
    await client.send(SIMPLE + b".\r\nQUIT\r\n")
    assert (await client.reply()).startswith(b"250")
    assert (await client.reply()).startswith(b"221")
    await client.close()
    assert len(rx.accepted) == 1


async def test_pipelining_after_dot_allowed_when_configured() -> None:
    async with Receiver(pipelining_after_data="allow") as rx:
        client, _ = await RawClient.connect(rx.port)
        await client.envelope()
        await client.cmd(b"DATA\r\n")
        await client.send(SIMPLE + b".\r\n" + SMUGGLE + b".\r\n")
        replies = [await client.reply() for _ in range(5)]
        assert [r[:3] for r in replies] == [b"250", b"250", b"250", b"354", b"250"]
        await client.close()
        assert len(rx.accepted) == 2


async def test_dot_unstuffing_and_empty_message(rx: Receiver) -> None:
    client, _ = await RawClient.connect(rx.port)
    await client.envelope()
    await client.cmd(b"DATA\r\n")
    assert (await client.cmd(b"..leading\r\n...\r\n.\r\n")).startswith(b"250")
    await client.cmd(b"MAIL FROM:<>\r\n")
    await client.cmd(b"RCPT TO:<u@example.lg.jp>\r\n")
    await client.cmd(b"DATA\r\n")
    assert (await client.cmd(b".\r\n")).startswith(b"250")
    await client.close()
    assert [r.untrusted_raw for r in rx.accepted] == [b".leading\r\n..\r\n", b""]
    assert rx.accepted[1].mail_from == ""


async def test_data_split_across_many_writes(rx: Receiver) -> None:
    client, _ = await RawClient.connect(rx.port)
    await client.envelope()
    await client.cmd(b"DATA\r\n")
    payload = SIMPLE + b"line\r\n" * 50 + b".\r\n"
    for n in range(0, len(payload), 7):  # the end mark is split between writes
        await client.send(payload[n : n + 7])
        await asyncio.sleep(0)
    assert (await client.reply()).startswith(b"250")
    await client.close()
    assert rx.accepted[0].untrusted_raw == SIMPLE + b"line\r\n" * 50


async def test_internal_error_answers_451(rx: Receiver) -> None:
    rx.fail = RuntimeError("disk on fire")
    client, _ = await RawClient.connect(rx.port)
    await client.envelope()
    await client.cmd(b"DATA\r\n")
    assert (await client.cmd(SIMPLE + b".\r\n")).startswith(b"451 4.3.0")
    # The transaction was reset: a new one can start.
    assert (await client.cmd(b"MAIL FROM:<a@example.com>\r\n")).startswith(b"250")
    await client.close()
    assert rx.accepted == []
    assert rx.rejected == ["internal"]


async def test_low_disk_answers_452_at_mail(rx: Receiver) -> None:
    rx.free = 0
    rx.server.handler.settings = rx.settings.model_copy(update={"min_free_disk_bytes": 1})
    client, _ = await RawClient.connect(rx.port)
    await client.cmd(b"EHLO c\r\n")
    assert (await client.cmd(b"MAIL FROM:<a@example.com>\r\n")).startswith(b"452 4.3.1")
    rx.free = 10**9
    assert (await client.cmd(b"MAIL FROM:<a@example.com>\r\n")).startswith(b"250")
    await client.close()
    assert rx.rejected == ["disk"]


async def test_connection_caps() -> None:
    async with Receiver(max_connections=3, max_connections_per_client=2) as rx:
        first, g1 = await RawClient.connect(rx.port)
        second, g2 = await RawClient.connect(rx.port)
        third, g3 = await RawClient.connect(rx.port)
        assert g1.startswith(b"220")
        assert g2.startswith(b"220")
        assert g3.startswith(b"421 4.7.0")
        assert await third.reply() == b""
        await first.close()
        await asyncio.sleep(0.05)
        fourth, g4 = await RawClient.connect(rx.port)
        assert g4.startswith(b"220")
        for c in (second, third, fourth):
            await c.close()
        assert rx.rejected == ["connections_per_client"]


async def test_command_and_line_length_limits() -> None:
    async with Receiver(max_line_bytes=1000) as rx:
        client, _ = await RawClient.connect(rx.port)
        await client.cmd(b"EHLO c\r\n")
        assert (await client.cmd(b"NOOP " + b"x" * 600 + b"\r\n")).startswith(b"500")
        await client.cmd(b"MAIL FROM:<a@example.com>\r\n")
        await client.cmd(b"RCPT TO:<u@example.lg.jp>\r\n")
        await client.cmd(b"DATA\r\n")
        reply = await client.cmd(SIMPLE + b"y" * 1001 + b"\r\n.\r\n")
        assert reply.startswith(b"500 5.5.2")
        await client.close()
        assert rx.accepted == []


async def test_idle_timeout_closes() -> None:
    async with Receiver(command_timeout_seconds=0.2) as rx:
        client, _ = await RawClient.connect(rx.port)
        assert (await client.reply(within=3)).startswith(b"421 4.4.2")
        assert await client.reply(within=3) == b""
        await client.close()
        assert rx.rejected == ["timeout"]


async def test_session_deadline() -> None:
    async with Receiver(session_deadline_seconds=0.3) as rx:
        client, _ = await RawClient.connect(rx.port)
        await client.envelope()
        await client.cmd(b"DATA\r\n")
        await client.send(b"Subject: slow\r\n")
        assert (await client.reply(within=3)).startswith(b"421 4.4.2")
        await client.close()
        assert rx.accepted == []
        assert rx.rejected == ["deadline"]


async def test_minimum_data_rate() -> None:
    async with Receiver(min_data_rate_bytes_per_second=10**6, data_rate_grace_seconds=0.05) as rx:
        client, _ = await RawClient.connect(rx.port)
        await client.envelope()
        await client.cmd(b"DATA\r\n")
        reply = b""
        for _ in range(50):
            await client.send(b"x")
            try:
                reply = await client.reply(within=0.02)
                break
            except TimeoutError:
                continue
        assert reply.startswith(b"421 4.4.2")
        await client.close()
        assert rx.accepted == []
        assert rx.rejected == ["too_slow"]


async def test_drain_refuses_new_sessions(rx: Receiver) -> None:
    busy, _ = await RawClient.connect(rx.port)
    await busy.envelope()
    await busy.cmd(b"DATA\r\n")
    idle, _ = await RawClient.connect(rx.port)
    drain = asyncio.create_task(rx.server.drain(5))
    assert (await idle.reply()).startswith(b"421")
    late, greeting = await RawClient.connect(rx.port)
    assert greeting.startswith(b"421")
    # The transaction in progress still completes with a 250.
    assert (await busy.cmd(SIMPLE + b".\r\n")).startswith(b"250")
    assert (await busy.reply()).startswith(b"421")
    await asyncio.wait_for(drain, 1)  # no need to wait out the grace period
    for c in (busy, idle, late):
        await c.close()
    assert len(rx.accepted) == 1


async def test_graceful_stop_counts_no_accepted_mail_as_refused(
    rx: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    """Closing sessions whose mail was answered 250 (or that never began one) is a close, not
    a refusal: nothing logged as refused, nothing counted in mukaika_rejected_total."""
    caplog.set_level(logging.INFO, logger="mukaika.smtp")
    busy, _ = await RawClient.connect(rx.port)
    await busy.envelope()
    await busy.cmd(b"DATA\r\n")
    idle, _ = await RawClient.connect(rx.port)
    assert (await idle.cmd(b"EHLO client.test\r\n")).startswith(b"250")
    drain = asyncio.create_task(rx.server.drain(5))
    assert (await idle.reply()).startswith(b"421 4.3.2")
    assert (await busy.cmd(SIMPLE + b".\r\n")).startswith(b"250")
    assert (await busy.reply()).startswith(b"421 4.3.2")
    await asyncio.wait_for(drain, 5)
    for c in (busy, idle):
        await c.close()
    assert len(rx.accepted) == 1
    assert rx.rejected == []
    messages = [r.getMessage() for r in caplog.records]
    assert not [m for m in messages if m.startswith("refused ")], messages
    assert len([m for m in messages if m.startswith("closed reason=shutdown ")]) == 2, messages


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


async def test_starttls_when_certificate_configured(certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    async with Receiver(tls_cert_file=str(cert), tls_key_file=str(key)) as rx:
        client, _ = await RawClient.connect(rx.port)
        assert b"STARTTLS" in await client.cmd(b"EHLO c\r\n")
        await client.close()
        smtp = aiosmtplib.SMTP(
            hostname="127.0.0.1", port=rx.port, start_tls=True, validate_certs=False
        )
        async with smtp:
            assert smtp.get_transport_info("sslcontext") is not None
            await smtp.sendmail("a@example.com", ["u@example.lg.jp"], SIMPLE)
        assert len(rx.accepted) == 1


async def test_no_starttls_without_certificate(rx: Receiver) -> None:
    client, _ = await RawClient.connect(rx.port)
    assert b"STARTTLS" not in await client.cmd(b"EHLO c\r\n")
    await client.close()
