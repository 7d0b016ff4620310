"""From a received transaction to a durable spool entry: the step before the SMTP ``250``.

Shared by the gateway process (receiving in its own event loop) and each receiving process
(:mod:`gateway.service.receiver`), so a message is spooled one way wherever it came in.

With ``[auth]`` on, sender authentication (:mod:`gateway.senderauth`) is evaluated here,
before the message is spooled, within ``auth.timeout_seconds``: a "reject" is answered
``550 5.7.1`` (``451 4.7.0`` when only a DNS failure led to it, or when the evaluation did not
finish in time while a "reject" was possible), so no bounce ever goes to a forged sender; any
other outcome goes into the envelope and reaches the pipeline as data. A DNS outage gives
temperror results (the resolver's share of the time ends first) and ``auth.temperror_action``
applies.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import Executor
from pathlib import Path

from gateway.configuration.config import Config, tenants_of
from gateway.queue.spool import Envelope, Spool, new_queue_id
from gateway.receiving.smtp import REPLY_AUTH_REJECT, REPLY_AUTH_TEMPORARY, Received, Refused
from gateway.senderauth.evaluate import (
    Authenticator,
    Evaluation,
    Transaction,
    authenticator_for,
)
from gateway.senderauth.reports import Recorder
from sanitizers.senderauth import AuthAction, AuthOutcome

log = logging.getLogger("mukaika.service")


class Authenticating:
    """Sender authentication at the end of DATA, within ``auth.timeout_seconds``; each DMARC
    evaluation is recorded for the aggregate reports when ``recorder`` is given."""

    def __init__(
        self,
        authenticator: Authenticator,
        recorder: Recorder | None = None,
        tenant_of: Callable[[str], str] | None = None,
    ) -> None:
        self.authenticator = authenticator
        self.recorder = recorder
        # The tenant of a recipient: each evaluation is recorded for each tenant it concerns.
        self.tenant_of = tenant_of

    async def check(self, received: Received) -> AuthOutcome:
        """The outcome for ``received``; raises :class:`Refused` for a "reject"."""
        settings = self.authenticator.settings
        transaction = Transaction(received.client, received.helo, received.mail_from)
        try:
            evaluation = await asyncio.wait_for(
                asyncio.to_thread(self.authenticator.evaluate, received.untrusted_raw, transaction),
                settings.timeout_seconds,
            )
        except TimeoutError:
            log.warning("sender authentication of a message from %s timed out", received.client)
            if AuthAction.REJECT in settings.actions():
                raise Refused(REPLY_AUTH_TEMPORARY) from None
            evaluation = Evaluation(self.authenticator.timed_out())
        outcome = evaluation.outcome
        if self.recorder is not None:
            tenants = tuple(
                dict.fromkeys(
                    self.tenant_of(r) if self.tenant_of else "" for r in received.rcpt_tos
                )
            )
            await asyncio.to_thread(
                self.recorder.record, evaluation, transaction, outcome.action, tenants or ("",)
            )
        if outcome.action is AuthAction.REJECT:
            raise Refused(REPLY_AUTH_TEMPORARY if outcome.temporary else REPLY_AUTH_REJECT)
        return outcome


def authenticating_for(config: Config) -> Authenticating | None:
    """Sender authentication as ``config`` asks (None when ``[auth]`` is off), recording
    each DMARC evaluation when ``auth.reports.enabled``."""
    authenticator = authenticator_for(config)
    if authenticator is None:
        return None
    recorder = None
    tenants = tenants_of(config)
    if tenants.reports_enabled():
        recorder = Recorder(Path(config.service.data_dir) / "dmarc")
    return Authenticating(authenticator, recorder, tenants.tenant_of if tenants else None)


async def spool_received(
    spool: Spool,
    received: Received,
    executor: Executor | None,
    direction: str = "inbound",
    authenticating: Authenticating | None = None,
) -> str:
    """Write ``received`` into ``incoming/`` and return its queue id once it is durable (its
    file and the directory fsynced); the disk work runs on ``executor`` (None: asyncio's).
    ``direction``: which listener took it (``outbound``: the LGWAN side's outbound port).
    With ``authenticating`` (inbound mail only), sender authentication runs first (it may
    refuse)."""
    auth = None if authenticating is None else await authenticating.check(received)
    envelope = Envelope(
        queue_id=new_queue_id(),
        mail_from=received.mail_from,
        rcpt_tos=received.rcpt_tos,
        client=received.client,
        helo=received.helo,
        received_at=time.time(),
        size=len(received.untrusted_raw),
        auth=None if auth is None else auth.to_dict(),
        direction=direction,
    )
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(executor, spool.accept, envelope, received.untrusted_raw)
    log.info(
        "%s accepted (%s) from %s, %d bytes, %d recipient(s)",
        envelope.queue_id,
        direction,
        received.client,
        envelope.size,
        len(envelope.rcpt_tos),
    )
    return envelope.queue_id
