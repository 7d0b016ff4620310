"""Sanitizing a spooled message: quarantine the original, split by policy, run the pool.

Intent: nothing unsanitized ever leaves. Per message::

    incoming ─ quarantine the original ─ sanitize (process pool) ─┬─ deliver/hold ─▶ outgoing
                                                                  └─ reject ──▶ dead + DSN

Policy: the rules (:mod:`gateway.configuration.rules`) are resolved per recipient when a
message is sanitized, with the rule set current at that moment (a reload applies from the next
message on). Recipients that resolve to different tenants or policies are split first (the
tenant is resolved here, once, and carried in the envelope's ``tenant``): each group becomes
its own spooled message (new queue id, same original, its recipients only; the new ones are
made durable before the original is narrowed, so a crash in between can only duplicate), and
each copy is sanitized with its group's policy. The audit line names the rules and exceptions
that applied (``rules``, ``exceptions``).

Held awaiting a password, with PPAP links on (``links``): each recipient gets a notice of their
own carrying only their signed link (:mod:`.unlock_links`); the copies for the other
recipients are made durable in ``outgoing`` before the message moves on narrowed to the first,
so a crash in between can only duplicate a notice, and no recipient sees another's link (a
Bcc recipient stays unseen).

A sanitizer crash or timeout is retried in isolation; after ``worker.max_crashes`` the message
is held: recipients get a content-free notice. Sender authentication's outcome, evaluated
before the 250 and kept in the envelope, reaches the pipeline as data; after the 250 its
"reject" holds, and a message rejected for an authentication failure is never bounced to its
(possibly forged) sender. A temporary failure of a dependency (virus
scanner) defers, until ``delivery.lifetime_seconds`` since receipt.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

from gateway.configuration.rules import PolicyGroup, RuleSet
from gateway.configuration.settings import DeliverySettings, WorkerSettings
from gateway.delivery.attempts import Delivering
from gateway.delivery.bounces import Bounces
from gateway.delivery.notices import build_crash_hold_notice
from gateway.evidence.ports import QuarantinePort
from gateway.observation.ports import MetricsPort
from gateway.processing.pool import Sanitizer, SanitizerCrashed
from gateway.processing.unlock_links import UnlockLinks
from gateway.processing.unlocking import Unlocking
from gateway.queue.scheduler import Scheduler
from gateway.queue.spool import Envelope, Spool, SpoolError, new_queue_id
from sanitizers.errors import TemporaryFailure
from sanitizers.notice import NoticeContext
from sanitizers.policy import Policy
from sanitizers.report import SanitizeResult
from sanitizers.senderauth import AuthOutcome
from sanitizers.vocabulary import DeadLetterReason, SmtpRefusal, Verdict

log = logging.getLogger("mukaika.worker")


class Sanitizing:
    """Works on messages in the spool's ``incoming`` state."""

    def __init__(
        self,
        spool: Spool,
        sanitizer: Sanitizer,
        scheduler: Scheduler,
        delivering: Delivering,
        bounces: Bounces,
        *,
        settings: WorkerSettings,
        delivery: DeliverySettings,
        quarantine: QuarantinePort,
        metrics: MetricsPort,
        clock: Callable[[], float] = time.time,
        rules: RuleSet | None = None,
        notice_context: NoticeContext | None = None,
        unlocking: Unlocking | None = None,
        links: UnlockLinks | None = None,
    ) -> None:
        self.spool = spool
        self.sanitizer = sanitizer
        self.scheduler = scheduler
        self.delivering = delivering
        self.bounces = bounces
        self.settings = settings
        self.delivery = delivery
        self.quarantine = quarantine
        self.metrics = metrics
        self.clock = clock
        # Replaced whole on reload; read once per message when it is sanitized.
        self.rules = rules
        self.notice_context = notice_context or NoticeContext()
        # Automatic unlock (policy.unlock.automatic) of password-protected attachments.
        self.unlocking = unlocking
        # Signs each recipient's PPAP link for the held notices; None: no links.
        self.links = links

    async def run(self, queue_id: str) -> None:
        """Sanitize a spooled incoming message and hand it on."""
        try:
            envelope, untrusted_raw = await asyncio.to_thread(self.spool.load, "incoming", queue_id)
        except SpoolError:
            await self.bounces.set_aside("incoming", queue_id)
            return
        # Evaluated before the 250 (gateway.senderauth); after it, reject means hold.
        auth = None if envelope.auth is None else AuthOutcome.from_dict(envelope.auth)
        auth = None if auth is None else auth.after_acceptance()
        group: PolicyGroup | None = None
        if self.rules is not None:
            groups = self.rules.groups(
                sender=envelope.mail_from,
                recipients=envelope.rcpt_tos,
                client=envelope.client,
                auth=auth,
            )
            if len(groups) > 1:
                envelope = await self._split(envelope, untrusted_raw, groups)
            group = groups[0]
            envelope = envelope.with_(tenant=group.tenant)
            auth = self._tenants_authserv_id(auth, group.tenant)
        if not envelope.quarantine_id:
            quarantine_id = await asyncio.to_thread(
                self.quarantine.store,
                queue_id,
                untrusted_raw,
                client=envelope.client,
                helo=envelope.helo,
                mail_from=envelope.mail_from,
                rcpt_to=list(envelope.rcpt_tos),
                received_at=datetime.fromtimestamp(envelope.received_at, UTC),
                tenant=envelope.tenant,
            )
            envelope = envelope.with_(quarantine_id=quarantine_id)
            self.metrics.quarantined()
        started = time.monotonic()
        run = (
            self.sanitizer.run if auth is None else functools.partial(self.sanitizer.run, auth=auth)
        )
        try:
            result = await run(
                untrusted_raw,
                envelope.quarantine_id,
                isolated=envelope.crashes > 0,
                policy=None if group is None else group.policy,
                context=self._with_links(envelope),
            )
        except TemporaryFailure as exc:
            await self._later(envelope, untrusted_raw, f"temporary: {exc}")
            return
        except SanitizerCrashed as exc:
            await self._crashed(envelope, untrusted_raw, str(exc))
            return
        self.metrics.observe_sanitize(time.monotonic() - started)
        await self._sanitized(envelope, result, group)

    def _tenants_authserv_id(self, auth: AuthOutcome | None, tenant: str) -> AuthOutcome | None:
        """The outcome under the tenant's own authserv-id, when it has one."""
        tenants = None if self.rules is None else self.rules.tenants
        if auth is None or not tenant or tenants is None:
            return auth
        own = tenants.auth(tenant).authserv_id
        return replace(auth, authserv_id=own) if own else auth

    def _with_links(self, envelope: Envelope) -> NoticeContext | None:
        """The notice context with each recipient's PPAP link; None (the sanitizer's own
        context) when links are off."""
        if self.links is None:
            return None
        links = self.links.links(envelope.quarantine_id, envelope.rcpt_tos)
        expires = datetime.fromtimestamp(self.links.clock() + self.links.lifetime_seconds, UTC)
        return replace(self.notice_context, links=links, links_expire=expires)

    async def _split(
        self, envelope: Envelope, untrusted_raw: bytes, groups: list[PolicyGroup]
    ) -> Envelope:
        """One spooled message per policy group; returns the original, narrowed to group 1."""
        copies = [
            envelope.with_(queue_id=new_queue_id(), rcpt_tos=group.recipients, tenant=group.tenant)
            for group in groups[1:]
        ]
        for copy in copies:
            await asyncio.to_thread(self.spool.accept, copy, untrusted_raw)
        narrowed = envelope.with_(rcpt_tos=groups[0].recipients, tenant=groups[0].tenant)
        await asyncio.to_thread(self.spool.put, "incoming", narrowed, untrusted_raw)
        for copy in copies:
            self.scheduler.submit(copy.queue_id)
        log.info(
            "%s split by policy into %s",
            envelope.queue_id,
            ", ".join([envelope.queue_id, *(copy.queue_id for copy in copies)]),
        )
        return narrowed

    async def _later(self, envelope: Envelope, untrusted_raw: bytes, why: str) -> None:
        """Sanitize again later; the reason is kept as the message's last error (``mukaika
        queue list``), written to the spool only when it changes."""
        if self.clock() - envelope.received_at >= self.delivery.lifetime_seconds:
            failures = {
                rcpt: "451 4.3.0 could not be sanitized in time" for rcpt in envelope.rcpt_tos
            }
            await self.bounces.dead(
                envelope.with_(last_error=why), "incoming", b"", failures, DeadLetterReason.LIFETIME
            )
            return
        log.warning("%s sanitizing deferred (%s)", envelope.queue_id, why)
        if envelope.last_error != why:
            envelope = envelope.with_(last_error=why)
            await asyncio.to_thread(self.spool.put, "incoming", envelope, untrusted_raw)
        self.metrics.deferred()
        self.scheduler.retry_later("incoming", envelope.queue_id)

    async def _crashed(self, envelope: Envelope, untrusted_raw: bytes, why: str) -> None:
        envelope = envelope.with_(crashes=envelope.crashes + 1, last_error=why)
        log.warning(
            "%s sanitizer %s (%d of %d)",
            envelope.queue_id,
            why,
            envelope.crashes,
            self.settings.max_crashes,
        )
        if envelope.crashes < self.settings.max_crashes:
            await asyncio.to_thread(self.spool.put, "incoming", envelope, untrusted_raw)
            self.scheduler.submit(envelope.queue_id, "incoming")
            return
        notice = build_crash_hold_notice(
            envelope,
            from_address=self.bounces.notice_from,
            notice=self._base_policy().notice,
            context=self.notice_context,
        )
        envelope = envelope.with_(verdict=str(Verdict.HOLD))
        await asyncio.to_thread(self.spool.advance, "incoming", envelope, notice, "outgoing")
        await self.delivering.deliver(envelope, notice)

    async def _sanitized(
        self, envelope: Envelope, result: SanitizeResult, group: PolicyGroup | None = None
    ) -> None:
        report = result.report
        self.metrics.verdict(report.verdict)
        if envelope.tenant:
            self.metrics.tenant_message(envelope.tenant, report.verdict)
        if report.auth is not None:
            for item in report.auth["results"]:
                self.metrics.auth_result(item["method"], item["result"])
        for part in report.parts:
            self.metrics.part(part.action, part.reason)
        await asyncio.to_thread(self.quarantine.record_result, envelope.quarantine_id, report)
        data = report.to_dict()
        if group is not None and group.rules:
            data["rules"] = list(group.rules)
            data["exceptions"] = list(group.exceptions)
        envelope = envelope.with_(
            verdict=str(report.verdict), report=data, awaiting_password=report.awaiting_password()
        )
        if report.verdict == Verdict.REJECT:
            self.metrics.rejected(SmtpRefusal.VERDICT)
            failures = {rcpt: "550 5.7.1 message rejected by policy" for rcpt in envelope.rcpt_tos}
            auth_reasons = set((report.auth or {}).get("reasons", []))
            await self.bounces.dead(
                envelope,
                "incoming",
                result.message,
                failures,
                DeadLetterReason.REJECTED,
                tell_sender=not auth_reasons & {str(r) for r in report.reasons},
            )
            return
        narrowed, message = await self._notices_apart(envelope, result)
        await asyncio.to_thread(self.spool.advance, "incoming", narrowed, message, "outgoing")
        await self.delivering.deliver(narrowed, message)
        await self._automatic_unlock(envelope, result, group)

    async def _notices_apart(
        self, envelope: Envelope, result: SanitizeResult
    ) -> tuple[Envelope, bytes]:
        """What goes on from ``incoming``: the message as it is, or, when each recipient has a
        notice of their own (PPAP links), the first recipient's, the others' copies spooled
        to ``outgoing`` first (see the module docstring)."""
        notices = dict(result.notices)
        if not notices or set(notices) != set(envelope.rcpt_tos):
            return envelope, result.message
        first, *others = envelope.rcpt_tos
        copies = [
            (envelope.with_(queue_id=new_queue_id(), rcpt_tos=(rcpt,)), notices[rcpt])
            for rcpt in others
        ]
        for copy, message in copies:
            await asyncio.to_thread(self.spool.put, "outgoing", copy, message)
        for copy, _ in copies:
            self.scheduler.submit(copy.queue_id, "outgoing")
        return envelope.with_(rcpt_tos=(first,)), notices[first]

    async def _automatic_unlock(
        self, envelope: Envelope, result: SanitizeResult, group: PolicyGroup | None
    ) -> None:
        """With ``policy.unlock.automatic``: a password mail's candidates are tried on held
        copies from its sender (and kept for one still to come); a copy just held awaiting
        a password is tried with the candidates already waiting. Never fails the mail that
        was just handled: a fault is logged."""
        policy = self._base_policy() if group is None else group.policy
        if self.unlocking is None or not policy.unlock.automatic:
            return
        try:
            if envelope.awaiting_password:
                await self.unlocking.held_for_password(envelope.quarantine_id, policy)
            elif result.password_candidates:
                await self.unlocking.password_mail(
                    envelope.mail_from, envelope.rcpt_tos, result.password_candidates, policy
                )
        except Exception as exc:  # noqa: BLE001 - the mail is handled; the unlock can wait
            log.warning("%s automatic unlock failed: %s", envelope.queue_id, type(exc).__name__)

    def _base_policy(self) -> Policy:
        return self.rules.base if self.rules is not None else Policy()
