"""The running gateway: wires SMTP in, spool, worker, quarantine, audit and metrics together.

Intent: one object that starts in the right order (spool recovered before the port opens, so
nothing is accepted before older mail is back in the schedule) and stops in the right order
(stop accepting with 421, let transactions and work in flight finish within the grace period,
leave the rest spooled for the next start). Signals are the caller's business
(:mod:`gateway.cli.serve`); this module only offers :meth:`Gateway.stop` and
:meth:`Gateway.reload` (a new policy and rules for messages sanitized from then on; listeners
and sessions are untouched; other changed settings are reported as needing a restart).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.configuration.config import Config, rule_set, tenants_of
from gateway.configuration.rules import RuleSet
from gateway.configuration.secret_key import load_secret_key, secret_key_path
from gateway.configuration.settings import OutboundSettings
from gateway.configuration.tenants import Tenant
from gateway.delivery.client import Deliverer
from gateway.evidence.audit import AuditLog
from gateway.evidence.ports import AuditPort, QuarantinePort
from gateway.evidence.quarantine import Quarantine
from gateway.observation.clock import ClockWatch, Probe, TimedatedProbe
from gateway.observation.metrics import Metrics, MetricsServer
from gateway.observation.ports import MetricsPort
from gateway.outbound.approvals import OutboundApprovals
from gateway.outbound.auth import OutboundLogins, PasswordCheck
from gateway.outbound.listener import outbound_listener
from gateway.outbound.stage import CancelError, OutboundStage
from gateway.processing.pool import InlineSanitizer, ProcessSanitizer, Sanitizer, TaskRunner
from gateway.processing.sanitize_task import task_for
from gateway.processing.scanner_health import ScannerHealth
from gateway.processing.unlock_links import UnlockLinks, digest_links
from gateway.queue.spool import Envelope, Spool, is_queue_id
from gateway.receiving.smtp import Received, SmtpServer
from gateway.service.accepting import authenticating_for, spool_received
from gateway.service.control import ControlServer
from gateway.service.decision_notices import DecisionNotices
from gateway.service.digests import DailyDigests, Digests
from gateway.service.dmarc_reporting import DmarcReporting
from gateway.service.node_clock import NodeClock
from gateway.service.receivers import ReceiverPool, receiver_count
from gateway.service.releasing import Releasing
from gateway.service.store_health import StoreHealth
from gateway.service.worker import Worker
from gateway.store import Store, migrate_store, open_store
from gateway.store.singleton import (
    DIGEST_JOB,
    DMARC_JOB,
    OUTBOUND_EXPIRY_JOB,
    PURGE_JOB,
    SingletonJob,
    SingletonLocks,
)
from sanitizers.addresses import address_matches
from sanitizers.notice import NoticeContext
from sanitizers.vocabulary import OutboundEvent

log = logging.getLogger("mukaika.service")


@dataclass(slots=True)
class Parts:
    """Replaceable collaborators (tests inject fakes); None builds the real one."""

    sanitizer: Sanitizer | None = None
    quarantine: QuarantinePort | None = None
    audit: AuditPort | None = None
    metrics: MetricsPort | None = None
    free_bytes: Callable[[], int] | None = None
    # Whether the system clock is synchronised; None asks systemd-timedated.
    clock: Probe | None = None
    # Receive SMTP in this process's event loop instead of smtp.receivers processes (tests
    # whose fakes, free_bytes included, must reach the SMTP side).
    receive_in_process: bool = False
    # The store; None opens the configured one (only when the quarantine is the real one).
    store: Store | None = None
    # Where the outbound checks run; None: the sanitizer's pool (threads with a fake one).
    outbound_runner: TaskRunner | None = None
    # How a console password is checked against its hash (``[outbound] auth``): the command
    # line gives the console's hasher (the service never imports the web framework).
    password_check: PasswordCheck | None = None


class Gateway:
    """The whole service for one configuration and data directory."""

    def __init__(self, config: Config, parts: Parts | None = None) -> None:
        parts = parts or Parts()
        if config.outbound.enabled and config.outbound.auth and parts.password_check is None:
            # Fail closed, before anything is opened: no listener that cannot check a login.
            raise RuntimeError("outbound.auth needs the console's password hasher")
        self.config = config
        self.data_dir = Path(config.service.data_dir)
        self.spool = Spool(self.data_dir / "spool", config.spool.group_commit_seconds)
        self.hostname = config.smtp.hostname or socket.getfqdn()
        self.node = config.node.resolved_name()
        self._owned: list[Callable[[], None]] = []
        self.metrics_server: MetricsServer | None = None
        if parts.metrics is None:
            metrics = Metrics()
            self.metrics: MetricsPort = metrics
            if config.metrics.enabled:
                self.metrics_server = metrics.serve(config.metrics.host, config.metrics.port)
                self._owned.append(self.metrics_server.close)
        else:
            self.metrics = parts.metrics
        # The quarantine this service owns is purged by it, at quarantine.purge_interval_seconds.
        self._purgeable: Quarantine | None = None
        self.store: Store | None = parts.store
        if parts.quarantine is None and self.store is None:
            self.store = self._open_store(config)
            self._owned.append(self.store.close)
        # Jobs that run once across the nodes of one store (gateway/store/singleton.py).
        self.singletons: SingletonLocks | None = None
        if self.store is not None:
            self.singletons = SingletonLocks(self.store, self.node)
            self._owned.append(self.singletons.close)
        if parts.quarantine is None:
            assert self.store is not None
            quarantine = Quarantine.from_settings(
                config.quarantine, self.data_dir, self.store, self.node
            )
            self._owned.append(quarantine.close)
            self.quarantine: QuarantinePort = quarantine
            self._purgeable = quarantine
        else:
            self.quarantine = parts.quarantine
        self._own_audit: AuditLog | None = None
        if parts.audit is None:
            audit = AuditLog.from_settings(config.audit, self.data_dir, self.node)
            self._owned.append(audit.close)
            self.audit: AuditPort = audit
            self._own_audit = audit
        else:
            self.audit = parts.audit
        notice_context = NoticeContext(
            public_url=config.console.public_url,
            contact=config.console.contact,
            timezone=config.service.display_timezone,
        )
        self.sanitizer = parts.sanitizer or ProcessSanitizer(
            config.policy,
            config.worker.processes,
            config.worker.sanitize_timeout_seconds,
            target=task_for(config.scanner, notice_context),
        )
        self.deliverer = Deliverer(config.delivery)
        # Each tenant's mail goes to its own MTA only (gateway/configuration/tenants.py).
        self.tenant_deliverers = {
            tenant.name: Deliverer(config.delivery, tenant.relay_host, tenant.relay_port)
            for tenant in config.tenants
        }
        # Sender authentication before the 250 (for mail received in this process).
        self._authenticating = authenticating_for(config)
        self._outbound_deliverers: tuple[Deliverer, ...] = ()
        self.outbound_address: tuple[str, int] | None = None
        self.worker = Worker(
            self.spool,
            self.sanitizer,
            self.deliverer,
            settings=config.worker,
            delivery=config.delivery,
            quarantine=self.quarantine,
            audit=self.audit,
            metrics=self.metrics,
            hostname=self.hostname,
            keep_delivered_seconds=config.spool.keep_delivered_seconds,
            rules=rule_set(config),
            notice_context=notice_context,
            unlock_from=self._purgeable,
            links=self._unlock_links(config),
        )
        self.worker.delivering.tenants = self.tenant_deliverers
        self.worker.bounces.tenant_relays = {
            tenant.name: (tenant.relay_host, tenant.relay_port) for tenant in config.tenants
        }
        # Local commands that carry a secret (quarantine unlock) reach the service here.
        self.control = ControlServer(self.data_dir, self._control)
        self.receiving: SmtpServer | ReceiverPool
        if parts.receive_in_process:
            self.receiving = SmtpServer(
                config.smtp,
                self._accept,
                parts.free_bytes or self.spool.free_bytes,
                on_reject=self.metrics.rejected,
            )
        else:
            self.receiving = ReceiverPool(
                config,
                receiver_count(config.smtp.receivers),
                on_queued=self.worker.submit,
                metrics=self.metrics,
            )
        # Releases recorded in the store are carried out here, by this (the one) service
        # process, beside the worker: a singleton job, never in the receiver processes.
        self.releasing: Releasing | None = None
        if self.store is not None and self._purgeable is not None:
            self.releasing = Releasing(
                self.store,
                self._purgeable,
                self.sanitizer,
                self.spool,
                self.worker.scheduler,
                self.audit,
                config,
                rules=lambda: self.worker.rules,
                notices=DecisionNotices(
                    config, self.store, self.audit, self.worker.bounces.notice_from
                ),
            )
        self._releasing: asyncio.Task[None] | None = None
        # The daily digests and summary: scheduled in serve, once per cluster (DailyDigests).
        self.daily_digests = self._daily_digests(config)
        self._digesting: asyncio.Task[None] | None = None
        self.outbound: OutboundStage | None = None
        self.outbound_receiving: SmtpServer | None = None
        self.outbound_approvals: OutboundApprovals | None = None
        self._approving: asyncio.Task[None] | None = None
        if config.outbound.enabled:
            self._wire_outbound(config, parts)
        # DMARC aggregate reports: this node's days handed in, the cluster's reports sent.
        self.dmarc_reporting = (
            DmarcReporting(
                config,
                self.store,
                self.spool,
                self.worker.scheduler,
                singleton=self._singleton(DMARC_JOB),
            )
            if self.store is not None and tenants_of(config).reports_enabled()
            else None
        )
        self._reporting: asyncio.Task[None] | None = None
        self._audit_retention: asyncio.Task[None] | None = None
        self.address: tuple[str, int] | None = None
        self._warming: asyncio.Task[None] | None = None
        self._purging: asyncio.Task[None] | None = None
        # While the scanner is on: is clamd answering? (a warning at start, a metric)
        self._scanner_health = (
            ScannerHealth(config.scanner, self.metrics) if config.scanner.enabled else None
        )
        self._probing: asyncio.Task[None] | None = None
        self.clock_watch = ClockWatch(parts.clock or TimedatedProbe(), self.metrics)
        self._watching_clock: asyncio.Task[None] | None = None
        # This node's clock against the database's (several nodes: their logs must agree).
        self.node_clock = (
            NodeClock(self.store, config.node, self.node, self.audit)
            if self.store is not None
            else None
        )
        self._checking_node_clock: asyncio.Task[None] | None = None
        # Whether the store answers: while not, receivers answer new mail 451.
        self.store_health = (
            StoreHealth(
                self.store,
                config.store.probe_interval_seconds,
                self.metrics,
                self._store_changed,
            )
            if self.store is not None
            else None
        )
        self._probing_store: asyncio.Task[None] | None = None
        self._flushing: asyncio.Task[None] | None = None

    def _singleton(self, name: str) -> SingletonJob | None:
        """The lock of a job that runs on one node of the cluster (None: no store, one node)."""
        return None if self.singletons is None else self.singletons.job(name)

    def _store_changed(self, up: bool) -> None:
        """The store went away or came back: receivers refuse or accept new mail; when it is
        back, mail that waits to be quarantined is taken up at once and the delivery states
        kept meanwhile are written."""
        self.receiving.set_store_up(up)
        if self.outbound_receiving is not None:
            self.outbound_receiving.set_store_up(up)
        if up:
            resumed = self.worker.scheduler.resume("incoming")
            if resumed:
                log.info("store back: %d message(s) waiting to be quarantined taken up", resumed)
            self._flushing = asyncio.create_task(
                self.worker.bounces.records.flush(), name="mukaika-delivery-records"
            )

    def _wire_outbound(self, config: Config, parts: Parts) -> None:
        """The outbound direction: its listener, stage, relay and approvals job."""
        tenants = tenants_of(config)
        # The relay of each tenant's outbound settings ([tenants.outbound] over [outbound]).
        relays: dict[str, tuple[OutboundSettings, Deliverer, Deliverer]] = {}
        for name in ["", *tenants.by_name]:
            settings = tenants.outbound(name)
            relay = config.delivery.model_copy(
                update={"relay_host": settings.relay_host, "relay_port": settings.relay_port}
            )
            relays[name] = (
                settings,
                Deliverer(relay.model_copy(update={"tls": settings.tls})),
                Deliverer(relay.model_copy(update={"tls": "starttls"})),
            )
        self._outbound_deliverers = tuple(d for _, *pair in relays.values() for d in pair)

        def route(envelope: Envelope) -> Deliverer:
            settings, relaying, strict = relays.get(envelope.tenant, relays[""])
            required = settings.tls == "starttls" or any(
                address_matches(r, settings.require_tls_domains) for r in envelope.rcpt_tos
            )
            return strict if required else relaying

        self.worker.delivering.route = route
        runner: TaskRunner = parts.outbound_runner or (
            self.sanitizer
            if isinstance(self.sanitizer, ProcessSanitizer)
            else InlineSanitizer(config.policy)
        )
        self.outbound = OutboundStage(
            config,
            self.spool,
            self.worker.scheduler,
            self.worker.delivering,
            self.worker.bounces,
            runner=runner,
            quarantine=self.quarantine,
            store=self.store,
            audit=self.audit,
            metrics=self.metrics,
            rules=lambda: self.worker.rules,
        )
        self.worker.outbound = self.outbound.run
        self.outbound_receiving = outbound_listener(
            config,
            self._accept_outbound,
            parts.free_bytes or self.spool.free_bytes,
            on_reject=self.metrics.rejected,
            login=self._outbound_logins(config, parts.password_check),
        )
        if self.store is not None and self._purgeable is not None:
            self.outbound_approvals = OutboundApprovals(
                config,
                self.store,
                self._purgeable,
                self.spool,
                self.worker.scheduler,
                self.audit,
                self.metrics,
                self.outbound.signer,
                self.worker.bounces.notice_from,
                singleton=self._singleton(OUTBOUND_EXPIRY_JOB),
            )

    async def _accept_outbound(self, received: Received) -> str:
        """Spool mail from the outbound listener (direction outbound); then 250."""
        queue_id = await spool_received(self.spool, received, None, direction="outbound")
        self.metrics.outbound(OutboundEvent.RECEIVED)
        self.worker.submit(queue_id)
        return queue_id

    def _open_store(self, config: Config) -> Store:
        """The configured store: migrated first when ``store.migrate_on_start`` is on; a schema
        newer than this program's is refused either way (StoreSchemaError)."""
        if not config.store.migrate_on_start:
            return open_store(config.store, config.quarantine, self.data_dir)
        store, before, moved = migrate_store(config.store, config.quarantine, self.data_dir)
        if before.current != before.head:
            log.info(
                "store %s migrated from schema %s to %s",
                store.where,
                before.current or "(none)",
                before.head,
            )
        if moved:
            log.info(
                "store %s: %d quarantine entries moved in from the old index", store.where, moved
            )
        return store

    async def _purge_audit_forever(self, audit: AuditLog) -> None:
        """Rotated audit files past ``audit.retention_days``, now and with every quarantine
        purge; a failure is logged and tried again next time."""
        while True:
            try:
                removed = await asyncio.to_thread(
                    audit.purge_rotated, self.config.audit.retention_days
                )
            except OSError as exc:
                log.error("audit retention failed: %s", exc)
            else:
                if removed:
                    log.info("audit retention removed %d rotated file(s)", removed)
            await asyncio.sleep(self.config.quarantine.purge_interval_seconds)

    async def _accept(self, received: Received) -> str:
        """Spool a received message durably; only then may SMTP answer 250."""
        queue_id = await spool_received(
            self.spool, received, None, authenticating=self._authenticating
        )
        self.metrics.received()
        self.worker.submit(queue_id)
        return queue_id

    def _daily_digests(self, config: Config) -> DailyDigests | None:
        """serve's daily digest job, when ``digest.enabled`` (the configuration check made
        sure the console has a public address)."""
        if not config.digest.enabled or self.store is None:
            return None
        console = config.console
        key = load_secret_key(secret_key_path(console.secret_key_file, self.data_dir))
        links = digest_links(key, console.public_url, config.digest.link_lifetime_seconds)
        digests = Digests(config, self.store, links, self.audit, self.worker.bounces.notice_from)
        singleton = self._singleton(DIGEST_JOB)
        return DailyDigests(digests) if singleton is None else DailyDigests(digests, singleton.held)

    def _outbound_logins(
        self, config: Config, check: PasswordCheck | None
    ) -> OutboundLogins | None:
        """The outbound listener's SMTP AUTH (``[outbound] auth``); it needs the store and the
        password hasher, and the service does not start without them (fail closed)."""
        if not config.outbound.auth:
            return None
        if self.store is None or check is None:
            raise RuntimeError("outbound.auth needs the store and the console's password hasher")
        return OutboundLogins(self.store, config.outbound, check)

    def _unlock_links(self, config: Config) -> UnlockLinks | None:
        """The signer of the PPAP links in held notices, when the console has a public
        address (the key is created on first use; check-config refused an unusable one)."""
        console = config.console
        if not console.public_url:
            return None
        key = load_secret_key(secret_key_path(console.secret_key_file, self.data_dir))
        return UnlockLinks(key, console.public_url, console.link_lifetime_seconds)

    async def _control(
        self, command: str, reference: str, passwords: tuple[str, ...], actor: str
    ) -> dict[str, Any]:
        """A request on the control socket: ``unlock`` with the password lines sent;
        ``cancel`` (an outbound mail in its delay) and ``waiting`` (a sender's mail in its
        delay) with the sender's addresses as the lines."""
        if command == "cancel":
            return await self._cancel(reference, passwords, actor)
        if command == "waiting":
            if self.outbound is None:
                return {"result": "bad_request", "message": "[outbound] is off"}
            return {"result": "ok", "mail": await self.outbound.waiting(passwords)}
        unlocking = self.worker.unlocking
        if command != "unlock" or unlocking is None:
            return {"result": "bad_request"}
        limit = self.config.policy.cdr.max_passwords
        answer = await unlocking.unlock(reference, passwords[:limit], actor=actor)
        return answer.to_dict()

    async def _cancel(self, queue_id: str, lines: tuple[str, ...], actor: str) -> dict[str, Any]:
        """``cancel``: an outbound mail in its delay, for the sender named on the first line."""
        if self.outbound is None:
            return {"result": "bad_request", "message": "[outbound] is off"}
        if not is_queue_id(queue_id) or not lines:
            return {"result": "not_found", "message": "no such outbound mail"}
        try:
            return await self.outbound.cancel(queue_id, lines[0], actor)
        except CancelError as exc:
            return {"result": exc.result, "message": str(exc)}

    def reload(self, config: Config) -> list[str]:
        """Apply ``config`` (already validated) to what can change while running: the policy
        and the rules, used for every message sanitized from now on. Listeners, sessions and
        work in flight are untouched. Returns the dotted keys of the other settings that differ:
        they need a restart and are not applied."""
        needs_restart = _changed_keys(self.config, config, ignore=HOT_RELOADABLE)
        # A tenant's policy and rules apply at once; its name, domains, MTA, outbound or auth
        # only after a restart (until then the running tenants stay whole).
        tenants = config.tenants
        if [_route(t) for t in tenants] != [_route(t) for t in self.config.tenants]:
            tenants = self.config.tenants
        else:
            needs_restart = [key for key in needs_restart if key != "tenants"]
        rules = rule_set(config.model_copy(update={"tenants": tenants}))
        self.worker.rules = rules
        if isinstance(self.sanitizer, ProcessSanitizer):
            self.sanitizer.policy = config.policy
        self.config = self.config.model_copy(
            update={"policy": config.policy, "rules": config.rules, "tenants": tenants}
        )
        self._report_expired(rules)
        log.info("configuration reloaded: %d rule(s)", len(config.rules))
        return needs_restart

    def _report_expired(self, rules: RuleSet) -> None:
        expired = rules.expired()
        self.metrics.set_expired_exceptions(len(expired))
        for rule in expired:
            log.warning(
                "exception %r expired on %s: it is not applied (mukaika check-config lists it)",
                rule.name,
                rule.expires,
            )

    async def start(self) -> tuple[str, int]:
        if self.node_clock is not None:  # ClockOffsetError: not started
            await asyncio.to_thread(self.node_clock.check_at_start)
            self._checking_node_clock = asyncio.create_task(
                self.node_clock.run_forever(), name="mukaika-node-clock"
            )
        if self.store_health is not None:
            self._probing_store = asyncio.create_task(
                self.store_health.run(), name="mukaika-store-probe"
            )
        if self.worker.rules is not None:
            self._report_expired(self.worker.rules)
        warm = getattr(self.sanitizer, "warm", None)
        if warm is not None:
            self._warming = asyncio.create_task(warm(), name="mukaika-warm-pool")
        if self._scanner_health is not None:
            self._probing = asyncio.create_task(
                self._scanner_health.run(), name="mukaika-scanner-probe"
            )
        self._watching_clock = asyncio.create_task(
            self.clock_watch.run_forever(), name="mukaika-clock"
        )
        if self._purgeable is not None:
            interval = self.config.quarantine.purge_interval_seconds
            self._purging = asyncio.create_task(
                self._purgeable.purge_forever(interval, singleton=self._singleton(PURGE_JOB)),
                name="mukaika-quarantine-purge",
            )
        if self._own_audit is not None and self.config.audit.retention_days > 0:
            self._audit_retention = asyncio.create_task(
                self._purge_audit_forever(self._own_audit), name="mukaika-audit-retention"
            )
        await self.worker.start()
        await self.control.start()
        if self.releasing is not None:
            self._releasing = asyncio.create_task(
                self.releasing.run_forever(), name="mukaika-release"
            )
        if self.dmarc_reporting is not None:
            self._reporting = asyncio.create_task(
                self.dmarc_reporting.run_forever(), name="mukaika-dmarc-reports"
            )
        if self.daily_digests is not None:
            self._digesting = asyncio.create_task(
                self.daily_digests.run_forever(), name="mukaika-digest"
            )
        if self.outbound_approvals is not None:
            self._approving = asyncio.create_task(
                self.outbound_approvals.run_forever(), name="mukaika-outbound-approvals"
            )
        if self.outbound_receiving is not None:
            self.outbound_address = await self.outbound_receiving.start()
            log.info(
                "outbound: listening on %s:%d, relaying to %s:%d",
                *self.outbound_address,
                self.config.outbound.relay_host,
                self.config.outbound.relay_port,
            )
        self.address = await self.receiving.start()
        log.info(
            "listening on %s:%d, relaying to %s:%d",
            *self.address,
            self.deliverer.host,
            self.deliverer.port,
        )
        return self.address

    async def stop(self) -> None:
        grace = self.config.service.shutdown_grace_seconds
        log.info("stopping: new sessions get 421; %.0fs grace for work in flight", grace)
        if self.outbound_receiving is not None:
            await asyncio.gather(self.receiving.drain(grace), self.outbound_receiving.drain(grace))
        else:
            await self.receiving.drain(grace)
        await self.control.close()
        if self._releasing is not None:
            # A release cut short stays approved in the store and is carried out next start.
            self._releasing.cancel()
            await asyncio.gather(self._releasing, return_exceptions=True)
        await self.worker.stop(grace)
        for task in (
            self._digesting,
            self._approving,
            self._reporting,
            self._warming,
            self._purging,
            self._probing,
            self._watching_clock,
            self._checking_node_clock,
            self._probing_store,
            self._flushing,
            self._audit_retention,
        ):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        await self.deliverer.close()
        for deliverer in (*self.tenant_deliverers.values(), *self._outbound_deliverers):
            await deliverer.close()
        await asyncio.to_thread(self.sanitizer.close)
        for close in reversed(self._owned):
            close()
        self._owned.clear()
        log.info("stopped")


# Sections a reload applies; everything else needs a restart.
HOT_RELOADABLE = frozenset({"policy", "rules"})


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _route(tenant: Tenant) -> tuple[Any, ...]:
    """What of a tenant needs a restart to change: all but its policy and rules."""
    return (*tenant.model_dump(exclude={"policy", "rules"}).items(),)


def _changed_keys(old: Config, new: Config, *, ignore: frozenset[str]) -> list[str]:
    """Dotted keys whose values differ, outside the top-level sections in ``ignore``."""
    before = _flatten(old.model_dump(mode="json", exclude=set(ignore)))
    after = _flatten(new.model_dump(mode="json", exclude=set(ignore)))
    return sorted(key for key in set(before) | set(after) if before.get(key) != after.get(key))
