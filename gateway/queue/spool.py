"""The durable spool: where an accepted message lives until it is delivered or reported.

Intent: never lose mail. A message is accepted (``250``) only after its file, envelope
included, is written to ``tmp/``, fsynced, renamed into ``incoming/`` and the directory is
fsynced. That last flush is a group commit (:class:`DirectoryFlusher`): one fsync of
``incoming/`` that starts after a rename covers it, so concurrent acceptances share one
directory flush instead of paying one each; each still returns only once its own file and the
directory entry naming it are durable. Every later state change is one atomic ``rename`` (or
an atomic replace of a file by a fsynced new one), followed by an fsync of the target
directory; the old copy is removed only after that. The one exception is the final
``delivered`` record, written without fsync (see :meth:`Spool.advance`): after delivery a
crash may cost a duplicate, never a message.

States are directories::

    tmp/        partial writes; removed on start (nobody was told 250 for them)
    incoming/   accepted originals, not yet sanitized               (state "queued")
    outgoing/   sanitized messages waiting for (re)delivery        (state "sanitized")
    delivered/  delivered; kept ``keep_delivered_seconds``          (state "delivered")
    dead/       given up: 5xx, lifetime exceeded, rejected          (state "dead")

A file is one JSON header line (the envelope and delivery bookkeeping) and then the message
bytes. Threat model: the message bytes are untrusted and never interpreted here; file names
are queue ids this module made, and ids from outside (the CLI) are checked before use.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

STATES = ("incoming", "outgoing", "delivered", "dead")
_SUFFIX = ".msg"
_QUEUE_ID = re.compile(r"^[0-9]{14}-[0-9a-f]{10}$")


class SpoolError(Exception):
    """A spool file is missing or unreadable."""


def new_queue_id(now: float | None = None) -> str:
    """A unique, sortable, file-name-safe id: UTC time of acceptance and 40 random bits."""
    stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime(time.time() if now is None else now))
    return f"{stamp}-{secrets.token_hex(5)}"


def is_queue_id(value: str) -> bool:
    return bool(_QUEUE_ID.match(value))


@dataclass(frozen=True, slots=True)
class Envelope:
    """Everything known about a message besides its bytes. ``mail_from`` "" is the null
    sender. Delivery bookkeeping is updated by replacing the spool file atomically."""

    queue_id: str
    mail_from: str
    rcpt_tos: tuple[str, ...]
    client: str = ""
    helo: str = ""
    received_at: float = 0.0
    size: int = 0
    # Filled in once sanitized.
    quarantine_id: str = ""
    verdict: str = ""
    # Held only for password-protected attachments (PPAP): the quarantine state says so.
    awaiting_password: bool = False
    # Delivery bookkeeping.
    attempts: int = 0
    next_attempt: float = 0.0
    crashes: int = 0
    last_error: str = ""
    # Recipients already delivered, and those that failed for good (with the reply).
    delivered: tuple[str, ...] = ()
    failed: tuple[tuple[str, str], ...] = ()
    # One entry per delivery attempt (audit "deliveries": time, host, code, reply, ...).
    deliveries: tuple[dict[str, Any], ...] = field(default=(), hash=False, compare=False)
    # The sanitizer's report (``Report.to_dict()``), kept for the audit line.
    report: dict[str, Any] | None = field(default=None, hash=False, compare=False)
    # The store's decision this copy carries out (a release of a held message); 0: mail as it
    # arrived. Set by serve only, from the store: nothing in a message can set it.
    release: int = 0
    # Sender authentication's outcome (``AuthOutcome.to_dict()``), evaluated before the 250;
    # None when it was off.
    auth: dict[str, Any] | None = field(default=None, hash=False, compare=False)
    # "inbound" (sanitized, to the LGWAN side) or "outbound" (checked, to the Internet relay;
    # gateway/outbound). Set by the listener that accepted it, never by the message.
    direction: str = "inbound"
    # The tenant (gateway/configuration/tenants.py) whose recipients this copy carries,
    # resolved once, when the message is split per tenant; "" without tenants. Delivery goes
    # to that tenant's MTA only.
    tenant: str = ""

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), ensure_ascii=True, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Envelope:
        raw: dict[str, Any] = json.loads(data)
        raw["rcpt_tos"] = tuple(raw["rcpt_tos"])
        raw["delivered"] = tuple(raw.get("delivered", ()))
        raw["failed"] = tuple((str(a), str(b)) for a, b in raw.get("failed", ()))
        raw["deliveries"] = tuple(dict(item) for item in raw.get("deliveries", ()))
        return cls(**raw)

    def with_(self, **changes: Any) -> Envelope:
        return replace(self, **changes)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class DirectoryFlusher:
    """Group commit of one directory: :meth:`flush` returns once an fsync of the directory
    that began after the call has completed.

    Callers arrive from many threads (each after its own rename). The first to find no flush
    running leads: it waits up to ``window_seconds`` for more renames to join, then fsyncs once
    for every call made before that fsync began. Callers that arrive while a flush runs wait
    for the next one, which covers them all. A failed fsync fails every caller it covered (the
    error is raised in each), so none of them answers 250.
    """

    def __init__(self, path: Path, window_seconds: float = 0.0) -> None:
        self.path = path
        self.window_seconds = window_seconds
        self._lock = threading.Condition()
        self._requested = 0  # calls so far; a call's ticket is its number
        self._flushed = 0  # every ticket up to this one has been through a flush
        # A failed flush: (first ticket, last ticket) -> [error, callers not yet told].
        self._failed: dict[tuple[int, int], list[Any]] = {}
        self._leading = False
        self.flushes = 0  # fsyncs done (tests and the benchmark count them)

    def flush(self) -> None:
        with self._lock:
            self._requested += 1
            ticket = self._requested
            while self._flushed < ticket:
                if self._leading:
                    self._lock.wait()
                else:
                    self._lead()
            self._raise_if_failed(ticket)

    def _lead(self) -> None:
        """Flush for every call made so far (the lock is held on entry and on exit)."""
        self._leading = True
        if self.window_seconds:
            self._lock.wait(self.window_seconds)
        first, covered = self._flushed + 1, self._requested
        self._lock.release()
        error: OSError | None = None
        try:
            _fsync_dir(self.path)
        except OSError as exc:  # handed to every caller this flush covered
            error = exc
        finally:
            self._lock.acquire()
        if error is not None:
            self._failed[(first, covered)] = [error, covered - first + 1]
        self._flushed = covered
        self.flushes += 1
        self._leading = False
        self._lock.notify_all()

    def _raise_if_failed(self, ticket: int) -> None:
        for (first, last), entry in self._failed.items():
            if first <= ticket <= last:
                entry[1] -= 1
                if entry[1] == 0:  # every caller it covered is told: forget it
                    del self._failed[(first, last)]
                raise entry[0]


class Spool:
    """One spool directory. Methods block on disk I/O: call them from a thread in async code.
    Several receiving processes may accept into it at once (every file name is unique); one
    process, the gateway's, moves messages on from ``incoming/``.

    ``group_commit_seconds``: how long the first of concurrent acceptances waits for others to
    share its directory flush (:class:`DirectoryFlusher`)."""

    def __init__(self, root: Path, group_commit_seconds: float = 0.0) -> None:
        self.root = root
        self.tmp = root / "tmp"
        for name in ("tmp", *STATES):
            (root / name).mkdir(parents=True, exist_ok=True)
        self.incoming_flusher = DirectoryFlusher(root / "incoming", group_commit_seconds)

    # --- paths -----------------------------------------------------------------------------

    def path(self, state: str, queue_id: str) -> Path:
        if state not in STATES or not is_queue_id(queue_id):
            raise SpoolError(f"bad spool reference {state}/{queue_id!r}")
        return self.root / state / f"{queue_id}{_SUFFIX}"

    # --- writing ---------------------------------------------------------------------------

    def _write_tmp(self, envelope: Envelope, message: bytes, *, sync: bool = True) -> Path:
        tmp = self.tmp / f"{envelope.queue_id}.{secrets.token_hex(4)}{_SUFFIX}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(envelope.to_json())
                handle.write(b"\n")
                handle.write(message)
                handle.flush()
                if sync:
                    os.fsync(handle.fileno())
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return tmp

    def accept(self, envelope: Envelope, untrusted_raw: bytes) -> Path:
        """Make a received message durable. Returns only once it survives a crash: its file is
        fsynced before the rename, and a directory flush begun after the rename has ended."""
        tmp = self._write_tmp(envelope, untrusted_raw)
        target = self.path("incoming", envelope.queue_id)
        try:
            os.rename(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)  # tmp/ is otherwise cleared only at start
            raise
        self.incoming_flusher.flush()
        return target

    def put(self, state: str, envelope: Envelope, message: bytes, *, sync: bool = True) -> Path:
        """Write (or atomically replace) ``state/<id>`` with new content; with ``sync`` it is
        durable (file and directory fsynced) when this returns."""
        tmp = self._write_tmp(envelope, message, sync=sync)
        target = self.path(state, envelope.queue_id)
        os.replace(tmp, target)
        if sync:
            _fsync_dir(target.parent)
        return target

    def advance(self, old_state: str, envelope: Envelope, message: bytes, new_state: str) -> None:
        """Replace ``old_state/<id>`` by new content in ``new_state``. The new file is durable
        before the old one goes, so a crash in between leaves a duplicate (resolved by
        :meth:`recover`: the later state wins), never nothing. The unlink itself needs no
        fsync for the same reason.

        ``delivered`` is written without fsync: the mail has left already, so a crash can at
        worst lose the record (the audit line and the quarantine index keep it) or, if the
        old file comes back, deliver it twice; both are acceptable, a loss is not. This halves
        the disk flushes per message on the hot path.
        """
        self.put(new_state, envelope, message, sync=new_state != "delivered")
        self.path(old_state, envelope.queue_id).unlink(missing_ok=True)

    def move(self, queue_id: str, old_state: str, new_state: str) -> None:
        """An atomic state change of an unchanged file."""
        source = self.path(old_state, queue_id)
        target = self.path(new_state, queue_id)
        os.rename(source, target)
        _fsync_dir(target.parent)
        _fsync_dir(source.parent)

    def remove(self, state: str, queue_id: str) -> None:
        path = self.path(state, queue_id)
        path.unlink(missing_ok=True)
        _fsync_dir(path.parent)

    # --- reading ---------------------------------------------------------------------------

    def load(self, state: str, queue_id: str) -> tuple[Envelope, bytes]:
        path = self.path(state, queue_id)
        try:
            data = path.read_bytes()
        except FileNotFoundError as exc:
            raise SpoolError(f"{state}/{queue_id} not found") from exc
        header, newline, body = data.partition(b"\n")
        if not newline:
            raise SpoolError(f"{state}/{queue_id} has no header line")
        try:
            return Envelope.from_json(header), body
        except (ValueError, TypeError, KeyError) as exc:
            raise SpoolError(f"{state}/{queue_id} has a bad header: {exc}") from exc

    def envelope(self, state: str, queue_id: str) -> Envelope:
        """The header only (reads at most the first line)."""
        path = self.path(state, queue_id)
        try:
            with path.open("rb") as handle:
                header = handle.readline(1024 * 1024)
        except FileNotFoundError as exc:
            raise SpoolError(f"{state}/{queue_id} not found") from exc
        try:
            return Envelope.from_json(header)
        except (ValueError, TypeError, KeyError) as exc:
            raise SpoolError(f"{state}/{queue_id} has a bad header: {exc}") from exc

    def ids(self, state: str) -> list[str]:
        if state not in STATES:
            raise SpoolError(f"unknown state {state!r}")
        names = (entry.name for entry in os.scandir(self.root / state))
        found = [n[: -len(_SUFFIX)] for n in names if n.endswith(_SUFFIX)]
        return sorted(q for q in found if is_queue_id(q))

    def find(self, queue_id: str) -> str | None:
        """The state a queue id is in (the most advanced one if a crash left two)."""
        for state in reversed(STATES):
            if self.path(state, queue_id).exists():
                return state
        return None

    def entries(self) -> Iterator[tuple[str, Envelope]]:
        for state in STATES:
            for queue_id in self.ids(state):
                try:
                    yield state, self.envelope(state, queue_id)
                except SpoolError:
                    continue

    def free_bytes(self) -> int:
        return shutil.disk_usage(self.root).free

    # --- start-up --------------------------------------------------------------------------

    def recover(self) -> tuple[list[str], list[str]]:
        """Clean up after a crash; return the ids still to sanitize and to deliver.

        Partial writes in ``tmp/`` belong to sessions that never got 250: removed. A message
        present in two states (a crash between write and unlink) keeps its later state.
        """
        for entry in os.scandir(self.tmp):
            Path(entry.path).unlink(missing_ok=True)
        _fsync_dir(self.tmp)
        later: set[str] = set()
        for state in reversed(STATES):
            current = set(self.ids(state))
            for queue_id in current & later:
                self.remove(state, queue_id)
            later |= current
        return self.ids("incoming"), self.ids("outgoing")

    def purge_delivered(self, older_than_seconds: float, now: float | None = None) -> int:
        cutoff = (time.time() if now is None else now) - older_than_seconds
        removed = 0
        for queue_id in self.ids("delivered"):
            path = self.path("delivered", queue_id)
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:
                continue
        return removed
