"""``mukaika explain MESSAGE.eml``: a dry run that shows which rules apply and why.

The envelope comes from ``--from``, ``--to`` (repeatable), ``--client`` and ``--helo``; without
them, the sender and recipients are read from the message's From, To and Cc headers (and the
client address is unknown, so rules with ``networks`` do not match). With ``[auth]`` enabled,
sender authentication is evaluated as the gateway does before its 250 (real DNS queries
through ``auth.nameservers``), its results and action are shown, and rules with ``auth``
match them. Recipients are grouped by the
rules that apply to them, exactly as the gateway does; for each group the real pipeline runs
with that group's effective policy, and every part is listed: its path, file name (as is,
Japanese included), detected type, action, reason, what was removed or found, and the name it
is attached under in the delivered mail.

``--direction outbound`` shows the outbound decision instead (the checks of each group's
policy, the strictest deciding, then the Bcc conversion and DKIM signature of what would
leave) and exits like ``sanitize``: 0 pass, 10 hold, 11 reject.

Nothing is sent and nothing is written to disk. Exit codes (:class:`~gateway.cli.exit_codes.
ExitCode`): 0 done; 2 usage; 66 unreadable message; 75 temporary failure (a required scanner
is unavailable); 78 invalid configuration.
"""

from __future__ import annotations

import argparse
import unicodedata
from collections.abc import Mapping, Sequence
from datetime import date
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from email.utils import getaddresses
from pathlib import Path
from typing import Any

from gateway.cli.exit_codes import ExitCode
from gateway.cli.toolkit import CliError, add_config_option, load
from gateway.configuration.config import Config
from gateway.configuration.rules import PolicyGroup, RuleSet
from gateway.senderauth.evaluate import Transaction, authenticate
from sanitizers.errors import TemporaryFailure
from sanitizers.policy import Policy
from sanitizers.report import SanitizeResult
from sanitizers.safetext import terminal_text
from sanitizers.senderauth import AuthOutcome
from sanitizers.vocabulary import Verdict


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "explain",
        help="dry run: which rules apply to a mail and what each part would become",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("message", type=Path, help="the mail (.eml)")
    add_config_option(parser)
    parser.add_argument("--from", dest="sender", metavar="ADDR", help="envelope sender")
    parser.add_argument(
        "--to", dest="recipients", action="append", default=[], metavar="ADDR", help="recipient"
    )
    parser.add_argument("--client", default="", metavar="IP", help="the sending client's address")
    parser.add_argument("--helo", default="", metavar="NAME", help="the client's HELO name")
    parser.add_argument(
        "--on", type=date.fromisoformat, metavar="YYYY-MM-DD", help="date for exception expiry"
    )
    parser.add_argument(
        "--direction",
        choices=("inbound", "outbound"),
        default="inbound",
        help="outbound: the checks of mail leaving for the Internet, with their reason codes",
    )
    parser.set_defaults(func=run_explain)


def _header_addresses(untrusted_raw: bytes) -> tuple[str, list[str]]:
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


def _clean(text: str | None) -> str:
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
    """The explanation as lines, and each group with its result (the real pipeline)."""
    from sanitizers.pipeline import sanitize_message

    rules = RuleSet(config.policy, config.rules, lambda: today)
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
                _clean(part.filename),
                _clean(part.detected_type or part.declared_type),
                _clean(part.kind),
                str(part.action),
                str(part.reason),
                _clean(", ".join(part.removed + [str(f) for f in part.findings])),
                _clean(part.attached_as),
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


def explain_outbound(
    untrusted_raw: bytes,
    config: Config,
    *,
    sender: str,
    recipients: Sequence[str],
    client: str,
    today: date,
) -> tuple[list[str], Verdict]:
    """The outbound decision as lines: the checks of each recipient group's policy (the
    strictest decides the whole mail, as the gateway does), then what leaves."""
    from gateway.outbound.checking import clamd_scan
    from gateway.outbound.leaving import Signer, leaving
    from sanitizers.outbound_checks import check_outbound

    rules = RuleSet(config.policy, config.rules, lambda: today)
    outside = [r for r in recipients if not config.smtp.accepts(r)]
    lines = [
        f"envelope: from <{sender}> client {client or '(unknown)'}; {len(recipients)} "
        f"recipient(s), {len(outside)} outside; date {today.isoformat()}; direction outbound",
        "order: delay → filters and approval → conversion",
        f"delay: {config.outbound.delay_seconds:g} s (the sender may cancel meanwhile)",
    ]
    verdict = Verdict.DELIVER
    scan = clamd_scan(config.scanner) if config.scanner.enabled else None
    groups = rules.groups(sender=sender, recipients=recipients, client=client)
    for number, group in enumerate(groups, 1):
        report = check_outbound(
            untrusted_raw,
            group.policy,
            recipients=recipients,
            is_outside=lambda address: not config.smtp.accepts(address),
            scan=scan,
        )
        if _STRICTNESS[report.verdict] > _STRICTNESS[verdict]:
            verdict = report.verdict
        lines.append("")
        lines.append(f"group {number}: {', '.join(group.recipients) or '(no recipient)'}")
        lines.append(f"  rules applied: {', '.join(group.rules) or 'none'}")
        lines.append(f"  verdict: {report.verdict}")
        rows = [
            [str(f.reason), f.action, _clean(f.where), _clean(f.detail)] for f in report.findings
        ]
        lines.extend(
            "  " + line for line in format_table(["reason", "action", "where", "detail"], rows)
        )
    result = leaving(untrusted_raw, config, Signer(config.outbound.dkim))
    lines.append("")
    lines.append(f"decision (the strictest): {verdict}")
    lines.append(
        f"conversion: Bcc conversion removed {result.bcc_converted} outside address(es) "
        f"from To/Cc (threshold {config.outbound.bcc_threshold}); DKIM: "
        f"{result.dkim_domain or 'not signed (no key for the From domain)'}"
    )
    return lines, verdict


_STRICTNESS = {Verdict.DELIVER: 0, Verdict.HOLD: 1, Verdict.REJECT: 2}
_VERDICT_EXIT = {
    Verdict.DELIVER: ExitCode.OK,
    Verdict.HOLD: ExitCode.HOLD,
    Verdict.REJECT: ExitCode.REJECT,
}


def run_explain(args: argparse.Namespace) -> int:
    config, _ = load(args)
    try:
        untrusted_raw = args.message.read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read {args.message}: {exc.strerror}", ExitCode.INPUT) from exc
    header_sender, header_recipients = _header_addresses(untrusted_raw)
    sender = args.sender if args.sender is not None else header_sender
    recipients = args.recipients or header_recipients
    try:
        if args.direction == "outbound":
            lines, verdict = explain_outbound(
                untrusted_raw,
                config,
                sender=sender,
                recipients=recipients,
                client=args.client,
                today=args.on or date.today(),
            )
        else:
            lines, _ = explain(
                untrusted_raw,
                config,
                sender=sender,
                recipients=recipients,
                client=args.client,
                today=args.on or date.today(),
                helo=args.helo,
            )
    except TemporaryFailure as exc:
        raise CliError(f"temporary failure: {exc}", ExitCode.TEMPFAIL) from exc
    print(f"message: {args.message} ({len(untrusted_raw)} bytes)")
    print("\n".join(lines))
    if args.direction == "outbound":
        return _VERDICT_EXIT[verdict]
    return ExitCode.OK
