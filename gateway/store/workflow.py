"""The recorded decisions on held mail, and the state changes they make, each one atomic.

Every change is one write transaction that checks the state it starts from: two operators who
release the same message at once, an approval racing a denial, or serve carrying out a decision
twice end with exactly one winner; the others get :class:`StateConflict` naming the state they
found. The rules of who may decide what are the service's (:mod:`gateway.service.held_mail`);
this module keeps the record and the states consistent.

A decision row is never deleted while its message exists: it is the record of who asked, who
decided, why, until when, and what serve did (``carried_out_at``, ``carried_out_by``,
``queue_ids``, ``outcome``).

Several nodes share the work: :func:`claim_due` hands each approved decision to one node for a
lease (``claimed_by``, ``claimed_until``). On PostgreSQL the rows are taken ``FOR UPDATE SKIP
LOCKED``: a node never waits for, nor takes, a decision another node is claiming at that moment;
on SQLite the claim is one ``BEGIN IMMEDIATE`` transaction, alone by construction. A node takes
only decisions on messages it quarantined (their originals are on its disk) or on entries from
before nodes existed; a node that dies mid-release leaves its lease to run out, and then takes
the decision up again when it returns (or the machine that takes over its disk and name does).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, insert, or_, select, update
from sqlalchemy.engine import RowMapping

from gateway.store.database import Store
from gateway.store.schema import approvals, messages, requests
from sanitizers.vocabulary import MessageState, RequestKind, RequestState

# StateConflict.found when an approver approves a second time.
ALREADY = "approved_by_you"
# Decisions that are still open: one at a time per message.
OPEN_STATES = (RequestState.PENDING, RequestState.APPROVED)


class UnknownMessageError(LookupError):
    """No quarantine entry with that id."""


class StateConflict(Exception):
    """The message (or decision) is not in a state that allows the change."""

    def __init__(self, message: str, found: str) -> None:
        super().__init__(message)
        self.found = found


@dataclass(frozen=True, slots=True)
class Decision:
    """One recorded decision on one quarantined message."""

    id: int
    message: str
    kind: RequestKind
    state: RequestState
    reason: str
    requested_by: str
    requested_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    decision_reason: str | None
    expires_at: datetime | None
    parts: tuple[str, ...]
    raised_limits: Mapping[str, float]
    previous_state: str
    carried_out_at: datetime | None
    queue_ids: tuple[str, ...]
    outcome: str | None
    carried_out_by: str | None = None
    tenant: str = ""  # its message's tenant ("" without tenants)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (times as aware datetimes: the caller formats them)."""
        return {
            "request": self.id,
            "quarantine_id": self.message,
            "kind": str(self.kind),
            "state": str(self.state),
            "reason": self.reason,
            "requested_by": self.requested_by,
            "requested_at": self.requested_at,
            "decided_by": self.decided_by,
            "decided_at": self.decided_at,
            "decision_reason": self.decision_reason,
            "expires": self.expires_at,
            "parts": list(self.parts),
            "raised_limits": dict(self.raised_limits),
            "carried_out_at": self.carried_out_at,
            "carried_out_by": self.carried_out_by,
            "queue_ids": list(self.queue_ids),
            "outcome": self.outcome,
            "tenant": self.tenant,
        }


