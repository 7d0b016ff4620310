"""The originals kept in the store: each original's gzip stream in pieces (``original_chunks``).

:class:`StoredOriginals` is the :class:`~.files.Originals` of ``quarantine.originals =
"database"`` (the default): every node and console reads every original, ``mukaika store
copy`` and a database backup carry them, and the purge of the cluster removes them in one job.

Bounded: an original is compressed piece by piece and written as pieces of at most
:data:`CHUNK_BYTES`, all in one transaction (so a crash leaves either every piece or none).
Reading streams the pieces in order and decompresses them incrementally, so neither the
compressed form nor the database's copy of it is ever held whole beside the original; the
original itself is limited by ``limits.max_message_bytes`` before it reaches the quarantine.

Threat model: the bytes are hostile and never parsed here (as in :mod:`.files`). Reading
decompresses at most one byte more than the recorded size and checks the size and the SHA-256,
so altered pieces are detected and cannot be a decompression bomb.
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
import zlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import Connection, CursorResult, delete, func, insert, select

from gateway.evidence.quarantine.entries import (
    QuarantineIntegrityError,
    QuarantineStoreError,
    is_valid_id,
)
from gateway.store import Store, StoreError
from gateway.store.schema import messages, original_chunks

# The largest piece of one original's gzip stream in one row.
CHUNK_BYTES: Final = 1024 * 1024
# zlib's window bits for the gzip format (the same stream an on-disk original holds).
GZIP_WBITS: Final = 31
# Ids of chunk-only originals (no index row) removed per transaction by a purge.
ORPHAN_BATCH: Final = 500


def gzip_pieces(data: bytes, level: int) -> Iterator[bytes]:
    """``data`` as a gzip stream (mtime 0, no file name), in pieces of at most CHUNK_BYTES."""
    packer = zlib.compressobj(level, zlib.DEFLATED, GZIP_WBITS)
    pending = bytearray()
    view = memoryview(data)
    for start in range(0, len(view), CHUNK_BYTES):
        pending += packer.compress(view[start : start + CHUNK_BYTES])
        while len(pending) >= CHUNK_BYTES:
            yield bytes(pending[:CHUNK_BYTES])
            del pending[:CHUNK_BYTES]
    pending += packer.flush()
    for start in range(0, len(pending), CHUNK_BYTES):
        yield bytes(pending[start : start + CHUNK_BYTES])


class StoredOriginals:
    """The compressed originals in the store's ``original_chunks`` table."""

    def __init__(self, store: Store, compression_level: int = 1) -> None:
        if not 1 <= compression_level <= 9:
            raise ValueError("compression_level must be between 1 and 9")
        self.store = store
        self.compression_level = compression_level

    def new_id(self, received_at: datetime) -> str:
        """A fresh id: the receive time (UTC) and 48 random bits (the index's primary key
        refuses the practically impossible repeat)."""
        stamp = received_at.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
        return f"{stamp}-{secrets.token_hex(6)}"

    def exists(self, qid: str) -> bool:
        query = select(original_chunks.c.seq).where(original_chunks.c.id == qid).limit(1)
        with self.store.reading() as db:
            return db.execute(query).first() is not None

    def write(self, qid: str, untrusted_raw: bytes, queue_id: str) -> int:
        """Store ``untrusted_raw`` as ``qid`` in one transaction; return the compressed size.

        Raises :class:`QuarantineStoreError` (an ``OSError``) when the store refuses; then
        nothing is left behind."""
        if not is_valid_id(qid):
            raise ValueError(f"not a quarantine id: {qid!r}")
        stored = 0
        try:
            with self.store.writing() as db:
                for seq, piece in enumerate(gzip_pieces(untrusted_raw, self.compression_level)):
                    db.execute(insert(original_chunks).values(id=qid, seq=seq, data=piece))
                    stored += len(piece)
        except StoreError as exc:
            raise QuarantineStoreError(
                exc.errno, f"cannot store queue id {queue_id} in the quarantine: {exc}"
            ) from exc
        return stored

    def read(self, qid: str, size: int, sha256: str) -> bytes:
        """The original, verified against its recorded ``size`` and ``sha256``."""
        unpacker = zlib.decompressobj(GZIP_WBITS)
        data = bytearray()
        found = False
        try:
            with self.store.reading() as db, contextlib.closing(_pieces(db, qid)) as pieces:
                for row in pieces:
                    found = True
                    pending = bytes(row.data)
                    while pending and not unpacker.eof:
                        data += unpacker.decompress(pending, size + 1 - len(data))
                        if len(data) > size:  # bounded: altered pieces are no bomb
                            raise _altered(qid)
                        pending = unpacker.unconsumed_tail
        except zlib.error as exc:
            raise QuarantineIntegrityError(
                f"{qid}: the stored original is unreadable: {exc}"
            ) from exc
        if not found:
            raise QuarantineIntegrityError(f"{qid}: the stored original is missing")
        if not unpacker.eof or len(data) != size or hashlib.sha256(data).hexdigest() != sha256:
            raise _altered(qid)
        return bytes(data)

    def remove(self, qid: str) -> None:
        with self.store.writing() as db:
            db.execute(delete(original_chunks).where(original_chunks.c.id == qid))

    def remove_orphans(self, oldest_kept: datetime, indexed: Callable[[str], bool]) -> None:
        """Delete pieces of originals without an index row, received before ``oldest_kept``
        (a crash between writing the pieces and inserting the row)."""
        cutoff = oldest_kept.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
        orphans = (
            select(original_chunks.c.id)
            .outerjoin(messages, messages.c.id == original_chunks.c.id)
            .where(messages.c.id.is_(None), original_chunks.c.id < cutoff)
            .group_by(original_chunks.c.id)
            .limit(ORPHAN_BATCH)
        )
        while True:
            with self.store.writing() as db:
                ids = [qid for qid in db.scalars(orphans) if not indexed(qid)]
                if not ids:
                    return
                db.execute(delete(original_chunks).where(original_chunks.c.id.in_(ids)))

    def clean_temp_files(self, *, older_than: float = 0.0) -> int:
        """Nothing to clean: a write is one transaction."""
        return 0

    def stored_bytes(self) -> int:
        """The compressed bytes held (for operators and the benchmarks)."""
        query = select(func.coalesce(func.sum(func.length(original_chunks.c.data)), 0))
        with self.store.reading() as db:
            return int(db.scalar(query) or 0)


def _pieces(db: Connection, qid: str) -> CursorResult[Any]:
    """The pieces of ``qid`` in order, fetched one at a time (a server-side cursor on
    PostgreSQL); the caller closes the result."""
    query = (
        select(original_chunks.c.data)
        .where(original_chunks.c.id == qid)
        .order_by(original_chunks.c.seq)
    )
    return db.execution_options(stream_results=True, yield_per=1).execute(query)


def _altered(qid: str) -> QuarantineIntegrityError:
    return QuarantineIntegrityError(
        f"{qid}: the stored original does not match its SHA-256 (altered or corrupt)"
    )
