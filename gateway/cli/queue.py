"""``mukaika queue list|show|retry``: the operator's view of the spool.

``list`` shows each message's state, age, attempts and last error; ``show ID`` its envelope
and delivery history (never its content); ``retry ID...`` (or ``--all-deferred``) makes a
deferred message due now, or puts a dead-lettered one back in line for delivery. A running
service picks the change up at its next spool scan (``worker.rescan_seconds``).

Threat model: envelope values and replies came from outside; control characters are removed
before they reach the terminal. Queue ids from the command line are checked before use.
Exit codes: 0 success; 1 not found; 2 usage or configuration error.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

from gateway.configuration.config import ConfigError, load_config
from gateway.queue.spool import Spool, SpoolError, is_queue_id

EXIT_OK = 0
EXIT_NOT_FOUND = 1
EXIT_USAGE = 2
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _clean(value: object) -> str:
    return _CONTROL.sub("", str(value))


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("queue", help="inspect and retry spooled messages")
    parser.add_argument("--config", type=Path, help="TOML file merged over the defaults")
    parser.add_argument("--data-dir", type=Path, metavar="DIR")
    commands = parser.add_subparsers(dest="queue_command", required=True, metavar="COMMAND")
    listing = commands.add_parser("list", help="one line per spooled message")
    listing.add_argument("--state", choices=("incoming", "outgoing", "delivered", "dead"))
    listing.set_defaults(func=run_list)
    show = commands.add_parser("show", help="envelope and delivery history of one message")
    show.add_argument("queue_id")
    show.set_defaults(func=run_show)
    retry = commands.add_parser("retry", help="deliver deferred or dead messages again now")
    retry.add_argument("queue_ids", nargs="*", metavar="ID")
    retry.add_argument("--all-deferred", action="store_true")
    retry.set_defaults(func=run_retry)


def _spool(args: argparse.Namespace) -> Spool:
    if args.data_dir is not None:
        data_dir = args.data_dir
    else:
        data_dir = Path(load_config(args.config).service.data_dir)
    root = data_dir / "spool"
    if not root.is_dir():
        raise ConfigError([f"{root}: no spool here (wrong --data-dir?)"])
    return Spool(root)


def _guard(func: Any) -> Any:
    def wrapper(args: argparse.Namespace) -> int:
        try:
            code: int = func(args)
        except ConfigError as exc:
            for problem in exc.problems:
                print(f"mukaika queue: {problem}", file=sys.stderr)
            return EXIT_USAGE
        return code

    return wrapper


@_guard
def run_list(args: argparse.Namespace) -> int:
    spool = _spool(args)
    now = time.time()
    print(f"{'QUEUE ID':<26} {'STATE':<10} {'AGE':>8} {'TRIES':>5} {'RCPT':>4}  LAST ERROR")
    for state, envelope in spool.entries():
        if args.state and state != args.state:
            continue
        age = _age(now - envelope.received_at)
        print(
            f"{envelope.queue_id:<26} {state:<10} {age:>8} {envelope.attempts:>5} "
            f"{len(envelope.rcpt_tos):>4}  {_clean(envelope.last_error)[:60]}"
        )
    return EXIT_OK


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    if seconds < 172800:
        return f"{seconds / 3600:.0f}h"
    return f"{seconds / 86400:.0f}d"


@_guard
def run_show(args: argparse.Namespace) -> int:
    spool = _spool(args)
    if not is_queue_id(args.queue_id):
        print(f"mukaika queue: not a queue id: {_clean(args.queue_id)!r}", file=sys.stderr)
        return EXIT_USAGE
    state = spool.find(args.queue_id)
    if state is None:
        print(f"mukaika queue: {args.queue_id}: not found", file=sys.stderr)
        return EXIT_NOT_FOUND
    envelope = spool.envelope(state, args.queue_id)
    data = {
        "queue_id": envelope.queue_id,
        "state": state,
        "mail_from": envelope.mail_from,
        "rcpt_to": list(envelope.rcpt_tos),
        "client": envelope.client,
        "helo": envelope.helo,
        "received_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(envelope.received_at)),
        "size": envelope.size,
        "quarantine_id": envelope.quarantine_id,
        "verdict": envelope.verdict,
        "attempts": envelope.attempts,
        "next_attempt": envelope.next_attempt,
        "last_error": envelope.last_error,
        "delivered": list(envelope.delivered),
        "failed": dict(envelope.failed),
        "deliveries": list(envelope.deliveries),
    }
    print(_clean(json.dumps(data, ensure_ascii=False, indent=2)).replace("\\n", " "))
    return EXIT_OK


@_guard
def run_retry(args: argparse.Namespace) -> int:
    spool = _spool(args)
    ids = list(args.queue_ids)
    if args.all_deferred:
        ids += spool.ids("outgoing")
    if not ids:
        print("mukaika queue retry: give queue ids or --all-deferred", file=sys.stderr)
        return EXIT_USAGE
    code = EXIT_OK
    for queue_id in ids:
        if not is_queue_id(queue_id):
            print(f"mukaika queue: not a queue id: {_clean(queue_id)!r}", file=sys.stderr)
            code = EXIT_USAGE
            continue
        try:
            code = max(code, _retry(spool, queue_id))
        except SpoolError as exc:
            print(f"mukaika queue: {exc}", file=sys.stderr)
            code = max(code, EXIT_NOT_FOUND)
    return code


def _retry(spool: Spool, queue_id: str) -> int:
    state = spool.find(queue_id)
    if state == "outgoing":
        envelope, message = spool.load("outgoing", queue_id)
        spool.put("outgoing", envelope.with_(next_attempt=0.0), message)
    elif state == "dead":
        envelope, message = spool.load("dead", queue_id)
        if not message or envelope.verdict in ("", "reject"):
            print(f"mukaika queue: {queue_id}: nothing sanitized to deliver", file=sys.stderr)
            return EXIT_NOT_FOUND
        # Recipients that failed for good are tried again; the lifetime starts anew.
        rcpts = tuple(dict.fromkeys((*envelope.rcpt_tos, *(r for r, _ in envelope.failed))))
        retried = envelope.with_(
            rcpt_tos=tuple(r for r in rcpts if r not in envelope.delivered),
            failed=(),
            next_attempt=0.0,
            received_at=time.time(),
        )
        if not retried.rcpt_tos:
            print(f"mukaika queue: {queue_id}: no recipient left to retry", file=sys.stderr)
            return EXIT_NOT_FOUND
        spool.advance("dead", retried, message, "outgoing")
    else:
        print(f"mukaika queue: {queue_id}: not deferred or dead ({state})", file=sys.stderr)
        return EXIT_NOT_FOUND
    print(f"{queue_id}: due now")
    return EXIT_OK
