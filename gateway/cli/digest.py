"""``mukaika digest send [--dry-run]``: the daily digests and the operators' summary, now.

Builds, for the day before now, the digest of each recipient address with held mail and the
summary for ``digest.summary_recipients`` (:mod:`gateway.service.digests`), and sends them
through the LGWAN-side MTA (``delivery.relay_host``); with ``--dry-run`` they are printed (each
mail's recipients, subject and text) and nothing is sent. serve sends them itself every day
at ``digest.send_at`` when ``digest.enabled``; this command is for a first look, a test, or a
day serve missed. The links need ``console.public_url``.

Exit codes: 0 done (also with nothing to send); 4 no store; 74 the store cannot be read, or a
mail could not be sent; 78 invalid configuration (no console.public_url); 79 the store's
schema is not this program's.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
from typing import Any

from gateway.cli.exit_codes import ExitCode
from gateway.cli.toolkit import CliError, add_group, data_dir, load, opened_store
from gateway.configuration.secret_key import load_secret_key, secret_key_path
from gateway.delivery.bounces import notice_sender
from gateway.evidence.audit import AuditLog
from gateway.processing.unlock_links import digest_links
from gateway.service.digests import Digests
from gateway.service.identity import acting_user
from gateway.store import StoreError


def register(subparsers: Any) -> None:
    add_action = add_group(
        subparsers, "digest", help="the daily digests of held mail and the operators' summary"
    )
    send = add_action(
        "send",
        help="send the digests and the summary of the day before now",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    send.add_argument("--dry-run", action="store_true", help="print them; send nothing")
    send.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config, _ = load(args)
    console = config.console
    if not console.public_url:
        raise CliError(
            "console.public_url is not set: the digests' links would lead nowhere",
            ExitCode.CONFIG,
        )
    root = data_dir(args, config)
    store = opened_store(config, root)
    key = load_secret_key(secret_key_path(console.secret_key_file, root))
    links = digest_links(key, console.public_url, config.digest.link_lifetime_seconds)
    sender = notice_sender(config.delivery, config.smtp.hostname or socket.getfqdn())
    with store, AuditLog.from_settings(config.audit, root, config.node.resolved_name()) as audit:
        digests = Digests(config, store, links, audit, sender)
        try:
            mails = digests.build()
        except StoreError as exc:
            raise CliError(f"store: {exc}", ExitCode.IO_ERROR) from exc
        if args.dry_run:
            for mail in mails:
                print(f"To: {', '.join(mail.to)}")
                print(f"Subject: {mail.subject}")
                print()
                print(mail.text)
            print(f"{len(mails)} mail(s); nothing sent (--dry-run)")
            return ExitCode.OK
        sent, failed = asyncio.run(digests.send(mails, acting_user()))
    print(f"{sent} mail(s) sent, {failed} failed")
    if failed:
        raise CliError(f"{failed} mail(s) could not be sent (see the log)", ExitCode.IO_ERROR)
    return ExitCode.OK
