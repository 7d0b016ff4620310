"""``mukaika evidence verify DIR``: check an evidence export (``mukaika quarantine evidence``).

Run it on the gateway (as the service's user) to check the seal with the installation's secret
key as well as every file's SHA-256; ``--hashes-only`` checks the hashes without the key, which
someone who edited the export could have recomputed (:mod:`gateway.evidence.bundle` says what
each check proves).

Exit codes: 0 intact; 65 something was changed, added or removed (each problem printed, naming
the file and what changed); 66 DIR is not a directory; 78 the installation's key cannot be
read (give --hashes-only to check without it).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from gateway.cli.exit_codes import ExitCode
from gateway.cli.toolkit import CliError, add_group, data_dir, load
from gateway.configuration.secret_key import SecretKeyError, read_secret_key, secret_key_path
from gateway.evidence import bundle


def register(subparsers: Any) -> None:
    """Add ``evidence verify`` to the ``mukaika`` parser."""
    add_action = add_group(
        subparsers, "evidence", help="check an evidence export (quarantine evidence)"
    )
    verify = add_action("verify", help="exit 0 when the export is intact, 65 with the reason")
    verify.add_argument("directory", type=Path, metavar="DIR")
    verify.add_argument(
        "--hashes-only",
        action="store_true",
        help="check the SHA-256 of every file but not the seal's HMAC (no key needed)",
    )
    verify.set_defaults(func=_verify)


def _verify(args: argparse.Namespace) -> int:
    if not args.directory.is_dir():
        raise CliError(f"{args.directory}: not a directory", ExitCode.INPUT)
    key = None
    if not args.hashes_only:
        config, _ = load(args)
        path = secret_key_path(config.console.secret_key_file, data_dir(args, config))
        try:
            key = bundle.seal_key(read_secret_key(path))
        except (SecretKeyError, OSError) as exc:
            raise CliError(
                f"the installation's secret key {path}: {exc}; --hashes-only checks the "
                "hashes without it",
                ExitCode.CONFIG,
            ) from exc
    problems = bundle.verify(args.directory, key)
    if problems:
        raise CliError([f"{args.directory}: {problem}" for problem in problems], ExitCode.INTEGRITY)
    checked = "hashes (the seal's HMAC not checked)" if key is None else "hashes and seal"
    print(f"{args.directory}: intact ({checked})")
    return ExitCode.OK
