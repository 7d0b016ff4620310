"""What every ``mukaika`` subcommand shares: global options, loading the configuration,
reporting errors with one exit code each, and showing text and times on a terminal.

- Global options (``--config``, ``--data-dir``, ``--store-url``) are accepted before and after
  the action of a command group (``mukaika queue --data-dir X list`` and
  ``mukaika queue list --data-dir X``).
- The configuration is loaded one way: every problem is printed as ``FILE: KEY: message`` and
  the command ends with :attr:`ExitCode.CONFIG`.
- A :class:`CliError` carries its exit code; :func:`gateway.cli.main` prints it as one line
  per problem, prefixed with the command, so no command prints a traceback for a known error.
- Times are shown in ``service.display_timezone`` (the system's when empty) with their
  offset; logs and audit lines stay in UTC.

Threat model: text shown here may come from hostile mail (envelopes, replies, subjects);
callers remove control characters before it reaches :func:`fit` or :func:`shorten`, which
only bound its width.
"""

from __future__ import annotations

import argparse
import unicodedata
from collections.abc import Callable
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from gateway.cli.exit_codes import ExitCode
from gateway.configuration.config import Config, ConfigError, Layered, load_layered
from gateway.configuration.files import file_problems
from gateway.store import Store, StoreError, StoreMissingError, StoreSchemaError, open_store


class CliError(Exception):
    """A known failure: ``problems`` go to stderr, one line each; ``code`` is the exit code."""

    def __init__(self, problems: str | list[str], code: ExitCode) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))
        self.code = code


def add_config_option(parser: argparse.ArgumentParser, *, default: Any = None) -> None:
    """``--config FILE``, the same in every command."""
    parser.add_argument(
        "--config",
        type=Path,
        default=default,
        metavar="FILE",
        help="main TOML file, merged over the defaults (its local.d/ is read too)",
    )


def add_store_url_option(parser: argparse.ArgumentParser, *, default: Any = None) -> None:
    """``--store-url URL``, the same in every command that opens the store."""
    parser.add_argument(
        "--store-url",
        default=default,
        metavar="URL",
        help="the store's database URL (sqlite:///PATH or postgresql://USER@HOST/DB); "
        "default: store.url of the configuration",
    )


def add_global_options(parser: argparse.ArgumentParser, *, after_action: bool = False) -> None:
    """``--config``, ``--data-dir`` and ``--store-url`` on ``parser``. On an action's parser
    (``after_action``) they have no default, so a value given before the action is kept."""
    default: Any = argparse.SUPPRESS if after_action else None
    add_config_option(parser, default=default)
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=default,
        metavar="DIR",
        help="data directory (default: service.data_dir of the configuration)",
    )
    add_store_url_option(parser, default=default)


def with_store_url(config: Config, url: str | None) -> Config:
    """``config`` with ``store.url`` replaced by ``url`` (``--store-url``) when one is given;
    ValueError saying why when the URL is refused (never repeating it: it may hold a
    password)."""
    if url is None:
        return config
    data = config.model_dump(mode="python")
    data["store"]["url"] = url
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ValueError(str(exc.errors()[0]["msg"])) from None


def add_group(
    subparsers: Any, name: str, *, help: str, description: str | None = None
) -> Callable[..., argparse.ArgumentParser]:
    """A command group (``queue``, ``quarantine``): returns ``add_action(name, help=...)``,
    which adds an action that accepts the global options too."""
    group = subparsers.add_parser(name, help=help, description=description or help)
    add_global_options(group)
    actions = group.add_subparsers(dest=f"{name}_action", required=True, metavar="ACTION")

    def add_action(action: str, **kwargs: Any) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = actions.add_parser(action, **kwargs)
        add_global_options(parser, after_action=True)
        return parser

    return add_action


def load(args: argparse.Namespace, *, check_files: bool = False) -> tuple[Config, Layered]:
    """The configuration of ``--config`` (shipped defaults when absent) and its layers; with
    ``check_files`` every file it names must be usable. Problems end the command with
    :attr:`ExitCode.CONFIG`."""
    try:
        config, layered = load_layered(getattr(args, "config", None))
        config = with_store_url(config, getattr(args, "store_url", None))
    except ConfigError as exc:
        raise CliError(exc.problems, ExitCode.CONFIG) from exc
    except ValueError as exc:  # a refused --store-url
        raise CliError(f"--store-url: {exc}", ExitCode.CONFIG) from exc
    if check_files:
        problems = file_problems(config, layered)
        if problems:
            raise CliError(problems, ExitCode.CONFIG)
    return config, layered


def data_dir(args: argparse.Namespace, config: Config) -> Path:
    """``--data-dir``, else ``service.data_dir`` of the configuration."""
    given: Path | None = getattr(args, "data_dir", None)
    return given if given is not None else Path(config.service.data_dir)


def opened_store(config: Config, root: Path) -> Store:
    """The installation's store (already migrated), or the CliError that says why not."""
    try:
        return open_store(config.store, config.quarantine, root)
    except StoreMissingError as exc:
        raise CliError(f"{exc} (check --data-dir or --config)", ExitCode.NOT_FOUND) from exc
    except StoreSchemaError as exc:
        raise CliError(str(exc), ExitCode.STORE_SCHEMA) from exc
    except StoreError as exc:
        raise CliError(f"cannot open the store: {exc}", ExitCode.IO_ERROR) from exc


# --- times ------------------------------------------------------------------------------------


def display_zone(config: Config) -> tzinfo | None:
    """The operator's time zone: ``service.display_timezone``, or None for the system's."""
    zone = config.service.display_timezone
    return ZoneInfo(zone) if zone else None


def show_time(moment: float | datetime, zone: tzinfo | None) -> str:
    """``2026-12-03 23:20:05 +09:00``: a moment (epoch seconds or aware datetime) in ``zone``
    (None: the system's), always with its offset so it cannot be misread."""
    if isinstance(moment, datetime):
        aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    else:
        aware = datetime.fromtimestamp(moment, UTC)
    local = aware.astimezone(zone) if zone is not None else aware.astimezone()
    offset = local.strftime("%z")
    return f"{local:%Y-%m-%d %H:%M:%S} {offset[:3]}:{offset[3:]}"


# --- text on a terminal -------------------------------------------------------------------------


def columns(text: str) -> int:
    """Terminal columns of ``text`` (full-width characters count two)."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def fit(text: str, width: int) -> str:
    """Cut and pad ``text`` to ``width`` columns for a table cell (``…`` marks a cut)."""
    if columns(text) <= width:
        return text + " " * (width - columns(text))
    out: list[str] = []
    used = 0
    for ch in text:
        w = columns(ch)
        if used + w > width - 1:
            break
        out.append(ch)
        used += w
    return "".join(out) + "…" + " " * (width - used - 1)


def shorten(text: str, width: int) -> str:
    """``text`` in at most ``width`` columns, cut between words (``…`` marks the cut); a
    single word longer than ``width`` is cut inside, as nothing else would fit."""
    text = " ".join(text.split())
    if columns(text) <= width:
        return text
    cut = fit(text, width).rstrip()[:-1]  # without the mark
    space = cut.rfind(" ")
    if space > 0:
        cut = cut[:space]
    return cut.rstrip(" ,;:") + "…"
