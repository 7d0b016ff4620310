"""Unlocking a message held for a password-protected attachment (PPAP).

Intent: an operator's password (``mukaika quarantine unlock``, through the control socket of
``serve``) or the candidates of a password mail (automatic unlock, ``policy.unlock``) open the
held original; the decrypted files go through the normal CDR in the sanitizer pool, and the
sanitized mail is spooled straight into ``outgoing`` for the envelope recipients of that held
copy and nobody else, where normal delivery (retries, DSN, audit) takes it. It never passes
through the filter again, and nothing in a message can ask for it.

Threat model: passwords are secrets of the sender and the recipient. They travel from the
control socket or the pool's result to the sanitizer process only through pipes, and are
never written to a log, the audit line, the spool, the quarantine or any store. Attempts are
limited per message (``policy.unlock.max_attempts``), counted in the quarantine index before
the attempt runs (so a crash cannot give free tries), and each one is audited with its
number and result, never the password. Automatic attempts have a count of their own (in
memory), so forged password mails cannot use up the operator's attempts.

Automatic unlock, in either order, for one envelope sender and (at least) the recipients of
the held copy within ``policy.unlock.window_seconds``:

* the encrypted mail first: it is held (``awaiting_password``); when the password mail is
  sanitized, its candidates are tried on every such held copy from the quarantine index;
* the password mail first: its candidates wait in this process's memory
  (:class:`WaitingPasswords`: at most ``policy.unlock.max_waiting`` mails, each forgotten
  after the window, the oldest first when full; never on disk, so a restart forgets them and
  the operator's command remains), and are tried when the encrypted mail is held.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from gateway.configuration.rules import RuleSet
from gateway.evidence.audit import audit_record
from gateway.evidence.ports import AuditPort
from gateway.evidence.quarantine import (
    Quarantine,
    QuarantineEntry,
    QuarantineError,
    QuarantineNotFoundError,
)
from gateway.processing.pool import Sanitizer, SanitizerCrashed
from gateway.queue.scheduler import Scheduler
from gateway.queue.spool import Envelope, Spool, new_queue_id
from sanitizers.errors import TemporaryFailure
from sanitizers.policy import Policy
from sanitizers.senderauth import AuthOutcome
from sanitizers.vocabulary import AuditEvent, MessageState, Reason, UnlockResult, Verdict

log = logging.getLogger("mukaika.unlock")

# The actor of an attempt made with a password mail's candidates (automatic unlock).
AUTOMATIC = "automatic"
# How many held messages' automatic-attempt counts are kept in memory.
AUTOMATIC_COUNTS_KEPT = 10_000
_TIMED_OUT = frozenset({Reason.TIMEOUT, Reason.LIMIT_TIME})


@dataclass(frozen=True, slots=True)
class UnlockAnswer:
    """What became of one attempt: its result, which attempt it was, how many remain, and
    the queue id of the sanitized mail when it was unlocked."""

    result: UnlockResult
    attempts: int = 0
    remaining: int = 0
    queue_id: str = ""

    def to_dict(self) -> dict[str, object]:
        return {
            "result": self.result.value,
            "attempts": self.attempts,
            "remaining": self.remaining,
            "queue_id": self.queue_id,
        }


@dataclass(slots=True)
class _Waiting:
    sender: str
    recipients: frozenset[str]
    candidates: tuple[str, ...] = field(repr=False)
    at: float


class WaitingPasswords:
    """Password candidates of recent password mails, in memory only, bounded in number and
    age (see the module docstring)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._items: OrderedDict[int, _Waiting] = OrderedDict()
        self._next = 0
        self.clock = clock

    def add(
        self,
        sender: str,
        recipients: Sequence[str],
        candidates: tuple[str, ...],
        *,
        limit: int,
        window: float,
    ) -> None:
        self._expire(window)
        if limit <= 0:
            return
        self._items[self._next] = _Waiting(
            sender.lower(), frozenset(r.lower() for r in recipients), candidates, self.clock()
        )
        self._next += 1
        while len(self._items) > limit:
            self._items.popitem(last=False)

    def matching(self, sender: str, recipients: Sequence[str], *, window: float) -> tuple[str, ...]:
        """Candidates of waiting mails from ``sender`` to at least ``recipients``, newest
        mail first."""
        self._expire(window)
        wanted = {r.lower() for r in recipients}
        found: dict[str, None] = {}
        for item in reversed(self._items.values()):
            if item.sender == sender.lower() and wanted <= item.recipients:
                found.update(dict.fromkeys(item.candidates))
        return tuple(found)

    def __len__(self) -> int:
        return len(self._items)

    def _expire(self, window: float) -> None:
        cutoff = self.clock() - window
        while self._items:
            key, oldest = next(iter(self._items.items()))
            if oldest.at >= cutoff:
                return
            del self._items[key]


