"""Hostile SMTP clients against the receiver: smuggling, injection, limits, floods, trickles.

Covered elsewhere (not repeated here): tests/gateway/receiving/test_smtp.py —
test_smuggling_refused (\\n.\\n, \\n.\\r\\n, \\r.\\r\\n, \\r\\n.\\n, \\r\\n.\\r, \\r.\\r),
test_pipelining_after_final_dot_refused, test_recipient_limit, test_connection_caps,
test_command_and_line_length_limits, test_idle_timeout_closes, test_session_deadline,
test_minimum_data_rate, test_accepts_domain_and_refuses_relay.
Every test counts what was accepted: a smuggled second message is never accepted."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.gateway.receiving.test_smtp import SMUGGLE, Receiver, certificate
from tests.gateway.relaykit import SIMPLE, RawClient

__all__ = ["certificate"]  # the module-scoped fixture, shared with the receiver's tests


@pytest.fixture
async def rx() -> AsyncIterator[Receiver]:
    async with Receiver() as receiver:
        yield receiver


async def open_data(port: int) -> RawClient:
    """A session that has just been answered 354."""
    client, _ = await RawClient.connect(port)
    await client.envelope()
    assert (await client.cmd(b"DATA\r\n")).startswith(b"354")
    return client


# --- end-of-data smuggling -------------------------------------------------------------------

VARIANTS = {
    "lf-lf": b"\n.\n",
    "lf-crlf": b"\n.\r\n",
    "cr-cr": b"\r.\r",
    "cr-lf": b"\r.\n",
    "crlf-lf": b"\r\n.\n",
    "cr-crlf": b"\r.\r\n",
    "crlf-nul-dot-crlf": b"\r\n\x00.\r\n",
}


@pytest.mark.parametrize("fake_end", list(VARIANTS.values()), ids=list(VARIANTS))
async def test_smuggled_end_of_data_is_refused_and_never_two_messages(
    rx: Receiver, fake_end: bytes
) -> None:
    client = await open_data(rx.port)
    reply = await client.cmd(SIMPLE + b"text" + fake_end + SMUGGLE + b".\r\n")
    assert reply.startswith(b"550 5.5.2"), reply
    # The smuggled commands were data: the next command gets exactly its own reply.
    assert (await client.cmd(b"NOOP\r\n")).startswith(b"250")
    with pytest.raises(TimeoutError):
        await client.reply(within=0.2)
    await client.close()
    assert rx.accepted == []
    assert rx.rejected in (["bare_newline"], ["smuggling"])


@pytest.mark.parametrize("fake_end", list(VARIANTS.values()), ids=list(VARIANTS))
async def test_smuggled_end_split_across_packets(rx: Receiver, fake_end: bytes) -> None:
    client = await open_data(rx.port)
    await client.send(SIMPLE + b"text" + fake_end[:1])
    await asyncio.sleep(0.02)
    await client.send(fake_end[1:] + SMUGGLE)
    await asyncio.sleep(0.02)
    assert (await client.cmd(b".\r\n")).startswith(b"550 5.5.2")
    await client.close()
    assert rx.accepted == []


async def test_second_transaction_pipelined_after_final_dot_in_one_packet(rx: Receiver) -> None:
    """The whole second transaction (MAIL..DATA..dot) in the packet of the first final dot."""
    client = await open_data(rx.port)
    await client.send(SIMPLE + b".\r\n" + SMUGGLE + b".\r\nQUIT\r\n")
    assert (await client.reply()).startswith(b"250")
    assert (await client.reply()).startswith(b"503 5.5.0")
    assert await client.reply() == b""
    await client.close()
    assert len(rx.accepted) == 1
    assert b"evil" not in rx.accepted[0].untrusted_raw


async def test_nul_in_data_is_refused(rx: Receiver) -> None:
    client = await open_data(rx.port)
    assert (await client.cmd(SIMPLE + b"a\x00b\r\n.\r\n")).startswith(b"550 5.5.2")
    await client.close()
    assert rx.accepted == []


# --- STARTTLS command injection (CVE-2024-34083 class) --------------------------------------


async def test_commands_after_starttls_in_one_packet_are_discarded(
    certificate: tuple[Path, Path],
) -> None:
    cert, key = certificate
    async with Receiver(tls_cert_file=str(cert), tls_key_file=str(key)) as rx:
        client, _ = await RawClient.connect(rx.port)
        await client.cmd(b"EHLO c\r\n")
        injected = b"MAIL FROM:<evil@example.com>\r\nRCPT TO:<u@example.lg.jp>\r\nDATA\r\n"
        assert (await client.cmd(b"STARTTLS\r\n" + injected)).startswith(b"220")
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        await client.writer.start_tls(context)
        # Had the injected commands run, their replies would come first.
        first = await client.cmd(b"RCPT TO:<u@example.lg.jp>\r\n")
        assert first.startswith(b"503"), first
        with pytest.raises(TimeoutError):
            await client.reply(within=0.2)
        await client.close()
        assert rx.accepted == []


# --- envelope arguments ---------------------------------------------------------------------

BAD_SENDERS = {
    "nul": b"MAIL FROM:<a\x00b@example.com>",
    "cr": b"MAIL FROM:<a\rb@example.com>",
    "del": b"MAIL FROM:<a\x7fb@example.com>",
    "local-part-65": b"MAIL FROM:<" + b"a" * 65 + b"@example.com>",
    "domain-256": b"MAIL FROM:<a@" + b"b" * 252 + b".com>",
    "path-300": b"MAIL FROM:<" + b"a" * 60 + b"@" + b"b." * 120 + b"com>",
}


@pytest.mark.parametrize("command", list(BAD_SENDERS.values()), ids=list(BAD_SENDERS))
async def test_control_characters_and_long_paths_in_mail_from(rx: Receiver, command: bytes) -> None:
    client, _ = await RawClient.connect(rx.port)
    await client.cmd(b"EHLO c\r\n")
    reply = await client.cmd(command + b"\r\n")
    assert reply[:1] == b"5", reply
    assert not (await client.cmd(b"RCPT TO:<u@example.lg.jp>\r\n")).startswith(b"250")
    await client.close()
    assert rx.accepted == []


BAD_RECIPIENTS = {
    "nul": b"RCPT TO:<u\x00@example.lg.jp>",
    "next-line-c1": "RCPT TO:<u\x85x@example.lg.jp>".encode(),
    "line-separator": "RCPT TO:<u\u2028x@example.lg.jp>".encode(),
    "local-part-65": b"RCPT TO:<" + b"u" * 65 + b"@example.lg.jp>",
    "source-route-to-outside": b"RCPT TO:<@example.lg.jp:victim@outside.example>",
    "percent-hack": b"RCPT TO:<victim%outside.example@example.lg.jp.evil.example>",
    "quoted-at": b'RCPT TO:<"victim@outside.example">',
    "trailing-dot-outside": b"RCPT TO:<victim@outside.example.>",
}


@pytest.mark.parametrize("command", list(BAD_RECIPIENTS.values()), ids=list(BAD_RECIPIENTS))
async def test_hostile_recipients_are_refused(rx: Receiver, command: bytes) -> None:
    client, _ = await RawClient.connect(rx.port)
    await client.cmd(b"EHLO c\r\n")
    assert (await client.cmd(b"MAIL FROM:<a@example.com> SMTPUTF8\r\n")).startswith(b"250")
    reply = await client.cmd(command + b"\r\n")
    assert reply[:1] == b"5", reply
    assert (await client.cmd(b"DATA\r\n")).startswith(b"503")
    await client.close()
    assert rx.accepted == []


async def test_lf_inside_a_command_cannot_add_a_recipient(rx: Receiver) -> None:
    """A bare LF ends a command line (as in Postfix): the second half is its own command,
    checked like any other."""
    client, _ = await RawClient.connect(rx.port)
    await client.cmd(b"EHLO c\r\n")
    await client.send(b"MAIL FROM:<a@example.com>\nRCPT TO:<x@outside.example>\r\n")
    assert (await client.reply()).startswith(b"250")
    assert (await client.reply()).startswith(b"554 5.7.1")
    await client.close()
    assert rx.rejected == ["relay"]


async def test_accepted_envelope_never_carries_controls(rx: Receiver) -> None:
    client, _ = await RawClient.connect(rx.port)
    await client.cmd(b"EHLO c\x01\r\n")
    await client.cmd(b"MAIL FROM:<a@example.com>\r\n")
    await client.cmd(b"RCPT TO:<u\x01@example.lg.jp>\r\n")
    await client.cmd(b"RCPT TO:<u\t@example.lg.jp>\r\n")  # white space: read as u@...
    await client.cmd(b"RCPT TO:<ok@example.lg.jp\r>\r\n")  # CR is folding white space
    await client.cmd(b"DATA\r\n")
    assert (await client.cmd(SIMPLE + b".\r\n")).startswith(b"250")
    await client.close()
    (received,) = rx.accepted
    for value in (received.mail_from, *received.rcpt_tos):
        assert all(ord(ch) >= 0x20 and ord(ch) != 0x7F for ch in value)
    assert set(received.rcpt_tos) <= {"ok@example.lg.jp", "u@example.lg.jp"}


# --- sizes ----------------------------------------------------------------------------------


async def test_over_long_command_line_is_refused_and_session_goes_on(rx: Receiver) -> None:
    client, _ = await RawClient.connect(rx.port)
    await client.cmd(b"EHLO c\r\n")
    reply = await client.cmd(b"MAIL FROM:<a@example.com> " + b"X=" * 40_000 + b"\r\n")
    assert reply[:1] == b"5"
    assert (await client.cmd(b"NOOP\r\n")).startswith(b"250")
    await client.close()


async def test_command_line_beyond_the_reader_limit(rx: Receiver) -> None:
    """1 MiB without a line end is read and discarded (never buffered whole); the line end
    gets 500 and the session goes on."""
    client, _ = await RawClient.connect(rx.port)
    for _ in range(16):
        await client.send(b"HELO " + b"h" * 64 * 1024)
    assert (await client.cmd(b"\r\n")).startswith(b"500")
    assert (await client.cmd(b"NOOP\r\n")).startswith(b"250")
    await client.close()
    assert rx.accepted == []


@pytest.mark.parametrize(
    ("tail", "replies"),
    [
        (b"tail\n.\n" + SMUGGLE + b".\r\n", [b"552 5.3.4"]),
        (b".\r\n" + SMUGGLE + b".\r\n", [b"552 5.3.4", b"503 5.5.0", b""]),
    ],
    ids=["fake-end-after-the-limit", "real-end-then-a-smuggled-transaction"],
)
async def test_oversize_message_with_an_end_after_the_limit(
    tail: bytes, replies: list[bytes]
) -> None:
    async with Receiver(max_message_bytes=2000) as rx:
        client = await open_data(rx.port)
        await client.send(SIMPLE + (b"x" * 70 + b"\r\n") * 60 + tail)  # past the limit
        for expected in replies:
            reply = await client.reply()
            assert reply.startswith(expected) if expected else reply == b"", reply
        if replies[-1]:  # still open: the next command is a command again
            assert (await client.cmd(b"NOOP\r\n")).startswith(b"250")
        await client.close()
        assert rx.accepted == []
        assert rx.rejected[0] == "size"


async def test_endless_data_is_bounded_by_the_size_limit() -> None:
    """1 MiB streamed into a 4 KiB limit: the receiver keeps only a tail, then answers 552."""
    async with Receiver(max_message_bytes=4096) as rx:
        client = await open_data(rx.port)
        for _ in range(16):
            await client.send((b"y" * 1022 + b"\r\n") * 64)
        assert (await client.cmd(b".\r\n")).startswith(b"552 5.3.4")
        await client.close()
        assert rx.accepted == []


# --- floods and trickles --------------------------------------------------------------------


async def test_junk_command_flood_is_answered_and_survived(rx: Receiver) -> None:
    client, _ = await RawClient.connect(rx.port)
    junk = b"".join(b"XJUNK%d \x01\xff\r\n" % n for n in range(500))
    await client.send(junk)
    replies = [await client.reply() for _ in range(500)]
    # Each junk command is refused; after a few the session is closed (aiosmtpd's budget).
    answered = [r for r in replies if r]
    assert all(r[:1] == b"5" for r in answered), {r[:3] for r in answered}
    assert len(answered) < 500
    assert replies[-1] == b""
    await client.close()
    # The server still serves a normal client.
    other, greeting = await RawClient.connect(rx.port)
    assert greeting.startswith(b"220")
    await other.envelope()
    await other.cmd(b"DATA\r\n")
    assert (await other.cmd(SIMPLE + b".\r\n")).startswith(b"250")
    await other.close()
    assert len(rx.accepted) == 1


async def test_rset_and_mail_flood_in_one_session(rx: Receiver) -> None:
    client, _ = await RawClient.connect(rx.port)
    await client.cmd(b"EHLO c\r\n")
    for _ in range(300):
        assert (await client.cmd(b"MAIL FROM:<a@example.com>\r\n"))[:1] in (b"2", b"5")
        await client.cmd(b"RSET\r\n")
    await client.close()
    assert rx.accepted == []


async def test_trickled_command_hits_the_session_deadline() -> None:
    """One byte at a time, each well within the idle timeout: the session deadline ends it.
    (The idle timeout alone counts from the last whole command and closes silently.)"""
    async with Receiver(command_timeout_seconds=5.0, session_deadline_seconds=0.6) as rx:
        client, _ = await RawClient.connect(rx.port)
        reply = b""
        for byte in b"EHLO " + b"x" * 200:
            try:
                await client.send(bytes([byte]))
            except (ConnectionError, OSError):
                break
            try:
                reply = await client.reply(within=0.1)
            except TimeoutError:
                continue
            break
        assert reply.startswith(b"421 4.4.2"), reply
        await client.close()
        assert rx.accepted == []


async def test_trickled_data_is_cut_by_the_minimum_rate() -> None:
    async with Receiver(
        min_data_rate_bytes_per_second=1000,
        data_rate_grace_seconds=0.2,
        command_timeout_seconds=0.5,
    ) as rx:
        client = await open_data(rx.port)
        reply = b""
        for _ in range(100):
            try:
                await client.send(b"z")
                reply = await client.reply(within=0.05)
            except TimeoutError:
                continue
            except (ConnectionError, OSError):
                break
            break
        assert reply.startswith(b"421 4.4.2")
        await client.close()
        assert rx.accepted == []


async def test_many_connections_from_one_address() -> None:
    """60 connections at once from 127.0.0.1 with a per-client cap of 5: 5 are served, the
    rest get 421 and are closed; when they go, new ones are served again."""
    async with Receiver(max_connections=100, max_connections_per_client=5) as rx:
        opened = await asyncio.gather(*(RawClient.connect(rx.port) for _ in range(60)))
        greetings = [greeting[:3] for _, greeting in opened]
        assert greetings.count(b"220") == 5
        assert greetings.count(b"421") == 55
        for client, _ in opened:
            await client.close()
        await asyncio.sleep(0.1)
        client, greeting = await RawClient.connect(rx.port)
        assert greeting.startswith(b"220")
        await client.close()
        assert rx.rejected.count("connections_per_client") == 55


# --- the end-of-data sequences of SMTP-Smuggling-Tools (corpus, read in place) -------------


def _corpus_eod_sequences() -> list[bytes]:
    """Both lists of smtp_smuggling_scanner.py, read as literals (never executed)."""
    import ast
    import re

    from tests.corpus import require_corpus

    path = require_corpus() / "smtp-smuggling-tools" / "smtp_smuggling_scanner.py"
    if not path.is_file():
        pytest.skip(f"{path} is not in the corpus")
    source = path.read_text(encoding="utf-8")
    found: list[bytes] = []
    for match in re.finditer(r"^\w+_eod_sequences = (\[.*?\])", source, re.MULTILINE | re.DOTALL):
        for sequence in ast.literal_eval(match.group(1)):
            if sequence.encode() not in found:
                found.append(sequence.encode())
    assert len(found) >= 9
    return found


@pytest.mark.corpus
async def test_every_corpus_end_of_data_sequence_is_refused(rx: Receiver) -> None:
    for fake_end in _corpus_eod_sequences():
        client = await open_data(rx.port)
        reply = await client.cmd(SIMPLE + b"text" + fake_end + SMUGGLE + b".\r\n")
        assert reply.startswith(b"550 5.5.2"), (fake_end, reply)
        assert (await client.cmd(b"NOOP\r\n")).startswith(b"250")
        await client.close()
    assert rx.accepted == []
