"""``mukaika quarantine list|show|export|verify|evidence|purge``: the operator's view of kept
originals. ``evidence REF --out DIR`` writes a message's evidence for an incident
(:mod:`gateway.evidence.bundle`; ``mukaika evidence verify DIR`` checks it).

The quarantine lives at ``DATA_DIR/quarantine`` (or the configured directory). The data
directory comes from ``--data-dir``, else from ``service.data_dir`` in ``--config`` (or the
shipped defaults). The commands never create a quarantine: a wrong path is an error.

Threat model: every text shown (From, Subject, envelope) came from hostile mail. It is shown
as text with control characters removed, so a subject cannot move the cursor, recolour the
terminal or forge extra lines; Japanese is shown as is. ``export -`` refuses to pour an
original onto a terminal (a raw message may carry escape sequences): redirect it or give a
file name.

Run it as the service's user: SQLite creates its ``-wal``/``-shm`` files as whoever opens the
index, and files owned by root would lock the service out.

Exit codes (:class:`gateway.cli.exit_codes.ExitCode`): 0 success; 2 usage error; 4 not found;
65 the stored original failed its integrity check (missing, corrupt or altered); 74 an I/O
error; 78 invalid configuration. Times are shown in ``service.display_timezone``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any

from gateway.cli.exit_codes import ExitCode
from gateway.cli.held_mail import register_actions
from gateway.cli.toolkit import CliError, add_group, data_dir, display_zone, fit, load, show_time
from gateway.configuration.secret_key import SecretKeyError, load_secret_key, secret_key_path
from gateway.evidence import bundle
from gateway.evidence.audit import AuditLog
from gateway.evidence.quarantine import (
    ENTRY_STATES,
    Quarantine,
    QuarantineElsewhereError,
    QuarantineEntry,
    QuarantineError,
    QuarantineIntegrityError,
    QuarantineNotFoundError,
    clean_text,
    format_time,
)
from gateway.service import control
from gateway.service.control import MAX_SECRET_BYTES, secret_lines
from gateway.service.identity import acting_user
from gateway.store import StoreError, StoreMissingError, StoreSchemaError, open_store
from gateway.store.workflow import Decision, history
from sanitizers.vocabulary import AuditEvent, UnlockResult, Verdict
from sanitizers.vocabulary import label as code_label

Handler = Callable[[argparse.Namespace], int]


def register(subparsers: Any) -> None:
    """Add ``quarantine`` and its subcommands to the ``mukaika`` parser."""
    add_action = add_group(
        subparsers,
        "quarantine",
        help="list, show, export, verify, purge, release, request, approve, deny held mail",
        description="Quarantined originals: list, show, export, verify and purge; the held-mail "
        "workflow: release, request, approve, deny.",
    )
    listing = add_action("list", help="list entries, newest first")
    listing.add_argument("--state", choices=sorted(ENTRY_STATES))
    listing.add_argument("--verdict", choices=[str(v) for v in Verdict])
    listing.add_argument(
        "--since", type=_parse_datetime, help="received at or after (ISO 8601; UTC if no zone)"
    )
    listing.add_argument(
        "--until", type=_parse_datetime, help="received before (ISO 8601; UTC if no zone)"
    )
    listing.add_argument("--queue-id", help="only entries of this spool queue id")
    listing.add_argument("--limit", type=_positive_int, default=50, help="at most N (default 50)")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.set_defaults(func=_guarded(_list))

    show = add_action("show", help="show one entry")
    show.add_argument("id", help="quarantine id")
    show.add_argument("--json", action="store_true", help="as a JSON object")
    show.set_defaults(func=_guarded(_show))

    export = add_action("export", help="write the verified original to a file")
    export.add_argument("id", help="quarantine id")
    export.add_argument("output", help="output file, or - for stdout (not a terminal)")
    export.add_argument("--force", action="store_true", help="overwrite an existing file")
    export.set_defaults(func=_guarded(_export))

    verify = add_action("verify", help="check stored originals against their SHA-256")
    verify.add_argument("ids", nargs="*", metavar="ID", help="only these ids (default: all)")
    verify.set_defaults(func=_guarded(_verify))

    unlock = add_action(
        "unlock", help="give the password of a message awaiting one (PPAP) to the running serve"
    )
    unlock.add_argument("id", metavar="REF", help="the reference in the held notice")
    unlock.add_argument(
        "--password-file",
        metavar="FILE",
        help="(required) file holding the password, each line one candidate; - reads stdin",
    )
    unlock.set_defaults(func=_guarded(_unlock))

    evidence = add_action(
        "evidence",
        help="export a message as evidence: original, report, decisions, audit lines, a "
        "sealed manifest (mukaika evidence verify checks it)",
    )
    evidence.add_argument("id", metavar="REF", help="quarantine id (the reference)")
    evidence.add_argument(
        "--out", required=True, type=Path, metavar="DIR", help="a new (or empty) directory"
    )
    evidence.set_defaults(func=_guarded(_evidence))

    purge = add_action("purge", help="remove entries past retention")
    purge.add_argument(
        "--now", type=_parse_datetime, help="pretend it is this time (ISO 8601; for tests)"
    )
    purge.add_argument("--dry-run", action="store_true", help="count, remove nothing")
    purge.set_defaults(func=_guarded(_purge))

    register_actions(add_action)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 1 <= value <= 100_000:
        raise argparse.ArgumentTypeError("must be between 1 and 100000")
    return value


def _parse_datetime(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not an ISO 8601 date or time: {text!r} (e.g. 2026-11-22 or 2026-11-22T09:00+09:00)"
        ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value


# -- opening the quarantine ------------------------------------------------------------------


@contextlib.contextmanager
def _open(args: argparse.Namespace) -> Iterator[tuple[Quarantine, tzinfo | None]]:
    """The quarantine of ``--data-dir`` / ``--config`` (its index in the store), and the
    operator's time zone."""
    config, _ = load(args)
    root = data_dir(args, config)
    directory = config.quarantine.resolve_directory(root)
    try:
        store = open_store(config.store, config.quarantine, root)
    except StoreMissingError as exc:
        raise CliError(
            f"no quarantine at {directory}: {exc} (check --data-dir or --config)",
            ExitCode.NOT_FOUND,
        ) from exc
    except StoreSchemaError as exc:
        raise CliError(str(exc), ExitCode.STORE_SCHEMA) from exc
    except StoreError as exc:
        raise CliError(f"cannot open the store: {exc}", ExitCode.IO_ERROR) from exc
    with store:
        try:
            quarantine = Quarantine.from_settings(
                config.quarantine, root, store, config.node.resolved_name()
            )
        except (OSError, QuarantineError) as exc:
            raise CliError(
                f"cannot open the quarantine at {directory}: {exc}", ExitCode.IO_ERROR
            ) from exc
        with quarantine:
            yield quarantine, display_zone(config)


