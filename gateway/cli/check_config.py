"""``mukaika check-config``: validate the whole layered configuration without starting.

Reads the shipped defaults, the main file (``--config FILE``) and every ``local.d/*.toml``
beside it, validates the merged result, and prints the effective configuration (TOML, or JSON
with ``--json``) on stdout. Every file the configuration names (TLS certificate, key and CA
bundle, notice templates) must exist and be usable by the user running the check (run it as the
service user). Every error goes to stderr as ``FILE: KEY: message``. Exceptions
(例外措置) past their expiry date are reported as warnings: they are skipped when matching.
A configuration with the malware scanner off gets a warning too (the exit code stays 0): the
policies require a malware check at the Internet gateway. So does a user of the existing store
whose tenant the configuration does not name.

Exit codes (:class:`gateway.cli.exit_codes.ExitCode`): 0 valid; 6 valid, but with expired
exceptions; 78 invalid; 2 usage error. ``--defaults`` prints ``config/defaults.toml``.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path
from typing import Any

from gateway.cli.exit_codes import ExitCode
from gateway.cli.toolkit import CliError, add_config_option, data_dir, load
from gateway.configuration.config import Config, rule_set
from gateway.configuration.toml_text import defaults_toml, to_toml
from gateway.store import StoreError, open_store
from gateway.store.users import list_users

# The warning for a configuration without the malware scan.
SCANNER_OFF = (
    "scanner.enabled = false: attachments are not checked for malware (audit: not_scanned). "
    "The policies require a malware check at the Internet gateway (対策基準 6(4)①イ): "
    "enable [scanner] with a running clamd."
)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "check-config",
        help="validate the configuration (with local.d) and print the effective one",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    add_config_option(parser)
    parser.add_argument("--json", action="store_true", help="print JSON instead of TOML")
    parser.add_argument(
        "--defaults",
        action="store_true",
        help="print every setting with its default and description (config/defaults.toml)",
    )
    parser.add_argument(
        "--on",
        type=date.fromisoformat,
        metavar="YYYY-MM-DD",
        help="check exception expiry as of this date (default: today)",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="errors and warnings only")
    parser.set_defaults(func=run_check_config)


def run_check_config(args: argparse.Namespace) -> int:
    if args.defaults:
        print(defaults_toml(), end="")
        return ExitCode.OK
    try:
        config, layered = load(args, check_files=True)
    except CliError as exc:
        exc.problems.append(f"{len(exc.problems)} error(s); invalid")
        raise
    on: date = args.on or date.today()
    expired = rule_set(config, lambda: on).expired()
    if not args.quiet:
        data = config.model_dump(mode="json", exclude_none=True)
        if args.json:
            print(json.dumps(data, ensure_ascii=False, indent=2))
        else:
            for rule, dumped in zip(config.rules, data.get("rules", []), strict=True):
                if rule.expires is not None:
                    dumped["expires"] = rule.expires  # a TOML date, not a string
            files = ", ".join(str(p) for p in layered.files) or "(none: shipped defaults only)"
            print(f"# mukaika effective configuration; files: {files}")
            print(to_toml(data), end="")
    for index, rule in enumerate(config.rules):
        if rule in expired:
            source, local_index = (
                layered.rule_sources[index] if index < len(layered.rule_sources) else ("", index)
            )
            print(
                f"warning: {source}: rules[{local_index}] ({rule.name!r}): exception expired "
                f"on {rule.expires} (approved by {rule.approved_by}); it is not applied",
                file=sys.stderr,
            )
    for number, tenant in enumerate(config.tenants):
        for index, rule in enumerate(tenant.rules):
            if rule in expired:
                loc = ("tenants", number, "rules", index)
                print(
                    f"warning: {layered.origin(loc)}: {layered.key_name(loc)} ({rule.name!r}): "
                    f"exception expired on {rule.expires} (approved by {rule.approved_by}); it "
                    "is not applied",
                    file=sys.stderr,
                )
    if not config.scanner.enabled:
        print(f"warning: {SCANNER_OFF}", file=sys.stderr)
    for warning in _users_of_unknown_tenants(config, data_dir(args, config)):
        print(f"warning: {warning}", file=sys.stderr)
    return ExitCode.EXPIRED_EXCEPTIONS if expired else ExitCode.OK


def _users_of_unknown_tenants(config: Config, root: Path) -> list[str]:
    """Users of the existing store whose tenant the configuration does not name (they see
    nothing until it does); nothing when there is no store to read."""
    known = {tenant.name for tenant in config.tenants}
    try:
        with open_store(config.store, config.quarantine, root) as store:
            users = list_users(store)
    except StoreError:
        return []  # no store yet, or not this program's: other commands say so
    return [
        f"user {user.name!r} belongs to tenant {user.tenant!r}, which the configuration does "
        "not name: they see no mail until it does (or disable them: mukaika user disable)"
        for user in users
        if user.tenant and user.tenant not in known
    ]
