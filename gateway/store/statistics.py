"""The figures of the log review (policy 6(5)⑥ウ) over one period, counted from the store.

Why the store and not the audit log: the store is the one record every node writes (the
quarantine index has a row per message with its verdict, reasons and envelope; the decisions
are rows too), it is indexed by the time a message arrived, and it answers a period with one
range query on any node; the audit log is a file per node, rotated and compressed (or sent to
syslog only), which a page would have to read whole. What the store does not hold is not
counted here: connections refused before a message was accepted (relay, size, sender
authentication) are the metric ``mukaika_rejected_total``.

Bounded work: a period is read in one query of at most ``max_messages`` rows (the first ones of
the period; ``partial`` then says so), plus one grouped count each for the held backlog and the
decisions. Every text counted is the index's cleaned value (untrusted, shown as text).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import and_, func, select, true

from gateway.store.database import Store
from gateway.store.schema import messages, requests
from sanitizers.vocabulary import RequestKind, RequestState

# Decisions that were approved at some point (an exception's expiry then counts).
APPROVED_ONCE = (RequestState.APPROVED, RequestState.DONE, RequestState.FAILED)


@dataclass(frozen=True, slots=True)
class Figures:
    """What one period shows; counts of messages unless named otherwise."""

    since: datetime
    until: datetime
    messages: int = 0
    partial: bool = False  # more messages than were read: the counts are of the first ones
    verdicts: dict[str, int] = field(default_factory=dict)
    reasons: list[tuple[str, int]] = field(default_factory=list)  # most first
    top_senders: list[tuple[str, int]] = field(default_factory=list)
    top_recipients: list[tuple[str, int]] = field(default_factory=list)
    refused: int = 0  # verdict reject: refused after the content was read (5xx at DATA)
    held_backlog: dict[str, int] = field(default_factory=dict)  # now, whenever received
    oldest_waiting: datetime | None = None
    decisions: dict[str, int] = field(default_factory=dict)  # requests decided in the period
    expired_approvals: int = 0  # approved exceptions whose expiry fell in the period


def _top(counter: Counter[str], count: int) -> list[tuple[str, int]]:
    return sorted(counter.items(), key=lambda item: (-item[1], item[0]))[:count]


def figures(
    store: Store,
    since: datetime,
    until: datetime,
    *,
    waiting_states: tuple[str, ...],
    top_count: int,
    max_messages: int,
    now: datetime,
    tenant: str | None = None,
) -> Figures:
    """The figures of the messages received in ``[since, until)``; the backlog of
    ``waiting_states`` as it is ``now``; with ``tenant``, of that tenant's mail only."""
    in_period = and_(messages.c.received_at >= since, messages.c.received_at < until)
    mail_of = true() if tenant is None else messages.c.tenant == tenant
    decisions_of = true() if tenant is None else requests.c.tenant == tenant
    scan = (
        select(messages.c.verdict, messages.c.reasons, messages.c.mail_from, messages.c.rcpt_to)
        .where(in_period, mail_of)
        .order_by(messages.c.received_at, messages.c.id)
        .limit(max_messages + 1)
    )
    verdicts: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    senders: Counter[str] = Counter()
    recipients: Counter[str] = Counter()
    with store.reading() as db:
        rows = db.execute(scan).all()
        partial = len(rows) > max_messages
        for verdict, reason_list, mail_from, rcpt_to in rows[:max_messages]:
            verdicts[verdict or "none"] += 1
            reasons.update(set(json.loads(reason_list)))
            senders[(mail_from or "<>").lower()] += 1
            recipients.update({address.lower() for address in json.loads(rcpt_to)})
        backlog = {
            str(state): int(count)
            for state, count in db.execute(
                select(messages.c.state, func.count())
                .where(messages.c.state.in_(waiting_states), mail_of)
                .group_by(messages.c.state)
            ).all()
        }
        oldest = db.scalar(
            select(messages.c.received_at)
            .where(messages.c.state.in_(waiting_states), mail_of)
            .order_by(messages.c.received_at)
            .limit(1)
        )
        decided = {
            str(state): int(count)
            for state, count in db.execute(
                select(requests.c.state, func.count())
                .where(requests.c.decided_at >= since, requests.c.decided_at < until, decisions_of)
                .group_by(requests.c.state)
            ).all()
        }
        expired = db.scalar(
            select(func.count())
            .select_from(requests)
            .where(
                requests.c.kind == str(RequestKind.EXCEPTION),
                requests.c.state.in_([str(s) for s in APPROVED_ONCE]),
                requests.c.expires_at >= since,
                requests.c.expires_at < min(until, now),
                decisions_of,
            )
        )
    return Figures(
        since=since,
        until=until,
        messages=min(len(rows), max_messages),
        partial=partial,
        verdicts=dict(verdicts),
        reasons=_top(reasons, len(reasons)),
        top_senders=_top(senders, top_count),
        top_recipients=_top(recipients, top_count),
        refused=verdicts.get("reject", 0),
        held_backlog=backlog,
        oldest_waiting=oldest,
        decisions=decided,
        expired_approvals=int(expired or 0),
    )