# -- display ---------------------------------------------------------------------------------


def _show_text(value: str | None) -> str:
    return "-" if value is None or value == "" else clean_text(value)


def _list(args: argparse.Namespace) -> int:
    with _open(args) as (quarantine, zone):
        entries = quarantine.list(
            state=args.state,
            verdict=args.verdict,
            since=args.since,
            until=args.until,
            queue_id=args.queue_id,
            limit=args.limit,
        )
    if args.json:
        for entry in entries:
            print(json.dumps(entry.to_dict(), ensure_ascii=False))
        return ExitCode.OK
    if not entries:
        print("no quarantined messages match", file=sys.stderr)
        return ExitCode.OK
    header = (
        f"{'ID':<30} {'RECEIVED':<26} {'STATE':<9} {'VERDICT':<7} {'SIZE':>9}  "
        f"{fit('FROM', 30)}  SUBJECT"
    )
    print(header)
    for entry in entries:
        print(
            f"{entry.id:<30} {show_time(entry.received_at, zone):<26} {entry.state:<9} "
            f"{entry.verdict or '-':<7} {entry.size:>9}  "
            f"{fit(_show_text(entry.from_ or entry.mail_from), 30)}  "
            f"{_show_text(entry.subject)}"
        )
    return ExitCode.OK


def _show(args: argparse.Namespace) -> int:
    with _open(args) as (quarantine, zone):
        entry = quarantine.get(args.id)
        path = quarantine.where_kept(args.id)
        decisions = history(quarantine.index.store, args.id)
    if args.json:
        data = entry.to_dict()
        data["path"] = path
        data["decisions"] = [
            {key: format_time(v) if isinstance(v, datetime) else v for key, v in d.items()}
            for d in (decision.to_dict() for decision in decisions)
        ]
        print(json.dumps(data, ensure_ascii=False, indent=2))
        return ExitCode.OK
    for label, value in _describe(entry, path, zone):
        print(f"{label:<13} {value}")
    for decision in decisions:
        print(f"{'decision':<13} {_decision_line(decision, zone)}")
    return ExitCode.OK


