"""The worker alone, without SMTP or the service around it: crash counting up to
``worker.max_crashes``, the split by policy group, and what each end leaves in the spool,
the quarantine and the audit log. A recording deliverer stands in for the relay; the
sanitizer is scripted."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from gateway.configuration.rules import Rule, RuleSet
from gateway.configuration.settings import DeliverySettings, WorkerSettings
from gateway.delivery.client import Deliverer, Outcome
from gateway.queue.spool import Envelope, Spool, new_queue_id
from gateway.service.worker import Worker
from sanitizers.policy import Policy
from tests.gateway.relaykit import (
    CountingMetrics,
    FakeAudit,
    FakeQuarantine,
    FakeSanitizer,
    wait_until,
)

MAIL = b"Subject: x\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nbody\r\n"


class RecordingDeliverer(Deliverer):
    """Accepts every recipient and keeps what it was given; never opens a connection."""

    def __init__(self) -> None:
        super().__init__(DeliverySettings())
        self.sent: list[tuple[list[str], bytes]] = []

    async def deliver(self, sender: str, recipients: list[str], message: bytes) -> Outcome:
        self.sent.append((list(recipients), message))
        return Outcome(delivered=list(recipients))


@dataclass
class Bench:
    worker: Worker
    spool: Spool
    sanitizer: FakeSanitizer
    deliverer: RecordingDeliverer
    quarantine: FakeQuarantine = field(default_factory=FakeQuarantine)
    audit: FakeAudit = field(default_factory=FakeAudit)

    def spool_message(self, recipients: tuple[str, ...]) -> str:
        envelope = Envelope(
            queue_id=new_queue_id(),
            mail_from="sender@example.jp",
            rcpt_tos=recipients,
            received_at=0.0,
        )
        self.spool.accept(envelope, MAIL)
        return envelope.queue_id


MakeBench = Callable[..., Bench]


@pytest.fixture
async def bench_for(tmp_path: Path) -> AsyncIterator[MakeBench]:
    made: list[Worker] = []

    def make(script: list[str], *, max_crashes: int = 3, rules: RuleSet | None = None) -> Bench:
        spool = Spool(tmp_path / "spool")
        sanitizer = FakeSanitizer(script)
        deliverer = RecordingDeliverer()
        quarantine, audit = FakeQuarantine(), FakeAudit()
        worker = Worker(
            spool,
            sanitizer,
            deliverer,
            settings=WorkerSettings(concurrency=2, max_crashes=max_crashes, rescan_seconds=0.02),
            delivery=DeliverySettings(),
            quarantine=quarantine,
            audit=audit,
            metrics=CountingMetrics(),
            hostname="gw.test",
            clock=lambda: 1000.0,
            rules=rules,
        )
        made.append(worker)
        return Bench(worker, spool, sanitizer, deliverer, quarantine, audit)

    yield make
    for worker in made:
        await worker.stop(5.0)


@pytest.mark.parametrize("max_crashes", [1, 2, 3])
async def test_a_message_that_keeps_crashing_is_held_after_max_crashes(
    bench_for: MakeBench, max_crashes: int
) -> None:
    bench: Bench = bench_for(["crash"] * 10, max_crashes=max_crashes)
    queue_id = bench.spool_message(("u@example.lg.jp",))
    await bench.worker.start()
    await wait_until(lambda: len(bench.audit.records) == 1)
    # Sanitized max_crashes times: the first in the pool, the others isolated; then held.
    reference = f"Q-{queue_id}"
    assert bench.sanitizer.calls == [(reference, False)] + [(reference, True)] * (max_crashes - 1)
    [(recipients, notice)] = bench.deliverer.sent
    assert recipients == ["u@example.lg.jp"]
    assert MAIL not in notice  # the content-free notice, never the original
    record = bench.audit.records[0]
    assert record["state"] == "held"
    assert record["verdict"] == "hold"
    envelope = bench.spool.envelope("delivered", queue_id)
    assert envelope.crashes == max_crashes


async def test_a_crash_below_max_crashes_is_retried_and_delivered(bench_for: MakeBench) -> None:
    bench: Bench = bench_for(["crash", "crash", "deliver"], max_crashes=3)
    queue_id = bench.spool_message(("u@example.lg.jp",))
    await bench.worker.start()
    await wait_until(lambda: len(bench.audit.records) == 1)
    assert len(bench.sanitizer.calls) == 3
    assert bench.audit.records[0]["state"] == "delivered"
    assert bench.audit.records[0]["verdict"] == "deliver"
    assert bench.spool.envelope("delivered", queue_id).crashes == 2


def tagged_rules() -> RuleSet:
    return RuleSet(
        Policy(),
        [
            Rule.model_validate(
                {
                    "name": "finance",
                    "recipients": ["keiri@example.lg.jp"],
                    "policy": {"output": {"subject_tag": "[経理]"}},
                }
            ),
        ],
    )


async def test_recipients_are_split_by_policy_group(bench_for: MakeBench) -> None:
    bench: Bench = bench_for([], rules=tagged_rules())
    original = bench.spool_message(
        ("soumu@example.lg.jp", "keiri@example.lg.jp", "a@example.lg.jp")
    )
    await bench.worker.start()
    await wait_until(lambda: len(bench.audit.records) == 2)
    sent = sorted(tuple(recipients) for recipients, _ in bench.deliverer.sent)
    assert sent == [("keiri@example.lg.jp",), ("soumu@example.lg.jp", "a@example.lg.jp")]
    # Each group was sanitized once, with its own policy.
    tags = sorted(str(p.output.subject_tag) for p in bench.sanitizer.policies if p is not None)
    assert tags == ["", "[経理]"]
    by_rcpt = {tuple(r["rcpt_to"]): r for r in bench.audit.records}
    assert by_rcpt[("keiri@example.lg.jp",)]["rules"] == ["finance"]
    assert "rules" not in by_rcpt[("soumu@example.lg.jp", "a@example.lg.jp")]
    # The original keeps its queue id for the first group; the copy has its own.
    queue_ids = {r["queue_id"] for r in bench.audit.records}
    assert original in queue_ids
    assert len(queue_ids) == 2
    assert sorted(bench.spool.ids("delivered")) == sorted(queue_ids)


async def test_one_policy_group_is_not_split(bench_for: MakeBench) -> None:
    bench: Bench = bench_for([], rules=tagged_rules())
    original = bench.spool_message(("soumu@example.lg.jp", "a@example.lg.jp"))
    await bench.worker.start()
    await wait_until(lambda: len(bench.audit.records) == 1)
    assert bench.spool.ids("delivered") == [original]
    assert len(bench.sanitizer.calls) == 1
