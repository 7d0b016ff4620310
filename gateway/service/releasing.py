"""serve carries out the releases recorded in the store (a singleton job of the service).

Intent: a release never leaves from a command or a console, which have no spool. Every
``release.poll_interval_seconds`` serve takes the approved decisions from the store and, for
each, sanitizes the quarantined original again in its pool, with the terms of the decision
(:class:`sanitizers.release.ReleaseTerms`) and the policy of the rules in force for its sender
and recipients; then it spools the result straight into ``outgoing``, where the normal delivery
(retry with backoff, DSN, audit) takes it. That path never passes the SMTP listener, so the
released mail cannot re-enter the filter, in the Postfix content-filter layout too (its next
hop is Postfix's re-injection listener, as for any mail); and no header or mark in a message
asks for any of it: the decision is in the store, and the spool envelope carries its number.

- A message held for a limit is released as text only, unless the decision raised, for this
  run, a setting of each limit that held it (recorded in the decision).
- An exception (例外措置) lets the named parts cross as the sender's bytes: only with the
  scanner on, never past its expiry, never an executable (:mod:`sanitizers.cdr.registry`).
- Exactly once: each copy gets a queue id made from the decision's number, so a crash between
  spooling and recording spools nothing twice; the decision is then recorded ``done`` (the entry
  ``released``). A result that is still held or rejected (the limit hit again), a sanitizer
  crash or an original that fails its integrity check records ``failed`` and puts the entry back
  in its state before; a temporary failure (the scanner down) leaves it for the next look.
- Whoever asked for a release that someone else decided is told by mail
  (:mod:`.decision_notices`): once it is carried out, or when it is denied.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Final

from gateway.configuration.config import Config
from gateway.configuration.rules import PolicyGroup, RuleSet
from gateway.evidence.message_record import decision_record
from gateway.evidence.ports import AuditPort
from gateway.evidence.quarantine import Quarantine, QuarantineEntry, QuarantineError
from gateway.processing.pool import Sanitizer, SanitizerCrashed
from gateway.queue.scheduler import Scheduler
from gateway.queue.spool import Envelope, Spool
from gateway.service.decision_notices import KINDS, DecisionNotices, is_request
from gateway.store import Store, StoreError
from gateway.store.workflow import (
    Decision,
    StateConflict,
    claim_due,
    close_denied,
    finish,
    of_kinds,
    release_queue_id,
)
from sanitizers.errors import TemporaryFailure
from sanitizers.policy import Policy
from sanitizers.release import ReleaseTerms
from sanitizers.report import SanitizeResult
from sanitizers.senderauth import AuthOutcome
from sanitizers.vocabulary import AuditEvent, Reason, RequestKind, RequestState, Verdict

log = logging.getLogger("mukaika.release")

# The limit settings (policy.limits) behind each reason a message is held for.
LIMIT_SETTINGS: Final[Mapping[Reason, frozenset[str]]] = {
    Reason.LIMIT_SIZE: frozenset({"max_message_bytes", "max_text_chars"}),
    Reason.LIMIT_HEADER: frozenset({"max_header_bytes"}),
    Reason.LIMIT_LINE: frozenset({"max_line_bytes"}),
    Reason.LIMIT_PARTS: frozenset({"max_parts"}),
    Reason.LIMIT_DEPTH: frozenset({"max_depth"}),
    Reason.LIMIT_TIME: frozenset({"seconds"}),
}


def terms_for(decision: Decision, reasons: Iterable[str]) -> ReleaseTerms:
    """The terms of one decision for an entry held for ``reasons``."""
    raised = set(decision.raised_limits)
    text_only = any(
        not (settings & raised)
        for reason, settings in LIMIT_SETTINGS.items()
        if str(reason) in set(reasons)
    )
    keep = frozenset(decision.parts) if decision.kind is RequestKind.EXCEPTION else frozenset()
    return ReleaseTerms(lift_holds=True, text_only=text_only, keep_parts=keep)


def raised_policy(policy: Policy, raised: Mapping[str, float]) -> Policy:
    """``policy`` with the decision's raised limits, validated again."""
    if not raised:
        return policy
    limits = policy.limits.model_validate(policy.limits.model_dump() | dict(raised))
    return policy.model_copy(update={"limits": limits})


