"""``mukaika check-config``: validate the whole layered configuration without starting.

Reads the shipped defaults, the main file (``--config FILE``) and every ``local.d/*.toml``
beside it, validates the merged result, and prints the effective configuration (TOML, or JSON
with ``--json``) on stdout. Every file the configuration names (TLS certificate, key and CA
bundle, notice templates) must exist and be usable by the user running the check (run it as the
service user). Every error goes to stderr as ``FILE: KEY: message``. Exceptions
(例外措置) past their expiry date are reported as warnings: they are skipped when matching.
A configuration with the malware scanner off gets a warning too (the exit code stays 0): the
policies require a malware check at the Internet gateway.

Exit codes: 0 valid; 1 valid, but with expired exceptions; 2 invalid (or usage error).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path
from typing import Any

from gateway.configuration.config import ConfigError, load_layered
from gateway.configuration.files import file_problems
from gateway.configuration.rules import RuleSet

EXIT_OK = 0
EXIT_WARNINGS = 1
EXIT_INVALID = 2

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
    parser.add_argument("--config", type=Path, help="main TOML file (its local.d/ is read too)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of TOML")
    parser.add_argument(
        "--on",
        type=date.fromisoformat,
        metavar="YYYY-MM-DD",
        help="check exception expiry as of this date (default: today)",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="errors and warnings only")
    parser.set_defaults(func=run_check_config)


def run_check_config(args: argparse.Namespace) -> int:
    try:
        config, layered = load_layered(args.config)
    except ConfigError as exc:
        problems = exc.problems
    else:
        problems = file_problems(config, layered)
    if problems:
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        print(f"mukaika check-config: {len(problems)} error(s); invalid", file=sys.stderr)
        return EXIT_INVALID
    on: date = args.on or date.today()
    expired = RuleSet(config.policy, config.rules, lambda: on).expired()
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
    if not config.scanner.enabled:
        print(f"warning: {SCANNER_OFF}", file=sys.stderr)
    return EXIT_WARNINGS if expired else EXIT_OK


# --- a small TOML writer for the effective configuration -----------------------------------


def _scalar(value: Any) -> str:
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_scalar(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_scalar(v)}" for k, v in value.items()) + " }"
    return json.dumps(str(value), ensure_ascii=False)


def _key(key: str) -> str:
    if key and all(c.isalnum() or c in "-_" for c in key) and key.isascii():
        return key
    return json.dumps(key, ensure_ascii=False)


def _table(data: dict[str, Any], name: str, lines: list[str], array: bool = False) -> None:
    plain = {k: v for k, v in data.items() if not _is_table(v) and not _is_table_array(v)}
    if name and (plain or array or not data):
        lines.append(f"\n[[{name}]]" if array else f"\n[{name}]")
    for key, value in plain.items():
        lines.append(f"{_key(key)} = {_scalar(value)}")
    for key, value in data.items():
        full = f"{name}.{_key(key)}" if name else _key(key)
        if _is_table(value):
            _table(value, full, lines)
        elif _is_table_array(value):
            for item in value:
                _table(item, full, lines, array=True)


def _is_table(value: Any) -> bool:
    return isinstance(value, dict)


def _is_table_array(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def to_toml(data: dict[str, Any]) -> str:
    """``data`` (JSON-like: tables, arrays, strings, numbers, booleans) as TOML text."""
    lines: list[str] = []
    _table(data, "", lines)
    return "\n".join(lines).lstrip("\n") + "\n"
