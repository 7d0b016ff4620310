"""``mukaika quarantine list|show|export|verify|purge``: the operator's view of kept originals.

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

Exit codes: 0 success; 1 not found or an I/O error; 2 usage or configuration error;
3 the stored original failed its integrity check (missing, corrupt or altered).
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import unicodedata
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gateway.evidence.quarantine import (
    DELIVERY_STATES,
    Quarantine,
    QuarantineEntry,
    QuarantineError,
    QuarantineIntegrityError,
    QuarantineNotFoundError,
    QuarantineSettings,
    clean_text,
)
from sanitizers.vocabulary import Verdict

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTEGRITY = 3

PROG = "mukaika quarantine"

Handler = Callable[[argparse.Namespace], int]


class CliError(Exception):
    """An error to report on stderr with an exit code."""

    def __init__(self, message: str, code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.code = code


def register(subparsers: Any) -> None:
    """Add ``quarantine`` and its subcommands to the ``mukaika`` parser."""
    parser = subparsers.add_parser(
        "quarantine",
        help="list, show, export, verify and purge quarantined originals",
        description="Quarantined originals: list, show, export, verify and purge.",
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data-dir", type=Path, help="data directory (holds quarantine/)")
    common.add_argument("--config", type=Path, help="configuration file (TOML)")
    actions = parser.add_subparsers(dest="quarantine_command", required=True, metavar="ACTION")

    listing = actions.add_parser("list", parents=[common], help="list entries, newest first")
    listing.add_argument("--state", choices=sorted(DELIVERY_STATES))
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

    show = actions.add_parser("show", parents=[common], help="show one entry")
    show.add_argument("id", help="quarantine id")
    show.add_argument("--json", action="store_true", help="as a JSON object")
    show.set_defaults(func=_guarded(_show))

    export = actions.add_parser(
        "export", parents=[common], help="write the verified original to a file"
    )
    export.add_argument("id", help="quarantine id")
    export.add_argument("output", help="output file, or - for stdout (not a terminal)")
    export.add_argument("--force", action="store_true", help="overwrite an existing file")
    export.set_defaults(func=_guarded(_export))

    verify = actions.add_parser(
        "verify", parents=[common], help="check stored originals against their SHA-256"
    )
    verify.add_argument("ids", nargs="*", metavar="ID", help="only these ids (default: all)")
    verify.set_defaults(func=_guarded(_verify))

    purge = actions.add_parser("purge", parents=[common], help="remove entries past retention")
    purge.add_argument(
        "--now", type=_parse_datetime, help="pretend it is this time (ISO 8601; for tests)"
    )
    purge.add_argument("--dry-run", action="store_true", help="count, remove nothing")
    purge.set_defaults(func=_guarded(_purge))

    parser.set_defaults(func=_no_action)


def _no_action(args: argparse.Namespace) -> int:  # pragma: no cover - argparse requires one
    print(f"{PROG}: error: an action is required", file=sys.stderr)
    return EXIT_USAGE


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


def _settings(args: argparse.Namespace) -> tuple[Path, QuarantineSettings]:
    """The data directory and quarantine settings from ``--data-dir`` / ``--config``."""
    from gateway.configuration.config import ConfigError, load_config

    try:
        config: Any = load_config(args.config)
    except ConfigError as exc:
        raise CliError(
            "invalid configuration:\n  " + "\n  ".join(exc.problems), EXIT_USAGE
        ) from exc
    settings = getattr(config, "quarantine", None)
    if not isinstance(settings, QuarantineSettings):
        settings = QuarantineSettings()
    if args.data_dir is not None:
        return args.data_dir, settings
    service = getattr(config, "service", None)
    data_dir = getattr(service, "data_dir", None) or getattr(config, "data_dir", None) or "var"
    return Path(data_dir), settings


def _open(args: argparse.Namespace) -> Quarantine:
    data_dir, settings = _settings(args)
    directory = settings.resolve_directory(data_dir)
    if not (directory / "index.sqlite3").is_file():
        raise CliError(f"no quarantine at {directory} (check --data-dir or --config)")
    try:
        return Quarantine.from_settings(settings, data_dir)
    except (OSError, QuarantineError) as exc:
        raise CliError(f"cannot open the quarantine at {directory}: {exc}") from exc


# -- display ---------------------------------------------------------------------------------


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _fit(text: str, columns: int) -> str:
    """Cut and pad ``text`` to ``columns`` terminal columns (full-width characters count 2)."""
    out: list[str] = []
    used = 0
    for ch in text:
        w = 2 if unicodedata.east_asian_width(ch) in "WF" else 1
        if used + w > columns - (1 if _width(text) > columns else 0):
            out.append("…")
            used += 1
            break
        out.append(ch)
        used += w
    return "".join(out) + " " * max(0, columns - used)


def _show_text(value: str | None) -> str:
    return "-" if value is None or value == "" else clean_text(value)


def _time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _list(args: argparse.Namespace) -> int:
    with _open(args) as quarantine:
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
        return EXIT_OK
    if not entries:
        print("no quarantined messages match", file=sys.stderr)
        return EXIT_OK
    header = (
        f"{'ID':<30} {'RECEIVED (UTC)':<20} {'STATE':<9} {'VERDICT':<7} {'SIZE':>9}  "
        f"{_fit('FROM', 30)}  SUBJECT"
    )
    print(header)
    for entry in entries:
        print(
            f"{entry.id:<30} {_time(entry.received_at):<20} {entry.state:<9} "
            f"{entry.verdict or '-':<7} {entry.size:>9}  "
            f"{_fit(_show_text(entry.from_ or entry.mail_from), 30)}  "
            f"{_show_text(entry.subject)}"
        )
    return EXIT_OK


def _show(args: argparse.Namespace) -> int:
    with _open(args) as quarantine:
        entry = quarantine.get(args.id)
        path = quarantine.path_of(args.id)
    if args.json:
        data = entry.to_dict()
        data["path"] = str(path)
        print(json.dumps(data, ensure_ascii=False, indent=2))
        return EXIT_OK
    for label, value in _describe(entry, path):
        print(f"{label:<13} {value}")
    return EXIT_OK


def _describe(entry: QuarantineEntry, path: Path) -> list[tuple[str, str]]:
    return [
        ("id", entry.id),
        ("queue id", _show_text(entry.queue_id)),
        ("received", _time(entry.received_at)),
        ("updated", _time(entry.updated_at)),
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
        ("file", str(path)),
    ]


def _export(args: argparse.Namespace) -> int:
    with _open(args) as quarantine:
        if args.output == "-":
            if sys.stdout.isatty():
                raise CliError(
                    "refusing to write an untrusted original to a terminal; "
                    "redirect stdout or give a file name",
                    EXIT_USAGE,
                )
            data = quarantine.read_original(args.id)
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()
            return EXIT_OK
        try:
            size = quarantine.export(args.id, Path(args.output), overwrite=args.force)
        except FileExistsError as exc:
            raise CliError(f"{args.output} exists (use --force to overwrite)") from exc
    print(f"exported {args.id} ({size} bytes, SHA-256 verified) to {args.output}", file=sys.stderr)
    return EXIT_OK


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
    with _open(args) as quarantine:
        results = _verify_ids(quarantine, args.ids) if args.ids else quarantine.verify()
        for _qid, problem in results:
            checked += 1
            if problem is not None:
                bad += 1
                print(f"FAILED {clean_text(problem)}")
    print(f"verified {checked} original(s): {checked - bad} intact, {bad} failed")
    return EXIT_INTEGRITY if bad else EXIT_OK


def _purge(args: argparse.Namespace) -> int:
    now = args.now if args.now is not None else datetime.now(UTC)
    with _open(args) as quarantine:
        count = quarantine.purge(now, dry_run=args.dry_run)
        days = quarantine.retention.total_seconds() / 86400
    verb = "would purge" if args.dry_run else "purged"
    print(f"{verb} {count} message(s) past retention ({days:g} days before {_time(now)})")
    return EXIT_OK


def _guarded(func: Handler) -> Handler:
    """Report errors on stderr as one clear line and map them to exit codes."""

    def wrapper(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except BrokenPipeError:
            raise  # the reader went away: gateway.cli.main stops quietly
        except CliError as exc:
            print(f"{PROG}: error: {exc}", file=sys.stderr)
            return exc.code
        except QuarantineNotFoundError as exc:
            print(f"{PROG}: error: {exc}", file=sys.stderr)
            return EXIT_ERROR
        except QuarantineIntegrityError as exc:
            print(f"{PROG}: integrity failure: {exc}", file=sys.stderr)
            return EXIT_INTEGRITY
        except (QuarantineError, OSError) as exc:
            print(f"{PROG}: error: {exc}", file=sys.stderr)
            return EXIT_ERROR
        except sqlite3.Error as exc:
            print(f"{PROG}: error: quarantine index: {exc}", file=sys.stderr)
            return EXIT_ERROR

    return wrapper