class Unlocking:
    """Carries out unlock attempts for the running service (see the module docstring)."""

    def __init__(
        self,
        spool: Spool,
        sanitizer: Sanitizer,
        scheduler: Scheduler,
        *,
        quarantine: Quarantine,
        audit: AuditPort,
        rules: Callable[[], RuleSet | None],
        base_policy: Callable[[], Policy],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.spool = spool
        self.sanitizer = sanitizer
        self.scheduler = scheduler
        self.quarantine = quarantine
        self.audit = audit
        self.rules = rules
        self.base_policy = base_policy
        self.clock = clock
        self.waiting = WaitingPasswords(clock)
        self._automatic_attempts: OrderedDict[str, int] = OrderedDict()
        # Messages this service has spooled unlocked, whatever the store says of them.
        self._spooled: set[str] = set()
        # One attempt per message at a time: the count and the state change stay in order.
        self._locks: dict[str, asyncio.Lock] = {}

    async def unlock(
        self, reference: str, passwords: tuple[str, ...], *, actor: str = AUTOMATIC
    ) -> UnlockAnswer:
        """One attempt with ``passwords`` on the held message ``reference``; ``actor`` is the
        account that gave them, or :data:`AUTOMATIC` for a password mail's candidates."""
        lock = self._locks.setdefault(reference, asyncio.Lock())
        async with lock:
            return await self._attempt(reference, passwords, actor=actor)

    async def _attempt(
        self, reference: str, passwords: tuple[str, ...], *, actor: str
    ) -> UnlockAnswer:
        try:
            entry = await asyncio.to_thread(self.quarantine.get, reference)
        except QuarantineNotFoundError:
            return UnlockAnswer(UnlockResult.NOT_FOUND)
        if entry.state != MessageState.AWAITING_PASSWORD or reference in self._spooled:
            return UnlockAnswer(UnlockResult.WRONG_STATE)
        policy = self._policy_for(entry)
        limit = policy.unlock.max_attempts
        if actor == AUTOMATIC:
            attempts = self._count_automatic_attempt(reference, limit)
        else:
            attempts = await asyncio.to_thread(
                self.quarantine.count_unlock_attempt, reference, limit
            )
        if attempts is None:
            answer = UnlockAnswer(UnlockResult.NO_ATTEMPTS_LEFT, limit, 0)
            self._audit(entry, answer, actor)
            return answer
        remaining = limit - attempts
        untrusted_raw = await asyncio.to_thread(self.quarantine.read_original, reference)
        try:
            result = await self.sanitizer.run(
                untrusted_raw,
                reference,
                isolated=False,
                policy=policy,
                passwords=passwords,
                unlocked_by_mail=actor == AUTOMATIC,
                auth=None if entry.auth is None else AuthOutcome.from_dict(entry.auth),
            )
        except (TemporaryFailure, SanitizerCrashed) as exc:
            log.warning("%s unlock attempt %d failed: %s", reference, attempts, type(exc).__name__)
            answer = UnlockAnswer(UnlockResult.FAILED, attempts, remaining)
            self._audit(entry, answer, actor)
            return answer
        report = result.report
        if report.awaiting_password():
            answer = UnlockAnswer(UnlockResult.WRONG_PASSWORD, attempts, remaining)
            self._audit(entry, answer, actor)
            return answer
        if _TIMED_OUT & report.reason_codes():
            # Out of time (many candidates on a slow key derivation): neither wrong nor held.
            answer = UnlockAnswer(UnlockResult.FAILED, attempts, remaining)
            self._audit(entry, answer, actor)
            return answer
        if report.verdict is not Verdict.DELIVER:
            # Opened, but what was inside holds the message for another reason.
            await asyncio.to_thread(self.quarantine.record_result, reference, report)
            await asyncio.to_thread(
                self.quarantine.transition,
                reference,
                MessageState.AWAITING_PASSWORD,
                MessageState.HELD,
            )
            answer = UnlockAnswer(UnlockResult.HELD, attempts, remaining)
            self._audit(entry, answer, actor)
            return answer
        envelope = Envelope(
            queue_id=new_queue_id(),
            mail_from=entry.mail_from,
            rcpt_tos=tuple(entry.rcpt_to),
            client=entry.client,
            helo=entry.helo,
            received_at=self.clock(),
            size=entry.size,
            quarantine_id=reference,
            verdict=str(report.verdict),
            report=report.to_dict(),
            tenant=entry.tenant,  # to its tenant's MTA, as the held copy went
        )
        # Spooled straight to outgoing (the unlocked mail never enters the filter again),
        # then released: a crash in between can only lead to a second unlock, a duplicate,
        # never a loss. Attempts on one reference are serialised by the lock above.
        await asyncio.to_thread(self.spool.put, "outgoing", envelope, result.message)
        self.scheduler.submit(envelope.queue_id, "outgoing")
        self._spooled.add(reference)
        try:
            await asyncio.to_thread(
                self.quarantine.transition,
                reference,
                MessageState.AWAITING_PASSWORD,
                MessageState.RELEASED,
            )
            await asyncio.to_thread(self.quarantine.record_result, reference, report)
        except QuarantineError as exc:
            # Spooled all the same; this service will not unlock it again (no duplicate).
            log.error(
                "%s unlocked and spooled as %s, but the store did not record it: %s",
                reference,
                envelope.queue_id,
                exc,
            )
        answer = UnlockAnswer(UnlockResult.UNLOCKED, attempts, remaining, envelope.queue_id)
        self._audit(entry, answer, actor)
        log.info(
            "%s unlocked (%s, attempt %d): %s spooled for %d recipient(s)",
            reference,
            "automatic" if actor == AUTOMATIC else f"by {actor}",
            attempts,
            envelope.queue_id,
            len(envelope.rcpt_tos),
        )
        return answer

    # -- automatic unlock --------------------------------------------------------------------

    async def password_mail(
        self, sender: str, recipients: Sequence[str], candidates: tuple[str, ...], policy: Policy
    ) -> None:
        """A mail whose text offers ``candidates`` was sanitized (it is delivered as usual):
        try them on held copies from the same sender to these recipients, and keep them for
        an encrypted mail that is still to come."""
        settings = policy.unlock
        self.waiting.add(
            sender,
            recipients,
            candidates,
            limit=settings.max_waiting,
            window=settings.window_seconds,
        )
        since = datetime.fromtimestamp(self.clock() - settings.window_seconds, UTC)
        entries = await asyncio.to_thread(
            self.quarantine.list, state=MessageState.AWAITING_PASSWORD, since=since, limit=100
        )
        wanted = {r.lower() for r in recipients}
        for entry in entries:
            if (
                entry.mail_from.lower() == sender.lower()
                and {r.lower() for r in entry.rcpt_to} <= wanted
            ):
                await self.unlock(entry.id, candidates)

    async def held_for_password(self, reference: str, policy: Policy) -> None:
        """A copy was just held awaiting a password: try what waiting password mails from
        the same sender to its recipients offer."""
        entry = await asyncio.to_thread(self.quarantine.get, reference)
        candidates = self.waiting.matching(
            entry.mail_from, entry.rcpt_to, window=policy.unlock.window_seconds
        )
        if candidates:
            await self.unlock(reference, candidates)

    # -- helpers -------------------------------------------------------------------------------

    def _count_automatic_attempt(self, reference: str, limit: int) -> int | None:
        """Count one try with a password mail's candidates; None when ``limit`` are used.

        Their own count, apart from the operator's in the quarantine index: a password mail's
        sender can be forged, and forged mails must never use up the attempts of the person
        who really has the password. Kept in memory (the oldest forgotten past
        :data:`AUTOMATIC_COUNTS_KEPT`); a restart starts them again, each try still bounded by
        ``policy.unlock.max_candidates`` and audited."""
        used = self._automatic_attempts.pop(reference, 0)
        self._automatic_attempts[reference] = used
        while len(self._automatic_attempts) > AUTOMATIC_COUNTS_KEPT:
            self._automatic_attempts.popitem(last=False)
        if used >= limit:
            return None
        self._automatic_attempts[reference] = used + 1
        return used + 1

    def _policy_for(self, entry: QuarantineEntry) -> Policy:
        """The policy of the held copy's recipients, as it was sanitized (rules applied)."""
        rules = self.rules()
        if rules is None:
            return self.base_policy()
        groups = rules.groups(sender=entry.mail_from, recipients=entry.rcpt_to, client=entry.client)
        return groups[0].policy

    def _audit(self, entry: QuarantineEntry, answer: UnlockAnswer, actor: str) -> None:
        """An ``unlock_attempt`` line: who (an account, or ``automatic``), which attempt, what
        came of it (``outcome``), the new queue id when unlocked; never a password."""
        record = audit_record(
            event=AuditEvent.UNLOCK_ATTEMPT.value,
            queue_id=answer.queue_id or entry.queue_id,
            quarantine_id=entry.id,
            client=entry.client,
            helo=entry.helo,
            mail_from=entry.mail_from,
            rcpt_to=entry.rcpt_to,
            state=entry.state,
            attempts=answer.attempts,
        )
        record["actor"] = actor
        record["outcome"] = answer.result.value
        if entry.tenant:
            record["tenant"] = entry.tenant
        self.audit.write(record)
