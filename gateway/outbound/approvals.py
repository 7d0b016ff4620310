"""serve's job for held outbound mail (上長承認): carries out approvers' decisions, refuses
mail nobody decided on in time, and tells the sender.

Decisions are recorded in the store by the command line (``mukaika quarantine approve|deny``)
and later the console, through :mod:`gateway.service.held_mail`, which checks that the
approver belongs to the sender's group (``[[outbound.groups]]``) and, for their own mail, that
self-approval is allowed. Every ``release.poll_interval_seconds`` this job:

- sends each approved mail: the quarantined original, as it leaves (:mod:`.leaving`: Bcc
  conversion, DKIM), spooled straight into ``outgoing`` with direction ``outbound`` and a queue
  id made from the decision (never twice after a crash), then delivered to the outbound relay
  with the usual retries; the decision is recorded ``done`` and the sender told;
- denies each pending decision past its expiry (``outbound.approval_expiry_seconds``), as
  ``serve``, with the reason ``expired``;
- tells the sender of each denial (the approver's comment included) and records that it did.

With several nodes every node sends approved mail it claims (a lease per decision), while the
expiry and the denial notices are a singleton job (:mod:`gateway.store.singleton`): one node
does them for the cluster, so no sender is told twice.

Nothing in a message can approve it: the decision is in the store, its number in the spool
envelope. Every step writes its audit line.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Final

from gateway.configuration.config import Config
from gateway.evidence.message_record import decision_record
from gateway.evidence.ports import AuditPort
from gateway.evidence.quarantine import Quarantine, QuarantineError
from gateway.observation.ports import MetricsPort
from gateway.outbound.leaving import Signer, SigningError, leaving
from gateway.outbound.notices import tell_sender
from gateway.queue.scheduler import Scheduler
from gateway.queue.spool import Envelope, Spool
from gateway.store import Store, StoreError
from gateway.store.singleton import SingletonJob
from gateway.store.workflow import (
    Decision,
    StateConflict,
    claim_due,
    close_denied,
    decide,
    finish,
    of_kinds,
    release_queue_id,
)
from sanitizers.vocabulary import AuditEvent, OutboundEvent, Reason, RequestKind, RequestState

log = logging.getLogger("mukaika.outbound")

EXPIRED: Final = "expired: nobody decided in time"
OUTBOUND_KIND: Final = (RequestKind.OUTBOUND,)
_REASONS: Final = frozenset(str(reason) for reason in Reason)


class OutboundApprovals:
    """Carries out the decisions on held outbound mail. Runs in serve only."""

    def __init__(
        self,
        config: Config,
        store: Store,
        quarantine: Quarantine,
        spool: Spool,
        scheduler: Scheduler,
        audit: AuditPort,
        metrics: MetricsPort,
        signer: Signer,
        notice_from: str,
        singleton: SingletonJob | None = None,
    ) -> None:
        self.config = config
        self.singleton = singleton
        self.store = store
        self.quarantine = quarantine
        self.spool = spool
        self.scheduler = scheduler
        self.audit = audit
        self.metrics = metrics
        self.signer = signer
        self.notice_from = notice_from
        self.node = config.node.resolved_name()

    async def run_forever(self) -> None:
        while True:
            try:
                await self.look()
            except (StoreError, OSError) as exc:
                log.error("outbound approvals: cannot read the store: %s", exc)
            await asyncio.sleep(self.config.release.poll_interval_seconds)

    async def look(self) -> None:
        """One round: approved ones sent, expired ones denied, denied senders told."""
        batch = self.config.release.batch
        now = datetime.now(UTC)
        claimed = await asyncio.to_thread(
            functools.partial(
                claim_due,
                self.store,
                self.node,
                batch,
                now=now,
                lease=timedelta(seconds=self.config.release.lease_seconds),
                kinds=OUTBOUND_KIND,
            )
        )
        for decision in claimed:
            await self._send(decision)
        if self.singleton is not None and not await self.singleton.held():
            return  # another node expires and tells
        for decision in await asyncio.to_thread(
            of_kinds, self.store, RequestState.PENDING, OUTBOUND_KIND, limit=batch
        ):
            if decision.expires_at is not None and now > decision.expires_at:
                await self._expire(decision, now)
        for decision in await asyncio.to_thread(
            of_kinds, self.store, RequestState.DENIED, OUTBOUND_KIND, limit=batch, unclosed=True
        ):
            await self._tell_denied(decision)

    async def _send(self, decision: Decision) -> None:
        try:
            entry = await asyncio.to_thread(self.quarantine.get, decision.message)
            original = await asyncio.to_thread(self.quarantine.read_original, entry.id)
            outgoing = leaving(original, self.config, self.signer, entry.tenant)
        except (QuarantineError, SigningError) as exc:
            await self._finish(decision, done=False, outcome=f"not sent: {exc}", queue_ids=())
            return
        queue_id = release_queue_id(decision, 0)
        if await asyncio.to_thread(self.spool.find, queue_id) is None:
            envelope = Envelope(
                queue_id=queue_id,
                mail_from=entry.mail_from,
                rcpt_tos=tuple(entry.rcpt_to),
                client=entry.client,
                helo=entry.helo,
                received_at=time.time(),
                size=entry.size,
                quarantine_id=entry.id,
                tenant=entry.tenant,  # its sender's tenant's relay
                verdict="deliver",
                report={
                    "direction": "outbound",
                    "reasons": list(entry.reasons),
                    "bcc_converted": outgoing.bcc_converted,
                    "dkim": outgoing.dkim_domain or None,
                },
                release=decision.id,
                direction="outbound",
            )
            await asyncio.to_thread(self.spool.put, "outgoing", envelope, outgoing.message)
        if not await self._finish(decision, done=True, outcome="sent", queue_ids=(queue_id,)):
            return
        self.scheduler.submit(queue_id, "outgoing")
        self.metrics.outbound(OutboundEvent.APPROVED)
        await tell_sender(
            self.config,
            OutboundEvent.APPROVED,
            sender=entry.mail_from,
            recipients=entry.rcpt_to,
            untrusted_raw=original,
            received_at=entry.received_at.timestamp(),
            reference=entry.id,
            from_address=self.notice_from,
        )
        log.info("%s approved by %s: sent as %s", entry.id, decision.decided_by, queue_id)

    async def _finish(
        self, decision: Decision, *, done: bool, outcome: str, queue_ids: tuple[str, ...]
    ) -> bool:
        try:
            finished = await asyncio.to_thread(
                finish,
                self.store,
                decision,
                done=done,
                outcome=outcome,
                queue_ids=queue_ids,
                now=datetime.now(UTC),
                node=self.node,
            )
        except StateConflict:
            return False
        self.audit.write(decision_record(AuditEvent.RELEASE_DONE, finished, "serve"))
        return True

    async def _expire(self, decision: Decision, now: datetime) -> None:
        try:
            denied = await asyncio.to_thread(
                decide,
                self.store,
                decision,
                approve=False,
                actor="serve",
                reason=EXPIRED,
                expires_at=None,
                now=now,
            )
        except StateConflict:
            return  # decided meanwhile
        self.audit.write(decision_record(AuditEvent.DENIAL, denied, "serve"))
        log.info("%s not approved in time: refused", decision.message)

    async def _tell_denied(self, decision: Decision) -> None:
        try:
            entry = await asyncio.to_thread(self.quarantine.get, decision.message)
            original = await asyncio.to_thread(self.quarantine.read_original, entry.id)
        except QuarantineError as exc:
            log.warning("%s: the sender of a denied mail cannot be told: %s", decision.message, exc)
            original = b""
            told = "failed"
        else:
            told = await tell_sender(
                self.config,
                OutboundEvent.DENIED,
                sender=entry.mail_from,
                recipients=entry.rcpt_to,
                untrusted_raw=original,
                received_at=entry.received_at.timestamp(),
                reference=entry.id,
                reasons=[Reason(r) for r in entry.reasons if r in _REASONS],
                comment=decision.decision_reason or "",
                from_address=self.notice_from,
            )
        if await asyncio.to_thread(
            close_denied,
            self.store,
            decision,
            outcome=f"sender told: {told}",
            now=datetime.now(UTC),
        ):
            self.metrics.outbound(OutboundEvent.DENIED)
