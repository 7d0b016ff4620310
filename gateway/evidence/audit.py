"""The audit log: one JSON line per message, the record operators review and keep.

Intent
------
Municipal policy asks for logs that are kept, reviewed and carry correct time. Each message
that the gateway handles yields one line (JSON, UTF-8, ``ensure_ascii=False`` so Japanese stays
readable) whose first key is ``time``: RFC 3339, UTC, milliseconds, ``Z``. The worker builds the
record with :func:`audit_record` from the sanitizer's report and hands it to
:meth:`AuditLog.write`.

Record fields (the only ones written; see ``RECORD_FIELDS``)
------------------------------------------------------------
``time``, ``event`` (``message`` by default), ``queue_id``, ``quarantine_id``, ``client``,
``helo``, ``mail_from``, ``rcpt_to``, ``message_id``, ``size``, ``sha256`` (of the original),
``verdict``, ``reasons``, ``parts`` (each: ``path``, ``action``, ``reason``, ``sha256``,
``kind``, ``filename``, ``declared_type``, ``detected_type``, ``size``, ``charset``,
``findings``, ``removed``, ``entries``: the files inside an archive, each ``name``,
``action``, ``reason``, ``removed``), ``defects``, ``timings`` (milliseconds by step),
``deliveries`` (each: ``time``, ``host``, ``code``, ``reply``, ``recipients``, ``attempt``,
``error``), ``state``, ``error`` (a reason code), ``attempts``, ``dropped_keys``; when rules
applied to the message (:mod:`gateway.configuration.rules`): ``rules`` (their names, in order) and
``exceptions`` (those of them that are exceptions, 例外措置: the record that an approved
exception weakened the policy); with sender authentication on: ``auth`` (``results`` such as
``dmarc=fail``, the ``action`` and its ``reasons``); for outbound mail (``gateway/outbound``):
``direction`` (``outbound``), ``findings`` (each: ``reason``, ``action``, ``where``),
``conversion`` (``bcc_converted``, ``dkim``, ``disclaimer``) and ``notice`` (what became of the
notice to the sender). Lines of the other events
(:class:`~sanitizers.vocabulary.AuditEvent`: the held-mail workflow, users, the store) carry
``actor`` (who acted), ``request`` (the decision's number), ``kind``, ``reason`` (the
operator's words), ``expires``, ``raised_limits``, ``outcome``, ``count``, ``user``, ``role``
and ``schema`` as they apply.
With tenants, a line about a message, a decision on one, a user or a console user's action
names its ``tenant``.
Every line written by serve or a command names its ``node`` (``node.name``); ``node`` events
(serve's start and its clock checks) carry ``clock_offset_seconds``, the database's clock minus
this node's.

Threat model: never a body
--------------------------
Everything in a record is derived from untrusted mail. The log must never carry a body, a
credential, or text that can forge a second line or drive a terminal. So :meth:`AuditLog.write`
keeps only the allow-listed keys above (anything else is dropped and its *name* listed in
``dropped_keys``, so a mistake is visible without leaking the value); ``bytes`` values are never
written; every string has its control characters (C0, C1, DEL, bidi overrides) removed and is
cut to ``MAX_STRING_CHARS``; lists are cut to ``MAX_LIST_ITEMS`` (with ``<key>_omitted`` giving
the count) and nesting is bounded. The part ``detail`` of a report is free text and is not
logged. Subjects and From headers are not logged either: they are in the quarantine index.

Output: a file opened with ``O_APPEND`` (each line is one ``write`` call, so lines from several
processes do not interleave), or stdout when the path is None. Writes are serialised by a lock
and flushed per line (optionally fsynced). When the file is rotated away (logrotate), the next
write notices the new inode and reopens the path.
"""

from __future__ import annotations

import contextlib
import glob
import json
import logging
import logging.handlers
import math
import os
import sys
import threading
import time
from collections.abc import Iterable, Mapping, Sequence, Sized
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import Any, Final, TextIO

from gateway.configuration.settings import AuditSettings
from sanitizers.report import PartReport, Report
from sanitizers.safetext import log_text
from sanitizers.vocabulary import AuditEvent

log = logging.getLogger("mukaika.audit")

MAX_STRING_CHARS: Final = 1000
MAX_LIST_ITEMS: Final = 1000
MAX_DEPTH: Final = 4

