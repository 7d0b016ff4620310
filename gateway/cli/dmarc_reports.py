"""``mukaika dmarc-reports``: the DMARC aggregate reports (RFC 7489 section 7) of one day.

Reads what the gateway recorded (``auth.reports.enabled``; ``DATA_DIR/dmarc/``) for the day
(UTC; default: yesterday), builds one report per domain that asks for them (``rua``), checks
each outside destination as RFC 7489 7.1 asks (real DNS queries through ``auth.nameservers``)
and checks each report against the DMARC schema. ``--out DIR`` writes each report (``.xml.gz``)
and the mail that carries it (``.eml``, From ``auth.reports.from_address``); ``--dry-run``
only lists them. Sending waits for the outbound relay (issue 19): hand the ``.eml`` files to
the municipality's outgoing MTA meanwhile (e.g. ``sendmail -t < FILE``). ``--tenant NAME``
reports that tenant's mail with its own ``[tenants.auth.reports]`` (From, org_name).

Exit codes: 0 done (also with nothing to report); 2 usage; 78 invalid configuration or
reports off.
"""

from __future__ import annotations

import argparse
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any

from gateway.cli.exit_codes import ExitCode
from gateway.cli.toolkit import CliError, add_config_option, load
from gateway.configuration.config import tenants_of
from gateway.configuration.settings import AuthReportsSettings
from gateway.senderauth.evaluate import organisational_domain
from gateway.senderauth.reports import Report, build_reports, read_day, schema_problems
from gateway.senderauth.resolver import Resolver


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "dmarc-reports",
        help="build the DMARC aggregate reports of a day",
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
    directory = Path(config.service.data_dir) / "dmarc"
    resolver = Resolver(config.auth.nameservers, config.auth.timeout_seconds, 0)
    reports = build_reports(
        read_day(directory, day, args.tenant),
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
            write(args.out, report, day, settings)
    return ExitCode.OK


def write(directory: Path, report: Report, day: date, settings: AuthReportsSettings) -> None:
    """``report`` as ``.xml.gz`` and as the mail that carries it (``.eml``)."""
    begin = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())
    end = begin + 86399
    ours = organisational_domain(settings.from_address.rpartition("@")[2])
    name = report.attachment_name(ours, begin, end)
    directory.mkdir(parents=True, exist_ok=True)
    data = report.gzipped()
    (directory / name).write_bytes(data)
    mail = EmailMessage()
    mail["From"] = settings.from_address
    mail["To"] = ", ".join(report.destinations)
    mail["Date"] = format_datetime(datetime.now(UTC))
    mail["Message-ID"] = make_msgid(domain=ours)
    mail["Subject"] = (
        f"Report Domain: {report.domain} Submitter: {ours} Report-ID: <{report.report_id}>"
    )
    mail.set_content(
        f"DMARC aggregate report for {report.domain} from {settings.org_name} ({day}, UTC).\n"
    )
    mail.add_attachment(data, maintype="application", subtype="gzip", filename=name)
    (directory / f"{name[: -len('.xml.gz')]}.eml").write_bytes(mail.as_bytes())
