"""``mukaika serve``: run the gateway; ``mukaika send``: a tiny sender for trying it out.

The common settings can be given on the command line over the configuration file, so a
one-line start works. ``--demo`` also starts a local stand-in for the LGWAN-side MTA that
writes delivered mail into a Maildir under the data directory, prints how to send a test
mail, and starts the web console (``mukaika console``) with a demo operator whose password
it prints at the first start. SIGTERM and SIGINT (Ctrl-C) stop cleanly: new sessions get 421,
work in flight finishes within ``service.shutdown_grace_seconds``, and whatever is left stays
spooled.

SIGHUP reloads: the configuration (main file and ``local.d``) is read and validated again. If
valid, its policy and rules apply to every message sanitized from then on, and the audit log
is reopened (after rotation); settings that need a restart (listen address, data directory, …)
are logged as "needs restart" and not applied. If invalid, every error is logged and the old
configuration stays in force. Listeners and open sessions are untouched either way.

Exit codes (:class:`gateway.cli.exit_codes.ExitCode`): 0 clean stop; 2 usage error; 78
(``CONFIG``) the configuration cannot work (invalid, or a file it names is missing or unusable:
each problem is named, and the systemd unit does not restart); 69 (``UNAVAILABLE``) could not
start for another reason (e.g. the port is in use), which a restart may cure; 79
(``STORE_SCHEMA``) the store's schema is newer than this program's (or not migrated while
``store.migrate_on_start`` is off); 74 (``IO_ERROR``) the store cannot be opened; 80
(``CLOCK``) this node's clock is further from the PostgreSQL server's than
``node.max_clock_offset_seconds``.

``mukaika send`` exits 0 when every recipient was accepted; otherwise, with one line saying
why, 66 (``INPUT``) when the file cannot be read, 69 (``UNAVAILABLE``) when there is no
connection, 7 (``REFUSED``) when the server refused the message or a recipient.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway.cli.exit_codes import ExitCode
from gateway.cli.toolkit import add_config_option, add_store_url_option, with_store_url
from gateway.configuration.config import Config, ConfigError, load_layered
from gateway.configuration.files import file_problems
from gateway.observation.logtext import use_safe_formatter
from gateway.store import ClockOffsetError, StoreError, StoreSchemaError

if TYPE_CHECKING:
    from gateway.service.assembly import Parts

log = logging.getLogger("mukaika.serve")


def _host_port(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)


def register(subparsers: Any) -> None:
    serve = subparsers.add_parser(
        "serve",
        help="run the gateway (SMTP in, sanitize, deliver to the LGWAN-side MTA)",
        description="Run the gateway. Command-line options override the configuration file.",
    )
    add_config_option(serve)
    serve.add_argument("--listen", type=_host_port, metavar="HOST:PORT", help="SMTP listener")
    serve.add_argument(
        "--relay-to", type=_host_port, metavar="HOST:PORT", help="the LGWAN-side MTA"
    )
    serve.add_argument(
        "--accept-domain",
        action="append",
        default=[],
        metavar="DOMAIN",
        help="a recipient domain to accept (repeatable; replaces the configured list)",
    )
    serve.add_argument("--data-dir", type=Path, metavar="DIR", help="spool, quarantine, logs")
    add_store_url_option(serve)
    serve.add_argument(
        "--metrics", type=_host_port, metavar="HOST:PORT", help="serve Prometheus metrics"
    )
    serve.add_argument(
        "--demo",
        action="store_true",
        help="also run a local stand-in LGWAN MTA writing to DATA_DIR/demo-maildir",
    )
    serve.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    serve.set_defaults(func=run_serve)

    send = subparsers.add_parser(
        "send",
        help="send a test mail (for trying out the gateway)",
        description="Send a file (or a small built-in Japanese test mail) over SMTP.",
    )
    send.add_argument("--server", type=_host_port, default=("127.0.0.1", 2525), metavar="HOST:PORT")
    send.add_argument("--from", dest="sender", default="sender@example.com")
    send.add_argument("--to", dest="recipients", action="append", default=[])
    send.add_argument("file", nargs="?", type=Path, help="an .eml file; default: a test mail")
    send.set_defaults(func=run_send)


def apply_overrides(config: Config, args: argparse.Namespace) -> Config:
    """The configuration with the command-line settings applied, validated again."""
    data = config.model_dump(mode="python")
    if args.listen:
        data["smtp"]["listen_host"], data["smtp"]["listen_port"] = args.listen
    if args.relay_to:
        data["delivery"]["relay_host"], data["delivery"]["relay_port"] = args.relay_to
    if args.accept_domain:
        data["smtp"]["accept_domains"] = tuple(args.accept_domain)
    if args.data_dir:
        data["service"]["data_dir"] = str(args.data_dir)
    if args.metrics:
        data["metrics"].update(enabled=True, host=args.metrics[0], port=args.metrics[1])
    if args.demo and not data["smtp"]["accept_domains"]:
        data["smtp"]["accept_domains"] = ("example.lg.jp",)
    return with_store_url(Config.model_validate(data), args.store_url)


def load_usable(args: argparse.Namespace) -> Config:
    """The configuration with the command line applied, and every file it names usable
    (gateway.configuration.files); else ConfigError naming each problem. At start and on
    reload alike, so a reload cannot bring in a template that does not exist."""
    try:
        loaded, layered = load_layered(args.config)
        config = apply_overrides(loaded, args)
    except ValueError as exc:  # an override pydantic refuses (ConfigError is not one)
        raise ConfigError([str(exc)]) from exc
    problems = file_problems(config, layered)
    if problems:
        raise ConfigError(problems)
    return config


def run_serve(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, stream=sys.stderr)
    # Every line on stderr printable, whichever library logged it (aiosmtpd logs command words
    # raw): gateway.observation.logtext.
    use_safe_formatter()
    if not args.verbose:
        # aiosmtpd logs every command at INFO; the gateway logs what matters with queue ids.
        logging.getLogger("mail.log").setLevel(logging.WARNING)
    try:
        config = load_usable(args)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"mukaika serve: {problem}", file=sys.stderr)
        print("mukaika serve: the configuration cannot work; not started", file=sys.stderr)
        return ExitCode.CONFIG
    try:
        asyncio.run(
            _serve(
                config,
                demo=args.demo,
                console=args.demo,
                config_file=args.config,
                relay_given=bool(args.relay_to),
                reload=lambda: load_usable(args),
            )
        )
    except StoreSchemaError as exc:
        print(f"mukaika serve: {exc}; not started", file=sys.stderr)
        return ExitCode.STORE_SCHEMA
    except ClockOffsetError as exc:
        print(f"mukaika serve: {exc}; not started", file=sys.stderr)
        return ExitCode.CLOCK
    except StoreError as exc:
        print(f"mukaika serve: cannot start: {exc}", file=sys.stderr)
        return ExitCode.IO_ERROR
    except OSError as exc:
        print(f"mukaika serve: cannot start: {exc}", file=sys.stderr)
        return ExitCode.UNAVAILABLE
    return ExitCode.OK


def _with_password_check(parts: Parts | None) -> Parts:
    """``parts`` with the console's password hasher for ``[outbound] auth`` (the service
    never imports the web framework; the command line hands it the function)."""
    import dataclasses

    from gateway.console.passwords import check
    from gateway.service.assembly import Parts

    given = parts or Parts()
    if given.password_check is not None:
        return given
    return dataclasses.replace(given, password_check=check)


async def _serve(
    config: Config,
    *,
    demo: bool,
    console: bool = False,
    config_file: Path | None = None,
    relay_given: bool = False,
    parts: Parts | None = None,
    stop: asyncio.Event | None = None,
    reload: Callable[[], Config] | None = None,
) -> None:
    """Run until SIGTERM/SIGINT (or ``stop``), then stop cleanly; SIGHUP calls ``reload`` for
    a new configuration and applies it (see the module docstring). ``console``: also run the
    web console as a child process, with a demo operator (``--demo``)."""
    from gateway.service.assembly import Gateway

    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with contextlib.AsyncExitStack() as stack:
            if demo and not relay_given:
                from gateway.service.demo import start_demo_relay

                relay = await start_demo_relay(Path(config.service.data_dir) / "demo-maildir")
                stack.push_async_callback(relay.stop)
                data = config.model_dump(mode="python")
                data["delivery"].update(relay_host=relay.host, relay_port=relay.port)
                config = Config.model_validate(data)
            gateway = Gateway(config, _with_password_check(parts))
            stack.push_async_callback(gateway.stop)
            host, port = await gateway.start()
            loop.add_signal_handler(signal.SIGHUP, _reloader(gateway, reload))
            if demo:
                from gateway.service.demo import instructions

                print(instructions(host, port, config), flush=True)
            print(f"mukaika: listening on {host}:{port}", flush=True)
            if console:
                from gateway.cli.console import start_demo_console

                demo_console = await start_demo_console(config, config_file)
                stack.push_async_callback(demo_console.stop)
            await stop.wait()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(sig)


def _reloader(gateway: Any, reload: Callable[[], Config] | None) -> Callable[[], None]:
    def on_sighup() -> None:
        reopen = getattr(gateway.audit, "reopen", None)
        if reopen is not None:
            reopen()
        if reload is None:
            log.info("SIGHUP: audit log reopened; no configuration file to reload")
            return
        try:
            config = reload()
        except ConfigError as exc:
            for problem in exc.problems:
                log.error("reload: %s", problem)
            log.error("reload refused: the configuration in force is unchanged")
            return
        except (ValueError, OSError) as exc:
            log.error("reload: %s", exc)
            log.error("reload refused: the configuration in force is unchanged")
            return
        for key in gateway.reload(config):
            log.warning("reload: %s changed: needs restart (not applied)", key)

    return on_sighup


def run_send(args: argparse.Namespace) -> int:
    from aiosmtplib import SMTPRecipientsRefused, SMTPResponseException

    from gateway.service.demo import SEND_ERRORS, sample_message, send_failure, send_message

    recipients = args.recipients or ["staff@example.lg.jp"]
    try:
        message = (
            args.file.read_bytes() if args.file else sample_message(args.sender, recipients[0])
        )
    except OSError as exc:
        print(f"mukaika send: cannot read {args.file}: {exc.strerror or exc}", file=sys.stderr)
        return ExitCode.INPUT
    try:
        refused, reply = asyncio.run(send_message(args.server, args.sender, recipients, message))
    except SEND_ERRORS as exc:
        print(f"mukaika send: not sent: {send_failure(exc, args.server)}", file=sys.stderr)
        refused_by_server = isinstance(exc, SMTPRecipientsRefused | SMTPResponseException)
        return ExitCode.REFUSED if refused_by_server else ExitCode.UNAVAILABLE
    print(f"mukaika send: {reply}")
    for rcpt, answer in refused.items():
        print(f"mukaika send: refused {rcpt}: {answer}", file=sys.stderr)
    return ExitCode.REFUSED if refused else ExitCode.OK
