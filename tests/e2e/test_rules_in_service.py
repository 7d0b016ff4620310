"""Rules in the running gateway: per-group policies, split copies, audit of exceptions."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import date
from email.header import decode_header, make_header
from pathlib import Path
from typing import Any

import aiosmtplib

from gateway.configuration.rules import Rule, RuleSet
from gateway.observation.metrics import Metrics
from gateway.processing.pool import InlineSanitizer
from sanitizers.policy import LinkMode, Policy
from tests.gateway.relaykit import FakeSanitizer, Sink, make_config, start_gateway, wait_until

MAIL = (
    "From: Bank <info@bank.example.co.jp>\r\n"
    "To: keiri@example.lg.jp, soumu@example.lg.jp, zaimu@example.lg.jp\r\n"
    "Subject: =?UTF-8?B?6KuL5rGC5pu4?=\r\n"
    "Message-ID: <rules@example.jp>\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "\r\n"
    "請求書をお送りします。\r\n"
).encode()
RECIPIENTS = ["keiri@example.lg.jp", "soumu@example.lg.jp", "zaimu@example.lg.jp"]


def rules(today: date = date(2027, 3, 1)) -> RuleSet:
    return RuleSet(
        Policy(),
        [
            Rule.model_validate(
                {"name": "tag-all", "policy": {"output": {"subject_tag": "[外部]"}}}
            ),
            Rule.model_validate(
                {
                    "name": "finance",
                    "recipients": ["keiri@example.lg.jp", "zaimu@example.lg.jp"],
                    "exception": True,
                    "approved_by": "情報政策課長",
                    "reason": "取引先の帳票",
                    "expires": "2027-03-31",
                    "policy": {"output": {"subject_tag": "[例外]"}, "body": {"links": "drop"}},
                }
            ),
        ],
        lambda: today,
    )


async def send(port: int, recipients: list[str]) -> str:
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False)
    async with client:
        _, reply = await client.sendmail("info@bank.example.co.jp", recipients, MAIL)
    return reply.rsplit(" ", 1)[1]


def subject(raw: bytes) -> str:
    for line in raw.decode("ascii", "replace").split("\r\n"):
        if line.lower().startswith("subject:"):
            return str(make_header(decode_header(line.split(":", 1)[1].strip())))
    raise AssertionError("no subject")


async def test_recipients_with_different_policies_get_separately_sanitized_copies(
    tmp_path: Path,
) -> None:
    sink = await Sink().start()
    sanitizer = InlineSanitizer(Policy(), ThreadPoolExecutor(2))
    harness = await start_gateway(make_config(tmp_path, sink.port), sanitizer)
    harness.gateway.worker.rules = rules()
    try:
        await send(harness.port, RECIPIENTS)
        delivered = await sink.wait_for(2)
        by_recipients = {tuple(sorted(d.rcpt_tos)): d for d in delivered}
        assert set(by_recipients) == {
            ("keiri@example.lg.jp", "zaimu@example.lg.jp"),
            ("soumu@example.lg.jp",),
        }
        finance = by_recipients[("keiri@example.lg.jp", "zaimu@example.lg.jp")]
        assert subject(finance.data) == "[例外] 請求書"
        assert subject(by_recipients[("soumu@example.lg.jp",)].data) == "[外部] 請求書"
        await wait_until(lambda: len(harness.audit.records) == 2)
        records: dict[tuple[str, ...], dict[str, Any]] = {
            tuple(sorted(r["rcpt_to"])): r for r in harness.audit.records
        }
        assert records[("keiri@example.lg.jp", "zaimu@example.lg.jp")]["rules"] == [
            "tag-all",
            "finance",
        ]
        assert records[("keiri@example.lg.jp", "zaimu@example.lg.jp")]["exceptions"] == ["finance"]
        assert records[("soumu@example.lg.jp",)]["rules"] == ["tag-all"]
        assert records[("soumu@example.lg.jp",)]["exceptions"] == []
        queue_ids = {r["queue_id"] for r in harness.audit.records}
        assert len(queue_ids) == 2  # the copy has a queue id of its own
    finally:
        await harness.gateway.stop()
        await sink.stop()


async def test_one_group_is_not_split_and_an_expired_exception_is_not_applied(
    tmp_path: Path,
) -> None:
    sink = await Sink().start()
    sanitizer = FakeSanitizer()
    harness = await start_gateway(make_config(tmp_path, sink.port), sanitizer)
    harness.gateway.worker.rules = rules(today=date(2027, 4, 1))
    try:
        await send(harness.port, RECIPIENTS)
        (delivered,) = await sink.wait_for(1)
        assert sorted(delivered.rcpt_tos) == RECIPIENTS
        (policy,) = sanitizer.policies
        assert policy is not None
        assert policy.output.subject_tag == "[外部]"
        assert policy.body.links == LinkMode.KEEP
        await wait_until(lambda: len(harness.audit.records) == 1)
        (record,) = harness.audit.records
        assert record["rules"] == ["tag-all"]
        assert record["exceptions"] == []
    finally:
        await harness.gateway.stop()
        await sink.stop()


async def test_no_rule_no_rules_field(tmp_path: Path) -> None:
    sink = await Sink().start()
    harness = await start_gateway(make_config(tmp_path, sink.port), FakeSanitizer())
    harness.gateway.worker.rules = RuleSet(Policy(), [])
    try:
        await send(harness.port, RECIPIENTS[:1])
        await sink.wait_for(1)
        await wait_until(lambda: len(harness.audit.records) == 1)
        assert "rules" not in harness.audit.records[0]
        assert "exceptions" not in harness.audit.records[0]
    finally:
        await harness.gateway.stop()
        await sink.stop()


def test_expired_exceptions_gauge_and_audit_allow_list() -> None:
    from gateway.evidence.audit import clean_record

    metrics = Metrics()
    metrics.set_expired_exceptions(len(rules(today=date(2027, 4, 1)).expired()))
    assert b"mukaika_expired_exceptions 1.0" in metrics.render()
    record = clean_record({"rules": ["a"], "exceptions": ["a"]})
    assert record["exceptions"] == ["a"]
    assert "dropped_keys" not in record


async def test_the_gateway_counts_expired_exceptions_from_its_configuration(
    tmp_path: Path,
) -> None:
    from gateway.service.assembly import Gateway, Parts

    sink = await Sink().start()
    expired = {
        "name": "old",
        "exception": True,
        "approved_by": "課長",
        "reason": "期限切れの例外",
        "expires": "2020-01-01",
    }
    config = make_config(tmp_path, sink.port).model_copy(
        update={"rules": (Rule.model_validate(expired),)}
    )
    metrics = Metrics()
    gateway = Gateway(config, Parts(sanitizer=FakeSanitizer(), metrics=metrics))
    try:
        await gateway.start()
        assert b"mukaika_expired_exceptions 1.0" in metrics.render()
        gateway.reload(config.model_copy(update={"rules": ()}))
        assert b"mukaika_expired_exceptions 0.0" in metrics.render()
    finally:
        await gateway.stop()
        await sink.stop()
