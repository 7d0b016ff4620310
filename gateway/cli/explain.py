"""``mukaika explain MESSAGE.eml``: a dry run that shows which rules apply and why.

The envelope comes from ``--from``, ``--to`` (repeatable), ``--client`` and ``--helo``; without
them, the sender and recipients are read from the message's From, To and Cc headers (and the
client
address is unknown, so rules with ``networks`` do not match). Recipients are grouped by the
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
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

from gateway.cli.exit_codes import ExitCode
from gateway.cli.toolkit import CliError, add_config_option, load
from gateway.configuration.config import Config, rule_set, tenants_of
from gateway.service.explaining import explain, format_table, header_addresses, table_text
from sanitizers.errors import TemporaryFailure
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

    rules = rule_set(config, lambda: today)
    tenants = tenants_of(config)
    tenant = tenants.tenant_of(sender)
    settings = tenants.outbound(tenant)  # the sender's tenant's delay and conversion
    outside = [r for r in recipients if not config.smtp.accepts(r)]
    lines = [
        f"envelope: from <{sender}> client {client or '(unknown)'}; {len(recipients)} "
        f"recipient(s), {len(outside)} outside; date {today.isoformat()}; direction outbound",
        "order: delay → filters and approval → conversion",
        f"delay: {settings.delay_seconds:g} s (the sender may cancel meanwhile)",
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
            [str(f.reason), f.action, table_text(f.where), table_text(f.detail)]
            for f in report.findings
        ]
        lines.extend(
            "  " + line for line in format_table(["reason", "action", "where", "detail"], rows)
        )
    result = leaving(untrusted_raw, config, Signer(config.outbound.dkim), tenant)
    lines.append("")
    lines.append(f"decision (the strictest): {verdict}")
    lines.append(
        f"conversion: Bcc conversion removed {result.bcc_converted} outside address(es) "
        f"from To/Cc (threshold {settings.bcc_threshold}); DKIM: "
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
    header_sender, header_recipients = header_addresses(untrusted_raw)
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
