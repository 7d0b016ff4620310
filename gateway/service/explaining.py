"""The explanation of what the gateway would do with a mail: which rules apply to which
recipients, and what each part would become, from the real pipeline with each group's policy.
``mukaika explain`` prints it; the console's explain page shows it; both call :func:`explain`.

Nothing is sent and nothing is written. Threat model: the mail is hostile; every value from it
in the lines has its control characters shown as ``?`` (:func:`sanitizers.safetext.
terminal_text`), so the table stays a table on a terminal and on a page.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from datetime import date
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from email.utils import getaddresses
from typing import Any

from gateway.configuration.config import Config, rule_set
from gateway.configuration.rules import PolicyGroup
from gateway.senderauth.evaluate import Transaction, authenticate
from sanitizers.policy import Policy
from sanitizers.report import SanitizeResult
from sanitizers.safetext import terminal_text
from sanitizers.senderauth import AuthOutcome


def header_addresses(untrusted_raw: bytes) -> tuple[str, list[str]]:
    headers = BytesHeaderParser(policy=default_policy).parsebytes(untrusted_raw)

    def addresses(*names: str) -> list[str]:
        values = [str(v) for name in names for v in headers.get_all(name, [])]
        return [addr for _, addr in getaddresses(values) if "@" in addr]

    senders = addresses("From")
    return (senders[0] if senders else ""), addresses("To", "Cc")


def _flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def policy_differences(base: Policy, effective: Policy) -> list[tuple[str, Any, Any]]:
    """``(dotted key, base value, effective value)`` for every setting that differs."""
    before = _flatten(base.model_dump(mode="json"))
    after = _flatten(effective.model_dump(mode="json"))
    return [
        (key, before.get(key), after.get(key))
        for key in sorted(set(before) | set(after))
        if before.get(key) != after.get(key)
    ]


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def format_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Columns aligned by display width (a Japanese character takes two columns)."""
    widths = [_width(h) for h in header]
    for row in rows:
        widths = [max(w, _width(cell)) for w, cell in zip(widths, row, strict=True)]
    lines = []
    for row in [header, ["-" * w for w in widths], *rows]:
        cells = [cell + " " * (w - _width(cell)) for cell, w in zip(row, widths, strict=True)]
        lines.append("  ".join(cells).rstrip())
    return lines


def table_text(text: str | None) -> str:
    """Control characters out (the values come from the mail), so the table stays a table."""
    if not text:
        return "-"
    return terminal_text(text)


def auth_lines(auth: AuthOutcome) -> list[str]:
    """Sender authentication's results and action, as the Authentication-Results header and
    the report say them."""
    results = " ".join(f"{r.method}={r.result}" for r in auth.results) or "none"
    why = ", ".join(reason.value for reason in auth.reasons) or "-"
    lines = [f"sender authentication: {results}; action {auth.action.value} ({why})"]
    if auth.trusted_from:
        lines.append(f"  (the results of the trusted relay {auth.trusted_from})")
    return lines


def explain(
    untrusted_raw: bytes,
    config: Config,
    *,
    sender: str,
    recipients: Sequence[str],
    client: str,
    today: date,
    helo: str = "",
) -> tuple[list[str], list[tuple[PolicyGroup, SanitizeResult]]]:
    """The explanation as lines, and each group with its result (the real pipeline). With
    ``[auth]`` enabled, sender authentication is evaluated as the gateway does before its 250
    (real DNS queries), shown, and given to the rules and the pipeline."""
    from sanitizers.pipeline import sanitize_message

    rules = rule_set(config, lambda: today)
    lines = [
        f"envelope: from <{sender}> client {client or '(unknown)'}"
        f"{f' helo {helo}' if helo else ''}; "
        f"{len(recipients)} recipient(s); date {today.isoformat()}"
    ]
    auth = authenticate(untrusted_raw, config, Transaction(client, helo, sender))
    if auth is not None:
        lines += auth_lines(auth)
    skipped = [
        rule
        for rule in rules.expired()
        if any(rule.matches(sender=sender, recipient=r, client=client) for r in recipients)
    ]
    groups = rules.groups(sender=sender, recipients=recipients, client=client, auth=auth)
    if len(groups) > 1:
        lines.append(
            f"the recipients resolve to {len(groups)} different policies: the gateway "
            "splits the message and sanitizes one copy per group"
        )
    results: list[tuple[PolicyGroup, SanitizeResult]] = []
    by_name = {rule.name: rule for rule in config.rules}
    for number, group in enumerate(groups, 1):
        result = sanitize_message(untrusted_raw, group.policy, reference="explain", auth=auth)
        results.append((group, result))
        lines.append("")
        lines.append(f"group {number}: {', '.join(group.recipients) or '(no recipient)'}")
        if group.rules:
            lines.append(f"  rules applied (in order, later wins): {', '.join(group.rules)}")
        else:
            lines.append("  rules applied: none (the [policy] of the configuration)")
        for name in group.exceptions:
            rule = by_name[name]
            lines.append(
                f"  exception (例外措置) {name}: approved by {rule.approved_by}; "
                f"reason: {rule.reason}; expires {rule.expires}"
            )
        differences = policy_differences(config.policy, group.policy)
        if differences:
            lines.append("  policy differences:")
            for key, before, after in differences:
                lines.append(f"    {key}: {before!r} -> {after!r}")
        report = result.report
        lines.append(f"  verdict: {report.verdict}")
        rows = [
            [
                part.path,
                table_text(part.filename),
                table_text(part.detected_type or part.declared_type),
                table_text(part.kind),
                str(part.action),
                str(part.reason),
                table_text(", ".join(part.removed + [str(f) for f in part.findings])),
                table_text(part.attached_as),
            ]
            for part in report.parts
        ]
        header = [
            "part",
            "filename",
            "type",
            "kind",
            "action",
            "reason",
            "removed / found",
            "attached as",
        ]
        lines.extend("  " + line for line in format_table(header, rows))
    for rule in skipped:
        lines.append("")
        lines.append(
            f"skipped: exception {rule.name} expired on {rule.expires} (it would have matched)"
        )
    return lines, results
