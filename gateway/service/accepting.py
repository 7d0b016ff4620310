"""From a received transaction to a durable spool entry: the step before the SMTP ``250``.

Shared by the gateway process (receiving in its own event loop) and each receiving process
(:mod:`gateway.service.receiver`), so a message is spooled one way wherever it came in.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import Executor

from gateway.queue.spool import Envelope, Spool, new_queue_id
from gateway.receiving.smtp import Received

log = logging.getLogger("mukaika.service")


async def spool_received(
    spool: Spool, received: Received, executor: Executor | None, direction: str = "inbound"
) -> str:
    """Write ``received`` into ``incoming/`` and return its queue id once it is durable (its
    file and the directory fsynced); the disk work runs on ``executor`` (None: asyncio's).
    ``direction``: which listener took it (``outbound``: the LGWAN side's outbound port)."""
    envelope = Envelope(
        queue_id=new_queue_id(),
        mail_from=received.mail_from,
        rcpt_tos=received.rcpt_tos,
        client=received.client,
        helo=received.helo,
        received_at=time.time(),
        size=len(received.untrusted_raw),
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
