"""The ``mukaika`` command. Each subcommand lives in its own module with a ``register``."""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import select
import sys
from collections.abc import Sequence

from gateway.cli.exit_codes import ExitCode
from gateway.cli.toolkit import CliError

# Modules that add a subcommand: each defines ``register(subparsers)`` which sets ``func``.
SUBCOMMAND_MODULES = (
    "gateway.cli.sanitize",
    "gateway.cli.quarantine",
    "gateway.cli.serve",
    "gateway.cli.queue",
    "gateway.cli.check_config",
    "gateway.cli.explain",
    "gateway.cli.store",
    "gateway.cli.user",
    "gateway.cli.dmarc_reports",
    "gateway.cli.console",
    "gateway.cli.outbound",
    "gateway.cli.evidence",
    "gateway.cli.digest",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mukaika",
        description="Mail-sanitization gateway (無害化通信): text-only mail with disarmed files.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
        sys.stdout.flush()
    except CliError as exc:
        for problem in exc.problems:
            print(f"mukaika {args.command}: {problem}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        return ExitCode.INTERRUPTED
    except BrokenPipeError as error:
        if error.errno != errno.EPIPE or not _stdout_reader_gone():
            raise  # a pipe or socket of the command's own work: a real error, shown as one
        # The reader of our output is gone: no traceback; and stdout now points at /dev/null,
        # so the interpreter's own flush at exit cannot fail a second time.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return ExitCode.BROKEN_PIPE
    return code


def _stdout_reader_gone() -> bool:
    """Whether stdout is a pipe nobody reads any more (the kernel reports an error on it)."""
    try:
        fd = sys.stdout.fileno()
    except (OSError, ValueError):
        return False
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    return any(events & select.POLLERR for _, events in poller.poll(0))