def open_decision(
    store: Store,
    message: str,
    *,
    kind: RequestKind,
    actor: str,
    reason: str,
    now: datetime,
    allowed_from: Iterable[str],
    approved: bool,
    parts: Iterable[str] = (),
    raised_limits: Mapping[str, float] | None = None,
    expires_at: datetime | None = None,
) -> Decision:
    """Record a new decision on ``message`` if its state is one of ``allowed_from`` and no other
    decision is open: approved at once (a release by an operator) or pending (waiting for an
    approver). The entry's state becomes ``approved`` or ``release_requested``."""
    allowed = {str(state) for state in allowed_from}
    state = RequestState.APPROVED if approved else RequestState.PENDING
    entry_state = MessageState.APPROVED if approved else MessageState.RELEASE_REQUESTED
    with store.writing() as db:
        current = _entry_state(db, message)
        if current not in allowed:
            raise StateConflict(f"message {message} is {current}", current)
        if _open_of(db, message) is not None:
            raise StateConflict(f"message {message} has an open decision", current)
        new_id = db.execute(
            insert(requests).values(
                message=message,
                kind=str(kind),
                state=str(state),
                reason=reason,
                requested_by=actor,
                requested_at=now,
                decided_by=actor if approved else None,
                decided_at=now if approved else None,
                expires_at=expires_at,
                parts=json.dumps(sorted(set(parts))),
                raised_limits=json.dumps(dict(raised_limits or {}), sort_keys=True),
                previous_state=current,
                tenant=_entry_tenant(db, message),
            )
        ).inserted_primary_key
        assert new_id is not None
        _set_entry(db, message, current, entry_state, now)
        return _decision_by_id(db, int(new_id[0]))


def decide(
    store: Store,
    decision: Decision,
    *,
    approve: bool,
    actor: str,
    reason: str | None,
    expires_at: datetime | None,
    now: datetime,
) -> Decision:
    """Approve or deny a pending decision (the entry becomes ``approved`` or ``denied``)."""
    with store.writing() as db:
        return _decide_in(
            db,
            decision,
            approve=approve,
            actor=actor,
            reason=reason,
            expires_at=expires_at,
            now=now,
        )


@dataclass(frozen=True, slots=True)
class Approval:
    """One approver's approval of a decision that needs several (k of n)."""

    approver: str
    approved_at: datetime
    comment: str | None


def add_approval(
    store: Store,
    decision: Decision,
    *,
    approver: str,
    comment: str | None,
    required: int,
    expires_at: datetime | None,
    now: datetime,
) -> tuple[Decision, int]:
    """Record ``approver``'s approval of a pending decision; when ``required`` approvals are in,
    the decision is approved (as :func:`decide`, by the last approver). The decision and the
    number of approvals so far. One transaction, the request's row locked first (PostgreSQL:
    ``FOR UPDATE``; SQLite: the write lock), so two approvals at once are counted both.
    :class:`StateConflict` when the decision is no longer pending or ``approver`` has approved
    it already (``found`` = ``approved_by_you``)."""
    with store.writing() as db:
        found = db.scalar(
            select(requests.c.state).where(requests.c.id == decision.id).with_for_update()
        )
        if found != str(RequestState.PENDING):
            raise StateConflict(f"decision {decision.id} is {found}", str(found))
        mine = select(approvals.c.approver).where(
            approvals.c.request == decision.id, approvals.c.approver == approver
        )
        if db.scalar(mine) is not None:
            raise StateConflict(f"{approver} approved decision {decision.id} already", ALREADY)
        db.execute(
            insert(approvals).values(
                request=decision.id, approver=approver, approved_at=now, comment=comment
            )
        )
        count = int(
            db.scalar(
                select(func.count())
                .select_from(approvals)
                .where(approvals.c.request == decision.id)
            )
            or 0
        )
        if count < required:
            return _decision_by_id(db, decision.id), count
        approved = _decide_in(
            db,
            decision,
            approve=True,
            actor=approver,
            reason=comment,
            expires_at=expires_at,
            now=now,
        )
        return approved, count


def approvals_of(store: Store, decision_id: int) -> list[Approval]:
    """The approvals of a decision, oldest first."""
    query = (
        select(approvals)
        .where(approvals.c.request == decision_id)
        .order_by(approvals.c.approved_at, approvals.c.approver)
    )
    with store.reading() as db:
        return [
            Approval(row["approver"], row["approved_at"], row["comment"])
            for row in db.execute(query).mappings()
        ]


