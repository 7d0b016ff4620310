"""Fixtures shared across folders, and the markers that say what a test needs.

A test that uses a fixture starting a real outside program gets that program's marker here,
so ``-m "not clamd"`` and the like select by need without anyone remembering to mark."""

from __future__ import annotations

import pytest

from tests.authdns import auth_dns
from tests.clamd import clamd_socket, clamd_tcp

__all__ = ["auth_dns", "clamd_socket", "clamd_tcp"]

# fixture name -> the marker of what it needs (markers are registered in pyproject.toml)
NEEDS = {
    "clamd_socket": "clamd",
    "clamd_tcp": "clamd",
    "postfix_root": "postfix",
    "auth_dns": "dns",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for fixture in getattr(item, "fixturenames", ()):
            if fixture in NEEDS:
                item.add_marker(NEEDS[fixture])
