"""``mukaika dmarc-reports``: the DMARC aggregate reports (RFC 7489 section 7) of one day.

serve sends them by itself (``auth.reports.enabled`` and ``outbound.enabled``: the job in
:mod:`gateway.service.dmarc_reporting`). This command shows or writes one day's: the rows every
node handed in to the store, and this node's records not handed in yet (``DATA_DIR/dmarc/``),
for the day (UTC; default: yesterday); one report per domain that asks for them (``rua``),
each outside destination checked as RFC 7489 7.1 asks (real DNS queries through
``auth.nameservers``) and each report checked against the DMARC schema. ``--out DIR`` writes
each report (``.xml.gz``) and the mail that carries it (``.eml``, From
``auth.reports.from_address``), for an installation without the outbound relay (hand them to
the municipality's outgoing MTA, e.g. ``sendmail -t < FILE``); ``--dry-run`` only lists them.
Neither marks anything reported. ``--tenant NAME`` shows that tenant's mail with its own
``[tenants.auth.reports]`` (From, org_name).

Exit codes: 0 done (also with nothing to report); 2 usage; 78 invalid configuration or
reports off; 79 the store's schema is not this version's; 74 the store cannot be read.
"""

from __future__ import annotations

import argparse
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from gateway.cli.exit_codes import ExitCode
from gateway.cli.toolkit import CliError, add_config_option, data_dir, load, opened_store
from gateway.configuration.config import tenants_of
from gateway.senderauth.reports import build_reports, report_mail, schema_problems
from gateway.senderauth.resolver import Resolver
from gateway.service.dmarc_reporting import day_rows


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "dmarc-reports",
        help="show or write the DMARC aggregate reports of a day",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_config_option(parser)
    parser.add_argument(
        "--day",
        type=date.fromisoformat,
        metavar="YYYY-MM-DD",
        help="the day (UTC); default yesterday",
    )
    parser.add_argument("--out", type=Path, metavar="DIR", help="write the reports and their mails")
    parser.add_argument("--dry-run", action="store_true", help="only list what would be sent")
    parser.add_argument(
        "--tenant",
        default="",
        metavar="NAME",
        help="the reports of this tenant's mail, with its [tenants.auth.reports]",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config, _ = load(args)
    tenants = tenants_of(config)
    if args.tenant and args.tenant not in tenants.by_name:
        raise CliError(f"unknown tenant {args.tenant!r}", ExitCode.CONFIG)
    settings = tenants.auth(args.tenant).reports
    if not (config.auth.enabled and settings.enabled):
        raise CliError("auth.enabled and auth.reports.enabled must be true", ExitCode.CONFIG)
    if args.out is None and not args.dry_run:
        raise CliError("give --out DIR, or --dry-run", ExitCode.USAGE)
    day: date = args.day or (datetime.now(UTC).date() - timedelta(days=1))
    root = data_dir(args, config)
    with opened_store(config, root) as store:
        rows = day_rows(store, root / "dmarc", config.node.resolved_name(), day, args.tenant)
    resolver = Resolver(config.auth.nameservers, config.auth.timeout_seconds, 0)
    reports = build_reports(
        rows,
        day,
        org_name=settings.org_name,
        email=settings.from_address,
        lookup=resolver.budget(),
    )
    if not reports:
        print(f"{day}: nothing to report")
    for report in reports:
        problems = schema_problems(report.xml)
        if problems:
            raise CliError([f"{report.domain}: {p}" for p in problems], ExitCode.INTERNAL)
        to = ", ".join(report.destinations) or "(no destination)"
        print(f"{day} {report.domain}: report {report.report_id} to {to}")
        for why in report.refused:
            print(f"  left out: {why}")
        if args.out is not None and not args.dry_run and report.destinations:
            name, data, mail = report_mail(
                report, day, from_address=settings.from_address, org_name=settings.org_name
            )
            args.out.mkdir(parents=True, exist_ok=True)
            (args.out / name).write_bytes(data)
            (args.out / f"{name[: -len('.xml.gz')]}.eml").write_bytes(mail)
    return ExitCode.OK