def _decide_in(
    db: Connection,
    decision: Decision,
    *,
    approve: bool,
    actor: str,
    reason: str | None,
    expires_at: datetime | None,
    now: datetime,
) -> Decision:
    state = RequestState.APPROVED if approve else RequestState.DENIED
    entry_state = MessageState.APPROVED if approve else MessageState.DENIED
    changed = db.execute(
        update(requests)
        .where(requests.c.id == decision.id, requests.c.state == str(RequestState.PENDING))
        .values(
            state=str(state),
            decided_by=actor,
            decided_at=now,
            decision_reason=reason,
            expires_at=expires_at if approve else decision.expires_at,
        )
    ).rowcount
    if changed != 1:
        found = _decision_by_id(db, decision.id).state
        raise StateConflict(f"decision {decision.id} is {found}", str(found))
    _set_entry(db, decision.message, MessageState.RELEASE_REQUESTED, entry_state, now)
    return _decision_by_id(db, decision.id)


def finish(
    store: Store,
    decision: Decision,
    *,
    done: bool,
    outcome: str,
    queue_ids: Iterable[str],
    now: datetime,
    node: str = "",
) -> Decision:
    """Record what serve on ``node`` did with an approved decision: ``done`` (the entry is
    ``released``) or failed (the entry goes back to the state it had before the decision)."""
    with store.writing() as db:
        changed = db.execute(
            update(requests)
            .where(requests.c.id == decision.id, requests.c.state == str(RequestState.APPROVED))
            .values(
                state=str(RequestState.DONE if done else RequestState.FAILED),
                carried_out_at=now,
                carried_out_by=node,
                queue_ids=json.dumps(list(queue_ids)),
                outcome=outcome,
                claimed_until=None,
            )
        ).rowcount
        if changed != 1:
            found = _decision_by_id(db, decision.id).state
            raise StateConflict(f"decision {decision.id} is {found}", str(found))
        target = MessageState.RELEASED if done else decision.previous_state
        _set_entry(db, decision.message, MessageState.APPROVED, target, now)
        return _decision_by_id(db, decision.id)


def open_decision_of(store: Store, message: str) -> Decision | None:
    """The decision of ``message`` that is pending or approved, if any."""
    with store.reading() as db:
        return _open_of(db, message)


def due(
    store: Store, limit: int, kinds: Iterable[RequestKind] = tuple(RequestKind)
) -> list[Decision]:
    """Approved decisions of ``kinds`` serve has not carried out yet, oldest first."""
    return of_kinds(store, RequestState.APPROVED, kinds, limit=limit)


def of_kinds(
    store: Store,
    state: RequestState,
    kinds: Iterable[RequestKind],
    *,
    limit: int,
    unclosed: bool = False,
) -> list[Decision]:
    """Decisions in ``state`` of ``kinds``, oldest first; ``unclosed``: only those serve has
    not recorded an outcome for yet (a denial whose sender was not told)."""
    query = select(requests).where(
        requests.c.state == str(state), requests.c.kind.in_([str(k) for k in kinds])
    )
    if unclosed:
        query = query.where(requests.c.carried_out_at.is_(None))
    with store.reading() as db:
        rows = db.execute(query.order_by(requests.c.id).limit(limit)).mappings()
        return [_decision(row) for row in rows]


def close_denied(store: Store, decision: Decision, *, outcome: str, now: datetime) -> bool:
    """Record what serve did after a denial (the sender told); False when done already."""
    with store.writing() as db:
        changed = db.execute(
            update(requests)
            .where(
                requests.c.id == decision.id,
                requests.c.state == str(RequestState.DENIED),
                requests.c.carried_out_at.is_(None),
            )
            .values(carried_out_at=now, outcome=outcome)
        ).rowcount
        return changed == 1


def release_queue_id(decision: Decision, index: int) -> str:
    """The queue id of the ``index``-th copy spooled for a decision: the same on every
    attempt, so a crash between spooling and recording never spools twice."""
    stamp = (decision.decided_at or decision.requested_at).strftime("%Y%m%d%H%M%S")
    return f"{stamp}-{decision.id % 16**8:08x}{index % 256:02x}"


