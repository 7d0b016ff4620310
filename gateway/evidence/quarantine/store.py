"""The quarantine: every original message, kept on the Internet side as evidence.

Intent
------
Before a message is sanitized, the worker hands the untouched original to :class:`Quarantine`.
It is stored compressed (gzip, see below) next to its SHA-256, and indexed in the store
(:mod:`gateway.store`, the ``messages`` table) with the
envelope, the decoded From/Subject, the verdict, the reason codes and the delivery state, so an
operator can find, inspect, export and (after review) release it. Originals are purged after a
configurable retention.

Durability (DESIGN.md rule 3)
-----------------------------
The file is durable (:mod:`.files`) before its index row is inserted (:mod:`.index`), so a
crash leaves at worst a file without a row, removed by :meth:`Quarantine.purge` once past
retention, never a row without its file. Storing the same queue id with the same content twice
returns the first id: a worker that restarts after a crash does not create a duplicate.

Compression choice (measured on this host with stdlib codecs, one core)
----------------------------------------------------------------------
Set A, 114 ``.eml`` files from the corpus (13 MB, a few large attachments), ratio and
compress / decompress speed: gzip -1 0.288, 69 / 208 MB/s; gzip -6 0.275, 44 / 257 MB/s;
gzip -9 0.274, 30 MB/s; lzma -0 0.280, 18 / 50 MB/s; lzma -6 0.265, 4 / 36 MB/s.
Set B, 245 mails of 3 KB-2 MB (17 MB): gzip -1 0.443, 56 / 192 MB/s; gzip -6 0.407,
39 / 236 MB/s; gzip -9 0.406, 27 MB/s; lzma -0 0.411, 13 MB/s; lzma -6 0.387, 4 MB/s.
Mail is mostly base64, which none of them shrinks far below 3/4. At the target rate
(about 1,000 mails of 29 KB a second, ~29 MB/s on two cores) gzip -1 costs half a core,
gzip -6 three quarters, lzma several cores; the extra 3-8 % of disk is cheaper. So the default
is gzip level 1 (``compression_level`` raises it). Gzip also carries its own CRC-32, and every
operator can read a file with ``zcat``.

Retention and held mail
-----------------------
Every entry is purged once its ``received_at`` is older than the retention, whatever its state,
so the disk stays bounded. Held mail may be given a longer retention
(``held_retention_days``); to keep one message for longer, export it. Purging never touches the
spool: the quarantine is evidence, not the delivery queue.

Threat model: the stored bytes are hostile and never parsed here (:mod:`.files`); the
strings of an entry are untrusted text (:mod:`.entries`). The methods are safe from several
threads and processes (:mod:`.index`); they block on fsync, so the service calls them through
``asyncio.to_thread``.

The parts: :mod:`.entries` (what is recorded, settings, errors), :mod:`.files` (the
compressed originals on disk), :mod:`.index` (the rows in the store); this module puts them
together.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from gateway.configuration.settings import OriginalsPlace, QuarantineSettings
from gateway.evidence.quarantine.entries import (
    DELIVERY_STATES,
    MAX_LIST_LIMIT,
    MAX_RECIPIENTS,
    QuarantineElsewhereError,
    QuarantineError,
    QuarantineIntegrityError,
    QuarantineNotFoundError,
    QuarantineStoreError,
    clean_optional,
    clean_text,
    require_utc,
)
from gateway.evidence.quarantine.files import (
    STALE_TEMP_SECONDS,
    OriginalFiles,
    Originals,
    export_file,
)
from gateway.evidence.quarantine.index import QuarantineIndex
from gateway.evidence.quarantine.stored import StoredOriginals
from gateway.store import Store, StoreError
from gateway.store.singleton import SingletonJob
from sanitizers.report import Report
from sanitizers.vocabulary import MessageState

log = logging.getLogger("mukaika.quarantine")

# Rows purged per transaction, so a large purge never holds the write lock for long.
PURGE_BATCH = 500


class Quarantine:
    """The originals and their index in the store. See the module docstring. The store is the
    caller's: closing the quarantine leaves it open."""

    def __init__(
        self,
        directory: Path,
        retention_days: float = 90.0,
        *,
        store: Store,
        held_retention_days: float | None = None,
        compression_level: int = 1,
        node: str = "",
        originals: OriginalsPlace = "database",
    ) -> None:
        if retention_days <= 0:
            raise ValueError("retention_days must be positive")
        if held_retention_days is not None and held_retention_days <= 0:
            raise ValueError("held_retention_days must be positive")
        self.directory = Path(directory)
        self.retention = timedelta(days=retention_days)
        self.held_retention = (
            self.retention if held_retention_days is None else timedelta(days=held_retention_days)
        )
        # Where originals are kept (gateway.evidence.quarantine.files.Originals): each entry
        # says which place holds its own (kept_in); new ones go to ``originals``.
        self.files = OriginalFiles(self.directory, compression_level)
        self.places: dict[str, Originals] = {
            "database": StoredOriginals(store, compression_level),
            "directory": self.files,
        }
        self.kept_in: OriginalsPlace = originals
        self.originals = self.places[originals]
        self.index = QuarantineIndex(store, node)
        # Reading entries needs only the index: get(qid), list(filters...), count().
        self.get = self.index.get
        self.list = self.index.list
        self.count = self.index.count
        self.files.clean_temp_files()

    @classmethod
    def from_settings(
        cls, settings: QuarantineSettings, data_dir: Path, store: Store, node: str = ""
    ) -> Quarantine:
        """Open the quarantine that ``settings`` describe under ``data_dir``, indexed in
        ``store``; entries it stores name ``node``."""
        return cls(
            settings.resolve_directory(data_dir),
            settings.retention_days,
            store=store,
            held_retention_days=settings.held_retention_days or None,
            compression_level=settings.compression_level,
            node=node,
            originals=settings.originals,
        )

    # -- life cycle ------------------------------------------------------------------------

    def close(self) -> None:
        """Nothing to release (the store is the caller's); kept so ``with`` reads well."""

    def __enter__(self) -> Quarantine:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def path_of(self, qid: str) -> Path:
        """The compressed file of an entry (for operators; read it with :meth:`read_original`)."""
        if self.get(qid).kept_in != "directory":
            raise QuarantineError(f"{qid}: the original is kept in the database, not as a file")
        return self.files.path(qid)

    def where_kept(self, qid: str) -> str:
        """Where an entry's original is, for operators: its file, or the database."""
        entry = self.get(qid)
        if entry.kept_in == "directory":
            return str(self.files.path(qid))
        return f"{entry.kept_in} ({self.index.store.where})"

    # -- writing ---------------------------------------------------------------------------

    def store(
        self,
        queue_id: str,
        untrusted_raw: bytes,
        *,
        client: str,
        helo: str,
        mail_from: str,
        rcpt_to: Sequence[str],
        received_at: datetime,
        tenant: str = "",
    ) -> str:
        """Keep the original durably and index it (under ``tenant``); return its quarantine id.

        Blocking (compression and two fsyncs): call it from a thread in asyncio code. Raises
        :class:`QuarantineStoreError` (an ``OSError``) when the disk refuses; then no file and
        no row are left. Storing the same ``queue_id`` with the same bytes again returns the
        existing id.
        """
        received_at = require_utc(received_at, "received_at")
        digest = hashlib.sha256(untrusted_raw).hexdigest()
        queue_id = clean_text(queue_id)
        for existing in self.index.ids_of(queue_id, digest):
            if self.places[self.get(existing).kept_in].exists(existing):
                return existing
        qid = self.originals.new_id(received_at)
        stored_size = self.originals.write(qid, untrusted_raw, queue_id)
        try:
            self.index.insert(
                qid,
                queue_id,
                received_at,
                client=clean_text(client),
                helo=clean_text(helo),
                mail_from=clean_text(mail_from),
                rcpt_to=[clean_text(r) for r in list(rcpt_to)[:MAX_RECIPIENTS]],
                size=len(untrusted_raw),
                stored_size=stored_size,
                sha256=digest,
                kept_in=self.kept_in,
                tenant=tenant,
            )
        except StoreError as exc:
            with contextlib.suppress(OSError, StoreError):  # else the purge removes it later
                self.originals.remove(qid)
            raise QuarantineStoreError(
                exc.errno, f"cannot index queue id {queue_id} in the quarantine: {exc}"
            ) from exc
        return qid

    def record_result(self, qid: str, report: Report) -> None:
        """Record the verdict, every reason code and the decoded From/Subject/Message-ID."""
        reasons = sorted(str(code) for code in report.reason_codes())
        self.index.update(
            qid,
            verdict=str(report.verdict),
            reasons=json.dumps(reasons),
            from_=clean_optional(report.from_),
            subject=clean_optional(report.subject),
            message_id=clean_optional(report.message_id),
            **({"auth": json.dumps(report.auth)} if report.auth is not None else {}),
        )

    def record_delivery(self, qid: str, state: MessageState) -> None:
        """Record the delivery state (queued, delivered, deferred, held, dead), unless the
        held-mail workflow owns the entry's state."""
        if state not in DELIVERY_STATES:
            raise ValueError(
                f"unknown delivery state {state!r}; expected one of {sorted(DELIVERY_STATES)}"
            )
        self.index.record_delivery(qid, state)

    def count_unlock_attempt(self, qid: str, limit: int) -> int | None:
        """Record one more unlock attempt (its number, never a password); ``None`` when
        ``limit`` attempts were made already and this one must not run."""
        return self.index.count_attempt(qid, limit)

    def transition(self, qid: str, expected: MessageState, state: MessageState) -> bool:
        """A workflow step (e.g. ``awaiting_password`` to ``released``): whether the entry was
        in ``expected`` and moved."""
        return self.index.transition(qid, expected, state)

    # -- reading ---------------------------------------------------------------------------

    def verify(self, *, limit: int = MAX_LIST_LIMIT) -> Iterator[tuple[str, str | None]]:
        """Check stored originals, oldest first: yield ``(id, None)`` or ``(id, problem)``;
        with several nodes, those on this node's disk."""
        offset = 0
        checked = 0
        while checked < limit:
            ids = self.index.oldest_first(offset, min(PURGE_BATCH, limit - checked))
            if not ids:
                return
            offset += len(ids)
            for qid in ids:
                checked += 1
                try:
                    self.read_original(qid)
                except QuarantineNotFoundError:
                    continue  # purged meanwhile
                except QuarantineIntegrityError as exc:
                    yield qid, str(exc)
                else:
                    yield qid, None

    def read_original(self, qid: str) -> bytes:
        """The original bytes, verified against the recorded size and SHA-256.

        Raises :class:`QuarantineNotFoundError` for an unknown id and
        :class:`QuarantineIntegrityError` when the file is missing, corrupt or altered.
        """
        entry = self.get(qid)
        node = self.index.node
        if entry.kept_in == "directory" and node and entry.node and entry.node != node:
            raise QuarantineElsewhereError(qid, entry.node)
        return self.places[entry.kept_in].read(qid, entry.size, entry.sha256)

    def export(self, qid: str, out_path: Path, *, overwrite: bool = False) -> int:
        """Write the verified original to ``out_path`` (mode 0600, atomically); return its size.

        An existing file is refused unless ``overwrite`` is set.
        """
        return export_file(self.read_original(qid), Path(out_path), overwrite=overwrite)

    # -- retention -------------------------------------------------------------------------

    def purge(self, now: datetime, *, dry_run: bool = False) -> int:
        """Remove entries (original and row) past retention at ``now``; return how many.

        Also removes what crashes left behind: pieces in the database and files of this node's
        directory whose row is gone (for days past retention), and stale temp files. With
        ``dry_run`` nothing is removed and the count is what would be. With several nodes one
        node purges for the cluster (:meth:`purge_forever`); a file on another node's disk
        whose row it removed is that node's :meth:`tidy_directory`'s to delete.
        """
        now = require_utc(now, "now")
        cutoff, held_cutoff = now - self.retention, now - self.held_retention
        if dry_run:
            return self.index.count_expired(cutoff, held_cutoff)
        removed = 0
        while expired := self.index.expired(cutoff, held_cutoff, PURGE_BATCH):
            # Original first, then row: a crash in between leaves a row whose original is
            # gone, which the next purge removes; never an original nobody knows about.
            for qid, kept_in in expired:
                self.places[kept_in].remove(qid)
            self.index.delete([qid for qid, _ in expired])
            removed += len(expired)
        self.places["database"].remove_orphans(min(cutoff, held_cutoff), self.index.knows)
        self.tidy_directory(now)
        return removed

    def tidy_directory(self, now: datetime) -> None:
        """This node's part of a purge: files whose row is gone (for days past retention) and
        stale temp files in its directory."""
        oldest_kept = require_utc(now, "now") - max(self.retention, self.held_retention)
        self.files.remove_orphans(oldest_kept, self.index.knows)
        self.files.clean_temp_files()

    async def purge_forever(
        self,
        interval_seconds: float,
        *,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        singleton: SingletonJob | None = None,
    ) -> None:
        """Run :meth:`purge` now and then every ``interval_seconds`` until cancelled.

        With ``singleton`` (several nodes on one store), only the node holding the job's lock
        purges; the others tidy their own directory (:meth:`tidy_directory`). A failed purge is
        logged and retried next time; it never ends the loop.
        """
        while True:
            try:
                if singleton is None or await singleton.held():
                    removed = await asyncio.to_thread(self.purge, now())
                else:
                    removed = 0
                    await asyncio.to_thread(self.tidy_directory, now())
            except (OSError, StoreError, QuarantineError) as exc:
                log.error("quarantine purge failed: %s: %s", type(exc).__name__, exc)
            else:
                if removed:
                    log.info("quarantine purge removed %d message(s) past retention", removed)
            await asyncio.sleep(interval_seconds)

    def clean_temp_files(self, *, older_than: float = STALE_TEMP_SECONDS) -> int:
        """Delete abandoned temp files (older than ``older_than`` seconds); return how many."""
        return self.files.clean_temp_files(older_than=older_than)
