"""``mukaika console``: the web console (:mod:`gateway.console`), in a process of its own.

It opens the same store, quarantine and audit log as ``serve`` (the store must be migrated:
``serve`` does it at start, or ``mukaika store migrate``) and reads the shared secret key
(``[console] secret_key_file``, created on first start). ``--listen`` overrides ``[console]
listen``; plain HTTP is allowed on a loopback address only, else ``tls_cert_file`` and
``tls_key_file`` are required.

Exit codes: 0 stopped; 2 usage; 69 cannot listen; 74 the store or the quarantine cannot be
opened; 78 the configuration cannot work (plain HTTP on a non-loopback address, a missing
certificate, a secret key others may read); 79 the store's schema is not this program's.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from gateway.cli.exit_codes import ExitCode
from gateway.cli.toolkit import CliError, add_global_options, data_dir, load
from gateway.configuration.config import Config
from gateway.configuration.secret_key import SecretKeyError
from gateway.configuration.settings import ConsoleSettings, split_listen
from gateway.evidence.quarantine import QuarantineError
from gateway.store import StoreError, StoreMissingError, StoreSchemaError, open_store
from gateway.store.users import find_user


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "console",
        help="run the web console (held mail, release and approval, rules, audit trail)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_global_options(parser)
    parser.add_argument(
        "--listen", metavar="HOST:PORT", help="address to listen on (overrides [console] listen)"
    )
    parser.set_defaults(func=run_console)


def run_console(args: argparse.Namespace) -> int:
    config, layered = load(args, check_files=True)
    if args.listen is not None:
        try:
            console = ConsoleSettings.model_validate(
                config.console.model_dump() | {"listen": args.listen}
            )
        except ValidationError as exc:
            problems = [f"--listen: {error['msg']}" for error in exc.errors()]
            raise CliError(problems, ExitCode.CONFIG) from exc
        config = config.model_copy(update={"console": console})
    root = data_dir(args, config)
    from gateway.console.server import run

    try:
        run(config, layered, root)
    except SecretKeyError as exc:
        raise CliError(str(exc), ExitCode.CONFIG) from exc
    except StoreMissingError as exc:
        raise CliError(
            f"{exc} (start serve once, or run mukaika store migrate)", ExitCode.STORE_SCHEMA
        ) from exc
    except StoreSchemaError as exc:
        raise CliError(str(exc), ExitCode.STORE_SCHEMA) from exc
    except (StoreError, QuarantineError, OSError) as exc:
        raise CliError(f"cannot start the console: {exc}", ExitCode.IO_ERROR) from exc
    except SystemExit as exc:  # uvicorn exits 1 when it cannot bind
        if exc.code not in (0, None):
            raise CliError("cannot listen (address in use?)", ExitCode.UNAVAILABLE) from exc
    return ExitCode.OK


# -- the demo (mukaika serve --demo) -------------------------------------------------------

DEMO_USER = "demo"


@dataclass
class DemoConsole:
    """The console started beside ``serve --demo``, as a child process."""

    process: asyncio.subprocess.Process

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.terminate()
            await self.process.wait()


async def _add_demo_user(config: Config, config_file: Path | None, root: Path) -> str | None:
    """Add the demo operator on first start (through ``mukaika user add``, the password on its
    standard input); its new password, or None if it exists already."""
    with open_store(config.store, config.quarantine, root) as store:
        if find_user(store, DEMO_USER) is not None:
            return None
    password = secrets.token_urlsafe(12)
    argv = _mukaika(config_file, root, "user", "add", DEMO_USER, "--role", "operator")
    adding = await asyncio.create_subprocess_exec(*argv, stdin=asyncio.subprocess.PIPE)
    await adding.communicate((password + "\n").encode())
    return password if adding.returncode == 0 else None


def _mukaika(config_file: Path | None, root: Path, *command: str) -> list[str]:
    """The command line of a ``mukaika`` command on the demo's configuration and data."""
    config = ["--config", str(config_file)] if config_file is not None else []
    return [sys.executable, "-m", "gateway.cli", *command, "--data-dir", str(root), *config]


async def start_demo_console(config: Config, config_file: Path | None) -> DemoConsole:
    """Start ``mukaika console`` on the demo's data directory (serve migrated the store) with
    a demo operator, and say how to sign in."""
    root = Path(config.service.data_dir)
    password = await _add_demo_user(config, config_file, root)
    process = await asyncio.create_subprocess_exec(*_mukaika(config_file, root, "console"))
    host, port = split_listen(config.console.listen)
    login = (
        f"user {DEMO_USER}, password {password} (shown once)"
        if password
        else f"user {DEMO_USER} (its password was shown at the demo's first start)"
    )
    print(f"mukaika demo: the web console is at http://{host}:{port}/ ; sign in as {login}")
    return DemoConsole(process)