RECORD_FIELDS: Final[frozenset[str]] = frozenset(
    {
        "time",
        "event",
        "node",
        # The tenant (gateway/configuration/tenants.py) of the message, decision or user;
        # absent without tenants.
        "tenant",
        "clock_offset_seconds",
        "queue_id",
        "quarantine_id",
        "client",
        "helo",
        "mail_from",
        "rcpt_to",
        "message_id",
        "size",
        "sha256",
        "verdict",
        "reasons",
        "parts",
        "defects",
        "timings",
        "deliveries",
        "state",
        "error",
        "attempts",
        "dropped_keys",
        "rules",
        "exceptions",
        "auth",
        # The outbound direction (gateway/outbound): absent means inbound.
        "direction",
        "findings",
        "conversion",
        "notice",
        # Events of the held-mail workflow and the store (AuditEvent other than message).
        "actor",
        "request",
        "kind",
        "reason",
        "expires",
        "raised_limits",
        "outcome",
        "count",
        # k of n approval of held outbound mail: approvals so far, and how many are needed.
        "approvals",
        "approvals_required",
        "user",
        "role",
        "schema",
    }
)
PART_FIELDS: Final[frozenset[str]] = frozenset(
    {
        "path",
        "action",
        "reason",
        "sha256",
        "kind",
        "filename",
        "declared_type",
        "detected_type",
        "size",
        "charset",
        "findings",
        "removed",
        "entries",
    }
)
DELIVERY_FIELDS: Final[frozenset[str]] = frozenset(
    {"time", "host", "code", "reply", "recipients", "attempt", "error"}
)
# What an outbound check found: never its detail (a masked number, a keyword matched).
FINDING_FIELDS: Final[frozenset[str]] = frozenset({"reason", "action", "where"})
# Nested records with their own allow-list; ``timings`` maps step names to numbers.
_NESTED_FIELDS: Final[Mapping[str, frozenset[str]]] = {
    "parts": PART_FIELDS,
    "deliveries": DELIVERY_FIELDS,
    "findings": FINDING_FIELDS,
}

_OMITTED_BYTES: Final = "<bytes omitted>"


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC with milliseconds and ``Z`` (``2026-11-22T01:08:34.123Z``)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("audit times must be timezone-aware (got a naive datetime)")
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def clean_string(value: str, limit: int = MAX_STRING_CHARS) -> str:
    """The value as :func:`sanitizers.safetext.log_text` shows it, cut to ``limit`` chars."""
    return log_text(value, limit)