def _decision_line(decision: Decision, zone: tzinfo | None) -> str:
    """One recorded decision: who asked, who decided, why, until when, what serve did."""
    words = [
        f"#{decision.id} {decision.kind} {decision.state}",
        f"by {decision.requested_by} {show_time(decision.requested_at, zone)}",
    ]
    if decision.parts:
        words.append(f"parts {','.join(decision.parts)}")
    if decision.reason:
        words.append(f"reason {_show_text(decision.reason)!r}")
    if decision.decided_by and decision.decided_by != decision.requested_by:
        words.append(f"decided by {decision.decided_by}")
    if decision.decision_reason:
        words.append(f"because {_show_text(decision.decision_reason)!r}")
    if decision.expires_at is not None:
        words.append(f"expires {show_time(decision.expires_at, zone)}")
    if decision.raised_limits:
        words.append("limits " + ",".join(f"{k}={v:g}" for k, v in decision.raised_limits.items()))
    if decision.outcome:
        words.append(f"serve: {_show_text(decision.outcome)}")
    return "; ".join(words)


def _describe(entry: QuarantineEntry, path: str, zone: tzinfo | None) -> list[tuple[str, str]]:
    return [
        ("id", entry.id),
        ("queue id", _show_text(entry.queue_id)),
        ("received", show_time(entry.received_at, zone)),
        ("updated", show_time(entry.updated_at, zone)),
        ("state", entry.state),
        ("verdict", entry.verdict or "- (not sanitized yet)"),
        ("reasons", ", ".join(entry.reasons) or "-"),
        ("from", _show_text(entry.from_)),
        ("subject", _show_text(entry.subject)),
        ("message-id", _show_text(entry.message_id)),
        ("client", _show_text(entry.client)),
        ("helo", _show_text(entry.helo)),
        ("mail from", _show_text(entry.mail_from) if entry.mail_from else "<> (null sender)"),
        ("rcpt to", ", ".join(_show_text(r) for r in entry.rcpt_to) or "-"),
        ("size", f"{entry.size} bytes ({entry.stored_size} stored)"),
        ("sha256", entry.sha256),
        ("file", path),
    ]


def _export(args: argparse.Namespace) -> int:
    with _open(args) as (quarantine, _):
        if args.output == "-":
            if sys.stdout.isatty():
                raise CliError(
                    "refusing to write an untrusted original to a terminal; "
                    "redirect stdout or give a file name",
                    ExitCode.USAGE,
                )
            data = quarantine.read_original(args.id)
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()
            return ExitCode.OK
        try:
            size = quarantine.export(args.id, Path(args.output), overwrite=args.force)
        except FileExistsError as exc:
            raise CliError(
                f"{args.output} exists (use --force to overwrite)", ExitCode.USAGE
            ) from exc
    print(f"exported {args.id} ({size} bytes, SHA-256 verified) to {args.output}", file=sys.stderr)
    return ExitCode.OK


def _evidence(args: argparse.Namespace) -> int:
    """The evidence of one message (gateway.evidence.bundle says what and why)."""
    config, _ = load(args)
    root = data_dir(args, config)
    try:
        key = load_secret_key(secret_key_path(config.console.secret_key_file, root))
    except (SecretKeyError, OSError) as exc:
        raise CliError(f"the installation's secret key: {exc}", ExitCode.CONFIG) from exc
    actor = acting_user()
    node = config.node.resolved_name()
    with _open(args) as (quarantine, _):
        try:
            exported = bundle.export(
                quarantine,
                args.id,
                args.out,
                audit_path=config.audit.resolve_path(root),
                key=bundle.seal_key(key),
                actor=actor,
                node=node,
            )
        except bundle.EvidenceError as exc:
            raise CliError(str(exc), ExitCode.USAGE) from exc
    with AuditLog.from_settings(config.audit, root, node) as audit:
        audit.write(
            {
                "event": AuditEvent.EVIDENCE,
                "quarantine_id": args.id,
                "actor": actor,
                "sha256": exported.manifest_sha256,
                "outcome": f"exported to {args.out}",
            }
        )
    print(f"evidence of {args.id} written to {args.out}: {', '.join(exported.files)}")
    print(f"{exported.audit_lines} audit line(s); manifest SHA-256 {exported.manifest_sha256}")
    print(f"check it with: mukaika evidence verify {args.out}")
    return ExitCode.OK


def _verify_ids(quarantine: Quarantine, ids: list[str]) -> Iterator[tuple[str, str | None]]:
    for qid in ids:
        try:
            quarantine.read_original(qid)
        except QuarantineIntegrityError as exc:
            yield qid, str(exc)
        else:
            yield qid, None


def _verify(args: argparse.Namespace) -> int:
    checked = 0
    bad = 0
    with _open(args) as (quarantine, _):
        results = _verify_ids(quarantine, args.ids) if args.ids else quarantine.verify()
        for _qid, problem in results:
            checked += 1
            if problem is not None:
                bad += 1
                print(f"FAILED {clean_text(problem)}")
    print(f"verified {checked} original(s): {checked - bad} intact, {bad} failed")
    return ExitCode.INTEGRITY if bad else ExitCode.OK


