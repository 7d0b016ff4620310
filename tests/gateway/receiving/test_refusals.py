"""Every refusal of the SMTP layer is logged once: reason code, reply, client, envelope so far.

One scenario per reason code in :class:`SmtpRefusal`, each on real sockets; a reason code without
a scenario fails the suite, so a new refusal cannot go unlogged unnoticed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest

from gateway.receiving.smtp import REPLY_AUTH_REJECT, REPLY_AUTH_TEMPORARY, Refused
from sanitizers.vocabulary import SmtpRefusal
from tests.gateway.receiving.test_smtp import Receiver
from tests.gateway.relaykit import SIMPLE, RawClient


@pytest.fixture(autouse=True)
def _collect_garbage() -> Iterator[None]:
    import gc

    yield
    gc.collect()


SENDER = b"sender@example.com"
LOCAL = b"staff@example.lg.jp"

Scenario = Callable[[Receiver], Awaitable[None]]
SCENARIOS: dict[SmtpRefusal, tuple[dict[str, Any], Scenario]] = {}


def scenario(reason: SmtpRefusal, **settings: Any) -> Callable[[Scenario], Scenario]:
    def register(function: Scenario) -> Scenario:
        SCENARIOS[reason] = (settings, function)
        return function

    return register


async def session(rx: Receiver) -> RawClient:
    client, greeting = await RawClient.connect(rx.port)
    assert greeting.startswith(b"220")
    return client


async def with_data(rx: Receiver, data: bytes) -> bytes:
    client = await session(rx)
    await client.envelope(SENDER, LOCAL)
    assert (await client.cmd(b"DATA\r\n")).startswith(b"354")
    reply = await client.cmd(data)
    await client.close()
    return reply


async def until_closed(client: RawClient) -> bytes:
    reply = await client.reply(within=30)
    await client.close()
    return reply


@scenario(SmtpRefusal.RELAY)
async def _relay(rx: Receiver) -> None:
    client = await session(rx)
    await client.envelope(SENDER, LOCAL)
    assert (await client.cmd(b"RCPT TO:<victim@elsewhere.test>\r\n")).startswith(b"554 5.7.1")
    await client.close()


@scenario(SmtpRefusal.SIZE, max_message_bytes=1000)
async def _size(rx: Receiver) -> None:
    client = await session(rx)
    await client.cmd(b"EHLO client.test\r\n")
    assert (await client.cmd(b"MAIL FROM:<sender@example.com> SIZE=5000\r\n")).startswith(b"552")
    await client.close()
    assert (await with_data(rx, SIMPLE + b"z" * 2000 + b"\r\n.\r\n")).startswith(b"552 5.3.4")


@scenario(SmtpRefusal.RECIPIENTS)
async def _recipients(rx: Receiver) -> None:
    client = await session(rx)
    await client.envelope(SENDER, LOCAL, *[b"u%d@example.lg.jp" % n for n in range(99)])
    assert (await client.cmd(b"RCPT TO:<u100@example.lg.jp>\r\n")).startswith(b"452 4.5.3")
    await client.close()


@scenario(SmtpRefusal.BARE_NEWLINE)
async def _bare_newline(rx: Receiver) -> None:
    assert (await with_data(rx, b"Subject: x\r\n\r\na\nb\r\n.\r\n")).startswith(b"550 5.5.2")


@scenario(SmtpRefusal.SMUGGLING)
async def _smuggling(rx: Receiver) -> None:
    assert (await with_data(rx, b"Subject: x\r\n\r\na\x00b\r\n.\r\n")).startswith(b"550 5.5.2")


@scenario(SmtpRefusal.PIPELINING)
async def _pipelining(rx: Receiver) -> None:
    reply = await with_data(rx, SIMPLE + b".\r\nMAIL FROM:<other@example.com>\r\n")
    assert reply.startswith(b"250")


@scenario(SmtpRefusal.LINE_LENGTH, max_line_bytes=1000)
async def _line_length(rx: Receiver) -> None:
    assert (await with_data(rx, SIMPLE + b"y" * 1001 + b"\r\n.\r\n")).startswith(b"500 5.5.2")


@scenario(SmtpRefusal.SYNTAX)
async def _syntax(rx: Receiver) -> None:
    client = await session(rx)
    await client.envelope(SENDER, LOCAL)
    assert (await client.cmd(b"RCPT TO:<a\x01b@example.lg.jp>\r\n")).startswith(b"553")
    await client.close()


@scenario(SmtpRefusal.PROTOCOL)
async def _protocol(rx: Receiver) -> None:
    client = await session(rx)
    await client.envelope(SENDER, LOCAL)
    assert (await client.cmd(b"FROB now\r\n")).startswith(b"500")
    await client.close()


@scenario(SmtpRefusal.TIMEOUT, command_timeout_seconds=0.3)
async def _timeout(rx: Receiver) -> None:
    client = await session(rx)
    await client.send(b"EHLO client.test\r\nMAIL FROM:<sender@example.com>\r\nRCPT TO:<sta")
    await client.reply()
    await client.reply()
    assert (await until_closed(client)).startswith(b"421 4.4.2")


@scenario(
    SmtpRefusal.STRESS_TIMEOUT,
    max_connections=2,
    stress_threshold_ratio=0.5,
    command_timeout_seconds=60,
    stress_timeout_seconds=0.3,
)
async def _stress_timeout(rx: Receiver) -> None:
    clients = [await session(rx), await session(rx)]
    await clients[0].cmd(b"EHLO client.test\r\n")
    replies = await asyncio.gather(*(until_closed(client) for client in clients))
    assert all(reply.startswith(b"421 4.4.2") for reply in replies)


@scenario(SmtpRefusal.DEADLINE, session_deadline_seconds=0.3)
async def _deadline(rx: Receiver) -> None:
    client = await session(rx)
    await client.envelope(SENDER, LOCAL)
    assert (await until_closed(client)).startswith(b"421 4.4.2")


@scenario(SmtpRefusal.TOO_SLOW, min_data_rate_bytes_per_second=10**6, data_rate_grace_seconds=0.05)
async def _too_slow(rx: Receiver) -> None:
    client = await session(rx)
    await client.envelope(SENDER, LOCAL)
    await client.cmd(b"DATA\r\n")
    for _ in range(200):
        await client.send(b"x")
        try:
            reply = await client.reply(within=0.02)
        except TimeoutError:
            continue
        assert reply.startswith(b"421 4.4.2")
        break
    await client.close()


@scenario(SmtpRefusal.CONNECTIONS, max_connections=1)
async def _connections(rx: Receiver) -> None:
    first = await session(rx)
    second, greeting = await RawClient.connect(rx.port)
    assert greeting.startswith(b"421 4.7.0")
    for client in (first, second):
        await client.close()


@scenario(SmtpRefusal.CONNECTIONS_PER_CLIENT, max_connections_per_client=1)
async def _connections_per_client(rx: Receiver) -> None:
    first = await session(rx)
    second, greeting = await RawClient.connect(rx.port)
    assert greeting.startswith(b"421 4.7.0")
    for client in (first, second):
        await client.close()


@scenario(SmtpRefusal.DISK, min_free_disk_bytes=1)
async def _disk(rx: Receiver) -> None:
    rx.free = 0
    client = await session(rx)
    await client.cmd(b"EHLO client.test\r\n")
    assert (await client.cmd(b"MAIL FROM:<sender@example.com>\r\n")).startswith(b"452 4.3.1")
    await client.close()


@scenario(SmtpRefusal.STORE)
async def _store(rx: Receiver) -> None:
    """While the store does not answer: 451 at MAIL, and at the end of DATA for a transaction
    begun before it went away; nothing is accepted."""
    client = await session(rx)
    await client.envelope(SENDER, LOCAL)
    assert (await client.cmd(b"DATA\r\n")).startswith(b"354")
    rx.server.set_store_up(False)
    assert (await client.cmd(SIMPLE + b".\r\n")).startswith(b"451 4.3.0")
    assert (await client.cmd(b"MAIL FROM:<sender@example.com>\r\n")).startswith(b"451 4.3.0")
    await client.close()
    assert rx.accepted == []
    rx.server.set_store_up(True)
    assert (await with_data(rx, SIMPLE + b".\r\n")).startswith(b"250")


@scenario(SmtpRefusal.SHUTDOWN)
async def _shutdown(rx: Receiver) -> None:
    client = await session(rx)
    await client.envelope(SENDER, LOCAL)
    await rx.server.drain(5)
    assert (await until_closed(client)).startswith(b"421 4.3.2")


@scenario(SmtpRefusal.INTERNAL)
async def _internal(rx: Receiver) -> None:
    rx.fail = RuntimeError("spool on fire")
    assert (await with_data(rx, SIMPLE + b".\r\n")).startswith(b"451 4.3.0")


@scenario(SmtpRefusal.AUTH_REJECT)
async def _auth_reject(rx: Receiver) -> None:
    rx.fail = Refused(REPLY_AUTH_REJECT)  # what sender authentication raises for "reject"
    assert (await with_data(rx, SIMPLE + b".\r\n")).startswith(b"550 5.7.1")


@scenario(SmtpRefusal.AUTH_TEMPORARY)
async def _auth_temporary(rx: Receiver) -> None:
    rx.fail = Refused(REPLY_AUTH_TEMPORARY)
    assert (await with_data(rx, SIMPLE + b".\r\n")).startswith(b"451 4.7.0")


# ``verdict`` is counted by the worker after the 250 (a rejecting verdict), not by the receiver.
RECEIVER_REFUSALS = [reason for reason in SmtpRefusal if reason is not SmtpRefusal.VERDICT]


def test_every_reason_code_has_a_scenario() -> None:
    assert set(SCENARIOS) == set(RECEIVER_REFUSALS)


@pytest.mark.parametrize("reason", RECEIVER_REFUSALS, ids=str)
async def test_refusal_is_logged_with_client_envelope_and_reason(
    reason: SmtpRefusal, caplog: pytest.LogCaptureFixture
) -> None:
    settings, run = SCENARIOS[reason]
    caplog.set_level(logging.INFO, logger="mukaika.smtp")
    async with Receiver(**settings) as rx:
        await run(rx)
        await asyncio.sleep(0.05)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("refused ")]
    mine = [line for line in lines if f"reason={reason.value} " in line]
    assert mine, lines
    assert all('client="127.0.0.1"' in line for line in mine)
    assert rx.rejected.count(reason.value) == len(mine)  # counted once per logged refusal
    envelope_known = reason in {
        SmtpRefusal.RELAY,
        SmtpRefusal.RECIPIENTS,
        SmtpRefusal.BARE_NEWLINE,
        SmtpRefusal.SMUGGLING,
        SmtpRefusal.LINE_LENGTH,
        SmtpRefusal.SYNTAX,
        SmtpRefusal.PROTOCOL,
        SmtpRefusal.DEADLINE,
        SmtpRefusal.TOO_SLOW,
        SmtpRefusal.SHUTDOWN,
        SmtpRefusal.INTERNAL,
        SmtpRefusal.AUTH_REJECT,
        SmtpRefusal.AUTH_TEMPORARY,
    }
    if envelope_known:
        assert any('from="sender@example.com"' in line for line in mine), mine
        assert any('"staff@example.lg.jp"' in line for line in mine), mine


async def test_relay_refusal_names_the_refused_recipient_and_escapes_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="mukaika.smtp")
    async with Receiver() as rx:
        client = await session(rx)
        await client.envelope(SENDER, LOCAL)
        await client.cmd("RCPT TO:<\u202eevil@elsewhere.test>\r\n".encode())
        await client.close()
    (line,) = [r.getMessage() for r in caplog.records if "reason=relay" in r.getMessage()]
    assert 'helo="client.test"' in line
    assert 'command="RCPT TO:<\\u202eevil@elsewhere.test>"' in line
    assert "\u202e" not in line


async def test_replies_of_aiosmtpd_name_the_line_they_answer(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """aiosmtpd answers some lines itself (an unrecognised command, a line too long, too many
    unrecognised commands); each refusal names that line's command word (escaped), never the
    command before it, and a line over the length limits is ``line_length``."""
    caplog.set_level(logging.INFO, logger="mukaika.smtp")
    async with Receiver() as rx:
        client = await session(rx)
        await client.envelope(SENDER, LOCAL)
        assert (await client.cmd(b"XYZ\x1b[31m\xe2\x80\xae arg\r\n")).startswith(b"500")
        assert (await client.cmd(b"NOOP " + b"x" * 600 + b"\r\n")).startswith(b"500")
        assert (await client.cmd(b"NOOP " + b"y" * 70_000 + b"\r\n")).startswith(b"500")
        for n in range(10):  # aiosmtpd's budget of unrecognised commands runs out
            reply = await client.cmd(f"BOGUS{n}\r\n".encode())
            if reply.startswith(b"502"):
                break
        await client.close()
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("refused ")]
    assert "reason=protocol" in lines[0], lines
    assert 'command="XYZ\\u001b[31m\\u202e"' in lines[0], lines
    for line, command in ((lines[1], "NOOP"), (lines[2], "")):
        assert "reason=line_length" in line, lines
        assert f'command="{command}"' in line, lines
    assert 'reply="502 5.5.1"' in lines[-1], lines
    assert f'command="BOGUS{n}"' in lines[-1], lines
    assert not any("MAIL FROM" in line or "RCPT TO" in line for line in lines[:3]), lines