def _clean_value(value: Any, depth: int) -> Any:
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Enum):
        return clean_string(str(value.value))
    if isinstance(value, str):
        return clean_string(value)
    if isinstance(value, datetime):
        return format_time(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return _OMITTED_BYTES  # raw bytes may be a body: never written
    if depth >= MAX_DEPTH:
        return "<nested too deep>"
    if isinstance(value, Mapping):
        return {clean_string(str(k), 100): _clean_value(v, depth + 1) for k, v in value.items()}
    if isinstance(value, set | frozenset):
        value = sorted(value, key=str)
    if isinstance(value, Iterable):
        items = list(value)[:MAX_LIST_ITEMS]
        return [_clean_value(item, depth + 1) for item in items]
    return clean_string(str(value))


def _clean_nested(key: str, value: Any, allowed: frozenset[str]) -> Any:
    """A list of records (``parts``, ``deliveries``) with only their allow-listed keys."""
    if not isinstance(value, Iterable) or isinstance(value, str | bytes | Mapping):
        return _clean_value(value, 1)
    cleaned: list[Any] = []
    for item in list(value)[:MAX_LIST_ITEMS]:
        if isinstance(item, Mapping):
            cleaned.append(
                {str(k): _clean_value(v, 2) for k, v in item.items() if str(k) in allowed}
            )
        else:
            cleaned.append(_clean_value(item, 2))
    return cleaned


def clean_record(record: Mapping[str, Any], *, now: datetime | None = None) -> dict[str, Any]:
    """The record as written: ``time`` first, allow-listed keys only, bounded and clean."""
    moment = datetime.now(UTC) if now is None else now
    out: dict[str, Any] = {"time": format_time(moment)}
    dropped: list[str] = []
    for raw_key, value in record.items():
        key = str(raw_key)
        if key in ("time", "dropped_keys"):
            continue
        if key not in RECORD_FIELDS:
            dropped.append(clean_string(key, 100))
            continue
        nested = _NESTED_FIELDS.get(key)
        out[key] = _clean_value(value, 1) if nested is None else _clean_nested(key, value, nested)
        if (
            isinstance(value, Sized)
            and not isinstance(value, str | bytes | Mapping)
            and len(value) > MAX_LIST_ITEMS
        ):
            out[f"{key}_omitted"] = len(value) - MAX_LIST_ITEMS
    if dropped:
        out["dropped_keys"] = sorted(dropped)[:100]
    return out


class AuditLog:
    """Append-only JSON-lines writer; safe from several threads. ``path=None`` is stdout."""

    def __init__(
        self,
        path: Path | None = None,
        *,
        fsync: bool = False,
        stream: TextIO | None = None,
        raise_errors: bool = False,
        node: str = "",
    ) -> None:
        self.path = None if path is None else Path(path)
        self.fsync = fsync
        self.raise_errors = raise_errors
        self.node = node  # written into every line (several nodes, one cluster)
        self.errors = 0
        self._stream = stream
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._inode: tuple[int, int] | None = None
        # Optional copy of every line to syslog ([audit] syslog); the file stays the record.
        self.syslog: logging.Handler | None = None
        if self.path is not None:
            self._open()

    @classmethod
    def from_settings(cls, settings: AuditSettings, data_dir: Path, node: str = "") -> AuditLog:
        audit = cls(settings.resolve_path(data_dir), fsync=settings.fsync, node=node)
        if settings.syslog:
            audit.syslog = _syslog_handler(settings)
        return audit

    def purge_rotated(self, retention_days: float, now: float | None = None) -> int:
        """Delete rotated files of this log (``<name>.1``, ``<name>-20261201.gz``…) older than
        ``retention_days``; never the live file. Returns how many; 0 days keeps them all."""
        if self.path is None or retention_days <= 0:
            return 0
        cutoff = (time.time() if now is None else now) - retention_days * 86400
        removed = 0
        for candidate in self.path.parent.glob(f"{glob.escape(self.path.name)}[.-]*"):
            with contextlib.suppress(FileNotFoundError):
                if candidate.is_file() and candidate.stat().st_mtime < cutoff:
                    candidate.unlink()
                    removed += 1
        return removed

    def _open(self) -> None:
        assert self.path is not None
        self.path.parent.mkdir(mode=0o750, parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        info = os.fstat(fd)
        self._fd = fd
        self._inode = (info.st_dev, info.st_ino)

    def _reopen_if_rotated(self) -> None:
        assert self.path is not None
        try:
            info = os.stat(self.path)
            current: tuple[int, int] | None = (info.st_dev, info.st_ino)
        except FileNotFoundError:
            current = None
        if current != self._inode or self._fd is None:
            self._close_fd()
            self._open()

    def reopen(self) -> None:
        """Reopen the file (e.g. on SIGHUP after rotation)."""
        if self.path is None:
            return
        with self._lock:
            self._close_fd()
            self._open()

    def write(self, record: Mapping[str, Any]) -> None:
        """Write one record as one line (see the module docstring for what is kept).

        An I/O error (disk full, file removed with its directory) does not propagate: the
        message it describes has already been handled, and the worker must not fail because
        of its log. The cleaned line goes to the ``mukaika.audit`` logger instead (stderr or
        journald), and ``errors`` counts the failures. With ``raise_errors`` it propagates.
        """
        if self.node:
            record = {**record, "node": self.node}
        line = json.dumps(clean_record(record), ensure_ascii=False, separators=(",", ":"))
        if self.syslog is not None:
            info = {"msg": line, "levelno": logging.INFO, "levelname": "INFO"}
            self.syslog.handle(logging.makeLogRecord(info))
        try:
            self._write_line(line)
        except OSError as exc:
            self.errors += 1
            if self.raise_errors:
                raise
            log.error(
                "audit log %s not writable (%s); record follows: %s",
                self.path,
                exc.strerror or type(exc).__name__,
                line,
            )

    def _write_line(self, line: str) -> None:
        data = (line + "\n").encode("utf-8")
        with self._lock:
            if self.path is None:
                stream = self._stream if self._stream is not None else sys.stdout
                stream.write(line + "\n")
                stream.flush()
                return
            self._reopen_if_rotated()
            assert self._fd is not None
            view = memoryview(data)
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
            if self.fsync:
                os.fsync(self._fd)

    def _close_fd(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None

    def close(self) -> None:
        with self._lock:
            self._close_fd()
            if self.syslog is not None:
                self.syslog.close()

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class _SyslogCopy(logging.handlers.SysLogHandler):
    """Audit lines to syslog. A failure to send is logged once per line, never raised: the
    audit file is the record, syslog a copy for the security operations centre."""

    def handleError(self, record: logging.LogRecord) -> None:
        log.warning("audit line not sent to syslog %s", self.address)


def _syslog_handler(settings: AuditSettings) -> logging.Handler:
    host, sep, port = settings.syslog_address.rpartition(":")
    address: str | tuple[str, int] = (
        (host.strip("[]"), int(port))
        if sep and port.isdigit() and not settings.syslog_address.startswith("/")
        else settings.syslog_address
    )
    facility = logging.handlers.SysLogHandler.facility_names[settings.syslog_facility]
    try:
        handler: logging.Handler = _SyslogCopy(address=address, facility=facility)
    except OSError as exc:
        log.warning("audit syslog %s unavailable (%s): lines go to the file only", address, exc)
        return logging.NullHandler()
    handler.ident = "mukaika-audit: "  # type: ignore[attr-defined]
    handler.setFormatter(logging.Formatter("%(message)s"))
    return handler


@dataclass(frozen=True, slots=True)
class DeliveryAttempt:
    """One try to hand the sanitized message to the LGWAN-side MTA."""

    time: datetime
    host: str
    code: int | None  # the SMTP reply code, None when no reply came (timeout, refused)
    reply: str = ""  # the server's reply text (bounded when written)
    recipients: tuple[str, ...] = ()
    error: str | None = None  # a short error class or reason code when there was no reply

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "time": format_time(self.time),
            "host": self.host,
            "code": self.code,
            "reply": self.reply,
        }
        if self.recipients:
            data["recipients"] = list(self.recipients)
        if self.error is not None:
            data["error"] = self.error
        return data


def _part(part: PartReport) -> dict[str, Any]:
    data: dict[str, Any] = {
        "path": part.path,
        "action": str(part.action),
        "reason": str(part.reason),
        "sha256": part.sha256 or None,
        "kind": part.kind,
        "filename": part.filename,
        "declared_type": part.declared_type,
        "detected_type": part.detected_type,
        "size": part.size,
    }
    if part.findings:
        data["findings"] = [str(code) for code in part.findings]
    if part.removed:
        data["removed"] = list(part.removed)
    if part.entries:
        data["entries"] = [
            {"name": e.name, "action": str(e.action), "reason": str(e.reason), "removed": e.removed}
            for e in part.entries
        ]
    return data


def audit_record(
    *,
    queue_id: str,
    client: str,
    helo: str,
    mail_from: str,
    rcpt_to: Sequence[str],
    report: Report | None = None,
    state: str,
    quarantine_id: str | None = None,
    size: int | None = None,
    message_id: str | None = None,
    timings: Mapping[str, float] | None = None,
    deliveries: Iterable[DeliveryAttempt | Mapping[str, Any]] = (),
    error: str | None = None,
    attempts: int | None = None,
    event: str = AuditEvent.MESSAGE,
) -> dict[str, Any]:
    """The record for one message, built from the envelope and the sanitizer's report.

    ``report`` may be None when sanitizing never produced one (then pass ``error``). Values in
    ``timings`` are milliseconds and are merged over the report's own ``timings_ms``.
    """
    record: dict[str, Any] = {
        "event": event,
        "queue_id": queue_id,
        "quarantine_id": quarantine_id,
        "client": client,
        "helo": helo,
        "mail_from": mail_from,
        "rcpt_to": list(rcpt_to),
    }
    merged_timings: dict[str, float] = {}
    if report is not None:
        record["message_id"] = message_id if message_id is not None else report.message_id
        record["size"] = size if size is not None else report.size
        record["sha256"] = report.sha256 or None
        record["verdict"] = str(report.verdict)
        record["reasons"] = sorted(str(code) for code in report.reason_codes())
        record["parts"] = [_part(part) for part in report.parts]
        if report.defects:
            record["defects"] = list(report.defects)
        merged_timings.update(report.timings_ms)
    else:
        record["message_id"] = message_id
        record["size"] = size
        record["verdict"] = None
    if timings:
        merged_timings.update(timings)
    record["timings"] = {name: round(value, 3) for name, value in merged_timings.items()}
    record["deliveries"] = [
        attempt.to_dict() if isinstance(attempt, DeliveryAttempt) else dict(attempt)
        for attempt in deliveries
    ]
    record["state"] = state
    if error is not None:
        record["error"] = error
    if attempts is not None:
        record["attempts"] = attempts
    return record
