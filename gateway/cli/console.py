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
from typing import Any

from pydantic import ValidationError

from gateway.cli.exit_codes import ExitCode
from gateway.cli.toolkit import CliError, add_global_options, data_dir, load
from gateway.configuration.settings import ConsoleSettings
from gateway.evidence.quarantine import QuarantineError
from gateway.service.secret_key import SecretKeyError
from gateway.store import StoreError, StoreMissingError, StoreSchemaError


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
