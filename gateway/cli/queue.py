"""``mukaika queue list|show|retry``: the operator's view of the spool.

``list`` shows each message's state, age, attempts and last error; ``show ID`` its envelope
and delivery history (never its content), readable by default and JSON with ``--json``;
``ID`` is a queue id or the reference number printed in notices. ``retry ID...`` (or
``--all-deferred``) makes a deferred message due now, or puts a dead-lettered one back in
line for delivery. A running service picks the change up at its next spool scan
(``worker.rescan_seconds``). Times are shown in ``service.display_timezone``.

Threat model: envelope values and replies came from outside; control characters are removed
before they reach the terminal. Queue ids and references from the command line are checked
before use. Exit codes: :class:`gateway.cli.exit_codes.ExitCode`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime, tzinfo
from typing import Any

from gateway.cli.exit_codes import ExitCode
from gateway.cli.toolkit import (
    CliError,
    add_group,
    data_dir,
    display_zone,
    load,
    shorten,
    show_time,
)
from gateway.evidence.quarantine import is_valid_id
from gateway.queue.spool import STATES, Envelope, Spool, SpoolError, is_queue_id
from sanitizers.safetext import terminal_text
from sanitizers.vocabulary import Verdict

# Columns of the last error in ``queue list``; ``queue show`` prints it whole.
LIST_ERROR_COLUMNS = 60


def _clean(value: object) -> str:
    return terminal_text(str(value))


def register(subparsers: Any) -> None:
    add_action = add_group(subparsers, "queue", help="inspect and retry spooled messages")
    listing = add_action("list", help="one line per spooled message")
    listing.add_argument("--state", choices=(*STATES, "held"))
    listing.set_defaults(func=run_list)
    show = add_action("show", help="envelope and delivery history of one message")
    show.add_argument("queue_id", metavar="ID", help="queue id, or the reference in a notice")
    show.add_argument("--json", action="store_true", help="one JSON object (UTC times)")
    show.set_defaults(func=run_show)
    retry = add_action("retry", help="deliver deferred or dead messages again now")
    retry.add_argument("queue_ids", nargs="*", metavar="ID")
    retry.add_argument("--all-deferred", action="store_true")
    retry.set_defaults(func=run_retry)


def _open(args: argparse.Namespace) -> tuple[Spool, tzinfo | None]:
    config, _ = load(args)
    root = data_dir(args, config) / "spool"
    if not root.is_dir():
        raise CliError(f"{root}: no spool here (wrong --data-dir?)", ExitCode.NOT_FOUND)
    return Spool(root), display_zone(config)


def shown_state(state: str, envelope: Envelope) -> str:
    """The state an operator reads: a held message was delivered as a notice, not as mail."""
    if state == "delivered" and envelope.verdict == Verdict.HOLD:
        return "held"
    return state


def run_list(args: argparse.Namespace) -> int:
    spool, _ = _open(args)
    now = time.time()
    print(f"{'QUEUE ID':<26} {'STATE':<10} {'AGE':>8} {'TRIES':>5} {'RCPT':>4}  LAST ERROR")
    for state, envelope in spool.entries():
        shown = shown_state(state, envelope)
        if args.state and shown != args.state:
            continue
        age = _age(now - envelope.received_at)
        error = shorten(_clean(envelope.last_error), LIST_ERROR_COLUMNS)
        print(
            f"{envelope.queue_id:<26} {shown:<10} {age:>8} {envelope.attempts:>5} "
            f"{len(envelope.rcpt_tos):>4}  {error}".rstrip()
        )
    return ExitCode.OK


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    if seconds < 172800:
        return f"{seconds / 3600:.0f}h"
    return f"{seconds / 86400:.0f}d"


def _find(spool: Spool, wanted: str) -> tuple[str, Envelope]:
    """The message with queue id or notice reference (quarantine id) ``wanted``."""
    if is_queue_id(wanted):
        state = spool.find(wanted)
        if state is not None:
            return state, spool.envelope(state, wanted)
    elif is_valid_id(wanted):
        for state, envelope in spool.entries():
            if envelope.quarantine_id == wanted:
                return state, envelope
    else:
        raise CliError(f"not a queue id or reference: {_clean(wanted)!r}", ExitCode.USAGE)
    raise CliError(f"{wanted}: not found", ExitCode.NOT_FOUND)


def _utc(epoch: float) -> str | None:
    if not epoch:
        return None
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def as_json(state: str, envelope: Envelope) -> dict[str, Any]:
    """What ``show --json`` prints: times as RFC 3339 in UTC, never epoch floats."""
    return {
        "queue_id": envelope.queue_id,
        "reference": envelope.quarantine_id,
        "state": shown_state(state, envelope),
        "spool_state": state,
        "mail_from": envelope.mail_from,
        "rcpt_to": list(envelope.rcpt_tos),
        "client": envelope.client,
        "helo": envelope.helo,
        "received_at": _utc(envelope.received_at),
        "size_bytes": envelope.size,
        "verdict": envelope.verdict,
        "attempts": envelope.attempts,
        "next_attempt_at": _utc(envelope.next_attempt),
        "last_error": envelope.last_error,
        "delivered": list(envelope.delivered),
        "failed": dict(envelope.failed),
        "deliveries": list(envelope.deliveries),
    }


def as_text(state: str, envelope: Envelope, zone: tzinfo | None) -> list[str]:
    """What ``show`` prints: one labelled line per fact, times in ``zone``."""
    rows: list[tuple[str, str]] = [
        ("Queue ID", envelope.queue_id),
        ("Reference", envelope.quarantine_id or "-"),
        ("State", shown_state(state, envelope)),
        ("Received", show_time(envelope.received_at, zone)),
        ("From", f"<{envelope.mail_from}>"),
        ("To", ", ".join(envelope.rcpt_tos) or "-"),
        (
            "Client",
            f"{envelope.client} (HELO {envelope.helo})" if envelope.helo else envelope.client,
        ),
        ("Size", f"{envelope.size:,} bytes"),
        ("Verdict", envelope.verdict or "- (not sanitized yet)"),
        ("Attempts", str(envelope.attempts)),
    ]
    if envelope.next_attempt and state == "outgoing":
        rows.append(("Next attempt", show_time(envelope.next_attempt, zone)))
    if envelope.last_error:
        rows.append(("Last error", envelope.last_error))
    if envelope.delivered:
        rows.append(("Delivered to", ", ".join(envelope.delivered)))
    rows.extend(("Failed", f"{rcpt}: {reply}") for rcpt, reply in envelope.failed)
    for entry in envelope.deliveries:
        moment = entry.get("time")
        when = show_time(datetime.fromisoformat(moment), zone) if isinstance(moment, str) else "?"
        rows.append(
            (
                "Delivery",
                f"{when} #{entry.get('attempt', '?')} {entry.get('host', '')} "
                f"{entry.get('code', '')} {entry.get('reply', '')}",
            )
        )
    return [f"{label + ':':<14}{_clean(value)}" for label, value in rows]


def run_show(args: argparse.Namespace) -> int:
    spool, zone = _open(args)
    state, envelope = _find(spool, args.queue_id)
    if args.json:
        print(json.dumps(as_json(state, envelope), ensure_ascii=True))
    else:
        print("\n".join(as_text(state, envelope, zone)))
    return ExitCode.OK


def run_retry(args: argparse.Namespace) -> int:
    spool, _ = _open(args)
    ids = list(args.queue_ids)
    if not ids and not args.all_deferred:
        raise CliError("give queue ids or --all-deferred", ExitCode.USAGE)
    if args.all_deferred:
        deferred = spool.ids("outgoing")
        if not deferred:
            print("nothing is deferred: no message to retry")
        ids += deferred
    code = ExitCode.OK
    for queue_id in ids:
        try:
            _retry(spool, queue_id)
        except CliError as exc:
            for problem in exc.problems:
                print(f"mukaika queue: {problem}", file=sys.stderr)
            code = max(code, exc.code)
    return code


def _retry(spool: Spool, queue_id: str) -> None:
    if not is_queue_id(queue_id):
        raise CliError(f"not a queue id: {_clean(queue_id)!r}", ExitCode.USAGE)
    state = spool.find(queue_id)
    try:
        if state == "outgoing":
            envelope, message = spool.load("outgoing", queue_id)
            spool.put("outgoing", envelope.with_(next_attempt=0.0), message)
        elif state == "dead":
            _revive(spool, queue_id)
        elif state is None:
            raise CliError(f"{queue_id}: not found", ExitCode.NOT_FOUND)
        else:
            envelope = spool.envelope(state, queue_id)
            shown = shown_state(state, envelope)
            raise CliError(f"{queue_id}: not deferred or dead ({shown})", ExitCode.WRONG_STATE)
    except SpoolError as exc:
        raise CliError(f"{queue_id}: {exc}", ExitCode.IO_ERROR) from exc
    print(f"{queue_id}: due now")


def _revive(spool: Spool, queue_id: str) -> None:
    """A dead letter back in line: recipients that failed for good are tried again and the
    lifetime starts anew."""
    envelope, message = spool.load("dead", queue_id)
    if not message or envelope.verdict in ("", Verdict.REJECT):
        raise CliError(f"{queue_id}: nothing sanitized to deliver", ExitCode.WRONG_STATE)
    rcpts = tuple(dict.fromkeys((*envelope.rcpt_tos, *(r for r, _ in envelope.failed))))
    retried = envelope.with_(
        rcpt_tos=tuple(r for r in rcpts if r not in envelope.delivered),
        failed=(),
        next_attempt=0.0,
        received_at=time.time(),
    )
    if not retried.rcpt_tos:
        raise CliError(f"{queue_id}: no recipient left to retry", ExitCode.WRONG_STATE)
    spool.advance("dead", retried, message, "outgoing")
