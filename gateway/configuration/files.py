"""The files a configuration names, checked before anything starts.

Intent: a path in the configuration is only text until the service opens it. A typo in
``smtp.tls_cert_file`` used to pass every check and stop ``mukaika serve`` with a bare "No
such file or directory" that systemd restarted forever; a missing notice template failed only
when the first mail was sanitized. ``mukaika check-config`` and ``mukaika serve`` call
:func:`file_problems`, so what the check accepts the service can start with, and a start that
cannot work stops at once with the file named (exit code ``ExitCode.CONFIG``, which the systemd
unit does not restart).

Threat model: these files are the operator's (certificates, keys, CA bundles, notice
templates), never a sender's; the check reads them as the user that runs it, so run
``check-config`` as the service user. Nothing read here is printed: a problem names the key,
the path and the operating system's or TLS library's reason, never the file's content.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from gateway.configuration.config import Config, Layered, Origin
from gateway.configuration.secret_key import SecretKeyError, read_secret_key, secret_key_path
from gateway.delivery.client import client_tls_context
from gateway.receiving.smtp import tls_context

# Bytes read from a template to check it is UTF-8 text; notice templates are a few KB.
MAX_CHECKED_BYTES: Final = 1024 * 1024


def named_files(config: Config) -> Iterator[tuple[Origin, str]]:
    """(key, path) of every file the configuration names, where a path is set."""
    candidates: list[tuple[Origin, str | None]] = [
        (("smtp", "tls_cert_file"), config.smtp.tls_cert_file),
        (("smtp", "tls_key_file"), config.smtp.tls_key_file),
        (("delivery", "tls_ca_file"), config.delivery.tls_ca_file),
        (("console", "tls_cert_file"), config.console.tls_cert_file),
        (("console", "tls_key_file"), config.console.tls_key_file),
        (("policy", "notice", "template"), config.policy.notice.template),
        (("directory", "bind_password_file"), config.directory.bind_password_file),
        (("directory", "tls_ca_file"), config.directory.tls_ca_file),
    ]
    for index, signing in enumerate(config.outbound.dkim):
        candidates.append((("outbound", "dkim", index, "key_file"), signing.key_file))
    for index, rule in enumerate(config.rules):
        notice = rule.policy.get("notice")
        template = notice.get("template") if isinstance(notice, dict) else None
        candidates.append((("rules", index, "policy", "notice", "template"), template))
    for key, path in candidates:
        if path:
            yield key, path


def _unreadable(key: Origin, path: str) -> str | None:
    """Why the file at ``path`` cannot serve as ``key``, or None."""
    try:
        with Path(path).open("rb") as file:
            data = file.read(MAX_CHECKED_BYTES)
    except OSError as exc:
        return exc.strerror or type(exc).__name__
    if key[-1] == "template":
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as exc:
            return f"not UTF-8 text (byte {exc.start})"
    return None


def file_problems(config: Config, layered: Layered | None = None) -> list[str]:
    """One line per unusable file: ``FILE: KEY: PATH: reason`` (the file that set the key
    when ``layered`` is given). Empty when every named file can be used."""
    where = layered or Layered()
    problems: list[str] = []
    for key, path in named_files(config):
        reason = _unreadable(key, path)
        if reason is not None:
            problems.append(f"{where.origin(key)}: {where.key_name(key)}: {path}: {reason}")
    smtp = config.smtp
    if bool(smtp.tls_cert_file) != bool(smtp.tls_key_file):
        given = ("smtp", "tls_cert_file" if smtp.tls_cert_file else "tls_key_file")
        problems.append(
            f"{where.origin(given)}: {where.key_name(given)}: set without its pair "
            "(STARTTLS needs both smtp.tls_cert_file and smtp.tls_key_file)"
        )
    key_problem = secret_key_problem(config)
    if key_problem is not None:
        key = ("console", "secret_key_file")
        problems.append(f"{where.origin(key)}: {where.key_name(key)}: {key_problem}")
    if problems:
        return problems  # the TLS libraries would only repeat "no such file"
    try:
        tls_context(smtp)
    except ssl.SSLError as exc:
        key = ("smtp", "tls_cert_file")
        problems.append(
            f"{where.origin(key)}: smtp.tls_cert_file, smtp.tls_key_file: {smtp.tls_cert_file}, "
            f"{smtp.tls_key_file}: not a usable certificate and key ({exc.reason or exc})"
        )
    try:
        client_tls_context(config.delivery)
    except ssl.SSLError as exc:
        key = ("delivery", "tls_ca_file")
        problems.append(
            f"{where.origin(key)}: {where.key_name(key)}: {config.delivery.tls_ca_file}: "
            f"not a usable CA bundle ({exc.reason or exc})"
        )
    return problems


def secret_key_problem(config: Config) -> str | None:
    """Why the existing ``[console] secret_key_file`` cannot be used, or None (a missing one
    is created when serve or the console starts)."""
    path = secret_key_path(config.console.secret_key_file, Path(config.service.data_dir))
    try:
        read_secret_key(path)
    except FileNotFoundError:
        return None
    except SecretKeyError as exc:
        return str(exc)
    return None
