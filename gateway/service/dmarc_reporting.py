"""serve's DMARC aggregate report job (RFC 7489 section 7): every node hands in its days, one
report per policy domain leaves through the outbound relay.

Every ``HAND_IN_SECONDS`` each node counts its finished days' record files
(``DATA_DIR/dmarc``, written by :class:`gateway.senderauth.reports.Recorder`) into rows and
hands them in to the store (:mod:`gateway.store.dmarc_rows`), then removes the files. From
``REPORT_AFTER`` past midnight (UTC) the node that runs the singleton job ``dmarc-reports``
(:mod:`gateway.store.singleton`) reports the rows of past days: one report per
policy domain, checked against the schema, sent only to destinations that pass the RFC 7489 7.1
check, spooled straight into ``outgoing`` with direction ``outbound`` and delivered to
``[outbound] relay_host`` with the usual retries. Whichever node claims the rows first sends
them; the others skip them. Rows handed in late (a node that was down) are reported in a
report of their own, never under an id already sent.

Reports are sent only with ``auth.reports.enabled`` and ``outbound.enabled``; without the
outbound relay the rows wait in the store (``mukaika dmarc-reports --out DIR`` writes them as
files). A report whose every destination could not be verified for now (DNS) waits for the
next round; one with no destination at all is marked and never sent.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from itertools import groupby
from pathlib import Path
from typing import Final

from gateway.configuration.config import Config, tenants_of
from gateway.configuration.settings import AuthReportsSettings
from gateway.queue.scheduler import Scheduler
from gateway.queue.spool import Envelope, Spool, new_queue_id
from gateway.senderauth.reports import (
    Report,
    Row,
    aggregate,
    build_reports,
    read_file,
    report_mail,
    schema_problems,
)
from gateway.senderauth.resolver import Resolver
from gateway.store import Store, StoreError, dmarc_rows
from gateway.store.singleton import SingletonJob

log = logging.getLogger("mukaika.senderauth")

HAND_IN_SECONDS: Final = 600.0
HANDING: Final = ".handing"  # the suffix of a record file being handed in
# Past midnight (UTC), time for every node to hand in the day before it is reported.
REPORT_AFTER: Final = timedelta(hours=1)
# Rows reported in one round; the rest wait for the next.
MAX_ROWS_PER_ROUND: Final = 50_000


def records_directory(config: Config) -> Path:
    """Where this node's processes record their DMARC evaluations."""
    return Path(config.service.data_dir) / "dmarc"


def _day_of(path: Path) -> date | None:
    try:
        return date.fromisoformat(path.name.split(".", 1)[0])
    except ValueError:
        return None


def hand_in_files(store: Store, directory: Path, node: str, today: date) -> int:
    """Hand in every record file of a day before ``today`` and remove it; the number of files
    handed in. Each file is first renamed to a name of its own (``.handing``): a process that
    records again writes a new file, and the renamed one is counted once, even when a crash
    comes between the commit and its removal."""
    for path in sorted(directory.glob("*.jsonl")):
        day = _day_of(path)
        if day is not None and day < today:
            path.rename(path.with_name(f"{path.name}.{uuid.uuid4().hex}{HANDING}"))
    count = 0
    for path in sorted(directory.glob(f"*{HANDING}")):
        day = _day_of(path)
        if day is None:
            continue
        rows = aggregate(read_file(path))
        dmarc_rows.hand_in(
            store,
            source=f"{node}:{path.name}",
            node=node,
            day=day,
            rows=((r.tenant, r.domain, r.policy, r.row, r.count) for r in rows),
            now=datetime.now(UTC),
        )
        path.unlink()
        count += 1
    return count


def day_rows(store: Store, directory: Path, node: str, day: date, tenant: str) -> list[Row]:
    """Every row of ``day`` for ``tenant``: handed in by any node, or still in this node's
    files."""
    rows = [
        Row(r.domain, r.policy, r.row, r.count, r.tenant)
        for r in dmarc_rows.of_day(store, day, limit=MAX_ROWS_PER_ROUND)
    ]
    for path in sorted(directory.glob(f"{day.isoformat()}.*")):
        if not dmarc_rows.handed_in(store, f"{node}:{path.name}"):
            rows += aggregate(read_file(path))
    return [row for row in rows if row.tenant == tenant]


