"""The outbound checks: what a mail leaving for the Internet carries, and what to do with it.

Intent: the municipality's own mail is checked, never rebuilt. Bytes, an envelope and the
policy (``[policy.outbound]``) in; a decision out: ``deliver``, ``hold`` (for an approver) or
``reject`` (with a notice to the sender), with every finding and its reason code. The checks:
My Number (:mod:`sanitizers.personal_number`) in the Subject, the text and each attachment's
text (:mod:`sanitizers.document_text`); keywords and patterns; attachment kinds, extensions and
sizes; attachments whose content cannot be read (password-protected: PPAP sent out); recipient
domains and the number of outside recipients; the marks of automatic forwarding. The strictest
action found decides. The malware scan is the caller's (``scan``): a hit rejects.

Threat model: the sender is inside, but the content is not trusted more than inbound mail: it
is parsed within the named limits of ``[policy.limits]`` and the archive limits of
``[policy.cdr]``; a limit hit or a fault while reading holds the mail (fail closed), never
passes it. Findings are reported masked (no whole My Number) and bounded in number.
"""

from __future__ import annotations

import re
import time
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from email.message import Message
from typing import Any, Final

from sanitizers.addresses import address_matches
from sanitizers.charsets import decode_body, decode_html
from sanitizers.document_text import Unreadable, file_texts
from sanitizers.errors import LimitExceeded, TemporaryFailure
from sanitizers.filenames import clean_name
from sanitizers.filetype import detect
from sanitizers.headers import rebuild_headers
from sanitizers.html_text import html_to_text
from sanitizers.mime import Leaf, parse
from sanitizers.personal_number import find_personal_numbers
from sanitizers.policy import LinkMode, OutboundAction, Policy
from sanitizers.vocabulary import Reason, Verdict

# Findings kept per message (a spreadsheet of residents yields thousands of numbers).
MAX_FINDINGS: Final = 50
# Headers that mark automatic forwarding (besides Auto-Submitted: auto-forwarded and Resent-*).
FORWARD_HEADERS: Final = ("x-ms-exchange-inbox-rules-loop",)
_SEVERITY: Final = {"pass": 0, "hold": 1, "reject": 2}
_VERDICT: Final = {0: Verdict.DELIVER, 1: Verdict.HOLD, 2: Verdict.REJECT}
_SQUEEZE: Final = re.compile(r"\s+")

