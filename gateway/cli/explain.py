"""``mukaika explain MESSAGE.eml``: a dry run that shows which rules apply and why.

The envelope comes from ``--from``, ``--to`` (repeatable) and ``--client``; without them, the
sender and recipients are read from the message's From, To and Cc headers (and the client
address is unknown, so rules with ``networks`` do not match). Recipients are grouped by the
rules that apply to them, exactly as the gateway does; for each group the real pipeline runs
with that group's effective policy, and every part is listed: its path, file name (as is,
Japanese included), detected type, action, reason, what was removed or found, and the name it
is attached under in the delivered mail.

Nothing is sent and nothing is written to disk. Exit codes (:class:`~gateway.cli.exit_codes.
ExitCode`): 0 done; 2 usage; 66 unreadable message; 75 temporary failure (a required scanner
is unavailable); 78 invalid configuration.
"""

from __future__ import annotations

import argparse
from datetime import date
from pathlib import Path
from typing import Any

from gateway.cli.exit_codes import ExitCode
from gateway.cli.toolkit import CliError, add_config_option, load
from gateway.service.explaining import explain, header_addresses
from sanitizers.errors import TemporaryFailure


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
    parser.add_argument(
        "--on", type=date.fromisoformat, metavar="YYYY-MM-DD", help="date for exception expiry"
    )
    parser.set_defaults(func=run_explain)


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
        lines, _ = explain(
            untrusted_raw,
            config,
            sender=sender,
            recipients=recipients,
            client=args.client,
            today=args.on or date.today(),
        )
    except TemporaryFailure as exc:
        raise CliError(f"temporary failure: {exc}", ExitCode.TEMPFAIL) from exc
    print(f"message: {args.message} ({len(untrusted_raw)} bytes)")
    print("\n".join(lines))
    return ExitCode.OK