class DmarcReporting:
    """Hands in this node's days and reports the cluster's pending rows. Runs in serve."""

    def __init__(
        self,
        config: Config,
        store: Store,
        spool: Spool,
        scheduler: Scheduler,
        clock: Callable[[], float] = time.time,
        singleton: SingletonJob | None = None,
    ) -> None:
        self.config = config
        self.singleton = singleton  # the reporting is one node's for the cluster
        self.store = store
        self.spool = spool
        self.scheduler = scheduler
        self.clock = clock
        self.node = config.node.resolved_name()
        self.directory = records_directory(config)
        self.tenants = tenants_of(config)

    async def run_forever(self) -> None:
        while True:
            try:
                await self.round()
            except (StoreError, OSError) as exc:
                log.error("DMARC reports: %s (tried again in %.0f s)", exc, HAND_IN_SECONDS)
            await asyncio.sleep(HAND_IN_SECONDS)

    async def round(self) -> list[str]:
        """Hand in, then report what is due; the queue ids of the reports spooled."""
        now = datetime.fromtimestamp(self.clock(), UTC)
        today = now.date()
        await asyncio.to_thread(hand_in_files, self.store, self.directory, self.node, today)
        if not self.config.outbound.enabled:
            return []
        if self.singleton is not None and not await self.singleton.held():
            return []  # another node reports the cluster's rows
        midnight = datetime(today.year, today.month, today.day, tzinfo=UTC)
        before = today if now >= midnight + REPORT_AFTER else today - timedelta(days=1)
        return await asyncio.to_thread(self._report, before, now)

    def _report(self, before: date, now: datetime) -> list[str]:
        lookup = Resolver(self.config.auth.nameservers, self.config.auth.timeout_seconds, 0)
        pending = dmarc_rows.pending(self.store, before=before, limit=MAX_ROWS_PER_ROUND)
        spooled: list[str] = []
        groups = groupby(pending, key=lambda r: (r.day, r.tenant, r.domain))
        for (day, tenant, domain), group in groups:
            stored = list(group)
            known = not tenant or tenant in self.tenants.by_name
            settings = self.tenants.auth(tenant).reports if known else None
            if settings is None or not settings.enabled:
                # A tenant whose reports are off (or that is gone): counted, never sent.
                dmarc_rows.report(self.store, [r.id for r in stored], now, lambda: None)
                continue
            [report] = build_reports(
                [Row(r.domain, r.policy, r.row, r.count, r.tenant) for r in stored],
                day,
                org_name=settings.org_name,
                email=settings.from_address,
                lookup=lookup.budget(),
                serial=str(min(r.id for r in stored)),
            )
            problems = schema_problems(report.xml)
            if problems:  # a fault of ours: the rows stay pending and the log says why
                log.error("DMARC report for %s invalid: %s", domain, "; ".join(problems))
                continue
            for why in report.refused:
                log.warning("DMARC report for %s (%s): left out %s", domain, day, why)
            if not report.destinations and report.retry:
                continue
            queue_ids: list[str] = []
            sent = dmarc_rows.report(
                self.store,
                [r.id for r in stored],
                now,
                functools.partial(self._spool, report, day, tenant, settings, queue_ids),
            )
            if sent and queue_ids[0]:
                self.scheduler.submit(queue_ids[0], "outgoing")
                spooled.append(queue_ids[0])
                log.info(
                    "DMARC report %s for %s (%s) to %s as %s",
                    report.report_id,
                    domain,
                    day,
                    ", ".join(report.destinations),
                    queue_ids[0],
                )
        return spooled

    def _spool(
        self,
        report: Report,
        day: date,
        tenant: str,
        settings: AuthReportsSettings,
        queue_ids: list[str],
    ) -> None:
        """Spool the mail carrying ``report`` (from ``tenant``, by its outbound relay) and add
        its queue id to ``queue_ids`` ("" when it has no destination: nothing is sent)."""
        if not report.destinations:
            queue_ids.append("")
            return
        _name, _data, mail = report_mail(
            report, day, from_address=settings.from_address, org_name=settings.org_name
        )
        queue_id = new_queue_id()
        envelope = Envelope(
            queue_id=queue_id,
            mail_from=settings.from_address,
            rcpt_tos=report.destinations,
            client="127.0.0.1",
            helo="localhost",
            received_at=self.clock(),
            size=len(mail),
            verdict="deliver",
            report={"direction": "outbound", "dmarc_report": report.domain},
            direction="outbound",
            tenant=tenant,
        )
        self.spool.put("outgoing", envelope, mail)
        queue_ids.append(queue_id)