def _purge(args: argparse.Namespace) -> int:
    now = args.now if args.now is not None else datetime.now(UTC)
    with _open(args) as (quarantine, zone):
        count = quarantine.purge(now, dry_run=args.dry_run)
        days = quarantine.retention.total_seconds() / 86400
    verb = "would purge" if args.dry_run else "purged"
    when = show_time(now, zone)
    print(f"{verb} {count} message(s) past retention ({days:g} days before {when})")
    return ExitCode.OK


# What each answer of the service means for the command's exit status.
_UNLOCK_EXIT: dict[str, ExitCode] = {
    UnlockResult.UNLOCKED: ExitCode.OK,
    UnlockResult.WRONG_PASSWORD: ExitCode.WRONG_PASSWORD,
    UnlockResult.NO_ATTEMPTS_LEFT: ExitCode.WRONG_STATE,
    UnlockResult.WRONG_STATE: ExitCode.WRONG_STATE,
    UnlockResult.NOT_FOUND: ExitCode.NOT_FOUND,
    UnlockResult.HELD: ExitCode.HOLD,
    UnlockResult.FAILED: ExitCode.TEMPFAIL,
}


def _read_secret(name: str) -> bytes:
    """The password file's bytes (bounded), or standard input's for ``-``."""
    try:
        if name == "-":
            return sys.stdin.buffer.read(MAX_SECRET_BYTES + 1)
        with open(name, "rb") as handle:
            return handle.read(MAX_SECRET_BYTES + 1)
    except OSError as exc:
        raise CliError(f"cannot read {name}: {exc.strerror}", ExitCode.INPUT) from exc


def _unlock(args: argparse.Namespace) -> int:
    """Hand the password to ``serve`` over its control socket (never argv, the environment
    or a file of ours); ``serve`` tries it in the isolated sanitizer and, when it opens the
    attachment, spools the sanitized mail for the held copy's recipients."""
    if args.password_file is None:
        raise CliError("--password-file FILE is required (- reads standard input)", ExitCode.USAGE)
    config, _ = load(args)
    secret = _read_secret(args.password_file)
    if len(secret) > MAX_SECRET_BYTES:
        raise CliError(f"the password file is larger than {MAX_SECRET_BYTES} bytes", ExitCode.USAGE)
    if not secret_lines(secret, 1):
        raise CliError("the password file holds no password (UTF-8, one per line)", ExitCode.USAGE)
    root = data_dir(args, config)
    try:
        answer = control.request(root, "unlock", args.id, secret)
    except OSError as exc:
        raise CliError(
            f"cannot reach the running mukaika serve at {control.socket_path(root)} "
            f"({exc.strerror or exc}); unlocking needs the service",
            ExitCode.UNAVAILABLE,
        ) from exc
    del secret
    raw_result = str(answer.get("result"))
    if raw_result not in UnlockResult.__members__.values():
        raise CliError(
            f"the service refused the request ({clean_text(raw_result, 40)})", ExitCode.UNAVAILABLE
        )
    result = UnlockResult(raw_result)
    attempts, remaining = answer.get("attempts", 0), answer.get("remaining", 0)
    line = f"{args.id}: {code_label(result, 'en')} / {code_label(result, 'ja')}"
    if result in (UnlockResult.UNLOCKED, UnlockResult.WRONG_PASSWORD, UnlockResult.HELD):
        line += f" (attempt {attempts}, {remaining} left)"
    if result is UnlockResult.UNLOCKED:
        print(f"{line}; queue id {answer.get('queue_id')}")
        return ExitCode.OK
    raise CliError(line, _UNLOCK_EXIT[result])


def _guarded(func: Handler) -> Handler:
    """The quarantine's errors as :class:`CliError` with their exit codes."""

    def wrapper(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except BrokenPipeError:
            raise  # the reader went away: gateway.cli.main stops quietly
        except (QuarantineNotFoundError, QuarantineElsewhereError) as exc:
            raise CliError(str(exc), ExitCode.NOT_FOUND) from exc
        except QuarantineIntegrityError as exc:
            raise CliError(f"integrity failure: {exc}", ExitCode.INTEGRITY) from exc
        except (QuarantineError, OSError) as exc:
            raise CliError(str(exc), ExitCode.IO_ERROR) from exc
        except StoreError as exc:
            raise CliError(f"store: {exc}", ExitCode.IO_ERROR) from exc

    return wrapper
