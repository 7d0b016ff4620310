"""serve's DMARC report job: a node's finished days handed in to the store, then one report
per policy domain spooled for the outbound relay, once, after the day is over."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime
from email import message_from_bytes
from email.policy import default
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from gateway.configuration.config import Config
from gateway.configuration.settings import AuthSettings
from gateway.queue.spool import Spool
from gateway.senderauth.evaluate import Authenticator, Transaction
from gateway.senderauth.reports import Recorder, schema_problems
from gateway.service.dmarc_reporting import DmarcReporting
from gateway.store import Store, dmarc_rows
from tests.authdns import PARTNER_IP, AuthDns
from tests.gateway.senderauth.test_reports import DAY, NOON, mail, record_day
from tests.storekit import migrated_store

# The day after the recorded one, after the reporting hour, and before it.
LATE = datetime(2026, 12, 3, 2, 0, tzinfo=UTC).timestamp()
EARLY = datetime(2026, 12, 3, 0, 30, tzinfo=UTC).timestamp()


class Submitted:
    def __init__(self) -> None:
        self.ids: list[tuple[str, str]] = []

    def submit(self, queue_id: str, state: str) -> None:
        self.ids.append((queue_id, state))


def config(data_dir: Path, auth_dns: AuthDns, *, outbound: bool = True) -> Config:
    settings: dict[str, Any] = {
        "service": {"data_dir": str(data_dir)},
        "node": {"name": "node-1"},
        "auth": {
            "enabled": True,
            "nameservers": [auth_dns.nameserver],
            "reports": {
                "enabled": True,
                "from_address": "dmarc@city.example.lg.jp",
                "org_name": "例市",
            },
        },
    }
    if outbound:
        settings["outbound"] = {
            "enabled": True,
            "client_networks": ["127.0.0.0/8"],
            "relay_host": "127.0.0.1",
        }
    return Config.model_validate(settings)


def job(
    data_dir: Path, store: Store, auth_dns: AuthDns, clock: float, **kwargs: Any
) -> tuple[DmarcReporting, Spool, Submitted]:
    spool = Spool(data_dir / "spool")
    submitted = Submitted()
    reporting = DmarcReporting(
        config(data_dir, auth_dns, **kwargs),
        store,
        spool,
        submitted,  # type: ignore[arg-type]
        clock=lambda: clock,
    )
    return reporting, spool, submitted


async def test_a_finished_day_is_reported_once_through_the_outbound_relay(
    auth_dns: AuthDns, tmp_path: Path
) -> None:
    record_day(auth_dns, tmp_path / "dmarc")
    with migrated_store(tmp_path) as store:
        reporting, spool, submitted = job(tmp_path, store, auth_dns, LATE)
        queue_ids = await reporting.round()
        assert len(queue_ids) == 3  # leaky.co.jp has no verified destination
        assert submitted.ids == [(q, "outgoing") for q in queue_ids]
        assert list((tmp_path / "dmarc").glob("*.jsonl")) == []  # handed in
        destinations = {}
        for queue_id in queue_ids:
            envelope, raw = spool.load("outgoing", queue_id)
            assert envelope.direction == "outbound"
            assert envelope.mail_from == "dmarc@city.example.lg.jp"
            message = message_from_bytes(raw, policy=default)
            (attachment,) = list(message.iter_attachments())
            xml = gzip.decompress(attachment.get_content())
            assert schema_problems(xml) == []
            domain = ET.fromstring(xml).findtext("policy_published/domain")
            destinations[domain] = envelope.rcpt_tos
        assert destinations == {
            "partner.co.jp": ("dmarc-rua@partner.co.jp",),
            "bank.co.jp": ("reports@dmarc-vendor.ne.jp",),
            "town.ne.jp": ("dmarc@town.ne.jp",),
        }
        assert dmarc_rows.pending(store, before=DAY.replace(day=5), limit=100) == []
        assert await reporting.round() == []  # never twice


async def test_rows_handed_in_late_get_a_report_of_their_own(
    auth_dns: AuthDns, tmp_path: Path
) -> None:
    record_day(auth_dns, tmp_path / "dmarc")
    with migrated_store(tmp_path) as store:
        reporting, spool, _ = job(tmp_path, store, auth_dns, LATE)
        first = await reporting.round()
        record_day(auth_dns, tmp_path / "dmarc")  # another process's file, found late
        second = await reporting.round()
        assert len(second) == 3

        def report_ids(queue_ids: list[str]) -> set[str]:
            ids = set()
            for queue_id in queue_ids:
                _, raw = spool.load("outgoing", queue_id)
                subject = str(message_from_bytes(raw, policy=default)["Subject"])
                ids.add(subject.rpartition("Report-ID: ")[2])
            return ids

        assert not report_ids(first) & report_ids(second)


async def test_a_day_is_not_reported_before_the_reporting_hour(
    auth_dns: AuthDns, tmp_path: Path
) -> None:
    record_day(auth_dns, tmp_path / "dmarc")
    with migrated_store(tmp_path) as store:
        reporting, _, submitted = job(tmp_path, store, auth_dns, EARLY)
        assert await reporting.round() == []
        assert submitted.ids == []
        # Handed in all the same: the rows wait in the store.
        assert len(dmarc_rows.pending(store, before=DAY.replace(day=3), limit=100)) == 5


async def test_without_the_outbound_relay_rows_wait_in_the_store(
    auth_dns: AuthDns, tmp_path: Path
) -> None:
    record_day(auth_dns, tmp_path / "dmarc")
    with migrated_store(tmp_path) as store:
        reporting, _, submitted = job(tmp_path, store, auth_dns, LATE, outbound=False)
        assert await reporting.round() == []
        assert submitted.ids == []
        assert len(dmarc_rows.pending(store, before=DAY.replace(day=3), limit=100)) == 5


async def test_dns_down_keeps_the_report_for_a_later_round(
    auth_dns: AuthDns, tmp_path: Path
) -> None:
    record_day(auth_dns, tmp_path / "dmarc")
    with migrated_store(tmp_path) as store:
        reporting, _, _ = job(tmp_path, store, auth_dns, LATE)
        reporting.config = reporting.config.model_copy(
            update={
                "auth": reporting.config.auth.model_copy(
                    update={"nameservers": ("127.0.0.1:9",), "timeout_seconds": 1}
                )
            }
        )
        # The policy domains' own addresses need no DNS; outside ones (bank.co.jp's vendor,
        # leaky.co.jp's collector) cannot be verified now: their rows wait.
        sent = await reporting.round()
        assert len(sent) == 2
        waiting = dmarc_rows.pending(store, before=DAY.replace(day=3), limit=9)
        assert {row.domain for row in waiting} == {"bank.co.jp", "leaky.co.jp"}


async def test_each_tenant_reports_its_own_mail_from_its_own_address(
    auth_dns: AuthDns, tmp_path: Path
) -> None:
    settings = AuthSettings(enabled=True, nameservers=(auth_dns.nameserver,))
    checker = Authenticator(settings, authserv_id="mx.jp")
    recorder = Recorder(tmp_path / "dmarc", clock=lambda: NOON)
    raw = auth_dns.sign(mail("info@partner.co.jp"), "partner.co.jp")
    transaction = Transaction(PARTNER_IP, "", "info@partner.co.jp")
    evaluation = checker.evaluate(raw, transaction)
    recorder.record(evaluation, transaction, evaluation.outcome.action, ("kita", "minami"))
    tenant = {"relay_host": "127.0.0.1"}
    config = Config.model_validate(
        {
            "service": {"data_dir": str(tmp_path)},
            "auth": {"enabled": True, "nameservers": [auth_dns.nameserver]},
            "outbound": {
                "enabled": True,
                "client_networks": ["127.0.0.0/8"],
                "relay_host": "127.0.0.1",
            },
            "tenants": [
                {
                    "name": "kita",
                    "domains": ["city.kita.example.lg.jp"],
                    **tenant,
                    "auth": {
                        "reports": {
                            "enabled": True,
                            "from_address": "dmarc@city.kita.example.lg.jp",
                            "org_name": "北市",
                        }
                    },
                },
                {"name": "minami", "domains": ["town.minami.example.lg.jp"], **tenant},
            ],
        }
    )
    with migrated_store(tmp_path) as store:
        spool = Spool(tmp_path / "spool")
        reporting = DmarcReporting(
            config,
            store,
            spool,
            Submitted(),
            clock=lambda: LATE,  # type: ignore[arg-type]
        )
        [queue_id] = await reporting.round()
        envelope, raw_report = spool.load("outgoing", queue_id)
        assert (envelope.tenant, envelope.mail_from) == ("kita", "dmarc@city.kita.example.lg.jp")
        report = message_from_bytes(raw_report, policy=default)
        assert report["From"] == "dmarc@city.kita.example.lg.jp"
        # Minami's reports are off: its rows are counted and never sent.
        assert dmarc_rows.pending(store, before=DAY.replace(day=5), limit=9) == []