def claim_due(
    store: Store,
    node: str,
    limit: int,
    *,
    now: datetime,
    lease: timedelta,
    kinds: Iterable[RequestKind] = tuple(RequestKind),
) -> list[Decision]:
    """Up to ``limit`` approved decisions of ``kinds`` for ``node`` to carry out, oldest
    first, each claimed for it until ``now + lease``: those no other node holds a live lease
    on, on messages whose original ``node`` can read (in the database, or on its own disk:
    those it quarantined and those from before nodes)."""
    free = or_(
        requests.c.claimed_until.is_(None),
        requests.c.claimed_until < now,
        requests.c.claimed_by == node,
    )
    query = (
        select(requests.c.id)
        .join(messages, messages.c.id == requests.c.message)
        .where(
            requests.c.state == str(RequestState.APPROVED),
            requests.c.kind.in_([str(kind) for kind in kinds]),
            free,
            or_(messages.c.kept_in == "database", messages.c.node.in_([node, ""])),
        )
        .order_by(requests.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True, of=requests)
    )
    with store.writing() as db:
        ids = list(db.scalars(query))
        if ids:
            db.execute(
                update(requests)
                .where(requests.c.id.in_(ids))
                .values(claimed_by=node, claimed_until=now + lease)
            )
        return [_decision_by_id(db, decision_id) for decision_id in ids]


def history(store: Store, message: str) -> list[Decision]:
    """Every decision on ``message``, oldest first."""
    query = select(requests).where(requests.c.message == message).order_by(requests.c.id)
    with store.reading() as db:
        return [_decision(row) for row in db.execute(query).mappings()]


def _entry_state(db: Connection, message: str) -> str:
    state = db.scalar(select(messages.c.state).where(messages.c.id == message))
    if state is None:
        raise UnknownMessageError(message)
    return str(state)


def _entry_tenant(db: Connection, message: str) -> str:
    return str(db.scalar(select(messages.c.tenant).where(messages.c.id == message)) or "")


def _set_entry(db: Connection, message: str, expected: str, state: str, now: datetime) -> None:
    changed = db.execute(
        update(messages)
        .where(messages.c.id == message, messages.c.state == str(expected))
        .values(state=str(state), updated_at=now)
    ).rowcount
    if changed != 1:
        found = _entry_state(db, message)
        raise StateConflict(f"message {message} is {found}", found)


def _open_of(db: Connection, message: str) -> Decision | None:
    row = (
        db.execute(
            select(requests)
            .where(
                requests.c.message == message,
                requests.c.state.in_([str(state) for state in OPEN_STATES]),
            )
            .order_by(requests.c.id.desc())
        )
        .mappings()
        .first()
    )
    return None if row is None else _decision(row)


def _decision_by_id(db: Connection, decision_id: int) -> Decision:
    row = db.execute(select(requests).where(requests.c.id == decision_id)).mappings().one()
    return _decision(row)


def _decision(row: RowMapping) -> Decision:
    return Decision(
        id=int(row["id"]),
        message=row["message"],
        kind=RequestKind(row["kind"]),
        state=RequestState(row["state"]),
        reason=row["reason"],
        requested_by=row["requested_by"],
        requested_at=row["requested_at"],
        decided_by=row["decided_by"],
        decided_at=row["decided_at"],
        decision_reason=row["decision_reason"],
        expires_at=row["expires_at"],
        parts=tuple(json.loads(row["parts"])),
        raised_limits=dict(json.loads(row["raised_limits"])),
        previous_state=row["previous_state"],
        carried_out_at=row["carried_out_at"],
        queue_ids=tuple(json.loads(row["queue_ids"])),
        outcome=row["outcome"],
        carried_out_by=row["carried_out_by"],
        tenant=row["tenant"],
    )
