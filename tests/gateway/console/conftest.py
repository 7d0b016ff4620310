"""The console's tests: one world (store, runtime, users) per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sanitizers.vocabulary import UserRole
from tests.gateway.console.consolekit import ConsoleWorld, console_world


@pytest.fixture
def world(tmp_path: Path) -> Iterator[ConsoleWorld]:
    """A console with one user of each role; the recipients share a 課 mailbox."""
    with console_world(tmp_path / "data") as world:
        world.add("rin", UserRole.RECIPIENT, "rin@city.example.lg.jp", "kacho@city.example.lg.jp")
        world.add("ren", UserRole.RECIPIENT, "ren@city.example.lg.jp", "kacho@city.example.lg.jp")
        world.add("oto", UserRole.OPERATOR)
        world.add("aki", UserRole.APPROVER)
        world.add("ayu", UserRole.APPROVER)
        world.add("kai", UserRole.AUDITOR)
        world.add("ada", UserRole.ADMIN)
        yield world
