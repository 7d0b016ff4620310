"""The cluster's DMARC aggregate rows: handed in by every node, reported once.

Each node counts its finished days' evaluations into rows and hands them in here, one file at
a time; the report job of the cluster takes the rows of past days that no report carried yet.

- Hand-in is idempotent per file: every row names its source (node and file), and a source
  already in the store is never counted again, so a crash between the commit and the file's
  removal counts nothing twice.
- Reporting claims its rows (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, the one writer on
  SQLite) in the transaction that marks them: two nodes never send the same rows, and rows
  whose report could not be spooled stay pending.

Threat model: policy domains and row values come from DNS and from the messages; they are
stored as JSON text and only ever written into the report by the XML library.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, insert, select, update

from gateway.store.database import Store
from gateway.store.schema import dmarc_rows


@dataclass(frozen=True, slots=True)
class StoredRow:
    """One handed-in row: its id, its day and what the report says of it."""

    id: int
    day: date
    domain: str
    policy: dict[str, Any]
    row: dict[str, Any]
    count: int
    tenant: str


def handed_in(store: Store, source: str) -> bool:
    """Whether the file ``source`` was handed in already."""
    query = select(func.count()).select_from(dmarc_rows).where(dmarc_rows.c.source == source)
    with store.reading() as db:
        return bool(db.scalar(query))


def hand_in(
    store: Store,
    *,
    source: str,
    node: str,
    day: date,
    rows: Iterable[tuple[str, str, dict[str, Any], dict[str, Any], int]],
    now: datetime,
) -> bool:
    """Store the rows (tenant, domain, policy, row, count) counted from ``source``; False when
    that source was handed in before (nothing is stored twice)."""
    values = [
        {
            "day": day.isoformat(),
            "tenant": tenant[:63],
            "domain": domain[:253],
            "policy": json.dumps(policy, sort_keys=True),
            "row": json.dumps(row, sort_keys=True),
            "count": count,
            "node": node,
            "source": source,
            "handed_in_at": now,
        }
        for tenant, domain, policy, row, count in rows
    ]
    known = select(func.count()).select_from(dmarc_rows).where(dmarc_rows.c.source == source)
    with store.writing() as db:
        if db.scalar(known):
            return False
        if values:
            db.execute(insert(dmarc_rows), values)
    return True


def pending(store: Store, *, before: date, limit: int) -> list[StoredRow]:
    """Rows of days before ``before`` that no report carried yet, oldest first."""
    query = (
        select(dmarc_rows)
        .where(dmarc_rows.c.reported_at.is_(None), dmarc_rows.c.day < before.isoformat())
        .order_by(dmarc_rows.c.day, dmarc_rows.c.tenant, dmarc_rows.c.domain, dmarc_rows.c.id)
        .limit(limit)
    )
    with store.reading() as db:
        return [_stored(row) for row in db.execute(query).mappings()]


def of_day(store: Store, day: date, *, limit: int) -> list[StoredRow]:
    """Every row of ``day``, reported or not (what the command line shows)."""
    query = (
        select(dmarc_rows)
        .where(dmarc_rows.c.day == day.isoformat())
        .order_by(dmarc_rows.c.domain, dmarc_rows.c.id)
        .limit(limit)
    )
    with store.reading() as db:
        return [_stored(row) for row in db.execute(query).mappings()]


def report(store: Store, ids: Sequence[int], now: datetime, send: Callable[[], None]) -> bool:
    """Claim the rows ``ids``, call ``send`` (which spools their report) and mark them
    reported, in one transaction. False, without calling ``send``, when any of them was
    reported or is being reported by another node; when ``send`` raises nothing is marked."""
    claim = (
        select(dmarc_rows.c.id)
        .where(dmarc_rows.c.id.in_(list(ids)), dmarc_rows.c.reported_at.is_(None))
        .with_for_update(skip_locked=True)
    )
    with store.writing() as db:
        if set(db.scalars(claim)) != set(ids):
            return False
        send()
        db.execute(update(dmarc_rows).where(dmarc_rows.c.id.in_(list(ids))).values(reported_at=now))
    return True


def _stored(row: Any) -> StoredRow:
    return StoredRow(
        id=int(row["id"]),
        day=date.fromisoformat(row["day"]),
        domain=row["domain"],
        policy=json.loads(row["policy"]),
        row=json.loads(row["row"]),
        count=int(row["count"]),
        tenant=row["tenant"],
    )