class Releasing:
    """Carries out approved decisions. Runs in serve only (one per spool)."""

    def __init__(
        self,
        store: Store,
        quarantine: Quarantine,
        sanitizer: Sanitizer,
        spool: Spool,
        scheduler: Scheduler,
        audit: AuditPort,
        config: Config,
        rules: Callable[[], RuleSet | None],
        notices: DecisionNotices | None = None,
    ) -> None:
        self.store = store
        self.quarantine = quarantine
        self.sanitizer = sanitizer
        self.spool = spool
        self.scheduler = scheduler
        self.audit = audit
        self.config = config
        self.rules = rules
        self.notices = notices
        self.node = config.node.resolved_name()

    async def run_forever(self) -> None:
        """Look for approved decisions now and every ``release.poll_interval_seconds``."""
        while True:
            try:
                await self.carry_out_due()
            except (StoreError, OSError) as exc:
                log.error("release: cannot read the store: %s", exc)
            await asyncio.sleep(self.config.release.poll_interval_seconds)

    async def carry_out_due(self) -> int:
        """Carry out the approved decisions; return how many were finished."""
        finished = 0
        claimed = await asyncio.to_thread(
            functools.partial(
                claim_due,
                self.store,
                self.node,
                self.config.release.batch,
                now=datetime.now(UTC),
                lease=timedelta(seconds=self.config.release.lease_seconds),
                kinds=(RequestKind.RELEASE, RequestKind.EXCEPTION),  # outbound: gateway/outbound
            )
        )
        for decision in claimed:
            if await self.carry_out(decision):
                finished += 1
        if self.notices is not None:
            await self.tell_denied()
        return finished

    async def tell_denied(self) -> None:
        """Tell the requesters of denied requests; each denial is marked told first, so one
        node tells it once."""
        assert self.notices is not None
        denied = await asyncio.to_thread(
            functools.partial(
                of_kinds,
                self.store,
                RequestState.DENIED,
                KINDS,
                limit=self.config.release.batch,
                unclosed=True,
            )
        )
        for decision in denied:
            closed = await asyncio.to_thread(
                functools.partial(
                    close_denied,
                    self.store,
                    decision,
                    outcome="requester notice",
                    now=datetime.now(UTC),
                )
            )
            if not closed:
                continue  # another node took it
            try:
                entry = await asyncio.to_thread(self.quarantine.get, decision.message)
            except QuarantineError as exc:
                log.warning("%s: the requester cannot be told: %s", decision.message, exc)
                continue
            await self.notices.tell(decision, entry)

    async def _tell(self, decision: Decision, entry: QuarantineEntry | None = None) -> None:
        if self.notices is None or not is_request(decision):
            return
        if entry is None:
            try:
                entry = await asyncio.to_thread(self.quarantine.get, decision.message)
            except QuarantineError as exc:
                log.warning("%s: the requester cannot be told: %s", decision.message, exc)
                return
        await self.notices.tell(decision, entry)

    async def carry_out(self, decision: Decision) -> bool:
        """One decision; False when it stays approved for the next look."""
        now = datetime.now(UTC)
        if decision.kind is RequestKind.EXCEPTION:
            if not self.config.scanner.enabled:
                return await self._failed(decision, "the malware scanner is off")
            if decision.expires_at is not None and now > decision.expires_at:
                return await self._failed(decision, "the approval expired")
        try:
            entry = await asyncio.to_thread(self.quarantine.get, decision.message)
            untrusted_raw = await asyncio.to_thread(self.quarantine.read_original, entry.id)
        except QuarantineError as exc:
            return await self._failed(decision, f"original unusable: {exc}")
        terms = terms_for(decision, entry.reasons)
        # The copy carries what was found before the 250; a sender-authentication hold is
        # now a warning to the recipient (sanitizers.senderauth.AuthOutcome.released).
        auth = None if entry.auth is None else AuthOutcome.from_dict(entry.auth).released()
        results: list[tuple[PolicyGroup | None, SanitizeResult]] = []
        for group in self._groups(entry):
            policy = group.policy if group is not None else self.config.policy
            try:
                result = await self.sanitizer.run(
                    untrusted_raw,
                    entry.id,
                    isolated=False,
                    policy=raised_policy(policy, decision.raised_limits),
                    release=terms,
                    auth=auth,
                )
            except TemporaryFailure as exc:
                log.warning("release %d of %s waits: %s", decision.id, entry.id, exc)
                return False
            except SanitizerCrashed as exc:
                return await self._failed(decision, f"sanitizer {exc}")
            if result.report.verdict is not Verdict.DELIVER:
                reasons = ",".join(sorted(str(r) for r in result.report.reasons)) or "-"
                return await self._failed(
                    decision, f"still {result.report.verdict} ({reasons}): raise the limit"
                )
            results.append((group, result))
        queue_ids = await self._spool(decision, entry, results)
        what = "text only" if terms.text_only else "sanitized again"
        if terms.keep_parts:
            what += f"; original parts {', '.join(sorted(terms.keep_parts))}"
        try:
            done = await asyncio.to_thread(
                finish,
                self.store,
                decision,
                done=True,
                outcome=what,
                queue_ids=queue_ids,
                now=datetime.now(UTC),
                node=self.node,
            )
        except StateConflict:
            log.warning("release %d of %s was finished meanwhile", decision.id, entry.id)
            return True
        self.audit.write(decision_record(AuditEvent.RELEASE_DONE, done, "serve"))
        for queue_id in queue_ids:
            self.scheduler.submit(queue_id, "outgoing")
        log.info("%s released (%s) as %s", entry.id, what, ", ".join(queue_ids))
        await self._tell(done, entry)
        return True

    def _groups(self, entry: QuarantineEntry) -> list[PolicyGroup | None]:
        rules = self.rules()
        if rules is None:
            return [None]
        groups: list[PolicyGroup | None] = list(
            rules.groups(sender=entry.mail_from, recipients=entry.rcpt_to, client=entry.client)
        )
        return groups

    async def _spool(
        self,
        decision: Decision,
        entry: QuarantineEntry,
        results: list[tuple[PolicyGroup | None, SanitizeResult]],
    ) -> list[str]:
        queue_ids: list[str] = []
        for index, (group, result) in enumerate(results):
            queue_id = release_queue_id(decision, index)
            queue_ids.append(queue_id)
            if await asyncio.to_thread(self.spool.find, queue_id) is not None:
                continue  # spooled before a crash: never twice
            report = result.report.to_dict()
            if group is not None and group.rules:
                report["rules"] = list(group.rules)
                report["exceptions"] = list(group.exceptions)
            envelope = Envelope(
                queue_id=queue_id,
                mail_from=entry.mail_from,
                rcpt_tos=group.recipients if group is not None else entry.rcpt_to,
                client=entry.client,
                helo=entry.helo,
                received_at=time.time(),
                size=entry.size,
                quarantine_id=entry.id,
                verdict=str(Verdict.DELIVER),
                report=report,
                release=decision.id,
                tenant=entry.tenant,  # to its tenant's MTA only
            )
            await asyncio.to_thread(self.spool.put, "outgoing", envelope, result.message)
        return queue_ids

    async def _failed(self, decision: Decision, why: str) -> bool:
        try:
            failed = await asyncio.to_thread(
                finish,
                self.store,
                decision,
                done=False,
                outcome=why,
                queue_ids=(),
                now=datetime.now(UTC),
                node=self.node,
            )
        except StateConflict:
            return True
        self.audit.write(decision_record(AuditEvent.RELEASE_DONE, failed, "serve"))
        log.warning("release %d of %s failed: %s", decision.id, decision.message, why)
        await self._tell(failed)
        return True
