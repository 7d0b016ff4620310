"""The quarantine's index: one row per stored original, in the store's ``messages`` table.

Durability and concurrency are the store's (:mod:`gateway.store.database`): every write is one
transaction, safe from several threads and processes. The index holds addresses and subjects:
the store is private, like the originals.

The row's ``state`` is the delivery state the worker records (queued, delivered, deferred,
held, dead) until the held-mail workflow takes the entry over (awaiting_password,
release_requested, approved, released, denied): from then on a delivery record never
overwrites it (:data:`~.entries.WORKFLOW_STATES`), so a late notice delivery cannot undo a
decision.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    and_,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.engine import RowMapping

from gateway.evidence.quarantine.entries import (
    HELD_STATES,
    MAX_LIST_LIMIT,
    WORKFLOW_STATES,
    QuarantineEntry,
    QuarantineNotFoundError,
    QuarantineStoreError,
    is_valid_id,
)
from gateway.store import Store, StoreError
from gateway.store.schema import messages, requests
from sanitizers.vocabulary import MessageState


@dataclass(frozen=True, slots=True)
class MailFilter:
    """What the console's lists ask for; every field is optional (None: any).

    ``recipients`` limits the rows to mail for any of those addresses (a recipient's own view:
    an empty tuple then matches nothing); ``text`` is searched in the subject, the From header,
    the envelope sender and the Message-ID. Values are bound parameters, with ``%`` and ``_``
    escaped, never SQL."""

    states: tuple[str, ...] | None = None
    since: datetime | None = None
    until: datetime | None = None
    sender: str | None = None
    recipient: str | None = None
    reason: str | None = None
    text: str | None = None
    recipients: tuple[str, ...] | None = None
    # Leave out messages with a decision of this kind (held outbound mail has pages of its own).
    without_kind: str | None = None
    tenant: str | None = None  # one tenant's mail only (a tenant's console users)


def _like(value: str) -> str:
    """``value`` as a LIKE pattern matched anywhere, wildcards escaped (escape char ``\\``)."""
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _json_item(value: str) -> str:
    """How ``value`` appears inside a stored JSON list (quoted, escaped as json.dumps does)."""
    return json.dumps(value, ensure_ascii=False)


class QuarantineIndex:
    """The rows of one quarantine in the store."""

    def __init__(self, store: Store, node: str = "") -> None:
        self.store = store
        self.node = node  # written into every row this index inserts

    # -- writing ---------------------------------------------------------------------------

    def insert(
        self,
        qid: str,
        queue_id: str,
        received_at: datetime,
        *,
        client: str,
        helo: str,
        mail_from: str,
        rcpt_to: Sequence[str],
        size: int,
        stored_size: int,
        sha256: str,
        kept_in: str,
        tenant: str = "",
    ) -> None:
        """Add the row of a newly stored original (state ``queued``) kept in ``kept_in``;
        values already clean."""
        now = datetime.now(UTC)
        with self.store.writing() as db:
            db.execute(
                insert(messages).values(
                    id=qid,
                    queue_id=queue_id,
                    received_at=received_at,
                    stored_at=now,
                    updated_at=now,
                    client=client,
                    helo=helo,
                    mail_from=mail_from,
                    rcpt_to=json.dumps(list(rcpt_to), ensure_ascii=False),
                    size=size,
                    stored_size=stored_size,
                    sha256=sha256,
                    state=MessageState.QUEUED.value,
                    node=self.node,
                    kept_in=kept_in,
                    tenant=tenant,
                )
            )

    def update(self, qid: str, **values: Any) -> None:
        """Set columns of one row (names are this package's own, never input)."""
        self._update(qid, None, values)

    def record_delivery(self, qid: str, state: MessageState) -> None:
        """Set the delivery state, unless the workflow owns the entry's state."""
        self._update(
            qid, messages.c.state.not_in([str(s) for s in WORKFLOW_STATES]), {"state": str(state)}
        )

    def _update(
        self, qid: str, condition: ColumnElement[bool] | None, values: dict[str, Any]
    ) -> None:
        if not is_valid_id(qid):
            raise QuarantineNotFoundError(qid)
        where = messages.c.id == qid
        try:
            with self.store.writing() as db:
                if db.execute(select(messages.c.id).where(where)).first() is None:
                    raise QuarantineNotFoundError(qid)
                if condition is not None:
                    where = and_(where, condition)
                db.execute(
                    update(messages).where(where).values(**values, updated_at=datetime.now(UTC))
                )
        except StoreError as exc:
            raise QuarantineStoreError(
                exc.errno, f"cannot update quarantine entry {qid}: {exc}"
            ) from exc

    def count_attempt(self, qid: str, limit: int) -> int | None:
        """Count one more unlock attempt, unless ``limit`` are counted already; the new count,
        or ``None`` when none is left. One statement: two processes cannot both take the
        last attempt."""
        if not is_valid_id(qid):
            raise QuarantineNotFoundError(qid)
        row = messages.c.id == qid
        with self.store.writing() as db:
            counted = db.execute(
                update(messages)
                .where(row, messages.c.unlock_attempts < limit)
                .values(
                    unlock_attempts=messages.c.unlock_attempts + 1, updated_at=datetime.now(UTC)
                )
            )
            attempts = db.scalar(select(messages.c.unlock_attempts).where(row))
        if attempts is None:
            raise QuarantineNotFoundError(qid)
        return int(attempts) if counted.rowcount else None

    def transition(self, qid: str, expected: MessageState, state: MessageState) -> bool:
        """Move the entry from ``expected`` to ``state`` (a workflow step); whether it was in
        ``expected``."""
        if not is_valid_id(qid):
            raise QuarantineNotFoundError(qid)
        with self.store.writing() as db:
            moved = db.execute(
                update(messages)
                .where(messages.c.id == qid, messages.c.state == str(expected))
                .values(state=str(state), updated_at=datetime.now(UTC))
            )
        return bool(moved.rowcount)

    def delete(self, ids: Sequence[str]) -> None:
        with self.store.writing() as db:
            db.execute(delete(messages).where(messages.c.id.in_(list(ids))))

    # -- reading ---------------------------------------------------------------------------

    def ids_of(self, queue_id: str, sha256: str) -> builtins.list[str]:
        """Rows that already hold this queue id with this content."""
        query = select(messages.c.id).where(
            messages.c.queue_id == queue_id, messages.c.sha256 == sha256
        )
        with self.store.reading() as db:
            return [str(qid) for qid in db.scalars(query)]

    def knows(self, qid: str) -> bool:
        with self.store.reading() as db:
            return db.execute(select(messages.c.id).where(messages.c.id == qid)).first() is not None

    def get(self, qid: str) -> QuarantineEntry:
        """The row of ``qid``; :class:`QuarantineNotFoundError` when there is none."""
        if not is_valid_id(qid):
            raise QuarantineNotFoundError(qid)
        with self.store.reading() as db:
            row = db.execute(select(messages).where(messages.c.id == qid)).mappings().first()
        if row is None:
            raise QuarantineNotFoundError(qid)
        return entry_of(row)

    def list(
        self,
        *,
        state: str | None = None,
        verdict: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        queue_id: str | None = None,
        limit: int = 100,
    ) -> builtins.list[QuarantineEntry]:
        """Entries, newest first, filtered by state, verdict, received time and queue id."""
        if not 1 <= limit <= MAX_LIST_LIMIT:
            raise ValueError(f"limit must be between 1 and {MAX_LIST_LIMIT}")
        query = select(messages)
        if state is not None:
            query = query.where(messages.c.state == state)
        if verdict is not None:
            query = query.where(messages.c.verdict == verdict)
        if since is not None:
            query = query.where(messages.c.received_at >= since)
        if until is not None:
            query = query.where(messages.c.received_at < until)
        if queue_id is not None:
            query = query.where(messages.c.queue_id == queue_id)
        query = query.order_by(messages.c.received_at.desc(), messages.c.id.desc()).limit(limit)
        with self.store.reading() as db:
            return [entry_of(row) for row in db.execute(query).mappings()]

    def search(
        self, wanted: MailFilter, *, offset: int = 0, limit: int = 100
    ) -> builtins.list[QuarantineEntry]:
        """Entries matching ``wanted``, newest first, one page (the console's lists)."""
        if not 1 <= limit <= MAX_LIST_LIMIT or offset < 0:
            raise ValueError(f"limit must be between 1 and {MAX_LIST_LIMIT}")
        query = select(messages)
        if wanted.tenant is not None:
            query = query.where(messages.c.tenant == wanted.tenant)
        if wanted.states is not None:
            query = query.where(messages.c.state.in_(wanted.states))
        if wanted.since is not None:
            query = query.where(messages.c.received_at >= wanted.since)
        if wanted.until is not None:
            query = query.where(messages.c.received_at < wanted.until)
        if wanted.sender:
            pattern = _like(wanted.sender.lower())
            query = query.where(
                or_(
                    func.lower(messages.c.mail_from).like(pattern, escape="\\"),
                    func.lower(messages.c.from_).like(pattern, escape="\\"),
                )
            )
        if wanted.recipient:
            query = query.where(
                func.lower(messages.c.rcpt_to).like(_like(wanted.recipient.lower()), escape="\\")
            )
        if wanted.reason:
            query = query.where(
                messages.c.reasons.like(_like(_json_item(wanted.reason)), escape="\\")
            )
        if wanted.text:
            pattern = _like(wanted.text.lower())
            query = query.where(
                or_(
                    func.lower(messages.c.subject).like(pattern, escape="\\"),
                    func.lower(messages.c.from_).like(pattern, escape="\\"),
                    func.lower(messages.c.mail_from).like(pattern, escape="\\"),
                    func.lower(messages.c.message_id).like(pattern, escape="\\"),
                )
            )
        if wanted.recipients is not None:
            own = [_like(_json_item(address.lower())) for address in wanted.recipients]
            if not own:
                return []
            query = query.where(
                or_(*(func.lower(messages.c.rcpt_to).like(p, escape="\\") for p in own))
            )
        if wanted.without_kind is not None:
            query = query.where(
                ~exists().where(
                    requests.c.message == messages.c.id, requests.c.kind == wanted.without_kind
                )
            )
        query = query.order_by(messages.c.received_at.desc(), messages.c.id.desc())
        with self.store.reading() as db:
            rows = db.execute(query.limit(limit).offset(offset)).mappings()
            entries = [entry_of(row) for row in rows]
        if wanted.recipients is not None:
            mine = {address.lower() for address in wanted.recipients}
            entries = [e for e in entries if mine & {r.lower() for r in e.rcpt_to}]
        if wanted.tenant is not None:
            entries = [e for e in entries if e.tenant == wanted.tenant]
        return entries

    def count(self) -> int:
        """How many entries the index holds."""
        with self.store.reading() as db:
            return int(db.scalar(select(func.count()).select_from(messages)) or 0)

    def oldest_first(self, offset: int, limit: int) -> builtins.list[str]:
        """Ids in received order, one page at a time; with a node, only entries whose original
        it can read: in the database, or on its disk (its own, and those from before nodes)."""
        readable = or_(messages.c.kept_in == "database", messages.c.node.in_([self.node, ""]))
        query = (
            select(messages.c.id)
            .where(readable if self.node else true())
            .order_by(messages.c.received_at, messages.c.id)
            .limit(limit)
            .offset(offset)
        )
        with self.store.reading() as db:
            return [str(qid) for qid in db.scalars(query)]

    # -- retention -------------------------------------------------------------------------

    @staticmethod
    def _expired(cutoff: datetime, held_cutoff: datetime) -> ColumnElement[bool]:
        held = messages.c.state.in_([str(state) for state in HELD_STATES])
        return or_(
            and_(~held, messages.c.received_at < cutoff),
            and_(held, messages.c.received_at < held_cutoff),
        )

    def count_expired(self, cutoff: datetime, held_cutoff: datetime) -> int:
        """Rows received before ``cutoff`` (``held_cutoff`` for held mail)."""
        query = select(func.count()).select_from(messages).where(self._expired(cutoff, held_cutoff))
        with self.store.reading() as db:
            return int(db.scalar(query) or 0)

    def expired(
        self, cutoff: datetime, held_cutoff: datetime, limit: int
    ) -> builtins.list[tuple[str, str]]:
        """Up to ``limit`` rows past retention: their id and where their original is kept."""
        query = (
            select(messages.c.id, messages.c.kept_in)
            .where(self._expired(cutoff, held_cutoff))
            .limit(limit)
        )
        with self.store.reading() as db:
            return [(str(qid), str(kept_in)) for qid, kept_in in db.execute(query)]


def entry_of(row: RowMapping) -> QuarantineEntry:
    """The entry of one ``messages`` row."""
    return QuarantineEntry(
        id=row["id"],
        queue_id=row["queue_id"],
        received_at=row["received_at"],
        stored_at=row["stored_at"],
        updated_at=row["updated_at"],
        client=row["client"],
        helo=row["helo"],
        mail_from=row["mail_from"],
        rcpt_to=tuple(json.loads(row["rcpt_to"])),
        size=int(row["size"]),
        stored_size=int(row["stored_size"]),
        sha256=row["sha256"],
        verdict=row["verdict"],
        reasons=tuple(json.loads(row["reasons"])),
        message_id=row["message_id"],
        from_=row["from_"],
        subject=row["subject"],
        state=row["state"],
        unlock_attempts=int(row["unlock_attempts"]),
        node=row["node"],
        auth=json.loads(row["auth"]) if row["auth"] else None,
        kept_in=row["kept_in"],
        tenant=row["tenant"],
    )
