"""The report of one sanitization: per-part decisions and the message verdict, as JSON."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from sanitizers.vocabulary import PASSWORD_REASONS, Action, FileKind, Reason, RemovedItem, Verdict

# Message-level reasons that hold whatever the parts are (no password lifts them).
_HOLDING_ALWAYS = frozenset({Reason.ERROR} | {r for r in Reason if r.value.startswith("limit_")})


@dataclass(slots=True)
class EntryReport:
    """One file inside an archive part: its name (made safe to show) and what became of it."""

    name: str
    action: Action
    reason: Reason
    removed: list[RemovedItem] = field(default_factory=list)


@dataclass(slots=True)
class PartReport:
    """One MIME part: where it was, what it claimed and was, and what became of it."""

    path: str
    declared_type: str
    action: Action
    reason: Reason
    size: int = 0
    sha256: str = ""
    filename: str | None = None
    detected_type: str | None = None
    kind: str | None = None
    charset: str | None = None
    findings: list[Reason] = field(default_factory=list)
    removed: list[RemovedItem] = field(default_factory=list)
    detail: str = ""
    # The file name it is attached under, when it survived (it changes with its type).
    attached_as: str | None = None
    # The sender's file name (unsafe characters as code points) when ``attached_as`` differs
    # from it, so the notice can say the file was renamed.
    renamed_from: str | None = None
    # The kind it was rebuilt as, when another than it arrived as (a 7z, RAR, LZH or tar
    # delivered as a ZIP), so the notice can say so.
    rebuilt_as: FileKind | None = None
    # For an archive: each file inside it, nested archives' files as "outer.zip/inner.txt".
    entries: list[EntryReport] = field(default_factory=list)


@dataclass(slots=True)
class Report:
    """The whole message: verdict, message-level reasons and every part."""

    verdict: Verdict = Verdict.DELIVER
    reasons: list[Reason] = field(default_factory=list)
    parts: list[PartReport] = field(default_factory=list)
    defects: list[str] = field(default_factory=list)
    # Under the ISO-2022-JP output policy: what went out as UTF-8 instead ("body", or a
    # header's name: "Subject", "From"...), in the order found (reason ``output_utf8``).
    sent_as_utf8: list[str] = field(default_factory=list)
    size: int = 0
    sha256: str = ""
    message_id: str | None = None
    from_: str | None = None
    subject: str | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)
    # Sender authentication's outcome (``AuthOutcome.to_dict()``) when it was evaluated.
    auth: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["from"] = data.pop("from_")
        return data

    def awaiting_password(self) -> bool:
        """Held only because of password-protected files: every held part awaits a
        password, and no limit or fault holds the message as well."""
        held = [part for part in self.parts if part.action is Action.HELD]
        return (
            self.verdict is Verdict.HOLD
            and bool(held)
            and all(part.reason in PASSWORD_REASONS for part in held)
            and not _HOLDING_ALWAYS & set(self.reasons)
        )

    def reason_codes(self) -> set[Reason]:
        """Every reason that appears anywhere: message level, part actions and findings."""
        codes = set(self.reasons)
        for part in self.parts:
            codes.add(part.reason)
            codes.update(part.findings)
        return codes


@dataclass(frozen=True, slots=True)
class SanitizeResult:
    """The rebuilt message (for ``hold``, a notice-only message) and its report.

    ``password_candidates``: with ``policy.unlock.automatic``, what the text offers as
    passwords (:mod:`sanitizers.passwords`); kept out of the report, never written."""

    message: bytes
    report: Report
    password_candidates: tuple[str, ...] = field(default=(), repr=False)
    notices: tuple[tuple[str, bytes], ...] = field(default=(), repr=False)
    """For mail held awaiting a password whose context carries links: (recipient, the notice
    for that recipient alone, with only their link), sent in place of ``message``."""

    @property
    def verdict(self) -> Verdict:
        return self.report.verdict
