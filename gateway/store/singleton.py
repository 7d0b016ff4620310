"""Jobs that run once across the cluster: the node that holds a job's advisory lock runs it.

Intent
------
Several ``mukaika serve`` nodes on one PostgreSQL each run the same periodic jobs; a job that
must happen once for the cluster (the quarantine purge, expiry of held outbound mail, the
digests) asks :meth:`SingletonJob.held` before each round. The first node to ask takes the
job's session-level advisory lock on a connection of its own (outside the pool, in autocommit,
never idle in a transaction) and keeps it while that connection lives: the job then stays on
that node, round after round. When the node dies, or its connection breaks (the database
restarted or failed over), PostgreSQL drops the lock and the next node that asks takes the job
over: no operator action, no lease to expire. On SQLite the store belongs to one node: every job
is held.

The jobs themselves stay idempotent: a round cut short when the lock is lost mid-round may be
repeated by the next holder, never skipped.

Threat model: the job names are the program's own (never input); a lock key is derived from the
name, in a key space of its own (PostgreSQL's two-integer form) beside the migration lock.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import zlib
from typing import Final

from sqlalchemy import Connection, text
from sqlalchemy.exc import SQLAlchemyError

from gateway.store.database import Store, StoreError

log = logging.getLogger("mukaika.singleton")

# The first half of every job's lock key ("muka" in ASCII); the second is the name's CRC-32.
LOCK_CLASS: Final = 0x6D756B61

# The singleton jobs of serve (each name is its lock and appears in the log line of the node
# that takes it): the quarantine purge (retention, held mail's longer retention included), and
# the expiry of held outbound mail with its denial notices, the daily digests and summary, and
# the sending of the DMARC aggregate reports (each node still hands in its own records).
PURGE_JOB: Final = "quarantine-purge"
OUTBOUND_EXPIRY_JOB: Final = "outbound-expiry"
DIGEST_JOB: Final = "daily-digests"
DMARC_JOB: Final = "dmarc-reports"


def lock_key(name: str) -> tuple[int, int]:
    """The two 32-bit signed integers of ``name``'s advisory lock."""
    objid = zlib.crc32(name.encode())
    return LOCK_CLASS, objid - (1 << 32) if objid >= 1 << 31 else objid


class SingletonLocks:
    """The advisory locks of one process, all on one connection of its own. Thread-safe."""

    def __init__(self, store: Store, node: str) -> None:
        self.store = store
        self.node = node
        self._connection: Connection | None = None
        self._held: set[str] = set()
        self._mutex = threading.Lock()

    def job(self, name: str) -> SingletonJob:
        return SingletonJob(self, name)

    def hold(self, name: str) -> bool:
        """Whether this process holds (now, or from before) the lock of job ``name``; False
        while the database does not answer. Blocking: call it from a thread."""
        if self.store.dialect != "postgresql":
            return True
        with self._mutex:
            try:
                return self._hold(name)
            except (SQLAlchemyError, StoreError) as exc:
                if self._held:
                    log.warning(
                        "node %s lost its singleton jobs (%s): %s",
                        self.node,
                        ", ".join(sorted(self._held)),
                        exc,
                    )
                self._drop()
                return False

    def _hold(self, name: str) -> bool:
        if self._connection is None:
            self._connection = self.store.lone_connection()
        elif self._held:
            self._connection.execute(text("SELECT 1"))  # still the session that holds them
        if name in self._held:
            return True
        classid, objid = lock_key(name)
        taken = self._connection.scalar(
            text("SELECT pg_try_advisory_lock(:classid, :objid)"),
            {"classid": classid, "objid": objid},
        )
        if taken:
            self._held.add(name)
            log.info("node %s runs the singleton job %s", self.node, name)
        return bool(taken)

    def _drop(self) -> None:
        if self._connection is not None:
            try:
                self._connection.close()
            except SQLAlchemyError as exc:  # a broken connection may fail to close cleanly
                log.debug("closing the singleton connection: %s", exc)
        self._connection = None
        self._held.clear()

    def close(self) -> None:
        """Give every job up now (not only when the server notices the connection's end)."""
        with self._mutex:
            if self._connection is not None and self._held:
                try:
                    self._connection.execute(text("SELECT pg_advisory_unlock_all()"))
                except SQLAlchemyError as exc:  # gone already: so are its locks
                    log.debug("releasing the singleton jobs: %s", exc)
            self._drop()


class SingletonJob:
    """One job's lock: ask :meth:`held` before each round."""

    def __init__(self, locks: SingletonLocks, name: str) -> None:
        self.locks = locks
        self.name = name

    async def held(self) -> bool:
        """Whether this node runs the job's next round."""
        return await asyncio.to_thread(self.locks.hold, self.name)
