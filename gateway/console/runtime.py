"""What the console's pages work on in this process: the configuration, the store, the audit
log, the quarantine and the held-mail workflow, opened once at start (:func:`open_runtime`)
and installed for the views (:func:`install`, :func:`current`).

Threat model: nothing here reads a request; the pages decide what a user may see.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from gateway.configuration.config import Config, Layered
from gateway.evidence.audit import AuditLog
from gateway.evidence.quarantine import Quarantine
from gateway.service.held_mail import HeldMail
from gateway.store import Store, open_store


@dataclass(frozen=True)
class Runtime:
    """The open resources of one console process."""

    config: Config
    layered: Layered
    data_dir: Path
    store: Store
    audit: AuditLog
    quarantine: Quarantine
    held: HeldMail


_installed: list[Runtime] = []


def install(runtime: Runtime | None) -> None:
    """Make ``runtime`` the one the pages use (None: none)."""
    _installed[:] = [] if runtime is None else [runtime]


def current() -> Runtime:
    """The installed runtime; RuntimeError if the console was not started."""
    if not _installed:
        raise RuntimeError("the console runtime is not installed")
    return _installed[0]


@contextlib.contextmanager
def open_runtime(config: Config, layered: Layered, data_dir: Path) -> Iterator[Runtime]:
    """Open the store (it must be migrated), the audit log and the quarantine; close them
    after. Raises the store's and the quarantine's errors."""
    with (
        open_store(config.store, config.quarantine, data_dir) as store,
        AuditLog.from_settings(config.audit, data_dir) as audit,
        Quarantine.from_settings(config.quarantine, data_dir, store) as quarantine,
    ):
        yield Runtime(
            config=config,
            layered=layered,
            data_dir=data_dir,
            store=store,
            audit=audit,
            quarantine=quarantine,
            held=HeldMail(store, config, audit),
        )
