"""Sender authentication in the running gateway, over real SMTP, with a real authoritative DNS
server on loopback (tests/authdns.py): decided before the 250, written into the rebuilt mail,
acted on (refused, held, tagged), counted, audited, recorded for the aggregate reports."""

from __future__ import annotations

import email
import socket
import time
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from email.policy import default
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest

from gateway.configuration.config import Config
from gateway.processing.pool import InlineSanitizer
from gateway.receiving.smtp import REPLY_AUTH_REJECT, REPLY_AUTH_TEMPORARY
from gateway.senderauth.evaluate import Authenticator, Evaluation, Transaction
from sanitizers.policy import Policy
from tests.authdns import AuthDns
from tests.clamd import free_port
from tests.gateway.relaykit import Harness, Sink, make_config, start_gateway, wait_until


def mail(sender: str, extra: str = "") -> bytes:
    return (
        f"{extra}From: {sender}\r\nTo: staff@example.lg.jp\r\nSubject: 請求書\r\n"
        "Date: Thu, 03 Dec 2026 10:00:00 +0900\r\nMessage-ID: <svc@example.jp>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\n請求書をお送りします。\r\n"
    ).encode()


@dataclass
class Running:
    harness: Harness
    sink: Sink
    data_dir: Path


@pytest.fixture
def black_hole() -> Iterator[str]:
    """A name server that never answers (a UDP socket nobody reads)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"127.0.0.1:{sock.getsockname()[1]}"


async def gateway(tmp_path: Path, nameserver: str, **auth: Any) -> Running:
    sink = await Sink().start()
    sanitizer = InlineSanitizer(Policy(), ThreadPoolExecutor(2))
    settings = {"enabled": True, "nameservers": [nameserver], "timeout_seconds": 5.0, **auth}
    config = make_config(tmp_path, sink.port, auth=settings)
    return Running(await start_gateway(config, sanitizer), sink, tmp_path)


@pytest.fixture
async def stop() -> AsyncIterator[list[Running]]:
    started: list[Running] = []
    yield started
    for running in started:
        await running.harness.gateway.stop()
        await running.sink.stop()


async def send(port: int, sender: str, raw: bytes) -> tuple[int, str]:
    client = aiosmtplib.SMTP(
        hostname="127.0.0.1", port=port, start_tls=False, local_hostname="mail.town.ne.jp"
    )
    async with client:
        await client.mail(sender)
        await client.rcpt("staff@example.lg.jp")
        reply = await client.data(raw)
    return reply.code, reply.message


def spool_files(data_dir: Path) -> list[Path]:
    return [p for p in (data_dir / "spool").rglob("*") if p.is_file()]


async def test_a_forged_sender_of_a_reject_domain_is_refused_at_the_end_of_data(
    tmp_path: Path, auth_dns: AuthDns, stop: list[Running]
) -> None:
    running = await gateway(tmp_path, auth_dns.nameserver)
    stop.append(running)
    with pytest.raises(aiosmtplib.SMTPDataError) as refused:
        await send(running.harness.port, "ceo@partner.co.jp", mail("社長 <ceo@partner.co.jp>"))
    assert f"{refused.value.code} {refused.value.message}" == REPLY_AUTH_REJECT
    assert running.harness.metrics.counts["rejected:auth_reject"] == 1
    assert running.sink.messages == []
    assert not spool_files(running.data_dir)  # never accepted: nothing to bounce later


async def test_p_none_is_delivered_tagged_with_our_header_and_counted(
    tmp_path: Path, auth_dns: AuthDns, stop: list[Running]
) -> None:
    running = await gateway(tmp_path, auth_dns.nameserver)
    stop.append(running)
    spoofed = "Authentication-Results: gw.test; dmarc=pass header.from=town.ne.jp\r\n"
    code, _ = await send(
        running.harness.port, "mayor@town.ne.jp", mail("mayor@town.ne.jp", spoofed)
    )
    assert code == 250
    (delivered,) = await running.sink.wait_for(1)
    message = email.message_from_bytes(delivered.data, policy=default)
    assert message["Subject"] == "[なりすまし注意] 請求書"
    (header,) = message.get_all("Authentication-Results")  # ours only
    assert header.startswith("gw.test; spf=none smtp.helo=mail.town.ne.jp; spf=fail")
    assert "dmarc=fail (p=none) header.from=town.ne.jp" in header
    body = message.get_body(("plain",))
    assert body is not None
    assert body.get_content().index("なりすまし") < body.get_content().index("請求書をお送り")
    await wait_until(lambda: len(running.harness.audit.records) == 1)
    audit = running.harness.audit.records[0]["auth"]
    assert audit["action"] == "warn"
    assert "dmarc=fail" in audit["results"]
    assert audit["reasons"] == ["dmarc_fail"]


async def test_p_quarantine_is_held(tmp_path: Path, auth_dns: AuthDns, stop: list[Running]) -> None:
    running = await gateway(tmp_path, auth_dns.nameserver)
    stop.append(running)
    code, _ = await send(running.harness.port, "a@quarantined.co.jp", mail("a@quarantined.co.jp"))
    assert code == 250
    (delivered,) = await running.sink.wait_for(1)
    message = email.message_from_bytes(delivered.data, policy=default)
    assert message["X-Mukaika-Verdict"] == "hold"
    assert "請求書をお送り" not in delivered.data.decode("utf-8", "replace")


async def test_signed_mail_passes_and_is_delivered_untagged(
    tmp_path: Path, auth_dns: AuthDns, stop: list[Running]
) -> None:
    running = await gateway(tmp_path, auth_dns.nameserver)
    stop.append(running)
    raw = auth_dns.sign(mail("info@partner.co.jp"), "partner.co.jp")
    code, _ = await send(running.harness.port, "info@partner.co.jp", raw)
    assert code == 250
    (delivered,) = await running.sink.wait_for(1)
    message = email.message_from_bytes(delivered.data, policy=default)
    assert message["Subject"] == "請求書"
    assert "dkim=pass header.d=partner.co.jp" in message["Authentication-Results"]
    assert "dmarc=pass" in message["Authentication-Results"]


async def test_dns_down_gives_temperror_and_the_documented_default_delivers(
    tmp_path: Path, stop: list[Running]
) -> None:
    running = await gateway(tmp_path, f"127.0.0.1:{free_port()}")
    stop.append(running)
    code, _ = await send(running.harness.port, "ceo@partner.co.jp", mail("ceo@partner.co.jp"))
    assert code == 250
    (delivered,) = await running.sink.wait_for(1)
    header = email.message_from_bytes(delivered.data, policy=default)["Authentication-Results"]
    assert "spf=temperror" in header
    assert "dmarc=temperror" in header


async def test_dns_down_with_temperror_action_reject_answers_451(
    tmp_path: Path, stop: list[Running]
) -> None:
    running = await gateway(tmp_path, f"127.0.0.1:{free_port()}", temperror_action="reject")
    stop.append(running)
    with pytest.raises(aiosmtplib.SMTPDataError) as refused:
        await send(running.harness.port, "ceo@partner.co.jp", mail("ceo@partner.co.jp"))
    assert f"{refused.value.code} {refused.value.message}" == REPLY_AUTH_TEMPORARY


async def test_dns_that_never_answers_gives_temperror_within_the_time(
    tmp_path: Path, black_hole: str, stop: list[Running]
) -> None:
    running = await gateway(tmp_path, black_hole, timeout_seconds=3.0)
    stop.append(running)
    code, _ = await send(running.harness.port, "ceo@partner.co.jp", mail("ceo@partner.co.jp"))
    assert code == 250
    (delivered,) = await running.sink.wait_for(1)
    assert "dmarc=temperror" in delivered.data.decode("ascii", "replace")


class _Stuck(Authenticator):
    """An evaluation that never finishes (as a hung check would)."""

    def evaluate(self, untrusted_raw: bytes, transaction: Transaction) -> Evaluation:
        time.sleep(2.0)
        return super().evaluate(untrusted_raw, transaction)


@pytest.mark.parametrize(("reject", "reply"), [("reject", 451), ("hold", 250)])
async def test_an_evaluation_that_runs_out_of_time_answers_451_when_reject_is_possible(
    tmp_path: Path, auth_dns: AuthDns, stop: list[Running], reject: str, reply: int
) -> None:
    running = await gateway(
        tmp_path, auth_dns.nameserver, timeout_seconds=0.2, dmarc_reject_action=reject
    )
    stop.append(running)
    authenticating = running.harness.gateway._authenticating
    assert authenticating is not None
    stuck = _Stuck(authenticating.authenticator.settings, authserv_id="gw.test")
    authenticating.authenticator = stuck
    try:
        code, message = await send(running.harness.port, "a@partner.co.jp", mail("a@partner.co.jp"))
    except aiosmtplib.SMTPDataError as refused:
        code, message = refused.code, refused.message
    assert code == reply
    if reply == 451:
        assert f"{code} {message}" == REPLY_AUTH_TEMPORARY
        assert not spool_files(running.data_dir)
    else:
        (delivered,) = await running.sink.wait_for(1)
        assert "dmarc=temperror (timed out)" in delivered.data.decode("ascii", "replace")


async def test_a_rule_matches_authentication_results(
    tmp_path: Path, auth_dns: AuthDns, stop: list[Running]
) -> None:
    sink = await Sink().start()
    rule = {"name": "spoofed", "auth": ["dmarc=fail"], "policy": {"output": {"subject_tag": "[X]"}}}
    auth = {"enabled": True, "nameservers": [auth_dns.nameserver], "dmarc_fail_action": "none"}
    data = make_config(tmp_path, sink.port, auth=auth).model_dump(mode="json")
    config = Config.model_validate({**data, "rules": [rule]})
    harness = await start_gateway(config, InlineSanitizer(Policy(), ThreadPoolExecutor(2)))
    stop.append(Running(harness, sink, tmp_path))
    await send(harness.port, "mayor@town.ne.jp", mail("mayor@town.ne.jp"))
    raw = auth_dns.sign(mail("info@partner.co.jp"), "partner.co.jp")
    await send(harness.port, "info@partner.co.jp", raw)
    delivered = await sink.wait_for(2)
    subjects = sorted(
        str(email.message_from_bytes(d.data, policy=default)["Subject"]) for d in delivered
    )
    assert subjects == ["[X] 請求書", "請求書"]
    await wait_until(lambda: len(harness.audit.records) == 2)
    assert sorted(r.get("rules", []) == ["spoofed"] for r in harness.audit.records) == [False, True]


async def test_evaluations_are_recorded_for_the_aggregate_reports(
    tmp_path: Path, auth_dns: AuthDns, stop: list[Running]
) -> None:
    reports = {"enabled": True, "from_address": "dmarc@example.lg.jp", "org_name": "例市"}
    running = await gateway(tmp_path, auth_dns.nameserver, reports=reports)
    stop.append(running)
    await send(running.harness.port, "mayor@town.ne.jp", mail("mayor@town.ne.jp"))
    with pytest.raises(aiosmtplib.SMTPDataError):
        await send(running.harness.port, "ceo@partner.co.jp", mail("ceo@partner.co.jp"))
    files = list((tmp_path / "dmarc").glob("*.jsonl"))
    assert len(files) == 1
    lines = files[0].read_text().splitlines()
    assert [line.count('"disposition":"reject"') for line in lines] == [0, 1]
