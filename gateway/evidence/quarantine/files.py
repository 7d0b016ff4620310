"""The stored originals on disk: one gzip file per message under ``messages/DAY/``.

:class:`Originals` is what the quarantine needs of wherever its originals are kept; today that
is :class:`OriginalFiles`, on the node's own disk (with several nodes on PostgreSQL, an
original is read on the node that stored it: ``node`` of its entry). The interface is written
so the originals can move into the store itself (a table written in the same transaction as the
index row, so that any node reads any original and a purge is one job for the cluster) without
the quarantine changing; that move is not made yet.

Durability (DESIGN.md rule 3): a file is written to ``tmp/``, flushed and fsynced, renamed into
``messages/DAY/`` and the directory is fsynced. A crash leaves at worst a temp file (deleted
once it is older than :data:`STALE_TEMP_SECONDS`, so a second process never removes a write in
progress) or a file without an index row (removed by :meth:`OriginalFiles.remove_orphans` once
past retention).

Threat model: the bytes are hostile (the unsanitized original); they are never parsed here,
only compressed, hashed and written with mode 0600 in 0700 directories. A path is built only
from an id that matches :data:`~gateway.evidence.quarantine.entries.ID_PATTERN`, so no id from
a command line or a notice can leave the directory. Reading checks the recorded size and
SHA-256 and decompresses at most one byte more than the recorded size, so a replaced file is
detected and cannot be a decompression bomb.
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import hashlib
import os
import secrets
import time
import zlib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, Protocol

from gateway.evidence.quarantine.entries import (
    ID_PATTERN,
    QuarantineIntegrityError,
    QuarantineNotFoundError,
    QuarantineStoreError,
    is_valid_id,
)

# A temp file older than this is an abandoned write; younger ones may belong to a live process.
STALE_TEMP_SECONDS: Final = 3600.0


def fsync_directory(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Originals(Protocol):
    """Where the compressed originals are kept: ids are made here, bytes are written durably
    before their index row exists, read back verified, removed with their row, and leftovers
    of a crash cleaned up."""

    def new_id(self, received_at: datetime) -> str: ...

    def exists(self, qid: str) -> bool: ...

    def write(self, qid: str, untrusted_raw: bytes, queue_id: str) -> int: ...

    def read(self, qid: str, size: int, sha256: str) -> bytes: ...

    def remove(self, qid: str) -> None: ...

    def remove_orphans(self, oldest_kept: datetime, indexed: Callable[[str], bool]) -> None: ...

    def clean_temp_files(self, *, older_than: float = STALE_TEMP_SECONDS) -> int: ...


class OriginalFiles:
    """The compressed originals of one quarantine directory (:class:`Originals` on disk)."""

    def __init__(self, directory: Path, compression_level: int = 1) -> None:
        if not 1 <= compression_level <= 9:
            raise ValueError("compression_level must be between 1 and 9")
        self.compression_level = compression_level
        self.messages = directory / "messages"
        self.tmp = directory / "tmp"
        for path in (directory, self.messages, self.tmp):
            path.mkdir(mode=0o700, parents=True, exist_ok=True)

    def path(self, qid: str) -> Path:
        match = ID_PATTERN.fullmatch(qid)
        if match is None:
            raise QuarantineNotFoundError(qid)
        return self.messages / match["day"] / f"{qid}.eml.gz"

    def exists(self, qid: str) -> bool:
        return self.path(qid).exists()

    def new_id(self, received_at: datetime) -> str:
        """A fresh id: the receive time (UTC) and 48 random bits, not yet used on disk."""
        stamp = received_at.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
        while True:
            qid = f"{stamp}-{secrets.token_hex(6)}"
            if not self.path(qid).exists():  # 48 random bits per second: practically always
                return qid

    def write(self, qid: str, untrusted_raw: bytes, queue_id: str) -> int:
        """Store ``untrusted_raw`` durably as ``qid``; return the compressed size.

        Raises :class:`QuarantineStoreError` (an ``OSError``) when the disk refuses; then
        nothing partial is left behind.
        """
        final = self.path(qid)
        temp = self.tmp / f"{qid}.{secrets.token_hex(4)}.tmp"
        try:
            stored_size = self._write_compressed(temp, untrusted_raw)
            for attempt in range(3):
                if not final.parent.is_dir():
                    final.parent.mkdir(mode=0o700, exist_ok=True)
                    fsync_directory(self.messages)  # the new day directory itself
                try:
                    os.rename(temp, final)
                    break
                except FileNotFoundError:  # a purge removed the empty day directory
                    if attempt == 2 or not temp.exists():
                        raise
            fsync_directory(final.parent)
        except OSError as exc:
            with contextlib.suppress(OSError):
                temp.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                final.unlink(missing_ok=True)
            code = exc.errno if exc.errno is not None else errno.EIO
            reason = exc.strerror or os.strerror(code)
            raise QuarantineStoreError(
                code, f"cannot store queue id {queue_id} in the quarantine: {reason}"
            ) from exc
        return stored_size

    def _write_compressed(self, temp: Path, data: bytes) -> int:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as raw:
            with gzip.GzipFile(
                filename="", mode="wb", fileobj=raw, compresslevel=self.compression_level, mtime=0
            ) as packed:
                packed.write(data)
            raw.flush()
            os.fsync(raw.fileno())
            return raw.tell()

    def read(self, qid: str, size: int, sha256: str) -> bytes:
        """The original, verified against its recorded ``size`` and ``sha256``."""
        try:
            with (
                self.path(qid).open("rb") as handle,
                gzip.GzipFile(fileobj=handle, mode="rb") as packed,
            ):
                data = packed.read(size + 1)  # bounded: a swapped file is no bomb
        except FileNotFoundError as exc:
            raise QuarantineIntegrityError(f"{qid}: the stored original is missing") from exc
        except (OSError, EOFError, zlib.error) as exc:
            raise QuarantineIntegrityError(
                f"{qid}: the stored original is unreadable: {exc}"
            ) from exc
        if len(data) != size or hashlib.sha256(data).hexdigest() != sha256:
            raise QuarantineIntegrityError(
                f"{qid}: the stored original does not match its SHA-256 (altered or corrupt)"
            )
        return data

    def remove(self, qid: str) -> None:
        self.path(qid).unlink(missing_ok=True)

    def remove_orphans(self, oldest_kept: datetime, indexed: Callable[[str], bool]) -> None:
        """Delete files that ``indexed`` does not know, received before ``oldest_kept``; drop
        empty day directories.

        Such files come from a crash between the rename and the index insert. The time in the
        id is the receive time, so an orphan is only removed once it is past retention.
        """
        cutoff_stamp = oldest_kept.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
        for day_dir in sorted(self.messages.iterdir()):
            if not (day_dir.is_dir() and day_dir.name <= cutoff_stamp[:8]):
                continue
            for path in day_dir.iterdir():
                qid = path.name.removesuffix(".eml.gz")
                if not is_valid_id(qid) or qid[:16] >= cutoff_stamp:
                    continue  # not ours, or not yet past retention
                if not indexed(qid):
                    path.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                day_dir.rmdir()  # only succeeds when empty

    def clean_temp_files(self, *, older_than: float = STALE_TEMP_SECONDS) -> int:
        """Delete abandoned temp files (older than ``older_than`` seconds); return how many."""
        removed = 0
        limit = time.time() - older_than
        for path in self.tmp.iterdir():
            with contextlib.suppress(FileNotFoundError):
                if path.stat().st_mtime < limit:
                    path.unlink()
                    removed += 1
        return removed


def export_file(data: bytes, out_path: Path, *, overwrite: bool = False) -> int:
    """Write ``data`` to ``out_path`` (mode 0600, atomically); return its size. An existing
    file is refused unless ``overwrite`` is set."""
    if out_path.exists() and not overwrite:
        raise FileExistsError(errno.EEXIST, "refusing to overwrite", str(out_path))
    temp = out_path.with_name(f".{out_path.name}.{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, out_path)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink(missing_ok=True)
        raise
    return len(data)