# Scans a file (its bytes, its name); the signature found, or None. Raises TemporaryFailure
# when the scanner cannot answer.
Scan = Callable[[bytes, str], str | None]


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing found: its reason, the action it calls for, where, and what (never a whole
    My Number)."""

    reason: Reason
    action: str
    where: str
    detail: str = ""

    def to_dict(self) -> dict[str, str]:
        return {
            "reason": str(self.reason),
            "action": self.action,
            "where": self.where,
            "detail": self.detail,
        }


@dataclass(slots=True)
class OutboundReport:
    """The decision on one outbound mail."""

    verdict: Verdict = Verdict.DELIVER
    findings: list[Finding] = field(default_factory=list)
    outside_recipients: tuple[str, ...] = ()

    @property
    def reasons(self) -> list[Reason]:
        """Each reason once, in the order found, of the findings that hold or reject."""
        seen = dict.fromkeys(f.reason for f in self.findings if f.action != "pass")
        return list(seen)

    def add(self, reason: Reason, action: str, where: str, detail: str = "") -> None:
        if len(self.findings) < MAX_FINDINGS:
            self.findings.append(Finding(reason, action, where, detail))
        severity = max(_SEVERITY[action], _severity(self.verdict))
        self.verdict = _VERDICT[severity]

    def to_dict(self) -> dict[str, Any]:
        return {
            "direction": "outbound",
            "verdict": str(self.verdict),
            "reasons": [str(r) for r in self.reasons],
            "findings": [f.to_dict() for f in self.findings],
            "outside_recipients": len(self.outside_recipients),
        }


def _severity(verdict: Verdict) -> int:
    return {Verdict.DELIVER: 0, Verdict.HOLD: 1, Verdict.REJECT: 2}[verdict]


def check_outbound(
    untrusted_raw: bytes,
    policy: Policy,
    *,
    recipients: Sequence[str],
    is_outside: Callable[[str], bool],
    scan: Scan | None = None,
) -> OutboundReport:
    """Check one outbound mail. Never raises on bad input (a fault holds it); only
    :class:`TemporaryFailure` (the scanner is down) escapes."""
    report = OutboundReport(outside_recipients=tuple(r for r in recipients if is_outside(r)))
    checks = policy.outbound
    try:
        _check_recipients(report, policy)
        deadline = time.monotonic() + policy.limits.seconds
        parsed = parse(untrusted_raw, policy.limits, deadline)
        if report.outside_recipients:
            _check_forwarding(report, parsed.headers, checks.auto_forward)
        subject = next(
            (str(v) for n, v in rebuild_headers(parsed.headers, ("Subject",)).fields), ""
        )
        _check_text(report, policy, subject, "Subject")
        for leaf in parsed.leaves:
            if time.monotonic() > deadline:
                raise LimitExceeded(Reason.LIMIT_TIME, "time budget spent")
            if leaf.role in ("body", "alternative"):
                _check_text(report, policy, _body_text(leaf), f"part {leaf.path}")
            else:
                _check_attachment(report, policy, leaf, scan)
    except TemporaryFailure:
        raise
    except LimitExceeded as exc:
        report.add(exc.reason, "hold", "message", exc.detail)
    except Exception as exc:  # noqa: BLE001 - fail closed: a fault holds the mail
        report.add(Reason.ERROR, "hold", "message", type(exc).__name__)
    return report


def _check_recipients(report: OutboundReport, policy: Policy) -> None:
    checks = policy.outbound
    outside = report.outside_recipients
    if checks.recipient_domains:
        for recipient in outside:
            if address_matches(recipient, checks.recipient_domains):
                report.add(Reason.RECIPIENT_DOMAIN, checks.recipient_domain_action, recipient)
    if checks.max_outside_recipients and len(outside) > checks.max_outside_recipients:
        report.add(
            Reason.RECIPIENT_COUNT,
            checks.recipient_count_action,
            "envelope",
            f"{len(outside)} outside recipients",
        )


def _check_forwarding(report: OutboundReport, headers: Message, action: OutboundAction) -> None:
    marks = []
    for name, value in headers.raw_items():
        lowered = name.lower()
        if lowered == "auto-submitted" and str(value).strip().lower().startswith("auto-forwarded"):
            marks.append("Auto-Submitted: auto-forwarded")
        elif lowered.startswith("resent-") or lowered in FORWARD_HEADERS:
            marks.append(name)
    if marks:
        report.add(Reason.AUTO_FORWARD, action, "headers", ", ".join(dict.fromkeys(marks)))


def _body_text(leaf: Leaf) -> str:
    payload = leaf.decoded_payload()
    charset = leaf.params.get("charset")
    declared = charset.text if charset else None
    if leaf.content_type == "text/html":
        return html_to_text(decode_html(payload, declared).text, LinkMode.KEEP)
    return decode_body(payload, declared).text


def _folded(text: str) -> str:
    return _SQUEEZE.sub(" ", unicodedata.normalize("NFKC", text).casefold())


def _check_text(report: OutboundReport, policy: Policy, text: str, where: str) -> None:
    checks = policy.outbound
    if checks.personal_number != "pass":
        numbers = find_personal_numbers(text)
        if numbers:
            shown = ", ".join(n.masked for n in numbers[:3])
            detail = f"{len(numbers)} found ({shown}{', …' if len(numbers) > 3 else ''})"
            report.add(Reason.PERSONAL_NUMBER, checks.personal_number, where, detail)
    if checks.keywords:
        folded = _folded(text)
        for keyword in checks.keywords:
            if _folded(keyword) in folded:
                report.add(Reason.KEYWORD, checks.keyword_action, where, keyword)
    for pattern in checks.patterns:
        if re.search(pattern, text):
            report.add(Reason.KEYWORD, checks.keyword_action, where, f"/{pattern}/")


def _check_attachment(
    report: OutboundReport, policy: Policy, leaf: Leaf, scan: Scan | None
) -> None:
    checks = policy.outbound
    payload = leaf.decoded_payload()
    name = clean_name(leaf.filename or "") or f"part {leaf.path}"
    where = f"{name} (part {leaf.path})"
    if scan is not None:
        signature = scan(payload, name)
        if signature is not None:
            report.add(Reason.MALWARE, "reject", where, signature)
            return
    kind = detect(payload, leaf.content_type, leaf.filename).kind
    extension = "." + name.rpartition(".")[2].lower() if "." in name else ""
    wanted = {e.lower() if e.startswith(".") else f".{e.lower()}" for e in checks.file_extensions}
    if kind in checks.file_kinds or extension in wanted:
        report.add(Reason.FILE_TYPE, checks.file_action, where, kind)
    if checks.max_attachment_bytes and len(payload) > checks.max_attachment_bytes:
        report.add(Reason.LIMIT_SIZE, checks.file_action, where, f"{len(payload)} bytes")
    try:
        texts = file_texts(
            payload,
            name=name,
            declared_type=leaf.content_type,
            policy=policy.cdr,
            max_chars=policy.limits.max_text_chars,
        )
    except Unreadable as exc:
        known = exc.reason in (Reason.ENCRYPTED, Reason.ENCRYPTED_ARCHIVE)
        reason = exc.reason if known else Reason.UNREADABLE
        report.add(reason, checks.unreadable, where, exc.detail or str(exc.reason))
        return
    for text in texts:
        _check_text(report, policy, text.text, text.name)
